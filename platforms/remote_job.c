/* platforms/remote_job.c - one build job on a node; see remote_job.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "remote_job.h"
#include "core/frame.h"
#include "core/node_job.h"
#include "core/oci.h"
#include "core/strv.h"
#include "core/banned.h"

extern char **environ;

struct conn {
	const struct plait_node *n;
	pid_t pid;
	int to, from, errfd; /* errfd: a memory file holding ssh's stderr */
	size_t nread;
	char last[200]; /* the last event seen, for the message when the channel drops */
};

/* The ssh client of the job; ssh_opts go before the destination (the
 * --ssh agents' -R forwards). */
static int conn_open(const struct plait_remote_builder *b, const struct plait_node *n, char *const *ssh_opts,
		     struct conn *c, struct plait_error **err)
{
	*c = (struct conn){ .n = n, .pid = -1, .to = -1, .from = -1, .errfd = -1 };
	char args[48];
	snprintf(args, sizeof(args), "serve --protocol %d", PLAIT_REMOTE_PROTOCOL);
	_cleanup_strv_free_ char **words = plait_node_ssh_argv(b, n, args, err);
	if (!words)
		return -PLAIT_E_INVALID;
	_cleanup_strv_free_ char **argv = NULL;
	bool put = false;
	for (char **w = words; *w; w++) {
		if (!put && streq(*w, "--"))
			for (char *const *o = ssh_opts; o && *o; o++)
				plait_strv_push(&argv, *o);
		put |= streq(*w, "--");
		plait_strv_push(&argv, *w);
	}
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "node %s: cannot make a pipe", n->url);
	if (pipe2(out, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "node %s: cannot make a pipe", n->url);
	}
	c->errfd = memfd_create("plait-ssh-stderr", MFD_CLOEXEC);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	if (c->errfd >= 0)
		posix_spawn_file_actions_adddup2(&fa, c->errfd, STDERR_FILENO);
	int r = posix_spawnp(&c->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	c->to = in[1];
	c->from = out[0];
	if (r != 0) {
		c->pid = -1;
		return plait_error_set_errno(err, PLAIT_E_NOT_FOUND, r,
					     "node %s: cannot run '%s' (the ssh client; apt-get install openssh-client, "
					     "or set PLAIT_SSH_COMMAND)",
					     n->url, argv[0]);
	}
	return 0;
}

/* ssh's stderr so far, as one line. */
static char *conn_stderr(const struct conn *c)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	if (c->errfd >= 0) {
		off_t end = lseek(c->errfd, 0, SEEK_END);
		if (end > 0 && lseek(c->errfd, end > 4096 ? end - 4096 : 0, SEEK_SET) >= 0)
			(void)plait_buf_read_fd(&b, c->errfd, 4096);
	}
	char *m = plait_node_ssh_message(b.buf);
	plait_buf_release(&b);
	return m;
}

/* The process is waited for; a status other than 0 stays unsaid (the
 * protocol said how the job went). */
static void conn_close(struct conn *c, bool kill_it)
{
	if (c->to >= 0)
		close(c->to);
	c->to = -1;
	if (c->pid > 0) {
		if (kill_it)
			kill(c->pid, SIGTERM);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	c->pid = -1;
	if (c->from >= 0)
		close(c->from);
	if (c->errfd >= 0)
		close(c->errfd);
	c->from = c->errfd = -1;
}

static int conn_dropped(struct conn *c, const char *when, struct plait_error **err)
{
	/* ssh has said what it has to say once its stdout ended: wait for it */
	if (c->to >= 0)
		close(c->to);
	c->to = -1;
	int status = 0;
	if (c->pid > 0) {
		while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
			;
		c->pid = -1;
	}
	_cleanup_free_ char *msg = conn_stderr(c);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	plait_error_clear(err);
	return plait_error_set(err, PLAIT_E_NETWORK,
			       "node %s: the connection ended %s%s%s%s (ssh exit %d: %s)", c->n->url, when,
			       *c->last ? " (last event: " : "", c->last, *c->last ? ")" : "", code, msg);
}

/* Text from the node, for a terminal: control characters (but tabs) become '?'. */
static void printable(struct plait_buf *b, const char *text)
{
	for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++)
		plait_buf_addch(b, (*p < 0x20 && *p != '\t') || *p == 0x7f ? '?' : *p);
}

/* The next frame, which must be a control frame; an "error" from the node
 * becomes err with its message. 1 with *f filled, <0 on errors. */
static int conn_read(struct conn *c, struct plait_frame *f, const char *when, struct plait_error **err)
{
	int r = plait_frame_read(c->from, f, &c->nread, err);
	if (r == 0)
		return conn_dropped(c, when, err);
	if (r < 0)
		return plait_error_wrap(err, "node %s", c->n->url);
	const char *t = f->control ? json_string_value(json_object_get(f->control, "type")) : NULL;
	if (!t) {
		plait_frame_release(f);
		return plait_error_set(err, PLAIT_E_INVALID, "node %s: frame %zu: content where a message was expected",
				       c->n->url, c->nread);
	}
	if (streq(t, "error")) {
		const json_t *code = json_object_get(f->control, "code");
		int k = json_is_integer(code) && json_integer_value(code) > 0 ? (int)json_integer_value(code)
									     : PLAIT_E_GENERIC;
		/* what failed there is not this channel: --retry-jobs retries only a
		 * connection that dropped, never the node's own network errors */
		if (k == PLAIT_E_NETWORK)
			k = PLAIT_E_GENERIC;
		struct plait_buf m = PLAIT_BUF_INIT;
		printable(&m, json_string_value(json_object_get(f->control, "message")) ?: "failed");
		r = plait_error_set(err, k, "node %s: %s", c->n->url, m.buf ? m.buf : "failed");
		plait_buf_release(&m);
		plait_frame_release(f);
		return r;
	}
	return 1;
}

static bool is_type(const struct plait_frame *f, const char *t)
{
	return streq(json_string_value(json_object_get(f->control, "type")) ?: "", t);
}

/* Where a content the node asked for is read from. */
struct source {
	struct plait_context *ctx;
	json_t *list;
};

/* digest -> [source, entry] of the first file with that content (a hash table) */
static json_t *index_contents(const struct source *src, size_t n_src)
{
	json_t *by = json_object();
	for (size_t s = 0; s < n_src; s++)
		for (size_t i = 0; i < json_array_size(src[s].list); i++) {
			const json_t *e = json_array_get(src[s].list, i);
			const char *d = json_string_value(json_array_get(e, 7));
			if (d && streq(json_string_value(json_array_get(e, 1)) ?: "", "f") && !json_object_get(by, d))
				json_object_set_new(by, d, json_pack("[I, I]", (json_int_t)s, (json_int_t)i));
		}
	return by;
}

static int send_content(struct conn *c, const char *digest, const struct source *src, const json_t *by_digest,
			const char *df_digest, const struct plait_buf *df, struct plait_remote_job_stats *st,
			struct plait_error **err)
{
	if (streq(digest, df_digest)) {
		int fd = memfd_create("plait-dockerfile", MFD_CLOEXEC);
		if (fd < 0 || plait_write_all(fd, df->buf ? df->buf : "", df->len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
			if (fd >= 0)
				close(fd);
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot make a memory file");
		}
		int r = plait_node_blob_send(c->to, digest, (int64_t)df->len, fd, err);
		close(fd);
		st->bytes_sent += (int64_t)df->len;
		st->files_sent++;
		return r;
	}
	const json_t *at = json_object_get(by_digest, digest);
	if (!at)
		return plait_error_set(err, PLAIT_E_INVALID, "node %s: asked for %s, which this job does not have",
				       c->n->url, digest);
	size_t s = (size_t)json_integer_value(json_array_get(at, 0));
	const json_t *e = json_array_get(src[s].list, (size_t)json_integer_value(json_array_get(at, 1)));
	const char *path = json_string_value(json_array_get(e, 0));
	int64_t size = json_integer_value(json_array_get(e, 5));
	_cleanup_close_ int fd = -1;
	int r = plait_context_openat(src[s].ctx, path, O_RDONLY, false, &fd, err);
	struct stat sb;
	if (r >= 0 && (fstat(fd, &sb) < 0 || sb.st_size != size))
		r = plait_error_set(err, PLAIT_E_IO, "'%s' in build context '%s' changed while the build read it", path,
				    plait_context_path(src[s].ctx));
	if (r >= 0)
		r = plait_node_blob_send(c->to, digest, size, fd, err);
	st->bytes_sent += size;
	st->files_sent++;
	return r;
}

/* ctl ({"type","id",…}) with "size" added, then v's bytes, then an end
 * frame; v is wiped and released (it held a secret). */
static int send_wiped(struct conn *c, json_t *ctl, struct plait_buf *v, struct plait_error **err)
{
	json_object_set_new(ctl, "size", json_integer((json_int_t)v->len));
	int r = plait_frame_write_control(c->to, ctl, err);
	if (r >= 0 && v->len)
		r = plait_frame_write(c->to, PLAIT_FRAME_CONTENT, v->buf, v->len, err);
	if (r >= 0)
		r = plait_frame_write(c->to, PLAIT_FRAME_END, NULL, 0, err);
	if (v->buf)
		explicit_bzero(v->buf, v->len);
	plait_buf_release(v);
	json_decref(ctl);
	return r;
}

/* A --secret's value: read here, sent in frames, wiped; the node keeps it in memory. */
static int send_secret(struct conn *c, long id, const struct plait_build_secret *sec, struct plait_error **err)
{
	struct plait_buf v = PLAIT_BUF_INIT;
	int r = plait_buf_read_file(&v, sec->src, PLAIT_NODE_SECRET_MAX);
	if (r < 0) {
		if (v.buf)
			explicit_bzero(v.buf, v.len);
		plait_buf_release(&v);
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "--secret id=%s: cannot read it", sec->id);
	}
	return send_wiped(c, json_pack("{s:s, s:I, s:s}", "type", "secret", "id", (json_int_t)id, "name", sec->id), &v,
			  err);
}

/* A registry login for the node's push of this job. */
static int send_login(struct conn *c, long id, const struct plait_node_login *l, struct plait_error **err)
{
	struct plait_buf v = PLAIT_BUF_INIT;
	plait_node_login_payload(l, &v);
	return send_wiped(c, json_pack("{s:s, s:I, s:s}", "type", "login", "id", (json_int_t)id, "host", l->host), &v,
			  err);
}

static bool has_feature(const json_t *hello, const char *name)
{
	const json_t *f = json_object_get(hello, "features");
	for (size_t i = 0; i < json_array_size(f); i++)
		if (streq(json_string_value(json_array_get(f, i)) ?: "", name))
			return true;
	return false;
}

/* What the node says it pushed: every repository asked for, each once, with the bytes it sent. */
static int take_pushed(const struct plait_node *n, const json_t *result, const char *const *repos,
		       struct plait_remote_job_stats *st, struct plait_error **err)
{
	const json_t *pushed = json_object_get(result, "pushed");
	size_t want = plait_strv_length((char **)repos);
	if (!json_is_array(pushed) || json_array_size(pushed) != want)
		return plait_error_set(err, PLAIT_E_INVALID, "node %s: the result does not say where it pushed the image",
				       n->url);
	for (size_t i = 0; i < want; i++) {
		const json_t *e = json_array_get(pushed, i);
		const json_t *b = json_object_get(e, "bytes");
		if (!streq(json_string_value(json_object_get(e, "repository")) ?: "", repos[i]) || !json_is_integer(b) ||
		    json_integer_value(b) < 0)
			return plait_error_set(err, PLAIT_E_INVALID, "node %s: the result's push %zu is not to %s", n->url, i,
					       repos[i]);
		int64_t add = json_integer_value(b);
		st->bytes_pushed = add > INT64_MAX - st->bytes_pushed ? INT64_MAX : st->bytes_pushed + add;
	}
	st->pushed = true;
	return 0;
}

static void forward_event(struct conn *c, const json_t *o, const struct plait_build_opts *bo)
{
	struct plait_build_event ev = {
		.kind = (enum plait_build_event_kind)json_integer_value(json_object_get(o, "kind")),
		.step = (int)json_integer_value(json_object_get(o, "step")),
		.total = (int)json_integer_value(json_object_get(o, "total")),
		.text = json_string_value(json_object_get(o, "text")),
		.seconds = json_real_value(json_object_get(o, "seconds")),
	};
	if (ev.kind > PLAIT_BUILD_STEP_ERROR)
		return;
	/* the stage is named with the node, so the progress says where it runs */
	const char *stage = json_string_value(json_object_get(o, "stage"));
	struct plait_buf sb = PLAIT_BUF_INIT, tb = PLAIT_BUF_INIT;
	printable(&sb, stage);
	plait_buf_addf(&sb, " on %s", c->n->url);
	ev.stage = sb.buf;
	if (ev.text) {
		printable(&tb, ev.text);
		ev.text = tb.buf ? tb.buf : "";
	}
	if (ev.kind == PLAIT_BUILD_STEP_START && ev.text)
		snprintf(c->last, sizeof(c->last), "step %d: %s", ev.step, ev.text);
	if (bo->progress)
		bo->progress(&ev, bo->progress_ctx);
	plait_buf_release(&sb);
	plait_buf_release(&tb);
}

/* The result's materials and step records (for provenance), each checked. */
static int take_records(const struct plait_node *n, const json_t *result, struct plait_build_result *res,
			struct plait_error **err)
{
	const json_t *mats = json_object_get(result, "materials"), *steps = json_object_get(result, "step_records");
	const json_t *base = json_object_get(result, "base_material");
	if ((mats && !json_is_array(mats)) || (steps && !json_is_array(steps)) || (base && !json_is_integer(base)) ||
	    json_array_size(mats) > 100000 || json_array_size(steps) > 100000)
		return plait_error_set(err, PLAIT_E_INVALID, "node %s: the result's materials or steps are malformed", n->url);
	res->materials = xcalloc(json_array_size(mats) + 1, sizeof(*res->materials));
	for (size_t i = 0; i < json_array_size(mats); i++) {
		const json_t *m = json_array_get(mats, i);
		const char *ref = json_string_value(json_object_get(m, "ref"));
		const char *d = json_string_value(json_object_get(m, "digest"));
		if (!ref || !d || strlen(d) >= PLAIT_SHA256_DIGEST_SIZE)
			return plait_error_set(err, PLAIT_E_INVALID, "node %s: the result's material %zu is malformed",
					       n->url, i);
		struct plait_build_material *bm = &res->materials[res->n_materials++];
		bm->ref = xstrdup(ref);
		bm->resolved = xstrdup_or_null(json_string_value(json_object_get(m, "resolved")));
		bm->platform = xstrdup_or_null(json_string_value(json_object_get(m, "platform")));
		snprintf(bm->digest, sizeof(bm->digest), "%s", d);
	}
	json_int_t b = base ? json_integer_value(base) : 0;
	if (b < 0 || (size_t)b > res->n_materials)
		return plait_error_set(err, PLAIT_E_INVALID, "node %s: the result's base material is out of range", n->url);
	res->base_material = (size_t)b;
	res->step_records = xcalloc(json_array_size(steps) + 1, sizeof(*res->step_records));
	for (size_t i = 0; i < json_array_size(steps); i++) {
		const json_t *st = json_array_get(steps, i);
		const char *stage = json_string_value(json_object_get(st, "stage"));
		const char *text = json_string_value(json_object_get(st, "text"));
		if (!stage || !text)
			return plait_error_set(err, PLAIT_E_INVALID, "node %s: the result's step %zu is malformed", n->url, i);
		struct plait_build_step_record *sr = &res->step_records[res->n_step_records++];
		sr->stage = xstrdup(stage);
		sr->text = xstrdup(text);
		sr->cached = json_is_true(json_object_get(st, "cached"));
	}
	return 0;
}

/* The image is what the result says, and here: the manifest (its size,
 * media type), its config, every layer unless the node pushed them (then
 * *remote gets "LAYER REPO@MANIFEST" for each, REPO the first pushed to). */
static int check_image(const struct plait_node *n, const json_t *result, struct plait_store *local,
		       const char *pushed_to, char ***remote, struct plait_error **err)
{
	const json_t *m = json_object_get(result, "manifest");
	const char *md = json_string_value(json_object_get(m, "digest"));
	const char *mt = json_string_value(json_object_get(m, "mediaType"));
	const char *cd = json_string_value(json_object_get(result, "config_digest"));
	int64_t msize = json_integer_value(json_object_get(m, "size")), have = -1;
	if (!md || !plait_digest_is_sha256(md) || !mt || !cd)
		return plait_error_set(err, PLAIT_E_INVALID, "node %s: the result does not name its image", n->url);
	int r = plait_store_has(local, md, &have, err);
	if (r == 0 || (r > 0 && have != msize))
		return plait_error_set(err, PLAIT_E_INVALID, "node %s: the result's manifest %s did not come back whole",
				       n->url, md);
	if (r < 0)
		return r;
	struct plait_buf b = PLAIT_BUF_INIT;
	struct plait_manifest man = { 0 };
	r = plait_store_read_blob(local, md, 4 << 20, &b, err);
	if (r >= 0)
		r = plait_manifest_parse(b.buf, b.len, &man, err);
	if (r >= 0 && ((man.media_type && !streq(man.media_type, mt)) || !streq(man.config.digest, cd)))
		r = plait_error_set(err, PLAIT_E_INVALID, "node %s: the result's manifest %s is not the image it names",
				    n->url, md);
	for (size_t i = 0; r >= 0 && i <= man.n_layers; i++) {
		const struct plait_descriptor *d = i < man.n_layers ? &man.layers[i] : &man.config;
		if (i < man.n_layers && pushed_to) {
			struct plait_buf line = PLAIT_BUF_INIT;
			plait_buf_addf(&line, "%s %s@%s", d->digest, pushed_to, md);
			if (!plait_strv_contains(*remote, line.buf))
				plait_strv_push(remote, line.buf);
			plait_buf_release(&line);
			continue;
		}
		int64_t sz = -1;
		int h = plait_store_has(local, d->digest, &sz, err);
		if (h < 0)
			r = h;
		else if (!h || sz != d->size)
			r = plait_error_set(err, PLAIT_E_INVALID, "node %s: the image's blob %s did not come back", n->url,
					    d->digest);
	}
	plait_manifest_release(&man);
	plait_buf_release(&b);
	if (r < 0)
		plait_error_wrap(err, "node %s", n->url);
	return r;
}

/* Wait for the next frame, sending a cancel once when the build is interrupted. */
static int wait_frame(struct conn *c, const struct plait_build_opts *o, bool *cancel_sent, long id,
		      struct plait_error **err)
{
	for (;;) {
		struct pollfd p = { .fd = c->from, .events = POLLIN };
		int k = poll(&p, 1, 100);
		if (k < 0 && errno != EINTR)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "node %s: poll", c->n->url);
		if (k > 0)
			return 0;
		if (o->cancel && *o->cancel && !*cancel_sent) {
			json_auto_t *m = json_pack("{s:s, s:I}", "type", "cancel", "id", (json_int_t)id);
			(void)plait_frame_write_control(c->to, m, NULL);
			*cancel_sent = true;
		}
	}
}

/* Each --ssh agent forwarded to a socket of its own on the node (ssh -R
 * NODE_SOCKET:LOCAL_SOCKET; sshd makes it, the login user's, mode 0600):
 * *opts the ssh options, *sockets the node's paths, in o->ssh order. */
static int ssh_forwards(const struct plait_node *n, const struct plait_build_opts *o, char ***opts, char ***sockets,
			struct plait_error **err)
{
	unsigned char rnd[8];
	if (!o->n_ssh)
		return 0;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "node %s: --ssh: no random name for the agent socket",
					     n->url);
	char hex[2 * sizeof(rnd) + 1];
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	for (size_t i = 0; i < o->n_ssh; i++) {
		if (strpbrk(o->ssh[i].id, ",="))
			return plait_error_set(err, PLAIT_E_USAGE, "node %s: --ssh id '%s' has a ',' or '=': a node takes "
					       "ids without them", n->url, o->ssh[i].id);
		if (strchr(o->ssh[i].socket, ':'))
			return plait_error_set(err, PLAIT_E_USAGE,
					       "node %s: --ssh %s: the agent socket '%s' has a ':', which ssh -R cannot "
					       "forward: give one at another path",
					       n->url, o->ssh[i].id, o->ssh[i].socket);
		struct plait_buf p = PLAIT_BUF_INIT, f = PLAIT_BUF_INIT;
		plait_buf_addf(&p, "%s%s-%zu.sock", PLAIT_NODE_SSH_PREFIX, hex, i);
		plait_buf_addf(&f, "%s:%s", p.buf, o->ssh[i].socket);
		plait_strv_push(opts, "-R");
		plait_strv_push(opts, f.buf);
		plait_strv_push(sockets, p.buf);
		plait_buf_release(&p);
		plait_buf_release(&f);
	}
	return 0;
}

static int list_dir(const char *dir, const char *dockerfile, struct source *s, struct plait_error **err)
{
	int r = plait_context_open(dir, dockerfile, &s->ctx, err);
	if (r >= 0)
		r = plait_node_files_collect(s->ctx, &s->list, err);
	return r;
}

int plait_remote_job_run(const struct plait_remote_builder *b, const struct plait_node *n,
			 const struct plait_build_opts *o, const char *const *insecure_registries,
			 const struct plait_remote_push *push, struct plait_store *local, struct plait_build_result *res,
			 struct plait_remote_job_stats *stats, struct plait_error **err)
{
	struct plait_remote_job_stats st_local = { 0 };
	struct plait_remote_job_stats *st = stats ? stats : &st_local;
	*st = (struct plait_remote_job_stats){ 0 };
	size_t n_src = 1 + o->n_named_dirs;
	struct source *src = xcalloc(n_src + 1, sizeof(*src));
	struct plait_buf df = PLAIT_BUF_INIT;
	struct conn c = { .pid = -1, .to = -1, .from = -1, .errfd = -1 };
	struct plait_frame f = { 0 };
	bool cancel_sent = false, node_pushes = false;
	char **remote_blobs = NULL;
	static long next_id;
	long id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
	_cleanup_free_ char *dfpath = o->dockerfile ? xstrdup(o->dockerfile) : plait_path_join(o->context_dir, "Dockerfile");
	const char *dfname = strrchr(dfpath, '/') ? strrchr(dfpath, '/') + 1 : dfpath;
	char df_digest[PLAIT_SHA256_DIGEST_SIZE];

	int r = plait_buf_read_file(&df, dfpath, 16 << 20);
	if (r < 0)
		r = plait_error_set_errno(err, PLAIT_E_NOT_FOUND, -r, "cannot read the Dockerfile '%s'", dfpath);
	plait_sha256_buf(df.buf ? df.buf : "", df.len, df_digest);
	if (r >= 0)
		r = list_dir(o->context_dir, o->dockerfile, &src[0], err);
	json_t *named = json_array();
	for (size_t i = 0; r >= 0 && i < o->n_named_dirs; i++) {
		r = list_dir(o->named_dirs[i].dir, NULL, &src[1 + i], err);
		if (r >= 0)
			json_array_append_new(named, json_pack("{s:s, s:O}", "name", o->named_dirs[i].name, "files",
							       src[1 + i].list));
	}
	_cleanup_strv_free_ char **ssh_opts = NULL, **ssh_sockets = NULL;
	if (r >= 0)
		r = ssh_forwards(n, o, &ssh_opts, &ssh_sockets, err);
	if (r >= 0)
		r = conn_open(b, n, ssh_opts, &c, err);
	/* hello */
	if (r >= 0) {
		json_auto_t *hello = plait_node_hello();
		r = plait_frame_write_control(c.to, hello, err);
	}
	if (r >= 0 && (r = conn_read(&c, &f, "before its hello", err)) > 0) {
		if (!is_type(&f, "hello"))
			r = plait_error_set(err, PLAIT_E_INVALID, "node %s: 'plait serve' did not answer the hello", n->url);
		node_pushes = push && push->repositories && *push->repositories && has_feature(f.control, "push");
		if (r >= 0 && o->n_ssh && !has_feature(f.control, "ssh"))
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "node %s: its plait takes no --ssh agents (install this plait's version there, or "
					    "build this job with --builder local)",
					    n->url);
		plait_frame_release(&f);
	}
	/* the job, the contents it needs, start */
	if (r >= 0) {
		json_incref(src[0].list);
		json_auto_t *job = plait_node_job_to_json(id, o, insecure_registries,
							  node_pushes ? push->repositories : NULL,
							  (const char *const *)ssh_sockets, dfname, df_digest,
							  (int64_t)df.len, src[0].list, json_incref(named));
		r = plait_frame_write_control(c.to, job, err);
	}
	if (r >= 0 && (r = conn_read(&c, &f, "before it said what it needs", err)) > 0) {
		const json_t *need = json_object_get(f.control, "digests");
		if (!is_type(&f, "need") || !json_is_array(need))
			r = plait_error_set(err, PLAIT_E_INVALID, "node %s: a need was expected", n->url);
		json_auto_t *by_digest = index_contents(src, n_src);
		for (size_t i = 0; r >= 0 && i < json_array_size(need); i++)
			r = send_content(&c, json_string_value(json_array_get(need, i)) ?: "", src, by_digest, df_digest,
					 &df, st, err);
		plait_frame_release(&f);
	}
	for (size_t i = 0; r >= 0 && i < o->n_secrets; i++)
		r = send_secret(&c, id, &o->secrets[i], err);
	for (size_t i = 0; r >= 0 && node_pushes && i < push->n_logins; i++)
		r = send_login(&c, id, &push->logins[i], err);
	if (r >= 0) {
		json_auto_t *start = json_pack("{s:s, s:I}", "type", "start", "id", (json_int_t)id);
		r = plait_frame_write_control(c.to, start, err);
	}
	/* events until the result */
	json_t *result = NULL;
	while (r >= 0 && !result) {
		r = wait_frame(&c, o, &cancel_sent, id, err);
		if (r >= 0)
			r = conn_read(&c, &f, "during the build", err);
		if (r < 0)
			break;
		if (is_type(&f, "event"))
			forward_event(&c, f.control, o);
		else if (is_type(&f, "result"))
			result = json_incref(f.control);
		else
			r = plait_error_set(err, PLAIT_E_INVALID, "node %s: frame %zu: unexpected '%s'", n->url, c.nread,
					    json_string_value(json_object_get(f.control, "type")));
		plait_frame_release(&f);
	}
	if (r < 0 && cancel_sent) {
		plait_error_clear(err);
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted (the job on node %s was stopped)", n->url);
	}
	/* the blobs this side lacks, each asked for once, bounded by the size
	 * the result lists for it */
	json_auto_t *fetch = json_array();
	json_auto_t *sizes = json_object(); /* digest -> listed size, of those asked for */
	const json_t *blobs = result ? json_object_get(result, "blobs") : NULL;
	if (result && (!json_is_array(blobs) || json_array_size(blobs) > 100000))
		r = plait_error_set(err, PLAIT_E_INVALID, "node %s: the result lists no blobs", n->url);
	for (size_t i = 0; r >= 0 && i < json_array_size(blobs); i++) {
		const json_t *bj = json_array_get(blobs, i);
		const char *d = json_string_value(json_object_get(bj, "digest"));
		const json_t *sz = json_object_get(bj, "size");
		if (!d || !plait_digest_is_sha256(d) || !json_is_integer(sz) || json_integer_value(sz) < 0) {
			r = plait_error_set(err, PLAIT_E_INVALID, "node %s: the result's blob %zu has no digest and size",
					    n->url, i);
			break;
		}
		r = plait_store_has(local, d, NULL, err);
		if (r == 0 && !json_object_get(sizes, d)) {
			json_array_append_new(fetch, json_string(d));
			json_object_set_new(sizes, d, json_integer(json_integer_value(sz)));
		}
	}
	if (r >= 0 && result) {
		json_auto_t *m = json_pack("{s:s, s:I, s:O}", "type", "fetch", "id", (json_int_t)id, "digests", fetch);
		r = plait_frame_write_control(c.to, m, err);
	}
	while (r >= 0 && result) {
		r = conn_read(&c, &f, "while the result came back", err);
		if (r < 0)
			break;
		bool done = is_type(&f, "fetched");
		if (is_type(&f, "blob")) {
			const char *d = json_string_value(json_object_get(f.control, "digest"));
			json_t *want = d ? json_object_get(sizes, d) : NULL;
			r = want ? plait_node_blob_receive(c.from, f.control, local, json_integer_value(want), &c.nread, err)
				 : plait_error_set(err, PLAIT_E_INVALID, "node %s: sent a blob not asked for (or twice)", n->url);
			if (r >= 0) {
				st->bytes_fetched += json_integer_value(want);
				json_object_del(sizes, d); /* received: a second copy is refused */
			}
		} else if (!done) {
			r = plait_error_set(err, PLAIT_E_INVALID, "node %s: frame %zu: a blob was expected", n->url, c.nread);
		}
		plait_frame_release(&f);
		if (done)
			break;
	}
	if (r >= 0 && json_object_size(sizes))
		r = plait_error_set(err, PLAIT_E_INVALID, "node %s: %zu of the blobs asked for did not come back", n->url,
				    json_object_size(sizes));
	/* the image is what the result says, and all here: the manifest (its
	 * size, media type), its config, every layer */
	if (r >= 0 && result && node_pushes)
		r = take_pushed(n, result, push->repositories, st, err);
	if (r >= 0 && result)
		r = check_image(n, result, local, node_pushes ? push->repositories[0] : NULL, &remote_blobs, err);
	/* what plait_build would say */
	if (r >= 0) {
		const json_t *m = json_object_get(result, "manifest");
		const char *mt = json_string_value(json_object_get(m, "mediaType"));
		const char *md = json_string_value(json_object_get(m, "digest"));
		const char *cd = json_string_value(json_object_get(result, "config_digest"));
		const char *dd = json_string_value(json_object_get(result, "dockerfile_digest"));
		if (!mt || !md || !plait_digest_is_sha256(md) || !cd || !plait_digest_is_sha256(cd) || !dd ||
		    strlen(dd) >= PLAIT_SHA256_DIGEST_SIZE) {
			r = plait_error_set(err, PLAIT_E_INVALID, "node %s: the result does not name its image", n->url);
		} else {
			*res = (struct plait_build_result){ .lock_fd = -1 };
			res->manifest.media_type = xstrdup(mt);
			snprintf(res->manifest.digest, sizeof(res->manifest.digest), "%s", md);
			res->manifest.size = json_integer_value(json_object_get(m, "size"));
			snprintf(res->config_digest, sizeof(res->config_digest), "%s", cd);
			snprintf(res->dockerfile_digest, sizeof(res->dockerfile_digest), "%s", dd);
			res->size = json_integer_value(json_object_get(result, "size"));
			res->steps = (int)json_integer_value(json_object_get(result, "steps"));
			res->cached = (int)json_integer_value(json_object_get(result, "cached"));
			r = take_records(c.n, result, res, err);
			res->remote_blobs = TAKE_PTR(remote_blobs);
		}
	}
	if (r < 0 && *err && (*err)->errnum == EPIPE && c.pid > 0)
		r = conn_dropped(&c, "while plait sent to it", err);
	else if (r < 0 && *err && !startswith((*err)->msg, "node ") && (*err)->code != PLAIT_E_CANCELLED)
		plait_error_wrap(err, "node %s", n->url);
	if (c.to >= 0 && r >= 0) {
		json_auto_t *bye = json_pack("{s:s}", "type", "bye");
		(void)plait_frame_write_control(c.to, bye, NULL);
	}
	conn_close(&c, r < 0);
	plait_strv_free(remote_blobs);
	json_decref(result);
	json_decref(named);
	for (size_t i = 0; i < n_src; i++) {
		plait_context_free(src[i].ctx);
		json_decref(src[i].list);
	}
	free(src);
	plait_buf_release(&df);
	return r < 0 ? r : 0;
}
