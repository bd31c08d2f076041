/*
 * Unit tests for the livescore adapter (adapters/livescore.c): registration and what it
 * asks the daemon to load, wait for and watch; normalise on good raw values and on every
 * kind of bad one (each reason names the field and the value found); classify; discover
 * on a good listing and on malformed entries (not an array, bad id, relative URL, unknown
 * status, duplicates, an id that would be too long).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/adapter.h"
#include "tests/support/adaptkit.h"

static const adapter_t *ad(void)
{
	return ak_adapter("livescore");
}

static const char *good_raw =
        "{\"id\": \"7\", \"home\": \"Lions\", \"away\": \"Tigers\", \"score\": {\"home\": 2, "
        "\"away\": 0}, \"minute\": 23, \"status\": \"live\", \"last_event\": \"23' goal Lions\","
        " \"version\": 2024, \"extra\": \"ignored\"}";

static void test_adapter_livescore__registered(void **state)
{
	const adapter_t *a = ad();
	json_t *t = ak_parse("{\"id\": \"m1\", \"adapter\": \"livescore\", \"url\": "
	                     "\"http://127.0.0.1/live/match/1\"}");
	errlist_t errs;
	void *st = (void *)1;
	char out[64];

	assert_string_equal(a->name, "livescore");
	assert_int_equal(a->needs_browser, 1);
	assert_non_null(a->param_keys);
	assert_null(a->param_keys[0]);
	errlist_init(&errs);
	assert_int_equal(a->parse(t, "w", &st, &errs), 0);
	assert_null(st);
	assert_int_equal(errs.count, 0);
	errlist_release(&errs);
	json_decref(t);
	assert_true(a->build_url == NULL || a->build_url(NULL, "http://x/", out, sizeof out) == 0);
	assert_string_equal(a->wait_for(NULL), "#score[data-version]");
	assert_string_equal(a->watch_root(NULL), "#match");
	assert_non_null(strstr(a->extract_js(NULL), "#score-home"));
	assert_non_null(strstr(a->discover_js(NULL), ".match[data-id]"));
}

static void test_adapter_livescore__normalise_good(void **state)
{
	json_t *raw = ak_parse(good_raw), *data, *want;
	char why[256] = "";

	data = ad()->normalise(NULL, raw, why, sizeof why);
	if (!data)
		fail_msg("normalise failed: %s", why);
	want = ak_parse("{\"id\": \"7\", \"home\": \"Lions\", \"away\": \"Tigers\", \"score\": "
	                "{\"home\": 2, \"away\": 0}, \"minute\": 23, \"status\": \"live\", "
	                "\"last_event\": \"23' goal Lions\", \"version\": 2024}");
	assert_true(json_equal(data, want));
	json_decref(want);
	json_decref(data);
	json_decref(raw);

	/* an upcoming match: minute 0, empty last event */
	raw = ak_parse(
	        "{\"id\": \"12\", \"home\": \"A\", \"away\": \"B\", \"score\": {\"home\": 0, "
	        "\"away\": 0}, \"minute\": 0, \"status\": \"upcoming\", \"last_event\": \"\", "
	        "\"version\": 0}");
	data = ad()->normalise(NULL, raw, why, sizeof why);
	if (!data)
		fail_msg("normalise failed: %s", why);
	assert_string_equal(json_string_value(json_object_get(data, "status")), "upcoming");
	json_decref(data);
	json_decref(raw);
}

/* raw with key (a JSON pointer-ish "a" or "score.home") set to value must fail with a
 * reason holding each of the needles. */
static void bad(const char *key, const char *value, const char *needle1, const char *needle2)
{
	json_t *raw = ak_parse(good_raw), *v = value ? ak_parse(value) : NULL, *data;
	char why[512] = "";

	if (strncmp(key, "score.", 6) == 0) {
		if (v)
			json_object_set_new(json_object_get(raw, "score"), key + 6, v);
		else
			json_object_del(json_object_get(raw, "score"), key + 6);
	} else if (v) {
		json_object_set_new(raw, key, v);
	} else {
		json_object_del(raw, key);
	}
	data = ad()->normalise(NULL, raw, why, sizeof why);
	if (data)
		fail_msg("%s = %s was accepted", key, value ? value : "(missing)");
	ak_assert_has(why, needle1);
	if (needle2)
		ak_assert_has(why, needle2);
	json_decref(raw);
}

static void test_adapter_livescore__normalise_bad(void **state)
{
	char why[512] = "";
	json_t *raw;

	bad("score.home", "\"n/a\"", "field \"score.home\": expected an integer", "\"n/a\"");
	bad("score.away", "-1", "score.away", "got -1");
	bad("score.away", "1.5", "score.away", "1.5");
	bad("score.home", NULL, "score.home", "got nothing");
	bad("score", "\"1-0\"", "field \"score\": expected an object", "\"1-0\"");
	bad("minute", "\"--\"", "field \"minute\": expected an integer from 0 to 130", "\"--\"");
	bad("minute", "500", "minute", "500");
	bad("status", "\"error\"",
	    "field \"status\": expected \"upcoming\", \"live\" or "
	    "\"finished\"",
	    "\"error\"");
	bad("status", NULL, "status", "got nothing");
	bad("home", "\"\"", "field \"home\": expected a string of 1 to 100 bytes", "got \"\"");
	bad("away", "3", "field \"away\"", "got 3");
	bad("last_event", "null", "field \"last_event\"", "null");
	bad("version", "\"v3\"", "field \"version\"", "\"v3\"");
	bad("version", NULL, "field \"version\"", "nothing");
	bad("id", "\"x7\"", "field \"id\": expected 1 to 16 decimal digits", "\"x7\"");
	bad("id", "7", "field \"id\"", "got 7");

	raw = ak_parse("[1, 2]");
	assert_null(ad()->normalise(NULL, raw, why, sizeof why));
	ak_assert_has(why, "expected an object {id, home");
	ak_assert_has(why, "[1,2]");
	json_decref(raw);
	assert_null(ad()->normalise(NULL, NULL, why, sizeof why));
	ak_assert_has(why, "got nothing");
}

static void test_adapter_livescore__classify(void **state)
{
	static const struct {
		const char *status;
		int klass;
	} cases[] = {
		{ "live", SCHED_LIVE },
		{ "upcoming", SCHED_IMMINENT },
		{ "finished", SCHED_COMPLETED },
		{ "error", -1 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *d = json_pack("{s:s}", "status", cases[i].status);
		assert_int_equal(ad()->classify(NULL, d), cases[i].klass);
		json_decref(d);
	}
	{
		json_t *d = json_object();
		assert_int_equal(ad()->classify(NULL, d), -1);
		json_decref(d);
	}
}

static void test_adapter_livescore__discover_good(void **state)
{
	json_t *raw = ak_parse("[{\"id\": \"1\", \"url\": \"http://127.0.0.1:8080/live/match/1\", "
	                       "\"status\": \"finished\"},"
	                       " {\"id\": \"2\", \"url\": \"http://127.0.0.1:8080/live/match/2\", "
	                       "\"status\": \"live\"},"
	                       " {\"id\": 3, \"url\": \"https://example.com/live/match/3\", "
	                       "\"status\": \"upcoming\", \"more\": 1}]");
	json_t *out, *want;
	char why[256] = "";

	out = ad()->discover(NULL, raw, "demo", why, sizeof why);
	if (!out)
		fail_msg("discover failed: %s", why);
	want = ak_parse("[{\"id\": \"demo-1\", \"adapter\": \"livescore\", \"url\": "
	                "\"http://127.0.0.1:8080/live/match/1\", \"class\": \"completed\"},"
	                " {\"id\": \"demo-2\", \"adapter\": \"livescore\", \"url\": "
	                "\"http://127.0.0.1:8080/live/match/2\", \"class\": \"live\"},"
	                " {\"id\": \"demo-3\", \"adapter\": \"livescore\", \"url\": "
	                "\"https://example.com/live/match/3\", \"class\": \"imminent\"}]");
	assert_true(json_equal(out, want));
	json_decref(want);
	json_decref(out);
	json_decref(raw);

	/* an empty listing is no error: no matches today */
	raw = json_array();
	out = ad()->discover(NULL, raw, "demo", why, sizeof why);
	assert_non_null(out);
	assert_int_equal(json_array_size(out), 0);
	json_decref(out);
	json_decref(raw);
}

static void disc_bad(const char *raw_text, const char *parent, const char *needle1,
                     const char *needle2)
{
	json_t *raw = ak_parse(raw_text), *out;
	char why[512] = "";

	out = ad()->discover(NULL, raw, parent, why, sizeof why);
	if (out)
		fail_msg("listing %s was accepted", raw_text);
	ak_assert_has(why, needle1);
	if (needle2)
		ak_assert_has(why, needle2);
	json_decref(raw);
}

#define OK1 "{\"id\": \"1\", \"url\": \"http://h/live/match/1\", \"status\": \"live\"}"

static void test_adapter_livescore__discover_malformed(void **state)
{
	char parent[80];

	disc_bad("{\"matches\": []}", "demo", "expected an array of {id, url, status}",
	         "{\"matches\":[]}");
	disc_bad("[" OK1 ", 5]", "demo", "listing[1]: expected an object", "got 5");
	disc_bad("[{\"id\": null, \"url\": \"http://h/x\", \"status\": \"live\"}]", "demo",
	         "listing[0]: \"id\": expected a match id", "got null");
	disc_bad("[{\"id\": \"../etc\", \"url\": \"http://h/x\", \"status\": \"live\"}]", "demo",
	         "listing[0]: \"id\"", "\"../etc\"");
	disc_bad("[{\"id\": -4, \"url\": \"http://h/x\", \"status\": \"live\"}]", "demo",
	         "listing[0]: \"id\"", "-4");
	disc_bad("[" OK1 ", {\"id\": \"2\", \"url\": \"/live/match/2\", \"status\": \"live\"}]",
	         "demo", "listing[1] (match \"2\"): \"url\": expected an absolute http://",
	         "\"/live/match/2\"");
	disc_bad("[{\"id\": \"2\", \"url\": \"javascript:alert(1)\", \"status\": \"live\"}]",
	         "demo", "\"url\"", "javascript:alert(1)");
	disc_bad("[{\"id\": \"2\", \"url\": \"http://h/a b\", \"status\": \"live\"}]", "demo",
	         "\"url\"", "a b");
	disc_bad("[{\"id\": \"2\", \"url\": null, \"status\": \"live\"}]", "demo", "\"url\"",
	         "got null");
	disc_bad("[{\"id\": \"2\", \"url\": \"http://h/2\", \"status\": \"postponed\"}]", "demo",
	         "listing[0] (match \"2\"): \"status\": expected \"upcoming\", \"live\" or "
	         "\"finished\"",
	         "\"postponed\"");
	disc_bad("[{\"id\": \"2\", \"url\": \"http://h/2\"}]", "demo", "\"status\"", "nothing");
	disc_bad("[" OK1 ", " OK1 "]", "demo", "listing[1]: match \"1\" is listed twice", NULL);
	memset(parent, 'p', 62);
	parent[62] = '\0';
	disc_bad("[{\"id\": \"123\", \"url\": \"http://h/2\", \"status\": \"live\"}]", parent,
	         "listing[0]: target id", "is over 64 bytes");
	disc_bad("[]", "", "parent id must be", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adapter_livescore__registered),
		cmocka_unit_test(test_adapter_livescore__normalise_good),
		cmocka_unit_test(test_adapter_livescore__normalise_bad),
		cmocka_unit_test(test_adapter_livescore__classify),
		cmocka_unit_test(test_adapter_livescore__discover_good),
		cmocka_unit_test(test_adapter_livescore__discover_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
