/*
 * run_priv: the daemon's state, shared by the files of the run module (run.c drives it,
 * endpoints.c reports it). Not a public interface: nothing outside daemon/run*.c and
 * daemon/endpoints.c includes it.
 */
#ifndef CDPILOT_DAEMON_RUN_PRIV_H
#define CDPILOT_DAEMON_RUN_PRIV_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/run.h"
#include "daemon/sink.h"
#include "adapters/adapter.h"
#include "daemon/targets.h"
#include "util/fetch.h"
#include "util/prom.h"

#define RATE_WINDOW 10          /* seconds of task completions for tasks/s */
#define RUN_NBUCKETS 11         /* task duration histogram */


typedef struct run run_t;
typedef struct task task_t;
typedef struct watch watch_t;

typedef struct rtarget {
	struct rtarget *next;
	run_t *run;
	target_spec_t spec;
	char host[256];
	char parent[80];          /* id of the discovering target, "" for the file's */
	enum sched_class klass;   /* current (the adapter may have moved it) */
	uint64_t seq;
	json_t *last;             /* last snapshot published */
	uint64_t added_ms, last_ok_ms; /* loop time; last_ok_ms 0: never */
	char last_error[512];
	unsigned failures;
	unsigned refs;            /* the table + a running task */
	int removed;
	uint64_t fence;           /* SCHEDULE=redis: the fence of our last won claim; 0 none */
	int held;                 /* SCHEDULE=redis: our claim of the current run was won */
	int owner;                /* SCHEDULE=redis: our last answered claim was won */
	int resync;               /* SCHEDULE=redis: newly taken over, next write resyncs */
	task_t *task;
	watch_t *watch;
} rtarget_t;

struct task {
	run_t *run;
	rtarget_t *rt;
	pool_lease_t *lease;
	cdp_page_t *page;
	uint64_t started;         /* loop time */
	char url[2048];
	int op_pending;           /* a page operation's callback is due */
	int revoked;
	enum pool_outcome revoke_reason;
	char why[512];
};

enum watch_state { W_OPENING, W_LOADING, W_READY, W_CLOSED };

struct watch {
	run_t *run;
	rtarget_t *rt;            /* ref held */
	pool_lease_t *lease;
	cdp_page_t *page;
	enum watch_state state;
	cdp_listener_t *binding;
	uint64_t loaded_at;
	int busy;                 /* an operation on the page is running */
	int again;                /* a push came while busy */
	int sched_running;        /* the scheduler handed the target out; sched_done due */
	uint64_t op_started;
	watch_t *replaces;        /* the watch this one takes over from (recycle move) */
	watch_t *moving_to;
	unsigned open_failures;
	uv_timer_t retry;         /* reopen after a failure */
	int retry_armed;
	int closing;
};

struct run {
	uv_loop_t *loop;
	const run_opts_t *o;
	cdp_wsctx_t *ws;
	pool_t *pool;
	fetch_ctx_t *fetch;
	sink_t *sink;
	sched_t *nav, *wsched;
	health_t *health;
	rtarget_t *targets;
	size_t ntargets;
	unsigned inflight;        /* navigate/fetch tasks running */
	unsigned watches;         /* watched pages open or opening */
	uv_timer_t wake, tick;
	uv_signal_t sig_term, sig_int, sig_hup;
	int stopping;
	int closing_handles;
	int exit_code;
	uint64_t started_ms;
	uint64_t done_per_sec[RATE_WINDOW];
	uint64_t done_total, ok_total, fail_total, deltas_total;
	uint64_t last_success_ms;
	int status_line;
	int status_shown;
	/* reporting (endpoints.c) */
	struct httpd *httpd;
	struct wd *wd;
	store_t *store;
	share_t *share;           /* SCHEDULE=redis */
	unsigned claiming;        /* claims of navigate targets in flight (count as inflight) */
	uint64_t tasks_by[16][POOL_NOUTCOMES]; /* [adapter index][outcome] */
	uint64_t dur_buckets[RUN_NBUCKETS];    /* per-bucket task durations, see run_dur_bounds */
	uint64_t dur_count;
	double dur_sum_s;
	uint64_t snapshots_total;
	uint64_t probe_ok_ms;                  /* loop time of the last answered probe; 0 never */
	char probe_error[256];
	int probe_pending;
	uint64_t last_probe_ms;
	uint64_t failing_since;
};

extern const double run_dur_bounds[RUN_NBUCKETS];

/* Counts one finished task (navigate, fetch or watch extraction). */
void run__count_task(run_t *r, const adapter_t *ad, enum pool_outcome outcome,
                     uint64_t duration_ms);
/* Registers /metrics, /status, /healthz, /readyz on r->httpd. */
void run__routes(run_t *r);
/* Process tree, cgroup, own resources and store figures (from the watchdog and the
 * store) added to /status and /metrics. */
void run__status_extra(run_t *r, json_t *doc);
void run__metrics_extra(run_t *r, prom_buf_t *b);
/* Sends the readiness probe (a cheap CDP command) if none is pending. */
void run__probe(run_t *r);


#endif
