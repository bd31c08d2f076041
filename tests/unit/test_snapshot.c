/*
 * Unit tests for snapshots and deltas (adapters/snapshot.c): the document's shape, the
 * diff of nested objects and arrays, type changes, JSON pointer escaping, and that equal
 * data give no delta.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/snapshot.h"
#include "tests/support/adaptkit.h"

static json_t *snap(uint64_t seq, const char *data)
{
	json_t *s = snapshot_new("m1", "generic", "http://x/", seq, 1795443452123LL, 412,
	                         SCHED_LIVE, ak_parse(data));
	assert_non_null(s);
	return s;
}

static void test_snapshot__document_shape(void **state)
{
	json_t *s = snap(12, "{\"score\": 3}");

	ak_assert_json(s, "{\"target\": \"m1\", \"adapter\": \"generic\", \"url\": \"http://x/\", "
	                  "\"seq\": 12, \"scraped_at\": \"2026-11-23T14:17:32.123Z\", "
	                  "\"duration_ms\": 412, \"class\": \"live\", \"data\": {\"score\": 3}}");
	json_decref(s);
}

static void test_snapshot__format_time(void **state)
{
	char t[32];

	snapshot_format_time(0, t);
	assert_string_equal(t, "1970-01-01T00:00:00.000Z");
	snapshot_format_time(1795443452005LL, t);
	assert_string_equal(t, "2026-11-23T14:17:32.005Z");
	snapshot_format_time(-1, t);
	assert_string_equal(t, "1969-12-31T23:59:59.999Z");
}

static void test_snapshot__first_snapshot_adds_every_key(void **state)
{
	json_t *s = snap(1, "{\"a\": 1, \"b\": {\"c\": [1, 2]}}"), *d = NULL;

	assert_int_equal(snapshot_delta(NULL, s, &d), 0);
	assert_non_null(d);
	ak_assert_json(d, "{\"target\": \"m1\", \"seq\": 1, \"prev_seq\": 0, "
	                  "\"scraped_at\": \"2026-11-23T14:17:32.123Z\", "
	                  "\"added\": [{\"path\": \"/a\", \"value\": 1}, "
	                  "{\"path\": \"/b\", \"value\": {\"c\": [1, 2]}}], "
	                  "\"changed\": [], \"removed\": []}");
	json_decref(d);
	json_decref(s);
}

static void test_snapshot__equal_data_no_delta(void **state)
{
	json_t *a = snap(1, "{\"a\": 1, \"b\": {\"c\": [1, {\"d\": null}]}}");
	json_t *b = snap(2, "{\"b\": {\"c\": [1, {\"d\": null}]}, \"a\": 1}");
	json_t *d = (json_t *)&d; /* must be overwritten */

	assert_int_equal(snapshot_delta(a, b, &d), 0);
	assert_null(d);
	json_decref(a);
	json_decref(b);
}

static void test_snapshot__nested_objects(void **state)
{
	json_t *a = snap(11, "{\"score\": {\"home\": 1, \"away\": 2}, \"note\": \"rain\", "
	                     "\"overs\": \"12.3\"}");
	json_t *b = snap(12, "{\"score\": {\"home\": 1, \"away\": 3, \"extra\": {\"x\": true}}, "
	                     "\"overs\": \"12.4\"}");
	json_t *d = NULL;

	assert_int_equal(snapshot_delta(a, b, &d), 0);
	assert_non_null(d);
	ak_assert_json(d, "{\"target\": \"m1\", \"seq\": 12, \"prev_seq\": 11, "
	                  "\"scraped_at\": \"2026-11-23T14:17:32.123Z\", "
	                  "\"added\": [{\"path\": \"/score/extra\", \"value\": {\"x\": true}}], "
	                  "\"changed\": [{\"path\": \"/score/away\", \"from\": 2, \"to\": 3}, "
	                  "{\"path\": \"/overs\", \"from\": \"12.3\", \"to\": \"12.4\"}], "
	                  "\"removed\": [{\"path\": \"/note\", \"value\": \"rain\"}]}");
	json_decref(d);
	json_decref(a);
	json_decref(b);
}

static void diff(const char *from, const char *to, const char *added, const char *changed,
                 const char *removed)
{
	json_t *f = ak_parse(from), *t = ak_parse(to);
	json_t *a = json_array(), *c = json_array(), *r = json_array();

	assert_int_equal(snapshot_diff(f, t, a, c, r), 0);
	ak_assert_json(a, added);
	ak_assert_json(c, changed);
	ak_assert_json(r, removed);
	json_decref(f);
	json_decref(t);
	json_decref(a);
	json_decref(c);
	json_decref(r);
}

static void test_snapshot__arrays_grow_and_shrink(void **state)
{
	diff("{\"x\": [1, 2]}", "{\"x\": [1, 5, 7, 8]}",
	     "[{\"path\": \"/x/2\", \"value\": 7}, {\"path\": \"/x/3\", \"value\": 8}]",
	     "[{\"path\": \"/x/1\", \"from\": 2, \"to\": 5}]", "[]");
	diff("{\"x\": [1, 2, 3]}", "{\"x\": [1]}", "[]", "[]",
	     "[{\"path\": \"/x/1\", \"value\": 2}, {\"path\": \"/x/2\", \"value\": 3}]");
	diff("{\"x\": [{\"a\": 1}]}", "{\"x\": [{\"a\": 2}]}", "[]",
	     "[{\"path\": \"/x/0/a\", \"from\": 1, \"to\": 2}]", "[]");
	diff("[1]", "[1, [2]]", "[{\"path\": \"/1\", \"value\": [2]}]", "[]", "[]");
}

static void test_snapshot__type_change_is_one_change(void **state)
{
	diff("{\"x\": {\"a\": 1}}", "{\"x\": [1]}", "[]",
	     "[{\"path\": \"/x\", \"from\": {\"a\": 1}, \"to\": [1]}]", "[]");
	diff("{\"x\": 1}", "{\"x\": 1.0}", "[]", "[{\"path\": \"/x\", \"from\": 1, \"to\": 1.0}]",
	     "[]");
	diff("{\"x\": \"1\"}", "{\"x\": null}", "[]",
	     "[{\"path\": \"/x\", \"from\": \"1\", \"to\": null}]", "[]");
	diff("{\"x\": true}", "{\"x\": false}", "[]",
	     "[{\"path\": \"/x\", \"from\": true, \"to\": false}]", "[]");
	diff("{\"a\": 1}", "[1]", "[]", "[{\"path\": \"\", \"from\": {\"a\": 1}, \"to\": [1]}]",
	     "[]");
}

static void test_snapshot__pointer_escaping(void **state)
{
	diff("{\"a/b\": 1, \"m~n\": {\"~/\": 1}}", "{\"a/b\": 2, \"m~n\": {\"~/\": 3}, \"\": 0}",
	     "[{\"path\": \"/\", \"value\": 0}]",
	     "[{\"path\": \"/a~1b\", \"from\": 1, \"to\": 2}, "
	     "{\"path\": \"/m~0n/~0~1\", \"from\": 1, \"to\": 3}]",
	     "[]");
}

static void test_snapshot__bad_arguments(void **state)
{
	json_t *s = snap(1, "{}"), *other, *d = NULL, *notsnap = ak_parse("{\"seq\": 1}");

	assert_int_equal(snapshot_delta(NULL, notsnap, &d), -22);
	assert_int_equal(snapshot_delta(notsnap, s, &d), -22);
	assert_null(d);
	other = snapshot_new("m2", "generic", "http://x/", 2, 0, 0, SCHED_LIVE, ak_parse("{}"));
	assert_int_equal(snapshot_delta(s, other, &d), -22); /* different targets */
	/* data NULL: nothing to steal, no snapshot */
	assert_null(snapshot_new("m1", "g", "u", 1, 0, 0, SCHED_LIVE, NULL));
	json_decref(other);
	json_decref(notsnap);
	json_decref(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot__document_shape),
		cmocka_unit_test(test_snapshot__format_time),
		cmocka_unit_test(test_snapshot__first_snapshot_adds_every_key),
		cmocka_unit_test(test_snapshot__equal_data_no_delta),
		cmocka_unit_test(test_snapshot__nested_objects),
		cmocka_unit_test(test_snapshot__arrays_grow_and_shrink),
		cmocka_unit_test(test_snapshot__type_change_is_one_change),
		cmocka_unit_test(test_snapshot__pointer_escaping),
		cmocka_unit_test(test_snapshot__bad_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
