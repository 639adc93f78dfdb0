/* cmd/cache.c - plait cache du | prune: what the build cache holds, and
 * removing it (least recently used first). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "common.h"
#include "core/build.h"
#include "core/cache_prune.h"
#include "core/banned.h"

static const char cache_usage[] =
	"usage: plait cache du [--cache-dir DIR] [--format table|json]\n"
	"       plait cache prune [--cache-dir DIR] [--keep SIZE | --all] [--dry-run]\n"
	"\n"
	"Show and prune the build cache (default $XDG_CACHE_HOME/plait).\n"
	"\n"
	"  du      what the cache holds: content store blobs, unpacked layers, step\n"
	"          records, RUN --mount=type=cache dirs and leftovers of dead builds\n"
	"  prune   remove cache entries; a layer goes with its blob, its unpacked\n"
	"          dir, its step records and the manifests that list it\n"
	"\n"
	"Run 'plait cache du --help' or 'plait cache prune --help' for options.\n";

static const char du_usage[] =
	"usage: plait cache du [--cache-dir DIR] [--format table|json]\n"
	"\n"
	"Print the size of the build cache per kind of entry. Sizes are the apparent\n"
	"sizes of the files, a hard-linked file counted once.\n"
	"\n"
	"      --cache-dir DIR   the build cache (default $XDG_CACHE_HOME/plait)\n"
	"      --format FORMAT   table (default) or json\n"
	"      --userns MODE     not root: the user namespace the cache was built in\n"
	"                        (auto or single, as 'plait build --userns')\n"
	"  -h, --help            show this help\n";

static const char prune_usage[] =
	"usage: plait cache prune [--cache-dir DIR] [--keep SIZE | --all] [--dry-run]\n"
	"\n"
	"Remove build cache entries. Leftovers of dead builds always go; then the\n"
	"least recently used entries go first until the cache holds at most SIZE.\n"
	"Without --keep everything goes (as with --all). Refused while a build runs.\n"
	"\n"
	"      --cache-dir DIR   the build cache (default $XDG_CACHE_HOME/plait)\n"
	"      --keep SIZE       keep at most SIZE bytes; suffixes K, M, G, T are\n"
	"                        powers of 1024 (500M, 2G)\n"
	"      --all             remove everything (the default)\n"
	"      --dry-run         print what would be removed, remove nothing\n"
	"      --userns MODE     not root: the user namespace the cache was built in\n"
	"                        (auto or single, as 'plait build --userns')\n"
	"  -h, --help            show this help\n";

enum { OPT_CACHE_DIR = OPT_FIRST_PRIVATE, OPT_FORMAT, OPT_KEEP, OPT_ALL, OPT_DRY_RUN, OPT_USERNS };


static void print_table(const char *dir, const struct plait_cache_usage *u)
{
	printf("cache %s\n", dir);
	printf("%-10s %8s %12s %14s\n", "KIND", "ENTRIES", "SIZE", "BYTES");
	for (int k = 0; k <= PLAIT_CACHE_N_KINDS; k++) {
		const struct plait_cache_count *c = k < PLAIT_CACHE_N_KINDS ? &u->kind[k] : &u->total;
		char h[32];
		format_size(c->bytes, h);
		printf("%-10s %8lld %12s %14lld\n",
		       k < PLAIT_CACHE_N_KINDS ? plait_cache_kind_name((enum plait_cache_kind)k) : "total",
		       (long long)c->entries, h, (long long)c->bytes);
	}
	if (u->imported.entries)
		printf("(%lld of the step records came from --cache-from; their layers are fetched when a build "
		       "needs them)\n",
		       (long long)u->imported.entries);
}

static json_t *usage_json(const struct plait_cache_usage *u)
{
	json_t *o = json_object();
	for (int k = 0; k <= PLAIT_CACHE_N_KINDS; k++) {
		const struct plait_cache_count *c = k < PLAIT_CACHE_N_KINDS ? &u->kind[k] : &u->total;
		json_t *e = json_object();
		json_object_set_new(e, "entries", json_integer(c->entries));
		json_object_set_new(e, "bytes", json_integer(c->bytes));
		json_object_set_new(o, k < PLAIT_CACHE_N_KINDS ? plait_cache_kind_name((enum plait_cache_kind)k)
							       : "total",
				    e);
	}
	return o;
}

/* --cache-dir, else the default one (which *dflt then owns). */
static const char *cache_dir(const char *dir_opt, char **dflt)
{
	if (dir_opt)
		return dir_opt;
	return *dflt = plait_build_default_cache_dir();
}

static int cache_du(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "userns", required_argument, NULL, OPT_USERNS },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir_opt = NULL;
	bool json = false;
	int c;
	optind = 1;
	opterr = 0; /* usage_error says it, once */
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CACHE_DIR:
			dir_opt = optarg;
			break;
		case OPT_USERNS: /* main entered the namespace (cmd/main.c) */
			break;
		case OPT_FORMAT:
			if (streq(optarg, "json"))
				json = true;
			else if (streq(optarg, "table"))
				json = false;
			else
				return usage_error("cache du", "--format: '%s' is not table or json", optarg);
			break;
		case 'h':
			fputs(du_usage, stdout);
			return 0;
		default:
			return usage_error("cache du", "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("cache du", "unexpected argument '%s'", argv[optind]);
	_cleanup_free_ char *dflt = NULL;
	const char *dir = cache_dir(dir_opt, &dflt);

	struct plait_cache_usage u;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_cache_usage(dir, &u, &err) < 0)
		return report_error(err);
	if (json) {
		json_auto_t *o = json_object();
		json_object_set_new(o, "dir", json_string(dir));
		json_object_set_new(o, "usage", usage_json(&u));
		json_object_set_new(o, "imported", json_pack("{s:I,s:I}", "entries", (json_int_t)u.imported.entries,
							      "bytes", (json_int_t)u.imported.bytes));
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s);
		free(s);
	} else {
		print_table(dir, &u);
	}
	return 0;
}

static int cache_prune(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "userns", required_argument, NULL, OPT_USERNS },
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "all", no_argument, NULL, OPT_ALL },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir_opt = NULL;
	struct plait_cache_prune_opts o = { .all = true };
	bool keep = false, all = false;
	int c;
	optind = 1;
	opterr = 0; /* usage_error says it, once */
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_CACHE_DIR:
			dir_opt = optarg;
			break;
		case OPT_USERNS: /* main entered the namespace (cmd/main.c) */
			break;
		case OPT_KEEP:
			if (parse_size(optarg, &o.keep_bytes) < 0)
				return usage_error("cache prune",
						   "--keep: '%s' is not a size (bytes, or a number with K, M, G or T)",
						   optarg);
			keep = true;
			break;
		case OPT_ALL:
			all = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case 'h':
			fputs(prune_usage, stdout);
			return 0;
		default:
			return usage_error("cache prune", "unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("cache prune", "unexpected argument '%s'", argv[optind]);
	if (keep && all)
		return usage_error("cache prune", "--keep and --all contradict each other; give one");
	o.all = !keep;
	_cleanup_free_ char *dflt = NULL;
	const char *dir = cache_dir(dir_opt, &dflt);

	struct plait_cache_prune_result res;
	_cleanup_error_ struct plait_error *err = NULL;
	if (plait_cache_prune(dir, &o, &res, &err) < 0)
		return report_error(err);
	const struct plait_cache_usage *f = &res.freed;
	char freed[32], left[32];
	format_size(f->total.bytes, freed);
	format_size(res.after.total.bytes, left);
	printf("%s %lld store blobs, %lld layers, %lld step records, %lld cache mounts, %lld temporary entries\n",
	       o.dry_run ? "would remove" : "removed", (long long)f->kind[PLAIT_CACHE_STORE].entries,
	       (long long)f->kind[PLAIT_CACHE_LAYERS].entries, (long long)f->kind[PLAIT_CACHE_STEPS].entries,
	       (long long)f->kind[PLAIT_CACHE_MOUNTS].entries, (long long)f->kind[PLAIT_CACHE_TEMP].entries);
	printf("%s %s (%lld bytes); %s %s (%lld bytes)\n", o.dry_run ? "would free" : "freed", freed,
	       (long long)f->total.bytes, o.dry_run ? "the cache would hold" : "the cache holds", left,
	       (long long)res.after.total.bytes);
	return 0;
}

int cmd_cache(int argc, char **argv)
{
	static const struct plait_subcmd subs[] = {
		{ "du", cache_du },
		{ "prune", cache_prune },
		{ NULL, NULL },
	};
	return run_subcommand("cache", cache_usage, subs, argc, argv);
}
