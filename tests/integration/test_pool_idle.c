/*
 * test_pool_idle: the pool runs a browser only while one is wanted (pool_set_wanted) or a
 * lease asks for one, against the real Chromium and the fixture. Not wanted: none is
 * launched; a lease launches one anyway and is served; once idle for idle_close_ms the
 * browser closes and every process of its tree is gone (from /proc); a browser that dies
 * while not wanted and idle is not relaunched, and the next lease launches one.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pool/pool.h"
#include "tests/fixture/fixture.h"
#include "tests/support/testutil.h"

typedef struct h {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	fixture_t *fx;
	pool_t *pool;
	int pool_closed, fx_closed;
	int granted, status;
	int chrom_before;
} h_t;

static void on_pool_closed(pool_t *p, void *ud) { ((h_t *)ud)->pool_closed = 1; }
static void on_fx_closed(void *ud) { ((h_t *)ud)->fx_closed = 1; }

static void on_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	h_t *h = ud;

	h->status = status;
	h->granted = 1;
	if (status == 0)
		pool_release(l, POOL_OK);
}

/* A lease on /static, granted and released; asserts it was served. */
static void one_lease(h_t *h)
{
	char url[256];

	fixture_url(h->fx, "/static", url, sizeof url);
	h->granted = 0;
	assert_non_null(pool_acquire(h->pool, url, 0, on_granted, NULL, h));
	assert_true(tu_run_until(&h->loop, &h->granted, 60000));
	assert_int_equal(h->status, 0);
}

/* Runs the loop about ms milliseconds. */
static void run_for(h_t *h, uint64_t ms)
{
	static const int never = 0;
	tu_run_until(&h->loop, &never, ms);
}

static pool_stats_t stats(h_t *h)
{
	pool_stats_t st;
	pool_get_stats(h->pool, &st);
	return st;
}

/* Runs the loop until the pool owns no browser process; 1 if so within timeout_ms. */
static int wait_no_browser(h_t *h, uint64_t timeout_ms)
{
	pid_t pids[8];
	uint64_t end = tu_now_ms() + timeout_ms;

	while (pool_browser_pids(h->pool, pids, 8) > 0 && tu_now_ms() < end)
		run_for(h, 50);
	return pool_browser_pids(h->pool, pids, 8) == 0;
}

static void test_pool_idle__browser_only_while_wanted_or_leased(void **state)
{
	h_t h;
	pool_opts_t o;
	static tu_proc_id_t tree[256];
	size_t n;
	pid_t pid;

	memset(&h, 0, sizeof h);
	h.chrom_before = tu_tagged_count();
	assert_int_equal(uv_loop_init(&h.loop), 0);
	h.ws = cdp_wsctx_new(&h.loop);
	h.fx = fixture_new(&h.loop, NULL, 0);
	assert_non_null(h.ws);
	assert_non_null(h.fx);
	pool_opts_init(&o);
	o.idle_close_ms = 1000;
	h.pool = pool_new(&h.loop, h.ws, &o);
	assert_non_null(h.pool);

	/* not wanted: nothing launched, over several of the pool's ticks */
	pool_set_wanted(h.pool, 0);
	run_for(&h, 2500);
	assert_int_equal(stats(&h).browser_launches, 0);
	assert_int_equal(pool_browser_pid(h.pool), 0);
	assert_int_equal(tu_tagged_count(), h.chrom_before);

	/* a lease launches one anyway; idle and unwanted, it closes with its whole tree */
	one_lease(&h);
	assert_int_equal(stats(&h).browser_launches, 1);
	pid = pool_browser_pid(h.pool);
	assert_true(pid > 0);
	n = tu_descendants(pid, tree, 256); /* its renderers, zygotes, utilities */
	print_message("browser %d has %zu processes below it\n", (int)pid, n);
	assert_true(n > 0);
	assert_true(wait_no_browser(&h, 30000));
	assert_int_equal(stats(&h).idle_closes, 1);
	assert_int_equal(tu_wait_alive_count(tree, n < 256 ? n : 256, 10000), 0);
	assert_int_equal(tu_wait_tagged_count(h.chrom_before, 10000), h.chrom_before);

	/* wanted: launched without a lease, and kept past the idle time */
	pool_set_wanted(h.pool, 1);
	assert_true(stats(&h).browser_wanted);
	for (uint64_t end = tu_now_ms() + 60000; !stats(&h).ready && tu_now_ms() < end;)
		run_for(&h, 50);
	assert_true(stats(&h).ready);
	run_for(&h, 2500);
	assert_true(stats(&h).ready);
	assert_int_equal(stats(&h).browser_launches, 2);
	assert_int_equal(stats(&h).idle_closes, 1);

	/* unwanted again and killed before it idles out: not relaunched; a lease relaunches */
	pool_set_wanted(h.pool, 0);
	assert_int_equal(kill(pool_browser_pid(h.pool), SIGKILL), 0);
	assert_true(wait_no_browser(&h, 30000));
	run_for(&h, 2500);
	assert_int_equal(stats(&h).browser_launches, 2);
	assert_int_equal(pool_browser_pid(h.pool), 0);
	one_lease(&h);
	assert_int_equal(stats(&h).browser_launches, 3);

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
		cmocka_unit_test(test_pool_idle__browser_only_while_wanted_or_leased),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
