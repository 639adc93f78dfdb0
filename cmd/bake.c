/* cmd/bake.c - plait bake: the targets of a docker-bake.json file, planned,
 * built and published together (cmd/pipeline.h). */
#include <getopt.h>
#include <stdio.h>

#include "pipeline.h"
#include "core/bake.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait bake [options] [TARGET|GROUP...]\n"
	"\n"
	"Build the targets of a bake file (the JSON form of docker-bake files: variable,\n"
	"group, target with context, dockerfile, args, platforms, tags, target, labels,\n"
	"annotations, output, cache-from, cache-to, attest, inherits, matrix). No name\n"
	"builds the group 'default'.\n"
	"Every target and platform is planned together before anything runs, and nothing\n"
	"is pushed or tagged unless every job of every target succeeded.\n"
	"\n"
	"options:\n"
	"  -f, --file FILE               the bake file (default docker-bake.json); given\n"
	"                                again, the files are merged in order (later wins)\n"
	"      --print                   print the resolved targets as JSON and exit\n"
	"      --plan                    print the jobs (as 'plait plan') and exit\n"
	"      --format table|json       with --plan: the output (default table)\n"
	"      --set TARGET.KEY=VALUE    override a field (TARGET may be '*'; KEY: context,\n"
	"                                dockerfile, target, args.NAME, labels.NAME, tags,\n"
	"                                platform, output, annotations, cache-from, cache-to,\n"
	"                                attest, no-cache) (repeatable)\n"
	"\n"
	"Variables take their defaults unless the environment sets them.\n"
	"\n"
	"options shared with plait build:\n" PIPELINE_HELP REGISTRY_CLI_HELP PULL_CLI_HELP
	"  -h, --help                    show this help\n";

enum { OPT_PRINT = OPT_FIRST_PRIVATE, OPT_SET, OPT_PLAN, OPT_FORMAT };

/* One resolved bake target as a request target. */
static int to_target(const struct plait_bake_target *b, struct plait_request *req, struct plait_target *t,
		     struct plait_error **err)
{
	int r = 0;
	t->name = xstrdup(b->name);
	t->context_dir = xstrdup(b->context);
	t->dockerfile = xstrdup_or_null(b->dockerfile);
	t->stage = xstrdup_or_null(b->target);
	for (char **p = b->platforms; p && *p; p++)
		plait_target_add_platforms(t, "platforms", *p);
	for (char **s = b->tags; s && *s; s++)
		plait_strv_push(&t->tags, *s);
	for (char **s = b->args; s && *s; s++)
		plait_strv_push(&t->build_args, *s);
	for (char **s = b->labels; s && *s; s++)
		plait_strv_push(&t->labels, *s);
	for (char **s = b->annotations; r >= 0 && s && *s; s++)
		r = plait_target_add_annotation(t, *s, err);
	for (char **s = b->outputs; r >= 0 && s && *s; s++)
		r = plait_target_add_output(t, *s, err);
	/* one cache per run: every target's caches are read and written for all */
	for (char **s = b->cache_from; r >= 0 && s && *s; s++)
		r = plait_request_add_cache(req, *s, false, "cache-from", err);
	for (char **s = b->cache_to; r >= 0 && s && *s; s++)
		r = plait_request_add_cache(req, *s, true, "cache-to", err);
	if (r < 0)
		plait_error_wrap(err, "target \"%s\"", b->name);
	return r;
}

/* The targets' attest lists: one setting per run (the publish attaches one
 * kind of attestation to every image), so targets that ask for different
 * ones are refused; --provenance/--sbom/--attest on the command line win. */
static int apply_attest(const struct plait_bake *bake, struct plait_request *req, struct plait_error **err)
{
	const struct plait_bake_target *first = NULL;
	for (size_t i = 0; i < bake->n_targets; i++) {
		const struct plait_bake_target *t = &bake->targets[i];
		if (!t->attest)
			continue;
		if (!first) {
			first = t;
			continue;
		}
		bool same = true;
		size_t k = 0;
		for (; same && t->attest[k] && first->attest[k]; k++)
			same = streq(t->attest[k], first->attest[k]);
		if (!same || t->attest[k] || first->attest[k])
			return plait_error_set(err, PLAIT_E_USAGE,
					       "target \"%s\": attest differs from target \"%s\"'s; plait attaches "
					       "one kind of attestations to every image of a run: give the same attest "
					       "to each, or --provenance/--sbom on the command line",
					       t->name, first->name);
	}
	struct plait_request r = { .provenance = PLAIT_PROVENANCE_DEFAULT };
	for (char **a = first ? first->attest : NULL; a && *a; a++)
		if (plait_request_add_attest(&r, *a, err) < 0) {
			plait_error_wrap(err, "target \"%s\": attest", first->name);
			plait_request_release(&r);
			return -1;
		}
	if (req->provenance == PLAIT_PROVENANCE_DEFAULT)
		req->provenance = r.provenance;
	if (!req->sbom_given && r.sbom_given) {
		req->sbom = r.sbom;
		req->sbom_given = true;
	}
	plait_request_release(&r);
	return 0;
}

int cmd_bake(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "print", no_argument, NULL, OPT_PRINT },
		{ "plan", no_argument, NULL, OPT_PLAN },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "set", required_argument, NULL, OPT_SET },
		{ "help", no_argument, NULL, 'h' },
		PIPELINE_OPTIONS,
		REGISTRY_CLI_OPTIONS,
		PULL_CLI_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct pipeline p = { .req.compression = PLAIT_LAYER_GZIP,
			      .mode = isatty(STDERR_FILENO) ? PROGRESS_TTY : PROGRESS_PLAIN };
	struct plait_bake bake = { 0 };
	struct plait_error *err = NULL;
	char **files = NULL;
	char **sets = NULL, **names = NULL;
	bool print = false, plan = false, json = false;
	int c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+f:j:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			goto done;
		case 'f':
			plait_strv_push(&files, optarg); /* several: merged in order */
			break;
		case OPT_PRINT:
			print = true;
			break;
		case OPT_PLAN:
			plan = true;
			break;
		case OPT_FORMAT:
			if (pipeline_format_option("bake", optarg, &json) < 0) {
				ret = EXIT_USAGE;
				goto done;
			}
			break;
		case OPT_SET:
			plait_strv_push(&sets, optarg);
			break;
		default:
			if ((ret = pipeline_other_option(&p, "bake", c, optarg, argv[optind - 1])) != 0)
				goto done;
		}
	}
	for (int i = optind; i < argc; i++)
		plait_strv_push(&names, argv[i]);
	struct plait_bake_opts bo = { .names = (const char *const *)names, .sets = (const char *const *)sets };
	if (!files)
		plait_strv_push(&files, "docker-bake.json");
	if (plait_bake_load_files((const char *const *)files, &bo, &bake, &err) < 0)
		goto fail;
	if (print) {
		struct plait_buf out = PLAIT_BUF_INIT;
		plait_bake_print(&bake, &out);
		fwrite(out.buf, 1, out.len, stdout);
		if (out.len && out.buf[out.len - 1] != '\n')
			fputc('\n', stdout);
		plait_buf_release(&out);
		goto done;
	}
	for (size_t i = 0; i < bake.n_targets; i++) {
		if (to_target(&bake.targets[i], &p.req, plait_request_add_target(&p.req), &err) < 0)
			goto fail;
		if (bake.targets[i].no_cache)
			p.req.no_cache = true; /* one cache setting per run */
	}
	if (apply_attest(&bake, &p.req, &err) < 0)
		goto fail;
	if (pipeline_finish_options(&p, "bake") < 0) {
		ret = EXIT_USAGE;
		goto done;
	}
	ret = pipeline_run(&p, plan, json);
	goto done;
fail:
	ret = report_error(err);
done:
	plait_bake_release(&bake);
	pipeline_release(&p);
	plait_strv_free(sets);
	plait_strv_free(names);
	plait_strv_free(files);
	plait_error_free(err);
	return ret;
}
