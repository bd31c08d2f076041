/*
 * watch.c: watched pages. A watched target keeps one page open on a watch lease (no
 * CONCURRENCY_CAP slot; WATCH_CAP bounds them) and re-reads it when the scheduler says it
 * is due or, with push, when the page's MutationObserver calls the binding. The page is
 * reloaded every WATCH_RELOAD_SECONDS, reopened with backoff when it fails, and moved to
 * the new browser when the pool recycles (the old page serves until the new one has
 * delivered). Its states move only through watch_set_state(), which checks and logs them:
 *
 *   OPENING --granted--> LOADING --loaded--> READY --reload--> LOADING
 *   any but CLOSED --failure--> OPENING (reopen after a backoff)     any --> CLOSED
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/snapshot.h"
#include "cdp/cdp_err.h"
#include "cdp/cdp_names.h"
#include "runner/runner_priv.h"
#include "util/log.h"

static void watch_extract(watch_t *w);
static void watch_navigate(watch_t *w);

static const char *const watch_state_names[] = { "opening", "loading", "ready", "closed" };

/* legal[from][to] */
static const unsigned char legal[4][4] = {
	/*               OPENING LOADING READY CLOSED */
	[W_OPENING] = { 1, 1, 0, 1 },
	[W_LOADING] = { 1, 0, 1, 1 },
	[W_READY] = { 1, 1, 0, 1 },
	[W_CLOSED] = { 0, 0, 0, 1 },
};

/* The one place a watched page's state changes; every move is logged at debug level. An
 * illegal move is a bug: it is logged as an error and refused (the state stays, and the
 * callers act only on the state they find), so the daemon keeps serving. */
static void watch_set_state(watch_t *w, enum watch_state to)
{
	if (!legal[w->state][to]) {
		log_error("run", "watched page of %s: illegal state change %s -> %s (refused)",
		          w->rt->spec.id, watch_state_names[w->state], watch_state_names[to]);
		return;
	}
	if (w->state != to)
		log_debug("run", "watched page of %s: %s -> %s", w->rt->spec.id,
		          watch_state_names[w->state], watch_state_names[to]);
	w->state = to;
}

/* Lets go of the page and its lease: the push binding off, then a granted lease released
 * with how, or one still waiting or opening cancelled (its granted_cb fires at once with
 * -ECANCELED, and w_on_granted ignores it while closing or restarting). */
static void watch_drop_page(watch_t *w, enum pool_outcome how)
{
	if (w->binding && w->page)
		cdp_conn_off(cdp_page_conn(w->page), w->binding);
	w->binding = NULL;
	if (w->lease) {
		pool_lease_t *l = w->lease;
		w->lease = NULL;
		if (w->page)
			pool_release(l, how);
		else
			pool_lease_cancel(l);
	}
	w->page = NULL;
}

static void watch_free_closed(uv_handle_t *h)
{
	watch_t *w = h->data;
	runner_t *r = w->runner;

	runner__rt_unref(w->rt);
	free(w);
	runner__handle_closed(r);
}

/* Releases the page (if any) and frees w once its timer has closed. */
void runner__watch_close(watch_t *w)
{
	runner_t *r = w->runner;
	rtarget_t *rt = w->rt;

	if (w->closing)
		return;
	w->closing = 1;
	watch_set_state(w, W_CLOSED);
	if (rt->watch == w)
		rt->watch = w->moving_to; /* NULL unless a move is under way */
	if (w->moving_to)
		w->moving_to->replaces = NULL;
	if (w->replaces)
		w->replaces->moving_to = NULL;
	watch_drop_page(w, POOL_OK);
	if (rt->suspect && !w->moving_to && !w->replaces) { /* no page left to ask */
		json_decref(rt->suspect);
		rt->suspect = NULL;
	}
	if (w->sched_running && !rt->removed) {
		runner__watch_sched_done(r, rt, 0);
		w->sched_running = 0;
	}
	r->watches--;
	uv_timer_stop(&w->retry);
	uv_close((uv_handle_t *)&w->retry, watch_free_closed);
}

static void watch_reopen_cb(uv_timer_t *tm)
{
	watch_t *w = tm->data;
	rtarget_t *rt = w->rt;
	runner_t *r = w->runner;
	unsigned fails = w->open_failures;

	if (w->closing || r->stopping || rt->removed)
		return;
	runner__watch_close(w);
	if (!rt->watch) {
		runner__watch_open(r, rt, NULL);
		if (rt->watch)
			rt->watch->open_failures = fails;
	}
}

/* The page is gone or unusable: start again (at once the first time, then backing off). */
static void watch_restart(watch_t *w, const char *why)
{
	runner_t *r = w->runner;
	uint64_t delay;

	if (w->closing)
		return;
	log_warn("run", "watched page of %s: %s; reopening", w->rt->spec.id, why);
	snprintf(w->rt->last_error, sizeof w->rt->last_error, "%.*s", (int)sizeof w->rt->last_error - 1, why);
	if (w->sched_running) {
		runner__watch_sched_done(r, w->rt, 0);
		w->sched_running = 0;
	}
	watch_drop_page(w, POOL_FAILED);
	w->busy = 0;
	watch_set_state(w, W_OPENING);
	delay = w->open_failures ? 1000ull << (w->open_failures > 5 ? 5 : w->open_failures - 1)
	                         : 0;
	if (delay > WATCH_RETRY_MAX_MS)
		delay = WATCH_RETRY_MAX_MS;
	w->open_failures++;
	uv_timer_start(&w->retry, watch_reopen_cb, delay, 0);
}

static void watch_ready(watch_t *w)
{
	watch_set_state(w, W_READY);
	w->loaded_at = now_ms(w->runner);
	w->fresh = 1;
	if (w->reload_asked) {
		w->reload_asked = 0;
		w->loaded_at = 0; /* a reload asked during the load: the next read reloads */
	}
	watch_extract(w);
}

/* How a successful read of the watched page is published: the first read after a load
 * is a fresh navigation (verified); later reads count as verified while the page was
 * confirmed within WATCH_VERIFY_SECONDS, its data changed within
 * WATCH_VERIFY_UNCHANGED_SECONDS and it is not frozen. A read the page asked for (push)
 * writes only a change. */
static unsigned read_flags(watch_t *w)
{
	runner_t *r = w->runner;
	const rtarget_t *rt = w->rt;
	uint64_t now = now_ms(r);
	unsigned f = w->pushed ? PUB_IF_CHANGED : 0;

	if (w->fresh || (rt->confirmed_ms && !rt->frozen_ms &&
	                 now - rt->confirmed_ms < r->o.verify_max_ms &&
	                 now - rt->changed_ms < runner__unchanged_ms(r, rt)))
		f |= PUB_VERIFIED;
	return f;
}

/* A read of the page published: a fresh load confirms the page (and ends a freeze). */
static void read_done(watch_t *w)
{
	rtarget_t *rt = w->rt;

	w->open_failures = 0;
	if (w->fresh) {
		rt->confirmed_ms = now_ms(w->runner);
		if (rt->frozen_ms)
			log_info("run", "watched page of %s recovered: reloaded, its data is current",
			         rt->spec.id);
		rt->frozen_ms = 0;
	}
	w->fresh = 0;
	runner__verify_maybe(w->runner, rt);
}

static void w_on_eval(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	watch_t *w = ud;
	runner_t *r = w->runner;
	rtarget_t *rt = w->rt;
	int ok;
	char msg[600];

	w->busy = 0;
	if (w->closing || status == -ECANCELED)
		return;
	if (status != 0) {
		runner__target_failed_as(r, rt, runner__outcome_of(status),
		                         runner__eval_failure(rt, status, why, msg, sizeof msg), msg);
		runner__task_done(r, rt->spec.adapter, runner__outcome_of(status),
		                  now_ms(r) - w->op_started);
		if (status == -ETIMEDOUT || status == CDP_ECRASHED || status == CDP_ECONNLOST) {
			watch_restart(w, msg);
			return;
		}
		ok = 0;
	} else {
		ok = runner__publish(r, rt, value, rt->spec.url, w->op_started, read_flags(w)) == 0;
		runner__task_done(r, rt->spec.adapter, ok ? POOL_OK : POOL_FAILED,
		                  now_ms(r) - w->op_started);
		if (ok)
			read_done(w);
	}
	if (w->sched_running) {
		w->sched_running = 0;
		runner__watch_sched_done(r, rt, ok);
	}
	/* a move finishes once the new page has delivered its first result */
	if (w->replaces && ok) {
		watch_t *old = w->replaces;
		w->replaces = NULL;
		old->moving_to = NULL;
		rt->watch = w;
		log_info("run", "watched page of %s moved to the new browser", rt->spec.id);
		runner__watch_close(old);
	}
	if (w->again) {
		w->again = 0;
		watch_extract(w);
	}
	if (!w->closing)
		runner__verify_recheck_done(r, rt, ok, w->op_started);
	runner__pump(r);
}


static void watch_extract(watch_t *w)
{
	int rc;

	if (w->closing || w->state != W_READY)
		return;
	if (w->busy) {
		w->again = 1;
		return;
	}
	if (now_ms(w->runner) - w->loaded_at >= w->runner->o.watch_reload_ms) {
		watch_navigate(w); /* periodic reload */
		return;
	}
	w->op_started = now_ms(w->runner);
	w->pushed = !w->sched_running;
	rc = runner__extract(w->page, w->rt, w->rt->spec.timeout_ms ? w->rt->spec.timeout_ms : 10000,
	                     w_on_eval, w);
	if (rc != 0) {
		watch_restart(w, cdp_strerror(rc));
		return;
	}
	w->busy = 1;
}

static void on_binding(cdp_conn_t *c, const char *sid, const char *method, json_t *params,
                       void *ud)
{
	watch_t *w = ud;
	const char *name = json_string_value(json_object_get(params, "name"));

	if (!name || strcmp(name, PUSH_BINDING) != 0)
		return;
	watch_extract(w);
}

static const char *observer_js(const char *root)
{
	/* Installs one MutationObserver on the root (or body); each batch of mutations calls
	 * the binding once. Installed again after each load. */
	static char js[2048];
	json_t *sel = json_string(root ? root : "");
	char *enc = json_dumps(sel, JSON_ENCODE_ANY);

	snprintf(js, sizeof js,
	         "(() => { const sel = %s; const root = (sel && document.querySelector(sel)) || "
	         "document.body || document.documentElement; if (window.__cdpilotObs) "
	         "window.__cdpilotObs.disconnect(); const o = new MutationObserver(() => { try "
	         "{ window.%s('change'); } catch (e) {} }); o.observe(root, { subtree: true, "
	         "childList: true, characterData: true, attributes: true }); "
	         "window.__cdpilotObs = o; return true; })()",
	         enc ? enc : "\"\"", PUSH_BINDING);
	free(enc);
	json_decref(sel);
	return js;
}

/* A load of the page: navigated, waited for the adapter's selector and, with push, the
 * change observer installed; then the page is read. */
static void w_on_loaded(cdp_page_t *page, const cdp_read_result_t *res, void *ud)
{
	watch_t *w = ud;
	char msg[600] = "";
	const char *kind;

	w->busy = 0;
	if (w->closing || (res->status == -ECANCELED && !res->not_started))
		return;
	if (res->not_started) { /* a step after the navigation could not start */
		watch_restart(w, cdp_strerror(res->status));
		return;
	}
	switch (res->failed) {
	case CDP_READ_NONE: watch_ready(w); return;
	case CDP_READ_EVAL: watch_restart(w, "could not install the change observer"); return;
	default: break;
	}
	kind = runner__read_failure(res, w->rt, w->rt->spec.url, msg, sizeof msg);
	runner__target_failed_as(w->runner, w->rt, runner__outcome_of(res->status), kind, msg);
	watch_restart(w, msg);
}

static void watch_navigate(watch_t *w)
{
	const adapter_t *ad = w->rt->spec.adapter;
	const void *st = w->rt->spec.state;
	/* each step has its own limit; the whole read is their sum */
	cdp_read_req_t req = { .url = w->rt->spec.url };
	int rc;

	/* its actions and wait_for, then with push the change observer instead of a read */
	runner__read_req(w->rt, &req);
	req.function = NULL;
	req.args = NULL;
	req.expression =
	        w->rt->spec.push ? observer_js(ad->watch_root ? ad->watch_root(st) : NULL) : NULL;
	if (w->rt->spec.timeout_ms) { /* the target's deadline bounds each load, as a task's */
		req.timeout_ms = w->rt->spec.timeout_ms;
	} else { /* each step has its own limit; the whole load is their sum */
		req.nav_timeout_ms = 30000;
		req.wait_timeout_ms = 15000;
		req.eval_timeout_ms = 10000;
		req.timeout_ms = 30000 + (req.actions ? 30000 : 0) + 15000 + 10000;
	}

	watch_set_state(w, W_LOADING);
	rc = cdp_page_read(w->page, &req, w_on_loaded, w);
	if (rc != 0) {
		watch_restart(w, cdp_strerror(rc));
		return;
	}
	w->busy = 1;
}

/* ud: the method's name. A failure shows up as no pushes; the scheduled refresh still runs. */
static void on_push_setup(cdp_conn_t *c, const cdp_reply_t *rep, void *ud)
{
	if (rep->status)
		log_warn("run", "%s failed: %s", (const char *)ud, rep->error_message);
}

static void w_on_granted(pool_lease_t *lease, int status, const char *why, void *ud)
{
	watch_t *w = ud;
	cdp_conn_t *c;

	if (status != 0) {
		w->lease = NULL;
		if (w->closing || status == -ECANCELED)
			return;
		runner__target_failed(w->runner, w->rt, runner__outcome_of(status), why);
		watch_restart(w, why);
		return;
	}
	w->page = pool_lease_page(lease);
	c = cdp_page_conn(w->page);
	if (w->rt->spec.push) {
		w->binding = cdp_conn_on(c, CDP_E_RUNTIME_BINDING_CALLED,
		                         cdp_page_session_id(w->page), on_binding, w);
		/* bindings report through the Runtime domain, which pages do not enable (its
		 * events are a cost every other page would pay for nothing) */
		cdp_conn_send(c, cdp_page_session_id(w->page), CDP_M_RUNTIME_ENABLE, json_object(),
		              5000, on_push_setup, (void *)CDP_M_RUNTIME_ENABLE, NULL);
		cdp_conn_send(c, cdp_page_session_id(w->page), CDP_M_RUNTIME_ADD_BINDING,
		              json_pack("{s:s}", "name", PUSH_BINDING), 5000, on_push_setup,
		              (void *)CDP_M_RUNTIME_ADD_BINDING, NULL);
	}
	watch_navigate(w);
}

static void w_on_revoked(pool_lease_t *lease, enum pool_outcome reason, const char *why,
                         void *ud)
{
	watch_t *w = ud;
	char msg[600];

	snprintf(msg, sizeof msg, "%s: %s", pool_outcome_name(reason), why);
	if (w->binding && w->page)
		cdp_conn_off(cdp_page_conn(w->page), w->binding);
	w->binding = NULL;
	w->lease = NULL;
	w->page = NULL;
	pool_release(lease, reason);
	if (w->closing)
		return;
	w->open_failures = 0; /* a crash or a lost browser: reopen at once */
	watch_restart(w, msg);
}

static void w_on_moved(pool_lease_t *lease, void *ud)
{
	watch_t *w = ud;

	if (w->closing || w->moving_to || w->runner->stopping)
		return;
	runner__watch_open(w->runner, w->rt, w);
}

void runner__watch_open(runner_t *r, rtarget_t *rt, watch_t *replaces)
{
	pool_page_settings_t ps;
	watch_t *w;

	if (r->stopping || rt->removed)
		return;
	if (!replaces && r->watches >= r->o.watch_cap) {
		if (!rt->overflow)
			log_warn("run", "target %s: WATCH_CAP (%u) watched pages are open; reading it "
			         "in navigate mode until one is free", rt->spec.id, r->o.watch_cap);
		rt->overflow = 1;
		return;
	}
	rt->overflow = 0;
	w = calloc(1, sizeof *w);
	if (!w)
		abort();
	w->runner = r;
	w->rt = rt;
	rt->refs++;
	w->state = W_OPENING;
	uv_timer_init(r->loop, &w->retry);
	r->handles++;
	w->retry.data = w;
	r->watches++;
	if (replaces) {
		w->replaces = replaces;
		replaces->moving_to = w;
	} else {
		rt->watch = w;
	}
	runner__page_settings(rt, &ps);
	ps.no_frames = !r->o.watch_frames;
	ps.moving = replaces != NULL;
	w->lease = pool_acquire_watch_ex(r->pool, &ps, w_on_granted, w_on_revoked, w_on_moved, w);
	if (!w->lease)
		runner__watch_close(w);
}

/* The watch scheduler handed out rt: refresh its page (or open it); a target over
 * WATCH_CAP, or whose watch kept freezing, is read in navigate mode instead (the task
 * ends the scheduler's run). */
void runner__watch_due(runner_t *r, rtarget_t *rt)
{
	watch_t *w = rt->watch;

	if (!w && !runner__watch_navigates(r, rt))
		runner__watch_open(r, rt, NULL);
	if (!rt->watch && runner__watch_navigates(r, rt) && !rt->task) {
		runner__task_start(r, rt, RK_NAV);
		return;
	}
	if (!w) {
		runner__watch_sched_done(r, rt, 0);
		return;
	}
	if (w->state != W_READY || w->closing) {
		/* still opening: the first extraction will follow the load */
		runner__watch_sched_done(r, rt, 1);
		return;
	}
	w->sched_running = 1;
	watch_extract(w);
}

void runner__watch_reload(watch_t *w, int new_context)
{
	runner_t *r = w->runner;
	rtarget_t *rt = w->rt;

	if (w->closing)
		return;
	if (new_context) {
		log_info("run", "watched page of %s: reopening it in a new context", rt->spec.id);
		runner__watch_close(w);
		if (!rt->watch)
			runner__watch_open(r, rt, NULL);
		return;
	}
	log_info("run", "watched page of %s: reloading it", rt->spec.id);
	if (w->state != W_READY) {
		w->reload_asked = 1; /* loading or opening: reload once it is ready */
		return;
	}
	w->loaded_at = 0; /* the next read reloads (watch_extract) */
	if (!w->busy)
		watch_extract(w);
}

void runner__watch_reread(watch_t *w)
{
	if (w->closing)
		return;
	if (w->state != W_READY || w->busy) {
		w->again = w->state == W_READY; /* else the read after the load answers */
		return;
	}
	watch_extract(w);
}
