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
	"                                --metadata-file FILE' pushed (repeatable; the CI matrix flow);\n"
	"                                of a build with variants, -t NAME:TAG-{variant} makes one\n"
	"                                index per variant from the images of that variant\n"
	"  -j, --parallel N              blobs transferred at once (default 4)\n"
	"  -q, --quiet                   no progress lines\n" REGISTRY_CLI_HELP
	"  -h, --help                    show this help\n";

enum { OPT_ANNOTATION = OPT_FIRST_PRIVATE, OPT_APPEND, OPT_INDEX_FORMAT, OPT_FROM_METADATA, OPT_EPOCH };

/* An image a --metadata-file names: "repository@digest" (the repository from
 * its first -t name), and the variant it was built for (NULL when none). */
struct meta_src {
	char *variant;
	char *name;
	const char *file;
};

static void meta_srcs_free(struct meta_src *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].variant);
		free(v[i].name);
	}
	free(v);
}

static int meta_name(const char *file, const char *names, const char *digest, char **out,
		     struct plait_error **err)
{
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

static struct meta_src *meta_add(struct meta_src **v, size_t *n, const char *file, const char *variant)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	struct meta_src *x = &(*v)[(*n)++];
	memset(x, 0, sizeof(*x));
	x->file = file;
	x->variant = xstrdup_or_null(variant);
	return x;
}

/* The images of a --metadata-file of `plait build --push-by-digest`: one, or
 * one per variant ("images", each with its "variant"). */
static int sources_from_metadata(const char *file, struct meta_src **v, size_t *n, struct plait_error **err)
{
	json_error_t jerr;
	json_auto_t *m = json_load_file(file, 0, &jerr);
	if (!m)
		return jerr.line > 0 ? plait_error_set(err, PLAIT_E_USAGE, "--from-metadata '%s': %s (line %d)", file,
						       jerr.text, jerr.line)
				     : plait_error_set(err, PLAIT_E_USAGE, "--from-metadata '%s': %s", file, jerr.text);
	json_t *images = json_object_get(m, "images");
	size_t count = json_array_size(images), first = *n, k;
	const char *target0 = json_string_value(json_object_get(json_array_get(images, 0), "target"));
	json_t *im;
	json_array_foreach(images, k, im) {
		const char *digest = json_string_value(json_object_get(im, "digest"));
		const char *variant = json_string_value(json_object_get(im, "variant"));
		const char *name = json_string_value(json_array_get(json_object_get(im, "tags"), 0));
		if (!streq_ptr(json_string_value(json_object_get(im, "target")), target0))
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--from-metadata '%s': it holds the images of several bake targets; "
					       "merge one target at a time (one metadata file per target)",
					       file);
		if (!digest || plait_digest_validate(digest, NULL) < 0 || !name || !*name)
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--from-metadata '%s': image %zu has no digest or no -t name (write "
					       "it with 'plait build --push-by-digest -t REPO --metadata-file FILE')",
					       file, k + 1);
		if (count > 1 && !variant)
			return plait_error_set(err, PLAIT_E_USAGE, "--from-metadata '%s': image %zu of %zu has no variant",
					       file, k + 1, count);
		for (size_t i = first; variant && i < *n; i++)
			if (streq_ptr((*v)[i].variant, variant))
				return plait_error_set(err, PLAIT_E_USAGE,
						       "--from-metadata '%s': variant '%s' is there twice", file,
						       variant);
		struct meta_src *x = meta_add(v, n, file, variant);
		int r = meta_name(file, name, digest, &x->name, err);
		if (r < 0)
			return r;
	}
	if (count)
		return 0;
	/* no "images": the buildx keys alone */
	const char *digest = json_string_value(json_object_get(m, "containerimage.digest"));
	const char *names = json_string_value(json_object_get(m, "image.name"));
	if (!digest || plait_digest_validate(digest, NULL) < 0 || !names || !*names)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--from-metadata '%s': no images, and no containerimage.digest and "
				       "image.name in it (write it with 'plait build --metadata-file')", file);
	struct meta_src *x = meta_add(v, n, file, NULL);
	return meta_name(file, names, digest, &x->name, err);
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

/* The destinations, one endpoint per place: several -t naming one archive
 * (or layout, or repository) write through one endpoint, committed once. */
struct dst_pool {
	struct plait_endpoint **v;
	size_t n;
};

/* The pool's endpoint named name ("oci:DIR", "oci-archive:FILE", "host/repo"), or NULL. */
static struct plait_endpoint *pool_find(const struct dst_pool *pool, const char *name)
{
	for (size_t k = 0; k < pool->n; k++)
		if (streq(pool->v[k]->name, name))
			return pool->v[k];
	return NULL;
}

/* What every index of one `index create` shares. */
struct settings {
	struct dst_pool *pool;
	const struct plait_registry_opts *ropts;
	const struct plait_map *annotations;
	bool have_epoch;
	int64_t epoch;
	bool append, quiet;
	enum plait_media_type format;
	struct plait_copy_opts *copts;
};

/* One index to make: its -t names (with {variant} filled in) and sources. */
struct job {
	char **dsts;
	char **src_names;
	struct plait_endpoint **srcs;
	size_t n_srcs;
	struct plait_endpoint *first; /* --append: the first DST, where the base entries are */
	struct plait_endpoint **dst_eps; /* borrowed from the pool */
	char **dst_refs;		 /* each -t's tag */
	size_t n_dsts;
	struct entries base, added;
	struct plait_index idx;
	struct plait_buf bytes;
	struct plait_descriptor root;
};

static void job_release(struct job *j)
{
	for (size_t i = 0; i < j->n_srcs; i++)
		plait_endpoint_free(j->srcs[i]);
	free(j->srcs);
	free(j->dst_eps);
	plait_strv_free(j->dst_refs);
	plait_endpoint_free(j->first);
	entries_release(&j->base);
	entries_release(&j->added);
	plait_index_release(&j->idx);
	plait_descriptor_release(&j->root);
	plait_buf_release(&j->bytes);
	plait_strv_free(j->dsts);
	plait_strv_free(j->src_names);
	memset(j, 0, sizeof(*j));
}

/* Read every source (and with --append the first DST's index), make the
 * index's bytes and open the destinations: nothing is written yet. */
static int job_prepare(const struct settings *s, struct job *j, struct plait_error **err)
{
	int r = 0;
	while (j->src_names && j->src_names[j->n_srcs])
		j->n_srcs++;
	j->srcs = xcalloc(j->n_srcs + 1, sizeof(*j->srcs));
	for (size_t i = 0; i < j->n_srcs; i++) {
		const char *name = j->src_names[i];
		struct plait_descriptor sroot = { 0 };
		struct plait_buf sdata = PLAIT_BUF_INIT;
		r = plait_endpoint_open(name, false, s->ropts, &j->srcs[i], err);
		if (r >= 0)
			r = plait_endpoint_resolve(j->srcs[i], NULL, &sroot, &sdata, err);
		if (r >= 0) {
			if (plait_media_type_is_index(plait_media_type_from_string(sroot.media_type)))
				r = add_index_entries(&j->added, j->srcs[i], name, &sdata, true, err);
			else
				r = add_manifest(&j->added, j->srcs[i], name, &sroot, &sdata, err);
		}
		plait_descriptor_release(&sroot);
		plait_buf_release(&sdata);
		if (r < 0)
			return r;
	}
	r = check_added(&j->added, err);
	if (r < 0)
		return r;

	if (s->append) {
		struct plait_descriptor broot = { 0 };
		struct plait_buf bdata = PLAIT_BUF_INIT;
		r = plait_endpoint_open(j->dsts[0], false, s->ropts, &j->first, err);
		if (r >= 0)
			r = plait_endpoint_resolve(j->first, NULL, &broot, &bdata, err);
		/* a single-platform image is an index of one, as imagetools create --append sees it */
		if (r >= 0 && !plait_media_type_is_index(plait_media_type_from_string(broot.media_type)))
			r = add_manifest(&j->base, j->first, j->dsts[0], &broot, &bdata, err);
		else if (r >= 0)
			r = add_index_entries(&j->base, j->first, j->dsts[0], &bdata, false, err);
		else if (plait_error_code(err) == PLAIT_E_NOT_FOUND) {
			plait_error_clear(err); /* nothing to append to yet: start empty */
			r = 0;
		}
		if (r >= 0 && !j->idx.annotations.n && broot.digest[0] &&
		    plait_media_type_is_index(plait_media_type_from_string(broot.media_type))) {
			struct plait_index old = { 0 };
			if (plait_index_parse(bdata.buf, bdata.len, &old, NULL) >= 0)
				plait_map_copy(&j->idx.annotations, &old.annotations);
			plait_index_release(&old);
		}
		plait_descriptor_release(&broot);
		plait_buf_release(&bdata);
		if (r < 0)
			return r;
	}

	struct plait_index *idx = &j->idx;
	idx->schema_version = 2;
	idx->media_type = xstrdup(plait_media_type_to_string(s->format));
	for (size_t i = 0; i < s->annotations->n; i++)
		plait_map_set(&idx->annotations, s->annotations->items[i].key, s->annotations->items[i].value);
	/* As plait build: the same epoch gives the same index digest. */
	if (s->have_epoch && s->format == PLAIT_MT_OCI_INDEX &&
	    !plait_map_get(&idx->annotations, "org.opencontainers.image.created")) {
		char when[32];
		format_epoch(s->epoch, when);
		plait_map_set(&idx->annotations, "org.opencontainers.image.created", when);
	}
	drop_replaced(&j->base, &j->added);
	for (size_t i = 0; i < j->base.n; i++)
		plait_index_add(idx, &j->base.v[i].desc);
	for (size_t i = 0; i < j->added.n; i++)
		plait_index_add(idx, &j->added.v[i].desc);
	r = plait_index_serialise(idx, &j->bytes, err);
	if (r < 0)
		return r;
	j->root.media_type = xstrdup(idx->media_type);
	plait_sha256_buf(j->bytes.buf, j->bytes.len, j->root.digest);
	j->root.size = (int64_t)j->bytes.len;

	while (j->dsts[j->n_dsts])
		j->n_dsts++;
	j->dst_eps = xcalloc(j->n_dsts + 1, sizeof(*j->dst_eps));
	for (size_t d = 0; d < j->n_dsts; d++) {
		/* A layout or archive already open for an earlier -t is used again
		 * (an archive is locked by its writer: a second open would wait). */
		_cleanup_free_ char *place = NULL, *lref = NULL;
		struct plait_endpoint *open_ep = NULL;
		if (plait_endpoint_local_place(j->dsts[d], &place, &lref) == 0)
			open_ep = pool_find(s->pool, place);
		if (open_ep && lref && !strchr(lref, ':')) {
			plait_strv_push(&j->dst_refs, lref);
			j->dst_eps[d] = open_ep;
			continue;
		}
		struct plait_endpoint *ep = NULL;
		r = plait_endpoint_open(j->dsts[d], true, s->ropts, &ep, err);
		if (r < 0)
			return r;
		if (ep->ref && strchr(ep->ref, ':'))
			r = plait_error_set(err, PLAIT_E_USAGE, "-t '%s': give a tag, not a digest", j->dsts[d]);
		else if (!ep->ref)
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "-t '%s' has no tag: name one (e.g. '%s:1.0'); plait does not tag "
					    "'latest' implicitly",
					    j->dsts[d], j->dsts[d]);
		if (r < 0) {
			plait_endpoint_free(ep);
			return r;
		}
		plait_strv_push(&j->dst_refs, ep->ref);
		/* names carry their kind ("oci:", "oci-archive:", or a registry's host) */
		struct plait_endpoint *same = pool_find(s->pool, ep->name);
		if (same) {
			plait_endpoint_free(ep);
			ep = same;
		} else {
			s->pool->v = xrealloc(s->pool->v, (s->pool->n + 1) * sizeof(*s->pool->v));
			s->pool->v[s->pool->n++] = ep;
		}
		j->dst_eps[d] = ep;
	}
	return 0;
}

/* Into DST d: each image, then the base entries (from the first DST's own
 * repository), then the index itself, by digest. */
static int job_push(const struct settings *s, struct job *j, size_t d, struct plait_error **err)
{
	struct plait_endpoint *dst = j->dst_eps[d];
	int r = 0;
	for (size_t i = 0; i < j->added.n && r >= 0; i++)
		r = plait_copy_image(j->added.v[i].src, dst, &j->added.v[i].desc, j->added.v[i].bytes.buf,
				     j->added.v[i].bytes.len, NULL, s->copts, NULL, err);
	for (size_t i = 0; i < j->base.n && r >= 0 && d > 0; i++)
		r = plait_copy_image(j->first, dst, &j->base.v[i].desc, j->base.v[i].bytes.buf,
				     j->base.v[i].bytes.len, NULL, s->copts, NULL, err);
	if (r >= 0 && plait_interrupted)
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted: %s not written or tagged", j->dsts[d]);
	if (r >= 0)
		r = dst->ops->put_manifest(dst, j->root.media_type, j->bytes.buf, j->bytes.len, j->root.digest,
					   err);
	return r;
}

static int job_tag(struct job *j, size_t d, struct plait_error **err)
{
	struct plait_endpoint *dst = j->dst_eps[d];
	if (plait_interrupted)
		return plait_error_set(err, PLAIT_E_CANCELLED, "interrupted: '%s' not tagged", j->dsts[d]);
	return dst->ops->tag(dst, j->dst_refs[d], &j->root, j->bytes.buf, j->bytes.len, err);
}

static void job_report(const struct settings *s, const struct job *j, size_t d)
{
	if (!s->quiet)
		fprintf(stderr, "index %s with %zu entr%s -> %s\n", j->root.digest, j->idx.n_manifests,
			j->idx.n_manifests == 1 ? "y" : "ies", j->dsts[d]);
	_cleanup_free_ char *result = plait_endpoint_ref_string(j->dst_eps[d], j->root.digest);
	printf("%s\n", result);
}

static char *fill_variant(const char *dst, const char *variant)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	for (const char *p = dst; *p;) {
		const char *at = strstr(p, "{variant}");
		if (!at) {
			plait_buf_adds(&b, p);
			break;
		}
		plait_buf_add(&b, p, (size_t)(at - p));
		plait_buf_adds(&b, variant);
		p = at + strlen("{variant}");
	}
	return plait_buf_detach(&b, NULL);
}

/* The indexes to make: one, or with "{variant}" in -t one per variant the
 * metadata files name, in the order they first appear. */
static int plan_jobs(char **dsts, const struct meta_src *meta, size_t n_meta, char **args,
		     struct job **jobs, size_t *n_jobs, struct plait_error **err)
{
	size_t with = 0, n_dsts = 0;
	for (; dsts[n_dsts]; n_dsts++)
		with += strstr(dsts[n_dsts], "{variant}") != NULL;
	char **variants = NULL;
	size_t n_variants = 0;
	for (size_t i = 0; i < n_meta; i++) {
		bool seen = false;
		for (size_t k = 0; k < n_variants && !seen; k++)
			seen = streq_ptr(variants[k], meta[i].variant);
		if (!seen) {
			variants = xrealloc(variants, (n_variants + 1) * sizeof(*variants));
			variants[n_variants++] = meta[i].variant;
		}
	}
	int r = 0;
	if (with && with < n_dsts) {
		for (size_t d = 0; d < n_dsts; d++)
			if (!strstr(dsts[d], "{variant}")) {
				r = plait_error_set(err, PLAIT_E_USAGE,
						    "-t '%s' has no {variant} while another -t has: every "
						    "variant's index would go there",
						    dsts[d]);
				break;
			}
	} else if (with && args && *args) {
		r = plait_error_set(err, PLAIT_E_USAGE,
				    "SRC '%s' with -t '%s': an SRC belongs to no variant; with {variant} give "
				    "the images with --from-metadata only",
				    args[0], dsts[0]);
	} else if (with && !n_meta) {
		r = plait_error_set(err, PLAIT_E_USAGE,
				    "-t '%s' has {variant}: give the builds' metadata with --from-metadata FILE",
				    dsts[0]);
	} else if (with) {
		for (size_t i = 0; i < n_meta && r >= 0; i++)
			if (!meta[i].variant)
				r = plait_error_set(err, PLAIT_E_USAGE,
						    "-t '%s' has {variant}, but '%s' names an image of no variant "
						    "(from a build without --variant)",
						    dsts[0], meta[i].file);
	} else if (n_variants > 1) {
		struct plait_buf names = PLAIT_BUF_INIT;
		for (size_t k = 0; k < n_variants; k++)
			plait_buf_addf(&names, "%s%s", k ? ", " : "", variants[k] ? variants[k] : "(none)");
		r = plait_error_set(err, PLAIT_E_USAGE,
				    "the metadata files hold the images of %zu variants (%s), and -t '%s' has no "
				    "{variant}: write e.g. '%s-{variant}' to make one index per variant",
				    n_variants, names.buf, dsts[0], dsts[0]);
		plait_buf_release(&names);
	}
	if (r < 0) {
		free(variants);
		return r;
	}
	size_t n = with ? n_variants : 1;
	*jobs = xcalloc(n + 1, sizeof(**jobs));
	*n_jobs = n;
	for (size_t k = 0; k < n; k++) {
		struct job *j = &(*jobs)[k];
		for (size_t d = 0; d < n_dsts; d++) {
			_cleanup_free_ char *x = with ? fill_variant(dsts[d], variants[k]) : xstrdup(dsts[d]);
			plait_strv_push(&j->dsts, x);
		}
		for (size_t i = 0; i < n_meta; i++)
			if (!with || streq_ptr(meta[i].variant, variants[k]))
				plait_strv_push(&j->src_names, meta[i].name);
		for (char **a = args; !with && a && *a; a++)
			plait_strv_push(&j->src_names, *a);
	}
	/* two variants' names can expand alike ("{variant}-1" for x, "{variant}" for x-1) */
	for (size_t k = 1; k < n && r >= 0; k++)
		for (size_t k2 = 0; k2 < k && r >= 0; k2++)
			for (size_t d = 0; d < n_dsts && r >= 0; d++)
				for (size_t d2 = 0; d2 < n_dsts && r >= 0; d2++)
					if (streq((*jobs)[k].dsts[d], (*jobs)[k2].dsts[d2]))
						r = plait_error_set(err, PLAIT_E_USAGE,
								    "-t: '%s' would be given to the indexes of two "
								    "variants (%s and %s)",
								    (*jobs)[k].dsts[d], variants[k2], variants[k]);
	free(variants);
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
	char **dsts = NULL, **args = NULL;
	struct plait_map annotations = { 0 };
	struct plait_copy_opts copts = { .cancel = &plait_interrupted };
	struct dst_pool pool = { 0 };
	struct settings st = { .pool = &pool, .annotations = &annotations, .format = PLAIT_MT_OCI_INDEX,
			       .copts = &copts };
	struct meta_src *meta = NULL; /* from --from-metadata, before the SRC arguments */
	size_t n_meta = 0;
	struct job *jobs = NULL;
	size_t n_jobs = 0;
	int c, r, ret = 0;

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
			if (sources_from_metadata(optarg, &meta, &n_meta, &err) < 0)
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
			st.quiet = true;
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
	registry_cli_finish(&rc);
	st.ropts = &rc.opts;

	if (plan_jobs(dsts, meta, n_meta, args, &jobs, &n_jobs, &err) < 0)
		goto fail;
	/* Every source of every index is read before anything is written; then
	 * all images and indexes go by digest, and the tags move last. */
	for (size_t k = 0; k < n_jobs; k++)
		if (job_prepare(&st, &jobs[k], &err) < 0)
			goto fail;
	for (size_t k = 0; k < n_jobs; k++)
		for (size_t d = 0; d < jobs[k].n_dsts; d++)
			if (job_push(&st, &jobs[k], d, &err) < 0)
				goto fail;
	for (size_t k = 0, moved = 0; k < n_jobs; k++)
		for (size_t d = 0; d < jobs[k].n_dsts; d++, moved++)
			if (job_tag(&jobs[k], d, &err) < 0) {
				/* registries have no transactions: say which tags did move */
				if (moved) {
					struct plait_buf done_tags = PLAIT_BUF_INIT;
					for (size_t k2 = 0, m = 0; k2 <= k; k2++)
						for (size_t d2 = 0; d2 < jobs[k2].n_dsts && m < moved; d2++, m++)
							plait_buf_addf(&done_tags, "%s%s", m ? ", " : "",
								       jobs[k2].dsts[d2]);
					plait_error_wrap(&err, "tag %s (these moved before it: %s; run again to finish)",
							 jobs[k].dsts[d], done_tags.buf);
					plait_buf_release(&done_tags);
				}
				goto fail;
			}
	for (size_t i = 0; i < pool.n; i++)
		if (plait_endpoint_commit(pool.v[i], &err) < 0)
			goto fail;
	for (size_t k = 0; k < n_jobs; k++)
		for (size_t d = 0; d < jobs[k].n_dsts; d++)
			job_report(&st, &jobs[k], d);
	goto done;
fail:
	ret = report_error(err);
done:
	plait_error_free(err);
	for (size_t k = 0; k < n_jobs; k++)
		job_release(&jobs[k]);
	free(jobs);
	for (size_t i = 0; i < pool.n; i++)
		plait_endpoint_free(pool.v[i]);
	free(pool.v);
	plait_map_release(&annotations);
	plait_strv_free(dsts);
	plait_strv_free(args);
	meta_srcs_free(meta, n_meta);
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
