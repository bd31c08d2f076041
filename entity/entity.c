/*
 * entity: the engine's bookkeeping (entity.h). The entities sorted by id; an index from
 * target id to the entities naming it (sorted, searched by bisection: a target no entity
 * names costs one search); what each entity knows of each of its sources; a min-heap of
 * the times at which an entity's result may change by time alone, so that a tick costs
 * O(due entities). The recomputation itself is entity_merge.c.
 */
#include "entity/entity_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void entity__oom(void)
{
	fprintf(stderr, "entity: out of memory\n");
	abort();
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		entity__oom();
	return p;
}

/* ---- the heap of due times ---- */

static void heap_swap(entity_engine_t *e, size_t a, size_t b)
{
	entity__ent_t *t = e->heap[a];

	e->heap[a] = e->heap[b];
	e->heap[b] = t;
	e->heap[a]->heap_at = a;
	e->heap[b]->heap_at = b;
}

static void heap_up(entity_engine_t *e, size_t i)
{
	while (i > 0 && e->heap[(i - 1) / 2]->due > e->heap[i]->due) {
		heap_swap(e, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void heap_down(entity_engine_t *e, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < e->nheap && e->heap[l]->due < e->heap[m]->due)
			m = l;
		if (r < e->nheap && e->heap[r]->due < e->heap[m]->due)
			m = r;
		if (m == i)
			return;
		heap_swap(e, i, m);
		i = m;
	}
}

static void heap_remove(entity_engine_t *e, entity__ent_t *x)
{
	size_t i = x->heap_at;

	if (i == SIZE_MAX)
		return;
	x->heap_at = SIZE_MAX;
	if (i != --e->nheap) {
		e->heap[i] = e->heap[e->nheap];
		e->heap[i]->heap_at = i;
		heap_up(e, i);
		heap_down(e, e->heap[i]->heap_at);
	}
}

/* Puts x at its place for x->due (out of the heap when nothing is due). */
static void heap_place(entity_engine_t *e, entity__ent_t *x)
{
	if (x->due == INT64_MAX) {
		heap_remove(e, x);
		return;
	}
	if (x->heap_at == SIZE_MAX) {
		if (e->nheap == e->capheap) {
			size_t cap = e->capheap ? 2 * e->capheap : 16;
			entity__ent_t **h = realloc(e->heap, cap * sizeof *h);
			if (!h)
				entity__oom();
			e->heap = h;
			e->capheap = cap;
		}
		x->heap_at = e->nheap;
		e->heap[e->nheap++] = x;
	}
	heap_up(e, x->heap_at);
	heap_down(e, x->heap_at);
}

static void recompute(entity_engine_t *e, entity__ent_t *x, int64_t now)
{
	entity__recompute(e, x, now);
	heap_place(e, x);
}

/* ---- entities ---- */

static void src_release(entity__src_t *s, size_t nfields)
{
	for (size_t f = 0; s->val && f < nfields; f++)
		json_decref(s->val[f]);
	free(s->val);
	free(s->changed);
	memset(s, 0, sizeof *s);
}

static void src_alloc(entity__src_t *s, size_t nfields)
{
	s->val = xcalloc(nfields, sizeof *s->val);
	s->changed = xcalloc(nfields, sizeof *s->changed);
}

static void ent_free(entity__ent_t *x)
{
	if (!x)
		return;
	for (size_t s = 0; x->src && s < x->spec.nsources; s++)
		src_release(&x->src[s], x->spec.nfields);
	free(x->src);
	free(x->conf_since);
	free(x->conf_done);
	json_decref(x->snap);
	free(x->source);
	entity_spec_release(&x->spec);
	free(x);
}

/* Allocates the per-source and per-field state of x for its spec. */
static void ent_alloc_state(entity__ent_t *x)
{
	x->src = xcalloc(x->spec.nsources, sizeof *x->src);
	for (size_t s = 0; s < x->spec.nsources; s++)
		src_alloc(&x->src[s], x->spec.nfields);
	x->conf_since = xcalloc(x->spec.nfields, sizeof *x->conf_since);
	x->conf_done = xcalloc(x->spec.nfields, 1);
}

static entity__ent_t *ent_new(entity_spec_t *spec, const char *source)
{
	entity__ent_t *x = xcalloc(1, sizeof *x);

	x->spec = *spec;
	memset(spec, 0, sizeof *spec);
	x->source = strdup(source);
	if (!x->source)
		entity__oom();
	x->due = INT64_MAX;
	x->heap_at = SIZE_MAX;
	ent_alloc_state(x);
	return x;
}

/* x takes the changed spec: what it knew of a source that stays is kept, field by field
 * for the fields read from the same source field ("from"); conflicts start over. seq and
 * the last snapshot stay (the next result is published against it). */
static void ent_respec(entity__ent_t *x, entity_spec_t *spec)
{
	entity_spec_t old = x->spec;
	entity__src_t *osrc = x->src;

	free(x->conf_since);
	free(x->conf_done);
	x->spec = *spec;
	memset(spec, 0, sizeof *spec);
	ent_alloc_state(x);
	for (size_t s = 0; s < x->spec.nsources; s++) {
		entity__src_t *n = &x->src[s], *o = NULL;
		for (size_t k = 0; k < old.nsources && !o; k++)
			if (strcmp(old.sources[k], x->spec.sources[s]) == 0)
				o = &osrc[k];
		if (!o)
			continue;
		n->have = o->have;
		n->verified = o->verified;
		for (size_t f = 0; f < x->spec.nfields; f++) {
			for (size_t g = 0; g < old.nfields; g++) {
				if (strcmp(old.fields[g].from, x->spec.fields[f].from) != 0)
					continue;
				n->val[f] = json_incref(o->val[g]);
				n->changed[f] = o->changed[g];
				break;
			}
		}
	}
	for (size_t k = 0; k < old.nsources; k++)
		src_release(&osrc[k], old.nfields);
	free(osrc);
	entity_spec_release(&old);
}

static int cmp_ent(const void *a, const void *b)
{
	return strcmp((*(entity__ent_t *const *)a)->spec.id, (*(entity__ent_t *const *)b)->spec.id);
}

static entity__ent_t *find_ent(const entity_engine_t *e, const char *id)
{
	size_t lo = 0, hi = e->nents;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(e->ents[mid]->spec.id, id);
		if (c == 0)
			return e->ents[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int cmp_ref(const void *a, const void *b)
{
	const entity__ref_t *x = a, *y = b;
	int c = strcmp(x->target, y->target);

	return c ? c : strcmp(x->ent->spec.id, y->ent->spec.id);
}

static void rebuild_refs(entity_engine_t *e)
{
	size_t n = 0;

	for (size_t i = 0; i < e->nents; i++)
		n += e->ents[i]->spec.nsources;
	free(e->refs);
	e->refs = xcalloc(n, sizeof *e->refs);
	e->nrefs = 0;
	for (size_t i = 0; i < e->nents; i++) {
		for (unsigned s = 0; s < e->ents[i]->spec.nsources; s++) {
			entity__ref_t *r = &e->refs[e->nrefs++];
			r->target = e->ents[i]->spec.sources[s];
			r->ent = e->ents[i];
			r->si = s;
		}
	}
	qsort(e->refs, e->nrefs, sizeof *e->refs, cmp_ref);
}

/* The first ref of target (the others follow it), or NULL. */
static const entity__ref_t *first_ref(const entity_engine_t *e, const char *target)
{
	size_t lo = 0, hi = e->nrefs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(e->refs[mid].target, target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < e->nrefs && strcmp(e->refs[lo].target, target) == 0 ? &e->refs[lo] : NULL;
}

/* ---- the API ---- */

entity_engine_t *entity_engine_new(const entity_callbacks_t *cbs)
{
	entity_engine_t *e = xcalloc(1, sizeof *e);

	e->cbs = *cbs;
	return e;
}

void entity_engine_free(entity_engine_t *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nents; i++)
		ent_free(e->ents[i]);
	free(e->ents);
	free(e->refs);
	free(e->heap);
	json_decref(e->gone);
	free(e);
}

/* x is dropped: its seq is kept, so that if the id comes back its results still pass the
 * ordering guard of what it published (Redis's P:entity-seq:E). */
static void remember_gone(entity_engine_t *e, const entity__ent_t *x)
{
	if (!x->seq)
		return;
	if (!e->gone && !(e->gone = json_object()))
		entity__oom();
	if (json_object_size(e->gone) >= ENTITY__GONE_MAX) /* the oldest (insertion order) */
		json_object_del(e->gone, json_object_iter_key(json_object_iter(e->gone)));
	if (json_object_set_new(e->gone, x->spec.id, json_integer((json_int_t)x->seq)) != 0)
		entity__oom();
}

/* A new entity's seq: where the id left off if it was dropped before, else 0. */
static uint64_t take_gone(entity_engine_t *e, const char *id)
{
	json_int_t seq = json_integer_value(json_object_get(e->gone, id));

	if (seq)
		json_object_del(e->gone, id);
	return (uint64_t)seq;
}

/* The entities of set, taken into the engine (new, unchanged or changed); the refused ones
 * stay in set. Marks every entity of source that stays. Returns the refused count. */
static size_t take_set(entity_engine_t *e, entity_set_t *set, const char *source,
                       entity__ent_t ***fresh, size_t *nfresh)
{
	size_t refused = 0;

	*fresh = xcalloc(set->n, sizeof **fresh);
	*nfresh = 0;
	for (size_t i = 0; i < set->n; i++) {
		entity_spec_t *spec = &set->v[i];
		entity__ent_t *x = find_ent(e, spec->id);
		/* ids are unique in a set (the parser and the hash's fields see to it) */
		if (!spec->json || (x && (strcmp(x->source, source) != 0 || x->mark == e->mark))) {
			refused += spec->json != NULL;
			continue;
		}
		if (!x) {
			x = ent_new(spec, source);
			x->seq = take_gone(e, x->spec.id);
			x->fill = 1;
			(*fresh)[(*nfresh)++] = x;
		} else if (json_equal(x->spec.json, spec->json)) {
			entity_spec_release(spec);
		} else {
			ent_respec(x, spec);
			x->fill = 1;
		}
		x->mark = e->mark;
	}
	return refused;
}

static void take_data(entity__ent_t *x, unsigned si, const json_t *data, int64_t scraped,
                      int64_t verified);

/* x (new or changed) takes its sources' last results, all before it is first computed. */
static void fill(entity_engine_t *e, entity__ent_t *x)
{
	x->fill = 0;
	for (size_t si = 0; e->cbs.last && si < x->spec.nsources; si++) {
		const json_t *data = NULL;
		int64_t changed = 0, verified = 0;
		if (e->cbs.last(e->cbs.ud, x->spec.sources[si], &data, &changed, &verified) == 1 &&
		    data)
			take_data(x, (unsigned)si, data, changed, verified);
	}
}

size_t entity_engine_reconcile(entity_engine_t *e, entity_set_t *set, const char *source,
                               int64_t now)
{
	entity__ent_t **fresh = NULL, **all;
	size_t nfresh = 0, n = 0, refused;

	if (!source)
		source = "";
	e->mark++;
	refused = take_set(e, set, source, &fresh, &nfresh);
	all = xcalloc(e->nents + nfresh, sizeof *all);
	for (size_t i = 0; i < e->nents; i++) {
		entity__ent_t *x = e->ents[i];
		if (strcmp(x->source, source) == 0 && x->mark != e->mark) {
			heap_remove(e, x);
			e->st.degraded -= (size_t)x->degraded;
			remember_gone(e, x);
			ent_free(x);
			continue;
		}
		all[n++] = x;
	}
	for (size_t i = 0; i < nfresh; i++)
		all[n++] = fresh[i];
	free(fresh);
	free(e->ents);
	e->ents = all;
	e->nents = n;
	e->st.entities = n;
	qsort(e->ents, e->nents, sizeof *e->ents, cmp_ent);
	rebuild_refs(e);
	for (size_t i = 0; i < e->nents; i++) {
		entity__ent_t *x = e->ents[i];
		if (x->mark != e->mark)
			continue;
		if (x->fill)
			fill(e, x);
		recompute(e, x, now);
	}
	return refused;
}

/* What x knows of source si from its new data. */
static void take_data(entity__ent_t *x, unsigned si, const json_t *data, int64_t scraped,
                      int64_t verified)
{
	entity__src_t *s = &x->src[si];

	for (size_t f = 0; f < x->spec.nfields; f++) {
		json_t *v = json_object_get(data, x->spec.fields[f].from);
		if (json_is_null(v))
			v = NULL;
		if (s->have && (v == s->val[f] || (v && s->val[f] && json_equal(v, s->val[f]))))
			continue;
		if (!s->have && !v && !s->val[f]) {
			s->changed[f] = 0;
			continue;
		}
		json_decref(s->val[f]);
		s->val[f] = NULL;
		if (v && !(s->val[f] = json_deep_copy(v)))
			entity__oom();
		s->changed[f] = scraped;
	}
	s->have = 1;
	if (verified > s->verified) /* a verified time never goes back (a replay is older) */
		s->verified = verified;
}

void entity_engine_source_data(entity_engine_t *e, const char *target, const json_t *data,
                               int64_t scraped_unix, int64_t verified_unix, int64_t now)
{
	const entity__ref_t *r = first_ref(e, target);

	for (; r && r < e->refs + e->nrefs && strcmp(r->target, target) == 0; r++) {
		take_data(r->ent, r->si, data, scraped_unix, verified_unix);
		recompute(e, r->ent, now);
	}
}

void entity_engine_source_verified(entity_engine_t *e, const char *target, int64_t verified_unix,
                                   int64_t now)
{
	const entity__ref_t *r = first_ref(e, target);

	for (; r && r < e->refs + e->nrefs && strcmp(r->target, target) == 0; r++) {
		r->ent->src[r->si].verified = verified_unix;
		recompute(e, r->ent, now);
	}
}

void entity_engine_source_gone(entity_engine_t *e, const char *target, int64_t now)
{
	const entity__ref_t *r = first_ref(e, target);

	for (; r && r < e->refs + e->nrefs && strcmp(r->target, target) == 0; r++) {
		entity__src_t *s = &r->ent->src[r->si];
		for (size_t f = 0; f < r->ent->spec.nfields; f++) {
			json_decref(s->val[f]);
			s->val[f] = NULL;
			s->changed[f] = 0;
		}
		s->have = 0;
		s->verified = 0;
		recompute(e, r->ent, now);
	}
}

void entity_engine_tick(entity_engine_t *e, int64_t now)
{
	while (e->nheap > 0 && e->heap[0]->due <= now)
		recompute(e, e->heap[0], now);
}

void entity_engine_get_stats(const entity_engine_t *e, entity_stats_t *out)
{
	*out = e->st;
}

void entity_engine_foreach(const entity_engine_t *e,
                           void (*fn)(void *ud, const char *id, const char *source,
                                      const json_t *snap),
                           void *ud)
{
	for (size_t i = 0; i < e->nents; i++)
		fn(ud, e->ents[i]->spec.id, e->ents[i]->source, e->ents[i]->snap);
}
