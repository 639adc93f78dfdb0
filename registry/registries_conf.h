/* registry/registries_conf.h - registries.conf (containers-registries.conf(5),
 * version 2) and --registry-mirror: which hosts a pull tries, in which order,
 * and which registries are blocked or insecure.
 *
 * Contract:
 *  - files: an explicit file (--registries-conf, CONTAINERS_REGISTRIES_CONF)
 *    is read alone. Otherwise $HOME/.config/containers/registries.conf when it
 *    exists, else /etc/containers/registries.conf (a missing file is no
 *    error), then the drop-ins *.conf of /etc/containers/registries.conf.d
 *    (skipped when the user's file was read) and of
 *    $HOME/.config/containers/registries.conf.d, each directory in byte
 *    order: a drop-in's [[registry]] replaces the one with the same prefix,
 *    its unqualified-search-registries replaces the list (as
 *    containers-registries.conf.d(5) says).
 *  - read: [[registry]] prefix, location, insecure, blocked,
 *    mirror-by-digest-only, [[registry.mirror]] location, insecure,
 *    pull-from-mirror (all, digest-only, tag-only); unqualified-search-registries
 *    (kept, unused: plait resolves short names to docker.io, as Docker does).
 *    credential-helpers, short-name-mode and [aliases] are accepted and ignored;
 *    any other key is an error naming FILE:LINE:COL. The version 1 format
 *    ([registries.search], [registries.insecure], [registries.block]) is
 *    read as insecure and blocked hosts; it may not be mixed with [[registry]].
 *  - matching: the entry with the longest prefix that the reference
 *    ("docker.io/library/busybox:1.36") starts with, followed by nothing, '/',
 *    or (when the prefix has a path) ':' or '@'; "*.example.com" matches
 *    hosts below example.com. A prefix defaults to its location.
 *  - a pull tries the mirrors in order, then the location (the reference with
 *    its prefix replaced by the location; a wildcard entry without location
 *    keeps the reference). Pushes never use mirrors or locations: they go to
 *    the reference itself. A blocked entry refuses both, naming FILE:LINE.
 *  - --registry-mirror HOST[:PORT] (or http(s)://HOST[:PORT]) is a mirror of
 *    docker.io, tried before the mirrors registries.conf gives docker.io.
 *  - pure apart from plait_registries_conf_load*(), which read files. */
#ifndef PLAIT_REGISTRIES_CONF_H
#define PLAIT_REGISTRIES_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"
#include "core/ref.h"

enum plait_pull_from {
	PLAIT_PULL_FROM_ALL,
	PLAIT_PULL_FROM_DIGEST_ONLY,
	PLAIT_PULL_FROM_TAG_ONLY,
};

struct plait_conf_mirror {
	char *location;
	bool insecure;
	enum plait_pull_from pull_from;
	char *where; /* "FILE:LINE" or "--registry-mirror" */
};

struct plait_conf_registry {
	char *prefix;   /* never NULL */
	char *location; /* NULL: keep the reference (wildcard prefixes) */
	bool insecure, blocked, mirror_by_digest_only;
	struct plait_conf_mirror *mirrors;
	size_t n_mirrors;
	char *where; /* "FILE:LINE" of its [[registry]] */
};

struct plait_registries_conf {
	struct plait_conf_registry *regs;
	size_t n_regs;
	char **search;       /* unqualified-search-registries (unused) */
	char **files;        /* the files read, in order */
	char **cli_mirrors;  /* --registry-mirror locations (docker.io) */
	char **cli_insecure; /* those of them given as http:// */
};

struct plait_registries_conf *plait_registries_conf_new(void);
void plait_registries_conf_free(struct plait_registries_conf *c);

/* Merge the text of one file (name for messages) into c, as a drop-in would be. */
int plait_registries_conf_load_text(struct plait_registries_conf *c, const char *name, const char *text,
				    size_t len, struct plait_error **err);
/* Read path; a missing file is 0 unless must_exist. */
int plait_registries_conf_load_file(struct plait_registries_conf *c, const char *path, bool must_exist,
				    struct plait_error **err);
/* The default files (see above): sys_dir is "/etc/containers" (tests give
 * another), home the user's home directory (NULL: none). */
int plait_registries_conf_load_default(struct plait_registries_conf *c, const char *sys_dir,
				       const char *home, struct plait_error **err);
/* --registry-mirror ARG: "host[:port]" or "http(s)://host[:port]" (http:
 * plain HTTP). -PLAIT_E_USAGE when ARG is not that. */
int plait_registries_conf_add_docker_mirror(struct plait_registries_conf *c, const char *arg,
					    struct plait_error **err);

/* The entry for a normalised reference string, or NULL. */
const struct plait_conf_registry *plait_registries_conf_find(const struct plait_registries_conf *c,
							     const char *reference);

/* Where a pull of ref goes, in order: mirrors first, the location last. */
struct plait_pull_source {
	struct plait_ref ref; /* the reference at that source */
	bool mirror;
	char *where; /* for mirrors: "FILE:LINE" or "--registry-mirror"; NULL for the location */
};
/* Fill *out (caller frees with plait_pull_sources_free) for a pull of ref; c
 * may be NULL (then: ref alone). A blocked entry: -PLAIT_E_GENERIC naming it. */
int plait_registries_conf_pull_sources(const struct plait_registries_conf *c, const struct plait_ref *ref,
				       struct plait_pull_source **out, size_t *n, struct plait_error **err);
void plait_pull_sources_free(struct plait_pull_source *s, size_t n);
/* A push of ref: -PLAIT_E_GENERIC when its entry is blocked. c may be NULL. */
int plait_registries_conf_check_push(const struct plait_registries_conf *c, const struct plait_ref *ref,
				     struct plait_error **err);
/* Does some entry or mirror marked insecure live on host (an API host, e.g.
 * "registry-1.docker.io", or "mirror.local:5000")? */
bool plait_registries_conf_host_insecure(const struct plait_registries_conf *c, const char *host);

#endif
