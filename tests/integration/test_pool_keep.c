/*
 * test_pool_keep: kept pages (PAGE_REUSE), against the real Chromium and the fixture. A page
 * whose task ended well serves the next lease of its site with the same settings (the same
 * target, navigated again, no new renderer), and no other: not another site, other
 * settings, a fresh lease, after a failed task, or past PAGE_REUSE tasks. A kept page holds
 * its slot, and goes when a lease of another site needs it, after PAGE_IDLE_SECONDS, when
 * its renderer crashes, when its browser is recycled, and on pool_close (with every
 * Chromium process).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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
	int chrom_before;
} h_t;

/* One lease: granted (status), its page's target and context, a navigation's outcome. */
typedef struct lease {
	pool_lease_t *l;
	int granted, status;
	char target[64], context[64];
	int navigated, nav_status;
	int revoked;
} lease_t;

static void on_pool_closed(pool_t *p, void *ud) { ((h_t *)ud)->pool_closed = 1; }
static void on_fx_closed(void *ud) { ((h_t *)ud)->fx_closed = 1; }

static void on_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	lease_t *x = ud;
	cdp_page_t *page = status == 0 ? pool_lease_page(l) : NULL;

	x->status = status;
	x->granted = 1;
	x->l = status == 0 ? l : NULL;
	if (page) {
		snprintf(x->target, sizeof x->target, "%s", cdp_page_target_id(page));
		snprintf(x->context, sizeof x->context, "%s", cdp_page_context_id(page));
	} else {
		print_message("not granted: %d %s\n", status, why);
	}
}

static void on_revoked(pool_lease_t *l, enum pool_outcome reason, const char *why, void *ud)
{
	lease_t *x = ud;

	x->revoked = 1;
	pool_release(l, reason);
	x->l = NULL;
}

static void ignore_reply(cdp_conn_t *c, const cdp_reply_t *r, void *ud) {}

static void on_nav(cdp_page_t *page, const cdp_nav_result_t *res, void *ud)
{
	lease_t *x = ud;

	x->nav_status = res->status;
	x->navigated = 1;
}

static void h_init(h_t *h, unsigned cap, unsigned reuse, uint32_t idle_ms)
{
	pool_opts_t o;

	memset(h, 0, sizeof *h);
	h->chrom_before = tu_tagged_count();
	assert_int_equal(uv_loop_init(&h->loop), 0);
	h->ws = cdp_wsctx_new(&h->loop);
	h->fx = fixture_new(&h->loop, NULL, 0);
	assert_non_null(h->ws);
	assert_non_null(h->fx);
	pool_opts_init(&o);
	o.concurrency_cap = cap;
	if (reuse)
		o.page_reuse = reuse;
	if (idle_ms)
		o.page_idle_ms = idle_ms;
	h->pool = pool_new(&h->loop, h->ws, &o);
	assert_non_null(h->pool);
	assert_int_equal(pool_start(h->pool), 0);
}

/* Closes the pool (promptly, kept pages and all) and checks no Chromium process is left. */
static void h_fini(h_t *h)
{
	pool_close(h->pool, on_pool_closed, h);
	assert_true(tu_run_until(&h->loop, &h->pool_closed, 30000));
	fixture_close(h->fx, on_fx_closed, h);
	assert_true(tu_run_until(&h->loop, &h->fx_closed, 5000));
	cdp_wsctx_close(h->ws);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(h->ws);
	assert_int_equal(uv_loop_close(&h->loop), 0);
	assert_int_equal(tu_wait_tagged_count(h->chrom_before, 10000), h->chrom_before);
}

static pool_stats_t stats(h_t *h)
{
	pool_stats_t st;
	pool_get_stats(h->pool, &st);
	return st;
}

static void run_for(h_t *h, uint64_t ms)
{
	static const int never = 0;
	tu_run_until(&h->loop, &never, ms);
}

/* The fixture's URL of path, on host ("127.0.0.1", or "localhost": another site). */
static void url_of(h_t *h, const char *host, const char *path, char *out, size_t len)
{
	char u[256];
	const char *at;

	fixture_url(h->fx, path, u, sizeof u);
	at = strstr(u, "127.0.0.1");
	assert_non_null(at);
	snprintf(out, len, "%.*s%s%s", (int)(at - u), u, host, at + strlen("127.0.0.1"));
}

/* Acquires a lease for url (settings ps, may be NULL), waits for its grant, navigates its
 * page to url and waits for the load. */
static void lease_nav(h_t *h, lease_t *x, const char *url, const pool_page_settings_t *ps)
{
	memset(x, 0, sizeof *x);
	assert_non_null(pool_acquire_ex(h->pool, url, 0, ps, on_granted, on_revoked, x));
	assert_true(tu_run_until(&h->loop, &x->granted, 60000));
	assert_int_equal(x->status, 0);
	assert_int_equal(cdp_page_navigate(pool_lease_page(x->l), url, 20000, on_nav, x), 0);
	assert_true(tu_run_until(&h->loop, &x->navigated, 30000));
	assert_int_equal(x->nav_status, 0);
}

/* Waits until the pool keeps n pages. */
static int wait_kept(h_t *h, unsigned n, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;

	while (stats(h).pages_kept != n && tu_now_ms() < end)
		run_for(h, 20);
	return stats(h).pages_kept == n;
}

/* Counts the page targets the browser has (Target.getTargets), or -1. */
typedef struct count {
	int done, n;
} count_t;

static void on_targets(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	count_t *ct = ud;
	json_t *infos = r->status ? NULL : json_object_get(r->result, "targetInfos");
	size_t i;
	json_t *t;

	ct->n = infos ? 0 : -1;
	json_array_foreach(infos, i, t) if (!strcmp(json_string_value(json_object_get(t, "type")),
	                                            "page")) ct->n++;
	ct->done = 1;
}

static int page_targets(h_t *h)
{
	count_t ct = { 0 };

	assert_int_equal(cdp_conn_send(pool_browser_conn(h->pool), NULL, "Target.getTargets",
	                               NULL, 5000, on_targets, &ct, NULL),
	                 0);
	assert_true(tu_run_until(&h->loop, &ct.done, 10000));
	return ct.n;
}

/* The same site with the same settings gets the same page again, navigated anew; another
 * site, other settings or a fresh lease get a context of their own. */
static void test_pool_keep__same_site_and_settings_only(void **state)
{
	h_t h;
	lease_t a, b, c;
	pool_page_settings_t ps;
	char u1[256], u2[256], other[256];

	(void)state;
	h_init(&h, 4, 0, 0);
	url_of(&h, "127.0.0.1", "/static?n=1", u1, sizeof u1);
	url_of(&h, "127.0.0.1", "/js?delay=10&page=2", u2, sizeof u2);
	url_of(&h, "localhost", "/static?n=3", other, sizeof other);

	lease_nav(&h, &a, u1, NULL);
	pool_release(a.l, POOL_OK);
	assert_true(wait_kept(&h, 1, 5000));
	assert_int_equal(stats(&h).leases_in_use, 0);

	lease_nav(&h, &b, u2, NULL); /* same site, another page of it */
	assert_string_equal(b.target, a.target);
	assert_string_equal(b.context, a.context);
	assert_int_equal(stats(&h).pages_reused, 1);
	assert_int_equal(stats(&h).pages_kept, 0);
	assert_int_equal(stats(&h).leases_in_use, 1);
	pool_release(b.l, POOL_OK);
	assert_true(wait_kept(&h, 1, 5000));

	lease_nav(&h, &c, other, NULL); /* another site: a context of its own */
	assert_string_not_equal(c.context, a.context);
	assert_int_equal(stats(&h).pages_kept, 1); /* the first one still waits */
	pool_release(c.l, POOL_OK);
	assert_true(wait_kept(&h, 2, 5000));

	memset(&ps, 0, sizeof ps);
	ps.user_agent = "cdpilot-test/1"; /* other settings */
	lease_nav(&h, &c, u1, &ps);
	assert_string_not_equal(c.context, a.context);
	pool_release(c.l, POOL_OK);
	assert_true(wait_kept(&h, 3, 5000));

	memset(&ps, 0, sizeof ps);
	ps.fresh = 1; /* fresh: its own context, and not kept after it */
	lease_nav(&h, &c, u1, &ps);
	assert_string_not_equal(c.context, a.context);
	assert_int_equal(stats(&h).pages_kept, 3);
	pool_release(c.l, POOL_OK);
	run_for(&h, 500);
	assert_int_equal(stats(&h).pages_kept, 3);
	assert_int_equal(stats(&h).pages_reused, 1);
	assert_int_equal(page_targets(&h), 3);
	h_fini(&h);
}

/* A failed task's page is not kept; past PAGE_REUSE tasks a page goes; an idle page goes
 * after PAGE_IDLE_SECONDS, with its target. */
static void test_pool_keep__failures_and_limits(void **state)
{
	h_t h;
	lease_t a, b, c;
	char u[256];

	(void)state;
	h_init(&h, 2, 2, 1500);
	url_of(&h, "127.0.0.1", "/static", u, sizeof u);

	lease_nav(&h, &a, u, NULL);
	pool_release(a.l, POOL_FAILED);
	run_for(&h, 300);
	assert_int_equal(stats(&h).pages_kept, 0);

	lease_nav(&h, &a, u, NULL);
	pool_release(a.l, POOL_OK);
	assert_true(wait_kept(&h, 1, 5000));
	lease_nav(&h, &b, u, NULL); /* its second task: the last one (PAGE_REUSE 2) */
	assert_string_equal(b.target, a.target);
	pool_release(b.l, POOL_OK);
	run_for(&h, 300);
	assert_int_equal(stats(&h).pages_kept, 0);
	lease_nav(&h, &c, u, NULL);
	assert_string_not_equal(c.target, a.target);
	pool_release(c.l, POOL_OK);
	assert_true(wait_kept(&h, 1, 5000));
	assert_int_equal(page_targets(&h), 1);

	/* idle for PAGE_IDLE_SECONDS (1.5 s here; the pool looks once a second) */
	assert_true(wait_kept(&h, 0, 10000));
	for (uint64_t end = tu_now_ms() + 10000; page_targets(&h) != 0 && tu_now_ms() < end;)
		run_for(&h, 100);
	assert_int_equal(page_targets(&h), 0);
	assert_int_equal(stats(&h).leases_in_use, 0);
	h_fini(&h);
}

/* With every slot held by kept pages of another site, a lease disposes the least recently
 * kept one and is served; kept pages never make more contexts than the cap. */
static void test_pool_keep__evicted_for_another_site(void **state)
{
	h_t h;
	lease_t a, b, c;
	char u1[256], u2[256], other[256];

	(void)state;
	h_init(&h, 2, 0, 0);
	url_of(&h, "127.0.0.1", "/static?n=1", u1, sizeof u1);
	url_of(&h, "127.0.0.1", "/static?n=2", u2, sizeof u2);
	url_of(&h, "localhost", "/static", other, sizeof other);

	lease_nav(&h, &a, u1, NULL);
	lease_nav(&h, &b, u2, NULL); /* both slots in use: two contexts */
	assert_string_not_equal(a.context, b.context);
	pool_release(a.l, POOL_OK);
	run_for(&h, 50);
	pool_release(b.l, POOL_OK);
	assert_true(wait_kept(&h, 2, 5000));

	lease_nav(&h, &c, other, NULL); /* a slot is made for it: a's page goes (kept first) */
	assert_string_not_equal(c.context, a.context);
	assert_string_not_equal(c.context, b.context);
	assert_int_equal(stats(&h).pages_kept, 1);
	assert_true(page_targets(&h) <= 2);
	pool_release(c.l, POOL_OK);
	assert_true(wait_kept(&h, 2, 5000));

	lease_nav(&h, &a, u1, NULL); /* b's page is still there for its site */
	assert_string_equal(a.context, b.context);
	pool_release(a.l, POOL_OK);
	assert_int_equal(stats(&h).pages_reused, 1);
	h_fini(&h);
}

/* A kept page whose renderer crashes goes; the next lease of its site gets a new one that
 * works. A recycle disposes the kept pages of the old browser, which then closes. */
static void test_pool_keep__crash_and_recycle(void **state)
{
	h_t h;
	lease_t a, b;
	char u[256];
	cdp_page_t *page;
	pid_t first;

	(void)state;
	h_init(&h, 2, 0, 0);
	url_of(&h, "127.0.0.1", "/static", u, sizeof u);

	lease_nav(&h, &a, u, NULL);
	page = pool_lease_page(a.l);
	pool_release(a.l, POOL_OK);
	assert_true(wait_kept(&h, 1, 5000));
	/* Page.crash gets no reply: the renderer is gone */
	assert_int_equal(cdp_conn_send(cdp_page_conn(page), cdp_page_session_id(page), "Page.crash",
	                               NULL, 5000, ignore_reply, NULL, NULL),
	                 0);
	assert_true(wait_kept(&h, 0, 10000));
	lease_nav(&h, &b, u, NULL);
	assert_string_not_equal(b.target, a.target);
	assert_int_equal(stats(&h).pages_reused, 0);
	pool_release(b.l, POOL_OK);
	assert_true(wait_kept(&h, 1, 5000));

	first = pool_browser_pid(h.pool);
	pool_request_recycle(h.pool, POOL_RECYCLE_REQUESTED);
	for (uint64_t end = tu_now_ms() + 60000;
	     (pool_browser_pid(h.pool) == first || stats(&h).pages_kept != 0) && tu_now_ms() < end;)
		run_for(&h, 50);
	assert_int_not_equal(pool_browser_pid(h.pool), first);
	assert_int_equal(stats(&h).pages_kept, 0);
	{ /* the old browser drains (nothing holds it) and closes */
		pid_t pids[8];
		uint64_t end = tu_now_ms() + 30000;
		while (pool_browser_pids(h.pool, pids, 8) > 1 && tu_now_ms() < end)
			run_for(&h, 50);
		assert_int_equal(pool_browser_pids(h.pool, pids, 8), 1);
	}
	lease_nav(&h, &a, u, NULL); /* on the new browser, a new context */
	assert_string_not_equal(a.context, b.context);
	pool_release(a.l, POOL_OK);
	assert_true(wait_kept(&h, 1, 5000));
	h_fini(&h); /* closes with a kept page: promptly, no process left */
}

/* The value a /cacheable-page load showed (its fetch of /cacheable), or -1. */
typedef struct shown {
	int done, n;
} shown_t;

static void on_shown(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	shown_t *sh = ud;

	sh->n = status == 0 && json_is_integer(value) ? (int)json_integer_value(value) : -1;
	sh->done = 1;
}

static void on_waited(cdp_page_t *page, int status, const char *why, void *ud)
{
	shown_t *sh = ud;

	if (status != 0 || cdp_page_evaluate(page, "Number(document.body.dataset.n)", 5000,
	                                     on_shown, sh) != 0) {
		print_message("the page showed nothing: %s\n", why);
		sh->n = -1;
		sh->done = 1;
	}
}

static int shown_n(h_t *h, lease_t *x)
{
	shown_t sh = { 0 };

	assert_int_equal(cdp_page_wait_for_state(pool_lease_page(x->l), "body[data-n]",
	                                         CDP_WAIT_ATTACHED, 10000, on_waited, &sh),
	                 0);
	assert_true(tu_run_until(&h->loop, &sh.done, 15000));
	return sh.n;
}

/* A kept page's next load reads nothing an earlier load left in the cache: /cacheable says
 * "max-age=3600", and each load of /cacheable-page on the same kept page fetches it anew
 * (a context of its own would have an empty cache: the same answer). */
static void test_pool_keep__nothing_read_from_the_cache(void **state)
{
	h_t h;
	lease_t a, b;
	char u[256];
	int n1, n2;

	(void)state;
	h_init(&h, 2, 0, 0);
	url_of(&h, "127.0.0.1", "/cacheable-page", u, sizeof u);
	lease_nav(&h, &a, u, NULL);
	n1 = shown_n(&h, &a);
	pool_release(a.l, POOL_OK);
	assert_true(wait_kept(&h, 1, 5000));
	lease_nav(&h, &b, u, NULL);
	assert_string_equal(b.target, a.target);
	n2 = shown_n(&h, &b);
	print_message("first load showed n=%d, the second on the same page n=%d\n", n1, n2);
	assert_true(n1 > 0);
	assert_true(n2 > n1);
	pool_release(b.l, POOL_OK);
	h_fini(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_keep__same_site_and_settings_only),
		cmocka_unit_test(test_pool_keep__failures_and_limits),
		cmocka_unit_test(test_pool_keep__evicted_for_another_site),
		cmocka_unit_test(test_pool_keep__crash_and_recycle),
		cmocka_unit_test(test_pool_keep__nothing_read_from_the_cache),
	};
	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
