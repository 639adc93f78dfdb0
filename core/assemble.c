/* core/assemble.c - index assembly and `plait index create`; see assemble.h. */
#include <time.h>

#include "assemble.h"
#include "plan.h"
#include "util.h"
#include "core/platform.h"
#include "core/timestamp.h"
#include "core/banned.h"

int plait_index_assemble(struct plait_index *idx, enum plait_media_type format, const struct plait_map *annotations,
			 bool have_epoch, int64_t epoch, const struct plait_descriptor *entries, size_t n,
			 struct plait_buf *bytes, struct plait_descriptor *root, struct plait_error **err)
{
	idx->schema_version = 2;
	free(idx->media_type);
	idx->media_type = xstrdup(plait_media_type_to_string(format));
	for (size_t i = 0; annotations && i < annotations->n; i++)
		plait_map_set(&idx->annotations, annotations->items[i].key, annotations->items[i].value);
	/* The same epoch gives the same index digest. */
	if (have_epoch && format == PLAIT_MT_OCI_INDEX &&
	    !plait_map_get(&idx->annotations, "org.opencontainers.image.created")) {
		char when[PLAIT_RFC3339_MAX];
		plait_rfc3339(epoch, when);
		plait_map_set(&idx->annotations, "org.opencontainers.image.created", when);
	}
	for (size_t i = 0; i < n; i++)
		plait_index_add(idx, &entries[i]);
	int r = plait_index_serialise(idx, bytes, err);
	if (r < 0)
		return r;
	free(root->media_type);
	root->media_type = xstrdup(idx->media_type);
	plait_sha256_buf(bytes->buf, bytes->len, root->digest);
	root->size = (int64_t)bytes->len;
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

/* One index to make: its -t names (with {variant} filled in) and sources. */
struct job {
	char **dsts;
	char **src_names;
	struct plait_endpoint **srcs;
	size_t n_srcs;
	struct plait_endpoint *first; /* --append: the first DST, where the base entries are */
	struct plait_endpoint **dst_eps; /* borrowed from the pool */
	char **dst_refs;		 /* each -t's tag */
	struct plait_publish_copy *copies; /* the added entries, then the base entries */
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
	free(j->copies);
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
static int job_prepare(const struct plait_assemble_opts *s, struct plait_publish_pool *pool, struct job *j,
		       struct plait_error **err)
{
	int r = 0;
	while (j->src_names && j->src_names[j->n_srcs])
		j->n_srcs++;
	j->srcs = xcalloc(j->n_srcs + 1, sizeof(*j->srcs));
	for (size_t i = 0; i < j->n_srcs; i++) {
		const char *name = j->src_names[i];
		struct plait_descriptor sroot = { 0 };
		struct plait_buf sdata = PLAIT_BUF_INIT;
		r = s->open(s->ctx, name, false, &j->srcs[i], err);
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
		/* opened as the destination it is: read from the registry itself,
		 * never from a (possibly stale) mirror of it */
		r = s->open(s->ctx, j->dsts[0], true, &j->first, err);
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

	drop_replaced(&j->base, &j->added);
	size_t n = j->base.n + j->added.n;
	struct plait_descriptor *entries = xcalloc(n + 1, sizeof(*entries));
	for (size_t i = 0; i < n; i++)
		entries[i] = i < j->base.n ? j->base.v[i].desc : j->added.v[i - j->base.n].desc; /* borrowed */
	r = plait_index_assemble(&j->idx, s->format, s->annotations, s->have_epoch, s->epoch, entries, n,
				 &j->bytes, &j->root, err);
	free(entries);
	if (r < 0)
		return r;

	while (j->dsts[j->n_dsts])
		j->n_dsts++;
	j->dst_eps = xcalloc(j->n_dsts + 1, sizeof(*j->dst_eps));
	for (size_t d = 0; d < j->n_dsts; d++) {
		struct plait_endpoint *ep = NULL;
		_cleanup_free_ char *ref = NULL;
		r = plait_publish_pool_open(pool, j->dsts[d], s->open, s->ctx, &ep, &ref, err);
		if (r < 0)
			return r;
		if (ref && strchr(ref, ':'))
			return plait_error_set(err, PLAIT_E_USAGE, "-t '%s': give a tag, not a digest", j->dsts[d]);
		if (!ref)
			return plait_error_set(err, PLAIT_E_USAGE,
					       "-t '%s' has no tag: name one (e.g. '%s:1.0'); plait does not tag "
					       "'latest' implicitly",
					       j->dsts[d], j->dsts[d]);
		plait_strv_push(&j->dst_refs, ref);
		j->dst_eps[d] = ep;
	}
	return 0;
}

/* Into DST d: each image, then the base entries (from the first DST's own
 * repository), then the index itself, by digest. */
/* The indexes to make: one, or with "{variant}" in -t one per variant the
 * metadata files name, in the order they first appear. */
static int plan_jobs(char *const *dsts, const struct plait_metadata_source *meta, size_t n_meta, char *const *args,
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
			_cleanup_free_ char *x = with ? plait_plan_expand_variant(dsts[d], variants[k]) : xstrdup(dsts[d]);
			plait_strv_push(&j->dsts, x);
		}
		for (size_t i = 0; i < n_meta; i++)
			if (!with || streq_ptr(meta[i].variant, variants[k]))
				plait_strv_push(&j->src_names, meta[i].name);
		for (char *const *a = args; !with && a && *a; a++)
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


void plait_assembled_free(struct plait_assembled *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].dst);
		free(v[i].ref);
	}
	free(v);
}

/* The images of job j for DST d: each source's image, then (into every DST
 * but the first, which has them) the base entries from the first DST. */
static void job_items(struct job *j, struct plait_publish_item *items)
{
	j->copies = xcalloc(j->added.n + j->base.n + 1, sizeof(*j->copies));
	for (size_t i = 0; i < j->added.n; i++)
		j->copies[i] = (struct plait_publish_copy){ j->added.v[i].src, &j->added.v[i].desc,
							    j->added.v[i].bytes.buf, j->added.v[i].bytes.len };
	for (size_t i = 0; i < j->base.n; i++)
		j->copies[j->added.n + i] = (struct plait_publish_copy){ j->first, &j->base.v[i].desc,
									 j->base.v[i].bytes.buf, j->base.v[i].bytes.len };
	for (size_t d = 0; d < j->n_dsts; d++)
		items[d] = (struct plait_publish_item){
			.dst = j->dst_eps[d],
			.name = j->dsts[d],
			.copies = j->copies,
			.n_copies = j->added.n + (d > 0 ? j->base.n : 0),
			.root = &j->root,
			.data = j->bytes.buf,
			.len = j->bytes.len,
			.put_root = true,
			.tag = j->dst_refs[d],
		};
}

int plait_assemble_create(char *const *dsts, const struct plait_metadata_source *meta, size_t n_meta,
			  char *const *srcs, const struct plait_assemble_opts *o, struct plait_assembled **out,
			  size_t *n_out, struct plait_error **err)
{
	struct plait_publish_pool pool = { 0 };
	struct plait_publish_item *items = NULL;
	struct job *jobs = NULL;
	size_t n_jobs = 0, n_items = 0;
	*out = NULL;
	*n_out = 0;
	int r = plan_jobs(dsts, meta, n_meta, srcs, &jobs, &n_jobs, err);
	/* Every source of every index is read before anything is written. */
	for (size_t k = 0; r >= 0 && k < n_jobs; k++)
		r = job_prepare(o, &pool, &jobs[k], err);
	for (size_t k = 0; r >= 0 && k < n_jobs; k++)
		n_items += jobs[k].n_dsts;
	if (r >= 0) {
		items = xcalloc(n_items + 1, sizeof(*items));
		for (size_t k = 0, at = 0; k < n_jobs; at += jobs[k].n_dsts, k++)
			job_items(&jobs[k], items + at);
		struct plait_publish_opts po = { .copy = o->copy, .interrupt = o->interrupt };
		struct plait_publish_status st = { 0 };
		/* the sources' referrers (attestations, signatures) first: a
		 * referrer may name a subject not pushed yet, and no tag moves
		 * before they are all there */
		struct plait_copy_stats cs = { 0 };
		for (size_t k = 0; r >= 0 && k < n_jobs; k++)
			for (size_t d = 0; r >= 0 && d < jobs[k].n_dsts; d++)
				for (size_t i = 0; r >= 0 && i < jobs[k].added.n; i++) {
					const struct entry *e = &jobs[k].added.v[i];
					if (!e->src)
						continue;
					r = plait_copy_referrers(e->src, jobs[k].dst_eps[d], &e->desc, e->bytes.buf,
								 e->bytes.len, o->copy, &cs, err);
					if (r < 0)
						plait_error_wrap(err, "copy the referrers of %s to %s", e->desc.digest,
								 jobs[k].dsts[d]);
				}
		if (r >= 0)
			r = plait_publish_push(items, n_items, false, &po, &st, err);
		/* registries have no transactions: say which tags did move */
		if (r < 0 && st.phase == PLAIT_PUBLISH_PHASE_TAG && st.tagged) {
			struct plait_buf moved = PLAIT_BUF_INIT;
			for (size_t m = 0; m < st.tagged; m++)
				plait_buf_addf(&moved, "%s%s", m ? ", " : "", items[m].name);
			plait_error_wrap(err, "tag %s (these moved before it: %s; run again to finish)",
					 items[st.item].name, moved.buf);
			plait_buf_release(&moved);
		}
	}
	if (r >= 0) {
		*out = xcalloc(n_items + 1, sizeof(**out));
		for (size_t k = 0; k < n_jobs; k++)
			for (size_t d = 0; d < jobs[k].n_dsts; d++) {
				struct plait_assembled *a = &(*out)[(*n_out)++];
				a->dst = xstrdup(jobs[k].dsts[d]);
				a->ref = plait_endpoint_ref_string(jobs[k].dst_eps[d], jobs[k].root.digest);
				memcpy(a->digest, jobs[k].root.digest, sizeof(a->digest));
				a->n_entries = jobs[k].idx.n_manifests;
			}
	}
	free(items);
	for (size_t k = 0; k < n_jobs; k++)
		job_release(&jobs[k]);
	free(jobs);
	plait_publish_pool_release(&pool);
	return r;
}
