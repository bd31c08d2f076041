/*
 * cdp_ws: libwebsockets client glue for cdp_conn, on the caller's libuv loop. One lws
 * context per loop (cdp_wsctx_t); one struct ws per connection, which is the transport's
 * user data. Incoming fragments go through cdp_msgbuf (hard cap), outgoing messages wait in
 * a FIFO and are written one per WRITEABLE callback with LWS_PRE headroom.
 *
 * Lifetime of struct ws: created by cdp_conn_new_ws(), freed in LWS_CALLBACK_WSI_DESTROY
 * (lws's last word on the wsi), or right after a synchronous connect failure. Once the conn
 * exists, the ws reports its end with cdp_conn_transport_closed(); the conn never touches
 * the ws after that.
 */
#include "cdp/cdp_ws.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_msgbuf.h"
#include "util/log.h"

#define WS_RX_CHUNK 65536
#define WS_HEAD_KEEP 64
#define WS_SENDQ_MAX ((size_t)512 * 1024 * 1024)

struct cdp_wsctx {
	uv_loop_t *loop;
	struct lws_context *lws;
	struct lws_vhost *vh;
	void *foreign_loops[1];
	int open_conns;
};

typedef struct outmsg {
	struct outmsg *next;
	size_t len;
	unsigned char buf[]; /* LWS_PRE bytes of headroom, then the message */
} outmsg_t;

typedef struct ws {
	cdp_wsctx_t *ctx;
	struct lws *wsi;
	cdp_conn_t *conn;        /* NULL until established */
	cdp_conn_opts_t opts;
	cdp_connect_cb connect_cb;
	cdp_lost_cb on_lost;
	void *ud;
	int sync_connect;        /* inside lws_client_connect_via_info() */
	int sync_failed;
	int closing;             /* our side asked to close */
	outmsg_t *q_head, *q_tail;
	size_t q_bytes;
	cdp_msgbuf_t mb;
	char head[WS_HEAD_KEEP]; /* first bytes of the current incoming message */
	size_t head_len;
	char host[256];
	char path[1024];
	int port;
} ws_t;

static void queue_free(ws_t *w)
{
	while (w->q_head) {
		outmsg_t *m = w->q_head;
		w->q_head = m->next;
		free(m);
	}
	w->q_tail = NULL;
	w->q_bytes = 0;
}

static void ws_free(ws_t *w)
{
	queue_free(w);
	cdp_msgbuf_release(&w->mb);
	if (w->ctx)
		w->ctx->open_conns--;
	free(w);
}

/* ---- transport interface for cdp_conn ---- */

static int tp_send(void *tud, const char *data, size_t len)
{
	ws_t *w = tud;
	outmsg_t *m;

	if (w->closing || !w->wsi)
		return CDP_ECONNLOST;
	if (w->q_bytes + len > WS_SENDQ_MAX)
		return -ENOBUFS;
	m = malloc(sizeof *m + LWS_PRE + len);
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = len;
	memcpy(m->buf + LWS_PRE, data, len);
	if (w->q_tail)
		w->q_tail->next = m;
	else
		w->q_head = m;
	w->q_tail = m;
	w->q_bytes += len;
	lws_callback_on_writable(w->wsi);
	return 0;
}

static void tp_close(void *tud)
{
	ws_t *w = tud;

	if (w->closing)
		return;
	w->closing = 1;
	if (w->wsi) {
		/*
		 * The WRITEABLE callback returns -1 while closing, which closes the wsi at once.
		 * The async-kill timeout alone is only looked at when lws next services this wsi:
		 * on an idle connection that took up to 30 s (measured).
		 */
		lws_callback_on_writable(w->wsi);
		lws_set_timeout(w->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_ASYNC);
	}
}

static const cdp_transport_t ws_transport = { tp_send, tp_close };

/* ---- lws callback ---- */

static void report_connect_failure(ws_t *w, const char *why)
{
	char msg[2048];

	snprintf(msg, sizeof msg, "websocket connect to %s:%d%s failed: %s", w->host, w->port,
	         w->path, why && *why ? why : "unknown error");
	if (w->sync_connect) {
		w->sync_failed = 1;
		log_warn("cdp", "%s", msg);
		return;
	}
	if (w->connect_cb) {
		cdp_connect_cb cb = w->connect_cb;
		w->connect_cb = NULL;
		cb(NULL, CDP_ECONNLOST, msg, w->ud);
	}
}

static void on_receive(ws_t *w, struct lws *wsi, const void *in, size_t len)
{
	const char *msg;
	size_t mlen;
	int final = lws_is_final_fragment(wsi);
	int rc;

	if (lws_is_first_fragment(wsi)) {
		w->head_len = len < WS_HEAD_KEEP ? len : WS_HEAD_KEEP;
		memcpy(w->head, in, w->head_len);
	}
	rc = cdp_msgbuf_feed(&w->mb, in, len, final, &msg, &mlen);
	if (rc == 1)
		cdp_conn_feed(w->conn, msg, mlen);
	else if (rc < 0)
		cdp_conn_feed_oversized(w->conn, w->head, w->head_len, mlen);
}

static int on_writeable(ws_t *w, struct lws *wsi)
{
	outmsg_t *m = w->q_head;
	int n;

	if (w->closing)
		return -1;
	if (!m)
		return 0;
	w->q_head = m->next;
	if (!w->q_head)
		w->q_tail = NULL;
	w->q_bytes -= m->len;
	n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
	free(m);
	if (n < 0) {
		log_warn("cdp", "websocket write failed");
		return -1;
	}
	if (w->q_head)
		lws_callback_on_writable(wsi);
	return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
	ws_t *w = user;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED: {
		cdp_connect_cb cb = w->connect_cb;
		w->connect_cb = NULL;
		w->conn = cdp_conn_new(w->ctx->loop, &w->opts, &ws_transport, w, w->on_lost, w->ud);
		if (!w->conn) {
			if (cb)
				cb(NULL, -ENOMEM, "out of memory creating the connection", w->ud);
			w->closing = 1;
			return -1;
		}
		log_debug("cdp", "websocket open to %s:%d%s", w->host, w->port, w->path);
		if (cb)
			cb(w->conn, 0, "", w->ud);
		break;
	}
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (w && w->conn && !w->closing)
			on_receive(w, wsi, in, len);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (w)
			return on_writeable(w, wsi);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (w && !w->conn)
			report_connect_failure(w, in ? (const char *)in : NULL);
		else if (w && w->conn)
			cdp_conn_transport_lost(w->conn, CDP_ECONNLOST,
			                        in ? (const char *)in : "connection error");
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (w && w->conn)
			cdp_conn_transport_lost(w->conn, CDP_ECONNLOST, "websocket closed");
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		if (!w)
			break;
		w->wsi = NULL;
		if (w->conn) {
			cdp_conn_t *conn = w->conn;
			ws_free(w);
			cdp_conn_transport_closed(conn);
		} else if (w->sync_connect) {
			/* cdp_conn_new_ws() frees it after lws_client_connect_via_info() returns */
			w->sync_failed = 1;
		} else {
			report_connect_failure(w, "connection closed before the handshake");
			ws_free(w);
		}
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols ws_protocols[] = {
	{ "cdp", ws_callback, 0, WS_RX_CHUNK, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- context ---- */

static void lws_log_bridge(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_msg(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "lws", "%.*s", (int)n, line);
}

void cdp_lws_context_info_init(struct lws_context_creation_info *info, uv_loop_t *loop,
                               void **foreign_loops, const struct lws_protocols *protocols,
                               struct lws_context **pcontext)
{
	lws_set_log_level(LLL_ERR | (log_get_level() == LOG_DEBUG ? LLL_WARN : 0), lws_log_bridge);
	foreign_loops[0] = loop;
	memset(info, 0, sizeof *info);
	info->port = CONTEXT_PORT_NO_LISTEN;
	info->protocols = protocols;
	info->options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info->foreign_loops = foreign_loops;
	info->pcontext = pcontext;
	info->gid = -1;
	info->uid = -1;
}

cdp_wsctx_t *cdp_wsctx_new(uv_loop_t *loop)
{
	struct lws_context_creation_info info;
	cdp_wsctx_t *ctx = calloc(1, sizeof *ctx);

	if (!ctx)
		return NULL;
	ctx->loop = loop;
	cdp_lws_context_info_init(&info, loop, ctx->foreign_loops, ws_protocols, &ctx->lws);
	/* TCP connect and each network round trip lws waits on (the websocket handshake
	 * included) are bounded at 10 s: DevTools on loopback answers in milliseconds. */
	info.timeout_secs = 10;
	info.connect_timeout_secs = 10;
	ctx->lws = lws_create_context(&info);
	if (!ctx->lws) {
		log_error("cdp", "cannot create the libwebsockets context (is the libuv event "
		                 "library plugin, package libwebsockets-evlib-uv, installed?)");
		free(ctx);
		return NULL;
	}
	info.vhost_name = "cdp-client";
	ctx->vh = lws_create_vhost(ctx->lws, &info);
	if (!ctx->vh) {
		log_error("cdp", "cannot create the libwebsockets client vhost");
		lws_context_destroy(ctx->lws);
		free(ctx);
		return NULL;
	}
	return ctx;
}

void cdp_wsctx_close(cdp_wsctx_t *ctx)
{
	if (ctx && ctx->lws)
		lws_context_destroy(ctx->lws);
}

void cdp_wsctx_free(cdp_wsctx_t *ctx)
{
	if (!ctx)
		return;
	if (ctx->lws)
		lws_context_destroy(ctx->lws); /* second call frees what the first left (lws 4.1) */
	free(ctx);
}

void *cdp_wsctx_lws(cdp_wsctx_t *ctx) { return ctx->lws; }

/* ---- connect ---- */

/* Splits ws://host:port/path; -EINVAL for anything else. */
static int parse_ws_url(const char *url, char *host, size_t hostlen, int *port, char *path,
                        size_t pathlen)
{
	const char *p, *slash, *colon;
	size_t hl;
	long pt = 80;

	if (strncmp(url, "ws://", 5) != 0)
		return -EINVAL;
	p = url + 5;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	colon = memchr(p, ':', (size_t)(slash - p));
	hl = (size_t)((colon ? colon : slash) - p);
	if (hl == 0 || hl >= hostlen)
		return -EINVAL;
	memcpy(host, p, hl);
	host[hl] = '\0';
	if (colon) {
		char *end;
		pt = strtol(colon + 1, &end, 10);
		if (end != slash || pt <= 0 || pt > 65535)
			return -EINVAL;
	}
	*port = (int)pt;
	if (snprintf(path, pathlen, "%s", *slash ? slash : "/") >= (int)pathlen)
		return -EINVAL;
	return 0;
}

int cdp_conn_new_ws(cdp_wsctx_t *ctx, const char *url, const cdp_conn_opts_t *opts,
                    uint32_t connect_timeout_ms, cdp_connect_cb connect_cb,
                    cdp_lost_cb on_lost, void *ud)
{
	struct lws_client_connect_info ci;
	ws_t *w;
	struct lws *wsi;

	(void)connect_timeout_ms; /* lws bounds connect and handshake per context: 10 s */
	if (!ctx || !url || !connect_cb)
		return -EINVAL;
	w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	if (parse_ws_url(url, w->host, sizeof w->host, &w->port, w->path, sizeof w->path) != 0) {
		log_warn("cdp", "websocket URL '%s' is not of the form ws://host:port/path", url);
		free(w);
		return -EINVAL;
	}
	cdp_conn_opts_init(&w->opts);
	if (opts) {
		if (opts->default_timeout_ms)
			w->opts.default_timeout_ms = opts->default_timeout_ms;
		if (opts->max_message)
			w->opts.max_message = opts->max_message;
	}
	cdp_msgbuf_init(&w->mb, w->opts.max_message);
	w->ctx = ctx;
	ctx->open_conns++;
	w->connect_cb = connect_cb;
	w->on_lost = on_lost;
	w->ud = ud;

	memset(&ci, 0, sizeof ci);
	ci.context = ctx->lws;
	ci.vhost = ctx->vh;
	ci.address = w->host;
	ci.port = w->port;
	ci.path = w->path;
	ci.host = w->host; /* Chromium accepts an IP or localhost Host header */
	ci.origin = NULL;  /* Chromium refuses a handshake with an Origin header (403) */
	ci.protocol = NULL;
	ci.local_protocol_name = "cdp";
	ci.userdata = w;
	ci.pwsi = &w->wsi;

	w->sync_connect = 1;
	wsi = lws_client_connect_via_info(&ci);
	w->sync_connect = 0;
	if (!wsi || w->sync_failed) {
		/* Failed inside the call: no callback, and nothing of ours left in lws. */
		if (wsi) {
			/* lws still holds the wsi; it will call WSI_DESTROY later */
			w->connect_cb = NULL;
			w->sync_failed = 0;
			return CDP_ECONNLOST;
		}
		ws_free(w);
		return CDP_ECONNLOST;
	}
	return 0;
}
