/* core/export.h - the local outputs that are not OCI layouts: a docker
 * archive (`docker save`'s format, what `docker load` reads) and an image's
 * root file system, as a directory (type=local) or as one tar (type=tar).
 * The pipeline (core/pipeline.c) calls them after every job was built.
 *
 * Contract:
 *  - every image is one platform's manifest whose blobs are in the store;
 *  - nothing half-written ever has the destination's name: a file is written
 *    to a locked temporary sibling ("<file>.tmp-XXXXXX", core/fs.h) and
 *    renamed over it; a directory is made in a temporary sibling directory
 *    and renamed into place, which must then be missing or empty (a
 *    directory is replaced whole or not at all, never merged into);
 *  - the docker archive holds manifest.json ([{Config, RepoTags, Layers}],
 *    one entry per image), the config as blobs/sha256/<hex> and each layer
 *    blob as it is in the store (gzip: `docker load` decompresses it, as
 *    Docker 20.10 already does); zstd layers are refused (20.10 cannot read
 *    them). RepoTags are the -t references with ":latest" when they name no
 *    tag; references by digest are left out;
 *  - the root file system is the layers applied in order by the safe
 *    unpacker (core/unpack.h, APPLY: whiteouts remove, nothing outside the
 *    root). Several images: one subdirectory each, named after the platform
 *    with '_' for '/' ("linux_amd64", "linux_arm_v7"), as buildx does. In a
 *    user namespace devices are left out (the unpacker's rule) and a
 *    type=local tree keeps the user's own ownership (no chown: files the
 *    user could not remove otherwise); type=tar keeps the image's owners;
 *  - the tar of type=tar is core/layer.h's deterministic, uncompressed tar
 *    of that tree (sorted, owners, modes, xattrs, hardlinks);
 *  - nothing here prints. */
#ifndef PLAIT_EXPORT_H
#define PLAIT_EXPORT_H

#include "store.h"

struct plait_export_image {
	const char *manifest;	     /* its digest in the store */
	const char *platform;	     /* "linux/amd64" */
	const char *const *tags;     /* -t references (NULL-terminated, or NULL) */
};

/* The docker archive of ims into file; what names the output in messages
 * ("--output type=docker,dest=x.tar"). */
int plait_export_docker_archive(struct plait_store *s, const struct plait_export_image *ims, size_t n,
				const char *file, const char *what, struct plait_error **err);
/* The same written to fd (from its offset; for --load), path for messages. */
int plait_export_docker_archive_fd(struct plait_store *s, const struct plait_export_image *ims, size_t n,
				   int fd, const char *path, const char *what, struct plait_error **err);

/* The root file system of ims into dest: a directory (as_tar false) or a tar. */
int plait_export_rootfs(struct plait_store *s, const struct plait_export_image *ims, size_t n,
			const char *dest, bool as_tar, const char *what, struct plait_error **err);

/* "linux/arm/v7" -> "linux_arm_v7" (caller frees). */
char *plait_export_platform_dir(const char *platform);

/* Can dest be a type=local output (missing, or an empty directory)?
 * -PLAIT_E_USAGE naming what otherwise. */
int plait_export_check_dir(const char *dest, const char *what, struct plait_error **err);

#endif
