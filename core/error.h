/* core/error.h - errors as an out-parameter with context (after crun's libcrun_error_t).
 *
 * Library functions take `struct plait_error **err` last, return a negative
 * value on failure and set *err to a message that names the thing that failed
 * ("linux/arm64: push layer sha256:ab12…: 503 Service Unavailable after 5 tries").
 * Callers add context on the way up with plait_error_wrap(). Only cmd/ prints
 * errors and chooses the exit status. err may be NULL when the caller does not
 * want the message. Messages never contain secrets. */
#ifndef PLAIT_ERROR_H
#define PLAIT_ERROR_H

#include "util.h"

/* The few codes a caller may branch on. */
enum plait_errcode {
	PLAIT_E_GENERIC = 1,
	PLAIT_E_USAGE,     /* bad flag or argument: the user must change the command */
	PLAIT_E_NOT_FOUND, /* tag, blob, file or platform does not exist */
	PLAIT_E_AUTH,      /* 401/403: credentials missing or refused */
	PLAIT_E_RETRYABLE, /* transient: 408, 429, 5xx, dropped connection */
	PLAIT_E_INVALID,   /* malformed data: bad JSON, digest mismatch, too large */
	PLAIT_E_IO,        /* local file system error */
	PLAIT_E_NETWORK,   /* cannot reach the host at all */
	PLAIT_E_CANCELLED, /* interrupted by the user */
};

struct plait_error {
	int code;   /* enum plait_errcode */
	int errnum; /* errno behind the error, or 0 */
	char *msg;
};

/* Set *err (replacing any previous error) and return -code. */
int plait_error_set(struct plait_error **err, int code, const char *fmt, ...) _printf_(3, 4);
/* As plait_error_set, appending ": strerror(errnum)". errnum may be negative. */
int plait_error_set_errno(struct plait_error **err, int code, int errnum, const char *fmt, ...)
	_printf_(4, 5);
/* Prefix the existing message: "prefix: old message". Returns -code of the error,
 * which is unknown when err is NULL: callers return their own r, not this. */
int plait_error_wrap(struct plait_error **err, const char *fmt, ...) _printf_(2, 3);
/* The code of *err, or 0 when none is set. */
int plait_error_code(struct plait_error *const *err);
void plait_error_free(struct plait_error *e);
/* Free *err and set it to NULL. */
void plait_error_clear(struct plait_error **err);
/* Hand e to *err, replacing what was there (e is freed when err is NULL). */
void plait_error_move(struct plait_error **err, struct plait_error *e);
static inline void plait_error_freep(struct plait_error **e)
{
	plait_error_free(*e);
}
#define _cleanup_error_ _cleanup_(plait_error_freep)

#endif
