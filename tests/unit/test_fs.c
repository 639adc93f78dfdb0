/* Unit tests for core/fs.c: paths, mkdir -p, the recursive delete, mkdtemp,
 * atomic replacement. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/util.h"

#include "core/banned.h"

/* ------------------------------------------------------------ fixtures */

static char *make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/plait-fs-XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(b.buf));
	return plait_buf_detach(&b, NULL);
}

static char *at(const char *dir, const char *rel)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/%s", dir, rel);
	return plait_buf_detach(&b, NULL);
}

static void put(const char *dir, const char *rel, const char *text)
{
	_cleanup_free_ char *p = at(dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, text, strlen(text)), 0);
	close(fd);
}

static void mk(const char *dir, const char *rel)
{
	_cleanup_free_ char *p = at(dir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static bool exists(const char *dir, const char *rel)
{
	_cleanup_free_ char *p = at(dir, rel);
	struct stat st;
	return lstat(p, &st) == 0;
}

static void assert_mode(const char *dir, const char *rel, mode_t want)
{
	_cleanup_free_ char *p = at(dir, rel);
	struct stat st;
	assert_int_equal(lstat(p, &st), 0);
	if ((st.st_mode & 07777) != want)
		fail_msg("'%s' has mode %04o, want %04o", rel, st.st_mode & 07777, want);
}

/* The names in dir, sorted, joined with ' '. */
static char *listing(const char *dir)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	assert_non_null(d);
	char **names = NULL;
	for (struct dirent *de; (de = readdir(d));)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			plait_strv_push(&names, de->d_name);
	size_t n = plait_strv_length(names);
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	char *s = plait_strv_join(names, " ");
	plait_strv_free(names);
	return s;
}

static void assert_listing(const char *dir, const char *want)
{
	_cleanup_free_ char *got = listing(dir);
	if (strcmp(got, want))
		fail_msg("'%s' holds '%s', want '%s'", dir, got, want);
}

/* ------------------------------------------------------------ paths */

static void test_fs__path_join(void **state)
{
	(void)state;
	static const char *const cases[][3] = {
		{ "a", "b", "a/b" },   { "/a/", "b", "/a/b" }, { "/", "etc", "/etc" },
		{ ".", "x", "x" },     { "", "x", "x" },       { "a/b", "c/d", "a/b/c/d" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *j = plait_path_join(cases[i][0], cases[i][1]);
		if (strcmp(j, cases[i][2]))
			fail_msg("join('%s', '%s') = '%s', want '%s'", cases[i][0], cases[i][1], j,
				 cases[i][2]);
	}
	_cleanup_free_ char *n = plait_path_join(NULL, "x");
	assert_string_equal(n, "x");
}

/* concat keeps the directory as spelled: messages show the user's own path */
static void test_fs__path_concat(void **state)
{
	(void)state;
	static const char *const cases[][3] = {
		{ "a", "b", "a/b" }, { "/a/", "b", "/a//b" }, { ".", "x", "./x" }, { "", "x", "/x" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *j = plait_path_concat(cases[i][0], cases[i][1]);
		if (strcmp(j, cases[i][2]))
			fail_msg("concat('%s', '%s') = '%s', want '%s'", cases[i][0], cases[i][1], j,
				 cases[i][2]);
	}
}

static void test_fs__path_dir(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{ "a/b/c.json", "a/b" }, { "/out.tar", "/" }, { "m.json", "." }, { "/x/y", "/x" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *d = plait_path_dir(cases[i][0]);
		assert_string_equal(d, cases[i][1]);
	}
}

/* ------------------------------------------------------------ mkdir -p */

static void test_fs__mkdir_p_makes_every_level_with_mode(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	mode_t old = umask(022);
	_cleanup_free_ char *deep = at(dir, "a/b/c");
	assert_int_equal(plait_mkdir_p(deep, 0750, NULL), 0);
	assert_mode(dir, "a", 0750);
	assert_mode(dir, "a/b", 0750);
	assert_mode(dir, "a/b/c", 0750);
	/* the umask applies, as to mkdir(2) */
	_cleanup_free_ char *masked = at(dir, "m/n");
	assert_int_equal(plait_mkdir_p(masked, 0777, NULL), 0);
	assert_mode(dir, "m/n", 0755);
	umask(old);
	assert_int_equal(plait_rm_rf(dir), 0);
}

static void test_fs__mkdir_p_accepts_what_exists(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	mk(dir, "keep");
	_cleanup_free_ char *keep = at(dir, "keep");
	assert_int_equal(chmod(keep, 0700), 0);
	/* an existing directory keeps its mode; a trailing '/' and '//' are fine */
	_cleanup_free_ char *below = at(dir, "keep//new/");
	assert_int_equal(plait_mkdir_p(below, 0755, NULL), 0);
	assert_mode(dir, "keep", 0700);
	assert_int_equal(plait_mkdir_p(keep, 0755, NULL), 0);
	assert_int_equal(plait_mkdir_p("/", 0755, NULL), 0);
	/* an existing file at the path: the caller's open says what it is */
	put(dir, "file", "x");
	_cleanup_free_ char *file = at(dir, "file");
	assert_int_equal(plait_mkdir_p(file, 0755, NULL), 0);
	/* a file above the path is not a directory, and the message can name it */
	_cleanup_free_ char *under = at(dir, "file/sub/deeper");
	size_t failed = 0;
	assert_int_equal(plait_mkdir_p(under, 0755, &failed), -ENOTDIR);
	if (failed != strlen(file) + strlen("/sub"))
		fail_msg("failed prefix is '%.*s', want '%s/sub'", (int)failed, under, file);
	assert_int_equal(plait_mkdir_p("", 0755, NULL), -ENOENT);
	assert_int_equal(plait_rm_rf(dir), 0);
}

/* ------------------------------------------------------------ rm -rf */

static void test_fs__rm_rf_removes_a_tree_and_missing_is_fine(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	mk(dir, "t");
	mk(dir, "t/a");
	mk(dir, "t/a/b");
	put(dir, "t/a/b/f", "x");
	put(dir, "t/g", "y");
	_cleanup_free_ char *fifo = at(dir, "t/a/p");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	_cleanup_free_ char *t = at(dir, "t");
	assert_int_equal(plait_rm_rf(t), 0);
	assert_false(exists(dir, "t"));
	assert_int_equal(plait_rm_rf(t), 0);
	_cleanup_free_ char *missing = at(dir, "no/such/thing");
	assert_int_equal(plait_rm_rf(missing), 0);
	/* a file is unlinked; a trailing '/' names the directory */
	put(dir, "f", "x");
	_cleanup_free_ char *f = at(dir, "f");
	assert_int_equal(plait_rm_rf(f), 0);
	assert_false(exists(dir, "f"));
	/* "x/.." and "x/." name no tree of their own: refused, nothing removed
	 * (which is also what keeps rm_rf("/") out) */
	mk(dir, "keep");
	_cleanup_free_ char *dotdot = at(dir, "keep/..");
	_cleanup_free_ char *dot = at(dir, "keep/.");
	assert_int_equal(plait_rm_rf(dotdot), -EINVAL);
	assert_int_equal(plait_rm_rf(dot), -EINVAL);
	assert_true(exists(dir, "keep"));
	mk(dir, "d");
	_cleanup_free_ char *d = at(dir, "d/");
	assert_int_equal(plait_rm_rf(d), 0);
	assert_false(exists(dir, "d"));
	assert_int_equal(plait_rm_rf(dir), 0);
	struct stat st;
	assert_int_equal(lstat(dir, &st), -1);
}

static void test_fs__rm_rf_does_not_follow_symlinks(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	mk(dir, "outside");
	put(dir, "outside/precious", "keep me");
	mk(dir, "t");
	_cleanup_free_ char *outside = at(dir, "outside");
	_cleanup_free_ char *link = at(dir, "t/link");
	assert_int_equal(symlink(outside, link), 0);
	_cleanup_free_ char *flink = at(dir, "t/flink");
	_cleanup_free_ char *precious = at(dir, "outside/precious");
	assert_int_equal(symlink(precious, flink), 0);
	_cleanup_free_ char *t = at(dir, "t");
	assert_int_equal(plait_rm_rf(t), 0);
	assert_false(exists(dir, "t"));
	assert_listing(outside, "precious");
	/* the tree named through a symlink: the link goes, the target stays */
	_cleanup_free_ char *top = at(dir, "top");
	assert_int_equal(symlink(outside, top), 0);
	assert_int_equal(plait_rm_rf(top), 0);
	assert_false(exists(dir, "top"));
	assert_listing(outside, "precious");
	assert_int_equal(plait_rm_rf(dir), 0);
}

static void test_fs__rm_rf_at_takes_one_component(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	mk(dir, "a");
	mk(dir, "a/b");
	put(dir, "a/b/f", "x");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(plait_rm_rf_at(dfd, "a/b"), -EINVAL);
	assert_int_equal(plait_rm_rf_at(dfd, "."), -EINVAL);
	assert_int_equal(plait_rm_rf_at(dfd, ".."), -EINVAL);
	assert_int_equal(plait_rm_rf_at(dfd, ""), -EINVAL);
	assert_true(exists(dir, "a/b/f"));
	assert_int_equal(plait_rm_rf_at(dfd, "missing"), 0);
	assert_int_equal(plait_rm_rf_at(dfd, "a"), 0);
	assert_listing(dir, "");
	close(dfd);
	assert_int_equal(plait_rm_rf(dir), 0);
}

/* Mounts need root and a private mount namespace (so that nothing is left
 * mounted on the host if the test dies): skip otherwise. */
static bool private_mounts(void)
{
	if (geteuid() != 0)
		return false;
	static int done = -1;
	if (done < 0)
		done = unshare(CLONE_NEWNS) == 0 &&
		       mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
	return done == 1;
}

static void test_fs__rm_rf_does_not_enter_a_mount(void **state)
{
	(void)state;
	if (!private_mounts()) {
		skip();
		return;
	}
	_cleanup_free_ char *dir = make_tmpdir();
	mk(dir, "t");
	mk(dir, "t/mnt");
	put(dir, "t/sibling", "x");
	_cleanup_free_ char *mnt = at(dir, "t/mnt");
	assert_int_equal(mount("tmpfs", mnt, "tmpfs", 0, "size=1m"), 0);
	put(dir, "t/mnt/on-tmpfs", "keep me");
	_cleanup_free_ char *t = at(dir, "t");
	assert_int_equal(plait_rm_rf(t), -ENOTEMPTY);
	assert_true(exists(dir, "t/mnt/on-tmpfs"));
	assert_false(exists(dir, "t/sibling"));
	/* the tree itself a mount point: nothing removed */
	assert_int_equal(plait_rm_rf(mnt), -EBUSY);
	assert_true(exists(dir, "t/mnt/on-tmpfs"));
	assert_int_equal(umount(mnt), 0);

	/* a bind mount of the same file system (same device) is a mount too */
	mk(dir, "src");
	put(dir, "src/bound", "keep me");
	_cleanup_free_ char *src = at(dir, "src");
	assert_int_equal(mount(src, mnt, NULL, MS_BIND, NULL), 0);
	assert_int_equal(plait_rm_rf(t), -ENOTEMPTY);
	assert_true(exists(dir, "src/bound"));
	assert_int_equal(umount(mnt), 0);
	assert_int_equal(plait_rm_rf(dir), 0);
}

static void test_fs__rm_rf_removes_unreadable_dirs_as_root(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		skip();
		return;
	}
	/* overlayfs leaves its work/work at mode 000 */
	_cleanup_free_ char *dir = make_tmpdir();
	mk(dir, "work");
	mk(dir, "work/work");
	put(dir, "work/work/f", "x");
	_cleanup_free_ char *ww = at(dir, "work/work");
	assert_int_equal(chmod(ww, 0), 0);
	assert_int_equal(plait_rm_rf(dir), 0);
	struct stat st;
	assert_int_equal(lstat(dir, &st), -1);
}

/* ------------------------------------------------------------ mkdtemp */

static void test_fs__mkdtemp_makes_a_private_dir_under_tmpdir(void **state)
{
	(void)state;
	_cleanup_free_ char *base = make_tmpdir();
	_cleanup_free_ char *old = xstrdup_or_null(getenv("TMPDIR"));
	setenv("TMPDIR", base, 1);
	struct plait_tmpdir a = PLAIT_TMPDIR_INIT, b = PLAIT_TMPDIR_INIT, c = PLAIT_TMPDIR_INIT;
	struct plait_error *err = NULL;
	assert_int_equal(plait_mkdtemp("unit", &a, &err), 0);
	assert_int_equal(plait_mkdtemp("unit", &b, &err), 0);
	assert_string_not_equal(a.path, b.path);
	_cleanup_free_ char *prefix = at(base, "plait-unit-");
	assert_true(startswith(a.path, prefix));
	struct stat st;
	assert_int_equal(stat(a.path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0700);
	/* held: another descriptor cannot take its lock */
	_cleanup_close_ int other = open(a.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(other >= 0);
	assert_int_equal(flock(other, LOCK_EX | LOCK_NB), -1);
	_cleanup_free_ char *apath = xstrdup(a.path);
	plait_tmpdir_remove(&a);
	assert_null(a.path);
	assert_int_equal(a.lock_fd, -1);
	assert_int_equal(lstat(apath, &st), -1);
	plait_tmpdir_remove(&b);
	plait_tmpdir_remove(&b); /* twice: a no-op */
	/* a TMPDIR that does not exist: an error that names the directory */
	_cleanup_free_ char *missing = at(base, "missing");
	setenv("TMPDIR", missing, 1);
	assert_int_equal(plait_mkdtemp("unit", &c, &err), -PLAIT_E_IO);
	assert_non_null(strstr(err->msg, "create temporary directory '"));
	assert_non_null(strstr(err->msg, "/missing/plait-unit-"));
	assert_null(c.path);
	plait_error_clear(&err);
	if (old)
		setenv("TMPDIR", old, 1);
	else
		unsetenv("TMPDIR");
	assert_int_equal(plait_rm_rf(base), 0);
}

/* ------------------------------------------------------------ stale temporaries */

/* What a plait killed with SIGKILL leaves: its temporary directory (with a
 * file and, as root, a mount inside), made by a child that then dies without
 * cleaning up. mtime is set back by age seconds. */
static char *dead_owners_dir(const char *parent, const char *prefix, int age, bool mount_inside)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct plait_tmpdir t;
		struct plait_error *e = NULL;
		if (plait_tmpdir_make(parent, prefix, &t, &e) < 0)
			_exit(1);
		_cleanup_free_ char *f = at(t.path, "data");
		_cleanup_free_ char *m = at(t.path, "root");
		if (plait_replace_file(f, "x", 1) < 0 || mkdir(m, 0700) < 0)
			_exit(1);
		if (mount_inside && mount("tmpfs", m, "tmpfs", 0, NULL) < 0)
			_exit(1);
		(void)!write(p[1], t.path, strlen(t.path));
		_exit(0); /* the lock dies with us; nothing is removed */
	}
	close(p[1]);
	char buf[4096];
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(n > 0);
	buf[n] = '\0';
	struct timespec ts[2] = { { .tv_sec = time(NULL) - age }, { .tv_sec = time(NULL) - age } };
	assert_int_equal(utimensat(AT_FDCWD, buf, ts, 0), 0);
	return xstrdup(buf);
}

static bool mounted_at(const char *path)
{
	_cleanup_free_ char *real = realpath(path, NULL);
	FILE *f = fopen("/proc/self/mountinfo", "re");
	assert_non_null(f);
	char line[4096];
	bool found = false;
	while (real && fgets(line, sizeof(line), f)) {
		char point[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 && streq(point, real))
			found = true;
	}
	fclose(f);
	return found;
}

static void test_fs__sweep_removes_what_a_dead_owner_left_and_nothing_else(void **state)
{
	(void)state;
	_cleanup_free_ char *base = make_tmpdir();
	/* (the young one first: making the stale one's would sweep it) */
	_cleanup_free_ char *young = dead_owners_dir(base, "run-", 0, false);
	_cleanup_free_ char *stale = dead_owners_dir(base, "run-", 60, geteuid() == 0);
	_cleanup_free_ char *other = dead_owners_dir(base, "keep-", 60, false);
	_cleanup_free_ char *stale_root = at(stale, "root");
	if (geteuid() == 0)
		assert_true(mounted_at(stale_root));
	/* one held by a live owner (this process), however old */
	struct plait_tmpdir live;
	struct plait_error *err = NULL;
	assert_int_equal(plait_tmpdir_make(base, "run-", &live, &err), 0);
	struct timespec ts[2] = { { .tv_sec = time(NULL) - 3600 }, { .tv_sec = time(NULL) - 3600 } };
	assert_int_equal(utimensat(AT_FDCWD, live.path, ts, 0), 0);
	/* plait_tmpdir_make swept already: the stale one is gone, with its mount */
	struct stat st;
	assert_int_equal(lstat(stale, &st), -1);
	assert_false(mounted_at(stale_root));
	assert_int_equal(lstat(young, &st), 0);  /* too young: maybe not locked yet */
	assert_int_equal(lstat(other, &st), 0);  /* another prefix */
	assert_int_equal(lstat(live.path, &st), 0);
	assert_int_equal(plait_sweep_stale(base, "run-"), 0);
	assert_int_equal(lstat(live.path, &st), 0);
	/* once old, the young one goes too; the live one never */
	assert_int_equal(utimensat(AT_FDCWD, young, ts, 0), 0);
	assert_int_equal(plait_sweep_stale(base, "run-"), 1);
	assert_int_equal(lstat(young, &st), -1);
	assert_int_equal(lstat(live.path, &st), 0);
	plait_tmpdir_remove(&live);
	assert_int_equal(plait_rm_rf(base), 0);
}

static void test_fs__tmpfile_make_sweeps_stale_siblings(void **state)
{
	(void)state;
	_cleanup_free_ char *base = make_tmpdir();
	_cleanup_free_ char *path = at(base, "image.tar");
	_cleanup_free_ char *stale = at(base, "image.tar.tmp-OLD123");
	_cleanup_free_ char *unrelated = at(base, "other.tar.tmp-OLD123");
	assert_int_equal(plait_replace_file(stale, "half an archive", 15), 0);
	assert_int_equal(plait_replace_file(unrelated, "x", 1), 0);
	struct timespec ts[2] = { { .tv_sec = time(NULL) - 60 }, { .tv_sec = time(NULL) - 60 } };
	assert_int_equal(utimensat(AT_FDCWD, stale, ts, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, unrelated, ts, 0), 0);
	struct plait_tmpdir t;
	struct plait_error *err = NULL;
	assert_int_equal(plait_tmpfile_make(path, &t, &err), 0);
	_cleanup_free_ char *prefix = at(base, "image.tar.tmp-");
	assert_true(startswith(t.path, prefix));
	struct stat st;
	assert_int_equal(lstat(stale, &st), -1);
	assert_int_equal(lstat(unrelated, &st), 0);
	assert_int_equal(fstat(t.lock_fd, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	_cleanup_free_ char *tpath = xstrdup(t.path);
	plait_tmpdir_remove(&t);
	assert_int_equal(lstat(tpath, &st), -1);
	assert_int_equal(plait_rm_rf(base), 0);
}

/* ------------------------------------------------------------ replace_file */

static void assert_content(const char *path, const char *want)
{
	struct plait_buf got = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&got, path, 1024), 0);
	assert_string_equal(got.buf, want);
	plait_buf_release(&got);
}

static void test_fs__replace_file_swaps_content_and_leaves_no_temp(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	_cleanup_free_ char *p = at(dir, "record");
	assert_int_equal(plait_replace_file(p, "first", 5), 0);
	assert_int_equal(plait_replace_file(p, "second!", 7), 0);
	assert_content(p, "second!");
	assert_int_equal(plait_replace_file_full(p, "third", 5, 0600, PLAIT_REPLACE_SYNC), 0);
	assert_content(p, "third");
	/* only the file itself is left: no "<path>.tmp-…" */
	assert_listing(dir, "record");
	assert_int_equal(plait_rm_rf(dir), 0);
}

static void test_fs__replace_file_failure_leaves_path_and_no_temp(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	/* a missing directory is an error, not a crash */
	_cleanup_free_ char *missing = at(dir, "missing/record");
	assert_int_equal(plait_replace_file(missing, "x", 1), -ENOENT);
	/* the rename fails (a non-empty directory is in the way): it is untouched
	 * and the temporary file is gone */
	mk(dir, "busy");
	put(dir, "busy/inside", "old");
	_cleanup_free_ char *busy = at(dir, "busy");
	int r = plait_replace_file(busy, "new", 3);
	if (r != -EISDIR)
		fail_msg("replacing a directory: %d (%s), want -EISDIR", r, strerror(-r));
	assert_listing(dir, "busy");
	assert_listing(busy, "inside");
	assert_int_equal(plait_rm_rf(dir), 0);
}

static void test_fs__replace_file_mode_and_symlink(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	mode_t old = umask(077);
	_cleanup_free_ char *p = at(dir, "f");
	assert_int_equal(plait_replace_file(p, "x", 1), 0);
	assert_mode(dir, "f", 0600); /* 0644 less the umask */
	assert_int_equal(plait_replace_file_full(p, "x", 1, 0644, PLAIT_REPLACE_EXACT_MODE), 0);
	assert_mode(dir, "f", 0644);
	umask(old);

	/* FOLLOW writes through a symlink (docker's config.json); without it the
	 * link itself is replaced by a file */
	mk(dir, "real");
	put(dir, "real/config.json", "old");
	_cleanup_free_ char *real = at(dir, "real/config.json");
	_cleanup_free_ char *link = at(dir, "config.json");
	assert_int_equal(symlink(real, link), 0);
	assert_int_equal(plait_replace_file_full(link, "new", 3, 0600,
						 PLAIT_REPLACE_FOLLOW | PLAIT_REPLACE_EXACT_MODE),
			 0);
	struct stat st;
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_content(real, "new");
	assert_mode(dir, "real/config.json", 0600);
	assert_listing(dir, "config.json f real");
	_cleanup_free_ char *rdir = at(dir, "real");
	assert_listing(rdir, "config.json");
	assert_int_equal(plait_replace_file(link, "plain", 5), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_content(real, "new");
	assert_int_equal(plait_rm_rf(dir), 0);
}

/* ------------------------------------------------------------ dir_names */

static void assert_names(const char *dir, bool skip_hidden, const char *want)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	size_t n = 99;
	char **v = plait_dir_names(d, skip_hidden, &n);
	closedir(d);
	_cleanup_free_ char *got = plait_strv_join(v, " ");
	if (!streq(got ? got : "", want) || n != plait_strv_length(v))
		fail_msg("names of '%s' (skip_hidden %d): '%s' (n %zu), want '%s'", dir, skip_hidden,
			 got ? got : "", n, want);
	plait_strv_free(v);
}

static void test_fs__dir_names_sorted_without_dot_entries(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	assert_names(dir, false, "");
	put(dir, "b", "");
	put(dir, "a", "");
	put(dir, ".h", "");
	mk(dir, "c");
	assert_names(dir, false, ".h a b c");
	assert_names(dir, true, "a b c");
	assert_int_equal(plait_rm_rf(dir), 0);
}

/* ------------------------------------------------------------ copy */

static void assert_same_file(const char *path, const char *want)
{
	struct plait_buf got = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&got, path, 1 << 20), 0);
	if (got.len != strlen(want) || memcmp(got.buf, want, got.len))
		fail_msg("'%s' holds %zu bytes, want the %zu copied", path, got.len, strlen(want));
	plait_buf_release(&got);
}

static void copy_between(const char *src, const char *dst, int *no_range, int want,
			 enum plait_copy_step want_step, int in_flags, int out_flags)
{
	_cleanup_close_ int in = open(src, in_flags | O_CLOEXEC);
	_cleanup_close_ int out = open(dst, out_flags | O_CLOEXEC, 0600);
	assert_true(in >= 0 && out >= 0);
	enum plait_copy_step step = PLAIT_COPY_RANGE + 99;
	int r = plait_copy_fd(in, out, no_range, &step);
	if (r != want || (r < 0 && step != want_step))
		fail_msg("copy '%s' to '%s': %d at step %d, want %d at step %d", src, dst, r,
			 (int)step, want, (int)want_step);
}

static void test_fs__copy_fd_copies_and_names_the_failed_step(void **state)
{
	(void)state;
	_cleanup_free_ char *dir = make_tmpdir();
	_cleanup_free_ char *src = at(dir, "src"), *a = at(dir, "a"), *b = at(dir, "b");
	struct plait_buf big = PLAIT_BUF_INIT;
	for (int i = 0; i < 20000; i++) /* more than one read/write round */
		plait_buf_addf(&big, "line %d\n", i);
	put(dir, "src", big.buf);
	/* by copy_file_range, and by read/write once *no_range says so */
	int no_range = 0;
	copy_between(src, a, &no_range, 0, PLAIT_COPY_RANGE, O_RDONLY, O_WRONLY | O_CREAT);
	assert_same_file(a, big.buf);
	no_range = 1;
	copy_between(src, b, &no_range, 0, PLAIT_COPY_RANGE, O_RDONLY, O_WRONLY | O_CREAT);
	assert_same_file(b, big.buf);
	/* a source not open for reading: the read fails; a target not open for
	 * writing: the write fails (each named, for the caller's message) */
	copy_between(src, a, &no_range, -EBADF, PLAIT_COPY_READ, O_WRONLY, O_WRONLY);
	copy_between(src, a, &no_range, -EBADF, PLAIT_COPY_WRITE, O_RDONLY, O_RDONLY);
	/* and copy_file_range's own failure without the memo */
	copy_between(src, a, NULL, -EBADF, PLAIT_COPY_RANGE, O_RDONLY, O_RDONLY);
	plait_buf_release(&big);
	assert_int_equal(plait_rm_rf(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fs__path_join),
	    cmocka_unit_test(test_fs__path_concat),
	    cmocka_unit_test(test_fs__path_dir),
	    cmocka_unit_test(test_fs__copy_fd_copies_and_names_the_failed_step),
	    cmocka_unit_test(test_fs__dir_names_sorted_without_dot_entries),
	    cmocka_unit_test(test_fs__mkdir_p_makes_every_level_with_mode),
	    cmocka_unit_test(test_fs__mkdir_p_accepts_what_exists),
	    cmocka_unit_test(test_fs__rm_rf_removes_a_tree_and_missing_is_fine),
	    cmocka_unit_test(test_fs__rm_rf_does_not_follow_symlinks),
	    cmocka_unit_test(test_fs__rm_rf_at_takes_one_component),
	    cmocka_unit_test(test_fs__rm_rf_does_not_enter_a_mount),
	    cmocka_unit_test(test_fs__rm_rf_removes_unreadable_dirs_as_root),
	    cmocka_unit_test(test_fs__mkdtemp_makes_a_private_dir_under_tmpdir),
	    cmocka_unit_test(test_fs__sweep_removes_what_a_dead_owner_left_and_nothing_else),
	    cmocka_unit_test(test_fs__tmpfile_make_sweeps_stale_siblings),
	    cmocka_unit_test(test_fs__replace_file_swaps_content_and_leaves_no_temp),
	    cmocka_unit_test(test_fs__replace_file_failure_leaves_path_and_no_temp),
	    cmocka_unit_test(test_fs__replace_file_mode_and_symlink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
