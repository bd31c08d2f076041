/*
 * clikit: running the cdpilot binary from a test, with the fixture in process (see
 * clikit.h).
 */
#include <glob.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/clikit.h"
#include "tests/support/testutil.h"

/* ---- environment ---- */

int ck_udd_count(void)
{
	glob_t g;
	int n = 0;

	if (glob(CK_UDD_GLOB, GLOB_NOSORT, NULL, &g) == 0)
		n = (int)g.gl_pathc;
	globfree(&g);
	return n;
}

static void on_fx_closed(void *ud)
{
	((ck_env_t *)ud)->fx_closed = 1;
}

int ck_setup(void **state)
{
	return tu_state_alloc(state, sizeof(ck_env_t));
}

int ck_teardown(void **state)
{
	return tu_state_release(state, ((ck_env_t *)*state)->finished);
}

void ck_env_open(ck_env_t *e)
{
	memset(e, 0, sizeof *e);
	e->fds_before = tu_fd_count();
	e->chrom_before = tu_chromium_count();
	e->udd_before = ck_udd_count();
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->fx = fixture_new(&e->loop, NULL, 0);
	assert_non_null(e->fx);
}

void ck_env_close(ck_env_t *e)
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
	ck_capture_t *c = s->data;

	if (n < 0) {
		c->eof = 1;
		uv_read_stop(s);
		return;
	}
	if (n == 0)
		return;
	assert_true(c->len + (size_t)n < CK_OUT_MAX);
	c->buf = realloc(c->buf, c->len + (size_t)n + 1);
	assert_non_null(c->buf);
	memcpy(c->buf + c->len, buf->base, (size_t)n);
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	ck_run_t *r = p->data;

	r->exited = 1;
	r->exit_status = status;
	r->term_signal = sig;
}

static void on_closed(uv_handle_t *h)
{
	((ck_run_t *)h->data)->closed++;
}

void ck_run_start(ck_run_t *r, uv_loop_t *loop, const char *const *args)
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

void ck_run_dump(const ck_run_t *r)
{
	print_message("--- cdpilot exit %lld, signal %d; stderr:\n%s--- stdout:\n%s",
	              (long long)r->exit_status, r->term_signal, r->err.buf ? r->err.buf : "",
	              r->out.buf ? r->out.buf : "");
}

void ck_expect_exit(const ck_run_t *r, int code)
{
	if (r->term_signal != 0 || r->exit_status != code)
		ck_run_dump(r);
	assert_int_equal(r->term_signal, 0);
	assert_int_equal(r->exit_status, code);
}

/* Exactly one JSON object, on one line. */
static void parse_one_object(ck_run_t *r)
{
	json_error_t jerr;

	if (!r->out.buf)
		ck_run_dump(r);
	assert_non_null(r->out.buf);
	assert_non_null(strchr(r->out.buf, '\n'));
	if (strchr(r->out.buf, '\n') != r->out.buf + r->out.len - 1)
		ck_run_dump(r);
	assert_true(strchr(r->out.buf, '\n') == r->out.buf + r->out.len - 1);
	r->json = json_loadb(r->out.buf, r->out.len, 0, &jerr);
	if (!r->json)
		fail_msg("stdout is not one JSON object: %s", jerr.text);
	assert_true(json_is_object(r->json));
}

/* One JSON object per line. */
static void parse_lines(ck_run_t *r)
{
	json_error_t jerr;

	r->json = json_array();
	for (const char *p = r->out.buf ? r->out.buf : ""; *p;) {
		size_t n = strcspn(p, "\n");
		json_t *j = json_loadb(p, n, 0, &jerr);
		if (!j || !json_is_object(j)) {
			ck_run_dump(r);
			fail_msg("stdout line is not one JSON object: %s", jerr.text);
		}
		json_array_append_new(r->json, j);
		p += n + (p[n] == '\n');
	}
}

void ck_run_finish(ck_run_t *r, uint64_t timeout_ms, ck_stdout_t expect)
{
	uint64_t end = tu_now_ms() + timeout_ms, t0 = tu_now_ms();

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
	if (expect == CK_ONE_OBJECT)
		parse_one_object(r);
	else if (expect == CK_JSON_LINES)
		parse_lines(r);
}

void ck_run_release(ck_run_t *r)
{
	json_decref(r->json);
	free(r->out.buf);
	free(r->err.buf);
	memset(r, 0, sizeof *r);
}

void ck_audit_after(const ck_env_t *e, const ck_run_t *r)
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
	if (ck_udd_count() > e->udd_before)
		print_message("note: %d " CK_UDD_GLOB " dirs now, %d at the start (other runs?)\n",
		              ck_udd_count(), e->udd_before);
}
