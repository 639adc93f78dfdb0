/* core/scheduler.h - the scheduler (not "sched.h": that name is the system's): runs a plan's jobs on bounded worker threads.
 *
 * Contract:
 *  - jobs are started in the order given (the planner interleaves native and
 *    emulated jobs), at most max_parallel at once (0 = one per job, up to the
 *    number of online CPUs);
 *  - each job gets a cancel flag it must poll; the flag is raised for every
 *    job when *interrupt becomes non-zero (SIGINT/SIGTERM) and, unless
 *    keep_going, when any job fails; jobs not yet started then do not start
 *    and are reported as PLAIT_E_CANCELLED "not started";
 *  - plait_sched_run returns when every started job has returned: 0 when all
 *    jobs succeeded, otherwise the number of failed or cancelled jobs;
 *    errs[i] holds job i's error (NULL when it succeeded);
 *  - the job function runs on a worker thread: it must not touch another
 *    job's state; callbacks it makes (progress) must be thread-safe. */
#ifndef PLAIT_SCHED_H
#define PLAIT_SCHED_H

#include <stdatomic.h>

#include <stddef.h>

#include "error.h"

typedef int (*plait_sched_fn)(void *ctx, size_t job, const atomic_int *cancel,
			      struct plait_error **err);

struct plait_sched_opts {
	size_t max_parallel;
	bool keep_going;
	const atomic_int *interrupt; /* NULL: none */
	const size_t *order;	       /* start order (a permutation of 0..n-1), NULL = 0..n-1 */
};

/* The default parallelism for n jobs: min(n, online CPUs), at least 1. */
size_t plait_sched_default_parallel(size_t n);

int plait_sched_run(size_t n, plait_sched_fn fn, void *ctx, const struct plait_sched_opts *o,
		    struct plait_error **errs);

/* Which of errs (as plait_sched_run filled them, non-zero return) to report:
 * the first real failure in start order (order: NULL = 0..n-1), else the first
 * cancellation, else n (none). A job that succeeded has no error to report. */
size_t plait_sched_first_error(struct plait_error *const *errs, const size_t *order, size_t n);

#endif
