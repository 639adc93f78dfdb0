/* tests/fuzz/fuzz.h - what the libFuzzer harnesses share: the input as a
 * NUL-terminated heap string (the library's parsers take C strings). */
#ifndef PLAIT_FUZZ_H
#define PLAIT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
