/*
 * Integration tests for `cdpilot try`: the real binary ($CDPILOT_BIN) on a targets file
 * pointing at the fixture server running in this process (so its request counts tell what
 * the run loaded). One JSON object per target per line on stdout; exit codes as scrape's.
 * After each run: no Chromium process and no user-data-dir left behind. The process
 * harness is tests/support/clikit.c.
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/fixture/fixture.h"
#include "tests/support/clikit.h"
#include "tests/support/testutil.h"
#include "util/log.h"

/* The harness's env (first, for ck_teardown) and the case's targets file. */
typedef struct env {
	ck_env_t ck;
	char dir[64];      /* temp dir holding the targets file */
	char targets[128]; /* dir/targets.json */
} env_t;

/* The env lives on the heap (tu_state_alloc: a failed test's env is kept, not freed). */
static int env_setup(void **state)
{
	return tu_state_alloc(state, sizeof(env_t));
}

static void env_open(env_t *e)
{
	memset(e, 0, sizeof *e);
	ck_env_open(&e->ck);
	snprintf(e->dir, sizeof e->dir, "/tmp/cdpilot-test-try-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->targets, sizeof e->targets, "%s/targets.json", e->dir);
}

static void env_close(env_t *e)
{
	unlink(e->targets);
	rmdir(e->dir);
	ck_env_close(&e->ck);
}

/* Writes the targets file: fmt with every "%s" the fixture's base URL. */
static void write_targets(env_t *e, const char *text)
{
	char base[128], *out = NULL;
	size_t n = 0;
	FILE *f;

	fixture_url(e->ck.fx, NULL, base, sizeof base);
	f = open_memstream(&out, &n);
	assert_non_null(f);
	for (const char *p = text; *p; p++) {
		if (p[0] == '@' && p[1] == '@') {
			fputs(base, f);
			p++;
		} else {
			fputc(*p, f);
		}
	}
	fclose(f);
	f = fopen(e->targets, "w");
	assert_non_null(f);
	fputs(out, f);
	fclose(f);
	free(out);
}

/* Runs `cdpilot try --targets FILE` with extra args (NULL-ended), to its end. */
static void try_run(env_t *e, ck_run_t *r, const char *const *extra, int expect_json)
{
	const char *args[16] = { "try", "--targets", e->targets };
	int n = 3;

	for (; extra && *extra && n < 15; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	ck_run_start(r, &e->ck.loop, args);
	ck_run_finish(r, 240000, expect_json ? CK_JSON_LINES : CK_NO_JSON);
	ck_audit_after(&e->ck, r);
}

static json_t *line(const ck_run_t *r, size_t i)
{
	if (json_array_size(r->json) <= i)
		ck_run_dump(r);
	assert_true(json_array_size(r->json) > i);
	return json_array_get(r->json, i);
}

static const char *str_at(json_t *obj, const char *path1, const char *path2)
{
	json_t *v = json_object_get(obj, path1);
	if (path2)
		v = json_object_get(v, path2);
	return json_is_string(v) ? json_string_value(v) : "(none)";
}

#define TARGETS_OK                                                                          \
	"{\"targets\": ["                                                                    \
	"{\"id\": \"page\", \"adapter\": \"generic\", \"url\": \"@@/js?delay=200\", "          \
	"\"wait_for\": \"#out\", \"fields\": {\"out\": {\"selector\": \"#out\"}}},"            \
	"{\"id\": \"missing\", \"adapter\": \"generic\", \"url\": \"@@/static\", "            \
	"\"wait_for\": \"#nothing\", \"timeout_seconds\": 3, "                                 \
	"\"fields\": {\"t\": {\"selector\": \"title\"}}},"                                     \
	"{\"id\": \"gone\", \"adapter\": \"generic\", \"url\": \"@@/status/404\", "           \
	"\"fields\": {\"t\": {\"selector\": \"title\"}}},"                                     \
	"{\"id\": \"api\", \"adapter\": \"jsonapi\", \"url\": \"@@/json\", "                   \
	"\"fields\": {\"n\": {\"pointer\": \"/n\"}}},"                                         \
	"{\"id\": \"demo\", \"adapter\": \"livescore\", \"url\": \"@@/live/\", "               \
	"\"discover\": true}]}"

/* The target kinds of issue 16: a script (with params), a script that throws on its third
 * line, a required click that finds nothing, an optional consent click that finds its
 * button, a generic listing with a links rule, a wait_for on an element that stays hidden
 * (its own timeout_seconds, so the read's deadline is the first to pass). */
#define TARGETS_KINDS                                                                       \
	"{\"targets\": ["                                                                    \
	"{\"id\": \"scr\", \"adapter\": \"script\", \"url\": \"@@/static\", "                 \
	"\"params\": {\"tag\": \"t1\", \"n\": 2}, "                                           \
	"\"script\": \"(p) => ({ title: document.title, tag: p.tag, n: p.n + 1 })\"},"         \
	"{\"id\": \"throws\", \"adapter\": \"script\", \"url\": \"@@/static\", "              \
	"\"script\": \"() => {\\n  const x = 1;\\n  throw new Error(`boom ${x}`);\\n}\"},"    \
	"{\"id\": \"mustclick\", \"adapter\": \"generic\", "                                  \
	"\"url\": \"@@/actions?consent_ms=-1\", "                                              \
	"\"actions\": [{\"click\": \"button.accept\", \"timeout_ms\": 500}], "                \
	"\"fields\": {\"consent\": {\"selector\": \"#consent\"}}},"                            \
	"{\"id\": \"consent\", \"adapter\": \"generic\", "                                    \
	"\"url\": \"@@/actions?consent_ms=200\", "                                             \
	"\"actions\": [{\"click\": \"button.accept\", \"optional\": true, "                   \
	"\"timeout_ms\": 30000}], "                                                            \
	"\"fields\": {\"consent\": {\"selector\": \"#consent\"}}},"                            \
	"{\"id\": \"league\", \"adapter\": \"generic\", \"url\": \"@@/live/\", "              \
	"\"discover\": true, "                                                                 \
	"\"links\": {\"selector\": \"tr.match\", \"id\": \"/live/match/(\\\\d+)$\", "         \
	"\"class\": {\"attr\": \"data-status\", \"live\": [\"live\"], "                       \
	"\"imminent\": [\"upcoming\"], \"completed\": [\"finished\"]}}, "                     \
	"\"children\": {\"adapter\": \"generic\", "                                            \
	"\"fields\": {\"score\": {\"selector\": \"#score\"}}}},"                               \
	"{\"id\": \"hidden\", \"adapter\": \"generic\", \"url\": \"@@/late-fill?ms=600000\", " \
	"\"wait_for\": \"#panel\", "                                                          \
	"\"fields\": {\"panel\": {\"selector\": \"#panel\"}}}]}"

/* ---- tests ---- */

/* A generic target: the snapshot the daemon would write, with timings; exit 0. */
static void test_try__generic_ok(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	json_t *o, *snap;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--id", "page", NULL }, 1);
	ck_expect_exit(&r, 0);
	assert_int_equal(json_array_size(r.json), 1);
	o = line(&r, 0);
	assert_string_equal(str_at(o, "id", NULL), "page");
	assert_true(json_is_true(json_object_get(o, "ok")));
	snap = json_object_get(o, "snapshot");
	assert_string_equal(str_at(snap, "target", NULL), "page");
	assert_string_equal(str_at(snap, "adapter", NULL), "generic");
	assert_string_equal(str_at(snap, "data", "out"), "rendered by js");
	assert_int_equal(json_integer_value(json_object_get(snap, "seq")), 1);
	assert_true(json_is_integer(json_object_get(json_object_get(o, "timings"), "total_ms")));
	assert_true(json_is_integer(json_object_get(json_object_get(o, "timings"), "task_ms")));
	assert_null(json_object_get(o, "error"));
	ck_run_release(&r);
	env_close(e);
}

/* A selector that never matches: kind selector, exit 7, the selector named. Alone, so the
 * browser's launch comes before the page's lease and the read's own deadline is the first
 * to pass (not the lease's). */
static void test_try__selector_never_matches(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	json_t *o;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--id", "missing", NULL }, 1);
	ck_expect_exit(&r, 7);
	o = line(&r, 0);
	assert_string_equal(str_at(o, "id", NULL), "missing");
	assert_true(json_is_false(json_object_get(o, "ok")));
	assert_string_equal(str_at(o, "error", "kind"), "selector");
	assert_non_null(strstr(str_at(o, "error", "message"), "#nothing"));
	assert_null(json_object_get(o, "snapshot"));
	ck_run_release(&r);
	env_close(e);
}

/* A jsonapi target is fetched without a browser: Chromium is never launched. */
static void test_try__jsonapi_needs_no_browser(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	json_t *o;

	env_open(e);
	write_targets(e, TARGETS_OK);
	setenv("LOG_LEVEL", "debug", 1);
	try_run(e, &r, (const char *const[]){ "--id", "api", NULL }, 1);
	unsetenv("LOG_LEVEL");
	ck_expect_exit(&r, 0);
	o = line(&r, 0);
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_int_equal(json_integer_value(
	                         json_object_get(json_object_get(json_object_get(o, "snapshot"),
	                                                         "data"),
	                                         "n")),
	                 123);
	/* the debug log would name the browser's launch and its user-data-dir */
	assert_non_null(strstr(r.err.buf, "Chromium is not launched"));
	assert_null(strstr(r.err.buf, "cdpilot-chromium-"));
	assert_null(strstr(r.err.buf, "DevTools listening"));
	assert_int_equal(fixture_hits(e->ck.fx, "/json"), 1);
	ck_run_release(&r);
	env_close(e);
}

/* A discovering target: its children are listed from the runner's table, never loaded. */
static void test_try__discovery_lists_children_unscraped(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	json_t *o, *kids, *kid;
	size_t i;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--id", "demo", NULL }, 1);
	ck_expect_exit(&r, 0);
	o = line(&r, 0);
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_null(json_object_get(o, "snapshot"));
	kids = json_object_get(o, "discovered");
	assert_int_equal(json_array_size(kids), 24); /* the site's default match count */
	json_array_foreach(kids, i, kid) {
		const char *url = str_at(kid, "url", NULL);
		const char *path = strstr(url, "/live/match/");
		char want[32];
		snprintf(want, sizeof want, "demo-%zu", i + 1);
		assert_string_equal(str_at(kid, "id", NULL), want);
		assert_non_null(path);
		assert_true(strcmp(str_at(kid, "class", NULL), "live") == 0 ||
		            strcmp(str_at(kid, "class", NULL), "imminent") == 0 ||
		            strcmp(str_at(kid, "class", NULL), "completed") == 0);
		if (fixture_hits(e->ck.fx, path) != 0)
			fail_msg("child %s was loaded (%lu requests for %s)", want,
			         fixture_hits(e->ck.fx, path), path);
	}
	assert_int_equal(fixture_hits(e->ck.fx, "/live/"), 1);
	ck_run_release(&r);
	env_close(e);
}

/* A script target: the snapshot's data is the script's object, made with its params. */
static void test_try__script_ok(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	json_t *o, *snap, *data;

	env_open(e);
	write_targets(e, TARGETS_KINDS);
	try_run(e, &r, (const char *const[]){ "--id", "scr", NULL }, 1);
	ck_expect_exit(&r, 0);
	assert_int_equal(json_array_size(r.json), 1);
	o = line(&r, 0);
	assert_string_equal(str_at(o, "id", NULL), "scr");
	assert_true(json_is_true(json_object_get(o, "ok")));
	snap = json_object_get(o, "snapshot");
	assert_string_equal(str_at(snap, "target", NULL), "scr");
	assert_string_equal(str_at(snap, "adapter", NULL), "script");
	data = json_object_get(snap, "data");
	assert_int_equal(json_object_size(data), 3);
	assert_string_equal(str_at(data, "title", NULL), "Static page");
	assert_string_equal(str_at(data, "tag", NULL), "t1");
	assert_int_equal(json_integer_value(json_object_get(data, "n")), 3);
	assert_null(json_object_get(o, "error"));
	assert_int_equal(fixture_hits(e->ck.fx, "/static"), 1);
	ck_run_release(&r);
	env_close(e);
}

/* A script that throws: kind script, the exception's text and its line; exit 8. */
static void test_try__script_throws(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	json_t *o;

	env_open(e);
	write_targets(e, TARGETS_KINDS);
	try_run(e, &r, (const char *const[]){ "--id", "throws", NULL }, 1);
	ck_expect_exit(&r, 8);
	o = line(&r, 0);
	assert_string_equal(str_at(o, "id", NULL), "throws");
	assert_true(json_is_false(json_object_get(o, "ok")));
	assert_string_equal(str_at(o, "error", "kind"), "script");
	assert_non_null(strstr(str_at(o, "error", "message"), "boom 1"));
	assert_non_null(strstr(str_at(o, "error", "message"), "(line 3)"));
	assert_null(json_object_get(o, "snapshot"));
	ck_run_release(&r);
	env_close(e);
}

/* A required click on a button that never comes: kind action, the step named; exit 11. */
static void test_try__required_click_fails_as_action(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	json_t *o;

	env_open(e);
	write_targets(e, TARGETS_KINDS);
	try_run(e, &r, (const char *const[]){ "--id", "mustclick", NULL }, 1);
	ck_expect_exit(&r, 11);
	o = line(&r, 0);
	assert_string_equal(str_at(o, "id", NULL), "mustclick");
	assert_true(json_is_false(json_object_get(o, "ok")));
	assert_string_equal(str_at(o, "error", "kind"), "action");
	assert_non_null(strstr(str_at(o, "error", "message"), "actions[0] click \"button.accept\""));
	assert_null(json_object_get(o, "snapshot"));
	assert_int_equal(fixture_hits(e->ck.fx, "/actions"), 1);
	ck_run_release(&r);
	env_close(e);
}

/* An optional consent click whose button comes after 200 ms: clicked, then the page read
 * shows the consent given. */
static void test_try__optional_consent_then_read(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	json_t *o;

	env_open(e);
	write_targets(e, TARGETS_KINDS);
	try_run(e, &r, (const char *const[]){ "--id", "consent", NULL }, 1);
	ck_expect_exit(&r, 0);
	o = line(&r, 0);
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_string_equal(str_at(json_object_get(o, "snapshot"), "data", "consent"), "accepted");
	ck_run_release(&r);
	env_close(e);
}

/* A generic listing with a links rule: one child per row, in the listing's order, its id
 * from the URL and its class from data-status; no child page is loaded. */
static void test_try__links_discovery_lists_children_unscraped(void **state)
{
	static const char *const want_class[] = { "imminent", "imminent", "live",
		                                   "live",     "completed", "completed" };
	env_t *e = *state;
	ck_run_t r;
	json_t *o, *kids, *kid;
	char base[128];
	size_t i;

	env_open(e);
	/* 6 matches, clock paused: 1-2 upcoming, 3-4 live, 5-6 finished */
	assert_int_equal(fixture_live_configure(e->ck.fx, 6, 0, 1), 0);
	fixture_url(e->ck.fx, NULL, base, sizeof base);
	write_targets(e, TARGETS_KINDS);
	try_run(e, &r, (const char *const[]){ "--id", "league", NULL }, 1);
	ck_expect_exit(&r, 0);
	o = line(&r, 0);
	assert_string_equal(str_at(o, "id", NULL), "league");
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_null(json_object_get(o, "snapshot"));
	kids = json_object_get(o, "discovered");
	if (json_array_size(kids) != 6)
		ck_run_dump(&r);
	assert_int_equal(json_array_size(kids), 6);
	json_array_foreach(kids, i, kid) {
		char want_id[48], want_url[256], path[48];
		snprintf(want_id, sizeof want_id, "league-%zu", i + 1);
		snprintf(path, sizeof path, "/live/match/%zu", i + 1);
		snprintf(want_url, sizeof want_url, "%s%s", base, path);
		assert_string_equal(str_at(kid, "id", NULL), want_id);
		assert_string_equal(str_at(kid, "url", NULL), want_url);
		assert_string_equal(str_at(kid, "class", NULL), want_class[i]);
		if (fixture_hits(e->ck.fx, path) != 0)
			fail_msg("child %s was loaded (%lu requests for %s)", want_id,
			         fixture_hits(e->ck.fx, path), path);
	}
	assert_int_equal(fixture_hits(e->ck.fx, "/live/"), 1);
	ck_run_release(&r);
	env_close(e);
}

/* wait_for on an element that exists but stays hidden (display:none) never matches:
 * kind selector, the selector named; exit 7. --timeout caps the target's own deadline (30 s
 * by default), so it fails as a selector within it, not as try's timeout. */
static void test_try__wait_for_hidden_is_selector(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	json_t *o;

	env_open(e);
	write_targets(e, TARGETS_KINDS);
	try_run(e, &r, (const char *const[]){ "--id", "hidden", "--timeout", "8", NULL }, 1);
	ck_expect_exit(&r, 7);
	o = line(&r, 0);
	assert_string_equal(str_at(o, "id", NULL), "hidden");
	assert_true(json_is_false(json_object_get(o, "ok")));
	assert_string_equal(str_at(o, "error", "kind"), "selector");
	assert_non_null(strstr(str_at(o, "error", "message"), "#panel"));
	assert_non_null(strstr(str_at(o, "error", "message"), "no visible element matched"));
	assert_null(json_object_get(o, "snapshot"));
	assert_int_equal(fixture_hits(e->ck.fx, "/late-fill"), 1);
	ck_run_release(&r);
	env_close(e);
}

/* Each target, in file order, one line each; the exit code is the first failure's (the
 * 404, http: 5, before the selector's 7). */
static void test_try__each_target_in_order(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	static const char *const ids[] = { "page", "gone", "api", "demo" };

	env_open(e);
	write_targets(e, "{\"targets\": ["
	                 "{\"id\": \"page\", \"adapter\": \"generic\", \"url\": \"@@/static\", "
	                 "\"fields\": {\"t\": {\"selector\": \"title\"}}},"
	                 "{\"id\": \"gone\", \"adapter\": \"generic\", \"url\": \"@@/status/404\", "
	                 "\"fields\": {\"t\": {\"selector\": \"title\"}}},"
	                 "{\"id\": \"api\", \"adapter\": \"jsonapi\", \"url\": \"@@/json\", "
	                 "\"fields\": {\"n\": {\"pointer\": \"/n\"}}},"
	                 "{\"id\": \"demo\", \"adapter\": \"livescore\", \"url\": \"@@/live/\", "
	                 "\"discover\": true}]}");
	try_run(e, &r, NULL, 1);
	ck_expect_exit(&r, 5);
	assert_int_equal(json_array_size(r.json), 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(str_at(line(&r, i), "id", NULL), ids[i]);
	assert_true(json_is_true(json_object_get(line(&r, 0), "ok")));
	assert_string_equal(str_at(line(&r, 0), "snapshot", "target"), "page");
	assert_string_equal(str_at(line(&r, 1), "error", "kind"), "http");
	assert_non_null(strstr(str_at(line(&r, 1), "error", "message"), "404"));
	assert_true(json_is_true(json_object_get(line(&r, 2), "ok")));
	assert_true(json_array_size(json_object_get(line(&r, 3), "discovered")) > 0);
	assert_int_equal(fixture_hits(e->ck.fx, "/live/match/1"), 0);
	ck_run_release(&r);
	env_close(e);
}

/* --id naming no target: exit 2, the message names the id; nothing is run. */
static void test_try__unknown_id(void **state)
{
	env_t *e = *state;
	ck_run_t r;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--id", "nosuchtarget", NULL }, 0);
	ck_expect_exit(&r, 2);
	assert_true(r.out.len == 0);
	assert_non_null(strstr(r.err.buf, "nosuchtarget"));
	assert_non_null(strstr(r.err.buf, "page")); /* the ids it has */
	assert_int_equal(fixture_hits(e->ck.fx, NULL), 0);
	ck_run_release(&r);
	env_close(e);
}

/* An invalid targets file: exit 2 with every error listed, nothing run. */
static void test_try__invalid_targets_file(void **state)
{
	env_t *e = *state;
	ck_run_t r;

	env_open(e);
	write_targets(e, "{\"targets\": ["
	                 "{\"id\": \"a\", \"adapter\": \"generic\", \"url\": \"@@/static\", "
	                 "\"class\": \"sometimes\", \"fields\": {\"t\": {\"selector\": \"title\"}}},"
	                 "{\"id\": \"b\", \"adapter\": \"nosuchadapter\", \"url\": \"@@/static\"},"
	                 "{\"id\": \"c\", \"adapter\": \"jsonapi\", \"url\": \"@@/json\", "
	                 "\"interval_seconds\": \"5s\", \"fields\": {\"n\": {\"pointer\": \"/n\"}}}]}");
	try_run(e, &r, NULL, 0);
	ck_expect_exit(&r, 2);
	assert_true(r.out.len == 0);
	assert_non_null(strstr(r.err.buf, "3 error(s)"));
	assert_non_null(strstr(r.err.buf, "sometimes"));
	assert_non_null(strstr(r.err.buf, "nosuchadapter"));
	assert_non_null(strstr(r.err.buf, "5s"));
	assert_int_equal(fixture_hits(e->ck.fx, NULL), 0);
	ck_run_release(&r);
	env_close(e);
}

/* The target policy against the fixture on 127.0.0.1: under TARGET_DENY=127.0.0.0/8 the
 * target is refused at parse (exit 2, the URL and the rule named); a name that resolves
 * to a denied address ("localhost") passes the parse and fails its run before any
 * connection; the fixture sees no request either time. */
static void test_try__target_policy(void **state)
{
	env_t *e = *state;
	ck_run_t r;
	char base[128], text[512];
	int port = 0;

	env_open(e);
	write_targets(e, "[{\"id\": \"api\", \"adapter\": \"jsonapi\", \"url\": \"@@/json\", "
	                 "\"fields\": {\"n\": {\"pointer\": \"/n\"}}}]");
	setenv("TARGET_DENY", "127.0.0.0/8", 1);
	try_run(e, &r, NULL, 0);
	ck_expect_exit(&r, 2);
	if (!r.err.buf || !strstr(r.err.buf, "is refused by the target policy: denied by TARGET_DENY entry "
	                       "\"127.0.0.0/8\"") ||
	    !strstr(r.err.buf, "/json\""))
	{
		ck_run_dump(&r);
		fail_msg("no policy error");
	}
	ck_run_release(&r);

	fixture_url(e->ck.fx, NULL, base, sizeof base);
	assert_int_equal(sscanf(base, "http://127.0.0.1:%d", &port), 1);
	snprintf(text, sizeof text,
	         "[{\"id\": \"api\", \"adapter\": \"jsonapi\", "
	         "\"url\": \"http://localhost:%d/json\", "
	         "\"fields\": {\"n\": {\"pointer\": \"/n\"}}}]",
	         port);
	write_targets(e, text);
	setenv("TARGET_DENY", "127.0.0.0/8,::1/128", 1);
	try_run(e, &r, NULL, 1);
	unsetenv("TARGET_DENY");
	ck_expect_exit(&r, 4);
	if (!r.out.buf || !strstr(r.out.buf, "refused by the target policy: the host's address ") ||
	    !strstr(r.out.buf, "is denied by TARGET_DENY entry"))
	{
		ck_run_dump(&r);
		fail_msg("no policy error in the result");
	}
	assert_int_equal(fixture_hits(e->ck.fx, NULL), 0);
	ck_run_release(&r);
	env_close(e);
}

/* Usage errors and --help. */
static void test_try__usage(void **state)
{
	env_t *e = *state;
	ck_run_t r;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--timeout", "0", NULL }, 0);
	ck_expect_exit(&r, 2);
	assert_non_null(strstr(r.err.buf, "--timeout '0'"));
	ck_run_release(&r);
	try_run(e, &r, (const char *const[]){ "--frobnicate", NULL }, 0);
	ck_expect_exit(&r, 2);
	assert_non_null(strstr(r.err.buf, "--frobnicate"));
	ck_run_release(&r);
	try_run(e, &r, (const char *const[]){ "--help", NULL }, 0);
	ck_expect_exit(&r, 0);
	assert_non_null(strstr(r.out.buf, "usage: cdpilot try"));
	ck_run_release(&r);
	env_close(e);
}

int main(int argc, char **argv)
{
#define T(name) cmocka_unit_test_setup_teardown(name, env_setup, ck_teardown)
	const struct CMUnitTest tests[] = {
		T(test_try__target_policy),
		T(test_try__usage),
		T(test_try__unknown_id),
		T(test_try__invalid_targets_file),
		T(test_try__generic_ok),
		T(test_try__selector_never_matches),
		T(test_try__jsonapi_needs_no_browser),
		T(test_try__discovery_lists_children_unscraped),
		T(test_try__each_target_in_order),
		T(test_try__script_ok),
		T(test_try__script_throws),
		T(test_try__required_click_fails_as_action),
		T(test_try__optional_consent_then_read),
		T(test_try__links_discovery_lists_children_unscraped),
		T(test_try__wait_for_hidden_is_selector),
	};
	char err[256];

	(void)argc;
	(void)argv;
	if (log_init_from_env(err, sizeof err) != 0 || !getenv("LOG_LEVEL"))
		log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	tu_warm_up_libuv(); /* before the first fd baseline */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
