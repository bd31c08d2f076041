/*
 * endpoints: what the daemon tells operators, on the httpd routes: /metrics (Prometheus
 * text, names in docs/metrics.md), /status (JSON), /healthz (the loop answers) and
 * /readyz (the browser answers a cheap CDP probe and the pool serves; or no target held
 * needs a browser, none is leased and none runs: the daemon needs none). Handlers only read
 * the daemon's state; the readiness probe is sent from the daemon's tick and its result
 * cached, so no handler waits.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "cdp/cdp_err.h"
#include "cdp/cdp_names.h"
#include "daemon/httpd.h"
#include "daemon/run_priv.h"
#include "util/log.h"
#include "util/prom.h"
#include "watchdog/watchdog.h"

#define PROBE_FRESH_MS 15000u  /* /readyz wants a probe answered this recently */
#define PROBE_TIMEOUT_MS 3000u

const double run_dur_bounds[RUN_NBUCKETS] = { 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60 };

void run__count_task(void *ud, const adapter_t *ad, enum pool_outcome outcome,
                     uint64_t duration_ms)
{
	run_t *r = ud;
	size_t n, i;
	const adapter_t *const *all = adapter_all(&n);
	double s = duration_ms / 1000.0;

	for (i = 0; i < n && all[i] != ad; i++)
		;
	if (i < 16 && outcome < POOL_NOUTCOMES)
		r->tasks_by[i][outcome]++;
	for (i = 0; i < RUN_NBUCKETS; i++)
		if (s <= run_dur_bounds[i]) {
			r->dur_buckets[i]++;
			break;
		}
	r->dur_count++;
	r->dur_sum_s += s;
}

/* ---- readiness probe ---- */

static void on_probe(cdp_conn_t *c, const cdp_reply_t *rep, void *ud)
{
	run_t *r = ud;

	r->probe_pending = 0;
	if (rep->status == -ECANCELED)
		return;
	if (rep->status == 0) {
		r->probe_ok_ms = uv_now(r->loop);
		r->probe_error[0] = '\0';
	} else {
		snprintf(r->probe_error, sizeof r->probe_error, "Browser.getVersion: %s",
		         rep->error_message && *rep->error_message ? rep->error_message
		                                                   : cdp_strerror(rep->status));
	}
}

void run__probe(run_t *r)
{
	cdp_conn_t *c;

	if (r->probe_pending || !r->pool)
		return;
	c = pool_browser_conn(r->pool);
	if (!c) {
		snprintf(r->probe_error, sizeof r->probe_error, "no browser connected");
		return;
	}
	if (cdp_conn_send(c, NULL, CDP_M_BROWSER_GET_VERSION, NULL, PROBE_TIMEOUT_MS, on_probe, r,
	                  NULL) == 0)
		r->probe_pending = 1;
}

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

static int ready(const run_t *r, const char **why)
{
	pool_stats_t ps;

	if (r->stopping) {
		*why = "shutting down: draining in-flight tasks";
		return 0;
	}
	pool_get_stats(r->pool, &ps);
	if (!ps.ready && !ps.browser_wanted && !ps.waiting && !ps.leases_in_use &&
	    !ps.watch_leases) {
		*why = "no target held needs a browser: none runs";
		return 1;
	}
	if (!ps.ready) {
		*why = "no browser is connected and serving";
		return 0;
	}
	if (ps.paused) {
		*why = "leasing is paused (near the cgroup's pids.max)";
		return 0;
	}
	if (!r->probe_ok_ms || uv_now(r->loop) - r->probe_ok_ms > PROBE_FRESH_MS) {
		*why = r->probe_error[0] ? r->probe_error : "the browser has not answered a probe yet";
		return 0;
	}
	*why = "browser connected and answering; pool serving";
	return 1;
}

static void reply_json(httpd_reply_t *reply, int status, json_t *doc)
{
	char *text = json_dumps(doc, JSON_COMPACT);

	json_decref(doc);
	reply->status = status;
	reply->content_type = "application/json";
	if (!text) {
		httpd_reply_error(reply, 500, "out of memory");
		return;
	}
	httpd_reply_take(reply, text, strlen(text));
}

/* ---- /healthz, /readyz ---- */

static void h_healthz(void *ud, const char *path, const char *query, httpd_reply_t *reply)
{
	run_t *r = ud;

	reply_json(reply, 200,
	           json_pack("{s:s, s:s, s:I}", "status", "ok", "reason",
	                     "the event loop answers", "uptime_s",
	                     (json_int_t)((uv_now(r->loop) - r->started_ms) / 1000)));
}

static void h_readyz(void *ud, const char *path, const char *query, httpd_reply_t *reply)
{
	run_t *r = ud;
	const char *why = "";
	int ok = ready(r, &why);

	reply_json(reply, ok ? 200 : 503,
	           json_pack("{s:s, s:s}", "status", ok ? "ready" : "not_ready", "reason", why));
}

/* ---- /status ---- */

typedef struct status_ctx {
	json_t *targets;
	uint64_t now;
	const char *only; /* ?target=ID: that target alone, or NULL */
} status_ctx_t;

/* /status's query: target=ID (that target alone) and targets=all|none (none: no per-target
 * entries, for a daemon with thousands of targets). 0, or -1 with why. */
typedef struct status_query {
	char target[TARGETS_ID_MAX + 1];
	int has_target, no_targets;
} status_query_t;

static int status_query(const char *q, status_query_t *o, char *why, size_t whylen)
{
	char k[16], v[TARGETS_ID_MAX + 1];
	int rc;

	memset(o, 0, sizeof *o);
	while ((rc = httpd_query_next(&q, k, sizeof k, v, sizeof v, why, whylen)) > 0) {
		if (strcmp(k, "target") == 0 && v[0]) {
			memcpy(o->target, v, sizeof o->target);
			o->has_target = 1;
		} else if (strcmp(k, "targets") == 0 && (!strcmp(v, "all") || !strcmp(v, "none"))) {
			o->no_targets = strcmp(v, "none") == 0;
		} else {
			snprintf(why, whylen, "query parameter '%s=%s': expected target=ID or "
			         "targets=all|none", k, v);
			return -1;
		}
	}
	return rc;
}

static void status_target(const runner_target_view_t *v, void *ud)
{
	status_ctx_t *c = ud;
	uint64_t age = runner_view_age(v, RUNNER_AGE_VERIFIED, c->now);
	json_t *t;

	if (c->only && strcmp(c->only, v->id) != 0)
		return;
	t = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:b, s:I, s:I, s:I}", "id", v->id,
	                      "class", sched_class_name(v->klass), "mode",
	                      v->watch ? "watch" : "navigate", "adapter", v->adapter, "url",
	                      v->url, "age_ms", (json_int_t)age, "fresh", v->fresh, "seq",
	                      (json_int_t)v->seq, "consecutive_failures",
	                      (json_int_t)v->failures, "interval_ms", (json_int_t)v->interval_ms);

	if (!t)
		return;
	json_object_set_new(t, "state", json_string(v->state));
	json_object_set_new(t, "read_mode", json_string(v->read_mode));
	if (v->watch_note[0])
		json_object_set_new(t, "read_mode_why", json_string(v->watch_note));
	if (v->adaptive_state)
		json_object_set_new(t, "adaptive", run__adapt_status(v));
	for (int a = 0; a < RUNNER_NAGES; a++) {
		char k[32];
		snprintf(k, sizeof k, "%s_age_ms", runner_age_name((enum runner_age)a));
		json_object_set_new(t, k, json_integer((json_int_t)runner_view_age(
		                                  v, (enum runner_age)a, c->now)));
	}
	json_object_set_new(t, "last_error",
	                    v->last_error[0] ? json_string(v->last_error) : json_null());
	json_object_set_new(t, "last_error_kind", v->last_error_kind[0]
	                                                  ? json_string(v->last_error_kind)
	                                                  : json_null());
	json_object_set_new(t, "last_outcome",
	                    v->seq || v->failures ? json_string(pool_outcome_name(v->last_outcome))
	                                          : json_null());
	json_object_set_new(t, "backing_off", json_boolean(v->backing_off));
	json_object_set_new(t, "held", json_boolean(v->held));
	json_object_set_new(t, "next_run_in_ms",
	                    json_integer((json_int_t)(v->due_ms > c->now ? v->due_ms - c->now : 0)));
	if (v->source[0])
		json_object_set_new(t, "discovered_by", json_string(v->source));
	json_array_append_new(c->targets, t);
}

static void h_status(void *ud, const char *path, const char *query, httpd_reply_t *reply)
{
	run_t *r = ud;
	runner_stats_t rs;
	pool_stats_t ps;
	json_t *doc, *targets, *health;
	const char *why = "";
	int rdy;
	pid_t pid;
	status_query_t q;
	char qwhy[200];

	if (status_query(query, &q, qwhy, sizeof qwhy) != 0) {
		httpd_reply_error(reply, 400, qwhy);
		return;
	}
	targets = json_array();
	health = health_to_json(r->health);
	rdy = ready(r, &why);
	pool_get_stats(r->pool, &ps);
	runner_get_stats(r->runner, &rs);
	if (!q.no_targets) {
		status_ctx_t c = { .targets = targets, .now = uv_now(r->loop),
			           .only = q.has_target ? q.target : NULL };
		runner_foreach_target(r->runner, status_target, &c);
	}
	pid = pool_browser_pid(r->pool);
	/* browser.pid: null while none runs (wanted false: no target held needs one) */
	doc = json_pack("{s:o, s:{s:b, s:s}, s:{s:b, s:b, s:o, s:I, s:I, s:I, s:I, s:I}, "
	                "s:{s:I, s:I, s:I, s:I}, s:o}",
	                "health", health ? health : json_null(), "ready", "ready", rdy, "reason",
	                why, "browser", "connected", ps.ready, "wanted", ps.browser_wanted, "pid",
	                pid > 0 ? json_integer((json_int_t)pid) : json_null(), "uptime_ms",
	                (json_int_t)ps.browser_uptime_ms, "tasks_served",
	                (json_int_t)ps.tasks_on_browser, "launches",
	                (json_int_t)ps.browser_launches, "leases_in_use",
	                (json_int_t)ps.leases_in_use, "watched_pages", (json_int_t)rs.watches,
	                "tasks", "total", (json_int_t)rs.done_total, "ok",
	                (json_int_t)rs.ok_total, "failed", (json_int_t)rs.fail_total, "deltas",
	                (json_int_t)rs.deltas_total, "targets", targets);
	if (!doc) {
		httpd_reply_error(reply, 500, "could not build the status");
		return;
	}
	json_object_set_new(doc, "target_count", json_integer((json_int_t)rs.targets));
	run__status_extra(r, doc);
	run__entities_status(r, doc);
	reply_json(reply, 200, doc);
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
	prom_header(b, "cdpilot_watch_verifications_total", "counter",
	            "Verification reads of watched pages by result: agreed, frozen, failed.");
	prom_sample(b, "cdpilot_watch_verifications_total", (double)rs->verify_agreed, "result",
	            "agreed", NULL);
	prom_sample(b, "cdpilot_watch_verifications_total", (double)rs->verify_frozen, "result",
	            "frozen", NULL);
	prom_sample(b, "cdpilot_watch_verifications_total", (double)rs->verify_failed, "result",
	            "failed", NULL);
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
	gauge(b, "cdpilot_ready", "1 when /readyz would answer 200.", ready(r, &why));
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

static void h_metrics(void *ud, const char *path, const char *query, httpd_reply_t *reply)
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

void run__status_extra(run_t *r, json_t *doc)
{
	if (r->store) {
		store_stats_t ss;
		store_get_stats(r->store, &ss);
		json_object_set_new(
		        doc, "store",
		        json_pack("{s:b, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:s}", "connected",
		                  ss.connected, "degraded", ss.degraded, "unresponsive",
		                  ss.unresponsive, "backlog", (json_int_t)ss.backlog, "writes_ok",
		                  (json_int_t)ss.writes_ok, "reconnects", (json_int_t)ss.reconnects,
		                  "timeouts", (json_int_t)ss.timeouts, "events_dropped",
		                  (json_int_t)ss.events_dropped, "last_error", ss.last_error));
	}
	run__share_status(r, doc);
	wd_stats_t ws;
	json_t *by = json_object();

	if (!r->wd) {
		json_decref(by);
		return;
	}
	wd_get_stats(r->wd, &ws);
	for (int c = 0; c < WD_NCLASSES; c++)
		json_object_set_new(by, wd_class_name((enum wd_class)c),
		                    json_integer(ws.by_class[c].procs));
	json_object_set_new(doc, "processes",
	                    json_pack("{s:I, s:o, s:I, s:I, s:I, s:I, s:I}", "total",
	                              (json_int_t)ws.total.procs, "by_class", by, "zombies",
	                              (json_int_t)ws.zombies, "orphans_killed",
	                              (json_int_t)ws.orphans_killed, "self_rss_bytes",
	                              (json_int_t)ws.self_rss_bytes, "self_threads",
	                              (json_int_t)ws.self_threads, "self_open_fds",
	                              (json_int_t)ws.self_fds));
}

void run__routes(run_t *r)
{
	httpd_route(r->httpd, "/metrics", h_metrics, r);
	httpd_route(r->httpd, "/status", h_status, r);
	httpd_route(r->httpd, "/healthz", h_healthz, r);
	httpd_route(r->httpd, "/readyz", h_readyz, r);
}
