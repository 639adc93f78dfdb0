/* core/frame.h - the frames of the node protocol (plait builder; the README's
 * "Builders on other machines" section): what the local plait and
 * 'plait serve' on a node exchange over ssh's stdin and stdout.
 *
 * Contract:
 *  - a frame is a 12-byte header - the magic "PLT1" (its digit is the frame
 *    format's version), a type byte, three zero bytes, the payload length as
 *    a big-endian 32-bit number - then the payload;
 *  - types: control (one JSON object with a string "type"), content (raw
 *    bytes of the blob or file announced before), end of content (empty);
 *  - a payload is at most PLAIT_FRAME_MAX bytes (bigger content is a run of
 *    content frames);
 *  - reading refuses a wrong magic, a non-zero reserved byte, an unknown type,
 *    an over-long payload, a stream that ends inside a frame, and a control
 *    payload that is not a JSON object with a "type", each with
 *    -PLAIT_E_INVALID naming the frame (its number in the stream) and what
 *    was wrong; a stream that ends between frames is a clean end (0);
 *  - nothing here prints; no state beyond the caller's counter. */
#ifndef PLAIT_FRAME_H
#define PLAIT_FRAME_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define PLAIT_FRAME_MAGIC "PLT1"
#define PLAIT_FRAME_HEADER 12
#define PLAIT_FRAME_MAX (16u * 1024 * 1024)

enum plait_frame_type {
	PLAIT_FRAME_CONTROL = 1,
	PLAIT_FRAME_CONTENT = 2,
	PLAIT_FRAME_END = 3,
};

struct plait_frame {
	enum plait_frame_type type;
	uint8_t *payload; /* NULL when empty; caller frees (plait_frame_release) */
	size_t len;
	json_t *control;  /* the parsed object of a control frame, else NULL */
};

/* The header of a frame of type t and length len. */
void plait_frame_header(uint8_t out[PLAIT_FRAME_HEADER], enum plait_frame_type t, uint32_t len);
/* Write one frame to fd. -PLAIT_E_INVALID when len > PLAIT_FRAME_MAX, -PLAIT_E_IO on write errors. */
int plait_frame_write(int fd, enum plait_frame_type t, const void *payload, size_t len, struct plait_error **err);
/* A control frame: msg (an object with a string "type") as compact JSON. */
int plait_frame_write_control(int fd, const json_t *msg, struct plait_error **err);
/* Read the next frame from fd: 1 with *out filled, 0 at a clean end, <0 on
 * an error. *n counts the frames read so far (for the messages). */
int plait_frame_read(int fd, struct plait_frame *out, size_t *n, struct plait_error **err);
void plait_frame_release(struct plait_frame *f);

#endif
