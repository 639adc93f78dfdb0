/* cmd/common.c - error reporting, usage errors and the registry options shared
 * by every subcommand that talks to registries. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>

#include "common.h"
#include "registry/registries_conf.h"
#include "core/timestamp.h"
#include "core/endpoint.h"
#include "core/platform.h"
#include "core/banned.h"

int report_error(struct plait_error *err)
{
	const char *msg = err && err->msg ? err->msg : "unknown error";
	fprintf(stderr, "plait: error: %s\n", msg);
	switch (err ? err->code : PLAIT_E_GENERIC) {
	case PLAIT_E_USAGE:
		return EXIT_USAGE;
	case PLAIT_E_CANCELLED:
		return EXIT_INTERRUPTED;
	default:
		return 1;
	}
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "plait %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nsee 'plait %s --help'\n", cmd);
	return EXIT_USAGE;
}

int parse_number_option(const char *cmd, const char *opt, const char *arg, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || *end || end == arg || v < 1 || v > max)
		return usage_error(cmd, "%s: '%s' is not a number from 1 to %ld", opt, arg, max), -1;
	*out = v;
	return 0;
}

int parse_parallel_option(const char *cmd, const char *arg, int *out)
{
	long v;
	if (parse_number_option(cmd, "--parallel", arg, 64, &v) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

int registry_cli_option(struct registry_cli *rc, const char *cmd, int c, const char *arg)
{
	long v;
	switch (c) {
	case OPT_INSECURE_REGISTRY:
		/* a host[:port], as written in docker's daemon.json; a scheme or
		 * a trailing '/' would never match and silently do nothing */
		{
			const char *h = arg;
			if (startswith(h, "https://"))
				h += strlen("https://");
			else if (startswith(h, "http://"))
				h += strlen("http://");
			size_t n = strcspn(h, "/");
			const char *rest = h + n + strspn(h + n, "/");
			_cleanup_free_ char *host = xstrndup(h, n);
			if (!n || *rest) {
				fprintf(stderr, "plait %s: --insecure-registry '%s': give a registry host[:port], "
						"e.g. 'registry.local:5000'\n", cmd, arg);
				return -1;
			}
			plait_strv_push(&rc->insecure, host);
		}
		return 1;
	case OPT_CERT_DIR:
		plait_strv_push(&rc->cert_dirs, arg);
		return 1;
	case OPT_RETRIES:
		if (parse_number_option(cmd, "--retries", arg, 100, &v) < 0)
			return -1;
		rc->opts.max_tries = (int)v;
		return 1;
	case OPT_REGISTRY_MIRROR:
		plait_strv_push(&rc->mirrors, arg);
		return 1;
	case OPT_REGISTRIES_CONF:
		free(rc->conf_file);
		rc->conf_file = xstrdup(arg);
		return 1;
	default:
		return 0;
	}
}

/* Knobs for tests and benchmarks, not for users: smaller upload chunks and
 * shorter backoff make fault-injection tests quick. */
static int64_t env_int(const char *name)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	return *end || v < 0 ? 0 : (int64_t)v;
}

int registry_cli_other_option(struct registry_cli *rc, const char *cmd, int c, const char *arg,
			      const char *seen)
{
	if (c == '?')
		return usage_error(cmd, "unknown or incomplete option '%s'", seen);
	return registry_cli_option(rc, cmd, c, arg) < 0 ? EXIT_USAGE : 0;
}

void registry_cli_finish(struct registry_cli *rc)
{
	rc->opts.insecure_hosts = (const char *const *)rc->insecure;
	rc->opts.certs_dirs = (const char *const *)rc->cert_dirs;
	rc->opts.cancel = &plait_interrupted;
	if (!rc->opts.chunk_size)
		rc->opts.chunk_size = env_int("PLAIT_CHUNK_SIZE");
	if (!rc->opts.backoff_base_ms)
		rc->opts.backoff_base_ms = (long)env_int("PLAIT_BACKOFF_MS");
}

static void mirror_warning(const char *msg)
{
	fprintf(stderr, "plait: warning: %s\n", msg);
}

int registry_cli_finish_pull(struct registry_cli *rc, const char *cmd)
{
	registry_cli_finish(rc);
	rc->opts.mirror_warning = mirror_warning;
	struct plait_registries_conf *conf = plait_registries_conf_new();
	struct plait_error *err = NULL;
	/* the command line first: a bad --registry-mirror is a usage error */
	for (char **m = rc->mirrors; m && *m; m++)
		if (plait_registries_conf_add_docker_mirror(conf, *m, &err) < 0) {
			usage_error(cmd, "%s", err->msg);
			plait_error_free(err);
			plait_registries_conf_free(conf);
			return -1;
		}
	const char *env = getenv("CONTAINERS_REGISTRIES_CONF");
	bool from_env = !rc->conf_file && env && *env;
	const char *file = rc->conf_file ? rc->conf_file : from_env ? env : NULL;
	int r = file ? plait_registries_conf_load_file(conf, file, true, &err)
		     : plait_registries_conf_load_default(conf, "/etc/containers", getenv("HOME"), &err);
	if (r < 0) {
		if (from_env)
			plait_error_wrap(&err, "$CONTAINERS_REGISTRIES_CONF");
		fprintf(stderr, "plait: error: %s\n", err ? err->msg : "cannot read registries.conf");
		plait_error_free(err);
		plait_registries_conf_free(conf);
		return -1;
	}
	rc->conf = conf;
	rc->opts.registries_conf = conf;
	return 0;
}

void registry_cli_release(struct registry_cli *rc)
{
	plait_strv_free(rc->insecure);
	plait_strv_free(rc->cert_dirs);
	plait_strv_free(rc->mirrors);
	free(rc->conf_file);
	plait_registries_conf_free(rc->conf);
	memset(rc, 0, sizeof(*rc));
}

void format_size(int64_t n, char out[32])
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, 32, "%lld B", (long long)n);
	else
		snprintf(out, 32, "%.1f %s", v, units[u]);
}

int run_subcommand(const char *cmd, const char *usage, const struct plait_subcmd *subs, int argc,
		   char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (streq(sub, "-h") || streq(sub, "--help") || streq(sub, "help")) {
		fputs(usage, stdout);
		return 0;
	}
	struct plait_buf names = PLAIT_BUF_INIT;
	for (const struct plait_subcmd *s = subs; s->name; s++) {
		if (streq(s->name, sub)) {
			plait_buf_release(&names);
			return s->fn(argc - 1, argv + 1);
		}
		plait_buf_addf(&names, "%s%s", names.len ? (s[1].name ? ", " : " or ") : "", s->name);
	}
	int r = usage_error(cmd, "unknown subcommand '%s': use %s", sub, names.buf);
	plait_buf_release(&names);
	return r;
}

int parse_size(const char *s, int64_t *out)
{
	return plait_parse_size(s, out);
}

int parse_epoch(const char *cmd, const char *what, const char *s, int64_t *out)
{
	if (plait_epoch_parse(s, out) < 0)
		return usage_error(cmd, "%s: '%s' is not a Unix time (seconds since 1970)", what, s), -1;
	return 0;
}

int source_date_epoch(const char *cmd, bool *have, int64_t *out)
{
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	if (*have || !sde || !*sde)
		return 0;
	if (parse_epoch(cmd, "SOURCE_DATE_EPOCH", sde, out) < 0)
		return -1;
	*have = true;
	return 0;
}
