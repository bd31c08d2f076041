/*
 * cdp_conn_priv.h: the state of a cdp_conn shared by cdp_conn.c (commands, incoming
 * messages, loss and close) and cdp_conn_listen.c (event listeners). Not for callers.
 */
#ifndef CDPILOT_CDP_CONN_PRIV_H
#define CDPILOT_CDP_CONN_PRIV_H

#include "cdp/cdp_conn.h"
#include "util/growbuf.h"

#define NBUCKETS 256

enum conn_state { CONN_OPEN, CONN_LOST, CONN_CLOSING, CONN_CLOSED };

typedef struct cmd {
	struct cmd *next_bucket;
	struct cmd *next_all, *prev_all;
	uint64_t id;
	uint64_t deadline; /* loop time, ms */
	cdp_reply_cb cb;
	void *ud;
	char method[64]; /* for logs only; truncated */
} cmd_t;

struct cdp_listener {
	struct cdp_listener *next;
	char *method;     /* NULL: any */
	char *session_id; /* NULL: any */
	char *where_key;  /* NULL: any params; else params.where_key must be where_value */
	char *where_value;
	cdp_event_cb cb;
	void *ud;
	int removed;
};

struct cdp_conn {
	uv_loop_t *loop;
	cdp_conn_opts_t opts;
	cdp_transport_t tp;
	void *tud;
	int transport_done; /* the transport has reported closed: never call tp.close */
	int transport_close_sent;
	enum conn_state state;

	cdp_lost_cb on_lost;
	void *lost_ud;
	cdp_close_cb close_cb;
	void *close_ud;

	uint64_t next_id;
	cmd_t *buckets[NBUCKETS];
	cmd_t *all; /* every pending command, newest first */
	uv_timer_t timer;
	uint64_t armed_deadline; /* 0: timer not armed */

	cdp_listener_t *listeners;
	int dispatch_depth;
	int listeners_dirty;

	cdp_conn_stats_t stats;
	growbuf_t out; /* the text of the command being sent, reused (cap: max_message) */
};

/* Frees one listener (cdp_conn.c frees them all at close). */
void cdp_conn__listener_free(cdp_listener_t *l);
/* Hands an event to every listener that matches its method, session and filter. */
void cdp_conn__dispatch_event(cdp_conn_t *c, const char *session_id, const char *method,
                              json_t *params);
/* 1 if data is an event no listener wants (it is then dropped unparsed). */
int cdp_conn__unwanted_event(const cdp_conn_t *c, const char *data, size_t len);

#endif
