/*
 * metrics: the daemon's /metrics (Prometheus text, names in docs/metrics.md): the work and
 * its ages, the results, the browser and the pool, health, the process tree, the cgroup,
 * cdpilot itself and the store. Moved out of endpoints.c unchanged.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/adapter.h"
#include "daemon/httpd.h"
#include "daemon/run_priv.h"
#include "util/log.h"
#include "util/prom.h"
#include "watchdog/watchdog.h"

/* ---- helpers ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

typedef struct class_ages {
	int klass;                /* < 0: every class */
	enum runner_age which;
	uint64_t now, *v;
	size_t n;
} class_ages_t;

static void add_age(const runner_target_view_t *t, void *ud)
{
	class_ages_t *a = ud;
	/* SCHEDULE=redis: the targets this instance holds (the others' ages are the holders'
	 * to report: here they are only what this instance last saw) */
	if (t->held && (a->klass < 0 || (int)t->klass == a->klass))
		a->v[a->n++] = runner_view_age_held(t, a->which, a->now);
}

/* median, p95 and max age (ms, which of the three) of the targets of one class (all
 * classes: klass < 0). */
static size_t ages_of(const run_t *r, int klass, enum runner_age which, uint64_t out[3])
{
	runner_stats_t rs;
	class_ages_t a = { .klass = klass, .which = which, .now = uv_now(r->loop) };
	uint64_t *v;
	size_t n;

	runner_get_stats(r->runner, &rs);
	v = a.v = calloc(rs.targets + 1, sizeof *v);
	if (!v)
		abort();
	runner_foreach_target(r->runner, add_age, &a);
	n = a.n;
	out[0] = out[1] = out[2] = 0;
	if (n) {
		qsort(v, n, sizeof *v, cmp_u64);
		out[0] = v[(n - 1) / 2];
		out[1] = v[(size_t)((n * 95 + 99) / 100) - 1];
		out[2] = v[n - 1];
	}
	free(v);
	return n;
}

/* ---- /metrics ---- */

static void gauge(prom_buf_t *b, const char *name, const char *help, double v)
{
	prom_header(b, name, "gauge", help);
	prom_sample(b, name, v, NULL);
}

static void counter(prom_buf_t *b, const char *name, const char *help, double v)
{
	prom_header(b, name, "counter", help);
	prom_sample(b, name, v, NULL);
}

static void count_class(const runner_target_view_t *v, void *ud)
{
	((unsigned *)ud)[v->klass]++;
}

/* Leases, watched pages, targets and queues by class. */
static void metrics_work(run_t *r, prom_buf_t *b, const pool_stats_t *ps,
                         const runner_stats_t *rs)
{
	unsigned tc[SCHED_NCLASSES] = { 0 };

	gauge(b, "cdpilot_leases_in_use", "Browser contexts leased to tasks now.",
	      ps->leases_in_use);
	gauge(b, "cdpilot_leases_capacity", "CONCURRENCY_CAP: most leases at once.",
	      ps->capacity);
	gauge(b, "cdpilot_leases_waiting", "Lease requests waiting for a free slot.",
	      ps->waiting);
	gauge(b, "cdpilot_watch_pages", "Watched pages open or opening (WATCH_CAP bounds them).",
	      rs->watches);
	gauge(b, "cdpilot_targets_failing", "Targets whose last run failed.",
	      rs->nav.failing + rs->watch.failing);
	gauge(b, "cdpilot_targets_backing_off",
	      "Targets whose runs failed twice or more in a row, put off beyond their interval.",
	      rs->nav.backing_off + rs->watch.backing_off);
	gauge(b, "cdpilot_failing_tasks",
	      "Tasks of failing targets running or being claimed (FAILING_LEASE_PERCENT bounds them).",
	      rs->failing_inflight);
	counter(b, "cdpilot_backoffs_total",
	        "Failed runs put off beyond their interval (FAIL_BACKOFF_CAP_SECONDS).",
	        (double)(rs->nav.backoffs + rs->watch.backoffs));
	prom_header(b, "cdpilot_targets", "gauge", "Targets by priority class.");
	prom_header(b, "cdpilot_queue_depth", "gauge",
	            "Targets due and waiting to start, by priority class.");
	prom_header(b, "cdpilot_queue_drops_total", "counter",
	            "Due targets dropped because MAX_QUEUE_DEPTH was reached, by class.");
	runner_foreach_target(r->runner, count_class, tc);
	for (int c = 0; c < SCHED_NCLASSES; c++)
		prom_sample(b, "cdpilot_targets", tc[c], "class",
		            sched_class_name((enum sched_class)c), NULL);
	for (int c = 0; c < SCHED_NCLASSES; c++)
		prom_sample(b, "cdpilot_queue_depth", rs->nav.queued[c] + rs->watch.queued[c],
		            "class", sched_class_name((enum sched_class)c), NULL);
	for (int c = 0; c < SCHED_NCLASSES; c++)
		prom_sample(b, "cdpilot_queue_drops_total",
		            (double)(rs->nav.drops[c] + rs->watch.drops[c]), "class",
		            sched_class_name((enum sched_class)c), NULL);
}

/* One age of the targets, as median, p95 and max by class. */
static void metrics_ages(const run_t *r, prom_buf_t *b, const char *name, enum runner_age which,
                         const char *help)
{
	prom_header(b, name, "gauge", help);
	for (int c = 0; c < SCHED_NCLASSES; c++) {
		uint64_t a[3];
		const char *cn = sched_class_name((enum sched_class)c);
		if (!ages_of(r, c, which, a))
			continue;
		prom_sample(b, name, a[0] / 1000.0, "class", cn, "stat", "median", NULL);
		prom_sample(b, name, a[1] / 1000.0, "class", cn, "stat", "p95", NULL);
		prom_sample(b, name, a[2] / 1000.0, "class", cn, "stat", "max", NULL);
	}
}

/* Tasks by adapter and outcome, their durations, data ages, snapshots and deltas. */
static void metrics_results(run_t *r, prom_buf_t *b, const runner_stats_t *rs)
{
	size_t nad;
	const adapter_t *const *ads = adapter_all(&nad);

	prom_header(b, "cdpilot_tasks_total", "counter",
	            "Finished tasks (page loads, API fetches, watched-page extractions) by "
	            "adapter and outcome.");
	for (size_t i = 0; i < nad && i < 16; i++)
		for (int o = 0; o < POOL_NOUTCOMES; o++)
			prom_sample(b, "cdpilot_tasks_total", (double)r->tasks_by[i][o], "adapter",
			            ads[i]->name, "outcome", pool_outcome_name((enum pool_outcome)o),
			            NULL);
	prom_histogram(b, "cdpilot_task_duration_seconds",
	               "Duration of finished tasks, from start to result.", run_dur_bounds,
	               r->dur_buckets, RUN_NBUCKETS, r->dur_sum_s, r->dur_count);
	metrics_ages(r, b, "cdpilot_data_age_seconds", RUNNER_AGE_VERIFIED,
	             "Verified age per target (median, p95, max), by class: since the last read "
	             "known to reflect the source (a fresh navigation, or a watched page confirmed "
	             "by one); a target never read counts from when it was added.");
	metrics_ages(r, b, "cdpilot_read_age_seconds", RUNNER_AGE_READ,
	             "Read age per target (median, p95, max), by class: since the last successful "
	             "read.");
	metrics_ages(r, b, "cdpilot_change_age_seconds", RUNNER_AGE_CHANGED,
	             "Change age per target (median, p95, max), by class: since its data last "
	             "changed.");
	counter(b, "cdpilot_watch_frozen_total",
	        "Watched pages found frozen: a fresh read differed from what the page showed.",
	        (double)rs->frozen_total);
	prom_family(b, "cdpilot_watch_verifications_total", "counter",
	            "Verification reads of watched pages by result: agreed, frozen, failed.",
	            "result", (const char *const[]){ "agreed", "frozen", "failed" },
	            (const double[]){ (double)rs->verify_agreed, (double)rs->verify_frozen,
	                              (double)rs->verify_failed },
	            3);
	run__adapt_metrics(b, rs);
	counter(b, "cdpilot_push_unchanged_total",
	        "Reads asked for by a pushing page that found the data unchanged (not written).",
	        (double)rs->unchanged_skipped);
	counter(b, "cdpilot_discover_capped_total",
	        "Discovery reads whose listing had more entries than DISCOVER_MAX_CHILDREN (the "
	        "first ones were kept).",
	        (double)rs->discover_capped);
	counter(b, "cdpilot_snapshots_total", "Snapshots published.", (double)rs->snapshots_total);
	counter(b, "cdpilot_deltas_total", "Deltas published (snapshots whose data changed).",
	        (double)rs->deltas_total);
}

/* The browser: recycles, launches, uptime, hygiene counters. */
static void metrics_browser(prom_buf_t *b, const pool_stats_t *ps)
{
	prom_header(b, "cdpilot_recycles_total", "counter", "Browser replacements by reason.");
	for (int i = 0; i < POOL_RECYCLE_NREASONS; i++)
		prom_sample(b, "cdpilot_recycles_total", (double)ps->recycles[i], "reason",
		            pool_recycle_reason_name((enum pool_recycle_reason)i), NULL);
	counter(b, "cdpilot_browser_launches_total", "Browsers launched and made ready.",
	        (double)ps->browser_launches);
	gauge(b, "cdpilot_browser_uptime_seconds", "Uptime of the current browser (0: none).",
	      ps->browser_uptime_ms / 1000.0);
	gauge(b, "cdpilot_browser_tasks", "Leases granted on the current browser.",
	      (double)ps->tasks_on_browser);
	gauge(b, "cdpilot_browser_wanted",
	      "1 while a target held needs a browser; 0: it closes once idle.",
	      ps->browser_wanted);
	counter(b, "cdpilot_browser_idle_closes_total",
	        "Browsers closed because none was wanted and none was leased for a while.",
	        (double)ps->idle_closes);
	counter(b, "cdpilot_lease_timeouts_total",
	        "Lease requests that waited longer than LEASE_TIMEOUT_SECONDS.",
	        (double)ps->lease_timeouts);
	counter(b, "cdpilot_popups_closed_total", "Popups closed in leased contexts.",
	        (double)ps->popups_closed);
	counter(b, "cdpilot_dialogs_dismissed_total", "JavaScript dialogs dismissed.",
	        (double)ps->dialogs_dismissed);
	counter(b, "cdpilot_requests_blocked_total", "Requests blocked by BLOCK_RESOURCES.",
	        (double)ps->requests_blocked);
	counter(b, "cdpilot_stuck_contexts_total", "Browser contexts that refused to close.",
	        (double)ps->stuck_contexts);
	counter(b, "cdpilot_pages_reused_total",
	        "Leases granted a kept page of their site (no new context; PAGE_REUSE).",
	        (double)ps->pages_reused);
	gauge(b, "cdpilot_pages_kept", "Kept pages waiting for a task of their site.",
	      (double)ps->pages_kept);
}

/* Health, readiness and the endpoint server's own counters. */
static void metrics_health(run_t *r, prom_buf_t *b)
{
	const char *why = "";

	prom_header(b, "cdpilot_health_grade", "gauge",
	            "1 for the current health grade, 0 for the others.");
	for (int g = HEALTH_HEALTHY; g <= HEALTH_RECOVERING; g++)
		prom_sample(b, "cdpilot_health_grade", health_grade(r->health) == (enum health_grade)g,
		            "grade", health_grade_name((enum health_grade)g), NULL);
	gauge(b, "cdpilot_ready", "1 when /readyz would answer 200.", run__ready(r, &why));
	if (r->httpd) {
		httpd_stats_t hs;
		httpd_get_stats(r->httpd, &hs);
		prom_header(b, "cdpilot_http_responses_total", "counter",
		            "Responses of the endpoint server by status class.");
		for (int c = 2; c <= 5; c++) {
			char cls[8];
			snprintf(cls, sizeof cls, "%dxx", c);
			prom_sample(b, "cdpilot_http_responses_total", (double)hs.responses[c], "code",
			            cls, NULL);
		}
		counter(b, "cdpilot_http_refused_total",
		        "Connections refused because METRICS_MAX_CONNS were open.",
		        (double)hs.refused);
		counter(b, "cdpilot_http_evicted_total",
		        "Connections with an incomplete head (or lingering after their response) "
		        "reset to make room for a new one when METRICS_MAX_CONNS were open.",
		        (double)hs.evicted);
		counter(b, "cdpilot_http_timeouts_total",
		        "Connections answered 408: the head was not complete within "
		        "METRICS_HEAD_TIMEOUT_MS, or no byte came for METRICS_IDLE_TIMEOUT_MS.",
		        (double)hs.timeouts);
	}
}

void run__h_metrics(void *ud, const char *path, const char *query, httpd_reply_t *reply)
{
	run_t *r = ud;
	prom_buf_t b;
	pool_stats_t ps;
	runner_stats_t rs;
	char *text;
	size_t len;
	int err;

	prom_buf_init(&b, 0);
	pool_get_stats(r->pool, &ps);
	runner_get_stats(r->runner, &rs);
	prom_header(&b, "cdpilot_build_info", "gauge", "cdpilot's version; always 1.");
	prom_sample(&b, "cdpilot_build_info", 1, "version", CDPILOT_VERSION, NULL);
	run__metrics_extra(r, &b); /* process tree, cgroup, self, store */
	metrics_work(r, &b, &ps, &rs);
	metrics_results(r, &b, &rs);
	metrics_browser(&b, &ps);
	metrics_health(r, &b);
	run__entities_metrics(r, &b);
	err = b.err; /* prom_buf_steal() resets it */
	text = prom_buf_steal(&b, &len);
	if (!text) {
		log_error("endpoints", "building /metrics failed: %s", strerror(-err));
		httpd_reply_error(reply, 500, "could not build the metrics");
		prom_buf_release(&b);
		return;
	}
	prom_buf_release(&b);
	reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
	httpd_reply_take(reply, text, len);
}

/* ---- process tree, cgroup, self (watchdog) ---- */

static double cg_value(uint64_t v)
{
	return v == WD_UNLIMITED ? (double)INFINITY : (double)v;
}

static void store_metrics(run_t *r, prom_buf_t *b)
{
	store_stats_t ss;

	if (!r->store)
		return;
	store_get_stats(r->store, &ss);
	gauge(b, "cdpilot_store_connected", "1 while connected to Redis and ready to write.",
	      ss.connected);
	gauge(b, "cdpilot_store_backlog",
	      "Targets whose latest snapshot is not yet in Redis (one kept per target).",
	      (double)ss.backlog);
	prom_header(b, "cdpilot_store_writes_total", "counter",
	            "Results written to Redis: ok, error (retried), refused_seq (Redis held a "
	            "newer one).");
	prom_sample(b, "cdpilot_store_writes_total", (double)ss.writes_ok, "result", "ok", NULL);
	prom_sample(b, "cdpilot_store_writes_total", (double)ss.write_errors, "result", "error",
	            NULL);
	prom_sample(b, "cdpilot_store_writes_total", (double)ss.refused_seq, "result",
	            "refused_seq", NULL);
	counter(b, "cdpilot_store_resyncs_total",
	        "Backlog writes made with one delta against what Redis held (after an outage).",
	        (double)ss.resyncs);
	counter(b, "cdpilot_store_reconnects_total", "Reconnections to Redis.",
	        (double)ss.reconnects);
	counter(b, "cdpilot_store_drops_total",
	        "Backlog entries dropped at STORE_BACKLOG_MAX during an outage.", (double)ss.drops);
	counter(b, "cdpilot_store_timeouts_total",
	        "Connections to Redis dropped as unresponsive: a command unanswered for "
	        "REDIS_TIMEOUT_MS.",
	        (double)ss.timeouts);
	gauge(b, "cdpilot_store_unresponsive",
	      "1 while the last connection to Redis was dropped for want of a reply and no new "
	      "one is ready.",
	      ss.unresponsive);
	run__share_metrics(r, b);
}

void run__metrics_extra(run_t *r, prom_buf_t *b)
{
	wd_stats_t ws;

	store_metrics(r, b);
	if (!r->wd)
		return;
	wd_get_stats(r->wd, &ws);
	{
		/* a scrape sees the tree as it is now, not as of the last interval */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		if ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 >
		    ws.last_scan_unix_ms + 1000) {
			wd_scan_now(r->wd);
			wd_get_stats(r->wd, &ws);
		}
	}
	prom_header(b, "cdpilot_processes", "gauge",
	            "Processes below cdpilot by class, at the last watchdog scan.");
	for (int c = 0; c < WD_NCLASSES; c++)
		prom_sample(b, "cdpilot_processes", ws.by_class[c].procs, "class",
		            wd_class_name((enum wd_class)c), NULL);
	prom_header(b, "cdpilot_threads", "gauge", "Threads of the processes below cdpilot by class.");
	for (int c = 0; c < WD_NCLASSES; c++)
		prom_sample(b, "cdpilot_threads", (double)ws.by_class[c].threads, "class",
		            wd_class_name((enum wd_class)c), NULL);
	prom_header(b, "cdpilot_rss_bytes", "gauge",
	            "Resident memory of the processes below cdpilot by class.");
	for (int c = 0; c < WD_NCLASSES; c++)
		prom_sample(b, "cdpilot_rss_bytes", (double)ws.by_class[c].rss_bytes, "class",
		            wd_class_name((enum wd_class)c), NULL);
	gauge(b, "cdpilot_tree_processes", "All processes below cdpilot (zombies included).",
	      ws.total.procs);
	gauge(b, "cdpilot_zombies", "Zombie processes below cdpilot at the last scan.", ws.zombies);
	gauge(b, "cdpilot_self_rss_bytes", "cdpilot's own resident memory.",
	      (double)ws.self_rss_bytes);
	gauge(b, "cdpilot_self_threads", "cdpilot's own threads.", ws.self_threads);
	gauge(b, "cdpilot_self_open_fds", "cdpilot's own open file descriptors.", ws.self_fds);
	counter(b, "cdpilot_orphans_killed_total",
	        "Orphaned processes below cdpilot that were killed.", (double)ws.orphans_killed);
	counter(b, "cdpilot_zombies_reaped_total", "Zombies reaped by the watchdog.",
	        (double)ws.zombies_reaped);
	counter(b, "cdpilot_watchdog_scans_total", "Watchdog scans of /proc.", (double)ws.scans);
	gauge(b, "cdpilot_cgroup_pids_max", "The cgroup's pids.max (+Inf: no limit).",
	      ws.cgroup.has_pids ? cg_value(ws.cgroup.pids_max) : (double)INFINITY);
	gauge(b, "cdpilot_cgroup_pids_current", "The cgroup's pids.current.",
	      ws.cgroup.has_pids ? (double)ws.cgroup.pids_current : (double)NAN);
	gauge(b, "cdpilot_cgroup_memory_max_bytes", "The cgroup's memory limit (+Inf: none).",
	      ws.cgroup.has_memory ? cg_value(ws.cgroup.memory_max) : (double)INFINITY);
	gauge(b, "cdpilot_cgroup_memory_current_bytes", "The cgroup's memory use.",
	      ws.cgroup.has_memory ? (double)ws.cgroup.memory_current : (double)NAN);
	gauge(b, "cdpilot_pids_pressure", "1 while leasing is paused near pids.max.",
	      ws.pids_pressure);
}

