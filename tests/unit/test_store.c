/* Unit tests for core/store: the OCI image layout content store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "rm_tree.h"
#include "core/buf.h"
#include "core/store.h"

#include "core/banned.h"

#define HELLO_SHA256 "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define HELLO_HEX "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
#define OTHER_SHA256 "sha256:e07ee1baac5fae6a26f30cabfe54a36d3402f96afda318fe0a96cec4ca393359"

struct fixture {
	char dir[64];
	char *layout; /* dir/layout */
	struct plait_store *s;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/plait-test-store-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/layout", f->dir);
	f->layout = plait_buf_detach(&b, NULL);
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_store_open(f->layout, true, &f->s, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err->msg);
		return -1;
	}
	unsetenv("PLAIT_TEST_NO_O_TMPFILE");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	unsetenv("PLAIT_TEST_NO_O_TMPFILE");
	plait_store_free(f->s);
	rm_tree(f->dir);
	free(f->layout);
	free(f);
	return 0;
}

static void path_in(struct plait_buf *b, const struct fixture *f, const char *rel)
{
	plait_buf_reset(b);
	plait_buf_addf(b, "%s/%s", f->layout, rel);
}

static bool exists_in(const struct fixture *f, const char *rel)
{
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	path_in(&p, f, rel);
	return access(p.buf, F_OK) == 0;
}

/* Names in blobs/sha256/, comma-separated, to show in failures. */
static size_t list_blob_dir(const struct fixture *f, struct plait_buf *names)
{
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	path_in(&p, f, "blobs/sha256");
	DIR *d = opendir(p.buf);
	assert_non_null(d);
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (streq(e->d_name, ".") || streq(e->d_name, ".."))
			continue;
		plait_buf_addf(names, "%s%s", n++ ? "," : "", e->d_name);
	}
	closedir(d);
	return n;
}

static void assert_blob_dir_holds(const struct fixture *f, const char *want)
{
	_cleanup_buf_ struct plait_buf names = PLAIT_BUF_INIT;
	list_blob_dir(f, &names);
	assert_string_equal(names.buf, want);
}

static void put(struct fixture *f, const char *data, char digest[PLAIT_SHA256_DIGEST_SIZE])
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_store_put_bytes(f->s, data, strlen(data), digest, &err) < 0)
		fail_msg("put_bytes: %s", err->msg);
}

static void make_desc(struct plait_descriptor *d, const char *digest, int64_t size)
{
	memset(d, 0, sizeof(*d));
	d->media_type = xstrdup(plait_media_type_to_string(PLAIT_MT_OCI_MANIFEST));
	memcpy(d->digest, digest, strlen(digest) + 1);
	d->size = size;
}

static void tag(struct fixture *f, const char *digest, const char *name)
{
	struct plait_descriptor d;
	make_desc(&d, digest, 100);
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_store_tag(f->s, &d, name, &err) < 0)
		fail_msg("tag %s: %s", name ? name : "(none)", err->msg);
	plait_descriptor_release(&d);
}

static void read_index(struct fixture *f, struct plait_index *idx)
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_store_read_index(f->s, idx, &err) < 0)
		fail_msg("read_index: %s", err->msg);
}

/* ---- open ---- */

static void test_store__open_creates_layout(void **state)
{
	struct fixture *f = *state;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT, b = PLAIT_BUF_INIT;
	path_in(&p, f, "oci-layout");
	assert_int_equal(plait_buf_read_file(&b, p.buf, 4096), 0);
	assert_string_equal(b.buf, "{\"imageLayoutVersion\":\"1.0.0\"}");
	assert_true(exists_in(f, "blobs/sha256"));
	assert_true(exists_in(f, "index.json"));
	struct plait_index idx;
	read_index(f, &idx);
	assert_int_equal(idx.n_manifests, 0);
	assert_string_equal(idx.media_type, "application/vnd.oci.image.index.v1+json");
	plait_index_release(&idx);
	assert_string_equal(plait_store_path(f->s), f->layout);
	assert_blob_dir_holds(f, "");
}

static void test_store__open_existing_layout_without_create(void **state)
{
	struct fixture *f = *state;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	put(f, "hello", digest);
	struct plait_store *s2 = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	_cleanup_buf_ struct plait_buf slash = PLAIT_BUF_INIT;
	plait_buf_addf(&slash, "%s/", f->layout);
	if (plait_store_open(slash.buf, false, &s2, &err) < 0)
		fail_msg("reopen: %s", err->msg);
	assert_string_equal(plait_store_path(s2), f->layout);
	assert_int_equal(plait_store_has(s2, HELLO_SHA256, NULL, NULL), 1);
	plait_store_free(s2);
}

static void test_store__open_non_layout_dir_fails_with_message(void **state)
{
	struct fixture *f = *state;
	struct plait_store *s2 = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_open(f->dir, false, &s2, &err), -PLAIT_E_NOT_FOUND);
	assert_null(s2);
	_cleanup_buf_ struct plait_buf want = PLAIT_BUF_INIT;
	plait_buf_addf(&want, "'%s' is not an OCI layout (no oci-layout file)", f->dir);
	assert_string_equal(err->msg, want.buf);
	/* And nothing was created there. */
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/index.json", f->dir);
	assert_int_equal(access(p.buf, F_OK), -1);
}

static void test_store__open_missing_dir_without_create_fails(void **state)
{
	struct fixture *f = *state;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/nope/deeper", f->dir);
	struct plait_store *s2 = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_open(p.buf, false, &s2, &err), -PLAIT_E_NOT_FOUND);
	assert_non_null(strstr(err->msg, "does not exist"));
	/* With create, parents are made. */
	plait_error_clear(&err);
	if (plait_store_open(p.buf, true, &s2, &err) < 0)
		fail_msg("create nested: %s", err->msg);
	plait_store_free(s2);
}

static void test_store__open_rejects_bad_oci_layout_file(void **state)
{
	struct fixture *f = *state;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	path_in(&p, f, "oci-layout");
	int fd = open(p.buf, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, "{\"imageLayoutVersion\":\"2.0.0\"}", 30), 0);
	close(fd);
	struct plait_store *s2 = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_open(f->layout, false, &s2, &err), -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "'2.0.0'"));
}

/* ---- blobs ---- */

static void test_store__put_has_read(void **state)
{
	struct fixture *f = *state;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	put(f, "hello", digest);
	assert_string_equal(digest, HELLO_SHA256);
	int64_t size = -1;
	assert_int_equal(plait_store_has(f->s, HELLO_SHA256, &size, NULL), 1);
	assert_int_equal(size, 5);
	assert_true(exists_in(f, "blobs/sha256/" HELLO_HEX));

	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_store_read_blob(f->s, HELLO_SHA256, 1024, &b, &err) < 0)
		fail_msg("read_blob: %s", err->msg);
	assert_string_equal(b.buf, "hello");

	int fd = -1;
	assert_int_equal(plait_store_open_blob(f->s, HELLO_SHA256, &fd, NULL), 0);
	char got[8] = {0};
	assert_int_equal(plait_read_full(fd, got, sizeof(got) - 1), 5);
	close(fd);
	assert_string_equal(got, "hello");

	/* Putting it again is a no-op that reports the same digest. */
	put(f, "hello", digest);
	assert_string_equal(digest, HELLO_SHA256);
	assert_blob_dir_holds(f, HELLO_SHA256 + 7);

	_cleanup_buf_ struct plait_buf path = PLAIT_BUF_INIT;
	plait_store_blob_path(f->s, HELLO_SHA256, &path);
	_cleanup_buf_ struct plait_buf want = PLAIT_BUF_INIT;
	path_in(&want, f, "blobs/sha256/" HELLO_HEX);
	assert_string_equal(path.buf, want.buf);
}

static void test_store__absent_blob(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(plait_store_has(f->s, OTHER_SHA256, NULL, NULL), 0);
	int fd = -1;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_open_blob(f->s, OTHER_SHA256, &fd, &err), -PLAIT_E_NOT_FOUND);
	assert_true(startswith(err->msg, "blob " OTHER_SHA256 " not found in oci:"));
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	assert_int_equal(plait_store_read_blob(f->s, OTHER_SHA256, 10, &b, NULL),
			 -PLAIT_E_NOT_FOUND);
	/* Removing what is not there is fine. */
	assert_int_equal(plait_store_remove_blob(f->s, OTHER_SHA256, NULL), 0);
}

static void test_store__crafted_digest_cannot_escape_layout(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	    "sha256:../../../../../../../../../../../../../../../../../../etc/passwd",
	    "sha256/../../oci-layout",
	    "../index.json",
	    "sha256:",
	    "sha512:../x",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		_cleanup_error_ struct plait_error *err = NULL;
		assert_int_equal(plait_store_has(f->s, bad[i], NULL, &err), -PLAIT_E_INVALID);
		assert_non_null(strstr(err->msg, "is not a valid digest"));
		int fd = -1;
		assert_int_equal(plait_store_open_blob(f->s, bad[i], &fd, NULL), -PLAIT_E_INVALID);
		assert_int_equal(fd, -1);
		assert_int_equal(plait_store_remove_blob(f->s, bad[i], NULL), -PLAIT_E_INVALID);
		struct plait_blob_writer *w = NULL;
		assert_int_equal(plait_blob_writer_new(f->s, bad[i], -1, &w, NULL),
				 -PLAIT_E_INVALID);
		_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
		plait_store_blob_path(f->s, bad[i], &p);
		assert_null(strstr(p.buf, ".."));
	}
	assert_true(exists_in(f, "oci-layout"));
	assert_true(exists_in(f, "index.json"));
}

static void test_store__read_blob_refuses_larger_than_max(void **state)
{
	struct fixture *f = *state;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	put(f, "hello", digest);
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_read_blob(f->s, digest, 4, &b, &err), -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "is 5 bytes, larger than the 4 byte limit"));
	assert_int_equal(b.len, 0);
}

static void test_store__read_blob_detects_corruption(void **state)
{
	struct fixture *f = *state;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	put(f, "hello", digest);
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_store_blob_path(f->s, digest, &p);
	chmod(p.buf, 0644);
	int fd = open(p.buf, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, "jello", 5), 0);
	close(fd);
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_read_blob(f->s, digest, 100, &b, &err), -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "is corrupt"));
	assert_int_equal(b.len, 0);
}

static void test_store__remove_blob(void **state)
{
	struct fixture *f = *state;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	put(f, "hello", digest);
	assert_int_equal(plait_store_remove_blob(f->s, digest, NULL), 0);
	assert_int_equal(plait_store_has(f->s, digest, NULL, NULL), 0);
}

/* ---- writer ---- */

static void write_in_chunks(struct plait_blob_writer *w, const char *data, size_t len, size_t chunk)
{
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		_cleanup_error_ struct plait_error *err = NULL;
		if (plait_blob_writer_write(w, data + off, n, &err) < 0)
			fail_msg("write: %s", err->msg);
	}
}

static void writer_streams_and_commits(struct fixture *f)
{
	struct plait_blob_writer *w = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_blob_writer_new(f->s, HELLO_SHA256, 5, &w, &err) < 0)
		fail_msg("writer_new: %s", err->msg);
	write_in_chunks(w, "hello", 5, 2);
	assert_int_equal(plait_blob_writer_offset(w), 5);
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	if (plait_blob_writer_commit(w, digest, &err) < 0)
		fail_msg("commit: %s", err->msg);
	plait_blob_writer_free(w);
	assert_string_equal(digest, HELLO_SHA256);
	assert_blob_dir_holds(f, HELLO_SHA256 + 7);
	struct stat st;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_store_blob_path(f->s, HELLO_SHA256, &p);
	assert_int_equal(stat(p.buf, &st), 0);
	/* Readable by the owner, writable by nobody else (blobs are immutable). */
	assert_true(st.st_mode & 0400);
	assert_int_equal(st.st_mode & 0022, 0);
}

static void test_store__writer_streams_and_commits(void **state)
{
	writer_streams_and_commits(*state);
}

static void test_store__writer_streams_and_commits_without_o_tmpfile(void **state)
{
	setenv("PLAIT_TEST_NO_O_TMPFILE", "1", 1);
	writer_streams_and_commits(*state);
}

static void writer_digest_mismatch_leaves_nothing(struct fixture *f)
{
	struct plait_blob_writer *w = NULL;
	assert_int_equal(plait_blob_writer_new(f->s, OTHER_SHA256, -1, &w, NULL), 0);
	write_in_chunks(w, "hello", 5, 5);
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_blob_writer_commit(w, NULL, &err), -PLAIT_E_INVALID);
	assert_string_equal(err->msg,
			    "digest mismatch for " OTHER_SHA256 ": got " HELLO_SHA256 " (5 bytes)");
	/* Spent: a second commit fails too. */
	assert_true(plait_blob_writer_commit(w, NULL, NULL) < 0);
	plait_blob_writer_free(w);
	assert_int_equal(plait_store_has(f->s, OTHER_SHA256, NULL, NULL), 0);
	assert_int_equal(plait_store_has(f->s, HELLO_SHA256, NULL, NULL), 0);
	assert_blob_dir_holds(f, "");
}

static void test_store__writer_digest_mismatch_leaves_nothing(void **state)
{
	writer_digest_mismatch_leaves_nothing(*state);
}

static void test_store__writer_digest_mismatch_leaves_nothing_without_o_tmpfile(void **state)
{
	setenv("PLAIT_TEST_NO_O_TMPFILE", "1", 1);
	writer_digest_mismatch_leaves_nothing(*state);
}

static void test_store__writer_size_mismatch(void **state)
{
	struct fixture *f = *state;
	/* Short: commit refuses. */
	struct plait_blob_writer *w = NULL;
	assert_int_equal(plait_blob_writer_new(f->s, HELLO_SHA256, 10, &w, NULL), 0);
	write_in_chunks(w, "hello", 5, 5);
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_blob_writer_commit(w, NULL, &err), -PLAIT_E_INVALID);
	assert_string_equal(err->msg,
			    "size mismatch for " HELLO_SHA256 ": expected 10 bytes, got 5");
	plait_blob_writer_free(w);

	/* Long: the write that passes the size fails at once. */
	assert_int_equal(plait_blob_writer_new(f->s, NULL, 3, &w, NULL), 0);
	plait_error_clear(&err);
	assert_int_equal(plait_blob_writer_write(w, "hello", 5, &err), -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "expected 3 bytes, got more"));
	plait_blob_writer_free(w);
	assert_blob_dir_holds(f, "");
}

static void test_store__writer_free_without_commit_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	for (int fallback = 0; fallback < 2; fallback++) {
		if (fallback)
			setenv("PLAIT_TEST_NO_O_TMPFILE", "1", 1);
		struct plait_blob_writer *w = NULL;
		assert_int_equal(plait_blob_writer_new(f->s, NULL, -1, &w, NULL), 0);
		write_in_chunks(w, "partial", 7, 3);
		plait_blob_writer_free(w);
		assert_blob_dir_holds(f, "");
	}
	plait_blob_writer_free(NULL);
}

static void test_store__writer_restart_discards_written_bytes(void **state)
{
	struct fixture *f = *state;
	struct plait_blob_writer *w = NULL;
	assert_int_equal(plait_blob_writer_new(f->s, HELLO_SHA256, 5, &w, NULL), 0);
	write_in_chunks(w, "hel", 3, 3);
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_blob_writer_restart(w, &err) < 0)
		fail_msg("restart: %s", err->msg);
	assert_int_equal(plait_blob_writer_offset(w), 0);
	write_in_chunks(w, "hello", 5, 1);
	if (plait_blob_writer_commit(w, NULL, &err) < 0)
		fail_msg("commit: %s", err->msg);
	plait_blob_writer_free(w);
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	assert_int_equal(plait_store_read_blob(f->s, HELLO_SHA256, 100, &b, NULL), 0);
	assert_string_equal(b.buf, "hello");
}

/* check tells a wrong blob apart before commit, and the writer can still
 * restart and commit the right bytes (a corrupt mirror, then the registry) */
static void test_store__writer_check_before_commit(void **state)
{
	struct fixture *f = *state;
	struct plait_blob_writer *w = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_blob_writer_new(f->s, HELLO_SHA256, 5, &w, NULL), 0);
	write_in_chunks(w, "hel", 3, 3);
	assert_int_equal(plait_blob_writer_check(w, &err), -PLAIT_E_INVALID);
	assert_string_equal(err->msg, "size mismatch for " HELLO_SHA256 ": expected 5 bytes, got 3");
	plait_error_clear(&err);
	write_in_chunks(w, "LO", 2, 1);
	assert_int_equal(plait_blob_writer_check(w, &err), -PLAIT_E_INVALID);
	if (!strstr(err->msg, "digest mismatch for " HELLO_SHA256 ": got sha256:"))
		fail_msg("check: %s", err->msg);
	plait_error_clear(&err);
	assert_int_equal(plait_blob_writer_restart(w, &err), 0);
	write_in_chunks(w, "hello", 5, 2);
	if (plait_blob_writer_check(w, &err) < 0)
		fail_msg("check: %s", err->msg);
	/* checking changed nothing: the same bytes commit */
	if (plait_blob_writer_commit(w, NULL, &err) < 0)
		fail_msg("commit: %s", err->msg);
	assert_int_equal(plait_blob_writer_check(w, &err), -PLAIT_E_GENERIC);
	plait_blob_writer_free(w);
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	assert_int_equal(plait_store_read_blob(f->s, HELLO_SHA256, 100, &b, NULL), 0);
	assert_string_equal(b.buf, "hello");
}

static void test_store__writer_without_expected_digest_names_by_content(void **state)
{
	struct fixture *f = *state;
	struct plait_blob_writer *w = NULL;
	assert_int_equal(plait_blob_writer_new(f->s, NULL, -1, &w, NULL), 0);
	write_in_chunks(w, "hello", 5, 4);
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	assert_int_equal(plait_blob_writer_commit(w, digest, NULL), 0);
	plait_blob_writer_free(w);
	assert_string_equal(digest, HELLO_SHA256);
	assert_int_equal(plait_store_has(f->s, HELLO_SHA256, NULL, NULL), 1);
}

/* A source over a writer of unknown size (a layer being compressed): grown
 * waits for bytes, tells the digest once committed, outlives the writer;
 * an abandoned writer ends it with < 0. */
struct grow_reader {
	struct plait_blob_source src;
	int64_t first, last;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	char bytes[16];
};

static void *grow_reader_main(void *arg)
{
	struct grow_reader *g = arg;
	char d[PLAIT_SHA256_DIGEST_SIZE];
	g->first = g->src.grown(g->src.ud, 3, d);
	if (d[0])
		g->first = -2; /* complete too early */
	g->last = g->src.grown(g->src.ud, 1000, g->digest);
	if (g->last > 0)
		assert_int_equal(pread(g->src.fd, g->bytes, (size_t)g->last, 0), g->last);
	return NULL;
}

static void test_store__writer_source_grows_and_outlives_writer(void **state)
{
	struct fixture *f = *state;
	struct plait_blob_writer *w = NULL;
	assert_int_equal(plait_blob_writer_new(f->s, NULL, -1, &w, NULL), 0);
	struct grow_reader g = { .first = -9, .last = -9 };
	assert_int_equal(plait_blob_writer_source(w, &g.src, NULL), 0);
	assert_non_null(g.src.grown);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, grow_reader_main, &g), 0);
	assert_int_equal(plait_blob_writer_write(w, "hel", 3, NULL), 0);
	usleep(20000);
	assert_int_equal(plait_blob_writer_write(w, "lo", 2, NULL), 0);
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	assert_int_equal(plait_blob_writer_commit(w, digest, NULL), 0);
	plait_blob_writer_free(w); /* before the source is released: it holds w */
	pthread_join(t, NULL);
	assert_true(g.first >= 3);
	assert_int_equal(g.last, 5);
	assert_string_equal(g.digest, HELLO_SHA256);
	assert_memory_equal(g.bytes, "hello", 5);
	plait_blob_source_release(&g.src);

	/* abandoned: the reader learns it will never be complete */
	assert_int_equal(plait_blob_writer_new(f->s, NULL, -1, &w, NULL), 0);
	struct grow_reader h = { .first = -9, .last = -9 };
	assert_int_equal(plait_blob_writer_source(w, &h.src, NULL), 0);
	assert_int_equal(pthread_create(&t, NULL, grow_reader_main, &h), 0);
	assert_int_equal(plait_blob_writer_write(w, "abcd", 4, NULL), 0);
	usleep(20000);
	plait_blob_writer_free(w);
	pthread_join(t, NULL);
	assert_int_equal(h.first, 4);
	assert_true(h.last < 0);
	assert_int_equal(h.digest[0], 0);
	plait_blob_source_release(&h.src);
}

static void test_store__writer_refuses_sha512_expectation(void **state)
{
	struct fixture *f = *state;
	struct plait_blob_writer *w = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(
	    plait_blob_writer_new(
		f->s,
		"sha512:"
		"cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff"
		"8318d2877eec2f63b931bd47417a81a538327af927da3e",
		-1, &w, &err),
	    -PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, "only sha256 blobs are supported"));
}

/* ---- concurrency ---- */

#define BIG_LEN (1024 * 1024 + 17)
#define N_THREADS 8

struct writer_job {
	struct plait_store *s;
	const char *data;
	const char *digest;
	int rc;
	char msg[256];
};

static void *write_same_blob(void *arg)
{
	struct writer_job *j = arg;
	struct plait_blob_writer *w = NULL;
	struct plait_error *err = NULL;
	j->rc = plait_blob_writer_new(j->s, j->digest, BIG_LEN, &w, &err);
	for (size_t off = 0; j->rc == 0 && off < BIG_LEN; off += 4093) {
		size_t n = BIG_LEN - off < 4093 ? BIG_LEN - off : 4093;
		j->rc = plait_blob_writer_write(w, j->data + off, n, &err);
	}
	if (j->rc == 0)
		j->rc = plait_blob_writer_commit(w, NULL, &err);
	if (err)
		snprintf(j->msg, sizeof(j->msg), "%s", err->msg);
	plait_error_free(err);
	plait_blob_writer_free(w);
	return NULL;
}

static void concurrent_writers_of_same_blob(struct fixture *f)
{
	char *data = xmalloc(BIG_LEN);
	for (size_t i = 0; i < BIG_LEN; i++)
		data[i] = (char)(i * 31 + i / 7);
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(data, BIG_LEN, digest);

	pthread_t th[N_THREADS];
	struct writer_job jobs[N_THREADS];
	for (int i = 0; i < N_THREADS; i++) {
		jobs[i] = (struct writer_job){.s = f->s, .data = data, .digest = digest};
		assert_int_equal(pthread_create(&th[i], NULL, write_same_blob, &jobs[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < N_THREADS; i++)
		if (jobs[i].rc != 0)
			fail_msg("writer %d failed: %s", i, jobs[i].msg);

	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_store_read_blob(f->s, digest, BIG_LEN, &b, &err) < 0)
		fail_msg("read back: %s", err->msg);
	assert_int_equal(b.len, BIG_LEN);
	assert_memory_equal(b.buf, data, BIG_LEN);
	assert_blob_dir_holds(f, digest + 7);
	free(data);
}

static void test_store__concurrent_writers_of_same_blob_all_succeed(void **state)
{
	concurrent_writers_of_same_blob(*state);
}

static void test_store__concurrent_writers_of_same_blob_without_o_tmpfile(void **state)
{
	setenv("PLAIT_TEST_NO_O_TMPFILE", "1", 1);
	concurrent_writers_of_same_blob(*state);
}

#define TAGS_PER_WORKER 10

struct tag_job {
	struct plait_store *s;
	int worker;
	int rc;
	char msg[256];
};

static int tag_many(struct plait_store *s, int worker, char *msg, size_t msg_len)
{
	for (int i = 0; i < TAGS_PER_WORKER; i++) {
		struct plait_descriptor d;
		make_desc(&d, i % 2 ? HELLO_SHA256 : OTHER_SHA256, 5);
		char name[32];
		snprintf(name, sizeof(name), "w%d-t%d", worker, i);
		struct plait_error *err = NULL;
		int r = plait_store_tag(s, &d, name, &err);
		plait_descriptor_release(&d);
		if (r < 0) {
			snprintf(msg, msg_len, "%s: %s", name, err->msg);
			plait_error_free(err);
			return r;
		}
	}
	return 0;
}

static void *tag_thread(void *arg)
{
	struct tag_job *j = arg;
	j->rc = tag_many(j->s, j->worker, j->msg, sizeof(j->msg));
	return NULL;
}

static void assert_all_tags(struct fixture *f, int workers)
{
	struct plait_index idx;
	read_index(f, &idx);
	assert_int_equal(idx.n_manifests, workers * TAGS_PER_WORKER);
	for (int w = 0; w < workers; w++)
		for (int i = 0; i < TAGS_PER_WORKER; i++) {
			char name[32];
			snprintf(name, sizeof(name), "w%d-t%d", w, i);
			struct plait_descriptor d;
			_cleanup_error_ struct plait_error *err = NULL;
			if (plait_store_resolve(f->s, name, &d, &err) < 0)
				fail_msg("tag %s lost: %s", name, err->msg);
			plait_descriptor_release(&d);
		}
	plait_index_release(&idx);
	/* No temporary index files are left behind. */
	DIR *d = opendir(f->layout);
	assert_non_null(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (startswith(e->d_name, ".index.json"))
			fail_msg("temporary file '%s' left in the layout", e->d_name);
	closedir(d);
}

static void test_store__concurrent_tag_threads_keep_every_tag(void **state)
{
	struct fixture *f = *state;
	pthread_t th[N_THREADS];
	struct tag_job jobs[N_THREADS];
	for (int i = 0; i < N_THREADS; i++) {
		jobs[i] = (struct tag_job){.s = f->s, .worker = i};
		assert_int_equal(pthread_create(&th[i], NULL, tag_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < N_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < N_THREADS; i++)
		if (jobs[i].rc != 0)
			fail_msg("tagger %d failed: %s", i, jobs[i].msg);
	assert_all_tags(f, N_THREADS);
}

static void test_store__concurrent_tag_processes_keep_every_tag(void **state)
{
	struct fixture *f = *state;
	enum { N_PROCS = 4 };
	pid_t pids[N_PROCS];
	for (int i = 0; i < N_PROCS; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0) {
			/* Each process opens the layout itself, as separate plait runs would. */
			struct plait_store *s = NULL;
			char msg[256];
			if (plait_store_open(f->layout, false, &s, NULL) < 0)
				_exit(2);
			int r = tag_many(s, i, msg, sizeof(msg));
			if (r < 0)
				fprintf(stderr, "child %d: %s\n", i, msg);
			plait_store_free(s);
			_exit(r < 0 ? 1 : 0);
		}
	}
	for (int i = 0; i < N_PROCS; i++) {
		int status = 0;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			fail_msg("tagging process %d failed (status %d)", i, status);
	}
	assert_all_tags(f, N_PROCS);
}

/* ---- tags and resolve ---- */

static void test_store__tag_moving_replaces_old_entry(void **state)
{
	struct fixture *f = *state;
	tag(f, OTHER_SHA256, "v1");
	tag(f, OTHER_SHA256, "latest");
	tag(f, HELLO_SHA256, "latest");
	struct plait_index idx;
	read_index(f, &idx);
	assert_int_equal(idx.n_manifests, 2);
	assert_string_equal(idx.manifests[0].digest, OTHER_SHA256);
	assert_string_equal(plait_map_get(&idx.manifests[0].annotations, PLAIT_ANNOTATION_REF_NAME),
			    "v1");
	assert_string_equal(idx.manifests[1].digest, HELLO_SHA256);
	assert_string_equal(plait_map_get(&idx.manifests[1].annotations, PLAIT_ANNOTATION_REF_NAME),
			    "latest");
	plait_index_release(&idx);
}

static void test_store__untagged_entry_is_not_duplicated(void **state)
{
	struct fixture *f = *state;
	tag(f, HELLO_SHA256, NULL);
	tag(f, HELLO_SHA256, NULL);
	struct plait_index idx;
	read_index(f, &idx);
	assert_int_equal(idx.n_manifests, 1);
	assert_int_equal(idx.manifests[0].annotations.n, 0);
	plait_index_release(&idx);
}

static void test_store__tag_rejects_bad_input(void **state)
{
	struct fixture *f = *state;
	struct plait_descriptor d;
	make_desc(&d, HELLO_SHA256, 5);
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_tag(f->s, &d, "has space", &err), -PLAIT_E_USAGE);
	assert_non_null(strstr(err->msg, "invalid tag 'has space'"));
	assert_int_equal(plait_store_tag(f->s, &d, "", NULL), -PLAIT_E_USAGE);
	memcpy(d.digest, "sha256:zz", 10);
	assert_int_equal(plait_store_tag(f->s, &d, "v1", NULL), -PLAIT_E_INVALID);
	plait_descriptor_release(&d);
	struct plait_index idx;
	read_index(f, &idx);
	assert_int_equal(idx.n_manifests, 0);
	plait_index_release(&idx);
}

static void test_store__resolve_by_tag_and_digest(void **state)
{
	struct fixture *f = *state;
	tag(f, OTHER_SHA256, "v1");
	tag(f, HELLO_SHA256, "latest");
	struct plait_descriptor d;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_resolve(f->s, "latest", &d, &err), 0);
	assert_string_equal(d.digest, HELLO_SHA256);
	assert_string_equal(plait_map_get(&d.annotations, PLAIT_ANNOTATION_REF_NAME), "latest");
	plait_descriptor_release(&d);

	assert_int_equal(plait_store_resolve(f->s, OTHER_SHA256, &d, &err), 0);
	assert_string_equal(d.digest, OTHER_SHA256);
	assert_int_equal(d.size, 100);
	plait_descriptor_release(&d);
}

static void test_store__resolve_missing_tag_lists_tags(void **state)
{
	struct fixture *f = *state;
	tag(f, OTHER_SHA256, "v1");
	tag(f, HELLO_SHA256, "latest");
	struct plait_descriptor d;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_resolve(f->s, "v2", &d, &err), -PLAIT_E_NOT_FOUND);
	_cleanup_buf_ struct plait_buf want = PLAIT_BUF_INIT;
	plait_buf_addf(&want, "no image tagged 'v2' in oci:%s; it has: v1, latest", f->layout);
	assert_string_equal(err->msg, want.buf);
}

static void test_store__resolve_only_entry(void **state)
{
	struct fixture *f = *state;
	struct plait_descriptor d;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_resolve(f->s, NULL, &d, &err), -PLAIT_E_NOT_FOUND);
	assert_non_null(strstr(err->msg, "holds no images"));

	tag(f, HELLO_SHA256, "only");
	plait_error_clear(&err);
	assert_int_equal(plait_store_resolve(f->s, NULL, &d, &err), 0);
	assert_string_equal(d.digest, HELLO_SHA256);
	plait_descriptor_release(&d);

	tag(f, OTHER_SHA256, "second");
	assert_int_equal(plait_store_resolve(f->s, NULL, &d, &err), -PLAIT_E_USAGE);
	assert_non_null(strstr(err->msg, "holds 2 images; name one: only, second"));
}

static void test_store__resolve_digest_of_manifest_blob_not_in_index(void **state)
{
	struct fixture *f = *state;
	static const char manifest[] =
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"config\":{\"mediaType\":\"application/"
	    "vnd.oci.image.config.v1+json\",\"digest\":\"" HELLO_SHA256
	    "\",\"size\":5},\"layers\":[]}";
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	put(f, manifest, digest);
	struct plait_descriptor d;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_store_resolve(f->s, digest, &d, &err) < 0)
		fail_msg("resolve manifest blob: %s", err->msg);
	assert_string_equal(d.digest, digest);
	assert_int_equal(d.size, strlen(manifest));
	assert_string_equal(d.media_type, "application/vnd.oci.image.manifest.v1+json");
	plait_descriptor_release(&d);

	/* A blob that is not a manifest is not an image. */
	put(f, "hello", digest);
	assert_int_equal(plait_store_resolve(f->s, digest, &d, &err), -PLAIT_E_NOT_FOUND);
	assert_non_null(strstr(err->msg, "is not an image manifest or index"));
	/* Nor is a digest that is nowhere. */
	assert_int_equal(plait_store_resolve(f->s, OTHER_SHA256, &d, NULL), -PLAIT_E_NOT_FOUND);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_store__open_creates_layout),
	    T(test_store__open_existing_layout_without_create),
	    T(test_store__open_non_layout_dir_fails_with_message),
	    T(test_store__open_missing_dir_without_create_fails),
	    T(test_store__open_rejects_bad_oci_layout_file),
	    T(test_store__put_has_read),
	    T(test_store__absent_blob),
	    T(test_store__crafted_digest_cannot_escape_layout),
	    T(test_store__read_blob_refuses_larger_than_max),
	    T(test_store__read_blob_detects_corruption),
	    T(test_store__remove_blob),
	    T(test_store__writer_streams_and_commits),
	    T(test_store__writer_streams_and_commits_without_o_tmpfile),
	    T(test_store__writer_digest_mismatch_leaves_nothing),
	    T(test_store__writer_digest_mismatch_leaves_nothing_without_o_tmpfile),
	    T(test_store__writer_size_mismatch),
	    T(test_store__writer_free_without_commit_leaves_nothing),
	    T(test_store__writer_restart_discards_written_bytes),
	    T(test_store__writer_check_before_commit),
	    T(test_store__writer_without_expected_digest_names_by_content),
	    T(test_store__writer_source_grows_and_outlives_writer),
	    T(test_store__writer_refuses_sha512_expectation),
	    T(test_store__concurrent_writers_of_same_blob_all_succeed),
	    T(test_store__concurrent_writers_of_same_blob_without_o_tmpfile),
	    T(test_store__concurrent_tag_threads_keep_every_tag),
	    T(test_store__concurrent_tag_processes_keep_every_tag),
	    T(test_store__tag_moving_replaces_old_entry),
	    T(test_store__untagged_entry_is_not_duplicated),
	    T(test_store__tag_rejects_bad_input),
	    T(test_store__resolve_by_tag_and_digest),
	    T(test_store__resolve_missing_tag_lists_tags),
	    T(test_store__resolve_only_entry),
	    T(test_store__resolve_digest_of_manifest_blob_not_in_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
