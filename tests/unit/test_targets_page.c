/*
 * Unit tests for a target's page settings and script_file (daemon/target_page.c): valid
 * values land in the spec (cookies without a domain get the target's url), every bad value
 * of every key gives its error and all are listed at once, browserless adapters refuse
 * them, and script_file is read relative to the targets file (or refused outside one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/targets.h"

static void assert_has(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("\"%s\" not found in:\n%s", needle, text);
}

/* One generic target with extra keys (JSON text without braces) parsed; the errors (if it
 * must fail) as text, in a static buffer. */
static const char *errors_of(const char *extra, unsigned *count)
{
	static char buf[ERRLIST_MAX];
	char text[8192];
	target_set_t set;
	errlist_t errs;

	snprintf(text, sizeof text,
	         "[{\"id\": \"p\", \"adapter\": \"generic\", \"url\": \"http://h/x\","
	         " \"fields\": {\"a\": {\"selector\": \"a\"}}, %s}]",
	         extra);
	errlist_init(&errs);
	assert_int_equal(targets_parse(text, strlen(text), &set, &errs), -22);
	snprintf(buf, sizeof buf, "%s", errlist_text(&errs));
	if (count)
		*count = errs.count;
	errlist_release(&errs);
	return buf;
}

static void test_targets_page__valid_settings(void **state)
{
	const char *text =
	        "[{\"id\": \"p\", \"adapter\": \"script\", \"url\": \"https://h/m/1\","
	        " \"script\": \"() => ({})\","
	        " \"actions\": [{\"click\": \"button.accept\", \"optional\": true, \"timeout_ms\": 2000},"
	        "   {\"wait_for\": \"#tabs\", \"state\": \"attached\"}, {\"click\": \"#tab-live\"},"
	        "   {\"wait_ms\": 0}, {\"wait_ms\": 60000}, {\"scroll\": \"bottom\"},"
	        "   {\"scroll\": \"#x\"}, {\"fill\": [\"#q\", \"\"]}, {\"press\": \"Enter\"},"
	        "   {\"press\": \"a\"}, {\"press\": \"é\"}],"
	        " \"wait_for_state\": \"attached\","
	        " \"headers\": {\"X-Token\": \"abc\", \"Accept-Language\": \"fr\"},"
	        " \"cookies\": [{\"name\": \"consent\", \"value\": \"yes\"},"
	        "   {\"name\": \"s\", \"value\": \"\", \"domain\": \".h\", \"path\": \"/\","
	        "    \"secure\": true, \"httpOnly\": false, \"expires\": 1999999999.5,"
	        "    \"sameSite\": \"Lax\"}],"
	        " \"user_agent\": \"Mozilla/5.0 test\", \"viewport\": \"390x844\","
	        " \"block_resources\": \"image,font\", \"timeout_seconds\": 20},"
	        " {\"id\": \"q\", \"adapter\": \"generic\", \"url\": \"http://h/\","
	        "  \"fields\": {\"a\": {\"selector\": \"a\"}}, \"block_resources\": \"none\"}]";
	target_set_t set;
	errlist_t errs;
	const target_spec_t *t;
	json_t *cookies;

	errlist_init(&errs);
	if (targets_parse(text, strlen(text), &set, &errs) != 0)
		fail_msg("%s", errlist_text(&errs));
	t = targets_find(&set, "p");
	assert_non_null(t);
	assert_true(json_is_array(t->actions));
	assert_int_equal(json_array_size(t->actions), 11);
	assert_ptr_equal(t->actions, json_object_get(t->json, "actions"));
	assert_true(t->wait_attached);
	assert_string_equal(t->headers_json, "{\"X-Token\":\"abc\",\"Accept-Language\":\"fr\"}");
	cookies = json_loads(t->cookies_json, 0, NULL);
	assert_non_null(cookies);
	assert_string_equal(json_string_value(json_object_get(json_array_get(cookies, 0), "url")),
	                    "https://h/m/1");
	assert_null(json_object_get(json_array_get(cookies, 1), "url"));
	assert_string_equal(
	        json_string_value(json_object_get(json_array_get(cookies, 1), "sameSite")), "Lax");
	json_decref(cookies);
	assert_string_equal(t->user_agent, "Mozilla/5.0 test");
	assert_int_equal(t->viewport_width, 390);
	assert_int_equal(t->viewport_height, 844);
	assert_string_equal(t->block_resources, "image,font");
	assert_int_equal(t->timeout_ms, 20000);

	t = targets_find(&set, "q");
	assert_null(t->actions);
	assert_false(t->wait_attached);
	assert_null(t->headers_json);
	assert_null(t->cookies_json);
	assert_null(t->user_agent);
	assert_int_equal(t->viewport_width, 0);
	assert_string_equal(t->block_resources, "none");
	targets_release(&set);
	errlist_release(&errs);
}

static void test_targets_page__every_bad_value_listed(void **state)
{
	unsigned n = 0;
	const char *e = errors_of(
	        "\"actions\": [{\"click\": \"\"}, {\"wait_ms\": 60001}, {\"wait_ms\": -1},"
	        " {\"wait_ms\": 1.5}, {\"press\": \"F13\"}, {\"press\": \"ab\"},"
	        " {\"fill\": \"#q\"}, {\"fill\": [\"#q\"]}, {\"fill\": [\"#q\", 5]},"
	        " {\"click\": \"a\", \"fill\": [\"#q\", \"x\"]}, {}, {\"optional\": true},"
	        " {\"click\": \"a\", \"timeout_ms\": 0}, {\"click\": \"a\", \"timeout_ms\": 600001},"
	        " {\"click\": \"a\", \"optional\": \"yes\"}, {\"click\": \"a\", \"state\": \"visible\"},"
	        " {\"wait_for\": \"a\", \"state\": \"hidden\"}, {\"clik\": \"a\"}, \"click\","
	        " {\"scroll\": 3}],"
	        " \"wait_for_state\": \"shown\","
	        " \"headers\": {\"Bad Name\": \"x\", \"X-A\": 5, \"X-B\": \"a\\r\\nb\"},"
	        " \"cookies\": [{\"value\": \"v\"}, {\"name\": \"n\"}, {\"name\": \"n\", \"value\": \"v\","
	        "   \"path\": \"x\", \"secure\": 1, \"httpOnly\": \"no\", \"expires\": \"never\","
	        "   \"sameSite\": \"strict\", \"domian\": \".h\"}, 5],"
	        " \"user_agent\": \"\", \"viewport\": \"0x800\", \"block_resources\": \"images\"",
	        &n);
	const char *w = "targets[0] \"p\": ";
	const char *want[] = {
		"\"actions[0].click\": expected a CSS selector, got \"\"",
		"\"actions[1].wait_ms\": expected an integer from 0 to 60000, got 60001",
		"\"actions[2].wait_ms\": expected an integer from 0 to 60000, got -1",
		"\"actions[3].wait_ms\": expected an integer from 0 to 60000, got 1.5",
		"\"actions[4].press\": expected a key: Enter, Tab, Escape, Backspace, Delete, "
		"ArrowUp, ArrowDown, ArrowLeft, ArrowRight, PageUp, PageDown, Home, End, Space or "
		"one printable character, got \"F13\"",
		"\"actions[5].press\": expected a key: ",
		"\"actions[6].fill\": expected [CSS selector, text] (text at most 65536 bytes), got "
		"\"#q\"",
		"\"actions[7].fill\": expected [CSS selector, text]",
		"\"actions[8].fill\": expected [CSS selector, text]",
		"\"actions[9]\": expected exactly one of \"click\", \"wait_for\", \"wait_ms\", "
		"\"scroll\", \"fill\", \"press\" (one per step), got \"click\" and \"fill\"",
		"\"actions[10]\": expected exactly one of \"click\", \"wait_for\", \"wait_ms\", "
		"\"scroll\", \"fill\", \"press\" (one per step), got none",
		"\"actions[11]\": expected exactly one of",
		"\"actions[12].timeout_ms\": expected an integer from 1 to 600000, got 0",
		"\"actions[13].timeout_ms\": expected an integer from 1 to 600000, got 600001",
		"\"actions[14].optional\": expected true or false, got \"yes\"",
		"\"actions[15].state\": only with \"wait_for\"",
		"\"actions[16].state\": expected \"visible\" or \"attached\", got \"hidden\"",
		"\"actions[17]\": unknown key \"clik\" (did you mean \"click\"?)",
		"\"actions[17]\": expected exactly one of \"click\", \"wait_for\", \"wait_ms\", "
		"\"scroll\", \"fill\", \"press\" (one per step), got none",
		"\"actions[18]\": expected an object such as {\"click\": CSS}, got \"click\"",
		"\"actions[19].scroll\": expected \"bottom\", \"top\" or a CSS selector, got 3",
		"\"wait_for_state\": expected \"visible\" or \"attached\", got \"shown\"",
		"\"headers\": expected header names of 1 to 256 letters, digits and "
		"!#$%&'*+-.^_`|~, got \"Bad Name\"",
		"\"headers.X-A\": expected a string of at most 8192 bytes without control "
		"characters, got 5",
		"\"headers.X-B\": expected a string of at most 8192 bytes without control "
		"characters, got \"a\\r\\nb\"",
		"\"cookies[0].name\": expected a non-empty string of at most 256 bytes (required), "
		"got nothing",
		"\"cookies[1].value\": expected a string of at most 4096 bytes (required), got "
		"nothing",
		"\"cookies[2].path\": expected a path starting with /, got \"x\"",
		"\"cookies[2].secure\": expected true or false, got 1",
		"\"cookies[2].httpOnly\": expected true or false, got \"no\"",
		"\"cookies[2].expires\": expected a number (seconds since 1970), got \"never\"",
		"\"cookies[2].sameSite\": expected \"Strict\", \"Lax\" or \"None\", got \"strict\"",
		"\"cookies[2]\": unknown key \"domian\" (did you mean \"domain\"?)",
		"\"cookies[3]\": expected an object {\"name\", \"value\", ...}, got 5",
		"\"user_agent\": expected a non-empty string of at most 511 bytes without control "
		"characters, got \"\"",
		"\"viewport\": expected \"WIDTHxHEIGHT\", each 100 to 10000 (e.g. \"1280x800\"), got "
		"\"0x800\"",
		"\"block_resources\": expected 'none' or a comma-separated list of document, "
		"stylesheet, image, media, font, script, texttrack, xhr, fetch, eventsource, "
		"websocket, manifest, other, got \"images\"",
	};
	char line[512];

	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		snprintf(line, sizeof line, "%s%s", w, want[i]);
		assert_has(e, line);
	}
	assert_int_equal(n, sizeof want / sizeof want[0]);
}

static void test_targets_page__shapes_and_bounds(void **state)
{
	char big[8192];
	size_t len = 0;

	assert_has(errors_of("\"actions\": {\"click\": \"a\"}", NULL),
	           "\"actions\": expected an array of at most 64 steps such as {\"click\": CSS}, "
	           "got {\"click\":\"a\"}");
	len += (size_t)snprintf(big, sizeof big, "\"actions\": [");
	for (int i = 0; i < 65; i++)
		len += (size_t)snprintf(big + len, sizeof big - len, "%s{\"wait_ms\": 1}",
		                        i ? "," : "");
	snprintf(big + len, sizeof big - len, "]");
	assert_has(errors_of(big, NULL), "\"actions\": expected an array of at most 64 steps");
	assert_has(errors_of("\"headers\": [\"X: y\"]", NULL),
	           "\"headers\": expected an object of at most 64 headers {\"Name\": \"value\"}");
	assert_has(errors_of("\"cookies\": {\"name\": \"a\"}", NULL),
	           "\"cookies\": expected an array of at most 64 cookies");
	{
		const char *vp[] = { "\"1280X800\"", "\"1280x\"",   "\"x800\"",
			             "\"10001x1\"",  "\"1x10001\"", "\"1280x800x\"",
			             "\"-1x5\"",     "1280",        "\" 1280x800\"",
			             "\"99x800\"",   "\"800x99\"" };
		for (size_t i = 0; i < sizeof vp / sizeof vp[0]; i++) {
			char extra[64];
			snprintf(extra, sizeof extra, "\"viewport\": %s", vp[i]);
			assert_has(errors_of(extra, NULL),
			           "\"viewport\": expected \"WIDTHxHEIGHT\"");
		}
	}
	{
		const char *br[] = { "\"\"",      "\"image,\"", "\",image\"",    "\"image,,font\"",
			             "\"Image\"", "5",          "\"none,image\"" };
		for (size_t i = 0; i < sizeof br / sizeof br[0]; i++) {
			char extra[64];
			snprintf(extra, sizeof extra, "\"block_resources\": %s", br[i]);
			assert_has(errors_of(extra, NULL),
			           "\"block_resources\": expected 'none' or");
		}
	}
	assert_has(errors_of("\"user_agent\": \"a\\nb\"", NULL),
	           "\"user_agent\": expected a non-empty string of at most 511 bytes");
	assert_has(errors_of("\"wait_for_stat\": \"attached\"", NULL),
	           "unknown key \"wait_for_stat\" (did you mean \"wait_for_state\"?)");
}

static void test_targets_page__refused_without_a_browser(void **state)
{
	const char *text =
	        "[{\"id\": \"j\", \"adapter\": \"jsonapi\", \"url\": \"http://h/\","
	        " \"fields\": {\"x\": {\"pointer\": \"/x\"}}, \"actions\": [], \"headers\": {},"
	        " \"cookies\": [], \"user_agent\": \"u\", \"viewport\": \"1x1\","
	        " \"block_resources\": \"none\", \"wait_for_state\": \"visible\","
	        " \"adaptive\": true, \"timeout_seconds\": 5}]";
	const char *keys[] = { "actions",  "headers",         "cookies",        "user_agent",
		               "viewport", "block_resources", "wait_for_state", "adaptive" };
	target_set_t set;
	errlist_t errs;
	char line[256];

	errlist_init(&errs);
	assert_int_equal(targets_parse(text, strlen(text), &set, &errs), -22);
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		snprintf(line, sizeof line,
		         "targets[0] \"j\": \"%s\": only for adapters that read the page in the "
		         "browser; \"jsonapi\" fetches without one",
		         keys[i]);
		assert_has(errlist_text(&errs), line);
	}
	assert_int_equal(errs.count, 8); /* timeout_seconds is for every adapter */
	errlist_release(&errs);
}

/* "adaptive": a boolean, only where one page read gives the whole data and the endpoint's
 * reads (without the browser) would miss nothing the page sends. */
static void test_targets_page__adaptive(void **state)
{
	const char *text = "[{\"id\": \"p\", \"adapter\": \"generic\", \"url\": \"http://h/x\","
	                   " \"fields\": {\"a\": {\"selector\": \"a\"}}, \"adaptive\": true},"
	                   " {\"id\": \"q\", \"adapter\": \"livescore\", \"url\": \"http://h/m/1\","
	                   " \"adaptive\": false}]";
	target_set_t set;
	errlist_t errs;

	(void)state;
	errlist_init(&errs);
	assert_int_equal(targets_parse(text, strlen(text), &set, &errs), 0);
	assert_int_equal(set.v[0].adaptive, 1);
	assert_int_equal(set.v[1].adaptive, 0);
	targets_release(&set);
	errlist_release(&errs);
	assert_has(errors_of("\"adaptive\": \"yes\"", NULL), "targets[0] \"p\": \"adaptive\": "
	                                                   "expected true or false, got \"yes\"");
	assert_has(errors_of("\"adaptive\": true, \"mode\": \"watch\"", NULL),
	           "\"adaptive\": only for a target read in navigate mode, not a watched page");
	assert_has(errors_of("\"adaptive\": true, \"discover\": true", NULL),
	           "\"adaptive\": only for a target read in navigate mode, not a listing");
	assert_has(errors_of("\"adaptive\": true, \"cookies\": []", NULL),
	           "\"adaptive\": not with \"cookies\" (the endpoint is read without the browser");
	assert_has(errors_of("\"adaptive\": true, \"headers\": {}", NULL),
	           "\"adaptive\": not with \"headers\"");
}

/* Writes text to dir/name. */
static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_targets_page__script_file(void **state)
{
	char dir[] = "/tmp/cdpilot-test-script-XXXXXX", path[512], cmd[600];
	const char *src = "(p) => ({ x: p.x })\n";
	target_set_t set;
	errlist_t errs;
	const target_spec_t *t;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/sub", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	put(dir, "sub/match.js", src);
	put(dir, "targets.json",
	    "[{\"id\": \"s\", \"adapter\": \"script\", \"url\": \"http://h/\","
	    "  \"script_file\": \"sub/match.js\", \"params\": {\"x\": 1}},"
	    " {\"id\": \"l\", \"adapter\": \"script\", \"url\": \"http://h/\", \"discover\": true,"
	    "  \"links\": {\"selector\": \"a\"},"
	    "  \"children\": {\"adapter\": \"script\", \"script_file\": \"sub/match.js\"}}]");
	snprintf(path, sizeof path, "%s/targets.json", dir);
	errlist_init(&errs);
	if (targets_load_file(path, &set, &errs) != 0)
		fail_msg("%s", errlist_text(&errs));
	t = targets_find(&set, "s");
	assert_string_equal(t->adapter->extract_fn(t->state), src);
	assert_string_equal(json_string_value(json_object_get(t->json, "script")), src);
	assert_string_equal(json_string_value(json_object_get(t->json, "script_file")),
	                    "sub/match.js");
	t = targets_find(&set, "l");
	assert_string_equal(json_string_value(json_object_get(t->children, "script")), src);
	targets_release(&set);

	/* both, a missing file, a directory, not UTF-8, over 1 MiB: every one listed */
	put(dir, "bad.bin", "\xff\xfe");
	snprintf(cmd, sizeof cmd, "truncate -s 1048577 %s/big.js", dir);
	assert_int_equal(system(cmd), 0);
	put(dir, "targets.json",
	    "[{\"id\": \"a\", \"adapter\": \"script\", \"url\": \"http://h/\","
	    "  \"script_file\": \"sub/match.js\", \"script\": \"() => ({})\"},"
	    " {\"id\": \"b\", \"adapter\": \"script\", \"url\": \"http://h/\", \"script_file\": \"no.js\"},"
	    " {\"id\": \"c\", \"adapter\": \"script\", \"url\": \"http://h/\", \"script_file\": \"sub\"},"
	    " {\"id\": \"d\", \"adapter\": \"script\", \"url\": \"http://h/\", \"script_file\": \"bad.bin\"},"
	    " {\"id\": \"e\", \"adapter\": \"script\", \"url\": \"http://h/\", \"script_file\": \"big.js\"},"
	    " {\"id\": \"f\", \"adapter\": \"script\", \"url\": \"http://h/\", \"script_file\": 7}]");
	assert_int_equal(targets_load_file(path, &set, &errs), -22);
	assert_has(errlist_text(&errs),
	           "targets[0] \"a\": give \"script\" or \"script_file\", not both");
	snprintf(cmd, sizeof cmd,
	         "targets[1] \"b\": \"script_file\": %s/no.js: No such file or "
	         "directory",
	         dir);
	assert_has(errlist_text(&errs), cmd);
	/* the file's error is the only one about it: no second, wrong one from the adapter */
	assert_null(strstr(errlist_text(&errs), "read only from a targets file"));
	snprintf(cmd, sizeof cmd, "targets[2] \"c\": \"script_file\": %s/sub: not a regular file",
	         dir);
	assert_has(errlist_text(&errs), cmd);
	assert_has(errlist_text(&errs), "targets[3] \"d\": \"script_file\": bad.bin is not UTF-8 "
	                                "text");
	snprintf(cmd, sizeof cmd,
	         "targets[4] \"e\": \"script_file\": %s/big.js: more than the "
	         "1 MiB a script may have",
	         dir);
	assert_has(errlist_text(&errs), cmd);
	assert_has(errlist_text(&errs), "targets[5] \"f\": \"script_file\": expected a path "
	                                "relative to the targets file, got 7");
	assert_int_equal(set.n, 0);
	errlist_release(&errs);

	/* not from a file: refused, in a target and in its children */
	errlist_init(&errs);
	{
		const char *text =
		        "[{\"id\": \"s\", \"adapter\": \"script\", \"url\": \"http://h/\","
		        "  \"script_file\": \"x.js\", \"script\": \"() => ({})\"},"
		        " {\"id\": \"l\", \"adapter\": \"script\", \"url\": \"http://h/\","
		        "  \"discover\": true, \"links\": {\"selector\": \"a\"},"
		        "  \"children\": {\"adapter\": \"script\", \"script_file\": \"x.js\"}}]";
		assert_int_equal(targets_parse(text, strlen(text), &set, &errs), -22);
		assert_has(errlist_text(&errs),
		           "targets[0] \"s\": \"script_file\": read only from a "
		           "targets file (relative to its directory); here "
		           "give the source in \"script\"");
		assert_has(errlist_text(&errs), "targets[1] \"l\": \"children\": \"script_file\": "
		                                "read only from a targets file");
		assert_int_equal(set.n, 0);
	}
	errlist_release(&errs);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets_page__valid_settings),
		cmocka_unit_test(test_targets_page__every_bad_value_listed),
		cmocka_unit_test(test_targets_page__shapes_and_bounds),
		cmocka_unit_test(test_targets_page__refused_without_a_browser),
		cmocka_unit_test(test_targets_page__script_file),
		cmocka_unit_test(test_targets_page__adaptive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
