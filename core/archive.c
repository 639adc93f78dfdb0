/* core/archive.c - an OCI archive ("oci-archive:FILE[:REF]"): a tar of an OCI
 * layout. It is unpacked into a temporary layout to be read; written into a
 * temporary layout and packed on commit, so FILE appears (atomically, by
 * rename) only once everything is in it.
 *
 * Unpacking accepts regular files and directories only, with relative names
 * free of "..": an archive cannot write outside its temporary directory.
 *
 * A writer holds an exclusive lock on the archive from open to free, so two
 * copies into one archive add their tags one after the other instead of the
 * last one's replacing the first's. The new file keeps the old one's mode and
 * owner, and a symlinked archive is written where the link points. An empty
 * file counts as no archive yet (mktemp's). */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "endpoint.h"
#include "banned.h"


struct archive_priv {
	char *file;    /* the archive's path (a symlink's target) */
	struct plait_tmpdir tmpdir; /* locked; the unpacked layout is its layout/ */
	char *layout;
	bool for_write;
	bool dirty;    /* something was written: commit packs it */
	const struct plait_endpoint_ops *layout_ops;
	int lock_fd;   /* writers: the archive, flock'ed; -1 */
	bool created;  /* by this open (empty until commit): removed unless committed */
	bool committed;
	struct stat old; /* the archive's before (mode, owner); st_ino 0 when new */
};

static void unhold(int fd);

static bool safe_member_name(const char *name)
{
	if (!*name || name[0] == '/')
		return false;
	const char *p = name;
	while (*p) {
		const char *e = strchrnul(p, '/');
		size_t n = (size_t)(e - p);
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return false;
		p = *e ? e + 1 : e;
	}
	return true;
}

/* mkdir -p the first len bytes of path; "create '<what failed>'" on error. */
static int mkdir_prefix(const char *path, size_t len, struct plait_error **err)
{
	_cleanup_free_ char *p = xstrndup(path, len);
	size_t failed = 0;
	int r = plait_mkdir_p(p, 0755, &failed);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "create '%.*s'", (int)failed, p);
	return 0;
}

static int unpack(const char *file, const char *dir, struct plait_error **err)
{
	_cleanup_(archive_read_freep) struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	if (archive_read_open_filename(a, file, 1 << 16) != ARCHIVE_OK)
		return plait_error_set(err, errno == ENOENT ? PLAIT_E_NOT_FOUND : PLAIT_E_INVALID,
				       "open OCI archive '%s': %s", file, archive_error_string(a));
	struct archive_entry *e;
	char buf[1 << 16];
	for (;;) {
		int ar = archive_read_next_header(a, &e);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar != ARCHIVE_OK)
			return plait_error_set(err, PLAIT_E_INVALID, "read OCI archive '%s': %s", file,
					       archive_error_string(a));
		const char *name = archive_entry_pathname(e);
		while (name && name[0] == '.' && name[1] == '/')
			name += 2;
		if (!name || !*name || streq(name, "."))
			continue;
		if (!safe_member_name(name))
			return plait_error_set(err, PLAIT_E_INVALID,
					       "OCI archive '%s': member '%s' points outside the archive",
					       file, name);
		mode_t type = archive_entry_filetype(e);
		if (type == AE_IFDIR) {
			_cleanup_free_ char *p = plait_path_join(dir, name);
			int r = mkdir_prefix(p, strlen(p), err);
			if (r < 0)
				return r;
			continue;
		}
		if (type != AE_IFREG || archive_entry_hardlink(e))
			return plait_error_set(err, PLAIT_E_INVALID,
					       "OCI archive '%s': member '%s' is not a regular file or directory",
					       file, name);
		struct plait_buf p = PLAIT_BUF_INIT;
		plait_buf_addf(&p, "%s/%s", dir, name);
		int r = mkdir_prefix(p.buf, (size_t)(strrchr(p.buf, '/') - p.buf), err);
		if (r < 0) {
			plait_buf_release(&p);
			return r;
		}
		_cleanup_close_ int fd = open(p.buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", p.buf);
			plait_buf_release(&p);
			return r;
		}
		plait_buf_release(&p);
		for (;;) {
			la_ssize_t n = archive_read_data(a, buf, sizeof(buf));
			if (n < 0)
				return plait_error_set(err, PLAIT_E_INVALID, "read '%s' in OCI archive '%s': %s",
						       name, file, archive_error_string(a));
			if (n == 0)
				break;
			int wr = plait_write_all(fd, buf, (size_t)n);
			if (wr < 0)
				return plait_error_set_errno(err, PLAIT_E_IO, wr, "unpack '%s'", name);
		}
	}
	return 0;
}

/* Collect the layout's files relative to root (pack sorts them, so that
 * archives are reproducible). */
static int list_files(const char *root, const char *rel, char ***v, size_t *n, size_t *alloc,
		      struct plait_error **err)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s%s%s", root, *rel ? "/" : "", rel);
	DIR *d = opendir(p.buf);
	if (!d) {
		int r = plait_error_set_errno(err, PLAIT_E_IO, errno, "read directory '%s'", p.buf);
		plait_buf_release(&p);
		return r;
	}
	plait_buf_release(&p);
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue; /* ".", "..", and the store's lock and temporary files */
		struct plait_buf child = PLAIT_BUF_INIT;
		plait_buf_addf(&child, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
		plait_strv_add(v, n, alloc, child.buf);
		if (de->d_type == DT_DIR)
			r = list_files(root, child.buf, v, n, alloc, err);
		plait_buf_release(&child);
		if (r < 0)
			break;
	}
	closedir(d);
	return r;
}

static int pack(const char *dir, const char *file, const struct stat *old, struct plait_error **err)
{
	char **files = NULL;
	size_t n = 0, alloc = 0;
	int r = list_files(dir, "", &files, &n, &alloc, err);
	if (r < 0) {
		plait_strv_free(files);
		return r;
	}
	plait_strv_sort(files);

	/* Locked while it is written: a plait killed now leaves a stale file
	 * that the next write of this archive removes (core/fs.h). */
	struct plait_tmpdir t = PLAIT_TMPDIR_INIT;
	r = plait_tmpfile_make(file, &t, err);
	if (r < 0) {
		plait_strv_free(files);
		return r;
	}
	struct plait_buf tmp = PLAIT_BUF_INIT;
	plait_buf_adds(&tmp, t.path);
	_cleanup_(archive_write_freep) struct archive *a = archive_write_new();
	_cleanup_(archive_entry_freep) struct archive_entry *e = archive_entry_new();
	char *buf = xmalloc(1 << 20);
	archive_write_set_format_pax_restricted(a);
	if (archive_write_open_fd(a, t.lock_fd) != ARCHIVE_OK) {
		r = plait_error_set_errno(err, PLAIT_E_IO, archive_errno(a), "create '%s'", tmp.buf);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct plait_buf p = PLAIT_BUF_INIT;
		plait_buf_addf(&p, "%s/%s", dir, files[i]);
		struct stat st;
		_cleanup_close_ int fd = open(p.buf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || fstat(fd, &st) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "read '%s'", p.buf);
			plait_buf_release(&p);
			goto out;
		}
		plait_buf_release(&p);
		archive_entry_clear(e);
		archive_entry_set_pathname(e, files[i]);
		archive_entry_set_mtime(e, 0, 0);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		if (S_ISDIR(st.st_mode)) {
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
			archive_entry_set_size(e, 0);
		} else {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_size(e, st.st_size);
		}
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			r = plait_error_set(err, PLAIT_E_IO, "write '%s': %s", tmp.buf, archive_error_string(a));
			goto out;
		}
		if (S_ISREG(st.st_mode)) {
			for (;;) {
				ssize_t k = read(fd, buf, 1 << 20);
				if (k < 0 && errno == EINTR)
					continue;
				if (k < 0) {
					r = plait_error_set_errno(err, PLAIT_E_IO, errno, "read '%s'", files[i]);
					goto out;
				}
				if (k == 0)
					break;
				if (archive_write_data(a, buf, (size_t)k) != k) {
					r = plait_error_set(err, PLAIT_E_IO, "write '%s': %s", tmp.buf,
							    archive_error_string(a));
					goto out;
				}
			}
		}
	}
	if (archive_write_close(a) != ARCHIVE_OK) {
		r = plait_error_set(err, PLAIT_E_IO, "write '%s': %s", tmp.buf, archive_error_string(a));
		goto out;
	}
	{
		int fd = t.lock_fd;
		if (fsync(fd) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "sync '%s'", tmp.buf);
			goto out;
		}
		/* an archive that was there keeps its mode (a private 0600 one stays
		 * private) and, as far as we may, its owner */
		if (old->st_ino) {
			if (fchown(fd, old->st_uid, old->st_gid) < 0 && errno != EPERM) {
				r = plait_error_set_errno(err, PLAIT_E_IO, errno, "chown '%s'", tmp.buf);
				goto out;
			}
			if (fchmod(fd, old->st_mode & 07777) < 0) {
				r = plait_error_set_errno(err, PLAIT_E_IO, errno, "chmod '%s'", tmp.buf);
				goto out;
			}
		} else if (fchmod(fd, 0666 & ~plait_umask()) < 0) { /* as open(2) would have made it */
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "chmod '%s'", tmp.buf);
			goto out;
		}
	}
	if (rename(tmp.buf, file) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "rename '%s' to '%s'", tmp.buf, file);
		goto out;
	}
out:
	/* The writer goes first: it may still write to the descriptor. */
	archive_write_free(TAKE_PTR(a));
	if (r >= 0)
		free(TAKE_PTR(t.path)); /* renamed: nothing left to remove */
	plait_tmpdir_remove(&t);
	free(buf);
	plait_buf_release(&tmp);
	plait_strv_free(files);
	return r;
}

/* The archive kind wraps the layout ops: reads go straight through, writes mark it dirty. */
static struct archive_priv *priv_of(struct plait_endpoint *ep)
{
	return ep->priv;
}

static int archive_get_manifest(struct plait_endpoint *ep, const char *ref, struct plait_buf *body,
				char **media_type, char digest[PLAIT_DIGEST_MAX], struct plait_error **err)
{
	return priv_of(ep)->layout_ops->get_manifest(ep, ref, body, media_type, digest, err);
}

static int archive_has_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			    struct plait_error **err)
{
	return priv_of(ep)->layout_ops->has_blob(ep, d, err);
}

static int archive_fetch_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			      struct plait_blob_writer *w, struct plait_error **err)
{
	return priv_of(ep)->layout_ops->fetch_blob(ep, d, w, err);
}

static int archive_put_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			    const struct plait_blob_source *src, struct plait_error **err)
{
	priv_of(ep)->dirty = true;
	return priv_of(ep)->layout_ops->put_blob(ep, d, src, err);
}

static int archive_put_manifest(struct plait_endpoint *ep, const char *media_type, const void *data,
				size_t len, const char *digest, struct plait_error **err)
{
	priv_of(ep)->dirty = true;
	return priv_of(ep)->layout_ops->put_manifest(ep, media_type, data, len, digest, err);
}

static int archive_tag(struct plait_endpoint *ep, const char *tag, const struct plait_descriptor *d,
		       const void *data, size_t len, struct plait_error **err)
{
	priv_of(ep)->dirty = true;
	return priv_of(ep)->layout_ops->tag(ep, tag, d, data, len, err);
}

static int archive_commit(struct plait_endpoint *ep, struct plait_error **err)
{
	struct archive_priv *p = priv_of(ep);
	if (!p->for_write || !p->dirty)
		return 0;
	int r = pack(p->layout, p->file, &p->old, err);
	if (r < 0)
		return r;
	p->dirty = false;
	p->committed = true;
	return 0;
}

static void oci_archive_free(struct plait_endpoint *ep)
{
	struct archive_priv *p = priv_of(ep);
	if (!p)
		return;
	plait_store_free(TAKE_PTR(ep->store)); /* before its directory goes */
	plait_tmpdir_remove(&p->tmpdir);
	free(p->layout);
	if (p->created && !p->committed)
		unlink(p->file); /* the empty file the lock needed */
	if (p->lock_fd >= 0) {
		unhold(p->lock_fd);
		close(p->lock_fd);
	}
	free(p->file);
	free(p);
}

static const struct plait_endpoint_ops archive_ops = {
	.kind = "oci-archive",
	.get_manifest = archive_get_manifest,
	.has_blob = archive_has_blob,
	.fetch_blob = archive_fetch_blob,
	.put_blob = archive_put_blob,
	.put_manifest = archive_put_manifest,
	.tag = archive_tag,
	.commit = archive_commit,
	.free = oci_archive_free,
};

/* The archives this process holds locked: a second writer here would wait
 * for itself (flock is per open file), so it is refused instead. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held {
	dev_t dev;
	ino_t ino;
} *held;
static size_t n_held;

static bool hold(const struct stat *st)
{
	pthread_mutex_lock(&held_lock);
	bool mine = false;
	for (size_t i = 0; i < n_held && !mine; i++)
		mine = held[i].dev == st->st_dev && held[i].ino == st->st_ino;
	if (!mine) {
		held = xrealloc(held, (n_held + 1) * sizeof(*held));
		held[n_held++] = (struct held){ st->st_dev, st->st_ino };
	}
	pthread_mutex_unlock(&held_lock);
	return !mine;
}

static void unhold(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return;
	pthread_mutex_lock(&held_lock);
	for (size_t i = 0; i < n_held; i++)
		if (held[i].dev == st.st_dev && held[i].ino == st.st_ino) {
			held[i] = held[--n_held];
			break;
		}
	pthread_mutex_unlock(&held_lock);
}

/* Writers: open (creating) the archive file and lock it. The lock is on the
 * inode; one that a commit meanwhile replaced is retried, so the lock held is
 * always on the archive the path names. */
static int lock_archive(const char *file, int *fd_out, bool *created, struct plait_error **err)
{
	for (int tries = 0; tries < 100; tries++) {
		int fd = open(file, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0644);
		*created = fd >= 0;
		if (fd < 0 && errno == EEXIST)
			fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open OCI archive '%s'", file);
		struct stat mine;
		if (fstat(fd, &mine) == 0 && !hold(&mine)) {
			close(fd);
			return plait_error_set(err, PLAIT_E_USAGE,
					       "OCI archive '%s' is already being written by this command (named "
					       "twice?)", file);
		}
		if (flock(fd, LOCK_EX) < 0) {
			int e = errno;
			close(fd);
			return plait_error_set_errno(err, PLAIT_E_IO, e, "cannot lock OCI archive '%s'", file);
		}
		struct stat a, b;
		if (fstat(fd, &a) == 0 && stat(file, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
			*fd_out = fd;
			return 0;
		}
		unhold(fd);
		close(fd); /* replaced (or removed) while we waited: lock what is there now */
	}
	return plait_error_set(err, PLAIT_E_IO, "cannot lock OCI archive '%s': it keeps being replaced", file);
}

int plait_archive_endpoint_open(const char *file, const char *ref, bool for_write,
				struct plait_endpoint **out, struct plait_error **err)
{
	struct plait_tmpdir tmpdir = PLAIT_TMPDIR_INIT;
	_cleanup_free_ char *real = NULL;
	struct plait_store *store = NULL;
	struct archive_priv *p = xcalloc(1, sizeof(*p));
	p->lock_fd = -1;
	int r = plait_mkdtemp("archive", &tmpdir, err);
	if (r < 0) {
		free(p);
		return r;
	}
	/* Below the locked directory: the layout flocks its own (core/fs.h). */
	_cleanup_free_ char *layout_dir = plait_path_join(tmpdir.path, "layout");
	if (mkdir(layout_dir, 0700) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", layout_dir);
		plait_tmpdir_remove(&tmpdir);
		free(p);
		return r;
	}
	/* a symlinked archive is written where the link points */
	real = realpath(file, NULL);
	const char *path = real ? real : file;
	if (for_write) {
		/* Fail now, not after every blob was copied, when the archive cannot be written. */
		_cleanup_free_ char *parent = plait_path_dir(path);
		if (access(parent, W_OK) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno,
						  "cannot write OCI archive '%s': directory '%s'", file, parent);
			goto fail;
		}
		r = lock_archive(path, &p->lock_fd, &p->created, err);
		if (r < 0)
			goto fail;
	}
	struct stat st;
	bool exists = stat(path, &st) == 0 && !p->created;
	if (exists && S_ISREG(st.st_mode) && st.st_size == 0 && for_write)
		exists = false; /* an empty file (mktemp's): no archive yet */
	if (exists)
		p->old = st;
	if (!exists && !for_write) {
		r = plait_error_set(err, PLAIT_E_NOT_FOUND, "OCI archive '%s' does not exist", file);
		goto fail;
	}
	if (exists) {
		r = unpack(path, layout_dir, err);
		if (r < 0)
			goto fail;
	}
	r = plait_store_open(layout_dir, for_write, &store, err);
	if (r < 0) {
		plait_error_wrap(err, "OCI archive '%s'", file);
		goto fail;
	}
	struct plait_buf display = PLAIT_BUF_INIT, name = PLAIT_BUF_INIT;
	plait_buf_addf(&name, "oci-archive:%s", file);
	plait_buf_addf(&display, "%s%s%s", name.buf, ref ? ":" : "", ref ? ref : "");
	plait_store_set_display(store, name.buf);
	/* Borrow the layout ops for the actual work: build a layout endpoint and re-dress it. */
	struct plait_endpoint *layout = plait_layout_endpoint_new(store, name.buf, display.buf, ref);
	plait_buf_release(&display);
	plait_buf_release(&name);
	p->file = xstrdup(path);
	p->tmpdir = tmpdir;
	p->layout = TAKE_PTR(layout_dir);
	p->for_write = for_write;
	p->layout_ops = layout->ops;
	layout->ops = &archive_ops;
	layout->priv = p;
	*out = layout;
	return 0;
fail:
	plait_tmpdir_remove(&tmpdir);
	if (p->created)
		unlink(path);
	if (p->lock_fd >= 0) {
		unhold(p->lock_fd);
		close(p->lock_fd);
	}
	free(p);
	return r;
}
