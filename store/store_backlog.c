/*
 * store_backlog.c: the outage backlog. While Redis is down or the write window is full,
 * only the latest unwritten snapshot of each target (and entity) is kept: entries in a hash
 * by kind and id, and a FIFO send queue, least recently put first. At backlog_max entries
 * the head of the queue is dropped and counted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_priv.h"
#include "util/log.h"
#include "util/list.h"

/* ---- the backlog: hash of entries by id + a send queue ---- */

static uint64_t hash_id(enum store_kind kind, const char *id)
{
	uint64_t h = (1469598103934665603ull ^ (uint64_t)kind) * 1099511628211ull;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return h;
}

entry_t *store__find(store_t *s, enum store_kind kind, const char *id)
{
	entry_t *e;

	if (!s->nbuckets)
		return NULL;
	for (e = s->buckets[hash_id(kind, id) & (s->nbuckets - 1)]; e; e = e->hnext)
		if (e->kind == kind && !strcmp(e->id, id))
			return e;
	return NULL;
}

static void hash_insert(store_t *s, entry_t *e)
{
	size_t b;

	if (s->nentries + 1 > s->nbuckets) {
		size_t n = s->nbuckets ? s->nbuckets * 2 : 64;
		entry_t **nb = calloc(n, sizeof *nb);
		if (!nb) {
			log_error(COMP, "out of memory growing the backlog");
			abort();
		}
		for (size_t i = 0; i < s->nbuckets; i++) {
			entry_t *x = s->buckets[i], *next;
			for (; x; x = next) {
				next = x->hnext;
				b = hash_id(x->kind, x->id) & (n - 1);
				x->hnext = nb[b];
				nb[b] = x;
			}
		}
		free(s->buckets);
		s->buckets = nb;
		s->nbuckets = n;
	}
	b = hash_id(e->kind, e->id) & (s->nbuckets - 1);
	e->hnext = s->buckets[b];
	s->buckets[b] = e;
	s->nentries++;
}

static void hash_remove(store_t *s, entry_t *e)
{
	entry_t **pp = &s->buckets[hash_id(e->kind, e->id) & (s->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			s->nentries--;
			return;
		}
}

void store__q_push(store_t *s, entry_t *e)
{
	DLIST_PUSH_TAIL(&s->qhead, &s->qtail, e, qprev, qnext);
	e->queued = 1;
}

void store__q_unlink(store_t *s, entry_t *e)
{
	if (!e->queued)
		return;
	DLIST_UNLINK_TAIL(&s->qhead, &s->qtail, e, qprev, qnext);
	e->queued = 0;
}

void store__entry_free(store_t *s, entry_t *e)
{
	store__q_unlink(s, e);
	hash_remove(s, e);
	free(e->snap);
	free(e);
}

/* Keeps snap (stolen) as the latest unwritten snapshot of (kind, id) unless a newer one is
 * kept. */
void store__backlog_put(store_t *s, enum store_kind kind, const char *id, uint64_t seq,
                        uint64_t epoch, char *snap)
{
	entry_t *e = store__find(s, kind, id);

	if (e) {
		if (e->snap && e->seq >= seq) {
			free(snap); /* a failed older write coming back */
			return;
		}
		if (!e->snap && e->inflight && e->seq >= seq) {
			free(snap);
			return;
		}
		free(e->snap);
		e->snap = snap;
		e->seq = seq;
		e->epoch = epoch;
		/* least recently put at the head; an entry in flight is queued again by
		 * write_done() */
		store__q_unlink(s, e);
		if (!e->inflight)
			store__q_push(s, e);
		return;
	}
	if (s->nentries >= s->o.backlog_max) {
		entry_t *old = s->qhead; /* queued entries are never in flight */
		s->st.drops++;
		if (!old) {
			log_warn(
			        COMP,
			        "backlog full (%zu targets): dropped the result of %s%s seq %" PRIu64,
			        s->nentries, kind == K_ENTITY ? "entity " : "", id, seq);
			free(snap);
			return;
		}
		log_warn(
		        COMP,
		        "backlog full (%zu targets): dropped the unwritten result of %s%s seq %" PRIu64,
		        s->nentries, old->kind == K_ENTITY ? "entity " : "", old->id, old->seq);
		store__entry_free(s, old);
	}
	e = store__xmalloc(sizeof *e);
	memset(e, 0, sizeof *e);
	e->kind = kind;
	snprintf(e->id, sizeof e->id, "%s", id);
	e->seq = seq;
	e->epoch = epoch;
	e->snap = snap;
	hash_insert(s, e);
	store__q_push(s, e);
}
