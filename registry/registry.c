/* registry/registry.c - the distribution-spec client (see registry.h).
 *
 * Layers: request() retries one logical request (backoff, Retry-After);
 * attempt() sends it once more when the registry challenges with 401 (Basic
 * or a Bearer token from the realm); http.c performs single HTTP exchanges.
 *
 * Choices worth knowing:
 *  - loopback and insecure hosts get their scheme from one probe of /v2/:
 *    https first, plain http when https fails at the transport level and
 *    http answers with anything but 400 (a TLS server answers plain HTTP with
 *    400, which must not be taken for a plain registry);
 *  - once a registry challenged with Basic, credentials go with every request;
 *    once it challenged with Bearer, a token for a new scope is fetched before
 *    the first request instead of after an anonymous 401;
 *  - a token is kept until min(30 s, expires_in / 2) before expires_in runs
 *    out, counted from when it was requested (issued_at is not trusted: clocks
 *    differ); an identity token is exchanged with the OAuth2 POST form
 *    (grant_type=refresh_token), everything else uses GET with Basic;
 *  - credentials are never sent over plain HTTP to a token server that is
 *    neither loopback nor listed insecure;
 *  - an upload whose session was lost (404) or whose PATCH failed in a way
 *    the registry cannot resume is started again from a new POST. */
#include "registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "core/digest.h"
#include "core/oci.h"
#include "http.h"
#include "plait-config.h"
#include "ref.h"

#include "core/banned.h"

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
	const volatile int *cancel;
	struct plait_http *http;
	struct plait_http_tls tls;

	pthread_mutex_t probe_lock; /* one scheme probe at a time */
	pthread_mutex_t lock;       /* everything below */
	char *base;                 /* "https://host" once known */
	bool creds_loaded, have_creds;
	struct plait_credentials creds;
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
	bool no_auth;             /* token server: no challenge handling */
	const char *auth_header;  /* fixed Authorization header (token server) */
	const struct plait_http_tls *tls;      /* NULL = the registry's */
	const struct plait_credentials *login; /* check_login: these, no cache */
	const char *(*dyn_header)(void *ud);   /* recomputed before each attempt */
	void *dyn_ud;
	/* out */
	bool retryable_failure; /* the last failure was one a retry could fix */
};

struct auth_state {
	bool fresh;    /* credentials or a token were fetched during this request */
	char *header;  /* the Authorization header chosen during this request */
};

static int attempt_auth_challenge(struct plait_registry *r, struct rq *q, struct auth_state *as,
				  const struct plait_http_resp *resp, struct plait_error **err);

/* ------------------------------------------------------------------ small helpers */

static char **strv_copy(const char *const *v)
{
	if (!v)
		return NULL;
	size_t n = 0;
	while (v[n])
		n++;
	char **c = xcalloc(n + 1, sizeof(*c));
	for (size_t i = 0; i < n; i++)
		c[i] = xstrdup(v[i]);
	return c;
}

static bool host_listed(char *const *list, const char *host)
{
	if (!list)
		return false;
	const char *colon = strrchr(host, ':');
	bool has_port = colon && !strchr(colon, ']');
	size_t name_len = has_port ? (size_t)(colon - host) : strlen(host);
	for (size_t i = 0; list[i]; i++) {
		if (streq(list[i], host))
			return true;
		/* "example.com" lists every port of example.com */
		if (has_port && strlen(list[i]) == name_len && strncmp(list[i], host, name_len) == 0)
			return true;
	}
	return false;
}

/* The URL without its query string, for messages (upload URLs carry state). */
static void add_url_for_msg(struct plait_buf *b, const char *url)
{
	const char *q = strchr(url, '?');
	plait_buf_add(b, url, q ? (size_t)(q - url) : strlen(url));
}

/* ": <message>" from a distribution error body {"errors":[{"code","message"}]}. */
static void add_registry_error(struct plait_buf *b, const struct plait_buf *body)
{
	if (!body->len)
		return;
	json_auto_t *j = json_loadb(body->buf, body->len, 0, NULL);
	json_t *errs = j ? json_object_get(j, "errors") : NULL;
	json_t *e0 = json_is_array(errs) ? json_array_get(errs, 0) : NULL;
	const char *msg = json_string_value(json_object_get(e0, "message"));
	const char *code = json_string_value(json_object_get(e0, "code"));
	if (msg && *msg)
		plait_buf_addf(b, ": %s", msg);
	else if (code && *code)
		plait_buf_addf(b, ": %s", code);
}

static void add_status(struct plait_buf *b, const struct plait_http_resp *resp)
{
	plait_buf_addf(b, "%ld", resp->status);
	const char *reason = resp->reason && *resp->reason ? resp->reason
							   : plait_http_reason(resp->status);
	if (*reason)
		plait_buf_addf(b, " %s", reason);
}

/* "<METHOD> <url>: <status or failure>[: registry message]" */
static void describe(struct plait_buf *b, const char *method, const char *url,
		     const struct plait_http_resp *resp)
{
	plait_buf_addf(b, "%s ", method);
	add_url_for_msg(b, url);
	plait_buf_adds(b, ": ");
	if (resp->curl_code || !resp->status) {
		plait_http_describe_failure(resp, b);
		return;
	}
	add_status(b, resp);
	add_registry_error(b, &resp->err_body);
}

static bool status_retryable(long s);

static int unexpected(struct plait_error **err, const char *method, const char *url,
		      const struct plait_http_resp *resp)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	describe(&b, method, url, resp);
	int code = resp->status == 404		     ? PLAIT_E_NOT_FOUND
		   : status_retryable(resp->status) ? PLAIT_E_RETRYABLE
		   : resp->curl_code		     ? PLAIT_E_NETWORK
						     : PLAIT_E_GENERIC;
	int rc = plait_error_set(err, code, "%s", b.buf);
	plait_buf_release(&b);
	return rc;
}

static const char *access_name(enum access a)
{
	return a == ACCESS_PUSH ? "push" : "pull";
}

/* "host/repo:tag" or "host/repo@sha256:…" */
static char *ref_str(const struct plait_registry *r, const char *repo, const char *ref)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/%s%s%s", r->host, repo, strchr(ref, ':') ? "@" : ":", ref);
	return plait_buf_detach(&b, NULL);
}

static bool status_retryable(long s)
{
	return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static bool curl_retryable(int code)
{
	switch (code) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static uint64_t rand64(void)
{
	static __thread uint64_t s;
	if (!s)
		s = plait_now_ns() ^ ((uint64_t)(uintptr_t)&s << 16) ^ (uint64_t)getpid();
	/* xorshift64*: jitter needs spread, not secrecy */
	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	return s * 2685821657736338717ULL;
}

/* Seconds from a Retry-After value (delta-seconds or an HTTP date), or -1. */
static long retry_after_s(const char *v)
{
	if (!v || !*v)
		return -1;
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!errno && end != v && !*end)
		return n < 0 ? 0 : n;
	time_t t = curl_getdate(v, NULL);
	if (t < 0)
		return -1;
	time_t now = time(NULL);
	return t > now ? (long)(t - now) : 0;
}

static bool cancelled(const struct plait_registry *r)
{
	return r->cancel && *r->cancel;
}

/* Sleep in slices so an interrupt ends the wait. */
static void sleep_ms(const struct plait_registry *r, uint64_t ms)
{
	while (ms > 0 && !cancelled(r)) {
		uint64_t slice = ms < 100 ? ms : 100;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)slice * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !cancelled(r))
			;
		ms -= slice;
	}
}

/* Wait before try number failed+1: the server's Retry-After (capped), else
 * full jitter over an exponentially growing window. */
static void backoff(const struct plait_registry *r, int failed, const char *retry_after)
{
	long ra = retry_after_s(retry_after);
	if (ra >= 0) {
		sleep_ms(r, (uint64_t)(ra > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S : ra) * 1000);
		return;
	}
	uint64_t window = (uint64_t)r->backoff_base_ms;
	for (int i = 1; i < failed && window < BACKOFF_CAP_MS; i++)
		window *= 2;
	if (window > BACKOFF_CAP_MS)
		window = BACKOFF_CAP_MS;
	sleep_ms(r, rand64() % (window + 1));
}

static char *base64(const void *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* "host[:port]" of an absolute URL, or NULL. */
static char *url_authority(const char *url)
{
	const char *p = strstr(url, "://");
	if (!p)
		return NULL;
	p += 3;
	size_t n = strcspn(p, "/?#");
	const char *at = memchr(p, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	return n ? xstrndup(p, n) : NULL;
}

/* ------------------------------------------------------------------ lifecycle */

int plait_registry_new(const char *host, const struct plait_registry_opts *opts,
		       struct plait_registry **out, struct plait_error **err)
{
	static const struct plait_registry_opts no_opts;
	if (!opts)
		opts = &no_opts;
	if (!host || !*host || strpbrk(host, "/?#@ \t\r\n"))
		return plait_error_set(err, PLAIT_E_USAGE, "invalid registry host '%s'",
				       host ? host : "");

	struct plait_registry *r = xcalloc(1, sizeof(*r));
	r->host = xstrdup(host);
	r->creds_host = xstrdup(streq(host, plait_docker_hub_api_host()) ? plait_docker_hub_domain() : host);
	r->config_dir = xstrdup_or_null(opts->docker_config_dir);
	r->certs_dirs = strv_copy(opts->certs_dirs);
	r->insecure_hosts = strv_copy(opts->insecure_hosts);
	r->insecure = host_listed(r->insecure_hosts, host);
	r->loopback = plait_host_is_loopback(host);
	r->max_tries = opts->max_tries > 0 ? opts->max_tries : DEFAULT_MAX_TRIES;
	r->cancel = opts->cancel;
	r->backoff_base_ms = opts->backoff_base_ms > 0 ? opts->backoff_base_ms : DEFAULT_BACKOFF_MS;
	/* One PATCH for the whole rest by default: every extra PATCH costs the
	 * registry a reopen of the upload and its hash state. */
	r->chunk_size = opts->chunk_size > 0 ? opts->chunk_size : INT64_MAX;
	r->monolithic_max = r->chunk_size < MONOLITHIC_MAX ? r->chunk_size : MONOLITHIC_MAX;
	pthread_mutex_init(&r->lock, NULL);
	pthread_mutex_init(&r->probe_lock, NULL);
	if (!r->insecure && !r->loopback) {
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "https://%s", host);
		r->base = plait_buf_detach(&b, NULL);
	}

	int rc = plait_http_tls_for_host(host, (const char *const *)r->certs_dirs, !r->insecure,
					 &r->tls, err);
	if (rc < 0) {
		plait_registry_free(r);
		return plait_error_wrap(err, "registry %s", host);
	}
	rc = plait_http_new(opts->user_agent ? opts->user_agent : "plait/" PLAIT_VERSION, &r->http,
			    err);
	if (rc < 0) {
		plait_registry_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void plait_registry_free(struct plait_registry *r)
{
	if (!r)
		return;
	plait_http_free(r->http);
	plait_http_tls_release(&r->tls);
	for (size_t i = 0; i < r->n_tokens; i++) {
		free(r->tokens[i].scope);
		free(r->tokens[i].header);
	}
	free(r->tokens);
	free(r->basic_header);
	free(r->bearer_realm);
	free(r->bearer_service);
	plait_credentials_release(&r->creds);
	free(r->base);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->probe_lock);
	plait_strv_free(r->certs_dirs);
	plait_strv_free(r->insecure_hosts);
	free(r->config_dir);
	free(r->creds_host);
	free(r->host);
	free(r);
}

const char *plait_registry_host(const struct plait_registry *r)
{
	return r->host;
}

/* ------------------------------------------------------------------ scheme */

static int probe(struct plait_registry *r, const char *scheme, struct plait_http_resp *resp)
{
	struct plait_buf url = PLAIT_BUF_INIT;
	plait_buf_addf(&url, "%s://%s/v2/", scheme, r->host);
	struct plait_http_req hq = { .method = "GET", .url = url.buf, .tls = &r->tls };
	int rc = plait_http_perform(r->http, &hq, resp);
	plait_buf_release(&url);
	return rc;
}

/* The base URL for this registry; probes the scheme for loopback and
 * insecure hosts. 0, or -1 with resp describing the transport failure. */
static int ensure_base(struct plait_registry *r, const char **base, struct plait_http_resp *resp)
{
	pthread_mutex_lock(&r->lock);
	*base = r->base;
	pthread_mutex_unlock(&r->lock);
	if (*base)
		return 0;

	pthread_mutex_lock(&r->probe_lock);
	pthread_mutex_lock(&r->lock);
	*base = r->base;
	pthread_mutex_unlock(&r->lock);
	if (*base) {
		pthread_mutex_unlock(&r->probe_lock);
		return 0;
	}
	const char *scheme = "https";
	int rc = probe(r, "https", resp);
	if (rc < 0) {
		struct plait_http_resp plain = PLAIT_HTTP_RESP_INIT;
		if (probe(r, "http", &plain) == 0 && plain.status != 400) {
			scheme = "http";
			rc = 0;
		}
		plait_http_resp_release(&plain);
	}
	if (rc == 0) {
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "%s://%s", scheme, r->host);
		pthread_mutex_lock(&r->lock);
		r->base = plait_buf_detach(&b, NULL);
		*base = r->base;
		pthread_mutex_unlock(&r->lock);
	}
	pthread_mutex_unlock(&r->probe_lock);
	return rc;
}

/* ------------------------------------------------------------------ auth */

static void scope_key(const struct rq *q, enum access access, struct plait_buf *out)
{
	if (!q->repo)
		return;
	plait_buf_addf(out, "repository:%s:%s", q->repo,
		       access == ACCESS_PUSH ? "pull,push" : "pull");
	if (q->mount_from && !streq(q->mount_from, q->repo))
		plait_buf_addf(out, " repository:%s:pull", q->mount_from);
}

/* The cached Authorization header for q's scope (caller frees), or NULL. */
static char *cached_auth(struct plait_registry *r, const struct rq *q)
{
	char *ret = NULL;
	struct plait_buf want = PLAIT_BUF_INIT, wider = PLAIT_BUF_INIT;
	scope_key(q, q->access, &want);
	/* a pull,push token also covers pull */
	scope_key(q, ACCESS_PUSH, &wider);
	uint64_t now = plait_now_ns();
	pthread_mutex_lock(&r->lock);
	if (r->basic_header) {
		ret = xstrdup(r->basic_header);
	} else {
		for (size_t i = 0; i < r->n_tokens && !ret; i++)
			if ((streq(r->tokens[i].scope, want.buf) || streq(r->tokens[i].scope, wider.buf)) &&
			    now < r->tokens[i].valid_until_ns)
				ret = xstrdup(r->tokens[i].header);
	}
	pthread_mutex_unlock(&r->lock);
	plait_buf_release(&want);
	plait_buf_release(&wider);
	return ret;
}

static void cache_token(struct plait_registry *r, const char *scope, const char *header,
			uint64_t valid_until_ns)
{
	pthread_mutex_lock(&r->lock);
	size_t i;
	for (i = 0; i < r->n_tokens; i++)
		if (streq(r->tokens[i].scope, scope))
			break;
	if (i == r->n_tokens) {
		PLAIT_ALLOC_GROW(r->tokens, r->n_tokens + 1, r->alloc_tokens);
		r->tokens[r->n_tokens++] = (struct token){ .scope = xstrdup(scope) };
	}
	free(r->tokens[i].header);
	r->tokens[i].header = xstrdup(header);
	r->tokens[i].valid_until_ns = valid_until_ns;
	pthread_mutex_unlock(&r->lock);
}

/* Stored credentials for the registry (looked up once). 1 when there are some. */
static int stored_creds(struct plait_registry *r, struct plait_credentials *out,
			struct plait_error **err)
{
	pthread_mutex_lock(&r->lock);
	if (!r->creds_loaded) {
		struct plait_credentials c = { 0 };
		int rc = plait_auth_lookup(r->config_dir, r->creds_host, &c, err);
		if (rc < 0) {
			pthread_mutex_unlock(&r->lock);
			plait_credentials_release(&c);
			return rc;
		}
		r->creds = c;
		r->have_creds = rc > 0;
		r->creds_loaded = true;
	}
	int have = r->have_creds;
	if (have) {
		out->username = xstrdup_or_null(r->creds.username);
		out->password = xstrdup_or_null(r->creds.password);
		out->identity_token = xstrdup_or_null(r->creds.identity_token);
	}
	pthread_mutex_unlock(&r->lock);
	return have;
}

static bool creds_usable(const struct plait_credentials *c)
{
	return c && ((c->username && *c->username) || (c->identity_token && *c->identity_token));
}

static char *basic_header(const struct plait_credentials *c)
{
	struct plait_buf up = PLAIT_BUF_INIT, h = PLAIT_BUF_INIT;
	plait_buf_addf(&up, "%s:%s", c->username ? c->username : "", c->password ? c->password : "");
	_cleanup_free_ char *b64 = base64(up.buf, up.len);
	explicit_bzero(up.buf, up.len);
	plait_buf_release(&up);
	plait_buf_addf(&h, "Authorization: Basic %s", b64);
	explicit_bzero(b64, strlen(b64));
	return plait_buf_detach(&h, NULL);
}

static int request(struct plait_registry *r, struct rq *q, struct plait_http_resp *resp,
		   struct plait_error **err);

/* "authentication required by registry H for repository 'R' (push): run 'plait login H'" */
static int auth_required(struct plait_registry *r, const struct rq *q, bool had_creds,
			 const struct plait_http_resp *resp, struct plait_error **err)
{
	if (q->login) {
		struct plait_buf b = PLAIT_BUF_INIT;
		add_status(&b, resp);
		int rc = plait_error_set(err, PLAIT_E_AUTH,
					 "login to %s refused: %s: check the user name and password",
					 r->creds_host, b.buf);
		plait_buf_release(&b);
		return rc;
	}
	struct plait_buf what = PLAIT_BUF_INIT;
	if (q->repo)
		plait_buf_addf(&what, " for repository '%s' (%s)", q->repo,
			       access_name(q->access));
	int rc = plait_error_set(err, PLAIT_E_AUTH,
				 "authentication required by registry %s%s: %srun 'plait login %s'",
				 r->host, what.buf,
				 had_creds ? "the stored credentials were not accepted; " : "",
				 r->creds_host);
	plait_buf_release(&what);
	return rc;
}

static int access_refused(struct plait_registry *r, const struct rq *q,
			  const struct plait_http_resp *resp, struct plait_error **err)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	add_status(&b, resp);
	add_registry_error(&b, &resp->err_body);
	int rc;
	if (q->login)
		rc = plait_error_set(err, PLAIT_E_AUTH,
				     "login to %s refused: %s: check the user name and password",
				     r->creds_host, b.buf);
	else if (q->repo)
		rc = plait_error_set(err, PLAIT_E_AUTH,
				     "registry %s refused %s access to repository '%s': %s: "
				     "check the account has %s access",
				     r->host, access_name(q->access), q->repo, b.buf,
				     access_name(q->access));
	else
		rc = plait_error_set(err, PLAIT_E_AUTH, "registry %s refused access: %s", r->host,
				     b.buf);
	plait_buf_release(&b);
	return rc;
}

/* Fetch a Bearer token from realm for q's scopes. */
static int fetch_token(struct plait_registry *r, const struct rq *q, const char *realm,
		       const char *service, const struct plait_credentials *c, char **header_out,
		       uint64_t *valid_until_ns, struct plait_error **err)
{
	_cleanup_free_ char *realm_host = url_authority(realm);
	if (!realm_host || !(startswith(realm, "https://") || startswith(realm, "http://")))
		return plait_error_set(err, PLAIT_E_GENERIC,
				       "registry %s names an invalid token server '%s'", r->host, realm);
	bool realm_insecure = host_listed(r->insecure_hosts, realm_host);
	bool have = creds_usable(c);
	if (have && startswith(realm, "http://") && !plait_host_is_loopback(realm_host) &&
	    !realm_insecure)
		return plait_error_set(err, PLAIT_E_AUTH,
				       "registry %s sends credentials to token server '%s' over plain "
				       "HTTP: refusing; list '%s' as an insecure registry if this is intended",
				       r->host, realm, realm_host);

	struct plait_http_tls own_tls = { 0 };
	const struct plait_http_tls *tls = &r->tls;
	if (!streq(realm_host, r->host)) {
		int rc = plait_http_tls_for_host(realm_host, (const char *const *)r->certs_dirs,
						 !realm_insecure, &own_tls, err);
		if (rc < 0)
			return rc;
		tls = &own_tls;
	}

	struct plait_buf scopes = PLAIT_BUF_INIT, url = PLAIT_BUF_INIT, form = PLAIT_BUF_INIT;
	struct plait_buf body = PLAIT_BUF_INIT;
	_cleanup_free_ char *auth = NULL;
	scope_key(q, q->access, &scopes);
	bool oauth = c && c->identity_token && *c->identity_token;
	struct rq tq = { .url = NULL, .no_auth = true, .tls = tls, .out = &body,
			 .out_max = TOKEN_BODY_MAX };
	if (oauth) {
		/* docker's OAuth2 form for refresh (identity) tokens */
		plait_buf_adds(&url, realm);
		plait_buf_adds(&form, "grant_type=refresh_token&client_id=plait&refresh_token=");
		plait_http_add_escaped(&form, c->identity_token);
		if (service && *service) {
			plait_buf_adds(&form, "&service=");
			plait_http_add_escaped(&form, service);
		}
		if (scopes.len) {
			plait_buf_adds(&form, "&scope=");
			plait_http_add_escaped(&form, scopes.buf);
		}
		tq.method = "POST";
		tq.body = form.buf;
		tq.body_len = (int64_t)form.len;
		tq.hdrs[0] = "Content-Type: application/x-www-form-urlencoded";
	} else {
		plait_buf_adds(&url, realm);
		char sep = strchr(realm, '?') ? '&' : '?';
		if (service && *service) {
			plait_buf_addf(&url, "%cservice=", sep);
			plait_http_add_escaped(&url, service);
			sep = '&';
		}
		/* one scope parameter per scope, as docker sends them */
		const char *s = scopes.buf;
		while (*s) {
			size_t n = strcspn(s, " ");
			_cleanup_free_ char *one = xstrndup(s, n);
			plait_buf_addf(&url, "%cscope=", sep);
			plait_http_add_escaped(&url, one);
			sep = '&';
			s += n;
			while (*s == ' ')
				s++;
		}
		tq.method = "GET";
		if (have)
			auth = basic_header(c);
		tq.auth_header = auth;
	}
	tq.url = url.buf;

	uint64_t start = plait_now_ns();
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	json_t *j = NULL;
	int rc = request(r, &tq, &resp, err);
	if (rc < 0) {
		plait_error_wrap(err, "get a token for registry %s", r->host);
		goto out;
	}
	if (resp.status == 401 || resp.status == 403) {
		struct rq mq = *q;
		if (resp.status == 401 || q->login) {
			rc = auth_required(r, &mq, have, &resp, err);
			if (!q->login)
				plait_error_wrap(err, "token server '%s'", realm);
		} else {
			rc = access_refused(r, &mq, &resp, err);
		}
		goto out;
	}
	if (resp.status != 200) {
		rc = unexpected(err, tq.method, realm, &resp);
		plait_error_wrap(err, "get a token for registry %s", r->host);
		goto out;
	}
	json_error_t jerr;
	j = json_loadb(body.buf, body.len, 0, &jerr);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (!tok || !*tok)
		tok = json_string_value(json_object_get(j, "access_token"));
	if (!tok || !*tok) {
		rc = plait_error_set(err, PLAIT_E_INVALID,
				     "token server '%s' for registry %s answered without a token%s%s",
				     realm, r->host, j ? "" : ": invalid JSON: ", j ? "" : jerr.text);
		goto out;
	}
	json_int_t expires = 60;
	json_t *je = json_object_get(j, "expires_in");
	if (json_is_integer(je) && json_integer_value(je) > 0)
		expires = json_integer_value(je);
	json_int_t margin = expires / 2 < TOKEN_MARGIN_S ? expires / 2 : TOKEN_MARGIN_S;
	*valid_until_ns = start + (uint64_t)(expires - margin) * 1000000000ULL;
	struct plait_buf h = PLAIT_BUF_INIT;
	plait_buf_addf(&h, "Authorization: Bearer %s", tok);
	*header_out = plait_buf_detach(&h, NULL);
	rc = 0;
out:
	json_decref(j);
	plait_http_resp_release(&resp);
	if (form.len)
		explicit_bzero(form.buf, form.len);
	plait_buf_release(&form);
	plait_buf_release(&body);
	plait_buf_release(&url);
	plait_buf_release(&scopes);
	plait_http_tls_release(&own_tls);
	return rc;
}

/* Fetch a token for q using what the registry told about its realm before. */
static int bearer_for(struct plait_registry *r, struct rq *q, const char *realm,
		      const char *service, struct auth_state *as, struct plait_error **err)
{
	struct plait_credentials c = { 0 };
	const struct plait_credentials *use = q->login;
	if (!q->login) {
		int rc = stored_creds(r, &c, err);
		if (rc < 0)
			return rc;
		use = rc > 0 ? &c : NULL;
	}
	char *header = NULL;
	uint64_t until = 0;
	int rc = fetch_token(r, q, realm, service, use, &header, &until, err);
	plait_credentials_release(&c);
	if (rc < 0)
		return rc;
	if (!q->login) {
		struct plait_buf key = PLAIT_BUF_INIT;
		scope_key(q, q->access, &key);
		cache_token(r, key.buf, header, until);
		plait_buf_release(&key);
	}
	free(as->header);
	as->header = header;
	as->fresh = true;
	return 0;
}

/* The Authorization header for the next try (caller frees), or NULL. */
static int current_auth(struct plait_registry *r, struct rq *q, struct auth_state *as,
			char **out, struct plait_error **err)
{
	*out = NULL;
	if (q->auth_header) {
		*out = xstrdup(q->auth_header);
		return 0;
	}
	if (q->no_auth)
		return 0;
	if (as->header) {
		*out = xstrdup(as->header);
		return 0;
	}
	if (q->login)
		return 0;
	*out = cached_auth(r, q);
	if (*out)
		return 0;
	/* A registry that asked for Bearer once will ask again: get the token
	 * now rather than after a 401 (which would also cost a body upload). */
	pthread_mutex_lock(&r->lock);
	_cleanup_free_ char *realm = xstrdup_or_null(r->bearer_realm);
	_cleanup_free_ char *service = xstrdup_or_null(r->bearer_service);
	pthread_mutex_unlock(&r->lock);
	if (!realm)
		return 0;
	int rc = bearer_for(r, q, realm, service, as, err);
	if (rc < 0)
		return rc;
	*out = xstrdup(as->header);
	return 0;
}

static int attempt_auth_challenge(struct plait_registry *r, struct rq *q, struct auth_state *as,
				  const struct plait_http_resp *resp, struct plait_error **err)
{
	if (!resp->www_authenticate)
		return auth_required(r, q, false, resp, err);
	struct plait_auth_challenge ch = { 0 };
	int rc = plait_auth_parse_challenge(resp->www_authenticate, &ch, err);
	if (rc < 0)
		return plait_error_wrap(err, "registry %s", r->host);

	if (ch.scheme && streq(ch.scheme, "basic")) {
		struct plait_credentials c = { 0 };
		const struct plait_credentials *use = q->login;
		if (!q->login) {
			rc = stored_creds(r, &c, err);
			if (rc < 0)
				goto out;
			use = rc > 0 ? &c : NULL;
		}
		if (!use || !use->username || !*use->username) {
			plait_credentials_release(&c);
			rc = auth_required(r, q, false, resp, err);
			goto out;
		}
		char *h = basic_header(use);
		plait_credentials_release(&c);
		if (!q->login) {
			pthread_mutex_lock(&r->lock);
			free(r->basic_header);
			r->basic_header = xstrdup(h);
			pthread_mutex_unlock(&r->lock);
		}
		free(as->header);
		as->header = h;
		as->fresh = true;
		rc = 0;
	} else if (ch.scheme && streq(ch.scheme, "bearer")) {
		if (!ch.realm || !*ch.realm) {
			rc = plait_error_set(err, PLAIT_E_GENERIC,
					     "registry %s asks for a Bearer token but names no realm",
					     r->host);
			goto out;
		}
		if (!q->login) {
			pthread_mutex_lock(&r->lock);
			free(r->bearer_realm);
			free(r->bearer_service);
			r->bearer_realm = xstrdup(ch.realm);
			r->bearer_service = xstrdup_or_null(ch.service);
			pthread_mutex_unlock(&r->lock);
		}
		rc = bearer_for(r, q, ch.realm, ch.service, as, err);
	} else {
		rc = plait_error_set(err, PLAIT_E_AUTH,
				     "registry %s asks for unsupported authentication scheme '%s'",
				     r->host, ch.scheme ? ch.scheme : "");
	}
out:
	plait_auth_challenge_release(&ch);
	return rc;
}

/* ------------------------------------------------------------------ requests */

/* One try, answering a 401 challenge once. 0: a response (any status);
 * 1: transport failure (resp says which); <0: error set. */
static int attempt(struct plait_registry *r, struct rq *q, const char *url, struct auth_state *as,
		   struct plait_http_resp *resp, struct plait_error **err)
{
	for (;;) {
		_cleanup_free_ char *auth = NULL;
		int rc = current_auth(r, q, as, &auth, err);
		if (rc < 0)
			return rc;
		const char *hdrs[ARRAY_SIZE(q->hdrs) + 3];
		size_t n = 0;
		for (size_t i = 0; i < ARRAY_SIZE(q->hdrs) && q->hdrs[i]; i++)
			hdrs[n++] = q->hdrs[i];
		if (auth)
			hdrs[n++] = auth;
		const char *dyn = q->dyn_header ? q->dyn_header(q->dyn_ud) : NULL;
		if (dyn)
			hdrs[n++] = dyn;
		hdrs[n] = NULL;
		if (q->out)
			plait_buf_reset(q->out);
		struct plait_http_req hq = {
			.method = q->method,
			.url = url,
			.headers = hdrs,
			.body = q->body,
			.body_len = q->body_len,
			.body_from_fd = q->body_from_fd,
			.body_fd = q->src ? q->src->fd : -1,
			.body_wait = q->src ? q->src->wait : NULL,
			.body_wait_ud = q->src ? q->src->ud : NULL,
			.body_off = q->off,
			.out = q->out,
			.out_max = q->out_max,
			.sink = q->sink,
			.sink_ud = q->sink_ud,
			.follow_redirects = q->follow,
			.tls = q->tls ? q->tls : &r->tls,
			.cancel = r->cancel,
		};
		rc = plait_http_perform(r->http, &hq, resp);
		if (auth)
			explicit_bzero(auth, strlen(auth));
		if (rc < 0)
			return 1;
		if (resp->status != 401 || q->no_auth || q->auth_header)
			return 0;
		if (as->fresh) {
			bool had;
			if (q->login) {
				had = creds_usable(q->login);
			} else {
				pthread_mutex_lock(&r->lock);
				had = r->have_creds;
				pthread_mutex_unlock(&r->lock);
			}
			return auth_required(r, q, had, resp, err);
		}
		rc = attempt_auth_challenge(r, q, as, resp, err);
		if (rc < 0)
			return rc;
	}
}

/* Send q with retries. 0 with the final response in resp (any status that
 * is not retryable, 401/403 excepted), or <0 with err set. */
static int request(struct plait_registry *r, struct rq *q, struct plait_http_resp *resp,
		   struct plait_error **err)
{
	int max = q->tries > 0 ? q->tries : r->max_tries;
	struct auth_state as = { 0 };
	_cleanup_free_ char *full = NULL, *probe_url = NULL;
	bool reached = false;
	int rc = 0, failed = 0;
	q->retryable_failure = false;

	for (;;) {
		const char *url = q->url;
		int step;
		if (q->url[0] == '/') {
			const char *base;
			if (ensure_base(r, &base, resp) < 0) {
				/* the scheme probe failed: name the URL https would have had */
				if (!probe_url) {
					struct plait_buf u = PLAIT_BUF_INIT;
					plait_buf_addf(&u, "https://%s%s", r->host, q->url);
					probe_url = plait_buf_detach(&u, NULL);
				}
				url = probe_url;
				step = 1;
				goto classify;
			}
			if (!full) {
				struct plait_buf b = PLAIT_BUF_INIT;
				plait_buf_addf(&b, "%s%s", base, q->url);
				full = plait_buf_detach(&b, NULL);
			}
			url = full;
		}
		step = attempt(r, q, url, &as, resp, err);
		if (step < 0) {
			rc = step;
			goto out;
		}
	classify:
		if (cancelled(r)) {
			rc = plait_error_set(err, PLAIT_E_CANCELLED, "%s %s: interrupted", q->method, url);
			goto out;
		}
		if (step == 1) {
			if (resp->too_large) {
				rc = plait_error_set(err, PLAIT_E_INVALID, "%s %s: response is too large",
						     q->method, url);
				goto out;
			}
			if (resp->aborted) {
				rc = plait_error_set(err, PLAIT_E_IO, "%s %s: transfer stopped", q->method,
						     url);
				goto out;
			}
			if (resp->curl_code != CURLE_COULDNT_CONNECT)
				reached = true;
			if (!curl_retryable(resp->curl_code)) {
				struct plait_buf b = PLAIT_BUF_INIT;
				plait_http_describe_failure(resp, &b);
				_cleanup_free_ char *host = url_authority(url);
				if (resp->curl_code == CURLE_COULDNT_RESOLVE_HOST)
					rc = plait_error_set(err, PLAIT_E_NETWORK,
							     "cannot reach %s %s: %s; is the address right?",
							     q->no_auth ? "token server" : "registry",
							     host ? host : url, b.buf);
				else if (resp->curl_code == CURLE_PEER_FAILED_VERIFICATION ||
					 resp->curl_code == CURLE_SSL_CONNECT_ERROR)
					rc = plait_error_set(err, PLAIT_E_NETWORK,
							     "%s %s: %s; put the registry's CA in %s/%s/ca.crt "
							     "(or a directory given with --cert-dir), or, for a "
							     "registry without TLS or with a certificate you do not "
							     "check, pass --insecure-registry %s",
							     q->method, url, b.buf,
							     r->certs_dirs && r->certs_dirs[0] ? r->certs_dirs[0]
											       : "/etc/docker/certs.d",
							     host ? host : r->host, host ? host : r->host);
				else
					rc = plait_error_set(err, PLAIT_E_NETWORK, "%s %s: %s", q->method,
							     url, b.buf);
				plait_buf_release(&b);
				goto out;
			}
			/* A download that made progress resumes: that try is not held against it. */
			if (resp->body_bytes > 0)
				failed = 0;
			failed++;
			q->retryable_failure = true;
			if (failed >= max)
				break;
			backoff(r, failed, NULL);
			continue;
		}
		reached = true;
		if (status_retryable(resp->status)) {
			failed++;
			q->retryable_failure = true;
			if (failed >= max)
				break;
			backoff(r, failed, resp->retry_after);
			continue;
		}
		q->retryable_failure = false;
		if (resp->status == 403 && !q->no_auth) {
			rc = access_refused(r, q, resp, err);
			goto out;
		}
		rc = 0;
		goto out;
	}

	/* out of tries */
	{
		struct plait_buf b = PLAIT_BUF_INIT;
		const char *url = full ? full : probe_url ? probe_url : q->url;
		if (!reached) {
			plait_http_describe_failure(resp, &b);
			_cleanup_free_ char *host = url_authority(url);
			if (q->no_auth)
				rc = plait_error_set(err, PLAIT_E_NETWORK, "cannot reach token server %s: %s",
						     host ? host : url, b.buf);
			else
				rc = plait_error_set(err, PLAIT_E_NETWORK,
						     "cannot reach registry %s: %s; is the registry running "
						     "and the address right?",
						     r->host, b.buf);
		} else {
			describe(&b, q->method, url, resp);
			if (max > 1)
				plait_buf_addf(&b, " after %d tries", max);
			rc = plait_error_set(err, PLAIT_E_RETRYABLE, "%s", b.buf);
		}
		plait_buf_release(&b);
	}
out:
	if (as.header)
		explicit_bzero(as.header, strlen(as.header));
	free(as.header);
	return rc;
}

/* ------------------------------------------------------------------ manifests */

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

int plait_registry_get_manifest(struct plait_registry *r, const char *repo, const char *ref,
				struct plait_buf *body, char **media_type,
				char digest[PLAIT_DIGEST_MAX], struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT, accept = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	_cleanup_free_ char *name = NULL, *mt = NULL;
	int rc = manifest_path(repo, ref, &path, err);
	if (rc < 0)
		goto out;
	name = ref_str(r, repo, ref);
	plait_buf_addf(&accept, "Accept: %s", plait_media_type_accept_manifests());
	struct rq q = { .method = "GET", .url = path.buf, .repo = repo, .access = ACCESS_PULL,
			.hdrs = { accept.buf }, .out = body, .out_max = PLAIT_MANIFEST_MAX };
	rc = request(r, &q, &resp, err);
	if (rc == -PLAIT_E_INVALID && resp.too_large) {
		plait_buf_reset(body);
		rc = plait_error_set(err, PLAIT_E_INVALID, "manifest '%s' is larger than %u MiB",
				     name, PLAIT_MANIFEST_MAX / (1024 * 1024));
		goto out;
	}
	if (rc < 0)
		goto out;
	if (resp.status == 404) {
		rc = plait_error_set(err, PLAIT_E_NOT_FOUND, "manifest '%s' not found", name);
		goto out;
	}
	if (resp.status != 200) {
		rc = unexpected(err, "GET", path.buf, &resp);
		plait_error_wrap(err, "get manifest '%s'", name);
		goto out;
	}

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
	plait_buf_release(&accept);
	return rc;
}

int plait_registry_head_manifest(struct plait_registry *r, const char *repo, const char *ref,
				 char **media_type, char digest[PLAIT_DIGEST_MAX], int64_t *size,
				 struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT, accept = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	_cleanup_free_ char *name = NULL;
	int rc = manifest_path(repo, ref, &path, err);
	if (rc < 0)
		goto out;
	name = ref_str(r, repo, ref);
	plait_buf_addf(&accept, "Accept: %s", plait_media_type_accept_manifests());
	struct rq q = { .method = "HEAD", .url = path.buf, .repo = repo, .access = ACCESS_PULL,
			.hdrs = { accept.buf } };
	rc = request(r, &q, &resp, err);
	if (rc < 0)
		goto out;
	if (resp.status == 404) {
		rc = plait_error_set(err, PLAIT_E_NOT_FOUND, "manifest '%s' not found", name);
		goto out;
	}
	if (resp.status != 200) {
		rc = unexpected(err, "HEAD", path.buf, &resp);
		plait_error_wrap(err, "get manifest '%s'", name);
		goto out;
	}
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
	plait_buf_release(&accept);
	return rc;
}

int plait_registry_put_manifest(struct plait_registry *r, const char *repo, const char *ref,
				const char *media_type, const void *data, size_t len,
				struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT, ct = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	_cleanup_free_ char *name = NULL;
	int rc = manifest_path(repo, ref, &path, err);
	if (rc < 0)
		goto out;
	name = ref_str(r, repo, ref);
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
	struct rq q = { .method = "PUT", .url = path.buf, .repo = repo, .access = ACCESS_PUSH,
			.hdrs = { ct.buf }, .body = data, .body_len = (int64_t)len };
	rc = request(r, &q, &resp, err);
	if (rc < 0) {
		plait_error_wrap(err, "push manifest '%s'", name);
		goto out;
	}
	if (resp.status != 201 && resp.status != 200 && resp.status != 202) {
		rc = unexpected(err, "PUT", path.buf, &resp);
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
	rc = 0;
out:
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	plait_buf_release(&ct);
	return rc;
}

/* ------------------------------------------------------------------ blobs */

static int blob_path(const char *repo, const char *digest, struct plait_buf *out,
		     struct plait_error **err)
{
	if (!repo || !*repo)
		return plait_error_set(err, PLAIT_E_USAGE, "missing repository");
	int rc = plait_digest_validate(digest, err);
	if (rc < 0)
		return rc;
	plait_buf_addf(out, "/v2/%s/blobs/%s", repo, digest);
	return 0;
}

int plait_registry_has_blob(struct plait_registry *r, const char *repo, const char *digest,
			    int64_t *size, struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int rc = blob_path(repo, digest, &path, err);
	if (rc < 0)
		goto out;
	struct rq q = { .method = "HEAD", .url = path.buf, .repo = repo, .access = ACCESS_PULL,
			.follow = true };
	rc = request(r, &q, &resp, err);
	if (rc < 0)
		goto out;
	if (resp.status == 200) {
		if (size)
			*size = resp.content_length;
		rc = 1;
	} else if (resp.status == 404) {
		rc = 0;
	} else {
		rc = unexpected(err, "HEAD", path.buf, &resp);
		plait_error_wrap(err, "check blob %s in %s/%s", digest, r->host, repo);
	}
out:
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	return rc;
}

struct blob_sink {
	struct plait_blob_writer *w;
	int64_t size;
	int64_t start; /* offset asked for in this try */
	bool first;    /* no byte of this try seen yet */
	char range[64];
	const char *digest;
	const char *host;
	struct plait_error *err;
};

static const char *blob_range_header(void *ud)
{
	struct blob_sink *s = ud;
	s->start = plait_blob_writer_offset(s->w);
	s->first = true;
	if (s->start <= 0)
		return NULL;
	snprintf(s->range, sizeof(s->range), "Range: bytes=%lld-", (long long)s->start);
	return s->range;
}

static int blob_sink_write(void *ud, const struct plait_http_resp *resp, const void *data,
			   size_t len)
{
	struct blob_sink *s = ud;
	if (s->first) {
		s->first = false;
		if (s->start > 0 && resp->status == 200) {
			/* The server ignored Range: take the whole body again. */
			if (plait_blob_writer_restart(s->w, &s->err) < 0)
				return -1;
		} else if (s->start > 0 && resp->status == 206) {
			long long from = -1;
			const char *cr = resp->content_range;
			if (!cr || sscanf(cr, "bytes %lld-", &from) != 1 || from != s->start) {
				plait_error_set(&s->err, PLAIT_E_INVALID,
						"registry %s answered range '%s' for blob %s when asked "
						"from byte %lld",
						s->host, cr ? cr : "", s->digest, (long long)s->start);
				return -1;
			}
		}
	}
	int64_t off = plait_blob_writer_offset(s->w);
	if (s->size >= 0 && off + (int64_t)len > s->size) {
		plait_error_set(&s->err, PLAIT_E_INVALID,
				"registry %s sent more than %lld bytes for blob %s", s->host,
				(long long)s->size, s->digest);
		return -1;
	}
	return plait_blob_writer_write(s->w, data, len, &s->err) < 0 ? -1 : 0;
}

int plait_registry_get_blob(struct plait_registry *r, const char *repo, const char *digest,
			    int64_t size, struct plait_blob_writer *w, struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	struct blob_sink s = { .w = w, .size = size, .digest = digest, .host = r->host };
	int rc = blob_path(repo, digest, &path, err);
	if (rc < 0)
		goto out;
	for (int round = 0;; round++) {
		int64_t off = plait_blob_writer_offset(w);
		if (size >= 0 && off > size) {
			rc = plait_blob_writer_restart(w, err);
			if (rc < 0)
				goto out;
			off = 0;
		}
		if (size >= 0 && off == size && off > 0) {
			rc = 0; /* already complete; commit verifies it */
			goto out;
		}
		struct rq q = { .method = "GET", .url = path.buf, .repo = repo, .access = ACCESS_PULL,
				.follow = true, .sink = blob_sink_write, .sink_ud = &s,
				.dyn_header = blob_range_header, .dyn_ud = &s };
		plait_error_clear(&s.err);
		rc = request(r, &q, &resp, err);
		if (rc < 0 && resp.aborted && s.err) {
			/* the writer's own error says more than "transfer stopped" */
			rc = plait_error_set(err, s.err->code, "download blob %s from %s/%s: %s", digest,
					     r->host, repo, s.err->msg);
			goto out;
		}
		if (rc < 0) {
			plait_error_wrap(err, "download blob %s from %s/%s", digest, r->host, repo);
			goto out;
		}
		if (resp.status == 416 && off > 0 && round == 0) {
			/* our partial file does not fit what the registry has: start over */
			rc = plait_blob_writer_restart(w, err);
			if (rc < 0)
				goto out;
			continue;
		}
		if (resp.status == 404) {
			rc = plait_error_set(err, PLAIT_E_NOT_FOUND, "blob %s not found in %s/%s", digest,
					     r->host, repo);
			goto out;
		}
		if (resp.status != 200 && resp.status != 206) {
			rc = unexpected(err, "GET", path.buf, &resp);
			plait_error_wrap(err, "download blob %s from %s/%s", digest, r->host, repo);
			goto out;
		}
		int64_t got = plait_blob_writer_offset(w);
		if (size >= 0 && got != size) {
			rc = plait_error_set(err, PLAIT_E_INVALID,
					     "download blob %s from %s/%s: got %lld of %lld bytes", digest,
					     r->host, repo, (long long)got, (long long)size);
			goto out;
		}
		rc = 0;
		goto out;
	}
out:
	plait_error_free(s.err);
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	return rc;
}

/* Resolve a Location header against the URL of the request that returned
 * it (a path under the registry's base, or absolute). */
static char *upload_url(struct plait_registry *r, const char *request_url, const char *location)
{
	if (!location || !*location)
		return NULL;
	if (request_url[0] != '/')
		return plait_http_resolve_url(request_url, location);
	pthread_mutex_lock(&r->lock);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s%s", r->base ? r->base : "https://invalid", request_url);
	pthread_mutex_unlock(&r->lock);
	char *ret = plait_http_resolve_url(b.buf, location);
	plait_buf_release(&b);
	return ret;
}

/* Cancel an upload session; failures do not matter (sessions expire). */
static void cancel_upload(struct plait_registry *r, const char *repo, const char *from,
			  const char *url)
{
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	/* the mount's scope, so that its token is reused */
	struct rq q = { .method = "DELETE", .url = url, .repo = repo, .access = ACCESS_PUSH,
			.mount_from = from, .tries = 1 };
	request(r, &q, &resp, NULL);
	plait_http_resp_release(&resp);
}

int plait_registry_mount_blob(struct plait_registry *r, const char *repo, const char *digest,
			      const char *from_repo, struct plait_error **err)
{
	struct plait_buf path = PLAIT_BUF_INIT;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int rc = plait_digest_validate(digest, err);
	if (rc < 0)
		goto out;
	if (!repo || !*repo || !from_repo || !*from_repo) {
		rc = plait_error_set(err, PLAIT_E_USAGE, "mount blob %s: missing repository", digest);
		goto out;
	}
	plait_buf_addf(&path, "/v2/%s/blobs/uploads/?mount=", repo);
	plait_http_add_escaped(&path, digest);
	plait_buf_adds(&path, "&from=");
	plait_http_add_escaped(&path, from_repo);
	struct rq q = { .method = "POST", .url = path.buf, .repo = repo, .access = ACCESS_PUSH,
			.mount_from = from_repo };
	rc = request(r, &q, &resp, err);
	if (rc < 0) {
		plait_error_wrap(err, "mount blob %s from %s to %s/%s", digest, from_repo, r->host,
				 repo);
		goto out;
	}
	if (resp.status == 201) {
		rc = 1;
	} else if (resp.status == 202) {
		/* The registry opened an upload session instead: close it. */
		_cleanup_free_ char *url = upload_url(r, path.buf, resp.location);
		if (url)
			cancel_upload(r, repo, from_repo, url);
		rc = 0;
	} else {
		rc = unexpected(err, "POST", path.buf, &resp);
		plait_error_wrap(err, "mount blob %s from %s to %s/%s", digest, from_repo, r->host,
				 repo);
	}
out:
	plait_http_resp_release(&resp);
	plait_buf_release(&path);
	return rc;
}

/* "0-N" -> N+1; -1 when absent or malformed. distribution reports an empty
 * upload as "0-0" too, so "0-0" reads as 0 (a wrong guess costs a restart). */
static int64_t range_next(const char *range)
{
	if (!range)
		return -1;
	if (startswith(range, "bytes="))
		range += strlen("bytes=");
	long long a, b;
	if (sscanf(range, "%lld-%lld", &a, &b) != 2 || a != 0 || b < 0)
		return -1;
	return b == 0 ? 0 : b + 1;
}

static char *with_query(const char *url, const char *key, const char *value)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s%c%s=", url, strchr(url, '?') ? '&' : '?', key);
	plait_http_add_escaped(&b, value);
	return plait_buf_detach(&b, NULL);
}

enum { UP_DONE = 0, UP_RESTART = 1 };

/* The registry may have the blob after all (a final PUT whose answer was lost). */
static bool blob_arrived(struct plait_registry *r, const char *repo, const char *digest,
			 int64_t size)
{
	int64_t have = -1;
	int rc = plait_registry_has_blob(r, repo, digest, &have, NULL);
	return rc == 1 && (have < 0 || have == size);
}

static int upload_status(struct plait_registry *r, const char *repo, char **loc, int64_t *next,
			 struct plait_http_resp *resp, struct plait_error **e);

/* The final PUT ?digest= (with the whole body for a monolithic upload).
 * UP_DONE, UP_RESTART (e says why), or <0. */
static int finish_upload(struct plait_registry *r, const char *repo, const char *digest,
			 int64_t size, const struct plait_blob_source *src, bool with_body,
			 const char *loc, bool resumed, struct plait_http_resp *resp,
			 struct plait_error **e)
{
	_cleanup_free_ char *session = xstrdup(loc);
	for (int tries = 1;; tries++) {
		_cleanup_free_ char *url = with_query(session, "digest", digest);
		/* Without a body the PUT only closes the session: request() retries
		 * it in place. With a body a blind retry could append to the session. */
		struct rq q = { .method = "PUT", .url = url, .repo = repo, .access = ACCESS_PUSH,
				.hdrs = { "Content-Type: application/octet-stream" },
				.tries = with_body ? 1 : 0 };
		if (with_body) {
			q.body_from_fd = true;
			q.src = src;
			q.body_len = size;
		}
		int rc = request(r, &q, resp, e);
		if (rc < 0) {
			if (!q.retryable_failure)
				return rc;
			/* No answer: the blob may have arrived and only the answer was lost. */
			if (resp->status == 0)
				return blob_arrived(r, repo, digest, size) ? UP_DONE : UP_RESTART;
			/* The registry answered 5xx/429: when the session still holds
			 * nothing, the same PUT can go again; otherwise start afresh. */
			int64_t held = -1;
			_cleanup_error_ struct plait_error *se = NULL;
			_cleanup_free_ char *retry_after = xstrdup_or_null(resp->retry_after);
			if (tries >= r->max_tries ||
			    upload_status(r, repo, &session, &held, resp, &se) != 0 || held != 0)
				return UP_RESTART;
			backoff(r, tries, retry_after);
			resumed = true; /* "0-0" may also mean one byte: a 400 then restarts */
			continue;
		}
		if (resp->status == 201 || resp->status == 204) {
			if (resp->docker_digest && plait_digest_validate(resp->docker_digest, NULL) == 0 &&
			    !streq(resp->docker_digest, digest))
				return plait_error_set(e, PLAIT_E_INVALID, "registry stored it as %s",
						       resp->docker_digest);
			return UP_DONE;
		}
		if (resp->status == 404) {
			/* the session is gone: maybe because it completed */
			if (blob_arrived(r, repo, digest, size))
				return UP_DONE;
			unexpected(e, "PUT", url, resp);
			return UP_RESTART;
		}
		if (resp->status == 400 && resumed) {
			/* a resumed upload that ended up wrong: a clean start fixes it */
			unexpected(e, "PUT", url, resp);
			return UP_RESTART;
		}
		return unexpected(e, "PUT", url, resp);
	}
}

/* Ask the registry how much of the upload it holds: 0 with *next (and maybe
 * a new *loc), UP_RESTART when the session is gone, or <0. */
static int upload_status(struct plait_registry *r, const char *repo, char **loc, int64_t *next,
			 struct plait_http_resp *resp, struct plait_error **e)
{
	struct rq q = { .method = "GET", .url = *loc, .repo = repo, .access = ACCESS_PUSH };
	int rc = request(r, &q, resp, e);
	if (rc < 0)
		return rc;
	if (resp->status == 404 || resp->status == 400) {
		unexpected(e, "GET", *loc, resp);
		return UP_RESTART;
	}
	if (resp->status != 204 && resp->status != 200)
		return unexpected(e, "GET", *loc, resp);
	int64_t n = range_next(resp->range);
	*next = n < 0 ? 0 : n;
	char *nl = upload_url(r, *loc, resp->location);
	if (nl) {
		free(*loc);
		*loc = nl;
	}
	return 0;
}

/* One upload session: POST, then PUT with the body, or PATCHes and a PUT.
 * UP_DONE, UP_RESTART (e says why), or <0 (*failed >= max_tries when out
 * of tries). */
static int upload_once(struct plait_registry *r, const char *repo, const char *digest,
		       int64_t size, const struct plait_blob_source *src, int *failed, struct plait_http_resp *resp,
		       struct plait_error **e)
{
	struct plait_buf path = PLAIT_BUF_INIT;
	plait_buf_addf(&path, "/v2/%s/blobs/uploads/", repo);
	struct rq q = { .method = "POST", .url = path.buf, .repo = repo, .access = ACCESS_PUSH };
	int rc = request(r, &q, resp, e);
	if (rc == 0 && resp->status != 202 && resp->status != 201)
		rc = unexpected(e, "POST", path.buf, resp);
	_cleanup_free_ char *loc = rc == 0 ? upload_url(r, path.buf, resp->location) : NULL;
	plait_buf_release(&path);
	if (rc < 0)
		return rc;
	if (resp->status == 201) /* the registry took it without a body: it has it */
		return UP_DONE;
	if (!loc)
		return plait_error_set(e, PLAIT_E_GENERIC,
				       "registry started an upload without a valid Location");

	if (size <= r->monolithic_max)
		return finish_upload(r, repo, digest, size, src, true, loc, false, resp, e);

	int64_t off = 0;
	bool resumed = false;
	while (off < size) {
		int64_t n = size - off < r->chunk_size ? size - off : r->chunk_size;
		char crange[96];
		snprintf(crange, sizeof(crange), "Content-Range: %lld-%lld", (long long)off,
			 (long long)(off + n - 1));
		struct rq pq = { .method = "PATCH", .url = loc, .repo = repo, .access = ACCESS_PUSH,
				 .hdrs = { "Content-Type: application/octet-stream", crange },
				 .body_from_fd = true, .src = src, .off = off, .body_len = n,
				 .tries = 1 };
		rc = request(r, &pq, resp, e);
		if (rc == 0 && resp->status == 202) {
			int64_t next = range_next(resp->range);
			off = next > off ? next : off + n;
			char *nl = upload_url(r, loc, resp->location);
			if (nl) {
				free(loc);
				loc = nl;
			}
			*failed = 0;
			continue;
		}
		if (rc == 0 && resp->status == 404) {
			unexpected(e, "PATCH", loc, resp);
			return UP_RESTART;
		}
		if (rc < 0 && !pq.retryable_failure)
			return rc;
		if (rc == 0 && resp->status != 416)
			return unexpected(e, "PATCH", loc, resp);
		/* dropped connection, 5xx, or a range the registry disagrees with:
		 * ask what it holds and go on from there */
		if (rc == 0)
			rc = unexpected(e, "PATCH", loc, resp);
		if (++*failed >= r->max_tries)
			return rc;
		backoff(r, *failed, resp->retry_after);
		int64_t next = 0;
		rc = upload_status(r, repo, &loc, &next, resp, e);
		if (rc != 0)
			return rc;
		off = next;
		resumed = true;
	}
	return finish_upload(r, repo, digest, size, src, false, loc, resumed, resp, e);
}

int plait_registry_put_blob(struct plait_registry *r, const char *repo, const char *digest,
			    int64_t size, const struct plait_blob_source *src, struct plait_error **err)
{
	int rc = plait_digest_validate(digest, err);
	if (rc < 0)
		return rc;
	if (!repo || !*repo || size < 0)
		return plait_error_set(err, PLAIT_E_USAGE, "upload blob %s: missing repository or size",
				       digest);
	int failed = 0, restarts = 0;
	for (;;) {
		_cleanup_error_ struct plait_error *e = NULL;
		struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
		rc = upload_once(r, repo, digest, size, src, &failed, &resp, &e);
		_cleanup_free_ char *retry_after = xstrdup_or_null(resp.retry_after);
		plait_http_resp_release(&resp);
		if (rc == UP_DONE)
			return 0;
		/* failed resets whenever a chunk gets through, so whole new sessions
		 * are bounded on their own: a fault that recurs in every session
		 * must end in an error, not a loop. */
		if (rc == UP_RESTART && ++restarts >= r->max_tries)
			failed = r->max_tries;
		if (rc == UP_RESTART && ++failed < r->max_tries) {
			backoff(r, failed, retry_after);
			continue;
		}
		const char *why = e ? e->msg : "failed";
		int code = e ? e->code : PLAIT_E_GENERIC;
		if (rc == UP_RESTART && code != PLAIT_E_NETWORK)
			code = PLAIT_E_RETRYABLE;
		if (failed >= r->max_tries)
			return plait_error_set(err, code, "upload blob %s to %s/%s: %s after %d tries",
					       digest, r->host, repo, why, failed);
		return plait_error_set(err, code, "upload blob %s to %s/%s: %s", digest, r->host,
				       repo, why);
	}
}

/* ------------------------------------------------------------------ login */

int plait_registry_check_login(struct plait_registry *r, const struct plait_credentials *c,
			       struct plait_error **err)
{
	static const struct plait_credentials none;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	struct rq q = { .method = "GET", .url = "/v2/", .login = c ? c : &none };
	int rc = request(r, &q, &resp, err);
	if (rc < 0)
		goto out;
	if (resp.status == 200) {
		rc = 0;
	} else if (resp.status == 401 || resp.status == 403) {
		rc = auth_required(r, &q, true, &resp, err);
	} else {
		rc = unexpected(err, "GET", "/v2/", &resp);
		plait_error_wrap(err, "login to %s", r->host);
	}
out:
	plait_http_resp_release(&resp);
	return rc;
}
