/* cmd/login.c - plait login: check credentials against a registry and store them. */
#include <getopt.h>
#include <stdio.h>
#include <termios.h>

#include "common.h"
#include "core/ref.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait login [options] REGISTRY\n"
	"\n"
	"Check a user name and password against REGISTRY (host[:port]) and store them in the\n"
	"docker config file ($DOCKER_CONFIG/config.json, default ~/.docker/config.json,\n"
	"written with mode 0600), or in the credential helper it names (credsStore, credHelpers).\n"
	"\n"
	"options:\n"
	"  -u, --username USER           the user name (asked for on a terminal when missing)\n"
	"      --password-stdin          read the password from standard input\n"
	"  -p, --password PASS           the password (visible to other users: prefer --password-stdin)\n" REGISTRY_CLI_HELP
	"  -h, --help                    show this help\n";

enum { OPT_PASSWORD_STDIN = OPT_FIRST_PRIVATE };

/* "https://host:5000/" -> "host:5000"; docker.io's names -> "docker.io". NULL when not a host. */
char *registry_host_arg(const char *arg, const char **api_host)
{
	const char *s = arg;
	if (startswith(s, "https://"))
		s += strlen("https://");
	else if (startswith(s, "http://"))
		s += strlen("http://");
	size_t n = strcspn(s, "/");
	if (n == 0 || strspn(s + n, "/") != strlen(s + n)) {
		/* only "host/", "host/v1/" and "host/v2/" are accepted after the host */
		if (n == 0 || !(streq(s + n, "/v1/") || streq(s + n, "/v2/") || streq(s + n, "/v1") ||
				streq(s + n, "/v2")))
			return NULL;
	}
	char *host = xstrndup(s, n);
	if (plait_docker_hub_is_alias(host)) {
		free(host);
		*api_host = plait_docker_hub_api_host();
		return xstrdup(plait_docker_hub_domain());
	}
	*api_host = NULL;
	return host;
}

static char *read_line(FILE *f, bool echo)
{
	struct termios old, quiet;
	bool restore = false;
	if (!echo && isatty(fileno(f)) && tcgetattr(fileno(f), &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		restore = tcsetattr(fileno(f), TCSAFLUSH, &quiet) == 0;
	}
	struct plait_buf b = PLAIT_BUF_INIT;
	int c;
	while ((c = fgetc(f)) != EOF && c != '\n')
		plait_buf_addch(&b, c);
	if (restore) {
		tcsetattr(fileno(f), TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	return plait_buf_detach(&b, NULL);
}

int cmd_login(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "username", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'p' },
		{ "password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN },
		{ "help", no_argument, NULL, 'h' },
		REGISTRY_CLI_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct registry_cli rc = { 0 };
	struct plait_error *err = NULL;
	struct plait_credentials creds = { 0 };
	struct plait_registry *reg = NULL;
	_cleanup_free_ char *host = NULL;
	const char *api_host = NULL;
	bool password_stdin = false;
	int c, ret = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+u:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			goto done;
		case 'u':
			free(creds.username);
			creds.username = xstrdup(optarg);
			break;
		case 'p':
			free(creds.password);
			creds.password = xstrdup(optarg);
			break;
		case OPT_PASSWORD_STDIN:
			password_stdin = true;
			break;
		default:
			if ((ret = registry_cli_other_option(&rc, "login", c, optarg, argv[optind - 1])) != 0)
				goto done;
		}
	}
	if (argc - optind != 1) {
		ret = usage_error("login", optind == argc ? "missing REGISTRY" : "expected one REGISTRY, got %d",
				  argc - optind);
		goto done;
	}
	host = registry_host_arg(argv[optind], &api_host);
	if (!host) {
		ret = usage_error("login", "'%s' is not a registry host: give host[:port], e.g. registry.example.com:5000",
				  argv[optind]);
		goto done;
	}
	if (password_stdin && creds.password) {
		ret = usage_error("login", "--password and --password-stdin exclude each other");
		goto done;
	}
	if (password_stdin && !creds.username) {
		ret = usage_error("login", "--password-stdin needs --username");
		goto done;
	}
	if (creds.password && !password_stdin)
		fprintf(stderr, "plait: warning: a password on the command line is visible to other users; use --password-stdin\n");
	if (!creds.username) {
		if (!isatty(STDIN_FILENO)) {
			ret = usage_error("login", "missing --username (standard input is not a terminal to ask on)");
			goto done;
		}
		fprintf(stderr, "Username: ");
		creds.username = read_line(stdin, true);
	}
	if (password_stdin) {
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_read_fd(&b, STDIN_FILENO, 1 << 16);
		while (b.len && (b.buf[b.len - 1] == '\n' || b.buf[b.len - 1] == '\r'))
			plait_buf_setlen(&b, b.len - 1);
		creds.password = plait_buf_detach(&b, NULL);
	} else if (!creds.password) {
		if (!isatty(STDIN_FILENO)) {
			ret = usage_error("login", "missing password: use --password-stdin");
			goto done;
		}
		fprintf(stderr, "Password: ");
		creds.password = read_line(stdin, false);
	}
	if (plait_interrupted) {
		ret = EXIT_INTERRUPTED;
		goto done;
	}
	if (!*creds.username || !*creds.password) {
		ret = usage_error("login", "the user name and the password must not be empty");
		goto done;
	}
	registry_cli_finish(&rc);
	if (plait_registry_new(api_host ? api_host : host, &rc.opts, &reg, &err) < 0 ||
	    plait_registry_check_login(reg, &creds, &err) < 0 ||
	    plait_auth_store(rc.opts.docker_config_dir, host, &creds, &err) < 0) {
		ret = report_error(err);
		goto done;
	}
	printf("logged in to %s\n", host);
done:
	plait_registry_free(reg);
	plait_credentials_release(&creds);
	plait_error_free(err);
	registry_cli_release(&rc);
	return ret;
}
