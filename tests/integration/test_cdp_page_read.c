/*
 * Integration tests for the composed read, cdp_page_read() (navigate, wait for a selector,
 * evaluate, as one operation), against the real Chromium and the in-process fixture server:
 * a read that succeeds (and the page refusing other work while it runs), an HTTP error page,
 * a wait that times out at its own cap or the read's deadline, an exception in the script,
 * and the page closed mid-read. Each case's state is a pagekit (tests/support/pagekit.h):
 * its own browser, and the teardown audit (loop closes, no fd and no Chromium process left).
 * Split from test_cdp_page.c (issue 14: no file over ~700 lines).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_page.h"
#include "tests/fixture/fixture.h"
#include "tests/support/pagekit.h"
#include "tests/support/testutil.h"

static void on_page_closed(void *ud)
{
	(*(int *)ud)++;
}

/* The outcome of one read, copied out of its callback. */
typedef struct read_res {
	int done;
	int calls;
	cdp_read_step_t failed;
	int status;
	int not_started;
	char why[2048];
	int nav_status;
	long http_status;
	char final_url[1024];
	json_t *value;
	cdp_read_step_t step_in_cb; /* cdp_page_read_step() inside the callback */
} read_res_t;

static void read_res_reset(read_res_t *r)
{
	json_decref(r->value);
	memset(r, 0, sizeof *r);
}

static void on_read(cdp_page_t *page, const cdp_read_result_t *res, void *ud)
{
	read_res_t *r = ud;

	r->calls++;
	r->done = 1;
	r->failed = res->failed;
	r->status = res->status;
	r->not_started = res->not_started;
	assert_non_null(res->why);
	assert_non_null(res->nav.final_url);
	assert_non_null(res->nav.message);
	snprintf(r->why, sizeof r->why, "%s", res->why);
	r->nav_status = res->nav.status;
	r->http_status = res->nav.http_status;
	snprintf(r->final_url, sizeof r->final_url, "%s", res->nav.final_url);
	r->value = res->value ? json_incref(res->value) : NULL;
	r->step_in_cb = cdp_page_read_step(page);
	if (res->failed == CDP_READ_NONE)
		assert_int_equal(res->status, 0);
	else
		assert_int_not_equal(res->status, 0);
}

/* The callback of an operation that must be refused at once. */
static void on_eval_refused(cdp_page_t *page, int status, json_t *value, const char *why,
                            void *ud)
{
	fail_msg("a refused evaluation called back: %s", why);
}

static void read_page(pagekit_t *k, cdp_page_t *p, const cdp_read_req_t *req, read_res_t *r)
{
	read_res_reset(r);
	assert_int_equal(cdp_page_read(p, req, on_read, r), 0);
	assert_true(tu_run_until(&k->loop, &r->done, PK_WAIT_MS));
	assert_int_equal(r->calls, 1);
	assert_int_equal(r->step_in_cb, CDP_READ_NONE);
}

/* Navigate, wait and evaluate in one read; while it runs the page takes no other work. */
static void test_cdp_page__read_success(void **state)
{
	pagekit_t *k = *state;
	read_res_t r = { 0 };
	char url[256];
	cdp_read_req_t req = { .wait_for = "#out", .expression = "window.renderedValue",
		               .timeout_ms = 10000 };
	cdp_page_t *p;

	pk_open(k, 1);
	p = pk_new_page(k);
	fixture_url(k->fx, "/js", url, sizeof url);
	req.url = url;
	assert_int_equal(cdp_page_read(p, &req, on_read, &r), 0);
	assert_int_equal(cdp_page_read_step(p), CDP_READ_NAV);
	assert_int_equal(cdp_page_evaluate(p, "1", 1000, on_eval_refused, NULL), -EBUSY);
	assert_int_equal(cdp_page_read(p, &req, on_read, &r), -EBUSY);
	assert_true(tu_run_until(&k->loop, &r.done, PK_WAIT_MS));
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.failed, CDP_READ_NONE);
	assert_string_equal(r.why, "");
	assert_int_equal(r.http_status, 200);
	assert_string_equal(r.final_url, url);
	assert_true(json_is_integer(r.value));
	assert_int_equal(json_integer_value(r.value), 42);
	assert_int_equal(cdp_page_read_step(p), CDP_READ_NONE);

	/* an evaluation alone reads the page as it is; nothing asked for is refused */
	read_page(k, p, &(cdp_read_req_t){ .expression = "document.querySelector('#out')"
	                                                 ".textContent" },
	          &r);
	assert_int_equal(r.failed, CDP_READ_NONE);
	assert_string_equal(json_string_value(r.value), "rendered by js");
	assert_int_equal(r.http_status, 0);
	assert_string_equal(r.final_url, "");
	assert_int_equal(cdp_page_read(p, &(cdp_read_req_t){ .wait_for = "" }, on_read, &r),
	                 -EINVAL);

	read_res_reset(&r);
	pk_close_page(k, p);
	pk_close(k);
	pk_finish(k);
}

/* An HTTP error page ends the read at the navigation; the page stays usable. */
static void test_cdp_page__read_http_error(void **state)
{
	pagekit_t *k = *state;
	read_res_t r = { 0 };
	char url[256];
	cdp_read_req_t req = { .wait_for = "body", .expression = "1", .timeout_ms = 10000 };
	cdp_page_t *p;

	pk_open(k, 1);
	p = pk_new_page(k);
	fixture_url(k->fx, "/status/404", url, sizeof url);
	req.url = url;
	read_page(k, p, &req, &r);
	assert_int_equal(r.failed, CDP_READ_NAV);
	assert_int_equal(r.status, CDP_EHTTP);
	assert_int_equal(r.not_started, 0);
	assert_int_equal(r.nav_status, 0);
	assert_int_equal(r.http_status, 404);
	assert_string_equal(r.why, "HTTP 404");
	assert_null(r.value);
	read_page(k, p, &(cdp_read_req_t){ .expression = "1+1" }, &r);
	assert_int_equal(r.failed, CDP_READ_NONE);
	assert_int_equal(json_integer_value(r.value), 2);

	read_res_reset(&r);
	pk_close_page(k, p);
	pk_close(k);
	pk_finish(k);
}

/* A selector that never matches fails the wait at its own cap, or at the read's deadline;
 * the expression is not evaluated. */
static void test_cdp_page__read_wait_timeout(void **state)
{
	pagekit_t *k = *state;
	read_res_t r = { 0 };
	char url[256];
	cdp_read_req_t req = { .wait_for = "#nope", .expression = "window.evaluated = 1",
		               .timeout_ms = 10000, .wait_timeout_ms = 400 };
	cdp_page_t *p;
	uint64_t t0, dt;

	pk_open(k, 1);
	p = pk_new_page(k);
	fixture_url(k->fx, "/static", url, sizeof url);
	req.url = url;
	t0 = tu_now_ms();
	read_page(k, p, &req, &r);
	dt = tu_now_ms() - t0;
	print_message("a read with a 400 ms wait cap ended after %llu ms\n",
	              (unsigned long long)dt);
	assert_int_equal(r.failed, CDP_READ_WAIT);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_non_null(strstr(r.why, "matched within 0.4 s"));
	assert_int_equal(r.http_status, 200);
	assert_string_equal(r.final_url, url);
	assert_true(dt < 10000);

	/* no cap: the whole read's deadline bounds the wait */
	req.url = NULL;
	req.wait_timeout_ms = 0;
	req.timeout_ms = 300;
	t0 = tu_now_ms();
	read_page(k, p, &req, &r);
	dt = tu_now_ms() - t0;
	assert_int_equal(r.failed, CDP_READ_WAIT);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_true(dt >= 290 && dt < 10000);
	read_page(k, p, &(cdp_read_req_t){ .expression = "window.evaluated === undefined" }, &r);
	assert_true(json_is_true(r.value));

	read_res_reset(&r);
	pk_close_page(k, p);
	pk_close(k);
	pk_finish(k);
}

/* A script that throws fails the read at the evaluation with the exception's text. */
static void test_cdp_page__read_eval_exception(void **state)
{
	pagekit_t *k = *state;
	read_res_t r = { 0 };
	char url[256];
	cdp_read_req_t req = { .wait_for = "#title", .expression = "throw new Error('boom')",
		               .timeout_ms = 10000 };
	cdp_page_t *p;

	pk_open(k, 1);
	p = pk_new_page(k);
	fixture_url(k->fx, "/static", url, sizeof url);
	req.url = url;
	read_page(k, p, &req, &r);
	assert_int_equal(r.failed, CDP_READ_EVAL);
	assert_int_equal(r.status, CDP_EEXCEPTION);
	assert_int_equal(r.not_started, 0);
	assert_non_null(strstr(r.why, "boom"));
	assert_null(r.value);
	assert_int_equal(r.http_status, 200);

	read_res_reset(&r);
	pk_close_page(k, p);
	pk_close(k);
	pk_finish(k);
}

/* Starts a read on p and runs the loop until it reaches step. */
static void read_until_step(pagekit_t *k, cdp_page_t *p, const cdp_read_req_t *req,
                            cdp_read_step_t step, read_res_t *r)
{
	uint64_t t0 = tu_now_ms();

	read_res_reset(r);
	assert_int_equal(cdp_page_read(p, req, on_read, r), 0);
	while (cdp_page_read_step(p) != step && !r->done && tu_now_ms() - t0 < PK_WAIT_MS)
		uv_run(&k->loop, UV_RUN_ONCE);
	assert_int_equal(r->calls, 0);
	assert_int_equal(cdp_page_read_step(p), step);
}

/* Closing the page mid-read (navigating, or waiting) calls back once, with -ECANCELED
 * before cdp_page_close() returns, and starts no later step. */
static void test_cdp_page__read_closed_mid_read(void **state)
{
	pagekit_t *k = *state;
	read_res_t r = { 0 };
	char url[256];
	cdp_read_req_t req = { .wait_for = "#nope", .expression = "1", .timeout_ms = 20000 };
	cdp_page_t *p;
	int closed = 0;

	pk_open(k, 1);
	p = pk_new_page(k);
	fixture_url(k->fx, "/hang", url, sizeof url);
	req.url = url;
	read_until_step(k, p, &req, CDP_READ_NAV, &r);
	uv_run(&k->loop, UV_RUN_NOWAIT); /* Page.navigate goes out */
	cdp_page_close(p, on_page_closed, &closed);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.failed, CDP_READ_NAV);
	assert_int_equal(r.status, -ECANCELED);
	assert_int_equal(r.nav_status, -ECANCELED);
	assert_true(tu_run_until(&k->loop, &closed, PK_WAIT_MS));
	assert_int_equal(r.calls, 1);

	p = pk_new_page(k);
	fixture_url(k->fx, "/static", url, sizeof url);
	read_until_step(k, p, &req, CDP_READ_WAIT, &r);
	closed = 0;
	cdp_page_close(p, on_page_closed, &closed);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.failed, CDP_READ_WAIT);
	assert_int_equal(r.status, -ECANCELED);
	assert_int_equal(r.http_status, 200);
	assert_true(tu_run_until(&k->loop, &closed, PK_WAIT_MS));
	assert_int_equal(r.calls, 1);

	read_res_reset(&r);
	pk_close(k);
	pk_finish(k);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cdp_page__read_success, pk_setup,
		                                pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__read_http_error, pk_setup,
		                                pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__read_wait_timeout, pk_setup,
		                                pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__read_eval_exception, pk_setup,
		                                pk_teardown),
		cmocka_unit_test_setup_teardown(test_cdp_page__read_closed_mid_read, pk_setup,
		                                pk_teardown),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
