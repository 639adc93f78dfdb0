/* fuzz_http - the registry client's header handling (registry/http.h,
 * registry/client.h): each input line is a response header line taken as the
 * transfer takes it; then the Location is resolved against a request URL, and
 * Range and Content-Range are read as the upload and download paths read them.
 * Run: make fuzz (see the README, Fuzzing). */
#include "fuzz.h"

#include "registry/client.h"
#include "registry/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16 * 1024)
		return 0;
	struct plait_http_resp resp = PLAIT_HTTP_RESP_INIT;
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl + 1 - p) : (size_t)(end - p);
		/* curl hands over a copy of exactly the line, not NUL-terminated */
		char *line = malloc(len ? len : 1);
		if (!line)
			abort();
		memcpy(line, p, len);
		plait_http_parse_header_line(&resp, line, len);
		free(line);
		p += len;
	}
	static const char *const bases[] = { "https://r.example/v2/a/blobs/uploads/",
					     "http://127.0.0.1:5000/v2/x", "https://h" };
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		if (resp.location)
			free(plait_http_resolve_url(bases[i], resp.location));
	}
	int64_t next = registry_range_next(resp.range);
	if (next < -1)
		abort();
	int64_t from = registry_content_range_start(resp.content_range);
	if (from < -1)
		abort();
	(void)plait_http_reason(resp.status);
	plait_http_resp_release(&resp);
	return 0;
}
