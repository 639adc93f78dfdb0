/* platforms/rootless.h - builds without root: plait enters a user namespace
 * of its own before it does anything else (cmd/main.c, single-threaded).
 *
 * Contract of plait_rootless_enter():
 *  - as root of the initial user namespace: nothing (a root build; the mode
 *    is ignored).
 *  - as root of another user namespace (a container, `unshare --user`): no
 *    new namespace. With PLAIT_USERNS_AUTO the namespace must map at least
 *    PLAIT_ROOTLESS_MIN_IDS uids and gids (an image's users, nobody included,
 *    must be representable), else an error names /proc/self/uid_map and the
 *    two ways out; PLAIT_USERNS_SINGLE flattens every owner to 0:0 instead.
 *  - as another user, PLAIT_USERNS_AUTO: the calling process unshares a user
 *    namespace mapping 0 to the caller's uid (gid) and 1.. to the caller's
 *    ranges in /etc/subuid (/etc/subgid), written by newuidmap/newgidmap
 *    (Debian's uidmap, setuid root) run by a short-lived child on the
 *    caller's pid: the handshake is one byte on a pipe ("unshared"), then the
 *    child's exit status and stderr. The process keeps its pid (signals, exit
 *    status and the terminal work as before) and becomes uid 0 there, with
 *    every capability over the namespace: chown to mapped ids, overlayfs
 *    (userxattr), proc, tmpfs and the sandbox's namespaces. No range: an error
 *    naming /etc/subuid and the usermod command. No newuidmap: an error
 *    naming the package.
 *  - as another user, PLAIT_USERNS_SINGLE: the caller's uid and gid alone are
 *    mapped (written by plait itself, setgroups denied), and every owner is
 *    flattened to 0:0 (core/userns.h).
 *  - HOME is set from the passwd entry first when it is missing, so that the
 *    cache ($XDG_CACHE_HOME/plait, ~/.cache/plait) and the docker config are
 *    the caller's, not those of root inside the namespace. */
#ifndef PLAIT_ROOTLESS_H
#define PLAIT_ROOTLESS_H

#include <stdbool.h>

#include <sys/types.h>

#include "core/error.h"
#include "core/userns.h"

enum plait_userns_mode {
	PLAIT_USERNS_AUTO = 0, /* subuid/subgid ranges */
	PLAIT_USERNS_SINGLE,   /* the caller's own id only; owners flattened */
};

#define PLAIT_ROOTLESS_MIN_IDS 65536

/* Where the files come from; NULL fields take the system's (tests point
 * them elsewhere). */
struct plait_rootless_env {
	const char *subuid;    /* /etc/subuid */
	const char *subgid;    /* /etc/subgid */
	const char *newuidmap; /* looked up in PATH, then /usr/bin */
	const char *newgidmap;
};

/* "auto" / "single" -> mode; -1 when neither. */
int plait_userns_mode_from_string(const char *s, enum plait_userns_mode *out);

/* The uid and gid maps for user (uid, gid) from env's subordinate-id files:
 * 0 -> uid/gid, then the ranges (core/userns.h plait_idmap_build). Fewer
 * than PLAIT_ROOTLESS_MIN_IDS ids: the error naming the file and the usermod
 * command. */
int plait_rootless_maps(const struct plait_rootless_env *env, const char *user, uid_t uid, gid_t gid,
			struct plait_idmap_range umap[PLAIT_IDMAP_MAX], size_t *n_umap,
			struct plait_idmap_range gmap[PLAIT_IDMAP_MAX], size_t *n_gmap, struct plait_error **err);

/* Enter the namespace as described above. *entered is set when a new user
 * namespace was made. */
int plait_rootless_enter(enum plait_userns_mode mode, const struct plait_rootless_env *env, bool *entered,
			 struct plait_error **err);

#endif
