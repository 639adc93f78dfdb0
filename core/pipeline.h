/* core/pipeline.h - a request (core/request.h) through the planner
 * (core/plan.h), the scheduler (core/scheduler.h), index assembly
 * (core/assemble.h), publication (core/publish.h) and the metadata file
 * (core/metadata.h): what `plait build`, `plait plan` and `plait bake` run.
 *
 * Contract:
 *  - plait_pipeline_plan() finds every problem before anything runs: the
 *    planner's, two images tagged alike in one --output, two targets writing
 *    one docker archive, tar or directory, a --metadata-file
 *    that cannot be written, an output that cannot hold what is built
 *    (type=docker or --load with several platforms or zstd layers,
 *    type=tar/local of a target with several variants, a type=local dest
 *    that is not empty, --iidfile with several images);
 *  - plait_pipeline_build() runs every job; when one fails, nothing is
 *    exported, tagged or pushed but by digest: job_state says what became
 *    of each job and the error is the first real failure in start order.
 *    With --push, each job's image (its blobs, then its manifest; never an
 *    index, a tag or an attestation) goes to its -t repositories by digest
 *    as soon as it is built, while the other jobs build (best effort:
 *    publishing pushes what is missing, and says what failed); a failed
 *    build may so leave untagged manifests in a registry, as a node that
 *    pushed its job does;
 *  - plait_pipeline_build() first reads every --cache-from (core/cache_remote.h):
 *    what cannot be read is a warning and a colder build, never an error;
 *  - plait_pipeline_publish() refuses to write anything unless every job
 *    was built; it writes every --output first (core/export.h for docker,
 *    tar and local), then --load (a docker archive in a temporary file
 *    through ops->load), then pushes every
 *    image to every -t repository by digest with its attestations (the
 *    provenance, by default, and the SBOM of each platform image, made
 *    here: core/attest.h, core/sbom.h) attached as referrers, then moves the tags (none with
 *    --push-by-digest), then the metadata file and the --iidfile (the
 *    config digest of a one-platform image, as `docker images` shows it and
 *    buildx writes it; the index digest otherwise), then every --cache-to
 *    (merged with what is there). A --cache-to that fails is an error
 *    that says the images were published (or, with ignore-error=true, a
 *    warning);
 *  - nothing here prints or opens a network connection: destinations are
 *    opened through ops->open, base images resolved through the plan opts'
 *    resolver, and progress goes out through ops (from worker threads for
 *    job events). */
#ifndef PLAIT_PIPELINE_H
#define PLAIT_PIPELINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "metadata.h"
#include "plan.h"
#include "publish.h"

enum plait_pipeline_note {
	PLAIT_PIPELINE_EXPORTED, /* name: an --output, written whole */
	PLAIT_PIPELINE_PUSHED,	 /* name: a -t, by digest (digest) */
	PLAIT_PIPELINE_TAGGED,	 /* name: a -t, tagged */
	PLAIT_PIPELINE_CURRENT,	 /* name: a -t that already named digest: nothing pushed */
	PLAIT_PIPELINE_CACHE_IMPORTED, /* name: a --cache-from; digest: "N step records" */
	PLAIT_PIPELINE_CACHE_EXPORTED, /* name: a --cache-to; digest: "N parts, M step records" */
	PLAIT_PIPELINE_LOADED,	 /* name: the tags loaded by --load ("" for none) */
	PLAIT_PIPELINE_IIDFILE,	 /* name: the --iidfile; digest: the image ID written */
};

struct plait_pipeline_ops {
	void *ctx;
	plait_open_fn open; /* --output specs and -t references, for writing */
	/* A job's build progress; called from worker threads. */
	void (*job_event)(void *ctx, size_t job, const struct plait_build_event *ev);
	void (*note)(void *ctx, enum plait_pipeline_note kind, const char *name, const char *digest);
	/* --load: send the docker archive at fd (size bytes, from offset 0) to
	 * the docker daemon; NULL: --load is refused. */
	int (*load)(void *ctx, int fd, int64_t size, struct plait_error **err);
	/* Run the build o of job on the node (a URL the builder chooser gave,
	 * plait_builder.node) and leave its image in the local cache's store;
	 * NULL: jobs assigned to nodes are refused. Called from worker threads.
	 * push_to (--push: the job's image's -t references; else NULL) lets the
	 * node push the image by digest itself: then res->remote_blobs says
	 * where its layers are, as for a lazy base (publishing finds them in
	 * place; outputs fetch them). Tags still move only in publish. */
	int (*remote_build)(void *ctx, size_t job, const char *node, const struct plait_build_opts *o,
			    const char *const *push_to, struct plait_build_result *res, struct plait_error **err);
	/* Something that does not fail the build (a --cache-from that cannot be
	 * read, a --cache-to ignore-error=true that failed). */
	void (*warning)(void *ctx, const char *msg);
};

struct plait_pipeline_opts {
	/* The planner's settings: build platform, builders, resolver, ... */
	const struct plait_plan_opts *plan;
	const struct plait_pipeline_ops *ops;
	const atomic_int *interrupt;
};

enum plait_job_state { PLAIT_JOB_BUILT, PLAIT_JOB_FAILED, PLAIT_JOB_CANCELLED };

struct plait_pipeline_image {
	struct plait_descriptor root; /* the manifest (one platform) or the index */
	struct plait_buf data;	      /* its exact bytes */
};

struct plait_pipeline {
	struct plait_request *req;
	const struct plait_pipeline_opts *o;
	struct plait_plan plan;
	struct plait_build_result *results; /* per job */
	double *seconds;		    /* per job */
	enum plait_job_state *job_state;    /* per job, after a build */
	struct plait_pipeline_image *images; /* per plan image, after publish */
	int64_t *started, *finished;	     /* per job: Unix seconds (provenance) */
	/* per job, after publish: its attestations (artifact manifests in the
	 * store whose subject is its manifest), attest[2 * job + k], k < n_attest[job] */
	struct plait_pipeline_image *attest;
	size_t *n_attest;
	double total;			     /* seconds, planning included */
	/* internal */
	struct plait_named_dir *dirs;
	size_t n_dirs;
	uint64_t t0;
	struct plait_job_ctx *job_ctx;
	struct plait_cache_import *cache_import; /* --cache-from, or NULL */
	pthread_mutex_t push_early_lock;	 /* one job's early push at a time */
	bool push_early_failed;			 /* under the lock: no more early pushes */
	atomic_size_t jobs_started;
};

/* Plan req (targets without platforms get the build platform). p is
 * initialised here and must be released whatever this returns. */
int plait_pipeline_plan(struct plait_pipeline *p, struct plait_request *req, const struct plait_pipeline_opts *o,
			struct plait_error **err);
int plait_pipeline_build(struct plait_pipeline *p, struct plait_error **err);
int plait_pipeline_publish(struct plait_pipeline *p, struct plait_error **err);
void plait_pipeline_release(struct plait_pipeline *p);

/* Plan image i as the metadata file and the JSON summary show it. */
json_t *plait_pipeline_image_json(const struct plait_pipeline *p, size_t i);

#endif
