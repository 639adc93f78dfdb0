/* core/context.h - the build context: a directory the Dockerfile's COPY and
 * ADD read from, filtered by .dockerignore as BuildKit filters what it
 * transfers.
 *
 * Contract:
 *  - every path handed out is relative to the context root, '/'-separated,
 *    cleaned, without "./" or a leading '/'; the root itself is "".
 *  - nothing outside the root is ever opened: files are reached by opening one
 *    component at a time with O_NOFOLLOW from the root's descriptor (or by
 *    openat2 with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS where the kernel has
 *    it). A symlink met while resolving a COPY source is followed as if the
 *    context were '/': absolute targets and ".." stop at the root (BuildKit's
 *    scoped resolution). Symlinks found while walking a directory are listed
 *    as symlinks and never followed.
 *  - a source "../x" (one that climbs above the root after cleaning) is
 *    refused; "/x" means "x".
 *  - what is excluded by the ignore rules does not exist for COPY: an
 *    excluded directory is entered only when an exception may re-include
 *    something below it, and is listed only when something below it is.
 *  - lists are deterministic: a directory's entries are sorted by name
 *    (bytewise) and each directory comes before what is in it.
 *  - the content digest (plait_context_digest) is SHA-256 over, in list
 *    order: the line "plait-context-v1\n"; per source "source\0<name>\0"; per
 *    entry "<rel>\0<type>\0<mode & 07777 in octal>\0<uid>\0<gid>\0<size>\0
 *    <symlink target>\0<content digest>\0<rdev>\0" where type is one of
 *    f d l c b p s, size and content digest ("sha256:...", of the bytes read
 *    in one streaming pass) are for regular files only (0 and "" otherwise),
 *    and rdev only for devices (0 otherwise). mtimes, atimes, inode numbers,
 *    xattrs and the context's own location are NOT in it. A file that changes
 *    size or identity while being read fails the digest. */
#ifndef PLAIT_CONTEXT_H
#define PLAIT_CONTEXT_H

#include <sys/types.h>

#include "digest.h"
#include "dockerignore.h"

struct plait_context;

struct plait_context_entry {
	char *path;	    /* from the context root, symlinks in it resolved ("" = root) */
	const char *rel;    /* points into path: below the source it came from ("" for the source itself) */
	mode_t mode;	    /* st_mode, type bits included */
	uid_t uid;
	gid_t gid;
	int64_t size;	    /* st_size */
	int64_t mtime_sec;  /* for callers that keep mtimes; not in the digest */
	long mtime_nsec;
	int64_t ctime_sec;  /* for the digest memo only */
	long ctime_nsec;
	dev_t dev, rdev;
	ino_t ino;
	nlink_t nlink;
	char *link_target;  /* symlinks only, else NULL */
};

/* One COPY source after wildcard expansion. Its entries are
 * entries[first .. first + count): the source itself (what a symlink source
 * points to), then, for a directory, everything below it. */
struct plait_context_source {
	char *name; /* as named, cleaned and expanded: "src/link.txt" (dest names come from it) */
	size_t first, count;
};

struct plait_context_list {
	struct plait_context_entry *entries;
	size_t n_entries, alloc_entries;
	struct plait_context_source *sources;
	size_t n_sources, alloc_sources;
};
#define PLAIT_CONTEXT_LIST_INIT { 0 }
void plait_context_list_release(struct plait_context_list *l);
/* Remember file digests across builds in file (a cache: a missing or
 * damaged file only costs reading the files again). A file is read again
 * unless its device, inode, size, mtime and ctime are what they were; files
 * changed within the last second are not remembered. */
void plait_context_set_memo(struct plait_context *ctx, const char *file);
/* Write what this context learnt back to the memo file (atomically; merged
 * with what other builds wrote meanwhile). Failures are ignored. */
void plait_context_save_memo(struct plait_context *ctx);

/* Drop the entries below a source (never the source itself) whose path
 * relative to it matches ig: COPY --exclude, applied before the list is
 * digested so excluded files are not part of the cache key. */
void plait_context_list_exclude(struct plait_context_list *l, const struct plait_ignore *ig);

/* Open dir as a build context with the ignore file plait_ignore_load() picks
 * for dockerfile (may be NULL). Errors: -PLAIT_E_NOT_FOUND, -PLAIT_E_IO,
 * -PLAIT_E_INVALID (a bad ignore file). */
int plait_context_open(const char *dir, const char *dockerfile, struct plait_context **out,
		       struct plait_error **err);
/* The same with given rules; ig (may be NULL: no rules) is taken over, also on failure. */
int plait_context_open_with_ignore(const char *dir, struct plait_ignore *ig, struct plait_context **out,
				   struct plait_error **err);
void plait_context_free(struct plait_context *ctx);
static inline void plait_context_freep(struct plait_context **ctx)
{
	plait_context_free(*ctx);
}
#define _cleanup_context_ _cleanup_(plait_context_freep)
const char *plait_context_path(const struct plait_context *ctx);
/* The root directory's descriptor (O_RDONLY|O_DIRECTORY), owned by ctx. */
int plait_context_dirfd(const struct plait_context *ctx);
const struct plait_ignore *plait_context_ignore(const struct plait_context *ctx);

/* Append every entry that is not ignored (the whole context, "COPY . ..") as one source ".". */
int plait_context_walk(struct plait_context *ctx, struct plait_context_list *out, struct plait_error **err);

/* Resolve one COPY/ADD source and append it (or, with wildcards, each match,
 * in sorted order) to out. instruction names it in messages (NULL: "COPY").
 * Wildcards use Go's filepath.Match per path component; a wildcard that
 * matches nothing appends nothing and succeeds (BuildKit allows empty
 * wildcards for COPY: "COPY requirements.txt extra* ./"). Errors:
 *  -PLAIT_E_NOT_FOUND "COPY source 'src/app.py' not found in the build context"
 *  -PLAIT_E_NOT_FOUND "COPY source 'src/app.py' is excluded by .dockerignore (line 3: '*.py')"
 *  -PLAIT_E_USAGE     "COPY source '../x' is outside the build context: ..."
 *  -PLAIT_E_IO        reading the context failed. */
int plait_context_resolve(struct plait_context *ctx, const char *src, const char *instruction,
			  struct plait_context_list *out, struct plait_error **err);

/* Open relpath inside the context with open(2) flags (O_CLOEXEC is added).
 * follow: symlinks (the last one included) are followed, staying inside the
 * root; !follow: any symlink on the way fails with ELOOP. *fd_out is set on
 * success. Errors carry the errno (-PLAIT_E_NOT_FOUND for ENOENT). */
int plait_context_openat(struct plait_context *ctx, const char *relpath, int flags, bool follow,
			 int *fd_out, struct plait_error **err);
/* Open a listed regular file for reading, checking that it is still the same
 * file (device, inode, size) as when listed. */
int plait_context_open_entry(struct plait_context *ctx, const struct plait_context_entry *e, int *fd_out,
			     struct plait_error **err);

/* The type letter of the digest's contract: f d l c b p s. */
char plait_context_type_char(mode_t m);
/* The content digest of the listed regular file e: the memo's when it knows
 * the file as it is, else read (a file that changed while read fails). */
int plait_context_entry_digest(struct plait_context *ctx, const struct plait_context_entry *e,
			       char out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err);
/* The content digest of a list (what goes in: see the contract above). */
int plait_context_digest(struct plait_context *ctx, const struct plait_context_list *l,
			 char out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err);

#endif
