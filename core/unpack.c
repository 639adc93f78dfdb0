/* core/unpack.c - unpack an untrusted layer into a directory without ever
 * writing outside it; see unpack.h for the contract.
 *
 * Every path is resolved relative to a directory fd of the root: parents
 * through openat2(RESOLVE_IN_ROOT) (or walk_in_root() doing the same), the
 * last component with *at() calls that do not follow it. Decompression is
 * done here rather than by libarchive so the uncompressed stream can be
 * hashed (diff_id) on its way into the tar reader. gzip is inflated with
 * ISA-L (2-3x zlib's speed here; inflate's output is fixed by its input, so
 * the compressor's freedom that keeps ISA-L out of core/gzip.c does not
 * matter on this side). */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <isa-l/igzip_lib.h>
#include <zstd.h>

#include "buf.h"
#include "cleanup.h"
#include "fs.h"
#include "unpack.h"
#include "userns.h"
#include "banned.h"


#define IO_CHUNK (128 * 1024)
#define MAX_SYMLINKS 40
#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_META_PREFIX ".wh..wh."
#define OPAQUE_NAME ".wh..wh..opq"

/* --- the input: raw bytes -> digest, decompressed -> diff_id -> libarchive */

enum compression { COMP_NONE, COMP_GZIP, COMP_ZSTD };

struct reader {
	plait_unpack_read_fn fn;
	void *ud;
	enum compression comp;
	unsigned char *in, *out;
	size_t in_len, in_pos;
	bool in_eof, frame_open;
	struct inflate_state *z; /* ISA-L's state is large: on the heap */
	ZSTD_DCtx *zd;
	struct plait_sha256 raw, diff;
	struct plait_error *err; /* set inside the libarchive callback */
};

static int fill(struct reader *r)
{
	if (r->in_pos < r->in_len || r->in_eof)
		return 0;
	ssize_t n;
	do
		n = r->fn(r->ud, r->in, IO_CHUNK);
	while (n == -EINTR);
	if (n < 0)
		return plait_error_set_errno(&r->err, PLAIT_E_IO, (int)-n, "unpack: read layer");
	r->in_pos = 0;
	r->in_len = (size_t)n;
	r->in_eof = n == 0;
	plait_sha256_update(&r->raw, r->in, (size_t)n);
	return 0;
}

/* Read until 4 bytes are buffered (or the end) and pick the decompressor. */
static int detect(struct reader *r)
{
	while (!r->in_eof && r->in_len < 4) {
		ssize_t n = r->fn(r->ud, r->in + r->in_len, IO_CHUNK - r->in_len);
		if (n == -EINTR)
			continue;
		if (n < 0)
			return plait_error_set_errno(&r->err, PLAIT_E_IO, (int)-n,
						     "unpack: read layer");
		plait_sha256_update(&r->raw, r->in + r->in_len, (size_t)n);
		r->in_len += (size_t)n;
		r->in_eof = n == 0;
	}
	const unsigned char *m = r->in;
	if (r->in_len >= 2 && m[0] == 0x1f && m[1] == 0x8b) {
		r->comp = COMP_GZIP;
		r->z = xmalloc(sizeof(*r->z));
	} else if (r->in_len >= 4 && m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd) {
		r->comp = COMP_ZSTD;
		r->zd = ZSTD_createDCtx();
		if (!r->zd)
			plait_die_oom();
	}
	return 0;
}

/* Next decompressed bytes: *p gets a pointer valid until the next call. 0 at the end. */
static ssize_t produce(struct reader *r, const void **p)
{
	for (;;) {
		if (fill(r) < 0)
			return -1;
		size_t avail = r->in_len - r->in_pos;
		if (r->comp == COMP_NONE) {
			*p = r->in + r->in_pos;
			r->in_pos = r->in_len;
			return (ssize_t)avail;
		}
		if (!avail && r->in_eof) {
			if (r->frame_open)
				return plait_error_set(&r->err, PLAIT_E_INVALID,
						       "unpack: %s stream is truncated",
						       r->comp == COMP_GZIP ? "gzip" : "zstd");
			return 0;
		}
		size_t made;
		if (r->comp == COMP_GZIP) {
			if (!r->frame_open) { /* a member starts: parse its header, check its trailer */
				isal_inflate_init(r->z);
				r->z->crc_flag = ISAL_GZIP;
			}
			r->frame_open = true;
			r->z->next_in = r->in + r->in_pos;
			r->z->avail_in = (uint32_t)avail;
			r->z->next_out = r->out;
			r->z->avail_out = IO_CHUNK;
			int zr = isal_inflate(r->z);
			if (zr < 0)
				return plait_error_set(&r->err, PLAIT_E_INVALID, "unpack: invalid gzip data: %s",
						       zr == ISAL_INCORRECT_CHECKSUM ? "incorrect data check"
						       : zr == ISAL_INVALID_WRAPPER  ? "incorrect header"
						       : zr == ISAL_INVALID_LOOKBACK ? "invalid distance too far back"
										     : "invalid deflate block");
			if (zr == ISAL_NEED_DICT)
				return plait_error_set(&r->err, PLAIT_E_INVALID,
						       "unpack: invalid gzip data: a preset dictionary is needed");
			r->in_pos = r->in_len - r->z->avail_in;
			made = IO_CHUNK - r->z->avail_out;
			if (r->z->block_state == ISAL_BLOCK_FINISH)
				r->frame_open = false; /* another member may follow */
		} else {
			ZSTD_inBuffer in = {r->in, r->in_len, r->in_pos};
			ZSTD_outBuffer out = {r->out, IO_CHUNK, 0};
			size_t zr = ZSTD_decompressStream(r->zd, &out, &in);
			if (ZSTD_isError(zr))
				return plait_error_set(&r->err, PLAIT_E_INVALID,
						       "unpack: invalid zstd data: %s",
						       ZSTD_getErrorName(zr));
			r->in_pos = in.pos;
			made = out.pos;
			r->frame_open = zr != 0;
		}
		if (made) {
			*p = r->out;
			return (ssize_t)made;
		}
	}
}

static la_ssize_t read_cb(struct archive *a, void *ud, const void **buf)
{
	struct reader *r = ud;
	ssize_t n = produce(r, buf);
	if (n < 0) {
		archive_set_error(a, EIO, "%s", r->err->msg);
		return -1;
	}
	plait_sha256_update(&r->diff, *buf, (size_t)n);
	return n;
}

static void reader_release(struct reader *r)
{
	free(r->z);
	ZSTD_freeDCtx(r->zd);
	free(r->in);
	free(r->out);
	plait_sha256_release(&r->raw);
	plait_sha256_release(&r->diff);
	plait_error_free(r->err);
}

/* --- path resolution inside the root */

struct unpacker {
	int rootfd;
	const char *dir;
	const struct plait_unpack_options *o;
	bool use_openat2;
	struct plait_buf rel, target, scratch;
	char *data;
	/* APPLY: what this layer created, so an opaque marker keeps it */
	char **seen;
	size_t n_seen, alloc_seen;
	bool seen_sorted;
	/* directory mtimes, set last (creating children changes them) */
	struct dir_time {
		char *rel;
		struct timespec ts[2];
	} * dirs;
	size_t n_dirs, alloc_dirs;
};

/* openat2(RESOLVE_IN_ROOT) done by hand for kernels without it: symlinks are
 * read and resolved against the root, ".." stops at the root. Every step
 * opens one name with O_NOFOLLOW under a directory fd already inside. */
static int walk_in_root(int rootfd, const char *path, int *out)
{
	_cleanup_buf_ struct plait_buf rest = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf done = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf link = PLAIT_BUF_INIT;
	plait_buf_adds(&rest, path);
	int cur = -1, r = plait_open_dir_nofollow(rootfd, "", &cur);
	if (r < 0)
		return r;
	int links = 0;
	size_t pos = 0;
	while (pos < rest.len) {
		const char *p = rest.buf + pos;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		char comp[NAME_MAX + 1];
		pos = (size_t)(e - rest.buf) + (*e ? 1 : 0);
		if (n > NAME_MAX) {
			r = -ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		if (!n || streq(comp, "."))
			continue;
		if (streq(comp, "..")) {
			char *slash = strrchr(done.buf, '/');
			plait_buf_setlen(&done, slash ? (size_t)(slash - done.buf) : 0);
			close(cur);
			cur = -1;
			if ((r = plait_open_dir_nofollow(rootfd, done.buf, &cur)) < 0)
				goto fail;
			continue;
		}
		int nfd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (nfd < 0 || fstat(nfd, &st) < 0) {
			r = -errno;
			if (nfd >= 0)
				close(nfd);
			goto fail;
		}
		if (S_ISLNK(st.st_mode)) {
			ssize_t len = -1;
			if (++links <= MAX_SYMLINKS) {
				plait_buf_reset(&link);
				plait_buf_grow(&link, PATH_MAX);
				len = readlinkat(nfd, "", link.buf, PATH_MAX);
			}
			r = links > MAX_SYMLINKS ? -ELOOP : -errno;
			close(nfd);
			if (len < 0)
				goto fail;
			plait_buf_setlen(&link, (size_t)len);
			plait_buf_addch(&link, '/');
			plait_buf_add(&link, rest.buf + pos, rest.len - pos);
			plait_buf_reset(&rest);
			plait_buf_add(&rest, link.buf, link.len);
			pos = 0;
			if (rest.buf[0] == '/') {
				plait_buf_reset(&done);
				close(cur);
				cur = -1;
				if ((r = plait_open_dir_nofollow(rootfd, "", &cur)) < 0)
					goto fail;
			}
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			close(nfd);
			r = -ENOTDIR;
			goto fail;
		}
		close(cur);
		cur = nfd;
		if (done.len)
			plait_buf_addch(&done, '/');
		plait_buf_adds(&done, comp);
	}
	*out = cur;
	return 0;
fail:
	if (cur >= 0)
		close(cur);
	return r;
}

/* An O_PATH fd of the directory rel (relative, "" the root) resolved inside the root. */
static int open_dir(struct unpacker *u, const char *rel, int *out)
{
	if (!*rel)
		return plait_open_dir_nofollow(u->rootfd, "", out);
	if (u->use_openat2) {
		struct open_how how = {
		    .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
		};
		for (int tries = 0; tries < 32; tries++) {
			long fd = syscall(SYS_openat2, u->rootfd, rel, &how, sizeof(how));
			if (fd >= 0) {
				*out = (int)fd;
				return 0;
			}
			if (errno != EAGAIN)
				break;
		}
		if (errno != ENOSYS)
			return -errno;
		u->use_openat2 = false;
	}
	return walk_in_root(u->rootfd, rel, out);
}

/* As open_dir, creating missing directories (0755, owned by the unpacker) as docker does. */
static int open_dir_create(struct unpacker *u, const char *rel, int *out)
{
	int r = open_dir(u, rel, out);
	if (r != -ENOENT)
		return r;
	_cleanup_free_ char *parent = xstrdup(rel);
	char *slash = strrchr(parent, '/');
	const char *base = slash ? slash + 1 : parent;
	if (slash)
		*slash = '\0';
	_cleanup_close_ int pfd = -1;
	r = open_dir_create(u, slash ? parent : "", &pfd);
	if (r < 0)
		return r;
	if (mkdirat(pfd, base, 0755) < 0 && errno != EEXIST)
		return -errno;
	return open_dir(u, rel, out);
}

/* The parent of entry `name` (rel `parent`) could not be opened (r): say
 * which component stopped the walk and why. Only called after a failure, so
 * the walk (one open_dir per prefix) costs nothing on the happy path. */
static int parent_error(struct unpacker *u, const char *parent, const char *name, int r,
			struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf pre = PLAIT_BUF_INIT;
	const char *p = parent;
	while (*p && (r == -ENOENT || r == -ENOTDIR || r == -ELOOP)) {
		const char *e = strchrnul(p, '/');
		size_t dirlen = pre.len;
		if (pre.len)
			plait_buf_addch(&pre, '/');
		plait_buf_add(&pre, p, (size_t)(e - p));
		p = *e ? e + 1 : e;
		_cleanup_close_ int fd = -1;
		int rp = open_dir(u, pre.buf, &fd);
		if (rp == 0)
			continue;
		if (rp != -ENOENT && rp != -ENOTDIR && rp != -ELOOP)
			break;
		/* pre is the first prefix that does not open: what is it? */
		_cleanup_close_ int dfd = -1;
		_cleanup_free_ char *dir = xstrndup(pre.buf, dirlen);
		const char *base = pre.buf + dirlen + (dirlen ? 1 : 0);
		struct stat st;
		if (open_dir(u, dir, &dfd) < 0 || fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
			break;
		const char *why = rp == -ENOENT ? "which does not exist in the image"
				  : rp == -ENOTDIR ? "which is not a directory in the image"
						   : "which goes through too many symlinks";
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(dfd, base, target, sizeof(target) - 1);
			if (n < 0)
				break;
			target[n] = '\0';
			return plait_error_set(err, PLAIT_E_IO,
					       "unpack: parent directory of '%s': '%s' is a symlink "
					       "to '%s', %s; the entry was refused (symlinks "
					       "resolve inside the image's root)",
					       name, pre.buf, target, why);
		}
		if (!S_ISDIR(st.st_mode))
			return plait_error_set(err, PLAIT_E_IO,
					       "unpack: parent directory of '%s': '%s' is not a "
					       "directory; the entry was refused",
					       name, pre.buf);
		break;
	}
	return plait_error_set_errno(err, PLAIT_E_IO, -r, "unpack: parent directory of '%s'", name);
}

/* Entry name -> relative path with no "", "." or ".." components. */
static int clean_name(const char *name, struct plait_buf *out, struct plait_error **err)
{
	plait_buf_reset(out);
	const char *p = name;
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return plait_error_set(err, PLAIT_E_INVALID,
					       "unpack: entry '%s' leaves the root through '..': "
					       "the layer is malformed or malicious",
					       name);
		if (n && !(n == 1 && p[0] == '.')) {
			if (out->len)
				plait_buf_addch(out, '/');
			plait_buf_add(out, p, n);
		}
		p = *e ? e + 1 : e;
	}
	return 0;
}

/* Split rel in place into parent ("" for the root) and base. */
static const char *split(char *rel, const char **base)
{
	char *slash = strrchr(rel, '/');
	if (!slash) {
		*base = rel;
		return "";
	}
	*slash = '\0';
	*base = slash + 1;
	return rel;
}

static int seen_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void seen_add(struct unpacker *u, const char *rel)
{
	if (u->o->mode != PLAIT_UNPACK_APPLY)
		return;
	PLAIT_ALLOC_GROW(u->seen, u->n_seen + 1, u->alloc_seen);
	u->seen[u->n_seen++] = xstrdup(rel);
	u->seen_sorted = false;
}

static bool seen_has(struct unpacker *u, const char *rel)
{
	if (!u->seen_sorted && u->n_seen > 1)
		qsort(u->seen, u->n_seen, sizeof(*u->seen), seen_cmp);
	u->seen_sorted = true;
	return u->n_seen && bsearch(&rel, u->seen, u->n_seen, sizeof(*u->seen), seen_cmp);
}

/* Opaque in APPLY mode: remove what the lower layers had under the directory
 * dfd (rel), keeping what this layer put there. */
static int prune(struct unpacker *u, int dfd, const char *rel)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	_cleanup_(closedirp) DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	_cleanup_buf_ struct plait_buf child = PLAIT_BUF_INIT;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		plait_path_child(&child, rel, de->d_name);
		int r;
		if (!seen_has(u, child.buf)) {
			r = plait_rm_rf_at(dirfd(d), de->d_name);
		} else {
			_cleanup_close_ int cfd = openat(
			    dirfd(d), de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			r = cfd >= 0 ? prune(u, cfd, child.buf) : 0;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int whiteout(struct unpacker *u, struct archive_entry *ae, const char *parent,
		    const char *base, const char *name, struct plait_error **err)
{
	bool opaque = streq(base, OPAQUE_NAME);
	if (!opaque && startswith(base, WHITEOUT_META_PREFIX))
		return 0; /* aufs bookkeeping (hardlink dirs): not content */
	const char *target = base + strlen(WHITEOUT_PREFIX);
	if (!opaque && (!*target || streq(target, ".") || streq(target, "..")))
		return plait_error_set(err, PLAIT_E_INVALID,
				       "unpack: entry '%s' is a whiteout of nothing", name);
	_cleanup_close_ int pfd = -1;
	int r;
	if (u->o->mode == PLAIT_UNPACK_APPLY) {
		r = open_dir(u, parent, &pfd);
		if (r == -ENOENT || r == -ENOTDIR)
			return 0; /* nothing below to hide */
		if (r >= 0)
			r = opaque ? prune(u, pfd, parent) : plait_rm_rf_at(pfd, target);
	} else {
		r = open_dir_create(u, parent, &pfd);
		if (r >= 0 && opaque) {
			_cleanup_close_ int dfd =
			    openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			r = dfd < 0						      ? -errno
			    : fsetxattr(dfd, plait_userns_opaque_xattr(), "y", 1, 0) < 0 ? -errno
										      : 0;
		} else if (r >= 0) {
			r = plait_rm_rf_at(pfd, target);
			if (r >= 0 && mknodat(pfd, target, S_IFCHR | 0, makedev(0, 0)) < 0)
				r = -errno;
			bool flat = plait_userns_flatten();
			if (r >= 0 && !u->o->no_chown &&
			    fchownat(pfd, target, flat ? 0 : (uid_t)archive_entry_uid(ae),
				     flat ? 0 : (gid_t)archive_entry_gid(ae), AT_SYMLINK_NOFOLLOW) < 0)
				r = -errno;
		}
	}
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "unpack: whiteout '%s' in '%s'",
					     name, u->dir);
	return 0;
}

static bool skip_xattr(const char *name)
{
	/* The layer must not steer overlayfs (redirects, metacopy) nor set labels. */
	return startswith(name, "trusted.overlay.") || startswith(name, "user.overlay.") ||
	       streq(name, "security.selinux");
}

/* Owner, mode, xattrs and (not for directories) times of the new object
 * base under pfd; fd is an open fd of it when there is one. */
static int set_metadata(struct unpacker *u, struct archive_entry *ae, int pfd, const char *base,
			int fd, const char *rel, const char *name, struct plait_error **err)
{
	mode_t type = archive_entry_filetype(ae);
	_cleanup_close_ int dfd = -1;
	if (type == AE_IFDIR) {
		dfd = *base ? openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
			    : openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno,
						     "unpack: open directory '%s'", name);
		fd = dfd;
	}
	const char *what = "chown";
	/* --userns=single: every file is root's (only one id is mapped). */
	bool flat = plait_userns_flatten();
	uid_t uid = flat ? 0 : (uid_t)archive_entry_uid(ae);
	gid_t gid = flat ? 0 : (gid_t)archive_entry_gid(ae);
	if (!u->o->no_chown && (fd >= 0 ? fchown(fd, uid, gid)
					: fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW)) < 0)
		goto fail;
	/* After chown, which clears set-id bits. Symlinks have no mode. */
	what = "chmod";
	mode_t mode = archive_entry_perm(ae) & 07777;
	if (type != AE_IFLNK && (fd >= 0 ? fchmod(fd, mode) : fchmodat(pfd, base, mode, 0)) < 0)
		goto fail;
	what = "set xattr";
	archive_entry_xattr_reset(ae);
	const char *xname;
	const void *value;
	size_t size;
	while (archive_entry_xattr_next(ae, &xname, &value, &size) == ARCHIVE_OK) {
		if (skip_xattr(xname))
			continue;
		int xr;
		if (fd >= 0) {
			xr = fsetxattr(fd, xname, value, size, 0);
		} else {
			/* No fd for devices, fifos and symlinks: name it through pfd. */
			plait_buf_reset(&u->scratch);
			plait_buf_addf(&u->scratch, "/proc/self/fd/%d/%s", pfd, base);
			xr = lsetxattr(u->scratch.buf, xname, value, size, 0);
		}
		if (xr < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno,
						     "unpack: set xattr '%s' on '%s'", xname, name);
	}
	struct timespec ts[2] = {
	    {archive_entry_atime(ae), archive_entry_atime_nsec(ae)},
	    {archive_entry_mtime(ae), archive_entry_mtime_nsec(ae)},
	};
	if (!archive_entry_atime_is_set(ae) || ts[0].tv_sec < ts[1].tv_sec)
		ts[0] = ts[1];
	if (type == AE_IFDIR) {
		PLAIT_ALLOC_GROW(u->dirs, u->n_dirs + 1, u->alloc_dirs);
		u->dirs[u->n_dirs].rel = xstrdup(rel);
		u->dirs[u->n_dirs].ts[0] = ts[0];
		u->dirs[u->n_dirs].ts[1] = ts[1];
		u->n_dirs++;
		return 0;
	}
	what = "set times";
	if ((fd >= 0 ? futimens(fd, ts) : utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW)) < 0)
		goto fail;
	return 0;
fail:
	if (errno == EINVAL && streq(what, "chown") && plait_userns_self()->nested)
		return plait_error_set(err, PLAIT_E_IO,
				       "unpack: chown '%s' to %u:%u: the id is not mapped in plait's user namespace "
				       "(%llu uids, %llu gids): give the user a larger range in /etc/subuid and "
				       "/etc/subgid",
				       name, (unsigned)uid, (unsigned)gid,
				       (unsigned long long)plait_userns_self()->n_uids,
				       (unsigned long long)plait_userns_self()->n_gids);
	return plait_error_set_errno(err, PLAIT_E_IO, errno, "unpack: %s '%s'", what, name);
}

static int write_data(struct unpacker *u, struct archive *a, int fd, const char *name,
		      struct plait_error **err)
{
	for (;;) {
		la_ssize_t n = archive_read_data(a, u->data, IO_CHUNK);
		if (n == 0)
			return 0;
		if (n < 0)
			return plait_error_set(err, PLAIT_E_INVALID,
					       "unpack: read data of '%s': %s", name,
					       archive_error_string(a));
		int r = plait_write_all(fd, u->data, (size_t)n);
		if (r < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, -r, "unpack: write '%s'",
						     name);
	}
}

static int link_entry(struct unpacker *u, int pfd, const char *base, const char *link,
		      const char *name, struct plait_error **err)
{
	if (clean_name(link, &u->target, NULL) < 0 || !u->target.len)
		return plait_error_set(err, PLAIT_E_INVALID,
				       "unpack: hardlink '%s' to '%s' leaves the root: the layer "
				       "is malformed or malicious",
				       name, link);
	const char *tbase;
	const char *tparent = split(u->target.buf, &tbase);
	_cleanup_close_ int tfd = -1;
	int r = open_dir(u, tparent, &tfd);
	/* flags 0: a symlink target is linked itself, never followed. */
	if (r >= 0 && linkat(tfd, tbase, pfd, base, 0) < 0)
		r = -errno;
	if (r < 0)
		return plait_error_set_errno(
		    err, PLAIT_E_IO, -r, "unpack: hardlink '%s' to '%s' (inside the layer root)",
		    name, link);
	return 0;
}

static int unpack_entry(struct unpacker *u, struct archive *a, struct archive_entry *ae,
			struct plait_error **err)
{
	const char *name = archive_entry_pathname(ae);
	if (!name)
		return plait_error_set(err, PLAIT_E_INVALID, "unpack: entry without a usable name");
	/* ADD of an archive skips an entry whose name is empty, as BuildKit
	 * does; in a layer it still names the root (below). */
	if (!*name && u->o->mode == PLAIT_UNPACK_PLAIN)
		return 0;
	int r = clean_name(name, &u->rel, err);
	if (r < 0)
		return r;
	mode_t type = archive_entry_filetype(ae);
	const char *link = archive_entry_hardlink(ae);
	_cleanup_free_ char *rel = xstrdup(u->rel.buf);
	const char *base;
	const char *parent = split(u->rel.buf, &base);

	if (u->o->mode != PLAIT_UNPACK_PLAIN && startswith(base, WHITEOUT_PREFIX))
		return whiteout(u, ae, parent, base, name, err);
	if (type == AE_IFSOCK)
		return 0;
	if (!*rel) {
		if (type != AE_IFDIR || link)
			return plait_error_set(
			    err, PLAIT_E_INVALID,
			    "unpack: entry '%s' names the root but is not a directory", name);
		return set_metadata(u, ae, u->rootfd, "", -1, "", name, err);
	}

	_cleanup_close_ int pfd = -1;
	r = open_dir_create(u, parent, &pfd);
	if (r < 0)
		return parent_error(u, parent, name, r, err);
	struct stat st;
	bool keep = false;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		keep = type == AE_IFDIR && !link && S_ISDIR(st.st_mode);
		if (!keep && (r = plait_rm_rf_at(pfd, base)) < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, -r, "unpack: replace '%s'",
						     name);
	}

	if (link) {
		r = link_entry(u, pfd, base, link, name, err);
		if (r >= 0)
			seen_add(u, rel);
		return r;
	}

	_cleanup_close_ int fd = -1;
	switch (type) {
	case AE_IFDIR:
		r = keep || mkdirat(pfd, base, 0700) == 0 ? 0 : -errno;
		break;
	case AE_IFREG:
		fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		r = fd < 0 ? -errno : 0;
		break;
	case AE_IFLNK: {
		const char *target = archive_entry_symlink(ae);
		r = symlinkat(target ? target : "", pfd, base) < 0 ? -errno : 0;
		break;
	}
	case AE_IFCHR:
	case AE_IFBLK:
		if (plait_userns_self()->nested) {
			/* A user namespace cannot make device nodes (mknod needs
			 * CAP_MKNOD in the initial one): the node is left out,
			 * counted for the caller's warning. RUN never opens one
			 * anyway (its root is nodev); what it replaced is gone. */
			if (u->o->devices_skipped)
				(*u->o->devices_skipped)++;
			return 0;
		}
		/* fall through */
	case AE_IFIFO: {
		dev_t dev = makedev(archive_entry_rdevmajor(ae), archive_entry_rdevminor(ae));
		r = mknodat(pfd, base, type | 0600, type == AE_IFIFO ? 0 : dev) < 0 ? -errno : 0;
		break;
	}
	default:
		return plait_error_set(err, PLAIT_E_INVALID,
				       "unpack: entry '%s' has unknown type 0%o", name,
				       (unsigned)type);
	}
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "unpack: create '%s' in '%s'",
					     name, u->dir);
	if (fd >= 0 && (r = write_data(u, a, fd, name, err)) < 0)
		return r;
	if ((r = set_metadata(u, ae, pfd, base, fd, rel, name, err)) < 0)
		return r;
	seen_add(u, rel);
	return 0;
}

static int set_dir_times(struct unpacker *u, struct plait_error **err)
{
	for (size_t i = 0; i < u->n_dirs; i++) {
		const char *base;
		const char *parent = split(u->dirs[i].rel, &base);
		_cleanup_close_ int pfd = -1;
		int r = open_dir(u, parent, &pfd);
		if (r == -ENOENT || r == -ENOTDIR)
			continue; /* replaced or removed by a later entry */
		if (r >= 0 &&
		    utimensat(pfd, *base ? base : ".", u->dirs[i].ts, AT_SYMLINK_NOFOLLOW) < 0 &&
		    errno != ENOENT)
			r = -errno;
		if (r < 0)
			return plait_error_set_errno(
			    err, PLAIT_E_IO, -r, "unpack: set times of '%s/'", *base ? base : ".");
	}
	return 0;
}

static void unpacker_release(struct unpacker *u)
{
	if (u->rootfd >= 0)
		close(u->rootfd);
	plait_buf_release(&u->rel);
	plait_buf_release(&u->target);
	plait_buf_release(&u->scratch);
	free(u->data);
	for (size_t i = 0; i < u->n_seen; i++)
		free(u->seen[i]);
	free(u->seen);
	for (size_t i = 0; i < u->n_dirs; i++)
		free(u->dirs[i].rel);
	free(u->dirs);
}

static int verify(const char *what, const char *expected, const char *got, struct plait_error **err)
{
	if (!expected || streq(expected, got))
		return 0;
	return plait_error_set(err, PLAIT_E_INVALID, "unpack: %s mismatch: expected %s, got %s",
			       what, expected, got);
}

int plait_unpack_stream(plait_unpack_read_fn fn, void *ud, const char *dir,
			const struct plait_unpack_options *o,
			char diff_id_out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err)
{
	static const struct plait_unpack_options defaults = {.mode = PLAIT_UNPACK_APPLY};
	if (!o)
		o = &defaults;
	struct reader rd = {.fn = fn, .ud = ud};
	struct unpacker u = {.rootfd = -1,
			     .dir = dir,
			     .o = o,
			     .rel = PLAIT_BUF_INIT,
			     .target = PLAIT_BUF_INIT,
			     .scratch = PLAIT_BUF_INIT};
	_cleanup_(archive_read_freep) struct archive *a = NULL;
	int r;
	if ((r = plait_sha256_init(&rd.raw, err)) < 0 || (r = plait_sha256_init(&rd.diff, err)) < 0)
		goto out;
	u.rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (u.rootfd < 0) {
		r = plait_error_set_errno(err, errno == ENOENT ? PLAIT_E_NOT_FOUND : PLAIT_E_IO,
					  errno, "unpack: open '%s'", dir);
		goto out;
	}
	u.use_openat2 = !getenv("PLAIT_TEST_NO_OPENAT2");
	u.data = xmalloc(IO_CHUNK);
	rd.in = xmalloc(IO_CHUNK);
	rd.out = xmalloc(IO_CHUNK);
	if (detect(&rd) < 0)
		goto reader_failed;

	a = archive_read_new();
	if (!a)
		plait_die_oom();
	archive_read_support_format_tar(a);
	archive_read_support_format_empty(a);
	/* ADD's archives may also be xz, bzip2, lzip...: what plait did not
	 * decompress itself (layers are gzip or zstd), libarchive does. */
	if (o->mode == PLAIT_UNPACK_PLAIN)
		archive_read_support_filter_all(a);
	if (archive_read_open(a, &rd, NULL, read_cb, NULL) != ARCHIVE_OK)
		goto archive_failed;
	for (;;) {
		struct archive_entry *ae;
		int ar = archive_read_next_header(a, &ae);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN)
			goto archive_failed;
		if ((r = unpack_entry(&u, a, ae, err)) < 0)
			goto out;
	}
	/* The diff_id covers the whole stream, the padding after the end too. */
	for (;;) {
		const void *p;
		ssize_t n = produce(&rd, &p);
		if (n < 0)
			goto reader_failed;
		if (n == 0)
			break;
		plait_sha256_update(&rd.diff, p, (size_t)n);
	}
	if ((r = set_dir_times(&u, err)) < 0)
		goto out;
	char diff_id[PLAIT_SHA256_DIGEST_SIZE], digest[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_final(&rd.diff, diff_id);
	plait_sha256_final(&rd.raw, digest);
	if ((r = verify("diff_id", o->diff_id, diff_id, err)) < 0 ||
	    (r = verify("digest", o->digest, digest, err)) < 0)
		goto out;
	if (diff_id_out)
		memcpy(diff_id_out, diff_id, PLAIT_SHA256_DIGEST_SIZE);
	r = 0;
	goto out;

archive_failed:
	if (rd.err)
		goto reader_failed;
	r = plait_error_set(err, PLAIT_E_INVALID, "unpack: read layer%s%s: %s",
			    o->media_type ? " " : "", o->media_type ? o->media_type : "",
			    archive_error_string(a));
	goto out;
reader_failed:
	r = -rd.err->code;
	if (err) {
		plait_error_move(err, TAKE_PTR(rd.err));
	}
out:
	reader_release(&rd);
	unpacker_release(&u);
	return r < 0 ? r : 0;
}

static ssize_t fd_read(void *ud, void *buf, size_t len)
{
	ssize_t n = read(*(int *)ud, buf, len);
	return n < 0 ? -errno : n;
}

int plait_unpack_fd(int fd, const char *dir, const struct plait_unpack_options *o,
		    char diff_id_out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err)
{
	return plait_unpack_stream(fd_read, &fd, dir, o, diff_id_out, err);
}

int plait_unpack_blob(struct plait_store *s, const char *digest, const char *dir,
		      const struct plait_unpack_options *o,
		      char diff_id_out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err)
{
	_cleanup_close_ int fd = -1;
	int r = plait_store_open_blob(s, digest, &fd, err);
	if (r < 0)
		return r;
	struct plait_unpack_options copy = {.mode = PLAIT_UNPACK_APPLY};
	if (o)
		copy = *o;
	copy.digest = NULL;
	r = plait_unpack_fd(fd, dir, &copy, diff_id_out, err);
	if (r < 0)
		plait_error_wrap(err, "layer %s", digest);
	return r;
}
