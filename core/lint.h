/* core/lint.h - Dockerfile best-practice checks for ML images (`plait lint`).
 *
 * Contract:
 *  - plait_lint_run parses the Dockerfile (core/dockerfile.h) and checks it,
 *    with the build context (for large files not excluded by .dockerignore);
 *    findings come sorted by line, then rule ID.
 *  - A Dockerfile that cannot be parsed is -PLAIT_E_INVALID (the parse error,
 *    file:line); a finding is not an error.
 *  - The Dockerfile's `# check=skip=RULE[,RULE…]|all;error=true|false`
 *    directive (BuildKit's) drops the rules it names (plait's IDs or names,
 *    or the BuildKit check names that have a plait counterpart; other
 *    BuildKit check names are accepted and mean nothing here); error=true
 *    sets error_on_warning. A comment line `# plait-lint ignore=ID[,ID…]`
 *    drops those findings of the instruction right below it (comments and
 *    blank lines may come between). An unknown key or rule is
 *    -PLAIT_E_INVALID, named with the Dockerfile and line.
 *  - Each rule has a stable ID ("PL001"...), a severity, a one-line reason and
 *    a fix hint (plait_lint_rules()); messages name what was found ("apt-get
 *    install without --no-install-recommends").
 *  - Nothing here prints. */
#ifndef PLAIT_LINT_H
#define PLAIT_LINT_H

#include "buf.h"
#include "error.h"

enum plait_lint_severity { PLAIT_LINT_INFO, PLAIT_LINT_WARNING, PLAIT_LINT_ERROR };

struct plait_lint_rule {
	const char *id;      /* "PL001" */
	const char *name;    /* "base-image-unpinned" */
	enum plait_lint_severity severity;
	const char *reason;  /* one line: why it matters */
	const char *fix;     /* one line: what to do */
	const char *explain; /* a paragraph with a bad and a good example */
};

struct plait_lint_finding {
	const struct plait_lint_rule *rule;
	char *file;
	int line;
	char *message;
};

struct plait_lint_opts {
	const char *context_dir;   /* NULL: skip context checks */
	const char *dockerfile;    /* path; NULL = <context>/Dockerfile */
	uint64_t large_file_bytes; /* 0 = default 50 MiB */
};

struct plait_lint_result {
	struct plait_lint_finding *findings;
	size_t n;
	/* `# check=error=true`: the Dockerfile asks that warnings fail too */
	bool error_on_warning;
};

const struct plait_lint_rule *plait_lint_rules(size_t *n);
const struct plait_lint_rule *plait_lint_rule_lookup(const char *id_or_name);
const char *plait_lint_severity_name(enum plait_lint_severity s);
/* "info"|"warning"|"error" -> severity; -1 when unknown. */
int plait_lint_severity_parse(const char *s);

/* Whether a variable's name says it holds a secret (HF_TOKEN, DB_PASSWORD,
 * OPENAI_API_KEY; not TOKENIZERS_PARALLELISM, GPG_KEY, PASSWORD_FILE): the
 * secret-in-arg-env rule, and what provenance leaves out. */
bool plait_lint_secret_name(const char *name);

int plait_lint_run(const struct plait_lint_opts *o, struct plait_lint_result *out,
		   struct plait_error **err);
void plait_lint_result_release(struct plait_lint_result *r);

#endif
