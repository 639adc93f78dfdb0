/* core/plan.h - the planner: what the user asked (targets x variants x
 * platforms) to jobs, each with its builder and build args, and the images
 * (one index or manifest per target and variant) the jobs make.
 *
 * Contract:
 *  - one job per (target, variant, platform), platforms in the order given,
 *    a variant's own platform list restricting the target's;
 *  - a variant sets build args (after the target's, so they win) and the
 *    "{variant}" placeholder in tags; CUDA is not a platform: one image per
 *    (target, variant), never two manifests for one platform in an index;
 *  - every problem is found before any job starts and reported together in
 *    one -PLAIT_E_USAGE error, a line each: the caller's (target->problems),
 *    no builder for a platform a RUN step executes on (the chooser's
 *    message, with its fix; a platform nothing runs on gets the build
 *    platform's builder, named "none"), a base image missing for a
 *    (platform, variant) it is needed for, a tag that is no image reference
 *    (core/ref.h) or pins a digest, a tag used by two images (compared in
 *    their normalised form: "app:1" is "docker.io/library/app:1"), several
 *    variants but a tag without "{variant}", a tag without a tag part, a
 *    "latest" tag without allow_latest;
 *  - the start order interleaves emulated and native jobs so both kinds of
 *    builder are busy at once;
 *  - the targets are the request's (core/request.h), read as they are;
 *  - nothing here runs a build or prints. */
#ifndef PLAIT_PLAN_H
#define PLAIT_PLAN_H

#include <jansson.h>

#include "request.h"

/* What runs a job's RUN steps: the host itself, QEMU through binfmt_misc,
 * or (later) a remote machine. The planner only sees this interface. */
struct plait_builder {
	char *name; /* "native", "qemu" */
	char *detail; /* e.g. the interpreter; NULL when none */
	char *node;   /* the remote node (ssh://...) that runs it; NULL: this host */
	char *reason; /* why this builder was chosen; NULL when there was no choice */
	bool emulated;
	struct plait_runner runner;
};
void plait_builder_release(struct plait_builder *b);

struct plait_builder_chooser {
	void *ctx;
	/* Fill *out for platform p, or fail with what to do about it. */
	int (*choose)(void *ctx, const struct plait_platform *p, struct plait_builder *out,
		      struct plait_error **err);
};

struct plait_plan_opts {
	const struct plait_platform *build_platform;
	const char *build_platform_str;
	const struct plait_builder_chooser *builders;
	/* For the base image check; NULL skips it. The opts give the cache and
	 * context settings the build would use. */
	const struct plait_image_resolver *resolver;
	bool allow_latest;
	bool untagged_ok; /* --push-by-digest: tags name repositories only */
};

struct plait_job {
	size_t image;
	struct plait_platform platform;
	char *platform_str;
	char *label; /* "linux/arm64 cuda": names the job in progress and errors */
	struct plait_builder builder;
	char **build_args;  /* the target's, then the variant's */
	char **annotations; /* manifest-level "K=V" for this platform */
};

struct plait_plan_image {
	size_t target;
	const struct plait_target *req;
	char *variant;	     /* NULL when no variants */
	char **tags;	     /* "{variant}" replaced */
	char **annotations;  /* index-level "K=V" */
	size_t *jobs;	     /* in platform order */
	size_t n_jobs;
	bool single;	     /* one platform: a manifest, not an index */
	char **unused_args;  /* --build-arg names no ARG of its stages declares (its first job's) */
};

struct plait_plan {
	struct plait_job *jobs;
	size_t n_jobs;
	struct plait_plan_image *images;
	size_t n_images;
	size_t *order; /* start order */
};

int plait_plan_make(const struct plait_target *targets, size_t n, const struct plait_plan_opts *o,
		    struct plait_plan *out, struct plait_error **err);
void plait_plan_release(struct plait_plan *p);
/* "r/app:1.0-{variant}" -> "r/app:1.0-cuda" (variant NULL: unchanged); caller frees. */
char *plait_plan_expand_variant(const char *s, const char *variant);
/* {"images":[{target, variant, kind ("index"|"manifest"), tags, annotations, platforms:[...]}],
 *  "jobs":[{target, stage, variant, platform, builder, emulated, interpreter, node, reason,
 *  args, tags, annotations}] in start order}; a new reference. */
json_t *plait_plan_to_json(const struct plait_plan *p);

#endif
