/*
 * run: `cdpilot run`, the monitoring daemon. Wires the modules on one loop:
 *
 *   targets file --> sched (navigate) --> pool lease --> adapter JS --> snapshot/delta --> sink
 *                \-> sched (watch)    --> watched page (long-lived lease, push binding) --/
 *
 * It owns every module it creates and is the only place where they meet: the scheduler
 * never sees the pool, the pool never sees targets, adapters never see I/O. Freshness
 * and health are graded every second; a stall asks the pool to recycle the browser.
 * SIGHUP, or a change of the targets file (it is watched, however it is replaced), re-reads
 * it (unchanged targets keep their state); SIGTERM/SIGINT
 * (or --duration) stop scheduling, let in-flight tasks finish within the shutdown grace,
 * close the browser and exit 0.
 */
#ifndef CDPILOT_DAEMON_RUN_H
#define CDPILOT_DAEMON_RUN_H

#include <stdio.h>
#include <uv.h>

#include "daemon/httpd.h"
#include "pool/pool.h"
#include "runner/runner.h"
#include "scheduler/health.h"
#include "scheduler/sched.h"
#include "store/share.h"
#include "store/store.h"
#include "util/errlist.h"
#include "util/netpolicy.h"
#include "watchdog/watchdog.h"

enum {
	RUN_EXIT_OK = 0,
	RUN_EXIT_FAILURE = 1,  /* could not start (browser, sink), or exited on health failure */
	RUN_EXIT_USAGE = 2,    /* bad arguments, settings or targets file */
};

typedef struct run_opts {
	char targets_path[4096];  /* --targets FILE / TARGETS_FILE */
	uint32_t targets_watch_ms; /* TARGETS_WATCH_MS, default 300: the file is re-read once
	                              changes to it have been quiet this long; 0: SIGHUP only */
	char output[4096];        /* --output FILE|- / OUTPUT; "" = no sink */
	double duration_s;        /* --duration S: stop after S seconds; 0 = until a signal */
	int status_line;          /* --status / --no-status; -1: when stderr is a terminal */
	unsigned watch_cap;       /* WATCH_CAP, default 64 (1..1024) */
	unsigned fetch_cap;       /* FETCH_CONCURRENCY, default 16 (1..1024): fetch tasks
	                             (adapters without a browser) at once */
	unsigned failing_percent; /* FAILING_LEASE_PERCENT, default 50 (1..100): share of
	                             each task bound that failing targets may hold */
	uint32_t watch_reload_ms; /* WATCH_RELOAD_SECONDS, default 600 */
	int watch_frames;         /* WATCH_FRAMES on (1, default) or off (0) */
	uint32_t verify_unchanged_ms; /* WATCH_VERIFY_UNCHANGED_SECONDS, default 0 (three
	                                 intervals) */
	uint32_t verify_max_ms;   /* WATCH_VERIFY_SECONDS, default 60 (0: off) */
	uint32_t adapt_verify_ms; /* ADAPTIVE_VERIFY_SECONDS, default 60 */
	uint32_t watch_navigate_ms; /* WATCH_FROZEN_NAVIGATE_SECONDS, default 600 */
	unsigned discover_max_children; /* DISCOVER_MAX_CHILDREN, default 500 (1..100000):
	                                   targets one discovering target may have */
	int exit_on_health_failure;  /* EXIT_ON_HEALTH_FAILURE 0|1, default 0 */
	uint32_t health_exit_ms;     /* HEALTH_FAILURE_EXIT_SECONDS, default 300: how long
	                                `failing` lasts before that exit */
	const netpolicy_t *policy;   /* TARGET_ALLOW / TARGET_DENY: static storage, also set
	                                as the targets module's (targets_set_policy) */
	pool_opts_t pool;
	wd_opts_t wd;
	httpd_opts_t http;
	int use_store;               /* REDIS_URL is set: publish to Redis too */
	store_opts_t store;
	int shared_schedule;         /* SCHEDULE=redis (needs REDIS_URL); default local */
	share_opts_t share;
	sched_opts_t sched;
	health_opts_t health;
} run_opts_t;

/* Settings from the environment, then arguments (argv[0] is "run"). Every bad value is
 * added to errs. Also makes TARGET_ALLOW / TARGET_DENY the policy every targets parse
 * applies (targets_set_policy; the default policy when they are bad). Returns 0, 1
 * (--help printed) or -EINVAL. */
int run_parse_args(int argc, char **argv, run_opts_t *o, errlist_t *errs);
void run_usage(FILE *f);

/* The runner's options from the daemon's (runner_opts_init(), then o's settings): one
 * place for `cdpilot run` and `cdpilot try`, so both run targets alike. */
void run_runner_opts(const run_opts_t *o, runner_opts_t *ro);

/* Runs the daemon until it is told to stop; returns the process exit code. */
int run_main(uv_loop_t *loop, const run_opts_t *o);

#endif
