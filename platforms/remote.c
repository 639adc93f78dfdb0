/* platforms/remote.c - named builders over SSH: builders.json, probing a
 * node, and assigning jobs to nodes; see remote.h. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "remote.h"
#include "binfmt.h"
#include "core/buf.h"
#include "core/frame.h"
#include "core/fs.h"
#include "core/platform.h"
#include "core/shell_words.h"
#include "core/strv.h"
#include "core/util.h"
#include "plait-config.h"
#include "core/banned.h"

extern char **environ;

#define BUILDERS_MAX (4 * 1024 * 1024)
#define PROBE_OUTPUT_MAX (1024 * 1024)

void plait_node_release(struct plait_node *n)
{
	if (!n)
		return;
	free(n->url);
	plait_strv_free(n->native);
	plait_strv_free(n->qemu);
	free(n->plait_version);
	free(n->cache_dir);
	free(n->error);
	memset(n, 0, sizeof(*n));
}

void plait_remote_builder_release(struct plait_remote_builder *b)
{
	if (!b)
		return;
	free(b->name);
	free(b->identity);
	free(b->remote_plait);
	for (size_t i = 0; i < b->n_nodes; i++)
		plait_node_release(&b->nodes[i]);
	free(b->nodes);
	memset(b, 0, sizeof(*b));
}

void plait_builders_conf_release(struct plait_builders_conf *c)
{
	if (!c)
		return;
	free(c->current);
	for (size_t i = 0; i < c->n_builders; i++)
		plait_remote_builder_release(&c->builders[i]);
	free(c->builders);
	memset(c, 0, sizeof(*c));
}

struct plait_remote_builder *plait_builders_find(struct plait_builders_conf *c, const char *name)
{
	for (size_t i = 0; i < c->n_builders; i++)
		if (streq(c->builders[i].name, name))
			return &c->builders[i];
	return NULL;
}

int plait_node_url_parse(const char *url, char **user, char **host, int *port, struct plait_error **err)
{
	*user = *host = NULL;
	*port = 0;
	if (!startswith(url, "ssh://"))
		return plait_error_set(err, PLAIT_E_USAGE, "node '%s': write it as ssh://[USER@]HOST[:PORT]", url);
	const char *s = url + strlen("ssh://");
	const char *at = strchr(s, '@');
	if (at) {
		if (at == s)
			return plait_error_set(err, PLAIT_E_USAGE, "node '%s': the user before '@' is empty", url);
		*user = xstrndup(s, (size_t)(at - s));
		s = at + 1;
	}
	size_t hl = strcspn(s, ":/");
	bool bad = hl == 0 || s[hl] == '/' || s[0] == '-' || (*user && (strpbrk(*user, ":/ ") || (*user)[0] == '-'));
	for (size_t i = 0; i < hl; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_'))
			bad = true;
	if (bad) {
		free(*user);
		*user = NULL;
		return plait_error_set(err, PLAIT_E_USAGE,
				       "node '%s': write it as ssh://[USER@]HOST[:PORT] (a host name or address, "
				       "no path)",
				       url);
	}
	const char *colon = s[hl] == ':' ? s + hl : NULL;
	if (colon) {
		char *end = NULL;
		errno = 0;
		long p = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || errno || p < 1 || p > 65535) {
			free(*user);
			*user = NULL;
			return plait_error_set(err, PLAIT_E_USAGE, "node '%s': the port must be a number from 1 to 65535",
					       url);
		}
		*port = (int)p;
	}
	*host = xstrndup(s, hl);
	return 0;
}

char *plait_builders_default_path(void)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	struct plait_buf b = PLAIT_BUF_INIT;
	if (x && *x)
		plait_buf_addf(&b, "%s/plait/builders.json", x);
	else
		plait_buf_addf(&b, "%s/.config/plait/builders.json", getenv("HOME") ? getenv("HOME") : "/root");
	return plait_buf_detach(&b, NULL);
}

/* ------------------------------------------------------------ builders.json */

static int strv_from_json(json_t *a, char ***out, const char *what, const char *path, struct plait_error **err)
{
	*out = NULL;
	if (!a)
		return 0;
	if (!json_is_array(a))
		return plait_error_set(err, PLAIT_E_INVALID, "%s: %s is not a list of strings", path, what);
	size_t i;
	json_t *v;
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v)) {
			plait_strv_free(*out);
			*out = NULL;
			return plait_error_set(err, PLAIT_E_INVALID, "%s: %s[%zu] is not a string", path, what, i);
		}
		plait_strv_push(out, json_string_value(v));
	}
	return 0;
}

static int opt_string(json_t *o, const char *key, char **out, const char *where, const char *path,
		      struct plait_error **err)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return plait_error_set(err, PLAIT_E_INVALID, "%s: %s.%s is not a string", path, where, key);
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int parse_node(json_t *o, struct plait_node *n, const char *where, const char *path, struct plait_error **err)
{
	memset(n, 0, sizeof(*n));
	n->cache_free_bytes = -1;
	if (!json_is_object(o))
		return plait_error_set(err, PLAIT_E_INVALID, "%s: %s is not an object", path, where);
	int r = opt_string(o, "url", &n->url, where, path, err);
	if (r >= 0 && !n->url)
		r = plait_error_set(err, PLAIT_E_INVALID, "%s: %s has no \"url\"", path, where);
	struct plait_buf w = PLAIT_BUF_INIT;
	plait_buf_addf(&w, "%s.native", where);
	if (r >= 0)
		r = strv_from_json(json_object_get(o, "native"), &n->native, w.buf, path, err);
	plait_buf_release(&w);
	plait_buf_addf(&w, "%s.qemu", where);
	if (r >= 0)
		r = strv_from_json(json_object_get(o, "qemu"), &n->qemu, w.buf, path, err);
	plait_buf_release(&w);
	if (r >= 0)
		r = opt_string(o, "plait_version", &n->plait_version, where, path, err);
	if (r >= 0)
		r = opt_string(o, "cache_dir", &n->cache_dir, where, path, err);
	json_t *p = json_object_get(o, "protocol");
	if (r >= 0 && p && !json_is_integer(p))
		r = plait_error_set(err, PLAIT_E_INVALID, "%s: %s.protocol is not a number", path, where);
	else if (p)
		n->protocol = (long)json_integer_value(p);
	json_t *f = json_object_get(o, "cache_free_bytes");
	if (r >= 0 && f && !json_is_integer(f))
		r = plait_error_set(err, PLAIT_E_INVALID, "%s: %s.cache_free_bytes is not a number", path, where);
	else if (f)
		n->cache_free_bytes = (int64_t)json_integer_value(f);
	if (r < 0)
		plait_node_release(n);
	return r;
}

int plait_builders_parse(const char *text, const char *path, struct plait_builders_conf *out,
			 struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	json_error_t je;
	json_auto_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return plait_error_set(err, PLAIT_E_INVALID,
				       "%s:%d: not valid JSON (%s): fix or remove the file (plait builder create "
				       "writes it anew)",
				       path, je.line, je.text);
	if (!json_is_object(root))
		return plait_error_set(err, PLAIT_E_INVALID, "%s: not a JSON object: fix or remove the file", path);
	json_t *ver = json_object_get(root, "version");
	if (ver && (!json_is_integer(ver) || json_integer_value(ver) != 1))
		return plait_error_set(err, PLAIT_E_INVALID,
				       "%s: \"version\" is not 1: written by another plait; use that plait or "
				       "remove the file",
				       path);
	json_t *bs = json_object_get(root, "builders");
	if (bs && !json_is_array(bs))
		return plait_error_set(err, PLAIT_E_INVALID, "%s: \"builders\" is not a list", path);
	int r = opt_string(root, "current", &out->current, "file", path, err);
	size_t i;
	json_t *bo;
	json_array_foreach(bs, i, bo)
	{
		if (r < 0)
			break;
		struct plait_buf w = PLAIT_BUF_INIT;
		plait_buf_addf(&w, "builders[%zu]", i);
		if (!json_is_object(bo)) {
			r = plait_error_set(err, PLAIT_E_INVALID, "%s: %s is not an object", path, w.buf);
			plait_buf_release(&w);
			break;
		}
		out->builders = xrealloc(out->builders, (out->n_builders + 1) * sizeof(*out->builders));
		struct plait_remote_builder *b = &out->builders[out->n_builders++];
		memset(b, 0, sizeof(*b));
		r = opt_string(bo, "name", &b->name, w.buf, path, err);
		if (r >= 0 && !b->name)
			r = plait_error_set(err, PLAIT_E_INVALID, "%s: %s has no \"name\"", path, w.buf);
		for (size_t k = 0; r >= 0 && k + 1 < out->n_builders; k++)
			if (streq(out->builders[k].name, b->name))
				r = plait_error_set(err, PLAIT_E_INVALID, "%s: builder '%s' is there twice", path,
						    b->name);
		if (r >= 0)
			r = opt_string(bo, "identity", &b->identity, w.buf, path, err);
		if (r >= 0)
			r = opt_string(bo, "remote_plait", &b->remote_plait, w.buf, path, err);
		json_t *ns = json_object_get(bo, "nodes");
		if (r >= 0 && !json_is_array(ns))
			r = plait_error_set(err, PLAIT_E_INVALID, "%s: %s.nodes is not a list", path, w.buf);
		size_t k;
		json_t *no;
		json_array_foreach(ns, k, no)
		{
			if (r < 0)
				break;
			struct plait_buf nw = PLAIT_BUF_INIT;
			plait_buf_addf(&nw, "%s.nodes[%zu]", w.buf, k);
			b->nodes = xrealloc(b->nodes, (b->n_nodes + 1) * sizeof(*b->nodes));
			r = parse_node(no, &b->nodes[b->n_nodes], nw.buf, path, err);
			if (r >= 0)
				b->n_nodes++;
			plait_buf_release(&nw);
		}
		plait_buf_release(&w);
	}
	if (r >= 0 && out->current && !plait_builders_find(out, out->current))
		r = plait_error_set(err, PLAIT_E_INVALID,
				    "%s: \"current\" names builder '%s', which is not in the file: run 'plait builder "
				    "use NAME' with one of 'plait builder ls'",
				    path, out->current);
	if (r < 0)
		plait_builders_conf_release(out);
	return r;
}

int plait_builders_load(const char *path, struct plait_builders_conf *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	struct plait_buf b = PLAIT_BUF_INIT;
	int r = plait_buf_read_file(&b, path, BUILDERS_MAX);
	if (r == -ENOENT) {
		plait_buf_release(&b);
		return 0;
	}
	if (r < 0) {
		plait_buf_release(&b);
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "cannot read %s", path);
	}
	r = plait_builders_parse(b.buf ? b.buf : "", path, out, err);
	plait_buf_release(&b);
	return r;
}

static json_t *opt_json_string(const char *s)
{
	return s ? json_string(s) : json_null();
}

json_t *plait_node_to_json(const struct plait_node *n)
{
	json_t *o = json_object();
	json_object_set_new(o, "url", json_string(n->url));
	json_object_set_new(o, "native", plait_strv_to_json(n->native));
	json_object_set_new(o, "qemu", plait_strv_to_json(n->qemu));
	json_object_set_new(o, "plait_version", opt_json_string(n->plait_version));
	json_object_set_new(o, "protocol", json_integer(n->protocol));
	json_object_set_new(o, "cache_dir", opt_json_string(n->cache_dir));
	json_object_set_new(o, "cache_free_bytes", json_integer(n->cache_free_bytes));
	return o;
}

json_t *plait_builders_to_json(const struct plait_builders_conf *c)
{
	json_t *root = json_object(), *bs = json_array();
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "current", opt_json_string(c->current));
	for (size_t i = 0; i < c->n_builders; i++) {
		const struct plait_remote_builder *b = &c->builders[i];
		json_t *o = json_object(), *ns = json_array();
		json_object_set_new(o, "name", json_string(b->name));
		json_object_set_new(o, "identity", opt_json_string(b->identity));
		json_object_set_new(o, "remote_plait", opt_json_string(b->remote_plait));
		for (size_t k = 0; k < b->n_nodes; k++)
			json_array_append_new(ns, plait_node_to_json(&b->nodes[k]));
		json_object_set_new(o, "nodes", ns);
		json_array_append_new(bs, o);
	}
	json_object_set_new(root, "builders", bs);
	return root;
}

int plait_builders_save(const char *path, const struct plait_builders_conf *c, struct plait_error **err)
{
	_cleanup_free_ char *dir = plait_path_dir(path);
	int r = plait_mkdir_p(dir, 0700, NULL);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "cannot create %s (for %s)", dir, path);
	json_auto_t *j = plait_builders_to_json(c);
	_cleanup_free_ char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	struct plait_buf tmp = PLAIT_BUF_INIT;
	plait_buf_addf(&tmp, "%s.tmp-XXXXXX", path);
	int fd = mkostemp(tmp.buf, O_CLOEXEC);
	if (fd < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot write %s", path);
		plait_buf_release(&tmp);
		return r;
	}
	int e = 0;
	if (fchmod(fd, 0600) < 0 || plait_write_all(fd, text, strlen(text)) < 0 || plait_write_all(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0)
		e = errno ? errno : EIO;
	if (close(fd) < 0 && !e)
		e = errno;
	if (!e && rename(tmp.buf, path) < 0)
		e = errno;
	if (e) {
		unlink(tmp.buf);
		r = plait_error_set_errno(err, PLAIT_E_IO, e, "cannot write %s", path);
	}
	plait_buf_release(&tmp);
	return r < 0 ? r : 0;
}

/* ------------------------------------------------------------ probing */

static bool arch_same(const char *platform_a, const char *arch_b)
{
	const struct plait_binfmt_arch *a = plait_binfmt_arch_lookup(platform_a);
	const struct plait_binfmt_arch *b = plait_binfmt_arch_lookup(arch_b);
	if (a && b)
		return a == b;
	return streq(platform_a, arch_b);
}

int plait_node_facts(struct plait_node *n, const char *version_json, const char *qemu_json,
		     struct plait_error **err)
{
	json_error_t je;
	json_auto_t *v = json_loads(version_json, 0, &je);
	if (!json_is_object(v) || !json_is_string(json_object_get(v, "version")) ||
	    !json_is_integer(json_object_get(v, "protocol")))
		return plait_error_set(err, PLAIT_E_INVALID,
				       "node %s: 'plait version --format json' printed no version and protocol "
				       "(too old a plait on the node?): install this plait's version there, or "
				       "point --remote-plait at one",
				       n->url);
	free(n->plait_version);
	n->plait_version = xstrdup(json_string_value(json_object_get(v, "version")));
	n->protocol = (long)json_integer_value(json_object_get(v, "protocol"));
	json_t *cache = json_object_get(v, "cache");
	free(n->cache_dir);
	n->cache_dir = NULL;
	n->cache_free_bytes = -1;
	if (json_is_object(cache)) {
		json_t *d = json_object_get(cache, "dir"), *f = json_object_get(cache, "free_bytes");
		n->cache_dir = json_is_string(d) ? xstrdup(json_string_value(d)) : NULL;
		n->cache_free_bytes = json_is_integer(f) ? (int64_t)json_integer_value(f) : -1;
	}
	if (n->protocol != PLAIT_REMOTE_PROTOCOL)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "node %s runs plait %s, which speaks protocol %ld; this plait (%s) speaks "
				       "protocol %d: install plait %s on the node, or point --remote-plait at a "
				       "plait of that version",
				       n->url, n->plait_version, n->protocol, PLAIT_VERSION,
				       PLAIT_REMOTE_PROTOCOL, PLAIT_VERSION);
	json_auto_t *q = json_loads(qemu_json, 0, &je);
	json_t *arches = json_object_get(q, "arches");
	if (!json_is_array(arches))
		return plait_error_set(err, PLAIT_E_INVALID,
				       "node %s: 'plait qemu status --format json' printed no \"arches\" list", n->url);
	plait_strv_free(n->native);
	plait_strv_free(n->qemu);
	n->native = n->qemu = NULL;
	/* Rootless on the node: only handlers with F serve its builds. */
	json_t *usable = json_object_get(json_object_get(q, "user"), "usable");
	size_t i;
	json_t *e;
	json_array_foreach(arches, i, e)
	{
		const char *arch = json_string_value(json_object_get(e, "arch"));
		if (!arch)
			continue;
		struct plait_buf p = PLAIT_BUF_INIT;
		plait_buf_addf(&p, "linux/%s", arch);
		if (json_is_true(json_object_get(e, "native"))) {
			plait_strv_push(&n->native, p.buf);
		} else if (json_is_true(json_object_get(e, "registered")) && json_is_true(json_object_get(e, "enabled")) &&
			   json_is_true(json_object_get(e, "fix_binary")) &&
			   json_is_true(json_object_get(e, "preserve_argv0"))) {
			bool ok = !usable;
			size_t k;
			json_t *u;
			json_array_foreach(usable, k, u)
			if (json_is_string(u) && streq(json_string_value(u), arch))
				ok = true;
			if (ok)
				plait_strv_push(&n->qemu, p.buf);
		}
		plait_buf_release(&p);
	}
	return 0;
}

/* 'word' quoted for the node's POSIX shell. */
static void shell_quote(struct plait_buf *b, const char *word)
{
	plait_buf_adds(b, "'");
	for (const char *s = word; *s; s++) {
		if (*s == '\'')
			plait_buf_adds(b, "'\\''");
		else
			plait_buf_add(b, s, 1);
	}
	plait_buf_adds(b, "'");
}

/* The ssh command line for node n running remote_cmd. */
static char **ssh_argv(const struct plait_remote_builder *b, const char *user, const char *host, int port,
		       const char *remote_cmd)
{
	char **argv = NULL;
	const char *cmd = getenv("PLAIT_SSH_COMMAND");
	if (cmd && *cmd) {
		struct plait_shell_script sc = { 0 };
		plait_shell_split(cmd, &sc);
		for (size_t i = 0; i < sc.n; i++)
			for (char **w = sc.cmds[i].words; w && *w; w++)
				plait_strv_push(&argv, *w);
		plait_shell_script_release(&sc);
	}
	if (!argv)
		plait_strv_push(&argv, "ssh");
	plait_strv_push(&argv, "-o");
	plait_strv_push(&argv, "BatchMode=yes");
	plait_strv_push(&argv, "-o");
	plait_strv_push(&argv, "ConnectTimeout=15");
	if (port) {
		char ps[16];
		snprintf(ps, sizeof(ps), "%d", port);
		plait_strv_push(&argv, "-p");
		plait_strv_push(&argv, ps);
	}
	if (b->identity) {
		plait_strv_push(&argv, "-i");
		plait_strv_push(&argv, b->identity);
		plait_strv_push(&argv, "-o");
		plait_strv_push(&argv, "IdentitiesOnly=yes");
	}
	if (user) {
		plait_strv_push(&argv, "-l");
		plait_strv_push(&argv, user);
	}
	plait_strv_push(&argv, "--");
	plait_strv_push(&argv, host);
	plait_strv_push(&argv, remote_cmd);
	return argv;
}

/* Run argv, collecting stdout and stderr; *status its exit status. */
static int run_capture(char **argv, int stdin_fd, struct plait_buf *out, struct plait_buf *errout, int *status,
		       struct plait_error **err)
{
	int o[2], e[2];
	if (pipe2(o, O_CLOEXEC) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot run %s", argv[0]);
	if (pipe2(e, O_CLOEXEC) < 0) {
		close(o[0]);
		close(o[1]);
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot run %s", argv[0]);
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (stdin_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, stdin_fd, STDIN_FILENO);
	else
		posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, o[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, e[1], STDERR_FILENO);
	pid_t pid;
	int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(o[1]);
	close(e[1]);
	if (r != 0) {
		close(o[0]);
		close(e[0]);
		return plait_error_set_errno(err, PLAIT_E_NOT_FOUND, r,
					     "cannot run '%s' (the ssh client; apt-get install openssh-client, or "
					     "set PLAIT_SSH_COMMAND)",
					     argv[0]);
	}
	plait_buf_drain_two(o[0], out, e[0], errout, PROBE_OUTPUT_MAX, false);
	close(o[0]);
	close(e[0]);
	int ws;
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot wait for %s", argv[0]);
	*status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	return 0;
}

/* ssh's message, one line: its last non-empty lines joined. */
static char *ssh_message(const struct plait_buf *e)
{
	struct plait_buf m = PLAIT_BUF_INIT;
	_cleanup_free_ char *copy = xstrdup(e->buf ? e->buf : "");
	for (char *save = NULL, *l = strtok_r(copy, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save)) {
		if (!*l || startswith(l, "Warning: Permanently added"))
			continue;
		plait_buf_addf(&m, "%s%s", m.len ? "; " : "", l);
	}
	if (!m.len)
		plait_buf_adds(&m, "no message");
	return plait_buf_detach(&m, NULL);
}

char **plait_node_ssh_argv(const struct plait_remote_builder *b, const struct plait_node *n, const char *args,
			   struct plait_error **err)
{
	char *user = NULL, *host = NULL;
	int port = 0;
	if (plait_node_url_parse(n->url, &user, &host, &port, err) < 0)
		return NULL;
	struct plait_buf cmd = PLAIT_BUF_INIT;
	shell_quote(&cmd, b->remote_plait ? b->remote_plait : "plait");
	plait_buf_addf(&cmd, " %s", args);
	char **argv = ssh_argv(b, user, host, port, cmd.buf);
	plait_buf_release(&cmd);
	free(user);
	free(host);
	return argv;
}

char *plait_node_ssh_message(const char *stderr_text)
{
	struct plait_buf e = PLAIT_BUF_INIT;
	plait_buf_adds(&e, stderr_text ? stderr_text : "");
	char *m = ssh_message(&e);
	plait_buf_release(&e);
	return m;
}

/* 'PLAIT args' on the node, and with then, '&& PLAIT then' in the same
 * session (one ssh connection for both). */
static int run_on_node(const struct plait_remote_builder *b, const struct plait_node *n, const char *args,
		       const char *then, int stdin_fd, struct plait_buf *out, struct plait_error **err)
{
	char *user = NULL, *host = NULL;
	int port = 0;
	int r = plait_node_url_parse(n->url, &user, &host, &port, err);
	if (r < 0)
		return r;
	struct plait_buf cmd = PLAIT_BUF_INIT;
	shell_quote(&cmd, b->remote_plait ? b->remote_plait : "plait");
	plait_buf_addf(&cmd, " %s", args);
	if (then) {
		plait_buf_adds(&cmd, " && ");
		shell_quote(&cmd, b->remote_plait ? b->remote_plait : "plait");
		plait_buf_addf(&cmd, " %s", then);
	}
	char **argv = ssh_argv(b, user, host, port, cmd.buf);
	struct plait_buf errout = PLAIT_BUF_INIT;
	int status = 0;
	char portbuf[16];
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	r = run_capture(argv, stdin_fd, out, &errout, &status, err);
	if (r >= 0 && status != 0) {
		_cleanup_free_ char *msg = ssh_message(&errout);
		if (status == 255)
			r = plait_error_set(err, PLAIT_E_NETWORK,
					    "node %s: ssh could not connect: %s (check the host, the key%s, "
					    "~/.ssh/config and known_hosts: 'ssh%s%s %s' must log in without a prompt)",
					    n->url, msg, b->identity ? " given with --identity" : "", port ? " -p " : "",
					    port ? portbuf : "", host);
		else if (status == 127)
			r = plait_error_set(err, PLAIT_E_NOT_FOUND,
					    "node %s: '%s' is not found on the node (%s): install plait there, or "
					    "give its path with --remote-plait",
					    n->url, b->remote_plait ? b->remote_plait : "plait", msg);
		else
			r = plait_error_set(err, PLAIT_E_GENERIC, "node %s: '%s' failed (exit %d): %s", n->url, cmd.buf,
					    status, msg);
	}
	plait_strv_free(argv);
	plait_buf_release(&cmd);
	plait_buf_release(&errout);
	free(user);
	free(host);
	return r < 0 ? r : 0;
}

/* A file (memfd) holding bytes, at offset 0. */
static int bytes_fd(const char *name, const void *bytes, size_t len, struct plait_error **err)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot make a memory file");
	if (plait_write_all(fd, bytes, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot write a memory file");
	}
	return fd;
}

json_t *plait_node_hello(void)
{
	return json_pack("{s:s, s:i, s:s}", "type", "hello", "protocol", PLAIT_REMOTE_PROTOCOL, "version",
			 PLAIT_VERSION);
}

/* 'plait serve' on the node answers a hello with its own over the frame
 * protocol (core/frame.h): the channel carries frames both ways. */
static int handshake(const struct plait_remote_builder *b, const struct plait_node *n, struct plait_error **err)
{
	json_auto_t *hello = plait_node_hello();
	json_auto_t *bye = json_pack("{s:s}", "type", "bye");
	int in = memfd_create("plait-hello", MFD_CLOEXEC);
	if (in < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot make a memory file");
	int r = plait_frame_write_control(in, hello, err);
	if (r >= 0)
		r = plait_frame_write_control(in, bye, err);
	if (r >= 0 && lseek(in, 0, SEEK_SET) < 0)
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot rewind a memory file");
	struct plait_buf out = PLAIT_BUF_INIT;
	char args[48];
	snprintf(args, sizeof(args), "serve --protocol %d", PLAIT_REMOTE_PROTOCOL);
	if (r >= 0)
		r = run_on_node(b, n, args, NULL, in, &out, err);
	close(in);
	int fd = -1;
	if (r >= 0)
		r = fd = bytes_fd("plait-reply", out.buf ? out.buf : "", out.len, err);
	if (r >= 0) {
		struct plait_frame f;
		size_t k = 0;
		struct plait_error *e = NULL;
		int got = plait_frame_read(fd, &f, &k, &e);
		const char *type = got > 0 && f.control ? json_string_value(json_object_get(f.control, "type")) : NULL;
		if (got <= 0 || !type || !streq(type, "hello"))
			r = plait_error_set(err, PLAIT_E_INVALID,
					    "node %s: 'plait serve' did not answer the hello: %s", n->url,
					    got < 0 ? e->msg
					    : type && streq(type, "error")
						? json_string_value(json_object_get(f.control, "message"))
						: "no frame came back");
		plait_error_free(e);
		if (got > 0)
			plait_frame_release(&f);
	}
	if (fd >= 0)
		close(fd);
	plait_buf_release(&out);
	return r < 0 ? r : 0;
}

int plait_node_probe(const struct plait_remote_builder *b, struct plait_node *n, struct plait_error **err)
{
	struct plait_buf v = PLAIT_BUF_INIT, q = PLAIT_BUF_INIT;
	struct plait_error *e = NULL;
	/* both reports in one session: the version's JSON document, then qemu's */
	int r = run_on_node(b, n, "version --format json", "qemu status --format json", -1, &v, &e);
	if (r >= 0) {
		json_error_t je;
		json_t *first = json_loadb(v.buf ? v.buf : "", v.len, JSON_DISABLE_EOF_CHECK, &je);
		if (first && je.position <= (int)v.len) {
			plait_buf_add(&q, v.buf + je.position, v.len - (size_t)je.position);
			plait_buf_setlen(&v, (size_t)je.position);
		}
		json_decref(first); /* not JSON: plait_node_facts says so about the whole */
	}
	if (r >= 0)
		r = plait_node_facts(n, v.buf ? v.buf : "", q.buf ? q.buf : "", &e);
	if (r >= 0)
		r = handshake(b, n, &e);
	free(n->error);
	n->error = r < 0 ? xstrdup(e ? e->msg : "probe failed") : NULL;
	if (r < 0 && err)
		*err = e;
	else
		plait_error_free(e);
	plait_buf_release(&v);
	plait_buf_release(&q);
	return r;
}

struct probe_arg {
	const struct plait_remote_builder *b;
	struct plait_node *n;
};

static void *probe_main(void *arg)
{
	struct probe_arg *a = arg;
	(void)plait_node_probe(a->b, a->n, NULL); /* the error stays in the node */
	return NULL;
}

void plait_nodes_probe_all(struct plait_remote_builder *b)
{
	struct probe_arg *args = xcalloc(b->n_nodes + 1, sizeof(*args));
	pthread_t *tids = xcalloc(b->n_nodes + 1, sizeof(*tids));
	bool *started = xcalloc(b->n_nodes + 1, sizeof(*started));
	for (size_t i = 0; i < b->n_nodes; i++) {
		args[i] = (struct probe_arg){ b, &b->nodes[i] };
		started[i] = pthread_create(&tids[i], NULL, probe_main, &args[i]) == 0;
		if (!started[i])
			probe_main(&args[i]);
	}
	for (size_t i = 0; i < b->n_nodes; i++)
		if (started[i])
			pthread_join(tids[i], NULL);
	free(started);
	free(tids);
	free(args);
}

/* ------------------------------------------------------------ assignment */

const struct plait_node *plait_remote_node_serving(const struct plait_remote_builder *b, const char *arch, bool native,
						   const char *const *skip)
{
	for (size_t i = 0; i < b->n_nodes; i++) {
		const struct plait_node *n = &b->nodes[i];
		if (n->error)
			continue; /* unreachable (with --fallback local) */
		bool skipped = false;
		for (const char *const *k = skip; k && *k && !skipped; k++)
			skipped = streq(*k, n->url);
		if (skipped)
			continue;
		for (char **p = native ? n->native : n->qemu; p && *p; p++)
			if (arch_same(startswith(*p, "linux/") ? *p + 6 : *p, arch))
				return n;
	}
	return NULL;
}

static void remote_builder(struct plait_builder *out, const struct plait_node *n, bool emulated, const char *why)
{
	memset(out, 0, sizeof(*out));
	out->name = xstrdup(emulated ? "node-qemu" : "node");
	out->node = xstrdup(n->url);
	out->reason = xstrdup(why);
	out->emulated = emulated;
}

static int choose_remote(void *ctx, const struct plait_platform *p, struct plait_builder *out,
			 struct plait_error **err)
{
	const struct plait_remote_chooser *rc = ctx;
	const struct plait_remote_builder *b = rc->b;
	memset(out, 0, sizeof(*out));
	struct plait_buf down = PLAIT_BUF_INIT; /* the nodes left out, for the reason */
	for (size_t i = 0; i < b->n_nodes; i++) {
		if (!b->nodes[i].error)
			continue;
		if (!rc->fallback_local) {
			plait_buf_release(&down);
			return plait_error_set(err, PLAIT_E_NETWORK,
					       "builder '%s': %s (or pass --fallback local to build its platforms here)",
					       b->name, b->nodes[i].error);
		}
		plait_buf_addf(&down, "%s%s", down.len ? ", " : "", b->nodes[i].url);
	}
	_cleanup_free_ char *ps = plait_platform_format(p);
	if (!p->os || !streq(p->os, "linux")) {
		plait_buf_release(&down);
		return plait_error_set(err, PLAIT_E_USAGE,
				       "no builder for %s: RUN steps need a Linux kernel; build linux/* platforms", ps);
	}
	const struct plait_node *n = plait_remote_node_serving(b, p->architecture, true, NULL);
	if (n) {
		struct plait_buf why = PLAIT_BUF_INIT;
		plait_buf_addf(&why, "node runs %s natively", p->architecture);
		remote_builder(out, n, false, why.buf);
		plait_buf_release(&why);
		plait_buf_release(&down);
		return 0;
	}
	struct plait_error *lerr = NULL;
	if (rc->local->choose(rc->local->ctx, p, out, &lerr) >= 0) {
		free(out->reason);
		struct plait_buf why = PLAIT_BUF_INIT;
		plait_buf_addf(&why, "no %snode runs it natively; this host%s does", down.len ? "reachable " : "",
			       out->emulated ? "'s QEMU" : "");
		if (down.len)
			plait_buf_addf(&why, " (--fallback local: %s unreachable)", down.buf);
		out->reason = plait_buf_detach(&why, NULL);
		plait_error_free(lerr);
		plait_buf_release(&down);
		return 0;
	}
	n = plait_remote_node_serving(b, p->architecture, false, NULL);
	plait_buf_release(&down);
	if (n) {
		plait_error_free(lerr);
		remote_builder(out, n, true, "no node runs it natively, nor does this host; the node's QEMU does");
		return 0;
	}
	int r = plait_error_set(err, PLAIT_E_NOT_FOUND, "%s; no node of builder '%s' runs %s either (natively or "
							"through its QEMU)",
				lerr ? lerr->msg : "no builder", b->name, p->architecture);
	plait_error_free(lerr);
	return r;
}

void plait_remote_builders(struct plait_remote_chooser *ctx, struct plait_builder_chooser *out)
{
	*out = (struct plait_builder_chooser){ .ctx = ctx, .choose = choose_remote };
}
