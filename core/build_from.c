/* core/build_from.c - FROM: a stage of this Dockerfile, scratch, or an image
 * the resolver finds, pulled into the cache's store and unpacked there. */
#include <sys/stat.h>

#include "build_internal.h"
#include "copy.h"
#include "banned.h"

void base_image_release(struct base_image *bi)
{
	plait_error_free(bi->err);
	plait_endpoint_free(bi->ep);
	plait_descriptor_release(&bi->man);
	plait_buf_release(&bi->bytes);
	plait_image_config_release(&bi->cfg);
	memset(bi, 0, sizeof(*bi));
}

void build_resolve_base(struct builder *b, struct stage *st, const char *ref, const char *platform)
{
	struct base_image *bi = &st->base;
	base_image_release(bi);
	bi->tried = true;
	bi->r = b->o->resolver->resolve(b->o->resolver->ctx, ref, platform, &bi->ep, &bi->man, &bi->bytes,
					&bi->err);
	if (bi->r < 0)
		return;
	/* The config, into the cache's store where the pull finds it already.
	 * Not being able to read it here only means its triggers are not known
	 * early: the pull then fails with the message it always had. */
	struct plait_manifest m = { 0 };
	struct plait_buf cbuf = PLAIT_BUF_INIT;
	char got[PLAIT_SHA256_DIGEST_SIZE];
	if (plait_manifest_parse(bi->bytes.buf, bi->bytes.len, &m, NULL) < 0)
		goto out;
	if (plait_store_read_blob(b->store, m.config.digest, PLAIT_MANIFEST_MAX, &cbuf, NULL) < 0) {
		plait_buf_release(&cbuf);
		if (plait_endpoint_read_blob(bi->ep, &m.config, PLAIT_MANIFEST_MAX, &cbuf, NULL) < 0 ||
		    plait_store_put_bytes(b->store, cbuf.buf, cbuf.len, got, NULL) < 0 ||
		    strcmp(got, m.config.digest) != 0)
			goto out;
	}
	if (plait_image_config_parse(cbuf.buf, cbuf.len, &bi->cfg, NULL) >= 0)
		bi->have_cfg = true;
out:
	plait_buf_release(&cbuf);
	plait_manifest_release(&m);
}

int build_from_image(struct builder *b, struct stage *st, const char *ref, const char *platform,
		      struct plait_error **err)
{
	struct plait_endpoint *ep = NULL, *cache_ep = NULL;
	struct plait_descriptor man = { 0 };
	struct plait_buf bytes = PLAIT_BUF_INIT, cbuf = PLAIT_BUF_INIT;
	struct plait_buf key = PLAIT_BUF_INIT; /* held while the base is pulled and unpacked */
	struct plait_manifest m = { 0 };
	const char *sp = b->cache->store_dir;
	char *by_digest = NULL;
	int r;
	if (!st->base.tried)
		build_resolve_base(b, st, ref, platform);
	/* What was resolved before the stage loop, taken (one look-up per FROM). */
	r = st->base.r;
	if (r < 0) {
		if (err)
			*err = TAKE_PTR(st->base.err);
		goto out;
	}
	ep = TAKE_PTR(st->base.ep);
	man = st->base.man;
	memset(&st->base.man, 0, sizeof(st->base.man));
	bytes = st->base.bytes;
	st->base.bytes = (struct plait_buf)PLAIT_BUF_INIT;
	/* With --cache-from, a registry base's layers stay there until a step
	 * needs their files or a push needs them (a fully cached build on a
	 * fresh runner mounts them where they go); else the whole image is
	 * pulled into the cache store (blobs it has are skipped). */
	bool lazy = b->o->cache_import && !ep->store;
	plait_buf_addf(&key, "pull %s %s", sp, man.digest);
	if (build_key_lock(key.buf, b->o->cancel) < 0) {
		plait_buf_reset(&key); /* not held */
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted while waiting for the pull of %s", ref);
		goto out;
	}
	if (lazy) {
		char got[PLAIT_SHA256_DIGEST_SIZE];
		r = plait_store_put_bytes(b->store, bytes.buf, bytes.len, got, err);
		if (r >= 0 && (r = plait_manifest_parse(bytes.buf, bytes.len, &m, err)) >= 0 &&
		    plait_store_has(b->store, m.config.digest, NULL, NULL) != 1) {
			r = plait_endpoint_read_blob(ep, &m.config, PLAIT_MANIFEST_MAX, &cbuf, err);
			if (r >= 0)
				r = plait_store_put_bytes(b->store, cbuf.buf, cbuf.len, got, err);
			if (r >= 0 && strcmp(got, m.config.digest) != 0)
				r = plait_error_set(err, PLAIT_E_INVALID, "config %s: digest mismatch (got %s)",
						    m.config.digest, got);
			plait_buf_reset(&cbuf);
		}
		if (r < 0) {
			plait_error_wrap(err, "pull %s", ref);
			goto out;
		}
	} else {
		struct plait_store *cs = NULL;
		r = plait_store_open(sp, true, &cs, err);
		if (r < 0)
			goto out;
		cache_ep = plait_layout_endpoint_new(cs, sp, sp, NULL);
		struct plait_copy_opts co = { .cancel = b->o->cancel };
		r = plait_copy_image(ep, cache_ep, &man, bytes.buf, bytes.len, NULL, &co, NULL, err);
		if (r < 0) {
			plait_error_wrap(err, "pull %s", ref);
			goto out;
		}
		r = plait_manifest_parse(bytes.buf, bytes.len, &m, err);
	}
	if (r >= 0)
		r = plait_store_read_blob(b->store, m.config.digest, PLAIT_MANIFEST_MAX, &cbuf, err);
	if (r >= 0)
		r = plait_image_config_parse(cbuf.buf, cbuf.len, &st->cfg, err);
	if (r < 0) {
		plait_error_wrap(err, "base image %s", ref);
		goto out;
	}
	size_t n_diff = 0;
	while (st->cfg.diff_ids && st->cfg.diff_ids[n_diff])
		n_diff++;
	if (n_diff != m.n_layers) {
		r = plait_error_set(err, PLAIT_E_INVALID, "base image %s: %zu layers but %zu diff_ids", ref,
				    m.n_layers, n_diff);
		goto out;
	}
	st->layers = xcalloc(m.n_layers + 1, sizeof(*st->layers));
	by_digest = lazy ? plait_endpoint_ref_string(ep, man.digest) : NULL;
	for (size_t i = 0; i < m.n_layers && r >= 0; i++) {
		struct layer_ref *l = &st->layers[st->n_layers++];
		plait_descriptor_copy(&l->desc, &m.layers[i]);
		memcpy(l->diff_id, st->cfg.diff_ids[i], PLAIT_SHA256_DIGEST_SIZE);
		struct stat sst;
		if (lazy && plait_store_has(b->store, l->desc.digest, NULL, NULL) != 1) {
			l->src = ep;
			l->dir = plait_cache_layer_dir(b->cache, l->diff_id);
			l->lazy = stat(l->dir, &sst) < 0;
			struct plait_buf line = PLAIT_BUF_INIT;
			plait_buf_addf(&line, "%s %s", l->desc.digest, by_digest);
			if (!plait_strv_contains(b->remote_blobs, line.buf))
				plait_strv_push(&b->remote_blobs, line.buf);
			plait_buf_release(&line);
		} else {
			r = build_ensure_layer_dir(b, l, err);
		}
	}
	build_key_unlock(key.buf);
	plait_buf_reset(&key);
	if (r < 0) {
		plait_error_wrap(err, "base image %s", ref);
		goto out;
	}
	if (lazy) { /* the layers' source lives as long as the builder */
		b->base_eps = xrealloc(b->base_eps, (b->n_base_eps + 1) * sizeof(*b->base_eps));
		b->base_eps[b->n_base_eps++] = TAKE_PTR(ep);
	}
	free(st->last_created);
	st->last_created = xstrdup_or_null(st->cfg.created);
	{
		_cleanup_free_ char *resolved = plait_endpoint_ref_string(ep ? ep : b->base_eps[b->n_base_eps - 1],
									  man.digest);
		st->base_material = build_add_material(b, ref, resolved, platform, man.digest);
	}
	struct plait_buf k = PLAIT_BUF_INIT;
	plait_buf_addf(&k, "FROM %s\n", man.digest);
	build_layer_settings(b, &k);
	build_chain_key("", &k, st->key);
	plait_buf_release(&k);
out:
	if (key.len)
		build_key_unlock(key.buf);
	plait_buf_release(&key);
	free(by_digest);
	plait_manifest_release(&m);
	plait_buf_release(&cbuf);
	plait_buf_release(&bytes);
	plait_descriptor_release(&man);
	plait_endpoint_free(ep);
	plait_endpoint_free(cache_ep);
	return r;
}

int build_do_from(struct builder *b, struct stage *st, size_t idx, struct plait_error **err)
{
	const struct plait_df_instr *in = st->df->from;
	_cleanup_free_ char *image = NULL, *platform = NULL;
	int r = build_expand_word(b, NULL, in, st->df->image, &image, err);
	if (r >= 0 && st->df->platform)
		r = build_expand_word(b, NULL, in, st->df->platform, &platform, err);
	if (r < 0)
		return r;
	struct plait_buf text = PLAIT_BUF_INIT;
	plait_buf_addf(&text, "FROM %s", image);
	build_emit(b, PLAIT_BUILD_STEP_START, text.buf, 0);
	plait_buf_release(&text);

	struct stage *base = build_find_stage(b, image, idx);
	if (base) {
		if ((r = build_stage_ready(b, base, in, image, err)) < 0)
			return r;
		stage_copy_state(st, base);
		st->base_material = base->base_material;
	} else if (streq(image, "scratch")) {
		st->base_material = 0;
		memset(&st->cfg, 0, sizeof(st->cfg));
		struct plait_buf k = PLAIT_BUF_INIT;
		plait_buf_adds(&k, "FROM scratch\n");
		build_layer_settings(b, &k);
		build_chain_key("", &k, st->key);
		plait_buf_release(&k);
	} else {
		r = build_from_image(b, st, image, platform ? platform : b->o->platform_str, err);
		if (r < 0) {
			struct plait_buf w = PLAIT_BUF_INIT;
			build_where(b, in, &w);
			plait_error_wrap(err, "%s: FROM %s", w.buf, image);
			plait_buf_release(&w);
			return r;
		}
	}
	if (platform || !base) {
		free(st->run_platform);
		st->run_platform = xstrdup(platform ? platform : b->o->platform_str);
	}
	/* The image keeps the target's platform; a PATH is always there (as BuildKit does). */
	free(st->cfg.architecture);
	free(st->cfg.os);
	free(st->cfg.variant);
	st->cfg.architecture = xstrdup_or_null(b->o->platform.architecture);
	st->cfg.os = xstrdup_or_null(b->o->platform.os);
	st->cfg.variant = xstrdup_or_null(b->o->platform.variant);
	if (!env_get(st->cfg.config.env, "PATH"))
		env_set(&st->cfg.config.env, "PATH", DEFAULT_PATH + strlen("PATH="));
	build_emit(b, PLAIT_BUILD_STEP_DONE, NULL, 0);
	return 0;
}
