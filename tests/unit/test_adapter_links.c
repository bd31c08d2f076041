/*
 * Unit tests for discovery by "links" (adapters/links.c, through the generic and script
 * adapters): every error of the rule listed at once, the page expression embeds the rule
 * only as a JSON literal, and discover() builds the children: ids from the capture or a
 * stable hash, sanitised and cut to fit, duplicates dropped, classes read from the page's
 * text case-insensitively or the parent's, URLs that are not pages skipped, the page's own
 * errors reported. The expression runs in Chromium in tests/integration/
 * test_adapter_links_page.c.
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
#include "adapters/links.h"
#include "daemon/targets.h"
#include "tests/support/adaptkit.h"

static const char children[] = "\"children\": {\"adapter\": \"generic\", \"fields\": {\"s\":"
                               " {\"selector\": \"#s\"}}}";

/* A generic listing target with this links rule (JSON text) and class (or NULL). */
static void *listing(const char *adapter, const char *links, const char *klass)
{
	char t[2048];

	snprintf(t, sizeof t, "{\"discover\": true, \"links\": %s, %s%s%s%s}", links, children,
	         klass ? ", \"class\": \"" : "", klass ? klass : "", klass ? "\"" : "");
	return ak_good(ak_adapter(adapter), t, "targets[0] \"league\"");
}

/* discover() of raw (JSON text) by state st of adapter; expects the children (JSON text)
 * or, with want NULL, a failure whose reason contains why_part. */
static void check_discover(const char *adapter, void *st, const char *parent, const char *raw,
                           const char *want, const char *why_part)
{
	const adapter_t *a = ak_adapter(adapter);
	json_t *r = ak_parse(raw), *got;
	char why[512] = "";

	got = a->discover(st, r, parent, why, sizeof why);
	if (want) {
		if (!got)
			fail_msg("discover failed: %s", why);
		ak_assert_json(got, want);
	} else {
		if (got)
			fail_msg("discover did not fail");
		ak_assert_has(why, why_part);
	}
	json_decref(got);
	json_decref(r);
}

static void test_adapter_links__rule_errors_all_listed(void **state)
{
	json_t *t = ak_parse("{\"discover\": true, \"fields\": {\"a\": {\"selector\": \"a\"}},"
	                     " \"classify\": {\"field\": \"a\", \"live\": [1]},"
	                     " \"links\": {\"selectr\": \"li\", \"id\": \"/m/(\\\\d+\","
	                     "   \"class\": {\"attr\": \"data-s\", \"selector\": \"b\","
	                     "     \"live\": \"live\", \"completed\": [1]}},"
	                     " \"children\": {\"adapter\": \"generic\"}}");
	errlist_t errs;
	void *st = (void *)&st;
	const char *e;

	errlist_init(&errs);
	assert_int_equal(ak_adapter("generic")->parse(t, "targets[0] \"l\"", &st, &errs), -22);
	assert_null(st);
	e = errlist_text(&errs);
	ak_assert_has(e, "targets[0] \"l\": \"fields\": not used with \"discover\": true (the "
	                 "listing is only read for its links); give it in \"children\"");
	ak_assert_has(e, "targets[0] \"l\": \"classify\": not used with \"discover\": true");
	ak_assert_has(e, "targets[0] \"l\": \"links\": unknown key \"selectr\" (did you mean "
	                 "\"selector\"?)");
	ak_assert_has(e, "targets[0] \"l\": \"links.selector\": required (a CSS selector)");
	ak_assert_has(e, "targets[0] \"l\": \"links.id\": expected a JavaScript regex, got "
	                 "\"/m/(\\\\d+\" (unbalanced parentheses or brackets, or a trailing \\)");
	ak_assert_has(e, "targets[0] \"l\": \"links.class\": give \"attr\" or \"selector\", not "
	                 "both");
	ak_assert_has(e, "targets[0] \"l\": \"links.class.live\": expected an array of strings, "
	                 "got \"live\"");
	ak_assert_has(e, "targets[0] \"l\": \"links.class.completed[0]\": expected a string, "
	                 "got 1");
	assert_int_equal(errs.count, 8);
	errlist_release(&errs);
	json_decref(t);

	/* more shapes, each alone */
	{
		const char *cases[][2] = {
			{ "\"li\"", "\"links\": expected an object {\"selector\": CSS" },
			{ "{\"selector\": \"\"}",
			  "\"links.selector\": expected a non-empty string" },
			{ "{\"selector\": \"a\", \"id\": \"\"}",
			  "\"links.id\": expected a non-empty" },
			{ "{\"selector\": \"a\", \"id\": \"[a\"}",
			  "\"links.id\": expected a JavaScript" },
			{ "{\"selector\": \"a\", \"id\": \"a\\\\\"}",
			  "\"links.id\": expected a JavaScript" },
			{ "{\"selector\": \"a\", \"id\": \"a)(\"}",
			  "\"links.id\": expected a JavaScript" },
			{ "{\"selector\": \"a\", \"class\": []}",
			  "\"links.class\": expected an object" },
			{ "{\"selector\": \"a\", \"class\": {\"live\": [\"x\"]}}",
			  "\"links.class\": required: \"attr\"" },
			{ "{\"selector\": \"a\", \"class\": {\"attr\": \"x\"}}",
			  "\"links.class\": expected at least one of \"live\"" },
			{ "{\"selector\": \"a\", \"class\": {\"attr\": 3, \"live\": []}}",
			  "\"links.class.attr\": expected a non-empty string" },
		};
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			char text[512];
			void *s2 = NULL;
			json_t *t2;
			snprintf(text, sizeof text, "{\"discover\": true, \"links\": %s, %s}",
			         cases[i][0], children);
			t2 = ak_parse(text);
			errlist_init(&errs);
			assert_int_equal(ak_adapter("generic")->parse(t2, "w", &s2, &errs), -22);
			ak_assert_has(errlist_text(&errs), cases[i][1]);
			assert_int_equal(errs.count, 1);
			errlist_release(&errs);
			json_decref(t2);
		}
	}
}

static void test_adapter_links__discover_needs_links(void **state)
{
	json_t *t = ak_parse("{\"discover\": true}");
	errlist_t errs;
	void *st = NULL;

	errlist_init(&errs);
	assert_int_equal(ak_adapter("generic")->parse(t, "w", &st, &errs), -22);
	ak_assert_has(errlist_text(&errs), "w: \"discover\": needs \"links\"");
	ak_assert_has(errlist_text(&errs), "w: \"children\": required with \"links\"");
	/* and no complaint about the missing fields: a listing has none */
	assert_int_equal(errs.count, 2);
	errlist_release(&errs);
	json_decref(t);
}

/* The JSON literal embedded in js: from "const L = " to the end of that line. */
static json_t *embedded_rule(const char *js)
{
	const char *start = strstr(js, "const L = "), *end;
	char *lit;
	json_t *v;

	assert_non_null(start);
	start += strlen("const L = ");
	end = strstr(start, ";\n");
	assert_non_null(end);
	lit = strndup(start, (size_t)(end - start));
	for (const char *p = lit; *p; p++)
		assert_true((unsigned char)*p < 0x80 && *p != '\n');
	v = json_loads(lit, 0, NULL);
	free(lit);
	assert_non_null(v);
	return v;
}

static void test_adapter_links__rule_embedded_as_json(void **state)
{
	const char *hostile = "a\"]'); globalThis.pwned=1; //`${x}`</script>\u2028";
	json_t *links = json_pack("{s:s, s:s, s:{s:s, s:[s]}}", "selector", hostile, "id",
	                          "/m/(\\d+)'\"", "class", "selector", hostile, "live", "x");
	json_t *t = json_pack("{s:b, s:o, s:{s:s}}", "discover", 1, "links", links, "children",
	                      "adapter", "generic");
	const adapter_t *a = ak_adapter("script");
	errlist_t errs;
	void *st = NULL;
	json_t *rule;

	errlist_init(&errs);
	assert_int_equal(a->parse(t, "w", &st, &errs), 0);
	rule = embedded_rule(a->discover_js(st));
	assert_string_equal(json_string_value(json_object_get(rule, "s")), hostile);
	assert_string_equal(json_string_value(json_object_get(rule, "r")), "/m/(\\d+)'\"");
	assert_string_equal(json_string_value(json_object_get(rule, "cs")), hostile);
	assert_true(json_is_null(json_object_get(rule, "ca")));
	assert_null(strstr(a->discover_js(st), "pwned=1; //"));
	json_decref(rule);
	a->free_state(st);
	json_decref(t);
	errlist_release(&errs);
}

static void test_adapter_links__ids_from_capture_sanitised_and_unique(void **state)
{
	void *st = listing("generic", "{\"selector\": \"li\", \"id\": \"/m/([^/]+)\"}", "live");

	check_discover(
	        "generic", st, "league",
	        "[{\"url\": \"https://h/m/12\", \"id_part\": \"12\", \"class_text\": null},"
	        " {\"url\": \"https://h/m/a%20b\", \"id_part\": \"a b/é\", \"class_text\": null},"
	        " {\"url\": \"https://h/m/12?again\", \"id_part\": \"12\", \"class_text\": null},"
	        " {\"url\": \"http://h/x\", \"id_part\": \"..\", \"class_text\": null}]",
	        "[{\"id\": \"league-12\", \"url\": \"https://h/m/12\", \"class\": \"live\"},"
	        " {\"id\": \"league-a_b___\", \"url\": \"https://h/m/a%20b\","
	        "  \"class\": \"live\"},"
	        " {\"id\": \"league-..\", \"url\": \"http://h/x\", \"class\": \"live\"}]",
	        NULL);
	ak_adapter("generic")->free_state(st);
}

static void test_adapter_links__ids_cut_to_fit(void **state)
{
	void *st = listing("generic", "{\"selector\": \"li\"}", NULL);
	char parent[64], raw[512], want[512];
	const adapter_t *a = ak_adapter("generic");
	json_t *r, *got;
	char why[256];

	memset(parent, 'p', 60);
	parent[60] = '\0';
	snprintf(raw, sizeof raw,
	         "[{\"url\": \"http://h/1\", \"id_part\": \"abcdefgh\", \"class_text\": null}]");
	snprintf(want, sizeof want, "%s-abc", parent);
	r = ak_parse(raw);
	got = a->discover(st, r, parent, why, sizeof why);
	assert_non_null(got);
	assert_string_equal(json_string_value(json_object_get(json_array_get(got, 0), "id")), want);
	assert_int_equal(strlen(want), 64);
	assert_true(targets_id_valid(want));
	json_decref(got);
	/* a parent id with no room left for a child's part */
	memset(parent, 'p', 63);
	parent[63] = '\0';
	assert_null(a->discover(st, r, parent, why, sizeof why));
	ak_assert_has(why, "the parent id must be 1 to 62 bytes");
	json_decref(r);
	a->free_state(st);
}

static void test_adapter_links__hash_when_no_capture(void **state)
{
	void *st = listing("script", "{\"selector\": \"li\"}", NULL);
	char h1[11], h2[11], want[512];
	const char *u1 = "https://scores.example/match/1", *u2 = "https://scores.example/match/2";

	/* FNV-1a 64 by its published test vectors, then the top 40 bits */
	assert_true(adapter_links_fnv1a("") == 0xcbf29ce484222325ull);
	assert_true(adapter_links_fnv1a("a") == 0xaf63dc4c8601ec8cull);
	adapter_links_hash("a", h1);
	assert_string_equal(h1, "af63dc4c86");
	adapter_links_hash(u1, h1);
	adapter_links_hash(u2, h2);
	assert_int_equal(strlen(h1), 10);
	assert_string_not_equal(h1, h2);
	/* no class given anywhere: the child has none (the default applies) */
	snprintf(want, sizeof want,
	         "[{\"id\": \"l-%s\", \"url\": \"%s\"}, {\"id\": \"l-%s\", \"url\": \"%s\"}]", h1,
	         u1, h2, u2);
	check_discover("script", st, "l",
	               "[{\"url\": \"https://scores.example/match/1\", \"id_part\": null,"
	               "  \"class_text\": null},"
	               " {\"url\": \"https://scores.example/match/2\", \"id_part\": \"\","
	               "  \"class_text\": null}]",
	               want, NULL);
	ak_adapter("script")->free_state(st);
}

static void test_adapter_links__class_from_text(void **state)
{
	void *st = listing("generic",
	                   "{\"selector\": \"li\", \"id\": \"(\\\\d+)$\", \"class\": {\"attr\":"
	                   " \"data-status\", \"live\": [\"Live\", \"1H\"], \"imminent\":"
	                   " [\"upcoming\"], \"completed\": [\" FT \"]}}",
	                   "imminent");

	check_discover(
	        "generic", st, "lg",
	        "[{\"url\": \"http://h/1\", \"id_part\": \"1\", \"class_text\": \"LIVE\"},"
	        " {\"url\": \"http://h/2\", \"id_part\": \"2\", \"class_text\": \"  1h\\n\"},"
	        " {\"url\": \"http://h/3\", \"id_part\": \"3\", \"class_text\": \"ft\"},"
	        " {\"url\": \"http://h/4\", \"id_part\": \"4\", \"class_text\": \"postponed\"},"
	        " {\"url\": \"http://h/5\", \"id_part\": \"5\", \"class_text\": null},"
	        " {\"url\": \"http://h/6\", \"id_part\": \"6\", \"class_text\": \"Upcoming\"}]",
	        "[{\"id\": \"lg-1\", \"url\": \"http://h/1\", \"class\": \"live\"},"
	        " {\"id\": \"lg-2\", \"url\": \"http://h/2\", \"class\": \"live\"},"
	        " {\"id\": \"lg-3\", \"url\": \"http://h/3\", \"class\": \"completed\"},"
	        " {\"id\": \"lg-4\", \"url\": \"http://h/4\", \"class\": \"imminent\"},"
	        " {\"id\": \"lg-5\", \"url\": \"http://h/5\", \"class\": \"imminent\"},"
	        " {\"id\": \"lg-6\", \"url\": \"http://h/6\", \"class\": \"imminent\"}]",
	        NULL);
	ak_adapter("generic")->free_state(st);
	/* the same from a relative selector's text */
	st = listing("generic",
	             "{\"selector\": \"li\", \"class\": {\"selector\": \".st\", \"completed\":"
	             " [\"finished\"]}}",
	             "live");
	check_discover("generic", st, "lg",
	               "[{\"url\": \"http://h/1\", \"id_part\": \"1\", \"class_text\": "
	               "\"\\n  Finished \"}]",
	               "[{\"id\": \"lg-1\", \"url\": \"http://h/1\", \"class\": \"completed\"}]",
	               NULL);
	ak_adapter("generic")->free_state(st);
}

static void test_adapter_links__not_pages_skipped_and_bad_values(void **state)
{
	void *st = listing("generic", "{\"selector\": \"a\"}", NULL);
	char longurl[2100], raw[2400];

	memset(longurl, 'a', sizeof longurl);
	memcpy(longurl, "http://h/", 9);
	longurl[2048] = '\0';
	snprintf(raw, sizeof raw,
	         "[{\"url\": \"mailto:x@h\", \"id_part\": \"1\", \"class_text\": null},"
	         " {\"url\": \"javascript:void(0)\", \"id_part\": \"2\", \"class_text\": null},"
	         " {\"url\": \"%s\", \"id_part\": \"3\", \"class_text\": null},"
	         " {\"url\": \"https://h/ok\", \"id_part\": \"4\", \"class_text\": null}]",
	         longurl);
	check_discover("generic", st, "p", raw, "[{\"id\": \"p-4\", \"url\": \"https://h/ok\"}]",
	               NULL);
	check_discover("generic", st, "p", "[]", "[]", NULL);
	/* the page's own errors, and values our expression never returns */
	check_discover("generic", st, "p",
	               "{\"error\": \"links.id: invalid regex: Invalid regular expression: "
	               "/(/: Unterminated group\"}",
	               NULL, "links.id: invalid regex: Invalid regular expression");
	check_discover("generic", st, "p", "{\"x\": 1}", NULL,
	               "expected an array of at most 100000 {url, id_part, class_text} from "
	               "the listing, got {\"x\":1}");
	check_discover("generic", st, "p", "[{\"url\": 5}]", NULL,
	               "listing[0]: expected an object {url, id_part, class_text}, got "
	               "{\"url\":5}");
	check_discover("generic", st, "p", "[7]", NULL, "listing[0]: expected an object");
	ak_adapter("generic")->free_state(st);
}

static void test_adapter_links__children_valid_targets(void **state)
{
	/* every child id passes the targets file's own rule */
	void *st = listing("generic", "{\"selector\": \"a\", \"id\": \"x=(.*)\"}", NULL);
	const char *parts[] = { "-lead", ".dot", "a\\\\b", "ü", "x y z", "___" };
	const adapter_t *a = ak_adapter("generic");

	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
		char raw[256], why[256];
		json_t *r, *got;
		snprintf(
		        raw, sizeof raw,
		        "[{\"url\": \"http://h/?x=%zu\", \"id_part\": \"%s\", \"class_text\": null}]",
		        i, parts[i]);
		r = ak_parse(raw);
		got = a->discover(st, r, "p", why, sizeof why);
		assert_non_null(got);
		assert_true(targets_id_valid(
		        json_string_value(json_object_get(json_array_get(got, 0), "id"))));
		json_decref(got);
		json_decref(r);
	}
	a->free_state(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adapter_links__rule_errors_all_listed),
		cmocka_unit_test(test_adapter_links__discover_needs_links),
		cmocka_unit_test(test_adapter_links__rule_embedded_as_json),
		cmocka_unit_test(test_adapter_links__ids_from_capture_sanitised_and_unique),
		cmocka_unit_test(test_adapter_links__ids_cut_to_fit),
		cmocka_unit_test(test_adapter_links__hash_when_no_capture),
		cmocka_unit_test(test_adapter_links__class_from_text),
		cmocka_unit_test(test_adapter_links__not_pages_skipped_and_bad_values),
		cmocka_unit_test(test_adapter_links__children_valid_targets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
