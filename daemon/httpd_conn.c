/*
 * httpd_conn.c: serving one connection, and the replies handlers fill.
 *
 * A connection (conn_t) is allocated at RAW_ADOPT, unlinked from the server's list at
 * RAW_CLOSE and freed at WSI_DESTROY (lws's last word on the wsi). Its states:
 *   HEAD   reading the request head (deadline: accept + head_timeout, or the last byte
 *          + idle_timeout, whichever comes first -> 408)
 *   WRITE  sending the response straight to the socket (send(), not lws_write()), as
 *          much as it takes at each WRITEABLE (deadline: idle_timeout after the last part
 *          was taken, so that a big reply from a busy loop, or to a client that reads it
 *          steadily, is not cut while it goes on). lws_write() keeps what the socket does
 *          not take and sends it at its own pace, which on a busy loop was one 16 KiB part
 *          every few hundred ms (a 380 KB /status took 10 s); lws is left nothing to keep.
 *   FLUSH  all in the kernel's hands; the next WRITEABLE ends the write side
 *   LINGER write side shut down; reads are drained until the client closes or the
 *          linger deadline passes
 * Reading stops (lws rx flow control) from the moment a response is queued until LINGER:
 * lws closes a raw connection as soon as a read returns EOF, so a client that sent its
 * request and then half-closed (shutdown(SHUT_WR), `nc -N`) would otherwise lose its
 * answer. In LINGER the EOF is what we wait for.
 * Deadlines of every state are checked by one uv_timer armed for the earliest one; past
 * its deadline a connection that is not in HEAD is closed at once (LWS_TO_KILL_SYNC).
 * Slots: when max_conns are open, a new connection takes the slot of the oldest one whose
 * head is not complete (or, failing that, of the oldest lingering one), which is reset
 * (evicted); only when every slot is writing a response is the new one answered 503. So
 * slow clients cannot hold every slot: a complete request always gets one.
 */
#include "daemon/httpd.h"

#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/httpd_priv.h"
#include "util/log.h"
#include "util/list.h"

#define HTTPD_LINGER_MS 1000u      /* at most this long (and never over idle_timeout) */
#define HTTPD_DRAIN_MAX (64 * 1024) /* bytes drained after a response before a hard close */
#define HTTPD_CONN_MAGIC 0x68747470u

enum conn_state { C_HEAD, C_WRITE, C_FLUSH, C_LINGER };

typedef struct conn {
	unsigned magic;
	struct conn *next, *prev;
	httpd_t *h;
	struct lws *wsi;
	enum conn_state state;
	int linked;
	int refused;        /* over max_conns: counted in h->refusing, not in open */
	int kill;           /* close at the next WRITEABLE */
	uint64_t deadline;  /* uv_now() ms */
	uint64_t accepted;  /* uv_now() ms at the accept */
	char *in;           /* head bytes, max_head_bytes + 1 at most */
	size_t in_len;
	unsigned char *out; /* LWS_PRE headroom, then the response */
	size_t out_len, out_off;
	size_t drained;
} conn_t;

/* ---- replies ---- */

int httpd_reply_append(httpd_reply_t *r, const void *data, size_t len)
{
	int rc;

	if (r->err)
		return r->err;
	rc = growbuf_append(&r->body, data, len);
	if (rc)
		r->err = rc;
	return rc;
}

int httpd_reply_printf(httpd_reply_t *r, const char *fmt, ...)
{
	char small[512];
	char *big = NULL;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return r->err ? r->err : (r->err = -EINVAL);
	if ((size_t)n < sizeof small)
		return httpd_reply_append(r, small, (size_t)n);
	if ((size_t)n > HTTPD_MAX_BODY)
		return r->err ? r->err : (r->err = -EMSGSIZE);
	big = malloc((size_t)n + 1);
	if (!big)
		return r->err ? r->err : (r->err = -ENOMEM);
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = httpd_reply_append(r, big, (size_t)n);
	free(big);
	return rc;
}

int httpd_reply_take(httpd_reply_t *r, char *body, size_t len)
{
	int rc = growbuf_attach(&r->body, body, len);

	if (rc)
		r->err = rc;
	return rc;
}

/* {"error": msg} as a new malloc'd string (jansson, so msg is escaped); aborts on OOM. */
static char *error_json(const char *msg, size_t *len)
{
	json_t *j = json_pack("{s:s}", "error", msg ? msg : "error");
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!s) {
		log_error("httpd", "out of memory");
		abort();
	}
	*len = strlen(s);
	return s;
}

void httpd_reply_error(httpd_reply_t *r, int status, const char *msg)
{
	size_t len;
	char *s = error_json(msg, &len);

	r->err = 0;
	r->status = status;
	r->content_type = "application/json";
	httpd_reply_take(r, s, len);
}

/* ---- connections ---- */

/* The time now, not the loop's time cached when this turn began: a busy turn (hundreds of
 * pages' events before this one) would otherwise start a deadline already partly gone. */
static uint64_t now_ms(httpd_t *h)
{
	uv_update_time(h->loop);
	return uv_now(h->loop);
}

static void conn_unlink(conn_t *c)
{
	httpd_t *h = c->h;

	if (!c->linked)
		return;
	c->linked = 0;
	DLIST_UNLINK(&h->conns, c, prev, next);
	if (c->refused)
		h->refusing--;
	else
		h->st.open--;
}

void httpd__conn_free(conn_t *c)
{
	conn_unlink(c);
	free(c->in);
	free(c->out);
	c->magic = 0;
	free(c);
}

static void timer_cb(uv_timer_t *t);

/* Arms the one timer for the earliest deadline of any connection. */
static void arm_timer(httpd_t *h)
{
	uint64_t first = UINT64_MAX, now = now_ms(h);

	if (h->closing)
		return;
	for (conn_t *c = h->conns; c; c = c->next)
		if (c->deadline < first)
			first = c->deadline;
	if (first == UINT64_MAX) {
		uv_timer_stop(&h->timer);
		return;
	}
	uv_timer_start(&h->timer, timer_cb, first > now ? first - now : 0, 0);
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Error"
	                                                                            : "Server Error";
	}
}

/* Queues the response (takes body) and asks for WRITEABLE. */
static void respond(conn_t *c, int status, const char *ctype, char *body, size_t blen,
                    int head_only)
{
	httpd_t *h = c->h;
	char head[512];
	int hl;

	hl = snprintf(head, sizeof head,
	              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	              "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
	              status, reason_phrase(status), ctype, blen,
	              status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (hl < 0 || (size_t)hl >= sizeof head) {
		/* a content type too long to fit: answer 500 instead */
		free(body);
		body = error_json("content type too long", &blen);
		status = 500;
		hl = snprintf(head, sizeof head,
		              "HTTP/1.1 500 %s\r\nContent-Type: application/json\r\n"
		              "Content-Length: %zu\r\nCache-Control: no-store\r\n"
		              "Connection: close\r\n\r\n",
		              reason_phrase(500), blen);
	}
	if (head_only)
		blen = 0;
	c->out = httpd__xcalloc(1, LWS_PRE + (size_t)hl + blen);
	memcpy(c->out + LWS_PRE, head, (size_t)hl);
	if (blen)
		memcpy(c->out + LWS_PRE + hl, body, blen);
	free(body);
	c->out_len = (size_t)hl + blen;
	c->out_off = 0;
	lws_rx_flow_control(c->wsi, 0); /* until LINGER: an EOF must not end the connection */
	free(c->in);
	c->in = NULL;
	c->in_len = 0;
	c->state = C_WRITE;
	c->deadline = now_ms(h) + h->o.idle_timeout_ms;
	if (status >= 100 && status < 600)
		h->st.responses[status / 100]++;
	if (status == 400 || status == 405 || status == 414 || status == 431)
		h->st.bad_requests++;
	lws_callback_on_writable(c->wsi);
	arm_timer(h);
}

static void respond_error(conn_t *c, int status, const char *msg)
{
	size_t len;
	char *s = error_json(msg, &len);
	log_debug("httpd", "answering %d: %s", status, msg);
	respond(c, status, "application/json", s, len, 0);
}

static void dispatch(conn_t *c, const httpd__req_t *req)
{
	httpd_t *h = c->h;
	char path[HTTPD_MAX_TARGET + 1], *q;
	const route_t *rt = NULL;
	httpd_reply_t r;
	char *body;
	size_t blen;

	memcpy(path, req->target, req->target_len);
	path[req->target_len] = '\0';
	q = strchr(path, '?');
	if (q)
		*q++ = '\0';
	for (unsigned i = 0; i < h->nroutes && !rt; i++)
		if (strcmp(h->routes[i].path, path) == 0)
			rt = &h->routes[i];
	if (!rt) {
		respond_error(c, 404, "not found");
		return;
	}
	memset(&r, 0, sizeof r);
	r.status = 200;
	growbuf_init(&r.body, HTTPD_MAX_BODY);
	rt->fn(rt->ud, rt->path, q ? q : "", &r);
	if (r.err) {
		growbuf_release(&r.body);
		log_warn("httpd", "%s: the reply body could not be built (%s)", rt->path,
		         strerror(-r.err));
		respond_error(c, 500, "the reply could not be built");
		return;
	}
	if (r.status < 100 || r.status > 599) {
		growbuf_release(&r.body);
		log_warn("httpd", "%s: handler set status %d", rt->path, r.status);
		respond_error(c, 500, "the handler set an invalid status");
		return;
	}
	body = growbuf_steal(&r.body, &blen);
	respond(c, r.status, r.content_type ? r.content_type : "text/plain; charset=utf-8",
	        body, blen, req->head_only);
}

/* When a HEAD connection must be answered 408: accept + head_timeout, or last byte +
 * idle_timeout, whichever comes first. */
static uint64_t head_deadline(const conn_t *c, uint64_t last_rx)
{
	uint64_t head = c->accepted + c->h->o.head_timeout_ms;
	uint64_t idle = last_rx + c->h->o.idle_timeout_ms;

	return head < idle ? head : idle;
}

/*
 * All slots are held: frees the one of the oldest connection whose head is not complete,
 * else of the oldest lingering one (its response is already handed to the kernel).
 * The victim is reset (SO_LINGER 0: no TIME_WAIT is left for a flood of them) and
 * closed now. Returns 1 when a slot was freed, 0 when every slot is writing a response.
 */
static int evict_one(httpd_t *h)
{
	conn_t *victim = NULL;
	struct linger lg = { 1, 0 };

	for (conn_t *c = h->conns; c; c = c->next) {
		if (c->refused || c->kill || (c->state != C_HEAD && c->state != C_LINGER))
			continue;
		if (!victim || (c->state == C_HEAD && victim->state != C_HEAD) ||
		    (c->state == victim->state && c->accepted <= victim->accepted))
			victim = c;
	}
	if (!victim)
		return 0;
	h->st.evicted++;
	log_debug("httpd", "all %u slots held: resetting the oldest %s connection",
	          h->o.max_conns, victim->state == C_HEAD ? "incomplete" : "lingering");
	conn_unlink(victim);
	victim->kill = 1;
	victim->deadline = UINT64_MAX;
	setsockopt(lws_get_socket_fd(victim->wsi), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	lws_set_timeout(victim->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_SYNC);
	return 1;
}

static void on_adopt(httpd_t *h, struct lws *wsi)
{
	conn_t *c;

	if (h->st.open >= h->o.max_conns)
		evict_one(h);
	c = httpd__xcalloc(1, sizeof *c);

	c->magic = HTTPD_CONN_MAGIC;
	c->h = h;
	c->wsi = wsi;
	c->state = C_HEAD;
	lws_set_wsi_user(wsi, c);
	c->next = h->conns;
	if (h->conns)
		h->conns->prev = c;
	h->conns = c;
	c->linked = 1;
	h->st.accepted++;
	if (h->st.open >= h->o.max_conns) {
		c->refused = 1;
		h->refusing++;
		h->st.refused++;
		log_debug("httpd", "refusing a connection: %u open (max %u)", h->st.open,
		          h->o.max_conns);
		if (h->refusing > h->o.max_conns) {
			/* a flood: do not even answer */
			c->kill = 1;
			c->deadline = now_ms(h);
			lws_callback_on_writable(wsi);
			arm_timer(h);
			return;
		}
		respond_error(c, 503, "too many connections");
		return;
	}
	h->st.open++;
	c->accepted = now_ms(h);
	c->deadline = head_deadline(c, c->accepted);
	arm_timer(h);
}

/* Returns -1 to have lws close the connection. */
static int on_rx(conn_t *c, const char *in, size_t len)
{
	httpd_t *h = c->h;
	httpd__req_t req;
	size_t room, n;
	int status;

	if (c->state != C_HEAD) {
		c->drained += len;
		return c->drained > HTTPD_DRAIN_MAX ? -1 : 0;
	}
	if (!c->in)
		c->in = httpd__xcalloc(1, (size_t)h->o.max_head_bytes + 1);
	room = (size_t)h->o.max_head_bytes + 1 - c->in_len;
	n = len < room ? len : room;
	memcpy(c->in + c->in_len, in, n);
	c->in_len += n;
	status = httpd__parse(c->in, c->in_len, h->o.max_head_bytes, &req);
	if (status == 0) {
		uint64_t d = head_deadline(c, now_ms(h));
		if (d != c->deadline) {
			c->deadline = d;
			arm_timer(h);
		}
		return 0;
	}
	if (status == 200)
		dispatch(c, &req);
	else
		respond_error(c, status, req.error);
	return 0;
}

static int on_writeable(conn_t *c)
{
	httpd_t *h = c->h;

	if (c->kill)
		return -1;
	switch (c->state) {
	case C_HEAD:
	case C_LINGER:
		return 0;
	case C_WRITE: {
		/* straight to the socket, as much as it takes now (see the top of this file) */
		int fd = lws_get_socket_fd(c->wsi);
		size_t before = c->out_off;
		while (c->out_off < c->out_len) {
			ssize_t n = send(fd, c->out + LWS_PRE + c->out_off, c->out_len - c->out_off,
			                 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				break;
			if (n <= 0)
				return -1;
			c->out_off += (size_t)n;
		}
		if (c->out_off == c->out_len)
			c->state = C_FLUSH;
		if (c->out_off > before) { /* it goes on: idle from here */
			c->deadline = now_ms(h) + h->o.idle_timeout_ms;
			arm_timer(h);
		}
		lws_callback_on_writable(c->wsi);
		return 0;
	}
	case C_FLUSH: {
		unsigned linger = h->o.idle_timeout_ms < HTTPD_LINGER_MS ? h->o.idle_timeout_ms
		                                                          : HTTPD_LINGER_MS;
		free(c->out);
		c->out = NULL;
		/* lingering close: the client reads the response and EOF, then closes */
		shutdown(lws_get_socket_fd(c->wsi), SHUT_WR);
		lws_rx_flow_control(c->wsi, 1); /* drain, and see the client's EOF */
		c->state = C_LINGER;
		c->deadline = now_ms(h) + linger;
		arm_timer(h);
		return 0;
	}
	}
	return 0;
}

static void timer_cb(uv_timer_t *t)
{
	httpd_t *h = t->data;
	uint64_t now = now_ms(h);
	conn_t *c, *next;

	for (c = h->conns; c; c = next) {
		next = c->next;
		if (c->deadline > now)
			continue;
		if (c->state == C_HEAD) {
			char msg[96];
			h->st.timeouts++;
			if (now >= c->accepted + h->o.head_timeout_ms)
				snprintf(msg, sizeof msg, "request head not complete within %u ms",
				         h->o.head_timeout_ms);
			else
				snprintf(msg, sizeof msg, "no request bytes for %u ms",
				         h->o.idle_timeout_ms);
			respond_error(c, 408, msg);
		} else {
			/* slow reader, or a client that does not close: cut it now */
			c->deadline = UINT64_MAX;
			c->kill = 1;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_REASON_BASE, LWS_TO_KILL_SYNC);
		}
	}
	arm_timer(h);
}

static int httpd_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len)
{
	conn_t *c = user;
	httpd_t *h;

	if (c && c->magic != HTTPD_CONN_MAGIC)
		c = NULL;
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		h = lws_context_user(lws_get_context(wsi));
		if (h && !h->closing)
			on_adopt(h, wsi);
		else
			return -1;
		break;
	case LWS_CALLBACK_RAW_RX:
		if (c)
			return on_rx(c, in, len);
		break;
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (c)
			return on_writeable(c);
		break;
	case LWS_CALLBACK_RAW_CLOSE:
		if (c)
			conn_unlink(c);
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		if (c) {
			lws_set_wsi_user(wsi, NULL);
			httpd__conn_free(c);
		}
		break;
	default:
		break;
	}
	return 0;
}

const struct lws_protocols httpd__protocols[] = {
	{ "httpd", httpd_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};
