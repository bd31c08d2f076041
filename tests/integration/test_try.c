/*
 * Integration tests for `cdpilot try`: the real binary ($CDPILOT_BIN) on a targets file
 * pointing at the fixture server running in this process (so its request counts tell what
 * the run loaded). One JSON object per target per line on stdout; exit codes as scrape's.
 * After each run: no Chromium process and no user-data-dir left behind. The process
 * harness is test_scrape_cli.c's.
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
	char dir[64];      /* temp dir holding the targets file */
	char targets[128]; /* dir/targets.json */
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
	snprintf(e->dir, sizeof e->dir, "/tmp/cdpilot-test-try-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->targets, sizeof e->targets, "%s/targets.json", e->dir);
}

static void env_close(env_t *e)
{
	fixture_close(e->fx, on_fx_closed, e);
	assert_true(tu_run_until(&e->loop, &e->fx_closed, 5000));
	tu_loop_finish(&e->loop);
	unlink(e->targets);
	rmdir(e->dir);
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
	/* one JSON object per line */
	r->json = json_array();
	for (const char *p = r->out.buf ? r->out.buf : ""; *p;) {
		size_t n = strcspn(p, "\n");
		json_t *j = json_loadb(p, n, 0, &jerr);
		if (!j || !json_is_object(j)) {
			run_dump(r);
			fail_msg("stdout line is not one JSON object: %s", jerr.text);
		}
		json_array_append_new(r->json, j);
		p += n + (p[n] == '\n');
	}
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

/* Writes the targets file: fmt with every "%s" the fixture's base URL. */
static void write_targets(env_t *e, const char *text)
{
	char base[128], *out = NULL;
	size_t n = 0;
	FILE *f;

	fixture_url(e->fx, NULL, base, sizeof base);
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
static void try_run(env_t *e, run_t *r, const char *const *extra, int expect_json)
{
	const char *args[16] = { "try", "--targets", e->targets };
	int n = 3;

	for (; extra && *extra && n < 15; extra++)
		args[n++] = *extra;
	args[n] = NULL;
	run_start(r, &e->loop, args);
	run_finish(r, 240000, expect_json);
	audit_after(e, r);
}

static json_t *line(const run_t *r, size_t i)
{
	if (json_array_size(r->json) <= i)
		run_dump(r);
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

/* ---- tests ---- */

/* A generic target: the snapshot the daemon would write, with timings; exit 0. */
static void test_try__generic_ok(void **state)
{
	env_t *e = *state;
	run_t r;
	json_t *o, *snap;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--id", "page", NULL }, 1);
	expect_exit(&r, 0);
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
	run_release(&r);
	env_close(e);
}

/* A selector that never matches: kind selector, exit 7, the selector named. Alone, so the
 * browser's launch comes before the page's lease and the read's own deadline is the first
 * to pass (not the lease's). */
static void test_try__selector_never_matches(void **state)
{
	env_t *e = *state;
	run_t r;
	json_t *o;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--id", "missing", NULL }, 1);
	expect_exit(&r, 7);
	o = line(&r, 0);
	assert_string_equal(str_at(o, "id", NULL), "missing");
	assert_true(json_is_false(json_object_get(o, "ok")));
	assert_string_equal(str_at(o, "error", "kind"), "selector");
	assert_non_null(strstr(str_at(o, "error", "message"), "#nothing"));
	assert_null(json_object_get(o, "snapshot"));
	run_release(&r);
	env_close(e);
}

/* A jsonapi target is fetched without a browser: Chromium is never launched. */
static void test_try__jsonapi_needs_no_browser(void **state)
{
	env_t *e = *state;
	run_t r;
	json_t *o;

	env_open(e);
	write_targets(e, TARGETS_OK);
	setenv("LOG_LEVEL", "debug", 1);
	try_run(e, &r, (const char *const[]){ "--id", "api", NULL }, 1);
	unsetenv("LOG_LEVEL");
	expect_exit(&r, 0);
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
	assert_int_equal(fixture_hits(e->fx, "/json"), 1);
	run_release(&r);
	env_close(e);
}

/* A discovering target: its children are listed from the runner's table, never loaded. */
static void test_try__discovery_lists_children_unscraped(void **state)
{
	env_t *e = *state;
	run_t r;
	json_t *o, *kids, *kid;
	size_t i;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--id", "demo", NULL }, 1);
	expect_exit(&r, 0);
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
		if (fixture_hits(e->fx, path) != 0)
			fail_msg("child %s was loaded (%lu requests for %s)", want,
			         fixture_hits(e->fx, path), path);
	}
	assert_int_equal(fixture_hits(e->fx, "/live/"), 1);
	run_release(&r);
	env_close(e);
}

/* Each target, in file order, one line each; the exit code is the first failure's (the
 * 404, http: 5, before the selector's 7). */
static void test_try__each_target_in_order(void **state)
{
	env_t *e = *state;
	run_t r;
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
	expect_exit(&r, 5);
	assert_int_equal(json_array_size(r.json), 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(str_at(line(&r, i), "id", NULL), ids[i]);
	assert_true(json_is_true(json_object_get(line(&r, 0), "ok")));
	assert_string_equal(str_at(line(&r, 0), "snapshot", "target"), "page");
	assert_string_equal(str_at(line(&r, 1), "error", "kind"), "http");
	assert_non_null(strstr(str_at(line(&r, 1), "error", "message"), "404"));
	assert_true(json_is_true(json_object_get(line(&r, 2), "ok")));
	assert_true(json_array_size(json_object_get(line(&r, 3), "discovered")) > 0);
	assert_int_equal(fixture_hits(e->fx, "/live/match/1"), 0);
	run_release(&r);
	env_close(e);
}

/* --id naming no target: exit 2, the message names the id; nothing is run. */
static void test_try__unknown_id(void **state)
{
	env_t *e = *state;
	run_t r;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--id", "nosuchtarget", NULL }, 0);
	expect_exit(&r, 2);
	assert_true(r.out.len == 0);
	assert_non_null(strstr(r.err.buf, "nosuchtarget"));
	assert_non_null(strstr(r.err.buf, "page")); /* the ids it has */
	assert_int_equal(fixture_hits(e->fx, NULL), 0);
	run_release(&r);
	env_close(e);
}

/* An invalid targets file: exit 2 with every error listed, nothing run. */
static void test_try__invalid_targets_file(void **state)
{
	env_t *e = *state;
	run_t r;

	env_open(e);
	write_targets(e, "{\"targets\": ["
	                 "{\"id\": \"a\", \"adapter\": \"generic\", \"url\": \"@@/static\", "
	                 "\"class\": \"sometimes\", \"fields\": {\"t\": {\"selector\": \"title\"}}},"
	                 "{\"id\": \"b\", \"adapter\": \"nosuchadapter\", \"url\": \"@@/static\"},"
	                 "{\"id\": \"c\", \"adapter\": \"jsonapi\", \"url\": \"@@/json\", "
	                 "\"interval_seconds\": \"5s\", \"fields\": {\"n\": {\"pointer\": \"/n\"}}}]}");
	try_run(e, &r, NULL, 0);
	expect_exit(&r, 2);
	assert_true(r.out.len == 0);
	assert_non_null(strstr(r.err.buf, "3 error(s)"));
	assert_non_null(strstr(r.err.buf, "sometimes"));
	assert_non_null(strstr(r.err.buf, "nosuchadapter"));
	assert_non_null(strstr(r.err.buf, "5s"));
	assert_int_equal(fixture_hits(e->fx, NULL), 0);
	run_release(&r);
	env_close(e);
}

/* Usage errors and --help. */
static void test_try__usage(void **state)
{
	env_t *e = *state;
	run_t r;

	env_open(e);
	write_targets(e, TARGETS_OK);
	try_run(e, &r, (const char *const[]){ "--timeout", "0", NULL }, 0);
	expect_exit(&r, 2);
	assert_non_null(strstr(r.err.buf, "--timeout '0'"));
	run_release(&r);
	try_run(e, &r, (const char *const[]){ "--frobnicate", NULL }, 0);
	expect_exit(&r, 2);
	assert_non_null(strstr(r.err.buf, "--frobnicate"));
	run_release(&r);
	try_run(e, &r, (const char *const[]){ "--help", NULL }, 0);
	expect_exit(&r, 0);
	assert_non_null(strstr(r.out.buf, "usage: cdpilot try"));
	run_release(&r);
	env_close(e);
}

int main(int argc, char **argv)
{
#define T(name) cmocka_unit_test_setup_teardown(name, env_setup, env_teardown)
	const struct CMUnitTest tests[] = {
		T(test_try__usage),
		T(test_try__unknown_id),
		T(test_try__invalid_targets_file),
		T(test_try__generic_ok),
		T(test_try__selector_never_matches),
		T(test_try__jsonapi_needs_no_browser),
		T(test_try__discovery_lists_children_unscraped),
		T(test_try__each_target_in_order),
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
