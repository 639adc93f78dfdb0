/* cmd/remote_context.c - git and URL build contexts; see remote_context.h. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "remote_context.h"
#include "core/attest.h"
#include "core/buf.h"
#include "core/digest.h"
#include "core/store.h"
#include "core/strv.h"
#include "core/unpack.h"
#include "core/util.h"
#include "registry/fetch.h"

#include "core/banned.h"

extern char **environ;

static bool http_url(const char *s)
{
	return startswith(s, "https://") || startswith(s, "http://");
}

bool remote_context_is(const char *spec)
{
	return plait_url_is_git(spec) || http_url(spec);
}

void remote_context_release(struct remote_context *c)
{
	if (!c)
		return;
	plait_tmpdir_remove(&c->tmp);
	free(c->dir);
	free(c->dockerfile);
	free(c->commit);
	memset(c, 0, sizeof(*c));
	c->tmp = (struct plait_tmpdir)PLAIT_TMPDIR_INIT;
}

/* git ARGS in dir (NULL: none), its stdout in *out; its stderr's last lines
 * as the error when it fails. */
static int git(const char *dir, const char *url, struct plait_buf *out, struct plait_error **err, ...)
{
	char **argv = NULL;
	plait_strv_push(&argv, "git");
	if (dir) {
		plait_strv_push(&argv, "-C");
		plait_strv_push(&argv, dir);
	}
	va_list ap;
	va_start(ap, err);
	for (const char *a = va_arg(ap, const char *); a; a = va_arg(ap, const char *))
		plait_strv_push(&argv, a);
	va_end(ap);
	char **envp = NULL;
	/* not the caller's repository (a hook or CI step may set these) */
	static const char *const drop[] = { "GIT_TERMINAL_PROMPT=", "GIT_DIR=", "GIT_WORK_TREE=", "GIT_INDEX_FILE=",
					    "GIT_OBJECT_DIRECTORY=", "GIT_ALTERNATE_OBJECT_DIRECTORIES=",
					    "GIT_COMMON_DIR=", "GIT_NAMESPACE=", "GIT_PREFIX=", "GIT_CONFIG" };
	for (char **e = environ; e && *e; e++) {
		bool keep = true;
		for (size_t i = 0; i < ARRAY_SIZE(drop) && keep; i++)
			keep = !startswith(*e, drop[i]);
		if (keep)
			plait_strv_push(&envp, *e);
	}
	plait_strv_push(&envp, "GIT_TERMINAL_PROMPT=0");
	int o[2] = { -1, -1 }, e[2] = { -1, -1 };
	int r = 0;
	if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "git context %s: cannot run git", url);
		goto out;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, o[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, e[1], STDERR_FILENO);
	pid_t pid;
	int sr = posix_spawnp(&pid, "git", &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(o[1]);
	close(e[1]);
	o[1] = e[1] = -1;
	if (sr != 0) {
		r = plait_error_set_errno(err, PLAIT_E_NOT_FOUND, sr,
					  "git context %s: cannot run git (apt-get install git)", url);
		goto out;
	}
	struct plait_buf so = PLAIT_BUF_INIT, se = PLAIT_BUF_INIT;
	plait_buf_drain_two(o[0], &so, e[0], &se, 1u << 20, false);
	int ws = 0;
	pid_t w;
	while ((w = waitpid(pid, &ws, 0)) < 0 && errno == EINTR)
		;
	if (w < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		struct plait_buf m = PLAIT_BUF_INIT;
		_cleanup_free_ char *copy = xstrdup(se.buf ? se.buf : "");
		for (char *save = NULL, *l = strtok_r(copy, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save))
			plait_buf_addf(&m, "%s%s", m.len ? "; " : "", l);
		r = plait_error_set(err, PLAIT_E_NETWORK, "git context %s: git %s failed: %s", url, argv[dir ? 3 : 1],
				    m.len ? m.buf : "no message");
		plait_buf_release(&m);
	} else if (out) {
		plait_buf_add(out, so.buf ? so.buf : "", so.len);
	}
	plait_buf_release(&so);
	plait_buf_release(&se);
out:
	for (int i = 0; i < 2; i++) {
		if (o[i] >= 0)
			close(o[i]);
		if (e[i] >= 0)
			close(e[i]);
	}
	plait_strv_free(argv);
	plait_strv_free(envp);
	return r;
}

/* "#REF:SUBDIR": *ref (NULL: the default branch) and *subdir (NULL: the top). */
static int split_fragment(const char *spec, const char *shown, char **url, char **ref, char **subdir,
			  struct plait_error **err)
{
	const char *hash = strchr(spec, '#');
	*url = hash ? xstrndup(spec, (size_t)(hash - spec)) : xstrdup(spec);
	*ref = *subdir = NULL;
	if (!hash)
		return 0;
	const char *colon = strchr(hash + 1, ':');
	*ref = colon ? xstrndup(hash + 1, (size_t)(colon - hash - 1)) : xstrdup(hash + 1);
	if (colon && colon[1])
		*subdir = xstrdup(colon + 1);
	if (!**ref) {
		free(*ref);
		*ref = NULL;
	}
	if (*ref && ((*ref)[0] == '-' || strstr(*ref, "..")))
		return plait_error_set(err, PLAIT_E_USAGE, "git context %s: '%s' is not a ref", shown, *ref);
	if (*subdir && ((*subdir)[0] == '/' || strstr(*subdir, "..")))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "git context %s: the subdirectory '%s' must be a path inside the repository", shown,
				       *subdir);
	return 0;
}

static int fetch_git(const char *spec, const char *shown, bool keep_git, struct remote_context *out,
		     struct plait_error **err)
{
	_cleanup_free_ char *url = NULL, *ref = NULL, *subdir = NULL;
	int r = split_fragment(spec, shown, &url, &ref, &subdir, err);
	if (r < 0)
		return r;
	if (startswith(url, "github.com/")) {
		char *u = NULL;
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "https://%s", url);
		u = b.buf;
		free(url);
		url = u;
	}
	_cleanup_free_ char *repo = plait_path_join(out->tmp.path, "repo");
	r = git(NULL, shown, NULL, err, "init", "-q", repo, NULL);
	if (r >= 0)
		r = git(repo, shown, NULL, err, "remote", "add", "origin", url, NULL);
	/* the ref at depth 1; a commit a server will not serve that way, fully */
	bool shallow = r >= 0 && git(repo, shown, NULL, NULL, "fetch", "-q", "--depth", "1", "origin",
				      ref ? ref : "HEAD", NULL) >= 0;
	if (r >= 0 && !shallow)
		r = git(repo, shown, NULL, err, "fetch", "-q", "--tags", "origin", NULL);
	if (r >= 0)
		r = git(repo, shown, NULL, err, "checkout", "-q", shallow || !ref ? "FETCH_HEAD" : ref, NULL);
	struct plait_buf head = PLAIT_BUF_INIT;
	if (r >= 0)
		r = git(repo, shown, &head, err, "rev-parse", "HEAD", NULL);
	if (r >= 0) {
		plait_buf_rtrim(&head);
		out->commit = xstrdup(head.buf);
		/* as BuildKit: the context is the work tree, without .git
		 * (ADD --keep-git-dir keeps it) */
		_cleanup_free_ char *dotgit = plait_path_join(repo, ".git");
		if (!keep_git)
			plait_rm_rf(dotgit);
		/* the remote as .git/config keeps it (ADD --keep-git-dir puts it in
		 * the image): without the URL's credentials */
		if (keep_git)
			r = git(repo, shown, NULL, err, "remote", "set-url", "origin", shown, NULL);
		/* SUBDIR resolved, symlinks followed, must stay inside the checkout:
		 * a repository's link to / or ~/.ssh is not a context */
		_cleanup_free_ char *joined = subdir ? plait_path_join(repo, subdir) : xstrdup(repo);
		_cleanup_free_ char *top = realpath(repo, NULL);
		out->dir = realpath(joined, NULL);
		size_t tl = top ? strlen(top) : 0;
		struct stat st;
		if (r >= 0 && (!out->dir || stat(out->dir, &st) < 0 || !S_ISDIR(st.st_mode)))
			r = plait_error_set(err, PLAIT_E_NOT_FOUND, "git context %s: no directory '%s' at %s", shown,
					    subdir ? subdir : ".", out->commit);
		else if (r >= 0 && (!top || strncmp(out->dir, top, tl) != 0 || (out->dir[tl] && out->dir[tl] != '/')))
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "git context %s: '%s' leads outside the repository (a symlink); refused", shown,
					    subdir);
	}
	plait_buf_release(&head);
	return r;
}

/* An archive by its magic bytes: tar (ustar at 257), gzip, bzip2, xz, zstd. */
static bool looks_like_archive(int fd)
{
	unsigned char h[512];
	ssize_t n = pread(fd, h, sizeof(h), 0);
	if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b)
		return true;
	if (n >= 3 && memcmp(h, "BZh", 3) == 0)
		return true;
	if (n >= 6 && memcmp(h, "\xfd" "7zXZ\0", 6) == 0)
		return true;
	if (n >= 4 && memcmp(h, "\x28\xb5\x2f\xfd", 4) == 0)
		return true;
	return n >= 262 && memcmp(h + 257, "ustar", 5) == 0;
}

static int fetch_url(const char *url, const char *shown, const struct plait_registry_opts *opts,
		     struct remote_context *out, struct plait_error **err)
{
	_cleanup_free_ char *sp = plait_path_join(out->tmp.path, "store");
	struct plait_store *s = NULL;
	struct plait_blob_writer *w = NULL;
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	int r = plait_store_open(sp, true, &s, err);
	if (r >= 0)
		r = plait_blob_writer_new(s, NULL, -1, &w, err);
	if (r >= 0)
		r = plait_fetch_url(url, opts, w, NULL, err);
	if (r >= 0)
		r = plait_blob_writer_commit(w, digest, err);
	plait_blob_writer_free(w);
	_cleanup_close_ int fd = -1;
	if (r >= 0)
		r = plait_store_open_blob(s, digest, &fd, err);
	if (r < 0) {
		plait_error_wrap(err, "URL context %s", shown);
		plait_store_free(s);
		return r;
	}
	out->dir = plait_path_join(out->tmp.path, "context");
	if (mkdir(out->dir, 0755) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "URL context %s: cannot create '%s'", shown, out->dir);
	} else if (looks_like_archive(fd)) {
		/* the same safe unpacker as ADD's archives: nothing lands outside */
		struct plait_unpack_options uo = { .mode = PLAIT_UNPACK_PLAIN, .no_chown = true };
		r = plait_unpack_fd(fd, out->dir, &uo, NULL, err);
		if (r < 0)
			plait_error_wrap(err, "URL context %s", shown);
	} else {
		/* a Dockerfile, with an empty context (BuildKit) */
		struct plait_buf b = PLAIT_BUF_INIT;
		r = plait_store_read_blob(s, digest, 16u << 20, &b, err);
		out->dockerfile = plait_path_join(out->tmp.path, "Dockerfile");
		if (r >= 0 && plait_replace_file_full(out->dockerfile, b.buf ? b.buf : "", b.len, 0644, 0) < 0)
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "URL context %s: cannot write '%s'", shown,
						  out->dockerfile);
		plait_buf_release(&b);
	}
	plait_store_free(s);
	_cleanup_free_ char *store_dir = plait_path_join(out->tmp.path, "store");
	plait_rm_rf(store_dir);
	return r;
}

int remote_context_fetch(const char *spec, const struct plait_registry_opts *opts, bool keep_git,
			 struct remote_context *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	out->tmp = (struct plait_tmpdir)PLAIT_TMPDIR_INIT;
	/* messages name the URL without its credentials */
	_cleanup_free_ char *shown = plait_url_strip_credentials(spec);
	int r = plait_mkdtemp("context", &out->tmp, err);
	if (r >= 0)
		r = plait_url_is_git(spec) ? fetch_git(spec, shown, keep_git, out, err) : fetch_url(spec, shown, opts, out, err);
	if (r < 0)
		remote_context_release(out);
	return r;
}
