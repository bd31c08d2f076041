/*
 * Integration tests for what issue 16 added to cdp_page, against the real Chromium and
 * fixture pages on 127.0.0.1: page actions (a consent button that appears late, an optional
 * click on nothing, a required one failing by name, fill and Enter submitting a form the
 * fixture records, a scroll to the bottom that loads more, wait_ms, malformed lists),
 * cdp_page_call (objects, arguments, async, exceptions with their line, syntax errors,
 * values that are no object or too big, a function that never returns, and 200 calls that
 * leave nothing behind in the page's heap), waits that mean visible, the composed read with
 * actions and a function, and cookies in the set-up of a held page. Each case has its own
 * browser (pagekit) and audits its teardown.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_page.h"
#include "tests/fixture/fixture.h"
#include "tests/support/pagekit.h"
#include "tests/support/testutil.h"

/* The outcome of one operation, copied out of its callback. */
typedef struct res {
	int done, calls, status;
	char why[2048];
	json_t *value;
} res_t;

static void res_reset(res_t *r)
{
	json_decref(r->value);
	memset(r, 0, sizeof *r);
}

static void on_done(cdp_page_t *p, int status, const char *why, void *ud)
{
	res_t *r = ud;

	r->calls++;
	r->done = 1;
	r->status = status;
	snprintf(r->why, sizeof r->why, "%s", why);
}

static void on_value(cdp_page_t *p, int status, json_t *value, const char *why, void *ud)
{
	res_t *r = ud;

	r->calls++;
	r->done = 1;
	r->status = status;
	snprintf(r->why, sizeof r->why, "%s", why);
	r->value = value ? json_incref(value) : NULL;
	if (status == 0)
		assert_true(json_is_object(value));
	else
		assert_null(value);
}

/* Runs the actions given as JSON text on k->page; returns how long they took (ms). */
static uint64_t act(pagekit_t *k, const char *json, uint32_t timeout_ms, res_t *r)
{
	json_error_t err;
	json_t *a = json_loads(json, 0, &err);
	uint64_t t0 = tu_now_ms();

	if (!a)
		fail_msg("bad test JSON %s: %s", json, err.text);
	res_reset(r);
	assert_int_equal(cdp_page_actions(k->page, a, timeout_ms, on_done, r), 0);
	assert_int_equal(r->calls, 0); /* never from inside the call */
	json_decref(a);                /* copied */
	assert_true(tu_run_until(&k->loop, &r->done, PK_WAIT_MS));
	assert_int_equal(r->calls, 1);
	return tu_now_ms() - t0;
}

/* Calls src with args (JSON text or NULL) on k->page. */
static void call(pagekit_t *k, const char *src, const char *args, size_t cap, uint32_t timeout_ms,
                 res_t *r)
{
	json_t *a = args ? json_loads(args, 0, NULL) : NULL;

	if (args && !a)
		fail_msg("bad test JSON %s", args);
	res_reset(r);
	assert_int_equal(cdp_page_call(k->page, src, a, cap, timeout_ms, on_value, r), 0);
	json_decref(a);
	assert_true(tu_run_until(&k->loop, &r->done, PK_WAIT_MS));
	assert_int_equal(r->calls, 1);
}

static const char *text_of(pagekit_t *k, const char *css, char *buf, size_t len)
{
	char js[256];
	json_t *v;

	snprintf(js, sizeof js, "document.querySelector('%s').textContent", css);
	v = pk_evaluate(k, js);
	assert_true(json_is_string(v));
	snprintf(buf, len, "%s", json_string_value(v));
	json_decref(v);
	return buf;
}

/* ---- actions ---- */

/* A consent button that appears after 300 ms is clicked (a trusted click at its centre);
 * an optional click on nothing costs its own short wait, not the deadline, and the next
 * step runs; a required one fails naming the step. */
static void test_cdp_actions__click_consent_optional_and_required(void **state)
{
	pagekit_t *k = *state;
	res_t r = { 0 };
	char buf[256];
	json_t *v;
	uint64_t dt;

	pk_open(k, 1);
	pk_page_open(k);
	pk_navigate(k, "/actions?consent_ms=300");
	act(k, "[{\"click\": \"button.accept\"}]", 10000, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(text_of(k, "#consent", buf, sizeof buf), "accepted");
	v = pk_evaluate(k, "JSON.stringify(window.clicks)");
	assert_string_equal(json_string_value(v), "[true]"); /* one click, trusted */
	json_decref(v);

	/* absent and optional: skipped after at most CDP_ACTION_OPTIONAL_WAIT_MS */
	pk_navigate(k, "/actions?consent_ms=-1");
	dt = act(k,
	         "[{\"click\": \"button.accept\", \"optional\": true}, {\"click\": \"#tab-live\"}]",
	         20000, &r);
	print_message("an optional click on nothing, then a click, took %llu ms\n",
	              (unsigned long long)dt);
	assert_int_equal(r.status, 0);
	assert_true(dt >= CDP_ACTION_OPTIONAL_WAIT_MS && dt < 15000);
	assert_string_equal(text_of(k, "#tab", buf, sizeof buf), "live");
	assert_string_equal(text_of(k, "#consent", buf, sizeof buf), "pending");

	/* absent and required: the step is named, with its own cap or the whole deadline */
	act(k, "[{\"wait_ms\": 10}, {\"click\": \"button.accept\", \"timeout_ms\": 500}]", 20000,
	    &r);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_string_equal(r.why, "actions[1] click \"button.accept\": no visible element matched "
	                           "within 0.5 s");
	act(k, "[{\"click\": \"button.accept\"}]", 800, &r);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_non_null(strstr(r.why, "actions[0] click \"button.accept\": no visible element "
	                              "matched within 0."));
	act(k, "[{\"wait_for\": \"#nothing\", \"state\": \"attached\", \"timeout_ms\": 300}]",
	    20000, &r);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_string_equal(r.why, "actions[0] wait_for \"#nothing\": no element matched within "
	                           "0.3 s");
	/* a selector the page cannot parse: the page's exception, named */
	act(k, "[{\"click\": \"#[\"}]", 5000, &r);
	assert_int_equal(r.status, CDP_EEXCEPTION);
	assert_non_null(strstr(r.why, "actions[0] click \"#[\": "));
	assert_non_null(strstr(r.why, "not a valid selector"));

	res_reset(&r);
	pk_close(k);
	pk_finish(k);
}

/* fill and Enter submit the form: the fixture records the query it got. */
static void test_cdp_actions__fill_and_press_enter_submit(void **state)
{
	pagekit_t *k = *state;
	res_t r = { 0 };
	char q[256], buf[256];

	pk_open(k, 1);
	pk_page_open(k);
	pk_navigate(k, "/actions?consent_ms=-1");
	act(k, "[{\"fill\": [\"#q\", \"hello w\\u00f6rld\"]}]", 10000, &r);
	assert_int_equal(r.status, 0);
	/* the old value was cleared, and input events fired */
	assert_string_equal(text_of(k, "#typed", buf, sizeof buf), "hello w\xc3\xb6rld");
	assert_int_equal(fixture_last_query(k->fx, "/search", q, sizeof q), -ENOENT);
	act(k, "[{\"press\": \"Enter\"}]", 10000, &r);
	assert_int_equal(r.status, 0);
	pk_wait_for(k, "#result");
	assert_int_equal(fixture_last_query(k->fx, "/search", q, sizeof q), 0);
	assert_string_equal(q, "q=hello+w%C3%B6rld");
	assert_string_equal(text_of(k, "#result", buf, sizeof buf), "hello w\xc3\xb6rld");

	res_reset(&r);
	pk_close(k);
	pk_finish(k);
}

/* Scrolling to the bottom makes the page load more; wait_ms waits; top scrolls back. */
static void test_cdp_actions__scroll_and_wait_ms(void **state)
{
	pagekit_t *k = *state;
	res_t r = { 0 };
	char buf[256];
	json_t *v;
	uint64_t dt;

	pk_open(k, 1);
	pk_page_open(k);
	pk_navigate(k, "/actions?consent_ms=-1");
	assert_string_equal(text_of(k, "#lazy", buf, sizeof buf), "not loaded");
	act(k, "[{\"scroll\": \"bottom\"}, {\"wait_for\": \"#more\"}]", 10000, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(text_of(k, "#lazy", buf, sizeof buf), "loaded");
	act(k, "[{\"scroll\": \"top\"}]", 10000, &r);
	assert_int_equal(r.status, 0);
	v = pk_evaluate(k, "window.scrollY");
	assert_int_equal(json_number_value(v), 0);
	json_decref(v);
	act(k, "[{\"scroll\": \"#more\"}]", 10000, &r);
	assert_int_equal(r.status, 0);
	v = pk_evaluate(k, "window.scrollY > 0");
	assert_true(json_is_true(v));
	json_decref(v);
	dt = act(k, "[{\"wait_ms\": 300}, {\"press\": \"Tab\"}, {\"press\": \"x\"}]", 10000, &r);
	assert_int_equal(r.status, 0);
	assert_true(dt >= 300);
	/* a wait_ms past the whole deadline fails by the deadline */
	act(k, "[{\"wait_ms\": 5000}]", 300, &r);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_non_null(strstr(r.why, "actions[0] wait_ms 5000: "));

	res_reset(&r);
	pk_close(k);
	pk_finish(k);
}

/* A malformed list is refused at once and nothing runs. */
static void test_cdp_actions__malformed_lists_refused(void **state)
{
	pagekit_t *k = *state;
	static const char *const bad[] = {
		"{\"click\": \"a\"}",
		"[1]",
		"[{}]",
		"[{\"click\": \"a\", \"wait_ms\": 3}]",
		"[{\"click\": \"\"}]",
		"[{\"click\": \"a\", \"bogus\": 1}]",
		"[{\"wait_ms\": 60001}]",
		"[{\"wait_ms\": \"5\"}]",
		"[{\"fill\": [\"#q\"]}]",
		"[{\"fill\": \"#q\"}]",
		"[{\"press\": \"Hyper\"}]",
		"[{\"press\": \"ab\"}]",
		"[{\"click\": \"a\", \"state\": \"attached\"}]",
		"[{\"wait_for\": \"a\", \"state\": \"gone\"}]",
		"[{\"click\": \"a\", \"optional\": 1}]",
		"[{\"click\": \"a\", \"timeout_ms\": -1}]",
	};
	res_t r = { 0 };

	pk_open(k, 1);
	pk_page_open(k);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *a = json_loads(bad[i], JSON_DECODE_ANY, NULL);
		assert_non_null(a);
		if (cdp_page_actions(k->page, a, 1000, on_done, &r) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		json_decref(a);
	}
	act(k, "[]", 1000, &r); /* nothing to do is fine */
	assert_int_equal(r.status, 0);

	res_reset(&r);
	pk_close(k);
	pk_finish(k);
}

/* ---- cdp_page_call ---- */

/* Objects, arguments as data, async functions, exceptions with their line, syntax errors,
 * rejected promises, values that are no object, too big or not serialisable. */
static void test_cdp_actions__call_values_and_errors(void **state)
{
	pagekit_t *k = *state;
	res_t r = { 0 };

	pk_open(k, 1);
	pk_page_open(k);
	pk_navigate(k, "/static");

	call(k, "() => ({ title: document.title, n: 1 })", NULL, 0, 5000, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_string_value(json_object_get(r.value, "title")), "Static page");
	/* arguments are data: a string that looks like code stays a string */
	call(k, "(p, q) => ({ got: p, q })", "[{\"team\": \"x'); alert(1); ('\"}, [1, 2]]", 0, 5000,
	     &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(r.value, "got"), "team")),
	        "x'); alert(1); ('");
	assert_int_equal(json_array_size(json_object_get(r.value, "q")), 2);
	call(k,
	     "async function (p) {\n  await new Promise((ok) => setTimeout(ok, 50));\n"
	     "  return { later: p.v * 2 };\n}",
	     "[{\"v\": 21}]", 0, 5000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(json_integer_value(json_object_get(r.value, "later")), 42);

	call(k, "() => {\n  const a = 1;\n  throw new Error('boom ' + a);\n}", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EEXCEPTION);
	assert_string_equal(r.why, "Error: boom 1 (line 3)");
	call(k, "() => {\n  const a = 1;\n  return { a: ;\n}", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EEXCEPTION);
	assert_string_equal(r.why, "SyntaxError: Unexpected token ';' (line 3)");
	call(k, "async () => {\n  await 0;\n  throw new TypeError('late');\n}", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EEXCEPTION);
	assert_string_equal(r.why, "TypeError: late (line 3)");
	call(k, "() => Promise.reject('nope')", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EEXCEPTION);
	assert_non_null(strstr(r.why, "nope"));

	call(k, "() => 5", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EVALUE);
	assert_string_equal(r.why, "returned a number, expected a JSON object");
	call(k, "() => [1, 2]", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EVALUE);
	assert_string_equal(r.why, "returned an array, expected a JSON object");
	call(k, "() => null", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EVALUE);
	assert_string_equal(r.why, "returned null, expected a JSON object");
	call(k, "() => undefined", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EVALUE);
	assert_string_equal(r.why, "returned undefined, expected a JSON object");
	call(k, "() => ({ s: 'x'.repeat(300000) })", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EVALUE);
	assert_string_equal(r.why, "returned 300008 bytes of JSON, over the cap of 262144");
	call(k, "() => ({ s: 'x'.repeat(100) })", NULL, 50, 5000, &r);
	assert_int_equal(r.status, CDP_EVALUE);
	assert_string_equal(r.why, "returned 108 bytes of JSON, over the cap of 50");
	call(k, "() => { const o = {}; o.self = o; return o; }", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EVALUE);
	assert_non_null(strstr(r.why, "returned a value JSON cannot hold: "));
	assert_non_null(strstr(r.why, "circular"));
	call(k, "() => ({ n: 1n })", NULL, 0, 5000, &r);
	assert_int_equal(r.status, CDP_EVALUE);
	assert_non_null(strstr(r.why, "BigInt"));

	/* bad input: refused, no callback */
	assert_int_equal(cdp_page_call(k->page, NULL, NULL, 0, 1000, on_value, &r), -EINVAL);
	{
		json_t *o = json_object();
		assert_int_equal(cdp_page_call(k->page, "() => ({})", o, 0, 1000, on_value, &r),
		                 -EINVAL);
		json_decref(o);
	}

	res_reset(&r);
	pk_close(k);
	pk_finish(k);
}

/* Raw command on the page's session; returns its result (new reference). */
typedef struct raw {
	int done, status;
	json_t *result;
} raw_t;

static void on_raw(cdp_conn_t *c, const cdp_reply_t *rep, void *ud)
{
	raw_t *r = ud;

	r->done = 1;
	r->status = rep->status;
	r->result = rep->result ? json_incref(rep->result) : NULL;
}

static json_t *raw(pagekit_t *k, const char *method, json_t *params)
{
	raw_t r = { 0 };

	assert_int_equal(cdp_conn_send(cdp_page_conn(k->page), cdp_page_session_id(k->page), method,
	                               params, 10000, on_raw, &r, NULL),
	                 0);
	assert_true(tu_run_until(&k->loop, &r.done, PK_WAIT_MS));
	assert_int_equal(r.status, 0);
	return r.result;
}

/* The page's JS heap after a full garbage collection, in bytes. */
static double heap_used(pagekit_t *k)
{
	json_t *h;
	double used;

	json_decref(raw(k, "HeapProfiler.collectGarbage", NULL));
	h = raw(k, "Runtime.getHeapUsage", NULL);
	used = json_number_value(json_object_get(h, "usedSize"));
	json_decref(h);
	return used;
}

/* A function that never returns times out, and the page answers the next call; 200 calls
 * whose values each hold 200 KB in the page leave the heap about where it was: every value
 * was released (without the release, 40 MB would stay reachable). */
static void test_cdp_actions__call_timeout_and_no_leak(void **state)
{
	pagekit_t *k = *state;
	/* each value keeps a 200 KB array, out of its JSON text (not enumerable) */
	static const char fat[] =
	        "(i) => {\n"
	        "  const o = { i };\n"
	        "  Object.defineProperty(o, 'fat', { value: new Array(25000).fill(i + 0.5) });\n"
	        "  return o;\n"
	        "}";
	res_t r = { 0 };
	double before, after;
	char args[32];

	pk_open(k, 1);
	pk_page_open(k);
	pk_navigate(k, "/static");

	call(k, "() => new Promise(() => {})", NULL, 0, 500, &r);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_string_equal(r.why, "the function did not return within 500 ms");
	call(k, "() => ({ after: true })", NULL, 0, 5000, &r);
	assert_int_equal(r.status, 0);
	assert_true(json_is_true(json_object_get(r.value, "after")));

	call(k, fat, "[0]", 0, 5000, &r);
	assert_int_equal(r.status, 0);
	before = heap_used(k);
	for (int i = 1; i <= 200; i++) {
		snprintf(args, sizeof args, "[%d]", i);
		call(k, fat, args, 0, 5000, &r);
		assert_int_equal(r.status, 0);
		assert_int_equal(json_integer_value(json_object_get(r.value, "i")), i);
	}
	after = heap_used(k);
	print_message("heap after 1 call: %.0f KB, after 200 more: %.0f KB\n", before / 1024,
	              after / 1024);
	assert_true(after - before < 8.0 * 1024 * 1024);

	res_reset(&r);
	pk_close(k);
	pk_finish(k);
}

/* ---- waiting ---- */

/* An element that exists empty, display:none or visibility:hidden is not waited for as
 * visible until it is filled or shown; attached returns at once. */
static void test_cdp_actions__wait_visible_vs_attached(void **state)
{
	pagekit_t *k = *state;
	res_t r = { 0 };
	char buf[256];
	static const char *const sel[] = { "#score", "#panel", "#ghost" };

	pk_open(k, 1);
	pk_page_open(k);
	for (size_t i = 0; i < 3; i++) {
		pk_navigate(k, "/late-fill?ms=700");
		res_reset(&r);
		assert_int_equal(cdp_page_wait_for_state(k->page, sel[i], CDP_WAIT_ATTACHED, 5000,
		                                         on_done, &r),
		                 0);
		assert_true(tu_run_until(&k->loop, &r.done, PK_WAIT_MS));
		assert_int_equal(r.status, 0);
		/* attached returned while the page had not changed yet */
		assert_string_equal(text_of(k, "#score", buf, sizeof buf), "");
		res_reset(&r);
		assert_int_equal(cdp_page_wait_for(k->page, sel[i], 10000, on_done, &r), 0);
		assert_true(tu_run_until(&k->loop, &r.done, PK_WAIT_MS));
		assert_int_equal(r.status, 0);
		/* visible returned only once the page filled and showed them */
		assert_string_equal(text_of(k, "#score", buf, sizeof buf), "2-1");
	}
	/* never visible: times out */
	pk_navigate(k, "/late-fill?ms=600000");
	res_reset(&r);
	assert_int_equal(cdp_page_wait_for(k->page, "#panel", 400, on_done, &r), 0);
	assert_true(tu_run_until(&k->loop, &r.done, PK_WAIT_MS));
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_int_equal(
	        cdp_page_wait_for_state(k->page, "#x", (cdp_wait_state_t)7, 400, on_done, &r),
	        -EINVAL);

	res_reset(&r);
	pk_close(k);
	pk_finish(k);
}

/* ---- the composed read ---- */

typedef struct rres {
	int done;
	cdp_read_step_t failed;
	int status;
	char why[1024];
	json_t *value;
} rres_t;

static void on_read(cdp_page_t *p, const cdp_read_result_t *res, void *ud)
{
	rres_t *r = ud;

	r->done = 1;
	r->failed = res->failed;
	r->status = res->status;
	snprintf(r->why, sizeof r->why, "%s", res->why);
	json_decref(r->value);
	r->value = res->value ? json_incref(res->value) : NULL;
}

/* Navigate, actions, wait, function in one read; a failing action ends it at its step. */
static void test_cdp_actions__read_with_actions_and_function(void **state)
{
	pagekit_t *k = *state;
	rres_t r = { 0 };
	char url[256];
	json_t *actions =
	        json_loads("[{\"click\": \"button.accept\"}, {\"click\": \"#tab-live\"}]", 0, NULL);
	json_t *args = json_loads("[{\"sel\": \"#tab\"}]", 0, NULL);
	cdp_read_req_t req = {
		.actions = actions,
		.wait_for = "#consent",
		.function = "(p) => ({ tab: document.querySelector(p.sel).textContent, "
		            "consent: document.querySelector('#consent').textContent })",
		.args = args,
		.timeout_ms = 10000,
	};

	pk_open(k, 1);
	pk_page_open(k);
	fixture_url(k->fx, "/actions?consent_ms=300", url, sizeof url);
	req.url = url;
	assert_int_equal(cdp_page_read(k->page, &req, on_read, &r), 0);
	json_decref(actions); /* the read keeps its own copies */
	json_decref(args);
	assert_true(tu_run_until(&k->loop, &r.done, PK_WAIT_MS));
	assert_int_equal(r.failed, CDP_READ_NONE);
	assert_string_equal(json_string_value(json_object_get(r.value, "tab")), "live");
	assert_string_equal(json_string_value(json_object_get(r.value, "consent")), "accepted");

	/* the consent button is gone now: a required click fails the read at ACTIONS */
	actions = json_loads("[{\"click\": \"button.accept\", \"timeout_ms\": 300}]", 0, NULL);
	req = (cdp_read_req_t){ .actions = actions, .expression = "1", .timeout_ms = 10000 };
	r.done = 0;
	assert_int_equal(cdp_page_read(k->page, &req, on_read, &r), 0);
	assert_true(tu_run_until(&k->loop, &r.done, PK_WAIT_MS));
	assert_int_equal(r.failed, CDP_READ_ACTIONS);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_non_null(strstr(r.why, "actions[0] click \"button.accept\""));
	json_decref(actions);
	/* malformed actions, and both an expression and a function: refused */
	actions = json_loads("[{\"tap\": \"x\"}]", 0, NULL);
	req = (cdp_read_req_t){ .actions = actions, .expression = "1" };
	assert_int_equal(cdp_page_read(k->page, &req, on_read, &r), -EINVAL);
	json_decref(actions);
	req = (cdp_read_req_t){ .expression = "1", .function = "() => ({})" };
	assert_int_equal(cdp_page_read(k->page, &req, on_read, &r), -EINVAL);

	json_decref(r.value);
	pk_close(k);
	pk_finish(k);
}

/* ---- cookies ---- */

typedef struct opened {
	int done, status;
	char why[512];
	cdp_page_t *page;
} opened_t;

static void on_opened(cdp_page_t *p, int status, const char *why, void *ud)
{
	opened_t *o = ud;

	o->done = 1;
	o->status = status;
	o->page = p;
	snprintf(o->why, sizeof o->why, "%s", why);
}

/* A held page opened at its URL sends its cookies with its very first request. */
static void test_cdp_actions__cookies_on_first_request(void **state)
{
	pagekit_t *k = *state;
	cdp_hold_t *hold = NULL;
	opened_t o = { 0 };
	char url[256], cookies[512], host[64];
	cdp_page_opts_t po = { 0 };
	json_t *v, *h;

	pk_open(k, 1);
	assert_int_equal(cdp_hold_pages(browser_conn(k->b), &hold), 0);
	fixture_url(k->fx, "/echo-headers", url, sizeof url);
	fixture_url(k->fx, "", host, sizeof host);
	snprintf(
	        cookies, sizeof cookies,
	        "[{\"name\": \"team\", \"value\": \"blue\", \"url\": \"%s\"},"
	        " {\"name\": \"lang\", \"value\": \"fr\", \"domain\": \"127.0.0.1\", \"path\": \"/\"}]",
	        host);
	po.hold = hold;
	po.url = url;
	po.cookies_json = cookies;
	assert_int_equal(cdp_page_open(browser_conn(k->b), &po, 10000, on_opened, &o), 0);
	assert_true(tu_run_until(&k->loop, &o.done, PK_WAIT_MS));
	if (o.status != 0)
		fail_msg("open: %s", o.why);
	k->page = o.page;
	pk_navigate(k, "/echo-headers"); /* adopts the first load */
	assert_int_equal(fixture_hits(k->fx, "/echo-headers"), 1);
	v = pk_evaluate(k, "document.querySelector('#headers').textContent");
	h = json_loads(json_string_value(v), 0, NULL);
	assert_non_null(h);
	print_message("the first request's Cookie: %s\n",
	              json_string_value(json_object_get(h, "cookie")));
	assert_non_null(strstr(json_string_value(json_object_get(h, "cookie")), "team=blue"));
	assert_non_null(strstr(json_string_value(json_object_get(h, "cookie")), "lang=fr"));
	json_decref(h);
	json_decref(v);

	/* not an array: refused */
	po.cookies_json = "{\"name\": \"x\"}";
	assert_int_equal(cdp_page_open(browser_conn(k->b), &po, 10000, on_opened, &o), -EINVAL);

	pk_close(k);
	cdp_hold_free(hold);
	pk_finish(k);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		        test_cdp_actions__click_consent_optional_and_required, pk_setup,
		        pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_actions__fill_and_press_enter_submit,
		                                pk_setup, pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_actions__scroll_and_wait_ms, pk_setup,
		                                pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_actions__malformed_lists_refused, pk_setup,
		                                pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_actions__call_values_and_errors, pk_setup,
		                                pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_actions__call_timeout_and_no_leak,
		                                pk_setup, pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_actions__wait_visible_vs_attached,
		                                pk_setup, pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_actions__read_with_actions_and_function,
		                                pk_setup, pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_actions__cookies_on_first_request,
		                                pk_setup, pk_teardown),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
