/* Unit tests for core/userns.c (id maps) and platforms/rootless.c (the maps
 * a rootless build asks newuidmap/newgidmap for). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/userns.h"
#include "core/util.h"
#include "platforms/rootless.h"

#include "core/banned.h"

static void assert_range(const struct plait_idmap_range *r, uint32_t in, uint32_t out, uint32_t count)
{
	if (r->inside != in || r->outside != out || r->count != count)
		fail_msg("range is %u %u %u, want %u %u %u", r->inside, r->outside, r->count, in, out, count);
}

static void test_subid__matches_name_or_uid(void **state)
{
	(void)state;
	const char *text = "alice:100000:65536\n"
			   "bob:165536:65536\n"
			   "1003:231072:1000\n"
			   "alice:300000:10\n";
	struct plait_idmap_range r[4];
	assert_int_equal(plait_subid_parse(text, "alice", 1001, r, 4), 2);
	assert_range(&r[0], 0, 100000, 65536);
	assert_range(&r[1], 0, 300000, 10);
	assert_int_equal(plait_subid_parse(text, "carol", 1003, r, 4), 1);
	assert_range(&r[0], 0, 231072, 1000);
	assert_int_equal(plait_subid_parse(text, "dave", 1004, r, 4), 0);
	/* A name is not a prefix match. */
	assert_int_equal(plait_subid_parse(text, "ali", 1009, r, 4), 0);
	assert_int_equal(plait_subid_parse(text, "alicex", 1009, r, 4), 0);
}

static void test_subid__skips_comments_and_malformed_lines(void **state)
{
	(void)state;
	const char *text = "# alice:1:2\n"
			   "alice:abc:65536\n"
			   "alice:100000\n"
			   "alice:100000:0\n"
			   "alice:100000:65536:extra\n"
			   "alice:99999999999:1\n"
			   "\n"
			   "  alice:200000:65536  \r\n"
			   "alice:400000:5"; /* no final newline */
	struct plait_idmap_range r[4];
	assert_int_equal(plait_subid_parse(text, "alice", 1001, r, 4), 2);
	assert_range(&r[0], 0, 200000, 65536);
	assert_range(&r[1], 0, 400000, 5);
}

static void test_subid__counts_past_max(void **state)
{
	(void)state;
	struct plait_idmap_range r[1];
	assert_int_equal(plait_subid_parse("a:1:1\na:5:1\na:9:1\n", "a", 7, r, 1), 3);
	assert_range(&r[0], 0, 1, 1);
	assert_int_equal(plait_subid_parse("", "a", 7, r, 1), 0);
}

static void test_idmap__root_is_the_user_then_the_ranges(void **state)
{
	(void)state;
	struct plait_idmap_range sub[2] = { { 0, 100000, 65536 }, { 0, 300000, 10 } }, m[8];
	uint64_t total;
	size_t n = plait_idmap_build(1001, sub, 2, m, 8, &total);
	assert_int_equal(n, 3);
	assert_range(&m[0], 0, 1001, 1);
	assert_range(&m[1], 1, 100000, 65536);
	assert_range(&m[2], 65537, 300000, 10);
	assert_int_equal(total, 1 + 65536 + 10);
}

static void test_idmap__own_id_inside_a_range_is_not_mapped_twice(void **state)
{
	(void)state;
	struct plait_idmap_range sub[1] = { { 0, 1000, 100 } }, m[4];
	uint64_t total;
	size_t n = plait_idmap_build(1050, sub, 1, m, 4, &total);
	assert_int_equal(n, 2);
	assert_range(&m[0], 0, 1050, 1);
	assert_range(&m[1], 1, 1000, 50);
	assert_int_equal(total, 51);
}

static void test_idmap__no_ranges_is_the_single_mapping(void **state)
{
	(void)state;
	struct plait_idmap_range m[4];
	uint64_t total;
	assert_int_equal(plait_idmap_build(1001, NULL, 0, m, 4, &total), 1);
	assert_range(&m[0], 0, 1001, 1);
	assert_int_equal(total, 1);
	assert_int_equal(plait_idmap_build(1001, NULL, 0, m, 0, &total), 0);
}

static void test_idmap__stops_at_max_lines_and_below_minus_one(void **state)
{
	(void)state;
	struct plait_idmap_range sub[3] = { { 0, 10, 5 }, { 0, 20, 5 }, { 0, 4294967290u, 100 } }, m[2];
	uint64_t total;
	assert_int_equal(plait_idmap_build(1, sub, 3, m, 2, &total), 2);
	assert_range(&m[1], 1, 10, 5);
	struct plait_idmap_range m3[3];
	assert_int_equal(plait_idmap_build(1, &sub[2], 1, m3, 3, &total), 2);
	assert_range(&m3[1], 1, 4294967290u, 5); /* 4294967295 is no id */
}

static void test_idmap__parses_proc_maps(void **state)
{
	(void)state;
	struct plait_idmap_range r[4];
	assert_int_equal(plait_idmap_parse_proc("         0          0 4294967295\n", r, 4), 1);
	assert_true(plait_idmap_is_initial(r, 1));
	assert_int_equal(plait_idmap_parse_proc("0 1001 1\n1 100000 65536\n", r, 4), 2);
	assert_false(plait_idmap_is_initial(r, 2));
	assert_range(&r[1], 1, 100000, 65536);
	assert_int_equal(plait_idmap_parse_proc("0 1001\n", r, 4), -1);
	assert_int_equal(plait_idmap_parse_proc("0 1001 1 7\n", r, 4), -1);
	assert_int_equal(plait_idmap_parse_proc("", r, 4), 0);
}

static void test_userns__flatten_is_off_until_chosen(void **state)
{
	(void)state;
	assert_false(plait_userns_flatten());
	plait_userns_set_flatten(true);
	assert_true(plait_userns_flatten());
	plait_userns_set_flatten(false);
	/* The test runs in some namespace: the xattr names agree with it. */
	const struct plait_userns_info *in = plait_userns_self();
	assert_string_equal(plait_userns_opaque_xattr(), in->nested ? "user.overlay.opaque" : "trusted.overlay.opaque");
	assert_true(strncmp(plait_userns_opaque_xattr(), plait_userns_overlay_xattr_prefix(),
			    strlen(plait_userns_overlay_xattr_prefix())) == 0);
}

static char *write_tmp(const char *text)
{
	char *p = xstrdup("/tmp/test_userns.XXXXXX");
	int fd = mkstemp(p);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return p;
}

static void test_rootless__maps_from_the_files(void **state)
{
	(void)state;
	_cleanup_free_ char *u = write_tmp("alice:100000:65536\n");
	_cleanup_free_ char *g = write_tmp("alice:200000:65536\n");
	struct plait_rootless_env env = { .subuid = u, .subgid = g };
	struct plait_idmap_range um[PLAIT_IDMAP_MAX], gm[PLAIT_IDMAP_MAX];
	size_t nu, ng;
	struct plait_error *err = NULL;
	assert_int_equal(plait_rootless_maps(&env, "alice", 1001, 1002, um, &nu, gm, &ng, &err), 0);
	assert_int_equal(nu, 2);
	assert_int_equal(ng, 2);
	assert_range(&um[0], 0, 1001, 1);
	assert_range(&gm[0], 0, 1002, 1);
	assert_range(&gm[1], 1, 200000, 65536);
	unlink(u);
	unlink(g);
}

static void test_rootless__no_range_names_the_file_and_the_fix(void **state)
{
	(void)state;
	_cleanup_free_ char *u = write_tmp("bob:100000:65536\n");
	_cleanup_free_ char *g = write_tmp("alice:200000:65536\n");
	struct plait_rootless_env env = { .subuid = u, .subgid = g };
	struct plait_idmap_range um[PLAIT_IDMAP_MAX], gm[PLAIT_IDMAP_MAX];
	size_t nu, ng;
	struct plait_error *err = NULL;
	assert_true(plait_rootless_maps(&env, "alice", 1001, 1001, um, &nu, gm, &ng, &err) < 0);
	const char *m = err->msg;
	if (!strstr(m, u) || !strstr(m, "user 'alice' (uid 1001) has no subordinate uids") ||
	    !strstr(m, "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice") ||
	    !strstr(m, "--userns=single"))
		fail_msg("message: %s", m);
	plait_error_free(err);
	err = NULL;
	/* Too small a range is refused too, saying how many there are. */
	_cleanup_free_ char *small = write_tmp("alice:100000:1000\n");
	env.subuid = small;
	assert_true(plait_rootless_maps(&env, "alice", 1001, 1001, um, &nu, gm, &ng, &err) < 0);
	if (!strstr(err->msg, "has only 1000 subordinate uids"))
		fail_msg("message: %s", err->msg);
	plait_error_free(err);
	/* A missing file is no range at all. */
	err = NULL;
	env.subuid = "/nonexistent/subuid";
	assert_true(plait_rootless_maps(&env, "alice", 1001, 1001, um, &nu, gm, &ng, &err) < 0);
	if (!strstr(err->msg, "/nonexistent/subuid: user 'alice'"))
		fail_msg("message: %s", err->msg);
	plait_error_free(err);
	unlink(u);
	unlink(g);
	unlink(small);
}

static void test_rootless__mode_names(void **state)
{
	(void)state;
	enum plait_userns_mode m;
	assert_int_equal(plait_userns_mode_from_string("auto", &m), 0);
	assert_int_equal(m, PLAIT_USERNS_AUTO);
	assert_int_equal(plait_userns_mode_from_string("single", &m), 0);
	assert_int_equal(m, PLAIT_USERNS_SINGLE);
	assert_int_equal(plait_userns_mode_from_string("host", &m), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subid__matches_name_or_uid),
	    cmocka_unit_test(test_subid__skips_comments_and_malformed_lines),
	    cmocka_unit_test(test_subid__counts_past_max),
	    cmocka_unit_test(test_idmap__root_is_the_user_then_the_ranges),
	    cmocka_unit_test(test_idmap__own_id_inside_a_range_is_not_mapped_twice),
	    cmocka_unit_test(test_idmap__no_ranges_is_the_single_mapping),
	    cmocka_unit_test(test_idmap__stops_at_max_lines_and_below_minus_one),
	    cmocka_unit_test(test_idmap__parses_proc_maps),
	    cmocka_unit_test(test_userns__flatten_is_off_until_chosen),
	    cmocka_unit_test(test_rootless__maps_from_the_files),
	    cmocka_unit_test(test_rootless__no_range_names_the_file_and_the_fix),
	    cmocka_unit_test(test_rootless__mode_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
