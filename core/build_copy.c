/* core/build_copy.c - COPY and ADD into a snapshot root. Every path under the
 * root is opened with openat2(RESOLVE_IN_ROOT), so a symlink in the image
 * ("/usr/lib -> lib", or a hostile "/etc -> /host/etc") resolves inside it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <archive.h>

#include "build-internal.h"
#include "unpack.h"
#include "banned.h"

static int open_in_root(int rootfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* Open (creating as needed, mode 0755) the directory at rel inside root. */
static int mkdirs_in_root(int rootfd, const char *rel, const struct copy_attrs *a, bool own_new,
			  int *fd_out, struct plait_error **err)
{
	struct plait_buf prefix = PLAIT_BUF_INIT;
	int dfd = open_in_root(rootfd, ".", O_PATH | O_DIRECTORY, 0);
	int r = dfd < 0 ? dfd : 0;
	const char *p = rel;
	while (r >= 0 && *p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if (prefix.len)
			plait_buf_addch(&prefix, '/');
		plait_buf_add(&prefix, p, n);
		p += n;
		int next = open_in_root(rootfd, prefix.buf, O_PATH | O_DIRECTORY, 0);
		if (next == -ENOENT) {
			/* Create it in the directory we already hold (resolved inside root). */
			_cleanup_free_ char *name = xstrndup(p - n, n);
			if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST) {
				r = -errno;
				break;
			}
			next = open_in_root(rootfd, prefix.buf, O_PATH | O_DIRECTORY, 0);
			if (next >= 0 && own_new && a->chown)
				fchownat(next, "", a->uid, a->gid, AT_EMPTY_PATH);
		}
		if (next < 0) {
			r = next;
			break;
		}
		close(dfd);
		dfd = next;
	}
	if (r < 0) {
		if (dfd >= 0)
			close(dfd);
		r = plait_error_set_errno(err, PLAIT_E_IO, r, "create directory '/%s'", prefix.buf);
		plait_buf_release(&prefix);
		return r;
	}
	plait_buf_release(&prefix);
	*fd_out = dfd;
	return 0;
}

int build_mkdir_in_root(const char *root, const char *path, const struct copy_attrs *owner,
			struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", root);
	static const struct copy_attrs none = { 0 };
	int fd = -1;
	int r = mkdirs_in_root(rootfd, path, owner ? owner : &none, owner != NULL, &fd, err);
	if (fd >= 0)
		close(fd);
	return r;
}

static void split_parent(const char *path, struct plait_buf *parent, const char **base)
{
	const char *slash = strrchr(path, '/');
	if (slash) {
		plait_buf_add(parent, path, (size_t)(slash - path));
		*base = slash + 1;
	} else {
		*base = path;
	}
}

/* copy_file_range cannot cross file systems (overlay upper vs context): once
 * it said so, go straight to read/write. */
static int no_copy_range;

static int copy_contents(int in, int out)
{
	while (!__atomic_load_n(&no_copy_range, __ATOMIC_RELAXED)) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return -errno;
		__atomic_store_n(&no_copy_range, 1, __ATOMIC_RELAXED);
		break; /* fall back to read/write */
	}
	char buf[1 << 16];
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		int r = plait_write_all(out, buf, (size_t)n);
		if (r < 0)
			return r;
	}
}

/* Make room for a new entry called base in dirfd: an existing file or link
 * goes; an existing directory stays when a directory is wanted. */
static int clear_slot(int dirfd, const char *base, bool want_dir)
{
	struct stat st;
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return want_dir ? 1 : -EISDIR;
	if (unlinkat(dirfd, base, 0) < 0)
		return -errno;
	return 0;
}

static void owner_for(const struct copy_attrs *a, const struct plait_context_entry *e, uid_t *uid,
		      gid_t *gid)
{
	if (a->chown) {
		*uid = a->uid;
		*gid = a->gid;
	} else if (a->keep_owner && e) {
		*uid = e->uid;
		*gid = e->gid;
	} else {
		*uid = 0;
		*gid = 0;
	}
}

/* The directory the previous entry went into: entries come sorted, so most
 * share it, and resolving it again from the root for each costs a walk. */
struct parent_cache {
	struct plait_buf path;
	int fd;
};

static int put_entry(int rootfd, struct plait_context *src, const struct plait_context_entry *e,
		     const char *target, const struct copy_attrs *a, const char *what,
		     struct parent_cache *pc, struct plait_error **err)
{
	struct plait_buf parent = PLAIT_BUF_INIT;
	const char *base;
	split_parent(target, &parent, &base);
	int r = 0;
	if (pc->fd < 0 || !streq(pc->path.buf, parent.buf)) {
		if (pc->fd >= 0)
			close(pc->fd);
		pc->fd = -1;
		r = mkdirs_in_root(rootfd, parent.buf, a, true, &pc->fd, err);
		plait_buf_reset(&pc->path);
		plait_buf_adds(&pc->path, parent.buf);
	}
	plait_buf_release(&parent);
	if (r < 0)
		return plait_error_wrap(err, "%s", what), r;
	int dirfd = pc->fd;
	uid_t uid;
	gid_t gid;
	owner_for(a, e, &uid, &gid);
	mode_t perm = a->chmod ? a->mode : (e->mode & 07777);
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT },
				     { .tv_sec = e->mtime_sec, .tv_nsec = e->mtime_nsec } };

	if (!*base) {
		/* the root itself: only its metadata */
		if (a->chown)
			fchownat(dirfd, "", uid, gid, AT_EMPTY_PATH);
		goto out;
	}
	if (S_ISDIR(e->mode)) {
		/* A directory that exists (also through a symlink inside the root,
		 * as /lib -> usr/lib on merged-usr images) is written into, and
		 * keeps its own owner and mode unless --chown/--chmod say otherwise. */
		int existing = open_in_root(rootfd, target, O_RDONLY | O_DIRECTORY, 0);
		if (existing >= 0) {
			if (a->chown && fchown(existing, uid, gid) < 0)
				r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: set owner of '%s'", what, target);
			if (r >= 0 && a->chmod && fchmod(existing, perm) < 0)
				r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: set mode of '%s'", what, target);
			close(existing);
			goto out;
		}
	}
	int c = clear_slot(dirfd, base, S_ISDIR(e->mode));
	if (c < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, c, "%s: cannot replace '%s'", what, target);
		goto out;
	}
	if (S_ISDIR(e->mode)) {
		if (c == 0 && mkdirat(dirfd, base, perm) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: create '%s'", what, target);
			goto out;
		}
		fchownat(dirfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
		fchmodat(dirfd, base, perm, 0);
	} else if (S_ISLNK(e->mode)) {
		if (symlinkat(e->link_target ? e->link_target : "", dirfd, base) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: create '%s'", what, target);
			goto out;
		}
		fchownat(dirfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
	} else if (S_ISREG(e->mode)) {
		_cleanup_close_ int in = -1;
		r = plait_context_open_entry(src, e, &in, err);
		if (r < 0) {
			plait_error_wrap(err, "%s", what);
			goto out;
		}
		_cleanup_close_ int fd = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: create '%s'", what, target);
			goto out;
		}
		int cr = copy_contents(in, fd);
		if (cr < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, cr, "%s: copy '%s'", what, e->path);
			goto out;
		}
		if (fchown(fd, uid, gid) < 0 || fchmod(fd, perm) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: set owner of '%s'", what, target);
			goto out;
		}
	} else {
		/* fifos and devices, as docker copies them */
		if (mknodat(dirfd, base, (e->mode & S_IFMT) | perm, e->rdev) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: create '%s'", what, target);
			goto out;
		}
		fchownat(dirfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
	}
	utimensat(dirfd, base, times, AT_SYMLINK_NOFOLLOW);
out:
	return r;
}

static bool dir_exists_in_root(int rootfd, const char *path)
{
	int fd = open_in_root(rootfd, path, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int build_copy_into(const char *root, struct plait_context *src, const struct plait_context_list *l,
		    const char *dest, bool dest_is_dir, const struct copy_attrs *a, const char *what,
		    const bool *skip_source, struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", root);
	/* "COPY a.txt /dir" into an existing directory means /dir/a.txt. */
	if (!dest_is_dir && l->n_sources == 1 && dir_exists_in_root(rootfd, dest))
		dest_is_dir = true;
	struct parent_cache pc = { PLAIT_BUF_INIT, -1 };
	int r = 0;

	for (size_t s = 0; s < l->n_sources; s++) {
		const struct plait_context_source *so = &l->sources[s];
		if (skip_source && skip_source[s])
			continue;
		for (size_t i = so->first; i < so->first + so->count; i++) {
			const struct plait_context_entry *e = &l->entries[i];
			bool src_is_dir = S_ISDIR(l->entries[so->first].mode);
			/* --exclude: the patterns match below the source, as BuildKit's do */
			if (a->exclude && *e->rel && plait_ignore_match(a->exclude, e->rel))
				continue;
			struct plait_buf target = PLAIT_BUF_INIT;
			/* dest without leading '/', then what goes below it */
			const char *d = dest;
			while (*d == '/')
				d++;
			plait_buf_adds(&target, d);
			while (target.len && target.buf[target.len - 1] == '/')
				plait_buf_setlen(&target, target.len - 1);
			if (a->parents) {
				/* --parents: the source's own path is kept below dest */
				plait_buf_addf(&target, "%s%s", target.len ? "/" : "", so->name);
				if (*e->rel)
					plait_buf_addf(&target, "/%s", e->rel);
			} else if (src_is_dir) {
				/* a directory's contents go into dest */
				if (*e->rel)
					plait_buf_addf(&target, "%s%s", target.len ? "/" : "", e->rel);
			} else if (dest_is_dir) {
				const char *b = strrchr(so->name, '/');
				plait_buf_addf(&target, "%s%s", target.len ? "/" : "", b ? b + 1 : so->name);
			}
			r = put_entry(rootfd, src, e, target.buf, a, what, &pc, err);
			plait_buf_release(&target);
			if (r < 0)
				goto out;
		}
	}
out:
	if (pc.fd >= 0)
		close(pc.fd);
	plait_buf_release(&pc.path);
	return r;
}

bool build_is_archive(int fd)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	_cleanup_close_ int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	bool yes = false;
	if (dup >= 0 && lseek(dup, 0, SEEK_SET) == 0 && archive_read_open_fd(a, dup, 1 << 16) == ARCHIVE_OK) {
		struct archive_entry *e;
		yes = archive_read_next_header(a, &e) == ARCHIVE_OK;
	}
	archive_read_free(a);
	if (dup >= 0)
		lseek(dup, 0, SEEK_SET); /* shares the offset with fd */
	return yes;
}

int build_extract_into(const char *root, int fd, const char *dest, const struct copy_attrs *a,
		       const char *what, struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", root);
	int dirfd = -1;
	int r = mkdirs_in_root(rootfd, dest, a, a->chown, &dirfd, err);
	if (r < 0)
		return r;
	/* The destination as resolved inside the root; the unpacker resolves every
	 * member inside it in turn. */
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/self/fd/%d", dirfd);
	_cleanup_close_ int real = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(dirfd);
	if (real < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: open '%s'", what, dest);
	snprintf(dir, sizeof(dir), "/proc/self/fd/%d", real);
	/* An archive, not a layer: its ".wh." members are files, not deletions. */
	struct plait_unpack_options uo = { .mode = PLAIT_UNPACK_PLAIN };
	r = plait_unpack_fd(fd, dir, &uo, NULL, err);
	if (r < 0)
		plait_error_wrap(err, "%s: extract into '%s'", what, dest);
	return r;
}

/* A new file dest inside root (parents made as needed), owned and moded per a
 * (default mode def_mode), filled from data or, when data is NULL, from fd. */
static int write_new_file(const char *root, const char *dest, const void *data, size_t len, int fd,
			  const struct copy_attrs *a, mode_t def_mode, const char *what,
			  struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", root);
	struct plait_buf parent = PLAIT_BUF_INIT;
	const char *base;
	split_parent(dest, &parent, &base);
	_cleanup_close_ int dirfd = -1;
	int r = mkdirs_in_root(rootfd, parent.buf, a, true, &dirfd, err);
	plait_buf_release(&parent);
	if (r < 0)
		return r;
	int c = clear_slot(dirfd, base, false);
	_cleanup_close_ int out = c < 0 ? -1 : openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, c < 0 ? c : errno, "%s: create '%s'", what, dest);
	uid_t uid;
	gid_t gid;
	owner_for(a, NULL, &uid, &gid);
	int w = data ? plait_write_all(out, data, len) : copy_contents(fd, out);
	if (w < 0 || fchown(out, uid, gid) < 0 || fchmod(out, a->chmod ? a->mode : def_mode) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, w < 0 ? w : errno, "%s: write '%s'", what, dest);
	return 0;
}

int build_write_file_into(const char *root, const char *dest, const char *data, size_t len,
			  const struct copy_attrs *a, const char *what, struct plait_error **err)
{
	return write_new_file(root, dest, data, len, -1, a, 0644, what, err);
}

int build_write_fd_into(const char *root, const char *dest, int fd, const struct copy_attrs *a,
			const char *what, struct plait_error **err)
{
	return write_new_file(root, dest, NULL, 0, fd, a, 0600, what, err);
}
