/* cmd/index.c - plait index create: assemble a multi-platform index from
 * single-platform images (or other indexes) and publish it. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "common.h"
#include "core/copy.h"
#include "platforms/platform.h"
#include "registry/endpoint.h"
#include "registry/ref.h"
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
	"                                --metadata-file FILE' pushed (repeatable; the CI matrix flow)\n"
	"  -j, --parallel N              blobs transferred at once (default 4)\n"
	"  -q, --quiet                   no progress lines\n" REGISTRY_CLI_HELP
	"  -h, --help                    show this help\n";

enum { OPT_ANNOTATION = OPT_FIRST_PRIVATE, OPT_APPEND, OPT_INDEX_FORMAT, OPT_FROM_METADATA, OPT_EPOCH };

/* A --metadata-file of `plait build --push-by-digest`: the image it pushed,
 * as "repository@digest" (the repository from its first -t name). */
static int source_from_metadata(const char *file, char **out, struct plait_error **err)
{
	json_error_t jerr;
	json_auto_t *m = json_load_file(file, 0, &jerr);
	if (!m)
		return plait_error_set(err, PLAIT_E_USAGE, "--from-metadata '%s': %s (line %d)", file, jerr.text,
				       jerr.line);
	const char *digest = json_string_value(json_object_get(m, "containerimage.digest"));
	const char *names = json_string_value(json_object_get(m, "image.name"));
	if (!digest || plait_digest_validate(digest, NULL) < 0 || !names || !*names)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--from-metadata '%s': no containerimage.digest and image.name in it "
				       "(write it with 'plait build --metadata-file')", file);
	_cleanup_free_ char *first = xstrndup(names, strcspn(names, ","));
	struct plait_ref ref = { 0 };
	int r = plait_ref_parse(first, &ref, err);
	if (r < 0)
		return plait_error_wrap(err, "--from-metadata '%s'", file), r;
	_cleanup_free_ char *name = plait_ref_name(&ref);
	plait_ref_release(&ref);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s@%s", name, digest);
	*out = plait_buf_detach(&b, NULL);
	return 0;
}

struct entry {
	struct plait_descriptor desc; /* with platform */
	struct plait_buf bytes;       /* the manifest's exact bytes */
	struct plait_endpoint *src;   /* borrowed; NULL for entries kept from --append */
	const char *src_name;
};

struct entries {
	struct entry *v;
	size_t n, alloc;
};

static void entries_release(struct entries *e)
{
	for (size_t i = 0; i < e->n; i++) {
		plait_descriptor_release(&e->v[i].desc);
		plait_buf_release(&e->v[i].bytes);
	}
	free(e->v);
	memset(e, 0, sizeof(*e));
}

static struct entry *entries_add(struct entries *e)
{
	PLAIT_ALLOC_GROW(e->v, e->n + 1, e->alloc);
	struct entry *x = &e->v[e->n++];
	memset(x, 0, sizeof(*x));
	plait_buf_init(&x->bytes, 0);
	return x;
}

static void entries_remove(struct entries *e, size_t i)
{
	plait_descriptor_release(&e->v[i].desc);
	plait_buf_release(&e->v[i].bytes);
	memmove(&e->v[i], &e->v[i + 1], (e->n - i - 1) * sizeof(e->v[0]));
	e->n--;
}

/* Attestations (as buildx attaches them: platform unknown/unknown, annotated
 * with the image they describe) ride along with their image: they are not a
 * platform of their own. */
#define REFERENCE_TYPE "vnd.docker.reference.type"
#define REFERENCE_DIGEST "vnd.docker.reference.digest"
static bool is_attachment(const struct plait_descriptor *d)
{
	const char *t = plait_map_get(&d->annotations, REFERENCE_TYPE);
	if (t && streq(t, "attestation-manifest"))
		return true;
	return d->platform && streq_ptr(d->platform->os, "unknown") &&
	       streq_ptr(d->platform->architecture, "unknown");
}

static ssize_t find_platform(const struct entries *e, const struct plait_platform *p)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].desc.platform && !is_attachment(&e->v[i].desc) &&
		    plait_platform_equal(e->v[i].desc.platform, p))
			return (ssize_t)i;
	return -1;
}

static ssize_t find_digest(const struct entries *e, const char *digest)
{
	for (size_t i = 0; i < e->n; i++)
		if (streq(e->v[i].desc.digest, digest))
			return (ssize_t)i;
	return -1;
}

/* Sources: the same image twice is kept once; two images for one platform are refused. */
static int check_added(struct entries *added, struct plait_error **err)
{
	for (size_t i = 0; i < added->n;) {
		const struct plait_descriptor *d = &added->v[i].desc;
		ssize_t same = find_digest(added, d->digest);
		if (same >= 0 && (size_t)same < i) {
			entries_remove(added, i);
			continue;
		}
		for (size_t j = 0; j < i && d->platform && !is_attachment(d); j++) {
			const struct plait_descriptor *o = &added->v[j].desc;
			if (o->platform && !is_attachment(o) && plait_platform_equal(d->platform, o->platform)) {
				_cleanup_free_ char *p = plait_platform_format(d->platform);
				return plait_error_set(err, PLAIT_E_USAGE,
						       "two images for %s: '%s' (%s) and '%s' (%s); an index holds one image per platform",
						       p, added->v[j].src_name, o->digest, added->v[i].src_name,
						       d->digest);
			}
		}
		i++;
	}
	return 0;
}

/* --append: drop from the base what the sources replace: images of the same
 * platform (or digest), and the attestations of the images dropped. */
static void drop_replaced(struct entries *base, const struct entries *added)
{
	bool *drop = xcalloc(base->n + 1, sizeof(bool));
	for (size_t i = 0; i < base->n; i++) {
		const struct plait_descriptor *d = &base->v[i].desc;
		drop[i] = find_digest(added, d->digest) >= 0 ||
			  (!is_attachment(d) && d->platform && find_platform(added, d->platform) >= 0);
	}
	for (size_t i = 0; i < base->n; i++) {
		const char *of = plait_map_get(&base->v[i].desc.annotations, REFERENCE_DIGEST);
		ssize_t k = of && is_attachment(&base->v[i].desc) ? find_digest(base, of) : -1;
		if (k >= 0 && drop[k])
			drop[i] = true;
	}
	for (size_t i = base->n; i-- > 0;)
		if (drop[i])
			entries_remove(base, i);
	free(drop);
}

/* A single-platform image: its platform comes from its config. */
static int add_manifest(struct entries *e, struct plait_endpoint *ep, const char *name,
			const struct plait_descriptor *root, struct plait_buf *data, struct plait_error **err)
{
	struct plait_manifest m = { 0 };
	struct plait_image_config cfg = { 0 };
	int r = plait_manifest_parse(data->buf, data->len, &m, err);
	if (r < 0) {
		plait_error_wrap(err, "%s", name);
		goto out;
	}
	r = plait_endpoint_image_config(ep, &m, &cfg, err);
	if (r < 0)
		goto out;
	if (!cfg.os || !cfg.architecture) {
		r = plait_error_set(err, PLAIT_E_INVALID,
				    "%s: its config names no os and architecture, so its platform is unknown",
				    name);
		goto out;
	}
	struct entry *x = entries_add(e);
	plait_descriptor_copy(&x->desc, root);
	x->desc.platform = xcalloc(1, sizeof(*x->desc.platform));
	x->desc.platform->os = xstrdup(cfg.os);
	x->desc.platform->architecture = xstrdup(cfg.architecture);
	x->desc.platform->variant = xstrdup_or_null(cfg.variant);
	x->desc.platform->os_version = xstrdup_or_null(cfg.os_version);
	plait_platform_normalise(x->desc.platform);
	plait_buf_add(&x->bytes, data->buf, data->len);
	x->src = ep;
	x->src_name = name;
out:
	plait_image_config_release(&cfg);
	plait_manifest_release(&m);
	return r;
}

/* Entries of an index (from SRC or, with keep_src NULL, the --append base). */
static int add_index_entries(struct entries *e, struct plait_endpoint *ep, const char *name,
			     const struct plait_buf *data, bool from_source, struct plait_error **err)
{
	struct plait_index idx = { 0 };
	int r = plait_index_parse(data->buf, data->len, &idx, err);
	if (r < 0) {
		plait_error_wrap(err, "%s", name);
		return r;
	}
	for (size_t i = 0; i < idx.n_manifests && r >= 0; i++) {
		struct plait_descriptor root = { 0 };
		struct entry *x = entries_add(e);
		r = plait_endpoint_resolve(ep, idx.manifests[i].digest, &root, &x->bytes, err);
		plait_descriptor_release(&root);
		plait_descriptor_copy(&x->desc, &idx.manifests[i]);
		if (x->desc.platform)
			plait_platform_normalise(x->desc.platform);
		x->src = from_source ? ep : NULL;
		x->src_name = name;
	}
	plait_index_release(&idx);
	return r;
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
		{ "parallel", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		REGISTRY_CLI_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct registry_cli rc = { 0 };
	struct plait_error *err = NULL;
	char **dsts = NULL;
	size_t n_dsts = 0;
	struct plait_map annotations = { 0 };
	bool have_epoch = false;
	int64_t epoch = 0;
	bool append = false, quiet = false;
	enum plait_media_type format = PLAIT_MT_OCI_INDEX;
	struct plait_copy_opts copts = { .cancel = &plait_interrupted };
	struct plait_endpoint **srcs = NULL;
	size_t n_srcs = 0;
	char **meta_srcs = NULL; /* from --from-metadata, before the SRC arguments */
	char **src_names = NULL;
	struct entries base = { 0 }, added = { 0 };
	struct plait_index idx = { 0 };
	struct plait_buf bytes = PLAIT_BUF_INIT;
	struct plait_descriptor root = { 0 };
	int c, r, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+t:j:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			goto done;
		case 't':
			dsts = xrealloc(dsts, (n_dsts + 2) * sizeof(char *));
			dsts[n_dsts++] = optarg;
			dsts[n_dsts] = NULL;
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
			append = true;
			break;
		case OPT_FROM_METADATA: {
			char *src = NULL;
			if (source_from_metadata(optarg, &src, &err) < 0)
				goto fail;
			plait_strv_push(&meta_srcs, src);
			free(src);
			break;
		}
		case OPT_EPOCH:
			if (parse_epoch("index create", "--source-date-epoch", optarg, &epoch) < 0) {
				ret = EXIT_USAGE;
				goto done;
			}
			have_epoch = true;
			break;
		case OPT_INDEX_FORMAT:
			if (streq(optarg, "oci"))
				format = PLAIT_MT_OCI_INDEX;
			else if (streq(optarg, "docker"))
				format = PLAIT_MT_DOCKER_LIST;
			else {
				ret = usage_error("index create", "--index-format: unknown format '%s'; use oci or docker",
						  optarg);
				goto done;
			}
			break;
		case 'j': {
			long v;
			if (parse_number_option("index create", "--parallel", optarg, 64, &v) < 0) {
				ret = EXIT_USAGE;
				goto done;
			}
			copts.parallel = (int)v;
			break;
		}
		case 'q':
			quiet = true;
			break;
		case '?':
			ret = usage_error("index create", "unknown or incomplete option '%s'", argv[optind - 1]);
			goto done;
		default:
			r = registry_cli_option(&rc, "index create", c, optarg);
			if (r < 0) {
				ret = EXIT_USAGE;
				goto done;
			}
		}
	}
	if (!n_dsts) {
		ret = usage_error("index create", "missing -t DST: say where the index goes");
		goto done;
	}
	for (char **m = meta_srcs; m && *m; m++)
		plait_strv_push(&src_names, *m);
	for (int i = optind; i < argc; i++)
		plait_strv_push(&src_names, argv[i]);
	if (!src_names && !append) {
		ret = usage_error("index create", "missing SRC: name at least one image (or --from-metadata FILE)");
		goto done;
	}
	if (source_date_epoch("index create", &have_epoch, &epoch) < 0) {
		ret = EXIT_USAGE;
		goto done;
	}
	registry_cli_finish(&rc);

	/* Sources first: everything is checked before anything is written. */
	while (src_names && src_names[n_srcs])
		n_srcs++;
	srcs = xcalloc(n_srcs + 1, sizeof(*srcs));
	for (size_t i = 0; i < n_srcs; i++) {
		const char *name = src_names[i];
		struct plait_descriptor sroot = { 0 };
		struct plait_buf sdata = PLAIT_BUF_INIT;
		r = plait_endpoint_open(name, false, &rc.opts, &srcs[i], &err);
		if (r >= 0)
			r = plait_endpoint_resolve(srcs[i], NULL, &sroot, &sdata, &err);
		if (r >= 0) {
			if (plait_media_type_is_index(plait_media_type_from_string(sroot.media_type)))
				r = add_index_entries(&added, srcs[i], name, &sdata, true, &err);
			else
				r = add_manifest(&added, srcs[i], name, &sroot, &sdata, &err);
		}
		plait_descriptor_release(&sroot);
		plait_buf_release(&sdata);
		if (r < 0)
			goto fail;
	}
	if (check_added(&added, &err) < 0)
		goto fail;

	struct plait_endpoint *first = NULL;
	if (append) {
		struct plait_descriptor broot = { 0 };
		struct plait_buf bdata = PLAIT_BUF_INIT;
		r = plait_endpoint_open(dsts[0], false, &rc.opts, &first, &err);
		if (r >= 0)
			r = plait_endpoint_resolve(first, NULL, &broot, &bdata, &err);
		if (r >= 0 && !plait_media_type_is_index(plait_media_type_from_string(broot.media_type)))
			r = plait_error_set(&err, PLAIT_E_USAGE, "--append: '%s' is an image, not an index",
					    dsts[0]);
		else if (r >= 0)
			r = add_index_entries(&base, first, dsts[0], &bdata, false, &err);
		else if (plait_error_code(&err) == PLAIT_E_NOT_FOUND) {
			plait_error_clear(&err); /* nothing to append to yet: start empty */
			r = 0;
		}
		if (r >= 0 && !idx.annotations.n && broot.digest[0]) {
			struct plait_index old = { 0 };
			if (plait_index_parse(bdata.buf, bdata.len, &old, NULL) >= 0)
				plait_map_copy(&idx.annotations, &old.annotations);
			plait_index_release(&old);
		}
		plait_descriptor_release(&broot);
		plait_buf_release(&bdata);
		if (r < 0) {
			plait_endpoint_free(first);
			goto fail;
		}
	}

	idx.schema_version = 2;
	idx.media_type = xstrdup(plait_media_type_to_string(format));
	for (size_t i = 0; i < annotations.n; i++)
		plait_map_set(&idx.annotations, annotations.items[i].key, annotations.items[i].value);
	/* As plait build: the same epoch gives the same index digest. */
	if (have_epoch && format == PLAIT_MT_OCI_INDEX &&
	    !plait_map_get(&idx.annotations, "org.opencontainers.image.created")) {
		char when[32];
		format_epoch(epoch, when);
		plait_map_set(&idx.annotations, "org.opencontainers.image.created", when);
	}
	drop_replaced(&base, &added);
	for (size_t i = 0; i < base.n; i++)
		plait_index_add(&idx, &base.v[i].desc);
	for (size_t i = 0; i < added.n; i++)
		plait_index_add(&idx, &added.v[i].desc);
	if (plait_index_serialise(&idx, &bytes, &err) < 0) {
		plait_endpoint_free(first);
		goto fail;
	}
	root.media_type = xstrdup(idx.media_type);
	plait_sha256_buf(bytes.buf, bytes.len, root.digest);
	root.size = (int64_t)bytes.len;

	for (size_t d = 0; d < n_dsts; d++) {
		struct plait_endpoint *dst = NULL;
		r = plait_endpoint_open(dsts[d], true, &rc.opts, &dst, &err);
		if (r >= 0 && dst->ref && strchr(dst->ref, ':'))
			r = plait_error_set(&err, PLAIT_E_USAGE, "-t '%s': give a tag, not a digest", dsts[d]);
		else if (r >= 0 && !dst->ref)
			r = plait_error_set(&err, PLAIT_E_USAGE,
					    "-t '%s' has no tag: name one (e.g. '%s:1.0'); plait does not tag 'latest' implicitly",
					    dsts[d], dsts[d]);
		/* Children first: each image, then the base entries (from the first DST's own repository). */
		for (size_t i = 0; i < added.n && r >= 0; i++)
			r = plait_copy_image(added.v[i].src, dst, &added.v[i].desc, added.v[i].bytes.buf,
					     added.v[i].bytes.len, NULL, &copts, NULL, &err);
		for (size_t i = 0; i < base.n && r >= 0 && d > 0; i++)
			r = plait_copy_image(first, dst, &base.v[i].desc, base.v[i].bytes.buf, base.v[i].bytes.len,
					     NULL, &copts, NULL, &err);
		if (r >= 0 && plait_interrupted)
			r = plait_error_set(&err, PLAIT_E_CANCELLED, "interrupted: %s not written or tagged",
					    dsts[d]);
		if (r >= 0)
			r = dst->ops->put_manifest(dst, root.media_type, bytes.buf, bytes.len, root.digest, &err);
		if (r >= 0 && plait_interrupted)
			r = plait_error_set(&err, PLAIT_E_CANCELLED, "interrupted: '%s' not tagged", dsts[d]);
		if (r >= 0)
			r = dst->ops->tag(dst, dst->ref, &root, bytes.buf, bytes.len, &err);
		if (r >= 0)
			r = plait_endpoint_commit(dst, &err);
		if (r >= 0) {
			if (!quiet)
				fprintf(stderr, "index %s with %zu entries -> %s\n", root.digest, idx.n_manifests,
					dst->display);
			_cleanup_free_ char *result = plait_endpoint_ref_string(dst, root.digest);
			printf("%s\n", result);
		}
		plait_endpoint_free(dst);
		if (r < 0) {
			plait_endpoint_free(first);
			goto fail;
		}
	}
	plait_endpoint_free(first);
	goto done;
fail:
	ret = report_error(err);
done:
	plait_error_free(err);
	for (size_t i = 0; i < n_srcs; i++)
		plait_endpoint_free(srcs[i]);
	free(srcs);
	entries_release(&base);
	entries_release(&added);
	plait_index_release(&idx);
	plait_descriptor_release(&root);
	plait_buf_release(&bytes);
	plait_map_release(&annotations);
	free(dsts);
	plait_strv_free(meta_srcs);
	plait_strv_free(src_names);
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
