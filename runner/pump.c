/*
 * pump.c: the pump, the only place that takes due targets from the schedulers (and so the
 * only caller of sched_next()). Each kind of work has one bound, owned by one module:
 * browser tasks start only while the pool has a free CONCURRENCY_CAP slot for them (the
 * pool owns that bound; asking it first keeps the scheduler's priority order the order in
 * which leases are asked for), fetch tasks while fewer than FETCH_CONCURRENCY run, and
 * watched pages open up to WATCH_CAP (watch.c). A claim in flight counts against the bound
 * of the work it claims. Within each task bound, runs of failing targets (whose last run
 * failed) take at most FAILING_LEASE_PERCENT of it (at least one), so that targets that
 * hang until their deadline cannot starve the healthy ones.
 */
#include <stdint.h>

#include "runner/runner_priv.h"

/* The bound of a kind of task: FETCH_CONCURRENCY, or the pool's CONCURRENCY_CAP. */
static unsigned cap_of(runner_t *r, enum rkind kind)
{
	pool_stats_t ps;

	if (kind == RK_FETCH)
		return r->o.fetch_cap;
	pool_get_stats(r->pool, &ps);
	return ps.capacity;
}

/* 1 if a task of this kind may start (or be claimed) now. */
static int room_for(runner_t *r, enum rkind kind)
{
	return r->running[kind] + r->claiming[kind] < cap_of(r, kind);
}

/* The scheduler flags for the next run of a kind: healthy targets only once failing ones
 * hold their share of the bound. */
static unsigned next_flags(runner_t *r, enum rkind kind)
{
	unsigned share = cap_of(r, kind) * r->o.failing_percent / 100;

	return r->failing[kind] >= (share ? share : 1) ? SCHED_NEXT_HEALTHY : 0;
}

void runner__run_over(runner_t *r, rtarget_t *rt)
{
	if (!rt->failing_run)
		return;
	r->failing[rt->failing_run - 1]--;
	rt->failing_run = 0;
}

/* The next run of a kind, counted as failing if it is. */
static rtarget_t *next_run(runner_t *r, enum rkind kind, uint64_t now)
{
	int failing = 0;
	rtarget_t *rt = sched_next_ex(r->sched[kind], now, next_flags(r, kind), NULL, &failing);

	if (rt && failing) {
		rt->failing_run = 1 + (int)kind;
		r->failing[kind]++;
	}
	return rt;
}

static void on_wake(uv_timer_t *t)
{
	runner__pump(t->data);
}

/* Arms the wake timer for the earliest due target that could start. With every slot of a
 * kind busy, the task that ends pumps: waking for targets that cannot start would spin. */
static void schedule_wake(runner_t *r)
{
	uint64_t now = now_ms(r), at = UINT64_MAX;

	for (int k = 0; k < RK_N; k++) {
		uint64_t t;
		if (k != RK_WATCH && !room_for(r, (enum rkind)k))
			continue;
		t = sched_next_wakeup_ex(r->sched[k], now,
		                         k == RK_WATCH ? 0 : next_flags(r, (enum rkind)k));
		if (t < at)
			at = t;
	}
	if (r->adapt_next_ms > now && r->adapt_next_ms < at)
		at = r->adapt_next_ms; /* the next check of an endpoint */
	if (r->stopping || at == UINT64_MAX) {
		uv_timer_stop(&r->wake);
		return;
	}
	uv_timer_start(&r->wake, on_wake, at > now ? at - now : 0, 0);
}

/* Starts (or, on a shared schedule, claims) what is due and has room. */
void runner__pump(runner_t *r)
{
	uint64_t now = now_ms(r);
	const char *id;
	rtarget_t *rt;

	if (r->stopping || !r->started)
		return;
	for (int k = RK_NAV; k <= RK_FETCH; k++)
		while (room_for(r, (enum rkind)k) && (rt = next_run(r, (enum rkind)k, now)) != NULL) {
			if (r->cbs.claim)
				runner__claim(r, rt, (enum rkind)k);
			else
				runner__task_start(r, rt, (enum rkind)k);
		}
	while ((rt = sched_next(r->sched[RK_WATCH], now, &id)) != NULL) {
		if (r->cbs.claim)
			runner__claim(r, rt, RK_WATCH);
		else
			runner__watch_due(r, rt);
	}
	runner__verify_pump(r); /* scheduled work first: verifications take what is left */
	runner__adapt_pump(r);  /* and checks of adaptive targets' endpoints */
	schedule_wake(r);
}

void runner__kick(runner_t *r)
{
	if (r->started && !r->stopping)
		uv_timer_start(&r->wake, on_wake, 0, 0);
}
