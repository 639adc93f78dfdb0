/* core/bake.h - docker-bake files (the JSON form) resolved into build targets.
 *
 * Reads what `docker buildx bake` reads from docker-bake.json:
 *   { "variable": { "TAG": { "default": "1.0" } },
 *     "group":    { "default": { "targets": ["app"] } },
 *     "target":   { "app": { "context": ".", "dockerfile": "Dockerfile",
 *                            "args": { "K": "V" }, "platforms": ["linux/amd64"],
 *                            "tags": ["r/app:${TAG}"], "target": "stage",
 *                            "labels": { "K": "V" }, "annotations": ["index:K=V"],
 *                            "output": ["type=oci,dest=out"], "inherits": ["base"],
 *                            "matrix": { "v": ["cpu", "cuda"] }, "name": "app-${v}" } } }
 *
 * Contract:
 *  - variables: "default" is the value unless the environment (the lookup
 *    given) sets a variable of that name; a variable without default and not
 *    in the environment is "". Variables may refer to other variables.
 *  - "${NAME}" in any string value (and in matrix-made names) is replaced by
 *    the variable or, inside a matrix target, the matrix value; "$$" is a
 *    literal "$". An unknown name is an error naming the file, the target and
 *    the field (`docker-bake.json: target "app": tags: unknown variable "${TG}"`).
 *  - inherits: fields of the parents first (in order), then the target's own;
 *    maps (args, labels) merge key by key, lists and scalars are replaced
 *    (buildx's rules). Cycles are an error naming the cycle.
 *  - matrix: the cartesian product of its keys (in key order as written, values
 *    in order); a value is a string or an object whose string fields become
 *    "${key.field}". "name" is required with a matrix and must give distinct
 *    names; each combination is a target of that name. Requesting the
 *    original target name builds all of its combinations.
 *  - names: each requested name is a group (expanded recursively, cycles are
 *    errors) or a target; none requested = group "default", or the only
 *    target when there is just one and no default group. An unknown name is
 *    an error listing the known targets and groups.
 *  - --set: "TARGET.KEY=VALUE" (TARGET may be "*" for all, KEY one of
 *    context, dockerfile, target, args.NAME, labels.NAME, tags, platform(s),
 *    output, annotations); list keys are replaced by the value split on ','.
 *    An unknown key is an error.
 *  - results are in the order requested, each target once; "dockerfile" is
 *    joined to "context" unless absolute (buildx: relative to the context);
 *    "context" defaults to ".", "dockerfile" to "<context>/Dockerfile".
 *  - Errors are -PLAIT_E_USAGE with the file name and, where known, the target
 *    and field. Nothing here prints. */
#ifndef PLAIT_BAKE_H
#define PLAIT_BAKE_H

#include "buf.h"
#include "error.h"

struct plait_bake_target {
	char *name;
	char *context;
	char *dockerfile;
	char *target;        /* stage, or NULL */
	char **platforms;    /* NULL-terminated, as written; NULL = none given */
	char **tags;
	char **args;         /* "K=V", in key order as written (inherited first) */
	char **labels;       /* "K=V" */
	char **annotations;  /* as written: "index:K=V", "manifest[linux/arm64]:K=V", "K=V" */
	char **outputs;      /* as written: "type=oci,dest=DIR" */
	char **cache_from;   /* as written: "type=registry,ref=R/X:cache" */
	char **cache_to;
	char **attest;       /* as written: "type=provenance,mode=max", "type=sbom" */
	bool no_cache;
};

struct plait_bake {
	struct plait_bake_target *targets;
	size_t n_targets;
};

/* The environment lookup for variables; NULL = getenv(). */
typedef const char *(*plait_bake_getenv_fn)(const char *name, void *ud);

struct plait_bake_opts {
	const char *const *names; /* targets or groups; NULL/empty = the default */
	const char *const *sets;  /* "--set" values */
	plait_bake_getenv_fn getenv;
	void *getenv_ud;
};

/* Read and resolve the bake file at path. */
int plait_bake_load(const char *path, const struct plait_bake_opts *o, struct plait_bake *out,
		    struct plait_error **err);
/* Several bake files (NULL-terminated paths), merged in order as buildx
 * does (a later file wins per field), then resolved. */
int plait_bake_load_files(const char *const *paths, const struct plait_bake_opts *o,
			  struct plait_bake *out, struct plait_error **err);
/* Resolve from JSON text; file_name names it in messages. */
int plait_bake_parse(const char *text, size_t len, const char *file_name,
		     const struct plait_bake_opts *o, struct plait_bake *out, struct plait_error **err);
/* The resolved targets as `buildx bake --print` shows them:
 * {"group":{"default":{"targets":[...]}},"target":{NAME:{...}}}, indented, keys sorted. */
void plait_bake_print(const struct plait_bake *b, struct plait_buf *out);
void plait_bake_release(struct plait_bake *b);

#endif
