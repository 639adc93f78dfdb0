/* fuzz_dockerignore - .dockerignore patterns (core/dockerignore.h): parse the
 * input as an ignore file and match each of its lines (and some fixed paths)
 * against it; glob-validate and glob-match its first line against each line;
 * clean each line as a path. Run: make fuzz (see the README, Fuzzing). */
#include "fuzz.h"

#include "core/buf.h"
#include "core/dockerignore.h"
#include "core/error.h"

static const char *const fixed[] = { "Dockerfile", ".dockerignore", "a/b/c", "node_modules/x",
				     "dir/", "", ".", "..", "a/../b", NULL };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 16 * 1024)
		return 0;
	char *s = fuzz_cstr(data, size);
	struct plait_ignore *ig = NULL;
	struct plait_error *err = NULL;
	int rc = plait_ignore_parse(s, size, ".dockerignore", &ig, &err);
	plait_error_free(err);

	char *first = NULL;
	for (char *line = s, *next; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!first)
			first = line;
		if (rc == 0 && ig) {
			(void)plait_ignore_match(ig, line);
			(void)plait_ignore_may_include_below(ig, line);
		}
		const char *why = NULL;
		if (plait_glob_validate(first, &why) == 0)
			(void)plait_glob_match(first, line);
		(void)plait_glob_has_wildcards(line);
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_path_clean(line, &b);
		plait_buf_release(&b);
	}
	if (rc == 0 && ig)
		for (size_t i = 0; fixed[i]; i++)
			(void)plait_ignore_match(ig, fixed[i]);
	plait_ignore_free(ig);
	free(s);
	return 0;
}
