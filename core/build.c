/* core/build.c - the build executor (see build.h): the builder, the stage
 * loop and the image it ends with. Which stages are built, and in what
 * order, is decided before any runs, base images resolved first
 * (build_needs.c); each instruction's job
 * is in its own file (build_internal.h lists them). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "build_internal.h"
#include "banned.h"

/* The cache directory's owner is core/cache.c; these two keep their names
 * for cmd/. */
char *plait_build_default_cache_dir(void)
{
	return plait_cache_default_dir();
}

char *plait_build_cache_store(const char *cache_dir)
{
	return plait_cache_store_dir(cache_dir);
}

int plait_build_cache_endpoint(const char *cache_dir, struct plait_endpoint **out, struct plait_error **err)
{
	_cleanup_free_ char *sp = plait_build_cache_store(cache_dir);
	struct plait_store *s = NULL;
	int r = plait_store_open(sp, false, &s, err);
	if (r >= 0)
		*out = plait_layout_endpoint_new(s, sp, sp, NULL); /* owns s */
	return r;
}

static int run_instruction(struct builder *b, struct stage *st, size_t idx,
			   const struct plait_df_instr *in, struct plait_error **err)
{
	if (build_cancelled(b))
		return plait_error_set(err, PLAIT_E_CANCELLED, "interrupted at %s:%d", b->df.filename,
				       in->line);
	b->cur = st;
	b->step++;
	b->step_t0 = plait_now_ns();
	build_emit(b, PLAIT_BUILD_STEP_START, in->original, 0);
	int r;
	switch (in->kind) {
	case PLAIT_DF_RUN:
		r = build_do_run(b, st, idx, in, err);
		break;
	case PLAIT_DF_COPY:
	case PLAIT_DF_ADD:
		r = build_do_copy(b, st, idx, in, err);
		break;
	case PLAIT_DF_WORKDIR:
		r = build_do_workdir(b, st, in, err);
		if (r >= 0)
			build_emit(b, PLAIT_BUILD_STEP_DONE, NULL, 0);
		break;
	default:
		r = build_do_meta(b, st, in, err);
		if (r >= 0)
			build_emit(b, PLAIT_BUILD_STEP_DONE, NULL, 0);
	}
	if (r < 0)
		build_emit(b, PLAIT_BUILD_STEP_ERROR, (*err)->msg, 0);
	return r;
}

/* A base image's ONBUILD triggers run right after FROM, and are consumed:
 * the new image does not pass them on (Dockerfile reference). */
static int run_onbuild(struct builder *b, struct stage *st, size_t idx, struct plait_error **err)
{
	char **triggers = TAKE_PTR(st->cfg.config.on_build);
	int r = 0;
	for (size_t i = 0; triggers && triggers[i] && r >= 0; i++) {
		struct plait_df_instr in = { 0 };
		r = plait_df_parse_instruction(triggers[i], b->df.escape, b->df.filename, st->df->from->line,
					       &in, err);
		if (r < 0) {
			plait_error_wrap(err, "ONBUILD trigger '%s' of the base image", triggers[i]);
			break;
		}
		b->total++;
		r = run_instruction(b, st, idx, &in, err);
		plait_df_instr_release(&in);
	}
	plait_strv_free(triggers);
	return r;
}

static int build_stage(struct builder *b, size_t idx, struct plait_error **err)
{
	struct stage *st = &b->stages[idx];
	struct stage *prev = b->cur;
	b->cur = st;
	b->step++;
	int r = build_do_from(b, st, idx, err);
	if (r >= 0)
		r = run_onbuild(b, st, idx, err);
	for (size_t i = 0; i < st->df->n_instrs && r >= 0; i++)
		r = run_instruction(b, st, idx, &st->df->instrs[i], err);
	st->built = r >= 0;
	b->cur = prev;
	return r;
}

static void set_auto_args(struct builder *b)
{
	const struct plait_platform *t = &b->o->platform, *h = &b->o->build_platform;
	plait_map_set(&b->meta, "TARGETPLATFORM", b->o->platform_str);
	plait_map_set(&b->meta, "TARGETOS", t->os ? t->os : "");
	plait_map_set(&b->meta, "TARGETARCH", t->architecture ? t->architecture : "");
	plait_map_set(&b->meta, "TARGETVARIANT", t->variant ? t->variant : "");
	plait_map_set(&b->meta, "BUILDPLATFORM", b->o->build_platform_str);
	plait_map_set(&b->meta, "BUILDOS", h->os ? h->os : "");
	plait_map_set(&b->meta, "BUILDARCH", h->architecture ? h->architecture : "");
	plait_map_set(&b->meta, "BUILDVARIANT", h->variant ? h->variant : "");
}

static int write_image(struct builder *b, struct stage *st, struct plait_build_result *res,
		       struct plait_error **err)
{
	for (const char *const *l = b->o->labels; l && *l; l++) {
		const char *eq = strchr(*l, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*l, (size_t)(eq - *l)) : xstrdup(*l);
		plait_map_set(&st->cfg.config.labels, k, eq ? eq + 1 : "");
	}
	struct plait_buf cj = PLAIT_BUF_INIT, mj = PLAIT_BUF_INIT;
	char now[PLAIT_RFC3339_MAX];
	plait_rfc3339_now_or(b->o->have_epoch, b->o->source_date_epoch, now);
	free(st->cfg.created);
	st->cfg.created = xstrdup(b->o->have_epoch || !st->last_created ? now : st->last_created);
	if (!st->cfg.diff_ids)
		st->cfg.diff_ids = xcalloc(1, sizeof(char *));
	int r = plait_image_config_serialise(&st->cfg, &cj, err);
	char cd[PLAIT_SHA256_DIGEST_SIZE];
	if (r >= 0)
		r = plait_store_put_bytes(b->store, cj.buf, cj.len, cd, err);
	if (r < 0)
		goto out;
	struct plait_manifest m = { .schema_version = 2 };
	bool docker = b->o->docker_media_types;
	m.media_type = (char *)plait_media_type_to_string(docker ? PLAIT_MT_DOCKER_MANIFEST : PLAIT_MT_OCI_MANIFEST);
	m.config.media_type = (char *)plait_media_type_to_string(docker ? PLAIT_MT_DOCKER_CONFIG : PLAIT_MT_OCI_CONFIG);
	memcpy(m.config.digest, cd, sizeof(cd));
	m.config.size = (int64_t)cj.len;
	m.layers = xcalloc(st->n_layers + 1, sizeof(*m.layers));
	m.n_layers = st->n_layers;
	res->size = (int64_t)cj.len;
	for (size_t i = 0; i < st->n_layers; i++) {
		m.layers[i] = st->layers[i].desc; /* shallow: not released here */
		/* The same gzip bytes under Docker's name (base layers may be either). */
		enum plait_media_type lt = plait_media_type_from_string(m.layers[i].media_type);
		if (docker && lt == PLAIT_MT_OCI_LAYER_GZIP)
			m.layers[i].media_type = (char *)plait_media_type_to_string(PLAIT_MT_DOCKER_LAYER_GZIP);
		else if (docker && lt != PLAIT_MT_DOCKER_LAYER_GZIP && lt != PLAIT_MT_DOCKER_LAYER_FOREIGN) {
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "--index-format docker: layer %zu is %s, which a Docker manifest cannot hold; "
					    "use the OCI format", i + 1, m.layers[i].media_type);
			free(m.layers);
			goto out;
		}
		res->size += st->layers[i].desc.size;
	}
	for (const char *const *a = b->o->annotations; a && *a; a++) {
		const char *eq = strchr(*a, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*a, (size_t)(eq - *a)) : xstrdup(*a);
		plait_map_set(&m.annotations, k, eq ? eq + 1 : "");
	}
	r = plait_manifest_serialise(&m, &mj, err);
	plait_map_release(&m.annotations);
	free(m.layers);
	char md[PLAIT_SHA256_DIGEST_SIZE];
	if (r >= 0)
		r = plait_store_put_bytes(b->store, mj.buf, mj.len, md, err);
	if (r < 0)
		goto out;
	res->manifest.media_type = xstrdup(m.media_type);
	memcpy(res->manifest.digest, md, sizeof(md));
	res->manifest.size = (int64_t)mj.len;
	res->size += (int64_t)mj.len;
	memcpy(res->config_digest, cd, sizeof(cd));
out:
	plait_buf_release(&cj);
	plait_buf_release(&mj);
	return r;
}

void plait_build_materials_free(struct plait_build_material *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].ref);
		free(v[i].resolved);
		free(v[i].platform);
	}
	free(v);
}

void plait_build_step_records_free(struct plait_build_step_record *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].stage);
		free(v[i].text);
	}
	free(v);
}

void plait_build_result_release(struct plait_build_result *r)
{
	if (!r)
		return;
	plait_descriptor_release(&r->manifest);
	free(r->built_on);
	r->built_on = NULL;
	plait_strv_free(r->cache_keys_all);
	plait_strv_free(r->cache_keys_final);
	plait_strv_free(r->cache_mounts);
	plait_strv_free(r->remote_blobs);
	r->cache_keys_all = r->cache_keys_final = r->cache_mounts = r->remote_blobs = NULL;
	plait_build_materials_free(r->materials, r->n_materials);
	plait_build_step_records_free(r->step_records, r->n_step_records);
	r->materials = NULL;
	r->step_records = NULL;
	r->n_materials = r->n_step_records = 0;
	if (r->lock_fd > 0)
		close(r->lock_fd);
	r->lock_fd = -1;
}

/* Read and parse the Dockerfile, set the args, find the target stage and
 * mark the stages it needs: what both a build and the planner's base image
 * check start from. */
char *build_dockerfile_path(const struct plait_build_opts *o)
{
	return o->dockerfile ? xstrdup(o->dockerfile) : plait_path_concat(o->context_dir, "Dockerfile");
}

/* build_prepare's work on the Dockerfile's bytes (data, read from dfpath). */
static int build_parse(struct builder *b, const char *dfpath, const struct plait_buf *data, size_t *target_out,
		       struct plait_error **err)
{
	const struct plait_build_opts *o = b->o;
	const char *base = strrchr(dfpath, '/');
	int r = plait_dockerfile_parse(data->buf, data->len, base ? base + 1 : dfpath, &b->df, err);
	if (r < 0) {
		(*err)->code = PLAIT_E_USAGE; /* the Dockerfile must change: exit 2 */
		return -PLAIT_E_USAGE;
	}
	/* The parser's warnings (another '# syntax=' frontend, an empty
	 * continuation line) are shown, as BuildKit shows its own. */
	for (size_t i = 0; i < b->df.n_warnings; i++) {
		struct plait_buf w = PLAIT_BUF_INIT;
		plait_buf_addf(&w, "warning: %s", b->df.warnings[i]);
		build_emit(b, PLAIT_BUILD_STEP_OUTPUT, w.buf, 0);
		plait_buf_release(&w);
	}
	if (!b->df.n_stages)
		return plait_error_set(err, PLAIT_E_USAGE, "%s has no FROM: nothing to build", dfpath);
	for (const char *const *a = o->build_args; a && *a; a++) {
		const char *eq = strchr(*a, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*a, (size_t)(eq - *a)) : xstrdup(*a);
		const char *v = eq ? eq + 1 : getenv(k); /* --build-arg NAME takes it from the environment */
		if (v)
			plait_map_set(&b->build_args, k, v);
	}
	set_auto_args(b);
	/* Global ARGs, in order, each seeing those before it. Their names are
	 * not expanded ("ARG ${X}=v" before FROM defines nothing usable), as in
	 * BuildKit's 20.10 frontend; a stage's ARG names are (build_arg_name). */
	for (size_t i = 0; i < b->df.n_global_args; i++) {
		const struct plait_df_instr *in = &b->df.global_args[i];
		for (size_t j = 0; j < in->n_kvs; j++) {
			const char *given = plait_map_get(&b->build_args, in->kvs[j].key);
			_cleanup_free_ char *def = NULL;
			if (!given && in->kvs[j].value &&
			    (r = build_expand_word(b, NULL, in, in->kvs[j].value, &def, err)) < 0)
				return r;
			if (given || def)
				plait_map_set(&b->meta, in->kvs[j].key, given ? given : def);
		}
	}
	b->n_stages = b->df.n_stages;
	b->stages = xcalloc(b->n_stages, sizeof(*b->stages));
	for (size_t i = 0; i < b->n_stages; i++) {
		b->stages[i].df = &b->df.stages[i];
		struct plait_buf lb = PLAIT_BUF_INIT;
		if (b->df.stages[i].name)
			plait_buf_adds(&lb, b->df.stages[i].name);
		else
			plait_buf_addf(&lb, "stage-%zu", i);
		b->stages[i].label = plait_buf_detach(&lb, NULL);
	}
	size_t target = b->n_stages - 1;
	if (o->target) {
		const struct plait_df_stage *ts = plait_dockerfile_find_stage(&b->df, o->target);
		if (!ts) {
			struct plait_buf names = PLAIT_BUF_INIT;
			for (size_t i = 0; i < b->n_stages; i++)
				if (b->df.stages[i].name)
					plait_buf_addf(&names, "%s%s", names.len ? ", " : "", b->df.stages[i].name);
			r = plait_error_set(err, PLAIT_E_USAGE, "--target '%s': no such stage in %s; it has: %s",
					    o->target, b->df.filename, names.len ? names.buf : "no named stages");
			plait_buf_release(&names);
			return r;
		}
		target = ts->index;
	}
	build_mark_needed(b, target);
	/* Only here, for the build's target: the prefetch marks its own stage
	 * needed again (build_resolve_bases), not part of the image. */
	for (struct stage *st = &b->stages[target]; st && !st->in_image; st = st->from_stage)
		st->in_image = true;
	*target_out = target;
	return 0;
}

int build_prepare(struct builder *b, const char *dfpath, struct plait_buf *data, size_t *target_out,
		  struct plait_error **err)
{
	int r = plait_buf_read_file(data, dfpath, 16u << 20);
	if (r < 0) {
		/* A missing Dockerfile or context is the command line's fault: exit 2. */
		r = plait_error_set_errno(err, r == -ENOENT ? PLAIT_E_USAGE : PLAIT_E_IO, r,
					  "cannot read Dockerfile '%s'%s", dfpath,
					  r == -ENOENT ? " (name the context directory, and the Dockerfile with -f)" : "");
		return r;
	}
	return build_parse(b, dfpath, data, target_out, err);
}

/* The build context (with the cache's digest memo) and the cache. */
static int build_open(struct builder *b, const char *dfpath, struct plait_error **err)
{
	int r = plait_context_open(b->o->context_dir, dfpath, &b->ctx, err);
	if (r >= 0)
		r = plait_cache_open(b->o->cache_dir, &b->cache, err);
	if (r < 0)
		return r;
	b->store = b->cache->store;
	/* COPY's cache check need not read unchanged context files again. */
	_cleanup_free_ char *memo = plait_path_concat(b->cache->dir, "context-digests");
	plait_context_set_memo(b->ctx, memo);
	return 0;
}

void build_release(struct builder *b)
{
	build_commits_release(b);
	plait_cache_step_unlock(&b->step_lock);
	for (size_t i = 0; i < b->n_stages; i++)
		stage_release(&b->stages[i]);
	for (size_t i = 0; i < b->n_tail; i++)
		free(b->tail[i]);
	free(b->stages);
	plait_strv_free(b->all_keys);
	plait_strv_free(b->mount_ids);
	plait_strv_free(b->remote_blobs);
	plait_build_materials_free(b->materials, b->n_materials);
	plait_build_step_records_free(b->step_records, b->n_step_records);
	for (size_t i = 0; i < b->n_base_eps; i++)
		plait_endpoint_free(b->base_eps[i]);
	free(b->base_eps);
	plait_map_release(&b->build_args);
	plait_map_release(&b->meta);
	plait_context_free(b->ctx);
	plait_cache_free(b->cache);
	plait_dockerfile_release(&b->df);
}

/* ------------------------------------------------------------ prefetch
 *
 * A job's stages are built one after the other, but a later stage FROM an
 * image often starts with steps that read nothing of the stages before it
 * (COPY of context files, WORKDIR, ENV): BuildKit runs such steps while
 * the earlier stages build. Here a second builder runs that head of one
 * such stage in a thread of its own, quietly, while the job builds the
 * stages before it; each step it runs goes to the cache under the same key
 * the job will compute, so the job finds it there, or waits on the step's
 * lock while it is being made (core/cache.h), and shows it as done in this
 * build (not cached). The head ends before the first RUN, COPY --from,
 * ADD or COPY of another stage, or anything else; a base image with ONBUILD
 * triggers is left alone. Whatever the prefetch meets (an error, an
 * interrupt) the job meets again itself, and reports. */
struct prefetch {
	struct plait_build_opts o; /* the job's: quiet, stopped by stop */
	atomic_int stop;
	const atomic_int *job_cancel; /* the job's own (Ctrl-C, another job failed) */
	const char *dfpath;	      /* the job's Dockerfile, as it read it: */
	const struct plait_buf *df;   /* parsed again from these bytes, the same stages */
	size_t stage, n_instrs;
	pthread_mutex_t lock;
	char **ran; /* the keys of the steps it ran itself */
	pthread_t tid;
	bool running;
};

void build_prefetch_record(struct prefetch *pf, const char *key)
{
	pthread_mutex_lock(&pf->lock);
	if (!plait_strv_contains(pf->ran, key))
		plait_strv_push(&pf->ran, key);
	pthread_mutex_unlock(&pf->lock);
}

const atomic_int *build_layer_cancel(const struct builder *b)
{
	/* The prefetch's own stop comes when the job is done with it, failed
	 * or not: a layer it is writing then is still worth its record. */
	return b->recorder ? b->recorder->job_cancel : b->o->cancel;
}

bool build_prefetched(const struct builder *b, const char *key)
{
	if (!b->prefetch)
		return false;
	pthread_mutex_lock(&b->prefetch->lock);
	bool ran = plait_strv_contains(b->prefetch->ran, key);
	pthread_mutex_unlock(&b->prefetch->lock);
	return ran;
}

static bool prefetch_kind(const struct plait_df_instr *in)
{
	switch (in->kind) {
	case PLAIT_DF_COPY:
		return !plait_df_flag_get(in, "from");
	case PLAIT_DF_ADD: /* a URL or git source is fetched before its key is known: the job's alone */
		return !plait_df_flag_get(in, "from") && !strstr(in->rest ? in->rest : "", "://") &&
		       !strstr(in->rest ? in->rest : "", "git@");
	case PLAIT_DF_WORKDIR:
	case PLAIT_DF_ENV:
	case PLAIT_DF_ARG:
	case PLAIT_DF_LABEL:
	case PLAIT_DF_USER:
		return true;
	default:
		return false;
	}
}

static void *prefetch_main(void *arg)
{
	struct prefetch *pf = arg;
	struct builder b = { .o = &pf->o, .step_lock = PLAIT_CACHE_STEP_LOCK_INIT, .recorder = pf };
	struct plait_error *e = NULL;
	size_t target = 0;
	int r = build_parse(&b, pf->dfpath, pf->df, &target, &e);
	if (r >= 0)
		r = build_open(&b, pf->dfpath, &e);
	if (r >= 0)
		build_resolve_bases(&b, pf->stage); /* only what that stage reads */
	struct stage *st = r >= 0 ? &b.stages[pf->stage] : NULL;
	if (st) {
		b.cur = st;
		r = build_do_from(&b, st, pf->stage, &e);
	}
	if (r >= 0 && st->cfg.config.on_build && *st->cfg.config.on_build)
		r = -1; /* its triggers may run anything: the job runs them */
	for (size_t i = 0; r >= 0 && i < pf->n_instrs && !pf->stop && !(pf->job_cancel && *pf->job_cancel); i++)
		r = run_instruction(&b, st, pf->stage, &st->df->instrs[i], &e);
	plait_error_free(e);
	build_release(&b);
	return NULL;
}

/* The head of the first later stage worth running alongside, started. */
static void prefetch_start(struct builder *b, size_t target, const char *dfpath, const struct plait_buf *df,
			   struct prefetch *pf)
{
	const struct plait_build_opts *o = b->o;
	if (o->no_cache)
		return;
	for (size_t i = 0; i <= target; i++) /* a base that failed: the job reports it, nobody tries again */
		if (b->stages[i].needed && b->stages[i].base.tried && b->stages[i].base.r < 0)
			return;
	size_t first = SIZE_MAX;
	for (size_t i = 0; i <= target; i++) {
		struct stage *st = &b->stages[i];
		if (!st->needed)
			continue;
		if (first == SIZE_MAX) {
			first = i; /* built first anyway */
			continue;
		}
		_cleanup_free_ char *image = NULL;
		if (build_expand_word(b, NULL, st->df->from, st->df->image, &image, NULL) < 0 ||
		    build_find_stage(b, image, i))
			continue; /* FROM another stage: it waits for that one */
		size_t n = 0, heavy = 0;
		while (n < st->df->n_instrs && prefetch_kind(&st->df->instrs[n])) {
			enum plait_df_kind k = st->df->instrs[n++].kind;
			if (k == PLAIT_DF_COPY || k == PLAIT_DF_ADD)
				heavy = n; /* up to the last COPY or ADD */
		}
		if (!heavy)
			continue;
		*pf = (struct prefetch){ .o = *o, .stage = i, .n_instrs = heavy, .dfpath = dfpath, .df = df };
		pf->o.progress = NULL;
		pf->o.progress_ctx = NULL;
		pf->o.cancel = &pf->stop;
		pf->job_cancel = o->cancel;
		pthread_mutex_init(&pf->lock, NULL);
		pf->running = pthread_create(&pf->tid, NULL, prefetch_main, pf) == 0;
		if (pf->running)
			b->prefetch = pf;
		else
			pthread_mutex_destroy(&pf->lock);
		return;
	}
}

static void prefetch_finish(struct builder *b, struct prefetch *pf)
{
	if (!pf->running)
		return;
	pf->stop = 1;
	pthread_join(pf->tid, NULL);
	b->prefetch = NULL;
	pthread_mutex_destroy(&pf->lock);
	plait_strv_free(pf->ran);
	pf->running = false;
}

int plait_build(const struct plait_build_opts *o, struct plait_build_result *res,
		struct plait_error **err)
{
	struct builder b = { .o = o, .step_lock = PLAIT_CACHE_STEP_LOCK_INIT };
	struct plait_buf data = PLAIT_BUF_INIT;
	_cleanup_free_ char *dfpath = build_dockerfile_path(o);
	memset(res, 0, sizeof(*res));
	res->lock_fd = -1;
	size_t target = 0;
	int r = build_prepare(&b, dfpath, &data, &target, err);
	if (r >= 0)
		r = build_open(&b, dfpath, err);
	if (r < 0)
		goto out;
	/* The base images first: their ONBUILD triggers and ENV may name stages. */
	build_resolve_bases(&b, target);
	struct prefetch pf = { 0 };
	prefetch_start(&b, target, dfpath, &data, &pf);

	for (size_t i = 0; i < b.n_stages; i++)
		if (b.stages[i].needed)
			b.total += 1 + (int)b.stages[i].df->n_instrs;
	/* In index order: a stage only reads earlier ones, and every one it
	 * reads, its base image's triggers included, is marked needed
	 * (build_needs.c), so each is built before the
	 * stage that reads it; nothing is built from inside an instruction. */
	for (size_t i = 0; i <= target && r >= 0; i++)
		if (b.stages[i].needed)
			r = build_stage(&b, i, err);
	prefetch_finish(&b, &pf);
	if (r >= 0)
		r = build_commits_settle(&b, NULL, err); /* the image names every layer's digests */
	if (r >= 0 && build_cancelled(&b))
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted: no image written");
	if (r < 0)
		goto out;
	r = write_image(&b, &b.stages[target], res, err);
	plait_sha256_buf(data.buf, data.len, res->dockerfile_digest);
	res->materials = TAKE_PTR(b.materials);
	res->n_materials = b.n_materials;
	res->base_material = b.stages[target].base_material;
	res->step_records = TAKE_PTR(b.step_records);
	res->n_step_records = b.n_step_records;
	b.n_materials = b.n_step_records = 0;
	res->steps = b.total;
	res->cached = b.cached;
	res->cache_keys_all = TAKE_PTR(b.all_keys);
	res->cache_keys_final = plait_strv_copy(b.stages[target].keys);
	res->cache_mounts = TAKE_PTR(b.mount_ids);
	res->remote_blobs = TAKE_PTR(b.remote_blobs);
	if (r >= 0)
		res->lock_fd = plait_cache_take_lock(b.cache);
out:
	if (b.ctx)
		plait_context_save_memo(b.ctx);
	build_release(&b);
	plait_buf_release(&data);
	return r;
}
