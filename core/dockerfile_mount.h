/* core/dockerfile_mount.h - the grammar of one RUN --mount=... value.
 *
 * One home for what `--mount=type=cache,target=/root/.cache,sharing=locked`
 * means; the executor (core/build_mount.c) and the linter (core/lint.c) both
 * read mounts through it. Pure: no file system, no environment, no secrets.
 *
 * Contract:
 *  - the value is comma-separated fields `name[=value]`; a field without '='
 *    has the value "". Names: type, target|dst|destination, source|src, from,
 *    id, rw|readwrite, ro|readonly, required, mode, size, env, sharing, uid,
 *    gid. A repeated field: the last one wins. rw/required without a value (or
 *    =true) are true; ro without a value (or anything but =false) is readonly;
 *  - defaults: type=bind, read-only, not required, sharing=shared, uid, gid
 *    and mode not given (-1); a secret without target= is mounted at
 *    /run/secrets/<id>; a secret's id defaults to its target's last component;
 *    an ssh mount's id defaults to "default" and its target stays NULL when
 *    not given (the executor numbers /run/buildkit/ssh_agent.N);
 *  - plait_df_mount_parse() checks, in this order, and reports the first
 *    failure (messages as the executor has always said them, without the
 *    "Dockerfile:N: " prefix the caller adds): the first field that is an
 *    unknown option or a uid=/gid= that is not a number; mode= not octal
 *    (0-07777); an unknown type; uid=/gid=/mode= on a type other than cache,
 *    secret or ssh; env= on a type other than secret; a target that is missing or not
 *    absolute; sharing= other than shared, locked or private (type=cache);
 *    all with code PLAIT_E_USAGE;
 *  - plait_df_mount_scan() reads the fields without checking anything (the
 *    linter reads Dockerfiles whose variables are not expanded yet). */
#ifndef PLAIT_DOCKERFILE_MOUNT_H
#define PLAIT_DOCKERFILE_MOUNT_H

#include "error.h"

#include <stdbool.h>

enum plait_df_mount_type {
	PLAIT_DF_MOUNT_BIND = 0,
	PLAIT_DF_MOUNT_CACHE,
	PLAIT_DF_MOUNT_TMPFS,
	PLAIT_DF_MOUNT_SECRET,
	PLAIT_DF_MOUNT_SSH,
	PLAIT_DF_MOUNT_UNKNOWN, /* type= something else (only after scan) */
};

enum plait_df_mount_sharing {
	PLAIT_DF_MOUNT_SHARED = 0,
	PLAIT_DF_MOUNT_LOCKED,  /* one RUN at a time uses the cache */
	PLAIT_DF_MOUNT_PRIVATE, /* a RUN that finds it in use gets a fresh empty one */
	PLAIT_DF_MOUNT_SHARING_UNKNOWN,
};

struct plait_df_mount {
	enum plait_df_mount_type type;
	char *type_name; /* as written; "bind" when not given */
	char *target;    /* NULL when not given (before parse's secret default) */
	char *source;    /* NULL: the default (the context's or stage's root) */
	char *from;      /* stage, image or named context; NULL: the build context */
	char *id;        /* cache id / secret id, NULL when not given */
	char *size;      /* tmpfs size=, as written */
	char *env;       /* secret env=: the variable that gets the value */
	char *sharing_name; /* as written, NULL when not given */
	enum plait_df_mount_sharing sharing;
	char *mode_name; /* as written, NULL when not given */
	long uid, gid;   /* -1: not given */
	long mode;       /* permissions, -1: not given */
	bool rw, required;
	/* A secret with env= and no target= is only an environment variable. */
	bool secret_file;

	/* scan's first bad field, for parse to report (uid=x, an unknown name) */
	char *bad_name, *bad_value;
	bool bad_number; /* bad_name is uid/gid with a value that is not a number */
};

/* Read spec's fields into m (zeroed, or released, by the caller); checks
 * nothing and never fails. */
void plait_df_mount_scan(const char *spec, struct plait_df_mount *m);
/* Scan and check spec; written is the value as written in the Dockerfile
 * (before expansion) for the target message, NULL for spec itself. On
 * failure m is released. */
int plait_df_mount_parse(const char *spec, const char *written, struct plait_df_mount *m,
			 struct plait_error **err);
/* An ssh mount's id: id=, else "default" (as --ssh default). */
const char *plait_df_mount_ssh_id(const struct plait_df_mount *m);
/* A secret's id: id=, else the last component of the target. */
const char *plait_df_mount_secret_id(const struct plait_df_mount *m);
/* "bind", "cache", "tmpfs", "secret", "ssh" */
const char *plait_df_mount_type_name(enum plait_df_mount_type t);
void plait_df_mount_release(struct plait_df_mount *m);

#endif
