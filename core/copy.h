/* core/copy.h - copy an image graph (index -> manifests -> config and layers)
 * from one endpoint to another, children before parents, tags last.
 *
 * Contract:
 *  - bytes are moved, never re-serialised: every digest is preserved, and an
 *    index copied whole is byte-identical;
 *  - blobs the destination has are skipped; blobs in another repository of the
 *    same registry are mounted; others are transferred, up to `parallel` at a
 *    time (default 4). Registry to registry transfers stage each blob in a local
 *    store (verified before upload, resumable) and remove it after;
 *  - nothing is tagged unless every blob and manifest arrived. */
#ifndef PLAIT_COPY_H
#define PLAIT_COPY_H

#include <stdatomic.h>

#include "endpoint.h"

enum plait_copy_event_kind {
	PLAIT_COPY_BLOB_SKIPPED, /* destination had it */
	PLAIT_COPY_BLOB_MOUNTED,
	PLAIT_COPY_BLOB_COPIED,
	PLAIT_COPY_MANIFEST_PUT,
	PLAIT_COPY_TAGGED,
};

struct plait_copy_event {
	enum plait_copy_event_kind kind;
	const char *digest;
	const char *media_type;
	int64_t size;
	const char *tag; /* for TAGGED */
};

struct plait_copy_opts {
	int parallel; /* 0 = 4 */
	/* Where registry-to-registry blobs are staged; NULL = a temporary directory. */
	const char *staging_dir;
	/* Progress; called from worker threads (serialised by the copier). */
	void (*progress)(const struct plait_copy_event *ev, void *ctx);
	void *progress_ctx;
	/* When not NULL and non-zero, the copy stops at the next blob with
	 * -PLAIT_E_CANCELLED and tags nothing. */
	const atomic_int *cancel;
	/* Copy what the root references but not the root itself, which the
	 * caller stores (a referrer: the destination's put_referrer does). */
	bool no_root;
};

struct plait_copy_stats {
	size_t blobs_copied, blobs_skipped, blobs_mounted, manifests;
	int64_t bytes_copied;
};

/* Copy the manifest or index root (whose exact bytes are data) and everything
 * it references from src to dst; then, when tag is not NULL, tag it. For an
 * index, every child manifest is fetched from src by digest. */
int plait_copy_image(struct plait_endpoint *src, struct plait_endpoint *dst,
		     const struct plait_descriptor *root, const void *data, size_t len, const char *tag,
		     const struct plait_copy_opts *opts, struct plait_copy_stats *stats,
		     struct plait_error **err);

/* Copy what refers to d (whose exact bytes are data) and, for an index, to
 * each of its images: OCI 1.1 referrers (listed at src and pushed to dst
 * through whichever of the Referrers API and the sha256-HEX tag fallback each
 * offers), referrers of those to a small depth, and cosign's
 * sha256-HEX.sig/.att/.sbom tags. Nothing when either endpoint keeps no
 * referrers (layouts, archives). d itself is not copied. */
int plait_copy_referrers(struct plait_endpoint *src, struct plait_endpoint *dst,
			 const struct plait_descriptor *d, const void *data, size_t len,
			 const struct plait_copy_opts *opts, struct plait_copy_stats *stats,
			 struct plait_error **err);

#endif
