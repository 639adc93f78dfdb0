/* tests/unit/test_frame.c - node protocol frames (core/frame.h) through a
 * real pipe: round trips, and each malformed stream refused with the frame
 * named. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/frame.h"
#include "core/util.h"

#include "core/banned.h"

/* A pipe holding bytes (small enough for the pipe buffer); returns its read end. */
static int pipe_with(const void *bytes, size_t len)
{
	int p[2];
	assert_int_equal(0, pipe(p));
	assert_int_equal(0, plait_write_all(p[1], bytes, len));
	close(p[1]);
	return p[0];
}

static void test_round_trip(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(0, pipe(p));
	json_t *hello = json_pack("{s:s, s:i, s:s}", "type", "hello", "protocol", 1, "version", "0.1.0");
	struct plait_error *e = NULL;
	assert_int_equal(0, plait_frame_write_control(p[1], hello, &e));
	assert_int_equal(0, plait_frame_write(p[1], PLAIT_FRAME_CONTENT, "abc\0def", 7, &e));
	assert_int_equal(0, plait_frame_write(p[1], PLAIT_FRAME_END, NULL, 0, &e));
	close(p[1]);
	struct plait_frame f;
	size_t n = 0;
	assert_int_equal(1, plait_frame_read(p[0], &f, &n, &e));
	assert_int_equal(PLAIT_FRAME_CONTROL, f.type);
	assert_true(json_equal(hello, f.control));
	plait_frame_release(&f);
	assert_int_equal(1, plait_frame_read(p[0], &f, &n, &e));
	assert_int_equal(PLAIT_FRAME_CONTENT, f.type);
	assert_int_equal(7, f.len);
	assert_memory_equal("abc\0def", f.payload, 7);
	assert_null(f.control);
	plait_frame_release(&f);
	assert_int_equal(1, plait_frame_read(p[0], &f, &n, &e));
	assert_int_equal(PLAIT_FRAME_END, f.type);
	assert_int_equal(0, f.len);
	plait_frame_release(&f);
	assert_int_equal(0, plait_frame_read(p[0], &f, &n, &e)); /* a clean end */
	assert_int_equal(3, n);
	close(p[0]);
	json_decref(hello);
}

static void test_header_bytes(void **state)
{
	(void)state;
	uint8_t h[PLAIT_FRAME_HEADER];
	plait_frame_header(h, PLAIT_FRAME_CONTENT, 0x01020304);
	const uint8_t want[] = { 'P', 'L', 'T', '1', 2, 0, 0, 0, 1, 2, 3, 4 };
	assert_memory_equal(want, h, sizeof(want));
}

static void expect_bad(const void *bytes, size_t len, const char *want)
{
	int fd = pipe_with(bytes, len);
	struct plait_frame f;
	size_t n = 0;
	struct plait_error *e = NULL;
	int r = plait_frame_read(fd, &f, &n, &e);
	close(fd);
	assert_int_equal(-PLAIT_E_INVALID, r);
	if (!strstr(e->msg, want))
		fail_msg("'%s' lacks '%s'", e->msg, want);
	assert_null(f.payload);
	assert_null(f.control);
	plait_error_free(e);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_bad("PLT1\x01\0\0", 7, "frame 1: the stream ends inside its header (7 of 12 bytes)");
	expect_bad("plait 0.1.0\n", 12, "frame 1: no \"PLT1\" header");
	expect_bad("PLT2\x01\0\0\0\0\0\0\0", 12, "no \"PLT1\" header");
	expect_bad("PLT1\x09\0\0\0\0\0\0\0", 12, "frame 1: unknown type 9");
	expect_bad("PLT1\x02\0\1\0\0\0\0\0", 12, "reserved header bytes");
	expect_bad("PLT1\x02\0\0\0\x01\0\0\x01", 12, "frame 1: 16777217 bytes is over the limit");
	expect_bad("PLT1\x03\0\0\0\0\0\0\x01x", 13, "an end-of-content frame has a payload");
	expect_bad("PLT1\x02\0\0\0\0\0\0\x05" "ab", 14, "frame 1: the stream ends inside its payload (2 of 5 bytes)");
	expect_bad("PLT1\x01\0\0\0\0\0\0\x03" "{x}", 15, "frame 1: a control frame that is not JSON");
	expect_bad("PLT1\x01\0\0\0\0\0\0\x02" "[]", 14, "no object with a string \"type\"");
	expect_bad("PLT1\x01\0\0\0\0\0\0\x0a" "{\"type\":1}", 22, "no object with a string \"type\"");
}

static void test_second_frame_named(void **state)
{
	(void)state;
	int fd = pipe_with("PLT1\x03\0\0\0\0\0\0\0" "PLT1\x07\0\0\0\0\0\0\0", 24);
	struct plait_frame f;
	size_t n = 0;
	struct plait_error *e = NULL;
	assert_int_equal(1, plait_frame_read(fd, &f, &n, &e));
	plait_frame_release(&f);
	assert_int_equal(-PLAIT_E_INVALID, plait_frame_read(fd, &f, &n, &e));
	assert_non_null(strstr(e->msg, "frame 2: unknown type 7"));
	plait_error_free(e);
	close(fd);
}

static void test_write_limits(void **state)
{
	(void)state;
	struct plait_error *e = NULL;
	assert_int_equal(-PLAIT_E_INVALID, plait_frame_write(-1, PLAIT_FRAME_CONTENT, "", PLAIT_FRAME_MAX + 1, &e));
	assert_non_null(strstr(e->msg, "over the limit"));
	plait_error_free(e);
	e = NULL;
	json_t *bad = json_pack("{s:i}", "id", 1);
	assert_int_equal(-PLAIT_E_INVALID, plait_frame_write_control(-1, bad, &e));
	assert_non_null(strstr(e->msg, "string \"type\""));
	plait_error_free(e);
	json_decref(bad);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_header_bytes),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_second_frame_named),
		cmocka_unit_test(test_write_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
