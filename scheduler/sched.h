/*
 * sched: the priority scheduler. Decides which target is scraped next and when; does no
 * I/O and owns no timers: every call takes the current time (now_ms, any monotonic
 * millisecond clock), so tests drive it with a virtual clock and the daemon with
 * uv_now(). Single-threaded.
 *
 * Targets are identified by their id (copied). Each has a class (util/sched_class.h), an
 * optional interval override, a host (for politeness limits) and an opaque ud the caller
 * owns (the scheduler never dereferences it).
 *
 * Life of a target: added -> due at once -> "queued" once now >= due -> handed out by
 * sched_next() ("running") -> sched_done(ok or not) -> due again:
 *   - success: at max(start + interval, now) (fixed rate, no catch-up bursts);
 *   - failure: retry k = 1..RETRY_MAX_TRIES at now + uniform[0, min(cap, base * 2^(k-1))]
 *     (exponential backoff, full jitter); after the last retry fails, the run has failed:
 *     the first failed run is due again at max(start + interval, now); each further one
 *     backs off across intervals, at now + d minus up to a quarter of d (jitter), where
 *     d = max(interval, min(FAIL_BACKOFF_CAP, interval * 2^(failed runs - 1))). The
 *     failure count keeps growing until a success (a target that keeps failing is tried
 *     once per backoff period, never retried in between; only a success resets the
 *     backoff and starts a new run of retries).
 * A target is never queued twice nor running twice. sched_next() returns the highest
 * class with a queued target, earliest due first within the class, skipping targets whose
 * host already has HOST_CONCURRENCY running or started one less than
 * HOST_MIN_INTERVAL_MS ago. sched_next_ex(SCHED_NEXT_HEALTHY) also skips failing targets
 * (whose last run failed): the caller bounds how many of those run at once.
 * Queue depth: at most MAX_QUEUE_DEPTH targets are queued. When one more becomes due, the
 * lowest class is dropped first: if the newcomer's class is lower than or equal to the
 * lowest queued class, the newcomer is dropped, else the latest-due queued target of the
 * lowest class is. A dropped target is counted (drops[class]) and is due again after its
 * interval (at now + interval). Targets become queued lazily, earliest due first, in any
 * call that takes now_ms (sched_next, sched_next_wakeup, sched_get_stats).
 * Costs: add, remove, done O(log n); sched_next and sched_next_wakeup O(queued) at worst
 * (they walk past targets whose host is at its limit).
 */
#ifndef CDPILOT_SCHEDULER_SCHED_H
#define CDPILOT_SCHEDULER_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "util/sched_class.h"
#include "util/errlist.h"

typedef struct sched sched_t;

typedef struct sched_opts {
	uint32_t interval_ms[SCHED_NCLASSES]; /* LIVE_INTERVAL_SECONDS 5, IMMINENT_ 60,
	                                         COMPLETED_ 900 */
	unsigned max_queue_depth;             /* MAX_QUEUE_DEPTH 1000 (1..1000000) */
	unsigned retry_max_tries;             /* RETRY_MAX_TRIES 3 (0..100) */
	uint32_t retry_base_ms;               /* RETRY_BASE_MS 1000 */
	uint32_t retry_cap_ms;                /* RETRY_CAP_MS 60000 (>= base) */
	uint32_t fail_backoff_cap_ms;         /* FAIL_BACKOFF_CAP_SECONDS 300: longest time
	                                         between two runs of a failing target (never
	                                         below its interval); 0: no backoff across
	                                         intervals */
	unsigned host_concurrency;            /* HOST_CONCURRENCY 4 (1..1024) */
	uint32_t host_min_interval_ms;        /* HOST_MIN_INTERVAL_MS 0 */
	uint64_t seed;                        /* jitter PRNG seed; 0 = from the clock */
} sched_opts_t;

typedef struct sched_stats {
	unsigned targets[SCHED_NCLASSES];
	unsigned queued[SCHED_NCLASSES];      /* due, waiting for sched_next() */
	unsigned running;
	uint64_t drops[SCHED_NCLASSES];
	uint64_t retries;                     /* failures rescheduled as retries */
	uint64_t backoffs;                    /* failed runs put off beyond their interval */
	unsigned failing;                     /* targets whose last run failed */
	unsigned backing_off;                 /* of those, failed two runs or more in a row
	                                         (put off beyond their interval) */
} sched_stats_t;

typedef struct sched_info {
	enum sched_class klass;
	uint32_t interval_ms;                 /* effective */
	uint64_t due_ms;
	int queued, running;
	unsigned failures;                    /* consecutive */
	unsigned tries;                       /* retries used in the current failure run */
	unsigned failed_runs;                 /* consecutive runs whose retries all failed */
	int backing_off;                      /* due time put off beyond the interval */
	void *ud;
} sched_info_t;

/* Defaults, then environment; every bad value is added to errs (name, value, expected).
 * Returns 0 or -EINVAL. */
void sched_opts_init(sched_opts_t *o);
int sched_opts_from_env(sched_opts_t *o, errlist_t *errs);

sched_t *sched_new(const sched_opts_t *opts); /* aborts on out of memory */
void sched_free(sched_t *s);

/* interval_ms 0: the class default. host may be "" (no politeness limit applies).
 * Due at once. Returns 0, -EEXIST, -EINVAL (bad class, id NULL, empty or longer than 1024
 * bytes, host longer than 1024 bytes). */
int sched_add(sched_t *s, const char *id, const char *host, enum sched_class klass,
              uint32_t interval_ms, void *ud, uint64_t now_ms);
/* Changes host, class, interval and ud of an existing target, keeping its due time,
 * failures and running state (a shorter interval may bring the due time forward, to
 * max(last start + interval, now); a pending backoff retry keeps its time). A running
 * target's run keeps counting on the host it started on. Returns 0, -ENOENT or -EINVAL
 * (bad class or host). */
int sched_update(sched_t *s, const char *id, const char *host, enum sched_class klass,
                 uint32_t interval_ms, void *ud, uint64_t now_ms);
/* An adapter moved the target to another class; its next due time follows the new
 * class's interval: running, sched_done() uses it; waiting, due at
 * max(last start + interval, now); queued, it stays queued (in the new class) if that is
 * still due, else it waits. A pending backoff retry and a never-started target keep their
 * due time. Returns 0, -ENOENT or -EINVAL (bad class). */
int sched_set_class(sched_t *s, const char *id, enum sched_class klass, uint64_t now_ms);
/* Removes a target. If it is running, it is forgotten: its host's running slot is freed
 * at once and its sched_done() is then a no-op returning -ENOENT (also after the same id
 * is added again, as long as the new target is not running). Returns 0 or -ENOENT. */
int sched_remove(sched_t *s, const char *id);

/* The next target to start now, marked running; NULL if none may start. *id_out (may be
 * NULL) is borrowed until sched_done()/sched_remove() of that target. */
void *sched_next(sched_t *s, uint64_t now_ms, const char **id_out);
/* Flags of sched_next_ex() and sched_next_wakeup_ex(). */
enum { SCHED_NEXT_HEALTHY = 1 }; /* skip failing targets (failures > 0) */
/* sched_next() with flags; *failing_out (may be NULL) gets 1 if the target handed out is
 * failing (its last run failed), else 0. */
void *sched_next_ex(sched_t *s, uint64_t now_ms, unsigned flags, const char **id_out,
                    int *failing_out);
/* The earliest time sched_next() could return something (a due time or a host's
 * min-interval expiry); now_ms if something is queued and startable; UINT64_MAX if nothing
 * is scheduled. Targets held back by HOST_CONCURRENCY alone do not count: a sched_done()
 * frees them, and the caller asks again after it. For the caller's timer. */
uint64_t sched_next_wakeup(sched_t *s, uint64_t now_ms);
/* sched_next_wakeup() for sched_next_ex() with the same flags: with SCHED_NEXT_HEALTHY,
 * queued failing targets do not count. */
uint64_t sched_next_wakeup_ex(sched_t *s, uint64_t now_ms, unsigned flags);
/* A running target finished. Returns 0, or -ENOENT (removed meanwhile or not running). */
int sched_done(sched_t *s, const char *id, int ok, uint64_t now_ms);

/* A running target did not run after all (another instance holds it, see store/share.h):
 * it waits until due_ms (at least now), its failures and retries untouched, as if it had
 * not been handed out. Returns 0, or -ENOENT (removed meanwhile or not running). */
int sched_defer(sched_t *s, const char *id, uint64_t due_ms, uint64_t now_ms);

/* A waiting or queued target is due at due_ms instead (earlier or later; at least now): a
 * target handed over by the shared schedule runs at once. Returns 0, -EBUSY (running), or
 * -ENOENT. */
int sched_set_due(sched_t *s, const char *id, uint64_t due_ms, uint64_t now_ms);

/* queued is as of the last call that took now_ms. 0 or -ENOENT. */
int sched_get_info(const sched_t *s, const char *id, sched_info_t *out);
void sched_get_stats(sched_t *s, uint64_t now_ms, sched_stats_t *out);
size_t sched_count(const sched_t *s);

#endif
