/* tests/unit/test_scheduler.c - the scheduler (core/scheduler.h): bounded
 * parallelism, start order, cancellation on failure and on interrupt. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/scheduler.h"

#include "core/banned.h"

#define MAX_JOBS 16

/* What the fake jobs share; every field is touched from worker threads. */
struct jobs {
	atomic_int running, max_running, n_started;
	atomic_int started[MAX_JOBS];
	atomic_int returned[MAX_JOBS];
	atomic_int seq[MAX_JOBS]; /* start order: seq[k] = job */
	int sleep_ms;
	int fail; /* this job fails after fail_ms; -1: none */
	int fail_ms;
	int long_job;	    /* this job polls cancel for up to 5 s; -1: none */
	bool fail_silently; /* the failing job sets no error */
};

static void init_jobs(struct jobs *j)
{
	memset(j, 0, sizeof(*j));
	j->fail = -1;
	j->long_job = -1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int job_fn(void *ctx, size_t job, const atomic_int *cancel, struct plait_error **err)
{
	struct jobs *j = ctx;
	int r = 0;
	/* No cmocka asserts here: they cannot jump out of a worker thread. */
	if (job >= MAX_JOBS)
		return plait_error_set(err, PLAIT_E_GENERIC, "job %zu: out of range", job);
	atomic_store(&j->started[job], 1);
	int k = atomic_fetch_add(&j->n_started, 1);
	atomic_store(&j->seq[k], (int)job);
	int now = atomic_fetch_add(&j->running, 1) + 1;
	for (int m = atomic_load(&j->max_running); now > m;)
		if (atomic_compare_exchange_weak(&j->max_running, &m, now))
			break;

	if ((int)job == j->long_job) {
		r = 0;
		for (int i = 0; i < 500; i++) {
			if (*cancel) {
				r = plait_error_set(err, PLAIT_E_CANCELLED, "job %zu: cancelled",
						    job);
				break;
			}
			sleep_ms(10);
		}
	} else if ((int)job == j->fail) {
		sleep_ms(j->fail_ms);
		r = j->fail_silently ? -PLAIT_E_GENERIC
				     : plait_error_set(err, PLAIT_E_GENERIC, "job %zu: boom", job);
	} else {
		sleep_ms(j->sleep_ms);
		/* A job that sees cancel gives up, as real jobs do. */
		if (*cancel)
			r = plait_error_set(err, PLAIT_E_CANCELLED, "job %zu: cancelled", job);
	}
	atomic_fetch_sub(&j->running, 1);
	atomic_store(&j->returned[job], 1);
	return r;
}

static void free_errs(struct plait_error **errs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		plait_error_free(errs[i]);
}

static void test_scheduler__all_succeed(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	j.sleep_ms = 5;
	struct plait_error *errs[8];
	struct plait_sched_opts o = {.max_parallel = 3};
	assert_int_equal(plait_sched_run(8, job_fn, &j, &o, errs), 0);
	for (size_t i = 0; i < 8; i++) {
		assert_null(errs[i]);
		assert_int_equal(atomic_load(&j.started[i]), 1);
		assert_int_equal(atomic_load(&j.returned[i]), 1);
	}
	assert_int_equal(atomic_load(&j.n_started), 8);
}

static void test_scheduler__no_jobs_is_success(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	struct plait_sched_opts o = {0};
	struct plait_error *errs[1] = {NULL};
	assert_int_equal(plait_sched_run(0, job_fn, &j, &o, errs), 0);
	assert_int_equal(atomic_load(&j.n_started), 0);
}

static void test_scheduler__max_parallel_respected(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	j.sleep_ms = 30;
	struct plait_error *errs[12];
	struct plait_sched_opts o = {.max_parallel = 3};
	assert_int_equal(plait_sched_run(12, job_fn, &j, &o, errs), 0);
	int max = atomic_load(&j.max_running);
	if (max > 3)
		fail_msg("%d jobs ran at once, max_parallel is 3", max);
	/* 12 jobs of 30 ms on 3 workers: they do overlap. */
	if (max < 2)
		fail_msg("jobs never overlapped (max %d at once) with max_parallel 3", max);
	assert_int_equal(atomic_load(&j.n_started), 12);
	free_errs(errs, 12);
}

static void test_scheduler__max_parallel_zero_is_bounded_by_default(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	j.sleep_ms = 20;
	struct plait_error *errs[MAX_JOBS];
	struct plait_sched_opts o = {.max_parallel = 0};
	assert_int_equal(plait_sched_run(MAX_JOBS, job_fn, &j, &o, errs), 0);
	int max = atomic_load(&j.max_running);
	size_t bound = plait_sched_default_parallel(MAX_JOBS);
	if ((size_t)max > bound)
		fail_msg("%d jobs ran at once, the default bound is %zu", max, bound);
	assert_int_equal(atomic_load(&j.n_started), MAX_JOBS);
}

static void test_scheduler__order_respected_with_max_parallel_1(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	j.sleep_ms = 2;
	static const size_t order[] = {3, 1, 4, 0, 5, 2};
	struct plait_error *errs[6];
	struct plait_sched_opts o = {.max_parallel = 1, .order = order};
	assert_int_equal(plait_sched_run(6, job_fn, &j, &o, errs), 0);
	assert_int_equal(atomic_load(&j.max_running), 1);
	assert_int_equal(atomic_load(&j.n_started), 6);
	for (size_t k = 0; k < 6; k++)
		if ((size_t)atomic_load(&j.seq[k]) != order[k])
			fail_msg("start %zu: job %d, want job %zu", k, atomic_load(&j.seq[k]),
				 order[k]);
}

static void test_scheduler__no_order_starts_in_index_order(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	struct plait_error *errs[5];
	struct plait_sched_opts o = {.max_parallel = 1};
	assert_int_equal(plait_sched_run(5, job_fn, &j, &o, errs), 0);
	for (int k = 0; k < 5; k++)
		assert_int_equal(atomic_load(&j.seq[k]), k);
}

/* Jobs from..to-1 never started, and each has the cancelled error saying so. */
static void assert_not_started(struct jobs *j, struct plait_error **errs, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		assert_int_equal(atomic_load(&j->started[i]), 0);
		assert_non_null(errs[i]);
		assert_int_equal(errs[i]->code, PLAIT_E_CANCELLED);
		if (!strstr(errs[i]->msg, "not started"))
			fail_msg("job %zu: '%s' does not say 'not started'", i, errs[i]->msg);
	}
}

static void test_scheduler__failure_cancels_others(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	j.long_job = 0;
	j.fail = 1;
	j.fail_ms = 50;
	struct plait_error *errs[5];
	struct plait_sched_opts o = {.max_parallel = 2};
	double t0 = now_s();
	int r = plait_sched_run(5, job_fn, &j, &o, errs);
	double took = now_s() - t0;
	/* The long job gave up on the cancel flag instead of running 5 s. */
	if (took > 3.0)
		fail_msg("took %.1f s: the running job was not cancelled", took);
	assert_int_equal(r, 5);
	/* Every started job had returned by then. */
	assert_int_equal(atomic_load(&j.returned[0]), 1);
	assert_int_equal(atomic_load(&j.returned[1]), 1);

	assert_non_null(errs[1]);
	assert_string_equal(errs[1]->msg, "job 1: boom");
	assert_non_null(errs[0]);
	assert_int_equal(errs[0]->code, PLAIT_E_CANCELLED);
	assert_not_started(&j, errs, 2, 5);
	free_errs(errs, 5);
}

static void test_scheduler__failure_without_message_still_reported(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	j.fail = 0;
	j.fail_silently = true;
	struct plait_error *errs[1];
	struct plait_sched_opts o = {.max_parallel = 1};
	assert_int_equal(plait_sched_run(1, job_fn, &j, &o, errs), 1);
	assert_non_null(errs[0]);
	assert_non_null(errs[0]->msg);
	free_errs(errs, 1);
}

static void test_scheduler__keep_going_lets_others_finish(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	j.sleep_ms = 20;
	j.fail = 1;
	j.fail_ms = 1;
	struct plait_error *errs[6];
	struct plait_sched_opts o = {.max_parallel = 2, .keep_going = true};
	assert_int_equal(plait_sched_run(6, job_fn, &j, &o, errs), 1);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(atomic_load(&j.started[i]), 1);
		if (i == 1) {
			assert_non_null(errs[i]);
			assert_string_equal(errs[i]->msg, "job 1: boom");
		} else if (errs[i]) {
			fail_msg("job %zu: unexpected error '%s' with keep_going", i, errs[i]->msg);
		}
	}
	free_errs(errs, 6);
}

struct interrupter {
	atomic_int *flag;
	int after_ms;
};

static void *interrupt_later(void *arg)
{
	struct interrupter *it = arg;
	sleep_ms(it->after_ms);
	*it->flag = 1;
	return NULL;
}

static void test_scheduler__interrupt_cancels(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	j.long_job = 0;
	atomic_int interrupt = 0;
	struct interrupter it = {&interrupt, 100};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, interrupt_later, &it), 0);
	struct plait_error *errs[4];
	struct plait_sched_opts o = {.max_parallel = 1, .interrupt = &interrupt};
	double t0 = now_s();
	int r = plait_sched_run(4, job_fn, &j, &o, errs);
	double took = now_s() - t0;
	pthread_join(t, NULL);
	if (took > 3.0)
		fail_msg("took %.1f s: the interrupt did not cancel the running job", took);
	assert_int_equal(r, 4);
	assert_int_equal(atomic_load(&j.returned[0]), 1);
	assert_non_null(errs[0]);
	assert_int_equal(errs[0]->code, PLAIT_E_CANCELLED);
	assert_not_started(&j, errs, 1, 4);
	free_errs(errs, 4);
}

/* keep_going is about failures: an interrupt still stops everything. */
static void test_scheduler__interrupt_cancels_even_with_keep_going(void **state)
{
	(void)state;
	struct jobs j;
	init_jobs(&j);
	j.long_job = 0;
	atomic_int interrupt = 0;
	struct interrupter it = {&interrupt, 100};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, interrupt_later, &it), 0);
	struct plait_error *errs[3];
	struct plait_sched_opts o = {
	    .max_parallel = 1, .keep_going = true, .interrupt = &interrupt};
	int r = plait_sched_run(3, job_fn, &j, &o, errs);
	pthread_join(t, NULL);
	assert_int_equal(r, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_non_null(errs[i]);
		assert_int_equal(errs[i]->code, PLAIT_E_CANCELLED);
	}
	assert_int_equal(atomic_load(&j.n_started), 1);
	free_errs(errs, 3);
}

static void test_scheduler__default_parallel_bounds(void **state)
{
	(void)state;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t c = cpus > 0 ? (size_t)cpus : 1;
	assert_int_equal(plait_sched_default_parallel(0), 1);
	assert_int_equal(plait_sched_default_parallel(1), 1);
	assert_int_equal(plait_sched_default_parallel(2), c < 2 ? c : 2);
	assert_int_equal(plait_sched_default_parallel(100000), c);
	assert_int_equal(plait_sched_default_parallel(c), c);
	assert_int_equal(plait_sched_default_parallel(c + 1), c);
}

/* A build that was interrupted has cancelled jobs and maybe some that had
 * already finished: the error reported is a real failure if there is one,
 * else a cancellation, never the (absent) error of a job that succeeded. */
static void test_scheduler__first_error_is_a_failure_else_a_cancellation(void **state)
{
	(void)state;
	struct plait_error *errs[4] = { NULL };
	size_t order[4] = { 2, 0, 3, 1 };
	/* job 2 starts first and succeeded; 0 and 1 were cancelled */
	plait_error_set(&errs[0], PLAIT_E_CANCELLED, "interrupted");
	plait_error_set(&errs[1], PLAIT_E_CANCELLED, "not started: interrupted");
	size_t k = plait_sched_first_error(errs, order, 4);
	if (k != 0)
		fail_msg("order 2,0,3,1 with 2 done and 0, 1 cancelled: reported job %zu, want 0 (the first cancelled)", k);
	/* a real failure wins over every cancellation, wherever it is */
	plait_error_set(&errs[3], PLAIT_E_IO, "exit status 1");
	k = plait_sched_first_error(errs, order, 4);
	if (k != 3)
		fail_msg("job 3 failed, 0 and 1 cancelled: reported job %zu, want 3", k);
	/* no order: the jobs' own order */
	plait_error_set(&errs[1], PLAIT_E_IO, "exit status 2");
	k = plait_sched_first_error(errs, NULL, 4);
	if (k != 1)
		fail_msg("jobs 1 and 3 failed, no order: reported job %zu, want 1", k);
	struct plait_error *none[2] = { NULL, NULL };
	assert_int_equal(plait_sched_first_error(none, NULL, 2), 2);
	for (size_t i = 0; i < 4; i++)
		plait_error_free(errs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scheduler__all_succeed),
	    cmocka_unit_test(test_scheduler__no_jobs_is_success),
	    cmocka_unit_test(test_scheduler__max_parallel_respected),
	    cmocka_unit_test(test_scheduler__max_parallel_zero_is_bounded_by_default),
	    cmocka_unit_test(test_scheduler__order_respected_with_max_parallel_1),
	    cmocka_unit_test(test_scheduler__no_order_starts_in_index_order),
	    cmocka_unit_test(test_scheduler__failure_cancels_others),
	    cmocka_unit_test(test_scheduler__failure_without_message_still_reported),
	    cmocka_unit_test(test_scheduler__keep_going_lets_others_finish),
	    cmocka_unit_test(test_scheduler__interrupt_cancels),
	    cmocka_unit_test(test_scheduler__interrupt_cancels_even_with_keep_going),
	    cmocka_unit_test(test_scheduler__default_parallel_bounds),
	    cmocka_unit_test(test_scheduler__first_error_is_a_failure_else_a_cancellation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
