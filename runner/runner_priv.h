/*
 * runner_priv: the structures the files of runner/ share, and their internal functions.
 * Not a public interface: nothing outside runner/ includes it.
 *
 * Who calls whom (re-entrancy): a task's or watched page's completion publishes
 * (publish.c), which for a discovering target reconciles its children (rtable.c), which
 * may remove targets and close their watched pages; the pump (pump.c) runs at the end of
 * each completion, of each reconcile and from the wake timer, and is the only caller of
 * sched_next(). A target is freed only when its last reference goes (runner__rt_unref):
 * the table holds one, and so does each task, watched page and claim that names it, so a
 * target removed while one of them runs stays valid (marked removed) until it ends.
 */
#ifndef CDPILOT_RUNNER_RUNNER_PRIV_H
#define CDPILOT_RUNNER_RUNNER_PRIV_H

#include <stdint.h>
#include <sys/time.h>

#include "cdp/cdp_conn.h"
#include "cdp/cdp_page.h"
#include "runner/runner.h"

#define RUNNER_RATE_WINDOW 10   /* seconds of task completions for tasks/s */
#define WATCH_RETRY_MAX_MS 30000u
#define PUSH_BINDING "__cdpilotPush"

/* Which scheduler holds a target: browser tasks, fetch tasks, watched pages. */
enum rkind { RK_NAV, RK_FETCH, RK_WATCH, RK_N };

typedef struct task task_t;
typedef struct watch watch_t;

/* An adaptive target's endpoint (runner/adapt.c): learned from a page read, read with
 * libcurl while its checks against the page agree. */
typedef struct adapt {
	json_t *map;              /* the epmap mapping (adapters/epmap.h); NULL: none now */
	char url[2048];           /* the endpoint, while map is set */
	size_t body_len;          /* its body when learned */
	int in_fetch;             /* its runs are endpoint reads: it is in the fetch scheduler */
	int reset;                /* its spec changed during a run: forget the endpoint after */
	unsigned gen;             /* bumped when a spec change forgets what was learned: a
	                             learning, check or page read started under an older one
	                             has no say (its page may be another one) */
	int learning;             /* a learning runs (candidates being fetched) */
	int checking;             /* a check runs (a page read, then an endpoint read) */
	int suspect;              /* the last check differed: checked again at once, and its
	                             endpoint reads are not verified meanwhile */
	unsigned attempts;        /* learnings failed and endpoints dropped in a row: backoff */
	unsigned read_failures;   /* endpoint reads failed in a row */
	uint64_t retry_ms;        /* loop time: no learning before */
	uint64_t checked_ms;      /* loop time of the last agreement (a check, or the learning) */
	uint64_t check_due_ms;    /* loop time the next check is due */
	int64_t learned_unix, checked_unix; /* Unix ms; 0 never */
	const char *state;        /* "learning", "learned", "not_learned", "dropped" (static) */
	char reason[512];         /* why not learned or dropped; "" */
} adapt_t;

typedef struct rtarget {
	struct rtarget *next, *prev; /* the table's list */
	struct rtarget *hnext;    /* the next in its bucket of the id index */
	uint64_t mark;            /* reconcile(): the pass that last saw it in its list */
	int going;                /* reconcile(): to be removed by this pass */
	runner_t *runner;
	target_spec_t spec;
	char host[256];
	char parent[80];          /* the source: "" the file, "@redis", or the parent's id */
	enum sched_class klass;   /* current (the adapter may have moved it) */
	uint64_t seq;
	json_t *last;             /* last snapshot published */
	uint64_t added_ms, last_ok_ms; /* loop time; last_ok_ms 0: never */
	/* the three ages (runner.h): loop times (0: never) and, for snapshots, Unix ms */
	uint64_t changed_ms, verified_ms;
	int64_t changed_unix, verified_unix;
	uint64_t confirmed_ms;    /* watch: the page last shown current (fresh load, or a
	                             verification that agreed); 0 never */
	task_t *verify;           /* watch: the verification read running; NULL none */
	int verify_wanted;        /* watch: a verification is due and waits for a slot */
	unsigned freezes;         /* watch: freezes in a row (forgotten once the page has been
	                             confirmed WATCH_VERIFY_SECONDS after the last one) */
	uint64_t frozen_ms;       /* watch: frozen since (loop time); 0 not frozen */
	uint64_t last_freeze_ms;  /* watch: loop time of the last freeze; 0 none */
	json_t *suspect;          /* watch: a verification that differed, {"raw", "data",
	                             "url", "started"}, waiting for a re-read of the page */
	uint64_t navigate_until;  /* watch: read in navigate mode until (loop time) */
	int overflow;             /* watch: over WATCH_CAP, read in navigate mode */
	int64_t read_unix, failing_since_unix; /* Unix ms of the last read, of the first
	                             failure of the current run of failures; 0 none */
	const char *state;        /* as last reported through callbacks.status (static) */
	char last_error[512];
	const char *last_kind;    /* the last failure's kind (runner.h), static; "" when ok */
	enum pool_outcome last_outcome; /* of the last run: POOL_OK, or its failure's cause */
	unsigned failures;
	unsigned refs;            /* the table + a running task, watched page or claim */
	int removed;
	uint64_t fence;           /* SCHEDULE=redis: the fence of our last won claim; 0 none */
	int held;                 /* SCHEDULE=redis: our claim of the current run was won */
	int owner;                /* SCHEDULE=redis: this instance holds it */
	uint64_t lease_until;     /* SCHEDULE=redis: a run may start without asking until */
	uint64_t held_since_ms;   /* SCHEDULE=redis: when this instance took it */
	int resync;               /* SCHEDULE=redis: newly taken over, next write resyncs */
	int failing_run;          /* this run was handed out failing: 1 + its rkind; 0 not */
	task_t *task;
	watch_t *watch;
	adapt_t *adapt;           /* "adaptive": true (or its endpoint still to be moved off) */
} rtarget_t;

/* Why a task runs: a scheduled run of its target (navigate or fetch, or a watched target
 * read in navigate mode), or a verification of a watched page (verify.c): no scheduler
 * run, its result compared, not published as such. */
enum task_purpose { TP_RUN, TP_VERIFY, TP_CHECK /* an adaptive target's page check */ };

struct task {
	runner_t *runner;
	rtarget_t *rt;
	enum rkind kind;          /* RK_NAV or RK_FETCH */
	enum task_purpose purpose;
	pool_lease_t *lease;
	cdp_page_t *page;
	uint64_t started;         /* loop time */
	char url[2048];
	int op_pending;           /* a page operation's callback is due */
	int revoked;
	enum pool_outcome revoke_reason;
	char why[512];
	const char *fail_kind;    /* the failure's kind (runner.h) if known; NULL: by outcome */
	int endpoint;             /* an adaptive target's endpoint read (adapt.c) */
	enum pool_outcome learn_out; /* a page read whose endpoint is being looked for: its
	                                outcome, told once the page has answered */
	unsigned adapt_gen;       /* its target's adapt_t.gen when it started */
};

/* A watched page's states; watch_set_state() (watch.c) checks each move and logs it. */
enum watch_state { W_OPENING, W_LOADING, W_READY, W_CLOSED };

struct watch {
	runner_t *runner;
	rtarget_t *rt;            /* ref held */
	pool_lease_t *lease;
	cdp_page_t *page;
	enum watch_state state;
	cdp_listener_t *binding;
	uint64_t loaded_at;
	int busy;                 /* an operation on the page is running */
	int again;                /* a push came while busy */
	int sched_running;        /* the scheduler handed the target out; sched_done due */
	int pushed;               /* the read running was asked for by the page (push) */
	int fresh;                /* the next read is the first since the page loaded */
	int reload_asked;         /* reload once the page is ready (a freeze during a load) */
	uint64_t op_started;
	watch_t *replaces;        /* the watch this one takes over from (recycle move) */
	watch_t *moving_to;
	unsigned open_failures;
	uv_timer_t retry;         /* reopen after a failure */
	int closing;
};

struct runner {
	uv_loop_t *loop;
	runner_opts_t o;
	runner_callbacks_t cbs;
	pool_t *pool;             /* borrowed */
	fetch_ctx_t *fetch;       /* borrowed */
	sched_t *sched[RK_N];
	rtarget_t *targets;
	size_t ntargets;
	uint64_t targets_gen;     /* + 1 at each target added or removed */
	rtarget_t **index;        /* by id: nindex buckets (a power of two), chained by hnext */
	size_t nindex;
	uint64_t reconcile_pass;  /* counts reconcile() calls, for rtarget_t.mark */
	unsigned running[RK_N];   /* tasks running (RK_NAV, RK_FETCH) */
	unsigned claiming[RK_N];  /* claims in flight, by the kind they are for */
	unsigned failing[RK_N];   /* of running + claiming, runs of failing targets */
	unsigned watches;         /* watched pages open or opening */
	unsigned handles;         /* open uv handles: wake + each watched page's timer */
	uv_timer_t wake;
	int started, stopping, closing;
	void (*close_cb)(void *ud);
	void *close_ud;
	uint64_t done_per_sec[RUNNER_RATE_WINDOW];
	uint64_t done_total, ok_total, fail_total, deltas_total, snapshots_total;
	unsigned verifying;       /* verification reads running (at most verify_cap()) */
	unsigned verify_wanted;   /* targets whose verification waits for a slot */
	uint64_t verify_total[3]; /* verification reads: agreed, frozen, failed */
	uint64_t frozen_total;    /* watched pages found frozen */
	uint64_t unchanged_skipped; /* push reads that found the data unchanged */
	uint64_t discover_capped;   /* listings over DISCOVER_MAX_CHILDREN */
	struct {
		uint64_t at, who;     /* loop time, hash of the target's id */
	} freeze_ring[16];        /* the last freezes: many pages at once recycle the browser */
	unsigned freeze_next;
	uint64_t last_success_ms, last_verified_ms;
	/* adaptive targets (adapt.c) */
	unsigned adapt_checking;  /* checks running (bounded with verifications) */
	uint64_t adapt_next_ms;   /* loop time of the next check due; 0: look at every pump */
	uint64_t adapt_reads[2];  /* successful reads of adaptive targets: endpoint, page */
	uint64_t adapt_learned, adapt_learn_failed, adapt_dropped;
	uint64_t adapt_checks[3]; /* checks: agreed, differed, failed */
};

static inline uint64_t now_ms(runner_t *r)
{
	return uv_now(r->loop);
}

static inline int64_t unix_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static inline uint32_t class_interval(runner_t *r, const rtarget_t *rt)
{
	return rt->spec.interval_ms ? rt->spec.interval_ms : r->o.sched.interval_ms[rt->klass];
}

static inline enum rkind spec_kind(const target_spec_t *s)
{
	if (s->mode == TARGETS_WATCH)
		return RK_WATCH;
	return s->adapter->needs_browser || s->discover ? RK_NAV : RK_FETCH;
}

/* The scheduler a target is in now: its spec's, or fetch while an adaptive target reads
 * its endpoint. */
static inline enum rkind rt_kind(const rtarget_t *rt)
{
	return rt->adapt && rt->adapt->in_fetch ? RK_FETCH : spec_kind(&rt->spec);
}

static inline sched_t *sched_of(runner_t *r, const rtarget_t *rt)
{
	return r->sched[rt_kind(rt)];
}

/* rtable.c: the targets table */
/* The target with this id, or NULL: a lookup in the id index, O(1). */
rtarget_t *runner__find_target(runner_t *r, const char *id);
/* Frees the id index (runner_close, once the table is empty). */
void runner__index_release(runner_t *r);
void runner__rt_unref(rtarget_t *rt);
void runner__target_remove(runner_t *r, rtarget_t *rt);
void runner__discovered(runner_t *r, rtarget_t *rt, json_t *children);
/* publish.c: results, the only place they leave the runner */
void runner__record_done(runner_t *r, int ok);
/* A run of rt failed with outcome out (its cause) and message why: counted, logged and
 * kept for /status. */
void runner__target_failed(runner_t *r, rtarget_t *rt, enum pool_outcome out, const char *why);
/* The same with the failure's kind (RUNNER_KIND_*, runner.h); runner__target_failed() takes
 * it from the outcome (timeout, browser, failed). */
void runner__target_failed_as(runner_t *r, rtarget_t *rt, enum pool_outcome out,
                              const char *kind, const char *why);
/* Flags of runner__publish(). */
enum {
	PUB_VERIFIED = 1,  /* the read is known to reflect the source (a fresh navigation) */
	PUB_IF_CHANGED = 2 /* publish only if the data changed (push reads); the ages move */
};
int runner__publish(runner_t *r, rtarget_t *rt, const json_t *raw, const char *url,
                    uint64_t started, unsigned flags);
/* runner__publish() of data already normalised (an endpoint read, adapt.c): stolen. */
int runner__publish_data(runner_t *r, rtarget_t *rt, json_t *data, const char *url,
                         uint64_t started, unsigned flags);
/* The adapter's data of a raw value (new reference), or NULL with why filled. */
json_t *runner__normalise(rtarget_t *rt, const json_t *raw, char *why, size_t len);
void runner__task_done(runner_t *r, const adapter_t *ad, enum pool_outcome outcome,
                       uint64_t duration_ms);
/* The outcome a failed operation's status stands for, by cause: -ETIMEDOUT timeout, a
 * dropped CDP connection browser_lost, a renderer crash target_crashed, anything else
 * (0 included: a failure of the page's own, such as an HTTP error) failed. */
enum pool_outcome runner__outcome_of(int status);
/* task.c: navigate and fetch tasks */
void runner__task_start(runner_t *r, rtarget_t *rt, enum rkind kind);
/* A navigate task for a verification of rt's watched page (verify.c decides when). */
void runner__task_start_verify(runner_t *r, rtarget_t *rt);
/* verify.c: verification of watched pages */
/* A watched read of rt that began at read_started ended (ok or not): settles a
 * verification that differed, if the read began after it. */
void runner__verify_recheck_done(runner_t *r, rtarget_t *rt, int ok, uint64_t read_started);
/* How long a watched target's data may stay unchanged before it is verified. */
uint32_t runner__unchanged_ms(runner_t *r, const rtarget_t *rt);
/* After a watched read of rt: if a verification is due, it waits in line for a slot. */
void runner__verify_maybe(runner_t *r, rtarget_t *rt);
/* Starts waiting verifications while there is room, longest unconfirmed first. */
void runner__verify_pump(runner_t *r);
/* Verification reads (and adaptive checks) that may run at once, of a pool of capacity. */
unsigned runner__verify_cap(runner_t *r, unsigned capacity);
/* A verification read of rt ended: with its raw value (read at url), or raw NULL and
 * why it failed. */
void runner__verify_done(runner_t *r, rtarget_t *rt, const json_t *raw, const char *why,
                         const char *url, uint64_t started);
/* 1 if rt, a watched target, is read in navigate mode now (over WATCH_CAP, or its watch
 * kept freezing). */
int runner__watch_navigates(runner_t *r, rtarget_t *rt);
/* watch.c: reload the watched page (fresh = a new context too). */
void runner__watch_reload(watch_t *w, int new_context);
/* watch.c: reads the watched page again now (or after the read running). */
void runner__watch_reread(watch_t *w);
/* task.c: a navigate task reading rt's page for a check of its endpoint (adapt.c). */
void runner__task_start_check(runner_t *r, rtarget_t *rt);
/* adapt.c: adaptive targets (docs/targets.md "adaptive") */
/* The expression that lists the page's fetch/XHR URLs (a JSON array), for learning. */
extern const char runner__adapt_urls_js[];
/* rt's state for its spec (a new target, or a changed spec: the endpoint is forgotten
 * unless only the schedule changed: class, interval_seconds, timeout_seconds).
 * running: a run of rt is handed out. Returns 1 if rt must leave the scheduler it is in
 * (the caller moves it to its spec's), else 0. */
int runner__adapt_respec(runner_t *r, rtarget_t *rt, const target_spec_t *spec, int running);
void runner__adapt_free(rtarget_t *rt);
/* 1 if rt's page read that just published, started at generation gen (adapt_t.gen),
 * should look for its endpoint. */
int runner__adapt_wants_learn(runner_t *r, rtarget_t *rt, unsigned gen);
/* The page's fetch/XHR URLs (runner__adapt_urls_js's value, borrowed; NULL if it
 * failed), of a page read started at generation gen: learning runs on from here without
 * the page, and what it learns is kept only if rt's spec has not changed meanwhile. */
void runner__adapt_learn(runner_t *r, rtarget_t *rt, const json_t *urls, unsigned gen);
/* An endpoint read's parsed body (borrowed): published, or the target failed. */
enum pool_outcome runner__adapt_publish(runner_t *r, rtarget_t *rt, const json_t *body,
                                        const char *url, uint64_t started);
/* An endpoint read failed (why): counted, the endpoint dropped after a few in a row. */
void runner__adapt_read_failed(runner_t *r, rtarget_t *rt, const char *why);
/* A page read of rt (TP_RUN) succeeded: counted. */
void runner__adapt_page_read(runner_t *r, rtarget_t *rt);
/* A check's page read, started at generation gen, ended: its raw value, or NULL and why;
 * the endpoint is read next. A check of an older generation gives no verdict. */
void runner__adapt_checked_page(runner_t *r, rtarget_t *rt, const json_t *raw,
                                const char *why, unsigned gen);
/* Moves rt between the navigate and fetch schedulers if its endpoint came or went, once no
 * run of it is handed out. After each run, learning and check. */
void runner__adapt_settle(runner_t *r, rtarget_t *rt);
/* Starts due checks while verification slots are free, the least recently checked
 * first. From the pump. */
void runner__adapt_pump(runner_t *r);
/* pageread.c: the page read of a target, shared by task.c and watch.c */
int runner__nav_failure(const cdp_nav_result_t *res, const char *url, char *msg, size_t len);
/* Fills what rt's read asks after the navigation (req's url and timeouts are the
 * caller's): its actions, its wait_for (visible, or attached if the target says so), and
 * the adapter's extraction (an expression, or a function called with its arguments) or,
 * for a listing, its discovery. Pointers borrow from rt's spec. */
void runner__read_req(const rtarget_t *rt, cdp_read_req_t *req);
/* Extracts rt's data from page as it is (a watched page's read): the adapter's expression
 * evaluated, or its function called. The cdp operation's return and callback. */
int runner__extract(cdp_page_t *page, const rtarget_t *rt, uint32_t timeout_ms,
                    cdp_page_eval_cb cb, void *ud);
/* A failed extraction's message (into msg) and kind (RUNNER_KIND_*): script for an
 * exception or a value that is not a JSON object of at most ADAPTER_VALUE_CAP bytes,
 * timeout for one that never returned. */
const char *runner__eval_failure(const rtarget_t *rt, int status, const char *why, char *msg,
                                 size_t len);
/* The target's own page settings for its leases (user agent, viewport, blocking, headers,
 * cookies; NULL/0 where it sets none), borrowed from its spec. */
void runner__page_settings(const rtarget_t *rt, pool_page_settings_t *out);
/* A failed read's message (into msg) and kind, by the step that failed. */
const char *runner__read_failure(const cdp_read_result_t *res, const rtarget_t *rt,
                                 const char *url, char *msg, size_t len);
/* watch.c: watched pages */
void runner__watch_open(runner_t *r, rtarget_t *rt, watch_t *replaces);
void runner__watch_close(watch_t *w);
void runner__watch_due(runner_t *r, rtarget_t *rt);
/* claim.c: the shared schedule */
void runner__share_run_over(runner_t *r, rtarget_t *rt);
void runner__watch_sched_done(runner_t *r, rtarget_t *rt, int ok);
void runner__claim(runner_t *r, rtarget_t *rt, enum rkind kind);
/* This instance runs rt: always on a local schedule; with SCHEDULE=redis it holds rt, or
 * the listing that discovered it. */
int runner__holds(runner_t *r, const rtarget_t *rt);
/* pump.c: the pump */
void runner__pump(runner_t *r);
/* A run of rt handed out by the pump is over (ended, or deferred by a claim). */
void runner__run_over(runner_t *r, rtarget_t *rt);
/* Pumps soon, from the loop (the wake timer at 0). */
void runner__kick(runner_t *r);
/* runner.c: a target as /status and callbacks.status show it */
void runner__view(runner_t *r, rtarget_t *rt, runner_target_view_t *out);
/* runner.c: reports rt's status through callbacks.status, with an event if its state
 * changed. After each read, failure and verification. */
void runner__status_note(runner_t *r, rtarget_t *rt);
/* runner.c: a uv handle of the runner's has closed; the close may finish */
void runner__handle_closed(runner_t *r);
void runner__maybe_finish_close(runner_t *r);

#endif
