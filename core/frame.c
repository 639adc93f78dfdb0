/* core/frame.c - node protocol frames; see frame.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "util.h"
#include "banned.h"

void plait_frame_header(uint8_t out[PLAIT_FRAME_HEADER], enum plait_frame_type t, uint32_t len)
{
	memcpy(out, PLAIT_FRAME_MAGIC, 4);
	out[4] = (uint8_t)t;
	out[5] = out[6] = out[7] = 0;
	out[8] = (uint8_t)(len >> 24);
	out[9] = (uint8_t)(len >> 16);
	out[10] = (uint8_t)(len >> 8);
	out[11] = (uint8_t)len;
}

int plait_frame_write(int fd, enum plait_frame_type t, const void *payload, size_t len, struct plait_error **err)
{
	if (len > PLAIT_FRAME_MAX)
		return plait_error_set(err, PLAIT_E_INVALID, "a frame of %zu bytes is over the limit of %u: split it",
				       len, PLAIT_FRAME_MAX);
	uint8_t h[PLAIT_FRAME_HEADER];
	plait_frame_header(h, t, (uint32_t)len);
	int r = plait_write_all(fd, h, sizeof(h));
	if (r >= 0 && len)
		r = plait_write_all(fd, payload, len);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "cannot send a frame");
	return 0;
}

int plait_frame_write_control(int fd, const json_t *msg, struct plait_error **err)
{
	if (!json_is_object(msg) || !json_is_string(json_object_get(msg, "type")))
		return plait_error_set(err, PLAIT_E_INVALID, "a control message needs a string \"type\"");
	char *s = json_dumps(msg, JSON_COMPACT);
	if (!s)
		return plait_error_set(err, PLAIT_E_INVALID, "a control message cannot be written as JSON");
	int r = plait_frame_write(fd, PLAIT_FRAME_CONTROL, s, strlen(s), err);
	free(s);
	return r;
}

void plait_frame_release(struct plait_frame *f)
{
	if (!f)
		return;
	free(f->payload);
	json_decref(f->control);
	memset(f, 0, sizeof(*f));
}

int plait_frame_read(int fd, struct plait_frame *out, size_t *n, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	size_t no = *n + 1;
	uint8_t h[PLAIT_FRAME_HEADER];
	ssize_t got = plait_read_full(fd, h, sizeof(h));
	if (got < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, (int)-got, "frame %zu: cannot read its header", no);
	if (got == 0)
		return 0;
	if ((size_t)got < sizeof(h))
		return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: the stream ends inside its header (%zd of %d bytes)",
				       no, got, PLAIT_FRAME_HEADER);
	if (memcmp(h, PLAIT_FRAME_MAGIC, 4) != 0)
		return plait_error_set(err, PLAIT_E_INVALID,
				       "frame %zu: no \"" PLAIT_FRAME_MAGIC "\" header (the other side speaks another frame "
				       "format, or printed something else on its standard output)",
				       no);
	if (h[5] || h[6] || h[7])
		return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: its reserved header bytes are not zero", no);
	if (h[4] < PLAIT_FRAME_CONTROL || h[4] > PLAIT_FRAME_END)
		return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: unknown type %u", no, h[4]);
	uint32_t len = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
	if (len > PLAIT_FRAME_MAX)
		return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: %u bytes is over the limit of %u", no, len,
				       PLAIT_FRAME_MAX);
	if (h[4] == PLAIT_FRAME_END && len)
		return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: an end-of-content frame has a payload", no);
	out->type = (enum plait_frame_type)h[4];
	out->len = len;
	if (len) {
		out->payload = xmalloc(len);
		got = plait_read_full(fd, out->payload, len);
		if (got < 0 || (size_t)got < len) {
			if (out->payload)
				explicit_bzero(out->payload, len); /* it may be part of a secret */
			plait_frame_release(out);
			if (got < 0)
				return plait_error_set_errno(err, PLAIT_E_IO, (int)-got, "frame %zu: cannot read its payload",
							     no);
			return plait_error_set(err, PLAIT_E_INVALID,
					       "frame %zu: the stream ends inside its payload (%zd of %u bytes)", no, got,
					       len);
		}
	}
	if (out->type == PLAIT_FRAME_CONTROL) {
		json_error_t je;
		out->control = json_loadb((const char *)out->payload, out->len, JSON_REJECT_DUPLICATES, &je);
		if (!json_is_object(out->control) || !json_is_string(json_object_get(out->control, "type"))) {
			bool json = out->control != NULL;
			plait_frame_release(out);
			if (!json)
				return plait_error_set(err, PLAIT_E_INVALID, "frame %zu: a control frame that is not JSON (%s)",
						       no, je.text);
			return plait_error_set(err, PLAIT_E_INVALID,
					       "frame %zu: a control frame that is no object with a string \"type\"", no);
		}
	}
	*n = no;
	return 1;
}
