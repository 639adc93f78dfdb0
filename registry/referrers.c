/* registry/referrers.c - OCI 1.1 referrers (distribution-spec 1.1, "Listing
 * Referrers" and "Referrers Tag Schema"): pushing an artifact manifest that
 * names a subject, and listing a subject's referrers, through the Referrers
 * API where the registry offers it and the sha256-<hex> tag otherwise. */
#include "client.h"

#include "core/digest.h"
#include "core/oci.h"
#include "core/ref.h"

#include "core/banned.h"

char *plait_referrers_tag(const char *subject)
{
	if (!subject || !plait_digest_is_sha256(subject))
		return NULL;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "sha256-%s", subject + strlen("sha256:"));
	return b.buf;
}

/* The fallback index under tag (empty when the tag does not exist). */
static int fallback_index(struct plait_registry *r, const char *repo, const char *tag,
			  struct plait_index *out, bool *exists, struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf body = PLAIT_BUF_INIT;
	*exists = false;
	int rc = plait_registry_get_manifest(r, repo, tag, &body, NULL, NULL, err);
	if (rc == -PLAIT_E_NOT_FOUND) {
		plait_error_clear(err);
		out->schema_version = 2;
		out->media_type = xstrdup(plait_media_type_to_string(PLAIT_MT_OCI_INDEX));
		return 0;
	}
	if (rc < 0)
		return rc;
	rc = plait_index_parse(body.buf, body.len, out, err);
	if (rc < 0) {
		_cleanup_free_ char *name = registry_ref_str(r, repo, tag);
		plait_error_wrap(err, "referrers tag '%s' does not hold an OCI index", name);
		return rc;
	}
	*exists = true;
	return 0;
}

int plait_registry_put_referrer(struct plait_registry *r, const char *repo, const void *data,
				size_t len, bool *via_api, struct plait_error **err)
{
	struct plait_manifest m = { 0 };
	struct plait_index idx = { 0 };
	_cleanup_free_ char *oci_subject = NULL, *tag = NULL;
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	bool exists;
	if (via_api)
		*via_api = false;
	int rc = plait_manifest_parse(data, len, &m, err);
	if (rc < 0)
		goto out;
	const char *mt = m.media_type ? m.media_type
				      : plait_media_type_to_string(PLAIT_MT_OCI_MANIFEST);
	if (!m.subject || !(tag = plait_referrers_tag(m.subject->digest))) {
		rc = plait_error_set(err, PLAIT_E_USAGE,
				     "a referrer needs a sha256 'subject' (repository %s)", repo);
		goto out;
	}
	plait_sha256_buf(data, len, digest);
	rc = registry_put_manifest_subject(r, repo, digest, mt, data, len, &oci_subject, err);
	if (rc < 0)
		goto out;
	if (oci_subject && streq(oci_subject, m.subject->digest)) {
		if (via_api)
			*via_api = true;
		goto out;
	}
	/* Tag schema fallback: read, add when absent, write. Two writers racing
	 * on one subject can lose one of their additions, as the spec warns. */
	rc = fallback_index(r, repo, tag, &idx, &exists, err);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < idx.n_manifests; i++)
		if (streq(idx.manifests[i].digest, digest))
			goto out;
	struct plait_descriptor d = { .media_type = (char *)mt, .size = (int64_t)len,
				      .artifact_type = m.artifact_type ? m.artifact_type
								       : m.config.media_type,
				      .annotations = m.annotations };
	memcpy(d.digest, digest, sizeof(digest));
	plait_index_add(&idx, &d);
	rc = plait_index_serialise(&idx, &out, err);
	if (rc < 0)
		goto out;
	rc = plait_registry_put_manifest(r, repo, tag, idx.media_type ? idx.media_type
				  : plait_media_type_to_string(PLAIT_MT_OCI_INDEX),
					 out.buf, out.len, err);
	if (rc < 0)
		plait_error_wrap(err, "update the referrers tag of %s", m.subject->digest);
out:
	plait_manifest_release(&m);
	plait_index_release(&idx);
	return rc;
}

/* Keep only the referrers of artifact_type. */
static void filter_type(struct plait_index *idx, const char *artifact_type)
{
	size_t k = 0;
	for (size_t i = 0; i < idx->n_manifests; i++) {
		struct plait_descriptor *d = &idx->manifests[i];
		if (d->artifact_type && streq(d->artifact_type, artifact_type)) {
			if (k != i)
				idx->manifests[k] = *d;
			k++;
		} else {
			plait_descriptor_release(d);
		}
	}
	idx->n_manifests = k;
}

int plait_registry_list_referrers(struct plait_registry *r, const char *repo,
				  const char *subject, const char *artifact_type,
				  struct plait_index *out, bool *via_api, struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf path = PLAIT_BUF_INIT, body = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf accept = PLAIT_BUF_INIT;
	_cleanup_free_ char *tag = plait_referrers_tag(subject);
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	bool exists;
	if (via_api)
		*via_api = false;
	if (!tag)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "referrers: '%s' is not a sha256 digest", subject ? subject : "");
	plait_buf_addf(&path, "/v2/%s/referrers/%s", repo, subject);
	plait_buf_addf(&accept, "Accept: %s", plait_media_type_to_string(PLAIT_MT_OCI_INDEX));
	struct rq q = { .method = "GET", .url = path.buf, .repo = repo, .access = ACCESS_PULL,
			.hdrs = { accept.buf }, .out = &body, .out_max = PLAIT_MANIFEST_MAX };
	int rc = registry_request(r, &q, &resp, err);
	if (rc < 0)
		goto out;
	if (resp.status == 200) {
		rc = plait_index_parse(body.buf, body.len, out, err);
		if (rc < 0) {
			plait_error_wrap(err, "GET %s: the Referrers API answered something that "
					      "is not an OCI index", path.buf);
			goto out;
		}
		if (via_api)
			*via_api = true;
	} else if (resp.status == 404) {
		rc = fallback_index(r, repo, tag, out, &exists, err);
		if (rc < 0)
			goto out;
	} else {
		rc = registry_unexpected(err, "GET", path.buf, &resp);
		goto out;
	}
	if (artifact_type)
		filter_type(out, artifact_type);
	rc = 0;
out:
	plait_http_resp_release(&resp);
	return rc;
}
