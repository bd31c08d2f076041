/*
 * task.c: one run of a due target that is not watched. A navigate task takes a pool lease
 * (its page opened at the target's URL), waits for the load and the adapter's wait_for
 * selector, evaluates the adapter's JavaScript and publishes; a fetch task (adapters that
 * need no browser) GETs the URL with libcurl and publishes the JSON. Every path ends in
 * task_finish() exactly once: the lease is released, the scheduler told, the target's
 * reference dropped, and the pump run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/snapshot.h"
#include "cdp/cdp_err.h"
#include "daemon/targets.h"
#include "runner/runner_priv.h"
#include "util/log.h"

/* ---- navigate tasks ---- */

/* Ends the task with its outcome (POOL_OK, or the cause of the failure; a revoked task's
 * is the revocation's). why: the failure's message; NULL with a failure, a task cut short
 * by the stop, which is not counted. A verification (TP_VERIFY) has its own counts in
 * verify.c: no scheduler run, no task outcome, no failure of the target. */
static void task_finish(task_t *t, enum pool_outcome out, const char *why)
{
	runner_t *r = t->runner;
	rtarget_t *rt = t->rt;
	int ok = out == POOL_OK, verify = t->purpose == TP_VERIFY;

	if (!ok && t->revoked)
		out = t->revoke_reason;
	if (!ok && t->purpose == TP_CHECK)
		runner__adapt_checked_page(r, rt, NULL, why ? why : "cut short by the stop",
		                           t->adapt_gen);
	else if (!ok && why && verify)
		runner__verify_done(r, rt, NULL, why, t->url, t->started);
	else if (!ok && why)
		runner__target_failed_as(r, rt, out, t->fail_kind, why);
	if (!ok && why && t->endpoint)
		runner__adapt_read_failed(r, rt, why);
	verify = t->purpose != TP_RUN;
	if (!verify && !(r->stopping && !ok && !why))
		runner__task_done(r, rt->spec.adapter, out, now_ms(r) - t->started);
	if (t->lease) {
		pool_release(t->lease, out);
		t->lease = NULL;
	}
	r->running[t->kind]--;
	if (t->purpose == TP_VERIFY) {
		rt->verify = NULL;
		r->verifying--;
	} else if (t->purpose == TP_RUN) {
		rt->task = NULL;
		if (!rt->removed)
			sched_done(sched_of(r, rt), rt->spec.id, ok, now_ms(r));
		runner__run_over(r, rt);
		runner__share_run_over(r, rt);
		runner__adapt_settle(r, rt);
	} /* TP_CHECK: adapt.c counts its checks (the endpoint is read next) */
	runner__rt_unref(rt);
	free(t);
	if (r->closing)
		runner__maybe_finish_close(r);
	else
		runner__pump(r);
}

/* An operation callback: returns 1 if the task was revoked meanwhile (and finishes it). */
static int op_revoked(task_t *t)
{
	t->op_pending = 0;
	if (!t->revoked)
		return 0;
	task_finish(t, POOL_FAILED, t->why);
	return 1;
}

/* How long before the task's deadline its page read ends. */
#define READ_MARGIN_MS 300

static uint32_t remaining(task_t *t)
{
	uint32_t total = t->rt->spec.timeout_ms ? t->rt->spec.timeout_ms
	                                        : t->runner->o.task_timeout_ms;
	uint64_t used = now_ms(t->runner) - t->started;
	return used + 100 >= total ? 100 : (uint32_t)(total - used);
}

/* Publishes what the task read (a fresh navigation: verified), or hands a verification's
 * value to verify.c: POOL_OK, or POOL_FAILED if it made no snapshot (the target's failure
 * is recorded). */
static enum pool_outcome published(task_t *t, const json_t *value)
{
	if (t->purpose == TP_VERIFY) {
		runner__verify_done(t->runner, t->rt, value, NULL, t->url, t->started);
		return POOL_OK;
	}
	if (t->purpose == TP_CHECK) {
		runner__adapt_checked_page(t->runner, t->rt, value, NULL, t->adapt_gen);
		return POOL_OK;
	}
	if (runner__publish(t->runner, t->rt, value, t->url, t->started, PUB_VERIFIED) != 0)
		return POOL_FAILED;
	if (t->rt->adapt)
		runner__adapt_page_read(t->runner, t->rt);
	return POOL_OK;
}

/* The page's fetch/XHR URLs came back: learning goes on without the page (adapt.c). */
static void on_urls(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	task_t *t = ud;

	(void)page;
	t->op_pending = 0;
	if (!t->revoked && status == 0)
		runner__adapt_learn(t->runner, t->rt, value, t->adapt_gen);
	else
		log_debug("run", "target %s: the page's requests could not be listed: %s",
		          t->rt->spec.id, t->revoked ? t->why : why && *why ? why : cdp_strerror(status));
	task_finish(t, t->learn_out, NULL);
}

/* After a page read of an adaptive target without an endpoint: lists the page's fetch/XHR
 * URLs. 0: on_urls finishes the task. */
static int list_urls(task_t *t, enum pool_outcome out)
{
	uint32_t left = remaining(t);

	t->learn_out = out;
	if (cdp_page_evaluate(t->page, runner__adapt_urls_js, left < 3000 ? left : 3000, on_urls,
	                      t) != 0)
		return -1;
	t->op_pending = 1;
	return 0;
}

/* The page read: loaded, acted on, waited for and extracted (or the step that failed,
 * and why). */
static void on_read(cdp_page_t *page, const cdp_read_result_t *res, void *ud)
{
	task_t *t = ud;
	char msg[600] = "";

	if (op_revoked(t))
		return;
	if (res->not_started) { /* a step after the navigation could not start */
		task_finish(t, runner__outcome_of(res->status), cdp_strerror(res->status));
		return;
	}
	if (res->failed == CDP_READ_NONE) {
		enum pool_outcome out = published(t, res->value);
		if (out == POOL_OK && t->purpose == TP_RUN &&
		    runner__adapt_wants_learn(t->runner, t->rt, t->adapt_gen) && list_urls(t, out) == 0)
			return;
		task_finish(t, out, NULL);
		return;
	}
	t->fail_kind = runner__read_failure(res, t->rt, t->url, msg, sizeof msg);
	task_finish(t, runner__outcome_of(res->status), msg);
}

/* Navigates to the task's URL, runs the target's actions, waits for its selector and
 * extracts (or discovers), in one read bounded by what is left of the task's time. The
 * read ends a moment before the lease's own deadline, so that a step that never ends
 * fails as itself (a selector that never matched), not as the task's deadline. */
static int start_read(task_t *t)
{
	cdp_read_req_t req = { .url = t->url };
	uint32_t left = remaining(t);

	runner__read_req(t->rt, &req);
	req.timeout_ms = left > 2 * READ_MARGIN_MS ? left - READ_MARGIN_MS : left;
	return cdp_page_read(t->page, &req, on_read, t);
}

static void on_granted(pool_lease_t *lease, int status, const char *why, void *ud)
{
	task_t *t = ud;
	int rc;

	if (status != 0) {
		t->lease = NULL; /* freed by the pool */
		/* -ETIMEDOUT: the deadline passed while the page opened, or the lease waited
		 * longer than LEASE_TIMEOUT_SECONDS: both are timeouts */
		task_finish(t, runner__outcome_of(status),
		            status == -ECANCELED && t->runner->stopping ? NULL : why);
		return;
	}
	t->page = pool_lease_page(lease);
	rc = start_read(t);
	if (rc != 0) {
		task_finish(t, POOL_FAILED, cdp_strerror(rc));
		return;
	}
	t->op_pending = 1;
}

static void on_revoked(pool_lease_t *lease, enum pool_outcome reason, const char *why,
                       void *ud)
{
	task_t *t = ud;

	t->revoked = 1;
	t->revoke_reason = reason;
	snprintf(t->why, sizeof t->why, "%s: %s", pool_outcome_name(reason), why);
	pool_release(lease, reason);
	t->lease = NULL;
	if (!t->op_pending)
		task_finish(t, POOL_FAILED, t->why);
	/* else: the pending operation is cancelled as the pool closes the page, and its
	 * callback finishes the task */
}

static void on_fetched(const fetch_result_t *res, void *ud)
{
	task_t *t = ud;
	json_t *doc;
	json_error_t jerr;
	char msg[600];

	if (res->status != 0) {
		snprintf(msg, sizeof msg, "fetching %.300s failed: %.200s", t->url, res->error);
		t->fail_kind = res->status == -ETIMEDOUT ? RUNNER_KIND_TIMEOUT : RUNNER_KIND_NETWORK;
		task_finish(t, runner__outcome_of(res->status), msg);
		return;
	}
	if (res->http_code >= 400) {
		snprintf(msg, sizeof msg, "fetching %.300s: HTTP %ld", t->url, res->http_code);
		t->fail_kind = RUNNER_KIND_HTTP;
		task_finish(t, POOL_FAILED, msg);
		return;
	}
	doc = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, &jerr);
	if (!doc) {
		snprintf(msg, sizeof msg, "fetching %.300s: the body is not JSON (line %d column %d: %.160s)",
		         t->url, jerr.line, jerr.column, jerr.text);
		t->fail_kind = RUNNER_KIND_DATA;
		task_finish(t, POOL_FAILED, msg);
		return;
	}
	task_finish(t, t->endpoint ? runner__adapt_publish(t->runner, t->rt, doc, t->url, t->started)
	                           : published(t, doc),
	            NULL);
	json_decref(doc);
}

/* Asks the pool for the task's page, with its target's page settings. NULL: the pool is
 * closing, or refused the settings (logged). */
static pool_lease_t *lease_for(runner_t *r, task_t *t)
{
	pool_page_settings_t ps;

	runner__page_settings(t->rt, &ps);
	/* a verification or an endpoint's check reads the page as a first visit would: no
	 * cache, cookies or service worker from the site's kept page */
	ps.fresh = t->purpose != TP_RUN;
	return pool_acquire_ex(r->pool, t->url, t->rt->spec.timeout_ms, &ps, on_granted,
	                       on_revoked, t);
}

static task_t *task_new(runner_t *r, rtarget_t *rt, enum rkind kind, enum task_purpose why)
{
	task_t *t = calloc(1, sizeof *t);

	if (!t)
		abort();
	t->runner = r;
	t->rt = rt;
	t->purpose = why;
	rt->refs++;
	t->started = now_ms(r);
	t->adapt_gen = rt->adapt ? rt->adapt->gen : 0;
	t->kind = kind;
	r->running[kind]++;
	return t;
}

void runner__task_start_verify(runner_t *r, rtarget_t *rt)
{
	task_t *t = task_new(r, rt, RK_NAV, TP_VERIFY);

	rt->verify = t;
	r->verifying++;
	snprintf(t->url, sizeof t->url, "%.*s", (int)sizeof t->url - 1, rt->spec.url);
	t->lease = lease_for(r, t);
	if (!t->lease)
		task_finish(t, POOL_FAILED, "the pool is closing or refused the target's page settings");
}

void runner__task_start_check(runner_t *r, rtarget_t *rt)
{
	task_t *t = task_new(r, rt, RK_NAV, TP_CHECK);

	snprintf(t->url, sizeof t->url, "%.*s", (int)sizeof t->url - 1, rt->spec.url);
	t->lease = lease_for(r, t);
	if (!t->lease)
		task_finish(t, POOL_FAILED, "the pool is closing or refused the target's page settings");
}

void runner__task_start(runner_t *r, rtarget_t *rt, enum rkind kind)
{
	task_t *t = task_new(r, rt, kind, TP_RUN);
	const adapter_t *ad = rt->spec.adapter;

	rt->task = t;
	if (kind == RK_FETCH && rt->adapt && rt->adapt->in_fetch) {
		t->endpoint = 1; /* an adaptive target's endpoint (adapt.c) */
		if (!rt->adapt->map) {
			task_finish(t, POOL_FAILED, NULL); /* dropped meanwhile: settled now */
			return;
		}
		snprintf(t->url, sizeof t->url, "%s", rt->adapt->url);
	} else if (!ad->build_url ||
	           ad->build_url(rt->spec.state, rt->spec.url, t->url, sizeof t->url)) {
		snprintf(t->url, sizeof t->url, "%.*s", (int)sizeof t->url - 1, rt->spec.url);
	}
	if (kind == RK_NAV) {
		t->lease = lease_for(r, t);
		if (!t->lease)
			task_finish(t, POOL_FAILED, "the pool is closing or refused the target's page settings");
		return;
	}
	if (fetch_get(r->fetch, t->url, remaining(t), 0, on_fetched, t) != 0)
		task_finish(t, POOL_FAILED, "could not start the HTTP request");
}
