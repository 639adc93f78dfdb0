/* core/buf.h - the one growable buffer for strings and bytes (after git's strbuf).
 *
 * Invariants: buf is never NULL and always NUL-terminated at len, so a
 * plait_buf can be handed to string functions at any time. Initialise with
 * PLAIT_BUF_INIT; release with plait_buf_release(); take the bytes with
 * plait_buf_detach() (the buffer is then empty again). */
#ifndef PLAIT_BUF_H
#define PLAIT_BUF_H

#include "util.h"
#include <stdarg.h>

struct plait_buf {
	char *buf;
	size_t len;
	size_t alloc; /* 0 while buf points at the shared empty string */
};

extern char plait_buf_empty[];
#define PLAIT_BUF_INIT { .buf = plait_buf_empty, .len = 0, .alloc = 0 }

void plait_buf_init(struct plait_buf *b, size_t hint);
void plait_buf_release(struct plait_buf *b);
/* Make room for extra more bytes (plus the terminating NUL). */
void plait_buf_grow(struct plait_buf *b, size_t extra);
void plait_buf_add(struct plait_buf *b, const void *data, size_t len);
void plait_buf_adds(struct plait_buf *b, const char *s);
void plait_buf_addch(struct plait_buf *b, int c);
void plait_buf_addf(struct plait_buf *b, const char *fmt, ...) _printf_(2, 3);
void plait_buf_vaddf(struct plait_buf *b, const char *fmt, va_list ap);
void plait_buf_setlen(struct plait_buf *b, size_t len);
static inline void plait_buf_reset(struct plait_buf *b)
{
	plait_buf_setlen(b, 0);
}
/* Hand out the heap string (never NULL); *len_out gets its length if not NULL. */
char *plait_buf_detach(struct plait_buf *b, size_t *len_out);
/* Remove trailing white space. */
void plait_buf_rtrim(struct plait_buf *b);

static inline void plait_buf_releasep(struct plait_buf *b)
{
	plait_buf_release(b);
}
#define _cleanup_buf_ _cleanup_(plait_buf_releasep)

/* Read the whole of path into b, refusing files larger than max bytes.
 * Returns 0, or -errno (-EFBIG when larger than max). */
int plait_buf_read_file(struct plait_buf *b, const char *path, size_t max);
/* Read two descriptors (a child's stdout and stderr) to their ends, in turn
 * as either has data, so the writer never blocks on a full pipe: bytes go to
 * a and b while each holds at most max, the rest is read and dropped. With
 * wipe, the read buffer is cleared after each chunk (secrets). */
void plait_buf_drain_two(int fd_a, struct plait_buf *a, int fd_b, struct plait_buf *b, size_t max, bool wipe);
int plait_buf_read_fd(struct plait_buf *b, int fd, size_t max);

#endif
