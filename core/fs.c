/* core/fs.c - file-system helpers; the contract is in fs.h. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "error.h"
#include "strv.h"
#include "util.h"
#include "banned.h"

char *plait_path_join(const char *dir, const char *name)
{
	if (!dir || !*dir || streq(dir, "."))
		return xstrdup(name);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_adds(&b, dir);
	if (b.buf[b.len - 1] != '/')
		plait_buf_addch(&b, '/');
	plait_buf_adds(&b, name);
	return plait_buf_detach(&b, NULL);
}

char *plait_path_concat(const char *dir, const char *name)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/%s", dir, name);
	return plait_buf_detach(&b, NULL);
}

void plait_path_child(struct plait_buf *out, const char *rel, const char *name)
{
	plait_buf_reset(out);
	if (*rel) {
		plait_buf_adds(out, rel);
		plait_buf_addch(out, '/');
	}
	plait_buf_adds(out, name);
}

char *plait_path_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

char **plait_dir_names(DIR *d, bool skip_hidden, size_t *n)
{
	char **v = NULL;
	size_t len = 0, alloc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (skip_hidden ? de->d_name[0] == '.'
				: streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		plait_strv_add(&v, &len, &alloc, de->d_name);
	}
	plait_strv_sort(v);
	if (n)
		*n = len;
	return v;
}

/* mkdir one prefix of path: 0, or -errno with *failed_len set. */
static int mkdir_one(const char *path, size_t len, mode_t mode, size_t *failed_len)
{
	_cleanup_free_ char *p = xstrndup(path, len);
	if (mkdir(p, mode) == 0 || errno == EEXIST)
		return 0;
	if (failed_len)
		*failed_len = len;
	return -errno;
}

int plait_mkdir_p(const char *path, mode_t mode, size_t *failed_len)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--; /* "a/b/" is "a/b" */
	if (!n) {
		if (failed_len)
			*failed_len = 0;
		return -ENOENT;
	}
	for (size_t i = 1; i < n; i++) {
		if (path[i] != '/' || path[i - 1] == '/')
			continue;
		int r = mkdir_one(path, i, mode, failed_len);
		if (r < 0)
			return r;
	}
	return mkdir_one(path, n, mode, failed_len);
}

/* ------------------------------------------------------------ stale temporaries */

/* Younger than this, an entry may be one whose maker has not locked it yet. */
#define STALE_MIN_AGE_S 10

/* Octal escapes of /proc/self/mountinfo ("\040" for a space), in place. */
static void unescape_mountinfo(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
		    r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

int plait_umount_below(const char *path)
{
	_cleanup_free_ char *real = realpath(path, NULL);
	if (!real)
		return errno == ENOENT ? 0 : -errno;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char **points = NULL;
	char *line = NULL;
	size_t cap = 0, len = strlen(real);
	while (getline(&line, &cap, f) > 0) {
		/* "36 35 98:0 /root /mnt/point rw,... - type source opts" */
		char *save = NULL, *field = strtok_r(line, " ", &save);
		for (int i = 0; field && i < 4; i++)
			field = strtok_r(NULL, " ", &save);
		if (!field)
			continue;
		unescape_mountinfo(field);
		if (strncmp(field, real, len) == 0 && (field[len] == '\0' || field[len] == '/'))
			plait_strv_push(&points, field);
	}
	free(line);
	fclose(f);
	/* Deepest first; mountinfo lists parents before children. */
	size_t n = plait_strv_length(points);
	for (size_t i = n; i-- > 0;)
		(void)umount2(points[i], MNT_DETACH);
	plait_strv_free(points);
	return 0;
}

/* fd is an entry of a temporary kind: 1 when its owner is gone (its lock
 * can be taken; then it stays taken on fd) and it is old enough. */
static bool is_stale(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return false;
	/* mtime: set when it was made and whenever it was written to. */
	time_t now = time(NULL);
	if (now - st.st_mtime < STALE_MIN_AGE_S && st.st_mtime <= now)
		return false;
	return flock(fd, LOCK_EX | LOCK_NB) == 0;
}

int plait_sweep_stale(const char *parent, const char *prefix)
{
	_cleanup_close_ int dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	DIR *d = fdopendir(dup(dfd));
	if (!d)
		return 0;
	size_t n = 0;
	char **names = plait_dir_names(d, false, &n);
	closedir(d);
	int removed = 0;
	for (size_t i = 0; i < n; i++) {
		if (!startswith(names[i], prefix))
			continue;
		_cleanup_close_ int fd = openat(dfd, names[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 || !is_stale(fd))
			continue;
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			_cleanup_free_ char *p = plait_path_join(parent, names[i]);
			(void)plait_umount_below(p);
		}
		if (plait_rm_rf_at(dfd, names[i]) == 0)
			removed++;
	}
	plait_strv_free(names);
	return removed;
}

int plait_tmpdir_make(const char *parent, const char *prefix, struct plait_tmpdir *out,
		      struct plait_error **err)
{
	*out = (struct plait_tmpdir)PLAIT_TMPDIR_INIT;
	(void)plait_sweep_stale(parent, prefix);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/%sXXXXXX", parent, prefix);
	if (!mkdtemp(b.buf)) {
		int r = plait_error_set_errno(err, PLAIT_E_IO, errno, "create temporary directory '%s'", b.buf);
		plait_buf_release(&b);
		return r;
	}
	int fd = open(b.buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		int r = plait_error_set_errno(err, PLAIT_E_IO, errno, "lock temporary directory '%s'", b.buf);
		if (fd >= 0)
			close(fd);
		rmdir(b.buf);
		plait_buf_release(&b);
		return r;
	}
	out->path = plait_buf_detach(&b, NULL);
	out->lock_fd = fd;
	return 0;
}

int plait_tmpfile_make(const char *path, struct plait_tmpdir *out, struct plait_error **err)
{
	*out = (struct plait_tmpdir)PLAIT_TMPDIR_INIT;
	_cleanup_free_ char *dir = plait_path_dir(path);
	const char *slash = strrchr(path, '/');
	struct plait_buf prefix = PLAIT_BUF_INIT;
	plait_buf_addf(&prefix, "%s.tmp-", slash ? slash + 1 : path);
	(void)plait_sweep_stale(dir, prefix.buf);
	plait_buf_release(&prefix);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s.tmp-XXXXXX", path);
	int fd = mkostemp(b.buf, O_CLOEXEC);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		int r = plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", b.buf);
		if (fd >= 0) {
			close(fd);
			unlink(b.buf);
		}
		plait_buf_release(&b);
		return r;
	}
	out->path = plait_buf_detach(&b, NULL);
	out->lock_fd = fd;
	return 0;
}

void plait_tmpdir_remove(struct plait_tmpdir *t)
{
	if (t->path)
		(void)plait_rm_rf(t->path);
	if (t->lock_fd >= 0)
		close(t->lock_fd);
	free(t->path);
	*t = (struct plait_tmpdir)PLAIT_TMPDIR_INIT;
}

int plait_syncfs(const char *path, struct plait_error **err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s' to sync it", path);
	int r = syncfs(fd) < 0 ? plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot sync the file system of '%s'", path) : 0;
	close(fd);
	return r;
}

mode_t plait_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return 022;
	char line[256];
	unsigned long m = 022;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Umask: %lo", &m) == 1)
			break;
	fclose(f);
	return (mode_t)(m & 0777);
}

int plait_mkdtemp(const char *what, struct plait_tmpdir *out, struct plait_error **err)
{
	const char *tmp = getenv("TMPDIR");
	struct plait_buf prefix = PLAIT_BUF_INIT;
	plait_buf_addf(&prefix, "plait-%s-", what);
	int r = plait_tmpdir_make(tmp && *tmp ? tmp : "/tmp", prefix.buf, out, err);
	plait_buf_release(&prefix);
	return r;
}

/* ------------------------------------------------------------ rm -rf */

/* Which mount an open file is on: the device and, where the kernel says, the
 * mount id (a bind mount of the same file system has the same device). */
struct mount_of {
	dev_t dev;
	uint64_t mnt_id; /* 0: unknown */
};

static int mount_of_fd(int fd, struct mount_of *m)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) == 0) {
		m->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
		m->mnt_id = (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
		return 0;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	m->dev = st.st_dev;
	m->mnt_id = 0;
	return 0;
}

static bool same_mount(const struct mount_of *a, const struct mount_of *b)
{
	if (a->dev != b->dev)
		return false;
	return !a->mnt_id || !b->mnt_id || a->mnt_id == b->mnt_id;
}

static int rm_rf_below(int dfd, const char *name, const struct mount_of *top, bool is_top);

/* Empty the directory open at fd (which rm_rf_below has checked). */
static int empty_dir(int fd, const struct mount_of *top)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		int r = -errno;
		close(fd);
		return r;
	}
	_cleanup_closedir_ DIR *dp = d;
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		r = rm_rf_below(dirfd(d), de->d_name, top, false);
		if (r < 0)
			return r;
	}
	return 0;
}

static int rm_rf_below(int dfd, const char *name, const struct mount_of *top, bool is_top)
{
	/* A file, a symlink (not its target) or a device goes at once; a
	 * directory says EISDIR. */
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR)
		return -errno;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct mount_of here;
	int r = mount_of_fd(fd, &here);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (!same_mount(&here, top)) {
		/* another file system is mounted here: not ours to empty. Below the
		 * top it stays, and the parent's rmdir says ENOTEMPTY. */
		close(fd);
		return is_top ? -EBUSY : 0;
	}
	r = empty_dir(fd, top);
	if (r < 0)
		return r;
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int plait_rm_rf_at(int dirfd, const char *name)
{
	if (!*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
		return -EINVAL;
	struct mount_of top;
	int r = mount_of_fd(dirfd, &top);
	if (r < 0)
		return r;
	return rm_rf_below(dirfd, name, &top, true);
}

int plait_rm_rf(const char *path)
{
	_cleanup_free_ char *p = xstrdup(path);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	char *slash = strrchr(p, '/');
	const char *base = slash ? slash + 1 : p;
	_cleanup_free_ char *dir = slash ? (slash == p ? xstrdup("/") : xstrndup(p, (size_t)(slash - p)))
					 : xstrdup(".");
	if (!*base || streq(base, ".") || streq(base, ".."))
		return -EINVAL;
	/* O_PATH: a parent we may search but not list (0711) is enough, as it
	 * is for unlink(2) */
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	return plait_rm_rf_at(dfd, base);
}

int plait_open_dir_nofollow(int rootfd, const char *rel, int *out)
{
	int fd = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	const char *p = rel;
	while (*p) {
		const char *e = strchrnul(p, '/');
		char comp[NAME_MAX + 1];
		size_t n = (size_t)(e - p);
		if (n > NAME_MAX) {
			close(fd);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p = *e ? e + 1 : e;
		if (!n)
			continue;
		int nfd = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int saved = errno;
		close(fd);
		if (nfd < 0)
			return -saved;
		fd = nfd;
	}
	*out = fd;
	return 0;
}

/* ------------------------------------------------------------ replace_file */

static atomic_uint replace_seq;

/* Open a new temporary file next to path: "<path>.tmp-<tid>-<n>". */
static int open_temp(const char *path, mode_t mode, struct plait_buf *tmp)
{
	for (int tries = 0; tries < 100; tries++) {
		plait_buf_reset(tmp);
		plait_buf_addf(tmp, "%s.tmp-%d-%u", path, (int)gettid(),
			       atomic_fetch_add(&replace_seq, 1));
		int fd = open(tmp->buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd >= 0 || errno != EEXIST)
			return fd < 0 ? -errno : fd;
	}
	return -EEXIST;
}

static void fsync_dir(const char *path)
{
	_cleanup_free_ char *dir = plait_path_dir(path);
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		(void)fsync(fd);
}

int plait_replace_file_full(const char *path, const void *data, size_t len, mode_t mode,
			    unsigned flags)
{
	_cleanup_free_ char *target = NULL;
	struct stat st;
	if ((flags & PLAIT_REPLACE_FOLLOW) && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
		target = realpath(path, NULL);
	if (!target)
		target = xstrdup(path);

	_cleanup_buf_ struct plait_buf tmp = PLAIT_BUF_INIT;
	int fd = open_temp(target, mode, &tmp);
	if (fd < 0)
		return fd;
	int r = 0;
	if ((flags & PLAIT_REPLACE_EXACT_MODE) && fchmod(fd, mode) < 0)
		r = -errno;
	if (r >= 0)
		r = plait_write_all(fd, data, len);
	if (r >= 0 && (flags & PLAIT_REPLACE_SYNC) && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r >= 0)
		r = -errno;
	if (r >= 0 && rename(tmp.buf, target) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp.buf);
		return r;
	}
	if (flags & PLAIT_REPLACE_SYNC)
		fsync_dir(target);
	return 0;
}

int plait_replace_file(const char *path, const void *data, size_t len)
{
	return plait_replace_file_full(path, data, len, 0644, 0);
}

/* ------------------------------------------------------------ copy */

static int copy_failed(enum plait_copy_step step, enum plait_copy_step *failed, int r)
{
	if (failed)
		*failed = step;
	return r;
}

int plait_copy_fd(int in, int out, int *no_range, enum plait_copy_step *failed)
{
	while (!no_range || !__atomic_load_n(no_range, __ATOMIC_RELAXED)) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0 || errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return copy_failed(PLAIT_COPY_RANGE, failed, -errno);
		if (no_range)
			__atomic_store_n(no_range, 1, __ATOMIC_RELAXED);
		break; /* fall back to read/write */
	}
	char buf[1 << 16];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return copy_failed(PLAIT_COPY_READ, failed, -errno);
		if (n == 0)
			return 0;
		int r = plait_write_all(out, buf, (size_t)n);
		if (r < 0)
			return copy_failed(PLAIT_COPY_WRITE, failed, r);
	}
}

/* path's xattrs but overlayfs' own, as sorted "name=value" lines; NULL when
 * they cannot be read (then nothing is taken as unchanged). */
char *plait_xattrs_signature(const char *path)
{
	ssize_t n = llistxattr(path, NULL, 0);
	if (n < 0)
		return errno == ENOTSUP ? xstrdup("") : NULL;
	_cleanup_free_ char *names = xmalloc((size_t)n + 1);
	n = llistxattr(path, names, (size_t)n);
	if (n < 0)
		return NULL;
	char **lines = NULL;
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
		const char *name = names + i;
		if (startswith(name, "trusted.overlay.") || startswith(name, "user.overlay."))
			continue;
		ssize_t vn = lgetxattr(path, name, NULL, 0);
		_cleanup_free_ char *v = vn >= 0 ? xmalloc((size_t)vn + 1) : NULL;
		if (vn < 0 || lgetxattr(path, name, v, (size_t)vn) != vn) {
			plait_strv_free(lines);
			return NULL;
		}
		struct plait_buf l = PLAIT_BUF_INIT;
		plait_buf_addf(&l, "%s=", name);
		plait_buf_add(&l, v, (size_t)vn);
		plait_strv_push(&lines, l.buf);
		plait_buf_release(&l);
	}
	plait_strv_sort(lines);
	char *all = plait_strv_join(lines, "\n");
	plait_strv_free(lines);
	return all;
}
