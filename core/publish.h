/* core/publish.h - the one publish protocol, used by `plait build/bake`
 * (--output, --push) and by `plait index create`.
 *
 * A publication is a list of items, each one image (manifest or index) for
 * one destination: the images to copy there by digest first (each with its
 * blobs and child manifests, core/copy.h), then the root itself, then the
 * tag. The destinations are opened by the caller (registry endpoints come
 * from registry/ through the caller's wiring: nothing here opens a network
 * connection) and may be shared by several items.
 *
 * Contract of plait_publish_push() (its caller publishes only when every job
 * was built: core/pipeline.c's plait_pipeline_publish refuses before any
 * output or destination is opened):
 *  - an item the destination already holds (its tag names the root's
 *    digest; by_digest: the root is there) is skipped, its tag included;
 *  - every other item's copies and root go by digest, item after item, before any
 *    tag: blobs before the manifests that name them, manifests before the
 *    index, the index before its tags; its referrers right after its root;
 *  - then, unless by_digest, every item's tag in item order; the interrupt
 *    flag is checked before each tag, so an interrupt stops before the next
 *    one (registries have no transactions: tags already moved stay moved);
 *  - last, every distinct destination is committed once (archives are
 *    written there);
 *  - on failure *st says how far it went (the caller names what moved).
 *
 * plait_publish_output() writes items into a local output (an OCI layout or
 * archive) whole: each copied and tagged (tag NULL: an untagged entry in the
 * layout's index), then the destination committed. The pipeline writes every
 * output before pushing anything. */
#ifndef PLAIT_PUBLISH_H
#define PLAIT_PUBLISH_H

#include <stdatomic.h>

#include "copy.h"

/* One image copied by digest: its blobs, its child manifests, then itself. */
struct plait_publish_copy {
	struct plait_endpoint *src;
	const struct plait_descriptor *desc;
	const void *data; /* desc's exact bytes */
	size_t len;
};

struct plait_publish_item {
	struct plait_endpoint *dst; /* borrowed; items may share one */
	const char *name;	    /* the destination as the user wrote it: events and messages */
	const struct plait_publish_copy *copies;
	size_t n_copies;
	/* What the tag points at (exact bytes); with put_root it is not among
	 * the copies and is stored by digest after them. */
	const struct plait_descriptor *root;
	const void *data;
	size_t len;
	bool put_root;
	const char *tag; /* NULL: none (by digest only) */
	/* Referrers of the root's images (attestations: artifact manifests whose
	 * subject is one of them), each copied by digest and attached through
	 * the destination's put_referrer right after the root, before any tag.
	 * When the destination already held the item, a referrer is attached
	 * only if its subject has none of its artifactType yet (a rebuild of an
	 * unchanged image does not pile up attestations). */
	const struct plait_publish_copy *referrers;
	size_t n_referrers;
};

enum plait_publish_event_kind {
	PLAIT_PUBLISH_PUSHED, /* an item's copies and root are in place, by digest */
	PLAIT_PUBLISH_TAGGED, /* an item's tag moved */
	PLAIT_PUBLISH_CURRENT, /* the destination already held the item (its tag, or by digest its
				* root): nothing was pushed or moved for it */
};

struct plait_publish_opts {
	const struct plait_copy_opts *copy; /* NULL: defaults */
	const atomic_int *interrupt;	    /* NULL: none */
	void (*event)(void *ctx, enum plait_publish_event_kind kind, const struct plait_publish_item *it);
	void *ctx;
};

enum plait_publish_phase { PLAIT_PUBLISH_PHASE_PUSH, PLAIT_PUBLISH_PHASE_TAG, PLAIT_PUBLISH_PHASE_COMMIT };

struct plait_publish_status {
	enum plait_publish_phase phase; /* where it stopped */
	size_t item;			/* the item it stopped at */
	size_t pushed, tagged;		/* items done in each phase */
};

int plait_publish_push(const struct plait_publish_item *items, size_t n, bool by_digest,
		       const struct plait_publish_opts *o, struct plait_publish_status *st,
		       struct plait_error **err);
int plait_publish_output(const struct plait_publish_item *items, size_t n, const struct plait_publish_opts *o,
			 struct plait_error **err);

/* Destinations opened once each: several -t naming one archive (or layout,
 * or repository) write through one endpoint. open is the caller's (for
 * registry references, registry/'s plait_endpoint_open). */
typedef int (*plait_open_fn)(void *ctx, const char *spec, bool for_write, struct plait_endpoint **out,
			     struct plait_error **err);
struct plait_publish_pool {
	struct plait_endpoint **v;
	size_t n;
};
/* The endpoint for spec, opened for writing unless the pool has its place.
 * *ref gets spec's tag or digest (NULL when none; caller frees). */
int plait_publish_pool_open(struct plait_publish_pool *pool, const char *spec, plait_open_fn open, void *ctx,
			    struct plait_endpoint **ep, char **ref, struct plait_error **err);
void plait_publish_pool_release(struct plait_publish_pool *pool);

#endif
