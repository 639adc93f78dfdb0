/* registry/fetch.c - plain HTTP(S) downloads into the content store. */
#include <curl/curl.h>
#include <stdio.h>

#include "fetch.h"
#include "http.h"
#include "core/ref.h"
#include "plait-config.h"
#include "core/banned.h"

struct sink_ctx {
	struct plait_blob_writer *w;
	struct plait_error *err;
};

static int to_writer(void *ud, const struct plait_http_resp *resp, const void *data, size_t len)
{
	(void)resp;
	struct sink_ctx *s = ud;
	return plait_blob_writer_write(s->w, data, len, &s->err) < 0 ? -1 : 0;
}

/* "https://host:8080/path" -> "host:8080" */
static char *host_of(const char *url)
{
	const char *p = strstr(url, "://");
	if (!p)
		return NULL;
	p += 3;
	return xstrndup(p, strcspn(p, "/?#"));
}

int plait_fetch_url(const char *url, const struct plait_registry_opts *opts, struct plait_blob_writer *w,
		    int64_t *mtime, struct plait_error **err)
{
	if (mtime)
		*mtime = -1;
	bool https = startswith(url, "https://");
	if (!https && !startswith(url, "http://"))
		return plait_error_set(err, PLAIT_E_USAGE, "'%s' is not an http:// or https:// URL", url);
	_cleanup_free_ char *host = host_of(url);
	if (!host || !*host)
		return plait_error_set(err, PLAIT_E_USAGE, "'%s': no host in the URL", url);
	bool insecure = plait_host_is_loopback(host);
	for (const char *const *h = opts ? opts->insecure_hosts : NULL; h && *h; h++)
		insecure |= streq(*h, host);
	if (!https && !insecure)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "'%s' is plain HTTP: use https://, or --insecure-registry %s", url, host);

	struct plait_http *http = NULL;
	struct plait_http_tls tls = { 0 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	struct sink_ctx sc = { .w = w };
	int r = plait_http_new(opts && opts->user_agent ? opts->user_agent : "plait/" PLAIT_VERSION, &http, err);
	if (r >= 0)
		r = plait_http_tls_for_host(host, opts ? opts->certs_dirs : NULL, !insecure, &tls, err);
	if (r < 0)
		goto out;
	struct plait_http_req req = { .method = "GET",
				      .url = url,
				      .sink = to_writer,
				      .sink_ud = &sc,
				      .follow_redirects = true,
				      .tls = &tls,
				      .cancel = opts ? opts->cancel : NULL };
	if (plait_http_perform(http, &req, &resp) < 0) {
		if (sc.err) {
			plait_error_move(err, TAKE_PTR(sc.err));
			r = -(*err)->code;
		} else {
			struct plait_buf why = PLAIT_BUF_INIT;
			plait_http_describe_failure(&resp, &why);
			r = plait_error_set(err, PLAIT_E_NETWORK, "GET %s: %s", url, why.buf);
			plait_buf_release(&why);
		}
		goto out;
	}
	if (resp.status != 200)
		r = plait_error_set(err, resp.status == 404 ? PLAIT_E_NOT_FOUND : PLAIT_E_GENERIC,
				    "GET %s: %ld %s", url, resp.status, resp.reason ? resp.reason : "");
	else if (mtime && resp.last_modified) /* an HTTP date; curl reads its three forms */
		*mtime = (int64_t)curl_getdate(resp.last_modified, NULL);
out:
	plait_error_free(sc.err);
	plait_http_resp_release(&resp);
	plait_http_tls_release(&tls);
	plait_http_free(http);
	return r;
}
