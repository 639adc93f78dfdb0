/* core/build_mount.c - RUN --mount: what a parsed mount (core/dockerfile_mount.h)
 * becomes for the runner. Cache mounts are directories of the cache (made
 * with uid/gid/mode the first time, locked for sharing=locked|private), a
 * secret is a private copy with its owner and mode (or only an environment
 * variable), a bind shows the context, a named context, a stage or an image,
 * read-only or through a throwaway overlay. Each mount adds its line to the
 * step's cache key: never a secret's value, never a cache mount's content. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "build_internal.h"
#include "cache_remote.h"
#include "dockerfile_mount.h"
#include "ssh_forward.h"
#include "banned.h"

void mount_views_release(struct mount_views *v)
{
	for (size_t i = v->n_snaps; i-- > 0;)
		plait_snapshot_release(v->snaps[i]);
	free(v->snaps);
	for (size_t i = 0; i < v->n_stages; i++) {
		stage_release(v->stages[i]);
		free(v->stages[i]);
	}
	free(v->stages);
	for (char **d = v->tmpdirs; d && *d; d++)
		plait_rm_rf(*d);
	plait_strv_free(v->tmpdirs);
	for (size_t i = 0; i < v->n_locks; i++)
		close(v->locks[i]);
	free(v->locks);
	free(v->mounts);
	for (char **k = v->keep; k && *k; k++)
		free(*k);
	free(v->keep);
	for (size_t i = 0; i < v->n_secrets; i++) {
		if (v->secrets[i].buf)
			explicit_bzero(v->secrets[i].buf, v->secrets[i].len);
		plait_buf_release(&v->secrets[i]);
	}
	free(v->secrets);
	for (size_t i = 0; i < v->n_ssh; i++)
		plait_ssh_forward_stop(v->ssh[i]);
	free(v->ssh);
	plait_strv_free(v->restore_ids);
	plait_strv_free(v->restore_dirs);
	memset(v, 0, sizeof(*v));
}

static int snapshot_of(struct builder *b, const char *const *lowers, size_t n, struct mount_views *v,
		       struct plait_snapshot **out, struct plait_error **err)
{
	int r = plait_snapshot_prepare(lowers, n, b->cache->run_dir, PLAIT_SNAPSHOT_AUTO, out, err);
	if (r < 0)
		return r;
	v->snaps = xrealloc(v->snaps, (v->n_snaps + 1) * sizeof(*v->snaps));
	v->snaps[v->n_snaps++] = *out;
	return 0;
}

/* The real path of rel inside root, every component resolved inside it. */
static int path_in_root(const char *root, const char *rel, char **out, struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct open_how how = { .flags = O_PATH | O_CLOEXEC,
				.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	while (*rel == '/')
		rel++;
	long fd = rootfd < 0 ? -1 : syscall(SYS_openat2, rootfd, *rel ? rel : ".", &how, sizeof(how));
	if (fd < 0)
		return plait_error_set_errno(err, PLAIT_E_NOT_FOUND, errno, "mount source '/%s'", rel);
	char proc[64], buf[4096];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%ld", fd);
	ssize_t n = readlink(proc, buf, sizeof(buf) - 1);
	close((int)fd);
	if (n < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "mount source '/%s'", rel);
	*out = xstrndup(buf, (size_t)n);
	return 0;
}

/* A new private directory in the cache's work area (mode 0700), removed
 * after the RUN with the views; the caller frees the returned path. */
static char *run_tmpdir(struct builder *b, struct mount_views *views, const char *what, struct plait_error **err)
{
	struct plait_buf t = PLAIT_BUF_INIT;
	plait_buf_addf(&t, "%s/%s-XXXXXX", b->cache->run_dir, what);
	char *tmp = plait_buf_detach(&t, NULL);
	if (!mkdtemp(tmp)) {
		plait_error_set_errno(err, PLAIT_E_IO, errno, "create '%s'", tmp);
		free(tmp);
		return NULL;
	}
	plait_strv_push(&views->tmpdirs, tmp);
	return tmp;
}

void build_add_mount(struct mount_views *v, const struct plait_run_mount *m, char *keep_source,
		     char *keep_target)
{
	v->mounts = xrealloc(v->mounts, (v->n_mounts + 1) * sizeof(*v->mounts));
	v->mounts[v->n_mounts] = *m;
	v->mounts[v->n_mounts].source = keep_source;
	v->mounts[v->n_mounts].target = keep_target;
	v->n_mounts++;
	size_t n = 0;
	while (v->keep && v->keep[n])
		n++;
	v->keep = xrealloc(v->keep, (n + 4) * sizeof(char *));
	v->keep[n++] = keep_target;
	if (keep_source)
		v->keep[n++] = keep_source;
	if (m->options)
		v->keep[n++] = (char *)m->options;
	v->keep[n] = NULL;
}

static void restore_mount(struct builder *b, const char *cid, const char *path);

static bool dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return false;
	struct dirent *de;
	bool empty = true;
	while (empty && (de = readdir(d)))
		empty = streq(de->d_name, ".") || streq(de->d_name, "..");
	closedir(d);
	return empty;
}

void build_restore_mounts(struct builder *b, const struct mount_views *v)
{
	for (size_t i = 0; b->o->cache_import && i < v->n_restore; i++)
		if (dir_is_empty(v->restore_dirs[i]))
			restore_mount(b, v->restore_ids[i], v->restore_dirs[i]);
}

/* An empty cache mount, restored from a --cache-from that carries it
 * (--cache-to ...,mounts=), just before the RUN that uses it runs. A failure
 * only costs the RUN its warm cache: said in its output, not an error. */
static void restore_mount(struct builder *b, const char *cid, const char *path)
{
	struct plait_error *e = NULL;
	int r = plait_cache_import_restore_mount(b->o->cache_import, cid, b->store, path, b->cache->run_dir, &e);
	struct plait_buf m = PLAIT_BUF_INIT;
	if (r < 0)
		plait_buf_addf(&m, "plait: cache mount '%s' not restored, starting empty: %s", cid, e->msg);
	else if (r > 0)
		plait_buf_addf(&m, "plait: cache mount '%s' restored from --cache-from", cid);
	if (m.len)
		build_emit(b, PLAIT_BUILD_STEP_OUTPUT, m.buf, 0);
	plait_buf_release(&m);
	plait_error_free(e);
}

/* type=cache: persisted in the cache directory, shared by id (default: target). */
static int mount_cache(struct builder *b, const struct plait_df_mount *m, struct mount_views *v,
		       struct plait_buf *key, struct plait_error **err)
{
	const char *cid = m->id ? m->id : m->target;
	_cleanup_free_ char *dir = NULL;
	bool fresh;
	if (!plait_strv_contains(b->mount_ids, cid))
		plait_strv_push(&b->mount_ids, cid);
	int r = plait_cache_mount_dir(b->cache, cid, &dir, &fresh, err);
	if (r < 0)
		return r;
	/* uid=, gid=, mode= apply when the cache is made, as BuildKit does */
	if (fresh && (m->uid >= 0 || m->gid >= 0) && chown(dir, (uid_t)m->uid, (gid_t)m->gid) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "chown cache mount '%s'", dir);
	if (fresh && m->mode >= 0 && chmod(dir, (mode_t)m->mode) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "chmod cache mount '%s'", dir);
	if (m->sharing != PLAIT_DF_MOUNT_SHARED) {
		/* locked: one RUN at a time uses it (parallel jobs, other builds);
		 * private: a RUN that finds it in use gets a fresh empty one. */
		_cleanup_free_ char *lock = plait_cache_mount_lock_path(b->cache, cid);
		int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (lfd < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "lock cache mount '%s'", dir);
		r = plait_cache_lock_exclusive(lfd, m->sharing == PLAIT_DF_MOUNT_LOCKED, b->o->cancel, err);
		if (r < 0) {
			close(lfd);
			return r;
		}
		if (r > 0) {
			v->locks = xrealloc(v->locks, (v->n_locks + 1) * sizeof(int));
			v->locks[v->n_locks++] = lfd;
		} else {
			close(lfd);
			char *tmp = run_tmpdir(b, v, "private", err);
			if (!tmp)
				return -PLAIT_E_IO;
			free(dir);
			dir = tmp;
			if ((m->uid >= 0 || m->gid >= 0) && chown(tmp, (uid_t)m->uid, (gid_t)m->gid) < 0)
				return plait_error_set_errno(err, PLAIT_E_IO, errno, "chown '%s'", tmp);
			if (chmod(tmp, m->mode >= 0 ? (mode_t)m->mode : 0755) < 0)
				return plait_error_set_errno(err, PLAIT_E_IO, errno, "chmod '%s'", tmp);
		}
	}
	plait_strv_push(&v->restore_ids, cid);
	plait_strv_push(&v->restore_dirs, dir);
	v->n_restore++;
	build_add_mount(v, &(struct plait_run_mount){ .type = PLAIT_RUN_MOUNT_BIND }, TAKE_PTR(dir),
			xstrdup(m->target));
	plait_buf_addf(key, "mount cache %s %s %ld %ld %lo\n", cid, m->target, m->uid, m->gid,
		       m->mode >= 0 ? (unsigned long)m->mode : 0755UL); /* its content is not an input */
	return 0;
}

static int mount_tmpfs(const struct plait_df_mount *m, struct mount_views *v, struct plait_buf *key)
{
	struct plait_run_mount rm = { .type = PLAIT_RUN_MOUNT_TMPFS };
	if (m->size) {
		struct plait_buf o = PLAIT_BUF_INIT;
		plait_buf_addf(&o, "size=%s", m->size);
		rm.options = plait_buf_detach(&o, NULL);
	}
	build_add_mount(v, &rm, NULL, xstrdup(m->target));
	plait_buf_addf(key, "mount tmpfs %s %s\n", m->target, m->size ? m->size : "");
	return 0;
}

static int mount_secret(struct builder *b, const struct plait_df_instr *in, const struct plait_df_mount *m,
			struct mount_views *v, struct plait_buf *key, char ***env, struct plait_error **err)
{
	const char *sid = plait_df_mount_secret_id(m);
	const char *src = NULL;
	for (size_t i = 0; i < b->o->n_secrets; i++)
		if (streq(b->o->secrets[i].id, sid))
			src = b->o->secrets[i].src;
	if (!src) {
		if (m->required)
			return build_instr_error(b, in, PLAIT_E_USAGE, err,
						 "secret '%s' is required: pass --secret id=%s,src=FILE", sid, sid);
		return 0; /* an optional secret that was not given: no mount */
	}
	/* Only the secret's name enters the key, never its value. */
	plait_buf_addf(key, "mount secret %s %s %s %ld %ld %lo\n", sid, m->secret_file ? m->target : "-",
		       m->env ? m->env : "-", m->uid, m->gid, m->mode >= 0 ? (unsigned long)m->mode : 0400UL);
	int r;
	if (m->env) {
		/* The value goes to the command's environment only: the key has
		 * been made, and the image config never sees it. */
		struct plait_buf val = PLAIT_BUF_INIT;
		r = plait_buf_read_file(&val, src, 1u << 20);
		if (r < 0) {
			plait_buf_release(&val);
			return build_instr_error(b, in, PLAIT_E_IO, err, "secret '%s': cannot read it: %s", sid,
						 strerror(-r));
		}
		env_set(env, m->env, val.buf ? val.buf : "");
		explicit_bzero(val.buf, val.len);
		plait_buf_release(&val);
	}
	if (!m->secret_file)
		return 0;
	/* A file with the mount's owner and mode (default root's 0400, as
	 * BuildKit gives: a non-root USER reads it only when the Dockerfile says
	 * so), kept in memory: the runner puts it on a tmpfs of the RUN's own
	 * mount namespace, so no disk ever holds it, even after a kill -9. */
	v->secrets = xrealloc(v->secrets, (v->n_secrets + 1) * sizeof(*v->secrets));
	struct plait_buf *val = &v->secrets[v->n_secrets++];
	plait_buf_init(val, 0);
	r = plait_buf_read_file(val, src, 1u << 20);
	if (r < 0)
		return build_instr_error(b, in, PLAIT_E_IO, err, "secret '%s': cannot read '%s': %s", sid, src,
					 strerror(-r));
	build_add_mount(v,
			&(struct plait_run_mount){ .type = PLAIT_RUN_MOUNT_FILE,
						   .readonly = true,
						   .data = val->buf ? val->buf : "",
						   .data_len = val->len,
						   .uid = m->uid >= 0 ? (uid_t)m->uid : 0,
						   .gid = m->gid >= 0 ? (gid_t)m->gid : 0,
						   .mode = m->mode >= 0 ? (mode_t)m->mode : 0400 },
			NULL, xstrdup(m->target));
	return 0;
}

/* An ssh agent --ssh named, relayed through a socket of the mount's own
 * (owner, mode: BuildKit's defaults root 0600) at target, default
 * /run/buildkit/ssh_agent.N; the first one is SSH_AUTH_SOCK unless the RUN's
 * environment sets it. Only the id and the target enter the key. */
static int mount_ssh(struct builder *b, const struct plait_df_instr *in, struct plait_df_mount *m,
		     struct mount_views *v, struct plait_buf *key, char ***env, struct plait_error **err)
{
	const char *id = plait_df_mount_ssh_id(m);
	const char *sock = NULL;
	for (size_t i = 0; i < b->o->n_ssh; i++)
		if (streq(b->o->ssh[i].id, id))
			sock = b->o->ssh[i].socket;
	if (!sock) {
		if (m->required)
			return build_instr_error(b, in, PLAIT_E_USAGE, err,
						 "ssh agent '%s' is required: pass --ssh %s (the agent of $SSH_AUTH_SOCK), "
						 "--ssh %s=SOCKET or --ssh %s=KEYFILE",
						 id, id, id, id);
		return 0; /* BuildKit: an optional agent that was not given is no mount */
	}
	if (!m->target) {
		struct plait_buf t = PLAIT_BUF_INIT;
		plait_buf_addf(&t, "/run/buildkit/ssh_agent.%zu", v->n_ssh);
		m->target = plait_buf_detach(&t, NULL);
	}
	plait_buf_addf(key, "mount ssh %s %s %ld %ld %lo\n", id, m->target, m->uid, m->gid,
		       m->mode >= 0 ? (unsigned long)m->mode : 0600UL);
	struct plait_ssh_forward *f = NULL;
	int r = plait_ssh_forward_start(sock, id, m->uid >= 0 ? (uid_t)m->uid : 0, m->gid >= 0 ? (gid_t)m->gid : 0,
					m->mode >= 0 ? (mode_t)m->mode : 0600, &f, err);
	if (r < 0) {
		struct plait_buf w = PLAIT_BUF_INIT;
		build_where(b, in, &w);
		plait_error_wrap(err, "%s: RUN --mount=type=ssh", w.buf);
		plait_buf_release(&w);
		return r;
	}
	v->ssh = xrealloc(v->ssh, (v->n_ssh + 1) * sizeof(*v->ssh));
	v->ssh[v->n_ssh++] = f;
	if (v->n_ssh == 1 && !env_get(*env, "SSH_AUTH_SOCK"))
		env_set(env, "SSH_AUTH_SOCK", m->target);
	build_add_mount(v,
			&(struct plait_run_mount){ .type = PLAIT_RUN_MOUNT_BIND, .readonly = false },
			xstrdup(plait_ssh_forward_path(f)), xstrdup(m->target));
	return 0;
}

/* A bind from a named local context: the source is resolved inside it
 * (symlinks stay in it), and that resolved entry is what gets bound. */
static int bind_named(const char *ndir, const struct plait_df_mount *m, struct plait_buf *key, char **path,
		      struct plait_error **err)
{
	struct plait_context *nc = NULL;
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	char d[PLAIT_SHA256_DIGEST_SIZE];
	const char *source = m->source ? m->source : ".";
	_cleanup_free_ char *root = realpath(ndir, NULL);
	int r = root ? plait_context_open(root, NULL, &nc, err)
		     : plait_error_set_errno(err, PLAIT_E_NOT_FOUND, errno, "--build-context '%s'", ndir);
	if (r >= 0)
		r = plait_context_resolve(nc, source, "RUN --mount", &l, err);
	if (r >= 0 && !l.n_entries)
		r = plait_error_set(err, PLAIT_E_NOT_FOUND, "--mount from=%s: '%s' matches nothing", m->from,
				    source);
	if (r >= 0)
		r = plait_context_digest(nc, &l, d, err);
	if (r >= 0) {
		*path = *l.entries[0].path ? plait_path_join(root, l.entries[0].path) : xstrdup(root);
		plait_buf_addf(key, "mount bind context %s %s %s %s %d\n", m->from, source, m->target, d, m->rw);
	}
	plait_context_list_release(&l);
	plait_context_free(nc);
	return r;
}

/* A bind from a stage or an image: a view of its root, alive until the RUN ends. */
static int bind_stage(struct builder *b, size_t idx, const struct plait_df_instr *in,
		      const struct plait_df_mount *m, struct mount_views *v, struct plait_buf *key, char **path,
		      struct plait_error **err)
{
	struct stage *fs = build_find_stage(b, m->from, idx);
	int r;
	if (!fs) {
		struct stage *img = xcalloc(1, sizeof(*img));
		v->stages = xrealloc(v->stages, (v->n_stages + 1) * sizeof(*v->stages));
		v->stages[v->n_stages++] = img;
		r = build_from_image(b, img, m->from, b->o->platform_str, err);
		if (r < 0)
			return plait_error_wrap(err, "%s:%d: --mount from=%s", b->df.filename, in->line, m->from), r;
		fs = img;
	}
	if ((r = build_stage_ready(b, fs, in, m->from, err)) < 0)
		return r;
	if ((r = build_ensure_stage_layers(b, fs, err)) < 0)
		return r;
	const char **lw = NULL;
	struct plait_snapshot *view = NULL;
	r = snapshot_of(b, build_lowers_of(fs, &lw), fs->n_layers, v, &view, err);
	free(lw);
	if (r >= 0)
		r = path_in_root(plait_snapshot_root(view), m->source ? m->source : "/", path, err);
	if (r < 0)
		return plait_error_wrap(err, "%s:%d: --mount from=%s", b->df.filename, in->line, m->from), r;
	plait_buf_addf(key, "mount bind from %s %s %s %d\n", fs->key, m->source ? m->source : "/", m->target,
		       m->rw);
	return 0;
}

/* A bind from the build context: resolved inside it and keyed on its content. */
static int bind_context(struct builder *b, const struct plait_df_instr *in, const struct plait_df_mount *m,
			struct mount_views *v, struct plait_buf *key, char **path, struct plait_error **err)
{
	const char *source = m->source ? m->source : ".";
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	int r = plait_context_resolve(b->ctx, source, "RUN --mount", &l, err);
	char d[PLAIT_SHA256_DIGEST_SIZE];
	if (r >= 0)
		r = plait_context_digest(b->ctx, &l, d, err);
	const struct plait_ignore *ig = plait_context_ignore(b->ctx);
	if (r >= 0 && l.n_entries && ig && ig->n_rules && S_ISDIR(l.entries[0].mode)) {
		/* .dockerignore applies to mounts too: the RUN sees a copy of
		 * just the files the context lets through. */
		char *tdir = run_tmpdir(b, v, "ctxmount", err);
		if (!tdir) {
			r = -PLAIT_E_IO;
		} else {
			struct copy_attrs ka = { .keep_owner = true };
			r = build_copy_into(tdir, b->ctx, &l, "/", true, &ka, "RUN --mount", NULL, err);
			*path = tdir;
		}
		plait_buf_addf(key, "mount bind %s %s %s %d\n", source, m->target, d, m->rw);
	} else if (r >= 0 && l.n_entries) {
		/* The entry is already resolved inside the context: only the
		 * context's own path is made absolute for the sandbox. */
		_cleanup_free_ char *root = realpath(plait_context_path(b->ctx), NULL);
		const char *base = root ? root : plait_context_path(b->ctx);
		*path = *l.entries[0].path ? plait_path_join(base, l.entries[0].path) : xstrdup(base);
		plait_buf_addf(key, "mount bind %s %s %s %d\n", source, m->target, d, m->rw);
	}
	plait_context_list_release(&l);
	if (r < 0)
		return plait_error_wrap(err, "%s:%d", b->df.filename, in->line), r;
	return 0;
}

static int mount_bind(struct builder *b, size_t idx, const struct plait_df_instr *in,
		      const struct plait_df_mount *m, struct mount_views *v, struct plait_buf *key,
		      struct plait_error **err)
{
	_cleanup_free_ char *path = NULL;
	const char *ndir = m->from && !build_find_stage(b, m->from, idx) ? build_named_dir(b, m->from) : NULL;
	int r;
	if (ndir)
		r = bind_named(ndir, m, key, &path, err);
	else if (m->from)
		r = bind_stage(b, idx, in, m, v, key, &path, err);
	else
		r = bind_context(b, in, m, v, key, &path, err);
	if (r < 0)
		return r;
	struct stat sst;
	if (m->rw && stat(path, &sst) == 0 && S_ISDIR(sst.st_mode)) {
		/* rw: the RUN may write, the writes go to a throwaway overlay. */
		struct plait_snapshot *over = NULL;
		const char *lower[] = { path, NULL };
		r = snapshot_of(b, lower, 1, v, &over, err);
		if (r < 0)
			return r;
		free(path);
		path = xstrdup(plait_snapshot_root(over));
	} else if (m->rw) {
		return build_instr_error(b, in, PLAIT_E_USAGE, err,
					 "--mount=type=bind,rw of a single file is not supported yet; mount its directory");
	}
	build_add_mount(v, &(struct plait_run_mount){ .type = PLAIT_RUN_MOUNT_BIND, .readonly = !m->rw },
			TAKE_PTR(path), xstrdup(m->target));
	return 0;
}

int build_prepare_mount(struct builder *b, struct stage *st, size_t idx, const struct plait_df_instr *in,
			const char *spec, struct mount_views *v, struct plait_buf *key, char ***env,
			struct plait_error **err)
{
	_cleanup_free_ char *copy = NULL;
	int r = build_expand_word(b, st, in, spec, &copy, err);
	if (r < 0)
		return r;
	struct plait_df_mount m;
	r = plait_df_mount_parse(copy, spec, &m, err);
	if (r < 0)
		return plait_error_wrap(err, "%s:%d", b->df.filename, in->line);
	if (m.target && m.target[0] != '/') {
		struct plait_buf t = PLAIT_BUF_INIT;
		build_clean_abs(st->cfg.config.working_dir, m.target, &t);
		free(m.target);
		m.target = plait_buf_detach(&t, NULL);
	}
	switch (m.type) {
	case PLAIT_DF_MOUNT_CACHE:
		r = mount_cache(b, &m, v, key, err);
		break;
	case PLAIT_DF_MOUNT_TMPFS:
		r = mount_tmpfs(&m, v, key);
		break;
	case PLAIT_DF_MOUNT_SECRET:
		r = mount_secret(b, in, &m, v, key, env, err);
		break;
	case PLAIT_DF_MOUNT_SSH:
		r = mount_ssh(b, in, &m, v, key, env, err);
		break;
	default:
		r = mount_bind(b, idx, in, &m, v, key, err);
	}
	plait_df_mount_release(&m);
	return r;
}
