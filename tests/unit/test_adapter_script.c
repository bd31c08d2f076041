/*
 * Unit tests for the script adapter (adapters/script.c): the script and its params reach
 * the daemon as data (extract_fn and extract_args, no extract_js), every parameter error is
 * listed at once, normalise takes objects only, classify reads any top-level key, and a
 * discovering script target needs links and children and refuses the extraction keys. The
 * function itself runs in Chromium in the runner's integration tests (cdp_page_call).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/adapter.h"
#include "tests/support/adaptkit.h"
#include "util/sched_class.h"

static const adapter_t *ad(void)
{
	return ak_adapter("script");
}

/* The parse errors of target text (which must fail), as one text (static copy). */
static const char *errors_of(const char *target, unsigned *count)
{
	static char buf[ERRLIST_MAX];
	json_t *t = ak_parse(target);
	errlist_t errs;
	void *st = (void *)&st;

	errlist_init(&errs);
	assert_int_equal(ad()->parse(t, "targets[1] \"s\"", &st, &errs), -22);
	assert_null(st);
	snprintf(buf, sizeof buf, "%s", errlist_text(&errs));
	if (count)
		*count = errs.count;
	errlist_release(&errs);
	json_decref(t);
	return buf;
}

static void test_adapter_script__registered(void **state)
{
	assert_true(ad()->needs_browser);
	assert_null(ad()->extract_js);
	assert_non_null(ad()->extract_fn);
	assert_non_null(ad()->extract_args);
	assert_non_null(ad()->discover_js);
	assert_non_null(ad()->discover);
	assert_true(ADAPTER_VALUE_CAP == 262144);
}

static void test_adapter_script__script_and_params_as_data(void **state)
{
	/* a script that would break out of any string it were pasted into: it is handed over
	 * as it is, byte for byte */
	const char *src = "async (p) => { const x = \"'`${1}</script>\\u2028\"; "
	                  "return { n: p.n, x }; }";
	json_t *t = json_pack("{s:s, s:{s:i, s:[s]}, s:s, s:s}", "script", src, "params", "n", 3,
	                      "list", "a", "wait_for", "#score", "watch_root", "#match");
	errlist_t errs;
	void *st = NULL;

	errlist_init(&errs);
	assert_int_equal(ad()->parse(t, "w", &st, &errs), 0);
	assert_string_equal(ad()->extract_fn(st), src);
	ak_assert_json(ad()->extract_args(st), "[{\"n\": 3, \"list\": [\"a\"]}]");
	assert_string_equal(ad()->wait_for(st), "#score");
	assert_string_equal(ad()->watch_root(st), "#match");
	assert_null(ad()->discover_js(st));
	ad()->free_state(st);
	json_decref(t);

	/* defaults: params {}, no wait, the observer's default root */
	st = ak_good(ad(), "{\"script\": \"() => ({})\"}", "w");
	ak_assert_json(ad()->extract_args(st), "[{}]");
	assert_null(ad()->wait_for(st));
	assert_null(ad()->watch_root(st));
	{
		json_t *d = ak_parse("{\"status\": \"live\"}");
		assert_int_equal(ad()->classify(st, d), -1);
		json_decref(d);
	}
	ad()->free_state(st);
	errlist_release(&errs);
}

static void test_adapter_script__errors_all_listed(void **state)
{
	unsigned n = 0;
	const char *e = errors_of("{\"script\": \"\", \"params\": [1], \"wait_for\": 5,"
	                          " \"watch_root\": \"\", \"classify\": {\"field\": \"\","
	                          " \"live\": \"x\"}}",
	                          &n);

	ak_assert_has(e, "targets[1] \"s\": \"script\": expected a non-empty string of at most "
	                 "1048576 bytes, got \"\"");
	ak_assert_has(e, "targets[1] \"s\": \"params\": expected an object (the script's "
	                 "argument), got [1]");
	ak_assert_has(e, "targets[1] \"s\": \"wait_for\": expected a non-empty string of at most "
	                 "1024 bytes, got 5");
	ak_assert_has(e, "targets[1] \"s\": \"watch_root\": expected a non-empty string");
	ak_assert_has(e, "\"classify.field\": expected the name of a field, got \"\"");
	ak_assert_has(e, "\"classify.live\": expected an array of values, got \"x\"");
	assert_int_equal(n, 6);

	e = errors_of("{}", &n);
	ak_assert_has(e, "targets[1] \"s\": \"script\": required (the source of a function");
	assert_int_equal(n, 1);
	e = errors_of("{\"script_file\": \"x.js\"}", NULL);
	ak_assert_has(e, "\"script_file\": read only from a targets file (relative to its "
	                 "directory); here give the source in \"script\"");
	e = errors_of("{\"script\": 42}", NULL);
	ak_assert_has(e, "\"script\": expected a non-empty string of at most 1048576 bytes, got "
	                 "42");
}

static void test_adapter_script__script_bounds(void **state)
{
	size_t big = 1024 * 1024;
	char *src = malloc(big + 2);
	json_t *t;
	errlist_t errs;
	void *st = NULL;

	assert_non_null(src);
	memset(src, ' ', big + 1);
	memcpy(src, "()=>({})", 8);
	src[big] = '\0'; /* exactly 1 MiB: accepted */
	t = json_pack("{s:s}", "script", src);
	errlist_init(&errs);
	assert_int_equal(ad()->parse(t, "w", &st, &errs), 0);
	ad()->free_state(st);
	json_decref(t);
	src[big] = ' ';
	src[big + 1] = '\0'; /* one byte over */
	t = json_pack("{s:s}", "script", src);
	assert_int_equal(ad()->parse(t, "w", &st, &errs), -22);
	ak_assert_has(errlist_text(&errs), "\"script\": expected a non-empty string of at most "
	                                   "1048576 bytes");
	json_decref(t);
	errlist_release(&errs);
	/* a NUL byte inside */
	errlist_init(&errs);
	t = json_pack("{s:s#}", "script", "()=>\0({})", (int)9);
	assert_int_equal(ad()->parse(t, "w", &st, &errs), -22);
	ak_assert_has(errlist_text(&errs), "\"script\": expected a non-empty string");
	json_decref(t);
	errlist_release(&errs);
	free(src);
}

static void test_adapter_script__normalise_objects_only(void **state)
{
	const char *bad[][2] = { { "[1,2]", "the script returned [1,2], expected a JSON object" },
		                 { "null", "returned null, expected" },
		                 { "\"x\"", "returned \"x\", expected" },
		                 { "7", "returned 7, expected" } };

	ak_norm(ad(), ak_good(ad(), "{\"script\": \"() => ({})\"}", "w"),
	        "{\"score\": {\"home\": 1}, \"minute\": 23, \"t\": [null, true]}",
	        "{\"score\": {\"home\": 1}, \"minute\": 23, \"t\": [null, true]}", NULL);
	ak_norm(ad(), ak_good(ad(), "{\"script\": \"() => ({})\"}", "w"), "{}", "{}", NULL);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ak_norm(ad(), ak_good(ad(), "{\"script\": \"() => ({})\"}", "w"), bad[i][0], NULL,
		        bad[i][1]);
}

static void test_adapter_script__classify_any_key(void **state)
{
	void *st = ak_good(ad(),
	                   "{\"script\": \"() => ({})\", \"classify\": {\"field\": \"status\","
	                   " \"live\": [\"LIVE\", 1], \"completed\": [\"FT\"]}}",
	                   "w");
	json_t *d;

	d = ak_parse("{\"status\": \"LIVE\"}");
	assert_int_equal(ad()->classify(st, d), SCHED_LIVE);
	json_decref(d);
	d = ak_parse("{\"status\": 1.0}");
	assert_int_equal(ad()->classify(st, d), SCHED_LIVE);
	json_decref(d);
	d = ak_parse("{\"status\": \"FT\"}");
	assert_int_equal(ad()->classify(st, d), SCHED_COMPLETED);
	json_decref(d);
	d = ak_parse("{\"status\": \"HT\"}");
	assert_int_equal(ad()->classify(st, d), -1);
	json_decref(d);
	d = ak_parse("{\"other\": \"LIVE\"}");
	assert_int_equal(ad()->classify(st, d), -1);
	json_decref(d);
	ad()->free_state(st);
}

static void test_adapter_script__discovering(void **state)
{
	void *st = ak_good(ad(),
	                   "{\"discover\": true, \"wait_for\": \"ul\","
	                   " \"links\": {\"selector\": \"li.match\"},"
	                   " \"children\": {\"adapter\": \"script\", \"script\": \"() => ({})\"}}",
	                   "w");
	const char *e;
	unsigned n = 0;

	assert_non_null(ad()->discover_js(st));
	assert_non_null(strstr(ad()->discover_js(st), "li.match"));
	assert_string_equal(ad()->wait_for(st), "ul");
	ad()->free_state(st);

	e = errors_of("{\"discover\": true, \"script\": \"() => ({})\", \"params\": {},"
	              " \"classify\": {\"field\": \"s\", \"live\": [1]}, \"watch_root\": \"b\","
	              " \"children\": {\"script\": \"x\"}}",
	              &n);
	ak_assert_has(e, "targets[1] \"s\": \"discover\": needs \"links\" ({\"selector\": CSS, "
	                 "...}: which elements of the listing are the children)");
	ak_assert_has(e, "targets[1] \"s\": \"script\": not used with \"discover\": true (the "
	                 "listing is only read for its links); give it in \"children\"");
	ak_assert_has(e, "\"params\": not used with \"discover\": true");
	ak_assert_has(e, "\"classify\": not used with \"discover\": true");
	ak_assert_has(e, "\"watch_root\": not used with \"discover\": true");
	ak_assert_has(e, "targets[1] \"s\": \"children\": must name the children's \"adapter\"");
	assert_int_equal(n, 6);

	e = errors_of("{\"script\": \"() => ({})\", \"links\": {\"selector\": \"a\"}}", &n);
	ak_assert_has(e, "targets[1] \"s\": \"links\": only with \"discover\": true");
	assert_int_equal(n, 1);
	e = errors_of("{\"discover\": true, \"links\": {\"selector\": \"a\"}}", &n);
	ak_assert_has(e, "targets[1] \"s\": \"children\": required with \"links\"");
	assert_int_equal(n, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adapter_script__registered),
		cmocka_unit_test(test_adapter_script__script_and_params_as_data),
		cmocka_unit_test(test_adapter_script__errors_all_listed),
		cmocka_unit_test(test_adapter_script__script_bounds),
		cmocka_unit_test(test_adapter_script__normalise_objects_only),
		cmocka_unit_test(test_adapter_script__classify_any_key),
		cmocka_unit_test(test_adapter_script__discovering),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
