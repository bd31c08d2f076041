/*
 * entity: one thing (a match) read from several sources (targets), merged field by field
 * (docs/entities.md). Pure code on jansson values and a clock the caller passes: no I/O,
 * no loop, no allocation failure handling beyond an abort (daemon plumbing).
 *
 * An entity object (in the targets file's "entities" array, or a value of the Redis
 * hash P:entities):
 *   {"id": "match-7", "sources": ["siteA-7", "siteB-7", "api-7"],
 *    "max_age_seconds": 15, "class": "live", "conflict_seconds": 15,
 *    "fields": {"score":  {"prefer": ["siteA-7", "api-7", "siteB-7"]},
 *               "minute": {"with": "score"},
 *               "clock":  {"rule": "newest"},
 *               "venue":  {"prefer": ["api-7"], "from": "stadium"}}}
 * Rules, per field (a source "qualifies" for a field when its data has the field, not
 * null, and the source's verified age is at most max_age_seconds):
 *   prefer   the first source of the list that qualifies; if none does, the one of the list
 *            with the most recently verified value (ties: list order), and the field is
 *            degraded. Sources outside the list never give this field.
 *   newest   among all the entity's sources that qualify, the one whose value of the field
 *            changed most recently (ties: "sources" order); if none qualifies, the most
 *            recently verified value, degraded.
 *   with     the value from the source that won field F (which may itself follow another:
 *            chains resolve to their root); absent if that source lacks it (degraded).
 *            Values that belong together (a score and its minute) never mix sources.
 *   "from"   the source data's field name when it differs (default: the field's name);
 *            a top-level key of the source's data. Only with "prefer" or "rule": a "with"
 *            field is read by its own name.
 * A field is degraded when it is absent or its source does not qualify for it (a "with"
 * field whose root's winner is stale is degraded too). A field no source has is absent
 * from data and listed in degraded. A value of null counts as absent.
 * Conflicts: while two or more sources that qualify for a field (its prefer list, or all
 * sources) hold values that differ (json_equal), for longer than conflict_seconds (default
 * max_age_seconds), one conflict event is reported; the next one for that field only after
 * the values have agreed (or stopped qualifying) again.
 *
 * The merged entity, a snapshot:
 *   {"entity": "match-7", "class": "live", "seq": 4, "updated_at": "...Z",
 *    "data": {"score": "2-1", "minute": 67, "venue": "Anfield"},
 *    "provenance": {"score": {"source": "siteA-7", "verified_at": "...Z",
 *                             "changed_at": "...Z"}, ...},
 *    "degraded": ["venue"]}
 * (times RFC 3339 UTC with milliseconds, as target snapshots; "changed_at" is when that
 * source's value of the field last changed as the engine saw it). A new snapshot (seq + 1)
 * is published each time the result of a recomputation differs from the last one in data,
 * a winner, degraded or a provenance time; a delta goes with it when data, a winner or
 * degraded changed:
 *   {"entity": "match-7", "seq": 4, "prev_seq": 3, "updated_at": "...",
 *    "added": [...], "changed": [...], "removed": [...],        (paths into data)
 *    "winners": {"score": {"from": "siteA-7", "to": "api-7"}},  (winner changes, {} if none;
 *                                                  "from"/"to" null: no source)
 *    "degraded": [...]}                                          (the new list)
 * An entity's first snapshot is published at its first recomputation (the reconcile that
 * adds it), even before any source has reported: everything degraded.
 *
 * Ownership: an entity_set_t owns its specs; an engine owns its copies of everything given
 * to it. json_t arguments are borrowed. Callbacks are called synchronously from inside the
 * entity_engine_* call that caused them, with borrowed arguments; they may not call back
 * into the engine.
 */
#ifndef CDPILOT_ENTITY_ENTITY_H
#define CDPILOT_ENTITY_ENTITY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errlist.h"
#include "util/sched_class.h"

#define ENTITY_ID_MAX 64
#define ENTITY_SOURCES_MAX 16
#define ENTITY_FIELDS_MAX 64

enum entity_rule { ENTITY_PREFER = 0, ENTITY_NEWEST, ENTITY_WITH };

typedef struct entity_field {
	char *name;            /* owned */
	char *from;            /* owned: the source field name (default name) */
	enum entity_rule rule;
	unsigned *prefer;      /* owned: indexes into the entity's sources; ENTITY_PREFER */
	size_t nprefer;
	size_t with;           /* ENTITY_WITH: index of the field it follows (direct) */
} entity_field_t;

typedef struct entity_spec {
	char id[ENTITY_ID_MAX + 1];
	char **sources;        /* owned, nsources target ids, no duplicates */
	size_t nsources;
	uint32_t max_age_ms;   /* "max_age_seconds": 0.1 to 86400 */
	uint32_t conflict_ms;  /* "conflict_seconds" (0 to 86400; default max_age) */
	enum sched_class klass; /* "class", default SCHED_IMMINENT: labels the metrics */
	entity_field_t *fields; /* owned, nfields (1..ENTITY_FIELDS_MAX), in the object's order */
	size_t nfields;
	json_t *json;          /* owned deep copy of the entity object; equal json = unchanged */
} entity_spec_t;

typedef struct entity_set {
	entity_spec_t *v;
	size_t n;
} entity_set_t;

/*
 * Validates an "entities" array (borrowed) into *out. where prefixes every error
 * (e.g. "entities"), with the entity's position and id: `entities[0] "match-7": "fields":
 * "minute": "with": "clock" follows "minute" back: a cycle ("minute" -> "clock" -> "minute")`
 * (a cycle is reported once). "sources" entries that are not known targets are errors. known(ud, id) says whether
 * a target id exists (NULL: every id is accepted); an unknown source is an error. Ids must
 * be valid target ids (targets_id_valid's rule) and unique in the array. Every error is
 * listed; all or nothing: on any error out is empty. Returns 0 or -EINVAL.
 */
int entities_parse_json(const json_t *arr, const char *where,
                        int (*known)(void *ud, const char *id), void *ud, entity_set_t *out,
                        errlist_t *errs);
/* One entity object (as a value of P:entities), where as above. Returns 0 or -EINVAL. */
int entities_parse_one(const json_t *obj, const char *where,
                       int (*known)(void *ud, const char *id), void *ud, entity_spec_t *out,
                       errlist_t *errs);
void entities_release(entity_set_t *set);
void entity_spec_release(entity_spec_t *e);

/* ---- the engine ---- */

typedef struct entity_engine entity_engine_t;

typedef struct entity_callbacks {
	/* A new snapshot of an entity, and its delta (NULL when only provenance times
	 * changed). Required. */
	void (*publish)(void *ud, const json_t *snap, const json_t *delta);
	/* A conflict (see above): {"event": "conflict", "entity", "field", "since" (time),
	 * "values": [{"source", "value"}, ...]}; or, after the publish of a snapshot in which
	 * the winner of a field with a prefer list changed (not the entity's first snapshot,
	 * nor a field's first value from its preferred source):
	 * {"event": "winner", "entity", "field", "from", "to" (null: none), "preferred" (to is
	 * the list's first), "degraded" (the field is now)}. Optional. */
	void (*event)(void *ud, const json_t *ev);
	/* A target's last result, asked for each source of an entity that is new or changed at
	 * entity_engine_reconcile(), before the engine first computes it (so that its first
	 * snapshot already has every source's data, and no source is seen winning alone):
	 * returns 1 with *data (borrowed for the call), *changed_unix (when that data last
	 * changed) and *verified_unix set, or 0 when the target has none. Optional: without it
	 * a new entity waits for its sources' next results. */
	int (*last)(void *ud, const char *target, const json_t **data, int64_t *changed_unix,
	            int64_t *verified_unix);
	void *ud;
} entity_callbacks_t;

entity_engine_t *entity_engine_new(const entity_callbacks_t *cbs);
/* Frees the engine and everything it holds. No callback. NULL is accepted. */
void entity_engine_free(entity_engine_t *e);

/*
 * Makes the entities whose source is `source` ("" the targets file, "@redis" the Redis
 * hash) exactly `set` (specs taken: set->v[i] zeroed). An entity whose json is unchanged
 * keeps everything; a changed one keeps its seq and last result (the next result is
 * published against it); an id already defined by another source is refused with a
 * warning (logged by the caller: the function returns how many were refused; a refused
 * spec stays in set, json non-NULL, for the caller to name and release). Entities of
 * `source` not in set are dropped without a callback (the caller removes what it
 * published for them: entity_engine_foreach before and after tells which); their last seq
 * is remembered (the last 4096 ids dropped): an id defined again (by any source) goes on
 * from it (its first snapshot seq + 1, its delta prev_seq 0: nothing to diff against), so
 * that its results still pass an ordering guard on (epoch, seq) such as Redis's
 * P:entity-seq:E. Entities that remain or are new are recomputed at now (unix ms), and
 * published if changed.
 * A new or changed entity is given its sources' last results (callbacks.last) before it
 * is first computed, so its first snapshot has them all. A source's verified time never
 * goes back (a late or replayed result does not age it). set's ids must be unique (the
 * parser's).
 */
size_t entity_engine_reconcile(entity_engine_t *e, entity_set_t *set, const char *source,
                               int64_t now);

/*
 * A source target's new result: data (borrowed; the snapshot's "data"; only the top-level
 * keys the entity's fields read are copied), the scrape's time (the "changed_at" of a
 * field whose value differs from what the engine had, or that it sees first) and the
 * source's verified time (unix ms; 0: never verified). Every entity naming the
 * target is recomputed at now. A target no entity names costs a binary search.
 */
void entity_engine_source_data(entity_engine_t *e, const char *target, const json_t *data,
                               int64_t scraped_unix, int64_t verified_unix, int64_t now);
/* A source's state without new data (a read that found the data unchanged, a failure, a
 * verification): its verified time (unix ms; 0 never). Recomputes its entities at now. */
void entity_engine_source_verified(entity_engine_t *e, const char *target,
                                   int64_t verified_unix, int64_t now);
/* The target is gone: its data are forgotten (its entities lose it as a source until it
 * comes back). */
void entity_engine_source_gone(entity_engine_t *e, const char *target, int64_t now);

/* Recomputes, at now, the entities whose result may have changed with time alone (a
 * source aging past max_age, a conflict passing conflict_seconds). Cheap when nothing is
 * due: call it once a second. */
void entity_engine_tick(entity_engine_t *e, int64_t now);

typedef struct entity_stats {
	size_t entities;
	size_t degraded;                          /* entities with a degraded field now */
	uint64_t winner_changes[SCHED_NCLASSES];  /* fields whose winner changed, by class
	                                           * (an entity's first snapshot counts none) */
	uint64_t conflicts_total;
	uint64_t snapshots_total, deltas_total;
} entity_stats_t;
void entity_engine_get_stats(const entity_engine_t *e, entity_stats_t *out);

/* Calls fn for each entity with its last snapshot (borrowed; NULL before the first) and its
 * source ("" or "@redis"). fn may not change the engine. */
void entity_engine_foreach(const entity_engine_t *e,
                           void (*fn)(void *ud, const char *id, const char *source,
                                      const json_t *snap),
                           void *ud);

#endif
