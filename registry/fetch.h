/* registry/fetch.h - plain HTTP(S) downloads (ADD https://...), through the
 * same TLS set-up as registry traffic: verification on, per-host CAs from the
 * certs dirs, plain HTTP only for loopback and insecure hosts' http:// URLs.
 * Redirects are followed. Bytes stream into a blob writer, which the caller
 * commits (and so verifies any expected digest). */
#ifndef PLAIT_FETCH_H
#define PLAIT_FETCH_H

#include "registry.h"

int plait_fetch_url(const char *url, const struct plait_registry_opts *opts, struct plait_blob_writer *w,
		    struct plait_error **err);

#endif
