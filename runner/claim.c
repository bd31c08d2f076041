/*
 * claim.c: the shared schedule (SCHEDULE=redis). The runner runs only the targets this
 * instance holds (rt->owner); the others wait, parked, until the shared schedule hands one
 * over (runner_share_taken). A held target's run starts without asking while its lease,
 * as the last answer from Redis left it, has time for the run (rt->lease_until); a late run
 * claims first (callbacks.claim). The end of each held run goes out through
 * callbacks.run_over, whose answer (runner_share_kept / runner_share_lost) renews the lease
 * or ends the holding. The runner knows no Redis: daemon/ wires these to store/share.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runner/runner_priv.h"
#include "util/log.h"

/* A target this instance does not hold waits this long (or until it is handed over). */
#define PARK_MS 3600000u

typedef struct claim {
	runner_t *runner;
	rtarget_t *rt; /* ref held */
	enum rkind kind;
} claim_t;

/* The run of a target we held is over: tell the others when it is due again. */
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
		                                : 0,
		                rt->fence, 0);
}

void runner__watch_sched_done(runner_t *r, rtarget_t *rt, int ok)
{
	sched_done(r->sched[RK_WATCH], rt->spec.id, ok, now_ms(r));
	runner__share_run_over(r, rt);
}

/* A discovered child goes with its listing: only the listing's holder discovers it, so it is
 * never on the shared schedule; it is held while its listing is, and writes with the
 * listing's fence (an epoch like every fence: a new holder of the listing outranks the old
 * one's writes of its children too). NULL if rt is not a discovered child. */
static rtarget_t *listing_of(runner_t *r, const rtarget_t *rt)
{
	if (!rt->parent[0] || rt->parent[0] == '@')
		return NULL; /* from the targets file or the Redis hash */
	return runner__find_target(r, rt->parent);
}

int runner__holds(runner_t *r, const rtarget_t *rt)
{
	const rtarget_t *p;

	if (!r->cbs.claim)
		return 1;
	for (int depth = 0; depth < 8 && (p = listing_of(r, rt)) != NULL; depth++)
		rt = p;
	return rt->owner;
}

static uint64_t fence_of(runner_t *r, const rtarget_t *rt)
{
	const rtarget_t *p;

	for (int depth = 0; depth < 8 && (p = listing_of(r, rt)) != NULL; depth++)
		rt = p;
	return rt->fence;
}

static void start_run(runner_t *r, rtarget_t *rt, enum rkind kind)
{
	rt->held = 1;
	if (kind == RK_WATCH)
		runner__watch_due(r, rt);
	else
		runner__task_start(r, rt, kind);
}

/* Not ours: the run handed out by the pump does not happen; the target waits. */
static void park(runner_t *r, rtarget_t *rt, enum rkind kind, uint64_t until)
{
	uint64_t now = now_ms(r);

	runner__run_over(r, rt);
	sched_defer(sched_of(r, rt), rt->spec.id, until > now ? until : now, now);
	if (kind == RK_WATCH && rt->watch && !rt->owner)
		runner__watch_close(rt->watch);
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
	if (status == 0) {
		/* another instance holds it now (or it is not due there yet) */
		rt->owner = 0;
		rt->lease_until = 0;
		park(r, rt, kind, now + PARK_MS);
	} else {
		if (status == 1) {
			if (!rt->owner)
				rt->held_since_ms = now;
			rt->owner = 1;
			rt->lease_until = now; /* asked again before the next run unless renewed */
			if (fence != rt->fence)
				rt->resync = 1; /* Redis may hold another's newer result */
			rt->fence = fence;
		} else {
			/* Redis is away: ours at the last answer, so we keep it (the others take it
			 * only once our lease has run out, with a fence that outranks our writes) */
			log_debug("run", "shared schedule unreachable (%s): %s was ours, scraping it",
			          strerror(-status), rt->spec.id);
		}
		start_run(r, rt, kind);
	}
	runner__rt_unref(rt);
	if (r->closing)
		runner__maybe_finish_close(r);
	else
		runner__pump(r);
}

void runner__claim(runner_t *r, rtarget_t *rt, enum rkind kind)
{
	uint64_t now = now_ms(r);
	claim_t *c;

	if (listing_of(r, rt)) {
		uint64_t f = fence_of(r, rt);
		if (!runner__holds(r, rt)) {
			park(r, rt, kind, now + PARK_MS);
			return;
		}
		if (f != rt->fence && rt->seq > 0)
			rt->resync = 1;
		rt->fence = f;
		if (kind == RK_WATCH) /* no done: the child is not on the shared schedule */
			runner__watch_due(r, rt);
		else
			runner__task_start(r, rt, kind);
		return;
	}
	if (!rt->owner) {
		park(r, rt, kind, now + PARK_MS);
		return;
	}
	if (now < rt->lease_until) {
		start_run(r, rt, kind); /* ours, and the lease has room for this run */
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c)
		abort();
	c->runner = r;
	c->rt = rt;
	c->kind = kind;
	rt->refs++;
	r->claiming[kind]++;
	r->cbs.claim(r->cbs.ud, rt->spec.id, rt->fence, on_claimed, c);
}

/* ---- what the shared schedule says ---- */

int runner_share_taken(runner_t *r, const char *id, uint64_t fence, uint32_t valid_ms)
{
	rtarget_t *rt = runner__find_target(r, id);
	uint64_t now = now_ms(r);

	if (!rt || rt->removed || r->stopping)
		return -ENOENT;
	if (!rt->owner)
		rt->held_since_ms = now;
	rt->owner = 1;
	rt->lease_until = now + valid_ms;
	/* the first write after a takeover is a resync against what Redis holds, even for a
	 * target this process never wrote: another instance's results are there */
	rt->resync = 1;
	rt->fence = fence;
	sched_set_due(sched_of(r, rt), id, now, now);
	runner__kick(r);
	return 0;
}

void runner_share_kept(runner_t *r, const char *id, uint64_t fence, uint32_t valid_ms)
{
	rtarget_t *rt = runner__find_target(r, id);

	if (!rt || rt->removed)
		return;
	rt->owner = 1;
	rt->lease_until = now_ms(r) + valid_ms;
	if (fence && fence != rt->fence) {
		rt->fence = fence; /* Redis lost it (restarted empty) and gave it a new fence */
		rt->resync = 1;
	}
}

void runner_share_lost(runner_t *r, const char *id)
{
	rtarget_t *rt = runner__find_target(r, id);

	if (!rt || rt->removed)
		return;
	rt->owner = 0;
	rt->lease_until = 0;
	/* its watched page closes now (its reads would be refused: the new holder has a
	 * greater fence); its next due run is parked */
	for (int i = 0; i < 2 && rt->watch && !rt->watch->closing; i++)
		runner__watch_close(rt->watch);
}

uint64_t runner_targets_gen(const runner_t *r)
{
	return r->targets_gen;
}
