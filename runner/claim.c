/*
 * claim.c: the shared schedule (SCHEDULE=redis): each run of a target is claimed first
 * through callbacks.claim, and its end is reported through callbacks.run_over, so that
 * several instances never scrape one target at once. The runner knows no Redis: daemon/
 * wires these callbacks to store/share.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runner/runner_priv.h"
#include "util/log.h"

typedef struct claim {
	runner_t *runner;
	rtarget_t *rt; /* ref held */
	enum rkind kind;
} claim_t;

/* The run of a target we claimed is over: tell the others when it is due again. */
void runner__share_run_over(runner_t *r, rtarget_t *rt)
{
	sched_info_t si;
	uint64_t now = now_ms(r);

	if (!r->cbs.claim || !rt->held)
		return;
	rt->held = 0;
	if (rt->removed || sched_get_info(sched_of(r, rt), rt->spec.id, &si) != 0)
		return;
	if (r->cbs.run_over)
		r->cbs.run_over(r->cbs.ud, rt->spec.id,
		                si.due_ms > now ? (uint32_t)(si.due_ms - now > 86400000
		                                                     ? 86400000
		                                                     : si.due_ms - now)
		                                : 0);
}

void runner__watch_sched_done(runner_t *r, rtarget_t *rt, int ok)
{
	sched_done(r->sched[RK_WATCH], rt->spec.id, ok, now_ms(r));
	runner__share_run_over(r, rt);
}

static void on_claimed(void *ud, int status, uint64_t fence, uint32_t retry_ms)
{
	claim_t *c = ud;
	runner_t *r = c->runner;
	rtarget_t *rt = c->rt;
	enum rkind kind = c->kind;
	uint64_t now = now_ms(r);

	free(c);
	r->claiming[kind]--;
	if (rt->removed || r->stopping) {
		runner__run_over(r, rt);
		if (!rt->removed)
			sched_defer(sched_of(r, rt), rt->spec.id, now + retry_ms, now);
		runner__rt_unref(rt);
		if (r->closing)
			runner__maybe_finish_close(r);
		return;
	}
	if (status < 0 && !rt->owner) {
		/* Redis cannot say who holds it, and it was not ours: wait, so that it is never
		 * scraped by two instances at once */
		runner__run_over(r, rt);
		sched_defer(sched_of(r, rt), rt->spec.id, now + 1000, now);
	} else if (status == 0) {
		/* another instance holds it (or it is not due there yet) */
		rt->owner = 0;
		runner__run_over(r, rt);
		sched_defer(sched_of(r, rt), rt->spec.id, now + retry_ms, now);
		if (kind == RK_WATCH && rt->watch)
			runner__watch_close(rt->watch);
	} else {
		if (status == 1) {
			rt->held = 1;
			rt->owner = 1;
			if (fence != rt->fence && rt->seq > 0)
				rt->resync = 1; /* taken over: Redis may hold another's newer result */
			rt->fence = fence;
		} else {
			/* Redis is away: ours at the last claim, so we keep it (the others take it
			 * only once our heartbeat is lease_ms old, with a fence that outranks our
			 * writes) */
			log_debug("run", "shared schedule unreachable (%s): %s was ours, scraping it",
			          strerror(-status), rt->spec.id);
		}
		if (kind == RK_WATCH)
			runner__watch_due(r, rt);
		else
			runner__task_start(r, rt, kind);
	}
	runner__rt_unref(rt);
	if (r->closing)
		runner__maybe_finish_close(r);
	else
		runner__pump(r);
}

void runner__claim(runner_t *r, rtarget_t *rt, enum rkind kind)
{
	claim_t *c = calloc(1, sizeof *c);

	if (!c)
		abort();
	c->runner = r;
	c->rt = rt;
	c->kind = kind;
	rt->refs++;
	r->claiming[kind]++;
	r->cbs.claim(r->cbs.ud, rt->spec.id, on_claimed, c);
}
