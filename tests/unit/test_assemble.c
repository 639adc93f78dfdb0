/* Unit tests for core/assemble.c: `plait index create` from local layouts,
 * through the real publish protocol: entries in the order of the sources,
 * platforms read from the configs, --append replacing an entry of the same
 * platform, two images for one platform refused, the epoch as the index's
 * created time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tmpdir.h"

#include <stdio.h>

#include "core/assemble.h"

struct fixture {
	char *dir;
	char man[3][PLAIT_SHA256_DIGEST_SIZE]; /* a: amd64, b: arm64, c: amd64 again */
};

static void put(struct plait_store *s, const char *data, size_t len, char digest[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_error *err = NULL;
	if (plait_store_put_bytes(s, data, len, digest, &err) < 0)
		fail_msg("put_bytes: %s", err->msg);
}

/* oci:<dir>/<name>:v1, one image for arch whose layer holds text. */
static void make_image(struct fixture *f, const char *name, const char *arch, const char *text,
		       char digest[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_error *err = NULL;
	struct plait_store *s = NULL;
	char path[300];
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	assert_int_equal(plait_store_open(path, true, &s, &err), 0);
	char layer[PLAIT_SHA256_DIGEST_SIZE], cfgd[PLAIT_SHA256_DIGEST_SIZE];
	put(s, text, strlen(text), layer);
	struct plait_buf cfg = PLAIT_BUF_INIT, man = PLAIT_BUF_INIT;
	plait_buf_addf(&cfg, "{\"architecture\":\"%s\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
			     "\"diff_ids\":[\"%s\"]}}",
		       arch, layer);
	put(s, cfg.buf, cfg.len, cfgd);
	plait_buf_addf(&man,
		       "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		       "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\","
		       "\"size\":%zu},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
		       "\"digest\":\"%s\",\"size\":%zu}]}",
		       cfgd, cfg.len, layer, strlen(text));
	put(s, man.buf, man.len, digest);
	struct plait_descriptor root = { .media_type = (char *)"application/vnd.oci.image.manifest.v1+json",
					 .size = (int64_t)man.len };
	memcpy(root.digest, digest, PLAIT_SHA256_DIGEST_SIZE);
	assert_int_equal(plait_store_tag(s, &root, "v1", &err), 0);
	plait_buf_release(&cfg);
	plait_buf_release(&man);
	plait_store_free(s);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = test_mkdtemp("test-assemble");
	make_image(f, "a", "amd64", "amd64 one", f->man[0]);
	make_image(f, "b", "arm64", "arm64 one", f->man[1]);
	make_image(f, "c", "amd64", "amd64 two", f->man[2]);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	plait_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static int open_local(void *ctx, const char *spec, bool for_write, struct plait_endpoint **out,
		      struct plait_error **err)
{
	(void)ctx;
	return plait_endpoint_open_local(spec, for_write, out, err);
}

static char *spec(const struct fixture *f, const char *name, const char *tag)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "oci:%s/%s:%s", f->dir, name, tag);
	return plait_buf_detach(&b, NULL);
}

/* Run index create; returns its result code, *err set on failure. */
static int create(char **dsts, char **srcs, const struct plait_assemble_opts *o, size_t *n_entries,
		  struct plait_error **err)
{
	struct plait_assembled *made = NULL;
	size_t n = 0;
	int r = plait_assemble_create(dsts, NULL, 0, srcs, o, &made, &n, err);
	if (r >= 0) {
		assert_int_equal(n, 1);
		*n_entries = made[0].n_entries;
		assert_non_null(strstr(made[0].ref, made[0].digest));
	}
	plait_assembled_free(made, n);
	return r;
}

/* The index at spec, parsed. */
static void read_index(const char *where, struct plait_index *idx)
{
	struct plait_endpoint *ep = NULL;
	struct plait_descriptor root = { 0 };
	struct plait_buf data = PLAIT_BUF_INIT;
	struct plait_error *err = NULL;
	if (plait_endpoint_open_local(where, false, &ep, &err) < 0 ||
	    plait_endpoint_resolve(ep, NULL, &root, &data, &err) < 0 ||
	    plait_index_parse(data.buf, data.len, idx, &err) < 0)
		fail_msg("%s: %s", where, err->msg);
	plait_descriptor_release(&root);
	plait_buf_release(&data);
	plait_endpoint_free(ep);
}

static void assert_entry(const struct plait_index *idx, size_t i, const char *digest, const char *arch)
{
	if (i >= idx->n_manifests)
		fail_msg("entry %zu missing (the index has %zu)", i, idx->n_manifests);
	const struct plait_descriptor *d = &idx->manifests[i];
	if (!streq(d->digest, digest) || !d->platform || !streq_ptr(d->platform->architecture, arch))
		fail_msg("entry %zu is %.19s (%s), want the %s image %.19s", i, d->digest,
			 d->platform && d->platform->architecture ? d->platform->architecture : "no platform", arch,
			 digest);
}

static const struct plait_assemble_opts defaults = { .format = PLAIT_MT_OCI_INDEX, .open = open_local };

static void test_assemble__entries_follow_the_sources(void **state)
{
	struct fixture *f = *state;
	char *dsts[] = { spec(f, "out", "1.0"), NULL };
	char *srcs[] = { spec(f, "b", "v1"), spec(f, "a", "v1"), NULL };
	struct plait_error *err = NULL;
	size_t n = 0;
	if (create(dsts, srcs, &defaults, &n, &err) < 0)
		fail_msg("create: %s", err->msg);
	assert_int_equal(n, 2);
	struct plait_index idx = { 0 };
	read_index(dsts[0], &idx);
	assert_int_equal(idx.n_manifests, 2);
	assert_entry(&idx, 0, f->man[1], "arm64");
	assert_entry(&idx, 1, f->man[0], "amd64");
	assert_null(plait_map_get(&idx.annotations, "org.opencontainers.image.created"));
	plait_index_release(&idx);
	free(dsts[0]);
	free(srcs[0]);
	free(srcs[1]);
}

static void test_assemble__append_replaces_the_same_platform(void **state)
{
	struct fixture *f = *state;
	char *dsts[] = { spec(f, "app", "1.0"), NULL };
	char *first[] = { spec(f, "a", "v1"), spec(f, "b", "v1"), NULL };
	char *then[] = { spec(f, "c", "v1"), NULL };
	struct plait_error *err = NULL;
	size_t n = 0;
	if (create(dsts, first, &defaults, &n, &err) < 0)
		fail_msg("create: %s", err->msg);
	struct plait_assemble_opts o = defaults;
	o.append = true;
	if (create(dsts, then, &o, &n, &err) < 0)
		fail_msg("create --append: %s", err->msg);
	struct plait_index idx = { 0 };
	read_index(dsts[0], &idx);
	/* the base's arm64 stays, its amd64 gives way to the new one, which comes last */
	if (idx.n_manifests != 2)
		fail_msg("after --append the index has %zu entries, want 2 (one per platform)", idx.n_manifests);
	assert_entry(&idx, 0, f->man[1], "arm64");
	assert_entry(&idx, 1, f->man[2], "amd64");
	plait_index_release(&idx);
	free(dsts[0]);
	free(first[0]);
	free(first[1]);
	free(then[0]);
}

static void test_assemble__two_images_for_one_platform_are_refused(void **state)
{
	struct fixture *f = *state;
	char *dsts[] = { spec(f, "clash", "1.0"), NULL };
	char *srcs[] = { spec(f, "a", "v1"), spec(f, "c", "v1"), NULL };
	struct plait_error *err = NULL;
	size_t n = 0;
	assert_int_equal(create(dsts, srcs, &defaults, &n, &err), -PLAIT_E_USAGE);
	assert_non_null(strstr(err->msg, "two images for linux/amd64"));
	plait_error_free(err);
	free(dsts[0]);
	free(srcs[0]);
	free(srcs[1]);
}

static void test_assemble__epoch_is_the_created_time(void **state)
{
	struct fixture *f = *state;
	char *dsts[] = { spec(f, "dated", "1.0"), NULL };
	char *srcs[] = { spec(f, "a", "v1"), NULL };
	struct plait_error *err = NULL;
	size_t n = 0;
	struct plait_assemble_opts o = defaults;
	o.have_epoch = true;
	o.epoch = 1700000000;
	if (create(dsts, srcs, &o, &n, &err) < 0)
		fail_msg("create: %s", err->msg);
	struct plait_index idx = { 0 };
	read_index(dsts[0], &idx);
	assert_string_equal(plait_map_get(&idx.annotations, "org.opencontainers.image.created"),
			    "2023-11-14T22:13:20Z");
	plait_index_release(&idx);
	free(dsts[0]);
	free(srcs[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_assemble__entries_follow_the_sources),
		cmocka_unit_test(test_assemble__append_replaces_the_same_platform),
		cmocka_unit_test(test_assemble__two_images_for_one_platform_are_refused),
		cmocka_unit_test(test_assemble__epoch_is_the_created_time),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
