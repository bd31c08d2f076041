/*
 * Unit tests for the health grader (scheduler/health.h) on a virtual clock: every
 * threshold exactly at and just below its limit, nearest-rank percentiles, stalls (only
 * while work is due, STALL_BEGAN once per episode), recovering then healthy after the
 * window, conditions from other modules, the JSON view and the settings from the
 * environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scheduler/health.h"

#define EINVAL_ 22
#define ENOSPC_ 28

static const char *const vars[] = { "HEALTH_WINDOW_SECONDS", "HEALTH_DEGRADED_MEDIAN_SECONDS",
	                            "HEALTH_DEGRADED_P95_SECONDS", "HEALTH_FAILING_MAX_SECONDS",
	                            "STALL_SECONDS" };

static int clear_env(void **state)
{
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	return 0;
}

static health_t *H;

static int teardown(void **state)
{
	health_free(H);
	H = NULL;
	return 0;
}

/* Median and p95 limits apart so each can be tested alone. */
static health_t *mk(void)
{
	health_opts_t o;
	health_opts_init(&o);
	o.degraded_median_ms = 30000;
	o.degraded_p95_ms = 90000;
	o.failing_max_ms = 120000;
	o.stall_ms = 90000;
	o.window_ms = 300000;
	H = health_new(&o);
	return H;
}

#define N 100
static uint64_t ages[N];

/* n ages: `low` of value a, the rest of value b. */
static void fill(size_t n, size_t low, uint64_t a, uint64_t b)
{
	for (size_t i = 0; i < n; i++)
		ages[i] = i < low ? a : b;
}

static unsigned observe(health_t *h, uint64_t now, size_t n)
{
	return health_observe(h, now, ages, n, 0, 0);
}

static void expect_grade(health_t *h, enum health_grade g)
{
	if (health_grade(h) != g)
		fail_msg("grade %s, expected %s (reasons: %s)", health_grade_name(health_grade(h)),
		         health_grade_name(g), health_reasons(h));
}

static void test_health__no_targets_is_healthy(void **state)
{
	health_t *h = mk();
	uint64_t m = 1, p = 1, x = 1;

	expect_grade(h, HEALTH_HEALTHY);
	assert_int_equal(health_observe(h, 1000, NULL, 0, 1, 0), 0);
	assert_int_equal(health_observe(h, 500000, NULL, 0, 1, 0), 0); /* no stall either */
	expect_grade(h, HEALTH_HEALTHY);
	assert_string_equal(health_reasons(h), "");
	health_get_ages(h, &m, &p, &x);
	assert_int_equal(m, 0);
	assert_int_equal(p, 0);
	assert_int_equal(x, 0);
}

static void test_health__nearest_rank_percentiles(void **state)
{
	health_t *h = mk();
	uint64_t m, p, x;

	for (size_t i = 0; i < N; i++) /* 1..100 s, shuffled */
		ages[i] = ((i * 37) % N + 1) * 1000;
	observe(h, 0, N);
	health_get_ages(h, &m, &p, &x);
	assert_int_equal(m, 50000);
	assert_int_equal(p, 95000);
	assert_int_equal(x, 100000);
	assert_int_equal(ages[1], 38000); /* the caller's array is left alone */
	for (size_t i = 0; i < 10; i++)
		ages[i] = (10 - i) * 1000;
	observe(h, 0, 10);
	health_get_ages(h, &m, &p, &x);
	assert_int_equal(m, 5000);  /* rank ceil(0.5 * 10) = 5 */
	assert_int_equal(p, 10000); /* rank ceil(0.95 * 10) = 10 */
	assert_int_equal(x, 10000);
	ages[0] = 7;
	observe(h, 0, 1);
	health_get_ages(h, &m, &p, &x);
	assert_int_equal(m, 7);
	assert_int_equal(p, 7);
	assert_int_equal(x, 7);
}

static void test_health__failing_max_at_and_below(void **state)
{
	health_t *h = mk();

	fill(N, N - 1, 1000, 119999); /* median and p95 1 s, max just below */
	assert_int_equal(observe(h, 0, N), 0);
	expect_grade(h, HEALTH_HEALTHY);
	fill(N, N - 1, 1000, 120000);
	assert_int_equal(observe(h, 1000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_FAILING);
	assert_string_equal(health_reasons(h), "max age 120 s >= 120 s");
	fill(N, N - 1, 1000, 131200);
	assert_int_equal(observe(h, 2000, N), 0); /* still failing: no change */
	assert_string_equal(health_reasons(h), "max age 131.2 s >= 120 s");
}

static void test_health__degraded_median_at_and_below(void **state)
{
	health_t *h = mk();

	fill(N, 0, 0, 29999);
	assert_int_equal(observe(h, 0, N), 0);
	expect_grade(h, HEALTH_HEALTHY);
	fill(N, 49, 0, 30000); /* rank 50 is the first 30 s one */
	assert_int_equal(observe(h, 1000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_DEGRADED);
	assert_string_equal(health_reasons(h), "median age 30 s >= 30 s");
}

static void test_health__degraded_p95_at_and_below(void **state)
{
	health_t *h = mk();

	fill(N, 94, 0, 89999);
	assert_int_equal(observe(h, 0, N), 0);
	expect_grade(h, HEALTH_HEALTHY);
	fill(N, 95, 0, 90000); /* rank 95 is still 0 */
	assert_int_equal(observe(h, 0, N), 0);
	expect_grade(h, HEALTH_HEALTHY);
	fill(N, 94, 0, 90000); /* rank 95 is the first 90 s one */
	assert_int_equal(observe(h, 1000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_DEGRADED);
	assert_string_equal(health_reasons(h), "p95 age 90 s >= 90 s");
	/* failing wins over degraded; both reasons are given */
	fill(N, 0, 0, 120000);
	assert_int_equal(observe(h, 2000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_FAILING);
	assert_string_equal(health_reasons(h), "max age 120 s >= 120 s; median age 120 s >= 30 s; "
	                                       "p95 age 120 s >= 90 s");
}

static void test_health__stall_only_while_work_is_due(void **state)
{
	health_t *h = mk();
	ages[0] = 0;

	/* no work due for a long time: no stall */
	assert_int_equal(health_observe(h, 0, ages, 1, 0, 0), 0);
	assert_int_equal(health_observe(h, 500000, ages, 1, 0, 0), 0);
	/* work due from 500 s on, the last success long before: counts from 500 s */
	assert_int_equal(health_observe(h, 500000, ages, 1, 1, 1000), 0);
	assert_int_equal(health_observe(h, 589999, ages, 1, 1, 1000), 0);
	expect_grade(h, HEALTH_HEALTHY);
	assert_false(health_stalled(h));
	assert_int_equal(health_observe(h, 590000, ages, 1, 1, 1000),
	                 HEALTH_CHANGED | HEALTH_STALL_BEGAN);
	expect_grade(h, HEALTH_FAILING);
	assert_true(health_stalled(h));
	assert_string_equal(health_reasons(h), "no success for 90 s while work is due (>= 90 s)");
	/* the same episode: STALL_BEGAN fired once */
	assert_int_equal(health_observe(h, 600000, ages, 1, 1, 1000), 0);
	assert_int_equal(health_observe(h, 700000, ages, 1, 1, 1000), 0);
	/* a success ends it */
	assert_int_equal(health_observe(h, 701000, ages, 1, 1, 700500), HEALTH_CHANGED);
	expect_grade(h, HEALTH_RECOVERING);
	assert_false(health_stalled(h));
	/* no success for 90 s again: a new episode */
	assert_int_equal(health_observe(h, 790499, ages, 1, 1, 700500), 0);
	assert_int_equal(health_observe(h, 790500, ages, 1, 1, 700500),
	                 HEALTH_CHANGED | HEALTH_STALL_BEGAN);
	/* work no longer due ends the episode; due again restarts the count */
	assert_int_equal(health_observe(h, 800000, ages, 1, 0, 700500), HEALTH_CHANGED);
	assert_false(health_stalled(h));
	assert_int_equal(health_observe(h, 850000, ages, 1, 1, 700500), 0);
	assert_int_equal(health_observe(h, 939999, ages, 1, 1, 700500), 0);
	assert_int_equal(health_observe(h, 940000, ages, 1, 1, 700500),
	                 HEALTH_CHANGED | HEALTH_STALL_BEGAN);
}

static void test_health__stall_never_succeeded(void **state)
{
	health_t *h = mk();
	ages[0] = 0;

	assert_int_equal(health_observe(h, 1000, ages, 1, 1, 0), 0);
	assert_int_equal(health_observe(h, 90999, ages, 1, 1, 0), 0);
	assert_int_equal(health_observe(h, 91000, ages, 1, 1, 0),
	                 HEALTH_CHANGED | HEALTH_STALL_BEGAN);
}

static void test_health__recovering_then_healthy_after_window(void **state)
{
	health_t *h = mk();
	json_t *j;

	fill(N, 0, 0, 30000);
	assert_int_equal(observe(h, 10000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_DEGRADED);
	assert_int_equal(observe(h, 20000, N), 0); /* last bad observation at 20 s */
	fill(N, 0, 0, 1000);
	assert_int_equal(observe(h, 30000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_RECOVERING);
	assert_non_null(strstr(health_reasons(h), "recovering: last degraded or failing 10 s ago"));
	assert_int_equal(observe(h, 319999, N), 0);
	expect_grade(h, HEALTH_RECOVERING);
	j = health_to_json(h);
	assert_string_equal(json_string_value(json_object_get(j, "grade")), "recovering");
	assert_int_equal(json_integer_value(json_object_get(j, "since")), 30000);
	json_decref(j);
	assert_int_equal(observe(h, 320000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_HEALTHY);
	assert_string_equal(health_reasons(h), "");
	/* bad again: degraded, not recovering */
	fill(N, 0, 0, 30000);
	assert_int_equal(observe(h, 330000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_DEGRADED);
}

static void test_health__window_zero_goes_straight_to_healthy(void **state)
{
	health_opts_t o;
	health_opts_init(&o);
	o.window_ms = 0;
	H = health_new(&o);
	fill(N, 0, 0, 60000);
	assert_int_equal(observe(H, 0, N), HEALTH_CHANGED);
	expect_grade(H, HEALTH_DEGRADED);
	fill(N, 0, 0, 0);
	assert_int_equal(observe(H, 1000, N), HEALTH_CHANGED);
	expect_grade(H, HEALTH_HEALTHY);
}

static void test_health__conditions_combine_worst_wins(void **state)
{
	health_t *h = mk();

	fill(N, 0, 0, 1000);
	assert_int_equal(observe(h, 0, N), 0);
	assert_int_equal(
	        health_set_condition(h, "pids", HEALTH_DEGRADED, "pids near pids.max", 100), 0);
	expect_grade(h, HEALTH_DEGRADED); /* at once */
	assert_string_equal(health_reasons(h), "pids: pids near pids.max");
	assert_int_equal(observe(h, 1000, N), HEALTH_CHANGED); /* reported at the observation */
	assert_int_equal(observe(h, 2000, N), 0);
	assert_int_equal(health_set_condition(h, "redis", HEALTH_FAILING, "redis down", 2500), 0);
	expect_grade(h, HEALTH_FAILING);
	assert_string_equal(health_reasons(h), "pids: pids near pids.max; redis: redis down");
	/* replacing a condition */
	assert_int_equal(health_set_condition(h, "redis", HEALTH_FAILING, "redis refused", 2600),
	                 0);
	assert_string_equal(health_reasons(h), "pids: pids near pids.max; redis: redis refused");
	/* ages failing and a degraded condition: failing, reasons together */
	assert_int_equal(health_set_condition(h, "redis", HEALTH_HEALTHY, NULL, 2700), 0);
	expect_grade(h, HEALTH_DEGRADED);
	fill(N, N - 1, 0, 120000);
	assert_int_equal(observe(h, 3000, N), HEALTH_CHANGED); /* reported: degraded at 2 s */
	expect_grade(h, HEALTH_FAILING);
	assert_string_equal(health_reasons(h), "max age 120 s >= 120 s; pids: pids near pids.max");
	/* everything cleared: recovering within the window */
	fill(N, 0, 0, 1000);
	assert_int_equal(observe(h, 4000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_DEGRADED);
	assert_int_equal(health_set_condition(h, "pids", HEALTH_HEALTHY, "", 5000), 0);
	expect_grade(h, HEALTH_RECOVERING);
	assert_int_equal(observe(h, 6000, N), HEALTH_CHANGED);
	assert_int_equal(observe(h, 305000, N), HEALTH_CHANGED);
	expect_grade(h, HEALTH_HEALTHY);
	/* a recovering condition makes the whole recovering, but not worse */
	assert_int_equal(
	        health_set_condition(h, "browser", HEALTH_RECOVERING, "relaunched", 306000), 0);
	expect_grade(h, HEALTH_RECOVERING);
	fill(N, 0, 0, 30000);
	observe(h, 307000, N);
	expect_grade(h, HEALTH_DEGRADED);
}

static void test_health__condition_limits(void **state)
{
	health_t *h = mk();
	char key[32];

	assert_int_equal(health_set_condition(h, "", HEALTH_FAILING, "x", 0), -EINVAL_);
	assert_int_equal(health_set_condition(h, NULL, HEALTH_FAILING, "x", 0), -EINVAL_);
	assert_int_equal(health_set_condition(h, "k", (enum health_grade)9, "x", 0), -EINVAL_);
	assert_int_equal(health_set_condition(h, "gone", HEALTH_HEALTHY, "x", 0), 0);
	for (int i = 0; i < HEALTH_MAX_CONDITIONS; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(health_set_condition(h, key, HEALTH_DEGRADED, "x", 0), 0);
	}
	assert_int_equal(health_set_condition(h, "one-more", HEALTH_DEGRADED, "x", 0), -ENOSPC_);
	assert_int_equal(health_set_condition(h, "k3", HEALTH_FAILING, "y", 0), 0); /* replace */
	expect_grade(h, HEALTH_FAILING);
}

static void test_health__json(void **state)
{
	health_t *h = mk();
	json_t *j, *r;

	fill(N, N - 1, 2000, 125000);
	observe(h, 7000, N);
	health_set_condition(h, "redis", HEALTH_DEGRADED, "redis down", 7000);
	j = health_to_json(h);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "grade")), "failing");
	assert_int_equal(json_integer_value(json_object_get(j, "median_age_ms")), 2000);
	assert_int_equal(json_integer_value(json_object_get(j, "p95_age_ms")), 2000);
	assert_int_equal(json_integer_value(json_object_get(j, "max_age_ms")), 125000);
	assert_int_equal(json_integer_value(json_object_get(j, "since")), 7000);
	assert_true(json_is_false(json_object_get(j, "stalled")));
	r = json_object_get(j, "reasons");
	assert_int_equal(json_array_size(r), 2);
	assert_string_equal(json_string_value(json_array_get(r, 0)), "max age 125 s >= 120 s");
	assert_string_equal(json_string_value(json_array_get(r, 1)), "redis: redis down");
	json_decref(j);
	assert_string_equal(health_grade_name(HEALTH_HEALTHY), "healthy");
	assert_string_equal(health_grade_name(HEALTH_DEGRADED), "degraded");
	assert_string_equal(health_grade_name(HEALTH_FAILING), "failing");
	assert_string_equal(health_grade_name(HEALTH_RECOVERING), "recovering");
	assert_string_equal(health_grade_name((enum health_grade)42), "unknown");
}

static void test_health__env(void **state)
{
	health_opts_t o;
	errlist_t e;

	errlist_init(&e);
	health_opts_init(&o);
	assert_int_equal(health_opts_from_env(&o, &e), 0);
	assert_int_equal(o.window_ms, 300000);
	assert_int_equal(o.degraded_median_ms, 60000);
	assert_int_equal(o.degraded_p95_ms, 60000);
	assert_int_equal(o.failing_max_ms, 120000);
	assert_int_equal(o.stall_ms, 90000);

	setenv("HEALTH_WINDOW_SECONDS", "0", 1);
	setenv("STALL_SECONDS", "2.5", 1);
	assert_int_equal(health_opts_from_env(&o, &e), 0);
	assert_int_equal(o.window_ms, 0);
	assert_int_equal(o.stall_ms, 2500);

	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		setenv(vars[i], i % 2 ? "-1" : "1e2", 1);
	health_opts_init(&o);
	assert_int_equal(health_opts_from_env(&o, &e), -EINVAL_);
	assert_int_equal(e.count, sizeof vars / sizeof vars[0]);
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		char needle[128];
		snprintf(needle, sizeof needle, "%s='%s': expected a number of seconds from",
		         vars[i], i % 2 ? "-1" : "1e2");
		assert_non_null(strstr(errlist_text(&e), needle));
	}
	assert_int_equal(o.stall_ms, 90000); /* defaults kept */
	errlist_release(&e);

	errlist_init(&e);
	clear_env(NULL);
	setenv("HEALTH_FAILING_MAX_SECONDS", "0.05", 1);
	assert_int_equal(health_opts_from_env(&o, &e), -EINVAL_);
	assert_non_null(strstr(errlist_text(&e), "from 0.1 to 86400"));
	clear_env(NULL);
	setenv("HEALTH_WINDOW_SECONDS", "86401", 1);
	assert_int_equal(health_opts_from_env(&o, &e), -EINVAL_);
	assert_non_null(strstr(errlist_text(&e), "HEALTH_WINDOW_SECONDS='86401': expected a number "
	                                         "of seconds from 0 to 86400"));
	errlist_release(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_health__no_targets_is_healthy, teardown),
		cmocka_unit_test_teardown(test_health__nearest_rank_percentiles, teardown),
		cmocka_unit_test_teardown(test_health__failing_max_at_and_below, teardown),
		cmocka_unit_test_teardown(test_health__degraded_median_at_and_below, teardown),
		cmocka_unit_test_teardown(test_health__degraded_p95_at_and_below, teardown),
		cmocka_unit_test_teardown(test_health__stall_only_while_work_is_due, teardown),
		cmocka_unit_test_teardown(test_health__stall_never_succeeded, teardown),
		cmocka_unit_test_teardown(test_health__recovering_then_healthy_after_window,
		                          teardown),
		cmocka_unit_test_teardown(test_health__window_zero_goes_straight_to_healthy,
		                          teardown),
		cmocka_unit_test_teardown(test_health__conditions_combine_worst_wins, teardown),
		cmocka_unit_test_teardown(test_health__condition_limits, teardown),
		cmocka_unit_test_teardown(test_health__json, teardown),
		cmocka_unit_test_setup_teardown(test_health__env, clear_env, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
