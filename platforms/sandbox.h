/* platforms/sandbox.h - run one RUN step's command in a root file system.
 *
 * Contract:
 *  - The command runs as pid 1 of new PID, mount, UTS and IPC namespaces (as
 *    under BuildKit/runc, no init: `echo $$` prints 1), plus a new network
 *    namespace holding only an up loopback when network_none is set; otherwise
 *    it shares the host's network (BuildKit's "host" mode; plait has no bridge).
 *  - Inside: the root is a private bind of spec->rootfs, nodev (a device node
 *    an image layer carries can be listed, never opened), entered with
 *    pivot_root; a fresh /proc; /sys read-only; a nosuid,nodev tmpfs /dev
 *    (mode 0755) with null, zero, full, random, urandom and tty bound from the
 *    host, a new devpts instance at /dev/pts (nosuid, noexec) with /dev/ptmx,
 *    a nosuid,nodev,noexec tmpfs /dev/shm, and fd, stdin, stdout, stderr
 *    symlinks: /dev holds the only usable device nodes; the host's resolv.conf
 *    and hosts bound read-only, nosuid, nodev, noexec over /etc/resolv.conf and
 *    /etc/hosts; the caller's extra mounts, each nosuid and nodev (a remount
 *    only adds flags: a bind keeps those its source has); the hostname; the working directory
 *    (created, owned by root, when missing, as docker does); the user's groups,
 *    gid and uid; exactly spec->env (nothing from the host environment); stdin
 *    is /dev/null; every other descriptor is closed (close_range).
 *  - argv[0] without a '/' is looked up in the PATH of spec->env (docker's
 *    default PATH when env has none), never in the host's.
 *  - Mount targets are resolved INSIDE the root (openat2 RESOLVE_IN_ROOT), so an
 *    image's symlink (/etc/resolv.conf -> /etc/passwd of the host) cannot make
 *    a mount land outside it. Targets that do not exist are created as stubs
 *    (empty files or directories) before the run and removed after it when they
 *    are still empty stubs, restoring the parent directory's times, so they do
 *    not end up in the layer (BuildKit does the same). The parent directory
 *    itself may still show as changed (its ctime; an overlay copy-up).
 *    result->stubs lists what was created, for a layer writer that wants to skip it.
 *  - Output: the command's stdout and stderr are pipes read by the calling
 *    thread and handed to on_output one line at a time (without the '\n'; a
 *    last line without '\n' and lines over 64 KiB are delivered as they are).
 *  - Cancel: when cancel_fd (an eventfd or pipe) becomes readable,
 *    the whole PID namespace is killed (SIGKILL to its pid 1) and the result
 *    says cancelled.
 *  - Nothing outlives the caller: the helper and pid 1 have PR_SET_PDEATHSIG
 *    (SIGKILL), so a caller killed with SIGKILL takes the helper, and pid 1's
 *    death the whole PID namespace, with it; every mount made for the RUN
 *    lives in its mount namespace only and goes with the last process.
 *  - FILE mounts (secrets): the content is written to a tmpfs (noswap where
 *    the kernel has it) that is mounted in the RUN's mount namespace only,
 *    under /proc, and bound read-only on the target from there: it is on no
 *    disk at any time, and no other process can see it.
 *  - The command runs with no_new_privs: setuid/setgid bits and file
 *    capabilities give nothing (an entitlement such as RUN --security=insecure
 *    would be the place to lift it), and with Docker's default capability set
 *    less CAP_MKNOD, bounding set included.
 *  - Isolated: mounts, pids, hostname, SysV IPC/POSIX mqueues, network (only
 *    with network_none), the environment, file descriptors, host devices
 *    other than the six above and a private pts. NOT isolated: the
 *    user (no user namespace: root inside is root outside; no seccomp),
 *    cgroups and resource limits, the kernel and its keyrings, time, /sys
 *    contents (read-only but host-wide), and the network without network_none.
 *    It is a build sandbox for trusted Dockerfiles, not a security boundary.
 *  - Rootless (platforms/rootless.h): the same, inside plait's user
 *    namespace; the user's ids are those of that namespace. Under
 *    --userns=single the kernel denies setgroups: the command keeps the
 *    invoking user's supplementary groups (unmapped, so they grant nothing
 *    the user does not have anyway), devpts gets no gid=5, and a USER other
 *    than root fails (its id is not mapped).
 *  - Requires root (CAP_SYS_ADMIN; of plait's user namespace when rootless). The calling process is not changed (no
 *    unshare, no chdir); safe to call from several threads at once. */
#ifndef PLAIT_SANDBOX_H
#define PLAIT_SANDBOX_H

#include "core/error.h"

#include <sys/types.h>

enum plait_sandbox_stream {
	PLAIT_SANDBOX_STDOUT = 1,
	PLAIT_SANDBOX_STDERR = 2,
};

typedef void (*plait_sandbox_output_fn)(void *opaque, enum plait_sandbox_stream stream,
					const char *line, size_t len);

enum plait_sandbox_mount_type {
	PLAIT_SANDBOX_BIND = 1, /* source: a host file or directory (RUN --mount type=bind/cache/secret) */
	PLAIT_SANDBOX_TMPFS,    /* RUN --mount type=tmpfs */
	PLAIT_SANDBOX_FILE,     /* a file made from data in memory (RUN --mount type=secret) */
};

struct plait_sandbox_mount {
	enum plait_sandbox_mount_type type;
	const char *source;  /* BIND: absolute host path */
	const char *target;  /* absolute path inside the root */
	bool readonly;
	const char *options; /* TMPFS: data such as "size=64m,mode=1777"; may be NULL */
	/* FILE: the content, its owner and mode. It lives on a tmpfs mounted
	 * inside the RUN's own mount namespace only, never on a persistent file
	 * system: it vanishes with the RUN, even when plait is killed. */
	const void *data;
	size_t data_len;
	uid_t uid;
	gid_t gid;
	mode_t mode;
};

struct plait_sandbox_spec {
	const char *rootfs;            /* the snapshot root */
	const char *const *argv;       /* NULL-terminated, argv[0] required */
	const char *const *env;        /* NULL-terminated "K=V"; NULL means empty */
	const char *workdir;           /* absolute inside the root; NULL means "/" */
	const char *user;              /* USER: name, uid, name:group, uid:gid; NULL or "" means root */
	const char *hostname;          /* NULL means "plait" */
	bool network_none;             /* RUN --network=none */
	bool insecure;                 /* RUN --security=insecure: capabilities not dropped, no no_new_privs */
	const char *resolv_conf;       /* host file; NULL means /etc/resolv.conf */
	const char *hosts;             /* host file; NULL means /etc/hosts */
	const struct plait_sandbox_mount *mounts;
	size_t n_mounts;
	plait_sandbox_output_fn on_output; /* may be NULL: output is discarded */
	void *opaque;
	int cancel_fd; /* readable means cancel; 0 or -1 for none, so a zeroed spec has none */
};

struct plait_sandbox_result {
	int exit_code;  /* when signal == 0 */
	int signal;     /* the signal that ended the command, or 0 */
	bool cancelled; /* killed because cancel_fd became readable */
	char **stubs;   /* NULL-terminated paths ("/etc/resolv.conf") created for mounts, or NULL */
};

/* Run spec->argv. Returns 0 when the command ran (whatever its exit status:
 * look at *res), <0 when the sandbox could not be set up or the command could
 * not be executed (the message says which, e.g. "exec 'foo': not found").
 * *res is filled in both cases; release it with plait_sandbox_result_release(). */
/* --no-process-sandbox (off by default; the whole process): the command
 * shares the caller's PID namespace and its /proc (bound, nosuid, nodev,
 * noexec) instead of a new PID namespace with a fresh proc - for containers
 * that refuse new proc mounts. It can then see and signal the caller's other
 * processes of the same user, and a killed build's RUN children that left
 * their process group are not taken with it. Without it, a refused proc mount
 * is an error that names this flag. */
void plait_sandbox_set_process_sandbox(bool on);

int plait_sandbox_run(const struct plait_sandbox_spec *spec, struct plait_sandbox_result *res,
		      struct plait_error **err);
void plait_sandbox_result_release(struct plait_sandbox_result *res);

struct plait_sandbox_user {
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups */
	size_t n_groups;
	char *home;    /* the passwd entry's home directory, or NULL when there is none */
};

/* Resolve USER against <rootfs>/etc/passwd and <rootfs>/etc/group, opened
 * through the root (a symlinked /etc/passwd stays inside the image). As docker:
 * a name must exist in passwd (-PLAIT_E_NOT_FOUND naming the user and the
 * file); a numeric uid need not (gid then 0 unless passwd has it); an explicit
 * group (name or gid) replaces the primary group and then no other groups are
 * added; otherwise the groups of /etc/group that list the user's name are.
 * groups always starts with the primary gid (as containerd and docker set it
 * up, so `id` shows it among groups=). NULL or "" is root (uid 0, gid 0). */
int plait_sandbox_resolve_user(const char *rootfs, const char *user, struct plait_sandbox_user *out,
			       struct plait_error **err);
void plait_sandbox_user_release(struct plait_sandbox_user *u);

#endif
