/*
 * Unit tests for the fixture HTTP server. The server and the client share one loop and
 * one thread: the client is a small libuv TCP client that writes raw request bytes and
 * parses the responses, so every case can also send what a browser never would (oversized
 * heads, pipelined requests). Every case ends by closing the fixture, checking
 * uv_loop_close() == 0 and that the process holds as many fds as before the loop existed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <uv.h>

#include "tests/fixture/fixture.h"
#include "tests/support/testutil.h"
#include "util/log.h"

#define WAIT_MS 5000
#define RX_MAX (64 * 1024)

struct tstate;

struct client {
	uv_tcp_t tcp;
	uv_connect_t connect;
	struct tstate *t;
	int connected; /* 1 connected, < 0 failed */
	int writes_pending;
	int eof;
	int closed;
	size_t rxlen;
	char rx[RX_MAX];
};

struct tstate {
	uv_loop_t loop;
	uv_timer_t timer;
	int timed_out;
	int fds_before;
	fixture_t *f;
	int fixture_closed;
	struct client *clients[8];
	int nclients;
};

struct resp {
	int status;
	char head[4096];
	char body[RX_MAX];
	size_t body_len;
};

/* ---- running the loop ---- */

static void on_timeout(uv_timer_t *t)
{
	struct tstate *ts = t->data;

	ts->timed_out = 1;
}

/* Runs the loop until cond(arg) holds or ms pass; returns whether cond holds. */
static int run_until(struct tstate *t, int (*cond)(void *), void *arg, uint64_t ms)
{
	t->timed_out = 0;
	uv_timer_start(&t->timer, on_timeout, ms, 0);
	while (!cond(arg) && !t->timed_out)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_timer_stop(&t->timer);
	return cond(arg);
}

static int flag_set(void *arg)
{
	return *(int *)arg != 0;
}

static int never(void *arg)
{
	return 0;
}

/* ---- the client ---- */

static void on_client_closed(uv_handle_t *h)
{
	struct client *c = h->data;

	c->closed = 1;
}

static void on_connect(uv_connect_t *req, int status)
{
	struct client *c = req->data;

	c->connected = status == 0 ? 1 : status;
}

static void on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *c = h->data;

	buf->base = c->rx + c->rxlen;
	buf->len = sizeof c->rx - c->rxlen;
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;

	if (nread > 0)
		c->rxlen += (size_t)nread;
	else if (nread < 0)
		c->eof = 1; /* EOF, reset or a full buffer: the tests treat them alike */
}

static int client_connected(void *arg)
{
	return ((struct client *)arg)->connected != 0;
}

static struct client *client_connect(struct tstate *t)
{
	struct sockaddr_in addr;
	struct client *c = calloc(1, sizeof *c);

	assert_non_null(c);
	assert_true(t->nclients < (int)(sizeof t->clients / sizeof t->clients[0]));
	t->clients[t->nclients++] = c;
	c->t = t;
	c->tcp.data = c;
	c->connect.data = c;
	assert_int_equal(uv_tcp_init(&t->loop, &c->tcp), 0);
	assert_int_equal(uv_ip4_addr("127.0.0.1", fixture_port(t->f), &addr), 0);
	assert_int_equal(uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&addr, on_connect),
	                 0);
	assert_true(run_until(t, client_connected, c, WAIT_MS));
	assert_int_equal(c->connected, 1);
	assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, on_client_alloc, on_client_read), 0);
	return c;
}

static void on_client_write(uv_write_t *req, int status)
{
	struct client *c = req->handle->data;

	c->writes_pending--;
	free(req);
}

static int client_written(void *arg)
{
	return ((struct client *)arg)->writes_pending == 0;
}

/* Writes len bytes of data and waits until libuv has handed them to the kernel. */
static void client_send(struct client *c, const char *data, size_t len)
{
	uv_write_t *req = malloc(sizeof *req + len);
	uv_buf_t buf;

	assert_non_null(req);
	memcpy(req + 1, data, len);
	buf = uv_buf_init((char *)(req + 1), (unsigned)len);
	c->writes_pending++;
	assert_int_equal(uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, on_client_write), 0);
	assert_true(run_until(c->t, client_written, c, WAIT_MS));
}

static void client_sendf(struct client *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void client_sendf(struct client *c, const char *fmt, ...)
{
	char req[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(req, sizeof req, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof req);
	client_send(c, req, (size_t)n);
}

static void client_close(struct client *c)
{
	if (!c->closed && !uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_client_closed);
	assert_true(run_until(c->t, flag_set, &c->closed, WAIT_MS));
}

/* The value of header name in head (a response head), or NULL; copied into out. */
static const char *header(const char *head, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p && p[2] != '\r' && p[2] != '\0') {
		const char *line = p + 2, *end = strstr(line, "\r\n");
		if (!end)
			break;
		if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
			const char *v = line + n + 1;
			while (*v == ' ')
				v++;
			snprintf(out, outlen, "%.*s", (int)(end - v), v);
			return out;
		}
		p = end;
	}
	return NULL;
}

struct want_resp {
	struct client *c;
	int head_only;
	size_t total; /* bytes of the complete response, once known */
};

/* Is there a complete response at the start of the client's input? */
static int resp_complete(void *arg)
{
	struct want_resp *w = arg;
	struct client *c = w->c;
	char head[4096], cl[32];
	const char *end;
	size_t hlen, blen = 0;

	if (c->rxlen >= sizeof c->rx - 1)
		return 1; /* cannot grow: let resp_read fail */
	c->rx[c->rxlen] = '\0';
	end = strstr(c->rx, "\r\n\r\n");
	if (!end)
		return c->eof;
	hlen = (size_t)(end - c->rx) + 4;
	if (hlen >= sizeof head)
		return 1;
	memcpy(head, c->rx, hlen);
	head[hlen] = '\0';
	if (!w->head_only && header(head, "Content-Length", cl, sizeof cl))
		blen = strtoul(cl, NULL, 10);
	if (c->rxlen < hlen + blen)
		return c->eof;
	w->total = hlen + blen;
	return 1;
}

/*
 * Waits for one complete response on c and moves it from the client's input into r.
 * head_only: the request was a HEAD (Content-Length describes a body not sent).
 */
static void resp_read(struct client *c, struct resp *r, int head_only)
{
	struct want_resp w = { c, head_only, 0 };
	const char *end;
	size_t hlen;

	memset(r, 0, sizeof *r);
	assert_true(run_until(c->t, resp_complete, &w, WAIT_MS));
	if (w.total == 0)
		fail_msg("no complete response (%zu bytes received, eof %d)", c->rxlen, c->eof);
	end = strstr(c->rx, "\r\n\r\n");
	hlen = (size_t)(end - c->rx) + 4;
	memcpy(r->head, c->rx, hlen);
	r->head[hlen] = '\0';
	r->body_len = w.total - hlen;
	memcpy(r->body, c->rx + hlen, r->body_len);
	r->body[r->body_len] = '\0';
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
	memmove(c->rx, c->rx + w.total, c->rxlen - w.total);
	c->rxlen -= w.total;
}

static int client_eof(void *arg)
{
	return ((struct client *)arg)->eof;
}

/* ---- setup and teardown ---- */

static void on_fixture_closed(void *ud)
{
	struct tstate *t = ud;

	t->fixture_closed = 1;
}

static int setup(void **state)
{
	struct tstate *t = calloc(1, sizeof *t);

	assert_non_null(t);
	t->fds_before = tu_fd_count();
	assert_int_equal(uv_loop_init(&t->loop), 0);
	assert_int_equal(uv_timer_init(&t->loop, &t->timer), 0);
	t->timer.data = t;
	t->f = fixture_new(&t->loop, NULL, 0);
	assert_non_null(t->f);
	*state = t;
	return 0;
}

/* Closes what is left, then audits: the loop closes cleanly and no fd is left behind. */
static int teardown(void **state)
{
	struct tstate *t = *state;

	for (int i = 0; i < t->nclients; i++) {
		client_close(t->clients[i]);
		free(t->clients[i]);
	}
	if (t->f) {
		fixture_close(t->f, on_fixture_closed, t);
		t->f = NULL;
	}
	assert_true(run_until(t, flag_set, &t->fixture_closed, WAIT_MS));
	uv_close((uv_handle_t *)&t->timer, NULL);
	tu_loop_finish(&t->loop);
	assert_int_equal(tu_fd_count(), t->fds_before);
	free(t);
	return 0;
}

/* ---- cases ---- */

static void test_fixture__static_page(void **state)
{
	struct tstate *t = *state;
	struct client *c = client_connect(t);
	struct resp r;
	char v[256], url[128];

	assert_true(fixture_port(t->f) > 0);
	fixture_url(t->f, "/static", url, sizeof url);
	snprintf(v, sizeof v, "http://127.0.0.1:%d/static", fixture_port(t->f));
	assert_string_equal(url, v);

	client_sendf(c, "GET /static HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "<title>Static page</title>"));
	assert_non_null(strstr(
	        r.body, "<h1 id=\"title\">Hello fixture</h1><p id=\"msg\">static content</p>"));
	assert_non_null(header(r.head, "Cache-Control", v, sizeof v));
	assert_string_equal(v, "no-store");
	assert_non_null(header(r.head, "Content-Length", v, sizeof v));
	assert_int_equal(strtoul(v, NULL, 10), r.body_len);
	assert_int_equal(fixture_hits(t->f, "/static"), 1);
	assert_int_equal(fixture_hits(t->f, "/"), 0);
	assert_int_equal(fixture_hits(t->f, NULL), 1);
}

static void test_fixture__status_codes(void **state)
{
	struct tstate *t = *state;
	struct client *c = client_connect(t);
	struct resp r;

	client_sendf(c, "GET /status/404 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "status 404"));

	client_sendf(c, "GET /status/500 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 500);
	assert_non_null(strstr(r.body, "status 500"));

	client_sendf(c, "GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body_len, 0);

	client_sendf(c, "GET /status/600 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 404);
	assert_int_equal(fixture_hits(t->f, "/status/404"), 1);
}

static void test_fixture__redirect_location(void **state)
{
	struct tstate *t = *state;
	struct client *c = client_connect(t);
	struct resp r;
	char v[256];

	client_sendf(c, "GET /redirect HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 302);
	assert_non_null(header(r.head, "Location", v, sizeof v));
	assert_string_equal(v, "/static");

	client_sendf(c, "GET /redirect?to=/js%%3Fdelay%%3D5 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 302);
	assert_non_null(header(r.head, "Location", v, sizeof v));
	assert_string_equal(v, "/js?delay=5");

	client_sendf(c, "GET /redirect?to=/x%%0d%%0aSet-Cookie:a=b HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 400); /* no header injection */

	client_sendf(c, "GET /redirect-chain?n=2 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 302);
	assert_non_null(header(r.head, "Location", v, sizeof v));
	assert_string_equal(v, "/redirect-chain?n=1");
}

static void test_fixture__keep_alive(void **state)
{
	struct tstate *t = *state;
	struct client *c = client_connect(t);
	struct resp r;
	char v[64];

	client_sendf(c, "GET /static HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_non_null(header(r.head, "Connection", v, sizeof v));
	assert_string_equal(v, "keep-alive");

	client_sendf(c, "GET /cookie HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "cookie page"));
	assert_false(c->eof);

	/* two pipelined requests in one write: answered in order */
	client_sendf(c, "GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n"
	                "GET /status/202 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 201);
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 202);

	/* Connection: close is honoured */
	client_sendf(c, "GET /static HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_non_null(header(r.head, "Connection", v, sizeof v));
	assert_string_equal(v, "close");
	assert_true(run_until(t, client_eof, c, WAIT_MS));
	assert_int_equal(fixture_hits(t->f, NULL), 5);
}

static void test_fixture__head_and_other_methods(void **state)
{
	struct tstate *t = *state;
	struct client *c = client_connect(t);
	struct resp r;
	char v[64];

	client_sendf(c, "HEAD /static HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 1);
	assert_int_equal(r.status, 200);
	assert_non_null(header(r.head, "Content-Length", v, sizeof v));
	assert_true(strtoul(v, NULL, 10) > 0);

	/* the HEAD sent no body: the next response starts right after its head */
	client_sendf(c, "DELETE /static HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 405);
	assert_non_null(header(r.head, "Allow", v, sizeof v));
	assert_string_equal(v, "GET, HEAD");

	client_sendf(c, "GET /json?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_non_null(header(r.head, "Content-Type", v, sizeof v));
	assert_string_equal(v, "application/json");
	assert_string_equal(r.body,
	                    "{\"ok\":true,\"n\":123,\"items\":[1,2,3],\"nested\":{\"a\":\"b\"}}");

	/* a request with a body is answered, then the connection is closed */
	client_sendf(c, "POST /static HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 405);
	assert_true(run_until(t, client_eof, c, WAIT_MS));
}

static void test_fixture__oversized_head_gets_431(void **state)
{
	struct tstate *t = *state;
	struct client *ok = client_connect(t), *big = client_connect(t);
	const char *start = "GET /static HTTP/1.1\r\nX-Pad: ";
	size_t n = FIXTURE_HEAD_MAX + 4096;
	char *req = malloc(n);
	struct resp r;

	assert_non_null(req);
	/* a head of exactly FIXTURE_HEAD_MAX bytes is accepted */
	memset(req, 'a', FIXTURE_HEAD_MAX);
	memcpy(req, start, strlen(start));
	memcpy(req + FIXTURE_HEAD_MAX - 4, "\r\n\r\n", 4);
	client_send(ok, req, FIXTURE_HEAD_MAX);
	resp_read(ok, &r, 0);
	assert_int_equal(r.status, 200);

	/* a longer head is not; the rest of it is drained so the client reads the 431 */
	memset(req, 'a', n);
	memcpy(req, start, strlen(start));
	memcpy(req + n - 4, "\r\n\r\n", 4);
	client_send(big, req, n);
	resp_read(big, &r, 0);
	assert_int_equal(r.status, 431);
	assert_true(run_until(t, client_eof, big, WAIT_MS));
	free(req);
}

static void test_fixture__hang_never_answers(void **state)
{
	struct tstate *t = *state;
	struct client *c = client_connect(t);

	client_sendf(c, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
	run_until(t, never, NULL, 300);
	assert_int_equal(c->rxlen, 0);
	assert_false(c->eof);
	assert_int_equal(fixture_hits(t->f, "/hang"), 1);

	/* closing the fixture ends the hung connection and still completes */
	fixture_close(t->f, on_fixture_closed, t);
	t->f = NULL;
	assert_true(run_until(t, flag_set, &t->fixture_closed, WAIT_MS));
	assert_true(run_until(t, client_eof, c, WAIT_MS));
	assert_int_equal(c->rxlen, 0);
}

static void test_fixture__slow_is_delayed(void **state)
{
	struct tstate *t = *state;
	struct client *c = client_connect(t);
	struct resp r;
	uint64_t t0 = tu_now_ms();

	client_sendf(c, "GET /slow?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n");
	run_until(t, never, NULL, 100);
	assert_int_equal(c->rxlen, 0); /* not even the headers yet */
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 200);
	assert_true(tu_now_ms() - t0 >= 190);

	client_sendf(c, "GET /slow?ms=x HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 400);
}

static void test_fixture__unknown_path_404(void **state)
{
	struct tstate *t = *state;
	struct client *c = client_connect(t);
	struct resp r;

	client_sendf(c, "GET /no/such/page?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "<html>"));
	assert_int_equal(fixture_hits(t->f, "/no/such/page"), 1);

	client_sendf(c, "BROKEN\r\n\r\n");
	resp_read(c, &r, 0);
	assert_int_equal(r.status, 400);
	assert_true(run_until(t, client_eof, c, WAIT_MS));
}

/* Open, delayed, hung and idle connections at close time: nothing is left behind. */
static void test_fixture__close_releases_everything(void **state)
{
	struct tstate *t = *state;
	struct client *idle = client_connect(t), *hung = client_connect(t);
	struct client *slow = client_connect(t), *partial = client_connect(t);
	struct resp r;

	client_sendf(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	resp_read(idle, &r, 0);
	assert_int_equal(r.status, 200);
	client_sendf(hung, "GET /hang HTTP/1.1\r\nHost: x\r\n\r\n");
	client_sendf(slow, "GET /slow?ms=60000 HTTP/1.1\r\nHost: x\r\n\r\n");
	client_sendf(partial, "GET /static HTTP/1.1\r\nHos");
	run_until(t, never, NULL, 50);

	fixture_close(t->f, on_fixture_closed, t);
	t->f = NULL;
	assert_false(t->fixture_closed); /* never from inside fixture_close() */
	assert_true(run_until(t, flag_set, &t->fixture_closed, WAIT_MS));
	assert_true(run_until(t, client_eof, idle, WAIT_MS));
	assert_true(run_until(t, client_eof, hung, WAIT_MS));
	assert_true(run_until(t, client_eof, slow, WAIT_MS));
	assert_true(run_until(t, client_eof, partial, WAIT_MS));
	/* teardown checks uv_loop_close() == 0 and the fd count */
}

static void test_fixture__bad_address(void **state)
{
	struct tstate *t = *state;

	assert_null(fixture_new(&t->loop, "localhost", 0));
	assert_null(fixture_new(&t->loop, "127.0.0.1", 70000));
	/* the port already in use */
	assert_null(fixture_new(&t->loop, "127.0.0.1", fixture_port(t->f)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fixture__static_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixture__status_codes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixture__redirect_location, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixture__keep_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixture__head_and_other_methods, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_fixture__oversized_head_gets_431, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_fixture__hang_never_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixture__slow_is_delayed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixture__unknown_path_404, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fixture__close_releases_everything, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_fixture__bad_address, setup, teardown),
	};
	char err[256];

	uv_loop_t warm;

	/* libuv opens a process-wide pipe (its signal lock) on the first uv_loop_init() and
	 * keeps it: open it now, so that the fd audits count only what a test leaves. */
	uv_loop_init(&warm);
	uv_loop_close(&warm);
	signal(SIGPIPE, SIG_IGN);
	if (log_init_from_env(err, sizeof err) < 0)
		fprintf(stderr, "%s\n", err);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
