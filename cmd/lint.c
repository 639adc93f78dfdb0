/* cmd/lint.c - plait lint: check a Dockerfile (and its build context) against
 * container best practices for ML images. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "common.h"
#include "core/lint.h"
#include "core/banned.h"

static const char lint_usage_head[] =
    "usage: plait lint [-f Dockerfile] [--format text|json] [--fail-on info|warning|error]\n"
    "                  [--large-file-size SIZE] [--explain ID] [CONTEXT]\n"
    "\n"
    "Check a Dockerfile against container best practices for ML images: pinned\n"
    "base images and packages, small layers, cache-friendly ordering, no secrets\n"
    "in ARG/ENV, a non-root user, and a build context without large files or .git.\n"
    "Nothing is built or pulled.\n"
    "\n"
    "  CONTEXT                   the build context (default '.'); large files and\n"
    "                            .git in it are reported unless .dockerignore\n"
    "                            excludes them\n"
    "  -f, --file PATH           the Dockerfile (default CONTEXT/Dockerfile)\n"
    "      --format FORMAT       text (default): 'file:line: ID severity: message (fix)'\n"
    "                            per finding, sorted by line; json: an array of\n"
    "                            {file, line, id, name, severity, message, fix}.\n"
    "                            Findings about the context have line 0.\n"
    "      --fail-on SEVERITY    exit 1 when a finding is at least SEVERITY:\n"
    "                            info, warning or error (default error)\n"
    "      --large-file-size SIZE\n"
    "                            report context files of at least SIZE bytes;\n"
    "                            suffixes K, M, G are powers of 1024 (default 50M)\n"
    "      --explain ID          print what rule ID (or its name) checks, why, and\n"
    "                            how to fix it\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 no finding at or above --fail-on, 1 such findings, 2 the\n"
    "Dockerfile cannot be read or parsed, or the command line is wrong.\n"
    "\n"
    "Rules:\n";

enum { OPT_FORMAT = OPT_FIRST_PRIVATE, OPT_FAIL_ON, OPT_LARGE_FILE_SIZE, OPT_EXPLAIN };

static void print_usage(void)
{
	size_t n;
	const struct plait_lint_rule *r = plait_lint_rules(&n);
	fputs(lint_usage_head, stdout);
	for (size_t i = 0; i < n; i++)
		printf("  %s %-7s %-27s %s\n", r[i].id, plait_lint_severity_name(r[i].severity),
		       r[i].name, r[i].reason);
}


static int explain(const char *id)
{
	const struct plait_lint_rule *r = plait_lint_rule_lookup(id);
	if (!r) {
		size_t n;
		const struct plait_lint_rule *all = plait_lint_rules(&n);
		struct plait_buf b = PLAIT_BUF_INIT;
		for (size_t i = 0; i < n; i++)
			plait_buf_addf(&b, "%s%s", i ? ", " : "", all[i].id);
		int ret =
		    usage_error("lint", "--explain: unknown rule '%s': use one of %s", id, b.buf);
		plait_buf_release(&b);
		return ret;
	}
	printf("%s %s (%s)\n\n", r->id, r->name, plait_lint_severity_name(r->severity));
	printf("why: %s\n", r->reason);
	printf("fix: %s\n\n", r->fix);
	printf("%s\n", r->explain);
	return 0;
}

static void print_text(FILE *out, const struct plait_lint_result *res)
{
	for (size_t i = 0; i < res->n; i++) {
		const struct plait_lint_finding *f = &res->findings[i];
		/* Context findings have no line in the Dockerfile. */
		if (f->line > 0)
			fprintf(out, "%s:%d: ", f->file, f->line);
		else
			fprintf(out, "%s: ", f->file);
		fprintf(out, "%s %s: %s (%s)\n", f->rule->id, plait_lint_severity_name(f->rule->severity),
			f->message, f->rule->fix);
	}
}

int lint_before_build(const char *context, const char *dockerfile)
{
	struct plait_lint_opts o = { .context_dir = context, .dockerfile = dockerfile };
	struct plait_lint_result res = { 0 };
	struct plait_error *err = NULL;
	if (plait_lint_run(&o, &res, &err) < 0) {
		int r = report_error(err);
		plait_error_free(err);
		return r == 1 ? EXIT_USAGE : r;
	}
	print_text(stderr, &res);
	size_t errors = 0;
	enum plait_lint_severity stop = res.error_on_warning ? PLAIT_LINT_WARNING : PLAIT_LINT_ERROR;
	for (size_t i = 0; i < res.n; i++)
		if (res.findings[i].rule->severity >= stop)
			errors++;
	if (errors)
		fprintf(stderr, "plait: error: --lint: %zu finding%s of severity %s in %s; fix %s (see 'plait "
				"lint --explain ID') or build without --lint\n",
			errors, errors == 1 ? "" : "s",
			res.error_on_warning ? "warning or error (the Dockerfile's # check=error=true)" : "error",
			dockerfile ? dockerfile : "the Dockerfile", errors == 1 ? "it" : "them");
	plait_lint_result_release(&res);
	return errors ? 1 : 0;
}

static void print_json(const struct plait_lint_result *res)
{
	json_auto_t *a = json_array();
	for (size_t i = 0; i < res->n; i++) {
		const struct plait_lint_finding *f = &res->findings[i];
		json_t *o = json_object();
		json_object_set_new(o, "file", json_string(f->file));
		json_object_set_new(o, "line", json_integer(f->line));
		json_object_set_new(o, "id", json_string(f->rule->id));
		json_object_set_new(o, "name", json_string(f->rule->name));
		json_object_set_new(o, "severity",
				    json_string(plait_lint_severity_name(f->rule->severity)));
		json_object_set_new(o, "message", json_string(f->message));
		json_object_set_new(o, "fix", json_string(f->rule->fix));
		json_array_append_new(a, o);
	}
	char *s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", s ? s : "[]");
	free(s);
}

int cmd_lint(int argc, char **argv)
{
	int64_t size = 0;
	static const struct option longopts[] = {
	    {"file", required_argument, NULL, 'f'},
	    {"format", required_argument, NULL, OPT_FORMAT},
	    {"fail-on", required_argument, NULL, OPT_FAIL_ON},
	    {"large-file-size", required_argument, NULL, OPT_LARGE_FILE_SIZE},
	    {"explain", required_argument, NULL, OPT_EXPLAIN},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct plait_lint_opts o = {0};
	const char *explain_id = NULL;
	bool json = false;
	int fail_on = PLAIT_LINT_ERROR;
	bool fail_on_given = false;
	int c;
	optind = 1;
	opterr = 0; /* usage_error says it, once */
	while ((c = getopt_long(argc, argv, "+f:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.dockerfile = optarg;
			break;
		case OPT_FORMAT:
			if (streq(optarg, "json"))
				json = true;
			else if (streq(optarg, "text"))
				json = false;
			else
				return usage_error("lint", "--format: '%s' is not text or json",
						   optarg);
			break;
		case OPT_FAIL_ON:
			fail_on = plait_lint_severity_parse(optarg);
			fail_on_given = true;
			if (fail_on < 0)
				return usage_error("lint",
						   "--fail-on: '%s' is not info, warning or error",
						   optarg);
			break;
		case OPT_LARGE_FILE_SIZE:
			if (parse_size(optarg, &size) < 0 || size == 0)
				return usage_error(
				    "lint",
				    "--large-file-size: '%s' is not a size such as 52428800 or 50M",
				    optarg);
			o.large_file_bytes = (uint64_t)size;
			break;
		case OPT_EXPLAIN:
			explain_id = optarg;
			break;
		case 'h':
			print_usage();
			return 0;
		default:
			return usage_error("lint", "unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}
	if (explain_id) {
		if (optind < argc)
			return usage_error("lint", "--explain takes no CONTEXT ('%s')",
					   argv[optind]);
		return explain(explain_id);
	}
	if (argc - optind > 1)
		return usage_error("lint", "unexpected argument '%s': give one CONTEXT",
				   argv[optind + 1]);
	o.context_dir = optind < argc ? argv[optind] : ".";

	struct plait_lint_result res = {0};
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_lint_run(&o, &res, &err) < 0) {
		/* 1 means "findings": anything that stops the check is 2. */
		report_error(err);
		return EXIT_USAGE;
	}
	if (json)
		print_json(&res);
	else
		print_text(stdout, &res);
	int ret = 0;
	/* # check=error=true: warnings fail as well, unless --fail-on asks for less */
	if (res.error_on_warning && !fail_on_given && fail_on > PLAIT_LINT_WARNING)
		fail_on = PLAIT_LINT_WARNING;
	for (size_t i = 0; i < res.n; i++)
		if ((int)res.findings[i].rule->severity >= fail_on)
			ret = 1;
	plait_lint_result_release(&res);
	return ret;
}
