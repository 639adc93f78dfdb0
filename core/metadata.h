/* core/metadata.h - the --metadata-file format, written by `plait build` and
 * `plait bake` and read back by `plait index create --from-metadata`: one
 * home for both sides.
 *
 * The file is a JSON object:
 *   {"images": [{"target"?, "variant"?, "digest", "mediaType", "tags": [...],
 *                "platforms": [{platform, digest, config.digest, size,
 *                               duration_s, steps, cached, builder}]}],
 *    "variants"?: {NAME: the image of that variant (no bake target)},
 *    "duration_s": N,
 *    and with exactly one image the keys buildx writes:
 *    "containerimage.digest", "containerimage.mediaType",
 *    "containerimage.config.digest" (one platform), "image.name" (the tags,
 *    comma-separated), "size", "steps", "cached", "platforms"}
 *
 * Reading accepts a file with "images" (one, or one per variant of one
 * target) or, written by other tools, the buildx keys alone. Every refusal
 * is -PLAIT_E_USAGE naming the file and what to write instead. */
#ifndef PLAIT_METADATA_H
#define PLAIT_METADATA_H

#include <jansson.h>

#include "error.h"

struct plait_metadata_platform {
	const char *platform, *digest, *config_digest, *builder;
	const char *node; /* the node that built it (ssh://…), or NULL: this host */
	int64_t size;
	double duration_s;
	int steps, cached;
};

struct plait_metadata_image {
	const char *target;  /* bake target, or NULL */
	const char *variant; /* or NULL */
	const char *digest, *media_type;
	char *const *tags;
	bool single; /* one platform: a manifest */
	const struct plait_metadata_platform *platforms;
	size_t n_platforms;
};

/* One image as the metadata file and the JSON summary show it; a new reference. */
json_t *plait_metadata_image_json(const struct plait_metadata_image *im);
/* Write the file (replaced whole). The error says that the images are
 * published (and, with tagged, tagged) but the file is not written. */
int plait_metadata_write(const char *path, const struct plait_metadata_image *images, size_t n,
			 double duration_s, bool tagged, struct plait_error **err);
/* Before anything is built: path must be a file that can be written. */
int plait_metadata_check_path(const char *path, struct plait_error **err);

/* An image a metadata file names: "repository@digest" (the repository from
 * its first tag), and the variant it was built for (NULL when none). */
struct plait_metadata_source {
	char *variant;
	char *name;
	const char *file; /* borrowed: the path it came from */
};
/* Add the images of file to *v (*n of them so far). */
int plait_metadata_read(const char *file, struct plait_metadata_source **v, size_t *n,
			struct plait_error **err);
void plait_metadata_sources_free(struct plait_metadata_source *v, size_t n);

#endif
