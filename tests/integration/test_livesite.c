/*
 * Integration tests for the demo live-score site (tests/fixture/livesite.c) and the
 * livescore adapter, on the fixture server in this process and, for the page cases, the
 * real Chromium: the listing read by the adapter's discover_js and discover(), a match
 * page waited for, extracted and normalised as the daemon does, a forced goal reaching
 * the open page by long-polling without any navigation, a match finishing; then, with a
 * plain HTTP client (util/fetch), the JSON API and the control endpoints, a held long-poll
 * answered on a change and at its deadline, and closing the fixture with requests held.
 * The site's clock is paused (speed 0) where a natural change would race the check. Every
 * case audits its teardown: the loop closes, no fd (and no Chromium process) is left.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/adapter.h"
#include "cdp/cdp_err.h"
#include "cdp/cdp_page.h"
#include "cdp/cdp_ws.h"
#include "pool/browser.h"
#include "tests/fixture/fixture.h"
#include "tests/support/pagekit.h"
#include "tests/support/testutil.h"
#include "util/fetch.h"
#include "util/log.h"

#define WAIT_MS 30000

/* One HTTP request made with util/fetch. */
typedef struct get {
	int done, status;
	long code;
	json_t *json;
	char error[256];
	uint64_t t_done;
} get_t;

typedef struct env {
	pagekit_t pk; /* loop, fixture, and the browser and its one page if any */
	fetch_ctx_t *fetch;
	int fetch_closed;
} env_t;

/* ---- callbacks ---- */

static void on_fetch_closed(void *ud)
{
	((env_t *)ud)->fetch_closed = 1;
}
static void on_get(const fetch_result_t *res, void *ud)
{
	get_t *g = ud;

	g->done = 1;
	g->status = res->status;
	g->code = res->http_code;
	g->t_done = tu_now_ms();
	snprintf(g->error, sizeof g->error, "%s", res->error);
	if (res->status == 0)
		g->json = json_loads(res->body, 0, NULL);
}

/* ---- the environment ---- */

static int env_setup(void **state)
{
	return tu_state_alloc(state, sizeof(env_t));
}

/* A failed check leaves libuv handles behind: such an env is leaked, not freed. */
static int env_teardown(void **state)
{
	return tu_state_release(state, ((env_t *)*state)->pk.finished);
}

static void env_open(env_t *e, int with_browser)
{
	pk_open(&e->pk, with_browser);
	e->fetch = fetch_ctx_new(&e->pk.loop);
	assert_non_null(e->fetch);
	if (with_browser)
		pk_page_open(&e->pk);
}

static void env_close(env_t *e)
{
	pk_close(&e->pk);
	fetch_ctx_close(e->fetch, on_fetch_closed, e);
	assert_true(tu_run_until(&e->pk.loop, &e->fetch_closed, 5000));
	pk_finish(&e->pk);
}

/* ---- HTTP and page helpers ---- */

static void get_start(env_t *e, const char *path, get_t *g)
{
	char url[512];

	memset(g, 0, sizeof *g);
	fixture_url(e->pk.fx, path, url, sizeof url);
	assert_int_equal(fetch_get(e->fetch, url, 60000, 0, on_get, g), 0);
}

static void get_wait(env_t *e, get_t *g, const char *what)
{
	assert_true(tu_run_until(&e->pk.loop, &g->done, WAIT_MS));
	if (g->status != 0)
		fail_msg("GET %s: %s", what, g->error);
}

/* GET path; fails unless it answers code with a JSON body; returns the body (new ref). */
static json_t *get_json(env_t *e, const char *path, long code)
{
	get_t g;

	get_start(e, path, &g);
	get_wait(e, &g, path);
	if (g.code != code)
		fail_msg("GET %s: HTTP %ld, expected %ld", path, g.code, code);
	if (!g.json)
		fail_msg("GET %s: the body is not JSON", path);
	return g.json;
}

static void navigate(env_t *e, const char *path)
{
	pk_navigate(&e->pk, path);
}

static json_t *evaluate(env_t *e, const char *js)
{
	return pk_evaluate(&e->pk, js);
}

/* extract_js + normalise on the current page; fails the test on bad data. */
static json_t *extract(env_t *e)
{
	const adapter_t *ad = adapter_find("livescore");
	json_t *raw = evaluate(e, ad->extract_js(NULL)), *data;
	char why[512] = "";

	data = ad->normalise(NULL, raw, why, sizeof why);
	if (!data) {
		char *s = json_dumps(raw, JSON_COMPACT);
		fail_msg("normalise: %s (raw %s)", why, s ? s : "?");
	}
	json_decref(raw);
	return data;
}

static json_int_t jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_integer(v))
		fail_msg("\"%s\" is not an integer", key);
	return json_integer_value(v);
}

static const char *jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);
	if (!json_is_string(v))
		fail_msg("\"%s\" is not a string", key);
	return json_string_value(v);
}

/* The id of the first match of the API's list with that status. */
static void first_with_status(env_t *e, const char *status, char *id, size_t idlen)
{
	json_t *m = get_json(e, "/live/api/matches", 200), *t;
	size_t i;

	id[0] = '\0';
	json_array_foreach(json_object_get(m, "matches"), i, t)
	{
		if (strcmp(jstr(t, "status"), status) == 0) {
			snprintf(id, idlen, "%s", jstr(t, "id"));
			break;
		}
	}
	json_decref(m);
	if (!id[0])
		fail_msg("no %s match on the site", status);
}

/* ---- tests ---- */

/*
 * The adapter against the site in Chromium: discovery on the listing, a match page
 * extracted, a forced goal reaching the open page without a reload, a finish.
 */
static void test_livesite__adapter_in_chromium(void **state)
{
	env_t *e = *state;
	const adapter_t *ad = adapter_find("livescore");
	json_t *raw, *targets, *t, *data, *ctl;
	char why[512] = "", id[32], path[128], want_url[256];
	size_t i, nclass[SCHED_NCLASSES] = { 0 };
	json_int_t version, home;
	uint64_t t0;
	unsigned long hits;

	env_open(e, 1);
	assert_int_equal(fixture_live_configure(e->pk.fx, 24, 0, 7), 0); /* paused clock */

	/* discovery: 24 matches, each an absolute match URL, a mix of classes */
	navigate(e, "/live/");
	raw = evaluate(e, ad->discover_js(NULL));
	targets = ad->discover(NULL, raw, "demo", why, sizeof why);
	if (!targets)
		fail_msg("discover: %s", why);
	json_decref(raw);
	assert_int_equal(json_array_size(targets), 24);
	json_array_foreach(targets, i, t)
	{
		snprintf(path, sizeof path, "/live/match/%zu", i + 1);
		fixture_url(e->pk.fx, path, want_url, sizeof want_url);
		snprintf(id, sizeof id, "demo-%zu", i + 1);
		assert_string_equal(jstr(t, "id"), id);
		assert_string_equal(jstr(t, "adapter"), "livescore");
		assert_string_equal(jstr(t, "url"), want_url);
		nclass[sched_class_parse(jstr(t, "class"))]++;
	}
	json_decref(targets);
	assert_true(nclass[SCHED_LIVE] > 0);
	assert_true(nclass[SCHED_IMMINENT] > 0);
	assert_true(nclass[SCHED_COMPLETED] > 0);

	/* a live match page: waited for, extracted, normalised, as the API says */
	first_with_status(e, "live", id, sizeof id);
	snprintf(path, sizeof path, "/live/match/%s", id);
	navigate(e, path);
	assert_int_equal(e->pk.http_status, 200);
	pk_wait_for(&e->pk, ad->wait_for(NULL));
	data = extract(e);
	snprintf(path, sizeof path, "/live/api/match/%s", id);
	{
		json_t *api = get_json(e, path, 200);
		assert_string_equal(jstr(data, "id"), id);
		assert_string_equal(jstr(data, "status"), "live");
		assert_string_equal(jstr(data, "home"), jstr(api, "home"));
		assert_string_equal(jstr(data, "away"), jstr(api, "away"));
		assert_int_equal(jint(data, "version"), jint(api, "version"));
		assert_int_equal(jint(data, "minute"), jint(api, "minute"));
		assert_true(
		        json_equal(json_object_get(data, "score"), json_object_get(api, "score")));
		assert_int_equal(ad->classify(NULL, data), SCHED_LIVE);
		json_decref(api);
	}
	version = jint(data, "version");
	home = jint(json_object_get(data, "score"), "home");
	json_decref(data);

	/* a goal: the open page shows it within a second, with no new page load */
	snprintf(path, sizeof path, "/live/match/%s", id);
	hits = fixture_hits(e->pk.fx, path);
	snprintf(path, sizeof path, "/live/ctl/goal?id=%s&side=home", id);
	ctl = get_json(e, path, 200);
	assert_true(json_is_true(json_object_get(ctl, "ok")));
	assert_true(jint(ctl, "version") > version);
	assert_true(jint(ctl, "changed_at_ms") > 0);
	t0 = tu_now_ms();
	for (;;) {
		data = extract(e);
		if (jint(data, "version") == jint(ctl, "version"))
			break;
		assert_int_equal(jint(data, "version"), version);
		json_decref(data);
		if (tu_now_ms() - t0 > 1000)
			fail_msg("the goal did not reach the page within 1 s");
		tu_run_until(&e->pk.loop, &(int){ 0 }, 20);
	}
	assert_int_equal(jint(json_object_get(data, "score"), "home"), home + 1);
	assert_non_null(strstr(jstr(data, "last_event"), "goal"));
	json_decref(data);
	json_decref(ctl);
	snprintf(path, sizeof path, "/live/match/%s", id);
	assert_int_equal(fixture_hits(e->pk.fx, path), hits);

	/* the match finishes: the page says so and the adapter classes it completed */
	snprintf(path, sizeof path, "/live/ctl/finish?id=%s", id);
	ctl = get_json(e, path, 200);
	assert_string_equal(jstr(json_object_get(ctl, "match"), "status"), "finished");
	t0 = tu_now_ms();
	for (;;) {
		data = extract(e);
		if (strcmp(jstr(data, "status"), "finished") == 0)
			break;
		json_decref(data);
		if (tu_now_ms() - t0 > 5000)
			fail_msg("the finish did not reach the page");
		tu_run_until(&e->pk.loop, &(int){ 0 }, 20);
	}
	assert_int_equal(jint(data, "version"), jint(ctl, "version"));
	assert_int_equal(ad->classify(NULL, data), SCHED_COMPLETED);
	json_decref(data);
	json_decref(ctl);

	/* a failing page is an HTTP error for the daemon to report */
	snprintf(path, sizeof path, "/live/match/%s?fail=1", id);
	navigate(e, path);
	assert_int_equal(e->pk.http_status, 500);

	env_close(e);
}

/* The JSON API and the control endpoints: states, errors, resets and match counts. */
static void test_livesite__api_and_control(void **state)
{
	env_t *e = *state;
	json_t *j, *m;
	char id[32], path[128];
	size_t i, counts[3] = { 0 };
	get_t g;

	env_open(e, 0);
	j = get_json(e, "/live/api/matches", 200);
	assert_int_equal(jint(j, "n"), 24);
	assert_int_equal(json_array_size(json_object_get(j, "matches")), 24);
	json_array_foreach(json_object_get(j, "matches"), i, m)
	{
		const char *st = jstr(m, "status");
		snprintf(id, sizeof id, "%zu", i + 1);
		assert_string_equal(jstr(m, "id"), id);
		counts[strcmp(st, "live") == 0 ? 0 : strcmp(st, "upcoming") == 0 ? 1 : 2]++;
		assert_true(jint(json_object_get(m, "score"), "home") >= 0);
		assert_true(jint(m, "minute") >= 0 && jint(m, "minute") <= 90);
	}
	assert_true(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
	json_decref(j);

	/* errors: a bad value, an unknown id, a goal for a match not live */
	json_decref(get_json(e, "/live/ctl?speed=fast", 400));
	json_decref(get_json(e, "/live/ctl/goal?id=99", 404));
	json_decref(get_json(e, "/live/ctl/goal", 400));
	json_decref(get_json(e, "/live/ctl/launch?id=1", 404));
	json_decref(get_json(e, "/live/api/match/0", 404));
	first_with_status(e, "upcoming", id, sizeof id);
	snprintf(path, sizeof path, "/live/ctl/goal?id=%s", id);
	j = get_json(e, path, 409);
	assert_non_null(strstr(jstr(j, "error"), "not live"));
	json_decref(j);

	/* start an upcoming match: live at once, minute 1, 0-0 */
	snprintf(path, sizeof path, "/live/ctl/start?id=%s", id);
	j = get_json(e, path, 200);
	m = json_object_get(j, "match");
	assert_string_equal(jstr(m, "status"), "live");
	assert_int_equal(jint(m, "minute"), 1);
	assert_int_equal(jint(j, "version"), jint(m, "version"));
	json_decref(j);

	/* crash: garbage the adapter refuses; fail: 500 for a while */
	snprintf(path, sizeof path, "/live/ctl/crash?id=%s", id);
	j = get_json(e, path, 200);
	assert_string_equal(jstr(json_object_get(j, "match"), "status"), "error");
	json_decref(j);
	snprintf(path, sizeof path, "/live/ctl/fail?id=%s&ms=60000", id);
	json_decref(get_json(e, path, 200));
	snprintf(path, sizeof path, "/live/api/match/%s", id);
	json_decref(get_json(e, path, 500));
	snprintf(path, sizeof path, "/live/match/%s", id);
	get_start(e, path, &g);
	get_wait(e, &g, path);
	assert_int_equal(g.code, 500);

	/* match counts: reset with 50, the listing with ?n=6 */
	j = get_json(e, "/live/ctl/reset?n=50", 200);
	assert_int_equal(jint(j, "n"), 50);
	json_decref(j);
	j = get_json(e, "/live/api/matches", 200);
	assert_int_equal(json_array_size(json_object_get(j, "matches")), 50);
	json_decref(j);
	get_start(e, "/live/?n=6", &g);
	get_wait(e, &g, "/live/?n=6");
	assert_int_equal(g.code, 200);
	j = get_json(e, "/live/api/matches", 200);
	assert_int_equal(json_array_size(json_object_get(j, "matches")), 6);
	json_decref(j);
	json_decref(get_json(e, "/live/ctl?n=2001", 400));
	assert_int_equal(fixture_live_configure(e->pk.fx, 2001, 1, 0), -EINVAL);
	assert_int_equal(fixture_live_configure(e->pk.fx, 10, 1001, 0), -EINVAL);

	env_close(e);
}

/*
 * Long-polling: a held request is answered at once on a change, another at its deadline
 * with the state unchanged; one over the cap gets 503; closing the fixture with requests
 * held leaves nothing open.
 */
static void test_livesite__long_poll(void **state)
{
	env_t *e = *state;
	json_t *j, *ctl;
	char id[16], path[160];
	json_int_t version;
	get_t held, deadline, *left;
	char api[64];
	unsigned long hits;
	uint64_t t0;

	env_open(e, 0);
	assert_int_equal(fixture_live_configure(e->pk.fx, 12, 0, 3), 0); /* paused clock */
	first_with_status(e, "live", id, sizeof id);
	snprintf(path, sizeof path, "/live/api/match/%s", id);
	j = get_json(e, path, 200);
	version = jint(j, "version");
	json_decref(j);

	/* a different version is answered at once */
	snprintf(path, sizeof path, "/live/api/match/%s?since=%lld", id, (long long)version - 1);
	j = get_json(e, path, 200);
	assert_int_equal(jint(j, "version"), version);
	json_decref(j);

	/* the current version is held until the goal */
	snprintf(path, sizeof path, "/live/api/match/%s?since=%lld", id, (long long)version);
	get_start(e, path, &held);
	tu_run_until(&e->pk.loop, &held.done, 500);
	assert_false(held.done);
	snprintf(path, sizeof path, "/live/ctl/goal?id=%s&side=away", id);
	t0 = tu_now_ms(); /* before the goal: the held answer may come before ctl's own */
	ctl = get_json(e, path, 200);
	get_wait(e, &held, "the held long-poll");
	assert_int_equal(held.code, 200);
	assert_non_null(held.json);
	assert_int_equal(jint(held.json, "version"), jint(ctl, "version"));
	assert_true(jint(held.json, "version") > version);
	assert_true(held.t_done - t0 < 5000); /* answered by the change, not its 25 s wait */
	json_decref(held.json);
	version = jint(ctl, "version");
	json_decref(ctl);

	/* muted: an open page's poll hangs past its wait, a new page's first poll (since=-1)
	 * is answered at once; unmuting answers the hung one */
	snprintf(path, sizeof path, "/live/ctl/mute?id=%s", id);
	json_decref(get_json(e, path, 200));
	snprintf(path, sizeof path, "/live/api/match/%s?since=%lld&wait=300", id,
	         (long long)version);
	get_start(e, path, &held);
	tu_run_until(&e->pk.loop, &held.done, 1000);
	assert_false(held.done);
	snprintf(path, sizeof path, "/live/api/match/%s?since=-1", id);
	json_decref(get_json(e, path, 200));
	snprintf(path, sizeof path, "/live/ctl/mute?id=%s&ms=0", id);
	ctl = get_json(e, path, 200);
	get_wait(e, &held, "the long-poll held by the mute");
	assert_int_equal(held.code, 200);
	json_decref(held.json);
	version = jint(ctl, "version");
	json_decref(ctl);

	/* nothing changes: answered at its deadline, unchanged */
	snprintf(path, sizeof path, "/live/api/match/%s?since=%lld&wait=300", id,
	         (long long)version);
	get_start(e, path, &deadline);
	tu_run_until(&e->pk.loop, &deadline.done, 100);
	assert_false(deadline.done);
	get_wait(e, &deadline, "the long-poll with wait=300");
	assert_int_equal(deadline.code, 200);
	assert_int_equal(jint(deadline.json, "version"), version);
	json_decref(deadline.json);

	/* FIXTURE_HELD_MAX requests held: one more gets 503 at once; then the fixture closes
	 * with all of them held: they fail and nothing stays open */
	left = calloc(FIXTURE_HELD_MAX + 1, sizeof *left);
	assert_non_null(left);
	snprintf(path, sizeof path, "/live/api/match/%s?since=%lld&wait=60000", id,
	         (long long)version);
	snprintf(api, sizeof api, "/live/api/match/%s", id);
	hits = fixture_hits(e->pk.fx, api);
	for (int i = 0; i < FIXTURE_HELD_MAX; i++)
		get_start(e, path, &left[i]);
	t0 = tu_now_ms();
	while (fixture_hits(e->pk.fx, api) < hits + FIXTURE_HELD_MAX && tu_now_ms() - t0 < WAIT_MS)
		tu_run_until(&e->pk.loop, &(int){ 0 }, 20);
	assert_int_equal(fixture_hits(e->pk.fx, api), hits + FIXTURE_HELD_MAX);
	tu_run_until(&e->pk.loop, &(int){ 0 }, 200);
	for (int i = 0; i < FIXTURE_HELD_MAX; i++)
		assert_false(left[i].done);
	get_start(e, path, &left[FIXTURE_HELD_MAX]);
	get_wait(e, &left[FIXTURE_HELD_MAX], "one long-poll over the cap");
	assert_int_equal(left[FIXTURE_HELD_MAX].code, 503);
	fixture_close(e->pk.fx, pk_on_fx_closed, &e->pk);
	e->pk.fx = NULL;
	assert_true(tu_run_until(&e->pk.loop, &e->pk.fx_closed, 5000));
	for (int i = 0; i < FIXTURE_HELD_MAX; i++) {
		assert_true(tu_run_until(&e->pk.loop, &left[i].done, 5000));
		assert_int_not_equal(left[i].status, 0);
	}
	free(left);
	env_close(e);
}

/*
 * The site's own clock: a long-poll on an upcoming match is answered by its kick-off (the
 * held request's timer, after a speed change re-armed it); then at high speed the match
 * runs to full time with its version and minute never going back.
 */
static void test_livesite__clock(void **state)
{
	env_t *e = *state;
	json_t *j, *m;
	char id[32] = "", path[160];
	json_int_t version, minute = 0;
	get_t held;
	uint64_t t0;
	size_t i;

	env_open(e, 0);
	assert_int_equal(fixture_live_configure(e->pk.fx, 24, 0, 5), 0); /* paused */
	/* the next match to kick off: the highest upcoming id */
	j = get_json(e, "/live/api/matches", 200);
	json_array_foreach(json_object_get(j, "matches"), i,
	                   m) if (strcmp(jstr(m, "status"), "upcoming") == 0)
	        snprintf(id, sizeof id, "%s", jstr(m, "id"));
	json_decref(j);
	assert_true(id[0]);
	snprintf(path, sizeof path, "/live/api/match/%s", id);
	j = get_json(e, path, 200);
	version = jint(j, "version");
	json_decref(j);

	snprintf(path, sizeof path, "/live/api/match/%s?since=%lld&wait=20000", id,
	         (long long)version);
	get_start(e, path, &held);
	tu_run_until(&e->pk.loop, &held.done, 300);
	assert_false(held.done); /* paused: nothing happens */
	/* 100x: the kick-off, 22.5 s of demo time away, comes in about 0.2 s */
	json_decref(get_json(e, "/live/ctl?speed=100", 200));
	t0 = tu_now_ms();
	get_wait(e, &held, "the long-poll on an upcoming match");
	assert_int_equal(held.code, 200);
	assert_string_equal(jstr(held.json, "status"), "live");
	assert_true(jint(held.json, "version") > version);
	assert_true(held.t_done - t0 < 15000); /* by the kick-off, not the 20 s deadline */
	version = jint(held.json, "version");
	json_decref(held.json);

	/* 1000x: full time within a fraction of a second, never going back */
	json_decref(get_json(e, "/live/ctl?speed=1000", 200));
	snprintf(path, sizeof path, "/live/api/match/%s", id);
	t0 = tu_now_ms();
	for (;;) {
		j = get_json(e, path, 200);
		assert_true(jint(j, "version") >= version);
		assert_true(jint(j, "minute") >= minute);
		version = jint(j, "version");
		minute = jint(j, "minute");
		if (strcmp(jstr(j, "status"), "finished") == 0)
			break;
		assert_string_equal(jstr(j, "status"), "live");
		json_decref(j);
		if (tu_now_ms() - t0 > 20000)
			fail_msg("match %s did not finish at 1000x", id);
		tu_run_until(&e->pk.loop, &(int){ 0 }, 20);
	}
	assert_int_equal(jint(j, "minute"), 90);
	assert_string_equal(jstr(j, "last_event"), "full time");
	json_decref(j);
	env_close(e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_livesite__api_and_control, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_livesite__long_poll, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_livesite__clock, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_livesite__adapter_in_chromium, env_setup,
		                                env_teardown),
	};

	if (tu_browser_test_init(argc, argv))
		return 127; /* exec failed */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
