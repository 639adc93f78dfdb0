/* fuzz_node_job - what a node reads from the channel (core/node_job.h): the
 * input as a job message (JSON, NULs allowed), checked by
 * plait_node_job_parse. A job that parses must hold only clean relative
 * paths, each listed after a parent that is a directory, with types f d l
 * p and file digests well formed; a refusal must say what was wrong.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
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
		plait_node_job_release(&job);
	} else if (!err || !err->msg || !*err->msg) {
		abort();
	}
	plait_error_free(err);
	json_decref(msg);
	return 0;
}
