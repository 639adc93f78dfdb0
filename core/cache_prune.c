/* core/cache_prune.c - usage and LRU pruning of the build cache directory (see cache_prune.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "buf.h"
#include "cache.h"
#include "cache_prune.h"
#include "digest.h"
#include "fs.h"
#include "oci.h"
#include "banned.h"

#define HEX_LEN 64

const char *plait_cache_kind_name(enum plait_cache_kind k)
{
	static const char *const names[] = { "store", "layers", "steps", "mounts", "temporary" };
	return (unsigned)k < ARRAY_SIZE(names) ? names[k] : "unknown";
}

static bool is_hex64(const char *s)
{
	size_t i;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == HEX_LEN;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* ------------------------------------------------------------ measuring trees */

struct inode_set {
	struct inode_id {
		dev_t dev;
		ino_t ino;
	} *v;
	size_t n, alloc;
};

/* true when (dev, ino) was seen before; records it otherwise. Only inodes
 * with several links get here, so a linear scan stays cheap. */
static bool inode_seen(struct inode_set *s, dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].dev == dev && s->v[i].ino == ino)
			return true;
	PLAIT_ALLOC_GROW(s->v, s->n + 1, s->alloc);
	s->v[s->n++] = (struct inode_id){ dev, ino };
	return false;
}

struct measure {
	int64_t bytes;
	int64_t newest; /* newest mtime in the tree, ns */
	struct inode_set seen;
};

static void account(struct measure *m, const struct stat *st)
{
	if (ts_ns(&st->st_mtim) > m->newest)
		m->newest = ts_ns(&st->st_mtim);
	if (S_ISDIR(st->st_mode))
		return;
	if (st->st_nlink > 1 && inode_seen(&m->seen, st->st_dev, st->st_ino))
		return;
	m->bytes += st->st_size;
}

/* Takes dfd. Never follows symlinks (fstatat NOFOLLOW, O_NOFOLLOW) and stays
 * on the device of the top: a mount left behind by a dead build is not ours. */
static void walk_dir(int dfd, dev_t dev, struct measure *m)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (streq(e->d_name, ".") || streq(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		account(m, &st);
		if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
			int fd = openat(dirfd(d), e->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				walk_dir(fd, dev, m);
		}
	}
	closedir(d);
}

/* Size of path (a file or a tree) and its newest mtime. */
static int measure_path(const char *path, int64_t *bytes, int64_t *newest)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return -errno;
	struct measure m = { 0 };
	account(&m, &st);
	if (S_ISDIR(st.st_mode)) {
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			walk_dir(fd, st.st_dev, &m);
	}
	free(m.seen.v);
	*bytes = m.bytes;
	if (newest)
		*newest = m.newest;
	return 0;
}

/* ------------------------------------------------------------ the scan */

struct blob {
	char hex[HEX_LEN + 1];
	int64_t size, mtime;
	int group; /* -1: not a known layer */
	bool removed;
};

struct ldir {
	char hex[HEX_LEN + 1];
	int64_t bytes, used;
	int group;
	bool removed;
};

struct record {
	char hex[HEX_LEN + 1];
	int64_t size, mtime;
	bool empty, dead; /* dead: unreadable, or its blob is gone (lookup_step's miss) */
	char blob[HEX_LEN + 1], diff[HEX_LEN + 1];
	int group;
	bool removed;
};

/* A mount dir or a temporary entry: removed as one path. */
struct other {
	char *path;
	enum plait_cache_kind kind;
	int64_t bytes, used;
	bool removed;
};

struct manifest {
	size_t blob;
	char (*layers)[HEX_LEN + 1];
	size_t n_layers;
};

struct pair {
	char blob[HEX_LEN + 1], diff[HEX_LEN + 1];
};

struct group {
	char diff[HEX_LEN + 1];
	int64_t used;
	bool any; /* has a blob, dir or record */
};

enum unit_type { UNIT_GROUP, UNIT_BLOB, UNIT_LDIR, UNIT_RECORD, UNIT_OTHER };

struct unit {
	enum unit_type type;
	size_t idx;
	int prio; /* 0: garbage, always removed; 1: by age */
	int64_t used;
	const char *name;
};

struct scan {
	char *dir, *store, *blobs_dir, *layers_dir, *steps_dir;
	struct blob *blobs;
	size_t n_blobs, a_blobs;
	struct ldir *ldirs;
	size_t n_ldirs, a_ldirs;
	struct record *records;
	size_t n_records, a_records;
	struct other *others;
	size_t n_others, a_others;
	struct manifest *manifests;
	size_t n_manifests, a_manifests;
	struct pair *pairs;
	size_t n_pairs, a_pairs;
	struct group *groups;
	size_t n_groups;
	struct unit *units;
	size_t n_units, a_units;
	struct plait_cache_usage usage;
};

static void scan_release(struct scan *s)
{
	free(s->dir);
	free(s->store);
	free(s->blobs_dir);
	free(s->layers_dir);
	free(s->steps_dir);
	free(s->blobs);
	free(s->ldirs);
	free(s->records);
	for (size_t i = 0; i < s->n_others; i++)
		free(s->others[i].path);
	free(s->others);
	for (size_t i = 0; i < s->n_manifests; i++)
		free(s->manifests[i].layers);
	free(s->manifests);
	free(s->pairs);
	free(s->groups);
	free(s->units);
}

static void count(struct scan *s, enum plait_cache_kind k, int64_t entries, int64_t bytes)
{
	s->usage.kind[k].entries += entries;
	s->usage.kind[k].bytes += bytes;
}

static void add_other(struct scan *s, const char *path, enum plait_cache_kind k)
{
	int64_t bytes = 0, newest = 0;
	if (measure_path(path, &bytes, &newest) < 0)
		return;
	PLAIT_ALLOC_GROW(s->others, s->n_others + 1, s->a_others);
	s->others[s->n_others++] = (struct other){ xstrdup(path), k, bytes, newest, false };
	count(s, k, 1, bytes);
}

/* The names in dir, sorted (so results do not depend on readdir order).
 * A missing dir has none. */
static int list_dir(const char *dir, char ***out, size_t *n, struct plait_error **err)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot read cache folder '%s'", dir);
	}
	*out = plait_dir_names(d, false, n);
	closedir(d);
	return 0;
}

/* dir/name when it is one of plait's own (64 hex digits, of type S_IFREG or
 * S_IFDIR as asked), with its lstat in *st; NULL when lstat fails, or when it
 * is something else, which is then counted as temporary. */
static char *own_entry(struct scan *s, const char *dir, const char *name, mode_t type,
		       struct stat *st)
{
	char *p = plait_path_join(dir, name);
	if (lstat(p, st) < 0) {
		free(p);
		return NULL;
	}
	if (is_hex64(name) && (st->st_mode & S_IFMT) == type)
		return p;
	add_other(s, p, PLAIT_CACHE_TEMP);
	free(p);
	return NULL;
}

static bool is_temp_name(const char *name)
{
	return name[0] == '.' && strstr(name, ".tmp-");
}

static int scan_store(struct scan *s, struct plait_error **err)
{
	_cleanup_strv_free_ char **names = NULL;
	size_t n;
	int r = list_dir(s->store, &names, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = plait_path_join(s->store, names[i]);
		int64_t bytes = 0;
		if (streq(names[i], "blobs"))
			continue;
		if (is_temp_name(names[i]))
			add_other(s, p, PLAIT_CACHE_TEMP);
		else if (measure_path(p, &bytes, NULL) == 0)
			count(s, PLAIT_CACHE_STORE, 0, bytes); /* oci-layout, index.json, its lock */
	}
	plait_strv_free(names);
	names = NULL;

	/* blobs/<other algorithm>: counted, never touched. */
	_cleanup_free_ char *blobs = plait_path_join(s->store, "blobs");
	r = list_dir(blobs, &names, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = plait_path_join(blobs, names[i]);
		int64_t bytes = 0;
		if (!streq(names[i], "sha256") && measure_path(p, &bytes, NULL) == 0)
			count(s, PLAIT_CACHE_STORE, 0, bytes);
	}
	plait_strv_free(names);
	names = NULL;

	r = list_dir(s->blobs_dir, &names, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		_cleanup_free_ char *p = own_entry(s, s->blobs_dir, names[i], S_IFREG, &st);
		if (!p)
			continue;
		PLAIT_ALLOC_GROW(s->blobs, s->n_blobs + 1, s->a_blobs);
		struct blob *b = &s->blobs[s->n_blobs++];
		memset(b, 0, sizeof(*b));
		memcpy(b->hex, names[i], HEX_LEN + 1);
		b->size = st.st_size;
		b->mtime = ts_ns(&st.st_mtim);
		b->group = -1;
		count(s, PLAIT_CACHE_STORE, 1, st.st_size);
	}
	return 0;
}

static int scan_layers(struct scan *s, struct plait_error **err)
{
	_cleanup_strv_free_ char **names = NULL;
	size_t n;
	int r = list_dir(s->layers_dir, &names, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		_cleanup_free_ char *p = own_entry(s, s->layers_dir, names[i], S_IFDIR, &st);
		if (!p)
			continue;
		int64_t bytes = 0;
		if (measure_path(p, &bytes, NULL) < 0)
			continue;
		PLAIT_ALLOC_GROW(s->ldirs, s->n_ldirs + 1, s->a_ldirs);
		struct ldir *l = &s->ldirs[s->n_ldirs++];
		memset(l, 0, sizeof(*l));
		memcpy(l->hex, names[i], HEX_LEN + 1);
		l->bytes = bytes;
		/* The dir's own mtime: its content carries the image's times, and
		 * its atime moves whenever du reads it. */
		l->used = ts_ns(&st.st_mtim);
		l->group = -1;
		count(s, PLAIT_CACHE_LAYERS, 1, bytes);
	}
	return 0;
}

/* Read with the build's own reader (cache.h): dead is exactly a record the
 * build's lookup would not take, or one whose names prune cannot file. */
static bool parse_record(struct record *rec, const char *path)
{
	struct plait_cache_step st;
	rec->dead = true;
	if (plait_cache_step_read(path, &st) != 1)
		return false;
	bool imported = st.source != NULL;
	if (st.empty) {
		rec->empty = true;
		rec->dead = false;
	} else if (plait_digest_is_sha256(st.layer.digest) && is_hex64(plait_digest_hex(st.layer.digest)) &&
		   is_hex64(plait_digest_hex(st.diff_id))) {
		memcpy(rec->blob, plait_digest_hex(st.layer.digest), HEX_LEN + 1);
		memcpy(rec->diff, plait_digest_hex(st.diff_id), HEX_LEN + 1);
		rec->dead = false;
	}
	plait_cache_step_release(&st);
	return imported;
}

static int scan_steps(struct scan *s, struct plait_error **err)
{
	_cleanup_strv_free_ char **names = NULL;
	size_t n;
	int r = list_dir(s->steps_dir, &names, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		_cleanup_free_ char *p = own_entry(s, s->steps_dir, names[i], S_IFREG, &st);
		if (!p)
			continue;
		PLAIT_ALLOC_GROW(s->records, s->n_records + 1, s->a_records);
		struct record *rec = &s->records[s->n_records++];
		memset(rec, 0, sizeof(*rec));
		memcpy(rec->hex, names[i], HEX_LEN + 1);
		rec->size = st.st_size;
		rec->mtime = ts_ns(&st.st_mtim);
		rec->group = -1;
		if (parse_record(rec, p)) {
			s->usage.imported.entries++;
			s->usage.imported.bytes += st.st_size;
		}
		count(s, PLAIT_CACHE_STEPS, 1, st.st_size);
	}
	return 0;
}

/* Every folder entry whose name plait makes is of kind k, the rest temporary. */
static int scan_simple(struct scan *s, const char *sub, enum plait_cache_kind k,
		       struct plait_error **err)
{
	_cleanup_free_ char *dir = plait_path_concat(s->dir, sub);
	_cleanup_strv_free_ char **names = NULL;
	size_t n;
	int r = list_dir(dir, &names, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = plait_path_join(dir, names[i]);
		add_other(s, p, k != PLAIT_CACHE_TEMP && is_hex64(names[i]) ? k : PLAIT_CACHE_TEMP);
	}
	return 0;
}

static int blob_cmp(const void *a, const void *b)
{
	return strcmp(((const struct blob *)a)->hex, ((const struct blob *)b)->hex);
}

static struct blob *find_blob(struct scan *s, const char *hex)
{
	struct blob key;
	memcpy(key.hex, hex, HEX_LEN + 1);
	return s->n_blobs ? bsearch(&key, s->blobs, s->n_blobs, sizeof(*s->blobs), blob_cmp) : NULL;
}

static void add_pair(struct scan *s, const char *blob_hex, const char *diff_hex)
{
	PLAIT_ALLOC_GROW(s->pairs, s->n_pairs + 1, s->a_pairs);
	struct pair *p = &s->pairs[s->n_pairs++];
	memcpy(p->blob, blob_hex, HEX_LEN + 1);
	memcpy(p->diff, diff_hex, HEX_LEN + 1);
}

/* Manifests tie base-image layer blobs (which have no step record) to their
 * diff_ids, and must go when a layer they list goes. */
static void scan_manifest(struct scan *s, size_t bi)
{
	struct blob *b = &s->blobs[bi];
	if (b->size <= 0 || b->size > (int64_t)PLAIT_MANIFEST_MAX)
		return;
	_cleanup_free_ char *p = plait_path_join(s->blobs_dir, b->hex);
	_cleanup_close_ int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char c;
	if (fd < 0 || read(fd, &c, 1) != 1 || c != '{')
		return; /* a compressed layer: do not read it all */
	struct plait_buf data = PLAIT_BUF_INIT, cbuf = PLAIT_BUF_INIT;
	struct plait_manifest m = { 0 };
	struct plait_image_config cfg = { 0 };
	_cleanup_free_ char *cp = NULL;
	if (plait_buf_read_file(&data, p, PLAIT_MANIFEST_MAX) < 0 ||
	    plait_manifest_parse(data.buf, data.len, &m, NULL) < 0 || m.n_layers == 0)
		goto out;
	PLAIT_ALLOC_GROW(s->manifests, s->n_manifests + 1, s->a_manifests);
	struct manifest *mf = &s->manifests[s->n_manifests++];
	mf->blob = bi;
	mf->layers = xcalloc(m.n_layers, sizeof(*mf->layers));
	mf->n_layers = 0;
	for (size_t i = 0; i < m.n_layers; i++)
		if (plait_digest_is_sha256(m.layers[i].digest) && is_hex64(plait_digest_hex(m.layers[i].digest)))
			memcpy(mf->layers[mf->n_layers++], plait_digest_hex(m.layers[i].digest), HEX_LEN + 1);

	if (!plait_digest_is_sha256(m.config.digest) || !is_hex64(plait_digest_hex(m.config.digest)))
		goto out;
	cp = plait_path_join(s->blobs_dir, plait_digest_hex(m.config.digest));
	if (plait_buf_read_file(&cbuf, cp, PLAIT_MANIFEST_MAX) < 0 ||
	    plait_image_config_parse(cbuf.buf, cbuf.len, &cfg, NULL) < 0)
		goto out;
	size_t n = 0;
	while (cfg.diff_ids && cfg.diff_ids[n])
		n++;
	if (n != m.n_layers)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const char *d = m.layers[i].digest, *di = cfg.diff_ids[i];
		if (plait_digest_is_sha256(d) && plait_digest_is_sha256(di) &&
		    is_hex64(plait_digest_hex(d)) && is_hex64(plait_digest_hex(di)))
			add_pair(s, plait_digest_hex(d), plait_digest_hex(di));
	}
out:
	plait_image_config_release(&cfg);
	plait_manifest_release(&m);
	plait_buf_release(&data);
	plait_buf_release(&cbuf);
}

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = strcmp(x->diff, y->diff);
	return c ? c : strcmp(x->blob, y->blob);
}

static int group_cmp(const void *a, const void *b)
{
	return strcmp(((const struct group *)a)->diff, ((const struct group *)b)->diff);
}

static int find_group(struct scan *s, const char *diff_hex)
{
	struct group key;
	memcpy(key.diff, diff_hex, HEX_LEN + 1);
	struct group *g = s->n_groups ? bsearch(&key, s->groups, s->n_groups, sizeof(*s->groups), group_cmp)
				      : NULL;
	return g ? (int)(g - s->groups) : -1;
}

static void group_use(struct scan *s, int g, int64_t t)
{
	s->groups[g].any = true;
	if (t > s->groups[g].used)
		s->groups[g].used = t;
}

/* Layers as units: every blob, dir and record of one diff_id. */
static void make_groups(struct scan *s)
{
	for (size_t i = 0; i < s->n_blobs; i++)
		scan_manifest(s, i);
	for (size_t i = 0; i < s->n_records; i++)
		if (!s->records[i].dead && !s->records[i].empty)
			add_pair(s, s->records[i].blob, s->records[i].diff);
	if (s->n_pairs)
		qsort(s->pairs, s->n_pairs, sizeof(*s->pairs), pair_cmp);
	s->groups = xcalloc(s->n_pairs + 1, sizeof(*s->groups));
	for (size_t i = 0; i < s->n_pairs; i++)
		if (!s->n_groups || !streq(s->groups[s->n_groups - 1].diff, s->pairs[i].diff))
			memcpy(s->groups[s->n_groups++].diff, s->pairs[i].diff, HEX_LEN + 1);
	for (size_t i = 0; i < s->n_pairs; i++) {
		struct blob *b = find_blob(s, s->pairs[i].blob);
		if (b && b->group < 0) {
			b->group = find_group(s, s->pairs[i].diff);
			group_use(s, b->group, b->mtime);
		}
	}
	for (size_t i = 0; i < s->n_ldirs; i++) {
		struct ldir *l = &s->ldirs[i];
		l->group = find_group(s, l->hex);
		if (l->group >= 0)
			group_use(s, l->group, l->used);
	}
	for (size_t i = 0; i < s->n_records; i++) {
		struct record *rec = &s->records[i];
		if (rec->dead || rec->empty)
			continue;
		struct blob *b = find_blob(s, rec->blob);
		if (!b || b->group < 0) {
			rec->dead = true; /* lookup_step misses on it already */
			continue;
		}
		rec->group = b->group;
		group_use(s, rec->group, rec->mtime);
	}
}

static void add_unit(struct scan *s, enum unit_type type, size_t idx, int prio, int64_t used,
		     const char *name)
{
	PLAIT_ALLOC_GROW(s->units, s->n_units + 1, s->a_units);
	s->units[s->n_units++] = (struct unit){ type, idx, prio, used, name };
}

static int unit_cmp(const void *a, const void *b)
{
	const struct unit *x = a, *y = b;
	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	if (x->used != y->used)
		return x->used < y->used ? -1 : 1;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void make_units(struct scan *s)
{
	make_groups(s);
	for (size_t i = 0; i < s->n_groups; i++)
		if (s->groups[i].any)
			add_unit(s, UNIT_GROUP, i, 1, s->groups[i].used, s->groups[i].diff);
	for (size_t i = 0; i < s->n_blobs; i++)
		if (s->blobs[i].group < 0)
			add_unit(s, UNIT_BLOB, i, 1, s->blobs[i].mtime, s->blobs[i].hex);
	for (size_t i = 0; i < s->n_ldirs; i++)
		if (s->ldirs[i].group < 0)
			add_unit(s, UNIT_LDIR, i, 1, s->ldirs[i].used, s->ldirs[i].hex);
	for (size_t i = 0; i < s->n_records; i++)
		if (s->records[i].group < 0)
			add_unit(s, UNIT_RECORD, i, s->records[i].dead ? 0 : 1, s->records[i].mtime,
				 s->records[i].hex);
	for (size_t i = 0; i < s->n_others; i++)
		add_unit(s, UNIT_OTHER, i, s->others[i].kind == PLAIT_CACHE_TEMP ? 0 : 1,
			 s->others[i].used, s->others[i].path);
	if (s->n_units)
		qsort(s->units, s->n_units, sizeof(*s->units), unit_cmp);
}

static int scan_all(struct scan *s, const char *dir, struct plait_error **err)
{
	s->dir = xstrdup(dir);
	s->store = plait_path_concat(dir, "store");
	s->blobs_dir = plait_path_join(s->store, "blobs/sha256");
	s->layers_dir = plait_path_concat(dir, "layers");
	s->steps_dir = plait_path_concat(dir, "steps");
	int r = scan_store(s, err);
	if (r >= 0)
		r = scan_layers(s, err);
	if (r >= 0)
		r = scan_steps(s, err);
	if (r >= 0)
		r = scan_simple(s, "mounts", PLAIT_CACHE_MOUNTS, err);
	if (r >= 0)
		r = scan_simple(s, "work", PLAIT_CACHE_TEMP, err);
	if (r < 0)
		return r;
	if (s->n_blobs)
		qsort(s->blobs, s->n_blobs, sizeof(*s->blobs), blob_cmp);
	return 0;
}

static void sum_total(struct plait_cache_usage *u)
{
	u->total = (struct plait_cache_count){ 0, 0 };
	for (int k = 0; k < PLAIT_CACHE_N_KINDS; k++) {
		u->total.entries += u->kind[k].entries;
		u->total.bytes += u->kind[k].bytes;
	}
}

/* A missing cache is empty; anything else that is not a directory is an error. */
static int check_dir(const char *dir, bool *exists, struct plait_error **err)
{
	struct stat st;
	*exists = false;
	if (!dir || !*dir)
		return plait_error_set(err, PLAIT_E_USAGE, "no cache directory given");
	if (stat(dir, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot read cache directory '%s'", dir);
	}
	if (!S_ISDIR(st.st_mode))
		return plait_error_set(err, PLAIT_E_USAGE, "cache directory '%s' is not a directory", dir);
	*exists = true;
	return 0;
}

int plait_cache_usage(const char *dir, struct plait_cache_usage *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	bool exists;
	int r = check_dir(dir, &exists, err);
	if (r < 0 || !exists)
		return r;
	struct scan s = { 0 };
	r = scan_all(&s, dir, err);
	if (r >= 0) {
		*out = s.usage;
		sum_total(out);
	}
	scan_release(&s);
	return r < 0 ? r : 0;
}

/* ------------------------------------------------------------ pruning */

struct pruner {
	struct scan *s;
	const struct plait_cache_prune_opts *o;
	struct plait_cache_usage *freed;
	bool blobs_removed;
};

static int remove_path(struct pruner *p, const char *path, enum plait_cache_kind k, int64_t bytes,
		       struct plait_error **err)
{
	if (!p->o->dry_run) {
		int r = plait_rm_rf(path);
		if (r < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, r, "cannot remove '%s' from the cache",
						     path);
	}
	p->freed->kind[k].entries++;
	p->freed->kind[k].bytes += bytes;
	return 0;
}

static int remove_blob(struct pruner *p, struct blob *b, struct plait_error **err);

static int remove_record(struct pruner *p, struct record *rec, struct plait_error **err)
{
	if (rec->removed)
		return 0;
	_cleanup_free_ char *path = plait_path_join(p->s->steps_dir, rec->hex);
	rec->removed = true;
	return remove_path(p, path, PLAIT_CACHE_STEPS, rec->size, err);
}

/* A manifest that lists a removed layer is a broken image: it goes first. */
static int remove_blob(struct pruner *p, struct blob *b, struct plait_error **err)
{
	if (b->removed)
		return 0;
	b->removed = true;
	for (size_t i = 0; i < p->s->n_manifests; i++) {
		struct manifest *m = &p->s->manifests[i];
		for (size_t j = 0; j < m->n_layers && !p->s->blobs[m->blob].removed; j++) {
			if (!streq(m->layers[j], b->hex))
				continue;
			int r = remove_blob(p, &p->s->blobs[m->blob], err);
			if (r < 0)
				return r;
		}
	}
	_cleanup_free_ char *path = plait_path_join(p->s->blobs_dir, b->hex);
	p->blobs_removed = true;
	return remove_path(p, path, PLAIT_CACHE_STORE, b->size, err);
}

static int remove_ldir(struct pruner *p, struct ldir *l, struct plait_error **err)
{
	if (l->removed)
		return 0;
	_cleanup_free_ char *path = plait_path_join(p->s->layers_dir, l->hex);
	l->removed = true;
	return remove_path(p, path, PLAIT_CACHE_LAYERS, l->bytes, err);
}

/* Records first, then the blob, then the dir: interrupted at any point, no
 * record names a missing blob. */
static int remove_group(struct pruner *p, int g, struct plait_error **err)
{
	struct scan *s = p->s;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < s->n_records; i++)
		if (s->records[i].group == g)
			r = remove_record(p, &s->records[i], err);
	for (size_t i = 0; r >= 0 && i < s->n_blobs; i++)
		if (s->blobs[i].group == g)
			r = remove_blob(p, &s->blobs[i], err);
	for (size_t i = 0; r >= 0 && i < s->n_ldirs; i++)
		if (s->ldirs[i].group == g)
			r = remove_ldir(p, &s->ldirs[i], err);
	return r;
}

static int remove_unit(struct pruner *p, const struct unit *u, struct plait_error **err)
{
	struct scan *s = p->s;
	switch (u->type) {
	case UNIT_GROUP:
		return remove_group(p, (int)u->idx, err);
	case UNIT_BLOB:
		return remove_blob(p, &s->blobs[u->idx], err);
	case UNIT_LDIR:
		return remove_ldir(p, &s->ldirs[u->idx], err);
	case UNIT_RECORD:
		return remove_record(p, &s->records[u->idx], err);
	case UNIT_OTHER: {
		struct other *o = &s->others[u->idx];
		if (o->removed)
			return 0;
		o->removed = true;
		return remove_path(p, o->path, o->kind, o->bytes, err);
	}
	}
	return 0;
}

static bool blob_gone(struct scan *s, const char *digest)
{
	if (!plait_digest_is_sha256(digest))
		return false;
	struct blob *b = find_blob(s, plait_digest_hex(digest));
	return b && b->removed;
}

/* Drop index.json entries whose manifest was removed, under the store's lock
 * (a flock of the layout directory, as core/store.c's lock_index takes it)
 * and by rename, as the store writes it. */
static int fix_index(struct pruner *p, struct plait_error **err)
{
	struct scan *s = p->s;
	_cleanup_free_ char *path = plait_path_join(s->store, "index.json");
	_cleanup_close_ int lfd = open(s->store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot lock '%s'", s->store);
	struct plait_buf data = PLAIT_BUF_INIT, out = PLAIT_BUF_INIT, tmp = PLAIT_BUF_INIT;
	struct plait_index idx = { 0 };
	_cleanup_close_ int fd = -1;
	int r = plait_buf_read_file(&data, path, PLAIT_MANIFEST_MAX);
	if (r < 0) {
		r = r == -ENOENT ? 0 : plait_error_set_errno(err, PLAIT_E_IO, r, "cannot read '%s'", path);
		goto out;
	}
	r = plait_index_parse(data.buf, data.len, &idx, err);
	if (r < 0) {
		plait_error_wrap(err, "'%s'", path);
		goto out;
	}
	size_t kept = 0;
	for (size_t i = 0; i < idx.n_manifests; i++) {
		if (blob_gone(s, idx.manifests[i].digest)) {
			plait_descriptor_release(&idx.manifests[i]);
			continue;
		}
		idx.manifests[kept++] = idx.manifests[i];
	}
	if (kept == idx.n_manifests)
		goto out;
	idx.n_manifests = kept;
	r = plait_index_serialise(&idx, &out, err);
	if (r < 0)
		goto out;
	plait_buf_addf(&tmp, "%s/.index.json.tmp-XXXXXX", s->store);
	fd = mkostemp(tmp.buf, O_CLOEXEC);
	if (fd < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot write '%s'", tmp.buf);
		goto out;
	}
	r = plait_write_all(fd, out.buf, out.len);
	if (r >= 0 && (fchmod(fd, 0644) < 0 || rename(tmp.buf, path) < 0))
		r = -errno;
	if (r < 0) {
		unlink(tmp.buf);
		r = plait_error_set_errno(err, PLAIT_E_IO, r, "cannot write '%s'", path);
	} else {
		p->freed->kind[PLAIT_CACHE_STORE].bytes += (int64_t)data.len - (int64_t)out.len;
	}
out:
	plait_index_release(&idx);
	plait_buf_release(&data);
	plait_buf_release(&out);
	plait_buf_release(&tmp);
	return r < 0 ? r : 0;
}

int plait_cache_prune(const char *dir, const struct plait_cache_prune_opts *o,
		      struct plait_cache_prune_result *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	bool exists;
	int r = check_dir(dir, &exists, err);
	if (r < 0 || !exists)
		return r;
	if (!o->all && o->keep_bytes < 0)
		return plait_error_set(err, PLAIT_E_USAGE, "cannot keep a negative size (%lld bytes)",
				       (long long)o->keep_bytes);

	_cleanup_close_ int lockfd = -1;
	if (!o->dry_run) {
		_cleanup_free_ char *lock = plait_path_concat(dir, "lock");
		lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (lockfd < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s'", lock);
		if (flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
			if (errno == EWOULDBLOCK)
				return plait_error_set(err, PLAIT_E_RETRYABLE,
						       "cannot prune '%s': the cache is in use by a running build; try again when it ends",
						       dir);
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot lock '%s'", lock);
		}
	}

	struct scan s = { 0 };
	r = scan_all(&s, dir, err);
	if (r < 0)
		goto out;
	make_units(&s);
	out->before = s.usage;
	sum_total(&out->before);

	struct pruner p = { &s, o, &out->freed, false };
	for (size_t i = 0; i < s.n_units; i++) {
		const struct unit *u = &s.units[i];
		sum_total(&out->freed);
		if (!o->all && u->prio > 0 &&
		    out->before.total.bytes - out->freed.total.bytes <= o->keep_bytes)
			break;
		r = remove_unit(&p, u, err);
		if (r < 0)
			break;
	}
	if (o->all && !o->dry_run && r >= 0) {
		/* the build context digest memo: only a cache of file digests */
		_cleanup_free_ char *memo = plait_path_concat(dir, "context-digests");
		(void)unlink(memo);
	}
	if (p.blobs_removed && !o->dry_run) {
		int r2 = fix_index(&p, r < 0 ? NULL : err);
		if (r >= 0)
			r = r2;
	}
	sum_total(&out->freed);
	for (int k = 0; k < PLAIT_CACHE_N_KINDS; k++) {
		out->after.kind[k].entries = out->before.kind[k].entries - out->freed.kind[k].entries;
		out->after.kind[k].bytes = out->before.kind[k].bytes - out->freed.kind[k].bytes;
	}
	sum_total(&out->after);
out:
	scan_release(&s);
	return r < 0 ? r : 0;
}
