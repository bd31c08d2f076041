/*
 * httpd: hardened HTTP/1.1 endpoints on a raw libwebsockets vhost, on the caller's loop.
 *
 * Why raw: lws 4.1's own HTTP parser drops a connection without an answer when a head
 * overflows its header store, and does not show the raw head to the protocol, so limits
 * (head bytes, header count, target length, pipelining) could not be answered with the
 * status and JSON the contract promises. lws still does the accept, the polling on the
 * loop and the buffering of partial writes; httpd__parse() reads the head.
 *
 * This file: options and the server (lws context, listener, lifetime). The request head
 * parser is in httpd_parse.c, connections and replies in httpd_conn.c (httpd_priv.h).
 */
#include "daemon/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cdp/cdp_ws.h"
#include "daemon/httpd_priv.h"
#include "util/envnum.h"
#include "util/log.h"

void *httpd__xcalloc(size_t n, size_t size)
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
	o->head_timeout_ms = 3000;
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

/* A whole number in [lo, hi] into *out (envnum.h); a bad one sets *rc. */
static void env_uint(errlist_t *errs, int *rc, const char *var, unsigned lo, unsigned hi,
                     unsigned *out)
{
	double d = 0;
	int r = envnum_get(errs, var, lo, hi, ENVNUM_WHOLE, NULL, &d);

	if (r < 0)
		*rc = -EINVAL;
	else if (r > 0)
		*out = (unsigned)d;
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
	env_uint(errs, &rc, "METRICS_HEAD_TIMEOUT_MS", 100, 600000, &o->head_timeout_ms);
	return rc;
}

/* ---- the server ---- */

httpd_t *httpd_new(uv_loop_t *loop, const httpd_opts_t *o)
{
	httpd_t *h;
	char why[160];
	int port, v6;

	if (!loop || !o || !o->max_conns || o->max_head_bytes < 64 || !o->idle_timeout_ms ||
	    !o->head_timeout_ms) {
		log_error("httpd", "bad options");
		return NULL;
	}
	h = httpd__xcalloc(1, sizeof *h);
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
	cdp_lws_context_info_init(&info, h->loop, h->foreign_loops, httpd__protocols, &h->lws);
	info.user = h;
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
		httpd__conn_free(c);
	}
	free(h);
}
