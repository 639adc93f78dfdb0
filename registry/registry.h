/* registry/registry.h - the distribution-spec client.
 *
 * One struct plait_registry speaks to one registry host. It is safe to use from
 * several threads at once (parallel blob transfers): each call takes its own
 * curl handle from a pool; connections, DNS and auth tokens are shared.
 *
 * Contract:
 *  - TLS verification is on; a CA per host is read from <certs_dir>/<host[:port]>/ca.crt
 *    (and a client certificate and key as *.cert and *.key) for each certs dir; plain HTTP is used only
 *    for loopback hosts and hosts listed as insecure.
 *  - auth: anonymous first; on 401 the WWW-Authenticate challenge decides: Basic
 *    with the stored credentials, or a Bearer token fetched from the realm with
 *    scope repository:<repo>:pull[,push] (plus pull on the source repository of
 *    a mount). Tokens are cached per scope and renewed when they expire or a
 *    request is refused with 401 mid-way.
 *  - retries: 408, 429, 5xx and connection errors are retried (max_tries, default 5)
 *    with exponential backoff and jitter, honouring Retry-After; the final error
 *    says "after N tries". 401/403 give -PLAIT_E_AUTH naming the registry and
 *    suggesting `plait login <host>`; 404 gives -PLAIT_E_NOT_FOUND.
 *  - every byte fetched is verified against its digest; manifests larger than
 *    PLAIT_MANIFEST_MAX are refused.
 *  - messages name the URL or the repository and digest, never credentials. */
#ifndef PLAIT_REGISTRY_H
#define PLAIT_REGISTRY_H

#include <stdatomic.h>

#include "core/buf.h"
#include "core/oci.h"
#include "core/store.h"
#include "auth.h"

struct plait_registries_conf;

struct plait_registry_opts {
	const char *const *insecure_hosts; /* NULL-terminated; hosts allowed plain HTTP / no verify */
	/* registries.conf and --registry-mirror (registries_conf.h): mirrors and
	 * blocked entries for endpoints, insecure hosts for clients; NULL = none. */
	const struct plait_registries_conf *registries_conf;
	/* Called (from any thread) once per run for each mirror that cannot be
	 * reached, as the pull moves on to the next source; NULL = silent. */
	void (*mirror_warning)(const char *msg);
	const char *const *certs_dirs;     /* NULL-terminated; NULL = /etc/docker/certs.d, /etc/containers/certs.d */
	const char *docker_config_dir;     /* NULL = plait_auth_config_dir(NULL) */
	/* Hosts whose credentials are given (auth.h), never looked up; NULL = none. */
	const struct plait_registry_login *logins;
	size_t n_logins;
	int max_tries;                     /* 0 = 5 */
	long backoff_base_ms;              /* 0 = 200 */
	int64_t chunk_size;                /* most bytes in one PATCH; 0 = no limit (one PATCH) */
	const char *user_agent;            /* NULL = "plait/<version>" */
	/* When not NULL and non-zero: transfers stop, backoff sleeps end, and
	 * calls fail with -PLAIT_E_CANCELLED (a SIGINT handler sets it). */
	const atomic_int *cancel;
};

struct plait_registry;

/* host is the API host ("localhost:5000", "registry-1.docker.io"); see plait_ref_api_host(). */
int plait_registry_new(const char *host, const struct plait_registry_opts *opts,
		       struct plait_registry **out, struct plait_error **err);
void plait_registry_free(struct plait_registry *r);
const char *plait_registry_host(const struct plait_registry *r);

/* Fetch a manifest or index by tag or digest. body gets the exact bytes;
 * media_type (caller frees) the Content-Type, or the document's own mediaType;
 * digest the digest of the bytes (checked against ref when ref is a digest, and
 * against Docker-Content-Digest when the server sends it). */
int plait_registry_get_manifest(struct plait_registry *r, const char *repo, const char *ref,
				struct plait_buf *body, char **media_type,
				char digest[PLAIT_DIGEST_MAX], struct plait_error **err);
/* HEAD a manifest: fills what the server tells (size -1 when unknown). */
int plait_registry_head_manifest(struct plait_registry *r, const char *repo, const char *ref,
				 char **media_type, char digest[PLAIT_DIGEST_MAX], int64_t *size,
				 struct plait_error **err);
/* 1 when the blob exists (size in *size if not NULL), 0 when not. */
int plait_registry_has_blob(struct plait_registry *r, const char *repo, const char *digest,
			    int64_t *size, struct plait_error **err);
/* Stream a blob into w (from w's offset; resumes with Range after a dropped
 * connection). The caller commits w, which verifies the digest. */
int plait_registry_get_blob(struct plait_registry *r, const char *repo, const char *digest,
			    int64_t size, struct plait_blob_writer *w, struct plait_error **err);
/* Cross-repository mount. 1 when mounted, 0 when the registry declined (the
 * caller uploads instead; an upload session the registry opened is cancelled). */
int plait_registry_mount_blob(struct plait_registry *r, const char *repo, const char *digest,
			      const char *from_repo, struct plait_error **err);
/* Upload size bytes read from src (pread from offset 0; src may still be
 * growing, see struct plait_blob_source) as the blob digest. Up to 16 MiB (or
 * chunk_size when smaller) in one POST+PUT; larger blobs as PATCH uploads of at
 * most chunk_size bytes each (default: the whole rest in one PATCH), resuming
 * from the registry's Range after a dropped connection. The registry checks
 * the digest at the final PUT, so bytes that do not match are never stored. */
int plait_registry_put_blob(struct plait_registry *r, const char *repo, const char *digest,
			    int64_t size, const struct plait_blob_source *src, struct plait_error **err);
/* Upload a blob still being written (src->grown: a layer as it is
 * compressed), in PATCHes of about 32 MiB as it grows, then the final PUT
 * with the digest it ends with, which the registry checks. 0 when uploaded
 * (digest and size filled in), <0 on error, -PLAIT_E_CANCELLED when the
 * writer gave up (the session is cancelled). Whether a blob is worth a
 * session is the caller's to decide. */
int plait_registry_put_growing_blob(struct plait_registry *r, const char *repo,
				    const struct plait_blob_source *src, char digest[PLAIT_SHA256_DIGEST_SIZE],
				    int64_t *size, struct plait_error **err);
/* PUT a manifest or index under ref (a tag or its digest), Content-Type media_type. */
int plait_registry_put_manifest(struct plait_registry *r, const char *repo, const char *ref,
				const char *media_type, const void *data, size_t len,
				struct plait_error **err);
/* OCI 1.1 referrers (distribution-spec 1.1, registry/referrers.c). */
/* Push data, an image manifest with a "subject" and an "artifactType", as a
 * referrer of its subject: PUT by its digest; a registry that answers with
 * OCI-Subject keeps the Referrers API itself (*via_api true), otherwise the
 * tag schema fallback: the index under tag "sha256-<hex of the subject>" is
 * read, gains the manifest's descriptor (artifactType, annotations) when it
 * lacks it, and is put back. */
int plait_registry_put_referrer(struct plait_registry *r, const char *repo, const void *data,
				size_t len, bool *via_api, struct plait_error **err);
/* The referrers of subject (a digest): GET /v2/<repo>/referrers/<digest>; a
 * 404 (no Referrers API) falls back to the sha256-<hex> tag; neither = none.
 * artifact_type (or NULL) keeps only those of that type. out gets an OCI
 * index (release it); *via_api (may be NULL) tells which answered. */
int plait_registry_list_referrers(struct plait_registry *r, const char *repo,
				  const char *subject, const char *artifact_type,
				  struct plait_index *out, bool *via_api, struct plait_error **err);
/* "sha256-<hex>" for a sha256 digest (the fallback tag; caller frees), or NULL. */
char *plait_referrers_tag(const char *subject);

/* GET /v2/ with the given credentials (for `plait login`): 0 when accepted,
 * -PLAIT_E_AUTH when refused. */
int plait_registry_check_login(struct plait_registry *r, const struct plait_credentials *c,
			       struct plait_error **err);

#endif
