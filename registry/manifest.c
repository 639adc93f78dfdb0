/* registry/manifest.c - manifests and indexes on a registry: GET (verified
 * against the reference's digest and Docker-Content-Digest, capped at
 * PLAIT_MANIFEST_MAX), HEAD and PUT (see registry.h). */
#include "client.h"

#include <openssl/evp.h>

#include "core/digest.h"
#include "core/oci.h"
#include "core/ref.h"

#include "core/banned.h"

static char *media_type_of(const char *content_type)
{
	if (!content_type)
		return NULL;
	size_t n = strcspn(content_type, ";");
	while (n && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
		n--;
	return n ? xstrndup(content_type, n) : NULL;
}

static bool is_manifest_type(const char *mt)
{
	enum plait_media_type t = plait_media_type_from_string(mt);
	return plait_media_type_is_manifest(t) || plait_media_type_is_index(t);
}

/* Does data match digest (sha256 or sha512)? */
static bool digest_matches(const char *digest, const void *data, size_t len,
			   const char *sha256_of_data)
{
	if (plait_digest_is_sha256(digest))
		return streq(digest, sha256_of_data);
	if (!startswith(digest, "sha512:"))
		return false;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(data, len, md, &mdlen, EVP_sha512(), NULL) || mdlen != 64)
		return false;
	static const char hex[] = "0123456789abcdef";
	char s[129];
	for (unsigned i = 0; i < mdlen; i++) {
		s[2 * i] = hex[md[i] >> 4];
		s[2 * i + 1] = hex[md[i] & 15];
	}
	s[128] = '\0';
	return streq(digest + strlen("sha512:"), s);
}

static int manifest_path(const char *repo, const char *ref, struct plait_buf *out,
			 struct plait_error **err)
{
	if (!repo || !*repo || !ref || !*ref)
		return plait_error_set(err, PLAIT_E_USAGE, "missing repository or reference");
	if (strchr(ref, ':')) {
		int rc = plait_digest_validate(ref, err);
		if (rc < 0)
			return rc;
	} else if (!plait_tag_is_valid(ref)) {
		return plait_error_set(err, PLAIT_E_USAGE, "invalid tag '%s'", ref);
	}
	plait_buf_addf(out, "/v2/%s/manifests/%s", repo, ref);
	return 0;
}

/* A manifest GET or HEAD's answer: 0 for 200, else the error. */
static int manifest_status(const char *method, const char *url, const struct plait_http_resp *resp,
			   const char *name, struct plait_error **err)
{
	if (resp->status == 404)
		return plait_error_set(err, PLAIT_E_NOT_FOUND, "manifest '%s' not found", name);
	if (resp->status != 200) {
		int rc = registry_unexpected(err, method, url, resp);
		plait_error_wrap(err, "get manifest '%s'", name);
		return rc;
	}
	return 0;
}

/* A manifest GET (body set: the bytes go there) or HEAD (body NULL) of
 * repo's ref, accepting every manifest type: 0 with the 200 answer in resp,
 * else the error. *name is the reference for messages, path the request's. */
static int manifest_fetch(struct plait_registry *r, const char *repo, const char *ref,
			  struct plait_buf *body, struct plait_buf *path, char **name,
			  struct plait_http_resp *resp, struct plait_error **err)
{
	const char *method = body ? "GET" : "HEAD";
	_cleanup_buf_ struct plait_buf accept = PLAIT_BUF_INIT;
	int rc = manifest_path(repo, ref, path, err);
	if (rc < 0)
		return rc;
	*name = registry_ref_str(r, repo, ref);
	plait_buf_addf(&accept, "Accept: %s", plait_media_type_accept_manifests());
	struct rq q = { .method = method, .url = path->buf, .repo = repo, .access = ACCESS_PULL,
			.hdrs = { accept.buf }, .out = body, .out_max = body ? PLAIT_MANIFEST_MAX : 0 };
	rc = registry_request(r, &q, resp, err);
	if (body && rc == -PLAIT_E_INVALID && resp->too_large) {
		plait_buf_reset(body);
		return plait_error_set(err, PLAIT_E_INVALID, "manifest '%s' is larger than %u MiB",
				       *name, PLAIT_MANIFEST_MAX / (1024 * 1024));
	}
	if (rc < 0)
		return rc;
	return manifest_status(method, path->buf, resp, *name, err);
}

int plait_registry_get_manifest(struct plait_registry *r, const char *repo, const char *ref,
				struct plait_buf *body, char **media_type,
				char digest[PLAIT_DIGEST_MAX], struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	_cleanup_free_ char *name = NULL, *mt = NULL;
	int rc = manifest_fetch(r, repo, ref, body, &path, &name, &resp, err);
	if (rc < 0)
		goto out;

	char got[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(body->buf, body->len, got);
	const char *claimed = NULL;
	if (strchr(ref, ':') && !digest_matches(ref, body->buf, body->len, got))
		claimed = ref;
	else if (resp.docker_digest && plait_digest_is_sha256(resp.docker_digest) &&
		 !streq(resp.docker_digest, got))
		claimed = resp.docker_digest;
	if (claimed) {
		rc = plait_error_set(err, PLAIT_E_INVALID,
				     "registry %s served bytes for %s that do not match digest %s",
				     r->host, name, claimed);
		goto out;
	}

	mt = media_type_of(resp.content_type);
	if (!mt || !is_manifest_type(mt)) {
		enum plait_media_type t = plait_oci_sniff(body->buf, body->len);
		if (t != PLAIT_MT_UNKNOWN) {
			free(mt);
			mt = xstrdup(plait_media_type_to_string(t));
		}
	}
	if (!mt) {
		rc = plait_error_set(err, PLAIT_E_INVALID,
				     "registry %s served '%s' without a media type, and it is "
				     "neither an image manifest nor an index",
				     r->host, name);
		goto out;
	}
	if (media_type)
		*media_type = TAKE_PTR(mt);
	if (digest)
		memcpy(digest, got, sizeof(got));
	rc = 0;
out:
	if (rc < 0)
		plait_buf_reset(body);
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	return rc;
}

int plait_registry_head_manifest(struct plait_registry *r, const char *repo, const char *ref,
				 char **media_type, char digest[PLAIT_DIGEST_MAX], int64_t *size,
				 struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	_cleanup_free_ char *name = NULL;
	int rc = manifest_fetch(r, repo, ref, NULL, &path, &name, &resp, err);
	if (rc < 0)
		goto out;
	if (media_type)
		*media_type = media_type_of(resp.content_type);
	if (digest) {
		digest[0] = '\0';
		const char *d = resp.docker_digest;
		if (d && plait_digest_validate(d, NULL) == 0 && strlen(d) < PLAIT_DIGEST_MAX)
			memcpy(digest, d, strlen(d) + 1);
		else if (strchr(ref, ':'))
			memcpy(digest, ref, strlen(ref) + 1);
	}
	if (size)
		*size = resp.content_length;
	rc = 0;
out:
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	return rc;
}

int plait_registry_put_manifest(struct plait_registry *r, const char *repo, const char *ref,
				const char *media_type, const void *data, size_t len,
				struct plait_error **err)
{
	return registry_put_manifest_subject(r, repo, ref, media_type, data, len, NULL, err);
}

int registry_put_manifest_subject(struct plait_registry *r, const char *repo, const char *ref,
				  const char *media_type, const void *data, size_t len,
				  char **oci_subject, struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT, ct = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	_cleanup_free_ char *name = NULL;
	int rc = manifest_path(repo, ref, &path, err);
	if (rc < 0)
		goto out;
	name = registry_ref_str(r, repo, ref);
	if (!media_type || !*media_type) {
		rc = plait_error_set(err, PLAIT_E_USAGE, "push manifest '%s': no media type", name);
		goto out;
	}
	if (len > PLAIT_MANIFEST_MAX) {
		rc = plait_error_set(err, PLAIT_E_INVALID, "manifest '%s' is larger than %u MiB", name,
				     PLAIT_MANIFEST_MAX / (1024 * 1024));
		goto out;
	}
	char got[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(data, len, got);
	if (strchr(ref, ':') && !digest_matches(ref, data, len, got)) {
		rc = plait_error_set(err, PLAIT_E_INVALID,
				     "push manifest '%s': the bytes have digest %s", name, got);
		goto out;
	}
	plait_buf_addf(&ct, "Content-Type: %s", media_type);
	for (int tries = 1;; tries++) {
		struct rq q = { .method = "PUT", .url = path.buf, .repo = repo, .access = ACCESS_PUSH,
				.hdrs = { ct.buf }, .body = data, .body_len = (int64_t)len };
		rc = registry_request(r, &q, &resp, err);
		if (rc < 0) {
			plait_error_wrap(err, "push manifest '%s'", name);
			goto out;
		}
		/* DIGEST_INVALID for bytes whose digest is computed here (got) is
		 * the registry's own race: distribution writes a manifest's blob
		 * in place, and a client putting the same bytes at the same time
		 * (two builds of one reproducible image) can make the check read
		 * a half-written file. Bytes that are really refused are refused
		 * again. */
		if (resp.status != 400 || !resp.err_body.buf || !strstr(resp.err_body.buf, "DIGEST_INVALID") ||
		    tries >= 3)
			break;
		plait_http_resp_release(&resp);
		resp = (struct plait_http_resp)PLAIT_HTTP_RESP_INIT;
		registry_backoff(r, tries, NULL);
	}
	if (resp.status != 201 && resp.status != 200 && resp.status != 202) {
		rc = registry_unexpected(err, "PUT", path.buf, &resp);
		plait_error_wrap(err, "push manifest '%s'", name);
		goto out;
	}
	if (resp.docker_digest && plait_digest_is_sha256(resp.docker_digest) &&
	    !streq(resp.docker_digest, got)) {
		rc = plait_error_set(err, PLAIT_E_INVALID,
				     "push manifest '%s': registry %s stored it as %s, expected %s",
				     name, r->host, resp.docker_digest, got);
		goto out;
	}
	if (oci_subject)
		*oci_subject = resp.oci_subject ? xstrdup(resp.oci_subject) : NULL;
	rc = 0;
out:
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	plait_buf_release(&ct);
	return rc;
}
