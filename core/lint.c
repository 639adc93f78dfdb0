/* core/lint.c - Dockerfile best-practice checks for ML images.
 *
 * The Dockerfile comes from core/dockerfile; RUN text is split into simple
 * commands by core/shell_words (quotes, escapes, operators, redirections,
 * comments, $(...)), which is enough to recognise package manager
 * invocations without running anything; the rules themselves (IDs, texts)
 * are data in core/lint_rules.c. Rules err on the side of silence: a word
 * holding a variable is never judged. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "context.h"
#include "dockerfile.h"
#include "dockerfile_mount.h"
#include "dockerignore.h"
#include "expand.h"
#include "fs.h"
#include "lint_internal.h"
#include "shell_words.h"
#include "core/banned.h"

#define DEFAULT_LARGE_FILE (50ULL << 20)
#define MAX_DOCKERFILE (16u << 20)

static const char *base_name(const char *w)
{
	const char *s = strrchr(w, '/');
	return s ? s + 1 : w;
}

static bool word_in(const char *w, const char *const *list)
{
	for (; *list; list++)
		if (streq(w, *list))
			return true;
	return false;
}

static bool is_assignment(const char *w)
{
	if (!(isalpha((unsigned char)*w) || *w == '_'))
		return false;
	while (isalnum((unsigned char)*w) || *w == '_')
		w++;
	return *w == '=';
}

/* Index of the command word: leading VAR=x assignments and wrappers such as
 * sudo, env and time are skipped. n when there is none. */
static size_t cmd_start(const struct plait_shell_cmd *c)
{
	/* shell keywords too: "do pip install $p" and "then apt-get ..." run the second word */
	static const char *const wrappers[] = {"sudo",	"env",	 "time",  "nice", "exec", "command",
					       "nohup", "!",	 "do",	  "then", "else", "elif",
					       "if",	"while", "until", "{",	  NULL};
	size_t i = 0;
	while (i < c->n) {
		if (is_assignment(c->words[i])) {
			i++;
			continue;
		}
		if (!word_in(base_name(c->words[i]), wrappers))
			break;
		i++;
		while (i < c->n && c->words[i][0] == '-')
			i++;
	}
	return i;
}

static bool has_var(const char *w)
{
	return strchr(w, '$') || strchr(w, '`');
}

/* ------------------------------------------------------------ findings */

struct linter {
	const struct plait_dockerfile *df;
	const char *file;
	struct plait_lint_finding *v;
	size_t n, alloc;
	char **global_env; /* "NAME=value" of the global ARG defaults, expanded */
};

static void add(struct linter *l, enum rule_idx r, const char *file, int line, const char *fmt, ...)
    _printf_(5, 6);
static void add(struct linter *l, enum rule_idx r, const char *file, int line, const char *fmt, ...)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	PLAIT_ALLOC_GROW(l->v, l->n + 1, l->alloc);
	l->v[l->n++] = (struct plait_lint_finding){
	    .rule = &plait_lint_rules(NULL)[r],
	    .file = xstrdup(file ? file : l->file),
	    .line = line,
	    .message = plait_buf_detach(&b, NULL),
	};
}

static int finding_cmp(const void *a, const void *b)
{
	const struct plait_lint_finding *x = a, *y = b;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	int c = strcmp(x->rule->id, y->rule->id);
	if (c)
		return c;
	c = strcmp(x->file, y->file);
	return c ? c : strcmp(x->message, y->message);
}

/* A list of words for messages: "curl, git". */
static void join_words(struct plait_buf *b, char **w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		plait_buf_addf(b, "%s%s", i ? ", " : "", w[i]);
}

/* ------------------------------------------------------------ RUN analysis */

struct run_ctx {
	const struct plait_df_instr *in;
	struct plait_shell_script sh;
	bool cache_apt;	  /* a cache mount on /var/lib/apt or /var/cache/apt */
	bool cache_pip;	  /* a cache mount on pip's (or uv's) cache */
	bool cache_conda; /* a cache mount on conda's pkgs dir */
	bool rm_apt_lists;
	bool pip_cache_removed;
	bool conda_clean;
};

/* "type=cache,target=/root/.cache/pip" -> the target when it is a cache mount.
 * Scanned, not checked: variables in the value are not expanded here. */
static char *cache_mount_target(const char *spec)
{
	struct plait_df_mount m;
	plait_df_mount_scan(spec, &m);
	char *target = m.type == PLAIT_DF_MOUNT_CACHE && m.target ? xstrdup(m.target) : NULL;
	plait_df_mount_release(&m);
	return target;
}

static void run_mounts(struct run_ctx *rc)
{
	const struct plait_df_instr *in = rc->in;
	for (size_t i = 0; i < in->n_flags; i++) {
		if (!streq(in->flags[i].name, "mount"))
			continue;
		_cleanup_free_ char *t = cache_mount_target(in->flags[i].value);
		if (!t)
			continue;
		if (startswith(t, "/var/lib/apt") || startswith(t, "/var/cache/apt"))
			rc->cache_apt = true;
		if (strstr(t, "pip") || strstr(t, "/uv") || endswith(t, "/.cache"))
			rc->cache_pip = true;
		if (strstr(t, "conda") || strstr(t, "mamba") || endswith(t, "/pkgs"))
			rc->cache_conda = true;
	}
}

static bool is_shell(const char *w)
{
	static const char *const shells[] = {"sh", "bash", "ash", "dash", "zsh", NULL};
	return word_in(base_name(w), shells);
}

/* Turn what a RUN executes into commands: exec form, shell form, heredoc
 * scripts; heredoc bodies fed to a program that is not a shell are data. */
static void run_parse(const struct plait_df_instr *in, struct plait_shell_script *sh)
{
	if (in->json) {
		if (in->n_args >= 3 && is_shell(in->args[0]) && streq(in->args[1], "-c")) {
			plait_shell_split(in->args[2], sh);
			return;
		}
		if (!in->n_args)
			return;
		plait_shell_script_add(sh, (const char *const *)in->args, in->n_args);
		return;
	}
	if (!in->n_heredocs) {
		plait_shell_split(in->shell ? in->shell : "", sh);
		return;
	}
	_cleanup_free_ char *script = NULL;
	const char *file_name = NULL;
	enum plait_df_run_form form = plait_df_run_script(in, &script, &file_name);
	if (form == PLAIT_DF_RUN_FILE) {
		/* "#!/bin/bash" scripts are shell; "#!/usr/bin/env python" are not. */
		const char *nl = script ? strchr(script, '\n') : NULL;
		_cleanup_free_ char *shebang =
		    script ? xstrndup(script, nl ? (size_t)(nl - script) : strlen(script)) : NULL;
		if (shebang && (strstr(shebang, "sh") && !strstr(shebang, "python")))
			plait_shell_split(script, sh);
		return;
	}
	/* The command line itself, then the bodies when a shell reads them. */
	size_t first = sh->n;
	plait_shell_split(in->shell ? in->shell : "", sh);
	bool lone = sh->n == first;
	bool shell_reads = lone || (sh->cmds[first].n && is_shell(sh->cmds[first].words[0]));
	if (shell_reads) {
		for (size_t i = 0; i < in->n_heredocs; i++) {
			_cleanup_free_ char *data = plait_df_heredoc_data(&in->heredocs[i]);
			plait_shell_split(data, sh);
		}
	}
}

static bool any_word(const struct plait_shell_cmd *c, size_t from, const char *w)
{
	for (size_t i = from; i < c->n; i++)
		if (streq(c->words[i], w))
			return true;
	return false;
}

/* apt-get/apt: the subcommand and where its arguments start. */
static const char *apt_subcommand(const struct plait_shell_cmd *c, size_t s, size_t *args)
{
	for (size_t i = s + 1; i < c->n; i++) {
		const char *w = c->words[i];
		if (w[0] == '-') {
			/* options with a separate argument */
			if (streq(w, "-o") || streq(w, "-c") || streq(w, "-t") ||
			    streq(w, "--option") || streq(w, "--config-file") ||
			    streq(w, "--target-release") || streq(w, "--default-release"))
				i++;
			continue;
		}
		*args = i + 1;
		return w;
	}
	return NULL;
}

static bool is_apt(const char *b)
{
	return streq(b, "apt-get") || streq(b, "apt");
}

/* "pip", "pip3", "python3.11": prefix followed by version characters only. */
static bool versioned_name(const char *w, const char *prefix)
{
	size_t k = strlen(prefix);
	if (strncmp(w, prefix, k) != 0)
		return false;
	for (w += k; *w; w++)
		if (!isdigit((unsigned char)*w) && *w != '.')
			return false;
	return true;
}

static bool is_pip(const struct plait_shell_cmd *c, size_t s, size_t *sub)
{
	const char *b = base_name(c->words[s]);
	if (versioned_name(b, "pip")) {
		*sub = s + 1;
		return true;
	}
	if (versioned_name(b, "python")) {
		for (size_t i = s + 1; i + 1 < c->n; i++) {
			if (streq(c->words[i], "-m") && streq(c->words[i + 1], "pip")) {
				*sub = i + 2;
				return true;
			}
			if (c->words[i][0] != '-')
				return false;
		}
		return false;
	}
	if (streq(b, "uv") && s + 1 < c->n && streq(c->words[s + 1], "pip")) {
		*sub = s + 2;
		return true;
	}
	return false;
}

/* The first non-option word at or after i (pip's subcommand). */
static size_t next_nonopt(const struct plait_shell_cmd *c, size_t i)
{
	while (i < c->n && c->words[i][0] == '-')
		i++;
	return i;
}

static bool is_conda(const char *b)
{
	return streq(b, "conda") || streq(b, "mamba") || streq(b, "micromamba");
}

/* Build tools that belong in a builder stage. */
static bool is_build_tool(const char *pkg)
{
	static const char *const exact[] = {
	    "gcc",	  "g++",	  "build-essential", "make",	    "cmake",
	    "clang",	  "nvcc",	  "cuda-nvcc",	     "gxx",	    "cxx-compiler",
	    "c-compiler", "cuda-toolkit", "gcc-c++",	     "ninja-build", "cuda-compiler",
	    NULL};
	_cleanup_free_ char *name = xstrdup(pkg);
	name[strcspn(name, "=<>:")] = '\0'; /* drop versions (apt '=', conda '=', ':arch') */
	if (word_in(name, exact))
		return true;
	/* versioned packages: gcc-12, g++-11, clang-17, cuda-nvcc-12-4, cuda-toolkit-12-4 */
	static const char *const prefixes[] = {
	    "gcc-", "g++-", "clang-", "cuda-nvcc-", "cuda-toolkit-", "cuda-compiler-", NULL};
	for (const char *const *p = prefixes; *p; p++)
		if (startswith(name, *p) && isdigit((unsigned char)name[strlen(*p)]))
			return true;
	return false;
}

static void collect_build_tools(const struct plait_shell_cmd *c, size_t from, char ***tools, size_t *n)
{
	for (size_t i = from; i < c->n; i++) {
		const char *w = c->words[i];
		if (w[0] == '-' || has_var(w) || !is_build_tool(w))
			continue;
		_cleanup_free_ char *name = xstrdup(w);
		name[strcspn(name, "=<>:")] = '\0';
		bool dup = false;
		for (size_t k = 0; k < *n; k++)
			dup |= streq((*tools)[k], name);
		if (!dup) {
			plait_strv_push(tools, name);
			(*n)++;
		}
	}
}

/* Is this simple command a dependency install (for PL010)? */
static bool is_dep_install(const struct plait_shell_cmd *c)
{
	size_t s = cmd_start(c), sub, a;
	if (s >= c->n)
		return false;
	const char *b = base_name(c->words[s]);
	if (is_apt(b)) {
		const char *w = apt_subcommand(c, s, &a);
		return w && streq(w, "install");
	}
	if (is_pip(c, s, &sub)) {
		size_t k = next_nonopt(c, sub);
		return k < c->n && (streq(c->words[k], "install") || streq(c->words[k], "sync")) &&
		       !any_word(c, k, "--no-deps");
	}
	if (is_conda(b) || streq(b, "npm") || streq(b, "yarn") || streq(b, "pnpm") ||
	    streq(b, "poetry") || streq(b, "pipenv") || streq(b, "uv") || streq(b, "pdm")) {
		size_t k = next_nonopt(c, s + 1);
		if (streq(b, "yarn") && k >= c->n)
			return true; /* a bare "yarn" installs */
		if (k >= c->n)
			return false;
		const char *w = c->words[k];
		if (streq(b, "poetry") && any_word(c, k, "--only-root"))
			return false;
		return streq(w, "install") || streq(w, "ci") || streq(w, "sync") ||
		       (streq(b, "conda") && streq(w, "env")) ||
		       (streq(b, "mamba") && streq(w, "env"));
	}
	return false;
}

static bool run_has_dep_install(const struct plait_df_instr *in)
{
	struct plait_shell_script sh = {0};
	run_parse(in, &sh);
	bool found = false;
	for (size_t i = 0; i < sh.n && !found; i++)
		found = is_dep_install(&sh.cmds[i]);
	plait_shell_script_release(&sh);
	return found;
}

/* pip options that take a separate argument. */
static bool pip_opt_has_arg(const char *w)
{
	static const char *const with_arg[] = {"-r",
					       "--requirement",
					       "-c",
					       "--constraint",
					       "-e",
					       "--editable",
					       "-i",
					       "--index-url",
					       "--extra-index-url",
					       "-f",
					       "--find-links",
					       "-t",
					       "--target",
					       "--prefix",
					       "--root",
					       "--platform",
					       "--python-version",
					       "--implementation",
					       "--abi",
					       "--only-binary",
					       "--no-binary",
					       "--progress-bar",
					       "--trusted-host",
					       "--cache-dir",
					       "--src",
					       "--upgrade-strategy",
					       "--log",
					       "--proxy",
					       "--timeout",
					       "--retries",
					       "-C",
					       "--config-settings",
					       "--global-option",
					       "--report",
					       "--root-user-action",
					       "--exists-action",
					       "--python",
					       "-p",
					       "--index",
					       "--default-index",
					       "--group",
					       "--extra",
					       "--cert",
					       "--client-cert",
					       NULL};
	return word_in(w, with_arg);
}

static bool pip_spec_pinned(const char *w)
{
	/* Local projects, wheels, archives and URLs name one thing (a lock or the
	 * project's own metadata decides their dependencies). */
	if (w[0] == '.' || w[0] == '/' || w[0] == '~' || strstr(w, "://") || strchr(w, '@') ||
	    endswith(w, ".whl") || endswith(w, ".tar.gz") || endswith(w, ".zip") ||
	    endswith(w, ".tgz"))
		return true;
	const char *eq = strstr(w, "==");
	return eq && !strpbrk(eq + 2, "*,<>");
}

struct stage_ctx {
	const struct plait_df_stage *st;
	bool pip_no_cache_env; /* ENV PIP_NO_CACHE_DIR set */
};

static void check_run(struct linter *l, struct stage_ctx *sc, const struct plait_df_instr *in,
		      char ***tools, size_t *n_tools)
{
	struct run_ctx rc = {.in = in};
	run_mounts(&rc);
	run_parse(in, &rc.sh);
	struct plait_shell_script *sh = &rc.sh;

	/* What the RUN cleans up, wherever in the RUN it does. */
	for (size_t i = 0; i < sh->n; i++) {
		const struct plait_shell_cmd *c = &sh->cmds[i];
		size_t s = cmd_start(c);
		if (s >= c->n)
			continue;
		const char *b = base_name(c->words[s]);
		if (streq(b, "rm")) {
			for (size_t k = s + 1; k < c->n; k++) {
				if (startswith(c->words[k], "/var/lib/apt/lists"))
					rc.rm_apt_lists = true;
				if (strstr(c->words[k], ".cache/pip") ||
				    strstr(c->words[k], ".cache/uv") ||
				    endswith(c->words[k], "/.cache") ||
				    endswith(c->words[k], "/.cache/"))
					rc.pip_cache_removed = true;
				if (strstr(c->words[k], "/pkgs"))
					rc.conda_clean = true;
			}
		}
		size_t sub;
		if (is_pip(c, s, &sub)) {
			size_t k = next_nonopt(c, sub);
			if (k < c->n && streq(c->words[k], "cache") && any_word(c, k, "purge"))
				rc.pip_cache_removed = true;
		}
		if (is_conda(b) && any_word(c, s + 1, "clean"))
			rc.conda_clean = true;
	}

	bool first_cmd = true;
	for (size_t i = 0; i < sh->n; i++) {
		const struct plait_shell_cmd *c = &sh->cmds[i];
		size_t s = cmd_start(c), a, sub;
		if (s >= c->n)
			continue;
		const char *cw = c->words[s];
		const char *b = base_name(cw);

		/* PL019: cd as the RUN's first command, or "cd x &&". */
		if (streq(cw, "cd") && c->before != PLAIT_SHELL_SUBSHELL &&
		    (first_cmd || c->after == PLAIT_SHELL_AND))
			add(l, R_RUN_CD, NULL, in->line,
			    "'cd %s' in RUN: the directory is set for this RUN only",
			    c->n > s + 1 ? c->words[s + 1] : "");
		first_cmd = false;

		if (is_apt(b)) {
			const char *w = apt_subcommand(c, s, &a);
			if (!w)
				continue;
			if (streq(w, "upgrade") || streq(w, "dist-upgrade") ||
			    streq(w, "full-upgrade"))
				add(l, R_APT_UPGRADE, NULL, in->line, "%s %s in a build", b, w);
			if (!streq(w, "install"))
				continue;
			bool norec = any_word(c, s + 1, "--no-install-recommends");
			for (size_t k = s + 1; k + 1 < c->n && !norec; k++)
				if (streq(c->words[k], "-o") &&
				    (startswith(c->words[k + 1], "APT::Install-Recommends=false") ||
				     startswith(c->words[k + 1], "APT::Install-Recommends=0")))
					norec = true;
			for (size_t k = s + 1; k < c->n && !norec; k++)
				if (startswith(c->words[k], "--no-install-recommends") ||
				    strstr(c->words[k], "APT::Install-Recommends=false"))
					norec = true;
			if (!norec)
				add(l, R_APT_RECOMMENDS, NULL, in->line,
				    "%s install without --no-install-recommends", b);
			_cleanup_strv_free_ char **unpinned = NULL;
			size_t n_unpinned = 0;
			for (size_t k = a; k < c->n; k++) {
				const char *p = c->words[k];
				if (p[0] == '-') {
					if (streq(p, "-o") || streq(p, "-t") || streq(p, "-c"))
						k++;
					continue;
				}
				if (has_var(p) || strchr(p, '=') || strchr(p, '/') ||
				    endswith(p, ".deb"))
					continue;
				plait_strv_push(&unpinned, p);
				n_unpinned++;
			}
			if (n_unpinned) {
				_cleanup_buf_ struct plait_buf mb = PLAIT_BUF_INIT;
				join_words(&mb, unpinned, n_unpinned);
				add(l, R_APT_UNPINNED, NULL, in->line,
				    "%s install without version pins: %s", b, mb.buf);
			}
			if (!rc.rm_apt_lists && !rc.cache_apt)
				add(l, R_APT_LISTS, NULL, in->line,
				    "%s install without removing /var/lib/apt/lists in the same "
				    "RUN",
				    b);
			collect_build_tools(c, a, tools, n_tools);
			continue;
		}

		if (is_pip(c, s, &sub)) {
			size_t k = next_nonopt(c, sub);
			if (k >= c->n || !streq(c->words[k], "install"))
				continue;
			bool uv = streq(b, "uv");
			bool constrained = false, nocache = false;
			_cleanup_strv_free_ char **unpinned = NULL;
			size_t n_unpinned = 0;
			for (size_t j = k + 1; j < c->n; j++) {
				const char *w = c->words[j];
				if (w[0] == '-') {
					if (streq(w, "-c") || streq(w, "--constraint") ||
					    startswith(w, "--constraint=") ||
					    streq(w, "--require-hashes") ||
					    (startswith(w, "-c") && w[2]))
						constrained = true;
					if (streq(w, "--no-cache-dir") || streq(w, "--no-cache") ||
					    startswith(w, "--no-cache-dir="))
						nocache = true;
					if (pip_opt_has_arg(w))
						j++;
					continue;
				}
				if (has_var(w) || pip_spec_pinned(w))
					continue;
				plait_strv_push(&unpinned, w);
				n_unpinned++;
			}
			for (size_t j = 0; j < s; j++)
				if (startswith(c->words[j], "PIP_NO_CACHE_DIR=") ||
				    startswith(c->words[j], "UV_NO_CACHE="))
					nocache = true;
			if (n_unpinned && !constrained) {
				_cleanup_buf_ struct plait_buf mb = PLAIT_BUF_INIT;
				join_words(&mb, unpinned, n_unpinned);
				add(l, R_PIP_UNPINNED, NULL, in->line,
				    "pip install without pinned versions: %s", mb.buf);
			}
			if (!nocache && !rc.cache_pip && !rc.pip_cache_removed &&
			    !sc->pip_no_cache_env)
				add(l, R_PIP_CACHE, NULL, in->line, "%s without %s",
				    uv ? "uv pip install" : "pip install",
				    uv ? "--no-cache" : "--no-cache-dir");
			continue;
		}

		if (is_conda(b)) {
			size_t k = next_nonopt(c, s + 1);
			if (k >= c->n)
				continue;
			bool install = streq(c->words[k], "install") ||
				       streq(c->words[k], "create") ||
				       (streq(c->words[k], "env") && any_word(c, k, "create")) ||
				       (streq(c->words[k], "env") && any_word(c, k, "update"));
			if (!install)
				continue;
			if (!rc.conda_clean && !rc.cache_conda)
				add(l, R_CONDA_CLEAN, NULL, in->line,
				    "%s %s without '%s clean' in the same RUN", b, c->words[k], b);
			collect_build_tools(c, k + 1, tools, n_tools);
			continue;
		}

		/* Other package managers only matter for build tools. */
		if (streq(b, "apk") || streq(b, "yum") || streq(b, "dnf") || streq(b, "microdnf")) {
			size_t k = next_nonopt(c, s + 1);
			if (k < c->n &&
			    (streq(c->words[k], "add") || streq(c->words[k], "install")))
				collect_build_tools(c, k + 1, tools, n_tools);
		}
	}
	plait_shell_script_release(&rc.sh);
}

/* ------------------------------------------------------------ FROM */

static const char *env_lookup(const char *name, void *userdata)
{
	return plait_expand_lookup_envv(name, userdata);
}

/* The global ARG defaults, expanded in order, as "NAME=value". */
static void global_args(struct linter *l)
{
	const struct plait_dockerfile *df = l->df;
	for (size_t i = 0; i < df->n_global_args; i++) {
		const struct plait_df_instr *in = &df->global_args[i];
		for (size_t k = 0; k < in->n_kvs; k++) {
			if (!in->kvs[k].value)
				continue;
			struct plait_expand_opts o;
			plait_expand_opts_for(&o, df, in);
			o.skip_unset = true;
			_cleanup_free_ char *v = NULL;
			_cleanup_error_ struct plait_error *e = NULL;
			if (plait_expand_word(in->kvs[k].value, &o, env_lookup, l->global_env, &v,
					      &e) < 0)
				continue;
			struct plait_buf b = PLAIT_BUF_INIT;
			plait_buf_addf(&b, "%s=%s", in->kvs[k].key, v);
			plait_strv_push(&l->global_env, b.buf);
			plait_buf_release(&b);
		}
	}
}

/* The image a FROM names, ARGs expanded; NULL when a variable stays unknown. */
static char *from_image(struct linter *l, const struct plait_df_stage *st)
{
	if (!strchr(st->image, '$'))
		return xstrdup(st->image);
	struct plait_expand_opts o;
	plait_expand_opts_for(&o, l->df, st->from);
	o.skip_unset = true;
	char *v = NULL;
	_cleanup_error_ struct plait_error *e = NULL;
	if (plait_expand_word(st->image, &o, env_lookup, l->global_env, &v, &e) < 0)
		return NULL;
	if (strchr(v, '$') || !*v) {
		free(v);
		return NULL;
	}
	return v;
}

/* The earlier stage a stage's FROM names, or NULL for an image. */
static const struct plait_df_stage *parent_stage(const struct plait_dockerfile *df,
						 const struct plait_df_stage *st)
{
	for (size_t i = 0; i < st->index; i++)
		if (df->stages[i].name && strcasecmp(df->stages[i].name, st->image) == 0)
			return &df->stages[i];
	return NULL;
}

/* Split "host:5000/repo:tag@sha256:x" into tag (or NULL) and digest presence. */
static void image_ref_parts(const char *image, char **tag, bool *digest)
{
	*digest = strchr(image, '@') != NULL;
	size_t len = strcspn(image, "@");
	const char *slash = memrchr(image, '/', len);
	const char *start = slash ? slash + 1 : image;
	const char *colon = memchr(start, ':', len - (size_t)(start - image));
	*tag = colon ? xstrndup(colon + 1, len - (size_t)(colon + 1 - image)) : NULL;
}

static void check_from(struct linter *l, const struct plait_df_stage *st, const char *image)
{
	if (parent_stage(l->df, st) || strcasecmp(st->image, "scratch") == 0)
		return;
	if (!image || strcasecmp(image, "scratch") == 0)
		return;
	_cleanup_free_ char *tag = NULL;
	bool digest;
	image_ref_parts(image, &tag, &digest);
	_cleanup_free_ char *shown = NULL;
	struct plait_buf b = PLAIT_BUF_INIT;
	if (streq(image, st->image))
		plait_buf_addf(&b, "'%s'", image);
	else
		plait_buf_addf(&b, "'%s' ('%s')", st->image, image);
	shown = plait_buf_detach(&b, NULL);
	if (digest)
		return;
	if (!tag)
		add(l, R_BASE_UNPINNED, NULL, st->from->line, "base image %s has no tag", shown);
	else if (streq(tag, "latest"))
		add(l, R_BASE_UNPINNED, NULL, st->from->line, "base image %s uses the 'latest' tag",
		    shown);
	else
		add(l, R_BASE_NO_DIGEST, NULL, st->from->line,
		    "base image %s is not pinned by digest", shown);
}

/* ------------------------------------------------------------ COPY / ADD */

static bool is_context_root(const char *src)
{
	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	plait_path_clean(src, &b);
	return streq(b.buf, ".") || streq(b.buf, "/");
}

static bool is_url(const char *s)
{
	return startswith(s, "http://") || startswith(s, "https://");
}

static bool is_git_url(const char *s)
{
	return startswith(s, "git@") || startswith(s, "git://") || strstr(s, ".git#") ||
	       endswith(s, ".git");
}

static bool is_archive_name(const char *s)
{
	static const char *const ext[] = {".tar",  ".tar.gz",  ".tgz",	".tar.xz",
					  ".txz",  ".tar.bz2", ".tbz2", ".tar.zst",
					  ".tzst", ".tar.lz4", NULL};
	for (const char *const *e = ext; *e; e++) {
		size_t n = strlen(s), k = strlen(*e);
		if (n >= k && strcasecmp(s + n - k, *e) == 0)
			return true;
	}
	return false;
}

static void check_add(struct linter *l, const struct plait_df_instr *in)
{
	if (plait_df_flag_get(in, "from") || in->n_args < 2)
		return;
	for (size_t i = 0; i + 1 < in->n_args; i++) {
		const char *src = in->args[i];
		if (startswith(src, "<<"))
			continue;
		if (is_url(src) && !is_git_url(src)) {
			if (!plait_df_flag_get(in, "checksum"))
				add(l, R_ADD_URL, NULL, in->line,
				    "ADD of URL '%s' without --checksum", src);
			continue;
		}
		if (is_url(src) || is_git_url(src) || has_var(src) || is_archive_name(src))
			continue;
		add(l, R_ADD_LOCAL, NULL, in->line, "ADD of local '%s', which is not a tar archive",
		    src);
	}
}

/* ------------------------------------------------------------ ARG / ENV */

static bool part_is_secret(const char *part)
{
	static const char *const words[] = {"TOKEN",	   "PASSWORD",	 "PASSWD", "SECRET",
					    "CREDENTIALS", "CREDENTIAL", "APIKEY", NULL};
	size_t n = strlen(part);
	for (const char *const *w = words; *w; w++) {
		size_t k = strlen(*w);
		/* TOKEN, HFTOKEN; not TOKENIZERS */
		if (n >= k && streq(part + n - k, *w))
			return true;
	}
	return false;
}

/* Names that hold secrets: HF_TOKEN, DB_PASSWORD, OPENAI_API_KEY, AWS_SECRET_ACCESS_KEY;
 * not TOKENIZERS_PARALLELISM, GPG_KEY (a public key id), PASSWORD_FILE (a path). */
bool plait_lint_secret_name(const char *name)
{
	_cleanup_free_ char *u = xstrdup(name);
	for (char *p = u; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	static const char *const not_secret_last[] = {
	    "FILE", "PATH",    "DIR",	"NAME",	 "ID",	"URL", "LENGTH", "TYPE",   "ENV", "SIZE",
	    "URI",  "ENABLED", "LIMIT", "COUNT", "LEN", "MAX", "MIN",	 "TOKENS", NULL};
	if (streq(u, "GPG_KEY") || strstr(u, "PUBLIC") || strstr(u, "PUB_KEY") ||
	    strstr(u, "KEYRING"))
		return false;
	char *parts[32];
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(u, "_-.", &save); t && n < ARRAY_SIZE(parts);
	     t = strtok_r(NULL, "_-.", &save))
		parts[n++] = t;
	if (!n || word_in(parts[n - 1], not_secret_last))
		return false;
	if (streq(parts[n - 1], "KEY") && n > 1)
		return true; /* *_KEY, API_KEY */
	for (size_t i = 0; i < n; i++)
		if (part_is_secret(parts[i]))
			return true;
	return false;
}

static void check_secrets(struct linter *l, const struct plait_df_instr *in)
{
	for (size_t k = 0; k < in->n_kvs; k++) {
		const char *key = in->kvs[k].key;
		const char *v = in->kvs[k].value;
		if (!plait_lint_secret_name(key))
			continue;
		/* ENV X="" is a placeholder set at run time, not a leak. */
		if (in->kind == PLAIT_DF_ENV && (!v || !*v || streq(v, "\"\"") || streq(v, "''")))
			continue;
		add(l, R_SECRET_ENV, NULL, in->line, "%s '%s' looks like a secret",
		    plait_df_kind_name(in->kind), key);
	}
}

/* ------------------------------------------------------------ train / serve */

enum { KIND_TRAIN = 1, KIND_SERVE = 2 };

static int word_kinds(const char *text)
{
	int k = 0;
	const char *p = text;
	while (*p) {
		while (*p && !isalnum((unsigned char)*p))
			p++;
		const char *s = p;
		while (isalnum((unsigned char)*p))
			p++;
		size_t n = (size_t)(p - s);
		if (!n)
			continue;
		_cleanup_free_ char *w = xstrndup(s, n);
		for (char *q = w; *q; q++)
			*q = (char)tolower((unsigned char)*q);
		if (startswith(w, "train"))
			k |= KIND_TRAIN;
		if (startswith(w, "serve") || startswith(w, "serving") || startswith(w, "infer") ||
		    streq(w, "torchserve") || streq(w, "tritonserver"))
			k |= KIND_SERVE;
	}
	return k;
}

static int stage_kinds(const struct plait_df_stage *st)
{
	int k = st->name ? word_kinds(st->name) : 0;
	for (size_t i = 0; i < st->n_instrs; i++) {
		const struct plait_df_instr *in = &st->instrs[i];
		if (in->kind != PLAIT_DF_RUN && in->kind != PLAIT_DF_CMD &&
		    in->kind != PLAIT_DF_ENTRYPOINT)
			continue;
		if (in->json) {
			for (size_t a = 0; a < in->n_args; a++)
				k |= word_kinds(in->args[a]);
		} else if (in->shell) {
			k |= word_kinds(in->shell);
		}
	}
	return k;
}

static void check_train_serve(struct linter *l)
{
	const struct plait_dockerfile *df = l->df;
	int *own = xcalloc(df->n_stages, sizeof(*own));
	int *all = xcalloc(df->n_stages, sizeof(*all));
	int file = 0;
	for (size_t i = 0; i < df->n_stages; i++) {
		own[i] = stage_kinds(&df->stages[i]);
		file |= own[i];
	}
	if (file == (KIND_TRAIN | KIND_SERVE)) {
		for (size_t i = 0; i < df->n_stages; i++) {
			const struct plait_df_stage *st = &df->stages[i];
			const struct plait_df_stage *p = parent_stage(df, st);
			int inherited = p ? all[p->index] : 0;
			all[i] = own[i] | inherited;
			/* Report where both first meet, not every stage built on it. */
			if (all[i] == (KIND_TRAIN | KIND_SERVE) && inherited != all[i]) {
				_cleanup_buf_ struct plait_buf nb = PLAIT_BUF_INIT;
				if (st->name)
					plait_buf_addf(&nb, "'%s'", st->name);
				else
					plait_buf_addf(&nb, "%zu", st->index);
				add(l, R_TRAIN_SERVE, NULL, st->from->line,
				    "stage %s holds both training and serving%s: one target for "
				    "both",
				    nb.buf, inherited ? ", with the stage it is built on" : "");
			}
		}
	}
	free(own);
	free(all);
}

/* ------------------------------------------------------------ stages */

static bool env_sets(const struct plait_df_instr *in, const char *name)
{
	for (size_t k = 0; k < in->n_kvs; k++)
		if (streq(in->kvs[k].key, name) && in->kvs[k].value && *in->kvs[k].value &&
		    !streq(in->kvs[k].value, "0") && strcasecmp(in->kvs[k].value, "false") != 0)
			return true;
	return false;
}

static void check_stage(struct linter *l, const struct plait_df_stage *st)
{
	struct stage_ctx sc = {.st = st};
	_cleanup_free_ char *image = from_image(l, st);
	check_from(l, st, image);

	/* ENV PIP_NO_CACHE_DIR from this stage or a stage it is built on. */
	for (const struct plait_df_stage *p = st; p; p = parent_stage(l->df, p))
		for (size_t i = 0; i < p->n_instrs; i++)
			if (p->instrs[i].kind == PLAIT_DF_ENV &&
			    (env_sets(&p->instrs[i], "PIP_NO_CACHE_DIR") ||
			     env_sets(&p->instrs[i], "UV_NO_CACHE")))
				sc.pip_no_cache_env = true;

	_cleanup_strv_free_ char **tools = NULL;
	size_t n_tools = 0;
	int tools_line = 0;
	const struct plait_df_instr *context_copy = NULL;
	bool context_copy_reported = false;
	/* Dependencies installed before the context copy (here or in the stage
	 * this one is built on): a later "pip install ." only adds the project. */
	bool deps_first = false;
	for (const struct plait_df_stage *p = parent_stage(l->df, st); p && !deps_first;
	     p = parent_stage(l->df, p))
		for (size_t i = 0; i < p->n_instrs && !deps_first; i++)
			if (p->instrs[i].kind == PLAIT_DF_RUN)
				deps_first = run_has_dep_install(&p->instrs[i]);
	for (size_t i = 0; i < st->n_instrs; i++) {
		const struct plait_df_instr *in = &st->instrs[i];
		switch (in->kind) {
		case PLAIT_DF_RUN: {
			size_t before = n_tools;
			check_run(l, &sc, in, &tools, &n_tools);
			if (n_tools > before && !tools_line)
				tools_line = in->line;
			bool dep_install = run_has_dep_install(in);
			if (dep_install && !context_copy)
				deps_first = true;
			if (dep_install && context_copy && !context_copy_reported && !deps_first) {
				add(l, R_COPY_CONTEXT_EARLY, NULL, context_copy->line,
				    "whole build context copied ('%s') before the dependency "
				    "install on line %d",
				    context_copy->original, in->line);
				context_copy_reported = true;
			}
			break;
		}
		case PLAIT_DF_COPY:
		case PLAIT_DF_ADD:
			if (in->kind == PLAIT_DF_ADD)
				check_add(l, in);
			if (!context_copy && !plait_df_flag_get(in, "from"))
				for (size_t k = 0; k + 1 < in->n_args; k++)
					if (is_context_root(in->args[k]))
						context_copy = in;
			break;
		case PLAIT_DF_ARG:
		case PLAIT_DF_ENV:
			check_secrets(l, in);
			break;
		case PLAIT_DF_ENTRYPOINT:
			if (!in->json)
				add(l, R_ENTRYPOINT_SHELL, NULL, in->line,
				    "ENTRYPOINT in shell form: '%s'",
				    in->shell ? in->shell : in->rest);
			break;
		default:
			break;
		}
	}

	bool final = st->index + 1 == l->df->n_stages;
	if (final && l->df->n_stages == 1) {
		if (n_tools) {
			_cleanup_buf_ struct plait_buf mb = PLAIT_BUF_INIT;
			join_words(&mb, tools, n_tools);
			add(l, R_BUILD_TOOLS, NULL, tools_line,
			    "build tools installed in the final image of a single-stage build: %s",
			    mb.buf);
		}
		if (image) {
			_cleanup_free_ char *lower = xstrdup(image);
			for (char *p = lower; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			_cleanup_free_ char *tag = NULL;
			bool digest;
			image_ref_parts(lower, &tag, &digest);
			if (tag && strstr(tag, "devel") && strstr(lower, "cuda"))
				add(l, R_CUDA_DEVEL, NULL, st->from->line,
				    "CUDA devel base image '%s' in the final image of a "
				    "single-stage build",
				    image);
		}
	}
}

static bool user_is_root(const char *u)
{
	_cleanup_free_ char *name = xstrndup(u, strcspn(u, ":"));
	return streq(name, "root") || streq(name, "0");
}

static void check_user(struct linter *l)
{
	const struct plait_dockerfile *df = l->df;
	const struct plait_df_stage *final = &df->stages[df->n_stages - 1];
	for (const struct plait_df_stage *st = final; st; st = parent_stage(df, st)) {
		for (size_t i = st->n_instrs; i-- > 0;) {
			const struct plait_df_instr *in = &st->instrs[i];
			if (in->kind != PLAIT_DF_USER || !in->n_args)
				continue;
			if (user_is_root(in->args[0]))
				add(l, R_ROOT_USER, NULL, in->line, "the final stage runs as '%s'",
				    in->args[0]);
			return;
		}
	}
	add(l, R_ROOT_USER, NULL, final->from->line,
	    "no USER in the final stage: the container runs as root");
}

/* ------------------------------------------------------------ context */

static void format_mib(uint64_t n, char out[32])
{
	if (n >= (1ULL << 30))
		snprintf(out, 32, "%.1f GiB", (double)n / (double)(1ULL << 30));
	else
		snprintf(out, 32, "%.1f MiB", (double)n / (double)(1ULL << 20));
}

static int check_context(struct linter *l, const struct plait_lint_opts *o, const char *dockerfile,
			 struct plait_error **err)
{
	_cleanup_context_ struct plait_context *ctx = NULL;
	int r = plait_context_open(o->context_dir, dockerfile, &ctx, err);
	if (r < 0)
		return r;
	struct plait_context_list list = PLAIT_CONTEXT_LIST_INIT;
	r = plait_context_walk(ctx, &list, err);
	if (r < 0) {
		plait_context_list_release(&list);
		return r;
	}
	uint64_t limit = o->large_file_bytes ? o->large_file_bytes : DEFAULT_LARGE_FILE;
	bool git_reported = false;
	for (size_t i = 0; i < list.n_entries; i++) {
		const struct plait_context_entry *e = &list.entries[i];
		if (!git_reported && (streq(e->path, ".git") || startswith(e->path, ".git/"))) {
			_cleanup_free_ char *f = plait_path_join(o->context_dir, ".git");
			add(l, R_GIT_DIR, f, 0,
			    "'.git' is in the build context: .dockerignore does not exclude it");
			git_reported = true;
		}
		if (S_ISREG(e->mode) && e->size >= 0 && (uint64_t)e->size >= limit) {
			char sz[32];
			format_mib((uint64_t)e->size, sz);
			_cleanup_free_ char *f = plait_path_join(o->context_dir, e->path);
			add(l, R_LARGE_FILE, f, 0, "'%s' is %s and not excluded by .dockerignore",
			    e->path, sz);
		}
	}
	plait_context_list_release(&list);
	return 0;
}

/* ------------------------------------------------------------ # check= and plait-lint ignore= */

/* BuildKit's build check names (its docs' list) and the plait rule each one
 * is, where one is: `# check=skip=` takes either spelling. */
static const struct {
	const char *buildkit, *plait;
} buildkit_checks[] = {
	{ "SecretsUsedInArgOrEnv", "PL018" }, { "JSONArgsRecommended", "PL020" },
	{ "StageNameCasing", NULL },	      { "FromAsCasing", NULL },
	{ "NoEmptyContinuation", NULL },      { "ConsistentInstructionCasing", NULL },
	{ "DuplicateStageName", NULL },	      { "ReservedStageName", NULL },
	{ "MaintainerDeprecated", NULL },     { "UndefinedArgInFrom", NULL },
	{ "WorkdirRelativePath", NULL },      { "UndefinedVar", NULL },
	{ "MultipleInstructionsDisallowed", NULL }, { "LegacyKeyValueFormat", NULL },
	{ "InvalidBaseImagePlatform", NULL }, { "RedundantTargetPlatform", NULL },
	{ "InvalidDefaultArgInFrom", NULL },  { "FromPlatformFlagConstDisallowed", NULL },
	{ "CopyIgnoredFile", NULL },	      { "InvalidDefinitionDescription", NULL },
	{ "ExposeProtoCasing", NULL },	      { "ExposeInvalidFormat", NULL },
};

/* The plait rule a name means (NULL for a BuildKit check plait lacks);
 * -1 when the name is nothing known. */
static int rule_of(const char *name, const struct plait_lint_rule **out)
{
	*out = plait_lint_rule_lookup(name);
	if (*out)
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(buildkit_checks); i++)
		if (strcasecmp(buildkit_checks[i].buildkit, name) == 0) {
			*out = buildkit_checks[i].plait ? plait_lint_rule_lookup(buildkit_checks[i].plait) : NULL;
			return 0;
		}
	return -1;
}

struct suppress {
	const struct plait_lint_rule **rules; /* skip=: these everywhere */
	size_t n_rules;
	bool all;
	struct {
		int line; /* the instruction's */
		const struct plait_lint_rule *rule;
	} *at;
	size_t n_at;
};

static int unknown_rule(const char *file, int line, const char *what, const char *name, struct plait_error **err)
{
	return plait_error_set(err, PLAIT_E_INVALID,
			       "%s:%d: %s: unknown rule '%s': give plait's IDs (PL001...) or names, or BuildKit's "
			       "check names (see 'plait lint --help')",
			       file, line, what, name);
}

/* `# check=` is a parser directive: among the first lines. */
static int directive_line(const char *data, size_t len)
{
	int line = 1;
	for (size_t i = 0; i < len; i++) {
		size_t j = i;
		while (j < len && (data[j] == ' ' || data[j] == '\t'))
			j++;
		if (j < len && data[j] == '#') {
			j++;
			while (j < len && (data[j] == ' ' || data[j] == '\t'))
				j++;
			if (len - j >= 6 && strncasecmp(data + j, "check", 5) == 0)
				return line;
		}
		while (i < len && data[i] != '\n')
			i++;
		line++;
	}
	return 1;
}

static int parse_check(const char *file, const char *data, size_t len, const char *check, struct suppress *s,
		       bool *error_on_warning, struct plait_error **err)
{
	int line = directive_line(data, len);
	_cleanup_free_ char *copy = xstrdup(check);
	char *save = NULL;
	for (char *part = strtok_r(copy, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
		while (*part == ' ')
			part++;
		char *eq = strchr(part, '=');
		if (!*part)
			continue;
		if (!eq)
			return plait_error_set(err, PLAIT_E_INVALID, "%s:%d: # check=: '%s' has no value: use skip=RULE,... or error=true",
					       file, line, part);
		*eq = '\0';
		const char *v = eq + 1;
		if (strcasecmp(part, "error") == 0) {
			if (strcasecmp(v, "true") != 0 && strcasecmp(v, "false") != 0)
				return plait_error_set(err, PLAIT_E_INVALID, "%s:%d: # check=: error=%s: use true or false", file,
						       line, v);
			*error_on_warning = strcasecmp(v, "true") == 0;
		} else if (strcasecmp(part, "skip") == 0) {
			_cleanup_free_ char *names = xstrdup(v);
			char *save2 = NULL;
			for (char *n = strtok_r(names, ",", &save2); n; n = strtok_r(NULL, ",", &save2)) {
				while (*n == ' ')
					n++;
				char *e = n + strlen(n);
				while (e > n && e[-1] == ' ')
					*--e = '\0';
				const struct plait_lint_rule *r = NULL;
				if (strcasecmp(n, "all") == 0) {
					s->all = true;
					continue;
				}
				if (rule_of(n, &r) < 0)
					return unknown_rule(file, line, "# check=skip", n, err);
				if (r) {
					s->rules = xrealloc(s->rules, (s->n_rules + 1) * sizeof(*s->rules));
					s->rules[s->n_rules++] = r;
				}
			}
		} else {
			return plait_error_set(err, PLAIT_E_INVALID, "%s:%d: # check=: unknown key '%s': use skip= and error=",
					       file, line, part);
		}
	}
	return 0;
}

static bool blank_or_comment(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
		i++;
	return i == n || p[i] == '#';
}

/* Every `# plait-lint ignore=...` comment: its rules, for the first line
 * after it that is neither blank nor a comment (the instruction it sits on). */
static int parse_ignores(const char *file, const char *data, size_t len, struct suppress *s, struct plait_error **err)
{
	static const char key[] = "plait-lint";
	struct pending {
		int line;
		char *list;
	} *pend = NULL;
	size_t n_pend = 0;
	int r = 0, line = 1;
	for (size_t i = 0; i < len && r >= 0; line++) {
		size_t e = i;
		while (e < len && data[e] != '\n')
			e++;
		const char *p = data + i;
		size_t n = e - i;
		size_t k = 0;
		while (k < n && (p[k] == ' ' || p[k] == '\t'))
			k++;
		if (k < n && p[k] == '#') {
			k++;
			while (k < n && (p[k] == ' ' || p[k] == '\t'))
				k++;
			if (n - k > strlen(key) && strncmp(p + k, key, strlen(key)) == 0 &&
			    (p[k + strlen(key)] == ' ' || p[k + strlen(key)] == '\t')) {
				k += strlen(key);
				while (k < n && (p[k] == ' ' || p[k] == '\t'))
					k++;
				if (n - k < 7 || strncmp(p + k, "ignore=", 7) != 0) {
					r = plait_error_set(err, PLAIT_E_INVALID,
							    "%s:%d: plait-lint comment: use '# plait-lint ignore=PL0NN[,PL0NN...]'",
							    file, line);
					break;
				}
				size_t end = n;
				while (end > k && (p[end - 1] == ' ' || p[end - 1] == '\t' || p[end - 1] == '\r'))
					end--;
				pend = xrealloc(pend, (n_pend + 1) * sizeof(*pend));
				pend[n_pend++] = (struct pending){ line, xstrndup(p + k + 7, end - k - 7) };
			}
		} else if (!blank_or_comment(p, n)) {
			for (size_t q = 0; q < n_pend && r >= 0; q++) {
				char *save = NULL;
				for (char *id = strtok_r(pend[q].list, ",", &save); id && r >= 0; id = strtok_r(NULL, ",", &save)) {
					const struct plait_lint_rule *rule = plait_lint_rule_lookup(id);
					if (!rule) {
						r = unknown_rule(file, pend[q].line, "plait-lint ignore", id, err);
						break;
					}
					s->at = xrealloc(s->at, (s->n_at + 1) * sizeof(*s->at));
					s->at[s->n_at].line = line;
					s->at[s->n_at++].rule = rule;
				}
			}
			for (size_t q = 0; q < n_pend; q++)
				free(pend[q].list);
			n_pend = 0;
		}
		i = e + 1;
	}
	for (size_t q = 0; q < n_pend; q++) {
		if (r >= 0)
			r = plait_error_set(err, PLAIT_E_INVALID, "%s:%d: plait-lint ignore= with no instruction after it",
					    file, pend[q].line);
		free(pend[q].list);
	}
	free(pend);
	return r;
}

static bool suppressed(const struct suppress *s, const struct plait_lint_finding *f)
{
	if (s->all)
		return true;
	for (size_t i = 0; i < s->n_rules; i++)
		if (s->rules[i] == f->rule)
			return true;
	for (size_t i = 0; i < s->n_at; i++)
		if (s->at[i].rule == f->rule && s->at[i].line == f->line)
			return true;
	return false;
}

static void drop_suppressed(struct plait_lint_result *out, const struct suppress *s)
{
	size_t k = 0;
	for (size_t i = 0; i < out->n; i++) {
		if (suppressed(s, &out->findings[i])) {
			free(out->findings[i].file);
			free(out->findings[i].message);
			continue;
		}
		out->findings[k++] = out->findings[i];
	}
	out->n = k;
}

/* ------------------------------------------------------------ entry */

int plait_lint_run(const struct plait_lint_opts *o, struct plait_lint_result *out,
		   struct plait_error **err)
{
	*out = (struct plait_lint_result){0};
	if (!o->dockerfile && !o->context_dir)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "lint: no Dockerfile and no context given");
	_cleanup_free_ char *path =
	    o->dockerfile ? xstrdup(o->dockerfile) : plait_path_join(o->context_dir, "Dockerfile");
	_cleanup_buf_ struct plait_buf data = PLAIT_BUF_INIT;
	int r = plait_buf_read_file(&data, path, MAX_DOCKERFILE);
	if (r < 0) {
		if (r == -EFBIG)
			return plait_error_set(err, PLAIT_E_INVALID,
					       "read Dockerfile '%s': larger than %u MiB", path,
					       MAX_DOCKERFILE >> 20);
		return plait_error_set_errno(err, r == -ENOENT ? PLAIT_E_NOT_FOUND : PLAIT_E_IO, r,
					     "read Dockerfile '%s'", path);
	}
	struct plait_dockerfile df = {0};
	r = plait_dockerfile_parse(data.buf, data.len, path, &df, err);
	if (r < 0)
		return r;

	struct suppress sup = {0};
	bool error_on_warning = false;
	if (df.check)
		r = parse_check(path, data.buf, data.len, df.check, &sup, &error_on_warning, err);
	if (r >= 0)
		r = parse_ignores(path, data.buf, data.len, &sup, err);
	if (r < 0) {
		free(sup.rules);
		free(sup.at);
		plait_dockerfile_release(&df);
		return r;
	}

	struct linter l = {.df = &df, .file = path};
	global_args(&l);
	for (size_t i = 0; i < df.n_global_args; i++)
		check_secrets(&l, &df.global_args[i]);
	for (size_t i = 0; i < df.n_stages; i++)
		check_stage(&l, &df.stages[i]);
	check_user(&l);
	check_train_serve(&l);
	if (o->context_dir)
		r = check_context(&l, o, path, err);
	plait_strv_free(l.global_env);
	plait_dockerfile_release(&df);
	out->findings = l.v;
	out->n = l.n;
	out->error_on_warning = error_on_warning;
	drop_suppressed(out, &sup);
	free(sup.rules);
	free(sup.at);
	if (r < 0) {
		plait_lint_result_release(out);
		return r;
	}
	if (out->n)
		qsort(out->findings, out->n, sizeof(*out->findings), finding_cmp);
	return 0;
}

void plait_lint_result_release(struct plait_lint_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->findings[i].file);
		free(r->findings[i].message);
	}
	free(r->findings);
	*r = (struct plait_lint_result){0};
}
