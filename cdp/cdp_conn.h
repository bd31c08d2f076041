/*
 * cdp_conn: a Chrome DevTools Protocol connection: the command table, events, and
 * flattened target sessions. Transport-agnostic: it sends through a cdp_transport_t and
 * is fed whole messages with cdp_conn_feed(). cdp_ws provides the real websocket
 * transport (cdp_conn_new_ws); unit tests plug an in-memory one.
 *
 * Ownership and callbacks:
 * - The conn is a handle on a caller-owned uv_loop_t: cdp_conn_new() -> use ->
 *   cdp_conn_close(cb). Memory is freed after close_cb returns; never free it yourself.
 * - Every command is a request: cdp_conn_send() either returns an error (and then the
 *   callback never fires) or returns 0 and the callback fires exactly once, later, from
 *   the loop: with the result, Chrome's protocol error, -ETIMEDOUT, CDP_ECONNLOST (socket
 *   dropped), or -ECANCELED (cdp_conn_close() called first). A reply that comes after the
 *   command timed out is dropped quietly.
 * - JSON passed in (params) is STOLEN. JSON handed to callbacks is BORROWED until the
 *   callback returns: json_incref() it to keep it.
 * - Callbacks may send further commands, add or remove listeners and call
 *   cdp_conn_close(); the conn is freed only once no callback of its own is running.
 * - Malformed input (not JSON, unknown id, wrong field types, late replies) is logged at
 *   debug/warn level and counted, never a crash.
 */
#ifndef CDPILOT_CDP_CONN_H
#define CDPILOT_CDP_CONN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct cdp_conn cdp_conn_t;
typedef struct cdp_listener cdp_listener_t;

/* The outcome of one command. Every pointer is borrowed until the callback returns. */
typedef struct cdp_reply {
	int status;                /* 0 or an error code from cdp_err.h / negative errno */
	json_t *result;            /* the "result" object when status == 0, else NULL */
	int error_code;            /* Chrome's error code when status == CDP_EPROTOCOL */
	const char *error_message; /* Chrome's message, or a description of status; never NULL */
} cdp_reply_t;

typedef void (*cdp_reply_cb)(cdp_conn_t *conn, const cdp_reply_t *reply, void *ud);

/* session_id is NULL for browser-level events. params is borrowed (may be an empty object). */
typedef void (*cdp_event_cb)(cdp_conn_t *conn, const char *session_id, const char *method,
                             json_t *params, void *ud);

/* Fires once when the connection is gone (socket closed, transport error). err explains. */
typedef void (*cdp_lost_cb)(cdp_conn_t *conn, int err, const char *why, void *ud);
typedef void (*cdp_close_cb)(cdp_conn_t *conn, void *ud);

/* The transport the conn writes to; the conn owns ud after cdp_conn_new() succeeds. */
typedef struct cdp_transport {
	/* Queue one whole text message (copied). Returns 0 or a negative error. */
	int (*send)(void *tud, const char *data, size_t len);
	/* Start closing; when done, the transport calls cdp_conn_transport_closed(). */
	void (*close)(void *tud);
} cdp_transport_t;

typedef struct cdp_conn_opts {
	uint32_t default_timeout_ms; /* for commands sent with timeout 0; default 30000 */
	size_t max_message;          /* cap for one message either way; default 64 MiB */
} cdp_conn_opts_t;

typedef struct cdp_conn_stats {
	uint64_t sent, replies, events;
	uint64_t events_unparsed; /* of events: wanted by no listener, dropped unparsed */
	uint64_t timeouts, late_replies, malformed, oversized;
	size_t pending;
} cdp_conn_stats_t;

/* Fills opts with the defaults. */
void cdp_conn_opts_init(cdp_conn_opts_t *opts);

/*
 * A conn over the given transport, already considered open. Returns NULL on -ENOMEM.
 * on_lost may be NULL.
 */
cdp_conn_t *cdp_conn_new(uv_loop_t *loop, const cdp_conn_opts_t *opts,
                         const cdp_transport_t *tp, void *tud, cdp_lost_cb on_lost, void *ud);

/*
 * Sends method (with params, stolen, NULL for none) on session_id (NULL: browser).
 * timeout_ms 0 means the conn's default. If id_out is not NULL it receives the command id.
 * Returns 0, -EMSGSIZE (serialised command over the cap), CDP_ECONNLOST (already lost or
 * closing), -EINVAL (no method or callback, or params nested deeper than 2048), -ENOMEM;
 * on error the callback does not fire and params are released. The text is written
 * straight from params (cdp_json_write), as json_dumps(JSON_COMPACT) would write it.
 */
int cdp_conn_send(cdp_conn_t *conn, const char *session_id, const char *method,
                  json_t *params, uint32_t timeout_ms, cdp_reply_cb cb, void *ud,
                  uint64_t *id_out);

/*
 * cdp_conn_send() with params given as the text of a JSON object (params_len bytes at
 * params, borrowed; NULL for none), for hot paths that write their few params directly
 * (cdp_json_write_string() for a string) instead of building and freeing a tree. The text
 * is sent as it is, unchecked: the caller writes a valid object. Returns as
 * cdp_conn_send().
 */
int cdp_conn_send_text(cdp_conn_t *conn, const char *session_id, const char *method,
                       const char *params, size_t params_len, uint32_t timeout_ms,
                       cdp_reply_cb cb, void *ud, uint64_t *id_out);

/*
 * Cancels a pending command: its callback fires once with -ECANCELED before this returns
 * (if it was still pending). A reply arriving later is dropped. Returns 0 or -ENOENT.
 */
int cdp_conn_cancel(cdp_conn_t *conn, uint64_t id);

/*
 * Listens for events named method (NULL: every event) on session_id (NULL: any session,
 * including browser-level). Returns a listener handle owned by the conn (NULL on
 * -ENOMEM). Removed with cdp_conn_off() (safe inside any callback) or at close.
 */
cdp_listener_t *cdp_conn_on(cdp_conn_t *conn, const char *method, const char *session_id,
                            cdp_event_cb cb, void *ud);
/*
 * As cdp_conn_on(), for the events whose params hold the string value at key (a member of
 * "params" itself, e.g. "name" of Page.lifecycleEvent): the callback sees only those. An
 * event of that method wanted by no listener for its params.key is dropped unparsed, as
 * an event no listener wants by method is (see cdp_conn_feed()).
 */
cdp_listener_t *cdp_conn_on_where(cdp_conn_t *conn, const char *method,
                                  const char *session_id, const char *key,
                                  const char *value, cdp_event_cb cb, void *ud);
void cdp_conn_off(cdp_conn_t *conn, cdp_listener_t *l);

/*
 * Feeds one complete incoming message (from the transport). An event that starts the way
 * Chromium writes events, {"method":"NAME", and that no listener wants (by method, or by
 * the parameter of cdp_conn_on_where(), read by cdp_json_peek_param()) is counted
 * (stats.events, stats.events_unparsed) and dropped without being parsed.
 */
void cdp_conn_feed(cdp_conn_t *conn, const char *data, size_t len);

/*
 * Tells the conn that an incoming message of total bytes was dropped for being over the
 * cap; head holds its first bytes. If head shows it was a reply ({"id":N...), command N
 * fails at once with -EMSGSIZE instead of waiting for its timeout.
 */
void cdp_conn_feed_oversized(cdp_conn_t *conn, const char *head, size_t headlen,
                             size_t total);

/*
 * Called by the transport when the socket is gone (err/why describe it) or, after
 * tp->close, when it has finished closing. Every pending command fails at once with
 * CDP_ECONNLOST and on_lost fires (once). Idempotent.
 */
void cdp_conn_transport_lost(cdp_conn_t *conn, int err, const char *why);
void cdp_conn_transport_closed(cdp_conn_t *conn);

/*
 * Closes: pending commands fail with -ECANCELED, the transport is closed, then close_cb
 * fires once from the loop and the memory is freed. on_lost does not fire after this.
 */
void cdp_conn_close(cdp_conn_t *conn, cdp_close_cb cb, void *ud);

int cdp_conn_is_open(const cdp_conn_t *conn);
void cdp_conn_get_stats(const cdp_conn_t *conn, cdp_conn_stats_t *out);
size_t cdp_conn_max_message(const cdp_conn_t *conn);
uv_loop_t *cdp_conn_loop(const cdp_conn_t *conn);

#endif
