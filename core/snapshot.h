/* core/snapshot.h - a writable root file system for one build step, made from
 * unpacked layer directories, and the change the step made to it.
 *
 * Contract:
 *  - lowers are unpacked layer directories, BOTTOM FIRST (lowers[0] is the base
 *    image's first layer). They use overlayfs conventions for deletions: a
 *    whiteout is a character device 0/0, an opaque directory carries the xattr
 *    trusted.overlay.opaque="y" (user.overlay.opaque="y" in a user namespace:
 *    rootless, core/userns.h). Lowers are never modified.
 *  - OVERLAY mode mounts overlayfs at <tmp>/root with a fresh <tmp>/upper; after
 *    the step the upper directory IS the change (whiteouts and opaque dirs in
 *    overlay form). Mount options: index=off, redirect_dir=off, metacopy=off,
 *    so the upper never holds redirects or metadata-only copies that a layer
 *    writer would have to understand. In a user namespace: userxattr, with
 *    redirect_dir=nofollow (userxattr refuses "off"; nofollow neither makes
 *    nor follows redirects). And volatile where the kernel has it (5.10):
 *    the overlay syncs nothing of its upper, neither a step's fsync() nor
 *    the syncfs() of the upper's file system that unmounting would do; a
 *    caller that keeps the upper (plait_snapshot_take_upper) syncs it
 *    itself (plait_syncfs) before it relies on it.
 *  - COPY mode deep-copies the lowers into <tmp>/root (owners, modes, mtimes,
 *    xattrs except trusted.overlay.* and user.overlay.*, devices, fifos, symlinks; hard links within
 *    one layer stay hard links; no link into the lowers is ever made, so the step
 *    cannot write through to a lower). It records the copied tree's metadata
 *    (inode, ctime, mtime, size, mode, owner) and plait_snapshot_changes() diffs
 *    the root against that record: a tree diff against the merged lowers.
 *  - AUTO uses OVERLAY unless it is impossible: workroot is itself on overlayfs
 *    (the kernel refuses an upper on overlayfs), or the mount fails (EINVAL,
 *    EPERM, ENODEV, ...), and then COPY.
 *  - Long lower lists: the new mount API (fsopen + fsconfig "lowerdir+", Linux
 *    >= 6.8) takes any number of lowers one by one. On older kernels a classic
 *    mount(2) with "lowerdir=top:...:bottom" is used; when that string does not
 *    fit a page (the kernel's limit, about 50 store paths) or a path holds ':' or
 *    ',' the overlay attempt fails and AUTO falls back to COPY.
 *  - Mounts are made in the CALLER'S mount namespace (the executor need not
 *    unshare itself, and the sandbox's child namespaces inherit them), marked
 *    MS_PRIVATE so nothing propagates to or from peers, and always detached on
 *    release (MNT_DETACH: a lingering user does not make release fail).
 *  - A change list has one entry per changed path, sorted by strcmp on path,
 *    paths relative to the root without a leading '/' ("etc/passwd"):
 *      ADD     not in the lowers, present now;
 *      MODIFY  present in both, content or metadata differ, or a directory that
 *              holds a change (so its metadata is carried in the layer, as
 *              docker does);
 *      DELETE  present in the lowers, gone now. Only the topmost deleted path is
 *              listed (its children are implied), and nothing is listed under a
 *              directory that became a non-directory.
 *    Both modes give the same list for the same step (overlay: derived from the
 *    upper directory). Known difference: overlay copies a file up when it is
 *    merely opened for writing, which then shows as MODIFY.
 *  - Not thread-safe per snapshot; different snapshots are independent. */
#ifndef PLAIT_SNAPSHOT_H
#define PLAIT_SNAPSHOT_H

#include "error.h"

#include <sys/types.h>

enum plait_snapshot_mode {
	PLAIT_SNAPSHOT_AUTO = 0, /* overlay when possible, else copy */
	PLAIT_SNAPSHOT_OVERLAY,  /* overlay or fail */
	PLAIT_SNAPSHOT_COPY,     /* always copy */
};

enum plait_change_kind {
	PLAIT_CHANGE_ADD = 1,
	PLAIT_CHANGE_MODIFY,
	PLAIT_CHANGE_DELETE,
};

struct plait_change {
	char *path; /* relative to the root, no leading '/' */
	enum plait_change_kind kind;
};

struct plait_change_list {
	struct plait_change *items;
	size_t n, alloc;
};
#define PLAIT_CHANGE_LIST_INIT { NULL, 0, 0 }

struct plait_snapshot;

/* Make a writable root from n lowers (bottom first; n may be 0 for FROM
 * scratch) under a fresh temporary directory in workroot (which must exist).
 * On failure nothing is left mounted or on disk. */
int plait_snapshot_prepare(const char *const *lowers, size_t n, const char *workroot,
			   enum plait_snapshot_mode mode, struct plait_snapshot **out,
			   struct plait_error **err);
/* The merged root the step runs in. */
const char *plait_snapshot_root(const struct plait_snapshot *s);
/* The overlay upper directory (the change, in overlay form), or NULL in copy mode. */
const char *plait_snapshot_upper(const struct plait_snapshot *s);
/* The mode actually in use: PLAIT_SNAPSHOT_OVERLAY or PLAIT_SNAPSHOT_COPY. */
enum plait_snapshot_mode plait_snapshot_mode(const struct plait_snapshot *s);
/* The change made to the root since prepare, appended to out (see the contract).
 * Works in both modes. */
int plait_snapshot_changes(struct plait_snapshot *s, struct plait_change_list *out,
			   struct plait_error **err);
/* Unmount (detach) and remove the temporary directories, then free s. Accepts NULL. */
void plait_snapshot_release(struct plait_snapshot *s);
/* Overlay mode: unmount and move the upper directory (the step's change, in
 * overlay-lower form: whiteouts and opaque markers) to dest, where it can serve
 * as a lower of later snapshots. 1 when moved, 0 when dest already existed (the
 * upper stays and goes with release), <0 on error; the snapshot is spent either
 * way (only release it); when the root stays busy (EBUSY, the error's
 * errnum, after about 100 ms of retries) it is still mounted and its upper
 * in place. Copy mode: -PLAIT_E_USAGE. */
int plait_snapshot_take_upper(struct plait_snapshot *s, const char *dest, struct plait_error **err);
static inline void plait_snapshot_releasep(struct plait_snapshot **s)
{
	plait_snapshot_release(*s);
}
#define _cleanup_snapshot_ _cleanup_(plait_snapshot_releasep)

const char *plait_change_kind_name(enum plait_change_kind kind); /* "add", "modify", "delete" */
void plait_change_list_release(struct plait_change_list *l);

#endif
