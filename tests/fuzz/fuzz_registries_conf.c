/* fuzz_registries_conf - the TOML subset reader (core/toml.h) and
 * registries.conf's meaning (registry/registries_conf.h): parse the input;
 * every error must name "fuzz.conf:LINE:COL" (or "fuzz.conf:LINE" for the
 * entries), every value a position inside the input; a configuration that
 * loads must answer pull and push questions for a few references without
 * failing in a way that is not a blocked entry or a bad location.
 * Run: make fuzz (see the README, Fuzzing). */
#include "fuzz.h"

#include "core/error.h"
#include "core/toml.h"
#include "registry/registries_conf.h"

static unsigned lines_in(const uint8_t *data, size_t size)
{
	unsigned n = 1;
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n')
			n++;
	return n;
}

static void check_table(const struct plait_toml_table *t, unsigned max_line)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct plait_toml_value *v = &t->entries[i].v;
		if (v->line < 1 || v->line > max_line || v->col < 1)
			abort(); /* a position outside the input */
		if (v->type == PLAIT_TOML_STRING && !v->str)
			abort();
		if (v->type == PLAIT_TOML_STRINGS && !v->strings)
			abort();
		if (v->type == PLAIT_TOML_TABLE)
			check_table(v->table, max_line);
		for (size_t j = 0; v->type == PLAIT_TOML_TABLES && j < v->n_tables; j++)
			check_table(v->tables[j], max_line);
	}
}

static const char *const refs[] = {
	"busybox:1.36",
	"docker.io/library/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	"example.com/foo/image:latest",
	"localhost:5000/a/b:c",
	"a.example.org/x",
	"registry.com/image",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	unsigned max_line = lines_in(data, size);
	struct plait_error *err = NULL;
	struct plait_toml_table *t = NULL;
	if (plait_toml_parse("fuzz.conf", (const char *)data, size, &t, &err) == 0) {
		check_table(t, max_line);
		plait_toml_free(t);
	} else if (!err || strncmp(err->msg, "fuzz.conf:", 10) != 0) {
		abort(); /* an error that does not say where */
	}
	plait_error_clear(&err);

	struct plait_registries_conf *c = plait_registries_conf_new();
	if (plait_registries_conf_load_text(c, "fuzz.conf", (const char *)data, size, &err) < 0) {
		if (!err || strncmp(err->msg, "fuzz.conf:", 10) != 0)
			abort();
		plait_error_clear(&err);
	}
	for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
		struct plait_ref ref = { 0 };
		if (plait_ref_parse(refs[i], &ref, NULL) < 0)
			abort();
		struct plait_pull_source *s = NULL;
		size_t n = 0;
		if (plait_registries_conf_pull_sources(c, &ref, &s, &n, &err) == 0) {
			if (n == 0 || s[n - 1].mirror)
				abort(); /* the location must come last */
			plait_pull_sources_free(s, n);
		} else if (!err || !strstr(err->msg, "fuzz.conf:")) {
			abort(); /* blocked or a bad location: both name the file */
		}
		plait_error_clear(&err);
		(void)plait_registries_conf_check_push(c, &ref, &err);
		plait_error_clear(&err);
		(void)plait_registries_conf_host_insecure(c, ref.domain);
		plait_ref_release(&ref);
	}
	plait_registries_conf_free(c);
	return 0;
}
