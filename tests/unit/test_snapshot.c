/* Unit tests for core/snapshot (overlay and copying snapshots). Needs root. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "core/buf.h"
#include "core/snapshot.h"

#include "core/banned.h"

static char tmpdir[] = "/tmp/plait-snap-XXXXXX";

static void path_of(struct plait_buf *b, const char *rel)
{
	plait_buf_reset(b);
	plait_buf_addf(b, "%s/%s", tmpdir, rel);
}

static void write_at(const char *dir, const char *rel, const char *content)
{
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, rel);
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, content, strlen(content)), 0);
	close(fd);
}

static void mkdir_at(const char *dir, const char *rel)
{
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, rel);
	assert_int_equal(mkdir(p.buf, 0755), 0);
}

static bool exists_at(const char *dir, const char *rel)
{
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, rel);
	struct stat st;
	return lstat(p.buf, &st) == 0;
}

static char *read_at(const char *dir, const char *rel)
{
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf c = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, rel);
	if (plait_buf_read_file(&c, p.buf, 1 << 20) < 0)
		return NULL;
	return plait_buf_detach(&c, NULL);
}

/* Two layers, bottom first:
 *   l1: a="1", d/x="x", d/y="y", keep="k"
 *   l2: b="2", d/z="z", whiteout d/y */
static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0)
		return 0;
	assert_non_null(mkdtemp(tmpdir));
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	const char *dirs[] = { "l1", "l2", "work", "l1/d", "l2/d" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		mkdir_at(tmpdir, dirs[i]);
	path_of(&p, "l1");
	write_at(p.buf, "a", "1");
	write_at(p.buf, "d/x", "x");
	write_at(p.buf, "d/y", "y");
	write_at(p.buf, "keep", "k");
	path_of(&p, "l2");
	write_at(p.buf, "b", "2");
	write_at(p.buf, "d/z", "z");
	path_of(&p, "l2/d/y");
	assert_int_equal(mknod(p.buf, S_IFCHR | 0600, makedev(0, 0)), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (geteuid() == 0)
		(void)plait_rm_rf(tmpdir);
	return 0;
}

static void require_root(void)
{
	if (geteuid() != 0)
		skip();
}

static struct plait_snapshot *prepare(enum plait_snapshot_mode mode)
{
	_cleanup_buf_ struct plait_buf l1 = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf l2 = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf work = PLAIT_BUF_INIT;
	path_of(&l1, "l1");
	path_of(&l2, "l2");
	path_of(&work, "work");
	const char *lowers[] = { l1.buf, l2.buf };
	struct plait_snapshot *s = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_snapshot_prepare(lowers, 2, work.buf, mode, &s, &err);
	if (r < 0)
		fail_msg("prepare: %s", err->msg);
	return s;
}

static char *changes_text(struct plait_snapshot *s)
{
	struct plait_change_list l = PLAIT_CHANGE_LIST_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_snapshot_changes(s, &l, &err) < 0)
		fail_msg("changes: %s", err->msg);
	struct plait_buf b = PLAIT_BUF_INIT;
	for (size_t i = 0; i < l.n; i++)
		plait_buf_addf(&b, "%s %s\n", plait_change_kind_name(l.items[i].kind), l.items[i].path);
	plait_change_list_release(&l);
	return plait_buf_detach(&b, NULL);
}

static bool mounted(const char *path)
{
	_cleanup_buf_ struct plait_buf mi = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&mi, "/proc/self/mountinfo", 1 << 24), 0);
	_cleanup_buf_ struct plait_buf needle = PLAIT_BUF_INIT;
	plait_buf_addf(&needle, " %s ", path);
	return strstr(mi.buf, needle.buf) != NULL;
}

static void check_merged_view(struct plait_snapshot *s)
{
	const char *root = plait_snapshot_root(s);
	_cleanup_free_ char *a = read_at(root, "a");
	_cleanup_free_ char *z = read_at(root, "d/z");
	assert_non_null(a);
	assert_string_equal(a, "1");
	assert_non_null(z);
	assert_string_equal(z, "z");
	assert_true(exists_at(root, "b"));
	assert_true(exists_at(root, "d/x"));
	assert_false(exists_at(root, "d/y")); /* whited out by l2 */
}

static void test_snapshot__overlay_merges_lowers_and_honours_whiteouts(void **state)
{
	(void)state;
	require_root();
	_cleanup_snapshot_ struct plait_snapshot *s = prepare(PLAIT_SNAPSHOT_OVERLAY);
	assert_int_equal(plait_snapshot_mode(s), PLAIT_SNAPSHOT_OVERLAY);
	check_merged_view(s);
}

static void test_snapshot__copy_merges_lowers_and_honours_whiteouts(void **state)
{
	(void)state;
	require_root();
	_cleanup_snapshot_ struct plait_snapshot *s = prepare(PLAIT_SNAPSHOT_COPY);
	assert_int_equal(plait_snapshot_mode(s), PLAIT_SNAPSHOT_COPY);
	assert_null(plait_snapshot_upper(s));
	check_merged_view(s);
}

static void test_snapshot__overlay_upper_holds_new_file_and_whiteout(void **state)
{
	(void)state;
	require_root();
	_cleanup_snapshot_ struct plait_snapshot *s = prepare(PLAIT_SNAPSHOT_OVERLAY);
	const char *root = plait_snapshot_root(s);
	write_at(root, "new", "n");
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/a", root);
	assert_int_equal(unlink(p.buf), 0);

	const char *upper = plait_snapshot_upper(s);
	assert_non_null(upper);
	_cleanup_free_ char *n = read_at(upper, "new");
	assert_non_null(n);
	assert_string_equal(n, "n");
	plait_buf_reset(&p);
	plait_buf_addf(&p, "%s/a", upper);
	struct stat st;
	assert_int_equal(lstat(p.buf, &st), 0);
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	_cleanup_free_ char *text = changes_text(s);
	assert_string_equal(text, "delete a\nadd new\n");
}

/* The same step in both modes; returns the change list. */
static char *run_step(enum plait_snapshot_mode mode)
{
	struct plait_snapshot *s = prepare(mode);
	assert_int_equal(plait_snapshot_mode(s), mode);
	const char *root = plait_snapshot_root(s);
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	write_at(root, "new", "n");
	plait_buf_addf(&p, "%s/a", root);
	assert_int_equal(unlink(p.buf), 0);
	write_at(root, "d/x", "changed");
	plait_buf_reset(&p);
	plait_buf_addf(&p, "%s/keep", root);
	assert_int_equal(chmod(p.buf, 0600), 0);
	mkdir_at(root, "nd");
	mkdir_at(root, "nd/sub");
	write_at(root, "nd/sub/f", "f");
	char *text = changes_text(s);
	plait_snapshot_release(s);
	return text;
}

static void test_snapshot__copy_and_overlay_give_the_same_changes(void **state)
{
	(void)state;
	require_root();
	_cleanup_free_ char *ov = run_step(PLAIT_SNAPSHOT_OVERLAY);
	_cleanup_free_ char *cp = run_step(PLAIT_SNAPSHOT_COPY);
	const char *want = "delete a\nmodify d\nmodify d/x\nmodify keep\nadd nd\nadd nd/sub\nadd nd/sub/f\nadd new\n";
	assert_string_equal(ov, want);
	assert_string_equal(cp, want);
}

static char *replace_dir_step(enum plait_snapshot_mode mode)
{
	struct plait_snapshot *s = prepare(mode);
	const char *root = plait_snapshot_root(s);
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/d", root);
	assert_int_equal(plait_rm_rf(p.buf), 0);
	mkdir_at(root, "d");
	write_at(root, "d/z", "new z");
	write_at(root, "d/w", "w");
	/* A directory deleted whole lists only itself. */
	write_at(root, "b", "2");
	char *text = changes_text(s);
	plait_snapshot_release(s);
	return text;
}

static void test_snapshot__replaced_directory_deletes_old_children_in_both_modes(void **state)
{
	(void)state;
	require_root();
	_cleanup_free_ char *ov = replace_dir_step(PLAIT_SNAPSHOT_OVERLAY);
	_cleanup_free_ char *cp = replace_dir_step(PLAIT_SNAPSHOT_COPY);
	const char *want = "modify b\nmodify d\nadd d/w\ndelete d/x\nmodify d/z\n";
	assert_string_equal(ov, want);
	assert_string_equal(cp, want);
}

static char *delete_dir_step(enum plait_snapshot_mode mode)
{
	struct plait_snapshot *s = prepare(mode);
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/d", plait_snapshot_root(s));
	assert_int_equal(plait_rm_rf(p.buf), 0);
	char *text = changes_text(s);
	plait_snapshot_release(s);
	return text;
}

static void test_snapshot__deleted_directory_lists_only_itself(void **state)
{
	(void)state;
	require_root();
	_cleanup_free_ char *ov = delete_dir_step(PLAIT_SNAPSHOT_OVERLAY);
	_cleanup_free_ char *cp = delete_dir_step(PLAIT_SNAPSHOT_COPY);
	assert_string_equal(ov, "delete d\n");
	assert_string_equal(cp, "delete d\n");
}

static void test_snapshot__unchanged_root_has_no_changes(void **state)
{
	(void)state;
	require_root();
	for (int m = PLAIT_SNAPSHOT_OVERLAY; m <= PLAIT_SNAPSHOT_COPY; m++) {
		_cleanup_snapshot_ struct plait_snapshot *s = prepare(m);
		_cleanup_free_ char *a = read_at(plait_snapshot_root(s), "a"); /* reading is no change */
		_cleanup_free_ char *text = changes_text(s);
		assert_string_equal(text, "");
	}
}

static void test_snapshot__release_unmounts_and_removes_everything(void **state)
{
	(void)state;
	require_root();
	struct plait_snapshot *s = prepare(PLAIT_SNAPSHOT_OVERLAY);
	_cleanup_free_ char *root = xstrdup(plait_snapshot_root(s));
	assert_true(mounted(root));
	write_at(root, "new", "n");
	plait_snapshot_release(s);
	assert_false(mounted(root));
	struct stat st;
	assert_int_equal(lstat(root, &st), -1);
	assert_int_equal(errno, ENOENT);
	plait_snapshot_release(NULL);
}

static void test_snapshot__copy_preserves_metadata_and_hardlinks(void **state)
{
	(void)state;
	require_root();
	_cleanup_buf_ struct plait_buf l = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf q = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf work = PLAIT_BUF_INIT;
	path_of(&l, "meta");
	path_of(&work, "work");
	assert_int_equal(mkdir(l.buf, 0755), 0);
	write_at(l.buf, "suid", "x");
	plait_buf_addf(&p, "%s/suid", l.buf);
	assert_int_equal(chown(p.buf, 1234, 5678), 0);
	assert_int_equal(chmod(p.buf, 04750), 0);
	assert_int_equal(setxattr(p.buf, "user.plait", "v", 1, 0), 0);
	struct timespec ts[2] = { { 1000, 5 }, { 2000, 7 } };
	assert_int_equal(utimensat(AT_FDCWD, p.buf, ts, 0), 0);
	plait_buf_addf(&q, "%s/hard", l.buf);
	assert_int_equal(link(p.buf, q.buf), 0);
	plait_buf_reset(&q);
	plait_buf_addf(&q, "%s/link", l.buf);
	assert_int_equal(symlink("/etc/passwd", q.buf), 0);
	plait_buf_reset(&q);
	plait_buf_addf(&q, "%s/fifo", l.buf);
	assert_int_equal(mkfifo(q.buf, 0640), 0);

	const char *lowers[] = { l.buf };
	struct plait_snapshot *s = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_snapshot_prepare(lowers, 1, work.buf, PLAIT_SNAPSHOT_COPY, &s, &err), 0);
	const char *root = plait_snapshot_root(s);
	struct stat a, b;
	plait_buf_reset(&p);
	plait_buf_addf(&p, "%s/suid", root);
	assert_int_equal(lstat(p.buf, &a), 0);
	assert_int_equal(a.st_uid, 1234);
	assert_int_equal(a.st_gid, 5678);
	assert_int_equal(a.st_mode & 07777, 04750);
	assert_int_equal(a.st_mtim.tv_sec, 2000);
	assert_int_equal(a.st_mtim.tv_nsec, 7);
	char v[8] = "";
	assert_int_equal(getxattr(p.buf, "user.plait", v, sizeof(v)), 1);
	assert_int_equal(v[0], 'v');
	plait_buf_reset(&q);
	plait_buf_addf(&q, "%s/hard", root);
	assert_int_equal(lstat(q.buf, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	plait_buf_reset(&q);
	plait_buf_addf(&q, "%s/link", root);
	char target[64] = "";
	assert_int_equal(readlink(q.buf, target, sizeof(target) - 1), strlen("/etc/passwd"));
	assert_string_equal(target, "/etc/passwd");
	plait_buf_reset(&q);
	plait_buf_addf(&q, "%s/fifo", root);
	assert_int_equal(lstat(q.buf, &b), 0);
	assert_true(S_ISFIFO(b.st_mode));
	assert_int_equal(b.st_mode & 07777, 0640);
	plait_snapshot_release(s);
	assert_int_equal(plait_rm_rf(l.buf), 0);
}

static void test_snapshot__auto_on_overlay_workroot_copies(void **state)
{
	(void)state;
	require_root();
	/* A workroot that is itself on overlayfs, as in a container. */
	_cleanup_buf_ struct plait_buf base = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf opts = PLAIT_BUF_INIT;
	path_of(&base, "ovl");
	assert_int_equal(mkdir(base.buf, 0755), 0);
	const char *sub[] = { "lo", "up", "wk", "mnt" };
	for (size_t i = 0; i < ARRAY_SIZE(sub); i++)
		mkdir_at(base.buf, sub[i]);
	plait_buf_addf(&opts, "lowerdir=%s/lo,upperdir=%s/up,workdir=%s/wk", base.buf, base.buf, base.buf);
	plait_buf_addf(&base, "/mnt");
	assert_int_equal(mount("overlay", base.buf, "overlay", 0, opts.buf), 0);

	_cleanup_buf_ struct plait_buf l1 = PLAIT_BUF_INIT;
	path_of(&l1, "l1");
	const char *lowers[] = { l1.buf };
	struct plait_snapshot *s = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_snapshot_prepare(lowers, 1, base.buf, PLAIT_SNAPSHOT_AUTO, &s, &err), 0);
	assert_int_equal(plait_snapshot_mode(s), PLAIT_SNAPSHOT_COPY);
	assert_true(exists_at(plait_snapshot_root(s), "a"));
	plait_snapshot_release(s);

	s = NULL;
	int r = plait_snapshot_prepare(lowers, 1, base.buf, PLAIT_SNAPSHOT_OVERLAY, &s, &err);
	assert_int_equal(r, -PLAIT_E_USAGE);
	assert_null(s);
	assert_non_null(strstr(err->msg, "is on overlayfs"));
	assert_int_equal(umount2(base.buf, MNT_DETACH), 0);
}

static void test_snapshot__missing_lower_is_not_found(void **state)
{
	(void)state;
	require_root();
	_cleanup_buf_ struct plait_buf work = PLAIT_BUF_INIT;
	path_of(&work, "work");
	const char *lowers[] = { "/nonexistent/plait-layer" };
	struct plait_snapshot *s = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_snapshot_prepare(lowers, 1, work.buf, PLAIT_SNAPSHOT_AUTO, &s, &err),
			 -PLAIT_E_NOT_FOUND);
	assert_null(s);
	assert_non_null(strstr(err->msg, "'/nonexistent/plait-layer'"));
}

static void test_snapshot__scratch_without_lowers_works_in_both_modes(void **state)
{
	(void)state;
	require_root();
	_cleanup_buf_ struct plait_buf work = PLAIT_BUF_INIT;
	path_of(&work, "work");
	for (int m = PLAIT_SNAPSHOT_OVERLAY; m <= PLAIT_SNAPSHOT_COPY; m++) {
		struct plait_snapshot *s = NULL;
		_cleanup_error_ struct plait_error *err = NULL;
		assert_int_equal(plait_snapshot_prepare(NULL, 0, work.buf, m, &s, &err), 0);
		write_at(plait_snapshot_root(s), "f", "x");
		_cleanup_free_ char *text = changes_text(s);
		assert_string_equal(text, "add f\n");
		plait_snapshot_release(s);
	}
}

static void test_snapshot__many_lowers_mount(void **state)
{
	(void)state;
	require_root();
	/* More lowers than fit a page of "lowerdir=..." with long paths. */
	enum { N = 120 };
	char *paths[N];
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	for (int i = 0; i < N; i++) {
		plait_buf_reset(&p);
		plait_buf_addf(&p, "%s/many-layer-with-a-long-name-to-overflow-the-page-%03d", tmpdir, i);
		assert_int_equal(mkdir(p.buf, 0755), 0);
		_cleanup_buf_ struct plait_buf name = PLAIT_BUF_INIT;
		plait_buf_addf(&name, "f%03d", i);
		write_at(p.buf, name.buf, "x");
		paths[i] = xstrdup(p.buf);
	}
	_cleanup_buf_ struct plait_buf work = PLAIT_BUF_INIT;
	path_of(&work, "work");
	struct plait_snapshot *s = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_snapshot_prepare((const char *const *)paths, N, work.buf, PLAIT_SNAPSHOT_OVERLAY, &s, &err);
	if (r < 0)
		fail_msg("prepare: %s", err->msg);
	assert_true(exists_at(plait_snapshot_root(s), "f000"));
	assert_true(exists_at(plait_snapshot_root(s), "f119"));
	plait_snapshot_release(s);
	for (int i = 0; i < N; i++) {
		(void)plait_rm_rf(paths[i]);
		free(paths[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot__overlay_merges_lowers_and_honours_whiteouts),
		cmocka_unit_test(test_snapshot__copy_merges_lowers_and_honours_whiteouts),
		cmocka_unit_test(test_snapshot__overlay_upper_holds_new_file_and_whiteout),
		cmocka_unit_test(test_snapshot__copy_and_overlay_give_the_same_changes),
		cmocka_unit_test(test_snapshot__replaced_directory_deletes_old_children_in_both_modes),
		cmocka_unit_test(test_snapshot__deleted_directory_lists_only_itself),
		cmocka_unit_test(test_snapshot__unchanged_root_has_no_changes),
		cmocka_unit_test(test_snapshot__release_unmounts_and_removes_everything),
		cmocka_unit_test(test_snapshot__copy_preserves_metadata_and_hardlinks),
		cmocka_unit_test(test_snapshot__auto_on_overlay_workroot_copies),
		cmocka_unit_test(test_snapshot__missing_lower_is_not_found),
		cmocka_unit_test(test_snapshot__scratch_without_lowers_works_in_both_modes),
		cmocka_unit_test(test_snapshot__many_lowers_mount),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
