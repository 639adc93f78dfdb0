/* core/attest.h - what a built image carries as evidence: a SLSA Provenance
 * v1 in-toto statement, and the OCI 1.1 artifact manifest that attaches a
 * document (that statement, or an SPDX SBOM from core/sbom.h) to the
 * platform image it describes (its `subject`), as registries keep referrers.
 *
 * Contract:
 *  - plait_provenance_json() is a pure function of its input: with
 *    have_epoch the times are clamped to the epoch, so two builds of the same
 *    inputs give the same bytes (keys sorted, compact);
 *  - a build argument whose name looks like a secret (HF_TOKEN, DB_PASSWORD,
 *    *_API_KEY: core/lint.h's plait_lint_secret_name) never appears, nor
 *    does any --secret: only their names, listed as redacted;
 *  - a git remote's user name and password are never written;
 *  - plait_attest_put() writes the document and the empty config into the
 *    store before the manifest that names them. */
#ifndef PLAIT_ATTEST_H
#define PLAIT_ATTEST_H

#include "build.h"
#include "store.h"

#define PLAIT_PROVENANCE_PREDICATE "https://slsa.dev/provenance/v1"
#define PLAIT_PROVENANCE_BUILD_TYPE "urn:plait:buildtype:dockerfile:v1"
#define PLAIT_INTOTO_STATEMENT "https://in-toto.io/Statement/v1"
#define PLAIT_MT_INTOTO "application/vnd.in-toto+json"
#define PLAIT_MT_SPDX "application/spdx+json"
#define PLAIT_SPDX_PREDICATE "https://spdx.dev/Document"

/* The context's git work tree, when it is one: HEAD's commit and the
 * remote's URL (origin, else the first; without credentials). */
struct plait_git_source {
	char *commit; /* 40 (or 64) hex digits */
	char *remote; /* NULL when none is configured */
	char *subdir; /* the context's path inside the work tree ("" at its top) */
};
/* url without "user:password@" (https://TOKEN@github.com/... is common);
 * scp-like git@host:path is kept (the user is no secret). Caller frees. */
char *plait_url_strip_credentials(const char *url);
/* 1 and *out filled when dir is inside a git work tree whose HEAD names a
 * commit, 0 when not (or unreadable: provenance then says "local"). */
int plait_git_source(const char *dir, struct plait_git_source *out);
void plait_git_source_release(struct plait_git_source *g);

struct plait_provenance {
	const char *const *subjects; /* image names (tags), for the statement's subject list; may be NULL */
	const char *subject_digest;  /* the platform manifest */
	bool max;		     /* mode=max: every step too */
	/* external parameters */
	const char *target_name; /* bake target, or NULL */
	const char *stage;	 /* --target, or NULL */
	const char *platform;
	const char *variant; /* or NULL */
	const char *const *build_args; /* "K=V", the job's (variant args included) */
	const char *const *secret_ids; /* --secret ids: named, never their values */
	const char *dockerfile;	       /* its path as given to the build */
	const char *context_dir;
	const struct plait_git_source *git; /* or NULL */
	/* internal parameters */
	const char *build_platform;
	const char *builder; /* "native", "qemu", a node's name */
	bool have_epoch;
	int64_t epoch;
	/* run details */
	const struct plait_build_result *res;
	int64_t started, finished; /* Unix seconds */
};
int plait_provenance_json(const struct plait_provenance *p, struct plait_buf *out, struct plait_error **err);

/* A referrer of subject: an OCI image manifest with artifactType, the empty
 * config ("{}", application/vnd.oci.empty.v1+json) and doc as its one layer
 * (layer_media_type, annotations on it), everything put into s. *desc and
 * *bytes get the manifest (its digest, size and artifactType). */
int plait_attest_put(struct plait_store *s, const struct plait_descriptor *subject, const char *artifact_type,
		     const char *layer_media_type, const struct plait_map *layer_annotations,
		     const struct plait_map *annotations, const void *doc, size_t len, struct plait_descriptor *desc,
		     struct plait_buf *bytes, struct plait_error **err);

/* An in-toto v1 statement about the image at digest (named by subjects, for
 * platform) whose predicate is predicate_json (a JSON object's text). */
int plait_intoto_statement(const char *const *subjects, const char *platform, const char *digest,
			   const char *predicate_type, const char *predicate_json, struct plait_buf *out,
			   struct plait_error **err);

/* --attest-layout buildx: BuildKit's attestation manifest, an image manifest
 * whose layers are in-toto statements (application/vnd.in-toto+json, each
 * annotated in-toto.io/predicate-type) and whose config is an image config
 * of platform unknown/unknown listing them as diff_ids; it goes into the
 * index as an unknown/unknown entry naming its image by
 * vnd.docker.reference.digest. Everything put into s. */
int plait_attest_put_buildx(struct plait_store *s, const struct plait_buf *statements,
			    const char *const *predicate_types, size_t n, struct plait_descriptor *desc,
			    struct plait_buf *bytes, struct plait_error **err);

#endif
