/* fuzz_node_job - what a node reads from the channel (core/node_job.h): the
 * input as a job message (JSON, NULs allowed), checked by
 * plait_node_job_parse. A job that parses must hold only clean relative
 * paths, each listed after a parent that is a directory, with types f d l
 * p and file digests well formed, pushes to repositories only, --ssh
 * sockets of the node's naming only; a refusal must say what was wrong. The
 * input is also a login's payload (plait_node_login_parse): three fields
 * exactly, or a refusal.
 * Run: make fuzz (see the README, Fuzzing). */
#include "fuzz.h"

#include <jansson.h>

#include "core/digest.h"
#include "core/error.h"
#include "core/node_job.h"

static void check_files(const struct plait_node_files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		const struct plait_node_file *e = &f->v[i];
		if (!e->path || !*e->path || e->path[0] == '/' || strstr(e->path, "//") || strstr(e->path, "/../") ||
		    !strncmp(e->path, "../", 3) || !strcmp(e->path, "..") || !strchr("fdlp", e->type))
			abort();
		size_t n = strlen(e->path);
		if (e->path[n - 1] == '/' || (n >= 3 && !strcmp(e->path + n - 3, "/..")))
			abort();
		if (e->type == 'f' && (!e->data || !plait_digest_is_sha256(e->data)))
			abort();
		if (e->type == 'l' && (!e->data || !*e->data))
			abort();
		const char *slash = strrchr(e->path, '/');
		if (slash) { /* its parent is an earlier directory entry */
			size_t pl = (size_t)(slash - e->path);
			bool found = false;
			for (size_t k = 0; k < i && !found; k++)
				found = f->v[k].type == 'd' && strlen(f->v[k].path) == pl &&
					!strncmp(f->v[k].path, e->path, pl);
			if (!found)
				abort();
		}
	}
}

/* The input as a login's payload too: three fields, or a refusal that says why. */
static void check_login(const uint8_t *data, size_t size)
{
	struct plait_node_login l;
	struct plait_error *err = NULL;
	if (plait_node_login_parse("127.0.0.1:5000", data, size, &l, &err) >= 0) {
		size_t n = 0;
		const char *f[3] = { l.username, l.password, l.identity_token };
		for (int i = 0; i < 3; i++)
			n += (f[i] ? strlen(f[i]) : 0) + 1;
		if (n != size)
			abort();
		plait_node_login_release(&l);
	} else if (!err || !err->msg || !*err->msg) {
		abort();
	}
	plait_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	check_login(data, size);
	json_error_t je;
	json_t *msg = json_loadb((const char *)data, size, JSON_ALLOW_NUL, &je);
	if (!msg)
		return 0;
	struct plait_node_job job;
	struct plait_error *err = NULL;
	if (plait_node_job_parse(msg, &job, &err) >= 0) {
		check_files(&job.context);
		for (size_t i = 0; i < job.n_named; i++)
			check_files(&job.named_files[i]);
		for (size_t i = 0; i < job.n_ssh; i++) /* only sockets of the node's naming (it removes them) */
			if (strncmp(job.ssh[i].socket, PLAIT_NODE_SSH_PREFIX, strlen(PLAIT_NODE_SSH_PREFIX)) ||
			    strchr(job.ssh[i].socket + strlen(PLAIT_NODE_SSH_PREFIX), '/'))
				abort();
		for (char **p = job.push; *p; p++) /* repositories only: never a tag or digest to move */
			if (strchr(*p, '@') || !strchr(*p, '/') || strchr(strrchr(*p, '/'), ':'))
				abort();
		plait_node_job_release(&job);
	} else if (!err || !err->msg || !*err->msg) {
		abort();
	}
	plait_error_free(err);
	json_decref(msg);
	return 0;
}
