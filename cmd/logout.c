/* cmd/logout.c - plait logout: remove stored credentials for a registry. */
#include <getopt.h>
#include <stdio.h>

#include "common.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait logout REGISTRY\n"
	"\n"
	"Remove the credentials stored for REGISTRY (host[:port]) from the docker config file\n"
	"($DOCKER_CONFIG/config.json, default ~/.docker/config.json) or its credential helper.\n"
	"\n"
	"options:\n"
	"  -h, --help                    show this help\n";

int cmd_logout(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct plait_error *err = NULL;
	const char *api_host;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		return usage_error("logout", "unknown option '%s'", argv[optind - 1]);
	}
	if (argc - optind != 1)
		return usage_error("logout", optind == argc ? "missing REGISTRY" : "expected one REGISTRY, got %d",
				   argc - optind);
	_cleanup_free_ char *host = registry_host_arg(argv[optind], &api_host);
	if (!host)
		return usage_error("logout", "'%s' is not a registry host: give host[:port]", argv[optind]);
	int r = plait_auth_erase(NULL, host, &err);
	if (r < 0) {
		int ret = report_error(err);
		plait_error_free(err);
		return ret;
	}
	printf(r > 0 ? "removed credentials for %s\n" : "not logged in to %s\n", host);
	return 0;
}
