/* core/build.c - the build executor (see build.h): stages, steps, the step
 * cache, and the image it ends with. */
#include <ctype.h>
#include <errno.h>
#include <strings.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <dirent.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "build-internal.h"
#include "copy.h"
#include "dockerfile.h"
#include "expand.h"
#include "snapshot.h"
#include "unpack.h"
#include "banned.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* Where a RUN heredoc with "#!" is bound as a script. BuildKit uses
 * /dev/pipes/, but the sandbox's /dev is its own tmpfs, made after the
 * mount targets: a top-level name the sandbox removes again afterwards. */
#define HEREDOC_DIR "/.plait-heredoc-"

/* Build args that are visible to RUN without an ARG line, as in BuildKit. */
static const char *const proxy_args[] = {
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
	"ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};

struct layer_ref {
	struct plait_descriptor desc; /* the blob */
	char diff_id[PLAIT_SHA256_DIGEST_SIZE];
	char *dir; /* unpacked, overlay form */
};

struct stage {
	const struct plait_df_stage *df;
	char *label; /* name or index, for messages */
	bool needed, built;
	struct plait_image_config cfg;
	struct layer_ref *layers;
	size_t n_layers;
	char key[PLAIT_SHA256_DIGEST_SIZE]; /* cache chain */
	struct plait_map args;              /* ARGs in scope */
	bool cmd_set;                       /* CMD given in this stage */
	/* When the newest layer of this state was made: metadata steps and the
	 * image take it, so an unchanged rebuild gives the same digest. */
	char *last_created;
	/* The platform its RUN steps execute for: FROM --platform's, else the
	 * target's. In the RUN key instead of the target platform, so a
	 * FROM --platform=$BUILDPLATFORM stage is the same step for every target. */
	char *run_platform;
};

struct builder {
	const struct plait_build_opts *o;
	struct plait_dockerfile df;
	struct plait_context *ctx;
	char *cache, *layers_dir, *steps_dir, *mounts_dir, *work_dir;
	struct plait_store *store;
	int lockfd;
	int step_lock;   /* the step being run, see lock_step() */
	char *step_lock_path;
	struct stage *stages;
	size_t n_stages;
	struct plait_map build_args; /* --build-arg */
	struct plait_map meta;       /* global ARGs and automatic args, for FROM */
	int step, total, cached;
	/* for a failing RUN: its last output lines */
	char *tail[8];
	size_t n_tail;
	struct stage *cur;
};

/* ------------------------------------------------------------ helpers */

static char *join(const char *a, const char *b)
{
	struct plait_buf x = PLAIT_BUF_INIT;
	plait_buf_addf(&x, "%s/%s", a, b);
	return plait_buf_detach(&x, NULL);
}

static void emit(struct builder *b, enum plait_build_event_kind kind, const char *text, double secs)
{
	if (!b->o->progress)
		return;
	struct plait_build_event ev = { .kind = kind,
					.step = b->step,
					.total = b->total,
					.stage = b->cur ? b->cur->label : "",
					.text = text,
					.seconds = secs };
	b->o->progress(&ev, b->o->progress_ctx);
}

static bool cancelled(const struct builder *b)
{
	return b->o->cancel && *b->o->cancel;
}

/* "Dockerfile:12" for messages. */
static void where(const struct builder *b, const struct plait_df_instr *in, struct plait_buf *out)
{
	plait_buf_addf(out, "%s:%d", b->df.filename, in->line);
}

static int instr_error(const struct builder *b, const struct plait_df_instr *in, int code,
		       struct plait_error **err, const char *fmt, ...) _printf_(5, 6);
static int instr_error(const struct builder *b, const struct plait_df_instr *in, int code,
		       struct plait_error **err, const char *fmt, ...)
{
	struct plait_buf m = PLAIT_BUF_INIT;
	where(b, in, &m);
	plait_buf_adds(&m, ": ");
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&m, fmt, ap);
	va_end(ap);
	int r = plait_error_set(err, code, "%s", m.buf);
	plait_buf_release(&m);
	return r;
}

static void now_rfc3339(const struct builder *b, struct plait_buf *out)
{
	time_t t = b->o->have_epoch ? (time_t)b->o->source_date_epoch : time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	char s[40];
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
	plait_buf_adds(out, s);
}

static int mkdir_p(const char *path)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, path);
	for (char *p = b.buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(b.buf, 0755) < 0 && errno != EEXIST) {
			int r = -errno;
			plait_buf_release(&b);
			return r;
		}
		*p = '/';
	}
	int r = mkdir(b.buf, 0755) < 0 && errno != EEXIST ? -errno : 0;
	plait_buf_release(&b);
	return r;
}

/* env "K=V" list helpers */
static const char *env_get(char **env, const char *key)
{
	size_t n = strlen(key);
	for (char **p = env; p && *p; p++)
		if (strncmp(*p, key, n) == 0 && (*p)[n] == '=')
			return *p + n + 1;
	return NULL;
}

static void env_set(char ***envp, const char *key, const char *value)
{
	size_t n = strlen(key), count = 0;
	char **env = *envp;
	struct plait_buf kv = PLAIT_BUF_INIT;
	plait_buf_addf(&kv, "%s=%s", key, value);
	for (; env && env[count]; count++) {
		if (strncmp(env[count], key, n) == 0 && env[count][n] == '=') {
			free(env[count]);
			env[count] = plait_buf_detach(&kv, NULL);
			return;
		}
	}
	env = xrealloc(env, (count + 2) * sizeof(char *));
	env[count] = plait_buf_detach(&kv, NULL);
	env[count + 1] = NULL;
	*envp = env;
}

static char **strv_dup(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **r = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		r[i] = xstrdup(v[i]);
	return r;
}

/* The SHELL in effect: the image's, or /bin/sh -c. */
static char *const *shell_of(const struct stage *st)
{
	static char *const default_shell[] = { (char *)"/bin/sh", (char *)"-c", NULL };
	return st->cfg.config.shell ? st->cfg.config.shell : default_shell;
}

/* ------------------------------------------------------------ variables */

struct lookup_ctx {
	struct builder *b;
	struct stage *st; /* NULL: the global scope (FROM lines) */
};

static const char *lookup(const char *name, void *ud)
{
	struct lookup_ctx *l = ud;
	if (!l->st)
		return plait_map_get(&l->b->meta, name);
	/* ENV wins over ARG of the same name (Dockerfile reference). */
	const char *v = env_get(l->st->cfg.config.env, name);
	return v ? v : plait_map_get(&l->st->args, name);
}

static int expand_word(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		       const char *text, char **out, struct plait_error **err)
{
	struct plait_expand_opts eo;
	plait_expand_opts_for(&eo, &b->df, in);
	struct lookup_ctx l = { b, st };
	return plait_expand_word(text, &eo, lookup, &l, out, err);
}

/* ------------------------------------------------------------ cache dir */

char *plait_build_default_cache_dir(void)
{
	const char *x = getenv("XDG_CACHE_HOME");
	if (x && *x)
		return join(x, "plait");
	const char *home = getenv("HOME");
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/.cache/plait", home && *home ? home : "/root");
	return plait_buf_detach(&b, NULL);
}

char *plait_build_cache_store(const char *cache_dir)
{
	return join(cache_dir, "store");
}

static void clean_work_dir(const char *work)
{
	DIR *d = opendir(work);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *p = join(work, de->d_name);
		_cleanup_free_ char *root = join(p, "root");
		(void)umount2(root, MNT_DETACH); /* a snapshot's overlay, if still mounted */
		(void)plait_remove_tree(p);
	}
	closedir(d);
}

static int open_cache(struct builder *b, struct plait_error **err)
{
	b->cache = b->o->cache_dir ? xstrdup(b->o->cache_dir) : plait_build_default_cache_dir();
	b->layers_dir = join(b->cache, "layers");
	b->steps_dir = join(b->cache, "steps");
	b->mounts_dir = join(b->cache, "mounts");
	b->work_dir = join(b->cache, "work");
	const char *dirs[] = { b->cache, b->layers_dir, b->steps_dir, b->mounts_dir, b->work_dir };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int r = mkdir_p(dirs[i]);
		if (r < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, r,
						     "cannot create cache directory '%s'", dirs[i]);
		/* each layer, snapshot and mount below is a tree of its own */
		if (dirs[i] != b->steps_dir)
			plait_hint_unrelated_subdirs(dirs[i]);
	}
	_cleanup_free_ char *lock = join(b->cache, "lock");
	b->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (b->lockfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s'", lock);
	/* Alone on the cache: what a crashed build left in work/ (mounted
	 * snapshots, temporary files) belongs to nobody and goes. */
	if (flock(b->lockfd, LOCK_EX | LOCK_NB) == 0)
		clean_work_dir(b->work_dir);
	/* Builds share the cache; `plait cache prune` takes it exclusively. */
	if (flock(b->lockfd, LOCK_SH) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot lock '%s'", lock);
	_cleanup_free_ char *sp = plait_build_cache_store(b->cache);
	return plait_store_open(sp, true, &b->store, err);
}

/* Make sure the layer blob d (diff_id) is unpacked as an overlay lower. */
static int ensure_layer_dir(struct builder *b, struct layer_ref *l, struct plait_error **err)
{
	l->dir = join(b->layers_dir, plait_digest_hex(l->diff_id));
	struct stat st;
	if (stat(l->dir, &st) == 0) {
		utimensat(AT_FDCWD, l->dir, NULL, 0); /* a use: cache prune is LRU on mtime */
		return 0;
	}
	_cleanup_free_ char *tmp = NULL;
	struct plait_buf t = PLAIT_BUF_INIT;
	plait_buf_addf(&t, "%s/.tmp-%s-XXXXXX", b->layers_dir, plait_digest_hex(l->diff_id) + 56);
	tmp = plait_buf_detach(&t, NULL);
	if (!mkdtemp(tmp))
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot create '%s'", tmp);
	struct plait_unpack_options uo = { .mode = PLAIT_UNPACK_OVERLAY,
					   .media_type = l->desc.media_type,
					   .diff_id = l->diff_id,
					   .digest = l->desc.digest };
	int r = plait_unpack_blob(b->store, l->desc.digest, tmp, &uo, NULL, err);
	if (r < 0) {
		plait_remove_tree(tmp);
		return r;
	}
	if (rename(tmp, l->dir) < 0) {
		int e = errno;
		plait_remove_tree(tmp);
		/* another build unpacked it first */
		if (e != EEXIST && e != ENOTEMPTY)
			return plait_error_set_errno(err, PLAIT_E_IO, e, "cannot rename '%s'", tmp);
	}
	return 0;
}

/* Step records: <cache>/steps/<key hex> holds the layer a step produced. */
static int record_step(struct builder *b, const char *key, const struct layer_ref *l, bool empty,
		       const char *created)
{
	json_auto_t *o = json_object();
	json_object_set_new(o, "created", json_string(created));
	if (empty) {
		json_object_set_new(o, "empty", json_true());
	} else {
		json_object_set_new(o, "mediaType", json_string(l->desc.media_type));
		json_object_set_new(o, "digest", json_string(l->desc.digest));
		json_object_set_new(o, "size", json_integer(l->desc.size));
		json_object_set_new(o, "diffID", json_string(l->diff_id));
	}
	_cleanup_free_ char *path = join(b->steps_dir, plait_digest_hex(key));
	_cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
	return text ? plait_replace_file(path, text, strlen(text)) : -ENOMEM;
}

/* 1 and *l filled (or *empty), *created (caller frees) on a hit, 0 on a miss. */
static int lookup_step(struct builder *b, const char *key, struct layer_ref *l, bool *empty,
		       char **created)
{
	_cleanup_free_ char *path = join(b->steps_dir, plait_digest_hex(key));
	json_auto_t *o = json_load_file(path, 0, NULL);
	if (!o)
		return 0;
	const char *c = json_string_value(json_object_get(o, "created"));
	if (!c)
		return 0;
	*empty = json_is_true(json_object_get(o, "empty"));
	*created = xstrdup(c);
	if (*empty)
		return 1;
	const char *mt = json_string_value(json_object_get(o, "mediaType"));
	const char *dg = json_string_value(json_object_get(o, "digest"));
	const char *di = json_string_value(json_object_get(o, "diffID"));
	json_int_t sz = json_integer_value(json_object_get(o, "size"));
	if (!mt || !dg || !di || plait_digest_validate(dg, NULL) < 0 || !plait_digest_is_sha256(di)) {
		free(*created);
		*created = NULL;
		return 0;
	}
	if (plait_store_has(b->store, dg, NULL, NULL) != 1) {
		free(*created);
		*created = NULL;
		return 0; /* pruned */
	}
	utimensat(AT_FDCWD, path, NULL, 0); /* a hit is a use: cache prune is LRU on mtime */
	memset(l, 0, sizeof(*l));
	l->desc.media_type = xstrdup(mt);
	memcpy(l->desc.digest, dg, strlen(dg) + 1);
	l->desc.size = sz;
	memcpy(l->diff_id, di, PLAIT_SHA256_DIGEST_SIZE);
	return 1;
}

/* ------------------------------------------------------------ stage state */

static void layer_ref_release(struct layer_ref *l)
{
	plait_descriptor_release(&l->desc);
	free(l->dir);
}

static void stage_add_layer(struct stage *st, struct layer_ref *l)
{
	st->layers = xrealloc(st->layers, (st->n_layers + 1) * sizeof(*st->layers));
	st->layers[st->n_layers++] = *l;
	memset(l, 0, sizeof(*l));
	plait_strv_push(&st->cfg.diff_ids, st->layers[st->n_layers - 1].diff_id);
}

/* created NULL: the time of the newest layer (metadata steps), else now. */
static void stage_add_history(struct builder *b, struct stage *st, const char *created_by, bool empty,
			      const char *created)
{
	struct plait_buf when = PLAIT_BUF_INIT;
	if (b->o->have_epoch || (!created && !st->last_created))
		now_rfc3339(b, &when);
	else
		plait_buf_adds(&when, created ? created : st->last_created);
	if (created && !b->o->have_epoch) {
		free(st->last_created);
		st->last_created = xstrdup(created);
	}
	st->cfg.history = xrealloc(st->cfg.history, (st->cfg.n_history + 1) * sizeof(*st->cfg.history));
	struct plait_history *h = &st->cfg.history[st->cfg.n_history++];
	memset(h, 0, sizeof(*h));
	h->created = plait_buf_detach(&when, NULL);
	h->created_by = xstrdup(created_by);
	h->comment = xstrdup("buildkit.dockerfile.v0");
	h->empty_layer = empty;
}

/* The key of a state: what came before and what this step is. */
static void chain_key(const char *parent, const struct plait_buf *step, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "plait-step-v1\n%s\n", parent);
	plait_buf_add(&b, step->buf, step->len);
	plait_sha256_buf(b.buf, b.len, out);
	plait_buf_release(&b);
}

/* What shapes every layer of a chain: part of the key at its root, so a layer
 * made with one epoch or compression is never reused for another. */
static void layer_settings(const struct builder *b, struct plait_buf *k)
{
	plait_buf_addf(k, "compression %d\n", (int)b->o->compression);
	if (b->o->have_epoch)
		plait_buf_addf(k, "epoch %lld\n", (long long)b->o->source_date_epoch);
}

static const char *const *lowers_of(const struct stage *st, const char ***buf)
{
	*buf = xcalloc(st->n_layers + 1, sizeof(char *));
	for (size_t i = 0; i < st->n_layers; i++)
		(*buf)[i] = st->layers[i].dir;
	return *buf;
}

static void unlock_step(struct builder *b);

/* Turn the snapshot's change into a layer of st (or an empty history entry). */
static int commit_change(struct builder *b, struct stage *st, struct plait_snapshot *snap,
			 const char *key, const char *created_by, struct plait_error **err)
{
	struct plait_layer_options lo = { .compression = b->o->compression,
					  .clamp_mtime = b->o->have_epoch,
					  .source_date_epoch = b->o->source_date_epoch };
	struct plait_layer out;
	int r;
	if (plait_snapshot_upper(snap)) {
		r = plait_layer_from_overlay(b->store, plait_snapshot_upper(snap), &lo, &out, err);
	} else {
		struct plait_change_list cl = PLAIT_CHANGE_LIST_INIT;
		r = plait_snapshot_changes(snap, &cl, err);
		struct plait_layer_change *lc = xcalloc(cl.n + 1, sizeof(*lc));
		for (size_t i = 0; i < cl.n; i++) {
			lc[i].path = cl.items[i].path;
			lc[i].kind = cl.items[i].kind == PLAIT_CHANGE_DELETE ? PLAIT_LAYER_CHANGE_DELETE
									    : PLAIT_LAYER_CHANGE_ADD;
		}
		if (r >= 0)
			r = plait_layer_from_changes(b->store, plait_snapshot_root(snap), lc, cl.n, &lo,
						     &out, err);
		free(lc);
		plait_change_list_release(&cl);
	}
	if (r < 0)
		return r;
	bool empty = out.n_entries == 0;
	struct layer_ref l = { 0 };
	if (!empty) {
		l.desc.media_type = xstrdup(out.media_type);
		memcpy(l.desc.digest, out.digest, sizeof(out.digest));
		l.desc.size = out.size;
		memcpy(l.diff_id, out.diff_id, sizeof(out.diff_id));
		/* The overlay upper already is this layer in lower form: keep it
		 * rather than unpack the blob just written. */
		if (plait_snapshot_upper(snap)) {
			_cleanup_free_ char *dir = join(b->layers_dir, plait_digest_hex(l.diff_id));
			struct stat sst;
			if (stat(dir, &sst) < 0)
				(void)plait_snapshot_take_upper(snap, dir, NULL);
		}
		r = ensure_layer_dir(b, &l, err);
		if (r < 0) {
			layer_ref_release(&l);
			return r;
		}
	}
	struct plait_buf when = PLAIT_BUF_INIT;
	now_rfc3339(b, &when);
	record_step(b, key, &l, empty, when.buf);
	unlock_step(b); /* others waiting for this step find the record now */
	if (!empty)
		stage_add_layer(st, &l);
	stage_add_history(b, st, created_by, empty, when.buf);
	plait_buf_release(&when);
	memcpy(st->key, key, PLAIT_SHA256_DIGEST_SIZE);
	return 0;
}

/* A cache hit: take the recorded layer. */
static int apply_hit(struct builder *b, struct stage *st, const char *key, struct layer_ref *l,
		     bool empty, const char *created, const char *created_by, struct plait_error **err)
{
	if (!empty) {
		int r = ensure_layer_dir(b, l, err);
		if (r < 0)
			return r;
		stage_add_layer(st, l);
	}
	stage_add_history(b, st, created_by, empty, created);
	memcpy(st->key, key, PLAIT_SHA256_DIGEST_SIZE);
	b->cached++;
	emit(b, PLAIT_BUILD_STEP_CACHED, NULL, 0);
	return 0;
}

static void stage_release(struct stage *st)
{
	plait_image_config_release(&st->cfg);
	for (size_t j = 0; j < st->n_layers; j++)
		layer_ref_release(&st->layers[j]);
	free(st->layers);
	plait_map_release(&st->args);
	free(st->label);
	free(st->last_created);
	free(st->run_platform);
}

/* Look the step with key k up and, on a hit, take its recorded layer: 1 hit,
 * 0 miss (or --no-cache), <0 error. */
static void unlock_step(struct builder *b)
{
	if (b->step_lock < 0)
		return;
	/* Unlinked before it is unlocked: a build that still waits on it finds
	 * the record (or, after a failure, runs the step itself). */
	unlink(b->step_lock_path);
	close(b->step_lock);
	b->step_lock = -1;
	free(b->step_lock_path);
	b->step_lock_path = NULL;
}

/* An exclusive flock on fd: 1 when taken, 0 when busy and !wait; with wait,
 * the wait polls (a signal handler only sets the cancel flag) and ends with
 * -PLAIT_E_CANCELLED when the build is cancelled. */
static int lock_exclusive(struct builder *b, int fd, bool wait, struct plait_error **err)
{
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (!wait)
			return 0;
		if (cancelled(b))
			return plait_error_set(err, PLAIT_E_CANCELLED, "interrupted");
		usleep(20 * 1000);
	}
	return 1;
}

/* Jobs that run in parallel (the platforms of one build, or other plait
 * processes on the same cache) often reach the same step: typically a
 * FROM --platform=$BUILDPLATFORM stage. The first takes the step's lock and
 * runs it; the others wait here and then take its result from the cache, so
 * the step runs once. The lock is held until the next step or the end. */
static int lock_step(struct builder *b, const char *key, struct plait_error **err)
{
	unlock_step(b);
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s.lock", b->work_dir, plait_digest_hex(key));
	for (;;) {
		int fd = open(p.buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			int r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s'", p.buf);
			plait_buf_release(&p);
			return r;
		}
		int r = lock_exclusive(b, fd, true, err);
		if (r < 0) {
			close(fd);
			plait_buf_release(&p);
			return r;
		}
		/* Still the file at that name? (its holder unlinks it when done) */
		struct stat a, c;
		if (fstat(fd, &a) == 0 && stat(p.buf, &c) == 0 && a.st_ino == c.st_ino && a.st_dev == c.st_dev) {
			b->step_lock = fd;
			b->step_lock_path = plait_buf_detach(&p, NULL);
			return 0;
		}
		close(fd);
	}
}

static int use_cached_step(struct builder *b, struct stage *st, const char *k, const char *created_by,
			   struct plait_error **err)
{
	struct layer_ref hit = { 0 };
	bool empty = false;
	char *created = NULL;
	unlock_step(b);
	if (b->o->no_cache)
		return 0;
	if (lookup_step(b, k, &hit, &empty, &created) != 1) {
		int r = lock_step(b, k, err);
		if (r < 0)
			return r;
		if (lookup_step(b, k, &hit, &empty, &created) != 1)
			return 0; /* ours to run, under the lock */
		unlock_step(b);
	}
	int r = apply_hit(b, st, k, &hit, empty, created, created_by, err);
	free(created);
	layer_ref_release(&hit);
	return r < 0 ? r : 1;
}

/* ------------------------------------------------------------ FROM */

static const char *named_dir(const struct builder *b, const char *name)
{
	for (size_t i = 0; i < b->o->n_named_dirs; i++)
		if (streq(b->o->named_dirs[i].name, name))
			return b->o->named_dirs[i].dir;
	return NULL;
}

static struct stage *find_stage(struct builder *b, const char *name, size_t before)
{
	const struct plait_df_stage *s = plait_dockerfile_find_stage(&b->df, name);
	if (!s || s->index >= before)
		return NULL;
	return &b->stages[s->index];
}

static void stage_copy_state(struct stage *dst, const struct stage *src)
{
	plait_image_config_release(&dst->cfg);
	/* A round trip through JSON is the simplest deep copy of a config. */
	struct plait_buf j = PLAIT_BUF_INIT;
	if (plait_image_config_serialise(&src->cfg, &j, NULL) >= 0)
		plait_image_config_parse(j.buf, j.len, &dst->cfg, NULL);
	plait_buf_release(&j);
	dst->layers = xcalloc(src->n_layers + 1, sizeof(*dst->layers));
	for (size_t i = 0; i < src->n_layers; i++) {
		plait_descriptor_copy(&dst->layers[i].desc, &src->layers[i].desc);
		memcpy(dst->layers[i].diff_id, src->layers[i].diff_id, PLAIT_SHA256_DIGEST_SIZE);
		dst->layers[i].dir = xstrdup(src->layers[i].dir);
	}
	dst->n_layers = src->n_layers;
	memcpy(dst->key, src->key, sizeof(dst->key));
	free(dst->last_created);
	dst->last_created = xstrdup_or_null(src->last_created);
	free(dst->run_platform);
	dst->run_platform = xstrdup_or_null(src->run_platform);
}

static int from_image(struct builder *b, struct stage *st, const char *ref, const char *platform,
		      struct plait_error **err)
{
	struct plait_endpoint *ep = NULL, *cache_ep = NULL;
	struct plait_descriptor man = { 0 };
	struct plait_buf bytes = PLAIT_BUF_INIT, cbuf = PLAIT_BUF_INIT;
	struct plait_manifest m = { 0 };
	_cleanup_free_ char *sp = plait_build_cache_store(b->cache);
	int r = b->o->resolver->resolve(b->o->resolver->ctx, ref, platform, &ep, &man, &bytes, err);
	if (r < 0)
		goto out;
	/* Pull into the cache store (blobs it has are skipped). */
	struct plait_store *cs = NULL;
	r = plait_store_open(sp, true, &cs, err);
	if (r < 0)
		goto out;
	cache_ep = plait_layout_endpoint_new(cs, sp, sp, NULL);
	struct plait_copy_opts co = { .cancel = b->o->cancel };
	r = plait_copy_image(ep, cache_ep, &man, bytes.buf, bytes.len, NULL, &co, NULL, err);
	if (r < 0) {
		plait_error_wrap(err, "pull %s", ref);
		goto out;
	}
	r = plait_manifest_parse(bytes.buf, bytes.len, &m, err);
	if (r >= 0)
		r = plait_store_read_blob(b->store, m.config.digest, PLAIT_MANIFEST_MAX, &cbuf, err);
	if (r >= 0)
		r = plait_image_config_parse(cbuf.buf, cbuf.len, &st->cfg, err);
	if (r < 0) {
		plait_error_wrap(err, "base image %s", ref);
		goto out;
	}
	size_t n_diff = 0;
	while (st->cfg.diff_ids && st->cfg.diff_ids[n_diff])
		n_diff++;
	if (n_diff != m.n_layers) {
		r = plait_error_set(err, PLAIT_E_INVALID, "base image %s: %zu layers but %zu diff_ids", ref,
				    m.n_layers, n_diff);
		goto out;
	}
	st->layers = xcalloc(m.n_layers + 1, sizeof(*st->layers));
	for (size_t i = 0; i < m.n_layers && r >= 0; i++) {
		struct layer_ref *l = &st->layers[st->n_layers++];
		plait_descriptor_copy(&l->desc, &m.layers[i]);
		memcpy(l->diff_id, st->cfg.diff_ids[i], PLAIT_SHA256_DIGEST_SIZE);
		r = ensure_layer_dir(b, l, err);
	}
	if (r < 0) {
		plait_error_wrap(err, "base image %s", ref);
		goto out;
	}
	free(st->last_created);
	st->last_created = xstrdup_or_null(st->cfg.created);
	struct plait_buf k = PLAIT_BUF_INIT;
	plait_buf_addf(&k, "FROM %s\n", man.digest);
	layer_settings(b, &k);
	chain_key("", &k, st->key);
	plait_buf_release(&k);
out:
	plait_manifest_release(&m);
	plait_buf_release(&cbuf);
	plait_buf_release(&bytes);
	plait_descriptor_release(&man);
	plait_endpoint_free(ep);
	plait_endpoint_free(cache_ep);
	return r;
}

/* ------------------------------------------------------------ RUN */

struct run_out {
	struct builder *b;
};

static void on_output(void *opaque, int stream, const char *line, size_t len)
{
	(void)stream;
	struct builder *b = opaque;
	_cleanup_free_ char *s = xstrndup(line, len);
	emit(b, PLAIT_BUILD_STEP_OUTPUT, s, 0);
	if (b->n_tail == ARRAY_SIZE(b->tail)) {
		free(b->tail[0]);
		memmove(b->tail, b->tail + 1, (ARRAY_SIZE(b->tail) - 1) * sizeof(char *));
		b->n_tail--;
	}
	b->tail[b->n_tail++] = TAKE_PTR(s);
}

/* One --mount=... of RUN, as mounts and a line in the cache key. */
static int build_stage(struct builder *b, size_t idx, struct plait_error **err);

/* What bind mounts of a RUN hold open until it ends: views of stages and
 * images, and writable overlays that make rw binds throwaway. */
struct mount_views {
	struct plait_snapshot **snaps;
	size_t n_snaps;
	struct stage **stages;
	size_t n_stages;
	char **tmpdirs; /* filtered copies of the context, removed after the RUN */
	int *locks;	/* cache mounts with sharing=locked|private: held until the RUN ends */
	size_t n_locks;
};

static void mount_views_release(struct mount_views *v)
{
	for (size_t i = v->n_snaps; i-- > 0;)
		plait_snapshot_release(v->snaps[i]);
	free(v->snaps);
	for (size_t i = 0; i < v->n_stages; i++) {
		stage_release(v->stages[i]);
		free(v->stages[i]);
	}
	free(v->stages);
	for (char **d = v->tmpdirs; d && *d; d++)
		plait_remove_tree(*d);
	plait_strv_free(v->tmpdirs);
	for (size_t i = 0; i < v->n_locks; i++)
		close(v->locks[i]);
	free(v->locks);
	memset(v, 0, sizeof(*v));
}

static int snapshot_of(struct builder *b, const char *const *lowers, size_t n, struct mount_views *v,
		       struct plait_snapshot **out, struct plait_error **err)
{
	int r = plait_snapshot_prepare(lowers, n, b->work_dir, PLAIT_SNAPSHOT_AUTO, out, err);
	if (r < 0)
		return r;
	v->snaps = xrealloc(v->snaps, (v->n_snaps + 1) * sizeof(*v->snaps));
	v->snaps[v->n_snaps++] = *out;
	return 0;
}

/* The real path of rel inside root, every component resolved inside it. */
static int path_in_root(const char *root, const char *rel, char **out, struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	while (*rel == '/')
		rel++;
	long fd = rootfd < 0 ? -1 : syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof(how));
	if (fd < 0)
		return plait_error_set_errno(err, PLAIT_E_NOT_FOUND, errno, "mount source '/%s'", rel);
	char proc[64], buf[4096];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%ld", fd);
	ssize_t n = readlink(proc, buf, sizeof(buf) - 1);
	close((int)fd);
	if (n < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "mount source '/%s'", rel);
	*out = xstrndup(buf, (size_t)n);
	return 0;
}

/* A new private directory in the cache's work area (mode 0700), removed
 * after the RUN with the views; the caller frees the returned path. */
static char *run_tmpdir(struct builder *b, struct mount_views *views, const char *what, struct plait_error **err)
{
	struct plait_buf t = PLAIT_BUF_INIT;
	plait_buf_addf(&t, "%s/%s-XXXXXX", b->work_dir, what);
	char *tmp = plait_buf_detach(&t, NULL);
	if (!mkdtemp(tmp)) {
		plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", tmp);
		free(tmp);
		return NULL;
	}
	plait_strv_push(&views->tmpdirs, tmp);
	return tmp;
}

static int parse_mount(struct builder *b, struct stage *st, size_t idx, const struct plait_df_instr *in,
		       const char *spec, struct plait_run_mount *m, char **keep1, char **keep2,
		       struct mount_views *views, struct plait_buf *key, char ***env, struct plait_error **err)
{
	_cleanup_free_ char *type = xstrdup("bind"), *target = NULL, *id = NULL, *source = NULL,
			     *from = NULL, *mode = NULL, *size = NULL, *env_name = NULL, *sharing = NULL;
	bool rw = false, required = false;
	long uid = -1, gid = -1; /* uid=, gid=: cache and secret mounts */
	_cleanup_free_ char *copy = NULL;
	int r = expand_word(b, st, in, spec, &copy, err);
	if (r < 0)
		return r;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		const char *v = eq ? eq + 1 : "";
		if (eq)
			*eq = '\0';
		if (streq(f, "type"))
			free(type), type = xstrdup(v);
		else if (streq(f, "target") || streq(f, "dst") || streq(f, "destination"))
			free(target), target = xstrdup(v);
		else if (streq(f, "id"))
			free(id), id = xstrdup(v);
		else if (streq(f, "source") || streq(f, "src"))
			free(source), source = xstrdup(v);
		else if (streq(f, "from"))
			free(from), from = xstrdup(v);
		else if (streq(f, "rw") || streq(f, "readwrite"))
			rw = !eq || streq(v, "true");
		else if (streq(f, "ro") || streq(f, "readonly"))
			rw = eq && streq(v, "false");
		else if (streq(f, "required"))
			required = !eq || streq(v, "true");
		else if (streq(f, "mode"))
			free(mode), mode = xstrdup(v);
		else if (streq(f, "size"))
			free(size), size = xstrdup(v);
		else if (streq(f, "env"))
			free(env_name), env_name = xstrdup(v);
		else if (streq(f, "sharing"))
			free(sharing), sharing = xstrdup(v);
		else if (streq(f, "uid") || streq(f, "gid")) {
			char *end = NULL;
			errno = 0;
			unsigned long n = strtoul(v, &end, 10);
			if (!*v || *end || errno || n > 0x7fffffffUL)
				return instr_error(b, in, PLAIT_E_USAGE, err, "--mount: %s=%s: give a number", f, v);
			if (streq(f, "uid"))
				uid = (long)n;
			else
				gid = (long)n;
		} else
			return instr_error(b, in, PLAIT_E_USAGE, err, "--mount: unknown option '%s'", f);
	}
	long perm = -1; /* mode=: octal */
	if (mode) {
		char *end = NULL;
		errno = 0;
		perm = strtol(mode, &end, 8);
		if (!*mode || *end || errno || perm < 0 || perm > 07777)
			return instr_error(b, in, PLAIT_E_USAGE, err, "--mount: mode=%s: give octal permissions, e.g. 0400",
					   mode);
	}
	if (!streq(type, "bind") && !streq(type, "cache") && !streq(type, "tmpfs") && !streq(type, "secret"))
		return instr_error(b, in, PLAIT_E_USAGE, err,
				   "--mount: unknown type '%s'; use bind, cache, tmpfs or secret", type);
	if ((uid >= 0 || gid >= 0 || perm >= 0) && !streq(type, "cache") && !streq(type, "secret"))
		return instr_error(b, in, PLAIT_E_USAGE, err, "--mount: uid=, gid= and mode= are for type=cache and type=secret");
	if (env_name && !streq(type, "secret"))
		return instr_error(b, in, PLAIT_E_USAGE, err, "--mount: env= is for type=secret only");
	/* A secret with env= and no target is only an environment variable. */
	bool secret_file = !env_name || target;
	if (streq(type, "secret") && !target) {
		struct plait_buf t = PLAIT_BUF_INIT;
		plait_buf_addf(&t, "/run/secrets/%s", id ? id : "");
		target = plait_buf_detach(&t, NULL);
	}
	if (!target || target[0] != '/')
		return instr_error(b, in, PLAIT_E_USAGE, err,
				   "--mount=%s: needs target=/absolute/path", spec);
	memset(m, 0, sizeof(*m));
	*keep1 = xstrdup(target);
	m->target = *keep1;
	if (streq(type, "cache")) {
		/* Persisted in the cache directory, shared by id (default: target). */
		char h[PLAIT_SHA256_DIGEST_SIZE];
		const char *cid = id ? id : target;
		plait_sha256_buf(cid, strlen(cid), h);
		*keep2 = join(b->mounts_dir, plait_digest_hex(h));
		struct stat cst;
		bool fresh = stat(*keep2, &cst) < 0;
		r = mkdir_p(*keep2);
		if (r < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, r, "create cache mount '%s'", *keep2);
		/* uid=, gid=, mode= apply when the cache is made, as BuildKit does */
		if (fresh && (uid >= 0 || gid >= 0) && chown(*keep2, (uid_t)uid, (gid_t)gid) < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "chown cache mount '%s'", *keep2);
		if (fresh && perm >= 0 && chmod(*keep2, (mode_t)perm) < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "chmod cache mount '%s'", *keep2);
		if (sharing && !streq(sharing, "shared") && !streq(sharing, "locked") && !streq(sharing, "private"))
			return instr_error(b, in, PLAIT_E_USAGE, err,
					   "--mount: sharing=%s: use shared, locked or private", sharing);
		if (sharing && !streq(sharing, "shared")) {
			/* locked: one RUN at a time uses it (parallel jobs, other builds);
			 * private: a RUN that finds it in use gets a fresh empty one. */
			struct plait_buf lb = PLAIT_BUF_INIT;
			plait_buf_addf(&lb, "%s/mount-%s.lock", b->work_dir, plait_digest_hex(h));
			int lfd = open(lb.buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
			plait_buf_release(&lb);
			if (lfd < 0)
				return plait_error_set_errno(err, PLAIT_E_IO, errno, "lock cache mount '%s'", *keep2);
			r = lock_exclusive(b, lfd, streq(sharing, "locked"), err);
			if (r < 0) {
				close(lfd);
				return r;
			}
			if (r > 0) {
				views->locks = xrealloc(views->locks, (views->n_locks + 1) * sizeof(int));
				views->locks[views->n_locks++] = lfd;
			} else {
				close(lfd);
				char *tmp = run_tmpdir(b, views, "private", err);
				if (!tmp)
					return -PLAIT_E_IO;
				if ((uid >= 0 || gid >= 0) && chown(tmp, (uid_t)uid, (gid_t)gid) < 0)
					return plait_error_set_errno(err, PLAIT_E_IO, errno, "chown '%s'", tmp);
				if (chmod(tmp, perm >= 0 ? (mode_t)perm : 0755) < 0)
					return plait_error_set_errno(err, PLAIT_E_IO, errno, "chmod '%s'", tmp);
				free(*keep2);
				*keep2 = tmp;
			}
		}
		m->type = PLAIT_RUN_MOUNT_BIND;
		m->source = *keep2;
		plait_buf_addf(key, "mount cache %s %s %ld %ld %lo\n", cid, target, uid, gid,
			       perm >= 0 ? (unsigned long)perm : 0755UL); /* its content is not an input */
	} else if (streq(type, "tmpfs")) {
		m->type = PLAIT_RUN_MOUNT_TMPFS;
		if (size) {
			struct plait_buf o = PLAIT_BUF_INIT;
			plait_buf_addf(&o, "size=%s", size);
			*keep2 = plait_buf_detach(&o, NULL);
			m->options = *keep2;
		}
		plait_buf_addf(key, "mount tmpfs %s %s\n", target, size ? size : "");
	} else if (streq(type, "secret")) {
		const char *sid = id ? id : strrchr(target, '/') + 1;
		const char *src = NULL;
		for (size_t i = 0; i < b->o->n_secrets; i++)
			if (streq(b->o->secrets[i].id, sid))
				src = b->o->secrets[i].src;
		if (!src) {
			if (required)
				return instr_error(b, in, PLAIT_E_USAGE, err,
						   "secret '%s' is required: pass --secret id=%s,src=FILE", sid,
						   sid);
			free(*keep1);
			*keep1 = NULL;
			return 0; /* an optional secret that was not given: no mount */
		}
		/* Only the secret's name enters the key, never its value. */
		plait_buf_addf(key, "mount secret %s %s %s %ld %ld %lo\n", sid, secret_file ? target : "-",
			       env_name ? env_name : "-", uid, gid, perm >= 0 ? (unsigned long)perm : 0400UL);
		if (env_name) {
			/* The value goes to the command's environment only: the key has
			 * been made, and the image config never sees it. */
			struct plait_buf val = PLAIT_BUF_INIT;
			r = plait_buf_read_file(&val, src, 1u << 20);
			if (r < 0) {
				plait_buf_release(&val);
				return instr_error(b, in, PLAIT_E_IO, err, "secret '%s': cannot read it: %s", sid,
						   strerror(-r));
			}
			env_set(env, env_name, val.buf ? val.buf : "");
			explicit_bzero(val.buf, val.len);
			plait_buf_release(&val);
		}
		if (!secret_file) {
			free(*keep1);
			*keep1 = NULL;
			return 0;
		}
		/* A private copy with the mount's owner and mode (default root's,
		 * 0400, as BuildKit gives): a non-root USER reads it only when the
		 * Dockerfile says so. Removed after the RUN. */
		char *tmp = run_tmpdir(b, views, "secret", err);
		if (!tmp)
			return -PLAIT_E_IO;
		struct plait_buf val = PLAIT_BUF_INIT, path = PLAIT_BUF_INIT;
		plait_buf_addf(&path, "%s/secret", tmp);
		free(tmp);
		r = plait_buf_read_file(&val, src, 1u << 20);
		int fd = r < 0 ? -1 : open(path.buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (r >= 0 && fd < 0)
			r = -errno;
		if (r >= 0)
			r = plait_write_all(fd, val.buf, val.len);
		if (r >= 0 && fchown(fd, uid >= 0 ? (uid_t)uid : 0, gid >= 0 ? (gid_t)gid : 0) < 0)
			r = -errno;
		if (r >= 0 && fchmod(fd, perm >= 0 ? (mode_t)perm : 0400) < 0)
			r = -errno;
		if (fd >= 0)
			close(fd);
		explicit_bzero(val.buf, val.len);
		plait_buf_release(&val);
		if (r < 0) {
			plait_buf_release(&path);
			return instr_error(b, in, PLAIT_E_IO, err, "secret '%s': cannot read it: %s", sid,
					   strerror(-r));
		}
		m->type = PLAIT_RUN_MOUNT_BIND;
		*keep2 = plait_buf_detach(&path, NULL);
		m->source = *keep2;
		m->readonly = true;
	} else if (streq(type, "bind")) {
		_cleanup_free_ char *path = NULL;
		const char *ndir = from && !find_stage(b, from, idx) ? named_dir(b, from) : NULL;
		if (ndir) {
			/* A named local context: the source is resolved inside it (symlinks
			 * stay in it), and that resolved entry is what gets bound. */
			struct plait_context *nc = NULL;
			struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
			char d[PLAIT_SHA256_DIGEST_SIZE];
			_cleanup_free_ char *root = realpath(ndir, NULL);
			r = root ? plait_context_open(root, NULL, &nc, err)
				 : plait_error_set_errno(err, PLAIT_E_NOT_FOUND, errno, "--build-context '%s'", ndir);
			if (r >= 0)
				r = plait_context_resolve(nc, source ? source : ".", "RUN --mount", &l, err);
			if (r >= 0 && !l.n_entries)
				r = plait_error_set(err, PLAIT_E_NOT_FOUND, "--mount from=%s: '%s' matches nothing",
						    from, source ? source : ".");
			if (r >= 0)
				r = plait_context_digest(nc, &l, d, err);
			if (r >= 0) {
				path = *l.entries[0].path ? join(root, l.entries[0].path) : xstrdup(root);
				plait_buf_addf(key, "mount bind context %s %s %s %s %d\n", from,
					       source ? source : ".", target, d, rw);
			}
			plait_context_list_release(&l);
			plait_context_free(nc);
			if (r < 0)
				return r;
		} else if (from) {
			/* From a stage or an image: a view of its root, alive until the RUN ends. */
			struct stage *fs = find_stage(b, from, idx);
			if (!fs) {
				struct stage *img = xcalloc(1, sizeof(*img));
				views->stages = xrealloc(views->stages, (views->n_stages + 1) * sizeof(*views->stages));
				views->stages[views->n_stages++] = img;
				r = from_image(b, img, from, b->o->platform_str, err);
				if (r < 0)
					return plait_error_wrap(err, "%s:%d: --mount from=%s", b->df.filename,
								in->line, from), r;
				fs = img;
			}
			if (fs->df && !fs->built && (r = build_stage(b, (size_t)(fs - b->stages), err)) < 0)
				return r;
			const char **lw = NULL;
			struct plait_snapshot *view = NULL;
			r = snapshot_of(b, lowers_of(fs, &lw), fs->n_layers, views, &view, err);
			free(lw);
			if (r >= 0)
				r = path_in_root(plait_snapshot_root(view), source ? source : "/", &path, err);
			if (r < 0)
				return plait_error_wrap(err, "%s:%d: --mount from=%s", b->df.filename, in->line,
							from), r;
			plait_buf_addf(key, "mount bind from %s %s %s %d\n", fs->key, source ? source : "/",
				       target, rw);
		} else {
			/* From the context: resolved inside it and keyed on its content. */
			struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
			r = plait_context_resolve(b->ctx, source ? source : ".", "RUN --mount", &l, err);
			char d[PLAIT_SHA256_DIGEST_SIZE];
			if (r >= 0)
				r = plait_context_digest(b->ctx, &l, d, err);
			const struct plait_ignore *ig = plait_context_ignore(b->ctx);
			if (r >= 0 && l.n_entries && ig && ig->n_rules && S_ISDIR(l.entries[0].mode)) {
				/* .dockerignore applies to mounts too: the RUN sees a copy of
				 * just the files the context lets through. */
				char *tdir = run_tmpdir(b, views, "ctxmount", err);
				if (!tdir) {
					r = -PLAIT_E_IO;
				} else {
					struct copy_attrs ka = { .keep_owner = true };
					r = build_copy_into(tdir, b->ctx, &l, "/", true, &ka, "RUN --mount", NULL, err);
					path = tdir;
				}
				plait_buf_addf(key, "mount bind %s %s %s %d\n", source ? source : ".", target, d, rw);
			} else if (r >= 0 && l.n_entries) {
				/* The entry is already resolved inside the context: only the
				 * context's own path is made absolute for the sandbox. */
				_cleanup_free_ char *root = realpath(plait_context_path(b->ctx), NULL);
				const char *base = root ? root : plait_context_path(b->ctx);
				path = *l.entries[0].path ? join(base, l.entries[0].path) : xstrdup(base);
				plait_buf_addf(key, "mount bind %s %s %s %d\n", source ? source : ".", target, d, rw);
			}
			plait_context_list_release(&l);
			if (r < 0)
				return plait_error_wrap(err, "%s:%d", b->df.filename, in->line), r;
		}
		struct stat sst;
		if (rw && stat(path, &sst) == 0 && S_ISDIR(sst.st_mode)) {
			/* rw: the RUN may write, the writes go to a throwaway overlay. */
			struct plait_snapshot *over = NULL;
			const char *lower[] = { path, NULL };
			r = snapshot_of(b, lower, 1, views, &over, err);
			if (r < 0)
				return r;
			free(path);
			path = xstrdup(plait_snapshot_root(over));
		} else if (rw) {
			return instr_error(b, in, PLAIT_E_USAGE, err,
					   "--mount=type=bind,rw of a single file is not supported yet; mount its directory");
		}
		*keep2 = TAKE_PTR(path);
		m->type = PLAIT_RUN_MOUNT_BIND;
		m->source = *keep2;
		m->readonly = !rw;
	} else {
		return instr_error(b, in, PLAIT_E_USAGE, err,
				   "--mount: unknown type '%s'; use bind, cache, tmpfs or secret", type);
	}
	return 1;
}

static int do_run(struct builder *b, struct stage *st, size_t idx, const struct plait_df_instr *in,
		  struct plait_error **err)
{
	struct mount_views views = { 0 };
	char **argv = NULL;
	_cleanup_free_ char *script = NULL, *script_file = NULL;
	const char *file_name = NULL;
	struct plait_buf key = PLAIT_BUF_INIT, created_by = PLAIT_BUF_INIT;
	struct plait_run_mount *mounts = NULL;
	char **keep = NULL;
	size_t n_mounts = 0, n_keep = 0;
	char **env = NULL;
	struct plait_snapshot *snap = NULL;
	int r = 0;

	enum plait_df_run_form form = plait_df_run_script(in, &script, &file_name);
	char *const *shell = shell_of(st);
	if (form == PLAIT_DF_RUN_EXEC) {
		argv = strv_dup(in->args);
	} else {
		argv = strv_dup(shell);
		if (form == PLAIT_DF_RUN_FILE) {
			struct plait_buf p = PLAIT_BUF_INIT;
			plait_buf_addf(&p, HEREDOC_DIR "%s", file_name);
			plait_strv_push(&argv, p.buf);
			plait_buf_release(&p);
		} else {
			plait_strv_push(&argv, script ? script : in->shell);
		}
	}
	plait_buf_adds(&created_by, "RUN ");
	for (char **a = argv; *a; a++)
		plait_buf_addf(&created_by, "%s%s", a == argv ? "" : " ", *a);
	plait_buf_adds(&created_by, " # buildkit");

	/* Environment: the image's, then ARGs in scope and proxy args it does not set. */
	env = strv_dup(st->cfg.config.env);
	for (size_t i = 0; i < st->args.n; i++)
		if (!env_get(env, st->args.items[i].key))
			env_set(&env, st->args.items[i].key, st->args.items[i].value);

	const char *network = plait_df_flag_get(in, "network");
	bool network_none = network && streq(network, "none");
	if (network && !streq(network, "none") && !streq(network, "default") && !streq(network, "host")) {
		r = instr_error(b, in, PLAIT_E_USAGE, err, "--network=%s: use none, default or host", network);
		goto out;
	}

	plait_buf_adds(&key, "RUN\n");
	for (char **a = argv; *a; a++)
		plait_buf_addf(&key, "arg %s\n", *a);
	for (char **e = env; *e; e++)
		plait_buf_addf(&key, "env %s\n", *e);
	plait_buf_addf(&key, "user %s\nworkdir %s\nnetwork %s\nplatform %s\n",
		       st->cfg.config.user ? st->cfg.config.user : "",
		       st->cfg.config.working_dir ? st->cfg.config.working_dir : "/",
		       network_none ? "none" : "default", st->run_platform ? st->run_platform : b->o->platform_str);
	if (form == PLAIT_DF_RUN_FILE)
		plait_buf_addf(&key, "script %s\n", script);

	for (size_t i = 0; i < in->n_flags; i++) {
		if (!streq(in->flags[i].name, "mount"))
			continue;
		mounts = xrealloc(mounts, (n_mounts + 1) * sizeof(*mounts));
		keep = xrealloc(keep, (n_keep + 3) * sizeof(char *));
		keep[n_keep] = keep[n_keep + 1] = NULL;
		r = parse_mount(b, st, idx, in, in->flags[i].value, &mounts[n_mounts], &keep[n_keep],
				&keep[n_keep + 1], &views, &key, &env, err);
		n_keep += 2;
		if (r < 0)
			goto out;
		if (r > 0)
			n_mounts++;
	}
	if (form == PLAIT_DF_RUN_FILE) {
		/* The #! script goes in as a read-only file at HEREDOC_DIR<name>. */
		struct plait_buf p = PLAIT_BUF_INIT;
		plait_buf_addf(&p, "%s/script-XXXXXX", b->work_dir);
		script_file = plait_buf_detach(&p, NULL);
		int fd = mkstemp(script_file);
		if (fd < 0 || plait_write_all(fd, script, strlen(script)) < 0 || fchmod(fd, 0755) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "write RUN script");
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
		mounts = xrealloc(mounts, (n_mounts + 1) * sizeof(*mounts));
		keep = xrealloc(keep, (n_keep + 1) * sizeof(char *));
		struct plait_buf t = PLAIT_BUF_INIT;
		plait_buf_addf(&t, HEREDOC_DIR "%s", file_name);
		keep[n_keep] = plait_buf_detach(&t, NULL);
		mounts[n_mounts++] = (struct plait_run_mount){ .type = PLAIT_RUN_MOUNT_BIND,
							       .source = script_file,
							       .target = keep[n_keep],
							       .readonly = true };
		n_keep++;
	}

	char k[PLAIT_SHA256_DIGEST_SIZE];
	chain_key(st->key, &key, k);
	r = use_cached_step(b, st, k, created_by.buf, err);
	if (r != 0) {
		r = r < 0 ? r : 0;
		goto out;
	}
	/* Proxy build args reach RUN without an ARG line but stay out of the key
	 * (BuildKit's rule): a different proxy does not invalidate the cache. */
	for (size_t i = 0; i < ARRAY_SIZE(proxy_args); i++) {
		const char *v = plait_map_get(&b->build_args, proxy_args[i]);
		if (v && !env_get(env, proxy_args[i]))
			env_set(&env, proxy_args[i], v);
	}

	const char **lw = NULL;
	r = plait_snapshot_prepare(lowers_of(st, &lw), st->n_layers, b->work_dir, PLAIT_SNAPSHOT_AUTO,
				   &snap, err);
	free(lw);
	if (r < 0)
		goto out;
	struct plait_run_request req = {
		.rootfs = plait_snapshot_root(snap),
		.argv = (const char *const *)argv,
		.env = (const char *const *)env,
		.workdir = st->cfg.config.working_dir ? st->cfg.config.working_dir : "/",
		.user = st->cfg.config.user,
		.network_none = network_none,
		.mounts = mounts,
		.n_mounts = n_mounts,
		.on_output = on_output,
		.opaque = b,
		.cancel = b->o->cancel,
	};
	int code = 0, sig = 0;
	uint64_t t0 = plait_now_ns();
	for (size_t i = 0; i < b->n_tail; i++)
		free(b->tail[i]);
	b->n_tail = 0;
	r = b->o->runner->run(b->o->runner->ctx, &req, &code, &sig, err);
	if (r < 0) {
		struct plait_buf w = PLAIT_BUF_INIT;
		where(b, in, &w);
		plait_error_wrap(err, "%s: RUN", w.buf);
		plait_buf_release(&w);
		goto out;
	}
	if (cancelled(b)) {
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted at %s:%d", b->df.filename, in->line);
		goto out;
	}
	if (code != 0 || sig != 0) {
		struct plait_buf m = PLAIT_BUF_INIT;
		where(b, in, &m);
		if (sig)
			plait_buf_addf(&m, ": '%s' was killed by signal %d", in->original, sig);
		else
			plait_buf_addf(&m, ": '%s' failed with exit code %d", in->original, code);
		if (b->n_tail) {
			plait_buf_adds(&m, "; its last output:");
			for (size_t i = 0; i < b->n_tail; i++)
				plait_buf_addf(&m, "\n    %s", b->tail[i]);
		}
		r = plait_error_set(err, PLAIT_E_GENERIC, "%s", m.buf);
		plait_buf_release(&m);
		goto out;
	}
	r = commit_change(b, st, snap, k, created_by.buf, err);
	if (r >= 0)
		emit(b, PLAIT_BUILD_STEP_DONE, NULL, (double)(plait_now_ns() - t0) / 1e9);
out:
	plait_snapshot_release(snap);
	mount_views_release(&views);
	if (script_file)
		unlink(script_file);
	for (size_t i = 0; i < n_keep; i++)
		free(keep[i]);
	free(keep);
	free(mounts);
	plait_strv_free(argv);
	plait_strv_free(env);
	plait_buf_release(&key);
	plait_buf_release(&created_by);
	return r;
}

/* ------------------------------------------------------------ COPY / ADD */

static void clean_abs(const char *workdir, const char *p, struct plait_buf *out)
{
	struct plait_buf joined = PLAIT_BUF_INIT;
	if (p[0] == '/')
		plait_buf_adds(&joined, p);
	else
		plait_buf_addf(&joined, "%s/%s", workdir && *workdir ? workdir : "/", p);
	plait_path_clean(joined.buf, out);
	plait_buf_release(&joined);
}

/* Look a stage root up as a context for COPY --from: a read-only view. */
static int stage_view(struct builder *b, struct stage *from, struct plait_snapshot **snap,
		      struct plait_context **ctx, struct plait_error **err)
{
	const char **lw = NULL;
	int r = plait_snapshot_prepare(lowers_of(from, &lw), from->n_layers, b->work_dir,
				       PLAIT_SNAPSHOT_AUTO, snap, err);
	free(lw);
	if (r < 0)
		return r;
	return plait_context_open_with_ignore(plait_snapshot_root(*snap), NULL, ctx, err);
}

struct url_source {
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	char name[256]; /* the file name the URL's path ends with */
};

/* Fetch an ADD URL into the store, checked against --checksum when given. */
static int fetch_source(struct builder *b, const struct plait_df_instr *in, const char *url,
			const char *checksum, struct url_source **urls, size_t *n, struct plait_error **err)
{
	if (!b->o->resolver || !b->o->resolver->fetch_url)
		return instr_error(b, in, PLAIT_E_USAGE, err, "ADD %s: no way to fetch URLs here", url);
	if (checksum && plait_digest_validate(checksum, NULL) < 0)
		return instr_error(b, in, PLAIT_E_USAGE, err,
				   "ADD --checksum=%s: give a digest such as sha256:<64 hex>", checksum);
	struct plait_blob_writer *w = NULL;
	char got[PLAIT_SHA256_DIGEST_SIZE];
	int r = plait_blob_writer_new(b->store, checksum, -1, &w, err);
	if (r >= 0)
		r = b->o->resolver->fetch_url(b->o->resolver->ctx, url, w, err);
	if (r >= 0)
		r = plait_blob_writer_commit(w, got, err);
	plait_blob_writer_free(w);
	if (r < 0) {
		struct plait_buf m = PLAIT_BUF_INIT;
		where(b, in, &m);
		plait_error_wrap(err, "%s: ADD %s", m.buf, url);
		plait_buf_release(&m);
		return r;
	}
	*urls = xrealloc(*urls, (*n + 1) * sizeof(**urls));
	struct url_source *u = &(*urls)[(*n)++];
	memcpy(u->digest, got, sizeof(got));
	/* The name is the last path segment, without query or fragment. */
	const char *path = strstr(url, "://") + 3;
	path += strcspn(path, "/");
	size_t len = strcspn(path, "?#");
	while (len > 1 && path[len - 1] == '/')
		len--;
	const char *slash = path;
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			slash = path + i;
	size_t nl = len - (size_t)(slash - path) - (*slash == '/');
	const char *nm = *slash == '/' ? slash + 1 : slash;
	if (nl == 0 || nl >= sizeof(u->name))
		snprintf(u->name, sizeof(u->name), "download");
	else
		snprintf(u->name, sizeof(u->name), "%.*s", (int)nl, nm);
	return 0;
}

static int do_copy(struct builder *b, struct stage *st, size_t idx, const struct plait_df_instr *in,
		   struct plait_error **err)
{
	bool add = in->kind == PLAIT_DF_ADD;
	const char *what = add ? "ADD" : "COPY";
	char **words = NULL;
	size_t n_words = 0;
	struct plait_buf key = PLAIT_BUF_INIT, created_by = PLAIT_BUF_INIT, dest = PLAIT_BUF_INIT,
			 whr = PLAIT_BUF_INIT;
	struct plait_context *src_ctx = b->ctx;
	struct plait_snapshot *from_snap = NULL, *snap = NULL;
	struct plait_context *from_ctx = NULL;
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	struct copy_attrs a = { 0 };
	struct plait_ignore *exclude = NULL;
	struct stage *from_image_st = NULL;
	_cleanup_free_ char *from_name = NULL;
	bool from_ctx_is_dir = false;
	struct url_source *urls = NULL;
	size_t n_urls = 0;
	bool *archive = NULL;
	_cleanup_free_ char *checksum = NULL, *chmod_x = NULL;
	int r = 0;

	where(b, in, &whr);
	plait_buf_addf(&whr, ": %s", what);
	static const char *const unsupported[] = { "keep-git-dir" };
	for (size_t i = 0; i < ARRAY_SIZE(unsupported); i++)
		if (plait_df_flag_get(in, unsupported[i]))
			return instr_error(b, in, PLAIT_E_USAGE, err, "%s --%s is not supported yet", what,
					   unsupported[i]);

	/* args holds the words in both forms; each is expanded on its own. */
	words = strv_dup(in->args);
	n_words = in->n_args;
	for (size_t i = 0; i < n_words && r >= 0; i++) {
		if (plait_df_heredoc_for_arg(in, words[i]))
			continue;
		char *x = NULL;
		r = expand_word(b, st, in, words[i], &x, err);
		if (r >= 0) {
			free(words[i]);
			words[i] = x;
		}
	}
	if (r < 0)
		goto out;
	if (n_words < 2 && !(in->n_heredocs && n_words >= 1)) {
		r = instr_error(b, in, PLAIT_E_USAGE, err, "%s needs at least one source and a destination",
				what);
		goto out;
	}
	const char *dst_word = words[n_words - 1];
	clean_abs(st->cfg.config.working_dir, dst_word, &dest);
	size_t n_src = n_words - 1;
	/* "dir/", ".", "dir/." all name a directory (Dockerfile reference). */
	bool dest_is_dir = endswith(dst_word, "/") || streq(dst_word, ".") || endswith(dst_word, "/.");
	if (n_src > 1 && !dest_is_dir) {
		r = instr_error(b, in, PLAIT_E_USAGE, err,
				"%s of several sources needs a directory destination ending in '/': write '%s/'",
				what, dst_word);
		goto out;
	}

	const char *chown_s = plait_df_flag_get(in, "chown");
	const char *chmod_s = plait_df_flag_get(in, "chmod");
	const char *from_s = plait_df_flag_get(in, "from");
	/* Flag values expand like the instruction's words (--checksum=${SUM}). */
	if (plait_df_flag_get(in, "checksum") &&
	    (r = expand_word(b, st, in, plait_df_flag_get(in, "checksum"), &checksum, err)) < 0)
		goto out;
	if (chmod_s) {
		if ((r = expand_word(b, st, in, chmod_s, &chmod_x, err)) < 0)
			goto out;
		chmod_s = chmod_x;
	}
	plait_buf_addf(&key, "%s\ndest %s%s\nchown %s\nchmod %s\n", what, dest.buf,
		       dest_is_dir ? "/" : "", chown_s ? chown_s : "", chmod_s ? chmod_s : "");
	if (chmod_s) {
		char *end;
		long m = strtol(chmod_s, &end, 8);
		if (*end || m < 0 || m > 07777) {
			r = instr_error(b, in, PLAIT_E_USAGE, err,
					"--chmod=%s: give an octal mode such as 0755", chmod_s);
			goto out;
		}
		a.chmod = true;
		a.mode = (mode_t)m;
	}
	a.parents = plait_df_flag_bool(in, "parents");
	plait_buf_addf(&key, "parents %d\n", a.parents);
	{
		struct plait_buf pat = PLAIT_BUF_INIT;
		for (size_t i = 0; i < in->n_flags; i++) {
			if (!streq(in->flags[i].name, "exclude"))
				continue;
			_cleanup_free_ char *x = NULL;
			r = expand_word(b, st, in, in->flags[i].value, &x, err);
			if (r < 0)
				break;
			plait_buf_addf(&pat, "%s\n", x);
		}
		if (r >= 0 && pat.len)
			r = plait_ignore_parse(pat.buf, pat.len, "--exclude", &exclude, err);
		plait_buf_addf(&key, "exclude %s\n", pat.buf);
		plait_buf_release(&pat);
		if (r < 0)
			goto out;
		a.exclude = exclude;
	}
	if (from_s) {
		char *fx = NULL;
		r = expand_word(b, st, in, from_s, &fx, err);
		if (r < 0)
			goto out;
		from_name = fx;
		struct stage *fs = find_stage(b, fx, idx);
		const char *ndir = fs ? NULL : named_dir(b, fx);
		if (ndir) {
			/* A named local context: read like the build context (files become root's). */
			r = plait_context_open(ndir, NULL, &from_ctx, err);
			if (r < 0) {
				plait_error_wrap(err, "%s --from=%s", whr.buf, fx);
				goto out;
			}
			src_ctx = from_ctx;
			from_ctx_is_dir = true;
			plait_buf_addf(&key, "from context %s\n", fx);
		} else if (!fs) {
			/* The stage itself or a later one: a cycle, not an image to pull. */
			for (size_t k = idx; k < b->n_stages; k++)
				if (b->stages[k].df->name && strcasecmp(b->stages[k].df->name, fx) == 0) {
					r = instr_error(b, in, PLAIT_E_USAGE, err,
							"%s --from=%s: that is %s; --from names an earlier stage, an "
							"image or a build context",
							what, fx, k == idx ? "this stage itself" : "a later stage");
					goto out;
				}
			/* Not a stage: an image, pulled for the target platform. */
			from_image_st = xcalloc(1, sizeof(*from_image_st));
			r = from_image(b, from_image_st, fx, b->o->platform_str, err);
			if (r < 0) {
				plait_error_wrap(err, "%s --from=%s (no earlier stage has that name)", whr.buf,
						 fx);
				goto out;
			}
			fs = from_image_st;
		}
		if (fs && fs->df && !fs->built && (r = build_stage(b, (size_t)(fs - b->stages), err)) < 0)
			goto out; /* --from=${ARG} names a stage only known now */
		if (fs) {
			r = stage_view(b, fs, &from_snap, &from_ctx, err);
			if (r < 0)
				goto out;
			src_ctx = from_ctx;
			a.keep_owner = true;
			/* Keyed on what is copied (the source digest below covers content,
			 * modes and owners), not on the stage's whole chain: a change
			 * elsewhere in that stage does not invalidate this COPY. */
			plait_buf_adds(&key, "from stage\n");
		}
	}

	/* Sources: resolved (and digested) before anything runs. */
	for (size_t i = 0; i < n_src; i++) {
		const struct plait_df_heredoc *h = plait_df_heredoc_for_arg(in, words[i]);
		if (h) {
			/* The raw body and the variables it may use are in the chain already
			 * (env and args are keyed by earlier steps); the body itself here. */
			_cleanup_free_ char *data = plait_df_heredoc_data(h);
			plait_buf_addf(&key, "heredoc %s %d %zu\n", h->name, h->expand, strlen(data));
			plait_buf_adds(&key, data);
			continue;
		}
		if (startswith(words[i], "http://") || startswith(words[i], "https://")) {
			if (!add || from_s) {
				r = instr_error(b, in, PLAIT_E_USAGE, err,
						"%s cannot fetch '%s': use ADD for URLs", what, words[i]);
				goto out;
			}
			/* Fetched now: its content (or --checksum) is what the key sees. */
			r = fetch_source(b, in, words[i], checksum, &urls, &n_urls, err);
			if (r < 0)
				goto out;
			plait_buf_addf(&key, "url %s %s\n", words[i], urls[n_urls - 1].digest);
			continue;
		}
		size_t had = l.n_sources;
		r = plait_context_resolve(src_ctx, words[i], what, &l, err);
		/* A wildcard that matches several sources needs a directory; one match
		 * is like naming it ("COPY target/x-*.jar /app.jar" makes a file), as
		 * BuildKit and buildah do. */
		if (r >= 0 && plait_glob_has_wildcards(words[i]) && l.n_sources - had > 1)
			dest_is_dir = true;
		if (r == -PLAIT_E_NOT_FOUND && from_s && src_ctx != b->ctx && !from_ctx_is_dir)
			/* the context's message would say "build context": name the stage or image */
			plait_error_set(err, PLAIT_E_NOT_FOUND, "%s --from=%s: '%s' not found in %s '%s'", what,
					from_name, words[i], from_image_st ? "image" : "stage", from_name);
		if (r < 0) {
			plait_error_wrap(err, "%s:%d", b->df.filename, in->line);
			goto out;
		}
	}
	plait_buf_addf(&key, "dest-is-dir %d\n", dest_is_dir); /* wildcards decide it late */
	if (checksum && n_urls == 0) {
		r = instr_error(b, in, PLAIT_E_USAGE, err, "ADD --checksum only applies to URL sources");
		goto out;
	}
	plait_context_list_exclude(&l, exclude); /* excluded files are no input */
	char d[PLAIT_SHA256_DIGEST_SIZE];
	r = plait_context_digest(src_ctx, &l, d, err);
	if (r < 0)
		goto out;
	plait_buf_addf(&key, "sources %s\n", d);
	/* ADD extracts local tar archives (plain or compressed) into dest. */
	archive = xcalloc(l.n_sources + 1, sizeof(bool));
	for (size_t i = 0; add && !from_s && i < l.n_sources; i++) {
		const struct plait_context_entry *e = &l.entries[l.sources[i].first];
		_cleanup_close_ int fd = -1;
		if (!S_ISREG(e->mode) || plait_context_open_entry(src_ctx, e, &fd, NULL) < 0)
			continue;
		archive[i] = build_is_archive(fd);
		plait_buf_addf(&key, "archive %s %d\n", l.sources[i].name, archive[i]);
	}
	for (size_t i = 0; i < l.n_sources; i++)
		plait_buf_addf(&key, "source %s\n", l.sources[i].name);

	plait_buf_addf(&created_by, "%s ", what);
	for (size_t i = 0; i < n_words; i++)
		plait_buf_addf(&created_by, "%s%s", i ? " " : "", words[i]);
	plait_buf_adds(&created_by, " # buildkit");

	char k[PLAIT_SHA256_DIGEST_SIZE];
	chain_key(st->key, &key, k);
	r = use_cached_step(b, st, k, created_by.buf, err);
	if (r != 0) {
		r = r < 0 ? r : 0;
		goto out;
	}
	uint64_t t0 = plait_now_ns();
	const char **lw = NULL;
	r = plait_snapshot_prepare(lowers_of(st, &lw), st->n_layers, b->work_dir, PLAIT_SNAPSHOT_AUTO,
				   &snap, err);
	free(lw);
	if (r < 0)
		goto out;
	if (chown_s) {
		_cleanup_free_ char *cx = NULL;
		r = expand_word(b, st, in, chown_s, &cx, err);
		if (r >= 0)
			r = b->o->runner->resolve_user(b->o->runner->ctx, plait_snapshot_root(snap), cx,
						       &a.uid, &a.gid, err);
		if (r < 0) {
			plait_error_wrap(err, "%s --chown", whr.buf);
			goto out;
		}
		a.chown = true;
	}
	for (size_t i = 0; i < n_src && r >= 0; i++) {
		const struct plait_df_heredoc *h = plait_df_heredoc_for_arg(in, words[i]);
		if (!h)
			continue;
		_cleanup_free_ char *raw = plait_df_heredoc_data(h), *data = NULL;
		/* An unquoted delimiter expands variables in the body, as BuildKit does. */
		if (h->expand) {
			struct lookup_ctx lc = { b, st };
			r = plait_expand_heredoc(raw, lookup, &lc, &data, err);
			if (r < 0)
				break;
		} else {
			data = TAKE_PTR(raw);
		}
		struct plait_buf target = PLAIT_BUF_INIT;
		if (dest_is_dir)
			plait_buf_addf(&target, "%s/%s", dest.buf, h->name);
		else
			plait_buf_adds(&target, dest.buf);
		r = build_write_file_into(plait_snapshot_root(snap), target.buf, data, strlen(data), &a,
					  whr.buf, err);
		plait_buf_release(&target);
	}
	if (r >= 0 && l.n_sources)
		r = build_copy_into(plait_snapshot_root(snap), src_ctx, &l, dest.buf, dest_is_dir, &a,
				    whr.buf, archive, err);
	for (size_t i = 0; i < l.n_sources && r >= 0; i++) {
		if (!archive[i])
			continue;
		_cleanup_close_ int fd = -1;
		r = plait_context_open_entry(src_ctx, &l.entries[l.sources[i].first], &fd, err);
		if (r >= 0)
			r = build_extract_into(plait_snapshot_root(snap), fd, dest.buf, &a, whr.buf, err);
	}
	for (size_t i = 0; i < n_urls && r >= 0; i++) {
		_cleanup_close_ int fd = -1;
		struct plait_buf target = PLAIT_BUF_INIT;
		if (dest_is_dir || n_src > 1)
			plait_buf_addf(&target, "%s/%s", dest.buf, urls[i].name);
		else
			plait_buf_adds(&target, dest.buf);
		r = plait_store_open_blob(b->store, urls[i].digest, &fd, err);
		if (r >= 0)
			r = build_write_fd_into(plait_snapshot_root(snap), target.buf, fd, &a, whr.buf, err);
		plait_buf_release(&target);
	}
	if (r >= 0)
		r = commit_change(b, st, snap, k, created_by.buf, err);
	if (r >= 0)
		emit(b, PLAIT_BUILD_STEP_DONE, NULL, (double)(plait_now_ns() - t0) / 1e9);
out:
	plait_snapshot_release(snap);
	plait_context_list_release(&l);
	plait_context_free(from_ctx);
	plait_snapshot_release(from_snap);
	plait_ignore_free(exclude);
	free(urls);
	free(archive);
	if (from_image_st) {
		stage_release(from_image_st);
		free(from_image_st);
	}
	plait_strv_free(words);
	plait_buf_release(&key);
	plait_buf_release(&created_by);
	plait_buf_release(&dest);
	plait_buf_release(&whr);
	return r;
}

/* ------------------------------------------------------------ metadata instructions */

static int set_healthcheck(struct stage *st, const struct plait_df_instr *in)
{
	json_auto_t *extra = st->cfg.config.extra_json ? json_loads(st->cfg.config.extra_json, 0, NULL)
							 : json_object();
	if (!extra)
		extra = json_object();
	json_t *h = json_object();
	json_t *test = json_array();
	if (in->health_none) {
		json_array_append_new(test, json_string("NONE"));
	} else if (in->json) {
		json_array_append_new(test, json_string("CMD"));
		for (size_t i = 0; i < in->n_args; i++)
			json_array_append_new(test, json_string(in->args[i]));
	} else {
		json_array_append_new(test, json_string("CMD-SHELL"));
		json_array_append_new(test, json_string(in->shell ? in->shell : ""));
	}
	json_object_set_new(h, "Test", test);
	if (in->health_interval_ns)
		json_object_set_new(h, "Interval", json_integer(in->health_interval_ns));
	if (in->health_timeout_ns)
		json_object_set_new(h, "Timeout", json_integer(in->health_timeout_ns));
	if (in->health_start_period_ns)
		json_object_set_new(h, "StartPeriod", json_integer(in->health_start_period_ns));
	if (in->health_start_interval_ns)
		json_object_set_new(h, "StartInterval", json_integer(in->health_start_interval_ns));
	if (in->health_retries)
		json_object_set_new(h, "Retries", json_integer(in->health_retries));
	json_object_set_new(extra, "Healthcheck", h);
	free(st->cfg.config.extra_json);
	st->cfg.config.extra_json = json_dumps(extra, JSON_COMPACT | JSON_SORT_KEYS);
	return 0;
}

static char **command_of(struct stage *st, const struct plait_df_instr *in)
{
	if (in->json)
		return strv_dup(in->args);
	char **v = strv_dup(shell_of(st));
	plait_strv_push(&v, in->shell ? in->shell : "");
	return v;
}

static const char *arg0(const struct plait_df_instr *in)
{
	return in->n_args ? in->args[0] : "";
}

/* STOPSIGNAL: a name (with or without SIG, any case, as moby's ParseSignal
 * takes it) or a number, as Docker would accept it at `docker stop`. */
static bool signal_valid(const char *s)
{
	static const char *const names[] = { "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP",
					     "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL", "PROF",
					     "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
					     "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2",
					     "VTALRM", "WINCH", "XCPU", "XFSZ" };
	if (!s || !*s)
		return false;
	if (isdigit((unsigned char)*s)) {
		char *end = NULL;
		long n = strtol(s, &end, 10);
		return !*end && n >= 1 && n <= 64;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcasecmp(s, names[i]) == 0)
			return true;
	return false;
}

/* The instruction's argument expanded into *field (USER, STOPSIGNAL). */
static int expand_into(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		       char **field, struct plait_error **err)
{
	char *v = NULL;
	int r = expand_word(b, st, in, arg0(in), &v, err);
	if (r >= 0) {
		free(*field);
		*field = v;
	}
	return r;
}

/* Each word of args expanded (EXPOSE, VOLUME). */
static int expand_args(struct builder *b, struct stage *st, const struct plait_df_instr *in, char ***out,
		       struct plait_error **err)
{
	*out = NULL;
	for (size_t i = 0; i < in->n_args; i++) {
		_cleanup_free_ char *x = NULL;
		int r = expand_word(b, st, in, in->args[i], &x, err);
		if (r < 0)
			return r;
		plait_strv_push(out, x);
	}
	return 0;
}

static int do_arg(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		  struct plait_error **err)
{
	for (size_t i = 0; i < in->n_kvs; i++) {
		const char *name = in->kvs[i].key;
		const char *given = plait_map_get(&b->build_args, name);
		_cleanup_free_ char *def = NULL;
		if (in->kvs[i].value) {
			int r = expand_word(b, st, in, in->kvs[i].value, &def, err);
			if (r < 0)
				return r;
		}
		const char *v = given ? given : def ? def : plait_map_get(&b->meta, name);
		if (v)
			plait_map_set(&st->args, name, v);
	}
	return 0;
}

static int do_meta(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		   struct plait_error **err)
{
	struct plait_container_config *c = &st->cfg.config;
	int r = 0;
	switch (in->kind) {
	case PLAIT_DF_ENV:
	case PLAIT_DF_LABEL: {
		/* Every pair is expanded before any is set: "ENV abc=bye def=$abc"
		 * gives def the abc from before this line (Dockerfile reference). */
		char **kv = xcalloc(2 * in->n_kvs + 1, sizeof(char *));
		for (size_t i = 0; i < in->n_kvs && r >= 0; i++) {
			r = expand_word(b, st, in, in->kvs[i].key, &kv[2 * i], err);
			if (r >= 0)
				r = expand_word(b, st, in, in->kvs[i].value ? in->kvs[i].value : "", &kv[2 * i + 1],
						err);
		}
		for (size_t i = 0; i < in->n_kvs && r >= 0; i++) {
			if (in->kind == PLAIT_DF_ENV)
				env_set(&c->env, kv[2 * i], kv[2 * i + 1]);
			else
				plait_map_set(&c->labels, kv[2 * i], kv[2 * i + 1]);
		}
		for (size_t i = 0; i < 2 * in->n_kvs; i++)
			free(kv[i]);
		free(kv);
		break;
	}
	case PLAIT_DF_ARG:
		r = do_arg(b, st, in, err);
		break;
	case PLAIT_DF_WORKDIR: {
		_cleanup_free_ char *w = NULL;
		r = expand_word(b, st, in, arg0(in), &w, err);
		if (r < 0)
			break;
		struct plait_buf p = PLAIT_BUF_INIT;
		clean_abs(c->working_dir, w, &p);
		free(c->working_dir);
		c->working_dir = plait_buf_detach(&p, NULL);
		break;
	}
	case PLAIT_DF_USER:
		r = expand_into(b, st, in, &c->user, err);
		break;
	case PLAIT_DF_EXPOSE: {
		char **w = NULL;
		r = expand_args(b, st, in, &w, err);
		for (size_t i = 0; w && w[i] && r >= 0; i++) {
			struct plait_buf p = PLAIT_BUF_INIT;
			plait_buf_addf(&p, "%s%s", w[i], strchr(w[i], '/') ? "" : "/tcp");
			bool have = false;
			for (char **e = c->exposed_ports; e && *e; e++)
				have |= streq(*e, p.buf);
			if (!have)
				plait_strv_push(&c->exposed_ports, p.buf);
			plait_buf_release(&p);
		}
		plait_strv_free(w);
		break;
	}
	case PLAIT_DF_VOLUME: {
		char **w = NULL;
		r = expand_args(b, st, in, &w, err);
		for (size_t i = 0; w && w[i] && r >= 0; i++)
			plait_strv_push(&c->volumes, w[i]);
		plait_strv_free(w);
		break;
	}
	case PLAIT_DF_CMD:
		plait_strv_free(c->cmd);
		c->cmd = command_of(st, in);
		st->cmd_set = true;
		break;
	case PLAIT_DF_ENTRYPOINT:
		plait_strv_free(c->entrypoint);
		c->entrypoint = command_of(st, in);
		/* An ENTRYPOINT resets a CMD this stage did not set (Dockerfile reference). */
		if (!st->cmd_set) {
			plait_strv_free(c->cmd);
			c->cmd = NULL;
		}
		break;
	case PLAIT_DF_STOPSIGNAL:
		r = expand_into(b, st, in, &c->stop_signal, err);
		if (r >= 0 && !signal_valid(c->stop_signal))
			r = instr_error(b, in, PLAIT_E_USAGE, err,
					"STOPSIGNAL %s: not a signal; give a name (SIGTERM, TERM) or a number 1-64",
					c->stop_signal);
		break;
	case PLAIT_DF_SHELL:
		plait_strv_free(c->shell);
		c->shell = strv_dup(in->args);
		break;
	case PLAIT_DF_HEALTHCHECK:
		r = set_healthcheck(st, in);
		break;
	case PLAIT_DF_ONBUILD:
		plait_strv_push(&c->on_build, in->shell ? in->shell : "");
		break;
	case PLAIT_DF_MAINTAINER:
		free(st->cfg.author);
		st->cfg.author = xstrdup(arg0(in));
		break;
	default:
		r = instr_error(b, in, PLAIT_E_USAGE, err, "'%s' cannot be used here",
				plait_df_kind_name(in->kind));
	}
	if (r < 0)
		return r;
	/* Only what later RUN and COPY steps can see is part of the chain (as in
	 * BuildKit): a new LABEL or CMD does not invalidate the steps after it. */
	switch (in->kind) {
	case PLAIT_DF_ENV:
	case PLAIT_DF_ARG:
	case PLAIT_DF_USER:
	case PLAIT_DF_WORKDIR:
	case PLAIT_DF_SHELL:
		break;
	default:
		goto history;
	}
	struct plait_buf k = PLAIT_BUF_INIT;
	plait_buf_addf(&k, "meta %s\n", in->original);
	for (char **e = c->env; e && *e; e++)
		plait_buf_addf(&k, "env %s\n", *e);
	for (size_t i = 0; i < st->args.n; i++)
		plait_buf_addf(&k, "arg %s=%s\n", st->args.items[i].key, st->args.items[i].value);
	char nk[PLAIT_SHA256_DIGEST_SIZE];
	chain_key(st->key, &k, nk);
	memcpy(st->key, nk, sizeof(nk));
	plait_buf_release(&k);
history:
	if (in->kind != PLAIT_DF_ARG && in->kind != PLAIT_DF_WORKDIR) {
		struct plait_buf cb = PLAIT_BUF_INIT;
		plait_buf_addf(&cb, "%s # buildkit", in->original);
		stage_add_history(b, st, cb.buf, true, NULL);
		plait_buf_release(&cb);
	}
	return 0;
}

/* ------------------------------------------------------------ stages */

static int build_stage(struct builder *b, size_t idx, struct plait_error **err);

static int do_from(struct builder *b, struct stage *st, size_t idx, struct plait_error **err)
{
	const struct plait_df_instr *in = st->df->from;
	_cleanup_free_ char *image = NULL, *platform = NULL;
	int r = expand_word(b, NULL, in, st->df->image, &image, err);
	if (r >= 0 && st->df->platform)
		r = expand_word(b, NULL, in, st->df->platform, &platform, err);
	if (r < 0)
		return r;
	struct plait_buf text = PLAIT_BUF_INIT;
	plait_buf_addf(&text, "FROM %s", image);
	emit(b, PLAIT_BUILD_STEP_START, text.buf, 0);
	plait_buf_release(&text);

	struct stage *base = find_stage(b, image, idx);
	if (base) {
		if (!base->built && (r = build_stage(b, (size_t)(base - b->stages), err)) < 0)
			return r;
		stage_copy_state(st, base);
	} else if (streq(image, "scratch")) {
		memset(&st->cfg, 0, sizeof(st->cfg));
		struct plait_buf k = PLAIT_BUF_INIT;
		plait_buf_adds(&k, "FROM scratch\n");
		layer_settings(b, &k);
		chain_key("", &k, st->key);
		plait_buf_release(&k);
	} else {
		r = from_image(b, st, image, platform ? platform : b->o->platform_str, err);
		if (r < 0) {
			struct plait_buf w = PLAIT_BUF_INIT;
			where(b, in, &w);
			plait_error_wrap(err, "%s: FROM %s", w.buf, image);
			plait_buf_release(&w);
			return r;
		}
	}
	if (platform || !base) {
		free(st->run_platform);
		st->run_platform = xstrdup(platform ? platform : b->o->platform_str);
	}
	/* The image keeps the target's platform; a PATH is always there (as BuildKit does). */
	free(st->cfg.architecture);
	free(st->cfg.os);
	free(st->cfg.variant);
	st->cfg.architecture = xstrdup_or_null(b->o->platform.architecture);
	st->cfg.os = xstrdup_or_null(b->o->platform.os);
	st->cfg.variant = xstrdup_or_null(b->o->platform.variant);
	if (!env_get(st->cfg.config.env, "PATH"))
		env_set(&st->cfg.config.env, "PATH", DEFAULT_PATH + strlen("PATH="));
	emit(b, PLAIT_BUILD_STEP_DONE, NULL, 0);
	return 0;
}

/* WORKDIR creates its directory, as docker does: a layer when it did not
 * exist yet (an empty history entry when it did), cached like other steps. */
static int do_workdir(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		      struct plait_error **err)
{
	int r = do_meta(b, st, in, err);
	if (r < 0)
		return r;
	const char *wd = st->cfg.config.working_dir;
	/* The directories WORKDIR makes belong to USER, as BuildKit makes them. */
	const char *user = st->cfg.config.user && *st->cfg.config.user ? st->cfg.config.user : NULL;
	struct plait_buf key = PLAIT_BUF_INIT, created_by = PLAIT_BUF_INIT;
	plait_buf_addf(&key, "WORKDIR-mkdir %s\n", wd);
	if (user)
		plait_buf_addf(&key, "user %s\n", user);
	plait_buf_addf(&created_by, "%s # buildkit", in->original);
	char k[PLAIT_SHA256_DIGEST_SIZE];
	chain_key(st->key, &key, k);
	struct plait_snapshot *snap = NULL;
	r = use_cached_step(b, st, k, created_by.buf, err);
	if (r != 0) {
		r = r < 0 ? r : 0;
		goto out;
	}
	const char **lw = NULL;
	r = plait_snapshot_prepare(lowers_of(st, &lw), st->n_layers, b->work_dir, PLAIT_SNAPSHOT_AUTO,
				   &snap, err);
	free(lw);
	struct copy_attrs owner = { 0 };
	if (r >= 0 && user) {
		r = b->o->runner->resolve_user(b->o->runner->ctx, plait_snapshot_root(snap), user, &owner.uid,
					       &owner.gid, err);
		owner.chown = r >= 0 && (owner.uid || owner.gid);
		if (r < 0) {
			struct plait_buf w = PLAIT_BUF_INIT;
			where(b, in, &w);
			plait_error_wrap(err, "%s: WORKDIR %s as USER %s", w.buf, wd, user);
			plait_buf_release(&w);
		}
	}
	if (r >= 0)
		r = build_mkdir_in_root(plait_snapshot_root(snap), wd, owner.chown ? &owner : NULL, err);
	if (r >= 0)
		r = commit_change(b, st, snap, k, created_by.buf, err);
out:
	plait_snapshot_release(snap);
	plait_buf_release(&key);
	plait_buf_release(&created_by);
	return r;
}

static int run_instruction(struct builder *b, struct stage *st, size_t idx,
			   const struct plait_df_instr *in, struct plait_error **err)
{
	if (cancelled(b))
		return plait_error_set(err, PLAIT_E_CANCELLED, "interrupted at %s:%d", b->df.filename,
				       in->line);
	b->cur = st;
	b->step++;
	emit(b, PLAIT_BUILD_STEP_START, in->original, 0);
	int r;
	switch (in->kind) {
	case PLAIT_DF_RUN:
		r = do_run(b, st, idx, in, err);
		break;
	case PLAIT_DF_COPY:
	case PLAIT_DF_ADD:
		r = do_copy(b, st, idx, in, err);
		break;
	case PLAIT_DF_WORKDIR:
		r = do_workdir(b, st, in, err);
		if (r >= 0)
			emit(b, PLAIT_BUILD_STEP_DONE, NULL, 0);
		break;
	default:
		r = do_meta(b, st, in, err);
		if (r >= 0)
			emit(b, PLAIT_BUILD_STEP_DONE, NULL, 0);
	}
	if (r < 0)
		emit(b, PLAIT_BUILD_STEP_ERROR, (*err)->msg, 0);
	return r;
}

/* A base image's ONBUILD triggers run right after FROM, and are consumed:
 * the new image does not pass them on (Dockerfile reference). */
static int run_onbuild(struct builder *b, struct stage *st, size_t idx, struct plait_error **err)
{
	char **triggers = TAKE_PTR(st->cfg.config.on_build);
	int r = 0;
	for (size_t i = 0; triggers && triggers[i] && r >= 0; i++) {
		struct plait_df_instr in = { 0 };
		r = plait_df_parse_instruction(triggers[i], b->df.escape, b->df.filename, st->df->from->line,
					       &in, err);
		if (r < 0) {
			plait_error_wrap(err, "ONBUILD trigger '%s' of the base image", triggers[i]);
			break;
		}
		b->total++;
		r = run_instruction(b, st, idx, &in, err);
		plait_df_instr_release(&in);
	}
	plait_strv_free(triggers);
	return r;
}

static int build_stage(struct builder *b, size_t idx, struct plait_error **err)
{
	struct stage *st = &b->stages[idx];
	struct stage *prev = b->cur;
	b->cur = st;
	b->step++;
	int r = do_from(b, st, idx, err);
	if (r >= 0)
		r = run_onbuild(b, st, idx, err);
	for (size_t i = 0; i < st->df->n_instrs && r >= 0; i++)
		r = run_instruction(b, st, idx, &st->df->instrs[i], err);
	st->built = r >= 0;
	b->cur = prev;
	return r;
}

/* Which stages the target needs: FROM <stage>, COPY --from, RUN --mount from=. */
static void mark_needed(struct builder *b, size_t idx)
{
	struct stage *st = &b->stages[idx];
	if (st->needed)
		return;
	st->needed = true;
	_cleanup_free_ char *image = NULL;
	plait_expand_word(st->df->image, &(struct plait_expand_opts){ .escape = b->df.escape }, lookup,
			  &(struct lookup_ctx){ b, NULL }, &image, NULL);
	struct stage *base = image ? find_stage(b, image, idx) : NULL;
	if (base)
		mark_needed(b, (size_t)(base - b->stages));
	for (size_t i = 0; i < st->df->n_instrs; i++) {
		const struct plait_df_instr *in = &st->df->instrs[i];
		const char *from = in->kind == PLAIT_DF_COPY ? plait_df_flag_get(in, "from") : NULL;
		struct stage *dep = from ? find_stage(b, from, idx) : NULL;
		if (dep)
			mark_needed(b, (size_t)(dep - b->stages));
		/* RUN --mount=...,from=<stage> */
		for (size_t f = 0; in->kind == PLAIT_DF_RUN && f < in->n_flags; f++) {
			if (!streq(in->flags[f].name, "mount"))
				continue;
			const char *p = strstr(in->flags[f].value, "from=");
			if (!p || (p != in->flags[f].value && p[-1] != ','))
				continue;
			_cleanup_free_ char *name = xstrndup(p + 5, strcspn(p + 5, ","));
			dep = find_stage(b, name, idx);
			if (dep)
				mark_needed(b, (size_t)(dep - b->stages));
		}
	}
}

static void set_auto_args(struct builder *b)
{
	const struct plait_platform *t = &b->o->platform, *h = &b->o->build_platform;
	plait_map_set(&b->meta, "TARGETPLATFORM", b->o->platform_str);
	plait_map_set(&b->meta, "TARGETOS", t->os ? t->os : "");
	plait_map_set(&b->meta, "TARGETARCH", t->architecture ? t->architecture : "");
	plait_map_set(&b->meta, "TARGETVARIANT", t->variant ? t->variant : "");
	plait_map_set(&b->meta, "BUILDPLATFORM", b->o->build_platform_str);
	plait_map_set(&b->meta, "BUILDOS", h->os ? h->os : "");
	plait_map_set(&b->meta, "BUILDARCH", h->architecture ? h->architecture : "");
	plait_map_set(&b->meta, "BUILDVARIANT", h->variant ? h->variant : "");
}

static int write_image(struct builder *b, struct stage *st, struct plait_build_result *res,
		       struct plait_error **err)
{
	for (const char *const *l = b->o->labels; l && *l; l++) {
		const char *eq = strchr(*l, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*l, (size_t)(eq - *l)) : xstrdup(*l);
		plait_map_set(&st->cfg.config.labels, k, eq ? eq + 1 : "");
	}
	struct plait_buf when = PLAIT_BUF_INIT, cj = PLAIT_BUF_INIT, mj = PLAIT_BUF_INIT;
	if (b->o->have_epoch || !st->last_created)
		now_rfc3339(b, &when);
	else
		plait_buf_adds(&when, st->last_created);
	free(st->cfg.created);
	st->cfg.created = plait_buf_detach(&when, NULL);
	if (!st->cfg.diff_ids)
		st->cfg.diff_ids = xcalloc(1, sizeof(char *));
	int r = plait_image_config_serialise(&st->cfg, &cj, err);
	char cd[PLAIT_SHA256_DIGEST_SIZE];
	if (r >= 0)
		r = plait_store_put_bytes(b->store, cj.buf, cj.len, cd, err);
	if (r < 0)
		goto out;
	struct plait_manifest m = { .schema_version = 2 };
	bool docker = b->o->docker_media_types;
	m.media_type = (char *)plait_media_type_to_string(docker ? PLAIT_MT_DOCKER_MANIFEST : PLAIT_MT_OCI_MANIFEST);
	m.config.media_type = (char *)plait_media_type_to_string(docker ? PLAIT_MT_DOCKER_CONFIG : PLAIT_MT_OCI_CONFIG);
	memcpy(m.config.digest, cd, sizeof(cd));
	m.config.size = (int64_t)cj.len;
	m.layers = xcalloc(st->n_layers + 1, sizeof(*m.layers));
	m.n_layers = st->n_layers;
	res->size = (int64_t)cj.len;
	for (size_t i = 0; i < st->n_layers; i++) {
		m.layers[i] = st->layers[i].desc; /* shallow: not released here */
		/* The same gzip bytes under Docker's name (base layers may be either). */
		enum plait_media_type lt = plait_media_type_from_string(m.layers[i].media_type);
		if (docker && lt == PLAIT_MT_OCI_LAYER_GZIP)
			m.layers[i].media_type = (char *)plait_media_type_to_string(PLAIT_MT_DOCKER_LAYER_GZIP);
		else if (docker && lt != PLAIT_MT_DOCKER_LAYER_GZIP && lt != PLAIT_MT_DOCKER_LAYER_FOREIGN) {
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "--index-format docker: layer %zu is %s, which a Docker manifest cannot hold; "
					    "use the OCI format", i + 1, m.layers[i].media_type);
			free(m.layers);
			goto out;
		}
		res->size += st->layers[i].desc.size;
	}
	for (const char *const *a = b->o->annotations; a && *a; a++) {
		const char *eq = strchr(*a, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*a, (size_t)(eq - *a)) : xstrdup(*a);
		plait_map_set(&m.annotations, k, eq ? eq + 1 : "");
	}
	r = plait_manifest_serialise(&m, &mj, err);
	plait_map_release(&m.annotations);
	free(m.layers);
	char md[PLAIT_SHA256_DIGEST_SIZE];
	if (r >= 0)
		r = plait_store_put_bytes(b->store, mj.buf, mj.len, md, err);
	if (r < 0)
		goto out;
	res->manifest.media_type = xstrdup(m.media_type);
	memcpy(res->manifest.digest, md, sizeof(md));
	res->manifest.size = (int64_t)mj.len;
	res->size += (int64_t)mj.len;
	memcpy(res->config_digest, cd, sizeof(cd));
out:
	plait_buf_release(&cj);
	plait_buf_release(&mj);
	return r;
}

void plait_build_result_release(struct plait_build_result *r)
{
	if (!r)
		return;
	plait_descriptor_release(&r->manifest);
	if (r->lock_fd > 0)
		close(r->lock_fd);
	r->lock_fd = -1;
}

/* Read and parse the Dockerfile, set the args, find the target stage and
 * mark the stages it needs: what both a build and the planner's base image
 * check start from. */
static int prepare(struct builder *b, const char *dfpath, struct plait_buf *data, size_t *target_out,
		   struct plait_error **err)
{
	const struct plait_build_opts *o = b->o;
	int r = plait_buf_read_file(data, dfpath, 16u << 20);
	if (r < 0) {
		/* A missing Dockerfile or context is the command line's fault: exit 2. */
		r = plait_error_set_errno(err, r == -ENOENT ? PLAIT_E_USAGE : PLAIT_E_IO, r,
					  "cannot read Dockerfile '%s'%s", dfpath,
					  r == -ENOENT ? " (name the context directory, and the Dockerfile with -f)" : "");
		return r;
	}
	const char *base = strrchr(dfpath, '/');
	r = plait_dockerfile_parse(data->buf, data->len, base ? base + 1 : dfpath, &b->df, err);
	if (r < 0) {
		(*err)->code = PLAIT_E_USAGE; /* the Dockerfile must change: exit 2 */
		return -PLAIT_E_USAGE;
	}
	if (!b->df.n_stages)
		return plait_error_set(err, PLAIT_E_USAGE, "%s has no FROM: nothing to build", dfpath);
	for (const char *const *a = o->build_args; a && *a; a++) {
		const char *eq = strchr(*a, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*a, (size_t)(eq - *a)) : xstrdup(*a);
		const char *v = eq ? eq + 1 : getenv(k); /* --build-arg NAME takes it from the environment */
		if (v)
			plait_map_set(&b->build_args, k, v);
	}
	set_auto_args(b);
	/* Global ARGs, in order, each seeing those before it. */
	for (size_t i = 0; i < b->df.n_global_args; i++) {
		const struct plait_df_instr *in = &b->df.global_args[i];
		for (size_t j = 0; j < in->n_kvs; j++) {
			const char *given = plait_map_get(&b->build_args, in->kvs[j].key);
			_cleanup_free_ char *def = NULL;
			if (!given && in->kvs[j].value &&
			    (r = expand_word(b, NULL, in, in->kvs[j].value, &def, err)) < 0)
				return r;
			if (given || def)
				plait_map_set(&b->meta, in->kvs[j].key, given ? given : def);
		}
	}
	b->n_stages = b->df.n_stages;
	b->stages = xcalloc(b->n_stages, sizeof(*b->stages));
	for (size_t i = 0; i < b->n_stages; i++) {
		b->stages[i].df = &b->df.stages[i];
		struct plait_buf lb = PLAIT_BUF_INIT;
		if (b->df.stages[i].name)
			plait_buf_adds(&lb, b->df.stages[i].name);
		else
			plait_buf_addf(&lb, "stage-%zu", i);
		b->stages[i].label = plait_buf_detach(&lb, NULL);
	}
	size_t target = b->n_stages - 1;
	if (o->target) {
		const struct plait_df_stage *ts = plait_dockerfile_find_stage(&b->df, o->target);
		if (!ts) {
			struct plait_buf names = PLAIT_BUF_INIT;
			for (size_t i = 0; i < b->n_stages; i++)
				if (b->df.stages[i].name)
					plait_buf_addf(&names, "%s%s", names.len ? ", " : "", b->df.stages[i].name);
			r = plait_error_set(err, PLAIT_E_USAGE, "--target '%s': no such stage in %s; it has: %s",
					    o->target, b->df.filename, names.len ? names.buf : "no named stages");
			plait_buf_release(&names);
			return r;
		}
		target = ts->index;
	}
	mark_needed(b, target);
	*target_out = target;
	return 0;
}

static void builder_release(struct builder *b)
{
	unlock_step(b);
	for (size_t i = 0; i < b->n_stages; i++)
		stage_release(&b->stages[i]);
	for (size_t i = 0; i < b->n_tail; i++)
		free(b->tail[i]);
	free(b->stages);
	plait_map_release(&b->build_args);
	plait_map_release(&b->meta);
	plait_context_free(b->ctx);
	plait_store_free(b->store);
	if (b->lockfd >= 0)
		close(b->lockfd);
	free(b->cache);
	free(b->layers_dir);
	free(b->steps_dir);
	free(b->mounts_dir);
	free(b->work_dir);
	plait_dockerfile_release(&b->df);
}

int plait_build(const struct plait_build_opts *o, struct plait_build_result *res,
		struct plait_error **err)
{
	struct builder b = { .o = o, .lockfd = -1, .step_lock = -1 };
	struct plait_buf data = PLAIT_BUF_INIT;
	_cleanup_free_ char *dfpath = o->dockerfile ? xstrdup(o->dockerfile) : join(o->context_dir, "Dockerfile");
	memset(res, 0, sizeof(*res));
	res->lock_fd = -1;
	size_t target = 0;
	int r = prepare(&b, dfpath, &data, &target, err);
	if (r < 0)
		goto out;
	r = plait_context_open(o->context_dir, dfpath, &b.ctx, err);
	if (r < 0)
		goto out;
	r = open_cache(&b, err);
	if (r < 0)
		goto out;
	{
		/* COPY's cache check need not read unchanged context files again. */
		_cleanup_free_ char *memo = join(b.cache, "context-digests");
		plait_context_set_memo(b.ctx, memo);
	}

	for (size_t i = 0; i < b.n_stages; i++)
		if (b.stages[i].needed)
			b.total += 1 + (int)b.stages[i].df->n_instrs;
	for (size_t i = 0; i <= target && r >= 0; i++)
		if (b.stages[i].needed && !b.stages[i].built)
			r = build_stage(&b, i, err);
	if (r >= 0 && cancelled(&b))
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted: no image written");
	if (r < 0)
		goto out;
	r = write_image(&b, &b.stages[target], res, err);
	res->steps = b.total;
	res->cached = b.cached;
	if (r >= 0)
		res->lock_fd = TAKE_FD(b.lockfd);
out:
	if (b.ctx)
		plait_context_save_memo(b.ctx);
	builder_release(&b);
	plait_buf_release(&data);
	return r;
}

void plait_build_needs_release(struct plait_build_needs *n)
{
	for (size_t i = 0; n->bases && i < n->n_bases; i++) {
		free(n->bases[i].ref);
		free(n->bases[i].platform);
	}
	free(n->bases);
	memset(n, 0, sizeof(*n));
}

static bool stage_has_run(const struct plait_df_stage *df)
{
	for (size_t k = 0; k < df->n_instrs; k++)
		if (df->instrs[k].kind == PLAIT_DF_RUN)
			return true;
	return false;
}

int plait_build_needs(const struct plait_build_opts *o, struct plait_build_needs *out, struct plait_error **err)
{
	struct builder b = { .o = o, .lockfd = -1, .step_lock = -1 };
	struct plait_buf data = PLAIT_BUF_INIT;
	_cleanup_free_ char *dfpath = o->dockerfile ? xstrdup(o->dockerfile) : join(o->context_dir, "Dockerfile");
	size_t target = 0;
	memset(out, 0, sizeof(*out));
	int r = prepare(&b, dfpath, &data, &target, err);
	/* Each stage's platform, as from() sets run_platform: FROM --platform's,
	 * else the stage it starts from's, else the target's. */
	char **plat = xcalloc(b.n_stages + 1, sizeof(*plat));
	for (size_t i = 0; r >= 0 && i <= target; i++) {
		struct stage *st = &b.stages[i];
		const struct plait_df_instr *in = st->df->from;
		_cleanup_free_ char *image = NULL, *platform = NULL;
		r = expand_word(&b, NULL, in, st->df->image, &image, err);
		if (r >= 0 && st->df->platform)
			r = expand_word(&b, NULL, in, st->df->platform, &platform, err);
		if (r < 0)
			break;
		struct stage *from = find_stage(&b, image, i);
		plat[i] = xstrdup(platform ? platform : from ? plat[from - b.stages] : o->platform_str);
		if (!st->needed)
			continue;
		if (stage_has_run(st->df) && streq(plat[i], o->platform_str))
			out->runs_on_target = true;
		if (from || streq(image, "scratch"))
			continue;
		out->bases = xrealloc(out->bases, (out->n_bases + 1) * sizeof(*out->bases));
		out->bases[out->n_bases++] = (struct plait_base_ref){ .ref = TAKE_PTR(image),
								      .platform = xstrdup(plat[i]),
								      .line = in->line };
	}
	plait_strv_free(plat);
	if (r < 0)
		plait_build_needs_release(out);
	builder_release(&b);
	plait_buf_release(&data);
	return r;
}
