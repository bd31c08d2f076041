/*
 * test_runner_targets: targets a user writes without C (issue 16), run by the runner in
 * process with a real pool and Chromium on the fixture's pages, checked by what the runner
 * publishes and what the fixture served: script targets in navigate, watch and push mode,
 * scripts that throw, return a non-object, return too much or never resolve; discovery
 * from a listing whose entries come, go and change class; actions with an optional consent
 * button; a wait_for on a placeholder that is filled later; per-target headers, cookies and
 * user agent on the server's side. Each case ends with the whole close path, audited
 * (runkit: loop closes, no fd, no Chromium process left).
 */
#include "tests/support/runkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

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

/* rh_targets() with ' standing for " (the scripts in them use backquotes for strings). */
static void targets(rh_t *h, const char *text)
{
	char *t = strdup(text);

	assert_non_null(t);
	for (char *p = t; *p; p++)
		if (*p == '\'')
			*p = '"';
	rh_targets(h, "", t);
	free(t);
}

/* The data of id's newest snapshot (borrowed), failing the test if it has none. */
static json_t *data_of(rh_t *h, const char *id)
{
	json_t *s = latest(h, id);

	if (!s)
		fail_msg("target %s published nothing", id);
	return json_object_get(s, "data");
}

static const char *str_field(rh_t *h, const char *id, const char *field)
{
	const char *v = json_string_value(json_object_get(data_of(h, id), field));

	if (!v)
		fail_msg("target %s: data.%s is not a string", id, field);
	return v;
}

/* Waits until id has failed at least once; returns its view. */
static find_t failed(rh_t *h, const char *id, uint64_t ms)
{
	find_t f;

	RUN_UNTIL(h, (f = view(h, id)).found && f.v.failures > 0, ms);
	f = view(h, id);
	if (!f.found || !f.v.failures)
		fail_msg("target %s never failed", id);
	print_message("%s: kind %s: %s\n", id, f.v.last_error_kind, f.last_error);
	return f;
}

/* ---- tests ---- */

#define SCORE_JS                                                                          \
	"(p) => ({ score: document.querySelector(`#score`).textContent.trim(), "          \
	"minute: +document.querySelector(`#minute`).textContent.replace(/[^0-9]/g, ``), " \
	"tag: p.tag })"

/* A script target in each read mode on a live match: each publishes the script's object
 * (with its params), and a goal reaches the watched and the pushing page's snapshots. */
static void test_targets__script_in_navigate_watch_and_push(void **state)
{
	static rh_t h;
	runner_opts_t ro;

	tu_require_chromium();
	opts(&ro);
	rh_open(&h, &ro);
	rh_get(&h, "/live/ctl/start?id=5");
	targets(&h,
	        "{'targets': ["
	        "{'id': 'nav', 'adapter': 'script', 'url': 'BASE/live/match/5', 'class': 'live', "
	        "'interval_seconds': 1, 'wait_for': '#score[data-version]', "
	        "'params': {'tag': 'n'}, 'script': '" SCORE_JS "'},"
	        "{'id': 'watch', 'adapter': 'script', 'url': 'BASE/live/match/5', "
	        "'class': 'live', 'interval_seconds': 1, 'mode': 'watch', "
	        "'wait_for': '#score[data-version]', 'params': {'tag': 'w'}, "
	        "'script': '" SCORE_JS "'},"
	        "{'id': 'push', 'adapter': 'script', 'url': 'BASE/live/match/5', "
	        "'class': 'live', 'interval_seconds': 30, 'mode': 'watch', 'push': true, "
	        "'watch_root': '#match', 'wait_for': '#score[data-version]', "
	        "'params': {'tag': 'p'}, 'script': '" SCORE_JS "'}]}");
	RUN_UNTIL(&h, published(&h, "nav") && published(&h, "watch") && published(&h, "push"),
	          60000);
	assert_string_equal(str_field(&h, "nav", "tag"), "n");
	assert_string_equal(str_field(&h, "watch", "tag"), "w");
	assert_string_equal(str_field(&h, "push", "tag"), "p");
	assert_string_equal(str_field(&h, "nav", "score"), "0-0");
	assert_string_equal(str_field(&h, "push", "score"), "0-0");
	rh_get(&h, "/live/ctl/goal?id=5&side=home");
	/* the pushing page is read on its interval only every 30 s: within that, a new
	 * score there came from the page's own push */
	RUN_UNTIL(&h,
	          strcmp(str_field(&h, "push", "score"), "1-0") == 0 &&
	                  strcmp(str_field(&h, "watch", "score"), "1-0") == 0 &&
	                  strcmp(str_field(&h, "nav", "score"), "1-0") == 0,
	          25000);
	assert_string_equal(str_field(&h, "push", "score"), "1-0");
	assert_string_equal(str_field(&h, "watch", "score"), "1-0");
	assert_string_equal(str_field(&h, "nav", "score"), "1-0");
	assert_int_equal(view(&h, "push").v.failures, 0);
	rh_close(&h);
}

/* Scripts that fail, each with kind script and a message saying how (the line of a throw),
 * in navigate and in watch mode; one that never resolves times out, and the page it ran
 * in does not stop the others. */
static void test_targets__script_failures(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	find_t f;

	tu_require_chromium();
	opts(&ro);
	rh_open(&h, &ro);
	targets(&h, "{'targets': ["
	            "{'id': 'throws', 'adapter': 'script', 'url': 'BASE/static', 'class': 'live', "
	            "'script': '() => {\\n  const x = 1;\\n  throw new Error(`boom ${x}`);\\n}'},"
	            "{'id': 'number', 'adapter': 'script', 'url': 'BASE/static', 'class': 'live', "
	            "'script': '() => 42'},"
	            "{'id': 'big', 'adapter': 'script', 'url': 'BASE/static', 'class': 'live', "
	            "'script': 'async () => ({ s: `x`.repeat(300000) })'},"
	            "{'id': 'never', 'adapter': 'script', 'url': 'BASE/static', 'class': 'live', "
	            "'timeout_seconds': 3, 'script': '() => new Promise(() => {})'},"
	            "{'id': 'wthrows', 'adapter': 'script', 'url': 'BASE/static', 'class': 'live', "
	            "'mode': 'watch', 'script': 'function () { return JSON.parse(`{`); }'},"
	            "{'id': 'ok', 'adapter': 'script', 'url': 'BASE/static', 'class': 'live', "
	            "'script': 'async function () { return { title: document.title }; }'}]}");
	f = failed(&h, "throws", 60000);
	assert_string_equal(f.v.last_error_kind, RUNNER_KIND_SCRIPT);
	assert_non_null(strstr(f.last_error, "boom 1"));
	assert_non_null(strstr(f.last_error, "(line 3)"));
	f = failed(&h, "number", 30000);
	assert_string_equal(f.v.last_error_kind, RUNNER_KIND_SCRIPT);
	assert_non_null(strstr(f.last_error, "returned a number, expected a JSON object"));
	f = failed(&h, "big", 30000);
	assert_string_equal(f.v.last_error_kind, RUNNER_KIND_SCRIPT);
	assert_non_null(strstr(f.last_error, "over the cap of 262144"));
	f = failed(&h, "never", 30000);
	assert_string_equal(f.v.last_error_kind, RUNNER_KIND_TIMEOUT);
	f = failed(&h, "wthrows", 30000);
	assert_string_equal(f.v.last_error_kind, RUNNER_KIND_SCRIPT);
	assert_non_null(strstr(f.last_error, "SyntaxError"));
	RUN_UNTIL(&h, published(&h, "ok") >= 2, 30000);
	assert_string_equal(str_field(&h, "ok", "title"), "Static page");
	assert_int_equal(published(&h, "throws") + published(&h, "number") + published(&h, "big") +
	                         published(&h, "never") + published(&h, "wthrows"),
	                 0);
	rh_close(&h);
}

/* The children of L, counted from the runner's table. */
typedef struct kids {
	size_t n;
	char cls[8][16]; /* class of L-1..L-8 ("" absent) */
	uint64_t seq[8];
} kids_t;

static void kids_cb(const runner_target_view_t *v, void *ud)
{
	kids_t *k = ud;
	int i;

	if (strcmp(v->source, "L") != 0)
		return;
	k->n++;
	if (sscanf(v->id, "L-%d", &i) == 1 && i >= 1 && i <= 8) {
		snprintf(k->cls[i - 1], sizeof k->cls[i - 1], "%s", sched_class_name(v->klass));
		k->seq[i - 1] = v->seq;
	}
}

static kids_t kids(rh_t *h)
{
	kids_t k = { 0 };

	runner_foreach_target(h->runner, kids_cb, &k);
	return k;
}

/* Discovery from the live site's listing with a generic "links" rule: one child per row,
 * its id from the URL, its class from data-status; rows that go take their children with
 * them, children that stay keep their state, a row whose status changes moves its child. */
static void test_targets__discovery_from_a_listing(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	kids_t k;
	uint64_t seq1;

	tu_require_chromium();
	opts(&ro);
	rh_open(&h, &ro);
	/* 6 matches, clock paused: ids 1-2 upcoming, 3-4 live, 5-6 finished */
	assert_int_equal(fixture_live_configure(h.fx, 6, 0, 1), 0);
	targets(&h, "{'targets': [{'id': 'L', 'adapter': 'generic', 'url': 'BASE/live/', "
	            "'class': 'live', 'interval_seconds': 1, 'discover': true, "
	            "'links': {'selector': 'tr.match', 'id': '/live/match/(\\\\d+)$', "
	            "'class': {'attr': 'data-status', 'live': ['live'], "
	            "'imminent': ['upcoming'], 'completed': ['finished']}}, "
	            "'children': {'adapter': 'generic', 'interval_seconds': 1, "
	            "'fields': {'score': {'selector': '#score'}}}}]}");
	RUN_UNTIL(&h, (k = kids(&h)).n == 6 && k.seq[0] > 0, 60000);
	k = kids(&h);
	assert_int_equal(k.n, 6);
	for (int i = 0; i < 6; i++)
		print_message("L-%d: %s\n", i + 1, k.cls[i]);
	assert_true(k.seq[0] > 0);
	assert_int_equal(json_integer_value(json_object_get(data_of(&h, "L"), "discovered")), 6);
	seq1 = k.seq[0];
	/* the site shrinks to 3 matches: L-4..L-6 go, L-1 stays and keeps its state */
	rh_get(&h, "/live/ctl?n=3&speed=0");
	RUN_UNTIL(&h, kids(&h).n == 3, 30000);
	k = kids(&h);
	assert_int_equal(k.n, 3);
	assert_true(k.seq[0] >= seq1);
	assert_string_equal(k.cls[3], "");
	/* a match kicks off: the listing says live, and its child follows */
	rh_get(&h, "/live/ctl/start?id=1");
	RUN_UNTIL(&h, strcmp(kids(&h).cls[0], "live") == 0, 30000);
	assert_string_equal(kids(&h).cls[0], "live");
	rh_get(&h, "/live/ctl/finish?id=1");
	RUN_UNTIL(&h, strcmp(kids(&h).cls[0], "completed") == 0, 30000);
	assert_string_equal(kids(&h).cls[0], "completed");
	rh_close(&h);
}

/* Actions before extraction: an optional consent click that finds its button, the same
 * where the banner never comes (skipped), a required click that never finds one (kind
 * action, naming the step), a tab click that changes what is read. */
static void test_targets__actions_with_an_optional_consent(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	find_t f;

	tu_require_chromium();
	opts(&ro);
	rh_open(&h, &ro);
	targets(&h, "{'targets': ["
	            "{'id': 'banner', 'adapter': 'generic', 'url': 'BASE/actions?consent_ms=200', "
	            "'class': 'live', 'actions': [{'click': 'button.accept', 'optional': true}], "
	            "'fields': {'consent': {'selector': '#consent'}}},"
	            "{'id': 'nobanner', 'adapter': 'generic', 'url': 'BASE/actions?consent_ms=-1', "
	            "'class': 'live', 'actions': [{'click': 'button.accept', 'optional': true}, "
	            "{'click': '#tab-live'}], "
	            "'fields': {'consent': {'selector': '#consent'}, 'tab': {'selector': '#tab'}}},"
	            "{'id': 'required', 'adapter': 'generic', 'url': 'BASE/actions?consent_ms=-1', "
	            "'class': 'live', 'actions': [{'wait_ms': 10}, "
	            "{'click': 'button.accept', 'timeout_ms': 500}], "
	            "'fields': {'consent': {'selector': '#consent'}}}]}");
	RUN_UNTIL(&h, published(&h, "banner") >= 2 && published(&h, "nobanner") >= 2, 60000);
	assert_string_equal(str_field(&h, "banner", "consent"), "accepted");
	assert_string_equal(str_field(&h, "nobanner", "consent"), "pending");
	assert_string_equal(str_field(&h, "nobanner", "tab"), "live");
	f = failed(&h, "required", 30000);
	assert_string_equal(f.v.last_error_kind, RUNNER_KIND_ACTION);
	assert_non_null(strstr(f.last_error, "actions[1] click \"button.accept\""));
	assert_int_equal(published(&h, "required"), 0);
	rh_close(&h);
}

/* wait_for means visible: a placeholder that exists empty at load and is filled later is
 * read filled; with "wait_for_state": "attached" it is read at once, empty. */
static void test_targets__wait_for_a_placeholder(void **state)
{
	static rh_t h;
	runner_opts_t ro;

	tu_require_chromium();
	opts(&ro);
	ro.sched.interval_ms[SCHED_LIVE] = 60000; /* one read each */
	rh_open(&h, &ro);
	targets(&h, "{'targets': ["
	            "{'id': 'visible', 'adapter': 'generic', 'url': 'BASE/late-fill?ms=3000', "
	            "'class': 'live', 'wait_for': '#score', "
	            "'fields': {'score': {'selector': '#score', 'required': false}}},"
	            "{'id': 'attached', 'adapter': 'generic', 'url': 'BASE/late-fill?ms=3000', "
	            "'class': 'live', 'wait_for': '#score', 'wait_for_state': 'attached', "
	            "'fields': {'score': {'selector': '#score', 'required': false}}}]}");
	RUN_UNTIL(&h, published(&h, "visible") && published(&h, "attached"), 60000);
	assert_string_equal(str_field(&h, "visible", "score"), "2-1");
	assert_string_equal(str_field(&h, "attached", "score"), "");
	rh_close(&h);
}

#define HEADERS_JS "() => JSON.parse(document.querySelector(`#headers`).textContent)"

/* A target's own headers (merged over the global ones), cookies and user agent reach the
 * server with its page's request; another target's page has none of them. */
static void test_targets__headers_and_cookies_reach_the_server(void **state)
{
	static rh_t h;
	runner_opts_t ro;
	json_t *d;

	tu_require_chromium();
	opts(&ro);
	ro.sched.interval_ms[SCHED_LIVE] = 60000;
	rh_open(&h, &ro);
	targets(&h, "{'targets': ["
	            "{'id': 'own', 'adapter': 'script', 'url': 'BASE/echo-headers?own', "
	            "'class': 'live', 'headers': {'X-Team': 'blue'}, "
	            "'cookies': [{'name': 'lang', 'value': 'fr'}], "
	            "'user_agent': 'cdpilot-test-agent/1', 'script': '" HEADERS_JS "'},"
	            "{'id': 'plain', 'adapter': 'script', 'url': 'BASE/echo-headers?plain', "
	            "'class': 'live', 'script': '" HEADERS_JS "'}]}");
	RUN_UNTIL(&h, published(&h, "own") && published(&h, "plain"), 60000);
	d = data_of(&h, "own");
	assert_string_equal(json_string_value(json_object_get(d, "x-team")), "blue");
	assert_non_null(strstr(json_string_value(json_object_get(d, "cookie")), "lang=fr"));
	assert_string_equal(json_string_value(json_object_get(d, "user-agent")),
	                    "cdpilot-test-agent/1");
	d = data_of(&h, "plain");
	assert_null(json_object_get(d, "x-team"));
	assert_null(json_object_get(d, "cookie"));
	assert_null(strstr(json_string_value(json_object_get(d, "user-agent")), "cdpilot-test"));
	rh_close(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets__script_in_navigate_watch_and_push),
		cmocka_unit_test(test_targets__script_failures),
		cmocka_unit_test(test_targets__discovery_from_a_listing),
		cmocka_unit_test(test_targets__actions_with_an_optional_consent),
		cmocka_unit_test(test_targets__wait_for_a_placeholder),
		cmocka_unit_test(test_targets__headers_and_cookies_reach_the_server),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
