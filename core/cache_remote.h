/* core/cache_remote.h - the build cache shared through a registry or a
 * directory: `--cache-to` / `--cache-from` (buildx's spelling), the cache
 * artifact, its import before a build and its merged export after one.
 *
 * The artifact (format 1) at REF (a registry tag, or a tag in an OCI layout):
 *   an OCI image index, artifactType application/vnd.plait.cache.v1+json,
 *   annotation dev.plait.cache.format=1, one entry per *part*:
 *     an OCI image manifest, artifactType as above, annotation
 *     dev.plait.cache.part=<part name> (a job: "target/variant/platform"),
 *     config: the empty descriptor (application/vnd.oci.empty.v1+json),
 *     layers[0]: the step records (application/vnd.plait.cache.steps.v1+json):
 *       {"format":1,"part":NAME,"steps":[{"key":…,"created":…,"empty":true} |
 *        {"key":…,"created":…,"mediaType":…,"digest":…,"size":…,"diffID":…}]}
 *     layers[1…]: every layer blob a record names: the images' own blobs, so
 *       a registry keeps them, skopeo copies them and pushes mount them.
 * A step's config change is not stored: every config change is computed
 * from the Dockerfile, the record keeps what is not (its `created` time).
 *
 * Merge, never last-writer-wins (plait_cache_export()): each writer pushes
 * its parts by digest (blobs, manifests), then reads the index at REF,
 * replaces the entries of *its* parts (same part name) and keeps every other
 * entry, puts the result by digest, moves the tag, waits a settle time and
 * reads REF again: if any of its parts is missing (a concurrent writer read
 * the index before this one's tag moved and wrote after), it merges again,
 * up to PLAIT_CACHE_MERGE_TRIES times.
 *
 * A cache mount's part (--cache-to ...,mounts=ID|all) is named "mount/ID":
 * its records blob has no steps and a "mount" object ({"id", "created",
 * "mediaType", "digest", "size", "diffID"}), layers[1] the directory's tree.
 *
 * Import (plait_cache_import_*): reads every --cache-from in order, the
 * records only; the first source naming a key wins. Layer blobs stay where
 * they are until a build needs their files (plait_cache_import_fetch) or a
 * push needs them at a destination that lacks them and cannot mount them.
 * An unreachable ref, a foreign or newer artifact, or a record whose bytes do
 * not match its digest is a warning (through warn), never an error.
 *
 * Thread safety: an import is filled before the jobs start; lookups are then
 * read-only and fetches are serialised by its own lock. */
#ifndef PLAIT_CACHE_REMOTE_H
#define PLAIT_CACHE_REMOTE_H

#include <pthread.h>

#include "cache.h"
#include "endpoint.h"

#define PLAIT_CACHE_ARTIFACT_TYPE "application/vnd.plait.cache.v1+json"
#define PLAIT_CACHE_STEPS_MEDIA_TYPE "application/vnd.plait.cache.steps.v1+json"
#define PLAIT_CACHE_ANNOTATION_PART "dev.plait.cache.part"
#define PLAIT_CACHE_ANNOTATION_FORMAT "dev.plait.cache.format"
#define PLAIT_CACHE_ANNOTATION_SIZE "dev.plait.cache.size"       /* a part's bytes (its blobs) */
#define PLAIT_CACHE_ANNOTATION_WRITTEN "dev.plait.cache.written" /* RFC 3339, when last exported */
#define PLAIT_CACHE_FORMAT 1
#define PLAIT_CACHE_MERGE_TRIES 6
#define PLAIT_CACHE_LOCAL_TAG "cache"

enum plait_cache_spec_type { PLAIT_CACHE_REGISTRY, PLAIT_CACHE_LOCAL };

/* One --cache-from or --cache-to value. */
struct plait_cache_spec {
	char *text; /* as written, for messages */
	enum plait_cache_spec_type type;
	char *endpoint; /* registry: "REG/REPO:TAG"; local: "oci:DIR:TAG" */
	char *tag;	/* the tag at the endpoint */
	bool mode_max;	/* --cache-to: mode=max (default min) */
	bool ignore_error;
	/* --cache-to mounts=ID[,ID...]|all: RUN --mount=type=cache contents to export */
	char **mounts;
	bool mounts_all;
	int64_t max_size; /* --cache-to max-size=SIZE; 0: no bound */
};
void plait_cache_spec_release(struct plait_cache_spec *s);
/* Parse "type=registry,ref=REG/REPO:TAG[,mode=min|max][,ignore-error=true]",
 * "type=local,dest=DIR" (to) / "type=local,src=DIR" (from), or a bare
 * "REG/REPO:TAG" (buildx's short form for type=registry); --cache-to also
 * takes mounts=ID[,ID...]|all (the words after mounts= up to the next
 * KEY=VALUE are its IDs). what names the
 * option in errors ("--cache-to", or bake's "cache-to"): -PLAIT_E_USAGE. */
int plait_cache_spec_parse(const char *text, bool to, const char *what, struct plait_cache_spec *out,
			   struct plait_error **err);

/* One step record: a step's key and what it made (core/cache.h). */
struct plait_cache_record {
	char key[PLAIT_SHA256_DIGEST_SIZE];
	struct plait_cache_step step;
};
void plait_cache_records_free(struct plait_cache_record *v, size_t n);
/* The records blob of one part (deterministic: the same records give the same bytes). */
void plait_cache_records_serialise(const char *part, const struct plait_cache_record *v, size_t n,
				   struct plait_buf *out);
/* Parse a records blob; -PLAIT_E_INVALID for a bad one, -PLAIT_E_USAGE for a
 * newer format (the message says which). Records that are not valid are
 * dropped. */
int plait_cache_records_parse(const char *data, size_t len, char **part, struct plait_cache_record **v,
			      size_t *n, struct plait_error **err);

/* The shared index with parts (descriptors of part manifests carrying the
 * part annotation) merged into old (old NULL: none yet). A foreign or newer
 * document at old is replaced, and *note (caller frees) says so. With
 * max_size > 0, other writers' parts go, least recently written first, while
 * the parts' sizes add up to more (*dropped says how many; parts is kept whole). */
int plait_cache_index_merge(const void *old, size_t old_len, const struct plait_descriptor *parts,
			    size_t n_parts, int64_t max_size, struct plait_buf *out, char **note, size_t *dropped,
			    struct plait_error **err);
/* true when every one of parts (by digest) is an entry of the index data. */
bool plait_cache_index_has(const void *data, size_t len, const struct plait_descriptor *parts, size_t n_parts);

/* ------------------------------------------------------------ import */

typedef void (*plait_cache_warn_fn)(void *ctx, const char *msg);

struct plait_cache_import;
struct plait_cache_import *plait_cache_import_new(void);
void plait_cache_import_free(struct plait_cache_import *imp);
/* Read the artifact at ep's tag (ep is taken, kept for lazy fetches). Never
 * fails: what cannot be read is a warning naming `name` and the cause. */
void plait_cache_import_add(struct plait_cache_import *imp, struct plait_endpoint *ep, const char *name,
			    plait_cache_warn_fn warn, void *ctx);
size_t plait_cache_import_count(const struct plait_cache_import *imp);
/* 1 and *out (a copy) when some source has a record for key, else 0. NULL imp: 0. */
int plait_cache_import_lookup(const struct plait_cache_import *imp, const char *key, struct plait_cache_step *out);
/* Make blob d present in store, fetched from a source that listed it. 1
 * fetched, 0 already there or no source has it, <0 failed. */
int plait_cache_import_fetch(struct plait_cache_import *imp, struct plait_store *store,
			     const struct plait_descriptor *d, struct plait_error **err);
/* Mount d at dst from a source on dst's registry: 1 mounted, 0 not possible. */
int plait_cache_import_mount(struct plait_cache_import *imp, struct plait_endpoint *dst,
			     const struct plait_descriptor *d, struct plait_error **err);
/* Restore cache mount id into dir (which must not exist yet) from a source
 * that has it: its blob fetched into store, unpacked below tmp_parent (a
 * directory on dir's file system) and renamed to dir. 1 restored, 0 no
 * source has it (or dir appeared meanwhile), <0 failed. */
int plait_cache_import_restore_mount(struct plait_cache_import *imp, const char *id, struct plait_store *store,
				     const char *dir, const char *tmp_parent, struct plait_error **err);
/* Blobs fetched so far (for tests and `plait cache du`-like reporting). */
size_t plait_cache_import_fetched(const struct plait_cache_import *imp);

/* Fetch blob d from ep into store (verified): 1 done, <0 failed. */
int plait_cache_fetch_blob(struct plait_endpoint *ep, struct plait_store *store, const struct plait_descriptor *d,
			   struct plait_error **err);

/* Make blob d available for a copy to dst: present at dst (nothing to do),
 * mounted there from one of mount_from (registry endpoints on dst's host) or
 * from an import source, present in store (the copy uploads it), or fetched
 * into store from an import source or from one of mount_from that has it.
 * -PLAIT_E_NOT_FOUND when none works. */
int plait_cache_ensure_blob(struct plait_endpoint *dst, const struct plait_descriptor *d, struct plait_store *store,
			    struct plait_endpoint *const *mount_from, size_t n_mount_from,
			    struct plait_cache_import *imp, struct plait_error **err);

/* ------------------------------------------------------------ export */

/* One part: a name and the keys of the steps it holds, in build order. */
struct plait_cache_part {
	const char *name;
	const char *const *keys;
	size_t n_keys;
	/* A cache mount's part instead (name "mount/ID"): the directory's tree
	 * as one blob, restored by --cache-from before a RUN that mounts ID. */
	const char *mount_id, *mount_dir;
};

struct plait_cache_export_stats {
	size_t parts, records, merges; /* merges: index writes it took */
	size_t dropped;		       /* other parts dropped for max_size */
};

/* Write parts to dst (at tag): records read from the cache directory
 * cache_dir, blobs from store (or mounted/fetched as plait_cache_ensure_blob
 * does), then the merge protocol above. settle_ms: 0 = the default (a second
 * or three times the slowest read-merge-write seen, whichever is more). */
int plait_cache_export(struct plait_endpoint *dst, const char *tag, const char *cache_dir, struct plait_store *store,
		       const struct plait_cache_part *parts, size_t n_parts, struct plait_endpoint *const *mount_from,
		       size_t n_mount_from, struct plait_cache_import *imp, int64_t max_size, long settle_ms,
		       struct plait_cache_export_stats *stats, plait_cache_warn_fn warn, void *ctx,
		       struct plait_error **err);

#endif
