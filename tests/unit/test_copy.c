/* Unit tests for core/copy.c and the local endpoints (core/layout.c, core/archive.c):
 * an index with two platforms is copied layout -> archive -> layout and must
 * arrive byte-identical; a corrupt source blob fails the copy and tags nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/copy.h"

struct fixture {
	struct plait_tmpdir tmp;
	char *dir; /* tmp.path */
	struct plait_buf index_bytes;
	char index_digest[PLAIT_SHA256_DIGEST_SIZE];
	char layer_digest[2][PLAIT_SHA256_DIGEST_SIZE];
};

static void put(struct plait_store *s, const char *data, size_t len, char digest[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_error *err = NULL;
	int r = plait_store_put_bytes(s, data, len, digest, &err);
	if (r < 0)
		fail_msg("put_bytes: %s", err->msg);
}

/* Make oci:<dir>/src tagged "v1": an index of two single-layer images. */
static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct plait_error *err = NULL;
	assert_int_equal(plait_mkdtemp("test-copy", &f->tmp, &err), 0);
	f->dir = f->tmp.path;
	struct plait_buf path = PLAIT_BUF_INIT;
	plait_buf_addf(&path, "%s/src", f->dir);
	struct plait_store *s = NULL;
	assert_int_equal(plait_store_open(path.buf, true, &s, &err), 0);

	static const char *const arches[2] = { "amd64", "arm64" };
	struct plait_index idx = { .schema_version = 2 };
	idx.media_type = xstrdup("application/vnd.oci.image.index.v1+json");
	for (int i = 0; i < 2; i++) {
		struct plait_buf layer = PLAIT_BUF_INIT, cfg = PLAIT_BUF_INIT, man = PLAIT_BUF_INIT;
		for (int k = 0; k < 5000; k++)
			plait_buf_addf(&layer, "layer %s line %d\n", arches[i], k);
		put(s, layer.buf, layer.len, f->layer_digest[i]);
		plait_buf_addf(&cfg,
			       "{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
			       arches[i], f->layer_digest[i]);
		char cfg_digest[PLAIT_SHA256_DIGEST_SIZE], man_digest[PLAIT_SHA256_DIGEST_SIZE];
		put(s, cfg.buf, cfg.len, cfg_digest);
		plait_buf_addf(&man,
			       "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
			       "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
			       "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\",\"size\":%zu}]}",
			       cfg_digest, cfg.len, f->layer_digest[i], layer.len);
		put(s, man.buf, man.len, man_digest);
		struct plait_platform p = { .os = (char *)"linux", .architecture = (char *)arches[i] };
		struct plait_descriptor d = { .media_type = (char *)"application/vnd.oci.image.manifest.v1+json",
					      .size = (int64_t)man.len, .platform = &p };
		memcpy(d.digest, man_digest, sizeof(man_digest));
		plait_index_add(&idx, &d);
		plait_buf_release(&layer);
		plait_buf_release(&cfg);
		plait_buf_release(&man);
	}
	assert_int_equal(plait_index_serialise(&idx, &f->index_bytes, &err), 0);
	put(s, f->index_bytes.buf, f->index_bytes.len, f->index_digest);
	struct plait_descriptor root = { .media_type = idx.media_type, .size = (int64_t)f->index_bytes.len };
	memcpy(root.digest, f->index_digest, sizeof(f->index_digest));
	assert_int_equal(plait_store_tag(s, &root, "v1", &err), 0);
	plait_index_release(&idx);
	plait_store_free(s);
	plait_buf_release(&path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	plait_tmpdir_remove(&f->tmp);
	plait_buf_release(&f->index_bytes);
	free(f);
	return 0;
}

static char *spec(const struct fixture *f, const char *kind, const char *rest)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s:%s/%s", kind, f->dir, rest);
	return plait_buf_detach(&b, NULL);
}

/* Copy from spec a to spec b (tagging tag); returns the result and fills err. */
static int copy(const char *a, const char *b, const char *tag, struct plait_copy_stats *stats,
		struct plait_error **err)
{
	struct plait_endpoint *src = NULL, *dst = NULL;
	struct plait_descriptor root = { 0 };
	struct plait_buf data = PLAIT_BUF_INIT;
	int r = plait_endpoint_open_local(a, false, &src, err);
	if (r >= 0)
		r = plait_endpoint_resolve(src, NULL, &root, &data, err);
	if (r >= 0)
		r = plait_endpoint_open_local(b, true, &dst, err);
	if (r >= 0)
		r = plait_copy_image(src, dst, &root, data.buf, data.len, tag, NULL, stats, err);
	if (r >= 0)
		r = plait_endpoint_commit(dst, err);
	plait_endpoint_free(src);
	plait_endpoint_free(dst);
	plait_descriptor_release(&root);
	plait_buf_release(&data);
	return r;
}

static void assert_index_at(const struct fixture *f, const char *where)
{
	struct plait_error *err = NULL;
	struct plait_endpoint *ep = NULL;
	struct plait_descriptor root = { 0 };
	struct plait_buf data = PLAIT_BUF_INIT;
	if (plait_endpoint_open_local(where, false, &ep, &err) < 0 ||
	    plait_endpoint_resolve(ep, NULL, &root, &data, &err) < 0)
		fail_msg("%s: %s", where, err->msg);
	assert_string_equal(root.digest, f->index_digest);
	assert_int_equal(data.len, f->index_bytes.len);
	assert_memory_equal(data.buf, f->index_bytes.buf, data.len);
	plait_endpoint_free(ep);
	plait_descriptor_release(&root);
	plait_buf_release(&data);
}

static void test_copy__layout_archive_layout_keeps_index_bytes(void **state)
{
	struct fixture *f = *state;
	struct plait_error *err = NULL;
	struct plait_copy_stats st = { 0 };
	_cleanup_free_ char *src = spec(f, "oci", "src:v1");
	_cleanup_free_ char *arc = spec(f, "oci-archive", "img.tar:v1");
	_cleanup_free_ char *dst = spec(f, "oci", "dst:v2");
	_cleanup_free_ char *dst_read = spec(f, "oci", "dst:v2");

	if (copy(src, arc, "v1", &st, &err) < 0)
		fail_msg("copy to archive: %s", err->msg);
	assert_int_equal(st.blobs_copied, 4); /* 2 configs + 2 layers */
	assert_int_equal(st.manifests, 3);
	assert_index_at(f, arc);
	if (copy(arc, dst, "v2", &st, &err) < 0)
		fail_msg("copy from archive: %s", err->msg);
	assert_index_at(f, dst_read);
}

static void test_copy__second_copy_skips_present_blobs(void **state)
{
	struct fixture *f = *state;
	struct plait_error *err = NULL;
	struct plait_copy_stats st = { 0 };
	_cleanup_free_ char *src = spec(f, "oci", "src:v1");
	_cleanup_free_ char *dst = spec(f, "oci", "again:v1");
	assert_int_equal(copy(src, dst, "v1", &st, &err), 0);
	assert_int_equal(st.blobs_copied, 4);
	assert_int_equal(copy(src, dst, "v1", &st, &err), 0);
	assert_int_equal(st.blobs_copied, 0);
	assert_int_equal(st.blobs_skipped, 4);
}

static void test_copy__foreign_layers_stay_behind(void **state)
{
	/* A Docker manifest with a foreign layer (only its urls hold it, as on
	 * Windows base images): the copy succeeds without it, as skopeo's does. */
	struct fixture *f = *state;
	struct plait_error *err = NULL;
	_cleanup_free_ char *src = spec(f, "oci", "foreign:f1");
	_cleanup_free_ char *dst = spec(f, "oci", "foreign-copy:f1");
	struct plait_buf path = PLAIT_BUF_INIT, man = PLAIT_BUF_INIT;
	plait_buf_addf(&path, "%s/foreign", f->dir);
	struct plait_store *s = NULL;
	assert_int_equal(plait_store_open(path.buf, true, &s, &err), 0);
	static const char cfg[] = "{\"architecture\":\"amd64\",\"os\":\"windows\",\"rootfs\":{\"type\":\"layers\"}}";
	char cfg_digest[PLAIT_SHA256_DIGEST_SIZE], man_digest[PLAIT_SHA256_DIGEST_SIZE];
	put(s, cfg, strlen(cfg), cfg_digest);
	/* the second layer is the fixture's amd64 one: its real size */
	int64_t lsize = 0;
	struct plait_store *fs = NULL;
	struct plait_buf fp = PLAIT_BUF_INIT;
	plait_buf_addf(&fp, "%s/src", f->dir);
	assert_int_equal(plait_store_open(fp.buf, false, &fs, &err), 0);
	assert_int_equal(plait_store_has(fs, f->layer_digest[0], &lsize, &err), 1);
	struct plait_buf layer = PLAIT_BUF_INIT;
	assert_int_equal(plait_store_read_blob(fs, f->layer_digest[0], 1 << 20, &layer, &err), 0);
	char ld[PLAIT_SHA256_DIGEST_SIZE];
	put(s, layer.buf, layer.len, ld);
	plait_store_free(fs);
	plait_buf_release(&fp);
	plait_buf_release(&layer);
	plait_buf_addf(&man,
		       "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
		       "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
		       "\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\","
		       "\"digest\":\"sha256:%064d\",\"size\":1000,\"urls\":[\"https://example.invalid/l.tgz\"]},"
		       "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\",\"digest\":\"%s\",\"size\":%lld}]}",
		       cfg_digest, strlen(cfg), 7, ld, (long long)lsize);
	put(s, man.buf, man.len, man_digest);
	struct plait_descriptor root = { .media_type = (char *)"application/vnd.docker.distribution.manifest.v2+json",
					 .size = (int64_t)man.len };
	memcpy(root.digest, man_digest, sizeof(man_digest));
	assert_int_equal(plait_store_tag(s, &root, "f1", &err), 0);
	plait_store_free(s);

	struct plait_copy_stats st = { 0 };
	if (copy(src, dst, "f1", &st, &err) < 0)
		fail_msg("copy of an image with a foreign layer: %s", err->msg);
	assert_int_equal(st.blobs_copied, 2); /* the config and the ordinary layer */
	struct plait_store *d = NULL;
	plait_buf_reset(&path);
	plait_buf_addf(&path, "%s/foreign-copy", f->dir);
	assert_int_equal(plait_store_open(path.buf, false, &d, &err), 0);
	char foreign[PLAIT_SHA256_DIGEST_SIZE];
	snprintf(foreign, sizeof(foreign), "sha256:%064d", 7);
	assert_int_equal(plait_store_has(d, foreign, NULL, &err), 0);
	assert_int_equal(plait_store_has(d, man_digest, NULL, &err), 1); /* the manifest, unchanged */
	plait_store_free(d);
	plait_buf_release(&path);
	plait_buf_release(&man);
}

static void test_copy__corrupt_source_blob_fails_and_tags_nothing(void **state)
{
	struct fixture *f = *state;
	struct plait_error *err = NULL;
	/* Corrupt the arm64 layer in the source: same length, one byte changed. */
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/src/blobs/sha256/%s", f->dir, plait_digest_hex(f->layer_digest[1]));
	int fd = open(p.buf, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 10), 1);
	close(fd);

	_cleanup_free_ char *src = spec(f, "oci", "src:v1");
	_cleanup_free_ char *dst = spec(f, "oci", "bad:v1");
	int r = copy(src, dst, "v1", NULL, &err);
	assert_true(r < 0);
	assert_int_equal(err->code, PLAIT_E_INVALID);
	assert_non_null(strstr(err->msg, f->layer_digest[1]));
	plait_error_clear(&err);

	/* Nothing under the layer's name, and no tag. */
	struct plait_buf q = PLAIT_BUF_INIT;
	plait_buf_addf(&q, "%s/bad/blobs/sha256/%s", f->dir, plait_digest_hex(f->layer_digest[1]));
	struct stat st;
	assert_int_equal(stat(q.buf, &st), -1);
	struct plait_endpoint *ep = NULL;
	struct plait_descriptor root = { 0 };
	struct plait_buf data = PLAIT_BUF_INIT;
	assert_int_equal(plait_endpoint_open_local(dst, false, &ep, &err), 0);
	r = plait_endpoint_resolve(ep, NULL, &root, &data, &err);
	assert_true(r < 0);
	assert_int_equal(err->code, PLAIT_E_NOT_FOUND);
	plait_error_clear(&err);
	plait_endpoint_free(ep);
	plait_buf_release(&data);
	plait_buf_release(&p);
	plait_buf_release(&q);
}

static void test_copy__archive_refuses_member_outside(void **state)
{
	struct fixture *f = *state;
	struct plait_error *err = NULL;
	/* A tar whose member climbs out with "..": made with tar(1)'s -P. */
	struct plait_buf cmd = PLAIT_BUF_INIT;
	plait_buf_addf(&cmd,
		       "cd '%s' && mkdir -p ev/a && echo pwned > ev/evil && "
		       "tar -C ev/a -P -cf evil.tar ../evil 2>/dev/null",
		       f->dir);
	assert_int_equal(system(cmd.buf), 0);
	_cleanup_free_ char *arc = spec(f, "oci-archive", "evil.tar");
	struct plait_endpoint *ep = NULL;
	int r = plait_endpoint_open_local(arc, false, &ep, &err);
	assert_true(r < 0);
	assert_non_null(strstr(err->msg, "outside"));
	plait_error_clear(&err);
	plait_buf_release(&cmd);
}

static void test_copy__bad_local_specs_say_what_is_wrong(void **state)
{
	(void)state;
	struct plait_error *err = NULL;
	struct plait_endpoint *ep = NULL;
	assert_int_equal(plait_endpoint_open_local("docker://x", false, &ep, &err), -PLAIT_E_USAGE);
	assert_non_null(strstr(err->msg, "oci:DIR"));
	plait_error_clear(&err);
	assert_int_equal(plait_endpoint_open_local("oci:", false, &ep, &err), -PLAIT_E_USAGE);
	plait_error_clear(&err);
	assert_true(plait_endpoint_open_local("oci-archive:/nonexistent/x.tar", false, &ep, &err) < 0);
	assert_non_null(strstr(err->msg, "/nonexistent/x.tar"));
	plait_error_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy__layout_archive_layout_keeps_index_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy__second_copy_skips_present_blobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy__foreign_layers_stay_behind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy__corrupt_source_blob_fails_and_tags_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy__archive_refuses_member_outside, setup, teardown),
		cmocka_unit_test(test_copy__bad_local_specs_say_what_is_wrong),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
