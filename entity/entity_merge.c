/*
 * entity_merge: the recomputation of one entity, a pure function of what the engine knows
 * of its sources and the time: the winner of each field by its rule, the merged data, the
 * provenance and the degraded list; then, against the last snapshot, whether to publish
 * (and the delta), the conflicts, and the next time the result may change by time alone.
 */
#include "entity/entity_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/snapshot.h"

typedef struct pick {
	int src; /* index into the sources, -1 none */
	int degraded;
} pick_t;

static json_t *chk(json_t *v)
{
	if (!v)
		entity__oom();
	return v;
}

static void set_new(json_t *obj, const char *key, json_t *v)
{
	if (json_object_set_new(obj, key, chk(v)) != 0)
		entity__oom();
}

static void append_new(json_t *arr, json_t *v)
{
	if (json_array_append_new(arr, chk(v)) != 0)
		entity__oom();
}

static json_t *time_json(int64_t ms)
{
	char t[32];

	if (ms == 0)
		return json_null();
	snapshot_format_time(ms, t);
	return json_string(t);
}

/* The source has the field and its verified age is at most max_age. */
static int qualifies(const entity__ent_t *x, unsigned s, size_t f, int64_t now)
{
	const entity__src_t *src = &x->src[s];

	return src->have && src->val[f] && src->verified != 0 &&
	       now - src->verified <= (int64_t)x->spec.max_age_ms;
}

/* Among the candidates holding the field, the most recently verified (ties: list order). */
static int freshest(const entity__ent_t *x, const unsigned *cand, size_t n, size_t f)
{
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		const entity__src_t *src = &x->src[cand[i]];
		if (!src->have || !src->val[f])
			continue;
		if (best < 0 || src->verified > x->src[best].verified)
			best = (int)cand[i];
	}
	return best;
}

static pick_t pick_prefer(const entity__ent_t *x, size_t f, int64_t now)
{
	const entity_field_t *fl = &x->spec.fields[f];
	pick_t p = { -1, 1 };

	for (size_t i = 0; i < fl->nprefer; i++) {
		if (qualifies(x, fl->prefer[i], f, now)) {
			p.src = (int)fl->prefer[i];
			p.degraded = 0;
			return p;
		}
	}
	p.src = freshest(x, fl->prefer, fl->nprefer, f);
	return p;
}

static pick_t pick_newest(const entity__ent_t *x, const unsigned *all, size_t f, int64_t now)
{
	pick_t p = { -1, 1 };

	for (unsigned s = 0; s < x->spec.nsources; s++) {
		if (!qualifies(x, s, f, now))
			continue;
		if (p.src < 0 || x->src[s].changed[f] > x->src[p.src].changed[f])
			p.src = (int)s;
	}
	if (p.src >= 0) {
		p.degraded = 0;
		return p;
	}
	p.src = freshest(x, all, x->spec.nsources, f);
	return p;
}

/* Every field's winner: prefer and newest first, then "with" fields from their chain's
 * root (the parser refused cycles). */
static void pick_all(const entity__ent_t *x, int64_t now, pick_t *picks)
{
	unsigned all[ENTITY_SOURCES_MAX];

	for (unsigned s = 0; s < x->spec.nsources; s++)
		all[s] = s;
	for (size_t f = 0; f < x->spec.nfields; f++) {
		if (x->spec.fields[f].rule == ENTITY_PREFER)
			picks[f] = pick_prefer(x, f, now);
		else if (x->spec.fields[f].rule == ENTITY_NEWEST)
			picks[f] = pick_newest(x, all, f, now);
	}
	for (size_t f = 0; f < x->spec.nfields; f++) {
		size_t root = f, steps = 0;
		int w;
		if (x->spec.fields[f].rule != ENTITY_WITH)
			continue;
		while (x->spec.fields[root].rule == ENTITY_WITH && steps++ <= x->spec.nfields)
			root = x->spec.fields[root].with;
		w = x->spec.fields[root].rule == ENTITY_WITH ? -1 : picks[root].src;
		picks[f].src = w >= 0 && x->src[w].have && x->src[w].val[f] ? w : -1;
		picks[f].degraded = picks[f].src < 0 || !qualifies(x, (unsigned)w, f, now);
	}
}

/* A snapshot of x at now from the picks, with seq. */
static json_t *build_snap(const entity__ent_t *x, const pick_t *picks, uint64_t seq, int64_t now)
{
	json_t *snap, *data, *prov, *deg;

	snap = chk(json_object());
	data = chk(json_object());
	prov = chk(json_object());
	deg = chk(json_array());
	for (size_t f = 0; f < x->spec.nfields; f++) {
		const char *name = x->spec.fields[f].name;
		int s = picks[f].src;
		if (s >= 0) {
			json_t *p = chk(json_object());
			set_new(data, name, json_incref(x->src[s].val[f]));
			set_new(p, "source", json_string(x->spec.sources[s]));
			set_new(p, "verified_at", time_json(x->src[s].verified));
			set_new(p, "changed_at", time_json(x->src[s].changed[f]));
			set_new(prov, name, p);
		}
		if (picks[f].degraded)
			append_new(deg, json_string(name));
	}
	set_new(snap, "entity", json_string(x->spec.id));
	set_new(snap, "class", json_string(sched_class_name(x->spec.klass)));
	set_new(snap, "seq", json_integer((json_int_t)seq));
	set_new(snap, "updated_at", time_json(now));
	set_new(snap, "data", data);
	set_new(snap, "provenance", prov);
	set_new(snap, "degraded", deg);
	return snap;
}

static const char *winner_of(const json_t *snap, const char *field)
{
	return json_string_value(json_object_get(
	        json_object_get(json_object_get(snap, "provenance"), field), "source"));
}

static void add_winner(json_t *winners, const char *field, const char *from, const char *to)
{
	json_t *w = chk(json_object());

	set_new(w, "from", from ? json_string(from) : json_null());
	set_new(w, "to", to ? json_string(to) : json_null());
	set_new(winners, field, w);
}

/* The winner changes from prev to next (prev NULL: every winner is new), by field name so
 * that a changed spec compares with the last snapshot of the old one. */
static json_t *winner_changes(const json_t *prev, const json_t *next)
{
	json_t *winners = chk(json_object()), *v;
	const char *field;

	json_object_foreach(json_object_get(next, "provenance"), field, v)
	{
		const char *from = prev ? winner_of(prev, field) : NULL;
		const char *to = winner_of(next, field);
		if (!from || strcmp(from, to) != 0)
			add_winner(winners, field, from, to);
	}
	json_object_foreach(json_object_get(prev, "provenance"), field, v)
	{
		if (!winner_of(next, field))
			add_winner(winners, field, winner_of(prev, field), NULL);
	}
	return winners;
}

static json_t *build_delta(const json_t *prev, const json_t *next, json_t *winners)
{
	json_t *d = chk(json_object()), *empty = chk(json_object());
	json_t *added = chk(json_array()), *changed = chk(json_array());
	json_t *removed = chk(json_array());
	const json_t *from = prev ? json_object_get(prev, "data") : empty;

	if (snapshot_diff(from, json_object_get(next, "data"), added, changed, removed) != 0)
		entity__oom();
	json_decref(empty);
	set_new(d, "entity", json_incref(json_object_get(next, "entity")));
	set_new(d, "seq", json_incref(json_object_get(next, "seq")));
	set_new(d, "prev_seq",
	        json_integer(prev ? json_integer_value(json_object_get(prev, "seq")) : 0));
	set_new(d, "updated_at", json_incref(json_object_get(next, "updated_at")));
	set_new(d, "added", added);
	set_new(d, "changed", changed);
	set_new(d, "removed", removed);
	set_new(d, "winners", json_incref(winners));
	set_new(d, "degraded", json_incref(json_object_get(next, "degraded")));
	return d;
}

static int same_key(const json_t *a, const json_t *b, const char *key)
{
	return json_equal(json_object_get(a, key), json_object_get(b, key));
}

/* An event for each field with a prefer list whose winner changed (the preferred source
 * went stale or failed, or came back; not a first value from the preferred source): {"event": "winner", "entity", "field", "from",
 * "to" (null: none), "preferred": to is the list's first, "degraded": the field is}. */
static void winner_events(entity_engine_t *e, const entity__ent_t *x, const json_t *winners,
                          const json_t *next)
{
	const json_t *deg = json_object_get(next, "degraded");

	for (size_t f = 0; e->cbs.event && f < x->spec.nfields; f++) {
		const entity_field_t *fl = &x->spec.fields[f];
		const json_t *w = json_object_get(winners, fl->name);
		const char *to;
		json_t *ev, *d;
		size_t i;
		int degraded = 0;

		if (fl->rule != ENTITY_PREFER || !w)
			continue;
		to = json_string_value(json_object_get(w, "to"));
		/* a field's first value from its preferred source is no news */
		if (json_is_null(json_object_get(w, "from")) && to &&
		    strcmp(to, x->spec.sources[fl->prefer[0]]) == 0)
			continue;
		json_array_foreach(deg, i, d) degraded |=
		        json_is_string(d) && strcmp(json_string_value(d), fl->name) == 0;
		ev = chk(json_object());
		set_new(ev, "event", json_string("winner"));
		set_new(ev, "entity", json_string(x->spec.id));
		set_new(ev, "field", json_string(fl->name));
		set_new(ev, "from", json_incref(json_object_get(w, "from")));
		set_new(ev, "to", json_incref(json_object_get(w, "to")));
		set_new(ev, "preferred",
		        json_boolean(to && strcmp(to, x->spec.sources[fl->prefer[0]]) == 0));
		set_new(ev, "degraded", json_boolean(degraded));
		e->cbs.event(e->cbs.ud, ev);
		json_decref(ev);
	}
}

/* Publishes next against x->snap when they differ (next is stolen either way). */
static void publish(entity_engine_t *e, entity__ent_t *x, json_t *next)
{
	json_t *prev = x->snap, *winners, *delta = NULL;
	int data_same, deg_same;

	if (prev && same_key(prev, next, "class") && same_key(prev, next, "data") &&
	    same_key(prev, next, "provenance") && same_key(prev, next, "degraded")) {
		json_decref(next);
		return;
	}
	winners = winner_changes(prev, next);
	data_same = prev && same_key(prev, next, "data");
	deg_same = prev && same_key(prev, next, "degraded");
	if (!data_same || !deg_same || json_object_size(winners) > 0)
		delta = build_delta(prev, next, winners);
	if (prev)
		e->st.winner_changes[x->spec.klass] += json_object_size(winners);
	x->seq++;
	x->snap = next;
	e->st.degraded -= (size_t)x->degraded;
	x->degraded = json_array_size(json_object_get(next, "degraded")) > 0;
	e->st.degraded += (size_t)x->degraded;
	e->st.snapshots_total++;
	e->st.deltas_total += delta != NULL;
	e->cbs.publish(e->cbs.ud, next, delta);
	if (prev)
		winner_events(e, x, winners, next);
	json_decref(delta);
	json_decref(winners);
	json_decref(prev);
}

/* The qualifying candidates of field f disagree (two values not json_equal). */
static int disagree(const entity__ent_t *x, size_t f, int64_t now, json_t *values)
{
	const entity_field_t *fl = &x->spec.fields[f];
	size_t n = fl->rule == ENTITY_PREFER ? fl->nprefer : x->spec.nsources;
	const json_t *first = NULL;
	int differ = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned s = fl->rule == ENTITY_PREFER ? fl->prefer[i] : (unsigned)i;
		if (!qualifies(x, s, f, now))
			continue;
		if (values) {
			json_t *o = chk(json_object());
			set_new(o, "source", json_string(x->spec.sources[s]));
			set_new(o, "value", json_incref(x->src[s].val[f]));
			append_new(values, o);
		}
		if (!first)
			first = x->src[s].val[f];
		else if (!json_equal(first, x->src[s].val[f]))
			differ = 1;
	}
	return differ;
}

static void conflict_event(entity_engine_t *e, const entity__ent_t *x, size_t f, int64_t now)
{
	json_t *ev = chk(json_object()), *values = chk(json_array());

	disagree(x, f, now, values);
	set_new(ev, "event", json_string("conflict"));
	set_new(ev, "entity", json_string(x->spec.id));
	set_new(ev, "field", json_string(x->spec.fields[f].name));
	set_new(ev, "since", time_json(x->conf_since[f]));
	set_new(ev, "values", values);
	e->st.conflicts_total++;
	if (e->cbs.event)
		e->cbs.event(e->cbs.ud, ev);
	json_decref(ev);
}

/* Conflict episodes of every field at now. */
static void conflicts(entity_engine_t *e, entity__ent_t *x, int64_t now)
{
	for (size_t f = 0; f < x->spec.nfields; f++) {
		if (!disagree(x, f, now, NULL)) {
			x->conf_since[f] = 0;
			x->conf_done[f] = 0;
			continue;
		}
		if (x->conf_since[f] == 0)
			x->conf_since[f] = now;
		if (!x->conf_done[f] && now - x->conf_since[f] >= (int64_t)x->spec.conflict_ms) {
			x->conf_done[f] = 1;
			conflict_event(e, x, f, now);
		}
	}
}

/* The next time the result may change by time alone: a fresh source turning stale, a
 * disagreement reaching conflict_seconds. */
static int64_t next_due(const entity__ent_t *x, int64_t now)
{
	int64_t due = INT64_MAX;

	for (unsigned s = 0; s < x->spec.nsources; s++) {
		const entity__src_t *src = &x->src[s];
		int64_t stale = src->verified + (int64_t)x->spec.max_age_ms + 1;
		if (!src->have || src->verified == 0 || stale <= now)
			continue;
		for (size_t f = 0; f < x->spec.nfields; f++) {
			if (src->val[f]) {
				due = stale < due ? stale : due;
				break;
			}
		}
	}
	for (size_t f = 0; f < x->spec.nfields; f++) {
		int64_t at = x->conf_since[f] + (int64_t)x->spec.conflict_ms;
		if (x->conf_since[f] != 0 && !x->conf_done[f] && at < due)
			due = at;
	}
	return due;
}

void entity__recompute(entity_engine_t *e, entity__ent_t *x, int64_t now)
{
	pick_t picks[ENTITY_FIELDS_MAX];

	pick_all(x, now, picks);
	publish(e, x, build_snap(x, picks, x->seq + 1, now));
	conflicts(e, x, now);
	x->due = next_due(x, now);
}
