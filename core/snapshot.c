/* core/snapshot.c - overlayfs and copying snapshots (see snapshot.h). */
#include "snapshot.h"
#include "buf.h"
#include "fs.h"
#include "strv.h"
#include "userns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <stdatomic.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "banned.h"

#ifndef OVERLAYFS_SUPER_MAGIC
#define OVERLAYFS_SUPER_MAGIC 0x794c7630
#endif


/* The new mount API; glibc >= 2.36 declares it in sys/mount.h, but we call the
 * syscalls directly so older headers build too. */
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#endif
#ifndef MOUNT_ATTR_NODEV
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef FSMOUNT_CLOEXEC
#define FSMOUNT_CLOEXEC 0x00000001
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#define P_FSCONFIG_SET_FLAG 0
#define P_FSCONFIG_SET_STRING 1
#define P_FSCONFIG_CMD_CREATE 6

/* Metadata of one path of the copied tree, recorded at prepare time. */
struct entry {
	char *path;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	dev_t rdev;
	off_t size;
	ino_t ino;
	struct timespec mtime, ctime;
	char *xattrs; /* directories only: plait_xattrs_signature() (NULL: unreadable) */
};

struct entries {
	struct entry *v;
	size_t n, alloc;
};

struct plait_snapshot {
	enum plait_snapshot_mode mode;
	char *dir;   /* the temporary directory holding everything */
	char *root;  /* merged root */
	char *upper; /* overlay only */
	char **lowers; /* copies, bottom first */
	size_t n_lowers;
	bool mounted;
	struct entries before; /* copy only */
};

const char *plait_change_kind_name(enum plait_change_kind kind)
{
	switch (kind) {
	case PLAIT_CHANGE_ADD:
		return "add";
	case PLAIT_CHANGE_MODIFY:
		return "modify";
	case PLAIT_CHANGE_DELETE:
		return "delete";
	}
	return "unknown";
}

void plait_change_list_release(struct plait_change_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i].path);
	free(l->items);
	l->items = NULL;
	l->n = l->alloc = 0;
}

static void change_add(struct plait_change_list *l, const char *path, enum plait_change_kind kind)
{
	PLAIT_ALLOC_GROW(l->items, l->n + 1, l->alloc);
	l->items[l->n].path = xstrdup(path);
	l->items[l->n].kind = kind;
	l->n++;
}

static void entries_release(struct entries *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].path);
		free(e->v[i].xattrs);
	}
	free(e->v);
	e->v = NULL;
	e->n = e->alloc = 0;
}

static bool is_whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool is_opaque(const char *path)
{
	char v[4];
	ssize_t n = lgetxattr(path, plait_userns_opaque_xattr(), v, sizeof(v));
	return n == 1 && v[0] == 'y';
}

/* ---- walking a tree ---- */

typedef int (*walk_fn)(void *opaque, const char *abs, const char *rel, const struct stat *st,
		       struct plait_error **err);

/* Pre-order walk below abs (which is a directory), rel growing from "".
 * Never follows symlinks and never leaves the file system of the top. */
static int walk(struct plait_buf *abs, struct plait_buf *rel, dev_t dev, walk_fn fn, void *opaque,
		struct plait_error **err)
{
	DIR *d = opendir(abs->buf);
	if (!d)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open directory '%s'", abs->buf);
	/* Sorted children make every list we build deterministic. */
	size_t n;
	char **names = plait_dir_names(d, false, &n);
	closedir(d);
	int r = 0;
	size_t abs_len = abs->len, rel_len = rel->len;
	for (size_t i = 0; i < n && r >= 0; i++) {
		plait_buf_setlen(abs, abs_len);
		plait_buf_setlen(rel, rel_len);
		plait_buf_addf(abs, "/%s", names[i]);
		if (rel_len)
			plait_buf_addch(rel, '/');
		plait_buf_adds(rel, names[i]);
		struct stat st;
		if (lstat(abs->buf, &st) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "stat '%s'", abs->buf);
			break;
		}
		if (st.st_dev != dev)
			continue; /* a mount point left behind: not part of the tree */
		r = fn(opaque, abs->buf, rel->buf, &st, err);
		if (r < 0)
			break;
		if (r == 0 && S_ISDIR(st.st_mode))
			r = walk(abs, rel, dev, fn, opaque, err);
		if (r > 0)
			r = 0; /* fn said: do not descend */
	}
	plait_buf_setlen(abs, abs_len);
	plait_buf_setlen(rel, rel_len);
	plait_strv_free(names);
	return r;
}

static int walk_tree(const char *top, walk_fn fn, void *opaque, struct plait_error **err)
{
	struct stat st;
	if (lstat(top, &st) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "stat '%s'", top);
	if (!S_ISDIR(st.st_mode))
		return plait_error_set(err, PLAIT_E_IO, "'%s' is not a directory", top);
	_cleanup_buf_ struct plait_buf abs = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf rel = PLAIT_BUF_INIT;
	plait_buf_adds(&abs, top);
	while (abs.len > 1 && abs.buf[abs.len - 1] == '/')
		plait_buf_setlen(&abs, abs.len - 1);
	return walk(&abs, &rel, st.st_dev, fn, opaque, err);
}

/* ---- copying the lowers ---- */

static int copy_xattrs(const char *src, const char *dst, struct plait_error **err)
{
	ssize_t n = llistxattr(src, NULL, 0);
	if (n < 0)
		return errno == ENOTSUP ? 0 : plait_error_set_errno(err, PLAIT_E_IO, errno, "list xattrs of '%s'", src);
	if (n == 0)
		return 0;
	_cleanup_free_ char *names = xmalloc(n);
	n = llistxattr(src, names, n);
	if (n < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "list xattrs of '%s'", src);
	for (char *k = names; k < names + n; k += strlen(k) + 1) {
		if (startswith(k, "trusted.overlay.") || startswith(k, "user.overlay."))
			continue;
		ssize_t vn = lgetxattr(src, k, NULL, 0);
		if (vn < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "read xattr '%s' of '%s'", k, src);
		_cleanup_free_ char *v = xmalloc(vn ? vn : 1);
		vn = lgetxattr(src, k, v, vn);
		if (vn < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "read xattr '%s' of '%s'", k, src);
		if (lsetxattr(dst, k, v, vn, 0) < 0 && errno != ENOTSUP)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "set xattr '%s' on '%s'", k, dst);
	}
	return 0;
}

static int copy_data(const char *src, const char *dst, mode_t mode, struct plait_error **err)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", src);
	_cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0777);
	if (out < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", dst);
	enum plait_copy_step step;
	int r = plait_copy_fd(in, out, NULL, &step);
	if (r < 0 && step == PLAIT_COPY_RANGE)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "copy '%s' to '%s'", src, dst);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, step == PLAIT_COPY_READ ? "read '%s'" : "write '%s'",
					     step == PLAIT_COPY_READ ? src : dst);
	return 0;
}

struct hardlink {
	dev_t dev;
	ino_t ino;
	char *dst;
};

struct copy_ctx {
	const char *dst_top;
	struct plait_buf dst;
	struct hardlink *links;
	size_t n_links, alloc_links;
	/* directories whose mtime is set after their children (post-order) */
	struct entries dir_times;
};

static int set_meta(const char *src, const char *dst, const struct stat *st, struct plait_error **err)
{
	/* chown first: it clears set-id bits and security.capability. */
	if (lchown(dst, st->st_uid, st->st_gid) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "chown '%s'", dst);
	if (!S_ISLNK(st->st_mode) && chmod(dst, st->st_mode & 07777) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "chmod '%s'", dst);
	return copy_xattrs(src, dst, err);
}

static int set_times(const char *dst, const struct stat *st, struct plait_error **err)
{
	struct timespec ts[2] = { st->st_atim, st->st_mtim };
	if (utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "set times of '%s'", dst);
	return 0;
}

static int copy_cb(void *opaque, const char *abs, const char *rel, const struct stat *st,
		   struct plait_error **err)
{
	struct copy_ctx *c = opaque;
	plait_buf_reset(&c->dst);
	plait_buf_addf(&c->dst, "%s/%s", c->dst_top, rel);
	const char *dst = c->dst.buf;
	struct stat dst_st;
	bool exists = lstat(dst, &dst_st) == 0;

	if (is_whiteout(st)) {
		int r = plait_rm_rf(dst);
		if (r < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, r, "remove '%s'", dst);
		return 1;
	}
	if (S_ISDIR(st->st_mode)) {
		if (exists && (!S_ISDIR(dst_st.st_mode) || is_opaque(abs))) {
			int r = plait_rm_rf(dst);
			if (r < 0)
				return plait_error_set_errno(err, PLAIT_E_IO, r, "remove '%s'", dst);
			exists = false;
		}
		if (!exists && mkdir(dst, 0700) < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "create directory '%s'", dst);
		int r = set_meta(abs, dst, st, err);
		if (r < 0)
			return r;
		PLAIT_ALLOC_GROW(c->dir_times.v, c->dir_times.n + 1, c->dir_times.alloc);
		struct entry *e = &c->dir_times.v[c->dir_times.n++];
		memset(e, 0, sizeof(*e));
		e->path = xstrdup(dst);
		e->mtime = st->st_mtim;
		e->ctime = st->st_atim; /* atime, reused field */
		return 0;
	}
	if (exists) {
		int r = plait_rm_rf(dst);
		if (r < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, r, "remove '%s'", dst);
	}
	if (S_ISREG(st->st_mode) && st->st_nlink > 1) {
		for (size_t i = 0; i < c->n_links; i++) {
			if (c->links[i].dev == st->st_dev && c->links[i].ino == st->st_ino) {
				if (link(c->links[i].dst, dst) == 0)
					return 0;
				break; /* the first copy was replaced since: copy again */
			}
		}
	}
	int r = 0;
	if (S_ISREG(st->st_mode)) {
		r = copy_data(abs, dst, st->st_mode, err);
		if (r == 0 && st->st_nlink > 1) {
			PLAIT_ALLOC_GROW(c->links, c->n_links + 1, c->alloc_links);
			c->links[c->n_links++] = (struct hardlink){ st->st_dev, st->st_ino, xstrdup(dst) };
		}
	} else if (S_ISLNK(st->st_mode)) {
		_cleanup_free_ char *target = xmalloc(st->st_size + 1);
		ssize_t n = readlink(abs, target, st->st_size + 1);
		if (n < 0 || n > st->st_size)
			return plait_error_set_errno(err, PLAIT_E_IO, n < 0 ? errno : EOVERFLOW, "read link '%s'", abs);
		target[n] = '\0';
		if (symlink(target, dst) < 0)
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "create symlink '%s'", dst);
	} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) || S_ISFIFO(st->st_mode) ||
		   S_ISSOCK(st->st_mode)) {
		if (mknod(dst, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "create node '%s'", dst);
	} else {
		return 0;
	}
	if (r < 0)
		return r;
	r = set_meta(abs, dst, st, err);
	if (r < 0)
		return r;
	return set_times(dst, st, err);
}

static int copy_layer(const char *src, const char *dst_top, struct plait_error **err)
{
	struct copy_ctx c = { .dst_top = dst_top, .dst = PLAIT_BUF_INIT };
	/* The layer's root directory carries metadata too (e.g. mode 0755). */
	struct stat st;
	int r = 0;
	if (lstat(src, &st) < 0)
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "stat layer '%s'", src);
	if (r == 0 && !S_ISDIR(st.st_mode))
		r = plait_error_set(err, PLAIT_E_IO, "layer '%s' is not a directory", src);
	if (r == 0)
		r = set_meta(src, dst_top, &st, err);
	if (r == 0)
		r = walk_tree(src, copy_cb, &c, err);
	/* Children changed the directories' mtimes: restore them deepest first. */
	for (size_t i = c.dir_times.n; r >= 0 && i-- > 0;) {
		struct stat dt = { .st_atim = c.dir_times.v[i].ctime, .st_mtim = c.dir_times.v[i].mtime };
		r = set_times(c.dir_times.v[i].path, &dt, err);
	}
	if (r >= 0)
		r = set_times(dst_top, &st, err);
	for (size_t i = 0; i < c.n_links; i++)
		free(c.links[i].dst);
	free(c.links);
	entries_release(&c.dir_times);
	plait_buf_release(&c.dst);
	return r < 0 ? r : 0;
}

/* ---- recording and diffing (copy mode) ---- */

static int record_cb(void *opaque, const char *abs, const char *rel, const struct stat *st,
		     struct plait_error **err)
{
	(void)err;
	struct entries *e = opaque;
	PLAIT_ALLOC_GROW(e->v, e->n + 1, e->alloc);
	e->v[e->n++] = (struct entry){
		.path = xstrdup(rel), .mode = st->st_mode, .uid = st->st_uid, .gid = st->st_gid,
		.rdev = st->st_rdev, .size = st->st_size, .ino = st->st_ino,
		.mtime = st->st_mtim, .ctime = st->st_ctim,
		.xattrs = S_ISDIR(st->st_mode) ? plait_xattrs_signature(abs) : NULL,
	};
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->path, ((const struct entry *)b)->path);
}

static struct entry *entries_find(const struct entries *e, const char *path)
{
	struct entry key = { .path = (char *)path };
	if (!e->n)
		return NULL;
	return bsearch(&key, e->v, e->n, sizeof(*e->v), entry_cmp);
}

static bool ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool entry_same(const struct entry *a, const struct entry *b)
{
	/* ctime catches every content, owner, mode and xattr change, even one
	 * that restores the old mtime; ino catches a replaced file. A directory
	 * is compared by what a layer holds of it (mode, owner, mtime, xattrs):
	 * one whose entries came and went (a mount point made and removed in
	 * /etc) is the same directory, as overlayfs' copy-up of it is no change
	 * (core/layer.c); a change below it still brings it in as a parent. */
	if (a->mode != b->mode || a->uid != b->uid || a->gid != b->gid || a->rdev != b->rdev || a->ino != b->ino)
		return false;
	if (S_ISDIR(a->mode))
		return ts_eq(a->mtime, b->mtime) && a->xattrs && b->xattrs && streq(a->xattrs, b->xattrs);
	return ts_eq(a->ctime, b->ctime) && a->size == b->size && ts_eq(a->mtime, b->mtime);
}

static int change_cmp(const void *a, const void *b)
{
	const struct plait_change *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	return c ? c : (int)x->kind - (int)y->kind;
}

/* Sort, drop duplicates, and add the directories that hold a change. */
static void finish_changes(struct plait_change_list *l, size_t start,
			   bool (*existed)(void *opaque, const char *path), void *opaque)
{
	size_t n = l->n;
	for (size_t i = start; i < n; i++) {
		_cleanup_free_ char *p = xstrdup(l->items[i].path);
		char *slash;
		while ((slash = strrchr(p, '/'))) {
			*slash = '\0';
			change_add(l, p, existed(opaque, p) ? PLAIT_CHANGE_MODIFY : PLAIT_CHANGE_ADD);
		}
	}
	if (l->n > start)
		qsort(l->items + start, l->n - start, sizeof(*l->items), change_cmp);
	size_t w = start;
	for (size_t i = start; i < l->n; i++) {
		if (w > start && streq(l->items[w - 1].path, l->items[i].path)) {
			free(l->items[i].path);
			continue;
		}
		l->items[w++] = l->items[i];
	}
	l->n = w;
}

static bool before_has(void *opaque, const char *path)
{
	return entries_find(opaque, path) != NULL;
}

static int copy_changes(struct plait_snapshot *s, struct plait_change_list *out,
			struct plait_error **err)
{
	struct entries now = { 0 };
	int r = walk_tree(s->root, record_cb, &now, err);
	if (r < 0) {
		entries_release(&now);
		return r;
	}
	size_t start = out->n;
	for (size_t i = 0; i < now.n; i++) {
		const struct entry *old = entries_find(&s->before, now.v[i].path);
		if (!old)
			change_add(out, now.v[i].path, PLAIT_CHANGE_ADD);
		else if (!entry_same(old, &now.v[i]))
			change_add(out, now.v[i].path, PLAIT_CHANGE_MODIFY);
	}
	for (size_t i = 0; i < s->before.n; i++) {
		const char *p = s->before.v[i].path;
		if (entries_find(&now, p))
			continue;
		/* Only the topmost deleted path; nothing under a dir that became a file. */
		_cleanup_free_ char *parent = xstrdup(p);
		char *slash = strrchr(parent, '/');
		if (slash) {
			*slash = '\0';
			const struct entry *pe = entries_find(&now, parent);
			if (!pe || !S_ISDIR(pe->mode))
				continue;
		}
		change_add(out, p, PLAIT_CHANGE_DELETE);
	}
	finish_changes(out, start, before_has, &s->before);
	entries_release(&now);
	return 0;
}

/* ---- overlay ---- */

/* Whether path exists in the merged view of the lowers. */
static bool lowers_have(void *opaque, const char *rel)
{
	struct plait_snapshot *s = opaque;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	for (size_t li = s->n_lowers; li-- > 0;) {
		bool chain = true, hides_below = false;
		plait_buf_reset(&p);
		plait_buf_adds(&p, s->lowers[li]);
		size_t base = p.len;
		/* Every ancestor, shallow to deep. */
		for (const char *c = strchr(rel, '/'); c; c = strchr(c + 1, '/')) {
			plait_buf_setlen(&p, base);
			plait_buf_addch(&p, '/');
			plait_buf_add(&p, rel, c - rel);
			struct stat st;
			if (lstat(p.buf, &st) < 0) {
				chain = false;
				break;
			}
			if (!S_ISDIR(st.st_mode))
				return false; /* a file or whiteout hides the path */
			if (is_opaque(p.buf))
				hides_below = true;
		}
		if (chain) {
			plait_buf_setlen(&p, base);
			plait_buf_addf(&p, "/%s", rel);
			struct stat st;
			if (lstat(p.buf, &st) == 0)
				return !is_whiteout(&st);
		}
		if (hides_below)
			return false;
	}
	return false;
}

struct upper_ctx {
	struct plait_snapshot *s;
	struct plait_change_list *out;
};

static int lower_children_deleted(struct upper_ctx *u, const char *upper_dir, const char *rel,
				  struct plait_error **err);

static int upper_cb(void *opaque, const char *abs, const char *rel, const struct stat *st,
		    struct plait_error **err)
{
	struct upper_ctx *u = opaque;
	bool had = lowers_have(u->s, rel);
	if (is_whiteout(st)) {
		if (had)
			change_add(u->out, rel, PLAIT_CHANGE_DELETE);
		return 1;
	}
	change_add(u->out, rel, had ? PLAIT_CHANGE_MODIFY : PLAIT_CHANGE_ADD);
	if (S_ISDIR(st->st_mode) && had && is_opaque(abs))
		return lower_children_deleted(u, abs, rel, err);
	return 0;
}

/* An opaque directory replaced a lower one: each lower child it does not hold
 * again is deleted. */
static int lower_children_deleted(struct upper_ctx *u, const char *upper_dir, const char *rel,
				  struct plait_error **err)
{
	(void)err;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf child = PLAIT_BUF_INIT;
	for (size_t li = 0; li < u->s->n_lowers; li++) {
		plait_buf_reset(&p);
		plait_buf_addf(&p, "%s/%s", u->s->lowers[li], rel);
		DIR *d = opendir(p.buf);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			if (streq(de->d_name, ".") || streq(de->d_name, ".."))
				continue;
			plait_buf_reset(&child);
			plait_buf_addf(&child, "%s/%s", upper_dir, de->d_name);
			struct stat st;
			if (lstat(child.buf, &st) == 0)
				continue; /* the upper decides */
			plait_buf_reset(&child);
			plait_buf_addf(&child, "%s/%s", rel, de->d_name);
			if (lowers_have(u->s, child.buf))
				change_add(u->out, child.buf, PLAIT_CHANGE_DELETE);
		}
		closedir(d);
	}
	return 0;
}

static int overlay_changes(struct plait_snapshot *s, struct plait_change_list *out,
			   struct plait_error **err)
{
	struct upper_ctx u = { s, out };
	size_t start = out->n;
	int r = walk_tree(s->upper, upper_cb, &u, err);
	if (r < 0)
		return r;
	finish_changes(out, start, lowers_have, s);
	return 0;
}

int plait_snapshot_changes(struct plait_snapshot *s, struct plait_change_list *out,
			   struct plait_error **err)
{
	if (s->mode == PLAIT_SNAPSHOT_OVERLAY)
		return overlay_changes(s, out, err);
	return copy_changes(s, out, err);
}

static int sys_fsopen(const char *fs, unsigned flags)
{
	return syscall(SYS_fsopen, fs, flags);
}
static int sys_fsconfig(int fd, unsigned cmd, const char *key, const void *value, int aux)
{
	return syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}
static int sys_fsmount(int fd, unsigned flags, unsigned attr)
{
	return syscall(SYS_fsmount, fd, flags, attr);
}
static int sys_move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned flags)
{
	return syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}

/* In a user namespace (rootless) overlayfs cannot use trusted.* xattrs: it
 * is mounted with userxattr and keeps opaque markers in user.overlay.*, which
 * the unpacker writes there (plait_userns_opaque_xattr()). */
static const char *const overlay_fixed_opts[][2] = {
	{ "index", "off" },
	{ "redirect_dir", "off" },
	{ "metacopy", "off" },
};

/* volatile (Linux >= 5.10): overlayfs passes no sync of the upper on to its
 * file system, neither a step's own fsync() calls nor the syncfs() of the
 * upper's whole file system that unmounting would do (tens of milliseconds
 * a step, more with other writers on it). What a step leaves is synced once
 * by whoever keeps it (the builder, before it records the step); a kernel
 * without the option mounts without it, as before. -1 not known yet, 0 no,
 * 1 yes. */
static atomic_int overlay_volatile = -1;

/* userxattr refuses redirect_dir=off ("nofollow" is its own setting: no
 * redirect made, none followed) and implies metacopy=off. */
static const char *overlay_opt_value(size_t i)
{
	if (plait_userns_self()->nested && streq(overlay_fixed_opts[i][0], "redirect_dir"))
		return "nofollow";
	return overlay_fixed_opts[i][1];
}

/* The new mount API, one lower at a time. Returns 0, or -errno. Both ways
 * mount nodev: a device node of a layer is never opened through the snapshot
 * (the RUN sandbox remounts its root nodev too). */
static int mount_overlay_new(struct plait_snapshot *s, const char *work, bool vol)
{
	_cleanup_close_ int fsfd = sys_fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return -errno;
	for (size_t i = s->n_lowers; i-- > 0;)
		if (sys_fsconfig(fsfd, P_FSCONFIG_SET_STRING, "lowerdir+", s->lowers[i], 0) < 0)
			return -errno;
	if (sys_fsconfig(fsfd, P_FSCONFIG_SET_STRING, "upperdir", s->upper, 0) < 0 ||
	    sys_fsconfig(fsfd, P_FSCONFIG_SET_STRING, "workdir", work, 0) < 0)
		return -errno;
	if (plait_userns_self()->nested && sys_fsconfig(fsfd, P_FSCONFIG_SET_FLAG, "userxattr", NULL, 0) < 0)
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(overlay_fixed_opts); i++)
		if (sys_fsconfig(fsfd, P_FSCONFIG_SET_STRING, overlay_fixed_opts[i][0], overlay_opt_value(i), 0) < 0)
			return -errno;
	if (vol && sys_fsconfig(fsfd, P_FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0)
		return -errno;
	if (sys_fsconfig(fsfd, P_FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return -errno;
	_cleanup_close_ int mfd = sys_fsmount(fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
	if (mfd < 0)
		return -errno;
	if (sys_move_mount(mfd, "", AT_FDCWD, s->root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

/* mount(2) with one option string, limited by the kernel to a page. */
static int mount_overlay_classic(struct plait_snapshot *s, const char *work, bool vol)
{
	_cleanup_buf_ struct plait_buf o = PLAIT_BUF_INIT;
	plait_buf_adds(&o, "lowerdir=");
	for (size_t i = s->n_lowers; i-- > 0;) {
		if (strpbrk(s->lowers[i], ":,\\"))
			return -EINVAL;
		plait_buf_addf(&o, "%s%s", s->lowers[i], i ? ":" : "");
	}
	plait_buf_addf(&o, ",upperdir=%s,workdir=%s", s->upper, work);
	for (size_t i = 0; i < ARRAY_SIZE(overlay_fixed_opts); i++)
		plait_buf_addf(&o, ",%s=%s", overlay_fixed_opts[i][0], overlay_opt_value(i));
	if (plait_userns_self()->nested)
		plait_buf_adds(&o, ",userxattr");
	if (vol)
		plait_buf_adds(&o, ",volatile");
	if (o.len >= 4096)
		return -E2BIG;
	if (mount("overlay", s->root, "overlay", MS_NODEV, o.buf) < 0)
		return -errno;
	return 0;
}

/* The new API, else the classic call; volatile unless the kernel has been
 * seen to refuse it (EINVAL both ways: it does not know the option). */
static int overlay_mount(struct plait_snapshot *s, const char *work)
{
	int known = atomic_load(&overlay_volatile);
	int r = mount_overlay_new(s, work, known != 0);
	if (r == -ENOSYS || r == -EINVAL)
		r = mount_overlay_classic(s, work, known != 0);
	if (r == -EINVAL && known != 0) {
		r = mount_overlay_new(s, work, false);
		if (r == -ENOSYS || r == -EINVAL)
			r = mount_overlay_classic(s, work, false);
		if (r == 0)
			atomic_store(&overlay_volatile, 0);
	} else if (r == 0 && known < 0) {
		atomic_store(&overlay_volatile, 1);
	}
	return r;
}

static int prepare_overlay(struct plait_snapshot *s, struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/upper", s->dir);
	s->upper = xstrdup(p.buf);
	plait_buf_reset(&p);
	plait_buf_addf(&p, "%s/work", s->dir);
	if (mkdir(s->upper, 0755) < 0 || mkdir(p.buf, 0700) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "create overlay directories in '%s'", s->dir);
	int r = -EINVAL;
	if (s->n_lowers == 0) {
		/* overlayfs wants a lower: an empty one stands in for FROM scratch. */
		plait_buf_reset(&p);
		plait_buf_addf(&p, "%s/empty", s->dir);
		if (mkdir(p.buf, 0755) < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", p.buf);
		s->lowers[0] = xstrdup(p.buf); /* prepare allocated n + 1 slots */
		s->n_lowers = 1;
		plait_buf_reset(&p);
		plait_buf_addf(&p, "%s/work", s->dir);
	}
	r = overlay_mount(s, p.buf);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "mount overlay at '%s' (%zu lowers)", s->root,
					     s->n_lowers);
	s->mounted = true;
	if (mount(NULL, s->root, NULL, MS_PRIVATE, NULL) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "make '%s' a private mount", s->root);
	return 0;
}

static int prepare_copy(struct plait_snapshot *s, struct plait_error **err)
{
	for (size_t i = 0; i < s->n_lowers; i++) {
		int r = copy_layer(s->lowers[i], s->root, err);
		if (r < 0)
			return plait_error_wrap(err, "copy layer %zu into snapshot", i), r;
	}
	return walk_tree(s->root, record_cb, &s->before, err);
}

static void snapshot_free(struct plait_snapshot *s)
{
	for (size_t i = 0; i < s->n_lowers; i++)
		free(s->lowers[i]);
	free(s->lowers);
	entries_release(&s->before);
	free(s->dir);
	free(s->root);
	free(s->upper);
	free(s);
}

void plait_snapshot_release(struct plait_snapshot *s)
{
	if (!s)
		return;
	if (s->mounted)
		(void)umount2(s->root, MNT_DETACH);
	if (s->dir)
		(void)plait_rm_rf(s->dir);
	snapshot_free(s);
}

int plait_snapshot_take_upper(struct plait_snapshot *s, const char *dest, struct plait_error **err)
{
	if (s->mode != PLAIT_SNAPSHOT_OVERLAY || !s->upper)
		return plait_error_set(err, PLAIT_E_USAGE, "snapshot: only an overlay snapshot has an upper directory");
	if (s->mounted) {
		/* A plain unmount: a lazily detached overlay would still hold the
		 * upper. EBUSY is usually brief: a process another thread is just
		 * forking holds copies of descriptors into the root until it execs. */
		int tries = 0;
		while (umount2(s->root, 0) < 0) {
			if (errno != EBUSY || ++tries > 50)
				return plait_error_set_errno(err, PLAIT_E_IO, errno, "snapshot: unmount '%s'", s->root);
			usleep(2000);
		}
		s->mounted = false;
	}
	if (rename(s->upper, dest) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			return 0;
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "snapshot: move '%s' to '%s'", s->upper, dest);
	}
	return 1;
}

int plait_snapshot_prepare(const char *const *lowers, size_t n, const char *workroot,
			   enum plait_snapshot_mode mode, struct plait_snapshot **out,
			   struct plait_error **err)
{
	*out = NULL;
	struct statfs sfs;
	if (statfs(workroot, &sfs) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "snapshot work directory '%s'", workroot);
	bool on_overlay = sfs.f_type == OVERLAYFS_SUPER_MAGIC;
	if (mode == PLAIT_SNAPSHOT_OVERLAY && on_overlay)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "snapshot work directory '%s' is on overlayfs, which cannot hold an overlay upper directory: use a directory on another file system or the copying snapshotter",
				       workroot);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (stat(lowers[i], &st) < 0)
			return plait_error_set_errno(err, PLAIT_E_NOT_FOUND, errno, "snapshot layer '%s'", lowers[i]);
		if (!S_ISDIR(st.st_mode))
			return plait_error_set(err, PLAIT_E_INVALID, "snapshot layer '%s' is not a directory", lowers[i]);
	}

	struct plait_snapshot *s = xcalloc(1, sizeof(*s));
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/snap-XXXXXX", workroot);
	if (!mkdtemp(p.buf)) {
		int r = plait_error_set_errno(err, PLAIT_E_IO, errno, "create snapshot directory in '%s'", workroot);
		snapshot_free(s);
		return r;
	}
	s->dir = xstrdup(p.buf);
	plait_buf_addf(&p, "/root");
	s->root = xstrdup(p.buf);
	s->lowers = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		s->lowers[i] = xstrdup(lowers[i]);
	s->n_lowers = n;

	int r;
	if (mkdir(s->root, 0755) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", s->root);
		goto fail;
	}
	if (mode != PLAIT_SNAPSHOT_COPY && !on_overlay) {
		s->mode = PLAIT_SNAPSHOT_OVERLAY;
		r = prepare_overlay(s, err);
		if (r == 0)
			goto done;
		if (mode == PLAIT_SNAPSHOT_OVERLAY)
			goto fail;
		/* AUTO: forget the overlay attempt and copy instead. */
		plait_error_clear(err);
		if (s->mounted)
			(void)umount2(s->root, MNT_DETACH);
		s->mounted = false;
		plait_buf_reset(&p);
		plait_buf_addf(&p, "%s/upper", s->dir);
		(void)plait_rm_rf(p.buf);
		plait_buf_reset(&p);
		plait_buf_addf(&p, "%s/work", s->dir);
		(void)plait_rm_rf(p.buf);
		free(s->upper);
		s->upper = NULL;
		if (n == 0) {
			for (size_t i = 0; i < s->n_lowers; i++)
				free(s->lowers[i]);
			s->n_lowers = 0;
		}
	}
	s->mode = PLAIT_SNAPSHOT_COPY;
	r = prepare_copy(s, err);
	if (r < 0)
		goto fail;
done:
	*out = s;
	return 0;
fail:
	plait_snapshot_release(s);
	return r;
}

const char *plait_snapshot_root(const struct plait_snapshot *s)
{
	return s->root;
}

const char *plait_snapshot_upper(const struct plait_snapshot *s)
{
	return s->upper;
}

enum plait_snapshot_mode plait_snapshot_mode(const struct plait_snapshot *s)
{
	return s->mode;
}
