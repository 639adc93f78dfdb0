/* core/publish.c - outputs, pushes by digest, tags last; see publish.h. */
#include "publish.h"
#include "util.h"
#include "core/banned.h"

static bool interrupted(const struct plait_publish_opts *o)
{
	return o->interrupt && *o->interrupt;
}

static void event(const struct plait_publish_opts *o, enum plait_publish_event_kind kind,
		  const struct plait_publish_item *it)
{
	if (o->event)
		o->event(o->ctx, kind, it);
}

/* The item's images by digest, then its root. */
static int put_item(const struct plait_publish_item *it, const struct plait_publish_opts *o,
		    const struct plait_copy_opts *co, struct plait_error **err)
{
	int r = 0;
	for (size_t i = 0; i < it->n_copies && r >= 0; i++) {
		const struct plait_publish_copy *c = &it->copies[i];
		r = plait_copy_image(c->src, it->dst, c->desc, c->data, c->len, NULL, co, NULL, err);
	}
	if (r >= 0 && it->put_root && interrupted(o))
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted: %s not written or tagged", it->name);
	if (r >= 0 && it->put_root)
		r = it->dst->ops->put_manifest(it->dst, it->root->media_type, it->data, it->len, it->root->digest,
					       err);
	return r;
}

/* Whether the destination already holds the item: its tag (or, by digest,
 * the root itself) names the root's digest, so its blobs and child manifests
 * are there too (a registry keeps what a manifest it holds names). A failed
 * look-up only means "not known": the item is pushed as usual. */
static bool in_place(const struct plait_publish_item *it, bool by_digest)
{
	return it->root &&
	       plait_endpoint_holds(it->dst, !by_digest && it->tag ? it->tag : it->root->digest, it->root->digest);
}

/* Whether subject already has a referrer of artifact type at in dst. */
static bool has_referrer_of_type(struct plait_endpoint *dst, const char *subject, const char *at)
{
	struct plait_index idx = { 0 };
	struct plait_error *e = NULL;
	bool found = false;
	if (dst->ops->list_referrers && dst->ops->list_referrers(dst, subject, &idx, NULL, &e) >= 0)
		for (size_t i = 0; i < idx.n_manifests && !found; i++)
			found = idx.manifests[i].artifact_type && streq(idx.manifests[i].artifact_type, at);
	plait_error_free(e);
	plait_index_release(&idx);
	return found;
}

static int put_referrers(const struct plait_publish_item *it, bool current, const struct plait_copy_opts *co,
			 struct plait_error **err)
{
	if (!it->n_referrers)
		return 0;
	if (!it->dst->ops->put_referrer)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "%s keeps no referrers: attestations are attached to images in registries",
				       it->name);
	/* put_referrer stores the referrer itself: the copy brings its blobs */
	struct plait_copy_opts blobs = *co;
	blobs.no_root = true;
	for (size_t i = 0; i < it->n_referrers; i++) {
		const struct plait_publish_copy *c = &it->referrers[i];
		struct plait_manifest m = { 0 };
		int r = plait_manifest_parse(c->data, c->len, &m, err);
		if (r >= 0 && !m.subject)
			r = plait_error_set(err, PLAIT_E_USAGE, "referrer %s has no subject", c->desc->digest);
		bool skip = r >= 0 && current && m.artifact_type &&
			    has_referrer_of_type(it->dst, m.subject->digest, m.artifact_type);
		if (r >= 0 && !skip)
			r = plait_copy_image(c->src, it->dst, c->desc, c->data, c->len, NULL, &blobs, NULL, err);
		if (r >= 0 && !skip)
			r = it->dst->ops->put_referrer(it->dst, c->data, c->len, NULL, err);
		if (r < 0)
			plait_error_wrap(err, "attach %s (%s) to %s", c->desc->digest,
					 m.artifact_type ? m.artifact_type : "artifact",
					 m.subject ? m.subject->digest : "?");
		plait_manifest_release(&m);
		if (r < 0)
			return r;
	}
	return 0;
}

static int commit_all(const struct plait_publish_item *items, size_t n, struct plait_error **err)
{
	for (size_t k = 0; k < n; k++) {
		bool seen = false;
		for (size_t k2 = 0; k2 < k && !seen; k2++)
			seen = items[k2].dst == items[k].dst;
		if (!seen && plait_endpoint_commit(items[k].dst, err) < 0)
			return -plait_error_code(err);
	}
	return 0;
}

int plait_publish_push(const struct plait_publish_item *items, size_t n, bool by_digest,
		       const struct plait_publish_opts *o, struct plait_publish_status *st,
		       struct plait_error **err)
{
	static const struct plait_copy_opts no_opts = { 0 };
	const struct plait_copy_opts *co = o->copy ? o->copy : &no_opts;
	_cleanup_free_ bool *current = xcalloc(n + 1, sizeof(*current));
	memset(st, 0, sizeof(*st));
	for (size_t k = 0; k < n; k++, st->pushed++) {
		st->item = k;
		current[k] = in_place(&items[k], by_digest);
		int r = current[k] ? 0 : put_item(&items[k], o, co, err);
		if (r >= 0)
			r = put_referrers(&items[k], current[k], co, err);
		if (r < 0)
			return r;
		event(o, current[k] ? PLAIT_PUBLISH_CURRENT : PLAIT_PUBLISH_PUSHED, &items[k]);
	}
	st->phase = PLAIT_PUBLISH_PHASE_TAG;
	st->item = 0;
	if (interrupted(o))
		return plait_error_set(err, PLAIT_E_CANCELLED, "interrupted: no tag was moved");
	for (size_t k = 0; !by_digest && k < n; k++) {
		const struct plait_publish_item *it = &items[k];
		st->item = k;
		if (!it->tag)
			continue;
		if (current[k]) { /* the tag is already where it is to go */
			st->tagged++;
			continue;
		}
		if (interrupted(o))
			return plait_error_set(err, PLAIT_E_CANCELLED, "interrupted: '%s' not tagged", it->name);
		int r = it->dst->ops->tag(it->dst, it->tag, it->root, it->data, it->len, err);
		if (r < 0)
			return r;
		st->tagged++;
		event(o, PLAIT_PUBLISH_TAGGED, it);
	}
	st->phase = PLAIT_PUBLISH_PHASE_COMMIT;
	return commit_all(items, n, err);
}

int plait_publish_output(const struct plait_publish_item *items, size_t n, const struct plait_publish_opts *o,
			 struct plait_error **err)
{
	static const struct plait_copy_opts no_opts = { 0 };
	const struct plait_copy_opts *co = o->copy ? o->copy : &no_opts;
	for (size_t k = 0; k < n; k++) {
		const struct plait_publish_item *it = &items[k];
		int r = put_item(it, o, co, err);
		bool tags = it->tag || it->dst->store; /* a layout names an untagged image in its index too */
		if (r >= 0 && tags && interrupted(o))
			r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted before tagging '%s'",
					    it->tag ? it->tag : it->name);
		if (r >= 0 && tags)
			r = it->dst->ops->tag(it->dst, it->tag, it->root, it->data, it->len, err);
		if (r < 0)
			return r;
	}
	return commit_all(items, n, err);
}

static struct plait_endpoint *pool_find(const struct plait_publish_pool *pool, const char *name)
{
	for (size_t k = 0; k < pool->n; k++)
		if (streq(pool->v[k]->name, name))
			return pool->v[k];
	return NULL;
}

int plait_publish_pool_open(struct plait_publish_pool *pool, const char *spec, plait_open_fn open, void *ctx,
			    struct plait_endpoint **ep, char **ref, struct plait_error **err)
{
	/* A layout or archive already open for an earlier name is used again
	 * (an archive is locked by its writer: a second open would wait). */
	_cleanup_free_ char *place = NULL, *lref = NULL;
	struct plait_endpoint *open_ep = NULL;
	if (plait_endpoint_local_place(spec, &place, &lref) == 0)
		open_ep = pool_find(pool, place);
	if (open_ep && lref && !strchr(lref, ':')) {
		*ep = open_ep;
		*ref = TAKE_PTR(lref);
		return 0;
	}
	struct plait_endpoint *fresh = NULL;
	int r = open(ctx, spec, true, &fresh, err);
	if (r < 0)
		return r;
	*ref = xstrdup_or_null(fresh->ref);
	/* names carry their kind ("oci:", "oci-archive:", or a registry's host) */
	struct plait_endpoint *same = pool_find(pool, fresh->name);
	if (same) {
		plait_endpoint_free(fresh);
		fresh = same;
	} else {
		pool->v = xrealloc(pool->v, (pool->n + 1) * sizeof(*pool->v));
		pool->v[pool->n++] = fresh;
	}
	*ep = fresh;
	return 0;
}

void plait_publish_pool_release(struct plait_publish_pool *pool)
{
	for (size_t i = 0; i < pool->n; i++)
		plait_endpoint_free(pool->v[i]);
	free(pool->v);
	memset(pool, 0, sizeof(*pool));
}
