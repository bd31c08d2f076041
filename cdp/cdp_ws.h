/*
 * cdp_ws: the websocket transport for cdp_conn, on libwebsockets running on the caller's
 * libuv loop. The only file in cdpilot that includes libwebsockets.h.
 *
 * cdp_wsctx_t is one lws context per loop (created by main or a test, shared by every
 * connection). Teardown follows lws 4.1's foreign-loop rule: cdp_wsctx_close(), let
 * uv_run() return, then cdp_wsctx_free(); then uv_loop_close() returns 0.
 *
 * cdp_conn_new_ws() connects to a ws:// URL; connect_cb fires exactly once: with the
 * open conn (status 0) or with an error (conn NULL, nothing to close). Once open, the
 * conn is an ordinary cdp_conn_t: close it with cdp_conn_close().
 */
#ifndef CDPILOT_CDP_WS_H
#define CDPILOT_CDP_WS_H

#include "cdp/cdp_conn.h"

typedef struct cdp_wsctx cdp_wsctx_t;

/* NULL on failure (logged). */
cdp_wsctx_t *cdp_wsctx_new(uv_loop_t *loop);
/* First half of teardown: no connection may be open any more. */
void cdp_wsctx_close(cdp_wsctx_t *ctx);
/* Second half, after uv_run() has returned. */
void cdp_wsctx_free(cdp_wsctx_t *ctx);

/* Opaque lws context pointer, for later HTTP server vhosts on the same context. */
void *cdp_wsctx_lws(cdp_wsctx_t *ctx);

struct lws_context;
struct lws_context_creation_info;
struct lws_protocols;

/*
 * The set-up every cdpilot lws context shares, for cdp_wsctx_new() and daemon/httpd.c
 * (callers include libwebsockets.h themselves; this header does not). Zeroes *info and
 * fills it for a context on the caller's libuv loop: foreign loop loop (stored in
 * foreign_loops[0], caller storage of at least one slot that must outlive the context), no
 * listener on the context itself (vhosts are created explicitly, from the same info),
 * protocols, lws writing the new context to *pcontext, no uid/gid change. Also routes lws's
 * log into util/log (errors; warnings too at debug level). The caller adds its own fields
 * (timeouts, user) before lws_create_context(). Never fails.
 */
void cdp_lws_context_info_init(struct lws_context_creation_info *info, uv_loop_t *loop,
                               void **foreign_loops, const struct lws_protocols *protocols,
                               struct lws_context **pcontext);

typedef void (*cdp_connect_cb)(cdp_conn_t *conn, int status, const char *why, void *ud);

/*
 * Connects to url (ws://host:port/path). opts may be NULL for defaults. on_lost is
 * passed to the conn (see cdp_conn_new). connect_timeout_ms is advisory:
 * lws bounds the TCP connect and the handshake at 10 s each.
 * Returns 0 (connect_cb will fire) or -EINVAL (bad URL) / -ENOMEM (no callback).
 */
int cdp_conn_new_ws(cdp_wsctx_t *ctx, const char *url, const cdp_conn_opts_t *opts,
                    uint32_t connect_timeout_ms, cdp_connect_cb connect_cb,
                    cdp_lost_cb on_lost, void *ud);

#endif
