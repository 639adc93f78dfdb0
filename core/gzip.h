/* core/gzip.h - block-parallel gzip whose bytes depend only on the input and
 * the level: not on the thread count, the host or the size of the writes.
 *
 * Contract:
 *  - the output is one gzip member (RFC 1952) holding one deflate stream
 *    (RFC 1951), readable by any gzip reader (zlib, `gzip -t`, Go's
 *    compress/gzip). Header: 1f 8b 08, no flags, MTIME 0, XFL 0, OS 255.
 *  - the input is cut into blocks of PLAIT_GZIP_BLOCK bytes (the last may be
 *    shorter). Each block is compressed on its own, without the previous
 *    block as a dictionary, by libdeflate at the given level; its last deflate
 *    block is made non-final and, when it does not end on a byte boundary,
 *    followed by an empty stored block (what zlib's Z_SYNC_FLUSH writes), so
 *    the blocks' outputs concatenate. A block whose bytes are nearly uniform
 *    (sum of squared byte counts within 1/32 of a uniform histogram's, an
 *    integer test) is written as stored blocks without trying to compress it:
 *    such data (already compressed files, random weights) gains < 0.5% from
 *    deflate and costs the most time. The stream ends with an empty final
 *    fixed block (03 00), then CRC-32 and ISIZE.
 *  - PLAIT_GZIP_BLOCK, the stored test and the framing are part of the byte
 *    format: changing any of them changes every layer digest. So does another
 *    libdeflate version if its compressor changed (its output is the same on
 *    every CPU: the match finder is portable C).
 *  - threads: 0 picks the online CPUs (at most 8); 1 compresses in the
 *    caller's thread. Worker threads start at the second block, so a small
 *    stream never starts one. At most threads + 2 blocks are in memory (in
 *    and out buffers, about 2 MiB each).
 *  - sink is called in the caller's thread, in stream order, from
 *    plait_gzip_write and plait_gzip_finish; when it fails, those return its
 *    code and the stream is dead (only plait_gzip_free is allowed). */
#ifndef PLAIT_GZIP_H
#define PLAIT_GZIP_H

#include "error.h"

#define PLAIT_GZIP_BLOCK (1024 * 1024)
#define PLAIT_GZIP_MAX_THREADS 8

struct plait_gzip;

typedef int (*plait_gzip_sink_fn)(void *ud, const void *data, size_t len, struct plait_error **err);

/* level 1-9 (0: 6). Returns 0, or -PLAIT_E_INVALID for a bad level. */
int plait_gzip_new(int level, unsigned threads, plait_gzip_sink_fn sink, void *ud,
		   struct plait_gzip **out, struct plait_error **err);
int plait_gzip_write(struct plait_gzip *g, const void *data, size_t len, struct plait_error **err);
/* Flush everything and write the trailer. After it only free is allowed. */
int plait_gzip_finish(struct plait_gzip *g, struct plait_error **err);
void plait_gzip_free(struct plait_gzip *g);

/* The thread count that threads=0 picks on this host. */
unsigned plait_gzip_default_threads(void);

#endif
