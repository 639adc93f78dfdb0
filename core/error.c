#include "error.h"
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>

static int set_va(struct plait_error **err, int code, int errnum, const char *fmt, va_list ap)
{
	if (code <= 0)
		code = PLAIT_E_GENERIC;
	if (!err)
		return -code;
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_vaddf(&b, fmt, ap);
	if (errnum) {
		if (errnum < 0)
			errnum = -errnum;
		plait_buf_addf(&b, ": %s", strerror(errnum));
	}
	plait_error_free(*err);
	struct plait_error *e = xcalloc(1, sizeof(*e));
	e->code = code;
	e->errnum = errnum;
	e->msg = plait_buf_detach(&b, NULL);
	*err = e;
	return -code;
}

int plait_error_set(struct plait_error **err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set_va(err, code, 0, fmt, ap);
	va_end(ap);
	return r;
}

int plait_error_set_errno(struct plait_error **err, int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set_va(err, code, errnum, fmt, ap);
	va_end(ap);
	return r;
}

int plait_error_wrap(struct plait_error **err, const char *fmt, ...)
{
	if (!err || !*err)
		return -PLAIT_E_GENERIC;
	struct plait_buf b = PLAIT_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	plait_buf_addf(&b, ": %s", (*err)->msg);
	free((*err)->msg);
	(*err)->msg = plait_buf_detach(&b, NULL);
	return -(*err)->code;
}

int plait_error_code(struct plait_error *const *err)
{
	return err && *err ? (*err)->code : 0;
}

void plait_error_free(struct plait_error *e)
{
	if (!e)
		return;
	free(e->msg);
	free(e);
}

void plait_error_clear(struct plait_error **err)
{
	if (!err)
		return;
	plait_error_free(*err);
	*err = NULL;
}

void plait_error_move(struct plait_error **err, struct plait_error *e)
{
	if (!err) {
		plait_error_free(e);
		return;
	}
	plait_error_free(*err);
	*err = e;
}
