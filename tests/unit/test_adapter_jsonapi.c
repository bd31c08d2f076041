/*
 * Unit tests for the jsonapi adapter (adapters/jsonapi.c): fields picked by JSON pointer
 * (RFC 6901, with ~0/~1 escapes and array indexes), type checks and conversions, missing
 * required fields, parameter errors and classify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/adapter.h"
#include "adapters/adapter_util.h"
#include "tests/support/adaptkit.h"

static const adapter_t *ad(void)
{
	return ak_adapter("jsonapi");
}

static void *good(const char *target)
{
	return ak_good(ad(), target, "w");
}

static const char *body =
        "{\"match\": {\"teams\": [\"A\", \"B\"], \"score\": [3, \"4\"], \"overs\": \"12.4\","
        " \"live\": true, \"rate\": 7.5, \"whole\": 10.0, \"none\": null},"
        " \"a/b\": {\"m~n\": 1}, \"\": {\"\": \"empty\"}, \"0\": \"zero\","
        " \"list\": [{\"x\": 1}, {\"x\": 2}]}";

static void norm(const char *target, const char *data, const char *why_part)
{
	ak_norm(ad(), good(target), body, data, why_part);
}

static void test_adapter_jsonapi__registered(void **state)
{
	assert_false(ad()->needs_browser);
	assert_null(ad()->extract_js);
	assert_null(ad()->wait_for);
	assert_non_null(ad()->normalise);
}

static void test_adapter_jsonapi__pointers(void **state)
{
	norm("{\"fields\": {"
	     " \"home\": {\"pointer\": \"/match/teams/0\"},"
	     " \"away\": {\"pointer\": \"/match/teams/1\"},"
	     " \"esc\": {\"pointer\": \"/a~1b/m~0n\"},"
	     " \"empty\": {\"pointer\": \"//\"},"
	     " \"zero\": {\"pointer\": \"/0\"},"
	     " \"x2\": {\"pointer\": \"/list/1/x\"},"
	     " \"whole\": {\"pointer\": \"/list/0\"}}}",
	     "{\"home\": \"A\", \"away\": \"B\", \"esc\": 1, \"empty\": \"empty\","
	     " \"zero\": \"zero\", \"x2\": 2, \"whole\": {\"x\": 1}}",
	     NULL);
	/* "" is the whole document */
	{
		char want[1024];
		snprintf(want, sizeof want, "{\"all\": %s}", body);
		norm("{\"fields\": {\"all\": {\"pointer\": \"\"}}}", want, NULL);
	}
}

static void test_adapter_jsonapi__pointer_resolution(void **state)
{
	json_t *doc = ak_parse(body);
	const json_t *v = NULL;
	char why[256];

	assert_int_equal(adapter_util_pointer_get(doc, "", &v, why, sizeof why), 0);
	assert_ptr_equal(v, doc);
	assert_int_equal(adapter_util_pointer_get(doc, "/list/01", &v, why, sizeof why), -2);
	ak_assert_has(why, "\"01\" is not an array index");
	assert_int_equal(adapter_util_pointer_get(doc, "/list/-", &v, why, sizeof why), -2);
	assert_int_equal(adapter_util_pointer_get(doc, "/list/2", &v, why, sizeof why), -2);
	ak_assert_has(why, "index 2 is past the end of the array at \"/list\" (2 elements)");
	assert_int_equal(adapter_util_pointer_get(doc, "/match/nope", &v, why, sizeof why), -2);
	ak_assert_has(why, "no key \"nope\" in the object at \"/match\"");
	assert_int_equal(adapter_util_pointer_get(doc, "/0/x", &v, why, sizeof why), -2);
	ak_assert_has(why, "\"/0\" is a string, not an object or array");
	assert_int_equal(adapter_util_pointer_get(doc, "a", &v, why, sizeof why), -22);
	assert_int_equal(adapter_util_pointer_get(doc, "/a~2", &v, why, sizeof why), -22);
	assert_int_equal(adapter_util_pointer_get(doc, "/a~", &v, why, sizeof why), -22);
	/* "~01" is "~1" unescaped once, not "/" */
	{
		json_t *o = ak_parse("{\"~1\": 5, \"/\": 6}");
		assert_int_equal(adapter_util_pointer_get(o, "/~01", &v, why, sizeof why), 0);
		assert_int_equal(json_integer_value(v), 5);
		assert_int_equal(adapter_util_pointer_get(o, "/~1", &v, why, sizeof why), 0);
		assert_int_equal(json_integer_value(v), 6);
		json_decref(o);
	}
	json_decref(doc);
}

static void test_adapter_jsonapi__types(void **state)
{
	norm("{\"fields\": {"
	     " \"h\": {\"pointer\": \"/match/score/0\", \"type\": \"int\"},"
	     " \"a\": {\"pointer\": \"/match/score/1\", \"type\": \"int\"},"
	     " \"w\": {\"pointer\": \"/match/whole\", \"type\": \"int\"},"
	     " \"o\": {\"pointer\": \"/match/overs\", \"type\": \"float\"},"
	     " \"r\": {\"pointer\": \"/match/rate\", \"type\": \"float\"},"
	     " \"i\": {\"pointer\": \"/match/score/0\", \"type\": \"float\"},"
	     " \"l\": {\"pointer\": \"/match/live\", \"type\": \"bool\"},"
	     " \"s\": {\"pointer\": \"/match/overs\", \"type\": \"string\"},"
	     " \"n\": {\"pointer\": \"/match/none\"},"
	     " \"t\": {\"pointer\": \"/match/teams\", \"type\": \"any\"}}}",
	     "{\"h\": 3, \"a\": 4, \"w\": 10, \"o\": 12.4, \"r\": 7.5, \"i\": 3.0, \"l\": true,"
	     " \"s\": \"12.4\", \"n\": null, \"t\": [\"A\", \"B\"]}",
	     NULL);
	norm("{\"fields\": {\"x\": {\"pointer\": \"/match/rate\", \"type\": \"int\"}}}", NULL,
	     "field \"x\": pointer \"/match/rate\": expected int, got 7.5");
	norm("{\"fields\": {\"x\": {\"pointer\": \"/match/teams\", \"type\": \"string\"}}}", NULL,
	     "field \"x\": pointer \"/match/teams\": expected string, got [\"A\",\"B\"]");
	norm("{\"fields\": {\"x\": {\"pointer\": \"/match/overs\", \"type\": \"bool\"}}}", NULL,
	     "expected bool, got \"12.4\"");
	norm("{\"fields\": {\"x\": {\"pointer\": \"/match/teams/0\", \"type\": \"float\"}}}", NULL,
	     "expected float, got \"A\"");
	norm("{\"fields\": {\"x\": {\"pointer\": \"/match/none\", \"type\": \"int\"}}}", NULL,
	     "field \"x\": pointer \"/match/none\": expected int, got null");
}

static void test_adapter_jsonapi__missing_required(void **state)
{
	norm("{\"fields\": {\"x\": {\"pointer\": \"/match/clock\"}}}", NULL,
	     "field \"x\": pointer \"/match/clock\" found nothing: no key \"clock\" in the object "
	     "at \"/match\"");
	norm("{\"fields\": {\"x\": {\"pointer\": \"/match/teams/5\"}}}", NULL,
	     "index 5 is past the end");
	norm("{\"fields\": {\"x\": {\"pointer\": \"/match/clock\", \"required\": false},"
	     " \"y\": {\"pointer\": \"/match/none\", \"type\": \"int\", \"required\": false}}}",
	     "{\"x\": null, \"y\": null}", NULL);
}

static void test_adapter_jsonapi__parse_errors(void **state)
{
	json_t *t = ak_parse("{\"fields\": {"
	                     " \"a\": {\"pointer\": \"match/x\"},"
	                     " \"b\": {\"pointer\": \"/x~2\", \"type\": \"number\"},"
	                     " \"c\": {\"pointr\": \"/c\", \"required\": 1},"
	                     " \"d\": 5},"
	                     " \"classify\": {\"field\": \"zz\", \"live\": [1]}}");
	errlist_t errs;
	void *st = NULL;
	const char *e;

	errlist_init(&errs);
	assert_int_equal(ad()->parse(t, "targets[1] \"api\"", &st, &errs), -22);
	assert_null(st);
	e = errlist_text(&errs);
	ak_assert_has(e, "targets[1] \"api\": \"fields.a.pointer\": expected a JSON pointer (RFC "
	                 "6901");
	ak_assert_has(e, "got \"match/x\"");
	ak_assert_has(e, "got \"/x~2\"");
	ak_assert_has(e, "\"fields.b.type\": expected \"any\", \"string\", \"int\", \"float\" or "
	                 "\"bool\", got \"number\"");
	ak_assert_has(e, "\"fields.c\": unknown key \"pointr\" (did you mean \"pointer\"?)");
	ak_assert_has(e, "\"fields.c.pointer\": required");
	ak_assert_has(e, "\"fields.c.required\": expected true or false, got 1");
	ak_assert_has(e, "\"fields.d\": expected an object");
	ak_assert_has(e, "\"classify.field\": \"zz\" is not one of the fields");
	assert_int_equal(errs.count, 8);
	errlist_release(&errs);
	json_decref(t);
}

static void test_adapter_jsonapi__classify(void **state)
{
	void *st = good("{\"fields\": {\"s\": {\"pointer\": \"/status\"}},"
	                " \"classify\": {\"field\": \"s\", \"live\": [\"in_play\"],"
	                " \"completed\": [\"finished\", 3]}}");
	json_t *d = ak_parse("{\"s\": \"finished\"}");

	assert_int_equal(ad()->classify(st, d), SCHED_COMPLETED);
	json_decref(d);
	d = ak_parse("{\"s\": \"in_play\"}");
	assert_int_equal(ad()->classify(st, d), SCHED_LIVE);
	json_decref(d);
	d = ak_parse("{\"s\": 3.0}");
	assert_int_equal(ad()->classify(st, d), SCHED_COMPLETED);
	json_decref(d);
	d = ak_parse("{\"s\": \"scheduled\"}");
	assert_int_equal(ad()->classify(st, d), -1);
	json_decref(d);
	ad()->free_state(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adapter_jsonapi__registered),
		cmocka_unit_test(test_adapter_jsonapi__pointers),
		cmocka_unit_test(test_adapter_jsonapi__pointer_resolution),
		cmocka_unit_test(test_adapter_jsonapi__types),
		cmocka_unit_test(test_adapter_jsonapi__missing_required),
		cmocka_unit_test(test_adapter_jsonapi__parse_errors),
		cmocka_unit_test(test_adapter_jsonapi__classify),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
