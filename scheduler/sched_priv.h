/*
 * sched_priv: the scheduler's state and the containers that hold it, shared by sched.c (options,
 * states, the public API) and sched_queue.c (target and host tables, the waiting heap, the
 * class queues). Not a public interface: nothing outside scheduler/sched*.c includes it.
 */
#ifndef CDPILOT_SCHEDULER_SCHED_PRIV_H
#define CDPILOT_SCHEDULER_SCHED_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "scheduler/sched.h"

#define SCHED_ID_MAX 1024 /* bytes of an id or a host name, without the NUL */

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
	int backoff_pending; /* due time is put off beyond the interval (failed runs) */
	/* before the current run (sched_defer puts them back) */
	uint64_t prev_start_ms;
	int prev_started, prev_retry_pending, prev_backoff_pending;
	unsigned failures, tries, failed_runs;
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
	unsigned failing, backing_off; /* targets with failures > 0, with failed_runs > 1 */
	unsigned per_class[SCHED_NCLASSES];
	uint64_t drops[SCHED_NCLASSES];
	uint64_t retries, backoffs;
	uint64_t seq;
	uint64_t rng;
};

/* sched_queue.c: allocation that aborts on failure, and names (ids, hosts) of at most
 * SCHED_ID_MAX bytes */
void *sched__xcalloc(size_t n, size_t size);
char *sched__xstrndup(const char *s, size_t n);
int sched__valid_name(const char *s, int may_be_empty);

/* sched_queue.c: the host table (refcounted) and the per-host limits */
shost_t *sched__host_ref(sched_t *s, const char *name);
void sched__host_unref(sched_t *s, shost_t *h);
int sched__host_may_start(const sched_t *s, const shost_t *h, uint64_t now_ms);

/* sched_queue.c: the target table by id */
starget_t **sched__target_slot(const sched_t *s, const char *id);
starget_t *sched__target_find(const sched_t *s, const char *id);
void sched__targets_grow(sched_t *s);

/* sched_queue.c: the waiting heap and the class queues */
void sched__heap_push(sched_t *s, starget_t *t);
void sched__heap_remove(sched_t *s, starget_t *t);
void sched__queue_insert(sched_t *s, starget_t *t);
void sched__queue_remove(sched_t *s, starget_t *t);

#endif
