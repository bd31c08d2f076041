/*
 * redis_uv: hiredis event hooks on a uv_poll_t (see redis_uv.h). On a poll error status the
 * events asked for are handed to hiredis anyway, so its read or write fails and it runs the
 * pending callbacks and the disconnect callback (what hiredis 1.0's adapter does).
 */
#include "store/redis_uv.h"

#include <errno.h>
#include <stdlib.h>

typedef struct glue {
	redisAsyncContext *ac; /* NULL once hiredis has called cleanup */
	uv_poll_t poll;
	int events;
	void (*closed_cb)(void *ud);
	void *ud;
} glue_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
	glue_t *g = h->data;
	/* On an error status libuv has stopped the poll and gives no events: let hiredis try
	 * what it was waiting for, so it sees the failure (EOF, ECONNRESET...). */
	int ev = status < 0 ? g->events : events;

	if (g->ac && (ev & UV_READABLE))
		redisAsyncHandleRead(g->ac);
	/* the read may have freed the context (cleanup sets g->ac to NULL) */
	if (g->ac && (ev & UV_WRITABLE))
		redisAsyncHandleWrite(g->ac);
	if (status < 0 && g->ac && g->events) {
		/* hiredis did not notice (e.g. a spurious error): poll again, it will report. */
		uv_poll_start(&g->poll, g->events, on_poll);
	}
}

static void update(glue_t *g)
{
	if (g->events)
		uv_poll_start(&g->poll, g->events, on_poll);
	else
		uv_poll_stop(&g->poll);
}

static void add_read(void *p)
{
	glue_t *g = p;
	g->events |= UV_READABLE;
	update(g);
}

static void del_read(void *p)
{
	glue_t *g = p;
	g->events &= ~UV_READABLE;
	update(g);
}

static void add_write(void *p)
{
	glue_t *g = p;
	g->events |= UV_WRITABLE;
	update(g);
}

static void del_write(void *p)
{
	glue_t *g = p;
	g->events &= ~UV_WRITABLE;
	update(g);
}

static void on_closed(uv_handle_t *h)
{
	glue_t *g = h->data;
	void (*cb)(void *) = g->closed_cb;
	void *ud = g->ud;

	free(g);
	if (cb)
		cb(ud);
}

static void cleanup(void *p)
{
	glue_t *g = p;

	g->ac = NULL;
	g->events = 0;
	uv_close((uv_handle_t *)&g->poll, on_closed);
}

int store_uv_attach(redisAsyncContext *ac, uv_loop_t *loop, void (*closed_cb)(void *ud), void *ud)
{
	glue_t *g;
	int rc;

	if (ac->ev.data)
		return -EEXIST;
	g = calloc(1, sizeof *g);
	if (!g)
		return -ENOMEM;
	rc = uv_poll_init(loop, &g->poll, ac->c.fd);
	if (rc) {
		free(g);
		return rc;
	}
	g->ac = ac;
	g->poll.data = g;
	g->closed_cb = closed_cb;
	g->ud = ud;
	ac->ev.addRead = add_read;
	ac->ev.delRead = del_read;
	ac->ev.addWrite = add_write;
	ac->ev.delWrite = del_write;
	ac->ev.cleanup = cleanup;
	ac->ev.data = g;
	return 0;
}
