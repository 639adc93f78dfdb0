/* platforms/sandbox.c - the RUN sandbox (see sandbox.h).
 *
 * Process tree: the caller forks a helper, which unshares the namespaces and
 * forks the command; the command is pid 1 of the new PID namespace (proc must
 * be mounted from inside it, and only a child of the unsharer enters it). The
 * helper waits for it and reports its pid and wait status on a pipe, since the
 * caller cannot wait for a grandchild. Setup errors travel on a close-on-exec
 * pipe: EOF without a message means exec succeeded. */
#include <linux/capability.h>

#include "sandbox.h"
#include "core/buf.h"
#include "core/userns.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/banned.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define LINE_MAX_BYTES (64 * 1024)
#define ID_FILE_MAX (16 * 1024 * 1024)

/* --no-process-sandbox: chosen on the command line, for the whole process. */
static atomic_bool no_process_sandbox;

void plait_sandbox_set_process_sandbox(bool on)
{
	atomic_store(&no_process_sandbox, !on);
}

/* ---- resolving paths inside the root ---- */

static int openat_in_root(int rootfd, const char *path, int flags)
{
	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	struct open_how how = {
		.flags = (uint64_t)flags | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd = syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* ---- USER ---- */

static int read_in_root(const char *rootfs, const char *path, struct plait_buf *out)
{
	_cleanup_close_ int rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	_cleanup_close_ int fd = openat_in_root(rootfd, path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	return plait_buf_read_fd(out, fd, ID_FILE_MAX);
}

/* Split line into at most max ':'-separated fields (in place). */
static size_t split_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	f[n++] = line;
	for (char *p = line; *p && n < max; p++) {
		if (*p == ':') {
			*p = '\0';
			f[n++] = p + 1;
		}
	}
	return n;
}

static bool parse_id(const char *s, unsigned long *out)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10)
		return false;
	unsigned long v = strtoul(s, NULL, 10);
	if (v >= UINT32_MAX)
		return false;
	*out = v;
	return true;
}

/* Calls fn for every entry line of an /etc/passwd-like file. */
static void for_each_line(char *data, bool (*fn)(void *opaque, char **f, size_t n), void *opaque)
{
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (*line == '#' || *line == '+' || *line == '-' || !*line)
			continue;
		char *f[7];
		size_t n = split_fields(line, f, ARRAY_SIZE(f));
		if (fn(opaque, f, n))
			return;
	}
}

struct pw_query {
	const char *name; /* match by name, or */
	unsigned long uid; /* by uid when name is NULL */
	bool found;
	char *found_name;
	char *found_home;
	unsigned long found_uid, found_gid;
};

static bool pw_match(void *opaque, char **f, size_t n)
{
	struct pw_query *q = opaque;
	unsigned long uid, gid;
	if (n < 4 || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
		return false;
	if (q->name ? !streq(f[0], q->name) : uid != q->uid)
		return false;
	q->found = true;
	q->found_name = xstrdup(f[0]);
	q->found_home = n > 5 && *f[5] ? xstrdup(f[5]) : NULL;
	q->found_uid = uid;
	q->found_gid = gid;
	return true;
}

struct gr_query {
	const char *group_name;  /* find this group's gid */
	bool found;
	unsigned long gid;
	const char *member;      /* or collect the groups listing this user */
	struct plait_sandbox_user *u;
	size_t alloc;
};

static bool gr_match(void *opaque, char **f, size_t n)
{
	struct gr_query *q = opaque;
	unsigned long gid;
	if (n < 3 || !parse_id(f[2], &gid))
		return false;
	if (q->group_name) {
		if (!streq(f[0], q->group_name))
			return false;
		q->found = true;
		q->gid = gid;
		return true;
	}
	if (n < 4)
		return false;
	char *save = NULL;
	for (char *m = strtok_r(f[3], ",", &save); m; m = strtok_r(NULL, ",", &save)) {
		if (!streq(m, q->member))
			continue;
		for (size_t i = 0; i < q->u->n_groups; i++)
			if (q->u->groups[i] == gid)
				return false;
		PLAIT_ALLOC_GROW(q->u->groups, q->u->n_groups + 1, q->alloc);
		q->u->groups[q->u->n_groups++] = gid;
		break;
	}
	return false;
}

void plait_sandbox_user_release(struct plait_sandbox_user *u)
{
	if (!u)
		return;
	free(u->groups);
	u->groups = NULL;
	u->n_groups = 0;
	free(u->home);
	u->home = NULL;
}

/* The primary group leads the supplementary list, as containerd sets it up. */
static void add_primary_group(struct plait_sandbox_user *u)
{
	for (size_t i = 0; i < u->n_groups; i++)
		if (u->groups[i] == u->gid)
			return;
	u->groups = xrealloc(u->groups, (u->n_groups + 1) * sizeof(*u->groups));
	memmove(u->groups + 1, u->groups, u->n_groups * sizeof(*u->groups));
	u->groups[0] = u->gid;
	u->n_groups++;
}

static int resolve_user(const char *rootfs, const char *user, struct plait_sandbox_user *out,
			struct plait_error **err)
{
	if (!user || !*user)
		user = "0"; /* root, looked up only for its home directory */
	_cleanup_free_ char *spec = xstrdup(user);
	char *group = strchr(spec, ':');
	if (group)
		*group++ = '\0';
	if (!*spec || (group && !*group))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "invalid user '%s': expected name, uid, name:group or uid:gid", user);

	_cleanup_buf_ struct plait_buf passwd = PLAIT_BUF_INIT;
	int pr = read_in_root(rootfs, "/etc/passwd", &passwd);
	struct pw_query q = { 0 };
	unsigned long id;
	bool numeric = parse_id(spec, &id);
	if (numeric)
		q.uid = id;
	else
		q.name = spec;
	if (pr >= 0)
		for_each_line(passwd.buf, pw_match, &q);
	_cleanup_free_ char *name = q.found_name;
	out->home = q.found_home;
	if (!numeric && !q.found) {
		if (pr < 0 && pr != -ENOENT)
			return plait_error_set_errno(err, PLAIT_E_IO, pr, "unable to find user '%s': read the image's /etc/passwd", spec);
		return plait_error_set(err, PLAIT_E_NOT_FOUND,
				       "unable to find user '%s': no matching entry in the image's /etc/passwd%s",
				       spec, pr == -ENOENT ? " (the file does not exist)" : "");
	}
	out->uid = numeric ? id : q.found_uid;
	out->gid = q.found ? q.found_gid : 0;

	_cleanup_buf_ struct plait_buf groupf = PLAIT_BUF_INIT;
	int gr = read_in_root(rootfs, "/etc/group", &groupf);
	if (group) {
		if (parse_id(group, &id)) {
			out->gid = id;
			return 0;
		}
		struct gr_query g = { .group_name = group };
		if (gr >= 0)
			for_each_line(groupf.buf, gr_match, &g);
		if (!g.found)
			return plait_error_set(err, PLAIT_E_NOT_FOUND,
					       "unable to find group '%s': no matching entry in the image's /etc/group%s",
					       group, gr == -ENOENT ? " (the file does not exist)" : "");
		out->gid = g.gid;
		return 0;
	}
	if (name && gr >= 0) {
		struct gr_query g = { .member = name, .u = out };
		for_each_line(groupf.buf, gr_match, &g);
	}
	return 0;
}

int plait_sandbox_resolve_user(const char *rootfs, const char *user, struct plait_sandbox_user *out,
			       struct plait_error **err)
{
	*out = (struct plait_sandbox_user){ 0 };
	int r = resolve_user(rootfs, user, out, err);
	if (r < 0) {
		plait_sandbox_user_release(out);
		return r;
	}
	add_primary_group(out);
	return 0;
}

/* ---- mount targets and stubs ---- */

struct stub {
	char *path;   /* inside the root, absolute */
	bool dir;
	struct timespec parent_times[2];
};

struct stubs {
	struct stub *v;
	size_t n, alloc;
};

/* The path of fd inside the root whose real path is root_abs. */
static char *path_in_root(int fd, const char *root_abs)
{
	char proc[64], buf[PATH_MAX + 1];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, buf, PATH_MAX);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	size_t rl = strlen(root_abs);
	if (streq(root_abs, "/"))
		return xstrdup(buf);
	if (strncmp(buf, root_abs, rl) != 0 || (buf[rl] != '/' && buf[rl] != '\0'))
		return NULL;
	return xstrdup(buf[rl] ? buf + rl : "/");
}

/* Make sure target exists inside the root, creating missing directories and,
 * for a file target, an empty file; each creation is recorded as a stub. */
static int ensure_target(int rootfd, const char *root_abs, const char *target, bool dir,
			 struct stubs *stubs, struct plait_error **err)
{
	int fd = openat_in_root(rootfd, target, O_PATH);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (fd != -ENOENT)
		return plait_error_set_errno(err, PLAIT_E_IO, fd, "mount target '%s'", target);
	_cleanup_buf_ struct plait_buf prefix = PLAIT_BUF_INIT;
	const char *p = target;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchrnul(p, '/');
		_cleanup_free_ char *comp = xstrndup(p, e - p);
		bool last = !*e || !e[strspn(e, "/")];
		_cleanup_close_ int parent = openat_in_root(rootfd, prefix.len ? prefix.buf : "/", O_RDONLY | O_DIRECTORY);
		if (parent < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, parent, "mount target '%s': open '%s'",
						     target, prefix.len ? prefix.buf : "/");
		plait_buf_addf(&prefix, "/%s", comp);
		p = e;
		_cleanup_close_ int cur = openat_in_root(rootfd, prefix.buf, O_PATH);
		if (cur >= 0)
			continue;
		if (streq(comp, "..") || streq(comp, "."))
			return plait_error_set(err, PLAIT_E_USAGE, "mount target '%s' must be a clean absolute path", target);
		struct stat pst;
		if (fstat(parent, &pst) < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, errno, "mount target '%s'", target);
		bool make_dir = dir || !last;
		if (make_dir) {
			if (mkdirat(parent, comp, 0755) < 0)
				return plait_error_set_errno(err, PLAIT_E_IO, errno, "mount target '%s': create '%s'",
							     target, prefix.buf);
		} else {
			int f = openat(parent, comp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (f < 0)
				return plait_error_set_errno(err, PLAIT_E_IO, errno, "mount target '%s': create '%s'",
							     target, prefix.buf);
			close(f);
		}
		cur = openat_in_root(rootfd, prefix.buf, O_PATH | O_NOFOLLOW);
		char *real = cur >= 0 ? path_in_root(cur, root_abs) : NULL;
		if (!real)
			return plait_error_set(err, PLAIT_E_IO, "mount target '%s': cannot find created '%s'",
					       target, prefix.buf);
		PLAIT_ALLOC_GROW(stubs->v, stubs->n + 1, stubs->alloc);
		stubs->v[stubs->n++] = (struct stub){ real, make_dir, { pst.st_atim, pst.st_mtim } };
	}
	return 0;
}

/* Remove the stubs that are still empty, newest first, restoring parent times. */
static void remove_stubs(int rootfd, struct stubs *stubs)
{
	for (size_t i = stubs->n; i-- > 0;) {
		struct stub *s = &stubs->v[i];
		_cleanup_free_ char *parent_path = xstrdup(s->path);
		char *slash = strrchr(parent_path, '/');
		const char *base = slash + 1;
		*slash = '\0';
		_cleanup_close_ int parent = openat_in_root(rootfd, *parent_path ? parent_path : "/",
							    O_RDONLY | O_DIRECTORY);
		if (parent < 0)
			continue;
		struct stat st;
		if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (s->dir ? !S_ISDIR(st.st_mode) : !(S_ISREG(st.st_mode) && st.st_size == 0))
			continue;
		if (unlinkat(parent, base, s->dir ? AT_REMOVEDIR : 0) < 0)
			continue; /* a directory the command filled: a real change now */
		(void)futimens(parent, s->parent_times);
	}
}

static void stubs_release(struct stubs *stubs)
{
	for (size_t i = 0; i < stubs->n; i++)
		free(stubs->v[i].path);
	free(stubs->v);
}

/* ---- the child side (after fork: report errors on the pipe, never return) ---- */

struct child_ctx {
	const struct plait_sandbox_spec *spec;
	const char *root_abs;
	const struct plait_sandbox_user *user;
	int out_w, err_w, sync_w, status_w;
	pid_t caller;  /* the helper's parent: gone means exit at once */
	int alive_r;   /* pid 1: EOF once the helper is gone */
	bool share_pids; /* --no-process-sandbox */
};

_noreturn_ static void child_fail(int sync_w, struct plait_buf *msg)
{
	(void)plait_write_all(sync_w, msg->buf, msg->len);
	_exit(127);
}

#define CHILD_CHECK(cond, ctx, ...)                                     \
	do {                                                             \
		if (!(cond)) {                                           \
			int _e_ = errno;                                 \
			struct plait_buf _m_ = PLAIT_BUF_INIT;           \
			plait_buf_addf(&_m_, __VA_ARGS__);               \
			plait_buf_addf(&_m_, ": %s", strerror(_e_));     \
			child_fail((ctx)->sync_w, &_m_);                 \
		}                                                        \
	} while (0)

static void fd_path(char *buf, size_t size, int fd)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* The MS_ flags a mount already has, so that a remount keeps them (a bind of
 * a nosuid or noexec host directory stays so: a remount only ever adds). */
static unsigned long mount_flags_of(int fd)
{
	struct statvfs sv;
	if (fstatvfs(fd, &sv) < 0)
		return 0;
	static const unsigned long map[][2] = {
		{ ST_RDONLY, MS_RDONLY }, { ST_NOSUID, MS_NOSUID }, { ST_NODEV, MS_NODEV },
		{ ST_NOEXEC, MS_NOEXEC },
	};
	unsigned long f = 0;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (sv.f_flag & map[i][0])
			f |= map[i][1];
	return f;
}

/* Mount onto target (resolved inside the root), read-only afterwards if asked.
 * A bind ignores every flag but MS_REC: when nodev, nosuid, noexec or
 * read-only is asked for, the new mount is remounted with them added to the
 * ones it inherited. */
static void mount_in_root(struct child_ctx *c, int rootfd, const char *source, const char *target,
			  const char *fstype, unsigned long flags, const char *data, bool ro)
{
	char p[64];
	int fd = openat_in_root(rootfd, target, O_PATH);
	errno = fd < 0 ? -fd : 0;
	CHILD_CHECK(fd >= 0, c, "sandbox: open mount target '%s'", target);
	fd_path(p, sizeof(p), fd);
	CHILD_CHECK(mount(source, p, fstype, flags, data) == 0, c, "sandbox: mount '%s' on '%s'",
		    source ? source : fstype, target);
	close(fd);
	const unsigned long want = (flags & (MS_NODEV | MS_NOSUID | MS_NOEXEC)) | (ro ? MS_RDONLY : 0);
	if (!want || (!(flags & MS_BIND) && !ro))
		return;
	/* Reopened: the old fd still points under the new mount. */
	fd = openat_in_root(rootfd, target, O_PATH);
	errno = fd < 0 ? -fd : 0;
	CHILD_CHECK(fd >= 0, c, "sandbox: open mount '%s'", target);
	if (flags & MS_REC) {
		/* A recursive bind (a context holding a mount of its own): the
		 * flags go on every mount below too, which a remount cannot do. */
		struct mount_attr a = {
			.attr_set = (want & MS_NODEV ? MOUNT_ATTR_NODEV : 0) | (want & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0) |
				    (want & MS_NOEXEC ? MOUNT_ATTR_NOEXEC : 0) | (want & MS_RDONLY ? MOUNT_ATTR_RDONLY : 0),
		};
		if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof(a)) == 0) {
			close(fd);
			return;
		}
		CHILD_CHECK(errno == ENOSYS, c, "sandbox: set the flags of '%s' and the mounts below it", target);
		/* Linux < 5.12: the top mount only. */
	}
	fd_path(p, sizeof(p), fd);
	CHILD_CHECK(mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | mount_flags_of(fd) | want, NULL) == 0, c,
		    "sandbox: remount '%s'%s", target, ro ? " read-only" : "");
	close(fd);
}

static void setup_dev(struct child_ctx *c, int rootfd)
{
	/* nodev: the nodes below are binds carrying the host /dev mount's flags,
	 * and pts is its own mount; nothing made on the tmpfs itself opens a device. */
	mount_in_root(c, rootfd, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=65536k", false);
	int devfd = openat_in_root(rootfd, "/dev", O_PATH | O_DIRECTORY);
	errno = devfd < 0 ? -devfd : 0;
	CHILD_CHECK(devfd >= 0, c, "sandbox: open /dev");
	static const char *const nodes[] = { "null", "zero", "full", "random", "urandom", "tty" };
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++) {
		char host[32], p[64];
		snprintf(host, sizeof(host), "/dev/%s", nodes[i]);
		int f = openat(devfd, nodes[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		CHILD_CHECK(f >= 0, c, "sandbox: create /dev/%s", nodes[i]);
		close(f);
		f = openat(devfd, nodes[i], O_PATH | O_CLOEXEC);
		CHILD_CHECK(f >= 0, c, "sandbox: open /dev/%s", nodes[i]);
		fd_path(p, sizeof(p), f);
		CHILD_CHECK(mount(host, p, NULL, MS_BIND, NULL) == 0, c, "sandbox: bind '%s'", host);
		close(f);
	}
	CHILD_CHECK(mkdirat(devfd, "pts", 0755) == 0, c, "sandbox: create /dev/pts");
	/* gid 5 (tty) exists only where it is mapped (not under --userns=single). */
	mount_in_root(c, rootfd, "devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		      plait_userns_self()->n_gids > 5 ? "newinstance,ptmxmode=0666,mode=0620,gid=5"
						       : "newinstance,ptmxmode=0666,mode=0620",
		      false);
	CHILD_CHECK(symlinkat("pts/ptmx", devfd, "ptmx") == 0, c, "sandbox: create /dev/ptmx");
	CHILD_CHECK(mkdirat(devfd, "shm", 01777) == 0, c, "sandbox: create /dev/shm");
	mount_in_root(c, rootfd, "shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		      "mode=1777,size=65536k", false);
	static const char *const links[][2] = {
		{ "fd", "/proc/self/fd" },
		{ "stdin", "/proc/self/fd/0" },
		{ "stdout", "/proc/self/fd/1" },
		{ "stderr", "/proc/self/fd/2" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		CHILD_CHECK(symlinkat(links[i][1], devfd, links[i][0]) == 0, c, "sandbox: create /dev/%s",
			    links[i][0]);
	close(devfd);
}

/* The FILE mounts' contents, written to a tmpfs mounted on the root's /proc
 * before proc itself covers it: memory of this mount namespace only, never a
 * disk. Returns a directory fd of that tmpfs (file i is mount i), or -1 when
 * there are no FILE mounts. */
static int stage_files(struct child_ctx *c, int rootfd)
{
	const struct plait_sandbox_spec *spec = c->spec;
	size_t total = 0, n = 0;
	for (size_t i = 0; i < spec->n_mounts; i++)
		if (spec->mounts[i].type == PLAIT_SANDBOX_FILE) {
			total += (spec->mounts[i].data_len + 4095) / 4096 * 4096;
			n++;
		}
	if (!n)
		return -1;
	char opts[128];
	snprintf(opts, sizeof(opts), "mode=0700,size=%zu,nr_inodes=%zu", total + 4096, n + 8);
	int pfd = openat_in_root(rootfd, "/proc", O_PATH | O_DIRECTORY);
	errno = pfd < 0 ? -pfd : 0;
	CHILD_CHECK(pfd >= 0, c, "sandbox: open '/proc'");
	char p[64], noswap[160];
	fd_path(p, sizeof(p), pfd);
	/* noswap (Linux >= 6.4): not even swap gets a secret's pages. */
	snprintf(noswap, sizeof(noswap), "%s,noswap", opts);
	/* Not noexec here: a RUN heredoc script is a FILE mount with x bits;
	 * each bind adds noexec unless its mode has them. */
	const unsigned long fl = MS_NOSUID | MS_NODEV;
	if (mount("tmpfs", p, "tmpfs", fl, noswap) < 0)
		CHILD_CHECK(mount("tmpfs", p, "tmpfs", fl, opts) == 0, c, "sandbox: mount a tmpfs for secrets");
	close(pfd);
	int dir = openat_in_root(rootfd, "/proc", O_RDONLY | O_DIRECTORY);
	errno = dir < 0 ? -dir : 0;
	CHILD_CHECK(dir >= 0, c, "sandbox: open the tmpfs for secrets");
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct plait_sandbox_mount *m = &spec->mounts[i];
		if (m->type != PLAIT_SANDBOX_FILE)
			continue;
		char name[32];
		snprintf(name, sizeof(name), "%zu", i);
		int f = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		CHILD_CHECK(f >= 0, c, "sandbox: create the file for '%s'", m->target);
		CHILD_CHECK(plait_write_all(f, m->data, m->data_len) == 0, c, "sandbox: write the file for '%s'",
			    m->target);
		CHILD_CHECK(fchown(f, m->uid, m->gid) == 0, c, "sandbox: set the owner of '%s'", m->target);
		CHILD_CHECK(fchmod(f, m->mode & 07777) == 0, c, "sandbox: set the mode of '%s'", m->target);
		close(f);
	}
	return dir;
}

static void mkdir_p(struct child_ctx *c, const char *path)
{
	int r = plait_mkdir_p(path, 0755, NULL);
	errno = -r;
	CHILD_CHECK(r == 0, c, "create working directory '%s'", path);
}

/* RUN keeps the capabilities a Docker container has by default, minus
 * CAP_MKNOD (no device cgroup guards what a device node would open here):
 * without CAP_SYS_ADMIN a read-only bind cannot be remounted writable, and no
 * file system, module or raw device is within reach. The bounding set is
 * dropped too, so nothing run later (setuid binaries) gets them back. */
static void drop_capabilities(struct child_ctx *c)
{
	static const int keep[] = { CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER,
				    CAP_NET_RAW, CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP,
				    CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL, CAP_AUDIT_WRITE };
	uint64_t mask = 0;
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		mask |= 1ull << keep[i];
	for (int cap = 0; cap <= 63; cap++) {
		if (mask & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			CHILD_CHECK(false, c, "sandbox: drop capability %d", cap);
	}
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	CHILD_CHECK(syscall(SYS_capget, &hdr, data) == 0, c, "sandbox: read capabilities");
	for (int i = 0; i < 2; i++) {
		uint32_t m = (uint32_t)(mask >> (32 * i));
		data[i].effective &= m;
		data[i].permitted &= m;
		data[i].inheritable &= m;
	}
	CHILD_CHECK(syscall(SYS_capset, &hdr, data) == 0, c, "sandbox: set capabilities");
}

_noreturn_ static void exec_command(struct child_ctx *c)
{
	const struct plait_sandbox_spec *spec = c->spec;
	static const char *const no_env[] = { NULL };
	char *const *envp = (char *const *)(spec->env ? spec->env : no_env);
	const char *cmd = spec->argv[0];
	if (strchr(cmd, '/')) {
		execve(cmd, (char *const *)spec->argv, envp);
		CHILD_CHECK(false, c, "exec '%s'", cmd);
	}
	const char *path = DEFAULT_PATH;
	for (char *const *e = envp; *e; e++)
		if (startswith(*e, "PATH="))
			path = *e + 5;
	int saved = ENOENT;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	for (const char *s = path;;) {
		const char *e = strchrnul(s, ':');
		plait_buf_reset(&p);
		if (e == s)
			plait_buf_addch(&p, '.');
		else
			plait_buf_add(&p, s, e - s);
		plait_buf_addf(&p, "/%s", cmd);
		execve(p.buf, (char *const *)spec->argv, envp);
		if (errno != ENOENT && errno != ENOTDIR)
			saved = errno;
		if (!*e)
			break;
		s = e + 1;
	}
	errno = saved;
	CHILD_CHECK(false, c, "exec '%s' (PATH '%s')", cmd, path);
	_exit(127);
}

_noreturn_ static void run_pid1(struct child_ctx *c)
{
	const struct plait_sandbox_spec *spec = c->spec;
	char p[64];
	/* The namespace dies with the helper, and so with the caller. The
	 * helper may have died before the prctl: its end of the alive pipe is
	 * then closed (getppid() says nothing across a PID namespace). */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	struct pollfd alive = { .fd = c->alive_r, .events = POLLIN };
	if (poll(&alive, 1, 0) != 0)
		_exit(127);
	close(c->alive_r);

	CHILD_CHECK(mount(c->root_abs, c->root_abs, NULL, MS_BIND | MS_REC, NULL) == 0, c,
		    "sandbox: bind '%s'", c->root_abs);
	/* Reopened: the earlier path now leads to the bind on top. */
	int rootfd = open(c->root_abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	CHILD_CHECK(rootfd >= 0, c, "sandbox: open '%s'", c->root_abs);
	/* nodev: a device node an image layer carries (BuildKit keeps them) can
	 * be listed but never opened; /dev below is the only place with usable
	 * nodes. Not nosuid (as runc): no_new_privs already voids setuid bits,
	 * and an entitlement that lifts it gets working su/sudo back. */
	fd_path(p, sizeof(p), rootfd);
	CHILD_CHECK(mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | mount_flags_of(rootfd) | MS_NODEV, NULL) == 0, c,
		    "sandbox: remount '%s' nodev", c->root_abs);

	/* Secrets go on a tmpfs first, which /proc then covers. */
	int staging = stage_files(c, rootfd);
	if (c->share_pids) {
		/* --no-process-sandbox: the PID namespace is plait's, and so is
		 * its /proc (a new proc mount is what was refused). */
		mount_in_root(c, rootfd, "/proc", "/proc", NULL, MS_BIND | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			      NULL, false);
	} else {
		int fd = openat_in_root(rootfd, "/proc", O_PATH);
		errno = fd < 0 ? -fd : 0;
		CHILD_CHECK(fd >= 0, c, "sandbox: open mount target '/proc'");
		fd_path(p, sizeof(p), fd);
		if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
			CHILD_CHECK(errno != EPERM, c,
				    "sandbox: mount proc for RUN's own PID namespace: refused here (a container "
				    "whose /proc is masked or read-only?); run plait with --no-process-sandbox to "
				    "let RUN share plait's PID namespace and /proc instead");
			CHILD_CHECK(false, c, "sandbox: mount 'proc' on '/proc'");
		}
		close(fd);
	}
	{
		int fd = openat_in_root(rootfd, "/sys", O_PATH);
		errno = fd < 0 ? -fd : 0;
		CHILD_CHECK(fd >= 0, c, "sandbox: open mount target '/sys'");
		fd_path(p, sizeof(p), fd);
		if (mount("sysfs", p, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
			close(fd);
			mount_in_root(c, rootfd, "/sys", "/sys", NULL, MS_BIND | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				      NULL, true);
		} else {
			close(fd);
		}
	}
	setup_dev(c, rootfd);
	const unsigned long host_file = MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	mount_in_root(c, rootfd, spec->resolv_conf ? spec->resolv_conf : "/etc/resolv.conf", "/etc/resolv.conf",
		      NULL, host_file, NULL, true);
	mount_in_root(c, rootfd, spec->hosts ? spec->hosts : "/etc/hosts", "/etc/hosts", NULL, host_file, NULL, true);
	/* Every extra mount is nodev and nosuid: a bind of the context, a stage,
	 * a cache or a secret is data, and under no_new_privs a setuid bit there
	 * would change nothing anyway. */
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct plait_sandbox_mount *m = &spec->mounts[i];
		if (m->type == PLAIT_SANDBOX_TMPFS) {
			mount_in_root(c, rootfd, "tmpfs", m->target, "tmpfs",
				      MS_NOSUID | MS_NODEV | (m->readonly ? MS_RDONLY : 0), m->options, false);
		} else if (m->type == PLAIT_SANDBOX_FILE) {
			/* The staging tmpfs is attached (under /proc) in this
			 * namespace, so a classic bind from it is allowed. */
			snprintf(p, sizeof(p), "/proc/self/fd/%d/%zu", staging, i);
			mount_in_root(c, rootfd, p, m->target, NULL,
				      MS_BIND | MS_NOSUID | MS_NODEV | (m->mode & 0111 ? 0 : MS_NOEXEC), NULL, true);
		} else {
			mount_in_root(c, rootfd, m->source, m->target, NULL, MS_BIND | MS_REC | MS_NOSUID | MS_NODEV,
				      NULL, m->readonly);
		}
	}
	if (staging >= 0)
		close(staging);
	const char *hn = spec->hostname ? spec->hostname : "plait";
	CHILD_CHECK(sethostname(hn, strlen(hn)) == 0, c, "sandbox: set hostname '%s'", hn);

	CHILD_CHECK(fchdir(rootfd) == 0, c, "sandbox: enter '%s'", c->root_abs);
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		/* The old root is stacked under the new one: detach it. */
		CHILD_CHECK(umount2(".", MNT_DETACH) == 0, c, "sandbox: detach the old root");
	} else {
		/* e.g. a root on initramfs: chroot still confines path lookups. */
		CHILD_CHECK(chroot(".") == 0, c, "sandbox: chroot '%s'", c->root_abs);
	}
	CHILD_CHECK(chdir("/") == 0, c, "sandbox: chdir /");
	close(rootfd);

	const char *wd = spec->workdir && *spec->workdir ? spec->workdir : "/";
	mkdir_p(c, wd);
	CHILD_CHECK(chdir(wd) == 0, c, "change to working directory '%s'", wd);

	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHILD_CHECK(devnull >= 0, c, "sandbox: open /dev/null");
	CHILD_CHECK(dup2(devnull, 0) == 0 && dup2(c->out_w, 1) == 1 && dup2(c->err_w, 2) == 2, c,
		    "sandbox: set up stdio");

	if (!spec->insecure) /* RUN --security=insecure, allowed by the build: keep them */
		drop_capabilities(c);
	/* Under --userns=single setgroups is denied (an unprivileged map): the
	 * groups stay what they are, none of them mapped. */
	CHILD_CHECK(setgroups(c->user->n_groups, c->user->groups) == 0 || (errno == EPERM && plait_userns_flatten()),
		    c, "set groups of user '%s'", spec->user && *spec->user ? spec->user : "root");
	const char *unmapped = plait_userns_self()->nested
				   ? " (not mapped in plait's user namespace: --userns=single maps root only)"
				   : "";
	CHILD_CHECK(setgid(c->user->gid) == 0, c, "set gid %u%s", (unsigned)c->user->gid,
		    errno == EINVAL ? unmapped : "");
	CHILD_CHECK(setuid(c->user->uid) == 0, c, "set uid %u%s", (unsigned)c->user->uid,
		    errno == EINVAL ? unmapped : "");
	/* No setuid bit or file capability raises what RUN may do (as runc's
	 * noNewPrivileges); RUN --security=insecure, an entitlement the build
	 * was given, is the one place it is left off. */
	CHILD_CHECK(spec->insecure || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, c, "sandbox: set no_new_privs");

	/* The caller may ignore or block signals (SIGPIPE): the command must not. */
	sigset_t all;
	sigemptyset(&all);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			(void)signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* Nothing but 0-2 and the close-on-exec sync pipe survive exec. */
	CHILD_CHECK(close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0, c, "sandbox: close descriptors");
	exec_command(c);
}

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		(void)ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Close every descriptor above stderr but the n in keep. The helper is forked
 * from a threaded caller and lives as long as the command: without this it
 * would hold what other jobs had open at that moment (their output pipes,
 * whose EOF they wait for; their cache locks, which a copy keeps taken). */
static int close_all_but(int *keep, size_t n)
{
	qsort(keep, n, sizeof(*keep), cmp_int);
	unsigned int from = 3;
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < (int)from)
			continue;
		if ((unsigned int)keep[i] > from && close_range(from, keep[i] - 1, 0) < 0)
			return -1;
		from = keep[i] + 1;
	}
	return close_range(from, ~0U, 0);
}

_noreturn_ static void run_helper(struct child_ctx *c)
{
	/* Killed with the caller (kill -9 of plait included); it may have died
	 * already, before the prctl. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != c->caller)
		_exit(1);
	int keep[] = { c->out_w, c->err_w, c->sync_w, c->status_w };
	CHILD_CHECK(close_all_but(keep, ARRAY_SIZE(keep)) == 0, c, "sandbox: close the caller's descriptors");
	int flags = CLONE_NEWNS | (c->share_pids ? 0 : CLONE_NEWPID) | CLONE_NEWUTS | CLONE_NEWIPC;
	if (c->spec->network_none)
		flags |= CLONE_NEWNET;
	CHILD_CHECK(unshare(flags) == 0, c, "sandbox: create namespaces (are you root?)");
	/* Nothing we mount may reach the caller's namespace. */
	CHILD_CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, c, "sandbox: make mounts private");
	if (c->spec->network_none)
		loopback_up();
	int alive[2];
	CHILD_CHECK(pipe2(alive, O_CLOEXEC) == 0, c, "sandbox: create a pipe");
	pid_t pid = fork();
	CHILD_CHECK(pid >= 0, c, "sandbox: fork");
	if (pid == 0) {
		close(alive[1]);
		c->alive_r = alive[0];
		run_pid1(c);
	}
	close(alive[0]); /* alive[1] stays open until the helper exits */
	close(c->out_w);
	close(c->err_w);
	close(c->sync_w);
	int32_t msg[2] = { pid, 0 };
	(void)plait_write_all(c->status_w, msg, sizeof(msg[0]));
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			_exit(1);
	msg[1] = st;
	(void)plait_write_all(c->status_w, &msg[1], sizeof(msg[1]));
	_exit(0);
}

/* ---- the caller's side ---- */

struct line_buf {
	struct plait_buf b;
	enum plait_sandbox_stream stream;
	int fd;
};

static void deliver(const struct plait_sandbox_spec *spec, struct line_buf *l, bool eof)
{
	size_t start = 0;
	for (;;) {
		char *nl = memchr(l->b.buf + start, '\n', l->b.len - start);
		size_t end;
		if (nl)
			end = nl - l->b.buf;
		else if (l->b.len - start >= LINE_MAX_BYTES || (eof && l->b.len > start))
			end = l->b.len;
		else
			break;
		if (spec->on_output)
			spec->on_output(spec->opaque, l->stream, l->b.buf + start, end - start);
		start = nl ? end + 1 : end;
	}
	if (start) {
		memmove(l->b.buf, l->b.buf + start, l->b.len - start);
		plait_buf_setlen(&l->b, l->b.len - start);
	}
}

static void close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0) {
			close(p[i]);
			p[i] = -1;
		}
}

void plait_sandbox_result_release(struct plait_sandbox_result *res)
{
	if (!res)
		return;
	plait_strv_free(res->stubs);
	res->stubs = NULL;
}

int plait_sandbox_run(const struct plait_sandbox_spec *spec, struct plait_sandbox_result *res,
		      struct plait_error **err)
{
	*res = (struct plait_sandbox_result){ 0 };
	if (!spec->argv || !spec->argv[0])
		return plait_error_set(err, PLAIT_E_USAGE, "sandbox: empty command");
	if (spec->workdir && *spec->workdir && spec->workdir[0] != '/')
		return plait_error_set(err, PLAIT_E_USAGE, "working directory '%s' must be absolute", spec->workdir);
	for (size_t i = 0; i < spec->n_mounts; i++) {
		const struct plait_sandbox_mount *m = &spec->mounts[i];
		if (!m->target || m->target[0] != '/')
			return plait_error_set(err, PLAIT_E_USAGE, "mount target '%s' must be an absolute path",
					       m->target ? m->target : "");
		if (m->type == PLAIT_SANDBOX_BIND && (!m->source || m->source[0] != '/'))
			return plait_error_set(err, PLAIT_E_USAGE, "mount source '%s' must be an absolute path",
					       m->source ? m->source : "");
	}

	_cleanup_free_ char *root_abs = realpath(spec->rootfs, NULL);
	if (!root_abs)
		return plait_error_set_errno(err, PLAIT_E_NOT_FOUND, errno, "sandbox root '%s'", spec->rootfs);
	_cleanup_close_ int rootfd = open(root_abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "sandbox root '%s'", root_abs);

	struct plait_sandbox_user user;
	int r = plait_sandbox_resolve_user(root_abs, spec->user, &user, err);
	if (r < 0)
		return r;

	struct stubs stubs = { 0 };
	_cleanup_strv_free_ char **env = NULL; /* before any goto out: freed on every path */
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 }, syncp[2] = { -1, -1 }, statp[2] = { -1, -1 };
	struct line_buf lines[2] = { { PLAIT_BUF_INIT, PLAIT_SANDBOX_STDOUT, -1 },
				     { PLAIT_BUF_INIT, PLAIT_SANDBOX_STDERR, -1 } };
	_cleanup_buf_ struct plait_buf sync_msg = PLAIT_BUF_INIT;
	pid_t helper = -1;

	static const char *const dirs[] = { "/proc", "/sys", "/dev" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs) && r >= 0; i++)
		r = ensure_target(rootfd, root_abs, dirs[i], true, &stubs, err);
	if (r >= 0)
		r = ensure_target(rootfd, root_abs, "/etc/resolv.conf", false, &stubs, err);
	if (r >= 0)
		r = ensure_target(rootfd, root_abs, "/etc/hosts", false, &stubs, err);
	for (size_t i = 0; i < spec->n_mounts && r >= 0; i++) {
		const struct plait_sandbox_mount *m = &spec->mounts[i];
		bool dir = m->type != PLAIT_SANDBOX_FILE;
		if (m->type == PLAIT_SANDBOX_BIND) {
			struct stat st;
			if (stat(m->source, &st) < 0) {
				r = plait_error_set_errno(err, PLAIT_E_NOT_FOUND, errno, "mount source '%s'", m->source);
				break;
			}
			dir = S_ISDIR(st.st_mode);
		}
		r = ensure_target(rootfd, root_abs, m->target, dir, &stubs, err);
	}
	if (r < 0)
		goto out;

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(syncp, O_CLOEXEC) < 0 ||
	    pipe2(statp, O_CLOEXEC) < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "sandbox: create pipes");
		goto out;
	}
	/* HOME from the user's passwd entry when the environment has none, as runc does. */
	struct plait_sandbox_spec with_home = *spec;
	bool has_home = false;
	for (const char *const *e = spec->env; e && *e; e++) {
		plait_strv_push(&env, *e);
		has_home |= startswith(*e, "HOME=");
	}
	if (!has_home) {
		struct plait_buf h = PLAIT_BUF_INIT;
		plait_buf_addf(&h, "HOME=%s", user.home ? user.home : "/");
		plait_strv_push(&env, h.buf);
		plait_buf_release(&h);
	}
	with_home.env = (const char *const *)env;
	struct child_ctx c = { &with_home, root_abs, &user, outp[1], errp[1], syncp[1], statp[1], getpid(), -1,
			       atomic_load(&no_process_sandbox) };
	helper = fork();
	if (helper < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "sandbox: fork");
		goto out;
	}
	if (helper == 0) {
		close(outp[0]);
		close(errp[0]);
		close(syncp[0]);
		close(statp[0]);
		run_helper(&c);
	}
	close(outp[1]);
	close(errp[1]);
	close(syncp[1]);
	close(statp[1]);
	outp[1] = errp[1] = syncp[1] = statp[1] = -1;
	lines[0].fd = outp[0];
	lines[1].fd = errp[0];

	int32_t stat_msg[2];
	size_t stat_got = 0;
	bool cancel_open = spec->cancel_fd > 0, sync_open = true, stat_open = true;
	while (lines[0].fd >= 0 || lines[1].fd >= 0 || sync_open || stat_open) {
		struct pollfd pfd[5];
		int n = 0;
		for (int i = 0; i < 2; i++)
			pfd[n++] = (struct pollfd){ .fd = lines[i].fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = sync_open ? syncp[0] : -1, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = stat_open ? statp[0] : -1, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = cancel_open ? spec->cancel_fd : -1, .events = POLLIN };
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = plait_error_set_errno(err, PLAIT_E_IO, errno, "sandbox: poll");
			kill(helper, SIGKILL);
			break;
		}
		char buf[16384];
		for (int i = 0; i < 2; i++) {
			if (lines[i].fd < 0 || !pfd[i].revents)
				continue;
			ssize_t got = read(lines[i].fd, buf, sizeof(buf));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				deliver(spec, &lines[i], true);
				close(lines[i].fd);
				lines[i].fd = -1;
				if (i == 0)
					outp[0] = -1;
				else
					errp[0] = -1;
				continue;
			}
			plait_buf_add(&lines[i].b, buf, got);
			deliver(spec, &lines[i], false);
		}
		if (sync_open && pfd[2].revents) {
			ssize_t got = read(syncp[0], buf, sizeof(buf));
			if (got > 0)
				plait_buf_add(&sync_msg, buf, got);
			else if (got == 0 || errno != EINTR)
				sync_open = false;
		}
		if (stat_open && pfd[3].revents) {
			ssize_t got = read(statp[0], (char *)stat_msg + stat_got, sizeof(stat_msg) - stat_got);
			if (got > 0)
				stat_got += got;
			else if (got == 0 || errno != EINTR)
				stat_open = false;
		}
		if (cancel_open && pfd[4].revents) {
			cancel_open = false;
			res->cancelled = true;
			/* pid 1 dying takes the whole namespace with it. */
			if (stat_got >= sizeof(stat_msg[0]))
				kill(stat_msg[0], SIGKILL);
			kill(helper, SIGKILL);
		}
	}
	int hst;
	while (waitpid(helper, &hst, 0) < 0 && errno == EINTR)
		;
	if (r < 0)
		goto out;
	if (sync_msg.len) {
		r = plait_error_set(err, PLAIT_E_GENERIC, "%s", sync_msg.buf);
		goto out;
	}
	if (stat_got == sizeof(stat_msg)) {
		if (WIFSIGNALED(stat_msg[1]))
			res->signal = WTERMSIG(stat_msg[1]);
		else
			res->exit_code = WEXITSTATUS(stat_msg[1]);
	} else if (res->cancelled) {
		res->signal = SIGKILL;
	} else {
		r = plait_error_set(err, PLAIT_E_GENERIC, "sandbox: the helper process died (status %d)", hst);
	}

out:
	remove_stubs(rootfd, &stubs);
	if (stubs.n) {
		res->stubs = xcalloc(stubs.n + 1, sizeof(char *));
		for (size_t i = 0; i < stubs.n; i++)
			res->stubs[i] = xstrdup(stubs.v[i].path);
	}
	stubs_release(&stubs);
	close_pair(outp);
	close_pair(errp);
	close_pair(syncp);
	close_pair(statp);
	plait_buf_release(&lines[0].b);
	plait_buf_release(&lines[1].b);
	plait_sandbox_user_release(&user);
	return r < 0 ? r : 0;
}
