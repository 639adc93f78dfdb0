/* Unit tests for core/cache and core/cache_prune: the cache directory's
 * layout, lock and step records (write -> lookup, bad records, the step
 * lock), usage per kind and LRU pruning of a cache laid out as a build
 * writes it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cache.h"
#include "core/cache_prune.h"
#include "core/digest.h"
#include "core/snapshot.h"
#include "core/store.h"

#include "core/banned.h"

struct layer {
	char blob[PLAIT_SHA256_DIGEST_SIZE]; /* sha256:... in the store */
	char diff[PLAIT_SHA256_DIGEST_SIZE];
	char *dir;    /* layers/<diff hex> */
	char *record; /* steps/<key hex>, or NULL */
};

struct fixture {
	char dir[64];
	char *cache, *outside;
	struct plait_store *s;
	struct layer a, b, c; /* a, b built (records); c a base layer (manifest) */
	char config[PLAIT_SHA256_DIGEST_SIZE], manifest[PLAIT_SHA256_DIGEST_SIZE];
	char *empty_record, *mount, *temp_layer, *temp_work;
	int64_t rec_a_size, rec_b_size, rec_empty_size;
};

static char *path_of(const char *a, const char *b)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", a, b);
	return plait_buf_detach(&p, NULL);
}

static char *hex_of(const char *name)
{
	char d[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(name, strlen(name), d);
	return xstrdup(plait_digest_hex(d));
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, data, strlen(data)), 0);
	close(fd);
}

static void make_dir(const char *path)
{
	assert_int_equal(mkdir(path, 0755) < 0 && errno != EEXIST ? -errno : 0, 0);
}

static void set_time(const char *path, time_t sec)
{
	struct timespec ts[2] = { { sec, 0 }, { sec, 0 } };
	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int64_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	return st.st_size;
}

static bool exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

static char *blob_path(struct fixture *f, const char *digest)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_store_blob_path(f->s, digest, &p);
	return plait_buf_detach(&p, NULL);
}

static void put(struct fixture *f, const char *data, char digest[PLAIT_SHA256_DIGEST_SIZE], time_t sec)
{
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_put_bytes(f->s, data, strlen(data), digest, &err), 0);
	_cleanup_free_ char *p = blob_path(f, digest);
	set_time(p, sec);
}

static char *write_record(struct fixture *f, const char *key, const char *json, time_t sec, int64_t *size)
{
	_cleanup_free_ char *steps = path_of(f->cache, "steps");
	_cleanup_free_ char *hex = hex_of(key);
	char *p = path_of(steps, hex);
	write_file(p, json);
	set_time(p, sec);
	*size = file_size(p);
	return p;
}

/* A layer: its blob, its unpacked dir holding files, and (built) a step record. */
static void make_layer(struct fixture *f, struct layer *l, const char *name, const char *blob_data,
		       time_t sec, bool built, int64_t *rec_size)
{
	put(f, blob_data, l->blob, sec);
	struct plait_buf d = PLAIT_BUF_INIT;
	plait_buf_addf(&d, "diff %s", name);
	plait_sha256_buf(d.buf, d.len, l->diff);
	plait_buf_release(&d);
	_cleanup_free_ char *layers = path_of(f->cache, "layers");
	l->dir = path_of(layers, plait_digest_hex(l->diff));
	make_dir(l->dir);
	if (built) {
		struct plait_buf j = PLAIT_BUF_INIT;
		plait_buf_addf(&j,
			       "{\"created\":\"2024-01-01T00:00:00Z\",\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
			       "\"digest\":\"%s\",\"size\":%zu,\"diffID\":\"%s\"}",
			       l->blob, strlen(blob_data), l->diff);
		l->record = write_record(f, name, j.buf, sec, rec_size);
		plait_buf_release(&j);
	}
}

static void fill_dir(const char *dir, const char *file, const char *content, time_t sec)
{
	_cleanup_free_ char *p = path_of(dir, file);
	write_file(p, content);
	set_time(dir, sec);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/plait-test-cache-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	f->cache = path_of(f->dir, "cache");
	f->outside = path_of(f->dir, "outside");
	make_dir(f->cache);
	make_dir(f->outside);
	_cleanup_free_ char *secret = path_of(f->outside, "secret.txt");
	write_file(secret, "not the cache's");
	const char *subs[] = { "layers", "steps", "mounts", "work" };
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		_cleanup_free_ char *p = path_of(f->cache, subs[i]);
		make_dir(p);
	}
	_cleanup_free_ char *store = path_of(f->cache, "store");
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_store_open(store, true, &f->s, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err->msg);
		return -1;
	}

	/* a (used at 1000): 4-byte file, a hard link to it, a 1-byte symlink. */
	make_layer(f, &f->a, "a", "layer A bytes", 1000, true, &f->rec_a_size);
	_cleanup_free_ char *fa = path_of(f->a.dir, "f"), *fa2 = path_of(f->a.dir, "f2"),
			    *la = path_of(f->a.dir, "l");
	write_file(fa, "aaaa");
	assert_int_equal(link(fa, fa2), 0);
	assert_int_equal(symlink("f", la), 0);
	set_time(f->a.dir, 1000);
	/* b (used at 3000): 10 bytes. */
	make_layer(f, &f->b, "b", "layer B bytes!!", 3000, true, &f->rec_b_size);
	fill_dir(f->b.dir, "g", "0123456789", 3000);
	/* c: a base image layer at 2000, known through its manifest and config. */
	make_layer(f, &f->c, "c", "layer C", 2000, false, NULL);
	fill_dir(f->c.dir, "h", "hhh", 2000);
	struct plait_buf j = PLAIT_BUF_INIT;
	plait_buf_addf(&j, "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
		       f->c.diff);
	put(f, j.buf, f->config, 2000);
	size_t cfg_size = j.len;
	plait_buf_reset(&j);
	plait_buf_addf(&j,
		       "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		       "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
		       "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\",\"size\":7}]}",
		       f->config, cfg_size, f->c.blob);
	put(f, j.buf, f->manifest, 2000);
	struct plait_descriptor md = { .media_type = (char *)"application/vnd.oci.image.manifest.v1+json",
				       .size = (int64_t)j.len };
	memcpy(md.digest, f->manifest, sizeof(f->manifest));
	plait_buf_release(&j);
	if (plait_store_tag(f->s, &md, "base", &err) < 0) {
		fprintf(stderr, "setup: %s\n", err->msg);
		return -1;
	}

	f->empty_record = write_record(f, "empty", "{\"created\":\"2024-01-01T00:00:00Z\",\"empty\":true}", 500,
				       &f->rec_empty_size);
	_cleanup_free_ char *mounts = path_of(f->cache, "mounts"), *mhex = hex_of("/root/.cache");
	f->mount = path_of(mounts, mhex);
	make_dir(f->mount);
	fill_dir(f->mount, "data", "7 bytes", 2500);
	_cleanup_free_ char *layers = path_of(f->cache, "layers"), *work = path_of(f->cache, "work");
	f->temp_layer = path_of(layers, ".tmp-dead-abc123");
	make_dir(f->temp_layer);
	fill_dir(f->temp_layer, "x", "6bytes", 4000);
	f->temp_work = path_of(work, "snap-1");
	make_dir(f->temp_work);
	fill_dir(f->temp_work, "y", "8 bytes!", 4000);
	*state = f;
	return 0;
}

static void layer_release(struct layer *l)
{
	free(l->dir);
	free(l->record);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	plait_store_free(f->s);
	plait_rm_rf(f->dir);
	free(f->cache);
	free(f->outside);
	layer_release(&f->a);
	layer_release(&f->b);
	layer_release(&f->c);
	free(f->empty_record);
	free(f->mount);
	free(f->temp_layer);
	free(f->temp_work);
	free(f);
	return 0;
}

static int64_t blob_size(struct fixture *f, const char *digest)
{
	_cleanup_free_ char *p = blob_path(f, digest);
	return file_size(p);
}

static bool blob_exists(struct fixture *f, const char *digest)
{
	_cleanup_free_ char *p = blob_path(f, digest);
	return exists(p);
}

static int64_t store_meta_size(struct fixture *f)
{
	_cleanup_free_ char *store = path_of(f->cache, "store");
	_cleanup_free_ char *l = path_of(store, "oci-layout"), *i = path_of(store, "index.json");
	return file_size(l) + file_size(i);
}

static void usage_ok(struct fixture *f, struct plait_cache_usage *u)
{
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_cache_usage(f->cache, u, &err);
	if (r < 0)
		fail_msg("usage: %s", err->msg);
}

static void prune_ok(struct fixture *f, const struct plait_cache_prune_opts *o,
		     struct plait_cache_prune_result *res)
{
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_cache_prune(f->cache, o, res, &err);
	if (r < 0)
		fail_msg("prune: %s", err->msg);
}

/* ------------------------------------------------------------ usage */

static void test_cache__usage_counts_each_kind(void **state)
{
	struct fixture *f = *state;
	struct plait_cache_usage u;
	usage_ok(f, &u);
	int64_t blobs = blob_size(f, f->a.blob) + blob_size(f, f->b.blob) + blob_size(f, f->c.blob) +
			blob_size(f, f->config) + blob_size(f, f->manifest);
	assert_int_equal(u.kind[PLAIT_CACHE_STORE].entries, 5);
	assert_int_equal(u.kind[PLAIT_CACHE_STORE].bytes, blobs + store_meta_size(f));
	assert_int_equal(u.kind[PLAIT_CACHE_LAYERS].entries, 3);
	/* a: "aaaa" once (f2 is a hard link) + the symlink "f"; b: 10; c: 3 */
	assert_int_equal(u.kind[PLAIT_CACHE_LAYERS].bytes, 4 + 1 + 10 + 3);
	assert_int_equal(u.kind[PLAIT_CACHE_STEPS].entries, 3);
	assert_int_equal(u.kind[PLAIT_CACHE_STEPS].bytes, f->rec_a_size + f->rec_b_size + f->rec_empty_size);
	assert_int_equal(u.kind[PLAIT_CACHE_MOUNTS].entries, 1);
	assert_int_equal(u.kind[PLAIT_CACHE_MOUNTS].bytes, 7);
	assert_int_equal(u.kind[PLAIT_CACHE_TEMP].entries, 2);
	assert_int_equal(u.kind[PLAIT_CACHE_TEMP].bytes, 6 + 8);
	assert_int_equal(u.total.entries, 5 + 3 + 3 + 1 + 2);
	assert_int_equal(u.total.bytes, blobs + store_meta_size(f) + 18 + f->rec_a_size + f->rec_b_size +
						f->rec_empty_size + 7 + 14);
	assert_string_equal(plait_cache_kind_name(PLAIT_CACHE_TEMP), "temporary");
}

static void test_cache__missing_dir_is_empty_and_not_created(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *gone = path_of(f->dir, "no-such-cache");
	struct plait_cache_usage u;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_cache_usage(gone, &u, &err), 0);
	assert_int_equal(u.total.entries, 0);
	assert_int_equal(u.total.bytes, 0);
	struct plait_cache_prune_opts o = { .all = true };
	struct plait_cache_prune_result res;
	assert_int_equal(plait_cache_prune(gone, &o, &res, &err), 0);
	assert_int_equal(res.freed.total.entries, 0);
	assert_false(exists(gone));
}

static void test_cache__usage_of_a_file_is_an_error(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *file = path_of(f->outside, "secret.txt");
	struct plait_cache_usage u;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_cache_usage(file, &u, &err), -PLAIT_E_USAGE);
	assert_non_null(strstr(err->msg, "is not a directory"));
}

/* ------------------------------------------------------------ prune */

static void test_cache__prune_keep_removes_least_recently_used_first(void **state)
{
	struct fixture *f = *state;
	struct plait_cache_usage u;
	usage_ok(f, &u);
	/* Order: temporary (always), the empty record (500), layer a (1000). */
	int64_t a = f->rec_a_size + blob_size(f, f->a.blob) + 5;
	struct plait_cache_prune_opts o = {
		.keep_bytes = u.total.bytes - u.kind[PLAIT_CACHE_TEMP].bytes - f->rec_empty_size - a
	};
	struct plait_cache_prune_result res;
	prune_ok(f, &o, &res);
	assert_false(exists(f->temp_layer));
	assert_false(exists(f->temp_work));
	assert_false(exists(f->empty_record));
	assert_false(exists(f->a.record));
	assert_false(blob_exists(f, f->a.blob));
	assert_false(exists(f->a.dir));
	/* newer than a: kept */
	assert_true(exists(f->b.record));
	assert_true(blob_exists(f, f->b.blob));
	assert_true(exists(f->b.dir));
	assert_true(blob_exists(f, f->c.blob));
	assert_true(blob_exists(f, f->manifest));
	assert_true(exists(f->c.dir));
	assert_true(exists(f->mount));
	assert_int_equal(res.after.total.bytes, o.keep_bytes);
	assert_int_equal(res.freed.kind[PLAIT_CACHE_STEPS].entries, 2);
	assert_int_equal(res.freed.kind[PLAIT_CACHE_STORE].entries, 1);
	assert_int_equal(res.freed.kind[PLAIT_CACHE_LAYERS].entries, 1);
	assert_int_equal(res.freed.kind[PLAIT_CACHE_TEMP].entries, 2);
	struct plait_cache_usage after;
	usage_ok(f, &after);
	assert_int_equal(after.total.bytes, res.after.total.bytes);
	assert_int_equal(after.total.entries, res.after.total.entries);
}

static void test_cache__prune_keep_nothing_to_do_keeps_live_entries(void **state)
{
	struct fixture *f = *state;
	struct plait_cache_usage u;
	usage_ok(f, &u);
	struct plait_cache_prune_opts o = { .keep_bytes = u.total.bytes };
	struct plait_cache_prune_result res;
	prune_ok(f, &o, &res);
	/* Only leftovers of dead builds go. */
	assert_int_equal(res.freed.total.entries, 2);
	assert_false(exists(f->temp_work));
	assert_true(exists(f->empty_record));
	assert_true(exists(f->a.record));
	assert_true(exists(f->a.dir));
}

static void test_cache__prune_base_layer_takes_its_manifest_and_tag(void **state)
{
	struct fixture *f = *state;
	struct plait_cache_usage u;
	usage_ok(f, &u);
	int64_t a = f->rec_a_size + blob_size(f, f->a.blob) + 5;
	int64_t c = blob_size(f, f->c.blob) + 3;
	struct plait_cache_prune_opts o = {
		.keep_bytes = u.total.bytes - u.kind[PLAIT_CACHE_TEMP].bytes - f->rec_empty_size - a - c
	};
	struct plait_cache_prune_result res;
	prune_ok(f, &o, &res);
	assert_false(blob_exists(f, f->c.blob));
	assert_false(exists(f->c.dir));
	assert_false(blob_exists(f, f->manifest)); /* it listed c */
	assert_true(blob_exists(f, f->config));   /* enough was freed before its turn */
	assert_true(blob_exists(f, f->b.blob));
	struct plait_descriptor d = { 0 };
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_resolve(f->s, "base", &d, &err), -PLAIT_E_NOT_FOUND);
	plait_descriptor_release(&d);
}

static void test_cache__prune_removes_records_whose_blob_is_gone(void **state)
{
	struct fixture *f = *state;
	int64_t size;
	_cleanup_free_ char *dead = write_record(
		f, "dead",
		"{\"created\":\"x\",\"mediaType\":\"m\",\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
		"\"size\":1,\"diffID\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"}",
		9000, &size);
	_cleanup_free_ char *garbled = write_record(f, "garbled", "{not json", 9000, &size);
	struct plait_cache_prune_opts o = { .keep_bytes = INT64_MAX / 2 };
	struct plait_cache_prune_result res;
	prune_ok(f, &o, &res);
	assert_false(exists(dead));
	assert_false(exists(garbled));
	assert_true(exists(f->a.record));
	assert_true(exists(f->empty_record));
	assert_int_equal(res.freed.kind[PLAIT_CACHE_STEPS].entries, 2);
}

static void test_cache__prune_all_empties_the_cache(void **state)
{
	struct fixture *f = *state;
	struct plait_cache_prune_opts o = { .all = true };
	struct plait_cache_prune_result res;
	prune_ok(f, &o, &res);
	assert_int_equal(res.freed.total.entries, 14);
	struct plait_cache_usage u;
	usage_ok(f, &u);
	for (int k = 0; k < PLAIT_CACHE_N_KINDS; k++)
		assert_int_equal(u.kind[k].entries, 0);
	assert_int_equal(u.total.bytes, store_meta_size(f));
	assert_int_equal(u.total.bytes, res.after.total.bytes);
	/* The folders, the lock and the layout stay for builds that wait on the lock. */
	const char *keep[] = { "lock", "layers", "steps", "mounts", "work", "store/oci-layout" };
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
		_cleanup_free_ char *p = path_of(f->cache, keep[i]);
		if (!exists(p))
			fail_msg("'%s' was removed", keep[i]);
	}
	_cleanup_free_ char *secret = path_of(f->outside, "secret.txt");
	assert_true(exists(secret));
	struct plait_descriptor d = { 0 };
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_store_resolve(f->s, "base", &d, &err), -PLAIT_E_NOT_FOUND);
	plait_descriptor_release(&d);
	/* the store still works */
	char dg[PLAIT_SHA256_DIGEST_SIZE];
	put(f, "after", dg, 5000);
}

static void test_cache__prune_never_follows_symlinks_out(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *in_mount = path_of(f->mount, "escape");
	assert_int_equal(symlink(f->outside, in_mount), 0);
	_cleanup_free_ char *layers = path_of(f->cache, "layers"), *hex = hex_of("link");
	_cleanup_free_ char *as_layer = path_of(layers, hex);
	assert_int_equal(symlink(f->outside, as_layer), 0);
	struct plait_cache_usage u;
	usage_ok(f, &u);
	/* the links' own sizes, never what they point at */
	assert_int_equal(u.kind[PLAIT_CACHE_MOUNTS].bytes, 7 + (int64_t)strlen(f->outside));
	assert_int_equal(u.kind[PLAIT_CACHE_LAYERS].entries, 3);
	struct plait_cache_prune_opts o = { .all = true };
	struct plait_cache_prune_result res;
	prune_ok(f, &o, &res);
	_cleanup_free_ char *secret = path_of(f->outside, "secret.txt");
	assert_true(exists(secret));
	assert_false(exists(as_layer));
	assert_false(exists(in_mount));
}

static void test_cache__prune_refuses_while_a_build_holds_the_lock(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *lock = path_of(f->cache, "lock");
	_cleanup_close_ int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_SH), 0); /* as core/build.c does */
	struct plait_cache_prune_opts o = { .all = true };
	struct plait_cache_prune_result res;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_cache_prune(f->cache, &o, &res, &err), -PLAIT_E_RETRYABLE);
	assert_non_null(strstr(err->msg, "in use by a running build; try again when it ends"));
	assert_true(blob_exists(f, f->a.blob));
	assert_true(exists(f->temp_work));
	/* released: it goes through */
	flock(fd, LOCK_UN);
	plait_error_clear(&err);
	assert_int_equal(plait_cache_prune(f->cache, &o, &res, &err), 0);
	assert_false(blob_exists(f, f->a.blob));
}

static void test_cache__prune_dry_run_removes_nothing(void **state)
{
	struct fixture *f = *state;
	struct plait_cache_prune_opts o = { .all = true, .dry_run = true };
	struct plait_cache_prune_result res;
	prune_ok(f, &o, &res);
	assert_int_equal(res.freed.total.entries, 14);
	assert_int_equal(res.after.total.entries, 0);
	assert_true(exists(f->a.record));
	assert_true(blob_exists(f, f->manifest));
	assert_true(exists(f->temp_work));
	assert_true(exists(f->mount));
}

static void test_cache__prune_rejects_a_negative_keep(void **state)
{
	struct fixture *f = *state;
	struct plait_cache_prune_opts o = { .keep_bytes = -1 };
	struct plait_cache_prune_result res;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_cache_prune(f->cache, &o, &res, &err), -PLAIT_E_USAGE);
	assert_true(exists(f->temp_work));
}

/* ------------------------------------------------------------ the directory and step records */

#define LAYER_MT "application/vnd.oci.image.layer.v1.tar+gzip"

static struct plait_cache *open_ok(const char *dir)
{
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_cache *c = NULL;
	if (plait_cache_open(dir, &c, &err) < 0)
		fail_msg("open '%s': %s", dir, err->msg);
	return c;
}

static void key_of(const char *name, char key[PLAIT_SHA256_DIGEST_SIZE])
{
	plait_sha256_buf(name, strlen(name), key);
}

static void test_cache__open_makes_the_layout_and_holds_the_shared_lock(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *dir = path_of(f->dir, "new/cache");
	struct plait_cache *c = open_ok(dir);
	const char *subs[] = { "layers", "steps", "mounts", "work", "lock", "store/oci-layout" };
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		_cleanup_free_ char *p = path_of(dir, subs[i]);
		if (!exists(p))
			fail_msg("open did not make '%s'", subs[i]);
	}
	_cleanup_free_ char *store = path_of(dir, "store");
	assert_string_equal(c->store_dir, store);
	/* a build holds the cache: prune must wait */
	_cleanup_error_ struct plait_error *err = NULL;
	struct plait_cache_prune_opts o = { .all = true };
	struct plait_cache_prune_result res;
	assert_int_equal(plait_cache_prune(dir, &o, &res, &err), -PLAIT_E_RETRYABLE);
	plait_cache_free(c);
	prune_ok(&(struct fixture){ .cache = dir }, &o, &res);
}

static void test_cache__open_alone_clears_what_a_crashed_build_left(void **state)
{
	struct fixture *f = *state;
	assert_true(exists(f->temp_work));
	struct plait_cache *first = open_ok(f->cache);
	assert_false(exists(f->temp_work));
	/* a second build must not clear the first one's work */
	_cleanup_free_ char *work = path_of(f->cache, "work"), *live = path_of(work, "snap-live");
	make_dir(live);
	struct plait_cache *second = open_ok(f->cache);
	assert_true(exists(live));
	plait_cache_free(second);
	plait_cache_free(first);
}

static mode_t mode_of(const char *p)
{
	struct stat st;
	if (stat(p, &st) < 0)
		fail_msg("stat '%s': %s", p, strerror(errno));
	return st.st_mode & 07777;
}

static const char *const private_dirs[] = { "", "layers", "steps", "mounts", "work" };

static void assert_private(const char *dir)
{
	for (size_t i = 0; i < ARRAY_SIZE(private_dirs); i++) {
		_cleanup_free_ char *p = *private_dirs[i] ? path_of(dir, private_dirs[i]) : xstrdup(dir);
		if (mode_of(p) != 0700)
			fail_msg("'%s' is mode %04o, not 0700", p, (unsigned)mode_of(p));
	}
}

/* Issue 11, finding 2: image trees with setuid files live in layers/. */
static void test_cache__new_cache_is_0700_whatever_the_umask(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *dir = path_of(f->dir, "fresh/cache");
	mode_t old = umask(0);
	struct plait_cache *c = open_ok(dir);
	umask(old);
	assert_private(dir);
	plait_cache_free(c);
}

static void test_cache__open_tightens_a_looser_cache(void **state)
{
	struct fixture *f = *state;
	_cleanup_free_ char *dir = path_of(f->dir, "old");
	plait_cache_free(open_ok(dir));
	for (size_t i = 0; i < ARRAY_SIZE(private_dirs); i++) {
		_cleanup_free_ char *p = *private_dirs[i] ? path_of(dir, private_dirs[i]) : xstrdup(dir);
		assert_int_equal(chmod(p, i % 2 ? 0755 : 02777), 0);
	}
	struct plait_cache *c = open_ok(dir);
	assert_private(dir);
	plait_cache_free(c);
}

static void test_cache__a_loose_cache_of_another_owner_is_an_error(void **state)
{
	struct fixture *f = *state;
	if (geteuid() != 0)
		skip(); /* needs a second uid to be "another owner" */
	_cleanup_free_ char *dir = path_of(f->dir, "theirs");
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(chmod(f->dir, 0711), 0); /* the child reaches dir */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(3);
		struct plait_error *err = NULL;
		int r = plait_cache_make_private(dir, &err);
		if (r < 0 && plait_write_all(fds[1], err->msg, strlen(err->msg)) < 0)
			_exit(4);
		_exit(r < 0 ? 0 : 1);
	}
	close(fds[1]);
	char msg[1024];
	ssize_t n = read(fds[0], msg, sizeof(msg) - 1);
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("the child's make_private did not fail (exit %d)", WEXITSTATUS(status));
	msg[n > 0 ? n : 0] = '\0';
	struct plait_buf want = PLAIT_BUF_INIT;
	plait_buf_addf(&want,
		       "cache directory '%s' is mode 0755 (owner uid 0), open to other users, and "
		       "cannot be made 0700: its owner should run 'chmod 700 %s', or use a "
		       "--cache-dir of your own: Operation not permitted",
		       dir, dir);
	assert_string_equal(msg, want.buf);
	plait_buf_release(&want);
	assert_int_equal(mode_of(dir), 0755);
}

static void test_cache__step_record_round_trip(void **state)
{
	struct fixture *f = *state;
	struct plait_cache *c = open_ok(f->cache);
	char key[PLAIT_SHA256_DIGEST_SIZE], ekey[PLAIT_SHA256_DIGEST_SIZE];
	key_of("RUN make", key);
	key_of("ENV A=1", ekey);
	struct plait_cache_step w = { .created = (char *)"2025-06-01T12:00:00Z",
				      .layer = { .media_type = (char *)LAYER_MT, .size = 13 } };
	memcpy(w.layer.digest, f->a.blob, sizeof(f->a.blob));
	memcpy(w.diff_id, f->a.diff, sizeof(f->a.diff));
	assert_int_equal(plait_cache_step_write(c, key, &w), 0);
	struct plait_cache_step e = { .empty = true, .created = (char *)"2025-06-02T00:00:00Z" };
	assert_int_equal(plait_cache_step_write(c, ekey, &e), 0);

	struct plait_cache_step got;
	assert_int_equal(plait_cache_step_lookup(c, key, &got), 1);
	assert_false(got.empty);
	assert_string_equal(got.created, w.created);
	assert_string_equal(got.layer.media_type, LAYER_MT);
	assert_string_equal(got.layer.digest, f->a.blob);
	assert_int_equal(got.layer.size, 13);
	assert_string_equal(got.diff_id, f->a.diff);
	plait_cache_step_release(&got);

	assert_int_equal(plait_cache_step_lookup(c, ekey, &got), 1);
	assert_true(got.empty);
	assert_string_equal(got.created, e.created);
	plait_cache_step_release(&got);

	/* the record is where du and prune look, and counts as a step */
	plait_cache_free(c);
	struct plait_cache_usage u;
	usage_ok(f, &u);
	assert_int_equal(u.kind[PLAIT_CACHE_STEPS].entries, 3 + 2);
}

static void test_cache__alias_names_the_step_and_counts_as_one(void **state)
{
	struct fixture *f = *state;
	struct plait_cache *c = open_ok(f->cache);
	char key[PLAIT_SHA256_DIGEST_SIZE], alias[PLAIT_SHA256_DIGEST_SIZE], none[PLAIT_SHA256_DIGEST_SIZE],
		got_key[PLAIT_SHA256_DIGEST_SIZE];
	key_of("COPY --from=builder /src /src, by content", key);
	key_of("COPY --from=builder /src /src, by layers", alias);
	key_of("a step that never ran", none);
	/* no record under the key: no alias either */
	assert_int_equal(plait_cache_alias_write(c, alias, none), 0);
	assert_int_equal(plait_cache_alias_lookup(c, alias, got_key), 0);

	struct plait_cache_step w = { .created = (char *)"2025-06-01T12:00:00Z",
				      .layer = { .media_type = (char *)LAYER_MT, .size = 13 } };
	memcpy(w.layer.digest, f->a.blob, sizeof(f->a.blob));
	memcpy(w.diff_id, f->a.diff, sizeof(f->a.diff));
	assert_int_equal(plait_cache_step_write(c, key, &w), 0);
	assert_int_equal(plait_cache_alias_write(c, alias, key), 1);
	assert_int_equal(plait_cache_alias_lookup(c, alias, got_key), 1);
	assert_string_equal(got_key, key);
	/* a plain step record is no alias */
	assert_int_equal(plait_cache_alias_lookup(c, key, got_key), 0);
	/* the alias is a record of the same blob: prune keeps it with its blob
	 * and drops it with it, and a lookup by it finds the step */
	struct plait_cache_step got;
	assert_int_equal(plait_cache_step_lookup(c, alias, &got), 1);
	assert_string_equal(got.layer.digest, f->a.blob);
	plait_cache_step_release(&got);
	plait_cache_free(c);
	struct plait_cache_usage u;
	usage_ok(f, &u);
	assert_int_equal(u.kind[PLAIT_CACHE_STEPS].entries, 3 + 2);
}

static void test_cache__step_lookup_misses_missing_corrupt_and_pruned(void **state)
{
	struct fixture *f = *state;
	struct plait_cache *c = open_ok(f->cache);
	struct plait_cache_step got;
	char key[PLAIT_SHA256_DIGEST_SIZE];
	key_of("never ran", key);
	assert_int_equal(plait_cache_step_lookup(c, key, &got), 0);

	static const char *const bad[] = {
		"{not json",
		"{\"empty\":true}", /* no created */
		"{\"created\":\"x\",\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
		"\"size\":1,\"diffID\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"}",
		"{\"created\":\"x\",\"mediaType\":\"m\",\"digest\":\"sha256:nothex\",\"size\":1,"
		"\"diffID\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"}",
		"{\"created\":\"x\",\"mediaType\":\"m\",\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
		"\"size\":1,\"diffID\":\"sha512:22\"}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct plait_buf name = PLAIT_BUF_INIT;
		plait_buf_addf(&name, "bad %zu", i);
		int64_t size;
		_cleanup_free_ char *p = write_record(f, name.buf, bad[i], 9000, &size);
		key_of(name.buf, key);
		plait_buf_release(&name);
		if (plait_cache_step_read(p, &got) != 0)
			fail_msg("record %zu read as valid: %s", i, bad[i]);
		if (plait_cache_step_lookup(c, key, &got) != 0)
			fail_msg("record %zu was a hit: %s", i, bad[i]);
	}

	/* a valid record whose blob was pruned: readable, but a miss */
	int64_t size;
	_cleanup_free_ char *p = write_record(
		f, "pruned",
		"{\"created\":\"x\",\"mediaType\":\"m\",\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
		"\"size\":1,\"diffID\":\"sha256:2222222222222222222222222222222222222222222222222222222222222222\"}",
		9000, &size);
	assert_int_equal(plait_cache_step_read(p, &got), 1);
	plait_cache_step_release(&got);
	key_of("pruned", key);
	assert_int_equal(plait_cache_step_lookup(c, key, &got), 0);
	plait_cache_free(c);
}

/* du/prune read records with the build's reader: one the build would not
 * use (no mediaType) is garbage to prune, not a live entry. */
static void test_cache__prune_and_lookup_agree_on_bad_records(void **state)
{
	struct fixture *f = *state;
	int64_t size;
	/* names a layer the cache has (a's), so only the record itself is wrong */
	struct plait_buf j = PLAIT_BUF_INIT;
	plait_buf_addf(&j, "{\"created\":\"x\",\"digest\":\"%s\",\"size\":13,\"diffID\":\"%s\"}", f->a.blob,
		       f->a.diff);
	_cleanup_free_ char *p = write_record(f, "no media type", j.buf, 9000, &size);
	plait_buf_release(&j);
	struct plait_cache *c = open_ok(f->cache);
	char key[PLAIT_SHA256_DIGEST_SIZE];
	struct plait_cache_step got;
	key_of("no media type", key);
	assert_int_equal(plait_cache_step_lookup(c, key, &got), 0);
	plait_cache_free(c);
	struct plait_cache_prune_opts o = { .keep_bytes = INT64_MAX / 2 };
	struct plait_cache_prune_result res;
	prune_ok(f, &o, &res);
	if (exists(p))
		fail_msg("prune kept a step record the build's lookup does not take");
	assert_true(exists(f->a.record));
}

static void test_cache__step_lock_is_exclusive_and_unlinked_when_released(void **state)
{
	struct fixture *f = *state;
	struct plait_cache *c = open_ok(f->cache);
	char key[PLAIT_SHA256_DIGEST_SIZE];
	key_of("RUN slow", key);
	struct plait_cache_step_lock a = PLAIT_CACHE_STEP_LOCK_INIT, b = PLAIT_CACHE_STEP_LOCK_INIT;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_cache_step_lock(c, key, NULL, &a, &err), 0);
	assert_true(a.fd >= 0);
	_cleanup_free_ char *work = path_of(f->cache, "work");
	assert_true(startswith(a.path, work));
	assert_true(exists(a.path));
	/* a second holder waits; cancelled, it gives up without the lock */
	atomic_int cancel = 1;
	assert_int_equal(plait_cache_step_lock(c, key, &cancel, &b, &err), -PLAIT_E_CANCELLED);
	assert_int_equal(b.fd, -1);
	plait_error_free(err);
	err = NULL;
	_cleanup_free_ char *path = xstrdup(a.path);
	plait_cache_step_unlock(&a);
	assert_int_equal(a.fd, -1);
	if (exists(path))
		fail_msg("the step's lock file is still there after unlock");
	/* now free: taken at once even with the cancel flag set */
	assert_int_equal(plait_cache_step_lock(c, key, &cancel, &b, &err), 0);
	plait_cache_step_unlock(&b);
	plait_cache_step_unlock(&b); /* a no-op */
	plait_cache_free(c);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cache__usage_counts_each_kind),
		T(test_cache__missing_dir_is_empty_and_not_created),
		T(test_cache__usage_of_a_file_is_an_error),
		T(test_cache__prune_keep_removes_least_recently_used_first),
		T(test_cache__prune_keep_nothing_to_do_keeps_live_entries),
		T(test_cache__prune_base_layer_takes_its_manifest_and_tag),
		T(test_cache__prune_removes_records_whose_blob_is_gone),
		T(test_cache__prune_all_empties_the_cache),
		T(test_cache__prune_never_follows_symlinks_out),
		T(test_cache__prune_refuses_while_a_build_holds_the_lock),
		T(test_cache__prune_dry_run_removes_nothing),
		T(test_cache__prune_rejects_a_negative_keep),
		T(test_cache__open_makes_the_layout_and_holds_the_shared_lock),
		T(test_cache__open_alone_clears_what_a_crashed_build_left),
		T(test_cache__new_cache_is_0700_whatever_the_umask),
		T(test_cache__open_tightens_a_looser_cache),
		T(test_cache__a_loose_cache_of_another_owner_is_an_error),
		T(test_cache__step_record_round_trip),
		T(test_cache__alias_names_the_step_and_counts_as_one),
		T(test_cache__step_lookup_misses_missing_corrupt_and_pruned),
		T(test_cache__prune_and_lookup_agree_on_bad_records),
		T(test_cache__step_lock_is_exclusive_and_unlinked_when_released),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
