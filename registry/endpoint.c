/* registry/endpoint.c - a registry repository behind the endpoint interface.
 * Endpoints on the same host share one client (connections, tokens), which is
 * also how a destination recognises a source it can mount blobs from. */
#include <pthread.h>
#include <stdio.h>

#include "endpoint.h"
#include "core/ref.h"
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

struct reg_priv {
	struct shared_client *client;
	struct plait_ref ref;
	char *repo; /* path on the registry: "library/busybox" */
};

static struct reg_priv *P(struct plait_endpoint *ep)
{
	return ep->priv;
}

static int reg_get_manifest(struct plait_endpoint *ep, const char *ref, struct plait_buf *body,
			    char **media_type, char digest[PLAIT_DIGEST_MAX], struct plait_error **err)
{
	/* A bare name means "latest", as docker pull does, for reading only. */
	const char *want = ref ? ref : ep->ref ? ep->ref : "latest";
	plait_buf_reset(body);
	return plait_registry_get_manifest(P(ep)->client->reg, P(ep)->repo, want, body, media_type, digest,
					   err);
}

static int reg_has_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			struct plait_error **err)
{
	return plait_registry_has_blob(P(ep)->client->reg, P(ep)->repo, d->digest, NULL, err);
}

static int reg_fetch_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			  struct plait_blob_writer *w, struct plait_error **err)
{
	return plait_registry_get_blob(P(ep)->client->reg, P(ep)->repo, d->digest, d->size, w, err);
}

static int reg_put_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			const struct plait_blob_source *src, struct plait_error **err)
{
	return plait_registry_put_blob(P(ep)->client->reg, P(ep)->repo, d->digest, d->size, src, err);
}

static const struct plait_endpoint_ops registry_ops;

static int reg_mount_blob(struct plait_endpoint *ep, const struct plait_descriptor *d,
			  struct plait_endpoint *from, struct plait_error **err)
{
	if (!from || from->ops != &registry_ops || P(from)->client != P(ep)->client ||
	    streq(P(from)->repo, P(ep)->repo))
		return 0;
	return plait_registry_mount_blob(P(ep)->client->reg, P(ep)->repo, d->digest, P(from)->repo, err);
}

static int reg_put_manifest(struct plait_endpoint *ep, const char *media_type, const void *data,
			    size_t len, const char *digest, struct plait_error **err)
{
	return plait_registry_put_manifest(P(ep)->client->reg, P(ep)->repo, digest, media_type, data, len,
					   err);
}

static int reg_tag(struct plait_endpoint *ep, const char *tag, const struct plait_descriptor *d,
		   const void *data, size_t len, struct plait_error **err)
{
	return plait_registry_put_manifest(P(ep)->client->reg, P(ep)->repo, tag, d->media_type, data, len,
					   err);
}

static void reg_free(struct plait_endpoint *ep)
{
	struct reg_priv *p = P(ep);
	if (!p)
		return;
	client_put(p->client);
	plait_ref_release(&p->ref);
	free(p->repo);
	free(p);
}

static const struct plait_endpoint_ops registry_ops = {
	.kind = "registry",
	.get_manifest = reg_get_manifest,
	.has_blob = reg_has_blob,
	.fetch_blob = reg_fetch_blob,
	.put_blob = reg_put_blob,
	.mount_blob = reg_mount_blob,
	.put_manifest = reg_put_manifest,
	.tag = reg_tag,
	.free = reg_free,
};

int plait_registry_endpoint_open(const char *reference, const struct plait_registry_opts *opts,
				 struct plait_endpoint **out, struct plait_error **err)
{
	struct plait_ref ref = { 0 };
	int r = plait_ref_parse(reference, &ref, err);
	if (r < 0)
		return r;
	struct reg_priv *p = xcalloc(1, sizeof(*p));
	r = client_get(plait_ref_api_host(&ref), opts, &p->client, err);
	if (r < 0) {
		plait_ref_release(&ref);
		free(p);
		return r;
	}
	p->repo = xstrdup(ref.path);
	_cleanup_free_ char *display = plait_ref_format(&ref);
	_cleanup_free_ char *name = plait_ref_name(&ref);
	struct plait_endpoint *ep = plait_endpoint_alloc(&registry_ops, name, display,
							 ref.digest ? ref.digest : ref.tag);
	p->ref = ref;
	ep->priv = p;
	*out = ep;
	return 0;
}

int plait_endpoint_open(const char *spec, bool for_write, const struct plait_registry_opts *opts,
			struct plait_endpoint **out, struct plait_error **err)
{
	if (plait_endpoint_spec_is_local(spec))
		return plait_endpoint_open_local(spec, for_write, out, err);
	if (startswith(spec, "docker://"))
		spec += strlen("docker://");
	return plait_registry_endpoint_open(spec, opts, out, err);
}
