/* registry/auth.h - registry credentials and authentication challenges
 * (credentials in credentials.c, challenges in token.c).
 *
 * Contract:
 *  - credentials come from the docker config file ($DOCKER_CONFIG/config.json,
 *    default ~/.docker/config.json): credHelpers[host] first, then credsStore,
 *    then auths[host].auth (base64 "user:password") or identitytoken. Helpers are
 *    run as `docker-credential-<name> get` with the server on stdin. Hosts match
 *    with or without scheme and "/v1/" suffix; docker.io also matches
 *    "https://index.docker.io/v1/".
 *  - store/erase rewrite config.json atomically with mode 0600, keep every other
 *    member of the file untouched, and use the helper when one is configured.
 *  - nothing here ever puts a password or token into an error message. */
#ifndef PLAIT_AUTH_H
#define PLAIT_AUTH_H

#include "core/error.h"

struct plait_credentials {
	char *username;
	char *password;
	char *identity_token; /* OAuth2 refresh token, used instead of a password */
};
void plait_credentials_release(struct plait_credentials *c);

/* Credentials given for one registry (API) host, used instead of the docker
 * config's for it: a build job on a node pushes with those the local plait
 * handed over (platforms/remote_job.h). No username and no token: anonymous. */
struct plait_registry_login {
	const char *host; /* "localhost:5000", "registry-1.docker.io" */
	struct plait_credentials creds;
};

/* The docker config directory: config_dir if not NULL, else $DOCKER_CONFIG,
 * else $HOME/.docker. Caller frees. */
char *plait_auth_config_dir(const char *config_dir);
/* The credentials a registry client for API host (as plait_ref_api_host
 * names it) would use: a login given for it, else the docker config's
 * (config_dir as plait_auth_config_dir takes it). 1 with *out filled, 0 when
 * none, <0 on error. */
int plait_auth_lookup_api_host(const char *config_dir, const struct plait_registry_login *logins, size_t n_logins,
			       const char *host, struct plait_credentials *out, struct plait_error **err);
/* 1 with *out filled when credentials exist for host, 0 when none, <0 on error
 * (unreadable or malformed config.json names the file; a failing helper is named). */
int plait_auth_lookup(const char *config_dir, const char *host, struct plait_credentials *out,
		      struct plait_error **err);
int plait_auth_store(const char *config_dir, const char *host, const struct plait_credentials *c,
		     struct plait_error **err);
/* 1 when something was removed, 0 when there was nothing for host. */
int plait_auth_erase(const char *config_dir, const char *host, struct plait_error **err);

/* A parsed WWW-Authenticate challenge. */
struct plait_auth_challenge {
	char *scheme; /* "basic" or "bearer" (lowercased) */
	char *realm;
	char *service;
	char *scope;
	char *error; /* e.g. "insufficient_scope", or NULL */
};
int plait_auth_parse_challenge(const char *header, struct plait_auth_challenge *out,
			       struct plait_error **err);
void plait_auth_challenge_release(struct plait_auth_challenge *c);

#endif
