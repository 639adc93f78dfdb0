/* core/copy.c - copy an image graph between endpoints: blobs in parallel, then
 * manifests (children first), then the root, then the tag. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>

#include "copy.h"
#include "digest.h"
#include "banned.h"

struct blob_job {
	struct plait_descriptor desc; /* media type, digest, size */
};

struct manifest_item {
	char *media_type;
	char digest[PLAIT_DIGEST_MAX];
	struct plait_buf bytes;
};

struct copier {
	struct plait_endpoint *src, *dst;
	const struct plait_copy_opts *opts;
	struct plait_copy_stats stats;

	struct blob_job *blobs;
	size_t n_blobs, alloc_blobs;
	struct manifest_item *manifests; /* children before parents, root excluded */
	size_t n_manifests, alloc_manifests;

	/* Registry to registry: blobs are staged here. Created on first use. */
	struct plait_tmpdir staging_dir;
	struct plait_store *staging;

	pthread_mutex_t lock; /* guards next, failed, err, stats and progress calls */
	size_t next;
	bool failed;
	struct plait_error *err;
};

static void progress(struct copier *c, enum plait_copy_event_kind kind, const struct plait_descriptor *d,
		     const char *tag)
{
	/* Called with c->lock held. */
	if (!c->opts || !c->opts->progress)
		return;
	struct plait_copy_event ev = {
		.kind = kind,
		.digest = d ? d->digest : NULL,
		.media_type = d ? d->media_type : NULL,
		.size = d ? d->size : 0,
		.tag = tag,
	};
	c->opts->progress(&ev, c->opts->progress_ctx);
}

static bool cancelled(const struct copier *c)
{
	return c->opts && c->opts->cancel && *c->opts->cancel;
}

static void add_blob(struct copier *c, const struct plait_descriptor *d)
{
	for (size_t i = 0; i < c->n_blobs; i++)
		if (streq(c->blobs[i].desc.digest, d->digest))
			return;
	PLAIT_ALLOC_GROW(c->blobs, c->n_blobs + 1, c->alloc_blobs);
	struct blob_job *j = &c->blobs[c->n_blobs++];
	memset(j, 0, sizeof(*j));
	j->desc.media_type = xstrdup_or_null(d->media_type);
	memcpy(j->desc.digest, d->digest, sizeof(d->digest));
	j->desc.size = d->size;
}

/* A foreign (Windows base) or non-distributable layer: its bytes live at
 * its urls and registries need not hold them, so it is not copied, as
 * skopeo and crane leave it (any of the OCI non-distributable types). */
static bool non_distributable(const struct plait_descriptor *d)
{
	return plait_media_type_from_string(d->media_type) == PLAIT_MT_DOCKER_LAYER_FOREIGN ||
	       (d->media_type && startswith(d->media_type, "application/vnd.oci.image.layer.nondistributable."));
}

static bool have_manifest(const struct copier *c, const char *digest)
{
	for (size_t i = 0; i < c->n_manifests; i++)
		if (streq(c->manifests[i].digest, digest))
			return true;
	return false;
}

/* Walk a manifest or index (its bytes in data), recording blobs and child
 * manifests. depth bounds nested indexes. */
static int walk(struct copier *c, const char *media_type, const char *digest, const char *data,
		size_t len, int depth, struct plait_error **err)
{
	enum plait_media_type t = plait_media_type_from_string(media_type);
	if (t == PLAIT_MT_UNKNOWN)
		t = plait_oci_sniff(data, len);
	if (depth > 8)
		return plait_error_set(err, PLAIT_E_INVALID, "%s: indexes nested more than 8 deep at %s",
				       c->src->display, digest);

	if (plait_media_type_is_index(t)) {
		struct plait_index idx = { 0 };
		int r = plait_index_parse(data, len, &idx, err);
		if (r < 0) {
			plait_error_wrap(err, "%s: index %s", c->src->display, digest);
			return r;
		}
		for (size_t i = 0; i < idx.n_manifests && r >= 0; i++) {
			const struct plait_descriptor *d = &idx.manifests[i];
			enum plait_media_type ct = plait_media_type_from_string(d->media_type);
			if (!plait_media_type_is_index(ct) && !plait_media_type_is_manifest(ct)) {
				/* An artifact referenced directly: copy it as a blob. */
				add_blob(c, d);
				continue;
			}
			if (have_manifest(c, d->digest))
				continue;
			struct plait_buf body = PLAIT_BUF_INIT;
			_cleanup_free_ char *mt = NULL;
			char got[PLAIT_DIGEST_MAX];
			r = c->src->ops->get_manifest(c->src, d->digest, &body, &mt, got, err);
			if (r >= 0 && !streq(got, d->digest))
				r = plait_error_set(err, PLAIT_E_INVALID,
						    "%s: manifest %s arrived with digest %s",
						    c->src->display, d->digest, got);
			if (r >= 0)
				r = walk(c, d->media_type, d->digest, body.buf, body.len, depth + 1, err);
			if (r >= 0) {
				PLAIT_ALLOC_GROW(c->manifests, c->n_manifests + 1, c->alloc_manifests);
				struct manifest_item *m = &c->manifests[c->n_manifests++];
				m->media_type = xstrdup(d->media_type);
				memcpy(m->digest, d->digest, sizeof(m->digest));
				m->bytes = body;
			} else {
				plait_buf_release(&body);
			}
		}
		plait_index_release(&idx);
		return r;
	}
	if (plait_media_type_is_manifest(t)) {
		struct plait_manifest m = { 0 };
		int r = plait_manifest_parse(data, len, &m, err);
		if (r < 0) {
			plait_error_wrap(err, "%s: manifest %s", c->src->display, digest);
			return r;
		}
		add_blob(c, &m.config);
		for (size_t i = 0; i < m.n_layers; i++)
			if (!non_distributable(&m.layers[i]))
				add_blob(c, &m.layers[i]);
		plait_manifest_release(&m);
		return 0;
	}
	return plait_error_set(err, PLAIT_E_INVALID,
			       "%s: %s has media type '%s', which is neither an image manifest nor an index",
			       c->src->display, digest, media_type ? media_type : "");
}

static int ensure_staging(struct copier *c, struct plait_error **err)
{
	int r = 0;
	pthread_mutex_lock(&c->lock);
	if (!c->staging) {
		if (c->opts && c->opts->staging_dir) {
			r = plait_store_open(c->opts->staging_dir, true, &c->staging, err);
		} else {
			r = plait_mkdtemp("staging", &c->staging_dir, err);
			if (r >= 0) {
				/* Below the locked directory: the layout flocks its own. */
				_cleanup_free_ char *layout = plait_path_join(c->staging_dir.path, "layout");
				r = plait_store_open(layout, true, &c->staging, err);
			}
		}
		if (r >= 0)
			plait_store_set_durable(c->staging, false);
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Move one blob into a writer of store: from src's own store when local, else fetched. */
static int fetch_into(struct copier *c, struct plait_store *store, const struct plait_descriptor *d,
		      struct plait_error **err)
{
	struct plait_blob_writer *w = NULL;
	int r = plait_blob_writer_new(store, d->digest, d->size, &w, err);
	if (r < 0)
		return r;
	r = c->src->ops->fetch_blob(c->src, d, w, err);
	if (r >= 0)
		r = plait_blob_writer_commit(w, NULL, err);
	plait_blob_writer_free(w);
	return r;
}

struct fetch_job {
	struct copier *c;
	const struct plait_descriptor *d;
	struct plait_blob_writer *w;
	int r;
	struct plait_error *err;
};

static void *fetch_thread(void *arg)
{
	struct fetch_job *j = arg;
	j->r = j->c->src->ops->fetch_blob(j->c->src, j->d, j->w, &j->err);
	if (j->r >= 0)
		j->r = plait_blob_writer_commit(j->w, NULL, &j->err); /* verifies the digest */
	else
		plait_blob_writer_abandon(j->w);
	return NULL;
}

/* Remote to remote: the blob is downloaded into the staging store while the
 * upload reads the same file behind it, so both run at once. The staged copy
 * makes the upload resumable; the registry checks the digest at the final
 * PUT, and the download is verified too, so wrong bytes are stored nowhere. */
static int relay_blob(struct copier *c, const struct plait_descriptor *d, struct plait_error **err)
{
	struct fetch_job j = { .c = c, .d = d };
	struct plait_blob_source src = { .fd = -1 };
	pthread_t t;
	int r = ensure_staging(c, err);
	if (r < 0)
		return r;
	r = plait_blob_writer_new(c->staging, d->digest, d->size, &j.w, err);
	if (r < 0)
		return r;
	r = plait_blob_writer_source(j.w, &src, err);
	if (r < 0)
		goto out;
	bool threaded = pthread_create(&t, NULL, fetch_thread, &j) == 0;
	if (!threaded)
		fetch_thread(&j); /* no thread to be had: download first, then upload */
	r = c->dst->ops->put_blob(c->dst, d, &src, err);
	/* A restarted download (a mirror sent bad bytes, the next source is
	 * being asked) may have fed the upload bytes that are gone, and the
	 * upload can fail on them (a short file, the registry's digest check)
	 * before the download finds them wrong and restarts: for the failures
	 * such bytes cause (a short or failed read of the staged file, the
	 * registry's refusal of the bytes: a 400 or another digest), let the
	 * download finish, and upload again from the verified staged copy
	 * below. Other failures (unreachable, refused login, 5xx after its
	 * retries, no such repository, Ctrl-C) stop the download at once. */
	int code = r < 0 ? plait_error_code(err) : 0;
	bool wait_download = r < 0 && (code == PLAIT_E_IO || code == PLAIT_E_INVALID || code == PLAIT_E_GENERIC);
	if (r < 0 && !wait_download)
		plait_blob_writer_abandon(j.w); /* stops the download */
	if (threaded)
		pthread_join(t, NULL);
	bool again = wait_download && plait_blob_writer_restarted(j.w);
	if (again && j.r >= 0) {
		_cleanup_close_ int fd = -1;
		plait_error_clear(err);
		r = plait_store_open_blob(c->staging, d->digest, &fd, err);
		if (r >= 0) {
			struct plait_blob_source whole = { .fd = fd };
			r = c->dst->ops->put_blob(c->dst, d, &whole, err);
		}
	}
	/* A failed download is the cause of whatever the upload saw. */
	if (j.r < 0 && (r >= 0 || j.err->code != PLAIT_E_CANCELLED)) {
		plait_error_move(err, TAKE_PTR(j.err));
		r = j.r;
	}
out:
	plait_blob_source_release(&src);
	plait_blob_writer_free(j.w);
	plait_error_free(j.err);
	plait_store_remove_blob(c->staging, d->digest, NULL);
	return r;
}

static int copy_blob(struct copier *c, const struct plait_descriptor *d, enum plait_copy_event_kind *how,
		     struct plait_error **err)
{
	int r = c->dst->ops->has_blob(c->dst, d, err);
	if (r < 0)
		return r;
	if (r > 0) {
		*how = PLAIT_COPY_BLOB_SKIPPED;
		return 0;
	}
	if (c->dst->ops->mount_blob) {
		r = c->dst->ops->mount_blob(c->dst, d, c->src, err);
		if (r < 0)
			return r;
		if (r > 0) {
			*how = PLAIT_COPY_BLOB_MOUNTED;
			return 0;
		}
	}
	*how = PLAIT_COPY_BLOB_COPIED;
	if (c->dst->store)
		return fetch_into(c, c->dst->store, d, err);

	if (c->src->store) {
		_cleanup_close_ int fd = -1;
		r = plait_store_open_blob(c->src->store, d->digest, &fd, err);
		if (r < 0) {
			plait_error_wrap(err, "%s", c->src->display);
			return r;
		}
		struct plait_blob_source src = { .fd = fd };
		return c->dst->ops->put_blob(c->dst, d, &src, err);
	}
	return relay_blob(c, d, err);
}

static void *worker(void *arg)
{
	struct copier *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		if (c->failed || c->next >= c->n_blobs) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		struct blob_job *j = &c->blobs[c->next++];
		pthread_mutex_unlock(&c->lock);

		struct plait_error *e = NULL;
		enum plait_copy_event_kind how = PLAIT_COPY_BLOB_COPIED;
		int r;
		if (cancelled(c))
			r = plait_error_set(&e, PLAIT_E_CANCELLED, "interrupted");
		else
			r = copy_blob(c, &j->desc, &how, &e);

		pthread_mutex_lock(&c->lock);
		if (r < 0) {
			if (!c->failed) {
				c->failed = true;
				c->err = TAKE_PTR(e);
				if (c->err->code != PLAIT_E_CANCELLED)
					plait_error_wrap(&c->err, "copy blob %s from %s to %s",
							 j->desc.digest, c->src->display,
							 c->dst->display);
			}
		} else {
			switch (how) {
			case PLAIT_COPY_BLOB_SKIPPED:
				c->stats.blobs_skipped++;
				break;
			case PLAIT_COPY_BLOB_MOUNTED:
				c->stats.blobs_mounted++;
				break;
			default:
				c->stats.blobs_copied++;
				c->stats.bytes_copied += j->desc.size;
				break;
			}
			progress(c, how, &j->desc, NULL);
		}
		pthread_mutex_unlock(&c->lock);
		plait_error_free(e);
	}
}

static int copy_blobs(struct copier *c, struct plait_error **err)
{
	int parallel = c->opts && c->opts->parallel > 0 ? c->opts->parallel : 4;
	if ((size_t)parallel > c->n_blobs)
		parallel = (int)c->n_blobs;
	pthread_t *threads = xcalloc((size_t)parallel + 1, sizeof(pthread_t));
	int started = 0;
	for (int i = 0; i < parallel; i++) {
		if (pthread_create(&threads[i], NULL, worker, c) != 0)
			break;
		started++;
	}
	if (started == 0 && c->n_blobs)
		worker(c); /* no threads to be had: do the work here */
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	if (c->failed) {
		plait_error_move(err, TAKE_PTR(c->err));
		return -(*err)->code;
	}
	return 0;
}

int plait_copy_image(struct plait_endpoint *src, struct plait_endpoint *dst,
		     const struct plait_descriptor *root, const void *data, size_t len, const char *tag,
		     const struct plait_copy_opts *opts, struct plait_copy_stats *stats,
		     struct plait_error **err)
{
	struct copier c = { .src = src, .dst = dst, .opts = opts, .staging_dir = PLAIT_TMPDIR_INIT };
	pthread_mutex_init(&c.lock, NULL);
	int r = walk(&c, root->media_type, root->digest, data, len, 0, err);
	if (r < 0)
		goto out;
	r = copy_blobs(&c, err);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < c.n_manifests; i++) {
		if (cancelled(&c)) {
			r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted");
			goto out;
		}
		struct manifest_item *m = &c.manifests[i];
		r = dst->ops->put_manifest(dst, m->media_type, m->bytes.buf, m->bytes.len, m->digest, err);
		if (r < 0) {
			plait_error_wrap(err, "push manifest %s to %s", m->digest, dst->display);
			goto out;
		}
		c.stats.manifests++;
		struct plait_descriptor d = { .media_type = m->media_type, .size = (int64_t)m->bytes.len };
		memcpy(d.digest, m->digest, sizeof(d.digest));
		progress(&c, PLAIT_COPY_MANIFEST_PUT, &d, NULL);
	}
	if (cancelled(&c)) {
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted before %s was written",
				    root->digest);
		goto out;
	}
	if (opts && opts->no_root)
		goto out;
	r = dst->ops->put_manifest(dst, root->media_type, data, len, root->digest, err);
	if (r < 0) {
		plait_error_wrap(err, "push %s to %s", root->digest, dst->display);
		goto out;
	}
	c.stats.manifests++;
	progress(&c, PLAIT_COPY_MANIFEST_PUT, root, NULL);
	if (tag) {
		if (cancelled(&c)) {
			r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted before tagging '%s'", tag);
			goto out;
		}
		r = dst->ops->tag(dst, tag, root, data, len, err);
		if (r < 0)
			goto out;
		progress(&c, PLAIT_COPY_TAGGED, root, tag);
	}
out:
	if (stats)
		*stats = c.stats;
	for (size_t i = 0; i < c.n_blobs; i++)
		plait_descriptor_release(&c.blobs[i].desc);
	free(c.blobs);
	for (size_t i = 0; i < c.n_manifests; i++) {
		free(c.manifests[i].media_type);
		plait_buf_release(&c.manifests[i].bytes);
	}
	free(c.manifests);
	plait_store_free(c.staging);
	plait_tmpdir_remove(&c.staging_dir);
	plait_error_free(c.err);
	pthread_mutex_destroy(&c.lock);
	return r;
}

/* Copy what refers to subject d (whose bytes are data) and, for an index, to
 * each of its images: OCI referrers (through the Referrers API or the
 * sha256-HEX tag, whichever each registry offers) and cosign's
 * sha256-HEX.sig/.att tags; referrers of referrers too, to a small depth. */
static int copy_referrers(struct plait_endpoint *src, struct plait_endpoint *dst,
			  const struct plait_descriptor *d, const char *data, size_t len, int depth,
			  const struct plait_copy_opts *copts, struct plait_copy_stats *stats,
			  struct plait_error **err)
{
	int r = 0;
	if (depth > 3)
		return 0;
	if (plait_media_type_is_index(plait_media_type_from_string(d->media_type))) {
		struct plait_index idx = { 0 };
		r = plait_index_parse(data, len, &idx, err);
		for (size_t i = 0; r >= 0 && i < idx.n_manifests; i++) {
			_cleanup_buf_ struct plait_buf child = PLAIT_BUF_INIT;
			_cleanup_free_ char *cmt = NULL;
			char cd[PLAIT_DIGEST_MAX];
			r = src->ops->get_manifest(src, idx.manifests[i].digest, &child, &cmt, cd, err);
			if (r >= 0)
				r = copy_referrers(src, dst, &idx.manifests[i], child.buf, child.len, depth + 1, copts,
						   stats, err);
		}
		plait_index_release(&idx);
		if (r < 0)
			return r;
	}
	struct plait_index refs = { 0 };
	r = src->ops->list_referrers(src, d->digest, &refs, NULL, err);
	for (size_t i = 0; r >= 0 && i < refs.n_manifests; i++) {
		_cleanup_buf_ struct plait_buf body = PLAIT_BUF_INIT;
		_cleanup_free_ char *mt = NULL;
		struct plait_descriptor rd = { 0 };
		char got[PLAIT_DIGEST_MAX];
		plait_descriptor_copy(&rd, &refs.manifests[i]);
		r = src->ops->get_manifest(src, rd.digest, &body, &mt, got, err);
		if (r >= 0 && mt) {
			free(rd.media_type);
			rd.media_type = TAKE_PTR(mt);
		}
		if (r >= 0)
			r = plait_copy_image(src, dst, &rd, body.buf, body.len, NULL, copts, stats, err);
		if (r >= 0 && plait_media_type_is_manifest(plait_media_type_from_string(rd.media_type)))
			r = dst->ops->put_referrer(dst, body.buf, body.len, NULL, err);
		if (r >= 0)
			r = copy_referrers(src, dst, &rd, body.buf, body.len, depth + 1, copts, stats, err);
		if (r < 0)
			plait_error_wrap(err, "copy referrer %s of %s", rd.digest, d->digest);
		plait_descriptor_release(&rd);
	}
	plait_index_release(&refs);
	/* cosign's tags */
	_cleanup_free_ char *base = NULL;
	if (plait_digest_is_sha256(d->digest)) {
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "sha256-%s", d->digest + strlen("sha256:"));
		base = b.buf;
	}
	static const char *const suffixes[] = { ".sig", ".att", ".sbom" };
	for (size_t i = 0; r >= 0 && base && i < ARRAY_SIZE(suffixes); i++) {
		_cleanup_buf_ struct plait_buf body = PLAIT_BUF_INIT, tagb = PLAIT_BUF_INIT;
		_cleanup_free_ char *mt = NULL;
		char digest[PLAIT_DIGEST_MAX];
		plait_buf_addf(&tagb, "%s%s", base, suffixes[i]);
		r = src->ops->get_manifest(src, tagb.buf, &body, &mt, digest, err);
		if (r == -PLAIT_E_NOT_FOUND) {
			plait_error_clear(err);
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		struct plait_descriptor td = { .media_type = mt, .size = (int64_t)body.len };
		memcpy(td.digest, digest, sizeof(td.digest));
		r = plait_copy_image(src, dst, &td, body.buf, body.len, tagb.buf, copts, stats, err);
		if (r < 0)
			plait_error_wrap(err, "copy %s", tagb.buf);
	}
	return r;
}

int plait_copy_referrers(struct plait_endpoint *src, struct plait_endpoint *dst,
			 const struct plait_descriptor *d, const void *data, size_t len,
			 const struct plait_copy_opts *opts, struct plait_copy_stats *stats,
			 struct plait_error **err)
{
	if (!src->ops->list_referrers || !dst->ops->put_referrer)
		return 0;
	return copy_referrers(src, dst, d, data, len, 0, opts, stats, err);
}
