/* core/assemble.h - image indexes made from images: the one place an index
 * is put together, for the images `plait build` makes (one entry per job)
 * and for `plait index create` (from images, other indexes, --append's
 * existing index and --from-metadata files).
 *
 * Contract of plait_assemble_create():
 *  - one index, or with "{variant}" in the destinations one per variant the
 *    metadata sources name, in the order they first appear; -t names that
 *    would be shared by two variants' indexes are refused;
 *  - every source of every index is read, and every destination opened
 *    (o->open: registry references are the caller's), before anything is
 *    written; entries keep the order of the sources; an image contributes
 *    its platform read from its config, an index all its entries; the same
 *    image twice is kept once, two images for one platform are refused;
 *  - --append starts from the first destination's index (a single image is
 *    an index of one; none yet: empty) and keeps its annotations; new
 *    entries replace those of the same platform or digest, with their
 *    attestations;
 *  - publication is core/publish.h's: every image and index by digest into
 *    every destination, then the tags, then the destinations committed;
 *  - nothing here prints: *out lists what was written, for the caller. */
#ifndef PLAIT_ASSEMBLE_H
#define PLAIT_ASSEMBLE_H

#include <stdatomic.h>

#include "metadata.h"
#include "publish.h"

/* Fill idx (its annotations may hold some already: they are kept unless
 * annotations sets the same key) as an index of the given format holding
 * entries in order, with annotations and, for an OCI index with an epoch,
 * org.opencontainers.image.created; then its bytes and their descriptor. */
int plait_index_assemble(struct plait_index *idx, enum plait_media_type format, const struct plait_map *annotations,
			 bool have_epoch, int64_t epoch, const struct plait_descriptor *entries, size_t n,
			 struct plait_buf *bytes, struct plait_descriptor *root, struct plait_error **err);

struct plait_assemble_opts {
	const struct plait_map *annotations; /* on the index */
	bool have_epoch;
	int64_t epoch;
	bool append;
	enum plait_media_type format; /* PLAIT_MT_OCI_INDEX or PLAIT_MT_DOCKER_LIST */
	const struct plait_copy_opts *copy;
	const atomic_int *interrupt;
	plait_open_fn open; /* opens sources (for_write false) and destinations */
	void *ctx;
};

/* One index written to one destination. */
struct plait_assembled {
	char *dst;   /* the -t value, "{variant}" filled in */
	char *ref;   /* where it is now, by digest (plait_endpoint_ref_string) */
	char digest[PLAIT_DIGEST_MAX];
	size_t n_entries;
};
void plait_assembled_free(struct plait_assembled *v, size_t n);

/* `plait index create`: dsts (-t values), the images of --from-metadata
 * (meta) and the SRC arguments (srcs, NULL-terminated or NULL). */
int plait_assemble_create(char *const *dsts, const struct plait_metadata_source *meta, size_t n_meta,
			  char *const *srcs, const struct plait_assemble_opts *o, struct plait_assembled **out,
			  size_t *n_out, struct plait_error **err);

#endif
