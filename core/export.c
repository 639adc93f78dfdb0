/* core/export.c - docker archives and root file systems; see export.h. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "export.h"
#include "fs.h"
#include "layer.h"
#include "ref.h"
#include "unpack.h"
#include "userns.h"
#include "util.h"
#include "banned.h"

char *plait_export_platform_dir(const char *platform)
{
	char *d = xstrdup(platform);
	for (char *c = d; *c; c++)
		if (*c == '/')
			*c = '_';
	return d;
}

int plait_export_check_dir(const char *dest, const char *what, struct plait_error **err)
{
	struct stat st;
	if (lstat(dest, &st) < 0)
		return errno == ENOENT ? 0 : plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: cannot read '%s'", what, dest);
	if (!S_ISDIR(st.st_mode))
		return plait_error_set(err, PLAIT_E_USAGE, "%s: '%s' exists and is not a directory: remove it or choose "
						"another dest", what, dest);
	DIR *d = opendir(dest);
	if (!d)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: cannot read '%s'", what, dest);
	size_t n = 0;
	char **names = plait_dir_names(d, false, &n);
	closedir(d);
	plait_strv_free(names);
	if (n)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "%s: '%s' is not empty (plait writes the root file system into a new directory "
				       "and renames it into place, never merging): remove it or choose another dest",
				       what, dest);
	return 0;
}

/* The manifest of one image, read from the store. */
static int read_manifest(struct plait_store *s, const struct plait_export_image *im, struct plait_manifest *m,
			 struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	int r = plait_store_read_blob(s, im->manifest, PLAIT_MANIFEST_MAX, &b, err);
	if (r >= 0)
		r = plait_manifest_parse(b.buf, b.len, m, err);
	if (r < 0)
		plait_error_wrap(err, "%s: read manifest %s", im->platform, im->manifest);
	return r;
}

static const char *hex_of(const char *digest)
{
	const char *c = strchr(digest, ':');
	return c ? c + 1 : digest;
}

/* A blob of the store as the archive member blobs/sha256/<hex>. */
static int write_blob(struct archive *a, struct archive_entry *e, struct plait_store *s, const char *digest,
		      const char *path, char *buf, size_t bufsize, struct plait_error **err)
{
	_cleanup_close_ int fd = -1;
	int r = plait_store_open_blob(s, digest, &fd, err);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "read blob %s", digest);
	struct plait_buf name = PLAIT_BUF_INIT;
	plait_buf_addf(&name, "blobs/sha256/%s", hex_of(digest));
	archive_entry_clear(e);
	archive_entry_set_pathname(e, name.buf);
	plait_buf_release(&name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, st.st_size);
	if (archive_write_header(a, e) != ARCHIVE_OK)
		return plait_error_set(err, PLAIT_E_IO, "write '%s': %s", path, archive_error_string(a));
	for (;;) {
		ssize_t k = read(fd, buf, bufsize);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "read blob %s", digest);
		if (k == 0)
			break;
		if (archive_write_data(a, buf, (size_t)k) != k)
			return plait_error_set(err, PLAIT_E_IO, "write '%s': %s", path, archive_error_string(a));
	}
	return 0;
}

static int write_member(struct archive *a, struct archive_entry *e, const char *name, bool dir, const void *data,
			size_t len, const char *path, struct plait_error **err)
{
	archive_entry_clear(e);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, dir ? 0755 : 0644);
	archive_entry_set_size(e, dir ? 0 : (la_int64_t)len);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (!dir && len && archive_write_data(a, data, len) != (la_ssize_t)len))
		return plait_error_set(err, PLAIT_E_IO, "write '%s': %s", path, archive_error_string(a));
	return 0;
}

/* -t REF as docker's RepoTags want it ("name:tag"), or NULL (by digest). */
static char *repo_tag(const char *ref)
{
	struct plait_ref r = { 0 };
	if (plait_ref_parse(ref, &r, NULL) < 0)
		return NULL;
	char *out = NULL;
	if (!r.digest) {
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "%s%s", ref, r.tag ? "" : ":latest");
		out = plait_buf_detach(&b, NULL);
	}
	plait_ref_release(&r);
	return out;
}

int plait_export_docker_archive_fd(struct plait_store *s, const struct plait_export_image *ims, size_t n,
				   int fd, const char *path, const char *what, struct plait_error **err)
{
	struct plait_manifest *ms = xcalloc(n + 1, sizeof(*ms));
	_cleanup_(archive_write_freep) struct archive *a = archive_write_new();
	_cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
	json_t *list = json_array();
	char **written = NULL;
	char *buf = xmalloc(1 << 20);
	char *text = NULL;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = read_manifest(s, &ims[i], &ms[i], err);
		for (size_t l = 0; r >= 0 && l < ms[i].n_layers; l++)
			if (ms[i].layers[l].media_type && strstr(ms[i].layers[l].media_type, "zstd"))
				r = plait_error_set(err, PLAIT_E_USAGE,
						    "%s: %s layer %s is zstd-compressed, which docker load (Docker "
						    "20.10) cannot read: build with --compression gzip",
						    what, ims[i].platform, ms[i].layers[l].digest);
	}
	if (r < 0)
		goto out;
	archive_write_set_format_pax_restricted(a);
	if (archive_write_open_fd(a, fd) != ARCHIVE_OK) {
		r = plait_error_set_errno(err, PLAIT_E_IO, archive_errno(a), "create '%s'", path);
		goto out;
	}
	r = write_member(a, e, "blobs/", true, NULL, 0, path, err);
	if (r >= 0)
		r = write_member(a, e, "blobs/sha256/", true, NULL, 0, path, err);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		json_t *layers = json_array(), *tags = json_array();
		struct plait_buf cfg = PLAIT_BUF_INIT;
		plait_buf_addf(&cfg, "blobs/sha256/%s", hex_of(ms[i].config.digest));
		for (size_t l = 0; r >= 0 && l <= ms[i].n_layers; l++) {
			const char *d = l == 0 ? ms[i].config.digest : ms[i].layers[l - 1].digest;
			if (l > 0) {
				struct plait_buf lp = PLAIT_BUF_INIT;
				plait_buf_addf(&lp, "blobs/sha256/%s", hex_of(d));
				json_array_append_new(layers, json_string(lp.buf));
				plait_buf_release(&lp);
			}
			if (plait_strv_contains(written, d))
				continue;
			r = write_blob(a, e, s, d, path, buf, 1 << 20, err);
			plait_strv_push(&written, d);
		}
		for (const char *const *t = ims[i].tags; t && *t; t++) {
			_cleanup_free_ char *rt = repo_tag(*t);
			if (rt)
				json_array_append_new(tags, json_string(rt));
		}
		json_t *o = json_object();
		json_object_set_new(o, "Config", json_string(cfg.buf));
		json_object_set_new(o, "RepoTags", json_array_size(tags) ? tags : (json_decref(tags), json_null()));
		json_object_set_new(o, "Layers", layers);
		json_array_append_new(list, o);
		plait_buf_release(&cfg);
	}
	if (r < 0)
		goto out;
	text = json_dumps(list, JSON_COMPACT);
	r = write_member(a, e, "manifest.json", false, text, strlen(text), path, err);
	if (r >= 0 && archive_write_close(a) != ARCHIVE_OK)
		r = plait_error_set(err, PLAIT_E_IO, "write '%s': %s", path, archive_error_string(a));
out:
	if (r < 0)
		plait_error_wrap(err, "%s", what);
	for (size_t i = 0; i < n; i++)
		plait_manifest_release(&ms[i]);
	free(ms);
	json_decref(list);
	plait_strv_free(written);
	free(buf);
	free(text);
	return r;
}

/* mkdir -p the directory path is in. */
static int make_parent(const char *path, const char *what, struct plait_error **err)
{
	_cleanup_free_ char *parent = plait_path_dir(path);
	size_t failed = 0;
	int r = plait_mkdir_p(parent, 0755, &failed);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "%s: cannot create '%.*s'", what, (int)failed,
					     parent);
	return 0;
}

int plait_export_docker_archive(struct plait_store *s, const struct plait_export_image *ims, size_t n,
				const char *file, const char *what, struct plait_error **err)
{
	struct plait_tmpdir t = PLAIT_TMPDIR_INIT;
	int r = make_parent(file, what, err);
	if (r >= 0)
		r = plait_tmpfile_make(file, &t, err);
	if (r < 0)
		return r;
	r = plait_export_docker_archive_fd(s, ims, n, t.lock_fd, t.path, what, err);
	if (r >= 0 && fsync(t.lock_fd) < 0)
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: sync '%s'", what, t.path);
	if (r >= 0 && fchmod(t.lock_fd, 0666 & ~plait_umask()) < 0) /* as open(2) would make it */
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: chmod '%s'", what, t.path);
	if (r >= 0 && rename(t.path, file) < 0)
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: rename '%s' to '%s'", what, t.path, file);
	if (r >= 0)
		free(TAKE_PTR(t.path)); /* renamed: nothing to remove */
	plait_tmpdir_remove(&t);
	return r;
}

/* The layers of im applied in order onto dir. */
static int apply_image(struct plait_store *s, const struct plait_export_image *im, const char *dir, bool no_chown,
		       struct plait_error **err)
{
	struct plait_manifest m = { 0 };
	int r = read_manifest(s, im, &m, err);
	size_t devices = 0;
	for (size_t l = 0; r >= 0 && l < m.n_layers; l++) {
		struct plait_unpack_options uo = { .mode = PLAIT_UNPACK_APPLY,
						   .media_type = m.layers[l].media_type,
						   .no_chown = no_chown,
						   .devices_skipped = &devices };
		r = plait_unpack_blob(s, m.layers[l].digest, dir, &uo, NULL, err);
		if (r < 0)
			plait_error_wrap(err, "%s: layer %s", im->platform, m.layers[l].digest);
	}
	plait_manifest_release(&m);
	return r;
}

int plait_export_rootfs(struct plait_store *s, const struct plait_export_image *ims, size_t n,
			const char *dest, bool as_tar, const char *what, struct plait_error **err)
{
	struct plait_tmpdir t = PLAIT_TMPDIR_INIT;
	struct plait_store *ts = NULL;
	_cleanup_free_ char *root = NULL, *sp = NULL, *parent = plait_path_dir(dest);
	_cleanup_buf_ struct plait_buf blob = PLAIT_BUF_INIT;
	struct plait_layer_options lo = { .compression = PLAIT_LAYER_UNCOMPRESSED };
	struct plait_layer layer = { 0 };
	int r = as_tar ? 0 : plait_export_check_dir(dest, what, err);
	if (r >= 0)
		r = make_parent(dest, what, err);
	if (r >= 0)
		r = plait_tmpdir_make(parent, ".plait-output-", &t, err);
	if (r < 0)
		goto out;
	root = plait_path_join(t.path, "root");
	if (mkdir(root, 0755) < 0 || chmod(root, 0755) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: cannot create '%s'", what, root);
		goto out;
	}
	/* rootless: a tree the user can remove; a tar keeps the image's owners */
	bool no_chown = !as_tar && plait_userns_self()->nested;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		_cleanup_free_ char *sub = n > 1 ? plait_export_platform_dir(ims[i].platform) : NULL;
		_cleanup_free_ char *dir = sub ? plait_path_join(root, sub) : xstrdup(root);
		if (sub && mkdir(dir, 0755) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: cannot create '%s'", what, dir);
			break;
		}
		r = apply_image(s, &ims[i], dir, no_chown, err);
	}
	if (r < 0)
		goto wrap;
	if (!as_tar) {
		/* again: it may have been filled while the jobs ran */
		r = plait_export_check_dir(dest, what, err);
		if (r >= 0 && rename(root, dest) < 0)
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: rename '%s' to '%s'", what, root, dest);
		goto out;
	}
	sp = plait_path_join(t.path, "store");
	r = plait_store_open(sp, true, &ts, err);
	if (r >= 0)
		r = plait_layer_from_tree(ts, root, &lo, &layer, err);
	if (r < 0)
		goto wrap;
	plait_store_blob_path(ts, layer.digest, &blob);
	if (chmod(blob.buf, 0666 & ~plait_umask()) < 0 || rename(blob.buf, dest) < 0)
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: move '%s' to '%s'", what, blob.buf, dest);
	goto out;
wrap:
	plait_error_wrap(err, "%s", what);
out:
	plait_store_free(ts);
	plait_tmpdir_remove(&t);
	return r;
}
