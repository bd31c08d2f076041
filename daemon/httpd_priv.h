/*
 * httpd_priv.h: what the files of httpd share: the server struct, its routes, and the
 * functions one file calls in another (httpd.c: options and the server; httpd_conn.c:
 * connections, from accept to lingering close, and replies). The parser needs none of it
 * (httpd__parse() is in httpd.h, for its tests and fuzzer). Not for use outside httpd.
 */
#ifndef CDPILOT_DAEMON_HTTPD_PRIV_H
#define CDPILOT_DAEMON_HTTPD_PRIV_H

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/httpd.h"

typedef struct conn conn_t; /* httpd_conn.c */

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

/* httpd.c */
void *httpd__xcalloc(size_t n, size_t size);

/* httpd_conn.c */
void httpd__conn_free(conn_t *c);
extern const struct lws_protocols httpd__protocols[];

#endif
