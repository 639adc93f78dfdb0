/* cmd/build.c - plait build: a Dockerfile and a context to an image, exported
 * to OCI layouts and archives and pushed to registries. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>

#include "common.h"
#include "core/build.h"
#include "core/copy.h"
#include "platforms/platform.h"
#include "platforms/runner.h"
#include "registry/endpoint.h"
#include "registry/fetch.h"
#include "registry/ref.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait build [options] CONTEXT\n"
	"\n"
	"Build the Dockerfile in CONTEXT (a directory) into an image, without a daemon.\n"
	"RUN steps run in a sandbox (namespaces + chroot) on this machine. Steps whose\n"
	"inputs did not change come from the cache. Nothing is tagged or pushed unless\n"
	"every step succeeded.\n"
	"\n"
	"options:\n"
	"  -f, --file PATH               the Dockerfile (default CONTEXT/Dockerfile)\n"
	"  -t, --tag REF                 name the result (repeatable): pushed with --push, and\n"
	"                                its tag names the image in --output layouts\n"
	"      --build-arg K=V           set a build argument (repeatable; K alone takes $K)\n"
	"      --target STAGE            build this stage (default: the last)\n"
	"      --platform P[,P...]       target platforms (default: this host's); several give\n"
	"                                one OCI index, published only if every platform built\n"
	"      --output type=oci,dest=DIR | type=oci-archive,dest=FILE\n"
	"                                write the image there (repeatable)\n"
	"      --push                    push to every -t registry reference\n"
	"      --push-by-digest          push to the -t repositories without tagging (for\n"
	"                                'plait index create --from-metadata' on a last CI job)\n"
	"      --allow-latest            allow a -t tag named 'latest'\n"
	"      --cache-dir DIR           the build cache (default $XDG_CACHE_HOME/plait)\n"
	"      --no-cache                run every step, ignoring cached results\n"
	"      --compression gzip|zstd   layer compression (default gzip)\n"
	"      --source-date-epoch N     clamp file times and set created times to N (also\n"
	"                                $SOURCE_DATE_EPOCH): same inputs, same digest\n"
	"      --label K=V               add a label to the image (repeatable)\n"
	"      --secret id=ID,src=FILE | id=ID,env=VAR\n"
	"                                a secret for RUN --mount=type=secret (never stored)\n"
	"      --build-context NAME=REF  a named context: a directory (for COPY --from=NAME and\n"
	"                                RUN --mount from=NAME), or an image FROM NAME and\n"
	"                                COPY --from=NAME resolve to (oci:DIR[:TAG], docker-image://REF)\n"
	"      --metadata-file FILE      write the image digest, tags, size and duration as JSON\n"
	"      --progress auto|plain|tty|json|quiet\n"
	"                                how steps are shown: tty redraws the running step in\n"
	"                                place (default when stderr is a terminal), plain prints\n"
	"                                a line per event (default otherwise, e.g. in CI)\n" REGISTRY_CLI_HELP
	"  -h, --help                    show this help\n";

enum {
	OPT_BUILD_ARG = OPT_FIRST_PRIVATE,
	OPT_TARGET,
	OPT_PLATFORM,
	OPT_OUTPUT,
	OPT_PUSH,
	OPT_CACHE_DIR,
	OPT_NO_CACHE,
	OPT_COMPRESSION,
	OPT_EPOCH,
	OPT_LABEL,
	OPT_SECRET,
	OPT_BUILD_CONTEXT,
	OPT_METADATA,
	OPT_PROGRESS,
	OPT_PUSH_BY_DIGEST,
	OPT_ALLOW_LATEST,
};

enum progress_mode { PROGRESS_PLAIN, PROGRESS_TTY, PROGRESS_JSON, PROGRESS_QUIET };

struct named_context {
	char *name;
	char *ref;
};

struct resolver_ctx {
	const struct plait_registry_opts *opts;
	struct named_context *named;
	size_t n_named;
};

static int resolve_image(void *ctx, const char *ref, const char *platform, struct plait_endpoint **ep,
			 struct plait_descriptor *manifest, struct plait_buf *bytes, struct plait_error **err)
{
	struct resolver_ctx *rc = ctx;
	for (size_t i = 0; i < rc->n_named; i++)
		if (streq(rc->named[i].name, ref))
			ref = rc->named[i].ref;
	if (startswith(ref, "docker-image://"))
		ref += strlen("docker-image://");
	struct plait_platform want = { 0 };
	int r = plait_platform_parse(platform, &want, err);
	if (r >= 0)
		r = plait_endpoint_open(ref, false, rc->opts, ep, err);
	if (r >= 0)
		r = plait_endpoint_resolve(*ep, NULL, manifest, bytes, err);
	if (r >= 0 && plait_media_type_is_index(plait_media_type_from_string(manifest->media_type)))
		r = narrow_to_platforms(*ep, manifest, bytes, &want, 1, err);
	else if (r >= 0)
		r = narrow_to_platforms(*ep, manifest, bytes, &want, 1, err); /* checks the config */
	plait_platform_release(&want);
	return r;
}

static int fetch_url(void *ctx, const char *url, struct plait_blob_writer *w, struct plait_error **err)
{
	struct resolver_ctx *rc = ctx;
	return plait_fetch_url(url, rc->opts, w, err);
}

struct progress_ctx {
	enum progress_mode mode;
	const char *platform; /* set when several platforms are built: prefixes each line */
	char *current; /* tty: the step line being redrawn */
	uint64_t started;
};

/* tty: one live line per running step, rewritten in place; RUN output scrolls
 * above it, dimmed; finished steps stay with their outcome. */
static void tty_progress(struct progress_ctx *p, const struct plait_build_event *ev)
{
	switch (ev->kind) {
	case PLAIT_BUILD_STEP_START: {
		free(p->current);
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "[%d/%d] %s%s%s: %s", ev->step, ev->total, p->platform ? p->platform : "",
			       p->platform ? " " : "", ev->stage, ev->text);
		p->current = plait_buf_detach(&b, NULL);
		p->started = plait_now_ns();
		fprintf(stderr, "\r\033[K\033[1m=>\033[0m %s", p->current);
		break;
	}
	case PLAIT_BUILD_STEP_OUTPUT:
		fprintf(stderr, "\r\033[K\033[2m   %s\033[0m\n\033[1m=>\033[0m %s (%.1fs)", ev->text,
			p->current ? p->current : "", (double)(plait_now_ns() - p->started) / 1e9);
		break;
	case PLAIT_BUILD_STEP_CACHED:
		fprintf(stderr, "\r\033[K\033[32m=> CACHED\033[0m %s\n", p->current ? p->current : "");
		break;
	case PLAIT_BUILD_STEP_DONE:
		fprintf(stderr, "\r\033[K\033[34m=> %.1fs\033[0m %s\n", ev->seconds, p->current ? p->current : "");
		break;
	case PLAIT_BUILD_STEP_ERROR:
		fprintf(stderr, "\r\033[K\033[31m=> ERROR\033[0m %s\n   %s\n", p->current ? p->current : "", ev->text);
		break;
	}
	fflush(stderr);
}

static void on_progress(const struct plait_build_event *ev, void *opaque)
{
	struct progress_ctx *p = opaque;
	if (p->mode == PROGRESS_QUIET)
		return;
	if (p->mode == PROGRESS_TTY) {
		tty_progress(p, ev);
		return;
	}
	if (p->mode == PROGRESS_JSON) {
		static const char *const kinds[] = { "start", "cached", "done", "output", "error" };
		json_auto_t *o = json_object();
		json_object_set_new(o, "event", json_string(kinds[ev->kind]));
		json_object_set_new(o, "step", json_integer(ev->step));
		json_object_set_new(o, "total", json_integer(ev->total));
		json_object_set_new(o, "stage", json_string(ev->stage ? ev->stage : ""));
		if (p->platform)
			json_object_set_new(o, "platform", json_string(p->platform));
		if (ev->text)
			json_object_set_new(o, "text", json_string(ev->text));
		if (ev->kind == PLAIT_BUILD_STEP_DONE)
			json_object_set_new(o, "seconds", json_real(ev->seconds));
		json_dumpf(o, stderr, JSON_COMPACT);
		fputc('\n', stderr);
		return;
	}
	switch (ev->kind) {
	case PLAIT_BUILD_STEP_START:
		fprintf(stderr, "#%d [%s%s%s %d/%d] %s\n", ev->step, p->platform ? p->platform : "",
			p->platform ? " " : "", ev->stage, ev->step, ev->total, ev->text);
		break;
	case PLAIT_BUILD_STEP_CACHED:
		fprintf(stderr, "#%d CACHED\n", ev->step);
		break;
	case PLAIT_BUILD_STEP_DONE:
		fprintf(stderr, "#%d DONE %.1fs\n", ev->step, ev->seconds);
		break;
	case PLAIT_BUILD_STEP_OUTPUT:
		fprintf(stderr, "#%d %s\n", ev->step, ev->text);
		break;
	case PLAIT_BUILD_STEP_ERROR:
		fprintf(stderr, "#%d ERROR: %s\n", ev->step, ev->text);
		break;
	}
}

/* "--output type=oci,dest=DIR" -> "oci:DIR" */
static int output_spec(const char *arg, char **spec, struct plait_error **err)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	const char *type = NULL, *dest = NULL;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		if (startswith(f, "type="))
			type = f + 5;
		else if (startswith(f, "dest="))
			dest = f + 5;
		else
			return plait_error_set(err, PLAIT_E_USAGE, "--output '%s': unknown field '%s'", arg, f);
	}
	if (!type || !dest || !*dest || !(streq(type, "oci") || streq(type, "oci-archive")))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--output '%s': use type=oci,dest=DIR or type=oci-archive,dest=FILE", arg);
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s:%s", type, dest);
	*spec = plait_buf_detach(&b, NULL);
	return 0;
}

/* The tag part of -t REF, for layouts ("localhost/x:1" -> "1"); NULL when none. */
static char *tag_of(const char *ref)
{
	struct plait_ref r = { 0 };
	if (plait_ref_parse(ref, &r, NULL) < 0)
		return NULL;
	char *t = xstrdup_or_null(r.tag);
	plait_ref_release(&r);
	return t;
}

static int export_to(const char *spec, const char *tag, struct plait_endpoint *src,
		     const struct plait_descriptor *root, const struct plait_buf *data,
		     const struct plait_registry_opts *opts, struct plait_error **err)
{
	struct plait_endpoint *dst = NULL;
	struct plait_copy_opts co = { .cancel = &plait_interrupted };
	int r = plait_endpoint_open(spec, true, opts, &dst, err);
	if (r >= 0)
		r = plait_copy_image(src, dst, root, data->buf, data->len, tag, &co, NULL, err);
	if (r >= 0 && !tag && dst->store)
		r = dst->ops->tag(dst, NULL, root, data->buf, data->len, err);
	if (r >= 0)
		r = plait_endpoint_commit(dst, err);
	plait_endpoint_free(dst);
	return r;
}

int cmd_build(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "tag", required_argument, NULL, 't' },
		{ "build-arg", required_argument, NULL, OPT_BUILD_ARG },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "push", no_argument, NULL, OPT_PUSH },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "no-cache", no_argument, NULL, OPT_NO_CACHE },
		{ "compression", required_argument, NULL, OPT_COMPRESSION },
		{ "source-date-epoch", required_argument, NULL, OPT_EPOCH },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "secret", required_argument, NULL, OPT_SECRET },
		{ "build-context", required_argument, NULL, OPT_BUILD_CONTEXT },
		{ "metadata-file", required_argument, NULL, OPT_METADATA },
		{ "progress", required_argument, NULL, OPT_PROGRESS },
		{ "push-by-digest", no_argument, NULL, OPT_PUSH_BY_DIGEST },
		{ "allow-latest", no_argument, NULL, OPT_ALLOW_LATEST },
		{ "help", no_argument, NULL, 'h' },
		REGISTRY_CLI_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct registry_cli rc = { 0 };
	struct plait_error *err = NULL;
	struct plait_build_opts bo = { .compression = PLAIT_LAYER_GZIP };
	struct progress_ctx pc = { .mode = isatty(STDERR_FILENO) ? PROGRESS_TTY : PROGRESS_PLAIN };
	struct resolver_ctx rctx = { 0 };
	struct plait_runner runner;
	struct plait_image_resolver resolver = { .ctx = &rctx, .resolve = resolve_image, .fetch_url = fetch_url };
	char **tags = NULL, **build_args = NULL, **labels = NULL, **outputs = NULL, **secret_files = NULL;
	struct plait_build_secret *secrets = NULL;
	size_t n_secrets = 0;
	const char *metadata = NULL;
	bool push = false, by_digest = false, allow_latest = false;
	struct plait_platform *plats = NULL;
	size_t n_plats = 0;
	struct plait_build_result *results = NULL;
	struct plait_descriptor root = { 0 };
	_cleanup_free_ char *platform_str = NULL, *build_platform_str = NULL, *cache_dir = NULL;
	struct plait_endpoint *src = NULL;
	struct plait_buf data = PLAIT_BUF_INIT;
	int c, r, ret = 0;
	uint64_t t0 = plait_now_ns();

	optind = 1;
	while ((c = getopt_long(argc, argv, "+f:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			goto done;
		case 'f':
			bo.dockerfile = optarg;
			break;
		case 't':
			plait_strv_push(&tags, optarg);
			break;
		case OPT_BUILD_ARG:
			plait_strv_push(&build_args, optarg);
			break;
		case OPT_TARGET:
			bo.target = optarg;
			break;
		case OPT_PLATFORM: {
			/* A list, and repeated options add up (as in docker buildx). */
			struct plait_platform *more = NULL;
			size_t n_more = 0;
			if (plait_platform_parse_list(optarg, &more, &n_more, &err) < 0)
				goto fail;
			plats = xrealloc(plats, (n_plats + n_more) * sizeof(*plats));
			memcpy(plats + n_plats, more, n_more * sizeof(*plats));
			n_plats += n_more;
			free(more);
			break;
		}
		case OPT_OUTPUT: {
			char *spec = NULL;
			if (output_spec(optarg, &spec, &err) < 0)
				goto fail;
			plait_strv_push(&outputs, spec);
			free(spec);
			break;
		}
		case OPT_PUSH:
			push = true;
			break;
		case OPT_PUSH_BY_DIGEST:
			push = by_digest = true;
			break;
		case OPT_ALLOW_LATEST:
			allow_latest = true;
			break;
		case OPT_CACHE_DIR:
			bo.cache_dir = optarg;
			break;
		case OPT_NO_CACHE:
			bo.no_cache = true;
			break;
		case OPT_COMPRESSION:
			if (streq(optarg, "gzip"))
				bo.compression = PLAIT_LAYER_GZIP;
			else if (streq(optarg, "zstd"))
				bo.compression = PLAIT_LAYER_ZSTD;
			else {
				ret = usage_error("build", "--compression: unknown '%s'; use gzip or zstd", optarg);
				goto done;
			}
			break;
		case OPT_EPOCH: {
			char *end;
			errno = 0;
			long long v = strtoll(optarg, &end, 10);
			if (errno || *end || v < 0) {
				ret = usage_error("build", "--source-date-epoch: '%s' is not a Unix time", optarg);
				goto done;
			}
			bo.have_epoch = true;
			bo.source_date_epoch = v;
			break;
		}
		case OPT_LABEL:
			plait_strv_push(&labels, optarg);
			break;
		case OPT_SECRET: {
			/* id=ID,src=FILE | id=ID,env=VAR */
			_cleanup_free_ char *copy = xstrdup(optarg);
			const char *id = NULL, *srcf = NULL, *env = NULL;
			for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
				if (startswith(f, "id="))
					id = f + 3;
				else if (startswith(f, "src=") || startswith(f, "source="))
					srcf = strchr(f, '=') + 1;
				else if (startswith(f, "env="))
					env = f + 4;
			}
			if (!id || (!srcf && !env)) {
				ret = usage_error("build", "--secret '%s': use id=ID,src=FILE or id=ID,env=VAR", optarg);
				goto done;
			}
			_cleanup_free_ char *path = NULL;
			if (env) {
				/* The value goes to a private file that the sandbox binds read-only. */
				const char *v = getenv(env);
				if (!v) {
					ret = usage_error("build", "--secret id=%s: $%s is not set", id, env);
					goto done;
				}
				path = xstrdup("/tmp/plait-secret-XXXXXX");
				int fd = mkstemp(path);
				if (fd < 0 || plait_write_all(fd, v, strlen(v)) < 0) {
					ret = usage_error("build", "--secret id=%s: cannot write a temporary file", id);
					if (fd >= 0)
						close(fd);
					goto done;
				}
				close(fd);
				plait_strv_push(&secret_files, path);
			} else {
				path = realpath(srcf, NULL);
				if (!path) {
					ret = usage_error("build", "--secret id=%s: cannot read '%s': %s", id, srcf,
							  strerror(errno));
					goto done;
				}
			}
			secrets = xrealloc(secrets, (n_secrets + 1) * sizeof(*secrets));
			secrets[n_secrets].id = xstrdup(id);
			secrets[n_secrets].src = TAKE_PTR(path);
			n_secrets++;
			break;
		}
		case OPT_BUILD_CONTEXT: {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				ret = usage_error("build", "--build-context '%s': use NAME=DIR, NAME=oci:DIR[:TAG] or NAME=docker-image://REF",
						  optarg);
				goto done;
			}
			rctx.named = xrealloc(rctx.named, (rctx.n_named + 1) * sizeof(*rctx.named));
			rctx.named[rctx.n_named].name = xstrndup(optarg, (size_t)(eq - optarg));
			rctx.named[rctx.n_named].ref = xstrdup(eq + 1);
			rctx.n_named++;
			break;
		}
		case OPT_METADATA:
			metadata = optarg;
			break;
		case OPT_PROGRESS:
			if (streq(optarg, "plain"))
				pc.mode = PROGRESS_PLAIN;
			else if (streq(optarg, "tty"))
				pc.mode = PROGRESS_TTY;
			else if (streq(optarg, "auto"))
				pc.mode = isatty(STDERR_FILENO) ? PROGRESS_TTY : PROGRESS_PLAIN;
			else if (streq(optarg, "json"))
				pc.mode = PROGRESS_JSON;
			else if (streq(optarg, "quiet"))
				pc.mode = PROGRESS_QUIET;
			else {
				ret = usage_error("build", "--progress: unknown '%s'; use auto, plain, tty, json or quiet", optarg);
				goto done;
			}
			break;
		case '?':
			ret = usage_error("build", "unknown or incomplete option '%s'", argv[optind - 1]);
			goto done;
		default:
			r = registry_cli_option(&rc, "build", c, optarg);
			if (r < 0) {
				ret = EXIT_USAGE;
				goto done;
			}
		}
	}
	if (argc - optind != 1) {
		ret = usage_error("build", optind == argc ? "missing CONTEXT (a directory, e.g. '.')"
							  : "expected one CONTEXT, got %d",
				  argc - optind);
		goto done;
	}
	if (push && !tags) {
		ret = usage_error("build", "--push needs at least one -t REF to push to");
		goto done;
	}
	for (char **t = tags; t && *t; t++) {
		struct plait_ref ref = { 0 };
		if (plait_ref_parse(*t, &ref, &err) < 0)
			goto fail;
		bool no_tag = !ref.tag && !by_digest;
		bool latest = ref.tag && streq(ref.tag, "latest");
		plait_ref_release(&ref);
		if (latest && !allow_latest) {
			ret = usage_error("build", "-t '%s': refusing to tag 'latest' (it moves with every build and "
					  "pins nothing): tag a version, or pass --allow-latest", *t);
			goto done;
		}
		if (no_tag) {
			ret = usage_error("build", "-t '%s' has no tag: name a version, e.g. '%s:1.0' "
					  "(plait does not tag 'latest' implicitly)", *t, *t);
			goto done;
		}
	}
	if (!bo.have_epoch && getenv("SOURCE_DATE_EPOCH") && *getenv("SOURCE_DATE_EPOCH")) {
		char *end;
		long long v = strtoll(getenv("SOURCE_DATE_EPOCH"), &end, 10);
		if (*end || v < 0) {
			ret = usage_error("build", "SOURCE_DATE_EPOCH='%s' is not a Unix time", getenv("SOURCE_DATE_EPOCH"));
			goto done;
		}
		bo.have_epoch = true;
		bo.source_date_epoch = v;
	}
	registry_cli_finish(&rc);

	plait_platform_host(&bo.build_platform);
	if (!n_plats) {
		plats = xcalloc(1, sizeof(*plats));
		plait_platform_host(&plats[0]);
		n_plats = 1;
	}
	for (size_t i = 0; i < n_plats; i++)
		for (size_t j = 0; j < i; j++)
			if (plait_platform_equal(&plats[i], &plats[j])) {
				_cleanup_free_ char *ps = plait_platform_format(&plats[i]);
				ret = usage_error("build", "--platform: %s is listed twice", ps);
				goto done;
			}
	build_platform_str = plait_platform_format(&bo.build_platform);
	bo.build_platform_str = build_platform_str;
	bo.context_dir = argv[optind];
	bo.build_args = (const char *const *)build_args;
	bo.labels = (const char *const *)labels;
	bo.secrets = secrets;
	bo.n_secrets = n_secrets;
	/* --build-context NAME=DIR: a directory is a named local context; other
	 * values (oci:, docker-image://) name images for FROM and COPY --from. */
	struct plait_named_dir *dirs = xcalloc(rctx.n_named + 1, sizeof(*dirs));
	size_t n_dirs = 0;
	for (size_t i = 0; i < rctx.n_named; i++) {
		const char *v = rctx.named[i].ref;
		struct stat st;
		if (!startswith(v, "oci:") && !startswith(v, "oci-archive:") && !startswith(v, "docker-image://") &&
		    stat(v, &st) == 0 && S_ISDIR(st.st_mode))
			dirs[n_dirs++] = (struct plait_named_dir){ rctx.named[i].name, v };
	}
	bo.named_dirs = dirs;
	bo.n_named_dirs = n_dirs;
	plait_native_runner(&runner);
	bo.runner = &runner;
	rctx.opts = &rc.opts;
	bo.resolver = &resolver;
	bo.progress = on_progress;
	bo.progress_ctx = &pc;
	bo.cancel = &plait_interrupted;
	if (!bo.cache_dir) {
		cache_dir = plait_build_default_cache_dir();
		bo.cache_dir = cache_dir;
	}

	/* One build per platform, in the order asked; any failure stops here,
	 * before anything is exported or tagged. */
	results = xcalloc(n_plats, sizeof(*results));
	for (size_t i = 0; i < n_plats; i++)
		results[i].lock_fd = -1;
	for (size_t i = 0; i < n_plats; i++) {
		free(platform_str);
		platform_str = plait_platform_format(&plats[i]);
		bo.platform = plats[i]; /* borrowed: released with plats */
		bo.platform_str = platform_str;
		pc.platform = n_plats > 1 ? platform_str : NULL;
		if (plait_build(&bo, &results[i], &err) < 0) {
			if (n_plats > 1)
				plait_error_wrap(&err, "%s", platform_str);
			goto fail;
		}
	}
	memset(&bo.platform, 0, sizeof(bo.platform));

	/* Export: from the cache's store to every output, then every tag. */
	{
		_cleanup_free_ char *sp = plait_build_cache_store(bo.cache_dir);
		struct plait_store *s = NULL;
		if (plait_store_open(sp, false, &s, &err) < 0) {
			plait_store_free(s);
			goto fail;
		}
		if (n_plats == 1) {
			plait_descriptor_copy(&root, &results[0].manifest);
		} else {
			/* Several platforms: one OCI index, entries in --platform order. */
			struct plait_index idx = { .schema_version = 2 };
			idx.media_type = xstrdup(plait_media_type_to_string(PLAIT_MT_OCI_INDEX));
			for (size_t i = 0; i < n_plats; i++) {
				struct plait_descriptor d = { 0 };
				plait_descriptor_copy(&d, &results[i].manifest);
				d.platform = xcalloc(1, sizeof(*d.platform));
				plait_platform_copy(d.platform, &plats[i]);
				plait_index_add(&idx, &d);
				plait_descriptor_release(&d);
			}
			struct plait_buf ib = PLAIT_BUF_INIT;
			int r2 = plait_index_serialise(&idx, &ib, &err);
			if (r2 >= 0)
				r2 = plait_store_put_bytes(s, ib.buf, ib.len, root.digest, &err);
			root.media_type = xstrdup(idx.media_type);
			root.size = (int64_t)ib.len;
			plait_buf_release(&ib);
			plait_index_release(&idx);
			if (r2 < 0) {
				plait_store_free(s);
				goto fail;
			}
		}
		if (plait_store_read_blob(s, root.digest, PLAIT_MANIFEST_MAX, &data, &err) < 0) {
			plait_store_free(s);
			goto fail;
		}
		src = plait_layout_endpoint_new(s, sp, sp, NULL);
	}
	for (char **o = outputs; o && *o; o++) {
		if (!tags && export_to(*o, NULL, src, &root, &data, &rc.opts, &err) < 0)
			goto fail;
		for (char **t = tags; t && *t; t++) {
			_cleanup_free_ char *tag = tag_of(*t);
			if (export_to(*o, tag, src, &root, &data, &rc.opts, &err) < 0)
				goto fail;
		}
		fprintf(stderr, "exported %s to %s\n", root.digest, *o);
	}
	if (push) {
		for (char **t = tags; t && *t; t++) {
			/* --push-by-digest: everything goes up, nothing is tagged (the CI
			 * matrix flow: a last job joins the digests into one index). */
			_cleanup_free_ char *tag = by_digest ? NULL : tag_of(*t);
			if (export_to(*t, tag, src, &root, &data, &rc.opts, &err) < 0)
				goto fail;
			fprintf(stderr, "pushed %s%s%s\n", *t, by_digest ? " by digest " : "",
				by_digest ? root.digest : "");
		}
	}
	if (metadata) {
		json_auto_t *m = json_object();
		struct plait_buf names = PLAIT_BUF_INIT;
		for (char **t = tags; t && *t; t++)
			plait_buf_addf(&names, "%s%s", names.len ? "," : "", *t);
		int64_t size = 0;
		int steps = 0, cached = 0;
		json_t *pl = json_array();
		for (size_t i = 0; i < n_plats; i++) {
			_cleanup_free_ char *ps = plait_platform_format(&plats[i]);
			json_t *e = json_object();
			json_object_set_new(e, "platform", json_string(ps));
			json_object_set_new(e, "digest", json_string(results[i].manifest.digest));
			json_object_set_new(e, "config.digest", json_string(results[i].config_digest));
			json_object_set_new(e, "size", json_integer(results[i].size));
			json_array_append_new(pl, e);
			size += results[i].size;
			steps += results[i].steps;
			cached += results[i].cached;
		}
		json_object_set_new(m, "containerimage.digest", json_string(root.digest));
		json_object_set_new(m, "containerimage.mediaType", json_string(root.media_type));
		if (n_plats == 1)
			json_object_set_new(m, "containerimage.config.digest",
					    json_string(results[0].config_digest));
		json_object_set_new(m, "image.name", json_string(names.buf));
		json_object_set_new(m, "size", json_integer(size));
		json_object_set_new(m, "duration_s", json_real((double)(plait_now_ns() - t0) / 1e9));
		json_object_set_new(m, "steps", json_integer(steps));
		json_object_set_new(m, "cached", json_integer(cached));
		json_object_set_new(m, "platforms", pl);
		plait_buf_release(&names);
		if (json_dump_file(m, metadata, JSON_INDENT(2)) < 0) {
			plait_error_set_errno(&err, PLAIT_E_IO, errno, "cannot write --metadata-file '%s'", metadata);
			goto fail;
		}
	}
	if (pc.mode != PROGRESS_QUIET) {
		for (size_t i = 0; n_plats > 1 && i < n_plats; i++) {
			_cleanup_free_ char *ps = plait_platform_format(&plats[i]);
			fprintf(stderr, "  %-16s %s (%d steps, %d cached)\n", ps, results[i].manifest.digest,
				results[i].steps, results[i].cached);
		}
		fprintf(stderr, "built %s%s in %.1fs\n", n_plats > 1 ? "index " : "", root.digest,
			(double)(plait_now_ns() - t0) / 1e9);
	}
	printf("%s\n", root.digest);
	goto done;
fail:
	ret = report_error(err);
done:
	for (char **f = secret_files; f && *f; f++)
		unlink(*f);
	plait_strv_free(secret_files);
	for (size_t i = 0; i < n_secrets; i++) {
		free((char *)secrets[i].id);
		free((char *)secrets[i].src);
	}
	free(secrets);
	for (size_t i = 0; i < rctx.n_named; i++) {
		free(rctx.named[i].name);
		free(rctx.named[i].ref);
	}
	free(rctx.named);
	free((void *)bo.named_dirs);
	free(pc.current);
	plait_endpoint_free(src);
	plait_buf_release(&data);
	for (size_t i = 0; results && i < n_plats; i++)
		plait_build_result_release(&results[i]);
	free(results);
	plait_descriptor_release(&root);
	plait_platform_list_free(plats, n_plats);
	plait_platform_release(&bo.build_platform);
	plait_strv_free(tags);
	plait_strv_free(build_args);
	plait_strv_free(labels);
	plait_strv_free(outputs);
	plait_error_free(err);
	registry_cli_release(&rc);
	return ret;
}
