/*
 * endpoints: what the daemon tells operators, on the httpd routes: /metrics (Prometheus
 * text, names in docs/metrics.md; built in metrics.c), /status (JSON), /healthz (the loop
 * answers) and
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

int run__ready(const run_t *r, const char **why)
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
	int ok = run__ready(r, &why);

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
	rdy = run__ready(r, &why);
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
	httpd_route(r->httpd, "/metrics", run__h_metrics, r);
	httpd_route(r->httpd, "/status", h_status, r);
	httpd_route(r->httpd, "/healthz", h_healthz, r);
	httpd_route(r->httpd, "/readyz", h_readyz, r);
}
