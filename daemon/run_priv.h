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

#include "runner/runner.h"

#define RUN_NBUCKETS 11         /* task duration histogram */

typedef struct run run_t;

/* The daemon: options, the modules it owns and wires, signals, the tick, health, the
 * endpoints' figures and the stop order. The execution (targets, tasks, watched pages,
 * publishing) is the runner's (runner/runner.h). */
struct run {
	uv_loop_t *loop;
	const run_opts_t *o;
	cdp_wsctx_t *ws;
	pool_t *pool;
	fetch_ctx_t *fetch;
	sink_t *sink;
	runner_t *runner;
	health_t *health;
	uv_timer_t tick;
	uv_signal_t sig_term, sig_int, sig_hup;
	/* SIGHUP: the targets file is read and validated on a libuv worker thread (reload_req)
	 * into reload_set / reload_errs / reload_rc, then reconciled on the loop; a SIGHUP
	 * during a reload asks for one more (reload_again). */
	uv_work_t reload_req;
	int reloading, reload_again, reload_rc;
	target_set_t reload_set;
	errlist_t reload_errs;
	uint64_t reload_began_ms;
	/* The Redis targets hash: parsed on a worker thread too (redis_req: redis_obj into
	 * redis_set / redis_errs); the hash as it changed during a parse waits in redis_next. */
	uv_work_t redis_req;
	int redis_parsing;
	json_t *redis_obj, *redis_next;
	target_set_t redis_set;
	errlist_t redis_errs;
	uint64_t redis_began_ms;
	int stopping;
	int closing_handles;
	int exit_code;
	uint64_t started_ms;
	int status_line;
	int status_shown;
	/* reporting (endpoints.c) */
	struct httpd *httpd;
	struct wd *wd;
	store_t *store;
	share_t *share;           /* SCHEDULE=redis */
	uint64_t tasks_by[16][POOL_NOUTCOMES]; /* [adapter index][outcome] */
	uint64_t dur_buckets[RUN_NBUCKETS];    /* per-bucket task durations, see run_dur_bounds */
	uint64_t dur_count;
	double dur_sum_s;
	uint64_t probe_ok_ms;                  /* loop time of the last answered probe; 0 never */
	char probe_error[256];
	int probe_pending;
	uint64_t last_probe_ms;
	uint64_t failing_since;
};

extern const double run_dur_bounds[RUN_NBUCKETS];

/* Counts one finished task (navigate, fetch or watch extraction): runner_callbacks_t's
 * task_done, ud is the run_t. */
void run__count_task(void *ud, const adapter_t *ad, enum pool_outcome outcome,
                     uint64_t duration_ms);
/* Registers /metrics, /status, /healthz, /readyz on r->httpd. */
void run__routes(run_t *r);
/* target_status.c: callbacks.status: the target's status hash and events in Redis. */
void run__on_target_status(void *ud, const runner_target_view_t *v, const char *event);
/* Process tree, cgroup, own resources and store figures (from the watchdog and the
 * store) added to /status and /metrics. */
void run__status_extra(run_t *r, json_t *doc);
void run__metrics_extra(run_t *r, prom_buf_t *b);
/* Sends the readiness probe (a cheap CDP command) if none is pending. */
void run__probe(run_t *r);


#endif
