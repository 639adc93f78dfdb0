/* core/push_stream.h - with --push, each layer of a job's image uploads to
 * the image's repository while it is being compressed, instead of after the
 * build (plait_build_opts.layer_writer; core/pipeline.c sets it up).
 *
 * Best effort: whatever does not arrive this way (an upload that failed, a
 * layer below the size worth a session, a repository that is not a
 * registry) is pushed by publishing as before, which finds the streamed
 * blobs in place with a HEAD each. Nothing is tagged here, and the registry
 * checks every blob's digest at its final PUT. */
#ifndef PLAIT_PUSH_STREAM_H
#define PLAIT_PUSH_STREAM_H

#include <stdatomic.h>
#include <stddef.h>
#include "publish.h"
#include "store.h"

/* Blobs smaller than this are left to publishing: a session each is not
 * worth it. */
#define PLAIT_PUSH_STREAM_MIN ((int64_t)32 << 20)

struct plait_push_stream;

/* Uploads go to ref (an image reference; opened with open(ctx, ref, true)).
 * cancel (the job's; may be NULL) set: they stop, their sessions cancelled. */
struct plait_push_stream *plait_push_stream_new(plait_open_fn open, void *ctx, const char *ref,
						 const atomic_int *cancel);
/* The layer_writer hook (ctx: a plait_push_stream): starts w's upload in a
 * thread of its own. Any thread. */
void plait_push_stream_writer(void *ctx, struct plait_blob_writer *w);
/* The job failed: the uploads stop as cancel would stop them. */
void plait_push_stream_abort(struct plait_push_stream *s);
/* Wait for every upload started (each ends when its blob is complete and
 * sent, or was given up), then free s. NULL is fine. */
void plait_push_stream_free(struct plait_push_stream *s);

#endif
