/*
 * test_httpd: the endpoint server on a real loop, with raw uv_tcp clients (httpkit.h) for
 * malformed input and libcurl (util/fetch) for ordinary GETs, all on the same loop and thread.
 * Each case also runs a 20 ms uv_timer "work" tick (the loop must never stall), creates a
 * cdp_wsctx on the same loop (lws client context next to the server's), and ends with
 * uv_loop_close() == 0 and the fd count back where it started.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cdp/cdp_ws.h"
#include "daemon/httpd.h"
#include "tests/support/httpkit.h"
#include "tests/support/testutil.h"
#include "util/fetch.h"
#include "util/log.h"

typedef struct env {
	uv_loop_t loop;
	httpd_t *h;
	cdp_wsctx_t *ws;
	fetch_ctx_t *fetch;
	uv_timer_t work;
	uint64_t ticks, last_tick, max_gap, t_start;
	int fetch_closed;
	int fds_before;
	char last_query[256];
	unsigned handler_calls;
} env_t;

static env_t *E; /* heap: a failed assertion longjmps out of the test */

/* Sends req on a new connection and waits for the response and EOF. */
static rawc_t *exchange(const char *req, size_t len)
{
	return rawc_exchange(&E->loop, httpd_port(E->h), req, len);
}

/* ---- server side ---- */

static void h_metrics(void *ud, const char *path, const char *query, httpd_reply_t *r)
{
	env_t *e = ud;
	e->handler_calls++;
	snprintf(e->last_query, sizeof e->last_query, "%s", query);
	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	httpd_reply_printf(r, "# TYPE up gauge\nup 1\n");
}

static void h_big(void *ud, const char *path, const char *query, httpd_reply_t *r)
{
	for (int i = 0; i < 20000; i++)
		httpd_reply_printf(r, "line %05d of a large reply\n", i);
}

static void h_teapot(void *ud, const char *path, const char *query, httpd_reply_t *r)
{
	httpd_reply_error(r, 503, "not ready: \"browser\" down");
}

static void on_work(uv_timer_t *t)
{
	uint64_t now = uv_now(t->loop);
	if (E->ticks && now - E->last_tick > E->max_gap)
		E->max_gap = now - E->last_tick;
	E->last_tick = now;
	E->ticks++;
}

static void on_ws_connect(cdp_conn_t *conn, int status, const char *why, void *ud)
{
	int *done = ud;
	assert_null(conn);
	assert_int_not_equal(status, 0);
	*done = 1;
}

static void env_start(unsigned max_conns, unsigned idle_ms)
{
	httpd_opts_t o;

	E = calloc(1, sizeof *E);
	assert_non_null(E);
	E->fds_before = tu_fd_count();
	E->t_start = tu_now_ms();
	assert_int_equal(uv_loop_init(&E->loop), 0);
	/* the CDP client context first, the server's context next to it on the same loop */
	E->ws = cdp_wsctx_new(&E->loop);
	assert_non_null(E->ws);
	httpd_opts_init(&o);
	snprintf(o.addr, sizeof o.addr, "127.0.0.1:0");
	o.max_conns = max_conns;
	o.idle_timeout_ms = idle_ms;
	E->h = httpd_new(&E->loop, &o);
	assert_non_null(E->h);
	assert_int_equal(httpd_route(E->h, "/metrics", h_metrics, E), 0);
	assert_int_equal(httpd_route(E->h, "/big", h_big, E), 0);
	assert_int_equal(httpd_route(E->h, "/readyz", h_teapot, E), 0);
	assert_int_equal(httpd_start(E->h), 0);
	assert_true(httpd_port(E->h) > 0);
	E->fetch = fetch_ctx_new(&E->loop);
	assert_non_null(E->fetch);
	uv_timer_init(&E->loop, &E->work);
	uv_timer_start(&E->work, on_work, 20, 20);
}

static void on_fetch_closed(void *ud) { *(int *)ud = 1; }

/* Closes everything (extra too: another server on the loop, or NULL), runs the loop to
 * its end, frees, and audits the loop and the fds. */
static void env_finish_with(httpd_t *extra)
{
	int closed_fds;

	/* the loop was never blocked: a 20 ms tick never waited a whole second */
	if (tu_now_ms() - E->t_start > 500)
		assert_true(E->ticks > 0);
	if (E->max_gap >= 1000)
		fail_msg("the work timer stalled for %llu ms", (unsigned long long)E->max_gap);
	uv_close((uv_handle_t *)&E->work, NULL);
	fetch_ctx_close(E->fetch, on_fetch_closed, &E->fetch_closed);
	httpd_close(E->h);
	httpd_close(extra);
	cdp_wsctx_close(E->ws);
	uv_run(&E->loop, UV_RUN_DEFAULT);
	assert_true(E->fetch_closed);
	httpd_free(E->h);
	httpd_free(extra);
	cdp_wsctx_free(E->ws);
	assert_int_equal(uv_loop_close(&E->loop), 0);
	closed_fds = tu_fd_count();
	assert_int_equal(closed_fds, E->fds_before);
	free(E);
	E = NULL;
}

static void env_finish(void) { env_finish_with(NULL); }

typedef struct fres {
	int done, status;
	long code;
	char body[256];
} fres_t;

static void on_fetched(const fetch_result_t *r, void *ud)
{
	fres_t *f = ud;
	f->status = r->status;
	f->code = r->http_code;
	snprintf(f->body, sizeof f->body, "%s", r->body);
	f->done = 1;
}

/* An ordinary GET with libcurl on the same loop. */
static void curl_get(const char *path, long want_code)
{
	char url[128];
	fres_t f = { 0 };

	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", httpd_port(E->h), path);
	assert_int_equal(fetch_get(E->fetch, url, 10000, 0, on_fetched, &f), 0);
	assert_true(tu_run_until(&E->loop, &f.done, 15000));
	assert_int_equal(f.status, 0);
	assert_int_equal(f.code, want_code);
	if (want_code == 200)
		assert_string_equal(f.body, "# TYPE up gauge\nup 1\n");
}

#define REQ(s) exchange(s, sizeof(s) - 1)

/* ---- cases ---- */

static void test_httpd__get_head_query_and_404(void **state)
{
	httpd_stats_t st;
	rawc_t *c;
	int ws_done = 0;

	env_start(8, 5000);
	curl_get("/metrics", 200);

	c = REQ("GET /metrics?name=up&x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(rawc_status(c), 200);
	assert_non_null(strstr(c->rx, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(c->rx, "Content-Length: 21\r\n"));
	assert_non_null(strstr(c->rx, "Cache-Control: no-store\r\n"));
	assert_string_equal(rawc_body(c), "# TYPE up gauge\nup 1\n");
	assert_string_equal(E->last_query, "name=up&x=1");
	rawc_free(c);

	c = REQ("HEAD /metrics HTTP/1.0\r\n\r\n");
	assert_int_equal(rawc_status(c), 200);
	assert_non_null(strstr(c->rx, "Content-Length: 21\r\n"));
	assert_string_equal(rawc_body(c), "");
	rawc_free(c);

	c = REQ("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
	rawc_expect_json_error(c, 404);
	rawc_free(c);

	/* a handler's own JSON error, escaped by the server */
	c = REQ("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
	rawc_expect_json_error(c, 503);
	assert_non_null(strstr(rawc_body(c), "\\\"browser\\\""));
	rawc_free(c);

	/* a large reply arrives whole */
	c = REQ("GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(rawc_status(c), 200);
	assert_int_equal(strlen(rawc_body(c)), 20000 * strlen("line 00000 of a large reply\n"));
	rawc_free(c);

	/* the CDP client context on the same loop works meanwhile: its websocket handshake
	 * against this server is answered (404) and reported as a failed connect */
	{
		char url[96];
		snprintf(url, sizeof url, "ws://127.0.0.1:%d/devtools/browser/x", httpd_port(E->h));
		assert_int_equal(cdp_conn_new_ws(E->ws, url, NULL, 5000, on_ws_connect, NULL,
		                                 &ws_done),
		                 0);
		assert_true(tu_run_until(&E->loop, &ws_done, 15000));
	}
	curl_get("/metrics", 200);

	httpd_get_stats(E->h, &st);
	assert_int_equal(st.responses[2], 5);
	assert_int_equal(st.responses[4], 2);
	assert_int_equal(st.responses[5], 1);
	assert_int_equal(st.bad_requests, 0);

	/* closing the server with a connection still open ends it too */
	c = rawc_new(&E->loop, httpd_port(E->h));
	rawc_send(c, "GET /met", 8);
	do {
		uv_run(&E->loop, UV_RUN_ONCE);
		httpd_get_stats(E->h, &st);
	} while (st.open < 1);
	env_finish();
	assert_true(c->eof);
	assert_true(c->closed);
	assert_int_equal(c->rx_len, 0);
	free(c);
}

static void test_httpd__bad_requests_get_json_errors(void **state)
{
	char big[12000];
	httpd_stats_t st;
	rawc_t *c;
	size_t n;

	env_start(8, 5000);

	c = REQ("POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
	rawc_expect_json_error(c, 405);
	assert_non_null(strstr(c->rx, "Allow: GET, HEAD\r\n"));
	rawc_free(c);

	/* a head over max_head_bytes (8192) */
	n = (size_t)snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Pad: ");
	memset(big + n, 'p', 10000);
	n += 10000;
	memcpy(big + n, "\r\n\r\n", 4);
	c = exchange(big, n + 4);
	rawc_expect_json_error(c, 431);
	rawc_free(c);

	/* a target over HTTPD_MAX_TARGET */
	n = (size_t)snprintf(big, sizeof big, "GET /metrics?");
	memset(big + n, 'q', 3000);
	n += 3000;
	n += (size_t)snprintf(big + n, sizeof big - n, " HTTP/1.1\r\nHost: t\r\n\r\n");
	c = exchange(big, n);
	rawc_expect_json_error(c, 414);
	rawc_free(c);

	/* too many header lines */
	n = (size_t)snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nHost: t\r\n");
	for (int i = 0; i < 70; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "X-%d: v\r\n", i);
	n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
	c = exchange(big, n);
	rawc_expect_json_error(c, 431);
	rawc_free(c);

	/* garbage: a TLS ClientHello start, answered without waiting for more */
	c = REQ("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
	rawc_expect_json_error(c, 400);
	rawc_free(c);

	c = REQ("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
	rawc_expect_json_error(c, 400);
	assert_non_null(strstr(c->rx, "pipelining"));
	rawc_free(c);

	c = REQ("GET /metrics HTTP/1.1\r\n\r\n");
	rawc_expect_json_error(c, 400);
	rawc_free(c);

	c = REQ("GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody");
	rawc_expect_json_error(c, 400);
	rawc_free(c);

	/* binary junk with NULs */
	{
		char junk[300];
		for (size_t i = 0; i < sizeof junk; i++)
			junk[i] = (char)(i * 7);
		c = exchange(junk, sizeof junk);
		rawc_expect_json_error(c, 400);
		rawc_free(c);
	}

	/* the server is still fine */
	curl_get("/metrics", 200);
	httpd_get_stats(E->h, &st);
	assert_int_equal(st.bad_requests, 9);
	assert_int_equal(st.responses[4], 9);
	assert_int_equal(st.responses[2], 1);
	assert_int_equal(E->handler_calls, 1); /* no bad request reached a handler */
	env_finish();
}

typedef struct drip {
	rawc_t *c;
	const char *text;
	size_t off;
} drip_t;

static void on_drip(uv_timer_t *t)
{
	drip_t *d = t->data;
	if (d->c->eof || !d->text[d->off])
		return;
	rawc_send(d->c, d->text + d->off, 1);
	d->off++;
}

static void test_httpd__slow_and_silent_clients_time_out(void **state)
{
	static const char slow[] = "GET /metrics HTTP/1.1\r\nHost: t\r\nUser-Agent: slowloris\r\n"
	                           "X-More: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
	httpd_stats_t st;
	uv_timer_t drip_timer;
	drip_t d = { 0 };
	rawc_t *silent, *loris;
	int both = 0;

	env_start(8, 1000);
	silent = rawc_new(&E->loop, httpd_port(E->h));
	loris = rawc_new(&E->loop, httpd_port(E->h));
	d.c = loris;
	d.text = slow;
	uv_timer_init(&E->loop, &drip_timer);
	drip_timer.data = &d;
	uv_timer_start(&drip_timer, on_drip, 0, 100); /* one byte every 100 ms */

	/* meanwhile ordinary requests are served */
	curl_get("/metrics", 200);
	{
		uint64_t end = tu_now_ms() + 15000;
		while (!(silent->eof && loris->eof) && tu_now_ms() < end)
			uv_run(&E->loop, UV_RUN_ONCE);
		both = silent->eof && loris->eof;
	}
	assert_true(both);
	rawc_expect_json_error(silent, 408);
	rawc_expect_json_error(loris, 408);
	/* the slow client had sent only part of its head */
	assert_true(d.off < sizeof slow - 1);
	curl_get("/metrics", 200);
	uv_close((uv_handle_t *)&drip_timer, NULL);
	rawc_free(silent);
	rawc_free(loris);
	httpd_get_stats(E->h, &st);
	assert_int_equal(st.timeouts, 2);
	env_finish();
}

/* 16 MiB: more than the socket buffers of a client that reads nothing can take. */
static void h_huge(void *ud, const char *path, const char *query, httpd_reply_t *r)
{
	size_t n = (size_t)16 * 1024 * 1024;
	char *b = malloc(n);

	if (b)
		memset(b, 'x', n);
	httpd_reply_take(r, b, b ? n : 0);
}

/* A client that asks for /huge and reads none of it: its connection stays writing. */
static rawc_t *stalled_reader(void)
{
	rawc_t *c = rawc_new(&E->loop, httpd_port(E->h));
	int small = 4096;
	static const char req[] = "GET /huge HTTP/1.1\r\nHost: t\r\n\r\n";

	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_recv_buffer_size((uv_handle_t *)&c->tcp, &small);
	rawc_send(c, req, sizeof req - 1);
	return c;
}

static void wait_open(unsigned want)
{
	httpd_stats_t st;
	uint64_t end = tu_now_ms() + 5000;

	do {
		uv_run(&E->loop, UV_RUN_NOWAIT);
		httpd_get_stats(E->h, &st);
	} while (st.open != want && tu_now_ms() < end);
	assert_int_equal(st.open, want);
}

/* Blocks the loop 100 ms every turn: a daemon busy with hundreds of pages. */
static void on_busy(uv_timer_t *t)
{
	uv_sleep(100);
}

/* A client on a thread of its own, as curl or Prometheus would be: asks for path and reads
 * the reply to its end, 256 KiB every 100 ms (2.5 MB/s). */
typedef struct tclient {
	int port;
	const char *path;
	size_t got;        /* bytes of the reply, head included */
	atomic_int done;
} tclient_t;

static void *tclient_run(void *arg)
{
	tclient_t *t = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)t->port) };
	char req[128];
	static char buf[256 * 1024];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
		n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", t->path);
		if (send(fd, req, (size_t)n, 0) == n)
			while ((n = recv(fd, buf, sizeof buf, MSG_WAITALL)) > 0) {
				t->got += (size_t)n;
				usleep(100 * 1000);
			}
	}
	if (fd >= 0)
		close(fd);
	atomic_store(&t->done, 1);
	return NULL;
}

/* A reply that takes longer than the idle timeout to hand over arrives whole, from a loop
 * that sleeps 100 ms a turn to a client that reads 2.5 MB/s: the idle timeout runs from
 * the last part the socket took, not from the start of the reply, and the time is the
 * time now, not the turn's. 16 MiB at 2.5 MB/s is 6.5 s, against an idle timeout of 3 s. */
static void test_httpd__big_reply_to_a_slow_reader(void **state)
{
	uv_timer_t busy;
	tclient_t t = { 0 };
	pthread_t th;
	uint64_t t0, until;

	env_start(8, 3000);
	assert_int_equal(httpd_route(E->h, "/huge", h_huge, NULL), 0);
	uv_timer_init(&E->loop, &busy);
	uv_timer_start(&busy, on_busy, 0, 1);
	t.port = httpd_port(E->h);
	t.path = "/huge";
	t0 = tu_now_ms();
	assert_int_equal(pthread_create(&th, NULL, tclient_run, &t), 0);
	until = t0 + 120000;
	while (!atomic_load(&t.done) && tu_now_ms() < until)
		uv_run(&E->loop, UV_RUN_ONCE);
	assert_int_equal(pthread_join(th, NULL), 0);
	print_message("%zu bytes in %llu ms\n", t.got, (unsigned long long)(tu_now_ms() - t0));
	uv_close((uv_handle_t *)&busy, NULL);
	/* the head, then all of the 16 MiB body */
	assert_true(t.got > (size_t)16 * 1024 * 1024);
	E->max_gap = 0; /* the sleeps stalled the work timer on purpose */
	env_finish();
}

static void test_httpd__connection_cap(void **state)
{
	rawc_t *idle[2], *busy[2], *extra, *c;
	httpd_stats_t st;
	uint64_t end;

	env_start(2, 1500);
	/* both slots held by silent clients: a complete request takes the slot of the oldest
	 * (reset: no bytes, counted as evicted) and is served */
	for (int i = 0; i < 2; i++) {
		idle[i] = rawc_new(&E->loop, httpd_port(E->h));
		wait_open((unsigned)i + 1);
	}
	c = REQ("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(rawc_status(c), 200);
	rawc_free(c);
	assert_true(tu_run_until(&E->loop, &idle[0]->eof, 5000));
	assert_int_equal(idle[0]->rx_len, 0);
	assert_false(idle[1]->eof);
	httpd_get_stats(E->h, &st);
	assert_int_equal(st.evicted, 1);
	assert_int_equal(st.refused, 0);
	rawc_free(idle[0]);
	/* the other one times out (408) */
	assert_true(tu_run_until(&E->loop, &idle[1]->eof, 10000));
	rawc_expect_json_error(idle[1], 408);
	rawc_free(idle[1]);
	wait_open(0);

	/* both slots writing replies their clients do not read: nothing to evict, so a new
	 * connection is answered 503 and counted */
	assert_int_equal(httpd_route(E->h, "/huge", h_huge, NULL), 0);
	busy[0] = stalled_reader();
	busy[1] = stalled_reader();
	end = tu_now_ms() + 5000;
	do {
		uv_run(&E->loop, UV_RUN_NOWAIT);
		httpd_get_stats(E->h, &st);
	} while (st.responses[2] < 3 && tu_now_ms() < end);
	assert_int_equal(st.responses[2], 3); /* both are being answered */
	assert_int_equal(st.open, 2);
	extra = rawc_new(&E->loop, httpd_port(E->h));
	assert_true(tu_run_until(&E->loop, &extra->eof, 5000));
	rawc_expect_json_error(extra, 503);
	rawc_free(extra);
	httpd_get_stats(E->h, &st);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.evicted, 1);
	assert_int_equal(st.timeouts, 1);
	for (int i = 0; i < 2; i++)
		rawc_free(busy[i]);
	wait_open(0);
	curl_get("/metrics", 200);
	env_finish();
}

static void test_httpd__bind_errors_are_clear(void **state)
{
	httpd_opts_t o;
	httpd_t *second;
	char addr[64];

	env_start(4, 1000);
	/* the same address again: -EADDRINUSE, and the failed server still closes cleanly */
	httpd_opts_init(&o);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", httpd_port(E->h));
	snprintf(o.addr, sizeof o.addr, "%s", addr);
	second = httpd_new(&E->loop, &o);
	assert_non_null(second);
	assert_int_equal(httpd_start(second), -EADDRINUSE);
	assert_int_equal(httpd_port(second), -1);
	httpd_close(second);
	/* an address this machine does not have */
	httpd_opts_init(&o);
	snprintf(o.addr, sizeof o.addr, "192.0.2.1:0");
	{
		httpd_t *third = httpd_new(&E->loop, &o);
		assert_non_null(third);
		assert_int_equal(httpd_start(third), -EADDRNOTAVAIL);
		httpd_close(third);
		uv_run(&E->loop, UV_RUN_NOWAIT);
		httpd_free(third);
	}
	curl_get("/metrics", 200);
	uv_run(&E->loop, UV_RUN_NOWAIT);
	httpd_free(second);
	env_finish();
}

static void test_httpd__ipv6_loopback(void **state)
{
	httpd_opts_t o;
	httpd_t *h6;
	fres_t f = { 0 };
	char url[96];

	env_start(4, 1000);
	httpd_opts_init(&o);
	snprintf(o.addr, sizeof o.addr, "[::1]:0");
	h6 = httpd_new(&E->loop, &o);
	assert_non_null(h6);
	assert_int_equal(httpd_route(h6, "/metrics", h_metrics, E), 0);
	assert_int_equal(httpd_start(h6), 0);
	snprintf(url, sizeof url, "http://[::1]:%d/metrics", httpd_port(h6));
	assert_int_equal(fetch_get(E->fetch, url, 10000, 0, on_fetched, &f), 0);
	assert_true(tu_run_until(&E->loop, &f.done, 15000));
	assert_int_equal(f.code, 200);
	curl_get("/metrics", 200);
	env_finish_with(h6);
}

/* The container's METRICS_ADDR: every IPv4 interface. */
static void test_httpd__any_ipv4_address(void **state)
{
	httpd_opts_t o;
	httpd_t *h4;
	fres_t f = { 0 };
	char url[96];

	env_start(4, 1000);
	httpd_opts_init(&o);
	snprintf(o.addr, sizeof o.addr, "0.0.0.0:0");
	h4 = httpd_new(&E->loop, &o);
	assert_non_null(h4);
	assert_int_equal(httpd_route(h4, "/metrics", h_metrics, E), 0);
	assert_int_equal(httpd_start(h4), 0);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", httpd_port(h4));
	assert_int_equal(fetch_get(E->fetch, url, 10000, 0, on_fetched, &f), 0);
	assert_true(tu_run_until(&E->loop, &f.done, 15000));
	assert_int_equal(f.code, 200);
	env_finish_with(h4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_httpd__get_head_query_and_404),
		cmocka_unit_test(test_httpd__bad_requests_get_json_errors),
		cmocka_unit_test(test_httpd__slow_and_silent_clients_time_out),
		cmocka_unit_test(test_httpd__big_reply_to_a_slow_reader),
		cmocka_unit_test(test_httpd__connection_cap),
		cmocka_unit_test(test_httpd__bind_errors_are_clear),
		cmocka_unit_test(test_httpd__ipv6_loopback),
		cmocka_unit_test(test_httpd__any_ipv4_address),
	};
	log_set_level(LOG_WARN);
	/* libuv opens a process-wide pipe pair the first time a signal handle exists (lws
	 * makes one); open it now so the per-case fd audit sees only the case's own fds */
	{
		uv_loop_t l;
		uv_signal_t sig;
		uv_loop_init(&l);
		uv_signal_init(&l, &sig);
		uv_close((uv_handle_t *)&sig, NULL);
		uv_run(&l, UV_RUN_DEFAULT);
		uv_loop_close(&l);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
