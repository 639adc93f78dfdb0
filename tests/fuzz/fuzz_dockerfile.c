/* fuzz_dockerfile - the Dockerfile parser and variable expansion
 * (core/dockerfile.h, core/expand.h): parse the input as a Dockerfile, expand
 * every argument, key/value and heredoc of what parsed, and expand the input
 * itself as one word and as words. Run: make fuzz (see the README, Fuzzing). */
#include "fuzz.h"

#include "core/dockerfile.h"
#include "core/error.h"
#include "core/expand.h"
#include "core/strv.h"

static const char *lookup(const char *name, void *ud)
{
	(void)ud;
	if (strcmp(name, "HOME") == 0)
		return "/root";
	if (strcmp(name, "EMPTY") == 0)
		return "";
	if (strcmp(name, "X") == 0)
		return "a b  c";
	return NULL;
}

static void expand_one(const char *text, char escape, bool skip_unset)
{
	struct plait_expand_opts o = { .escape = escape, .skip_unset = skip_unset,
				       .filename = "Dockerfile", .line = 1 };
	struct plait_error *err = NULL;
	char *out = NULL;
	if (plait_expand_word(text, &o, lookup, NULL, &out, &err) == 0)
		free(out);
	plait_error_free(err);
	err = NULL;
	char **words = NULL;
	size_t n = 0;
	if (plait_expand_words(text, &o, lookup, NULL, &words, &n, &err) == 0)
		plait_strv_free(words);
	plait_error_free(err);
}

static void expand_instr(const struct plait_df_instr *in, char escape)
{
	for (size_t i = 0; i < in->n_args; i++)
		expand_one(in->args[i], escape, false);
	for (size_t i = 0; i < in->n_kvs; i++)
		if (in->kvs[i].value)
			expand_one(in->kvs[i].value, escape, false);
	for (size_t i = 0; i < in->n_heredocs; i++) {
		char *body = plait_df_heredoc_data(&in->heredocs[i]);
		struct plait_error *err = NULL;
		char *out = NULL;
		if (body && plait_expand_heredoc(body, lookup, NULL, &out, &err) == 0)
			free(out);
		plait_error_free(err);
		free(body);
	}
	if (in->image)
		expand_one(in->image, escape, true);
	if (in->onbuild)
		expand_instr(in->onbuild, escape);
	if (in->kind == PLAIT_DF_RUN) {
		char *script = NULL;
		const char *file_name = NULL;
		plait_df_run_script(in, &script, &file_name);
		free(script);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	struct plait_dockerfile df = { 0 };
	struct plait_error *err = NULL;
	if (plait_dockerfile_parse((const char *)data, size, "Dockerfile", &df, &err) == 0) {
		for (size_t i = 0; i < df.n_instrs; i++)
			expand_instr(&df.instrs[i], df.escape);
		for (size_t i = 0; i < df.n_stages; i++)
			(void)plait_dockerfile_find_stage(&df, df.stages[i].name ? df.stages[i].name : "0");
	}
	plait_dockerfile_release(&df);
	plait_error_free(err);

	char *s = fuzz_cstr(data, size);
	expand_one(s, '\\', false);
	expand_one(s, '`', true);
	free(s);
	return 0;
}
