/*
 * test_browser_lazy: `cdpilot run` (a separate process, real Chromium) runs a browser only
 * while a target needs one (issue 20 point 4). With only jsonapi targets it has no process
 * below it at all, and is ready and fresh; a SIGHUP that adds a navigate target launches a
 * browser and the target is scraped; one that removes it again, with
 * BROWSER_IDLE_SECONDS=1, makes every process of that browser go within seconds, and the
 * daemon stays ready. Process counts come from /proc (the daemon's descendants), not from
 * the daemon's own counters; every wait is for an event, with a deadline far past the time
 * it takes.
 */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/daemonkit.h"
#include "tests/support/testutil.h"

#define WAIT_MS 60000

typedef struct env {
	dk_bed_t bed;
} env_t;

static int setup(void **state)
{
	return dk_bed_setup(state, sizeof(env_t), "lazy");
}

/* The targets file: two jsonapi targets, and a navigate one (generic) if with_page. */
static void write_targets(env_t *e, int with_page)
{
	char text[2048];
	const char *base = e->bed.base;

	snprintf(text, sizeof text,
	         "{\"targets\": ["
	         "{\"id\": \"api1\", \"adapter\": \"jsonapi\", \"class\": \"live\", \"url\": "
	         "\"%s/json?i=1\", \"fields\": {\"n\": {\"pointer\": \"/n\"}}},"
	         "{\"id\": \"api2\", \"adapter\": \"jsonapi\", \"class\": \"live\", \"url\": "
	         "\"%s/json?i=2\", \"fields\": {\"n\": {\"pointer\": \"/n\"}}}%s%s%s]}",
	         base, base, with_page ? ", {\"id\": \"page\", \"adapter\": \"generic\", "
	                                 "\"class\": \"live\", \"url\": \""
	                               : "",
	         with_page ? base : "",
	         with_page ? "/static\", \"fields\": {\"t\": {\"selector\": \"title\"}}}" : "");
	dk_write_file(e->bed.targets, text);
}

static json_t *get_json(env_t *e, const char *path)
{
	char url[160];

	snprintf(url, sizeof url, "http://%s%s", e->bed.metrics, path);
	return dk_http_get_json(url);
}

static long readyz_code(env_t *e)
{
	char url[160], *body;
	long code = 0;

	snprintf(url, sizeof url, "http://%s/readyz", e->bed.metrics);
	body = dk_http_get(url, &code);
	free(body);
	return code;
}

/* /status's target id, or NULL (borrowed from st). */
static json_t *target_of(json_t *st, const char *id)
{
	size_t i;
	json_t *t;

	json_array_foreach(json_object_get(st, "targets"), i, t) {
		if (strcmp(json_string_value(json_object_get(t, "id")) ?: "", id) == 0)
			return t;
	}
	return NULL;
}

/* What the waits below look for in /status. */
enum cond { C_APIS_FRESH, C_PAGE_SCRAPED, C_PAGE_GONE_UNWANTED };

static int holds(json_t *st, enum cond c)
{
	json_t *b = json_object_get(st, "browser"), *p = target_of(st, "page");

	switch (c) {
	case C_APIS_FRESH:
		for (int i = 1; i <= 2; i++) {
			json_t *t = target_of(st, i == 1 ? "api1" : "api2");
			if (!t || !json_is_true(json_object_get(t, "fresh")) ||
			    json_integer_value(json_object_get(t, "seq")) < 1)
				return 0;
		}
		return 1;
	case C_PAGE_SCRAPED:
		return p && json_integer_value(json_object_get(p, "seq")) >= 1 &&
		       json_is_true(json_object_get(p, "fresh")) &&
		       json_is_true(json_object_get(b, "wanted"));
	case C_PAGE_GONE_UNWANTED:
		return !p && json_is_false(json_object_get(b, "wanted"));
	}
	return 0;
}

/* Waits until /status shows c; fails the test (with the log) past WAIT_MS. */
static void wait_status(env_t *e, enum cond c, const char *what)
{
	for (uint64_t end = tu_now_ms() + WAIT_MS;; dk_sleep_ms(100)) {
		json_t *st = get_json(e, "/status");
		int ok = st && holds(st, c);
		json_decref(st);
		if (ok)
			return;
		if (tu_now_ms() >= end) {
			dk_dump_log(&e->bed.d);
			fail_msg("/status never showed %s", what);
		}
	}
}

/* A metric sample's value in /metrics (name with its labels); -1 if absent. */
static double metric(env_t *e, const char *name)
{
	return dk_metric(e->bed.metrics, name);
}

/* No process below the daemon, /status says no browser is wanted and shows no pid, and
 * /readyz answers 200. */
static void assert_no_browser(env_t *e)
{
	json_t *st = get_json(e, "/status"), *b;
	size_t below = tu_descendants(e->bed.d.pid, NULL, 0);

	if (below)
		dk_dump_log(&e->bed.d);
	assert_int_equal(below, 0);
	assert_non_null(st);
	b = json_object_get(st, "browser");
	assert_true(json_is_false(json_object_get(b, "wanted")));
	assert_true(json_is_null(json_object_get(b, "pid")));
	assert_true(json_is_true(json_object_get(json_object_get(st, "ready"), "ready")));
	json_decref(st);
	assert_int_equal(readyz_code(e), 200);
}

static void test_lazy__browser_only_while_a_target_needs_one(void **state)
{
	env_t *e = *state;
	static tu_proc_id_t below[1024];
	size_t n;

	write_targets(e, 0);
	dk_bed_run(&e->bed, (const char *const[]){ "LIVE_INTERVAL_SECONDS=1",
	                                           "BROWSER_IDLE_SECONDS=1", "TARGETS_WATCH_MS=0",
	                                           NULL });

	/* jsonapi only: scraped and fresh with no browser at all, and ready */
	wait_status(e, C_APIS_FRESH, "both jsonapi targets scraped and fresh");
	for (int i = 0; i < 5; i++) { /* over a few rounds of scrapes, not one moment */
		assert_no_browser(e);
		dk_sleep_ms(400);
	}
	assert_true(metric(e, "cdpilot_browser_wanted") == 0);
	assert_true(metric(e, "cdpilot_browser_launches_total") == 0);
	{
		json_t *h = get_json(e, "/status");
		const char *grade =
		        json_string_value(json_object_get(json_object_get(h, "health"), "grade"));
		assert_non_null(grade);
		assert_string_equal(grade, "healthy");
		json_decref(h);
	}

	/* a navigate target added (SIGHUP): a browser is launched and the target scraped */
	write_targets(e, 1);
	assert_int_equal(kill(e->bed.d.pid, SIGHUP), 0);
	wait_status(e, C_PAGE_SCRAPED, "the navigate target scraped with a browser wanted");
	n = tu_descendants(e->bed.d.pid, below, 1024);
	print_message("%zu processes below cdpilot with the navigate target\n", n);
	assert_true(n > 0);
	assert_true(metric(e, "cdpilot_browser_wanted") == 1);
	assert_true(metric(e, "cdpilot_browser_launches_total") == 1);
	/* ready again once the new browser has answered a probe (not ready meanwhile: a
	 * browser is needed and not yet known to answer) */
	for (uint64_t end = tu_now_ms() + WAIT_MS; readyz_code(e) != 200; dk_sleep_ms(100))
		if (tu_now_ms() >= end) {
			dk_dump_log(&e->bed.d);
			fail_msg("/readyz never said 200 with the browser launched");
		}

	/* removed again (SIGHUP): after BROWSER_IDLE_SECONDS without a lease the browser
	 * closes, and every process it had is gone; the jsonapi targets go on */
	write_targets(e, 0);
	assert_int_equal(kill(e->bed.d.pid, SIGHUP), 0);
	wait_status(e, C_PAGE_GONE_UNWANTED, "the navigate target gone and no browser wanted");
	{
		int alive = tu_wait_alive_count(below, n < 1024 ? n : 1024, 15000);
		if (alive)
			dk_dump_log(&e->bed.d);
		assert_int_equal(alive, 0);
	}
	for (uint64_t end = tu_now_ms() + 10000;
	     tu_descendants(e->bed.d.pid, NULL, 0) > 0 && tu_now_ms() < end;)
		dk_sleep_ms(100);
	assert_no_browser(e);
	assert_true(metric(e, "cdpilot_browser_idle_closes_total") == 1);
	wait_status(e, C_APIS_FRESH, "the jsonapi targets still fresh");
	{
		char *log = dk_read_file(e->bed.d.err_path);
		assert_non_null(strstr(log, "closed: no browser wanted and no lease for 1 s"));
		assert_null(strstr(log, " lost: ")); /* closed, not lost */
		assert_null(strstr(log, "watchdog asks")); /* no browser is no fault */
		free(log);
	}
	dk_stop_clean(&e->bed.d);
	assert_int_equal(tu_wait_tagged_count(1, 10000), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lazy__browser_only_while_a_target_needs_one,
		                                setup, dk_bed_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
