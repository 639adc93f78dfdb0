/* core/cache.c - the build cache directory: layout, lock, step records (see cache.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cache.h"
#include "digest.h"
#include "fs.h"
#include "banned.h"

#define RECORD_MAX (64 * 1024)

char *plait_cache_default_dir(void)
{
	const char *x = getenv("XDG_CACHE_HOME");
	if (x && *x)
		return plait_path_concat(x, "plait");
	const char *home = getenv("HOME");
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/.cache/plait", home && *home ? home : "/root");
	return plait_buf_detach(&b, NULL);
}

char *plait_cache_store_dir(const char *dir)
{
	return plait_path_concat(dir, "store");
}

/* ------------------------------------------------------------ open */

static void clean_work_dir(const char *work)
{
	DIR *d = opendir(work);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *p = plait_path_join(work, de->d_name);
		(void)plait_umount_below(p); /* a snapshot's overlay, if still mounted */
		(void)plait_rm_rf(p);
	}
	closedir(d);
}

int plait_cache_make_private(const char *dir, struct plait_error **err)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open cache directory '%s'",
					     dir);
	if ((st.st_mode & 07777) == 0700)
		return 0;
	/* mkdir() honoured the umask (never looser than 0700); an older cache
	 * (0755 before issue 11) or a hand-made one is tightened. */
	if (fchmod(fd, 0700) == 0)
		return 0;
	int e = errno;
	if (!(st.st_mode & 077))
		return 0; /* e.g. 0500 on a read-only file system: no access to close */
	return plait_error_set_errno(
	    err, PLAIT_E_IO, e,
	    "cache directory '%s' is mode %04o (owner uid %u), open to other users, and cannot be "
	    "made 0700: its owner should run 'chmod 700 %s', or use a --cache-dir of your own",
	    dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, dir);
}

void plait_cache_free(struct plait_cache *c)
{
	if (!c)
		return;
	plait_store_free(c->store);
	plait_tmpdir_remove(&c->run);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	free(c->dir);
	free(c->store_dir);
	free(c->layers_dir);
	free(c->steps_dir);
	free(c->mounts_dir);
	free(c->work_dir);
	free(c);
}

int plait_cache_take_lock(struct plait_cache *c)
{
	return TAKE_FD(c->lock_fd);
}

int plait_cache_open(const char *dir, struct plait_cache **out, struct plait_error **err)
{
	struct plait_cache *c = xcalloc(1, sizeof(*c));
	c->lock_fd = -1;
	c->run = (struct plait_tmpdir)PLAIT_TMPDIR_INIT;
	c->dir = dir ? xstrdup(dir) : plait_cache_default_dir();
	c->store_dir = plait_cache_store_dir(c->dir);
	c->layers_dir = plait_path_concat(c->dir, "layers");
	c->steps_dir = plait_path_concat(c->dir, "steps");
	c->mounts_dir = plait_path_concat(c->dir, "mounts");
	c->work_dir = plait_path_concat(c->dir, "work");
	_cleanup_free_ char *lock = plait_path_concat(c->dir, "lock");
	const char *dirs[] = { c->dir, c->layers_dir, c->steps_dir, c->mounts_dir, c->work_dir };
	int r = 0;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		r = plait_mkdir_p(dirs[i], 0700, NULL);
		if (r < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, r, "cannot create cache directory '%s'",
						  dirs[i]);
			goto fail;
		}
		if ((r = plait_cache_make_private(dirs[i], err)) < 0)
			goto fail;
		/* each layer, snapshot and mount below is a tree of its own */
		if (dirs[i] != c->steps_dir)
			plait_hint_unrelated_subdirs(dirs[i]);
	}
	c->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (c->lock_fd < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s'", lock);
		goto fail;
	}
	/* Alone on the cache: what a crashed build left in work/ (mounted
	 * snapshots, temporary files) belongs to nobody and goes. */
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) == 0)
		clean_work_dir(c->work_dir);
	/* Builds share the cache; `plait cache prune` takes it exclusively. */
	if (flock(c->lock_fd, LOCK_SH) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot lock '%s'", lock);
		goto fail;
	}
	/* What builds killed since left; making our run directory sweeps work/. */
	(void)plait_sweep_stale(c->layers_dir, ".tmp-");
	r = plait_tmpdir_make(c->work_dir, "run-", &c->run, err);
	if (r < 0)
		goto fail;
	c->run_dir = c->run.path;
	r = plait_store_open(c->store_dir, true, &c->store, err);
	if (r < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	plait_cache_free(c);
	*out = NULL;
	return r;
}

/* ------------------------------------------------------------ paths */

char *plait_cache_layer_dir(const struct plait_cache *c, const char *diff_id)
{
	return plait_path_join(c->layers_dir, plait_digest_hex(diff_id));
}

int plait_cache_mount_dir(struct plait_cache *c, const char *id, char **path, bool *fresh,
			  struct plait_error **err)
{
	char h[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(id, strlen(id), h);
	char *dir = plait_path_join(c->mounts_dir, plait_digest_hex(h));
	struct stat st;
	*fresh = stat(dir, &st) < 0;
	int r = plait_mkdir_p(dir, 0755, NULL);
	if (r < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, r, "create cache mount '%s'", dir);
		free(dir);
		return r;
	}
	*path = dir;
	return 0;
}

char *plait_cache_mount_path(const char *cache_dir, const char *id)
{
	char h[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(id, strlen(id), h);
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/mounts/%s", cache_dir, plait_digest_hex(h));
	return plait_buf_detach(&p, NULL);
}

char *plait_cache_mount_lock_path(const struct plait_cache *c, const char *id)
{
	char h[PLAIT_SHA256_DIGEST_SIZE];
	plait_sha256_buf(id, strlen(id), h);
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/mount-%s.lock", c->work_dir, plait_digest_hex(h));
	return plait_buf_detach(&p, NULL);
}

/* ------------------------------------------------------------ step records */

void plait_cache_step_release(struct plait_cache_step *s)
{
	if (!s)
		return;
	free(s->created);
	free(s->source);
	plait_descriptor_release(&s->layer);
	memset(s, 0, sizeof(*s));
}

json_t *plait_cache_step_to_json(const struct plait_cache_step *s)
{
	json_t *o = json_object();
	json_object_set_new(o, "created", json_string(s->created ? s->created : ""));
	if (s->empty) {
		json_object_set_new(o, "empty", json_true());
	} else {
		json_object_set_new(o, "mediaType", json_string(s->layer.media_type));
		json_object_set_new(o, "digest", json_string(s->layer.digest));
		json_object_set_new(o, "size", json_integer(s->layer.size));
		json_object_set_new(o, "diffID", json_string(s->diff_id));
	}
	if (s->source)
		json_object_set_new(o, "imported", json_string(s->source));
	if (s->alias_of[0])
		json_object_set_new(o, "aliasOf", json_string(s->alias_of));
	return o;
}

int plait_cache_step_from_json(const json_t *o, struct plait_cache_step *out)
{
	memset(out, 0, sizeof(*out));
	const char *c = json_is_object(o) ? json_string_value(json_object_get(o, "created")) : NULL;
	if (!c)
		return 0;
	const char *src = json_string_value(json_object_get(o, "imported"));
	const char *alias = json_string_value(json_object_get(o, "aliasOf"));
	if (alias && (!plait_digest_is_sha256(alias) || strlen(alias) + 1 != PLAIT_SHA256_DIGEST_SIZE))
		return 0;
	if (json_is_true(json_object_get(o, "empty"))) {
		out->empty = true;
		out->created = xstrdup(c);
		out->source = xstrdup_or_null(src);
		if (alias)
			memcpy(out->alias_of, alias, PLAIT_SHA256_DIGEST_SIZE);
		return 1;
	}
	const char *mt = json_string_value(json_object_get(o, "mediaType"));
	const char *dg = json_string_value(json_object_get(o, "digest"));
	const char *di = json_string_value(json_object_get(o, "diffID"));
	json_t *sz = json_object_get(o, "size");
	if (!mt || !dg || !di || !json_is_integer(sz) || json_integer_value(sz) < 0 ||
	    plait_digest_validate(dg, NULL) < 0 || !plait_digest_is_sha256(di) ||
	    strlen(di) + 1 != PLAIT_SHA256_DIGEST_SIZE)
		return 0;
	out->created = xstrdup(c);
	out->source = xstrdup_or_null(src);
	if (alias)
		memcpy(out->alias_of, alias, PLAIT_SHA256_DIGEST_SIZE);
	out->layer.media_type = xstrdup(mt);
	memcpy(out->layer.digest, dg, strlen(dg) + 1);
	out->layer.size = json_integer_value(sz);
	memcpy(out->diff_id, di, PLAIT_SHA256_DIGEST_SIZE);
	return 1;
}

char *plait_cache_step_path(const char *cache_dir, const char *key)
{
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/steps/%s", cache_dir, plait_digest_hex(key));
	return plait_buf_detach(&p, NULL);
}

static int write_record(struct plait_cache *c, const char *key, json_t *o)
{
	_cleanup_free_ char *path = plait_path_join(c->steps_dir, plait_digest_hex(key));
	_cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
	return text ? plait_replace_file(path, text, strlen(text)) : -ENOMEM;
}

int plait_cache_step_write(struct plait_cache *c, const char *key, const struct plait_cache_step *s)
{
	json_auto_t *o = plait_cache_step_to_json(s);
	return write_record(c, key, o);
}

int plait_cache_alias_write(struct plait_cache *c, const char *alias, const char *key)
{
	struct plait_cache_step st;
	if (plait_cache_step_lookup(c, key, &st) != 1)
		return 0;
	memcpy(st.alias_of, key, PLAIT_SHA256_DIGEST_SIZE);
	json_auto_t *o = plait_cache_step_to_json(&st);
	plait_cache_step_release(&st);
	int r = write_record(c, alias, o);
	return r < 0 ? r : 1;
}

int plait_cache_alias_lookup(struct plait_cache *c, const char *alias, char key[PLAIT_SHA256_DIGEST_SIZE])
{
	_cleanup_free_ char *path = plait_path_join(c->steps_dir, plait_digest_hex(alias));
	struct plait_cache_step st;
	if (plait_cache_step_read(path, &st) != 1)
		return 0;
	bool is_alias = st.alias_of[0] != '\0';
	if (is_alias)
		memcpy(key, st.alias_of, PLAIT_SHA256_DIGEST_SIZE);
	plait_cache_step_release(&st);
	if (is_alias)
		utimensat(AT_FDCWD, path, NULL, 0); /* used: LRU for cache prune */
	return is_alias;
}

int plait_cache_step_read(const char *path, struct plait_cache_step *out)
{
	memset(out, 0, sizeof(*out));
	struct plait_buf b = PLAIT_BUF_INIT;
	if (plait_buf_read_file(&b, path, RECORD_MAX) < 0) {
		plait_buf_release(&b);
		return 0;
	}
	json_auto_t *o = json_loadb(b.buf, b.len, 0, NULL);
	plait_buf_release(&b);
	return plait_cache_step_from_json(o, out);
}

int plait_cache_step_lookup(struct plait_cache *c, const char *key, struct plait_cache_step *out)
{
	_cleanup_free_ char *path = plait_path_join(c->steps_dir, plait_digest_hex(key));
	if (plait_cache_step_read(path, out) != 1)
		return 0;
	if (!out->empty && plait_store_has(c->store, out->layer.digest, NULL, NULL) != 1) {
		plait_cache_step_release(out);
		return 0; /* pruned */
	}
	utimensat(AT_FDCWD, path, NULL, 0); /* a hit is a use: cache prune is LRU on mtime */
	return 1;
}

/* ------------------------------------------------------------ locks */

int plait_cache_lock_exclusive(int fd, bool wait, const atomic_int *cancel, struct plait_error **err)
{
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (!wait)
			return 0;
		if (cancel && *cancel)
			return plait_error_set(err, PLAIT_E_CANCELLED, "interrupted");
		usleep(20 * 1000);
	}
	return 1;
}

void plait_cache_step_unlock(struct plait_cache_step_lock *l)
{
	if (l->fd < 0)
		return;
	/* Unlinked before it is unlocked: a build that still waits on it finds
	 * the record (or, after a failure, runs the step itself). */
	unlink(l->path);
	close(l->fd);
	l->fd = -1;
	free(l->path);
	l->path = NULL;
}

int plait_cache_step_lock(struct plait_cache *c, const char *key, const atomic_int *cancel,
			  struct plait_cache_step_lock *l, struct plait_error **err)
{
	plait_cache_step_unlock(l);
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "%s/%s.lock", c->work_dir, plait_digest_hex(key));
	for (;;) {
		int fd = open(p.buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			int r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s'", p.buf);
			plait_buf_release(&p);
			return r;
		}
		int r = plait_cache_lock_exclusive(fd, true, cancel, err);
		if (r < 0) {
			close(fd);
			plait_buf_release(&p);
			return r;
		}
		/* Still the file at that name? (its holder unlinks it when done) */
		struct stat a, s;
		if (fstat(fd, &a) == 0 && stat(p.buf, &s) == 0 && a.st_ino == s.st_ino && a.st_dev == s.st_dev) {
			l->fd = fd;
			l->path = plait_buf_detach(&p, NULL);
			return 0;
		}
		close(fd);
	}
}
