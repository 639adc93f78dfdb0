/* platforms/rootless.c - entering a user namespace for builds without root
 * (see rootless.h). */
#include "rootless.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/strv.h"
#include "core/userns.h"
#include "core/banned.h"

int plait_userns_mode_from_string(const char *s, enum plait_userns_mode *out)
{
	if (streq(s, "auto"))
		*out = PLAIT_USERNS_AUTO;
	else if (streq(s, "single"))
		*out = PLAIT_USERNS_SINGLE;
	else
		return -1;
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = plait_write_all(fd, text, strlen(text));
	close(fd);
	return r;
}

/* An executable named name in PATH, else in /usr/bin; NULL when none. */
static char *find_program(const char *given, const char *name)
{
	if (given)
		return access(given, X_OK) == 0 ? xstrdup(given) : NULL;
	const char *path = getenv("PATH");
	struct plait_buf p = PLAIT_BUF_INIT;
	for (const char *s = path ? path : ""; *s;) {
		const char *e = strchrnul(s, ':');
		if (e > s) {
			plait_buf_reset(&p);
			plait_buf_add(&p, s, e - s);
			plait_buf_addf(&p, "/%s", name);
			if (access(p.buf, X_OK) == 0)
				return plait_buf_detach(&p, NULL);
		}
		s = *e ? e + 1 : e;
	}
	plait_buf_reset(&p);
	plait_buf_addf(&p, "/usr/bin/%s", name);
	if (access(p.buf, X_OK) == 0)
		return plait_buf_detach(&p, NULL);
	plait_buf_release(&p);
	return NULL;
}

/* The map for one kind of id (uid or gid) from the subordinate-id file. */
static int map_for(const char *file, const char *user, uint32_t self, const char *kind,
		   struct plait_idmap_range *map, size_t *n_map, struct plait_error **err)
{
	_cleanup_buf_ struct plait_buf text = PLAIT_BUF_INIT;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	size_t n_sub = 0;
	struct plait_idmap_range sub[PLAIT_IDMAP_MAX - 1];
	if (fd >= 0) {
		int r = plait_buf_read_fd(&text, fd, 16 << 20);
		close(fd);
		if (r < 0)
			return plait_error_set_errno(err, PLAIT_E_IO, -r, "read '%s'", file);
		n_sub = plait_subid_parse(text.buf, user, self, sub, ARRAY_SIZE(sub));
		if (n_sub > ARRAY_SIZE(sub))
			n_sub = ARRAY_SIZE(sub);
	} else if (errno != ENOENT) {
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "read '%s'", file);
	}
	uint64_t total = 0;
	*n_map = plait_idmap_build(self, sub, n_sub, map, PLAIT_IDMAP_MAX, &total);
	if (total < PLAIT_ROOTLESS_MIN_IDS) {
		char have[48] = "no";
		if (n_sub)
			snprintf(have, sizeof(have), "only %llu", (unsigned long long)(total - 1));
		return plait_error_set(
		    err, PLAIT_E_USAGE,
		    "%s: user '%s' (%s %u) has %s subordinate %ss (a rootless build needs %d, for the owners "
		    "of an image's files): add a range as root: usermod --add-subuids 100000-165535 "
		    "--add-subgids 100000-165535 %s (or build with --userns=single: your id alone, every "
		    "file owned by root)",
		    file, user, kind, (unsigned)self, have, kind, PLAIT_ROOTLESS_MIN_IDS - 1, user);
	}
	return 0;
}

int plait_rootless_maps(const struct plait_rootless_env *env, const char *user, uid_t uid, gid_t gid,
			struct plait_idmap_range umap[PLAIT_IDMAP_MAX], size_t *n_umap,
			struct plait_idmap_range gmap[PLAIT_IDMAP_MAX], size_t *n_gmap, struct plait_error **err)
{
	const char *subuid = env && env->subuid ? env->subuid : "/etc/subuid";
	const char *subgid = env && env->subgid ? env->subgid : "/etc/subgid";
	int r = map_for(subuid, user, uid, "uid", umap, n_umap, err);
	if (r >= 0)
		r = map_for(subgid, user, gid, "gid", gmap, n_gmap, err);
	return r;
}

static void format_map_args(char ***argv, const char *prog, pid_t pid, const struct plait_idmap_range *m,
			    size_t n)
{
	char b[32];
	plait_strv_push(argv, prog);
	snprintf(b, sizeof(b), "%d", (int)pid);
	plait_strv_push(argv, b);
	for (size_t i = 0; i < n; i++) {
		snprintf(b, sizeof(b), "%u", (unsigned)m[i].inside);
		plait_strv_push(argv, b);
		snprintf(b, sizeof(b), "%u", (unsigned)m[i].outside);
		plait_strv_push(argv, b);
		snprintf(b, sizeof(b), "%u", (unsigned)m[i].count);
		plait_strv_push(argv, b);
	}
}

/* Run argv (in the helper child), its stderr to errfd; its exit status. */
static int run_wait(char **argv, int errfd)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(errfd, 2);
		execv(argv[0], argv);
		dprintf(2, "cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *userns_hint(int e)
{
	if (e == EPERM || e == EACCES)
		return " (unprivileged user namespaces are off: sysctl kernel.unprivileged_userns_clone=1, "
		       "or an AppArmor/seccomp profile that allows them, e.g. Ubuntu's "
		       "kernel.apparmor_restrict_unprivileged_userns=0)";
	if (e == ENOSPC)
		return " (user.max_user_namespaces is 0 or reached)";
	if (e == EINVAL)
		return " (plait must be single-threaded here: a bug)";
	return "";
}

static int enter_single(struct plait_error **err)
{
	uid_t uid = geteuid();
	gid_t gid = getegid();
	if (unshare(CLONE_NEWUSER) < 0)
		return plait_error_set_errno(err, PLAIT_E_GENERIC, errno, "cannot create a user namespace%s",
					     userns_hint(errno));
	char b[64];
	int r = write_file("/proc/self/setgroups", "deny");
	if (r >= 0) {
		snprintf(b, sizeof(b), "0 %u 1\n", (unsigned)uid);
		r = write_file("/proc/self/uid_map", b);
	}
	if (r >= 0) {
		snprintf(b, sizeof(b), "0 %u 1\n", (unsigned)gid);
		r = write_file("/proc/self/gid_map", b);
	}
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_GENERIC, -r, "write the id maps of plait's user namespace");
	return 0;
}

static int enter_mapped(const struct plait_rootless_env *env, struct plait_error **err)
{
	uid_t uid = getuid();
	gid_t gid = getgid();
	struct passwd *pw = getpwuid(uid);
	_cleanup_free_ char *user = pw ? xstrdup(pw->pw_name) : NULL;
	char uidstr[16];
	snprintf(uidstr, sizeof(uidstr), "%u", (unsigned)uid);
	const char *name = user ? user : uidstr;
	const char *subuid = env && env->subuid ? env->subuid : "/etc/subuid";
	const char *subgid = env && env->subgid ? env->subgid : "/etc/subgid";
	struct plait_idmap_range umap[PLAIT_IDMAP_MAX], gmap[PLAIT_IDMAP_MAX];
	size_t n_umap, n_gmap;
	int r = plait_rootless_maps(env, name, uid, gid, umap, &n_umap, gmap, &n_gmap, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *newuidmap = find_program(env ? env->newuidmap : NULL, "newuidmap");
	_cleanup_free_ char *newgidmap = find_program(env ? env->newgidmap : NULL, "newgidmap");
	if (!newuidmap || !newgidmap)
		return plait_error_set(err, PLAIT_E_NOT_FOUND,
				       "%s not found (in PATH or /usr/bin): a rootless build needs it to map "
				       "the ranges of %s: install Debian's uidmap package (apt-get install uidmap)",
				       !newuidmap ? "newuidmap" : "newgidmap", !newuidmap ? subuid : subgid);

	pid_t self = getpid();
	_cleanup_strv_free_ char **uargv = NULL, **gargv = NULL;
	format_map_args(&uargv, newuidmap, self, umap, n_umap);
	format_map_args(&gargv, newgidmap, self, gmap, n_gmap);

	int go[2], errp[2];
	if (pipe2(go, O_CLOEXEC) < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "create a pipe");
	if (pipe2(errp, O_CLOEXEC) < 0) {
		close(go[0]);
		close(go[1]);
		return plait_error_set_errno(err, PLAIT_E_IO, errno, "create a pipe");
	}
	pid_t helper = fork();
	if (helper < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "fork");
		close(go[0]);
		close(go[1]);
		close(errp[0]);
		close(errp[1]);
		return r;
	}
	if (helper == 0) {
		/* Killed with plait; waits for the unshare, maps, reports. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(go[1]);
		close(errp[0]);
		char c;
		ssize_t got;
		while ((got = read(go[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (got != 1)
			_exit(2); /* plait could not unshare: it reports that itself */
		int st = run_wait(uargv, errp[1]);
		if (st == 0)
			st = run_wait(gargv, errp[1]);
		_exit(st == 0 ? 0 : 1);
	}
	close(go[0]);
	close(errp[1]);
	int saved = 0;
	if (unshare(CLONE_NEWUSER) < 0)
		saved = errno;
	else
		(void)plait_write_all(go[1], "u", 1);
	close(go[1]);
	_cleanup_buf_ struct plait_buf msg = PLAIT_BUF_INIT;
	(void)plait_buf_read_fd(&msg, errp[0], 64 * 1024);
	close(errp[0]);
	int st = 0;
	while (waitpid(helper, &st, 0) < 0 && errno == EINTR)
		;
	if (saved)
		return plait_error_set_errno(err, PLAIT_E_GENERIC, saved, "cannot create a user namespace%s",
					     userns_hint(saved));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		while (msg.len && (msg.buf[msg.len - 1] == '\n' || msg.buf[msg.len - 1] == ' '))
			plait_buf_setlen(&msg, msg.len - 1);
		return plait_error_set(err, PLAIT_E_GENERIC,
				       "map the ranges of user '%s' from %s and %s with %s and %s failed%s%s",
				       name, subuid, subgid, newuidmap, newgidmap, msg.len ? ": " : "",
				       msg.len ? msg.buf : "");
	}
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return plait_error_set_errno(err, PLAIT_E_GENERIC, errno,
					     "become root of plait's user namespace");
	return 0;
}

int plait_rootless_enter(enum plait_userns_mode mode, const struct plait_rootless_env *env, bool *entered,
			 struct plait_error **err)
{
	*entered = false;
	if (geteuid() == 0) {
		const struct plait_userns_info *in = plait_userns_self();
		if (!in->nested)
			return 0; /* real root: --userns changes nothing */
		if (mode == PLAIT_USERNS_SINGLE) {
			plait_userns_set_flatten(true);
			return 0;
		}
		if (in->nested && (in->n_uids < PLAIT_ROOTLESS_MIN_IDS || in->n_gids < PLAIT_ROOTLESS_MIN_IDS))
			return plait_error_set(
			    err, PLAIT_E_USAGE,
			    "plait runs as root of a user namespace that maps only %llu uids and %llu gids "
			    "(/proc/self/uid_map, /proc/self/gid_map): the owners an image's files have cannot "
			    "be written; give the namespace at least %d ids (unshare --map-auto --map-root-user, "
			    "a Kubernetes pod with hostUsers: false), or build with --userns=single (every file "
			    "owned by root)",
			    (unsigned long long)in->n_uids, (unsigned long long)in->n_gids, PLAIT_ROOTLESS_MIN_IDS);
		return 0;
	}
	/* The cache and the docker config must stay the caller's: HOME inside
	 * the namespace would otherwise come from root's passwd entry. */
	if (!getenv("HOME")) {
		struct passwd *pw = getpwuid(getuid());
		if (pw && pw->pw_dir)
			setenv("HOME", pw->pw_dir, 1);
	}
	int r = mode == PLAIT_USERNS_SINGLE ? enter_single(err) : enter_mapped(env, err);
	if (r < 0)
		return r;
	if (mode == PLAIT_USERNS_SINGLE)
		plait_userns_set_flatten(true);
	*entered = true;
	return 0;
}
