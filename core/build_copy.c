/* core/build_copy.c - COPY and ADD: the instructions (sources from the
 * context, a named context, a stage or an image, URLs, heredocs; their cache
 * key) and writing into a snapshot root. Every path under the root is opened
 * with openat2(RESOLVE_IN_ROOT), so a symlink in the image ("/usr/lib -> lib",
 * or a hostile "/etc -> /host/etc") resolves inside it. */
#include <errno.h>
#include <fcntl.h>
#include <strings.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <archive.h>

#include "build_internal.h"
#include "expand.h"
#include "unpack.h"
#include "banned.h"

static int open_in_root(int rootfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.mode = (flags & O_CREAT) ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	while (*rel == '/')
		rel++;
	if (!*rel)
		rel = ".";
	long fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

/* Open (creating as needed, mode 0755) the directory at rel inside root. */
static int mkdirs_depth(int rootfd, const char *rel, const struct copy_attrs *a, bool own_new, int depth,
			int *fd_out, struct plait_error **err);

/* A dangling symlink on the way to a destination is followed inside the
 * root and its target made, as BuildKit does (ln -s /target /link, then
 * ADD x /link/sub/ makes /target/sub). dfd holds the link's directory,
 * parent its path below the root. */
static int make_link_target(int rootfd, int dfd, const char *parent, const char *name, const struct copy_attrs *a,
			    bool own_new, int depth, struct plait_error **err)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
		return -ENOTDIR;
	if (depth >= 40)
		return -ELOOP;
	char buf[PATH_MAX];
	ssize_t n = readlinkat(dfd, name, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	struct plait_buf joined = PLAIT_BUF_INIT, clean = PLAIT_BUF_INIT;
	if (buf[0] == '/')
		plait_buf_adds(&joined, buf);
	else
		plait_buf_addf(&joined, "/%s/%s", parent, buf);
	plait_path_clean(joined.buf, &clean); /* ".." stops at the root */
	int fd = -1;
	int r = mkdirs_depth(rootfd, clean.buf, a, own_new, depth + 1, &fd, err);
	if (fd >= 0)
		close(fd);
	plait_buf_release(&joined);
	plait_buf_release(&clean);
	return r < 0 ? -EEXIST : 0;
}

static int mkdirs_in_root(int rootfd, const char *rel, const struct copy_attrs *a, bool own_new,
			  int *fd_out, struct plait_error **err)
{
	return mkdirs_depth(rootfd, rel, a, own_new, 0, fd_out, err);
}

static int mkdirs_depth(int rootfd, const char *rel, const struct copy_attrs *a, bool own_new, int depth,
			int *fd_out, struct plait_error **err)
{
	struct plait_buf prefix = PLAIT_BUF_INIT;
	int dfd = open_in_root(rootfd, ".", O_PATH | O_DIRECTORY, 0);
	int r = dfd < 0 ? dfd : 0;
	const char *p = rel;
	while (r >= 0 && *p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		size_t n = strcspn(p, "/");
		if (prefix.len)
			plait_buf_addch(&prefix, '/');
		plait_buf_add(&prefix, p, n);
		p += n;
		int next = open_in_root(rootfd, prefix.buf, O_PATH | O_DIRECTORY, 0);
		if (next == -ENOENT) {
			/* Create it in the directory we already hold (resolved inside root). */
			_cleanup_free_ char *name = xstrndup(p - n, n);
			bool exists = false;
			if (mkdirat(dfd, name, 0755) < 0) {
				if (errno != EEXIST) {
					r = -errno;
					break;
				}
				exists = true;
			}
			if (exists) {
				_cleanup_free_ char *parent = xstrndup(prefix.buf, prefix.len - n);
				int lr = make_link_target(rootfd, dfd, parent, name, a, own_new, depth, err);
				if (lr == -ELOOP) {
					r = lr;
					break;
				}
				if (lr == -EEXIST) { /* err already says what */
					close(dfd);
					plait_buf_release(&prefix);
					return -PLAIT_E_IO;
				}
			}
			next = open_in_root(rootfd, prefix.buf, O_PATH | O_DIRECTORY, 0);
			if (next >= 0 && own_new && a->chown)
				fchownat(next, "", a->uid, a->gid, AT_EMPTY_PATH);
		}
		if (next < 0) {
			r = next;
			break;
		}
		close(dfd);
		dfd = next;
	}
	if (r < 0) {
		if (dfd >= 0)
			close(dfd);
		r = plait_error_set_errno(err, PLAIT_E_IO, r, "create directory '/%s'", prefix.buf);
		plait_buf_release(&prefix);
		return r;
	}
	plait_buf_release(&prefix);
	*fd_out = dfd;
	return 0;
}

int build_mkdir_in_root(const char *root, const char *path, const struct copy_attrs *owner,
			struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", root);
	static const struct copy_attrs none = { 0 };
	int fd = -1;
	int r = mkdirs_in_root(rootfd, path, owner ? owner : &none, owner != NULL, &fd, err);
	if (fd >= 0)
		close(fd);
	return r;
}

static void split_parent(const char *path, struct plait_buf *parent, const char **base)
{
	const char *slash = strrchr(path, '/');
	if (slash) {
		plait_buf_add(parent, path, (size_t)(slash - path));
		*base = slash + 1;
	} else {
		*base = path;
	}
}

/* copy_file_range cannot cross file systems (overlay upper vs context): once
 * it said so, go straight to read/write. */
static int no_copy_range;

/* Make room for a new entry called base in dirfd: an existing file or link
 * goes; an existing directory stays when a directory is wanted. */
static int clear_slot(int dirfd, const char *base, bool want_dir)
{
	struct stat st;
	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode))
		return want_dir ? 1 : -EISDIR;
	if (unlinkat(dirfd, base, 0) < 0)
		return -errno;
	return 0;
}

static void owner_for(const struct copy_attrs *a, const struct plait_context_entry *e, uid_t *uid,
		      gid_t *gid)
{
	if (a->chown) {
		*uid = a->uid;
		*gid = a->gid;
	} else if (a->keep_owner && e) {
		*uid = e->uid;
		*gid = e->gid;
	} else {
		*uid = 0;
		*gid = 0;
	}
}

/* Filling the regular files a COPY creates. put_entry makes each file (its
 * name, in order, on the calling thread: directory mtimes, replacements and
 * hard links stay as a serial copy makes them) and hands the new file's fd to
 * a filler, which opens the source, copies the bytes and sets the file's
 * owner, mode and time through the fd. A COPY of thousands of small files is
 * syscall-bound; two fillers beside the walker use both cores of a small CI
 * machine. Without fillers (one CPU, a short list) put_entry fills in line. */
#define FILL_RING 64
#define FILL_MIN_FILES 64

struct fill_job {
	int out; /* the new file, opened for writing */
	const struct plait_context_entry *e;
	uid_t uid;
	gid_t gid;
	mode_t perm;
	char *target; /* for messages */
};

struct filler {
	pthread_mutex_t mu;
	pthread_cond_t can_put, can_take;
	struct fill_job ring[FILL_RING];
	size_t head, n;
	bool done;
	int code; /* the first failure's code (positive); 0 while all went well */
	pthread_t tids[2];
	size_t n_tids;
	struct plait_context *src;
	const char *what;
	struct plait_error *err; /* the first failure; later jobs are dropped */
};

/* Fill one new file: the source's bytes, then owner, mode (after the owner:
 * fchown clears set-id bits) and time. */
static int fill_file(struct plait_context *src, const struct fill_job *j, const char *what,
		     struct plait_error **err)
{
	_cleanup_close_ int in = -1;
	int r = plait_context_open_entry(src, j->e, &in, err);
	if (r < 0)
		return plait_error_wrap(err, "%s", what);
	int cr = plait_copy_fd(in, j->out, &no_copy_range, NULL);
	if (cr < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, cr, "%s: copy '%s'", what, j->e->path);
	if (fchown(j->out, j->uid, j->gid) < 0 || fchmod(j->out, j->perm) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: set owner of '%s'", what, j->target);
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT },
				     { .tv_sec = j->e->mtime_sec, .tv_nsec = j->e->mtime_nsec } };
	if (futimens(j->out, times) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: set the time of '%s'", what, j->target);
	return 0;
}

static void *filler_main(void *arg)
{
	struct filler *f = arg;
	pthread_mutex_lock(&f->mu);
	for (;;) {
		while (!f->n && !f->done)
			pthread_cond_wait(&f->can_take, &f->mu);
		if (!f->n)
			break;
		struct fill_job j = f->ring[f->head];
		f->head = (f->head + 1) % FILL_RING;
		f->n--;
		bool skip = f->code != 0;
		pthread_cond_signal(&f->can_put);
		pthread_mutex_unlock(&f->mu);
		struct plait_error *e = NULL;
		if (!skip)
			(void)fill_file(f->src, &j, f->what, &e);
		close(j.out);
		free(j.target);
		pthread_mutex_lock(&f->mu);
		if (e && !f->code) {
			f->code = e->code ? e->code : PLAIT_E_IO;
			f->err = TAKE_PTR(e);
			pthread_cond_broadcast(&f->can_put);
		}
		plait_error_free(e);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/* The first failure, into err (once: later calls give the code alone). */
static int filler_failed(struct filler *f, struct plait_error **err)
{
	if (err && f->err) {
		plait_error_move(err, TAKE_PTR(f->err));
	}
	return -f->code;
}

/* Start up to two fillers when the list has enough regular files and the
 * machine more than one CPU; false: fill in line. */
static bool filler_start(struct filler *f, struct plait_context *src, const struct plait_context_list *l,
			 const char *what)
{
	size_t files = 0;
	for (size_t i = 0; i < l->n_entries && files < FILL_MIN_FILES; i++)
		files += S_ISREG(l->entries[i].mode);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (files < FILL_MIN_FILES || cpus < 2)
		return false;
	*f = (struct filler){ .src = src, .what = what };
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->can_put, NULL);
	pthread_cond_init(&f->can_take, NULL);
	for (size_t i = 0; i < 2; i++)
		if (pthread_create(&f->tids[f->n_tids], NULL, filler_main, f) == 0)
			f->n_tids++;
	if (!f->n_tids) {
		pthread_cond_destroy(&f->can_take);
		pthread_cond_destroy(&f->can_put);
		pthread_mutex_destroy(&f->mu);
		return false;
	}
	return true;
}

/* Queue a new file (f takes out); blocks while the ring is full. Returns the
 * first filler failure, if any, so that the walk stops. */
static int filler_put(struct filler *f, struct fill_job *j, struct plait_error **err)
{
	pthread_mutex_lock(&f->mu);
	while (f->n == FILL_RING && !f->code)
		pthread_cond_wait(&f->can_put, &f->mu);
	if (f->code) {
		pthread_mutex_unlock(&f->mu);
		close(j->out);
		free(j->target);
		return filler_failed(f, err);
	}
	f->ring[(f->head + f->n) % FILL_RING] = *j;
	f->n++;
	pthread_cond_signal(&f->can_take);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/* Wait until every queued file is filled (the hard links made to them see
 * their final content and metadata), then stop the fillers. Returns the first
 * failure. */
static int filler_finish(struct filler *f, struct plait_error **err)
{
	pthread_mutex_lock(&f->mu);
	f->done = true;
	pthread_cond_broadcast(&f->can_take);
	pthread_mutex_unlock(&f->mu);
	for (size_t i = 0; i < f->n_tids; i++)
		pthread_join(f->tids[i], NULL);
	pthread_cond_destroy(&f->can_take);
	pthread_cond_destroy(&f->can_put);
	pthread_mutex_destroy(&f->mu);
	int r = f->code ? filler_failed(f, err) : 0;
	plait_error_free(f->err);
	f->err = NULL;
	return r;
}

/* The directory the previous entry went into: entries come sorted, so most
 * share it, and resolving it again from the root for each costs a walk. */
struct parent_cache {
	struct plait_buf path;
	int fd;
	/* Files of the source with other hard links: the first copy of each
	 * (an fd of it), so the others become links to it, as BuildKit keeps
	 * hard links among the files one COPY copies. */
	struct copied_inode {
		dev_t dev;
		ino_t ino;
		int fd;
	} *links;
	size_t n_links;
	struct filler *fill; /* NULL: regular files are filled in line */
};

static int copied_fd(const struct parent_cache *pc, const struct plait_context_entry *e)
{
	for (size_t i = 0; e->nlink > 1 && i < pc->n_links; i++)
		if (pc->links[i].dev == e->dev && pc->links[i].ino == e->ino)
			return pc->links[i].fd;
	return -1;
}

static int put_entry(int rootfd, struct plait_context *src, const struct plait_context_entry *e,
		     const char *target, const struct copy_attrs *a, const char *what,
		     struct parent_cache *pc, struct plait_error **err)
{
	struct plait_buf parent = PLAIT_BUF_INIT;
	const char *base;
	split_parent(target, &parent, &base);
	int r = 0;
	if (pc->fd < 0 || !streq(pc->path.buf, parent.buf)) {
		if (pc->fd >= 0)
			close(pc->fd);
		pc->fd = -1;
		r = mkdirs_in_root(rootfd, parent.buf, a, true, &pc->fd, err);
		plait_buf_reset(&pc->path);
		plait_buf_adds(&pc->path, parent.buf);
	}
	plait_buf_release(&parent);
	if (r < 0)
		return plait_error_wrap(err, "%s", what), r;
	int dirfd = pc->fd;
	uid_t uid;
	gid_t gid;
	owner_for(a, e, &uid, &gid);
	mode_t perm = a->chmod ? a->mode : (e->mode & 07777);
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT },
				     { .tv_sec = e->mtime_sec, .tv_nsec = e->mtime_nsec } };

	if (!*base) {
		/* the root itself: only its metadata */
		if (a->chown)
			fchownat(dirfd, "", uid, gid, AT_EMPTY_PATH);
		goto out;
	}
	if (S_ISDIR(e->mode)) {
		/* A directory that exists (also through a symlink inside the root,
		 * as /lib -> usr/lib on merged-usr images) is written into, and
		 * keeps its own owner and mode unless --chown/--chmod say otherwise. */
		int existing = open_in_root(rootfd, target, O_RDONLY | O_DIRECTORY, 0);
		if (existing >= 0) {
			if (a->chown && fchown(existing, uid, gid) < 0)
				r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: set owner of '%s'", what, target);
			if (r >= 0 && a->chmod && fchmod(existing, perm) < 0)
				r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: set mode of '%s'", what, target);
			close(existing);
			goto out;
		}
	}
	/* A new regular file is created first, without a look-up: most names a
	 * COPY writes do not exist yet (EEXIST: make room as for any other). */
	int made = -1;
	if (S_ISREG(e->mode) && copied_fd(pc, e) < 0)
		made = openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int c = made >= 0 ? 0 : clear_slot(dirfd, base, S_ISDIR(e->mode));
	if (c == -EISDIR) {
		/* BuildKit refuses it too ("cannot replace to directory") */
		r = plait_error_set(err, PLAIT_E_USAGE,
				    "%s: cannot replace the directory '/%s' with the %s '%s' from the source: "
				    "remove the directory first (RUN rm -r) or leave it out of the source",
				    what, target, S_ISLNK(e->mode) ? "symlink" : "file", e->path);
		goto out;
	}
	if (c < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, c, "%s: cannot replace '%s'", what, target);
		goto out;
	}
	if (S_ISDIR(e->mode)) {
		if (c == 0 && mkdirat(dirfd, base, perm) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: create '%s'", what, target);
			goto out;
		}
		fchownat(dirfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
		fchmodat(dirfd, base, perm, 0);
	} else if (S_ISLNK(e->mode)) {
		if (symlinkat(e->link_target ? e->link_target : "", dirfd, base) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: create '%s'", what, target);
			goto out;
		}
		fchownat(dirfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
	} else if (S_ISREG(e->mode) && copied_fd(pc, e) >= 0 &&
		   linkat(copied_fd(pc, e), "", dirfd, base, AT_EMPTY_PATH) == 0) {
		/* a hard link of a file this COPY made: the same inode, its owner,
		 * mode and time already set (where linking is refused, e.g. in a user
		 * namespace without CAP_DAC_READ_SEARCH, the file is copied instead) */
		goto out;
	} else if (S_ISREG(e->mode)) {
		int fd = made >= 0 ? made : openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: create '%s'", what, target);
			goto out;
		}
		if (e->nlink > 1 && copied_fd(pc, e) < 0) {
			pc->links = xrealloc(pc->links, (pc->n_links + 1) * sizeof(*pc->links));
			pc->links[pc->n_links++] = (struct copied_inode){ e->dev, e->ino, fcntl(fd, F_DUPFD_CLOEXEC, 3) };
		}
		struct fill_job j = { .out = fd, .e = e, .uid = uid, .gid = gid, .perm = perm };
		if (pc->fill) {
			j.target = xstrdup(target);
			r = filler_put(pc->fill, &j, err);
		} else {
			j.target = (char *)target;
			r = fill_file(src, &j, what, err);
			close(fd);
		}
		goto out; /* the time is the filler's too */
	} else {
		/* fifos and devices, as docker copies them */
		if (mknodat(dirfd, base, (e->mode & S_IFMT) | perm, e->rdev) < 0) {
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: create '%s'", what, target);
			goto out;
		}
		fchownat(dirfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
	}
	utimensat(dirfd, base, times, AT_SYMLINK_NOFOLLOW);
out:
	return r;
}

static bool dir_exists_in_root(int rootfd, const char *path)
{
	int fd = open_in_root(rootfd, path, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static bool symlink_in_root(int rootfd, const char *path)
{
	struct plait_buf parent = PLAIT_BUF_INIT;
	const char *base;
	split_parent(path, &parent, &base);
	bool yes = false;
	int pfd = *base ? open_in_root(rootfd, parent.len ? parent.buf : "/", O_PATH | O_DIRECTORY, 0) : -1;
	struct stat st;
	if (pfd >= 0) {
		yes = fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
		close(pfd);
	}
	plait_buf_release(&parent);
	return yes;
}

static bool nondir_exists_in_root(int rootfd, const char *path)
{
	int fd = open_in_root(rootfd, path, O_PATH, 0);
	if (fd < 0)
		return false;
	struct stat st;
	bool yes = fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode);
	close(fd);
	return yes;
}

int build_copy_into(const char *root, struct plait_context *src, const struct plait_context_list *l,
		    const char *dest, bool dest_is_dir, const struct copy_attrs *a, const char *what,
		    const bool *skip_source, struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", root);
	struct parent_cache pc = { PLAIT_BUF_INIT, -1 };
	struct filler fill;
	if (filler_start(&fill, src, l, what))
		pc.fill = &fill;
	int r = 0;

	for (size_t s = 0; s < l->n_sources; s++) {
		const struct plait_context_source *so = &l->sources[s];
		if (skip_source && skip_source[s])
			continue;
		/* "COPY a.txt /dir" into an existing directory means /dir/a.txt.
		 * Without a trailing '/', BuildKit copies each source in turn as if
		 * it were alone, so the test is made again for every source
		 * ("COPY a b /x": /x is a, then b; "COPY dir a /x": /x/a). */
		/* dest itself a dangling symlink: followed, its target made (as
		 * BuildKit), when a directory is copied or dest ends in '/'. */
		if ((dest_is_dir || S_ISDIR(l->entries[so->first].mode)) && !a->parents &&
		    !dir_exists_in_root(rootfd, dest) && symlink_in_root(rootfd, dest)) {
			int fd = -1;
			r = mkdirs_in_root(rootfd, dest, a, true, &fd, err);
			if (fd >= 0)
				close(fd);
			if (r < 0) {
				plait_error_wrap(err, "%s", what);
				goto out;
			}
		}
		bool into = dest_is_dir || dir_exists_in_root(rootfd, dest);
		if (!into && !a->parents && S_ISDIR(l->entries[so->first].mode) &&
		    nondir_exists_in_root(rootfd, dest)) {
			/* BuildKit refuses this too ("cannot copy to non-directory") */
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "%s: cannot copy directory '%s' to '%s': that is a file (an "
					    "earlier source or the image made it); give a directory "
					    "destination",
					    what, *so->name ? so->name : ".", dest);
			goto out;
		}
		if (pc.fd >= 0) { /* the previous source may have made dest */
			close(pc.fd);
			pc.fd = -1;
			plait_buf_reset(&pc.path);
		}
		for (size_t i = so->first; i < so->first + so->count; i++) {
			const struct plait_context_entry *e = &l->entries[i];
			bool src_is_dir = S_ISDIR(l->entries[so->first].mode);
			/* --exclude: the patterns match below the source, as BuildKit's do */
			if (a->exclude && *e->rel && plait_ignore_match(a->exclude, e->rel))
				continue;
			struct plait_buf target = PLAIT_BUF_INIT;
			/* dest without leading '/', then what goes below it */
			const char *d = dest;
			while (*d == '/')
				d++;
			plait_buf_adds(&target, d);
			while (target.len && target.buf[target.len - 1] == '/')
				plait_buf_setlen(&target, target.len - 1);
			if (a->parents) {
				/* --parents: the source's own path is kept below dest */
				plait_buf_addf(&target, "%s%s", target.len ? "/" : "", so->name);
				if (*e->rel)
					plait_buf_addf(&target, "/%s", e->rel);
			} else if (src_is_dir) {
				/* a directory's contents go into dest */
				if (*e->rel)
					plait_buf_addf(&target, "%s%s", target.len ? "/" : "", e->rel);
			} else if (into) {
				const char *b = strrchr(so->name, '/');
				plait_buf_addf(&target, "%s%s", target.len ? "/" : "", b ? b + 1 : so->name);
			}
			/* A directory source's own entry is dest itself. As BuildKit
			 * does, an existing directory there is left as it is (owner,
			 * mode), and a new one gets --chown but not --chmod. */
			const struct copy_attrs *ea = a;
			struct copy_attrs top;
			if (src_is_dir && !a->parents && !*e->rel) {
				if (dir_exists_in_root(rootfd, target.len ? target.buf : "/")) {
					plait_buf_release(&target);
					continue;
				}
				top = *a;
				top.chmod = false;
				ea = &top;
			}
			r = put_entry(rootfd, src, e, target.buf, ea, what, &pc, err);
			plait_buf_release(&target);
			if (r < 0)
				goto out;
		}
	}
out:
	if (pc.fill) {
		int fr = filler_finish(pc.fill, r < 0 ? NULL : err);
		if (r >= 0)
			r = fr;
	}
	if (pc.fd >= 0)
		close(pc.fd);
	for (size_t i = 0; i < pc.n_links; i++)
		if (pc.links[i].fd >= 0)
			close(pc.links[i].fd);
	free(pc.links);
	plait_buf_release(&pc.path);
	return r;
}

bool build_is_archive(int fd)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	_cleanup_close_ int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	bool yes = false;
	if (dup >= 0 && lseek(dup, 0, SEEK_SET) == 0 && archive_read_open_fd(a, dup, 1 << 16) == ARCHIVE_OK) {
		struct archive_entry *e;
		yes = archive_read_next_header(a, &e) == ARCHIVE_OK;
	}
	archive_read_free(a);
	if (dup >= 0)
		lseek(dup, 0, SEEK_SET); /* shares the offset with fd */
	return yes;
}

int build_extract_into(const char *root, int fd, const char *dest, const struct copy_attrs *a,
		       const char *what, size_t *devices_skipped, struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", root);
	int dirfd = -1;
	int r = mkdirs_in_root(rootfd, dest, a, a->chown, &dirfd, err);
	if (r < 0)
		return r;
	/* The destination as resolved inside the root; the unpacker resolves every
	 * member inside it in turn. */
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/self/fd/%d", dirfd);
	_cleanup_close_ int real = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(dirfd);
	if (real < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: open '%s'", what, dest);
	snprintf(dir, sizeof(dir), "/proc/self/fd/%d", real);
	/* An archive, not a layer: its ".wh." members are files, not deletions. */
	struct plait_unpack_options uo = { .mode = PLAIT_UNPACK_PLAIN, .devices_skipped = devices_skipped };
	r = plait_unpack_fd(fd, dir, &uo, NULL, err);
	if (r < 0)
		plait_error_wrap(err, "%s: extract into '%s'", what, dest);
	return r;
}

/* A new file dest inside root (parents made as needed), owned and moded per a
 * (default mode def_mode), filled from data or, when data is NULL, from fd. */
static int write_new_file(const char *root, const char *dest, const void *data, size_t len, int fd,
			  int64_t mtime, const struct copy_attrs *a, mode_t def_mode, const char *what,
			  struct plait_error **err)
{
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "open '%s'", root);
	struct plait_buf parent = PLAIT_BUF_INIT;
	const char *base;
	split_parent(dest, &parent, &base);
	_cleanup_close_ int dirfd = -1;
	int r = mkdirs_in_root(rootfd, parent.buf, a, true, &dirfd, err);
	plait_buf_release(&parent);
	if (r < 0)
		return r;
	int c = clear_slot(dirfd, base, false);
	_cleanup_close_ int out = c < 0 ? -1 : openat(dirfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, c < 0 ? c : errno, "%s: create '%s'", what, dest);
	uid_t uid;
	gid_t gid;
	owner_for(a, NULL, &uid, &gid);
	int w = data ? plait_write_all(out, data, len) : plait_copy_fd(fd, out, &no_copy_range, NULL);
	if (w < 0 || fchown(out, uid, gid) < 0 || fchmod(out, a->chmod ? a->mode : def_mode) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, w < 0 ? w : errno, "%s: write '%s'", what, dest);
	struct timespec times[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_sec = (time_t)mtime } };
	if (mtime >= 0 && futimens(out, times) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "%s: set the time of '%s'", what, dest);
	return 0;
}

int build_write_file_into(const char *root, const char *dest, const char *data, size_t len,
			  const struct copy_attrs *a, const char *what, struct plait_error **err)
{
	return write_new_file(root, dest, data, len, -1, -1, a, 0644, what, err);
}

int build_write_fd_into(const char *root, const char *dest, int fd, int64_t mtime, const struct copy_attrs *a,
			const char *what, struct plait_error **err)
{
	return write_new_file(root, dest, NULL, 0, fd, mtime, a, 0600, what, err);
}

/* ------------------------------------------------------------ the COPY and ADD instructions */

/* Look a stage root up as a context for COPY --from: a read-only view. */
static int stage_view(struct builder *b, struct stage *from, struct plait_snapshot **snap,
		      struct plait_context **ctx, struct plait_error **err)
{
	int r = build_snapshot_of_stage(b, from, snap, err);
	if (r < 0)
		return r;
	return plait_context_open_with_ignore(plait_snapshot_root(*snap), NULL, ctx, err);
}

struct url_source {
	char digest[PLAIT_SHA256_DIGEST_SIZE];
	int64_t mtime; /* the server's Last-Modified, -1 when none: the file's time, as in BuildKit */
	char name[256]; /* the file name the URL's path ends with */
};

/* Fetch an ADD URL into the store, checked against --checksum when given. */
static int fetch_source(struct builder *b, const struct plait_df_instr *in, const char *url,
			const char *checksum, struct url_source **urls, size_t *n, struct plait_error **err)
{
	if (!b->o->resolver || !b->o->resolver->fetch_url)
		return build_instr_error(b, in, PLAIT_E_USAGE, err, "ADD %s: no way to fetch URLs here", url);
	if (checksum && plait_digest_validate(checksum, NULL) < 0)
		return build_instr_error(b, in, PLAIT_E_USAGE, err,
				   "ADD --checksum=%s: give a digest such as sha256:<64 hex>", checksum);
	struct plait_blob_writer *w = NULL;
	char got[PLAIT_SHA256_DIGEST_SIZE];
	int64_t mtime = -1;
	int r = plait_blob_writer_new(b->store, checksum, -1, &w, err);
	if (r >= 0)
		r = b->o->resolver->fetch_url(b->o->resolver->ctx, url, w, &mtime, err);
	if (r >= 0)
		r = plait_blob_writer_commit(w, got, err);
	plait_blob_writer_free(w);
	if (r < 0) {
		struct plait_buf m = PLAIT_BUF_INIT;
		build_where(b, in, &m);
		plait_error_wrap(err, "%s: ADD %s", m.buf, url);
		plait_buf_release(&m);
		return r;
	}
	build_add_material(b, url, NULL, NULL, got);
	*urls = xrealloc(*urls, (*n + 1) * sizeof(**urls));
	struct url_source *u = &(*urls)[(*n)++];
	memcpy(u->digest, got, sizeof(got));
	u->mtime = mtime;
	/* The name is the last path segment, without query or fragment. */
	const char *path = strstr(url, "://") + 3;
	path += strcspn(path, "/");
	size_t len = strcspn(path, "?#");
	while (len > 1 && path[len - 1] == '/')
		len--;
	const char *slash = path;
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			slash = path + i;
	size_t nl = len - (size_t)(slash - path) - (*slash == '/');
	const char *nm = *slash == '/' ? slash + 1 : slash;
	if (nl == 0 || nl >= sizeof(u->name))
		snprintf(u->name, sizeof(u->name), "download");
	else
		snprintf(u->name, sizeof(u->name), "%.*s", (int)nl, nm);
	return 0;
}

/* The second key of a COPY --from (1), or none (0) when a source is a heredoc
 * or a URL: the step so far, the source's layers (which decide every file it
 * can copy) and the source words. */
static int copy_fast_key(struct builder *b, struct stage *st, const struct plait_df_instr *in,
			 const struct stage *from, const struct plait_buf *step, char **words, size_t n_src,
			 char out[PLAIT_SHA256_DIGEST_SIZE])
{
	(void)b;
	struct plait_buf k = PLAIT_BUF_INIT;
	plait_buf_addf(&k, "copy-from by layers\n%s", step->buf);
	for (size_t i = 0; i < from->n_layers; i++)
		plait_buf_addf(&k, "layer %s\n", from->layers[i].diff_id);
	for (size_t i = 0; i < n_src; i++) {
		if (plait_df_heredoc_for_arg(in, words[i]) || startswith(words[i], "http://") ||
		    startswith(words[i], "https://")) {
			plait_buf_release(&k);
			return 0;
		}
		plait_buf_addf(&k, "source %zu %s\n", strlen(words[i]), words[i]);
	}
	build_chain_key(st->key, &k, out);
	plait_buf_release(&k);
	return 1;
}

/* The root a COPY --link's key chains from instead of the stage's state: the
 * layer settings alone, so the same --link step in any stage, platform or
 * variant of any build has the same key, and its layer is made once. */
static void link_root(const struct builder *b, char out[PLAIT_SHA256_DIGEST_SIZE])
{
	struct plait_buf k = PLAIT_BUF_INIT;
	plait_buf_adds(&k, "copy --link: an independent layer\n");
	build_layer_settings(b, &k);
	plait_sha256_buf(k.buf, k.len, out);
	plait_buf_release(&k);
}

/* --chown's user and group: looked up in the stage's root (its /etc/passwd
 * and /etc/group) as BuildKit does, also for --link, whose own root is empty. */
static int resolve_chown(struct builder *b, struct stage *st, const struct plait_df_instr *in, const char *chown_s,
			 const char *root, struct copy_attrs *a, const char *whr, struct plait_error **err)
{
	_cleanup_free_ char *cx = NULL;
	struct plait_snapshot *own = NULL;
	int r = build_expand_word(b, st, in, chown_s, &cx, err);
	if (r >= 0 && !root) {
		r = build_snapshot_of_stage(b, st, &own, err);
		root = r >= 0 ? plait_snapshot_root(own) : NULL;
	}
	if (r >= 0)
		r = b->o->runner->resolve_user(b->o->runner->ctx, root, cx, &a->uid, &a->gid, err);
	plait_snapshot_release(own);
	if (r < 0)
		return plait_error_wrap(err, "%s --chown", whr), r;
	a->chown = true;
	if (plait_userns_flatten()) /* --userns=single: every file is root's */
		a->uid = a->gid = 0;
	return 0;
}

int build_do_copy(struct builder *b, struct stage *st, size_t idx, const struct plait_df_instr *in,
		   struct plait_error **err)
{
	bool add = in->kind == PLAIT_DF_ADD;
	const char *what = add ? "ADD" : "COPY";
	char **words = NULL;
	size_t n_words = 0;
	struct plait_buf key = PLAIT_BUF_INIT, created_by = PLAIT_BUF_INIT, dest = PLAIT_BUF_INIT,
			 whr = PLAIT_BUF_INIT;
	struct plait_context *src_ctx = b->ctx;
	struct plait_snapshot *from_snap = NULL, *snap = NULL;
	struct plait_context *from_ctx = NULL;
	struct plait_context_list l = PLAIT_CONTEXT_LIST_INIT;
	struct copy_attrs a = { 0 };
	struct plait_ignore *exclude = NULL;
	struct stage *from_image_st = NULL;
	_cleanup_free_ char *from_name = NULL;
	bool from_ctx_is_dir = false;
	struct url_source *urls = NULL;
	size_t n_urls = 0;
	bool *archive = NULL;
	_cleanup_free_ char *checksum = NULL, *chmod_x = NULL;
	/* COPY --from's second key, from what is cheap to know (see below). */
	char fast[PLAIT_SHA256_DIGEST_SIZE];
	bool have_fast = false;
	/* --link: the layer is made in an empty root, keyed without the stage's
	 * state (link_root), and stacked on the stage like any other; the stage's
	 * own key goes on from its previous one and the layer's (see out:). */
	bool link = plait_df_flag_bool(in, "link");
	char prev_key[PLAIT_SHA256_DIGEST_SIZE];
	memcpy(prev_key, st->key, sizeof(prev_key));
	int r = 0;

	build_where(b, in, &whr);
	plait_buf_addf(&whr, ": %s", what);

	/* args holds the words in both forms; each is expanded on its own. */
	words = plait_strv_copy_nonnull(in->args);
	n_words = in->n_args;
	for (size_t i = 0; i < n_words && r >= 0; i++) {
		if (plait_df_heredoc_for_arg(in, words[i]))
			continue;
		char *x = NULL;
		r = build_expand_word(b, st, in, words[i], &x, err);
		if (r >= 0) {
			free(words[i]);
			words[i] = x;
		}
	}
	if (r < 0)
		goto out;
	if (n_words < 2 && !(in->n_heredocs && n_words >= 1)) {
		r = build_instr_error(b, in, PLAIT_E_USAGE, err, "%s needs at least one source and a destination",
				what);
		goto out;
	}
	const char *dst_word = words[n_words - 1];
	build_clean_abs(st->cfg.config.working_dir, dst_word, &dest);
	size_t n_src = n_words - 1;
	/* "dir/", ".", "dir/." all name a directory (Dockerfile reference). */
	bool dest_is_dir = endswith(dst_word, "/") || streq(dst_word, ".") || endswith(dst_word, "/.");
	/* Several sources and a destination without '/': no error, as in
	 * BuildKit; each source is copied to it in turn (build_copy_into). */

	plait_buf_addf(&created_by, "%s ", what);
	for (size_t i = 0; i < n_words; i++)
		plait_buf_addf(&created_by, "%s%s", i ? " " : "", words[i]);
	plait_buf_adds(&created_by, " # buildkit");

	const char *chown_s = plait_df_flag_get(in, "chown");
	const char *chmod_s = plait_df_flag_get(in, "chmod");
	const char *from_s = plait_df_flag_get(in, "from");
	/* Flag values expand like the instruction's words (--checksum=${SUM}). */
	if (plait_df_flag_get(in, "checksum") &&
	    (r = build_expand_word(b, st, in, plait_df_flag_get(in, "checksum"), &checksum, err)) < 0)
		goto out;
	if (chmod_s) {
		if ((r = build_expand_word(b, st, in, chmod_s, &chmod_x, err)) < 0)
			goto out;
		chmod_s = chmod_x;
	}
	plait_buf_addf(&key, "%s\ndest %s%s\nchown %s\nchmod %s\n", what, dest.buf,
		       dest_is_dir ? "/" : "", chown_s ? chown_s : "", chmod_s ? chmod_s : "");
	if (chmod_s) {
		char *end;
		long m = strtol(chmod_s, &end, 8);
		if (*end || m < 0 || m > 07777) {
			r = build_instr_error(b, in, PLAIT_E_USAGE, err,
					"--chmod=%s: give an octal mode such as 0755", chmod_s);
			goto out;
		}
		a.chmod = true;
		a.mode = (mode_t)m;
	}
	a.parents = plait_df_flag_bool(in, "parents");
	plait_buf_addf(&key, "parents %d\n", a.parents);
	{
		struct plait_buf pat = PLAIT_BUF_INIT;
		for (size_t i = 0; i < in->n_flags; i++) {
			if (!streq(in->flags[i].name, "exclude"))
				continue;
			_cleanup_free_ char *x = NULL;
			r = build_expand_word(b, st, in, in->flags[i].value, &x, err);
			if (r < 0)
				break;
			plait_buf_addf(&pat, "%s\n", x);
		}
		if (r >= 0 && pat.len)
			r = plait_ignore_parse(pat.buf, pat.len, "--exclude", &exclude, err);
		plait_buf_addf(&key, "exclude %s\n", pat.buf);
		plait_buf_release(&pat);
		if (r < 0)
			goto out;
		a.exclude = exclude;
	}
	if (from_s) {
		char *fx = NULL;
		r = build_expand_word(b, st, in, from_s, &fx, err);
		if (r < 0)
			goto out;
		from_name = fx;
		struct stage *fs = build_find_stage(b, fx, idx);
		const char *ndir = fs ? NULL : build_named_dir(b, fx);
		if (ndir) {
			/* A named local context: read like the build context (files become root's). */
			r = plait_context_open(ndir, NULL, &from_ctx, err);
			if (r < 0) {
				plait_error_wrap(err, "%s --from=%s", whr.buf, fx);
				goto out;
			}
			src_ctx = from_ctx;
			from_ctx_is_dir = true;
			plait_buf_addf(&key, "from context %s\n", fx);
		} else if (!fs) {
			/* The stage itself or a later one: a cycle, not an image to pull. */
			for (size_t k = idx; k < b->n_stages; k++)
				if (b->stages[k].df->name && strcasecmp(b->stages[k].df->name, fx) == 0) {
					r = build_instr_error(b, in, PLAIT_E_USAGE, err,
							"%s --from=%s: that is %s; --from names an earlier stage, an "
							"image or a build context",
							what, fx, k == idx ? "this stage itself" : "a later stage");
					goto out;
				}
			/* Not a stage: an image, pulled for the target platform. */
			from_image_st = xcalloc(1, sizeof(*from_image_st));
			r = build_from_image(b, from_image_st, fx, b->o->platform_str, err);
			if (r < 0) {
				plait_error_wrap(err, "%s --from=%s (no earlier stage has that name)", whr.buf,
						 fx);
				goto out;
			}
			fs = from_image_st;
		}
		if (fs && (r = build_stage_ready(b, fs, in, fx, err)) < 0)
			goto out;
		if (fs) {
			/* The files a COPY --from copies are a function of the source's
			 * layers: keyed on those (and the words), a step seen before is
			 * found without mounting the source and digesting every file. The
			 * record stays under the content key below, the chain's own. */
			if ((r = copy_fast_key(b, st, in, fs, &key, words, n_src, fast)) < 0)
				goto out;
			have_fast = r > 0;
			char known[PLAIT_SHA256_DIGEST_SIZE];
			if (have_fast && build_alias_lookup(b, fast, known) == 1 &&
			    (r = build_use_cached_step(b, st, known, created_by.buf, err)) != 0) {
				if (r > 0)
					build_note_key(b, st, fast); /* the alias goes with a --cache-to too */
				r = r < 0 ? r : 0;
				goto out;
			}
			r = stage_view(b, fs, &from_snap, &from_ctx, err);
			if (r < 0)
				goto out;
			src_ctx = from_ctx;
			a.keep_owner = true;
			/* Keyed on what is copied (the source digest below covers content,
			 * modes and owners), not on the stage's whole chain: a change
			 * elsewhere in that stage does not invalidate this COPY. */
			plait_buf_adds(&key, "from stage\n");
		}
	}

	/* ADD of a git repository (BuildKit's ADD URL.git#REF[:SUBDIR]): its
	 * checkout at REF is the one source, copied as a directory's content;
	 * the commit is in the key (the ref may move), the .git only with
	 * --keep-git-dir. */
	bool keep_git = plait_df_flag_bool(in, "keep-git-dir");
	if (add && !from_s && n_src >= 1 && plait_url_is_git(words[0])) {
		if (n_src != 1) {
			r = build_instr_error(b, in, PLAIT_E_USAGE, err,
					      "ADD of a git repository takes it as the only source (then the destination)");
			goto out;
		}
		if (!b->o->resolver || !b->o->resolver->fetch_git) {
			r = build_instr_error(b, in, PLAIT_E_USAGE, err, "ADD %s: no way to fetch git repositories here",
					      words[0]);
			goto out;
		}
		_cleanup_free_ char *gdir = NULL, *commit = NULL;
		r = b->o->resolver->fetch_git(b->o->resolver->ctx, words[0], keep_git, &gdir, &commit, err);
		if (r >= 0)
			r = plait_context_open(gdir, NULL, &from_ctx, err);
		if (r < 0) {
			plait_error_wrap(err, "%s", whr.buf);
			goto out;
		}
		src_ctx = from_ctx;
		from_ctx_is_dir = true;
		plait_buf_addf(&key, "git %s keep %d\n", commit ? commit : "", keep_git);
		free(words[0]);
		words[0] = xstrdup(".");
	} else if (keep_git) {
		r = build_instr_error(b, in, PLAIT_E_USAGE, err,
				      "ADD --keep-git-dir applies to a git repository source (URL.git#REF)");
		goto out;
	}
	/* Sources: resolved (and digested) before anything runs. */
	for (size_t i = 0; i < n_src; i++) {
		const struct plait_df_heredoc *h = plait_df_heredoc_for_arg(in, words[i]);
		if (h) {
			/* The raw body and the variables it may use are in the chain already
			 * (env and args are keyed by earlier steps); the body itself here. */
			_cleanup_free_ char *data = plait_df_heredoc_data(h);
			plait_buf_addf(&key, "heredoc %s %d %zu\n", h->name, h->expand, strlen(data));
			plait_buf_adds(&key, data);
			continue;
		}
		if (startswith(words[i], "http://") || startswith(words[i], "https://")) {
			if (!add || from_s) {
				r = build_instr_error(b, in, PLAIT_E_USAGE, err,
						"%s cannot fetch '%s': use ADD for URLs", what, words[i]);
				goto out;
			}
			/* Fetched now: its content (or --checksum) is what the key sees. */
			r = fetch_source(b, in, words[i], checksum, &urls, &n_urls, err);
			if (r < 0)
				goto out;
			plait_buf_addf(&key, "url %s %s mtime %lld\n", words[i], urls[n_urls - 1].digest,
				       (long long)urls[n_urls - 1].mtime);
			continue;
		}
		r = plait_context_resolve(src_ctx, words[i], what, &l, err);
		/* A wildcard's matches are sources like named ones: with a
		 * destination not ending in '/', each is copied to it in turn (the
		 * last file wins), as BuildKit does; buildah makes a directory. */
		if (r == -PLAIT_E_NOT_FOUND && from_s && src_ctx != b->ctx && !from_ctx_is_dir)
			/* the context's message would say "build context": name the stage or image */
			plait_error_set(err, PLAIT_E_NOT_FOUND, "%s --from=%s: '%s' not found in %s '%s'", what,
					from_name, words[i], from_image_st ? "image" : "stage", from_name);
		if (r < 0) {
			plait_error_wrap(err, "%s:%d", b->df.filename, in->line);
			goto out;
		}
	}
	plait_buf_addf(&key, "dest-is-dir %d\n", dest_is_dir);
	if (checksum && n_urls == 0) {
		r = build_instr_error(b, in, PLAIT_E_USAGE, err, "ADD --checksum only applies to URL sources");
		goto out;
	}
	plait_context_list_exclude(&l, exclude); /* excluded files are no input */
	char d[PLAIT_SHA256_DIGEST_SIZE];
	r = plait_context_digest(src_ctx, &l, d, err);
	if (r < 0)
		goto out;
	plait_buf_addf(&key, "sources %s\n", d);
	/* ADD extracts local tar archives (plain or compressed) into dest. */
	archive = xcalloc(l.n_sources + 1, sizeof(bool));
	for (size_t i = 0; add && !from_s && i < l.n_sources; i++) {
		const struct plait_context_entry *e = &l.entries[l.sources[i].first];
		_cleanup_close_ int fd = -1;
		if (!S_ISREG(e->mode) || plait_context_open_entry(src_ctx, e, &fd, NULL) < 0)
			continue;
		archive[i] = build_is_archive(fd);
		plait_buf_addf(&key, "archive %s %d\n", l.sources[i].name, archive[i]);
	}
	for (size_t i = 0; i < l.n_sources; i++)
		plait_buf_addf(&key, "source %s\n", l.sources[i].name);

	if (link && chown_s) { /* the names' numbers are what the layer holds: keyed on those */
		r = resolve_chown(b, st, in, chown_s, NULL, &a, whr.buf, err);
		if (r < 0)
			goto out;
		plait_buf_addf(&key, "owner %u:%u\n", (unsigned)a.uid, (unsigned)a.gid);
	}
	char k[PLAIT_SHA256_DIGEST_SIZE];
	if (link) {
		char root[PLAIT_SHA256_DIGEST_SIZE];
		link_root(b, root);
		build_chain_key(root, &key, k);
		r = build_use_cached_step(b, st, k, created_by.buf, err);
	} else {
		r = build_key_and_use_cached_step(b, st, &key, k, created_by.buf, err);
	}
	if (r != 0) {
		if (r > 0 && have_fast && plait_cache_alias_write(b->cache, fast, k) == 1)
			build_note_key(b, st, fast); /* only a shortcut */
		r = r < 0 ? r : 0;
		goto out;
	}
	uint64_t t0 = plait_now_ns();
	if (link)
		r = plait_snapshot_prepare(NULL, 0, b->cache->run_dir, PLAIT_SNAPSHOT_AUTO, &snap, err);
	else
		r = build_snapshot_of_stage(b, st, &snap, err);
	if (r < 0)
		goto out;
	if (chown_s && !a.chown && (r = resolve_chown(b, st, in, chown_s, plait_snapshot_root(snap), &a, whr.buf, err)) < 0)
		goto out;
	for (size_t i = 0; i < n_src && r >= 0; i++) {
		const struct plait_df_heredoc *h = plait_df_heredoc_for_arg(in, words[i]);
		if (!h)
			continue;
		_cleanup_free_ char *raw = plait_df_heredoc_data(h), *data = NULL;
		/* An unquoted delimiter expands variables in the body, as BuildKit does. */
		if (h->expand) {
			struct lookup_ctx lc = { b, st };
			r = plait_expand_heredoc(raw, build_lookup, &lc, &data, err);
			if (r < 0)
				break;
		} else {
			data = TAKE_PTR(raw);
		}
		struct plait_buf target = PLAIT_BUF_INIT;
		if (dest_is_dir)
			plait_buf_addf(&target, "%s/%s", dest.buf, h->name);
		else
			plait_buf_adds(&target, dest.buf);
		r = build_write_file_into(plait_snapshot_root(snap), target.buf, data, strlen(data), &a,
					  whr.buf, err);
		plait_buf_release(&target);
	}
	if (r >= 0 && l.n_sources)
		r = build_copy_into(plait_snapshot_root(snap), src_ctx, &l, dest.buf, dest_is_dir, &a,
				    whr.buf, archive, err);
	for (size_t i = 0; i < l.n_sources && r >= 0; i++) {
		if (!archive[i])
			continue;
		_cleanup_close_ int fd = -1;
		r = plait_context_open_entry(src_ctx, &l.entries[l.sources[i].first], &fd, err);
		size_t devices = 0;
		if (r >= 0)
			r = build_extract_into(plait_snapshot_root(snap), fd, dest.buf, &a, whr.buf, &devices, err);
		if (r >= 0 && devices)
			build_warn_devices(b, whr.buf, devices);
	}
	for (size_t i = 0; i < n_urls && r >= 0; i++) {
		_cleanup_close_ int fd = -1;
		struct plait_buf target = PLAIT_BUF_INIT;
		if (dest_is_dir || n_src > 1)
			plait_buf_addf(&target, "%s/%s", dest.buf, urls[i].name);
		else
			plait_buf_adds(&target, dest.buf);
		r = plait_store_open_blob(b->store, urls[i].digest, &fd, err);
		if (r >= 0)
			r = build_write_fd_into(plait_snapshot_root(snap), target.buf, fd, urls[i].mtime, &a, whr.buf, err);
		plait_buf_release(&target);
	}
	if (r >= 0)
		r = build_commit_change(b, st, snap, k, have_fast ? fast : NULL, created_by.buf, in, err);
	if (r >= 0)
		build_emit(b, PLAIT_BUILD_STEP_DONE, NULL, (double)(plait_now_ns() - t0) / 1e9);
out:
	if (r >= 0 && link) { /* the layer is on the stage (made or found): the chain goes on */
		struct plait_buf lk = PLAIT_BUF_INIT;
		plait_buf_addf(&lk, "linked layer %s\n", st->key);
		build_chain_key(prev_key, &lk, st->key);
		plait_buf_release(&lk);
	}
	plait_snapshot_release(snap);
	plait_context_list_release(&l);
	plait_context_free(from_ctx);
	plait_snapshot_release(from_snap);
	plait_ignore_free(exclude);
	free(urls);
	free(archive);
	if (from_image_st) {
		stage_release(from_image_st);
		free(from_image_st);
	}
	plait_strv_free(words);
	plait_buf_release(&key);
	plait_buf_release(&created_by);
	plait_buf_release(&dest);
	plait_buf_release(&whr);
	return r;
}
