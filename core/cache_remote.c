/* core/cache_remote.c - --cache-to / --cache-from: specs, the cache artifact,
 * import and merged export (see cache_remote.h). */
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache_remote.h"
#include "buf.h"
#include "copy.h"
#include "fs.h"
#include "layer.h"
#include "unpack.h"
#include "digest.h"
#include "ref.h"
#include "strv.h"
#include "timestamp.h"
#include "util.h"
#include "banned.h"

#define RECORDS_MAX (16u * 1024 * 1024)
#define EMPTY_JSON "{}"

/* ------------------------------------------------------------ specs */

void plait_cache_spec_release(struct plait_cache_spec *s)
{
	if (!s)
		return;
	free(s->text);
	free(s->endpoint);
	free(s->tag);
	plait_strv_free(s->mounts);
	memset(s, 0, sizeof(*s));
}

static int spec_fail(struct plait_error **err, const char *what, const char *text, const char *why)
{
	return plait_error_set(err, PLAIT_E_USAGE,
			       "%s '%s': %s (use type=registry,ref=REGISTRY/REPO:TAG or type=local,%s=DIR, "
			       "with mode=min|max and ignore-error=true)",
			       what, text, why, streq(what, "--cache-from") || streq(what, "cache-from") ? "src" : "dest");
}

int plait_cache_spec_parse(const char *text, bool to, const char *what, struct plait_cache_spec *out,
			   struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_free_ char *copy = xstrdup(text);
	const char *type = NULL, *ref = NULL, *dir = NULL, *tag = NULL, *mode = NULL;
	bool ignore = false, in_mounts = false;
	struct plait_buf why = PLAIT_BUF_INIT;
	int r = 0;
	if (!*text)
		return spec_fail(err, what, text, "empty");
	if (!strchr(text, '=')) {
		/* buildx's short form: a bare reference is type=registry,ref=... */
		type = "registry";
		ref = copy;
	} else {
		for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
			char *eq = strchr(f, '=');
			if (!eq && in_mounts && *f) {
				plait_strv_push(&out->mounts, f); /* mounts=pip,apt */
				continue;
			}
			if (!eq) {
				plait_buf_addf(&why, "'%s' is not KEY=VALUE", f);
				goto bad;
			}
			*eq = '\0';
			const char *v = eq + 1;
			in_mounts = false;
			if (streq(f, "mounts") && to) {
				if (!*v) {
					plait_buf_adds(&why, "mounts= needs cache mount IDs or 'all'");
					goto bad;
				}
				in_mounts = true;
				plait_strv_push(&out->mounts, v);
			} else if (streq(f, "type"))
				type = v;
			else if (streq(f, "ref"))
				ref = v;
			else if (streq(f, "dest") && to)
				dir = v;
			else if (streq(f, "src") && !to)
				dir = v;
			else if (streq(f, "tag"))
				tag = v;
			else if (streq(f, "mode") && to)
				mode = v;
			else if (streq(f, "ignore-error")) {
				if (plait_parse_bool(v, &ignore) < 0) {
					plait_buf_addf(&why, "ignore-error takes true or false, not '%s'", v);
					goto bad;
				}
			} else if (streq(f, "oci-mediatypes") || streq(f, "image-manifest") ||
				   streq(f, "compression") || streq(f, "compression-level") ||
				   streq(f, "force-compression")) {
				/* buildx's: plait always writes OCI media types, an
				 * image manifest per part and the images' own blobs */
			} else if (streq(f, "max-size") && to) {
				if (plait_parse_size(v, &out->max_size) < 0 || out->max_size == 0) {
					plait_buf_addf(&why, "max-size takes a size such as 512M or 10G, not '%s'", v);
					goto bad;
				}
			} else {
				plait_buf_addf(&why, "unknown key '%s'%s", f,
					       (streq(f, "dest") || streq(f, "mode") || streq(f, "mounts") || streq(f, "max-size")) && !to ? " (only --cache-to has it)"
					       : streq(f, "src") && to		       ? " (only --cache-from has it)"
										       : "");
				goto bad;
			}
		}
	}
	if (!type) {
		plait_buf_adds(&why, "type= is missing");
		goto bad;
	}
	if (mode && !streq(mode, "min") && !streq(mode, "max")) {
		plait_buf_addf(&why, "mode must be min or max, not '%s'", mode);
		goto bad;
	}
	out->mode_max = mode && streq(mode, "max");
	if (plait_strv_contains(out->mounts, "all")) {
		out->mounts_all = true;
		plait_strv_free(out->mounts);
		out->mounts = NULL;
	}
	out->ignore_error = ignore;
	if (streq(type, "registry")) {
		if (!ref || !*ref) {
			plait_buf_adds(&why, "type=registry needs ref=REGISTRY/REPO:TAG");
			goto bad;
		}
		if (dir || tag) {
			plait_buf_addf(&why, "type=registry takes ref=, not %s", dir ? (to ? "dest=" : "src=") : "tag=");
			goto bad;
		}
		struct plait_ref pr = { 0 };
		struct plait_error *e = NULL;
		if (plait_ref_parse(ref, &pr, &e) < 0) {
			plait_buf_addf(&why, "%s", e->msg);
			plait_error_free(e);
			goto bad;
		}
		bool ok = pr.tag && !pr.digest;
		out->tag = xstrdup_or_null(pr.tag);
		plait_ref_release(&pr);
		if (!ok) {
			plait_buf_addf(&why, "ref '%s' needs a tag and no digest (the cache is merged at that tag)", ref);
			goto bad;
		}
		out->type = PLAIT_CACHE_REGISTRY;
		out->endpoint = xstrdup(ref);
	} else if (streq(type, "local")) {
		if (!dir || !*dir) {
			plait_buf_addf(&why, "type=local needs %s=DIR", to ? "dest" : "src");
			goto bad;
		}
		if (ref) {
			plait_buf_addf(&why, "type=local takes %s=DIR, not ref=", to ? "dest" : "src");
			goto bad;
		}
		if (tag && (!*tag || strchr(tag, ':') || strchr(tag, '/'))) {
			plait_buf_addf(&why, "tag '%s' is not a tag", tag);
			goto bad;
		}
		out->type = PLAIT_CACHE_LOCAL;
		out->tag = xstrdup(tag ? tag : PLAIT_CACHE_LOCAL_TAG);
		struct plait_buf e = PLAIT_BUF_INIT;
		plait_buf_addf(&e, "oci:%s:%s", dir, out->tag);
		out->endpoint = plait_buf_detach(&e, NULL);
	} else {
		plait_buf_addf(&why, "unknown type '%s'%s", type,
			       streq(type, "inline") || streq(type, "gha") || streq(type, "s3") ||
				       streq(type, "azblob")
				   ? " (plait has registry and local caches; 'local' suits actions/cache and GitLab's cache)"
				   : "");
		goto bad;
	}
	out->text = xstrdup(text);
	return 0;
bad:
	r = spec_fail(err, what, text, why.buf);
	plait_buf_release(&why);
	plait_cache_spec_release(out);
	return r;
}

/* ------------------------------------------------------------ records */

void plait_cache_records_free(struct plait_cache_record *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		plait_cache_step_release(&v[i].step);
	free(v);
}

void plait_cache_records_serialise(const char *part, const struct plait_cache_record *v, size_t n,
				   struct plait_buf *out)
{
	json_auto_t *o = json_object();
	json_t *a = json_array();
	json_object_set_new(o, "format", json_integer(PLAIT_CACHE_FORMAT));
	json_object_set_new(o, "part", json_string(part));
	for (size_t i = 0; i < n; i++) {
		json_t *s = plait_cache_step_to_json(&v[i].step);
		json_object_del(s, "imported"); /* where this cache dir got it: not the artifact's business */
		json_object_set_new(s, "key", json_string(v[i].key));
		json_array_append_new(a, s);
	}
	json_object_set_new(o, "steps", a);
	_cleanup_free_ char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	plait_buf_reset(out);
	plait_buf_adds(out, text);
}

int plait_cache_records_parse(const char *data, size_t len, char **part, struct plait_cache_record **v,
			      size_t *n, struct plait_error **err)
{
	*v = NULL;
	*n = 0;
	*part = NULL;
	json_error_t je;
	json_auto_t *o = json_loadb(data, len, 0, &je);
	if (!json_is_object(o))
		return plait_error_set(err, PLAIT_E_INVALID, "step records are not a JSON object%s%s",
				       o ? "" : ": ", o ? "" : je.text);
	json_t *f = json_object_get(o, "format");
	if (!json_is_integer(f))
		return plait_error_set(err, PLAIT_E_INVALID, "step records have no format number");
	if (json_integer_value(f) > PLAIT_CACHE_FORMAT)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "step records are format %lld, newer than this plait reads (%d): upgrade plait",
				       (long long)json_integer_value(f), PLAIT_CACHE_FORMAT);
	json_t *steps = json_object_get(o, "steps");
	if (!json_is_array(steps))
		return plait_error_set(err, PLAIT_E_INVALID, "step records have no 'steps' array");
	size_t cnt = json_array_size(steps);
	struct plait_cache_record *out = xcalloc(cnt + 1, sizeof(*out));
	size_t k = 0;
	for (size_t i = 0; i < cnt; i++) {
		json_t *s = json_array_get(steps, i);
		const char *key = json_string_value(json_object_get(s, "key"));
		if (!key || !plait_digest_is_sha256(key) || strlen(key) + 1 != PLAIT_SHA256_DIGEST_SIZE ||
		    plait_digest_validate(key, NULL) < 0)
			continue;
		if (plait_cache_step_from_json(s, &out[k].step) != 1)
			continue;
		memcpy(out[k].key, key, PLAIT_SHA256_DIGEST_SIZE);
		k++;
	}
	const char *p = json_string_value(json_object_get(o, "part"));
	*part = xstrdup(p ? p : "");
	*v = out;
	*n = k;
	return 0;
}

/* ------------------------------------------------------------ the shared index */

static const char *part_of(const struct plait_descriptor *d)
{
	return plait_map_get(&d->annotations, PLAIT_CACHE_ANNOTATION_PART);
}

/* 1: a plait cache index of a format this plait reads; 0 foreign; -1 newer. */
static int index_is_ours(const struct plait_index *idx)
{
	if (!idx->artifact_type || !streq(idx->artifact_type, PLAIT_CACHE_ARTIFACT_TYPE))
		return 0;
	const char *f = plait_map_get(&idx->annotations, PLAIT_CACHE_ANNOTATION_FORMAT);
	if (f && atoi(f) > PLAIT_CACHE_FORMAT)
		return -1;
	return 1;
}

static int64_t size_of(const struct plait_descriptor *d)
{
	const char *s = plait_map_get(&d->annotations, PLAIT_CACHE_ANNOTATION_SIZE);
	long long v = s ? atoll(s) : 0;
	return v > 0 ? v : d->size;
}

int plait_cache_index_merge(const void *old, size_t old_len, const struct plait_descriptor *parts,
			    size_t n_parts, int64_t max_size, struct plait_buf *out, char **note, size_t *dropped,
			    struct plait_error **err)
{
	*dropped = 0;
	struct plait_index prev = { 0 }, idx = { 0 };
	*note = NULL;
	bool have_prev = false;
	if (old) {
		struct plait_error *e = NULL;
		if (plait_index_parse(old, old_len, &prev, &e) < 0) {
			struct plait_buf m = PLAIT_BUF_INIT;
			plait_buf_addf(&m, "it held something that is not a plait cache (%s): replaced", e->msg);
			*note = plait_buf_detach(&m, NULL);
			plait_error_free(e);
		} else {
			int ours = index_is_ours(&prev);
			if (ours == 1)
				have_prev = true;
			else
				*note = xstrdup(ours < 0 ? "it held a plait cache of a newer format: replaced"
							 : "it held an index that is not a plait cache: replaced");
		}
	}
	idx.schema_version = 2;
	idx.media_type = xstrdup(plait_media_type_to_string(PLAIT_MT_OCI_INDEX));
	idx.artifact_type = xstrdup(PLAIT_CACHE_ARTIFACT_TYPE);
	char fmt[16];
	snprintf(fmt, sizeof(fmt), "%d", PLAIT_CACHE_FORMAT);
	plait_map_set(&idx.annotations, PLAIT_CACHE_ANNOTATION_FORMAT, fmt);
	/* Every other writer's parts stay, in their order; ours replace ours. */
	for (size_t i = 0; have_prev && i < prev.n_manifests; i++) {
		const char *pn = part_of(&prev.manifests[i]);
		bool mine = false;
		for (size_t j = 0; pn && j < n_parts; j++)
			mine = mine || streq_ptr(pn, part_of(&parts[j]));
		if (pn && !mine)
			plait_index_add(&idx, &prev.manifests[i]);
	}
	size_t others = idx.n_manifests;
	for (size_t j = 0; j < n_parts; j++)
		plait_index_add(&idx, &parts[j]);
	/* max-size: the least recently written of the others go first */
	int64_t total = 0;
	for (size_t i = 0; i < idx.n_manifests; i++)
		total += size_of(&idx.manifests[i]);
	while (max_size > 0 && total > max_size && others > 0) {
		size_t oldest = 0;
		for (size_t i = 1; i < others; i++) {
			const char *a = plait_map_get(&idx.manifests[i].annotations, PLAIT_CACHE_ANNOTATION_WRITTEN);
			const char *b = plait_map_get(&idx.manifests[oldest].annotations, PLAIT_CACHE_ANNOTATION_WRITTEN);
			if (strcmp(a ? a : "", b ? b : "") < 0)
				oldest = i;
		}
		total -= size_of(&idx.manifests[oldest]);
		plait_descriptor_release(&idx.manifests[oldest]);
		memmove(&idx.manifests[oldest], &idx.manifests[oldest + 1],
			(idx.n_manifests - oldest - 1) * sizeof(*idx.manifests));
		idx.n_manifests--;
		others--;
		(*dropped)++;
	}
	plait_buf_reset(out);
	int r = plait_index_serialise(&idx, out, err);
	plait_index_release(&prev);
	plait_index_release(&idx);
	return r;
}

bool plait_cache_index_has(const void *data, size_t len, const struct plait_descriptor *parts, size_t n_parts)
{
	struct plait_index idx = { 0 };
	if (plait_index_parse(data, len, &idx, NULL) < 0)
		return false;
	bool all = index_is_ours(&idx) == 1;
	for (size_t j = 0; all && j < n_parts; j++) {
		bool found = false;
		for (size_t i = 0; !found && i < idx.n_manifests; i++)
			found = streq(idx.manifests[i].digest, parts[j].digest);
		all = found;
	}
	plait_index_release(&idx);
	return all;
}

/* ------------------------------------------------------------ import */

struct import_source {
	struct plait_endpoint *ep;
	char *name;
	char **blobs; /* the layer digests its parts list */
};

struct plait_cache_import {
	struct import_source *src;
	size_t n_src;
	struct plait_cache_record *rec;
	size_t n_rec;
	size_t *rec_src; /* per record: its source */
	struct imported_mount {
		char *id;
		struct plait_cache_step blob;
		size_t src;
	} *mounts;
	size_t n_mounts;
	size_t fetched;
	pthread_mutex_t lock;
};

struct plait_cache_import *plait_cache_import_new(void)
{
	struct plait_cache_import *imp = xcalloc(1, sizeof(*imp));
	pthread_mutex_init(&imp->lock, NULL);
	return imp;
}

void plait_cache_import_free(struct plait_cache_import *imp)
{
	if (!imp)
		return;
	for (size_t i = 0; i < imp->n_src; i++) {
		plait_endpoint_free(imp->src[i].ep);
		free(imp->src[i].name);
		plait_strv_free(imp->src[i].blobs);
	}
	free(imp->src);
	plait_cache_records_free(imp->rec, imp->n_rec);
	free(imp->rec_src);
	for (size_t i = 0; i < imp->n_mounts; i++) {
		free(imp->mounts[i].id);
		plait_cache_step_release(&imp->mounts[i].blob);
	}
	free(imp->mounts);
	pthread_mutex_destroy(&imp->lock);
	free(imp);
}

size_t plait_cache_import_count(const struct plait_cache_import *imp)
{
	return imp ? imp->n_rec : 0;
}

size_t plait_cache_import_fetched(const struct plait_cache_import *imp)
{
	return imp ? imp->fetched : 0;
}

static void warnf(plait_cache_warn_fn warn, void *ctx, const char *fmt, ...) _printf_(3, 4);
static void warnf(plait_cache_warn_fn warn, void *ctx, const char *fmt, ...)
{
	if (!warn)
		return;
	struct plait_buf m = PLAIT_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&m, fmt, ap);
	va_end(ap);
	warn(ctx, m.buf);
	plait_buf_release(&m);
}

static ssize_t find_record(const struct plait_cache_import *imp, const char *key)
{
	for (size_t i = 0; i < imp->n_rec; i++)
		if (streq(imp->rec[i].key, key))
			return (ssize_t)i;
	return -1;
}

/* Read a small blob and check its bytes against the digest whatever the
 * endpoint did (a local layout serves files as they are on disk). */
static int read_checked(struct plait_endpoint *ep, const struct plait_descriptor *d, size_t max,
			struct plait_buf *out, struct plait_error **err)
{
	int r = plait_endpoint_read_blob(ep, d, max, out, err);
	if (r < 0)
		return r;
	char got[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(out->buf, out->len, got);
	if (!streq(got, d->digest))
		return plait_error_set(err, PLAIT_E_INVALID, "digest mismatch: expected %s, got %s", d->digest, got);
	return 0;
}

/* One part manifest of source s: its records, added where no earlier source
 * has the key. A bad part is a warning; the others still count. */
static void import_part(struct plait_cache_import *imp, size_t si, const struct plait_descriptor *pd,
			plait_cache_warn_fn warn, void *ctx)
{
	struct import_source *s = &imp->src[si];
	struct plait_buf body = PLAIT_BUF_INIT, rb = PLAIT_BUF_INIT;
	struct plait_manifest m = { 0 };
	struct plait_error *e = NULL;
	_cleanup_free_ char *mt = NULL, *part = NULL;
	char dg[PLAIT_DIGEST_MAX];
	struct plait_cache_record *v = NULL;
	size_t n = 0;
	const char *pn = part_of(pd) ? part_of(pd) : pd->digest;
	int r = s->ep->ops->get_manifest(s->ep, pd->digest, &body, &mt, dg, &e);
	if (r >= 0 && !streq(dg, pd->digest))
		r = plait_error_set(&e, PLAIT_E_INVALID, "digest mismatch: expected %s, got %s", pd->digest, dg);
	if (r >= 0)
		r = plait_manifest_parse(body.buf, body.len, &m, &e);
	if (r >= 0 && (!m.artifact_type || !streq(m.artifact_type, PLAIT_CACHE_ARTIFACT_TYPE) || m.n_layers < 1 ||
		       !streq_ptr(m.layers[0].media_type, PLAIT_CACHE_STEPS_MEDIA_TYPE)))
		r = plait_error_set(&e, PLAIT_E_INVALID, "not a plait cache part (artifactType %s)",
				    m.artifact_type ? m.artifact_type : "none");
	if (r >= 0 && m.layers[0].size > (int64_t)RECORDS_MAX)
		r = plait_error_set(&e, PLAIT_E_INVALID, "step records of %lld bytes (at most %u)",
				    (long long)m.layers[0].size, RECORDS_MAX);
	if (r >= 0) {
		r = read_checked(s->ep, &m.layers[0], RECORDS_MAX, &rb, &e);
		if (r < 0)
			plait_error_wrap(&e, "step records %s", m.layers[0].digest);
	}
	if (r >= 0)
		r = plait_cache_records_parse(rb.buf, rb.len, &part, &v, &n, &e);
	if (r < 0) {
		warnf(warn, ctx, "cache %s: part '%s' (%s) ignored: %s", s->name, pn, pd->digest, e->msg);
		goto out;
	}
	for (size_t i = 1; i < m.n_layers; i++)
		if (!plait_strv_contains(s->blobs, m.layers[i].digest))
			plait_strv_push(&s->blobs, m.layers[i].digest);
	{
		/* a cache mount's part: its tree as one blob */
		json_auto_t *o = json_loadb(rb.buf, rb.len, 0, NULL);
		json_t *mo = json_object_get(o, "mount");
		const char *id = json_string_value(json_object_get(mo, "id"));
		struct plait_cache_step blob;
		if (id && *id && plait_cache_step_from_json(mo, &blob) == 1) {
			bool known = blob.empty || !plait_strv_contains(s->blobs, blob.layer.digest);
			for (size_t i = 0; !known && i < imp->n_mounts; i++)
				known = streq(imp->mounts[i].id, id);
			if (!known) {
				imp->mounts = xrealloc(imp->mounts, (imp->n_mounts + 1) * sizeof(*imp->mounts));
				imp->mounts[imp->n_mounts++] = (struct imported_mount){ xstrdup(id), blob, si };
			} else {
				plait_cache_step_release(&blob);
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		/* a record whose blob the part does not carry cannot be fetched */
		if (!v[i].step.empty && !plait_strv_contains(s->blobs, v[i].step.layer.digest))
			continue;
		if (find_record(imp, v[i].key) >= 0)
			continue; /* an earlier source (or part) has it */
		imp->rec = xrealloc(imp->rec, (imp->n_rec + 1) * sizeof(*imp->rec));
		imp->rec_src = xrealloc(imp->rec_src, (imp->n_rec + 1) * sizeof(*imp->rec_src));
		imp->rec[imp->n_rec] = v[i];
		memset(&v[i].step, 0, sizeof(v[i].step));
		imp->rec_src[imp->n_rec++] = si;
	}
out:
	plait_cache_records_free(v, n);
	plait_manifest_release(&m);
	plait_buf_release(&body);
	plait_buf_release(&rb);
	plait_error_free(e);
}

void plait_cache_import_add(struct plait_cache_import *imp, struct plait_endpoint *ep, const char *name,
			    plait_cache_warn_fn warn, void *ctx)
{
	struct plait_buf body = PLAIT_BUF_INIT;
	struct plait_index idx = { 0 };
	struct plait_error *e = NULL;
	_cleanup_free_ char *mt = NULL;
	char dg[PLAIT_DIGEST_MAX];
	int r = ep->ops->get_manifest(ep, NULL, &body, &mt, dg, &e);
	if (r < 0) {
		if (plait_error_code(&e) == PLAIT_E_NOT_FOUND)
			warnf(warn, ctx, "cache %s: nothing there yet (%s): building without it", name, e->msg);
		else
			warnf(warn, ctx, "cache %s cannot be read (%s): building without it", name, e->msg);
		goto drop;
	}
	if (plait_index_parse(body.buf, body.len, &idx, &e) < 0) {
		warnf(warn, ctx, "cache %s is not a plait cache (%s): building without it", name, e->msg);
		goto drop;
	}
	int ours = index_is_ours(&idx);
	if (ours <= 0) {
		warnf(warn, ctx,
		      ours < 0 ? "cache %s was written by a newer plait (format %s): building without it"
			       : "cache %s is not a plait cache (artifactType %s): building without it",
		      name,
		      ours < 0 ? plait_map_get(&idx.annotations, PLAIT_CACHE_ANNOTATION_FORMAT)
		      : idx.artifact_type ? idx.artifact_type
					  : "none");
		goto drop;
	}
	imp->src = xrealloc(imp->src, (imp->n_src + 1) * sizeof(*imp->src));
	size_t si = imp->n_src++;
	imp->src[si] = (struct import_source){ .ep = ep, .name = xstrdup(name) };
	ep = NULL;
	for (size_t i = 0; i < idx.n_manifests; i++)
		import_part(imp, si, &idx.manifests[i], warn, ctx);
drop:
	plait_endpoint_free(ep);
	plait_index_release(&idx);
	plait_buf_release(&body);
	plait_error_free(e);
}

int plait_cache_import_lookup(const struct plait_cache_import *imp, const char *key, struct plait_cache_step *out)
{
	if (!imp)
		return 0;
	ssize_t i = find_record(imp, key);
	if (i < 0)
		return 0;
	const struct plait_cache_step *s = &imp->rec[i].step;
	memset(out, 0, sizeof(*out));
	out->empty = s->empty;
	out->created = xstrdup_or_null(s->created);
	out->source = xstrdup(imp->src[imp->rec_src[i]].name);
	memcpy(out->alias_of, s->alias_of, sizeof(out->alias_of));
	if (!s->empty) {
		plait_descriptor_copy(&out->layer, &s->layer);
		memcpy(out->diff_id, s->diff_id, sizeof(out->diff_id));
	}
	return 1;
}

int plait_cache_import_fetch(struct plait_cache_import *imp, struct plait_store *store,
			     const struct plait_descriptor *d, struct plait_error **err)
{
	if (!imp)
		return 0;
	pthread_mutex_lock(&imp->lock);
	int r = plait_store_has(store, d->digest, NULL, err), failed = 0;
	if (r == 1) {
		pthread_mutex_unlock(&imp->lock);
		return 0;
	}
	for (size_t i = 0; r == 0 && i < imp->n_src; i++) {
		struct import_source *s = &imp->src[i];
		if (!plait_strv_contains(s->blobs, d->digest))
			continue;
		struct plait_blob_writer *w = NULL;
		struct plait_error *e = NULL;
		int f = plait_blob_writer_new(store, d->digest, d->size, &w, &e);
		if (f >= 0)
			f = s->ep->ops->fetch_blob(s->ep, d, w, &e);
		if (f >= 0)
			f = plait_blob_writer_commit(w, NULL, &e);
		plait_blob_writer_free(w);
		if (f >= 0) {
			imp->fetched++;
			r = 1;
			plait_error_free(e);
			break;
		}
		/* kept for the message when no later source has it either */
		plait_error_move(err, e);
		plait_error_wrap(err, "fetch layer %s from cache %s", d->digest, s->name);
		failed = f;
	}
	pthread_mutex_unlock(&imp->lock);
	if (r == 1)
		return 1;
	return r < 0 ? r : failed < 0 ? failed : 0;
}

int plait_cache_import_restore_mount(struct plait_cache_import *imp, const char *id, struct plait_store *store,
				     const char *dir, const char *tmp_parent, struct plait_error **err)
{
	const struct imported_mount *m = NULL;
	for (size_t i = 0; imp && !m && i < imp->n_mounts; i++)
		if (streq(imp->mounts[i].id, id))
			m = &imp->mounts[i];
	if (!m)
		return 0;
	int r = plait_cache_import_fetch(imp, store, &m->blob.layer, err);
	if (r < 0)
		return r;
	struct plait_tmpdir t = PLAIT_TMPDIR_INIT;
	r = plait_tmpdir_make(tmp_parent, "mount-", &t, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *tree = plait_path_join(t.path, "tree");
	if (mkdir(tree, 0755) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot create '%s'", tree);
		goto out;
	}
	/* untrusted bytes like any layer: the unpacker keeps them below tree */
	struct plait_unpack_options uo = { .mode = PLAIT_UNPACK_PLAIN,
					   .media_type = m->blob.layer.media_type,
					   .diff_id = m->blob.diff_id,
					   .digest = m->blob.layer.digest };
	r = plait_unpack_blob(store, m->blob.layer.digest, tree, &uo, NULL, err);
	if (r < 0) {
		plait_error_wrap(err, "restore cache mount '%s' from %s", id, imp->src[m->src].name);
		goto out;
	}
	struct stat old;
	if (stat(dir, &old) == 0) {
		/* the empty directory it replaces was made with the mount's uid=, gid=, mode= */
		if (chown(tree, old.st_uid, old.st_gid) < 0 || chmod(tree, old.st_mode & 07777) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot set the owner and mode of '%s'", tree);
			goto out;
		}
	}
	if (rename(tree, dir) < 0) {
		if (errno != EEXIST && errno != ENOTEMPTY)
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot rename '%s' to '%s'", tree, dir);
		else
			r = 0; /* another job restored it first */
		goto out;
	}
	r = 1;
out:
	plait_tmpdir_remove(&t);
	return r;
}

int plait_cache_import_mount(struct plait_cache_import *imp, struct plait_endpoint *dst,
			     const struct plait_descriptor *d, struct plait_error **err)
{
	if (!imp || !dst->ops->mount_blob)
		return 0;
	for (size_t i = 0; i < imp->n_src; i++) {
		if (!plait_strv_contains(imp->src[i].blobs, d->digest))
			continue;
		int r = dst->ops->mount_blob(dst, d, imp->src[i].ep, err);
		if (r != 0)
			return r;
	}
	return 0;
}

int plait_cache_fetch_blob(struct plait_endpoint *ep, struct plait_store *store, const struct plait_descriptor *d,
			   struct plait_error **err)
{
	struct plait_blob_writer *w = NULL;
	int r = plait_blob_writer_new(store, d->digest, d->size, &w, err);
	if (r >= 0)
		r = ep->ops->fetch_blob(ep, d, w, err);
	if (r >= 0)
		r = plait_blob_writer_commit(w, NULL, err);
	plait_blob_writer_free(w);
	if (r < 0)
		plait_error_wrap(err, "fetch %s from %s", d->digest, ep->display);
	return r < 0 ? r : 1;
}

int plait_cache_ensure_blob(struct plait_endpoint *dst, const struct plait_descriptor *d, struct plait_store *store,
			    struct plait_endpoint *const *mount_from, size_t n_mount_from,
			    struct plait_cache_import *imp, struct plait_error **err)
{
	int r = dst->store ? plait_store_has(dst->store, d->digest, NULL, err) : dst->ops->has_blob(dst, d, err);
	if (r != 0)
		return r < 0 ? r : 0;
	for (size_t i = 0; dst->ops->mount_blob && i < n_mount_from; i++) {
		if (mount_from[i] == dst)
			continue;
		/* only where the blob is: a mount of a missing blob is an upload session */
		struct plait_error *e = NULL;
		if (mount_from[i]->ops->has_blob(mount_from[i], d, &e) == 1 &&
		    dst->ops->mount_blob(dst, d, mount_from[i], &e) == 1) {
			plait_error_free(e);
			return 0;
		}
		plait_error_free(e);
	}
	r = plait_cache_import_mount(imp, dst, d, err);
	if (r != 0)
		return r < 0 ? r : 0;
	r = plait_store_has(store, d->digest, NULL, err);
	if (r != 0)
		return r < 0 ? r : 0;
	r = plait_cache_import_fetch(imp, store, d, err);
	if (r != 0)
		return r < 0 ? r : 0;
	for (size_t i = 0; i < n_mount_from; i++) {
		struct plait_error *e = NULL;
		if (mount_from[i]->ops->has_blob(mount_from[i], d, &e) == 1) {
			plait_error_free(e);
			r = plait_cache_fetch_blob(mount_from[i], store, d, err);
			return r < 0 ? r : 0;
		}
		plait_error_free(e);
	}
	return plait_error_set(err, PLAIT_E_NOT_FOUND,
			       "blob %s is neither in the local cache nor in any --cache-from source", d->digest);
}

/* ------------------------------------------------------------ export */

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Part p as a manifest in store: records blob, the empty config, the layers. */
static int make_part(const char *cache_dir, struct plait_store *store, const struct plait_cache_part *p,
		     struct plait_descriptor *out, struct plait_buf *bytes, size_t *n_rec, struct plait_error **err)
{
	struct plait_cache_record *v = xcalloc(p->n_keys + 1, sizeof(*v));
	size_t n = 0;
	struct plait_manifest m = { 0 };
	struct plait_buf rb = PLAIT_BUF_INIT;
	char dg[PLAIT_SHA256_DIGEST_SIZE];
	int r;
	m.schema_version = 2;
	m.media_type = xstrdup(plait_media_type_to_string(PLAIT_MT_OCI_MANIFEST));
	m.artifact_type = xstrdup(PLAIT_CACHE_ARTIFACT_TYPE);
	m.layers = xcalloc(p->n_keys + 2, sizeof(*m.layers));
	if (p->mount_dir) {
		/* a cache mount: its tree as one layer, and a records blob naming it */
		struct plait_layer lay;
		r = plait_layer_from_tree(store, p->mount_dir, NULL, &lay, err);
		if (r < 0) {
			plait_error_wrap(err, "cache mount '%s'", p->mount_id);
			goto out;
		}
		struct plait_cache_step blob = { .created = (char *)"" };
		blob.layer.media_type = (char *)lay.media_type;
		memcpy(blob.layer.digest, lay.digest, sizeof(lay.digest));
		blob.layer.size = lay.size;
		memcpy(blob.diff_id, lay.diff_id, sizeof(lay.diff_id));
		json_auto_t *o = json_object();
		json_t *mo = plait_cache_step_to_json(&blob);
		json_object_set_new(mo, "id", json_string(p->mount_id));
		json_object_set_new(o, "format", json_integer(PLAIT_CACHE_FORMAT));
		json_object_set_new(o, "part", json_string(p->name));
		json_object_set_new(o, "steps", json_array());
		json_object_set_new(o, "mount", mo);
		_cleanup_free_ char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
		plait_buf_reset(&rb);
		plait_buf_adds(&rb, text);
		r = plait_store_put_bytes(store, rb.buf, rb.len, dg, err);
		if (r < 0)
			goto out;
		m.layers[0].media_type = xstrdup(PLAIT_CACHE_STEPS_MEDIA_TYPE);
		memcpy(m.layers[0].digest, dg, sizeof(dg));
		m.layers[0].size = (int64_t)rb.len;
		plait_descriptor_copy(&m.layers[1], &blob.layer);
		m.n_layers = 2;
		goto config;
	}
	for (size_t i = 0; i < p->n_keys; i++) {
		bool dup = false;
		for (size_t j = 0; j < n; j++)
			dup = dup || streq(v[j].key, p->keys[i]);
		_cleanup_free_ char *path = plait_cache_step_path(cache_dir, p->keys[i]);
		if (dup || plait_cache_step_read(path, &v[n].step) != 1)
			continue;
		memcpy(v[n].key, p->keys[i], PLAIT_SHA256_DIGEST_SIZE);
		n++;
	}
	plait_cache_records_serialise(p->name, v, n, &rb);
	r = plait_store_put_bytes(store, rb.buf, rb.len, dg, err);
	if (r < 0)
		goto out;
	m.layers[0].media_type = xstrdup(PLAIT_CACHE_STEPS_MEDIA_TYPE);
	memcpy(m.layers[0].digest, dg, sizeof(dg));
	m.layers[0].size = (int64_t)rb.len;
	m.n_layers = 1;
	for (size_t i = 0; i < n; i++) {
		if (v[i].step.empty)
			continue;
		bool dup = false;
		for (size_t j = 1; j < m.n_layers; j++)
			dup = dup || streq(m.layers[j].digest, v[i].step.layer.digest);
		if (!dup) {
			plait_descriptor_copy(&m.layers[m.n_layers], &v[i].step.layer);
			m.n_layers++;
		}
	}
config:
	r = plait_store_put_bytes(store, EMPTY_JSON, strlen(EMPTY_JSON), dg, err);
	if (r < 0)
		goto out;
	m.config.media_type = xstrdup(plait_media_type_to_string(PLAIT_MT_OCI_EMPTY));
	memcpy(m.config.digest, dg, sizeof(dg));
	m.config.size = (int64_t)strlen(EMPTY_JSON);
	r = plait_manifest_serialise(&m, bytes, err);
	if (r >= 0)
		r = plait_store_put_bytes(store, bytes->buf, bytes->len, dg, err);
	if (r < 0)
		goto out;
	out->media_type = xstrdup(m.media_type);
	memcpy(out->digest, dg, sizeof(dg));
	out->size = (int64_t)bytes->len;
	out->artifact_type = xstrdup(PLAIT_CACHE_ARTIFACT_TYPE);
	plait_map_set(&out->annotations, PLAIT_CACHE_ANNOTATION_PART, p->name);
	int64_t total = m.config.size + (int64_t)bytes->len;
	for (size_t i = 0; i < m.n_layers; i++)
		total += m.layers[i].size;
	char num[32], now[PLAIT_RFC3339_MAX];
	snprintf(num, sizeof(num), "%lld", (long long)total);
	plait_map_set(&out->annotations, PLAIT_CACHE_ANNOTATION_SIZE, num);
	plait_rfc3339_now_or(false, 0, now); /* real time, whatever the epoch: LRU order */
	plait_map_set(&out->annotations, PLAIT_CACHE_ANNOTATION_WRITTEN, now);
	*n_rec = n;
out:
	plait_manifest_release(&m);
	plait_buf_release(&rb);
	plait_cache_records_free(v, n);
	return r;
}

/* The index at tag, or found = false when there is none yet. */
static int read_shared(struct plait_endpoint *dst, const char *tag, struct plait_buf *body, bool *found,
		       struct plait_error **err)
{
	_cleanup_free_ char *mt = NULL;
	char dg[PLAIT_DIGEST_MAX];
	struct plait_error *e = NULL;
	int r = dst->ops->get_manifest(dst, tag, body, &mt, dg, &e);
	*found = r >= 0;
	if (r < 0 && plait_error_code(&e) == PLAIT_E_NOT_FOUND) {
		plait_error_free(e);
		return 0;
	}
	if (r < 0) {
		plait_error_move(err, e);
	}
	return r;
}

int plait_cache_export(struct plait_endpoint *dst, const char *tag, const char *cache_dir, struct plait_store *store,
		       const struct plait_cache_part *parts, size_t n_parts, struct plait_endpoint *const *mount_from,
		       size_t n_mount_from, struct plait_cache_import *imp, int64_t max_size, long settle_ms,
		       struct plait_cache_export_stats *stats, plait_cache_warn_fn warn, void *ctx,
		       struct plait_error **err)
{
	struct plait_descriptor *pd = xcalloc(n_parts + 1, sizeof(*pd));
	struct plait_buf *pb = xcalloc(n_parts + 1, sizeof(*pb));
	struct plait_buf cur = PLAIT_BUF_INIT, merged = PLAIT_BUF_INIT;
	struct plait_endpoint *src = NULL;
	struct plait_store *src_store = NULL;
	struct plait_cache_export_stats st = { 0 };
	int r = 0;
	for (size_t i = 0; r >= 0 && i < n_parts; i++) {
		size_t nr = 0;
		r = make_part(cache_dir, store, &parts[i], &pd[i], &pb[i], &nr, err);
		st.records += nr;
	}
	if (r < 0)
		goto out;
	st.parts = n_parts;
	/* 1. every part by digest: its blobs (present, mounted or uploaded), then the manifest */
	r = plait_store_open(plait_store_path(store), false, &src_store, err);
	if (r < 0)
		goto out;
	src = plait_layout_endpoint_new(src_store, plait_store_path(store), plait_store_path(store), NULL);
	for (size_t i = 0; r >= 0 && i < n_parts; i++) {
		struct plait_manifest m = { 0 };
		r = plait_manifest_parse(pb[i].buf, pb[i].len, &m, err);
		for (size_t k = 1; r >= 0 && k < m.n_layers; k++)
			r = plait_cache_ensure_blob(dst, &m.layers[k], store, mount_from, n_mount_from, imp, err);
		plait_manifest_release(&m);
		if (r >= 0)
			r = plait_copy_image(src, dst, &pd[i], pb[i].buf, pb[i].len, NULL, NULL, NULL, err);
		if (r < 0)
			plait_error_wrap(err, "cache part '%s'", parts[i].name);
	}
	if (r < 0)
		goto out;
	/* 2. read, merge, write, settle, check: until every part of ours is there */
	long worst = 0;
	for (int attempt = 0;; attempt++) {
		bool found = false;
		long t0 = now_ms();
		_cleanup_free_ char *note = NULL;
		r = read_shared(dst, tag, &cur, &found, err);
		if (r >= 0)
			r = plait_cache_index_merge(found ? cur.buf : NULL, cur.len, pd, n_parts, max_size, &merged, &note,
						    &st.dropped, err);
		if (r < 0)
			goto out;
		if (note && attempt == 0)
			warnf(warn, ctx, "cache %s: %s", dst->display, note);
		char dg[PLAIT_SHA256_DIGEST_SIZE];
		plait_sha256_buf(merged.buf, merged.len, dg);
		struct plait_descriptor root = { .media_type = (char *)plait_media_type_to_string(PLAIT_MT_OCI_INDEX),
						 .size = (int64_t)merged.len };
		memcpy(root.digest, dg, sizeof(dg));
		if (dst->ops->put_manifest)
			r = dst->ops->put_manifest(dst, root.media_type, merged.buf, merged.len, dg, err);
		if (r >= 0)
			r = dst->ops->tag(dst, tag, &root, merged.buf, merged.len, err);
		if (r < 0)
			goto out;
		st.merges++;
		long took = now_ms() - t0;
		worst = took > worst ? took : worst;
		/* Another writer that read the index before our tag moved writes
		 * within about one read-merge-write of its own: wait that out. */
		long settle = settle_ms > 0 ? settle_ms : worst * 3 > 1000 ? worst * 3 : 1000;
		usleep((useconds_t)settle * 1000);
		r = read_shared(dst, tag, &cur, &found, err);
		if (r < 0)
			goto out;
		if (found && plait_cache_index_has(cur.buf, cur.len, pd, n_parts))
			break;
		if (attempt + 1 >= PLAIT_CACHE_MERGE_TRIES) {
			r = plait_error_set(err, PLAIT_E_RETRYABLE,
					    "cache %s: other writers replaced the index %d times in a row; its parts "
					    "are pushed by digest but not listed",
					    dst->display, PLAIT_CACHE_MERGE_TRIES);
			goto out;
		}
		/* jitter, so two writers that collided do not collide again */
		usleep((useconds_t)(50 + (unsigned)(now_ms() % 250)) * 1000);
	}
	r = plait_endpoint_commit(dst, err);
out:
	if (stats)
		*stats = st;
	for (size_t i = 0; i < n_parts; i++) {
		plait_descriptor_release(&pd[i]);
		plait_buf_release(&pb[i]);
	}
	free(pd);
	free(pb);
	plait_buf_release(&cur);
	plait_buf_release(&merged);
	plait_endpoint_free(src);
	return r;
}
