/* core/endpoint.h - places images are read from and written to, behind one
 * interface: an OCI layout directory (core/layout.c), an OCI archive
 * (core/archive.c) and a registry repository (registry/endpoint.c).
 *
 * core/ never opens a network connection itself: the registry endpoint is
 * provided by registry/ and reaches core only through these ops.
 *
 * Contract: an endpoint names one repository (or layout) and optionally a
 * default reference (tag or digest). Ops return <0 with *err set on failure.
 * Ops a kind cannot do are NULL. Written content becomes visible to readers of
 * a layout/registry as it is put; an archive appears at its path only on commit. */
#ifndef PLAIT_ENDPOINT_H
#define PLAIT_ENDPOINT_H

#include "oci.h"
#include "store.h"

struct plait_endpoint;

struct plait_endpoint_ops {
	const char *kind; /* "registry", "oci", "oci-archive" */
	/* Fetch a manifest or index: ref is a tag or digest, NULL = the endpoint's
	 * default reference. body gets the exact bytes, *media_type (caller frees)
	 * its type, digest the digest of the bytes (verified). */
	int (*get_manifest)(struct plait_endpoint *ep, const char *ref, struct plait_buf *body,
			    char **media_type, char digest[PLAIT_DIGEST_MAX], struct plait_error **err);
	/* 1 when the blob (or manifest, by digest) is present, 0 when not. */
	int (*has_blob)(struct plait_endpoint *ep, const struct plait_descriptor *d,
			struct plait_error **err);
	/* Stream a blob into w; the caller commits w (which verifies the digest). */
	int (*fetch_blob)(struct plait_endpoint *ep, const struct plait_descriptor *d,
			  struct plait_blob_writer *w, struct plait_error **err);
	/* Upload blob d (d->size bytes) from src, which may still be growing. */
	int (*put_blob)(struct plait_endpoint *ep, const struct plait_descriptor *d,
			const struct plait_blob_source *src, struct plait_error **err);
	/* Optional (registries): upload a blob still being written, whose size
	 * and digest src->grown tells once it is complete (filled in here). */
	int (*put_growing_blob)(struct plait_endpoint *ep, const struct plait_blob_source *src,
				char digest[PLAIT_SHA256_DIGEST_SIZE], int64_t *size, struct plait_error **err);
	/* Optional: make blob d present by reference to from (same registry,
	 * another repository). 1 done, 0 not possible (caller uploads). */
	int (*mount_blob)(struct plait_endpoint *ep, const struct plait_descriptor *d,
			  struct plait_endpoint *from, struct plait_error **err);
	/* Store a manifest or index by its digest (not tagged). */
	int (*put_manifest)(struct plait_endpoint *ep, const char *media_type, const void *data,
			    size_t len, const char *digest, struct plait_error **err);
	/* Point tag at the manifest or index d whose bytes are data. */
	int (*tag)(struct plait_endpoint *ep, const char *tag, const struct plait_descriptor *d,
		   const void *data, size_t len, struct plait_error **err);
	/* Optional: what ref (a tag or digest) names at the place written to
	 * (never a mirror): 1 with its digest in digest, 0 when nothing is there.
	 * Lets a publication skip what is already in place. */
	int (*head_ref)(struct plait_endpoint *ep, const char *ref, char digest[PLAIT_DIGEST_MAX],
			struct plait_error **err);
	/* Optional (registries): the OCI 1.1 referrers of subject (a digest) as
	 * an index (out initialised here; via_api may be NULL), and pushing a
	 * referrer manifest (Referrers API or the sha256-HEX tag fallback). */
	int (*list_referrers)(struct plait_endpoint *ep, const char *subject, struct plait_index *out,
			      bool *via_api, struct plait_error **err);
	int (*put_referrer)(struct plait_endpoint *ep, const void *data, size_t len, bool *via_api,
			    struct plait_error **err);
	/* Finish writing (archives are written here). Optional. */
	int (*commit)(struct plait_endpoint *ep, struct plait_error **err);
	void (*free)(struct plait_endpoint *ep);
};

struct plait_endpoint {
	const struct plait_endpoint_ops *ops;
	char *display;             /* "localhost:5000/ml/train:1.0", "oci:/tmp/x:tag": for messages */
	char *name;                /* the same without its reference: "localhost:5000/ml/train" */
	char *ref;                 /* default tag or digest, or NULL */
	struct plait_store *store; /* set when blobs live in a local layout: opened directly */
	void *priv;
};

/* Open "oci:PATH[:REF]" or "oci-archive:FILE[:REF]" (REF a tag or digest).
 * for_write creates a layout that does not exist yet. Other strings:
 * -PLAIT_E_USAGE (registry references are opened by registry/endpoint.h). */
int plait_endpoint_open_local(const char *spec, bool for_write, struct plait_endpoint **out,
			      struct plait_error **err);
/* For "oci:PATH[:REF]" / "oci-archive:FILE[:REF]": *place is the endpoint's
 * name ("oci:PATH"), *ref its REF or NULL (caller frees both). -1 for other specs. */
int plait_endpoint_local_place(const char *spec, char **place, char **ref);
/* true when spec starts with "oci:" or "oci-archive:". */
bool plait_endpoint_spec_is_local(const char *spec);
/* Commit (where the kind needs it) is separate; free never commits. NULL is fine. */
void plait_endpoint_free(struct plait_endpoint *ep);

/* A reference to ref (a tag or digest) at ep that plait accepts back:
 * "host/repo@sha256:…", "host/repo:tag", "oci:DIR:sha256:…". Caller frees. */
char *plait_endpoint_ref_string(const struct plait_endpoint *ep, const char *ref);
/* Whether ref (a tag or digest) names digest at ep, by its head_ref; a
 * failed look-up, or a kind without head_ref, is "not known": false. */
bool plait_endpoint_holds(struct plait_endpoint *ep, const char *ref, const char *digest);
/* Finish writing (an archive is written here); no-op for kinds without commit. */
int plait_endpoint_commit(struct plait_endpoint *ep, struct plait_error **err);
/* Read a small blob (a config) into out, refusing more than max bytes. Remote
 * blobs go through a temporary store so they are verified like any other. */
int plait_endpoint_read_blob(struct plait_endpoint *ep, const struct plait_descriptor *d, size_t max,
			     struct plait_buf *out, struct plait_error **err);
/* Read and parse the image config m names (out is initialised here); errors
 * name the endpoint and the config digest. */
int plait_endpoint_image_config(struct plait_endpoint *ep, const struct plait_manifest *m,
				struct plait_image_config *out, struct plait_error **err);
/* Fetch the endpoint's image (ref NULL = its default reference) and describe it:
 * *root gets mediaType, digest and size; data the exact bytes. */
int plait_endpoint_resolve(struct plait_endpoint *ep, const char *ref, struct plait_descriptor *root,
			   struct plait_buf *data, struct plait_error **err);

/* Helpers shared by the kinds. */
struct plait_endpoint *plait_endpoint_alloc(const struct plait_endpoint_ops *ops, const char *name,
					    const char *display, const char *ref);
/* A layout endpoint over an open store (takes ownership of store). */
struct plait_endpoint *plait_layout_endpoint_new(struct plait_store *store, const char *name,
						 const char *display, const char *ref);
/* An OCI archive (a tar of a layout) at file; see core/archive.c. */
int plait_archive_endpoint_open(const char *file, const char *ref, bool for_write,
				struct plait_endpoint **out, struct plait_error **err);
/* plait_mkdtemp and plait_rm_rf (used with these endpoints) are in fs.h. */

#endif
