/* Unit tests for core/unpack: untrusted layers, built here with libarchive,
 * must never write outside the root. A canary file next to the root must
 * survive every malicious layer. The path tests run twice: with openat2 and
 * with the component walk used where the kernel lacks it. Run as root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "rm_tree.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/digest.h"
#include "core/gzip.h"
#include "core/unpack.h"
#include "core/userns.h"

#include "core/banned.h"

enum { FILTER_NONE, FILTER_GZIP, FILTER_ZSTD };

struct fixture {
	char dir[64];
	struct plait_buf p[4];
	unsigned next;
	struct archive *a; /* the layer being built */
};

static int setup(void **state)
{
	bool walk = *state && *(const int *)*state;
	if (walk)
		setenv("PLAIT_TEST_NO_OPENAT2", "1", 1);
	else
		unsetenv("PLAIT_TEST_NO_OPENAT2");
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/plait-test-unpack-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	for (size_t i = 0; i < ARRAY_SIZE(f->p); i++)
		f->p[i] = (struct plait_buf)PLAIT_BUF_INIT;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rm_tree(f->dir);
	for (size_t i = 0; i < ARRAY_SIZE(f->p); i++)
		plait_buf_release(&f->p[i]);
	if (f->a)
		archive_write_free(f->a);
	free(f);
	unsetenv("PLAIT_TEST_NO_OPENAT2");
	return 0;
}

static const char *path(struct fixture *f, const char *rel)
{
	struct plait_buf *b = &f->p[f->next++ % ARRAY_SIZE(f->p)];
	plait_buf_reset(b);
	plait_buf_addf(b, "%s/%s", f->dir, rel);
	return b->buf;
}

static void put_file(const char *p, const char *data)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, data, strlen(data)), 0);
	close(fd);
}

static char *get_file(const char *p)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	if (plait_buf_read_file(&b, p, 1 << 20) < 0)
		return NULL;
	return plait_buf_detach(&b, NULL);
}

/* The root and, next to it, the canary the layers aim at. */
static void make_root(struct fixture *f)
{
	assert_int_equal(mkdir(path(f, "root"), 0755), 0);
	put_file(path(f, "canary"), "canary");
}

static void assert_canary_intact(struct fixture *f)
{
	struct stat st;
	assert_int_equal(lstat(path(f, "canary"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_nlink, 1);
	_cleanup_free_ char *data = get_file(path(f, "canary"));
	assert_string_equal(data, "canary");
}

static void layer_begin(struct fixture *f, const char *rel, int filter)
{
	f->a = archive_write_new();
	archive_write_set_format_pax_restricted(f->a);
	if (filter == FILTER_GZIP)
		archive_write_add_filter_gzip(f->a);
	else if (filter == FILTER_ZSTD)
		archive_write_add_filter_zstd(f->a);
	assert_int_equal(archive_write_open_filename(f->a, path(f, rel)), ARCHIVE_OK);
}

static void layer_end(struct fixture *f)
{
	assert_int_equal(archive_write_close(f->a), ARCHIVE_OK);
	archive_write_free(f->a);
	f->a = NULL;
}

static void add(struct fixture *f, const char *name, mode_t type, const char *data,
		const char *symlink, const char *hardlink)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_copy_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_mtime(e, 1000, 0);
	if (symlink)
		archive_entry_copy_symlink(e, symlink);
	if (hardlink)
		archive_entry_copy_hardlink(e, hardlink);
	archive_entry_set_size(e, data ? (la_int64_t)strlen(data) : 0);
	assert_int_equal(archive_write_header(f->a, e), ARCHIVE_OK);
	if (data)
		assert_int_equal(archive_write_data(f->a, data, strlen(data)),
				 (la_ssize_t)strlen(data));
	archive_entry_free(e);
}
#define add_file(f, name, data) add(f, name, AE_IFREG, data, NULL, NULL)
#define add_dir(f, name) add(f, name, AE_IFDIR, NULL, NULL, NULL)
#define add_symlink(f, name, target) add(f, name, AE_IFLNK, NULL, target, NULL)
#define add_hardlink(f, name, target) add(f, name, AE_IFREG, NULL, NULL, target)

/* Unpack layer file rel into root; the error message (or "") goes to msg. */
static int unpack(struct fixture *f, const char *rel, const struct plait_unpack_options *o,
		  char **msg)
{
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_close_ int fd = open(path(f, rel), O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	_cleanup_free_ char *root = xstrdup(path(f, "root"));
	int r = plait_unpack_fd(fd, root, o, NULL, &err);
	if (msg)
		*msg = xstrdup(err ? err->msg : "");
	return r;
}

static int walk_resolver = 1;

static void test_unpack__absolute_path_is_contained(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	_cleanup_free_ char *abs = xstrdup(path(f, "canary"));
	layer_begin(f, "l.tar", FILTER_NONE);
	add_file(f, abs, "pwned");
	layer_end(f);
	_cleanup_free_ char *msg = NULL;
	assert_int_equal(unpack(f, "l.tar", NULL, &msg), 0);
	assert_canary_intact(f);
	struct plait_buf inside = PLAIT_BUF_INIT;
	plait_buf_addf(&inside, "%s%s", path(f, "root"), abs);
	_cleanup_free_ char *data = get_file(inside.buf);
	assert_string_equal(data, "pwned");
	plait_buf_release(&inside);
}

static void test_unpack__dotdot_is_refused_naming_the_entry(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	layer_begin(f, "l.tar", FILTER_NONE);
	add_file(f, "../canary", "pwned");
	layer_end(f);
	_cleanup_free_ char *msg = NULL;
	assert_int_equal(unpack(f, "l.tar", NULL, &msg), -PLAIT_E_INVALID);
	assert_string_equal(msg, "unpack: entry '../canary' leaves the root through '..': "
				 "the layer is malformed or malicious");
	assert_canary_intact(f);

	layer_begin(f, "l2.tar", FILTER_NONE);
	add_file(f, "ok/../../../etc/plait-test-x", "pwned");
	layer_end(f);
	free(msg);
	assert_int_equal(unpack(f, "l2.tar", NULL, &msg), -PLAIT_E_INVALID);
	assert_non_null(strstr(msg, "'ok/../../../etc/plait-test-x'"));
	struct stat st;
	assert_int_equal(lstat("/etc/plait-test-x", &st), -1);
}

static void test_unpack__symlink_then_write_through_stays_inside(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	_cleanup_free_ char *outside = xstrdup(f->dir);
	layer_begin(f, "l.tar", FILTER_NONE);
	add_symlink(f, "up", "../..");
	add_file(f, "up/canary", "pwned-rel");
	add_symlink(f, "abs", outside);
	add_file(f, "abs/canary", "pwned-abs");
	layer_end(f);
	_cleanup_free_ char *msg = NULL;
	int r = unpack(f, "l.tar", NULL, &msg);
	assert_canary_intact(f);
	/* "up" is followed as the image sees it: to the root */
	_cleanup_free_ char *inside = get_file(path(f, "root/canary"));
	assert_string_equal(inside, "pwned-rel");
	/* "abs" points at a directory missing inside the root: an error */
	assert_int_equal(r, -PLAIT_E_IO);
	assert_non_null(strstr(msg, "parent directory of 'abs/canary'"));
	/* the links themselves exist, unchanged */
	char l[128];
	ssize_t n = readlink(path(f, "root/abs"), l, sizeof(l) - 1);
	assert_true(n > 0);
	l[n] = '\0';
	assert_string_equal(l, outside);
}

/* Finding 6 of issue 11: the error names the symlink, its target and why. */
static void test_unpack__symlink_to_missing_dir_names_the_symlink(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	layer_begin(f, "l.tar", FILTER_NONE);
	add_dir(f, "a");
	add_symlink(f, "a/b", "/missing");
	add_file(f, "a/b/c", "x");
	layer_end(f);
	_cleanup_free_ char *msg = NULL;
	assert_int_equal(unpack(f, "l.tar", NULL, &msg), -PLAIT_E_IO);
	assert_string_equal(msg, "unpack: parent directory of 'a/b/c': 'a/b' is a symlink to "
				 "'/missing', which does not exist in the image; the entry was "
				 "refused (symlinks resolve inside the image's root)");

	/* a symlink to a file: not a directory */
	layer_begin(f, "l2.tar", FILTER_NONE);
	add_file(f, "f", "x");
	add_symlink(f, "d", "f");
	add_file(f, "d/e/g", "x");
	layer_end(f);
	free(msg);
	msg = NULL;
	assert_int_equal(unpack(f, "l2.tar", NULL, &msg), -PLAIT_E_IO);
	assert_string_equal(msg, "unpack: parent directory of 'd/e/g': 'd' is a symlink to 'f', "
				 "which is not a directory in the image; the entry was refused "
				 "(symlinks resolve inside the image's root)");

	/* a plain file in the way */
	layer_begin(f, "l3.tar", FILTER_NONE);
	add_file(f, "p", "x");
	add_file(f, "p/q", "x");
	layer_end(f);
	free(msg);
	msg = NULL;
	assert_int_equal(unpack(f, "l3.tar", NULL, &msg), -PLAIT_E_IO);
	assert_string_equal(msg, "unpack: parent directory of 'p/q': 'p' is not a directory; "
				 "the entry was refused");
}

static void test_unpack__symlink_to_root_dir_writes_inside(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	_cleanup_free_ char *outside = xstrdup(f->dir);
	assert_int_equal(mkdir(path(f, "root/tmp"), 0755), 0);
	layer_begin(f, "l.tar", FILTER_NONE);
	add_dir(f, "tmp/");
	add_dir(f, outside + 1); /* the same path inside the root */
	add_symlink(f, "abs", outside);
	add_file(f, "abs/canary", "pwned-abs");
	layer_end(f);
	_cleanup_free_ char *msg = NULL;
	assert_int_equal(unpack(f, "l.tar", NULL, &msg), 0);
	assert_canary_intact(f);
	struct plait_buf inside = PLAIT_BUF_INIT;
	plait_buf_addf(&inside, "%s%s/canary", path(f, "root"), outside);
	_cleanup_free_ char *data = get_file(inside.buf);
	assert_string_equal(data, "pwned-abs");
	plait_buf_release(&inside);
}

static void test_unpack__hardlinks_outside_the_root_fail(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	struct stat before, after;
	assert_int_equal(stat("/etc/passwd", &before), 0);
	_cleanup_free_ char *abs = xstrdup(path(f, "canary"));
	static const char *const names[] = {"/etc/passwd", NULL, "../canary", "s/canary"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		layer_begin(f, "l.tar", FILTER_NONE);
		add_symlink(f, "s", f->dir);
		add_hardlink(f, "h", names[i] ? names[i] : abs);
		layer_end(f);
		_cleanup_free_ char *msg = NULL;
		int r = unpack(f, "l.tar", NULL, &msg);
		assert_true(r < 0);
		assert_non_null(strstr(msg, "'h'"));
		assert_canary_intact(f);
		struct stat st;
		assert_int_equal(lstat(path(f, "root/h"), &st), -1);
	}
	assert_int_equal(stat("/etc/passwd", &after), 0);
	assert_int_equal(after.st_nlink, before.st_nlink);
}

static void test_unpack__hardlink_to_symlink_links_the_symlink(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	_cleanup_free_ char *abs = xstrdup(path(f, "canary"));
	layer_begin(f, "l.tar", FILTER_NONE);
	add_symlink(f, "t", abs);
	add_hardlink(f, "h", "t");
	add_file(f, "h", "pwned"); /* replaces h, never writes through it */
	layer_end(f);
	assert_int_equal(unpack(f, "l.tar", NULL, NULL), 0);
	assert_canary_intact(f);
	_cleanup_free_ char *data = get_file(path(f, "root/h"));
	assert_string_equal(data, "pwned");
	struct stat st;
	assert_int_equal(lstat(path(f, "root/t"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
}

static void test_unpack__symlinked_parent_from_lower_layer_stays_inside(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	_cleanup_free_ char *outside = xstrdup(f->dir);
	layer_begin(f, "lower.tar", FILTER_NONE);
	add_symlink(f, "d", outside);
	add_symlink(f, "e", "../../..");
	add_symlink(f, "last", path(f, "canary"));
	layer_end(f);
	assert_int_equal(unpack(f, "lower.tar", NULL, NULL), 0);

	layer_begin(f, "upper.tar", FILTER_NONE);
	add_file(f, "e/canary", "pwned-e");
	add_file(f, "last", "pwned-last"); /* the symlink is replaced */
	add_file(f, "e/.wh.nothing", NULL);
	layer_end(f);
	assert_int_equal(unpack(f, "upper.tar", NULL, NULL), 0);

	layer_begin(f, "upper2.tar", FILTER_NONE);
	add_file(f, "d/.wh.canary", NULL); /* must not delete the host's canary */
	add_file(f, "d/canary", "pwned-d");
	layer_end(f);
	_cleanup_free_ char *msg = NULL;
	assert_true(unpack(f, "upper2.tar", NULL, &msg) < 0);
	assert_non_null(strstr(msg, "'d/canary'"));

	assert_canary_intact(f);
	_cleanup_free_ char *e = get_file(path(f, "root/canary"));
	assert_string_equal(e, "pwned-e");
	_cleanup_free_ char *last = get_file(path(f, "root/last"));
	assert_string_equal(last, "pwned-last");
}

static void test_unpack__whiteouts_apply_to_lower_layers(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	layer_begin(f, "lower.tar", FILTER_NONE);
	add_dir(f, "a/");
	add_file(f, "a/x", "x");
	add_file(f, "a/y", "y");
	add_dir(f, "a/sub/");
	add_file(f, "a/sub/deep", "d");
	add_dir(f, "o/");
	add_file(f, "o/old", "old");
	add_dir(f, "o/keep/");
	add_file(f, "o/keep/z", "z");
	layer_end(f);
	assert_int_equal(unpack(f, "lower.tar", NULL, NULL), 0);

	layer_begin(f, "upper.tar", FILTER_NONE);
	add_file(f, "a/.wh.x", NULL);
	add_file(f, "a/.wh.sub", NULL);
	add_file(f, "a/.wh..wh.plnk", NULL); /* aufs bookkeeping: ignored */
	/* the opaque marker after this layer's own entries (other producers do that) */
	add_file(f, "o/new", "new");
	add_dir(f, "o/keep/");
	add_file(f, "o/keep/new2", "new2");
	add_file(f, "o/.wh..wh..opq", NULL);
	layer_end(f);
	_cleanup_free_ char *msg = NULL;
	if (unpack(f, "upper.tar", NULL, &msg) < 0)
		fail_msg("%s", msg);
	struct stat st;
	assert_int_equal(lstat(path(f, "root/a/x"), &st), -1);
	assert_int_equal(lstat(path(f, "root/a/sub"), &st), -1);
	assert_int_equal(lstat(path(f, "root/a/y"), &st), 0);
	assert_int_equal(lstat(path(f, "root/a/.wh..wh.plnk"), &st), -1);
	assert_int_equal(lstat(path(f, "root/o/old"), &st), -1);
	assert_int_equal(lstat(path(f, "root/o/keep/z"), &st), -1);
	assert_int_equal(lstat(path(f, "root/o/new"), &st), 0);
	assert_int_equal(lstat(path(f, "root/o/keep/new2"), &st), 0);
	assert_int_equal(lstat(path(f, "root/o/.wh..wh..opq"), &st), -1);
}

static void test_unpack__overlay_mode_makes_kernel_whiteouts(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	layer_begin(f, "l.tar", FILTER_NONE);
	add_file(f, "a/.wh.x", NULL); /* parent created on the way */
	add_dir(f, "o/");
	add_file(f, "o/.wh..wh..opq", NULL);
	layer_end(f);
	struct plait_unpack_options o = {.mode = PLAIT_UNPACK_OVERLAY};
	assert_int_equal(unpack(f, "l.tar", &o, NULL), 0);
	struct stat st;
	assert_int_equal(lstat(path(f, "root/a/x"), &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	char v[4];
	/* user.overlay.opaque inside a user namespace (overlayfs with userxattr) */
	assert_int_equal(getxattr(path(f, "root/o"), plait_userns_opaque_xattr(), v, sizeof(v)), 1);
	assert_int_equal(v[0], 'y');
}

static void test_unpack__layer_cannot_set_overlay_xattrs(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	layer_begin(f, "l.tar", FILTER_NONE);
	struct archive_entry *e = archive_entry_new();
	archive_entry_copy_pathname(e, "d/");
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0755);
	archive_entry_xattr_add_entry(e, "trusted.overlay.redirect", "/etc", 4);
	archive_entry_xattr_add_entry(e, "user.kept", "1", 1);
	assert_int_equal(archive_write_header(f->a, e), ARCHIVE_OK);
	archive_entry_free(e);
	layer_end(f);
	struct plait_unpack_options o = {.mode = PLAIT_UNPACK_OVERLAY};
	assert_int_equal(unpack(f, "l.tar", &o, NULL), 0);
	char v[8];
	assert_int_equal(getxattr(path(f, "root/d"), "trusted.overlay.redirect", v, sizeof(v)), -1);
	assert_int_equal(getxattr(path(f, "root/d"), "user.kept", v, sizeof(v)), 1);
}

static void test_unpack__bad_whiteout_names_are_refused(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	layer_begin(f, "l.tar", FILTER_NONE);
	add_file(f, "a/.wh..", NULL);
	layer_end(f);
	_cleanup_free_ char *msg = NULL;
	assert_int_equal(unpack(f, "l.tar", NULL, &msg), -PLAIT_E_INVALID);
	assert_string_equal(msg, "unpack: entry 'a/.wh..' is a whiteout of nothing");
	assert_canary_intact(f);
}

/* An entry with an empty name: ADD (plain mode) skips it as BuildKit does;
 * a layer still refuses it (it would name the root). */
static void test_unpack__empty_name_is_skipped_in_plain_mode_only(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	layer_begin(f, "l.tar", FILTER_NONE);
	add_file(f, "before.txt", "before");
	add_file(f, "", "nameless");
	add_file(f, "after.txt", "after");
	layer_end(f);
	struct plait_unpack_options plain = {.mode = PLAIT_UNPACK_PLAIN};
	_cleanup_free_ char *msg = NULL;
	assert_int_equal(unpack(f, "l.tar", &plain, &msg), 0);
	assert_string_equal(msg, "");
	_cleanup_free_ char *b = get_file(path(f, "root/before.txt"));
	_cleanup_free_ char *a = get_file(path(f, "root/after.txt"));
	assert_string_equal(b, "before");
	assert_string_equal(a, "after");
	assert_canary_intact(f);
	_cleanup_free_ char *msg2 = NULL;
	assert_int_equal(unpack(f, "l.tar", NULL, &msg2), -PLAIT_E_INVALID);
	assert_string_equal(msg2, "unpack: entry '' names the root but is not a directory");
}

static void test_unpack__existing_paths_are_replaced(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	layer_begin(f, "lower.tar", FILTER_NONE);
	add_dir(f, "x/");
	add_file(f, "x/child", "c");
	add_file(f, "y", "file");
	add_dir(f, "k/");
	add_file(f, "k/stays", "s");
	layer_end(f);
	assert_int_equal(unpack(f, "lower.tar", NULL, NULL), 0);
	layer_begin(f, "upper.tar", FILTER_NONE);
	add_file(f, "x", "now a file");
	add_dir(f, "y/");
	add(f, "k/", AE_IFDIR, NULL, NULL, NULL);
	layer_end(f);
	assert_int_equal(unpack(f, "upper.tar", NULL, NULL), 0);
	_cleanup_free_ char *x = get_file(path(f, "root/x"));
	assert_string_equal(x, "now a file");
	struct stat st;
	assert_int_equal(lstat(path(f, "root/y"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(lstat(path(f, "root/k/stays"), &st), 0);
}

/* The sha256 of a file. */
static void file_digest(struct fixture *f, const char *rel, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	_cleanup_free_ char *data = NULL;
	struct plait_buf b = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&b, path(f, rel), 1 << 24), 0);
	plait_sha256_buf(b.buf, b.len, out);
	plait_buf_release(&b);
}

static void build_sample(struct fixture *f, const char *rel, int filter)
{
	layer_begin(f, rel, filter);
	add_dir(f, "etc/");
	add_file(f, "etc/hostname", "plait\n");
	layer_end(f);
}

static void check_compressed(struct fixture *f, int filter)
{
	make_root(f);
	build_sample(f, "plain.tar", FILTER_NONE);
	build_sample(f, "l.blob", filter);
	char diff_id[PLAIT_SHA256_DIGEST_SIZE], digest[PLAIT_SHA256_DIGEST_SIZE];
	file_digest(f, "plain.tar", diff_id);
	file_digest(f, "l.blob", digest);
	struct plait_unpack_options o = {.diff_id = diff_id, .digest = digest};
	_cleanup_free_ char *msg = NULL;
	if (unpack(f, "l.blob", &o, &msg) < 0)
		fail_msg("%s", msg);
	_cleanup_free_ char *data = get_file(path(f, "root/etc/hostname"));
	assert_string_equal(data, "plait\n");
}

static void test_unpack__plain_tar_verifies_diff_id(void **state)
{
	check_compressed(*state, FILTER_NONE);
}

static void test_unpack__gzip_detected_and_diff_id_verified(void **state)
{
	check_compressed(*state, FILTER_GZIP);
}

static void test_unpack__zstd_detected_and_diff_id_verified(void **state)
{
	check_compressed(*state, FILTER_ZSTD);
}

static void test_unpack__diff_id_mismatch_fails(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	build_sample(f, "l.blob", FILTER_GZIP);
	const char *wrong =
	    "sha256:0000000000000000000000000000000000000000000000000000000000000000";
	struct plait_unpack_options o = {.diff_id = wrong};
	_cleanup_free_ char *msg = NULL;
	assert_int_equal(unpack(f, "l.blob", &o, &msg), -PLAIT_E_INVALID);
	assert_true(startswith(msg, "unpack: diff_id mismatch: expected sha256:0000"));
	o = (struct plait_unpack_options){.digest = wrong};
	free(msg);
	assert_int_equal(unpack(f, "l.blob", &o, &msg), -PLAIT_E_INVALID);
	assert_true(startswith(msg, "unpack: digest mismatch: expected sha256:0000"));
}

static int to_buf(void *ud, const void *data, size_t len, struct plait_error **err)
{
	(void)err;
	plait_buf_add(ud, data, len);
	return 0;
}

/* data as one gzip member, appended to out. */
static void gzip_member(struct plait_buf *out, const void *data, size_t len)
{
	struct plait_gzip *g = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_gzip_new(6, 1, to_buf, out, &g, &err), 0);
	assert_int_equal(plait_gzip_write(g, data, len, &err), 0);
	assert_int_equal(plait_gzip_finish(g, &err), 0);
	plait_gzip_free(g);
}

static void write_buf(const char *p, const struct plait_buf *b)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, b->buf, b->len), 0);
	close(fd);
}

/* A layer of several gzip members (as `cat a.gz b.gz` makes) is one stream:
 * the members' outputs together are the tar, its diff_id checked. */
static void test_unpack__gzip_of_several_members(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	build_sample(f, "plain.tar", FILTER_NONE);
	struct plait_buf tar = PLAIT_BUF_INIT, gz = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&tar, path(f, "plain.tar"), 1 << 20), 0);
	size_t cut[] = { 0, 100, 512, tar.len - 1, tar.len };
	for (size_t i = 0; i + 1 < ARRAY_SIZE(cut); i++)
		gzip_member(&gz, tar.buf + cut[i], cut[i + 1] - cut[i]);
	gzip_member(&gz, "", 0); /* an empty member at the end, too */
	write_buf(path(f, "l.blob"), &gz);
	char diff_id[PLAIT_SHA256_DIGEST_SIZE];
	file_digest(f, "plain.tar", diff_id);
	struct plait_unpack_options o = {.diff_id = diff_id};
	_cleanup_free_ char *msg = NULL;
	if (unpack(f, "l.blob", &o, &msg) < 0)
		fail_msg("%s", msg);
	_cleanup_free_ char *data = get_file(path(f, "root/etc/hostname"));
	assert_string_equal(data, "plait\n");
	plait_buf_release(&tar);
	plait_buf_release(&gz);
}

/* The member's trailer is checked: a wrong CRC-32, or a wrong length, fails. */
static void test_unpack__gzip_trailer_checked(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	build_sample(f, "l.blob", FILTER_GZIP);
	struct plait_buf gz = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&gz, path(f, "l.blob"), 1 << 20), 0);
	for (size_t off = 8; off >= 4; off -= 4) { /* the CRC-32, then the length */
		gz.buf[gz.len - off] ^= 0x01;
		write_buf(path(f, "bad.blob"), &gz);
		gz.buf[gz.len - off] ^= 0x01;
		_cleanup_free_ char *msg = NULL;
		assert_int_equal(unpack(f, "bad.blob", NULL, &msg), -PLAIT_E_INVALID);
		if (!strstr(msg, "invalid gzip data"))
			fail_msg("trailer byte -%zu flipped: %s", off, msg);
	}
	plait_buf_release(&gz);
}

static void test_unpack__truncated_gzip_fails(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	build_sample(f, "l.blob", FILTER_GZIP);
	struct stat st;
	assert_int_equal(stat(path(f, "l.blob"), &st), 0);
	assert_int_equal(truncate(path(f, "l.blob"), st.st_size - 12), 0);
	_cleanup_free_ char *msg = NULL;
	assert_true(unpack(f, "l.blob", NULL, &msg) < 0);
	assert_non_null(strstr(msg, "gzip"));
}

static void test_unpack__garbage_is_not_a_layer(void **state)
{
	struct fixture *f = *state;
	make_root(f);
	put_file(path(f, "l.blob"), "this is not a tar archive, not even close to one ..........");
	_cleanup_free_ char *msg = NULL;
	assert_int_equal(unpack(f, "l.blob", NULL, &msg), -PLAIT_E_INVALID);
	assert_true(startswith(msg, "unpack: read layer"));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
#define W(name)                                                                                    \
	{                                                                                          \
#name "_walk", name, setup, teardown, &walk_resolver                               \
	}
	const struct CMUnitTest tests[] = {
	    T(test_unpack__absolute_path_is_contained),
	    W(test_unpack__absolute_path_is_contained),
	    T(test_unpack__dotdot_is_refused_naming_the_entry),
	    T(test_unpack__symlink_then_write_through_stays_inside),
	    W(test_unpack__symlink_then_write_through_stays_inside),
	    T(test_unpack__symlink_to_missing_dir_names_the_symlink),
	    W(test_unpack__symlink_to_missing_dir_names_the_symlink),
	    T(test_unpack__symlink_to_root_dir_writes_inside),
	    W(test_unpack__symlink_to_root_dir_writes_inside),
	    T(test_unpack__hardlinks_outside_the_root_fail),
	    W(test_unpack__hardlinks_outside_the_root_fail),
	    T(test_unpack__hardlink_to_symlink_links_the_symlink),
	    T(test_unpack__symlinked_parent_from_lower_layer_stays_inside),
	    W(test_unpack__symlinked_parent_from_lower_layer_stays_inside),
	    T(test_unpack__whiteouts_apply_to_lower_layers),
	    W(test_unpack__whiteouts_apply_to_lower_layers),
	    T(test_unpack__overlay_mode_makes_kernel_whiteouts),
	    T(test_unpack__layer_cannot_set_overlay_xattrs),
	    T(test_unpack__bad_whiteout_names_are_refused),
	    T(test_unpack__existing_paths_are_replaced),
	    T(test_unpack__empty_name_is_skipped_in_plain_mode_only),
	    T(test_unpack__plain_tar_verifies_diff_id),
	    T(test_unpack__gzip_detected_and_diff_id_verified),
	    T(test_unpack__zstd_detected_and_diff_id_verified),
	    T(test_unpack__diff_id_mismatch_fails),
	    T(test_unpack__truncated_gzip_fails),
	    T(test_unpack__gzip_of_several_members),
	    T(test_unpack__gzip_trailer_checked),
	    T(test_unpack__garbage_is_not_a_layer),
	};
#undef T
#undef W
	return cmocka_run_group_tests(tests, NULL, NULL);
}
