/* cmd/remote_context.h - build contexts that are not local directories, as
 * BuildKit spells them, fetched into a private temporary directory before
 * planning: a git repository (git://…, git@host:path, ssh://…, https://….git
 * or github.com/…, with "#REF[:SUBDIR]") cloned at REF without its .git, or
 * an http(s) URL whose body is a tar archive (gzip, bzip2, xz, zstd or
 * plain: the context, unpacked by core/unpack.c's safe unpacker) or a
 * Dockerfile (then the context is empty).
 *
 * Contract: a failure names the URL and what failed (git's own message, the
 * HTTP error) and leaves nothing behind; what was fetched is removed by
 * remote_context_release(). Git runs with GIT_TERMINAL_PROMPT=0: a
 * repository that asks for a password fails instead of waiting. */
#ifndef PLAIT_CMD_REMOTE_CONTEXT_H
#define PLAIT_CMD_REMOTE_CONTEXT_H

#include <stdbool.h>

#include "core/error.h"
#include "core/fs.h"
#include "registry/registry.h"

struct remote_context {
	struct plait_tmpdir tmp;
	char *dir;	  /* the context (SUBDIR applied) */
	char *dockerfile; /* a URL that was a Dockerfile: its path; else NULL */
	char *commit;	  /* git: the commit checked out */
};

/* Whether spec is one of the forms above (else a local path). */
bool remote_context_is(const char *spec);
/* keep_git: a git checkout keeps its .git (ADD --keep-git-dir). */
int remote_context_fetch(const char *spec, const struct plait_registry_opts *opts, bool keep_git,
			 struct remote_context *out, struct plait_error **err);
void remote_context_release(struct remote_context *c);

#endif
