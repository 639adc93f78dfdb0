/* cmd/progress.c - build progress rendering; see progress.h. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "progress.h"
#include "common.h"
#include "core/banned.h"

int progress_mode_parse(const char *s)
{
	if (streq(s, "plain"))
		return PROGRESS_PLAIN;
	if (streq(s, "tty"))
		return PROGRESS_TTY;
	if (streq(s, "auto"))
		return isatty(STDERR_FILENO) ? PROGRESS_TTY : PROGRESS_PLAIN;
	if (streq(s, "json"))
		return PROGRESS_JSON;
	if (streq(s, "quiet"))
		return PROGRESS_QUIET;
	return -1;
}

void progress_init(struct progress *p, enum progress_mode mode, size_t n_jobs)
{
	memset(p, 0, sizeof(*p));
	p->mode = mode;
	pthread_mutex_init(&p->lock, NULL);
	p->jobs = xcalloc(n_jobs + 1, sizeof(*p->jobs));
	p->n_jobs = n_jobs;
	for (size_t i = 0; i < n_jobs; i++) {
		p->jobs[i].p = p;
		p->jobs[i].index = i;
	}
}

void progress_release(struct progress *p)
{
	if (!p->jobs)
		return;
	for (size_t i = 0; i < p->n_jobs; i++)
		free(p->jobs[i].current);
	free(p->jobs);
	p->jobs = NULL;
	pthread_mutex_destroy(&p->lock);
}

/* tty: erase the live lines, print what scrolls (if any), draw them again. */
static void tty_frame(struct progress *p, const char *scroll)
{
	if (p->drawn)
		fprintf(stderr, "\033[%zuA", p->drawn);
	fputs("\r\033[J", stderr);
	if (scroll)
		fprintf(stderr, "%s\n", scroll);
	p->drawn = 0;
	uint64_t now = plait_now_ns();
	for (size_t i = 0; i < p->n_jobs; i++) {
		const struct progress_job *j = &p->jobs[i];
		if (!j->active || !j->current)
			continue;
		fprintf(stderr, "\033[1m=>\033[0m %s%s%s%s (%.1fs)\n", j->label ? "[" : "",
			j->label ? j->label : "", j->label ? "] " : "", j->current, (double)(now - j->started) / 1e9);
		p->drawn++;
	}
	fflush(stderr);
}

static void tty_event(struct progress_job *j, const struct plait_build_event *ev)
{
	struct progress *p = j->p;
	struct plait_buf line = PLAIT_BUF_INIT;
	const char *pre = j->label ? "[" : "", *lab = j->label ? j->label : "", *post = j->label ? "] " : "";
	switch (ev->kind) {
	case PLAIT_BUILD_STEP_START:
		free(j->current);
		plait_buf_addf(&line, "#%d/%d %s: %.100s", ev->step, ev->total, ev->stage, ev->text);
		j->current = plait_buf_detach(&line, NULL);
		j->started = plait_now_ns();
		j->active = true;
		tty_frame(p, NULL);
		break;
	case PLAIT_BUILD_STEP_OUTPUT:
		plait_buf_addf(&line, "\033[2m   %s%s%s%s\033[0m", pre, lab, post, ev->text);
		tty_frame(p, line.buf);
		break;
	case PLAIT_BUILD_STEP_CACHED:
		plait_buf_addf(&line, "\033[32m=> CACHED\033[0m %s%s%s%s", pre, lab, post, j->current ? j->current : "");
		j->active = false;
		tty_frame(p, line.buf);
		break;
	case PLAIT_BUILD_STEP_DONE:
		plait_buf_addf(&line, "\033[34m=> %.1fs\033[0m %s%s%s%s", ev->seconds, pre, lab, post,
			       j->current ? j->current : "");
		j->active = false;
		tty_frame(p, line.buf);
		break;
	case PLAIT_BUILD_STEP_ERROR:
		plait_buf_addf(&line, "\033[31m=> ERROR\033[0m %s%s%s%s\n   %s", pre, lab, post,
			       j->current ? j->current : "", ev->text);
		j->active = false;
		tty_frame(p, line.buf);
		break;
	}
	plait_buf_release(&line);
}

/* s as valid UTF-8 for a JSON string: each byte that does not start a
 * well-formed sequence becomes U+FFFD (RUN output is whatever the program
 * wrote; jansson refuses anything else). Caller frees. */
static char *valid_utf8(const char *s)
{
	struct plait_buf b = PLAIT_BUF_INIT;
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		size_t n = *p < 0x80		? 1
			   : (*p & 0xe0) == 0xc0 ? 2
			   : (*p & 0xf0) == 0xe0 ? 3
			   : (*p & 0xf8) == 0xf0 ? 4
						 : 0;
		size_t k = 1;
		while (n && k < n && (p[k] & 0xc0) == 0x80)
			k++;
		/* overlong forms, surrogates and values past U+10FFFF are not UTF-8 either */
		bool ok = n && k == n &&
			  !(n == 2 && *p < 0xc2) &&
			  !(n == 3 && *p == 0xe0 && p[1] < 0xa0) &&
			  !(n == 3 && *p == 0xed && p[1] >= 0xa0) &&
			  !(n == 4 && *p == 0xf0 && p[1] < 0x90) &&
			  !(n == 4 && (*p > 0xf4 || (*p == 0xf4 && p[1] >= 0x90)));
		if (ok) {
			plait_buf_add(&b, p, n);
			p += n;
		} else {
			plait_buf_adds(&b, "\xef\xbf\xbd");
			p++;
		}
	}
	return plait_buf_detach(&b, NULL);
}

static void json_event(struct progress_job *j, const struct plait_build_event *ev)
{
	static const char *const kinds[] = { "start", "cached", "done", "output", "error" };
	json_auto_t *o = json_object();
	json_object_set_new(o, "event", json_string(kinds[ev->kind]));
	json_object_set_new(o, "step", json_integer(ev->step));
	json_object_set_new(o, "total", json_integer(ev->total));
	json_object_set_new(o, "stage", json_string(ev->stage ? ev->stage : ""));
	/* Every event names its job, also when there is only one. */
	if (j->label || j->platform)
		json_object_set_new(o, "job", json_string(j->label ? j->label : j->platform));
	if (j->platform)
		json_object_set_new(o, "platform", json_string(j->platform));
	if (j->variant)
		json_object_set_new(o, "variant", json_string(j->variant));
	if (ev->text) {
		_cleanup_free_ char *text = valid_utf8(ev->text);
		json_object_set_new(o, "text", json_string(text));
	}
	if (ev->kind == PLAIT_BUILD_STEP_DONE)
		json_object_set_new(o, "seconds", json_real(ev->seconds));
	json_dumpf(o, stderr, JSON_COMPACT);
	fputc('\n', stderr);
}

/* plain: a line per event; several jobs are told apart by "[label]". */
static void plain_event(struct progress_job *j, const struct plait_build_event *ev)
{
	const char *pre = j->label ? "[" : "", *lab = j->label ? j->label : "", *post = j->label ? "] " : "";
	switch (ev->kind) {
	case PLAIT_BUILD_STEP_START:
		if (j->label)
			fprintf(stderr, "[%s] #%d/%d %s: %s\n", j->label, ev->step, ev->total, ev->stage, ev->text);
		else
			fprintf(stderr, "#%d [%s %d/%d] %s\n", ev->step, ev->stage, ev->step, ev->total, ev->text);
		break;
	case PLAIT_BUILD_STEP_CACHED:
		fprintf(stderr, "%s%s%s#%d CACHED\n", pre, lab, post, ev->step);
		break;
	case PLAIT_BUILD_STEP_DONE:
		fprintf(stderr, "%s%s%s#%d DONE %.1fs\n", pre, lab, post, ev->step, ev->seconds);
		break;
	case PLAIT_BUILD_STEP_OUTPUT:
		fprintf(stderr, "%s%s%s#%d %s\n", pre, lab, post, ev->step, ev->text);
		break;
	case PLAIT_BUILD_STEP_ERROR:
		fprintf(stderr, "%s%s%s#%d ERROR: %s\n", pre, lab, post, ev->step, ev->text);
		break;
	}
}

void progress_event(const struct plait_build_event *ev, void *ctx)
{
	struct progress_job *j = ctx;
	struct progress *p = j->p;
	if (p->mode == PROGRESS_QUIET)
		return;
	pthread_mutex_lock(&p->lock);
	if (p->mode == PROGRESS_TTY)
		tty_event(j, ev);
	else if (p->mode == PROGRESS_JSON)
		json_event(j, ev);
	else
		plain_event(j, ev);
	fflush(stderr);
	pthread_mutex_unlock(&p->lock);
}

void progress_note(struct progress *p, const char *fmt, ...)
{
	if (p->mode == PROGRESS_QUIET)
		return;
	struct plait_buf b = PLAIT_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	plait_buf_vaddf(&b, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&p->lock);
	if (p->mode == PROGRESS_TTY) {
		tty_frame(p, b.buf);
	} else if (p->mode == PROGRESS_JSON) {
		json_auto_t *o = json_pack("{s:s,s:s}", "event", "note", "text", b.buf);
		json_dumpf(o, stderr, JSON_COMPACT);
		fputc('\n', stderr);
	} else {
		fprintf(stderr, "%s\n", b.buf);
	}
	pthread_mutex_unlock(&p->lock);
	plait_buf_release(&b);
}

/* ------------------------------------------------------------ tables and summaries */

void print_plan(const struct plait_plan *plan, bool as_json)
{
	if (as_json) {
		json_auto_t *j = plait_plan_to_json(plan);
		json_dumpf(j, stdout, JSON_INDENT(2));
		fputc('\n', stdout);
		return;
	}
	printf("%-3s %-14s %-10s %-16s %-9s %s\n", "#", "TARGET", "VARIANT", "PLATFORM", "BUILDER", "ARGS / TAGS");
	for (size_t k = 0; k < plan->n_jobs; k++) {
		const struct plait_job *j = &plan->jobs[plan->order[k]];
		const struct plait_plan_image *im = &plan->images[j->image];
		struct plait_buf args = PLAIT_BUF_INIT, tags = PLAIT_BUF_INIT;
		for (char **a = j->build_args; a && *a; a++)
			plait_buf_addf(&args, "%s%s", args.len ? " " : "", *a);
		for (char **t = im->tags; t && *t; t++)
			plait_buf_addf(&tags, "%s%s", tags.len ? " " : "", *t);
		printf("%-3zu %-14s %-10s %-16s %-9s %s\n", k + 1,
		       im->req->name ? im->req->name : (im->req->stage ? im->req->stage : "-"),
		       im->variant ? im->variant : "-", j->platform_str, j->builder.name ? j->builder.name : "?",
		       args.len ? args.buf : "-");
		if (tags.len)
			printf("%-3s %-14s %-10s %-16s %-9s -> %s\n", "", "", "", "", "", tags.buf);
		if (j->builder.node || j->builder.reason)
			printf("%-3s %-14s %-10s %-16s %-9s on %s: %s\n", "", "", "", "", "",
			       j->builder.node ? j->builder.node : "this host", j->builder.reason ? j->builder.reason : "-");
		plait_buf_release(&args);
		plait_buf_release(&tags);
	}
}

void print_summary(const struct plait_pipeline *run, enum progress_mode mode)
{
	const struct plait_pipeline_image *pub = run->images;
	double total = run->total;
	if (mode == PROGRESS_QUIET)
		return;
	if (mode == PROGRESS_JSON) {
		/* One more event line, so that every line of stderr is JSON. */
		json_auto_t *o = json_object();
		json_t *images = json_array();
		for (size_t i = 0; i < run->plan.n_images; i++)
			json_array_append_new(images, plait_pipeline_image_json(run, i));
		json_object_set_new(o, "event", json_string("summary"));
		json_object_set_new(o, "images", images);
		json_object_set_new(o, "duration_s", json_real(total));
		json_dumpf(o, stderr, JSON_COMPACT);
		fputc('\n', stderr);
		return;
	}
	bool several = run->plan.n_jobs > 1 || run->plan.n_images > 1;
	if (several) {
		int w = 8, wl = 12;
		struct plait_buf *names = xcalloc(run->plan.n_images, sizeof(*names));
		for (size_t i = 0; i < run->plan.n_images; i++) {
			const struct plait_plan_image *im = &run->plan.images[i];
			names[i] = (struct plait_buf)PLAIT_BUF_INIT;
			plait_buf_addf(&names[i], "%s%s%s", im->req->name ? im->req->name : "",
				       im->req->name && im->variant ? " " : "",
				       im->variant ? im->variant : (im->req->name ? "" : "default"));
			if ((int)names[i].len > w)
				w = (int)names[i].len;
		}
		for (size_t j = 0; j < run->plan.n_jobs; j++)
			if ((int)strlen(run->plan.jobs[j].label) > wl)
				wl = (int)strlen(run->plan.jobs[j].label);
		fprintf(stderr, "\nimages:\n");
		for (size_t i = 0; i < run->plan.n_images; i++) {
			const struct plait_plan_image *im = &run->plan.images[i];
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
		for (size_t j = 0; j < run->plan.n_jobs; j++) {
			const struct plait_job *job = &run->plan.jobs[j];
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
	fprintf(stderr, "built %s%s in %.1fs\n", run->plan.n_images == 1 && !run->plan.images[0].single ? "index " : "",
		run->plan.n_images == 1 ? pub[0].root.digest : "every image", total);
}


void print_failures(const struct plait_pipeline *run)
{
	const struct plait_plan *plan = &run->plan;
	for (size_t j = 0; plan->n_jobs > 1 && j < plan->n_jobs; j++)
		fprintf(stderr, "  %-28s %s\n", plan->jobs[j].label,
			run->job_state[j] == PLAIT_JOB_BUILT	       ? "built (not published)"
			: run->job_state[j] == PLAIT_JOB_CANCELLED ? "cancelled"
								   : "FAILED");
	if (plan->n_jobs > 1)
		fprintf(stderr, "nothing was published: no tag moved\n");
}

void print_digests(const struct plait_pipeline *run)
{
	const struct plait_plan *plan = &run->plan;
	for (size_t i = 0; i < plan->n_images; i++) {
		if (plan->n_images > 1)
			printf("%s%s%s ", plan->images[i].req->name ? plan->images[i].req->name : "",
			       plan->images[i].req->name && plan->images[i].variant ? ":" : "",
			       plan->images[i].variant ? plan->images[i].variant : "");
		printf("%s\n", run->images[i].root.digest);
	}
}
