/* core/utf8.h - the one UTF-8 validator.
 *
 * Every value that ends up in JSON (image configs, history, annotations,
 * --metadata-file, --progress json) must be valid UTF-8: jansson refuses
 * anything else, and it refuses it late, after the build ran. The readers of
 * user input (the Dockerfile parser, the request, bake) check with this
 * function as they read, so that the message can say where the bytes are.
 *
 * Contract: pure (no allocation, no errno); valid means RFC 3629 UTF-8: no
 * overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no
 * truncated sequence. NUL is a valid character (callers reject it apart). */
#ifndef PLAIT_UTF8_H
#define PLAIT_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True when [s, s + n) is valid UTF-8. Otherwise false, and *bad (if not
 * NULL) gets the offset of the first byte of the first invalid sequence. */
bool plait_utf8_valid(const char *s, size_t n, size_t *bad);

#endif
