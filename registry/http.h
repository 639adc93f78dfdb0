/* registry/http.h - a thin layer over libcurl for the registry client
 * (internal to registry/; not installed, not used outside it).
 *
 * Contract:
 *  - one struct plait_http per registry object: a CURLSH share (connections,
 *    DNS, TLS sessions) guarded by pthread mutexes and a small pool of easy
 *    handles reused with curl_easy_reset(), so several threads can perform
 *    requests at once;
 *  - plait_http_perform() makes exactly one attempt: no retries, no auth
 *    handling (client.c and token.c own both). It returns 0 when an HTTP response
 *    arrived (any status), -1 on a transport error (resp->curl_code,
 *    resp->os_errno and resp->errmsg say what) or when the sink or the size
 *    cap stopped the transfer (resp->aborted / resp->too_large);
 *  - the headers of the final response are captured (a redirect or a
 *    100-continue resets them); bodies of non-2xx responses go to
 *    resp->err_body (capped), never into the caller's buffer or sink;
 *  - TLS peer and host verification are on unless tls->verify is false;
 *    Authorization headers are not sent to another host on a redirect
 *    (libcurl's behaviour since 7.58, CURLOPT_UNRESTRICTED_AUTH stays off);
 *  - connect timeout 30 s; instead of a total timeout, a transfer slower
 *    than 1 byte/s for 60 s is aborted (CURLE_OPERATION_TIMEDOUT). */
#ifndef PLAIT_REGISTRY_HTTP_H
#define PLAIT_REGISTRY_HTTP_H

#include <stdatomic.h>

#include "core/buf.h"
#include "core/error.h"

struct plait_http;

/* TLS settings for one host. */
struct plait_http_tls {
	bool verify;       /* peer and host name verification */
	char *ca_pem;      /* PEM bundle of the host's CAs (replaces the default bundle), or NULL */
	size_t ca_len;
	char *client_cert; /* path of a PEM client certificate, or NULL */
	char *client_key;  /* path of its key, or NULL */
};

/* Fill out from the first of certs_dirs (NULL = /etc/docker/certs.d,
 * /etc/containers/certs.d) that has a <host> folder: every *.crt there (sorted,
 * concatenated) is the CA bundle; a *.cert needs the *.key of the same name.
 * A *.cert without its key is -PLAIT_E_USAGE. */
int plait_http_tls_for_host(const char *host, const char *const *certs_dirs, bool verify,
			    struct plait_http_tls *out, struct plait_error **err);
void plait_http_tls_release(struct plait_http_tls *t);

int plait_http_new(const char *user_agent, struct plait_http **out, struct plait_error **err);
void plait_http_free(struct plait_http *h);

struct plait_http_resp;
/* Receives the body of a 2xx response (resp holds its status and headers).
 * Return <0 to stop the transfer. */
typedef int (*plait_http_sink_fn)(void *ud, const struct plait_http_resp *resp, const void *data,
				  size_t len);

struct plait_http_req {
	const char *method; /* "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" */
	const char *url;
	const char *const *headers; /* NULL-terminated "Name: value", or NULL */
	/* request body: from memory, or (body_from_fd) body_len bytes of body_fd from body_off */
	const void *body;
	int64_t body_len;
	bool body_from_fd;
	int body_fd;
	int64_t body_off;
	/* For a file still being written: block until its first end bytes exist;
	 * returns how many exist, < 0 to abort (see struct plait_blob_source). */
	int64_t (*body_wait)(void *ud, int64_t end);
	void *body_wait_ud;
	/* 2xx response body: into out (at most out_max bytes, then resp->too_large), or to sink */
	struct plait_buf *out;
	size_t out_max;
	plait_http_sink_fn sink;
	void *sink_ud;
	bool follow_redirects;
	const struct plait_http_tls *tls; /* NULL = verify with the default CAs */
	const atomic_int *cancel;       /* non-zero stops the transfer (resp->aborted) */
};

struct plait_http_resp {
	long status; /* 0 when no response arrived */
	char *reason; /* "Service Unavailable" (from the status line, else a table) */
	char *location, *range, *content_range, *docker_digest, *content_type;
	char *www_authenticate, *retry_after, *upload_uuid, *last_modified;
	char *oci_subject; /* OCI-Subject (distribution-spec 1.1 referrers) */
	int64_t content_length; /* -1 when not sent */
	struct plait_buf err_body; /* body of a non-2xx response, capped */
	int64_t body_bytes;        /* bytes handed to out or the sink */
	/* transport outcome */
	int curl_code;   /* CURLcode, 0 = CURLE_OK */
	int os_errno;    /* errno behind a connect failure, or 0 */
	char errmsg[256];
	bool too_large;  /* the body passed out_max */
	bool aborted;    /* the sink returned < 0 */
};
#define PLAIT_HTTP_RESP_INIT { .content_length = -1, .err_body = PLAIT_BUF_INIT }
void plait_http_resp_release(struct plait_http_resp *resp);
/* Take one raw header line (CRLF included, not NUL-terminated) into resp, as
 * the transfer does: a status line starts a new response; the headers above
 * are kept; others are ignored. Exposed for tests/fuzz. */
void plait_http_parse_header_line(struct plait_http_resp *resp, const char *line, size_t len);

int plait_http_perform(struct plait_http *h, const struct plait_http_req *req,
		       struct plait_http_resp *resp);

/* A lowercase description of a transport failure: "connection refused",
 * "operation timed out (no data for 60 s)". */
void plait_http_describe_failure(const struct plait_http_resp *resp, struct plait_buf *out);
/* The standard reason phrase of an HTTP status ("Not Found"), or "". */
const char *plait_http_reason(long status);
/* Resolve ref (absolute, or relative like "/v2/…") against base; caller frees.
 * NULL when it cannot be parsed. */
char *plait_http_resolve_url(const char *base, const char *ref);
/* Percent-encode s for a query string into out. */
void plait_http_add_escaped(struct plait_buf *out, const char *s);

#endif
