/*
 * pagekit: launch and teardown of the loop + fixture + browser harness shared by the
 * page-driving integration tests (see pagekit.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/pagekit.h"
#include "cdp/cdp_err.h"
#include "tests/support/testutil.h"

static void on_ready(browser_t *b, int status, const char *why, void *ud)
{
	pagekit_t *k = ud;

	k->ready = 1;
	k->ready_status = status;
	snprintf(k->ready_why, sizeof k->ready_why, "%s", why);
}

static void on_lost(browser_t *b, int err, const char *why, void *ud)
{
	((pagekit_t *)ud)->lost = 1;
}

static void on_b_closed(browser_t *b, void *ud)
{
	((pagekit_t *)ud)->b_closed = 1;
}

void pk_on_fx_closed(void *ud)
{
	((pagekit_t *)ud)->fx_closed = 1;
}

static void on_page_closed(void *ud)
{
	((pagekit_t *)ud)->page_closed = 1;
}

/* The outcome of one cdp_page_open() of pk_new_page(). */
typedef struct pk_opened {
	int done, status;
	cdp_page_t *page;
	char why[1024];
} pk_opened_t;

static void on_opened(cdp_page_t *page, int status, const char *why, void *ud)
{
	pk_opened_t *o = ud;

	o->done = 1;
	o->status = status;
	o->page = page;
	snprintf(o->why, sizeof o->why, "%s", why);
}

static void on_closed_count(void *ud)
{
	(*(int *)ud)++;
}

static void on_nav(cdp_page_t *page, const cdp_nav_result_t *res, void *ud)
{
	pagekit_t *k = ud;

	k->done = 1;
	k->status = res->status;
	k->http_status = res->http_status;
	snprintf(k->why, sizeof k->why, "%s", res->message);
}

static void on_waited(cdp_page_t *page, int status, const char *why, void *ud)
{
	pagekit_t *k = ud;

	k->done = 1;
	k->status = status;
	snprintf(k->why, sizeof k->why, "%s", why);
}

static void on_eval(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	pagekit_t *k = ud;

	k->done = 1;
	k->status = status;
	k->value = value ? json_incref(value) : NULL;
	snprintf(k->why, sizeof k->why, "%s", why);
}

int pk_setup(void **state)
{
	return tu_state_alloc(state, sizeof(pagekit_t));
}

int pk_teardown(void **state)
{
	return tu_state_release(state, ((pagekit_t *)*state)->finished);
}

void pk_open(pagekit_t *k, int with_browser)
{
	browser_opts_t o;

	if (with_browser)
		tu_require_chromium();
	memset(k, 0, sizeof *k);
	k->fds_before = tu_fd_count();
	k->chrom_before = tu_chromium_count();
	assert_int_equal(uv_loop_init(&k->loop), 0);
	k->fx = fixture_new(&k->loop, NULL, 0);
	assert_non_null(k->fx);
	if (!with_browser)
		return;
	k->ws = cdp_wsctx_new(&k->loop);
	assert_non_null(k->ws);
	browser_opts_init(&o);
	k->b = browser_new(&k->loop, k->ws, &o);
	assert_non_null(k->b);
	assert_int_equal(browser_start(k->b, on_ready, on_lost, k), 0);
	assert_true(tu_run_until(&k->loop, &k->ready, PK_WAIT_MS));
	if (k->ready_status != 0)
		fail_msg("browser did not start: %s", k->ready_why);
	assert_non_null(browser_user_data_dir(k->b));
	snprintf(k->udd, sizeof k->udd, "%s", browser_user_data_dir(k->b));
}

cdp_page_t *pk_new_page(pagekit_t *k)
{
	pk_opened_t o = { 0 };

	assert_int_equal(cdp_page_open(browser_conn(k->b), NULL, 10000, on_opened, &o), 0);
	assert_true(tu_run_until(&k->loop, &o.done, PK_WAIT_MS));
	if (o.status != 0)
		fail_msg("cdp_page_open: %s: %s", cdp_strerror(o.status), o.why);
	assert_non_null(o.page);
	assert_non_null(cdp_page_session_id(o.page));
	assert_non_null(cdp_page_target_id(o.page));
	assert_non_null(cdp_page_context_id(o.page));
	return o.page;
}

void pk_close_page(pagekit_t *k, cdp_page_t *p)
{
	int closed = 0;

	cdp_page_close(p, on_closed_count, &closed);
	assert_true(tu_run_until(&k->loop, &closed, PK_WAIT_MS));
	assert_int_equal(closed, 1);
}

void pk_page_open(pagekit_t *k)
{
	k->page = pk_new_page(k);
}

void pk_navigate(pagekit_t *k, const char *path)
{
	char url[256];

	fixture_url(k->fx, path, url, sizeof url);
	k->done = 0;
	assert_int_equal(cdp_page_navigate(k->page, url, 10000, on_nav, k), 0);
	assert_true(tu_run_until(&k->loop, &k->done, PK_WAIT_MS));
	if (k->status != 0)
		fail_msg("navigate %s: %s", url, k->why);
}

void pk_wait_for(pagekit_t *k, const char *selector)
{
	k->done = 0;
	assert_int_equal(cdp_page_wait_for(k->page, selector, 10000, on_waited, k), 0);
	assert_true(tu_run_until(&k->loop, &k->done, PK_WAIT_MS));
	if (k->status != 0)
		fail_msg("wait_for: %s", k->why);
}

json_t *pk_evaluate(pagekit_t *k, const char *js)
{
	json_t *v;

	k->done = 0;
	k->value = NULL;
	assert_int_equal(cdp_page_evaluate(k->page, js, 10000, on_eval, k), 0);
	assert_true(tu_run_until(&k->loop, &k->done, PK_WAIT_MS));
	if (k->status != 0)
		fail_msg("evaluate: %s: %s", cdp_strerror(k->status), k->why);
	v = k->value;
	k->value = NULL;
	return v;
}

void pk_close(pagekit_t *k)
{
	if (k->page) {
		cdp_page_close(k->page, on_page_closed, k);
		assert_true(tu_run_until(&k->loop, &k->page_closed, PK_WAIT_MS));
	}
	if (k->b) {
		browser_close(k->b, on_b_closed, k);
		assert_true(tu_run_until(&k->loop, &k->b_closed, PK_WAIT_MS));
	}
	if (k->fx) {
		fixture_close(k->fx, pk_on_fx_closed, k);
		assert_true(tu_run_until(&k->loop, &k->fx_closed, 5000));
	}
}

void pk_finish(pagekit_t *k)
{
	if (k->ws) {
		cdp_wsctx_close(k->ws);
		uv_run(&k->loop, UV_RUN_DEFAULT);
		cdp_wsctx_free(k->ws);
	}
	uv_run(&k->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&k->loop), 0);
	if (k->b) {
		assert_int_equal(tu_wait_procs_with_arg(k->udd, 5000), 0);
		assert_false(tu_path_exists(k->udd));
		tu_report_chromium_count(k->chrom_before);
	}
	assert_int_equal(tu_fd_count(), k->fds_before);
	k->finished = 1;
}
