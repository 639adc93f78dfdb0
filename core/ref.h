/* core/ref.h - image references ([domain[:port]/]path[:tag][@digest]) and
 * the names of Docker Hub.
 *
 * Contract (same grammar as distribution/reference):
 *  - a domain is the first component when it contains '.' or ':' or is "localhost";
 *    otherwise the reference is on Docker Hub: domain "docker.io", and a single
 *    component path gets "library/" ("busybox" -> docker.io/library/busybox);
 *  - path components are lowercase [a-z0-9]+ joined by '.', '_', '__' or '-'+;
 *    the whole name is at most 255 characters; tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127};
 *    digest is validated with plait_digest_validate();
 *  - errors (-PLAIT_E_USAGE) quote the input and say what part is wrong
 *    ("invalid reference 'Foo/bar': repository name must be lowercase").
 *  - with neither tag nor digest, tag is NULL: callers decide whether "latest" applies.
 *  - Docker Hub's names live here and nowhere else: the hosts people write for it
 *    (docker.io, index.docker.io, registry-1.docker.io, any case) all mean
 *    "docker.io"; its API is spoken to at "registry-1.docker.io"; docker's
 *    config.json and credential helpers know it as "https://index.docker.io/v1/".
 *  - everything here is pure string work: no network, no files. */
#ifndef PLAIT_CORE_REF_H
#define PLAIT_CORE_REF_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct plait_ref {
	char *domain; /* "docker.io", "localhost:5000", "registry.example.com" */
	char *path;   /* "library/busybox", "ml/train" */
	char *tag;    /* or NULL */
	char *digest; /* or NULL */
};

int plait_ref_parse(const char *s, struct plait_ref *out, struct plait_error **err);
void plait_ref_release(struct plait_ref *r);
void plait_ref_copy(struct plait_ref *dst, const struct plait_ref *src);
/* Full normalised form: "docker.io/library/busybox:1.36@sha256:…" (caller frees). */
char *plait_ref_format(const struct plait_ref *r);
/* "domain/path" without tag or digest (caller frees). */
char *plait_ref_name(const struct plait_ref *r);
/* The host to speak the API to: "registry-1.docker.io" for docker.io, else domain. */
const char *plait_ref_api_host(const struct plait_ref *r);
/* true for localhost, 127.0.0.0/8 and [::1] (plain HTTP allowed by default). */
bool plait_host_is_loopback(const char *host);
bool plait_tag_is_valid(const char *tag);

/* ---- Docker Hub ---- */

/* The domain references to Docker Hub normalise to ("docker.io"). */
const char *plait_docker_hub_domain(void);
/* The host its registry API answers on ("registry-1.docker.io"). */
const char *plait_docker_hub_api_host(void);
/* The host docker's config.json keys name it by, without scheme ("index.docker.io"). */
const char *plait_docker_hub_index_host(void);
/* The key docker uses for it in config.json "auths" and towards credential
 * helpers ("https://index.docker.io/v1/"). */
const char *plait_docker_hub_credentials_key(void);
/* true when host (no scheme, no path; any case) is one of Docker Hub's names. */
bool plait_docker_hub_is_alias(const char *host);
/* The same for the first len bytes of host. */
bool plait_docker_hub_is_alias_n(const char *host, size_t len);

#endif
