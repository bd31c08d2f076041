/*
 * run.c: `cdpilot run`, the wiring. It creates the modules (pool, fetch context, sink,
 * store and shared schedule, watchdog, HTTP endpoints, the runner) on one loop, points the
 * runner's callbacks at the sink, the store and the shared schedule, grades health once a
 * second, answers signals (SIGHUP re-reads the targets file, as a change of it does:
 * run_reload.c) and closes everything in
 * order on the way out. How a target is scraped is the runner's (runner/runner.h).
 */
#include "daemon/run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "adapters/snapshot.h"
#include "cdp/cdp_err.h"
#include "daemon/sink.h"
#include "daemon/targets.h"
#include "util/fetch.h"
#include "util/log.h"

#define TICK_MS 1000u
#define REFUSED_WINDOW_MS 60000u /* refused writes shown in health this long */

#include "daemon/run_priv.h"

static uint64_t now_ms(run_t *r)
{
	return uv_now(r->loop);
}

/* ---- the runner's callbacks: results to the sink and the store, claims to the shared
 * schedule ---- */

static void on_publish(void *ud, const json_t *snap, const json_t *delta, uint64_t fence,
                       int resync)
{
	run_t *r = ud;

	if (r->sink) {
		sink_put(r->sink, "snapshot", snap);
		if (delta)
			sink_put(r->sink, "delta", delta);
	}
	if (r->store)
		store_put_fenced(r->store, snap, delta, fence, resync);
	run__entities_on_data(r, snap);
}

static void on_forget(void *ud, const char *id)
{
	run_t *r = ud;
	run__entities_on_forget(r, id);
	if (r->share)
		share_forget(r->share, id);
}

/* ---- status, health, signals ---- */

static uint64_t self_rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

static void count_fresh(const runner_target_view_t *v, void *ud)
{
	*(unsigned *)ud += v->fresh != 0;
}

static void show_status(run_t *r)
{
	unsigned fresh = 0;
	pool_stats_t ps;
	wd_stats_t ws;
	runner_stats_t rs;

	runner_get_stats(r->runner, &rs);
	runner_foreach_target(r->runner, count_fresh, &fresh);
	pool_get_stats(r->pool, &ps);
	wd_scan_now(r->wd); /* about a millisecond: the line shows the tree as it is */
	wd_get_stats(r->wd, &ws);
	fprintf(stderr,
	        "\r\033[Kcdpilot: %zu targets, %u%% fresh, %.1f tasks/s, %u leases, %u watched, "
	        "%u procs, rss %.1f MB, %s",
	        rs.targets, rs.targets ? (unsigned)(fresh * 100 / rs.targets) : 100,
	        rs.tasks_per_s, ps.leases_in_use, rs.watches, ws.total.procs,
	        self_rss_kb() / 1024.0, health_grade_name(health_grade(r->health)));
	fflush(stderr);
	r->status_shown = 1;
}

static void begin_stop(run_t *r, const char *why);

static size_t wd_browser_pids(void *ud, pid_t *out, size_t max)
{
	run_t *r = ud;
	return r->pool ? pool_browser_pids(r->pool, out, max) : 0;
}

static void wd_on_recycle(void *ud, const char *reason)
{
	run_t *r = ud;

	if (!r->pool || r->stopping)
		return;
	log_warn("run", "watchdog asks for a recycle: %s", reason);
	pool_request_recycle(r->pool, strcmp(reason, "rss_limit") == 0 ? POOL_RECYCLE_RSS_LIMIT
	                                                               : POOL_RECYCLE_PID_THRESHOLD);
}

static void wd_on_pids_pressure(void *ud, int active, const char *why)
{
	run_t *r = ud;

	if (!r->pool)
		return;
	pool_set_paused(r->pool, active);
	health_set_condition(r->health, "pids", active ? HEALTH_DEGRADED : HEALTH_HEALTHY, why,
	                     now_ms(r));
	if (active) {
		log_warn("run", "%s: new leases paused, recycling the browser", why);
		pool_request_recycle(r->pool, POOL_RECYCLE_PIDS_PRESSURE);
	}
}

typedef struct ages {
	uint64_t now, *v;
	size_t n;
} ages_t;

/* Health grades the targets this instance holds: with SCHEDULE=redis the others' targets
 * are not ours to be stale (counting them made every instance fail together). */
static void collect_age(const runner_target_view_t *v, void *ud)
{
	ages_t *a = ud;
	if (v->held)
		a->v[a->n++] = runner_view_age_held(v, RUNNER_AGE_VERIFIED, a->now);
}

/* Writes Redis refused (it held a newer result: another instance took the target, or a
 * fence or seq of ours went back) are shown in health for a minute after the last one:
 * a takeover refuses the old holder's late writes once; refusals that go on mean results
 * are being lost. */
static void note_refused(run_t *r, const store_stats_t *ss, uint64_t now)
{
	if (ss->refused_seq > r->refused_seen) {
		if (!r->refused_since_ms || now - r->refused_last_ms > REFUSED_WINDOW_MS) {
			r->refused_since_ms = now;
			r->refused_base = r->refused_seen;
		}
		r->refused_seen = ss->refused_seq;
		r->refused_last_ms = now;
	}
	if (r->refused_since_ms && now - r->refused_last_ms <= REFUSED_WINDOW_MS) {
		char why[200];
		snprintf(why, sizeof why,
		         "%" PRIu64 " write(s) refused by Redis since %" PRIu64
		         " s ago: it holds newer results (another instance holds these targets, "
		         "or our fences went back)",
		         r->refused_seen - r->refused_base, (now - r->refused_since_ms) / 1000);
		health_set_condition(r->health, "refused", HEALTH_DEGRADED, why, now);
	} else {
		r->refused_since_ms = 0;
		health_set_condition(r->health, "refused", HEALTH_HEALTHY, "", now);
	}
}

static void on_tick(uv_timer_t *t)
{
	run_t *r = t->data;
	uint64_t now = now_ms(r);
	ages_t ages = { .now = now };
	unsigned flags;
	runner_stats_t rs;
	int due;

	runner_get_stats(r->runner, &rs);
	ages.v = calloc(rs.targets + 1, sizeof *ages.v);
	if (!ages.v)
		abort();
	runner_foreach_target(r->runner, collect_age, &ages);
	due = rs.nav.running + rs.watch.running + rs.nav.queued[0] + rs.nav.queued[1] +
	      rs.nav.queued[2] + rs.watch.queued[0] + rs.watch.queued[1] + rs.watch.queued[2] >
	      0;
	flags = health_observe(r->health, now, ages.v, ages.n, due, rs.last_verified_ms);
	free(ages.v);
	r->targets_held = ages.n;
	if (flags & HEALTH_CHANGED) {
		if (r->status_shown)
			fputc('\n', stderr), r->status_shown = 0;
		log_info("health", "%s%s%s", health_grade_name(health_grade(r->health)),
		         *health_reasons(r->health) ? ": " : "", health_reasons(r->health));
	}
	if (health_grade(r->health) == HEALTH_FAILING) {
		if (!r->failing_since)
			r->failing_since = now;
		if (r->o->exit_on_health_failure && now - r->failing_since >= r->o->health_exit_ms) {
			log_error("health", "failing for %u s with EXIT_ON_HEALTH_FAILURE=1: exiting so "
			                    "the orchestrator restarts cdpilot",
			          r->o->health_exit_ms / 1000);
			r->exit_code = RUN_EXIT_FAILURE;
			begin_stop(r, "health failing");
			return;
		}
	} else {
		r->failing_since = 0;
	}
	if (r->store) {
		store_stats_t ss;
		json_t *h = health_to_json(r->health);
		store_get_stats(r->store, &ss);
		if (ss.degraded) {
			char why[400];
			snprintf(why, sizeof why, "redis %s, %zu snapshot(s) waiting%s%.200s",
			         ss.unresponsive ? "unresponsive"
			         : ss.connected  ? "catching up"
			                         : "not connected",
			         ss.backlog, ss.last_error[0] ? ": " : "", ss.last_error);
			health_set_condition(r->health, "store", HEALTH_DEGRADED, why, now);
		} else {
			health_set_condition(r->health, "store", HEALTH_HEALTHY, "", now);
		}
		note_refused(r, &ss, now);
		if (h) {
			json_object_set_new(h, "instance_pid", json_integer(getpid()));
			/* the targets its grade is about (SCHEDULE=redis: its share) */
			json_object_set_new(h, "targets_held", json_integer((json_int_t)r->targets_held));
			store_set_health(r->store, h);
			json_decref(h);
		}
	}
	/* every 5 s; every tick while no probe has answered for 5 s (a browser just launched
	 * for a target that needs one is ready within a second, not five) */
	if (now - r->last_probe_ms >= 5000 || now - r->probe_ok_ms > 5000) {
		r->last_probe_ms = now;
		run__probe(r);
	}
	if (flags & HEALTH_STALL_BEGAN) {
		log_warn("health", "no successful scrape while work is due: recycling the browser");
		pool_request_recycle(r->pool, POOL_RECYCLE_STALL);
	}
	if (r->status_line)
		show_status(r);
	if (r->o->duration_s > 0 && now - r->started_ms >= (uint64_t)(r->o->duration_s * 1000)) {
		begin_stop(r, "duration reached");
		return;
	}
	run__entities_tick(r);
	run__share_tick(r);
	runner_tick(r->runner);
	pool_set_wanted(r->pool, runner_browser_targets(r->runner) > 0);
}

/* Worker thread: parses the Redis hash's targets into redis_set / redis_errs. As the
 * reload's parse (below), targets_parse_one() is pure; redis_obj is only read: the store
 * replaces the object it handed out, never changes it, and jansson counts references
 * atomically. Nothing here logs. */
static void redis_parse_work(uv_work_t *req)
{
	run_t *r = req->data;
	const char *id;
	json_t *t;

	r->redis_set.v = calloc(json_object_size(r->redis_obj) + 1, sizeof *r->redis_set.v);
	if (!r->redis_set.v)
		abort();
	json_object_foreach(r->redis_obj, id, t) {
		char where[120];
		snprintf(where, sizeof where, "redis targets \"%.64s\"", id);
		if (targets_parse_one(t, where, &r->redis_set.v[r->redis_set.n], &r->redis_errs) == 0)
			r->redis_set.n++;
	}
}

static void start_redis_parse(run_t *r);

/* Loop: the parse is over; its set is reconciled here, where the runner lives. */
static void redis_parse_done(uv_work_t *req, int status)
{
	run_t *r = req->data;

	r->redis_parsing = 0;
	if (status == 0 && !r->stopping) {
		if (r->redis_errs.count)
			log_warn("run", "%u target(s) from Redis refused:\n%s", r->redis_errs.count,
			         errlist_text(&r->redis_errs));
		uint64_t t0 = uv_hrtime();
		runner_reconcile(r->runner, &r->redis_set, "@redis");
		log_debug("run",
		          "Redis targets: %zu parsed in %" PRIu64 " ms off the loop, reconciled "
		          "in %.1f ms on it",
		          r->redis_set.n, uv_now(r->loop) - r->redis_began_ms,
		          (double)(uv_hrtime() - t0) / 1e6);
	}
	targets_release(&r->redis_set);
	memset(&r->redis_set, 0, sizeof r->redis_set);
	errlist_release(&r->redis_errs);
	json_decref(r->redis_obj);
	r->redis_obj = NULL;
	if (r->redis_next && !r->stopping)
		start_redis_parse(r);
	json_decref(r->redis_next); /* stopping: not parsed */
	r->redis_next = NULL;
}

/* Parses redis_next off the loop: 100,000 changed targets take seconds to check. */
static void start_redis_parse(run_t *r)
{
	r->redis_obj = r->redis_next;
	r->redis_next = NULL;
	r->redis_req.data = r;
	r->redis_began_ms = uv_now(r->loop);
	memset(&r->redis_set, 0, sizeof r->redis_set);
	errlist_init(&r->redis_errs);
	r->redis_parsing = 1;
	if (uv_queue_work(r->loop, &r->redis_req, redis_parse_work, redis_parse_done) != 0) {
		log_warn("run", "cannot parse the Redis targets off the loop; parsing them here");
		redis_parse_work(&r->redis_req);
		redis_parse_done(&r->redis_req, 0);
	}
}

/* The store's targets hash changed: {id: target object}. Its targets are reconciled like
 * the file's, under the source "@redis" (ids cannot start with '@'), once parsed off the
 * loop; one parse at a time, and of the changes during one only the last is parsed after
 * it. */
static void on_redis_targets(void *ud, const json_t *obj, const char *errors)
{
	run_t *r = ud;

	if (r->stopping)
		return;
	if (errors)
		log_warn("run", "the Redis targets hash has bad entries:\n%s", errors);
	json_decref(r->redis_next);
	r->redis_next = json_incref((json_t *)obj);
	if (!r->redis_parsing)
		start_redis_parse(r);
}

static void close_cb_count(uv_handle_t *h)
{
	run_t *r = h->data;
	r->closing_handles--;
}

static void on_sink_closed(void *ud)
{
	(void)ud;
}

static void on_store_closed(void *ud)
{
	(void)ud;
}

/* The store closes after the shared schedule, which releases our leases through it. */
static void on_share_closed(void *ud)
{
	run_t *r = ud;

	if (r->store)
		store_close(r->store, on_store_closed, r);
	r->store = NULL;
}

static void on_fetch_closed(void *ud)
{
	(void)ud;
}

static void on_pool_closed(pool_t *p, void *ud)
{
	run_t *r = ud;

	r->pool = NULL;
	{
		runner_stats_t rs;
		runner_get_stats(r->runner, &rs);
		log_info("run", "browser closed; %llu tasks (%llu ok, %llu failed), %llu deltas",
		         (unsigned long long)rs.done_total, (unsigned long long)rs.ok_total,
		         (unsigned long long)rs.fail_total, (unsigned long long)rs.deltas_total);
	}
	if (r->share) {
		share_t *sh = r->share;
		r->share = NULL;
		share_close(sh, on_share_closed, r);
	} else {
		on_share_closed(r);
	}
	if (r->httpd)
		httpd_close(r->httpd);
	if (r->wd)
		wd_close(r->wd, NULL, NULL);
	r->wd = NULL;
	if (r->fetch)
		fetch_ctx_close(r->fetch, on_fetch_closed, r);
	r->fetch = NULL;
	if (r->sink)
		sink_close(r->sink, on_sink_closed, r);
	r->sink = NULL;
	/* after the pool and the fetch context: every task has ended */
	runner_close(r->runner, NULL, NULL);
	r->runner = NULL;
	cdp_wsctx_close(r->ws);
	uv_close((uv_handle_t *)&r->tick, close_cb_count);
	uv_close((uv_handle_t *)&r->sig_term, close_cb_count);
	uv_close((uv_handle_t *)&r->sig_int, close_cb_count);
	uv_close((uv_handle_t *)&r->sig_hup, close_cb_count);
	run__watch_close(r);
}

static void begin_stop(run_t *r, const char *why)
{
	if (r->stopping)
		return;
	r->stopping = 1;
	if (r->status_shown)
		fputc('\n', stderr), r->status_shown = 0;
	{
		runner_stats_t rs;
		runner_get_stats(r->runner, &rs);
		log_info("run", "stopping (%s): %u task(s) in flight finish first", why,
		         rs.inflight);
	}
	uv_timer_stop(&r->tick);
	if (r->reloading)
		uv_cancel((uv_req_t *)&r->reload_req); /* if not begun; else it ends unused */
	if (r->redis_parsing)
		uv_cancel((uv_req_t *)&r->redis_req); /* the same */
	runner_stop(r->runner);
	pool_close(r->pool, on_pool_closed, r);
}

static void on_signal(uv_signal_t *s, int signum)
{
	run_t *r = s->data;

	if (signum == SIGHUP) {
		if (!r->stopping)
			run__start_reload(r, RUN_RELOAD_SIGHUP);
		return;
	}
	if (r->stopping) {
		log_warn("run", "%s again: already stopping", strsignal(signum));
		return;
	}
	begin_stop(r, strsignal(signum));
}

/* The runner, its callbacks pointed at the sink, the store and the shared schedule. */
static runner_t *new_runner(run_t *r)
{
	const run_opts_t *o = r->o;
	runner_opts_t ro;
	runner_callbacks_t cbs = { .publish = on_publish,
		                   .task_done = run__count_task,
		                   .status = run__entities_on_status,
		                   .forget = on_forget,
		                   .ud = r };

	run_runner_opts(o, &ro);
	if (o->shared_schedule)
		run__share_callbacks(r, &cbs);
	return runner_new(r->loop, &ro, r->pool, r->fetch, &cbs);
}

/* The tick and the signals (4 handles, closed in on_pool_closed). */
static void start_handles(run_t *r)
{
	uv_timer_init(r->loop, &r->tick);
	uv_signal_init(r->loop, &r->sig_term);
	uv_signal_init(r->loop, &r->sig_int);
	uv_signal_init(r->loop, &r->sig_hup);
	r->tick.data = r->sig_term.data = r->sig_int.data = r->sig_hup.data = r;
	r->closing_handles = 4;
	uv_signal_start(&r->sig_term, on_signal, SIGTERM);
	uv_signal_start(&r->sig_int, on_signal, SIGINT);
	uv_signal_start(&r->sig_hup, on_signal, SIGHUP);
}

static void start_watchdog(run_t *r)
{
	wd_callbacks_t cbs = { wd_browser_pids, NULL, wd_on_recycle, wd_on_pids_pressure, r };
	int rc = wd_make_subreaper();

	if (rc != 0)
		log_warn("run", "cannot become a child subreaper (%s): orphans of the browser "
		                "would escape the watchdog",
		         strerror(-rc));
	r->wd = wd_new(r->loop, &r->o->wd, &cbs);
	wd_start(r->wd);
}

/* REDIS_URL set: the store (and its targets hash), and SCHEDULE=redis's shared schedule. */
static void start_store(run_t *r)
{
	const run_opts_t *o = r->o;

	if (!o->use_store)
		return;
	r->store = store_new(r->loop, &o->store);
	if (!r->store) {
		fprintf(stderr, "cdpilot run: REDIS_URL or REDIS_PREFIX is not usable (see above)\n");
		abort();
	}
	store_watch_targets(r->store, on_redis_targets, r);
	store_watch_entities(r->store, run__entities_on_redis, r);
	store_start(r->store);
	log_info("run", "publishing to Redis (prefix %s)", o->store.prefix);
	if (o->shared_schedule)
		run__share_new(r);
}

/* The HTTP endpoints; if they cannot start, the daemon stops (exit 1). */
static void start_endpoints(run_t *r)
{
	const run_opts_t *o = r->o;

	r->httpd = httpd_new(r->loop, &o->http);
	if (!r->httpd || httpd_start(r->httpd) != 0) {
		fprintf(stderr, "cdpilot run: cannot serve the endpoints on METRICS_ADDR=%s (see the "
		                "log above); set METRICS_ADDR to a free address\n",
		        o->http.addr);
		r->exit_code = RUN_EXIT_FAILURE;
		begin_stop(r, "endpoints could not start");
		return;
	}
	run__routes(r);
	log_info("run", "endpoints on http://%s/ (/metrics /status /healthz /readyz)", o->http.addr);
}

/* The targets file and the sink: what can be wrong before anything starts (exit 2). */
static int open_inputs(run_t *r, target_set_t *set)
{
	const run_opts_t *o = r->o;
	errlist_t errs;
	int err = 0;

	errlist_init(&errs);
	run__note_targets_file(r); /* before the read: see run_reload.c */
	if (targets_load_file(o->targets_path, set, &errs) != 0) {
		fprintf(stderr, "cdpilot run: %s: %u error(s):\n%s\n", o->targets_path, errs.count,
		        errlist_text(&errs));
		errlist_release(&errs);
		return -EINVAL;
	}
	errlist_release(&errs);
	if (o->output[0] && !(r->sink = sink_open(r->loop, o->output, &err))) {
		fprintf(stderr, "cdpilot run: cannot open --output \"%s\": %s\n", o->output,
		        strerror(-err));
		return -EINVAL;
	}
	return 0;
}

int run_main(uv_loop_t *loop, const run_opts_t *o)
{
	run_t *r = calloc(1, sizeof *r);
	target_set_t set = { 0 };
	int code;

	if (!r)
		abort();
	r->loop = loop;
	r->o = o;
	r->status_line = o->status_line < 0 ? isatty(STDERR_FILENO) : o->status_line;
	if (open_inputs(r, &set) != 0) {
		targets_release(&set);
		free(r);
		return RUN_EXIT_USAGE;
	}
	r->ws = cdp_wsctx_new(loop);
	r->pool = r->ws ? pool_new(loop, r->ws, &o->pool) : NULL;
	r->fetch = fetch_ctx_new(loop);
	if (r->fetch) /* names that resolve to a denied address (targets.h: the policy) */
		fetch_ctx_set_policy(r->fetch, targets_policy());
	r->runner = r->pool && r->fetch ? new_runner(r) : NULL;
	if (!r->runner) {
		log_error("run", "cannot create the browser pool, the HTTP client or the runner");
		abort();
	}
	r->health = health_new(&o->health);
	run__entities_new(r);
	start_handles(r);
	r->started_ms = now_ms(r);
	start_watchdog(r);
	start_store(r);
	start_endpoints(r);
	log_info("run", "%zu target(s) from %s; CONCURRENCY_CAP %u, WATCH_CAP %u", set.n,
	         o->targets_path, o->pool.concurrency_cap, o->watch_cap);
	if (!r->stopping) {
		runner_reconcile(r->runner, &set, "");
		/* a browser only if a target needs one (then at once); the tick keeps it so */
		pool_set_wanted(r->pool, runner_browser_targets(r->runner) > 0);
		run__entities_reconcile(r, &set.entities, "");
		runner_start(r->runner);
		run__share_tick(r); /* the targets on the shared schedule at once */
		uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
		run__watch_start(r);
	}
	targets_release(&set);

	uv_run(loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(r->ws);
	httpd_free(r->httpd);
	code = r->exit_code;
	health_free(r->health);
	run__entities_free(r);
	free(r);
	return code;
}
