/* tests/unit/test_host.c - the host's platform (platforms/host.h) against uname(2). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <sys/utsname.h>

#include "platforms/host.h"

#include "core/banned.h"

/* Parse s and return its canonical form; fails the test on error. */
static char *parse_format(const char *s)
{
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_platform p;
	int r = plait_platform_parse(s, &p, &err);
	if (r < 0)
		fail_msg("parse '%s' failed: %s", s, err ? err->msg : "(no message)");
	char *f = plait_platform_format(&p);
	plait_platform_release(&p);
	return f;
}

static void test_host__matches_uname(void **state)
{
	(void)state;
	struct utsname u;
	assert_int_equal(uname(&u), 0);
	struct plait_platform host;
	plait_platform_host(&host);
	assert_string_equal(host.os, "linux");
	assert_non_null(host.architecture);
	static const struct {
		const char *machine, *arch;
	} map[] = {
	    {"x86_64", "amd64"}, {"aarch64", "arm64"},	 {"armv7l", "arm"},
	    {"armv6l", "arm"},	 {"i686", "386"},	 {"ppc64le", "ppc64le"},
	    {"s390x", "s390x"},	 {"riscv64", "riscv64"}, {"loongarch64", "loong64"},
	};
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++) {
		if (!streq(u.machine, map[i].machine))
			continue;
		known = true;
		assert_string_equal(host.architecture, map[i].arch);
	}
	if (!known)
		print_message("uname machine '%s' not in the test's table; got '%s'\n", u.machine,
			      host.architecture);
	if (streq(host.architecture, "arm"))
		assert_non_null(host.variant);
	else if (streq(host.architecture, "amd64") || streq(host.architecture, "arm64"))
		assert_null(host.variant);
	/* The host platform is already normalised: parsing its format gives it back. */
	_cleanup_free_ char *f = plait_platform_format(&host);
	_cleanup_free_ char *again = parse_format(f);
	if (known)
		assert_string_equal(again, f);
	plait_platform_release(&host);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_host__matches_uname),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
