/* cmd/main.c - the plait executable: the command table and dispatch.
 * To add a subcommand: see cmd/README.md. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <stdio.h>

#include "common.h"
#include "plait-config.h"
#include "core/banned.h"

static const struct plait_cmd commands[] = {
	{ "build", cmd_build, "build an image from a Dockerfile (no daemon)" },
	{ "inspect", cmd_inspect, "show an image or index in a registry, OCI layout or archive" },
	{ "copy", cmd_copy, "copy images between registries, OCI layouts and archives" },
	{ "index", cmd_index, "assemble a multi-platform index from single-platform images" },
	{ "login", cmd_login, "store credentials for a registry" },
	{ "logout", cmd_logout, "remove stored credentials for a registry" },
	{ "cache", cmd_cache, "show and prune the build cache" },
	{ "qemu", cmd_qemu, "show and set up QEMU emulation for foreign architectures" },
	{ "plan", cmd_plan, "show the jobs a build would run, without building" },
	{ "bake", cmd_bake, "build the targets of a docker-bake.json file together" },
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
		if (streq(commands[i].name, name))
			return finish_stdout(commands[i].fn(argc - 1, argv + 1));
	fprintf(stderr, "plait: '%s' is not a plait command; see 'plait --help'\n", name);
	return EXIT_USAGE;
}
