/* core/scheduler.c - worker threads over a job list; see scheduler.h. */
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "scheduler.h"
#include "util.h"
#include "core/banned.h"

struct sched {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	size_t n, next, running, finished, failed;
	plait_sched_fn fn;
	void *ctx;
	const struct plait_sched_opts *o;
	struct plait_error **errs;
	atomic_int cancel;
	bool *started;
};

size_t plait_sched_default_parallel(size_t n)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t c = cpus > 0 ? (size_t)cpus : 1;
	if (n < c)
		c = n;
	return c ? c : 1;
}

static void *worker(void *arg)
{
	struct sched *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		if (s->next >= s->n || s->cancel)
			break;
		size_t pos = s->next++;
		size_t job = s->o->order ? s->o->order[pos] : pos;
		s->started[job] = true;
		s->running++;
		pthread_mutex_unlock(&s->lock);

		struct plait_error *e = NULL;
		int r = s->fn(s->ctx, job, &s->cancel, &e);
		if (r < 0 && !e)
			plait_error_set(&e, PLAIT_E_IO, "job failed (no error message)");

		pthread_mutex_lock(&s->lock);
		s->running--;
		s->finished++;
		if (r < 0) {
			s->errs[job] = e;
			s->failed++;
			if (!s->o->keep_going)
				s->cancel = 1;
		} else {
			plait_error_free(e);
		}
		pthread_cond_broadcast(&s->done_cond);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int plait_sched_run(size_t n, plait_sched_fn fn, void *ctx, const struct plait_sched_opts *o,
		    struct plait_error **errs)
{
	struct sched s = { .n = n, .fn = fn, .ctx = ctx, .o = o, .errs = errs };
	for (size_t i = 0; i < n; i++)
		errs[i] = NULL;
	if (!n)
		return 0;
	size_t workers = o->max_parallel ? o->max_parallel : plait_sched_default_parallel(n);
	if (workers > n)
		workers = n;
	s.started = xcalloc(n, sizeof(*s.started));
	pthread_mutex_init(&s.lock, NULL);
	plait_cond_init_monotonic(&s.done_cond);

	pthread_t *tids = xcalloc(workers, sizeof(*tids));
	size_t n_started = 0;
	for (; n_started < workers; n_started++)
		if (pthread_create(&tids[n_started], NULL, worker, &s) != 0)
			break;
	if (!n_started) /* no thread at all: run them here, one by one */
		worker(&s);

	/* Watch for an interrupt while the workers run: a signal handler can
	 * only set a flag, so it is polled and passed on to every job. */
	pthread_mutex_lock(&s.lock);
	while (s.finished < n && (s.running || (s.next < n && !s.cancel))) {
		if (o->interrupt && *o->interrupt)
			s.cancel = 1;
		plait_cond_wait_ms(&s.done_cond, &s.lock, 100);
	}
	pthread_mutex_unlock(&s.lock);
	for (size_t i = 0; i < n_started; i++)
		pthread_join(tids[i], NULL);
	free(tids);

	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (!s.started[i])
			plait_error_set(&errs[i], PLAIT_E_CANCELLED, "not started: %s",
					o->interrupt && *o->interrupt ? "interrupted" : "another job failed");
		if (errs[i])
			bad++;
	}
	free(s.started);
	pthread_cond_destroy(&s.done_cond);
	pthread_mutex_destroy(&s.lock);
	return (int)bad;
}

size_t plait_sched_first_error(struct plait_error *const *errs, const size_t *order, size_t n)
{
	size_t cancelled = n;
	for (size_t k = 0; k < n; k++) {
		size_t j = order ? order[k] : k;
		if (!errs[j])
			continue;
		if (errs[j]->code != PLAIT_E_CANCELLED)
			return j;
		if (cancelled == n)
			cancelled = j;
	}
	return cancelled;
}
