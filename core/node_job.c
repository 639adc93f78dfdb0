/* core/node_job.c - the files of a job sent to a node; see node_job.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "frame.h"
#include "fs.h"
#include "node_job.h"
#include "ref.h"
#include "strv.h"
#include "banned.h"

/* ------------------------------------------------------------ collecting */

int plait_node_files_collect(struct plait_context *ctx, json_t **out, struct plait_error **err)
{
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	int r = plait_context_walk(ctx, &l, err);
	json_t *a = json_array();
	for (size_t i = 0; r >= 0 && i < l.n_entries; i++) {
		const struct plait_context_entry *e = &l.entries[i];
		if (!*e->path)
			continue; /* the root: the job directory itself */
		char t = plait_context_type_char(e->mode);
		if (!strchr("fdlp", t)) {
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "'%s' in build context '%s' is a %s: a job on a node carries files, "
					    "directories, symlinks and fifos only (leave it out with .dockerignore, or "
					    "build this job locally with --builder local)",
					    e->path, plait_context_path(ctx), S_ISSOCK(e->mode) ? "socket" : "device node");
			break;
		}
		char digest[PLAIT_SHA256_DIGEST_SIZE] = "";
		if (t == 'f' && (r = plait_context_entry_digest(ctx, e, digest, err)) < 0)
			break;
		const char ts[2] = { t, 0 };
		json_t *data = t == 'f' ? json_string(digest) : t == 'l' ? json_string(e->link_target ? e->link_target : "")
									  : json_null();
		json_array_append_new(a, json_pack("[s, s, i, I, I, I, I, o, i]", e->path, ts, (int)(e->mode & 07777),
						   (json_int_t)e->uid, (json_int_t)e->gid,
						   (json_int_t)(t == 'f' ? e->size : 0), (json_int_t)e->mtime_sec, data, 0));
	}
	plait_context_save_memo(ctx);
	plait_context_list_release(&l);
	if (r < 0) {
		json_decref(a);
		return r;
	}
	*out = a;
	return 0;
}

/* ------------------------------------------------------------ checking */

void plait_node_files_release(struct plait_node_files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].path);
		free(f->v[i].data);
	}
	free(f->v);
	*f = (struct plait_node_files){ 0 };
}

/* Relative and clean: no empty, "." or ".." component, no leading or
 * trailing '/', no NUL (json strings may hold one). */
static bool clean_path(const char *p, size_t len)
{
	if (!len || len > PATH_MAX || memchr(p, 0, len))
		return false;
	const char *s = p, *end = p + len;
	while (s <= end) {
		const char *e = memchr(s, '/', (size_t)(end - s));
		if (!e)
			e = end;
		size_t n = (size_t)(e - s);
		if (!n || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		s = e + 1;
	}
	return true;
}

static int cmp_path(const void *a, const void *b, void *ud)
{
	const struct plait_node_files *f = ud;
	return strcmp(f->v[*(const size_t *)a].path, f->v[*(const size_t *)b].path);
}

/* The entry at path[0..len) through idx (f's entries sorted by path), or -1. */
static ssize_t find_sorted(const struct plait_node_files *f, const size_t *idx, const char *path, size_t len)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *p = f->v[idx[mid]].path;
		int c = strncmp(p, path, len);
		if (!c)
			c = p[len] ? 1 : 0;
		if (!c)
			return (ssize_t)idx[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int bad_entry(struct plait_error **err, const char *where, size_t i, const char *path, const char *what)
{
	return plait_error_set(err, PLAIT_E_INVALID, "%s: entry %zu%s%s%s: %s", where, i, path ? " ('" : "",
			       path ? path : "", path ? "')" : "", what);
}

int plait_node_files_parse(const json_t *list, const char *where, struct plait_node_files *out,
			   struct plait_error **err)
{
	*out = (struct plait_node_files){ 0 };
	if (!json_is_array(list))
		return plait_error_set(err, PLAIT_E_INVALID, "%s: the file list is not an array", where);
	size_t n = json_array_size(list);
	if (n > PLAIT_NODE_FILES_MAX)
		return plait_error_set(err, PLAIT_E_INVALID, "%s: %zu entries, more than the %d a job may carry",
				       where, n, PLAIT_NODE_FILES_MAX);
	out->v = xcalloc(n + 1, sizeof(*out->v));
	_cleanup_free_ size_t *idx = xcalloc(n + 1, sizeof(*idx));
	int r = 0;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(list, i);
		const char *path, *type;
		size_t plen;
		json_int_t mode, uid, gid, size, mtime, rdev;
		json_t *data;
		json_error_t je;
		if (!json_is_array(e) || json_array_size(e) != 9 ||
		    json_unpack_ex((json_t *)e, &je, JSON_STRICT, "[s%sIIIIIoI]", &path, &plen, &type, &mode, &uid, &gid,
				   &size, &mtime, &data, &rdev) < 0) {
			r = bad_entry(err, where, i, NULL,
				      "not [path, type, mode, uid, gid, size, mtime, data, rdev]");
			break;
		}
		if (!clean_path(path, plen)) {
			r = bad_entry(err, where, i, path, "the path must be relative and clean (no '.', '..' or empty "
							   "components)");
			break;
		}
		if (strlen(type) != 1 || !strchr("fdlp", type[0])) {
			r = bad_entry(err, where, i, path, "the type must be f, d, l or p");
			break;
		}
		if (mode < 0 || mode > 07777 || uid < 0 || uid > UINT32_MAX - 1 || gid < 0 || gid > UINT32_MAX - 1 ||
		    size < 0 || (type[0] != 'f' && size) || rdev != 0) {
			r = bad_entry(err, where, i, path, "mode, owner, size or rdev out of range");
			break;
		}
		const char *ds = json_string_value(data);
		if (type[0] == 'f' && (!ds || !plait_digest_is_sha256(ds))) {
			r = bad_entry(err, where, i, path, "a file's data must be its digest, sha256:<64 hex digits>");
			break;
		}
		if (type[0] == 'l' && (!ds || !*ds || strlen(ds) >= PATH_MAX ||
				       json_string_length(data) != strlen(ds))) {
			r = bad_entry(err, where, i, path, "a symlink's data must be its target");
			break;
		}
		if (type[0] != 'f' && type[0] != 'l' && !json_is_null(data)) {
			r = bad_entry(err, where, i, path, "only files and symlinks have data");
			break;
		}
		struct plait_node_file *f = &out->v[out->n];
		*f = (struct plait_node_file){ .path = xstrdup(path), .type = type[0], .mode = (mode_t)mode,
					       .uid = (uid_t)uid, .gid = (gid_t)gid, .size = size, .mtime = mtime,
					       .data = ds ? xstrdup(ds) : NULL };
		if (size > INT64_MAX - out->bytes) {
			r = bad_entry(err, where, i, path, "the sizes add up to more than a job may carry");
			free(f->path);
			free(f->data);
			break;
		}
		out->bytes += size;
		out->n++;
	}
	/* duplicates and parents, through the entries sorted by path */
	for (size_t i = 0; i < out->n; i++)
		idx[i] = i;
	if (r >= 0)
		qsort_r(idx, out->n, sizeof(*idx), cmp_path, out);
	for (size_t k = 1; r >= 0 && k < out->n; k++)
		if (streq(out->v[idx[k]].path, out->v[idx[k - 1]].path))
			r = bad_entry(err, where, idx[k] > idx[k - 1] ? idx[k] : idx[k - 1], out->v[idx[k]].path,
				      "listed twice");
	for (size_t i = 0; r >= 0 && i < out->n; i++) {
		const char *path = out->v[i].path, *slash = strrchr(path, '/');
		if (!slash)
			continue;
		ssize_t p = find_sorted(out, idx, path, (size_t)(slash - path));
		if (p < 0 || (size_t)p > i)
			r = bad_entry(err, where, i, path, "its directory is not listed before it");
		else if (out->v[p].type != 'd')
			r = bad_entry(err, where, i, path, "its parent is not a directory");
	}
	if (r < 0)
		plait_node_files_release(out);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int plait_node_files_missing(const struct plait_node_files *const *lists, size_t n_lists, const char *extra,
			     struct plait_store *s, char ***out, struct plait_error **err)
{
	/* every digest once: sorted, then unique (n log n, whatever the lists hold) */
	size_t n = extra ? 1 : 0, k = 0;
	for (size_t l = 0; l < n_lists; l++)
		n += lists[l]->n;
	const char **all = xcalloc(n + 1, sizeof(*all));
	if (extra)
		all[k++] = extra;
	for (size_t l = 0; l < n_lists; l++)
		for (size_t i = 0; i < lists[l]->n; i++)
			if (lists[l]->v[i].type == 'f')
				all[k++] = lists[l]->v[i].data;
	qsort(all, k, sizeof(*all), cmp_str);
	char **v = xcalloc(1, sizeof(*v));
	int r = 0;
	for (size_t i = 0; i < k && r >= 0; i++) {
		if (i && streq(all[i], all[i - 1]))
			continue;
		r = plait_store_has(s, all[i], NULL, err);
		if (r == 0)
			plait_strv_push(&v, all[i]);
	}
	free(all);
	if (r < 0) {
		plait_strv_free(v);
		return r;
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------ making */

/* The parent directory of path inside root, opened one component at a time
 * without following anything; *base points at the last component. */
static int open_parent(int rootfd, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	*base = slash ? slash + 1 : path;
	_cleanup_free_ char *parent = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup("");
	int fd = -1;
	int r = plait_open_dir_nofollow(rootfd, parent, &fd);
	return r < 0 ? r : fd;
}

static int set_meta(int dirfd, const char *base, const struct plait_node_file *f, bool root, bool times)
{
	if (root && fchownat(dirfd, base, f->uid, f->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (f->type != 'l' && fchmodat(dirfd, base, f->mode, 0) < 0)
		return -errno;
	if (times) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = f->mtime } };
		if (utimensat(dirfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
	}
	return 0;
}

static int make_one(int rootfd, const struct plait_node_file *f, struct plait_store *s, bool root,
		    struct plait_error **err)
{
	const char *base;
	_cleanup_close_ int dfd = open_parent(rootfd, f->path, &base);
	if (dfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -dfd, "open the directory of '%s'", f->path);
	int r = 0;
	switch (f->type) {
	case 'd':
		r = mkdirat(dfd, base, 0700) < 0 ? -errno : 0;
		break;
	case 'l':
		r = symlinkat(f->data, dfd, base) < 0 ? -errno : 0;
		break;
	case 'p':
		r = mknodat(dfd, base, S_IFIFO | 0600, 0) < 0 ? -errno : 0;
		break;
	case 'f': {
		_cleanup_close_ int in = -1;
		int g = plait_store_open_blob(s, f->data, &in, err);
		if (g < 0)
			return plait_error_wrap(err, "the content of '%s' (%s) was not sent", f->path, f->data);
		_cleanup_close_ int o = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (o < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", f->path);
		r = plait_copy_fd(in, o, NULL, NULL);
		struct stat st;
		if (r >= 0 && (fstat(o, &st) < 0 || st.st_size != f->size))
			return plait_error_set(err, PLAIT_E_INVALID, "'%s': its content (%s) is not %lld bytes", f->path,
					       f->data, (long long)f->size);
		break;
	}
	}
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "create '%s'", f->path);
	/* a directory's mode and time wait until what is in it is made (it is
	 * 0700, the caller's, meanwhile) */
	if (f->type == 'd')
		r = root && fchownat(dfd, base, f->uid, f->gid, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	else
		r = set_meta(dfd, base, f, root, true);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "set the owner, mode or time of '%s'", f->path);
	return 0;
}

int plait_node_files_materialize(const struct plait_node_files *f, struct plait_store *s, const char *dir,
				 struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open the job directory '%s'", dir);
	bool root = geteuid() == 0;
	for (size_t i = 0; i < f->n; i++) {
		int r = make_one(rootfd, &f->v[i], s, root, err);
		if (r < 0)
			return plait_error_wrap(err, "job directory '%s'", dir);
	}
	/* directories: mode and time once nothing more goes in, deepest first */
	for (size_t i = f->n; i-- > 0;) {
		if (f->v[i].type != 'd')
			continue;
		const char *base;
		_cleanup_close_ int dfd = open_parent(rootfd, f->v[i].path, &base);
		int r = dfd < 0 ? dfd : set_meta(dfd, base, &f->v[i], false, true);
		if (r < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, -r, "job directory '%s': set the mode of '%s'", dir,
						     f->v[i].path);
	}
	return 0;
}

/* ------------------------------------------------------------ blobs */

int plait_node_blob_send(int out, const char *digest, int64_t size, int fd, struct plait_error **err)
{
	json_auto_t *ctl = json_pack("{s:s, s:s, s:I}", "type", "blob", "digest", digest, "size", (json_int_t)size);
	int r = plait_frame_write_control(out, ctl, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *buf = xmalloc(1 << 20);
	int64_t left = size;
	while (left > 0) {
		size_t want = left < (1 << 20) ? (size_t)left : (1 << 20);
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "read %s", digest);
		if (n == 0)
			return plait_error_set(err, PLAIT_E_IO, "%s: shorter than its %lld bytes", digest,
					       (long long)size);
		r = plait_frame_write(out, PLAIT_FRAME_CONTENT, buf, (size_t)n, err);
		if (r < 0)
			return r;
		left -= n;
	}
	return plait_frame_write(out, PLAIT_FRAME_END, NULL, 0, err);
}

int plait_node_blob_receive(int in, const json_t *ctl, struct plait_store *s, int64_t max, size_t *n,
			    struct plait_error **err)
{
	const char *digest = json_string_value(json_object_get(ctl, "digest"));
	json_t *sz = json_object_get(ctl, "size");
	if (!digest || !plait_digest_is_sha256(digest) || !json_is_integer(sz) || json_integer_value(sz) < 0 ||
	    json_integer_value(sz) > max)
		return plait_error_set(err, PLAIT_E_INVALID,
				       "frame %zu: a blob needs a sha256 digest and a size of at most %lld bytes", *n,
				       (long long)max);
	int64_t size = json_integer_value(sz);
	struct plait_blob_writer *w = NULL;
	int r = plait_blob_writer_new(s, digest, size, &w, err);
	int64_t got = 0;
	while (r >= 0) {
		struct plait_frame f;
		r = plait_frame_read(in, &f, n, err);
		if (r == 0)
			r = plait_error_set(err, PLAIT_E_NETWORK, "the channel closed inside blob %s", digest);
		if (r < 0)
			break;
		if (f.type == PLAIT_FRAME_END) {
			plait_frame_release(&f);
			break;
		}
		if (f.type != PLAIT_FRAME_CONTENT || (int64_t)f.len > size - got) {
			r = plait_error_set(err, PLAIT_E_INVALID, "frame %zu: %s inside blob %s", *n,
					    f.type != PLAIT_FRAME_CONTENT ? "not content" : "more bytes than announced",
					    digest);
			plait_frame_release(&f);
			break;
		}
		got += (int64_t)f.len;
		r = plait_blob_writer_write(w, f.payload, f.len, err);
		plait_frame_release(&f);
	}
	if (r >= 0)
		r = plait_blob_writer_commit(w, NULL, err);
	plait_blob_writer_free(w);
	return r < 0 ? r : 0;
}

/* ------------------------------------------------------------ the job */

static json_t *strv_json(const char *const *v)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

json_t *plait_node_job_to_json(long id, const struct plait_build_opts *o, const char *const *insecure_registries,
			       const char *const *push, const char *const *ssh_sockets, const char *dockerfile_name,
			       const char *dockerfile_digest, int64_t dockerfile_size, json_t *context, json_t *named)
{
	json_t *m = json_pack("{s:s, s:I, s:s, s:s, s:o, s:{s:s, s:s, s:I}, s:o, s:o, s:o, s:o, s:b, s:b, s:b, s:i}",
			      "type", "job", "id", (json_int_t)id, "platform", o->platform_str, "build_platform",
			      o->build_platform_str, "target", o->target ? json_string(o->target) : json_null(),
			      "dockerfile", "name", dockerfile_name, "digest", dockerfile_digest, "size",
			      (json_int_t)dockerfile_size, "build_args", strv_json(o->build_args), "labels",
			      strv_json(o->labels), "annotations", strv_json(o->annotations), "insecure_registries",
			      strv_json(insecure_registries), "no_cache", o->no_cache, "docker_media_types",
			      o->docker_media_types, "allow_insecure", o->allow_insecure, "compression",
			      (int)o->compression);
	json_object_set_new(m, "source_date_epoch",
			    o->have_epoch ? json_integer((json_int_t)o->source_date_epoch) : json_null());
	json_object_set_new(m, "context", context ? context : json_array());
	json_object_set_new(m, "named", named ? named : json_array());
	json_object_set_new(m, "push", strv_json(push));
	json_t *ssh = json_array();
	for (size_t i = 0; ssh_sockets && i < o->n_ssh; i++)
		json_array_append_new(ssh, json_pack("{s:s, s:s}", "id", o->ssh[i].id, "socket", ssh_sockets[i]));
	json_object_set_new(m, "ssh", ssh);
	return m;
}

void plait_node_job_release(struct plait_node_job *j)
{
	free(j->platform);
	free(j->build_platform);
	free(j->target);
	free(j->dockerfile_name);
	free(j->dockerfile_digest);
	plait_strv_free(j->build_args);
	plait_strv_free(j->labels);
	plait_strv_free(j->annotations);
	plait_strv_free(j->insecure_registries);
	plait_strv_free(j->push);
	for (size_t i = 0; i < j->n_ssh; i++) {
		free((char *)j->ssh[i].id);
		free((char *)j->ssh[i].socket);
	}
	free(j->ssh);
	plait_node_files_release(&j->context);
	for (size_t i = 0; i < j->n_named; i++)
		plait_node_files_release(&j->named_files[i]);
	free(j->named_files);
	plait_strv_free(j->named);
	*j = (struct plait_node_job){ 0 };
}

static int job_strv(const json_t *msg, const char *key, char ***out, struct plait_error **err)
{
	const json_t *a = json_object_get(msg, key);
	*out = xcalloc(1, sizeof(**out));
	if (!json_is_array(a))
		return plait_error_set(err, PLAIT_E_INVALID, "job: '%s' is not a list of strings", key);
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s || json_string_length(json_array_get(a, i)) != strlen(s))
			return plait_error_set(err, PLAIT_E_INVALID, "job: '%s' entry %zu is not a string", key, i);
		*out = xrealloc(*out, (n + 2) * sizeof(**out));
		(*out)[n++] = xstrdup(s);
		(*out)[n] = NULL;
	}
	return 0;
}

static int job_str(const json_t *msg, const char *key, bool optional, char **out, struct plait_error **err)
{
	const json_t *v = json_object_get(msg, key);
	if (optional && (!v || json_is_null(v)))
		return 0;
	const char *s = json_string_value(v);
	if (!s || !*s || json_string_length(v) != strlen(s))
		return plait_error_set(err, PLAIT_E_INVALID, "job: '%s' is not a string", key);
	*out = xstrdup(s);
	return 0;
}

int plait_node_job_parse(const json_t *msg, struct plait_node_job *out, struct plait_error **err)
{
	*out = (struct plait_node_job){ 0 };
	const json_t *id = json_object_get(msg, "id");
	out->id = json_is_integer(id) ? (long)json_integer_value(id) : 0;
	int r = 0;
	if (!json_is_integer(id) || out->id <= 0)
		r = plait_error_set(err, PLAIT_E_INVALID, "job: no positive 'id'");
	if (r >= 0)
		r = job_str(msg, "platform", false, &out->platform, err);
	if (r >= 0)
		r = job_str(msg, "build_platform", false, &out->build_platform, err);
	if (r >= 0)
		r = job_str(msg, "target", true, &out->target, err);
	const json_t *df = json_object_get(msg, "dockerfile");
	if (r >= 0)
		r = job_str(df, "name", false, &out->dockerfile_name, err);
	if (r >= 0)
		r = job_str(df, "digest", false, &out->dockerfile_digest, err);
	const json_t *dsz = json_object_get(df, "size");
	if (r >= 0 && (!plait_digest_is_sha256(out->dockerfile_digest) || strchr(out->dockerfile_name, '/') ||
		       streq(out->dockerfile_name, "..") || streq(out->dockerfile_name, ".") || !json_is_integer(dsz) ||
		       json_integer_value(dsz) < 0))
		r = plait_error_set(err, PLAIT_E_INVALID, "job: 'dockerfile' needs a base name, a sha256 digest and a size");
	if (r >= 0)
		out->dockerfile_size = json_integer_value(dsz);
	if (r >= 0)
		r = job_strv(msg, "build_args", &out->build_args, err);
	if (r >= 0)
		r = job_strv(msg, "labels", &out->labels, err);
	if (r >= 0)
		r = job_strv(msg, "annotations", &out->annotations, err);
	if (r >= 0)
		r = job_strv(msg, "insecure_registries", &out->insecure_registries, err);
	if (r >= 0 && !json_object_get(msg, "push")) /* a sender without the push feature */
		out->push = xcalloc(1, sizeof(*out->push));
	else if (r >= 0)
		r = job_strv(msg, "push", &out->push, err);
	for (char **p = out->push; r >= 0 && p && *p; p++) {
		struct plait_ref ref = { 0 };
		struct plait_error *e = NULL;
		if (plait_ref_parse(*p, &ref, &e) < 0 || ref.tag || ref.digest || !strchr(*p, '/'))
			r = plait_error_set(err, PLAIT_E_INVALID, "job: push '%.300s' is not a repository (host/path)%s%s",
					    *p, e ? ": " : "", e ? e->msg : "");
		plait_error_free(e);
		plait_ref_release(&ref);
	}
	const json_t *ssh = json_object_get(msg, "ssh");
	if (r >= 0 && ssh && (!json_is_array(ssh) || json_array_size(ssh) > 64))
		r = plait_error_set(err, PLAIT_E_INVALID, "job: 'ssh' is not a list of at most 64 agents");
	out->ssh = xcalloc(json_array_size(ssh) + 1, sizeof(*out->ssh));
	for (size_t i = 0; r >= 0 && i < json_array_size(ssh); i++) {
		char *sid = NULL, *sock = NULL;
		r = job_str(json_array_get(ssh, i), "id", false, &sid, err);
		if (r >= 0)
			r = job_str(json_array_get(ssh, i), "socket", false, &sock, err);
		/* only a socket of the node's own naming: it is removed when the job ends */
		if (r >= 0 && (!plait_node_ssh_socket_named(sock) || strchr(sid, ',') || strchr(sid, '=')))
			r = plait_error_set(err, PLAIT_E_INVALID, "job: ssh %zu ('%.100s' at '%.200s') is not an agent this "
					    "node forwards (%s*.sock)", i, sid, sock, PLAIT_NODE_SSH_PREFIX);
		for (size_t k = 0; r >= 0 && k < out->n_ssh; k++)
			if (streq(out->ssh[k].id, sid) || streq(out->ssh[k].socket, sock))
				r = plait_error_set(err, PLAIT_E_INVALID, "job: ssh %zu ('%s') is listed twice", i, sid);
		if (r < 0) {
			free(sid);
			free(sock);
			break;
		}
		out->ssh[out->n_ssh++] = (struct plait_build_ssh){ sid, sock };
	}
	const json_t *comp = json_object_get(msg, "compression");
	if (r >= 0 && (!json_is_integer(comp) || json_integer_value(comp) < PLAIT_LAYER_GZIP ||
		       json_integer_value(comp) > PLAIT_LAYER_UNCOMPRESSED))
		r = plait_error_set(err, PLAIT_E_INVALID, "job: 'compression' is not one plait knows");
	if (r >= 0)
		out->compression = (enum plait_layer_compression)json_integer_value(comp);
	out->no_cache = json_is_true(json_object_get(msg, "no_cache"));
	out->docker_media_types = json_is_true(json_object_get(msg, "docker_media_types"));
	out->allow_insecure = json_is_true(json_object_get(msg, "allow_insecure"));
	const json_t *ep = json_object_get(msg, "source_date_epoch");
	if (r >= 0 && ep && !json_is_null(ep)) {
		if (!json_is_integer(ep) || json_integer_value(ep) < 0)
			r = plait_error_set(err, PLAIT_E_INVALID, "job: 'source_date_epoch' is not a time");
		out->have_epoch = true;
		out->source_date_epoch = json_is_integer(ep) ? json_integer_value(ep) : 0;
	}
	if (r >= 0)
		r = plait_node_files_parse(json_object_get(msg, "context"), "job: the context", &out->context, err);
	const json_t *named = json_object_get(msg, "named");
	if (r >= 0 && !json_is_array(named))
		r = plait_error_set(err, PLAIT_E_INVALID, "job: 'named' is not a list");
	out->named = xcalloc(1, sizeof(*out->named));
	for (size_t i = 0; r >= 0 && i < json_array_size(named); i++) {
		const json_t *e = json_array_get(named, i);
		char *name = NULL;
		r = job_str(e, "name", false, &name, err);
		if (r < 0)
			break;
		plait_strv_push(&out->named, name);
		out->named_files = xrealloc(out->named_files, (out->n_named + 1) * sizeof(*out->named_files));
		struct plait_buf where = PLAIT_BUF_INIT;
		plait_buf_addf(&where, "job: --build-context %s", name);
		free(name);
		r = plait_node_files_parse(json_object_get(e, "files"), where.buf, &out->named_files[out->n_named], err);
		plait_buf_release(&where);
		if (r >= 0)
			out->n_named++;
	}
	if (r < 0)
		plait_node_job_release(out);
	return r;
}

bool plait_node_ssh_socket_named(const char *path)
{
	const char *rest = startswith(path, PLAIT_NODE_SSH_PREFIX) ? path + strlen(PLAIT_NODE_SSH_PREFIX) : NULL;
	return rest && *rest && !strchr(rest, '/') && endswith(rest, ".sock");
}

/* ------------------------------------------------------------ logins */

void plait_node_login_payload(const struct plait_node_login *l, struct plait_buf *out)
{
	const char *f[3] = { l->username, l->password, l->identity_token };
	size_t n = 3;
	for (int i = 0; i < 3; i++)
		n += f[i] ? strlen(f[i]) : 0;
	plait_buf_init(out, n + 1); /* sized once: no stale copy left by a realloc */
	for (int i = 0; i < 3; i++) {
		plait_buf_add(out, f[i] ? f[i] : "", f[i] ? strlen(f[i]) : 0);
		plait_buf_addch(out, '\0');
	}
}

static bool host_ok(const char *h)
{
	size_t n = strlen(h);
	if (!n || n > 255)
		return false;
	for (const char *c = h; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr(".-:[]_", *c))
			return false;
	return true;
}

int plait_node_login_parse(const char *host, const void *payload, size_t len, struct plait_node_login *out,
			   struct plait_error **err)
{
	*out = (struct plait_node_login){ 0 };
	if (!host || !host_ok(host))
		return plait_error_set(err, PLAIT_E_INVALID, "login: '%.300s' is not a registry host", host ? host : "");
	char *f[3] = { NULL };
	const char *p = payload, *end = p + len;
	for (int i = 0; i < 3; i++) {
		const char *z = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
		if (!z) {
			for (int k = 0; k < i; k++)
				plait_free_secret(f[k]);
			return plait_error_set(err, PLAIT_E_INVALID, "login for %s: not three fields", host);
		}
		f[i] = z > p ? xstrndup(p, (size_t)(z - p)) : NULL;
		p = z + 1;
	}
	if (p != end) {
		for (int k = 0; k < 3; k++)
			plait_free_secret(f[k]);
		return plait_error_set(err, PLAIT_E_INVALID, "login for %s: bytes after its fields", host);
	}
	*out = (struct plait_node_login){ xstrdup(host), f[0], f[1], f[2] };
	return 0;
}

void plait_node_login_release(struct plait_node_login *l)
{
	free(l->host);
	free(l->username);
	plait_free_secret(l->password);
	plait_free_secret(l->identity_token);
	*l = (struct plait_node_login){ 0 };
}
