/* tests/unit/asserts.h - assertions several unit tests share, beside
 * cmocka's: a string contains another, a NULL-terminated string vector is
 * exactly the given strings. Each fails the test with what differed. */
#ifndef PLAIT_TESTS_ASSERTS_H
#define PLAIT_TESTS_ASSERTS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static inline void assert_contains(const char *hay, const char *needle)
{
	if (!hay || !strstr(hay, needle))
		fail_msg("'%s' does not contain '%s'", hay ? hay : "(null)", needle);
}

/* NULL-terminated v equals the given strings (a NULL-terminated list). */
static inline void assert_strv(char *const *v, ...)
{
	va_list ap;
	va_start(ap, v);
	size_t i = 0;
	for (const char *want; (want = va_arg(ap, const char *)); i++) {
		if (!v || !v[i])
			fail_msg("entry %zu: missing, want '%s'", i, want);
		assert_string_equal(v[i], want);
	}
	va_end(ap);
	if (v && v[i])
		fail_msg("entry %zu: unexpected '%s'", i, v[i]);
}

#endif
