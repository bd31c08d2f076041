/*
 * Integration tests for the `cdpilot scrape` command: the real binary ($CDPILOT_BIN) is
 * spawned with uv_spawn against the fixture server running in this process on the same
 * loop; its stdout (one JSON object) and stderr are captured through uv pipes. Checks the
 * success output, the screenshot file, every failure kind with its exit code, usage
 * errors, --version, and SIGTERM mid-run. After each run: no Chromium process and no
 * Chromium user-data-dir left behind. The process harness is tests/support/clikit.c.
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

static void scrape(ck_env_t *e, ck_run_t *r, const char *const *args, uint64_t timeout_ms)
{
	ck_run_start(r, &e->loop, args);
	ck_run_finish(r, timeout_ms, CK_ONE_OBJECT);
	ck_audit_after(e, r);
}

static const char *error_kind(const ck_run_t *r)
{
	json_t *k = json_object_get(json_object_get(r->json, "error"), "kind");
	return json_is_string(k) ? json_string_value(k) : "(none)";
}

static const char *error_message(const ck_run_t *r)
{
	json_t *m = json_object_get(json_object_get(r->json, "error"), "message");
	return json_is_string(m) ? json_string_value(m) : "";
}

static void expect_failure(const ck_run_t *r, const char *kind, int code)
{
	ck_expect_exit(r, code);
	assert_string_equal(error_kind(r), kind);
	assert_true(json_is_string(json_object_get(r->json, "url")));
	assert_true(strlen(error_message(r)) > 0);
	assert_null(json_object_get(r->json, "data"));
}

/* ---- tests ---- */

static void test_scrape_cli__js_page_with_wait_for(void **state)
{
	ck_env_t *e = *state;
	ck_run_t r;
	char url[256];
	json_t *data, *timings;

	ck_env_open(e);
	fixture_url(e->fx, "/js", url, sizeof url);
	scrape(e, &r, (const char *const[]){ "scrape", url, "--wait-for", "#out", NULL }, 60000);
	ck_expect_exit(&r, 0);
	assert_null(json_object_get(r.json, "error"));
	assert_string_equal(json_string_value(json_object_get(r.json, "url")), url);
	assert_string_equal(json_string_value(json_object_get(r.json, "final_url")), url);
	assert_int_equal(json_integer_value(json_object_get(r.json, "http_status")), 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "title")), "JS page");
	data = json_object_get(r.json, "data");
	assert_true(json_is_object(data));
	assert_non_null(strstr(json_string_value(json_object_get(data, "text")), "rendered by js"));
	timings = json_object_get(r.json, "timings");
	assert_true(json_is_integer(json_object_get(timings, "launch_ms")));
	assert_true(json_is_integer(json_object_get(timings, "navigate_ms")));
	assert_true(json_is_integer(json_object_get(timings, "total_ms")));
	assert_true(json_integer_value(json_object_get(timings, "total_ms")) >=
	            json_integer_value(json_object_get(timings, "navigate_ms")));
	ck_run_release(&r);
	ck_env_close(e);
}

static void test_scrape_cli__screenshot_written(void **state)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	ck_env_t *e = *state;
	ck_run_t r;
	char url[256], dir[] = "/tmp/test_scrape_cli.XXXXXX", png[300];
	unsigned char head[8] = { 0 };
	FILE *f;

	ck_env_open(e);
	assert_non_null(mkdtemp(dir));
	snprintf(png, sizeof png, "%s/shot.png", dir);
	fixture_url(e->fx, "/static", url, sizeof url);
	scrape(e, &r,
	       (const char *const[]){ "scrape", url, "--screenshot", png, "--extract",
	                              "document.querySelector('#msg').textContent", NULL },
	       60000);
	ck_expect_exit(&r, 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "data")), "static content");
	f = fopen(png, "rb");
	assert_non_null(f);
	assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
	fclose(f);
	assert_memory_equal(head, sig, sizeof sig);
	ck_run_release(&r);
	assert_int_equal(tu_rm_rf(dir), 0);
	ck_env_close(e);
}

/* A run that fails: the URL, what is added after it, what the error must say. */
typedef struct failing_run {
	const char *path;         /* on the fixture; NULL: a port nothing listens on */
	const char *args[6];      /* after "scrape URL", NULL-ended */
	const char *kind;         /* error.kind */
	int code;                 /* the exit code */
	const char *message_part; /* in error.message; NULL: not checked */
} failing_run_t;

/* Runs c in a fresh env and checks its failure; returns how long the run took (ms). */
static uint64_t scrape_fails(ck_env_t *e, const failing_run_t *c)
{
	ck_run_t r;
	char url[256];
	const char *args[10] = { "scrape", url };
	size_t n = 2;
	uint64_t elapsed;

	if (c->path) {
		ck_env_open(e);
		fixture_url(e->fx, c->path, url, sizeof url);
	} else {
		int port = tu_unused_port();
		assert_true(port > 0);
		ck_env_open(e);
		snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
	}
	for (size_t i = 0; c->args[i] && n < 9; i++)
		args[n++] = c->args[i];
	args[n] = NULL;
	scrape(e, &r, args, 60000);
	expect_failure(&r, c->kind, c->code);
	if (c->message_part)
		assert_non_null(strstr(error_message(&r), c->message_part));
	elapsed = r.elapsed_ms;
	ck_run_release(&r);
	ck_env_close(e);
	return elapsed;
}

static void test_scrape_cli__connection_refused_is_network(void **state)
{
	static const failing_run_t c = { NULL, { NULL }, "network", 4, "ERR_CONNECTION_REFUSED" };
	scrape_fails(*state, &c);
}

static void test_scrape_cli__status_404_is_http(void **state)
{
	static const failing_run_t c = { "/status/404", { NULL }, "http", 5, "404" };
	scrape_fails(*state, &c);
}

static void test_scrape_cli__hang_is_timeout(void **state)
{
	static const failing_run_t c = { "/hang", { "--timeout", "2", NULL }, "timeout", 6, NULL };
	uint64_t ms = scrape_fails(*state, &c);

	print_message("timed-out run took %llu ms\n", (unsigned long long)ms);
	assert_true(ms >= 2000 && ms < 15000);
}

/* The budget covers launch and load too: under a loaded CI machine (an ASan build, 2 cores)
 * those took over 2 s, so give the selector phase room to be reached. */
static void test_scrape_cli__missing_selector_is_selector(void **state)
{
	static const failing_run_t c = {
		"/static", { "--wait-for", "#nope", "--timeout", "8", NULL }, "selector", 7, "#nope"
	};
	scrape_fails(*state, &c);
}

static void test_scrape_cli__throwing_extract_is_script(void **state)
{
	static const failing_run_t c = {
		"/static", { "--extract", "throw new Error(\"boom\")", NULL }, "script", 8, "boom"
	};
	scrape_fails(*state, &c);
}

static void test_scrape_cli__sigterm_cleans_up(void **state)
{
	ck_env_t *e = *state;
	ck_run_t r;
	char url[256];
	uint64_t end;

	ck_env_open(e);
	fixture_url(e->fx, "/hang", url, sizeof url);
	ck_run_start(&r, &e->loop, (const char *const[]){ "scrape", url, "--timeout", "60", NULL });
	/* wait until the browser is up and the page is loading */
	end = tu_now_ms() + 30000;
	while (fixture_hits(e->fx, "/hang") == 0 && !r.exited && tu_now_ms() < end)
		uv_run(&e->loop, UV_RUN_ONCE);
	assert_true(fixture_hits(e->fx, "/hang") > 0);
	assert_int_equal(uv_process_kill(&r.proc, SIGTERM), 0);
	ck_run_finish(&r, 30000, CK_ONE_OBJECT);
	ck_audit_after(e, &r);
	expect_failure(&r, "internal", 10);
	assert_non_null(strstr(error_message(&r), "signal"));
	ck_run_release(&r);
	ck_env_close(e);
}

static void test_scrape_cli__usage_errors(void **state)
{
	static const struct {
		const char *args[6];
		const char *named; /* must appear on stderr */
	} cases[] = {
		{ { "scrape", "http://127.0.0.1:1/", "--frobnicate", NULL }, "--frobnicate" },
		{ { "scrape", "http://127.0.0.1:1/", "--timeout", "abc", NULL }, "--timeout" },
		{ { "scrape", "http://127.0.0.1:1/", "--timeout", "3601", NULL }, "--timeout" },
		{ { "scrape", "http://127.0.0.1:1/", "--timeout", "-1", NULL }, "--timeout" },
		{ { "scrape", NULL }, "URL" },
		{ { "scrape", "ftp://example.com/", NULL }, "ftp://example.com/" },
		{ { "--bogus", NULL }, "--bogus" },
	};
	ck_env_t *e = *state;
	ck_run_t r;

	ck_env_open(e);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ck_run_start(&r, &e->loop, cases[i].args);
		ck_run_finish(&r, 10000, CK_NO_JSON);
		ck_expect_exit(&r, 2);
		assert_int_equal(r.out.len, 0);
		assert_non_null(r.err.buf);
		/* one line, naming the offending flag or value */
		assert_true(strchr(r.err.buf, '\n') == r.err.buf + r.err.len - 1);
		if (!strstr(r.err.buf, cases[i].named))
			fail_msg("stderr does not name '%s': %s", cases[i].named, r.err.buf);
		ck_run_release(&r);
	}
	ck_env_close(e);
}

/* Runs cdpilot with args to its end, expecting exit 0 and no JSON; release r after. */
static void run_ok(ck_env_t *e, ck_run_t *r, const char *const *args)
{
	ck_run_start(r, &e->loop, args);
	ck_run_finish(r, 10000, CK_NO_JSON);
	assert_int_equal(r->exit_status, 0);
}

static void test_scrape_cli__version_and_help(void **state)
{
	ck_env_t *e = *state;
	ck_run_t r;

	ck_env_open(e);
	run_ok(e, &r, (const char *const[]){ "--version", NULL });
	assert_string_equal(r.out.buf, "cdpilot " CDPILOT_VERSION "\n");
	ck_run_release(&r);

	run_ok(e, &r, (const char *const[]){ "scrape", "--help", NULL });
	assert_non_null(strstr(r.out.buf, "--wait-for"));
	assert_non_null(strstr(r.out.buf, "selector"));
	ck_run_release(&r);

	run_ok(e, &r, (const char *const[]){ "--help", NULL });
	assert_non_null(strstr(r.out.buf, "exit codes"));
	ck_run_release(&r);
	ck_env_close(e);
}

/* A page that calls confirm() after its load event: the dialog is dismissed as the
 * daemon's pages dismiss it, and the page's own reaction is what scrape reads. Without
 * the dismissal the page would block in confirm() and the wait would time out (7). */
static void test_scrape_cli__confirm_after_load_is_dismissed(void **state)
{
	ck_env_t *e = *state;
	ck_run_t r;
	char url[256];

	ck_env_open(e);
	fixture_url(e->fx, "/confirm-after-load", url, sizeof url);
	scrape(e, &r,
	       (const char *const[]){ "scrape", url, "--wait-for", "#answer.done", "--extract",
	                              "document.getElementById('answer').textContent",
	                              "--timeout", "60", NULL },
	       120000);
	ck_expect_exit(&r, 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "data")), "cancelled");
	ck_run_release(&r);
	ck_env_close(e);
}

/* Popups (window.open, a target=_blank link) and a download from the load event: the
 * scrape finishes normally, and the download is denied (the file is never fetched to
 * the end by a browser that kept it: no request for it is even needed). */
static void test_scrape_cli__popups_and_download_finish(void **state)
{
	ck_env_t *e = *state;
	ck_run_t r;
	char url[256];

	ck_env_open(e);
	fixture_url(e->fx, "/popups-and-download", url, sizeof url);
	scrape(e, &r,
	       (const char *const[]){ "scrape", url, "--wait-for", "#msg", "--extract",
	                              "document.getElementById('msg').textContent",
	                              "--timeout", "60", NULL },
	       120000);
	ck_expect_exit(&r, 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "data")), "done");
	assert_string_equal(json_string_value(json_object_get(r.json, "title")), "Popups");
	ck_run_release(&r);
	ck_env_close(e);
}

/* --wait-state takes visible or attached only. */
static void test_scrape_cli__wait_state_values(void **state)
{
	ck_env_t *e = *state;
	ck_run_t r;

	ck_env_open(e);
	ck_run_start(&r, &e->loop,
	          (const char *const[]){ "scrape", "about:blank", "--wait-state", "shown", NULL });
	ck_run_finish(&r, 30000, CK_NO_JSON);
	ck_expect_exit(&r, 2);
	assert_non_null(strstr(r.err.buf, "--wait-state 'shown': expected visible or attached"));
	ck_run_release(&r);
	ck_env_close(e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scrape_cli__version_and_help, ck_setup,
		                                ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__usage_errors, ck_setup,
		                                ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__js_page_with_wait_for, ck_setup,
		                                ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__screenshot_written, ck_setup,
		                                ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__connection_refused_is_network,
		                                ck_setup, ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__status_404_is_http, ck_setup,
		                                ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__hang_is_timeout, ck_setup,
		                                ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__missing_selector_is_selector,
		                                ck_setup, ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__throwing_extract_is_script,
		                                ck_setup, ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__sigterm_cleans_up, ck_setup,
		                                ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__confirm_after_load_is_dismissed,
		                                ck_setup, ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__popups_and_download_finish,
		                                ck_setup, ck_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__wait_state_values, ck_setup,
		                                ck_teardown),
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
