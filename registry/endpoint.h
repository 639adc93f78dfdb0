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
 * has neither; callers decide). */
int plait_registry_endpoint_open(const char *reference, const struct plait_registry_opts *opts,
				 struct plait_endpoint **out, struct plait_error **err);
/* Open any endpoint: "oci:…"/"oci-archive:…" locally, anything else as a registry reference. */
int plait_endpoint_open(const char *spec, bool for_write, const struct plait_registry_opts *opts,
			struct plait_endpoint **out, struct plait_error **err);

#endif
