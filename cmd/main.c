/* cmd/main.c - the plait executable: the command table and dispatch.
 * To add a subcommand: see cmd/README.md. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>

#include "common.h"
#include "plait-config.h"
#include "platforms/rootless.h"
#include "platforms/sandbox.h"
#include "core/banned.h"

static const struct plait_cmd commands[] = {
	{ "build", cmd_build, "build an image from a Dockerfile (no daemon)", true, true },
	{ "inspect", cmd_inspect, "show an image or index in a registry, OCI layout or archive" },
	{ "copy", cmd_copy, "copy images between registries, OCI layouts and archives" },
	{ "index", cmd_index, "assemble a multi-platform index from single-platform images" },
	{ "login", cmd_login, "store credentials for a registry" },
	{ "logout", cmd_logout, "remove stored credentials for a registry" },
	{ "cache", cmd_cache, "show and prune the build cache", false, true },
	{ "qemu", cmd_qemu, "show and set up QEMU emulation for foreign architectures" },
	{ "builder", cmd_builder, "manage builders: machines reached over SSH that build natively" },
	{ "serve", cmd_serve, "the node side of 'plait builder' (run over ssh)", true, true },
	{ "plan", cmd_plan, "show the jobs a build would run, without building" },
	{ "bake", cmd_bake, "build the targets of a docker-bake.json file together", true, true },
	{ "lint", cmd_lint, "check a Dockerfile against container best practices" },
	{ "version", cmd_version, "print the version" },
};

/* Read by every thread (transfers, jobs, the scheduler): an atomic, which the
 * handler may store to because it is lock-free. */
atomic_int plait_interrupted;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal handler stores to an atomic_int");

/* The handler's own state: the signal flag proper. */
static volatile sig_atomic_t signalled;

/* The first SIGINT/SIGTERM asks every transfer to stop and nothing to be
 * tagged; a second one kills plait at once. */
static void on_signal(int sig)
{
	if (signalled) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	signalled = 1;
	atomic_store(&plait_interrupted, 1);
}

static void print_usage(FILE *f)
{
	fprintf(f, "usage: plait <command> [options] [args]\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'plait <command> --help' for a command's options.\n");
}

/* What a command printed must have reached its destination: `plait inspect
 * --raw REF > m.json` on a full disk (or a closed stdout) is a failure, not a
 * truncated file and exit 0. */
static int finish_stdout(int rc)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return rc;
	if (errno == EPIPE)
		return rc; /* the reader stopped reading (| head): its choice, not an error */
	fprintf(stderr, "plait: error: cannot write standard output%s%s\n", errno ? ": " : "",
		errno ? strerror(errno) : "");
	return rc ? rc : 1;
}

/* --userns MODE and --no-process-sandbox act before the command parses its
 * options (the namespace must be made while plait is single-threaded): they
 * are looked for here, up to "--", and the command's parser accepts them. */
static int rootless_options(int argc, char **argv, enum plait_userns_mode *mode)
{
	*mode = PLAIT_USERNS_AUTO;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (streq(a, "--"))
			break;
		if (streq(a, "-h") || streq(a, "--help"))
			return -1; /* the help needs no namespace */
		if (streq(a, "--no-process-sandbox"))
			plait_sandbox_set_process_sandbox(false);
		else if (startswith(a, "--userns="))
			v = a + strlen("--userns=");
		else if (streq(a, "--userns") && i + 1 < argc)
			v = argv[++i];
		if (v && plait_userns_mode_from_string(v, mode) < 0)
			return usage_error(argv[1], "--userns: unknown '%s'; use auto or single", v);
	}
	return 0;
}

/* Not root: the build runs as root of a user namespace of its own
 * (platforms/rootless.h); as root of a small user namespace, only with
 * --userns=single. */
static int enter_rootless(int argc, char **argv)
{
	enum plait_userns_mode mode;
	int r = rootless_options(argc, argv, &mode);
	if (r)
		return r < 0 ? 0 : r;
	struct plait_error *err = NULL;
	bool entered;
	int code = plait_rootless_enter(mode, NULL, &entered, &err);
	if (code == -PLAIT_E_USAGE && geteuid() != 0 && streq(argv[1], "cache")) {
		/* No range: the cache can only be one of --userns=single builds,
		 * whose files are all the user's own - no namespace needed. */
		plait_error_free(err);
		return 0;
	}
	if (code < 0) {
		plait_error_wrap(&err, "plait %s", argv[1]);
		return report_error(err);
	}
	return 0;
}

/* A command that mounts (the build's overlay snapshots) gets a mount
 * namespace of its own, made while plait is still single-threaded: every
 * mount it makes lives there only, so none is left on the host when plait is
 * killed (kill -9, OOM), and none is seen by other processes. Host mounts
 * still reach it (slave propagation). Rootless, plait is root of its own
 * user namespace by now (enter_rootless), which owns the new mount namespace. */
static void own_mount_namespace(void)
{
	if (geteuid() != 0)
		return;
	int host = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (host < 0)
		return;
	if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		(void)setns(host, CLONE_NEWNS); /* still shared with the host: back, not half private */
	close(host);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		print_usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (streq(name, "--help") || streq(name, "-h") || streq(name, "help")) {
		print_usage(stdout);
		return 0;
	}
	if (streq(name, "--version"))
		name = "version";
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (streq(commands[i].name, name)) {
			if (commands[i].rootless) {
				int r = enter_rootless(argc, argv);
				if (r)
					return r;
			}
			if (commands[i].own_mounts)
				own_mount_namespace();
			return finish_stdout(commands[i].fn(argc - 1, argv + 1));
		}
	fprintf(stderr, "plait: '%s' is not a plait command; see 'plait --help'\n", name);
	return EXIT_USAGE;
}
