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
#include <stdio.h>
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
	browser_opts_t o;
	uint64_t end;

	tu_require_chromium();
	memset(&e, 0, sizeof e);
	uv_loop_init(&e.loop);
	e.ws = cdp_wsctx_new(&e.loop);
	browser_opts_init(&o);
	e.b = browser_new(&e.loop, e.ws, &o);
	assert_int_equal(browser_start(e.b, on_ready, NULL, &e), 0);
	assert_true(tu_run_until(&e.loop, &e.ready, 30000));
	assert_int_equal(e.ready_status, 0);
	devtools_url(&e);

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

	browser_close(e.b, on_b_closed, &e);
	assert_true(tu_run_until(&e.loop, &e.b_closed, 30000));
	cdp_wsctx_close(e.ws);
	uv_run(&e.loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(e.ws);
	assert_int_equal(uv_loop_close(&e.loop), 0);
	assert_int_equal(tu_fd_count(), fds_before);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cdp_ws__idle_connection_closes_at_once),
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
