/* registry/token.h - the pure parts of Bearer token handling (internal to
 * registry/; token.c uses them, tests/unit/test_token.c checks them).
 *
 * Contract:
 *  - a scope is "repository:<repo>:pull" or "repository:<repo>:pull,push",
 *    plus " repository:<from>:pull" for the source of a cross-repository mount;
 *  - the request for a token is docker's: with an identity token, an OAuth2
 *    POST form (grant_type=refresh_token, client_id=plait, service, scope);
 *    otherwise GET <realm>?service=…&scope=…&scope=… (one scope parameter per
 *    scope, added with '&' when the realm has a query already) with Basic
 *    credentials when there are some;
 *  - credentials never go over plain HTTP to a token server that is neither
 *    loopback nor listed insecure;
 *  - an answer's "token" (else "access_token") is the token; it is kept until
 *    min(30 s, expires_in / 2) before expires_in (default 60 s) runs out,
 *    counted from when it was requested (issued_at is not trusted). */
#ifndef PLAIT_REGISTRY_TOKEN_H
#define PLAIT_REGISTRY_TOKEN_H

#include "auth.h"
#include "core/buf.h"

/* Append the scope of a request on repo to out (nothing when repo is NULL). */
void token_scope(const char *repo, bool push, const char *mount_from, struct plait_buf *out);

struct token_req {
	const char *method;    /* "GET" or "POST" */
	struct plait_buf url;
	struct plait_buf form; /* the POST body (holds the identity token), else empty */
	char *auth;            /* "Authorization: Basic …" for a GET, or NULL */
};
/* Build the token request for the space-separated scopes with credentials c
 * (NULL or unusable: anonymous). */
void token_req_build(const char *realm, const char *service, const char *scopes,
		     const struct plait_credentials *c, struct token_req *out);
/* Wipes the secrets it holds. */
void token_req_release(struct token_req *t);

/* Check that registry host may ask for a token at realm: an absolute http(s)
 * URL, and not plain HTTP to a non-loopback, non-insecure server when
 * sends_creds. 0 with *realm_host (caller frees) and *realm_insecure. */
int token_check_realm(const char *host, const char *realm, char *const *insecure_hosts,
		      bool sends_creds, char **realm_host, bool *realm_insecure,
		      struct plait_error **err);

/* Read a token server's 200 answer: *header = "Authorization: Bearer <token>"
 * (caller frees), *valid_until_ns from start_ns (when it was requested). */
int token_parse_answer(const char *host, const char *realm, const struct plait_buf *body,
		       uint64_t start_ns, char **header, uint64_t *valid_until_ns,
		       struct plait_error **err);

#endif
