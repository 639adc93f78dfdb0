/* cmd/inspect.c - plait inspect: show an index or a manifest. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "common.h"
#include "core/platform.h"
#include "registry/endpoint.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait inspect [options] REF\n"
	"\n"
	"Show the image or index REF: for an index, one row per entry (platform, digest,\n"
	"size, annotations); for an image, its configuration and layers.\n"
	"REF is a registry reference (registry.example.com/ml/train:1.4.0, busybox@sha256:...),\n"
	"oci:DIR[:TAG] (an OCI layout directory) or oci-archive:FILE[:TAG].\n"
	"\n"
	"options:\n"
	"      --raw                     print the exact bytes of the manifest or index\n"
	"      --format table|json       output format (default table)\n"
	"      --platform P              inspect the image for platform P in an index\n"
	"      --attestations            list the attestations (OCI referrers: provenance, SBOMs)\n"
	"                                of each platform image; with --format json, print them\n" REGISTRY_CLI_HELP PULL_CLI_HELP
	"  -h, --help                    show this help\n";

enum { OPT_RAW = OPT_FIRST_PRIVATE, OPT_FORMAT, OPT_PLATFORM, OPT_ATTESTATIONS };

static json_t *map_json(const struct plait_map *m)
{
	json_t *o = json_object();
	for (size_t i = 0; i < m->n; i++)
		json_object_set_new(o, m->items[i].key, json_string(m->items[i].value));
	return o;
}

static json_t *descriptor_json(const struct plait_descriptor *d)
{
	json_t *o = json_object();
	json_object_set_new(o, "mediaType", json_string(d->media_type ? d->media_type : ""));
	json_object_set_new(o, "digest", json_string(d->digest));
	json_object_set_new(o, "size", json_integer(d->size));
	if (d->platform) {
		_cleanup_free_ char *p = plait_platform_format(d->platform);
		json_object_set_new(o, "platform", json_string(p));
	}
	if (d->artifact_type)
		json_object_set_new(o, "artifactType", json_string(d->artifact_type));
	if (d->annotations.n)
		json_object_set_new(o, "annotations", map_json(&d->annotations));
	return o;
}

static void print_map_inline(const struct plait_map *m)
{
	for (size_t i = 0; i < m->n; i++)
		printf("%s%s=%s", i ? "," : "", m->items[i].key, m->items[i].value);
}

/* What inspect shows first of an index and of a manifest alike. */
static json_t *head_json(const struct plait_endpoint *ep, const struct plait_descriptor *root)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(ep->display));
	json_object_set_new(o, "mediaType", json_string(root->media_type));
	json_object_set_new(o, "digest", json_string(root->digest));
	json_object_set_new(o, "size", json_integer(root->size));
	const char *from = NULL;
	const char *source = plait_registry_endpoint_source(ep, &from);
	if (source) {
		json_t *s = json_object();
		json_object_set_new(s, "name", json_string(source));
		json_object_set_new(s, "mirror", json_boolean(from != NULL));
		if (from)
			json_object_set_new(s, "configuredBy", json_string(from));
		json_object_set_new(o, "source", s);
	}
	return o;
}

static void print_head(const struct plait_endpoint *ep, const struct plait_descriptor *root)
{
	printf("Name:       %s\nMediaType:  %s\nDigest:     %s\nSize:       %lld\n", ep->display,
	       root->media_type, root->digest, (long long)root->size);
	/* where it came from, when that is not the reference itself */
	const char *from = NULL;
	const char *source = plait_registry_endpoint_source(ep, &from);
	if (source && (from || !streq(source, ep->name)))
		printf("Source:     %s%s%s%s\n", source, from ? " (mirror, from " : "", from ? from : "", from ? ")" : "");
}

static int show_index(struct plait_endpoint *ep, const struct plait_descriptor *root,
		      const struct plait_buf *data, bool json, struct plait_error **err)
{
	struct plait_index idx = { 0 };
	int r = plait_index_parse(data->buf, data->len, &idx, err);
	if (r < 0) {
		plait_error_wrap(err, "%s", ep->display);
		return r;
	}
	if (json) {
		json_auto_t *o = head_json(ep, root);
		json_t *a = json_array();
		for (size_t i = 0; i < idx.n_manifests; i++)
			json_array_append_new(a, descriptor_json(&idx.manifests[i]));
		json_object_set_new(o, "manifests", a);
		if (idx.artifact_type)
			json_object_set_new(o, "artifactType", json_string(idx.artifact_type));
		if (idx.annotations.n)
			json_object_set_new(o, "annotations", map_json(&idx.annotations));
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	} else {
		print_head(ep, root);
		if (idx.artifact_type) /* a plait build cache, for one (core/cache_remote.h) */
			printf("ArtifactType: %s\n", idx.artifact_type);
		if (idx.annotations.n) {
			printf("Annotations:\n");
			for (size_t i = 0; i < idx.annotations.n; i++)
				printf("  %s=%s\n", idx.annotations.items[i].key, idx.annotations.items[i].value);
		}
		printf("\n%-16s %-71s %10s  %s\n", "PLATFORM", "DIGEST", "SIZE", "ANNOTATIONS");
		for (size_t i = 0; i < idx.n_manifests; i++) {
			const struct plait_descriptor *d = &idx.manifests[i];
			_cleanup_free_ char *p = d->platform ? plait_platform_format(d->platform) : xstrdup("-");
			char sz[32];
			format_size(d->size, sz);
			printf("%-16s %-71s %10s  ", p, d->digest, sz);
			print_map_inline(&d->annotations);
			putchar('\n');
		}
	}
	plait_index_release(&idx);
	return 0;
}

static int show_manifest(struct plait_endpoint *ep, const struct plait_descriptor *root,
			 const struct plait_buf *data, bool json, struct plait_error **err)
{
	struct plait_manifest m = { 0 };
	struct plait_image_config cfg = { 0 };
	_cleanup_free_ char *platform = NULL;
	bool have_cfg = false;
	int r = plait_manifest_parse(data->buf, data->len, &m, err);
	if (r < 0) {
		plait_error_wrap(err, "%s", ep->display);
		return r;
	}
	enum plait_media_type ct = plait_media_type_from_string(m.config.media_type);
	if (plait_media_type_is_config(ct)) {
		r = plait_endpoint_image_config(ep, &m, &cfg, err);
		if (r < 0)
			goto out;
		have_cfg = true;
	}
	int64_t total = 0;
	for (size_t i = 0; i < m.n_layers; i++)
		total += m.layers[i].size;
	struct plait_platform plat = { .os = cfg.os, .architecture = cfg.architecture, .variant = cfg.variant };
	if (have_cfg && cfg.os && cfg.architecture)
		platform = plait_platform_format(&plat);

	if (json) {
		json_auto_t *o = head_json(ep, root);
		if (platform)
			json_object_set_new(o, "platform", json_string(platform));
		json_object_set_new(o, "config", descriptor_json(&m.config));
		if (have_cfg) {
			json_t *c = json_object();
			if (cfg.created)
				json_object_set_new(c, "created", json_string(cfg.created));
			if (cfg.config.user)
				json_object_set_new(c, "user", json_string(cfg.config.user));
			if (cfg.config.working_dir)
				json_object_set_new(c, "workingDir", json_string(cfg.config.working_dir));
			json_object_set_new(c, "env", plait_strv_to_json(cfg.config.env));
			if (cfg.config.entrypoint)
				json_object_set_new(c, "entrypoint", plait_strv_to_json(cfg.config.entrypoint));
			if (cfg.config.cmd)
				json_object_set_new(c, "cmd", plait_strv_to_json(cfg.config.cmd));
			if (cfg.config.labels.n)
				json_object_set_new(c, "labels", map_json(&cfg.config.labels));
			json_object_set_new(o, "image", c);
		}
		json_t *a = json_array();
		for (size_t i = 0; i < m.n_layers; i++)
			json_array_append_new(a, descriptor_json(&m.layers[i]));
		json_object_set_new(o, "layers", a);
		json_object_set_new(o, "layersSize", json_integer(total));
		if (m.annotations.n)
			json_object_set_new(o, "annotations", map_json(&m.annotations));
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		goto out;
	}

	print_head(ep, root);
	if (platform)
		printf("Platform:   %s\n", platform);
	printf("Config:     %s (%lld bytes)\n", m.config.digest, (long long)m.config.size);
	if (have_cfg) {
		if (cfg.created)
			printf("Created:    %s\n", cfg.created);
		if (cfg.config.user)
			printf("User:       %s\n", cfg.config.user);
		if (cfg.config.working_dir)
			printf("WorkingDir: %s\n", cfg.config.working_dir);
		if (cfg.config.entrypoint) {
			printf("Entrypoint:");
			for (char **p = cfg.config.entrypoint; *p; p++)
				printf(" '%s'", *p);
			putchar('\n');
		}
		if (cfg.config.cmd) {
			printf("Cmd:       ");
			for (char **p = cfg.config.cmd; *p; p++)
				printf(" '%s'", *p);
			putchar('\n');
		}
		for (char **p = cfg.config.env; p && *p; p++)
			printf("Env:        %s\n", *p);
		for (size_t i = 0; i < cfg.config.labels.n; i++)
			printf("Label:      %s=%s\n", cfg.config.labels.items[i].key,
			       cfg.config.labels.items[i].value);
	}
	for (size_t i = 0; i < m.annotations.n; i++)
		printf("Annotation: %s=%s\n", m.annotations.items[i].key, m.annotations.items[i].value);
	char tsz[32];
	format_size(total, tsz);
	printf("\nLAYERS (%zu, %s)\n", m.n_layers, tsz);
	for (size_t i = 0; i < m.n_layers; i++) {
		char sz[32];
		format_size(m.layers[i].size, sz);
		printf("  %-71s %10s  %s\n", m.layers[i].digest, sz, m.layers[i].media_type);
	}
out:
	plait_image_config_release(&cfg);
	plait_manifest_release(&m);
	return r;
}

/* One referrer: its manifest, and (json) the layers' documents. */
static int referrer_json(struct plait_endpoint *ep, const struct plait_descriptor *d, json_t **out,
			 struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf body = PLAIT_BUF_INIT;
	struct plait_manifest m = { 0 };
	_cleanup_free_ char *mt = NULL;
	char digest[PLAIT_DIGEST_MAX];
	int r = ep->ops->get_manifest(ep, d->digest, &body, &mt, digest, err);
	if (r < 0)
		return r;
	r = plait_manifest_parse(body.buf, body.len, &m, err);
	if (r < 0) {
		plait_error_wrap(err, "referrer %s", d->digest);
		return r;
	}
	json_t *o = descriptor_json(d);
	json_t *docs = json_array();
	for (size_t i = 0; i < m.n_layers; i++) {
		_cleanup_buf_ struct plait_buf blob = PLAIT_BUF_INIT;
		r = plait_endpoint_read_blob(ep, &m.layers[i], 64u << 20, &blob, err);
		if (r < 0) {
			json_decref(o);
			json_decref(docs);
			plait_manifest_release(&m);
			return r;
		}
		json_t *doc = json_loadb(blob.buf, blob.len, 0, NULL);
		json_t *l = descriptor_json(&m.layers[i]);
		json_object_set_new(l, "content", doc ? doc : json_stringn(blob.buf, blob.len));
		json_array_append_new(docs, l);
	}
	json_object_set_new(o, "layers", docs);
	plait_manifest_release(&m);
	*out = o;
	return 0;
}

/* The subjects an --attestations listing looks at: the platform images of
 * an index (buildx's in-index attestation entries are listed as such), or
 * the image itself. */
static int show_attestations(struct plait_endpoint *ep, const struct plait_descriptor *root,
			     const struct plait_buf *data, const struct plait_platform *narrowed,
			     bool json, struct plait_error **err)
{
	struct plait_index idx = { 0 };
	struct plait_descriptor *subj = NULL;
	size_t n = 0;
	int r = 0;
	bool is_index = plait_media_type_is_index(plait_media_type_from_string(root->media_type));
	if (is_index) {
		r = plait_index_parse(data->buf, data->len, &idx, err);
		if (r < 0) {
			plait_error_wrap(err, "%s", ep->display);
			return r;
		}
		subj = idx.manifests;
		n = idx.n_manifests;
	} else {
		subj = (struct plait_descriptor *)root;
		n = 1;
	}
	json_auto_t *all = json_array();
	if (!json)
		printf("%-16s %-14s %-71s %-32s %s\n", "PLATFORM", "STORED", "REFERRER", "ARTIFACT TYPE",
		       "SUBJECT");
	for (size_t i = 0; i < n && r >= 0; i++) {
		const struct plait_descriptor *d = &subj[i];
		const char *ref_of = plait_map_get(&d->annotations, "vnd.docker.reference.digest");
		const struct plait_platform *pl = d->platform ? d->platform : narrowed;
		_cleanup_free_ char *p = pl ? plait_platform_format(pl) : xstrdup("-");
		if (ref_of) { /* buildx's in-index form */
			if (json) {
				json_t *o = NULL;
				r = referrer_json(ep, d, &o, err);
				if (r < 0)
					break;
				json_object_set_new(o, "subject", json_string(ref_of));
				json_object_set_new(o, "stored", json_string("in-index"));
				json_array_append_new(all, o);
			} else {
				printf("%-16s %-14s %-71s %-32s %s\n", "-", "in-index", d->digest,
				       d->artifact_type ? d->artifact_type : "attestation-manifest", ref_of);
			}
			continue;
		}
		struct plait_index refs = { 0 };
		bool via_api = false;
		r = plait_registry_endpoint_referrers(ep, d->digest, NULL, &refs, &via_api, err);
		if (r < 0)
			break;
		const char *stored = via_api ? "referrers-api" : "referrers-tag";
		for (size_t k = 0; k < refs.n_manifests && r >= 0; k++) {
			const struct plait_descriptor *x = &refs.manifests[k];
			if (json) {
				json_t *o = NULL;
				r = referrer_json(ep, x, &o, err);
				if (r < 0)
					break;
				json_object_set_new(o, "subject", json_string(d->digest));
				if (pl)
					json_object_set_new(o, "platform", json_string(p));
				json_object_set_new(o, "stored", json_string(stored));
				json_array_append_new(all, o);
			} else {
				printf("%-16s %-14s %-71s %-32s %s\n", p, stored, x->digest,
				       x->artifact_type ? x->artifact_type : "-", d->digest);
			}
		}
		plait_index_release(&refs);
	}
	if (r >= 0 && json) {
		json_dumpf(all, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
	}
	if (is_index)
		plait_index_release(&idx);
	return r;
}

int cmd_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "raw", no_argument, NULL, OPT_RAW },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "attestations", no_argument, NULL, OPT_ATTESTATIONS },
		{ "help", no_argument, NULL, 'h' },
		REGISTRY_CLI_OPTIONS,
		PULL_CLI_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct registry_cli rc = { 0 };
	struct plait_error *err = NULL;
	struct plait_endpoint *ep = NULL;
	struct plait_descriptor root = { 0 };
	struct plait_buf data = PLAIT_BUF_INIT;
	struct plait_platform want = { 0 };
	bool raw = false, json = false, have_platform = false, attestations = false;
	int c, r, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			goto done;
		case OPT_RAW:
			raw = true;
			break;
		case OPT_ATTESTATIONS:
			attestations = true;
			break;
		case OPT_FORMAT:
			if (streq(optarg, "json"))
				json = true;
			else if (!streq(optarg, "table")) {
				ret = usage_error("inspect", "--format: unknown format '%s'; use table or json", optarg);
				goto done;
			}
			break;
		case OPT_PLATFORM:
			if (have_platform) {
				ret = usage_error("inspect", "--platform given twice: inspect one platform at a time");
				goto done;
			}
			if (plait_platform_parse(optarg, &want, &err) < 0) {
				ret = report_error(err);
				goto done;
			}
			have_platform = true;
			break;
		default:
			if ((ret = registry_cli_other_option(&rc, "inspect", c, optarg, argv[optind - 1])) != 0)
				goto done;
		}
	}
	if (optind != argc - 1) {
		ret = usage_error("inspect", optind == argc ? "missing REF" : "expected one REF, got %d",
				  argc - optind);
		goto done;
	}
	if (registry_cli_finish_pull(&rc, "inspect") < 0) {
		ret = EXIT_USAGE;
		goto done;
	}
	if (plait_endpoint_open(argv[optind], false, &rc.opts, &ep, &err) < 0 ||
	    plait_endpoint_resolve(ep, NULL, &root, &data, &err) < 0 ||
	    (have_platform && plait_platform_narrow(ep, &root, &data, &want, 1, &err) < 0)) {
		ret = report_error(err);
		goto done;
	}
	if (attestations && raw) {
		ret = usage_error("inspect", "--attestations and --raw do not go together");
		goto done;
	}
	if (attestations) {
		if (show_attestations(ep, &root, &data, have_platform ? &want : NULL, json, &err) < 0)
			ret = report_error(err);
		goto done;
	}
	if (raw) {
		fwrite(data.buf, 1, data.len, stdout);
		goto done;
	}
	if (plait_media_type_is_index(plait_media_type_from_string(root.media_type)))
		r = show_index(ep, &root, &data, json, &err);
	else
		r = show_manifest(ep, &root, &data, json, &err);
	if (r < 0)
		ret = report_error(err);
done:
	plait_error_free(err);
	plait_platform_release(&want);
	plait_buf_release(&data);
	plait_descriptor_release(&root);
	plait_endpoint_free(ep);
	registry_cli_release(&rc);
	return ret;
}
