/*
 * httpd: hardened HTTP/1.1 endpoints on a raw libwebsockets vhost, on the caller's loop.
 *
 * Why raw: lws 4.1's own HTTP parser drops a connection without an answer when a head
 * overflows its header store, and does not show the raw head to the protocol, so limits
 * (head bytes, header count, target length, pipelining) could not be answered with the
 * status and JSON the contract promises. lws still does the accept, the polling on the
 * loop and the buffering of partial writes; httpd__parse() reads the head.
 *
 * A connection (conn_t) is allocated at RAW_ADOPT, unlinked from the server's list at
 * RAW_CLOSE and freed at WSI_DESTROY (lws's last word on the wsi). Its states:
 *   HEAD   reading the request head (deadline: accept + idle_timeout -> 408)
 *   WRITE  handing the response to lws, 16 KiB per WRITEABLE
 *   FLUSH  all handed over; the next WRITEABLE means lws has sent it all
 *   LINGER write side shut down; reads are drained until the client closes or the
 *          linger deadline passes
 * Deadlines of every state are checked by one uv_timer armed for the earliest one; past
 * its deadline a connection that is not in HEAD is closed at once (LWS_TO_KILL_SYNC).
 */
#include "daemon/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"

#define HTTPD_WRITE_CHUNK (16 * 1024)
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
	char *in;           /* head bytes, max_head_bytes + 1 at most */
	size_t in_len;
	unsigned char *out; /* LWS_PRE headroom, then the response */
	size_t out_len, out_off;
	size_t drained;
} conn_t;

typedef struct route {
	char path[HTTPD_MAX_PATH + 1];
	httpd_handler_fn fn;
	void *ud;
} route_t;

struct httpd {
	uv_loop_t *loop;
	httpd_opts_t o;
	struct lws_context *lws;
	struct lws_vhost *vh;
	void *foreign_loops[1];
	uv_timer_t timer;
	route_t routes[HTTPD_MAX_ROUTES];
	unsigned nroutes;
	conn_t *conns;
	unsigned refusing;
	httpd_stats_t st;
	int port;
	int started, closing;
	char host[INET6_ADDRSTRLEN];
	char addr_text[80]; /* for log lines: host:port as given */
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p) {
		log_error("httpd", "out of memory");
		abort();
	}
	return p;
}

/* ---- options ---- */

void httpd_opts_init(httpd_opts_t *o)
{
	memset(o, 0, sizeof *o);
	snprintf(o->addr, sizeof o->addr, "%s", HTTPD_DEFAULT_ADDR);
	o->max_conns = 64;
	o->max_head_bytes = 8192;
	o->idle_timeout_ms = 10000;
}

int httpd_parse_addr(const char *addr, char *host, size_t hostlen, int *port, int *ipv6,
                     char *why, size_t whylen)
{
	const char *hs, *he, *ps;
	char hbuf[INET6_ADDRSTRLEN + 1];
	unsigned char sa[sizeof(struct in6_addr)];
	size_t hl;
	long pt = 0;

	*ipv6 = 0;
	if (addr[0] == '[') {
		hs = addr + 1;
		he = strchr(hs, ']');
		if (!he || he[1] != ':') {
			snprintf(why, whylen, "expected [IPv6]:port, e.g. [::1]:9464");
			return -EINVAL;
		}
		ps = he + 2;
		*ipv6 = 1;
	} else {
		hs = addr;
		he = strrchr(addr, ':');
		if (!he) {
			snprintf(why, whylen, "expected host:port, e.g. 127.0.0.1:9464");
			return -EINVAL;
		}
		ps = he + 1;
	}
	hl = (size_t)(he - hs);
	if (hl == 0 || hl >= sizeof hbuf || hl >= hostlen) {
		snprintf(why, whylen, "expected a numeric IPv4 address or a bracketed IPv6 address");
		return -EINVAL;
	}
	memcpy(hbuf, hs, hl);
	hbuf[hl] = '\0';
	if (inet_pton(*ipv6 ? AF_INET6 : AF_INET, hbuf, sa) != 1) {
		snprintf(why, whylen, "'%s' is not a numeric %s address%s", hbuf,
		         *ipv6 ? "IPv6" : "IPv4",
		         *ipv6 ? "" : " (IPv6 goes in brackets: [::1]:9464; no host names)");
		return -EINVAL;
	}
	if (!*ps || strspn(ps, "0123456789") != strlen(ps) || strlen(ps) > 5 ||
	    (pt = strtol(ps, NULL, 10)) > 65535) {
		snprintf(why, whylen, "the port must be a number from 0 to 65535");
		return -EINVAL;
	}
	memcpy(host, hbuf, hl + 1);
	*port = (int)pt;
	return 0;
}

static void env_uint(errlist_t *errs, int *rc, const char *var, unsigned lo, unsigned hi,
                     unsigned *out)
{
	const char *v = getenv(var);
	char *end = NULL;
	unsigned long n;

	if (!v)
		return;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-' || v[0] == '+' || n < lo || n > hi) {
		errlist_add(errs, "%s='%s': expected a whole number from %u to %u", var, v, lo, hi);
		*rc = -EINVAL;
		return;
	}
	*out = (unsigned)n;
}

int httpd_opts_from_env(httpd_opts_t *o, errlist_t *errs)
{
	const char *v = getenv("METRICS_ADDR");
	int rc = 0;

	httpd_opts_init(o);
	if (v) {
		char host[INET6_ADDRSTRLEN], why[160];
		int port, v6;
		if (strlen(v) >= sizeof o->addr) {
			errlist_add(errs, "METRICS_ADDR='%s': too long, expected host:port such as "
			                  "127.0.0.1:9464", v);
			rc = -EINVAL;
		} else if (httpd_parse_addr(v, host, sizeof host, &port, &v6, why, sizeof why)) {
			errlist_add(errs, "METRICS_ADDR='%s': %s", v, why);
			rc = -EINVAL;
		} else {
			snprintf(o->addr, sizeof o->addr, "%s", v);
		}
	}
	env_uint(errs, &rc, "METRICS_MAX_CONNS", 1, 4096, &o->max_conns);
	env_uint(errs, &rc, "METRICS_MAX_HEAD_BYTES", 1024, 65536, &o->max_head_bytes);
	env_uint(errs, &rc, "METRICS_IDLE_TIMEOUT_MS", 100, 600000, &o->idle_timeout_ms);
	return rc;
}

/* ---- replies ---- */

int httpd_reply_append(httpd_reply_t *r, const void *data, size_t len)
{
	if (r->err)
		return r->err;
	if (len > HTTPD_MAX_BODY - r->len)
		return r->err = -EMSGSIZE;
	if (r->len + len + 1 > r->cap) {
		size_t ncap = r->cap ? r->cap : 512;
		char *n;
		while (ncap < r->len + len + 1)
			ncap *= 2;
		n = realloc(r->body, ncap);
		if (!n)
			return r->err = -ENOMEM;
		r->body = n;
		r->cap = ncap;
	}
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return 0;
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
	free(r->body);
	r->body = NULL;
	r->len = r->cap = 0;
	if (len > HTTPD_MAX_BODY) {
		free(body);
		return r->err = -EMSGSIZE;
	}
	r->body = body;
	r->len = body ? len : 0;
	r->cap = r->len;
	return 0;
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

/* ---- the request head parser ---- */

static int is_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int bad(httpd__req_t *req, int status, const char *why)
{
	req->error = why;
	return status;
}

/* Case-insensitive compare of a header name of length n with a lowercase literal. */
static int name_is(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

static const char *find_crlf(const char *p, const char *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '\r' && p[1] == '\n')
			return p;
	return NULL;
}

int httpd__parse(const char *buf, size_t len, size_t max_head, httpd__req_t *req)
{
	static const char ver[] = "HTTP/1.";
	const char *end = buf + len, *eol, *p, *method, *version;
	size_t i = 0, mlen, vlen, nheaders = 0, hosts = 0;
	int is_get, is_head, http11, has_body = 0;

	memset(req, 0, sizeof *req);
	eol = find_crlf(buf, end);
	/* request-line = method SP request-target SP HTTP-version CRLF, checked as it comes */
	{
		size_t ll = eol ? (size_t)(eol - buf) : len;
		while (i < ll && is_tchar((unsigned char)buf[i]))
			i++;
		if (i > 32)
			return bad(req, 400, "malformed request line: method too long");
		if (i == ll && !eol)
			goto line_incomplete;
		if (i == ll || buf[i] != ' ' || i == 0)
			return bad(req, 400, "malformed request line");
		method = buf;
		mlen = i++;
		req->target = buf + i;
		while (i < ll && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
			i++;
		req->target_len = (size_t)(buf + i - req->target);
		if (req->target_len > HTTPD_MAX_TARGET)
			return bad(req, 414, "request target too long");
		if (i == ll && !eol)
			goto line_incomplete;
		if (i == ll || buf[i] != ' ' || req->target_len == 0)
			return bad(req, 400, "malformed request line");
		version = buf + ++i;
		vlen = ll - i;
		for (size_t k = 0; k < vlen; k++) {
			int ok = k < sizeof ver - 1 ? version[k] == ver[k]
			         : k == sizeof ver - 1 ? version[k] == '0' || version[k] == '1'
			         /* the CR of a CRLF whose LF has not come yet */
			                               : !eol && k == sizeof ver && version[k] == '\r';
			if (!ok)
				return bad(req, 400, "malformed request line: expected HTTP/1.0 or "
				                     "HTTP/1.1");
		}
		if (!eol)
			goto line_incomplete;
		if (vlen != sizeof ver)
			return bad(req, 400, "malformed request line: expected HTTP/1.0 or HTTP/1.1");
	}
	http11 = version[sizeof ver - 1] == '1';

	/* header lines, each checked once complete */
	for (p = eol + 2;;) {
		const char *le = find_crlf(p, end), *colon;
		if (!le)
			break;
		if (le == p) {
			req->head_len = (size_t)(le + 2 - buf);
			break;
		}
		if (++nheaders > HTTPD_MAX_HEADERS)
			return bad(req, 431, "too many header lines");
		colon = p;
		while (colon < le && is_tchar((unsigned char)*colon))
			colon++;
		if (colon == p || colon == le || *colon != ':')
			return bad(req, 400, "malformed header line");
		for (const char *v = colon + 1; v < le; v++) {
			unsigned char c = (unsigned char)*v;
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return bad(req, 400, "control character in a header value");
		}
		if (name_is(p, (size_t)(colon - p), "host"))
			hosts++;
		else if (name_is(p, (size_t)(colon - p), "transfer-encoding"))
			has_body = 1;
		else if (name_is(p, (size_t)(colon - p), "content-length")) {
			const char *v = colon + 1, *ve = le;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (v == ve)
				return bad(req, 400, "malformed Content-Length");
			for (const char *d = v; d < ve; d++)
				if (*d < '0' || *d > '9')
					return bad(req, 400, "malformed Content-Length");
			for (; v < ve; v++)
				if (*v != '0')
					has_body = 1;
		}
		p = le + 2;
	}
	if (!req->head_len) {
		if (len >= max_head)
			return bad(req, 431, "request head too large");
		return 0;
	}
	if (req->head_len > max_head)
		return bad(req, 431, "request head too large");
	is_get = mlen == 3 && memcmp(method, "GET", 3) == 0;
	is_head = mlen == 4 && memcmp(method, "HEAD", 4) == 0;
	if (!is_get && !is_head)
		return bad(req, 405, "method not allowed");
	req->head_only = is_head;
	if (http11 && hosts != 1)
		return bad(req, 400, "an HTTP/1.1 request needs exactly one Host header");
	if (hosts > 1)
		return bad(req, 400, "more than one Host header");
	if (has_body)
		return bad(req, 400, "request bodies are not accepted");
	if (req->target[0] != '/')
		return bad(req, 400, "the request target must be a path");
	if (len > req->head_len)
		return bad(req, 400, "bytes after the request head (pipelining is not supported)");
	return 200;

line_incomplete:
	if (len >= max_head)
		return bad(req, 414, "request line too long");
	return 0;
}

/* ---- connections ---- */

static uint64_t now_ms(httpd_t *h) { return uv_now(h->loop); }

static void conn_unlink(conn_t *c)
{
	httpd_t *h = c->h;

	if (!c->linked)
		return;
	c->linked = 0;
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	if (c->refused)
		h->refusing--;
	else
		h->st.open--;
}

static void conn_free(conn_t *c)
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
	c->out = xcalloc(1, LWS_PRE + (size_t)hl + blen);
	memcpy(c->out + LWS_PRE, head, (size_t)hl);
	if (blen)
		memcpy(c->out + LWS_PRE + hl, body, blen);
	free(body);
	c->out_len = (size_t)hl + blen;
	c->out_off = 0;
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
	rt->fn(rt->ud, rt->path, q ? q : "", &r);
	if (r.err) {
		free(r.body);
		log_warn("httpd", "%s: the reply body could not be built (%s)", rt->path,
		         strerror(-r.err));
		respond_error(c, 500, "the reply could not be built");
		return;
	}
	if (r.status < 100 || r.status > 599) {
		free(r.body);
		log_warn("httpd", "%s: handler set status %d", rt->path, r.status);
		respond_error(c, 500, "the handler set an invalid status");
		return;
	}
	respond(c, r.status, r.content_type ? r.content_type : "text/plain; charset=utf-8",
	        r.body, r.len, req->head_only);
}

static void on_adopt(httpd_t *h, struct lws *wsi)
{
	conn_t *c = xcalloc(1, sizeof *c);

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
	c->deadline = now_ms(h) + h->o.idle_timeout_ms;
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
		c->in = xcalloc(1, (size_t)h->o.max_head_bytes + 1);
	room = (size_t)h->o.max_head_bytes + 1 - c->in_len;
	n = len < room ? len : room;
	memcpy(c->in + c->in_len, in, n);
	c->in_len += n;
	status = httpd__parse(c->in, c->in_len, h->o.max_head_bytes, &req);
	if (status == 0)
		return 0;
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
		size_t n = c->out_len - c->out_off;
		if (n > HTTPD_WRITE_CHUNK)
			n = HTTPD_WRITE_CHUNK;
		if (lws_write(c->wsi, c->out + LWS_PRE + c->out_off, n, LWS_WRITE_RAW) < (int)n)
			return -1;
		c->out_off += n;
		if (c->out_off == c->out_len)
			c->state = C_FLUSH;
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
			snprintf(msg, sizeof msg, "request head not complete within %u ms",
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
			conn_free(c);
		}
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols httpd_protocols[] = {
	{ "httpd", httpd_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- the server ---- */

httpd_t *httpd_new(uv_loop_t *loop, const httpd_opts_t *o)
{
	httpd_t *h;
	char why[160];
	int port, v6;

	if (!loop || !o || !o->max_conns || o->max_head_bytes < 64 || !o->idle_timeout_ms) {
		log_error("httpd", "bad options");
		return NULL;
	}
	h = xcalloc(1, sizeof *h);
	h->loop = loop;
	h->o = *o;
	h->port = -1;
	if (httpd_parse_addr(o->addr, h->host, sizeof h->host, &port, &v6, why, sizeof why)) {
		log_error("httpd", "bad address '%s': %s", o->addr, why);
		free(h);
		return NULL;
	}
	snprintf(h->addr_text, sizeof h->addr_text, "%s", o->addr);
	uv_timer_init(loop, &h->timer);
	h->timer.data = h;
	return h;
}

int httpd_route(httpd_t *h, const char *path, httpd_handler_fn fn, void *ud)
{
	route_t *rt = NULL;

	if (!h || !path || path[0] != '/' || strlen(path) > HTTPD_MAX_PATH || !fn ||
	    strchr(path, '?'))
		return -EINVAL;
	for (unsigned i = 0; i < h->nroutes && !rt; i++)
		if (strcmp(h->routes[i].path, path) == 0)
			rt = &h->routes[i];
	if (!rt) {
		if (h->nroutes == HTTPD_MAX_ROUTES)
			return -ENOSPC;
		rt = &h->routes[h->nroutes++];
		snprintf(rt->path, sizeof rt->path, "%s", path);
	}
	rt->fn = fn;
	rt->ud = ud;
	return 0;
}

/* Binds a throwaway socket to learn the exact errno lws would hide. */
static int probe_bind(const char *host, int port, int v6)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1, rc = 0;

	memset(&ss, 0, sizeof ss);
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &s6->sin6_addr);
		sl = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &s4->sin_addr);
		sl = sizeof *s4;
	}
	fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (v6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

static void lws_log_bridge(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_msg(level == LLL_ERR ? LOG_WARN : LOG_DEBUG, "lws", "%.*s", (int)n, line);
}

int httpd_start(httpd_t *h)
{
	struct lws_context_creation_info info;
	char why[160], host[INET6_ADDRSTRLEN];
	int port, v6, rc;

	if (!h || h->closing)
		return -EINVAL;
	if (h->started)
		return -EALREADY;
	if (httpd_parse_addr(h->o.addr, host, sizeof host, &port, &v6, why, sizeof why))
		return -EINVAL;
	rc = probe_bind(host, port, v6);
	if (rc) {
		log_error("httpd", "cannot listen on %s: %s", h->addr_text, strerror(-rc));
		return rc;
	}
	h->started = 1;
	lws_set_log_level(LLL_ERR | (log_get_level() == LOG_DEBUG ? LLL_WARN : 0),
	                  lws_log_bridge);
	h->foreign_loops[0] = h->loop;
	memset(&info, 0, sizeof info);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = httpd_protocols;
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.foreign_loops = h->foreign_loops;
	info.pcontext = &h->lws;
	info.user = h;
	info.gid = -1;
	info.uid = -1;
	h->lws = lws_create_context(&info);
	if (!h->lws) {
		log_error("httpd", "cannot create the libwebsockets context (is the libuv event "
		                   "library plugin, package libwebsockets-evlib-uv, installed?)");
		return -EIO;
	}
	info.vhost_name = "httpd";
	info.port = port;
	info.iface = host;
	info.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
	if (v6)
		info.options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY | LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE;
	else
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.listen_accept_role = "raw-skt";
	info.listen_accept_protocol = "httpd";
	h->vh = lws_create_vhost(h->lws, &info);
	if (!h->vh) {
		log_error("httpd", "cannot listen on %s: libwebsockets refused the listener",
		          h->addr_text);
		return -EIO;
	}
	h->port = lws_get_vhost_listen_port(h->vh);
	log_info("httpd", "serving http://%s%s%s:%d/", v6 ? "[" : "", host, v6 ? "]" : "",
	         h->port);
	return 0;
}

int httpd_port(const httpd_t *h) { return h && h->vh ? h->port : -1; }

void httpd_get_stats(const httpd_t *h, httpd_stats_t *s) { *s = h->st; }

void httpd_close(httpd_t *h)
{
	if (!h || h->closing)
		return;
	h->closing = 1;
	uv_timer_stop(&h->timer);
	uv_close((uv_handle_t *)&h->timer, NULL);
	if (h->lws)
		lws_context_destroy(h->lws); /* first half: closes the listener and connections */
}

void httpd_free(httpd_t *h)
{
	if (!h)
		return;
	if (h->lws)
		lws_context_destroy(h->lws); /* second call frees what the first left (lws 4.1) */
	while (h->conns) {
		/* lws did not report the end of a connection: should not happen */
		conn_t *c = h->conns;
		log_warn("httpd", "a connection outlived the server");
		conn_free(c);
	}
	free(h);
}
