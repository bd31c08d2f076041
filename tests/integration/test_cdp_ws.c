/*
 * Integration tests for the websocket transport against the real Chromium: an idle
 * connection closes at once (lws only looks at an async-kill timeout when it next services
 * the connection, which took 30 s on an idle one), and many connections to one browser come
 * and go without disturbing each other.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cdp/cdp_ws.h"
#include "pool/browser.h"
#include "tests/support/testutil.h"
#include "util/log.h"

typedef struct env {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	browser_t *b;
	int ready, ready_status, b_closed;
	char url[512];
} env_t;

typedef struct c {
	cdp_conn_t *conn;
	int opened, closed, replied;
	uint64_t t_close;
} c_t;

static void on_ready(browser_t *b, int status, const char *why, void *ud)
{
	env_t *e = ud;
	e->ready = 1;
	e->ready_status = status;
}

static void on_b_closed(browser_t *b, void *ud) { ((env_t *)ud)->b_closed = 1; }

static void on_open(cdp_conn_t *conn, int status, const char *why, void *ud)
{
	c_t *c = ud;
	assert_int_equal(status, 0);
	c->conn = conn;
	c->opened = 1;
}

static void on_closed(cdp_conn_t *conn, void *ud)
{
	c_t *c = ud;
	c->closed = 1;
	c->t_close = tu_now_ms() - c->t_close;
}

static void on_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	assert_int_equal(r->status, 0);
	((c_t *)ud)->replied = 1;
}

/* ws://127.0.0.1:PORT/PATH from the browser's DevToolsActivePort file. */
static void devtools_url(env_t *e)
{
	char path[600], port[16] = "", p2[400] = "";
	FILE *f;

	snprintf(path, sizeof path, "%s/DevToolsActivePort", browser_user_data_dir(e->b));
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(fscanf(f, "%15s %399s", port, p2) == 2);
	fclose(f);
	snprintf(e->url, sizeof e->url, "ws://127.0.0.1:%s%s", port, p2);
}

/* A loop, the lws context and one launched browser whose DevTools URL is in e->url. */
static void env_start(env_t *e)
{
	browser_opts_t o;

	tu_require_chromium();
	memset(e, 0, sizeof *e);
	uv_loop_init(&e->loop);
	e->ws = cdp_wsctx_new(&e->loop);
	browser_opts_init(&o);
	e->b = browser_new(&e->loop, e->ws, &o);
	assert_int_equal(browser_start(e->b, on_ready, NULL, e), 0);
	assert_true(tu_run_until(&e->loop, &e->ready, 30000));
	assert_int_equal(e->ready_status, 0);
	devtools_url(e);
}

static void env_stop(env_t *e)
{
	browser_close(e->b, on_b_closed, e);
	assert_true(tu_run_until(&e->loop, &e->b_closed, 30000));
	cdp_wsctx_close(e->ws);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(e->ws);
	assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void connect_one(env_t *e, c_t *c)
{
	memset(c, 0, sizeof *c);
	assert_int_equal(cdp_conn_new_ws(e->ws, e->url, NULL, 0, on_open, NULL, c), 0);
	assert_true(tu_run_until(&e->loop, &c->opened, 10000));
}

static void close_one(env_t *e, c_t *c)
{
	c->t_close = tu_now_ms();
	cdp_conn_close(c->conn, on_closed, c);
	assert_true(tu_run_until(&e->loop, &c->closed, 40000));
}

static void test_cdp_ws__idle_connection_closes_at_once(void **state)
{
	static env_t e; /* outlives a failed check: libuv keeps the loop in its signal lists */
	c_t idle, busy;
	int fds_before = tu_fd_count();
	uint64_t end;

	env_start(&e);

	connect_one(&e, &idle);
	/* others come and go while the first one sits idle */
	for (int i = 0; i < 3; i++) {
		connect_one(&e, &busy);
		assert_int_equal(cdp_conn_send(busy.conn, NULL, "Browser.getVersion", NULL, 5000,
		                               on_reply, &busy, NULL),
		                 0);
		assert_true(tu_run_until(&e.loop, &busy.replied, 5000));
		close_one(&e, &busy);
		assert_true(busy.t_close < 1000);
	}
	end = tu_now_ms() + 1500; /* idle for a while */
	while (tu_now_ms() < end)
		uv_run(&e.loop, UV_RUN_NOWAIT), usleep(10000);
	close_one(&e, &idle);
	print_message("idle connection closed in %llu ms\n", (unsigned long long)idle.t_close);
	assert_true(idle.t_close < 1000);

	env_stop(&e);
	assert_int_equal(tu_fd_count(), fds_before);
}

typedef struct rep {
	int calls, status;
	json_t *result; /* new reference */
} rep_t;

static void on_rep(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	rep_t *x = ud;

	x->calls++;
	x->status = r->status;
	x->result = r->result ? json_incref(r->result) : NULL;
}

/* Sends and runs the loop until the reply; returns the status, *out gets the result. */
static int call(env_t *e, cdp_conn_t *c, const char *sid, const char *method, json_t *params,
                json_t **out)
{
	rep_t x = { 0 };

	assert_int_equal(cdp_conn_send(c, sid, method, params, 10000, on_rep, &x, NULL), 0);
	assert_true(tu_run_until(&e->loop, &x.calls, 15000));
	if (out)
		*out = x.result;
	else
		json_decref(x.result);
	return x.status;
}

/* With a 1 MiB cap: a 2 MiB reply fails its own command only, and at once; a command over
 * the cap is refused before it is sent; the connection goes on working. */
static void test_cdp_ws__message_cap_fails_one_message(void **state)
{
	static env_t e; /* outlives a failed check: libuv keeps the loop in its signal lists */
	cdp_conn_opts_t co;
	c_t c;
	rep_t refused = { 0 };
	json_t *res = NULL;
	char sid[128];
	char *huge;
	uint64_t t0;

	env_start(&e);

	cdp_conn_opts_init(&co);
	co.max_message = 1024 * 1024;
	memset(&c, 0, sizeof c);
	assert_int_equal(cdp_conn_new_ws(e.ws, e.url, &co, 0, on_open, NULL, &c), 0);
	assert_true(tu_run_until(&e.loop, &c.opened, 10000));

	/* a page session to evaluate in */
	assert_int_equal(call(&e, c.conn, NULL, "Target.createTarget",
	                      json_pack("{s:s}", "url", "about:blank"), &res),
	                 0);
	{
		json_t *target = res;
		assert_int_equal(call(&e, c.conn, NULL, "Target.attachToTarget",
		                      json_pack("{s:O, s:b}", "targetId",
		                                json_object_get(target, "targetId"), "flatten", 1),
		                      &res),
		                 0);
		json_decref(target);
	}
	snprintf(sid, sizeof sid, "%s", json_string_value(json_object_get(res, "sessionId")));
	json_decref(res);

	/* outgoing over the cap: refused at once, no callback */
	huge = malloc(2 * 1024 * 1024);
	memset(huge, 'x', 2 * 1024 * 1024 - 1);
	huge[2 * 1024 * 1024 - 1] = '\0';
	assert_int_equal(cdp_conn_send(c.conn, sid, "Runtime.evaluate",
	                               json_pack("{s:s}", "expression", huge), 5000, on_rep,
	                               &refused, NULL),
	                 -EMSGSIZE);
	free(huge);
	assert_int_equal(refused.calls, 0);

	/* incoming over the cap: that command fails at once, not at its timeout */
	t0 = tu_now_ms();
	assert_int_equal(call(&e, c.conn, sid, "Runtime.evaluate",
	                      json_pack("{s:s, s:b}", "expression", "'y'.repeat(2 * 1024 * 1024)",
	                                "returnByValue", 1),
	                      NULL),
	                 -EMSGSIZE);
	print_message("2 MiB reply refused after %llu ms\n", (unsigned long long)(tu_now_ms() - t0));
	assert_true(tu_now_ms() - t0 < 5000);

	/* and the connection still works */
	assert_int_equal(call(&e, c.conn, sid, "Runtime.evaluate",
	                      json_pack("{s:s, s:b}", "expression", "1 + 1", "returnByValue", 1),
	                      &res),
	                 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(res, "result"), "value")),
	                 2);
	json_decref(res);
	close_one(&e, &c);

	env_stop(&e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cdp_ws__idle_connection_closes_at_once),
		cmocka_unit_test(test_cdp_ws__message_cap_fails_one_message),
	};

	if (browser_exec_wrapper_main(argc, argv))
		return 127;
	signal(SIGPIPE, SIG_IGN);
	{
		uv_loop_t l; /* libuv's process-wide signal pipe, before any fd baseline */
		uv_signal_t s;
		uv_loop_init(&l);
		uv_signal_init(&l, &s);
		uv_close((uv_handle_t *)&s, NULL);
		uv_run(&l, UV_RUN_DEFAULT);
		uv_loop_close(&l);
	}
	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
