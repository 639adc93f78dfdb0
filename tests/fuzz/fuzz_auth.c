/* fuzz_auth - the registry's auth parsers (registry/auth.h, registry/token.h):
 * the input's first line as a WWW-Authenticate challenge and as a token realm,
 * the rest as a token server's JSON answer. Run: make fuzz (see the README,
 * Fuzzing). */
#include "fuzz.h"

#include "core/buf.h"
#include "core/error.h"
#include "registry/auth.h"
#include "registry/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	char *s = fuzz_cstr(data, size);
	char *nl = strchr(s, '\n');
	const char *rest = "";
	if (nl) {
		*nl = '\0';
		rest = nl + 1;
	}
	struct plait_error *err = NULL;

	struct plait_auth_challenge c = { 0 };
	if (plait_auth_parse_challenge(s, &c, &err) == 0 && c.realm) {
		char *realm_host = NULL;
		bool insecure = false;
		struct plait_error *e2 = NULL;
		(void)token_check_realm("registry.example", c.realm, NULL, true, &realm_host,
					&insecure, &e2);
		free(realm_host);
		plait_error_free(e2);
		struct plait_buf scope = PLAIT_BUF_INIT;
		token_scope("a/b", true, "c/d", &scope);
		plait_buf_release(&scope);
	}
	plait_auth_challenge_release(&c);
	plait_error_free(err);
	err = NULL;

	char *realm_host = NULL;
	bool insecure = false;
	(void)token_check_realm("registry.example", s, NULL, false, &realm_host, &insecure, &err);
	free(realm_host);
	plait_error_free(err);
	err = NULL;

	struct plait_buf body = PLAIT_BUF_INIT;
	plait_buf_add(&body, rest, nl ? size - (size_t)(rest - s) : 0);
	char *header = NULL;
	uint64_t until = 0;
	if (token_parse_answer("registry.example", "https://auth.example/token", &body, 1000,
			       &header, &until, &err) == 0)
		free(header);
	plait_error_free(err);
	plait_buf_release(&body);
	free(s);
	return 0;
}
