/* tests/unit/test_token.c - registry/token.c: WWW-Authenticate challenges, the
 * pure parts of a token request and its answer (token.h), and the auth hook
 * of the request loop against a fake registry and token server on loopback:
 * which requests go out, in which order, with which Authorization header. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asserts.h"
#include "core/buf.h"
#include "registry/auth.h"
#include "registry/registry.h"
#include "registry/token.h"

#include "fake_server.h"
#include "rm_tree.h"

#include "core/banned.h"

/* ------------------------------------------------------------------ challenges */

static void parse_ok(const char *header, struct plait_auth_challenge *c)
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_auth_parse_challenge(header, c, &err) < 0)
		fail_msg("parse '%s': %s", header, err->msg);
}

static void test_token__challenge_docker_hub_bearer(void **state)
{
	(void)state;
	struct plait_auth_challenge c;
	parse_ok("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
		 "scope=\"repository:library/busybox:pull\"",
		 &c);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://auth.docker.io/token");
	assert_string_equal(c.service, "registry.docker.io");
	assert_string_equal(c.scope, "repository:library/busybox:pull");
	assert_null(c.error);
	plait_auth_challenge_release(&c);
	plait_auth_challenge_release(&c);
	plait_auth_challenge_release(NULL);
}

static void test_token__challenge_keeps_multiple_scopes(void **state)
{
	(void)state;
	struct plait_auth_challenge c;
	parse_ok("Bearer realm=\"https://r/token\", scope=\"repository:a:pull "
		 "repository:b:pull,push\", error=\"insufficient_scope\"",
		 &c);
	assert_string_equal(c.scope, "repository:a:pull repository:b:pull,push");
	assert_string_equal(c.error, "insufficient_scope");
	assert_null(c.service);
	plait_auth_challenge_release(&c);

	/* Repeated scope parameters add up. */
	parse_ok("Bearer realm=\"r\",scope=\"repository:a:pull\",scope=\"repository:b:push\"", &c);
	assert_string_equal(c.scope, "repository:a:pull repository:b:push");
	plait_auth_challenge_release(&c);
}

static void test_token__challenge_unescapes_quoted_strings(void **state)
{
	(void)state;
	struct plait_auth_challenge c;
	parse_ok("Bearer realm=\"https://r/t?a=\\\"b\\\"\", service=\"back\\\\slash, comma\"", &c);
	assert_string_equal(c.realm, "https://r/t?a=\"b\"");
	assert_string_equal(c.service, "back\\slash, comma");
	plait_auth_challenge_release(&c);
}

static void test_token__challenge_basic_and_case(void **state)
{
	(void)state;
	struct plait_auth_challenge c;
	parse_ok("Basic realm=\"Registry Realm\"", &c);
	assert_string_equal(c.scheme, "basic");
	assert_string_equal(c.realm, "Registry Realm");
	plait_auth_challenge_release(&c);

	parse_ok("basic", &c);
	assert_string_equal(c.scheme, "basic");
	assert_null(c.realm);
	plait_auth_challenge_release(&c);

	/* Scheme and keys are case-insensitive; token values need no quotes. */
	parse_ok("  BEARER Realm=https://r/token ,SERVICE = reg.example.com", &c);
	assert_string_equal(c.scheme, "bearer");
	assert_string_equal(c.realm, "https://r/token");
	assert_string_equal(c.service, "reg.example.com");
	plait_auth_challenge_release(&c);

	/* Several challenges in one header: the first is taken. */
	parse_ok("Basic realm=\"a\", Bearer realm=\"b\"", &c);
	assert_string_equal(c.scheme, "basic");
	assert_string_equal(c.realm, "a");
	plait_auth_challenge_release(&c);
}

static void test_token__challenge_rejects_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *header;
		const char *why;
	} cases[] = {
	    {"", "missing authentication scheme"},
	    {"   ", "missing authentication scheme"},
	    {"=realm", "missing authentication scheme"},
	    {"Bearer", "needs a realm"},
	    {"Bearer service=\"x\"", "needs a realm"},
	    {"Bearer realm=\"unterminated", "unterminated quoted string"},
	    {"Bearer realm=\"x\\", "unterminated quoted string"},
	    {"Bearer realm", "expected '='"},
	    {"Bearer realm=", "missing parameter value"},
	    {"Bearer =x", "expected a parameter name"},
	    {"Bearer realm=\"a\" service=\"b\"", "expected ','"},
	    {"Bearer, realm=\"a\"", "unexpected character"},
	    {"Bearer realm=\"a\"\"b\"", "expected ','"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct plait_error *err = NULL;
		struct plait_auth_challenge c;
		int r = plait_auth_parse_challenge(cases[i].header, &c, &err);
		if (r >= 0) {
			plait_auth_challenge_release(&c);
			fail_msg("'%s' parsed, expected an error", cases[i].header);
		}
		assert_int_equal(r, -PLAIT_E_INVALID);
		assert_contains(err->msg, "invalid WWW-Authenticate header");
		assert_contains(err->msg, cases[i].why);
		assert_null(c.scheme);
		assert_null(c.realm);
		plait_error_free(err);
	}
}


/* ------------------------------------------------------------------ scopes */

static void check_scope(const char *repo, bool push, const char *from, const char *want)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	token_scope(repo, push, from, &b);
	if (!streq(b.buf, want))
		fail_msg("scope of %s (%s, from %s): got '%s', want '%s'", repo ? repo : "(none)",
			 push ? "push" : "pull", from ? from : "-", b.buf, want);
	plait_buf_release(&b);
}

static void test_token__scope_names_repository_and_access(void **state)
{
	(void)state;
	check_scope("ml/train", false, NULL, "repository:ml/train:pull");
	check_scope("ml/train", true, NULL, "repository:ml/train:pull,push");
	/* a mount also needs pull on its source, unless it is the same repository */
	check_scope("ml/train", true, "ml/base", "repository:ml/train:pull,push repository:ml/base:pull");
	check_scope("ml/train", true, "ml/train", "repository:ml/train:pull,push");
	/* /v2/ itself has no scope */
	check_scope(NULL, false, NULL, "");
}

/* ------------------------------------------------------------------ token requests */

static void test_token__request_is_get_with_service_and_one_param_per_scope(void **state)
{
	(void)state;
	struct token_req t;
	token_req_build("https://auth.example.com/token", "registry.example.com",
			"repository:a/b:pull,push repository:c:pull", NULL, &t);
	assert_string_equal(t.method, "GET");
	assert_string_equal(t.url.buf, "https://auth.example.com/token?service=registry.example.com"
				       "&scope=repository%3Aa%2Fb%3Apull%2Cpush"
				       "&scope=repository%3Ac%3Apull");
	assert_int_equal(t.form.len, 0);
	assert_null(t.auth);
	token_req_release(&t);

	/* a realm with a query already: parameters are added with '&'; no service, no scope */
	token_req_build("https://auth/token?account=x", NULL, "repository:a:pull", NULL, &t);
	assert_string_equal(t.url.buf, "https://auth/token?account=x&scope=repository%3Aa%3Apull");
	token_req_release(&t);
	token_req_build("https://auth/token", NULL, "repository:a:pull  repository:b:pull", NULL, &t);
	assert_string_equal(t.url.buf, "https://auth/token?scope=repository%3Aa%3Apull"
				       "&scope=repository%3Ab%3Apull");
	token_req_release(&t);
	token_req_build("https://auth/token", "", "", NULL, &t);
	assert_string_equal(t.url.buf, "https://auth/token");
	token_req_release(&t);
}

static void test_token__request_sends_basic_credentials(void **state)
{
	(void)state;
	struct plait_credentials c = { .username = "user", .password = "s3cret" };
	struct token_req t;
	token_req_build("https://auth/token", "svc", "repository:a:pull", &c, &t);
	assert_string_equal(t.method, "GET");
	assert_non_null(t.auth);
	assert_string_equal(t.auth, "Authorization: Basic dXNlcjpzM2NyZXQ=");
	token_req_release(&t);
	assert_null(t.auth);

	/* no user name: anonymous */
	struct plait_credentials empty = { .username = "", .password = "x" };
	token_req_build("https://auth/token", "svc", "repository:a:pull", &empty, &t);
	assert_null(t.auth);
	token_req_release(&t);
}

static void test_token__identity_token_uses_the_oauth2_form(void **state)
{
	(void)state;
	struct plait_credentials c = { .username = "user", .identity_token = "rt/+=&x" };
	struct token_req t;
	token_req_build("https://auth/token?a=1", "reg svc", "repository:a:pull repository:b:pull",
			&c, &t);
	assert_string_equal(t.method, "POST");
	assert_string_equal(t.url.buf, "https://auth/token?a=1");
	assert_string_equal(t.form.buf, "grant_type=refresh_token&client_id=plait"
					"&refresh_token=rt%2F%2B%3D%26x&service=reg%20svc"
					"&scope=repository%3Aa%3Apull%20repository%3Ab%3Apull");
	assert_null(t.auth);
	token_req_release(&t);
}

static void test_token__realm_must_be_http_url_and_keep_credentials_off_plain_http(void **state)
{
	(void)state;
	char *const insecure[] = { "auth.insecure.example", NULL };
	static const char *const bad[] = { "/token", "ftp://auth/token", "https://", "auth/token" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_error_ struct plait_error *err = NULL;
		char *host = NULL;
		bool ins = false;
		int r = token_check_realm("reg.example", bad[i], insecure, false, &host, &ins, &err);
		if (r >= 0)
			fail_msg("realm '%s' accepted", bad[i]);
		assert_int_equal(r, -PLAIT_E_GENERIC);
		assert_null(host);
		assert_contains(err->msg, "registry reg.example names an invalid token server");
	}

	_cleanup_error_ struct plait_error *err = NULL;
	char *host = NULL;
	bool ins = false;
	assert_int_equal(token_check_realm("reg.example", "http://auth.example.com/token", insecure,
					   true, &host, &ins, &err),
			 -PLAIT_E_AUTH);
	assert_string_equal(err->msg,
			    "registry reg.example sends credentials to token server "
			    "'http://auth.example.com/token' over plain HTTP: refusing; list "
			    "'auth.example.com' as an insecure registry if this is intended");
	assert_null(host);

	/* fine: no credentials, a loopback server, an insecure one (any port), TLS */
	static const struct {
		const char *realm;
		bool creds;
		const char *host;
		bool insecure;
	} ok[] = {
		{ "http://auth.example.com/token", false, "auth.example.com", false },
		{ "http://127.0.0.1:5001/token", true, "127.0.0.1:5001", false },
		{ "http://auth.insecure.example:8080/t", true, "auth.insecure.example:8080", true },
		{ "https://user@auth.example.com/t?x=1", true, "auth.example.com", false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		_cleanup_error_ struct plait_error *e = NULL;
		_cleanup_free_ char *h = NULL;
		ins = !ok[i].insecure;
		if (token_check_realm("reg.example", ok[i].realm, insecure, ok[i].creds, &h, &ins,
				      &e) < 0)
			fail_msg("realm '%s' refused: %s", ok[i].realm, e->msg);
		assert_string_equal(h, ok[i].host);
		assert_int_equal(ins, ok[i].insecure);
	}
}

/* ------------------------------------------------------------------ token answers */

static uint64_t parse_ok_answer(const char *json, const char *want_header)
{
	struct plait_buf body = PLAIT_BUF_INIT;
	plait_buf_adds(&body, json);
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *header = NULL;
	uint64_t until = 0;
	if (token_parse_answer("reg", "https://auth/token", &body, 1000, &header, &until, &err) < 0)
		fail_msg("answer '%s' refused: %s", json, err->msg);
	assert_string_equal(header, want_header);
	plait_buf_release(&body);
	return until - 1000;
}

#define S_NS 1000000000ULL

static void test_token__answer_token_and_its_lifetime(void **state)
{
	(void)state;
	/* "token" wins over "access_token"; kept 30 s less than expires_in */
	assert_int_equal(parse_ok_answer("{\"token\":\"T1\",\"access_token\":\"A\",\"expires_in\":300}",
					 "Authorization: Bearer T1"),
			 270 * S_NS);
	assert_int_equal(parse_ok_answer("{\"token\":\"\",\"access_token\":\"A2\"}",
					 "Authorization: Bearer A2"),
			 30 * S_NS); /* default 60 s */
	/* short lifetimes lose half, not 30 s */
	assert_int_equal(parse_ok_answer("{\"token\":\"T\",\"expires_in\":10}", "Authorization: Bearer T"),
			 5 * S_NS);
	assert_int_equal(parse_ok_answer("{\"token\":\"T\",\"expires_in\":1}", "Authorization: Bearer T"),
			 1 * S_NS);
	/* nonsense lifetimes are the default; issued_at is not looked at */
	assert_int_equal(parse_ok_answer("{\"token\":\"T\",\"expires_in\":-5,\"issued_at\":\"2000-01-01T00:00:00Z\"}",
					 "Authorization: Bearer T"),
			 30 * S_NS);
	assert_int_equal(parse_ok_answer("{\"token\":\"T\",\"expires_in\":\"600\"}", "Authorization: Bearer T"),
			 30 * S_NS);
}

static void test_token__answer_without_token_names_server_and_registry(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		const char *msg;
	} cases[] = {
		{ "{\"expires_in\":300}",
		  "token server 'https://auth/token' for registry reg answered without a token" },
		{ "{\"token\":5}",
		  "token server 'https://auth/token' for registry reg answered without a token" },
		{ "<html>", "token server 'https://auth/token' for registry reg answered without a "
			    "token: invalid JSON: " },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct plait_buf body = PLAIT_BUF_INIT;
		plait_buf_adds(&body, cases[i].body);
		_cleanup_error_ struct plait_error *err = NULL;
		char *header = NULL;
		uint64_t until = 0;
		assert_int_equal(token_parse_answer("reg", "https://auth/token", &body, 0, &header,
						    &until, &err),
				 -PLAIT_E_INVALID);
		assert_null(header);
		assert_contains(err->msg, cases[i].msg);
		plait_buf_release(&body);
	}
}

/* ------------------------------------------------------------------ a fake registry and token server */

/* What the fake answers. */
enum mode {
	M_BEARER,        /* registry wants "Bearer T1"; token server gives T1 */
	M_TOKEN_REFUSED, /* token server answers 401 with a challenge of its own */
	M_TOKEN_WRONG,   /* token server gives T0, which the registry never accepts */
	M_BASIC,         /* registry wants Basic u:p */
	M_FORBIDDEN,     /* registry answers 403 to anything with a token */
};

struct fake {
	struct fake_server fs;
	pthread_mutex_t lock;
	enum mode mode;
	int n_tokens;         /* token requests so far */
	struct plait_buf log; /* "<METHOD> <path> <Authorization or ->\n" per request */
	char dir[64];         /* the docker config dir */
	char host[32];        /* "127.0.0.1:<port>" */
};

static struct fake F;

static void respond(int fd, const char *status, const char *headers, const char *body)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		       status, headers, strlen(body), body);
	send_all(fd, b.buf, b.len);
	plait_buf_release(&b);
}

/* Answer the request whose head is in. */
static void answer(int fd, const char *in)
{
	char method[16] = "", path[512] = "";
	if (sscanf(in, "%15s %511s", method, path) != 2)
		return;
	const char *eol = strstr(in, "\r\n");
	_cleanup_free_ char *auth = eol ? header_value(eol + 2, "Authorization") : NULL;
	pthread_mutex_lock(&F.lock);
	plait_buf_addf(&F.log, "%s %s %s\n", method, path, auth ? auth : "-");
	enum mode mode = F.mode;
	pthread_mutex_unlock(&F.lock);

	char chal[256];
	if (mode == M_BASIC)
		snprintf(chal, sizeof(chal), "WWW-Authenticate: Basic realm=\"fake\"\r\n");
	else
		snprintf(chal, sizeof(chal),
			 "WWW-Authenticate: Bearer realm=\"http://%s/token\",service=\"svc\"\r\n",
			 F.host);
	if (startswith(path, "/token")) {
		/* a client that keeps asking is stopped, so the test fails instead of hanging */
		pthread_mutex_lock(&F.lock);
		bool too_many = ++F.n_tokens > 3;
		pthread_mutex_unlock(&F.lock);
		if (mode == M_TOKEN_REFUSED || too_many)
			respond(fd, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"tokens\"\r\n",
				"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
		else
			respond(fd, "200 OK", "Content-Type: application/json\r\n",
				mode == M_TOKEN_WRONG ? "{\"token\":\"T0\",\"expires_in\":300}"
						      : "{\"token\":\"T1\",\"expires_in\":300}");
		return;
	}
	const char *good = mode == M_BASIC ? "Basic dTpw" : "Bearer T1";
	if (mode == M_FORBIDDEN && auth && streq(auth, good))
		respond(fd, "403 Forbidden", "Content-Type: application/json\r\n",
			"{\"errors\":[{\"code\":\"DENIED\",\"message\":\"no pull for you\"}]}");
	else if (auth && streq(auth, good))
		respond(fd, "200 OK", "Content-Type: application/octet-stream\r\n", "");
	else
		respond(fd, "401 Unauthorized", chal, "");
}

static void serve_one(int fd)
{
	struct plait_buf in = PLAIT_BUF_INIT;
	char tmp[4096];
	while (!memmem(in.buf, in.len, "\r\n\r\n", 4)) {
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n <= 0 || (in.len == 0 && tmp[0] == 0x16)) { /* gone, or a TLS hello */
			plait_buf_release(&in);
			return;
		}
		plait_buf_add(&in, tmp, (size_t)n);
	}
	answer(fd, in.buf);
	plait_buf_release(&in);
}

static int fake_setup(void **state)
{
	(void)state;
	F = (struct fake){ .log = PLAIT_BUF_INIT };
	pthread_mutex_init(&F.lock, NULL);
	snprintf(F.dir, sizeof(F.dir), "/tmp/plait-token-XXXXXX");
	if (!mkdtemp(F.dir) || fake_server_start(&F.fs, serve_one) < 0)
		return -1;
	snprintf(F.host, sizeof(F.host), "127.0.0.1:%d", F.fs.port);
	return 0;
}

static int fake_teardown(void **state)
{
	(void)state;
	fake_server_stop(&F.fs);
	rm_tree(F.dir);
	plait_buf_release(&F.log);
	pthread_mutex_destroy(&F.lock);
	return 0;
}

static struct plait_registry *fake_client(enum mode mode)
{
	F.mode = mode;
	struct plait_registry_opts o = { .docker_config_dir = F.dir, .max_tries = 2,
					 .backoff_base_ms = 1 };
	struct plait_registry *r = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_registry_new(F.host, &o, &r, &err) < 0)
		fail_msg("client for %s: %s", F.host, err->msg);
	return r;
}

#define DIGEST "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define BLOB_A "HEAD /v2/a/blobs/" DIGEST
#define BLOB_B "HEAD /v2/b/blobs/" DIGEST
/* the scheme probe: https (refused by the fake), then plain http */
#define PROBE "GET /v2/ -\n"

/* The requests the fake saw since the last call, as one string (caller frees). */
static char *take_log(void)
{
	pthread_mutex_lock(&F.lock);
	char *s = plait_buf_detach(&F.log, NULL);
	F.log = (struct plait_buf)PLAIT_BUF_INIT;
	pthread_mutex_unlock(&F.lock);
	return s;
}

static void expect_log(const char *what, const char *want)
{
	_cleanup_free_ char *got = take_log();
	if (!streq(got, want))
		fail_msg("%s: the fake saw\n%s\ninstead of\n%s", what, got, want);
}

static int has_blob(struct plait_registry *r, const char *repo, struct plait_error **err)
{
	return plait_registry_has_blob(r, repo, DIGEST, NULL, err);
}

static void test_token__bearer_challenge_is_answered_then_tokens_are_reused(void **state)
{
	(void)state;
	struct plait_registry *r = fake_client(M_BEARER);
	_cleanup_error_ struct plait_error *err = NULL;
	if (has_blob(r, "a", &err) != 1)
		fail_msg("has_blob: %s", err ? err->msg : "0");
	expect_log("first request",
		   PROBE BLOB_A " -\n"
			 "GET /token?service=svc&scope=repository%3Aa%3Apull -\n" BLOB_A " Bearer T1\n");
	/* the token for the scope is reused */
	assert_int_equal(has_blob(r, "a", &err), 1);
	expect_log("same scope again", BLOB_A " Bearer T1\n");
	/* a new scope gets its token before the first try: no anonymous 401 */
	assert_int_equal(has_blob(r, "b", &err), 1);
	expect_log("new scope", "GET /token?service=svc&scope=repository%3Ab%3Apull -\n" BLOB_B
				" Bearer T1\n");
	plait_registry_free(r);
}

static void test_token__token_server_refusal_is_an_answer_not_a_challenge(void **state)
{
	(void)state;
	struct plait_registry *r = fake_client(M_TOKEN_REFUSED);
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(has_blob(r, "a", &err), -PLAIT_E_AUTH);
	/* one token request, whose 401 (and its challenge) ends the request */
	expect_log("refused token",
		   PROBE BLOB_A " -\nGET /token?service=svc&scope=repository%3Aa%3Apull -\n");
	_cleanup_free_ char *want = NULL;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b,
		       "token server 'http://%s/token': authentication required by registry %s for "
		       "repository 'a' (pull): run 'plait login %s'",
		       F.host, F.host, F.host);
	want = plait_buf_detach(&b, NULL);
	assert_contains(err->msg, want);
	plait_registry_free(r);
}

static void test_token__challenge_is_answered_once_per_request(void **state)
{
	(void)state;
	struct plait_registry *r = fake_client(M_TOKEN_WRONG);
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(has_blob(r, "a", &err), -PLAIT_E_AUTH);
	expect_log("token not accepted",
		   PROBE BLOB_A " -\nGET /token?service=svc&scope=repository%3Aa%3Apull -\n" BLOB_A
			 " Bearer T0\n");
	assert_contains(err->msg, "authentication required by registry 127.0.0.1:");
	assert_contains(err->msg, "for repository 'a' (pull): run 'plait login 127.0.0.1:");
	plait_registry_free(r);
}

static void test_token__basic_challenge_sends_stored_credentials_from_then_on(void **state)
{
	(void)state;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "{\"auths\":{\"%s\":{\"auth\":\"dTpw\"}}}", F.host); /* u:p */
	struct plait_credentials c = { 0 };
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_free_ char *path = NULL;
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/config.json", F.dir);
	path = plait_buf_detach(&p, NULL);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, b.buf, b.len), 0);
	close(fd);
	plait_buf_release(&b);
	assert_int_equal(plait_auth_lookup(F.dir, F.host, &c, &err), 1);
	plait_credentials_release(&c);

	struct plait_registry *r = fake_client(M_BASIC);
	assert_int_equal(has_blob(r, "a", &err), 1);
	expect_log("basic", PROBE BLOB_A " -\n" BLOB_A " Basic dTpw\n");
	assert_int_equal(has_blob(r, "b", &err), 1);
	expect_log("basic again", BLOB_B " Basic dTpw\n");
	plait_registry_free(r);
	unlink(path);
}

static void test_token__forbidden_names_repository_access_and_registry_message(void **state)
{
	(void)state;
	struct plait_registry *r = fake_client(M_FORBIDDEN);
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_buf body = PLAIT_BUF_INIT;
	assert_int_equal(plait_registry_get_manifest(r, "a", "latest", &body, NULL, NULL, &err),
			 -PLAIT_E_AUTH);
	assert_int_equal(body.len, 0);
	plait_buf_release(&body);
	/* 403 is not retried */
	expect_log("forbidden", PROBE "GET /v2/a/manifests/latest -\n"
				"GET /token?service=svc&scope=repository%3Aa%3Apull -\n"
				"GET /v2/a/manifests/latest Bearer T1\n");
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b,
		       "registry %s refused pull access to repository 'a': 403 Forbidden: no pull "
		       "for you: check the account has pull access",
		       F.host);
	assert_contains(err->msg, b.buf);
	plait_buf_release(&b);
	plait_registry_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token__challenge_docker_hub_bearer),
	    cmocka_unit_test(test_token__challenge_keeps_multiple_scopes),
	    cmocka_unit_test(test_token__challenge_unescapes_quoted_strings),
	    cmocka_unit_test(test_token__challenge_basic_and_case),
	    cmocka_unit_test(test_token__challenge_rejects_malformed),
	    cmocka_unit_test(test_token__scope_names_repository_and_access),
	    cmocka_unit_test(test_token__request_is_get_with_service_and_one_param_per_scope),
	    cmocka_unit_test(test_token__request_sends_basic_credentials),
	    cmocka_unit_test(test_token__identity_token_uses_the_oauth2_form),
	    cmocka_unit_test(test_token__realm_must_be_http_url_and_keep_credentials_off_plain_http),
	    cmocka_unit_test(test_token__answer_token_and_its_lifetime),
	    cmocka_unit_test(test_token__answer_without_token_names_server_and_registry),
#define T(name) cmocka_unit_test_setup_teardown(name, fake_setup, fake_teardown)
	    T(test_token__bearer_challenge_is_answered_then_tokens_are_reused),
	    T(test_token__token_server_refusal_is_an_answer_not_a_challenge),
	    T(test_token__challenge_is_answered_once_per_request),
	    T(test_token__basic_challenge_sends_stored_credentials_from_then_on),
	    T(test_token__forbidden_names_repository_access_and_registry_message),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
