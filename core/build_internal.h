/* core/build_internal.h - what the executor's files share (not installed).
 *
 * The executor is one job per file:
 *   build.c        the builder, the stage loop (stages in the order
 *                  build_needs.c computed), ONBUILD, the image it ends with
 *   build_needs.c  which stages the target needs (before anything runs, base
 *                  images' ONBUILD triggers and ENV included) and
 *                  plait_build_needs() for the planner
 *   build_stage.c  stage state: layers, history, cache keys, cache hits and
 *                  the per-step lock, events and messages, variables
 *   build_commit.c a step's layer written by a thread behind the next steps
 *   build_from.c   FROM: a stage, scratch, or an image pulled into the cache
 *   build_run.c    RUN: argv, environment, key, running it
 *   build_mount.c  RUN --mount: turning a parsed mount (dockerfile_mount.h)
 *                  into what the runner binds, and its line of the key
 *   build_copy.c   COPY and ADD, and writing into a snapshot root
 *   build_meta.c   metadata instructions (ENV, LABEL, CMD, ...) and WORKDIR
 * The cache directory itself (layout, lock, step records): core/cache.c. */
#ifndef PLAIT_BUILD_INTERNAL_H
#define PLAIT_BUILD_INTERNAL_H

#include "build.h"
#include "cache.h"
#include "context.h"
#include "dockerfile.h"
#include "fs.h"
#include "snapshot.h"
#include "strv.h"
#include "timestamp.h"
#include "userns.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct layer_ref {
	struct plait_descriptor desc; /* the blob */
	char diff_id[PLAIT_SHA256_DIGEST_SIZE];
	char *dir; /* unpacked, overlay form */
	/* A --cache-from hit: dir is where it goes, but neither the blob nor
	 * the tree may exist yet (build_ensure_stage_layers() makes them). */
	bool lazy;
	/* A base image layer left in its registry (a build with --cache-from):
	 * fetched from here when needed. Borrowed: the builder's base_eps. */
	struct plait_endpoint *src;
	/* Its blob is being written (build_commit.c): desc and diff_id are not
	 * known yet, dir names the tree through a descriptor. */
	struct build_commit *pending;
};

/* A stage's base image, resolved before the stage loop (build_resolve_bases())
 * so that the stages its ONBUILD triggers and ENV name are built too; FROM
 * pulls what was resolved here, with no second look-up. */
struct base_image {
	bool tried;
	int r;                   /* <0: resolving failed, FROM reports err */
	struct plait_error *err;
	struct plait_endpoint *ep;
	struct plait_descriptor man;
	struct plait_buf bytes; /* the manifest's */
	bool have_cfg;          /* its config was read (into the cache's store) */
	struct plait_image_config cfg;
};

struct stage {
	const struct plait_df_stage *df;
	struct base_image base;
	char *label; /* name or index, for messages */
	bool needed, built;
	/* Its layers end up in the image: the target stage, and each stage a
	 * stage in the image is FROM (build_parse(), from build_mark_needed()'s
	 * from_stage). */
	bool in_image;
	struct stage *from_stage; /* FROM <stage>, else NULL */
	struct plait_image_config cfg;
	struct layer_ref *layers;
	size_t n_layers;
	char key[PLAIT_SHA256_DIGEST_SIZE]; /* cache chain */
	struct plait_map args;              /* ARGs in scope */
	char **declared;                    /* the stage's ARG names in declaration order, set or not (RUN history) */
	bool cmd_set;                       /* CMD given in this stage */
	/* When the newest layer of this state was made: metadata steps and the
	 * image take it, so an unchanged rebuild gives the same digest. */
	char *last_created;
	/* The platform its RUN steps execute for: FROM --platform's, else the
	 * target's. In the RUN key instead of the target platform, so a
	 * FROM --platform=$BUILDPLATFORM stage is the same step for every target. */
	char *run_platform;
	/* Keys of the steps that made this state's layers (and empty steps), in
	 * order, FROM <stage> included: what --cache-to mode=min exports. */
	char **keys;
	size_t base_material; /* see plait_build_result */
};

struct builder {
	const struct plait_build_opts *o;
	struct plait_dockerfile df;
	struct plait_context *ctx;
	struct plait_cache *cache;
	struct plait_store *store; /* the cache's */
	struct plait_cache_step_lock step_lock; /* the step being run, see build_use_cached_step() */
	struct stage *stages;
	size_t n_stages;
	struct plait_map build_args; /* --build-arg */
	struct plait_map meta;       /* global ARGs and automatic args, for FROM */
	int step, total, cached;
	char **all_keys; /* every step's key, once, in build order (mode=max) */
	char **mount_ids; /* RUN --mount=type=cache ids used (--cache-to mounts=) */
	struct plait_endpoint **base_eps; /* what lazy base layers come from */
	size_t n_base_eps;
	char **remote_blobs; /* "DIGEST REF" of base layers not pulled */
	struct plait_build_material *materials;
	size_t n_materials;
	struct plait_build_step_record *step_records;
	size_t n_step_records;
	/* for a failing RUN: its last output lines */
	char *tail[8];
	size_t n_tail;
	struct stage *cur;
	uint64_t step_t0; /* when the current step started (plait_now_ns) */
	/* The head of a later stage that a second builder runs alongside
	 * (build.c's prefetch); its steps are found in the cache here. */
	struct prefetch *prefetch;
	struct prefetch *recorder; /* set in the prefetch's own builder */
	struct build_commits *commits; /* layers being written behind the steps */
};

/* The prefetch's builder is about to make step key itself (it holds the
 * step's lock and the cache has no record yet). */
void build_prefetch_record(struct prefetch *pf, const char *key);

/* What stops a layer write of b: the job's cancel (Ctrl-C, another job
 * failed), also in the prefetch's builder. */
const atomic_int *build_layer_cancel(const struct builder *b);

/* Whether key is a step the prefetch ran in this build (a cache hit on it
 * is this build's work, not an earlier build's). */
bool build_prefetched(const struct builder *b, const char *key);

/* ------------------------------------------------------------ small helpers */

/* env "K=V" list helpers */
static inline const char *env_get(char **env, const char *key)
{
	size_t n = strlen(key);
	for (char **p = env; p && *p; p++)
		if (strncmp(*p, key, n) == 0 && (*p)[n] == '=')
			return *p + n + 1;
	return NULL;
}

static inline void env_set(char ***envp, const char *key, const char *value)
{
	size_t n = strlen(key), count = 0;
	char **env = *envp;
	struct plait_buf kv = PLAIT_BUF_INIT;
	plait_buf_addf(&kv, "%s=%s", key, value);
	for (; env && env[count]; count++) {
		if (strncmp(env[count], key, n) == 0 && env[count][n] == '=') {
			free(env[count]);
			env[count] = plait_buf_detach(&kv, NULL);
			return;
		}
	}
	env = xrealloc(env, (count + 2) * sizeof(char *));
	env[count] = plait_buf_detach(&kv, NULL);
	env[count + 1] = NULL;
	*envp = env;
}

/* ------------------------------------------------------------ build_stage.c */

void build_emit(struct builder *b, enum plait_build_event_kind kind, const char *text, double secs);
/* Record a material (see plait_build_result) unless there already; returns
 * 1 + its index. */
size_t build_add_material(struct builder *b, const char *ref, const char *resolved, const char *platform,
			  const char *digest);
/* The warning for device nodes a rootless unpack of what (a layer digest, an
 * ADD source) left out. */
void build_warn_devices(struct builder *b, const char *what, size_t n);
bool build_cancelled(const struct builder *b);
/* "Dockerfile:12" for messages. */
void build_where(const struct builder *b, const struct plait_df_instr *in, struct plait_buf *out);
/* "Dockerfile:12: <message>" */
int build_instr_error(const struct builder *b, const struct plait_df_instr *in, int code,
		      struct plait_error **err, const char *fmt, ...) _printf_(5, 6);
/* The SHELL in effect: the image's, or /bin/sh -c. */
char *const *build_shell_of(const struct stage *st);
/* The workdir-relative path p made absolute and clean. */
void build_clean_abs(const char *workdir, const char *p, struct plait_buf *out);

/* Variable lookup for core/expand: st NULL is the global scope (FROM lines). */
struct lookup_ctx {
	struct builder *b;
	struct stage *st;
};
const char *build_lookup(const char *name, void *ud);
int build_expand_word(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		      const char *text, char **out, struct plait_error **err);
/* An ARG's name, expanded ("ARG ${NAME}=v" as BuildKit); empty is an error. */
int build_arg_name(struct builder *b, struct stage *st, const struct plait_df_instr *in, const char *key,
		   char **out, struct plait_error **err);

void layer_ref_release(struct layer_ref *l);
void stage_release(struct stage *st);
/* dst becomes a deep copy of src's state (FROM <stage>). */
void stage_copy_state(struct stage *dst, const struct stage *src);
/* created NULL: the time of the newest layer (metadata steps), else now. */
void stage_add_history(struct builder *b, struct stage *st, const char *created_by, bool empty,
		       const char *created);
/* The key of a state: what came before and what this step is. */
void build_chain_key(const char *parent, const struct plait_buf *step, char out[PLAIT_SHA256_DIGEST_SIZE]);
/* What shapes every layer of a chain: part of the key at its root. */
void build_layer_settings(const struct builder *b, struct plait_buf *k);
/* st's layer dirs, NULL-terminated in *buf (the caller frees *buf). */
const char *const *build_lowers_of(const struct stage *st, const char ***buf);
/* One thread of this process at a time works on key (others wait): two
 * stages FROM one base (a stage's prefetch and the stage before it, two jobs
 * of one platform) pull and unpack it once, the second finding it done.
 * A wait ends with -PLAIT_E_CANCELLED once *cancel is set. */
int build_key_lock(const char *key, const atomic_int *cancel);
void build_key_unlock(const char *key);
/* Make sure the layer blob is unpacked as an overlay lower (l->dir). */
int build_ensure_layer_dir(struct builder *b, struct layer_ref *l, struct plait_error **err);
/* Fetch and unpack what --cache-from hits of st left lazy. */
int build_ensure_stage_layers(struct builder *b, struct stage *st, struct plait_error **err);
/* A fresh snapshot of st's root (the caller releases it). */
int build_snapshot_of_stage(struct builder *b, struct stage *st, struct plait_snapshot **out,
			    struct plait_error **err);
/* Look the step with key k up and, on a hit, take its recorded layer: 1 hit,
 * 0 miss (or --no-cache; the step's lock is then held), <0 error. */
int build_use_cached_step(struct builder *b, struct stage *st, const char *k, const char *created_by,
			  struct plait_error **err);
/* The key of a step (build_chain_key of st's key and step) into k, then
 * build_use_cached_step under it: what COPY, ADD, RUN and WORKDIR's mkdir do
 * before they run. */
/* Record k as a key of st's state for --cache-to (the chain's own, or an
 * alias that finds it). */
void build_note_key(struct builder *b, struct stage *st, const char *k);
/* 1 and key filled when alias is an alias record, here or in a --cache-from. */
int build_alias_lookup(struct builder *b, const char *alias, char key[PLAIT_SHA256_DIGEST_SIZE]);
int build_key_and_use_cached_step(struct builder *b, struct stage *st, const struct plait_buf *step,
				  char k[PLAIT_SHA256_DIGEST_SIZE], const char *created_by,
				  struct plait_error **err);
/* Turn the snapshot's change into a layer of st (or an empty history entry),
 * record it under key (and alias, when not NULL: plait_cache_alias_write)
 * and release the step's lock. An overlay snapshot's layer is written
 * behind the next steps (build_commit_behind()). */
int build_commit_change(struct builder *b, struct stage *st, struct plait_snapshot *snap,
			const char *key, const char *alias, const char *created_by,
			const struct plait_df_instr *in, struct plait_error **err);
void stage_add_layer(struct stage *st, struct layer_ref *l);

/* ------------------------------------------------------------ build_commit.c */

/* The options st's layers are written with: the build's compression and
 * clamping, and its layer_writer hook for a stage in the image. */
void build_layer_options(const struct builder *b, const struct stage *st, struct plait_layer_options *lo);

/* The overlay snapshot's upper becomes a pending layer of st at once; the
 * builder's commit thread writes its blob, syncs and moves the tree, records
 * the step under key (and alias) and releases the step's lock. 1 when the
 * snapshot's root stays busy and cannot be unmounted: nothing done, the
 * caller commits in line. */
int build_commit_behind(struct builder *b, struct stage *st, struct plait_snapshot *snap, const char *key,
			const char *alias, const char *created_by, const struct plait_df_instr *in,
			struct plait_error **err);
/* Wait until st's layers (NULL: every stage's) are written and take them in;
 * the error of a commit that failed, naming its step. */
int build_commits_settle(struct builder *b, const struct stage *st, struct plait_error **err);
/* Wait for the commit thread to finish what it has and stop it; the
 * commits' temporary trees go. Before the stages and the cache are freed. */
void build_commits_release(struct builder *b);

/* A --build-context directory, or NULL. */
const char *build_named_dir(const struct builder *b, const char *name);
/* The stage called name (or with that index) before `before`, or NULL. */
struct stage *build_find_stage(struct builder *b, const char *name, size_t before);
/* fs, a stage this one reads (FROM, --from): built already, as the stage
 * loop's order promises; else the error names the step that found it late. */
int build_stage_ready(struct builder *b, const struct stage *fs, const struct plait_df_instr *in,
		      const char *name, struct plait_error **err);

/* ------------------------------------------------------------ build_from.c */

/* Resolve st's base image ref for platform into st->base: its manifest and,
 * when it can be read, its config (stored in the cache's store, so the pull
 * skips it). A failure is kept for FROM to report where it always did. */
void build_resolve_base(struct builder *b, struct stage *st, const char *ref, const char *platform);
void base_image_release(struct base_image *bi);
/* Pull ref into st: what build_resolve_base() found for st, else resolved now. */
int build_from_image(struct builder *b, struct stage *st, const char *ref, const char *platform,
		     struct plait_error **err);
int build_do_from(struct builder *b, struct stage *st, size_t idx, struct plait_error **err);

/* ------------------------------------------------------------ build_run.c, build_mount.c */

/* What the mounts of a RUN hold until it ends: views of stages and images,
 * writable overlays that make rw binds throwaway, private directories, locks. */
struct mount_views {
	struct plait_snapshot **snaps;
	size_t n_snaps;
	struct stage **stages;
	size_t n_stages;
	char **tmpdirs; /* removed after the RUN */
	int *locks;	/* cache mounts with sharing=locked|private: held until the RUN ends */
	size_t n_locks;
	/* the runner's mounts and the strings they point at */
	struct plait_run_mount *mounts;
	size_t n_mounts;
	char **keep;
	struct plait_buf *secrets; /* FILE mounts' contents: zeroed and freed after the RUN */
	size_t n_secrets;
	struct plait_ssh_forward **ssh; /* RUN --mount=type=ssh relays, stopped after the RUN */
	size_t n_ssh;
	/* cache mounts: id and directory, for build_restore_mounts() */
	char **restore_ids, **restore_dirs;
	size_t n_restore;
};
void mount_views_release(struct mount_views *v);
/* After the RUN's cache miss: fill its empty cache mounts from --cache-from. */
void build_restore_mounts(struct builder *b, const struct mount_views *v);
/* Prepare RUN --mount=spec (not expanded yet) of stage idx: add what the
 * runner must bind to v->mounts (nothing for an optional secret not given or
 * an env-only one), its line to key and, for a secret env=, the value to *env. */
int build_prepare_mount(struct builder *b, struct stage *st, size_t idx, const struct plait_df_instr *in,
			const char *spec, struct mount_views *v, struct plait_buf *key, char ***env,
			struct plait_error **err);
/* Add m for the runner, with keep_source and keep_target as its strings;
 * v owns them (and m->options) from now on. */
void build_add_mount(struct mount_views *v, const struct plait_run_mount *m, char *keep_source,
		     char *keep_target);
int build_do_run(struct builder *b, struct stage *st, size_t idx, const struct plait_df_instr *in,
		 struct plait_error **err);

/* ------------------------------------------------------------ build_copy.c, build_meta.c */

int build_do_copy(struct builder *b, struct stage *st, size_t idx, const struct plait_df_instr *in,
		  struct plait_error **err);
int build_do_meta(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		  struct plait_error **err);
int build_do_workdir(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		     struct plait_error **err);

/* ------------------------------------------------------------ build.c */

/* The Dockerfile a build reads: -f's, else CONTEXT/Dockerfile (caller frees). */
char *build_dockerfile_path(const struct plait_build_opts *o);
/* Read and parse the Dockerfile, set the args, find the target stage and
 * mark the stages it needs: what both a build and the planner's query start
 * from. */
int build_prepare(struct builder *b, const char *dfpath, struct plait_buf *data, size_t *target_out,
		  struct plait_error **err);
void build_release(struct builder *b);

/* ------------------------------------------------------------ build_needs.c */

/* Mark the stages target needs: FROM <stage>, COPY/ADD --from=<stage>,
 * RUN --mount from=<stage>, their values expanded as the Dockerfile sets
 * the variables (ARG, ENV), transitively. For a stage whose base image was
 * resolved (st->base.have_cfg), also what its ONBUILD triggers name, with
 * the image's ENV in scope. Only the Dockerfile otherwise (the planner). */
void build_mark_needed(struct builder *b, size_t target);
/* Before the stage loop: resolve the base image of every needed stage that
 * starts from one and mark again what their triggers and ENV add, until
 * nothing new is needed. */
void build_resolve_bases(struct builder *b, size_t target);

/* Ownership and mode COPY/ADD give what they write. */
struct copy_attrs {
	bool chown; /* set owner to uid:gid; else keep the source's (keep_owner) or root */
	uid_t uid;
	gid_t gid;
	bool keep_owner; /* COPY --from keeps owners; the context's files become root's */
	bool chmod;
	mode_t mode;
	bool parents; /* COPY --parents: keep each source's path below dest */
	const struct plait_ignore *exclude; /* COPY --exclude patterns, or NULL */
};

/* Copy the sources in l (resolved in src) into the directory tree at root, to
 * dest (absolute inside root, already expanded and joined with WORKDIR).
 * dest_is_dir: the destination names a directory (trailing '/', several
 * sources, or a wildcard). Every path under root is resolved inside it, so
 * symlinks in the image cannot redirect writes outside. what names the step
 * for messages ("Dockerfile:7: COPY"). */
int build_copy_into(const char *root, struct plait_context *src, const struct plait_context_list *l,
		    const char *dest, bool dest_is_dir, const struct copy_attrs *a, const char *what,
		    const bool *skip_source, struct plait_error **err);
/* Extract the tar archive (plain, gzip, bzip2, xz or zstd) read from fd into
 * the directory dest inside root (ADD of a local archive); the directories
 * made for dest get a's owner when a->chown (ADD --chown), as buildah does. */
int build_extract_into(const char *root, int fd, const char *dest, const struct copy_attrs *a,
		       const char *what, size_t *devices_skipped, struct plait_error **err);
/* true when fd (read with pread from 0) holds a tar archive, compressed or not. */
bool build_is_archive(int fd);
/* Write the file dest inside root from fd (ADD of a URL), mode and owner from a,
 * its time mtime (the server's Last-Modified; -1: the time of writing). */
int build_write_fd_into(const char *root, const char *dest, int fd, int64_t mtime, const struct copy_attrs *a,
			const char *what, struct plait_error **err);
/* Write data as the file dest inside root (COPY <<EOF), creating parents. */
int build_write_file_into(const char *root, const char *dest, const char *data, size_t len,
			  const struct copy_attrs *a, const char *what, struct plait_error **err);
/* mkdir -p of an absolute path inside root (WORKDIR). */
/* Make the directory path inside root with its missing parents (mode 0755);
 * with owner (->chown set), the directories it makes get that owner. */
int build_mkdir_in_root(const char *root, const char *path, const struct copy_attrs *owner,
			struct plait_error **err);

#endif
