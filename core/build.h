/* core/build.h - the build executor: one Dockerfile, one target platform, one
 * image in the content store.
 *
 * The executor knows neither "which platform runs this" nor "where the result
 * goes": commands run through a struct plait_runner (a native sandbox, QEMU,
 * a remote builder: platforms/ provides them), base images come through a
 * struct plait_image_resolver (registries, layouts: cmd/ wires registry/),
 * and the result is an image manifest in the cache's content store that the
 * caller exports.
 *
 * Contract:
 *  - only the stages the target needs are built, in dependency order, and
 *    which ones is decided before any step runs: FROM <stage>, COPY/ADD
 *    --from= and RUN --mount from= name them, their values expanded as the
 *    Dockerfile's ARG and ENV lines set them. As BuildKit does, the base
 *    images of those stages are resolved first and what their ONBUILD
 *    triggers name, with the image's ENV in scope, is added (again for the
 *    stages added, until nothing new is needed); FROM then pulls what was
 *    resolved, with no second look-up. No instruction builds a stage;
 *  - each layer-producing step (RUN, COPY, ADD) has a cache key: a digest of
 *    the parent state, the expanded instruction, the environment and args it
 *    can see, the user and working directory, its mounts and, for COPY/ADD,
 *    the content and metadata of its sources. A hit reuses the recorded layer
 *    and runs nothing; --no-cache skips lookups (results are still recorded);
 *  - layers are deterministic (core/layer.h); with an epoch set, the config's
 *    created times are the epoch, so the same inputs give the same digest;
 *  - a failed step names the Dockerfile line and, for RUN, the exit status and
 *    the last lines of output; nothing is tagged by the executor at all;
 *  - the cache directory (core/cache.h) may be shared by concurrent builds:
 *    entries are written to temporary names and renamed, and a shared lock
 *    is held. */
#ifndef PLAIT_BUILD_H
#define PLAIT_BUILD_H

#include <stdatomic.h>

#include "endpoint.h"
#include "layer.h"

/* Mounts a RUN step asks for, as the runner must provide them. */
enum plait_run_mount_type { PLAIT_RUN_MOUNT_BIND = 1, PLAIT_RUN_MOUNT_TMPFS, PLAIT_RUN_MOUNT_FILE };
struct plait_run_mount {
	enum plait_run_mount_type type;
	const char *source; /* BIND: host path */
	const char *target; /* absolute inside the root */
	bool readonly;
	const char *options; /* TMPFS options, or NULL */
	/* FILE (a secret): a read-only file with this content, owner and mode,
	 * which the runner keeps in memory only (never on a disk). */
	const void *data;
	size_t data_len;
	uid_t uid;
	gid_t gid;
	mode_t mode;
};

struct plait_run_request {
	const char *rootfs;
	const char *const *argv;
	const char *const *env;
	const char *workdir;
	const char *user;
	bool network_none;
	bool insecure; /* RUN --security=insecure: every capability, no no_new_privs */
	const struct plait_run_mount *mounts;
	size_t n_mounts;
	/* Output line by line (stream 1 stdout, 2 stderr). */
	void (*on_output)(void *opaque, int stream, const char *line, size_t len);
	void *opaque;
	const atomic_int *cancel; /* non-zero: stop the command */
};

/* Runs commands for one target platform (native sandbox, emulated, remote). */
struct plait_runner {
	void *ctx;
	/* 0 when the command ran (its status in *exit_code / *signal), <0 when it could not run. */
	int (*run)(void *ctx, const struct plait_run_request *req, int *exit_code, int *signal,
		   struct plait_error **err);
	/* USER / --chown names resolved in the image at rootfs (its /etc/passwd, /etc/group). */
	int (*resolve_user)(void *ctx, const char *rootfs, const char *user, uid_t *uid, gid_t *gid,
			    struct plait_error **err);
};

/* Finds base images: ref as written in FROM (after expansion), for platform
 * ("linux/arm64", as in FROM --platform after expansion). Fills an endpoint to
 * read blobs from, and the manifest (not an index) with its bytes. */
struct plait_image_resolver {
	void *ctx;
	int (*resolve)(void *ctx, const char *ref, const char *platform,
		       struct plait_endpoint **ep, struct plait_descriptor *manifest,
		       struct plait_buf *bytes, struct plait_error **err);
	/* ADD https://...: stream the URL's body into w (the caller commits w). */
	int (*fetch_url)(void *ctx, const char *url, struct plait_blob_writer *w, int64_t *mtime,
			 struct plait_error **err);
	/* ADD of a git repository ("URL#REF[:SUBDIR]", plait_url_is_git()):
	 * checked out into a directory the resolver keeps until it is released,
	 * with its .git when keep_git_dir; *dir and *commit are the caller's. */
	int (*fetch_git)(void *ctx, const char *url, bool keep_git_dir, char **dir, char **commit,
			 struct plait_error **err);
};

enum plait_build_event_kind {
	PLAIT_BUILD_STEP_START, /* text: "[stage] INSTRUCTION ..." */
	PLAIT_BUILD_STEP_CACHED,
	PLAIT_BUILD_STEP_DONE,  /* seconds */
	PLAIT_BUILD_STEP_OUTPUT, /* text: a line of RUN output */
	PLAIT_BUILD_STEP_ERROR, /* text: what failed */
};

struct plait_build_event {
	enum plait_build_event_kind kind;
	int step;          /* 1-based, over the whole build */
	int total;         /* steps planned */
	const char *stage; /* stage name or index */
	const char *text;
	double seconds;
};

struct plait_build_secret {
	const char *id;
	const char *src; /* host file holding the secret */
};

/* --ssh ID=SOCKET: the agent RUN --mount=type=ssh,id=ID reaches. */
struct plait_build_ssh {
	const char *id;
	const char *socket;
};

/* --build-context NAME=DIR: a local directory COPY --from=NAME and
 * RUN --mount from=NAME read, like a second build context. */
struct plait_named_dir {
	const char *name;
	const char *dir;
};

struct plait_cache_import; /* core/cache_remote.h */

struct plait_build_opts {
	const char *context_dir;
	const struct plait_named_dir *named_dirs;
	size_t n_named_dirs;
	const char *dockerfile; /* NULL = <context>/Dockerfile */
	const char *target;     /* stage name; NULL = the last stage */
	struct plait_platform platform;       /* target platform (TARGETOS, TARGETARCH, ...) */
	const char *platform_str;             /* the same formatted: "linux/arm64" */
	struct plait_platform build_platform; /* where the build runs */
	const char *build_platform_str;
	const char *const *build_args;        /* "K=V", NULL-terminated, or NULL */
	const char *const *labels;            /* "K=V" added to the image config */
	const char *const *annotations;       /* "K=V" added to the image manifest */
	const struct plait_build_secret *secrets;
	size_t n_secrets;
	const struct plait_build_ssh *ssh; /* --ssh */
	size_t n_ssh;
	const char *cache_dir;
	bool no_cache;
	bool allow_insecure; /* RUN --security=insecure may run (--allow security.insecure) */
	enum plait_layer_compression compression;
	bool docker_media_types; /* Docker schema 2 manifest and config (gzip layers only) */
	bool have_epoch;
	int64_t source_date_epoch;
	const struct plait_runner *runner;
	const struct plait_image_resolver *resolver;
	void (*progress)(const struct plait_build_event *ev, void *ctx);
	void *progress_ctx;
	const atomic_int *cancel;
	/* --cache-from records: a step missing here is looked up there; its
	 * layer blob is fetched only when a later step needs its files. NULL: none. */
	struct plait_cache_import *cache_import;
	/* Called on a layer-writing thread with the blob writer of each layer
	 * the image will hold (the target stage's own, and those of the stages
	 * it is FROM), before its first byte: an upload can follow it as it
	 * grows (--push, core/push_stream.h). NULL: none. */
	void (*layer_writer)(void *ctx, struct plait_blob_writer *w);
	void *layer_writer_ctx;
};

/* What a build read from outside its contexts, for provenance's resolved
 * dependencies: a base image (FROM, COPY --from, RUN --mount from=) or an
 * ADD URL, each once. */
struct plait_build_material {
	char *ref;	/* an image as the Dockerfile named it (expanded), or the URL */
	char *resolved; /* an image: where it was found, by digest ("host/repo@sha256:…"); NULL for a URL */
	char *platform; /* an image: the platform asked for; NULL for a URL */
	char digest[PLAIT_SHA256_DIGEST_SIZE]; /* the platform manifest's, or the URL body's */
};

/* One step as provenance mode=max shows it, in build order. */
struct plait_build_step_record {
	char *stage;
	char *text; /* the instruction as written ("FROM" with its expanded image) */
	bool cached;
};

struct plait_build_result {
	struct plait_descriptor manifest; /* in the cache's store */
	char dockerfile_digest[PLAIT_SHA256_DIGEST_SIZE];
	struct plait_build_material *materials;
	size_t n_materials;
	/* 1 + the index in materials of the image the target stage starts
	 * from (through FROM <stage> chains); 0: scratch */
	size_t base_material;
	struct plait_build_step_record *step_records;
	size_t n_step_records;
	char config_digest[PLAIT_SHA256_DIGEST_SIZE];
	int64_t size; /* manifest + config + layers */
	int steps, cached;
	/* Keys of the steps with records (NULL-terminated, build order): every
	 * step of every stage built (--cache-to mode=max), and those whose
	 * layers make the image (mode=min). */
	char **cache_keys_all, **cache_keys_final;
	char **cache_mounts; /* ids of the RUN --mount=type=cache it used */
	/* "DIGEST REF": base image layers this build did not pull (with
	 * --cache-from nothing needed their files): REF (an image by digest)
	 * has them, for the push to mount or fetch. */
	char **remote_blobs;
	/* The node that built it (ssh://…, set by whoever ran the job there);
	 * NULL: this host. */
	char *built_on;
	/* The cache's shared lock, held until the result is released, so a
	 * `plait cache prune` cannot remove blobs while the caller exports them. */
	int lock_fd;
};
void plait_build_result_release(struct plait_build_result *r);
void plait_build_materials_free(struct plait_build_material *v, size_t n);
void plait_build_step_records_free(struct plait_build_step_record *v, size_t n);

/* Build; the image lands in the store of the cache directory (see
 * plait_build_cache_store()). */
int plait_build(const struct plait_build_opts *o, struct plait_build_result *res,
		struct plait_error **err);
/* A base image a build needs: FROM ref (expanded), for platform, at line. */
struct plait_base_ref {
	char *ref;
	char *platform;
	int line;
};
/* What building o's target takes, read from the Dockerfile without building,
 * pulling or touching the cache (for the planner; a stage only a base image's
 * ONBUILD trigger or ENV names is not seen): the base images the stages it
 * needs start from (not stages, not scratch), and whether a RUN step of those
 * stages executes on the target platform (not only on FROM --platform ones,
 * such as $BUILDPLATFORM tool stages): without one, no builder that can run
 * the target platform's programs is needed. */
struct plait_build_needs {
	struct plait_base_ref *bases;
	size_t n_bases;
	bool runs_on_target;
	/* The --build-arg names no ARG of the stages built declares (the ARGs
	 * before the first FROM count), in the order given; the proxy args,
	 * BUILDKIT_* and SOURCE_DATE_EPOCH are consumed without an ARG, as in
	 * BuildKit. NULL-terminated, or NULL. */
	char **unused_args;
};
int plait_build_needs(const struct plait_build_opts *o, struct plait_build_needs *out, struct plait_error **err);
void plait_build_needs_release(struct plait_build_needs *n);

/* The cache directory's content store path: "<cache>/store" (as
 * plait_cache_store_dir()). Caller frees. */
char *plait_build_cache_store(const char *cache_dir);
/* That store (which must exist) as an endpoint, for copying built images
 * out of it. */
int plait_build_cache_endpoint(const char *cache_dir, struct plait_endpoint **out, struct plait_error **err);
/* $XDG_CACHE_HOME/plait or ~/.cache/plait (as plait_cache_default_dir()). Caller frees. */
char *plait_build_default_cache_dir(void);

#endif
