/* registry/credentials.c - docker config.json credentials, credential
 * helpers (auth.h), and the registry client's use of them: the stored
 * credentials looked up once per client, Basic headers (client.h).
 *
 * config.json is read and rewritten as a jansson tree so members plait does
 * not know survive a store or erase byte for byte in meaning. Credential
 * helpers speak the docker-credential-helpers protocol: one action as argv[1],
 * the request on stdin, JSON or an error text on stdout. */
#include "auth.h"
#include "client.h"

#include "core/buf.h"
#include "core/fs.h"
#include "core/ref.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/banned.h"

extern char **environ;

#define CONFIG_FILE "config.json"
#define CONFIG_MAX (16u * 1024 * 1024)
#define HELPER_OUTPUT_MAX (1u * 1024 * 1024)
/* The key docker uses for Docker Hub in auths and towards helpers. */
#define HUB_SERVER plait_docker_hub_credentials_key()
#define HUB_HOST plait_docker_hub_index_host()
/* Username a helper returns when Secret is an identity token. */
#define TOKEN_USERNAME "<token>"

void plait_credentials_release(struct plait_credentials *c)
{
	if (!c)
		return;
	free(c->username);
	plait_free_secret(c->password);
	plait_free_secret(c->identity_token);
	memset(c, 0, sizeof(*c));
}

/* free() for strings that held a secret. */
static void free_secretp(char **s)
{
	plait_free_secret(*s);
}
#define _cleanup_secret_ _cleanup_(free_secretp)

char *plait_auth_config_dir(const char *config_dir)
{
	if (config_dir && *config_dir)
		return xstrdup(config_dir);
	const char *env = getenv("DOCKER_CONFIG");
	if (env && *env)
		return xstrdup(env);
	const char *home = getenv("HOME");
	struct plait_buf b = PLAIT_BUF_INIT;
	if (home && *home) {
		plait_buf_addf(&b, "%s/.docker", home);
		return plait_buf_detach(&b, NULL);
	}
	/* No $HOME (cron, systemd units): ask the password database. */
	char pwbuf[16384];
	struct passwd pw, *res = NULL;
	if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res && res->pw_dir)
		plait_buf_addf(&b, "%s/.docker", res->pw_dir);
	else
		plait_buf_adds(&b, "/.docker");
	return plait_buf_detach(&b, NULL);
}

/* ---- host names ---------------------------------------------------------- */

/* "https://Host:5000/v1/" -> "host:5000"; every Docker Hub name -> "index.docker.io". */
static char *host_key(const char *s)
{
	if (strncasecmp(s, "https://", 8) == 0)
		s += 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		s += 7;
	char *h = xstrndup(s, strcspn(s, "/"));
	for (char *p = h; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (plait_docker_hub_is_alias(h)) {
		free(h);
		return xstrdup(HUB_HOST);
	}
	return h;
}

/* The name docker uses for host in auths and towards helpers. */
static char *server_url(const char *host)
{
	char *key = host_key(host);
	if (streq(key, HUB_HOST)) {
		free(key);
		return xstrdup(HUB_SERVER);
	}
	return key;
}

/* The key of obj that names the same registry as host, or NULL. */
static const char *find_key(json_t *obj, const char *host)
{
	if (!json_is_object(obj))
		return NULL;
	void *it = json_object_iter_at(obj, host);
	if (it)
		return json_object_iter_key(it);
	_cleanup_free_ char *want = host_key(host);
	const char *key;
	json_t *value;
	json_object_foreach(obj, key, value)
	{
		_cleanup_free_ char *k = host_key(key);
		if (streq(k, want))
			return key;
	}
	return NULL;
}

/* ---- base64 ----------------------------------------------------------------- */

static char *b64_encode(const void *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static bool is_b64_char(char c)
{
	return isalnum((unsigned char)c) || c == '+' || c == '/';
}

/* Decode standard base64 (padding optional); NULL when s is not base64 or
 * decodes to something with a NUL byte. */
static char *b64_decode(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	size_t data = 0;
	while (data < len && is_b64_char(s[data]))
		data++;
	size_t pad = len - data;
	if (pad > 2 || data % 4 == 1)
		return NULL;
	for (size_t i = data; i < len; i++)
		if (s[i] != '=')
			return NULL;
	/* EVP_DecodeBlock wants whole quanta: re-pad what the writer left out. */
	size_t padded = (data + 3) / 4 * 4;
	if (pad && data + pad != padded)
		return NULL;
	_cleanup_secret_ char *in = xmalloc(padded + 1);
	memcpy(in, s, data);
	memset(in + data, '=', padded - data);
	in[padded] = '\0';
	char *out = xmalloc(padded / 4 * 3 + 1);
	int n =
	    padded ? EVP_DecodeBlock((unsigned char *)out, (unsigned char *)in, (int)padded) : 0;
	if (n < 0) {
		free(out);
		return NULL;
	}
	/* EVP_DecodeBlock counts the bytes the padding stands for. */
	n -= (int)(padded - data);
	out[n] = '\0';
	if (memchr(out, '\0', (size_t)n)) {
		plait_free_secret(out);
		return NULL;
	}
	return out;
}

/* ---- config.json ------------------------------------------------------------ */

struct config {
	char *dir;
	char *path;
	json_t *root; /* always an object once loaded */
	bool exists;
};

static void config_release(struct config *c)
{
	free(c->dir);
	free(c->path);
	json_decref(c->root);
	memset(c, 0, sizeof(*c));
}

static int config_load(const char *config_dir, struct config *c, struct plait_error **err)
{
	memset(c, 0, sizeof(*c));
	c->dir = plait_auth_config_dir(config_dir);
	c->path = plait_path_concat(c->dir, CONFIG_FILE);

	_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
	int r = plait_buf_read_file(&b, c->path, CONFIG_MAX);
	if (r == -ENOENT || r == -ENOTDIR) {
		/* No file means no credentials, as for docker. */
		c->root = json_object();
		return 0;
	}
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "cannot read docker config '%s'",
					     c->path);
	c->exists = true;
	size_t i = 0;
	while (i < b.len && isspace((unsigned char)b.buf[i]))
		i++;
	if (i == b.len) {
		c->root = json_object();
		OPENSSL_cleanse(b.buf, b.len);
		return 0;
	}
	json_error_t je;
	c->root = json_loadb(b.buf, b.len, 0, &je);
	OPENSSL_cleanse(b.buf, b.len);
	if (!c->root) {
		/* jansson adds "near '<text>'": that text may be a credential. */
		char *near = strstr(je.text, " near ");
		if (near)
			*near = '\0';
		return plait_error_set(err, PLAIT_E_INVALID,
				       "invalid JSON in docker config '%s' at line %d, column %d: "
				       "%s",
				       c->path, je.line, je.column, je.text);
	}
	if (!json_is_object(c->root))
		return plait_error_set(err, PLAIT_E_INVALID,
				       "invalid docker config '%s': expected a JSON object",
				       c->path);
	return 0;
}

/* Replace config.json atomically: temp file (0600) in the same directory,
 * fsync, rename, fsync the directory. A symlinked config.json is written
 * through to its target, as docker does. */
static int config_write(struct config *c, struct plait_error **err)
{
	size_t failed = 0;
	int r = plait_mkdir_p(c->dir, 0700, &failed);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "cannot create directory '%.*s'",
					     (int)failed, c->dir);

	_cleanup_secret_ char *text = json_dumps(c->root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	if (!text)
		plait_die_oom();
	size_t len = strlen(text);
	_cleanup_secret_ char *data = xmalloc(len + 2);
	memcpy(data, text, len);
	memcpy(data + len, "\n", 2);
	r = plait_replace_file_full(c->path, data, len + 1, 0600,
				    PLAIT_REPLACE_SYNC | PLAIT_REPLACE_EXACT_MODE | PLAIT_REPLACE_FOLLOW);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, r, "cannot write docker config '%s'",
					     c->path);
	c->exists = true;
	return 0;
}

/* The helper configured for host and the member that names it. */
static const char *helper_for(json_t *root, const char *host, const char **member)
{
	json_t *helpers = json_object_get(root, "credHelpers");
	const char *key = find_key(helpers, host);
	if (key) {
		json_t *name = json_object_get(helpers, key);
		if (json_is_string(name) && *json_string_value(name)) {
			*member = "credHelpers";
			return json_string_value(name);
		}
	}
	json_t *store = json_object_get(root, "credsStore");
	if (json_is_string(store) && *json_string_value(store)) {
		*member = "credsStore";
		return json_string_value(store);
	}
	return NULL;
}

/* ---- credential helpers ----------------------------------------------------- */

struct helper_run {
	int status; /* exit status, or 128 + signal */
	struct plait_buf out;
	struct plait_buf errout;
};

static void helper_run_release(struct helper_run *h)
{
	OPENSSL_cleanse(h->out.buf, h->out.len);
	plait_buf_release(&h->out);
	plait_buf_release(&h->errout);
}

static bool helper_name_is_valid(const char *name)
{
	if (!*name)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return false;
	return true;
}

/* Write input to a child's stdin without letting SIGPIPE kill us when the
 * child exits early; the signal is blocked for this thread and consumed. */
static void write_to_child(int fd, const char *input)
{
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigemptyset(&pending);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	int r = plait_write_all(fd, input, strlen(input));
	if (r == -EPIPE && !was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void read_child(int out_fd, int err_fd, struct helper_run *h)
{
	/* Keep draining past the limit so the helper never blocks. */
	plait_buf_drain_two(out_fd, &h->out, err_fd, &h->errout, HELPER_OUTPUT_MAX, true);
}

static void close_pipe(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	p[0] = p[1] = -1;
}

/* Run docker-credential-<name> <action> with input on stdin. 0 once it ran
 * (whatever its exit status), <0 when it could not be started. */
static int helper_run(const char *name, const char *member, const char *config_path,
		      const char *action, const char *input, struct helper_run *h,
		      struct plait_error **err)
{
	memset(h, 0, sizeof(*h));
	h->out = (struct plait_buf)PLAIT_BUF_INIT;
	h->errout = (struct plait_buf)PLAIT_BUF_INIT;
	if (!helper_name_is_valid(name))
		return plait_error_set(err, PLAIT_E_INVALID,
				       "invalid credential helper name '%s' in '%s' of '%s': use "
				       "letters, digits, '-', '_' and '.'",
				       name, member, config_path);
	struct plait_buf pb = PLAIT_BUF_INIT;
	plait_buf_addf(&pb, "docker-credential-%s", name);
	_cleanup_free_ char *prog = plait_buf_detach(&pb, NULL);

	int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1};
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0) {
		int e = errno;
		close_pipe(in);
		close_pipe(out);
		close_pipe(er);
		return plait_error_set_errno(err, PLAIT_E_IO, e, "cannot run '%s'", prog);
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, er[1], STDERR_FILENO);
	char *argv[] = {prog, (char *)action, NULL};
	pid_t pid;
	int r = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	close(er[1]);
	if (r != 0) {
		close(in[1]);
		close(out[0]);
		close(er[0]);
		if (r == ENOENT)
			return plait_error_set(
			    err, PLAIT_E_NOT_FOUND,
			    "credential helper '%s' not found in PATH: install it "
			    "or remove '%s' from '%s'",
			    prog, member, config_path);
		return plait_error_set_errno(err, PLAIT_E_IO, r,
					     "cannot run credential helper '%s'", prog);
	}
	write_to_child(in[1], input);
	close(in[1]);
	read_child(out[0], er[0], h);
	close(out[0]);
	close(er[0]);

	int wstatus;
	while (waitpid(pid, &wstatus, 0) < 0) {
		if (errno != EINTR)
			return plait_error_set_errno(
			    err, PLAIT_E_IO, errno, "cannot wait for credential helper '%s'", prog);
	}
	h->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	return 0;
}

static bool helper_says_not_found(const struct helper_run *h)
{
	return strcasestr(h->out.buf, "credentials not found") ||
	       strcasestr(h->errout.buf, "credentials not found");
}

/* ": <first line the helper printed>" for messages about a failed get or erase;
 * never used for store, whose input holds the secret. */
static void add_helper_output(struct plait_buf *msg, const struct helper_run *h)
{
	const char *text = h->errout.len ? h->errout.buf : h->out.buf;
	while (isspace((unsigned char)*text))
		text++;
	size_t n = strcspn(text, "\r\n");
	if (n > 200)
		n = 200;
	if (n)
		plait_buf_addf(msg, ": %.*s", (int)n, text);
}

static int helper_failed(struct plait_error **err, const char *name, const char *what,
			 const char *server, const struct helper_run *h, bool show_output)
{
	_cleanup_buf_ struct plait_buf msg = PLAIT_BUF_INIT;
	plait_buf_addf(&msg,
		       "credential helper 'docker-credential-%s' failed to %s credentials for "
		       "'%s' (exit status %d)",
		       name, what, server, h->status);
	if (show_output)
		add_helper_output(&msg, h);
	return plait_error_set(err, PLAIT_E_AUTH, "%s", msg.buf);
}

/* 1 with *out filled, 0 when the helper has nothing for server. */
static int helper_get(const char *name, const char *member, const char *config_path,
		      const char *server, struct plait_credentials *out, struct plait_error **err)
{
	_cleanup_(helper_run_release) struct helper_run h;
	int r = helper_run(name, member, config_path, "get", server, &h, err);
	if (r < 0)
		return r;
	if (h.status != 0) {
		if (helper_says_not_found(&h))
			return 0;
		return helper_failed(err, name, "get", server, &h, true);
	}
	json_error_t je;
	json_auto_t *root = json_loadb(h.out.buf, h.out.len, 0, &je);
	json_t *user = json_object_get(root, "Username");
	json_t *secret = json_object_get(root, "Secret");
	if (!json_is_object(root) || (user && !json_is_string(user)) || !json_is_string(secret))
		return plait_error_set(err, PLAIT_E_INVALID,
				       "credential helper 'docker-credential-%s' returned no valid "
				       "{\"Username\", \"Secret\"} JSON for '%s'",
				       name, server);
	const char *u = user ? json_string_value(user) : "";
	const char *s = json_string_value(secret);
	if (!*u && !*s)
		return 0;
	if (streq(u, TOKEN_USERNAME)) {
		out->identity_token = xstrdup(s);
	} else {
		out->username = xstrdup(u);
		out->password = xstrdup(s);
	}
	return 1;
}

/* ---- lookup ------------------------------------------------------------------- */

/* Credentials from an auths entry: 1, 0 when the entry holds none. */
static int auths_entry_get(const struct config *c, const char *key, json_t *entry,
			   struct plait_credentials *out, struct plait_error **err)
{
	if (!json_is_object(entry))
		return plait_error_set(
		    err, PLAIT_E_INVALID,
		    "invalid docker config '%s': auths entry '%s' is not an object", c->path, key);
	json_t *auth = json_object_get(entry, "auth");
	json_t *token = json_object_get(entry, "identitytoken");
	json_t *user = json_object_get(entry, "username");
	json_t *pass = json_object_get(entry, "password");

	if (json_is_string(auth) && *json_string_value(auth)) {
		_cleanup_secret_ char *plain = b64_decode(json_string_value(auth));
		char *colon = plain ? strchr(plain, ':') : NULL;
		if (!colon)
			return plait_error_set(err, PLAIT_E_INVALID,
					       "invalid docker config '%s': 'auth' of '%s' is not "
					       "base64 of 'user:password'; log in again",
					       c->path, key);
		out->username = xstrndup(plain, (size_t)(colon - plain));
		out->password = xstrdup(colon + 1);
	} else if (json_is_string(user) && json_is_string(pass)) {
		/* The format before "auth" existed. */
		out->username = xstrdup(json_string_value(user));
		out->password = xstrdup(json_string_value(pass));
	}
	if (json_is_string(token) && *json_string_value(token)) {
		out->identity_token = xstrdup(json_string_value(token));
		plait_free_secret(TAKE_PTR(out->password));
	}
	if (out->password && !*out->password && !out->username[0]) {
		plait_credentials_release(out);
		return 0;
	}
	return out->username || out->identity_token ? 1 : 0;
}

int plait_auth_lookup(const char *config_dir, const char *host, struct plait_credentials *out,
		      struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_(config_release) struct config c;
	int r = config_load(config_dir, &c, err);
	if (r < 0)
		return r;
	if (!c.exists)
		return 0;

	const char *member = NULL;
	const char *helper = helper_for(c.root, host, &member);
	if (helper) {
		_cleanup_free_ char *server = server_url(host);
		r = helper_get(helper, member, c.path, server, out, err);
		if (r != 0)
			return r;
	}

	json_t *auths = json_object_get(c.root, "auths");
	if (auths && !json_is_object(auths))
		return plait_error_set(err, PLAIT_E_INVALID,
				       "invalid docker config '%s': 'auths' is not an object",
				       c.path);
	const char *key = find_key(auths, host);
	if (!key)
		return 0;
	r = auths_entry_get(&c, key, json_object_get(auths, key), out, err);
	if (r < 0)
		plait_credentials_release(out);
	return r;
}

/* ---- store and erase ---------------------------------------------------------- */

/* Remove every member of auths that names host; returns how many. */
static size_t auths_remove(json_t *auths, const char *host)
{
	size_t removed = 0;
	const char *key;
	while ((key = find_key(auths, host))) {
		_cleanup_free_ char *copy = xstrdup(key);
		json_object_del(auths, copy);
		removed++;
	}
	return removed;
}

int plait_auth_store(const char *config_dir, const char *host, const struct plait_credentials *cr,
		     struct plait_error **err)
{
	const char *user = cr->username ? cr->username : "";
	const char *pass = cr->password ? cr->password : "";
	if (strchr(user, ':'))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "cannot store credentials for '%s': username '%s' contains "
				       "':'",
				       host, user);
	_cleanup_(config_release) struct config c;
	int r = config_load(config_dir, &c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *server = server_url(host);

	const char *member = NULL;
	const char *helper = helper_for(c.root, host, &member);
	if (helper) {
		json_auto_t *req = json_object();
		bool token = cr->identity_token && *cr->identity_token;
		json_object_set_new(req, "ServerURL", json_string(server));
		json_object_set_new(req, "Username", json_string(token ? TOKEN_USERNAME : user));
		json_object_set_new(req, "Secret", json_string(token ? cr->identity_token : pass));
		_cleanup_secret_ char *input = json_dumps(req, JSON_COMPACT);
		if (!input)
			plait_die_oom();
		_cleanup_(helper_run_release) struct helper_run h;
		r = helper_run(helper, member, c.path, "store", input, &h, err);
		if (r < 0)
			return r;
		if (h.status != 0)
			return helper_failed(err, helper, "store", server, &h, false);
		return 0;
	}

	json_t *auths = json_object_get(c.root, "auths");
	if (!auths) {
		auths = json_object();
		json_object_set_new(c.root, "auths", auths);
	} else if (!json_is_object(auths)) {
		return plait_error_set(err, PLAIT_E_INVALID,
				       "invalid docker config '%s': 'auths' is not an object",
				       c.path);
	}
	auths_remove(auths, host);
	json_t *entry = json_object();
	if (*user || *pass) {
		struct plait_buf up = PLAIT_BUF_INIT;
		plait_buf_addf(&up, "%s:%s", user, pass);
		_cleanup_secret_ char *plain = plait_buf_detach(&up, NULL);
		_cleanup_secret_ char *encoded = b64_encode(plain, strlen(plain));
		json_object_set_new(entry, "auth", json_string(encoded));
	}
	if (cr->identity_token && *cr->identity_token)
		json_object_set_new(entry, "identitytoken", json_string(cr->identity_token));
	json_object_set_new(auths, server, entry);
	return config_write(&c, err);
}

int plait_auth_erase(const char *config_dir, const char *host, struct plait_error **err)
{
	_cleanup_(config_release) struct config c;
	int r = config_load(config_dir, &c, err);
	if (r < 0)
		return r;
	if (!c.exists)
		return 0;
	_cleanup_free_ char *server = server_url(host);
	int removed = 0;

	const char *member = NULL;
	const char *helper = helper_for(c.root, host, &member);
	if (helper) {
		_cleanup_(helper_run_release) struct helper_run h;
		r = helper_run(helper, member, c.path, "erase", server, &h, err);
		if (r < 0)
			return r;
		if (h.status == 0)
			removed = 1;
		else if (!helper_says_not_found(&h))
			return helper_failed(err, helper, "erase", server, &h, true);
	}

	json_t *auths = json_object_get(c.root, "auths");
	if (json_is_object(auths) && auths_remove(auths, host) > 0) {
		r = config_write(&c, err);
		if (r < 0)
			return r;
		removed = 1;
	}
	return removed;
}

int plait_auth_lookup_api_host(const char *config_dir, const struct plait_registry_login *logins, size_t n_logins,
			       const char *host, struct plait_credentials *out, struct plait_error **err)
{
	*out = (struct plait_credentials){ 0 };
	for (size_t i = 0; i < n_logins; i++)
		if (logins[i].host && streq(logins[i].host, host)) {
			const struct plait_credentials *c = &logins[i].creds;
			if (!registry_creds_usable(c))
				return 0;
			*out = (struct plait_credentials){ xstrdup_or_null(c->username), xstrdup_or_null(c->password),
							   xstrdup_or_null(c->identity_token) };
			return 1;
		}
	return plait_auth_lookup(config_dir, registry_creds_host(host), out, err);
}

/* ---- the registry client's credentials ------------------------------------ */

/* Stored credentials for the registry (looked up once). 1 when there are some. */
int registry_stored_creds(struct plait_registry *r, struct plait_credentials *out,
			  struct plait_error **err)
{
	pthread_mutex_lock(&r->lock);
	if (!r->creds_loaded) {
		struct plait_credentials c = { 0 };
		int rc = plait_auth_lookup(r->config_dir, r->creds_host, &c, err);
		if (rc < 0) {
			pthread_mutex_unlock(&r->lock);
			plait_credentials_release(&c);
			return rc;
		}
		r->creds = c;
		r->have_creds = rc > 0;
		r->creds_loaded = true;
	}
	int have = r->have_creds;
	if (have) {
		out->username = xstrdup_or_null(r->creds.username);
		out->password = xstrdup_or_null(r->creds.password);
		out->identity_token = xstrdup_or_null(r->creds.identity_token);
	}
	pthread_mutex_unlock(&r->lock);
	return have;
}

const char *registry_creds_host(const char *host)
{
	return streq(host, plait_docker_hub_api_host()) ? plait_docker_hub_domain() : host;
}

bool registry_creds_usable(const struct plait_credentials *c)
{
	return c && ((c->username && *c->username) || (c->identity_token && *c->identity_token));
}

char *registry_basic_header(const struct plait_credentials *c)
{
	struct plait_buf up = PLAIT_BUF_INIT, h = PLAIT_BUF_INIT;
	plait_buf_addf(&up, "%s:%s", c->username ? c->username : "", c->password ? c->password : "");
	_cleanup_free_ char *b64 = b64_encode(up.buf, up.len);
	explicit_bzero(up.buf, up.len);
	plait_buf_release(&up);
	plait_buf_addf(&h, "Authorization: Basic %s", b64);
	explicit_bzero(b64, strlen(b64));
	return plait_buf_detach(&h, NULL);
}

bool registry_have_stored_creds(struct plait_registry *r)
{
	pthread_mutex_lock(&r->lock);
	bool had = r->have_creds;
	pthread_mutex_unlock(&r->lock);
	return had;
}
