/*
 * verify.c: watched pages are verified. A watched page can stop updating while it stays
 * alive and answers (its socket dropped, its polling died): every read then succeeds and
 * returns old data. So a watched target whose data has not changed for
 * WATCH_VERIFY_UNCHANGED_SECONDS (default three intervals), and any watched target every
 * WATCH_VERIFY_SECONDS, is read once more in a fresh context (a navigate task of purpose
 * TP_VERIFY, task.c) and the two are compared:
 *   - same data: the watch is confirmed (verified age restarts, freezes forgotten);
 *   - different data, and the watched page did not change meanwhile: the page is read
 *     again at once (the source may just have changed since its last read); if it still
 *     shows what it showed, it is frozen.
 *     The fresh read is published at once (verified), the freeze counted and logged, and
 *     the watch escalates: the first freeze reloads the page, the second opens it in a new
 *     context, the third reads the target in navigate mode for WATCH_FROZEN_NAVIGATE_SECONDS;
 *     when many watched pages freeze within a minute the browser is recycled.
 * Verification reads are bounded: one per target at a time, at most a quarter of
 * CONCURRENCY_CAP (at least one) at once while navigate work waits for a lease (every free
 * slot while none does), and only in a free slot, so they never take a lease scheduled
 * work waits for. Due verifications wait in line: when a slot frees (runner__verify_pump,
 * from the pump), the page confirmed longest ago goes first.
 */
#include <stdlib.h>
#include <string.h>

#include "runner/runner_priv.h"
#include "util/log.h"

#define FREEZE_WINDOW_MS 60000 /* freezes this close together count as "at once" */
#define FREEZES_FOR_RECYCLE \
	5 /* pages frozen at once (and half the watched pages) that
                                  recycle the browser */

uint32_t runner__unchanged_ms(runner_t *r, const rtarget_t *rt)
{
	return r->o.verify_unchanged_ms ? r->o.verify_unchanged_ms : 3 * class_interval(r, rt);
}

/* Verification reads running at once: a quarter of CONCURRENCY_CAP (at least one) while
 * navigate work waits for a lease, every free slot while none does (a deployment of
 * watched pages leaves the pool idle: its slots then verify). */
unsigned runner__verify_cap(runner_t *r, unsigned capacity)
{
	sched_stats_t st;
	unsigned queued = 0;

	sched_get_stats(r->sched[RK_NAV], now_ms(r), &st);
	for (int c = 0; c < SCHED_NCLASSES; c++)
		queued += st.queued[c];
	if (!queued)
		return capacity;
	return capacity / 4 ? capacity / 4 : 1;
}

/* 1 if rt's watch is due for a verification now. */
static int verify_due(runner_t *r, const rtarget_t *rt, uint64_t now)
{
	uint32_t unchanged = runner__unchanged_ms(r, rt);
	uint64_t since = now - rt->confirmed_ms;

	if (!rt->confirmed_ms)
		return 0; /* the page's first read is a fresh load: it confirms itself */
	return since >= r->o.verify_max_ms ||
	       (now - rt->changed_ms >= unchanged && since >= unchanged);
}

/* 1 if rt may be verified now (a verification is due and nothing of its own is running). */
static int verifiable(runner_t *r, const rtarget_t *rt, uint64_t now)
{
	return rt->verify_wanted && !rt->verify && !rt->suspect && rt->watch && !rt->removed &&
	       verify_due(r, rt, now);
}

void runner__verify_pump(runner_t *r)
{
	uint64_t now = now_ms(r);
	pool_stats_t ps;

	if (!r->verify_wanted || r->stopping)
		return;
	pool_get_stats(r->pool, &ps);
	while (r->verifying + r->adapt_checking < runner__verify_cap(r, ps.capacity) &&
	       r->running[RK_NAV] + r->claiming[RK_NAV] < ps.capacity) {
		rtarget_t *best = NULL;
		/* the page confirmed longest ago first: every page gets its turn */
		for (rtarget_t *rt = r->targets; rt; rt = rt->next) {
			if (rt->verify_wanted && !verifiable(r, rt, now) && !rt->verify && !rt->suspect) {
				rt->verify_wanted = 0; /* no longer due, or its page is gone */
				r->verify_wanted--;
			} else if (verifiable(r, rt, now) &&
			           (!best || rt->confirmed_ms < best->confirmed_ms)) {
				best = rt;
			}
		}
		if (!best)
			return;
		best->verify_wanted = 0;
		r->verify_wanted--;
		log_debug("run",
		          "verifying the watched page of %s (unchanged %.1f s, confirmed %.1f s ago)",
		          best->spec.id, (double)(now - best->changed_ms) / 1000,
		          (double)(now - best->confirmed_ms) / 1000);
		runner__task_start_verify(r, best);
		pool_get_stats(r->pool, &ps);
	}
}

void runner__verify_maybe(runner_t *r, rtarget_t *rt)
{
	if (!r->o.verify_max_ms || rt->verify_wanted || rt->verify || rt->suspect || !rt->watch ||
	    r->stopping || rt->removed || !verify_due(r, rt, now_ms(r)))
		return;
	rt->verify_wanted = 1;
	r->verify_wanted++;
	runner__verify_pump(r);
}

static uint64_t hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Many watched pages freezing at once points at the browser: recycle it. */
static void note_freeze(runner_t *r, const rtarget_t *rt, uint64_t now)
{
	unsigned ring = sizeof r->freeze_ring / sizeof r->freeze_ring[0], pages = 0;

	r->freeze_ring[r->freeze_next % ring].at = now;
	r->freeze_ring[r->freeze_next++ % ring].who = hash_id(rt->spec.id);
	for (unsigned i = 0; i < ring; i++) {
		int seen = 0;
		if (!r->freeze_ring[i].at || now - r->freeze_ring[i].at >= FREEZE_WINDOW_MS)
			continue;
		for (unsigned j = 0; j < i && !seen; j++) /* count each page once */
			seen = r->freeze_ring[j].at &&
			       now - r->freeze_ring[j].at < FREEZE_WINDOW_MS &&
			       r->freeze_ring[j].who == r->freeze_ring[i].who;
		pages += !seen;
	}
	if (pages >= FREEZES_FOR_RECYCLE && pages * 2 >= r->watches) {
		log_warn("run", "%u watched pages froze within %u s: recycling the browser", pages,
		         FREEZE_WINDOW_MS / 1000);
		memset(r->freeze_ring, 0, sizeof r->freeze_ring);
		pool_request_recycle(r->pool, POOL_RECYCLE_REQUESTED);
	}
}

/* The watch of rt is frozen: reload, reopen in a new context, or read in navigate mode. */
static void escalate(runner_t *r, rtarget_t *rt, uint64_t now)
{
	watch_t *w = rt->watch;

	if (rt->freezes >= 3) {
		/* no frozen page serves it now: navigate reads are current (read_mode says why) */
		rt->frozen_ms = 0;
		rt->navigate_until = now + r->o.watch_navigate_ms;
		log_warn("run",
		         "watched page of %s froze %u times in a row: reading it in navigate "
		         "mode for %u s",
		         rt->spec.id, rt->freezes, r->o.watch_navigate_ms / 1000);
		if (w)
			runner__watch_close(w);
		return;
	}
	if (w)
		runner__watch_reload(w, rt->freezes >= 2);
}

/* The verification agreed with the watch: confirmed, a freeze long past forgotten. */
static void agreed(runner_t *r, rtarget_t *rt, uint64_t now)
{
	r->verify_total[0]++;
	rt->confirmed_ms = rt->verified_ms = r->last_verified_ms = now;
	rt->verified_unix = unix_ms();
	if (now - rt->last_freeze_ms >= r->o.verify_max_ms)
		rt->freezes = 0; /* current for a good while: a later freeze starts over */
	rt->frozen_ms = 0;
	runner__status_note(r, rt);
}

/* The watched page stayed behind a fresh read: publish the fresh read, escalate. */
static void frozen(runner_t *r, rtarget_t *rt, const json_t *suspect, uint64_t now)
{
	r->verify_total[1]++;
	r->frozen_total++;
	rt->freezes++;
	rt->last_freeze_ms = now;
	if (!rt->frozen_ms)
		rt->frozen_ms = now;
	log_warn("run",
	         "watched page of %s is frozen: a fresh read differs from its data, "
	         "unchanged for %.1f s (freeze %u); publishing the fresh read",
	         rt->spec.id, (double)(now - rt->changed_ms) / 1000, rt->freezes);
	runner__publish(r, rt, json_object_get(suspect, "raw"),
	                json_string_value(json_object_get(suspect, "url")),
	                (uint64_t)json_integer_value(json_object_get(suspect, "started")),
	                PUB_VERIFIED);
	note_freeze(r, rt, now);
	escalate(r, rt, now);
}

void runner__verify_done(runner_t *r, rtarget_t *rt, const json_t *raw, const char *why,
                         const char *url, uint64_t started)
{
	uint64_t now = now_ms(r);
	char err[512] = "";
	json_t *data;

	if (rt->removed || r->stopping)
		return;
	data = raw ? runner__normalise(rt, raw, err, sizeof err) : NULL;
	if (!data) {
		r->verify_total[2]++;
		log_info("run", "verifying the watched page of %s failed: %s", rt->spec.id,
		         raw ? (err[0] ? err : "the page's data did not validate") : why);
		return;
	}
	if (rt->last && json_equal(data, json_object_get(rt->last, "data"))) {
		json_decref(data);
		agreed(r, rt, now);
		return;
	}
	if (rt->changed_ms >= started || !rt->watch) {
		json_decref(data); /* the page changed while we read, or is gone: no verdict */
		return;
	}
	/* the source may have changed since the page's last read: read the page again, and
	 * call it frozen only if it still shows what it showed (runner__verify_recheck_done) */
	json_decref(rt->suspect);
	rt->suspect = json_pack("{s:O, s:o, s:s, s:I, s:I}", "raw", raw, "data", data, "url",
	                        url, "started", (json_int_t)started, "asked",
	                        (json_int_t)now);
	if (!rt->suspect)
		abort();
	runner__watch_reread(rt->watch);
}

void runner__verify_recheck_done(runner_t *r, rtarget_t *rt, int ok, uint64_t read_started)
{
	json_t *suspect = rt->suspect;
	uint64_t now = now_ms(r);
	uint64_t started;

	if (!suspect ||
	    read_started < (uint64_t)json_integer_value(json_object_get(suspect, "asked")))
		return; /* a read that began before the question: the next one answers */
	rt->suspect = NULL;
	started = (uint64_t)json_integer_value(json_object_get(suspect, "started"));
	if (!ok || rt->removed || r->stopping) {
		/* no verdict: the next verification asks again */
	} else if (rt->changed_ms >= started) {
		agreed(r, rt, now); /* the page caught up: alive, not frozen */
	} else {
		frozen(r, rt, suspect, now);
	}
	json_decref(suspect);
}

int runner__watch_navigates(runner_t *r, rtarget_t *rt)
{
	return (rt->overflow && !rt->watch) || now_ms(r) < rt->navigate_until;
}
