/* core/build_stage.c - a stage's state as its steps change it: layers,
 * history, the cache key chain, cache hits under the per-step lock, and what
 * every step needs to report (events, "Dockerfile:N: " messages, variables). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build_internal.h"
#include "cache_remote.h"
#include "expand.h"
#include "unpack.h"
#include "banned.h"

void build_emit(struct builder *b, enum plait_build_event_kind kind, const char *text, double secs)
{
	if (kind == PLAIT_BUILD_STEP_START) {
		b->step_records = xrealloc(b->step_records, (b->n_step_records + 1) * sizeof(*b->step_records));
		b->step_records[b->n_step_records++] = (struct plait_build_step_record){
			.stage = xstrdup(b->cur ? b->cur->label : ""), .text = xstrdup(text ? text : "") };
	} else if (kind == PLAIT_BUILD_STEP_CACHED && b->n_step_records) {
		b->step_records[b->n_step_records - 1].cached = true;
	}
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

size_t build_add_material(struct builder *b, const char *ref, const char *resolved, const char *platform,
			  const char *digest)
{
	for (size_t i = 0; i < b->n_materials; i++) {
		const struct plait_build_material *m = &b->materials[i];
		if (streq(m->ref, ref) && streq(m->digest, digest) && !m->platform == !platform &&
		    (!platform || streq(m->platform, platform)))
			return i + 1;
	}
	b->materials = xrealloc(b->materials, (b->n_materials + 1) * sizeof(*b->materials));
	struct plait_build_material *m = &b->materials[b->n_materials++];
	*m = (struct plait_build_material){ .ref = xstrdup(ref), .resolved = xstrdup_or_null(resolved),
					    .platform = xstrdup_or_null(platform) };
	snprintf(m->digest, sizeof(m->digest), "%s", digest);
	return b->n_materials;
}

void build_warn_devices(struct builder *b, const char *what, size_t n)
{
	struct plait_buf m = PLAIT_BUF_INIT;
	plait_buf_addf(&m, "warning: %s: %zu device node%s left out: a rootless build (user namespace) "
		       "cannot create devices; RUN and COPY do not see %s", what, n, n == 1 ? "" : "s",
		       n == 1 ? "it" : "them");
	build_emit(b, PLAIT_BUILD_STEP_OUTPUT, m.buf, 0);
	plait_buf_release(&m);
}

bool build_cancelled(const struct builder *b)
{
	return b->o->cancel && *b->o->cancel;
}

/* "Dockerfile:12" for messages. */
void build_where(const struct builder *b, const struct plait_df_instr *in, struct plait_buf *out)
{
	plait_buf_addf(out, "%s:%d", b->df.filename, in->line);
}

int build_instr_error(const struct builder *b, const struct plait_df_instr *in, int code,
		       struct plait_error **err, const char *fmt, ...)
{
	struct plait_buf m = PLAIT_BUF_INIT;
	build_where(b, in, &m);
	plait_buf_adds(&m, ": ");
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&m, fmt, ap);
	va_end(ap);
	int r = plait_error_set(err, code, "%s", m.buf);
	plait_buf_release(&m);
	return r;
}

/* The SHELL in effect: the image's, or /bin/sh -c. */
char *const *build_shell_of(const struct stage *st)
{
	static char *const default_shell[] = { (char *)"/bin/sh", (char *)"-c", NULL };
	return st->cfg.config.shell ? st->cfg.config.shell : default_shell;
}

void build_clean_abs(const char *workdir, const char *p, struct plait_buf *out)
{
	struct plait_buf joined = PLAIT_BUF_INIT;
	if (p[0] == '/')
		plait_buf_adds(&joined, p);
	else
		plait_buf_addf(&joined, "%s/%s", workdir && *workdir ? workdir : "/", p);
	plait_path_clean(joined.buf, out);
	plait_buf_release(&joined);
}

/* ------------------------------------------------------------ variables */

const char *build_lookup(const char *name, void *ud)
{
	struct lookup_ctx *l = ud;
	if (!l->st)
		return plait_map_get(&l->b->meta, name);
	/* ENV wins over ARG of the same name (Dockerfile reference). */
	const char *v = env_get(l->st->cfg.config.env, name);
	return v ? v : plait_map_get(&l->st->args, name);
}

int build_expand_word(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		       const char *text, char **out, struct plait_error **err)
{
	struct plait_expand_opts eo;
	plait_expand_opts_for(&eo, &b->df, in);
	struct lookup_ctx l = { b, st };
	return plait_expand_word(text, &eo, build_lookup, &l, out, err);
}

/* ------------------------------------------------------------ layers and history */

/* Keys being worked on in this process, one thread each (build_key_lock). */
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t keys_cond;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;
static char **keys_busy;

static void keys_init(void)
{
	plait_cond_init_monotonic(&keys_cond);
}

int build_key_lock(const char *key, const atomic_int *cancel)
{
	pthread_once(&keys_once, keys_init);
	pthread_mutex_lock(&keys_lock);
	while (plait_strv_contains((const char *const *)keys_busy, key)) {
		if (cancel && *cancel) {
			pthread_mutex_unlock(&keys_lock);
			return -PLAIT_E_CANCELLED;
		}
		plait_cond_wait_ms(&keys_cond, &keys_lock, 50); /* woken by an unlock; a cancel seen within 50 ms */
	}
	plait_strv_push(&keys_busy, key);
	pthread_mutex_unlock(&keys_lock);
	return 0;
}

void build_key_unlock(const char *key)
{
	pthread_mutex_lock(&keys_lock); /* after a build_key_lock: keys_cond is set up */
	size_t n = plait_strv_length((const char *const *)keys_busy);
	for (size_t i = 0; i < n; i++)
		if (streq(keys_busy[i], key)) {
			free(keys_busy[i]);
			keys_busy[i] = keys_busy[n - 1];
			keys_busy[n - 1] = NULL;
			break;
		}
	pthread_cond_broadcast(&keys_cond);
	pthread_mutex_unlock(&keys_lock);
}

/* Make sure the layer blob d (diff_id) is unpacked as an overlay lower. */
int build_ensure_layer_dir(struct builder *b, struct layer_ref *l, struct plait_error **err)
{
	l->dir = plait_cache_layer_dir(b->cache, l->diff_id);
	struct stat st;
	if (stat(l->dir, &st) == 0) {
		utimensat(AT_FDCWD, l->dir, NULL, 0); /* a use: cache prune is LRU on mtime */
		return 0;
	}
	/* A --cache-from hit's blob comes now, when its files are needed. */
	int r = plait_store_has(b->store, l->desc.digest, NULL, err);
	if (r == 0 && l->src)
		r = plait_cache_fetch_blob(l->src, b->store, &l->desc, err);
	if (r == 0 && (r = plait_cache_import_fetch(b->o->cache_import, b->store, &l->desc, err)) == 0)
		r = plait_error_set(err, PLAIT_E_NOT_FOUND, "layer %s is not in the cache store", l->desc.digest);
	if (r < 0)
		return r;
	/* Locked while it fills: one a killed build left is swept by the next
	 * (core/fs.h). The tree moves away by rename, the lock stays behind. */
	struct plait_tmpdir t;
	r = plait_tmpdir_make(b->cache->layers_dir, ".tmp-", &t, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *tmp = plait_path_join(t.path, "tree");
	/* 0755, the mode of an image's root when its layer has no "./" entry (as
	 * docker and containerd give it): the copying snapshotter copies a
	 * lower's root metadata onto the snapshot root, and a 0700 root would
	 * lock every RUN with a USER other than root out of its own image.
	 * (layers/ itself is 0700: nobody else reaches the tree.) */
	if (mkdir(tmp, 0755) < 0 || chmod(tmp, 0755) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot create '%s'", tmp);
		plait_tmpdir_remove(&t);
		return r;
	}
	size_t devices = 0;
	struct plait_unpack_options uo = { .mode = PLAIT_UNPACK_OVERLAY,
					   .media_type = l->desc.media_type,
					   .diff_id = l->diff_id,
					   .digest = l->desc.digest,
					   .devices_skipped = &devices };
	r = plait_unpack_blob(b->store, l->desc.digest, tmp, &uo, NULL, err);
	if (r >= 0 && devices)
		build_warn_devices(b, l->desc.digest, devices);
	if (r >= 0 && rename(tmp, l->dir) < 0) {
		/* another build unpacked it first */
		if (errno != EEXIST && errno != ENOTEMPTY)
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot rename '%s'", tmp);
	}
	plait_tmpdir_remove(&t);
	return r;
}

void layer_ref_release(struct layer_ref *l)
{
	plait_descriptor_release(&l->desc);
	free(l->dir);
}

void stage_add_layer(struct stage *st, struct layer_ref *l)
{
	st->layers = xrealloc(st->layers, (st->n_layers + 1) * sizeof(*st->layers));
	st->layers[st->n_layers++] = *l;
	memset(l, 0, sizeof(*l));
	plait_strv_push(&st->cfg.diff_ids, st->layers[st->n_layers - 1].diff_id);
}

/* created NULL: the time of the newest layer (metadata steps), else now. */
void stage_add_history(struct builder *b, struct stage *st, const char *created_by, bool empty,
			      const char *created)
{
	char now[PLAIT_RFC3339_MAX];
	plait_rfc3339_now_or(b->o->have_epoch, b->o->source_date_epoch, now);
	const char *when = b->o->have_epoch || (!created && !st->last_created) ? now
		: created ? created : st->last_created;
	if (created && !b->o->have_epoch) {
		free(st->last_created);
		st->last_created = xstrdup(created);
	}
	st->cfg.history = xrealloc(st->cfg.history, (st->cfg.n_history + 1) * sizeof(*st->cfg.history));
	struct plait_history *h = &st->cfg.history[st->cfg.n_history++];
	memset(h, 0, sizeof(*h));
	h->created = xstrdup(when);
	h->created_by = xstrdup(created_by);
	h->comment = xstrdup("buildkit.dockerfile.v0");
	h->empty_layer = empty;
}

/* Step key k made (or reused) st's newest state: for --cache-to. */
void build_note_key(struct builder *b, struct stage *st, const char *k)
{
	plait_strv_push(&st->keys, k);
	if (!plait_strv_contains(b->all_keys, k))
		plait_strv_push(&b->all_keys, k);
}

/* The key of a state: what came before and what this step is. */
void build_chain_key(const char *parent, const struct plait_buf *step, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "plait-step-v1\n%s\n", parent);
	plait_buf_add(&b, step->buf, step->len);
	plait_sha256_buf(b.buf, b.len, out);
	plait_buf_release(&b);
}

/* What shapes every layer of a chain: part of the key at its root, so a layer
 * made with one epoch or compression is never reused for another. */
/* Part of every chain's root key: raised whenever the same inputs give a
 * step another result (2: layers gzip'd by core/gzip.c, BuildKit's COPY,
 * WORKDIR and ARG rules; 3: RUN layers without the directories overlayfs
 * only copied up, COPY keeping hard links), so that no cache, local or
 * shared, made by an older plait answers for this one's steps. */
#define STEP_KEYS_VERSION 3

void build_layer_settings(const struct builder *b, struct plait_buf *k)
{
	plait_buf_addf(k, "keys %d\n", STEP_KEYS_VERSION);
	plait_buf_addf(k, "compression %d\n", (int)b->o->compression);
	if (b->o->have_epoch)
		plait_buf_addf(k, "epoch %lld\n", (long long)b->o->source_date_epoch);
}

const char *const *build_lowers_of(const struct stage *st, const char ***buf)
{
	*buf = xcalloc(st->n_layers + 1, sizeof(char *));
	for (size_t i = 0; i < st->n_layers; i++)
		(*buf)[i] = st->layers[i].dir;
	return *buf;
}

int build_ensure_stage_layers(struct builder *b, struct stage *st, struct plait_error **err)
{
	for (size_t i = 0; i < st->n_layers; i++) {
		struct layer_ref *l = &st->layers[i];
		if (!l->lazy)
			continue;
		free(l->dir);
		l->dir = NULL;
		int r = build_ensure_layer_dir(b, l, err);
		if (r < 0)
			return r;
		l->lazy = false;
	}
	return 0;
}

int build_snapshot_of_stage(struct builder *b, struct stage *st, struct plait_snapshot **out,
			    struct plait_error **err)
{
	const char **lw = NULL;
	int r = build_ensure_stage_layers(b, st, err);
	if (r < 0)
		return r;
	r = plait_snapshot_prepare(build_lowers_of(st, &lw), st->n_layers, b->cache->run_dir,
				       PLAIT_SNAPSHOT_AUTO, out, err);
	free(lw);
	return r;
}

void build_layer_options(const struct builder *b, const struct stage *st, struct plait_layer_options *lo)
{
	*lo = (struct plait_layer_options){ .compression = b->o->compression,
					    .clamp_mtime = b->o->have_epoch,
					    .source_date_epoch = b->o->source_date_epoch,
					    .cancel = build_layer_cancel(b) };
	if (st->in_image && b->o->layer_writer) {
		lo->on_writer = b->o->layer_writer;
		lo->on_writer_ud = b->o->layer_writer_ctx;
	}
}

int build_commit_change(struct builder *b, struct stage *st, struct plait_snapshot *snap,
			const char *key, const char *alias, const char *created_by,
			const struct plait_df_instr *in, struct plait_error **err)
{
	int r;
	if (plait_snapshot_upper(snap) && (r = build_commit_behind(b, st, snap, key, alias, created_by, in, err)) <= 0)
		return r;
	/* In line: the copying snapshotter (the change is found by comparing
	 * trees), or an overlay whose root stayed busy (its upper, still
	 * mounted, is read; the tree comes from the blob). Earlier layers'
	 * digests first: this one's record must not come before theirs. */
	if ((r = build_commits_settle(b, NULL, err)) < 0)
		return r;
	struct plait_layer_options lo;
	build_layer_options(b, st, &lo);
	struct plait_layer out;
	if (plait_snapshot_upper(snap)) {
		const char **lw = NULL;
		r = plait_layer_from_overlay_over(b->store, plait_snapshot_upper(snap), build_lowers_of(st, &lw),
						  st->n_layers, &lo, &out, err);
		free(lw);
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
			r = plait_layer_from_changes(b->store, plait_snapshot_root(snap), lc, cl.n, &lo, &out, err);
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
		r = build_ensure_layer_dir(b, &l, err);
		if (r < 0) {
			layer_ref_release(&l);
			return r;
		}
	}
	char when[PLAIT_RFC3339_MAX];
	plait_rfc3339_now_or(b->o->have_epoch, b->o->source_date_epoch, when);
	struct plait_cache_step rec = { .empty = empty, .created = when };
	if (!empty) {
		rec.layer = l.desc; /* shallow: l keeps it */
		memcpy(rec.diff_id, l.diff_id, sizeof(rec.diff_id));
	}
	plait_cache_step_write(b->cache, key, &rec);
	bool aliased = alias && plait_cache_alias_write(b->cache, alias, key) == 1;
	plait_cache_step_unlock(&b->step_lock); /* others waiting for this step find the record now */
	if (!empty)
		stage_add_layer(st, &l);
	stage_add_history(b, st, created_by, empty, when);
	memcpy(st->key, key, PLAIT_SHA256_DIGEST_SIZE);
	build_note_key(b, st, key);
	if (aliased)
		build_note_key(b, st, alias);
	return 0;
}

/* A cache hit: take the recorded layer. */
static int apply_hit(struct builder *b, struct stage *st, const char *key, struct layer_ref *l,
		     bool empty, const char *created, const char *created_by, struct plait_error **err)
{
	if (!empty) {
		struct stat sst;
		if (plait_store_has(b->store, l->desc.digest, NULL, NULL) == 1) {
			int r = build_ensure_layer_dir(b, l, err);
			if (r < 0)
				return r;
		} else {
			/* imported: pulled and unpacked only if a later step reads it */
			l->dir = plait_cache_layer_dir(b->cache, l->diff_id);
			l->lazy = stat(l->dir, &sst) < 0;
		}
		stage_add_layer(st, l);
	}
	stage_add_history(b, st, created_by, empty, created);
	memcpy(st->key, key, PLAIT_SHA256_DIGEST_SIZE);
	build_note_key(b, st, key);
	if (build_prefetched(b, key)) { /* made alongside during this build: done, not cached */
		build_emit(b, PLAIT_BUILD_STEP_DONE, NULL, (double)(plait_now_ns() - b->step_t0) / 1e9);
		return 0;
	}
	b->cached++;
	build_emit(b, PLAIT_BUILD_STEP_CACHED, NULL, 0);
	return 0;
}

void stage_release(struct stage *st)
{
	base_image_release(&st->base);
	plait_image_config_release(&st->cfg);
	for (size_t j = 0; j < st->n_layers; j++)
		layer_ref_release(&st->layers[j]);
	free(st->layers);
	plait_map_release(&st->args);
	plait_strv_free(st->declared);
	free(st->label);
	free(st->last_created);
	free(st->run_platform);
	plait_strv_free(st->keys);
}

/* A --cache-from record for k: recorded here too (the blob may come later),
 * so a --cache-to of this build exports it like any local step. */
static bool import_hit(struct builder *b, const char *k, struct plait_cache_step *rec)
{
	if (plait_cache_import_lookup(b->o->cache_import, k, rec) != 1)
		return false;
	plait_cache_step_write(b->cache, k, rec);
	return true;
}

int build_alias_lookup(struct builder *b, const char *alias, char key[PLAIT_SHA256_DIGEST_SIZE])
{
	if (b->o->no_cache)
		return 0;
	if (plait_cache_alias_lookup(b->cache, alias, key) == 1)
		return 1;
	struct plait_cache_step rec;
	if (plait_cache_import_lookup(b->o->cache_import, alias, &rec) != 1)
		return 0;
	bool is_alias = rec.alias_of[0] != '\0';
	if (is_alias) {
		memcpy(key, rec.alias_of, PLAIT_SHA256_DIGEST_SIZE);
		plait_cache_step_write(b->cache, alias, &rec); /* here too, for a --cache-to */
	}
	plait_cache_step_release(&rec);
	return is_alias;
}

int build_use_cached_step(struct builder *b, struct stage *st, const char *k, const char *created_by,
			  struct plait_error **err)
{
	struct plait_cache_step rec;
	plait_cache_step_unlock(&b->step_lock);
	if (b->o->no_cache)
		return 0;
	if (plait_cache_step_lookup(b->cache, k, &rec) != 1 && !import_hit(b, k, &rec)) {
		int r = plait_cache_step_lock(b->cache, k, b->o->cancel, &b->step_lock, err);
		if (r < 0)
			return r;
		if (plait_cache_step_lookup(b->cache, k, &rec) != 1 && !import_hit(b, k, &rec)) {
			if (b->recorder) /* known before the record exists: the job, waiting on the lock, sees it */
				build_prefetch_record(b->recorder, k);
			return 0; /* ours to run, under the lock */
		}
		plait_cache_step_unlock(&b->step_lock);
	}
	struct layer_ref hit = { 0 };
	if (!rec.empty) {
		hit.desc.media_type = TAKE_PTR(rec.layer.media_type);
		memcpy(hit.desc.digest, rec.layer.digest, sizeof(hit.desc.digest));
		hit.desc.size = rec.layer.size;
		memcpy(hit.diff_id, rec.diff_id, sizeof(hit.diff_id));
	}
	int r = apply_hit(b, st, k, &hit, rec.empty, rec.created, created_by, err);
	plait_cache_step_release(&rec);
	layer_ref_release(&hit);
	return r < 0 ? r : 1;
}

int build_key_and_use_cached_step(struct builder *b, struct stage *st, const struct plait_buf *step,
				  char k[PLAIT_SHA256_DIGEST_SIZE], const char *created_by,
				  struct plait_error **err)
{
	build_chain_key(st->key, step, k);
	return build_use_cached_step(b, st, k, created_by, err);
}

/* ------------------------------------------------------------ other stages */

const char *build_named_dir(const struct builder *b, const char *name)
{
	for (size_t i = 0; i < b->o->n_named_dirs; i++)
		if (streq(b->o->named_dirs[i].name, name))
			return b->o->named_dirs[i].dir;
	return NULL;
}

struct stage *build_find_stage(struct builder *b, const char *name, size_t before)
{
	const struct plait_df_stage *s = plait_dockerfile_find_stage(&b->df, name);
	if (!s || s->index >= before)
		return NULL;
	return &b->stages[s->index];
}

void stage_copy_state(struct stage *dst, const struct stage *src)
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
		dst->layers[i].lazy = src->layers[i].lazy;
		dst->layers[i].src = src->layers[i].src;
	}
	plait_strv_free(dst->keys);
	dst->keys = plait_strv_copy(src->keys);
	dst->n_layers = src->n_layers;
	memcpy(dst->key, src->key, sizeof(dst->key));
	free(dst->last_created);
	dst->last_created = xstrdup_or_null(src->last_created);
	free(dst->run_platform);
	dst->run_platform = xstrdup_or_null(src->run_platform);
}

int build_stage_ready(struct builder *b, const struct stage *fs, const struct plait_df_instr *in,
		      const char *name, struct plait_error **err)
{
	/* Its layers' digests are read next (a --from's key, FROM's copy). */
	int r = build_commits_settle(b, fs, err);
	if (r < 0 || !fs->df || fs->built)
		return r;
	/* The stage loop builds what build_mark_needed() found, in order, base
	 * images' ONBUILD triggers and ENV included (build_resolve_bases()): a
	 * stage not built yet here means the two disagree, an internal error. */
	return build_instr_error(b, in, PLAIT_E_USAGE, err,
				 "'%s' reaches stage '%s' only through the base image (an ONBUILD trigger or "
				 "its ENV), and the stages to build are chosen before any step runs: make this "
				 "stage depend on '%s' in the Dockerfile itself (e.g. COPY --from=%s)",
				 name, fs->label, fs->label, fs->label);
}
