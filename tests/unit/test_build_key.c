/* Unit tests for build_key_lock (core/build_stage.c): one thread of the
 * process at a time holds a key (the pull and unpack of one base), others
 * wait for it, and a waiter whose cancel flag is set stops waiting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "core/build_internal.h"

#include "core/banned.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

struct waiter {
	const char *key;
	atomic_int *cancel;
	atomic_int got; /* 0 waiting, 1 returned */
	int r;
	double took;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	double t0 = now_s();
	w->r = build_key_lock(w->key, w->cancel);
	w->took = now_s() - t0;
	atomic_store(&w->got, 1);
	if (w->r == 0)
		build_key_unlock(w->key);
	return NULL;
}

static void test_waits_for_the_holder(void **state)
{
	(void)state;
	assert_int_equal(build_key_lock("pull a", NULL), 0);
	struct waiter w = { .key = "pull a" };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	usleep(150 * 1000);
	assert_int_equal(atomic_load(&w.got), 0); /* still waiting: the key is held */
	build_key_unlock("pull a");
	pthread_join(t, NULL);
	assert_int_equal(w.r, 0);
	/* free again once the waiter let go */
	assert_int_equal(build_key_lock("pull a", NULL), 0);
	build_key_unlock("pull a");
}

static void test_other_keys_do_not_wait(void **state)
{
	(void)state;
	assert_int_equal(build_key_lock("pull a", NULL), 0);
	struct waiter w = { .key = "pull b" };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	pthread_join(t, NULL);
	assert_int_equal(w.r, 0);
	assert_true(w.took < 1.0);
	build_key_unlock("pull a");
}

static void test_cancel_ends_the_wait(void **state)
{
	(void)state;
	atomic_int cancel = 0;
	assert_int_equal(build_key_lock("pull c", NULL), 0);
	struct waiter w = { .key = "pull c", .cancel = &cancel };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
	usleep(100 * 1000);
	assert_int_equal(atomic_load(&w.got), 0);
	atomic_store(&cancel, 1);
	/* the holder lets go only after 3 s: a waiter that ignored the cancel
	 * would return 0 after that long */
	for (int i = 0; i < 300 && !atomic_load(&w.got); i++)
		usleep(10 * 1000);
	build_key_unlock("pull c");
	pthread_join(t, NULL);
	assert_int_equal(w.r, -PLAIT_E_CANCELLED);
	assert_true(w.took < 1.0);
	/* the key was not taken by the cancelled waiter */
	assert_int_equal(build_key_lock("pull c", NULL), 0);
	build_key_unlock("pull c");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_waits_for_the_holder),
		cmocka_unit_test(test_other_keys_do_not_wait),
		cmocka_unit_test(test_cancel_ends_the_wait),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
