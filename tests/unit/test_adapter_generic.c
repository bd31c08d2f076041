/*
 * Unit tests for the generic adapter (adapters/generic.c): every parameter error listed at
 * once, the extraction expression embeds hostile selectors and regexes only as JSON string
 * literals, raw page values are converted by type with clear errors, and classify maps a
 * field's value to a class. The expression itself runs in Chromium in
 * tests/integration/test_adapter_generic_page.c.
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

static const adapter_t *ad(void)
{
	return ak_adapter("generic");
}

/* Parses target text; returns the state (asserting success). */
static void *good(const char *target)
{
	return ak_good(ad(), target, "targets[0] \"g\"");
}

static void test_adapter_generic__registered(void **state)
{
	assert_true(ad()->needs_browser);
	assert_string_equal(ad()->name, "generic");
	assert_non_null(ad()->extract_js);
	assert_non_null(ad()->normalise);
	/* discovery by "links": tests/unit/test_adapter_links.c */
	assert_non_null(ad()->discover_js);
	assert_non_null(ad()->discover);
}

static void test_adapter_generic__parse_errors_all_listed(void **state)
{
	json_t *t = ak_parse("{\"fields\": {"
	                     "  \"a\": {\"selecter\": \"#a\"},"
	                     "  \"b\": {\"selector\": \"\", \"type\": \"integer\"},"
	                     "  \"c\": {\"selector\": \"#c\", \"required\": \"yes\", \"all\": 1},"
	                     "  \"d\": \"#d\","
	                     "  \"e\": {\"selector\": 5, \"regex\": [1], \"attr\": \"\"}"
	                     "}, \"wait_for\": 7,"
	                     " \"classify\": {\"field\": \"scor\", \"live\": \"LIVE\", \"x\": 1}}");
	errlist_t errs;
	void *st = (void *)&st;
	const char *e;

	errlist_init(&errs);
	assert_int_equal(ad()->parse(t, "targets[2] \"g\"", &st, &errs), -22);
	assert_null(st);
	e = errlist_text(&errs);
	ak_assert_has(e, "targets[2] \"g\": \"fields.a\": unknown key \"selecter\" (did you mean "
	                 "\"selector\"?)");
	ak_assert_has(e, "targets[2] \"g\": \"fields.a.selector\": required");
	ak_assert_has(e, "\"fields.b.selector\": expected a non-empty string");
	ak_assert_has(e, "\"fields.b.type\": expected \"string\", \"int\" or \"float\", got "
	                 "\"integer\"");
	ak_assert_has(e, "\"fields.c.required\": expected true or false, got \"yes\"");
	ak_assert_has(e, "\"fields.c.all\": expected true or false, got 1");
	ak_assert_has(e, "\"fields.d\": expected an object");
	ak_assert_has(e,
	              "\"fields.e.selector\": expected a non-empty string of at most 1024 bytes, "
	              "got 5");
	ak_assert_has(e, "\"fields.e.regex\": expected a non-empty string");
	ak_assert_has(e, "\"fields.e.attr\": expected a non-empty string");
	ak_assert_has(e, "\"wait_for\": expected a non-empty string");
	ak_assert_has(e, "\"classify\": unknown key \"x\"");
	ak_assert_has(e, "\"classify.field\": \"scor\" is not one of the fields");
	ak_assert_has(e, "\"classify.live\": expected an array of values, got \"LIVE\"");
	assert_true(errs.count >= 14);
	errlist_release(&errs);
	json_decref(t);
}

static void test_adapter_generic__fields_required(void **state)
{
	const char *bad[] = { "{}", "{\"fields\": {}}", "{\"fields\": [\"#a\"]}",
		              "{\"fields\": \"#a\"}" };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *t = ak_parse(bad[i]);
		errlist_t errs;
		void *st = NULL;
		errlist_init(&errs);
		assert_int_equal(ad()->parse(t, "w", &st, &errs), -22);
		ak_assert_has(errlist_text(&errs), "w: \"fields\": expected an object of 1 to");
		errlist_release(&errs);
		json_decref(t);
	}
}

/* The JSON literal embedded in js: from "const F = " to the end of that line. */
static json_t *embedded_specs(const char *js)
{
	const char *start = strstr(js, "const F = ");
	const char *end;
	char *lit;
	json_t *v;

	assert_non_null(start);
	start += strlen("const F = ");
	end = strstr(start, ";\n");
	assert_non_null(end);
	lit = strndup(start, (size_t)(end - start));
	v = json_loads(lit, 0, NULL);
	free(lit);
	return v;
}

static void test_adapter_generic__extract_js_embeds_hostile_text_safely(void **state)
{
	/* Selectors and regexes that would break out of a naively pasted string. */
	const char *hostile_sel = "a\"]'); alert(1); //`${x}`</script>\u2028\n\\";
	const char *hostile_re = "(\\d+)'\"});globalThis.pwned=1;//";
	json_t *t = json_pack("{s:{s:{s:s, s:s}, s:{s:s, s:s}}}", "fields", "x", "selector",
	                      hostile_sel, "regex", hostile_re, "y\"); evil(", "selector", "#y",
	                      "attr", "data-\"x");
	errlist_t errs;
	void *st = NULL;
	const char *js;
	json_t *specs, *f0, *f1;

	errlist_init(&errs);
	assert_non_null(t);
	assert_int_equal(ad()->parse(t, "w", &st, &errs), 0);
	js = ad()->extract_js(st);
	assert_non_null(js);
	/* one IIFE expression */
	assert_true(strncmp(js, "(() => {", 8) == 0);
	assert_string_equal(js + strlen(js) - 4, "})()");
	/* ASCII only: no raw line separators or newlines from the data */
	for (const char *p = js; *p; p++)
		assert_true((unsigned char)*p < 0x80);
	/* the hostile text appears only inside the JSON literal, which decodes back to it */
	specs = embedded_specs(js);
	assert_non_null(specs);
	assert_int_equal(json_array_size(specs), 2);
	f0 = json_array_get(specs, 0);
	f1 = json_array_get(specs, 1);
	assert_string_equal(json_string_value(json_object_get(f0, "n")), "x");
	assert_string_equal(json_string_value(json_object_get(f0, "s")), hostile_sel);
	assert_string_equal(json_string_value(json_object_get(f0, "r")), hostile_re);
	assert_true(json_is_null(json_object_get(f0, "a")));
	assert_string_equal(json_string_value(json_object_get(f1, "n")), "y\"); evil(");
	assert_string_equal(json_string_value(json_object_get(f1, "a")), "data-\"x");
	assert_null(strstr(js, "alert(1); //`"));    /* never raw */
	assert_null(strstr(js, "'\"});globalThis")); /* never raw */
	assert_null(strstr(js, "</script>"));        /* "/" is escaped too */
	json_decref(specs);
	ad()->free_state(st);
	errlist_release(&errs);
	json_decref(t);
}

static void test_adapter_generic__wait_for(void **state)
{
	void *st = good("{\"fields\": {\"a\": {\"selector\": \"#a\"}}}");

	assert_null(ad()->wait_for(st));
	ad()->free_state(st);
	st = good("{\"fields\": {\"a\": {\"selector\": \"#a\"}}, \"wait_for\": \"#ready\"}");
	assert_string_equal(ad()->wait_for(st), "#ready");
	ad()->free_state(st);
}

/* normalise(raw) with the state from target; expects data (JSON text) or a why part. */
static void norm(const char *target, const char *raw, const char *data, const char *why_part)
{
	ak_norm(ad(), good(target), raw, data, why_part);
}

static void test_adapter_generic__normalise_types(void **state)
{
	const char *t = "{\"fields\": {\"name\": {\"selector\": \"h1\"},"
	                " \"score\": {\"selector\": \"#s\", \"type\": \"int\"},"
	                " \"rate\": {\"selector\": \"#r\", \"type\": \"float\"}}}";

	norm(t, "{\"name\": \"Team A\", \"score\": \"  1,234 \", \"rate\": \"7.25\"}",
	     "{\"name\": \"Team A\", \"score\": 1234, \"rate\": 7.25}", NULL);
	norm(t, "{\"name\": \"\", \"score\": \"-12\", \"rate\": \"1,000.5\"}",
	     "{\"name\": \"\", \"score\": -12, \"rate\": 1000.5}", NULL);
	norm(t, "{\"name\": \"x\", \"score\": \"+3\", \"rate\": \"2e3\"}",
	     "{\"name\": \"x\", \"score\": 3, \"rate\": 2000.0}", NULL);
}

static void test_adapter_generic__normalise_errors(void **state)
{
	const char *t = "{\"fields\": {\"score\": {\"selector\": \"#s\", \"type\": \"int\"}}}";
	const char *tf = "{\"fields\": {\"rate\": {\"selector\": \"#r\", \"type\": \"float\"}}}";

	norm(t, "{\"score\": \"n/a\"}", NULL, "field \"score\": expected int, got \"n/a\"");
	norm(t, "{\"score\": \"1.5\"}", NULL, "expected int, got \"1.5\"");
	norm(t, "{\"score\": \"12,34\"}", NULL, "expected int, got \"12,34\"");
	norm(t, "{\"score\": \"99999999999999999999\"}", NULL, "expected int");
	norm(t, "{\"score\": \"\"}", NULL, "expected int, got \"\"");
	norm(tf, "{\"rate\": \"0x10\"}", NULL, "expected float, got \"0x10\"");
	norm(tf, "{\"rate\": \"inf\"}", NULL, "expected float");
	norm(tf, "{\"rate\": \"nan\"}", NULL, "expected float");
	norm(t, "{\"score\": null}", NULL, "field \"score\": selector \"#s\" matched nothing");
	norm(t, "{}", NULL, "field \"score\": selector \"#s\" matched nothing");
	norm(t, "[1]", NULL, "expected an object of fields from the page, got [1]");
	norm(t, "{\"score\": {\"error\": \"invalid regex \\\"(\\\": Unterminated group\"}}", NULL,
	     "field \"score\": invalid regex \"(\": Unterminated group");
	norm("{\"fields\": {\"n\": {\"selector\": \"#n\", \"regex\": \"(\\\\d+)\"}}}",
	     "{\"n\": {\"nomatch\": \"none here\"}}", NULL,
	     "field \"n\": regex \"(\\d+)\" did not match \"none here\"");
	norm("{\"fields\": {\"l\": {\"selector\": \"a\", \"attr\": \"href\"}}}",
	     "{\"l\": {\"noattr\": true}}", NULL,
	     "field \"l\": selector \"a\" matched an element without attribute \"href\"");
}

static void test_adapter_generic__optional_and_all(void **state)
{
	const char *t = "{\"fields\": {\"note\": {\"selector\": \".note\", \"required\": false},"
	                " \"tags\": {\"selector\": \".tag\", \"all\": true},"
	                " \"nums\": {\"selector\": \"td\", \"all\": true, \"type\": \"int\","
	                "            \"required\": false}}}";

	norm(t,
	     "{\"note\": null, \"tags\": [\"a\", \"b\"], \"nums\": [\"1\", {\"nomatch\": "
	     "\"x\"}, \"3\"]}",
	     "{\"note\": null, \"tags\": [\"a\", \"b\"], \"nums\": [1, 3]}", NULL);
	norm(t, "{\"note\": {\"nomatch\": \"x\"}, \"tags\": [\"a\"], \"nums\": []}",
	     "{\"note\": null, \"tags\": [\"a\"], \"nums\": []}", NULL);
	norm(t, "{\"note\": \"n\", \"tags\": [], \"nums\": null}", NULL,
	     "field \"tags\": selector \".tag\" matched nothing");
	norm(t, "{\"note\": \"n\", \"tags\": [\"a\"], \"nums\": [\"1\", \"x\"]}", NULL,
	     "field \"nums\"[1]: expected int, got \"x\"");
	norm(t, "{\"note\": \"n\", \"tags\": \"a\", \"nums\": []}", NULL,
	     "field \"tags\": expected an array from the page, got \"a\"");
}

static void test_adapter_generic__classify(void **state)
{
	void *st = good("{\"fields\": {\"status\": {\"selector\": \"#st\"},"
	                " \"period\": {\"selector\": \"#p\", \"type\": \"int\"}},"
	                " \"classify\": {\"field\": \"status\", \"live\": [\"LIVE\", \"HT\"],"
	                " \"completed\": [\"FT\"], \"imminent\": [\"Soon\"]}}");
	json_t *d;

	d = json_pack("{s:s}", "status", "HT");
	assert_int_equal(ad()->classify(st, d), SCHED_LIVE);
	json_decref(d);
	d = json_pack("{s:s}", "status", "FT");
	assert_int_equal(ad()->classify(st, d), SCHED_COMPLETED);
	json_decref(d);
	d = json_pack("{s:s}", "status", "Soon");
	assert_int_equal(ad()->classify(st, d), SCHED_IMMINENT);
	json_decref(d);
	d = json_pack("{s:s}", "status", "ft");
	assert_int_equal(ad()->classify(st, d), -1);
	json_decref(d);
	d = json_pack("{}");
	assert_int_equal(ad()->classify(st, d), -1);
	json_decref(d);
	ad()->free_state(st);

	/* numbers compare by value; no classify block: no opinion */
	st = good("{\"fields\": {\"p\": {\"selector\": \"#p\", \"type\": \"float\"}},"
	          " \"classify\": {\"field\": \"p\", \"completed\": [4]}}");
	d = json_pack("{s:f}", "p", 4.0);
	assert_int_equal(ad()->classify(st, d), SCHED_COMPLETED);
	json_decref(d);
	ad()->free_state(st);
	st = good("{\"fields\": {\"p\": {\"selector\": \"#p\"}}}");
	d = json_pack("{s:s}", "p", "FT");
	assert_int_equal(ad()->classify(st, d), -1);
	json_decref(d);
	ad()->free_state(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adapter_generic__registered),
		cmocka_unit_test(test_adapter_generic__parse_errors_all_listed),
		cmocka_unit_test(test_adapter_generic__fields_required),
		cmocka_unit_test(test_adapter_generic__extract_js_embeds_hostile_text_safely),
		cmocka_unit_test(test_adapter_generic__wait_for),
		cmocka_unit_test(test_adapter_generic__normalise_types),
		cmocka_unit_test(test_adapter_generic__normalise_errors),
		cmocka_unit_test(test_adapter_generic__optional_and_all),
		cmocka_unit_test(test_adapter_generic__classify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
