/* core/build_commit.c - a step's layer written while the next steps run.
 *
 * After an overlay step its upper directory already is the step's layer in
 * the form the next steps need (an overlay lower); what takes the time is
 * the layer's blob (tar, gzip, two digests) and syncing the tree, and no
 * next step reads those: only the image, a --from of the stage (its key
 * names the stage's layers) and other builds waiting for the step do. So the
 * step hands its upper to the builder's commit thread and the stage goes on
 * at once; the thread, one step at a time in step order, writes the blob,
 * syncs the tree, moves it to layers/<diff_id>, writes the step's record
 * (and the alias of a COPY --from) and only then lets go of the step's lock,
 * so that another build waiting there finds the record and the tree
 * together, as when the step committed in line.
 *
 * Meanwhile the stage holds the layer as pending: its dir is
 * /proc/self/fd/N of a descriptor of the tree, which stays the tree whatever
 * its name becomes, its digests are unknown. The builder's thread takes
 * finished commits in (build_commits_settle(): the digests, the tree's final
 * name, an empty change dropped from the stage) at the next commit, before
 * a stage is read by another (build_stage_ready()), before the image and at
 * the builder's end. A commit that failed fails the build there, naming its
 * step; the commits queued after it are not written (their steps stay
 * unrecorded, their locks released). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build_internal.h"
#include "util.h"
#include "layer.h"
#include "banned.h"

struct build_commit {
	struct build_commit *next;
	struct stage *st;
	size_t history; /* its entry in st->cfg.history */
	char key[PLAIT_SHA256_DIGEST_SIZE];
	char alias[PLAIT_SHA256_DIGEST_SIZE]; /* "" or a second key for the record */
	char *where; /* "Dockerfile:12: writing the layer of 'RUN ...'", for its error */
	char when[PLAIT_RFC3339_MAX];
	struct plait_cache_step_lock lock; /* the step's, from the builder */
	struct plait_layer_options lo;
	struct plait_tmpdir tmp; /* tmp/tree until it moves to layers/<diff_id> */
	char *tree;
	uint64_t complete_ns; /* when the step's tree was all written (plait_now_ns) */
	int tree_fd; /* O_PATH: the stage's dir for the layer meanwhile */
	char **lowers; /* the stage's lowers under it; a pending one through its own descriptor */
	int *fds;
	size_t n_lowers, n_fds;
	/* set by the thread before done */
	bool done;
	int r;
	struct plait_error *err;
	struct plait_layer out;
	char *final_dir; /* where the tree is now */
};

struct build_commits {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t tid;
	bool running, stop, failed;
	struct build_commit *head, *tail; /* not taken in yet, in step order */
	struct build_commit *next;	  /* the first the thread has not started */
	struct plait_store *store;
	struct plait_cache *cache;
	struct build_commit *spent; /* taken in: their tmp dirs go at the end */
	/* When the last syncfs of the trees' file system that succeeded began
	 * (0: none yet). Only the thread (or, without one, the builder's)
	 * writes commits, so one writer. */
	uint64_t synced_from;
};

static void commit_free(struct build_commit *j)
{
	plait_cache_step_unlock(&j->lock);
	plait_tmpdir_remove(&j->tmp);
	free(j->tree);
	free(j->final_dir);
	free(j->where);
	plait_strv_free(j->lowers);
	for (size_t i = 0; i < j->n_fds; i++)
		close(j->fds[i]);
	free(j->fds);
	if (j->tree_fd >= 0)
		close(j->tree_fd);
	plait_error_free(j->err);
	free(j);
}

struct tree_sync {
	const char *tree;
	int r;
	struct plait_error *err;
};

static void *tree_sync_main(void *arg)
{
	struct tree_sync *t = arg;
	t->r = plait_syncfs(t->tree, &t->err);
	return NULL;
}

/* The commit itself, on the thread (or in line): touches no builder state. */
static int commit_write(struct build_commits *c, struct build_commit *j)
{
	/* The overlay was volatile: the tree is synced here, as its unmount
	 * used to. The sync waits on the disk, the blob on the CPU: both at
	 * once (in line when no thread can be had). */
	/* A syncfs that began after the tree was complete (the one of the
	 * commit before, when this step ended while it ran) has written it:
	 * the last steps of a stage, queued together, share one. */
	bool covered = j->complete_ns && c->synced_from > j->complete_ns;
	struct tree_sync ts = { .tree = j->tree };
	pthread_t stid;
	uint64_t sync_t0 = plait_now_ns();
	bool syncing = !covered && pthread_create(&stid, NULL, tree_sync_main, &ts) == 0;
	int r = plait_layer_from_overlay_over(c->store, j->tree, (const char *const *)j->lowers, j->n_lowers,
					      &j->lo, &j->out, &j->err);
	if (syncing)
		pthread_join(stid, NULL);
	else if (!covered)
		tree_sync_main(&ts);
	if (!covered && ts.r >= 0)
		c->synced_from = sync_t0;
	if (r >= 0 && ts.r < 0) {
		r = ts.r;
		j->err = TAKE_PTR(ts.err);
	}
	plait_error_free(ts.err);
	if (r < 0)
		return r;
	struct plait_cache_step rec = { .empty = j->out.n_entries == 0, .created = j->when };
	if (!rec.empty) {
		j->final_dir = plait_cache_layer_dir(c->cache, j->out.diff_id);
		if (rename(j->tree, j->final_dir) < 0) {
			/* another build made the same layer meanwhile: keep ours (a lower
			 * of mounted snapshots, perhaps) until the builder ends */
			if (errno != EEXIST && errno != ENOTEMPTY)
				return plait_error_set_errno(&j->err, PLAIT_E_IO, errno, "cannot move '%s' to '%s'",
							     j->tree, j->final_dir);
			free(j->final_dir);
			j->final_dir = xstrdup(j->tree);
		}
		utimensat(AT_FDCWD, j->final_dir, NULL, 0); /* a use: cache prune is LRU on mtime */
		rec.layer.media_type = (char *)j->out.media_type;
		memcpy(rec.layer.digest, j->out.digest, sizeof(j->out.digest));
		rec.layer.size = j->out.size;
		memcpy(rec.diff_id, j->out.diff_id, sizeof(rec.diff_id));
	}
	plait_cache_step_write(c->cache, j->key, &rec);
	if (j->alias[0])
		(void)plait_cache_alias_write(c->cache, j->alias, j->key);
	return 0;
}

static void commit_run(struct build_commits *c, struct build_commit *j, bool skip)
{
	if (skip)
		j->r = plait_error_set(&j->err, PLAIT_E_GENERIC, "not written: the layer of an earlier step failed");
	else
		j->r = commit_write(c, j);
	/* Others waiting for the step find its record now (or run it themselves). */
	plait_cache_step_unlock(&j->lock);
	for (size_t i = 0; i < j->n_fds; i++)
		close(j->fds[i]);
	j->n_fds = 0;
}

static void *commits_main(void *arg)
{
	struct build_commits *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->next && !c->stop)
			pthread_cond_wait(&c->cond, &c->lock);
		struct build_commit *j = c->next;
		if (!j)
			break;
		bool skip = c->failed;
		pthread_mutex_unlock(&c->lock);
		commit_run(c, j, skip);
		pthread_mutex_lock(&c->lock);
		j->done = true;
		c->failed |= j->r < 0;
		c->next = j->next;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static struct build_commits *commits_of(struct builder *b)
{
	if (!b->commits) {
		struct build_commits *c = xcalloc(1, sizeof(*c));
		pthread_mutex_init(&c->lock, NULL);
		pthread_cond_init(&c->cond, NULL);
		c->store = b->store;
		c->cache = b->cache;
		/* The descriptors that name pending trees need /proc; without it
		 * (or a thread) every commit is written in line. */
		c->running = access("/proc/self/fd", X_OK) == 0 &&
			     pthread_create(&c->tid, NULL, commits_main, c) == 0;
		b->commits = c;
	}
	return b->commits;
}

/* Take the finished commit j in: its layer gets its digests and final dir
 * (or leaves the stage, an empty change); j goes to the spent list. */
static int take_in(struct builder *b, struct build_commit *j, struct plait_error **err)
{
	struct build_commits *c = b->commits;
	c->head = j->next;
	if (!c->head)
		c->tail = NULL;
	j->next = c->spent;
	c->spent = j;
	struct stage *st = j->st;
	size_t i = 0;
	while (i < st->n_layers && st->layers[i].pending != j)
		i++;
	if (j->r < 0) {
		if (err && !*err) {
			*err = TAKE_PTR(j->err);
			plait_error_wrap(err, "%s", j->where);
		}
		return j->r;
	}
	if (i == st->n_layers) /* cannot happen: a pending layer leaves only here */
		return 0;
	struct layer_ref *l = &st->layers[i];
	if (j->out.n_entries == 0) {
		layer_ref_release(l);
		memmove(l, l + 1, (st->n_layers - i - 1) * sizeof(*l));
		st->n_layers--;
		st->cfg.history[j->history].empty_layer = true;
	} else {
		l->desc.media_type = xstrdup(j->out.media_type);
		memcpy(l->desc.digest, j->out.digest, sizeof(j->out.digest));
		l->desc.size = j->out.size;
		memcpy(l->diff_id, j->out.diff_id, sizeof(l->diff_id));
		free(l->dir);
		l->dir = xstrdup(j->final_dir);
		l->pending = NULL;
	}
	/* the config's diff_ids are the stage's layers, one for one */
	plait_strv_free(st->cfg.diff_ids);
	st->cfg.diff_ids = xcalloc(st->n_layers + 1, sizeof(char *));
	for (size_t k = 0; k < st->n_layers; k++)
		st->cfg.diff_ids[k] = xstrdup(st->layers[k].diff_id);
	close(j->tree_fd);
	j->tree_fd = -1;
	return 0;
}

/* Take in every finished commit at the head, in order; the first error. */
static int take_in_done(struct builder *b, struct plait_error **err)
{
	struct build_commits *c = b->commits;
	int r = 0;
	for (;;) {
		pthread_mutex_lock(&c->lock);
		struct build_commit *j = c->head && c->head->done ? c->head : NULL;
		pthread_mutex_unlock(&c->lock);
		if (!j)
			return r;
		int q = take_in(b, j, err);
		if (q < 0 && r >= 0)
			r = q;
	}
}

int build_commits_settle(struct builder *b, const struct stage *st, struct plait_error **err)
{
	struct build_commits *c = b->commits;
	if (!c)
		return 0;
	/* The last commit to wait for: st's newest pending layer, or every one. */
	struct build_commit *until = NULL;
	if (st) {
		for (size_t i = 0; i < st->n_layers; i++)
			if (st->layers[i].pending)
				until = st->layers[i].pending;
	} else {
		until = c->tail;
	}
	pthread_mutex_lock(&c->lock);
	while (until && !until->done)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	return take_in_done(b, err);
}

int build_commit_behind(struct builder *b, struct stage *st, struct plait_snapshot *snap, const char *key,
			const char *alias, const char *created_by, const struct plait_df_instr *in,
			struct plait_error **err)
{
	struct build_commits *c = commits_of(b);
	/* What is done already comes in first; an earlier step's failed layer
	 * ends the build here. */
	int r = take_in_done(b, err);
	if (r < 0)
		return r;
	struct build_commit *j = xcalloc(1, sizeof(*j));
	j->tree_fd = -1;
	j->tmp = (struct plait_tmpdir)PLAIT_TMPDIR_INIT;
	j->lock = (struct plait_cache_step_lock)PLAIT_CACHE_STEP_LOCK_INIT;
	r = plait_tmpdir_make(b->cache->layers_dir, ".tmp-", &j->tmp, err);
	if (r >= 0) {
		struct plait_error *te = NULL;
		j->tree = plait_path_join(j->tmp.path, "tree");
		r = plait_snapshot_take_upper(snap, j->tree, &te);
		if (r < 0 && te && te->errnum == EBUSY) {
			/* still mounted, the upper in place: the caller commits in line */
			plait_error_free(te);
			commit_free(j);
			return 1;
		}
		if (r < 0)
			plait_error_move(err, te);
		else if (r == 0) /* a fresh directory cannot hold it already */
			r = plait_error_set(err, PLAIT_E_IO, "'%s' exists", j->tree);
		else
			j->complete_ns = plait_now_ns(); /* the step is over, its overlay unmounted */
	}
	if (r >= 0 && (j->tree_fd = open(j->tree, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot open '%s'", j->tree);
	if (r < 0) {
		commit_free(j);
		return r;
	}
	j->st = st;
	memcpy(j->key, key, PLAIT_SHA256_DIGEST_SIZE);
	if (alias)
		memcpy(j->alias, alias, PLAIT_SHA256_DIGEST_SIZE);
	struct plait_buf w = PLAIT_BUF_INIT;
	build_where(b, in, &w);
	const char *text = in->original ? in->original : "";
	size_t tl = strlen(text);
	if (tl > 60) { /* cut at a character's start: messages go to JSON too */
		tl = 57;
		while (tl && ((unsigned char)text[tl] & 0xc0) == 0x80)
			tl--;
	}
	plait_buf_addf(&w, ": writing the layer of '%.*s%s'", (int)tl, text, text[tl] ? "..." : "");
	j->where = plait_buf_detach(&w, NULL);
	plait_rfc3339_now_or(b->o->have_epoch, b->o->source_date_epoch, j->when);
	j->lock = b->step_lock;
	b->step_lock = (struct plait_cache_step_lock)PLAIT_CACHE_STEP_LOCK_INIT;
	build_layer_options(b, st, &j->lo);
	j->lowers = xcalloc(st->n_layers + 1, sizeof(char *));
	j->fds = xcalloc(st->n_layers + 1, sizeof(int));
	for (size_t i = 0; i < st->n_layers; i++) {
		const struct layer_ref *l = &st->layers[i];
		int fd = l->pending ? fcntl(l->pending->tree_fd, F_DUPFD_CLOEXEC, 3) : -1;
		if (l->pending && fd < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "cannot duplicate a descriptor");
			commit_free(j);
			return r;
		}
		if (fd >= 0) {
			j->fds[j->n_fds++] = fd;
			struct plait_buf p = PLAIT_BUF_INIT;
			plait_buf_addf(&p, "/proc/self/fd/%d", fd);
			j->lowers[i] = plait_buf_detach(&p, NULL);
		} else {
			j->lowers[i] = xstrdup(l->dir);
		}
		j->n_lowers++;
	}

	/* The stage goes on with the layer pending. */
	struct layer_ref l = { .pending = j };
	struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&p, "/proc/self/fd/%d", j->tree_fd);
	l.dir = plait_buf_detach(&p, NULL);
	stage_add_layer(st, &l);
	stage_add_history(b, st, created_by, false, j->when);
	j->history = st->cfg.n_history - 1;
	memcpy(st->key, key, PLAIT_SHA256_DIGEST_SIZE);
	build_note_key(b, st, key);
	if (alias)
		build_note_key(b, st, alias);

	pthread_mutex_lock(&c->lock);
	if (c->tail)
		c->tail->next = j;
	else
		c->head = j;
	c->tail = j;
	if (c->running && !c->next)
		c->next = j;
	pthread_cond_broadcast(&c->cond);
	bool in_line = !c->running;
	pthread_mutex_unlock(&c->lock);
	if (in_line) {
		commit_run(c, j, c->failed);
		c->failed |= j->r < 0;
		j->done = true;
		return build_commits_settle(b, NULL, err);
	}
	return 0;
}

void build_commits_release(struct builder *b)
{
	struct build_commits *c = b->commits;
	if (!c)
		return;
	if (c->running) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->tid, NULL);
	}
	while (c->head) {
		struct build_commit *j = c->head;
		c->head = j->next;
		commit_free(j);
	}
	while (c->spent) {
		struct build_commit *j = c->spent;
		c->spent = j->next;
		commit_free(j);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
	b->commits = NULL;
}
