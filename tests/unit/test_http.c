/* Unit tests for registry/http: URL and escaping helpers, reason phrases,
 * failure descriptions, certs.d lookup, and plait_http_perform against a tiny
 * HTTP server that runs in a thread of this process on 127.0.0.1. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "asserts.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/util.h"
#include "registry/http.h"

#include "fake_server.h"
#include "rm_tree.h"

#include "core/banned.h"

/* ------------------------------------------------------------------ helpers */

static void write_file(const char *dir, const char *name, const char *text)
{
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	FILE *f = fopen(p.buf, "w");
	if (!f)
		fail_msg("cannot create '%s': %s", p.buf, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static char *make_dir(const char *parent, const char *name)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", parent, name);
	if (mkdir(p.buf, 0755) < 0)
		fail_msg("cannot create folder '%s': %s", p.buf, strerror(errno));
	return plait_buf_detach(&p, NULL);
}

static char *make_tmpdir(void)
{
	char *t = xstrdup("/tmp/plait-test-http-XXXXXX");
	if (!mkdtemp(t))
		fail_msg("mkdtemp: %s", strerror(errno));
	return t;
}

static void rm_rf(char *dir)
{
	if (dir)
		rm_tree(dir);
	free(dir);
}

static void assert_starts_lowercase(const char *s)
{
	if (!s[0] || !islower((unsigned char)s[0]))
		fail_msg("expected a lowercase description, got '%s'", s);
}

/* ------------------------------------------------------------------ resolve_url */

static void check_resolve(const char *base, const char *ref, const char *want)
{
	char *got = plait_http_resolve_url(base, ref);
	bool same = got && want ? streq(got, want) : got == want;
	/* fail_msg() jumps away: build the message and free first. */
	char msg[512];
	snprintf(msg, sizeof(msg), "resolve('%s', '%s'): expected %s%s%s, got %s%s%s", base, ref,
		 want ? "'" : "", want ? want : "NULL", want ? "'" : "", got ? "'" : "",
		 got ? got : "NULL", got ? "'" : "");
	free(got);
	if (!same)
		fail_msg("%s", msg);
}

static void test_http__resolve_url_absolute_ref_is_kept(void **state)
{
	(void)state;
	check_resolve("https://r.example:5000/v2/a/blobs/uploads/",
		      "https://storage.example/blob/abc?sig=x%2By&exp=1",
		      "https://storage.example/blob/abc?sig=x%2By&exp=1");
	check_resolve("https://r.example/v2/", "http://other.example/v2/b",
		      "http://other.example/v2/b");
}

static void test_http__resolve_url_path_absolute_keeps_scheme_host_port(void **state)
{
	(void)state;
	check_resolve("https://r.example:5000/v2/a/blobs/uploads/",
		      "/v2/a/blobs/uploads/4f1c?_state=abc%3D%3D&n=1",
		      "https://r.example:5000/v2/a/blobs/uploads/4f1c?_state=abc%3D%3D&n=1");
	check_resolve("http://127.0.0.1:5000/v2/", "/v2/_catalog?last=b&n=2",
		      "http://127.0.0.1:5000/v2/_catalog?last=b&n=2");
}

static void test_http__resolve_url_relative_resolves_against_base_folder(void **state)
{
	(void)state;
	check_resolve("http://127.0.0.1:5000/v2/a/blobs/uploads/", "4f1c",
		      "http://127.0.0.1:5000/v2/a/blobs/uploads/4f1c");
	check_resolve("http://h.example/v2/a/blobs/uploads/x", "y?digest=sha256%3Aab",
		      "http://h.example/v2/a/blobs/uploads/y?digest=sha256%3Aab");
	check_resolve("http://h.example/v2/a/b/c", "../d", "http://h.example/v2/a/d");
	check_resolve("http://h.example/v2/a/tags/list", "?last=x",
		      "http://h.example/v2/a/tags/list?last=x");
	check_resolve("https://h.example:5000/v2/", "//cdn.example/b/1",
		      "https://cdn.example/b/1");
}

static void test_http__resolve_url_drops_base_query(void **state)
{
	(void)state;
	check_resolve("http://h.example/v2/a/tags/list?n=10", "/v2/a/tags/list?last=x",
		      "http://h.example/v2/a/tags/list?last=x");
	check_resolve("http://h.example/v2/a/x?old=1", "y", "http://h.example/v2/a/y");
}

static void test_http__resolve_url_garbage_is_null(void **state)
{
	(void)state;
	check_resolve("not a url", "/v2/", NULL);
	check_resolve("", "/v2/", NULL);
	check_resolve("http://h.example/v2/", "a\nb", NULL);
	check_resolve("http://h.example/v2/", "http:", NULL);
}

static void test_http__resolve_url_malformed_absolute_ref_is_null(void **state)
{
	(void)state;
	check_resolve("http://h.example/", "http://[::1/x", NULL);
	check_resolve("http://h.example/", "https://h.example:99999/x", NULL);
}

/* ------------------------------------------------------------------ add_escaped */

static void check_escaped(const char *in, const char *want)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	plait_http_add_escaped(&b, in);
	assert_string_equal(b.buf, want);
	assert_int_equal(b.len, strlen(want));
}

static void test_http__add_escaped_keeps_unreserved(void **state)
{
	(void)state;
	check_escaped("AZaz09-._~", "AZaz09-._~");
	check_escaped("", "");
}

static void test_http__add_escaped_encodes_scope_separators(void **state)
{
	(void)state;
	check_escaped("repository:a/b:pull,push", "repository%3Aa%2Fb%3Apull%2Cpush");
}

static void test_http__add_escaped_encodes_reserved_and_space_as_uppercase_hex(void **state)
{
	(void)state;
	check_escaped(" ", "%20");
	check_escaped("a b+c", "a%20b%2Bc");
	check_escaped("!*'();@&=$?#[]%", "%21%2A%27%28%29%3B%40%26%3D%24%3F%23%5B%5D%25");
	check_escaped("\"<>\\^`{|}", "%22%3C%3E%5C%5E%60%7B%7C%7D");
}

static void test_http__add_escaped_encodes_utf8_bytes(void **state)
{
	(void)state;
	check_escaped("caf\xc3\xa9", "caf%C3%A9");
	check_escaped("\xe2\x82\xac", "%E2%82%AC");
	check_escaped("\x01\x7f", "%01%7F");
}

static void test_http__add_escaped_appends(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, "scope=");
	plait_http_add_escaped(&b, "repository:x:pull");
	assert_string_equal(b.buf, "scope=repository%3Ax%3Apull");
}

/* ------------------------------------------------------------------ reason */

static void test_http__reason_known_codes(void **state)
{
	(void)state;
	assert_string_equal(plait_http_reason(200), "OK");
	assert_string_equal(plait_http_reason(201), "Created");
	assert_string_equal(plait_http_reason(202), "Accepted");
	assert_string_equal(plait_http_reason(307), "Temporary Redirect");
	assert_string_equal(plait_http_reason(401), "Unauthorized");
	assert_string_equal(plait_http_reason(404), "Not Found");
	assert_string_equal(plait_http_reason(416), "Range Not Satisfiable");
	assert_string_equal(plait_http_reason(429), "Too Many Requests");
	assert_string_equal(plait_http_reason(503), "Service Unavailable");
}

static void test_http__reason_unknown_is_empty(void **state)
{
	(void)state;
	assert_string_equal(plait_http_reason(0), "");
	assert_string_equal(plait_http_reason(-1), "");
	assert_string_equal(plait_http_reason(299), "");
	assert_string_equal(plait_http_reason(599), "");
	assert_string_equal(plait_http_reason(1000), "");
}

/* ------------------------------------------------------------------ describe_failure */

static void describe(int curl_code, int os_errno, const char *errmsg, struct plait_buf *out)
{
	struct plait_http_resp r = PLAIT_HTTP_RESP_INIT;
	r.curl_code = curl_code;
	r.os_errno = os_errno;
	snprintf(r.errmsg, sizeof(r.errmsg), "%s", errmsg);
	plait_http_describe_failure(&r, out);
	plait_http_resp_release(&r);
}

static void test_http__describe_connection_refused(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	describe(CURLE_COULDNT_CONNECT, ECONNREFUSED,
		 "Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server", &b);
	assert_string_equal(b.buf, "connection refused");
}

static void test_http__describe_connect_failure_without_errno_uses_lowercased_errmsg(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	describe(CURLE_COULDNT_CONNECT, 0, "Failed to connect to h port 1", &b);
	assert_string_equal(b.buf, "failed to connect to h port 1");
}

static void test_http__describe_timed_out(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	describe(CURLE_OPERATION_TIMEDOUT, 0,
		 "Operation too slow. Less than 1 bytes/sec transferred the last 60 seconds", &b);
	assert_starts_lowercase(b.buf);
	assert_contains(b.buf, "timed out");
	assert_contains(b.buf, "60 s");
}

static void test_http__describe_tls_verification_failure(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	describe(CURLE_PEER_FAILED_VERIFICATION, 0,
		 "SSL certificate problem: self-signed certificate", &b);
	/* "TLS" is an acronym; the rest reads lowercase and keeps curl's detail. */
	assert_string_equal(b.buf, "TLS certificate verification failed: "
				   "SSL certificate problem: self-signed certificate");
}

static void test_http__describe_resolve_and_closed_connections(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	describe(CURLE_COULDNT_RESOLVE_HOST, 0, "Could not resolve host: nowhere", &b);
	assert_string_equal(b.buf, "could not resolve host name");
	plait_buf_reset(&b);
	describe(CURLE_GOT_NOTHING, 0, "Empty reply from server", &b);
	assert_string_equal(b.buf, "the server closed the connection without answering");
	plait_buf_reset(&b);
	describe(CURLE_PARTIAL_FILE, 0, "transfer closed with 90 bytes remaining to read", &b);
	assert_string_equal(b.buf, "the connection closed before the whole body arrived");
}

static void test_http__describe_other_code_without_errmsg_uses_curl_text(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	describe(CURLE_WRITE_ERROR, 0, "", &b);
	assert_true(b.len > 0);
	assert_starts_lowercase(b.buf);
}

/* ------------------------------------------------------------------ tls_for_host */

#define HOST "127.0.0.1:5000"

/* plait_http_tls_for_host(HOST, ...) into *t, or fail the test. */
static void tls_ok(const char *const *dirs, bool verify, struct plait_http_tls *t)
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_http_tls_for_host(HOST, dirs, verify, t, &err) < 0)
		fail_msg("tls_for_host: %s", err->msg);
}

static void test_http__tls_for_host_concatenates_crt_files_in_sorted_order(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	_cleanup_free_ char *hostdir = make_dir(tmp, HOST);
	/* Created in reverse order so directory order is unlikely to be sorted. */
	write_file(hostdir, "zz.crt", "CERT-Z");
	write_file(hostdir, "ca.crt", "CERT-A");
	write_file(hostdir, "README", "not a certificate");
	const char *const dirs[] = { tmp, NULL };
	struct plait_http_tls t;
	tls_ok(dirs, true, &t);
	assert_true(t.verify);
	assert_non_null(t.ca_pem);
	assert_int_equal(t.ca_len, strlen(t.ca_pem));
	const char *a = strstr(t.ca_pem, "CERT-A"), *z = strstr(t.ca_pem, "CERT-Z");
	if (!a || !z || a > z)
		fail_msg("expected CERT-A before CERT-Z in bundle, got '%s'", t.ca_pem);
	/* PEM blocks must not run into each other. */
	assert_null(strstr(t.ca_pem, "CERT-ACERT-Z"));
	assert_null(strstr(t.ca_pem, "not a certificate"));
	assert_null(t.client_cert);
	assert_null(t.client_key);
	plait_http_tls_release(&t);
	rm_rf(tmp);
}

static void test_http__tls_for_host_without_host_folder_has_no_ca(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	_cleanup_free_ char *other = make_dir(tmp, "other.example");
	write_file(other, "ca.crt", "CERT-OTHER");
	_cleanup_buf_ struct plait_buf missing = PLAIT_BUF_INIT;
	plait_buf_addf(&missing, "%s/does-not-exist", tmp);
	const char *const dirs[] = { tmp, missing.buf, NULL };
	struct plait_http_tls t;
	tls_ok(dirs, false, &t);
	assert_false(t.verify);
	assert_null(t.ca_pem);
	assert_int_equal(t.ca_len, 0);
	assert_null(t.client_cert);
	assert_null(t.client_key);
	plait_http_tls_release(&t);
	rm_rf(tmp);
}

static void test_http__tls_for_host_first_certs_dir_with_host_wins(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	_cleanup_free_ char *d1 = make_dir(tmp, "d1");
	_cleanup_free_ char *d2 = make_dir(tmp, "d2");
	_cleanup_free_ char *d3 = make_dir(tmp, "d3");
	_cleanup_free_ char *h2 = make_dir(d2, HOST);
	_cleanup_free_ char *h3 = make_dir(d3, HOST);
	write_file(h2, "ca.crt", "CERT-SECOND");
	write_file(h3, "ca.crt", "CERT-THIRD");
	write_file(h3, "client.cert", "C");
	write_file(h3, "client.key", "K");
	const char *const dirs[] = { d1, d2, d3, NULL };
	struct plait_http_tls t;
	tls_ok(dirs, true, &t);
	assert_non_null(t.ca_pem);
	assert_contains(t.ca_pem, "CERT-SECOND");
	assert_null(strstr(t.ca_pem, "CERT-THIRD"));
	assert_null(t.client_cert);
	plait_http_tls_release(&t);
	rm_rf(tmp);
}

static void test_http__tls_for_host_cert_with_key_sets_client_pair(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	_cleanup_free_ char *h = make_dir(tmp, HOST);
	write_file(h, "client.cert", "C");
	write_file(h, "client.key", "K");
	const char *const dirs[] = { tmp, NULL };
	struct plait_http_tls t;
	tls_ok(dirs, true, &t);
	_cleanup_buf_ struct plait_buf want = PLAIT_BUF_INIT;
	plait_buf_addf(&want, "%s/client.cert", h);
	assert_string_equal(t.client_cert, want.buf);
	plait_buf_reset(&want);
	plait_buf_addf(&want, "%s/client.key", h);
	assert_string_equal(t.client_key, want.buf);
	assert_null(t.ca_pem);
	plait_http_tls_release(&t);
	plait_http_tls_release(NULL);
	rm_rf(tmp);
}

static void test_http__tls_for_host_cert_without_key_is_usage_error(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	_cleanup_free_ char *h = make_dir(tmp, HOST);
	write_file(h, "ca.crt", "CERT-A");
	write_file(h, "client.cert", "C");
	const char *const dirs[] = { tmp, NULL };
	struct plait_http_tls t;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_http_tls_for_host(HOST, dirs, true, &t, &err);
	assert_int_equal(r, -PLAIT_E_USAGE);
	assert_non_null(err);
	assert_int_equal(err->code, PLAIT_E_USAGE);
	assert_starts_lowercase(err->msg);
	assert_contains(err->msg, "client.cert");
	assert_contains(err->msg, "client.key");
	/* Nothing half-filled is handed back. */
	assert_null(t.ca_pem);
	assert_null(t.client_cert);
	assert_null(t.client_key);
	plait_http_tls_release(&t);
	rm_rf(tmp);
}

/* ------------------------------------------------------------------ test server */

struct srv {
	struct fake_server fs;
	int port; /* fs.port */
	pthread_mutex_t lock;
	/* the last request seen */
	char *method, *path;
	struct plait_buf head; /* header lines, "\r\n"-separated */
	struct plait_buf body;
	int n_requests;
};

static struct srv S;

/* Read one request; false when the peer went away before its headers. */
static bool read_request(int fd)
{
	_cleanup_buf_ struct plait_buf in = PLAIT_BUF_INIT;
	char tmp[8192];
	const char *end;
	while (!(end = memmem(in.buf, in.len, "\r\n\r\n", 4))) {
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n <= 0)
			return false;
		plait_buf_add(&in, tmp, (size_t)n);
	}
	size_t hlen = (size_t)(end - in.buf) + 4;
	const char *sp1 = memchr(in.buf, ' ', hlen);
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', hlen - (size_t)(sp1 + 1 - in.buf)) : NULL;
	const char *eol = strstr(in.buf, "\r\n");
	pthread_mutex_lock(&S.lock);
	free(S.method);
	free(S.path);
	S.method = sp1 ? xstrndup(in.buf, (size_t)(sp1 - in.buf)) : xstrdup("");
	S.path = sp2 ? xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1)) : xstrdup("");
	plait_buf_reset(&S.head);
	plait_buf_add(&S.head, eol + 2, hlen - (size_t)(eol + 2 - in.buf));
	plait_buf_reset(&S.body);
	plait_buf_add(&S.body, in.buf + hlen, in.len - hlen);
	_cleanup_free_ char *cl = header_value(S.head.buf, "Content-Length");
	size_t want = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
	while (S.body.len < want) {
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n <= 0)
			break;
		plait_buf_add(&S.body, tmp, (size_t)n);
	}
	S.n_requests++;
	pthread_mutex_unlock(&S.lock);
	return true;
}

static void respond(int fd, const char *status_line, const char *headers, const char *body,
		    size_t body_len)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	bool head = streq(S.method, "HEAD");
	plait_buf_addf(&b, "%s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
		       status_line, headers, body_len);
	if (!head)
		plait_buf_add(&b, body, body_len);
	send_all(fd, b.buf, b.len);
}

#define OK_BODY "hello world"
#define ERR_JSON "{\"errors\":[{\"code\":\"UNAVAILABLE\"}]}"

static void serve_one(int fd)
{
	if (!read_request(fd))
		return;
	char path[256];
	pthread_mutex_lock(&S.lock);
	snprintf(path, sizeof(path), "%s", S.path);
	pthread_mutex_unlock(&S.lock);

	if (streq(path, "/ok")) {
		respond(fd, "HTTP/1.1 200 OK",
			"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
			"Docker-Content-Digest:   sha256:0123abcd  \r\n",
			OK_BODY, strlen(OK_BODY));
	} else if (streq(path, "/busy")) {
		respond(fd, "HTTP/1.1 503 Service Unavailable",
			"Retry-After: 7\r\nContent-Type: application/json\r\n", ERR_JSON,
			strlen(ERR_JSON));
	} else if (streq(path, "/big") || streq(path, "/errbig")) {
		size_t n = streq(path, "/big") ? 1000 : 100000;
		_cleanup_free_ char *body = xmalloc(n);
		memset(body, 'x', n);
		respond(fd, streq(path, "/big") ? "HTTP/1.1 200 OK" : "HTTP/1.1 500 Internal Server Error",
			"", body, n);
	} else if (streq(path, "/short")) {
		static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
					"Connection: close\r\n\r\n0123456789";
		send_all(fd, r, strlen(r));
	} else if (streq(path, "/nothing")) {
		/* close without a byte */
	} else if (streq(path, "/noreason")) {
		static const char r[] = "HTTP/1.1 404\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		send_all(fd, r, strlen(r));
	} else if (streq(path, "/teapot")) {
		respond(fd, "HTTP/1.1 418 I'm a teapot", "", "", 0);
	} else if (streq(path, "/redirect")) {
		respond(fd, "HTTP/1.1 307 Temporary Redirect", "Location: /ok\r\nRetry-After: 3\r\n",
			"moved", 5);
	} else if (streq(path, "/same")) {
		respond(fd, "HTTP/1.1 302 Found", "Location: /echo\r\n", "", 0);
	} else if (streq(path, "/cross")) {
		_cleanup_buf_ struct plait_buf h = PLAIT_BUF_INIT;
		plait_buf_addf(&h, "Location: http://localhost:%d/echo\r\n", S.port);
		respond(fd, "HTTP/1.1 302 Found", h.buf, "", 0);
	} else if (streq(path, "/continue")) {
		static const char r[] = "HTTP/1.1 100 Continue\r\nRetry-After: 99\r\n\r\n"
					"HTTP/1.1 201 Created\r\nLocation: /v2/a/blobs/sha256:1\r\n"
					"Content-Length: 0\r\nConnection: close\r\n\r\n";
		send_all(fd, r, strlen(r));
	} else if (streq(path, "/chal-basic-first")) {
		respond(fd, "HTTP/1.1 401 Unauthorized",
			"WWW-Authenticate: Basic realm=\"r\"\r\n"
			"WWW-Authenticate: Bearer realm=\"https://auth/token\",service=\"s\"\r\n",
			"", 0);
	} else if (streq(path, "/chal-bearer-first")) {
		respond(fd, "HTTP/1.1 401 Unauthorized",
			"WWW-Authenticate: Bearer realm=\"https://auth/token\",service=\"s\"\r\n"
			"WWW-Authenticate: Basic realm=\"r\"\r\n",
			"", 0);
	} else if (streq(path, "/chunked")) {
		static const char r[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
					"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
		send_all(fd, r, strlen(r));
	} else if (streq(path, "/echo")) {
		respond(fd, "HTTP/1.1 201 Created", "", "", 0);
	} else {
		respond(fd, "HTTP/1.1 404 Not Found", "", "nope", 4);
	}
}

static struct plait_http *H;

static int net_setup(void **state)
{
	(void)state;
	S = (struct srv){ .head = PLAIT_BUF_INIT, .body = PLAIT_BUF_INIT };
	pthread_mutex_init(&S.lock, NULL);
	if (fake_server_start(&S.fs, serve_one) < 0)
		return -1;
	S.port = S.fs.port;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_http_new("plait-test/1", &H, &err) < 0)
		return -1;
	return 0;
}

static int net_teardown(void **state)
{
	(void)state;
	plait_http_free(H);
	H = NULL;
	fake_server_stop(&S.fs);
	free(S.method);
	free(S.path);
	plait_buf_release(&S.head);
	plait_buf_release(&S.body);
	pthread_mutex_destroy(&S.lock);
	return 0;
}

static char *url(const char *path)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "http://127.0.0.1:%d%s", S.port, path);
	return plait_buf_detach(&b, NULL);
}

/* The last request's header value (caller frees), or NULL. */
static char *seen_header(const char *name)
{
	pthread_mutex_lock(&S.lock);
	char *v = header_value(S.head.buf, name);
	pthread_mutex_unlock(&S.lock);
	return v;
}

static int perform(struct plait_http_req *q, struct plait_http_resp *resp)
{
	int r = plait_http_perform(H, q, resp);
	if (r < 0 && resp->status == 0 && resp->curl_code == CURLE_COULDNT_CONNECT)
		fail_msg("test server unreachable: %s", resp->errmsg);
	return r;
}

static void expect_ok(int r, const struct plait_http_resp *resp)
{
	if (r != 0)
		fail_msg("perform failed: curl code %d: %s", resp->curl_code, resp->errmsg);
}

/* ------------------------------------------------------------------ perform */

static void test_http__perform_200_captures_status_headers_and_body(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/ok");
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_http_req q = { .method = "GET", .url = u, .out = &out, .out_max = 1024 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int r = perform(&q, &resp);
	expect_ok(r, &resp);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.reason, "OK");
	assert_string_equal(resp.content_type, "application/vnd.oci.image.manifest.v1+json");
	assert_string_equal(resp.docker_digest, "sha256:0123abcd");
	assert_int_equal(resp.content_length, strlen(OK_BODY));
	assert_null(resp.location);
	assert_null(resp.retry_after);
	assert_string_equal(out.buf, OK_BODY);
	assert_int_equal(resp.body_bytes, strlen(OK_BODY));
	assert_int_equal(resp.err_body.len, 0);
	assert_int_equal(resp.curl_code, CURLE_OK);
	assert_false(resp.too_large);
	assert_false(resp.aborted);
	plait_http_resp_release(&resp);
}

static void test_http__perform_sends_method_user_agent_and_headers(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/echo");
	const char *const hdrs[] = { "Authorization: Bearer t0k", "Accept: a/b, c/d", NULL };
	struct plait_http_req q = { .method = "GET", .url = u, .headers = hdrs };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 201);
	assert_string_equal(S.method, "GET");
	assert_string_equal(S.path, "/echo");
	_cleanup_free_ char *ua = seen_header("User-Agent");
	_cleanup_free_ char *auth = seen_header("Authorization");
	_cleanup_free_ char *acc = seen_header("Accept");
	_cleanup_free_ char *expect = seen_header("Expect");
	assert_non_null(ua);
	assert_string_equal(ua, "plait-test/1");
	assert_non_null(auth);
	assert_string_equal(auth, "Bearer t0k");
	assert_non_null(acc);
	assert_string_equal(acc, "a/b, c/d");
	assert_null(expect);
	plait_http_resp_release(&resp);
}

static void test_http__perform_503_body_goes_to_err_body_with_retry_after(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/busy");
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_http_req q = { .method = "GET", .url = u, .out = &out, .out_max = 1024 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 503);
	assert_string_equal(resp.reason, "Service Unavailable");
	assert_non_null(resp.retry_after);
	assert_string_equal(resp.retry_after, "7");
	assert_string_equal(resp.content_type, "application/json");
	assert_string_equal(resp.err_body.buf, ERR_JSON);
	assert_int_equal(out.len, 0);
	assert_int_equal(resp.body_bytes, 0);
	plait_http_resp_release(&resp);
}

static void test_http__perform_error_body_is_capped(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/errbig");
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_http_req q = { .method = "GET", .url = u, .out = &out, .out_max = 10 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 500);
	assert_true(resp.err_body.len > 0);
	if (resp.err_body.len >= 100000)
		fail_msg("err_body not capped: %zu bytes", resp.err_body.len);
	assert_false(resp.too_large);
	assert_int_equal(out.len, 0);
	plait_http_resp_release(&resp);
}

static void test_http__perform_resets_a_reused_resp(void **state)
{
	(void)state;
	_cleanup_free_ char *u1 = url("/busy");
	_cleanup_free_ char *u2 = url("/ok");
	struct plait_http_req q = { .method = "GET", .url = u1 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 503);
	q.url = u2;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 200);
	assert_null(resp.retry_after);
	assert_int_equal(resp.err_body.len, 0);
	assert_int_equal(resp.body_bytes, strlen(OK_BODY));
	plait_http_resp_release(&resp);
}

struct sink_state {
	struct plait_buf got;
	long status_seen;
	int calls;
	bool fail;
};

static int sink(void *ud, const struct plait_http_resp *resp, const void *data, size_t len)
{
	struct sink_state *s = ud;
	s->status_seen = resp->status;
	s->calls++;
	if (s->fail)
		return -1;
	plait_buf_add(&s->got, data, len);
	return 0;
}

static void test_http__perform_sink_receives_body(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/ok");
	struct sink_state s = { .got = PLAIT_BUF_INIT };
	struct plait_http_req q = { .method = "GET", .url = u, .sink = sink, .sink_ud = &s };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_string_equal(s.got.buf, OK_BODY);
	assert_int_equal(s.status_seen, 200);
	assert_int_equal(resp.body_bytes, strlen(OK_BODY));
	plait_buf_release(&s.got);
	plait_http_resp_release(&resp);
}

static void test_http__perform_sink_not_called_for_error_status(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/busy");
	struct sink_state s = { .got = PLAIT_BUF_INIT };
	struct plait_http_req q = { .method = "GET", .url = u, .sink = sink, .sink_ud = &s };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 503);
	assert_int_equal(s.calls, 0);
	assert_string_equal(resp.err_body.buf, ERR_JSON);
	plait_buf_release(&s.got);
	plait_http_resp_release(&resp);
}

static void test_http__perform_sink_failure_aborts(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/ok");
	struct sink_state s = { .got = PLAIT_BUF_INIT, .fail = true };
	struct plait_http_req q = { .method = "GET", .url = u, .sink = sink, .sink_ud = &s };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int r = perform(&q, &resp);
	assert_int_equal(r, -1);
	assert_true(resp.aborted);
	assert_false(resp.too_large);
	assert_int_not_equal(resp.curl_code, CURLE_OK);
	assert_int_equal(s.calls, 1);
	plait_buf_release(&s.got);
	plait_http_resp_release(&resp);
}

static void test_http__perform_body_over_out_max_is_too_large(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/big");
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_http_req q = { .method = "GET", .url = u, .out = &out, .out_max = 100 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int r = perform(&q, &resp);
	assert_int_equal(r, -1);
	assert_true(resp.too_large);
	assert_false(resp.aborted);
	if (out.len > 100)
		fail_msg("out holds %zu bytes, more than out_max 100", out.len);
	plait_http_resp_release(&resp);
}

static void test_http__perform_body_exactly_out_max_fits(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/ok");
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_http_req q = { .method = "GET", .url = u, .out = &out,
				    .out_max = strlen(OK_BODY) };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_false(resp.too_large);
	assert_string_equal(out.buf, OK_BODY);
	plait_http_resp_release(&resp);
}

static void test_http__perform_chunked_body_has_no_content_length(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/chunked");
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_http_req q = { .method = "GET", .url = u, .out = &out, .out_max = 1024 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.content_length, -1);
	assert_string_equal(out.buf, "hello world");
	plait_http_resp_release(&resp);
}

static void test_http__perform_head_reports_length_without_body(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/ok");
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_http_req q = { .method = "HEAD", .url = u, .out = &out, .out_max = 1024 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_string_equal(S.method, "HEAD");
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.content_length, strlen(OK_BODY));
	assert_string_equal(resp.docker_digest, "sha256:0123abcd");
	assert_int_equal(out.len, 0);
	assert_int_equal(resp.body_bytes, 0);
	plait_http_resp_release(&resp);
}

static void test_http__perform_put_sends_memory_body(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/echo");
	struct plait_http_req q = { .method = "PUT", .url = u, .body = "{\"a\":1}", .body_len = 7 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 201);
	assert_string_equal(resp.reason, "Created");
	assert_string_equal(S.method, "PUT");
	assert_string_equal(S.body.buf, "{\"a\":1}");
	_cleanup_free_ char *cl = seen_header("Content-Length");
	assert_non_null(cl);
	assert_string_equal(cl, "7");
	plait_http_resp_release(&resp);
}

static void test_http__perform_empty_post_and_patch_send_content_length_zero(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/echo");
	static const char *const methods[] = { "POST", "PATCH" };
	for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
		struct plait_http_req q = { .method = methods[i], .url = u };
		struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
		expect_ok(perform(&q, &resp), &resp);
		assert_string_equal(S.method, methods[i]);
		_cleanup_free_ char *cl = seen_header("Content-Length");
		_cleanup_free_ char *te = seen_header("Transfer-Encoding");
		if (!cl)
			fail_msg("%s with no body sent no Content-Length", methods[i]);
		assert_string_equal(cl, "0");
		assert_null(te);
		plait_http_resp_release(&resp);
	}
}

static void test_http__perform_delete_sends_method(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/echo");
	struct plait_http_req q = { .method = "DELETE", .url = u };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_string_equal(S.method, "DELETE");
	plait_http_resp_release(&resp);
}

static int tmp_file_with(const char *text)
{
	char path[] = "/tmp/plait-test-http-body-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		fail_msg("mkstemp: %s", strerror(errno));
	unlink(path);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		fail_msg("write: %s", strerror(errno));
	return fd;
}

static void test_http__perform_put_sends_fd_range(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/echo");
	_cleanup_close_ int fd = tmp_file_with("0123456789");
	struct plait_http_req q = { .method = "PATCH", .url = u, .body_from_fd = true,
				    .body_fd = fd, .body_off = 3, .body_len = 4 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_string_equal(S.method, "PATCH");
	assert_string_equal(S.body.buf, "3456");
	plait_http_resp_release(&resp);
}

static void test_http__perform_fd_shorter_than_body_len_fails(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/echo");
	_cleanup_close_ int fd = tmp_file_with("0123456789");
	struct plait_http_req q = { .method = "PUT", .url = u, .body_from_fd = true,
				    .body_fd = fd, .body_off = 0, .body_len = 100 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int r = perform(&q, &resp);
	assert_int_equal(r, -1);
	assert_int_not_equal(resp.curl_code, CURLE_OK);
	assert_contains(resp.errmsg, "shorter");
	plait_http_resp_release(&resp);
}

static void test_http__perform_missing_reason_phrase_comes_from_table(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/noreason");
	struct plait_http_req q = { .method = "GET", .url = u };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 404);
	assert_non_null(resp.reason);
	assert_string_equal(resp.reason, "Not Found");
	plait_http_resp_release(&resp);
}

static void test_http__perform_keeps_server_reason_phrase(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/teapot");
	struct plait_http_req q = { .method = "GET", .url = u };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 418);
	assert_string_equal(resp.reason, "I'm a teapot");
	plait_http_resp_release(&resp);
}

static void test_http__perform_redirect_not_followed_reports_location(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/redirect");
	struct plait_http_req q = { .method = "GET", .url = u };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 307);
	assert_non_null(resp.location);
	assert_string_equal(resp.location, "/ok");
	assert_string_equal(resp.err_body.buf, "moved");
	plait_http_resp_release(&resp);
}

static void test_http__perform_followed_redirect_keeps_final_headers_only(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/redirect");
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_http_req q = { .method = "GET", .url = u, .out = &out, .out_max = 1024,
				    .follow_redirects = true };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 200);
	assert_null(resp.location);
	assert_null(resp.retry_after);
	assert_string_equal(resp.docker_digest, "sha256:0123abcd");
	assert_string_equal(out.buf, OK_BODY);
	assert_string_equal(resp.err_body.buf, "");
	plait_http_resp_release(&resp);
}

static void test_http__perform_redirect_keeps_authorization_on_same_host(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/same");
	const char *const hdrs[] = { "Authorization: Bearer secret", NULL };
	struct plait_http_req q = { .method = "GET", .url = u, .headers = hdrs,
				    .follow_redirects = true };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_string_equal(S.path, "/echo");
	_cleanup_free_ char *auth = seen_header("Authorization");
	assert_non_null(auth);
	assert_string_equal(auth, "Bearer secret");
	plait_http_resp_release(&resp);
}

static void test_http__perform_redirect_drops_authorization_for_other_host(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/cross");
	const char *const hdrs[] = { "Authorization: Bearer secret", NULL };
	struct plait_http_req q = { .method = "GET", .url = u, .headers = hdrs,
				    .follow_redirects = true };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int r = perform(&q, &resp);
	expect_ok(r, &resp);
	assert_int_equal(resp.status, 201);
	assert_string_equal(S.path, "/echo");
	_cleanup_free_ char *host = seen_header("Host");
	assert_non_null(host);
	assert_contains(host, "localhost");
	_cleanup_free_ char *auth = seen_header("Authorization");
	if (auth)
		fail_msg("Authorization '%s' was sent to another host on redirect", auth);
	plait_http_resp_release(&resp);
}

static void test_http__perform_interim_100_headers_are_dropped(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/continue");
	struct plait_http_req q = { .method = "GET", .url = u };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	expect_ok(perform(&q, &resp), &resp);
	assert_int_equal(resp.status, 201);
	assert_string_equal(resp.reason, "Created");
	assert_null(resp.retry_after);
	assert_non_null(resp.location);
	assert_string_equal(resp.location, "/v2/a/blobs/sha256:1");
	plait_http_resp_release(&resp);
}

static void test_http__perform_www_authenticate_prefers_bearer(void **state)
{
	(void)state;
	static const char *const paths[] = { "/chal-basic-first", "/chal-bearer-first" };
	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		_cleanup_free_ char *u = url(paths[i]);
		struct plait_http_req q = { .method = "GET", .url = u };
		struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
		expect_ok(perform(&q, &resp), &resp);
		assert_int_equal(resp.status, 401);
		assert_non_null(resp.www_authenticate);
		if (strncmp(resp.www_authenticate, "Bearer ", 7) != 0)
			fail_msg("%s: expected the Bearer challenge, got '%s'", paths[i],
				 resp.www_authenticate);
		assert_string_equal(resp.www_authenticate,
				    "Bearer realm=\"https://auth/token\",service=\"s\"");
		plait_http_resp_release(&resp);
	}
}

static void test_http__perform_connection_closed_mid_body_is_transport_error(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/short");
	_cleanup_buf_ struct plait_buf out = PLAIT_BUF_INIT;
	struct plait_http_req q = { .method = "GET", .url = u, .out = &out, .out_max = 1024 };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int r = perform(&q, &resp);
	assert_int_equal(r, -1);
	assert_int_equal(resp.curl_code, CURLE_PARTIAL_FILE);
	assert_true(resp.errmsg[0] != '\0');
	assert_false(resp.too_large);
	assert_false(resp.aborted);
	_cleanup_buf_ struct plait_buf d = PLAIT_BUF_INIT;
	plait_http_describe_failure(&resp, &d);
	assert_starts_lowercase(d.buf);
	assert_contains(d.buf, "closed");
	plait_http_resp_release(&resp);
}

static void test_http__perform_connection_closed_without_answer(void **state)
{
	(void)state;
	_cleanup_free_ char *u = url("/nothing");
	struct plait_http_req q = { .method = "GET", .url = u };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int r = perform(&q, &resp);
	assert_int_equal(r, -1);
	assert_int_equal(resp.status, 0);
	assert_int_equal(resp.curl_code, CURLE_GOT_NOTHING);
	_cleanup_buf_ struct plait_buf d = PLAIT_BUF_INIT;
	plait_http_describe_failure(&resp, &d);
	assert_string_equal(d.buf, "the server closed the connection without answering");
	plait_http_resp_release(&resp);
}

static void test_http__perform_connection_refused_sets_os_errno(void **state)
{
	(void)state;
	int port = 0;
	int fd = bound_socket(&port);
	assert_true(fd >= 0);
	close(fd); /* nothing listens there now */
	_cleanup_buf_ struct plait_buf u = PLAIT_BUF_INIT;
	plait_buf_addf(&u, "http://127.0.0.1:%d/v2/", port);
	struct plait_http_req q = { .method = "GET", .url = u.buf };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int r = plait_http_perform(H, &q, &resp);
	assert_int_equal(r, -1);
	assert_int_equal(resp.status, 0);
	assert_int_equal(resp.curl_code, CURLE_COULDNT_CONNECT);
	assert_int_equal(resp.os_errno, ECONNREFUSED);
	assert_true(resp.errmsg[0] != '\0');
	_cleanup_buf_ struct plait_buf d = PLAIT_BUF_INIT;
	plait_http_describe_failure(&resp, &d);
	assert_string_equal(d.buf, "connection refused");
	plait_http_resp_release(&resp);
}

static void test_http__perform_rejects_other_protocols(void **state)
{
	(void)state;
	struct plait_http_req q = { .method = "GET", .url = "file:///etc/passwd" };
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	int r = plait_http_perform(H, &q, &resp);
	assert_int_equal(r, -1);
	assert_int_equal(resp.curl_code, CURLE_UNSUPPORTED_PROTOCOL);
	assert_int_equal(resp.status, 0);
	plait_http_resp_release(&resp);
}

/* Found by tests/fuzz/fuzz_http: curl hands header lines without a NUL; the
 * status code was read with strtol past the end of the line. */
static void test_http__header_line_is_read_within_its_length(void **state)
{
	(void)state;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	const char buf[] = "HTTP/1.1 20" "7 Partial\r\n";
	plait_http_parse_header_line(&resp, buf, strlen("HTTP/1.1 20"));
	assert_int_equal(resp.status, 20);
	const char loc[] = "Location: /v2/x" "yz";
	plait_http_parse_header_line(&resp, loc, strlen("Location: /v2/x"));
	assert_string_equal(resp.location, "/v2/x");
	const char st[] = "HTTP/2 206\r\n";
	plait_http_parse_header_line(&resp, st, strlen(st));
	assert_int_equal(resp.status, 206);
	assert_null(resp.location); /* a new response forgets the headers above */
	plait_http_resp_release(&resp);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_http__resolve_url_absolute_ref_is_kept),
		cmocka_unit_test(test_http__resolve_url_path_absolute_keeps_scheme_host_port),
		cmocka_unit_test(test_http__resolve_url_relative_resolves_against_base_folder),
		cmocka_unit_test(test_http__resolve_url_drops_base_query),
		cmocka_unit_test(test_http__resolve_url_garbage_is_null),
		cmocka_unit_test(test_http__resolve_url_malformed_absolute_ref_is_null),
		cmocka_unit_test(test_http__add_escaped_keeps_unreserved),
		cmocka_unit_test(test_http__add_escaped_encodes_scope_separators),
		cmocka_unit_test(test_http__add_escaped_encodes_reserved_and_space_as_uppercase_hex),
		cmocka_unit_test(test_http__add_escaped_encodes_utf8_bytes),
		cmocka_unit_test(test_http__add_escaped_appends),
		cmocka_unit_test(test_http__reason_known_codes),
		cmocka_unit_test(test_http__reason_unknown_is_empty),
		cmocka_unit_test(test_http__describe_connection_refused),
		cmocka_unit_test(test_http__describe_connect_failure_without_errno_uses_lowercased_errmsg),
		cmocka_unit_test(test_http__describe_timed_out),
		cmocka_unit_test(test_http__describe_tls_verification_failure),
		cmocka_unit_test(test_http__describe_resolve_and_closed_connections),
		cmocka_unit_test(test_http__describe_other_code_without_errmsg_uses_curl_text),
		cmocka_unit_test(test_http__tls_for_host_concatenates_crt_files_in_sorted_order),
		cmocka_unit_test(test_http__tls_for_host_without_host_folder_has_no_ca),
		cmocka_unit_test(test_http__tls_for_host_first_certs_dir_with_host_wins),
		cmocka_unit_test(test_http__tls_for_host_cert_with_key_sets_client_pair),
		cmocka_unit_test(test_http__tls_for_host_cert_without_key_is_usage_error),
	};
	const struct CMUnitTest net[] = {
		cmocka_unit_test(test_http__perform_200_captures_status_headers_and_body),
		cmocka_unit_test(test_http__perform_sends_method_user_agent_and_headers),
		cmocka_unit_test(test_http__perform_503_body_goes_to_err_body_with_retry_after),
		cmocka_unit_test(test_http__perform_error_body_is_capped),
		cmocka_unit_test(test_http__perform_resets_a_reused_resp),
		cmocka_unit_test(test_http__perform_sink_receives_body),
		cmocka_unit_test(test_http__perform_sink_not_called_for_error_status),
		cmocka_unit_test(test_http__perform_sink_failure_aborts),
		cmocka_unit_test(test_http__perform_body_over_out_max_is_too_large),
		cmocka_unit_test(test_http__perform_body_exactly_out_max_fits),
		cmocka_unit_test(test_http__perform_chunked_body_has_no_content_length),
		cmocka_unit_test(test_http__perform_head_reports_length_without_body),
		cmocka_unit_test(test_http__perform_put_sends_memory_body),
		cmocka_unit_test(test_http__perform_empty_post_and_patch_send_content_length_zero),
		cmocka_unit_test(test_http__perform_delete_sends_method),
		cmocka_unit_test(test_http__perform_put_sends_fd_range),
		cmocka_unit_test(test_http__perform_fd_shorter_than_body_len_fails),
		cmocka_unit_test(test_http__perform_missing_reason_phrase_comes_from_table),
		cmocka_unit_test(test_http__perform_keeps_server_reason_phrase),
		cmocka_unit_test(test_http__perform_redirect_not_followed_reports_location),
		cmocka_unit_test(test_http__perform_followed_redirect_keeps_final_headers_only),
		cmocka_unit_test(test_http__perform_redirect_keeps_authorization_on_same_host),
		cmocka_unit_test(test_http__perform_redirect_drops_authorization_for_other_host),
		cmocka_unit_test(test_http__perform_interim_100_headers_are_dropped),
		cmocka_unit_test(test_http__perform_www_authenticate_prefers_bearer),
		cmocka_unit_test(test_http__perform_connection_closed_mid_body_is_transport_error),
		cmocka_unit_test(test_http__perform_connection_closed_without_answer),
		cmocka_unit_test(test_http__perform_connection_refused_sets_os_errno),
		cmocka_unit_test(test_http__perform_rejects_other_protocols),
		cmocka_unit_test(test_http__header_line_is_read_within_its_length),
	};
	int failed = cmocka_run_group_tests_name("http_helpers", pure, NULL, NULL);
	failed += cmocka_run_group_tests_name("http_perform", net, net_setup, net_teardown);
	return failed ? 1 : 0;
}
