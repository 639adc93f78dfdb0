/* core/context.c - see context.h. Resolution walks one component at a time
 * from descriptors it opened itself, so neither a symlink nor a ".." can lead
 * out of the root; openat2 is only a faster path for plait_context_openat. */
#include "context.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "buf.h"

#include "banned.h"

#define MAX_SYMLINK_HOPS 40

/* File digests remembered across builds (see plait_context_set_memo). */
struct memo_item {
	char *key; /* "dev ino size mtime ctime path" */
	char digest[PLAIT_SHA256_DIGEST_SIZE];
};

struct plait_context {
	char *path;
	int dirfd;
	struct plait_ignore *ig;
	char *memo_file;
	bool memo_loaded, memo_dirty;
	struct memo_item *memo; /* sorted by key */
	size_t n_memo, alloc_memo;
	struct memo_item *learnt; /* this run's, unsorted */
	size_t n_learnt, alloc_learnt;
};

/* Set once the kernel (or a seccomp filter) says openat2 does not exist. */
static int openat2_missing;

/* ---- lists ---- */

void plait_context_list_release(struct plait_context_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n_entries; i++) {
		free(l->entries[i].path);
		free(l->entries[i].link_target);
	}
	for (size_t i = 0; i < l->n_sources; i++)
		free(l->sources[i].name);
	free(l->entries);
	free(l->sources);
	*l = (struct plait_context_list)PLAIT_CONTEXT_LIST_INIT;
}

void plait_context_list_exclude(struct plait_context_list *l, const struct plait_ignore *ig)
{
	if (!ig)
		return;
	bool *drop = xcalloc(l->n_entries + 1, sizeof(*drop));
	for (size_t s = 0; s < l->n_sources; s++)
		for (size_t i = l->sources[s].first; i < l->sources[s].first + l->sources[s].count; i++)
			drop[i] = *l->entries[i].rel && plait_ignore_match(ig, l->entries[i].rel);
	size_t *moved = xcalloc(l->n_entries + 1, sizeof(*moved));
	size_t n = 0;
	for (size_t i = 0; i < l->n_entries; i++) {
		moved[i] = n;
		if (drop[i]) {
			free(l->entries[i].path);
			free(l->entries[i].link_target);
			continue;
		}
		l->entries[n++] = l->entries[i];
	}
	moved[l->n_entries] = n;
	for (size_t s = 0; s < l->n_sources; s++) {
		size_t first = l->sources[s].first, end = first + l->sources[s].count;
		l->sources[s].first = moved[first];
		l->sources[s].count = moved[end] - moved[first];
	}
	l->n_entries = n;
	free(moved);
	free(drop);
}

/* Append an entry for path (rel starts at rel_off); link_target is taken. */
static void add_entry(struct plait_context_list *l, const char *path, size_t rel_off, const struct stat *st,
		      char *link_target)
{
	PLAIT_ALLOC_GROW(l->entries, l->n_entries + 1, l->alloc_entries);
	struct plait_context_entry *e = &l->entries[l->n_entries++];
	*e = (struct plait_context_entry){
		.path = xstrdup(path),
		.mode = st->st_mode,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.size = st->st_size,
		.mtime_sec = st->st_mtim.tv_sec,
		.mtime_nsec = st->st_mtim.tv_nsec,
		.ctime_sec = st->st_ctim.tv_sec,
		.ctime_nsec = st->st_ctim.tv_nsec,
		.dev = st->st_dev,
		.rdev = st->st_rdev,
		.ino = st->st_ino,
		.nlink = st->st_nlink,
		.link_target = link_target,
	};
	e->rel = e->path + rel_off;
}

static void drop_last_entry(struct plait_context_list *l)
{
	struct plait_context_entry *e = &l->entries[--l->n_entries];
	free(e->path);
	free(e->link_target);
}

/* ---- open / free ---- */

int plait_context_open_with_ignore(const char *dir, struct plait_ignore *ig, struct plait_context **out,
				   struct plait_error **err)
{
	_cleanup_ignore_ struct plait_ignore *owned = ig;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return plait_error_set(err, PLAIT_E_NOT_FOUND, "build context '%s' not found", dir);
		if (errno == ENOTDIR)
			return plait_error_set(err, PLAIT_E_USAGE, "build context '%s' is not a directory", dir);
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open build context '%s'", dir);
	}
	struct plait_context *ctx = xcalloc(1, sizeof(*ctx));
	ctx->path = xstrdup(dir);
	ctx->dirfd = fd;
	ctx->ig = TAKE_PTR(owned);
	*out = ctx;
	return 0;
}

int plait_context_open(const char *dir, const char *dockerfile, struct plait_context **out,
		       struct plait_error **err)
{
	struct plait_ignore *ig = NULL;
	int r = plait_ignore_load(dir, dockerfile, &ig, err);
	if (r < 0)
		return r;
	return plait_context_open_with_ignore(dir, ig, out, err);
}

void plait_context_free(struct plait_context *ctx)
{
	if (!ctx)
		return;
	if (ctx->dirfd >= 0)
		close(ctx->dirfd);
	plait_ignore_free(ctx->ig);
	free(ctx->path);
	for (size_t i = 0; i < ctx->n_memo; i++)
		free(ctx->memo[i].key);
	for (size_t i = 0; i < ctx->n_learnt; i++)
		free(ctx->learnt[i].key);
	free(ctx->memo);
	free(ctx->learnt);
	free(ctx->memo_file);
	free(ctx);
}

const char *plait_context_path(const struct plait_context *ctx)
{
	return ctx->path;
}

int plait_context_dirfd(const struct plait_context *ctx)
{
	return ctx->dirfd;
}

const struct plait_ignore *plait_context_ignore(const struct plait_context *ctx)
{
	return ctx->ig;
}

/* ---- resolution ---- */

/* readlinkat into a new string; 0 or -errno. name "" reads an O_PATH link fd. */
static int read_link(int dfd, const char *name, char **out)
{
	size_t size = 256;
	for (;;) {
		_cleanup_free_ char *b = xmalloc(size);
		ssize_t n = readlinkat(dfd, name, b, size);
		if (n < 0)
			return -errno;
		if ((size_t)n < size) {
			b[n] = '\0';
			*out = TAKE_PTR(b);
			return 0;
		}
		size *= 2;
	}
}

struct resolved {
	int fd;		       /* the final object, opened with the requested flags */
	struct stat st;
	struct plait_buf path; /* where it is, from the root, symlinks resolved */
	char *excluded_link;   /* the first symlink followed that the rules exclude */
};
#define RESOLVED_INIT { .fd = -1, .path = PLAIT_BUF_INIT }

static void resolved_release(struct resolved *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	plait_buf_release(&r->path);
	free(r->excluded_link);
	r->excluded_link = NULL;
}

/* Resolve rel (relative, cleaned or not) from the root one component at a
 * time with O_NOFOLLOW. follow: symlinks are followed inside the root (an
 * absolute target restarts at the root, ".." stops there); !follow: any
 * symlink fails with -ELOOP. The final object is opened with flags (O_PATH,
 * or O_RDONLY...). Returns 0 or -errno. */
static int resolve(struct plait_context *ctx, const char *rel, bool follow, int flags, struct resolved *res)
{
	_cleanup_buf_ struct plait_buf todo = PLAIT_BUF_INIT;
	int *fds = NULL;
	size_t *offs = NULL, n = 0, alloc_fds = 0, alloc_offs = 0, pos = 0;
	unsigned hops = 0;
	int r = 0;

	plait_buf_adds(&todo, rel);
	for (;;) {
		while (todo.buf[pos] == '/')
			pos++;
		if (!todo.buf[pos])
			break;
		size_t end = pos;
		while (todo.buf[end] && todo.buf[end] != '/')
			end++;
		_cleanup_free_ char *comp = xstrndup(todo.buf + pos, end - pos);
		pos = end;
		const char *rest = todo.buf + pos;
		while (*rest == '/')
			rest++;
		bool last = !*rest;

		if (streq(comp, "."))
			continue;
		if (streq(comp, "..")) {
			if (n > 0) {
				close(fds[--n]);
				plait_buf_setlen(&res->path, offs[n]);
			}
			continue;
		}
		int top = n ? fds[n - 1] : ctx->dirfd;
		_cleanup_close_ int fd = openat(top, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = -errno;
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			if (!follow || ++hops > MAX_SYMLINK_HOPS) {
				r = -ELOOP;
				goto out;
			}
			_cleanup_free_ char *target = NULL;
			r = read_link(fd, "", &target);
			if (r < 0)
				goto out;
			if (!res->excluded_link && ctx->ig) {
				_cleanup_buf_ struct plait_buf lp = PLAIT_BUF_INIT;
				plait_buf_addf(&lp, "%s%s%s", res->path.buf, res->path.len ? "/" : "", comp);
				if (plait_ignore_match(ctx->ig, lp.buf))
					res->excluded_link = plait_buf_detach(&lp, NULL);
			}
			if (target[0] == '/') {
				while (n > 0)
					close(fds[--n]);
				plait_buf_setlen(&res->path, 0);
			}
			_cleanup_buf_ struct plait_buf next = PLAIT_BUF_INIT;
			plait_buf_addf(&next, "%s/%s", target, rest);
			plait_buf_reset(&todo);
			plait_buf_add(&todo, next.buf, next.len);
			pos = 0;
			continue;
		}
		if (!last && !S_ISDIR(st.st_mode)) {
			r = -ENOTDIR;
			goto out;
		}
		PLAIT_ALLOC_GROW(fds, n + 1, alloc_fds);
		PLAIT_ALLOC_GROW(offs, n + 1, alloc_offs);
		offs[n] = res->path.len;
		fds[n++] = TAKE_FD(fd);
		if (res->path.len)
			plait_buf_addch(&res->path, '/');
		plait_buf_adds(&res->path, comp);
	}

	/* Reopen the final object by name from its parent: never through a link. */
	if (n == 0) {
		res->fd = openat(ctx->dirfd, ".", flags | O_CLOEXEC);
	} else {
		const char *name = res->path.buf + offs[n - 1] + (offs[n - 1] ? 1 : 0);
		int parent = n > 1 ? fds[n - 2] : ctx->dirfd;
		res->fd = openat(parent, name, flags | O_NOFOLLOW | O_CLOEXEC);
	}
	if (res->fd < 0 || fstat(res->fd, &res->st) < 0)
		r = -errno;
out:
	while (n > 0)
		close(fds[--n]);
	free(fds);
	free(offs);
	return r;
}

static int try_openat2(int dirfd, const char *path, int flags, bool follow, int *fd_out)
{
	if (__atomic_load_n(&openat2_missing, __ATOMIC_RELAXED))
		return -ENOSYS;
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | (follow ? 0 : RESOLVE_NO_SYMLINKS),
	};
	for (int tries = 0; tries < 8; tries++) {
		long fd = syscall(SYS_openat2, dirfd, *path ? path : ".", &how, sizeof(how));
		if (fd >= 0) {
			*fd_out = (int)fd;
			return 0;
		}
		if (errno == EAGAIN) /* a concurrent rename: the kernel asks to retry */
			continue;
		if (errno == ENOSYS || errno == EPERM) {
			__atomic_store_n(&openat2_missing, 1, __ATOMIC_RELAXED);
			return -ENOSYS;
		}
		return -errno;
	}
	return -EAGAIN;
}

/* Clean a source or path: "/x" is "x"; NULL when it climbs out of the root. */
static char *clean_in_root(const char *p)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	plait_path_clean(p, &b);
	if (streq(b.buf, "..") || startswith(b.buf, "../"))
		return NULL;
	if (b.buf[0] == '/')
		return xstrdup(b.buf + 1);
	if (streq(b.buf, "."))
		return xstrdup("");
	return plait_buf_detach(&b, NULL);
}

int plait_context_openat(struct plait_context *ctx, const char *relpath, int flags, bool follow,
			 int *fd_out, struct plait_error **err)
{
	_cleanup_free_ char *rel = clean_in_root(relpath);
	if (!rel)
		return plait_error_set(err, PLAIT_E_USAGE, "path '%s' is outside the build context", relpath);
	int r = try_openat2(ctx->dirfd, rel, flags, follow, fd_out);
	if (r == -ENOSYS) {
		struct resolved res = RESOLVED_INIT;
		r = resolve(ctx, rel, follow, flags, &res);
		if (r == 0)
			*fd_out = TAKE_FD(res.fd);
		resolved_release(&res);
	}
	if (r == -ENOENT)
		return plait_error_set(err, PLAIT_E_NOT_FOUND, "open '%s' in build context '%s': not found", rel,
				       ctx->path);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "open '%s' in build context '%s'", rel, ctx->path);
	return 0;
}

/* ---- walking ---- */

/* Sorted names in the directory dfd (without "." and ".."). */
static int list_dir(int dfd, char ***names_out, size_t *n_out)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = -errno;
		close(fd);
		return e;
	}
	char **names = NULL;
	size_t n = 0, alloc = 0;
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		plait_strv_add(&names, &n, &alloc, de->d_name);
	}
	int r = errno ? -errno : 0;
	closedir(d);
	if (r < 0) {
		plait_strv_free(names);
		return r;
	}
	plait_strv_sort(names);
	*names_out = names;
	*n_out = n;
	return 0;
}

/* Append what is not ignored below the directory dfd, whose path is path,
 * to out; entries' rel starts at rel_off. With out NULL, only set *found
 * when something below is included (and stop there). */
static int walk_dir(struct plait_context *ctx, int dfd, struct plait_buf *path, size_t rel_off,
		    struct plait_context_list *out, bool *found, struct plait_error **err)
{
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0;
	int r = list_dir(dfd, &names, &n);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "read directory '%s' in build context '%s'",
					     path->len ? path->buf : ".", ctx->path);

	for (size_t i = 0; i < n && !(found && *found); i++) {
		size_t save = path->len;
		if (path->len)
			plait_buf_addch(path, '/');
		plait_buf_adds(path, names[i]);

		struct stat st;
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) /* gone since readdir */
				goto next;
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "stat '%s' in build context '%s'", path->buf,
						  ctx->path);
			goto fail;
		}
		bool excluded = plait_ignore_match(ctx->ig, path->buf);
		if (S_ISDIR(st.st_mode)) {
			if (excluded && !plait_ignore_may_include_below(ctx->ig, path->buf))
				goto next;
			if (!out && !excluded) {
				*found = true;
				goto next;
			}
			_cleanup_close_ int cfd = openat(dfd, names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				r = plait_error_set_errno(err, PLAIT_E_IO, errno, "open directory '%s' in build context '%s'",
							  path->buf, ctx->path);
				goto fail;
			}
			size_t idx = out ? out->n_entries : 0;
			if (out)
				add_entry(out, path->buf, rel_off, &st, NULL);
			r = walk_dir(ctx, cfd, path, rel_off, out, found, err);
			if (r < 0)
				goto fail;
			/* an excluded directory is there only to hold what an exception re-included */
			if (out && excluded && out->n_entries == idx + 1)
				drop_last_entry(out);
		} else {
			if (excluded)
				goto next;
			if (!out) {
				*found = true;
				goto next;
			}
			char *target = NULL;
			if (S_ISLNK(st.st_mode)) {
				r = read_link(dfd, names[i], &target);
				if (r < 0) {
					r = plait_error_set_errno(err, PLAIT_E_IO, r, "read symlink '%s' in build context '%s'",
								  path->buf, ctx->path);
					goto fail;
				}
			}
			add_entry(out, path->buf, rel_off, &st, target);
		}
	next:
		plait_buf_setlen(path, save);
		continue;
	fail:
		plait_buf_setlen(path, save);
		return r;
	}
	return 0;
}

/* ---- sources ---- */

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* Resolve one expanded source and append it. With wildcard, a source that
 * does not exist or is ignored is skipped silently. */
static int add_source(struct plait_context *ctx, const char *named, const char *instr, bool wildcard,
		      struct plait_context_list *out, struct plait_error **err)
{
	struct resolved res = RESOLVED_INIT;
	const char *shown = *named ? named : ".";
	int r = resolve(ctx, named, true, O_PATH, &res);
	if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP) {
		resolved_release(&res);
		if (wildcard)
			return 0;
		if (r == -ELOOP)
			return plait_error_set(err, PLAIT_E_NOT_FOUND,
					       "%s source '%s' not found in the build context: too many levels of symbolic links",
					       instr, shown);
		return plait_error_set(err, PLAIT_E_NOT_FOUND, "%s source '%s' not found in the build context", instr,
				       shown);
	}
	if (r < 0) {
		resolved_release(&res);
		return plait_error_set_errno(err, PLAIT_E_IO, r, "%s source '%s' in build context '%s'", instr, shown,
					     ctx->path);
	}

	/* Does it exist in what BuildKit would have transferred? */
	const struct plait_ignore_rule *by = NULL;
	if (res.excluded_link)
		by = plait_ignore_match_rule(ctx->ig, res.excluded_link);
	if (!by && res.path.len) {
		by = plait_ignore_match_rule(ctx->ig, res.path.buf);
		if (by && S_ISDIR(res.st.st_mode) && plait_ignore_may_include_below(ctx->ig, res.path.buf)) {
			bool found = false;
			r = walk_dir(ctx, res.fd, &res.path, 0, NULL, &found, err);
			if (r < 0) {
				resolved_release(&res);
				return r;
			}
			if (found)
				by = NULL;
		}
	}
	if (by) {
		resolved_release(&res);
		if (wildcard)
			return 0;
		return plait_error_set(err, PLAIT_E_NOT_FOUND, "%s source '%s' is excluded by %s (line %u: '%s')", instr,
				       shown, base_name(ctx->ig->source), by->line, by->pattern);
	}

	PLAIT_ALLOC_GROW(out->sources, out->n_sources + 1, out->alloc_sources);
	struct plait_context_source *s = &out->sources[out->n_sources++];
	*s = (struct plait_context_source){ .name = xstrdup(*named ? named : "."), .first = out->n_entries };
	add_entry(out, res.path.buf, res.path.len, &res.st, NULL);
	if (S_ISDIR(res.st.st_mode)) {
		size_t rel_off = res.path.len ? res.path.len + 1 : 0;
		r = walk_dir(ctx, res.fd, &res.path, rel_off, out, NULL, err);
		if (r < 0) {
			resolved_release(&res);
			return r;
		}
	}
	s = &out->sources[out->n_sources - 1];
	s->count = out->n_entries - s->first;
	resolved_release(&res);
	return 0;
}

/* Expand the wildcard components of comps[i..n) below named. */
static int expand(struct plait_context *ctx, struct plait_buf *named, char **comps, size_t i, size_t n,
		  const char *instr, struct plait_context_list *out, struct plait_error **err)
{
	size_t save = named->len;
	int r = 0;

	for (; i < n && !plait_glob_has_wildcards(comps[i]); i++) {
		if (named->len)
			plait_buf_addch(named, '/');
		plait_buf_adds(named, comps[i]);
	}
	if (i == n) {
		r = add_source(ctx, named->buf, instr, true, out, err);
		plait_buf_setlen(named, save);
		return r;
	}

	struct resolved res = RESOLVED_INIT;
	r = resolve(ctx, named->buf, true, O_PATH, &res);
	if (r < 0 || !S_ISDIR(res.st.st_mode)) {
		resolved_release(&res);
		plait_buf_setlen(named, save);
		if (r == 0 || r == -ENOENT || r == -ENOTDIR || r == -ELOOP)
			return 0; /* nothing to match in */
		return plait_error_set_errno(err, PLAIT_E_IO, r, "%s source '%s' in build context '%s'", instr,
					     named->buf, ctx->path);
	}
	_cleanup_strv_free_ char **names = NULL;
	size_t nn = 0;
	r = list_dir(res.fd, &names, &nn);
	resolved_release(&res);
	if (r < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, r, "read directory '%s' in build context '%s'",
					  named->len ? named->buf : ".", ctx->path);
		plait_buf_setlen(named, save);
		return r;
	}
	size_t dir_len = named->len;
	for (size_t k = 0; k < nn && r == 0; k++) {
		if (plait_glob_match(comps[i], names[k]) != 1)
			continue;
		if (named->len)
			plait_buf_addch(named, '/');
		plait_buf_adds(named, names[k]);
		r = expand(ctx, named, comps, i + 1, n, instr, out, err);
		plait_buf_setlen(named, dir_len);
	}
	plait_buf_setlen(named, save);
	return r;
}

int plait_context_resolve(struct plait_context *ctx, const char *src, const char *instruction,
			  struct plait_context_list *out, struct plait_error **err)
{
	const char *instr = instruction ? instruction : "COPY";
	if (!src)
		return plait_error_set(err, PLAIT_E_USAGE, "%s source is missing", instr);
	/* An empty source ("COPY \"\" /dst/", or an unset variable) names the
	 * context root, as in BuildKit. */
	if (!*src)
		src = ".";
	_cleanup_free_ char *named = clean_in_root(src);
	if (!named)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "%s source '%s' is outside the build context: sources are relative to the context root, "
				       "move the file into the context or pass a larger context",
				       instr, src);
	if (!plait_glob_has_wildcards(named))
		return add_source(ctx, named, instr, false, out, err);

	_cleanup_strv_free_ char **comps = NULL;
	size_t n = 0, alloc = 0;
	for (char *p = named, *tok; (tok = strsep(&p, "/"));) {
		const char *why;
		if (plait_glob_validate(tok, &why) < 0)
			return plait_error_set(err, PLAIT_E_USAGE, "%s source '%s': invalid pattern: %s", instr, src, why);
		PLAIT_ALLOC_GROW(comps, n + 2, alloc);
		comps[n++] = xstrdup(tok);
		comps[n] = NULL;
	}
	_cleanup_buf_ struct plait_buf buf = PLAIT_BUF_INIT;
	return expand(ctx, &buf, comps, 0, n, instr, out, err);
}

int plait_context_walk(struct plait_context *ctx, struct plait_context_list *out, struct plait_error **err)
{
	return add_source(ctx, "", "COPY", false, out, err);
}

/* ---- reading and digests ---- */

int plait_context_open_entry(struct plait_context *ctx, const struct plait_context_entry *e, int *fd_out,
			     struct plait_error **err)
{
	_cleanup_close_ int fd = -1;
	int r = plait_context_openat(ctx, e->path, O_RDONLY, false, &fd, err);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "stat '%s' in build context '%s'", e->path,
					     ctx->path);
	if (st.st_dev != e->dev || st.st_ino != e->ino || st.st_size != e->size ||
	    (st.st_mode & S_IFMT) != (e->mode & S_IFMT))
		return plait_error_set(err, PLAIT_E_IO, "'%s' in build context '%s' changed while the build read it",
				       e->path, ctx->path);
	*fd_out = TAKE_FD(fd);
	return 0;
}

char plait_context_type_char(mode_t m)
{
	switch (m & S_IFMT) {
	case S_IFREG:
		return 'f';
	case S_IFDIR:
		return 'd';
	case S_IFLNK:
		return 'l';
	case S_IFCHR:
		return 'c';
	case S_IFBLK:
		return 'b';
	case S_IFIFO:
		return 'p';
	default:
		return 's';
	}
}

/* A NUL-terminated field: paths and link targets cannot contain NUL. */
static void field(struct plait_sha256 *h, const char *s)
{
	plait_sha256_update(h, s, strlen(s) + 1);
}

/* ---- the digest memo ---- */

static int memo_cmp(const void *a, const void *b)
{
	return strcmp(((const struct memo_item *)a)->key, ((const struct memo_item *)b)->key);
}

void plait_context_set_memo(struct plait_context *ctx, const char *file)
{
	free(ctx->memo_file);
	ctx->memo_file = xstrdup(file);
	ctx->memo_loaded = false;
}

/* Lines of "<digest> <key>"; anything malformed ends the load (a cache). */
static void memo_load(struct plait_context *ctx)
{
	ctx->memo_loaded = true;
	struct plait_buf data = PLAIT_BUF_INIT;
	if (plait_buf_read_file(&data, ctx->memo_file, 256u << 20) < 0 || !data.len) {
		plait_buf_release(&data);
		return;
	}
	for (char *save = NULL, *line = strtok_r(data.buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		if (!sp || (size_t)(sp - line) != PLAIT_SHA256_DIGEST_SIZE - 1)
			break;
		*sp = '\0';
		if (!plait_digest_is_sha256(line))
			break;
		PLAIT_ALLOC_GROW(ctx->memo, ctx->n_memo + 1, ctx->alloc_memo);
		struct memo_item *m = &ctx->memo[ctx->n_memo++];
		memcpy(m->digest, line, PLAIT_SHA256_DIGEST_SIZE);
		m->key = xstrdup(sp + 1);
	}
	plait_buf_release(&data);
	if (ctx->n_memo > 1)
		qsort(ctx->memo, ctx->n_memo, sizeof(*ctx->memo), memo_cmp);
}

static char *memo_key(const struct plait_context *ctx, const struct plait_context_entry *e)
{
	struct plait_buf k = PLAIT_BUF_INIT;
	plait_buf_addf(&k, "%llu %llu %lld %lld.%09ld %lld.%09ld %s/%s", (unsigned long long)e->dev,
		       (unsigned long long)e->ino, (long long)e->size, (long long)e->mtime_sec, e->mtime_nsec,
		       (long long)e->ctime_sec, e->ctime_nsec, ctx->path, e->path);
	/* a newline in a name would break the file's lines: such files are not memoised */
	char *s = plait_buf_detach(&k, NULL);
	if (strchr(s, '\n')) {
		free(s);
		return NULL;
	}
	return s;
}

void plait_context_save_memo(struct plait_context *ctx)
{
	if (!ctx->memo_file || !ctx->memo_dirty)
		return;
	/* What is on disk now (another build may have added to it), then ours. */
	struct plait_context fresh = { .memo_file = ctx->memo_file };
	memo_load(&fresh);
	struct plait_buf out = PLAIT_BUF_INIT;
	for (size_t i = 0; i < fresh.n_memo; i++) /* a key twice is harmless */
		plait_buf_addf(&out, "%s %s\n", fresh.memo[i].digest, fresh.memo[i].key);
	for (size_t i = 0; i < ctx->n_learnt; i++)
		plait_buf_addf(&out, "%s %s\n", ctx->learnt[i].digest, ctx->learnt[i].key);
	for (size_t i = 0; i < fresh.n_memo; i++)
		free(fresh.memo[i].key);
	free(fresh.memo);
	/* Too big: keep only this run's (a cache may forget). */
	if (out.len > (64u << 20)) {
		plait_buf_reset(&out);
		for (size_t i = 0; i < ctx->n_learnt; i++)
			plait_buf_addf(&out, "%s %s\n", ctx->learnt[i].digest, ctx->learnt[i].key);
	}
	(void)plait_replace_file(ctx->memo_file, out.buf, out.len); /* only a cache */
	plait_buf_release(&out);
	ctx->memo_dirty = false;
}

static bool memo_lookup(struct plait_context *ctx, const char *key, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	if (!ctx->memo_loaded)
		memo_load(ctx);
	if (ctx->n_memo == 0)
		return false; /* bsearch wants a real array, even for none */
	struct memo_item want = { .key = (char *)key };
	const struct memo_item *m = bsearch(&want, ctx->memo, ctx->n_memo, sizeof(*ctx->memo), memo_cmp);
	if (!m)
		return false;
	memcpy(out, m->digest, PLAIT_SHA256_DIGEST_SIZE);
	return true;
}

static int hash_file_read(struct plait_context *ctx, const struct plait_context_entry *e,
			  char out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err);

/* A file's digest: from the memo when its identity, size and times are what
 * they were when it was read last, else read (and remembered unless it
 * changed so recently that a same-second change could hide, as git's index
 * does for "racy" entries). */
static int hash_file(struct plait_context *ctx, const struct plait_context_entry *e,
		     char out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err)
{
	_cleanup_free_ char *key = ctx->memo_file ? memo_key(ctx, e) : NULL;
	if (key && memo_lookup(ctx, key, out))
		return 0;
	int r = hash_file_read(ctx, e, out, err);
	if (r < 0 || !key)
		return r;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	if (e->mtime_sec >= now.tv_sec - 1 || e->ctime_sec >= now.tv_sec - 1)
		return 0;
	PLAIT_ALLOC_GROW(ctx->learnt, ctx->n_learnt + 1, ctx->alloc_learnt);
	ctx->learnt[ctx->n_learnt].key = TAKE_PTR(key);
	memcpy(ctx->learnt[ctx->n_learnt++].digest, out, PLAIT_SHA256_DIGEST_SIZE);
	ctx->memo_dirty = true;
	return 0;
}

int plait_context_entry_digest(struct plait_context *ctx, const struct plait_context_entry *e,
			       char out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err)
{
	return hash_file(ctx, e, out, err);
}

static int hash_file_read(struct plait_context *ctx, const struct plait_context_entry *e,
			  char out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err)
{
	_cleanup_close_ int fd = -1;
	int r = plait_context_open_entry(ctx, e, &fd, err);
	if (r < 0)
		return r;
	struct plait_sha256 h;
	r = plait_sha256_init(&h, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *buf = xmalloc(1 << 16);
	int64_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 16);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "read '%s' in build context '%s'", e->path,
						  ctx->path);
			plait_sha256_release(&h);
			return r;
		}
		if (n == 0)
			break;
		plait_sha256_update(&h, buf, (size_t)n);
		total += n;
	}
	plait_sha256_final(&h, out);
	plait_sha256_release(&h);
	if (total != e->size)
		return plait_error_set(err, PLAIT_E_IO, "'%s' in build context '%s' changed while the build read it",
				       e->path, ctx->path);
	return 0;
}

struct seen_inode {
	dev_t dev;
	ino_t ino;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
};

int plait_context_digest(struct plait_context *ctx, const struct plait_context_list *l,
			 char out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err)
{
	struct plait_sha256 h;
	int r = plait_sha256_init(&h, err);
	if (r < 0)
		return r;
	/* hard links are read once */
	struct seen_inode *seen = NULL;
	size_t n_seen = 0, alloc_seen = 0;

	plait_sha256_update(&h, "plait-context-v1\n", strlen("plait-context-v1\n"));
	for (size_t s = 0; s < l->n_sources; s++) {
		const struct plait_context_source *src = &l->sources[s];
		field(&h, "source");
		field(&h, src->name);
		for (size_t i = src->first; i < src->first + src->count; i++) {
			const struct plait_context_entry *e = &l->entries[i];
			char digest[PLAIT_SHA256_DIGEST_SIZE] = "";
			int64_t size = 0;
			if (S_ISREG(e->mode)) {
				size = e->size;
				bool done = false;
				for (size_t k = 0; k < n_seen && !done; k++) {
					if (seen[k].dev == e->dev && seen[k].ino == e->ino) {
						memcpy(digest, seen[k].digest, sizeof(digest));
						done = true;
					}
				}
				if (!done) {
					r = hash_file(ctx, e, digest, err);
					if (r < 0)
						goto out;
					if (e->nlink > 1) {
						PLAIT_ALLOC_GROW(seen, n_seen + 1, alloc_seen);
						seen[n_seen].dev = e->dev;
						seen[n_seen].ino = e->ino;
						memcpy(seen[n_seen++].digest, digest, sizeof(digest));
					}
				}
			}
			bool dev = S_ISCHR(e->mode) || S_ISBLK(e->mode);
			struct plait_buf b = PLAIT_BUF_INIT;
			plait_buf_addf(&b, "%c %o %u %u %lld", plait_context_type_char(e->mode), (unsigned)(e->mode & 07777),
				       (unsigned)e->uid, (unsigned)e->gid, (long long)size);
			char *tok = b.buf;
			/* the numeric fields go in one by one, each NUL-terminated */
			field(&h, e->rel);
			for (char *p = tok, *t; (t = strsep(&p, " "));)
				field(&h, t);
			plait_buf_release(&b);
			field(&h, e->link_target ? e->link_target : "");
			field(&h, digest);
			plait_buf_addf(&b, "%llu", dev ? (unsigned long long)e->rdev : 0ULL);
			field(&h, b.buf);
			plait_buf_release(&b);
		}
	}
	plait_sha256_final(&h, out);
out:
	plait_sha256_release(&h);
	free(seen);
	return r;
}
