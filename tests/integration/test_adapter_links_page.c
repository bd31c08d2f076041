/*
 * Integration test for discovery by "links" in the real Chromium: the expression built
 * from a links rule is evaluated on a listing (written into a fixture page) and its value
 * turned into children, as the daemon does. Checks an entry whose element has the href,
 * one whose link is an inner a[href] (relative, made absolute against the page), one
 * without any link (skipped), one the id regex does not match (skipped), one with a
 * mailto: link (skipped), classes from an attribute (case and space aside) and from a
 * relative selector's text, the parent's class otherwise, and an invalid regex reported
 * by the page as a discovery error. Launches its own browser and audits the teardown.
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
#include "tests/support/pagekit.h"
#include "tests/support/testutil.h"

static const char listing_js[] =
        "document.body.innerHTML ="
        " '<ul>'"
        " + '<li class=\"m\" data-status=\" LIVE \"><a href=\"/live/match/7\">A v B</a></li>'"
        " + '<a class=\"m\" href=\"match/8?x=1\" data-status=\"finished\">C v D</a>'"
        " + '<li class=\"m\" data-status=\"live\">no link here</li>'"
        " + '<li class=\"m\"><a href=\"/news/1\">news</a></li>'"
        " + '<li class=\"m\"><a href=\"mailto:x@example.org\">mail</a></li>'"
        " + '<li class=\"m\" data-status=\"postponed\"><div><a href=\"/live/match/9\">E</a>"
        "</div><span class=\"st\">Upcoming</span></li>'"
        " + '</ul>'; 1";

/* discover() of the rule's expression on the current page; NULL with why on failure. */
static json_t *discover(pagekit_t *k, const char *adapter, const char *target_text, char *why,
                        size_t whylen)
{
	const adapter_t *ad = adapter_find(adapter);
	json_t *t = json_loads(target_text, 0, NULL), *raw, *children;
	errlist_t errs;
	void *st = NULL;

	assert_non_null(t);
	errlist_init(&errs);
	if (ad->parse(t, "t", &st, &errs) != 0)
		fail_msg("parse: %s", errlist_text(&errs));
	raw = pk_evaluate(k, ad->discover_js(st));
	why[0] = '\0';
	children = ad->discover(st, raw, "lg", why, whylen);
	json_decref(raw);
	ad->free_state(st);
	errlist_release(&errs);
	json_decref(t);
	return children;
}

/* The fixture's base URL (scheme://host:port) of the current page. */
static void page_origin(pagekit_t *k, char *out, size_t len)
{
	json_t *v = pk_evaluate(k, "location.origin");
	snprintf(out, len, "%s", json_string_value(v));
	json_decref(v);
}

static void test_adapter_links_page__listing(void **state)
{
	pagekit_t *e = *state;
	char why[512], origin[128], want[2048];
	json_t *c, *w, *v;

	pk_open(e, 1);
	pk_page_open(e);
	pk_navigate(e, "/static");
	json_decref(pk_evaluate(e, listing_js));
	page_origin(e, origin, sizeof origin);

	c = discover(e, "generic",
	             "{\"discover\": true, \"class\": \"imminent\","
	             " \"links\": {\"selector\": \".m\", \"id\": \"/match/(\\\\d+)\","
	             "   \"class\": {\"attr\": \"data-status\", \"live\": [\"live\"],"
	             "     \"completed\": [\"finished\"]}},"
	             " \"children\": {\"adapter\": \"generic\"}}",
	             why, sizeof why);
	if (!c)
		fail_msg("discover: %s", why);
	snprintf(want, sizeof want,
	         "[{\"id\": \"lg-7\", \"url\": \"%s/live/match/7\", \"class\": \"live\"},"
	         " {\"id\": \"lg-8\", \"url\": \"%s/match/8?x=1\", \"class\": \"completed\"},"
	         " {\"id\": \"lg-9\", \"url\": \"%s/live/match/9\", \"class\": \"imminent\"}]",
	         origin, origin, origin);
	w = json_loads(want, 0, NULL);
	if (!json_equal(c, w)) {
		char *s = json_dumps(c, JSON_COMPACT);
		fail_msg("got %s, expected %s", s, want);
	}
	json_decref(w);
	json_decref(c);

	/* the class from a relative selector's text; no id regex: a hash of each URL */
	c = discover(e, "script",
	             "{\"discover\": true, \"links\": {\"selector\": \"li.m\", \"class\":"
	             " {\"selector\": \".st\", \"imminent\": [\"upcoming\"]}},"
	             " \"children\": {\"adapter\": \"generic\"}}",
	             why, sizeof why);
	if (!c)
		fail_msg("discover: %s", why);
	assert_int_equal(json_array_size(c), 3); /* match/7, news/1, match/9 */
	v = json_array_get(c, 2);
	assert_string_equal(json_string_value(json_object_get(v, "class")), "imminent");
	assert_null(json_object_get(json_array_get(c, 0), "class"));
	assert_int_equal(strlen(json_string_value(json_object_get(v, "id"))), 3 + 10);
	json_decref(c);

	/* an invalid regex (balanced, so C lets it through) is the page's error */
	assert_null(discover(e, "generic",
	                     "{\"discover\": true, \"links\": {\"selector\": \".m\","
	                     " \"id\": \"(?<x)\"}, \"children\": {\"adapter\": \"generic\"}}",
	                     why, sizeof why));
	if (!strstr(why, "links.id: invalid regex: "))
		fail_msg("why: %s", why);
	/* and an invalid selector */
	assert_null(discover(e, "generic",
	                     "{\"discover\": true, \"links\": {\"selector\": \"li[\"},"
	                     " \"children\": {\"adapter\": \"generic\"}}",
	                     why, sizeof why));
	if (!strstr(why, "links.selector: ") || !strstr(why, "not a valid selector"))
		fail_msg("why: %s", why);
	pk_close(e);
	pk_finish(e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_adapter_links_page__listing, pk_setup,
		                                pk_teardown),
	};
	if (tu_browser_test_init(argc, argv))
		return 127; /* exec failed */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
