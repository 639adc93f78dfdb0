/* core/unpack.h - unpack an untrusted layer blob (tar, tar+gzip, tar+zstd)
 * into a directory.
 *
 * Contract:
 *  - nothing is written outside dir. Entry names are made relative (leading
 *    '/' and "./" dropped: an absolute path lands inside dir, as with docker);
 *    a ".." component is refused with an error naming the entry. Every parent
 *    is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) (or a
 *    component walk that does the same where openat2 is missing), so a symlink
 *    met on the way - from this layer or a lower one - is followed as if dir
 *    were "/" (the image's own view: "a -> /etc" then "a/passwd" writes
 *    dir/etc/passwd) and can never lead out. The last component is never
 *    followed: it is replaced, not written through. Hardlink targets resolve
 *    the same way, so a link to "/etc/passwd" links dir/etc/passwd or fails.
 *  - whiteouts: mode APPLY unpacks onto a directory holding the lower layers
 *    (".wh.x" removes x; ".wh..wh..opq" removes what the lower layers had in
 *    its directory but keeps what this layer put there); mode OVERLAY unpacks
 *    one layer into its own (empty) directory for an overlayfs lower dir
 *    (".wh.x" -> char device 0/0, opaque -> xattr trusted.overlay.opaque=y).
 *    Other ".wh..wh." names (aufs metadata) are skipped. The layer cannot set
 *    trusted.overlay.* / user.overlay.* xattrs itself (they are dropped).
 *  - an existing path is replaced unless both it and the entry are
 *    directories (the directory is kept, its metadata updated).
 *  - in a user namespace (core/userns.h) the opaque marker is user.overlay.opaque,
 *    character and block devices are left out (counted in devices_skipped),
 *    and --userns=single makes every owner 0:0.
 *  - owners (unless no_chown), modes (suid/sgid/sticky included), xattrs
 *    (security.selinux dropped), mtimes (directories last), devices and fifos
 *    are restored. Sockets are skipped.
 *  - streaming: the blob is read once; diff_id (sha256 of the uncompressed
 *    tar, trailing padding included) and digest (sha256 of the bytes read) are
 *    checked when given, at the end: on any error dir holds a partial result
 *    the caller must discard (unpack into a fresh directory, rename after). */
#ifndef PLAIT_UNPACK_H
#define PLAIT_UNPACK_H

#include <sys/types.h>

#include "digest.h"
#include "store.h"

enum plait_unpack_mode {
	PLAIT_UNPACK_APPLY = 0,
	PLAIT_UNPACK_OVERLAY,
	/* An ordinary archive (ADD of a local tar): ".wh." names are files like
	 * any other, nothing is deleted. Containment rules are the same. */
	PLAIT_UNPACK_PLAIN,
};

struct plait_unpack_options {
	enum plait_unpack_mode mode;
	const char *media_type; /* for messages: the compression is detected from the
				 * magic bytes, as docker does (registries mislabel) */
	const char *diff_id;	/* NULL: not verified */
	const char *digest;	/* NULL: not verified (the store checked it already) */
	bool no_chown;		/* keep the unpacking user as owner */
	/* In a user namespace (rootless) character and block devices cannot be
	 * made: they are left out and counted here (when not NULL). */
	size_t *devices_skipped;
};

/* Reads up to len bytes into buf: bytes read, 0 at the end, or -errno. */
typedef ssize_t (*plait_unpack_read_fn)(void *ud, void *buf, size_t len);

/* Unpack the blob read from fn into dir (which must exist). diff_id_out (may
 * be NULL) receives the diff_id computed. o NULL: APPLY, no checks. */
int plait_unpack_stream(plait_unpack_read_fn fn, void *ud, const char *dir,
			const struct plait_unpack_options *o,
			char diff_id_out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err);
/* The same, reading fd from its current offset to its end. */
int plait_unpack_fd(int fd, const char *dir, const struct plait_unpack_options *o,
		    char diff_id_out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err);
/* The same, for the blob digest of s (o->digest is ignored: the store names blobs
 * by digest). */
int plait_unpack_blob(struct plait_store *s, const char *digest, const char *dir,
		      const struct plait_unpack_options *o,
		      char diff_id_out[PLAIT_SHA256_DIGEST_SIZE], struct plait_error **err);

#endif
