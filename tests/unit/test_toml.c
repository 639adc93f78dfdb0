/* tests/unit/test_toml.c - the registries.conf subset of TOML (core/toml.h):
 * what it reads, the tables it builds, and the exact position and wording of
 * each refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "asserts.h"
#include "core/toml.h"

#include "core/banned.h"

static struct plait_toml_table *parse_ok(const char *text)
{
	struct plait_toml_table *t = NULL;
	struct plait_error *err = NULL;
	if (plait_toml_parse("t.conf", text, strlen(text), &t, &err) < 0)
		fail_msg("refused: %s\n--- input:\n%s", err->msg, text);
	return t;
}

/* The message for text, which must be refused. */
static void assert_refused(const char *text, size_t len, const char *want)
{
	struct plait_toml_table *t = NULL;
	struct plait_error *err = NULL;
	int r = plait_toml_parse("t.conf", text, len, &t, &err);
	if (r >= 0)
		fail_msg("accepted, want '%s'\n--- input:\n%s", want, text);
	assert_int_equal(r, -PLAIT_E_INVALID);
	if (!strstr(err->msg, want))
		fail_msg("message '%s'\n does not contain '%s'\n--- input:\n%s", err->msg, want, text);
	plait_error_free(err);
}
#define REFUSED(text, want) assert_refused(text, strlen(text), want)

static const struct plait_toml_value *get(const struct plait_toml_table *t, const char *key,
					  enum plait_toml_type type)
{
	const struct plait_toml_value *v = plait_toml_get(t, key);
	if (!v)
		fail_msg("no key '%s'", key);
	if (v->type != type)
		fail_msg("'%s' is a %s, want a %s", key, plait_toml_type_name(v->type), plait_toml_type_name(type));
	return v;
}

static void test_toml__reads_strings_booleans_and_arrays(void **state)
{
	(void)state;
	struct plait_toml_table *t = parse_ok("# a comment\n"
					      "\n"
					      "a = \"x\"   # after a value\n"
					      "b='lit\\eral'\n"
					      "\"quoted key\" = true\n"
					      "'lit key'=false\n"
					      "c = []\n"
					      "d = [ \"one\", 'two', ]\n"
					      "e = [\n"
					      "  \"x\", # first\n"
					      "\n"
					      "  # a comment line\n"
					      "  \"y\"\n"
					      "]\n"
					      "bare-key_09 = \"\"\n");
	assert_string_equal(get(t, "a", PLAIT_TOML_STRING)->str, "x");
	assert_string_equal(get(t, "b", PLAIT_TOML_STRING)->str, "lit\\eral");
	assert_true(get(t, "quoted key", PLAIT_TOML_BOOL)->boolean);
	assert_false(get(t, "lit key", PLAIT_TOML_BOOL)->boolean);
	assert_strv(get(t, "c", PLAIT_TOML_STRINGS)->strings, NULL);
	assert_strv(get(t, "d", PLAIT_TOML_STRINGS)->strings, "one", "two", NULL);
	assert_strv(get(t, "e", PLAIT_TOML_STRINGS)->strings, "x", "y", NULL);
	assert_string_equal(get(t, "bare-key_09", PLAIT_TOML_STRING)->str, "");
	/* values remember their key's position */
	assert_int_equal(get(t, "a", PLAIT_TOML_STRING)->line, 3);
	assert_int_equal(get(t, "a", PLAIT_TOML_STRING)->col, 1);
	assert_int_equal(get(t, "e", PLAIT_TOML_STRINGS)->line, 9);
	/* the order of definition is kept */
	assert_string_equal(t->entries[0].key, "a");
	assert_string_equal(t->entries[t->n - 1].key, "bare-key_09");
	plait_toml_free(t);
}

static void test_toml__decodes_escapes(void **state)
{
	(void)state;
	struct plait_toml_table *t =
		parse_ok("s = \"q\\\"b\\\\ \\t\\n\\r\\b\\f \\u00e9 \\u20AC \\U0001F600\"\n"
			 "raw = \"caf\xc3\xa9\"\n");
	assert_string_equal(get(t, "s", PLAIT_TOML_STRING)->str,
			    "q\"b\\ \t\n\r\b\f \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_string_equal(get(t, "raw", PLAIT_TOML_STRING)->str, "caf\xc3\xa9");
	plait_toml_free(t);
}

static void test_toml__crlf_and_bom(void **state)
{
	(void)state;
	struct plait_toml_table *t = parse_ok("\xef\xbb\xbf"
					      "a = \"1\"\r\n[t]\r\nb = [\r\n'x',\r\n]\r\n");
	assert_string_equal(get(t, "a", PLAIT_TOML_STRING)->str, "1");
	const struct plait_toml_value *tv = get(t, "t", PLAIT_TOML_TABLE);
	assert_strv(get(tv->table, "b", PLAIT_TOML_STRINGS)->strings, "x", NULL);
	assert_int_equal(tv->table->line, 2);
	plait_toml_free(t);

	/* a lone CR is not a line end */
	REFUSED("a = \"1\"\rb = \"2\"\n", "t.conf:1:8: expected the end of the line after the value, found byte 0x0d");
}

static void test_toml__tables_and_arrays_of_tables(void **state)
{
	(void)state;
	struct plait_toml_table *t = parse_ok("top = 'x'\n"
					      "[[registry]]\n"
					      "location = 'a'\n"
					      "[[registry.mirror]]\n"
					      "location = 'a1'\n"
					      "[[registry.mirror]]\n"
					      "location = 'a2'\n"
					      "[[registry]]\n"
					      "location = 'b'\n"
					      "[ aliases ]\n"
					      "\"x\" = 'y'\n"
					      "[a.b.c]\n"
					      "k = true\n"
					      "[a]\n"
					      "k = false\n"
					      "[ \"q.k\" . 'lit' ]\n"
					      "z = []\n");
	assert_string_equal(get(t, "top", PLAIT_TOML_STRING)->str, "x");
	const struct plait_toml_value *regs = get(t, "registry", PLAIT_TOML_TABLES);
	assert_int_equal(regs->n_tables, 2);
	assert_int_equal(regs->tables[0]->line, 2);
	assert_string_equal(get(regs->tables[0], "location", PLAIT_TOML_STRING)->str, "a");
	const struct plait_toml_value *m = get(regs->tables[0], "mirror", PLAIT_TOML_TABLES);
	assert_int_equal(m->n_tables, 2);
	assert_string_equal(get(m->tables[0], "location", PLAIT_TOML_STRING)->str, "a1");
	assert_string_equal(get(m->tables[1], "location", PLAIT_TOML_STRING)->str, "a2");
	assert_int_equal(m->tables[1]->line, 6);
	assert_string_equal(get(regs->tables[1], "location", PLAIT_TOML_STRING)->str, "b");
	assert_null(plait_toml_get(regs->tables[1], "mirror"));
	assert_string_equal(get(get(t, "aliases", PLAIT_TOML_TABLE)->table, "x", PLAIT_TOML_STRING)->str, "y");
	/* [a.b.c] made a and a.b implicitly; [a] may then be defined once */
	const struct plait_toml_value *a = get(t, "a", PLAIT_TOML_TABLE);
	assert_false(get(a->table, "k", PLAIT_TOML_BOOL)->boolean);
	const struct plait_toml_value *b = get(a->table, "b", PLAIT_TOML_TABLE);
	assert_true(get(get(b->table, "c", PLAIT_TOML_TABLE)->table, "k", PLAIT_TOML_BOOL)->boolean);
	const struct plait_toml_value *q = get(t, "q.k", PLAIT_TOML_TABLE);
	assert_strv(get(get(q->table, "lit", PLAIT_TOML_TABLE)->table, "z", PLAIT_TOML_STRINGS)->strings, NULL);
	plait_toml_free(t);

	/* empty input: an empty root */
	t = parse_ok("");
	assert_int_equal(t->n, 0);
	plait_toml_free(t);
	t = parse_ok("  \n# only\n\t\n");
	assert_int_equal(t->n, 0);
	plait_toml_free(t);
}

static void test_toml__refuses_what_is_outside_the_subset(void **state)
{
	(void)state;
	REFUSED("a = 1\n", "t.conf:1:5: numbers and dates are not supported");
	REFUSED("a = -1\n", "t.conf:1:5: numbers and dates");
	REFUSED("\n\na = 1979-05-27\n", "t.conf:3:5: numbers and dates");
	REFUSED("a = { b = 'c' }\n", "t.conf:1:5: inline tables are not supported: write a [table] instead");
	REFUSED("a = \"\"\"x\"\"\"\n", "t.conf:1:5: multi-line strings (\"\"\") are not supported");
	REFUSED("a = '''x'''\n", "t.conf:1:5: multi-line strings (''') are not supported");
	REFUSED("a = [1, 2]\n", "t.conf:1:6: arrays may hold only strings here, found '1'");
	REFUSED("a = ['x', true]\n", "t.conf:1:11: arrays may hold only strings here, found 't'");
	REFUSED("a = [['x']]\n", "t.conf:1:6: arrays may hold only strings here, found '['");
	REFUSED("a.b = 'c'\n", "t.conf:1:2: dotted keys are not supported: put 'a' under a [header]");
	REFUSED("a = yes\n", "t.conf:1:5: expected a value (a quoted string, true, false or an array of strings), "
			 "found 'y'");
	REFUSED("a = truely\n", "t.conf:1:5: expected a value");
	REFUSED("a = TRUE\n", "t.conf:1:5: expected a value");
	REFUSED("a =\n", "t.conf:1:4: expected a value after '=', found the end of the line");
	REFUSED("a = # c\n", "t.conf:1:5: expected a value after '=', found a comment");
	REFUSED("a = ", "t.conf:1:5: expected a value after '=', found the end of the file");
	REFUSED("a 'b'\n", "t.conf:1:3: expected '=' after the key 'a', found '''");
	REFUSED("= 'b'\n", "t.conf:1:1: expected a key (letters, digits, '_', '-', or a quoted string), found '='");
	REFUSED("a = 'b' 'c'\n", "t.conf:1:9: expected the end of the line after the value, found '''");
	REFUSED("a = true false\n", "t.conf:1:10: expected the end of the line after the value");
	REFUSED("k\xc3\xa9 = 'x'\n", "t.conf:1:2: expected '=' after the key 'k', found byte 0xc3");
}

static void test_toml__refuses_bad_strings_with_their_position(void **state)
{
	(void)state;
	REFUSED("a = \"abc\n", "t.conf:1:5: unterminated string: close it with \" on the same line");
	REFUSED("a = 'abc", "t.conf:1:5: unterminated string: close it with ' on the same line");
	REFUSED("x = 'ok'\na = \"a\\qb\"\n", "t.conf:2:7: unknown escape '\\q'");
	REFUSED("a = \"\\u12\"\n", "t.conf:1:6: \\u needs 4 hexadecimal digits");
	REFUSED("a = \"\\U0001F60\"\n", "t.conf:1:6: \\U needs 8 hexadecimal digits");
	REFUSED("a = \"\\u0000\"\n", "t.conf:1:6: \\u0000 is not allowed: NUL cannot be in a value");
	REFUSED("a = \"\\uD800\"\n", "t.conf:1:6: \\uD800 is not allowed: not a Unicode scalar value");
	REFUSED("a = \"\\U00110000\"\n", "t.conf:1:6: \\U00110000 is not allowed");
	REFUSED("a = \"x\x01y\"\n", "t.conf:1:7: control character 0x01 in a string");
	REFUSED("a = 'x\x7fy'\n", "t.conf:1:7: control character 0x7f in a string");
	REFUSED("# bad \x02 comment\n", "t.conf:1:7: control character 0x02 in a comment");
	REFUSED("a = 'ok'\nb = 'caf\xc3'\n", "t.conf:2:9: byte 0xc3 is not valid UTF-8");
	assert_refused("a = 'x'\n\nb = 'a\0b'\n", 17, "t.conf:3:7: NUL byte in the file");
	REFUSED("a = [\n  'x',\n  'y'\n", "t.conf:1:5: unterminated array: close it with ']'");
	REFUSED("a = ['x' 'y']\n", "t.conf:1:10: expected ',' or ']' in the array, found '''");
	REFUSED("a = [\n 'x',\n 'y\n]\n", "t.conf:3:2: unterminated string");
}

static void test_toml__refuses_redefinitions(void **state)
{
	(void)state;
	REFUSED("a = 'x'\n\na = 'y'\n", "t.conf:3:1: key 'a' is defined twice (first at line 1)");
	REFUSED("[t]\nk = true\n[u]\n[t]\n", "t.conf:4:1: table [t] is defined twice (first at line 1)");
	REFUSED("[[r]]\n[r]\n", "t.conf:2:1: [r] is an array of tables (line 1): write [[r]]");
	REFUSED("[r]\n[[r]]\n", "t.conf:2:1: [[r]]: 'r' is already a table (line 1), not an array of tables");
	REFUSED("r = 'x'\n[r.m]\n", "t.conf:2:1: [r.m]: 'r' is already a string (line 1), not a table");
	REFUSED("r = 'x'\n[[r]]\n", "t.conf:2:1: [[r]]: 'r' is already a string (line 1)");
	REFUSED("[t]\nm = []\n[t.m]\n", "t.conf:3:1: [t.m]: 'm' is already a array of strings (line 2), not a table");
	REFUSED("[t.u]\n[t]\nu = 'x'\n", "t.conf:3:1: key 'u' is defined twice (first at line 1)");
	REFUSED("[a\n", "t.conf:1:3: expected ']' to close the header, found the end of the line");
	REFUSED("[[a]\n", "t.conf:1:4: expected ']]' to close the header, found ']'");
	REFUSED("[a.]\n", "t.conf:1:4: expected a key");
	REFUSED("[]\n", "t.conf:1:2: expected a key");
	REFUSED("[a] b = 1\n", "t.conf:1:5: expected the end of the line after the [header], found 'b'");
	REFUSED("[[a]] # ok\n[[a]] x\n", "t.conf:2:7: expected the end of the line after the [[header]]");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_toml__reads_strings_booleans_and_arrays),
	    cmocka_unit_test(test_toml__decodes_escapes),
	    cmocka_unit_test(test_toml__crlf_and_bom),
	    cmocka_unit_test(test_toml__tables_and_arrays_of_tables),
	    cmocka_unit_test(test_toml__refuses_what_is_outside_the_subset),
	    cmocka_unit_test(test_toml__refuses_bad_strings_with_their_position),
	    cmocka_unit_test(test_toml__refuses_redefinitions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
