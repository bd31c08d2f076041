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

/* The case's env is a pagekit (pk_setup): loop, fixture, browser and the one page. */

static void env_open(pagekit_t *k)
{
	pk_open(k, 1);
	pk_page_open(k);
}

static void env_close(pagekit_t *k)
{
	pk_close(k);
	pk_finish(k);
}

/* Runs the adapter like the daemon: wait_for, extract_js, normalise. Returns the data
 * (new reference) or NULL with why. */
static json_t *scrape(pagekit_t *k, const char *target_text, char *why, size_t whylen)
{
	const adapter_t *ad = adapter_find("generic");
	json_t *t = json_loads(target_text, 0, NULL), *raw, *data;
	errlist_t errs;
	void *st = NULL;

	assert_non_null(t);
	errlist_init(&errs);
	if (ad->parse(t, "t", &st, &errs) != 0)
		fail_msg("parse: %s", errlist_text(&errs));
	if (ad->wait_for(st))
		pk_wait_for(k, ad->wait_for(st));
	raw = pk_evaluate(k, ad->extract_js(st));
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
	pagekit_t *e = *state;
	char why[512];
	json_t *d, *v;

	env_open(e);
	pk_navigate(e, "/static");
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
	v = pk_evaluate(e, "typeof window.pwned");
	assert_string_equal(json_string_value(v), "undefined");
	json_decref(v);

	/* a JS-rendered page, waited for */
	pk_navigate(e, "/js");
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

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_adapter_generic_page__extracts_and_reports,
		                                pk_setup, pk_teardown),
	};
	if (tu_browser_test_init(argc, argv))
		return 127; /* exec failed */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
