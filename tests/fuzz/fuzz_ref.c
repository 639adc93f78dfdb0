/* fuzz_ref - image references and platforms (core/ref.h, core/platform.h):
 * parse the input as a reference (format, name, host; a formatted reference
 * must parse again to the same text) and as a platform and platform list
 * (format, normalise, compare). Run: make fuzz (see the README, Fuzzing). */
#include "fuzz.h"

#include "core/error.h"
#include "core/platform.h"
#include "core/ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	char *s = fuzz_cstr(data, size);
	struct plait_error *err = NULL;

	struct plait_ref r = { 0 };
	if (plait_ref_parse(s, &r, &err) == 0) {
		char *f = plait_ref_format(&r);
		char *n = plait_ref_name(&r);
		(void)plait_ref_api_host(&r);
		struct plait_ref r2 = { 0 };
		struct plait_error *err2 = NULL;
		if (plait_ref_parse(f, &r2, &err2) != 0)
			abort(); /* a formatted reference does not parse again */
		char *f2 = plait_ref_format(&r2);
		if (strcmp(f, f2) != 0)
			abort(); /* formatting is not stable */
		free(f2);
		plait_ref_release(&r2);
		struct plait_ref c = { 0 };
		plait_ref_copy(&c, &r);
		plait_ref_release(&c);
		free(f);
		free(n);
	}
	plait_ref_release(&r);
	plait_error_free(err);
	err = NULL;
	(void)plait_tag_is_valid(s);
	(void)plait_host_is_loopback(s);
	(void)plait_docker_hub_is_alias_n(s, size);

	struct plait_platform p = { 0 };
	if (plait_platform_parse(s, &p, &err) == 0) {
		char *f = plait_platform_format(&p);
		struct plait_platform q = { 0 };
		plait_platform_copy(&q, &p);
		plait_platform_normalise(&q);
		(void)plait_platform_equal(&p, &q);
		(void)plait_platform_match_score(&p, &q);
		plait_platform_release(&q);
		free(f);
	}
	plait_platform_release(&p);
	plait_error_free(err);
	err = NULL;

	struct plait_platform *list = NULL;
	size_t n = 0;
	if (plait_platform_parse_list(s, &list, &n, &err) == 0)
		plait_platform_list_free(list, n);
	plait_error_free(err);
	free(s);
	return 0;
}
