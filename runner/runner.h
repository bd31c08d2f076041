/*
 * runner: the execution half of `cdpilot run`. It holds the targets (the targets file's,
 * the Redis hash's and the children that discovering targets find), schedules them with
 * two schedulers (navigate and watch), and runs each due target:
 *
 *   due target --> navigate task: pool lease -> navigate -> wait_for -> extract
 *              \-> fetch task (adapters that need no browser): HTTP GET with libcurl
 *              \-> watched page: a long-lived lease, re-read when due or when it pushes
 *   result ----> snapshot (+ delta when data changed) ----> callbacks.publish
 *
 * It knows no sink, store or HTTP endpoint: results, task outcomes and shared-schedule
 * claims leave through the callbacks that daemon/ wires. The pool (borrowed) owns the
 * browser and CONCURRENCY_CAP; the runner starts a browser task only while the pool has a
 * free slot for it, so that the scheduler's priority order (live > imminent > completed)
 * is the order in which leases are asked for.
 *
 * Lifetime, in libuv's style: runner_new() -> runner_start() -> runner_reconcile()* ->
 * runner_stop() (no new work; watched pages are released) -> the caller closes the pool,
 * which cancels every lease and so ends every task -> runner_close(cb).
 *
 * One loop, one thread. Callbacks fire from the loop, never from inside the runner_* call
 * that caused them, except as noted below.
 */
#ifndef CDPILOT_RUNNER_RUNNER_H
#define CDPILOT_RUNNER_RUNNER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "adapters/adapter.h"
#include "daemon/targets.h"
#include "pool/pool.h"
#include "scheduler/sched.h"
#include "util/fetch.h"

typedef struct runner runner_t;
typedef struct runner_target_view runner_target_view_t; /* below */

typedef struct runner_opts {
	sched_opts_t sched;         /* intervals per class, retries, host limits, queue bound */
	unsigned fetch_cap;         /* fetch tasks (no browser) at once: FETCH_CONCURRENCY */
	unsigned failing_percent;   /* failing targets (last run failed) hold at most this
	                               share of CONCURRENCY_CAP and of fetch_cap, at least
	                               one task: FAILING_LEASE_PERCENT */
	unsigned claim_cap;         /* shared-schedule claims in flight: CLAIM_CONCURRENCY */
	uint32_t task_timeout_ms;   /* a task's deadline unless its target sets one */
	unsigned watch_cap;         /* watched pages open at once (WATCH_CAP) */
	uint32_t watch_reload_ms;   /* a watched page is reloaded this often */
	int watch_frames;           /* watched pages are painted (1) or get no frames (0):
	                               WATCH_FRAMES, pool_page_settings_t.no_frames */
	uint32_t verify_unchanged_ms; /* a watched page whose data has not changed this long
	                                 is verified (WATCH_VERIFY_UNCHANGED_SECONDS); 0:
	                                 three times the target's interval */
	uint32_t verify_max_ms;     /* and in any case this often (WATCH_VERIFY_SECONDS);
	                               0: never (verification off) */
	uint32_t watch_navigate_ms; /* a target whose watch froze three times in a row is read
	                               in navigate mode this long (WATCH_FROZEN_NAVIGATE_SECONDS) */
	unsigned discover_max;      /* children one discovering target may have: the listing's
	                               first ones are kept (DISCOVER_MAX_CHILDREN) */
	uint32_t adapt_verify_ms;   /* an adaptive target's endpoint is checked against its page
	                               this often (ADAPTIVE_VERIFY_SECONDS); 0: 60 s */
} runner_opts_t;

/* Defaults: fetch_cap 16, failing_percent 50, claim_cap 64, task_timeout_ms 15000, watch_cap 64,
 * watch_reload_ms 600000, watch_frames 1, verify_unchanged_ms 0 (3 intervals), verify_max_ms 60000,
 * watch_navigate_ms 600000, discover_max 500, sched_opts_init(). */
void runner_opts_init(runner_opts_t *o);

/* The answer to a claim: status 1 ours (fence: our fence for its writes), 0 another
 * instance's (retry_ms: ask again then), < 0 the shared schedule could not be asked
 * (-errno). Same shape as store/share.h's share_claim_cb. */
typedef void (*runner_claimed_cb)(void *claim_ud, int status, uint64_t fence,
                                  uint32_t retry_ms);

typedef struct runner_callbacks {
	/* A new snapshot of a target, and its delta against the previous one (NULL when data
	 * did not change): both borrowed for the call. fence and resync are for the store
	 * (0 and 0 on a local schedule). Called once per successful read. It may not call
	 * runner_reconcile(), runner_stop() or runner_close(). Required. */
	void (*publish)(void *ud, const json_t *snap, const json_t *delta, uint64_t fence,
	                int resync);
	/* A navigate task, fetch task or watched read ended, with its outcome and duration.
	 * Optional. */
	void (*task_done)(void *ud, const adapter_t *ad, enum pool_outcome outcome,
	                  uint64_t duration_ms);
	/* SCHEDULE=redis. NULL: the schedule is local, and run_over is unused. The runner
	 * runs only the targets it holds (runner_share_taken below).
	 * claim asks whether this instance runs held target id now, when the lease the last
	 * answer left has no room for the run (fence: ours); it must call cb exactly once,
	 * from the loop, later (never from inside claim). */
	void (*claim)(void *ud, const char *id, uint64_t fence, runner_claimed_cb cb,
	              void *claim_ud);
	/* A run of a target we hold is over; it is due again in due_in_ms. The answer comes
	 * back through runner_share_kept() or runner_share_lost(). release is 0 (the runner
	 * never gives a target up by itself). */
	void (*run_over)(void *ud, const char *id, uint32_t due_in_ms, uint64_t fence,
	                 int release);
	/* Target id was removed (whatever the schedule). Optional. */
	void (*forget)(void *ud, const char *id);
	/* A target's status, after each of its reads, failures and verifications (v borrowed
	 * for the call). event: NULL, or when its state changed "failing", "backing_off",
	 * "frozen" or "recovered". It may not change the runner. Optional. */
	void (*status)(void *ud, const runner_target_view_t *v, const char *event);
	void *ud;
} runner_callbacks_t;

/*
 * opts and cbs are copied. pool and fetch are borrowed and must outlive the runner until
 * runner_close()'s callback. NULL on -ENOMEM. Schedules nothing until runner_start().
 */
runner_t *runner_new(uv_loop_t *loop, const runner_opts_t *opts, pool_t *pool,
                     fetch_ctx_t *fetch, const runner_callbacks_t *cbs);

/* Starts running due targets (the wake timer). Returns 0, or -EINVAL if already started. */
int runner_start(runner_t *r);

/*
 * Makes the targets whose source is `source` exactly `set` ("" the targets file, "@redis"
 * the Redis hash; discovered children have their parent's id as source, and go with it).
 * Specs are taken from set (set->v[i] zeroed); targets whose spec is unchanged keep their
 * state, changed ones keep seq and last snapshot. An id already defined by another source
 * is refused with a warning. Due targets start from the loop, not from inside this call.
 */
void runner_reconcile(runner_t *r, target_set_t *set, const char *source);

/* Once a second: clears the next rate slot, opens watched pages that wait for a WATCH_CAP
 * slot, and starts due work. */
void runner_tick(runner_t *r);

/*
 * No new work from now on: the wake timer stops and every watched page is released. Tasks
 * in flight run on until they end or the pool cancels their lease. Idempotent.
 */
void runner_stop(runner_t *r);

/* 1 once runner_stop() was called. */
int runner_stopping(const runner_t *r);

/*
 * Frees the runner. Call after runner_stop() and after the pool has closed (so that no
 * task or lease is left). cb (may be NULL) fires once, from the loop, when its handles
 * have closed; the memory is freed before cb.
 */
void runner_close(runner_t *r, void (*cb)(void *ud), void *ud);

typedef struct runner_stats {
	size_t targets;
	unsigned inflight;          /* navigate and fetch tasks running */
	unsigned browser_tasks;     /* of which navigate tasks (holding or awaiting a lease) */
	unsigned claiming;          /* shared-schedule claims in flight */
	unsigned watches;           /* watched pages open or opening */
	unsigned failing_inflight;  /* tasks and claims of failing targets (FAILING_LEASE_PERCENT
	                               bounds them) */
	uint64_t done_total, ok_total, fail_total;
	uint64_t snapshots_total, deltas_total;
	uint64_t verify_agreed, verify_frozen, verify_failed; /* verification reads */
	uint64_t frozen_total;      /* watched pages found frozen */
	uint64_t unchanged_skipped; /* push reads that found the data unchanged (not written) */
	uint64_t discover_capped;   /* discovery reads whose listing had more entries than
	                               DISCOVER_MAX_CHILDREN */
	unsigned verifying;         /* verification reads running */
	/* adaptive targets (runner/adapt.c): successful reads by how, endpoints learned,
	 * learnings that found none, endpoints dropped, checks against the page by verdict,
	 * and how many now read an endpoint */
	uint64_t adapt_reads_endpoint, adapt_reads_page;
	uint64_t adapt_learned, adapt_learn_failed, adapt_dropped;
	uint64_t adapt_checks_agreed, adapt_checks_differed, adapt_checks_failed;
	unsigned adapt_endpoints;
	uint64_t last_success_ms;   /* loop time of the last success; 0 never */
	uint64_t last_verified_ms;  /* loop time of the last verified read (a fresh navigation,
	                               a confirmed watch); 0 never: the stall detector's clock */
	double tasks_per_s;         /* completions over the last few seconds */
	sched_stats_t nav, watch;   /* both schedulers */
} runner_stats_t;

void runner_get_stats(runner_t *r, runner_stats_t *out);

/* SCHEDULE=redis: what the shared schedule says of target id (from the loop, never from
 * inside a runner callback). valid_ms: how long from now a run may start without asking.
 * taken: id is this instance's now (fence: its fence; the next write resyncs); it is due at
 *        once. -ENOENT if id is not a target here (the caller gives it back).
 * kept:  our lease of id was renewed (fence: ours, changed if Redis had lost it).
 * lost:  id is not ours any more: its next run does not happen here (a watched page
 *        closes then). */
int runner_share_taken(runner_t *r, const char *id, uint64_t fence, uint32_t valid_ms);
void runner_share_kept(runner_t *r, const char *id, uint64_t fence, uint32_t valid_ms);
void runner_share_lost(runner_t *r, const char *id);
/* + 1 at each target added or removed (also by discovery): the caller re-reads the ids
 * (runner_foreach_target) when it changes. */
uint64_t runner_targets_gen(const runner_t *r);

/* One target as /status shows it. Strings are borrowed for the callback's duration. */
typedef struct runner_target_view {
	const char *id, *adapter, *url;
	const char *source;         /* "" the file, "@redis", or the discovering target's id */
	const char *last_error;     /* "" when the last run succeeded */
	const char *last_error_kind; /* what failed (RUNNER_KIND_*, below); "" when ok */
	enum pool_outcome last_outcome; /* POOL_OK, or the cause of the last run's failure */
	enum sched_class klass;     /* now (the page may have moved it) */
	int watch;                  /* mode watch */
	uint64_t seq;
	/* Three ages, as loop times (0: never): read, the last successful read; changed, when
	 * the data last changed; verified, the last read known to reflect the source (a fresh
	 * navigation, or a read of a watched page that a fresh navigation confirmed within
	 * WATCH_VERIFY_SECONDS and whose data changed within WATCH_VERIFY_UNCHANGED_SECONDS). */
	uint64_t added_ms, last_ok_ms, changed_ms, verified_ms;
	/* SCHEDULE=redis: when this instance took the target (loop time; 0 on a local schedule
	 * or not held): its grade counts from there, the age before it being the previous
	 * holder's (runner_view_age_held) */
	uint64_t held_since_ms;
	int64_t read_unix, changed_unix, verified_unix; /* the same as Unix ms; 0: never */
	int64_t failing_since_unix; /* first failure of the current run of failures; 0: none */
	const char *state;          /* "ok", "failing", "backing_off", "frozen" or "pending"
	                               (never read yet) */
	const char *read_mode;      /* "navigate", "watch", or "navigate" for a watched target
	                               over WATCH_CAP or whose watch froze: see watch_note;
	                               "endpoint" for an adaptive target reading its endpoint */
	const char *watch_note;     /* watched targets read in navigate mode: why; else "" */
	unsigned failures;          /* in a row */
	int backing_off;            /* failed two runs in a row: put off beyond its interval */
	uint64_t due_ms;            /* loop time of its next run (now: due or running) */
	uint32_t interval_ms;       /* the effective interval */
	int fresh;                  /* verified within two intervals */
	int held;                   /* this instance runs it: always on a local schedule; with
	                               SCHEDULE=redis, our last answered claim of it was won */
	/* "adaptive": true (docs/targets.md): adaptive_state "learning", "learned",
	 * "not_learned" or "dropped" (NULL: not adaptive); the endpoint ("" none), why none
	 * or why it was dropped (""), its mapping (borrowed, NULL none), when it was learned
	 * and last agreed with the page (Unix ms; 0 never), and whether a check is overdue
	 * (its endpoint reads are not verified then) */
	const char *adaptive_state, *adaptive_endpoint, *adaptive_reason;
	const json_t *adaptive_map;
	int64_t adaptive_learned_unix, adaptive_checked_unix;
	int adaptive_overdue;
} runner_target_view_t;

/* The kinds of failure a target's last run can have (runner_target_view_t.last_error_kind,
 * /status, the Redis status hash, `cdpilot try`): */
#define RUNNER_KIND_NETWORK "network"   /* the page or URL could not be loaded (DNS, refused) */
#define RUNNER_KIND_HTTP "http"         /* it loaded with an HTTP status >= 400 */
#define RUNNER_KIND_TIMEOUT "timeout"   /* the task's deadline passed */
#define RUNNER_KIND_ACTION "action"     /* a page action failed (the message names it) */
#define RUNNER_KIND_SELECTOR "selector" /* wait_for never matched a visible element */
#define RUNNER_KIND_SCRIPT "script"     /* the extraction threw or returned a bad value */
#define RUNNER_KIND_DATA "data"         /* the value did not validate (fields, discovery) */
#define RUNNER_KIND_BROWSER "browser"   /* renderer crash, browser lost, no page */
#define RUNNER_KIND_FAILED "failed"     /* anything else */

/* The three ages of a target at now (ms): since the last read known to reflect the source
 * (verified), the last successful read, the last change of its data. A target that never
 * had one counts from when it was added. */
enum runner_age { RUNNER_AGE_VERIFIED, RUNNER_AGE_READ, RUNNER_AGE_CHANGED, RUNNER_NAGES };
uint64_t runner_view_age(const runner_target_view_t *v, enum runner_age which, uint64_t now);
const char *runner_age_name(enum runner_age which);
/* runner_view_age(), but for a target taken from another instance, at most the time since
 * this instance took it: what health grades. */
uint64_t runner_view_age_held(const runner_target_view_t *v, enum runner_age which,
                              uint64_t now); /* "verified", "read", "changed" */

/* The last snapshot of target id (borrowed: valid until the runner's next publish of it or
 * its removal), or NULL (no such target, or never read). */
const json_t *runner_last_snapshot(runner_t *r, const char *id);

/* How many of the targets this runner is responsible for need a browser (navigate targets
 * whose adapter needs one, watched and discovering targets): every target on a local
 * schedule (no claim callback), with SCHEDULE=redis those whose last answered claim was won
 * (runner_target_view_t.held). O(targets). The daemon wants a browser while this is > 0
 * (pool_set_wanted). */
unsigned runner_browser_targets(const runner_t *r);

/* Calls fn once per target, in no particular order. fn may not change the runner. */
void runner_foreach_target(runner_t *r, void (*fn)(const runner_target_view_t *v, void *ud),
                           void *ud);

#endif
