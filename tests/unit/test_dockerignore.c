/* Unit tests for core/dockerignore.c: parsing, Go path.Clean and filepath.Match,
 * and matching tables taken from moby/patternmatcher's tests and behaviour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tmpdir.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "core/dockerignore.h"
#include "core/endpoint.h"

static struct plait_ignore *parse_ok(const char *text)
{
	struct plait_error *err = NULL;
	struct plait_ignore *ig = NULL;
	if (plait_ignore_parse(text, strlen(text), NULL, &ig, &err) < 0)
		fail_msg("parse '%s': %s", text, err->msg);
	return ig;
}

struct match_case {
	const char *patterns; /* .dockerignore content */
	const char *path;
	bool excluded;
};

static void run_cases(const struct match_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct plait_ignore *ig = parse_ok(c[i].patterns);
		bool got = plait_ignore_match(ig, c[i].path);
		if (got != c[i].excluded)
			fail_msg("patterns '%s' path '%s': excluded=%d, want %d", c[i].patterns, c[i].path, got,
				 c[i].excluded);
		plait_ignore_free(ig);
	}
}

/* moby/patternmatcher TestMatches, for the cases with cleaned paths. */
static void test_dockerignore__moby_pattern_table(void **state)
{
	(void)state;
	static const struct match_case c[] = {
		{ "**", "file", true },
		{ "**/", "file", true },
		{ "**", "dir/file", true },
		{ "**/**", "dir/file", true },
		{ "dir/**", "dir/file", true },
		{ "dir/**", "dir/dir2/file", true },
		{ "**/dir", "dir", true },
		{ "**/dir", "dir/file", true },
		{ "**/dir2/*", "dir/dir2/file", true },
		{ "**/dir2/**", "dir/dir2/dir3/file", true },
		{ "**file", "file", true },
		{ "**file", "dir/file", true },
		{ "**/file", "dir/file", true },
		{ "**file", "dir/dir/file", true },
		{ "**/file", "dir/dir/file", true },
		{ "**/file*", "dir/dir/file", true },
		{ "**/file*", "dir/dir/file.txt", true },
		{ "**/file*txt", "dir/dir/file.txt", true },
		{ "**/file*.txt", "dir/dir/file.txt", true },
		{ "**/file*.txt*", "dir/dir/file.txt", true },
		{ "**/**/*.txt", "dir/dir/file.txt", true },
		{ "**/**/*.txt2", "dir/dir/file.txt", false },
		{ "**/*.txt", "file.txt", true },
		{ "**/**/*.txt", "file.txt", true },
		{ "a**/*.txt", "a/file.txt", true },
		{ "a**/*.txt", "a/dir/file.txt", true },
		{ "a**/*.txt", "a/dir/dir/file.txt", true },
		{ "a/*.txt", "a/dir/file.txt", false },
		{ "a/*.txt", "a/file.txt", true },
		{ "a/*.txt**", "a/file.txt", true },
		{ "a[b-d]e", "ae", false },
		{ "a[b-d]e", "ace", true },
		{ "a[b-d]e", "aae", false },
		{ "a[^b-d]e", "aze", true },
		{ ".*", ".foo", true },
		{ ".*", "foo", false },
		{ "abc.def", "abcdef", false },
		{ "abc.def", "abc.def", true },
		{ "abc.def", "abcZdef", false },
		{ "abc?def", "abcZdef", true },
		{ "abc?def", "abcdef", false },
		{ "a\\\\", "a\\", true },
		{ "**/foo/bar", "foo/bar", true },
		{ "**/foo/bar", "dir/foo/bar", true },
		{ "**/foo/bar", "dir/dir2/foo/bar", true },
		{ "abc/**", "abc", false },
		{ "abc/**", "abc/def", true },
		{ "abc/**", "abc/def/ghi", true },
		{ "**/.foo", ".foo", true },
		{ "**/.foo", "bar.foo", false },
		{ "a(b)c/def", "a(b)c/def", true },
		{ "a(b)c/def", "a(b)c/xyz", false },
		{ "a.|)$(}+{bc", "a.|)$(}+{bc", true },
		{ "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
		  "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true },
		{ "dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true },
	};
	run_cases(c, ARRAY_SIZE(c));
}

/* The usual .dockerignore idioms. */
static void test_dockerignore__common_patterns(void **state)
{
	(void)state;
	static const struct match_case c[] = {
		{ "**/*.go", "main.go", true },
		{ "**/*.go", "a/b/c.go", true },
		{ "**/*.go", "a/b/c.goo", false },
		{ "docs", "docs", true },
		{ "docs", "docs/a/b.md", true },
		{ "docs", "docsx", false },
		{ "docs", "src/docs", false },
		{ "*/temp*", "somedir/temporary.txt", true },
		{ "*/temp*", "somedir/temp", true },
		{ "*/temp*", "temp", false },
		{ "*/temp*", "a/b/temp", false },
		{ "temp?", "temp1", true },
		{ "temp?", "temp", false },
		{ "temp?", "temp12", false },
		{ "temp?", "temp/", false },
		{ "/abs", "abs", true },
		{ "/abs", "x/abs", false },
		{ "a/**/b", "a/b", true },
		{ "a/**/b", "a/x/b", true },
		{ "a/**/b", "a/x/y/b", true },
		{ "a/**/b", "a/xb", false },
		{ "a/**/b", "a/x/b/c", true },
		{ "**", "anything/at/all", true },
		{ "[a-c]x", "bx", true },
		{ "[a-c]x", "dx", false },
		{ "[a-c]x", "bxx", false },
		{ "\\*", "*", true },
		{ "\\*", "a", false },
		{ "\\?x", "?x", true },
		{ "\\?x", "ax", false },
		{ "*", ".hidden", true },
		{ "*.md", "dir/a.md", false },
		{ "./a/../b/", "b", true },
		{ "  spaced  \t", "spaced", true },
		{ "", "anything", false },
		{ "# comment only", "# comment only", false },
		{ "  # not a comment", "# not a comment", true },
		{ "**.go", "a/b.go", true },
		{ "na\xc3\xafve?", "na\xc3\xafve\xc3\xa9", true },
	};
	run_cases(c, ARRAY_SIZE(c));
}

/* Later rules override earlier ones; exceptions re-include below an excluded
 * directory; the parent-directory rule of MatchesOrParentMatches. */
static void test_dockerignore__exclusion_order_and_exceptions(void **state)
{
	(void)state;
	static const struct match_case c[] = {
		{ "*.txt\n!a.txt\n", "a.txt", false },
		{ "*.txt\n!a.txt\n", "b.txt", true },
		{ "!a.txt\n*.txt\n", "a.txt", true },
		{ "*.txt\n!a.txt\na.txt\n", "a.txt", true },
		{ "docs\n!docs/README.md\n", "docs/README.md", false },
		{ "docs\n!docs/README.md\n", "docs/other.md", true },
		{ "docs\n!docs/README.md\n", "docs", true },
		{ "docs\n!docs/keep/*.md\n", "docs/keep/x.md", false },
		{ "docs\n!docs/keep/*.md\n", "docs/keep/x.txt", true },
		{ "docs\n!docs/keep\n", "docs/keep/deep/file", false },
		{ "a\n!a/b\na/b/c\n", "a/b/c", true },
		{ "a\n!a/b\na/b/c\n", "a/b/d", false },
		{ "a\n!a/b\na/b/c\n", "a/x", true },
		{ "*\n!src\n", "src/main.c", false },
		{ "*\n!src\n", "README", true },
		{ "*\n!*.c\n", "x.c", false },
		{ "*\n!*.c\n", "dir/x.c", true }, /* "*" matched the parent "dir"; "*.c" does not match "dir/x.c" */
		{ "*\n!**/*.c\n", "dir/x.c", false },
		/* an exception is only tried while excluded: it cannot re-include what no rule excluded */
		{ "!keep\n", "keep", false },
		{ "!keep\n", "other", false },
	};
	run_cases(c, ARRAY_SIZE(c));
}

static void test_dockerignore__match_rule_names_line(void **state)
{
	(void)state;
	struct plait_ignore *ig = parse_ok("# header\n\nnode_modules\nsrc/*.py\n!src/keep.py\n");
	const struct plait_ignore_rule *r = plait_ignore_match_rule(ig, "src/app.py");
	assert_non_null(r);
	assert_int_equal(r->line, 4);
	assert_string_equal(r->pattern, "src/*.py");
	assert_false(r->exception);
	assert_null(plait_ignore_match_rule(ig, "src/keep.py"));
	assert_null(plait_ignore_match_rule(ig, "src/app.c"));
	r = plait_ignore_match_rule(ig, "node_modules/x/y.js");
	assert_non_null(r);
	assert_int_equal(r->line, 3);
	assert_null(plait_ignore_match_rule(NULL, "x"));
	plait_ignore_free(ig);
}

static void test_dockerignore__parse_cleans_and_trims(void **state)
{
	(void)state;
	const char text[] = "\xef\xbb\xbf# bom then comment\r\n"
			    "  /foo/../bar/  \r\n"
			    "\t\n"
			    "!  ./baz//qux\n"
			    "#!not-a-rule\n"
			    "last";
	struct plait_ignore *ig = parse_ok(text);
	assert_int_equal(ig->n_rules, 3);
	assert_string_equal(ig->rules[0].pattern, "bar");
	assert_int_equal(ig->rules[0].line, 2);
	assert_false(ig->rules[0].exception);
	assert_string_equal(ig->rules[1].pattern, "baz/qux");
	assert_int_equal(ig->rules[1].line, 4);
	assert_true(ig->rules[1].exception);
	assert_string_equal(ig->rules[2].pattern, "last");
	assert_int_equal(ig->rules[2].line, 6);
	assert_true(ig->has_exceptions);
	assert_false(ig->exception_wildcards);
	assert_string_equal(ig->source, ".dockerignore");
	plait_ignore_free(ig);
}

static void expect_parse_error(const char *text, const char *want)
{
	struct plait_error *err = NULL;
	struct plait_ignore *ig = NULL;
	int r = plait_ignore_parse(text, strlen(text), "ctx/.dockerignore", &ig, &err);
	if (r >= 0)
		fail_msg("parse '%s' succeeded, want error '%s'", text, want);
	assert_int_equal(r, -PLAIT_E_INVALID);
	assert_null(ig);
	assert_string_equal(err->msg, want);
	plait_error_free(err);
}

static void test_dockerignore__invalid_patterns_name_file_and_line(void **state)
{
	(void)state;
	expect_parse_error("ok\n!\n", "ctx/.dockerignore:2: invalid pattern '!': an exception needs a pattern after '!'");
	expect_parse_error("a\n\n[abc\n", "ctx/.dockerignore:3: invalid pattern '[abc': missing ']'");
	expect_parse_error("[]a]", "ctx/.dockerignore:1: invalid pattern '[]a]': empty character class");
	expect_parse_error("x\n!foo\\", "ctx/.dockerignore:2: invalid pattern '!foo\\': trailing '\\' escapes nothing");
	expect_parse_error("[z-a]", "ctx/.dockerignore:1: invalid pattern '[z-a]': character range out of order");
	expect_parse_error("[a-]", "ctx/.dockerignore:1: invalid pattern '[a-]': '-' and ']' must be escaped in a character class");
}

static void test_dockerignore__may_include_below(void **state)
{
	(void)state;
	struct plait_ignore *ig = parse_ok("docs\n!docs/README.md\nbuild\n");
	assert_true(plait_ignore_may_include_below(ig, "docs"));
	assert_false(plait_ignore_may_include_below(ig, "build"));
	assert_false(plait_ignore_may_include_below(ig, "doc"));
	plait_ignore_free(ig);

	ig = parse_ok("*\n!**/*.md\n");
	assert_true(ig->exception_wildcards);
	assert_true(plait_ignore_may_include_below(ig, "anything"));
	plait_ignore_free(ig);

	ig = parse_ok("*\n");
	assert_false(plait_ignore_may_include_below(ig, "anything"));
	plait_ignore_free(ig);
	assert_false(plait_ignore_may_include_below(NULL, "x"));
}

static void test_dockerignore__path_clean_matches_go(void **state)
{
	(void)state;
	static const char *const c[][2] = {
		{ "", "." },	       { ".", "." },	       { "/", "/" },	       { "a//b", "a/b" },
		{ "./a/", "a" },       { "a/../..", ".." },    { "/../a", "/a" },      { "a/./b/../c", "a/c" },
		{ "../../a", "../../a" }, { "abc/def/../../..", ".." }, { "//a//b//", "/a/b" },
		{ "a/b/../../../x", "../x" }, { "..a/b", "..a/b" }, { "a/...", "a/..." },
	};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_path_clean(c[i][0], &b);
		if (!streq(b.buf, c[i][1]))
			fail_msg("clean '%s' = '%s', want '%s'", c[i][0], b.buf, c[i][1]);
		plait_buf_release(&b);
	}
}

static void test_dockerignore__glob_match_is_go_filepath_match(void **state)
{
	(void)state;
	static const struct {
		const char *pattern, *name;
		int want;
	} c[] = {
		{ "*.py", "app.py", 1 },   { "*.py", "app.pyc", 0 }, { "*", ".hidden", 1 },  { "a?c", "abc", 1 },
		{ "a?c", "ac", 0 },	   { "[^a]", "b", 1 },	     { "[^a]", "a", 0 },     { "\\*", "*", 1 },
		{ "\\*", "x", 0 },	   { "**", "ab", 1 },	     { "[", "x", -1 },	     { "a\\", "a", -1 },
		{ "[]a]", "]", -1 },	   { "[\\]a]", "]", 1 },     { "[z-a]", "b", -1 },   { "*/b", "a/b", 1 },
		{ "*", "a/b", 0 },	   { "?", "\xc3\xa9", 1 },   { "[\xc3\xa0-\xc3\xbf]", "\xc3\xa9", 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		int got = plait_glob_match(c[i].pattern, c[i].name);
		if (got != c[i].want)
			fail_msg("match '%s' '%s' = %d, want %d", c[i].pattern, c[i].name, got, c[i].want);
	}
	assert_true(plait_glob_has_wildcards("src/*.py"));
	assert_true(plait_glob_has_wildcards("a[bc]"));
	assert_false(plait_glob_has_wildcards("src/app.py"));
	assert_false(plait_glob_has_wildcards("a\\*b"));
}

static void write_file(const char *dir, const char *name, const char *content)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, content, strlen(content)), 0);
	close(fd);
	plait_buf_release(&p);
}

static void test_dockerignore__load_prefers_dockerfile_specific_file(void **state)
{
	(void)state;
	struct plait_error *err = NULL;
	char *dir = NULL;
	dir = test_mkdtemp("test-dockerignore");
	struct plait_buf df = PLAIT_BUF_INIT;
	plait_buf_addf(&df, "%s/build.Dockerfile", dir);

	struct plait_ignore *ig = NULL;
	/* neither file: no rules */
	assert_int_equal(plait_ignore_load(dir, df.buf, &ig, &err), 0);
	assert_int_equal(ig->n_rules, 0);
	assert_false(plait_ignore_match(ig, "x"));
	plait_ignore_free(ig);

	write_file(dir, ".dockerignore", "from-context\n");
	assert_int_equal(plait_ignore_load(dir, df.buf, &ig, &err), 0);
	assert_true(plait_ignore_match(ig, "from-context"));
	assert_true(endswith(ig->source, "/.dockerignore"));
	plait_ignore_free(ig);

	write_file(dir, "build.Dockerfile.dockerignore", "from-dockerfile\n");
	assert_int_equal(plait_ignore_load(dir, df.buf, &ig, &err), 0);
	assert_true(plait_ignore_match(ig, "from-dockerfile"));
	assert_false(plait_ignore_match(ig, "from-context"));
	assert_true(endswith(ig->source, "/build.Dockerfile.dockerignore"));
	plait_ignore_free(ig);

	/* no Dockerfile (stdin): the context's file */
	assert_int_equal(plait_ignore_load(dir, "-", &ig, &err), 0);
	assert_true(plait_ignore_match(ig, "from-context"));
	plait_ignore_free(ig);

	/* errors in the chosen file name it */
	write_file(dir, "build.Dockerfile.dockerignore", "ok\n[bad\n");
	assert_true(plait_ignore_load(dir, df.buf, &ig, &err) < 0);
	assert_non_null(strstr(err->msg, "build.Dockerfile.dockerignore:2: invalid pattern '[bad'"));
	plait_error_clear(&err);

	plait_buf_release(&df);
	plait_rm_rf(dir);
	free(dir);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Found by tests/fuzz/fuzz_dockerignore: each '*' tried every position, so a
 * pattern of many stars against a long name that does not match took
 * exponential time (a hostile .dockerignore stalled the build). */
static void test_dockerignore__many_stars_match_in_linear_time(void **state)
{
	(void)state;
	const char *pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
	char name[61];
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(plait_glob_match(pattern, name), 0);
	name[sizeof(name) - 2] = 'b';
	assert_int_equal(plait_glob_match(pattern, name), 1);

	struct plait_ignore *ig = NULL;
	struct plait_error *err = NULL;
	const char *file = "**/*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c\n";
	assert_int_equal(plait_ignore_parse(file, strlen(file), ".dockerignore", &ig, &err), 0);
	name[sizeof(name) - 2] = 'a';
	name[10] = '/';
	assert_false(plait_ignore_match(ig, name));
	plait_ignore_free(ig);
	double took = seconds_since(&t0);
	if (took > 1.0)
		fail_msg("matching 16 stars against a 60-character name took %.1f s (want < 1 s)",
			 took);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dockerignore__moby_pattern_table),
		cmocka_unit_test(test_dockerignore__common_patterns),
		cmocka_unit_test(test_dockerignore__exclusion_order_and_exceptions),
		cmocka_unit_test(test_dockerignore__match_rule_names_line),
		cmocka_unit_test(test_dockerignore__parse_cleans_and_trims),
		cmocka_unit_test(test_dockerignore__invalid_patterns_name_file_and_line),
		cmocka_unit_test(test_dockerignore__may_include_below),
		cmocka_unit_test(test_dockerignore__path_clean_matches_go),
		cmocka_unit_test(test_dockerignore__glob_match_is_go_filepath_match),
		cmocka_unit_test(test_dockerignore__many_stars_match_in_linear_time),
		cmocka_unit_test(test_dockerignore__load_prefers_dockerfile_specific_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
