/* core/layer.h - turn a file system change into a deterministic OCI layer blob.
 *
 * Contract:
 *  - one entry point, plait_layer_write(), takes a source of three kinds:
 *      TREE     every entry under dir (a scratch stage, a COPY --link result);
 *      OVERLAY  an overlayfs upper directory (the change of a RUN step):
 *               whiteouts (char device 0/0, or a file with the xattr
 *               trusted/user.overlay.whiteout) become ".wh.<name>", a directory
 *               with trusted/user.overlay.opaque=y gets ".wh..wh..opq" right
 *               after it. Uppers written with metacopy or redirect_dir are
 *               refused (they need the lower layers to be read);
 *      CHANGES  an explicit list of changes relative to dir (the copying
 *               snapshotter): the parent directories of every added path are
 *               added too (with their metadata in dir); a path both added and
 *               deleted is added.
 *  - the tar is deterministic: entries in byte order compared component by
 *    component (a depth-first walk with sorted directories; parents before
 *    children), PAX format without atime/ctime, numeric uid/gid with empty
 *    uname/gname, mtime in whole seconds (clamped to source_date_epoch when
 *    clamp_mtime: newer files get the epoch, as BuildKit's rewrite-timestamp),
 *    directories named with a trailing '/', xattrs sorted by name
 *    (security.capability kept; trusted.overlay.*, user.overlay.* and
 *    security.selinux dropped), hardlinks within the layer as tar hardlinks to
 *    the first path in that order, symlinks, devices and fifos; sockets are
 *    skipped. No root ("./") entry. Whiteouts are empty regular files, mode 0,
 *    owner 0:0, mtime the epoch when clamping and 0 otherwise.
 *  - one pass and streaming: tar -> sha256 (diff_id) -> compressor -> blob
 *    writer of the store (which hashes the digest). Memory holds the entry
 *    names and a few compression blocks, never a file's data. gzip is
 *    core/gzip's block-parallel libdeflate stream, level 6 unless level is set,
 *    header without name or mtime and OS=255 (unknown): its bytes depend on
 *    the input, the level and the libdeflate version only, not on the host or
 *    the thread count; zstd is level 3 with a checksum and one thread. Two
 *    builds of the same tree give the same digest on hosts with the same
 *    libdeflate/zstd; the diff_id is the same everywhere.
 *  - the source must not change while it is read (a file that shrinks is an
 *    error naming it). */
#ifndef PLAIT_LAYER_H
#define PLAIT_LAYER_H

#include <stdatomic.h>
#include "digest.h"
#include "store.h"

enum plait_layer_compression {
	PLAIT_LAYER_GZIP = 0,
	PLAIT_LAYER_ZSTD,
	PLAIT_LAYER_UNCOMPRESSED,
};

enum plait_layer_source_kind {
	PLAIT_LAYER_SRC_TREE = 0,
	PLAIT_LAYER_SRC_OVERLAY,
	PLAIT_LAYER_SRC_CHANGES,
};

enum plait_layer_change_kind {
	PLAIT_LAYER_CHANGE_ADD = 0,  /* the path itself (a directory without its contents) */
	PLAIT_LAYER_CHANGE_ADD_TREE, /* the path and everything under it */
	PLAIT_LAYER_CHANGE_DELETE,   /* ".wh.<name>" */
	PLAIT_LAYER_CHANGE_OPAQUE,   /* the directory and ".wh..wh..opq": lower contents hidden */
};

struct plait_layer_change {
	enum plait_layer_change_kind kind;
	/* relative to the source dir; leading '/' and "./" are ignored; no ".." */
	const char *path;
};

struct plait_layer_source {
	enum plait_layer_source_kind kind;
	const char *dir;
	const struct plait_layer_change *changes; /* CHANGES only */
	size_t n_changes;
	/* OVERLAY only, optional: the layer directories under the upper, bottom
	 * first. With them, a directory the upper holds only because overlayfs
	 * copied it up (nothing below it changed; mode, owner, time and xattrs
	 * those of the lower's), e.g. /etc for a RUN's resolv.conf mount point,
	 * is left out, as BuildKit's differ leaves it out. */
	const char *const *lowers;
	size_t n_lowers;
};

struct plait_layer_options {
	enum plait_layer_compression compression;
	int level;		   /* 0: the default (gzip 6, zstd 3) */
	unsigned threads;	   /* gzip threads; 0: the online CPUs (the bytes do not depend on it) */
	bool clamp_mtime;	   /* SOURCE_DATE_EPOCH was given */
	int64_t source_date_epoch; /* seconds, used when clamp_mtime */
	/* Called on the writing thread with the blob's writer before its first
	 * byte: a caller can read the blob as it is written (an upload,
	 * plait_blob_writer_source). NULL: none. */
	void (*on_writer)(void *ud, struct plait_blob_writer *w);
	void *on_writer_ud;
	/* Set (Ctrl-C, the job cancelled): the write stops with
	 * -PLAIT_E_CANCELLED, nothing stored. NULL: runs to the end. */
	const atomic_int *cancel;
};

struct plait_layer {
	char diff_id[PLAIT_SHA256_DIGEST_SIZE]; /* sha256 of the tar */
	char digest[PLAIT_SHA256_DIGEST_SIZE];	/* sha256 of the blob */
	int64_t size;				/* bytes in the blob */
	/* static: application/vnd.oci.image.layer.v1.tar[+gzip|+zstd] */
	const char *media_type;
	size_t n_entries; /* tar entries; 0: an empty change */
};

/* Write the layer for src into s (options NULL: gzip, no clamping). */
int plait_layer_write(struct plait_store *s, const struct plait_layer_source *src,
		      const struct plait_layer_options *o, struct plait_layer *out,
		      struct plait_error **err);

/* Shorthands for the three source kinds. */
int plait_layer_from_tree(struct plait_store *s, const char *dir,
			  const struct plait_layer_options *o, struct plait_layer *out,
			  struct plait_error **err);
/* The overlay upper over lowers (bottom first; NULL/0: none known). */
int plait_layer_from_overlay_over(struct plait_store *s, const char *upper_dir, const char *const *lowers,
				  size_t n_lowers, const struct plait_layer_options *o, struct plait_layer *out,
				  struct plait_error **err);
int plait_layer_from_overlay(struct plait_store *s, const char *upper_dir,
			     const struct plait_layer_options *o, struct plait_layer *out,
			     struct plait_error **err);
int plait_layer_from_changes(struct plait_store *s, const char *root,
			     const struct plait_layer_change *changes, size_t n_changes,
			     const struct plait_layer_options *o, struct plait_layer *out,
			     struct plait_error **err);

/* The media type string for a compression. */
const char *plait_layer_media_type(enum plait_layer_compression c);

#endif
