/* core/build_needs.c - which stages a build needs, decided before any runs:
 * the stage loop (build.c) builds exactly these, in index order. As BuildKit
 * does, the base images of the stages needed are resolved first (their
 * configs), so a stage that only an image's ONBUILD trigger or ENV names is
 * among them. The planner's plait_build_needs() reads the Dockerfile-only
 * answer without building or pulling. */
#include "build_internal.h"
#include "dockerfile_mount.h"
#include "expand.h"
#include "banned.h"

/* A stage's variables as far as the build knows them before any step runs:
 * its ARG and ENV lines, the ENV of the stage it starts from and, once
 * build_resolve_bases() has read it, its base image's ENV. */
struct scope {
	struct builder *b;
	char **env;
	struct plait_map args;
};

static const char *scope_lookup(const char *name, void *ud)
{
	struct scope *sc = ud;
	/* ENV wins over ARG of the same name, as build_lookup() has it. */
	const char *v = env_get(sc->env, name);
	return v ? v : plait_map_get(&sc->args, name);
}

/* text expanded as the step would expand it, or NULL. */
static char *scope_expand(struct scope *sc, const struct plait_df_instr *in, const char *text)
{
	struct plait_expand_opts eo;
	plait_expand_opts_for(&eo, &sc->b->df, in);
	char *out = NULL;
	if (plait_expand_word(text, &eo, scope_lookup, sc, &out, NULL) < 0)
		return NULL;
	return out;
}

/* ENV and ARG as build_do_meta() sets them. */
static void scope_apply(struct scope *sc, const struct plait_df_instr *in)
{
	if (in->kind == PLAIT_DF_ENV) {
		/* every pair expanded before any is set */
		char **kv = xcalloc(2 * in->n_kvs + 1, sizeof(char *));
		for (size_t i = 0; i < in->n_kvs; i++) {
			kv[2 * i] = scope_expand(sc, in, in->kvs[i].key);
			kv[2 * i + 1] = scope_expand(sc, in, in->kvs[i].value ? in->kvs[i].value : "");
		}
		for (size_t i = 0; i < in->n_kvs; i++)
			if (kv[2 * i] && kv[2 * i + 1])
				env_set(&sc->env, kv[2 * i], kv[2 * i + 1]);
		for (size_t i = 0; i < 2 * in->n_kvs; i++)
			free(kv[i]);
		free(kv);
	} else if (in->kind == PLAIT_DF_ARG) {
		for (size_t i = 0; i < in->n_kvs; i++) {
			_cleanup_free_ char *name = scope_expand(sc, in, in->kvs[i].key);
			if (!name || !*name)
				continue;
			const char *given = plait_map_get(&sc->b->build_args, name);
			_cleanup_free_ char *def = in->kvs[i].value ? scope_expand(sc, in, in->kvs[i].value) : NULL;
			const char *v = given ? given : def ? def : plait_map_get(&sc->b->meta, name);
			if (v)
				plait_map_set(&sc->args, name, v);
		}
	}
}

/* The stages one instruction of stage idx reads: COPY/ADD --from=, RUN --mount from=. */
static void instr_deps(struct scope *sc, size_t idx, const struct plait_df_instr *in, bool *dep)
{
	struct builder *b = sc->b;
	if (in->kind == PLAIT_DF_COPY || in->kind == PLAIT_DF_ADD) {
		const char *from = plait_df_flag_get(in, "from");
		_cleanup_free_ char *name = from ? scope_expand(sc, in, from) : NULL;
		struct stage *s = name ? build_find_stage(b, name, idx) : NULL;
		if (s)
			dep[s - b->stages] = true;
	}
	for (size_t f = 0; in->kind == PLAIT_DF_RUN && f < in->n_flags; f++) {
		if (!streq(in->flags[f].name, "mount"))
			continue;
		_cleanup_free_ char *spec = scope_expand(sc, in, in->flags[f].value);
		if (!spec)
			continue;
		struct plait_df_mount m;
		plait_df_mount_scan(spec, &m); /* a bad mount is the RUN's error, when it runs */
		struct stage *s = m.from ? build_find_stage(b, m.from, idx) : NULL;
		if (s)
			dep[s - b->stages] = true;
		plait_df_mount_release(&m);
	}
}

/* A stage from a resolved base image: the image's ENV (and the PATH FROM
 * adds), then its ONBUILD triggers, which run before the stage's own steps. */
static void base_scope(struct scope *sc, size_t idx, struct stage *st, bool *dep)
{
	struct builder *b = sc->b;
	sc->env = plait_strv_copy_nonnull(st->base.cfg.config.env);
	if (!env_get(sc->env, "PATH"))
		env_set(&sc->env, "PATH", DEFAULT_PATH + strlen("PATH="));
	for (char **t = st->base.cfg.config.on_build; t && *t; t++) {
		struct plait_df_instr in = { 0 };
		/* one that does not parse fails when run_onbuild() runs it */
		if (plait_df_parse_instruction(*t, b->df.escape, b->df.filename, st->df->from->line, &in, NULL) < 0)
			continue;
		instr_deps(sc, idx, &in, dep);
		scope_apply(sc, &in);
		plait_df_instr_release(&in);
	}
}

void build_mark_needed(struct builder *b, size_t target)
{
	size_t n = target + 1;
	/* dep[i * n + j]: stage i reads stage j (j < i) */
	bool *dep = xcalloc(n * n, sizeof(bool));
	char ***envs = xcalloc(n, sizeof(char **));
	for (size_t i = 0; i < n; i++) {
		struct stage *st = &b->stages[i];
		struct scope sc = { .b = b };
		_cleanup_free_ char *image = NULL;
		struct plait_expand_opts eo;
		plait_expand_opts_for(&eo, &b->df, st->df->from);
		plait_expand_word(st->df->image, &eo, build_lookup, &(struct lookup_ctx){ b, NULL }, &image, NULL);
		struct stage *base = image ? build_find_stage(b, image, i) : NULL;
		st->from_stage = base;
		if (base) {
			dep[i * n + (size_t)(base - b->stages)] = true;
			sc.env = plait_strv_copy_nonnull(envs[base - b->stages]);
		} else if (st->base.have_cfg) {
			base_scope(&sc, i, st, dep + i * n);
		}
		for (size_t k = 0; k < st->df->n_instrs; k++) {
			const struct plait_df_instr *in = &st->df->instrs[k];
			instr_deps(&sc, i, in, dep + i * n);
			scope_apply(&sc, in);
		}
		envs[i] = sc.env;
		plait_map_release(&sc.args);
	}
	/* Dependencies point backwards: one pass from the target down. */
	b->stages[target].needed = true;
	for (size_t i = n; i-- > 0;)
		for (size_t j = 0; b->stages[i].needed && j < i; j++)
			if (dep[i * n + j])
				b->stages[j].needed = true;
	for (size_t i = 0; i < n; i++)
		plait_strv_free(envs[i]);
	free(envs);
	free(dep);
}

void build_resolve_bases(struct builder *b, size_t target)
{
	for (;;) {
		bool more = false;
		for (size_t i = 0; i <= target && !build_cancelled(b); i++) {
			struct stage *st = &b->stages[i];
			if (!st->needed || st->base.tried)
				continue;
			const struct plait_df_instr *in = st->df->from;
			_cleanup_free_ char *image = NULL, *platform = NULL;
			/* as build_do_from() expands them; an error is its to report */
			if (build_expand_word(b, NULL, in, st->df->image, &image, NULL) < 0 ||
			    (st->df->platform && build_expand_word(b, NULL, in, st->df->platform, &platform, NULL) < 0))
				continue;
			if (build_find_stage(b, image, i) || streq(image, "scratch"))
				continue;
			build_resolve_base(b, st, image, platform ? platform : b->o->platform_str);
			more = more || st->base.have_cfg;
		}
		if (!more)
			return;
		/* What the triggers and ENV just read may need more stages (with
		 * base images of their own): mark again from scratch. */
		for (size_t i = 0; i < b->n_stages; i++)
			b->stages[i].needed = false;
		build_mark_needed(b, target);
	}
}

/* ------------------------------------------------------------ the planner's query */

void plait_build_needs_release(struct plait_build_needs *n)
{
	for (size_t i = 0; n->bases && i < n->n_bases; i++) {
		free(n->bases[i].ref);
		free(n->bases[i].platform);
	}
	free(n->bases);
	plait_strv_free(n->unused_args);
	memset(n, 0, sizeof(*n));
}

static bool stage_has_run(const struct plait_df_stage *df)
{
	for (size_t k = 0; k < df->n_instrs; k++)
		if (df->instrs[k].kind == PLAIT_DF_RUN)
			return true;
	return false;
}

/* Args that need no ARG: the proxy ones (BuildKit passes them to RUN
 * unasked), the frontend's own (BUILDKIT_*) and the epoch buildx passes. */
static bool consumed_without_arg(const char *k)
{
	static const char *const proxy[] = { "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY" };
	for (size_t i = 0; i < ARRAY_SIZE(proxy); i++)
		if (strcasecmp(k, proxy[i]) == 0)
			return true;
	return startswith(k, "BUILDKIT_") || streq(k, "SOURCE_DATE_EPOCH");
}

static bool declared(const struct plait_df_instr *in, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; in[i].kind == PLAIT_DF_ARG && j < in[i].n_kvs; j++)
			if (streq(in[i].kvs[j].key, name))
				return true;
	return false;
}

/* A stage ARG's name as its stage sees it, near enough: a variable in it is
 * the build arg of that name, else the global ARG's value. */
static const char *given_or_meta(const char *name, void *ud)
{
	const struct builder *b = ud;
	const char *v = plait_map_get(&b->build_args, name);
	return v ? v : plait_map_get(&b->meta, name);
}

/* The --build-args that no ARG of a needed stage (or before the first FROM)
 * names. A stage's ARG name that uses a variable is compared expanded. */
static char **unused_args(struct builder *b, size_t target)
{
	char **names = NULL, **unused = NULL;
	for (size_t i = 0; i <= target; i++) {
		const struct stage *st = &b->stages[i];
		if (!st->needed)
			continue;
		for (size_t k = 0; k < st->df->n_instrs; k++) {
			const struct plait_df_instr *in = &st->df->instrs[k];
			for (size_t j = 0; in->kind == PLAIT_DF_ARG && j < in->n_kvs; j++) {
				char *x = NULL;
				struct plait_expand_opts eo = { .escape = b->df.escape };
				if (strchr(in->kvs[j].key, '$') &&
				    plait_expand_word(in->kvs[j].key, &eo, given_or_meta, b, &x, NULL) >= 0)
					plait_strv_push(&names, x);
				else
					plait_strv_push(&names, in->kvs[j].key);
				free(x);
			}
		}
	}
	for (const char *const *a = b->o->build_args; a && *a; a++) {
		const char *eq = strchr(*a, '=');
		_cleanup_free_ char *k = eq ? xstrndup(*a, (size_t)(eq - *a)) : xstrdup(*a);
		if (!consumed_without_arg(k) && !plait_strv_contains(names, k) &&
		    !declared(b->df.global_args, b->df.n_global_args, k) && !plait_strv_contains(unused, k))
			plait_strv_push(&unused, k);
	}
	plait_strv_free(names);
	return unused;
}

int plait_build_needs(const struct plait_build_opts *o, struct plait_build_needs *out, struct plait_error **err)
{
	struct builder b = { .o = o, .step_lock = PLAIT_CACHE_STEP_LOCK_INIT };
	struct plait_buf data = PLAIT_BUF_INIT;
	_cleanup_free_ char *dfpath = build_dockerfile_path(o);
	size_t target = 0;
	memset(out, 0, sizeof(*out));
	int r = build_prepare(&b, dfpath, &data, &target, err);
	/* Each stage's platform, as from() sets run_platform: FROM --platform's,
	 * else the stage it starts from's, else the target's. */
	char **plat = xcalloc(b.n_stages + 1, sizeof(*plat));
	for (size_t i = 0; r >= 0 && i <= target; i++) {
		struct stage *st = &b.stages[i];
		const struct plait_df_instr *in = st->df->from;
		_cleanup_free_ char *image = NULL, *platform = NULL;
		r = build_expand_word(&b, NULL, in, st->df->image, &image, err);
		if (r >= 0 && st->df->platform)
			r = build_expand_word(&b, NULL, in, st->df->platform, &platform, err);
		if (r < 0)
			break;
		struct stage *from = build_find_stage(&b, image, i);
		plat[i] = xstrdup(platform ? platform : from ? plat[from - b.stages] : o->platform_str);
		if (!st->needed)
			continue;
		if (stage_has_run(st->df) && streq(plat[i], o->platform_str))
			out->runs_on_target = true;
		if (from || streq(image, "scratch"))
			continue;
		out->bases = xrealloc(out->bases, (out->n_bases + 1) * sizeof(*out->bases));
		out->bases[out->n_bases++] = (struct plait_base_ref){ .ref = TAKE_PTR(image),
								      .platform = xstrdup(plat[i]),
								      .line = in->line };
	}
	plait_strv_free(plat);
	if (r >= 0)
		out->unused_args = unused_args(&b, target);
	if (r < 0)
		plait_build_needs_release(out);
	build_release(&b);
	plait_buf_release(&data);
	return r;
}

