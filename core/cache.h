/* core/cache.h - the build cache directory: its layout, its lock and its
 * step records. The one place that knows where things live in it.
 *
 * Layout of <cache>:
 *   store/           an OCI layout (core/store.h): layer blobs, configs, manifests
 *   layers/<hex>/    unpacked layers, by diff_id, in overlay form
 *   steps/<hex>      step records: a step's cache key -> the layer blob it made
 *   mounts/<hex>/    RUN --mount=type=cache directories, by the mount's id
 *   work/            the per-step and per-cache-mount lock files, and one
 *     run-XXXXXX/    directory per open cache (one per build job): its
 *                    snapshots and temporary files, flock'ed while it lives
 *   lock             builds hold flock(LOCK_SH); `plait cache prune` LOCK_EX
 *   context-digests  the build context's file digest memo (core/context.h)
 *
 * Modes: <cache>, layers/, steps/, mounts/ and work/ are 0700 whatever the
 * umask (layers/ holds image trees with their setuid files and devices,
 * mounts/ and work/ what RUN steps wrote). plait_cache_open() tightens looser
 * ones it may chmod and fails, naming the directory and the fix, on one it may
 * not. store/ keeps its own modes: only compressed blobs and JSON live there,
 * nothing runnable, and it is reached only through the 0700 root.
 *
 * Contract:
 *  - plait_cache_open() creates what is missing, takes the shared lock and,
 *    when it could have had the lock alone, first clears work/ of what a
 *    crashed build left (mounted snapshots included); in any case it removes
 *    the run directories and layers/.tmp-* unpack directories of builds that
 *    are gone (killed: their flock is free; core/fs.h), so a killed build's
 *    leftovers go with the next build even while others use the cache;
 *  - a step record is written to a temporary name and renamed: a reader sees
 *    a whole record or none. plait_cache_step_read() says whether a file is a
 *    valid record; plait_cache_step_lookup() is a hit only for a valid record
 *    whose blob is in the store (else it was pruned: a miss), and touches the
 *    record (prune is LRU on mtime);
 *  - the step lock serialises builds (threads or processes) that reach the
 *    same step: the holder unlinks the lock file before it unlocks, so a
 *    waiter that gets a stale file tries again; waits poll the cancel flag and
 *    end with -PLAIT_E_CANCELLED.
 * du and prune of this directory: core/cache_prune.h. */
#ifndef PLAIT_CACHE_H
#define PLAIT_CACHE_H

#include <stdatomic.h>

#include "fs.h"
#include "oci.h"
#include "store.h"

struct plait_cache {
	char *dir;
	char *store_dir, *layers_dir, *steps_dir, *mounts_dir, *work_dir;
	char *run_dir; /* work/run-XXXXXX of this open: where snapshots and temporaries go */
	struct plait_tmpdir run;
	struct plait_store *store;
	int lock_fd; /* flock(LOCK_SH) held while open */
};

/* dir NULL: plait_cache_default_dir(). */
int plait_cache_open(const char *dir, struct plait_cache **out, struct plait_error **err);
void plait_cache_free(struct plait_cache *c);
/* Hand the shared lock over (the caller closes it); the cache keeps none. */
int plait_cache_take_lock(struct plait_cache *c);

/* dir (which exists) becomes 0700: 0 when it is (or was made) 0700 or is
 * tighter, else an error naming it and the fix (its owner's chmod). */
int plait_cache_make_private(const char *dir, struct plait_error **err);

/* $XDG_CACHE_HOME/plait or ~/.cache/plait. Caller frees. */
char *plait_cache_default_dir(void);
/* "<dir>/store". Caller frees. */
char *plait_cache_store_dir(const char *dir);

/* layers/<diff_id hex>: where a layer is unpacked. Caller frees. */
char *plait_cache_layer_dir(const struct plait_cache *c, const char *diff_id);
/* mounts/<hex of sha256(id)>: the directory of RUN --mount=type=cache id,
 * made when missing (*fresh: made by this call). */
int plait_cache_mount_dir(struct plait_cache *c, const char *id, char **path, bool *fresh,
			  struct plait_error **err);
/* <cache_dir>/mounts/<hex of sha256(id)>, made or not. Caller frees. */
char *plait_cache_mount_path(const char *cache_dir, const char *id);
/* work/mount-<hex of sha256(id)>.lock: what sharing=locked|private flock. */
char *plait_cache_mount_lock_path(const struct plait_cache *c, const char *id);

/* What a step made: a layer, or nothing (an empty history entry). */
struct plait_cache_step {
	bool empty;
	char *created; /* RFC 3339, when the step ran */
	struct plait_descriptor layer; /* the blob (not empty) */
	char diff_id[PLAIT_SHA256_DIGEST_SIZE];
	char *source; /* the --cache-from it was imported from, or NULL (made here) */
	/* An alias record (plait_cache_alias_write): the key whose record this
	 * repeats, "" for an ordinary one. Exported and imported with it. */
	char alias_of[PLAIT_SHA256_DIGEST_SIZE];
};
void plait_cache_step_release(struct plait_cache_step *s);

/* A record as JSON (the file's form, and the cache artifact's, core/cache_remote.h). */
struct json_t;
struct json_t *plait_cache_step_to_json(const struct plait_cache_step *s);
/* 1 and *out filled when o is a valid record, else 0 (*out zeroed). */
int plait_cache_step_from_json(const struct json_t *o, struct plait_cache_step *out);
/* <cache_dir>/steps/<hex of key>. Caller frees. */
char *plait_cache_step_path(const char *cache_dir, const char *key);

/* Record what the step with cache key `key` (a sha256 digest) made. */
int plait_cache_step_write(struct plait_cache *c, const char *key, const struct plait_cache_step *s);
/* A second key for the step recorded under key: an alias record (the step's
 * record plus "aliasOf": key, so prune sees its blob) under alias. A step
 * whose key needs expensive inputs (a COPY --from digests the files it
 * copies) can then be found from cheap ones. 1 written, 0 when key has no
 * record, <0 when it cannot be written. */
int plait_cache_alias_write(struct plait_cache *c, const char *alias, const char *key);
/* 1 and key filled when alias names an alias record, else 0. */
int plait_cache_alias_lookup(struct plait_cache *c, const char *alias, char key[PLAIT_SHA256_DIGEST_SIZE]);
/* 1 and *out filled when the file at path is a valid step record, else 0. */
int plait_cache_step_read(const char *path, struct plait_cache_step *out);
/* 1 and *out filled on a hit, 0 on a miss (no record, a bad one, or its blob
 * was pruned). */
int plait_cache_step_lookup(struct plait_cache *c, const char *key, struct plait_cache_step *out);

/* The lock of one step, held from lookup to record. */
struct plait_cache_step_lock {
	int fd; /* -1: none held */
	char *path;
};
#define PLAIT_CACHE_STEP_LOCK_INIT { .fd = -1, .path = NULL }
/* Wait for and take key's lock (releases what l held first). */
int plait_cache_step_lock(struct plait_cache *c, const char *key, const atomic_int *cancel,
			  struct plait_cache_step_lock *l, struct plait_error **err);
/* Unlink and unlock; a no-op when none is held. */
void plait_cache_step_unlock(struct plait_cache_step_lock *l);

/* An exclusive flock on fd: 1 when taken, 0 when busy and !wait; with wait,
 * the wait polls (a signal handler only sets the cancel flag) and ends with
 * -PLAIT_E_CANCELLED when *cancel is set. */
int plait_cache_lock_exclusive(int fd, bool wait, const atomic_int *cancel, struct plait_error **err);

#endif
