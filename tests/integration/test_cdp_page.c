/*
 * Integration tests for cdp_page against the real Chromium and the in-process fixture
 * server, all on the test's loop: a JS-rendered page waited for and extracted, a page with
 * no frames beside a painted one, two pages isolated by their browser contexts, a multi-MB
 * full-page screenshot arriving whole, navigation outcomes (HTTP errors, refused
 * connections, redirects, timeouts), a command timing out alone, closing with an operation
 * running, and a killed Chromium failing the pending command with CDP_ECONNLOST within a
 * second. Each case launches its own browser and audits its teardown: loop closes, no fd
 * and no Chromium process left. The composed read, cdp_page_read(), has its own file:
 * test_cdp_page_read.c.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_page.h"
#include "cdp/cdp_ws.h"
#include "pool/browser.h"
#include "tests/fixture/fixture.h"
#include "tests/support/pagekit.h"
#include "tests/support/testutil.h"

#define WAIT_MS 30000

/* ---- harness: one loop, one fixture, one browser per test case (pagekit) ---- */

typedef struct env {
	pagekit_t pk;
} env_t;

/* The outcome of one page operation. */
typedef struct res {
	int done;
	int calls;
	int status;
	char why[2048];
	json_t *value;
	long http_status;
	char final_url[1024];
	cdp_page_t *page;
	unsigned char *png;
	size_t png_len;
	uint64_t t_done;
} res_t;

/* The env lives on the heap (tu_state_alloc: a failed test's env is kept, not freed). */
static int env_setup(void **state)
{
	return tu_state_alloc(state, sizeof(env_t));
}

static int env_teardown(void **state)
{
	return tu_state_release(state, ((env_t *)*state)->pk.finished);
}

static void env_open(env_t *e)
{
	pk_open(&e->pk, 1);
}

static void env_close(env_t *e)
{
	pk_close(&e->pk);
	pk_finish(&e->pk);
}

static void url_of(env_t *e, const char *path, char *out, size_t len)
{
	fixture_url(e->pk.fx, path, out, len);
}

/* ---- synchronous wrappers over the page API (each runs the loop until done) ---- */

static void res_reset(res_t *r)
{
	json_decref(r->value);
	free(r->png);
	memset(r, 0, sizeof *r);
}

static void on_opened(cdp_page_t *page, int status, const char *why, void *ud)
{
	res_t *r = ud;

	r->calls++;
	r->done = 1;
	r->status = status;
	r->page = page;
	snprintf(r->why, sizeof r->why, "%s", why);
}

static void on_navigated(cdp_page_t *page, const cdp_nav_result_t *res, void *ud)
{
	res_t *r = ud;

	r->calls++;
	r->done = 1;
	r->status = res->status;
	r->http_status = res->http_status;
	assert_non_null(res->final_url);
	assert_non_null(res->message);
	snprintf(r->final_url, sizeof r->final_url, "%s", res->final_url);
	snprintf(r->why, sizeof r->why, "%s", res->message);
}

static void navigate(env_t *e, cdp_page_t *p, const char *url, uint32_t timeout_ms, res_t *r)
{
	res_reset(r);
	assert_int_equal(cdp_page_navigate(p, url, timeout_ms, on_navigated, r), 0);
	assert_true(tu_run_until(&e->pk.loop, &r->done, WAIT_MS));
	assert_int_equal(r->calls, 1);
}

static void on_done(cdp_page_t *page, int status, const char *why, void *ud)
{
	res_t *r = ud;

	r->calls++;
	r->done = 1;
	r->status = status;
	snprintf(r->why, sizeof r->why, "%s", why);
}

static void wait_for(env_t *e, cdp_page_t *p, const char *css, uint32_t timeout_ms, res_t *r)
{
	res_reset(r);
	assert_int_equal(cdp_page_wait_for(p, css, timeout_ms, on_done, r), 0);
	assert_true(tu_run_until(&e->pk.loop, &r->done, WAIT_MS));
	assert_int_equal(r->calls, 1);
}

static void on_evaluated(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	res_t *r = ud;

	r->calls++;
	r->done = 1;
	r->status = status;
	r->t_done = tu_now_ms();
	r->value = value ? json_incref(value) : NULL;
	snprintf(r->why, sizeof r->why, "%s", why);
	if (status == 0)
		assert_non_null(value);
	else
		assert_null(value);
}

static void evaluate(env_t *e, cdp_page_t *p, const char *expr, uint32_t timeout_ms, res_t *r)
{
	res_reset(r);
	assert_int_equal(cdp_page_evaluate(p, expr, timeout_ms, on_evaluated, r), 0);
	assert_true(tu_run_until(&e->pk.loop, &r->done, WAIT_MS));
	assert_int_equal(r->calls, 1);
}

static void on_shot(cdp_page_t *page, int status, const unsigned char *png, size_t len,
                    const char *why, void *ud)
{
	res_t *r = ud;

	r->calls++;
	r->done = 1;
	r->status = status;
	snprintf(r->why, sizeof r->why, "%s", why);
	if (status == 0) {
		r->png = malloc(len);
		assert_non_null(r->png);
		memcpy(r->png, png, len);
		r->png_len = len;
	}
}

static void ignore_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
}

static void on_page_closed(void *ud)
{
	(*(int *)ud)++;
}

/* ---- tests ---- */

static void test_cdp_page__js_rendered_value(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	char url[256];
	cdp_page_t *p;

	env_open(e);
	p = pk_new_page(&e->pk);
	url_of(e, "/js", url, sizeof url);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.http_status, 200);
	assert_string_equal(r.final_url, url);

	wait_for(e, p, "#out", 10000, &r);
	assert_int_equal(r.status, 0);
	evaluate(e, p, "window.renderedValue", 5000, &r);
	assert_int_equal(r.status, 0);
	assert_true(json_is_integer(r.value));
	assert_int_equal(json_integer_value(r.value), 42);
	evaluate(e, p, "document.querySelector('#out').textContent", 5000, &r);
	assert_int_equal(r.status, 0);
	assert_true(json_is_string(r.value));
	assert_string_equal(json_string_value(r.value), "rendered by js");
	/* undefined comes back as JSON null; objects by value */
	evaluate(e, p, "undefined", 5000, &r);
	assert_int_equal(r.status, 0);
	assert_true(json_is_null(r.value));
	evaluate(e, p, "Promise.resolve({a: [1, 'x']})", 5000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(r.value, "a"), 0)), 1);

	res_reset(&r);
	pk_close_page(&e->pk, p);
	env_close(e);
}

static void test_cdp_page__open_options(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	cdp_page_opts_t o = { .user_agent = "cdpilot-test/1.0",
		              .viewport_width = 1024,
		              .viewport_height = 700 };
	char url[256];
	cdp_page_t *p;

	env_open(e);
	assert_int_equal(cdp_page_open(browser_conn(e->pk.b), &o, 10000, on_opened, &r), 0);
	assert_true(tu_run_until(&e->pk.loop, &r.done, WAIT_MS));
	if (r.status != 0)
		fail_msg("cdp_page_open: %s: %s", cdp_strerror(r.status), r.why);
	p = r.page;
	url_of(e, "/static", url, sizeof url);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	evaluate(e, p, "[navigator.userAgent, innerWidth, innerHeight]", 5000, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_string_value(json_array_get(r.value, 0)), "cdpilot-test/1.0");
	assert_int_equal(json_integer_value(json_array_get(r.value, 1)), 1024);
	assert_int_equal(json_integer_value(json_array_get(r.value, 2)), 700);

	res_reset(&r);
	pk_close_page(&e->pk, p);
	env_close(e);
}

/* A page opened with no_frames is never painted: its requestAnimationFrame callbacks never
 * run, while timers, the DOM and layout do; a page beside it without the option gets its
 * frames as ever. */
static void test_cdp_page__no_frames(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	cdp_page_opts_t o = { .no_frames = 1 };
	char url[256];
	cdp_page_t *painted, *unpainted;

	env_open(e);
	url_of(e, "/static", url, sizeof url);
	assert_int_equal(cdp_page_open(browser_conn(e->pk.b), &o, 10000, on_opened, &r), 0);
	assert_true(tu_run_until(&e->pk.loop, &r.done, WAIT_MS));
	if (r.status != 0)
		fail_msg("cdp_page_open: %s: %s", cdp_strerror(r.status), r.why);
	unpainted = r.page;
	painted = pk_new_page(&e->pk);
	navigate(e, unpainted, url, 10000, &r);
	assert_int_equal(r.status, 0);
	navigate(e, painted, url, 10000, &r);
	assert_int_equal(r.status, 0);
	/* the painted page's frame comes (no timer: the evaluation's own deadline bounds it) */
	evaluate(e, painted, "new Promise(function (ok) { requestAnimationFrame(function () {"
	                     " ok('frame'); }); })", 20000, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_string_value(r.value), "frame");
	/* the other's never does; its timers, DOM and layout work */
	evaluate(e, unpainted, "new Promise(function (ok) { requestAnimationFrame(function () {"
	                       " ok('frame'); }); setTimeout(function () { ok('no frame ' +"
	                       " (document.body.getBoundingClientRect().width > 0)); }, 1500); })",
	         20000, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_string_value(r.value), "no frame true");

	res_reset(&r);
	pk_close_page(&e->pk, painted);
	pk_close_page(&e->pk, unpainted);
	env_close(e);
}

static void test_cdp_page__contexts_isolated(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	char url[256];
	cdp_page_t *a, *b;

	env_open(e);
	a = pk_new_page(&e->pk);
	b = pk_new_page(&e->pk);
	assert_string_not_equal(cdp_page_context_id(a), cdp_page_context_id(b));
	url_of(e, "/cookie", url, sizeof url);
	navigate(e, a, url, 10000, &r);
	assert_int_equal(r.status, 0);
	navigate(e, b, url, 10000, &r);
	assert_int_equal(r.status, 0);

	evaluate(e, a, "document.cookie = 'isolation=yes; path=/'; document.cookie", 5000, &r);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(json_string_value(r.value), "isolation=yes"));
	/* the cookie really is stored: a reload in the same context still has it */
	navigate(e, a, url, 10000, &r);
	assert_int_equal(r.status, 0);
	evaluate(e, a, "document.cookie", 5000, &r);
	assert_non_null(strstr(json_string_value(r.value), "isolation=yes"));

	navigate(e, b, url, 10000, &r);
	assert_int_equal(r.status, 0);
	evaluate(e, b, "document.cookie", 5000, &r);
	assert_int_equal(r.status, 0);
	assert_true(json_is_string(r.value));
	assert_null(strstr(json_string_value(r.value), "isolation"));

	res_reset(&r);
	pk_close_page(&e->pk, a);
	pk_close_page(&e->pk, b);
	env_close(e);
}

static void test_cdp_page__big_screenshot_arrives_whole(void **state)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	env_t *e = *state;
	res_t r = { 0 };
	char url[256];
	cdp_page_t *p;
	size_t b64_len;

	env_open(e);
	p = pk_new_page(&e->pk);
	url_of(e, "/noise?w=1600&h=1200", url, sizeof url);
	navigate(e, p, url, 20000, &r);
	assert_int_equal(r.status, 0);
	evaluate(e, p, "document.title", 5000, &r);
	assert_string_equal(json_string_value(r.value), "noise ready");

	res_reset(&r);
	assert_int_equal(cdp_page_screenshot(p, 1, 60000, on_shot, &r), 0);
	assert_true(tu_run_until(&e->pk.loop, &r.done, 90000));
	assert_int_equal(r.calls, 1);
	if (r.status != 0)
		fail_msg("screenshot: %s: %s", cdp_strerror(r.status), r.why);
	b64_len = (r.png_len + 2) / 3 * 4;
	print_message("full-page PNG: %zu bytes (%zu bytes of base64)\n", r.png_len, b64_len);
	assert_true(r.png_len > 3932160); /* > 3.75 MiB */
	assert_true(b64_len > 5u * 1024 * 1024);
	assert_memory_equal(r.png, sig, sizeof sig);
	/* the IHDR says 1600x1200: the whole page, beyond the viewport */
	assert_int_equal((r.png[16] << 24) | (r.png[17] << 16) | (r.png[18] << 8) | r.png[19],
	                 1600);
	assert_int_equal((r.png[20] << 24) | (r.png[21] << 16) | (r.png[22] << 8) | r.png[23],
	                 1200);

	res_reset(&r);
	pk_close_page(&e->pk, p);
	env_close(e);
}

static void test_cdp_page__navigation_outcomes(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	char url[512], want[256];
	cdp_page_t *p;
	int port;
	uint64_t t0;

	env_open(e);
	p = pk_new_page(&e->pk);

	/* an HTTP error page still loads: status 0, the code reported */
	url_of(e, "/status/404", url, sizeof url);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.http_status, 404);

	/* redirects: final_url is where we landed */
	url_of(e, "/redirect?to=/static", url, sizeof url);
	url_of(e, "/static", want, sizeof want);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.http_status, 200);
	assert_string_equal(r.final_url, want);

	/* a script navigating again before the load event: we wait for the last document */
	url_of(e, "/static", want, sizeof want);
	snprintf(url, sizeof url,
	         "data:text/html,<title>first</title><script>location.replace('%s')</script>",
	         want);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.final_url, want);
	evaluate(e, p, "document.title", 5000, &r);
	assert_string_equal(json_string_value(r.value), "Static page");

	/* a refused connection */
	port = tu_unused_port();
	assert_true(port > 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, CDP_ENAV);
	assert_string_equal(r.why, "net::ERR_CONNECTION_REFUSED");

	/* a page that never answers: -ETIMEDOUT, and the page stays usable */
	url_of(e, "/hang", url, sizeof url);
	t0 = tu_now_ms();
	navigate(e, p, url, 1000, &r);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_true(tu_now_ms() - t0 < 3000);
	evaluate(e, p, "1+1", 5000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(json_integer_value(r.value), 2);
	url_of(e, "/static", url, sizeof url);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.http_status, 200);

	/* exceptions: from a bad selector and from a script */
	wait_for(e, p, "#[", 5000, &r);
	assert_int_equal(r.status, CDP_EEXCEPTION);
	assert_non_null(strstr(r.why, "not a valid selector"));
	wait_for(e, p, "#nope", 300, &r);
	assert_int_equal(r.status, -ETIMEDOUT);
	evaluate(e, p, "throw new Error('boom')", 5000, &r);
	assert_int_equal(r.status, CDP_EEXCEPTION);
	assert_non_null(strstr(r.why, "boom"));
	evaluate(e, p, "Promise.reject(new Error('later'))", 5000, &r);
	assert_int_equal(r.status, CDP_EEXCEPTION);
	assert_non_null(strstr(r.why, "later"));

	res_reset(&r);
	pk_close_page(&e->pk, p);
	env_close(e);
}

/* Opens a page created straight at url (opts may be NULL); returns the open's status. */
static int open_at(env_t *e, const cdp_page_opts_t *opts, const char *url, uint32_t timeout_ms,
                   cdp_page_t **out)
{
	res_t r = { 0 };
	cdp_page_opts_t o = { 0 };

	if (opts)
		o = *opts;
	o.url = url;
	assert_int_equal(cdp_page_open(browser_conn(e->pk.b), &o, timeout_ms, on_opened, &r), 0);
	assert_true(tu_run_until(&e->pk.loop, &r.done, WAIT_MS));
	*out = r.page;
	return r.status;
}

/* Pages opened at their URL with opts, rounds times: a 404 and a redirect report their
 * status and final URL; then a refused connection gives Chrome's error text, as from
 * Page.navigate. */
static void first_load_outcomes(env_t *e, const cdp_page_opts_t *opts, int rounds)
{
	res_t r = { 0 };
	char url[512], want[256];
	cdp_page_t *p;
	int port;

	for (int i = 0; i < rounds; i++) {
		url_of(e, i % 2 ? "/status/404" : "/redirect?to=/static", url, sizeof url);
		url_of(e, "/static", want, sizeof want);
		assert_int_equal(open_at(e, opts, url, 10000, &p), 0);
		navigate(e, p, url, 10000, &r);
		assert_int_equal(r.status, 0);
		assert_int_equal(r.http_status, i % 2 ? 404 : 200);
		if (i % 2 == 0)
			assert_string_equal(r.final_url, want);
		pk_close_page(&e->pk, p);
	}
	port = tu_unused_port();
	assert_true(port > 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	assert_int_equal(open_at(e, opts, url, 10000, &p), 0);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, CDP_ENAV);
	assert_string_equal(r.why, "net::ERR_CONNECTION_REFUSED");
	pk_close_page(&e->pk, p);
	res_reset(&r);
}

/* Without a hold, a page starts at about:blank whatever url says (it would load before its
 * set-up), and the navigate to url is a real one, which succeeds. */
static cdp_page_t *open_unheld(env_t *e, const cdp_page_opts_t *opts, const char *path,
                               uint32_t nav_ms, res_t *r)
{
	char url[512];
	cdp_page_t *p;

	url_of(e, path, url, sizeof url);
	assert_int_equal(open_at(e, opts, url, 10000, &p), 0);
	evaluate(e, p, "location.href", 5000, r);
	assert_string_equal(json_string_value(r->value), "about:blank");
	navigate(e, p, url, nav_ms, r);
	assert_int_equal(r->status, 0);
	return p;
}

/* Opened at its URL, the first navigate to that URL reports the page's first load with the
 * same outcomes as a navigation of its own. */
static void test_cdp_page__opened_at_url(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	char url[512], want[256];
	cdp_page_t *p;
	cdp_page_counters_t pc;
	cdp_hold_t *hold;
	cdp_page_opts_t held = { 0 };
	cdp_page_opts_t guarded = { .block_popups = 1 };
	cdp_page_opts_t ua = { .user_agent = "cdpilot-test/2.0" };
	cdp_page_opts_t blocking = { .block_resources = "image" };
	cdp_listener_t *l_block;
	uint64_t blocked = 0;
	uint64_t t0;

	env_open(e);
	/* without a hold (before it: a holding connection holds every new page): a user
	 * agent ... */
	p = open_unheld(e, &ua, "/static", 10000, &r);
	evaluate(e, p, "navigator.userAgent", 5000, &r);
	assert_string_equal(json_string_value(r.value), "cdpilot-test/2.0");
	pk_close_page(&e->pk, p);
	/* ... or a page's own blocking */
	p = open_unheld(e, &blocking, "/never-load", 5000, &r);
	cdp_page_get_counters(p, &pc);
	assert_true(pc.requests_blocked >= 1);
	pk_close_page(&e->pk, p);

	/* a server that never answers a navigation: -ETIMEDOUT, and the page stays usable */
	url_of(e, "/hang", url, sizeof url);
	assert_int_equal(open_at(e, NULL, url, 10000, &p), 0);
	t0 = tu_now_ms();
	navigate(e, p, url, 1000, &r);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_true(tu_now_ms() - t0 < 3000);
	evaluate(e, p, "1+1", 5000, &r);
	assert_int_equal(json_integer_value(r.value), 2);
	pk_close_page(&e->pk, p);

	assert_int_equal(cdp_hold_pages(browser_conn(e->pk.b), &hold), 0);
	held.hold = guarded.hold = hold;

	/* several times over, as the events may fall differently */
	first_load_outcomes(e, &held, 10);

	/* a script of the first document navigating again: the last document is waited for */
	url_of(e, "/static", want, sizeof want);
	snprintf(url, sizeof url,
	         "data:text/html,<title>first</title><script>location.replace('%s')</script>",
	         want);
	assert_int_equal(open_at(e, &held, url, 10000, &p), 0);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	assert_string_equal(r.final_url, want);
	evaluate(e, p, "document.title", 5000, &r);
	assert_string_equal(json_string_value(r.value), "Static page");
	pk_close_page(&e->pk, p);

	/* browser-wide blocking covers the first document (its image never comes, so only a
	 * blocked one lets it load), and the popup guard is in it once it is handed over */
	assert_int_equal(cdp_block_browser(browser_conn(e->pk.b), "image", &blocked, &l_block), 0);
	assert_non_null(l_block);
	url_of(e, "/never-load", url, sizeof url);
	assert_int_equal(open_at(e, &guarded, url, 10000, &p), 0);
	navigate(e, p, url, 5000, &r);
	assert_int_equal(r.status, 0);
	assert_true(blocked >= 1);
	cdp_conn_off(browser_conn(e->pk.b), l_block);
	cdp_conn_send(browser_conn(e->pk.b), NULL, "Fetch.disable", NULL, 5000, ignore_reply, NULL,
	              NULL);
	evaluate(e, p, "window.open('about:blank') === null", 5000, &r);
	assert_true(json_is_true(r.value));
	/* another URL afterwards is a navigation of its own */
	url_of(e, "/static", url, sizeof url);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.http_status, 200);
	evaluate(e, p, "document.title", 5000, &r);
	assert_string_equal(json_string_value(r.value), "Static page");
	pk_close_page(&e->pk, p);

	/* a server that never answers: a held page's set-up is answered only once its first
	 * document commits, so the open times out */
	url_of(e, "/hang", url, sizeof url);
	assert_int_equal(open_at(e, &held, url, 1000, &p), -ETIMEDOUT);
	assert_null(p);
	cdp_hold_free(hold);

	res_reset(&r);
	env_close(e);
}

/* Held pages (cdp_hold_pages): the whole set-up is in before the first document's first
 * request and first script, so user agent, page blocking and hygiene all cover it. */
static void test_cdp_page__held_pages(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	char url[512];
	cdp_page_t *p;
	cdp_page_counters_t pc;
	cdp_hold_t *hold;
	cdp_page_opts_t o = { .dismiss_dialogs = 1, .block_popups = 1,
		              .user_agent = "cdpilot-held/1.0", .block_resources = "image" };
	cdp_page_opts_t bare = { 0 };

	env_open(e);
	assert_int_equal(cdp_hold_pages(browser_conn(e->pk.b), &hold), 0);
	o.hold = bare.hold = hold;

	/* the first script of the first document: a dialog, a window, the user agent */
	snprintf(url, sizeof url,
	         "data:text/html,<script>alert('first'); document.title = "
	         "String(window.open('about:blank')) + ' ' + navigator.userAgent</script>");
	assert_int_equal(open_at(e, &o, url, 10000, &p), 0);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	evaluate(e, p, "document.title", 5000, &r);
	assert_string_equal(json_string_value(r.value), "null cdpilot-held/1.0");
	cdp_page_get_counters(p, &pc);
	assert_int_equal(pc.dialogs_dismissed, 1);
	pk_close_page(&e->pk, p);

	/* the page's own blocking covers the first document: its image never comes, so only a
	 * blocked one lets it load; and it was opened there, not at about:blank */
	url_of(e, "/never-load", url, sizeof url);
	assert_int_equal(open_at(e, &o, url, 10000, &p), 0);
	evaluate(e, p, "location.href", 5000, &r);
	assert_string_equal(json_string_value(r.value), url);
	navigate(e, p, url, 5000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.http_status, 200);
	cdp_page_get_counters(p, &pc);
	assert_true(pc.requests_blocked >= 1);
	pk_close_page(&e->pk, p);

	/* outcomes, every event of the first navigation seen */
	first_load_outcomes(e, &o, 4);

	/* a page opened at about:blank on a holding connection is let go as well */
	assert_int_equal(open_at(e, &bare, NULL, 10000, &p), 0);
	url_of(e, "/static", url, sizeof url);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	evaluate(e, p, "document.title", 5000, &r);
	assert_string_equal(json_string_value(r.value), "Static page");
	pk_close_page(&e->pk, p);

	cdp_hold_free(hold);
	res_reset(&r);
	env_close(e);
}

static void test_cdp_page__timeout_fails_alone(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	char url[256];
	cdp_page_t *p;
	uint64_t t0, dt;

	env_open(e);
	p = pk_new_page(&e->pk);
	url_of(e, "/static", url, sizeof url);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);

	t0 = tu_now_ms();
	evaluate(e, p, "new Promise(() => {})", 300, &r);
	dt = tu_now_ms() - t0;
	assert_int_equal(r.status, -ETIMEDOUT);
	/* not before its deadline; the upper bound only tells the op's own timer from a hang
	 * (it was 2 s, which a loaded machine's loop can exceed) */
	print_message("evaluate with a 300 ms deadline ended after %llu ms\n",
	              (unsigned long long)dt);
	assert_true(dt >= 290 && dt < 10000);
	evaluate(e, p, "1+1", 5000, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(json_integer_value(r.value), 2);

	res_reset(&r);
	pk_close_page(&e->pk, p);
	env_close(e);
}

static void test_cdp_page__close_cancels_running_op(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	char url[256];
	cdp_page_t *p;
	int closed = 0;

	env_open(e);
	p = pk_new_page(&e->pk);
	url_of(e, "/static", url, sizeof url);
	navigate(e, p, url, 10000, &r);
	res_reset(&r);
	assert_int_equal(cdp_page_evaluate(p, "new Promise(() => {})", 30000, on_evaluated, &r), 0);
	/* a second operation while one runs */
	assert_int_equal(cdp_page_evaluate(p, "1", 1000, on_evaluated, &r), -EBUSY);
	uv_run(&e->pk.loop, UV_RUN_NOWAIT);
	cdp_page_close(p, on_page_closed, &closed);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -ECANCELED);
	assert_true(tu_run_until(&e->pk.loop, &closed, WAIT_MS));
	assert_int_equal(closed, 1);
	assert_int_equal(r.calls, 1);

	res_reset(&r);
	env_close(e);
}

static void test_cdp_page__killed_browser_fails_pending(void **state)
{
	env_t *e = *state;
	res_t r = { 0 };
	char url[256];
	cdp_page_t *p;
	uint64_t t_kill;
	pid_t pid;

	env_open(e);
	p = pk_new_page(&e->pk);
	url_of(e, "/static", url, sizeof url);
	navigate(e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);

	res_reset(&r);
	assert_int_equal(cdp_page_evaluate(p, "new Promise(() => {})", 60000, on_evaluated, &r), 0);
	uv_run(&e->pk.loop, UV_RUN_NOWAIT); /* the command goes out */
	pid = browser_pid(e->pk.b);
	assert_true(pid > 0);
	t_kill = tu_now_ms();
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_true(tu_run_until(&e->pk.loop, &r.done, 5000));
	print_message("pending command failed %llu ms after SIGKILL\n",
	              (unsigned long long)(r.t_done - t_kill));
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, CDP_ECONNLOST);
	assert_true(r.t_done - t_kill < 1000);

	/* the page is still closed cleanly (nothing to dispose any more) */
	res_reset(&r);
	assert_int_equal(cdp_page_evaluate(p, "1", 1000, on_evaluated, &r), CDP_ECONNLOST);
	pk_close_page(&e->pk, p);
	tu_run_until(&e->pk.loop, &e->pk.lost, 5000);
	env_close(e);
}

static void test_cdp_page__renderer_crash_fails_op(void **state)
{
	static env_t e; /* outlives a failed check: libuv keeps the loop in its signal lists */
	res_t r = { 0 };
	char url[256];
	cdp_page_t *p, *other;

	env_open(&e);
	p = pk_new_page(&e.pk);
	other = pk_new_page(&e.pk);
	url_of(&e, "/static", url, sizeof url);
	navigate(&e, p, url, 10000, &r);
	assert_int_equal(r.status, 0);
	/* a pending command fails with CDP_ECRASHED when the renderer goes */
	res_reset(&r);
	assert_int_equal(cdp_page_evaluate(p, "new Promise(() => {})", 30000, on_evaluated, &r), 0);
	uv_run(&e.pk.loop, UV_RUN_NOWAIT);
	assert_int_equal(cdp_conn_send(browser_conn(e.pk.b), cdp_page_session_id(p), "Page.crash",
	                               NULL, 5000, ignore_reply, NULL, NULL),
	                 0);
	assert_true(tu_run_until(&e.pk.loop, &r.done, 10000));
	print_message("after Page.crash: %s: %s\n", cdp_strerror(r.status), r.why);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, CDP_ECRASHED);
	/* the crashed page refuses new work at once; its neighbour is unaffected */
	assert_int_equal(cdp_page_evaluate(p, "1", 1000, on_evaluated, &r), CDP_ECRASHED);
	navigate(&e, other, url, 10000, &r);
	assert_int_equal(r.status, 0);
	evaluate(&e, other, "document.title", 5000, &r);
	assert_string_equal(json_string_value(r.value), "Static page");

	res_reset(&r);
	pk_close_page(&e.pk, p);
	pk_close_page(&e.pk, other);
	env_close(&e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cdp_page__js_rendered_value, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__open_options, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__no_frames, env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__contexts_isolated, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__big_screenshot_arrives_whole,
		                                env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__navigation_outcomes, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__opened_at_url, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__held_pages, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__timeout_fails_alone, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__close_cancels_running_op, env_setup,
		                                env_teardown),
		cmocka_unit_test(test_cdp_page__renderer_crash_fails_op), /* its env is on its stack */
		cmocka_unit_test_setup_teardown(test_cdp_page__killed_browser_fails_pending,
		                                env_setup, env_teardown),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
