/*
 * httpkit: a raw HTTP client on a libuv loop for the tests of the endpoint server (see
 * httpkit.h). Moved out of test_httpd.c unchanged but for the rawc_ prefix and the loop
 * passed in; rawc_open, rawc_try_send and rawc_wait_closed come from test_httpd_probes.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/support/httpkit.h"
#include "tests/support/testutil.h"

static void on_alloc(uv_handle_t *hd, size_t sug, uv_buf_t *b)
{
	rawc_t *c = hd->data;
	b->base = c->rx + c->rx_len;
	b->len = sizeof c->rx - 1 - c->rx_len;
}

static void on_closed(uv_handle_t *hd)
{
	((rawc_t *)hd->data)->closed = 1;
}

void rawc_close(rawc_t *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	rawc_t *c = s->data;
	if (n > 0) {
		c->rx_len += (size_t)n;
		c->rx[c->rx_len] = '\0';
		if (c->rx_len + 1 >= sizeof c->rx)
			c->eof = 1;
		return;
	}
	if (n < 0) {
		c->eof = 1;
		uv_read_stop(s);
		rawc_close(c);
	}
}

static void on_connect(uv_connect_t *r, int status)
{
	rawc_t *c = r->data;
	c->connected = 1;
	c->conn_status = status;
	if (status == 0)
		uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	else
		rawc_close(c);
}

void rawc_open(rawc_t *c, uv_loop_t *loop, int port)
{
	struct sockaddr_in sa;

	memset(c, 0, offsetof(rawc_t, rx));
	c->rx[0] = '\0';
	assert_int_equal(uv_tcp_init(loop, &c->tcp), 0);
	c->tcp.data = c;
	c->creq.data = c;
	uv_ip4_addr("127.0.0.1", port, &sa);
	assert_int_equal(uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&sa, on_connect), 0);
}

rawc_t *rawc_new(uv_loop_t *loop, int port)
{
	rawc_t *c = calloc(1, sizeof *c);

	assert_non_null(c);
	rawc_open(c, loop, port);
	assert_true(tu_run_until(loop, &c->connected, 5000));
	assert_int_equal(c->conn_status, 0);
	return c;
}

static void on_written(uv_write_t *w, int status)
{
	free(w->data);
	free(w);
}

int rawc_try_send(rawc_t *c, const char *data, size_t len)
{
	uv_write_t *w = calloc(1, sizeof *w);
	char *copy = malloc(len);
	uv_buf_t b;

	assert_non_null(w);
	assert_non_null(copy);
	memcpy(copy, data, len);
	w->data = copy;
	b = uv_buf_init(copy, (unsigned)len);
	int rc = uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	if (rc != 0) {
		free(copy);
		free(w);
		return rc;
	}
	c->sent += len;
	return 0;
}

void rawc_send(rawc_t *c, const char *data, size_t len)
{
	assert_int_equal(rawc_try_send(c, data, len), 0);
}

void rawc_wait_closed(rawc_t *c)
{
	rawc_close(c);
	tu_run_until(c->tcp.loop, &c->closed, 5000);
	assert_true(c->closed);
}

void rawc_free(rawc_t *c)
{
	rawc_wait_closed(c);
	free(c);
}

rawc_t *rawc_exchange(uv_loop_t *loop, int port, const char *req, size_t len)
{
	rawc_t *c = rawc_new(loop, port);
	rawc_send(c, req, len);
	assert_true(tu_run_until(loop, &c->eof, 10000));
	return c;
}

int rawc_status(const rawc_t *c)
{
	int st = 0;
	if (sscanf(c->rx, "HTTP/1.1 %d ", &st) != 1)
		fail_msg("no status line in '%s'", c->rx);
	return st;
}

const char *rawc_body(const rawc_t *c)
{
	const char *b = strstr(c->rx, "\r\n\r\n");
	assert_non_null(b);
	return b + 4;
}

void rawc_expect_json_error(const rawc_t *c, int status)
{
	json_error_t err;
	json_t *j;
	const char *body = rawc_body(c);
	size_t clen = 0;
	const char *cl = strstr(c->rx, "Content-Length: ");

	if (rawc_status(c) != status)
		fail_msg("expected %d, got: %s", status, c->rx);
	assert_non_null(strstr(c->rx, "Content-Type: application/json\r\n"));
	assert_non_null(strstr(c->rx, "Connection: close\r\n"));
	assert_non_null(cl);
	assert_int_equal(sscanf(cl, "Content-Length: %zu", &clen), 1);
	assert_int_equal(clen, strlen(body));
	j = json_loads(body, 0, &err);
	if (!j)
		fail_msg("body is not JSON: %s", body);
	assert_true(json_is_string(json_object_get(j, "error")));
	json_decref(j);
}
