/* Unit tests for core/build_needs.c's build_resolve_bases(): a stage that
 * only the base image names (an ONBUILD trigger, a variable only its ENV
 * sets) is built, as BuildKit does, because base images are resolved before
 * the stage loop; each base image is resolved once (FROM pulls what was
 * resolved); plait_build_needs() still reads the Dockerfile only.
 *
 * Real builds with plait_build(): COPY-only Dockerfiles (no runner needed),
 * base images built first into a second cache and served by a fake resolver. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/build.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/oci.h"
#include "core/store.h"

#include "core/banned.h"

#define MAX_IMAGES 4

struct image {
	char *ref;
	struct plait_descriptor man;
	struct plait_buf bytes;
	int resolved; /* times the resolver was asked */
};

struct fixture {
	char dir[64];
	char *ctx, *base_cache, *cache;
	struct image img[MAX_IMAGES];
	size_t n_img;
	bool resolver_forbidden;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/plait-test-onbuild-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	f->ctx = plait_path_concat(f->dir, "ctx");
	f->base_cache = plait_path_concat(f->dir, "base-cache");
	f->cache = plait_path_concat(f->dir, "cache");
	if (mkdir(f->ctx, 0755) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (size_t i = 0; i < f->n_img; i++) {
		free(f->img[i].ref);
		plait_descriptor_release(&f->img[i].man);
		plait_buf_release(&f->img[i].bytes);
	}
	plait_rm_rf(f->dir);
	free(f->ctx);
	free(f->base_cache);
	free(f->cache);
	free(f);
	return 0;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *p = plait_path_concat(dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, text, strlen(text)), 0);
	close(fd);
}

/* Serves the images built by base_image() from the base cache's store. */
static int fake_resolve(void *ctx, const char *ref, const char *platform, struct plait_endpoint **ep,
			struct plait_descriptor *manifest, struct plait_buf *bytes, struct plait_error **err)
{
	struct fixture *f = ctx;
	(void)platform;
	if (f->resolver_forbidden)
		fail_msg("the resolver was asked for %s", ref);
	for (size_t i = 0; i < f->n_img; i++) {
		struct image *im = &f->img[i];
		if (!streq(im->ref, ref))
			continue;
		im->resolved++;
		_cleanup_free_ char *sd = plait_build_cache_store(f->base_cache);
		struct plait_store *s = NULL;
		int r = plait_store_open(sd, false, &s, err);
		if (r < 0)
			return r;
		*ep = plait_layout_endpoint_new(s, sd, sd, NULL);
		plait_descriptor_copy(manifest, &im->man);
		plait_buf_add(bytes, im->bytes.buf, im->bytes.len);
		return 0;
	}
	return plait_error_set(err, PLAIT_E_NOT_FOUND, "no image %s", ref);
}

static const struct plait_image_resolver *resolver_of(struct fixture *f)
{
	static struct plait_image_resolver res;
	res = (struct plait_image_resolver){ .ctx = f, .resolve = fake_resolve };
	return &res;
}

static void opts_for(struct fixture *f, const char *dockerfile, const char *cache, struct plait_build_opts *o)
{
	write_file(f->ctx, "Dockerfile", dockerfile);
	*o = (struct plait_build_opts){
		.context_dir = f->ctx,
		.platform = { .os = (char *)"linux", .architecture = (char *)"amd64" },
		.platform_str = "linux/amd64",
		.build_platform = { .os = (char *)"linux", .architecture = (char *)"amd64" },
		.build_platform_str = "linux/amd64",
		.cache_dir = cache,
		.compression = PLAIT_LAYER_UNCOMPRESSED,
		.have_epoch = true,
		.resolver = resolver_of(f),
	};
}

/* Build dockerfile into the cache; r as plait_build returns it. */
static int build(struct fixture *f, const char *dockerfile, const char *cache, struct plait_build_result *res,
		 struct plait_error **err)
{
	struct plait_build_opts o;
	opts_for(f, dockerfile, cache, &o);
	return plait_build(&o, res, err);
}

/* Build dockerfile into the base cache and serve it as ref. */
static void base_image(struct fixture *f, const char *ref, const char *dockerfile)
{
	struct plait_build_result res;
	_cleanup_error_ struct plait_error *err = NULL;
	if (build(f, dockerfile, f->base_cache, &res, &err) < 0)
		fail_msg("base image %s: %s", ref, err->msg);
	assert_true(f->n_img < MAX_IMAGES);
	struct image *im = &f->img[f->n_img++];
	im->ref = xstrdup(ref);
	plait_descriptor_copy(&im->man, &res.manifest);
	im->bytes = (struct plait_buf)PLAIT_BUF_INIT;
	_cleanup_free_ char *sd = plait_build_cache_store(f->base_cache);
	struct plait_store *s = NULL;
	assert_int_equal(plait_store_open(sd, false, &s, NULL), 0);
	assert_int_equal(plait_store_read_blob(s, res.manifest.digest, 1 << 20, &im->bytes, NULL), 0);
	plait_store_free(s);
	plait_build_result_release(&res);
}

static int resolved(struct fixture *f, const char *ref)
{
	for (size_t i = 0; i < f->n_img; i++)
		if (streq(f->img[i].ref, ref))
			return f->img[i].resolved;
	return -1;
}

/* The content of path (as a tar member name, "y") in the image's layers,
 * topmost first; NULL when no layer holds it. Layers are uncompressed. */
static char *file_in_image(struct fixture *f, const struct plait_build_result *res, const char *path)
{
	_cleanup_free_ char *sd = plait_build_cache_store(f->cache);
	struct plait_store *s = NULL;
	assert_int_equal(plait_store_open(sd, false, &s, NULL), 0);
	struct plait_buf mb = PLAIT_BUF_INIT;
	assert_int_equal(plait_store_read_blob(s, res->manifest.digest, 1 << 20, &mb, NULL), 0);
	struct plait_manifest m = { 0 };
	assert_int_equal(plait_manifest_parse(mb.buf, mb.len, &m, NULL), 0);
	char *found = NULL;
	for (size_t i = m.n_layers; i-- > 0 && !found;) {
		struct plait_buf t = PLAIT_BUF_INIT;
		assert_int_equal(plait_store_read_blob(s, m.layers[i].digest, 1 << 24, &t, NULL), 0);
		for (size_t off = 0; off + 512 <= t.len && t.buf[off];) {
			const char *h = t.buf + off;
			char name[101] = { 0 }, size_s[13] = { 0 };
			memcpy(name, h, 100);
			memcpy(size_s, h + 124, 12);
			size_t size = (size_t)strtoul(size_s, NULL, 8);
			const char *n = name;
			while (n[0] == '.' && n[1] == '/')
				n += 2;
			if (streq(n, path) && off + 512 + size <= t.len) {
				found = xstrndup(t.buf + off + 512, size);
				break;
			}
			off += 512 + (size + 511) / 512 * 512;
		}
		plait_buf_release(&t);
	}
	plait_manifest_release(&m);
	plait_buf_release(&mb);
	plait_store_free(s);
	return found;
}

static void assert_file(struct fixture *f, const struct plait_build_result *res, const char *path,
			const char *want)
{
	_cleanup_free_ char *got = file_in_image(f, res, path);
	if (!got)
		fail_msg("/%s is in no layer of the image", path);
	if (!streq(got, want))
		fail_msg("/%s holds '%s', want '%s'", path, got, want);
}

static void build_ok(struct fixture *f, const char *dockerfile, struct plait_build_result *res)
{
	_cleanup_error_ struct plait_error *err = NULL;
	if (build(f, dockerfile, f->cache, res, &err) < 0)
		fail_msg("build: %s", err->msg);
}

static void test_onbuild__copy_from_a_stage_only_the_trigger_names(void **state)
{
	struct fixture *f = *state;
	write_file(f->ctx, "x", "hi\n");
	base_image(f, "parent", "FROM scratch\nONBUILD COPY --from=helper /x /y\n");
	struct plait_build_result res;
	build_ok(f, "FROM scratch AS helper\nCOPY x /x\nFROM parent\n", &res);
	assert_file(f, &res, "y", "hi\n");
	/* FROM pulled what was resolved up front: one look-up */
	assert_int_equal(resolved(f, "parent"), 1);
	plait_build_result_release(&res);
}

static void test_onbuild__from_var_only_the_base_env_sets(void **state)
{
	struct fixture *f = *state;
	write_file(f->ctx, "x", "hi\n");
	base_image(f, "parent", "FROM scratch\nENV SRC=helper\n");
	struct plait_build_result res;
	build_ok(f, "FROM scratch AS helper\nCOPY x /x\nFROM parent\nCOPY --from=$SRC /x /z\n", &res);
	assert_file(f, &res, "z", "hi\n");
	assert_int_equal(resolved(f, "parent"), 1);
	plait_build_result_release(&res);
}

/* A trigger's value expanded with the image's ENV, as the step expands it. */
static void test_onbuild__trigger_expanded_with_the_base_env(void **state)
{
	struct fixture *f = *state;
	write_file(f->ctx, "x", "hi\n");
	base_image(f, "parent", "FROM scratch\nENV SRC=helper\nONBUILD COPY --from=${SRC} /x /y\n");
	struct plait_build_result res;
	build_ok(f, "FROM scratch AS helper\nCOPY x /x\nFROM parent\n", &res);
	assert_file(f, &res, "y", "hi\n");
	plait_build_result_release(&res);
}

/* A stage the triggers add has a base image of its own, whose trigger needs
 * one more stage: resolving repeats until nothing new is needed. */
static void test_onbuild__stages_added_bring_their_own_bases(void **state)
{
	struct fixture *f = *state;
	write_file(f->ctx, "x", "hi\n");
	base_image(f, "onb-helper", "FROM scratch\nONBUILD COPY --from=helper /x /y\n");
	base_image(f, "onb-mid", "FROM scratch\nONBUILD COPY --from=mid /y /w\n");
	struct plait_build_result res;
	build_ok(f, "FROM scratch AS helper\nCOPY x /x\nFROM onb-helper AS mid\nFROM onb-mid\n", &res);
	assert_file(f, &res, "w", "hi\n");
	assert_int_equal(resolved(f, "onb-mid"), 1);
	assert_int_equal(resolved(f, "onb-helper"), 1);
	plait_build_result_release(&res);
}

/* A trigger naming no stage names an image, as before. */
static void test_onbuild__trigger_naming_no_stage_is_an_image(void **state)
{
	struct fixture *f = *state;
	write_file(f->ctx, "x", "hi\n");
	base_image(f, "parent", "FROM scratch\nONBUILD COPY --from=nosuch /x /y\n");
	struct plait_build_result res;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_true(build(f, "FROM scratch AS helper\nCOPY x /x\nFROM parent\n", f->cache, &res, &err) < 0);
	if (!strstr(err->msg, "--from=nosuch (no earlier stage has that name)") || !strstr(err->msg, "no image nosuch"))
		fail_msg("error: %s", err->msg);
}

/* A base image that cannot be resolved fails at its FROM, with FROM's message. */
static void test_onbuild__unresolvable_base_fails_at_its_from(void **state)
{
	struct fixture *f = *state;
	write_file(f->ctx, "x", "hi\n");
	struct plait_build_result res;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_true(build(f, "FROM scratch AS helper\nCOPY x /x\nFROM missing\nCOPY --from=helper /x /y\n", f->cache,
			  &res, &err) < 0);
	if (!strstr(err->msg, "Dockerfile:3: FROM missing: no image missing"))
		fail_msg("error: %s", err->msg);
}

/* The planner's query reads the Dockerfile only: it asks no resolver. */
static void test_onbuild__planner_query_pulls_nothing(void **state)
{
	struct fixture *f = *state;
	struct plait_build_opts o;
	opts_for(f, "FROM alpine:3 AS helper\nFROM parent\n", f->cache, &o);
	f->resolver_forbidden = true;
	struct plait_build_needs n;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_build_needs(&o, &n, &err) < 0)
		fail_msg("needs: %s", err->msg);
	assert_int_equal(n.n_bases, 1);
	assert_string_equal(n.bases[0].ref, "parent");
	plait_build_needs_release(&n);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_onbuild__copy_from_a_stage_only_the_trigger_names),
		T(test_onbuild__from_var_only_the_base_env_sets),
		T(test_onbuild__trigger_expanded_with_the_base_env),
		T(test_onbuild__stages_added_bring_their_own_bases),
		T(test_onbuild__trigger_naming_no_stage_is_an_image),
		T(test_onbuild__unresolvable_base_fails_at_its_from),
		T(test_onbuild__planner_query_pulls_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
