/* core/plan.c - targets x variants x platforms to jobs; see plan.h. */
#include "plan.h"
#include "platform.h"
#include "ref.h"
#include "util.h"
#include "core/banned.h"

void plait_builder_release(struct plait_builder *b)
{
	if (!b)
		return;
	free(b->name);
	free(b->detail);
	free(b->node);
	free(b->reason);
	memset(b, 0, sizeof(*b));
}

void plait_plan_release(struct plait_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_jobs; i++) {
		struct plait_job *j = &p->jobs[i];
		plait_platform_release(&j->platform);
		free(j->platform_str);
		free(j->label);
		plait_builder_release(&j->builder);
		plait_strv_free(j->build_args);
		plait_strv_free(j->annotations);
	}
	for (size_t i = 0; i < p->n_images; i++) {
		free(p->images[i].variant);
		plait_strv_free(p->images[i].tags);
		plait_strv_free(p->images[i].annotations);
		plait_strv_free(p->images[i].unused_args);
		free(p->images[i].jobs);
	}
	free(p->jobs);
	free(p->images);
	free(p->order);
	memset(p, 0, sizeof(*p));
}

struct problems {
	struct plait_buf text;
	size_t n;
};

_printf_(2, 3) static void problem(struct problems *pr, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct plait_buf line = PLAIT_BUF_INIT;
	plait_buf_vaddf(&line, fmt, ap);
	va_end(ap);
	/* the same problem from several jobs is said once */
	bool seen = false;
	for (const char *s = pr->text.buf; s && (s = strstr(s, line.buf)); s++)
		if ((s == pr->text.buf || s[-1] == ' ') && (s[line.len] == '\n' || !s[line.len]))
			seen = true;
	if (!seen) {
		plait_buf_addf(&pr->text, "%s  - %s", pr->n ? "\n" : "", line.buf);
		pr->n++;
	}
	plait_buf_release(&line);
}

static void problem_err(struct problems *pr, const char *prefix, struct plait_error *e)
{
	problem(pr, "%s%s", prefix, e ? e->msg : "failed");
}

char *plait_plan_expand_variant(const char *tag, const char *variant)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	for (const char *s = tag; *s;) {
		if (startswith(s, "{variant}") && variant) {
			plait_buf_adds(&b, variant);
			s += strlen("{variant}");
		} else {
			plait_buf_add(&b, s++, 1);
		}
	}
	return plait_buf_detach(&b, NULL);
}

struct chosen {
	char *platform;
	struct plait_builder b;
	bool ok;
	struct plait_error *err; /* why there is no builder */
};

/* The builder chosen for platform: its index in ch, or n_ch when none yet. */
static size_t find_chosen(const struct chosen *ch, size_t n_ch, const char *platform)
{
	size_t c = 0;
	while (c < n_ch && !streq(ch[c].platform, platform))
		c++;
	return c;
}

/* How plait_build_needs() sees a job: its Dockerfile, target, platform and args. */
static struct plait_build_opts job_build_opts(const struct plait_plan *plan, const struct plait_plan_opts *o,
					      const struct plait_job *job)
{
	const struct plait_target *t = plan->images[job->image].req;
	return (struct plait_build_opts){
		.context_dir = t->context_dir,
		.dockerfile = t->dockerfile,
		.target = t->stage,
		.platform = job->platform,
		.platform_str = job->platform_str,
		.build_platform = *o->build_platform,
		.build_platform_str = o->build_platform_str,
		.build_args = (const char *const *)job->build_args,
	};
}

/* A platform no builder runs can still be built when nothing executes on
 * it: COPY-only images, or programs cross-built in a FROM
 * --platform=$BUILDPLATFORM stage. Such a job gets the build platform's
 * builder (for that stage's RUN steps) under the name "none"; the others get
 * the problem. */
static void assign_missing_builders(struct plait_plan *plan, const struct plait_plan_opts *o, struct chosen *ch,
				    size_t n_ch, struct problems *pr)
{
	for (size_t j = 0; j < plan->n_jobs; j++) {
		struct plait_job *job = &plan->jobs[j];
		size_t c = find_chosen(ch, n_ch, job->platform_str);
		if (c == n_ch || ch[c].ok)
			continue;
		struct plait_build_opts bo = job_build_opts(plan, o, job);
		struct plait_build_needs needs = { 0 };
		bool runs = true; /* a Dockerfile that cannot be read: check_bases says why */
		if (plait_build_needs(&bo, &needs, NULL) >= 0)
			runs = needs.runs_on_target;
		plait_build_needs_release(&needs);
		struct plait_builder b = { 0 };
		if (runs || o->builders->choose(o->builders->ctx, o->build_platform, &b, NULL) < 0) {
			problem_err(pr, "", ch[c].err);
			continue;
		}
		plait_builder_release(&job->builder);
		job->builder = b;
		free(job->builder.name);
		job->builder.name = xstrdup("none");
		free(job->builder.detail);
		struct plait_buf d = PLAIT_BUF_INIT;
		plait_buf_addf(&d, "no RUN step runs on %s", job->platform_str);
		job->builder.detail = plait_buf_detach(&d, NULL);
		job->builder.emulated = false;
	}
}

/* A -t value: its normalised form and its tag part (NULL when none). */
static int parse_tag_ref(const char *s, char **normalised, char **tag, struct plait_error **err)
{
	struct plait_ref r = {0};
	int ret = plait_ref_parse(s, &r, err);
	if (ret < 0)
		return ret;
	if (r.digest) {
		/* a digest says which image a name points to; -t says where the new one goes */
		plait_ref_release(&r);
		return plait_error_set(err, PLAIT_E_USAGE,
				       "a -t value names where the image goes and cannot pin a digest: drop "
				       "'@%s'",
				       strchr(s, '@') + 1);
	}
	*normalised = plait_ref_format(&r);
	*tag = xstrdup_or_null(r.tag);
	plait_ref_release(&r);
	return 0;
}

static void check_tags(struct plait_plan *plan, const struct plait_plan_opts *o, struct problems *pr)
{
	char **seen = NULL;   /* normalised refs, in image order */
	size_t *owner = NULL; /* the image each came from */
	size_t n_seen = 0;
	for (size_t i = 0; i < plan->n_images; i++) {
		const struct plait_plan_image *im = &plan->images[i];
		for (char **t = im->tags; t && *t; t++) {
			char *norm = NULL, *tag = NULL;
			struct plait_error *e = NULL;
			if (parse_tag_ref(*t, &norm, &tag, &e) < 0) {
				problem(pr, "-t '%s': %s", *t, e ? e->msg : "invalid reference");
				plait_error_free(e);
				continue;
			}
			if (!tag && !o->untagged_ok)
				problem(pr, "-t '%s' has no tag: name a version, e.g. '%s:1.0' (plait does not tag "
					    "'latest' implicitly)",
					*t, *t);
			if (tag && streq(tag, "latest") && !o->allow_latest)
				problem(pr, "-t '%s': refusing to tag 'latest' (it moves with every build and pins "
					    "nothing): tag a version, or pass --allow-latest",
					*t);
			for (size_t k = 0; k < n_seen; k++) {
				if (!streq(seen[k], norm) || owner[k] == i)
					continue;
				/* variants of one target sharing a tag written without {variant}:
				 * said already ("no {variant}"); with it, two variants' names
				 * can still expand alike ("{variant}-1" for x and "{variant}"
				 * for x-1) */
				if (plan->images[owner[k]].req == im->req && im->req->n_variants > 1 &&
				    !strstr(im->req->tags[t - im->tags], "{variant}"))
					continue;
				const struct plait_plan_image *other = &plan->images[owner[k]];
				problem(pr, "tag '%s' is given to two images (%s%s%s and %s%s%s): each variant and "
					    "target needs its own tags (use {variant} in -t)",
					*t, other->req->name ? other->req->name : "",
					other->req->name && other->variant ? " " : "",
					other->variant ? other->variant : (other->req->name ? "" : "default"),
					im->req->name ? im->req->name : "", im->req->name && im->variant ? " " : "",
					im->variant ? im->variant : (im->req->name ? "" : "default"));
			}
			seen = xrealloc(seen, (n_seen + 1) * sizeof(*seen));
			owner = xrealloc(owner, (n_seen + 1) * sizeof(*owner));
			seen[n_seen] = norm;
			owner[n_seen++] = i;
			free(tag);
		}
	}
	for (size_t k = 0; k < n_seen; k++)
		free(seen[k]);
	free(seen);
	free(owner);
}

/* Every base image each job needs must exist for the platform it is needed
 * for: found now, not after the other jobs ran for minutes. */
static void check_bases(struct plait_plan *plan, const struct plait_plan_opts *o, struct problems *pr)
{
	struct tried {
		char *ref, *platform;
		char *error; /* NULL: found */
	} *tried = NULL;
	size_t n_tried = 0;
	for (size_t j = 0; j < plan->n_jobs; j++) {
		const struct plait_job *job = &plan->jobs[j];
		const struct plait_target *t = plan->images[job->image].req;
		struct plait_build_opts bo = job_build_opts(plan, o, job);
		struct plait_build_needs needs = { 0 };
		struct plait_error *e = NULL;
		if (plait_build_needs(&bo, &needs, &e) < 0) {
			problem_err(pr, "", e);
			plait_error_free(e);
			continue;
		}
		struct plait_plan_image *im = &plan->images[job->image];
		if (im->n_jobs && im->jobs[0] == j)
			im->unused_args = TAKE_PTR(needs.unused_args);
		const struct plait_base_ref *bases = needs.bases;
		size_t n = needs.n_bases;
		for (size_t b = 0; b < n; b++) {
			size_t k = 0;
			for (; k < n_tried; k++)
				if (streq(tried[k].ref, bases[b].ref) && streq(tried[k].platform, bases[b].platform))
					break;
			if (k == n_tried) {
				struct plait_endpoint *ep = NULL;
				struct plait_descriptor man = { 0 };
				struct plait_buf bytes = PLAIT_BUF_INIT;
				tried = xrealloc(tried, (n_tried + 1) * sizeof(*tried));
				tried[k] = (struct tried){ xstrdup(bases[b].ref), xstrdup(bases[b].platform), NULL };
				n_tried++;
				if (o->resolver->resolve(o->resolver->ctx, bases[b].ref, bases[b].platform, &ep, &man,
							 &bytes, &e) < 0)
					tried[k].error = xstrdup(e ? e->msg : "not found");
				plait_error_free(e);
				e = NULL;
				plait_endpoint_free(ep);
				plait_descriptor_release(&man);
				plait_buf_release(&bytes);
			}
			if (tried[k].error) {
				const char *df = t->dockerfile ? t->dockerfile : "Dockerfile";
				const char *slash = strrchr(df, '/');
				problem(pr, "%s: %s:%d: base image '%s' is missing for %s: %s", job->label,
					slash ? slash + 1 : df, bases[b].line, bases[b].ref, bases[b].platform,
					tried[k].error);
			}
		}
		plait_build_needs_release(&needs);
	}
	for (size_t k = 0; k < n_tried; k++) {
		free(tried[k].ref);
		free(tried[k].platform);
		free(tried[k].error);
	}
	free(tried);
}

int plait_plan_make(const struct plait_target *targets, size_t n, const struct plait_plan_opts *o,
		    struct plait_plan *out, struct plait_error **err)
{
	struct problems pr = { PLAIT_BUF_INIT, 0 };
	struct chosen *ch = NULL;
	size_t n_ch = 0;
	memset(out, 0, sizeof(*out));
	/* Bytes that JSON cannot hold are said first and alone: the checks below
	 * would quote them. */
	for (size_t ti = 0; ti < n; ti++) {
		_cleanup_strv_free_ char **bad = NULL;
		plait_target_check_utf8(&targets[ti], &bad);
		for (char **q = bad; q && *q; q++)
			problem(&pr, "%s%s%s", targets[ti].name ? targets[ti].name : "", targets[ti].name ? ": " : "",
				*q);
	}
	if (pr.n)
		goto done;
	for (size_t ti = 0; ti < n; ti++) {
		const struct plait_target *t = &targets[ti];
		const char *tname = t->name;
		static const struct plait_variant none = { 0 };
		size_t nv = t->n_variants ? t->n_variants : 1;
		for (char *const *q = t->problems; q && *q; q++)
			problem(&pr, "%s%s%s", tname ? tname : "", tname ? ": " : "", *q);
		for (size_t i = 0; i < t->n_variants; i++)
			for (size_t k = 0; k < i; k++)
				if (streq(t->variants[i].name, t->variants[k].name))
					problem(&pr, "--variant '%s' is given twice", t->variants[i].name);
		for (size_t vi = 0; vi < nv; vi++) {
			const struct plait_variant *v = t->n_variants ? &t->variants[vi] : &none;
			out->images = xrealloc(out->images, (out->n_images + 1) * sizeof(*out->images));
			struct plait_plan_image *im = &out->images[out->n_images++];
			memset(im, 0, sizeof(*im));
			im->target = ti;
			im->req = t;
			im->variant = xstrdup_or_null(v->name);
			for (char *const *tag = t->tags; tag && *tag; tag++) {
				if (!v->name && strstr(*tag, "{variant}"))
					problem(&pr, "-t '%s' has {variant}, but no --variant is given", *tag);
				else if (t->n_variants > 1 && !strstr(*tag, "{variant}"))
					problem(&pr, "-t '%s' has no {variant}, but %zu variants are built: their "
						     "indexes would overwrite each other (write e.g. '%s-{variant}')",
						*tag, t->n_variants, *tag);
				_cleanup_free_ char *x = plait_plan_expand_variant(*tag, v->name);
				plait_strv_push(&im->tags, x);
			}
			struct plait_error *e = NULL;
			for (size_t a = 0; a < t->n_annotations; a++)
				if (t->annotations[a].index)
					plait_strv_push(&im->annotations, t->annotations[a].kv);

			/* The platforms of this image: the target's, narrowed by the variant's. */
			char **names = xcalloc(t->n_platforms + 1, sizeof(*names));
			for (size_t pi = 0; pi < t->n_platforms; pi++)
				names[pi] = plait_platform_format(&t->platforms[pi]);
			for (char **vp = v->platforms; vp && *vp; vp++)
				if (!plait_strv_contains(names, *vp))
					problem(&pr, "--variant %s: platforms=%s is not among the platforms built "
						     "(--platform)",
						v->name, *vp);
			const struct plait_platform *plats = t->platforms;
			size_t np = t->n_platforms;
			for (size_t pi = 0; pi < np; pi++) {
				if (v->platforms && !plait_strv_contains(v->platforms, names[pi]))
					continue;
				out->jobs = xrealloc(out->jobs, (out->n_jobs + 1) * sizeof(*out->jobs));
				struct plait_job *job = &out->jobs[out->n_jobs];
				memset(job, 0, sizeof(*job));
				job->image = out->n_images - 1;
				plait_platform_copy(&job->platform, &plats[pi]);
				job->platform_str = xstrdup(names[pi]);
				struct plait_buf l = PLAIT_BUF_INIT;
				plait_buf_addf(&l, "%s%s%s%s%s", tname ? tname : "", tname ? " " : "", job->platform_str,
					       v->name ? " " : "", v->name ? v->name : "");
				job->label = plait_buf_detach(&l, NULL);
				for (char *const *a = t->build_args; a && *a; a++)
					plait_strv_push(&job->build_args, *a);
				/* a variant's arg replaces the target's of the same name, in place */
				for (char **a = v->args; a && *a; a++) {
					size_t kl = strcspn(*a, "=");
					char **same = job->build_args;
					while (same && *same && !(strncmp(*same, *a, kl) == 0 && (*same)[kl] == '='))
						same++;
					if (same && *same) {
						free(*same);
						*same = xstrdup(*a);
					} else {
						plait_strv_push(&job->build_args, *a);
					}
				}
				for (size_t a = 0; a < t->n_annotations; a++)
					if (!t->annotations[a].index && (!t->annotations[a].platforms ||
									 plait_strv_contains(t->annotations[a].platforms, names[pi])))
						plait_strv_push(&job->annotations, t->annotations[a].kv);
				/* One builder per platform, chosen once. */
				size_t c = find_chosen(ch, n_ch, job->platform_str);
				if (c == n_ch) {
					ch = xrealloc(ch, (n_ch + 1) * sizeof(*ch));
					memset(&ch[c], 0, sizeof(ch[c]));
					ch[c].platform = xstrdup(job->platform_str);
					n_ch++;
					if (o->builders->choose(o->builders->ctx, &plats[pi], &ch[c].b, &e) < 0) {
						ch[c].err = e; /* a problem unless nothing runs there */
						e = NULL;
					} else {
						ch[c].ok = true;
					}
				}
				if (ch[c].ok) {
					job->builder = ch[c].b;
					job->builder.name = xstrdup(ch[c].b.name);
					job->builder.detail = xstrdup_or_null(ch[c].b.detail);
					job->builder.node = xstrdup_or_null(ch[c].b.node);
					job->builder.reason = xstrdup_or_null(ch[c].b.reason);
				}
				im->jobs = xrealloc(im->jobs, (im->n_jobs + 1) * sizeof(*im->jobs));
				im->jobs[im->n_jobs++] = out->n_jobs;
				out->n_jobs++;
			}
			plait_strv_free(names);
			/* One platform gives a manifest, as buildx does; several an index. */
			im->single = im->n_jobs == 1;
			/* no platform at all: the target's problems say why */
			if (!im->n_jobs && (t->n_platforms || !t->problems))
				problem(&pr, "%s%svariant %s builds no platform", tname ? tname : "", tname ? ": " : "",
					v->name ? v->name : "default");
		}
	}
	assign_missing_builders(out, o, ch, n_ch, &pr);
	check_tags(out, o, &pr);
	if (o->resolver)
		check_bases(out, o, &pr);

	/* Start order: emulated and native jobs alternate (emulated first: they are
	 * the long ones), so both kinds of builder are busy from the start. */
	out->order = xcalloc(out->n_jobs + 1, sizeof(*out->order));
	size_t k = 0, e_i = 0, n_i = 0;
	while (k < out->n_jobs) {
		while (e_i < out->n_jobs && !out->jobs[e_i].builder.emulated)
			e_i++;
		if (e_i < out->n_jobs)
			out->order[k++] = e_i++;
		while (n_i < out->n_jobs && out->jobs[n_i].builder.emulated)
			n_i++;
		if (n_i < out->n_jobs)
			out->order[k++] = n_i++;
	}

	for (size_t c = 0; c < n_ch; c++) {
		free(ch[c].platform);
		plait_builder_release(&ch[c].b);
		plait_error_free(ch[c].err);
	}
	free(ch);
done:;
	int r = 0;
	if (pr.n) {
		r = plait_error_set(err, PLAIT_E_USAGE, "cannot plan this build (%zu problem%s; nothing was built):\n%s",
				    pr.n, pr.n == 1 ? "" : "s", pr.text.buf);
		plait_plan_release(out);
	}
	plait_buf_release(&pr.text);
	return r;
}

json_t *plait_plan_to_json(const struct plait_plan *p)
{
	json_t *root = json_object(), *images = json_array(), *jobs = json_array();
	for (size_t i = 0; i < p->n_images; i++) {
		const struct plait_plan_image *im = &p->images[i];
		json_t *o = json_object(), *js = json_array();
		if (im->req->name)
			json_object_set_new(o, "target", json_string(im->req->name));
		json_object_set_new(o, "variant", im->variant ? json_string(im->variant) : json_null());
		json_object_set_new(o, "kind", json_string(im->single ? "manifest" : "index"));
		json_object_set_new(o, "tags", plait_strv_to_json(im->tags));
		json_object_set_new(o, "annotations", plait_strv_to_json(im->annotations));
		for (size_t j = 0; j < im->n_jobs; j++)
			json_array_append_new(js, json_string(p->jobs[im->jobs[j]].platform_str));
		json_object_set_new(o, "platforms", js);
		json_array_append_new(images, o);
	}
	for (size_t k = 0; k < p->n_jobs; k++) {
		const struct plait_job *j = &p->jobs[p->order[k]];
		const struct plait_plan_image *im = &p->images[j->image];
		json_t *o = json_object();
		if (im->req->name)
			json_object_set_new(o, "target", json_string(im->req->name));
		json_object_set_new(o, "stage", im->req->stage ? json_string(im->req->stage) : json_null());
		json_object_set_new(o, "variant", im->variant ? json_string(im->variant) : json_null());
		json_object_set_new(o, "platform", json_string(j->platform_str));
		json_object_set_new(o, "builder", json_string(j->builder.name ? j->builder.name : ""));
		json_object_set_new(o, "emulated", json_boolean(j->builder.emulated));
		if (j->builder.detail)
			json_object_set_new(o, "interpreter", json_string(j->builder.detail));
		if (j->builder.node)
			json_object_set_new(o, "node", json_string(j->builder.node));
		if (j->builder.reason)
			json_object_set_new(o, "reason", json_string(j->builder.reason));
		json_object_set_new(o, "args", plait_strv_to_json(j->build_args));
		json_object_set_new(o, "tags", plait_strv_to_json(im->tags));
		json_object_set_new(o, "annotations", plait_strv_to_json(j->annotations));
		json_array_append_new(jobs, o);
	}
	json_object_set_new(root, "images", images);
	json_object_set_new(root, "jobs", jobs);
	return root;
}
