/* Unit tests for core/expand: BuildKit's ProcessWord / ProcessWords semantics. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/expand.h"

#include "core/banned.h"

static char *env[] = {
	"foo=bar", "empty=", "a=hello world", "b=B", "path=/usr/local/bin", "ports=80 443/tcp",
	"x=old", "x=new", NULL,
};

struct word_case {
	const char *in;
	const char *out;
};

static void check_words(const struct word_case *cases, size_t n, const struct plait_expand_opts *o)
{
	for (size_t i = 0; i < n; i++) {
		_cleanup_error_ struct plait_error *err = NULL;
		_cleanup_free_ char *out = NULL;
		int r = plait_expand_word(cases[i].in, o, plait_expand_lookup_envv, env, &out, &err);
		if (r < 0)
			fail_msg("expanding '%s' failed: %s", cases[i].in, err ? err->msg : "?");
		if (!streq(out, cases[i].out))
			fail_msg("expanding '%s': got '%s', want '%s'", cases[i].in, out, cases[i].out);
	}
}

static void test_expand__plain_and_braced_references(void **state)
{
	(void)state;
	static const struct word_case cases[] = {
		{ "$foo", "bar" },	     { "${foo}", "bar" },	  { "${foo}_x", "bar_x" },
		{ "$foo_x", "" },	     { "x$foo/y", "xbar/y" },	  { "$path:$foo", "/usr/local/bin:bar" },
		{ "$", "$" },		     { "a$", "a$" },		  { "$ a", "$ a" },
		{ "$1", "" },		     { "no vars", "no vars" },	  { "", "" },
		{ "$x", "new" }, /* the last definition wins */
	};
	check_words(cases, ARRAY_SIZE(cases), NULL);
}

static void test_expand__defaults_distinguish_unset_from_empty(void **state)
{
	(void)state;
	static const struct word_case cases[] = {
		/* from the Dockerfile reference */
		{ "${foo:-word}", "bar" },   { "${unset:-word}", "word" }, { "${empty:-word}", "word" },
		{ "${foo:+word}", "word" },  { "${unset:+word}", "" },	   { "${empty:+word}", "" },
		/* without the colon, empty counts as set */
		{ "${empty-word}", "" },     { "${unset-word}", "word" },  { "${empty+word}", "word" },
		{ "${unset+word}", "" },     { "${foo-word}", "bar" },	   { "${foo+word}", "word" },
		{ "${foo:?}", "bar" },	     { "${empty?}", "" },
	};
	check_words(cases, ARRAY_SIZE(cases), NULL);
}

static void test_expand__nested_defaults_are_expanded(void **state)
{
	(void)state;
	static const struct word_case cases[] = {
		{ "${unset:-${foo}}", "bar" },
		{ "${unset:-${unset2:-deep}}", "deep" },
		{ "${foo:+[$b]}", "[B]" },
		{ "${unset:-a b}", "a b" },
		{ "${unset:-'q}'}", "q}" },
	};
	check_words(cases, ARRAY_SIZE(cases), NULL);
}

static void test_expand__escapes_and_quotes(void **state)
{
	(void)state;
	static const struct word_case cases[] = {
		{ "\\$foo", "$foo" },
		{ "\\${foo}", "${foo}" },
		{ "\\\\$foo", "\\bar" },
		{ "'$foo'", "$foo" },
		{ "\"$foo\"", "bar" },
		{ "\"\\$foo\"", "$foo" },
		{ "\"a\\b\"", "a\\b" }, /* \ only escapes " $ \ inside double quotes */
		{ "\"a\\\"b\"", "a\"b" },
		{ "'a\\b'", "a\\b" },
		{ "\"it's\"", "it's" },
		{ "'say \"hi\"'", "say \"hi\"" },
		{ "a\\ b", "a b" },
		{ "abc\\", "abc" }, /* a trailing escape is dropped */
		{ "\"$a\"", "hello world" },
		{ "x'y'\"z\"", "xyz" },
	};
	check_words(cases, ARRAY_SIZE(cases), NULL);
}

static void test_expand__backtick_escape_keeps_backslashes(void **state)
{
	(void)state;
	/* escape=` : Windows paths keep their backslashes, ` escapes $. */
	static const struct word_case cases[] = {
		{ "C:\\Users\\$foo", "C:\\Users\\bar" },
		{ "`$foo", "$foo" },
		{ "\"`$foo\"", "$foo" },
		{ "c:\\", "c:\\" },
	};
	const struct plait_expand_opts o = { .escape = '`' };
	check_words(cases, ARRAY_SIZE(cases), &o);
}

static void test_expand__pattern_modifiers(void **state)
{
	(void)state;
	static const struct word_case cases[] = {
		{ "${a#*o}", " world" },    { "${a##*o}", "rld" },	      { "${a%o*}", "hello w" },
		{ "${a%%o*}", "hell" },	    { "${a#nomatch}", "hello world" }, { "${foo#b}", "ar" },
		{ "${path##*/}", "bin" },   { "${path%/*}", "/usr/local" },    { "${a/o/0}", "hell0 world" },
		{ "${a//o/0}", "hell0 w0rld" }, { "${a/l*o/L}", "heLrld" },     { "${unset/x/y}", "" },
		{ "${a#h?l}", "lo world" },
	};
	check_words(cases, ARRAY_SIZE(cases), NULL);
}

static void test_expand__raw_and_skip_options(void **state)
{
	(void)state;
	const struct plait_expand_opts skip = { .skip_unset = true };
	static const struct word_case skip_cases[] = {
		{ "$unset $foo", "$unset bar" },
		{ "${unset}", "${unset}" },
		{ "${unset:-x}", "${unset:-x}" },
	};
	check_words(skip_cases, ARRAY_SIZE(skip_cases), &skip);

	const struct plait_expand_opts raw = { .raw_quotes = true, .raw_escapes = true };
	static const struct word_case raw_cases[] = {
		{ "'a b'", "'a b'" },
		{ "\"$foo\"", "\"bar\"" },
		{ "\\$foo", "\\$foo" },
	};
	check_words(raw_cases, ARRAY_SIZE(raw_cases), &raw);
}

static void test_expand__heredoc_keeps_quotes_and_unset(void **state)
{
	(void)state;
	_cleanup_free_ char *out = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_expand_heredoc("echo \"$foo\" '$foo' $unset ${b}\n\\$foo\n",
					      plait_expand_lookup_envv, env, &out, &err),
			 0);
	assert_string_equal(out, "echo \"bar\" 'bar' $unset B\n$foo\n");
}

struct words_case {
	const char *in;
	const char *joined; /* the words joined with '|' */
	size_t n;
};

static void test_expand__words_split_outside_quotes(void **state)
{
	(void)state;
	static const struct words_case cases[] = {
		{ "a b  c", "a|b|c", 3 },
		{ "  lead trail  ", "lead|trail", 2 },
		{ "\"a b\" c", "a b|c", 2 },
		{ "$a", "hello|world", 2 }, /* blanks from a value split */
		{ "\"$a\"", "hello world", 1 },
		{ "'x y'z", "x yz", 1 },
		{ "a\\ b", "a b", 1 },
		{ "$ports 8080", "80|443/tcp|8080", 3 },
		{ "${unset:-1 2}", "1|2", 2 },
		{ "", "", 0 },
		{ "\"\"", "", 0 }, /* as BuildKit: an empty quoted word vanishes */
		{ "$empty x", "x", 1 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_error_ struct plait_error *err = NULL;
		_cleanup_strv_free_ char **w = NULL;
		size_t n = 99;
		int r = plait_expand_words(cases[i].in, NULL, plait_expand_lookup_envv, env, &w, &n,
					   &err);
		if (r < 0)
			fail_msg("splitting '%s' failed: %s", cases[i].in, err ? err->msg : "?");
		_cleanup_buf_ struct plait_buf j = PLAIT_BUF_INIT;
		for (size_t k = 0; w[k]; k++)
			plait_buf_addf(&j, "%s%s", k ? "|" : "", w[k]);
		if (!streq(j.buf, cases[i].joined) || n != cases[i].n)
			fail_msg("splitting '%s': got '%s' (%zu words), want '%s' (%zu)", cases[i].in,
				 j.buf, n, cases[i].joined, cases[i].n);
	}
}

struct err_case {
	const char *in;
	const char *msg;
};

static void test_expand__errors_name_variable_and_line(void **state)
{
	(void)state;
	static const struct err_case cases[] = {
		{ "${unset:?}",
		  "Dockerfile:7: failed to expand '${unset:?}': variable 'unset' is not allowed to be unset" },
		{ "${unset?}",
		  "Dockerfile:7: failed to expand '${unset?}': variable 'unset' is not allowed to be unset" },
		{ "${empty:?}",
		  "Dockerfile:7: failed to expand '${empty:?}': variable 'empty' is not allowed to be empty" },
		{ "x${unset:?set it with --build-arg}",
		  "Dockerfile:7: failed to expand 'x${unset:?set it with --build-arg}': variable 'unset': "
		  "set it with --build-arg" },
		{ "${foo", "Dockerfile:7: failed to expand '${foo': syntax error: missing '}'" },
		{ "${foo:-x", "Dockerfile:7: failed to expand '${foo:-x': syntax error: missing '}'" },
		{ "${", "Dockerfile:7: failed to expand '${': syntax error: missing '}'" },
		{ "${}", "Dockerfile:7: failed to expand '${}': syntax error: bad substitution" },
		{ "${:-x}", "Dockerfile:7: failed to expand '${:-x}': syntax error: bad substitution" },
		{ "${foo!x}", "Dockerfile:7: failed to expand '${foo!x}': unsupported modifier '!' in substitution" },
		{ "${foo:x}", "Dockerfile:7: failed to expand '${foo:x}': unsupported modifier ':x' in substitution" },
		{ "${foo:#x}", "Dockerfile:7: failed to expand '${foo:#x}': unsupported modifier ':#' in substitution" },
		{ "'abc", "Dockerfile:7: failed to expand ''abc': missing closing single quote" },
		{ "\"abc", "Dockerfile:7: failed to expand '\"abc': missing closing double quote" },
		{ "${foo/x", "Dockerfile:7: failed to expand '${foo/x': syntax error: missing '/' in ${}" },
	};
	const struct plait_expand_opts o = { .filename = "Dockerfile", .line = 7 };
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_error_ struct plait_error *err = NULL;
		_cleanup_free_ char *out = NULL;
		int r = plait_expand_word(cases[i].in, &o, plait_expand_lookup_envv, env, &out, &err);
		if (r >= 0)
			fail_msg("expanding '%s' succeeded with '%s', want an error", cases[i].in, out);
		assert_int_equal(r, -PLAIT_E_INVALID);
		assert_non_null(err);
		if (!streq(err->msg, cases[i].msg))
			fail_msg("expanding '%s': got error\n  %s\nwant\n  %s", cases[i].in, err->msg,
				 cases[i].msg);
		assert_null(out);
	}
	/* ProcessWords reports the same errors. */
	_cleanup_error_ struct plait_error *err = NULL;
	char **w = NULL;
	assert_int_equal(plait_expand_words("a ${unset:?} b", &o, plait_expand_lookup_envv, env, &w,
					    NULL, &err),
			 -PLAIT_E_INVALID);
	assert_null(w);
	assert_string_equal(err->msg, "Dockerfile:7: failed to expand 'a ${unset:?} b': variable "
				      "'unset' is not allowed to be unset");
}

struct seen {
	char names[8][16];
	int n;
};

static const char *recording_lookup(const char *name, void *userdata)
{
	struct seen *s = userdata;
	if (s->n < 8)
		snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", name);
	return streq(name, "V") ? "v" : NULL;
}

static void test_expand__lookup_sees_every_referenced_name(void **state)
{
	(void)state;
	struct seen s = { 0 };
	_cleanup_free_ char *out = NULL;
	assert_int_equal(plait_expand_word("$V '$NOT' ${A:-$B} \\$ESC", NULL, recording_lookup, &s,
					   &out, NULL),
			 0);
	assert_string_equal(out, "v $NOT  $ESC");
	/* The default word is expanded before the variable is looked up, as in BuildKit. */
	assert_int_equal(s.n, 3);
	assert_string_equal(s.names[0], "V");
	assert_string_equal(s.names[1], "B");
	assert_string_equal(s.names[2], "A");
}

static void test_expand__applies_table(void **state)
{
	(void)state;
	static const enum plait_df_kind yes[] = {
		PLAIT_DF_ADD, PLAIT_DF_COPY, PLAIT_DF_ENV, PLAIT_DF_EXPOSE, PLAIT_DF_FROM, PLAIT_DF_LABEL,
		PLAIT_DF_STOPSIGNAL, PLAIT_DF_USER, PLAIT_DF_VOLUME, PLAIT_DF_WORKDIR, PLAIT_DF_ARG,
	};
	static const enum plait_df_kind no[] = {
		PLAIT_DF_RUN, PLAIT_DF_CMD, PLAIT_DF_ENTRYPOINT, PLAIT_DF_SHELL, PLAIT_DF_ONBUILD,
		PLAIT_DF_HEALTHCHECK, PLAIT_DF_MAINTAINER, PLAIT_DF_INVALID, PLAIT_DF_KIND_COUNT,
	};
	for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
		if (!plait_expand_applies(yes[i]))
			fail_msg("%s should expand", plait_df_kind_name(yes[i]));
	for (size_t i = 0; i < ARRAY_SIZE(no); i++)
		if (plait_expand_applies(no[i]))
			fail_msg("kind %d (%s) should not expand", no[i], plait_df_kind_name(no[i]));
}

static void test_expand__opts_follow_the_dockerfile(void **state)
{
	(void)state;
	static const char src[] = "# escape=`\nFROM x\nWORKDIR C:\\$foo\n";
	struct plait_dockerfile df;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_dockerfile_parse(src, strlen(src), "Dockerfile.win", &df, &err), 0);
	struct plait_expand_opts o;
	plait_expand_opts_for(&o, &df, &df.instrs[1]);
	assert_int_equal(o.escape, '`');
	assert_int_equal(o.line, 3);
	_cleanup_free_ char *out = NULL;
	assert_int_equal(plait_expand_word(df.instrs[1].args[0], &o, plait_expand_lookup_envv, env,
					   &out, &err),
			 0);
	assert_string_equal(out, "C:\\bar");
	plait_dockerfile_release(&df);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expand__plain_and_braced_references),
		cmocka_unit_test(test_expand__defaults_distinguish_unset_from_empty),
		cmocka_unit_test(test_expand__nested_defaults_are_expanded),
		cmocka_unit_test(test_expand__escapes_and_quotes),
		cmocka_unit_test(test_expand__backtick_escape_keeps_backslashes),
		cmocka_unit_test(test_expand__pattern_modifiers),
		cmocka_unit_test(test_expand__raw_and_skip_options),
		cmocka_unit_test(test_expand__heredoc_keeps_quotes_and_unset),
		cmocka_unit_test(test_expand__words_split_outside_quotes),
		cmocka_unit_test(test_expand__errors_name_variable_and_line),
		cmocka_unit_test(test_expand__lookup_sees_every_referenced_name),
		cmocka_unit_test(test_expand__applies_table),
		cmocka_unit_test(test_expand__opts_follow_the_dockerfile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
