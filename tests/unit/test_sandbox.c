/* Unit tests for platforms/sandbox: a busybox root (Debian's busybox-static).
 * Needs root; skipped otherwise or when /bin/busybox is not static-capable. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/snapshot.h"
#include "platforms/sandbox.h"

#include "core/banned.h"

#define BUSYBOX "/bin/busybox"

static char tmpdir[] = "/tmp/plait-sbx-XXXXXX";
static char root[PATH_MAX];
static bool usable;

static void write_file(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, content, strlen(content)), 0);
	close(fd);
}

static void in_root(struct plait_buf *b, const char *rel)
{
	plait_buf_reset(b);
	plait_buf_addf(b, "%s%s", root, rel);
}

static bool root_has(const char *rel)
{
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	in_root(&p, rel);
	struct stat st;
	return lstat(p.buf, &st) == 0;
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0 || access(BUSYBOX, X_OK) != 0)
		return 0;
	assert_non_null(mkdtemp(tmpdir));
	snprintf(root, sizeof(root), "%s/root", tmpdir);
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	assert_int_equal(mkdir(root, 0755), 0);
	in_root(&p, "/bin");
	assert_int_equal(mkdir(p.buf, 0755), 0);
	in_root(&p, "/etc");
	assert_int_equal(mkdir(p.buf, 0755), 0);
	/* A copy, so the test root never links to the host's binary. */
	_cleanup_buf_ struct plait_buf bb = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&bb, BUSYBOX, 64 << 20), 0);
	in_root(&p, "/bin/busybox");
	int fd = open(p.buf, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	assert_true(fd >= 0);
	assert_int_equal(plait_write_all(fd, bb.buf, bb.len), 0);
	close(fd);
	static const char *const applets[] = { "sh", "echo", "id", "cat", "ls", "env", "hostname",
						"ip", "pwd", "sleep", "touch", "grep", "test", "tr", "printf" };
	for (size_t i = 0; i < ARRAY_SIZE(applets); i++) {
		in_root(&p, "/bin/");
		plait_buf_adds(&p, applets[i]);
		assert_int_equal(symlink("busybox", p.buf), 0);
	}
	in_root(&p, "/etc/passwd");
	write_file(p.buf, "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n");
	in_root(&p, "/etc/group");
	write_file(p.buf, "root:x:0:\nbob:x:1000:\nstaff:x:50:alice,bob\n");
	usable = true;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (usable)
		(void)plait_rm_rf(tmpdir);
	return 0;
}

static void require_root(void)
{
	if (!usable)
		skip();
}

struct output {
	struct plait_buf out, err;
};

static void collect(void *opaque, enum plait_sandbox_stream stream, const char *line, size_t len)
{
	struct output *o = opaque;
	struct plait_buf *b = stream == PLAIT_SANDBOX_STDOUT ? &o->out : &o->err;
	plait_buf_add(b, line, len);
	plait_buf_addch(b, '\n');
}

static const char *const default_env[] = { "PATH=/bin", NULL };

static struct plait_sandbox_spec spec_for(const char *const *argv, struct output *o)
{
	return (struct plait_sandbox_spec){
		.rootfs = root, .argv = argv, .env = default_env, .on_output = collect, .opaque = o,
		.cancel_fd = -1,
	};
}

/* Runs spec and fails the test on a setup error. */
static void run_ok(const struct plait_sandbox_spec *spec, struct plait_sandbox_result *res)
{
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_sandbox_run(spec, res, &err);
	if (r < 0)
		fail_msg("sandbox run: %s", err->msg);
}

static void output_release(struct output *o)
{
	plait_buf_release(&o->out);
	plait_buf_release(&o->err);
}

#define SH(...) ((const char *const[]){ "sh", "-c", __VA_ARGS__, NULL })

static void test_sandbox__stdout_and_stderr_are_captured_by_line(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(SH("echo hello; echo oops >&2; echo world; printf tail"), &o);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_int_equal(res.exit_code, 0);
	assert_int_equal(res.signal, 0);
	assert_string_equal(o.out.buf, "hello\nworld\ntail\n");
	assert_string_equal(o.err.buf, "oops\n");
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void test_sandbox__exit_status_is_propagated(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(SH("exit 3"), &o);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_int_equal(res.exit_code, 3);
	assert_false(res.cancelled);
	plait_sandbox_result_release(&res);
	output_release(&o);
}

/* The given environment and nothing of the host's; HOME is added from the
 * user's passwd entry only when the environment has none (as runc does). */
static void test_sandbox__environment_is_exactly_the_given_one(void **state)
{
	(void)state;
	require_root();
	setenv("PLAIT_HOST_SECRET", "leak", 1);
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	const char *const env[] = { "PATH=/bin", "A=1", "B=two words", NULL };
	const char *const argv[] = { "env", NULL };
	struct plait_sandbox_spec spec = spec_for(argv, &o);
	spec.env = env;
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_int_equal(res.exit_code, 0);
	assert_string_equal(o.out.buf, "PATH=/bin\nA=1\nB=two words\nHOME=/root\n");
	unsetenv("PLAIT_HOST_SECRET");
	plait_sandbox_result_release(&res);
	output_release(&o);

	/* A HOME that is given is kept. */
	struct output o2 = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	const char *const env2[] = { "HOME=/srv", NULL };
	spec = spec_for(argv, &o2);
	spec.env = env2;
	run_ok(&spec, &res);
	assert_string_equal(o2.out.buf, "HOME=/srv\n");
	plait_sandbox_result_release(&res);
	output_release(&o2);
}

static void test_sandbox__command_is_pid_1_with_a_fresh_proc(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	/* the shell's own glob, so that no other process of ours is in the
	 * listing (with "ls /proc | grep -c" grep may or may not be there yet) */
	struct plait_sandbox_spec spec = spec_for(SH("echo $$; set -- /proc/[0-9]*; echo $# $1"), &o);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	/* pid 1 (sh) is the only process: nothing of the host. */
	assert_string_equal(o.out.buf, "1\n1 /proc/1\n");
	plait_sandbox_result_release(&res);
	output_release(&o);
}

/* --no-process-sandbox: the command shares our PID namespace and sees our
 * /proc (our own pid in it); every other part of the sandbox stays. */
static void test_sandbox__no_process_sandbox_shares_the_pid_namespace(void **state)
{
	(void)state;
	require_root();
	plait_sandbox_set_process_sandbox(false);
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test $$ != 1 && test -d /proc/%d && grep NoNewPrivs /proc/self/status && hostname",
		 (int)getpid());
	struct plait_sandbox_spec spec = spec_for(SH(cmd), &o);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	plait_sandbox_set_process_sandbox(true);
	assert_int_equal(res.exit_code, 0);
	assert_string_equal(o.out.buf, "NoNewPrivs:\t1\nplait\n");
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void test_sandbox__hostname_is_set(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	const char *const argv[] = { "hostname", NULL };
	struct plait_sandbox_spec spec = spec_for(argv, &o);
	spec.hostname = "buildhost";
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_string_equal(o.out.buf, "buildhost\n");
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void test_sandbox__network_none_has_only_an_up_loopback(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(SH("ls /sys/class/net; ip -o link | grep -c UP"), &o);
	spec.network_none = true;
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_string_equal(o.out.buf, "lo\n1\n");
	assert_string_equal(o.err.buf, "");
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void run_id(const char *user, const char *want)
{
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	const char *const argv[] = { "id", NULL };
	struct plait_sandbox_spec spec = spec_for(argv, &o);
	spec.user = user;
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_string_equal(o.out.buf, want);
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void test_sandbox__user_by_name_gets_supplementary_groups(void **state)
{
	(void)state;
	require_root();
	run_id("bob", "uid=1000(bob) gid=1000(bob) groups=50(staff),1000(bob)\n"); /* the kernel sorts groups */
}

static void test_sandbox__user_by_uid_gid_need_not_exist(void **state)
{
	(void)state;
	require_root();
	run_id("4321:50", "uid=4321 gid=50(staff) groups=50(staff)\n");
	run_id("bob:staff", "uid=1000(bob) gid=50(staff) groups=50(staff)\n");
	run_id("", "uid=0(root) gid=0(root) groups=0(root)\n");
}

static void test_sandbox__missing_user_names_user_and_file(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	const char *const argv[] = { "id", NULL };
	struct plait_sandbox_spec spec = spec_for(argv, &o);
	spec.user = "nobody2";
	struct plait_sandbox_result res;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_sandbox_run(&spec, &res, &err), -PLAIT_E_NOT_FOUND);
	assert_non_null(strstr(err->msg, "'nobody2'"));
	assert_non_null(strstr(err->msg, "/etc/passwd"));
	plait_error_clear(&err);
	spec.user = "bob:nogroup";
	assert_int_equal(plait_sandbox_run(&spec, &res, &err), -PLAIT_E_NOT_FOUND);
	assert_non_null(strstr(err->msg, "'nogroup'"));
	assert_non_null(strstr(err->msg, "/etc/group"));
	assert_string_equal(o.out.buf, "");
	output_release(&o);
}

static void test_sandbox__resolve_user_stays_inside_the_root(void **state)
{
	(void)state;
	require_root();
	/* An image whose /etc/passwd is an absolute symlink: it must resolve
	 * to the image's file, not the host's. */
	_cleanup_buf_ struct plait_buf r2 = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf p = PLAIT_BUF_INIT;
	plait_buf_addf(&r2, "%s/root2", tmpdir);
	assert_int_equal(mkdir(r2.buf, 0755), 0);
	plait_buf_addf(&p, "%s/etc", r2.buf);
	assert_int_equal(mkdir(p.buf, 0755), 0);
	plait_buf_adds(&p, "/passwd");
	assert_int_equal(symlink("/../../../../etc/passwd.img", p.buf), 0);
	plait_buf_reset(&p);
	plait_buf_addf(&p, "%s/etc/passwd.img", r2.buf);
	write_file(p.buf, "root:x:4242:77::/:/bin/sh\n");
	struct plait_sandbox_user u;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_sandbox_resolve_user(r2.buf, "root", &u, &err), 0);
	assert_int_equal(u.uid, 4242);
	assert_int_equal(u.gid, 77);
	assert_int_equal(u.n_groups, 1);
	assert_int_equal(u.groups[0], 77);
	plait_sandbox_user_release(&u);
	assert_int_equal(plait_sandbox_resolve_user(r2.buf, "a:b:c", &u, &err), -PLAIT_E_NOT_FOUND);
	assert_int_equal(plait_sandbox_resolve_user(r2.buf, ":5", &u, &err), -PLAIT_E_USAGE);
	assert_non_null(strstr(err->msg, "invalid user ':5'"));
}

static void test_sandbox__workdir_is_created(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	const char *const argv[] = { "pwd", NULL };
	struct plait_sandbox_spec spec = spec_for(argv, &o);
	spec.workdir = "/work/dir";
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_string_equal(o.out.buf, "/work/dir\n");
	assert_true(root_has("/work/dir"));
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void test_sandbox__bind_and_tmpfs_mounts_are_visible(void **state)
{
	(void)state;
	require_root();
	_cleanup_buf_ struct plait_buf src = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf f = PLAIT_BUF_INIT;
	plait_buf_addf(&src, "%s/hostdir", tmpdir);
	assert_int_equal(mkdir(src.buf, 0755), 0);
	plait_buf_addf(&f, "%s/hello", src.buf);
	write_file(f.buf, "from host\n");
	struct plait_sandbox_mount mounts[] = {
		{ .type = PLAIT_SANDBOX_BIND, .source = src.buf, .target = "/mnt/src", .readonly = true },
		{ .type = PLAIT_SANDBOX_TMPFS, .target = "/scratch", .options = "size=1m" },
	};
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(
		SH("cat /mnt/src/hello; grep -c ' /scratch tmpfs' /proc/mounts; "
		   "touch /scratch/x && echo tmpfs-writable; touch /mnt/src/x 2>/dev/null || echo bind-readonly"),
		&o);
	spec.mounts = mounts;
	spec.n_mounts = ARRAY_SIZE(mounts);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_string_equal(o.out.buf, "from host\n1\ntmpfs-writable\nbind-readonly\n");
	/* The stub mount points are gone again, and nothing leaked to the host dir. */
	assert_false(root_has("/mnt"));
	assert_false(root_has("/scratch"));
	assert_int_equal(access(f.buf, F_OK), 0);
	plait_sandbox_result_release(&res);
	output_release(&o);
}

/* Root in RUN has Docker's default capabilities minus CAP_MKNOD: it cannot
 * remount a read-only bind writable, make device nodes, or mount anything. */
static void test_sandbox__root_cannot_remount_binds_or_make_devices(void **state)
{
	(void)state;
	require_root();
	_cleanup_buf_ struct plait_buf src = PLAIT_BUF_INIT;
	plait_buf_addf(&src, "%s/guarded", tmpdir);
	assert_int_equal(mkdir(src.buf, 0755), 0);
	struct plait_sandbox_mount mounts[] = {
		{ .type = PLAIT_SANDBOX_BIND, .source = src.buf, .target = "/mnt/g", .readonly = true },
	};
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(
		SH("mount -o remount,rw,bind /mnt/g 2>/dev/null && echo remounted; "
		   "touch /mnt/g/pwned 2>/dev/null && echo wrote; "
		   "mknod /blk b 7 0 2>/dev/null && echo mknod; "
		   "mount -t tmpfs none /tmp 2>/dev/null && echo mounted; "
		   "grep -E '^Cap(Eff|Bnd)' /proc/self/status"),
		&o);
	spec.mounts = mounts;
	spec.n_mounts = ARRAY_SIZE(mounts);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_null(strstr(o.out.buf, "remounted"));
	assert_null(strstr(o.out.buf, "wrote"));
	assert_null(strstr(o.out.buf, "mknod"));
	assert_null(strstr(o.out.buf, "mounted"));
	/* Docker's default set (0xa80425fb) less CAP_MKNOD (bit 27, 0x08000000). */
	assert_non_null(strstr(o.out.buf, "CapEff:\t00000000a00425fb"));
	assert_non_null(strstr(o.out.buf, "CapBnd:\t00000000a00425fb"));
	_cleanup_buf_ struct plait_buf pw = PLAIT_BUF_INIT;
	plait_buf_addf(&pw, "%s/pwned", src.buf);
	assert_int_equal(access(pw.buf, F_OK), -1);
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void test_sandbox__dev_is_minimal_and_usable(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(SH("echo x > /dev/null && ls /dev | grep -v '^fd$' | tr '\\n' ' '; "
						    "test -c /dev/pts/ptmx && echo pts"), &o);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	(void)res;
	assert_true(startswith(o.out.buf, "full null ptmx pts random shm stderr stdin stdout tty urandom zero"));
	plait_sandbox_result_release(&res);
	output_release(&o);
}

/* The options of the mount at point in the sandbox's /proc/self/mounts output
 * ("point opts" lines), or fails. */
static char *mount_opts(const char *out, const char *point)
{
	for (const char *l = out; *l;) {
		const char *e = strchrnul(l, '\n');
		size_t n = strlen(point);
		if ((size_t)(e - l) > n && !memcmp(l, point, n) && l[n] == ' ') {
			_cleanup_buf_ struct plait_buf b = PLAIT_BUF_INIT;
			plait_buf_addch(&b, ',');
			plait_buf_add(&b, l + n + 1, e - (l + n + 1));
			plait_buf_addch(&b, ',');
			return xstrdup(b.buf);
		}
		l = *e ? e + 1 : e;
	}
	fail_msg("no mount at '%s' in:\n%s", point, out);
	return NULL;
}

static void assert_opt(const char *out, const char *point, const char *opt, bool present)
{
	char *o = mount_opts(out, point);
	char want[32];
	snprintf(want, sizeof(want), ",%s,", opt);
	if ((strstr(o, want) != NULL) != present)
		fail_msg("mount '%s' has options '%s': expected %s %s", point, o, present ? "with" : "without", opt);
	free(o);
}

static void test_sandbox__root_and_mounts_are_nodev_and_image_devices_unusable(void **state)
{
	(void)state;
	require_root();
	_cleanup_buf_ struct plait_buf src = PLAIT_BUF_INIT, node = PLAIT_BUF_INIT;
	plait_buf_addf(&src, "%s/bound", tmpdir);
	assert_int_equal(mkdir(src.buf, 0755), 0);
	/* A node such as an image layer may carry: the host's null (1:3), harmless
	 * if it ever opened. */
	in_root(&node, "/null-node");
	assert_int_equal(mknod(node.buf, S_IFCHR | 0666, makedev(1, 3)), 0);
	struct plait_sandbox_mount mounts[] = {
		{ .type = PLAIT_SANDBOX_BIND, .source = src.buf, .target = "/mnt/rw" },
		{ .type = PLAIT_SANDBOX_BIND, .source = src.buf, .target = "/mnt/ro", .readonly = true },
		{ .type = PLAIT_SANDBOX_TMPFS, .target = "/mnt/t" },
	};
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(
		SH("cat /null-node 2>/dev/null && echo read-node; "
		   "echo x 2>/dev/null > /null-node && echo wrote-node; "
		   "echo x > /dev/null && echo dev-null-ok; "
		   "while read -r d p t o r; do echo \"$p $o\"; done < /proc/self/mounts"),
		&o);
	spec.mounts = mounts;
	spec.n_mounts = ARRAY_SIZE(mounts);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	if (strstr(o.out.buf, "read-node") || strstr(o.out.buf, "wrote-node"))
		fail_msg("a device node of the root opened in RUN:\n%s", o.out.buf);
	if (!strstr(o.out.buf, "dev-null-ok"))
		fail_msg("/dev/null unusable in RUN:\n%s%s", o.out.buf, o.err.buf);
	assert_opt(o.out.buf, "/", "nodev", true);
	assert_opt(o.out.buf, "/", "nosuid", false); /* as runc: no_new_privs does that part */
	assert_opt(o.out.buf, "/dev", "nodev", true);
	assert_opt(o.out.buf, "/dev", "nosuid", true);
	assert_opt(o.out.buf, "/dev/pts", "nosuid", true);
	assert_opt(o.out.buf, "/dev/shm", "nodev", true);
	assert_opt(o.out.buf, "/etc/hosts", "nodev", true);
	assert_opt(o.out.buf, "/etc/hosts", "ro", true);
	static const char *const extra[] = { "/mnt/rw", "/mnt/ro", "/mnt/t" };
	for (size_t i = 0; i < ARRAY_SIZE(extra); i++) {
		assert_opt(o.out.buf, extra[i], "nodev", true);
		assert_opt(o.out.buf, extra[i], "nosuid", true);
	}
	assert_opt(o.out.buf, "/mnt/ro", "ro", true);
	assert_opt(o.out.buf, "/mnt/rw", "rw", true);
	assert_int_equal(unlink(node.buf), 0);
	plait_sandbox_result_release(&res);
	output_release(&o);
}

/* A secret or a #! script: a file from memory, with its owner and mode,
 * read-only, noexec unless its mode says otherwise, on a tmpfs of the RUN's
 * own namespace; the target's stub goes afterwards. */
static void test_sandbox__file_mounts_come_from_memory(void **state)
{
	(void)state;
	require_root();
	static const char secret[] = "s3cr3t-value";
	static const char script[] = "#!/bin/sh\necho script-ran\n";
	struct plait_sandbox_mount mounts[] = {
		{ .type = PLAIT_SANDBOX_FILE, .target = "/run/secrets/tok", .data = secret,
		  .data_len = strlen(secret), .uid = 1000, .gid = 50, .mode = 0440 },
		{ .type = PLAIT_SANDBOX_FILE, .target = "/script", .data = script, .data_len = strlen(script),
		  .mode = 0755 },
		{ .type = PLAIT_SANDBOX_FILE, .target = "/empty", .data = "", .data_len = 0, .mode = 0400 },
	};
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(
		SH("cat /run/secrets/tok; echo; ls -ln /run/secrets/tok | tr -s ' ' | cut -d' ' -f1,3,4; "
		   "echo x 2>/dev/null >> /run/secrets/tok && echo secret-writable; "
		   "/script; test -s /empty || echo empty-ok; "
		   "while read -r d p t o r; do case $p in /run/secrets/tok|/script) echo \"$p $o\"; "
		   "echo \"type $p $t\";; esac; done < /proc/self/mounts"),
		&o);
	spec.mounts = mounts;
	spec.n_mounts = ARRAY_SIZE(mounts);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	if (res.exit_code != 0)
		fail_msg("exit %d: %s%s", res.exit_code, o.out.buf, o.err.buf);
	assert_true(startswith(o.out.buf, "s3cr3t-value\n-r--r----- 1000 50\nscript-ran\nempty-ok\n"));
	assert_null(strstr(o.out.buf, "secret-writable"));
	assert_opt(o.out.buf, "/run/secrets/tok", "ro", true);
	assert_opt(o.out.buf, "/run/secrets/tok", "noexec", true);
	assert_opt(o.out.buf, "/run/secrets/tok", "nodev", true);
	assert_opt(o.out.buf, "/script", "noexec", false);
	assert_non_null(strstr(o.out.buf, "type /run/secrets/tok tmpfs\n"));
	/* Nothing of it stays in the root: the stubs are gone. */
	assert_false(root_has("/run"));
	assert_false(root_has("/script"));
	assert_false(root_has("/empty"));
	plait_sandbox_result_release(&res);
	output_release(&o);
}

/* A bind source holding a mount of its own (a context with a mounted
 * directory): the mount below is nodev and nosuid too. */
static void test_sandbox__mounts_below_a_bind_are_nodev_too(void **state)
{
	(void)state;
	require_root();
	_cleanup_buf_ struct plait_buf src = PLAIT_BUF_INIT, nested = PLAIT_BUF_INIT, node = PLAIT_BUF_INIT;
	plait_buf_addf(&src, "%s/outer", tmpdir);
	plait_buf_addf(&nested, "%s/nested", src.buf);
	assert_int_equal(mkdir(src.buf, 0755), 0);
	assert_int_equal(mkdir(nested.buf, 0755), 0);
	assert_int_equal(mount("tmpfs", nested.buf, "tmpfs", 0, "size=64k"), 0);
	plait_buf_addf(&node, "%s/null-node", nested.buf);
	assert_int_equal(mknod(node.buf, S_IFCHR | 0666, makedev(1, 3)), 0);
	struct plait_sandbox_mount mounts[] = {
		{ .type = PLAIT_SANDBOX_BIND, .source = src.buf, .target = "/mnt/b" },
	};
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(
		SH("cat /mnt/b/nested/null-node 2>/dev/null && echo read-node; "
		   "while read -r d p t o r; do echo \"$p $o\"; done < /proc/self/mounts"),
		&o);
	spec.mounts = mounts;
	spec.n_mounts = ARRAY_SIZE(mounts);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_int_equal(umount2(nested.buf, MNT_DETACH), 0);
	if (strstr(o.out.buf, "read-node"))
		fail_msg("a device node on a mount below a bind opened in RUN:\n%s", o.out.buf);
	assert_opt(o.out.buf, "/mnt/b/nested", "nodev", true);
	assert_opt(o.out.buf, "/mnt/b/nested", "nosuid", true);
	plait_sandbox_result_release(&res);
	output_release(&o);
}

/* Processes whose command line is exactly "sleep <arg>". */
static int count_sleepers(const char *arg)
{
	DIR *d = opendir("/proc");
	assert_non_null(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		char p[300], buf[256];
		snprintf(p, sizeof(p), "/proc/%s/cmdline", de->d_name);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t k = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (k <= 0)
			continue;
		buf[k] = '\0';
		/* "sleep\0ARG\0" */
		if (streq(buf, "sleep") && (size_t)k > 6 && streq(buf + 6, arg))
			n++;
	}
	closedir(d);
	return n;
}

/* The caller killed with SIGKILL (kill -9 of plait): the helper and the
 * RUN's whole PID namespace die with it. */
static void test_sandbox__a_killed_caller_takes_the_run_with_it(void **state)
{
	(void)state;
	require_root();
	char arg[32];
	snprintf(arg, sizeof(arg), "%d", 100000 + (int)getpid());
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t caller = fork();
	assert_true(caller >= 0);
	if (caller == 0) {
		close(p[0]);
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "echo started; sleep %s & exec sleep %s", arg, arg);
		struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
		struct plait_sandbox_spec spec = spec_for(SH(cmd), &o);
		spec.on_output = NULL;
		(void)!write(p[1], "x", 1);
		struct plait_sandbox_result res;
		_cleanup_error_ struct plait_error *err = NULL;
		(void)plait_sandbox_run(&spec, &res, &err);
		_exit(0);
	}
	close(p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	int n = 0;
	for (int i = 0; i < 200 && (n = count_sleepers(arg)) < 2; i++)
		usleep(20 * 1000);
	assert_int_equal(n, 2);
	assert_int_equal(kill(caller, SIGKILL), 0);
	int st;
	assert_int_equal(waitpid(caller, &st, 0), caller);
	for (int i = 0; i < 250 && (n = count_sleepers(arg)) > 0; i++)
		usleep(20 * 1000);
	if (n)
		fail_msg("%d 'sleep %s' of the RUN still run after its caller was killed", n, arg);
	/* The killed caller could not remove its stubs (a build's snapshot is
	 * thrown away whole): do it here for the tests that follow. */
	static const char *const stubs[] = { "/proc", "/sys", "/dev", "/etc/resolv.conf", "/etc/hosts" };
	_cleanup_buf_ struct plait_buf sp = PLAIT_BUF_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(stubs); i++) {
		in_root(&sp, stubs[i]);
		if (rmdir(sp.buf) < 0 && errno == ENOTDIR)
			assert_int_equal(unlink(sp.buf), 0);
	}
}

static void test_sandbox__command_has_no_new_privs(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(SH("grep NoNewPrivs /proc/self/status"), &o);
	spec.user = "bob";
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_string_equal(o.out.buf, "NoNewPrivs:\t1\n");
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void test_sandbox__resolv_conf_is_bound_and_not_left_in_the_upper(void **state)
{
	(void)state;
	require_root();
	_cleanup_buf_ struct plait_buf layer = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf work = PLAIT_BUF_INIT;
	_cleanup_buf_ struct plait_buf rc = PLAIT_BUF_INIT;
	plait_buf_addf(&work, "%s/snaps", tmpdir);
	assert_int_equal(mkdir(work.buf, 0755), 0);
	plait_buf_addf(&rc, "%s/resolv.conf", tmpdir);
	write_file(rc.buf, "nameserver 192.0.2.53\n");
	const char *lowers[] = { root };
	struct plait_snapshot *s = NULL;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_snapshot_prepare(lowers, 1, work.buf, PLAIT_SNAPSHOT_OVERLAY, &s, &err), 0);

	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(SH("cat /etc/resolv.conf; echo x >> /etc/resolv.conf || echo readonly"), &o);
	spec.rootfs = plait_snapshot_root(s);
	spec.resolv_conf = rc.buf;
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_string_equal(o.out.buf, "nameserver 192.0.2.53\nreadonly\n");
	/* Created for the mount, so listed and removed. */
	assert_non_null(res.stubs);
	bool listed = false;
	for (char **p = res.stubs; *p; p++)
		listed |= streq(*p, "/etc/resolv.conf");
	assert_true(listed);
	_cleanup_buf_ struct plait_buf up = PLAIT_BUF_INIT;
	plait_buf_addf(&up, "%s/etc/resolv.conf", plait_snapshot_upper(s));
	assert_int_equal(access(up.buf, F_OK), -1);
	plait_buf_reset(&up);
	plait_buf_addf(&up, "%s/proc", plait_snapshot_upper(s));
	assert_int_equal(access(up.buf, F_OK), -1);
	/* The host file is untouched. */
	_cleanup_buf_ struct plait_buf host = PLAIT_BUF_INIT;
	assert_int_equal(plait_buf_read_file(&host, rc.buf, 4096), 0);
	assert_string_equal(host.buf, "nameserver 192.0.2.53\n");
	plait_sandbox_result_release(&res);
	plait_snapshot_release(s);
	output_release(&o);
}

static void test_sandbox__missing_command_is_an_error(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	const char *const argv[] = { "nosuchcmd", NULL };
	struct plait_sandbox_spec spec = spec_for(argv, &o);
	struct plait_sandbox_result res;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_true(plait_sandbox_run(&spec, &res, &err) < 0);
	assert_non_null(strstr(err->msg, "exec 'nosuchcmd'"));
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void test_sandbox__cancel_kills_the_namespace(void **state)
{
	(void)state;
	require_root();
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1);
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(SH("sleep 60 & sleep 60; echo not-reached"), &o);
	spec.cancel_fd = p[0];
	struct plait_sandbox_result res;
	uint64_t t0 = plait_now_ns();
	run_ok(&spec, &res);
	assert_true(res.cancelled);
	assert_int_equal(res.signal, SIGKILL);
	assert_true(plait_now_ns() - t0 < 10ull * 1000 * 1000 * 1000);
	assert_string_equal(o.out.buf, "");
	close(p[0]);
	close(p[1]);
	plait_sandbox_result_release(&res);
	output_release(&o);
}

struct held_run {
	struct plait_sandbox_spec spec;
	struct plait_sandbox_result res;
	atomic_int started;
	int rc;
};

static void note_start(void *opaque, enum plait_sandbox_stream stream, const char *line, size_t len)
{
	(void)stream;
	(void)line;
	(void)len;
	atomic_store(&((struct held_run *)opaque)->started, 1);
}

static void *run_held(void *arg)
{
	struct held_run *h = arg;
	h->rc = plait_sandbox_run(&h->spec, &h->res, NULL);
	return NULL;
}

/* Jobs run RUNs from several threads at once: a descriptor the caller has
 * open while one runs (another job's output pipe or cache lock) must not be
 * held by that run's processes, or its owner waits for the other RUN. */
static void test_sandbox__a_run_holds_none_of_the_callers_descriptors(void **state)
{
	(void)state;
	require_root();
	int other[2], cancel[2];
	assert_int_equal(pipe(other), 0); /* not close-on-exec: the worst case */
	assert_int_equal(pipe2(cancel, O_CLOEXEC), 0);
	struct held_run h = { 0 };
	h.spec = spec_for(SH("echo started; sleep 30"), NULL);
	h.spec.on_output = note_start;
	h.spec.opaque = &h;
	h.spec.cancel_fd = cancel[0];
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, run_held, &h), 0);
	for (int i = 0; i < 1000 && !atomic_load(&h.started); i++)
		usleep(10 * 1000);
	assert_true(atomic_load(&h.started));
	close(other[1]);
	struct pollfd pfd = { .fd = other[0], .events = POLLIN };
	int n = poll(&pfd, 1, 3000);
	char c;
	ssize_t got = n == 1 ? read(other[0], &c, 1) : -1;
	assert_int_equal(write(cancel[1], "x", 1), 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(h.rc, 0);
	assert_true(h.res.cancelled);
	if (got != 0)
		fail_msg("the pipe's write end, closed by the caller, is still open in the RUN's processes "
			 "(poll %d, read %zd): they hold the caller's descriptors", n, got);
	close(other[0]);
	close(cancel[0]);
	close(cancel[1]);
	plait_sandbox_result_release(&h.res);
}

static void test_sandbox__stubs_are_removed_after_the_run(void **state)
{
	(void)state;
	require_root();
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(SH(":"), &o);
	struct plait_sandbox_result res;
	run_ok(&spec, &res);
	assert_false(root_has("/proc"));
	assert_false(root_has("/dev"));
	assert_false(root_has("/sys"));
	assert_false(root_has("/etc/hosts"));
	assert_true(root_has("/etc/passwd"));
	plait_sandbox_result_release(&res);
	output_release(&o);
}

static void test_sandbox__relative_workdir_is_refused(void **state)
{
	(void)state;
	struct output o = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	struct plait_sandbox_spec spec = spec_for(SH(":"), &o);
	spec.workdir = "rel";
	struct plait_sandbox_result res;
	_cleanup_error_ struct plait_error *err = NULL;
	assert_int_equal(plait_sandbox_run(&spec, &res, &err), -PLAIT_E_USAGE);
	assert_string_equal(err->msg, "working directory 'rel' must be absolute");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sandbox__stdout_and_stderr_are_captured_by_line),
		cmocka_unit_test(test_sandbox__exit_status_is_propagated),
		cmocka_unit_test(test_sandbox__environment_is_exactly_the_given_one),
		cmocka_unit_test(test_sandbox__command_is_pid_1_with_a_fresh_proc),
		cmocka_unit_test(test_sandbox__no_process_sandbox_shares_the_pid_namespace),
		cmocka_unit_test(test_sandbox__hostname_is_set),
		cmocka_unit_test(test_sandbox__network_none_has_only_an_up_loopback),
		cmocka_unit_test(test_sandbox__user_by_name_gets_supplementary_groups),
		cmocka_unit_test(test_sandbox__user_by_uid_gid_need_not_exist),
		cmocka_unit_test(test_sandbox__missing_user_names_user_and_file),
		cmocka_unit_test(test_sandbox__resolve_user_stays_inside_the_root),
		cmocka_unit_test(test_sandbox__workdir_is_created),
		cmocka_unit_test(test_sandbox__bind_and_tmpfs_mounts_are_visible),
		cmocka_unit_test(test_sandbox__root_cannot_remount_binds_or_make_devices),
		cmocka_unit_test(test_sandbox__dev_is_minimal_and_usable),
		cmocka_unit_test(test_sandbox__root_and_mounts_are_nodev_and_image_devices_unusable),
		cmocka_unit_test(test_sandbox__command_has_no_new_privs),
		cmocka_unit_test(test_sandbox__resolv_conf_is_bound_and_not_left_in_the_upper),
		cmocka_unit_test(test_sandbox__missing_command_is_an_error),
		cmocka_unit_test(test_sandbox__cancel_kills_the_namespace),
		cmocka_unit_test(test_sandbox__file_mounts_come_from_memory),
		cmocka_unit_test(test_sandbox__mounts_below_a_bind_are_nodev_too),
		cmocka_unit_test(test_sandbox__a_killed_caller_takes_the_run_with_it),
		cmocka_unit_test(test_sandbox__a_run_holds_none_of_the_callers_descriptors),
		cmocka_unit_test(test_sandbox__stubs_are_removed_after_the_run),
		cmocka_unit_test(test_sandbox__relative_workdir_is_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
