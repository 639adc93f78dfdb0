/* registry/fetch.h - plain HTTP(S) downloads (ADD https://...), through the
 * same TLS set-up as registry traffic: verification on, per-host CAs from the
 * certs dirs, plain HTTP only for loopback and insecure hosts' http:// URLs.
 * Redirects are followed. Bytes stream into a blob writer, which the caller
 * commits (and so verifies any expected digest). *mtime (when not NULL) gets
 * the answer's Last-Modified in seconds since the epoch, -1 when it sent none
 * that parses. */
#ifndef PLAIT_FETCH_H
#define PLAIT_FETCH_H

#include "registry.h"

int plait_fetch_url(const char *url, const struct plait_registry_opts *opts, struct plait_blob_writer *w,
		    int64_t *mtime, struct plait_error **err);

#endif
