/* cmd/copy.c - plait copy: copy images between registries, layouts and archives. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>

#include "common.h"
#include "core/copy.h"
#include "core/platform.h"
#include "platforms/host.h"
#include "registry/endpoint.h"
#include "core/ref.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait copy [options] SRC DST\n"
	"\n"
	"Copy an image or a multi-platform index from SRC to DST, preserving digests.\n"
	"SRC and DST are registry references (registry.example.com/ml/train:1.4.0),\n"
	"oci:DIR[:TAG] (an OCI layout directory, created if missing) or oci-archive:FILE[:TAG].\n"
	"Without --all or --platform, an index is narrowed to the image for this host's\n"
	"platform (as skopeo does). Blobs DST already has are skipped; blobs in another\n"
	"repository of the same registry are mounted instead of uploaded. DST without a tag\n"
	"gets SRC's tag; nothing is tagged unless every blob and manifest arrived.\n"
	"\n"
	"options:\n"
	"  -a, --all                     copy the whole index (byte-identical), with the\n"
	"                                referrers (attestations, signatures) of the index and\n"
	"                                of each image, and cosign's sha256-HEX.sig/.att tags\n"
	"      --no-referrers            with --all: leave the referrers behind\n"
	"      --platform P[,P...]       copy the images for these platforms only: one platform\n"
	"                                copies its image, several a new index of just those\n"
	TRANSFER_CLI_HELP REGISTRY_CLI_HELP PULL_CLI_HELP
	"  -h, --help                    show this help\n"
	"\n"
	"On success the destination reference with its digest is printed on stdout.\n";

enum { OPT_PLATFORM = OPT_FIRST_PRIVATE, OPT_NO_REFERRERS };

static void on_progress(const struct plait_copy_event *ev, void *ctx)
{
	(void)ctx;
	char sz[32];
	format_size(ev->size, sz);
	switch (ev->kind) {
	case PLAIT_COPY_BLOB_SKIPPED:
		fprintf(stderr, "blob %s %s: already there\n", ev->digest, sz);
		break;
	case PLAIT_COPY_BLOB_MOUNTED:
		fprintf(stderr, "blob %s %s: mounted\n", ev->digest, sz);
		break;
	case PLAIT_COPY_BLOB_COPIED:
		fprintf(stderr, "blob %s %s: copied\n", ev->digest, sz);
		break;
	case PLAIT_COPY_MANIFEST_PUT:
		fprintf(stderr, "manifest %s: written\n", ev->digest);
		break;
	case PLAIT_COPY_TAGGED:
		fprintf(stderr, "tag %s -> %s\n", ev->tag, ev->digest);
		break;
	}
}

/* The tag to give DST: its own, else SRC's when that is a tag. A digest DST
 * must match. A registry DST must end up with a tag or a digest: an untagged
 * push leaves an image nothing can find. */
static int destination_tag(const struct plait_endpoint *src, const struct plait_endpoint *dst,
			   const struct plait_descriptor *root, const char **tag, struct plait_error **err)
{
	*tag = NULL;
	if (dst->ref && strchr(dst->ref, ':')) {
		if (!streq(dst->ref, root->digest))
			return plait_error_set(err, PLAIT_E_USAGE,
					       "destination '%s' names digest %s, but the image is %s",
					       dst->display, dst->ref, root->digest);
		return 0;
	}
	if (dst->ref)
		*tag = dst->ref;
	else if (src->ref && !strchr(src->ref, ':'))
		*tag = src->ref;
	else if (!src->ref && streq(src->ops->kind, "registry"))
		*tag = "latest"; /* a bare source name was read as :latest */
	if (!*tag && !dst->store)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "destination '%s' needs a tag (the source has none to pass on): "
				       "name one, e.g. '%s:1.0', or push by digest with '%s@%s'",
				       dst->display, dst->name, dst->name, root->digest);
	return 0;
}

int cmd_copy(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "no-referrers", no_argument, NULL, OPT_NO_REFERRERS },
		TRANSFER_CLI_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		REGISTRY_CLI_OPTIONS,
		PULL_CLI_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct registry_cli rc = { 0 };
	struct plait_error *err = NULL;
	struct plait_endpoint *src = NULL, *dst = NULL;
	struct plait_descriptor root = { 0 };
	struct plait_buf data = PLAIT_BUF_INIT;
	struct plait_platform *want = NULL;
	size_t n_want = 0;
	struct plait_copy_opts copts = { .progress = on_progress, .cancel = &plait_interrupted };
	struct plait_copy_stats stats = { 0 };
	bool all = false, no_referrers = false;
	const char *tag = NULL;
	int c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+aj:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			goto done;
		case 'a':
			all = true;
			break;
		case OPT_NO_REFERRERS:
			no_referrers = true;
			break;
		case OPT_PLATFORM: {
			/* Repeated --platform options add up, as in docker buildx. */
			struct plait_platform *more = NULL;
			size_t n_more = 0;
			if (plait_platform_parse_list(optarg, &more, &n_more, &err) < 0) {
				ret = report_error(err);
				goto done;
			}
			want = xrealloc(want, (n_want + n_more) * sizeof(*want));
			memcpy(want + n_want, more, n_more * sizeof(*want));
			n_want += n_more;
			free(more); /* its platforms now belong to want */
			break;
		}
		case 'j':
			if (parse_parallel_option("copy", optarg, &copts.parallel) < 0) {
				ret = EXIT_USAGE;
				goto done;
			}
			break;
		case 'q':
			copts.progress = NULL;
			break;
		default:
			if ((ret = registry_cli_other_option(&rc, "copy", c, optarg, argv[optind - 1])) != 0)
				goto done;
		}
	}
	if (all && want) {
		ret = usage_error("copy", "--all and --platform exclude each other");
		goto done;
	}
	if (argc - optind != 2) {
		bool late_option = false;
		for (int i = optind; i < argc; i++)
			late_option = late_option || argv[i][0] == '-';
		ret = usage_error("copy", "expected SRC and DST, got %d argument%s%s", argc - optind,
				  argc - optind == 1 ? "" : "s",
				  late_option ? " (options go before SRC and DST)" : "");
		goto done;
	}
	if (!plait_endpoint_spec_is_local(argv[optind + 1])) {
		struct plait_ref dref = { 0 };
		bool both = plait_ref_parse(argv[optind + 1], &dref, NULL) == 0 && dref.tag && dref.digest;
		plait_ref_release(&dref);
		if (both) {
			ret = usage_error("copy",
					  "DST '%s' has both a tag and a digest: give the tag to set, or the digest "
					  "to check, not both",
					  argv[optind + 1]);
			goto done;
		}
	}
	if (registry_cli_finish_pull(&rc, "copy") < 0) {
		ret = EXIT_USAGE;
		goto done;
	}

	if (plait_endpoint_open(argv[optind], false, &rc.opts, &src, &err) < 0 ||
	    plait_endpoint_resolve(src, NULL, &root, &data, &err) < 0)
		goto fail;
	if (!all) {
		bool is_index = plait_media_type_is_index(plait_media_type_from_string(root.media_type));
		bool host_default = !want && is_index;
		if (host_default) {
			want = xcalloc(1, sizeof(*want));
			plait_platform_host(want);
			n_want = 1;
		}
		if (want && plait_platform_narrow(src, &root, &data, want, n_want, &err) < 0) {
			if (host_default && err->code == PLAIT_E_NOT_FOUND) {
				_cleanup_free_ char *msg = TAKE_PTR(err->msg);
				_cleanup_free_ char *h = plait_platform_format(want);
				plait_error_set(&err, PLAIT_E_NOT_FOUND,
						"%s (%s is this host's platform: copy every platform with --all, "
						"or pick some with --platform)", msg, h);
			}
			goto fail;
		}
	}
	if (plait_endpoint_open(argv[optind + 1], true, &rc.opts, &dst, &err) < 0 ||
	    destination_tag(src, dst, &root, &tag, &err) < 0)
		goto fail;
	bool referrers = all && !no_referrers && src->ops->list_referrers && dst->ops->put_referrer;
	/* with referrers: the image by digest, its referrers, then the tag */
	if (plait_copy_image(src, dst, &root, data.buf, data.len, referrers ? NULL : tag, &copts, &stats,
			     &err) < 0)
		goto fail;
	if (referrers && (plait_copy_referrers(src, dst, &root, data.buf, data.len, &copts, &stats, &err) < 0 ||
			  (tag && *tag && dst->ops->tag(dst, tag, &root, data.buf, data.len, &err) < 0)))
		goto fail;
	/* An untagged image in a layout is still listed in index.json, or nothing could find it. */
	if (!tag && dst->store && dst->ops->tag(dst, NULL, &root, data.buf, data.len, &err) < 0)
		goto fail;
	if (plait_endpoint_commit(dst, &err) < 0)
		goto fail;

	if (copts.progress) {
		char sz[32];
		format_size(stats.bytes_copied, sz);
		fprintf(stderr, "copied %s to %s: %zu blobs copied (%s), %zu already there, %zu mounted, %zu manifests\n",
			src->display, dst->display, stats.blobs_copied, sz, stats.blobs_skipped,
			stats.blobs_mounted, stats.manifests);
	}
	{
		_cleanup_free_ char *result = plait_endpoint_ref_string(dst, root.digest);
		printf("%s\n", result);
	}
	goto done;
fail:
	ret = report_error(err);
done:
	plait_error_free(err);
	plait_platform_list_free(want, n_want);
	plait_buf_release(&data);
	plait_descriptor_release(&root);
	plait_endpoint_free(src);
	plait_endpoint_free(dst);
	registry_cli_release(&rc);
	return ret;
}
