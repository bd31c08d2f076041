/*
 * Unit tests for the targets file parser (daemon/targets.c): a valid file with every key,
 * every kind of error listed at once with its position and id, "did you mean" suggestions,
 * duplicate ids, hostile ids, JSON syntax errors with line and column, the file reader's
 * errors, and targets_host().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/targets.h"

static void assert_has(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("\"%s\" not found in:\n%s", needle, text);
}

static const char *valid_file =
        "{\"targets\": [\n"
        "  {\"id\": \"home-page\", \"adapter\": \"generic\", \"url\": \"https://example.org/\",\n"
        "   \"fields\": {\"title\": {\"selector\": \"h1\"}}},\n"
        "  {\"id\": \"m1\", \"adapter\": \"generic\", \"url\": \"http://127.0.0.1:8080/m/1\",\n"
        "   \"class\": \"live\", \"interval_seconds\": 2.5, \"timeout_seconds\": 20,\n"
        "   \"mode\": \"watch\", \"push\": true, \"wait_for\": \"#score\",\n"
        "   \"fields\": {\"score\": {\"selector\": \"#score\", \"type\": \"int\"}},\n"
        "   \"classify\": {\"field\": \"score\", \"completed\": [100]}},\n"
        "  {\"id\": \"api_1.x\", \"adapter\": \"jsonapi\", \"url\": \"http://api.local/v1?x=1\",\n"
        "   \"class\": \"completed\", \"mode\": \"navigate\",\n"
        "   \"fields\": {\"s\": {\"pointer\": \"/status\"}}}\n"
        "]}\n";

static void test_targets__valid_file(void **state)
{
	target_set_t set;
	errlist_t errs;
	const target_spec_t *t;

	errlist_init(&errs);
	if (targets_parse(valid_file, strlen(valid_file), &set, &errs) != 0)
		fail_msg("%s", errlist_text(&errs));
	assert_int_equal(errs.count, 0);
	assert_int_equal(set.n, 3);

	t = targets_find(&set, "home-page");
	assert_non_null(t);
	assert_ptr_equal(t->adapter, adapter_find("generic"));
	assert_non_null(t->state);
	assert_string_equal(t->url, "https://example.org/");
	assert_int_equal(t->klass, SCHED_IMMINENT);
	assert_int_equal(t->interval_ms, 0);
	assert_int_equal(t->timeout_ms, 0);
	assert_int_equal(t->mode, TARGETS_NAVIGATE);
	assert_false(t->push);
	assert_false(t->discover);
	assert_null(t->children);
	assert_true(json_is_object(t->json));

	t = targets_find(&set, "m1");
	assert_non_null(t);
	assert_int_equal(t->klass, SCHED_LIVE);
	assert_int_equal(t->interval_ms, 2500);
	assert_int_equal(t->timeout_ms, 20000);
	assert_int_equal(t->mode, TARGETS_WATCH);
	assert_true(t->push);
	assert_string_equal(t->adapter->wait_for(t->state), "#score");

	t = targets_find(&set, "api_1.x");
	assert_non_null(t);
	assert_ptr_equal(t->adapter, adapter_find("jsonapi"));
	assert_int_equal(t->klass, SCHED_COMPLETED);
	assert_null(targets_find(&set, "nope"));
	targets_release(&set);
	assert_null(set.v);
	assert_int_equal(set.n, 0);
	errlist_release(&errs);
}

static void test_targets__bare_array_and_json_copy(void **state)
{
	const char *text = "[{\"id\": \"a\", \"adapter\": \"jsonapi\", \"url\": \"http://h/\","
	                   " \"fields\": {\"x\": {\"pointer\": \"/x\"}}}]";
	json_t *root = json_loads(text, 0, NULL), *again;
	target_set_t set, set2;
	errlist_t errs;

	errlist_init(&errs);
	assert_int_equal(targets_parse_json(root, &set, &errs), 0);
	assert_int_equal(set.n, 1);
	/* the spec keeps its own copy: the caller's object may change */
	assert_true(json_equal(set.v[0].json, json_array_get(root, 0)));
	again = json_deep_copy(root);
	json_object_set_new(json_array_get(root, 0), "class", json_string("live"));
	assert_false(json_equal(set.v[0].json, json_array_get(root, 0)));
	/* an unchanged object parses to an equal json */
	assert_int_equal(targets_parse_json(again, &set2, &errs), 0);
	assert_true(json_equal(set.v[0].json, set2.v[0].json));
	targets_release(&set2);
	targets_release(&set);
	json_decref(again);
	json_decref(root);
	errlist_release(&errs);
}

/* Parses text, expecting failure; returns the error text (static copy). */
static const char *errors_of(const char *text, unsigned *count)
{
	static char buf[ERRLIST_MAX];
	target_set_t set = { .v = (target_spec_t *)1, .n = 7 };
	errlist_t errs;

	errlist_init(&errs);
	assert_int_equal(targets_parse(text, strlen(text), &set, &errs), -22);
	assert_null(set.v);
	assert_int_equal(set.n, 0);
	snprintf(buf, sizeof buf, "%s", errlist_text(&errs));
	if (count)
		*count = errs.count;
	errlist_release(&errs);
	return buf;
}

static void test_targets__every_error_listed_with_position_and_id(void **state)
{
	const char *text =
	        "{\"targets\": [\n"
	        /* 0: ok */
	        " {\"id\": \"ok\", \"adapter\": \"generic\", \"url\": \"http://h/\","
	        "  \"fields\": {\"a\": {\"selector\": \"a\"}}},\n"
	        /* 1: missing id, adapter, url */
	        " {},\n"
	        /* 2: unknown adapter with a suggestion */
	        " {\"id\": \"g\", \"adapter\": \"genric\", \"url\": \"http://h/\"},\n"
	        /* 3: bad interval, class, mode, timeout, typo key */
	        " {\"id\": \"m1\", \"adapter\": \"generic\", \"url\": \"http://h/\","
	        "  \"fields\": {\"a\": {\"selector\": \"a\"}},"
	        "  \"interval_seconds\": \"5s\", \"class\": \"hot\", \"mode\": \"poll\","
	        "  \"timeout_seconds\": 601, \"intervall_seconds\": 5},\n"
	        /* 4: bad urls and push without watch */
	        " {\"id\": \"u\", \"adapter\": \"generic\", \"url\": \"ftp://h/x\", \"push\": true,"
	        "  \"fields\": {\"a\": {\"selector\": \"a\"}}},\n"
	        /* 5: watch with a browserless adapter; discover unsupported; children alone */
	        " {\"id\": \"j\", \"adapter\": \"jsonapi\", \"url\": \"http://h/\", \"mode\": \"watch\","
	        "  \"discover\": true, \"children\": {\"mode\": \"watch\"},"
	        "  \"fields\": {\"x\": {\"pointer\": \"/x\"}}},\n"
	        /* 6: the adapter's own errors, under the same prefix */
	        " {\"id\": \"p\", \"adapter\": \"jsonapi\", \"url\": \"http://h/\","
	        "  \"fields\": {\"x\": {\"pointer\": \"x\"}}, \"interval_seconds\": 0.05},\n"
	        /* 7: children without discover; not a bool */
	        " {\"id\": \"c\", \"adapter\": \"generic\", \"url\": \"http://h/\", \"discover\": \"yes\","
	        "  \"children\": [], \"fields\": {\"a\": {\"selector\": \"a\"}}},\n"
	        /* 8: not an object */
	        " \"m9\",\n"
	        /* 9: duplicate of 0 */
	        " {\"id\": \"ok\", \"adapter\": \"generic\", \"url\": \"http://h/\","
	        "  \"fields\": {\"a\": {\"selector\": \"a\"}}}\n"
	        "]}";
	unsigned n = 0;
	const char *e = errors_of(text, &n);

	assert_has(e, "targets[1]: \"id\": required");
	assert_has(e, "targets[1]: \"adapter\": required (one of: generic, jsonapi, livescore, "
	              "script)");
	assert_has(e, "targets[1]: \"url\": required (an http:// or https:// URL)");
	assert_has(e, "targets[2] \"g\": \"adapter\": unknown adapter \"genric\" (known: generic, "
	              "jsonapi, livescore, script); did you mean \"generic\"?");
	assert_has(e, "targets[3] \"m1\": \"interval_seconds\": expected a number from 0.1 to "
	              "86400, got \"5s\"");
	assert_has(e, "targets[3] \"m1\": \"class\": expected \"live\", \"imminent\" or "
	              "\"completed\", got \"hot\"");
	assert_has(e, "targets[3] \"m1\": \"mode\": expected \"navigate\" or \"watch\", got "
	              "\"poll\"");
	assert_has(e, "targets[3] \"m1\": \"timeout_seconds\": expected a number from 1 to 600, "
	              "got 601");
	assert_has(e, "targets[3] \"m1\": unknown key \"intervall_seconds\" (did you mean "
	              "\"interval_seconds\"?)");
	assert_has(e, "targets[4] \"u\": \"url\": expected an absolute http:// or https:// URL "
	              "with a host, got \"ftp://h/x\"");
	assert_has(e, "targets[4] \"u\": \"push\": only with \"mode\": \"watch\"");
	assert_has(e, "targets[5] \"j\": \"mode\": \"watch\" needs an adapter that reads a page "
	              "in the browser; \"jsonapi\" fetches without one");
	assert_has(e, "targets[5] \"j\": \"discover\": adapter \"jsonapi\" cannot discover "
	              "targets");
	assert_has(e, "targets[6] \"p\": \"fields.x.pointer\": expected a JSON pointer");
	assert_has(e, "targets[6] \"p\": \"interval_seconds\": expected a number from 0.1 to "
	              "86400, got 0.05");
	assert_has(e, "targets[7] \"c\": \"discover\": expected true or false, got \"yes\"");
	assert_has(e, "targets[7] \"c\": \"children\": expected an object");
	assert_has(e, "targets[8]: expected a target object");
	assert_has(e, "targets[9] \"ok\": duplicate id (also targets[0])");
	assert_int_equal(n, 19);
}

static void test_targets__hostile_ids(void **state)
{
	const char *bad[] = {
		"../x", "a:b",
		"",     ".hidden",
		"-x",   "a/b",
		"a b",  "x\\y",
		"é",    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	};
	char text[512];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *id = json_string(bad[i]);
		char *enc = json_dumps(id, JSON_ENCODE_ANY);
		assert_false(targets_id_valid(bad[i]));
		snprintf(text, sizeof text,
		         "[{\"id\": %s, \"adapter\": \"jsonapi\", \"url\": "
		         "\"http://h/\", \"fields\": {\"x\": {\"pointer\": \"/x\"}}}]",
		         enc);
		assert_has(errors_of(text, NULL),
		           "\"id\": expected 1 to 64 characters of A-Z a-z 0-9 "
		           "_ . - not starting with '.' or '-'");
		free(enc);
		json_decref(id);
	}
	/* an embedded NUL is refused too */
	{
		json_t *o =
		        json_pack("{s:s#, s:s, s:s, s:{s:{s:s}}}", "id", "a\0b", (int)3, "adapter",
		                  "jsonapi", "url", "http://h/", "fields", "x", "pointer", "/x");
		target_spec_t t;
		errlist_t errs;
		assert_non_null(o);
		errlist_init(&errs);
		assert_int_equal(targets_parse_one(o, "targets[0]", &t, &errs), -22);
		assert_has(errlist_text(&errs), "\"id\": expected");
		assert_null(t.json);
		errlist_release(&errs);
		json_decref(o);
	}
	assert_has(errors_of("[{\"id\": 5}]", NULL), "targets[0]: \"id\": expected 1 to 64");
	assert_true(targets_id_valid("a"));
	assert_true(targets_id_valid("A.b_c-9"));
	assert_true(targets_id_valid(
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_false(targets_id_valid(NULL));
}

static void test_targets__urls(void **state)
{
	char text[4400], longurl[2100];
	const char *bad[] = { "http://",
		              "https:///x",
		              "//h/x",
		              "h/x",
		              "http://h /x",
		              "javascript:alert(1)",
		              "file:///etc/passwd",
		              "http://:80/" };

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text,
		         "[{\"id\": \"a\", \"adapter\": \"jsonapi\", \"url\": "
		         "\"%s\", \"fields\": {\"x\": {\"pointer\": \"/x\"}}}]",
		         bad[i]);
		assert_has(errors_of(text, NULL), "targets[0] \"a\": \"url\": expected");
	}
	memset(longurl, 'a', sizeof longurl);
	memcpy(longurl, "http://h/", 9);
	longurl[2048] = '\0'; /* 2048 chars: one too many */
	snprintf(text, sizeof text,
	         "[{\"id\": \"a\", \"adapter\": \"jsonapi\", \"url\": \"%s\", "
	         "\"fields\": {\"x\": {\"pointer\": \"/x\"}}}]",
	         longurl);
	assert_has(errors_of(text, NULL), "\"url\": expected at most 2047 bytes, got 2048");
}

static void test_targets__json_syntax_error_has_line_and_column(void **state)
{
	const char *e =
	        errors_of("{\"targets\": [\n  {\"id\": \"a\",\n   \"url\" \"x\"}\n]}", NULL);

	assert_has(e, "line 3, column");
	e = errors_of("{\"targets\": [], \"targets\": []}", NULL);
	assert_has(e, "duplicate object key");
	e = errors_of("{\"target\": []}", NULL);
	assert_has(e, "unknown top-level key \"target\" (did you mean \"targets\"?)");
	assert_has(e, "\"targets\": required");
	e = errors_of("{\"targets\": {}}", NULL);
	assert_has(e, "expected {\"targets\": [...]} or an array of target objects, got {}");
	e = errors_of("42", NULL);
	assert_has(e, "got 42");
}

static json_t *fake_normalise(const void *state, const json_t *raw, char *why, size_t whylen)
{
	return json_object();
}
static const char *fake_js(const void *state)
{
	return "1";
}

/* An adapter that is registered but not finished (a NULL parse, normalise or extract_js)
 * is refused, not called. */
/* "entities" beside "targets": parsed with the set, their sources checked against the
 * file's targets; a bad entity makes the whole file fail, like a bad target. */
static void test_targets__entities_in_the_file(void **state)
{
	const char *ok = "{\"targets\": ["
	                 " {\"id\": \"a\", \"adapter\": \"generic\", \"url\": \"http://h/a\","
	                 "  \"fields\": {\"x\": {\"selector\": \"a\"}}},"
	                 " {\"id\": \"b\", \"adapter\": \"generic\", \"url\": \"http://h/b\","
	                 "  \"fields\": {\"x\": {\"selector\": \"a\"}}}],"
	                 " \"entities\": [{\"id\": \"m\", \"sources\": [\"a\", \"b\"],"
	                 "  \"max_age_seconds\": 5, \"fields\": {\"x\": {\"prefer\": [\"b\", \"a\"]}}}]}";
	const char *bad = "{\"targets\": ["
	                  " {\"id\": \"a\", \"adapter\": \"generic\", \"url\": \"http://h/a\","
	                  "  \"fields\": {\"x\": {\"selector\": \"a\"}}}],"
	                  " \"entities\": [{\"id\": \"m\", \"sources\": [\"a\", \"zz\"],"
	                  "  \"max_age_seconds\": 5, \"fields\": {\"x\": {\"rule\": \"newest\"}}}],"
	                  " \"entitys\": []}";
	target_set_t set;
	errlist_t errs;
	unsigned n = 0;
	const char *e;

	(void)state;
	errlist_init(&errs);
	assert_int_equal(targets_parse(ok, strlen(ok), &set, &errs), 0);
	assert_int_equal(set.n, 2);
	assert_int_equal(set.entities.n, 1);
	assert_string_equal(set.entities.v[0].id, "m");
	assert_int_equal(set.entities.v[0].nsources, 2);
	assert_int_equal(set.entities.v[0].fields[0].prefer[0], 1); /* "b" */
	targets_release(&set);
	assert_null(set.entities.v);
	errlist_release(&errs);

	e = errors_of(bad, &n);
	assert_int_equal(n, 2);
	assert_has(e, "entities[0] \"m\": \"sources\"[1]: \"zz\" is not a known target");
	assert_has(e, "unknown top-level key \"entitys\" (did you mean \"entities\"?)");
}

static void test_targets__unfinished_adapter_refused(void **state)
{
	static const char *const keys[] = { "x", NULL };
	adapter_t a = { .name = "fake",
		        .needs_browser = 1,
		        .normalise = fake_normalise,
		        .extract_js = fake_js };
	size_t n;
	const adapter_t *const *all = adapter_all(&n);

	assert_true(targets_adapter_usable(&a));
	a.param_keys = keys; /* keys but no parse() */
	assert_false(targets_adapter_usable(&a));
	a.param_keys = NULL;
	a.extract_js = NULL; /* a browser adapter with nothing to evaluate */
	assert_false(targets_adapter_usable(&a));
	a.needs_browser = 0;
	assert_true(targets_adapter_usable(&a));
	a.normalise = NULL;
	assert_false(targets_adapter_usable(&a));
	assert_false(targets_adapter_usable(NULL));
	assert_true(targets_adapter_usable(adapter_find("generic")));
	assert_true(targets_adapter_usable(adapter_find("jsonapi")));

	/* and a registered one that is not usable (while one is being written) is refused
	 * with a clear message */
	for (size_t i = 0; i < n; i++) {
		char text[512];
		target_set_t set;
		errlist_t errs;
		if (targets_adapter_usable(all[i]))
			continue;
		snprintf(text, sizeof text,
		         "[{\"id\": \"a\", \"adapter\": \"%s\", \"url\": "
		         "\"http://h/\"}]",
		         all[i]->name);
		errlist_init(&errs);
		assert_int_equal(targets_parse(text, strlen(text), &set, &errs), -22);
		assert_has(errlist_text(&errs), "is not implemented in this build");
		errlist_release(&errs);
	}
}

static void test_targets__load_file(void **state)
{
	char path[] = "/tmp/cdpilot-test-targets-XXXXXX";
	int fd = mkstemp(path);
	target_set_t set;
	errlist_t errs;
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(valid_file, f);
	fclose(f);
	errlist_init(&errs);
	assert_int_equal(targets_load_file(path, &set, &errs), 0);
	assert_int_equal(set.n, 3);
	targets_release(&set);
	unlink(path);

	assert_int_equal(targets_load_file(path, &set, &errs), -2 /* -ENOENT */);
	assert_has(errlist_text(&errs), path);
	assert_has(errlist_text(&errs), "No such file or directory");
	assert_int_equal(set.n, 0);
	errlist_release(&errs);

	errlist_init(&errs);
	assert_true(targets_load_file("/tmp", &set, &errs) < 0);
	assert_has(errlist_text(&errs), "/tmp: not a regular file");
	errlist_release(&errs);

	/* over the cap: a sparse file of 16 MiB + 1 */
	memcpy(path + strlen(path) - 6, "XXXXXX", 6);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, TARGETS_FILE_MAX + 1), 0);
	close(fd);
	errlist_init(&errs);
	assert_true(targets_load_file(path, &set, &errs) < 0);
	assert_has(errlist_text(&errs), "more than the 16 MiB a targets file may have");
	errlist_release(&errs);
	unlink(path);
}

static void test_targets__host(void **state)
{
	char h[64];

	assert_int_equal(targets_host("http://Example.ORG/x", h, sizeof h), 0);
	assert_string_equal(h, "example.org");
	assert_int_equal(targets_host("https://user:pw@h.io:8443/a?b#c", h, sizeof h), 0);
	assert_string_equal(h, "h.io:8443");
	assert_int_equal(targets_host("http://[::1]:9000/", h, sizeof h), 0);
	assert_string_equal(h, "[::1]:9000");
	assert_int_equal(targets_host("http://h?q", h, sizeof h), 0);
	assert_string_equal(h, "h");
	assert_int_equal(targets_host("ftp://h/", h, sizeof h), -22);
	assert_int_equal(targets_host("http:///x", h, sizeof h), -22);
	assert_int_equal(targets_host("http://[::1/", h, sizeof h), -22);
	assert_int_equal(targets_host("http://averyveryverylonghostname.example/", h, 8),
	                 -36 /* -ENAMETOOLONG */);
	/* ports: 1 to 65535 in digits */
	assert_int_equal(targets_host("http://h:1/", h, sizeof h), 0);
	assert_int_equal(targets_host("http://h:65535/", h, sizeof h), 0);
	assert_int_equal(targets_host("http://[::1]:65535", h, sizeof h), 0);
	assert_int_equal(targets_host("http://h:0/", h, sizeof h), -34 /* -ERANGE */);
	assert_int_equal(targets_host("http://h:65536/", h, sizeof h), -34);
	assert_int_equal(targets_host("http://h:99999/", h, sizeof h), -34);
	assert_int_equal(targets_host("http://h:0000080000/", h, sizeof h), -34);
	assert_int_equal(targets_host("http://h:/", h, sizeof h), -34);
	assert_int_equal(targets_host("http://h:8x/", h, sizeof h), -34);
	assert_int_equal(targets_host("http://h:-1/", h, sizeof h), -34);
	assert_int_equal(targets_host("http://h:80:81/", h, sizeof h), -34);
	assert_int_equal(targets_host("http://[::1]:0/", h, sizeof h), -34);
	assert_int_equal(targets_host("https://u:p@h:99999/", h, sizeof h), -34);
}

static const char *one_target(const char *url)
{
	static char text[512];

	snprintf(text, sizeof text,
	         "[{\"id\": \"t\", \"adapter\": \"jsonapi\", \"url\": \"%s\","
	         " \"fields\": {\"a\": {\"pointer\": \"/a\"}}}]",
	         url);
	return text;
}

/* Parses text, expecting success. */
static void parses(const char *text)
{
	target_set_t set;
	errlist_t errs;

	errlist_init(&errs);
	if (targets_parse(text, strlen(text), &set, &errs) != 0)
		fail_msg("%s: %s", text, errlist_text(&errs));
	targets_release(&set);
	errlist_release(&errs);
}

static void test_targets__bad_ports_refused(void **state)
{
	unsigned n = 0;

	assert_has(errors_of(one_target("http://example.org:99999/"), &n),
	           "targets[0] \"t\": \"url\": expected a port from 1 to 65535, got "
	           "\"http://example.org:99999/\"");
	assert_int_equal(n, 1);
	assert_has(errors_of(one_target("http://example.org:0/x"), &n),
	           "expected a port from 1 to 65535, got \"http://example.org:0/x\"");
	assert_int_equal(n, 1);
}

/* The default policy, TARGET_DENY and TARGET_ALLOW at parse time: the file, the Redis
 * hash's objects and a discovered child (each through targets_parse_one). */
static void test_targets__policy_refuses_at_parse(void **state)
{
	netpolicy_t p;
	errlist_t errs;
	target_spec_t spec;
	json_t *obj;
	unsigned n = 0;

	/* the default refuses metadata addresses and keeps loopback */
	assert_has(errors_of(one_target("http://169.254.169.254/latest/meta-data/"), &n),
	           "targets[0] \"t\": \"url\": \"http://169.254.169.254/latest/meta-data/\" is "
	           "refused by the target policy: denied by the default TARGET_DENY entry "
	           "\"169.254.0.0/16\"");
	assert_int_equal(n, 1);
	assert_has(errors_of(one_target("http://metadata.google.internal./x"), &n),
	           "entry \"metadata.google.internal\"");
	assert_has(errors_of(one_target("http://[::ffff:169.254.169.254]/"), &n), "169.254.0.0/16");
	assert_has(errors_of(one_target("http://%31.2.3.4/"), &n), "percent-encoding");
	parses(one_target("http://127.0.0.1:8080/"));

	errlist_init(&errs);
	assert_int_equal(netpolicy_init(&p, "*.example.org", "127.0.0.0/8", &errs), 0);
	targets_set_policy(&p);
	assert_ptr_equal(targets_policy(), &p);
	assert_has(errors_of(one_target("http://127.0.0.1:8080/"), &n),
	           "\"http://127.0.0.1:8080/\" is refused by the target policy: denied by "
	           "TARGET_DENY entry \"127.0.0.0/8\"");
	assert_has(errors_of(one_target("https://evil.net/"), &n),
	           "not allowed by TARGET_ALLOW");
	parses(one_target("https://api.example.org/"));

	/* a discovered child, as runner__discovered() parses it */
	obj = json_pack("{s:s, s:s, s:s, s:{s:{s:s}}}", "id", "child-1", "adapter", "jsonapi",
	                "url", "http://127.0.0.2/match/1", "fields", "a", "pointer", "/a");
	assert_non_null(obj);
	assert_int_equal(targets_parse_one(obj, "lst: discovered[0]", &spec, &errs), -EINVAL);
	assert_has(errlist_text(&errs),
	           "lst: discovered[0] \"child-1\": \"url\": \"http://127.0.0.2/match/1\" is "
	           "refused by the target policy: denied by TARGET_DENY entry \"127.0.0.0/8\"");
	json_object_set_new(obj, "url", json_string("http://www.example.org/match/1"));
	assert_int_equal(targets_parse_one(obj, "lst: discovered[0]", &spec, &errs), 0);
	target_spec_release(&spec);
	json_decref(obj);

	/* the Redis hash's path: targets_parse_json */
	obj = json_loads(one_target("http://[::1]:9/"), 0, NULL);
	assert_non_null(obj);
	{
		target_set_t set;
		errlist_release(&errs);
		errlist_init(&errs);
		assert_int_equal(targets_parse_json(obj, &set, &errs), -EINVAL);
		assert_has(errlist_text(&errs), "targets[0] \"t\": \"url\": \"http://[::1]:9/\" is "
		                                "refused by the target policy: not allowed by "
		                                "TARGET_ALLOW");
		assert_int_equal(set.n, 0);
	}
	json_decref(obj);
	targets_set_policy(NULL);
	netpolicy_release(&p);
	errlist_release(&errs);
	assert_has(errors_of(one_target("http://169.254.169.254/"), &n), "default TARGET_DENY");
}

static void test_targets__children_and_release_of_moved_specs(void **state)
{
	/* jsonapi has no discovery: "children" is only valid with discover, which it refuses */
	const char *e =
	        errors_of("[{\"id\": \"d\", \"adapter\": \"jsonapi\", \"url\": \"http://h/\","
	                  " \"discover\": true, \"children\": {\"id\": \"x\"},"
	                  " \"fields\": {\"a\": {\"pointer\": \"/a\"}}}]",
	                  NULL);
	target_set_t set;
	errlist_t errs;

	assert_has(e, "\"discover\": adapter \"jsonapi\" cannot discover targets");
	assert_has(e, "\"children\": must not set \"id\"");
	e = errors_of("[{\"id\": \"d\", \"adapter\": \"generic\", \"url\": \"http://h/\","
	              " \"children\": {\"mode\": \"watch\"},"
	              " \"fields\": {\"a\": {\"selector\": \"a\"}}}]",
	              NULL);
	assert_has(e, "targets[0] \"d\": \"children\": only with \"discover\": true");

	/* a caller may move a spec out and zero it; release copes */
	errlist_init(&errs);
	assert_int_equal(targets_parse(valid_file, strlen(valid_file), &set, &errs), 0);
	{
		target_spec_t moved = set.v[1];
		memset(&set.v[1], 0, sizeof set.v[1]);
		target_spec_release(&moved);
		target_spec_release(&moved); /* zeroed: a no-op */
	}
	targets_release(&set);
	errlist_release(&errs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets__valid_file),
		cmocka_unit_test(test_targets__bare_array_and_json_copy),
		cmocka_unit_test(test_targets__every_error_listed_with_position_and_id),
		cmocka_unit_test(test_targets__hostile_ids),
		cmocka_unit_test(test_targets__urls),
		cmocka_unit_test(test_targets__json_syntax_error_has_line_and_column),
		cmocka_unit_test(test_targets__entities_in_the_file),
		cmocka_unit_test(test_targets__unfinished_adapter_refused),
		cmocka_unit_test(test_targets__load_file),
		cmocka_unit_test(test_targets__host),
		cmocka_unit_test(test_targets__bad_ports_refused),
		cmocka_unit_test(test_targets__policy_refuses_at_parse),
		cmocka_unit_test(test_targets__children_and_release_of_moved_specs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
