/* registry/endpoint.c - a registry repository behind the endpoint interface.
 * Endpoints on the same host share one client (connections, tokens), which is
 * also how a destination recognises a source it can mount blobs from. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "endpoint.h"
#include "core/digest.h"
#include "core/ref.h"
#include "core/strv.h"
#include "registries_conf.h"
#include "core/banned.h"

struct shared_client {
	char *host;
	struct plait_registry *reg;
	int refs;
	struct shared_client *next;
};

static pthread_mutex_t clients_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared_client *clients;

static int client_get(const char *host, const struct plait_registry_opts *opts,
		      struct shared_client **out, struct plait_error **err)
{
	int r = 0;
	pthread_mutex_lock(&clients_lock);
	struct shared_client *c;
	for (c = clients; c; c = c->next)
		if (streq(c->host, host))
			break;
	if (!c) {
		struct plait_registry *reg = NULL;
		r = plait_registry_new(host, opts, &reg, err);
		if (r >= 0) {
			c = xcalloc(1, sizeof(*c));
			c->host = xstrdup(host);
			c->reg = reg;
			c->next = clients;
			clients = c;
		}
	}
	if (c) {
		c->refs++;
		*out = c;
	}
	pthread_mutex_unlock(&clients_lock);
	return r;
}

static void client_put(struct shared_client *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&clients_lock);
	if (--c->refs == 0) {
		for (struct shared_client **p = &clients; *p; p = &(*p)->next)
			if (*p == c) {
				*p = c->next;
				break;
			}
		plait_registry_free(c->reg);
		free(c->host);
		free(c);
	}
	pthread_mutex_unlock(&clients_lock);
}

/* Hosts a pull could not reach during this run: later pulls skip them as
 * mirrors instead of paying every retry again (the location is always tried). */
static char **down_hosts;

static bool host_down(const char *host)
{
	pthread_mutex_lock(&clients_lock);
	bool down = plait_strv_contains((const char *const *)down_hosts, host);
	pthread_mutex_unlock(&clients_lock);
	return down;
}

/* true when host was not marked before */
static bool mark_down(const char *host)
{
	pthread_mutex_lock(&clients_lock);
	bool fresh = !plait_strv_contains((const char *const *)down_hosts, host);
	if (fresh)
		plait_strv_push(&down_hosts, host);
	pthread_mutex_unlock(&clients_lock);
	return fresh;
}

/* One place a pull may be answered from (registries_conf.h decides which,
 * in which order); a write endpoint has one: the reference itself. */
struct source {
	struct shared_client *client;
	char *repo;  /* "library/busybox" */
	char *dref;  /* its tag or digest, or NULL */
	char *name;  /* "127.0.0.1:5001/library/busybox", for messages and inspect */
	char *where; /* a mirror's origin: "FILE:LINE" or "--registry-mirror"; NULL for the location */
};

/* What this run has seen repositories hold: blobs it uploaded, mounted or
 * found with a HEAD, manifests it stored or found by digest. A registry keeps
 * what it acknowledged (plait deletes nothing), so nothing here is asked for
 * twice in a run: publishing does not check again the blobs the early push
 * (or a layer stream) just uploaded, nor push again a manifest already stored
 * by digest. Entries are "b HOST/REPO@DIGEST" and "m HOST/REPO@DIGEST";
 * only endpoints of a single source (pushes, pulls without mirrors) use it.
 * It lasts as long as the process: one run (a `plait serve` session is one
 * run of the plait that started it). A copy's progress still counts a
 * manifest it found stored as put. */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static char **held;

static char *held_key(char kind, const struct source *s, const char *digest)
{
	struct plait_buf k = PLAIT_BUF_INIT;
	plait_buf_addf(&k, "%c %s/%s@%s", kind, s->client->host, s->repo, digest);
	return plait_buf_detach(&k, NULL);
}

static bool held_has(char kind, const struct source *s, const char *digest)
{
	_cleanup_free_ char *k = held_key(kind, s, digest);
	pthread_mutex_lock(&held_lock);
	bool has = plait_strv_contains((const char *const *)held, k);
	pthread_mutex_unlock(&held_lock);
	return has;
}

static void held_add(char kind, const struct source *s, const char *digest)
{
	char *k = held_key(kind, s, digest);
	pthread_mutex_lock(&held_lock);
	if (plait_strv_contains((const char *const *)held, k))
		free(k);
	else
		plait_strv_push_take(&held, k);
	pthread_mutex_unlock(&held_lock);
}

struct reg_priv {
	struct source *src; /* mirrors in order, the location last */
	size_t n;
	struct plait_ref ref;
	atomic_int answered; /* index of the source that gave the last manifest, -1 before */
	void (*warn)(const char *msg);
};

static struct reg_priv *P(struct plait_endpoint *ep)
{
	return ep->priv;
}

/* The location: where pushes go, mounts are made, and pulls end. */
static struct source *primary(struct plait_endpoint *ep)
{
	return &P(ep)->src[P(ep)->n - 1];
}

typedef int (*source_fn)(struct source *s, void *ud, struct plait_error **err);

/* Run fn on each source in order until one succeeds (with zero_next, a 0
 * answer of a mirror also moves on: "not there"). The error of the last
 * source carries what each mirror said before it. */
static int try_sources(struct plait_endpoint *ep, source_fn fn, void *ud, bool zero_next, int *which,
		       struct plait_error **err)
{
	struct reg_priv *p = P(ep);
	struct plait_buf tried = PLAIT_BUF_INIT;
	int r = 0;
	for (size_t i = 0; i < p->n; i++) {
		struct source *s = &p->src[i];
		bool last = i + 1 == p->n;
		const char *host = s->client->host;
		if (!last && host_down(host)) {
			plait_buf_addf(&tried, "%smirror %s (%s): skipped, unreachable earlier in this run",
				       tried.len ? "; " : "", host, s->where);
			continue;
		}
		struct plait_error *e = NULL;
		r = fn(s, ud, &e);
		if (r > 0 || (r == 0 && (last || !zero_next))) {
			plait_error_free(e);
			*which = (int)i;
			goto out;
		}
		if (r == 0)
			continue;
		int code = plait_error_code(&e);
		if (last || code == PLAIT_E_CANCELLED) {
			if (tried.len && code != PLAIT_E_CANCELLED)
				plait_error_set(err, code, "%s: %s; then the registry: %s", ep->display, tried.buf,
						e->msg);
			else if (err) {
				plait_error_move(err, TAKE_PTR(e));
			}
			plait_error_free(e);
			goto out;
		}
		if (code == PLAIT_E_NETWORK && mark_down(host) && p->warn) {
			struct plait_buf w = PLAIT_BUF_INIT;
			plait_buf_addf(&w, "mirror %s (%s) is not used for the rest of this run: %s", host, s->where,
				       e->msg);
			p->warn(w.buf);
			plait_buf_release(&w);
		}
		plait_buf_addf(&tried, "%smirror %s (%s): %s", tried.len ? "; " : "", host, s->where, e->msg);
		plait_error_free(e);
	}
out:
	plait_buf_release(&tried);
	return r;
}

struct manifest_call {
	const char *ref;
	struct plait_buf *body;
	char **media_type;
	char *digest;
};

static int source_get_manifest(struct source *s, void *ud, struct plait_error **err)
{
	struct manifest_call *m = ud;
	/* A bare name means "latest", as docker pull does, for reading only. */
	const char *want = m->ref ? m->ref : s->dref ? s->dref : "latest";
	plait_buf_reset(m->body);
	free(*m->media_type);
	*m->media_type = NULL;
	return plait_registry_get_manifest(s->client->reg, s->repo, want, m->body, m->media_type, m->digest, err);
}

static int reg_get_manifest(struct plait_endpoint *ep, const char *ref, struct plait_buf *body,
			    char **media_type, char digest[PLAIT_DIGEST_MAX], struct plait_error **err)
{
	*media_type = NULL;
	struct manifest_call m = { .ref = ref, .body = body, .media_type = media_type, .digest = digest };
	int which = -1;
	int r = try_sources(ep, source_get_manifest, &m, false, &which, err);
	if (r >= 0)
		atomic_store(&P(ep)->answered, which);
	return r;
}

static int source_has_blob(struct source *s, void *ud, struct plait_error **err)
{
	const struct plait_descriptor *d = ud;
	return plait_registry_has_blob(s->client->reg, s->repo, d->digest, NULL, err);
}

static int reg_has_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			struct plait_error **err)
{
	int which;
	bool one = P(ep)->n == 1;
	if (one && held_has('b', primary(ep), d->digest))
		return 1;
	int r = try_sources(ep, source_has_blob, (void *)d, true, &which, err);
	if (one && r > 0)
		held_add('b', primary(ep), d->digest);
	return r;
}

struct blob_call {
	const struct plait_descriptor *d;
	struct plait_blob_writer *w;
};

static int source_fetch_blob(struct source *s, void *ud, struct plait_error **err)
{
	struct blob_call *b = ud;
	/* bytes a failed mirror wrote are dropped: one source per blob */
	if (plait_blob_writer_offset(b->w) > 0) {
		int r = plait_blob_writer_restart(b->w, err);
		if (r < 0)
			return r;
	}
	int r = plait_registry_get_blob(s->client->reg, s->repo, b->d->digest, b->d->size, b->w, err);
	/* a mirror's bytes are checked here, so that a corrupt mirror is passed
	 * over; the location's are checked by the caller's commit, as always */
	if (r >= 0 && s->where)
		r = plait_blob_writer_check(b->w, err);
	return r;
}

static int reg_fetch_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			  struct plait_blob_writer *w, struct plait_error **err)
{
	struct blob_call b = { .d = d, .w = w };
	int which;
	if (P(ep)->n == 1) /* no mirrors: resume whatever w already holds */
		return plait_registry_get_blob(primary(ep)->client->reg, primary(ep)->repo, d->digest, d->size, w,
					       err);
	return try_sources(ep, source_fetch_blob, &b, false, &which, err);
}

static int reg_put_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			const struct plait_blob_source *src, struct plait_error **err)
{
	int r = plait_registry_put_blob(primary(ep)->client->reg, primary(ep)->repo, d->digest, d->size, src, err);
	if (r >= 0)
		held_add('b', primary(ep), d->digest);
	return r;
}

static int reg_put_growing_blob(struct plait_endpoint *ep, const struct plait_blob_source *src,
				char digest[PLAIT_SHA256_DIGEST_SIZE], int64_t *size, struct plait_error **err)
{
	int r = plait_registry_put_growing_blob(primary(ep)->client->reg, primary(ep)->repo, src, digest, size, err);
	if (r >= 0)
		held_add('b', primary(ep), digest);
	return r;
}

static const struct plait_endpoint_ops registry_ops;

static int reg_mount_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			  struct plait_endpoint *from, struct plait_error **err)
{
	if (!from || from->ops != &registry_ops || primary(from)->client != primary(ep)->client ||
	    streq(primary(from)->repo, primary(ep)->repo))
		return 0;
	int r = plait_registry_mount_blob(primary(ep)->client->reg, primary(ep)->repo, d->digest,
					  primary(from)->repo, err);
	if (r > 0)
		held_add('b', primary(ep), d->digest);
	return r;
}

static int reg_put_manifest(struct plait_endpoint *ep, const char *media_type, const void *data,
			    size_t len, const char *digest, struct plait_error **err)
{
	/* the same bytes, by the same digest, stored earlier in this run */
	bool by_digest = plait_digest_is_sha256(digest);
	if (by_digest && held_has('m', primary(ep), digest))
		return 0;
	int r = plait_registry_put_manifest(primary(ep)->client->reg, primary(ep)->repo, digest, media_type,
					    data, len, err);
	if (r >= 0 && by_digest)
		held_add('m', primary(ep), digest);
	return r;
}

static int reg_tag(struct plait_endpoint *ep, const char *tag, const struct plait_descriptor *d,
		   const void *data, size_t len, struct plait_error **err)
{
	return plait_registry_put_manifest(primary(ep)->client->reg, primary(ep)->repo, tag, d->media_type, data,
					   len, err);
}

static int reg_head_ref(struct plait_endpoint *ep, const char *ref, char digest[PLAIT_DIGEST_MAX],
			struct plait_error **err)
{
	bool by_digest = plait_digest_is_sha256(ref);
	if (by_digest && held_has('m', primary(ep), ref)) {
		snprintf(digest, PLAIT_DIGEST_MAX, "%s", ref);
		return 1;
	}
	int r = plait_registry_head_manifest(primary(ep)->client->reg, primary(ep)->repo, ref, NULL, digest, NULL,
					     err);
	if (r == -PLAIT_E_NOT_FOUND) {
		plait_error_clear(err);
		return 0;
	}
	if (r >= 0 && plait_digest_is_sha256(digest)) /* by tag too: the repository holds that manifest */
		held_add('m', primary(ep), digest);
	return r < 0 ? r : digest[0] != '\0';
}

static void sources_free(struct source *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		client_put(src[i].client);
		free(src[i].repo);
		free(src[i].dref);
		free(src[i].name);
		free(src[i].where);
	}
	free(src);
}

static void reg_free(struct plait_endpoint *ep)
{
	struct reg_priv *p = P(ep);
	if (!p)
		return;
	sources_free(p->src, p->n);
	plait_ref_release(&p->ref);
	free(p);
}

static int reg_list_referrers(struct plait_endpoint *ep, const char *subject, struct plait_index *out,
			      bool *via_api, struct plait_error **err);
static int reg_put_referrer(struct plait_endpoint *ep, const void *data, size_t len, bool *via_api,
			    struct plait_error **err);

static const struct plait_endpoint_ops registry_ops = {
	.kind = "registry",
	.get_manifest = reg_get_manifest,
	.has_blob = reg_has_blob,
	.fetch_blob = reg_fetch_blob,
	.put_blob = reg_put_blob,
	.put_growing_blob = reg_put_growing_blob,
	.mount_blob = reg_mount_blob,
	.put_manifest = reg_put_manifest,
	.tag = reg_tag,
	.head_ref = reg_head_ref,
	.list_referrers = reg_list_referrers,
	.put_referrer = reg_put_referrer,
	.free = reg_free,
};

int plait_registry_endpoint_open(const char *reference, bool for_write, const struct plait_registry_opts *opts,
				 struct plait_endpoint **out, struct plait_error **err)
{
	struct plait_ref ref = { 0 };
	int r = plait_ref_parse(reference, &ref, err);
	if (r < 0)
		return r;
	const struct plait_registries_conf *conf = opts ? opts->registries_conf : NULL;
	struct plait_pull_source *ps = NULL;
	size_t n = 0;
	if (for_write) {
		/* pushes go to the reference itself: never to a mirror or a location */
		r = plait_registries_conf_check_push(conf, &ref, err);
		if (r >= 0) {
			ps = xcalloc(1, sizeof(*ps));
			plait_ref_copy(&ps[0].ref, &ref);
			n = 1;
		}
	} else {
		r = plait_registries_conf_pull_sources(conf, &ref, &ps, &n, err);
	}
	if (r < 0) {
		plait_ref_release(&ref);
		return r;
	}
	struct source *src = xcalloc(n, sizeof(*src));
	for (size_t i = 0; i < n; i++) {
		r = client_get(plait_ref_api_host(&ps[i].ref), opts, &src[i].client, err);
		if (r < 0) {
			sources_free(src, i);
			plait_pull_sources_free(ps, n);
			plait_ref_release(&ref);
			return r;
		}
		src[i].repo = xstrdup(ps[i].ref.path);
		src[i].dref = xstrdup_or_null(ps[i].ref.digest ? ps[i].ref.digest : ps[i].ref.tag);
		src[i].name = plait_ref_name(&ps[i].ref);
		src[i].where = xstrdup_or_null(ps[i].where);
	}
	plait_pull_sources_free(ps, n);
	struct reg_priv *p = xcalloc(1, sizeof(*p));
	p->src = src;
	p->n = n;
	p->warn = opts ? opts->mirror_warning : NULL;
	atomic_init(&p->answered, -1);
	_cleanup_free_ char *display = plait_ref_format(&ref);
	_cleanup_free_ char *name = plait_ref_name(&ref);
	struct plait_endpoint *ep = plait_endpoint_alloc(&registry_ops, name, display,
							 ref.digest ? ref.digest : ref.tag);
	p->ref = ref;
	ep->priv = p;
	*out = ep;
	return 0;
}

const char *plait_registry_endpoint_source(const struct plait_endpoint *ep, const char **mirror_from)
{
	if (mirror_from)
		*mirror_from = NULL;
	if (!ep || ep->ops != &registry_ops)
		return NULL;
	const struct reg_priv *p = ep->priv;
	int i = atomic_load(&((struct reg_priv *)p)->answered);
	if (i < 0)
		return NULL;
	if (mirror_from)
		*mirror_from = p->src[i].where;
	return p->src[i].name;
}

int plait_registry_endpoint_referrers(struct plait_endpoint *ep, const char *subject,
				      const char *artifact_type, struct plait_index *out,
				      bool *via_api, struct plait_error **err)
{
	if (!ep || ep->ops != &registry_ops)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "%s: referrers are kept by registries; this is not one",
				       ep ? ep->display : "?");
	struct source *s = primary(ep);
	return plait_registry_list_referrers(s->client->reg, s->repo, subject, artifact_type, out,
					     via_api, err);
}

int plait_registry_endpoint_put_referrer(struct plait_endpoint *ep, const void *data, size_t len,
					 bool *via_api, struct plait_error **err)
{
	if (!ep || ep->ops != &registry_ops)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "%s: referrers are kept by registries; this is not one",
				       ep ? ep->display : "?");
	struct source *s = primary(ep);
	return plait_registry_put_referrer(s->client->reg, s->repo, data, len, via_api, err);
}

static int reg_list_referrers(struct plait_endpoint *ep, const char *subject, struct plait_index *out,
			      bool *via_api, struct plait_error **err)
{
	return plait_registry_endpoint_referrers(ep, subject, NULL, out, via_api, err);
}

static int reg_put_referrer(struct plait_endpoint *ep, const void *data, size_t len, bool *via_api,
			    struct plait_error **err)
{
	return plait_registry_endpoint_put_referrer(ep, data, len, via_api, err);
}

int plait_endpoint_open(const char *spec, bool for_write, const struct plait_registry_opts *opts,
			struct plait_endpoint **out, struct plait_error **err)
{
	if (plait_endpoint_spec_is_local(spec))
		return plait_endpoint_open_local(spec, for_write, out, err);
	if (startswith(spec, "docker://"))
		spec += strlen("docker://");
	return plait_registry_endpoint_open(spec, for_write, opts, out, err);
}
