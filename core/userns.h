/* core/userns.h - user namespaces as files see them: the id maps of rootless
 * builds, and what the process's own user namespace lets the cache hold.
 *
 * Contract:
 *  - the parsers and the map builder are pure (no I/O): /etc/subuid lines,
 *    /proc/self/uid_map lines, the map a rootless build asks newuidmap for.
 *  - plait_userns_self() reads /proc/self/uid_map once per process (after
 *    plait entered its own namespace, cmd/main.c): in a user namespace other
 *    than the initial one overlayfs keeps its metadata in user.overlay.*
 *    xattrs (mounted with userxattr), trusted.* xattrs and device nodes cannot
 *    be made, and chown works only for mapped ids.
 *  - flattening ("single" mode, chosen explicitly with --userns=single) is a
 *    process-wide setting: every owner the unpacker and COPY would set becomes
 *    0:0, as buildah's single-id mapping has it. Never on by itself. */
#ifndef PLAIT_USERNS_H
#define PLAIT_USERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One line of an id map: ids inside..inside+count-1 are outside..  outside. */
struct plait_idmap_range {
	uint32_t inside, outside, count;
};

/* At most this many ranges in a map plait makes (the kernel takes 340). */
#define PLAIT_IDMAP_MAX 32

/* The subordinate ranges of one user in the text of /etc/subuid (or
 * /etc/subgid): lines "NAME:START:COUNT" or "UID:START:COUNT" whose first
 * field is name or the decimal id; comments (#) and malformed lines are
 * skipped, as shadow's tools skip them. out gets up to max ranges (inside is
 * 0); returns how many were found (possibly more than max). */
size_t plait_subid_parse(const char *text, const char *name, uint32_t id,
			 struct plait_idmap_range *out, size_t max);

/* The map of a rootless build: 0 -> self (one id), then the ranges one after
 * the other from 1. Ranges that overlap self or wrap are cut off. Returns the
 * number of lines written to out (at most max), 0 when max is 0. *total gets
 * the number of ids mapped. */
size_t plait_idmap_build(uint32_t self, const struct plait_idmap_range *sub, size_t n_sub,
			 struct plait_idmap_range *out, size_t max, uint64_t *total);

/* Parse the text of /proc/PID/uid_map ("inside outside count" per line).
 * Returns the number of lines (up to max stored), or -1 when malformed. */
int plait_idmap_parse_proc(const char *text, struct plait_idmap_range *out, size_t max);

/* Whether ranges are the initial namespace's map (0 0 4294967295). */
bool plait_idmap_is_initial(const struct plait_idmap_range *r, size_t n);

/* The user namespace this process runs in. */
struct plait_userns_info {
	bool nested;     /* not the initial user namespace */
	uint64_t n_uids; /* ids mapped (4294967295 in the initial one) */
	uint64_t n_gids;
};
/* Read once (thread-safe); a process that cannot read its maps counts as the
 * initial namespace (Linux without user namespaces). */
const struct plait_userns_info *plait_userns_self(void);

/* "trusted.overlay." outside a user namespace, "user.overlay." inside one. */
const char *plait_userns_overlay_xattr_prefix(void);
/* The opaque-directory xattr name overlayfs reads here. */
const char *plait_userns_opaque_xattr(void);

void plait_userns_set_flatten(bool on);
bool plait_userns_flatten(void);

#endif
