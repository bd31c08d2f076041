/*
 * entity_int: the engine's state, shared by entity.c (bookkeeping: the entities, the index
 * from target to entities, the due-time heap) and entity_merge.c (the recomputation of one
 * entity and what it publishes). Not a public header.
 */
#ifndef CDPILOT_ENTITY_ENTITY_INT_H
#define CDPILOT_ENTITY_ENTITY_INT_H

#include "entity/entity.h"

/* What the engine knows of one source of one entity. */
typedef struct entity__src {
	int have;         /* data seen and not gone since */
	int64_t verified; /* unix ms, 0 never */
	json_t **val;     /* per field: owned deep copy of the source's value, NULL absent/null */
	int64_t *changed; /* per field: when val last changed as the engine saw it */
} entity__src_t;

typedef struct entity__ent {
	entity_spec_t spec;
	char *source;       /* "" the targets file, "@redis" the Redis hash */
	entity__src_t *src; /* spec.nsources */
	json_t *snap;       /* last snapshot published, NULL before the first */
	uint64_t seq;
	int64_t *conf_since;      /* per field: first seen disagreeing (0: agreeing) */
	unsigned char *conf_done; /* per field: this episode's event was sent */
	int degraded;             /* the last snapshot had a degraded field */
	int64_t due;              /* next time the result may change by time alone; INT64_MAX */
	size_t heap_at;           /* position in the heap, SIZE_MAX when not in it */
	unsigned mark;            /* reconcile's pass */
	int fill;        /* new or changed at this reconcile: given its sources' last results */
} entity__ent_t;

typedef struct entity__ref {
	const char *target; /* borrowed from ent->spec.sources */
	entity__ent_t *ent;
	unsigned si; /* index of the target in ent's sources */
} entity__ref_t;

struct entity_engine {
	entity_callbacks_t cbs;
	entity__ent_t **ents; /* sorted by id */
	size_t nents;
	entity__ref_t *refs; /* sorted by target */
	size_t nrefs;
	entity__ent_t **heap; /* min-heap on due */
	size_t nheap, capheap;
	entity_stats_t st;
	unsigned mark;
	json_t *gone; /* {id: last seq} of dropped entities (at most ENTITY__GONE_MAX, oldest
	               * forgotten first): one defined again goes on from it */
};

#define ENTITY__GONE_MAX 4096

/* Recomputes x at now: publishes a new snapshot (and delta) when the result changed,
 * reports conflicts, updates the stats and sets x->due (the caller repositions x in the
 * heap). */
void entity__recompute(entity_engine_t *e, entity__ent_t *x, int64_t now);

/* Out of memory aborts (daemon plumbing, as the header says). */
void entity__oom(void);

#endif
