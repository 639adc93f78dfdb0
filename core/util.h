/* core/util.h - small helpers every module uses: cleanup attributes (and the
 * cleanups for libc types), ownership hand-over, array sizes, allocation that
 * never returns NULL. String vectors are in strv.h, paths and files in fs.h,
 * timestamps in timestamp.h.
 *
 * Contract: allocation failure is not a recoverable error in plait (as in git);
 * the x* allocators abort with a message instead of returning NULL. */
#ifndef PLAIT_UTIL_H
#define PLAIT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <dirent.h>
#include <pthread.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Hand ownership out of a cleanup-managed variable. */
#define TAKE_PTR(p)                      \
	({                               \
		__typeof__(p) _p_ = (p); \
		(p) = NULL;              \
		_p_;                     \
	})
#define TAKE_FD(fd)              \
	({                       \
		int _fd_ = (fd); \
		(fd) = -1;       \
		_fd_;            \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup) defines
 * curl_easy_cleanupp() for use with _cleanup_(). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)       \
	static inline void func##p(type *p)            \
	{                                              \
		if (*p)                                \
			func(*p);                      \
	}

/* Cleanups for libc types; those for a library's types live beside its
 * header's use in core/cleanup.h (libarchive, OpenSSL), registry/ (curl).
 * jansson has its own: json_auto_t. */
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)
static inline void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

_noreturn_ void plait_die_oom(void);
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xstrdup that maps NULL to NULL. */
char *xstrdup_or_null(const char *s);
/* free() for a string that held a secret: its bytes are wiped first. NULL is fine. */
void plait_free_secret(char *s);

/* Grow *arr (element size elem) so that it holds at least want elements. */
#define PLAIT_ALLOC_GROW(arr, want, alloc)                                        \
	do {                                                                      \
		if ((want) > (alloc)) {                                           \
			size_t _n_ = (alloc) ? (alloc) * 2 : 8;                   \
			if (_n_ < (want))                                         \
				_n_ = (want);                                     \
			(arr) = xrealloc((arr), _n_ * sizeof(*(arr)));            \
			(alloc) = _n_;                                            \
		}                                                                 \
	} while (0)

static inline bool streq(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}
static inline bool startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}
bool endswith(const char *s, const char *suffix);
/* Whether s names a git repository as BuildKit reads contexts and ADD
 * sources: git://, git@, ssh://, github.com/, or http(s) ending in .git
 * (before a "#REF:SUBDIR" fragment). */
bool plait_url_is_git(const char *s);
/* "true"/"1" and "false"/"0", as buildx's option values: 0, or -1 for anything else. */
int plait_parse_bool(const char *v, bool *out);

/* Write all of buf to fd, retrying on EINTR and short writes. 0 or -errno. */
int plait_write_all(int fd, const void *buf, size_t len);
/* Tell the file system that the directories made in dir hold unrelated trees
 * (ext2/3/4's "top of directory hierarchies" flag, chattr +T), so that its
 * allocator spreads them over the disk instead of packing them next to dir.
 * On ext4 without a journal this also keeps new files away from the inodes
 * freed in the last minutes around dir, which the allocator skips one by one
 * and which make creating thousands of files ten times slower there (see
 * README, Benchmarks). Best effort: other file systems have no such flag. */
void plait_hint_unrelated_subdirs(const char *dir);
/* read(2), again when a signal interrupts it: bytes read (0 at EOF) or -errno. */
ssize_t plait_read_some(int fd, void *buf, size_t len);
/* Read exactly len bytes unless EOF; returns bytes read or -errno. */
ssize_t plait_read_full(int fd, void *buf, size_t len);

/* Monotonic clock in nanoseconds. */
uint64_t plait_now_ns(void);
/* A condition variable whose timed waits count on CLOCK_MONOTONIC (a clock
 * step does not stretch them), and such a wait of ms milliseconds (m held). */
void plait_cond_init_monotonic(pthread_cond_t *c);
void plait_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, unsigned ms);
/* A size: "10", "512K", "5G", "1TiB" (K, M, G, T: powers of 1024; B and iB
 * may follow). 0, or -1 for anything else. */
int plait_parse_size(const char *s, int64_t *out);

/* The modules that used to live here, so that every user of util.h still
 * finds plait_strv_*, plait_path_dir, plait_replace_file, plait_rm_rf. */
#include "strv.h"
#include "fs.h"

#endif
