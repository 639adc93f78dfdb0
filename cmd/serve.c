/* cmd/serve.c - plait serve --protocol N: the node side of 'plait builder'
 * (run by the local plait over ssh; frames on stdin and stdout, core/frame.h;
 * the README's "Builders on other machines" has the conversation). After the
 * hello, each job: its file lists (core/node_job.h), a "need" for the
 * contents this node's cache lacks, the blobs, "start"; the build runs here,
 * its progress goes back as events, then (a job with "push") the image
 * pushed by digest to its repositories with the logins handed over, then the
 * result and the blobs asked for. Nothing but frames goes to stdout. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"
#include "pipeline.h"
#include "plait-config.h"
#include "core/build.h"
#include "core/copy.h"
#include "core/frame.h"
#include "core/fs.h"
#include "core/node_job.h"
#include "core/oci.h"
#include "core/ref.h"
#include "platforms/builder.h"
#include "platforms/remote.h"
#include "registry/endpoint.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait serve --protocol N\n"
	"\n"
	"The node side of 'plait builder': speak the node protocol (version N) on\n"
	"standard input and output. Run by another plait over ssh, not by hand.\n";

static int send_error(long id, const char *msg)
{
	json_auto_t *o = json_pack("{s:s, s:I, s:s}", "type", "error", "id", (json_int_t)id, "message", msg);
	return plait_frame_write_control(STDOUT_FILENO, o, NULL);
}

/* ------------------------------------------------------------ jobs */

struct serve {
	int in, out;
	size_t n; /* frames read */
	pthread_mutex_t wlock; /* frames written by the build's progress */
	struct plait_store *store; /* the node's cache store: contents and results */
	char *cache_dir;
	long id; /* the running job's */
	atomic_int cancel; /* the running job's: a cancel, a hang-up, or this process's SIGINT/SIGTERM */
	/* The job's --secret values, each in a memory file (never on a disk),
	 * read by the build as /proc/self/fd/N; closed when the job ends. */
	struct plait_build_secret *secrets; /* id and src ("/proc/self/fd/N") owned here */
	int *secret_fds;
	size_t n_secrets;
	/* The job's registry logins (for its push), in memory only, wiped when it ends. */
	struct plait_node_login *logins;
	struct plait_registry_login *reg_logins; /* the same, as the registry client takes them */
	size_t n_logins;
};

static void secrets_drop(struct serve *s)
{
	for (size_t i = 0; i < s->n_secrets; i++) {
		close(s->secret_fds[i]);
		free((char *)s->secrets[i].id);
		free((char *)s->secrets[i].src);
	}
	free(s->secrets);
	free(s->secret_fds);
	s->secrets = NULL;
	s->secret_fds = NULL;
	s->n_secrets = 0;
	for (size_t i = 0; i < s->n_logins; i++)
		plait_node_login_release(&s->logins[i]);
	free(s->logins);
	free(s->reg_logins);
	s->logins = NULL;
	s->reg_logins = NULL;
	s->n_logins = 0;
}

static void wipe_release(struct plait_buf *b)
{
	if (b->buf)
		explicit_bzero(b->buf, b->len);
	plait_buf_release(b);
}

/* Having read a control frame announcing size bytes of what (a secret, a
 * login), those bytes into *out (wiped by the caller), as the content frames
 * and end frame that follow; every frame's copy is wiped. */
static int receive_wiped(struct serve *s, const char *what, const json_t *sz, struct plait_buf *out,
			 struct plait_error **err)
{
	if (!json_is_integer(sz) || json_integer_value(sz) < 0 || json_integer_value(sz) > PLAIT_NODE_SECRET_MAX)
		return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: %s needs a size of at most %u bytes", s->n, what,
				       PLAIT_NODE_SECRET_MAX);
	int64_t left = json_integer_value(sz);
	plait_buf_init(out, (size_t)left + 1); /* sized once: no stale copy left by a realloc */
	int r = 0;
	for (;;) {
		struct plait_frame f;
		r = plait_frame_read(s->in, &f, &s->n, err);
		if (r == 0)
			r = plait_error_set(err, PLAIT_E_NETWORK, "the channel closed inside %s", what);
		if (r < 0)
			break;
		bool end = f.type == PLAIT_FRAME_END;
		if (!end && (f.type != PLAIT_FRAME_CONTENT || (int64_t)f.len > left))
			r = plait_error_set(err, PLAIT_E_INVALID, "frame %zu: inside %s: not its content", s->n, what);
		else if (!end)
			plait_buf_add(out, f.payload, f.len);
		if (f.payload)
			explicit_bzero(f.payload, f.len);
		left -= end || r < 0 ? 0 : (int64_t)f.len;
		plait_frame_release(&f);
		if (r < 0 || end)
			break;
	}
	if (r >= 0 && left)
		r = plait_error_set(err, PLAIT_E_INVALID, "%s: shorter than announced", what);
	return r;
}

/* Having read {"type":"secret","name","size"}: its bytes into a memory file. */
static int receive_secret(struct serve *s, const json_t *ctl, struct plait_error **err)
{
	const char *name = json_string_value(json_object_get(ctl, "name"));
	if (!name || !*name)
		return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: a secret needs a name", s->n);
	if (s->n_secrets >= 256)
		return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: more than 256 secrets for one job", s->n);
	struct plait_buf what = PLAIT_BUF_INIT, v = PLAIT_BUF_INIT;
	plait_buf_addf(&what, "secret '%s'", name);
	int r = receive_wiped(s, what.buf, json_object_get(ctl, "size"), &v, err);
	plait_buf_release(&what);
	int fd = r >= 0 ? memfd_create("plait-secret", MFD_CLOEXEC) : -1;
	if (r >= 0 && (fd < 0 || plait_write_all(fd, v.buf ? v.buf : "", v.len) < 0))
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "secret '%s': cannot keep it in a memory file", name);
	wipe_release(&v);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	s->secrets = xrealloc(s->secrets, (s->n_secrets + 1) * sizeof(*s->secrets));
	s->secret_fds = xrealloc(s->secret_fds, (s->n_secrets + 1) * sizeof(*s->secret_fds));
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "/proc/self/fd/%d", fd);
	s->secret_fds[s->n_secrets] = fd;
	s->secrets[s->n_secrets] = (struct plait_build_secret){ .id = xstrdup(name), .src = plait_buf_detach(&p, NULL) };
	s->n_secrets++;
	return 0;
}

static bool has_login(const struct serve *s, const char *host)
{
	for (size_t i = 0; i < s->n_logins; i++)
		if (streq(s->logins[i].host, host))
			return true;
	return false;
}

static void logins_add(struct serve *s, struct plait_node_login l)
{
	s->logins = xrealloc(s->logins, (s->n_logins + 1) * sizeof(*s->logins));
	s->logins[s->n_logins++] = l;
	/* as the registry client takes them (pointing into s->logins, rebuilt whole) */
	free(s->reg_logins);
	s->reg_logins = xcalloc(s->n_logins, sizeof(*s->reg_logins));
	for (size_t i = 0; i < s->n_logins; i++)
		s->reg_logins[i] = (struct plait_registry_login){
			s->logins[i].host, { s->logins[i].username, s->logins[i].password, s->logins[i].identity_token }
		};
}

/* Having read {"type":"login","host","size"}: the credentials, kept in memory for the job's push. */
static int receive_login(struct serve *s, const json_t *ctl, struct plait_error **err)
{
	const char *host = json_string_value(json_object_get(ctl, "host"));
	if (s->n_logins >= 64)
		return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: more than 64 logins for one job", s->n);
	struct plait_buf v = PLAIT_BUF_INIT;
	struct plait_node_login l;
	int r = receive_wiped(s, "a login", json_object_get(ctl, "size"), &v, err);
	if (r >= 0)
		r = plait_node_login_parse(host, v.buf, v.len, &l, err);
	wipe_release(&v);
	if (r < 0)
		return r;
	if (has_login(s, l.host)) {
		r = plait_error_set(err, PLAIT_E_INVALID, "frame %zu: a second login for %s", s->n, l.host);
		plait_node_login_release(&l);
		return r;
	}
	logins_add(s, l);
	return 0;
}

/* Every registry the job pushes to has a login: one the other side sent,
 * else an anonymous one (so this node's own credentials never stand in for
 * the user's). */
static void logins_cover_push(struct serve *s, const struct plait_node_job *job)
{
	for (char **p = job->push; *p; p++) {
		struct plait_ref ref = { 0 };
		if (plait_ref_parse(*p, &ref, NULL) < 0) /* checked by the job's parse */
			continue;
		const char *host = plait_ref_api_host(&ref);
		if (!has_login(s, host))
			logins_add(s, (struct plait_node_login){ .host = xstrdup(host) });
		plait_ref_release(&ref);
	}
}

static int send_job_error(struct serve *s, long id, const struct plait_error *e)
{
	json_auto_t *o = json_pack("{s:s, s:I, s:i, s:s}", "type", "error", "id", (json_int_t)id, "code",
				   e ? e->code : PLAIT_E_GENERIC, "message", e && e->msg ? e->msg : "failed");
	pthread_mutex_lock(&s->wlock);
	int r = plait_frame_write_control(s->out, o, NULL);
	pthread_mutex_unlock(&s->wlock);
	return r;
}

static void job_progress(const struct plait_build_event *ev, void *ctx)
{
	struct serve *s = ctx;
	json_auto_t *o = json_pack("{s:s, s:I, s:i, s:i, s:i, s:s?, s:s?, s:f}", "type", "event", "id", (json_int_t)s->id,
				   "kind", (int)ev->kind, "step", ev->step, "total", ev->total, "stage", ev->stage, "text",
				   ev->text, "seconds", ev->seconds);
	if (!o) /* text that is not UTF-8: the event without it */
		o = json_pack("{s:s, s:I, s:i, s:i, s:i, s:f}", "type", "event", "id", (json_int_t)s->id, "kind",
			      (int)ev->kind, "step", ev->step, "total", ev->total, "seconds", ev->seconds);
	pthread_mutex_lock(&s->wlock);
	(void)plait_frame_write_control(s->out, o, NULL); /* a closed channel shows at the next read */
	pthread_mutex_unlock(&s->wlock);
}

/* While a build runs the other side says nothing but "cancel": the watcher
 * reads the channel, and a cancel, a hang-up (ssh gone: the local plait was
 * killed or the network dropped) or garbage stops the build as Ctrl-C would,
 * so no build goes on orphaned on the node. */
struct watch {
	struct serve *s;
	int wake[2]; /* written when the build is over */
	pthread_t tid;
	bool running;
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	for (;;) {
		struct pollfd p[2] = { { .fd = w->s->in, .events = POLLIN }, { .fd = w->wake[0], .events = POLLIN } };
		int k = poll(p, 2, 100);
		if (k < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			return NULL;
		if (plait_interrupted)
			break;
		if (k <= 0)
			continue;
		struct plait_frame f;
		struct plait_error *e = NULL;
		int r = plait_frame_read(w->s->in, &f, &w->s->n, &e);
		plait_error_free(e);
		bool cancel = r <= 0 || !f.control ||
			      streq(json_string_value(json_object_get(f.control, "type")) ?: "", "cancel");
		if (r > 0)
			plait_frame_release(&f);
		if (cancel)
			break;
	}
	w->s->cancel = 1;
	return NULL;
}

static void watch_start(struct watch *w, struct serve *s)
{
	*w = (struct watch){ .s = s, .wake = { -1, -1 } };
	if (pipe2(w->wake, O_CLOEXEC) == 0)
		w->running = pthread_create(&w->tid, NULL, watch_main, w) == 0;
}

static void watch_stop(struct watch *w)
{
	if (w->running) {
		(void)!write(w->wake[1], "x", 1);
		pthread_join(w->tid, NULL);
	}
	if (w->wake[0] >= 0) {
		close(w->wake[0]);
		close(w->wake[1]);
	}
}

/* Read control frames until one of type want (its frame in *f), storing the
 * blobs that come before it (and, before the start, the job's secrets and
 * logins). 0 at a clean end or a bye, <0 on errors. */
static int read_until(struct serve *s, const char *want, struct plait_frame *f, int64_t max_blob,
		      bool started, struct plait_error **err)
{
	for (;;) {
		int r = plait_frame_read(s->in, f, &s->n, err);
		if (r <= 0)
			return r;
		const char *t = f->control ? json_string_value(json_object_get(f->control, "type")) : NULL;
		if (!t) {
			plait_frame_release(f);
			return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: content outside a blob", s->n);
		}
		if (streq(t, want))
			return 1;
		if (streq(t, "bye")) {
			plait_frame_release(f);
			return 0;
		}
		if (streq(t, "cancel")) { /* too late: the build is over */
			plait_frame_release(f);
			continue;
		}
		if (!started && (streq(t, "secret") || streq(t, "login"))) {
			r = streq(t, "secret") ? receive_secret(s, f->control, err) : receive_login(s, f->control, err);
			plait_frame_release(f);
			if (r < 0)
				return r;
			continue;
		}
		if (!streq(t, "blob")) {
			r = plait_error_set(err, PLAIT_E_INVALID, "frame %zu: '%.64s' where a blob or %s was expected",
					    s->n, t, want);
			plait_frame_release(f);
			return r;
		}
		r = plait_node_blob_receive(s->in, f->control, s->store, max_blob, &s->n, err);
		plait_frame_release(f);
		if (r < 0)
			return r;
	}
}

static int make_dir(const char *parent, const char *name, char **out, struct plait_error **err)
{
	*out = plait_path_join(parent, name);
	if (mkdir(*out, 0700) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", *out);
	return 0;
}

/* The blobs of the image m (the manifest at digest d, its config, its
 * layers unless they were pushed), as [{digest,size}]. */
static int result_blobs(struct serve *s, const struct plait_descriptor *d, bool layers, json_t **out,
			struct plait_error **err)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	struct plait_manifest m = { 0 };
	int r = plait_store_read_blob(s->store, d->digest, 4 << 20, &b, err);
	if (r >= 0)
		r = plait_manifest_parse(b.buf, b.len, &m, err);
	if (r >= 0) {
		json_t *a = json_array();
		json_array_append_new(a, json_pack("{s:s, s:I}", "digest", d->digest, "size", (json_int_t)d->size));
		json_array_append_new(a, json_pack("{s:s, s:I}", "digest", m.config.digest, "size", (json_int_t)m.config.size));
		for (size_t i = 0; layers && i < m.n_layers; i++)
			json_array_append_new(a, json_pack("{s:s, s:I}", "digest", m.layers[i].digest, "size",
							   (json_int_t)m.layers[i].size));
		*out = a;
	}
	plait_manifest_release(&m);
	plait_buf_release(&b);
	return r;
}

/* The blobs asked for, each one of the result's (blobs: [{digest,size}]). */
static int send_blobs(struct serve *s, const json_t *digests, const json_t *blobs, struct plait_error **err)
{
	for (size_t i = 0; i < json_array_size(digests); i++) {
		const char *d = json_string_value(json_array_get(digests, i));
		bool listed = false;
		for (size_t k = 0; d && k < json_array_size(blobs) && !listed; k++)
			listed = streq(d, json_string_value(json_object_get(json_array_get(blobs, k), "digest")) ?: "");
		int64_t size = 0;
		int fd = -1;
		int r = !d || !listed ? plait_error_set(err, PLAIT_E_INVALID, "fetch: entry %zu is not a blob of the result", i)
				      : plait_store_has(s->store, d, &size, err);
		if (r == 0)
			r = plait_error_set(err, PLAIT_E_NOT_FOUND, "fetch: %s is not in this node's store", d);
		if (r > 0)
			r = plait_store_open_blob(s->store, d, &fd, err);
		if (r >= 0) {
			pthread_mutex_lock(&s->wlock);
			r = plait_node_blob_send(s->out, d, size, fd, err);
			pthread_mutex_unlock(&s->wlock);
			close(fd);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* A job with "push": its image by digest to each repository (no tag), from
 * this node's store, as the logins handed over let it; *pushed gets
 * [{"repository","bytes"}]. */
static int push_image(struct serve *s, const struct plait_node_job *job, const struct plait_build_result *res,
		      const struct plait_registry_opts *ro, json_t **pushed, struct plait_error **err)
{
	struct plait_endpoint *src = NULL;
	struct plait_buf mb = PLAIT_BUF_INIT;
	*pushed = json_array();
	int r = plait_build_cache_endpoint(s->cache_dir, &src, err);
	if (r < 0)
		return r;
	r = plait_store_read_blob(src->store, res->manifest.digest, PLAIT_MANIFEST_MAX, &mb, err);
	const struct plait_copy_opts co = { .cancel = &s->cancel };
	for (char **repo = job->push; r >= 0 && *repo; repo++) {
		struct plait_endpoint *dst = NULL;
		struct plait_copy_stats cs = { 0 };
		r = plait_registry_endpoint_open(*repo, true, ro, &dst, err);
		if (r >= 0)
			r = plait_copy_image(src, dst, &res->manifest, mb.buf, mb.len, NULL, &co, &cs, err);
		if (r >= 0)
			json_array_append_new(*pushed, json_pack("{s:s, s:I}", "repository", *repo, "bytes",
								 (json_int_t)cs.bytes_copied));
		else
			plait_error_wrap(err, "push %s from this node", *repo);
		plait_endpoint_free(dst);
	}
	plait_buf_release(&mb);
	plait_endpoint_free(src);
	return r;
}

/* The job's --ssh agents, forwarded by the other side's ssh client: each
 * socket is there (sshd makes it as the session starts: a moment is
 * allowed), or the job fails saying what sshd must allow. */
static int ssh_agents_present(const struct plait_node_job *job, struct plait_error **err)
{
	for (size_t i = 0; i < job->n_ssh; i++) {
		struct stat st;
		int k, tries = 0;
		while ((k = lstat(job->ssh[i].socket, &st)) < 0 && errno == ENOENT && tries++ < 50)
			usleep(20 * 1000);
		/* this login's own (sshd makes it so): not another session's agent */
		if (k == 0 && S_ISSOCK(st.st_mode) && st.st_uid != geteuid())
			return plait_error_set(err, PLAIT_E_USAGE, "--ssh %s: %s on this node is not this login's",
					       job->ssh[i].id, job->ssh[i].socket);
		if (k < 0 || !S_ISSOCK(st.st_mode))
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--ssh %s: the agent forwarded for it is not at %s on this node (its sshd "
					       "must allow it: AllowStreamLocalForwarding yes, no DisableForwarding)",
					       job->ssh[i].id, job->ssh[i].socket);
	}
	return 0;
}

/* A forwarded agent's socket this login may remove: one of the naming
 * PLAIT_NODE_SSH_PREFIX<name>.sock, a socket, its own. */
static bool own_agent_socket(const char *path)
{
	struct stat st;
	return plait_node_ssh_socket_named(path) && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	       st.st_uid == geteuid();
}

/* A job that was refused still had its agents forwarded: their sockets go. */
static void unlink_job_sockets(const json_t *msg)
{
	const json_t *ssh = json_object_get(msg, "ssh");
	for (size_t i = 0; i < json_array_size(ssh) && i < 64; i++) {
		const char *p = json_string_value(json_object_get(json_array_get(ssh, i), "socket"));
		if (p && own_agent_socket(p))
			(void)unlink(p);
	}
}

/* Sockets sshd left from sessions that are over (a job never sent, a
 * killed serve): this login's, refusing connections. */
static void sweep_agent_sockets(void)
{
	_cleanup_free_ char *dir = xstrdup(PLAIT_NODE_SSH_PREFIX);
	char *slash = strrchr(dir, '/');
	const char *base = PLAIT_NODE_SSH_PREFIX + (slash - dir) + 1;
	*slash = '\0';
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!startswith(de->d_name, base))
			continue;
		_cleanup_free_ char *p = plait_path_join(dir, de->d_name);
		if (!own_agent_socket(p))
			continue;
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (strlen(p) >= sizeof(sa.sun_path))
			continue;
		memcpy(sa.sun_path, p, strlen(p) + 1);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno == ECONNREFUSED)
			(void)unlink(p); /* no listener: its session is gone */
		close(fd);
	}
	closedir(d);
}

/* One job: its contents in, the build, its result out, the blobs asked for. */
static int run_job(struct serve *s, const json_t *msg, struct plait_error **err)
{
	struct plait_node_job job;
	int r = plait_node_job_parse(msg, &job, err);
	if (r < 0) {
		unlink_job_sockets(msg);
		const json_t *id = json_object_get(msg, "id");
		send_job_error(s, json_is_integer(id) ? (long)json_integer_value(id) : 0, *err);
		plait_error_clear(err);
		return 0; /* the job is refused; the session goes on */
	}
	s->id = job.id;
	json_auto_t *need = json_array();
	{
		const struct plait_node_files **lists = xcalloc(job.n_named + 2, sizeof(*lists));
		lists[0] = &job.context;
		for (size_t i = 0; i < job.n_named; i++)
			lists[1 + i] = &job.named_files[i];
		_cleanup_strv_free_ char **v = NULL;
		r = plait_node_files_missing(lists, 1 + job.n_named, job.dockerfile_digest, s->store, &v, err);
		for (char **d = v; r >= 0 && d && *d; d++)
			json_array_append_new(need, json_string(*d));
		free(lists);
	}
	struct plait_frame f = { 0 };
	struct plait_tmpdir tmp = PLAIT_TMPDIR_INIT;
	_cleanup_free_ char *ctxdir = NULL, *dfdir = NULL, *dfpath = NULL;
	struct plait_named_dir *named = xcalloc(job.n_named + 1, sizeof(*named));
	char **named_paths = xcalloc(job.n_named + 1, sizeof(*named_paths));
	struct plait_builder builder = { 0 };
	struct plait_build_result res = { .lock_fd = -1 };
	struct resolver_ctx rctx;
	struct plait_image_resolver resolver;
	struct registry_cli rc = { 0 };
	for (char **i = job.insecure_registries; i && *i; i++)
		plait_strv_push(&rc.insecure, *i);
	registry_cli_finish(&rc);
	pipeline_resolver_init(&rctx, &resolver, &rc.opts, NULL, 0);
	bool started = false;
	json_auto_t *pushed = NULL;
	if (r >= 0) {
		json_auto_t *o = json_pack("{s:s, s:I, s:O}", "type", "need", "id", (json_int_t)job.id, "digests", need);
		r = plait_frame_write_control(s->out, o, err);
	}
	/* no blob is larger than what the job lists (saturating: sizes are the other side's) */
	int64_t max_blob = job.dockerfile_size;
	for (size_t i = 0; i <= job.n_named; i++) {
		int64_t add = i < job.n_named ? job.named_files[i].bytes : job.context.bytes;
		max_blob = add > INT64_MAX - max_blob ? INT64_MAX : max_blob + add;
	}
	if (r >= 0 && (r = read_until(s, "start", &f, max_blob, false, err)) == 0)
		goto out; /* the other side went away before the start */
	if (r > 0) {
		plait_frame_release(&f);
		started = true;
	}
	/* the logins came before the start: the push (and base pulls from the
	 * same registries) use them, never this node's own */
	if (started)
		logins_cover_push(s, &job);
	rc.opts.logins = s->reg_logins;
	rc.opts.n_logins = s->n_logins;
	rc.opts.cancel = &s->cancel;
	/* the job's directory: the contexts and the Dockerfile made again */
	if (r >= 0)
		r = plait_mkdtemp("node-job", &tmp, err);
	if (r >= 0)
		r = make_dir(tmp.path, "context", &ctxdir, err);
	if (r >= 0)
		r = plait_node_files_materialize(&job.context, s->store, ctxdir, err);
	for (size_t i = 0; r >= 0 && i < job.n_named; i++) {
		char sub[32];
		snprintf(sub, sizeof(sub), "named-%zu", i);
		r = make_dir(tmp.path, sub, &named_paths[i], err);
		if (r >= 0)
			r = plait_node_files_materialize(&job.named_files[i], s->store, named_paths[i], err);
		named[i] = (struct plait_named_dir){ .name = job.named[i], .dir = named_paths[i] };
	}
	if (r >= 0)
		r = make_dir(tmp.path, "dockerfile", &dfdir, err);
	if (r >= 0) {
		dfpath = plait_path_join(dfdir, job.dockerfile_name);
		struct plait_buf df = PLAIT_BUF_INIT;
		r = plait_store_read_blob(s->store, job.dockerfile_digest, 16 << 20, &df, err);
		if (r >= 0 && plait_replace_file(dfpath, df.buf ? df.buf : "", df.len) < 0)
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "write '%s'", dfpath);
		plait_buf_release(&df);
	}
	struct plait_platform plat = { 0 }, bplat = { 0 };
	if (r >= 0)
		r = plait_platform_parse(job.platform, &plat, err);
	if (r >= 0)
		r = plait_platform_parse(job.build_platform, &bplat, err);
	struct plait_builder_chooser chooser;
	plait_local_builders(&chooser);
	if (r >= 0)
		r = chooser.choose(chooser.ctx, &plat, &builder, err);
	if (r >= 0)
		r = ssh_agents_present(&job, err);
	if (r >= 0) {
		struct plait_build_opts bo = {
			.context_dir = ctxdir,
			.named_dirs = named,
			.n_named_dirs = job.n_named,
			.dockerfile = dfpath,
			.target = job.target,
			.platform = plat,
			.platform_str = job.platform,
			.build_platform = bplat,
			.build_platform_str = job.build_platform,
			.build_args = (const char *const *)job.build_args,
			.labels = (const char *const *)job.labels,
			.annotations = (const char *const *)job.annotations,
			.secrets = s->secrets,
			.n_secrets = s->n_secrets,
			.ssh = job.ssh,
			.n_ssh = job.n_ssh,
			.cache_dir = s->cache_dir,
			.no_cache = job.no_cache,
			.allow_insecure = job.allow_insecure,
			.compression = job.compression,
			.docker_media_types = job.docker_media_types,
			.have_epoch = job.have_epoch,
			.source_date_epoch = job.source_date_epoch,
			.runner = &builder.runner,
			.resolver = &resolver,
			.progress = job_progress,
			.progress_ctx = s,
			.cancel = &s->cancel,
		};
		struct watch w;
		s->cancel = 0;
		watch_start(&w, s);
		r = plait_build(&bo, &res, err);
		if (r >= 0 && *job.push) /* Ctrl-C there stops the push too */
			r = push_image(s, &job, &res, &rc.opts, &pushed, err);
		watch_stop(&w);
	}
	plait_platform_release(&plat);
	plait_platform_release(&bplat);
	if (r >= 0) {
		json_t *blobs = NULL;
		r = result_blobs(s, &res.manifest, !*job.push, &blobs, err);
		if (r >= 0) {
			json_auto_t *o = json_pack(
			    "{s:s, s:I, s:{s:s, s:s, s:I}, s:s, s:s, s:I, s:i, s:i, s:O}", "type", "result", "id",
			    (json_int_t)job.id, "manifest", "mediaType", res.manifest.media_type, "digest",
			    res.manifest.digest, "size", (json_int_t)res.manifest.size, "config_digest", res.config_digest,
			    "dockerfile_digest", res.dockerfile_digest, "size", (json_int_t)res.size, "steps", res.steps,
			    "cached", res.cached, "blobs", blobs);
			json_t *mats = json_array(), *steps = json_array();
			for (size_t i = 0; i < res.n_materials; i++) {
				const struct plait_build_material *m = &res.materials[i];
				json_array_append_new(mats, json_pack("{s:s, s:s?, s:s?, s:s}", "ref", m->ref, "resolved",
								      m->resolved, "platform", m->platform, "digest",
								      m->digest));
			}
			for (size_t i = 0; i < res.n_step_records; i++)
				json_array_append_new(steps, json_pack("{s:s, s:s, s:b}", "stage", res.step_records[i].stage,
								       "text", res.step_records[i].text, "cached",
								       res.step_records[i].cached));
			json_object_set_new(o, "materials", mats);
			json_object_set_new(o, "base_material", json_integer((json_int_t)res.base_material));
			json_object_set_new(o, "step_records", steps);
			if (pushed)
				json_object_set_new(o, "pushed", json_incref(pushed));
			pthread_mutex_lock(&s->wlock);
			r = plait_frame_write_control(s->out, o, err);
			pthread_mutex_unlock(&s->wlock);
		}
		/* the blobs the other side lacks; the cache's lock (res) keeps them meanwhile */
		if (r >= 0 && (r = read_until(s, "fetch", &f, 0, true, err)) > 0) {
			r = send_blobs(s, json_object_get(f.control, "digests"), blobs, err);
			plait_frame_release(&f);
			json_auto_t *done = json_pack("{s:s, s:I}", "type", "fetched", "id", (json_int_t)job.id);
			if (r >= 0)
				r = plait_frame_write_control(s->out, done, err);
		}
		json_decref(blobs);
	} else if (started) {
		/* the job failed (its Dockerfile, its build): said to the other
		 * side, and the session goes on */
		send_job_error(s, job.id, *err);
		plait_error_clear(err);
		r = 0;
	}
out:
	secrets_drop(s);
	for (size_t i = 0; i < job.n_ssh; i++) /* sshd may leave the forward's socket behind */
		if (own_agent_socket(job.ssh[i].socket))
			(void)unlink(job.ssh[i].socket);
	plait_build_result_release(&res);
	plait_builder_release(&builder);
	pipeline_resolver_release(&rctx);
	registry_cli_release(&rc);
	if (tmp.path) /* serve is root here, of its own user namespace when run rootless (cmd/main.c) */
		plait_tmpdir_remove(&tmp);
	for (size_t i = 0; i < job.n_named; i++)
		free(named_paths[i]);
	free(named_paths);
	free(named);
	plait_node_job_release(&job);
	s->id = 0;
	return r < 0 ? r : 0;
}

/* The jobs of a session, until a bye or the end of the stream. */
static int serve_jobs(size_t n, struct plait_error **err)
{
	struct plait_frame f;
	int r;
	struct serve s = { .in = STDIN_FILENO, .out = STDOUT_FILENO, .n = n, .wlock = PTHREAD_MUTEX_INITIALIZER };
	s.cache_dir = plait_build_default_cache_dir();
	sweep_agent_sockets();
	_cleanup_free_ char *store = plait_build_cache_store(s.cache_dir);
	if (plait_store_open(store, true, &s.store, err) < 0) {
		free(s.cache_dir);
		return -1;
	}
	for (;;) {
		r = plait_frame_read(s.in, &f, &s.n, err);
		if (r < 0)
			break;
		if (r == 0)
			break; /* the other side hung up */
		if (f.type == PLAIT_FRAME_CONTROL) {
			const char *t = json_string_value(json_object_get(f.control, "type"));
			if (streq(t, "bye")) {
				plait_frame_release(&f);
				break;
			}
			json_t *id = json_object_get(f.control, "id");
			if (streq(t, "job")) {
				r = run_job(&s, f.control, err);
				plait_frame_release(&f);
				if (r < 0)
					break;
				continue;
			}
			char m[200];
			snprintf(m, sizeof(m), "'%.64s' is not a message plait %s on this node knows", t, PLAIT_VERSION);
			send_error(json_is_integer(id) ? (long)json_integer_value(id) : 0, m);
		}
		plait_frame_release(&f);
	}
	plait_store_free(s.store);
	free(s.cache_dir);
	return r < 0 ? r : 0;
}

int cmd_serve(int argc, char **argv)
{
	long protocol = -1;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		if (streq(argv[i], "--protocol") && i + 1 < argc) {
			char *end = NULL;
			protocol = strtol(argv[++i], &end, 10);
			if (!*argv[i] || *end)
				return usage_error("serve", "--protocol: '%s' is not a number", argv[i]);
		} else {
			return usage_error("serve", "unexpected argument '%s'", argv[i]);
		}
	}
	if (protocol < 0)
		return usage_error("serve", "give --protocol N");
	if (protocol != PLAIT_REMOTE_PROTOCOL) {
		char m[160];
		snprintf(m, sizeof(m), "this plait (%s) speaks protocol %d, not %ld: install the same plait on both sides",
			 PLAIT_VERSION, PLAIT_REMOTE_PROTOCOL, protocol);
		send_error(0, m);
		fprintf(stderr, "plait serve: %s\n", m);
		return 1;
	}
	struct plait_error *err = NULL;
	struct plait_frame f;
	size_t n = 0;
	int r = plait_frame_read(STDIN_FILENO, &f, &n, &err);
	if (r <= 0 || f.type != PLAIT_FRAME_CONTROL ||
	    !streq(json_string_value(json_object_get(f.control, "type")), "hello")) {
		const char *m = r < 0 ? err->msg : "the first frame must be a hello";
		send_error(0, m);
		fprintf(stderr, "plait serve: %s\n", m);
		plait_frame_release(&f);
		plait_error_free(err);
		return 1;
	}
	json_t *theirs = json_object_get(f.control, "protocol");
	if (!json_is_integer(theirs) || json_integer_value(theirs) != PLAIT_REMOTE_PROTOCOL) {
		send_error(0, "the hello's protocol differs from --protocol");
		plait_frame_release(&f);
		return 1;
	}
	plait_frame_release(&f);
	json_auto_t *hello = json_pack("{s:s, s:i, s:s, s:[s, s]}", "type", "hello", "protocol",
				       PLAIT_REMOTE_PROTOCOL, "version", PLAIT_VERSION, "features", "push", "ssh");
	if (plait_frame_write_control(STDOUT_FILENO, hello, &err) < 0)
		goto fail;
	if (serve_jobs(n, &err) >= 0)
		return 0;
fail:
	fprintf(stderr, "plait serve: %s\n", err ? err->msg : "failed");
	plait_error_free(err);
	return 1;
}
