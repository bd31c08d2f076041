/* Unit tests for cdp_json: the writer's text is byte for byte json_dumps(JSON_COMPACT)'s. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cdp/cdp_json.h"

/* ---- writing ---- */

static void assert_writes_as_jansson(json_t *v)
{
	growbuf_t gb;
	char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(want);
	growbuf_init(&gb, 1 << 20);
	assert_int_equal(cdp_json_write(&gb, v), 0);
	assert_non_null(gb.data);
	if (strcmp(gb.data, want) != 0)
		fail_msg("cdp_json_write wrote\n  %s\njansson writes\n  %s", gb.data, want);
	growbuf_release(&gb);
	free(want);
}

static void test_cdp_json__write_matches_jansson(void **state)
{
	static const char *const texts[] = {
		"{}",
		"[]",
		"{\"a\":1,\"b\":[1,2,{}],\"c\":{\"d\":null,\"e\":true,\"f\":false}}",
		"{\"z\":1,\"a\":2,\"m\":3}", /* insertion order, not sorted */
		"{\"s\":\"quote \\\" backslash \\\\ slash / tab \\t nl \\n cr \\r bs \\b ff \\f\"}",
		"{\"u\":\"caf\\u00e9 \\u20ac \\ud83d\\ude00 \\u007f \\u0001\\u001f\"}",
		"{\"k\\\"ey\\n\":\"v\"}",
		"[0,-1,9223372036854775807,-9223372036854775808,123456789012]",
		"[0.5,-0.5,1.0,100.0,1e300,-1e-300,1.5e20,3.14159,2.5e-7,0.1,1e22,-0.0]",
		"{\"expression\":\"document.querySelector('#out').textContent\","
		"\"returnByValue\":true,\"awaitPromise\":true}",
	};

	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		json_error_t err;
		json_t *v = json_loads(texts[i], 0, &err);
		if (!v)
			fail_msg("test input %zu: %s", i, err.text);
		assert_writes_as_jansson(v);
		json_decref(v);
	}
}

static void test_cdp_json__write_every_control_byte_and_nul(void **state)
{
	char s[40];
	json_t *v;

	for (int i = 0; i < 32; i++)
		s[i] = (char)i; /* NUL included: a string of known length */
	memcpy(s + 32, "\"\\/\x7f", 4);
	v = json_stringn(s, 36);
	assert_non_null(v);
	assert_writes_as_jansson(v);
	json_decref(v);
}

static void test_cdp_json__write_errors(void **state)
{
	growbuf_t gb;
	json_t *v = json_pack("{s:s}", "a", "0123456789");
	json_t *deep = json_array(), *cur = deep;

	/* over the cap: -EMSGSIZE */
	growbuf_init(&gb, 10);
	assert_int_equal(cdp_json_write(&gb, v), -EMSGSIZE);
	growbuf_release(&gb);
	json_decref(v);
	/* nested deeper than any CDP message: -EINVAL, not a stack overflow */
	for (int i = 0; i < 3000; i++) {
		json_t *next = json_array();
		json_array_append_new(cur, next);
		cur = next;
	}
	growbuf_init(&gb, 1 << 20);
	assert_int_equal(cdp_json_write(&gb, deep), -EINVAL);
	assert_int_equal(cdp_json_write(&gb, NULL), -EINVAL);
	growbuf_release(&gb);
	json_decref(deep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cdp_json__write_matches_jansson),
		cmocka_unit_test(test_cdp_json__write_every_control_byte_and_nul),
		cmocka_unit_test(test_cdp_json__write_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
