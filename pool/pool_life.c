/*
 * pool_life: the pool's once-a-second tick (move graces, kept pages, the browser's idle
 * close and relaunch, uptime recycling) and its own lifecycle: creation, start, close,
 * counters, the browsers' pids. Moved out of pool.c unchanged.
 */
#include "pool/pool.h"

#include <stdlib.h>

#include "pool/pool_priv.h"
#include "util/log.h"

#define TICK_MS 1000u

static void on_tick(uv_timer_t *t)
{
	pool_t *p = t->data;
	uint64_t now = uv_now(p->loop);

	if (p->closing) {
		if (now >= p->close_deadline) {
			for (pool_lease_t *l = p->active, *next; l; l = next) {
				next = l->next;
				pool__lease_revoke(l, POOL_TIMEOUT, "shutdown grace passed");
			}
		}
		return;
	}
	for (pool_lease_t *l = p->active, *next; l; l = next) {
		next = l->next;
		/* the grace runs from the ask, or from the last page opened while opening goes on;
		 * ten graces after the ask in any case (replacements that keep failing and
		 * reopening must not keep a draining browser alive for ever) */
		if (l->watch && l->move_asked &&
		    (now - (l->move_asked > p->watch_opened_at ? l->move_asked : p->watch_opened_at) >=
		             p->opts.move_grace_ms ||
		     now - l->move_asked >= 10ull * p->opts.move_grace_ms))
			pool__lease_revoke(l, POOL_TIMEOUT, "watched page not moved to the new browser in time");
	}
	pool__keep_sweep(p, now, 0);
	pool__browser_tick(p, now);
	if (p->current && p->opts.recycle_uptime_ms &&
	    now - p->current->ready_at >= p->opts.recycle_uptime_ms)
		pool_request_recycle(p, POOL_RECYCLE_UPTIME);
	if (p->recycle_pending)
		pool_request_recycle(p, p->recycle_reason);
}

/* ---- pool lifecycle ---- */

pool_t *pool_new(uv_loop_t *loop, cdp_wsctx_t *ws, const pool_opts_t *opts)
{
	pool_t *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->loop = loop;
	p->ws = ws;
	if (opts)
		p->opts = *opts;
	else
		pool_opts_init(&p->opts);
	uv_timer_init(loop, &p->pump_timer);
	p->pump_timer.data = p;
	uv_timer_init(loop, &p->tick);
	p->tick.data = p;
	p->handles_open = 2;
	p->recycle_reason = POOL_RECYCLE_REQUESTED;
	return p;
}

void pool__begin(pool_t *p)
{
	if (p->begun || p->closing)
		return;
	p->begun = 1;
	browser_sweep_stale_dirs();
	uv_timer_start(&p->tick, on_tick, TICK_MS, TICK_MS);
}

int pool_start(pool_t *p)
{
	pool_set_wanted(p, 1);
	return 0;
}

static void pool_handle_closed(uv_handle_t *h)
{
	pool__unref(h->data);
}

void pool__maybe_finish_close(pool_t *p)
{
	if (!p->closing || p->closing == 2)
		return;
	if (p->active || p->waiting_head)
		return;
	/* every lease is gone: close the browsers, then our own handles */
	for (pbrowser_t *pb = p->browsers; pb; pb = pb->next)
		if (pb->state != PB_CLOSING)
			pool__pb_close(pb);
	if (p->browsers)
		return;
	p->closing = 2;
	uv_timer_stop(&p->tick);
	uv_timer_stop(&p->pump_timer);
	uv_close((uv_handle_t *)&p->pump_timer, pool_handle_closed);
	uv_close((uv_handle_t *)&p->tick, pool_handle_closed);
}

void pool_close(pool_t *p, pool_closed_cb cb, void *ud)
{
	if (p->closing)
		return;
	p->closing = 1;
	p->closed_cb = cb;
	p->closed_ud = ud;
	p->close_deadline = uv_now(p->loop) + p->opts.shutdown_grace_ms;
	log_info("pool", "closing: %u lease(s) in flight, %u waiting", p->in_use, p->nwaiting);
	/* Requests still waiting are cancelled; leases already opening or granted are in
	 * flight and finish (bounded by the shutdown grace, then revoked). */
	while (p->waiting_head)
		pool_lease_cancel(p->waiting_head);
	pool__keep_sweep(p, uv_now(p->loop), 1);
	if (!uv_is_active((uv_handle_t *)&p->tick))
		uv_timer_start(&p->tick, on_tick, TICK_MS, TICK_MS);
	pool__maybe_finish_close(p);
}

void pool_get_stats(const pool_t *p, pool_stats_t *out)
{
	*out = p->st;
	out->leases_in_use = p->in_use - p->nkept;
	out->pages_kept = p->nkept;
	out->capacity = p->opts.concurrency_cap;
	out->waiting = p->nwaiting;
	out->watch_leases = p->watch_in_use;
	out->watch_opening = p->watch_opening;
	out->paused = p->paused;
	out->ready = p->current && p->current->state == PB_READY;
	out->browser_uptime_ms = out->ready ? uv_now(p->loop) - p->current->ready_at : 0;
	out->tasks_on_browser = p->current ? p->current->tasks : 0;
	out->browser_wanted = p->wanted;
}

pid_t pool_browser_pid(const pool_t *p)
{
	return p->current ? browser_pid(p->current->b) : 0;
}

cdp_conn_t *pool_browser_conn(const pool_t *p)
{
	return p->current && p->current->state == PB_READY ? browser_conn(p->current->b) : NULL;
}

size_t pool_browser_pids(const pool_t *p, pid_t *out, size_t max)
{
	size_t n = 0;

	for (const pbrowser_t *pb = p->browsers; pb && n < max; pb = pb->next) {
		pid_t pid = browser_pid(pb->b);
		if (pid > 0)
			out[n++] = pid;
	}
	return n;
}
