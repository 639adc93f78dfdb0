/* cmd/progress.h - the pipeline's rendering: build progress on stderr (a
 * tty view redrawn in place, one live line per running job; plain lines for
 * CI logs; JSON events; or nothing), thread-safe since jobs report from
 * worker threads; and the plan table, the job table and the summary. */
#ifndef PLAIT_CMD_PROGRESS_H
#define PLAIT_CMD_PROGRESS_H

#include <pthread.h>

#include "core/pipeline.h"

enum progress_mode { PROGRESS_PLAIN, PROGRESS_TTY, PROGRESS_JSON, PROGRESS_QUIET };

/* "auto" | "plain" | "tty" | "json" | "quiet"; -1 when unknown. */
int progress_mode_parse(const char *s);

struct progress;
struct progress_job {
	struct progress *p;
	size_t index;
	const char *label;    /* "linux/arm64 cuda", or NULL for a lone job */
	const char *platform; /* for JSON */
	const char *variant;  /* for JSON, or NULL */
	char *current;        /* the running step's line */
	uint64_t started;
	bool active;
};

struct progress {
	enum progress_mode mode;
	pthread_mutex_t lock;
	struct progress_job *jobs;
	size_t n_jobs;
	size_t drawn; /* tty: live lines below the scrolled output */
};

void progress_init(struct progress *p, enum progress_mode mode, size_t n_jobs);
void progress_release(struct progress *p);
/* The plait_build_opts.progress callback; ctx is a struct progress_job. */
void progress_event(const struct plait_build_event *ev, void *ctx);
/* A line outside any step ("pushed ..."), kept above the live view. */
void progress_note(struct progress *p, const char *fmt, ...) _printf_(2, 3);

/* The plan as a table (in start order) or JSON, on stdout. */
void print_plan(const struct plait_plan *plan, bool as_json);
/* After a failed build: each job's fate (several jobs), on stderr. */
void print_failures(const struct plait_pipeline *run);
/* After publishing: the images and jobs (a JSON event in json mode), on stderr. */
void print_summary(const struct plait_pipeline *run, enum progress_mode mode);
/* Each image's digest on stdout ("TARGET:VARIANT DIGEST" when several). */
void print_digests(const struct plait_pipeline *run);

#endif
