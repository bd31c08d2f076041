/*
 * test_pool_watch: watch leases open their pages a few at a time, against the real Chromium
 * and the fixture. Sixteen watch leases asked for at once with watch_open_cap 2: never more
 * than two pages opening at any turn of the loop, two at some turn, and every lease granted,
 * although the wait of the last ones is longer than the lease timeout (a watch lease waits
 * for its turn to open without one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pool/pool.h"
#include "tests/fixture/fixture.h"
#include "tests/support/testutil.h"

#define NLEASES 16

typedef struct h {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	fixture_t *fx;
	pool_t *pool;
	uv_check_t check;
	int pool_closed, fx_closed;
	int granted, failed, done;
	unsigned max_opening;
	pool_lease_t *leases[NLEASES];
	int chrom_before;
} h_t;

static void on_pool_closed(pool_t *p, void *ud) { ((h_t *)ud)->pool_closed = 1; }
static void on_fx_closed(void *ud) { ((h_t *)ud)->fx_closed = 1; }

static void on_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	h_t *h = ud;

	if (status != 0) {
		h->failed++;
		print_error("watch lease failed: %s\n", why);
	} else {
		h->granted++;
	}
	h->done = h->granted + h->failed == NLEASES;
}

/* Every turn of the loop, after the pool's pump: how many watch pages are opening. */
static void on_check(uv_check_t *c)
{
	h_t *h = c->data;
	pool_stats_t st;

	pool_get_stats(h->pool, &st);
	if (st.watch_opening > h->max_opening)
		h->max_opening = st.watch_opening;
}

static void test_pool_watch__opens_a_few_at_a_time(void **state)
{
	h_t h;
	pool_opts_t o;
	pool_stats_t st;

	memset(&h, 0, sizeof h);
	h.chrom_before = tu_tagged_count();
	assert_int_equal(uv_loop_init(&h.loop), 0);
	h.ws = cdp_wsctx_new(&h.loop);
	h.fx = fixture_new(&h.loop, NULL, 0);
	assert_non_null(h.ws);
	assert_non_null(h.fx);
	pool_opts_init(&o);
	o.watch_open_cap = 2;
	o.lease_timeout_ms = 1000; /* shorter than the wait of the last leases */
	h.pool = pool_new(&h.loop, h.ws, &o);
	assert_non_null(h.pool);
	uv_check_init(&h.loop, &h.check);
	h.check.data = &h;
	uv_check_start(&h.check, on_check);

	for (int i = 0; i < NLEASES; i++) {
		h.leases[i] = pool_acquire_watch(h.pool, on_granted, NULL, NULL, &h);
		assert_non_null(h.leases[i]);
	}
	assert_true(tu_run_until(&h.loop, &h.done, 120000));
	assert_int_equal(h.failed, 0);
	assert_int_equal(h.granted, NLEASES);
	assert_int_equal(h.max_opening, 2);
	pool_get_stats(h.pool, &st);
	assert_int_equal(st.watch_leases, NLEASES);
	assert_int_equal(st.watch_opening, 0);
	assert_int_equal(st.lease_timeouts, 0);

	for (int i = 0; i < NLEASES; i++)
		pool_release(h.leases[i], POOL_OK);
	uv_check_stop(&h.check);
	uv_close((uv_handle_t *)&h.check, NULL);
	pool_close(h.pool, on_pool_closed, &h);
	assert_true(tu_run_until(&h.loop, &h.pool_closed, 60000));
	fixture_close(h.fx, on_fx_closed, &h);
	assert_true(tu_run_until(&h.loop, &h.fx_closed, 5000));
	cdp_wsctx_close(h.ws);
	uv_run(&h.loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(h.ws);
	assert_int_equal(uv_loop_close(&h.loop), 0);
	assert_int_equal(tu_wait_tagged_count(h.chrom_before, 10000), h.chrom_before);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_watch__opens_a_few_at_a_time),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
