/* core/endpoint.c - what every endpoint kind shares: spec parsing for local
 * endpoints, allocation, resolve, small-blob reads. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "endpoint.h"
#include "banned.h"

struct plait_endpoint *plait_endpoint_alloc(const struct plait_endpoint_ops *ops, const char *name,
					    const char *display, const char *ref)
{
	struct plait_endpoint *ep = xcalloc(1, sizeof(*ep));
	ep->ops = ops;
	ep->name = xstrdup(name);
	ep->display = xstrdup(display);
	ep->ref = xstrdup_or_null(ref);
	return ep;
}

void plait_endpoint_free(struct plait_endpoint *ep)
{
	if (!ep)
		return;
	if (ep->ops && ep->ops->free)
		ep->ops->free(ep);
	plait_store_free(ep->store);
	free(ep->display);
	free(ep->name);
	free(ep->ref);
	free(ep);
}

char *plait_endpoint_ref_string(const struct plait_endpoint *ep, const char *ref)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	bool remote = !ep->store;
	/* Registries say name@digest; local specs take any reference after ':'. */
	plait_buf_addf(&b, "%s%c%s", ep->name, remote && strchr(ref, ':') ? '@' : ':', ref);
	return plait_buf_detach(&b, NULL);
}

int plait_endpoint_commit(struct plait_endpoint *ep, struct plait_error **err)
{
	if (!ep->ops->commit)
		return 0;
	return ep->ops->commit(ep, err);
}

bool plait_endpoint_spec_is_local(const char *spec)
{
	return startswith(spec, "oci:") || startswith(spec, "oci-archive:");
}

int plait_endpoint_resolve(struct plait_endpoint *ep, const char *ref, struct plait_descriptor *root,
			   struct plait_buf *data, struct plait_error **err)
{
	_cleanup_free_ char *media_type = NULL;
	char digest[PLAIT_DIGEST_MAX];
	int r = ep->ops->get_manifest(ep, ref, data, &media_type, digest, err);
	if (r < 0)
		return r;
	plait_descriptor_release(root);
	memset(root, 0, sizeof(*root));
	if (!media_type || !*media_type) {
		enum plait_media_type t = plait_oci_sniff(data->buf, data->len);
		free(media_type);
		media_type = xstrdup_or_null(plait_media_type_to_string(t));
		if (!media_type)
			return plait_error_set(err, PLAIT_E_INVALID,
					       "%s: the document is neither an image manifest nor an index",
					       ep->display);
	}
	root->media_type = TAKE_PTR(media_type);
	memcpy(root->digest, digest, sizeof(digest));
	root->size = (int64_t)data->len;
	return 0;
}

int plait_endpoint_read_blob(struct plait_endpoint *ep, const struct plait_descriptor *d, size_t max,
			     struct plait_buf *out, struct plait_error **err)
{
	if (d->size < 0 || (uint64_t)d->size > max)
		return plait_error_set(err, PLAIT_E_INVALID, "%s: blob %s is %lld bytes, more than %zu",
				       ep->display, d->digest, (long long)d->size, max);
	if (ep->store)
		return plait_store_read_blob(ep->store, d->digest, max, out, err);

	struct plait_tmpdir dir = PLAIT_TMPDIR_INIT;
	struct plait_store *tmp = NULL;
	struct plait_blob_writer *w = NULL;
	int r = plait_mkdtemp("blob", &dir, err);
	if (r < 0)
		return r;
	/* Below the locked directory: the layout flocks its own (core/fs.h). */
	_cleanup_free_ char *layout = plait_path_join(dir.path, "layout");
	r = plait_store_open(layout, true, &tmp, err);
	if (r < 0)
		goto out;
	r = plait_blob_writer_new(tmp, d->digest, d->size, &w, err);
	if (r < 0)
		goto out;
	r = ep->ops->fetch_blob(ep, d, w, err);
	if (r < 0)
		goto out;
	r = plait_blob_writer_commit(w, NULL, err);
	if (r < 0)
		goto out;
	r = plait_store_read_blob(tmp, d->digest, max, out, err);
out:
	plait_blob_writer_free(w);
	plait_store_free(tmp);
	plait_tmpdir_remove(&dir);
	return r;
}

int plait_endpoint_image_config(struct plait_endpoint *ep, const struct plait_manifest *m,
				struct plait_image_config *out, struct plait_error **err)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	memset(out, 0, sizeof(*out));
	int r = plait_endpoint_read_blob(ep, &m->config, PLAIT_MANIFEST_MAX, &b, err);
	if (r >= 0)
		r = plait_image_config_parse(b.buf, b.len, out, err);
	if (r < 0)
		plait_error_wrap(err, "%s: config %s", ep->display, m->config.digest);
	plait_buf_release(&b);
	return r;
}

bool plait_endpoint_holds(struct plait_endpoint *ep, const char *ref, const char *digest)
{
	if (!ep->ops->head_ref)
		return false;
	char got[PLAIT_DIGEST_MAX] = "";
	struct plait_error *e = NULL;
	int r = ep->ops->head_ref(ep, ref, got, &e);
	plait_error_free(e);
	return r == 1 && streq(got, digest);
}
