/* Unit tests for core/buf, core/error and core/util. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <dirent.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/util.h"

#include "core/banned.h"

static void test_buf__init_is_empty_string(void **state)
{
	(void)state;
	struct plait_buf b = PLAIT_BUF_INIT;
	assert_non_null(b.buf);
	assert_string_equal(b.buf, "");
	assert_int_equal(b.len, 0);
	plait_buf_release(&b);
	assert_string_equal(b.buf, "");
}

static void test_buf__add_functions_append_and_terminate(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, "abc");
	plait_buf_addch(&b, '-');
	plait_buf_add(&b, "xyz", 2);
	plait_buf_addf(&b, "[%d:%s]", 42, "q");
	assert_string_equal(b.buf, "abc-xy[42:q]");
	assert_int_equal(b.len, strlen("abc-xy[42:q]"));
}

static void test_buf__grows_past_many_doublings(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	for (int i = 0; i < 10000; i++)
		plait_buf_addch(&b, 'a' + i % 26);
	assert_int_equal(b.len, 10000);
	assert_true(b.alloc > b.len);
	assert_int_equal(b.buf[10000], '\0');
	assert_int_equal(b.buf[9999], 'a' + 9999 % 26);
}

static void test_buf__setlen_and_reset_truncate(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, "hello world");
	plait_buf_setlen(&b, 5);
	assert_string_equal(b.buf, "hello");
	plait_buf_reset(&b);
	assert_string_equal(b.buf, "");
	/* Resetting a never-grown buffer is fine too. */
	struct plait_buf e = PLAIT_BUF_INIT;
	plait_buf_reset(&e);
	assert_string_equal(e.buf, "");
}

static void test_buf__detach_hands_out_heap_string(void **state)
{
	(void)state;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, "owned");
	size_t len = 0;
	_cleanup_free_ char *s = plait_buf_detach(&b, &len);
	assert_string_equal(s, "owned");
	assert_int_equal(len, 5);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.buf, "");
	/* Detaching an empty buffer still gives a freeable string. */
	_cleanup_free_ char *e = plait_buf_detach(&b, NULL);
	assert_non_null(e);
	assert_string_equal(e, "");
}

static void test_buf__rtrim_removes_trailing_white_space(void **state)
{
	(void)state;
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, "  line \t\r\n\n");
	plait_buf_rtrim(&b);
	assert_string_equal(b.buf, "  line");
}

static void test_buf__read_file_refuses_larger_than_max(void **state)
{
	(void)state;
	char path[] = "/tmp/plait-test-buf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, "0123456789", 10), 0);
	close(fd);

	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&b, path, 100), 0);
	assert_string_equal(b.buf, "0123456789");

	_cleanup_buf_ struct plait_buf c = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&c, path, 5), -EFBIG);
	unlink(path);

	_cleanup_buf_ struct plait_buf d = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&d, path, 5), -ENOENT);
}

static void test_error__set_returns_negative_code_and_message(void **state)
{
	(void)state;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_error_set(&err, PLAIT_E_NOT_FOUND, "no tag '%s'", "v1");
	assert_int_equal(r, -PLAIT_E_NOT_FOUND);
	assert_non_null(err);
	assert_int_equal(plait_error_code(&err), PLAIT_E_NOT_FOUND);
	assert_string_equal(err->msg, "no tag 'v1'");
}

static void test_error__set_replaces_previous_error(void **state)
{
	(void)state;
	_cleanup_error_ struct plait_error *err = NULL;
	plait_error_set(&err, PLAIT_E_IO, "first");
	plait_error_set(&err, PLAIT_E_USAGE, "second");
	assert_string_equal(err->msg, "second");
	assert_int_equal(err->code, PLAIT_E_USAGE);
}

static void test_error__set_errno_appends_strerror(void **state)
{
	(void)state;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_error_set_errno(&err, PLAIT_E_IO, -ENOENT, "cannot open '%s'", "/x");
	assert_int_equal(r, -PLAIT_E_IO);
	assert_int_equal(err->errnum, ENOENT);
	_cleanup_buf_ struct plait_buf want = PLAIT_BUF_INIT;
	plait_buf_addf(&want, "cannot open '/x': %s", strerror(ENOENT));
	assert_string_equal(err->msg, want.buf);
}

static void test_error__wrap_prefixes_context(void **state)
{
	(void)state;
	_cleanup_error_ struct plait_error *err = NULL;
	plait_error_set(&err, PLAIT_E_RETRYABLE, "503 Service Unavailable");
	int r = plait_error_wrap(&err, "%s: push layer %s", "linux/arm64", "sha256:ab12");
	assert_int_equal(r, -PLAIT_E_RETRYABLE);
	assert_string_equal(err->msg,
			    "linux/arm64: push layer sha256:ab12: 503 Service Unavailable");
}

static void test_error__null_err_still_returns_code(void **state)
{
	(void)state;
	assert_int_equal(plait_error_set(NULL, PLAIT_E_INVALID, "x"), -PLAIT_E_INVALID);
	assert_int_equal(plait_error_code(NULL), 0);
	struct plait_error *none = NULL;
	assert_int_equal(plait_error_code(&none), 0);
	plait_error_clear(&none);
	plait_error_free(NULL);
}

static void test_error__clear_frees_and_resets(void **state)
{
	(void)state;
	struct plait_error *err = NULL;
	plait_error_set(&err, PLAIT_E_IO, "x");
	plait_error_clear(&err);
	assert_null(err);
}

static void test_util__strings(void **state)
{
	(void)state;
	assert_true(streq("a", "a"));
	assert_false(streq("a", "b"));
	assert_true(streq_ptr(NULL, NULL));
	assert_false(streq_ptr("a", NULL));
	assert_true(startswith("sha256:abc", "sha256:"));
	assert_false(startswith("sha25", "sha256:"));
	assert_true(endswith("file.tar.gz", ".gz"));
	assert_false(endswith("gz", ".tar.gz"));
	assert_null(xstrdup_or_null(NULL));
	_cleanup_free_ char *s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
}

static void test_util__take_ptr_moves_ownership(void **state)
{
	(void)state;
	_cleanup_free_ char *p = xstrdup("x");
	char *q = TAKE_PTR(p);
	assert_null(p);
	assert_string_equal(q, "x");
	free(q);
	int fd = 7;
	assert_int_equal(TAKE_FD(fd), 7);
	assert_int_equal(fd, -1);
}

static void test_util__alloc_grow_keeps_contents(void **state)
{
	(void)state;
	int *arr = NULL;
	size_t alloc = 0;
	for (size_t i = 0; i < 100; i++) {
		PLAIT_ALLOC_GROW(arr, i + 1, alloc);
		arr[i] = (int)i;
	}
	assert_true(alloc >= 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(arr[i], i);
	free(arr);
}

static void test_util__write_all_and_read_full(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(plait_write_all(p[1], "hello", 5), 0);
	close(p[1]);
	char got[16] = {0};
	assert_int_equal(plait_read_full(p[0], got, sizeof(got) - 1), 5);
	assert_string_equal(got, "hello");
	close(p[0]);
}

static char *make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/plait-util-XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(b.buf));
	return plait_buf_detach(&b, NULL);
}

/* Whether the file system under dir keeps FS_TOPDIR_FL (ext2/3/4 do; tmpfs
 * has no inode flags, xfs and btrfs ignore this one): set it by hand on a
 * scratch directory and read it back. */
static bool fs_keeps_topdir(const char *dir)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/probe", dir);
	bool keeps = false;
	if (mkdir(p.buf, 0755) == 0) {
		int fd = open(p.buf, O_RDONLY | O_DIRECTORY);
		int flags = 0;
		if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
			flags |= FS_TOPDIR_FL;
			keeps = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0 &&
				ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_TOPDIR_FL);
		}
		if (fd >= 0)
			close(fd);
		rmdir(p.buf);
	}
	plait_buf_release(&p);
	return keeps;
}

static void test_util__hint_unrelated_subdirs_sets_topdir_flag(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	if (!fs_keeps_topdir(dir)) {
		rmdir(dir);
		skip();
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	int flags = 0;
	assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
	assert_false(flags & FS_TOPDIR_FL);
	plait_hint_unrelated_subdirs(dir);
	assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
	assert_true(flags & FS_TOPDIR_FL);
	/* again: nothing changes, nothing breaks */
	plait_hint_unrelated_subdirs(dir);
	assert_int_equal(ioctl(fd, FS_IOC_GETFLAGS, &flags), 0);
	assert_true(flags & FS_TOPDIR_FL);
	close(fd);
	/* what does not exist is left alone */
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/missing", dir);
	plait_hint_unrelated_subdirs(p.buf);
	assert_int_equal(access(p.buf, F_OK), -1);
	rmdir(dir);
	plait_buf_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf__init_is_empty_string),
	    cmocka_unit_test(test_buf__add_functions_append_and_terminate),
	    cmocka_unit_test(test_buf__grows_past_many_doublings),
	    cmocka_unit_test(test_buf__setlen_and_reset_truncate),
	    cmocka_unit_test(test_buf__detach_hands_out_heap_string),
	    cmocka_unit_test(test_buf__rtrim_removes_trailing_white_space),
	    cmocka_unit_test(test_buf__read_file_refuses_larger_than_max),
	    cmocka_unit_test(test_error__set_returns_negative_code_and_message),
	    cmocka_unit_test(test_error__set_replaces_previous_error),
	    cmocka_unit_test(test_error__set_errno_appends_strerror),
	    cmocka_unit_test(test_error__wrap_prefixes_context),
	    cmocka_unit_test(test_error__null_err_still_returns_code),
	    cmocka_unit_test(test_error__clear_frees_and_resets),
	    cmocka_unit_test(test_util__strings),
	    cmocka_unit_test(test_util__take_ptr_moves_ownership),
	    cmocka_unit_test(test_util__alloc_grow_keeps_contents),
	    cmocka_unit_test(test_util__write_all_and_read_full),
	    cmocka_unit_test(test_util__hint_unrelated_subdirs_sets_topdir_flag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
