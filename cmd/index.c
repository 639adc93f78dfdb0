/* cmd/index.c - plait index create: its options, the registry wiring and
 * the lines it prints; the assembly and publication are core/assemble.h's. */
#include <getopt.h>
#include <stdio.h>

#include "common.h"
#include "core/assemble.h"
#include "registry/endpoint.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait index create -t DST [-t DST...] [options] SRC...\n"
	"\n"
	"Assemble an image index from the images SRC (their platforms are read from their\n"
	"configs; an SRC that is itself an index contributes all its entries), copy every\n"
	"image into each DST's repository, then push the index and tag it. Entries keep the\n"
	"order of SRC. DST and SRC are registry references, oci:DIR[:TAG] or oci-archive:FILE[:TAG].\n"
	"\n"
	"options:\n"
	"  -t, --tag DST                 where to publish the index (repeatable, at least one)\n"
	"      --annotation [index:]K=V  add an annotation to the index (repeatable)\n"
	"      --append                  start from the index the first DST already has; new\n"
	"                                entries replace entries of the same platform\n"
	"      --index-format oci|docker an OCI image index (default) or a Docker manifest list\n"
	"      --source-date-epoch N     set org.opencontainers.image.created to N (also\n"
	"                                $SOURCE_DATE_EPOCH), as 'plait build' does\n"
	"      --from-metadata FILE      add the image a 'plait build --push-by-digest\n"
	"                                --metadata-file FILE' pushed (repeatable; the CI matrix flow);\n"
	"                                of a build with variants, -t NAME:TAG-{variant} makes one\n"
	"                                index per variant from the images of that variant\n"
	TRANSFER_CLI_HELP REGISTRY_CLI_HELP PULL_CLI_HELP
	"  -h, --help                    show this help\n";

enum { OPT_ANNOTATION = OPT_FIRST_PRIVATE, OPT_APPEND, OPT_INDEX_FORMAT, OPT_FROM_METADATA, OPT_EPOCH };

static int open_endpoint(void *ctx, const char *spec, bool for_write, struct plait_endpoint **out,
			 struct plait_error **err)
{
	return plait_endpoint_open(spec, for_write, ctx, out, err);
}

static int index_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "tag", required_argument, NULL, 't' },
		{ "annotation", required_argument, NULL, OPT_ANNOTATION },
		{ "append", no_argument, NULL, OPT_APPEND },
		{ "index-format", required_argument, NULL, OPT_INDEX_FORMAT },
		{ "from-metadata", required_argument, NULL, OPT_FROM_METADATA },
		{ "source-date-epoch", required_argument, NULL, OPT_EPOCH },
		TRANSFER_CLI_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		REGISTRY_CLI_OPTIONS,
		PULL_CLI_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct registry_cli rc = { 0 };
	struct plait_error *err = NULL;
	char **dsts = NULL, **args = NULL;
	struct plait_map annotations = { 0 };
	struct plait_copy_opts copts = { .cancel = &plait_interrupted };
	struct plait_assemble_opts st = { .annotations = &annotations, .format = PLAIT_MT_OCI_INDEX,
					  .copy = &copts, .interrupt = &plait_interrupted, .open = open_endpoint };
	struct plait_metadata_source *meta = NULL; /* from --from-metadata, before the SRC arguments */
	struct plait_assembled *made = NULL;
	size_t n_meta = 0, n_made = 0;
	bool quiet = false;
	int c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+t:j:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			goto done;
		case 't':
			plait_strv_push(&dsts, optarg);
			break;
		case OPT_ANNOTATION: {
			const char *kv = optarg;
			if (startswith(kv, "index:"))
				kv += strlen("index:");
			else if (strchr(kv, ':') && strchr(kv, ':') < strchr(kv, '=') &&
				 (startswith(kv, "manifest") || startswith(kv, "manifest-descriptor") ||
				  startswith(kv, "index-descriptor"))) {
				ret = usage_error("index create",
						  "--annotation '%s': only index annotations can be set here; "
						  "manifest annotations belong to the images", optarg);
				goto done;
			}
			const char *eq = strchr(kv, '=');
			if (!eq || eq == kv) {
				ret = usage_error("index create", "--annotation '%s': expected KEY=VALUE", optarg);
				goto done;
			}
			_cleanup_free_ char *key = xstrndup(kv, (size_t)(eq - kv));
			plait_map_set(&annotations, key, eq + 1);
			break;
		}
		case OPT_APPEND:
			st.append = true;
			break;
		case OPT_FROM_METADATA:
			if (plait_metadata_read(optarg, &meta, &n_meta, &err) < 0)
				goto fail;
			break;
		case OPT_EPOCH:
			if (parse_epoch("index create", "--source-date-epoch", optarg, &st.epoch) < 0) {
				ret = EXIT_USAGE;
				goto done;
			}
			st.have_epoch = true;
			break;
		case OPT_INDEX_FORMAT:
			if (streq(optarg, "oci"))
				st.format = PLAIT_MT_OCI_INDEX;
			else if (streq(optarg, "docker"))
				st.format = PLAIT_MT_DOCKER_LIST;
			else {
				ret = usage_error("index create", "--index-format: unknown format '%s'; use oci or docker",
						  optarg);
				goto done;
			}
			break;
		case 'j':
			if (parse_parallel_option("index create", optarg, &copts.parallel) < 0) {
				ret = EXIT_USAGE;
				goto done;
			}
			break;
		case 'q':
			quiet = true;
			break;
		default:
			if ((ret = registry_cli_other_option(&rc, "index create", c, optarg, argv[optind - 1])) != 0)
				goto done;
		}
	}
	if (!dsts) {
		ret = usage_error("index create", "missing -t DST: say where the index goes");
		goto done;
	}
	for (int i = optind; i < argc; i++)
		plait_strv_push(&args, argv[i]);
	if (!n_meta && !args && !st.append) {
		ret = usage_error("index create", "missing SRC: name at least one image (or --from-metadata FILE)");
		goto done;
	}
	if (source_date_epoch("index create", &st.have_epoch, &st.epoch) < 0) {
		ret = EXIT_USAGE;
		goto done;
	}
	if (registry_cli_finish_pull(&rc, "index create") < 0) {
		ret = EXIT_USAGE;
		goto done;
	}
	st.ctx = &rc.opts;
	if (plait_assemble_create(dsts, meta, n_meta, args, &st, &made, &n_made, &err) < 0)
		goto fail;
	for (size_t i = 0; i < n_made; i++) {
		if (!quiet)
			fprintf(stderr, "index %s with %zu entr%s -> %s\n", made[i].digest, made[i].n_entries,
				made[i].n_entries == 1 ? "y" : "ies", made[i].dst);
		printf("%s\n", made[i].ref);
	}
	goto done;
fail:
	ret = report_error(err);
done:
	plait_error_free(err);
	plait_assembled_free(made, n_made);
	plait_map_release(&annotations);
	plait_strv_free(dsts);
	plait_strv_free(args);
	plait_metadata_sources_free(meta, n_meta);
	registry_cli_release(&rc);
	return ret;
}

int cmd_index(int argc, char **argv)
{
	static const struct plait_subcmd subs[] = {
		{ "create", index_create },
		{ NULL, NULL },
	};
	return run_subcommand("index", usage, subs, argc, argv);
}
