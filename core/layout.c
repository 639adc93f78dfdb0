/* core/layout.c - an OCI image layout directory as an endpoint ("oci:DIR[:REF]"). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "endpoint.h"
#include "banned.h"

static int layout_get_manifest(struct plait_endpoint *ep, const char *ref, struct plait_buf *body,
			       char **media_type, char digest[PLAIT_DIGEST_MAX],
			       struct plait_error **err)
{
	struct plait_descriptor d = { 0 };
	int r = plait_store_resolve(ep->store, ref ? ref : ep->ref, &d, err);
	if (r < 0)
		return r;
	plait_buf_reset(body);
	r = plait_store_read_blob(ep->store, d.digest, PLAIT_MANIFEST_MAX, body, err);
	if (r < 0) {
		plait_error_wrap(err, "%s", ep->display);
		goto out;
	}
	memcpy(digest, d.digest, PLAIT_DIGEST_MAX);
	*media_type = d.media_type ? xstrdup(d.media_type) : NULL;
	if (!*media_type) {
		const char *s = plait_media_type_to_string(plait_oci_sniff(body->buf, body->len));
		*media_type = xstrdup_or_null(s);
	}
out:
	plait_descriptor_release(&d);
	return r;
}

static int layout_has_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			   struct plait_error **err)
{
	return plait_store_has(ep->store, d->digest, NULL, err);
}

/* Copy size bytes of src into w with pread, so the fd's offset is never shared state. */
static int copy_source_to_writer(const struct plait_blob_source *src, int64_t size,
				 struct plait_blob_writer *w, const char *what, struct plait_error **err)
{
	static const size_t bufsz = 1 << 20;
	_cleanup_free_ char *buf = xmalloc(bufsz);
	off_t off = 0;
	for (;;) {
		size_t want = bufsz;
		if (size >= 0 && (int64_t)off + (int64_t)want > size)
			want = (size_t)(size - off);
		if (src->wait && want && src->wait(src->ud, (int64_t)off + (int64_t)want) < 0)
			return plait_error_set(err, PLAIT_E_GENERIC, "%s: the source was abandoned", what);
		ssize_t n = want ? pread(src->fd, buf, want, off) : 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "read %s", what);
		}
		if (n == 0)
			break;
		int r = plait_blob_writer_write(w, buf, (size_t)n, err);
		if (r < 0)
			return r;
		off += n;
	}
	if (size >= 0 && off != size)
		return plait_error_set(err, PLAIT_E_INVALID, "%s: expected %lld bytes, read %lld", what,
				       (long long)size, (long long)off);
	return 0;
}

static int layout_fetch_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			     struct plait_blob_writer *w, struct plait_error **err)
{
	_cleanup_close_ int fd = -1;
	int r = plait_store_open_blob(ep->store, d->digest, &fd, err);
	if (r < 0) {
		plait_error_wrap(err, "%s", ep->display);
		return r;
	}
	struct plait_blob_source src = { .fd = fd };
	return copy_source_to_writer(&src, d->size, w, d->digest, err);
}

static int layout_put_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			   const struct plait_blob_source *src, struct plait_error **err)
{
	struct plait_blob_writer *w = NULL;
	int r = plait_blob_writer_new(ep->store, d->digest, d->size, &w, err);
	if (r < 0)
		return r;
	r = copy_source_to_writer(src, d->size, w, d->digest, err);
	if (r >= 0)
		r = plait_blob_writer_commit(w, NULL, err);
	plait_blob_writer_free(w);
	if (r < 0)
		plait_error_wrap(err, "%s: write blob %s", ep->display, d->digest);
	return r;
}

static int layout_put_manifest(struct plait_endpoint *ep, const char *media_type, const void *data,
			       size_t len, const char *digest, struct plait_error **err)
{
	(void)media_type;
	char got[PLAIT_SHA256_DIGEST_SIZE];
	int r = plait_store_put_bytes(ep->store, data, len, got, err);
	if (r < 0) {
		plait_error_wrap(err, "%s: write manifest", ep->display);
		return r;
	}
	if (digest && !streq(digest, got))
		return plait_error_set(err, PLAIT_E_INVALID, "%s: manifest bytes are %s, expected %s",
				       ep->display, got, digest);
	return 0;
}

static int layout_tag(struct plait_endpoint *ep, const char *tag, const struct plait_descriptor *d,
		      const void *data, size_t len, struct plait_error **err)
{
	int r = layout_put_manifest(ep, d->media_type, data, len, d->digest, err);
	if (r < 0)
		return r;
	r = plait_store_tag(ep->store, d, tag, err);
	if (r < 0) {
		plait_error_wrap(err, "%s: tag '%s'", ep->display, tag ? tag : "");
		return r;
	}
	return 0;
}

static const struct plait_endpoint_ops layout_ops = {
	.kind = "oci",
	.get_manifest = layout_get_manifest,
	.has_blob = layout_has_blob,
	.fetch_blob = layout_fetch_blob,
	.put_blob = layout_put_blob,
	.put_manifest = layout_put_manifest,
	.tag = layout_tag,
};

struct plait_endpoint *plait_layout_endpoint_new(struct plait_store *store, const char *name,
						 const char *display, const char *ref)
{
	struct plait_endpoint *ep = plait_endpoint_alloc(&layout_ops, name, display, ref);
	ep->store = store;
	return ep;
}

/* "PATH[:REF]": the reference starts at the first ':' (as in skopeo's oci transport),
 * so "dir:sha256:…" names a digest. */
static void split_path_ref(const char *s, char **path, char **ref)
{
	const char *colon = strchr(s, ':');
	if (colon) {
		*path = xstrndup(s, (size_t)(colon - s));
		*ref = colon[1] ? xstrdup(colon + 1) : NULL;
	} else {
		*path = xstrdup(s);
		*ref = NULL;
	}
}

/* Tags in a layout: the registry tag grammar, so they can be pushed as they
 * are, or a digest. */
static bool local_ref_valid(const char *ref)
{
	if (strchr(ref, ':'))
		return plait_digest_validate(ref, NULL) == 0;
	size_t n = strlen(ref);
	if (n == 0 || n > 128 || ref[0] == '.' || ref[0] == '-')
		return false;
	return strspn(ref, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int plait_endpoint_local_place(const char *spec, char **place, char **ref)
{
	bool archive = startswith(spec, "oci-archive:");
	if (!archive && !startswith(spec, "oci:"))
		return -1;
	const char *rest = spec + (archive ? strlen("oci-archive:") : strlen("oci:"));
	_cleanup_free_ char *path = NULL;
	split_path_ref(rest, &path, ref);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s:%s", archive ? "oci-archive" : "oci", path);
	*place = plait_buf_detach(&b, NULL);
	return 0;
}

int plait_endpoint_open_local(const char *spec, bool for_write, struct plait_endpoint **out,
			      struct plait_error **err)
{
	bool archive = startswith(spec, "oci-archive:");
	if (!archive && !startswith(spec, "oci:"))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "'%s' is not a local image: use oci:DIR[:TAG] or oci-archive:FILE[:TAG]",
				       spec);
	const char *rest = spec + (archive ? strlen("oci-archive:") : strlen("oci:"));
	_cleanup_free_ char *path = NULL, *ref = NULL;
	split_path_ref(rest, &path, &ref);
	if (!*path)
		return plait_error_set(err, PLAIT_E_USAGE, "'%s': the path is empty", spec);
	if (ref && !local_ref_valid(ref))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "'%s': invalid tag '%s': use letters, digits, '.', '_' and '-' (or a sha256: digest)",
				       spec, ref);
	if (archive)
		return plait_archive_endpoint_open(path, ref, for_write, out, err);

	struct plait_store *s = NULL;
	int r = plait_store_open(path, for_write, &s, err);
	if (r < 0)
		return r;
	struct plait_buf name = PLAIT_BUF_INIT;
	plait_buf_addf(&name, "oci:%s", path);
	*out = plait_layout_endpoint_new(s, name.buf, spec, ref);
	plait_buf_release(&name);
	return 0;
}
