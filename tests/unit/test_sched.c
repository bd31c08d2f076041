/*
 * Unit tests for the priority scheduler (scheduler/sched.h), driven by a virtual clock:
 * ordering across and within classes, no double queueing, fixed-rate due times, queue
 * depth drops, backoff bounds, per-host limits, class changes, updates, removal while
 * running, settings from the environment, and a 10k-target smoke run checking invariants.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scheduler/sched.h"

#define EINVAL_ 22
#define ENOENT_ 2
#define EEXIST_ 17
#define EBUSY_ 16

static const char *const vars[] = {
	"LIVE_INTERVAL_SECONDS", "IMMINENT_INTERVAL_SECONDS", "COMPLETED_INTERVAL_SECONDS",
	"MAX_QUEUE_DEPTH",       "RETRY_MAX_TRIES",           "RETRY_BASE_MS",
	"RETRY_CAP_MS",          "HOST_CONCURRENCY",          "HOST_MIN_INTERVAL_MS",
	"FAIL_BACKOFF_CAP_SECONDS",
};

static int clear_env(void **state)
{
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	return 0;
}

/* Each test keeps its scheduler here so a failed assertion (longjmp) still frees it. */
static sched_t *S;

static int teardown(void **state)
{
	sched_free(S);
	S = NULL;
	return 0;
}

static sched_t *mk(const sched_opts_t *o)
{
	sched_opts_t d;
	if (!o) {
		sched_opts_init(&d);
		d.seed = 42;
		o = &d;
	}
	S = sched_new(o);
	return S;
}

static sched_opts_t opts(void)
{
	sched_opts_t o;
	sched_opts_init(&o);
	o.seed = 42;
	return o;
}

/* The id sched_next() hands out at now, or NULL; checks ud and id agree. */
static const char *next_id(sched_t *s, uint64_t now)
{
	const char *id = NULL;
	void *ud = sched_next(s, now, &id);
	if (!ud) {
		assert_null(id);
		return NULL;
	}
	assert_non_null(id);
	assert_string_equal((const char *)ud, id);
	return id;
}

static void add(sched_t *s, const char *id, const char *host, enum sched_class k, uint32_t interval,
                uint64_t now)
{
	assert_int_equal(sched_add(s, id, host, k, interval, (void *)id, now), 0);
}

static sched_info_t info(sched_t *s, const char *id)
{
	sched_info_t i;
	assert_int_equal(sched_get_info(s, id, &i), 0);
	return i;
}

static void expect_next(sched_t *s, uint64_t now, const char *want)
{
	const char *got = next_id(s, now);
	if (!want) {
		if (got)
			fail_msg("at %llu expected nothing, got %s", (unsigned long long)now, got);
		return;
	}
	if (!got)
		fail_msg("at %llu expected %s, got nothing", (unsigned long long)now, want);
	assert_string_equal(got, want);
}

/* ---- sched_defer (a target another instance holds) ---- */

static void test_sched__defer_waits_and_keeps_failures(void **state)
{
	sched_opts_t o = opts();
	sched_t *s;
	sched_info_t i;

	o.retry_max_tries = 0;
	s = mk(&o);
	add(s, "a", "h", SCHED_LIVE, 5000, 0);
	expect_next(s, 0, "a");
	assert_int_equal(sched_done(s, "a", 0, 100), 0); /* one failure: due at 5000 */
	expect_next(s, 5000, "a");
	/* held elsewhere: back to waiting until 6500, the failure count untouched */
	assert_int_equal(sched_defer(s, "a", 6500, 5001), 0);
	i = info(s, "a");
	assert_false(i.running);
	assert_int_equal(i.due_ms, 6500);
	assert_int_equal(i.failures, 1);
	expect_next(s, 6499, NULL);
	/* the host slot was given back: another target of the host may start */
	add(s, "b", "h", SCHED_LIVE, 5000, 6000);
	expect_next(s, 6000, "b");
	expect_next(s, 6500, "a");
	/* the run that happened started at 6500: the interval counts from there */
	assert_int_equal(sched_done(s, "a", 1, 6600), 0);
	assert_int_equal(info(s, "a").due_ms, 11500);
	/* a due time in the past means now */
	expect_next(s, 11500, "a");
	assert_int_equal(sched_defer(s, "a", 3, 11600), 0);
	assert_int_equal(info(s, "a").due_ms, 11600);
	/* not running: -ENOENT */
	assert_int_equal(sched_defer(s, "a", 20000, 11700), -ENOENT_);
	assert_int_equal(sched_defer(s, "nope", 20000, 11700), -ENOENT_);
}

/* A target parked far away (not ours) runs at once when handed over; sched_set_due moves a
 * waiting target either way and leaves a running one alone. */
static void test_sched__set_due_hands_over(void **state)
{
	sched_t *s = mk(NULL);

	add(s, "a", "h", SCHED_LIVE, 5000, 0);
	add(s, "b", "h", SCHED_LIVE, 5000, 0);
	expect_next(s, 0, "a");
	assert_int_equal(sched_defer(s, "a", 3600000, 1), 0); /* parked */
	expect_next(s, 0, "b");
	assert_int_equal(sched_done(s, "b", 1, 10), 0);
	expect_next(s, 100, NULL);
	assert_int_equal(sched_set_due(s, "a", 0, 200), 0); /* handed over: due now (200) */
	assert_int_equal(info(s, "a").due_ms, 200);
	expect_next(s, 200, "a");
	/* running: untouched */
	assert_int_equal(sched_set_due(s, "a", 0, 300), -EBUSY_);
	assert_int_equal(sched_done(s, "a", 1, 400), 0);
	/* later too */
	assert_int_equal(sched_remove(s, "b"), 0);
	assert_int_equal(sched_set_due(s, "a", 9000, 500), 0);
	expect_next(s, 8999, NULL);
	expect_next(s, 9000, "a");
	assert_int_equal(sched_set_due(s, "nope", 0, 0), -ENOENT_);
}

/* ---- ordering ---- */

static void test_sched__higher_class_first(void **state)
{
	sched_t *s = mk(NULL);
	add(s, "c1", "", SCHED_COMPLETED, 0, 0);
	add(s, "i1", "", SCHED_IMMINENT, 0, 0);
	add(s, "l1", "", SCHED_LIVE, 0, 0);
	add(s, "c2", "", SCHED_COMPLETED, 0, 0);
	expect_next(s, 0, "l1");
	expect_next(s, 0, "i1");
	expect_next(s, 0, "c1");
	expect_next(s, 0, "c2");
	expect_next(s, 0, NULL);
	assert_int_equal(sched_count(s), 4);
}

static void test_sched__earliest_due_first_within_class(void **state)
{
	sched_t *s = mk(NULL);
	/* x due at 300, y at 100, z at 200 after one run each */
	add(s, "x", "", SCHED_LIVE, 300, 0);
	add(s, "y", "", SCHED_LIVE, 100, 0);
	add(s, "z", "", SCHED_LIVE, 200, 0);
	expect_next(s, 0, "x"); /* equal due: in order of adding */
	expect_next(s, 0, "y");
	expect_next(s, 0, "z");
	assert_int_equal(sched_done(s, "x", 1, 0), 0);
	assert_int_equal(sched_done(s, "y", 1, 0), 0);
	assert_int_equal(sched_done(s, "z", 1, 0), 0);
	/* a higher class becoming due later still goes first */
	add(s, "later", "", SCHED_COMPLETED, 0, 50);
	expect_next(s, 400, "y");
	expect_next(s, 400, "z");
	expect_next(s, 400, "x");
	expect_next(s, 400, "later");
	expect_next(s, 400, NULL);
}

static void test_sched__running_never_handed_out_twice(void **state)
{
	sched_t *s = mk(NULL);
	sched_info_t i;

	add(s, "a", "", SCHED_LIVE, 1000, 0);
	assert_int_equal(sched_add(s, "a", "", SCHED_LIVE, 0, NULL, 0), -EEXIST_);
	expect_next(s, 0, "a");
	assert_int_equal(sched_add(s, "a", "", SCHED_COMPLETED, 0, NULL, 0), -EEXIST_);
	i = info(s, "a");
	assert_true(i.running);
	assert_false(i.queued);
	/* long past its interval and still running: not handed out again */
	expect_next(s, 5000, NULL);
	expect_next(s, 100000, NULL);
	assert_int_equal(sched_next_wakeup(s, 100000), UINT64_MAX);
	assert_int_equal(sched_done(s, "a", 1, 100000), 0);
	assert_int_equal(sched_done(s, "a", 1, 100000), -ENOENT_); /* not running any more */
	expect_next(s, 100000, "a");
	expect_next(s, 100000, NULL);
}

static void test_sched__fixed_rate_next_due(void **state)
{
	sched_t *s = mk(NULL);

	add(s, "a", "", SCHED_LIVE, 0, 0);
	assert_int_equal(info(s, "a").interval_ms, 5000);
	assert_int_equal(sched_next_wakeup(s, 0), 0);
	expect_next(s, 0, "a");
	assert_int_equal(sched_done(s, "a", 1, 1200), 0);
	assert_int_equal(info(s, "a").due_ms, 5000); /* start + interval, not done + interval */
	assert_int_equal(sched_next_wakeup(s, 1200), 5000);
	expect_next(s, 4999, NULL);
	expect_next(s, 5000, "a");
	/* a run longer than the interval: due at once, no catch-up burst */
	assert_int_equal(sched_done(s, "a", 1, 17000), 0);
	assert_int_equal(info(s, "a").due_ms, 17000);
	expect_next(s, 17000, "a");
	assert_int_equal(sched_done(s, "a", 1, 17001), 0);
	assert_int_equal(info(s, "a").due_ms, 22000);
	expect_next(s, 21999, NULL);
	/* interval override */
	add(s, "b", "", SCHED_COMPLETED, 700, 30000);
	expect_next(s, 30000, "a");
	expect_next(s, 30000, "b");
	assert_int_equal(sched_done(s, "b", 1, 30001), 0);
	assert_int_equal(info(s, "b").due_ms, 30700);
}

/* ---- queue depth ---- */

static void test_sched__drops_lowest_class_first(void **state)
{
	sched_opts_t o = opts();
	sched_stats_t st;
	sched_info_t i;

	o.max_queue_depth = 2;
	sched_t *s = mk(&o);
	add(s, "c1", "", SCHED_COMPLETED, 0, 0);
	add(s, "c2", "", SCHED_COMPLETED, 0, 0);
	sched_get_stats(s, 0, &st);
	assert_int_equal(st.queued[SCHED_COMPLETED], 2);

	/* a live newcomer: the latest-due queued target of the lowest class goes */
	add(s, "L", "", SCHED_LIVE, 0, 1);
	sched_get_stats(s, 1, &st);
	assert_int_equal(st.queued[SCHED_LIVE], 1);
	assert_int_equal(st.queued[SCHED_COMPLETED], 1);
	assert_int_equal(st.drops[SCHED_COMPLETED], 1);
	i = info(s, "c2");
	assert_false(i.queued);
	assert_int_equal(i.due_ms, 1 + 900000); /* due again after its interval */
	assert_true(info(s, "c1").queued);

	/* a newcomer of the lowest queued class itself is dropped */
	add(s, "c3", "", SCHED_COMPLETED, 0, 2);
	sched_get_stats(s, 2, &st);
	assert_int_equal(st.drops[SCHED_COMPLETED], 2);
	assert_false(info(s, "c3").queued);
	assert_int_equal(info(s, "c3").due_ms, 2 + 900000);

	/* imminent newcomer displaces c1 */
	add(s, "i1", "", SCHED_IMMINENT, 0, 3);
	sched_get_stats(s, 3, &st);
	assert_int_equal(st.drops[SCHED_COMPLETED], 3);
	assert_int_equal(st.queued[SCHED_IMMINENT], 1);
	assert_int_equal(st.queued[SCHED_COMPLETED], 0);

	/* lowest queued is imminent now: completed and imminent newcomers are dropped */
	add(s, "c4", "", SCHED_COMPLETED, 0, 4);
	add(s, "i2", "", SCHED_IMMINENT, 0, 4);
	sched_get_stats(s, 4, &st);
	assert_int_equal(st.drops[SCHED_COMPLETED], 4);
	assert_int_equal(st.drops[SCHED_IMMINENT], 1);
	assert_int_equal(info(s, "i2").due_ms, 4 + 60000);
	assert_int_equal(st.drops[SCHED_LIVE], 0);

	/* a second live one displaces the imminent one; a third live one is dropped */
	add(s, "L2", "", SCHED_LIVE, 0, 5);
	add(s, "L3", "", SCHED_LIVE, 0, 5);
	sched_get_stats(s, 5, &st);
	assert_int_equal(st.queued[SCHED_LIVE], 2);
	assert_int_equal(st.drops[SCHED_IMMINENT], 2);
	assert_int_equal(st.drops[SCHED_LIVE], 1);
	assert_int_equal(st.targets[SCHED_LIVE], 3);
	assert_int_equal(st.targets[SCHED_IMMINENT], 2);
	assert_int_equal(st.targets[SCHED_COMPLETED], 4);

	/* the queue drains in order; running targets do not count against the depth */
	expect_next(s, 5, "L");
	expect_next(s, 5, "L2");
	expect_next(s, 5, NULL);
	assert_int_equal(sched_next_wakeup(s, 5), 5 + 5000); /* L3 */
}

/* ---- retries ---- */

static void test_sched__backoff_bounds_and_reset(void **state)
{
	sched_opts_t o = opts();
	const unsigned base = 1000, cap = 5000, tries = 4;
	uint64_t lo_half = 0, hi_half = 0;

	o.retry_base_ms = base;
	o.retry_cap_ms = cap;
	o.retry_max_tries = tries;
	for (uint64_t seed = 1; seed <= 300; seed++) {
		uint64_t now = 0;
		o.seed = seed;
		sched_t *s = mk(&o);
		add(s, "a", "", SCHED_LIVE, 0, 0);
		for (unsigned k = 1; k <= tries; k++) {
			expect_next(s, now, "a");
			assert_int_equal(sched_done(s, "a", 0, now), 0);
			sched_info_t i = info(s, "a");
			uint64_t bound = (uint64_t)base << (k - 1);
			if (bound > cap)
				bound = cap;
			assert_true(i.due_ms >= now);
			assert_true(i.due_ms - now <= bound);
			if (i.due_ms - now < bound / 2)
				lo_half++;
			else
				hi_half++;
			assert_int_equal(i.failures, k);
			assert_int_equal(i.tries, k);
			now = i.due_ms;
		}
		/* retries exhausted: the interval applies (start + 5000), failures keep counting */
		expect_next(s, now, "a");
		uint64_t start = now;
		assert_int_equal(sched_done(s, "a", 0, now + 10), 0);
		assert_int_equal(info(s, "a").due_ms, start + 5000);
		assert_int_equal(info(s, "a").failures, tries + 1);
		now = start + 5000;
		expect_next(s, now, "a");
		assert_int_equal(sched_done(s, "a", 0, now), 0);
		/* the second failed run backs off across intervals: 2 x 5000 less jitter */
		assert_true(info(s, "a").due_ms >= now + 7500);
		assert_true(info(s, "a").due_ms <= now + 10000);
		assert_int_equal(info(s, "a").failures, tries + 2);
		assert_int_equal(info(s, "a").tries, tries);
		/* success resets; the next failure starts a new retry run */
		now = info(s, "a").due_ms;
		expect_next(s, now, "a");
		assert_int_equal(sched_done(s, "a", 1, now), 0);
		assert_int_equal(info(s, "a").failures, 0);
		assert_int_equal(info(s, "a").tries, 0);
		now += 5000;
		expect_next(s, now, "a");
		assert_int_equal(sched_done(s, "a", 0, now), 0);
		assert_int_equal(info(s, "a").tries, 1);
		assert_true(info(s, "a").due_ms - now <= base);
		sched_stats_t st;
		sched_get_stats(s, now, &st);
		assert_int_equal(st.retries, tries + 1);
		teardown(NULL);
	}
	/* full jitter: both halves of the range are used */
	assert_true(lo_half > 100);
	assert_true(hi_half > 100);
}

/* A target whose runs keep failing is put off more each time, doubling from its interval
 * up to FAIL_BACKOFF_CAP (less a quarter of jitter), and is never retried in between; a
 * success resets it. The counts say how many fail and back off. */
static void test_sched__failing_target_backs_off_across_intervals(void **state)
{
	sched_opts_t o = opts();
	uint64_t now = 0, d_expect = 5000;
	sched_stats_t st;

	o.retry_max_tries = 1;
	o.fail_backoff_cap_ms = 60000;
	sched_t *s = mk(&o);
	add(s, "a", "", SCHED_LIVE, 0, 0);
	expect_next(s, 0, "a");
	assert_int_equal(sched_done(s, "a", 0, 0), 0); /* the one retry */
	now = info(s, "a").due_ms;
	expect_next(s, now, "a");
	assert_int_equal(sched_done(s, "a", 0, now), 0); /* run 1 failed: the interval */
	assert_int_equal(info(s, "a").failed_runs, 1);
	assert_false(info(s, "a").backing_off);
	assert_int_equal(info(s, "a").due_ms, now + 5000);
	for (unsigned run = 2; run <= 8; run++) {
		now = info(s, "a").due_ms;
		expect_next(s, now, "a");
		assert_int_equal(sched_done(s, "a", 0, now), 0);
		d_expect = d_expect * 2 > 60000 ? 60000 : d_expect * 2;
		sched_info_t i = info(s, "a");
		assert_int_equal(i.failed_runs, run);
		assert_int_equal(i.tries, 1); /* no retries while backing off */
		assert_true(i.backing_off);
		if (i.due_ms < now + d_expect - d_expect / 4 || i.due_ms > now + d_expect)
			fail_msg("run %u: due in %llu ms, expected %llu less up to a quarter", run,
			         (unsigned long long)(i.due_ms - now), (unsigned long long)d_expect);
	}
	sched_get_stats(s, now, &st);
	assert_int_equal(st.failing, 1);
	assert_int_equal(st.backing_off, 1);
	assert_int_equal(st.backoffs, 7);
	/* a class change keeps a backoff's due time, like a retry's */
	uint64_t due = info(s, "a").due_ms;
	assert_int_equal(sched_set_class(s, "a", SCHED_IMMINENT, now), 0);
	assert_int_equal(sched_set_class(s, "a", SCHED_LIVE, now), 0);
	assert_int_equal(info(s, "a").due_ms, due);
	/* success resets: the interval again, no longer failing */
	now = due;
	expect_next(s, now, "a");
	assert_int_equal(sched_done(s, "a", 1, now + 100), 0);
	assert_int_equal(info(s, "a").due_ms, now + 5000);
	assert_int_equal(info(s, "a").failed_runs, 0);
	sched_get_stats(s, now, &st);
	assert_int_equal(st.failing, 0);
	assert_int_equal(st.backing_off, 0);
	/* removing a failing target takes it out of the counts */
	expect_next(s, now + 5000, "a");
	assert_int_equal(sched_done(s, "a", 0, now + 5000), 0);
	sched_get_stats(s, now + 5000, &st);
	assert_int_equal(st.failing, 1);
	assert_int_equal(sched_remove(s, "a"), 0);
	sched_get_stats(s, now + 5000, &st);
	assert_int_equal(st.failing, 0);
}

/* With the cap at or below the interval (or 0), a failing target keeps its fixed rate. */
static void test_sched__no_backoff_when_cap_is_below_interval(void **state)
{
	sched_opts_t o = opts();
	o.retry_max_tries = 0;
	o.fail_backoff_cap_ms = 0;
	sched_t *s = mk(&o);
	uint64_t now = 0;
	add(s, "a", "", SCHED_LIVE, 0, 0);
	for (int run = 1; run <= 5; run++) {
		expect_next(s, now, "a");
		assert_int_equal(sched_done(s, "a", 0, now + 10), 0);
		assert_int_equal(info(s, "a").due_ms, now + 5000);
		now += 5000;
	}
}

/* SCHED_NEXT_HEALTHY skips failing targets, and its wake-up time ignores them. */
static void test_sched__next_healthy_skips_failing(void **state)
{
	sched_opts_t o = opts();
	int failing = -1;
	const char *id = NULL;

	o.retry_max_tries = 0;
	sched_t *s = mk(&o);
	add(s, "bad", "", SCHED_LIVE, 0, 0);
	expect_next(s, 0, "bad");
	assert_int_equal(sched_done(s, "bad", 0, 0), 0); /* failing, due at 5000 */
	add(s, "good", "", SCHED_IMMINENT, 0, 4000);
	/* both queued at 5000: the live failing one comes first without the flag */
	assert_int_equal(sched_next_wakeup_ex(s, 5000, SCHED_NEXT_HEALTHY), 5000);
	assert_non_null(sched_next_ex(s, 5000, SCHED_NEXT_HEALTHY, &id, &failing));
	assert_string_equal(id, "good");
	assert_int_equal(failing, 0);
	/* only the failing one is queued: nothing to start healthy, no wake-up for it */
	assert_null(sched_next_ex(s, 5000, SCHED_NEXT_HEALTHY, &id, &failing));
	assert_int_equal(sched_next_wakeup_ex(s, 5000, SCHED_NEXT_HEALTHY), UINT64_MAX);
	assert_int_equal(sched_next_wakeup(s, 5000), 5000);
	assert_non_null(sched_next_ex(s, 5000, 0, &id, &failing));
	assert_string_equal(id, "bad");
	assert_int_equal(failing, 1);
}

static void test_sched__no_retries_when_max_tries_zero(void **state)
{
	sched_opts_t o = opts();
	o.retry_max_tries = 0;
	sched_t *s = mk(&o);
	add(s, "a", "", SCHED_IMMINENT, 0, 0);
	expect_next(s, 0, "a");
	assert_int_equal(sched_done(s, "a", 0, 10), 0);
	assert_int_equal(info(s, "a").due_ms, 60000);
	assert_int_equal(info(s, "a").failures, 1);
	assert_int_equal(info(s, "a").tries, 0);
}

static void test_sched__backoff_cap_with_many_tries(void **state)
{
	sched_opts_t o = opts();
	o.retry_max_tries = 100;
	o.retry_base_ms = 3600000;
	o.retry_cap_ms = 86400000;
	sched_t *s = mk(&o);
	uint64_t now = 0;
	add(s, "a", "", SCHED_LIVE, 0, 0);
	for (unsigned k = 1; k <= 100; k++) { /* base * 2^99 must not overflow */
		expect_next(s, now, "a");
		assert_int_equal(sched_done(s, "a", 0, now), 0);
		assert_true(info(s, "a").due_ms - now <= 86400000);
		now = info(s, "a").due_ms;
	}
}

/* ---- hosts ---- */

static void test_sched__host_concurrency(void **state)
{
	sched_opts_t o = opts();
	o.host_concurrency = 2;
	sched_t *s = mk(&o);
	add(s, "a", "h", SCHED_LIVE, 0, 0);
	add(s, "b", "h", SCHED_LIVE, 0, 0);
	add(s, "c", "h", SCHED_LIVE, 0, 0);
	add(s, "d", "", SCHED_COMPLETED, 0, 0);
	add(s, "e", "g", SCHED_COMPLETED, 0, 0);
	expect_next(s, 0, "a");
	expect_next(s, 0, "b");
	expect_next(s, 0, "d"); /* c's host is full: lower classes on other hosts go */
	expect_next(s, 0, "e");
	expect_next(s, 0, NULL);
	/* blocked by concurrency only: a sched_done() is what unblocks it */
	assert_int_equal(sched_next_wakeup(s, 0), UINT64_MAX);
	assert_true(info(s, "c").queued);
	assert_int_equal(sched_done(s, "a", 1, 10), 0);
	assert_int_equal(sched_next_wakeup(s, 10), 10);
	expect_next(s, 10, "c");
	expect_next(s, 10, NULL);
}

static void test_sched__host_min_interval(void **state)
{
	sched_opts_t o = opts();
	o.host_min_interval_ms = 1000;
	sched_t *s = mk(&o);
	assert_int_equal(sched_next_wakeup(s, 0), UINT64_MAX);
	add(s, "a", "h", SCHED_LIVE, 0, 0);
	add(s, "b", "h", SCHED_LIVE, 0, 0);
	add(s, "c", "h", SCHED_LIVE, 0, 300);
	expect_next(s, 0, "a");
	expect_next(s, 0, NULL);
	assert_int_equal(sched_next_wakeup(s, 0), 300);    /* c's due time comes first */
	assert_int_equal(sched_next_wakeup(s, 300), 1000); /* then the host's expiry */
	expect_next(s, 999, NULL);
	expect_next(s, 1000, "b");
	assert_int_equal(sched_next_wakeup(s, 1000), 2000);
	expect_next(s, 1500, NULL);
	expect_next(s, 2000, "c");
	assert_int_equal(sched_next_wakeup(s, 2000), UINT64_MAX); /* all three running */
	/* the min interval counts from the last start even after done */
	assert_int_equal(sched_done(s, "a", 1, 2100), 0);
	assert_int_equal(sched_next_wakeup(s, 2100), 5000);
	expect_next(s, 5000, "a");
}

/* ---- class changes and updates ---- */

static void test_sched__set_class_idle_and_running(void **state)
{
	sched_t *s = mk(NULL);
	sched_stats_t st;

	add(s, "a", "", SCHED_LIVE, 0, 0);
	expect_next(s, 0, "a");
	assert_int_equal(sched_done(s, "a", 1, 100), 0);
	assert_int_equal(info(s, "a").due_ms, 5000);
	/* idle: the due time follows the new class's interval from the last start */
	assert_int_equal(sched_set_class(s, "a", SCHED_COMPLETED, 200), 0);
	assert_int_equal(info(s, "a").klass, SCHED_COMPLETED);
	assert_int_equal(info(s, "a").due_ms, 900000);
	sched_get_stats(s, 200, &st);
	assert_int_equal(st.targets[SCHED_LIVE], 0);
	assert_int_equal(st.targets[SCHED_COMPLETED], 1);
	assert_int_equal(sched_set_class(s, "a", SCHED_LIVE, 300), 0);
	assert_int_equal(info(s, "a").due_ms, 5000);
	assert_int_equal(sched_set_class(s, "a", SCHED_IMMINENT, 70000), 0);
	assert_int_equal(info(s, "a").due_ms, 70000); /* overdue: at once, not in the past */

	/* running: stays running; sched_done uses the new class */
	expect_next(s, 70000, "a");
	assert_int_equal(sched_set_class(s, "a", SCHED_COMPLETED, 70500), 0);
	assert_true(info(s, "a").running);
	expect_next(s, 70500, NULL);
	assert_int_equal(sched_done(s, "a", 1, 71000), 0);
	assert_int_equal(info(s, "a").due_ms, 70000 + 900000);

	/* queued: moves to the new class's queue, or back to waiting if no longer due */
	add(s, "q", "", SCHED_COMPLETED, 0, 100000);
	add(s, "r", "", SCHED_LIVE, 0, 100000);
	sched_get_stats(s, 100000, &st);
	assert_int_equal(st.queued[SCHED_COMPLETED], 1);
	assert_int_equal(sched_set_class(s, "q", SCHED_LIVE, 100000), 0);
	sched_get_stats(s, 100000, &st);
	assert_int_equal(st.queued[SCHED_LIVE], 2);
	assert_int_equal(st.queued[SCHED_COMPLETED], 0);
	expect_next(s, 100000, "q"); /* added first, same due */
	assert_int_equal(sched_done(s, "q", 1, 100000), 0);
	expect_next(s, 105000, "r");
	expect_next(s, 105000, "q");
	assert_int_equal(sched_done(s, "q", 1, 105000), 0);
	sched_get_stats(s, 110000, &st);
	assert_true(info(s, "q").queued);
	assert_int_equal(sched_set_class(s, "q", SCHED_COMPLETED, 110000), 0);
	assert_false(info(s, "q").queued);
	assert_int_equal(info(s, "q").due_ms, 105000 + 900000);

	assert_int_equal(sched_set_class(s, "nope", SCHED_LIVE, 0), -ENOENT_);
	assert_int_equal(sched_set_class(s, "q", (enum sched_class)7, 0), -EINVAL_);
}

static void test_sched__update_keeps_state(void **state)
{
	sched_opts_t o = opts();
	o.host_concurrency = 1;
	sched_t *s = mk(&o);
	int ud2 = 0;

	add(s, "a", "h", SCHED_LIVE, 10000, 0);
	expect_next(s, 0, "a");
	assert_int_equal(sched_done(s, "a", 0, 0), 0); /* one failure */
	uint64_t retry_due = info(s, "a").due_ms;
	/* a longer interval keeps the due time and the failure count */
	assert_int_equal(sched_update(s, "a", "h", SCHED_LIVE, 20000, (void *)"a", 1), 0);
	assert_int_equal(info(s, "a").due_ms, retry_due);
	assert_int_equal(info(s, "a").failures, 1);
	assert_int_equal(info(s, "a").interval_ms, 20000);
	expect_next(s, retry_due, "a");
	assert_int_equal(sched_done(s, "a", 1, retry_due), 0);
	assert_int_equal(info(s, "a").due_ms, retry_due + 20000);
	/* a shorter interval brings it forward */
	assert_int_equal(sched_update(s, "a", "h", SCHED_LIVE, 3000, (void *)"a", retry_due + 1),
	                 0);
	assert_int_equal(info(s, "a").due_ms, retry_due + 3000);
	/* interval 0: the class default */
	assert_int_equal(sched_update(s, "a", "h", SCHED_IMMINENT, 0, (void *)"a", retry_due + 1),
	                 0);
	assert_int_equal(info(s, "a").interval_ms, 60000);
	assert_int_equal(info(s, "a").due_ms, retry_due + 3000);

	/* while running: stays running; the run keeps counting on the host it started on */
	uint64_t t = retry_due + 3000;
	expect_next(s, t, "a");
	assert_int_equal(sched_update(s, "a", "g", SCHED_LIVE, 0, &ud2, t), 0);
	assert_true(info(s, "a").running);
	assert_ptr_equal(info(s, "a").ud, &ud2);
	add(s, "b", "h", SCHED_LIVE, 0, t);
	add(s, "c", "g", SCHED_LIVE, 0, t);
	expect_next(s, t, "c"); /* b waits: a's run still holds h's only slot */
	expect_next(s, t, NULL);
	assert_int_equal(sched_update(s, "a", "h", SCHED_LIVE, 0, (void *)"a", t), 0);
	assert_int_equal(sched_done(s, "a", 1, t + 1), 0);
	expect_next(s, t + 1, "b");
	assert_int_equal(info(s, "a").due_ms, t + 5000);

	assert_int_equal(sched_update(s, "nope", "", SCHED_LIVE, 0, NULL, 0), -ENOENT_);
	assert_int_equal(sched_update(s, "a", "", (enum sched_class) - 1, 0, NULL, 0), -EINVAL_);
}

static void test_sched__remove_while_running(void **state)
{
	sched_opts_t o = opts();
	o.host_concurrency = 1;
	sched_t *s = mk(&o);

	add(s, "a", "h", SCHED_LIVE, 0, 0);
	add(s, "b", "h", SCHED_LIVE, 0, 0);
	expect_next(s, 0, "a");
	expect_next(s, 0, NULL);
	assert_int_equal(sched_remove(s, "a"), 0);
	assert_int_equal(sched_done(s, "a", 1, 5), -ENOENT_);
	assert_int_equal(sched_get_info(s, "a", &(sched_info_t){ 0 }), -ENOENT_);
	/* the host slot is released with it */
	expect_next(s, 5, "b");
	/* re-added: a new target, due at once, not running */
	add(s, "a", "", SCHED_LIVE, 0, 6);
	assert_int_equal(sched_done(s, "a", 1, 6), -ENOENT_);
	expect_next(s, 6, "a");
	assert_int_equal(sched_remove(s, "b"), 0);
	assert_int_equal(sched_remove(s, "b"), -ENOENT_);
	/* removing waiting and queued targets */
	add(s, "w", "", SCHED_LIVE, 0, 6);
	add(s, "x", "", SCHED_LIVE, 0, 6);
	sched_stats_t st;
	sched_get_stats(s, 6, &st);
	assert_int_equal(st.queued[SCHED_LIVE], 2);
	assert_int_equal(st.running, 1);
	assert_int_equal(sched_remove(s, "w"), 0);
	assert_int_equal(sched_done(s, "a", 1, 7), 0);
	assert_int_equal(sched_remove(s, "a"), 0); /* waiting */
	sched_get_stats(s, 7, &st);
	assert_int_equal(st.queued[SCHED_LIVE], 1);
	assert_int_equal(st.running, 0);
	assert_int_equal(sched_count(s), 1);
	expect_next(s, 7, "x");
	expect_next(s, 100000, NULL);
}

static void test_sched__bad_arguments(void **state)
{
	sched_t *s = mk(NULL);
	char long_id[2000];

	memset(long_id, 'x', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	assert_int_equal(sched_add(s, "", "", SCHED_LIVE, 0, NULL, 0), -EINVAL_);
	assert_int_equal(sched_add(s, NULL, "", SCHED_LIVE, 0, NULL, 0), -EINVAL_);
	assert_int_equal(sched_add(s, long_id, "", SCHED_LIVE, 0, NULL, 0), -EINVAL_);
	assert_int_equal(sched_add(s, "a", "", SCHED_NCLASSES, 0, NULL, 0), -EINVAL_);
	assert_int_equal(sched_add(s, "a", NULL, SCHED_LIVE, 0, (void *)"a", 0), 0); /* no host */
	assert_int_equal(sched_remove(s, NULL), -ENOENT_);
	assert_int_equal(sched_count(s), 1);
}

/* ---- environment ---- */

static void test_sched__env_defaults_and_good_values(void **state)
{
	sched_opts_t o;
	errlist_t e;

	errlist_init(&e);
	sched_opts_init(&o);
	assert_int_equal(sched_opts_from_env(&o, &e), 0);
	assert_int_equal(o.interval_ms[SCHED_LIVE], 5000);
	assert_int_equal(o.interval_ms[SCHED_IMMINENT], 60000);
	assert_int_equal(o.interval_ms[SCHED_COMPLETED], 900000);
	assert_int_equal(o.max_queue_depth, 1000);
	assert_int_equal(o.retry_max_tries, 3);
	assert_int_equal(o.retry_base_ms, 1000);
	assert_int_equal(o.retry_cap_ms, 60000);
	assert_int_equal(o.host_concurrency, 4);
	assert_int_equal(o.host_min_interval_ms, 0);
	assert_int_equal(o.fail_backoff_cap_ms, 300000);

	setenv("LIVE_INTERVAL_SECONDS", "0.5", 1);
	setenv("IMMINENT_INTERVAL_SECONDS", "0.1", 1);
	setenv("COMPLETED_INTERVAL_SECONDS", "86400", 1);
	setenv("MAX_QUEUE_DEPTH", "1000000", 1);
	setenv("RETRY_MAX_TRIES", "0", 1);
	setenv("RETRY_BASE_MS", "250", 1);
	setenv("RETRY_CAP_MS", "250", 1);
	setenv("HOST_CONCURRENCY", "1024", 1);
	setenv("HOST_MIN_INTERVAL_MS", "3600000", 1);
	setenv("FAIL_BACKOFF_CAP_SECONDS", "0", 1);
	sched_opts_init(&o);
	assert_int_equal(sched_opts_from_env(&o, &e), 0);
	assert_string_equal(errlist_text(&e), "");
	assert_int_equal(o.interval_ms[SCHED_LIVE], 500);
	assert_int_equal(o.interval_ms[SCHED_IMMINENT], 100);
	assert_int_equal(o.interval_ms[SCHED_COMPLETED], 86400000);
	assert_int_equal(o.max_queue_depth, 1000000);
	assert_int_equal(o.retry_max_tries, 0);
	assert_int_equal(o.retry_base_ms, 250);
	assert_int_equal(o.retry_cap_ms, 250);
	assert_int_equal(o.host_concurrency, 1024);
	assert_int_equal(o.host_min_interval_ms, 3600000);
	assert_int_equal(o.fail_backoff_cap_ms, 0);
	errlist_release(&e);
}

static void expect_bad(const char *var, const char *value, const char *expected_part)
{
	sched_opts_t o;
	errlist_t e;
	char needle[256];

	clear_env(NULL);
	setenv(var, value, 1);
	errlist_init(&e);
	sched_opts_init(&o);
	int rc = sched_opts_from_env(&o, &e);
	snprintf(needle, sizeof needle, "%s='%s'", var, value);
	if (rc != -EINVAL_ || !strstr(errlist_text(&e), needle) ||
	    !strstr(errlist_text(&e), expected_part) || e.count != 1) {
		char msg[1024];
		snprintf(msg, sizeof msg, "%s='%s': rc %d, errors: %s", var, value, rc,
		         errlist_text(&e));
		errlist_release(&e);
		fail_msg("%s", msg);
	}
	errlist_release(&e);
}

static void test_sched__env_bad_values(void **state)
{
	static const char *const secs[] = { "LIVE_INTERVAL_SECONDS", "IMMINENT_INTERVAL_SECONDS",
		                            "COMPLETED_INTERVAL_SECONDS" };
	static const char *const bad_secs[] = { "",    "0",   "0.09",  "86400.5", "-1",
		                                "5s",  " 5",  "5 ",    "1e3",     "0x10",
		                                "inf", "nan", "1.2.3", ".",       "+5" };
	for (size_t i = 0; i < 3; i++)
		for (size_t j = 0; j < sizeof bad_secs / sizeof bad_secs[0]; j++)
			expect_bad(secs[i], bad_secs[j], "seconds from 0.1 to 86400");

	expect_bad("MAX_QUEUE_DEPTH", "0", "from 1 to 1000000");
	expect_bad("MAX_QUEUE_DEPTH", "1000001", "from 1 to 1000000");
	expect_bad("MAX_QUEUE_DEPTH", "", "from 1 to 1000000");
	expect_bad("MAX_QUEUE_DEPTH", "10x", "from 1 to 1000000");
	expect_bad("MAX_QUEUE_DEPTH", "-5", "from 1 to 1000000");
	expect_bad("MAX_QUEUE_DEPTH", "99999999999999999999999", "from 1 to 1000000");
	expect_bad("RETRY_MAX_TRIES", "101", "from 0 to 100");
	expect_bad("RETRY_MAX_TRIES", "2.5", "from 0 to 100");
	expect_bad("RETRY_BASE_MS", "0", "from 1 to 3600000");
	expect_bad("RETRY_BASE_MS", "3600001", "from 1 to 3600000");
	expect_bad("RETRY_CAP_MS", "86400001", "to 86400000");
	expect_bad("RETRY_CAP_MS", "999", "from RETRY_BASE_MS (1000) to 86400000");
	expect_bad("HOST_CONCURRENCY", "0", "from 1 to 1024");
	expect_bad("HOST_CONCURRENCY", "1025", "from 1 to 1024");
	expect_bad("HOST_MIN_INTERVAL_MS", "3600001", "from 0 to 3600000");
	expect_bad("HOST_MIN_INTERVAL_MS", "-0", "from 0 to 3600000");
	expect_bad("FAIL_BACKOFF_CAP_SECONDS", "86401", "seconds from 0 to 86400");
	expect_bad("FAIL_BACKOFF_CAP_SECONDS", "5m", "seconds from 0 to 86400");
}

static void test_sched__env_every_bad_value_is_listed(void **state)
{
	sched_opts_t o;
	errlist_t e;

	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		setenv(vars[i], "bad", 1);
	errlist_init(&e);
	sched_opts_init(&o);
	assert_int_equal(sched_opts_from_env(&o, &e), -EINVAL_);
	assert_int_equal(e.count, sizeof vars / sizeof vars[0]);
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		char needle[128];
		snprintf(needle, sizeof needle, "%s='bad': expected", vars[i]);
		assert_non_null(strstr(errlist_text(&e), needle));
	}
	/* bad values leave the defaults */
	assert_int_equal(o.interval_ms[SCHED_LIVE], 5000);
	assert_int_equal(o.max_queue_depth, 1000);
	assert_int_equal(o.retry_cap_ms, 60000);
	errlist_release(&e);
}

/* ---- 10k smoke ---- */

#define SMOKE_N 10000
#define SMOKE_HOSTS 50

static void test_sched__smoke_10k_targets(void **state)
{
	static char ids[SMOKE_N][16];
	static unsigned char running[SMOKE_N];
	static unsigned started[SMOKE_N];
	static size_t host_of[SMOKE_N];
	static unsigned host_running[SMOKE_HOSTS];
	static size_t run_list[SMOKE_N];
	sched_opts_t o = opts();
	sched_stats_t st;
	size_t nrun = 0;
	uint64_t total_starts = 0;

	memset(running, 0, sizeof running);
	memset(started, 0, sizeof started);
	memset(host_running, 0, sizeof host_running);
	o.host_concurrency = 8;
	sched_t *s = mk(&o);
	for (size_t i = 0; i < SMOKE_N; i++) {
		char host[16];
		snprintf(ids[i], sizeof ids[i], "t%zu", i);
		host_of[i] = i % SMOKE_HOSTS;
		snprintf(host, sizeof host, "h%zu", host_of[i]);
		assert_int_equal(
		        sched_add(s, ids[i], host, (enum sched_class)(i % 3), 0, ids[i], 0), 0);
	}
	assert_int_equal(sched_count(s), SMOKE_N);
	for (uint64_t now = 0; now <= 120000; now += 250) {
		/* finish what ran during the last step; about one in seven fails */
		for (size_t k = 0; k < nrun; k++) {
			size_t i = run_list[k];
			assert_int_equal(sched_done(s, ids[i], (i + now / 250) % 7 != 0, now), 0);
			running[i] = 0;
			host_running[host_of[i]]--;
		}
		nrun = 0;
		if (now == 60000) /* churn: a tenth is removed and re-added on one host */
			for (size_t i = 0; i < SMOKE_N; i += 10) {
				assert_int_equal(sched_remove(s, ids[i]), 0);
				add(s, ids[i], "h0", SCHED_LIVE, 0, now);
				host_of[i] = 0;
			}
		const char *id;
		void *ud;
		while ((ud = sched_next(s, now, &id)) != NULL) {
			size_t i = (size_t)((char(*)[16])ud - ids);
			assert_true(i < SMOKE_N);
			assert_string_equal(id, ids[i]);
			assert_false(running[i]);
			running[i] = 1;
			started[i]++;
			total_starts++;
			assert_true(++host_running[host_of[i]] <= o.host_concurrency);
			run_list[nrun++] = i;
		}
		sched_get_stats(s, now, &st);
		assert_int_equal(st.running, nrun);
		assert_true(st.queued[0] + st.queued[1] + st.queued[2] <= o.max_queue_depth);
	}
	sched_get_stats(s, 120000, &st);
	assert_int_equal(st.targets[0] + st.targets[1] + st.targets[2], SMOKE_N);
	assert_true(st.drops[SCHED_COMPLETED] > 0); /* 10k due at once, queue depth 1000 */
	assert_true(st.retries > 0);
	assert_true(total_starts > SMOKE_N);
	for (size_t i = 3; i < 300; i += 3) /* the first live targets (never churned) ran */
		if (i % 10 != 0)
			assert_true(started[i] > 0);
	for (size_t k = 0; k < nrun; k++)
		assert_int_equal(sched_done(s, ids[run_list[k]], 1, 120001), 0);
	for (size_t i = 0; i < SMOKE_N; i += 2)
		assert_int_equal(sched_remove(s, ids[i]), 0);
	assert_int_equal(sched_count(s), SMOKE_N / 2);
}

/* Random operations against a model of what is running: no target runs twice, done
 * succeeds exactly for running targets, counts and queue depth stay consistent. */
#define RND_N 200

static void test_sched__random_operations_keep_invariants(void **state)
{
	static char ids[RND_N][8];
	static int present[RND_N], running[RND_N];
	sched_opts_t o = opts();
	uint64_t r = 12345, now = 0;
	sched_stats_t st;

	memset(present, 0, sizeof present);
	memset(running, 0, sizeof running);
	o.max_queue_depth = 20;
	o.host_concurrency = 2;
	o.host_min_interval_ms = 30;
	o.retry_base_ms = 10;
	o.retry_cap_ms = 200;
	o.interval_ms[SCHED_LIVE] = 100;
	o.interval_ms[SCHED_IMMINENT] = 400;
	o.interval_ms[SCHED_COMPLETED] = 1000;
	sched_t *s = mk(&o);
	for (size_t i = 0; i < RND_N; i++)
		snprintf(ids[i], sizeof ids[i], "r%zu", i);
	for (int step = 0; step < 50000; step++) {
		r = r * 6364136223846793005ull + 1442695040888963407ull;
		unsigned op = (unsigned)(r >> 33) % 8;
		size_t i = (size_t)(r >> 45) % RND_N;
		enum sched_class k = (enum sched_class)((r >> 20) % SCHED_NCLASSES);
		char host[8];
		snprintf(host, sizeof host, "h%u", (unsigned)(r >> 25) % 5);
		now += (r >> 40) % 7;
		switch (op) {
		case 0:
			assert_int_equal(sched_add(s, ids[i], host, k, 0, ids[i], now),
			                 present[i] ? -EEXIST_ : 0);
			if (!present[i])
				present[i] = 1, running[i] = 0;
			break;
		case 1:
			assert_int_equal(sched_remove(s, ids[i]), present[i] ? 0 : -ENOENT_);
			present[i] = running[i] = 0;
			break;
		case 2:
		case 3:
			assert_int_equal(sched_done(s, ids[i], (r >> 30) & 1, now),
			                 running[i] ? 0 : -ENOENT_);
			running[i] = 0;
			break;
		case 4:
			assert_int_equal(sched_set_class(s, ids[i], k, now),
			                 present[i] ? 0 : -ENOENT_);
			break;
		case 5:
			assert_int_equal(
			        sched_update(s, ids[i], host, k, (r >> 50) % 3 * 150, ids[i], now),
			        present[i] ? 0 : -ENOENT_);
			break;
		default: {
			const char *id;
			void *ud;
			uint64_t w = sched_next_wakeup(s, now);
			assert_true(w >= now);
			while ((ud = sched_next(s, now, &id)) != NULL) {
				size_t j = (size_t)((char(*)[8])ud - ids);
				assert_true(j < RND_N);
				assert_true(present[j]);
				assert_false(running[j]);
				running[j] = 1;
			}
			/* nothing startable now: the wakeup is later */
			assert_true(sched_next_wakeup(s, now) > now);
			break;
		}
		}
		if (step % 97 == 0) {
			unsigned np = 0, nr = 0;
			for (size_t j = 0; j < RND_N; j++)
				np += present[j], nr += running[j];
			sched_get_stats(s, now, &st);
			assert_int_equal(sched_count(s), np);
			assert_int_equal(st.targets[0] + st.targets[1] + st.targets[2], np);
			assert_int_equal(st.running, nr);
			assert_true(st.queued[0] + st.queued[1] + st.queued[2] <=
			            o.max_queue_depth);
		}
	}
	sched_get_stats(s, now, &st);
	assert_true(st.drops[0] + st.drops[1] + st.drops[2] > 0);
	assert_true(st.retries > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sched__higher_class_first, teardown),
		cmocka_unit_test_teardown(test_sched__earliest_due_first_within_class, teardown),
		cmocka_unit_test_teardown(test_sched__running_never_handed_out_twice, teardown),
		cmocka_unit_test_teardown(test_sched__fixed_rate_next_due, teardown),
		cmocka_unit_test_teardown(test_sched__drops_lowest_class_first, teardown),
		cmocka_unit_test_teardown(test_sched__backoff_bounds_and_reset, teardown),
		cmocka_unit_test_teardown(test_sched__no_retries_when_max_tries_zero, teardown),
		cmocka_unit_test_teardown(test_sched__backoff_cap_with_many_tries, teardown),
		cmocka_unit_test_teardown(test_sched__host_concurrency, teardown),
		cmocka_unit_test_teardown(test_sched__host_min_interval, teardown),
		cmocka_unit_test_teardown(test_sched__set_class_idle_and_running, teardown),
		cmocka_unit_test_teardown(test_sched__update_keeps_state, teardown),
		cmocka_unit_test_teardown(test_sched__remove_while_running, teardown),
		cmocka_unit_test_teardown(test_sched__bad_arguments, teardown),
		cmocka_unit_test_setup_teardown(test_sched__env_defaults_and_good_values, clear_env,
		                                clear_env),
		cmocka_unit_test_setup_teardown(test_sched__env_bad_values, clear_env, clear_env),
		cmocka_unit_test_setup_teardown(test_sched__env_every_bad_value_is_listed,
		                                clear_env, clear_env),
		cmocka_unit_test_teardown(test_sched__defer_waits_and_keeps_failures, teardown),
		cmocka_unit_test_teardown(test_sched__set_due_hands_over, teardown),
		cmocka_unit_test_teardown(test_sched__failing_target_backs_off_across_intervals,
		                          teardown),
		cmocka_unit_test_teardown(test_sched__no_backoff_when_cap_is_below_interval,
		                          teardown),
		cmocka_unit_test_teardown(test_sched__next_healthy_skips_failing, teardown),
		cmocka_unit_test_teardown(test_sched__smoke_10k_targets, teardown),
		cmocka_unit_test_teardown(test_sched__random_operations_keep_invariants, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
