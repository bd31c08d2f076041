/*
 * store_cmd.c: every command on the store's connection is sent from here, so that each has a
 * deadline. Commands awaiting a reply are kept oldest first; the deadline timer looks at the
 * oldest (or at a connection attempt that has not completed) every timeout_ms / 4 (at most
 * every 250 ms), and when it is older than timeout_ms the connection is declared
 * unresponsive and dropped (store__drop_unresponsive). Replies come back in order on one
 * connection, so the oldest pending command is the one a hung server is stuck on.
 * Redis's clock is read (TIME) at each connection, so that a write can carry the same
 * deadline in Redis's time and do nothing if it runs later (store_deadline).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_priv.h"
#include "util/list.h"
#include "util/log.h"

uint64_t store__now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static void on_pend_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	pend_t *p = privdata;
	store_t *s = ac->data;
	redisCallbackFn *fn = p->fn;
	void *priv = p->priv;

	DLIST_UNLINK_TAIL(&s->phead, &s->ptail, p, prev, next);
	free(p);
	fn(ac, reply, priv);
}

static pend_t *pend_push(store_t *s, redisCallbackFn *fn, void *priv)
{
	pend_t *p = store__xmalloc(sizeof *p);

	p->fn = fn;
	p->priv = priv;
	p->sent_ms = store__now_ms();
	DLIST_PUSH_TAIL(&s->phead, &s->ptail, p, prev, next);
	return p;
}

static int pend_sent(store_t *s, pend_t *p, int hiredis_rc)
{
	if (hiredis_rc == REDIS_OK)
		return 0;
	DLIST_UNLINK_TAIL(&s->phead, &s->ptail, p, prev, next);
	free(p);
	return -EIO;
}

int store__cmdv(store_t *s, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                const size_t *lens)
{
	pend_t *p;

	if (!s->ac)
		return -ENOTCONN;
	p = pend_push(s, fn, priv);
	return pend_sent(s, p, redisAsyncCommandArgv(s->ac, on_pend_reply, p, argc, argv, lens));
}

int store__cmdf(store_t *s, redisCallbackFn *fn, void *priv, const char *fmt, ...)
{
	va_list ap;
	pend_t *p;
	int rc;

	if (!s->ac)
		return -ENOTCONN;
	p = pend_push(s, fn, priv);
	va_start(ap, fmt);
	rc = redisvAsyncCommand(s->ac, on_pend_reply, p, fmt, ap);
	va_end(ap);
	return pend_sent(s, p, rc);
}

/* The age of what the store waits for (the oldest pending command, or a connection attempt),
 * or 0 if it waits for nothing. */
static uint64_t waited_ms(const store_t *s, uint64_t now)
{
	if (!s->ac)
		return 0;
	if (s->phead)
		return now - s->phead->sent_ms;
	if (s->state == C_CONNECTING)
		return now - s->conn_began_ms;
	return 0;
}

void store__on_deadline_timer(uv_timer_t *t)
{
	store_t *s = t->data;
	uint64_t now = store__now_ms();

	if (!s->ac || s->finishing || waited_ms(s, now) < s->o.timeout_ms)
		return;
	/* Before judging, read what has come: libuv runs timers before it polls, so after a turn
	 * of the loop longer than timeout_ms the replies of an answering server are waiting in
	 * the socket. The read may run callbacks and lose the connection (s->ac NULL). */
	if (s->state != C_CONNECTING)
		redisAsyncHandleRead(s->ac);
	if (s->ac && !s->finishing && waited_ms(s, now) >= s->o.timeout_ms)
		store__drop_unresponsive(s, waited_ms(s, now));
}

/* ---- Redis's clock ---- */

/* rep: the reply to TIME, {seconds, microseconds} as strings. */
void store__clock_set(store_t *s, const redisReply *rep)
{
	unsigned long long sec, usec;

	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING) {
		char d[300];
		store__describe(rep, d, sizeof d);
		if (rep)
			log_warn(COMP,
			         "TIME on %s: %s (expected {seconds, microseconds}): writes that "
			         "reach Redis late are not refused",
			         s->redacted, d);
		s->clock_known = 0;
		return;
	}
	sec = strtoull(rep->element[0]->str, NULL, 10);
	usec = strtoull(rep->element[1]->str, NULL, 10);
	s->clock_offset = (int64_t)(sec * 1000u + usec / 1000u) - (int64_t)store__now_ms();
	s->clock_known = 1;
}

static void on_time(redisAsyncContext *ac, void *reply, void *privdata)
{
	store_t *s = ac->data;

	(void)privdata;
	s->clock_asking = 0;
	if (reply)
		store__clock_set(s, reply);
}

/* Reads Redis's clock again (a write came back refused as late although it was answered in
 * time: the clock of Redis's host has moved). */
void store__clock_ask(store_t *s)
{
	if (s->clock_asking || s->state != C_READY)
		return;
	if (store__cmdf(s, on_time, NULL, "TIME") == 0)
		s->clock_asking = 1;
}

/* The store gives up on every pending command when the oldest has waited timeout_ms, so a
 * command sent now is given up on timeout_ms after the oldest pending one was sent, not after
 * it was. 2 ms off for the rounding of the two clocks to whole ms (clock_offset is at most
 * 1 ms more than the truth: Redis read its clock before the reply reached us). */
uint64_t store_deadline(const store_t *s)
{
	uint64_t base = store__now_ms();
	int64_t d;

	if (!s->clock_known || s->state != C_READY)
		return 0;
	if (s->phead && s->phead->sent_ms < base)
		base = s->phead->sent_ms;
	d = (int64_t)base + s->clock_offset + (int64_t)s->o.timeout_ms - 2;
	return d > 0 ? (uint64_t)d : 0;
}
