/* tests/unit/test_plan.c - the planner (core/plan.h): jobs per (target,
 * variant, platform), builders, tags, annotations, the base image check and
 * problems reported together, with fake builders and registry (platform and
 * reference strings are the real core ones). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asserts.h"
#include "core/buf.h"
#include "core/plan.h"
#include "core/platform.h"

#include "core/banned.h"

/* ---- fakes ---- */

static struct plait_platform amd64 = {.os = "linux", .architecture = "amd64"};
static struct plait_platform arm64 = {.os = "linux", .architecture = "arm64"};

static int fake_run(void *ctx, const struct plait_run_request *req, int *exit_code, int *sig,
		    struct plait_error **err)
{
	(void)ctx, (void)req, (void)err;
	*exit_code = 0;
	*sig = 0;
	return 0;
}

static int native_marker, qemu_marker;

/* amd64 and 386 native, arm64 and arm emulated, anything else refused. */
static int choose(void *ctx, const struct plait_platform *p, struct plait_builder *out,
		  struct plait_error **err)
{
	(void)ctx;
	memset(out, 0, sizeof(*out));
	if (streq(p->architecture, "amd64") || streq(p->architecture, "386")) {
		out->name = xstrdup("native");
		out->runner = (struct plait_runner){.ctx = &native_marker, .run = fake_run};
		return 0;
	}
	if (streq(p->architecture, "arm64") || streq(p->architecture, "arm")) {
		out->name = xstrdup("qemu");
		out->detail = xstrdup("/usr/bin/qemu-aarch64-static");
		out->emulated = true;
		out->runner = (struct plait_runner){.ctx = &qemu_marker, .run = fake_run};
		return 0;
	}
	_cleanup_free_ char *ps = plait_platform_format(p);
	return plait_error_set(
	    err, PLAIT_E_NOT_FOUND,
	    "no builder for %s: no QEMU handler; run 'plait qemu install %s' as root", ps,
	    p->architecture);
}

static const struct plait_builder_chooser chooser = {.ctx = NULL, .choose = choose};

/* As choose, but arm64 goes to a node (as platforms/remote.c's chooser does). */
static int choose_node(void *ctx, const struct plait_platform *p, struct plait_builder *out,
		       struct plait_error **err)
{
	if (!streq(p->architecture, "arm64"))
		return choose(ctx, p, out, err);
	memset(out, 0, sizeof(*out));
	out->name = xstrdup("node");
	out->node = xstrdup("ssh://arm1.example");
	out->reason = xstrdup("node runs arm64 natively");
	return 0;
}

static void opts_init(struct plait_plan_opts *o)
{
	*o = (struct plait_plan_opts){
	    .build_platform = &amd64,
	    .build_platform_str = "linux/amd64",
	    .builders = &chooser,
	    .resolver = NULL,
	};
}

/* ---- helpers ---- */

static void assert_not_contains(const char *hay, const char *needle)
{
	if (hay && strstr(hay, needle))
		fail_msg("'%s' should not be in '%s'", needle, hay);
}

/* The job of image im for platform ps, or fail. */
static const struct plait_job *job_of(const struct plait_plan *p, size_t im, const char *ps)
{
	assert_true(im < p->n_images);
	for (size_t k = 0; k < p->images[im].n_jobs; k++) {
		size_t j = p->images[im].jobs[k];
		assert_true(j < p->n_jobs);
		assert_int_equal(p->jobs[j].image, im);
		if (streq(p->jobs[j].platform_str, ps))
			return &p->jobs[j];
	}
	fail_msg("image %zu has no job for %s", im, ps);
	return NULL;
}

/* The image of variant v (NULL: the unnamed one) of target t, or fail. */
static size_t image_of(const struct plait_plan *p, size_t t, const char *v)
{
	for (size_t i = 0; i < p->n_images; i++)
		if (p->images[i].target == t &&
		    (v ? p->images[i].variant && streq(p->images[i].variant, v)
		       : !p->images[i].variant))
			return i;
	fail_msg("no image for target %zu variant %s", t, v ? v : "(none)");
	return 0;
}

/* Plan that must fail: returns the message, which the caller frees. */
static char *plan_fails(const struct plait_target *t, size_t n,
			const struct plait_plan_opts *o)
{
	struct plait_plan p;
	struct plait_error *err = NULL;
	int r = plait_plan_make(t, n, o, &p, &err);
	if (r >= 0) {
		plait_plan_release(&p);
		fail_msg("plan succeeded, want a usage error");
	}
	assert_int_equal(r, -PLAIT_E_USAGE);
	assert_non_null(err);
	assert_int_equal(err->code, PLAIT_E_USAGE);
	char *msg = xstrdup(err->msg);
	plait_error_free(err);
	plait_plan_release(&p); /* must be harmless after a failure */
	return msg;
}

static void plan_ok(const struct plait_target *t, size_t n, const struct plait_plan_opts *o,
		    struct plait_plan *p)
{
	struct plait_error *err = NULL;
	int r = plait_plan_make(t, n, o, p, &err);
	if (r < 0)
		fail_msg("plan failed: %s", err ? err->msg : "(no message)");
	assert_null(err);
}

/* The line of msg that contains needle; caller frees. */
static char *line_with(const char *msg, const char *needle)
{
	const char *s = strstr(msg, needle);
	if (!s)
		fail_msg("'%s' not found in '%s'", needle, msg);
	const char *b = s, *e = s;
	while (b > msg && b[-1] != '\n')
		b--;
	while (*e && *e != '\n')
		e++;
	return xstrndup(b, (size_t)(e - b));
}

static size_t count_lines(const char *msg)
{
	size_t n = 1;
	for (const char *s = msg; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- a typical request: amd64 + arm64, cpu and cuda variants ---- */

static struct plait_platform two[] = {
    {.os = "linux", .architecture = "amd64"},
    {.os = "linux", .architecture = "arm64"},
};

/* One target for `two` with these tags (its context never read). */
static struct plait_target tagged(char **tags)
{
	return (struct plait_target){
	    .context_dir = "/nonexistent/ctx", .platforms = two, .n_platforms = 2, .tags = tags};
}

/* The problems of planning tagged(tags) with the default options. */
static char *tags_fail(char **tags)
{
	struct plait_target t = tagged(tags);
	struct plait_plan_opts o;
	opts_init(&o);
	return plan_fails(&t, 1, &o);
}

/* Targets "train" and "infer" (contexts /nonexistent/a and b) for `two`,
 * tagged a and b. */
static void train_and_infer(struct plait_target t[2], char **a, char **b)
{
	t[0] = (struct plait_target){.name = "train",
				     .context_dir = "/nonexistent/a",
				     .platforms = two,
				     .n_platforms = 2,
				     .tags = a};
	t[1] = (struct plait_target){.name = "infer",
				     .context_dir = "/nonexistent/b",
				     .platforms = two,
				     .n_platforms = 2,
				     .tags = b};
}
static char *cpu_args[] = {"X=cpu", "BASE=ubuntu:22.04", NULL};
static char *cuda_args[] = {"X=cuda", "CUDA=12.4", NULL};
static char *amd64_only[] = {"linux/amd64", NULL};
static char *target_args[] = {"X=target", "Y=1", NULL};
static char *variant_tags[] = {"r.example/ml/app:1.0-{variant}", NULL};

static struct plait_target two_variants(struct plait_variant *v)
{
	return (struct plait_target){
	    .context_dir = "/nonexistent/ctx",
	    .platforms = two,
	    .n_platforms = 2,
	    .variants = v,
	    .n_variants = 2,
	    .tags = variant_tags,
	    .build_args = target_args,
	};
}

/* ---- tests ---- */

/* A builder's node and reason reach every job of its platform and the JSON. */
static void test_plan__node_and_reason_per_job(void **state)
{
	(void)state;
	struct plait_variant v[] = {{.name = "cpu", .args = cpu_args},
					  {.name = "cuda", .args = cuda_args}};
	struct plait_target t = two_variants(v);
	struct plait_plan_opts o;
	opts_init(&o);
	const struct plait_builder_chooser nodes = {.ctx = NULL, .choose = choose_node};
	o.builders = &nodes;
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	for (size_t i = 0; i < 2; i++) {
		size_t im = image_of(&p, 0, i ? "cuda" : "cpu");
		const struct plait_job *a = job_of(&p, im, "linux/arm64"), *x = job_of(&p, im, "linux/amd64");
		assert_string_equal(a->builder.node, "ssh://arm1.example");
		assert_string_equal(a->builder.reason, "node runs arm64 natively");
		assert_null(x->builder.node);
		assert_null(x->builder.reason);
	}
	json_t *j = plait_plan_to_json(&p);
	size_t k;
	json_t *job;
	json_array_foreach(json_object_get(j, "jobs"), k, job)
	{
		bool arm = streq(json_string_value(json_object_get(job, "platform")), "linux/arm64");
		json_t *n = json_object_get(job, "node");
		if (arm)
			assert_string_equal(json_string_value(n), "ssh://arm1.example");
		else
			assert_null(n);
	}
	json_decref(j);
	plait_plan_release(&p);
}

static void test_plan__one_job_per_variant_and_platform(void **state)
{
	(void)state;
	struct plait_variant v[] = {{.name = "cpu", .args = cpu_args},
					  {.name = "cuda", .args = cuda_args}};
	struct plait_target t = two_variants(v);
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_jobs, 4);
	assert_int_equal(p.n_images, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct plait_plan_image *im = &p.images[image_of(&p, 0, i ? "cuda" : "cpu")];
		assert_int_equal(im->target, 0);
		assert_ptr_equal(im->req, &t);
		assert_int_equal(im->n_jobs, 2);
		assert_false(im->single);
		/* in platform order */
		assert_string_equal(p.jobs[im->jobs[0]].platform_str, "linux/amd64");
		assert_string_equal(p.jobs[im->jobs[1]].platform_str, "linux/arm64");
		for (size_t k = 0; k < 2; k++) {
			const struct plait_job *j = &p.jobs[im->jobs[k]];
			assert_contains(j->label, j->platform_str);
			assert_contains(j->label, im->variant);
			assert_string_equal(j->platform.architecture, k ? "arm64" : "amd64");
		}
	}
	plait_plan_release(&p);
	plait_plan_release(&p); /* twice is harmless */
}

static void test_plan__variant_args_after_target_args(void **state)
{
	(void)state;
	struct plait_variant v[] = {{.name = "cpu", .args = cpu_args},
					  {.name = "cuda", .args = cuda_args}};
	struct plait_target t = two_variants(v);
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	for (size_t k = 0; k < 2; k++) {
		const char *ps = k ? "linux/arm64" : "linux/amd64";
		/* the variant's X replaces the target's, where it was */
		assert_strv(job_of(&p, image_of(&p, 0, "cpu"), ps)->build_args, "X=cpu", "Y=1",
			    "BASE=ubuntu:22.04", NULL);
		assert_strv(job_of(&p, image_of(&p, 0, "cuda"), ps)->build_args, "X=cuda", "Y=1",
			    "CUDA=12.4", NULL);
	}
	plait_plan_release(&p);
}

static void test_plan__no_variants_is_one_unnamed_image(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/app:1.0", NULL};
	struct plait_target t = {.context_dir = "/nonexistent/ctx",
				      .platforms = two,
				      .n_platforms = 2,
				      .tags = tags,
				      .build_args = target_args};
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_images, 1);
	assert_null(p.images[0].variant);
	assert_int_equal(p.n_jobs, 2);
	assert_strv(p.images[0].tags, "r.example/app:1.0", NULL);
	assert_strv(job_of(&p, 0, "linux/arm64")->build_args, "X=target", "Y=1", NULL);
	plait_plan_release(&p);
}

static void test_plan__variant_platforms_restrict_target(void **state)
{
	(void)state;
	struct plait_variant v[] = {
	    {.name = "cpu", .args = cpu_args},
	    {.name = "cuda", .args = cuda_args, .platforms = amd64_only}};
	struct plait_target t = two_variants(v);
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_jobs, 3);
	const struct plait_plan_image *cuda = &p.images[image_of(&p, 0, "cuda")];
	assert_int_equal(cuda->n_jobs, 1);
	assert_string_equal(p.jobs[cuda->jobs[0]].platform_str, "linux/amd64");
	assert_true(cuda->single);
	const struct plait_plan_image *cpu = &p.images[image_of(&p, 0, "cpu")];
	assert_int_equal(cpu->n_jobs, 2);
	assert_false(cpu->single);
	plait_plan_release(&p);
}

static void test_plan__variant_placeholder_in_tags(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/ml/app:1.0-{variant}",
					   "r.example/ml/app:{variant}", NULL};
	struct plait_variant v[] = {{.name = "cpu", .args = cpu_args},
					  {.name = "cuda", .args = cuda_args}};
	struct plait_target t = two_variants(v);
	t.tags = tags;
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_strv(p.images[image_of(&p, 0, "cpu")].tags, "r.example/ml/app:1.0-cpu",
		    "r.example/ml/app:cpu", NULL);
	assert_strv(p.images[image_of(&p, 0, "cuda")].tags, "r.example/ml/app:1.0-cuda",
		    "r.example/ml/app:cuda", NULL);
	plait_plan_release(&p);
}

static void test_plan__several_variants_need_variant_placeholder(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/ml/app:1.0", NULL};
	struct plait_variant v[] = {{.name = "cpu", .args = cpu_args},
					  {.name = "cuda", .args = cuda_args}};
	struct plait_target t = two_variants(v);
	t.tags = tags;
	struct plait_plan_opts o;
	opts_init(&o);
	_cleanup_free_ char *msg = plan_fails(&t, 1, &o);
	_cleanup_free_ char *line = line_with(msg, "'r.example/ml/app:1.0'");
	assert_contains(line, "{variant}");
}

static void test_plan__variant_tags_expanding_alike_are_refused(void **state)
{
	(void)state;
	/* "{variant}-1" for x and "{variant}" for x-1 are both "x-1" */
	static char *tags[] = {"r.example/col:{variant}-1", "r.example/col:{variant}", NULL};
	struct plait_variant v[] = {{.name = "x", .args = cpu_args}, {.name = "x-1", .args = cuda_args}};
	struct plait_target t = two_variants(v);
	t.tags = tags;
	struct plait_plan_opts o;
	opts_init(&o);
	_cleanup_free_ char *msg = plan_fails(&t, 1, &o);
	assert_contains(msg, "tag 'r.example/col:x-1' is given to two images (x and x-1)");
	assert_contains(msg, "1 problem");
}

static void test_plan__one_variant_needs_no_placeholder(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/ml/app:1.0", NULL};
	struct plait_variant v[] = {{.name = "cuda", .args = cuda_args}};
	struct plait_target t = two_variants(v);
	t.n_variants = 1;
	t.tags = tags;
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_images, 1);
	assert_string_equal(p.images[0].variant, "cuda");
	assert_strv(p.images[0].tags, "r.example/ml/app:1.0", NULL);
	plait_plan_release(&p);
}

static void test_plan__tag_used_by_two_images_is_refused(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/ml/app:1.0", NULL};
	struct plait_target t[2];
	train_and_infer(t, tags, tags);
	struct plait_plan_opts o;
	opts_init(&o);
	_cleanup_free_ char *msg = plan_fails(t, 2, &o);
	assert_contains(msg, "r.example/ml/app:1.0");
	assert_contains(msg, "1 problem");
}

/* Collisions are between normalised references, not strings. */
static void test_plan__tag_collision_after_normalising(void **state)
{
	(void)state;
	static char *a[] = {"app:1.0", NULL};
	static char *b[] = {"docker.io/library/app:1.0", NULL};
	struct plait_target t[2];
	train_and_infer(t, a, b);
	struct plait_plan_opts o;
	opts_init(&o);
	_cleanup_free_ char *msg = plan_fails(t, 2, &o);
	assert_contains(msg, "app:1.0");
}

static void test_plan__distinct_tags_for_two_targets_are_fine(void **state)
{
	(void)state;
	static char *a[] = {"r.example/ml/train:1.0", NULL};
	static char *b[] = {"r.example/ml/infer:1.0", NULL};
	struct plait_target t[2];
	train_and_infer(t, a, b);
	t[1].n_platforms = 1;
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(t, 2, &o, &p);
	assert_int_equal(p.n_images, 2);
	assert_int_equal(p.n_jobs, 3);
	assert_int_equal(p.images[image_of(&p, 1, NULL)].n_jobs, 1);
	assert_true(p.images[image_of(&p, 1, NULL)].single);
	assert_contains(job_of(&p, image_of(&p, 1, NULL), "linux/amd64")->label, "infer");
	plait_plan_release(&p);
}

static void test_plan__latest_refused(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/app:latest", NULL};
	_cleanup_free_ char *msg = tags_fail(tags);
	_cleanup_free_ char *line = line_with(msg, "r.example/app:latest");
	assert_contains(line, "allow");
}

static void test_plan__latest_allowed_with_allow_latest(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/app:latest", NULL};
	struct plait_target t = tagged(tags);
	struct plait_plan_opts o;
	opts_init(&o);
	o.allow_latest = true;
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_strv(p.images[0].tags, "r.example/app:latest", NULL);
	plait_plan_release(&p);
}

static void test_plan__untagged_refused(void **state)
{
	(void)state;
	static char *tags[] = {"r.example:5000/app", NULL};
	_cleanup_free_ char *msg = tags_fail(tags);
	assert_contains(msg, "'r.example:5000/app'");
	assert_contains(msg, "1 problem");
}

static void test_plan__untagged_ok_with_push_by_digest(void **state)
{
	(void)state;
	static char *tags[] = {"r.example:5000/app", NULL};
	struct plait_target t = tagged(tags);
	struct plait_plan_opts o;
	opts_init(&o);
	o.untagged_ok = true;
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_strv(p.images[0].tags, "r.example:5000/app", NULL);
	plait_plan_release(&p);
}

static void test_plan__invalid_reference_is_a_problem(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/App:1.0", NULL};
	_cleanup_free_ char *msg = tags_fail(tags);
	assert_contains(msg, "repository name must be lowercase");
}

static void test_plan__tag_pinning_a_digest_is_a_problem(void **state)
{
	(void)state;
	static char *tags[] = {
	    "r.example/app:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	    NULL};
	_cleanup_free_ char *msg = tags_fail(tags);
	assert_contains(msg, "-t 'r.example/app:1.0@sha256:0123");
	assert_contains(msg, "a -t value names where the image goes and cannot pin a digest: drop "
			     "'@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'");
	assert_contains(msg, "1 problem");
}

/* Every name of Docker Hub is one registry: the same tag through two of them collides. */
static void test_plan__tag_collision_across_docker_hub_names(void **state)
{
	(void)state;
	static char *a[] = {"index.docker.io/ml/app:1.0", NULL};
	static char *b[] = {"Registry-1.Docker.io/ml/app:1.0", NULL};
	struct plait_target t[2];
	train_and_infer(t, a, b);
	struct plait_plan_opts o;
	opts_init(&o);
	_cleanup_free_ char *msg = plan_fails(t, 2, &o);
	assert_contains(msg, "tag 'Registry-1.Docker.io/ml/app:1.0' is given to two images (train and infer)");
}

static void test_plan__no_builder_names_platform_and_fix(void **state)
{
	(void)state;
	static struct plait_platform p2[] = {
	    {.os = "linux", .architecture = "amd64"},
	    {.os = "linux", .architecture = "s390x"},
	};
	static char *tags[] = {"r.example/app:1.0", NULL};
	struct plait_target t = {
	    .context_dir = "/nonexistent/ctx", .platforms = p2, .n_platforms = 2, .tags = tags};
	struct plait_plan_opts o;
	opts_init(&o);
	_cleanup_free_ char *msg = plan_fails(&t, 1, &o);
	assert_contains(
	    msg,
	    "no builder for linux/s390x: no QEMU handler; run 'plait qemu install s390x' as root");
	assert_not_contains(msg, "linux/amd64");
	assert_contains(msg, "1 problem");
}

static void test_plan__problems_reported_together(void **state)
{
	(void)state;
	static struct plait_platform p2[] = {
	    {.os = "linux", .architecture = "s390x"},
	    {.os = "linux", .architecture = "arm64"},
	};
	static char *tags[] = {"r.example/app:latest", "r.example/other", NULL};
	struct plait_target t = {
	    .context_dir = "/nonexistent/ctx", .platforms = p2, .n_platforms = 2, .tags = tags};
	struct plait_plan_opts o;
	opts_init(&o);
	_cleanup_free_ char *msg = plan_fails(&t, 1, &o);
	assert_contains(msg, "3 problems");
	_cleanup_free_ char *l1 = line_with(msg, "linux/s390x");
	_cleanup_free_ char *l2 = line_with(msg, "r.example/app:latest");
	_cleanup_free_ char *l3 = line_with(msg, "'r.example/other'");
	/* a line each */
	assert_not_contains(l1, "r.example/");
	assert_not_contains(l2, "s390x");
	assert_not_contains(l3, "s390x");
	assert_not_contains(l3, "r.example/app:latest");
	/* a header line and one per problem */
	assert_int_equal(count_lines(msg), 4);
}

/* No two neighbours in the start order are the same kind while both kinds are left. */
static void assert_interleaved(const struct plait_plan *p)
{
	bool *seen = xcalloc(p->n_jobs, sizeof(*seen));
	for (size_t k = 0; k < p->n_jobs; k++) {
		assert_true(p->order[k] < p->n_jobs);
		if (seen[p->order[k]])
			fail_msg("job %zu twice in the start order", p->order[k]);
		seen[p->order[k]] = true;
	}
	free(seen);
	for (size_t k = 0; k + 1 < p->n_jobs; k++) {
		bool e = p->jobs[p->order[k]].builder.emulated;
		if (p->jobs[p->order[k + 1]].builder.emulated != e)
			continue;
		for (size_t m = k + 1; m < p->n_jobs; m++)
			if (p->jobs[p->order[m]].builder.emulated != e)
				fail_msg("start order: positions %zu and %zu are both %s while %s "
					 "job %zu waits",
					 k, k + 1, e ? "emulated" : "native",
					 e ? "native" : "emulated", p->order[m]);
	}
}

static void test_plan__caller_problems_come_first_with_the_others(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/app:latest", NULL};
	static char *found[] = {"--platform: unknown platform 'linux/sparc64'", NULL};
	struct plait_target t = {.name = "web",
				      .context_dir = "/nonexistent/ctx",
				      .platforms = two,
				      .n_platforms = 2,
				      .tags = tags,
				      .problems = found};
	struct plait_plan_opts o;
	opts_init(&o);
	_cleanup_free_ char *msg = plan_fails(&t, 1, &o);
	assert_contains(msg, "2 problems");
	/* the caller's problem, named after the target, before the planner's */
	const char *mine = strstr(msg, "web: --platform: unknown platform 'linux/sparc64'");
	const char *latest = strstr(msg, "r.example/app:latest");
	assert_non_null(mine);
	assert_non_null(latest);
	assert_true(mine < latest);
}

static void test_plan__no_platform_left_says_only_why(void **state)
{
	(void)state;
	/* every --platform was wrong: no job, and no "builds no platform" on top */
	static char *tags[] = {"r.example/app:1.0", NULL};
	static char *found[] = {"--platform: unknown platform 'linux/zzz'", NULL};
	struct plait_target t = {
	    .context_dir = "/nonexistent/ctx", .n_platforms = 0, .tags = tags, .problems = found};
	struct plait_plan_opts o;
	opts_init(&o);
	_cleanup_free_ char *msg = plan_fails(&t, 1, &o);
	assert_contains(msg, "1 problem");
	assert_contains(msg, "linux/zzz");
	assert_null(strstr(msg, "builds no platform"));
}

static void test_plan__start_order_interleaves_emulated_and_native(void **state)
{
	(void)state;
	static struct plait_platform p4[] = {
	    {.os = "linux", .architecture = "amd64"},
	    {.os = "linux", .architecture = "386"},
	    {.os = "linux", .architecture = "arm64"},
	    {.os = "linux", .architecture = "arm", .variant = "v7"},
	};
	static char *tags[] = {"r.example/app:1.0-{variant}", NULL};
	struct plait_variant v[] = {{.name = "cpu", .args = cpu_args},
					  {.name = "cuda", .args = cuda_args}};
	struct plait_target t = {
	    .context_dir = "/nonexistent/ctx",
	    .platforms = p4,
	    .n_platforms = 4,
	    .tags = tags,
	    .variants = v,
	    .n_variants = 2,
	};
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_jobs, 8);
	assert_non_null(p.order);
	assert_interleaved(&p);
	/* the builders the chooser gave */
	const struct plait_job *a = job_of(&p, image_of(&p, 0, "cpu"), "linux/amd64");
	assert_string_equal(a->builder.name, "native");
	assert_false(a->builder.emulated);
	assert_ptr_equal(a->builder.runner.ctx, &native_marker);
	const struct plait_job *b = job_of(&p, image_of(&p, 0, "cuda"), "linux/arm/v7");
	assert_string_equal(b->builder.name, "qemu");
	assert_true(b->builder.emulated);
	assert_string_equal(b->builder.detail, "/usr/bin/qemu-aarch64-static");
	assert_ptr_equal(b->builder.runner.ctx, &qemu_marker);
	plait_plan_release(&p);
}

static void test_plan__start_order_with_one_emulated_job(void **state)
{
	(void)state;
	static struct plait_platform p3[] = {
	    {.os = "linux", .architecture = "amd64"},
	    {.os = "linux", .architecture = "386"},
	    {.os = "linux", .architecture = "arm64"},
	};
	static char *tags[] = {"r.example/app:1.0", NULL};
	struct plait_target t = {
	    .context_dir = "/nonexistent/ctx", .platforms = p3, .n_platforms = 3, .tags = tags};
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_jobs, 3);
	assert_interleaved(&p);
	plait_plan_release(&p);
}

static void test_plan__single_platform_is_a_manifest(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/app:1.0", NULL};
	struct plait_target t = {
	    .context_dir = "/nonexistent/ctx", .platforms = &arm64, .n_platforms = 1, .tags = tags};
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_images, 1);
	assert_true(p.images[0].single);
	assert_int_equal(p.images[0].n_jobs, 1);
	assert_int_equal(p.order[0], 0);
	plait_plan_release(&p);

	t.platforms = two;
	t.n_platforms = 2;
	plan_ok(&t, 1, &o, &p);
	assert_false(p.images[0].single);
	plait_plan_release(&p);
}

static void test_plan__annotations_per_platform_and_index(void **state)
{
	(void)state;
	static char *arm_only[] = {"linux/arm64", NULL};
	static char *arm_and_v7[] = {"linux/arm64", "linux/arm/v7", NULL};
	static struct plait_platform p3[] = {
	    {.os = "linux", .architecture = "amd64"},
	    {.os = "linux", .architecture = "arm64"},
	    {.os = "linux", .architecture = "arm", .variant = "v7"},
	};
	struct plait_annotation ann[] = {
	    {.kv = "org.opencontainers.image.title=train", .index = true},
	    {.kv = "a=arm64", .platforms = arm_only},
	    {.kv = "b=all"},
	    {.kv = "c=arms", .platforms = arm_and_v7},
	    {.kv = "org.opencontainers.image.vendor=me", .index = true},
	};
	static char *tags[] = {"r.example/app:1.0", NULL};
	struct plait_target t = {
	    .context_dir = "/nonexistent/ctx",
	    .platforms = p3,
	    .n_platforms = 3,
	    .tags = tags,
	    .annotations = ann,
	    .n_annotations = ARRAY_SIZE(ann),
	};
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_strv(p.images[0].annotations, "org.opencontainers.image.title=train",
		    "org.opencontainers.image.vendor=me", NULL);
	assert_strv(job_of(&p, 0, "linux/amd64")->annotations, "b=all", NULL);
	assert_strv(job_of(&p, 0, "linux/arm64")->annotations, "a=arm64", "b=all", "c=arms", NULL);
	assert_strv(job_of(&p, 0, "linux/arm/v7")->annotations, "b=all", "c=arms", NULL);
	plait_plan_release(&p);
}

static const json_t *json_job(const json_t *jobs, const char *platform, const char *variant)
{
	size_t i;
	const json_t *j;
	json_array_foreach(jobs, i, j)
	{
		const char *pl = json_string_value(json_object_get(j, "platform"));
		const char *va = json_string_value(json_object_get(j, "variant"));
		if (pl && va && streq(pl, platform) && streq(va, variant))
			return j;
	}
	fail_msg("no job %s %s in the JSON", platform, variant);
	return NULL;
}

static void assert_json_strv(const json_t *a, ...)
{
	assert_true(json_is_array(a));
	va_list ap;
	va_start(ap, a);
	size_t i = 0;
	for (const char *want; (want = va_arg(ap, const char *)); i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s)
			fail_msg("entry %zu: missing, want '%s'", i, want);
		assert_string_equal(s, want);
	}
	va_end(ap);
	assert_int_equal(json_array_size(a), i);
}

static void test_plan__to_json_images_and_jobs(void **state)
{
	(void)state;
	struct plait_annotation ann[] = {
	    {.kv = "org.opencontainers.image.title=train", .index = true},
	};
	struct plait_variant v[] = {
	    {.name = "cpu", .args = cpu_args},
	    {.name = "cuda", .args = cuda_args, .platforms = amd64_only}};
	struct plait_target t = two_variants(v);
	t.name = "train";
	t.stage = "runtime";
	t.annotations = ann;
	t.n_annotations = 1;
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	json_t *j = plait_plan_to_json(&p);
	assert_non_null(j);
	bool bad_jobs = false;

	const json_t *images = json_object_get(j, "images");
	assert_true(json_is_array(images));
	assert_int_equal(json_array_size(images), 2);
	size_t i;
	const json_t *im;
	json_array_foreach(images, i, im)
	{
		const char *variant = json_string_value(json_object_get(im, "variant"));
		assert_non_null(variant);
		assert_string_equal(json_string_value(json_object_get(im, "target")), "train");
		bool cuda = streq(variant, "cuda");
		assert_json_strv(json_object_get(im, "tags"),
				 cuda ? "r.example/ml/app:1.0-cuda" : "r.example/ml/app:1.0-cpu",
				 NULL);
		assert_json_strv(json_object_get(im, "annotations"),
				 "org.opencontainers.image.title=train", NULL);
		/* checked last, after the plan is released, so a failure here leaks nothing */
		const json_t *ij = json_object_get(im, "platforms");
		if (!json_is_array(ij) || json_array_size(ij) != (cuda ? 1u : 2u))
			bad_jobs = true;
		if (!json_is_string(json_object_get(im, "kind")) ||
		    !streq(json_string_value(json_object_get(im, "kind")), cuda ? "manifest" : "index"))
			bad_jobs = true;
	}

	const json_t *jobs = json_object_get(j, "jobs");
	assert_true(json_is_array(jobs));
	assert_int_equal(json_array_size(jobs), 3);
	const json_t *a = json_job(jobs, "linux/arm64", "cpu");
	assert_string_equal(json_string_value(json_object_get(a, "builder")), "qemu");
	assert_true(json_is_true(json_object_get(a, "emulated")));
	assert_json_strv(json_object_get(a, "args"), "X=cpu", "Y=1", "BASE=ubuntu:22.04", NULL);
	assert_json_strv(json_object_get(a, "tags"), "r.example/ml/app:1.0-cpu", NULL);
	assert_string_equal(json_string_value(json_object_get(a, "target")), "train");
	assert_string_equal(json_string_value(json_object_get(a, "stage")), "runtime");
	const json_t *b = json_job(jobs, "linux/amd64", "cuda");
	assert_string_equal(json_string_value(json_object_get(b, "builder")), "native");
	assert_true(json_is_false(json_object_get(b, "emulated")));
	assert_json_strv(json_object_get(b, "args"), "X=cuda", "Y=1", "CUDA=12.4", NULL);
	assert_json_strv(json_object_get(b, "tags"), "r.example/ml/app:1.0-cuda", NULL);
	json_decref(j);
	plait_plan_release(&p);
	if (bad_jobs)
		fail_msg(
		    "an image has no \"jobs\" array with one entry per platform built (plan.h: "
		    "images are {target, variant, tags, annotations, jobs:[...]})");
}

/* ---- the base image check, against a Dockerfile on disk ---- */

struct basedir {
	char dir[64];
};

static void write_file(const char *dir, const char *name, const char *text)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s", dir, name);
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	plait_buf_release(&p);
}

/* Line 5: the variant's base; line 2: a tool stage on the build platform. */
static const char dockerfile[] = "ARG BASE=debian:bookworm\n"
				 "FROM --platform=$BUILDPLATFORM golang:1.22 AS tools\n"
				 "RUN echo tools > /tools\n"
				 "\n"
				 "FROM ${BASE}\n"
				 "COPY --from=tools /tools /tools\n";

static int base_setup(void **state)
{
	static struct basedir d;
	snprintf(d.dir, sizeof(d.dir), "/tmp/plait-ut-plan.XXXXXX");
	assert_non_null(mkdtemp(d.dir));
	write_file(d.dir, "Dockerfile", dockerfile);
	*state = &d;
	return 0;
}

static int base_teardown(void **state)
{
	struct basedir *d = *state;
	DIR *dh = opendir(d->dir);
	if (dh) {
		struct dirent *de;
		while ((de = readdir(dh))) {
			if (de->d_name[0] == '.')
				continue;
			struct plait_buf p = PLAIT_BUF_INIT;
			plait_buf_addf(&p, "%s/%s", d->dir, de->d_name);
			unlink(p.buf);
			plait_buf_release(&p);
		}
		closedir(dh);
	}
	rmdir(d->dir);
	return 0;
}

struct fake_registry {
	const char *missing_ref, *missing_platform;
	char **asked; /* "ref@platform" for every call */
};

static int resolve(void *ctx, const char *ref, const char *platform, struct plait_endpoint **ep,
		   struct plait_descriptor *manifest, struct plait_buf *bytes,
		   struct plait_error **err)
{
	struct fake_registry *r = ctx;
	(void)ep, (void)manifest, (void)bytes;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s@%s", ref, platform);
	plait_strv_push(&r->asked, b.buf);
	plait_buf_release(&b);
	if (r->missing_ref && streq(ref, r->missing_ref) && streq(platform, r->missing_platform))
		return plait_error_set(err, PLAIT_E_NOT_FOUND,
				       "%s: no manifest for %s in the index", ref, platform);
	return 0;
}

static bool asked(const struct fake_registry *r, const char *what)
{
	for (char **a = r->asked; a && *a; a++)
		if (streq(*a, what))
			return true;
	return false;
}

static char *cuda_base_args[] = {"BASE=nvidia/cuda:12.4-runtime", NULL};

static struct plait_target base_target(struct basedir *d, struct plait_variant *v)
{
	static char *tags[] = {"r.example/ml/app:1.0-{variant}", NULL};
	return (struct plait_target){
	    .context_dir = d->dir,
	    .platforms = two,
	    .n_platforms = 2,
	    .variants = v,
	    .n_variants = 2,
	    .tags = tags,
	};
}

static void test_plan__base_missing_for_one_platform_is_named(void **state)
{
	struct basedir *d = *state;
	struct plait_variant v[] = {{.name = "cpu", .args = cpu_args},
					  {.name = "cuda", .args = cuda_base_args}};
	struct plait_target t = base_target(d, v);
	struct fake_registry reg = {.missing_ref = "nvidia/cuda:12.4-runtime",
				    .missing_platform = "linux/arm64"};
	const struct plait_image_resolver res = {.ctx = &reg, .resolve = resolve};
	struct plait_plan_opts o;
	opts_init(&o);
	o.resolver = &res;
	_cleanup_free_ char *msg = plan_fails(&t, 1, &o);
	assert_contains(msg, "1 problem");
	_cleanup_free_ char *line = line_with(msg, "nvidia/cuda:12.4-runtime");
	assert_contains(line, "linux/arm64 cuda"); /* the job's label */
	assert_contains(line, "Dockerfile:5");
	assert_contains(line, "linux/arm64");
	/* the pairs that exist are not reported */
	assert_not_contains(msg, "ubuntu:22.04");
	assert_not_contains(msg, "golang");
	assert_not_contains(msg, "linux/amd64");
	/* they were all checked, each base for the platform it is needed for */
	assert_true(asked(&reg, "ubuntu:22.04@linux/amd64"));
	assert_true(asked(&reg, "ubuntu:22.04@linux/arm64"));
	assert_true(asked(&reg, "nvidia/cuda:12.4-runtime@linux/amd64"));
	assert_true(asked(&reg, "nvidia/cuda:12.4-runtime@linux/arm64"));
	assert_true(asked(&reg, "golang:1.22@linux/amd64"));
	/* the tools stage runs on the build platform: never asked for arm64 */
	assert_false(asked(&reg, "golang:1.22@linux/arm64"));
	plait_strv_free(reg.asked);
}

static void test_plan__bases_present_plan_succeeds(void **state)
{
	struct basedir *d = *state;
	struct plait_variant v[] = {{.name = "cpu", .args = cpu_args},
					  {.name = "cuda", .args = cuda_base_args}};
	struct plait_target t = base_target(d, v);
	struct fake_registry reg = {0};
	const struct plait_image_resolver res = {.ctx = &reg, .resolve = resolve};
	struct plait_plan_opts o;
	opts_init(&o);
	o.resolver = &res;
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_jobs, 4);
	assert_true(asked(&reg, "nvidia/cuda:12.4-runtime@linux/arm64"));
	plait_plan_release(&p);
	plait_strv_free(reg.asked);
}

/* The Dockerfile's default base: checked when no variant overrides it. */
static void test_plan__base_default_arg_is_checked(void **state)
{
	struct basedir *d = *state;
	static char *tags[] = {"r.example/ml/app:1.0", NULL};
	struct plait_target t = {
	    .context_dir = d->dir, .platforms = &arm64, .n_platforms = 1, .tags = tags};
	struct fake_registry reg = {.missing_ref = "debian:bookworm",
				    .missing_platform = "linux/arm64"};
	const struct plait_image_resolver res = {.ctx = &reg, .resolve = resolve};
	struct plait_plan_opts o;
	opts_init(&o);
	o.resolver = &res;
	_cleanup_free_ char *msg = plan_fails(&t, 1, &o);
	_cleanup_free_ char *line = line_with(msg, "debian:bookworm");
	assert_contains(line, "Dockerfile:5");
	assert_contains(line, "linux/arm64");
	plait_strv_free(reg.asked);
}

/* Problems of every kind land in the one error. */
static void test_plan__base_problem_joins_other_problems(void **state)
{
	struct basedir *d = *state;
	static char *tags[] = {"r.example/ml/app:latest", NULL};
	struct plait_target t = {
	    .context_dir = d->dir, .platforms = two, .n_platforms = 2, .tags = tags};
	struct fake_registry reg = {.missing_ref = "debian:bookworm",
				    .missing_platform = "linux/amd64"};
	const struct plait_image_resolver res = {.ctx = &reg, .resolve = resolve};
	struct plait_plan_opts o;
	opts_init(&o);
	o.resolver = &res;
	_cleanup_free_ char *msg = plan_fails(&t, 1, &o);
	assert_contains(msg, "2 problems");
	_cleanup_free_ char *l1 = line_with(msg, "debian:bookworm");
	_cleanup_free_ char *l2 = line_with(msg, "r.example/ml/app:latest");
	assert_contains(l1, "linux/amd64");
	plait_strv_free(reg.asked);
}

/* A base is checked only for the (platform, variant) pairs that are built. */
static void test_plan__base_not_needed_is_not_required(void **state)
{
	struct basedir *d = *state;
	struct plait_variant v[] = {
	    {.name = "cpu", .args = cpu_args},
	    {.name = "cuda", .args = cuda_base_args, .platforms = amd64_only}};
	struct plait_target t = base_target(d, v);
	struct fake_registry reg = {.missing_ref = "nvidia/cuda:12.4-runtime",
				    .missing_platform = "linux/arm64"};
	const struct plait_image_resolver res = {.ctx = &reg, .resolve = resolve};
	struct plait_plan_opts o;
	opts_init(&o);
	o.resolver = &res;
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_jobs, 3);
	assert_true(asked(&reg, "nvidia/cuda:12.4-runtime@linux/amd64"));
	plait_plan_release(&p);
	plait_strv_free(reg.asked);
}

/* --target tools: the final stage's base is not needed. */
static void test_plan__base_of_unneeded_stage_is_not_required(void **state)
{
	struct basedir *d = *state;
	static char *tags[] = {"r.example/ml/tools:1.0", NULL};
	struct plait_target t = {.context_dir = d->dir,
				      .stage = "tools",
				      .platforms = two,
				      .n_platforms = 2,
				      .tags = tags};
	struct fake_registry reg = {.missing_ref = "debian:bookworm",
				    .missing_platform = "linux/arm64"};
	const struct plait_image_resolver res = {.ctx = &reg, .resolve = resolve};
	struct plait_plan_opts o;
	opts_init(&o);
	o.resolver = &res;
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_true(asked(&reg, "golang:1.22@linux/amd64"));
	plait_plan_release(&p);
	plait_strv_free(reg.asked);
}

static void test_plan__no_resolver_skips_base_check(void **state)
{
	(void)state;
	static char *tags[] = {"r.example/ml/app:1.0", NULL};
	/* no Dockerfile there at all */
	struct plait_target t = tagged(tags);
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_plan p;
	plan_ok(&t, 1, &o, &p);
	assert_int_equal(p.n_jobs, 2);
	plait_plan_release(&p);
}

/* ---- builders: a platform nothing runs on needs none ---- */

static struct plait_platform amd64_s390x[] = {
    {.os = "linux", .architecture = "amd64"},
    {.os = "linux", .architecture = "s390x"},
};

/* Plan linux/amd64 + linux/s390x (which the fake chooser refuses) of a
 * Dockerfile; returns the plan's error message, NULL when it planned (then
 * *out holds the plan). */
static char *plan_s390x(const char *text, struct plait_plan *out)
{
	struct basedir d;
	snprintf(d.dir, sizeof(d.dir), "/tmp/plait-ut-plan.XXXXXX");
	assert_non_null(mkdtemp(d.dir));
	write_file(d.dir, "Dockerfile", text);
	static char *tags[] = {"r.example/app:1.0", NULL};
	struct plait_target t = {
	    .context_dir = d.dir, .platforms = amd64_s390x, .n_platforms = 2, .tags = tags};
	struct plait_plan_opts o;
	opts_init(&o);
	struct plait_error *e = NULL;
	char *msg = NULL;
	if (plait_plan_make(&t, 1, &o, out, &e) < 0) {
		msg = xstrdup(e->msg);
		plait_error_free(e);
	}
	void *state = &d;
	base_teardown(&state);
	return msg;
}

static const struct plait_job *job_for(const struct plait_plan *p, const char *platform)
{
	for (size_t i = 0; i < p->n_jobs; i++)
		if (streq(p->jobs[i].platform_str, platform))
			return &p->jobs[i];
	fail_msg("no job for %s", platform);
	return NULL;
}

static void test_plan__no_builder_needed_when_nothing_runs_on_the_platform(void **state)
{
	(void)state;
	/* a RUN only in the $BUILDPLATFORM tool stage; the image itself is COPY only */
	struct plait_plan p = {0};
	_cleanup_free_ char *msg = plan_s390x(dockerfile, &p);
	if (msg)
		fail_msg("plan failed: %s", msg);
	const struct plait_job *j = job_for(&p, "linux/s390x");
	assert_string_equal(j->builder.name, "none");
	assert_string_equal(j->builder.detail, "no RUN step runs on linux/s390x");
	assert_false(j->builder.emulated);
	/* the tool stage's RUN runs on the build platform's builder */
	assert_ptr_equal(j->builder.runner.ctx, &native_marker);
	assert_string_equal(job_for(&p, "linux/amd64")->builder.name, "native");
	plait_plan_release(&p);
}

static void test_plan__no_builder_needed_through_a_stage_of_a_build_platform_stage(void **state)
{
	(void)state;
	/* "FROM tools" inherits the tool stage's platform; an unused stage's RUN does not count */
	static const char text[] = "FROM --platform=$BUILDPLATFORM golang:1.22 AS tools\n"
				   "FROM tools AS compile\n"
				   "RUN go build -o /out/app .\n"
				   "FROM debian:bookworm AS unused\n"
				   "RUN apt-get update\n"
				   "FROM scratch\n"
				   "COPY --from=compile /out/app /app\n";
	struct plait_plan p = {0};
	_cleanup_free_ char *msg = plan_s390x(text, &p);
	if (msg)
		fail_msg("plan failed: %s", msg);
	assert_string_equal(job_for(&p, "linux/s390x")->builder.name, "none");
	plait_plan_release(&p);
}

static void test_plan__run_on_the_platform_still_needs_a_builder(void **state)
{
	(void)state;
	static const char text[] = "FROM --platform=$BUILDPLATFORM golang:1.22 AS tools\n"
				   "RUN echo tools > /tools\n"
				   "FROM debian:bookworm\n"
				   "COPY --from=tools /tools /tools\n"
				   "RUN ls /tools\n";
	struct plait_plan p = {0};
	_cleanup_free_ char *msg = plan_s390x(text, &p);
	assert_non_null(msg);
	assert_contains(msg, "no builder for linux/s390x: no QEMU handler; run 'plait qemu install s390x'");
	assert_contains(msg, "1 problem");
}

#define BT(name) cmocka_unit_test_setup_teardown(name, base_setup, base_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plan__one_job_per_variant_and_platform),
	    cmocka_unit_test(test_plan__variant_args_after_target_args),
	    cmocka_unit_test(test_plan__no_variants_is_one_unnamed_image),
	    cmocka_unit_test(test_plan__variant_platforms_restrict_target),
	    cmocka_unit_test(test_plan__variant_placeholder_in_tags),
	    cmocka_unit_test(test_plan__several_variants_need_variant_placeholder),
	    cmocka_unit_test(test_plan__one_variant_needs_no_placeholder),
	    cmocka_unit_test(test_plan__variant_tags_expanding_alike_are_refused),
	    cmocka_unit_test(test_plan__tag_used_by_two_images_is_refused),
	    cmocka_unit_test(test_plan__tag_collision_after_normalising),
	    cmocka_unit_test(test_plan__distinct_tags_for_two_targets_are_fine),
	    cmocka_unit_test(test_plan__latest_refused),
	    cmocka_unit_test(test_plan__latest_allowed_with_allow_latest),
	    cmocka_unit_test(test_plan__untagged_refused),
	    cmocka_unit_test(test_plan__untagged_ok_with_push_by_digest),
	    cmocka_unit_test(test_plan__invalid_reference_is_a_problem),
	    cmocka_unit_test(test_plan__tag_pinning_a_digest_is_a_problem),
	    cmocka_unit_test(test_plan__tag_collision_across_docker_hub_names),
	    cmocka_unit_test(test_plan__no_builder_names_platform_and_fix),
	    cmocka_unit_test(test_plan__no_builder_needed_when_nothing_runs_on_the_platform),
	    cmocka_unit_test(test_plan__no_builder_needed_through_a_stage_of_a_build_platform_stage),
	    cmocka_unit_test(test_plan__run_on_the_platform_still_needs_a_builder),
	    cmocka_unit_test(test_plan__problems_reported_together),
	    cmocka_unit_test(test_plan__caller_problems_come_first_with_the_others),
	    cmocka_unit_test(test_plan__no_platform_left_says_only_why),
	    cmocka_unit_test(test_plan__start_order_interleaves_emulated_and_native),
	    cmocka_unit_test(test_plan__start_order_with_one_emulated_job),
	    cmocka_unit_test(test_plan__single_platform_is_a_manifest),
	    cmocka_unit_test(test_plan__annotations_per_platform_and_index),
	    cmocka_unit_test(test_plan__to_json_images_and_jobs),
	    cmocka_unit_test(test_plan__node_and_reason_per_job),
	    BT(test_plan__base_missing_for_one_platform_is_named),
	    BT(test_plan__bases_present_plan_succeeds),
	    BT(test_plan__base_default_arg_is_checked),
	    BT(test_plan__base_problem_joins_other_problems),
	    BT(test_plan__base_not_needed_is_not_required),
	    BT(test_plan__base_of_unneeded_stage_is_not_required),
	    cmocka_unit_test(test_plan__no_resolver_skips_base_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
