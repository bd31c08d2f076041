/*
 * Integration tests for the target policy in the pool's pages (pool_opts_t.policy, issue
 * 17) against the real Chromium and two fixture servers, one on 127.0.0.1 (allowed) and one
 * on 127.0.0.2 (denied by TARGET_DENY "127.0.0.2"): a page whose redirect leads to the
 * denied host fails with a message naming the URL and the rule, and the denied fixture
 * sees no request, whether the page was opened at its URL, navigated later, has a block
 * list of its own, or the pool blocks no resource type; a redirect on the allowed host
 * still works; and with a policy that does not deny 127.0.0.2 the same redirect reaches
 * the second fixture (so the "no request" assertions can fail).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cdp/cdp_err.h"
#include "pool/pool.h"
#include "tests/fixture/fixture.h"
#include "tests/support/testutil.h"
#include "util/netpolicy.h"

#define WAIT_MS 30000

typedef struct h {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	fixture_t *fx, *denied;
	pool_t *pool;
	netpolicy_t policy;
	int pool_closed, fx_closed, denied_closed;
	int fds_before, chrom_before;
} h_t;

static void on_pool_closed(pool_t *p, void *ud)
{
	((h_t *)ud)->pool_closed = 1;
}
static void on_fx_closed(void *ud)
{
	((h_t *)ud)->fx_closed = 1;
}
static void on_denied_closed(void *ud)
{
	((h_t *)ud)->denied_closed = 1;
}

/* A pool with TARGET_DENY deny and BLOCK_RESOURCES block. */
static void h_open(h_t *h, const char *deny, const char *block)
{
	pool_opts_t o;
	errlist_t errs;

	tu_require_chromium();
	memset(h, 0, sizeof *h);
	h->fds_before = tu_fd_count();
	h->chrom_before = tu_tagged_count();
	errlist_init(&errs);
	assert_int_equal(netpolicy_init(&h->policy, NULL, deny, &errs), 0);
	errlist_release(&errs);
	assert_int_equal(uv_loop_init(&h->loop), 0);
	h->ws = cdp_wsctx_new(&h->loop);
	assert_non_null(h->ws);
	h->fx = fixture_new(&h->loop, NULL, 0);
	assert_non_null(h->fx);
	h->denied = fixture_new(&h->loop, "127.0.0.2", 0);
	assert_non_null(h->denied);
	pool_opts_init(&o);
	snprintf(o.block_resources, sizeof o.block_resources, "%s", block);
	o.policy = &h->policy;
	h->pool = pool_new(&h->loop, h->ws, &o);
	assert_non_null(h->pool);
	assert_int_equal(pool_start(h->pool), 0);
}

static void h_close(h_t *h)
{
	pool_close(h->pool, on_pool_closed, h);
	assert_true(tu_run_until(&h->loop, &h->pool_closed, 60000));
	fixture_close(h->fx, on_fx_closed, h);
	fixture_close(h->denied, on_denied_closed, h);
	assert_true(tu_run_until(&h->loop, &h->fx_closed, 5000));
	assert_true(tu_run_until(&h->loop, &h->denied_closed, 5000));
	cdp_wsctx_close(h->ws);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(h->ws);
	assert_int_equal(uv_loop_close(&h->loop), 0);
	netpolicy_release(&h->policy);
	assert_int_equal(tu_wait_tagged_count(h->chrom_before, 5000), h->chrom_before);
	assert_int_equal(tu_fd_count(), h->fds_before);
}

typedef struct use {
	int done, status;
	char why[1024];
	pool_lease_t *lease;
} use_t;

static void on_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	use_t *u = ud;

	u->done = 1;
	u->status = status;
	snprintf(u->why, sizeof u->why, "%s", why);
}

static void on_nav(cdp_page_t *p, const cdp_nav_result_t *res, void *ud)
{
	use_t *u = ud;

	u->done = 1;
	u->status = res->status;
	snprintf(u->why, sizeof u->why, "%s", res->message);
}

static void navigate(h_t *h, use_t *u, const char *url)
{
	u->done = 0;
	assert_int_equal(cdp_page_navigate(pool_lease_page(u->lease), url, 15000, on_nav, u), 0);
	assert_true(tu_run_until(&h->loop, &u->done, WAIT_MS));
}

/* Leases a page opened at open_url (with settings s, NULL: the pool's), navigates it to
 * url (the same: the open's navigation is adopted) and returns the navigation's status;
 * its message is in u->why. The lease is released. */
static int lease_nav(h_t *h, const char *open_url, const char *url,
                     const pool_page_settings_t *s, use_t *u)
{
	memset(u, 0, sizeof *u);
	u->lease = pool_acquire_ex(h->pool, open_url, 20000, s, on_granted, NULL, u);
	assert_non_null(u->lease);
	assert_true(tu_run_until(&h->loop, &u->done, WAIT_MS));
	if (u->status != 0)
		fail_msg("lease: %s", u->why);
	navigate(h, u, url);
	pool_release(u->lease, POOL_OK);
	return u->status;
}

/* url of the allowed fixture redirecting to path on the denied one (its URL into to). */
static void redirect_url(h_t *h, const char *path, char *url, size_t len, char *to,
                         size_t tolen)
{
	char r[512];
	size_t n;

	fixture_url(h->denied, path, to, tolen);
	n = (size_t)snprintf(r, sizeof r, "/redirect?to=");
	for (const char *p = to; *p && n + 4 < sizeof r; p++) /* its '?' encoded */
		n += (size_t)snprintf(r + n, sizeof r - n, *p == '?' ? "%%3F" : "%c", *p);
	fixture_url(h->fx, r, url, len);
}

/* The message names the refused URL and the rule. */
static void assert_refused(const use_t *u, const char *to)
{
	print_message("refused: %s\n", u->why);
	assert_int_equal(u->status, CDP_ENAV);
	assert_non_null(strstr(u->why, to));
	assert_non_null(strstr(u->why, "refused by the target policy"));
	assert_non_null(strstr(u->why, "TARGET_DENY entry \"127.0.0.2\""));
}

static void test_pool_policy__redirect_to_a_denied_host_is_refused(void **state)
{
	h_t h;
	use_t u;
	char url[1024], to[512], ok[512], blank[512];

	h_open(&h, "127.0.0.2", "image,media,font");

	/* opened straight at its URL: the first navigation's redirect is refused */
	redirect_url(&h, "/static", url, sizeof url, to, sizeof to);
	assert_int_not_equal(lease_nav(&h, url, url, NULL, &u), 0);
	assert_refused(&u, to);
	assert_int_equal(fixture_hits(h.fx, "/redirect"), 1);

	/* a navigation of its own, on a page opened elsewhere */
	fixture_url(h.fx, "/static", blank, sizeof blank);
	redirect_url(&h, "/static?second", url, sizeof url, to, sizeof to);
	assert_int_not_equal(lease_nav(&h, blank, url, NULL, &u), 0);
	assert_refused(&u, to);

	/* a lease with a block list of its own (exempt from the pool's blocking) */
	redirect_url(&h, "/static?own-list", url, sizeof url, to, sizeof to);
	assert_int_not_equal(
	        lease_nav(&h, url, url, &(pool_page_settings_t){ .block_resources = "none" }, &u),
	        0);
	assert_refused(&u, to);

	/* the denied host itself, navigated to directly */
	fixture_url(h.denied, "/static?direct", to, sizeof to);
	assert_int_not_equal(lease_nav(&h, blank, to, NULL, &u), 0);
	assert_refused(&u, to);

	/* a redirect on the allowed host still works, and the next failure is not blamed on
	 * an earlier refusal */
	fixture_url(h.fx, "/redirect?to=/static%3Fafter", ok, sizeof ok);
	assert_int_equal(lease_nav(&h, ok, ok, NULL, &u), 0);
	assert_int_equal(fixture_hits(h.fx, "/redirect"), 4);
	assert_int_equal(fixture_hits(h.denied, NULL), 0);
	h_close(&h);
}

/* With no resource type blocked, the pool pauses documents for the policy alone. */
static void test_pool_policy__holds_when_nothing_is_blocked(void **state)
{
	h_t h;
	use_t u;
	char url[1024], to[512], ok[512];

	h_open(&h, "127.0.0.2", "none");
	redirect_url(&h, "/static", url, sizeof url, to, sizeof to);
	assert_int_not_equal(lease_nav(&h, url, url, NULL, &u), 0);
	assert_refused(&u, to);
	fixture_url(h.fx, "/redirect", ok, sizeof ok);
	assert_int_equal(lease_nav(&h, ok, ok, NULL, &u), 0);
	assert_int_equal(fixture_hits(h.fx, "/static"), 1);
	assert_int_equal(fixture_hits(h.denied, NULL), 0);
	h_close(&h);
}

/* The control: a policy that does not deny 127.0.0.2 lets the redirect reach it. */
static void test_pool_policy__an_allowed_redirect_reaches_the_other_host(void **state)
{
	h_t h;
	use_t u;
	char url[1024], to[512];

	h_open(&h, "10.0.0.0/8", "image,media,font");
	redirect_url(&h, "/static", url, sizeof url, to, sizeof to);
	if (lease_nav(&h, url, url, NULL, &u) != 0)
		fail_msg("%s: %s", url, u.why);
	assert_int_equal(fixture_hits(h.denied, "/static"), 1);
	h_close(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_policy__redirect_to_a_denied_host_is_refused),
		cmocka_unit_test(test_pool_policy__holds_when_nothing_is_blocked),
		cmocka_unit_test(test_pool_policy__an_allowed_redirect_reaches_the_other_host),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
