/* core/layer.c - deterministic OCI layers from a directory, an overlayfs upper
 * directory or a list of changes; see layer.h for the contract.
 *
 * The source is first reduced to a list of entry names (nodes, whiteouts,
 * opaque markers), sorted, then written in one streaming pass: libarchive
 * writes the tar into a callback that hashes it (diff_id), compresses it and
 * hands the result to the store's blob writer (which hashes the digest). */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <zstd.h>

#include "buf.h"
#include "cleanup.h"
#include "fs.h"
#include "gzip.h"
#include "layer.h"
#include "oci.h"
#include "banned.h"


#define ZSTD_DEFAULT_LEVEL 3
#define IO_CHUNK (128 * 1024)
#define WHITEOUT_PREFIX ".wh."
#define OPAQUE_NAME ".wh..wh..opq"

enum ent_kind {
	ENT_NODE,     /* a file system object under the source dir */
	ENT_WHITEOUT, /* path is "dir/.wh.name" */
	ENT_OPAQUE,   /* path is the directory; written as "dir/.wh..wh..opq" */
};

struct ent {
	char *path; /* relative, no leading or trailing '/' */
	size_t len;
	enum ent_kind kind;
	bool dropped;
	bool is_dir;
	bool is_reg; /* a regular file when collected: opened without a stat first */
	nlink_t nlink;
	dev_t dev;
	ino_t ino;
	size_t link_to; /* 1 + index of the entry this one is a hardlink of; 0: none */
};

struct collect {
	const struct plait_layer_source *src;
	struct plait_buf full; /* scratch: dir + "/" + rel */
	struct ent *v;
	size_t n, alloc;
};

static void collect_release(struct collect *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].path);
	free(c->v);
	plait_buf_release(&c->full);
}

static const char *full_path(struct collect *c, const char *rel)
{
	plait_buf_reset(&c->full);
	plait_buf_adds(&c->full, c->src->dir);
	if (*rel) {
		plait_buf_addch(&c->full, '/');
		plait_buf_adds(&c->full, rel);
	}
	return c->full.buf;
}

static struct ent *push(struct collect *c, const char *path, size_t len, enum ent_kind kind)
{
	PLAIT_ALLOC_GROW(c->v, c->n + 1, c->alloc);
	struct ent *e = &c->v[c->n++];
	*e = (struct ent){.path = xstrndup(path, len), .len = len, .kind = kind};
	return e;
}

static void push_node(struct collect *c, const char *rel, const struct stat *st)
{
	struct ent *e = push(c, rel, strlen(rel), ENT_NODE);
	e->is_dir = S_ISDIR(st->st_mode);
	e->is_reg = S_ISREG(st->st_mode);
	e->nlink = st->st_nlink;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
}

static void push_whiteout(struct collect *c, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	struct plait_buf b = PLAIT_BUF_INIT;
	if (slash)
		plait_buf_add(&b, rel, (size_t)(slash - rel + 1));
	plait_buf_adds(&b, WHITEOUT_PREFIX);
	plait_buf_adds(&b, slash ? slash + 1 : rel);
	push(c, b.buf, b.len, ENT_WHITEOUT);
	plait_buf_release(&b);
}

/* An overlay xattr in either namespace: "trusted.overlay.<what>" or "user.overlay.<what>". */
static ssize_t get_overlay_xattr(const char *path, const char *what, char *val, size_t size)
{
	char name[64];
	snprintf(name, sizeof(name), "trusted.overlay.%s", what);
	ssize_t n = lgetxattr(path, name, val, size);
	if (n >= 0)
		return n;
	snprintf(name, sizeof(name), "user.overlay.%s", what);
	return lgetxattr(path, name, val, size);
}

static bool has_overlay_xattr(const char *path, const char *what)
{
	char v[8];
	return get_overlay_xattr(path, what, v, sizeof(v)) >= 0 || errno == ERANGE;
}

static int walk(struct collect *c, const char *rel, struct plait_error **err);

/* Whether the upper directory rel (stat st) is only overlayfs' copy-up of
 * the directory the lowers show there: the topmost lower that has rel has a
 * directory with the same mode, owner, mtime and xattrs (a whiteout or a
 * non-directory there, or no lower with it, means it is new). */
static bool copied_up_unchanged(struct collect *c, const char *rel, const struct stat *st)
{
	for (size_t i = c->src->n_lowers; i-- > 0;) {
		_cleanup_free_ char *lp = plait_path_concat(c->src->lowers[i], rel);
		struct stat ls;
		if (lstat(lp, &ls) < 0) {
			if (errno != ENOENT)
				return false;
			continue;
		}
		if (!S_ISDIR(ls.st_mode) || ls.st_mode != st->st_mode || ls.st_uid != st->st_uid ||
		    ls.st_gid != st->st_gid || ls.st_mtim.tv_sec != st->st_mtim.tv_sec ||
		    ls.st_mtim.tv_nsec != st->st_mtim.tv_nsec)
			return false;
		_cleanup_free_ char *a = plait_xattrs_signature(full_path(c, rel)), *b = plait_xattrs_signature(lp);
		return a && b && streq(a, b);
	}
	return false;
}

/* Classify one object found under the source dir. */
static int visit(struct collect *c, const char *rel, bool recurse, struct plait_error **err)
{
	const char *path = full_path(c, rel);
	struct stat st;
	if (lstat(path, &st) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "layer: stat '%s'", path);
	if (S_ISSOCK(st.st_mode))
		return 0;
	if (c->src->kind == PLAIT_LAYER_SRC_OVERLAY) {
		if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
			push_whiteout(c, rel);
			return 0;
		}
		/* a metacopy file (metacopy=on) is refused where its xattrs are read
		 * (add_xattrs), not with two more lookups per file here */
		if (S_ISREG(st.st_mode) && st.st_size == 0 && has_overlay_xattr(path, "whiteout")) {
			push_whiteout(c, rel);
			return 0;
		}
		if (S_ISDIR(st.st_mode)) {
			if (has_overlay_xattr(path, "redirect"))
				return plait_error_set(
				    err, PLAIT_E_INVALID,
				    "layer: overlay upper directory '%s' is a redirect: mount "
				    "overlayfs with redirect_dir=off",
				    path);
			char v[8];
			ssize_t n = get_overlay_xattr(path, "opaque", v, sizeof(v));
			if (n == 1 && v[0] == 'y') {
				if (*rel)
					push_node(c, rel, &st);
				push(c, rel, strlen(rel), ENT_OPAQUE);
				return recurse ? walk(c, rel, err) : 0;
			}
		}
	}
	if (*rel)
		push_node(c, rel, &st);
	if (S_ISDIR(st.st_mode) && recurse) {
		size_t at = c->n;
		int r = walk(c, rel, err);
		/* nothing below it changed, and it is the lower's own: not a change */
		if (r >= 0 && *rel && c->n == at && c->src->kind == PLAIT_LAYER_SRC_OVERLAY && c->src->n_lowers &&
		    copied_up_unchanged(c, rel, &st)) {
			free(c->v[--c->n].path);
		}
		return r;
	}
	return 0;
}

static int walk(struct collect *c, const char *rel, struct plait_error **err)
{
	_cleanup_(closedirp) DIR *d = opendir(full_path(c, rel));
	if (!d)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "layer: open directory '%s'",
					     c->full.buf);
	_cleanup_buf_ struct plait_buf child = PLAIT_BUF_INIT;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				return plait_error_set_errno(err, PLAIT_E_IO, errno,
							     "layer: read directory '%s'",
							     full_path(c, rel));
			return 0;
		}
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		plait_path_child(&child, rel, de->d_name);
		int r = visit(c, child.buf, true, err);
		if (r < 0)
			return r;
	}
}

/* A change path made relative and checked: no "..", no empty result. */
static int clean_change_path(const char *in, struct plait_buf *out, struct plait_error **err)
{
	plait_buf_reset(out);
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return plait_error_set(err, PLAIT_E_INVALID,
					       "layer: change path '%s' contains '..'", in);
		if (n && !(n == 1 && p[0] == '.')) {
			if (out->len)
				plait_buf_addch(out, '/');
			plait_buf_add(out, p, n);
		}
		p = e;
	}
	return 0;
}

static int collect_changes(struct collect *c, struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf rel = PLAIT_BUF_INIT;
	for (size_t i = 0; i < c->src->n_changes; i++) {
		const struct plait_layer_change *ch = &c->src->changes[i];
		int r = clean_change_path(ch->path ? ch->path : "", &rel, err);
		if (r < 0)
			return r;
		if (!rel.len && ch->kind != PLAIT_LAYER_CHANGE_OPAQUE &&
		    ch->kind != PLAIT_LAYER_CHANGE_ADD_TREE)
			return plait_error_set(
			    err, PLAIT_E_INVALID,
			    "layer: change path '%s' names the root: only ADD_TREE and OPAQUE may",
			    ch->path ? ch->path : "");
		/* Parents first, with their current metadata (duplicates go after sorting). */
		for (char *s = rel.buf; (s = strchr(s, '/')); s++) {
			*s = '\0';
			r = visit(c, rel.buf, false, err);
			*s = '/';
			if (r < 0)
				return r;
		}
		switch (ch->kind) {
		case PLAIT_LAYER_CHANGE_ADD:
			r = visit(c, rel.buf, false, err);
			break;
		case PLAIT_LAYER_CHANGE_ADD_TREE:
			r = visit(c, rel.buf, true, err);
			break;
		case PLAIT_LAYER_CHANGE_DELETE:
			push_whiteout(c, rel.buf);
			break;
		case PLAIT_LAYER_CHANGE_OPAQUE: {
			struct stat st;
			const char *path = full_path(c, rel.buf);
			if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
				return plait_error_set(
				    err, PLAIT_E_INVALID,
				    "layer: opaque change '%s' is not a directory in '%s'", rel.buf,
				    c->src->dir);
			if (rel.len)
				push_node(c, rel.buf, &st);
			push(c, rel.buf, rel.len, ENT_OPAQUE);
			break;
		}
		default:
			return plait_error_set(err, PLAIT_E_INVALID,
					       "layer: unknown change kind %d", (int)ch->kind);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/* The i-th byte of the sort key: the path with '/' below every name byte and
 * the end below '/', so byte order is the order of a sorted depth-first walk.
 * An opaque marker's key is "dir/" (an empty last name): right after dir,
 * before its children. */
static int key_at(const struct ent *e, size_t i)
{
	if (i < e->len)
		return e->path[i] == '/' ? 1 : (unsigned char)e->path[i] + 2;
	if (i == e->len && e->kind == ENT_OPAQUE)
		return 1;
	return 0;
}

static int ent_cmp(const void *pa, const void *pb)
{
	const struct ent *a = pa, *b = pb;
	for (size_t i = 0;; i++) {
		int ca = key_at(a, i), cb = key_at(b, i);
		if (ca != cb)
			return ca - cb;
		if (!ca)
			return 0;
	}
}

struct link_key {
	dev_t dev;
	ino_t ino;
	size_t idx;
};

static int link_cmp(const void *pa, const void *pb)
{
	const struct link_key *a = pa, *b = pb;
	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Sort, drop duplicates and whiteouts of added paths, find hardlinks. */
static void finish_list(struct collect *c)
{
	if (c->n > 1)
		qsort(c->v, c->n, sizeof(*c->v), ent_cmp);
	for (size_t i = 1; i < c->n; i++)
		if (ent_cmp(&c->v[i - 1], &c->v[i]) == 0)
			c->v[i].dropped = true;
	_cleanup_buf_ struct plait_buf target = PLAIT_BUF_INIT;
	for (size_t i = 0; i < c->n; i++) {
		struct ent *e = &c->v[i];
		if (e->kind != ENT_WHITEOUT || e->dropped)
			continue;
		const char *slash = strrchr(e->path, '/');
		const char *base = slash ? slash + 1 : e->path;
		plait_buf_reset(&target);
		plait_buf_add(&target, e->path, (size_t)(base - e->path));
		plait_buf_adds(&target, base + strlen(WHITEOUT_PREFIX));
		struct ent key = {.path = target.buf, .len = target.len, .kind = ENT_NODE};
		if (bsearch(&key, c->v, c->n, sizeof(*c->v), ent_cmp))
			e->dropped = true;
	}
	struct link_key *links = NULL;
	size_t n_links = 0, alloc = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct ent *e = &c->v[i];
		if (e->kind != ENT_NODE || e->dropped || e->is_dir || e->nlink < 2)
			continue;
		PLAIT_ALLOC_GROW(links, n_links + 1, alloc);
		links[n_links++] = (struct link_key){e->dev, e->ino, i};
	}
	if (n_links > 1)
		qsort(links, n_links, sizeof(*links), link_cmp);
	for (size_t i = 1; i < n_links; i++) {
		size_t first = i - 1;
		while (first > 0 && links[first - 1].dev == links[i].dev &&
		       links[first - 1].ino == links[i].ino)
			first--;
		if (links[first].dev == links[i].dev && links[first].ino == links[i].ino)
			c->v[links[i].idx].link_to = links[first].idx + 1;
	}
	free(links);
}

/* --- the output pipeline: tar bytes -> diff_id -> compressor -> blob writer */

struct sink {
	enum plait_layer_compression comp;
	struct plait_sha256 diff;
	struct plait_gzip *gz;
	ZSTD_CCtx *zc;
	struct plait_blob_writer *w;
	unsigned char *obuf;
	const atomic_int *cancel;
	struct plait_error *err; /* the first failure inside a libarchive callback */
};

static int sink_out(struct sink *k, const void *data, size_t len)
{
	if (!len || k->err)
		return k->err ? -1 : 0;
	return plait_blob_writer_write(k->w, data, len, &k->err) < 0 ? -1 : 0;
}

static int gzip_sink(void *ud, const void *data, size_t len, struct plait_error **err)
{
	struct sink *k = ud;
	return plait_blob_writer_write(k->w, data, len, err);
}

static int sink_push(struct sink *k, const void *data, size_t len, bool end)
{
	switch (k->comp) {
	case PLAIT_LAYER_UNCOMPRESSED:
		return sink_out(k, data, len);
	case PLAIT_LAYER_GZIP:
		if (len && plait_gzip_write(k->gz, data, len, &k->err) < 0)
			return -1;
		return end && plait_gzip_finish(k->gz, &k->err) < 0 ? -1 : 0;
	case PLAIT_LAYER_ZSTD: {
		ZSTD_inBuffer in = {data, len, 0};
		for (;;) {
			ZSTD_outBuffer out = {k->obuf, IO_CHUNK, 0};
			size_t zr = ZSTD_compressStream2(k->zc, &out, &in,
							 end ? ZSTD_e_end : ZSTD_e_continue);
			if (ZSTD_isError(zr)) {
				plait_error_set(&k->err, PLAIT_E_GENERIC, "layer: zstd: %s",
						ZSTD_getErrorName(zr));
				return -1;
			}
			if (sink_out(k, k->obuf, out.pos) < 0)
				return -1;
			if (end ? zr == 0 : in.pos == in.size)
				return 0;
		}
	}
	}
	return -1;
}

static la_ssize_t tar_write_cb(struct archive *a, void *ud, const void *buf, size_t len)
{
	(void)a;
	struct sink *k = ud;
	if (k->cancel && atomic_load(k->cancel)) {
		if (!k->err)
			plait_error_set(&k->err, PLAIT_E_CANCELLED, "interrupted");
		return -1;
	}
	plait_sha256_update(&k->diff, buf, len);
	return sink_push(k, buf, len, false) < 0 ? -1 : (la_ssize_t)len;
}

static int sink_init(struct sink *k, struct plait_store *s, const struct plait_layer_options *o,
		     struct plait_error **err)
{
	k->comp = o->compression;
	k->cancel = o->cancel;
	int r = plait_sha256_init(&k->diff, err);
	if (r < 0)
		return r;
	k->obuf = xmalloc(IO_CHUNK);
	if (k->comp == PLAIT_LAYER_GZIP) {
		r = plait_gzip_new(o->level, o->threads, gzip_sink, k, &k->gz, err);
		if (r < 0)
			return plait_error_wrap(err, "layer");
	} else if (k->comp == PLAIT_LAYER_ZSTD) {
		int level = o->level ? o->level : ZSTD_DEFAULT_LEVEL;
		k->zc = ZSTD_createCCtx();
		if (!k->zc)
			plait_die_oom();
		if (ZSTD_isError(ZSTD_CCtx_setParameter(k->zc, ZSTD_c_compressionLevel, level)) ||
		    ZSTD_isError(ZSTD_CCtx_setParameter(k->zc, ZSTD_c_checksumFlag, 1)))
			return plait_error_set(err, PLAIT_E_INVALID,
					       "layer: zstd level %d is not valid", level);
	} else if (k->comp != PLAIT_LAYER_UNCOMPRESSED) {
		return plait_error_set(err, PLAIT_E_INVALID, "layer: unknown compression %d",
				       (int)k->comp);
	}
	int wr = plait_blob_writer_new(s, NULL, -1, &k->w, err);
	if (wr >= 0 && o->on_writer)
		o->on_writer(o->on_writer_ud, k->w);
	return wr;
}

static void sink_release(struct sink *k)
{
	plait_sha256_release(&k->diff);
	plait_gzip_free(k->gz);
	ZSTD_freeCCtx(k->zc);
	plait_blob_writer_free(k->w);
	free(k->obuf);
	plait_error_free(k->err);
}

/* --- entries */

struct writer {
	struct archive *a;
	struct sink *k;
	const struct plait_layer_source *src;
	const struct plait_layer_options *o;
	struct collect *c;
	struct plait_buf full, name, link, xnames, xval;
	char *data;
};

static int64_t clamp_time(const struct writer *w, int64_t t)
{
	if (w->o->clamp_mtime && t > w->o->source_date_epoch)
		return w->o->source_date_epoch;
	return t;
}

static bool keep_xattr(const char *name)
{
	return !startswith(name, "trusted.overlay.") && !startswith(name, "user.overlay.") &&
	       !streq(name, "security.selinux");
}

static int xattr_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copy the xattrs of path (or fd when >= 0) into ae, sorted by name. */
static int add_xattrs(struct writer *w, struct archive_entry *ae, const char *path, int fd,
		      struct plait_error **err)
{
	ssize_t n;
	for (;;) {
		n = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(path, NULL, 0);
		if (n < 0 && (errno == ENOTSUP || errno == EOPNOTSUPP))
			return 0;
		if (n <= 0)
			break;
		plait_buf_reset(&w->xnames);
		plait_buf_grow(&w->xnames, (size_t)n);
		n = fd >= 0 ? flistxattr(fd, w->xnames.buf, (size_t)n)
			    : llistxattr(path, w->xnames.buf, (size_t)n);
		if (n >= 0 || errno != ERANGE)
			break;
	}
	if (n < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "layer: list xattrs of '%s'",
					     path);
	if (n == 0)
		return 0;
	plait_buf_setlen(&w->xnames, (size_t)n);
	_cleanup_free_ char **names = NULL;
	size_t count = 0, alloc = 0;
	for (char *p = w->xnames.buf; p < w->xnames.buf + n; p += strlen(p) + 1) {
		if (w->src->kind == PLAIT_LAYER_SRC_OVERLAY && fd >= 0 &&
		    (streq(p, "trusted.overlay.metacopy") || streq(p, "user.overlay.metacopy")))
			return plait_error_set(err, PLAIT_E_INVALID,
					       "layer: overlay upper file '%s' is a metacopy: "
					       "mount overlayfs with metacopy=off",
					       path);
		if (!*p || !keep_xattr(p))
			continue;
		PLAIT_ALLOC_GROW(names, count + 1, alloc);
		names[count++] = p;
	}
	if (count > 1)
		qsort(names, count, sizeof(*names), xattr_name_cmp);
	for (size_t i = 0; i < count; i++) {
		ssize_t v;
		for (;;) {
			v = fd >= 0 ? fgetxattr(fd, names[i], NULL, 0)
				    : lgetxattr(path, names[i], NULL, 0);
			if (v < 0)
				break;
			plait_buf_reset(&w->xval);
			plait_buf_grow(&w->xval, (size_t)v + 1);
			v = fd >= 0 ? fgetxattr(fd, names[i], w->xval.buf, (size_t)v + 1)
				    : lgetxattr(path, names[i], w->xval.buf, (size_t)v + 1);
			if (v >= 0 || errno != ERANGE)
				break;
		}
		if (v < 0) {
			if (errno == ENODATA)
				continue;
			return plait_error_set_errno(err, PLAIT_E_IO, errno,
						     "layer: read xattr '%s' of '%s'", names[i],
						     path);
		}
		archive_entry_xattr_add_entry(ae, names[i], w->xval.buf, (size_t)v);
	}
	return 0;
}

static int archive_fail(struct writer *w, const char *what, const char *name,
			struct plait_error **err)
{
	if (w->k->err) {
		/* The callback failed (the store, the compressor): its message is the cause. */
		int code = w->k->err->code;
		if (err) {
			plait_error_move(err, TAKE_PTR(w->k->err));
			plait_error_wrap(err, "layer: %s '%s'", what, name);
		}
		return -code;
	}
	return plait_error_set(err, PLAIT_E_GENERIC, "layer: %s '%s': %s", what, name,
			       archive_error_string(w->a));
}

static int write_header(struct writer *w, struct archive_entry *ae, const char *name,
			struct plait_error **err)
{
	int ar = archive_write_header(w->a, ae);
	if (ar < ARCHIVE_WARN)
		return archive_fail(w, "write tar header for", name, err);
	return 0;
}

/* A whiteout or opaque marker: an empty file, mode 0, owner 0:0. */
static int write_marker(struct writer *w, const char *name, struct plait_error **err)
{
	_cleanup_(archive_entry_freep) struct archive_entry *ae = archive_entry_new();
	archive_entry_copy_pathname(ae, name);
	archive_entry_set_filetype(ae, AE_IFREG);
	archive_entry_set_perm(ae, 0);
	archive_entry_set_size(ae, 0);
	archive_entry_set_mtime(ae, w->o->clamp_mtime ? w->o->source_date_epoch : 0, 0);
	return write_header(w, ae, name, err);
}

static int write_node(struct writer *w, size_t idx, struct plait_error **err)
{
	const struct ent *e = &w->c->v[idx];
	plait_buf_reset(&w->full);
	plait_buf_adds(&w->full, w->src->dir);
	plait_buf_addch(&w->full, '/');
	plait_buf_adds(&w->full, e->path);
	const char *path = w->full.buf;

	_cleanup_close_ int fd = -1;
	struct stat st;
	bool hardlink = e->link_to && !e->is_dir;
	if (!e->is_reg || hardlink) {
		if (lstat(path, &st) < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "layer: stat '%s'", path);
		if (S_ISSOCK(st.st_mode))
			return 0;
		hardlink = e->link_to && !S_ISDIR(st.st_mode);
	}
	if (e->is_reg && !hardlink) {
		/* O_NONBLOCK: should it have become a fifo, the open does not wait */
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &st) < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "layer: open '%s'",
						     path);
		if (!S_ISREG(st.st_mode))
			return plait_error_set(err, PLAIT_E_IO,
					       "layer: '%s' changed while the layer was written",
					       path);
	}

	_cleanup_(archive_entry_freep) struct archive_entry *ae = archive_entry_new();
	plait_buf_reset(&w->name);
	plait_buf_adds(&w->name, e->path);
	if (S_ISDIR(st.st_mode))
		plait_buf_addch(&w->name, '/');
	archive_entry_copy_pathname(ae, w->name.buf);
	archive_entry_set_mode(ae, st.st_mode);
	archive_entry_set_uid(ae, st.st_uid);
	archive_entry_set_gid(ae, st.st_gid);
	archive_entry_set_mtime(ae, clamp_time(w, st.st_mtim.tv_sec), 0);
	archive_entry_set_size(ae, 0);
	if (hardlink) {
		archive_entry_copy_hardlink(ae, w->c->v[e->link_to - 1].path);
	} else if (S_ISREG(st.st_mode)) {
		archive_entry_set_size(ae, st.st_size);
	} else if (S_ISLNK(st.st_mode)) {
		plait_buf_reset(&w->link);
		for (size_t size = 256;; size *= 2) {
			plait_buf_grow(&w->link, size);
			ssize_t n = readlink(path, w->link.buf, size);
			if (n < 0)
				return plait_error_set_errno(err, PLAIT_E_IO, errno,
							     "layer: read symlink '%s'", path);
			if ((size_t)n < size) {
				plait_buf_setlen(&w->link, (size_t)n);
				break;
			}
		}
		archive_entry_copy_symlink(ae, w->link.buf);
	} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
		archive_entry_set_rdevmajor(ae, major(st.st_rdev));
		archive_entry_set_rdevminor(ae, minor(st.st_rdev));
	}
	/* A hardlink shares the xattrs of the file it names; the header of the
	 * first path carries them. */
	if (!hardlink) {
		int r = add_xattrs(w, ae, path, fd, err);
		if (r < 0)
			return r;
	}
	int r = write_header(w, ae, w->name.buf, err);
	if (r < 0 || fd < 0)
		return r;

	int64_t left = st.st_size;
	while (left > 0) {
		ssize_t n = read(fd, w->data, left < IO_CHUNK ? (size_t)left : IO_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "layer: read '%s'",
						     path);
		if (n == 0)
			return plait_error_set(err, PLAIT_E_IO,
					       "layer: '%s' shrank while the layer was written",
					       path);
		if (archive_write_data(w->a, w->data, (size_t)n) != n)
			return archive_fail(w, "write data of", path, err);
		left -= n;
	}
	return 0;
}

static int write_entries(struct writer *w, struct plait_layer *out, struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf marker = PLAIT_BUF_INIT;
	for (size_t i = 0; i < w->c->n; i++) {
		const struct ent *e = &w->c->v[i];
		int r;
		if (e->dropped)
			continue;
		if (e->kind == ENT_NODE) {
			r = write_node(w, i, err);
		} else if (e->kind == ENT_WHITEOUT) {
			r = write_marker(w, e->path, err);
		} else {
			plait_path_child(&marker, e->path, OPAQUE_NAME);
			r = write_marker(w, marker.buf, err);
		}
		if (r < 0)
			return r;
		out->n_entries++;
	}
	return 0;
}

const char *plait_layer_media_type(enum plait_layer_compression c)
{
	switch (c) {
	case PLAIT_LAYER_GZIP:
		return plait_media_type_to_string(PLAIT_MT_OCI_LAYER_GZIP);
	case PLAIT_LAYER_ZSTD:
		return plait_media_type_to_string(PLAIT_MT_OCI_LAYER_ZSTD);
	case PLAIT_LAYER_UNCOMPRESSED:
		return plait_media_type_to_string(PLAIT_MT_OCI_LAYER);
	}
	return NULL;
}

int plait_layer_write(struct plait_store *s, const struct plait_layer_source *src,
		      const struct plait_layer_options *o, struct plait_layer *out,
		      struct plait_error **err)
{
	static const struct plait_layer_options defaults = {.compression = PLAIT_LAYER_GZIP};
	if (!o)
		o = &defaults;
	*out = (struct plait_layer){0};
	out->media_type = plait_layer_media_type(o->compression);
	if (!src->dir)
		return plait_error_set(err, PLAIT_E_USAGE, "layer: no source directory");

	struct collect c = {.src = src, .full = PLAIT_BUF_INIT};
	struct sink k = {0};
	struct writer w = {.k = &k,
			   .src = src,
			   .o = o,
			   .c = &c,
			   .full = PLAIT_BUF_INIT,
			   .name = PLAIT_BUF_INIT,
			   .link = PLAIT_BUF_INIT,
			   .xnames = PLAIT_BUF_INIT,
			   .xval = PLAIT_BUF_INIT};
	int r;
	struct stat st;
	errno = 0;
	if (stat(src->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		int e = errno;
		r = plait_error_set_errno(err, PLAIT_E_NOT_FOUND, e ? e : ENOTDIR,
					  "layer: source directory '%s'", src->dir);
		goto out;
	}
	switch (src->kind) {
	case PLAIT_LAYER_SRC_TREE:
		r = walk(&c, "", err);
		break;
	case PLAIT_LAYER_SRC_OVERLAY:
		r = visit(&c, "", true, err);
		break;
	case PLAIT_LAYER_SRC_CHANGES:
		r = collect_changes(&c, err);
		break;
	default:
		r = plait_error_set(err, PLAIT_E_USAGE, "layer: unknown source kind %d",
				    (int)src->kind);
	}
	if (r < 0)
		goto out;
	finish_list(&c);

	if ((r = sink_init(&k, s, o, err)) < 0)
		goto out;
	w.data = xmalloc(IO_CHUNK);
	w.a = archive_write_new();
	if (!w.a)
		plait_die_oom();
	if (archive_write_set_format_pax_restricted(w.a) != ARCHIVE_OK ||
	    archive_write_set_format_option(w.a, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
	    archive_write_set_bytes_in_last_block(w.a, 1) != ARCHIVE_OK ||
	    archive_write_open(w.a, &k, NULL, tar_write_cb, NULL) != ARCHIVE_OK) {
		r = plait_error_set(err, PLAIT_E_GENERIC, "layer: start tar: %s",
				    archive_error_string(w.a));
		goto out;
	}
	if ((r = write_entries(&w, out, err)) < 0)
		goto out;
	if (archive_write_close(w.a) != ARCHIVE_OK) {
		r = archive_fail(&w, "finish tar in", src->dir, err);
		goto out;
	}
	if (sink_push(&k, NULL, 0, true) < 0) {
		r = archive_fail(&w, "finish compression of", src->dir, err);
		goto out;
	}
	plait_sha256_final(&k.diff, out->diff_id);
	out->size = plait_blob_writer_offset(k.w);
	r = plait_blob_writer_commit(k.w, out->digest, err);
out:
	if (w.a)
		archive_write_free(w.a);
	free(w.data);
	plait_buf_release(&w.full);
	plait_buf_release(&w.name);
	plait_buf_release(&w.link);
	plait_buf_release(&w.xnames);
	plait_buf_release(&w.xval);
	sink_release(&k);
	collect_release(&c);
	return r < 0 ? r : 0;
}

int plait_layer_from_tree(struct plait_store *s, const char *dir,
			  const struct plait_layer_options *o, struct plait_layer *out,
			  struct plait_error **err)
{
	struct plait_layer_source src = {.kind = PLAIT_LAYER_SRC_TREE, .dir = dir};
	return plait_layer_write(s, &src, o, out, err);
}

int plait_layer_from_overlay_over(struct plait_store *s, const char *upper_dir, const char *const *lowers,
				  size_t n_lowers, const struct plait_layer_options *o, struct plait_layer *out,
				  struct plait_error **err)
{
	struct plait_layer_source src = {
	    .kind = PLAIT_LAYER_SRC_OVERLAY, .dir = upper_dir, .lowers = lowers, .n_lowers = n_lowers};
	return plait_layer_write(s, &src, o, out, err);
}

int plait_layer_from_overlay(struct plait_store *s, const char *upper_dir,
			     const struct plait_layer_options *o, struct plait_layer *out,
			     struct plait_error **err)
{
	return plait_layer_from_overlay_over(s, upper_dir, NULL, 0, o, out, err);
}

int plait_layer_from_changes(struct plait_store *s, const char *root,
			     const struct plait_layer_change *changes, size_t n_changes,
			     const struct plait_layer_options *o, struct plait_layer *out,
			     struct plait_error **err)
{
	struct plait_layer_source src = {.kind = PLAIT_LAYER_SRC_CHANGES,
					 .dir = root,
					 .changes = changes,
					 .n_changes = n_changes};
	return plait_layer_write(s, &src, o, out, err);
}
