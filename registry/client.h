/* registry/client.h - what the files of the registry client share (internal
 * to registry/; the public API is registry.h).
 *
 *   client.c       lifecycle, the scheme probe, the one request+retry loop
 *                  (backoff, Retry-After, failure messages), `plait login`'s check
 *   token.c        the auth hook of that loop: WWW-Authenticate challenges,
 *                  Basic and Bearer, the token cache, token requests
 *   credentials.c  docker config.json, credential helpers, Basic headers
 *   manifest.c     GET/HEAD/PUT of manifests and indexes
 *   blob.c         HEAD, download, cross-repository mount, upload (monolithic
 *                  and resumable chunked)
 *
 * Contract of the loop (registry_send):
 *  - one logical request: 408/429/5xx and retryable transport failures are
 *    tried again up to q->tries (0 = the registry's max_tries) with backoff;
 *  - the auth hook, when there is one, gives the Authorization header of each
 *    try and answers a 401 once per request; without a hook (a token server)
 *    401 and 403 are plain answers. A hook never calls registry_send with a
 *    hook, so answering a challenge cannot recurse into another challenge;
 *  - 0 with the final response in resp (any status that is not retryable;
 *    403 excepted where a hook turns it into -PLAIT_E_AUTH), or <0 with err set. */
#ifndef PLAIT_REGISTRY_CLIENT_H
#define PLAIT_REGISTRY_CLIENT_H

#include <stdatomic.h>

#include <pthread.h>

#include "http.h"
#include "registry.h"

#define DEFAULT_MAX_TRIES 5
#define DEFAULT_BACKOFF_MS 200
/* Blobs up to this size go in one POST+PUT; larger ones as PATCH uploads,
 * which can resume from the registry's Range. */
#define MONOLITHIC_MAX (16 * 1024 * 1024)
#define BACKOFF_CAP_MS 10000
#define RETRY_AFTER_CAP_S 60
#define TOKEN_BODY_MAX (1024 * 1024)
#define TOKEN_MARGIN_S 30

enum access { ACCESS_PULL, ACCESS_PUSH };

struct token {
	char *scope;   /* space-separated scopes it was asked for */
	char *header;  /* "Authorization: Bearer …" */
	uint64_t valid_until_ns;
};

struct plait_registry {
	char *host;
	char *creds_host; /* the name credentials are stored under ("docker.io") */
	char *config_dir;
	char **certs_dirs; /* NULL = defaults */
	char **insecure_hosts;
	bool insecure, loopback;
	int max_tries;
	long backoff_base_ms;
	int64_t chunk_size;
	int64_t monolithic_max;
	const atomic_int *cancel;
	struct plait_http *http;
	struct plait_http_tls tls;

	pthread_mutex_t probe_lock; /* one scheme probe at a time */
	pthread_mutex_t lock;       /* everything below */
	char *base;                 /* "https://host" once known */
	/* credentials.c */
	bool creds_loaded, have_creds;
	struct plait_credentials creds;
	/* token.c */
	char *basic_header; /* set once the registry asked for Basic */
	char *bearer_realm, *bearer_service; /* set once it asked for Bearer */
	struct token *tokens;
	size_t n_tokens, alloc_tokens;
};

/* One logical request. */
struct rq {
	const char *method;
	const char *url; /* absolute, or a path ("/v2/…") under the registry's base */
	const char *repo; /* NULL for /v2/ and token servers */
	enum access access;
	const char *mount_from;
	const char *hdrs[6]; /* extra headers, NULL-terminated */
	const void *body;
	int64_t body_len;
	bool body_from_fd;
	const struct plait_blob_source *src; /* with body_from_fd */
	int64_t off;
	struct plait_buf *out;
	size_t out_max;
	plait_http_sink_fn sink;
	void *sink_ud;
	bool follow;
	int tries;                /* 0 = the registry's max_tries */
	const struct plait_http_tls *tls;      /* NULL = the registry's */
	const struct plait_credentials *login; /* check_login: these, no cache */
	const char *(*dyn_header)(void *ud);   /* recomputed before each attempt */
	void *dyn_ud;
	/* out */
	bool retryable_failure; /* the last failure was one a retry could fix */
};

/* What the auth hook remembers during one logical request. */
struct auth_state {
	bool fresh;    /* credentials or a token were fetched during this request */
	char *header;  /* the Authorization header chosen during this request */
};

/* How registry_send authorises the tries of a request. */
struct auth_hook {
	/* The Authorization header for the next try (*out: caller frees; NULL = none). */
	int (*header)(struct plait_registry *r, const struct rq *q, struct auth_state *as,
		      char **out, struct plait_error **err);
	/* A 401 arrived: 0 when answered (the request is tried once more), <0 with err set. */
	int (*challenge)(struct plait_registry *r, const struct rq *q, struct auth_state *as,
			 const struct plait_http_resp *resp, struct plait_error **err);
	/* A 403 arrived: set err (-PLAIT_E_AUTH) and return it. */
	int (*refused)(struct plait_registry *r, const struct rq *q,
		       const struct plait_http_resp *resp, struct plait_error **err);
};

/* token.c: Basic or Bearer, as the registry's challenges ask. */
extern const struct auth_hook registry_auth;

/* client.c: the retry loop (see the contract above); auth NULL = none. */
int registry_send(struct plait_registry *r, struct rq *q, const struct auth_hook *auth,
		  struct plait_http_resp *resp, struct plait_error **err);
/* registry_send with registry_auth: every request to the registry itself. */
int registry_request(struct plait_registry *r, struct rq *q, struct plait_http_resp *resp,
		     struct plait_error **err);
/* Wait before try number failed+1: the server's Retry-After (capped), else
 * full jitter over an exponentially growing window. */
void registry_backoff(const struct plait_registry *r, int failed, const char *retry_after);

/* client.c: messages */
/* "<status> <reason>" */
void registry_add_status(struct plait_buf *b, const struct plait_http_resp *resp);
/* ": <message>" from a distribution error body {"errors":[{"code","message"}]}. */
void registry_add_error_body(struct plait_buf *b, const struct plait_buf *body);
/* Sets err to "<METHOD> <url>: <status or failure>[: registry message]"
 * (NOT_FOUND for 404, RETRYABLE for retryable statuses) and returns it. */
int registry_unexpected(struct plait_error **err, const char *method, const char *url,
			const struct plait_http_resp *resp);
/* "host/repo:tag" or "host/repo@sha256:…" (caller frees) */
char *registry_ref_str(const struct plait_registry *r, const char *repo, const char *ref);
const char *registry_access_name(enum access a);
/* Is host (or host without its port) in the NULL-terminated list? */
bool registry_host_listed(char *const *list, const char *host);
/* "host[:port]" of an absolute URL, or NULL (caller frees). */
char *registry_url_authority(const char *url);

/* token.c: frees the token cache and what the challenges told. */
void registry_tokens_release(struct plait_registry *r);
/* token.c: "authentication required by registry H for repository 'R' (push):
 * run 'plait login H'" (or the login variant), -PLAIT_E_AUTH. */
int registry_auth_required(struct plait_registry *r, const struct rq *q, bool had_creds,
			   const struct plait_http_resp *resp, struct plait_error **err);

/* credentials.c: the registry's stored credentials, looked up once; 1 with
 * *out filled (caller releases), 0 when there are none, <0 on error. */
int registry_stored_creds(struct plait_registry *r, struct plait_credentials *out,
			  struct plait_error **err);
/* Were stored credentials found (after registry_stored_creds ran)? */
bool registry_have_stored_creds(struct plait_registry *r);
/* A user name or an identity token to send. */
bool registry_creds_usable(const struct plait_credentials *c);
/* The name credentials for API host are stored under ("docker.io" for Docker Hub's). */
const char *registry_creds_host(const char *host);
/* "Authorization: Basic base64(user:password)" (caller frees; a secret). */
char *registry_basic_header(const struct plait_credentials *c);

/* manifest.c: plait_registry_put_manifest, also giving the OCI-Subject header
 * of the answer (*oci_subject, caller frees; NULL when absent). */
int registry_put_manifest_subject(struct plait_registry *r, const char *repo, const char *ref,
				  const char *media_type, const void *data, size_t len,
				  char **oci_subject, struct plait_error **err);

/* blob.c's header arithmetic (exposed for tests/fuzz): the start of a 206's
 * "Content-Range: bytes N-M/T", -1 when absent or malformed; the next offset
 * of an upload session's "Range: 0-N" (see blob.c), -1 when malformed. */
int64_t registry_content_range_start(const char *content_range);
int64_t registry_range_next(const char *range);

#endif
