/* core/cache_prune.h - what the build cache directory holds (du), and
 * pruning it. The directory's layout, lock and step records: core/cache.h
 * (step records are read here with its reader, so "a record the build would
 * not use" means one thing).
 *
 * Contract:
 *  - sizes are apparent sizes of the files (st_size of everything that is not
 *    a directory), a hard-linked inode counted once per tree; trees are never
 *    left through a symlink or into another mount;
 *  - "temporary" is whatever no build will use again: temp files and dirs of
 *    builds that died, work/ leftovers, names plait does not make;
 *  - a missing cache directory is empty, never an error, and is not created;
 *  - prune takes flock(LOCK_EX | LOCK_NB) on <cache>/lock and fails with
 *    -PLAIT_E_RETRYABLE while a build holds it. It removes temporary entries
 *    and step records whose blob is gone first, then entries least recently
 *    used first. A layer is removed as one unit: the step records that name
 *    it, every manifest that lists it, its blob(s) and its unpacked dir, so a
 *    record never names a missing blob and no manifest lists a missing layer.
 *    index.json entries whose manifest was removed are dropped;
 *  - "last used" of a unit is the newest of: the step records' mtime (written
 *    when the step ran; touched on a hit), the blobs' mtime
 *    (written or pulled) and the layer dir's mtime (made; touched on use if
 *    core/build.c does). atime is not used: relatime moves it at most daily
 *    and du itself would move it. A cache mount's is the newest mtime in its
 *    tree; a temporary entry's likewise;
 *  - prune never removes the cache directory, the lock file, the five folders
 *    plait makes in it, store/oci-layout, or anything outside those folders. */
#ifndef PLAIT_CACHE_PRUNE_H
#define PLAIT_CACHE_PRUNE_H

#include "error.h"

#include <stdint.h>

enum plait_cache_kind {
	PLAIT_CACHE_STORE = 0, /* entries: blobs; bytes: all of store/ but temp files */
	PLAIT_CACHE_LAYERS,    /* unpacked layer dirs */
	PLAIT_CACHE_STEPS,     /* step records */
	PLAIT_CACHE_MOUNTS,    /* RUN --mount=type=cache dirs */
	PLAIT_CACHE_TEMP,      /* leftovers (see the contract) */
	PLAIT_CACHE_N_KINDS,
};
/* "store", "layers", "steps", "mounts", "temporary" */
const char *plait_cache_kind_name(enum plait_cache_kind k);

struct plait_cache_count {
	int64_t entries;
	int64_t bytes;
};

struct plait_cache_usage {
	struct plait_cache_count kind[PLAIT_CACHE_N_KINDS];
	struct plait_cache_count total;
	/* step records a --cache-from brought (counted in steps too) */
	struct plait_cache_count imported;
};

/* What dir holds, per kind. */
int plait_cache_usage(const char *dir, struct plait_cache_usage *out, struct plait_error **err);

struct plait_cache_prune_opts {
	bool all;           /* remove every entry (keep_bytes is ignored) */
	int64_t keep_bytes; /* else: remove LRU units until the total is <= this */
	bool dry_run;       /* only say what would go */
};

struct plait_cache_prune_result {
	struct plait_cache_usage before;
	struct plait_cache_usage freed; /* what was (dry_run: would be) removed */
	struct plait_cache_usage after; /* before - freed */
};

int plait_cache_prune(const char *dir, const struct plait_cache_prune_opts *o,
		      struct plait_cache_prune_result *out, struct plait_error **err);

#endif
