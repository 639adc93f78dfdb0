/* core/build_run.c - RUN: the command (exec form, shell form, a heredoc
 * script), its environment, its cache key, and running it through the runner
 * with the mounts build_mount.c prepared. */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build_internal.h"
#include "banned.h"

/* Where a RUN heredoc with "#!" is bound as a script. BuildKit uses
 * /dev/pipes/, but the sandbox's /dev is its own tmpfs, made after the
 * mount targets: a top-level name the sandbox removes again afterwards. */
#define HEREDOC_DIR "/.plait-heredoc-"

/* Build args that are visible to RUN without an ARG line, as in BuildKit. */
static const char *const proxy_args[] = {
	"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
	"ftp_proxy",  "NO_PROXY",   "no_proxy",    "ALL_PROXY",   "all_proxy",
};

static void on_output(void *opaque, int stream, const char *line, size_t len)
{
	(void)stream;
	struct builder *b = opaque;
	_cleanup_free_ char *s = xstrndup(line, len);
	build_emit(b, PLAIT_BUILD_STEP_OUTPUT, s, 0);
	if (b->n_tail == ARRAY_SIZE(b->tail)) {
		free(b->tail[0]);
		memmove(b->tail, b->tail + 1, (ARRAY_SIZE(b->tail) - 1) * sizeof(char *));
		b->n_tail--;
	}
	b->tail[b->n_tail++] = TAKE_PTR(s);
}

int build_do_run(struct builder *b, struct stage *st, size_t idx, const struct plait_df_instr *in,
		  struct plait_error **err)
{
	struct mount_views views = { 0 };
	char **argv = NULL;
	_cleanup_free_ char *script = NULL;
	const char *file_name = NULL;
	struct plait_buf key = PLAIT_BUF_INIT, created_by = PLAIT_BUF_INIT;
	char **env = NULL;
	struct plait_snapshot *snap = NULL;
	int r = 0;
	/* The config keeps WORKDIR as written ("/app/"); RUN uses it cleaned. */
	_cleanup_buf_ struct plait_buf wd = PLAIT_BUF_INIT;
	build_clean_abs("/", st->cfg.config.working_dir ? st->cfg.config.working_dir : "/", &wd);

	enum plait_df_run_form form = plait_df_run_script(in, &script, &file_name);
	char *const *shell = build_shell_of(st);
	if (form == PLAIT_DF_RUN_EXEC) {
		argv = plait_strv_copy_nonnull(in->args);
	} else {
		argv = plait_strv_copy_nonnull(shell);
		if (form == PLAIT_DF_RUN_FILE) {
			struct plait_buf p = PLAIT_BUF_INIT;
			plait_buf_addf(&p, HEREDOC_DIR "%s", file_name);
			plait_strv_push(&argv, p.buf);
			plait_buf_release(&p);
		} else {
			plait_strv_push(&argv, script ? script : in->shell);
		}
	}
	plait_buf_adds(&created_by, "RUN ");
	/* BuildKit's history of a RUN in a stage with ARGs: "|N K=V ... " before
	 * the command, each ARG the stage declared (in order, set or not) with
	 * the value the command sees (an ENV of the name wins). */
	size_t n_declared = plait_strv_length(st->declared);
	if (n_declared)
		plait_buf_addf(&created_by, "|%zu ", n_declared);
	for (size_t i = 0; i < n_declared; i++) {
		const char *name = st->declared[i];
		const char *v = env_get(st->cfg.config.env, name);
		if (!v)
			v = plait_map_get(&st->args, name);
		plait_buf_addf(&created_by, "%s=%s ", name, v ? v : "");
	}
	for (char **a = argv; *a; a++)
		plait_buf_addf(&created_by, "%s%s", a == argv ? "" : " ", *a);
	plait_buf_adds(&created_by, " # buildkit");

	/* Environment: the image's, then ARGs in scope and proxy args it does not set. */
	env = plait_strv_copy_nonnull(st->cfg.config.env);
	for (size_t i = 0; i < st->args.n; i++)
		if (!env_get(env, st->args.items[i].key))
			env_set(&env, st->args.items[i].key, st->args.items[i].value);

	const char *network = plait_df_flag_get(in, "network");
	bool network_none = network && streq(network, "none");
	if (network && !streq(network, "none") && !streq(network, "default") && !streq(network, "host")) {
		r = build_instr_error(b, in, PLAIT_E_USAGE, err, "--network=%s: use none, default or host", network);
		goto out;
	}

	const char *security = plait_df_flag_get(in, "security");
	bool insecure = security && streq(security, "insecure");
	if (security && !insecure && !streq(security, "sandbox")) {
		r = build_instr_error(b, in, PLAIT_E_USAGE, err, "--security=%s: use sandbox or insecure", security);
		goto out;
	}
	if (insecure && !b->o->allow_insecure) {
		r = build_instr_error(b, in, PLAIT_E_USAGE, err,
				      "RUN --security=insecure runs with every capability: give the build "
				      "--allow security.insecure to let it (or remove the flag)");
		goto out;
	}

	plait_buf_adds(&key, "RUN\n");
	for (char **a = argv; *a; a++)
		plait_buf_addf(&key, "arg %s\n", *a);
	for (char **e = env; *e; e++)
		plait_buf_addf(&key, "env %s\n", *e);
	plait_buf_addf(&key, "user %s\nworkdir %s\nnetwork %s\nplatform %s\n",
		       st->cfg.config.user ? st->cfg.config.user : "",
		       wd.buf,
		       network_none ? "none" : "default", st->run_platform ? st->run_platform : b->o->platform_str);
	if (form == PLAIT_DF_RUN_FILE)
		plait_buf_addf(&key, "script %s\n", script);
	if (insecure)
		plait_buf_adds(&key, "security insecure\n");

	for (size_t i = 0; i < in->n_flags; i++) {
		if (!streq(in->flags[i].name, "mount"))
			continue;
		r = build_prepare_mount(b, st, idx, in, in->flags[i].value, &views, &key, &env, err);
		if (r < 0)
			goto out;
	}
	if (form == PLAIT_DF_RUN_FILE) {
		/* The #! script goes in as a read-only file at HEREDOC_DIR<name>,
		 * from memory (nothing to leave behind in the cache). */
		struct plait_buf t = PLAIT_BUF_INIT;
		plait_buf_addf(&t, HEREDOC_DIR "%s", file_name);
		build_add_mount(&views,
				&(struct plait_run_mount){ .type = PLAIT_RUN_MOUNT_FILE,
							   .readonly = true,
							   .data = script,
							   .data_len = strlen(script),
							   .mode = 0755 },
				NULL, plait_buf_detach(&t, NULL));
	}

	char k[PLAIT_SHA256_DIGEST_SIZE];
	r = build_key_and_use_cached_step(b, st, &key, k, created_by.buf, err);
	if (r != 0) {
		r = r < 0 ? r : 0;
		goto out;
	}
	/* Proxy build args reach RUN without an ARG line but stay out of the key
	 * (BuildKit's rule): a different proxy does not invalidate the cache. */
	for (size_t i = 0; i < ARRAY_SIZE(proxy_args); i++) {
		const char *v = plait_map_get(&b->build_args, proxy_args[i]);
		if (v && !env_get(env, proxy_args[i]))
			env_set(&env, proxy_args[i], v);
	}

	r = build_snapshot_of_stage(b, st, &snap, err);
	if (r < 0)
		goto out;
	build_restore_mounts(b, &views);
	struct plait_run_request req = {
		.rootfs = plait_snapshot_root(snap),
		.argv = (const char *const *)argv,
		.env = (const char *const *)env,
		.workdir = wd.buf,
		.user = st->cfg.config.user,
		.network_none = network_none,
		.insecure = insecure,
		.mounts = views.mounts,
		.n_mounts = views.n_mounts,
		.on_output = on_output,
		.opaque = b,
		.cancel = b->o->cancel,
	};
	int code = 0, sig = 0;
	uint64_t t0 = plait_now_ns();
	for (size_t i = 0; i < b->n_tail; i++)
		free(b->tail[i]);
	b->n_tail = 0;
	r = b->o->runner->run(b->o->runner->ctx, &req, &code, &sig, err);
	if (r < 0) {
		struct plait_buf w = PLAIT_BUF_INIT;
		build_where(b, in, &w);
		plait_error_wrap(err, "%s: RUN", w.buf);
		plait_buf_release(&w);
		goto out;
	}
	if (build_cancelled(b)) {
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted at %s:%d", b->df.filename, in->line);
		goto out;
	}
	if (code != 0 || sig != 0) {
		struct plait_buf m = PLAIT_BUF_INIT;
		build_where(b, in, &m);
		if (sig)
			plait_buf_addf(&m, ": '%s' was killed by signal %d", in->original, sig);
		else
			plait_buf_addf(&m, ": '%s' failed with exit code %d", in->original, code);
		if (b->n_tail) {
			plait_buf_adds(&m, "; its last output:");
			for (size_t i = 0; i < b->n_tail; i++)
				plait_buf_addf(&m, "\n    %s", b->tail[i]);
		}
		r = plait_error_set(err, PLAIT_E_GENERIC, "%s", m.buf);
		plait_buf_release(&m);
		goto out;
	}
	r = build_commit_change(b, st, snap, k, NULL, created_by.buf, in, err);
	if (r >= 0)
		build_emit(b, PLAIT_BUILD_STEP_DONE, NULL, (double)(plait_now_ns() - t0) / 1e9);
out:
	plait_snapshot_release(snap);
	mount_views_release(&views);
	plait_strv_free(argv);
	plait_strv_free(env);
	plait_buf_release(&key);
	plait_buf_release(&created_by);
	return r;
}
