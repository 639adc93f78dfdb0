/* tests/unit/test_ref.c - image reference grammar, normalisation, Docker Hub
 * names and loopback hosts (core/ref.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "asserts.h"
#include "core/buf.h"
#include "core/ref.h"

#include "core/banned.h"

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_ref__parses_valid_references(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		const char *domain, *path, *tag, *digest;
		const char *format;
	} cases[] = {
	    {"busybox", "docker.io", "library/busybox", NULL, NULL, "docker.io/library/busybox"},
	    {"busybox:1.36", "docker.io", "library/busybox", "1.36", NULL,
	     "docker.io/library/busybox:1.36"},
	    {"library/busybox", "docker.io", "library/busybox", NULL, NULL,
	     "docker.io/library/busybox"},
	    {"docker.io/busybox", "docker.io", "library/busybox", NULL, NULL,
	     "docker.io/library/busybox"},
	    {"index.docker.io/busybox", "docker.io", "library/busybox", NULL, NULL,
	     "docker.io/library/busybox"},
	    {"registry-1.docker.io/busybox:musl", "docker.io", "library/busybox", "musl", NULL,
	     "docker.io/library/busybox:musl"},
	    {"docker.io/user/app", "docker.io", "user/app", NULL, NULL, "docker.io/user/app"},
	    {"user/app:v1", "docker.io", "user/app", "v1", NULL, "docker.io/user/app:v1"},
	    {"localhost:5000/a/b:c", "localhost:5000", "a/b", "c", NULL, "localhost:5000/a/b:c"},
	    {"localhost/x", "localhost", "x", NULL, NULL, "localhost/x"},
	    {"localhost:5000", "docker.io", "library/localhost", "5000", NULL,
	     "docker.io/library/localhost:5000"},
	    {"127.0.0.1:5000/x@" D64, "127.0.0.1:5000", "x", NULL, D64, "127.0.0.1:5000/x@" D64},
	    {"name:tag@" D64, "docker.io", "library/name", "tag", D64,
	     "docker.io/library/name:tag@" D64},
	    {"registry.example.com/ml/train:1.4.0-cuda", "registry.example.com", "ml/train",
	     "1.4.0-cuda", NULL, "registry.example.com/ml/train:1.4.0-cuda"},
	    /* '_' is no host character, so the first component is a path component. */
	    {"a.b-c_d__e/f", "docker.io", "a.b-c_d__e/f", NULL, NULL, "docker.io/a.b-c_d__e/f"},
	    {"a.b-c.d/f", "a.b-c.d", "f", NULL, NULL, "a.b-c.d/f"},
	    {"docker.io/a.b-c_d__e---f/g", "docker.io", "a.b-c_d__e---f/g", NULL, NULL,
	     "docker.io/a.b-c_d__e---f/g"},
	    {"[::1]:5000/app:dev", "[::1]:5000", "app", "dev", NULL, "[::1]:5000/app:dev"},
	    {"[fe80::1]/app", "[fe80::1]", "app", NULL, NULL, "[fe80::1]/app"},
	    {"Registry.Example.COM:443/team/app", "Registry.Example.COM:443", "team/app", NULL,
	     NULL, "Registry.Example.COM:443/team/app"},
	    {"ghcr.io/o/r:_Tag.With-UPPER_1", "ghcr.io", "o/r", "_Tag.With-UPPER_1", NULL,
	     "ghcr.io/o/r:_Tag.With-UPPER_1"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_error_ struct plait_error *err = NULL;
		struct plait_ref r;
		if (plait_ref_parse(cases[i].in, &r, &err) < 0)
			fail_msg("parse '%s': %s", cases[i].in, err->msg);
		assert_string_equal(r.domain, cases[i].domain);
		assert_string_equal(r.path, cases[i].path);
		if (!streq_ptr(r.tag, cases[i].tag))
			fail_msg("'%s': tag '%s', want '%s'", cases[i].in, r.tag ? r.tag : "(null)",
				 cases[i].tag ? cases[i].tag : "(null)");
		if (!streq_ptr(r.digest, cases[i].digest))
			fail_msg("'%s': digest '%s', want '%s'", cases[i].in,
				 r.digest ? r.digest : "(null)",
				 cases[i].digest ? cases[i].digest : "(null)");
		_cleanup_free_ char *f = plait_ref_format(&r);
		assert_string_equal(f, cases[i].format);
		/* The formatted form parses back to itself. */
		struct plait_ref again;
		assert_int_equal(plait_ref_parse(f, &again, NULL), 0);
		_cleanup_free_ char *f2 = plait_ref_format(&again);
		assert_string_equal(f2, f);
		plait_ref_release(&again);
		plait_ref_release(&r);
	}
}

static void test_ref__rejects_invalid_references(void **state)
{
	(void)state;
	_cleanup_free_ char *long_name = NULL;
	_cleanup_free_ char *long_tag = NULL;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, "example.com/");
	for (int i = 0; i < 244; i++)
		plait_buf_addch(&b, 'a');
	long_name = plait_buf_detach(&b, NULL); /* 256 characters */
	plait_buf_adds(&b, "busybox:");
	for (int i = 0; i < 129; i++)
		plait_buf_addch(&b, 't');
	long_tag = plait_buf_detach(&b, NULL);

	const struct {
		const char *in;
		const char *want;
	} cases[] = {
	    {"Foo/bar", "invalid reference 'Foo/bar': repository name must be lowercase"},
	    {"example.com/Team/app", "repository name must be lowercase"},
	    {"", "invalid reference '': empty"},
	    {"busybox/", "invalid reference 'busybox/': repository name must not end with '/'"},
	    {"example.com/", "missing repository name after the registry host"},
	    {":tag", "invalid reference ':tag': missing repository name"},
	    {"busybox:", "missing tag after ':'"},
	    {"busybox:a+b", "invalid reference 'busybox:a+b': invalid tag 'a+b'"},
	    {"busybox:-dash", "invalid tag '-dash'"},
	    {"busybox:.dot", "invalid tag '.dot'"},
	    {long_tag, "invalid tag 'tttt"},
	    {"busybox@sha256:abc", "invalid reference 'busybox@sha256:abc': 'sha256:abc' is "
				   "not a valid digest"},
	    {"busybox@", "missing digest after '@'"},
	    {"busybox@md5:0123456789abcdef0123456789abcdef", "not a valid digest"},
	    {"//", "invalid reference '//'"},
	    {"a//b", "empty path component"},
	    {"/a", "invalid reference '/a'"},
	    {long_name, "repository name is longer than 255 characters"},
	    {"a__-b/c", "invalid path component 'a__-b'"},
	    {"a/b_/c", "invalid path component 'b_'"},
	    {"a/-b", "invalid path component '-b'"},
	    {"a/b___c", "invalid path component 'b___c'"},
	    {"a/b..c", "invalid path component 'b..c'"},
	    {"a b", "invalid path component 'a b'"},
	    {"-host.com/a", "invalid registry host '-host.com'"},
	    {"host.com:port/a", "invalid registry host 'host.com:port'"},
	    {"[zz::1]:5000/a", "invalid registry host '[zz::1]:5000'"},
	    {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	     "image ID, not a repository name"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct plait_error *err = NULL;
		struct plait_ref r;
		int ret = plait_ref_parse(cases[i].in, &r, &err);
		if (ret >= 0) {
			_cleanup_free_ char *f = plait_ref_format(&r);
			plait_ref_release(&r);
			fail_msg("'%s' parsed as '%s', expected an error", cases[i].in, f);
		}
		assert_int_equal(ret, -PLAIT_E_USAGE);
		assert_int_equal(err->code, PLAIT_E_USAGE);
		assert_contains(err->msg, cases[i].want);
		plait_error_free(err);
		/* Nothing is left allocated in r on failure. */
		assert_null(r.domain);
		assert_null(r.path);
		assert_null(r.tag);
		assert_null(r.digest);
	}
	struct plait_ref r;
	assert_int_equal(plait_ref_parse(NULL, &r, NULL), -PLAIT_E_USAGE);
}

static void test_ref__name_length_counts_normalised_name(void **state)
{
	(void)state;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, "example.com/");
	for (int i = 0; i < 243; i++)
		plait_buf_addch(&b, 'a');
	_cleanup_free_ char *ok = plait_buf_detach(&b, NULL); /* exactly 255 */
	struct plait_ref r;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_ref_parse(ok, &r, &err) < 0)
		fail_msg("a 255-character name was refused: %s", err->msg);
	plait_ref_release(&r);
}

static void test_ref__tag_is_valid(void **state)
{
	(void)state;
	char tag[130];
	memset(tag, 'x', sizeof(tag));
	tag[128] = '\0';
	assert_true(plait_tag_is_valid(tag));
	tag[128] = 'x';
	tag[129] = '\0';
	assert_false(plait_tag_is_valid(tag));
	assert_true(plait_tag_is_valid("latest"));
	assert_true(plait_tag_is_valid("_"));
	assert_true(plait_tag_is_valid("1.4.0-cuda_12"));
	assert_false(plait_tag_is_valid(""));
	assert_false(plait_tag_is_valid(NULL));
	assert_false(plait_tag_is_valid("a:b"));
	assert_false(plait_tag_is_valid("a/b"));
	assert_false(plait_tag_is_valid("-a"));
}

static void test_ref__name_copy_and_api_host(void **state)
{
	(void)state;
	struct plait_ref r, c;
	assert_int_equal(plait_ref_parse("busybox:1.36@" D64, &r, NULL), 0);
	_cleanup_free_ char *name = plait_ref_name(&r);
	assert_string_equal(name, "docker.io/library/busybox");
	assert_string_equal(plait_ref_api_host(&r), "registry-1.docker.io");
	plait_ref_copy(&c, &r);
	plait_ref_release(&r);
	_cleanup_free_ char *f = plait_ref_format(&c);
	assert_string_equal(f, "docker.io/library/busybox:1.36@" D64);
	plait_ref_release(&c);
	plait_ref_release(&c); /* release twice is harmless */
	plait_ref_release(NULL);

	assert_int_equal(plait_ref_parse("localhost:5000/a", &r, NULL), 0);
	assert_string_equal(plait_ref_api_host(&r), "localhost:5000");
	plait_ref_release(&r);
}

static void test_ref__host_is_loopback(void **state)
{
	(void)state;
	static const struct {
		const char *host;
		bool loopback;
	} cases[] = {
	    {"localhost", true},
	    {"LocalHost", true},
	    {"localhost:5000", true},
	    {"127.0.0.1", true},
	    {"127.0.0.1:5000", true},
	    {"127.1.2.3:80", true},
	    {"[::1]", true},
	    {"[::1]:5000", true},
	    {"::1", true},
	    {"localhost.example.com", false},
	    {"localhost:", false},
	    {"localhost:abc", false},
	    {"127.0.0.1:", false},
	    {"128.0.0.1", false},
	    {"10.0.0.1:5000", false},
	    {"127.0.0.256", false},
	    {"127.0.0.1.example.com", false},
	    {"[::2]:5000", false},
	    {"[::1", false},
	    {"[::1]5000", false},
	    {"registry.example.com", false},
	    {"", false},
	    {NULL, false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (plait_host_is_loopback(cases[i].host) != cases[i].loopback)
			fail_msg("plait_host_is_loopback('%s') = %d, want %d",
				 cases[i].host ? cases[i].host : "(null)", !cases[i].loopback,
				 cases[i].loopback);
}

static void test_ref__docker_hub_names(void **state)
{
	(void)state;
	static const struct {
		const char *host;
		bool hub;
	} cases[] = {
	    {"docker.io", true},
	    {"index.docker.io", true},
	    {"registry-1.docker.io", true},
	    {"Docker.IO", true},
	    {"INDEX.docker.io", true},
	    {"docker.io:443", false},
	    {"auth.docker.io", false},
	    {"registry.docker.io", false},
	    {"docker.iox", false},
	    {"localhost:5000", false},
	    {"", false},
	    {NULL, false},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (plait_docker_hub_is_alias(cases[i].host) != cases[i].hub)
			fail_msg("plait_docker_hub_is_alias('%s') = %d, want %d",
				 cases[i].host ? cases[i].host : "(null)", !cases[i].hub,
				 cases[i].hub);
	/* the first len bytes only: "docker.io/library/x" starts with a Hub name */
	assert_true(plait_docker_hub_is_alias_n("docker.io/library/x", 9));
	assert_false(plait_docker_hub_is_alias_n("docker.io/library/x", 10));
	assert_false(plait_docker_hub_is_alias_n("docker.io", 6));

	assert_string_equal(plait_docker_hub_domain(), "docker.io");
	assert_string_equal(plait_docker_hub_api_host(), "registry-1.docker.io");
	assert_string_equal(plait_docker_hub_index_host(), "index.docker.io");
	assert_string_equal(plait_docker_hub_credentials_key(), "https://index.docker.io/v1/");

	/* every alias normalises to the one domain, whose API host is the Hub's */
	static const char *const refs[] = {"docker.io/x/y", "Index.Docker.io/x/y",
					   "registry-1.docker.io/x/y"};
	for (size_t i = 0; i < ARRAY_SIZE(refs); i++) {
		struct plait_ref r;
		assert_int_equal(plait_ref_parse(refs[i], &r, NULL), 0);
		if (!streq(r.domain, plait_docker_hub_domain()))
			fail_msg("'%s': domain '%s', want 'docker.io'", refs[i], r.domain);
		assert_string_equal(plait_ref_api_host(&r), plait_docker_hub_api_host());
		plait_ref_release(&r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ref__parses_valid_references),
	    cmocka_unit_test(test_ref__rejects_invalid_references),
	    cmocka_unit_test(test_ref__name_length_counts_normalised_name),
	    cmocka_unit_test(test_ref__tag_is_valid),
	    cmocka_unit_test(test_ref__name_copy_and_api_host),
	    cmocka_unit_test(test_ref__host_is_loopback),
	    cmocka_unit_test(test_ref__docker_hub_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
