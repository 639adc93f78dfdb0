/* cmd/build.c - plait build and plait plan: one Dockerfile, a list of
 * platforms and variants, through the pipeline (cmd/pipeline.h). */
#include <getopt.h>
#include <stdio.h>

#include "pipeline.h"
#include "core/banned.h"

static const char build_usage[] =
	"usage: plait build [options] CONTEXT\n"
	"\n"
	"Build the Dockerfile in CONTEXT (a directory) for every --platform and --variant,\n"
	"without a daemon. Each (variant, platform) is a job; jobs run in parallel, natively\n"
	"where this host runs the platform and through QEMU (binfmt_misc) where it does not.\n"
	"Each variant becomes one OCI image index with an entry per platform (one platform:\n"
	"an image manifest). Nothing is exported, pushed or tagged unless every job succeeded.\n"
	"\n"
	"options:\n"
	"  -f, --file PATH               the Dockerfile (default CONTEXT/Dockerfile)\n"
	"  -t, --tag REF                 name the result (repeatable): pushed with --push, and\n"
	"                                its tag names the image in --output layouts; {variant}\n"
	"                                is replaced by the variant's name\n"
	"      --platform P[,P...]       target platforms (default: this host's, giving a single\n"
	"                                manifest); entries of each index follow this order\n"
	"      --variant NAME[:K=V,...]  build a variant with these build args (repeatable), e.g.\n"
	"                                --variant cpu --variant cuda:BASE=nvidia/cuda:12.4.1-runtime-ubuntu22.04;\n"
	"                                platforms=P[+P] restricts the variant's platforms\n"
	"      --build-arg K=V           set a build argument (repeatable; K alone takes $K)\n"
	"      --target STAGE            build this stage (default: the last)\n"
	"      --label K=V               add a label to the image (repeatable)\n"
	"      --annotation [TYPE:]K=V   index:K=V on the index, manifest:K=V (the default) or\n"
	"                                manifest[linux/arm64]:K=V on the image manifests\n"
	"  -o, --output type=oci,dest=DIR | type=oci-archive,dest=FILE\n"
	"                                write every image there (repeatable), or\n"
	"                                type=docker,dest=FILE  a docker archive for 'docker load'\n"
	"                                                       (one platform)\n"
	"                                type=local,dest=DIR    the root file system (several\n"
	"                                                       platforms: DIR/linux_amd64/...)\n"
	"                                type=tar,dest=FILE     the same as one tar\n"
	"                                (-o DIR is type=local,dest=DIR)\n"
	"      --lint                    run 'plait lint' first; findings of severity error stop\n"
	"                                the build (exit 1)\n" PIPELINE_HELP REGISTRY_CLI_HELP PULL_CLI_HELP
	"  -h, --help                    show this help\n";

static const char plan_usage[] =
	"usage: plait plan [build options] [--format table|json] CONTEXT\n"
	"\n"
	"Show the jobs 'plait build' would run with the same options - target, variant,\n"
	"platform, builder (native or qemu, or a node of --builder, with why), build args,\n"
	"tags - in the order they would start, without building. Every planning check\n"
	"runs: unknown platforms, platforms no builder can run, unreachable nodes, base\n"
	"images missing for a (platform, variant), tags that collide or lack {variant},\n"
	"'latest'. Exit 0 when the plan is good, 2 otherwise.\n"
	"\n"
	"options: those of 'plait build' (see 'plait build --help'), and\n"
	"      --format table|json       the output (default table)\n";

enum {
	OPT_BUILD_ARG = OPT_FIRST_PRIVATE,
	OPT_TARGET,
	OPT_PLATFORM,
	OPT_OUTPUT,
	OPT_LABEL,
	OPT_VARIANT,
	OPT_ANNOTATION,
	OPT_FORMAT,
	OPT_LINT,
};

int build_or_plan(int argc, char **argv, bool plan)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "tag", required_argument, NULL, 't' },
		{ "build-arg", required_argument, NULL, OPT_BUILD_ARG },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "variant", required_argument, NULL, OPT_VARIANT },
		{ "annotation", required_argument, NULL, OPT_ANNOTATION },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "lint", no_argument, NULL, OPT_LINT },
		{ "help", no_argument, NULL, 'h' },
		PIPELINE_OPTIONS,
		REGISTRY_CLI_OPTIONS,
		PULL_CLI_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = plan ? "plan" : "build";
	struct pipeline p = { .req.compression = PLAIT_LAYER_GZIP,
			      .mode = isatty(STDERR_FILENO) ? PROGRESS_TTY : PROGRESS_PLAIN };
	struct plait_target *t = plait_request_add_target(&p.req);
	struct plait_error *err = NULL;
	bool json = false, lint = false;
	int c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+f:t:o:j:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(plan ? plan_usage : build_usage, stdout);
			goto done;
		case 'f':
			free(t->dockerfile);
			t->dockerfile = xstrdup(optarg);
			break;
		case 't':
			plait_strv_push(&t->tags, optarg);
			break;
		case OPT_BUILD_ARG:
			plait_strv_push(&t->build_args, optarg);
			break;
		case OPT_TARGET:
			free(t->stage);
			t->stage = xstrdup(optarg);
			break;
		case OPT_PLATFORM:
			/* A list, and repeated options add up (as in docker buildx). */
			plait_target_add_platforms(t, "--platform", optarg);
			break;
		case 'o':
		case OPT_OUTPUT:
			if (plait_target_add_output(t, optarg, &err) < 0)
				goto fail;
			break;
		case OPT_LABEL:
			plait_strv_push(&t->labels, optarg);
			break;
		case OPT_VARIANT:
			if (plait_target_add_variant(t, optarg, &err) < 0)
				goto fail;
			break;
		case OPT_ANNOTATION:
			if (plait_target_add_annotation(t, optarg, &err) < 0)
				goto fail;
			break;
		case OPT_FORMAT:
			if (!plan) {
				ret = usage_error(cmd, "--format '%s': only 'plait plan' has --format", optarg);
				goto done;
			}
			if (pipeline_format_option(cmd, optarg, &json) < 0) {
				ret = EXIT_USAGE;
				goto done;
			}
			break;
		case OPT_LINT:
			lint = true;
			break;
		default:
			if ((ret = pipeline_other_option(&p, cmd, c, optarg, argv[optind - 1])) != 0)
				goto done;
		}
	}
	if (argc - optind != 1) {
		ret = usage_error(cmd, optind == argc ? "missing CONTEXT (a directory, e.g. '.')"
						      : "expected one CONTEXT, got %d",
				  argc - optind);
		goto done;
	}
	t->context_dir = xstrdup(argv[optind]);
	if (pipeline_finish_options(&p, cmd) < 0) {
		ret = EXIT_USAGE;
		goto done;
	}
	if (lint && (ret = lint_before_build(t->context_dir, t->dockerfile)) != 0)
		goto done;
	ret = pipeline_run(&p, plan, json);
	goto done;
fail:
	ret = report_error(err);
done:
	pipeline_release(&p);
	plait_error_free(err);
	return ret;
}

int cmd_build(int argc, char **argv)
{
	return build_or_plan(argc, argv, false);
}
