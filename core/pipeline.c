/* core/pipeline.c - plan, build in parallel, assemble, publish; see pipeline.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "pipeline.h"
#include "push_stream.h"
#include "assemble.h"
#include "export.h"
#include "fs.h"
#include "scheduler.h"
#include "util.h"
#include "core/ref.h"
#include "attest.h"
#include "sbom.h"
#include "timestamp.h"
#include "core/banned.h"

struct plait_job_ctx {
	struct plait_pipeline *p;
	size_t job;
};

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

/* Two images must not get the same tag in one OCI layout or archive: the
 * second would silently replace the first. Found before anything is built. */
static int check_outputs(const struct plait_pipeline *p, struct plait_error **err)
{
	const struct plait_plan *plan = &p->plan;
	if (p->req->attest_in_index && p->req->docker_format)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--attest-layout buildx puts OCI attestation manifests into the index: "
				       "use --index-format oci (the default) with it");
	char **seen = NULL;   /* "output\ntag" */
	size_t *owner = NULL; /* the image each came from: its own tags never clash */
	size_t n_seen = 0;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < plan->n_images; i++) {
		const struct plait_plan_image *im = &plan->images[i];
		for (char **o = im->req->outputs; r >= 0 && o && *o; o++) {
			if (startswith(*o, "tar:") || startswith(*o, "local:"))
				continue; /* no tags there */
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

/* "docker:FILE" -> "--output type=docker,dest=FILE" (caller frees) */
static char *output_what(const char *spec)
{
	const char *c = strchr(spec, ':');
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "--output type=%.*s,dest=%s", (int)(c - spec), spec, c + 1);
	return plait_buf_detach(&b, NULL);
}

/* "linux/amd64, linux/arm64": image im's platforms, for messages (caller frees). */
static char *image_platforms(const struct plait_plan *plan, const struct plait_plan_image *im)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	for (size_t k = 0; k < im->n_jobs; k++)
		plait_buf_addf(&b, "%s%s", k ? ", " : "", plan->jobs[im->jobs[k]].platform_str);
	return plait_buf_detach(&b, NULL);
}

/* The path a docker, tar or local output writes (its length without
 * trailing slashes in *len), or NULL for another output. */
static const char *local_dest(const char *spec, size_t *len)
{
	if (!startswith(spec, "docker:") && !startswith(spec, "tar:") && !startswith(spec, "local:"))
		return NULL;
	const char *d = strchr(spec, ':') + 1;
	size_t n = strlen(d);
	while (n > 1 && d[n - 1] == '/')
		n--;
	*len = n;
	return d;
}

/* What the docker daemon, a docker archive and a root file system can hold:
 * refused before anything is built. */
static int check_local_outputs(const struct plait_pipeline *p, struct plait_error **err)
{
	const struct plait_plan *plan = &p->plan;
	const struct plait_request *req = p->req;
	int r = 0;
	for (size_t i = 0; r >= 0 && i < plan->n_images; i++) {
		const struct plait_plan_image *im = &plan->images[i];
		_cleanup_free_ char *pls = image_platforms(plan, im);
		if (req->load && !im->single)
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--load: the docker daemon holds one platform per image, and this build "
					       "makes %zu (%s): pass --platform with one (or --push, or --output "
					       "type=oci-archive,dest=FILE for all of them)",
					       im->n_jobs, pls);
		if (req->load && req->compression == PLAIT_LAYER_ZSTD)
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--load: docker load (Docker 20.10) cannot read zstd layers: use "
					       "--compression gzip");
		for (char **o = im->req->outputs; o && *o; o++) {
			_cleanup_free_ char *what = output_what(*o);
			const char *dest = strchr(*o, ':') + 1;
			if (startswith(*o, "docker:") && !im->single)
				return plait_error_set(err, PLAIT_E_USAGE,
						       "%s: a docker archive holds one platform per image, and this build "
						       "makes %zu (%s): pass --platform with one (or use "
						       "type=oci-archive for all of them)",
						       what, im->n_jobs, pls);
			if (startswith(*o, "docker:") && req->compression == PLAIT_LAYER_ZSTD)
				return plait_error_set(err, PLAIT_E_USAGE,
						       "%s: docker load (Docker 20.10) cannot read zstd layers: use "
						       "--compression gzip",
						       what);
			if (!startswith(*o, "tar:") && !startswith(*o, "local:"))
				continue;
			size_t n = 0;
			for (size_t k = 0; k < plan->n_images; k++)
				n += plan->images[k].target == im->target;
			if (n > 1)
				return plait_error_set(err, PLAIT_E_USAGE,
						       "%s: one root file system per output, and this target makes %zu "
						       "images (variants): build one --variant per output, or use "
						       "type=oci",
						       what, n);
			if (startswith(*o, "local:") && (r = plait_export_check_dir(dest, what, err)) < 0)
				return r;
		}
	}
	/* A docker archive, a tar or a directory is one target's: two bake
	 * targets (a shared `*.output`) writing one would replace each other. */
	for (size_t ti = 0; ti < req->n_targets; ti++)
		for (char **o = req->targets[ti].outputs; o && *o; o++) {
			size_t dl;
			const char *d = local_dest(*o, &dl);
			if (!d)
				continue;
			for (size_t tj = ti + 1; tj < req->n_targets; tj++)
				for (char **q = req->targets[tj].outputs; q && *q; q++) {
					size_t el;
					const char *e = local_dest(*q, &el);
					if (!e || dl != el || strncmp(d, e, dl) != 0)
						continue;
					_cleanup_free_ char *w1 = output_what(*o), *w2 = output_what(*q);
					const char *n1 = req->targets[ti].name, *n2 = req->targets[tj].name;
					return plait_error_set(err, PLAIT_E_USAGE,
							       "%s (target %s) and %s (target %s) write the same path: "
							       "give each target its own dest (or use type=oci, which "
							       "holds several images)",
							       w1, n1 ? n1 : "1", w2, n2 ? n2 : "2");
				}
		}
	if (req->iidfile && plan->n_images != 1)
		return plait_error_set(err, PLAIT_E_USAGE,
				       "--iidfile %s: one image ID per file, and this build makes %zu images "
				       "(variants or targets): use --metadata-file for all of them",
				       req->iidfile, plan->n_images);
	return r;
}

/* The one place that knows which --build-context values a build can use:
 * a directory (a local context; git and URL contexts are fetched into one
 * by the caller first: cmd/remote_context.h), oci:DIR[:TAG] /
 * oci-archive:FILE[:TAG] or docker-image://REF (an image). Anything else is
 * refused here, before planning, so `plait plan` and `plait build` say the
 * same thing. */
static int check_build_context(const struct plait_named_context *c, struct plait_error **err)
{
	const char *v = c->ref;
	struct stat st;
	if (startswith(v, "oci:") || startswith(v, "oci-archive:") || startswith(v, "docker-image://"))
		return 0;
	if (stat(v, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	static const struct {
		const char *prefix, *what;
	} later[] = { { "oci-layout://", "oci-layout://" }, { "input:", "input:" },
		      { "target:", "bake target:" },	  { "service:", "service:" } };
	for (size_t i = 0; i < ARRAY_SIZE(later); i++)
		if (startswith(v, later[i].prefix))
			return plait_error_set(err, PLAIT_E_USAGE,
					       "--build-context %s=%s: plait cannot build from a %s context yet; give a "
					       "directory, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-image://REF",
					       c->name, v, later[i].what);
	return plait_error_set(err, PLAIT_E_USAGE,
			       "--build-context %s=%s: no such directory; give a directory, oci:DIR[:TAG], "
			       "oci-archive:FILE[:TAG] or docker-image://REF",
			       c->name, v);
}

int plait_pipeline_plan(struct plait_pipeline *p, struct plait_request *req, const struct plait_pipeline_opts *o,
			struct plait_error **err)
{
	memset(p, 0, sizeof(*p));
	p->req = req;
	p->o = o;
	p->t0 = plait_now_ns();
	for (size_t i = 0; i < req->n_targets; i++) {
		struct plait_target *t = &req->targets[i];
		/* none given: the build platform (but not in place of ones that were wrong) */
		if (!t->platforms_given && !t->n_platforms) {
			t->platforms = xcalloc(1, sizeof(*t->platforms));
			plait_platform_copy(&t->platforms[0], o->plan->build_platform);
			t->n_platforms = 1;
		}
	}
	/* --build-context NAME=DIR: a directory is a named local context; other
	 * values (oci:, docker-image://) name images for FROM and COPY --from. */
	for (size_t i = 0; i < req->n_named; i++) {
		int r = check_build_context(&req->named[i], err);
		if (r < 0)
			return r;
	}
	p->dirs = xcalloc(req->n_named + 1, sizeof(*p->dirs));
	for (size_t i = 0; i < req->n_named; i++) {
		const char *v = req->named[i].ref;
		struct stat st;
		if (!startswith(v, "oci:") && !startswith(v, "oci-archive:") && !startswith(v, "docker-image://") &&
		    stat(v, &st) == 0 && S_ISDIR(st.st_mode))
			p->dirs[p->n_dirs++] = (struct plait_named_dir){ req->named[i].name, v };
	}
	int r = plait_plan_make(req->targets, req->n_targets, o->plan, &p->plan, err);
	for (size_t i = 0; r >= 0 && i < p->plan.n_images; i++) {
		const struct plait_plan_image *im = &p->plan.images[i];
		if (!im->unused_args)
			continue;
		/* BuildKit's words; then which image, when there are several */
		struct plait_buf m = PLAIT_BUF_INIT;
		plait_buf_adds(&m, "One or more build-args [");
		for (char **a = im->unused_args; *a; a++)
			plait_buf_addf(&m, "%s%s", a == im->unused_args ? "" : " ", *a);
		plait_buf_adds(&m, "] were not consumed");
		if (p->plan.n_images > 1 && im->req->name)
			plait_buf_addf(&m, " (target %s)", im->req->name);
		if (p->plan.n_images > 1 && im->variant)
			plait_buf_addf(&m, " (variant %s)", im->variant);
		if (o->ops->warning)
			o->ops->warning(o->ops->ctx, m.buf);
		plait_buf_release(&m);
	}
	if (r >= 0)
		r = check_outputs(p, err);
	if (r >= 0)
		r = check_local_outputs(p, err);
	if (r >= 0 && req->metadata)
		r = plait_metadata_check_path(req->metadata, err);
	return r;
}

static void job_progress(const struct plait_build_event *ev, void *ctx)
{
	struct plait_job_ctx *jc = ctx;
	const struct plait_pipeline_ops *ops = jc->p->o->ops;
	if (ops->job_event)
		ops->job_event(ops->ctx, jc->job, ev);
}

static void pipeline_warn(void *ctx, const char *msg)
{
	const struct plait_pipeline_ops *ops = ctx;
	if (ops->warning)
		ops->warning(ops->ctx, msg);
}

/* Every --cache-from, in order: its step records (blobs stay remote). */
static void import_caches(struct plait_pipeline *p)
{
	const struct plait_request *req = p->req;
	if (!req->n_cache_from || req->no_cache)
		return;
	const struct plait_pipeline_ops *ops = p->o->ops;
	p->cache_import = plait_cache_import_new();
	for (size_t i = 0; i < req->n_cache_from; i++) {
		const struct plait_cache_spec *s = &req->cache_from[i];
		struct plait_endpoint *ep = NULL;
		struct plait_error *e = NULL;
		size_t before = plait_cache_import_count(p->cache_import);
		if (ops->open(ops->ctx, s->endpoint, false, &ep, &e) < 0) {
			struct plait_buf m = PLAIT_BUF_INIT;
			if (plait_error_code(&e) == PLAIT_E_NOT_FOUND && s->type == PLAIT_CACHE_LOCAL)
				plait_buf_addf(&m, "cache %s: nothing there yet (no OCI layout; a --cache-to "
						   "type=local,dest=DIR makes one): building without it",
					       s->text);
			else
				plait_buf_addf(&m, "cache %s cannot be read (%s): building without it", s->text, e->msg);
			pipeline_warn((void *)ops, m.buf);
			plait_buf_release(&m);
			plait_error_free(e);
			continue;
		}
		plait_cache_import_add(p->cache_import, ep, s->text, pipeline_warn, (void *)ops);
		char n[64];
		snprintf(n, sizeof(n), "%zu step records", plait_cache_import_count(p->cache_import) - before);
		if (ops->note)
			ops->note(ops->ctx, PLAIT_PIPELINE_CACHE_IMPORTED, s->text, n);
	}
}

/* --push: a job's image goes to its image's repositories by digest (its
 * blobs, then its manifest: no tag, no index) as soon as it is built, while
 * the other jobs still build; publishing finds it there with a HEAD each. A
 * native job's gigabytes upload while an emulated one runs. Best effort: a
 * failure here is met (and reported) again by publishing. One job at a time:
 * the jobs of an image share layers (a COPY of the same file), and the
 * second finds them in place instead of uploading them too. A job whose
 * layers are not all in the store (a --cache-from hit, a node that pushed
 * them itself) is left to publishing, which knows where they are. A
 * repository that has the manifest already (a warm build's) gets nothing.
 * It runs in the job's worker: while a job still waits for a worker, the
 * upload is left to publishing rather than hold the slot; a job cancelled
 * (another failed, Ctrl-C) stops it; after one failure, no job tries again
 * (publishing meets the registry's trouble once, and reports it). */
static void push_early(struct plait_pipeline *p, size_t i, const atomic_int *cancel)
{
	const struct plait_pipeline_ops *ops = p->o->ops;
	const struct plait_build_result *res = &p->results[i];
	const struct plait_plan_image *im = &p->plan.images[p->plan.jobs[i].image];
	if (!p->req->push || !ops->open || res->remote_blobs || plait_cache_import_count(p->cache_import) ||
	    atomic_load(&p->jobs_started) < p->plan.n_jobs || (cancel && *cancel) ||
	    (p->o->interrupt && *p->o->interrupt))
		return;
	struct plait_endpoint *src = NULL;
	struct plait_buf mb = PLAIT_BUF_INIT;
	struct plait_error *e = NULL;
	char **seen = NULL;
	pthread_mutex_lock(&p->push_early_lock);
	if (p->push_early_failed || (cancel && *cancel) || plait_build_cache_endpoint(p->req->cache_dir, &src, &e) < 0)
		goto out;
	const struct plait_copy_opts co = { .cancel = cancel ? cancel : p->o->interrupt };
	int r = plait_store_read_blob(src->store, res->manifest.digest, PLAIT_MANIFEST_MAX, &mb, &e);
	for (char **t = im->tags; r >= 0 && t && *t; t++) {
		struct plait_endpoint *dst = NULL;
		if ((r = ops->open(ops->ctx, *t, true, &dst, &e)) < 0)
			break;
		if (!plait_strv_contains(seen, dst->name)) {
			plait_strv_push(&seen, dst->name);
			if (!plait_endpoint_holds(dst, res->manifest.digest, res->manifest.digest))
				r = plait_copy_image(src, dst, &res->manifest, mb.buf, mb.len, NULL, &co, NULL, &e);
		}
		plait_endpoint_free(dst);
	}
	plait_endpoint_free(src);
	if (r < 0)
		p->push_early_failed = true;
out:
	pthread_mutex_unlock(&p->push_early_lock);
	plait_strv_free(seen);
	plait_buf_release(&mb);
	plait_error_free(e);
}

/* A native job that runs alongside an emulated one yields the CPU to it:
 * the emulated job's steps are the build's critical path (each waits for
 * the one before, every process start is interpreted), while the native
 * job has time to spare. Its build runs in a thread of its own at a higher
 * nice value, which what that thread starts inherits (RUN processes, the
 * layer writer, the stage prefetch); the thread ends with the build, so
 * nothing has to lower the value again (which an unprivileged user could
 * not). */
#define NATIVE_NICE 10

static bool yields_to_emulated(const struct plait_pipeline *p, const struct plait_job *job)
{
	size_t parallel = p->req->max_jobs ? p->req->max_jobs : plait_sched_default_parallel(p->plan.n_jobs);
	if (job->builder.emulated || job->builder.node || parallel < 2)
		return false;
	for (size_t k = 0; k < p->plan.n_jobs; k++)
		if (p->plan.jobs[k].builder.emulated && !p->plan.jobs[k].builder.node)
			return true;
	return false;
}

struct niced_build {
	const struct plait_build_opts *bo;
	struct plait_build_result *res;
	struct plait_error *err;
	int r;
};

static void *niced_build_main(void *arg)
{
	struct niced_build *n = arg;
	/* On Linux, PRIO_PROCESS 0 is the calling thread alone. */
	errno = 0;
	int cur = getpriority(PRIO_PROCESS, 0);
	if (cur != -1 || errno == 0)
		(void)setpriority(PRIO_PROCESS, 0, cur + NATIVE_NICE); /* best effort */
	n->r = plait_build(n->bo, n->res, &n->err);
	return NULL;
}

static int build_yielding(const struct plait_build_opts *bo, struct plait_build_result *res,
			  struct plait_error **err)
{
	struct niced_build n = { .bo = bo, .res = res };
	pthread_t t;
	if (pthread_create(&t, NULL, niced_build_main, &n) != 0)
		return plait_build(bo, res, err);
	pthread_join(t, NULL);
	if (n.r < 0)
		plait_error_move(err, n.err);
	else
		plait_error_free(n.err);
	return n.r;
}

static int run_job(void *ctx, size_t i, const atomic_int *cancel, struct plait_error **err)
{
	struct plait_pipeline *p = ctx;
	const struct plait_request *req = p->req;
	const struct plait_plan_opts *po = p->o->plan;
	const struct plait_job *job = &p->plan.jobs[i];
	const struct plait_plan_image *im = &p->plan.images[job->image];
	const struct plait_target *t = im->req;
	struct plait_build_opts bo = {
		.context_dir = t->context_dir,
		.named_dirs = p->dirs,
		.n_named_dirs = p->n_dirs,
		.dockerfile = t->dockerfile,
		.target = t->stage,
		.platform = job->platform,
		.platform_str = job->platform_str,
		.build_platform = *po->build_platform,
		.build_platform_str = po->build_platform_str,
		.build_args = (const char *const *)job->build_args,
		.labels = (const char *const *)t->labels,
		.annotations = (const char *const *)job->annotations,
		.secrets = req->secrets,
		.n_secrets = req->n_secrets,
		.ssh = req->ssh,
		.n_ssh = req->n_ssh,
		.cache_dir = req->cache_dir,
		.no_cache = req->no_cache,
		.allow_insecure = req->allow_insecure,
		.compression = req->compression,
		.have_epoch = req->have_epoch,
		.source_date_epoch = req->source_date_epoch,
		.runner = &job->builder.runner,
		.resolver = po->resolver,
		.docker_media_types = req->docker_format,
		.progress = job_progress,
		.progress_ctx = &p->job_ctx[i],
		.cancel = cancel,
		.cache_import = p->cache_import,
	};
	/* --push: the image's layers go to its (first) repository as they are
	 * written; publishing and the early push find them there. */
	struct plait_push_stream *ps = NULL;
	if (req->push && p->o->ops->open && im->tags && im->tags[0] && !job->builder.node) {
		ps = plait_push_stream_new(p->o->ops->open, p->o->ops->ctx, im->tags[0], cancel);
		bo.layer_writer = plait_push_stream_writer;
		bo.layer_writer_ctx = ps;
	}
	uint64_t t0 = plait_now_ns();
	p->started[i] = (int64_t)time(NULL);
	atomic_fetch_add(&p->jobs_started, 1);
	int r;
	if (!job->builder.node && yields_to_emulated(p, job))
		r = build_yielding(&bo, &p->results[i], err);
	else if (!job->builder.node)
		r = plait_build(&bo, &p->results[i], err);
	else if (p->o->ops->remote_build)
		r = p->o->ops->remote_build(p->o->ops->ctx, i, job->builder.node, &bo,
					    req->push ? (const char *const *)p->plan.images[job->image].tags : NULL,
					    &p->results[i], err);
	else
		r = plait_error_set(err, PLAIT_E_USAGE, "%s is assigned to node %s, but this plait runs jobs here only",
				    job->label, job->builder.node);
	p->finished[i] = (int64_t)time(NULL);
	p->seconds[i] = (double)(plait_now_ns() - t0) / 1e9;
	/* Every layer is written (or given up) once plait_build returns: what
	 * is left is the tail of each upload, or nothing if the job failed. */
	if (r < 0)
		plait_push_stream_abort(ps);
	plait_push_stream_free(ps);
	if (r >= 0)
		push_early(p, i, cancel);
	/* Name the job when there is more than one, or a bake target to name. */
	if (r < 0 && (p->plan.n_jobs > 1 || t->name))
		plait_error_wrap(err, "%s", job->label);
	return r;
}

int plait_pipeline_build(struct plait_pipeline *p, struct plait_error **err)
{
	struct plait_plan *plan = &p->plan;
	if (!p->req->cache_dir)
		p->req->cache_dir = plait_build_default_cache_dir();
	p->results = xcalloc(plan->n_jobs + 1, sizeof(*p->results));
	p->seconds = xcalloc(plan->n_jobs + 1, sizeof(*p->seconds));
	p->started = xcalloc(plan->n_jobs + 1, sizeof(*p->started));
	p->finished = xcalloc(plan->n_jobs + 1, sizeof(*p->finished));
	p->job_state = xcalloc(plan->n_jobs + 1, sizeof(*p->job_state));
	p->job_ctx = xcalloc(plan->n_jobs + 1, sizeof(*p->job_ctx));
	pthread_mutex_init(&p->push_early_lock, NULL);
	import_caches(p);
	for (size_t i = 0; i < plan->n_jobs; i++) {
		p->results[i].lock_fd = -1;
		p->job_ctx[i] = (struct plait_job_ctx){ p, i };
	}
	/* Every job must succeed before anything is exported or tagged. */
	struct plait_error **errs = xcalloc(plan->n_jobs + 1, sizeof(*errs));
	struct plait_sched_opts so = { .max_parallel = p->req->max_jobs, .keep_going = p->req->keep_going,
				       .interrupt = p->o->interrupt, .order = plan->order };
	int r = 0;
	if (plait_sched_run(plan->n_jobs, run_job, p, &so, errs) != 0) {
		size_t first = plait_sched_first_error(errs, plan->order, plan->n_jobs);
		for (size_t j = 0; j < plan->n_jobs; j++)
			p->job_state[j] = !errs[j]			       ? PLAIT_JOB_BUILT
					  : errs[j]->code == PLAIT_E_CANCELLED ? PLAIT_JOB_CANCELLED
									       : PLAIT_JOB_FAILED;
		/* a non-zero return means some job has an error; a job that
		 * succeeded has none, so it is never the one reported */
		if (first < plan->n_jobs) {
			plait_error_move(err, TAKE_PTR(errs[first]));
			r = -(*err)->code;
		} else {
			r = plait_error_set(err, PLAIT_E_GENERIC, "a job failed (no error message)");
		}
	}
	for (size_t i = 0; i < plan->n_jobs; i++)
		plait_error_free(errs[i]);
	free(errs);
	return r;
}

/* The image of one plan image in the cache store: its manifest (a lone
 * platform) or an index of its jobs' manifests in platform order. */
static int make_root(struct plait_pipeline *p, struct plait_store *s, const struct plait_plan_image *im,
		     struct plait_pipeline_image *out, struct plait_error **err)
{
	bool in_index = p->attest && p->req->attest_in_index;
	if (im->single && !in_index) {
		plait_descriptor_copy(&out->root, &p->results[im->jobs[0]].manifest);
		return plait_store_read_blob(s, out->root.digest, PLAIT_MANIFEST_MAX, &out->data, err);
	}
	bool docker = p->req->docker_format;
	struct plait_index idx = { 0 };
	struct plait_map ann = { 0 };
	struct plait_descriptor *entries = xcalloc(2 * im->n_jobs + 1, sizeof(*entries));
	size_t n = 0;
	for (size_t k = 0; k < im->n_jobs; k++, n++) {
		const struct plait_job *j = &p->plan.jobs[im->jobs[k]];
		plait_descriptor_copy(&entries[n], &p->results[im->jobs[k]].manifest);
		entries[n].platform = xcalloc(1, sizeof(*entries[n].platform));
		plait_platform_copy(entries[n].platform, &j->platform);
	}
	/* buildx's layout: each image's attestation manifest after the images */
	for (size_t k = 0; in_index && k < im->n_jobs; k++)
		for (size_t a = 0; a < p->n_attest[im->jobs[k]]; a++, n++) {
			plait_descriptor_copy(&entries[n], &p->attest[2 * im->jobs[k] + a].root);
			entries[n].platform = xcalloc(1, sizeof(*entries[n].platform));
			entries[n].platform->os = xstrdup("unknown");
			entries[n].platform->architecture = xstrdup("unknown");
			plait_map_set(&entries[n].annotations, "vnd.docker.reference.digest",
				      p->results[im->jobs[k]].manifest.digest);
			plait_map_set(&entries[n].annotations, "vnd.docker.reference.type", "attestation-manifest");
		}
	for (char **a = im->annotations; !docker && a && *a; a++) {
		const char *eq = strchr(*a, '=');
		_cleanup_free_ char *k = xstrndup(*a, (size_t)(eq - *a));
		plait_map_set(&ann, k, eq + 1);
	}
	int r = plait_index_assemble(&idx, docker ? PLAIT_MT_DOCKER_LIST : PLAIT_MT_OCI_INDEX, &ann,
				     p->req->have_epoch, p->req->source_date_epoch, entries, n, &out->data,
				     &out->root, err);
	if (r >= 0)
		r = plait_store_put_bytes(s, out->data.buf, out->data.len, out->root.digest, err);
	for (size_t k = 0; k < n; k++)
		plait_descriptor_release(&entries[k]);
	free(entries);
	plait_map_release(&ann);
	plait_index_release(&idx);
	return r;
}

static void publish_note(void *ctx, enum plait_publish_event_kind kind, const struct plait_publish_item *it)
{
	const struct plait_pipeline_ops *ops = ctx;
	if (ops->note)
		ops->note(ops->ctx,
			  kind == PLAIT_PUBLISH_PUSHED	 ? PLAIT_PIPELINE_PUSHED
			  : kind == PLAIT_PUBLISH_TAGGED ? PLAIT_PIPELINE_TAGGED
							 : PLAIT_PIPELINE_CURRENT,
			  it->name, it->root->digest);
}

/* Items being gathered, with the tag strings they point at. */
struct items {
	struct plait_publish_item *v;
	size_t n;
	char **tags;
};

static void items_add(struct items *x, struct plait_publish_item it, const char *tag)
{
	x->v = xrealloc(x->v, (x->n + 1) * sizeof(*x->v));
	size_t nt = 0;
	while (tag && x->tags && x->tags[nt])
		nt++;
	if (tag)
		plait_strv_push(&x->tags, tag);
	it.tag = tag ? x->tags[nt] : NULL;
	x->v[x->n++] = it;
}

static void items_release(struct items *x)
{
	free(x->v);
	plait_strv_free(x->tags);
}

/* The layers a --cache-from hit left where they were: at dst already,
 * mounted there from the cache's repository, or fetched into the store now,
 * before the copy needs them. Nothing to do without imported records. */
static int ensure_image_blobs(struct plait_pipeline *p, struct plait_store *store, size_t image,
			      struct plait_endpoint *dst, struct plait_error **err)
{
	const struct plait_plan_image *im = &p->plan.images[image];
	const struct plait_pipeline_ops *ops = p->o->ops;
	/* the base images whose layers a build left in their registry */
	struct plait_endpoint **bases = NULL;
	size_t n_bases = 0;
	char **seen = NULL;
	for (size_t k = 0; k < im->n_jobs; k++)
		for (char **l = p->results[im->jobs[k]].remote_blobs; l && *l; l++) {
			const char *ref = strchr(*l, ' ');
			if (!ref || plait_strv_contains(seen, ref + 1))
				continue;
			plait_strv_push(&seen, ref + 1);
			struct plait_endpoint *ep = NULL;
			struct plait_error *e = NULL;
			if (ops->open(ops->ctx, ref + 1, false, &ep, &e) >= 0) {
				bases = xrealloc(bases, (n_bases + 1) * sizeof(*bases));
				bases[n_bases++] = ep;
			}
			plait_error_free(e);
		}
	plait_strv_free(seen);
	int r = 0;
	if (!n_bases && !plait_cache_import_count(p->cache_import))
		goto out;
	for (size_t k = 0; r >= 0 && k < im->n_jobs; k++) {
		struct plait_buf mb = PLAIT_BUF_INIT;
		struct plait_manifest m = { 0 };
		r = plait_store_read_blob(store, p->results[im->jobs[k]].manifest.digest, PLAIT_MANIFEST_MAX, &mb, err);
		if (r >= 0)
			r = plait_manifest_parse(mb.buf, mb.len, &m, err);
		for (size_t i = 0; r >= 0 && i < m.n_layers; i++)
			r = plait_cache_ensure_blob(dst, &m.layers[i], store, bases, n_bases, p->cache_import, err);
		plait_manifest_release(&m);
		plait_buf_release(&mb);
	}
out:
	for (size_t i = 0; i < n_bases; i++)
		plait_endpoint_free(bases[i]);
	free(bases);
	return r;
}

/* Every image of target ti into one OCI layout or archive, tagged as -t says. */
static int export_output(struct plait_pipeline *p, const struct plait_publish_copy *images, size_t ti,
			 const char *spec, const struct plait_publish_opts *po, struct plait_error **err)
{
	struct plait_endpoint *dst = NULL;
	struct items x = { 0 };
	int r = p->o->ops->open(p->o->ops->ctx, spec, true, &dst, err);
	for (size_t i = 0; r >= 0 && i < p->plan.n_images; i++) {
		const struct plait_plan_image *im = &p->plan.images[i];
		if (im->target != ti)
			continue;
		if ((r = ensure_image_blobs(p, images[i].src->store, i, dst, err)) < 0)
			break;
		struct plait_publish_item it = { .dst = dst, .name = spec, .copies = &images[i], .n_copies = 1,
						 .root = images[i].desc, .data = images[i].data, .len = images[i].len };
		/* the first tag (or, without one, an untagged entry) with the image, then the others */
		_cleanup_free_ char *first = im->tags ? tag_of(im->tags[0]) : NULL;
		items_add(&x, it, first);
		it.n_copies = 0;
		for (char **t = im->tags ? im->tags + 1 : NULL; t && *t; t++) {
			_cleanup_free_ char *tag = tag_of(*t);
			if (tag)
				items_add(&x, it, tag);
		}
	}
	if (r >= 0)
		r = plait_publish_output(x.v, x.n, po, err);
	items_release(&x);
	plait_endpoint_free(dst);
	return r;
}

/* The images of target ti (every one when ti is SIZE_MAX) as core/export.h
 * takes them, each job one, with their blobs in the store. */
static int export_images(struct plait_pipeline *p, struct plait_endpoint *src, size_t ti,
			 struct plait_export_image **out, size_t *n, struct plait_error **err)
{
	*out = xcalloc(p->plan.n_jobs + 1, sizeof(**out));
	*n = 0;
	for (size_t i = 0; i < p->plan.n_images; i++) {
		const struct plait_plan_image *im = &p->plan.images[i];
		if (ti != SIZE_MAX && im->target != ti)
			continue;
		int r = ensure_image_blobs(p, src->store, i, src, err);
		if (r < 0)
			return r;
		for (size_t k = 0; k < im->n_jobs; k++)
			(*out)[(*n)++] = (struct plait_export_image){
				.manifest = p->results[im->jobs[k]].manifest.digest,
				.platform = p->plan.jobs[im->jobs[k]].platform_str,
				.tags = (const char *const *)im->tags,
			};
	}
	return 0;
}

/* A docker archive, a root file system directory or tar of target ti. */
static int export_local(struct plait_pipeline *p, struct plait_endpoint *src, size_t ti, const char *spec,
			struct plait_error **err)
{
	_cleanup_free_ char *what = output_what(spec);
	const char *dest = strchr(spec, ':') + 1;
	struct plait_export_image *ims = NULL;
	size_t n = 0;
	int r = export_images(p, src, ti, &ims, &n, err);
	if (r >= 0 && startswith(spec, "docker:"))
		r = plait_export_docker_archive(src->store, ims, n, dest, what, err);
	else if (r >= 0)
		r = plait_export_rootfs(src->store, ims, n, dest, startswith(spec, "tar:"), what, err);
	free(ims);
	return r;
}

/* --load: every image in one docker archive (a temporary file), sent to the daemon. */
static int load_images(struct plait_pipeline *p, struct plait_endpoint *src, struct plait_error **err)
{
	const struct plait_pipeline_ops *ops = p->o->ops;
	if (!ops->load)
		return plait_error_set(err, PLAIT_E_USAGE, "--load: this command cannot load into a docker daemon");
	struct plait_export_image *ims = NULL;
	size_t n = 0;
	struct plait_tmpdir t = PLAIT_TMPDIR_INIT;
	_cleanup_free_ char *file = NULL;
	_cleanup_close_ int fd = -1;
	int r = export_images(p, src, SIZE_MAX, &ims, &n, err);
	if (r >= 0)
		r = plait_mkdtemp("load", &t, err);
	if (r < 0)
		goto out;
	file = plait_path_join(t.path, "image.tar");
	fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "--load: cannot create '%s'", file);
		goto out;
	}
	r = plait_export_docker_archive_fd(src->store, ims, n, fd, file, "--load", err);
	off_t size = r >= 0 ? lseek(fd, 0, SEEK_CUR) : 0;
	if (r >= 0 && (size < 0 || lseek(fd, 0, SEEK_SET) < 0))
		r = plait_error_set_errno(err, PLAIT_E_IO, errno, "--load: seek '%s'", file);
	if (r >= 0)
		r = ops->load(ops->ctx, fd, (int64_t)size, err);
	if (r >= 0 && ops->note) {
		struct plait_buf names = PLAIT_BUF_INIT;
		for (size_t i = 0; i < p->plan.n_images; i++)
			for (char **tg = p->plan.images[i].tags; tg && *tg; tg++)
				plait_buf_addf(&names, "%s%s", names.len ? ", " : "", *tg);
		ops->note(ops->ctx, PLAIT_PIPELINE_LOADED, names.buf, NULL);
		plait_buf_release(&names);
	}
out:
	free(ims);
	plait_tmpdir_remove(&t);
	return r;
}

/* --iidfile: buildx's image ID, the config digest of a one-platform image
 * (what `docker images` shows as its ID), else the index digest. */
static int write_iidfile(const struct plait_pipeline *p, struct plait_error **err)
{
	const struct plait_plan_image *im = &p->plan.images[0];
	const char *id = im->single ? p->results[im->jobs[0]].config_digest : p->images[0].root.digest;
	int r = plait_replace_file_full(p->req->iidfile, id, strlen(id), 0644, PLAIT_REPLACE_SYNC);
	if (r < 0)
		return plait_error_set_errno(err, PLAIT_E_IO, -r, "--iidfile %s: cannot write it", p->req->iidfile);
	if (p->o->ops->note)
		p->o->ops->note(p->o->ops->ctx, PLAIT_PIPELINE_IIDFILE, p->req->iidfile, id);
	return 0;
}

/* The provenance and SBOM of job j (see core/attest.h, core/sbom.h), as
 * artifact manifests in the store whose subject is the job's manifest. */
static int attest_job(struct plait_pipeline *p, struct plait_store *store, size_t j,
		      const struct plait_git_source *git, struct plait_error **err)
{
	const struct plait_request *req = p->req;
	const struct plait_job *job = &p->plan.jobs[j];
	const struct plait_plan_image *im = &p->plan.images[job->image];
	const struct plait_target *t = im->req;
	const struct plait_build_result *res = &p->results[j];
	enum plait_provenance_mode mode = req->provenance == PLAIT_PROVENANCE_DEFAULT ? PLAIT_PROVENANCE_MIN
											: req->provenance;
	char created[PLAIT_RFC3339_MAX];
	plait_rfc3339(req->have_epoch && p->finished[j] > req->source_date_epoch ? req->source_date_epoch
										   : p->finished[j],
		      created);
	struct plait_map ann = { 0 }, lann = { 0 };
	plait_map_set(&ann, "org.opencontainers.image.created", created);
	struct plait_buf doc = PLAIT_BUF_INIT;
	/* --attest-layout buildx: the statements of one attestation manifest */
	struct plait_buf stmts[2] = { PLAIT_BUF_INIT, PLAIT_BUF_INIT };
	const char *types[2];
	size_t n_stmts = 0;
	bool in_index = req->attest_in_index;
	int r = 0;
	if (mode != PLAIT_PROVENANCE_OFF) {
		const char **secret_ids = xcalloc(req->n_secrets + 1, sizeof(*secret_ids));
		for (size_t i = 0; i < req->n_secrets; i++)
			secret_ids[i] = req->secrets[i].id;
		struct plait_provenance pv = {
			.subjects = (const char *const *)im->tags,
			.subject_digest = res->manifest.digest,
			.max = mode == PLAIT_PROVENANCE_MAX,
			.target_name = t->name,
			.stage = t->stage,
			.platform = job->platform_str,
			.variant = im->variant,
			.build_args = (const char *const *)job->build_args,
			.secret_ids = secret_ids,
			.dockerfile = t->dockerfile,
			.context_dir = t->context_dir,
			.git = git,
			.build_platform = p->o->plan->build_platform_str,
			.builder = job->builder.name,
			.have_epoch = req->have_epoch,
			.epoch = req->source_date_epoch,
			.res = res,
			.started = p->started[j],
			.finished = p->finished[j],
		};
		r = plait_provenance_json(&pv, &doc, err);
		free(secret_ids);
		plait_map_set(&lann, "in-toto.io/predicate-type", PLAIT_PROVENANCE_PREDICATE);
		if (in_index && r >= 0) {
			plait_buf_add(&stmts[n_stmts], doc.buf, doc.len);
			types[n_stmts++] = PLAIT_PROVENANCE_PREDICATE;
		} else if (r >= 0) {
			struct plait_pipeline_image *a = &p->attest[2 * j + p->n_attest[j]++];
			plait_buf_init(&a->data, 0);
			r = plait_attest_put(store, &res->manifest, PLAIT_MT_INTOTO, PLAIT_MT_INTOTO, &lann, &ann,
					     doc.buf, doc.len, &a->root, &a->data, err);
		}
	}
	if (r >= 0 && req->sbom) {
		struct plait_sbom sb = { 0 };
		const struct plait_build_material *base =
			res->base_material ? &res->materials[res->base_material - 1] : NULL;
		struct plait_sbom_doc d = {
			.name = im->tags ? im->tags[0] : NULL,
			.platform = job->platform_str,
			.digest = res->manifest.digest,
			.base_ref = base ? base->ref : NULL,
			.base_digest = base ? base->digest : NULL,
			.have_epoch = req->have_epoch,
			.epoch = req->source_date_epoch,
			.now = p->finished[j],
		};
		r = plait_sbom_scan(store, res->manifest.digest, &sb, err);
		if (r >= 0)
			r = plait_sbom_spdx(&sb, &d, &doc, err);
		plait_sbom_release(&sb);
		if (r < 0)
			plait_error_wrap(err, "--sbom of %s", job->label);
		if (in_index && r >= 0) {
			r = plait_intoto_statement((const char *const *)im->tags, job->platform_str,
						   res->manifest.digest, PLAIT_SPDX_PREDICATE, doc.buf, &stmts[n_stmts],
						   err);
			types[n_stmts++] = PLAIT_SPDX_PREDICATE;
		} else if (r >= 0) {
			struct plait_pipeline_image *a = &p->attest[2 * j + p->n_attest[j]++];
			plait_buf_init(&a->data, 0);
			r = plait_attest_put(store, &res->manifest, PLAIT_MT_SPDX, PLAIT_MT_SPDX, NULL, &ann, doc.buf,
					     doc.len, &a->root, &a->data, err);
		}
	}
	if (r >= 0 && n_stmts) {
		struct plait_pipeline_image *a = &p->attest[2 * j + p->n_attest[j]++];
		plait_buf_init(&a->data, 0);
		r = plait_attest_put_buildx(store, stmts, types, n_stmts, &a->root, &a->data, err);
	}
	plait_buf_release(&stmts[0]);
	plait_buf_release(&stmts[1]);
	plait_buf_release(&doc);
	plait_map_release(&ann);
	plait_map_release(&lann);
	return r;
}

/* Every job's attestations, with --push (registries keep referrers). */
static int make_attestations(struct plait_pipeline *p, struct plait_endpoint *src, struct plait_error **err)
{
	const struct plait_request *req = p->req;
	bool prov = req->provenance != PLAIT_PROVENANCE_OFF;
	bool oci_out = false;
	for (size_t ti = 0; ti < req->n_targets; ti++)
		for (char **o = req->targets[ti].outputs; o && *o; o++)
			oci_out |= startswith(*o, "oci:") || startswith(*o, "oci-archive:");
	/* in the index, they reach OCI outputs too */
	if (!req->push && !(req->attest_in_index && oci_out)) {
		if ((req->provenance > PLAIT_PROVENANCE_OFF || req->sbom) && p->o->ops->warning)
			p->o->ops->warning(p->o->ops->ctx,
					   "--provenance/--sbom: attestations are attached to images pushed to a "
					   "registry (--push); the outputs written here carry none");
		return 0;
	}
	if (!prov && !req->sbom)
		return 0;
	p->attest = xcalloc(2 * p->plan.n_jobs + 1, sizeof(*p->attest));
	p->n_attest = xcalloc(p->plan.n_jobs + 1, sizeof(*p->n_attest));
	int r = 0;
	for (size_t i = 0; r >= 0 && req->sbom && i < p->plan.n_images; i++)
		r = ensure_image_blobs(p, src->store, i, src, err); /* the SBOM reads every layer */
	struct plait_git_source *git = xcalloc(req->n_targets + 1, sizeof(*git));
	for (size_t ti = 0; ti < req->n_targets; ti++) {
		const struct plait_target *t = &req->targets[ti];
		if (t->context_git_url && t->context_git_commit) {
			/* a fetched git context: URL#REF:SUBDIR and the commit checked out */
			const char *hash = strchr(t->context_git_url, '#');
			const char *colon = hash ? strchr(hash, ':') : NULL;
			/* (the credentials of an https://TOKEN@host URL never reach it) */
			git[ti] = (struct plait_git_source){
				.commit = xstrdup(t->context_git_commit),
				.remote = plait_url_strip_credentials(t->context_git_url),
				.subdir = xstrdup(colon ? colon + 1 : ""),
			};
			char *h = strchr(git[ti].remote, '#');
			if (h)
				*h = '\0';
		} else {
			(void)plait_git_source(t->context_dir, &git[ti]); /* none: left zeroed */
		}
	}
	for (size_t j = 0; r >= 0 && j < p->plan.n_jobs; j++) {
		size_t ti = p->plan.images[p->plan.jobs[j].image].target;
		r = attest_job(p, src->store, j, git[ti].commit ? &git[ti] : NULL, err);
	}
	for (size_t ti = 0; ti < req->n_targets; ti++)
		plait_git_source_release(&git[ti]);
	free(git);
	return r;
}

/* Registries: everything by digest first (blobs, manifests, indexes), every
 * tag only after all of that succeeded. */
static int push_all(struct plait_pipeline *p, const struct plait_publish_copy *images,
		    const struct plait_publish_opts *po, struct plait_error **err)
{
	struct plait_publish_pool pool = { 0 };
	struct items x = { 0 };
	int r = 0;
	/* per image, its jobs' attestations */
	struct plait_publish_copy **refs = xcalloc(p->plan.n_images + 1, sizeof(*refs));
	size_t *n_refs = xcalloc(p->plan.n_images + 1, sizeof(*n_refs));
	for (size_t i = 0; p->attest && !p->req->attest_in_index && i < p->plan.n_images; i++) {
		const struct plait_plan_image *im = &p->plan.images[i];
		refs[i] = xcalloc(2 * im->n_jobs + 1, sizeof(**refs));
		for (size_t k = 0; k < im->n_jobs; k++)
			for (size_t a = 0; a < p->n_attest[im->jobs[k]]; a++) {
				struct plait_pipeline_image *at = &p->attest[2 * im->jobs[k] + a];
				refs[i][n_refs[i]++] = (struct plait_publish_copy){ images[i].src, &at->root, at->data.buf,
										     at->data.len };
			}
	}
	for (size_t i = 0; r >= 0 && i < p->plan.n_images; i++) {
		const struct plait_plan_image *im = &p->plan.images[i];
		for (char **t = im->tags; r >= 0 && t && *t; t++) {
			struct plait_endpoint *ep = NULL;
			_cleanup_free_ char *ref = NULL, *tag = tag_of(*t);
			r = plait_publish_pool_open(&pool, *t, p->o->ops->open, p->o->ops->ctx, &ep, &ref, err);
			if (r < 0) {
				plait_error_wrap(err, "push %s", *t);
				break;
			}
			r = ensure_image_blobs(p, images[i].src->store, i, ep, err);
			if (r < 0) {
				plait_error_wrap(err, "push %s", *t);
				break;
			}
			items_add(&x, (struct plait_publish_item){ .dst = ep, .name = *t, .copies = &images[i],
								    .n_copies = 1, .root = images[i].desc,
								    .data = images[i].data, .len = images[i].len,
								    .referrers = refs[i], .n_referrers = n_refs[i] },
				  tag);
		}
	}
	struct plait_publish_status st = { 0 };
	if (r < 0)
		goto out;
	r = plait_publish_push(x.v, x.n, p->req->by_digest, po, &st, err);
	if (r < 0 && st.phase == PLAIT_PUBLISH_PHASE_PUSH)
		plait_error_wrap(err, "push %s", x.v[st.item].name);
	else if (r < 0 && (plait_error_code(err) != PLAIT_E_CANCELLED || st.tagged))
		plait_error_wrap(err, "tag %s (tags before it in this list moved; run again to finish)",
				 x.v[st.item].name);
out:
	items_release(&x);
	plait_publish_pool_release(&pool);
	for (size_t i = 0; i < p->plan.n_images; i++)
		free(refs[i]);
	free(refs);
	free(n_refs);
	return r;
}

/* Plan image i for the metadata file; the caller frees out->platforms. */
static void describe(const struct plait_pipeline *p, size_t i, struct plait_metadata_image *out)
{
	const struct plait_plan_image *im = &p->plan.images[i];
	struct plait_metadata_platform *pl = xcalloc(im->n_jobs + 1, sizeof(*pl));
	for (size_t k = 0; k < im->n_jobs; k++) {
		size_t j = im->jobs[k];
		pl[k] = (struct plait_metadata_platform){
			.platform = p->plan.jobs[j].platform_str,
			.digest = p->results[j].manifest.digest,
			.config_digest = p->results[j].config_digest,
			.builder = p->plan.jobs[j].builder.name,
			.node = p->results[j].built_on,
			.size = p->results[j].size,
			.duration_s = p->seconds[j],
			.steps = p->results[j].steps,
			.cached = p->results[j].cached,
		};
	}
	*out = (struct plait_metadata_image){
		.target = im->req->name,
		.variant = im->variant,
		.digest = p->images[i].root.digest,
		.media_type = p->images[i].root.media_type,
		.tags = im->tags,
		.single = im->single,
		.platforms = pl,
		.n_platforms = im->n_jobs,
	};
}

json_t *plait_pipeline_image_json(const struct plait_pipeline *p, size_t i)
{
	struct plait_metadata_image m;
	describe(p, i, &m);
	json_t *o = plait_metadata_image_json(&m);
	free((void *)m.platforms);
	return o;
}

static int write_metadata(const struct plait_pipeline *p, struct plait_error **err)
{
	size_t n = p->plan.n_images;
	struct plait_metadata_image *ims = xcalloc(n + 1, sizeof(*ims));
	for (size_t i = 0; i < n; i++)
		describe(p, i, &ims[i]);
	int r = plait_metadata_write(p->req->metadata, ims, n, p->total, p->req->push, err);
	for (size_t i = 0; i < n; i++)
		free((void *)ims[i].platforms);
	free(ims);
	return r;
}

/* "target/variant/platform": a job's part of a shared cache, the same on
 * every runner that builds that job. */
static char *part_name(const struct plait_pipeline *p, size_t j)
{
	const struct plait_job *job = &p->plan.jobs[j];
	const struct plait_plan_image *im = &p->plan.images[job->image];
	struct plait_buf b = PLAIT_BUF_INIT;
	plait_buf_addf(&b, "%s/%s/%s", im->req->name ? im->req->name : im->req->stage ? im->req->stage : "default",
		       im->variant ? im->variant : "-", job->platform_str);
	return plait_buf_detach(&b, NULL);
}

/* A cache mount directory worth exporting: one with something in it (a
 * fully cached build's mount was made empty and must not replace a full one). */
static bool has_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	struct dirent *de;
	bool any = false;
	while (!any && (de = readdir(d)))
		any = !streq(de->d_name, ".") && !streq(de->d_name, "..");
	closedir(d);
	return any;
}

/* Every --cache-to, after the images are out. A failure does not take back
 * what was published: the error says so (or, ignore-error=true, a warning). */
static int export_caches(struct plait_pipeline *p, struct plait_store *store, struct plait_error **err)
{
	const struct plait_request *req = p->req;
	const struct plait_pipeline_ops *ops = p->o->ops;
	size_t nj = p->plan.n_jobs;
	struct plait_cache_part *parts = xcalloc(nj + 1, sizeof(*parts));
	char **names = xcalloc(nj + 1, sizeof(*names));
	struct plait_endpoint **mf = NULL;
	size_t n_mf = 0;
	int ret = 0;
	for (size_t j = 0; j < nj; j++)
		names[j] = part_name(p, j);
	/* the images' repositories: where a cache on the same registry mounts from */
	for (size_t i = 0; req->push && i < p->plan.n_images; i++)
		for (char **t = p->plan.images[i].tags; t && *t; t++) {
			struct plait_endpoint *ep = NULL;
			struct plait_error *e = NULL;
			if (ops->open(ops->ctx, *t, false, &ep, &e) >= 0) {
				mf = xrealloc(mf, (n_mf + 1) * sizeof(*mf));
				mf[n_mf++] = ep;
			}
			plait_error_free(e);
		}
	/* every cache mount id the jobs used */
	char **used = NULL;
	for (size_t j = 0; j < nj; j++)
		for (char **m = p->results[j].cache_mounts; m && *m; m++)
			if (!plait_strv_contains(used, *m))
				plait_strv_push(&used, *m);
	size_t n_used = plait_strv_length(used);
	char **mnames = xcalloc(n_used + 1, sizeof(*mnames)), **mdirs = xcalloc(n_used + 1, sizeof(*mdirs));
	for (size_t i = 0; i < n_used; i++) {
		struct plait_buf b = PLAIT_BUF_INIT;
		plait_buf_addf(&b, "mount/%s", used[i]);
		mnames[i] = plait_buf_detach(&b, NULL);
		mdirs[i] = plait_cache_mount_path(req->cache_dir, used[i]);
	}
	parts = xrealloc(parts, (nj + n_used + 1) * sizeof(*parts));
	/* a job built on a node left its steps in the node's cache: its part
	 * is not written (an empty one would replace what another run put there) */
	struct plait_buf remote = PLAIT_BUF_INIT;
	for (size_t j = 0; req->n_cache_to && j < nj; j++)
		if (p->results[j].built_on)
			plait_buf_addf(&remote, "%s%s on %s", remote.len ? ", " : "", names[j], p->results[j].built_on);
	if (remote.len) {
		struct plait_buf w = PLAIT_BUF_INIT;
		plait_buf_addf(&w, "--cache-to: the steps of jobs built on nodes stay in those nodes' caches and are not "
				   "exported: %s", remote.buf);
		pipeline_warn((void *)ops, w.buf);
		plait_buf_release(&w);
	}
	plait_buf_release(&remote);
	for (size_t c = 0; c < req->n_cache_to; c++) {
		const struct plait_cache_spec *s = &req->cache_to[c];
		size_t np = 0;
		for (size_t j = 0; j < nj; j++) {
			char **k = s->mode_max ? p->results[j].cache_keys_all : p->results[j].cache_keys_final;
			if (!p->results[j].built_on)
				parts[np++] = (struct plait_cache_part){ names[j], (const char *const *)k, plait_strv_length(k) };
		}
		for (size_t i = 0; i < n_used; i++) {
			if ((s->mounts_all || plait_strv_contains(s->mounts, used[i])) && has_entries(mdirs[i]))
				parts[np++] = (struct plait_cache_part){ .name = mnames[i], .mount_id = used[i],
									 .mount_dir = mdirs[i] };
		}
		for (char **m = s->mounts; m && *m; m++)
			if (!plait_strv_contains(used, *m)) {
				struct plait_buf w = PLAIT_BUF_INIT;
				plait_buf_addf(&w, "--cache-to %s: no RUN --mount=type=cache with id '%s' ran in this build: "
						   "not exported", s->text, *m);
				pipeline_warn((void *)ops, w.buf);
				plait_buf_release(&w);
			}
		if (!np) /* every job on a node (said above) and no cache mount here */
			continue;
		struct plait_endpoint *dst = NULL;
		struct plait_error *e = NULL;
		struct plait_cache_export_stats st = { 0 };
		int r = ops->open(ops->ctx, s->endpoint, true, &dst, &e);
		if (r >= 0)
			r = plait_cache_export(dst, s->tag, req->cache_dir, store, parts, np, mf, n_mf, p->cache_import,
					       s->max_size, 0, &st, pipeline_warn, (void *)ops, &e);
		plait_endpoint_free(dst);
		if (r >= 0) {
			char n[160];
			snprintf(n, sizeof(n), "%zu part%s, %zu step records, mode=%s, merged in %zu index write%s%s",
				 st.parts, st.parts == 1 ? "" : "s", st.records, s->mode_max ? "max" : "min", st.merges,
				 st.merges == 1 ? "" : "s", st.dropped ? ", older parts dropped for max-size" : "");
			if (ops->note)
				ops->note(ops->ctx, PLAIT_PIPELINE_CACHE_EXPORTED, s->text, n);
		} else if (s->ignore_error) {
			struct plait_buf m = PLAIT_BUF_INIT;
			plait_buf_addf(&m, "--cache-to %s failed (ignored, ignore-error=true): %s", s->text, e->msg);
			pipeline_warn((void *)ops, m.buf);
			plait_buf_release(&m);
		} else if (ret == 0) {
			ret = plait_error_set(err, e->code == PLAIT_E_USAGE ? PLAIT_E_GENERIC : e->code,
					      "%s, but --cache-to %s failed: %s (add ignore-error=true to make this a "
					      "warning)",
					      req->push ? (req->by_digest ? "the images ARE pushed by digest"
									  : "the images ARE published (tags moved)")
							: "the images ARE built and written to their outputs",
					      s->text, e->msg);
		}
		plait_error_free(e);
	}
	for (size_t i = 0; i < n_mf; i++)
		plait_endpoint_free(mf[i]);
	free(mf);
	for (size_t j = 0; j < nj; j++)
		free(names[j]);
	free(names);
	for (size_t i = 0; i < n_used; i++) {
		free(mnames[i]);
		free(mdirs[i]);
	}
	free(mnames);
	free(mdirs);
	plait_strv_free(used);
	free(parts);
	return ret;
}

int plait_pipeline_publish(struct plait_pipeline *p, struct plait_error **err)
{
	const struct plait_request *req = p->req;
	struct plait_endpoint *src = NULL;
	struct plait_publish_copy *images = NULL;
	struct plait_copy_opts co = { .cancel = p->o->interrupt };
	struct plait_publish_opts po = { .copy = &co, .interrupt = p->o->interrupt, .event = publish_note,
					 .ctx = (void *)p->o->ops };
	size_t failed = 0;
	for (size_t j = 0; j < p->plan.n_jobs; j++)
		failed += !p->job_state || p->job_state[j] != PLAIT_JOB_BUILT;
	if (failed) /* the publish protocol's first rule, before the outputs too */
		return plait_error_set(err, PLAIT_E_GENERIC, "%zu job%s not built: nothing was published, no tag moved",
				       failed, failed == 1 ? "" : "s");
	int r = plait_build_cache_endpoint(req->cache_dir, &src, err);
	if (r < 0)
		return r;
	/* Export: the images from the cache's store to every output, then the registries. */
	p->images = xcalloc(p->plan.n_images + 1, sizeof(*p->images));
	images = xcalloc(p->plan.n_images + 1, sizeof(*images));
	for (size_t i = 0; i < p->plan.n_images; i++)
		plait_buf_init(&p->images[i].data, 0);
	r = make_attestations(p, src, err);
	for (size_t i = 0; r >= 0 && i < p->plan.n_images; i++)
		r = make_root(p, src->store, &p->plan.images[i], &p->images[i], err);
	if (r < 0) {
		plait_endpoint_free(src);
		free(images);
		return r;
	}
	for (size_t i = 0; i < p->plan.n_images; i++)
		images[i] = (struct plait_publish_copy){ src, &p->images[i].root, p->images[i].data.buf,
							 p->images[i].data.len };
	for (size_t ti = 0; r >= 0 && ti < req->n_targets; ti++)
		for (char **o = req->targets[ti].outputs; r >= 0 && o && *o; o++) {
			if (startswith(*o, "oci:") || startswith(*o, "oci-archive:"))
				r = export_output(p, images, ti, *o, &po, err);
			else
				r = export_local(p, src, ti, *o, err);
			if (r >= 0 && p->o->ops->note)
				p->o->ops->note(p->o->ops->ctx, PLAIT_PIPELINE_EXPORTED, *o, NULL);
		}
	if (r >= 0 && req->load)
		r = load_images(p, src, err);
	if (r >= 0 && req->push)
		r = push_all(p, images, &po, err);
	p->total = (double)(plait_now_ns() - p->t0) / 1e9;
	if (r >= 0 && req->metadata)
		r = write_metadata(p, err);
	if (r >= 0 && req->iidfile)
		r = write_iidfile(p, err);
	if (r >= 0 && req->n_cache_to)
		r = export_caches(p, src->store, err);
	free(images);
	plait_endpoint_free(src);
	return r;
}

void plait_pipeline_release(struct plait_pipeline *p)
{
	if (!p)
		return;
	for (size_t i = 0; p->images && i < p->plan.n_images; i++) {
		plait_descriptor_release(&p->images[i].root);
		plait_buf_release(&p->images[i].data);
	}
	free(p->images);
	for (size_t i = 0; p->results && i < p->plan.n_jobs; i++)
		plait_build_result_release(&p->results[i]);
	free(p->results);
	free(p->seconds);
	free(p->started);
	free(p->finished);
	for (size_t i = 0; p->attest && i < p->plan.n_jobs; i++)
		for (size_t k = 0; k < p->n_attest[i]; k++) {
			plait_descriptor_release(&p->attest[2 * i + k].root);
			plait_buf_release(&p->attest[2 * i + k].data);
		}
	free(p->attest);
	free(p->n_attest);
	if (p->results) /* built: the lock was made */
		pthread_mutex_destroy(&p->push_early_lock);
	free(p->job_state);
	free(p->job_ctx);
	free(p->dirs);
	plait_plan_release(&p->plan);
	plait_cache_import_free(p->cache_import);
	memset(p, 0, sizeof(*p));
}
