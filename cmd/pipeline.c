/* cmd/pipeline.c - plan, build in parallel, export, publish; see pipeline.h. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "pipeline.h"
#include "core/build.h"
#include "core/copy.h"
#include "core/scheduler.h"
#include "platforms/builder.h"
#include "platforms/platform.h"
#include "registry/endpoint.h"
#include "registry/fetch.h"
#include "registry/ref.h"
#include "core/banned.h"

/* ------------------------------------------------------------ options */

void pipeline_target_release(struct pipeline_target *t)
{
	free(t->name);
	free(t->context);
	free(t->dockerfile);
	free(t->stage);
	plait_platform_list_free(t->platforms, t->n_platforms);
	for (size_t i = 0; i < t->n_variants; i++)
		plait_variant_release(&t->variants[i]);
	free(t->variants);
	for (size_t i = 0; i < t->n_annotations; i++)
		plait_annotation_release(&t->annotations[i]);
	free(t->annotations);
	plait_strv_free(t->tags);
	plait_strv_free(t->build_args);
	plait_strv_free(t->labels);
	plait_strv_free(t->outputs);
	plait_strv_free(t->problems);
	plait_strv_free(t->platform_texts);
	memset(t, 0, sizeof(*t));
}

void pipeline_release(struct pipeline *p)
{
	for (size_t i = 0; i < p->n_targets; i++)
		pipeline_target_release(&p->targets[i]);
	free(p->targets);
	for (char **f = p->secret_files; f && *f; f++)
		unlink(*f);
	plait_strv_free(p->secret_files);
	for (size_t i = 0; i < p->n_secrets; i++) {
		free((char *)p->secrets[i].id);
		free((char *)p->secrets[i].src);
	}
	free(p->secrets);
	for (size_t i = 0; i < p->n_named; i++) {
		free(p->named[i].name);
		free(p->named[i].ref);
	}
	free(p->named);
	registry_cli_release(&p->rc);
}

static int add_secret(struct pipeline *p, const char *cmd, const char *arg)
{
	_cleanup_free_ char *copy = xstrdup(arg);
	const char *id = NULL, *srcf = NULL, *env = NULL;
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		if (startswith(f, "id="))
			id = f + 3;
		else if (startswith(f, "src=") || startswith(f, "source="))
			srcf = strchr(f, '=') + 1;
		else if (startswith(f, "env="))
			env = f + 4;
	}
	if (!id || (!srcf && !env))
		return usage_error(cmd, "--secret '%s': use id=ID,src=FILE or id=ID,env=VAR", arg), -1;
	_cleanup_free_ char *path = NULL;
	if (env) {
		/* The value goes to a private file that the sandbox binds read-only. */
		const char *v = getenv(env);
		if (!v)
			return usage_error(cmd, "--secret id=%s: $%s is not set", id, env), -1;
		path = xstrdup("/tmp/plait-secret-XXXXXX");
		int fd = mkostemp(path, O_CLOEXEC);
		if (fd < 0 || plait_write_all(fd, v, strlen(v)) < 0) {
			if (fd >= 0)
				close(fd);
			return usage_error(cmd, "--secret id=%s: cannot write a temporary file", id), -1;
		}
		close(fd);
		plait_strv_push(&p->secret_files, path);
	} else {
		path = realpath(srcf, NULL);
		if (!path)
			return usage_error(cmd, "--secret id=%s: cannot read '%s': %s", id, srcf, strerror(errno)), -1;
		struct stat sst;
		if (stat(path, &sst) < 0 || !S_ISREG(sst.st_mode))
			return usage_error(cmd, "--secret id=%s: '%s' is not a file", id, srcf), -1;
	}
	p->secrets = xrealloc(p->secrets, (p->n_secrets + 1) * sizeof(*p->secrets));
	p->secrets[p->n_secrets].id = xstrdup(id);
	p->secrets[p->n_secrets].src = TAKE_PTR(path);
	p->n_secrets++;
	return 0;
}

int pipeline_option(struct pipeline *p, const char *cmd, int c, const char *arg)
{
	switch (c) {
	case OPT_P_CACHE_DIR:
		p->cache_dir = arg;
		return 1;
	case OPT_P_NO_CACHE:
		p->no_cache = true;
		return 1;
	case OPT_P_COMPRESSION:
		if (streq(arg, "gzip"))
			p->compression = PLAIT_LAYER_GZIP;
		else if (streq(arg, "zstd"))
			p->compression = PLAIT_LAYER_ZSTD;
		else
			return usage_error(cmd, "--compression: unknown '%s'; use gzip or zstd", arg), -1;
		return 1;
	case OPT_P_EPOCH:
		if (parse_epoch(cmd, "--source-date-epoch", arg, &p->source_date_epoch) < 0)
			return -1;
		p->have_epoch = true;
		return 1;
	case OPT_P_SECRET:
		return add_secret(p, cmd, arg) < 0 ? -1 : 1;
	case OPT_P_BUILD_CONTEXT: {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg)
			return usage_error(cmd, "--build-context '%s': use NAME=DIR, NAME=oci:DIR[:TAG] or "
						"NAME=docker-image://REF",
					   arg),
			       -1;
		p->named = xrealloc(p->named, (p->n_named + 1) * sizeof(*p->named));
		p->named[p->n_named].name = xstrndup(arg, (size_t)(eq - arg));
		p->named[p->n_named].ref = xstrdup(eq + 1);
		p->n_named++;
		return 1;
	}
	case OPT_P_METADATA:
		p->metadata = arg;
		return 1;
	case OPT_P_PROGRESS: {
		int m = progress_mode_parse(arg);
		if (m < 0)
			return usage_error(cmd, "--progress: unknown '%s'; use auto, plain, tty, json or quiet", arg), -1;
		p->mode = (enum progress_mode)m;
		return 1;
	}
	case OPT_P_PUSH:
		p->push = true;
		return 1;
	case OPT_P_PUSH_BY_DIGEST:
		p->push = p->by_digest = true;
		return 1;
	case OPT_P_ALLOW_LATEST:
		p->allow_latest = true;
		return 1;
	case 'j':
	case OPT_P_JOBS: {
		long n;
		if (parse_number_option(cmd, "--jobs", arg, 256, &n) < 0)
			return -1;
		p->max_jobs = (size_t)n;
		return 1;
	}
	case OPT_P_KEEP_GOING:
		p->keep_going = true;
		return 1;
	case OPT_P_INDEX_FORMAT:
		if (streq(arg, "docker"))
			p->docker_format = true;
		else if (streq(arg, "oci"))
			p->docker_format = false;
		else
			return usage_error(cmd, "--index-format: unknown '%s'; use oci or docker", arg), -1;
		return 1;
	}
	int r = registry_cli_option(&p->rc, cmd, c, arg);
	return r < 0 ? -1 : r;
}

int pipeline_finish_options(struct pipeline *p, const char *cmd)
{
	if (source_date_epoch(cmd, &p->have_epoch, &p->source_date_epoch) < 0)
		return -1;
	if (p->docker_format && p->compression == PLAIT_LAYER_ZSTD)
		return usage_error(cmd, "--index-format docker: Docker media types have no zstd layers; use "
					"--compression gzip or the OCI format"),
		       -1;
	for (size_t i = 0; i < p->n_targets; i++)
		if (p->push && !p->targets[i].tags)
			return usage_error(cmd, "--push needs at least one -t REF to push to%s%s",
					   p->targets[i].name ? " (target " : "",
					   p->targets[i].name ? p->targets[i].name : ""),
			       -1;
	registry_cli_finish(&p->rc);
	return 0;
}

int parse_variant(const char *spec, struct plait_variant *out, char ***problems, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	const char *colon = strchr(spec, ':');
	out->name = colon ? xstrndup(spec, (size_t)(colon - spec)) : xstrdup(spec);
	_cleanup_free_ char *copy = NULL;
	int r = 0;
	if (!plait_tag_is_valid(out->name)) {
		r = plait_error_set(err, PLAIT_E_USAGE,
				    "--variant '%s': the name '%s' must start with a letter, digit or '_' and go on "
				    "with letters, digits, '_', '.' or '-', 128 at most (it goes into tags), e.g. "
				    "--variant cuda:BASE=nvidia/cuda:12.4.1-runtime-ubuntu22.04",
				    spec, out->name);
		goto fail;
	}
	if (!colon)
		return 0;
	copy = xstrdup(colon + 1);
	for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(f, '=');
		if (!eq || eq == f) {
			r = plait_error_set(err, PLAIT_E_USAGE,
					    "--variant '%s': '%s' is not ARG=VALUE (or platforms=P[+P...])", spec, f);
			goto fail;
		}
		if (!startswith(f, "platforms=") && !startswith(f, "platform=")) {
			plait_strv_push(&out->args, f);
			continue;
		}
		if (!eq[1]) {
			/* an unset shell variable, most likely: not "every platform" */
			struct plait_buf m = PLAIT_BUF_INIT;
			plait_buf_addf(&m, "--variant '%s': platforms= is empty; list them as P+P, or leave "
					   "platforms= out to build every --platform",
				       spec);
			plait_strv_push(problems, m.buf);
			plait_buf_release(&m);
			continue;
		}
		for (char *s2 = NULL, *q = strtok_r(eq + 1, "+", &s2); q; q = strtok_r(NULL, "+", &s2)) {
			struct plait_platform pl = { 0 };
			_cleanup_error_ struct plait_error *pe = NULL;
			if (plait_platform_parse(q, &pl, &pe) < 0) {
				struct plait_buf m = PLAIT_BUF_INIT;
				plait_buf_addf(&m, "--variant '%s': %s", spec, pe->msg);
				plait_strv_push(problems, m.buf);
				plait_buf_release(&m);
				continue;
			}
			char *ps = plait_platform_format(&pl);
			plait_strv_push(&out->platforms, ps);
			free(ps);
			plait_platform_release(&pl);
		}
	}
	return 0;
fail:
	plait_variant_release(out);
	return r;
}

int parse_annotation(const char *spec, struct plait_annotation *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	const char *kv = spec, *colon = strchr(spec, ':'), *eq = strchr(spec, '=');
	int r = 0;
	if (colon && (!eq || colon < eq)) {
		_cleanup_free_ char *type = xstrndup(spec, (size_t)(colon - spec));
		char *br = strchr(type, '[');
		kv = colon + 1;
		if (br) {
			char *end = strchr(br, ']');
			if (!end || end[1])
				return plait_error_set(err, PLAIT_E_USAGE, "--annotation '%s': unclosed '[' in the type",
						       spec);
			*end = '\0';
			*br++ = '\0';
			for (char *s = NULL, *q = strtok_r(br, ",", &s); q; q = strtok_r(NULL, ",", &s)) {
				struct plait_platform want = { 0 };
				if ((r = plait_platform_parse(q, &want, err)) < 0) {
					plait_annotation_release(out);
					return plait_error_wrap(err, "--annotation '%s'", spec), r;
				}
				char *ps = plait_platform_format(&want);
				plait_strv_push(&out->platforms, ps);
				free(ps);
				plait_platform_release(&want);
			}
		}
		if (streq(type, "index") && !br)
			out->index = true;
		else if (!streq(type, "manifest")) {
			plait_annotation_release(out);
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--annotation '%s': unknown type '%s%s'; use index:K=V, manifest:K=V or "
					       "manifest[PLATFORM]:K=V",
					       spec, type, br ? "[...]" : "");
		}
	}
	eq = strchr(kv, '=');
	if (!eq || eq == kv) {
		plait_annotation_release(out);
		return plait_error_set(err, PLAIT_E_USAGE, "--annotation '%s': expected KEY=VALUE", spec);
	}
	out->kv = xstrdup(kv);
	return 0;
}

/* "type=oci,dest=DIR" -> "oci:DIR" */
int parse_output(const char *arg, char **spec, struct plait_error **err)
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

/* Say what is wrong with --platform's value: the planner reports it. */
_printf_(2, 3) static void platform_problem(struct pipeline_target *t, const char *fmt, ...)
{
	struct plait_buf m = PLAIT_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&m, fmt, ap);
	va_end(ap);
	plait_strv_push(&t->problems, m.buf);
	plait_buf_release(&m);
}

static char *trimmed(const char *b, const char *end)
{
	while (b < end && isspace((unsigned char)*b))
		b++;
	while (end > b && isspace((unsigned char)end[-1]))
		end--;
	return xstrndup(b, (size_t)(end - b));
}

void target_add_platforms(struct pipeline_target *t, const char *what, const char *list)
{
	t->platforms_given = true;
	/* One entry at a time, so that every bad one is named. */
	for (const char *p = list;;) {
		const char *comma = strchr(p, ',');
		_cleanup_free_ char *item = trimmed(p, comma ? comma : p + strlen(p));
		struct plait_platform one = { 0 };
		_cleanup_error_ struct plait_error *e = NULL;
		if (!*item && (comma || p != list)) {
			platform_problem(t, "%s '%s': empty entry; separate platforms with a single ',', "
					    "e.g. 'linux/amd64,linux/arm64'", what, list);
		} else if (plait_platform_parse(item, &one, &e) < 0) {
			platform_problem(t, "%s: %s", what, e->msg);
		} else {
			size_t j = 0;
			while (j < t->n_platforms && !plait_platform_equal(&one, &t->platforms[j]))
				j++;
			if (j < t->n_platforms) {
				_cleanup_free_ char *ps = plait_platform_format(&one);
				if (streq(item, t->platform_texts[j]))
					platform_problem(t, "%s: %s is listed twice", what, item);
				else
					platform_problem(t, "%s: '%s' and '%s' are both %s: list it once", what,
							 t->platform_texts[j], item, ps);
				plait_platform_release(&one);
			} else {
				t->platforms = xrealloc(t->platforms, (t->n_platforms + 1) * sizeof(*t->platforms));
				t->platforms[t->n_platforms++] = one;
				plait_strv_push(&t->platform_texts, item);
			}
		}
		if (!comma)
			break;
		p = comma + 1;
	}
}

/* ------------------------------------------------------------ resolving */

struct resolver_ctx {
	const struct plait_registry_opts *opts;
	const struct named_context *named;
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
	*ep = NULL;
	int r = plait_platform_parse(platform, &want, err);
	if (r >= 0)
		r = plait_endpoint_open(ref, false, rc->opts, ep, err);
	if (r >= 0)
		r = plait_endpoint_resolve(*ep, NULL, manifest, bytes, err);
	if (r >= 0) /* an index narrows to the platform; a manifest's config must match it */
		r = narrow_to_platforms(*ep, manifest, bytes, &want, 1, err);
	plait_platform_release(&want);
	return r;
}

static int fetch_url(void *ctx, const char *url, struct plait_blob_writer *w, struct plait_error **err)
{
	struct resolver_ctx *rc = ctx;
	return plait_fetch_url(url, rc->opts, w, err);
}

/* The tag part of -t REF ("localhost/x:1" -> "1"); NULL when none. */
static char *tag_of(const char *ref)
{
	struct plait_ref r = { 0 };
	if (plait_ref_parse(ref, &r, NULL) < 0)
		return NULL;
	char *t = xstrdup_or_null(r.tag);
	plait_ref_release(&r);
	return t;
}

/* ------------------------------------------------------------ running */

struct run {
	struct pipeline *p;
	struct plait_plan *plan;
	struct plait_build_opts base;
	struct plait_build_result *results;
	double *seconds;
	struct progress progress;
};

static int run_job(void *ctx, size_t i, const volatile int *cancel, struct plait_error **err)
{
	struct run *run = ctx;
	const struct plait_job *job = &run->plan->jobs[i];
	const struct plait_plan_image *im = &run->plan->images[job->image];
	const struct pipeline_target *t = &run->p->targets[im->target];
	struct plait_build_opts bo = run->base;
	bo.context_dir = t->context;
	bo.dockerfile = t->dockerfile;
	bo.target = t->stage;
	bo.platform = job->platform;
	bo.platform_str = job->platform_str;
	bo.build_args = (const char *const *)job->build_args;
	bo.labels = (const char *const *)t->labels;
	bo.annotations = (const char *const *)job->annotations;
	bo.runner = &job->builder.runner;
	bo.progress = progress_event;
	bo.progress_ctx = &run->progress.jobs[i];
	bo.cancel = cancel;
	uint64_t t0 = plait_now_ns();
	int r = plait_build(&bo, &run->results[i], err);
	run->seconds[i] = (double)(plait_now_ns() - t0) / 1e9;
	/* Name the job when there is more than one, or a bake target to name. */
	if (r < 0 && (run->plan->n_jobs > 1 || im->req->name))
		plait_error_wrap(err, "%s", job->label);
	return r;
}

static void print_plan(const struct plait_plan *plan, bool as_json)
{
	if (as_json) {
		json_auto_t *j = plait_plan_to_json(plan);
		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		return;
	}
	printf("%-3s %-14s %-10s %-16s %-8s %s\n", "#", "TARGET", "VARIANT", "PLATFORM", "BUILDER", "ARGS / TAGS");
	for (size_t k = 0; k < plan->n_jobs; k++) {
		const struct plait_job *j = &plan->jobs[plan->order[k]];
		const struct plait_plan_image *im = &plan->images[j->image];
		struct plait_buf args = PLAIT_BUF_INIT, tags = PLAIT_BUF_INIT;
		for (char **a = j->build_args; a && *a; a++)
			plait_buf_addf(&args, "%s%s", args.len ? " " : "", *a);
		for (char **t = im->tags; t && *t; t++)
			plait_buf_addf(&tags, "%s%s", tags.len ? " " : "", *t);
		printf("%-3zu %-14s %-10s %-16s %-8s %s\n", k + 1,
		       im->req->name ? im->req->name : (im->req->stage ? im->req->stage : "-"),
		       im->variant ? im->variant : "-", j->platform_str, j->builder.name ? j->builder.name : "?",
		       args.len ? args.buf : "-");
		if (tags.len)
			printf("%-3s %-14s %-10s %-16s %-8s -> %s\n", "", "", "", "", "", tags.buf);
		plait_buf_release(&args);
		plait_buf_release(&tags);
	}
}

/* The image of one plan image in the cache store: its manifest (a lone
 * default platform) or an index of its jobs' manifests in platform order. */
static int make_root(struct run *run, struct plait_store *s, const struct plait_plan_image *im,
		     struct plait_descriptor *root, struct plait_buf *data, struct plait_error **err)
{
	if (im->single) {
		plait_descriptor_copy(root, &run->results[im->jobs[0]].manifest);
		return plait_store_read_blob(s, root->digest, PLAIT_MANIFEST_MAX, data, err);
	}
	struct plait_index idx = { .schema_version = 2 };
	enum plait_media_type mt = run->p->docker_format ? PLAIT_MT_DOCKER_LIST : PLAIT_MT_OCI_INDEX;
	idx.media_type = xstrdup(plait_media_type_to_string(mt));
	for (size_t k = 0; k < im->n_jobs; k++) {
		const struct plait_job *j = &run->plan->jobs[im->jobs[k]];
		struct plait_descriptor d = { 0 };
		plait_descriptor_copy(&d, &run->results[im->jobs[k]].manifest);
		d.platform = xcalloc(1, sizeof(*d.platform));
		plait_platform_copy(d.platform, &j->platform);
		plait_index_add(&idx, &d);
		plait_descriptor_release(&d);
	}
	if (!run->p->docker_format) {
		for (char **a = im->annotations; a && *a; a++) {
			const char *eq = strchr(*a, '=');
			_cleanup_free_ char *k = xstrndup(*a, (size_t)(eq - *a));
			plait_map_set(&idx.annotations, k, eq + 1);
		}
		if (run->p->have_epoch && !plait_map_get(&idx.annotations, "org.opencontainers.image.created")) {
			char when[32];
			format_epoch(run->p->source_date_epoch, when);
			plait_map_set(&idx.annotations, "org.opencontainers.image.created", when);
		}
	}
	int r = plait_index_serialise(&idx, data, err);
	if (r >= 0)
		r = plait_store_put_bytes(s, data->buf, data->len, root->digest, err);
	root->media_type = xstrdup(idx.media_type);
	root->size = (int64_t)data->len;
	plait_index_release(&idx);
	return r;
}

struct published {
	struct plait_descriptor root;
	struct plait_buf data;
};

/* Every image of target ti into one OCI layout or archive, tagged as -t says. */
static int export_output(struct run *run, struct plait_endpoint *src, struct published *pub, size_t ti,
			 const char *spec, struct plait_error **err)
{
	struct plait_endpoint *dst = NULL;
	struct plait_copy_opts co = { .cancel = &plait_interrupted };
	int r = plait_endpoint_open(spec, true, &run->p->rc.opts, &dst, err);
	for (size_t i = 0; r >= 0 && i < run->plan->n_images; i++) {
		const struct plait_plan_image *im = &run->plan->images[i];
		if (im->target != ti)
			continue;
		_cleanup_free_ char *first = im->tags ? tag_of(im->tags[0]) : NULL;
		r = plait_copy_image(src, dst, &pub[i].root, pub[i].data.buf, pub[i].data.len, first, &co, NULL, err);
		if (r >= 0 && !first && dst->store)
			r = dst->ops->tag(dst, NULL, &pub[i].root, pub[i].data.buf, pub[i].data.len, err);
		for (char **t = im->tags ? im->tags + 1 : NULL; r >= 0 && t && *t; t++) {
			_cleanup_free_ char *tag = tag_of(*t);
			if (tag)
				r = dst->ops->tag(dst, tag, &pub[i].root, pub[i].data.buf, pub[i].data.len, err);
		}
	}
	if (r >= 0)
		r = plait_endpoint_commit(dst, err);
	plait_endpoint_free(dst);
	return r;
}

/* Two images must not get the same tag in one OCI layout or archive: the
 * second would silently replace the first. Found before anything is built. */
static int check_outputs(const struct pipeline *p, const struct plait_plan *plan, struct plait_error **err)
{
	char **seen = NULL;	/* "output\ntag" */
	size_t *owner = NULL; /* the image each came from: its own tags never clash */
	size_t n_seen = 0;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < plan->n_images; i++) {
		const struct plait_plan_image *im = &plan->images[i];
		for (char **o = p->targets[im->target].outputs; r >= 0 && o && *o; o++) {
			for (char **t = im->tags; r >= 0 && t && *t; t++) {
				_cleanup_free_ char *tag = tag_of(*t);
				if (!tag)
					continue; /* untagged entries do not replace each other */
				struct plait_buf k = PLAIT_BUF_INIT;
				plait_buf_addf(&k, "%s\n%s", *o, tag);
				for (size_t s2 = 0; s2 < n_seen && r >= 0; s2++)
					if (owner[s2] != i && streq(seen[s2], k.buf))
						r = plait_error_set(err, PLAIT_E_USAGE,
								    "two images would be tagged '%s' in %s (a layout names "
								    "images by tag only): give each target its own output or "
								    "tags",
								    tag, *o);
				plait_strv_push(&seen, k.buf);
				owner = xrealloc(owner, (n_seen + 1) * sizeof(*owner));
				owner[n_seen++] = i;
				plait_buf_release(&k);
			}
		}
	}
	plait_strv_free(seen);
	free(owner);
	return r;
}

struct pushed {
	struct plait_endpoint *ep;
	size_t image;
	const char *ref;
};

/* Registries: everything by digest first (blobs, manifests, indexes), every
 * tag only after all of that succeeded. */
static int push_all(struct run *run, struct plait_endpoint *src, struct published *pub, struct plait_error **err)
{
	struct pushed *eps = NULL;
	size_t n = 0;
	struct plait_copy_opts co = { .cancel = &plait_interrupted };
	int r = 0;
	for (size_t i = 0; r >= 0 && i < run->plan->n_images; i++) {
		const struct plait_plan_image *im = &run->plan->images[i];
		for (char **t = im->tags; r >= 0 && t && *t; t++) {
			struct plait_endpoint *ep = NULL;
			r = plait_endpoint_open(*t, true, &run->p->rc.opts, &ep, err);
			if (r >= 0)
				r = plait_copy_image(src, ep, &pub[i].root, pub[i].data.buf, pub[i].data.len, NULL, &co,
						     NULL, err);
			if (r < 0) {
				plait_error_wrap(err, "push %s", *t);
				plait_endpoint_free(ep);
				break;
			}
			eps = xrealloc(eps, (n + 1) * sizeof(*eps));
			eps[n++] = (struct pushed){ ep, i, *t };
			progress_note(&run->progress, "pushed %s by digest %s", *t, pub[i].root.digest);
		}
	}
	if (r >= 0 && plait_interrupted)
		r = plait_error_set(err, PLAIT_E_CANCELLED, "interrupted: no tag was moved");
	for (size_t k = 0; r >= 0 && !run->p->by_digest && k < n; k++) {
		_cleanup_free_ char *tag = tag_of(eps[k].ref);
		const struct published *pb = &pub[eps[k].image];
		r = eps[k].ep->ops->tag(eps[k].ep, tag, &pb->root, pb->data.buf, pb->data.len, err);
		if (r >= 0)
			r = plait_endpoint_commit(eps[k].ep, err);
		if (r < 0)
			plait_error_wrap(err, "tag %s (tags before it in this list moved; run again to finish)",
					 eps[k].ref);
		else
			progress_note(&run->progress, "pushed %s", eps[k].ref);
	}
	for (size_t k = 0; k < n; k++)
		plait_endpoint_free(eps[k].ep);
	free(eps);
	return r;
}

static json_t *image_json(struct run *run, const struct plait_plan_image *im, const struct published *pb)
{
	json_t *o = json_object(), *pl = json_array(), *tags = json_array();
	for (char **t = im->tags; t && *t; t++)
		json_array_append_new(tags, json_string(*t));
	if (im->req->name)
		json_object_set_new(o, "target", json_string(im->req->name));
	if (im->variant)
		json_object_set_new(o, "variant", json_string(im->variant));
	json_object_set_new(o, "digest", json_string(pb->root.digest));
	json_object_set_new(o, "mediaType", json_string(pb->root.media_type));
	json_object_set_new(o, "tags", tags);
	for (size_t k = 0; k < im->n_jobs; k++) {
		size_t j = im->jobs[k];
		const struct plait_build_result *res = &run->results[j];
		json_t *e = json_object();
		json_object_set_new(e, "platform", json_string(run->plan->jobs[j].platform_str));
		json_object_set_new(e, "digest", json_string(res->manifest.digest));
		json_object_set_new(e, "config.digest", json_string(res->config_digest));
		json_object_set_new(e, "size", json_integer(res->size));
		json_object_set_new(e, "duration_s", json_real(run->seconds[j]));
		json_object_set_new(e, "steps", json_integer(res->steps));
		json_object_set_new(e, "cached", json_integer(res->cached));
		json_object_set_new(e, "builder", json_string(run->plan->jobs[j].builder.name));
		json_array_append_new(pl, e);
	}
	json_object_set_new(o, "platforms", pl);
	return o;
}

static int write_metadata(struct run *run, const struct published *pub, double total, struct plait_error **err)
{
	json_auto_t *m = json_object();
	json_t *images = json_array(), *variants = json_object();
	for (size_t i = 0; i < run->plan->n_images; i++) {
		const struct plait_plan_image *im = &run->plan->images[i];
		json_t *o = image_json(run, im, &pub[i]);
		if (im->variant && !im->req->name)
			json_object_set(variants, im->variant, o); /* the same object, listed twice */
		json_array_append_new(images, o);
	}
	/* One image: the keys buildx writes, which 'plait index create
	 * --from-metadata' reads. */
	if (run->plan->n_images == 1) {
		const struct plait_plan_image *im = &run->plan->images[0];
		struct plait_buf names = PLAIT_BUF_INIT;
		int64_t size = 0;
		int steps = 0, cached = 0;
		for (char **t = im->tags; t && *t; t++)
			plait_buf_addf(&names, "%s%s", names.len ? "," : "", *t);
		for (size_t k = 0; k < im->n_jobs; k++) {
			size += run->results[im->jobs[k]].size;
			steps += run->results[im->jobs[k]].steps;
			cached += run->results[im->jobs[k]].cached;
		}
		json_object_set_new(m, "containerimage.digest", json_string(pub[0].root.digest));
		json_object_set_new(m, "containerimage.mediaType", json_string(pub[0].root.media_type));
		if (im->single)
			json_object_set_new(m, "containerimage.config.digest",
					    json_string(run->results[im->jobs[0]].config_digest));
		json_object_set_new(m, "image.name", json_string(names.len ? names.buf : ""));
		json_object_set_new(m, "size", json_integer(size));
		json_object_set_new(m, "steps", json_integer(steps));
		json_object_set_new(m, "cached", json_integer(cached));
		json_object_set_new(m, "platforms", json_incref(json_object_get(json_array_get(images, 0), "platforms")));
		plait_buf_release(&names);
	}
	json_object_set_new(m, "duration_s", json_real(total));
	json_object_set_new(m, "images", images);
	if (json_object_size(variants))
		json_object_set_new(m, "variants", variants);
	else
		json_decref(variants);
	_cleanup_free_ char *text = json_dumps(m, JSON_INDENT(2));
	size_t len = text ? strlen(text) : 0;
	if (text)
		text[len++] = '\n'; /* json_dumps' NUL: the file ends with a newline */
	int r = text ? plait_replace_file(run->p->metadata, text, len) : -ENOMEM;
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r,
					     "the images are published%s, but --metadata-file '%s' cannot be written",
					     run->p->push ? " and tagged" : "", run->p->metadata);
	return 0;
}

/* Before anything is built: --metadata-file must be a file that can be
 * written, so that a build does not publish and then fail on it. */
static int check_metadata_path(const char *path, struct plait_error **err)
{
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return plait_error_set(err, PLAIT_E_USAGE, "--metadata-file '%s' is a directory: name a file",
				       path);
	_cleanup_free_ char *dir = plait_path_dir(path);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--metadata-file '%s': directory '%s' does not exist (create it first)", path,
				       dir);
	if (access(dir, W_OK) < 0)
		return plait_error_set_errno(err, PLAIT_E_USAGE, errno, "--metadata-file '%s': cannot write in '%s'",
					     path, dir);
	return 0;
}

static void print_summary(struct run *run, const struct published *pub, double total)
{
	if (run->p->mode == PROGRESS_QUIET)
		return;
	if (run->p->mode == PROGRESS_JSON) {
		/* One more event line, so that every line of stderr is JSON. */
		json_auto_t *o = json_object();
		json_t *images = json_array();
		for (size_t i = 0; i < run->plan->n_images; i++)
			json_array_append_new(images, image_json(run, &run->plan->images[i], &pub[i]));
		json_object_set_new(o, "event", json_string("summary"));
		json_object_set_new(o, "images", images);
		json_object_set_new(o, "duration_s", json_real(total));
		json_dumpf(o, stderr, JSON_COMPACT);
		fputc('\n', stderr);
		return;
	}
	bool several = run->plan->n_jobs > 1 || run->plan->n_images > 1;
	if (several) {
		int w = 8, wl = 12;
		struct plait_buf *names = xcalloc(run->plan->n_images, sizeof(*names));
		for (size_t i = 0; i < run->plan->n_images; i++) {
			const struct plait_plan_image *im = &run->plan->images[i];
			names[i] = (struct plait_buf)PLAIT_BUF_INIT;
			plait_buf_addf(&names[i], "%s%s%s", im->req->name ? im->req->name : "",
				       im->req->name && im->variant ? " " : "",
				       im->variant ? im->variant : (im->req->name ? "" : "default"));
			if ((int)names[i].len > w)
				w = (int)names[i].len;
		}
		for (size_t j = 0; j < run->plan->n_jobs; j++)
			if ((int)strlen(run->plan->jobs[j].label) > wl)
				wl = (int)strlen(run->plan->jobs[j].label);
		fprintf(stderr, "\nimages:\n");
		for (size_t i = 0; i < run->plan->n_images; i++) {
			const struct plait_plan_image *im = &run->plan->images[i];
			struct plait_buf tags = PLAIT_BUF_INIT;
			for (char **t = im->tags; t && *t; t++)
				plait_buf_addf(&tags, "%s%s", tags.len ? ", " : "", *t);
			fprintf(stderr, "  %-*s  %-8s %s  %s\n", w, names[i].buf, im->single ? "manifest" : "index",
				pub[i].root.digest, tags.len ? tags.buf : "(no tags)");
			plait_buf_release(&tags);
			plait_buf_release(&names[i]);
		}
		free(names);
		fprintf(stderr, "jobs:\n");
		for (size_t j = 0; j < run->plan->n_jobs; j++) {
			const struct plait_job *job = &run->plan->jobs[j];
			const struct plait_build_result *res = &run->results[j];
			char size[32];
			format_size(res->size, size);
			fprintf(stderr, "  %-*s  %.19s  %10s  %6.1fs  %2d/%-2d cached  %s\n", wl, job->label,
				res->manifest.digest, size, run->seconds[j], res->cached, res->steps,
				job->builder.emulated ? "emulated"
				: streq_ptr(job->builder.name, "none") ? "no builder (nothing runs on it)"
				: "native");
		}
	}
	fprintf(stderr, "built %s%s in %.1fs\n", run->plan->n_images == 1 && !run->plan->images[0].single ? "index " : "",
		run->plan->n_images == 1 ? pub[0].root.digest : "every image", total);
}

int pipeline_run(struct pipeline *p, bool plan_only, bool plan_json)
{
	struct plait_error *err = NULL;
	struct plait_plan plan = { 0 };
	struct plait_platform host = { 0 };
	struct plait_builder_chooser chooser;
	struct resolver_ctx rctx = { .opts = &p->rc.opts, .named = p->named, .n_named = p->n_named };
	struct plait_image_resolver resolver = { .ctx = &rctx, .resolve = resolve_image, .fetch_url = fetch_url };
	struct plait_plan_target *pts = xcalloc(p->n_targets + 1, sizeof(*pts));
	struct plait_named_dir *dirs = xcalloc(p->n_named + 1, sizeof(*dirs));
	struct run run = { .p = p, .plan = &plan };
	struct published *pub = NULL;
	struct plait_endpoint *src = NULL;
	struct plait_store *store = NULL;
	struct plait_error **errs = NULL;
	_cleanup_free_ char *host_str = NULL, *cache_dir = NULL;
	int ret = 0;
	uint64_t t0 = plait_now_ns();

	plait_platform_host(&host);
	host_str = plait_platform_format(&host);
	plait_local_builders(&chooser);
	for (size_t i = 0; i < p->n_targets; i++) {
		struct pipeline_target *t = &p->targets[i];
		/* none given: the host's (but not in place of ones that were wrong) */
		if (!t->platforms_given) {
			t->platforms = xcalloc(1, sizeof(*t->platforms));
			plait_platform_host(&t->platforms[0]);
			t->n_platforms = 1;
		}
		pts[i].name = t->name;
		pts[i].context_dir = t->context;
		pts[i].dockerfile = t->dockerfile;
		pts[i].stage = t->stage;
		pts[i].platforms = t->platforms;
		pts[i].n_platforms = t->n_platforms;
		pts[i].variants = t->variants;
		pts[i].n_variants = t->n_variants;
		pts[i].tags = (const char *const *)t->tags;
		pts[i].build_args = (const char *const *)t->build_args;
		pts[i].labels = (const char *const *)t->labels;
		pts[i].annotations = t->annotations;
		pts[i].n_annotations = t->n_annotations;
		pts[i].problems = (const char *const *)t->problems;
	}
	/* --build-context NAME=DIR: a directory is a named local context; other
	 * values (oci:, docker-image://) name images for FROM and COPY --from. */
	size_t n_dirs = 0;
	for (size_t i = 0; i < p->n_named; i++) {
		const char *v = p->named[i].ref;
		struct stat st;
		if (!startswith(v, "oci:") && !startswith(v, "oci-archive:") && !startswith(v, "docker-image://") &&
		    stat(v, &st) == 0 && S_ISDIR(st.st_mode))
			dirs[n_dirs++] = (struct plait_named_dir){ p->named[i].name, v };
	}

	struct plait_plan_opts po = {
		.build_platform = &host,
		.build_platform_str = host_str,
		.builders = &chooser,
		.resolver = &resolver,
		.allow_latest = p->allow_latest,
		.untagged_ok = p->by_digest,
	};
	if (plait_plan_make(pts, p->n_targets, &po, &plan, &err) < 0)
		goto fail;
	if (check_outputs(p, &plan, &err) < 0)
		goto fail;
	if (p->metadata && check_metadata_path(p->metadata, &err) < 0)
		goto fail;
	if (plan_only) {
		print_plan(&plan, plan_json);
		goto done;
	}

	if (!p->cache_dir)
		p->cache_dir = cache_dir = plait_build_default_cache_dir();
	run.base = (struct plait_build_opts){
		.named_dirs = dirs,
		.n_named_dirs = n_dirs,
		.build_platform = host,
		.build_platform_str = host_str,
		.secrets = p->secrets,
		.n_secrets = p->n_secrets,
		.cache_dir = p->cache_dir,
		.no_cache = p->no_cache,
		.compression = p->compression,
		.have_epoch = p->have_epoch,
		.source_date_epoch = p->source_date_epoch,
		.resolver = &resolver,
		.docker_media_types = p->docker_format,
	};
	run.results = xcalloc(plan.n_jobs, sizeof(*run.results));
	run.seconds = xcalloc(plan.n_jobs, sizeof(*run.seconds));
	for (size_t i = 0; i < plan.n_jobs; i++)
		run.results[i].lock_fd = -1;
	progress_init(&run.progress, p->mode, plan.n_jobs);
	for (size_t i = 0; i < plan.n_jobs; i++) {
		run.progress.jobs[i].label = plan.n_jobs > 1 ? plan.jobs[i].label : NULL;
		run.progress.jobs[i].platform = plan.jobs[i].platform_str;
		run.progress.jobs[i].variant = plan.images[plan.jobs[i].image].variant;
	}

	/* Build: every job must succeed before anything is exported or tagged. */
	errs = xcalloc(plan.n_jobs, sizeof(*errs));
	struct plait_sched_opts so = { .max_parallel = p->max_jobs, .keep_going = p->keep_going,
				       .interrupt = &plait_interrupted, .order = plan.order };
	if (plait_sched_run(plan.n_jobs, run_job, &run, &so, errs) != 0) {
		/* The first real failure is the error; the rest are listed. */
		size_t first = plan.n_jobs;
		for (size_t k = 0; k < plan.n_jobs; k++) {
			size_t j = plan.order[k];
			if (errs[j] && errs[j]->code != PLAIT_E_CANCELLED && first == plan.n_jobs)
				first = j;
		}
		if (first == plan.n_jobs)
			first = plan.order[0];
		for (size_t j = 0; plan.n_jobs > 1 && j < plan.n_jobs; j++)
			fprintf(stderr, "  %-28s %s\n", plan.jobs[j].label,
				!errs[j]				? "built (not published)"
				: errs[j]->code == PLAIT_E_CANCELLED ? "cancelled"
									: "FAILED");
		if (plan.n_jobs > 1)
			fprintf(stderr, "nothing was published: no tag moved\n");
		err = TAKE_PTR(errs[first]);
		goto fail;
	}

	/* Export: the images from the cache's store to every output, then the registries. */
	{
		_cleanup_free_ char *sp = plait_build_cache_store(p->cache_dir);
		if (plait_store_open(sp, false, &store, &err) < 0)
			goto fail;
		pub = xcalloc(plan.n_images, sizeof(*pub));
		for (size_t i = 0; i < plan.n_images; i++) {
			pub[i].data = (struct plait_buf)PLAIT_BUF_INIT;
			if (make_root(&run, store, &plan.images[i], &pub[i].root, &pub[i].data, &err) < 0)
				goto fail;
		}
		src = plait_layout_endpoint_new(store, sp, sp, NULL);
		store = NULL; /* the endpoint owns it */
	}
	for (size_t ti = 0; ti < p->n_targets; ti++)
		for (char **o = p->targets[ti].outputs; o && *o; o++) {
			if (export_output(&run, src, pub, ti, *o, &err) < 0)
				goto fail;
			progress_note(&run.progress, "exported %s", *o);
		}
	if (p->push && push_all(&run, src, pub, &err) < 0)
		goto fail;
	double total = (double)(plait_now_ns() - t0) / 1e9;
	if (p->metadata && write_metadata(&run, pub, total, &err) < 0)
		goto fail;
	print_summary(&run, pub, total);
	for (size_t i = 0; i < plan.n_images; i++) {
		if (plan.n_images > 1)
			printf("%s%s%s ", plan.images[i].req->name ? plan.images[i].req->name : "",
			       plan.images[i].req->name && plan.images[i].variant ? ":" : "",
			       plan.images[i].variant ? plan.images[i].variant : "");
		printf("%s\n", pub[i].root.digest);
	}
	goto done;
fail:
	ret = report_error(err);
done:
	for (size_t i = 0; errs && i < plan.n_jobs; i++)
		plait_error_free(errs[i]);
	free(errs);
	for (size_t i = 0; pub && i < plan.n_images; i++) {
		plait_descriptor_release(&pub[i].root);
		plait_buf_release(&pub[i].data);
	}
	free(pub);
	plait_endpoint_free(src);
	plait_store_free(store);
	for (size_t i = 0; run.results && i < plan.n_jobs; i++)
		plait_build_result_release(&run.results[i]);
	free(run.results);
	free(run.seconds);
	progress_release(&run.progress);
	plait_plan_release(&plan);
	plait_platform_release(&host);
	free(pts);
	free(dirs);
	plait_error_free(err);
	return ret;
}
