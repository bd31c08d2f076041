/*
 * Integration test for the generic adapter's extraction expression in the real Chromium:
 * the expression built by parse() is evaluated on the fixture's /static and /js pages and
 * its value normalised, as the daemon does. Checks text, attributes, regex capture groups,
 * "all", optional fields, an invalid regex and an invalid selector reported per field, and
 * that hostile selectors run as data, not code. Launches its own browser and audits the
 * teardown (loop closes, no Chromium process, profile dir or fd left).
 */
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
#include "util/log.h"

#define WAIT_MS 30000

typedef struct env {
	pagekit_t pk; /* loop, fixture, browser */
	cdp_page_t *page;
	int page_closed;
	/* the last operation */
	int done, status;
	json_t *value;
	char why[1024];
} env_t;

static void on_page_closed(void *ud)
{
	((env_t *)ud)->page_closed = 1;
}

static void on_opened(cdp_page_t *page, int status, const char *why, void *ud)
{
	env_t *e = ud;
	e->done = 1;
	e->status = status;
	e->page = page;
	snprintf(e->why, sizeof e->why, "%s", why);
}

static void on_nav(cdp_page_t *page, const cdp_nav_result_t *res, void *ud)
{
	env_t *e = ud;
	e->done = 1;
	e->status = res->status;
	snprintf(e->why, sizeof e->why, "%s", res->message);
}

static void on_waited(cdp_page_t *page, int status, const char *why, void *ud)
{
	env_t *e = ud;
	e->done = 1;
	e->status = status;
	snprintf(e->why, sizeof e->why, "%s", why);
}

static void on_eval(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	env_t *e = ud;
	e->done = 1;
	e->status = status;
	e->value = value ? json_incref(value) : NULL;
	snprintf(e->why, sizeof e->why, "%s", why);
}

static int env_setup(void **state)
{
	*state = calloc(1, sizeof(env_t));
	return *state ? 0 : -1;
}

/* A failed check leaves libuv handles behind: such an env is leaked, not freed. */
static int env_teardown(void **state)
{
	env_t *e = *state;
	if (e->pk.finished)
		free(e);
	return 0;
}

static void env_open(env_t *e)
{
	pk_open(&e->pk, 1);
	e->done = 0;
	assert_int_equal(cdp_page_open(browser_conn(e->pk.b), NULL, 10000, on_opened, e), 0);
	assert_true(tu_run_until(&e->pk.loop, &e->done, WAIT_MS));
	if (e->status != 0)
		fail_msg("cdp_page_open: %s", e->why);
}

static void env_close(env_t *e)
{
	cdp_page_close(e->page, on_page_closed, e);
	assert_true(tu_run_until(&e->pk.loop, &e->page_closed, WAIT_MS));
	pk_close(&e->pk);
	pk_finish(&e->pk);
}

static void navigate(env_t *e, const char *path)
{
	char url[256];

	fixture_url(e->pk.fx, path, url, sizeof url);
	e->done = 0;
	assert_int_equal(cdp_page_navigate(e->page, url, 10000, on_nav, e), 0);
	assert_true(tu_run_until(&e->pk.loop, &e->done, WAIT_MS));
	if (e->status != 0)
		fail_msg("navigate %s: %s", url, e->why);
}

static json_t *evaluate(env_t *e, const char *js)
{
	json_t *v;

	e->done = 0;
	e->value = NULL;
	assert_int_equal(cdp_page_evaluate(e->page, js, 10000, on_eval, e), 0);
	assert_true(tu_run_until(&e->pk.loop, &e->done, WAIT_MS));
	if (e->status != 0)
		fail_msg("evaluate: %s: %s", cdp_strerror(e->status), e->why);
	v = e->value;
	e->value = NULL;
	return v;
}

/* Runs the adapter like the daemon: wait_for, extract_js, normalise. Returns the data
 * (new reference) or NULL with why. */
static json_t *scrape(env_t *e, const char *target_text, char *why, size_t whylen)
{
	const adapter_t *ad = adapter_find("generic");
	json_t *t = json_loads(target_text, 0, NULL), *raw, *data;
	errlist_t errs;
	void *st = NULL;

	assert_non_null(t);
	errlist_init(&errs);
	if (ad->parse(t, "t", &st, &errs) != 0)
		fail_msg("parse: %s", errlist_text(&errs));
	if (ad->wait_for(st)) {
		e->done = 0;
		assert_int_equal(cdp_page_wait_for(e->page, ad->wait_for(st), 10000, on_waited, e),
		                 0);
		assert_true(tu_run_until(&e->pk.loop, &e->done, WAIT_MS));
		if (e->status != 0)
			fail_msg("wait_for: %s", e->why);
	}
	raw = evaluate(e, ad->extract_js(st));
	why[0] = '\0';
	data = ad->normalise(st, raw, why, whylen);
	json_decref(raw);
	ad->free_state(st);
	errlist_release(&errs);
	json_decref(t);
	return data;
}

static void assert_json(const json_t *a, const char *text)
{
	json_t *b = json_loads(text, 0, NULL);
	assert_non_null(b);
	if (!json_equal((json_t *)a, b)) {
		char *s = json_dumps(a, JSON_COMPACT);
		fail_msg("got %s, expected %s", s ? s : "(null)", text);
	}
	json_decref(b);
}

static void test_adapter_generic_page__extracts_and_reports(void **state)
{
	env_t *e = *state;
	char why[512];
	json_t *d, *v;

	env_open(e);
	navigate(e, "/static");
	d = scrape(
	        e,
	        "{\"fields\": {"
	        " \"title\": {\"selector\": \"#title\"},"
	        " \"word\": {\"selector\": \"#msg\", \"regex\": \"^(\\\\w+) content$\"},"
	        " \"whole\": {\"selector\": \"#msg\", \"regex\": \"cont\\\\w+\"},"
	        " \"id\": {\"selector\": \"h1\", \"attr\": \"id\"},"
	        " \"texts\": {\"selector\": \"body > *\", \"all\": true},"
	        " \"note\": {\"selector\": \".nope\", \"required\": false},"
	        " \"nomatch\": {\"selector\": \"#msg\", \"regex\": \"\\\\d+\", \"required\": false},"
	        " \"noattr\": {\"selector\": \"#msg\", \"attr\": \"data-x\", \"required\": false}"
	        "}}",
	        why, sizeof why);
	if (!d)
		fail_msg("normalise: %s", why);
	assert_json(d,
	            "{\"title\": \"Hello fixture\", \"word\": \"static\", \"whole\": \"content\","
	            " \"id\": \"title\", \"texts\": [\"Hello fixture\", \"static content\"],"
	            " \"note\": null, \"nomatch\": null, \"noattr\": null}");
	json_decref(d);

	/* a required field that matches nothing */
	assert_null(scrape(e,
	                   "{\"fields\": {\"s\": {\"selector\": \"#score\", \"type\": \"int\"}}}",
	                   why, sizeof why));
	assert_string_equal(why, "field \"s\": selector \"#score\" matched nothing");
	/* a bad number */
	assert_null(scrape(e, "{\"fields\": {\"s\": {\"selector\": \"#msg\", \"type\": \"int\"}}}",
	                   why, sizeof why));
	assert_string_equal(why, "field \"s\": expected int, got \"static content\"");
	/* an invalid regex, reported by the page as a marker */
	assert_null(
	        scrape(e, "{\"fields\": {\"s\": {\"selector\": \"#msg\", \"regex\": \"(\\\\d+\"}}}",
	               why, sizeof why));
	if (!strstr(why, "field \"s\": invalid regex: ") || !strstr(why, "Unterminated group"))
		fail_msg("why: %s", why);
	/* a hostile selector is data: an invalid selector, not code */
	assert_null(scrape(e,
	                   "{\"fields\": {\"s\": {\"selector\": "
	                   "\"x\\\"]'); window.pwned = 1; //\"}}}",
	                   why, sizeof why));
	if (!strstr(why, "field \"s\": ") || !strstr(why, "not a valid selector"))
		fail_msg("why: %s", why);
	v = evaluate(e, "typeof window.pwned");
	assert_string_equal(json_string_value(v), "undefined");
	json_decref(v);

	/* a JS-rendered page, waited for */
	navigate(e, "/js");
	d = scrape(e,
	           "{\"wait_for\": \"#out\", \"fields\": {\"out\": {\"selector\": \"#out\", "
	           "\"regex\": \"by (\\\\w+)\"}}}",
	           why, sizeof why);
	if (!d)
		fail_msg("normalise: %s", why);
	assert_json(d, "{\"out\": \"js\"}");
	json_decref(d);
	env_close(e);
}

/* libuv opens its signal pipe (an fd kept for the process's life) on the first signal
 * handle: open it before the fd baseline is taken. */
static void warm_up_libuv(void)
{
	uv_loop_t loop;
	uv_signal_t sig;

	assert_int_equal(uv_loop_init(&loop), 0);
	uv_signal_init(&loop, &sig);
	uv_close((uv_handle_t *)&sig, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_adapter_generic_page__extracts_and_reports,
		                                env_setup, env_teardown),
	};
	if (browser_exec_wrapper_main(argc, argv))
		return 127; /* exec failed */
	if (!getenv("LOG_LEVEL"))
		log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	warm_up_libuv();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
