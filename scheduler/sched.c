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

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler/sched_env.h"

#define SCHED_ID_MAX 1024 /* bytes of an id or a host name, without the NUL */
#define SCHED_INITIAL_BUCKETS 64

enum tstate { T_WAITING, T_QUEUED, T_RUNNING };

typedef struct shost {
	struct shost *hnext;
	char *name;
	unsigned refs; /* targets naming it + running starts counted on it */
	unsigned running;
	int started; /* last_start_ms is valid */
	uint64_t last_start_ms;
} shost_t;

typedef struct starget {
	struct starget *hnext;
	char *id;
	shost_t *host;     /* NULL: no politeness limit */
	shost_t *run_host; /* the host the current run counts on (running only) */
	enum sched_class klass;
	uint32_t interval_override;
	void *ud;
	enum tstate state;
	uint64_t due_ms;
	uint64_t seq;      /* tie-break, renewed whenever the due time is set */
	uint64_t start_ms; /* last start */
	int started;       /* start_ms is valid */
	int retry_pending; /* due time is a backoff retry, not the interval */
	/* before the current run (sched_defer puts them back) */
	uint64_t prev_start_ms;
	int prev_started, prev_retry_pending;
	unsigned failures, tries;
	size_t hidx; /* heap index while waiting */
	struct starget *qprev, *qnext;
} starget_t;

typedef struct squeue {
	starget_t *head, *tail;
	unsigned n;
} squeue_t;

struct sched {
	sched_opts_t o;
	starget_t **tb; /* target buckets */
	size_t tnb, ntargets;
	shost_t **hb; /* host buckets */
	size_t hnb, nhosts;
	starget_t **heap;
	size_t heap_len, heap_cap;
	squeue_t q[SCHED_NCLASSES];
	unsigned queued_total, running;
	unsigned per_class[SCHED_NCLASSES];
	uint64_t drops[SCHED_NCLASSES];
	uint64_t retries;
	uint64_t seq;
	uint64_t rng;
};

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
	o->host_concurrency = 4;
	o->host_min_interval_ms = 0;
	o->seed = 0;
}

int sched__env_seconds(errlist_t *errs, const char *name, double lo_s, double hi_s,
                       uint32_t *out_ms)
{
	const char *v = getenv(name);
	const char *p;
	char *end = NULL;
	size_t digits = 0, dots = 0;
	double d;

	if (!v)
		return 0;
	for (p = v; *p; p++) {
		if (isdigit((unsigned char)*p))
			digits++;
		else if (*p == '.')
			dots++;
		else
			break;
	}
	if (*p || digits == 0 || dots > 1 || p - v > 32)
		goto bad;
	errno = 0;
	d = strtod(v, &end);
	if (errno || !end || *end || !isfinite(d) || d < lo_s || d > hi_s)
		goto bad;
	*out_ms = (uint32_t)llround(d * 1000.0);
	return 0;
bad:
	errlist_add(errs, "%s='%s': expected a number of seconds from %g to %g", name, v, lo_s,
	            hi_s);
	return -EINVAL;
}

int sched__env_uint(errlist_t *errs, const char *name, uint64_t lo, uint64_t hi, const char *unit,
                    uint64_t *out)
{
	const char *v = getenv(name);
	char *end = NULL;
	unsigned long long n;

	if (!v)
		return 0;
	if (!isdigit((unsigned char)*v))
		goto bad;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || !end || *end || n < lo || n > hi)
		goto bad;
	*out = (uint64_t)n;
	return 0;
bad:
	errlist_add(errs, "%s='%s': expected a whole number%s%s from %llu to %llu", name, v,
	            unit ? " of " : "", unit ? unit : "", (unsigned long long)lo,
	            (unsigned long long)hi);
	return -EINVAL;
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

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		abort();
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		abort();
	return p;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

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

static int valid_name(const char *s, int may_be_empty)
{
	if (!s)
		return may_be_empty;
	size_t n = strnlen(s, SCHED_ID_MAX + 1);
	return n <= SCHED_ID_MAX && (n > 0 || may_be_empty);
}

/* ---- hosts ---- */

static void hosts_grow(sched_t *s)
{
	size_t nb = s->hnb * 2;
	shost_t **b = xcalloc(nb, sizeof *b);
	for (size_t i = 0; i < s->hnb; i++) {
		shost_t *h = s->hb[i], *next;
		for (; h; h = next) {
			next = h->hnext;
			size_t j = hash_str(h->name) & (nb - 1);
			h->hnext = b[j];
			b[j] = h;
		}
	}
	free(s->hb);
	s->hb = b;
	s->hnb = nb;
}

/* A reference to the host named name, created if new; NULL for "" (no limit). */
static shost_t *host_ref(sched_t *s, const char *name)
{
	if (!name || !*name)
		return NULL;
	size_t i = hash_str(name) & (s->hnb - 1);
	for (shost_t *h = s->hb[i]; h; h = h->hnext)
		if (strcmp(h->name, name) == 0) {
			h->refs++;
			return h;
		}
	if (s->nhosts >= s->hnb) {
		hosts_grow(s);
		i = hash_str(name) & (s->hnb - 1);
	}
	shost_t *h = xcalloc(1, sizeof *h);
	h->name = xstrndup(name, SCHED_ID_MAX);
	h->refs = 1;
	h->hnext = s->hb[i];
	s->hb[i] = h;
	s->nhosts++;
	return h;
}

static void host_unref(sched_t *s, shost_t *h)
{
	if (!h || --h->refs > 0)
		return;
	shost_t **pp = &s->hb[hash_str(h->name) & (s->hnb - 1)];
	while (*pp != h)
		pp = &(*pp)->hnext;
	*pp = h->hnext;
	s->nhosts--;
	free(h->name);
	free(h);
}

/* 0 if the host has HOST_CONCURRENCY running or started one less than
 * HOST_MIN_INTERVAL_MS ago. */
static int host_may_start(const sched_t *s, const shost_t *h, uint64_t now_ms)
{
	if (!h)
		return 1;
	if (h->running >= s->o.host_concurrency)
		return 0;
	if (s->o.host_min_interval_ms && h->started &&
	    now_ms < h->last_start_ms + s->o.host_min_interval_ms)
		return 0;
	return 1;
}

/* ---- targets by id ---- */

static starget_t **target_slot(const sched_t *s, const char *id)
{
	starget_t **pp = &s->tb[hash_str(id) & (s->tnb - 1)];
	while (*pp && strcmp((*pp)->id, id) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static starget_t *target_find(const sched_t *s, const char *id)
{
	if (!valid_name(id, 0))
		return NULL;
	return *target_slot(s, id);
}

static void targets_grow(sched_t *s)
{
	size_t nb = s->tnb * 2;
	starget_t **b = xcalloc(nb, sizeof *b);
	for (size_t i = 0; i < s->tnb; i++) {
		starget_t *t = s->tb[i], *next;
		for (; t; t = next) {
			next = t->hnext;
			size_t j = hash_str(t->id) & (nb - 1);
			t->hnext = b[j];
			b[j] = t;
		}
	}
	free(s->tb);
	s->tb = b;
	s->tnb = nb;
}

/* ---- the waiting heap ---- */

static int heap_less(const starget_t *a, const starget_t *b)
{
	if (a->due_ms != b->due_ms)
		return a->due_ms < b->due_ms;
	if (a->klass != b->klass)
		return a->klass < b->klass;
	return a->seq < b->seq;
}

static void heap_set(sched_t *s, size_t i, starget_t *t)
{
	s->heap[i] = t;
	t->hidx = i;
}

static void heap_up(sched_t *s, size_t i)
{
	starget_t *t = s->heap[i];
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!heap_less(t, s->heap[p]))
			break;
		heap_set(s, i, s->heap[p]);
		i = p;
	}
	heap_set(s, i, t);
}

static void heap_down(sched_t *s, size_t i)
{
	starget_t *t = s->heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m;
		if (l >= s->heap_len)
			break;
		m = (r < s->heap_len && heap_less(s->heap[r], s->heap[l])) ? r : l;
		if (!heap_less(s->heap[m], t))
			break;
		heap_set(s, i, s->heap[m]);
		i = m;
	}
	heap_set(s, i, t);
}

static void heap_push(sched_t *s, starget_t *t)
{
	if (s->heap_len == s->heap_cap) {
		size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
		starget_t **h = realloc(s->heap, cap * sizeof *h);
		if (!h)
			abort();
		s->heap = h;
		s->heap_cap = cap;
	}
	heap_set(s, s->heap_len++, t);
	heap_up(s, t->hidx);
}

static void heap_remove(sched_t *s, starget_t *t)
{
	size_t i = t->hidx;
	starget_t *last = s->heap[--s->heap_len];
	if (i == s->heap_len)
		return;
	heap_set(s, i, last);
	heap_up(s, i);
	heap_down(s, last->hidx);
}

/* ---- queues ---- */

static int queue_before(const starget_t *a, const starget_t *b)
{
	return a->due_ms != b->due_ms ? a->due_ms < b->due_ms : a->seq < b->seq;
}

/* Sorted insertion from the tail: O(1) in the usual case, as targets become due in order. */
static void queue_insert(sched_t *s, starget_t *t)
{
	squeue_t *q = &s->q[t->klass];
	starget_t *after = q->tail;
	while (after && queue_before(t, after))
		after = after->qprev;
	t->qprev = after;
	t->qnext = after ? after->qnext : q->head;
	if (t->qnext)
		t->qnext->qprev = t;
	else
		q->tail = t;
	if (after)
		after->qnext = t;
	else
		q->head = t;
	q->n++;
	s->queued_total++;
	t->state = T_QUEUED;
}

static void queue_remove(sched_t *s, starget_t *t)
{
	squeue_t *q = &s->q[t->klass];
	if (t->qprev)
		t->qprev->qnext = t->qnext;
	else
		q->head = t->qnext;
	if (t->qnext)
		t->qnext->qprev = t->qprev;
	else
		q->tail = t->qprev;
	t->qprev = t->qnext = NULL;
	q->n--;
	s->queued_total--;
}

/* ---- states ---- */

static void set_waiting(sched_t *s, starget_t *t, uint64_t due_ms)
{
	t->due_ms = due_ms;
	t->seq = ++s->seq;
	t->state = T_WAITING;
	heap_push(s, t);
}

/* Takes t out of the heap or its queue (not running targets). Returns the old state. */
static enum tstate detach(sched_t *s, starget_t *t)
{
	enum tstate st = t->state;
	if (st == T_WAITING)
		heap_remove(s, t);
	else if (st == T_QUEUED)
		queue_remove(s, t);
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
			queue_remove(s, victim);
		}
		s->drops[victim->klass]++;
		victim->retry_pending = 0;
		set_waiting(s, victim, now_ms + interval_of(s, victim));
		if (victim == t)
			return;
	}
	queue_insert(s, t);
}

/* Moves every waiting target due by now into the queues, earliest first. */
static void promote(sched_t *s, uint64_t now_ms)
{
	while (s->heap_len > 0 && s->heap[0]->due_ms <= now_ms) {
		starget_t *t = s->heap[0];
		heap_remove(s, t);
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

	if (t->started && !t->retry_pending) {
		uint64_t nd = max_u64(t->start_ms + interval_of(s, t), now_ms);
		if (follow && !(old == T_QUEUED && nd <= now_ms))
			due = nd;
		else if (!follow && nd < due)
			due = nd;
	}
	if (old == T_QUEUED && due <= now_ms) {
		t->due_ms = due;
		queue_insert(s, t);
	} else {
		set_waiting(s, t, due);
	}
}

static void release_run(sched_t *s, starget_t *t)
{
	if (t->run_host) {
		t->run_host->running--;
		host_unref(s, t->run_host);
		t->run_host = NULL;
	}
	s->running--;
}

/* ---- public API ---- */

sched_t *sched_new(const sched_opts_t *opts)
{
	sched_t *s = xcalloc(1, sizeof *s);
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
	s->tb = xcalloc(s->tnb, sizeof *s->tb);
	s->hb = xcalloc(s->hnb, sizeof *s->hb);
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
	if (!valid_name(id, 0) || !valid_name(host, 1) || (unsigned)klass >= SCHED_NCLASSES)
		return -EINVAL;
	starget_t **slot = target_slot(s, id);
	if (*slot)
		return -EEXIST;
	if (s->ntargets >= s->tnb) {
		targets_grow(s);
		slot = target_slot(s, id);
	}
	starget_t *t = xcalloc(1, sizeof *t);
	t->id = xstrndup(id, SCHED_ID_MAX);
	t->host = host_ref(s, host);
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
	if (!valid_name(host, 1) || (unsigned)klass >= SCHED_NCLASSES)
		return -EINVAL;
	starget_t *t = target_find(s, id);
	if (!t)
		return -ENOENT;
	enum tstate old = detach(s, t);
	const char *cur = t->host ? t->host->name : "";
	if (strcmp(cur, host ? host : "") != 0) {
		shost_t *h = host_ref(s, host);
		host_unref(s, t->host);
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
	starget_t *t = target_find(s, id);
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
	starget_t *t = target_find(s, id);
	if (!t)
		return -ENOENT;
	if (t->state == T_RUNNING)
		release_run(s, t);
	else
		detach(s, t);
	starget_t **slot = target_slot(s, id);
	*slot = t->hnext;
	s->ntargets--;
	s->per_class[t->klass]--;
	host_unref(s, t->host);
	free(t->id);
	free(t);
	return 0;
}

void *sched_next(sched_t *s, uint64_t now_ms, const char **id_out)
{
	promote(s, now_ms);
	for (int c = 0; c < SCHED_NCLASSES; c++) {
		for (starget_t *t = s->q[c].head; t; t = t->qnext) {
			if (!host_may_start(s, t->host, now_ms))
				continue;
			queue_remove(s, t);
			t->state = T_RUNNING;
			t->prev_start_ms = t->start_ms;
			t->prev_started = t->started;
			t->prev_retry_pending = t->retry_pending;
			t->start_ms = now_ms;
			t->started = 1;
			t->retry_pending = 0;
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
			return t->ud;
		}
	}
	if (id_out)
		*id_out = NULL;
	return NULL;
}

uint64_t sched_next_wakeup(sched_t *s, uint64_t now_ms)
{
	uint64_t best = UINT64_MAX;

	promote(s, now_ms);
	for (int c = 0; c < SCHED_NCLASSES; c++) {
		for (starget_t *t = s->q[c].head; t; t = t->qnext) {
			const shost_t *h = t->host;
			if (host_may_start(s, h, now_ms))
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
	starget_t *t = target_find(s, id);
	if (!t || t->state != T_RUNNING)
		return -ENOENT;
	release_run(s, t);
	if (ok) {
		t->failures = 0;
		t->tries = 0;
		set_waiting(s, t, max_u64(t->start_ms + interval_of(s, t), now_ms));
		return 0;
	}
	t->failures++;
	if (t->tries < s->o.retry_max_tries) {
		t->tries++;
		s->retries++;
		t->retry_pending = 1;
		set_waiting(s, t, now_ms + rng_uniform(s, backoff_bound(s, t->tries)));
	} else {
		set_waiting(s, t, max_u64(t->start_ms + interval_of(s, t), now_ms));
	}
	return 0;
}

int sched_defer(sched_t *s, const char *id, uint64_t due_ms, uint64_t now_ms)
{
	starget_t *t = target_find(s, id);
	if (!t || t->state != T_RUNNING)
		return -ENOENT;
	release_run(s, t);
	t->start_ms = t->prev_start_ms;
	t->started = t->prev_started;
	t->retry_pending = t->prev_retry_pending;
	set_waiting(s, t, max_u64(due_ms, now_ms));
	return 0;
}

int sched_get_info(const sched_t *s, const char *id, sched_info_t *out)
{
	const starget_t *t = target_find(s, id);
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
}

size_t sched_count(const sched_t *s)
{
	return s->ntargets;
}
