/* core/build_meta.c - the instructions that change the image config, not
 * its files (ENV, LABEL, ARG, USER, EXPOSE, VOLUME, CMD, ENTRYPOINT,
 * STOPSIGNAL, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER), and WORKDIR, which
 * also makes its directory. Only what later RUN and COPY steps can see enters
 * the cache key chain. */
#include <ctype.h>
#include <jansson.h>
#include <strings.h>

#include "build_internal.h"
#include "banned.h"

/* Go's %q of a string (strconv.Quote), as BuildKit's history has it. */
static void go_quote(struct plait_buf *b, const char *s)
{
	plait_buf_adds(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': plait_buf_adds(b, "\\\""); break;
		case '\\': plait_buf_adds(b, "\\\\"); break;
		case '\a': plait_buf_adds(b, "\\a"); break;
		case '\b': plait_buf_adds(b, "\\b"); break;
		case '\f': plait_buf_adds(b, "\\f"); break;
		case '\n': plait_buf_adds(b, "\\n"); break;
		case '\r': plait_buf_adds(b, "\\r"); break;
		case '\t': plait_buf_adds(b, "\\t"); break;
		case '\v': plait_buf_adds(b, "\\v"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				plait_buf_addf(b, "\\x%02x", *p);
			else
				plait_buf_addf(b, "%c", *p);
		}
	}
	plait_buf_adds(b, "\"");
}

/* Go's %q of a []string: ["a" "b"]. */
static void go_quote_list(struct plait_buf *b, char *const *v)
{
	plait_buf_adds(b, "[");
	for (size_t i = 0; v && v[i]; i++) {
		if (i)
			plait_buf_adds(b, " ");
		go_quote(b, v[i]);
	}
	plait_buf_adds(b, "]");
}

/* Go's %v of a []string: [a b]. */
static void go_list(struct plait_buf *b, char *const *v)
{
	plait_buf_adds(b, "[");
	for (size_t i = 0; v && v[i]; i++)
		plait_buf_addf(b, "%s%s", i ? " " : "", v[i]);
	plait_buf_adds(b, "]");
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* EXPOSE's words as ports: "80" -> 80/tcp, "9000-9001/udp" -> 9000/udp and
 * 9001/udp (docker's nat.ParsePortSpecs). */
static int expose_ports(struct builder *b, const struct plait_df_instr *in, char **words, char ***out,
			struct plait_error **err)
{
	for (size_t i = 0; words && words[i]; i++) {
		const char *w = words[i];
		const char *slash = strchr(w, '/');
		_cleanup_free_ char *ports = slash ? xstrndup(w, (size_t)(slash - w)) : xstrdup(w);
		const char *proto = slash ? slash + 1 : "tcp";
		char *dash = strchr(ports, '-');
		char *end = NULL;
		unsigned long lo = strtoul(ports, &end, 10), hi = lo;
		bool ok = end != ports && (dash ? end == dash : !*end);
		if (ok && dash) {
			char *e2 = NULL;
			hi = strtoul(dash + 1, &e2, 10);
			ok = e2 != dash + 1 && !*e2 && hi >= lo;
		}
		if (!ok || hi > 65535 || !*proto)
			return build_instr_error(b, in, PLAIT_E_USAGE, err,
						 "EXPOSE %s: give PORT, PORT/PROTO or a range START-END[/PROTO]", w);
		for (unsigned long p = lo; p <= hi; p++) {
			struct plait_buf s = PLAIT_BUF_INIT;
			plait_buf_addf(&s, "%lu/%s", p, proto);
			if (!plait_strv_contains(*out, s.buf))
				plait_strv_push(out, s.buf);
			plait_buf_release(&s);
		}
	}
	return 0;
}

/* Go's time.Duration.String(): "0s", "500ms", "1.5s", "1m30s", "1h0m0s". */
static void go_duration(struct plait_buf *b, int64_t ns)
{
	uint64_t u = ns < 0 ? (uint64_t)-ns : (uint64_t)ns;
	if (ns < 0)
		plait_buf_adds(b, "-");
	if (u == 0) {
		plait_buf_adds(b, "0s");
		return;
	}
	if (u < 1000000000ULL) {
		unsigned prec = u < 1000 ? 0 : u < 1000000 ? 3 : 6;
		const char *unit = u < 1000 ? "ns" : u < 1000000 ? "\xc2\xb5s" : "ms";
		uint64_t div = prec == 0 ? 1 : prec == 3 ? 1000 : 1000000;
		plait_buf_addf(b, "%llu", (unsigned long long)(u / div));
		uint64_t frac = u % div;
		if (frac) {
			char f[16];
			snprintf(f, sizeof(f), "%0*llu", (int)prec, (unsigned long long)frac);
			size_t n = strlen(f);
			while (n && f[n - 1] == '0')
				f[--n] = '\0';
			plait_buf_addf(b, ".%s", f);
		}
		plait_buf_adds(b, unit);
		return;
	}
	uint64_t secs = u / 1000000000ULL, frac = u % 1000000000ULL;
	uint64_t h = secs / 3600, m = (secs / 60) % 60, sec = secs % 60;
	if (h)
		plait_buf_addf(b, "%lluh", (unsigned long long)h);
	if (h || m)
		plait_buf_addf(b, "%llum", (unsigned long long)m);
	plait_buf_addf(b, "%llu", (unsigned long long)sec);
	if (frac) {
		char f[16];
		snprintf(f, sizeof(f), "%09llu", (unsigned long long)frac);
		size_t n = strlen(f);
		while (n && f[n - 1] == '0')
			f[--n] = '\0';
		plait_buf_addf(b, ".%s", f);
	}
	plait_buf_adds(b, "s");
}

/* Go's %q of an int (strconv.QuoteRune): '\x03', 'A', '\n'. */
static void go_quote_rune(struct plait_buf *b, long v)
{
	static const char esc[] = { ['\a'] = 'a', ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n',
				    ['\r'] = 'r', ['\t'] = 't', ['\v'] = 'v' };
	if (v >= 0 && v < (long)sizeof(esc) && esc[v])
		plait_buf_addf(b, "'\\%c'", esc[v]);
	else if (v == '\'' || v == '\\')
		plait_buf_addf(b, "'\\%c'", (char)v);
	else if (v >= 0x20 && v < 0x7f)
		plait_buf_addf(b, "'%c'", (char)v);
	else if (v >= 0 && v < 0x100)
		plait_buf_addf(b, "'\\x%02lx'", v);
	else
		plait_buf_addf(b, "'\\u%04lx'", v);
}

static int set_healthcheck(struct stage *st, const struct plait_df_instr *in, struct plait_buf *hist)
{
	json_auto_t *extra = st->cfg.config.extra_json ? json_loads(st->cfg.config.extra_json, 0, NULL)
							 : json_object();
	if (!extra)
		extra = json_object();
	json_t *h = json_object();
	json_t *test = json_array();
	if (in->health_none) {
		json_array_append_new(test, json_string("NONE"));
	} else if (in->json) {
		json_array_append_new(test, json_string("CMD"));
		for (size_t i = 0; i < in->n_args; i++)
			json_array_append_new(test, json_string(in->args[i]));
	} else {
		json_array_append_new(test, json_string("CMD-SHELL"));
		json_array_append_new(test, json_string(in->shell ? in->shell : ""));
	}
	json_object_set_new(h, "Test", test);
	if (in->health_interval_ns)
		json_object_set_new(h, "Interval", json_integer(in->health_interval_ns));
	if (in->health_timeout_ns)
		json_object_set_new(h, "Timeout", json_integer(in->health_timeout_ns));
	if (in->health_start_period_ns)
		json_object_set_new(h, "StartPeriod", json_integer(in->health_start_period_ns));
	if (in->health_start_interval_ns)
		json_object_set_new(h, "StartInterval", json_integer(in->health_start_interval_ns));
	if (in->health_retries)
		json_object_set_new(h, "Retries", json_integer(in->health_retries));
	json_object_set_new(extra, "Healthcheck", h);
	/* BuildKit (20.10's frontend): "HEALTHCHECK %q" of its HealthConfig,
	 * &{Test Interval Timeout StartPeriod Retries} */
	plait_buf_adds(hist, "HEALTHCHECK &{[");
	size_t k;
	json_t *t;
	json_array_foreach(test, k, t)
	{
		if (k)
			plait_buf_adds(hist, " ");
		go_quote(hist, json_string_value(t));
	}
	plait_buf_adds(hist, "] \"");
	go_duration(hist, in->health_interval_ns);
	plait_buf_adds(hist, "\" \"");
	go_duration(hist, in->health_timeout_ns);
	plait_buf_adds(hist, "\" \"");
	go_duration(hist, in->health_start_period_ns);
	plait_buf_adds(hist, "\" ");
	go_quote_rune(hist, (long)in->health_retries);
	plait_buf_adds(hist, "}");
	free(st->cfg.config.extra_json);
	st->cfg.config.extra_json = json_dumps(extra, JSON_COMPACT | JSON_SORT_KEYS);
	return 0;
}

static char **command_of(struct stage *st, const struct plait_df_instr *in)
{
	if (in->json)
		return plait_strv_copy_nonnull(in->args);
	char **v = plait_strv_copy_nonnull(build_shell_of(st));
	plait_strv_push(&v, in->shell ? in->shell : "");
	return v;
}

static const char *arg0(const struct plait_df_instr *in)
{
	return in->n_args ? in->args[0] : "";
}

/* STOPSIGNAL: a name (with or without SIG, any case, as moby's ParseSignal
 * takes it) or a number, as Docker would accept it at `docker stop`. */
static bool signal_valid(const char *s)
{
	static const char *const names[] = { "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP",
					     "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL", "PROF",
					     "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
					     "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2",
					     "VTALRM", "WINCH", "XCPU", "XFSZ" };
	if (!s || !*s)
		return false;
	if (isdigit((unsigned char)*s)) {
		char *end = NULL;
		long n = strtol(s, &end, 10);
		return !*end && n >= 1 && n <= 64;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0)
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcasecmp(s, names[i]) == 0)
			return true;
	return false;
}

/* The instruction's argument expanded into *field (USER, STOPSIGNAL). */
static int expand_into(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		       char **field, struct plait_error **err)
{
	char *v = NULL;
	int r = build_expand_word(b, st, in, arg0(in), &v, err);
	if (r >= 0) {
		free(*field);
		*field = v;
	}
	return r;
}

/* Each word of args expanded (EXPOSE, VOLUME). */
static int expand_args(struct builder *b, struct stage *st, const struct plait_df_instr *in, char ***out,
		       struct plait_error **err)
{
	*out = NULL;
	for (size_t i = 0; i < in->n_args; i++) {
		_cleanup_free_ char *x = NULL;
		int r = build_expand_word(b, st, in, in->args[i], &x, err);
		if (r < 0)
			return r;
		plait_strv_push(out, x);
	}
	return 0;
}

int build_arg_name(struct builder *b, struct stage *st, const struct plait_df_instr *in, const char *key,
		   char **out, struct plait_error **err)
{
	*out = NULL;
	int r = build_expand_word(b, st, in, key, out, err);
	if (r < 0)
		return r;
	if (!**out) {
		free(*out);
		*out = NULL;
		return build_instr_error(b, in, PLAIT_E_USAGE, err,
					 "ARG name '%s' expands to nothing: set the variable it uses first", key);
	}
	return 0;
}

static int do_arg(struct builder *b, struct stage *st, const struct plait_df_instr *in, struct plait_buf *hist,
		  struct plait_error **err)
{
	plait_buf_adds(hist, "ARG");
	for (size_t i = 0; i < in->n_kvs; i++) {
		/* The name expands too ("ARG ${NAME}=value"), as in BuildKit. */
		_cleanup_free_ char *name = NULL;
		int r = build_arg_name(b, st, in, in->kvs[i].key, &name, err);
		if (r < 0)
			return r;
		const char *given = plait_map_get(&b->build_args, name);
		_cleanup_free_ char *def = NULL;
		if (in->kvs[i].value) {
			r = build_expand_word(b, st, in, in->kvs[i].value, &def, err);
			if (r < 0)
				return r;
		}
		plait_buf_addf(hist, " %s%s%s", name, def ? "=" : "", def ? def : "");
		const char *v = given ? given : def ? def : plait_map_get(&b->meta, name);
		if (v)
			plait_map_set(&st->args, name, v);
		if (!plait_strv_contains(st->declared, name))
			plait_strv_push(&st->declared, name);
	}
	return 0;
}

int build_do_meta(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		   struct plait_error **err)
{
	struct plait_container_config *c = &st->cfg.config;
	/* The history entry as BuildKit writes it: the expanded values, lists
	 * in Go's formatting, no "# buildkit" (that marks RUN, COPY and ADD). */
	_cleanup_buf_ struct plait_buf hist = PLAIT_BUF_INIT;
	int r = 0;
	switch (in->kind) {
	case PLAIT_DF_ENV:
	case PLAIT_DF_LABEL: {
		/* Every pair is expanded before any is set: "ENV abc=bye def=$abc"
		 * gives def the abc from before this line (Dockerfile reference). */
		char **kv = xcalloc(2 * in->n_kvs + 1, sizeof(char *));
		for (size_t i = 0; i < in->n_kvs && r >= 0; i++) {
			r = build_expand_word(b, st, in, in->kvs[i].key, &kv[2 * i], err);
			if (r >= 0)
				r = build_expand_word(b, st, in, in->kvs[i].value ? in->kvs[i].value : "", &kv[2 * i + 1],
						err);
		}
		plait_buf_adds(&hist, in->kind == PLAIT_DF_ENV ? "ENV" : "LABEL");
		for (size_t i = 0; i < in->n_kvs && r >= 0; i++) {
			if (in->kind == PLAIT_DF_ENV)
				env_set(&c->env, kv[2 * i], kv[2 * i + 1]);
			else
				plait_map_set(&c->labels, kv[2 * i], kv[2 * i + 1]);
			plait_buf_addf(&hist, " %s=%s", kv[2 * i], kv[2 * i + 1]);
		}
		for (size_t i = 0; i < 2 * in->n_kvs; i++)
			free(kv[i]);
		free(kv);
		break;
	}
	case PLAIT_DF_ARG:
		r = do_arg(b, st, in, &hist, err);
		break;
	case PLAIT_DF_WORKDIR: {
		_cleanup_free_ char *w = NULL;
		r = build_expand_word(b, st, in, arg0(in), &w, err);
		if (r < 0)
			break;
		/* BuildKit records an absolute path as written ("/app/" stays
		 * "/app/") and joins a relative one to the current directory,
		 * cleaned. Whatever uses the directory cleans it itself. */
		struct plait_buf p = PLAIT_BUF_INIT;
		if (w[0] == '/')
			plait_buf_adds(&p, w);
		else
			build_clean_abs(c->working_dir, w, &p);
		free(c->working_dir);
		c->working_dir = plait_buf_detach(&p, NULL);
		break;
	}
	case PLAIT_DF_USER:
		r = expand_into(b, st, in, &c->user, err);
		if (r >= 0)
			plait_buf_addf(&hist, "USER %s", c->user);
		break;
	case PLAIT_DF_EXPOSE: {
		char **w = NULL, **ports = NULL;
		r = expand_args(b, st, in, &w, err);
		if (r >= 0)
			r = expose_ports(b, in, w, &ports, err);
		for (size_t i = 0; ports && ports[i] && r >= 0; i++)
			if (!plait_strv_contains(c->exposed_ports, ports[i]))
				plait_strv_push(&c->exposed_ports, ports[i]);
		/* Go's %v of the instruction's map: keys sorted, "map[80/tcp:{} …]" */
		size_t n = 0;
		while (ports && ports[n])
			n++;
		if (n)
			qsort(ports, n, sizeof(*ports), cmp_str);
		plait_buf_adds(&hist, "EXPOSE map[");
		for (size_t i = 0; i < n; i++)
			plait_buf_addf(&hist, "%s%s:{}", i ? " " : "", ports[i]);
		plait_buf_adds(&hist, "]");
		plait_strv_free(w);
		plait_strv_free(ports);
		break;
	}
	case PLAIT_DF_VOLUME: {
		char **w = NULL;
		r = expand_args(b, st, in, &w, err);
		for (size_t i = 0; w && w[i] && r >= 0; i++)
			plait_strv_push(&c->volumes, w[i]);
		plait_buf_adds(&hist, "VOLUME ");
		go_list(&hist, w);
		plait_strv_free(w);
		break;
	}
	case PLAIT_DF_CMD:
		plait_strv_free(c->cmd);
		c->cmd = command_of(st, in);
		st->cmd_set = true;
		plait_buf_adds(&hist, "CMD ");
		go_quote_list(&hist, c->cmd);
		break;
	case PLAIT_DF_ENTRYPOINT:
		plait_strv_free(c->entrypoint);
		c->entrypoint = command_of(st, in);
		/* An ENTRYPOINT resets a CMD this stage did not set (Dockerfile reference). */
		if (!st->cmd_set) {
			plait_strv_free(c->cmd);
			c->cmd = NULL;
		}
		plait_buf_adds(&hist, "ENTRYPOINT ");
		go_quote_list(&hist, c->entrypoint);
		break;
	case PLAIT_DF_STOPSIGNAL:
		r = expand_into(b, st, in, &c->stop_signal, err);
		if (r >= 0 && !signal_valid(c->stop_signal))
			r = build_instr_error(b, in, PLAIT_E_USAGE, err,
					"STOPSIGNAL %s: not a signal; give a name (SIGTERM, TERM) or a number 1-64",
					c->stop_signal);
		if (r >= 0)
			plait_buf_addf(&hist, "STOPSIGNAL %s", c->stop_signal);
		break;
	case PLAIT_DF_SHELL:
		plait_strv_free(c->shell);
		c->shell = plait_strv_copy_nonnull(in->args);
		plait_buf_adds(&hist, "SHELL ");
		go_list(&hist, c->shell);
		break;
	case PLAIT_DF_HEALTHCHECK:
		r = set_healthcheck(st, in, &hist);
		break;
	case PLAIT_DF_ONBUILD:
		plait_strv_push(&c->on_build, in->shell ? in->shell : "");
		break;
	case PLAIT_DF_MAINTAINER:
		free(st->cfg.author);
		st->cfg.author = xstrdup(arg0(in));
		plait_buf_addf(&hist, "MAINTAINER %s", st->cfg.author);
		break;
	default:
		r = build_instr_error(b, in, PLAIT_E_USAGE, err, "'%s' cannot be used here",
				plait_df_kind_name(in->kind));
	}
	if (r < 0)
		return r;
	/* Only what later RUN and COPY steps can see is part of the chain (as in
	 * BuildKit): a new LABEL or CMD does not invalidate the steps after it. */
	switch (in->kind) {
	case PLAIT_DF_ENV:
	case PLAIT_DF_ARG:
	case PLAIT_DF_USER:
	case PLAIT_DF_WORKDIR:
	case PLAIT_DF_SHELL:
		break;
	default:
		goto history;
	}
	struct plait_buf k = PLAIT_BUF_INIT;
	plait_buf_addf(&k, "meta %s\n", in->original);
	for (char **e = c->env; e && *e; e++)
		plait_buf_addf(&k, "env %s\n", *e);
	for (size_t i = 0; i < st->args.n; i++)
		plait_buf_addf(&k, "arg %s=%s\n", st->args.items[i].key, st->args.items[i].value);
	char nk[PLAIT_SHA256_DIGEST_SIZE];
	build_chain_key(st->key, &k, nk);
	memcpy(st->key, nk, sizeof(nk));
	plait_buf_release(&k);
history:
	/* WORKDIR writes its own (it makes a layer); ONBUILD none (as BuildKit) */
	if (in->kind != PLAIT_DF_WORKDIR && in->kind != PLAIT_DF_ONBUILD && hist.len) {
		stage_add_history(b, st, hist.buf, true, NULL);
	}
	return 0;
}

/* WORKDIR creates its directory, as docker does: a layer when it did not
 * exist yet (an empty history entry when it did), cached like other steps. */
int build_do_workdir(struct builder *b, struct stage *st, const struct plait_df_instr *in,
		      struct plait_error **err)
{
	int r = build_do_meta(b, st, in, err);
	if (r < 0)
		return r;
	_cleanup_buf_ struct plait_buf wdb = PLAIT_BUF_INIT;
	build_clean_abs("/", st->cfg.config.working_dir ? st->cfg.config.working_dir : "/", &wdb);
	const char *wd = wdb.buf;
	/* The directories WORKDIR makes belong to USER, as BuildKit makes them. */
	const char *user = st->cfg.config.user && *st->cfg.config.user ? st->cfg.config.user : NULL;
	struct plait_buf key = PLAIT_BUF_INIT, created_by = PLAIT_BUF_INIT;
	plait_buf_addf(&key, "WORKDIR-mkdir %s\n", wd);
	if (user)
		plait_buf_addf(&key, "user %s\n", user);
	/* BuildKit's: the directory as the config records it */
	plait_buf_addf(&created_by, "WORKDIR %s", st->cfg.config.working_dir ? st->cfg.config.working_dir : "/");
	char k[PLAIT_SHA256_DIGEST_SIZE];
	struct plait_snapshot *snap = NULL;
	r = build_key_and_use_cached_step(b, st, &key, k, created_by.buf, err);
	if (r != 0) {
		r = r < 0 ? r : 0;
		goto out;
	}
	r = build_snapshot_of_stage(b, st, &snap, err);
	struct copy_attrs owner = { 0 };
	if (r >= 0 && user) {
		r = b->o->runner->resolve_user(b->o->runner->ctx, plait_snapshot_root(snap), user, &owner.uid,
					       &owner.gid, err);
		if (plait_userns_flatten()) /* --userns=single: every file is root's */
			owner.uid = owner.gid = 0;
		owner.chown = r >= 0 && (owner.uid || owner.gid);
		if (r < 0) {
			struct plait_buf w = PLAIT_BUF_INIT;
			build_where(b, in, &w);
			plait_error_wrap(err, "%s: WORKDIR %s as USER %s", w.buf, wd, user);
			plait_buf_release(&w);
		}
	}
	if (r >= 0)
		r = build_mkdir_in_root(plait_snapshot_root(snap), wd, owner.chown ? &owner : NULL, err);
	if (r >= 0)
		r = build_commit_change(b, st, snap, k, NULL, created_by.buf, in, err);
out:
	plait_snapshot_release(snap);
	plait_buf_release(&key);
	plait_buf_release(&created_by);
	return r;
}
