/*
 * Unit tests for epmap (adapters/epmap.c): learning where a page's data sits in a JSON
 * endpoint's body (text read from the page matching the number it came from, the place
 * whose keys end like the field's winning over one in an array, ambiguity and absence
 * refused with the field named, data with nothing to look for and paths too long to use
 * refused), rebuilding the data from a later body with the page's
 * types, and naming the first difference of two data objects.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/epmap.h"

static json_t *js(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &err);

	if (!j)
		fail_msg("bad test JSON %s: %s", text, err.text);
	return j;
}

/* the body of /real/api/match/N: the minute's value is also an event's minute */
static const char *real_body =
        "{\"id\":3,\"home\":\"Lions\",\"away\":\"Eagles\",\"score\":{\"home\":2,\"away\":1},"
        "\"minute\":3,\"events\":[{\"minute\":1,\"type\":\"p\"},{\"minute\":2,\"type\":\"p\"},"
        "{\"minute\":3,\"type\":\"p\"}]}";

static void learn_ok(const char *data, const char *body, json_t **map)
{
	json_t *d = js(data), *b = js(body);
	char why[512];

	assert_int_equal(epmap_learn(d, b, map, why, sizeof why), 0);
	json_decref(d);
	json_decref(b);
}

static void test_epmap__learns_and_reads_back(void **state)
{
	json_t *map = NULL, *b, *data = NULL, *want;
	char why[512];

	(void)state;
	learn_ok("{\"home\":2,\"away\":\"1\",\"minute\":3,\"team\":\"Lions\"}", real_body, &map);
	/* the page read "1" as text: it still comes from the number, and goes back as text */
	b = js("{\"id\":3,\"home\":\"Lions\",\"away\":\"Eagles\",\"score\":{\"home\":4,"
	       "\"away\":7},\"minute\":80,\"events\":[]}");
	assert_int_equal(epmap_read(map, b, &data, why, sizeof why), 0);
	want = js("{\"home\":4,\"away\":\"7\",\"minute\":80,\"team\":\"Lions\"}");
	assert_true(json_equal(data, want));
	json_decref(want);
	json_decref(data);
	json_decref(b);
	json_decref(map);
}

static void test_epmap__nested_data_and_nulls(void **state)
{
	json_t *map = NULL, *f;
	size_t i;

	(void)state;
	learn_ok("{\"score\":{\"home\":2,\"away\":1},\"start\":null,\"ok\":true}",
	         "{\"m\":{\"score\":{\"away\":1,\"home\":2},\"start\":null,\"ok\":true,\"n\":2}}",
	         &map);
	json_array_foreach(json_object_get(map, "fields"), i, f)
	{
		const char *at = json_string_value(json_object_get(f, "at"));
		const char *from = json_string_value(json_object_get(f, "from"));
		if (strcmp(at, "/score/home") == 0)
			assert_string_equal(from, "/m/score/home"); /* not /m/n */
		if (strcmp(at, "/start") == 0)
			assert_string_equal(from, "/m/start");
	}
	json_decref(map);
}

static void test_epmap__absent_and_ambiguous_refused(void **state)
{
	json_t *d = js("{\"minute\":\"3'\"}"), *b = js(real_body), *map = NULL;
	char why[512];

	(void)state;
	assert_int_equal(epmap_learn(d, b, &map, why, sizeof why), -ENOENT);
	assert_null(map);
	assert_non_null(strstr(why, "field \"/minute\" (\"3'\") is in no place"));
	json_decref(d);
	json_decref(b);
	d = js("{\"x\":5}");
	b = js("{\"a\":5,\"b\":5}");
	assert_int_equal(epmap_learn(d, b, &map, why, sizeof why), -EEXIST);
	assert_non_null(strstr(why, "\"/a\" and \"/b\""));
	json_decref(d);
	json_decref(b);
	d = js("[1]");
	assert_int_equal(epmap_learn(d, d, &map, why, sizeof why), -EINVAL);
	json_decref(d);
}

/* Data with nothing to look for, and a body whose paths are too long to use (a key of
 * 600 KB over 20,000 leaves would have been 12 GB of copied paths), are refused. */
static void test_epmap__empty_data_and_long_paths_refused(void **state)
{
	json_t *d = js("{\"events\":[]}"), *b = js("{}"), *map = NULL, *big;
	char why[512], *key;

	(void)state;
	assert_int_equal(epmap_learn(d, b, &map, why, sizeof why), -EINVAL);
	assert_null(map);
	assert_non_null(strstr(why, "no value to look for"));
	json_decref(d);
	json_decref(b);
	key = malloc(600 * 1024 + 1);
	assert_non_null(key);
	memset(key, 'k', 600 * 1024);
	key[600 * 1024] = '\0';
	big = json_object();
	assert_int_equal(json_object_set_new(big, key, json_pack("[iii]", 0, 0, 0)), 0);
	d = js("{\"x\":0}");
	assert_int_equal(epmap_learn(d, big, &map, why, sizeof why), -E2BIG);
	assert_null(map);
	assert_non_null(strstr(why, "longer than 1023 bytes"));
	json_decref(d);
	json_decref(big);
	free(key);
}

static void test_epmap__read_errors_name_the_field(void **state)
{
	json_t *map = NULL, *b, *data = NULL;
	char why[512];

	(void)state;
	learn_ok("{\"home\":2}", real_body, &map);
	b = js("{\"score\":{\"away\":1}}");
	assert_int_equal(epmap_read(map, b, &data, why, sizeof why), -ENOENT);
	assert_non_null(strstr(why, "field \"/home\": the endpoint's body has no \"/score/home\""));
	json_decref(b);
	b = js("{\"score\":{\"home\":\"two\"}}");
	assert_int_equal(epmap_read(map, b, &data, why, sizeof why), -EINVAL);
	assert_non_null(strstr(why, "gave \"two\" at \"/score/home\", expected integer"));
	assert_null(data);
	json_decref(b);
	json_decref(map);
}

static void test_epmap__diff_names_the_first_field(void **state)
{
	json_t *a = js("{\"s\":{\"h\":1,\"a\":0},\"m\":9}"),
	       *b = js("{\"s\":{\"h\":2,\"a\":0},\"m\":9}");
	char out[256];

	(void)state;
	epmap_diff(a, b, out, sizeof out);
	assert_string_equal(out, "field \"/s/h\": 1 against 2");
	epmap_diff(a, a, out, sizeof out);
	assert_string_equal(out, "");
	json_decref(a);
	json_decref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epmap__learns_and_reads_back),
		cmocka_unit_test(test_epmap__nested_data_and_nulls),
		cmocka_unit_test(test_epmap__absent_and_ambiguous_refused),
		cmocka_unit_test(test_epmap__empty_data_and_long_paths_refused),
		cmocka_unit_test(test_epmap__read_errors_name_the_field),
		cmocka_unit_test(test_epmap__diff_names_the_first_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
