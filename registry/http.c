#include "http.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "core/banned.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all)

#define POOL_MAX 16
#define ERR_BODY_MAX (64 * 1024)
#define CA_FILE_MAX (4 * 1024 * 1024)
#define DEFAULT_CERTS_DIR_1 "/etc/docker/certs.d"
#define DEFAULT_CERTS_DIR_2 "/etc/containers/certs.d"

struct plait_http {
	char *user_agent;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t pool_lock;
	CURL *idle[POOL_MAX];
	size_t n_idle;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *ud)
{
	(void)c;
	(void)access;
	struct plait_http *h = ud;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&h->share_locks[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *ud)
{
	(void)c;
	struct plait_http *h = ud;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&h->share_locks[data]);
}

int plait_http_new(const char *user_agent, struct plait_http **out, struct plait_error **err)
{
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return plait_error_set(err, PLAIT_E_GENERIC, "cannot initialise libcurl: %s",
				       curl_easy_strerror(global_rc));

	struct plait_http *h = xcalloc(1, sizeof(*h));
	h->user_agent = xstrdup(user_agent);
	for (size_t i = 0; i < ARRAY_SIZE(h->share_locks); i++)
		pthread_mutex_init(&h->share_locks[i], NULL);
	pthread_mutex_init(&h->pool_lock, NULL);
	h->share = curl_share_init();
	if (!h->share) {
		plait_http_free(h);
		return plait_error_set(err, PLAIT_E_GENERIC, "cannot create a libcurl share handle");
	}
	curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	*out = h;
	return 0;
}

void plait_http_free(struct plait_http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_idle; i++)
		curl_easy_cleanup(h->idle[i]);
	if (h->share)
		curl_share_cleanup(h->share);
	for (size_t i = 0; i < ARRAY_SIZE(h->share_locks); i++)
		pthread_mutex_destroy(&h->share_locks[i]);
	pthread_mutex_destroy(&h->pool_lock);
	free(h->user_agent);
	free(h);
}

static CURL *pool_get(struct plait_http *h)
{
	CURL *c = NULL;
	pthread_mutex_lock(&h->pool_lock);
	if (h->n_idle)
		c = h->idle[--h->n_idle];
	pthread_mutex_unlock(&h->pool_lock);
	if (!c)
		c = curl_easy_init();
	if (!c)
		plait_die_oom();
	return c;
}

static void pool_put(struct plait_http *h, CURL *c)
{
	/* Reset drops every option (the share included) so the next request
	 * starts clean; live connections stay in the share's cache. */
	curl_easy_reset(c);
	pthread_mutex_lock(&h->pool_lock);
	if (h->n_idle < POOL_MAX) {
		h->idle[h->n_idle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->pool_lock);
	if (c)
		curl_easy_cleanup(c);
}

/* ------------------------------------------------------------------ TLS */

void plait_http_tls_release(struct plait_http_tls *t)
{
	if (!t)
		return;
	free(t->ca_pem);
	free(t->client_cert);
	free(t->client_key);
	*t = (struct plait_http_tls){ 0 };
}

static int tls_from_dir(const char *dir, DIR *d, struct plait_http_tls *out, struct plait_error **err)
{
	size_t n;
	_cleanup_strv_free_ char **names = plait_dir_names(d, true, &n);

	struct plait_buf ca = PLAIT_BUF_INIT;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *path = plait_path_concat(dir, names[i]);
		if (endswith(names[i], ".crt")) {
			struct plait_buf one = PLAIT_BUF_INIT;
			int r = plait_buf_read_file(&one, path, CA_FILE_MAX);
			if (r < 0) {
				plait_buf_release(&one);
				plait_buf_release(&ca);
				return plait_error_set_errno(err, PLAIT_E_IO, r,
							     "cannot read CA certificate '%s'", path);
			}
			plait_buf_add(&ca, one.buf, one.len);
			plait_buf_addch(&ca, '\n');
			plait_buf_release(&one);
		} else if (endswith(names[i], ".cert") && !out->client_cert) {
			struct plait_buf k = PLAIT_BUF_INIT;
			plait_buf_add(&k, path, strlen(path) - strlen(".cert"));
			plait_buf_adds(&k, ".key");
			if (access(k.buf, R_OK) < 0) {
				int r = plait_error_set(err, PLAIT_E_USAGE,
							"missing key '%s' for client certificate '%s': "
							"CA certificates must end in .crt",
							k.buf, path);
				plait_buf_release(&k);
				plait_buf_release(&ca);
				return r;
			}
			out->client_cert = TAKE_PTR(path);
			out->client_key = plait_buf_detach(&k, NULL);
		}
	}
	if (ca.len)
		out->ca_pem = plait_buf_detach(&ca, &out->ca_len);
	plait_buf_release(&ca);
	return 0;
}

int plait_http_tls_for_host(const char *host, const char *const *certs_dirs, bool verify,
			    struct plait_http_tls *out, struct plait_error **err)
{
	static const char *const defaults[] = { DEFAULT_CERTS_DIR_1, DEFAULT_CERTS_DIR_2, NULL };
	*out = (struct plait_http_tls){ .verify = verify };
	if (!certs_dirs)
		certs_dirs = defaults;
	/* The first certs dir that knows the host wins (as in containers/image);
	 * its CAs replace the default bundle for that host. */
	for (size_t i = 0; certs_dirs[i]; i++) {
		_cleanup_free_ char *dir = plait_path_concat(certs_dirs[i], host);
		DIR *d = opendir(dir);
		if (!d) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			return plait_error_set_errno(err, PLAIT_E_IO, errno,
						     "cannot read certificates folder '%s'", dir);
		}
		int r = tls_from_dir(dir, d, out, err);
		closedir(d);
		if (r < 0) {
			plait_http_tls_release(out);
			out->verify = verify;
		}
		return r;
	}
	return 0;
}

/* ------------------------------------------------------------------ transfer */

struct xfer {
	const struct plait_http_req *req;
	struct plait_http_resp *resp;
	int64_t pos; /* request body bytes handed to curl */
};

static void resp_clear_headers(struct plait_http_resp *r)
{
	char **fields[] = { &r->reason, &r->location, &r->range, &r->content_range,
			    &r->docker_digest, &r->content_type, &r->www_authenticate,
			    &r->retry_after, &r->upload_uuid, &r->last_modified, &r->oci_subject };
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		free(*fields[i]);
		*fields[i] = NULL;
	}
	r->content_length = -1;
}

void plait_http_resp_release(struct plait_http_resp *r)
{
	if (!r)
		return;
	resp_clear_headers(r);
	plait_buf_release(&r->err_body);
	*r = (struct plait_http_resp)PLAIT_HTTP_RESP_INIT;
}

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	const struct plait_http_req *q = x->req;
	int64_t left = q->body_len - x->pos;
	size_t n = size * nitems;
	if (left <= 0)
		return 0;
	if ((int64_t)n > left)
		n = (size_t)left;
	if (!q->body_from_fd) {
		memcpy(buf, (const char *)q->body + x->pos, n);
		x->pos += (int64_t)n;
		return n;
	}
	ssize_t got;
	/* A growing source may be rewritten from 0 (a download that restarted):
	 * a short read then means "not there yet", so wait and read again. */
	for (int tries = 0;; tries++) {
		if (q->body_wait &&
		    q->body_wait(q->body_wait_ud, q->body_off + x->pos + (int64_t)n) < 0) {
			snprintf(x->resp->errmsg, sizeof(x->resp->errmsg),
				 "the upload source failed before it was complete");
			x->resp->aborted = true;
			return CURL_READFUNC_ABORT;
		}
		do
			got = pread(q->body_fd, buf, n, (off_t)(q->body_off + x->pos));
		while (got < 0 && errno == EINTR);
		if (got != 0 || !q->body_wait || tries >= 100)
			break;
	}
	if (got <= 0) {
		/* The file is shorter than announced or unreadable: stop rather
		 * than send a body that does not match its Content-Length. */
		snprintf(x->resp->errmsg, sizeof(x->resp->errmsg), "cannot read the upload source: %s",
			 got < 0 ? strerror(errno) : "file is shorter than its size");
		x->resp->aborted = true; /* a local failure, not the network's */
		return CURL_READFUNC_ABORT;
	}
	x->pos += got;
	return (size_t)got;
}

static int progress_cb(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct xfer *x = ud;
	if (*x->req->cancel) {
		x->resp->aborted = true;
		return 1;
	}
	return 0;
}

static int seek_cb(void *ud, curl_off_t offset, int origin)
{
	struct xfer *x = ud;
	if (origin != SEEK_SET || offset < 0 || offset > x->req->body_len)
		return CURL_SEEKFUNC_FAIL;
	x->pos = offset;
	return CURL_SEEKFUNC_OK;
}

static char *trimmed(const char *s, size_t len)
{
	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	return xstrndup(s, len);
}

static void set_field(char **field, const char *v, size_t len)
{
	free(*field);
	*field = trimmed(v, len);
}

void plait_http_parse_header_line(struct plait_http_resp *r, const char *line, size_t len)
{
	if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after a redirect or a 100 Continue): the
		 * headers captured so far belonged to the previous one. */
		resp_clear_headers(r);
		const char *p = memchr(line, ' ', len);
		if (p) {
			/* the line is not NUL-terminated: read the code from a copy */
			_cleanup_free_ char *code = trimmed(p + 1, len - (size_t)(p + 1 - line));
			r->status = strtol(code, NULL, 10);
			const char *q = memchr(p + 1, ' ', len - (size_t)(p + 1 - line));
			if (q)
				r->reason = trimmed(q + 1, len - (size_t)(q + 1 - line));
		}
		return;
	}
	const char *colon = memchr(line, ':', len);
	if (!colon)
		return;
	size_t nlen = (size_t)(colon - line);
	const char *v = colon + 1;
	size_t vlen = len - nlen - 1;
	static const struct {
		const char *name;
		size_t off;
	} fields[] = {
		{ "location", offsetof(struct plait_http_resp, location) },
		{ "range", offsetof(struct plait_http_resp, range) },
		{ "content-range", offsetof(struct plait_http_resp, content_range) },
		{ "docker-content-digest", offsetof(struct plait_http_resp, docker_digest) },
		{ "content-type", offsetof(struct plait_http_resp, content_type) },
		{ "retry-after", offsetof(struct plait_http_resp, retry_after) },
		{ "docker-upload-uuid", offsetof(struct plait_http_resp, upload_uuid) },
		{ "last-modified", offsetof(struct plait_http_resp, last_modified) },
		{ "oci-subject", offsetof(struct plait_http_resp, oci_subject) },
	};
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		if (strlen(fields[i].name) == nlen && strncasecmp(line, fields[i].name, nlen) == 0) {
			set_field((char **)((char *)r + fields[i].off), v, vlen);
			return;
		}
	}
	if (nlen == strlen("content-length") && strncasecmp(line, "content-length", nlen) == 0) {
		_cleanup_free_ char *s = trimmed(v, vlen);
		char *end;
		errno = 0;
		long long n = strtoll(s, &end, 10);
		if (!errno && end != s && !*end && n >= 0)
			r->content_length = n;
	} else if (nlen == strlen("www-authenticate") &&
		   strncasecmp(line, "www-authenticate", nlen) == 0) {
		/* Several challenges may come; Bearer is the one to answer. */
		_cleanup_free_ char *s = trimmed(v, vlen);
		if (!r->www_authenticate || strncasecmp(s, "bearer", 6) == 0) {
			free(r->www_authenticate);
			r->www_authenticate = TAKE_PTR(s);
		}
	}
}

static size_t header_cb(char *line, size_t size, size_t nitems, void *ud)
{
	struct xfer *x = ud;
	size_t len = size * nitems;
	plait_http_parse_header_line(x->resp, line, len);
	return len;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	struct plait_http_resp *r = x->resp;
	const struct plait_http_req *q = x->req;
	size_t n = size * nmemb;

	if (r->status < 200 || r->status > 299) {
		size_t room = ERR_BODY_MAX > r->err_body.len ? ERR_BODY_MAX - r->err_body.len : 0;
		plait_buf_add(&r->err_body, data, n < room ? n : room);
		return n;
	}
	if (q->out) {
		if (q->out->len + n > q->out_max) {
			r->too_large = true;
			return 0;
		}
		plait_buf_add(q->out, data, n);
	} else if (q->sink) {
		if (q->sink(q->sink_ud, r, data, n) < 0) {
			r->aborted = true;
			return 0;
		}
	}
	r->body_bytes += (int64_t)n;
	return n;
}

#define SETOPT(c, opt, val)                                                  \
	do {                                                                 \
		CURLcode _rc_ = curl_easy_setopt((c), (opt), (val));         \
		if (_rc_ != CURLE_OK) {                                      \
			resp->curl_code = _rc_;                              \
			snprintf(resp->errmsg, sizeof(resp->errmsg), "%s (%s)", \
				 curl_easy_strerror(_rc_), #opt);            \
			goto out;                                            \
		}                                                            \
	} while (0)

int plait_http_perform(struct plait_http *h, const struct plait_http_req *req,
		       struct plait_http_resp *resp)
{
	plait_http_resp_release(resp);
	struct xfer x = { .req = req, .resp = resp };
	_cleanup_(curl_slist_free_allp) struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	int ret = -1;
	CURL *c = pool_get(h);

	for (size_t i = 0; req->headers && req->headers[i]; i++) {
		struct curl_slist *n = curl_slist_append(hdrs, req->headers[i]);
		if (!n)
			plait_die_oom();
		hdrs = n;
	}
	/* No 100-continue round trip: auth is settled before bodies are sent. */
	struct curl_slist *n = curl_slist_append(hdrs, "Expect:");
	if (!n)
		plait_die_oom();
	hdrs = n;

	SETOPT(c, CURLOPT_SHARE, h->share);
	SETOPT(c, CURLOPT_URL, req->url);
	SETOPT(c, CURLOPT_NOSIGNAL, 1L);
	SETOPT(c, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(c, CURLOPT_USERAGENT, h->user_agent);
	SETOPT(c, CURLOPT_HTTPHEADER, hdrs);
	SETOPT(c, CURLOPT_ERRORBUFFER, errbuf);
	SETOPT(c, CURLOPT_CONNECTTIMEOUT, 30L);
	SETOPT(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	SETOPT(c, CURLOPT_LOW_SPEED_TIME, 60L);
	SETOPT(c, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(c, CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(c, CURLOPT_HEADERDATA, &x);
	SETOPT(c, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(c, CURLOPT_WRITEDATA, &x);
	if (req->cancel) {
		SETOPT(c, CURLOPT_NOPROGRESS, 0L);
		SETOPT(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
		SETOPT(c, CURLOPT_XFERINFODATA, &x);
	}
	if (req->follow_redirects) {
		SETOPT(c, CURLOPT_FOLLOWLOCATION, 1L);
		SETOPT(c, CURLOPT_MAXREDIRS, 10L);
		SETOPT(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
		/* Keep Authorization on the first host only (the default). */
		SETOPT(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
	}

	bool verify = req->tls ? req->tls->verify : true;
	SETOPT(c, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	SETOPT(c, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	if (req->tls && req->tls->ca_pem) {
		struct curl_blob blob = { .data = req->tls->ca_pem,
					  .len = req->tls->ca_len,
					  .flags = CURL_BLOB_NOCOPY };
		SETOPT(c, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (req->tls && req->tls->client_cert) {
		SETOPT(c, CURLOPT_SSLCERT, req->tls->client_cert);
		SETOPT(c, CURLOPT_SSLKEY, req->tls->client_key);
	}

	const char *m = req->method;
	if (streq(m, "HEAD")) {
		SETOPT(c, CURLOPT_NOBODY, 1L);
	} else if (streq(m, "GET")) {
		SETOPT(c, CURLOPT_HTTPGET, 1L);
	} else if (streq(m, "POST") || streq(m, "PUT") || streq(m, "PATCH")) {
		/* An upload with a known size (0 included) sends Content-Length. */
		SETOPT(c, CURLOPT_UPLOAD, 1L);
		SETOPT(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
		SETOPT(c, CURLOPT_READFUNCTION, read_cb);
		SETOPT(c, CURLOPT_READDATA, &x);
		SETOPT(c, CURLOPT_SEEKFUNCTION, seek_cb);
		SETOPT(c, CURLOPT_SEEKDATA, &x);
		SETOPT(c, CURLOPT_CUSTOMREQUEST, m);
	} else {
		SETOPT(c, CURLOPT_CUSTOMREQUEST, m);
	}

	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK) {
		long code = 0;
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (code)
			resp->status = code;
		if (!resp->reason || !*resp->reason) {
			free(resp->reason);
			resp->reason = xstrdup(plait_http_reason(resp->status));
		}
		ret = 0;
		goto out;
	}
	resp->curl_code = rc;
	long os_errno = 0;
	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
	resp->os_errno = (int)os_errno;
	if (!resp->errmsg[0])
		snprintf(resp->errmsg, sizeof(resp->errmsg), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
out:
	pool_put(h, c);
	return ret;
}

/* ------------------------------------------------------------------ helpers */

static void add_lower_first(struct plait_buf *out, const char *s)
{
	size_t start = out->len;
	plait_buf_adds(out, s);
	if (out->len > start && isupper((unsigned char)out->buf[start]) &&
	    !(out->len > start + 1 && isupper((unsigned char)out->buf[start + 1])))
		out->buf[start] = (char)tolower((unsigned char)out->buf[start]);
}

void plait_http_describe_failure(const struct plait_http_resp *r, struct plait_buf *out)
{
	switch (r->curl_code) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		if (r->os_errno) {
			add_lower_first(out, strerror(r->os_errno));
			return;
		}
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
		plait_buf_adds(out, "could not resolve host name");
		return;
	case CURLE_OPERATION_TIMEDOUT:
		plait_buf_adds(out, "timed out (no connection within 30 s or no data for 60 s)");
		return;
	case CURLE_GOT_NOTHING:
		plait_buf_adds(out, "the server closed the connection without answering");
		return;
	case CURLE_PARTIAL_FILE:
		plait_buf_adds(out, "the connection closed before the whole body arrived");
		return;
	default:
		break;
	}
	if (r->curl_code == CURLE_SSL_CONNECT_ERROR)
		plait_buf_adds(out, "TLS handshake failed: ");
	else if (r->curl_code == CURLE_PEER_FAILED_VERIFICATION)
		plait_buf_adds(out, "TLS certificate verification failed: ");
	add_lower_first(out, r->errmsg[0] ? r->errmsg : curl_easy_strerror(r->curl_code));
}

const char *plait_http_reason(long status)
{
	static const struct {
		long code;
		const char *text;
	} table[] = {
		{ 200, "OK" },
		{ 201, "Created" },
		{ 202, "Accepted" },
		{ 204, "No Content" },
		{ 206, "Partial Content" },
		{ 301, "Moved Permanently" },
		{ 302, "Found" },
		{ 303, "See Other" },
		{ 307, "Temporary Redirect" },
		{ 308, "Permanent Redirect" },
		{ 400, "Bad Request" },
		{ 401, "Unauthorized" },
		{ 403, "Forbidden" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 408, "Request Timeout" },
		{ 409, "Conflict" },
		{ 413, "Payload Too Large" },
		{ 415, "Unsupported Media Type" },
		{ 416, "Range Not Satisfiable" },
		{ 429, "Too Many Requests" },
		{ 500, "Internal Server Error" },
		{ 501, "Not Implemented" },
		{ 502, "Bad Gateway" },
		{ 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (table[i].code == status)
			return table[i].text;
	return "";
}

char *plait_http_resolve_url(const char *base, const char *ref)
{
	_cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
	if (!u)
		plait_die_oom();
	if (curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK)
		return NULL;
	/* CURLU resolves a relative reference against the URL it holds. */
	if (curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK)
		return NULL;
	char *s = NULL;
	if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK)
		return NULL;
	char *ret = xstrdup(s);
	curl_free(s);
	return ret;
}

void plait_http_add_escaped(struct plait_buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			plait_buf_addch(out, ch);
		} else {
			plait_buf_addch(out, '%');
			plait_buf_addch(out, hex[ch >> 4]);
			plait_buf_addch(out, hex[ch & 15]);
		}
	}
}
