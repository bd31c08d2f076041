/*
 * pump.c: the pump, the only place that takes due targets from the schedulers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/snapshot.h"
#include "cdp/cdp_err.h"
#include "daemon/targets.h"
#include "runner/runner_priv.h"
#include "util/log.h"

/* ---- the pump ---- */

static void on_wake(uv_timer_t *t)
{
	runner__pump(t->data);
}

static void schedule_wake(run_t *r)
{
	uint64_t now = now_ms(r);
	/* with every navigate slot busy, a finishing task calls runner__pump(): waking for queued
	 * targets that cannot start would spin */
	uint64_t a = r->inflight + r->claiming < r->o->pool.concurrency_cap
	                     ? sched_next_wakeup(r->nav, now)
	                     : UINT64_MAX;
	uint64_t b = sched_next_wakeup(r->wsched, now);
	uint64_t at = a < b ? a : b;

	if (r->stopping || at == UINT64_MAX) {
		uv_timer_stop(&r->wake);
		return;
	}
	uv_timer_start(&r->wake, on_wake, at > now ? at - now : 0, 0);
}

void runner__pump(run_t *r)
{
	uint64_t now = now_ms(r);
	const char *id;
	rtarget_t *rt;

	if (r->stopping)
		return;
	while (r->inflight + r->claiming < r->o->pool.concurrency_cap &&
	       (rt = sched_next(r->nav, now, &id)) != NULL) {
		if (r->share)
			runner__claim(r, rt, 0);
		else
			runner__task_start(r, rt);
	}
	while ((rt = sched_next(r->wsched, now, &id)) != NULL) {
		if (r->share)
			runner__claim(r, rt, 1);
		else
			runner__watch_due(r, rt);
	}
	schedule_wake(r);
}
