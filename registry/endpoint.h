/* registry/endpoint.h - a registry repository as a struct plait_endpoint
 * (see core/endpoint.h), so core/copy.c can read from and write to registries
 * without knowing HTTP. Endpoints on the same host share one client, which is
 * what makes cross-repository mounts possible. */
#ifndef PLAIT_REGISTRY_ENDPOINT_H
#define PLAIT_REGISTRY_ENDPOINT_H

#include "core/endpoint.h"
#include "registry.h"

/* Open a registry reference ("localhost:5000/ml/train:1.0", "busybox@sha256:…").
 * Its tag or digest becomes the endpoint's default ref (NULL when the reference
 * has neither; callers decide).
 *
 * Reading (for_write false), manifests and blobs come from the places
 * opts->registries_conf gives for the reference (registries_conf.h): each
 * request tries the mirrors in order and then the location; a mirror that
 * could not be reached at all is skipped by later requests of this run; the
 * final error lists what each mirror answered, then the registry's error.
 * Writing (for_write true), everything goes to the reference itself (writes
 * and the reads of a destination alike). A blocked entry refuses either. */
int plait_registry_endpoint_open(const char *reference, bool for_write, const struct plait_registry_opts *opts,
				 struct plait_endpoint **out, struct plait_error **err);
/* "host/repo" of the source that answered the endpoint's last manifest read;
 * *mirror_from (when not NULL) where that mirror was configured ("FILE:LINE",
 * "--registry-mirror"), NULL when it was the registry itself. NULL before any
 * read and for endpoints that are not registry endpoints. */
const char *plait_registry_endpoint_source(const struct plait_endpoint *ep, const char **mirror_from);
/* The referrers of subject (a digest) in the endpoint's repository on its
 * registry itself (mirrors are not asked): see plait_registry_list_referrers.
 * -PLAIT_E_USAGE for endpoints that are not registry endpoints. */
int plait_registry_endpoint_referrers(struct plait_endpoint *ep, const char *subject,
				      const char *artifact_type, struct plait_index *out,
				      bool *via_api, struct plait_error **err);
/* Push a referrer manifest (see plait_registry_put_referrer). */
int plait_registry_endpoint_put_referrer(struct plait_endpoint *ep, const void *data, size_t len,
					 bool *via_api, struct plait_error **err);
/* Open any endpoint: "oci:…"/"oci-archive:…" locally, anything else as a registry reference. */
int plait_endpoint_open(const char *spec, bool for_write, const struct plait_registry_opts *opts,
			struct plait_endpoint **out, struct plait_error **err);

#endif
