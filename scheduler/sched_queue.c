/*
 * sched_queue: the scheduler's containers (layout in sched.c): the target and host hash
 * tables, the per-host limits, the "waiting" min-heap and the per-class queues. No policy:
 * when a target moves from one to another, and what its due time is, sched.c decides.
 */
#include <stdlib.h>
#include <string.h>

#include "scheduler/sched_priv.h"
#include "util/list.h"

/* ---- small helpers ---- */

void *sched__xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		abort();
	return p;
}

char *sched__xstrndup(const char *s, size_t n)
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

int sched__valid_name(const char *s, int may_be_empty)
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
	shost_t **b = sched__xcalloc(nb, sizeof *b);
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
shost_t *sched__host_ref(sched_t *s, const char *name)
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
	shost_t *h = sched__xcalloc(1, sizeof *h);
	h->name = sched__xstrndup(name, SCHED_ID_MAX);
	h->refs = 1;
	h->hnext = s->hb[i];
	s->hb[i] = h;
	s->nhosts++;
	return h;
}

void sched__host_unref(sched_t *s, shost_t *h)
{
	if (!h || --h->refs > 0)
		return;
	LIST_UNLINK(&s->hb[hash_str(h->name) & (s->hnb - 1)], h, hnext);
	s->nhosts--;
	free(h->name);
	free(h);
}

/* 0 if the host has HOST_CONCURRENCY running or started one less than
 * HOST_MIN_INTERVAL_MS ago. */
int sched__host_may_start(const sched_t *s, const shost_t *h, uint64_t now_ms)
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

starget_t **sched__target_slot(const sched_t *s, const char *id)
{
	starget_t **pp = &s->tb[hash_str(id) & (s->tnb - 1)];
	while (*pp && strcmp((*pp)->id, id) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

starget_t *sched__target_find(const sched_t *s, const char *id)
{
	if (!sched__valid_name(id, 0))
		return NULL;
	return *sched__target_slot(s, id);
}

void sched__targets_grow(sched_t *s)
{
	size_t nb = s->tnb * 2;
	starget_t **b = sched__xcalloc(nb, sizeof *b);
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

void sched__heap_push(sched_t *s, starget_t *t)
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

void sched__heap_remove(sched_t *s, starget_t *t)
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
void sched__queue_insert(sched_t *s, starget_t *t)
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

void sched__queue_remove(sched_t *s, starget_t *t)
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
