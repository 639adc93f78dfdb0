#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>

#include "util.h"

char plait_buf_empty[1];

void plait_buf_init(struct plait_buf *b, size_t hint)
{
	b->buf = plait_buf_empty;
	b->len = 0;
	b->alloc = 0;
	if (hint)
		plait_buf_grow(b, hint);
}

void plait_buf_release(struct plait_buf *b)
{
	if (b->alloc)
		free(b->buf);
	plait_buf_init(b, 0);
}

void plait_buf_grow(struct plait_buf *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len - 1)
		plait_die_oom();
	size_t want = b->len + extra + 1;
	if (want <= b->alloc)
		return;
	size_t n = b->alloc ? b->alloc : 64;
	while (n < want)
		n = n < SIZE_MAX / 2 ? n * 2 : want;
	if (b->alloc) {
		b->buf = xrealloc(b->buf, n);
	} else {
		b->buf = xmalloc(n);
		b->buf[0] = '\0';
	}
	b->alloc = n;
}

void plait_buf_add(struct plait_buf *b, const void *data, size_t len)
{
	if (!len)
		return;
	plait_buf_grow(b, len);
	memcpy(b->buf + b->len, data, len);
	b->len += len;
	b->buf[b->len] = '\0';
}

void plait_buf_adds(struct plait_buf *b, const char *s)
{
	plait_buf_add(b, s, strlen(s));
}

void plait_buf_addch(struct plait_buf *b, int c)
{
	plait_buf_grow(b, 1);
	b->buf[b->len++] = (char)c;
	b->buf[b->len] = '\0';
}

void plait_buf_vaddf(struct plait_buf *b, const char *fmt, va_list ap)
{
	/* Format into the spare room first; grow and format again only when it did not fit. */
	va_list cp;
	plait_buf_grow(b, 64);
	va_copy(cp, ap);
	int n = vsnprintf(b->buf + b->len, b->alloc - b->len, fmt, cp);
	va_end(cp);
	if (n < 0) {
		b->buf[b->len] = '\0';
		return;
	}
	if ((size_t)n >= b->alloc - b->len) {
		plait_buf_grow(b, (size_t)n);
		vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
	}
	b->len += (size_t)n;
}

void plait_buf_addf(struct plait_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(b, fmt, ap);
	va_end(ap);
}

void plait_buf_setlen(struct plait_buf *b, size_t len)
{
	if (!b->alloc) {
		if (len)
			abort(); /* cannot lengthen the shared empty buffer */
		return;
	}
	if (len >= b->alloc)
		abort();
	b->len = len;
	b->buf[len] = '\0';
}

char *plait_buf_detach(struct plait_buf *b, size_t *len_out)
{
	if (len_out)
		*len_out = b->len;
	char *r = b->alloc ? b->buf : xstrdup("");
	plait_buf_init(b, 0);
	return r;
}

void plait_buf_rtrim(struct plait_buf *b)
{
	while (b->len > 0 && (b->buf[b->len - 1] == ' ' || b->buf[b->len - 1] == '\n' ||
			      b->buf[b->len - 1] == '\t' || b->buf[b->len - 1] == '\r'))
		b->len--;
	if (b->alloc)
		b->buf[b->len] = '\0';
}

int plait_buf_read_fd(struct plait_buf *b, int fd, size_t max)
{
	for (;;) {
		plait_buf_grow(b, 65536);
		ssize_t n = plait_read_some(fd, b->buf + b->len, b->alloc - b->len - 1);
		if (n < 0)
			return (int)n;
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->buf[b->len] = '\0';
		if (b->len > max)
			return -EFBIG;
	}
	return 0;
}

int plait_buf_read_file(struct plait_buf *b, const char *path, size_t max)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* room for the whole file at once: no realloc leaves a stale copy of
	 * what was read (a --secret's bytes) in freed memory */
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 && (uint64_t)st.st_size <= max)
		plait_buf_grow(b, (size_t)st.st_size + 65536 + 1);
	return plait_buf_read_fd(b, fd, max);
}

void plait_buf_drain_two(int fd_a, struct plait_buf *a, int fd_b, struct plait_buf *b, size_t max, bool wipe)
{
	struct pollfd fds[2] = { { .fd = fd_a, .events = POLLIN }, { .fd = fd_b, .events = POLLIN } };
	struct plait_buf *bufs[2] = { a, b };
	int open_fds = 2;
	while (open_fds > 0) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !fds[i].revents)
				continue;
			char chunk[4096];
			ssize_t n = read(fds[i].fd, chunk, sizeof(chunk));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				fds[i].fd = -1;
				open_fds--;
				continue;
			}
			if (bufs[i]->len + (size_t)n <= max)
				plait_buf_add(bufs[i], chunk, (size_t)n);
			if (wipe)
				explicit_bzero(chunk, sizeof(chunk));
		}
	}
}
