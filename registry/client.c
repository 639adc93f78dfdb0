/* registry/client.c - the registry client's lifecycle, its scheme probe and
 * the one request+retry loop every request goes through (see client.h).
 *
 * Layers: registry_send() retries one logical request (backoff,
 * Retry-After); attempt() sends it once more when the auth hook answered a
 * 401 (token.c); http.c performs single HTTP exchanges.
 *
 * Choices worth knowing:
 *  - loopback and insecure hosts get their scheme from one probe of /v2/
 *    per process: https first (loopback: plain http first), plain http when
 *    https fails at the transport level and http answers with anything but
 *    400 (a TLS server answers plain HTTP with 400, which must not be taken
 *    for a plain registry);
 *  - a download that made progress before its connection dropped resumes, and
 *    that try is not held against it. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "plait-config.h"
#include "core/ref.h"
#include "core/strv.h"
#include "registries_conf.h"

#include "core/banned.h"

/* ------------------------------------------------------------------ small helpers */

bool registry_host_listed(char *const *list, const char *host)
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
void registry_add_error_body(struct plait_buf *b, const struct plait_buf *body)
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

void registry_add_status(struct plait_buf *b, const struct plait_http_resp *resp)
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
	registry_add_status(b, resp);
	registry_add_error_body(b, &resp->err_body);
}

static bool status_retryable(long s)
{
	return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

int registry_unexpected(struct plait_error **err, const char *method, const char *url,
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

const char *registry_access_name(enum access a)
{
	return a == ACCESS_PUSH ? "push" : "pull";
}

/* "host/repo:tag" or "host/repo@sha256:…" */
char *registry_ref_str(const struct plait_registry *r, const char *repo, const char *ref)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/%s%s%s", r->host, repo, strchr(ref, ':') ? "@" : ":", ref);
	return plait_buf_detach(&b, NULL);
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
void registry_backoff(const struct plait_registry *r, int failed, const char *retry_after)
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

/* "host[:port]" of an absolute URL, or NULL. */
char *registry_url_authority(const char *url)
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
	r->creds_host = xstrdup(registry_creds_host(host));
	r->config_dir = xstrdup_or_null(opts->docker_config_dir);
	for (size_t i = 0; i < opts->n_logins && !r->creds_loaded; i++)
		if (opts->logins[i].host && streq(opts->logins[i].host, host)) {
			const struct plait_credentials *c = &opts->logins[i].creds;
			r->creds = (struct plait_credentials){ xstrdup_or_null(c->username), xstrdup_or_null(c->password),
							       xstrdup_or_null(c->identity_token) };
			r->have_creds = registry_creds_usable(&r->creds);
			r->creds_loaded = true; /* given: the docker config is not asked */
		}
	r->certs_dirs = plait_strv_copy(opts->certs_dirs);
	r->insecure_hosts = plait_strv_copy(opts->insecure_hosts);
	r->insecure = registry_host_listed(r->insecure_hosts, host) ||
		      plait_registries_conf_host_insecure(opts->registries_conf, host);
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
	registry_tokens_release(r);
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

/* What a probe found, for the rest of the process: every endpoint opens its
 * own client, and a build opens several for one registry (planning, each
 * stage's base, the push), each of which would probe again. */
static pthread_mutex_t schemes_lock = PTHREAD_MUTEX_INITIALIZER;
static char **scheme_hosts;  /* "https://host" or "http://host" */

static char *known_base(const char *host)
{
	char *found = NULL;
	pthread_mutex_lock(&schemes_lock);
	for (char **h = scheme_hosts; h && *h && !found; h++) {
		const char *rest = strstr(*h, "://");
		if (rest && streq(rest + 3, host))
			found = xstrdup(*h);
	}
	pthread_mutex_unlock(&schemes_lock);
	return found;
}

static void remember_base(const char *base)
{
	pthread_mutex_lock(&schemes_lock);
	plait_strv_push(&scheme_hosts, base);
	pthread_mutex_unlock(&schemes_lock);
}

/* The base URL for this registry; probes the scheme for loopback and
 * insecure hosts (once per host and process). 0, or -1 with resp describing
 * the transport failure. */
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
	char *known = known_base(r->host);
	if (known) {
		pthread_mutex_lock(&r->lock);
		r->base = known;
		*base = r->base;
		pthread_mutex_unlock(&r->lock);
		pthread_mutex_unlock(&r->probe_lock);
		return 0;
	}
	const char *scheme = "https";
	int rc;
	/* A loopback registry is most often plain (a CI job's, a test's): ask
	 * that first, which a TLS server answers at once with 400. Anything
	 * else tries https first, as docker does. */
	struct plait_http_resp plain = PLAIT_HTTP_RESP_INIT;
	if (r->loopback && probe(r, "http", &plain) == 0 && plain.status != 400) {
		scheme = "http";
		rc = 0;
	} else {
		rc = probe(r, "https", resp);
		if (rc < 0 && !r->loopback) {
			plait_http_resp_release(&plain);
			if (probe(r, "http", &plain) == 0 && plain.status != 400) {
				scheme = "http";
				rc = 0;
			}
		}
	}
	plait_http_resp_release(&plain);
	if (rc == 0) {
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "%s://%s", scheme, r->host);
		pthread_mutex_lock(&r->lock);
		r->base = plait_buf_detach(&b, NULL);
		*base = r->base;
		pthread_mutex_unlock(&r->lock);
		remember_base(r->base);
	}
	pthread_mutex_unlock(&r->probe_lock);
	return rc;
}

/* ------------------------------------------------------------------ requests */

/* One try, answering a 401 challenge once. 0: a response (any status);
 * 1: transport failure (resp says which); <0: error set. */
static int attempt(struct plait_registry *r, struct rq *q, const char *url,
		   const struct auth_hook *hook, struct auth_state *as, struct plait_http_resp *resp,
		   struct plait_error **err)
{
	for (;;) {
		_cleanup_free_ char *auth = NULL;
		int rc = hook ? hook->header(r, q, as, &auth, err) : 0;
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
		if (resp->status != 401 || !hook)
			return 0;
		rc = hook->challenge(r, q, as, resp, err);
		if (rc < 0)
			return rc;
	}
}

/* Send q with retries (see client.h). */
int registry_send(struct plait_registry *r, struct rq *q, const struct auth_hook *auth,
		  struct plait_http_resp *resp, struct plait_error **err)
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
		step = attempt(r, q, url, auth, &as, resp, err);
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
				rc = plait_error_set(err, PLAIT_E_IO, "%s %s: %s", q->method, url,
						     resp->errmsg[0] ? resp->errmsg : "transfer stopped");
				goto out;
			}
			if (resp->curl_code != CURLE_COULDNT_CONNECT)
				reached = true;
			if (!curl_retryable(resp->curl_code)) {
				struct plait_buf b = PLAIT_BUF_INIT;
				plait_http_describe_failure(resp, &b);
				_cleanup_free_ char *host = registry_url_authority(url);
				if (resp->curl_code == CURLE_COULDNT_RESOLVE_HOST)
					rc = plait_error_set(err, PLAIT_E_NETWORK,
							     "cannot reach %s %s: %s; is the address right?",
							     !auth ? "token server" : "registry",
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
			registry_backoff(r, failed, NULL);
			continue;
		}
		reached = true;
		if (status_retryable(resp->status)) {
			failed++;
			q->retryable_failure = true;
			if (failed >= max)
				break;
			registry_backoff(r, failed, resp->retry_after);
			continue;
		}
		q->retryable_failure = false;
		if (resp->status == 403 && auth) {
			rc = auth->refused(r, q, resp, err);
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
			_cleanup_free_ char *host = registry_url_authority(url);
			if (!auth)
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

int registry_request(struct plait_registry *r, struct rq *q, struct plait_http_resp *resp,
		     struct plait_error **err)
{
	return registry_send(r, q, &registry_auth, resp, err);
}

/* ------------------------------------------------------------------ login */

int plait_registry_check_login(struct plait_registry *r, const struct plait_credentials *c,
			       struct plait_error **err)
{
	static const struct plait_credentials none;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	struct rq q = { .method = "GET", .url = "/v2/", .login = c ? c : &none };
	int rc = registry_request(r, &q, &resp, err);
	if (rc < 0)
		goto out;
	if (resp.status == 200) {
		rc = 0;
	} else if (resp.status == 401 || resp.status == 403) {
		rc = registry_auth_required(r, &q, true, &resp, err);
	} else {
		rc = registry_unexpected(err, "GET", "/v2/", &resp);
		plait_error_wrap(err, "login to %s", r->host);
	}
out:
	plait_http_resp_release(&resp);
	return rc;
}
