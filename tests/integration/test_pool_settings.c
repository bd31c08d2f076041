/*
 * Integration tests for per-lease page settings (pool_acquire_ex, issue 16) against the
 * real Chromium and the fixture server: a lease's user agent, viewport, headers (merged
 * over EXTRA_HEADERS, its keys winning) and cookies reach the fixture with the page's first
 * request, and a lease's own block list holds both ways, as the fixture's request log shows:
 * a lease with "none" loads images while the pool blocks them, and a lease with "image"
 * blocks them while the pool blocks nothing. Invalid settings are refused.
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

#define WAIT_MS 30000

typedef struct h {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	fixture_t *fx;
	pool_t *pool;
	int pool_closed, fx_closed;
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

static void h_open(h_t *h, const pool_opts_t *opts)
{
	tu_require_chromium();
	memset(h, 0, sizeof *h);
	h->fds_before = tu_fd_count();
	h->chrom_before = tu_tagged_count();
	assert_int_equal(uv_loop_init(&h->loop), 0);
	h->ws = cdp_wsctx_new(&h->loop);
	assert_non_null(h->ws);
	h->fx = fixture_new(&h->loop, NULL, 0);
	assert_non_null(h->fx);
	h->pool = pool_new(&h->loop, h->ws, opts);
	assert_non_null(h->pool);
	assert_int_equal(pool_start(h->pool), 0);
}

static void h_close(h_t *h)
{
	pool_close(h->pool, on_pool_closed, h);
	assert_true(tu_run_until(&h->loop, &h->pool_closed, 60000));
	fixture_close(h->fx, on_fx_closed, h);
	assert_true(tu_run_until(&h->loop, &h->fx_closed, 5000));
	cdp_wsctx_close(h->ws);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(h->ws);
	assert_int_equal(uv_loop_close(&h->loop), 0);
	assert_int_equal(tu_wait_tagged_count(h->chrom_before, 5000), h->chrom_before);
	assert_int_equal(tu_fd_count(), h->fds_before);
}

/* One lease, driven step by step. */
typedef struct use {
	int done, status;
	char why[1024];
	json_t *value;
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

static void on_eval(cdp_page_t *p, int status, json_t *value, const char *why, void *ud)
{
	use_t *u = ud;

	u->done = 1;
	u->status = status;
	snprintf(u->why, sizeof u->why, "%s", why);
	u->value = value ? json_incref(value) : NULL;
}

/* Leases a page for path with settings s (NULL: the pool's) and loads it. */
static void lease_load(h_t *h, const char *path, const pool_page_settings_t *s, use_t *u)
{
	char url[512];

	memset(u, 0, sizeof *u);
	fixture_url(h->fx, path, url, sizeof url);
	u->lease = pool_acquire_ex(h->pool, url, 20000, s, on_granted, NULL, u);
	assert_non_null(u->lease);
	assert_true(tu_run_until(&h->loop, &u->done, WAIT_MS));
	if (u->status != 0)
		fail_msg("lease: %s", u->why);
	u->done = 0;
	assert_int_equal(cdp_page_navigate(pool_lease_page(u->lease), url, 15000, on_nav, u), 0);
	assert_true(tu_run_until(&h->loop, &u->done, WAIT_MS));
	if (u->status != 0)
		fail_msg("navigate %s: %s", url, u->why);
}

/* Evaluates js on the lease's page; returns its value (new reference). */
static json_t *eval(h_t *h, use_t *u, const char *js)
{
	json_t *v;

	u->done = 0;
	u->value = NULL;
	assert_int_equal(cdp_page_evaluate(pool_lease_page(u->lease), js, 10000, on_eval, u), 0);
	assert_true(tu_run_until(&h->loop, &u->done, WAIT_MS));
	if (u->status != 0)
		fail_msg("evaluate: %s", u->why);
	v = u->value;
	u->value = NULL;
	return v;
}

/* The headers /echo-headers saw, as a JSON object (new reference). */
static json_t *echoed(h_t *h, use_t *u)
{
	json_t *t = eval(h, u, "document.querySelector('#headers').textContent");
	json_t *o = json_loads(json_string_value(t), 0, NULL);

	json_decref(t);
	assert_true(json_is_object(o));
	return o;
}

static const char *hdr(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	return json_is_string(v) ? json_string_value(v) : "(none)";
}

/* A lease's user agent, viewport, headers and cookies are on its first request; a lease
 * without settings has the pool's. */
static void test_pool_settings__first_request_has_the_lease_settings(void **state)
{
	h_t h;
	pool_opts_t o;
	use_t u;
	json_t *e, *v;
	char cookies[256], host[128];
	pool_page_settings_t s = {
		.user_agent = "lease-agent/1.0",
		.viewport_width = 640,
		.viewport_height = 480,
		.extra_headers_json = "{\"x-team\": \"lease\", \"X-Lease\": \"1\"}",
	};

	pool_opts_init(&o);
	snprintf(o.user_agent, sizeof o.user_agent, "pool-agent/1.0");
	snprintf(o.extra_headers, sizeof o.extra_headers,
	         "{\"X-Team\": \"scores\", \"X-Pool\": \"p\"}");
	h_open(&h, &o);
	fixture_url(h.fx, "", host, sizeof host);
	snprintf(cookies, sizeof cookies, "[{\"name\": \"k\", \"value\": \"v\", \"url\": \"%s\"}]",
	         host);
	s.cookies_json = cookies;

	lease_load(&h, "/echo-headers", &s, &u);
	assert_int_equal(fixture_hits(h.fx, "/echo-headers"), 1); /* the first request */
	e = echoed(&h, &u);
	{
		char *text = json_dumps(e, JSON_COMPACT);
		print_message("a lease's first request: %s\n", text);
		free(text);
	}
	assert_string_equal(hdr(e, "user-agent"), "lease-agent/1.0");
	assert_string_equal(hdr(e, "x-team"), "lease");
	assert_string_equal(hdr(e, "x-pool"), "p");
	assert_string_equal(hdr(e, "x-lease"), "1");
	assert_string_equal(hdr(e, "cookie"), "k=v");
	json_decref(e);
	v = eval(&h, &u, "innerWidth * 10000 + innerHeight");
	assert_int_equal(json_integer_value(v), 640 * 10000 + 480);
	json_decref(v);
	pool_release(u.lease, POOL_OK);

	lease_load(&h, "/echo-headers", NULL, &u);
	assert_int_equal(fixture_hits(h.fx, "/echo-headers"), 2);
	e = echoed(&h, &u);
	assert_string_equal(hdr(e, "user-agent"), "pool-agent/1.0");
	assert_string_equal(hdr(e, "x-team"), "scores");
	assert_string_equal(hdr(e, "x-lease"), "(none)");
	assert_string_equal(hdr(e, "cookie"), "(none)"); /* its own context: no cookie */
	json_decref(e);
	v = eval(&h, &u, "innerWidth");
	assert_int_equal(json_integer_value(v), 1280);
	json_decref(v);
	pool_release(u.lease, POOL_OK);

	/* invalid settings: refused */
	assert_null(pool_acquire_ex(h.pool, NULL, 0,
	                            &(pool_page_settings_t){ .block_resources = "images" },
	                            on_granted, NULL, &u));
	assert_null(pool_acquire_ex(h.pool, NULL, 0,
	                            &(pool_page_settings_t){ .extra_headers_json = "[1]" },
	                            on_granted, NULL, &u));
	assert_null(pool_acquire_ex(h.pool, NULL, 0,
	                            &(pool_page_settings_t){ .extra_headers_json = "{\"a\": 1}" },
	                            on_granted, NULL, &u));
	assert_null(pool_acquire_ex(h.pool, NULL, 0,
	                            &(pool_page_settings_t){ .cookies_json = "{}" }, on_granted,
	                            NULL, &u));
	assert_null(pool_acquire_watch_ex(h.pool, &(pool_page_settings_t){ .viewport_width = 640 },
	                                  on_granted, NULL, NULL, &u));
	h_close(&h);
}

/* Loads /with-image?src=/img/NAME for a lease with block list (NULL: the pool's) and returns
 * how many times the fixture was asked for that image. */
static unsigned long image_requests(h_t *h, const char *name, const char *block)
{
	pool_page_settings_t s = { .block_resources = block };
	char path[128], img[64];
	use_t u;

	snprintf(img, sizeof img, "/img/%s", name);
	snprintf(path, sizeof path, "/with-image?src=%s", img);
	lease_load(h, path, block ? &s : NULL, &u);
	json_decref(eval(h, &u, "1")); /* the page has loaded and answers */
	pool_release(u.lease, POOL_OK);
	return fixture_hits(h->fx, img);
}

/* A lease's own list holds from its page's first request, both ways. */
static void test_pool_settings__block_resources_both_ways(void **state)
{
	h_t h;
	pool_opts_t o;

	/* the pool blocks images (browser-wide); a lease with "none" gets its image */
	pool_opts_init(&o);
	snprintf(o.block_resources, sizeof o.block_resources, "image,media,font");
	h_open(&h, &o);
	assert_int_equal(image_requests(&h, "pool-blocks.png", NULL), 0);
	assert_int_equal(image_requests(&h, "lease-none.png", "none"), 1);
	assert_int_equal(image_requests(&h, "lease-font.png", "font"), 1);
	assert_int_equal(image_requests(&h, "pool-blocks-again.png", NULL), 0);
	h_close(&h);

	/* the pool blocks nothing; a lease with "image" gets none */
	pool_opts_init(&o);
	snprintf(o.block_resources, sizeof o.block_resources, "none");
	h_open(&h, &o);
	assert_int_equal(image_requests(&h, "pool-none.png", NULL), 1);
	assert_int_equal(image_requests(&h, "lease-image.png", "image"), 0);
	assert_int_equal(image_requests(&h, "lease-media-image.png", "media,image"), 0);
	assert_int_equal(image_requests(&h, "pool-none-again.png", NULL), 1);
	h_close(&h);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_settings__first_request_has_the_lease_settings),
		cmocka_unit_test(test_pool_settings__block_resources_both_ways),
	};

	if (tu_browser_test_init(argc, argv))
		return 127;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
