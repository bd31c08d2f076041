/*
 * run_priv: the daemon's state, shared by the files of the run module (run.c drives it,
 * endpoints.c reports it). Not a public interface: nothing outside daemon/run*.c and
 * daemon/endpoints.c includes it.
 */
#ifndef CDPILOT_DAEMON_RUN_PRIV_H
#define CDPILOT_DAEMON_RUN_PRIV_H

#include <jansson.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "daemon/run.h"
#include "daemon/sink.h"
#include "adapters/adapter.h"
#include "daemon/targets.h"
#include "util/fetch.h"
#include "util/prom.h"

#include "runner/runner.h"
#include "entity/entity.h"

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
	int reloading, reload_rc;
	unsigned reload_why, reload_again; /* RUN_RELOAD_*: this reload's, and the next's */
	target_set_t reload_set;
	errlist_t reload_errs;
	uint64_t reload_began_ms;
	/* The targets file as stat() saw it just before the last read (seen_errno: that
	 * stat's errno, 0 if it succeeded), and the reload's own stat (worker thread); a
	 * watch reload that finds the file as it was is skipped (reload_skipped). */
	struct stat seen, reload_st;
	int seen_errno, reload_st_errno, reload_skipped;
	uint64_t warned_unlinked_ino; /* the inode the stale-mount warning was given for */
	/* TARGETS_WATCH_MS: the file's directory (renames over it, in-place writes) and the
	 * file itself (writes through another mount of it, its last link going) are watched;
	 * a reload starts once they have been quiet for TARGETS_WATCH_MS. */
	uv_fs_event_t watch_dir, watch_file;
	uv_timer_t watch_quiet;
	int watch_dir_on, watch_file_on, watch_inited;
	uint64_t watch_first_ms;      /* first event of the pending burst; 0 none */
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
	uint64_t share_gen;
	uint64_t refused_seen, refused_base; /* store writes refused: seen, at the episode's start */
	uint64_t refused_since_ms, refused_last_ms;       /* the runner's targets_gen last given to the share */
	entity_engine_t *entities; /* run_entities.c; not fed with SCHEDULE=redis */
	int entities_warned;      /* the SCHEDULE=redis warning was given */
	uint64_t tasks_by[16][POOL_NOUTCOMES]; /* [adapter index][outcome] */
	uint64_t dur_buckets[RUN_NBUCKETS];    /* per-bucket task durations, see run_dur_bounds */
	uint64_t dur_count;
	double dur_sum_s;
	uint64_t probe_ok_ms;                  /* loop time of the last answered probe; 0 never */
	char probe_error[256];
	int probe_pending;
	uint64_t last_probe_ms;
	uint64_t failing_since;
	size_t targets_held;      /* targets health graded at the last tick (held: runner.h) */
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
/* 1 when /readyz answers 200; why says why (or why not). endpoints.c */
int run__ready(const run_t *r, const char **why);
/* The /metrics handler (metrics.c). */
void run__h_metrics(void *ud, const char *path, const char *query, httpd_reply_t *reply);
/* run_reload.c: reads the targets file off the loop and reconciles it (one reload at a
 * time; one asked for during a reload runs after it). why: RUN_RELOAD_SIGHUP always reads
 * it; RUN_RELOAD_WATCH only if the file is not as it was at the last read. */
enum { RUN_RELOAD_SIGHUP = 1, RUN_RELOAD_WATCH = 2 };
void run__start_reload(run_t *r, unsigned why);
/* The file as it is before the first read (blocking stat: before the loop runs). */
void run__note_targets_file(run_t *r);
/* Starts watching the targets file when TARGETS_WATCH_MS is not 0 (warns, and goes on
 * with SIGHUP alone, when it cannot); run__watch_close() closes its handles. */
void run__watch_start(run_t *r);
void run__watch_close(run_t *r);
/* run_entities.c: the entity engine, fed by the runner's callbacks (docs/entities.md).
 * reconcile takes set's specs and releases the rest. */
/* run_adapt.c: adaptive targets: a target's "adaptive" object in /status (new reference;
 * NULL if it is not adaptive), and their metrics */
json_t *run__adapt_status(const runner_target_view_t *v);
void run__adapt_metrics(prom_buf_t *b, const runner_stats_t *rs);
/* run_share.c: SCHEDULE=redis */
void run__share_callbacks(run_t *r, runner_callbacks_t *cbs);
void run__share_new(run_t *r);
void run__share_tick(run_t *r);
void run__share_metrics(run_t *r, prom_buf_t *b);
void run__share_status(run_t *r, json_t *doc);

void run__entities_new(run_t *r);
void run__entities_free(run_t *r);
void run__entities_reconcile(run_t *r, entity_set_t *set, const char *source);
void run__entities_on_redis(void *ud, const json_t *obj, const char *errors);
void run__entities_on_data(run_t *r, const json_t *snap);
void run__entities_on_status(void *ud, const runner_target_view_t *v, const char *event);
void run__entities_on_forget(run_t *r, const char *id);
void run__entities_tick(run_t *r);
void run__entities_status(run_t *r, json_t *doc);
void run__entities_metrics(run_t *r, prom_buf_t *b);
/* Sends the readiness probe (a cheap CDP command) if none is pending. */
void run__probe(run_t *r);


#endif
