/*
 * pool: one long-lived Chromium and a semaphore-bounded set of leased browser contexts.
 * Knows browsers and leases; knows nothing of targets, adapters or sinks.
 *
 * A task asks for a lease (pool_acquire). When one of CONCURRENCY_CAP slots is free, the
 * pool opens a fresh browser context with one attached page (cdp_page) on the current
 * browser, with page hygiene applied (dialogs dismissed, downloads denied, popups closed,
 * resource types blocked, user agent / viewport / headers set, each of which a lease may
 * set for its own page: pool_acquire_ex), and grants it. A page whose task ended well is
 * kept (PAGE_REUSE): the next lease for the same site (scheme, host and port of its URL)
 * with the same page settings gets it at once, and navigates it, with no new context and
 * no new renderer (most of a small page's cost); such a page never reads the HTTP cache
 * or a service worker (cdp_page_opts_t.no_cache); a kept page holds its slot, and is
 * disposed after PAGE_REUSE tasks, PAGE_IDLE_SECONDS unused, when its slot is wanted for
 * another site, or when its browser is recycled or lost. Requests
 * beyond the cap wait in FIFO order, each with its own wait timeout; a waiting request can
 * be cancelled. The task's deadline (TASK_TIMEOUT) starts at grant and covers the whole
 * task: when it passes, or the page's renderer crashes, or the browser dies, the lease is
 * revoked: revoked_cb tells the task why, the page is torn down (JavaScript interrupted,
 * context disposed) and the slot is freed. Either way the task ends with pool_release().
 *
 * The browser is replaced after RECYCLE_UPTIME or RECYCLE_TASK_COUNT tasks, or on
 * pool_request_recycle(): the new browser is launched and made ready first, new leases go
 * to it, leases on the old one finish (bounded by their deadlines), then the old browser
 * is closed and its whole process tree confirmed gone. A browser that dies is relaunched
 * at once; repeated crashes back off exponentially up to 30 s.
 *
 * The browser runs only while it is needed (pool_set_wanted): the pool's user says whether
 * it wants one (e.g. whether any target it holds needs a browser); a lease requested while
 * none runs launches one whatever that says, so a lease never waits for a browser nobody
 * launches. Once it is not wanted and no lease is in use or waiting for idle_close_ms, the
 * browser is closed as a recycled one is (process tree confirmed gone).
 *
 * Callbacks (all from the loop, never from inside the call that registers them):
 * - granted_cb fires exactly once per pool_acquire() that returned non-NULL: status 0 with
 *   a usable page, or -ETIMEDOUT (waited longer than the lease timeout), -ECANCELED
 *   (pool_lease_cancel or pool closing), or the error that prevented opening the page.
 *   On error the lease is freed after the callback returns: do not release it.
 * - revoked_cb fires at most once, only after a successful grant and before the task's
 *   pool_release(): reason is "timeout", "target_crashed" or "browser_lost".
 * - After a successful grant the task calls pool_release() exactly once (from anywhere,
 *   including its own callbacks); the lease memory is the pool's from then on.
 */
#ifndef CDPILOT_POOL_POOL_H
#define CDPILOT_POOL_POOL_H

#include <stdint.h>
#include <uv.h>

#include "cdp/cdp_page.h"
#include "cdp/cdp_ws.h"
#include "pool/browser.h"

typedef struct pool pool_t;
typedef struct pool_lease pool_lease_t;

/* Why a browser was replaced; indexes pool_stats_t.recycles. */
enum pool_recycle_reason {
	POOL_RECYCLE_UPTIME = 0,
	POOL_RECYCLE_TASKS,
	POOL_RECYCLE_REQUESTED, /* pool_request_recycle(), e.g. by the watchdog or health grader */
	POOL_RECYCLE_STUCK,     /* contexts refused to close */
	POOL_RECYCLE_CRASH,     /* the browser died and was relaunched */
	POOL_RECYCLE_STALL,     /* the health grader saw no success while work was due */
	POOL_RECYCLE_PID_THRESHOLD, /* watchdog: too many processes */
	POOL_RECYCLE_RSS_LIMIT,     /* watchdog: browser tree over its memory limit */
	POOL_RECYCLE_PIDS_PRESSURE, /* watchdog: near the cgroup's pids.max */
	POOL_RECYCLE_NREASONS
};

/* Outcome of a task, as the task reports it in pool_release(); indexes the counters. */
enum pool_outcome {
	POOL_OK = 0,
	POOL_FAILED,         /* the task's own failure (HTTP error, bad page, ...) */
	POOL_TIMEOUT,        /* revoked: deadline */
	POOL_TARGET_CRASHED, /* revoked: renderer crash */
	POOL_BROWSER_LOST,   /* revoked: browser died (retryable) */
	POOL_NOUTCOMES
};

typedef struct pool_opts {
	unsigned concurrency_cap;      /* CONCURRENCY_CAP, 1..256, default 8 */
	unsigned watch_open_cap;       /* WATCH_OPEN_CONCURRENCY, 1..256, default 4: watch
	                                  leases whose page is opening at once; more wait, in
	                                  FIFO order, and without the lease timeout */
	uint32_t lease_timeout_ms;     /* LEASE_TIMEOUT_SECONDS, default 60 s */
	uint32_t task_timeout_ms;      /* TASK_TIMEOUT_SECONDS, default 30 s */
	uint64_t recycle_uptime_ms;    /* RECYCLE_UPTIME_SECONDS, default 21600 s; 0 = never */
	uint64_t recycle_task_count;   /* RECYCLE_TASK_COUNT, default 5000; 0 = never */
	uint32_t close_grace_ms;       /* a context not disposed by then is "stuck"; 5 s */
	uint32_t shutdown_grace_ms;    /* in-flight tasks may finish this long; 10 s */
	uint32_t move_grace_ms;        /* a watch lease asked to move (recycle) is revoked once
	                                  this long passed with no watch page opened, or ten
	                                  times this long after the ask: 30 s */
	uint32_t idle_close_ms;        /* BROWSER_IDLE_SECONDS, 0..86400, default 300 s: a browser
	                                  not wanted (pool_set_wanted) with no lease in use or
	                                  waiting is closed after this long; 0 = never closed */
	unsigned page_reuse;           /* PAGE_REUSE, 1..100000, default 50: tasks one page (and
	                                  its context) serves, for one site; 1: a fresh context
	                                  for every task */
	uint32_t page_idle_ms;         /* PAGE_IDLE_SECONDS, 1..3600, default 30: a kept page
	                                  unused this long is disposed */
	char block_resources[128];     /* BLOCK_RESOURCES, default "image,media,font"; "none" */
	char user_agent[512];          /* USER_AGENT, default "" (Chromium's) */
	int viewport_width;            /* VIEWPORT "WxH", default 1280x800 */
	int viewport_height;
	char extra_headers[2048];      /* EXTRA_HEADERS as a JSON object, default "" */
	/* The target policy (TARGET_ALLOW / TARGET_DENY), borrowed: it must outlive the pool;
	 * NULL (the default): none. On a browser the pool launched, every document request of
	 * its pages (each redirect hop, and navigations the page starts itself) whose URL's
	 * host the policy refuses is failed before it is sent, and the page's navigation fails
	 * with a message naming the URL and the rule (cdp_block_browser_ex). Chromium resolves
	 * names itself: a name that resolves to a denied address is not caught here. */
	const netpolicy_t *policy;
	browser_opts_t browser;
} pool_opts_t;

typedef struct pool_stats {
	unsigned leases_in_use, capacity, waiting;
	unsigned watch_leases;         /* watch leases granted or opening */
	unsigned watch_opening;        /* of which opening (at most watch_open_cap) */
	int paused;                    /* pool_set_paused() */
	uint64_t tasks[POOL_NOUTCOMES];
	uint64_t lease_timeouts;       /* requests that waited longer than the lease timeout */
	uint64_t browser_launches;
	uint64_t recycles[POOL_RECYCLE_NREASONS];
	uint64_t popups_closed, dialogs_dismissed, requests_blocked, stuck_contexts;
	uint64_t pages_reused;         /* leases granted a kept page (no new context) */
	unsigned pages_kept;           /* kept pages waiting for a task (in leases_in_use: no) */
	uint64_t browser_uptime_ms;    /* of the current browser; 0 if none is ready */
	uint64_t tasks_on_browser;     /* leases granted on the current browser */
	unsigned consecutive_crashes;
	int ready;                     /* a browser is connected and serving */
	int browser_wanted;            /* the last pool_set_wanted() (pool_start(): 1) */
	uint64_t idle_closes;          /* browsers closed because unwanted and idle */
} pool_stats_t;

typedef void (*pool_granted_cb)(pool_lease_t *lease, int status, const char *why, void *ud);
typedef void (*pool_revoked_cb)(pool_lease_t *lease, enum pool_outcome reason,
                                const char *why, void *ud);
typedef void (*pool_closed_cb)(pool_t *pool, void *ud);
/* A watch lease's browser is being replaced (recycle): open a new watch lease, move the
 * work there, then release this one, within the move grace (then it is revoked). */
typedef void (*pool_moved_cb)(pool_lease_t *lease, void *ud);

/* Defaults, then environment. Returns 0, or -EINVAL with err naming the variable, the value
 * and what was expected (every bad value is listed, separated by newlines). */
void pool_opts_init(pool_opts_t *o);
int pool_opts_from_env(pool_opts_t *o, char *err, size_t errlen);

/* ws is borrowed and must outlive the pool. NULL on -ENOMEM. */
pool_t *pool_new(uv_loop_t *loop, cdp_wsctx_t *ws, const pool_opts_t *opts);

/* Launches the first browser: pool_set_wanted(pool, 1). Leases may be requested at once:
 * they wait for it. Returns 0. */
int pool_start(pool_t *pool);

/*
 * Whether the pool's user wants a browser running; call it as often as the answer may have
 * changed (it is cheap and idempotent; the daemon calls it once a second). Until the first
 * call (or pool_start) no browser is wanted and none runs.
 * wanted 1: a browser is launched if none is running or launching (after a crash, when the
 * relaunch backoff allows). wanted 0: nothing happens at once; once no lease (task or
 * watch) has been in use or waiting for idle_close_ms, the browser is closed, its whole
 * process tree confirmed gone, and counted (pool_stats_t.idle_closes); a browser that dies
 * meanwhile is not relaunched. Either way pool_acquire*() launches a browser if none runs.
 */
void pool_set_wanted(pool_t *pool, int wanted);

/*
 * NULL if the pool is shutting down. task_timeout_ms 0: the pool's default. url: where the
 * task will go first, or NULL. On a browser the pool launched, the page is opened straight
 * there (see cdp_page_opts_t.url and cdp_hold_pages: one navigation instead of two, about
 * a fifth less Chromium work for a small page, with every setting and all hygiene in place
 * before its first request) and the grant comes once that navigation has committed; the
 * task's cdp_page_navigate() to the same URL then waits for its load. On an attached
 * browser (CDP_URL), whose other users' pages must not be held, about:blank first.
 */
pool_lease_t *pool_acquire(pool_t *pool, const char *url, uint32_t task_timeout_ms,
                           pool_granted_cb granted_cb, pool_revoked_cb revoked_cb, void *ud);

/* Per-lease page settings over the pool's own (NULL / 0 fields: the pool's). Copied by
 * pool_acquire_ex() and pool_acquire_watch_ex(); the caller's strings may go at once. */
typedef struct pool_page_settings {
	const char *user_agent;
	int viewport_width, viewport_height; /* both > 0, or both 0 (the pool's VIEWPORT) */
	/* Replaces BLOCK_RESOURCES for this page ("none": nothing blocked; else a list as
	 * BLOCK_RESOURCES takes), from its first request. On a browser the pool launched, a
	 * page whose list differs from the pool's opens at about:blank with request blocking
	 * of its own (its first navigation is then a real one, not adopted) and is exempt from
	 * the pool's browser-wide blocking; requests of its frames other than the main one
	 * still get the pool's list. */
	const char *block_resources;
	const char *extra_headers_json; /* a JSON object of strings merged over EXTRA_HEADERS
	                                   (its keys win, whatever their case) */
	const char *cookies_json;       /* as cdp_page_opts_t.cookies_json */
	int no_frames;                  /* as cdp_page_opts_t.no_frames (WATCH_FRAMES=off) */
	int fresh;                      /* pool_acquire_ex(): a new context for this task, not
	                                   kept after it (a verification that must not share a
	                                   page's cookies or storage) */
	int moving;                     /* pool_acquire_watch_ex(): this lease replaces one whose
	                                   browser is being recycled (moved_cb): it waits ahead
	                                   of the watch leases that do not, behind earlier moves */
} pool_page_settings_t;

/*
 * pool_acquire() with page settings for this lease (page may be NULL: the pool's). Returns
 * NULL, with a warning logged, also for settings that are not valid (a block list with an
 * unknown type, headers that are not a JSON object of strings, cookies that are not a JSON
 * array, a viewport out of 100..10000 or with one side only).
 */
pool_lease_t *pool_acquire_ex(pool_t *pool, const char *url, uint32_t task_timeout_ms,
                              const pool_page_settings_t *page, pool_granted_cb granted_cb,
                              pool_revoked_cb revoked_cb, void *ud);

/*
 * A watch lease: a long-lived page for a target that is watched rather than re-loaded.
 * Same callbacks and release as pool_acquire(), but it holds no CONCURRENCY_CAP slot
 * (the caller bounds watched pages itself: WATCH_CAP), has no task deadline once granted
 * (opening is bounded by the task timeout), and skips the FIFO of ordinary leases. At most
 * watch_open_cap watch leases are opening at once (a page open is a renderer started and
 * a document loaded: hundreds of them at once starve Chromium until every open times out);
 * the others wait for one of them to be granted or to fail, with no wait timeout. When
 * its browser is recycled, moved_cb asks the holder to move to the new browser (with a
 * watch lease whose page settings say moving, which waits ahead of new ones); a lease
 * not released is revoked with reason "timeout" once the move grace (move_grace_ms, 30 s)
 * has passed both since it was asked and since a watch page last finished opening (with
 * hundreds of watched pages, the new pages open watch_open_cap at a time, and an old page
 * stays while its replacement waits its turn and the opening goes on), or ten graces
 * after it was asked in any case.
 */
pool_lease_t *pool_acquire_watch(pool_t *pool, pool_granted_cb granted_cb,
                                 pool_revoked_cb revoked_cb, pool_moved_cb moved_cb, void *ud);
/* pool_acquire_watch() with page settings (as pool_acquire_ex()). */
pool_lease_t *pool_acquire_watch_ex(pool_t *pool, const pool_page_settings_t *page,
                                    pool_granted_cb granted_cb, pool_revoked_cb revoked_cb,
                                    pool_moved_cb moved_cb, void *ud);

/* Pauses (1) or resumes (0) granting new leases, e.g. near the cgroup's pids.max. Waiting
 * requests stay queued (bounded by their wait timeouts). */
void pool_set_paused(pool_t *pool, int paused);

/* Cancels a request not yet granted, whether it still waits or its page is opening:
 * granted_cb fires at once (inside this call) with -ECANCELED and no callback of this lease
 * fires after it, so the holder may free its state when this returns; a page that was
 * opening is disposed by the pool. No-op once granted (use pool_release). */
void pool_lease_cancel(pool_lease_t *lease);

/* The leased page (borrowed, valid until pool_release or revocation). */
cdp_page_t *pool_lease_page(pool_lease_t *lease);

/* Ends the task; outcome feeds the counters (ignored if the lease was revoked). With
 * POOL_TIMEOUT the page's running script is terminated before its context is disposed
 * (a context that does not close within the close grace recycles the browser, as ever).
 * With POOL_OK the page is kept for the next lease of its site if it can be (PAGE_REUSE
 * above 1, a URL of http or https without a fragment, the lease not fresh, fewer than
 * PAGE_REUSE tasks on it, its browser the current one, no operation running on it). */
void pool_release(pool_lease_t *lease, enum pool_outcome outcome);

/* Asks for a recycle (pre-warm, drain, close). Coalesced while one is under way. */
void pool_request_recycle(pool_t *pool, enum pool_recycle_reason reason);

/* Stops leasing: waiting requests fail with -ECANCELED and pool_acquire() returns NULL.
 * Leases in flight (opening or granted) finish within the shutdown grace (then they are
 * revoked with reason timeout). Then every browser is closed and its process tree
 * confirmed gone, cb fires once, and the pool is freed. */
void pool_close(pool_t *pool, pool_closed_cb cb, void *ud);

void pool_get_stats(const pool_t *pool, pool_stats_t *out);
/* Main pid of the current browser (0 if none), for the watchdog. */
pid_t pool_browser_pid(const pool_t *pool);
/* Main pids of every browser the pool owns (current, launching, draining, closing) until
 * its close is complete, for the watchdog's orphan check; returns how many (<= max). */
size_t pool_browser_pids(const pool_t *pool, pid_t *out, size_t max);
/* The current browser's connection (borrowed; NULL if none is ready), for probes. */
cdp_conn_t *pool_browser_conn(const pool_t *pool);

const char *pool_outcome_name(enum pool_outcome o);
const char *pool_recycle_reason_name(enum pool_recycle_reason r);

#endif
