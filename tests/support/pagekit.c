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

void pk_close(pagekit_t *k)
{
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
