#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "banned.h"

#define OCI_LAYOUT_FILE "oci-layout"
#define OCI_LAYOUT_CONTENT "{\"imageLayoutVersion\":\"1.0.0\"}"
#define INDEX_FILE "index.json"
#define BLOBS_DIR "blobs/sha256"

struct plait_store {
	char *path; /* as given, for messages */
	char *abs;  /* absolute: temp-file names must survive a chdir() */
	int dirfd; /* the layout directory */
	bool volatile_; /* staging: no fsync (plait_store_set_durable) */
	char *display;  /* "oci:<path>", or what the store stands for (an archive) */
};

struct plait_blob_writer {
	struct plait_store *s;
	int fd;
	char *tmp_name; /* fallback dot-file in blobs/sha256/, NULL with O_TMPFILE */
	struct plait_sha256 h;
	char expected[PLAIT_DIGEST_MAX]; /* "" when unknown */
	int64_t expected_size;		 /* -1 when unknown */
	int64_t offset;
	bool spent;
	atomic_bool restarted; /* plait_blob_writer_restart ran at least once */
	/* Sources (plait_blob_writer_source) wait here for bytes; offset and
	 * state change under lock so a reader sees them together. */
	pthread_mutex_t lock;
	pthread_cond_t grown;
	int state; /* 0 writing, 1 committed, -1 abandoned */
	char digest[PLAIT_SHA256_DIGEST_SIZE]; /* once committed */
	int refs; /* under lock: the owner's and each source's */
};

const char *plait_store_path(const struct plait_store *s)
{
	return s->path;
}

/* "blobs/<alg>/<hex>" relative to the layout, for a digest already validated. */
static void blob_relpath(const char *digest, struct plait_buf *out)
{
	const char *colon = strchr(digest, ':');
	plait_buf_adds(out, "blobs/");
	plait_buf_add(out, digest, (size_t)(colon - digest));
	plait_buf_addch(out, '/');
	plait_buf_adds(out, colon + 1);
}

void plait_store_blob_path(const struct plait_store *s, const char *digest, struct plait_buf *out)
{
	plait_buf_adds(out, s->path);
	plait_buf_addch(out, '/');
	/* Never build a path from an unvalidated digest: "sha256:../../x" must not escape. */
	if (plait_digest_validate(digest, NULL) < 0) {
		plait_buf_adds(out, "blobs/invalid-digest");
		return;
	}
	blob_relpath(digest, out);
}

static int fsync_dir_at(int dirfd, const char *rel)
{
	_cleanup_close_ int fd = openat(dirfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

/* Write data to dirfd/name atomically: temp file, fsync, rename, fsync dir.
 * With exclusive, an existing name is left alone (and that is success). */
static int write_file_atomic(struct plait_store *s, const char *name, const char *data, size_t len,
			     bool exclusive, struct plait_error **err)
{
	struct plait_buf tmp = PLAIT_BUF_INIT;
	plait_buf_addf(&tmp, "%s/.%s.tmp-XXXXXX", s->abs, name);
	int r = 0;
	_cleanup_close_ int fd = mkostemp(tmp.buf, O_CLOEXEC);
	if (fd < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot write '%s/%s'", s->path,
					  name);
		goto out;
	}
	if (fchmod(fd, 0644) < 0 || plait_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot write '%s'", tmp.buf);
		unlink(tmp.buf);
		goto out;
	}
	if (exclusive) {
		/* link() fails instead of replacing what another process wrote. */
		if (linkat(AT_FDCWD, tmp.buf, s->dirfd, name, 0) < 0 && errno != EEXIST)
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot create '%s/%s'",
						  s->path, name);
		unlink(tmp.buf);
	} else if (renameat(AT_FDCWD, tmp.buf, s->dirfd, name) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot replace '%s/%s'", s->path,
					  name);
		unlink(tmp.buf);
	}
	if (r == 0)
		fsync_dir_at(s->dirfd, ".");
out:
	plait_buf_release(&tmp);
	return r;
}

static int empty_index_json(struct plait_buf *out, struct plait_error **err)
{
	struct plait_index idx = {.schema_version = 2};
	idx.media_type = (char *)plait_media_type_to_string(PLAIT_MT_OCI_INDEX);
	return plait_index_serialise(&idx, out, err);
}

static int create_layout(struct plait_store *s, struct plait_error **err)
{
	if (mkdirat(s->dirfd, "blobs", 0755) < 0 && errno != EEXIST)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot create '%s/blobs'",
					     s->path);
	if (mkdirat(s->dirfd, BLOBS_DIR, 0755) < 0 && errno != EEXIST)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot create '%s/%s'",
					     s->path, BLOBS_DIR);
	_cleanup_buf_ struct plait_buf idx = PLAIT_BUF_INIT;
	int r = empty_index_json(&idx, err);
	if (r < 0)
		return r;
	/* index.json before oci-layout: a directory with oci-layout is a layout,
	 * so it must be complete the moment that file appears. */
	if ((r = write_file_atomic(s, INDEX_FILE, idx.buf, idx.len, true, err)) < 0)
		return r;
	return write_file_atomic(s, OCI_LAYOUT_FILE, OCI_LAYOUT_CONTENT, strlen(OCI_LAYOUT_CONTENT),
				 true, err);
}

static int check_layout_file(struct plait_store *s, struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_close_ int fd = openat(s->dirfd, OCI_LAYOUT_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot read '%s/%s'", s->path,
					     OCI_LAYOUT_FILE);
	int r = plait_buf_read_fd(&b, fd, 65536);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "cannot read '%s/%s'", s->path,
					     OCI_LAYOUT_FILE);
	json_auto_t *root = json_loadb(b.buf, b.len, 0, NULL);
	json_t *v = json_object_get(root, "imageLayoutVersion");
	if (!json_is_string(v))
		return plait_error_set(
		    err, PLAIT_E_INVALID,
		    "'%s/%s' is not valid: expected {\"imageLayoutVersion\":\"1.0.0\"}", s->path,
		    OCI_LAYOUT_FILE);
	if (!startswith(json_string_value(v), "1."))
		return plait_error_set(err, PLAIT_E_INVALID,
				       "'%s' has OCI layout version '%s'; plait supports 1.x",
				       s->path, json_string_value(v));
	return 0;
}

int plait_store_open(const char *path, bool create, struct plait_store **out,
		     struct plait_error **err)
{
	if (!path || !*path)
		return plait_error_set(err, PLAIT_E_USAGE, "empty OCI layout path");
	struct plait_store *s = xcalloc(1, sizeof(*s));
	s->dirfd = -1;
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	s->path = xstrndup(path, n);
	struct plait_buf d = PLAIT_BUF_INIT;
	plait_buf_addf(&d, "oci:%s", s->path);
	s->display = plait_buf_detach(&d, NULL);
	int r;

	if (create) {
		r = plait_mkdir_p(s->path, 0755, NULL);
		if (r < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, r, "cannot create '%s'",
						  s->path);
			goto fail;
		}
	}
	s->dirfd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		if (errno == ENOENT)
			r = plait_error_set(
			    err, PLAIT_E_NOT_FOUND,
			    "'%s' does not exist; create it with an OCI output first", s->path);
		else if (errno == ENOTDIR)
			r = plait_error_set(err, PLAIT_E_NOT_FOUND,
					    "'%s' is not an OCI layout (not a directory)", s->path);
		else
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s'",
						  s->path);
		goto fail;
	}
	s->abs = realpath(s->path, NULL);
	if (!s->abs) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot resolve '%s'", s->path);
		goto fail;
	}
	if (faccessat(s->dirfd, OCI_LAYOUT_FILE, F_OK, 0) < 0) {
		if (errno != ENOENT) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s/%s'",
						  s->path, OCI_LAYOUT_FILE);
			goto fail;
		}
		if (!create) {
			r = plait_error_set(err, PLAIT_E_NOT_FOUND,
					    "'%s' is not an OCI layout (no oci-layout file)",
					    s->path);
			goto fail;
		}
		if ((r = create_layout(s, err)) < 0)
			goto fail;
	}
	if ((r = check_layout_file(s, err)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	plait_store_free(s);
	return r;
}

void plait_store_free(struct plait_store *s)
{
	if (!s)
		return;
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->path);
	free(s->display);
	free(s->abs);
	free(s);
}

/* ---- blobs ---- */

static int validate_for_store(struct plait_store *s, const char *digest, struct plait_error **err)
{
	int r = plait_digest_validate(digest, err);
	if (r < 0 && err)
		plait_error_wrap(err, "%s", s->display);
	return r;
}

/* blob_relpath of a digest that is first validated (the error names the store). */
static int validated_blob_relpath(struct plait_store *s, const char *digest, struct plait_buf *rel,
				  struct plait_error **err)
{
	int r = validate_for_store(s, digest, err);
	if (r < 0)
		return r;
	blob_relpath(digest, rel);
	return 0;
}

int plait_store_has(struct plait_store *s, const char *digest, int64_t *size,
		    struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf rel = PLAIT_BUF_INIT;
	int r = validated_blob_relpath(s, digest, &rel, err);
	if (r < 0)
		return r;
	struct stat st;
	if (fstatat(s->dirfd, rel.buf, &st, 0) < 0) {
		if (errno == ENOENT)
			return 0;
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot stat '%s/%s'", s->path,
					     rel.buf);
	}
	if (!S_ISREG(st.st_mode))
		return plait_error_set(err, PLAIT_E_INVALID, "'%s/%s' is not a regular file",
				       s->path, rel.buf);
	if (size)
		*size = st.st_size;
	return 1;
}

int plait_store_open_blob(struct plait_store *s, const char *digest, int *fd_out,
			  struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf rel = PLAIT_BUF_INIT;
	int r = validated_blob_relpath(s, digest, &rel, err);
	if (r < 0)
		return r;
	int fd = openat(s->dirfd, rel.buf, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return plait_error_set(err, PLAIT_E_NOT_FOUND,
					       "blob %s not found in %s", digest, s->display);
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s/%s'", s->path,
					     rel.buf);
	}
	*fd_out = fd;
	return 0;
}

int plait_store_read_blob(struct plait_store *s, const char *digest, size_t max,
			  struct plait_buf *out, struct plait_error **err)
{
	_cleanup_close_ int fd = -1;
	int r = plait_store_open_blob(s, digest, &fd, err);
	if (r < 0)
		return r;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno,
					     "cannot stat blob %s in %s", digest, s->display);
	if ((uint64_t)st.st_size > max)
		return plait_error_set(
		    err, PLAIT_E_INVALID,
		    "blob %s in %s is %lld bytes, larger than the %zu byte limit", digest,
		    s->display, (long long)st.st_size, max);
	size_t start = out->len;
	r = plait_buf_read_fd(out, fd, max);
	if (r < 0) {
		plait_buf_setlen(out, start);
		if (r == -EFBIG)
			return plait_error_set(
			    err, PLAIT_E_INVALID,
			    "blob %s in %s is larger than the %zu byte limit", digest, s->display,
			    max);
		return plait_error_set_errno(err, PLAIT_E_IO, r, "cannot read blob %s in %s",
					     digest, s->display);
	}
	/* Callers parse what this returns, so check it is what its name says:
	 * a file edited or damaged on disk must not pass as the real thing. */
	if (plait_digest_is_sha256(digest)) {
		char got[PLAIT_SHA256_DIGEST_SIZE];
		plait_sha256_buf(out->buf + start, out->len - start, got);
		if (!streq(got, digest)) {
			size_t n = out->len - start;
			if (out->alloc)
				plait_buf_setlen(out, start);
			return plait_error_set(
			    err, PLAIT_E_INVALID,
			    "blob %s in %s is corrupt: its %zu bytes hash to %s", digest,
			    s->display, n, got);
		}
	}
	return 0;
}

int plait_store_put_bytes(struct plait_store *s, const void *data, size_t len,
			  char digest_out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err)
{
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(data, len, digest);
	/* Already there: content addressing means it is the same bytes. */
	int r = plait_store_has(s, digest, NULL, err);
	if (r < 0)
		return r;
	if (r == 0) {
		struct plait_blob_writer *w = NULL;
		if ((r = plait_blob_writer_new(s, digest, (int64_t)len, &w, err)) < 0)
			return r;
		r = plait_blob_writer_write(w, data, len, err);
		if (r == 0)
			r = plait_blob_writer_commit(w, NULL, err);
		plait_blob_writer_free(w);
		if (r < 0)
			return r;
	}
	if (digest_out)
		memcpy(digest_out, digest, PLAIT_SHA256_DIGEST_SIZE);
	return 0;
}

int plait_store_remove_blob(struct plait_store *s, const char *digest, struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf rel = PLAIT_BUF_INIT;
	int r = validated_blob_relpath(s, digest, &rel, err);
	if (r < 0)
		return r;
	if (unlinkat(s->dirfd, rel.buf, 0) < 0 && errno != ENOENT)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot remove '%s/%s'",
					     s->path, rel.buf);
	return 0;
}

/* ---- blob writer ---- */

static bool o_tmpfile_disabled(void)
{
	/* Tests force the dot-file path; /proc is needed to link an O_TMPFILE. */
	const char *e = getenv("PLAIT_TEST_NO_O_TMPFILE");
	if (e && *e && !streq(e, "0"))
		return true;
	return access("/proc/self/fd", F_OK) < 0;
}

static int writer_open_file(struct plait_blob_writer *w, struct plait_error **err)
{
	struct plait_store *s = w->s;
	if (mkdirat(s->dirfd, "blobs", 0755) < 0 && errno != EEXIST)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot create '%s/blobs'",
					     s->path);
	if (mkdirat(s->dirfd, BLOBS_DIR, 0755) < 0 && errno != EEXIST)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot create '%s/%s'",
					     s->path, BLOBS_DIR);
	if (!o_tmpfile_disabled()) {
		w->fd = openat(s->dirfd, BLOBS_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
		if (w->fd >= 0)
			return 0;
		/* Only "the file system cannot do this" falls back; real errors are errors. */
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return plait_error_set_errno(err, PLAIT_E_IO, errno,
						     "cannot create a temporary file in '%s/%s'",
						     s->path, BLOBS_DIR);
	}
	struct plait_buf tmp = PLAIT_BUF_INIT;
	plait_buf_addf(&tmp, "%s/%s/.tmp-XXXXXX", s->abs, BLOBS_DIR);
	w->fd = mkostemp(tmp.buf, O_CLOEXEC);
	if (w->fd < 0) {
		int r = plait_error_set_errno(err, PLAIT_E_IO, errno,
					      "cannot create a temporary file in '%s/%s'", s->path,
					      BLOBS_DIR);
		plait_buf_release(&tmp);
		return r;
	}
	w->tmp_name = plait_buf_detach(&tmp, NULL);
	fchmod(w->fd, 0644);
	return 0;
}

int plait_blob_writer_new(struct plait_store *s, const char *expected_digest, int64_t expected_size,
			  struct plait_blob_writer **out, struct plait_error **err)
{
	if (expected_digest) {
		int r = validate_for_store(s, expected_digest, err);
		if (r < 0)
			return r;
		if (!plait_digest_is_sha256(expected_digest))
			return plait_error_set(
			    err, PLAIT_E_INVALID,
			    "cannot store %s in %s: only sha256 blobs are supported",
			    expected_digest, s->display);
	}
	struct plait_blob_writer *w = xcalloc(1, sizeof(*w));
	w->s = s;
	w->fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->grown, NULL);
	w->refs = 1;
	w->expected_size = expected_size < 0 ? -1 : expected_size;
	if (expected_digest)
		memcpy(w->expected, expected_digest, strlen(expected_digest) + 1);
	int r = plait_sha256_init(&w->h, err);
	if (r == 0)
		r = writer_open_file(w, err);
	if (r < 0) {
		plait_blob_writer_free(w);
		return r;
	}
	*out = w;
	return 0;
}

static const char *writer_name(const struct plait_blob_writer *w)
{
	return w->expected[0] ? w->expected : "blob";
}

int plait_blob_writer_write(struct plait_blob_writer *w, const void *data, size_t len,
			    struct plait_error **err)
{
	if (w->spent || w->fd < 0)
		return plait_error_set(err, PLAIT_E_GENERIC, "%s: write after commit",
				       writer_name(w));
	if (__atomic_load_n(&w->state, __ATOMIC_RELAXED) < 0)
		return plait_error_set(err, PLAIT_E_CANCELLED, "%s: abandoned", writer_name(w));
	/* Stop a stream that runs past its declared size before it fills the disk. */
	if (w->expected_size >= 0 && (uint64_t)w->offset + len > (uint64_t)w->expected_size)
		return plait_error_set(err, PLAIT_E_INVALID,
				       "size mismatch for %s: expected %lld bytes, got more",
				       writer_name(w), (long long)w->expected_size);
	int r = plait_write_all(w->fd, data, len);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "cannot write %s to %s",
					     writer_name(w), w->s->display);
	plait_sha256_update(&w->h, data, len);
	pthread_mutex_lock(&w->lock);
	w->offset += (int64_t)len;
	pthread_cond_broadcast(&w->grown);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static void writer_settle(struct plait_blob_writer *w, int state, const char *digest)
{
	pthread_mutex_lock(&w->lock);
	if (w->state == 0 && digest)
		memcpy(w->digest, digest, PLAIT_SHA256_DIGEST_SIZE);
	if (w->state == 0)
		__atomic_store_n(&w->state, state, __ATOMIC_RELEASE); /* write() reads it unlocked */
	pthread_cond_broadcast(&w->grown);
	pthread_mutex_unlock(&w->lock);
}

void plait_blob_writer_abandon(struct plait_blob_writer *w)
{
	if (w)
		writer_settle(w, -1, NULL);
}

static int64_t writer_wait(void *ud, int64_t end)
{
	struct plait_blob_writer *w = ud;
	pthread_mutex_lock(&w->lock);
	while (w->offset < end && w->state == 0)
		pthread_cond_wait(&w->grown, &w->lock);
	int64_t have = w->offset >= end && w->state >= 0 ? w->offset : -1;
	pthread_mutex_unlock(&w->lock);
	return have;
}

static int64_t writer_grown(void *ud, int64_t end, char digest[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_blob_writer *w = ud;
	pthread_mutex_lock(&w->lock);
	while (w->offset < end && w->state == 0)
		pthread_cond_wait(&w->grown, &w->lock);
	int64_t have = w->state >= 0 ? w->offset : -1;
	digest[0] = 0;
	if (w->state == 1)
		memcpy(digest, w->digest, PLAIT_SHA256_DIGEST_SIZE);
	pthread_mutex_unlock(&w->lock);
	return have;
}

static void writer_unref(struct plait_blob_writer *w)
{
	pthread_mutex_lock(&w->lock);
	bool last = --w->refs == 0;
	pthread_mutex_unlock(&w->lock);
	if (!last)
		return;
	plait_sha256_release(&w->h);
	pthread_cond_destroy(&w->grown);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

int plait_blob_writer_source(struct plait_blob_writer *w, struct plait_blob_source *out,
			     struct plait_error **err)
{
	if (w->fd < 0)
		return plait_error_set(err, PLAIT_E_GENERIC, "%s: no file to read", writer_name(w));
	int fd = fcntl(w->fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot read %s being written",
					     writer_name(w));
	pthread_mutex_lock(&w->lock);
	w->refs++;
	pthread_mutex_unlock(&w->lock);
	*out = (struct plait_blob_source){ .fd = fd, .wait = writer_wait, .grown = writer_grown, .ud = w };
	return 0;
}

void plait_blob_source_release(struct plait_blob_source *src)
{
	if (src->fd >= 0)
		close(src->fd);
	src->fd = -1;
	if (src->ud && src->wait == writer_wait)
		writer_unref(src->ud);
	src->ud = NULL;
}

int64_t plait_blob_writer_offset(const struct plait_blob_writer *w)
{
	return w->offset;
}

int plait_blob_writer_restart(struct plait_blob_writer *w, struct plait_error **err)
{
	if (w->spent || w->fd < 0)
		return plait_error_set(err, PLAIT_E_GENERIC, "%s: restart after commit",
				       writer_name(w));
	/* Sources learn of the restart before the file shrinks: a reader that
	 * then finds it short must see "restarted" (copy.c uploads again), and
	 * waits for the new bytes instead of spinning on the old offset. */
	pthread_mutex_lock(&w->lock);
	w->offset = 0;
	atomic_store(&w->restarted, true);
	pthread_mutex_unlock(&w->lock);
	if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot restart %s in %s",
					     writer_name(w), w->s->display);
	plait_sha256_release(&w->h);
	return plait_sha256_init(&w->h, err);
}

/* Drop the temporary file: closing an O_TMPFILE frees it; a dot-file is unlinked. */
static void writer_discard(struct plait_blob_writer *w)
{
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	if (w->tmp_name) {
		unlink(w->tmp_name);
		free(w->tmp_name);
		w->tmp_name = NULL;
	}
}

static int writer_link(struct plait_blob_writer *w, const char *digest, struct plait_error **err)
{
	struct plait_store *s = w->s;
	_cleanup_buf_ struct plait_buf rel = PLAIT_BUF_INIT;
	blob_relpath(digest, &rel);
	if (w->tmp_name) {
		if (renameat(AT_FDCWD, w->tmp_name, s->dirfd, rel.buf) < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno,
						     "cannot name blob '%s/%s'", s->path, rel.buf);
		free(w->tmp_name);
		w->tmp_name = NULL;
		return 0;
	}
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
	if (linkat(AT_FDCWD, proc, s->dirfd, rel.buf, AT_SYMLINK_FOLLOW) < 0 && errno != EEXIST)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot name blob '%s/%s'",
					     s->path, rel.buf);
	/* EEXIST: a concurrent writer stored the same content first. */
	return 0;
}

bool plait_blob_writer_restarted(const struct plait_blob_writer *w)
{
	return atomic_load(&w->restarted);
}

int plait_blob_writer_check(const struct plait_blob_writer *w, struct plait_error **err)
{
	if (w->spent || w->fd < 0)
		return plait_error_set(err, PLAIT_E_GENERIC, "%s: check after commit", writer_name(w));
	if (w->expected_size >= 0 && w->offset != w->expected_size)
		return plait_error_set(err, PLAIT_E_INVALID, "size mismatch for %s: expected %lld bytes, got %lld",
				       w->expected[0] ? w->expected : "blob", (long long)w->expected_size,
				       (long long)w->offset);
	if (!w->expected[0])
		return 0;
	char got[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_peek(&w->h, got);
	if (!streq(w->expected, got))
		return plait_error_set(err, PLAIT_E_INVALID, "digest mismatch for %s: got %s (%lld bytes)", w->expected,
				       got, (long long)w->offset);
	return 0;
}

int plait_blob_writer_commit(struct plait_blob_writer *w, char digest_out[PLAIT_SHA256_DIGEST_SIZE],
			     struct plait_error **err)
{
	if (w->spent || w->fd < 0)
		return plait_error_set(err, PLAIT_E_GENERIC, "%s: commit twice", writer_name(w));
	w->spent = true;
	char got[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_final(&w->h, got);
	int r = 0;
	if (w->expected_size >= 0 && w->offset != w->expected_size) {
		r = plait_error_set(err, PLAIT_E_INVALID,
				    "size mismatch for %s: expected %lld bytes, got %lld",
				    w->expected[0] ? w->expected : got, (long long)w->expected_size,
				    (long long)w->offset);
		goto out;
	}
	if (w->expected[0] && !streq(w->expected, got)) {
		r = plait_error_set(err, PLAIT_E_INVALID,
				    "digest mismatch for %s: got %s (%lld bytes)", w->expected, got,
				    (long long)w->offset);
		goto out;
	}
	if (!w->s->volatile_ && fsync(w->fd) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot sync %s in %s", got,
					  w->s->display);
		goto out;
	}
	if ((r = writer_link(w, got, err)) < 0)
		goto out;
	/* The name must survive a crash too, not only the content. */
	r = w->s->volatile_ ? 0 : fsync_dir_at(w->s->dirfd, BLOBS_DIR);
	if (r < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, r, "cannot sync '%s/%s'", w->s->path,
					  BLOBS_DIR);
		goto out;
	}
	if (digest_out)
		memcpy(digest_out, got, PLAIT_SHA256_DIGEST_SIZE);
out:
	writer_settle(w, r < 0 ? -1 : 1, r < 0 ? NULL : got);
	writer_discard(w);
	return r;
}

void plait_blob_writer_free(struct plait_blob_writer *w)
{
	if (!w)
		return;
	writer_settle(w, -1, NULL);
	writer_discard(w);
	writer_unref(w); /* the last source's release frees it otherwise */
}

void plait_store_set_display(struct plait_store *s, const char *display)
{
	free(s->display);
	s->display = xstrdup(display);
}

void plait_store_set_durable(struct plait_store *s, bool durable)
{
	s->volatile_ = !durable;
}

/* ---- index.json ---- */

static int read_index_unlocked(struct plait_store *s, struct plait_index *out,
			       struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_close_ int fd = openat(s->dirfd, INDEX_FILE, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			/* A layout without index.json simply holds no images yet. */
			memset(out, 0, sizeof(*out));
			out->schema_version = 2;
			return 0;
		}
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s/%s'", s->path,
					     INDEX_FILE);
	}
	int r = plait_buf_read_fd(&b, fd, PLAIT_MANIFEST_MAX);
	if (r == -EFBIG)
		return plait_error_set(err, PLAIT_E_INVALID,
				       "'%s/%s' is larger than the 4 MiB limit", s->path,
				       INDEX_FILE);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "cannot read '%s/%s'", s->path,
					     INDEX_FILE);
	r = plait_index_parse(b.buf, b.len, out, err);
	if (r < 0 && err)
		plait_error_wrap(err, "'%s/%s'", s->path, INDEX_FILE);
	return r;
}

int plait_store_read_index(struct plait_store *s, struct plait_index *out, struct plait_error **err)
{
	/* No lock: index.json is only ever replaced by rename, so a reader
	 * sees either the old or the new file, never a mix. */
	return read_index_unlocked(s, out, err);
}

/* Writers of index.json take turns on a lock of the layout directory itself:
 * a lock file would end up in whatever tars the layout up. */
static int lock_index(struct plait_store *s, struct plait_error **err)
{
	int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s'", s->path);
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		int r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot lock '%s'", s->path);
		close(fd);
		return r;
	}
	return fd;
}

static const char *ref_name_of(const struct plait_descriptor *d)
{
	return plait_map_get(&d->annotations, PLAIT_ANNOTATION_REF_NAME);
}

/* The OCI ref.name grammar, loosely: printable, no white space. */
static int check_ref_name(const char *ref, struct plait_error **err)
{
	if (!*ref)
		return plait_error_set(err, PLAIT_E_USAGE, "invalid tag '': it is empty");
	for (const char *p = ref; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == 0x7f)
			return plait_error_set(
			    err, PLAIT_E_USAGE,
			    "invalid tag '%s': white space and control characters are not allowed",
			    ref);
	}
	return 0;
}

static void index_remove(struct plait_index *idx, size_t i)
{
	plait_descriptor_release(&idx->manifests[i]);
	memmove(&idx->manifests[i], &idx->manifests[i + 1],
		(idx->n_manifests - i - 1) * sizeof(idx->manifests[0]));
	idx->n_manifests--;
}

int plait_store_tag(struct plait_store *s, const struct plait_descriptor *desc,
		    const char *ref_name, struct plait_error **err)
{
	int r;
	if (ref_name && (r = check_ref_name(ref_name, err)) < 0)
		return r;
	if ((r = validate_for_store(s, desc->digest, err)) < 0)
		return r;

	_cleanup_close_ int lock = lock_index(s, err);
	if (lock < 0)
		return lock;

	struct plait_index idx;
	if ((r = read_index_unlocked(s, &idx, err)) < 0)
		return r;

	struct plait_descriptor d;
	plait_descriptor_copy(&d, desc);
	if (ref_name)
		plait_map_set(&d.annotations, PLAIT_ANNOTATION_REF_NAME, ref_name);
	const char *name = ref_name_of(&d);

	for (size_t i = idx.n_manifests; i-- > 0;) {
		const char *other = ref_name_of(&idx.manifests[i]);
		/* Moving a tag drops the old entry; an untagged entry for the
		 * same digest is not added twice. */
		if ((name && other && streq(name, other)) ||
		    (!name && !other && streq(idx.manifests[i].digest, d.digest)))
			index_remove(&idx, i);
	}
	plait_index_add(&idx, &d);
	plait_descriptor_release(&d);
	if (!idx.media_type)
		idx.media_type = xstrdup(plait_media_type_to_string(PLAIT_MT_OCI_INDEX));

	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	r = plait_index_serialise(&idx, &b, err);
	plait_index_release(&idx);
	if (r < 0) {
		if (err)
			plait_error_wrap(err, "cannot update '%s/%s'", s->path, INDEX_FILE);
		return r;
	}
	return write_file_atomic(s, INDEX_FILE, b.buf, b.len, false, err);
}

static void list_tags(const struct plait_index *idx, struct plait_buf *out)
{
	size_t n = 0;
	for (size_t i = 0; i < idx->n_manifests; i++) {
		const char *t = ref_name_of(&idx->manifests[i]);
		if (!t)
			continue;
		plait_buf_addf(out, "%s%s", n++ ? ", " : "", t);
	}
}

/* A blob in the store that is a manifest or index, found by digest alone. */
static int resolve_blob(struct plait_store *s, const char *digest, struct plait_descriptor *out,
			struct plait_error **err)
{
	int64_t size;
	int r = plait_store_has(s, digest, &size, err);
	if (r < 0)
		return r;
	if (r == 0)
		return plait_error_set(err, PLAIT_E_NOT_FOUND, "no image %s in %s", digest,
				       s->display);
	if (size > (int64_t)PLAIT_MANIFEST_MAX)
		return plait_error_set(
		    err, PLAIT_E_INVALID,
		    "%s in %s is %lld bytes: too large for a manifest or index", digest,
		    s->display, (long long)size);
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	if ((r = plait_store_read_blob(s, digest, PLAIT_MANIFEST_MAX, &b, err)) < 0)
		return r;
	enum plait_media_type t = plait_oci_sniff(b.buf, b.len);
	if (!plait_media_type_is_manifest(t) && !plait_media_type_is_index(t))
		return plait_error_set(err, PLAIT_E_NOT_FOUND,
				       "%s in %s is not an image manifest or index", digest,
				       s->display);
	/* Keep the media type as the document spells it. */
	json_auto_t *root = json_loadb(b.buf, b.len, 0, NULL);
	json_t *mt = json_object_get(root, "mediaType");
	memset(out, 0, sizeof(*out));
	out->media_type =
	    xstrdup(json_is_string(mt) ? json_string_value(mt) : plait_media_type_to_string(t));
	memcpy(out->digest, digest, strlen(digest) + 1);
	out->size = (int64_t)b.len;
	return 0;
}

int plait_store_resolve(struct plait_store *s, const char *ref, struct plait_descriptor *out,
			struct plait_error **err)
{
	struct plait_index idx;
	int r = plait_store_read_index(s, &idx, err);
	if (r < 0)
		return r;
	_cleanup_buf_ struct plait_buf tags = PLAIT_BUF_INIT;

	if (!ref) {
		if (idx.n_manifests == 1) {
			plait_descriptor_copy(out, &idx.manifests[0]);
			r = 0;
		} else if (idx.n_manifests == 0) {
			r = plait_error_set(err, PLAIT_E_NOT_FOUND, "%s holds no images",
					    s->display);
		} else {
			list_tags(&idx, &tags);
			r = plait_error_set(
			    err, PLAIT_E_USAGE, "%s holds %zu images; name one%s%s", s->display,
			    idx.n_manifests, tags.len ? ": " : " by digest", tags.buf);
		}
		goto out;
	}

	if (plait_digest_validate(ref, NULL) == 0) {
		for (size_t i = 0; i < idx.n_manifests; i++) {
			if (streq(idx.manifests[i].digest, ref)) {
				plait_descriptor_copy(out, &idx.manifests[i]);
				r = 0;
				goto out;
			}
		}
		r = resolve_blob(s, ref, out, err);
		goto out;
	}

	for (size_t i = 0; i < idx.n_manifests; i++) {
		const char *t = ref_name_of(&idx.manifests[i]);
		if (t && streq(t, ref)) {
			plait_descriptor_copy(out, &idx.manifests[i]);
			r = 0;
			goto out;
		}
	}
	list_tags(&idx, &tags);
	if (tags.len)
		r = plait_error_set(err, PLAIT_E_NOT_FOUND,
				    "no image tagged '%s' in %s; it has: %s", ref, s->display,
				    tags.buf);
	else
		r = plait_error_set(err, PLAIT_E_NOT_FOUND,
				    "no image tagged '%s' in %s; it has no tagged images", ref,
				    s->display);
out:
	plait_index_release(&idx);
	return r;
}
