/*
 * httpkit: a raw HTTP client on a libuv loop for the tests of the endpoint server
 * (test_httpd, test_httpd_probes): a uv_tcp connection to 127.0.0.1 that sends bytes as the
 * test chooses (malformed, trickled, half-closed) and collects everything the server
 * answers, and readers of that answer. Written once here so the two files share it.
 *
 * Every call that waits runs the connection's loop; a failed check fails the running
 * cmocka test.
 */
#ifndef CDPILOT_TESTS_HTTPKIT_H
#define CDPILOT_TESTS_HTTPKIT_H

#include <stddef.h>

#include <uv.h>

typedef struct rawc {
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_shutdown_t sreq; /* free for the test's uv_shutdown() (a half-close) */
	int connected, conn_status;
	int eof;     /* EOF or a read error (a reset), or rx full: the connection is then closed */
	int closed;  /* the uv close callback ran */
	size_t sent; /* bytes handed to uv_write since the connection was opened */
	size_t rx_len;
	char rx[1024 * 1024]; /* last: rawc_open() clears only what comes before */
} rawc_t;

/* A new connection to 127.0.0.1:port on loop; waits (5 s at most) until it is connected. */
rawc_t *rawc_new(uv_loop_t *loop, int port);
/* Starts a connection of c (fresh, or closed) to 127.0.0.1:port on loop; does not wait.
 * A connection that fails is closed. */
void rawc_open(rawc_t *c, uv_loop_t *loop, int port);
/* Writes a copy of data[0..len); fails the test if the write cannot start. */
void rawc_send(rawc_t *c, const char *data, size_t len);
/* The same, but a write that cannot start (the server has just reset the connection) is
 * dropped: 0, or the uv error. */
int rawc_try_send(rawc_t *c, const char *data, size_t len);
/* Starts closing c (if it is not closing already). */
void rawc_close(rawc_t *c);
/* Closes c and waits (5 s at most) for the close. */
void rawc_wait_closed(rawc_t *c);
/* Closes c, waits (5 s at most) for the close and frees c. */
void rawc_free(rawc_t *c);
/* Sends req on a new connection and waits (10 s at most) for the response and EOF. */
rawc_t *rawc_exchange(uv_loop_t *loop, int port, const char *req, size_t len);

/* The status code of the response's status line; fails the test if there is none. */
int rawc_status(const rawc_t *c);
/* The response's body (after the blank line); fails the test if the head is not whole. */
const char *rawc_body(const rawc_t *c);
/* The response is status with a JSON error body whose Content-Length is right. */
void rawc_expect_json_error(const rawc_t *c, int status);

#endif
