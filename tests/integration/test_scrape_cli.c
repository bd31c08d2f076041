/*
 * Integration tests for the `cdpilot scrape` command: the real binary ($CDPILOT_BIN) is
 * spawned with uv_spawn against the fixture server running in this process on the same
 * loop; its stdout (one JSON object) and stderr are captured through uv pipes. Checks the
 * success output, the screenshot file, every failure kind with its exit code, usage
 * errors, --version, and SIGTERM mid-run. After each run: no Chromium process and no
 * Chromium user-data-dir left behind.
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
#include "tests/support/testutil.h"
#include "util/log.h"

#define OUT_MAX (1024 * 1024)
#define UDD_GLOB "/tmp/cdpilot-chromium-*"

typedef struct capture {
	uv_pipe_t pipe;
	char *buf;
	size_t len;
	int eof;
} capture_t;

typedef struct run {
	uv_loop_t *loop;
	uv_process_t proc;
	capture_t out, err;
	int exited;
	int64_t exit_status;
	int term_signal;
	int closed; /* handles closed */
	json_t *json;
	uint64_t elapsed_ms;
} run_t;

typedef struct env {
	uv_loop_t loop;
	fixture_t *fx;
	int fx_closed;
	int fds_before, chrom_before, udd_before;
	int finished; /* env_close() completed */
} env_t;

/* ---- environment ---- */

static int udd_count(void)
{
	glob_t g;
	int n = 0;

	if (glob(UDD_GLOB, GLOB_NOSORT, NULL, &g) == 0)
		n = (int)g.gl_pathc;
	globfree(&g);
	return n;
}

static void on_fx_closed(void *ud)
{
	((env_t *)ud)->fx_closed = 1;
}

/* The env lives on the heap (tu_state_alloc: a failed test's env is kept, not freed). */
static int env_setup(void **state)
{
	return tu_state_alloc(state, sizeof(env_t));
}

static int env_teardown(void **state)
{
	return tu_state_release(state, ((env_t *)*state)->finished);
}

static void env_open(env_t *e)
{
	memset(e, 0, sizeof *e);
	e->fds_before = tu_fd_count();
	e->chrom_before = tu_chromium_count();
	e->udd_before = udd_count();
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->fx = fixture_new(&e->loop, NULL, 0);
	assert_non_null(e->fx);
}

static void env_close(env_t *e)
{
	fixture_close(e->fx, on_fx_closed, e);
	assert_true(tu_run_until(&e->loop, &e->fx_closed, 5000));
	tu_loop_finish(&e->loop);
	assert_int_equal(tu_fd_count(), e->fds_before);
	e->finished = 1;
}

/* ---- running the binary ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char slab[65536];
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	capture_t *c = s->data;

	if (n < 0) {
		c->eof = 1;
		uv_read_stop(s);
		return;
	}
	if (n == 0)
		return;
	assert_true(c->len + (size_t)n < OUT_MAX);
	c->buf = realloc(c->buf, c->len + (size_t)n + 1);
	assert_non_null(c->buf);
	memcpy(c->buf + c->len, buf->base, (size_t)n);
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	run_t *r = p->data;

	r->exited = 1;
	r->exit_status = status;
	r->term_signal = sig;
}

static void on_closed(uv_handle_t *h)
{
	((run_t *)h->data)->closed++;
}

/* Spawns cdpilot with args (NULL-terminated, without argv[0]); does not wait. */
static void run_start(run_t *r, uv_loop_t *loop, const char *const *args)
{
	const char *bin = getenv("CDPILOT_BIN");
	char *argv[32];
	uv_process_options_t o;
	uv_stdio_container_t stdio[3];
	int n = 0, rc;

	if (!bin)
		fail_msg("CDPILOT_BIN is not set (run through ctest)");
	memset(r, 0, sizeof *r);
	r->loop = loop;
	argv[n++] = (char *)bin;
	for (; *args && n < 31; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	assert_int_equal(uv_pipe_init(loop, &r->out.pipe, 0), 0);
	assert_int_equal(uv_pipe_init(loop, &r->err.pipe, 0), 0);
	r->out.pipe.data = &r->out;
	r->err.pipe.data = &r->err;
	memset(&o, 0, sizeof o);
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&r->out.pipe;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&r->err.pipe;
	o.file = bin;
	o.args = argv;
	o.exit_cb = on_exit_cb;
	o.stdio = stdio;
	o.stdio_count = 3;
	r->proc.data = r;
	rc = uv_spawn(loop, &r->proc, &o);
	if (rc != 0)
		fail_msg("cannot spawn %s: %s", bin, uv_strerror(rc));
	assert_int_equal(uv_read_start((uv_stream_t *)&r->out.pipe, on_alloc, on_read), 0);
	assert_int_equal(uv_read_start((uv_stream_t *)&r->err.pipe, on_alloc, on_read), 0);
}

/* Shows what the run printed (for a failing check). */
static void run_dump(const run_t *r)
{
	print_message("--- cdpilot exit %lld, signal %d; stderr:\n%s--- stdout:\n%s",
	              (long long)r->exit_status, r->term_signal, r->err.buf ? r->err.buf : "",
	              r->out.buf ? r->out.buf : "");
}

static void expect_exit(const run_t *r, int code)
{
	if (r->term_signal != 0 || r->exit_status != code)
		run_dump(r);
	assert_int_equal(r->term_signal, 0);
	assert_int_equal(r->exit_status, code);
}

/* Waits for exit and both pipes' EOF, closes the handles, parses stdout if asked to. */
static void run_finish(run_t *r, uint64_t timeout_ms, int expect_json)
{
	uint64_t end = tu_now_ms() + timeout_ms, t0 = tu_now_ms();
	json_error_t jerr;

	while ((!r->exited || !r->out.eof || !r->err.eof) && tu_now_ms() < end)
		uv_run(r->loop, UV_RUN_ONCE);
	r->elapsed_ms = tu_now_ms() - t0;
	if (!r->exited) {
		uv_process_kill(&r->proc, SIGKILL);
		while (!r->exited)
			uv_run(r->loop, UV_RUN_ONCE);
	}
	r->proc.data = r->out.pipe.data = r->err.pipe.data = r;
	uv_close((uv_handle_t *)&r->proc, on_closed);
	uv_close((uv_handle_t *)&r->out.pipe, on_closed);
	uv_close((uv_handle_t *)&r->err.pipe, on_closed);
	while (r->closed < 3)
		uv_run(r->loop, UV_RUN_ONCE);
	assert_true(r->out.eof && r->err.eof);
	if (!expect_json)
		return;
	if (!r->out.buf)
		run_dump(r);
	assert_non_null(r->out.buf);
	/* exactly one JSON object, on one line */
	assert_non_null(strchr(r->out.buf, '\n'));
	if (strchr(r->out.buf, '\n') != r->out.buf + r->out.len - 1)
		run_dump(r);
	assert_true(strchr(r->out.buf, '\n') == r->out.buf + r->out.len - 1);
	r->json = json_loadb(r->out.buf, r->out.len, 0, &jerr);
	if (!r->json)
		fail_msg("stdout is not one JSON object: %s", jerr.text);
	assert_true(json_is_object(r->json));
}

static void run_release(run_t *r)
{
	json_decref(r->json);
	free(r->out.buf);
	free(r->err.buf);
	memset(r, 0, sizeof *r);
}

/* Checks that the run left no Chromium and no user-data-dir behind. */
static void audit_after(env_t *e, const run_t *r)
{
	const char *p = r->err.buf;
	int named = 0;

	/* every user-data-dir the run named in its log: no process uses it, it is gone */
	while (p && (p = strstr(p, "/tmp/cdpilot-chromium-")) != NULL) {
		char path[256];
		size_t n = strcspn(p, " \n\t,;'\")");
		snprintf(path, sizeof path, "%.*s", (int)n, p);
		if (tu_wait_procs_with_arg(path, 5000) != 0)
			fail_msg("Chromium processes of %s were left behind", path);
		if (tu_path_exists(path))
			fail_msg("user-data-dir %s was left behind", path);
		named++;
		p += n;
	}
	/* the run's own teardown audit (uv_loop_close() == 0, no handle left) */
	if (r->err.buf && (strstr(r->err.buf, "did not close cleanly") ||
	                   strstr(r->err.buf, "still open after the run")))
		fail_msg("the run did not tear down cleanly:\n%s", r->err.buf);
	if (!named)
		print_message("note: the run's log named no user-data-dir (LOG_LEVEL?)\n");
	tu_report_chromium_count(e->chrom_before);
	if (udd_count() > e->udd_before)
		print_message("note: %d " UDD_GLOB " dirs now, %d at the start (other runs?)\n",
		              udd_count(), e->udd_before);
}

static void scrape(env_t *e, run_t *r, const char *const *args, uint64_t timeout_ms)
{
	run_start(r, &e->loop, args);
	run_finish(r, timeout_ms, 1);
	audit_after(e, r);
}

static const char *error_kind(const run_t *r)
{
	json_t *k = json_object_get(json_object_get(r->json, "error"), "kind");
	return json_is_string(k) ? json_string_value(k) : "(none)";
}

static const char *error_message(const run_t *r)
{
	json_t *m = json_object_get(json_object_get(r->json, "error"), "message");
	return json_is_string(m) ? json_string_value(m) : "";
}

static void expect_failure(const run_t *r, const char *kind, int code)
{
	expect_exit(r, code);
	assert_string_equal(error_kind(r), kind);
	assert_true(json_is_string(json_object_get(r->json, "url")));
	assert_true(strlen(error_message(r)) > 0);
	assert_null(json_object_get(r->json, "data"));
}

/* ---- tests ---- */

static void test_scrape_cli__js_page_with_wait_for(void **state)
{
	env_t *e = *state;
	run_t r;
	char url[256];
	json_t *data, *timings;

	env_open(e);
	fixture_url(e->fx, "/js", url, sizeof url);
	scrape(e, &r, (const char *const[]){ "scrape", url, "--wait-for", "#out", NULL }, 60000);
	expect_exit(&r, 0);
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
	run_release(&r);
	env_close(e);
}

static void test_scrape_cli__screenshot_written(void **state)
{
	static const unsigned char sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	env_t *e = *state;
	run_t r;
	char url[256], dir[] = "/tmp/test_scrape_cli.XXXXXX", png[300];
	unsigned char head[8] = { 0 };
	FILE *f;

	env_open(e);
	assert_non_null(mkdtemp(dir));
	snprintf(png, sizeof png, "%s/shot.png", dir);
	fixture_url(e->fx, "/static", url, sizeof url);
	scrape(e, &r,
	       (const char *const[]){ "scrape", url, "--screenshot", png, "--extract",
	                              "document.querySelector('#msg').textContent", NULL },
	       60000);
	expect_exit(&r, 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "data")), "static content");
	f = fopen(png, "rb");
	assert_non_null(f);
	assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
	fclose(f);
	assert_memory_equal(head, sig, sizeof sig);
	run_release(&r);
	assert_int_equal(tu_rm_rf(dir), 0);
	env_close(e);
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
static uint64_t scrape_fails(env_t *e, const failing_run_t *c)
{
	run_t r;
	char url[256];
	const char *args[10] = { "scrape", url };
	size_t n = 2;
	uint64_t elapsed;

	if (c->path) {
		env_open(e);
		fixture_url(e->fx, c->path, url, sizeof url);
	} else {
		int port = tu_unused_port();
		assert_true(port > 0);
		env_open(e);
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
	run_release(&r);
	env_close(e);
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
	env_t *e = *state;
	run_t r;
	char url[256];
	uint64_t end;

	env_open(e);
	fixture_url(e->fx, "/hang", url, sizeof url);
	run_start(&r, &e->loop, (const char *const[]){ "scrape", url, "--timeout", "60", NULL });
	/* wait until the browser is up and the page is loading */
	end = tu_now_ms() + 30000;
	while (fixture_hits(e->fx, "/hang") == 0 && !r.exited && tu_now_ms() < end)
		uv_run(&e->loop, UV_RUN_ONCE);
	assert_true(fixture_hits(e->fx, "/hang") > 0);
	assert_int_equal(uv_process_kill(&r.proc, SIGTERM), 0);
	run_finish(&r, 30000, 1);
	audit_after(e, &r);
	expect_failure(&r, "internal", 10);
	assert_non_null(strstr(error_message(&r), "signal"));
	run_release(&r);
	env_close(e);
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
	env_t *e = *state;
	run_t r;

	env_open(e);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		run_start(&r, &e->loop, cases[i].args);
		run_finish(&r, 10000, 0);
		expect_exit(&r, 2);
		assert_int_equal(r.out.len, 0);
		assert_non_null(r.err.buf);
		/* one line, naming the offending flag or value */
		assert_true(strchr(r.err.buf, '\n') == r.err.buf + r.err.len - 1);
		if (!strstr(r.err.buf, cases[i].named))
			fail_msg("stderr does not name '%s': %s", cases[i].named, r.err.buf);
		run_release(&r);
	}
	env_close(e);
}

/* Runs cdpilot with args to its end, expecting exit 0 and no JSON; release r after. */
static void run_ok(env_t *e, run_t *r, const char *const *args)
{
	run_start(r, &e->loop, args);
	run_finish(r, 10000, 0);
	assert_int_equal(r->exit_status, 0);
}

static void test_scrape_cli__version_and_help(void **state)
{
	env_t *e = *state;
	run_t r;

	env_open(e);
	run_ok(e, &r, (const char *const[]){ "--version", NULL });
	assert_string_equal(r.out.buf, "cdpilot " CDPILOT_VERSION "\n");
	run_release(&r);

	run_ok(e, &r, (const char *const[]){ "scrape", "--help", NULL });
	assert_non_null(strstr(r.out.buf, "--wait-for"));
	assert_non_null(strstr(r.out.buf, "selector"));
	run_release(&r);

	run_ok(e, &r, (const char *const[]){ "--help", NULL });
	assert_non_null(strstr(r.out.buf, "exit codes"));
	run_release(&r);
	env_close(e);
}

/* A page that calls confirm() after its load event: the dialog is dismissed as the
 * daemon's pages dismiss it, and the page's own reaction is what scrape reads. Without
 * the dismissal the page would block in confirm() and the wait would time out (7). */
static void test_scrape_cli__confirm_after_load_is_dismissed(void **state)
{
	env_t *e = *state;
	run_t r;
	char url[256];

	env_open(e);
	fixture_url(e->fx, "/confirm-after-load", url, sizeof url);
	scrape(e, &r,
	       (const char *const[]){ "scrape", url, "--wait-for", "#answer.done", "--extract",
	                              "document.getElementById('answer').textContent",
	                              "--timeout", "60", NULL },
	       120000);
	expect_exit(&r, 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "data")), "cancelled");
	run_release(&r);
	env_close(e);
}

/* Popups (window.open, a target=_blank link) and a download from the load event: the
 * scrape finishes normally, and the download is denied (the file is never fetched to
 * the end by a browser that kept it: no request for it is even needed). */
static void test_scrape_cli__popups_and_download_finish(void **state)
{
	env_t *e = *state;
	run_t r;
	char url[256];

	env_open(e);
	fixture_url(e->fx, "/popups-and-download", url, sizeof url);
	scrape(e, &r,
	       (const char *const[]){ "scrape", url, "--wait-for", "#msg", "--extract",
	                              "document.getElementById('msg').textContent",
	                              "--timeout", "60", NULL },
	       120000);
	expect_exit(&r, 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "data")), "done");
	assert_string_equal(json_string_value(json_object_get(r.json, "title")), "Popups");
	run_release(&r);
	env_close(e);
}

/* --wait-state takes visible or attached only. */
static void test_scrape_cli__wait_state_values(void **state)
{
	env_t *e = *state;
	run_t r;

	env_open(e);
	run_start(&r, &e->loop,
	          (const char *const[]){ "scrape", "about:blank", "--wait-state", "shown", NULL });
	run_finish(&r, 30000, 0);
	expect_exit(&r, 2);
	assert_non_null(strstr(r.err.buf, "--wait-state 'shown': expected visible or attached"));
	run_release(&r);
	env_close(e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_scrape_cli__version_and_help, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__usage_errors, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__js_page_with_wait_for, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__screenshot_written, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__connection_refused_is_network,
		                                env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__status_404_is_http, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__hang_is_timeout, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__missing_selector_is_selector,
		                                env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__throwing_extract_is_script,
		                                env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__sigterm_cleans_up, env_setup,
		                                env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__confirm_after_load_is_dismissed,
		                                env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__popups_and_download_finish,
		                                env_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_scrape_cli__wait_state_values, env_setup,
		                                env_teardown),
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
