/* Unit tests for core/timestamp.c: RFC 3339 and SOURCE_DATE_EPOCH. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/timestamp.h"

#include "core/banned.h"

static void test_timestamp__rfc3339_is_utc_with_z(void **state)
{
	(void)state;
	static const struct {
		int64_t epoch;
		const char *want;
	} cases[] = {
		{ 0, "1970-01-01T00:00:00Z" },
		{ 1700000000, "2023-11-14T22:13:20Z" },
		{ 951782400, "2000-02-29T00:00:00Z" },
		{ 4102444799, "2099-12-31T23:59:59Z" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[PLAIT_RFC3339_MAX];
		plait_rfc3339(cases[i].epoch, got);
		if (strcmp(got, cases[i].want))
			fail_msg("epoch %lld: got '%s', want '%s'", (long long)cases[i].epoch, got,
				 cases[i].want);
	}
}

static void test_timestamp__now_or_prefers_the_epoch(void **state)
{
	(void)state;
	char got[PLAIT_RFC3339_MAX];
	plait_rfc3339_now_or(true, 1700000000, got);
	assert_string_equal(got, "2023-11-14T22:13:20Z");
	/* no epoch: now, which is between two readings of the clock */
	char before[PLAIT_RFC3339_MAX], after[PLAIT_RFC3339_MAX];
	plait_rfc3339((int64_t)time(NULL), before);
	plait_rfc3339_now_or(false, 1700000000, got);
	plait_rfc3339((int64_t)time(NULL), after);
	if (strcmp(before, got) > 0 || strcmp(got, after) > 0)
		fail_msg("now is '%s', not between '%s' and '%s'", got, before, after);
}

static void test_timestamp__epoch_parse_takes_what_strtoll_takes(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t want; /* -1: refused */
	} cases[] = {
		{ "0", 0 },	     { "1700000000", 1700000000 }, { "+5", 5 },   { " 7", 7 },
		{ "", -1 },	     { "-1", -1 },		   { "12x", -1 }, { "1 ", -1 },
		{ "0x10", -1 },	     { "99999999999999999999", -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t got = 42;
		int r = plait_epoch_parse(cases[i].s, &got);
		if (cases[i].want < 0) {
			if (r != -EINVAL || got != 42)
				fail_msg("'%s': r=%d out=%lld, want -EINVAL and out untouched", cases[i].s,
					 r, (long long)got);
		} else if (r != 0 || got != cases[i].want) {
			fail_msg("'%s': r=%d out=%lld, want %lld", cases[i].s, r, (long long)got,
				 (long long)cases[i].want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timestamp__rfc3339_is_utc_with_z),
	    cmocka_unit_test(test_timestamp__now_or_prefers_the_epoch),
	    cmocka_unit_test(test_timestamp__epoch_parse_takes_what_strtoll_takes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
