/*
 * pool: leases of browser contexts on one long-lived browser, recycling without a gap, and
 * crash recovery. This file holds the leases: the waiting queue and the slots (a lease holds
 * a slot from the moment its page starts opening until its context is disposed, or is
 * declared stuck, so at most concurrency_cap contexts exist at once), granting, revoking,
 * releasing. The once-a-second tick and the pool's own lifecycle are in pool_life.c, kept
 * pages in pool_keep.c, the browsers the pool owns (launch, ready, loss, recycle, their
 * target events) in pool_browser.c, the options and their environment variables in
 * pool_opts.c.
 */
#include "pool/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_names.h"
#include "pool/pool_priv.h"
#include "util/log.h"
#include "util/list.h"

const char *pool_outcome_name(enum pool_outcome o)
{
	static const char *const n[] = { "ok", "failed", "timeout", "target_crashed",
		                         "browser_lost" };
	return o < POOL_NOUTCOMES ? n[o] : "unknown";
}

const char *pool_recycle_reason_name(enum pool_recycle_reason r)
{
	static const char *const n[] = { "uptime", "task_count", "requested", "stuck", "crash",
		                         "stall", "pid_threshold", "rss_limit", "pids_pressure" };
	return r < POOL_RECYCLE_NREASONS ? n[r] : "unknown";
}

/* ---- lists ---- */

static void active_add(pool_t *p, pool_lease_t *l)
{
	l->prev = NULL;
	l->next = p->active;
	if (p->active)
		p->active->prev = l;
	p->active = l;
}

static void active_remove(pool_t *p, pool_lease_t *l)
{
	DLIST_UNLINK(&p->active, l, prev, next);
}

static void waiting_remove(pool_t *p, pool_lease_t *l)
{
	DLIST_UNLINK_TAIL(&p->waiting_head, &p->waiting_tail, l, prev, next);
	p->nwaiting--;
}

/* Puts l (the tail) behind the moves already waiting, ahead of everything else: a watched
 * page moving off a recycled browser opens before new ones, and its old page goes sooner. */
static void waiting_move_ahead(pool_t *p, pool_lease_t *l)
{
	pool_lease_t *at = p->waiting_head;

	while (at && at != l && at->moving)
		at = at->next;
	if (at == l)
		return;
	DLIST_UNLINK_TAIL(&p->waiting_head, &p->waiting_tail, l, prev, next);
	l->next = at;
	l->prev = at->prev;
	if (at->prev)
		at->prev->next = l;
	else
		p->waiting_head = l;
	at->prev = l;
}

/* ---- lease teardown ---- */

/* Drops one of the handles the pool waits for; the last one after close frees the pool. */
void pool__unref(pool_t *p)
{
	if (--p->handles_open == 0 && p->closing == 2) {
		pool_closed_cb cb = p->closed_cb;
		void *ud = p->closed_ud;
		if (cb)
			cb(p, ud);
		free(p);
	}
}

static void lease_timer_closed(uv_handle_t *h)
{
	pool_lease_t *l = h->data;
	pool_t *p = l->pool;

	free(l->url);
	free(l->key);
	pool__lease_settings_free(l);
	free(l);
	pool__unref(p);
}

/* Frees the lease once nobody needs it: page closed, task done with it. */
void pool__lease_maybe_free(pool_lease_t *l)
{
	if (l->state != L_DONE || !l->released)
		return;
	active_remove(l->pool, l);
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, lease_timer_closed);
	pool__maybe_finish_close(l->pool);
}

static void slot_free(pool_lease_t *l)
{
	pool_t *p = l->pool;

	if (!l->holds_slot)
		return;
	l->holds_slot = 0;
	if (l->watch)
		p->watch_in_use--;
	else
		p->in_use--;
	if (l->pb) {
		l->pb->leases--;
		pool__pb_maybe_close(l->pb);
	}
	pool__pump_soon(p);
}

static void on_page_closed(void *ud)
{
	pool_lease_t *l = ud;
	pool_t *p = l->pool;

	l->page = NULL;
	l->state = L_DONE;
	if (l->evicted) {
		l->evicted = 0;
		p->evicting--;
	}
	slot_free(l);
	pool__lease_maybe_free(l); /* may free l */
	pool__maybe_finish_close(p);
}

static void on_stuck(uv_timer_t *t)
{
	pool_lease_t *l = t->data;
	pool_t *p = l->pool;

	if (l->state != L_CLOSING || !l->holds_slot)
		return;
	p->st.stuck_contexts++;
	log_warn("pool", "a browser context did not close within %u ms: slot freed, browser "
	                 "will be recycled",
	         p->opts.close_grace_ms);
	slot_free(l);
	if (l->pb == p->current)
		pool_request_recycle(p, POOL_RECYCLE_STUCK);
}

void pool__ignore_reply(cdp_conn_t *c, const cdp_reply_t *r, void *ud) {}

/* Starts disposing the lease's page; the slot is freed when that completes or is stuck. */
void pool__lease_close_page(pool_lease_t *l, int interrupt)
{
	pool_t *p = l->pool;

	l->state = L_CLOSING;
	if (!l->page) {
		on_page_closed(l);
		return;
	}
	{
		cdp_page_counters_t pc;
		cdp_page_get_counters(l->page, &pc);
		p->st.dialogs_dismissed += pc.dialogs_dismissed;
		p->st.requests_blocked += pc.requests_blocked;
	}
	if (interrupt && cdp_conn_is_open(cdp_page_conn(l->page)))
		cdp_conn_send(cdp_page_conn(l->page), cdp_page_session_id(l->page),
		              CDP_M_RUNTIME_TERMINATE_EXECUTION, NULL, 2000, pool__ignore_reply,
		              NULL, NULL);
	uv_timer_start(&l->timer, on_stuck, p->opts.close_grace_ms, 0);
	cdp_page_close(l->page, on_page_closed, l);
}

void pool__lease_revoke(pool_lease_t *l, enum pool_outcome reason, const char *why)
{
	pool_t *p = l->pool;

	if (l->state == L_KEPT) { /* no task: the page just goes */
		pool__keep_close(l);
		return;
	}
	if (l->state != L_GRANTED)
		return;
	l->state = L_REVOKED;
	l->revoked = 1;
	if (!l->watch)
		p->st.tasks[reason]++;
	uv_timer_stop(&l->timer);
	log_info("pool", "lease revoked (%s): %s", pool_outcome_name(reason), why);
	if (l->revoked_cb)
		l->revoked_cb(l, reason, why, l->ud);
	if (l->state == L_REVOKED)
		pool__lease_close_page(l, reason == POOL_TIMEOUT);
}

/* ---- granting ---- */

static void grant_fail(pool_lease_t *l, int status, const char *why)
{
	l->grant_failed = 1;
	l->released = 1; /* the task never owned it */
	l->granted_cb(l, status, why, l->ud);
}

static void on_deadline(uv_timer_t *t)
{
	pool_lease_t *l = t->data;
	char why[128];

	snprintf(why, sizeof why, "task deadline of %u ms passed", l->task_timeout_ms);
	if (l->state == L_OPENING) {
		/* the page is still opening: fail the grant; on_open disposes the page */
		l->pool->st.tasks[POOL_TIMEOUT]++;
		grant_fail(l, -ETIMEDOUT, why);
		return;
	}
	pool__lease_revoke(l, POOL_TIMEOUT, why);
}

static void on_download_deny(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	if (r->status)
		log_warn("pool", "could not deny downloads: %s", r->error_message);
}

/* The lease's page is no longer opening: a watch lease lets the next one open. */
static void opening_over(pool_lease_t *l)
{
	if (!l->watch_opening)
		return;
	l->watch_opening = 0;
	l->pool->watch_opening--;
	l->pool->watch_opened_at = uv_now(l->pool->loop);
	pool__pump_soon(l->pool);
}

/* A lease's task begins on its page: the browser counts it, granted_cb, and a recycle once
 * the browser has served RECYCLE_TASK_COUNT. */
static void task_begins(pool_lease_t *l)
{
	pool_t *p = l->pool;

	l->state = L_GRANTED;
	l->pb->tasks++;
	l->granted_cb(l, 0, "", l->ud);
	if (p->opts.recycle_task_count && l->pb == p->current &&
	    l->pb->tasks >= p->opts.recycle_task_count)
		pool_request_recycle(p, POOL_RECYCLE_TASKS);
}

static void on_open(cdp_page_t *page, int status, const char *why, void *ud)
{
	pool_lease_t *l = ud;

	opening_over(l);
	l->page = page;
	if (l->grant_failed) { /* deadline passed or pool closed while opening */
		pool__lease_close_page(l, 0);
		return;
	}
	if (status != 0) {
		char msg[512];
		uv_timer_stop(&l->timer);
		snprintf(msg, sizeof msg, "could not open a page: %s", why);
		l->state = L_DONE;
		slot_free(l);
		grant_fail(l, status, msg);
		pool__lease_maybe_free(l);
		return;
	}
	l->uses = 1;
	pool__pb_note_refusal(l->pb, page); /* its first navigation may have been refused */
	if (l->watch)
		uv_timer_stop(&l->timer); /* no deadline for a watched page */
	/* Downloads are denied per context (a browser-level command). */
	cdp_conn_send(cdp_page_conn(page), NULL, CDP_M_BROWSER_SET_DOWNLOAD_BEHAVIOR,
	              json_pack("{s:s, s:s, s:b}", "behavior", "deny", "browserContextId",
	                        cdp_page_context_id(page), "eventsEnabled", 0),
	              5000, on_download_deny, NULL, NULL);
	task_begins(l);
}

/* Waiting lease l takes kept page k, of its key on the current browser: no context to
 * open; its deadline starts now. */
static void grant_kept(pool_t *p, pool_lease_t *k, pool_lease_t *l)
{
	waiting_remove(p, l);
	active_add(p, l);
	uv_timer_stop(&l->timer);
	l->pb = k->pb;
	l->page = k->page;
	l->uses = k->uses + 1;
	l->holds_slot = 1; /* k's, which stays in in_use and pb->leases */
	k->page = NULL;
	k->holds_slot = 0;
	k->state = L_DONE;
	p->nkept--;
	pool__lease_maybe_free(k);
	p->st.pages_reused++;
	uv_timer_start(&l->timer, on_deadline, l->task_timeout_ms, 0);
	task_begins(l);
}

static void start_lease(pool_t *p, pool_lease_t *l)
{
	cdp_page_opts_t po;
	int rc;

	uv_timer_stop(&l->timer);
	active_add(p, l);
	l->state = L_OPENING;
	l->pb = p->current;
	l->holds_slot = 1;
	if (l->watch) {
		p->watch_in_use++;
		p->watch_opening++;
		l->watch_opening = 1;
	} else {
		p->in_use++;
	}
	l->pb->leases++;
	memset(&po, 0, sizeof po);
	po.hold = l->pb->hold;
	/* A page with a block list of its own (l->block) is not opened at its URL: its own
	 * Fetch is in force only once a first document has committed, and the pool's
	 * browser-wide blocking lets its requests through only once the pool knows its target
	 * (pool_browser.c, exempt_frame); so about:blank first. */
	po.url = l->pb->hold && !l->block ? l->url : NULL;
	po.user_agent = l->user_agent           ? l->user_agent
	                : p->opts.user_agent[0] ? p->opts.user_agent
	                                        : NULL;
	po.viewport_width = l->viewport_w ? l->viewport_w : p->opts.viewport_width;
	po.viewport_height = l->viewport_h ? l->viewport_h : p->opts.viewport_height;
	if (l->block)
		po.block_resources = strcmp(l->block, "none") ? l->block : NULL;
	else
		po.block_resources = strcmp(p->opts.block_resources, "none") && !l->pb->l_blocked
		                             ? p->opts.block_resources
		                             : NULL;
	po.extra_headers_json = l->headers_json           ? l->headers_json
	                        : p->opts.extra_headers[0] ? p->opts.extra_headers
	                                                   : NULL;
	po.cookies_json = l->cookies_json;
	po.no_frames = l->no_frames;
	po.no_cache = l->key != NULL; /* it may be kept: no load reads an earlier one's cache */
	po.dismiss_dialogs = 1;
	po.block_popups = 1;
	uv_timer_start(&l->timer, on_deadline, l->task_timeout_ms, 0);
	rc = cdp_page_open(browser_conn(l->pb->b), &po, l->task_timeout_ms, on_open, l);
	if (rc != 0) {
		uv_timer_stop(&l->timer);
		opening_over(l);
		l->state = L_DONE;
		slot_free(l);
		grant_fail(l, rc, cdp_strerror(rc));
		pool__lease_maybe_free(l);
	}
}

/* A browser new leases may go to: ready, and its connection still open (between the socket
 * dropping and the process being reaped, the browser is not yet "lost"). */
static int serving(const pool_t *p)
{
	cdp_conn_t *c;

	if (p->closing || !p->current || p->current->state != PB_READY || p->current->lost)
		return 0;
	c = browser_conn(p->current->b);
	return c && cdp_conn_is_open(c);
}

static void pump(uv_timer_t *t)
{
	pool_t *p = t->data;
	/* Only the requests waiting now: one acquired from a callback waits for the next turn,
	 * so a task that retries at once cannot keep this loop from returning. */
	unsigned n = p->nwaiting;

	pool_lease_t *l = p->waiting_head, *next, *k;
	unsigned unserved = 0;

	/* Watch leases need no slot but a turn to open; ordinary ones take a kept page of their
	 * site, or go in FIFO order while slots are free; a lease that finds none free has a
	 * kept page of another site disposed for it. */
	for (; n-- > 0 && l && serving(p) && !p->paused; l = next) {
		next = l->next;
		if (!l->watch && l->key && (k = pool__keep_find(p, l->key))) {
			grant_kept(p, k, l);
			continue;
		}
		if (!l->watch && p->in_use >= p->opts.concurrency_cap) {
			if (p->nkept > 0 && p->evicting < ++unserved)
				pool__keep_evict(p);
			continue;
		}
		if (l->watch && p->watch_opening >= p->opts.watch_open_cap)
			continue;
		waiting_remove(p, l);
		start_lease(p, l);
	}
}

void pool__pump_soon(pool_t *p)
{
	if (!p->closing || p->waiting_head)
		uv_timer_start(&p->pump_timer, pump, 0, 0);
}

static void on_wait_timeout(uv_timer_t *t)
{
	pool_lease_t *l = t->data;
	pool_t *p = l->pool;
	char why[128];

	waiting_remove(p, l);
	active_add(p, l);
	l->state = L_DONE;
	p->st.lease_timeouts++;
	snprintf(why, sizeof why, "no browser context free within %u ms", p->opts.lease_timeout_ms);
	grant_fail(l, -ETIMEDOUT, why);
	pool__lease_maybe_free(l);
}

pool_lease_t *pool_acquire(pool_t *p, const char *url, uint32_t task_timeout_ms,
                           pool_granted_cb granted_cb, pool_revoked_cb revoked_cb, void *ud)
{
	return pool_acquire_ex(p, url, task_timeout_ms, NULL, granted_cb, revoked_cb, ud);
}

pool_lease_t *pool_acquire_ex(pool_t *p, const char *url, uint32_t task_timeout_ms,
                              const pool_page_settings_t *page, pool_granted_cb granted_cb,
                              pool_revoked_cb revoked_cb, void *ud)
{
	pool_lease_t *l;

	if (p->closing || !granted_cb)
		return NULL;
	l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	if ((url && !(l->url = strdup(url))) || pool__lease_settings(l, &p->opts, page) != 0 ||
	    pool__keep_key(l, &p->opts, page && page->fresh) != 0) {
		free(l->url);
		pool__lease_settings_free(l);
		free(l);
		return NULL;
	}
	l->pool = p;
	l->state = L_WAITING;
	l->task_timeout_ms = task_timeout_ms ? task_timeout_ms : p->opts.task_timeout_ms;
	l->granted_cb = granted_cb;
	l->revoked_cb = revoked_cb;
	l->ud = ud;
	uv_timer_init(p->loop, &l->timer);
	l->timer.data = l;
	p->handles_open++;
	l->prev = p->waiting_tail;
	if (p->waiting_tail)
		p->waiting_tail->next = l;
	else
		p->waiting_head = l;
	p->waiting_tail = l;
	p->nwaiting++;
	uv_timer_start(&l->timer, on_wait_timeout, p->opts.lease_timeout_ms, 0);
	pool__begin(p);
	pool__ensure_browser(p); /* wanted or not: this lease needs one */
	pool__pump_soon(p);
	return l;
}

pool_lease_t *pool_acquire_watch(pool_t *p, pool_granted_cb granted_cb,
                                 pool_revoked_cb revoked_cb, pool_moved_cb moved_cb, void *ud)
{
	return pool_acquire_watch_ex(p, NULL, granted_cb, revoked_cb, moved_cb, ud);
}

pool_lease_t *pool_acquire_watch_ex(pool_t *p, const pool_page_settings_t *page,
                                    pool_granted_cb granted_cb, pool_revoked_cb revoked_cb,
                                    pool_moved_cb moved_cb, void *ud)
{
	pool_lease_t *l = pool_acquire_ex(p, NULL, 0, page, granted_cb, revoked_cb, ud);

	if (l) {
		l->watch = 1;
		l->moved_cb = moved_cb;
		uv_timer_stop(&l->timer); /* no wait timeout: it waits only for its turn to open */
		if (l->moving)
			waiting_move_ahead(p, l);
	}
	return l;
}

void pool_set_paused(pool_t *p, int paused)
{
	if (p->paused == !!paused)
		return;
	p->paused = !!paused;
	log_warn("pool", paused ? "leasing paused" : "leasing resumed");
	if (!paused)
		pool__pump_soon(p);
}

void pool_lease_cancel(pool_lease_t *l)
{
	pool_t *p = l->pool;

	if (l->state == L_OPENING && !l->grant_failed) {
		/* the page is still opening: fail the grant now; on_open disposes the page */
		uv_timer_stop(&l->timer);
		grant_fail(l, -ECANCELED, "lease request cancelled while its page was opening");
		return;
	}
	if (l->state != L_WAITING)
		return;
	uv_timer_stop(&l->timer);
	waiting_remove(p, l);
	active_add(p, l);
	l->state = L_DONE;
	grant_fail(l, -ECANCELED, "lease request cancelled");
	pool__lease_maybe_free(l);
}

cdp_page_t *pool_lease_page(pool_lease_t *l)
{
	return l->state == L_GRANTED ? l->page : NULL;
}

void pool_release(pool_lease_t *l, enum pool_outcome outcome)
{
	pool_t *p = l->pool;

	if (l->released)
		return;
	l->released = 1;
	if (l->state == L_GRANTED) {
		uv_timer_stop(&l->timer);
		if (!l->watch)
			p->st.tasks[outcome < POOL_NOUTCOMES ? outcome : POOL_FAILED]++;
		if (outcome == POOL_OK)
			p->st.consecutive_crashes = 0;
		/* a task that timed out may have left the page running a script: stop it, and the
		 * close is bounded by the stuck timer (a context that will not close recycles) */
		if (!(outcome == POOL_OK && serving(p) && pool__keep(l)))
			pool__lease_close_page(l, outcome == POOL_TIMEOUT);
	}
	pool__lease_maybe_free(l);
}
