/* Unit tests for core/metadata.c: what `plait build --metadata-file` writes
 * is what `plait index create --from-metadata` reads back, with and without
 * variants; files it cannot use are refused naming the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "tmpdir.h"

#include <stdio.h>

#include "core/endpoint.h"
#include "core/metadata.h"

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "sha256:3333333333333333333333333333333333333333333333333333333333333333"
#define INDEX_MT "application/vnd.oci.image.index.v1+json"

struct fixture {
	char *dir;
	char path[256];
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	f->dir = test_mkdtemp("test-metadata");
	snprintf(f->path, sizeof(f->path), "%s/meta.json", f->dir);
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

static const struct plait_metadata_platform two[] = {
	{ .platform = "linux/amd64", .digest = D2, .config_digest = D3, .builder = "native", .size = 10,
	  .duration_s = 1.5, .steps = 3, .cached = 1 },
	{ .platform = "linux/arm64", .digest = D3, .config_digest = D2, .builder = "qemu", .size = 20,
	  .duration_s = 2.5, .steps = 3, .cached = 0 },
};

static void write_ok(const char *path, const struct plait_metadata_image *ims, size_t n)
{
	struct plait_error *err = NULL;
	if (plait_metadata_write(path, ims, n, 4.0, true, &err) < 0)
		fail_msg("write: %s", err->msg);
}

static void test_metadata__one_image_round_trip(void **state)
{
	struct fixture *f = *state;
	char *tags[] = { "localhost:5000/ml/train:1.0", "localhost:5000/ml/train:stable", NULL };
	struct plait_metadata_image im = { .digest = D1, .media_type = INDEX_MT, .tags = tags, .platforms = two,
					   .n_platforms = 2 };
	write_ok(f->path, &im, 1);
	struct plait_metadata_source *v = NULL;
	size_t n = 0;
	struct plait_error *err = NULL;
	if (plait_metadata_read(f->path, &v, &n, &err) < 0)
		fail_msg("read: %s", err->msg);
	assert_int_equal(n, 1);
	assert_null(v[0].variant);
	assert_string_equal(v[0].name, "localhost:5000/ml/train@" D1);
	assert_string_equal(v[0].file, f->path);
	plait_metadata_sources_free(v, n);

	/* the buildx keys are there for other tools */
	json_error_t jerr;
	json_auto_t *m = json_load_file(f->path, 0, &jerr);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "containerimage.digest")), D1);
	assert_string_equal(json_string_value(json_object_get(m, "image.name")),
			    "localhost:5000/ml/train:1.0,localhost:5000/ml/train:stable");
	assert_int_equal(json_integer_value(json_object_get(m, "size")), 30);
	assert_int_equal(json_array_size(json_object_get(m, "platforms")), 2);
	assert_null(json_object_get(m, "containerimage.config.digest")); /* an index has no one config */
}

static void test_metadata__variants_round_trip(void **state)
{
	struct fixture *f = *state;
	char *cpu_tags[] = { "localhost:5000/ml/app:1.0-cpu", NULL };
	char *cuda_tags[] = { "localhost:5000/ml/app:1.0-cuda", NULL };
	struct plait_metadata_image ims[2] = {
		{ .variant = "cpu", .digest = D1, .media_type = INDEX_MT, .tags = cpu_tags, .platforms = two,
		  .n_platforms = 2 },
		{ .variant = "cuda", .digest = D2, .media_type = INDEX_MT, .tags = cuda_tags, .platforms = two,
		  .n_platforms = 1 },
	};
	write_ok(f->path, ims, 2);
	struct plait_metadata_source *v = NULL;
	size_t n = 0;
	struct plait_error *err = NULL;
	if (plait_metadata_read(f->path, &v, &n, &err) < 0)
		fail_msg("read: %s", err->msg);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].variant, "cpu");
	assert_string_equal(v[0].name, "localhost:5000/ml/app@" D1);
	assert_string_equal(v[1].variant, "cuda");
	assert_string_equal(v[1].name, "localhost:5000/ml/app@" D2);
	/* a second file adds to the list */
	if (plait_metadata_read(f->path, &v, &n, &err) < 0)
		fail_msg("read again: %s", err->msg);
	assert_int_equal(n, 4);
	plait_metadata_sources_free(v, n);

	json_error_t jerr;
	json_auto_t *m = json_load_file(f->path, 0, &jerr);
	assert_non_null(json_object_get(json_object_get(m, "variants"), "cuda"));
	assert_null(json_object_get(m, "containerimage.digest")); /* two images: no buildx keys */
}

static void test_metadata__single_platform_names_its_config(void **state)
{
	struct fixture *f = *state;
	char *tags[] = { "r.example/app:1", NULL };
	struct plait_metadata_image im = { .digest = D2, .media_type = "application/vnd.oci.image.manifest.v1+json",
					   .tags = tags, .single = true, .platforms = two, .n_platforms = 1 };
	write_ok(f->path, &im, 1);
	json_error_t jerr;
	json_auto_t *m = json_load_file(f->path, 0, &jerr);
	assert_string_equal(json_string_value(json_object_get(m, "containerimage.config.digest")), D3);
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void read_fails(const char *path, const char *want)
{
	struct plait_metadata_source *v = NULL;
	size_t n = 0;
	struct plait_error *err = NULL;
	int r = plait_metadata_read(path, &v, &n, &err);
	plait_metadata_sources_free(v, n);
	if (r >= 0)
		fail_msg("'%s' was read, want an error with '%s'", path, want);
	assert_int_equal(err->code, PLAIT_E_USAGE);
	if (!strstr(err->msg, want) || !strstr(err->msg, path))
		fail_msg("error '%s': want '%s' and the file's name", err->msg, want);
	plait_error_free(err);
}

static void test_metadata__unusable_files_are_refused(void **state)
{
	struct fixture *f = *state;
	write_text(f->path, "{\"images\":[{\"digest\":\"" D1 "\",\"tags\":[]}]}");
	read_fails(f->path, "has no digest or no -t name");
	write_text(f->path, "{\"images\":[{\"digest\":\"" D1 "\",\"tags\":[\"r/a:1\"]},"
			    "{\"digest\":\"" D2 "\",\"tags\":[\"r/a:2\"]}]}");
	read_fails(f->path, "image 1 of 2 has no variant");
	write_text(f->path, "{\"images\":[{\"variant\":\"x\",\"digest\":\"" D1 "\",\"tags\":[\"r/a:1\"]},"
			    "{\"variant\":\"x\",\"digest\":\"" D2 "\",\"tags\":[\"r/a:2\"]}]}");
	read_fails(f->path, "variant 'x' is there twice");
	write_text(f->path, "{\"images\":[{\"target\":\"a\",\"variant\":\"x\",\"digest\":\"" D1 "\",\"tags\":[\"r/a:1\"]},"
			    "{\"target\":\"b\",\"variant\":\"y\",\"digest\":\"" D2 "\",\"tags\":[\"r/b:1\"]}]}");
	read_fails(f->path, "several bake targets");
	write_text(f->path, "{}");
	read_fails(f->path, "no images, and no containerimage.digest");
	write_text(f->path, "{");
	read_fails(f->path, "--from-metadata");
}

static void test_metadata__buildx_keys_alone_are_read(void **state)
{
	struct fixture *f = *state;
	write_text(f->path, "{\"containerimage.digest\":\"" D3 "\",\"image.name\":\"r.example/x:1,r.example/x:2\"}");
	struct plait_metadata_source *v = NULL;
	size_t n = 0;
	struct plait_error *err = NULL;
	if (plait_metadata_read(f->path, &v, &n, &err) < 0)
		fail_msg("read: %s", err->msg);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "r.example/x@" D3);
	plait_metadata_sources_free(v, n);
}

static void test_metadata__unwritable_path_is_refused_first(void **state)
{
	struct fixture *f = *state;
	struct plait_error *err = NULL;
	assert_int_equal(plait_metadata_check_path(f->dir, &err), -PLAIT_E_USAGE);
	assert_non_null(strstr(err->msg, "is a directory"));
	plait_error_clear(&err);
	char missing[300];
	snprintf(missing, sizeof(missing), "%s/no/such/file.json", f->dir);
	assert_int_equal(plait_metadata_check_path(missing, &err), -PLAIT_E_USAGE);
	assert_non_null(strstr(err->msg, "does not exist (create it first)"));
	plait_error_clear(&err);
	assert_int_equal(plait_metadata_check_path(f->path, &err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metadata__one_image_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata__variants_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata__single_platform_names_its_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata__unusable_files_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata__buildx_keys_alone_are_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metadata__unwritable_path_is_refused_first, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
