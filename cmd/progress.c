/* cmd/progress.c - build progress rendering; see progress.h. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "progress.h"
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
