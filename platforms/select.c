/* platforms/select.c - narrowing an image index to some platforms. */
#include "select.h"
#include "core/banned.h"

int plait_index_select_platforms(const struct plait_index *idx, const struct plait_platform *want,
				 size_t n, struct plait_index *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	out->schema_version = idx->schema_version ? idx->schema_version : 2;
	out->media_type = xstrdup_or_null(idx->media_type);
	out->artifact_type = xstrdup_or_null(idx->artifact_type);
	plait_map_copy(&out->annotations, &idx->annotations);
	for (size_t i = 0; i < n; i++) {
		size_t pos;
		int r = plait_platform_select(idx, &want[i], &pos, err);
		if (r < 0) {
			plait_index_release(out);
			return r;
		}
		plait_index_add(out, &idx->manifests[pos]);
	}
	return 0;
}
