/*
 * Unit tests for cdp_json: the writer's text is byte for byte json_dumps(JSON_COMPACT)'s,
 * and the fast reader either builds exactly jansson's tree (json_loadb with
 * JSON_REJECT_DUPLICATES) or hands the text back (NULL), never accepting what jansson
 * rejects: checked on chosen inputs and on every truncation and one-byte change of
 * CDP-like messages.
 */
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

/* A byte to escape at every offset of a long string: the 8-byte scan and its tail. */
static void test_cdp_json__write_escape_at_every_offset(void **state)
{
	static const char *const specials[] = { "\"", "\\", "\n", "\x1f", "\x7f", "\xc3\xa9", "/" };
	char s[48];

	for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
		size_t sl = strlen(specials[k]);
		for (size_t pos = 0; pos + sl <= 41; pos++) {
			json_t *v;
			memset(s, 'a', 41);
			memcpy(s + pos, specials[k], sl);
			v = json_stringn(s, 41);
			assert_non_null(v);
			assert_writes_as_jansson(v);
			json_decref(v);
		}
	}
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

/* ---- reading ---- */

/*
 * The reader's one rule: a non-NULL result is exactly jansson's tree. Returns whether the
 * fast path took the text (1) or handed it back (0).
 */
static int check_parse(const char *data, size_t len)
{
	json_t *fast = cdp_json_parse(data, len);
	json_t *ref;
	json_error_t err;

	if (!fast)
		return 0;
	ref = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
	if (!ref)
		fail_msg("the fast path took what jansson rejects (%s): %.*s", err.text, (int)len,
		         data);
	if (!json_equal(fast, ref))
		fail_msg("the fast path built another tree for: %.*s", (int)len, data);
	json_decref(ref);
	json_decref(fast);
	return 1;
}

static const char *const good[] = {
	"{\"id\":12,\"result\":{\"result\":{\"type\":\"number\",\"value\":1,\"description\":\"1\"}},"
	"\"sessionId\":\"6C2E0F8D1A2B3C4D5E6F708192A3B4C5\"}",
	"{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"F1\",\"loaderId\":\"L1\","
	"\"name\":\"load\",\"timestamp\":12345.678901},\"sessionId\":\"S\"}",
	"{\"method\":\"Network.responseReceived\",\"params\":{\"response\":{\"status\":200,"
	"\"headers\":{\"Content-Type\":\"text/html; charset=utf-8\"},\"url\":\"http://x/\\u00e9\","
	"\"timing\":{\"a\":-1,\"b\":0.25,\"c\":1e3,\"d\":2E-2,\"e\":-0}}}}",
	" \t\r\n{ \"a\" : [ 1 , 2 , [ ] , { } , \"x\" , true , false , null ] } \n",
	"{\"s\":\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\u20ac \\ud83d\\ude00\"}",
	"{\"s\":\"raw caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \x7f\"}",
	"{\"\\u00e9\\n\":{\"\\u00e9\\t\":\"\\u00e8\"}}", /* escaped keys, nested */
	"{\"\":\"\",\"n\":[-9223372036854775808,9223372036854775807,0,-0.0,1.5e308]}",
	"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":[[[[[[1]]]]]]}}}}}",
};

static void test_cdp_json__parse_matches_jansson(void **state)
{
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (!check_parse(good[i], strlen(good[i])))
			fail_msg("the fast path handed back a plain message: %s", good[i]);
}

static void test_cdp_json__parse_hands_back(void **state)
{
	static const char *const back[] = {
		"", "   ", "[1]", "42", "\"s\"", "null", "{", "}", "{\"a\"}", "{\"a\":}",
		"{\"a\":1,}", "{\"a\":1 \"b\":2}", "{\"a\":[1,]}", "{\"a\":1}x", "{\"a\":1}{}",
		"{a:1}", "{'a':1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}",
		"{\"a\":-}", "{\"a\":+1}", "{\"a\":0x10}", "{\"a\":NaN}", "{\"a\":Infinity}",
		"{\"a\":tru}", "{\"a\":nul}", "{\"a\":truex}",
		"{\"a\":9223372036854775808}", "{\"a\":-9223372036854775809}",
		"{\"a\":99999999999999999999999}", "{\"a\":1e999}", "{\"a\":-1e999}",
		"{\"a\":1,\"a\":2}",            /* duplicate key */
		"{\"a\":\"\\u0000\"}",          /* NUL */
		"{\"a\":\"\\ud800\"}",          /* lone surrogates */
		"{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}", "{\"a\":\"\\ud800x\"}",
		"{\"a\":\"\\x41\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12g4\"}", "{\"a\":\"\\",
		"{\"a\":\"tab\there\"}",        /* raw control byte */
		"{\"a\":\"\xc3\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xff\"}", "{\"a\":\"\xe2\x82\"}",
		"{\"a\":\"unterminated",
	};
	char deep[200];
	size_t n = 0;

	for (size_t i = 0; i < sizeof back / sizeof back[0]; i++) {
		json_t *v = cdp_json_parse(back[i], strlen(back[i]));
		if (v)
			fail_msg("the fast path took: %s", back[i]);
	}
	/* a NUL byte inside the length */
	assert_null(cdp_json_parse("{\"a\":1}\0", 8));
	assert_null(cdp_json_parse("{\"a\":\"x\0y\"}", 11));
	/* deeper than CDP_JSON_MAX_DEPTH: handed back, jansson reads it */
	n += (size_t)snprintf(deep, sizeof deep, "{\"a\":");
	for (int i = 0; i < CDP_JSON_MAX_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < CDP_JSON_MAX_DEPTH; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	assert_null(cdp_json_parse(deep, n));
	{
		json_t *v = json_loadb(deep, n, JSON_REJECT_DUPLICATES, NULL);
		assert_non_null(v); /* well-formed: jansson reads it */
		json_decref(v);
	}
}

/* Every prefix and every one-byte change of each good message keeps the rule. */
static void test_cdp_json__parse_mutations_keep_the_rule(void **state)
{
	static const char subst[] = { '"', '\\', '{', '}', '[', ']', ',', ':', '0', '-', 'e',
		                          '.', ' ', 'u', '\0', '\x01', '\x80', '\xc3', '\xff' };
	char buf[512];
	int taken = 0;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		size_t len = strlen(good[i]);
		assert_true(len < sizeof buf);
		for (size_t cut = 0; cut < len; cut++)
			check_parse(good[i], cut);
		for (size_t pos = 0; pos < len; pos++) {
			for (size_t k = 0; k < sizeof subst; k++) {
				memcpy(buf, good[i], len);
				buf[pos] = subst[k];
				taken += check_parse(buf, len);
			}
		}
	}
	/* most single changes inside strings still parse: the fast path was exercised */
	assert_true(taken > 1000);
}

/* The UTF-8 check agrees with jansson's (json_stringn) on every kind of sequence. */
static void test_cdp_json__utf8_valid_as_jansson(void **state)
{
	static const char *const texts[] = {
		"", "plain ascii, longer than eight bytes", "caf\xc3\xa9", "\xe2\x82\xac and more text",
		"\xf0\x9f\x98\x80", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xff", "0123456789\xe2\x82", "01234567\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
		"\xe0\x9f\xbf", "0123456\xc3\xa9xyzxyzxyz",
	};

	for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
		json_t *j = json_stringn(texts[i], strlen(texts[i]));
		int want = j != NULL;
		json_decref(j);
		if (cdp_json_utf8_valid(texts[i], strlen(texts[i])) != want)
			fail_msg("text %zu: jansson says %s", i, want ? "valid" : "invalid");
	}
}

/* ---- peeking ---- */

static int peek(const char *text, const char *key, char *out, size_t outlen)
{
	const char *v = NULL;
	size_t n = 0;
	int rc = cdp_json_peek_param(text, strlen(text), key, &v, &n);

	out[0] = '\0';
	if (rc == 1) {
		assert_true(n < outlen);
		memcpy(out, v, n);
		out[n] = '\0';
	}
	return rc;
}

static void test_cdp_json__peek_param(void **state)
{
	char v[64];

	assert_int_equal(peek("{\"method\":\"Page.lifecycleEvent\",\"params\":{\"frameId\":\"F\","
	                      "\"loaderId\":\"L\",\"name\":\"init\",\"timestamp\":1.5},"
	                      "\"sessionId\":\"S\"}", "name", v, sizeof v), 1);
	assert_string_equal(v, "init");
	/* values before it of every kind are skipped, strings with brackets and escapes too */
	assert_int_equal(peek(" { \"a\" : [1, {\"name\":\"no\"}, \"]}\\\"\"] , \"params\" : { "
	                      "\"x\":{\"name\":\"nested\"}, \"y\":-1e3, \"z\":null, \"name\" : "
	                      "\"load\" } }", "name", v, sizeof v), 1);
	assert_string_equal(v, "load");
	assert_int_equal(peek("{\"params\":{\"name\":\"\"}}", "name", v, sizeof v), 1);
	assert_string_equal(v, "");
	/* absent, or not a string: no listener by value can want it */
	assert_int_equal(peek("{\"method\":\"E\"}", "name", v, sizeof v), 0);
	assert_int_equal(peek("{\"params\":{}}", "name", v, sizeof v), 0);
	assert_int_equal(peek("{\"params\":{\"names\":\"load\",\"nam\":\"load\"}}", "name", v,
	                      sizeof v), 0);
	assert_int_equal(peek("{\"params\":{\"name\":5}}", "name", v, sizeof v), 0);
	/* cannot tell: parse in full */
	assert_int_equal(peek("{\"params\":{\"name\":\"lo\\u0061d\"}}", "name", v, sizeof v), -1);
	assert_int_equal(peek("{\"params\":{\"n\\u0061me\":\"load\"}}", "name", v, sizeof v), -1);
	assert_int_equal(peek("{\"params\":[]}", "name", v, sizeof v), -1);
	assert_int_equal(peek("[{\"params\":{\"name\":\"load\"}}]", "name", v, sizeof v), -1);
	assert_int_equal(peek("", "name", v, sizeof v), -1);
	assert_int_equal(peek("{\"params\":{\"name\":\"lo", "name", v, sizeof v), -1);
	assert_int_equal(peek("{\"params\":{\"a\":\"x", "name", v, sizeof v), -1);
	assert_int_equal(peek("{\"params\":", "name", v, sizeof v), -1);
	assert_int_equal(peek("{\"params\":{\"a\" 1}}", "name", v, sizeof v), -1);
}

/* Every prefix of a message, and every one-byte change, is read within its length. */
static void test_cdp_json__peek_stays_in_bounds(void **state)
{
	const char *msg = "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"a\":[{\"b\":\"]\"}],"
	                  "\"name\":\"load\"},\"sessionId\":\"S\"}";
	size_t len = strlen(msg);
	static const char subst[] = { '"', '\\', '{', '}', '[', ']', ',', ':', ' ' };

	for (size_t cut = 0; cut <= len; cut++) {
		/* a heap copy of exactly cut bytes, so ASan sees any read past it */
		char *buf = malloc(cut ? cut : 1);
		const char *v;
		size_t n;
		assert_non_null(buf);
		memcpy(buf, msg, cut);
		cdp_json_peek_param(buf, cut, "name", &v, &n);
		for (size_t pos = 0; pos < cut; pos++) {
			for (size_t k = 0; k < sizeof subst; k++) {
				char keep = buf[pos];
				buf[pos] = subst[k];
				if (cdp_json_peek_param(buf, cut, "name", &v, &n) == 1)
					assert_true(v >= buf && v + n <= buf + cut);
				buf[pos] = keep;
			}
		}
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cdp_json__write_matches_jansson),
		cmocka_unit_test(test_cdp_json__write_every_control_byte_and_nul),
		cmocka_unit_test(test_cdp_json__write_escape_at_every_offset),
		cmocka_unit_test(test_cdp_json__write_errors),
		cmocka_unit_test(test_cdp_json__parse_matches_jansson),
		cmocka_unit_test(test_cdp_json__parse_hands_back),
		cmocka_unit_test(test_cdp_json__parse_mutations_keep_the_rule),
		cmocka_unit_test(test_cdp_json__utf8_valid_as_jansson),
		cmocka_unit_test(test_cdp_json__peek_param),
		cmocka_unit_test(test_cdp_json__peek_stays_in_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
