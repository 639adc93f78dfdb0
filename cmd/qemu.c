/* cmd/qemu.c - plait qemu status | install: which architectures this host can
 * run (natively or through QEMU in binfmt_misc), and registering the QEMU
 * handlers with the F and P flags that foreign RUN steps need. */
#include <getopt.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <unistd.h>

#include "common.h"
#include "platforms/binfmt.h"
#include "core/platform.h"
#include "platforms/host.h"
#include "core/banned.h"

static const char qemu_usage[] =
    "usage: plait qemu status [--format table|json]\n"
    "       plait qemu install [ARCH...]\n"
    "\n"
    "Show and set up QEMU emulation for foreign architectures.\n"
    "\n"
    "  status    per architecture: does the host run it natively, is a\n"
    "            binfmt_misc handler registered, its interpreter and flags\n"
    "  install   register qemu-user-static's interpreters with the F and P flags (root)\n"
    "\n"
    "Run 'plait qemu status --help' or 'plait qemu install --help' for options.\n";

static const char status_usage[] =
    "usage: plait qemu status [--format table|json]\n"
    "\n"
    "Show, for each architecture plait knows, whether this host runs it natively,\n"
    "whether a binfmt_misc handler is registered for it, its interpreter, and\n"
    "whether the handler has the F flag (needed for RUN steps, which run in a\n"
    "chroot where the interpreter's path does not exist) and the P flag (keeps\n"
    "argv[0], which busybox and other multi-call programs need).\n"
    "\n"
    "      --format FORMAT   table (default) or json\n"
    "  -h, --help            show this help\n";

static const char install_usage[] =
    "usage: plait qemu install [ARCH...]\n"
    "\n"
    "Register QEMU interpreters from Debian's qemu-user-static\n"
    "(/usr/bin/qemu-<name>-static) in binfmt_misc with the F and P flags, mounting\n"
    "binfmt_misc first when needed. Without ARCH: every foreign architecture whose\n"
    "interpreter is installed. A handler without F or P is replaced; one with\n"
    "both is left alone. The host's native architectures are never touched.\n"
    "Must run as root.\n"
    "\n"
    "  ARCH        arm64, arm, 386, ppc64le, s390x, riscv64, mips64le, loong64,\n"
    "              amd64 (aliases such as aarch64 and linux/arm64 work too)\n"
    "  -h, --help  show this help\n";

enum { OPT_FORMAT = OPT_FIRST_PRIVATE };

static const char *host_arch(struct plait_platform *host)
{
	plait_platform_host(host);
	return host->architecture;
}

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

static void print_table(const struct plait_binfmt_status *v, size_t n, bool mounted)
{
	if (!mounted)
		printf("binfmt_misc is not mounted at %s: run 'plait qemu install' as root\n\n",
		       plait_binfmt_dir());
	printf("%-10s %-7s %-11s %-6s %-6s %-22s %s\n", "ARCH", "NATIVE", "HANDLER", "F-FLAG", "P-FLAG",
	       "NAME", "INTERPRETER");
	for (size_t i = 0; i < n; i++) {
		const struct plait_binfmt_status *s = &v[i];
		const char *handler = !s->registered ? "-" : s->enabled ? "enabled" : "disabled";
		const char *interp = s->interpreter;
		_cleanup_free_ char *avail = NULL;
		if (!interp) {
			/* Say what install would use, so the next step is obvious. */
			_cleanup_free_ char *p =
			    plait_binfmt_interpreter(PLAIT_BINFMT_INTERP_DIR, s->arch);
			struct plait_buf b = PLAIT_BUF_INIT;
			if (s->native)
				plait_buf_adds(&b, "-");
			else
				plait_buf_addf(&b, "(%s %s)", p,
					       s->have_interpreter ? "installed" : "not installed");
			avail = plait_buf_detach(&b, NULL);
			interp = avail;
		}
		printf("%-10s %-7s %-11s %-6s %-6s %-22s %s\n", s->arch->arch, yes_no(s->native), handler,
		       s->registered ? yes_no(s->fix_binary) : "-", s->registered ? yes_no(s->preserve_argv0) : "-",
		       s->handler ? s->handler : "-", interp);
	}
}

/* Run by a user: a handler root registered with F serves that user's
 * rootless builds too (the kernel opened the interpreter at registration, so
 * the user's namespaces and the build's chroot need no path to it); one
 * without F or disabled serves nobody's. The names of the usable ones. */
static void usable_for_user(const struct plait_binfmt_status *v, size_t n, struct plait_buf *out)
{
	for (size_t i = 0; i < n; i++)
		if (!v[i].native && v[i].registered && v[i].enabled && v[i].fix_binary)
			plait_buf_addf(out, "%s%s", out->len ? " " : "", v[i].arch->arch);
}

static const char *user_name(char buf[32])
{
	struct passwd *pw = getpwuid(getuid());
	if (pw)
		return pw->pw_name;
	snprintf(buf, 32, "%u", (unsigned)getuid());
	return buf;
}

static json_t *status_json(const struct plait_binfmt_status *v, size_t n, bool mounted,
			   const char *host)
{
	json_t *o = json_object();
	json_object_set_new(o, "host", json_string(host));
	json_object_set_new(o, "binfmt_misc", json_string(plait_binfmt_dir()));
	json_object_set_new(o, "mounted", json_boolean(mounted));
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct plait_binfmt_status *s = &v[i];
		json_t *e = json_object();
		_cleanup_free_ char *p = plait_binfmt_interpreter(PLAIT_BINFMT_INTERP_DIR, s->arch);
		json_object_set_new(e, "arch", json_string(s->arch->arch));
		json_object_set_new(e, "qemu", json_string(s->arch->qemu));
		json_object_set_new(e, "native", json_boolean(s->native));
		json_object_set_new(e, "registered", json_boolean(s->registered));
		json_object_set_new(e, "enabled", json_boolean(s->enabled));
		json_object_set_new(e, "fix_binary", json_boolean(s->fix_binary));
		json_object_set_new(e, "preserve_argv0", json_boolean(s->preserve_argv0));
		json_object_set_new(e, "handler",
				    s->handler ? json_string(s->handler) : json_null());
		json_object_set_new(e, "interpreter",
				    s->interpreter ? json_string(s->interpreter) : json_null());
		json_object_set_new(e, "qemu_static", json_string(p));
		json_object_set_new(e, "qemu_static_installed", json_boolean(s->have_interpreter));
		json_array_append_new(a, e);
	}
	json_object_set_new(o, "arches", a);
	return o;
}

static int qemu_status(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"format", required_argument, NULL, OPT_FORMAT},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	bool json = false;
	int c;
	optind = 1;
	opterr = 0; /* usage_error says it, once */
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_FORMAT:
			if (streq(optarg, "json"))
				json = true;
			else if (streq(optarg, "table"))
				json = false;
			else
				return usage_error("qemu status",
						   "--format: '%s' is not table or json", optarg);
			break;
		case 'h':
			fputs(status_usage, stdout);
			return 0;
		default:
			return usage_error("qemu status", "unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("qemu status", "unexpected argument '%s'", argv[optind]);

	struct plait_platform host = {0};
	const char *harch = host_arch(&host);
	bool aarch32 = streq(harch, "arm64") && plait_binfmt_host_aarch32();
	struct plait_binfmt_status *v = NULL;
	size_t n = 0;
	bool mounted = false;
	_cleanup_error_ struct plait_error *err = NULL;
	int r = plait_binfmt_status(plait_binfmt_dir(), PLAIT_BINFMT_INTERP_DIR, harch, aarch32, &v,
				    &n, &mounted, &err);
	if (r < 0) {
		plait_platform_release(&host);
		return report_error(err);
	}
	if (json) {
		json_auto_t *o = status_json(v, n, mounted, harch);
		if (!mounted)
			json_object_set_new(
			    o, "message",
			    json_string("binfmt_misc is not mounted at " PLAIT_BINFMT_DIR
					": run 'plait qemu install' as root"));
		if (geteuid() != 0) {
			char nb[32];
			struct plait_buf u = PLAIT_BUF_INIT;
			usable_for_user(v, n, &u);
			json_t *uo = json_object();
			json_object_set_new(uo, "name", json_string(user_name(nb)));
			json_object_set_new(uo, "uid", json_integer(getuid()));
			json_t *ua = json_array();
			for (char *save = NULL, *t = strtok_r(u.buf, " ", &save); t; t = strtok_r(NULL, " ", &save))
				json_array_append_new(ua, json_string(t));
			json_object_set_new(uo, "usable", ua);
			json_object_set_new(o, "user", uo);
			plait_buf_release(&u);
		}
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
	} else {
		print_table(v, n, mounted);
		if (geteuid() != 0) {
			char nb[32];
			struct plait_buf u = PLAIT_BUF_INIT;
			usable_for_user(v, n, &u);
			printf("\nfor user %s (uid %u, rootless builds): %s%s\n", user_name(nb), (unsigned)getuid(),
			       u.len ? "handlers with the F flag work: " : "no usable handler",
			       u.len ? u.buf : " (one registered by root with 'plait qemu install' serves every user)");
			plait_buf_release(&u);
		}
	}
	plait_binfmt_status_free(v, n);
	plait_platform_release(&host);
	return 0;
}

static const char *action_text(enum plait_binfmt_action a)
{
	switch (a) {
	case PLAIT_BINFMT_UNCHANGED:
		return "already registered with the F and P flags";
	case PLAIT_BINFMT_ENABLED:
		return "enabled the existing handler (it has the F and P flags)";
	case PLAIT_BINFMT_REGISTERED:
		return "registered";
	case PLAIT_BINFMT_REREGISTERED:
		return "replaced a handler without the F or P flag";
	}
	return "?";
}

static int qemu_install(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(install_usage, stdout);
			return 0;
		default:
			return usage_error("qemu install", "unknown or incomplete option '%s'",
					   argv[optind - 1]);
		}
	}

	struct plait_platform host = {0};
	const char *harch = host_arch(&host);
	bool aarch32 = streq(harch, "arm64") && plait_binfmt_host_aarch32();
	size_t n_table;
	const struct plait_binfmt_arch *table = plait_binfmt_arches(&n_table);
	const struct plait_binfmt_arch **want = xcalloc(n_table, sizeof(*want));
	size_t n_want = 0;
	int ret = 0;
	_cleanup_error_ struct plait_error *err = NULL;

	/* Check every argument before changing anything. */
	for (int i = optind; i < argc; i++) {
		const struct plait_binfmt_arch *a = plait_binfmt_arch_lookup(argv[i]);
		if (!a) {
			_cleanup_free_ char *known = NULL;
			struct plait_buf b = PLAIT_BUF_INIT;
			for (size_t k = 0; k < n_table; k++)
				plait_buf_addf(&b, "%s%s", k ? ", " : "", table[k].arch);
			known = plait_buf_detach(&b, NULL);
			ret =
			    usage_error("qemu install", "unknown architecture '%s': use one of %s",
					argv[i], known);
			goto out;
		}
		if (plait_binfmt_native(harch, aarch32, a->arch)) {
			ret = usage_error(
			    "qemu install",
			    "'%s' runs natively on this %s host: it needs no QEMU handler", argv[i],
			    harch);
			goto out;
		}
		bool dup = false;
		for (size_t k = 0; k < n_want; k++)
			dup |= want[k] == a;
		if (!dup)
			want[n_want++] = a;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "plait: error: qemu install must run as root: binfmt_misc handlers "
				"are system-wide; "
				"run 'sudo plait qemu install'\n");
		ret = 1;
		goto out;
	}
	if (optind == argc) {
		for (size_t k = 0; k < n_table; k++) {
			if (plait_binfmt_native(harch, aarch32, table[k].arch))
				continue;
			_cleanup_free_ char *p =
			    plait_binfmt_interpreter(PLAIT_BINFMT_INTERP_DIR, &table[k]);
			if (access(p, X_OK) == 0)
				want[n_want++] = &table[k];
		}
		if (n_want == 0) {
			fprintf(stderr,
				"plait: error: no QEMU interpreters in %s: apt-get install "
				"qemu-user-static\n",
				PLAIT_BINFMT_INTERP_DIR);
			ret = 1;
			goto out;
		}
	}

	if (plait_binfmt_mount(PLAIT_BINFMT_DIR, &err) < 0) {
		ret = report_error(err);
		goto out;
	}
	for (size_t k = 0; k < n_want; k++) {
		enum plait_binfmt_action act;
		_cleanup_error_ struct plait_error *e = NULL;
		if (plait_binfmt_install(PLAIT_BINFMT_DIR, PLAIT_BINFMT_INTERP_DIR, harch, aarch32,
					 want[k], &act, &e) < 0) {
			plait_error_wrap(&e, "linux/%s", want[k]->arch);
			ret = report_error(e);
			continue;
		}
		printf("linux/%s: %s (qemu-%s)\n", want[k]->arch, action_text(act), want[k]->qemu);
	}
out:
	free(want);
	plait_platform_release(&host);
	return ret;
}

int cmd_qemu(int argc, char **argv)
{
	static const struct plait_subcmd subs[] = {
		{ "status", qemu_status },
		{ "install", qemu_install },
		{ NULL, NULL },
	};
	return run_subcommand("qemu", qemu_usage, subs, argc, argv);
}
