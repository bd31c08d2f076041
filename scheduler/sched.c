/*
 * sched: the priority scheduler (contract in sched.h). Pure: no I/O, no timers.
 *
 * Layout: every target lives in a chained hash table by id and, depending on its state,
 * in exactly one of:
 *   - the "waiting" min-heap ordered by (due, class, seq): not yet due, or due but not
 *     yet promoted (promotion is lazy: every call that takes now_ms first moves the heap's
 *     due targets, earliest first, into the queues, applying MAX_QUEUE_DEPTH);
 *   - the queue of its class, a doubly linked list sorted by (due, seq): head is the next
 *     to start, tail the latest due (the victim of a drop);
 *   - nothing while running (the running count of the host it started on says so).
 * Hosts are refcounted entries in a second hash table (running count, last start).
 * Costs: add/remove/done O(log n); sched_next and sched_next_wakeup O(queued) at worst
 * (they skip targets of hosts at their limit), O(1) when the head may start.
 */
#include "scheduler/sched.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler/sched_env.h"
#include "scheduler/sched_priv.h"
#include "util/envnum.h"

#define SCHED_INITIAL_BUCKETS 64

/* ---- options ---- */

static const char *const interval_vars[SCHED_NCLASSES] = { "LIVE_INTERVAL_SECONDS",
	                                                   "IMMINENT_INTERVAL_SECONDS",
	                                                   "COMPLETED_INTERVAL_SECONDS" };

void sched_opts_init(sched_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->interval_ms[SCHED_LIVE] = 5000;
	o->interval_ms[SCHED_IMMINENT] = 60000;
	o->interval_ms[SCHED_COMPLETED] = 900000;
	o->max_queue_depth = 1000;
	o->retry_max_tries = 3;
	o->retry_base_ms = 1000;
	o->retry_cap_ms = 60000;
	o->fail_backoff_cap_ms = 300000;
	o->host_concurrency = 4;
	o->host_min_interval_ms = 0;
	o->seed = 0;
}

int sched__env_seconds(errlist_t *errs, const char *name, double lo_s, double hi_s,
                       uint32_t *out_ms)
{
	double d = 0;
	int rc = envnum_get(errs, name, lo_s, hi_s, 0, "seconds", &d);

	if (rc > 0)
		*out_ms = (uint32_t)llround(d * 1000.0);
	return rc < 0 ? rc : 0;
}

int sched__env_uint(errlist_t *errs, const char *name, uint64_t lo, uint64_t hi, const char *unit,
                    uint64_t *out)
{
	double d = 0;
	int rc = envnum_get(errs, name, (double)lo, (double)hi, ENVNUM_WHOLE, unit, &d);

	if (rc > 0)
		*out = (uint64_t)d;
	return rc < 0 ? rc : 0;
}

int sched_opts_from_env(sched_opts_t *o, errlist_t *errs)
{
	int rc = 0;
	uint64_t n;
	int base_ok;

	for (int c = 0; c < SCHED_NCLASSES; c++)
		if (sched__env_seconds(errs, interval_vars[c], 0.1, 86400, &o->interval_ms[c]))
			rc = -EINVAL;
	n = o->max_queue_depth;
	if (sched__env_uint(errs, "MAX_QUEUE_DEPTH", 1, 1000000, NULL, &n))
		rc = -EINVAL;
	o->max_queue_depth = (unsigned)n;
	n = o->retry_max_tries;
	if (sched__env_uint(errs, "RETRY_MAX_TRIES", 0, 100, NULL, &n))
		rc = -EINVAL;
	o->retry_max_tries = (unsigned)n;
	n = o->retry_base_ms;
	base_ok = sched__env_uint(errs, "RETRY_BASE_MS", 1, 3600000, "milliseconds", &n) == 0;
	if (!base_ok)
		rc = -EINVAL;
	o->retry_base_ms = (uint32_t)n;
	n = o->retry_cap_ms;
	if (sched__env_uint(errs, "RETRY_CAP_MS", 1, 86400000, "milliseconds", &n)) {
		rc = -EINVAL;
	} else if (base_ok && n < o->retry_base_ms) {
		const char *v = getenv("RETRY_CAP_MS");
		errlist_add(errs,
		            "RETRY_CAP_MS='%s': expected a whole number of milliseconds from "
		            "RETRY_BASE_MS (%u) to 86400000",
		            v ? v : "(unset)", (unsigned)o->retry_base_ms);
		rc = -EINVAL;
	} else {
		o->retry_cap_ms = (uint32_t)n;
	}
	if (sched__env_seconds(errs, "FAIL_BACKOFF_CAP_SECONDS", 0, 86400, &o->fail_backoff_cap_ms))
		rc = -EINVAL;
	n = o->host_concurrency;
	if (sched__env_uint(errs, "HOST_CONCURRENCY", 1, 1024, NULL, &n))
		rc = -EINVAL;
	o->host_concurrency = (unsigned)n;
	n = o->host_min_interval_ms;
	if (sched__env_uint(errs, "HOST_MIN_INTERVAL_MS", 0, 3600000, "milliseconds", &n))
		rc = -EINVAL;
	o->host_min_interval_ms = (uint32_t)n;
	return rc;
}

/* ---- small helpers ---- */

/* splitmix64: small, seedable, good enough for jitter. */
static uint64_t rng_next(sched_t *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, bound]. */
static uint64_t rng_uniform(sched_t *s, uint64_t bound)
{
	if (bound == UINT64_MAX)
		return rng_next(s);
	uint64_t range = bound + 1, limit = UINT64_MAX - UINT64_MAX % range, x;
	do
		x = rng_next(s);
	while (x >= limit);
	return x % range;
}

static uint32_t interval_of(const sched_t *s, const starget_t *t)
{
	return t->interval_override ? t->interval_override : s->o.interval_ms[t->klass];
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* min(cap, base * 2^(k-1)) without overflow. */
static uint64_t backoff_bound(const sched_t *s, unsigned k)
{
	uint64_t b = s->o.retry_base_ms, cap = s->o.retry_cap_ms;
	for (unsigned i = 1; i < k && b < cap; i++)
		b *= 2;
	return b < cap ? b : cap;
}

/* How long a failed run (retries spent) puts the target off: the interval for the first
 * one, then doubling up to the cap (never below the interval), minus up to a quarter of
 * it (jitter, so that targets that broke together do not stay in step). 0: just the
 * interval (fixed rate). */
static uint64_t failed_run_delay(sched_t *s, const starget_t *t)
{
	uint64_t iv = interval_of(s, t), d = iv, cap = s->o.fail_backoff_cap_ms;

	if (t->failed_runs < 2 || cap <= iv)
		return 0;
	for (unsigned i = 1; i < t->failed_runs && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	d -= rng_uniform(s, d / 4);
	return d > iv ? d : iv;
}

/* The failing and backing-off counts follow a target's failures and failed runs. */
static void set_failures(sched_t *s, starget_t *t, unsigned failures, unsigned failed_runs)
{
	s->failing -= t->failures > 0;
	s->backing_off -= t->failed_runs > 1;
	t->failures = failures;
	t->failed_runs = failed_runs;
	s->failing += t->failures > 0;
	s->backing_off += t->failed_runs > 1;
}

/* ---- states ---- */

static void set_waiting(sched_t *s, starget_t *t, uint64_t due_ms)
{
	t->due_ms = due_ms;
	t->seq = ++s->seq;
	t->state = T_WAITING;
	sched__heap_push(s, t);
}

/* Takes t out of the heap or its queue (not running targets). Returns the old state. */
static enum tstate detach(sched_t *s, starget_t *t)
{
	enum tstate st = t->state;
	if (st == T_WAITING)
		sched__heap_remove(s, t);
	else if (st == T_QUEUED)
		sched__queue_remove(s, t);
	return st;
}

/* A target that became due: queued, or dropped per MAX_QUEUE_DEPTH (see sched.h). */
static void enqueue_or_drop(sched_t *s, starget_t *t, uint64_t now_ms)
{
	if (s->queued_total >= s->o.max_queue_depth) {
		int lowest = SCHED_NCLASSES - 1;
		while (lowest > 0 && s->q[lowest].n == 0)
			lowest--;
		starget_t *victim = t;
		if ((int)t->klass < lowest && s->q[lowest].tail) {
			victim = s->q[lowest].tail;
			sched__queue_remove(s, victim);
		}
		s->drops[victim->klass]++;
		victim->retry_pending = 0;
		victim->backoff_pending = 0;
		set_waiting(s, victim, now_ms + interval_of(s, victim));
		if (victim == t)
			return;
	}
	sched__queue_insert(s, t);
}

/* Moves every waiting target due by now into the queues, earliest first. */
static void promote(sched_t *s, uint64_t now_ms)
{
	while (s->heap_len > 0 && s->heap[0]->due_ms <= now_ms) {
		starget_t *t = s->heap[0];
		sched__heap_remove(s, t);
		enqueue_or_drop(s, t, now_ms);
	}
}

/* Puts a detached, non-running target back after its class, interval or host changed.
 * follow: the due time follows the new interval (sched_set_class); else it may only move
 * forward (sched_update). Backoff retries and never-started targets keep their due time;
 * a queued target that is still due stays queued with its old due time. */
static void reattach(sched_t *s, starget_t *t, enum tstate old, int follow, uint64_t now_ms)
{
	uint64_t due = t->due_ms;

	if (t->started && !t->retry_pending && !t->backoff_pending) {
		uint64_t nd = max_u64(t->start_ms + interval_of(s, t), now_ms);
		if (follow && !(old == T_QUEUED && nd <= now_ms))
			due = nd;
		else if (!follow && nd < due)
			due = nd;
	}
	if (old == T_QUEUED && due <= now_ms) {
		t->due_ms = due;
		sched__queue_insert(s, t);
	} else {
		set_waiting(s, t, due);
	}
}

static void release_run(sched_t *s, starget_t *t)
{
	if (t->run_host) {
		t->run_host->running--;
		sched__host_unref(s, t->run_host);
		t->run_host = NULL;
	}
	s->running--;
}

/* ---- public API ---- */

sched_t *sched_new(const sched_opts_t *opts)
{
	sched_t *s = sched__xcalloc(1, sizeof *s);
	if (opts)
		s->o = *opts;
	else
		sched_opts_init(&s->o);
	if (s->o.max_queue_depth == 0)
		s->o.max_queue_depth = 1;
	if (s->o.host_concurrency == 0)
		s->o.host_concurrency = 1;
	if (s->o.retry_cap_ms < s->o.retry_base_ms)
		s->o.retry_cap_ms = s->o.retry_base_ms;
	for (int c = 0; c < SCHED_NCLASSES; c++)
		if (s->o.interval_ms[c] == 0)
			s->o.interval_ms[c] = 1;
	s->rng = s->o.seed;
	if (!s->rng) {
		struct timespec ts = { 0 };
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s->rng = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
		         (uint64_t)(uintptr_t)s;
	}
	s->tnb = s->hnb = SCHED_INITIAL_BUCKETS;
	s->tb = sched__xcalloc(s->tnb, sizeof *s->tb);
	s->hb = sched__xcalloc(s->hnb, sizeof *s->hb);
	return s;
}

void sched_free(sched_t *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->tnb; i++) {
		starget_t *t = s->tb[i], *next;
		for (; t; t = next) {
			next = t->hnext;
			free(t->id);
			free(t);
		}
	}
	for (size_t i = 0; i < s->hnb; i++) {
		shost_t *h = s->hb[i], *next;
		for (; h; h = next) {
			next = h->hnext;
			free(h->name);
			free(h);
		}
	}
	free(s->tb);
	free(s->hb);
	free(s->heap);
	free(s);
}

int sched_add(sched_t *s, const char *id, const char *host, enum sched_class klass,
              uint32_t interval_ms, void *ud, uint64_t now_ms)
{
	if (!sched__valid_name(id, 0) || !sched__valid_name(host, 1) ||
	    (unsigned)klass >= SCHED_NCLASSES)
		return -EINVAL;
	starget_t **slot = sched__target_slot(s, id);
	if (*slot)
		return -EEXIST;
	if (s->ntargets >= s->tnb) {
		sched__targets_grow(s);
		slot = sched__target_slot(s, id);
	}
	starget_t *t = sched__xcalloc(1, sizeof *t);
	t->id = sched__xstrndup(id, SCHED_ID_MAX);
	t->host = sched__host_ref(s, host);
	t->klass = klass;
	t->interval_override = interval_ms;
	t->ud = ud;
	*slot = t;
	s->ntargets++;
	s->per_class[klass]++;
	set_waiting(s, t, now_ms);
	return 0;
}

int sched_update(sched_t *s, const char *id, const char *host, enum sched_class klass,
                 uint32_t interval_ms, void *ud, uint64_t now_ms)
{
	if (!sched__valid_name(host, 1) || (unsigned)klass >= SCHED_NCLASSES)
		return -EINVAL;
	starget_t *t = sched__target_find(s, id);
	if (!t)
		return -ENOENT;
	enum tstate old = detach(s, t);
	const char *cur = t->host ? t->host->name : "";
	if (strcmp(cur, host ? host : "") != 0) {
		shost_t *h = sched__host_ref(s, host);
		sched__host_unref(s, t->host);
		t->host = h;
	}
	s->per_class[t->klass]--;
	s->per_class[klass]++;
	t->klass = klass;
	t->interval_override = interval_ms;
	t->ud = ud;
	if (old != T_RUNNING)
		reattach(s, t, old, 0, now_ms);
	return 0;
}

int sched_set_class(sched_t *s, const char *id, enum sched_class klass, uint64_t now_ms)
{
	if ((unsigned)klass >= SCHED_NCLASSES)
		return -EINVAL;
	starget_t *t = sched__target_find(s, id);
	if (!t)
		return -ENOENT;
	if (t->klass == klass)
		return 0;
	enum tstate old = detach(s, t);
	s->per_class[t->klass]--;
	s->per_class[klass]++;
	t->klass = klass;
	if (old != T_RUNNING)
		reattach(s, t, old, 1, now_ms);
	return 0;
}

int sched_remove(sched_t *s, const char *id)
{
	starget_t *t = sched__target_find(s, id);
	if (!t)
		return -ENOENT;
	if (t->state == T_RUNNING)
		release_run(s, t);
	else
		detach(s, t);
	set_failures(s, t, 0, 0);
	starget_t **slot = sched__target_slot(s, id);
	*slot = t->hnext;
	s->ntargets--;
	s->per_class[t->klass]--;
	sched__host_unref(s, t->host);
	free(t->id);
	free(t);
	return 0;
}

void *sched_next(sched_t *s, uint64_t now_ms, const char **id_out)
{
	return sched_next_ex(s, now_ms, 0, id_out, NULL);
}

/* 1 if a queued target is skipped by the flags. */
static int skipped(unsigned flags, const starget_t *t)
{
	return (flags & SCHED_NEXT_HEALTHY) && t->failures > 0;
}

void *sched_next_ex(sched_t *s, uint64_t now_ms, unsigned flags, const char **id_out,
                    int *failing_out)
{
	promote(s, now_ms);
	for (int c = 0; c < SCHED_NCLASSES; c++) {
		for (starget_t *t = s->q[c].head; t; t = t->qnext) {
			if (skipped(flags, t) || !sched__host_may_start(s, t->host, now_ms))
				continue;
			sched__queue_remove(s, t);
			t->state = T_RUNNING;
			t->prev_start_ms = t->start_ms;
			t->prev_started = t->started;
			t->prev_retry_pending = t->retry_pending;
			t->prev_backoff_pending = t->backoff_pending;
			t->start_ms = now_ms;
			t->started = 1;
			t->retry_pending = 0;
			t->backoff_pending = 0;
			if (t->host) {
				t->run_host = t->host;
				t->host->refs++;
				t->host->running++;
				t->host->started = 1;
				t->host->last_start_ms = now_ms;
			}
			s->running++;
			if (id_out)
				*id_out = t->id;
			if (failing_out)
				*failing_out = t->failures > 0;
			return t->ud;
		}
	}
	if (id_out)
		*id_out = NULL;
	return NULL;
}

uint64_t sched_next_wakeup(sched_t *s, uint64_t now_ms)
{
	return sched_next_wakeup_ex(s, now_ms, 0);
}

uint64_t sched_next_wakeup_ex(sched_t *s, uint64_t now_ms, unsigned flags)
{
	uint64_t best = UINT64_MAX;

	promote(s, now_ms);
	for (int c = 0; c < SCHED_NCLASSES; c++) {
		for (starget_t *t = s->q[c].head; t; t = t->qnext) {
			const shost_t *h = t->host;
			if (skipped(flags, t))
				continue;
			if (sched__host_may_start(s, h, now_ms))
				return now_ms;
			/* blocked by the min interval only: it expires by itself; blocked by
			 * concurrency: a sched_done() changes that, the caller asks again then */
			if (h->running < s->o.host_concurrency) {
				uint64_t at = h->last_start_ms + s->o.host_min_interval_ms;
				if (at < best)
					best = at;
			}
		}
	}
	if (s->heap_len > 0 && s->heap[0]->due_ms < best)
		best = s->heap[0]->due_ms;
	return best;
}

int sched_done(sched_t *s, const char *id, int ok, uint64_t now_ms)
{
	starget_t *t = sched__target_find(s, id);
	if (!t || t->state != T_RUNNING)
		return -ENOENT;
	release_run(s, t);
	if (ok) {
		set_failures(s, t, 0, 0);
		t->tries = 0;
		set_waiting(s, t, max_u64(t->start_ms + interval_of(s, t), now_ms));
		return 0;
	}
	if (t->tries < s->o.retry_max_tries) {
		set_failures(s, t, t->failures + 1, t->failed_runs);
		t->tries++;
		s->retries++;
		t->retry_pending = 1;
		set_waiting(s, t, now_ms + rng_uniform(s, backoff_bound(s, t->tries)));
		return 0;
	}
	set_failures(s, t, t->failures + 1, t->failed_runs + 1);
	uint64_t delay = failed_run_delay(s, t);
	if (delay) {
		s->backoffs++;
		t->backoff_pending = 1;
		set_waiting(s, t, now_ms + delay);
	} else {
		set_waiting(s, t, max_u64(t->start_ms + interval_of(s, t), now_ms));
	}
	return 0;
}

int sched_defer(sched_t *s, const char *id, uint64_t due_ms, uint64_t now_ms)
{
	starget_t *t = sched__target_find(s, id);
	if (!t || t->state != T_RUNNING)
		return -ENOENT;
	release_run(s, t);
	t->start_ms = t->prev_start_ms;
	t->started = t->prev_started;
	t->retry_pending = t->prev_retry_pending;
	t->backoff_pending = t->prev_backoff_pending;
	set_waiting(s, t, max_u64(due_ms, now_ms));
	return 0;
}

int sched_set_due(sched_t *s, const char *id, uint64_t due_ms, uint64_t now_ms)
{
	starget_t *t = sched__target_find(s, id);

	if (!t)
		return -ENOENT;
	if (t->state == T_RUNNING)
		return -EBUSY;
	due_ms = max_u64(due_ms, now_ms);
	if (t->state == T_QUEUED && due_ms <= now_ms)
		return 0; /* due already */
	detach(s, t);
	set_waiting(s, t, due_ms);
	return 0;
}

int sched_get_info(const sched_t *s, const char *id, sched_info_t *out)
{
	const starget_t *t = sched__target_find(s, id);
	if (!t)
		return -ENOENT;
	memset(out, 0, sizeof *out);
	out->klass = t->klass;
	out->interval_ms = interval_of(s, t);
	out->due_ms = t->due_ms;
	out->queued = t->state == T_QUEUED;
	out->running = t->state == T_RUNNING;
	out->failures = t->failures;
	out->tries = t->tries;
	out->failed_runs = t->failed_runs;
	out->backing_off = t->backoff_pending;
	out->ud = t->ud;
	return 0;
}

void sched_get_stats(sched_t *s, uint64_t now_ms, sched_stats_t *out)
{
	promote(s, now_ms);
	memset(out, 0, sizeof *out);
	for (int c = 0; c < SCHED_NCLASSES; c++) {
		out->targets[c] = s->per_class[c];
		out->queued[c] = s->q[c].n;
		out->drops[c] = s->drops[c];
	}
	out->running = s->running;
	out->retries = s->retries;
	out->backoffs = s->backoffs;
	out->failing = s->failing;
	out->backing_off = s->backing_off;
}

size_t sched_count(const sched_t *s)
{
	return s->ntargets;
}
