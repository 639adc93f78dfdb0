/* fuzz_bake - bake files (core/bake.h): the input as a docker-bake.json,
 * resolved for the default group and for a named target with a --set, and
 * printed as `bake --print` does. Run: make fuzz (see the README, Fuzzing). */
#include "fuzz.h"

#include "core/bake.h"
#include "core/buf.h"
#include "core/error.h"

static const char *env(const char *name, void *ud)
{
	(void)ud;
	return strcmp(name, "TAG") == 0 ? "v1" : NULL;
}

static void one(const char *s, size_t size, const struct plait_bake_opts *o)
{
	struct plait_bake b = { 0 };
	struct plait_error *err = NULL;
	if (plait_bake_parse(s, size, "docker-bake.json", o, &b, &err) == 0) {
		struct plait_buf out = PLAIT_BUF_INIT;
		plait_bake_print(&b, &out);
		plait_buf_release(&out);
	}
	plait_bake_release(&b);
	plait_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	char *s = fuzz_cstr(data, size);
	struct plait_bake_opts o = { .getenv = env };
	one(s, size, &o);
	static const char *const names[] = { "train", NULL };
	static const char *const sets[] = { "*.platform=linux/arm64", "train.args.X=1", NULL };
	struct plait_bake_opts o2 = { .names = names, .sets = sets, .getenv = env };
	one(s, size, &o2);
	free(s);
	return 0;
}
