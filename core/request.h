/* core/request.h - what the user asked for: targets (a context, a
 * Dockerfile, platforms, variants, build args, tags, outputs) and the
 * settings every job of one run shares. `plait build` fills one target from
 * argv, `plait bake` one per bake target; the planner (core/plan.h) reads
 * the targets as they are, and the pipeline (core/pipeline.h) the rest.
 *
 * Contract:
 *  - a request owns every string and array it points at: _release frees
 *    them (and removes the temporary secret files it lists);
 *  - the parsers never print: a malformed value is -PLAIT_E_USAGE naming the
 *    option and the value; a platform that is unknown, empty or listed twice
 *    is not an error there but a line in target->problems, so the planner
 *    reports every such problem together with its own in one error;
 *  - platforms are kept normalised ("linux/arm64", platforms/platform.h's
 *    form); a target without platforms_given builds the build platform. */
#ifndef PLAIT_REQUEST_H
#define PLAIT_REQUEST_H

#include "build.h"
#include "cache_remote.h"

struct plait_variant {
	char *name;
	char **args;	  /* "K=V" */
	char **platforms; /* normalised ("linux/arm64"): restricts the target's; NULL = none */
};
void plait_variant_release(struct plait_variant *v);

/* --annotation, parsed: "index:K=V", "manifest[P,...]:K=V", "K=V". */
struct plait_annotation {
	char *kv;
	bool index;
	char **platforms; /* manifest[...]: normalised platforms it is for; NULL = all */
};
void plait_annotation_release(struct plait_annotation *a);

/* One build request: the command line's, or one bake target. */
struct plait_target {
	char *name; /* bake target, or NULL */
	char *context_dir;
	/* A git context fetched into context_dir (cmd/remote_context.h): the
	 * URL as given (with #REF:SUBDIR) and the commit checked out, for the
	 * provenance; else NULL */
	char *context_git_url, *context_git_commit;
	char *dockerfile; /* NULL = <context>/Dockerfile */
	char *stage;	  /* --target, or NULL */
	/* An image of one platform is a manifest, not an index. */
	struct plait_platform *platforms;
	size_t n_platforms;
	char **platform_texts; /* each platform as written, for messages */
	bool platforms_given;  /* else the build platform's */
	struct plait_variant *variants; /* none = one unnamed */
	size_t n_variants;
	char **tags;
	char **build_args;
	char **labels;
	struct plait_annotation *annotations;
	size_t n_annotations;
	/* "oci:DIR", "oci-archive:FILE", "docker:FILE" (docker save's format),
	 * "tar:FILE" and "local:DIR" (the root file system) */
	char **outputs;
	/* What reading this target's input found wrong (an unknown platform):
	 * reported first, with the planner's own problems. */
	char **problems;
};
void plait_target_release(struct plait_target *t);

/* --build-context NAME=REF */
struct plait_named_context {
	char *name;
	char *ref;
};

struct plait_request {
	struct plait_target *targets;
	size_t n_targets;
	/* shared by every job */
	char *cache_dir; /* NULL = plait_build_default_cache_dir() */
	bool no_cache;
	bool allow_insecure; /* --allow security.insecure: RUN --security=insecure may run */
	enum plait_layer_compression compression;
	bool have_epoch;
	int64_t source_date_epoch;
	struct plait_build_secret *secrets; /* id and src owned */
	size_t n_secrets;
	char **secret_files; /* temporary files, removed by _release */
	struct plait_build_ssh *ssh; /* --ssh: id and agent socket owned */
	size_t n_ssh;
	struct plait_named_context *named;
	size_t n_named;
	bool push, by_digest, allow_latest, keep_going, docker_format;
	size_t max_jobs; /* 0 = default */
	char *metadata;	 /* --metadata-file, or NULL */
	char *iidfile;	 /* --iidfile: the image ID written there, or NULL */
	bool load;	 /* --load: the images loaded into the docker daemon (ops->load) */
	/* Attestations attached to every pushed platform image as OCI referrers
	 * (core/attest.h, core/sbom.h): provenance is mode=min by default with
	 * --push, as in buildx; the SBOM only when asked for. */
	enum plait_provenance_mode {
		PLAIT_PROVENANCE_DEFAULT,
		PLAIT_PROVENANCE_OFF,
		PLAIT_PROVENANCE_MIN,
		PLAIT_PROVENANCE_MAX,
	} provenance;
	bool sbom;
	bool sbom_given; /* --sbom (true or false) was given */
	/* --attest-layout buildx: BuildKit's attestation manifests inside the
	 * index (unknown/unknown entries) instead of OCI referrers; written to
	 * OCI outputs too */
	bool attest_in_index;
	/* --cache-from (tried in order) and --cache-to (each written), bake's
	 * cache-from / cache-to of every target included, each value once. */
	struct plait_cache_spec *cache_from, *cache_to;
	size_t n_cache_from, n_cache_to;
};

/* Parse a --cache-from (to false) or --cache-to value (what names it in
 * errors) and add it to r unless r has the same text already. */
int plait_request_add_cache(struct plait_request *r, const char *spec, bool to, const char *what,
			    struct plait_error **err);

/* A new empty target at the end of r->targets (zeroed). */
struct plait_target *plait_request_add_target(struct plait_request *r);
void plait_request_release(struct plait_request *r);

/* "NAME[:K=V,...,platforms=P+P]" (--variant): added to t->variants; an
 * unknown platform is left out and said in t->problems. */
int plait_target_add_variant(struct plait_target *t, const char *spec, struct plait_error **err);
/* "index:K=V", "manifest[P,...]:K=V", "K=V" (--annotation): added to t->annotations. */
int plait_target_add_annotation(struct plait_target *t, const char *spec, struct plait_error **err);
/* "type=T,dest=D" (--output; T one of oci, oci-archive, docker, tar, local):
 * "T:D" added to t->outputs. A value without '=' is "local:VALUE" (buildx's
 * -o DIR). */
int plait_target_add_output(struct plait_target *t, const char *spec, struct plait_error **err);
/* A platform list ("linux/amd64,linux/arm64"). An unknown platform, an empty
 * entry or one listed twice goes to t->problems, not into t; what names the
 * list there ("--platform", or bake's "platforms"). */
void plait_target_add_platforms(struct plait_target *t, const char *what, const char *list);

/* Every value of t that goes into JSON (tags, build args, labels,
 * annotations, variant args: image configs, manifests, --metadata-file,
 * --progress json) and is not valid UTF-8: one line each added to *problems,
 * naming the option ("--build-arg A", or bake's "args A" when t->name is
 * set) and the byte, never quoting the bytes themselves. Returns how many. */
size_t plait_target_check_utf8(const struct plait_target *t, char ***problems);

/* The parsers behind them, for one value. */
int plait_parse_variant(const char *spec, struct plait_variant *out, char ***problems, struct plait_error **err);
int plait_parse_annotation(const char *spec, struct plait_annotation *out, struct plait_error **err);
int plait_parse_output(const char *spec, char **out, struct plait_error **err);
/* --provenance's value ("" for the bare flag): true, false, mode=min|max,
 * disabled=BOOL, version=v1 (comma-separated). */
int plait_parse_provenance(const char *spec, enum plait_provenance_mode *out, struct plait_error **err);
/* --sbom's value ("" for the bare flag): true, false, disabled=BOOL. */
int plait_parse_sbom(const char *spec, bool *out, struct plait_error **err);
/* --attest type=provenance[,mode=…] | type=sbom[,disabled=BOOL] into r. */
int plait_request_add_attest(struct plait_request *r, const char *spec, struct plait_error **err);

#endif
