/* Unit tests for core/request.c: --variant, --annotation, --output and
 * platform lists parsed into a request target, and what they find wrong
 * (a usage error, or a line in the target's problems for the planner). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "asserts.h"
#include "core/request.h"

static void assert_problem(const struct plait_target *t, size_t i, const char *want)
{
	size_t n = 0;
	while (t->problems && t->problems[n])
		n++;
	if (i >= n)
		fail_msg("problem %zu missing (have %zu), want '%s'", i, n, want);
	if (!strstr(t->problems[i], want))
		fail_msg("problem %zu is '%s', want '%s' in it", i, t->problems[i], want);
}

static void assert_usage_error(int r, struct plait_error *err, const char *want)
{
	assert_int_equal(r, -PLAIT_E_USAGE);
	assert_non_null(err);
	if (!strstr(err->msg, want))
		fail_msg("error '%s': want '%s' in it", err->msg, want);
	plait_error_free(err);
}

/* fn(args..., &err) fails with a usage error whose message has want. */
#define USAGE_ERROR(want, fn, ...)                            \
	do {                                                  \
		struct plait_error *e_ = NULL;                \
		int r_ = fn(__VA_ARGS__, &e_);                \
		assert_usage_error(r_, e_, want);             \
	} while (0)

static void test_request__variant_args_and_platforms(void **state)
{
	(void)state;
	struct plait_target t = { 0 };
	struct plait_error *err = NULL;
	assert_int_equal(plait_target_add_variant(&t, "cpu", &err), 0);
	assert_int_equal(plait_target_add_variant(&t, "cuda:BASE=nvidia/cuda:12.4,X=1,platforms=linux/amd64+arm64", &err), 0);
	assert_int_equal(t.n_variants, 2);
	assert_string_equal(t.variants[0].name, "cpu");
	assert_null(t.variants[0].args);
	assert_null(t.variants[0].platforms);
	assert_string_equal(t.variants[1].name, "cuda");
	assert_strv(t.variants[1].args, "BASE=nvidia/cuda:12.4", "X=1", NULL);
	assert_strv(t.variants[1].platforms, "linux/amd64", "linux/arm64", NULL); /* normalised */
	assert_null(t.problems);
	plait_target_release(&t);
}

static void test_request__variant_problems(void **state)
{
	(void)state;
	struct plait_target t = { 0 };
	struct plait_error *err = NULL;
	USAGE_ERROR("the name '-bad' must start with", plait_target_add_variant, &t, "-bad");
	USAGE_ERROR("'NOEQUALS' is not ARG=VALUE", plait_target_add_variant, &t, "cuda:NOEQUALS");
	assert_int_equal(t.n_variants, 0);
	/* platforms the planner reports, with its own problems */
	assert_int_equal(plait_target_add_variant(&t, "a:platforms=", &err), 0);
	assert_int_equal(plait_target_add_variant(&t, "b:platforms=linux/nosucharch", &err), 0);
	assert_problem(&t, 0, "--variant 'a:platforms=': platforms= is empty");
	assert_problem(&t, 1, "--variant 'b:platforms=linux/nosucharch': ");
	assert_int_equal(t.n_variants, 2);
	assert_null(t.variants[1].platforms);
	plait_target_release(&t);
}

static void test_request__annotations(void **state)
{
	(void)state;
	struct plait_target t = { 0 };
	struct plait_error *err = NULL;
	assert_int_equal(plait_target_add_annotation(&t, "index:org.opencontainers.image.title=train", &err), 0);
	assert_int_equal(plait_target_add_annotation(&t, "manifest[linux/arm64,linux/amd64]:a=b=c", &err), 0);
	assert_int_equal(plait_target_add_annotation(&t, "k=v", &err), 0);
	assert_int_equal(t.n_annotations, 3);
	assert_true(t.annotations[0].index);
	assert_string_equal(t.annotations[0].kv, "org.opencontainers.image.title=train");
	assert_false(t.annotations[1].index);
	assert_string_equal(t.annotations[1].kv, "a=b=c");
	assert_strv(t.annotations[1].platforms, "linux/arm64", "linux/amd64", NULL);
	assert_false(t.annotations[2].index);
	assert_null(t.annotations[2].platforms);
	USAGE_ERROR("unknown type 'bogus'", plait_target_add_annotation, &t, "bogus:k=v");
	USAGE_ERROR("unknown type 'index[...]'", plait_target_add_annotation, &t, "index[linux/arm64]:k=v");
	USAGE_ERROR("unclosed '['", plait_target_add_annotation, &t, "manifest[linux/arm64:k=v");
	USAGE_ERROR("expected KEY=VALUE", plait_target_add_annotation, &t, "novalue");
	assert_int_equal(t.n_annotations, 3);
	plait_target_release(&t);
}

static void test_request__outputs(void **state)
{
	(void)state;
	struct plait_target t = { 0 };
	struct plait_error *err = NULL;
	assert_int_equal(plait_target_add_output(&t, "type=oci,dest=/tmp/x", &err), 0);
	assert_int_equal(plait_target_add_output(&t, "dest=out.tar,type=oci-archive", &err), 0);
	assert_strv(t.outputs, "oci:/tmp/x", "oci-archive:out.tar", NULL);
	USAGE_ERROR("--output 'type=registry,dest=x': unknown type 'registry'; use type=oci|local,dest=DIR or "
		    "type=oci-archive|docker|tar,dest=FILE", plait_target_add_output, &t, "type=registry,dest=x");
	USAGE_ERROR("unknown field 'compression=zstd'", plait_target_add_output, &t, "type=oci,dest=x,compression=zstd");
	USAGE_ERROR("--output 'type=oci,dest=': type=oci needs dest=DIR", plait_target_add_output, &t, "type=oci,dest=");
	assert_strv(t.outputs, "oci:/tmp/x", "oci-archive:out.tar", NULL);
	plait_target_release(&t);
}

static void test_request__output_docker_tar_local(void **state)
{
	(void)state;
	struct plait_target t = { 0 };
	struct plait_error *err = NULL;
	assert_int_equal(plait_target_add_output(&t, "type=docker,dest=img.tar", &err), 0);
	assert_int_equal(plait_target_add_output(&t, "dest=root.tar,type=tar", &err), 0);
	assert_int_equal(plait_target_add_output(&t, "type=local,dest=out/rootfs", &err), 0);
	/* buildx's shorthand: a value without '=' is a directory */
	assert_int_equal(plait_target_add_output(&t, "rootfs2", &err), 0);
	assert_strv(t.outputs, "docker:img.tar", "tar:root.tar", "local:out/rootfs", "local:rootfs2", NULL);
	USAGE_ERROR("--output 'type=docker': type=docker needs dest=FILE", plait_target_add_output, &t, "type=docker");
	USAGE_ERROR("--output 'type=local,dest=': type=local needs dest=DIR", plait_target_add_output, &t,
		    "type=local,dest=");
	USAGE_ERROR("--output 'type=tar': type=tar needs dest=FILE", plait_target_add_output, &t, "type=tar");
	USAGE_ERROR("--output 'dest=x': no type=", plait_target_add_output, &t, "dest=x");
	USAGE_ERROR("--output '-': plait does not write images to stdout", plait_target_add_output, &t, "-");
	USAGE_ERROR("unknown type 'Docker'", plait_target_add_output, &t, "type=Docker,dest=x");
	assert_int_equal(plait_strv_length(t.outputs), 4);
	plait_target_release(&t);
}

static void test_request__platform_lists_add_up(void **state)
{
	(void)state;
	struct plait_target t = { 0 };
	plait_target_add_platforms(&t, "--platform", "linux/amd64, linux/arm64");
	plait_target_add_platforms(&t, "--platform", "linux/arm/v7");
	assert_true(t.platforms_given);
	assert_int_equal(t.n_platforms, 3);
	assert_string_equal(t.platforms[1].architecture, "arm64");
	assert_string_equal(t.platforms[2].variant, "v7");
	assert_strv(t.platform_texts, "linux/amd64", "linux/arm64", "linux/arm/v7", NULL);
	assert_null(t.problems);
	plait_target_release(&t);
}

static void test_request__platform_list_problems(void **state)
{
	(void)state;
	struct plait_target t = { 0 };
	plait_target_add_platforms(&t, "platforms", "linux/amd64,,linux/nosucharch,linux/amd64,linux/arm64/v8,linux/arm64");
	assert_true(t.platforms_given);
	assert_int_equal(t.n_platforms, 2); /* amd64 and arm64/v8; the rest are problems */
	assert_problem(&t, 0, "platforms 'linux/amd64,,linux/nosucharch");
	assert_problem(&t, 0, "empty entry");
	assert_problem(&t, 1, "platforms: ");
	assert_problem(&t, 2, "platforms: linux/amd64 is listed twice");
	assert_problem(&t, 3, "platforms: 'linux/arm64/v8' and 'linux/arm64' are both linux/arm64");
	assert_null(t.problems[4]);
	plait_target_release(&t);
}

static void test_request__release_frees_everything(void **state)
{
	(void)state;
	struct plait_request r = { 0 };
	struct plait_target *t = plait_request_add_target(&r);
	t->name = xstrdup("web");
	plait_strv_push(&t->tags, "r/x:1");
	t = plait_request_add_target(&r);
	plait_target_add_platforms(t, "--platform", "linux/amd64");
	r.cache_dir = xstrdup("/tmp/nowhere");
	assert_int_equal(r.n_targets, 2);
	assert_string_equal(r.targets[0].name, "web");
	plait_request_release(&r);
	assert_int_equal(r.n_targets, 0);
	assert_null(r.targets);
	plait_request_release(&r); /* twice is harmless */
}

#define UTF8_WHY "image configs are JSON; pass the text in UTF-8"

static void assert_lines(char **got, const char *const *want, size_t n)
{
	size_t have = 0;
	while (got && got[have])
		have++;
	for (size_t i = 0; i < n || i < have; i++) {
		if (i >= have)
			fail_msg("line %zu missing (have %zu), want '%s'", i, have, want[i]);
		if (i >= n)
			fail_msg("line %zu is '%s', want none", i, got[i]);
		if (!streq(got[i], want[i]))
			fail_msg("line %zu:\n  got  %s\n  want %s", i, got[i], want[i]);
	}
}

/* Every value bound for JSON is checked, named by its flag (or bake's field),
 * and the bytes are never quoted. */
static void test_request__values_not_utf8_are_problems(void **state)
{
	(void)state;
	struct plait_request r = { 0 };
	struct plait_target *t = plait_request_add_target(&r);
	_cleanup_error_ struct plait_error *err = NULL;
	plait_strv_push(&t->tags, "r/app:1");
	plait_strv_push(&t->tags, "r/app:\xff");
	plait_strv_push(&t->build_args, "OK=caf\xc3\xa9");
	plait_strv_push(&t->build_args, "V=a\xff");
	plait_strv_push(&t->labels, "caf\xe9=x");
	plait_strv_push(&t->labels, "t=\xed\xa0\x80");
	assert_int_equal(plait_target_add_annotation(t, "index:k=\xc3", &err), 0);
	assert_int_equal(plait_target_add_variant(t, "cuda:BASE=\xf4\x90\x80\x80", &err), 0);
	_cleanup_strv_free_ char **got = NULL;
	assert_int_equal(plait_target_check_utf8(t, &got), 6);
	static const char *const want[] = {
		"-t: the tag is not valid UTF-8 (byte 0xff at column 7 of the argument): " UTF8_WHY,
		"--build-arg V: the value is not valid UTF-8 (byte 0xff at column 4 of the argument): " UTF8_WHY,
		"--label: the name is not valid UTF-8 (byte 0xe9 at column 4 of the argument): " UTF8_WHY,
		"--label t: the value is not valid UTF-8 (byte 0xed at column 3 of the argument): " UTF8_WHY,
		"--annotation k: the value is not valid UTF-8 (byte 0xc3 at column 3 of the argument): " UTF8_WHY,
		"--variant cuda BASE: the value is not valid UTF-8 (byte 0xf4 at column 6 of the argument): " UTF8_WHY,
	};
	assert_lines(got, want, ARRAY_SIZE(want));

	/* a bake target: its fields' names */
	struct plait_target *b = plait_request_add_target(&r);
	b->name = xstrdup("web");
	plait_strv_push(&b->build_args, "V=\xc0\x80");
	plait_strv_push(&b->labels, "ok=yes");
	_cleanup_strv_free_ char **bake = NULL;
	assert_int_equal(plait_target_check_utf8(b, &bake), 1);
	static const char *const want_bake[] = {
		"args V: the value is not valid UTF-8 (byte 0xc0 at column 3 of the argument): " UTF8_WHY,
	};
	assert_lines(bake, want_bake, 1);

	/* valid text: nothing */
	struct plait_target *v = plait_request_add_target(&r);
	plait_strv_push(&v->tags, "r/app:1");
	plait_strv_push(&v->labels, "org.opencontainers.image.title=caf\xc3\xa9 \xf0\x9f\x98\x80");
	_cleanup_strv_free_ char **none = NULL;
	assert_int_equal(plait_target_check_utf8(v, &none), 0);
	assert_null(none);
	plait_request_release(&r);
}

static void test_request__provenance_sbom_attest(void **state)
{
	(void)state;
	struct plait_error *err = NULL;
	enum plait_provenance_mode m = PLAIT_PROVENANCE_DEFAULT;
	bool b = false;
	assert_int_equal(plait_parse_provenance("", &m, &err), 0);
	assert_int_equal(m, PLAIT_PROVENANCE_MIN);
	assert_int_equal(plait_parse_provenance("false", &m, &err), 0);
	assert_int_equal(m, PLAIT_PROVENANCE_OFF);
	assert_int_equal(plait_parse_provenance("mode=max,version=v1", &m, &err), 0);
	assert_int_equal(m, PLAIT_PROVENANCE_MAX);
	assert_int_equal(plait_parse_provenance("mode=max,disabled=true", &m, &err), 0);
	assert_int_equal(m, PLAIT_PROVENANCE_OFF);
	USAGE_ERROR("unknown mode 'full'", plait_parse_provenance, "mode=full", &m);
	USAGE_ERROR("SLSA provenance v1 only", plait_parse_provenance, "version=v0.2", &m);
	USAGE_ERROR("unknown field 'builder-id=x'", plait_parse_provenance, "builder-id=x", &m);
	assert_int_equal(plait_parse_sbom("", &b, &err), 0);
	assert_true(b);
	assert_int_equal(plait_parse_sbom("disabled=true", &b, &err), 0);
	assert_false(b);
	USAGE_ERROR("generator=", plait_parse_sbom, "generator=docker/scout-sbom-indexer", &b);
	struct plait_request r = { 0 };
	assert_int_equal(plait_request_add_attest(&r, "type=sbom", &err), 0);
	assert_true(r.sbom && r.sbom_given);
	assert_int_equal(plait_request_add_attest(&r, "type=provenance,mode=max", &err), 0);
	assert_int_equal(r.provenance, PLAIT_PROVENANCE_MAX);
	assert_int_equal(plait_request_add_attest(&r, "type=provenance,disabled=true", &err), 0);
	assert_int_equal(r.provenance, PLAIT_PROVENANCE_OFF);
	USAGE_ERROR("type=provenance", plait_request_add_attest, &r, "type=sig");
	USAGE_ERROR("type=provenance", plait_request_add_attest, &r, "type=sbomx");
	plait_request_release(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request__variant_args_and_platforms),
		cmocka_unit_test(test_request__variant_problems),
		cmocka_unit_test(test_request__annotations),
		cmocka_unit_test(test_request__outputs),
		cmocka_unit_test(test_request__output_docker_tar_local),
		cmocka_unit_test(test_request__platform_lists_add_up),
		cmocka_unit_test(test_request__platform_list_problems),
		cmocka_unit_test(test_request__release_frees_everything),
		cmocka_unit_test(test_request__values_not_utf8_are_problems),
		cmocka_unit_test(test_request__provenance_sbom_attest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
