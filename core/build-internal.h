/* core/build-internal.h - what the executor's files share (not installed). */
#ifndef PLAIT_BUILD_INTERNAL_H
#define PLAIT_BUILD_INTERNAL_H

#include "build.h"
#include "context.h"

/* Ownership and mode COPY/ADD give what they write. */
struct copy_attrs {
	bool chown; /* set owner to uid:gid; else keep the source's (keep_owner) or root */
	uid_t uid;
	gid_t gid;
	bool keep_owner; /* COPY --from keeps owners; the context's files become root's */
	bool chmod;
	mode_t mode;
	bool parents; /* COPY --parents: keep each source's path below dest */
	const struct plait_ignore *exclude; /* COPY --exclude patterns, or NULL */
};

/* Copy the sources in l (resolved in src) into the directory tree at root, to
 * dest (absolute inside root, already expanded and joined with WORKDIR).
 * dest_is_dir: the destination names a directory (trailing '/', several
 * sources, or a wildcard). Every path under root is resolved inside it, so
 * symlinks in the image cannot redirect writes outside. what names the step
 * for messages ("Dockerfile:7: COPY"). */
int build_copy_into(const char *root, struct plait_context *src, const struct plait_context_list *l,
		    const char *dest, bool dest_is_dir, const struct copy_attrs *a, const char *what,
		    const bool *skip_source, struct plait_error **err);
/* Extract the tar archive (plain, gzip, bzip2, xz or zstd) read from fd into
 * the directory dest inside root (ADD of a local archive); the directories
 * made for dest get a's owner when a->chown (ADD --chown), as buildah does. */
int build_extract_into(const char *root, int fd, const char *dest, const struct copy_attrs *a,
		       const char *what, struct plait_error **err);
/* true when fd (read with pread from 0) holds a tar archive, compressed or not. */
bool build_is_archive(int fd);
/* Write the file dest inside root from fd (ADD of a URL), mode and owner from a. */
int build_write_fd_into(const char *root, const char *dest, int fd, const struct copy_attrs *a,
			const char *what, struct plait_error **err);
/* Write data as the file dest inside root (COPY <<EOF), creating parents. */
int build_write_file_into(const char *root, const char *dest, const char *data, size_t len,
			  const struct copy_attrs *a, const char *what, struct plait_error **err);
/* mkdir -p of an absolute path inside root (WORKDIR). */
/* Make the directory path inside root with its missing parents (mode 0755);
 * with owner (->chown set), the directories it makes get that owner. */
int build_mkdir_in_root(const char *root, const char *path, const struct copy_attrs *owner,
			struct plait_error **err);

#endif
