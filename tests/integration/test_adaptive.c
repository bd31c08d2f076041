/*
 * test_adaptive: adaptive targets (issue 19 point 2, docs/targets.md "adaptive") with
 * `cdpilot run` (a separate process), real Chromium and the fixture's pages:
 *   - a live-score page (/live/match/1, the livescore adapter: its page long-polls
 *     /live/api/match/1) and a realistic page (/real/match/3, generic fields read from
 *     text the page renders from /real/api/match/3) learn their endpoints and are then
 *     read without the browser: the fixture's own request log shows no page load of
 *     either while their snapshots go on; a page with no JSON request (/static) says
 *     "not_learned" with its reason and keeps being read from the page;
 *   - an endpoint that starts answering differently from its page (/live/ctl/split: the
 *     API serves tools a frozen copy, browsers the live match) is caught by the check
 *     against the page, checked again, dropped (the reason in /status, a log line, the
 *     metrics), and the target is read from the page again, its snapshot the page's;
 *   - checks that cannot be made (the page fails while a cache answers cdpilot) leave the
 *     endpoint read, but its reads stop counting as verified: /status says check_overdue
 *     and the verified age grows while the read age stays small, until a check agrees.
 * Every wait is for an event (/status, the request log, the sink), with a deadline far past
 * the time it takes; the fixture's clock is stopped (/live/ctl?speed=0), so that a page
 * and its endpoint read a moment apart agree.
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
	return dk_bed_setup(state, sizeof(env_t), "adaptive");
}

/* GET base + path from the fixture (a control); fails the test unless 200. Returns the
 * body parsed (new reference). */
static json_t *fixture_get(env_t *e, const char *path)
{
	char url[256];
	json_t *j;

	snprintf(url, sizeof url, "%s%s", e->bed.base, path);
	j = dk_http_get_json(url);
	if (!j || !json_is_true(json_object_get(j, "ok")))
		fail_msg("%s did not answer ok", url);
	return j;
}

/* The targets file: live1 (the live-score page), and with all real3 (the realistic page,
 * its score read as text) and static (no JSON request at all); each adaptive, every second. */
static void write_targets_every(env_t *e, int all, int live_interval)
{
	char text[4096];
	const char *b = e->bed.base;
	int n;

	n = snprintf(text, sizeof text,
	             "{\"targets\": ["
	             "{\"id\": \"live1\", \"adapter\": \"livescore\", \"url\": \"%s/live/match/1\","
	             " \"class\": \"live\", \"interval_seconds\": %d, \"adaptive\": true}",
	             b, live_interval);
	if (all)
		n += snprintf(
		        text + n, sizeof text - (size_t)n,
		        ", {\"id\": \"real3\", \"adapter\": \"generic\", \"url\": "
		        "\"%s/real/match/3\", \"class\": \"live\", \"interval_seconds\": 1,"
		        " \"adaptive\": true, \"wait_for\": \"#live-score[data-ready]\","
		        " \"fields\": {\"home\": {\"selector\": \"#live-score\", \"regex\":"
		        " \"^(\\\\d+)\", \"type\": \"int\"}, \"away\": {\"selector\":"
		        " \"#live-score\", \"regex\": \"(\\\\d+)$\", \"type\": \"int\"}}},"
		        " {\"id\": \"static\", \"adapter\": \"generic\", \"url\": \"%s/static\","
		        " \"class\": \"live\", \"interval_seconds\": 1, \"adaptive\": true,"
		        " \"fields\": {\"t\": {\"selector\": \"title\"}}}",
		        b, b);
	snprintf(text + n, sizeof text - (size_t)n, "]}");
	dk_write_file(e->bed.targets, text);
}

static void write_targets(env_t *e, int all)
{
	write_targets_every(e, all, 1);
}

static json_t *get_json(env_t *e, const char *path)
{
	char url[160];

	snprintf(url, sizeof url, "http://%s%s", e->bed.metrics, path);
	return dk_http_get_json(url);
}

/* /status's target id, or NULL (borrowed from st). */
static json_t *target_of(json_t *st, const char *id)
{
	size_t i;
	json_t *t;

	json_array_foreach(json_object_get(st, "targets"), i, t)
	{
		if (strcmp(json_string_value(json_object_get(t, "id")) ?: "", id) == 0)
			return t;
	}
	return NULL;
}

static const char *str_at(json_t *t, const char *k1, const char *k2)
{
	json_t *v = json_object_get(t, k1);

	if (k2)
		v = json_object_get(v, k2);
	return json_string_value(v) ?: "";
}

/* Waits until target id's adaptive.state is state, its read_mode mode and its seq at least
 * min_seq; returns /status's view of it (a deep copy, new reference). */
static json_t *wait_target(env_t *e, const char *id, const char *state, const char *mode,
                           json_int_t min_seq)
{
	for (uint64_t end = tu_now_ms() + WAIT_MS;; dk_sleep_ms(100)) {
		json_t *st = get_json(e, "/status"), *t = st ? target_of(st, id) : NULL,
		       *copy = NULL;
		if (t && !strcmp(str_at(t, "adaptive", "state"), state) &&
		    !strcmp(str_at(t, "read_mode", NULL), mode) &&
		    json_integer_value(json_object_get(t, "seq")) >= min_seq)
			copy = json_deep_copy(t);
		json_decref(st);
		if (copy)
			return copy;
		if (tu_now_ms() >= end) {
			dk_dump_log(&e->bed.d);
			fail_msg("/status never showed %s %s, read_mode %s, seq >= %lld", id, state,
			         mode, (long long)min_seq);
		}
	}
}

/* Requests in the fixture's log whose path (query aside) is path. */
static size_t requests_of(env_t *e, const char *path)
{
	char *log = dk_read_file(e->bed.reqlog), *line, *save = NULL;
	size_t n = 0, len = strlen(path);

	for (line = log ? strtok_r(log, "\n", &save) : NULL; line;
	     line = strtok_r(NULL, "\n", &save)) {
		const char *p = strchr(line, ' ');
		if (p && !strncmp(p + 1, path, len) && (p[1 + len] == '\0' || p[1 + len] == '?'))
			n++;
	}
	free(log);
	return n;
}

/* A metric sample's value in /metrics (name with its labels); -1 if absent. */
static double metric(env_t *e, const char *name)
{
	return dk_metric(e->bed.metrics, name);
}

/* The last snapshot of target id in the sink (new reference), or NULL. */
static json_t *last_snapshot(env_t *e, const char *id)
{
	json_t *all = dk_read_jsonl(e->bed.out), *line, *last = NULL;
	size_t i;

	json_array_foreach(all, i, line)
	{
		if (!strcmp(str_at(line, "target", NULL), id) && json_object_get(line, "data"))
			last = line;
	}
	json_incref(last);
	json_decref(all);
	return last;
}

static void test_adaptive__endpoints_learned_and_read_without_the_page(void **state)
{
	env_t *e = *state;
	json_t *live, *real, *st, *snap;
	size_t live_pages, real_pages, live_api, real_api;
	json_int_t live_seq, real_seq;

	json_decref(fixture_get(e, "/live/ctl?speed=0"));
	write_targets(e, 1);
	dk_bed_run(&e->bed, (const char *const[]){ "ADAPTIVE_VERIFY_SECONDS=3600", NULL });

	live = wait_target(e, "live1", "learned", "endpoint", 1);
	real = wait_target(e, "real3", "learned", "endpoint", 1);
	assert_non_null(strstr(str_at(live, "adaptive", "endpoint"), "/live/api/match/1?since=-1"));
	assert_non_null(strstr(str_at(real, "adaptive", "endpoint"), "/real/api/match/3"));
	/* the realistic page's score is text ("2 - 1"): its fields come from the numbers under
	 * "score", not from the events' minutes of the same values */
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_array_get(json_object_get(json_object_get(real, "adaptive"), "fields"),
	                               0),
	                "from")),
	        "/score/home");
	st = wait_target(e, "static", "not_learned", "navigate", 1);
	assert_non_null(strstr(str_at(st, "adaptive", "reason"), "no fetch or XMLHttpRequest"));
	json_decref(st);

	/* from here on: reads of the endpoints, no page load */
	live_pages = requests_of(e, "/live/match/1");
	real_pages = requests_of(e, "/real/match/3");
	live_api = requests_of(e, "/live/api/match/1");
	real_api = requests_of(e, "/real/api/match/3");
	live_seq = json_integer_value(json_object_get(live, "seq"));
	real_seq = json_integer_value(json_object_get(real, "seq"));
	json_decref(live);
	json_decref(real);
	json_decref(wait_target(e, "live1", "learned", "endpoint", live_seq + 3));
	json_decref(wait_target(e, "real3", "learned", "endpoint", real_seq + 3));
	st = wait_target(e, "static", "not_learned", "navigate", 3); /* the page, still */
	json_decref(st);
	print_message("page loads %zu and %zu, API reads %zu -> %zu and %zu -> %zu\n", live_pages,
	              real_pages, live_api, requests_of(e, "/live/api/match/1"), real_api,
	              requests_of(e, "/real/api/match/3"));
	assert_int_equal(requests_of(e, "/live/match/1"), live_pages);
	assert_int_equal(requests_of(e, "/real/match/3"), real_pages);
	assert_true(requests_of(e, "/live/api/match/1") >= live_api + 3);
	assert_true(requests_of(e, "/real/api/match/3") >= real_api + 3);

	/* a new schedule (the interval) keeps the endpoint: no page load to learn it again */
	write_targets_every(e, 1, 2);
	assert_int_equal(kill(e->bed.d.pid, SIGHUP), 0);
	for (uint64_t end = tu_now_ms() + WAIT_MS;; dk_sleep_ms(100)) {
		json_t *s = get_json(e, "/status"), *t = s ? target_of(s, "live1") : NULL;
		int done = t && json_integer_value(json_object_get(t, "interval_ms")) == 2000;
		json_decref(s);
		if (done)
			break;
		if (tu_now_ms() >= end)
			fail_msg("the new interval of live1 was never taken");
	}
	live = wait_target(e, "live1", "learned", "endpoint", 1);
	live_seq = json_integer_value(json_object_get(live, "seq"));
	json_decref(live);
	json_decref(wait_target(e, "live1", "learned", "endpoint", live_seq + 2));
	assert_int_equal(requests_of(e, "/live/match/1"), live_pages);
	assert_true(metric(e, "cdpilot_adaptive_events_total{event=\"learned\"}") == 2);

	/* an endpoint read builds the page's data: the livescore snapshot as its page gave it,
	 * verified (the learning agreed with the page well within the check period) */
	snap = last_snapshot(e, "live1");
	assert_non_null(snap);
	assert_string_equal(str_at(snap, "data", "id"), "1");
	assert_string_equal(str_at(snap, "url", NULL) + strlen(e->bed.base),
	                    "/live/api/match/1?since=-1");
	assert_non_null(json_object_get(json_object_get(snap, "data"), "version"));
	json_decref(snap);
	st = get_json(e, "/status");
	assert_true(json_is_true(json_object_get(target_of(st, "live1"), "fresh")));
	json_decref(st);

	assert_true(metric(e, "cdpilot_adaptive_reads_total{how=\"endpoint\"}") >= 6);
	assert_true(metric(e, "cdpilot_adaptive_events_total{event=\"learned\"}") == 2);
	assert_true(metric(e, "cdpilot_adaptive_events_total{event=\"failed\"}") >= 1);
	assert_true(metric(e, "cdpilot_adaptive_endpoints") == 2);
	{
		char url[160], *text;
		long code = 0;
		snprintf(url, sizeof url, "http://%s/metrics", e->bed.metrics);
		text = dk_http_get(url, &code);
		assert_non_null(text);
		dk_check_metric_names(text, "");
		free(text);
	}
	dk_stop_clean(&e->bed.d);
	assert_int_equal(tu_wait_tagged_count(1, 10000), 1);
}

static void test_adaptive__differing_endpoint_dropped_back_to_the_page(void **state)
{
	env_t *e = *state;
	json_t *t, *started, *snap;
	size_t pages;
	char *log;

	json_decref(fixture_get(e, "/live/ctl?speed=0"));
	write_targets(e, 0);
	dk_bed_run(&e->bed, (const char *const[]){ "ADAPTIVE_VERIFY_SECONDS=1", NULL });
	t = wait_target(e, "live1", "learned", "endpoint", 1);
	json_decref(t);
	/* checks agree while the endpoint tells the truth */
	for (uint64_t end = tu_now_ms() + WAIT_MS;
	     metric(e, "cdpilot_adaptive_checks_total{result=\"agreed\"}") < 1; dk_sleep_ms(100))
		if (tu_now_ms() >= end)
			fail_msg("no check of the endpoint agreed");

	/* the API now serves cdpilot's libcurl a frozen copy; the match kicks off (browsers
	 * see it live) */
	json_decref(fixture_get(e, "/live/ctl/split?id=1"));
	started = fixture_get(e, "/live/ctl/start?id=1");
	pages = requests_of(e, "/live/match/1");
	t = wait_target(e, "live1", "dropped", "navigate", 1);
	assert_non_null(strstr(str_at(t, "adaptive", "reason"),
	                       "the page and the endpoint differed twice in a row"));
	assert_true(json_is_null(json_object_get(json_object_get(t, "adaptive"), "endpoint")));
	json_decref(t);
	/* read from the page again: page loads resume and the snapshot is the live match */
	for (uint64_t end = tu_now_ms() + WAIT_MS; requests_of(e, "/live/match/1") < pages + 3;
	     dk_sleep_ms(100))
		if (tu_now_ms() >= end)
			fail_msg("the page was not read again after the endpoint was dropped");
	json_decref(wait_target(e, "live1", "dropped", "navigate", 1));
	snap = last_snapshot(e, "live1");
	assert_non_null(snap);
	assert_int_equal(
	        json_integer_value(json_object_get(json_object_get(snap, "data"), "version")),
	        json_integer_value(json_object_get(started, "version")));
	assert_string_equal(str_at(snap, "data", "status"), "live");
	json_decref(snap);
	json_decref(started);
	assert_true(metric(e, "cdpilot_adaptive_checks_total{result=\"differed\"}") >= 2);
	assert_true(metric(e, "cdpilot_adaptive_events_total{event=\"dropped\"}") == 1);
	assert_true(metric(e, "cdpilot_adaptive_endpoints") == 0);
	log = dk_read_file(e->bed.d.err_path);
	assert_non_null(strstr(log, "target live1: endpoint "));
	assert_non_null(strstr(log, "dropped, reading the page again"));
	free(log);
	dk_stop_clean(&e->bed.d);
	assert_int_equal(tu_wait_tagged_count(1, 10000), 1);
}

/* A target's age fields and flags in /status. */
typedef struct ages {
	int found, overdue, fresh;
	json_int_t verified_ms, read_ms;
	const char *read_mode;
} ages_t;

static ages_t ages_of(json_t *st, const char *id)
{
	json_t *t = target_of(st, id);
	ages_t a = { 0 };

	if (!t)
		return a;
	a.found = 1;
	a.overdue = json_is_true(json_object_get(json_object_get(t, "adaptive"), "check_overdue"));
	a.fresh = json_is_true(json_object_get(t, "fresh"));
	a.verified_ms = json_integer_value(json_object_get(t, "verified_age_ms"));
	a.read_ms = json_integer_value(json_object_get(t, "read_age_ms"));
	a.read_mode = str_at(t, "read_mode", NULL);
	return a;
}

/* Waits until live1's ages in /status satisfy behind (checks overdue, endpoint reads going
 * on unverified) or, with behind 0, recovered (checked and verified again). */
static void wait_checks(env_t *e, int behind)
{
	for (uint64_t end = tu_now_ms() + WAIT_MS;; dk_sleep_ms(100)) {
		json_t *st = get_json(e, "/status");
		ages_t a = st ? ages_of(st, "live1") : (ages_t){ 0 };
		int ok = a.found && !strcmp(a.read_mode, "endpoint") &&
		         (behind ? a.overdue && !a.fresh && a.verified_ms > 3000 && a.read_ms < 2500
		                 : !a.overdue && a.fresh && a.verified_ms < 2500);
		json_decref(st);
		if (ok)
			return;
		if (tu_now_ms() >= end) {
			dk_dump_log(&e->bed.d);
			fail_msg("/status never showed live1's checks %s",
			         behind ? "behind" : "recovered");
		}
	}
}

static void test_adaptive__checks_behind_stop_counting_as_verified(void **state)
{
	env_t *e = *state;

	json_decref(fixture_get(e, "/live/ctl?speed=0"));
	write_targets(e, 0);
	dk_bed_run(&e->bed, (const char *const[]){ "ADAPTIVE_VERIFY_SECONDS=1", NULL });
	json_decref(wait_target(e, "live1", "learned", "endpoint", 1));
	wait_checks(e, 0);

	/* the page fails (HTTP 500) while the endpoint, behind a cache, answers cdpilot: its
	 * reads go on, the checks cannot be made, and the verified age grows for all to see */
	json_decref(fixture_get(e, "/live/ctl/split?id=1"));
	json_decref(fixture_get(e, "/live/ctl/fail?id=1&ms=600000"));
	wait_checks(e, 1);
	assert_true(metric(e, "cdpilot_adaptive_checks_total{result=\"failed\"}") >= 1);
	assert_true(metric(e, "cdpilot_adaptive_events_total{event=\"dropped\"}") == 0);

	/* the page back, the cache gone: a check agrees and the reads are verified again */
	json_decref(fixture_get(e, "/live/ctl/split?id=1"));
	json_decref(fixture_get(e, "/live/ctl/fail?id=1&ms=0"));
	wait_checks(e, 0);
	dk_stop_clean(&e->bed.d);
	assert_int_equal(tu_wait_tagged_count(1, 10000), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		        test_adaptive__endpoints_learned_and_read_without_the_page, setup,
		        dk_bed_teardown),
		cmocka_unit_test_setup_teardown(
		        test_adaptive__differing_endpoint_dropped_back_to_the_page, setup,
		        dk_bed_teardown),
		cmocka_unit_test_setup_teardown(
		        test_adaptive__checks_behind_stop_counting_as_verified, setup,
		        dk_bed_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
