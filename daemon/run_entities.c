/*
 * run_entities.c: entities (entity/entity.h, docs/entities.md) wired into `cdpilot run`.
 * The engine hears every source's result (the runner's publish), state (its status
 * callback: verified age) and removal (forget), is ticked once a second so that a source
 * aging past max_age changes the winner without a new scrape, and its merged snapshots,
 * deltas and conflict events go to the sink, the store and the log. Entities come from the
 * targets file ("" source) and the Redis hash P:entities ("@redis").
 *
 * With SCHEDULE=redis entities are not merged: an instance reads only its share of the
 * sources, and two instances would write one entity from two halves. A warning says so.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/run_priv.h"
#include "entity/entity.h"
#include "store/store.h"
#include "util/log.h"

static int64_t unix_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-11-23T14:17:32.123Z" (snapshot_format_time's form) as Unix ms; 0 if it is not. */
static int64_t parse_time(const char *s)
{
	struct tm tm = { 0 };
	int ms = 0, n = 0;

	if (!s ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
	           &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &n) != 7 ||
	    s[n] != '\0')
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static void on_entity_publish(void *ud, const json_t *snap, const json_t *delta)
{
	run_t *r = ud;

	if (r->sink) {
		sink_put(r->sink, "entity", snap);
		if (delta)
			sink_put(r->sink, "entity_delta", delta);
	}
	if (r->store)
		store_put_entity(r->store, snap, delta);
}

/* A conflict or a winner change: logged, and on P:events (a conflict's values as one JSON
 * string: the stream's fields are flat). */
static void on_entity_event(void *ud, const json_t *ev)
{
	run_t *r = ud;
	char *values = json_dumps(json_object_get(ev, "values"), JSON_COMPACT);
	json_t *flat = json_deep_copy(ev);

	const char *id = json_string_value(json_object_get(ev, "entity"));
	const char *field = json_string_value(json_object_get(ev, "field"));

	if (json_object_get(ev, "values")) {
		log_warn("entity", "\"%s\": sources disagree on \"%s\" since %s: %s", id, field,
		         json_string_value(json_object_get(ev, "since")), values ? values : "?");
		if (flat && values)
			json_object_set_new(flat, "values", json_string(values));
	} else {
		const char *from = json_string_value(json_object_get(ev, "from"));
		const char *to = json_string_value(json_object_get(ev, "to"));
		int pref = json_is_true(json_object_get(ev, "preferred"));
		int deg = json_is_true(json_object_get(ev, "degraded"));
		if (pref && !deg)
			log_info("entity",
			         "\"%s\" \"%s\": back to the preferred source %s (from %s)", id,
			         field, to, from ? from : "none");
		else
			log_warn("entity", "\"%s\" \"%s\": now from %s (was %s)%s", id, field,
			         to ? to : "no source", from ? from : "none",
			         deg ? ": degraded, no source qualifies" : "");
	}
	if (r->store && flat) { /* "type" names an event on P:events, as for targets */
		json_object_set(flat, "type", json_object_get(ev, "event"));
		json_object_del(flat, "event");
		store_event(r->store, flat);
	}
	json_decref(flat);
	free(values);
}

/* The engine keeps nothing of targets no entity named: a new or changed entity gets its
 * sources' last results from the runner, their values counting as changed when the data
 * last changed. */
static int last_result(void *ud, const char *target, const json_t **data, int64_t *changed,
                       int64_t *verified)
{
	run_t *r = ud;
	const json_t *snap = r->runner ? runner_last_snapshot(r->runner, target) : NULL;

	if (!snap)
		return 0;
	*data = json_object_get(snap, "data");
	*changed = parse_time(json_string_value(json_object_get(snap, "changed_at")));
	*verified = parse_time(json_string_value(json_object_get(snap, "verified_at")));
	return 1;
}

void run__entities_new(run_t *r)
{
	entity_callbacks_t cbs = { .publish = on_entity_publish,
		                   .event = on_entity_event,
		                   .last = last_result,
		                   .ud = r };

	r->entities = entity_engine_new(&cbs);
	if (!r->entities) {
		log_error("run", "out of memory creating the entity engine");
		abort();
	}
}

void run__entities_free(run_t *r)
{
	entity_engine_free(r->entities);
	r->entities = NULL;
}

void run__entities_reconcile(run_t *r, entity_set_t *set, const char *source)
{
	size_t refused;


	if (!r->entities)
		return;
	if (r->share) {
		if (set->n && !r->entities_warned)
			log_warn("run",
			         "%zu entit%s from %s not merged: with SCHEDULE=redis each "
			         "instance reads only its share of the sources "
			         "(docs/entities.md)",
			         set->n, set->n == 1 ? "y" : "ies",
			         *source ? "the Redis hash" : "the targets file");
		r->entities_warned = r->entities_warned || set->n;
		entities_release(set);
		return;
	}
	refused = entity_engine_reconcile(r->entities, set, source, unix_now());
	for (size_t i = 0; refused && i < set->n; i++) /* refused specs stay in set */
		if (set->v[i].json)
			log_warn("run",
			         "entity \"%s\" from %s refused: %s defines it already (it is "
			         "taken from there again only at its next change)",
			         set->v[i].id, *source ? "the Redis hash" : "the targets file",
			         *source ? "the targets file" : "the Redis hash");
	entities_release(set); /* specs taken; the array */
}

/* The store's entities hash changed: {id: entity object}. Entity objects are small and
 * few: validated here, on the loop. Their sources may be targets of the file or of the
 * Redis hash, or targets still to come: not checked against the runner (a source that is
 * not there gives no value, which /status shows). */
void run__entities_on_redis(void *ud, const json_t *obj, const char *errors)
{
	run_t *r = ud;
	entity_set_t set = { 0 };
	errlist_t errs;
	const char *id;
	json_t *e;

	if (r->stopping)
		return;
	(void)errors; /* the store logged them */
	errlist_init(&errs);
	set.v = calloc(json_object_size(obj) + 1, sizeof *set.v);
	if (!set.v)
		abort();
	json_object_foreach((json_t *)obj, id, e)
	{
		(void)id; /* the parser names it */
		if (entities_parse_one(e, "redis entities", NULL, NULL, &set.v[set.n], &errs) == 0)
			set.n++;
	}
	if (errs.count)
		log_warn("run", "%u entit%s from Redis refused:\n%s", errs.count,
		         errs.count == 1 ? "y" : "ies", errlist_text(&errs));
	errlist_release(&errs);
	run__entities_reconcile(r, &set, "@redis");
}

void run__entities_on_data(run_t *r, const json_t *snap)
{
	if (!r->entities || r->share)
		return;
	entity_engine_source_data(
	        r->entities, json_string_value(json_object_get(snap, "target")),
	        json_object_get(snap, "data"),
	        parse_time(json_string_value(json_object_get(snap, "scraped_at"))),
	        parse_time(json_string_value(json_object_get(snap, "verified_at"))), unix_now());
}

void run__entities_on_status(void *ud, const runner_target_view_t *v, const char *event)
{
	run_t *r = ud;

	if (r->entities && !r->share)
		entity_engine_source_verified(r->entities, v->id, v->verified_unix, unix_now());
	run__on_target_status(ud, v, event);
}

void run__entities_on_forget(run_t *r, const char *id)
{
	if (r->entities && !r->share)
		entity_engine_source_gone(r->entities, id, unix_now());
}

void run__entities_tick(run_t *r)
{
	if (r->entities && !r->share)
		entity_engine_tick(r->entities, unix_now());
}

static void status_entity(void *ud, const char *id, const char *source, const json_t *snap)
{
	json_t *e = snap ? json_deep_copy(snap) : json_pack("{s:s, s:n}", "entity", id, "seq");

	if (!e)
		return;
	json_object_set_new(e, "defined_in", json_string(*source ? "redis" : "file"));
	json_array_append_new(ud, e);
}

void run__entities_status(run_t *r, json_t *doc)
{
	json_t *list = json_array();

	if (!list)
		return;
	if (r->entities)
		entity_engine_foreach(r->entities, status_entity, list);
	json_object_set_new(doc, "entities", list);
}

void run__entities_metrics(run_t *r, prom_buf_t *b)
{
	entity_stats_t es = { 0 };

	if (r->entities)
		entity_engine_get_stats(r->entities, &es);
	prom_header(b, "cdpilot_entities", "gauge", "Entities merged from several sources.");
	prom_sample(b, "cdpilot_entities", (double)es.entities, NULL);
	prom_header(b, "cdpilot_entities_degraded", "gauge",
	            "Entities with a field no qualifying source gives (docs/entities.md).");
	prom_sample(b, "cdpilot_entities_degraded", (double)es.degraded, NULL);
	prom_header(b, "cdpilot_entity_winner_changes_total", "counter",
	            "Entity fields whose winning source changed, by entity class.");
	for (int c = 0; c < SCHED_NCLASSES; c++)
		prom_sample(b, "cdpilot_entity_winner_changes_total", (double)es.winner_changes[c],
		            "class", sched_class_name((enum sched_class)c), NULL);
	prom_header(b, "cdpilot_entity_conflicts_total", "counter",
	            "Entity fields whose qualifying sources disagreed longer than "
	            "conflict_seconds.");
	prom_sample(b, "cdpilot_entity_conflicts_total", (double)es.conflicts_total, NULL);
}
