/*
 * httpd: the daemon's small, hardened HTTP/1.1 endpoint server (/metrics, /status,
 * /healthz, /readyz) on libwebsockets, on the caller's libuv loop, one thread.
 *
 * It is its own lws context on the loop (next to cdp_ws's client context), with a raw
 * listening vhost: lws accepts, polls and buffers writes, and httpd parses each request
 * head itself, so that every limit is enforced and answered with a small JSON error.
 *
 * Protocol, as served:
 *   - GET and HEAD only (others: 405 with "Allow: GET, HEAD"); exact-path routes (404
 *     otherwise); the query string goes to the handler unparsed.
 *   - One request per connection: every response says "Connection: close" and the server
 *     closes after it (a lingering close: it stops writing and drains what the client still
 *     sends, briefly, so the client reads the whole response).
 *   - 400 malformed request line or header, a request body, bytes after the head
 *     (pipelining), HTTP/1.1 without exactly one Host; 414 a target over HTTPD_MAX_TARGET
 *     bytes (or a request line that fills the head limit); 431 a head over max_head_bytes
 *     or more than HTTPD_MAX_HEADERS header lines; 408 a head not complete within
 *     head_timeout_ms of the accept, or with no byte for idle_timeout_ms (slow or silent
 *     clients; the 408 is sent, then the lingering close).
 *   - Slots: when max_conns connections are open, a new one takes the slot of the oldest
 *     connection whose head is not complete (failing that, of the oldest one lingering
 *     after its response), which is reset at once and counted as evicted; 503 only when
 *     every slot is writing a response (the new one is answered and closed at once). So
 *     slow or silent clients cannot keep a complete request (a health probe) out.
 *   - A client that sends its request and then half-closes (shutdown(SHUT_WR)) gets its
 *     whole answer: the server reads nothing more until the response is sent.
 *   - Error bodies are {"error": "..."} (application/json). Headers: Content-Type,
 *     Content-Length, Cache-Control: no-store, Connection: close.
 *
 * Lifetime (a handle; lws 4.1's foreign-loop teardown has two halves, like cdp_wsctx):
 *   httpd_new() -> httpd_route()... -> httpd_start() -> ... -> httpd_close() -> let
 *   uv_run() return -> httpd_free(). After httpd_free() uv_loop_close() returns 0.
 * Handlers are called from the loop, one at a time, never after httpd_close().
 * Out of memory for the server's own bookkeeping aborts (daemon plumbing); a reply body
 * that cannot grow becomes a 500.
 */
#ifndef CDPILOT_DAEMON_HTTPD_H
#define CDPILOT_DAEMON_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/errlist.h"
#include "util/growbuf.h"

#define HTTPD_DEFAULT_ADDR "127.0.0.1:9464"
#define HTTPD_MAX_ROUTES 16
#define HTTPD_MAX_PATH 128      /* longest route path */
#define HTTPD_MAX_TARGET 2048   /* longest request target (path and query) */
#define HTTPD_MAX_HEADERS 64    /* header lines in one request head */
#define HTTPD_MAX_BODY ((size_t)64 * 1024 * 1024) /* largest reply body */

typedef struct httpd httpd_t;

typedef struct httpd_opts {
	char addr[64];            /* METRICS_ADDR: "IPv4:port" or "[IPv6]:port"; port 0 picks a
	                             free one (tests); default HTTPD_DEFAULT_ADDR */
	unsigned max_conns;       /* METRICS_MAX_CONNS, 1..4096, default 64 */
	unsigned max_head_bytes;  /* METRICS_MAX_HEAD_BYTES, 1024..65536, default 8192 */
	unsigned idle_timeout_ms; /* METRICS_IDLE_TIMEOUT_MS, 100..600000, default 10000: a
	                             head with no new byte this long gets 408; a response
	                             the client does not take in this long is cut */
	unsigned head_timeout_ms; /* METRICS_HEAD_TIMEOUT_MS, 100..600000, default 3000: the
	                             head must be complete this long after the accept (408) */
} httpd_opts_t;

/* Defaults. */
void httpd_opts_init(httpd_opts_t *o);
/*
 * Defaults, then METRICS_ADDR, METRICS_MAX_CONNS, METRICS_MAX_HEAD_BYTES,
 * METRICS_IDLE_TIMEOUT_MS and METRICS_HEAD_TIMEOUT_MS from the environment. Each bad value is added to errs with the
 * variable's name, its value and what was expected (a numeric IPv4 or bracketed IPv6
 * address, a port 0..65535, the ranges above). Returns 0 or -EINVAL.
 */
int httpd_opts_from_env(httpd_opts_t *o, errlist_t *errs);
/* Splits and checks an address as METRICS_ADDR is checked: 0, or -EINVAL with the
 * reason in why. host gets the address without brackets. */
int httpd_parse_addr(const char *addr, char *host, size_t hostlen, int *port, int *ipv6,
                     char *why, size_t whylen);

/*
 * What a handler fills. Before the handler runs: status 200, content_type NULL (means
 * "text/plain; charset=utf-8"), empty body. content_type must be a static string (or live
 * as long as the server). Build the body with httpd_reply_append()/printf(), or hand over a
 * malloc'd buffer with httpd_reply_take(). HEAD requests get the same headers, no body.
 */
typedef struct httpd_reply {
	int status;               /* 100..599; anything else becomes 500 */
	const char *content_type;
	growbuf_t body;           /* owned by the server; cap HTTPD_MAX_BODY */
	int err;                  /* sticky: the body could not grow; the reply becomes 500 */
} httpd_reply_t;

/* Appends bytes; 0, or -EMSGSIZE over HTTPD_MAX_BODY, -ENOMEM (sticky, see err). */
int httpd_reply_append(httpd_reply_t *r, const void *data, size_t len);
int httpd_reply_printf(httpd_reply_t *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Replaces the body with a malloc'd buffer of len bytes, which the server now owns (it
 * frees it even on error). body may be NULL (empty). -EMSGSIZE over HTTPD_MAX_BODY. */
int httpd_reply_take(httpd_reply_t *r, char *body, size_t len);
/* Sets status and a {"error": msg} JSON body (replacing any body). */
void httpd_reply_error(httpd_reply_t *r, int status, const char *msg);

/*
 * A route handler: fills reply synchronously and must not block (it runs on the loop).
 * path is the route's path, query the text after '?' ("" when none, not decoded); both
 * borrowed for the call. It must not call httpd_close() or httpd_free().
 */
typedef void (*httpd_handler_fn)(void *ud, const char *path, const char *query,
                                 httpd_reply_t *reply);

/*
 * Reads the next key=value of a handler's query ("a=1&b=x%20y") at *q: key and value are
 * %XX-decoded into key (klen bytes with its NUL) and val (vlen), and *q moves past it.
 * Returns 1 (one read), 0 (none left) or -1 with why naming the parameter: no '=', a bad
 * escape, a NUL, or a key or value longer than its buffer. '+' is kept as it is.
 */
int httpd_query_next(const char **q, char *key, size_t klen, char *val, size_t vlen, char *why,
                     size_t whylen);

/* Binds nothing yet: NULL only if o is bad (an unusable addr, zero limits; logged). loop
 * is borrowed and must outlive the server; o is copied. */
httpd_t *httpd_new(uv_loop_t *loop, const httpd_opts_t *o);

/*
 * Serves path (exact match, starts with '/', at most HTTPD_MAX_PATH bytes) with fn.
 * Before or after httpd_start(). A second route for the same path replaces the first.
 * Returns 0, -EINVAL (bad path or fn) or -ENOSPC (HTTPD_MAX_ROUTES routes already).
 */
int httpd_route(httpd_t *h, const char *path, httpd_handler_fn fn, void *ud);

/*
 * Binds and listens. Returns 0, or a negative errno with one log line naming the address
 * (-EADDRINUSE, -EADDRNOTAVAIL, -EACCES, -EINVAL for a bad address, -EALREADY if
 * started, -EIO when libwebsockets refuses). After a failure the server stays
 * closable: call httpd_close() and httpd_free() as usual.
 */
int httpd_start(httpd_t *h);

/* The port listened on (the real one when opts asked for 0), or -1 before a start. */
int httpd_port(const httpd_t *h);

typedef struct httpd_stats {
	uint64_t accepted;          /* connections accepted (refused ones included) */
	uint64_t responses[6];      /* responses by status class: [2] 2xx ... [5] 5xx */
	uint64_t refused;           /* connections over max_conns (answered 503) */
	uint64_t timeouts;          /* heads not complete in time (answered 408) */
	uint64_t evicted;           /* incomplete or lingering connections reset to free a
	                               slot for a new one */
	uint64_t bad_requests;      /* malformed or over a limit (400, 405, 414, 431) */
	unsigned open;              /* connections open now, refused ones not counted */
} httpd_stats_t;

void httpd_get_stats(const httpd_t *h, httpd_stats_t *s);

/*
 * First half of teardown: stops listening and closes every connection (no handler runs
 * after this). Safe to call once, from anywhere on the loop except inside a handler. Then
 * let uv_run() return and call httpd_free().
 */
void httpd_close(httpd_t *h);
/* Second half, after uv_run() has returned. NULL is ignored. */
void httpd_free(httpd_t *h);

/* ---- internal, exposed for the unit tests and the fuzzer ---- */

typedef struct httpd__req {
	int head_only;          /* HEAD */
	size_t head_len;        /* bytes of the head, final CRLFCRLF included */
	const char *target;     /* into the parsed buffer, not NUL-terminated */
	size_t target_len;
	const char *error;      /* static reason when the status is not 200 */
} httpd__req_t;

/*
 * Parses the first len bytes a client sent. Returns 0 when more bytes are needed (the
 * head is not complete and no limit is hit yet), 200 for a complete acceptable GET or
 * HEAD (req filled; bytes after the head are a 400), or the error status to answer with
 * (400, 405, 414, 431), req->error saying why. Pure; never reads past len.
 */
int httpd__parse(const char *buf, size_t len, size_t max_head, httpd__req_t *req);

#endif
