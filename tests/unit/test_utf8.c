/* Unit tests for core/utf8: the validator every JSON-bound value goes through. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/utf8.h"

#include "core/banned.h"

/* Valid, or invalid with the first bad sequence at want_bad. */
static void check(const char *what, const char *s, size_t n, bool want_ok, size_t want_bad)
{
	size_t bad = (size_t)-1;
	bool ok = plait_utf8_valid(s, n, &bad);
	if (ok != want_ok)
		fail_msg("%s: plait_utf8_valid said %s, expected %s", what, ok ? "valid" : "invalid",
			 want_ok ? "valid" : "invalid");
	if (!ok && bad != want_bad)
		fail_msg("%s: first bad byte at offset %zu, expected %zu", what, bad, want_bad);
}
#define OK(what, lit) check(what, lit, sizeof(lit) - 1, true, 0)
#define BAD(what, lit, at) check(what, lit, sizeof(lit) - 1, false, at)

static void test_utf8__valid_text(void **state)
{
	(void)state;
	OK("empty", "");
	OK("ascii", "org.opencontainers.image.title=app");
	OK("NUL is a character", "a\0b");
	OK("2 bytes (U+00E9)", "caf\xc3\xa9");
	OK("smallest 2 bytes (U+0080)", "\xc2\x80");
	OK("smallest 3 bytes (U+0800)", "\xe0\xa0\x80");
	OK("last before the surrogates (U+D7FF)", "\xed\x9f\xbf");
	OK("first after the surrogates (U+E000)", "\xee\x80\x80");
	OK("U+FFFD", "\xef\xbf\xbd");
	OK("smallest 4 bytes (U+10000)", "\xf0\x90\x80\x80");
	OK("emoji (U+1F600)", "\xf0\x9f\x98\x80");
	OK("largest (U+10FFFF)", "\xf4\x8f\xbf\xbf");
	assert_true(plait_utf8_valid("x", 1, NULL));
}

static void test_utf8__lone_and_stray_bytes(void **state)
{
	(void)state;
	BAD("0xff", "ab\xff", 2);
	BAD("0xfe", "\xfe", 0);
	BAD("a continuation byte alone", "a\x80z", 1);
	BAD("a lead byte followed by ascii", "x\xc3(y", 1);
	BAD("0xf5 (would be above U+10FFFF)", "\xf5\x80\x80\x80", 0);
	BAD("latin-1 e acute", "caf\xe9 noir", 3);
	assert_false(plait_utf8_valid("\xff", 1, NULL));
}

static void test_utf8__overlongs(void **state)
{
	(void)state;
	BAD("overlong NUL (C0 80)", "\xc0\x80", 0);
	BAD("overlong '/' (C1 AF)", "a\xc1\xaf", 1);
	BAD("overlong 3 bytes (E0 80 AF)", "\xe0\x80\xaf", 0);
	BAD("overlong 3 bytes below U+0800 (E0 9F BF)", "\xe0\x9f\xbf", 0);
	BAD("overlong 4 bytes (F0 80 80 AF)", "\xf0\x80\x80\xaf", 0);
	BAD("overlong 4 bytes below U+10000 (F0 8F BF BF)", "\xf0\x8f\xbf\xbf", 0);
}

static void test_utf8__surrogates(void **state)
{
	(void)state;
	BAD("U+D800", "\xed\xa0\x80", 0);
	BAD("U+DFFF", "ok\xed\xbf\xbf", 2);
	BAD("a CESU-8 pair", "\xed\xa0\xbd\xed\xb8\x80", 0);
}

static void test_utf8__above_10ffff(void **state)
{
	(void)state;
	BAD("U+110000", "\xf4\x90\x80\x80", 0);
	BAD("F7 BF BF BF", "\xf7\xbf\xbf\xbf", 0);
	BAD("5-byte form", "\xf8\x88\x80\x80\x80", 0);
}

static void test_utf8__truncated_sequences(void **state)
{
	(void)state;
	BAD("2-byte lead at the end", "abc\xc3", 3);
	BAD("3 bytes cut after 2", "\xe2\x82", 0);
	BAD("4 bytes cut after 3", "x\xf0\x9f\x98", 1);
	BAD("3 bytes, third not a continuation", "\xe2\x82z", 0);
	/* the length bounds the read: a valid sequence cut by n is invalid */
	check("U+00E9 cut by n", "\xc3\xa9", 1, false, 0);
	check("U+1F600 cut by n", "\xf0\x9f\x98\x80", 3, false, 0);
	/* after a valid multi-byte character, the offset still points at the bad one */
	BAD("bad after valid", "\xc3\xa9\xe2\x82\xac\xff", 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8__valid_text),
		cmocka_unit_test(test_utf8__lone_and_stray_bytes),
		cmocka_unit_test(test_utf8__overlongs),
		cmocka_unit_test(test_utf8__surrogates),
		cmocka_unit_test(test_utf8__above_10ffff),
		cmocka_unit_test(test_utf8__truncated_sequences),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
