/*
 * health: grades the daemon healthy, degraded, failing or recovering from how old the
 * targets' data is, whether scrapes still succeed while work is due (a "stall"), and
 * conditions reported by other modules (the watchdog's "pids near pids.max", the store's
 * "redis down"). Pure: no I/O, no timers; every call that needs the time takes now_ms (the
 * same monotonic millisecond clock as the scheduler's), so tests drive it with a virtual
 * clock. Single-threaded. The daemon owns the health_t and observes it about once a second.
 *
 * Grading of one observation (the incident plan):
 *   failing     max age >= HEALTH_FAILING_MAX_SECONDS, or no success for STALL_SECONDS
 *               while work is due (time during which no work was due does not count);
 *   degraded    median age >= HEALTH_DEGRADED_MEDIAN_SECONDS or p95 age >=
 *               HEALTH_DEGRADED_P95_SECONDS (nearest-rank percentiles of the ages);
 *   recovering  none of the above, but the overall grade was degraded or failing at an
 *               observation (or condition change) less than HEALTH_WINDOW_SECONDS ago;
 *   healthy     otherwise, and always for the ages when there are no targets at all.
 * The overall grade is the worst of that and the conditions (failing > degraded >
 * recovering > healthy); the reasons of all of them are listed together.
 */
#ifndef CDPILOT_SCHEDULER_HEALTH_H
#define CDPILOT_SCHEDULER_HEALTH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errlist.h"

enum health_grade { HEALTH_HEALTHY = 0, HEALTH_DEGRADED, HEALTH_FAILING, HEALTH_RECOVERING };

/* health_observe() result bits. */
#define HEALTH_CHANGED 1u     /* the overall grade differs from the previous observation's */
#define HEALTH_STALL_BEGAN 2u /* a stall episode began: recycle the browser, once per episode */

#define HEALTH_MAX_CONDITIONS 16 /* distinct condition keys held at once */
#define HEALTH_MAX_AGES 1000000  /* ages past this many count for the maximum only */

typedef struct health_opts {
	uint32_t window_ms;          /* HEALTH_WINDOW_SECONDS 300 (0..86400; 0: no recovering) */
	uint32_t degraded_median_ms; /* HEALTH_DEGRADED_MEDIAN_SECONDS 60 (0.1..86400) */
	uint32_t degraded_p95_ms;    /* HEALTH_DEGRADED_P95_SECONDS 60 (0.1..86400) */
	uint32_t failing_max_ms;     /* HEALTH_FAILING_MAX_SECONDS 120 (0.1..86400) */
	uint32_t stall_ms;           /* STALL_SECONDS 90 (0.1..86400) */
} health_opts_t;

typedef struct health health_t;

/* Defaults, then environment (decimals such as 0.5 accepted); every bad value is added to
 * errs (name, value, expected) and leaves the default. Returns 0 or -EINVAL. */
void health_opts_init(health_opts_t *o);
int health_opts_from_env(health_opts_t *o, errlist_t *errs);

/* opts is copied (NULL: defaults). Starts healthy, since 0. Aborts on out of memory. */
health_t *health_new(const health_opts_t *opts);
void health_free(health_t *h);

/*
 * One observation: ages_ms[0..n) is the current age of every target (ms since its last
 * success, or since it was added if never; borrowed for the call), work_due says whether
 * any target is queued or running, last_success_ms is the time of the most recent success
 * of any target (0: never). Returns HEALTH_CHANGED and/or HEALTH_STALL_BEGAN. A grade
 * change caused by health_set_condition() is reported by the next observation.
 */
unsigned health_observe(health_t *h, uint64_t now_ms, const uint64_t *ages_ms, size_t n,
                        int work_due, uint64_t last_success_ms);

/*
 * A condition from elsewhere, by key (copied, at most 63 bytes used): its grade and a
 * human reason (copied, truncated to 199 bytes). HEALTH_HEALTHY removes it. Setting an
 * existing key replaces it. The overall grade is recomputed at once. Returns 0, -EINVAL
 * (empty key or bad grade) or -ENOSPC (HEALTH_MAX_CONDITIONS keys already held).
 */
int health_set_condition(health_t *h, const char *key, enum health_grade g, const char *reason,
                         uint64_t now_ms);

enum health_grade health_grade(const health_t *h);
/* "healthy", "degraded", "failing", "recovering" ("unknown" for other values). */
const char *health_grade_name(enum health_grade g);
/* Why the grade is what it is, reasons joined with "; " ("max age 131 s >= 120 s; ...");
 * "" when healthy. Valid until the next call on h. */
const char *health_reasons(const health_t *h);
/* Nearest-rank median, p95 and the maximum of the last observation's ages (0 if none);
 * any pointer may be NULL. */
void health_get_ages(const health_t *h, uint64_t *median, uint64_t *p95, uint64_t *max);
/* 1 while a stall episode lasts. */
int health_stalled(const health_t *h);
/* {"grade", "reasons": [...], "median_age_ms", "p95_age_ms", "max_age_ms", "stalled",
 *  "since": ms of the last grade change (0: never changed)}. New reference. */
json_t *health_to_json(const health_t *h);

#endif
