/* Unit tests for core/strv.c: string vectors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

#include <jansson.h>

#include "core/strv.h"
#include "core/util.h"

#include "core/banned.h"

/* "[a|b]" for a vector, "(null)" for NULL: one string to compare. */
static char *show(char *const *v)
{
	if (!v)
		return xstrdup("(null)");
	_cleanup_free_ char *j = plait_strv_join(v, "|");
	size_t n = strlen(j) + 3;
	char *s = xmalloc(n);
	snprintf(s, n, "[%s]", j);
	return s;
}

static void assert_strv(char *const *v, const char *want)
{
	_cleanup_free_ char *got = show(v);
	if (strcmp(got, want))
		fail_msg("vector is %s, want %s", got, want);
}

static void test_strv__null_is_the_empty_vector(void **state)
{
	(void)state;
	assert_int_equal(plait_strv_length(NULL), 0);
	assert_false(plait_strv_contains(NULL, ""));
	assert_null(plait_strv_copy(NULL));
	_cleanup_free_ char *j = plait_strv_join(NULL, ",");
	assert_string_equal(j, "");
	plait_strv_free(NULL);
	_cleanup_strv_free_ char **e = plait_strv_copy_nonnull(NULL);
	assert_non_null(e);
	assert_null(e[0]);
}

static void test_strv__push_appends_copies_in_order(void **state)
{
	(void)state;
	_cleanup_strv_free_ char **v = NULL;
	char s[] = "a";
	plait_strv_push(&v, s);
	s[0] = 'x'; /* a copy was pushed */
	plait_strv_push(&v, "b");
	plait_strv_push_take(&v, xstrdup("c"));
	assert_int_equal(plait_strv_length(v), 3);
	assert_strv(v, "[a|b|c]");
}

static void test_strv__add_keeps_length_and_capacity(void **state)
{
	(void)state;
	_cleanup_strv_free_ char **v = NULL;
	size_t n = 0, alloc = 0;
	for (int i = 0; i < 40; i++) {
		char s[8];
		snprintf(s, sizeof(s), "%d", i);
		if (i % 2)
			plait_strv_add(&v, &n, &alloc, s);
		else
			plait_strv_add_take(&v, &n, &alloc, xstrdup(s));
		assert_int_equal(n, i + 1);
		assert_true(alloc >= n + 1);
		assert_null(v[n]);
	}
	assert_int_equal(plait_strv_length(v), 40);
	assert_string_equal(v[0], "0");
	assert_string_equal(v[39], "39");
}

static void test_strv__copy_is_deep(void **state)
{
	(void)state;
	_cleanup_strv_free_ char **v = NULL;
	plait_strv_push(&v, "x");
	plait_strv_push(&v, "y");
	_cleanup_strv_free_ char **c = plait_strv_copy(v);
	assert_ptr_not_equal(c, v);
	assert_ptr_not_equal(c[0], v[0]);
	v[0][0] = 'z';
	assert_strv(c, "[x|y]");
	_cleanup_strv_free_ char **d = plait_strv_copy_nonnull(v);
	assert_strv(d, "[z|y]");
}

static void test_strv__contains_matches_whole_elements(void **state)
{
	(void)state;
	_cleanup_strv_free_ char **v = NULL;
	plait_strv_push(&v, "linux/amd64");
	plait_strv_push(&v, "linux/arm64");
	assert_true(plait_strv_contains(v, "linux/arm64"));
	assert_false(plait_strv_contains(v, "linux/arm"));
	assert_false(plait_strv_contains(v, "linux/arm64/v8"));
}

static void test_strv__join_puts_sep_between(void **state)
{
	(void)state;
	_cleanup_strv_free_ char **v = NULL;
	plait_strv_push(&v, "a");
	_cleanup_free_ char *one = plait_strv_join(v, ", ");
	assert_string_equal(one, "a");
	plait_strv_push(&v, "");
	plait_strv_push(&v, "c");
	_cleanup_free_ char *three = plait_strv_join(v, ", ");
	assert_string_equal(three, "a, , c");
}

static void test_strv__read_only_functions_take_const_vectors(void **state)
{
	(void)state;
	/* a registry option is const char *const *; parsed lists are char ** */
	static const char *const hosts[] = { "a:5000", "b", NULL };
	const char *list[] = { "x", NULL };
	char *const mut[] = { (char *)"m", NULL };
	assert_int_equal(plait_strv_length(hosts), 2);
	assert_true(plait_strv_contains(hosts, "b"));
	assert_true(plait_strv_contains(list, "x"));
	assert_true(plait_strv_contains(mut, "m"));
	_cleanup_strv_free_ char **c = plait_strv_copy(hosts);
	assert_strv(c, "[a:5000|b]");
	_cleanup_free_ char *j = plait_strv_join(list, ",");
	assert_string_equal(j, "x");
}

static void test_strv__sort_is_byte_order(void **state)
{
	(void)state;
	_cleanup_strv_free_ char **v = NULL;
	plait_strv_sort(v); /* NULL: nothing to do */
	const char *in[] = { "b", "a/b", "B", "a", "a-b", "" };
	for (size_t i = 0; i < ARRAY_SIZE(in); i++)
		plait_strv_push(&v, in[i]);
	plait_strv_sort(v);
	assert_strv(v, "[|B|a|a-b|a/b|b]");
}

static void test_strv__to_json_is_an_array_in_order(void **state)
{
	(void)state;
	_cleanup_strv_free_ char **v = NULL;
	plait_strv_push(&v, "b");
	plait_strv_push(&v, "a");
	json_auto_t *a = plait_strv_to_json(v);
	_cleanup_free_ char *s = json_dumps(a, JSON_COMPACT);
	assert_string_equal(s, "[\"b\",\"a\"]");
	json_auto_t *e = plait_strv_to_json(NULL);
	_cleanup_free_ char *es = json_dumps(e, JSON_COMPACT);
	assert_string_equal(es, "[]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strv__null_is_the_empty_vector),
	    cmocka_unit_test(test_strv__push_appends_copies_in_order),
	    cmocka_unit_test(test_strv__add_keeps_length_and_capacity),
	    cmocka_unit_test(test_strv__copy_is_deep),
	    cmocka_unit_test(test_strv__contains_matches_whole_elements),
	    cmocka_unit_test(test_strv__join_puts_sep_between),
	    cmocka_unit_test(test_strv__read_only_functions_take_const_vectors),
	    cmocka_unit_test(test_strv__sort_is_byte_order),
	    cmocka_unit_test(test_strv__to_json_is_an_array_in_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
