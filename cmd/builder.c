/* cmd/builder.c - plait builder create|ls|inspect|rm|use: named sets of
 * machines reached over SSH that build platforms natively
 * (platforms/remote.h). */
#include <getopt.h>
#include <stdio.h>

#include "common.h"
#include "platforms/remote.h"
#include "core/strv.h"
#include "core/banned.h"

static const char builder_usage[] =
	"usage: plait builder create NAME --node ssh://[USER@]HOST[:PORT] [--node ...]\n"
	"                            [--identity FILE] [--remote-plait PATH]\n"
	"       plait builder ls\n"
	"       plait builder inspect NAME [--format table|json]\n"
	"       plait builder rm NAME\n"
	"       plait builder use NAME|local\n"
	"\n"
	"Named builders: machines reached with the system ssh client (it honours\n"
	"~/.ssh/config, agents and known_hosts; $PLAIT_SSH_COMMAND replaces 'ssh') that\n"
	"run plait. 'plait plan --builder NAME' (or the builder chosen with 'use') sends\n"
	"each platform to a node that runs it natively, else to this host (native or\n"
	"QEMU), else to a node's QEMU. Builders are kept in\n"
	"$XDG_CONFIG_HOME/plait/builders.json (default ~/.config/plait/builders.json).\n"
	"\n"
	"  create    connect to every node, record what it runs, and store the builder\n"
	"            (replacing one of that name)\n"
	"  ls        list the builders ('*' marks the one in use)\n"
	"  inspect   connect to every node again and show (and record) what it runs\n"
	"  rm        forget a builder\n"
	"  use       make NAME the builder of plan and build; 'local': this host only\n"
	"\n"
	"create options:\n"
	"      --node ssh://[USER@]HOST[:PORT]  a machine (repeatable, at least one)\n"
	"      --identity FILE          the private key ssh logs in with (ssh -i)\n"
	"      --remote-plait PATH      the plait executable on the nodes (default 'plait')\n"
	"  -h, --help                   show this help\n";

enum { OPT_NODE = OPT_FIRST_PRIVATE, OPT_IDENTITY, OPT_REMOTE_PLAIT, OPT_FORMAT };

/* report_error, then free err. */
static int report(struct plait_error *err)
{
	int r = report_error(err);
	plait_error_free(err);
	return r;
}

static int load(char **path, struct plait_builders_conf *c)
{
	*path = plait_builders_default_path();
	struct plait_error *err = NULL;
	if (plait_builders_load(*path, c, &err) < 0)
		return report(err);
	return 0;
}

static int save(const char *path, const struct plait_builders_conf *c)
{
	struct plait_error *err = NULL;
	if (plait_builders_save(path, c, &err) < 0)
		return report(err);
	return 0;
}

static void print_size(int64_t n)
{
	if (n < 0) {
		printf("?");
		return;
	}
	char b[32];
	format_size(n, b);
	printf("%s", b);
}

static void print_node(const struct plait_node *n)
{
	_cleanup_free_ char *nat = plait_strv_join(n->native, ",");
	_cleanup_free_ char *q = plait_strv_join(n->qemu, ",");
	printf("  %s\n", n->url);
	if (n->error) {
		printf("    error:    %s\n", n->error);
		return;
	}
	printf("    native:   %s\n", nat && *nat ? nat : "-");
	printf("    qemu:     %s\n", q && *q ? q : "-");
	printf("    plait:    %s (protocol %ld)\n", n->plait_version ? n->plait_version : "?", n->protocol);
	printf("    cache:    %s, ", n->cache_dir ? n->cache_dir : "?");
	print_size(n->cache_free_bytes);
	printf(" free\n");
}

/* Probe every node of b; each failure printed; the number that failed. */
static size_t probe_all(struct plait_remote_builder *b, struct plait_error **first)
{
	size_t failed = 0;
	for (size_t i = 0; i < b->n_nodes; i++) {
		struct plait_error *e = NULL;
		if (plait_node_probe(b, &b->nodes[i], &e) < 0) {
			if (!failed && first)
				*first = e;
			else
				plait_error_free(e);
			failed++;
		}
	}
	return failed;
}

static int builder_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "node", required_argument, NULL, OPT_NODE },
		{ "identity", required_argument, NULL, OPT_IDENTITY },
		{ "remote-plait", required_argument, NULL, OPT_REMOTE_PLAIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct plait_remote_builder b = { 0 };
	struct plait_builders_conf conf = { 0 };
	_cleanup_free_ char *path = NULL;
	int c, ret = 0;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_NODE: {
			char *user = NULL, *host = NULL;
			int port;
			struct plait_error *e = NULL;
			if (plait_node_url_parse(optarg, &user, &host, &port, &e) < 0) {
				ret = usage_error("builder create", "--node: %s", e->msg);
				plait_error_free(e);
				goto done;
			}
			free(user);
			free(host);
			for (size_t i = 0; i < b.n_nodes; i++)
				if (streq(b.nodes[i].url, optarg)) {
					ret = usage_error("builder create", "--node %s is given twice", optarg);
					goto done;
				}
			b.nodes = xrealloc(b.nodes, (b.n_nodes + 1) * sizeof(*b.nodes));
			b.nodes[b.n_nodes] = (struct plait_node){ .url = xstrdup(optarg), .cache_free_bytes = -1 };
			b.n_nodes++;
			break;
		}
		case OPT_IDENTITY:
			free(b.identity);
			b.identity = realpath(optarg, NULL);
			if (!b.identity) {
				ret = usage_error("builder create", "--identity: cannot read '%s'", optarg);
				goto done;
			}
			break;
		case OPT_REMOTE_PLAIT:
			free(b.remote_plait);
			b.remote_plait = xstrdup(optarg);
			break;
		case 'h':
			fputs(builder_usage, stdout);
			goto done;
		default:
			ret = usage_error("builder create", "unknown or incomplete option '%s'", argv[optind - 1]);
			goto done;
		}
	}
	if (optind >= argc) {
		ret = usage_error("builder create", "name the builder: plait builder create NAME --node ssh://HOST");
		goto done;
	}
	if (optind + 1 < argc) {
		ret = usage_error("builder create", "unexpected argument '%s'", argv[optind + 1]);
		goto done;
	}
	const char *name = argv[optind];
	if (streq(name, "local") || !*name || strpbrk(name, "/ \t\n")) {
		ret = usage_error("builder create", "'%s' cannot name a builder ('local' means this host; use "
						    "letters, digits, '-', '_' and '.')",
				  name);
		goto done;
	}
	if (!b.n_nodes) {
		ret = usage_error("builder create", "give at least one --node ssh://[USER@]HOST[:PORT]");
		goto done;
	}
	b.name = xstrdup(name);
	if ((ret = load(&path, &conf)) != 0)
		goto done;
	struct plait_error *err = NULL;
	size_t failed = probe_all(&b, &err);
	if (failed) {
		plait_error_wrap(&err, "plait builder create %s (%zu of %zu node%s failed; nothing was stored)", name,
				 failed, b.n_nodes, b.n_nodes == 1 ? "" : "s");
		for (size_t i = 0; i < b.n_nodes; i++)
			if (b.nodes[i].error && !strstr(err->msg, b.nodes[i].error))
				fprintf(stderr, "plait: error: %s\n", b.nodes[i].error);
		ret = report(err);
		goto done;
	}
	struct plait_remote_builder *old = plait_builders_find(&conf, name);
	if (old) {
		plait_remote_builder_release(old);
		*old = b;
	} else {
		conf.builders = xrealloc(conf.builders, (conf.n_builders + 1) * sizeof(*conf.builders));
		conf.builders[conf.n_builders++] = b;
	}
	memset(&b, 0, sizeof(b));
	if ((ret = save(path, &conf)) != 0)
		goto done;
	struct plait_remote_builder *nb = plait_builders_find(&conf, name);
	printf("builder %s: %zu node%s (stored in %s)\n", name, nb->n_nodes, nb->n_nodes == 1 ? "" : "s", path);
	for (size_t i = 0; i < nb->n_nodes; i++)
		print_node(&nb->nodes[i]);
done:
	plait_remote_builder_release(&b);
	plait_builders_conf_release(&conf);
	return ret;
}

/* The commands that take just NAME. */
static int name_arg(const char *cmd, int argc, char **argv, const char **name, bool *json)
{
	*name = NULL;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
			fputs(builder_usage, stdout);
			return -1;
		}
		if (json && streq(argv[i], "--format") && i + 1 < argc) {
			const char *f = argv[++i];
			if (!streq(f, "json") && !streq(f, "table"))
				return usage_error(cmd, "--format: unknown '%s'; use table or json", f);
			*json = streq(f, "json");
		} else if (argv[i][0] == '-') {
			return usage_error(cmd, "unknown option '%s'", argv[i]);
		} else if (*name) {
			return usage_error(cmd, "unexpected argument '%s'", argv[i]);
		} else {
			*name = argv[i];
		}
	}
	if (!*name)
		return usage_error(cmd, "name the builder (see 'plait builder ls')");
	return 0;
}

static int not_found(const char *name, const char *path)
{
	struct plait_error *err = NULL;
	plait_error_set(&err, PLAIT_E_NOT_FOUND,
			"no builder named '%s' in %s: see 'plait builder ls', or make it with 'plait builder create "
			"%s --node ssh://HOST'",
			name, path, name);
	return report(err);
}

static int builder_ls(int argc, char **argv)
{
	if (argc > 1 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
		fputs(builder_usage, stdout);
		return 0;
	}
	if (argc > 1)
		return usage_error("builder ls", "unexpected argument '%s'", argv[1]);
	struct plait_builders_conf conf = { 0 };
	_cleanup_free_ char *path = NULL;
	int ret = load(&path, &conf);
	if (ret)
		return ret;
	printf("%-2s %-16s %-32s %s\n", "", "NAME", "NODE", "PLATFORMS (native; qemu)");
	printf("%-2s %-16s %-32s %s\n", !conf.current ? "*" : "", "local", "this host", "-");
	for (size_t i = 0; i < conf.n_builders; i++) {
		const struct plait_remote_builder *b = &conf.builders[i];
		for (size_t k = 0; k < b->n_nodes; k++) {
			_cleanup_free_ char *nat = plait_strv_join(b->nodes[k].native, ",");
			_cleanup_free_ char *q = plait_strv_join(b->nodes[k].qemu, ",");
			printf("%-2s %-16s %-32s %s; %s\n", k == 0 && streq_ptr(conf.current, b->name) ? "*" : "",
			       k == 0 ? b->name : "", b->nodes[k].url, nat && *nat ? nat : "-", q && *q ? q : "-");
		}
	}
	plait_builders_conf_release(&conf);
	return 0;
}

static int builder_inspect(int argc, char **argv)
{
	const char *name;
	bool json = false;
	int r = name_arg("builder inspect", argc, argv, &name, &json);
	if (r)
		return r < 0 ? 0 : r;
	struct plait_builders_conf conf = { 0 };
	_cleanup_free_ char *path = NULL;
	int ret = load(&path, &conf);
	if (ret)
		return ret;
	struct plait_remote_builder *b = plait_builders_find(&conf, name);
	if (!b) {
		ret = not_found(name, path);
		goto done;
	}
	struct plait_error *err = NULL;
	size_t failed = probe_all(b, &err);
	if (failed < b->n_nodes && (ret = save(path, &conf)) != 0) /* what the reachable ones run now */
		goto done;
	if (json) {
		json_auto_t *o = json_object(), *ns = json_array();
		json_object_set_new(o, "name", json_string(b->name));
		json_object_set_new(o, "identity", b->identity ? json_string(b->identity) : json_null());
		json_object_set_new(o, "remote_plait", b->remote_plait ? json_string(b->remote_plait) : json_null());
		json_object_set_new(o, "current", json_boolean(streq_ptr(conf.current, b->name)));
		for (size_t i = 0; i < b->n_nodes; i++) {
			json_t *n = plait_node_to_json(&b->nodes[i]);
			json_object_set_new(n, "error", b->nodes[i].error ? json_string(b->nodes[i].error) : json_null());
			json_array_append_new(ns, n);
		}
		json_object_set_new(o, "nodes", ns);
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
	} else {
		printf("builder %s%s\n", b->name, streq_ptr(conf.current, b->name) ? " (in use)" : "");
		printf("  identity:     %s\n", b->identity ? b->identity : "(ssh's default)");
		printf("  remote plait: %s\n", b->remote_plait ? b->remote_plait : "plait");
		printf("nodes:\n");
		for (size_t i = 0; i < b->n_nodes; i++)
			print_node(&b->nodes[i]);
	}
	if (failed) {
		plait_error_wrap(&err, "plait builder inspect %s (%zu of %zu node%s unreachable)", name, failed,
				 b->n_nodes, b->n_nodes == 1 ? "" : "s");
		ret = report(err);
	}
done:
	plait_builders_conf_release(&conf);
	return ret;
}

static int builder_rm(int argc, char **argv)
{
	const char *name;
	int r = name_arg("builder rm", argc, argv, &name, NULL);
	if (r)
		return r < 0 ? 0 : r;
	struct plait_builders_conf conf = { 0 };
	_cleanup_free_ char *path = NULL;
	int ret = load(&path, &conf);
	if (ret)
		return ret;
	struct plait_remote_builder *b = plait_builders_find(&conf, name);
	if (!b) {
		ret = not_found(name, path);
		goto done;
	}
	plait_remote_builder_release(b);
	size_t i = (size_t)(b - conf.builders);
	memmove(b, b + 1, (conf.n_builders - i - 1) * sizeof(*b));
	conf.n_builders--;
	bool was_current = streq_ptr(conf.current, name);
	if (was_current) {
		free(conf.current);
		conf.current = NULL;
	}
	if ((ret = save(path, &conf)) == 0)
		printf("removed builder %s%s\n", name, was_current ? " (it was in use: builds are local now)" : "");
done:
	plait_builders_conf_release(&conf);
	return ret;
}

static int builder_use(int argc, char **argv)
{
	const char *name;
	int r = name_arg("builder use", argc, argv, &name, NULL);
	if (r)
		return r < 0 ? 0 : r;
	struct plait_builders_conf conf = { 0 };
	_cleanup_free_ char *path = NULL;
	int ret = load(&path, &conf);
	if (ret)
		return ret;
	if (!streq(name, "local") && !plait_builders_find(&conf, name)) {
		ret = not_found(name, path);
		goto done;
	}
	free(conf.current);
	conf.current = streq(name, "local") ? NULL : xstrdup(name);
	if ((ret = save(path, &conf)) == 0)
		printf("using builder %s\n", name);
done:
	plait_builders_conf_release(&conf);
	return ret;
}

int cmd_builder(int argc, char **argv)
{
	static const struct plait_subcmd subs[] = {
		{ "create", builder_create }, { "ls", builder_ls }, { "inspect", builder_inspect },
		{ "rm", builder_rm },	      { "use", builder_use }, { NULL, NULL },
	};
	return run_subcommand("builder", builder_usage, subs, argc, argv);
}
