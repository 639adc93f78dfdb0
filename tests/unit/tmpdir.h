/* tests/unit/tmpdir.h - a fresh scratch directory for a unit test,
 * "$TMPDIR/plait-<what>-XXXXXX" (removed by the test with plait_rm_rf). The
 * library's own plait_mkdtemp() also locks what it makes (core/fs.h); a test
 * that only needs a place to work uses this. */
#ifndef PLAIT_TESTS_TMPDIR_H
#define PLAIT_TESTS_TMPDIR_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static inline char *test_mkdtemp(const char *what)
{
	const char *t = getenv("TMPDIR");
	size_t n = strlen(t && *t ? t : "/tmp") + strlen(what) + 16;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s/plait-%s-XXXXXX", t && *t ? t : "/tmp", what);
	if (!mkdtemp(p))
		fail_msg("cannot create '%s'", p);
	return p;
}

#endif
