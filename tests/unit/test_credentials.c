/* tests/unit/test_credentials.c - registry/credentials.c: docker config.json
 * lookup, store and erase, and the credential helper protocol (auth.h).
 * WWW-Authenticate challenges are tested in test_token.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>

#include "asserts.h"
#include "rm_tree.h"
#include "core/buf.h"
#include "registry/auth.h"

#include "core/banned.h"

static void assert_not_contains(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle))
		fail_msg("'%s' must not contain '%s'", haystack, needle);
}

/* obj[key] as a string, or "(missing)" so a failed assert says so instead of crashing. */
static const char *member_str(json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v ? v : "(missing)";
}

/* ---- a temporary DOCKER_CONFIG ------------------------------------------- */

struct fixture {
	char root[64];
	char *dir; /* root/docker */
	char *bin; /* root/bin, for the credential helper */
	char *store;
	char *old_path;
};

static char *join(const char *a, const char *b)
{
	struct plait_buf buf = PLAIT_BUF_INIT;
	plait_buf_addf(&buf, "%s/%s", a, b);
	return plait_buf_detach(&buf, NULL);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		fail_msg("cannot create '%s': %s", path, strerror(errno));
	assert_int_equal(plait_write_all(fd, text, strlen(text)), 0);
	close(fd);
}

static char *read_text(const char *path)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	if (plait_buf_read_file(&b, path, 1 << 20) < 0)
		fail_msg("cannot read '%s'", path);
	return plait_buf_detach(&b, NULL);
}

static json_t *read_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (!j)
		fail_msg("'%s' is not JSON: %s", path, je.text);
	return j;
}

static const char helper_script[] =
    "#!/bin/sh\n"
    "# docker-credential-plaittest: keeps one file per server in $PLAITTEST_STORE\n"
    "set -u\n"
    "key() { printf '%s' \"$1\" | tr '/:' '__'; }\n"
    "case \"$1\" in\n"
    "get|erase)\n"
    "  server=$(cat)\n"
    "  case \"$server\" in *broken*) echo 'keychain is locked' >&2; exit 3;; esac\n"
    "  f=\"$PLAITTEST_STORE/$(key \"$server\")\"\n"
    "  if [ ! -f \"$f\" ]; then echo 'credentials not found in native keychain'; exit 1; fi\n"
    "  if [ \"$1\" = get ]; then cat \"$f\"; else rm -f \"$f\"; fi\n"
    "  ;;\n"
    "store)\n"
    "  req=$(cat)\n"
    "  server=$(printf '%s' \"$req\" | sed -n 's/.*\"ServerURL\":\"\\([^\"]*\\)\".*/\\1/p')\n"
    "  case \"$server\" in *broken*) echo \"cannot store $req\"; exit 4;; esac\n"
    "  printf '%s' \"$req\" > \"$PLAITTEST_STORE/$(key \"$server\")\"\n"
    "  ;;\n"
    "*) echo \"unknown action $1\" >&2; exit 2;;\n"
    "esac\n";

static int fixture_setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/plait-auth-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (b.len >= sizeof(f->root))
		fail_msg("TMPDIR too long");
	memcpy(f->root, b.buf, b.len + 1);
	plait_buf_release(&b);
	if (!mkdtemp(f->root))
		fail_msg("mkdtemp: %s", strerror(errno));
	f->dir = join(f->root, "docker");
	f->bin = join(f->root, "bin");
	f->store = join(f->root, "store");
	assert_int_equal(mkdir(f->bin, 0700), 0);
	assert_int_equal(mkdir(f->store, 0700), 0);
	_cleanup_free_ char *script = join(f->bin, "docker-credential-plaittest");
	write_file(script, helper_script, 0755);

	const char *path = getenv("PATH");
	f->old_path = xstrdup(path ? path : "/usr/bin:/bin");
	plait_buf_addf(&b, "%s:%s", f->bin, f->old_path);
	setenv("PATH", b.buf, 1);
	plait_buf_release(&b);
	setenv("PLAITTEST_STORE", f->store, 1);
	unsetenv("DOCKER_CONFIG");
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;
	setenv("PATH", f->old_path, 1);
	unsetenv("DOCKER_CONFIG");
	rm_tree(f->root);
	free(f->dir);
	free(f->bin);
	free(f->store);
	free(f->old_path);
	free(f);
	return 0;
}

/* Write dir/config.json (creating dir). */
static void write_config(struct fixture *f, const char *json)
{
	mkdir(f->dir, 0700);
	_cleanup_free_ char *path = join(f->dir, "config.json");
	write_file(path, json, 0600);
}

static int lookup(struct fixture *f, const char *host, struct plait_credentials *c)
{
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_auth_lookup(f->dir, host, c, &err);
	if (r < 0)
		fail_msg("lookup '%s': %s", host, err->msg);
	return r;
}

/* base64("user:s3cret") */
#define USER_SECRET_B64 "dXNlcjpzM2NyZXQ="

/* ---- lookup ------------------------------------------------------------------- */

static void test_credentials__lookup_missing_file_means_no_credentials(void **state)
{
	struct fixture *f = *state;
	struct plait_credentials c;
	assert_int_equal(lookup(f, "registry.example.com", &c), 0);
	assert_null(c.username);
	mkdir(f->dir, 0700);
	assert_int_equal(lookup(f, "registry.example.com", &c), 0);
	write_config(f, "");
	assert_int_equal(lookup(f, "registry.example.com", &c), 0);
}

static void test_credentials__lookup_matches_host_spellings(void **state)
{
	struct fixture *f = *state;
	write_config(f,
		     "{\"auths\": {"
		     "\"bare.example.com\": {\"auth\": \"" USER_SECRET_B64 "\"},"
		     "\"https://url.example.com\": {\"auth\": \"" USER_SECRET_B64 "\"},"
		     "\"http://plain.example.com:5000/v2/\": {\"auth\": \"" USER_SECRET_B64 "\"},"
		     "\"https://index.docker.io/v1/\": {\"auth\": \"aHViOmh1YnBhc3M=\"}"
		     "}}");
	static const char *const hosts[] = {
	    "bare.example.com", "https://bare.example.com/", "url.example.com",
	    "URL.example.com",	"plain.example.com:5000",
	};
	for (size_t i = 0; i < ARRAY_SIZE(hosts); i++) {
		struct plait_credentials c;
		if (lookup(f, hosts[i], &c) != 1)
			fail_msg("no credentials found for '%s'", hosts[i]);
		assert_string_equal(c.username, "user");
		assert_string_equal(c.password, "s3cret");
		assert_null(c.identity_token);
		plait_credentials_release(&c);
	}
	static const char *const hub[] = {"docker.io", "index.docker.io", "registry-1.docker.io"};
	for (size_t i = 0; i < ARRAY_SIZE(hub); i++) {
		struct plait_credentials c;
		if (lookup(f, hub[i], &c) != 1)
			fail_msg("no credentials found for '%s'", hub[i]);
		assert_string_equal(c.username, "hub");
		assert_string_equal(c.password, "hubpass");
		plait_credentials_release(&c);
	}
	struct plait_credentials c;
	assert_int_equal(lookup(f, "other.example.com", &c), 0);
	assert_int_equal(lookup(f, "plain.example.com", &c), 0);
	plait_credentials_release(NULL);
}

static void test_credentials__lookup_reads_identity_token(void **state)
{
	struct fixture *f = *state;
	/* base64("user:") as docker writes it next to an identity token. */
	write_config(f, "{\"auths\": {\"tok.example.com\": {\"auth\": \"dXNlcjo=\","
			"\"identitytoken\": \"refresh-token-123\"}}}");
	struct plait_credentials c;
	assert_int_equal(lookup(f, "tok.example.com", &c), 1);
	assert_string_equal(c.username, "user");
	assert_null(c.password);
	assert_string_equal(c.identity_token, "refresh-token-123");
	plait_credentials_release(&c);
}

static void test_credentials__lookup_decodes_auth_padding(void **state)
{
	struct fixture *f = *state;
	/* "a:b" (no padding), "ab:cd" (one '='), "a:bcd" written without its '='. */
	write_config(f, "{\"auths\": {\"one.example.com\": {\"auth\": \"YTpi\"},"
			"\"two.example.com\": {\"auth\": \"YWI6Y2Q=\"},"
			"\"three.example.com\": {\"auth\": \"YTpiY2Q\"},"
			"\"empty.example.com\": {},"
			"\"colon.example.com\": {\"auth\": \"Og==\"}}}");
	static const struct {
		const char *host, *user, *pass;
	} cases[] = {
	    {"one.example.com", "a", "b"},
	    {"two.example.com", "ab", "cd"},
	    {"three.example.com", "a", "bcd"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct plait_credentials c;
		assert_int_equal(lookup(f, cases[i].host, &c), 1);
		assert_string_equal(c.username, cases[i].user);
		assert_string_equal(c.password, cases[i].pass);
		plait_credentials_release(&c);
	}
	struct plait_credentials c;
	assert_int_equal(lookup(f, "empty.example.com", &c), 0);
	assert_int_equal(lookup(f, "colon.example.com", &c), 0);
}

static void test_credentials__lookup_rejects_bad_auth_without_leaking_it(void **state)
{
	struct fixture *f = *state;
	/* base64("nocolonsecret") and a non-base64 string. */
	write_config(f, "{\"auths\": {\"a.example.com\": {\"auth\": \"bm9jb2xvbnNlY3JldA==\"},"
			"\"b.example.com\": {\"auth\": \"%%%secret%%%\"}}}");
	static const char *const hosts[] = {"a.example.com", "b.example.com"};
	for (size_t i = 0; i < ARRAY_SIZE(hosts); i++) {
		_cleanup_error_ struct plait_error *err = NULL;
		struct plait_credentials c;
		assert_int_equal(plait_auth_lookup(f->dir, hosts[i], &c, &err), -PLAIT_E_INVALID);
		assert_contains(err->msg, "config.json");
		assert_contains(err->msg, hosts[i]);
		assert_not_contains(err->msg, "secret");
		assert_not_contains(err->msg, "bm9jb2xvbnNlY3JldA");
		assert_null(c.username);
	}
}

static void test_credentials__lookup_malformed_json_names_file_and_line(void **state)
{
	struct fixture *f = *state;
	write_config(
	    f, "{\n  \"auths\": {\n    \"x.example.com\": {\"auth\": \"c2VjcmV0OnNlY3JldA==\" "
	       "\"oops\"}\n  }\n}\n");
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_credentials c;
	assert_int_equal(plait_auth_lookup(f->dir, "x.example.com", &c, &err), -PLAIT_E_INVALID);
	_cleanup_free_ char *path = join(f->dir, "config.json");
	assert_contains(err->msg, path);
	assert_contains(err->msg, "line 3");
	assert_not_contains(err->msg, "c2VjcmV0");
	assert_not_contains(err->msg, "oops");

	write_config(f, "[1, 2]");
	assert_int_equal(plait_auth_lookup(f->dir, "x.example.com", &c, &err), -PLAIT_E_INVALID);
	assert_contains(err->msg, "expected a JSON object");
	write_config(f, "{\"auths\": []}");
	assert_int_equal(plait_auth_lookup(f->dir, "x.example.com", &c, &err), -PLAIT_E_INVALID);
	assert_contains(err->msg, "'auths' is not an object");
}

static void test_credentials__config_dir_order(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *a = plait_auth_config_dir("/explicit");
	assert_string_equal(a, "/explicit");
	setenv("DOCKER_CONFIG", f->dir, 1);
	_cleanup_free_ char *b = plait_auth_config_dir(NULL);
	assert_string_equal(b, f->dir);
	_cleanup_free_ char *c = plait_auth_config_dir("/explicit");
	assert_string_equal(c, "/explicit");
	unsetenv("DOCKER_CONFIG");
	const char *home = getenv("HOME");
	if (home && *home) {
		_cleanup_free_ char *d = plait_auth_config_dir(NULL);
		_cleanup_free_ char *want = join(home, ".docker");
		assert_string_equal(d, want);
	}

	/* Lookup with a NULL config_dir reads $DOCKER_CONFIG. */
	write_config(f, "{\"auths\": {\"env.example.com\": {\"auth\": \"" USER_SECRET_B64 "\"}}}");
	setenv("DOCKER_CONFIG", f->dir, 1);
	struct plait_credentials cr;
	assert_int_equal(plait_auth_lookup(NULL, "env.example.com", &cr, NULL), 1);
	plait_credentials_release(&cr);
	unsetenv("DOCKER_CONFIG");
}

/* ---- store and erase ---------------------------------------------------------- */

static void assert_mode(const char *path, mode_t want)
{
	struct stat st;
	if (stat(path, &st) < 0)
		fail_msg("stat '%s': %s", path, strerror(errno));
	if ((st.st_mode & 07777) != want)
		fail_msg("'%s' has mode %04o, want %04o", path, st.st_mode & 07777, want);
}

static void store(struct fixture *f, const char *host, const char *user, const char *pass,
		  const char *token)
{
	struct plait_credentials c = {
	    .username = (char *)user, .password = (char *)pass, .identity_token = (char *)token};
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_auth_store(f->dir, host, &c, &err) < 0)
		fail_msg("store '%s': %s", host, err->msg);
}

static int erase(struct fixture *f, const char *host)
{
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_auth_erase(f->dir, host, &err);
	if (r < 0)
		fail_msg("erase '%s': %s", host, err->msg);
	return r;
}

static void test_credentials__store_creates_private_config(void **state)
{
	struct fixture *f = *state;
	/* The directory does not exist yet. */
	store(f, "registry.example.com", "user", "s3cret", NULL);
	_cleanup_free_ char *path = join(f->dir, "config.json");
	assert_mode(f->dir, 0700);
	assert_mode(path, 0600);
	json_auto_t *j = read_json(path);
	json_t *entry = json_object_get(json_object_get(j, "auths"), "registry.example.com");
	assert_string_equal(member_str(entry, "auth"), USER_SECRET_B64);
	struct plait_credentials c;
	assert_int_equal(lookup(f, "registry.example.com", &c), 1);
	assert_string_equal(c.username, "user");
	assert_string_equal(c.password, "s3cret");
	plait_credentials_release(&c);
}

static void test_credentials__store_and_erase_keep_other_members(void **state)
{
	struct fixture *f = *state;
	static const char original[] =
	    "{\"auths\": {\"keep.example.com\": {\"auth\": \"a2VlcDprZWVw\"},"
	    "\"https://registry.example.com\": {\"auth\": \"b2xkOm9sZA==\"}},"
	    "\"proxies\": {\"default\": {\"httpProxy\": \"http://proxy:3128\","
	    "\"noProxy\": \"localhost,127.0.0.1\"}},"
	    "\"credHelpers\": {\"gcr.io\": \"gcloud\"},"
	    "\"psFormat\": \"table {{.ID}}\", \"experimental\": true, \"n\": 42}";
	write_config(f, original);
	_cleanup_free_ char *path = join(f->dir, "config.json");
	chmod(path, 0644);

	store(f, "registry.example.com", "new", "newpass", NULL);
	assert_mode(path, 0600);
	json_auto_t *before = json_loads(original, 0, NULL);
	json_auto_t *after = read_json(path);
	static const char *const kept[] = {"proxies", "credHelpers", "psFormat", "experimental",
					   "n"};
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
		if (!json_equal(json_object_get(before, kept[i]), json_object_get(after, kept[i])))
			fail_msg("member '%s' changed by store", kept[i]);
	json_t *auths = json_object_get(after, "auths");
	assert_true(
	    json_equal(json_object_get(auths, "keep.example.com"),
		       json_object_get(json_object_get(before, "auths"), "keep.example.com")));
	/* The old spelling of the same registry is replaced, not duplicated. */
	assert_null(json_object_get(auths, "https://registry.example.com"));
	assert_int_equal(json_object_size(auths), 2);
	struct plait_credentials c;
	assert_int_equal(lookup(f, "registry.example.com", &c), 1);
	assert_string_equal(c.username, "new");
	assert_string_equal(c.password, "newpass");
	plait_credentials_release(&c);

	assert_int_equal(erase(f, "registry.example.com"), 1);
	assert_int_equal(lookup(f, "registry.example.com", &c), 0);
	assert_int_equal(erase(f, "registry.example.com"), 0);
	json_auto_t *erased = read_json(path);
	for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
		if (!json_equal(json_object_get(before, kept[i]), json_object_get(erased, kept[i])))
			fail_msg("member '%s' changed by erase", kept[i]);
	assert_int_equal(json_object_size(json_object_get(erased, "auths")), 1);
	assert_mode(path, 0600);
	assert_int_equal(lookup(f, "keep.example.com", &c), 1);
	plait_credentials_release(&c);
}

static void test_credentials__store_docker_hub_under_index_url(void **state)
{
	struct fixture *f = *state;
	write_config(f, "{\"auths\": {\"docker.io\": {\"auth\": \"b2xkOm9sZA==\"}}}");
	store(f, "docker.io", "hubuser", "hubpass", NULL);
	_cleanup_free_ char *path = join(f->dir, "config.json");
	json_auto_t *j = read_json(path);
	json_t *auths = json_object_get(j, "auths");
	assert_non_null(json_object_get(auths, "https://index.docker.io/v1/"));
	assert_null(json_object_get(auths, "docker.io"));
	assert_int_equal(json_object_size(auths), 1);
	struct plait_credentials c;
	assert_int_equal(lookup(f, "registry-1.docker.io", &c), 1);
	assert_string_equal(c.username, "hubuser");
	plait_credentials_release(&c);
	assert_int_equal(erase(f, "index.docker.io"), 1);
	assert_int_equal(lookup(f, "docker.io", &c), 0);
}

static void test_credentials__store_identity_token(void **state)
{
	struct fixture *f = *state;
	store(f, "tok.example.com", "user", NULL, "refresh-abc");
	_cleanup_free_ char *path = join(f->dir, "config.json");
	json_auto_t *j = read_json(path);
	json_t *e = json_object_get(json_object_get(j, "auths"), "tok.example.com");
	assert_string_equal(member_str(e, "identitytoken"), "refresh-abc");
	assert_string_equal(member_str(e, "auth"), "dXNlcjo="); /* base64("user:") */
	struct plait_credentials c;
	assert_int_equal(lookup(f, "tok.example.com", &c), 1);
	assert_string_equal(c.identity_token, "refresh-abc");
	assert_null(c.password);
	plait_credentials_release(&c);
}

static void test_credentials__store_rejects_colon_in_username(void **state)
{
	struct fixture *f = *state;
	struct plait_credentials c = {.username = "a:b", .password = "pw"};
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_auth_store(f->dir, "x.example.com", &c, &err), -PLAIT_E_USAGE);
	assert_not_contains(err->msg, "pw");
	_cleanup_free_ char *path = join(f->dir, "config.json");
	assert_int_equal(access(path, F_OK), -1);
}

static void test_credentials__erase_without_config_is_zero(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(erase(f, "registry.example.com"), 0);
	_cleanup_free_ char *path = join(f->dir, "config.json");
	assert_int_equal(access(path, F_OK), -1);
}

/* ---- credential helpers ------------------------------------------------------- */

static void test_credentials__cred_helper_get_store_erase(void **state)
{
	struct fixture *f = *state;
	static const char cfg[] =
	    "{\"credHelpers\": {\"helped.example.com\": \"plaittest\"},"
	    "\"auths\": {\"plain.example.com\": {\"auth\": \"" USER_SECRET_B64 "\"}}}";
	write_config(f, cfg);
	_cleanup_free_ char *path = join(f->dir, "config.json");
	_cleanup_free_ char *before = read_text(path);

	struct plait_credentials c;
	assert_int_equal(lookup(f, "helped.example.com", &c), 0);

	store(f, "helped.example.com", "huser", "hpass", NULL);
	/* The helper got it: config.json is untouched and the store has a file. */
	_cleanup_free_ char *after = read_text(path);
	assert_string_equal(after, before);
	_cleanup_free_ char *stored = join(f->store, "helped.example.com");
	_cleanup_free_ char *req = read_text(stored);
	assert_contains(req, "\"ServerURL\":\"helped.example.com\"");

	assert_int_equal(lookup(f, "helped.example.com", &c), 1);
	assert_string_equal(c.username, "huser");
	assert_string_equal(c.password, "hpass");
	assert_null(c.identity_token);
	plait_credentials_release(&c);
	/* Hosts without a helper still come from auths. */
	assert_int_equal(lookup(f, "plain.example.com", &c), 1);
	plait_credentials_release(&c);

	assert_int_equal(erase(f, "helped.example.com"), 1);
	assert_int_equal(access(stored, F_OK), -1);
	assert_int_equal(lookup(f, "helped.example.com", &c), 0);
	assert_int_equal(erase(f, "helped.example.com"), 0);
}

static void test_credentials__creds_store_with_identity_token(void **state)
{
	struct fixture *f = *state;
	write_config(f, "{\"credsStore\": \"plaittest\"}");
	store(f, "docker.io", "someone", NULL, "refresh-xyz");
	_cleanup_free_ char *stored = join(f->store, "https___index.docker.io_v1_");
	_cleanup_free_ char *req = read_text(stored);
	assert_contains(req, "\"Username\":\"<token>\"");
	assert_contains(req, "\"ServerURL\":\"https://index.docker.io/v1/\"");

	struct plait_credentials c;
	assert_int_equal(lookup(f, "docker.io", &c), 1);
	assert_null(c.password);
	assert_string_equal(c.identity_token, "refresh-xyz");
	plait_credentials_release(&c);
	assert_int_equal(erase(f, "docker.io"), 1);
}

static void test_credentials__cred_helper_failure_names_helper_not_secret(void **state)
{
	struct fixture *f = *state;
	write_config(f, "{\"credsStore\": \"plaittest\"}");
	struct plait_credentials c;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_true(plait_auth_lookup(f->dir, "broken.example.com", &c, &err) < 0);
	assert_contains(err->msg, "docker-credential-plaittest");
	assert_contains(err->msg, "broken.example.com");
	assert_contains(err->msg, "exit status 3");
	assert_contains(err->msg, "keychain is locked");

	struct plait_credentials s = {.username = "u", .password = "TopSecret-42"};
	assert_true(plait_auth_store(f->dir, "broken.example.com", &s, &err) < 0);
	assert_contains(err->msg, "docker-credential-plaittest");
	assert_contains(err->msg, "exit status 4");
	assert_not_contains(err->msg, "TopSecret-42");

	assert_true(plait_auth_erase(f->dir, "broken.example.com", &err) < 0);
	assert_contains(err->msg, "docker-credential-plaittest");
}

static void test_credentials__missing_cred_helper_is_named(void **state)
{
	struct fixture *f = *state;
	write_config(f, "{\"credsStore\": \"plait-no-such-helper\"}");
	struct plait_credentials c;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_auth_lookup(f->dir, "x.example.com", &c, &err), -PLAIT_E_NOT_FOUND);
	assert_contains(err->msg, "docker-credential-plait-no-such-helper");
	assert_contains(err->msg, "credsStore");

	write_config(f, "{\"credsStore\": \"../../bin/sh\"}");
	assert_int_equal(plait_auth_lookup(f->dir, "x.example.com", &c, &err), -PLAIT_E_INVALID);
	assert_contains(err->msg, "invalid credential helper name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)
	    T(test_credentials__lookup_missing_file_means_no_credentials),
	    T(test_credentials__lookup_matches_host_spellings),
	    T(test_credentials__lookup_reads_identity_token),
	    T(test_credentials__lookup_decodes_auth_padding),
	    T(test_credentials__lookup_rejects_bad_auth_without_leaking_it),
	    T(test_credentials__lookup_malformed_json_names_file_and_line),
	    T(test_credentials__config_dir_order),
	    T(test_credentials__store_creates_private_config),
	    T(test_credentials__store_and_erase_keep_other_members),
	    T(test_credentials__store_docker_hub_under_index_url),
	    T(test_credentials__store_identity_token),
	    T(test_credentials__store_rejects_colon_in_username),
	    T(test_credentials__erase_without_config_is_zero),
	    T(test_credentials__cred_helper_get_store_erase),
	    T(test_credentials__creds_store_with_identity_token),
	    T(test_credentials__cred_helper_failure_names_helper_not_secret),
	    T(test_credentials__missing_cred_helper_is_named),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
