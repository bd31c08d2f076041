/*
 * test_runner: the runner (runner/runner.h) in process, on a loop of the test's own, with a
 * real pool and Chromium on the fixture's pages, and its callbacks recording what leaves
 * it: tasks that succeed, fail and are retried; a watched page reloaded and moved to a new
 * browser on recycle; a reconcile while tasks run; a close while tasks run; watched pages
 * whose feed dies verified, found frozen and escalated; a watched target over WATCH_CAP read
 * in navigate mode. Each case ends
 * with the whole close path and audits it (loop closes, no fd, no Chromium process left).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "cdp/cdp_ws.h"
#include "daemon/targets.h"
#include "pool/browser.h"
#include "pool/pool.h"
#include "runner/runner.h"
#include "tests/fixture/fixture.h"
#include "tests/support/runkit.h"
#include "tests/support/testutil.h"
#include "util/fetch.h"
#include "util/log.h"

/* The match version of a livescore snapshot's data. */
static json_int_t version_of(const json_t *snap)
{
	return json_integer_value(json_object_get(json_object_get(snap, "data"), "version"));
}

/* Tracks one watched target while a test runs: the longest time its published match
 * version stood still, and whether it was ever seen frozen or read in navigate mode. */
typedef struct track {
	const char *id;
	json_int_t version;
	uint64_t since, longest;
	int frozen_seen, navigate_seen;
} track_t;

static void track_step(rh_t *h, track_t *t)
{
	json_t *snap = latest(h, t->id);
	find_t f = view(h, t->id);
	uint64_t now = tu_now_ms();

	if (snap && version_of(snap) != t->version) {
		t->version = version_of(snap);
		t->since = now;
	}
	if (t->since && now - t->since > t->longest)
		t->longest = now - t->since;
	t->frozen_seen |= f.found && strcmp(f.v.state, "frozen") == 0;
	t->navigate_seen |= f.found && strcmp(f.v.read_mode, "navigate") == 0;
}

static void opts(runner_opts_t *ro)
{
	runner_opts_init(ro);
	ro->sched.interval_ms[SCHED_LIVE] = 1000;
	ro->sched.retry_base_ms = 200;
	ro->sched.retry_cap_ms = 400;
	ro->sched.retry_max_tries = 2;
	ro->sched.host_concurrency = 16;
	ro->task_timeout_ms = 20000; /* generous: a loaded machine is slower, not wrong */
}

/* ---- tests ---- */

/* A page that loads, a page that answers 500 (retried, failed, never published) and a JSON
 * API read without a browser, all on the live interval. */
static void test_runner__tasks_succeed_fail_and_retry(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	runner_stats_t st;
	find_t bad;
	size_t i;
	json_t *s;
	json_int_t last_seq = 0;

	tu_require_chromium();
	opts(&ro);
	rh_open(&h, &ro);
	rh_targets(&h, "",
	           "{\"targets\": ["
	           "{\"id\": \"ok\", \"adapter\": \"generic\", \"url\": \"BASE/static\", "
	           "\"class\": \"live\", \"fields\": {\"title\": {\"selector\": \"title\"}}},"
	           "{\"id\": \"bad\", \"adapter\": \"generic\", \"url\": \"BASE/status/500\", "
	           "\"class\": \"live\", \"fields\": {\"t\": {\"selector\": \"title\"}}},"
	           "{\"id\": \"api\", \"adapter\": \"jsonapi\", \"url\": \"BASE/json\", "
	           "\"class\": \"live\", \"fields\": {\"n\": {\"pointer\": \"/n\", "
	           "\"type\": \"int\"}}}]}");
	RUN_UNTIL(&h, published(&h, "ok") >= 3 && published(&h, "api") >= 3 &&
	                      view(&h, "bad").v.failures >= 3,
	          90000);
	bad = view(&h, "bad");
	runner_get_stats(h.runner, &st);
	print_message("ok %zu, api %zu, bad failures %u (%s); outcomes ok %u failed %u; "
	              "retries %llu\n",
	              published(&h, "ok"), published(&h, "api"), bad.v.failures, bad.last_error,
	              h.outcomes[POOL_OK], h.outcomes[POOL_FAILED],
	              (unsigned long long)st.nav.retries);
	assert_true(published(&h, "ok") >= 3);
	assert_true(published(&h, "api") >= 3);
	assert_int_equal(published(&h, "bad"), 0);
	assert_true(bad.found && bad.v.failures >= 3);
	assert_non_null(strstr(bad.last_error, "HTTP 500"));
	assert_true(st.nav.retries >= 1);
	assert_true(h.outcomes[POOL_OK] >= 6);
	assert_true(h.outcomes[POOL_FAILED] >= 3);
	assert_int_equal(st.targets, 3);
	assert_int_equal(st.snapshots_total, json_array_size(h.published));
	/* one target's seq counts its snapshots, in order */
	json_array_foreach(h.published, i, s) {
		if (strcmp(json_string_value(json_object_get(s, "target")), "ok") != 0)
			continue;
		assert_int_equal(json_integer_value(json_object_get(s, "seq")), last_seq + 1);
		last_seq = json_integer_value(json_object_get(s, "seq"));
		assert_string_equal(json_string_value(json_object_get(
		                            json_object_get(s, "data"), "title")),
		                    "Static page");
	}
	assert_true(view(&h, "ok").v.fresh);
	rh_close(&h);
}

/* A watched page is re-read on its interval, reloaded every watch_reload_ms, and moved to
 * the new browser when the pool recycles, without a gap in its results. */
static void test_runner__watch_reloads_and_moves_on_recycle(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	runner_stats_t st;
	pool_stats_t ps;
	unsigned long hits;
	size_t before;

	tu_require_chromium();
	opts(&ro);
	ro.watch_reload_ms = 2000;
	rh_open(&h, &ro);
	rh_targets(&h, "",
	           "{\"targets\": [{\"id\": \"w\", \"adapter\": \"generic\", \"url\": "
	           "\"BASE/static\", \"class\": \"live\", \"mode\": \"watch\", "
	           "\"fields\": {\"title\": {\"selector\": \"title\"}}}]}");
	RUN_UNTIL(&h, published(&h, "w") >= 2, 60000);
	assert_true(published(&h, "w") >= 2);
	hits = fixture_hits(h.fx, "/static");
	/* reloaded: the page is loaded again, and reads go on */
	RUN_UNTIL(&h, fixture_hits(h.fx, "/static") > hits && published(&h, "w") >= 5, 60000);
	print_message("loads of /static: %lu -> %lu; results %zu\n", hits,
	              fixture_hits(h.fx, "/static"), published(&h, "w"));
	assert_true(fixture_hits(h.fx, "/static") > hits);
	/* recycled: a new browser, the page moves there, and results keep coming */
	pool_request_recycle(h.pool, POOL_RECYCLE_REQUESTED);
	RUN_UNTIL(&h, (pool_get_stats(h.pool, &ps), ps.browser_launches >= 2), 60000);
	assert_int_equal(ps.browser_launches, 2);
	before = published(&h, "w");
	RUN_UNTIL(&h, published(&h, "w") >= before + 3, 60000);
	runner_get_stats(h.runner, &st);
	print_message("after the recycle: %zu more results, %u watched page(s), failures %u\n",
	              published(&h, "w") - before, st.watches, view(&h, "w").v.failures);
	assert_true(published(&h, "w") >= before + 3);
	assert_int_equal(st.watches, 1);
	assert_int_equal(view(&h, "w").v.failures, 0);
	rh_close(&h);
}

/* Reconcile while tasks run: a removed target's running task ends without publishing, a
 * changed one keeps its seq, a new one starts, the other source's targets are untouched. */
static void test_runner__reconcile_while_tasks_run(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	runner_stats_t st;
	find_t f;

	tu_require_chromium();
	opts(&ro);
	rh_open(&h, &ro);
	rh_targets(&h, "",
	           "{\"targets\": ["
	           "{\"id\": \"slow\", \"adapter\": \"generic\", \"url\": \"BASE/slow?ms=3000\", "
	           "\"class\": \"live\", \"fields\": {\"m\": {\"selector\": \"#msg\"}}},"
	           "{\"id\": \"keep\", \"adapter\": \"generic\", \"url\": \"BASE/static\", "
	           "\"class\": \"live\", \"fields\": {\"title\": {\"selector\": \"title\"}}}]}");
	rh_targets(&h, "@redis",
	           "{\"targets\": [{\"id\": \"other\", \"adapter\": \"jsonapi\", \"url\": "
	           "\"BASE/json\", \"class\": \"live\", \"fields\": {\"n\": {\"pointer\": \"/n\"}}}]}");
	/* an id the other source already has is refused */
	rh_targets(&h, "", "{\"targets\": ["
	                   "{\"id\": \"slow\", \"adapter\": \"generic\", \"url\": "
	                   "\"BASE/slow?ms=3000\", \"class\": \"live\", "
	                   "\"fields\": {\"m\": {\"selector\": \"#msg\"}}},"
	                   "{\"id\": \"keep\", \"adapter\": \"generic\", \"url\": \"BASE/static\", "
	                   "\"class\": \"live\", \"fields\": {\"title\": {\"selector\": \"title\"}}},"
	                   "{\"id\": \"other\", \"adapter\": \"generic\", \"url\": \"BASE/static\", "
	                   "\"class\": \"live\", \"fields\": {\"t\": {\"selector\": \"title\"}}}]}");
	assert_string_equal(view(&h, "other").v.adapter, "jsonapi");
	RUN_UNTIL(&h, fixture_hits(h.fx, "/slow") >= 1 && published(&h, "keep") >= 2, 60000);
	assert_true(fixture_hits(h.fx, "/slow") >= 1);
	assert_true(published(&h, "keep") >= 2);
	runner_get_stats(h.runner, &st);
	/* "slow" goes while its task waits on the page; "keep" changes class; "new" comes */
	rh_targets(&h, "",
	           "{\"targets\": ["
	           "{\"id\": \"keep\", \"adapter\": \"generic\", \"url\": \"BASE/static\", "
	           "\"class\": \"imminent\", \"fields\": {\"title\": {\"selector\": \"title\"}}},"
	           "{\"id\": \"new\", \"adapter\": \"generic\", \"url\": \"BASE/static?new\", "
	           "\"class\": \"live\", \"fields\": {\"title\": {\"selector\": \"title\"}}}]}");
	f = view(&h, "slow");
	assert_false(f.found);
	assert_int_equal(f.count, 3); /* keep, new, other */
	f = view(&h, "keep");
	assert_true(f.found && f.v.seq >= 2);
	assert_int_equal(f.v.klass, SCHED_IMMINENT);
	RUN_UNTIL(&h, published(&h, "new") >= 1 && published(&h, "other") >= 2, 60000);
	/* the removed target's task has ended by now (3 s page); it published nothing after
	 * its removal */
	RUN_UNTIL(&h, (runner_get_stats(h.runner, &st), st.inflight == 0), 10000);
	print_message("slow published %zu, keep %zu, new %zu, other %zu\n",
	              published(&h, "slow"), published(&h, "keep"), published(&h, "new"),
	              published(&h, "other"));
	assert_int_equal(published(&h, "slow"), 0);
	assert_true(published(&h, "new") >= 1);
	assert_true(published(&h, "other") >= 2);
	rh_close(&h);
}

/* Close while tasks run: pages that never load, and a fetch that never answers. The stop
 * order ends every task (leases cancelled, fetch cancelled) and the close frees all. */
static void test_runner__close_while_tasks_run(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	runner_stats_t st;

	tu_require_chromium();
	opts(&ro);
	/* pool_close() lets tasks in flight run to their deadline: keep it short */
	ro.task_timeout_ms = 5000;
	rh_open(&h, &ro);
	rh_targets(&h, "",
	           "{\"targets\": ["
	           "{\"id\": \"h1\", \"adapter\": \"generic\", \"url\": \"BASE/hang?1\", "
	           "\"class\": \"live\", \"fields\": {\"t\": {\"selector\": \"title\"}}},"
	           "{\"id\": \"h2\", \"adapter\": \"generic\", \"url\": \"BASE/hang?2\", "
	           "\"class\": \"live\", \"fields\": {\"t\": {\"selector\": \"title\"}}},"
	           "{\"id\": \"w\", \"adapter\": \"generic\", \"url\": \"BASE/static\", "
	           "\"class\": \"live\", \"mode\": \"watch\", "
	           "\"fields\": {\"t\": {\"selector\": \"title\"}}},"
	           "{\"id\": \"f\", \"adapter\": \"jsonapi\", \"url\": \"BASE/hang?3\", "
	           "\"class\": \"live\", \"fields\": {\"n\": {\"pointer\": \"/n\"}}}]}");
	RUN_UNTIL(&h, fixture_hits(h.fx, "/hang") >= 3 && published(&h, "w") >= 1, 60000);
	runner_get_stats(h.runner, &st);
	print_message("in flight at close: %u task(s) (%u in the browser), %u watched\n",
	              st.inflight, st.browser_tasks, st.watches);
	assert_int_equal(st.inflight, 3);
	assert_int_equal(st.browser_tasks, 2);
	assert_int_equal(st.watches, 1);
	rh_close(&h);
	assert_true(h.runner_closed);
	assert_true(h.outcomes[POOL_OK] >= 1); /* the watched reads */
}

/* Runs the loop for ms, tracking the targets after each turn; stops early once stop()
 * says so (NULL: never). */
static void run_tracking(rh_t *h, track_t *t, size_t n, uint64_t ms, int (*stop)(track_t *))
{
	for (uint64_t t0 = tu_now_ms(); tu_now_ms() - t0 < ms && !(stop && stop(t));) {
		uv_run(&h->loop, UV_RUN_ONCE);
		for (size_t i = 0; i < n; i++)
			track_step(h, &t[i]);
	}
}

static int both_navigate(track_t *t)
{
	return t[0].navigate_seen && t[1].navigate_seen;
}

/*
 * Truthful freshness of watched pages: the live matches' feeds die for the open pages
 * (the fixture's mute: their long-polls hang, the pages stay alive and answer), in watch
 * and in watch+push mode. Each is verified once its data has stood still for
 * verify_unchanged_ms, found frozen, the fresh read published, and the page reloaded;
 * as the feed stays dead, it escalates to navigate mode, where the data stays current. A
 * finished match (data that genuinely never changes) is verified and never frozen.
 */
static void test_runner__frozen_watch_is_verified_and_reloaded(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	runner_stats_t st;
	track_t t[3] = { { .id = "live" }, { .id = "push" }, { .id = "done" } };
	uint64_t bound;

	tu_require_chromium();
	opts(&ro);
	ro.verify_unchanged_ms = 3000;
	ro.watch_navigate_ms = 60000;
	rh_open(&h, &ro);
	/* 12 matches at speed 2 (a match minute a second): 6..9 live, 10..12 finished */
	assert_int_equal(fixture_live_configure(h.fx, 12, 2, 3), 0);
	rh_targets(&h, "",
	           "{\"targets\": ["
	           "{\"id\": \"live\", \"adapter\": \"livescore\", \"url\": \"BASE/live/match/6\", "
	           "\"class\": \"live\", \"interval_seconds\": 1, \"mode\": \"watch\"},"
	           "{\"id\": \"push\", \"adapter\": \"livescore\", \"url\": \"BASE/live/match/7\", "
	           "\"class\": \"live\", \"interval_seconds\": 1, \"mode\": \"watch\", "
	           "\"push\": true},"
	           "{\"id\": \"done\", \"adapter\": \"livescore\", \"url\": \"BASE/live/match/12\", "
	           "\"class\": \"live\", \"interval_seconds\": 1, \"mode\": \"watch\"}]}");
	RUN_UNTIL(&h, published(&h, "live") >= 3 && published(&h, "push") >= 3 &&
	                      published(&h, "done") >= 2,
	          60000);
	assert_true(published(&h, "live") >= 3 && published(&h, "push") >= 3);
	rh_get(&h, "/live/ctl/mute?id=6");
	rh_get(&h, "/live/ctl/mute?id=7");
	t[0].since = t[1].since = tu_now_ms();
	/* until both are read in navigate mode (three freezes each), then 10 s more there */
	run_tracking(&h, t, 3, 120000, both_navigate);
	run_tracking(&h, t, 3, 10000, NULL);
	runner_get_stats(h.runner, &st);
	/* a frozen page's data is corrected within the unchanged time, one interval and one
	 * verification read (bounded by its deadline, the task timeout) */
	bound = ro.verify_unchanged_ms + 1000 + ro.task_timeout_ms;
	print_message("frozen %llu; verifications agreed %llu frozen %llu failed %llu; longest "
	              "standstill live %.1f s, push %.1f s (bound %.1f s); navigate mode: live "
	              "%d push %d\n",
	              (unsigned long long)st.frozen_total, (unsigned long long)st.verify_agreed,
	              (unsigned long long)st.verify_frozen, (unsigned long long)st.verify_failed,
	              t[0].longest / 1000.0, t[1].longest / 1000.0, bound / 1000.0,
	              t[0].navigate_seen, t[1].navigate_seen);
	assert_true(t[0].frozen_seen && t[1].frozen_seen);
	assert_true(st.frozen_total >= 6); /* three freezes each before navigate mode */
	assert_true(t[0].navigate_seen && t[1].navigate_seen);
	assert_true(t[0].longest <= bound);
	assert_true(t[1].longest <= bound);
	assert_string_equal(view(&h, "live").v.watch_note, "its watched page kept freezing");
	/* the finished match: verified (agreed), never frozen */
	assert_false(t[2].frozen_seen);
	assert_false(t[2].navigate_seen);
	assert_true(st.verify_agreed >= 1);
	assert_string_equal(view(&h, "done").v.state, "ok");
	rh_close(&h);
}

/* A watched target over WATCH_CAP is read in navigate mode and says so, never left unread;
 * it is watched once a slot frees. */
static void test_runner__watch_over_cap_is_read_in_navigate_mode(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	find_t f;

	tu_require_chromium();
	opts(&ro);
	ro.watch_cap = 1;
	rh_open(&h, &ro);
	rh_targets(&h, "",
	           "{\"targets\": ["
	           "{\"id\": \"w1\", \"adapter\": \"generic\", \"url\": \"BASE/static?w=1\", "
	           "\"class\": \"live\", \"mode\": \"watch\", \"fields\": {\"t\": {\"selector\": "
	           "\"title\"}}},"
	           "{\"id\": \"w2\", \"adapter\": \"generic\", \"url\": \"BASE/static?w=2\", "
	           "\"class\": \"live\", \"mode\": \"watch\", \"fields\": {\"t\": {\"selector\": "
	           "\"title\"}}}]}");
	RUN_UNTIL(&h, published(&h, "w1") >= 3 && published(&h, "w2") >= 3, 60000);
	assert_true(published(&h, "w1") >= 3);
	assert_true(published(&h, "w2") >= 3);
	/* one of them holds the one slot, the other is read in navigate mode */
	f = view(&h, strcmp(view(&h, "w1").v.read_mode, "navigate") == 0 ? "w1" : "w2");
	print_message("%s: read_mode %s (%s), state %s\n", f.id, f.v.read_mode, f.v.watch_note,
	              f.v.state);
	assert_string_equal(f.v.read_mode, "navigate");
	assert_string_equal(f.v.watch_note, "over WATCH_CAP");
	assert_string_equal(f.v.state, "ok");
	assert_int_equal(f.v.failures, 0);
	rh_close(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runner__tasks_succeed_fail_and_retry),
		cmocka_unit_test(test_runner__watch_reloads_and_moves_on_recycle),
		cmocka_unit_test(test_runner__reconcile_while_tasks_run),
		cmocka_unit_test(test_runner__close_while_tasks_run),
		cmocka_unit_test(test_runner__frozen_watch_is_verified_and_reloaded),
		cmocka_unit_test(test_runner__watch_over_cap_is_read_in_navigate_mode),
	};
	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
