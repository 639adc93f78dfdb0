/* cmd/common.h - what the subcommands share: the command table entry, option
 * parsing helpers, error reporting and exit codes.
 *
 * Only cmd/ prints and exits. Exit codes: 0 success, 1 the operation failed,
 * 2 the command line was wrong (usage), 130 interrupted. */
#ifndef PLAIT_CMD_COMMON_H
#define PLAIT_CMD_COMMON_H

#include <stdatomic.h>

#include "core/error.h"
#include "registry/registry.h"

#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130

struct plait_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
	bool own_mounts; /* mounts snapshots: runs in a mount namespace of its own */
	bool rootless;   /* not root: runs in a user namespace of its own (cmd/main.c) */
};

int cmd_version(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_login(int argc, char **argv);
int cmd_logout(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_qemu(int argc, char **argv);
int cmd_bake(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_lint(int argc, char **argv);
int cmd_builder(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Commands with subcommands (plait cache du, plait qemu status, ...): run the
 * one argv[1] names from subs (NULL-name terminated), print usage for -h,
 * and a usage error naming the choices otherwise. */
struct plait_subcmd {
	const char *name;
	int (*fn)(int argc, char **argv);
};
int run_subcommand(const char *cmd, const char *usage, const struct plait_subcmd *subs, int argc,
		   char **argv);

/* Print "plait: error: <msg>" (and hints) and return the exit code for err. */
int report_error(struct plait_error *err);
/* Print "plait <cmd>: <msg>" plus "see 'plait <cmd> --help'" and return EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) _printf_(2, 3);

/* Registry options every command that talks to registries accepts:
 *   --insecure-registry HOST   (repeatable) plain HTTP / no TLS verification for HOST
 *   --cert-dir DIR             (repeatable) per-host CA directories like /etc/docker/certs.d
 *   --retries N                tries per request (default 5) */
struct registry_cli {
	char **insecure; /* NULL-terminated */
	char **cert_dirs; /* NULL-terminated, NULL when none given */
	char **mirrors;   /* --registry-mirror, in order */
	char *conf_file;  /* --registries-conf */
	struct plait_registries_conf *conf;
	struct plait_registry_opts opts;
};
/* getopt_long ids for the registry options; add REGISTRY_CLI_OPTIONS to a long option table. */
enum {
	OPT_INSECURE_REGISTRY = 0x1000,
	OPT_CERT_DIR,
	OPT_RETRIES,
	OPT_REGISTRY_MIRROR,
	OPT_REGISTRIES_CONF,
	OPT_FIRST_PRIVATE = 0x1100,
};
#define REGISTRY_CLI_OPTIONS                                                      \
	{ "insecure-registry", required_argument, NULL, OPT_INSECURE_REGISTRY }, \
	{ "cert-dir", required_argument, NULL, OPT_CERT_DIR },                     \
	{ "retries", required_argument, NULL, OPT_RETRIES }
#define REGISTRY_CLI_HELP                                                                      \
	"      --insecure-registry HOST  allow plain HTTP and unverified TLS for HOST (repeatable)\n" \
	"      --cert-dir DIR            CA certificates per host, laid out as DIR/HOST[:PORT]/ca.crt\n" \
	"                                (default /etc/docker/certs.d and /etc/containers/certs.d)\n" \
	"      --retries N               tries per request on 408, 429, 5xx and dropped connections\n" \
	"                                (default 5)\n"
/* Options of the commands that pull (build, bake, plan, copy, inspect, index
 * create): add PULL_CLI_OPTIONS after REGISTRY_CLI_OPTIONS, PULL_CLI_HELP to
 * the usage, and call registry_cli_finish_pull instead of registry_cli_finish:
 *   --registry-mirror HOST[:PORT]  (repeatable) a mirror of docker.io, tried in order
 *   --registries-conf FILE         registries.conf to read instead of the default
 *                                  files (also $CONTAINERS_REGISTRIES_CONF) */
#define PULL_CLI_OPTIONS                                                         \
	{ "registry-mirror", required_argument, NULL, OPT_REGISTRY_MIRROR },     \
	{ "registries-conf", required_argument, NULL, OPT_REGISTRIES_CONF }
#define PULL_CLI_HELP                                                                              \
	"      --registry-mirror HOST    a mirror of docker.io for pulls, tried before it, in order\n"  \
	"                                (repeatable; HOST[:PORT], http://HOST[:PORT] for plain HTTP)\n" \
	"      --registries-conf FILE    read mirrors, blocked and insecure registries from FILE\n"     \
	"                                (default $CONTAINERS_REGISTRIES_CONF, else\n"                   \
	"                                ~/.config/containers/registries.conf or\n"                       \
	"                                /etc/containers/registries.conf and their .d drop-ins)\n"
/* -j/--parallel and -q/--quiet of the commands that copy blobs (copy, index
 * create): add TRANSFER_CLI_OPTIONS to the long option table ("j:q" to the
 * short ones), TRANSFER_CLI_HELP to the usage, parse -j with parse_parallel_option. */
#define TRANSFER_CLI_OPTIONS                                   \
	{ "parallel", required_argument, NULL, 'j' },         \
	{ "quiet", no_argument, NULL, 'q' }
#define TRANSFER_CLI_HELP                                                            \
	"  -j, --parallel N              blobs transferred at once (default 4)\n" \
	"  -q, --quiet                   no progress lines\n"
/* Handle one of the registry options; returns 1 when c was one, 0 when not, <0 on a bad value. */
int registry_cli_option(struct registry_cli *rc, const char *cmd, int c, const char *arg);
/* Fill rc->opts from what was parsed. */
void registry_cli_finish(struct registry_cli *rc);
/* registry_cli_finish, then read registries.conf (see PULL_CLI_OPTIONS) and
 * add the --registry-mirror hosts. -1 with the error printed (exit 2: the
 * configuration is wrong), else 0. */
int registry_cli_finish_pull(struct registry_cli *rc, const char *cmd);
void registry_cli_release(struct registry_cli *rc);
/* The last cases of a command's option switch: '?' (getopt's unknown or
 * incomplete option, seen = argv[optind - 1]) prints the usage error, anything
 * else goes to registry_cli_option. 0 when taken, else the exit code. */
int registry_cli_other_option(struct registry_cli *rc, const char *cmd, int c, const char *arg,
			      const char *seen);

/* A whole number from 1 to max for option opt; on a bad value prints the usage
 * error and returns -1 (the caller exits with EXIT_USAGE). */
int parse_number_option(const char *cmd, const char *opt, const char *arg, long max, long *out);
/* -j, --parallel N of copy and index create: blobs transferred at once, 1 to 64. */
int parse_parallel_option(const char *cmd, const char *arg, int *out);

/* "500M" -> 524288000: K, M, G, T are powers of 1024, a trailing "iB" or "B" is
 * allowed. -1 when s is not a size. */
int parse_size(const char *s, int64_t *out);

/* --source-date-epoch N: on a bad value prints the usage error, returns -1. */
int parse_epoch(const char *cmd, const char *what, const char *s, int64_t *out);
/* Unless *have already: $SOURCE_DATE_EPOCH into *out (and *have); -1 (usage
 * error printed) when it is set but not a Unix time. */
int source_date_epoch(const char *cmd, bool *have, int64_t *out);

/* "512 B", "1.2 KiB", "3.4 MiB". */
void format_size(int64_t n, char out[32]);

/* A REGISTRY argument of login/logout: "https://host:5000/" -> "host:5000" (the
 * name credentials are stored under); docker.io's names -> "docker.io" with
 * *api_host "registry-1.docker.io" (else NULL). NULL when arg is not a host. */
char *registry_host_arg(const char *arg, const char **api_host);

/* plait build --lint: lint CONTEXT's Dockerfile, print the findings on stderr;
 * 0 when none is of severity error, else the exit code to stop with. */
int lint_before_build(const char *context, const char *dockerfile);

/* Set by SIGINT/SIGTERM handlers installed in main. */
extern atomic_int plait_interrupted;

#endif
