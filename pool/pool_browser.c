/*
 * pool_browser: the browsers a pool owns, each a pbrowser_t with its own checked state
 * (launching -> ready -> draining -> closing). Launches the first browser, its replacements
 * on a recycle and a new one after a crash (with backoff); when a replacement is ready it
 * becomes current and the old one drains its leases, its watch leases asked to move, then
 * closes. Listens to each browser's target events: a crashed page revokes its lease, a popup
 * is closed at once. Launches a browser only while one is needed (wanted, or a lease waits)
 * and closes one that is not wanted once idle (pool_set_wanted).
 */
#include "pool/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_names.h"
#include "pool/pool_priv.h"
#include "util/log.h"
#include "util/list.h"

#define BACKOFF_BASE_MS 500u
#define BACKOFF_MAX_MS 30000u

static const char *const pb_state_names[] = { "launching", "ready", "draining", "closing" };

/* ---- browsers ---- */

static void pb_set_state(pbrowser_t *pb, enum pb_state s)
{
	static const int legal[4][4] = {
		/* to:        LAUNCHING READY DRAINING CLOSING */
		/* LAUNCHING */ { 0, 1, 0, 1 },
		/* READY     */ { 0, 0, 1, 1 },
		/* DRAINING  */ { 0, 0, 0, 1 },
		/* CLOSING   */ { 0, 0, 0, 0 },
	};
	if (!legal[pb->state][s]) {
		log_error("pool", "illegal browser transition %s -> %s", pb_state_names[pb->state],
		          pb_state_names[s]);
		abort();
	}
	log_debug("pool", "browser %d: %s -> %s", (int)browser_pid(pb->b),
	          pb_state_names[pb->state], pb_state_names[s]);
	pb->state = s;
}

static void pb_closed(browser_t *b, void *ud)
{
	pbrowser_t *pb = ud;
	pool_t *p = pb->pool;

	LIST_UNLINK(&p->browsers, pb, next);
	cdp_hold_free(pb->hold); /* its command has been answered or cancelled by now */
	free(pb);
	pool__maybe_finish_close(p);
}

void pool__pb_close(pbrowser_t *pb)
{
	pool_t *p = pb->pool;
	cdp_conn_t *c = browser_conn(pb->b);

	if (pb->state == PB_CLOSING)
		return;
	pb_set_state(pb, PB_CLOSING);
	if (p->current == pb)
		p->current = NULL;
	if (p->launching == pb)
		p->launching = NULL;
	if (c) {
		cdp_conn_off(c, pb->l_created);
		cdp_conn_off(c, pb->l_crashed);
		if (pb->l_blocked)
			cdp_conn_off(c, pb->l_blocked);
	}
	pb->l_created = pb->l_crashed = pb->l_blocked = NULL;
	browser_close(pb->b, pb_closed, pb);
}

void pool__pb_maybe_close(pbrowser_t *pb)
{
	if (pb->leases == 0 && (pb->state == PB_DRAINING || (pb->lost && pb->state != PB_CLOSING)))
		pool__pb_close(pb);
}

static pool_lease_t *lease_by_target(pool_t *p, pbrowser_t *pb, const char *target_id)
{
	for (pool_lease_t *l = p->active; l; l = l->next)
		if (l->pb == pb && l->page && strcmp(cdp_page_target_id(l->page), target_id) == 0)
			return l;
	return NULL;
}

static pool_lease_t *lease_by_context(pool_t *p, pbrowser_t *pb, const char *ctx_id)
{
	for (pool_lease_t *l = p->active; l; l = l->next)
		if (l->pb == pb && l->page && strcmp(cdp_page_context_id(l->page), ctx_id) == 0)
			return l;
	return NULL;
}

static void on_target_created(cdp_conn_t *c, const char *sid, const char *method,
                              json_t *params, void *ud)
{
	pbrowser_t *pb = ud;
	pool_t *p = pb->pool;
	const char *tid = NULL, *type = NULL, *ctx = NULL, *opener = NULL;
	pool_lease_t *l;

	if (json_unpack(params, "{s:{s:s, s:s, s?s, s?s}}", "targetInfo", "targetId", &tid,
	                "type", &type, "browserContextId", &ctx, "openerId", &opener) != 0 ||
	    !ctx)
		return;
	if (strcmp(type, "page") != 0)
		return;
	/* A second page in a leased context is a popup: close it at once. So is any page with
	 * an opener in a browser we launched, even in a context whose lease is still opening
	 * (a page opened at its URL runs its first scripts then): no page the pool makes has
	 * one. An attached browser may have other users: there only our contexts count. */
	l = lease_by_context(p, pb, ctx);
	if (!(l && l->state == L_GRANTED && strcmp(cdp_page_target_id(l->page), tid) != 0) &&
	    !(opener && (l || browser_pid(pb->b) > 0)))
		return;
	p->st.popups_closed++;
	log_debug("pool", "closing popup %s", tid);
	cdp_conn_send(c, NULL, CDP_M_TARGET_CLOSE_TARGET, json_pack("{s:s}", "targetId", tid), 5000,
	              pool__ignore_reply, NULL, NULL);
}

static void on_target_crashed(cdp_conn_t *c, const char *sid, const char *method,
                              json_t *params, void *ud)
{
	pbrowser_t *pb = ud;
	const char *tid = NULL;
	pool_lease_t *l;

	if (json_unpack(params, "{s:s}", "targetId", &tid) != 0)
		return;
	l = lease_by_target(pb->pool, pb, tid);
	if (l)
		pool__lease_revoke(l, POOL_TARGET_CRASHED, "the page's renderer crashed");
}

static void on_browser_lost(browser_t *b, int err, const char *why, void *ud)
{
	pbrowser_t *pb = ud;
	pool_t *p = pb->pool;
	char msg[512];

	pb->lost = 1;
	log_warn("pool", "browser %d lost: %s", (int)browser_pid(b), why);
	snprintf(msg, sizeof msg, "the browser went away: %s", why);
	for (pool_lease_t *l = p->active, *next; l; l = next) {
		next = l->next;
		if (l->pb == pb)
			pool__lease_revoke(l, POOL_BROWSER_LOST, msg);
	}
	if (pb == p->current || pb == p->launching) {
		unsigned n = p->st.consecutive_crashes++;
		uint64_t delay = n == 0 ? 0 : BACKOFF_BASE_MS << (n > 6 ? 6 : n - 1);
		if (delay > BACKOFF_MAX_MS)
			delay = BACKOFF_MAX_MS;
		if (pb == p->current)
			p->current = NULL;
		if (pb == p->launching)
			p->launching = NULL;
		p->recycle_reason = POOL_RECYCLE_CRASH;
		if (n > 0)
			log_warn("pool", "%u browser crashes in a row: relaunching in %llu ms", n + 1,
			         (unsigned long long)delay);
		p->relaunch_at = uv_now(p->loop) + delay;
		if (delay == 0 && !p->closing && pool__needed(p))
			pool__launch(p, 0, POOL_RECYCLE_CRASH);
	}
	if (pb->state == PB_READY)
		pb_set_state(pb, PB_DRAINING);
	pool__pb_maybe_close(pb);
}

/* Browser-wide blocking spares the pages that block on their own (a lease with its own
 * list): a page's main frame has its target's id. */
static int exempt_frame(const char *frame_id, void *ud)
{
	pbrowser_t *pb = ud;
	pool_lease_t *l = *frame_id ? lease_by_target(pb->pool, pb, frame_id) : NULL;

	return l && l->block;
}

/* A document refused by the policy: the page's next failed navigation says why. A page
 * still opening is not known by its target yet: its refusal waits in the ring. */
static void on_refused(const char *frame_id, const char *url, const char *why, void *ud)
{
	pbrowser_t *pb = ud;
	pool_lease_t *l = *frame_id ? lease_by_target(pb->pool, pb, frame_id) : NULL;
	pb_refusal_t *r;

	if (l) {
		char msg[sizeof r->why];
		snprintf(msg, sizeof msg, "%.300s is refused by the target policy: %.400s", url, why);
		cdp_page_note_refusal(l->page, msg);
		return;
	}
	if (!*frame_id || strlen(frame_id) >= sizeof r->frame)
		return;
	r = &pb->refusals[pb->next_refusal++ % PB_REFUSALS];
	snprintf(r->frame, sizeof r->frame, "%s", frame_id);
	snprintf(r->why, sizeof r->why, "%.300s is refused by the target policy: %.400s", url, why);
}

void pool__pb_note_refusal(pbrowser_t *pb, cdp_page_t *page)
{
	const char *tid = cdp_page_target_id(page);

	for (unsigned i = 0; i < PB_REFUSALS; i++) {
		pb_refusal_t *r = &pb->refusals[i];
		if (r->frame[0] && strcmp(r->frame, tid) == 0) {
			cdp_page_note_refusal(page, r->why);
			r->frame[0] = '\0';
		}
	}
}

static void on_discover(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	if (r->status)
		log_warn("pool", "Target.setDiscoverTargets failed: %s", r->error_message);
}

/* Asks the holders of watch leases on a draining browser to move to the current one. */
static void ask_moves(pool_t *p, pbrowser_t *old)
{
	uint64_t now = uv_now(p->loop);

	for (pool_lease_t *l = p->active, *next; l; l = next) {
		next = l->next;
		if (l->pb == old && l->watch && l->state == L_GRANTED && !l->move_asked) {
			l->move_asked = now;
			if (l->moved_cb)
				l->moved_cb(l, l->ud);
		}
	}
}

static void on_browser_ready(browser_t *b, int status, const char *why, void *ud)
{
	pbrowser_t *pb = ud;
	pool_t *p = pb->pool;
	cdp_conn_t *c;

	if (p->launching == pb)
		p->launching = NULL;
	if (status != 0) {
		unsigned n = p->st.consecutive_crashes++;
		uint64_t delay = BACKOFF_BASE_MS << (n > 6 ? 6 : n);
		if (delay > BACKOFF_MAX_MS)
			delay = BACKOFF_MAX_MS;
		log_error("pool", "browser launch failed: %s (retrying in %llu ms)", why,
		          (unsigned long long)delay);
		pb->lost = 1;
		pool__pb_close(pb);
		if (!p->closing && !p->current) {
			p->relaunch_at = uv_now(p->loop) + delay;
		} else if (!p->closing && pb->replacement) {
			p->recycle_pending = 1; /* try the replacement again on the next tick */
		}
		return;
	}
	if (p->closing) {
		pool__pb_close(pb);
		return;
	}
	p->st.browser_launches++;
	c = browser_conn(b);
	pb->l_created = cdp_conn_on(c, CDP_E_TARGET_TARGET_CREATED, NULL, on_target_created, pb);
	pb->l_crashed = cdp_conn_on(c, CDP_E_TARGET_TARGET_CRASHED, NULL, on_target_crashed, pb);
	cdp_conn_send(c, NULL, CDP_M_TARGET_SET_DISCOVER_TARGETS, json_pack("{s:b}", "discover", 1),
	              5000, on_discover, NULL, NULL);
	/* Blocking for the whole browser, so it covers a page's first document too; a browser
	 * we attached to may have other users, and gets it page by page instead. */
	pb->blk.blocked = &p->st.requests_blocked;
	pb->blk.exempt = exempt_frame;
	pb->blk.ud = pb;
	pb->blk.policy = p->opts.policy;
	pb->blk.refused = on_refused;
	if (browser_pid(b) > 0 &&
	    cdp_block_browser_ex(c, p->opts.block_resources, &pb->blk, &pb->l_blocked) != 0)
		log_error("pool", "cannot block %s browser-wide; pages block on their own, and "
		                  "the target policy does not hold in them",
		          p->opts.block_resources);
	/* Each page is held until its set-up is in, and then opened straight at its task's
	 * URL; a browser we attached to may have other users, whose pages must not wait. */
	if (browser_pid(b) > 0 && cdp_hold_pages(c, &pb->hold) != 0)
		log_error("pool", "cannot hold new pages; they open at about:blank");
	pb_set_state(pb, PB_READY);
	pb->ready_at = uv_now(p->loop);
	if (p->current) {
		pbrowser_t *old = p->current;
		p->st.recycles[pb->reason]++;
		log_info("pool", "recycle (%s): browser %d replaces %d, which drains %u lease(s)",
		         pool_recycle_reason_name(pb->reason), (int)browser_pid(b),
		         (int)browser_pid(old->b), old->leases);
		pb_set_state(old, PB_DRAINING);
		p->current = pb;
		ask_moves(p, old);
		pool__keep_sweep(p, uv_now(p->loop), 0); /* kept pages of the old one go */
		pool__pb_maybe_close(old);
	} else {
		if (p->recycle_reason == POOL_RECYCLE_CRASH && p->st.browser_launches > 1)
			p->st.recycles[POOL_RECYCLE_CRASH]++;
		p->current = pb;
		log_info("pool", "browser %d ready in %llu ms", (int)browser_pid(b),
		         (unsigned long long)browser_launch_ms(b));
	}
	p->recycle_reason = POOL_RECYCLE_REQUESTED;
	pool__pump_soon(p);
}

void pool__launch(pool_t *p, int replacement, enum pool_recycle_reason reason)
{
	pbrowser_t *pb;
	int rc;

	if (p->launching || p->closing)
		return;
	pb = calloc(1, sizeof *pb);
	if (!pb) {
		log_error("pool", "out of memory launching a browser");
		abort();
	}
	pb->pool = p;
	pb->state = PB_LAUNCHING;
	pb->replacement = replacement;
	pb->reason = reason;
	pb->b = browser_new(p->loop, p->ws, &p->opts.browser);
	if (!pb->b) {
		log_error("pool", "out of memory creating a browser");
		abort();
	}
	pb->next = p->browsers;
	p->browsers = pb;
	p->launching = pb;
	p->relaunch_at = 0;
	rc = browser_start(pb->b, on_browser_ready, on_browser_lost, pb);
	if (rc != 0) {
		/* browser_start() did not call back: report through the same path, later */
		p->launching = NULL;
		pb->lost = 1;
		pool__pb_close(pb);
		p->relaunch_at = uv_now(p->loop) + BACKOFF_MAX_MS;
		log_error("pool", "cannot start a browser: %s", cdp_strerror(rc));
	}
}

void pool_request_recycle(pool_t *p, enum pool_recycle_reason reason)
{
	if (p->closing || p->launching || !p->current)
		return;
	log_info("pool", "recycle requested (%s)", pool_recycle_reason_name(reason));
	p->recycle_pending = 0;
	pool__launch(p, 1, reason);
}

/* ---- a browser only while one is needed ---- */

int pool__needed(const pool_t *p)
{
	return p->wanted || p->nwaiting > 0;
}

void pool__ensure_browser(pool_t *p)
{
	if (p->closing || p->current || p->launching)
		return;
	if (p->relaunch_at && uv_now(p->loop) < p->relaunch_at)
		return; /* after a crash: the tick launches it once the backoff has passed */
	pool__launch(p, 0, p->relaunch_at ? POOL_RECYCLE_CRASH : POOL_RECYCLE_REQUESTED);
}

void pool_set_wanted(pool_t *p, int wanted)
{
	wanted = !!wanted;
	if (p->closing)
		return;
	pool__begin(p);
	if (wanted != p->wanted) {
		if (wanted)
			log_info("pool", "a browser is wanted%s",
			         p->current || p->launching ? "" : ": launching one");
		else if (p->opts.idle_close_ms)
			log_info("pool", "no browser is wanted: it closes once idle for %u s",
			         p->opts.idle_close_ms / 1000);
		else
			log_info("pool", "no browser is wanted (BROWSER_IDLE_SECONDS=0: it stays)");
	}
	p->wanted = wanted;
	if (wanted) {
		p->idle_since = 0;
		pool__ensure_browser(p);
	}
}

void pool__browser_tick(pool_t *p, uint64_t now)
{
	int idle = p->in_use == 0 && p->watch_in_use == 0 && p->nwaiting == 0;
	pbrowser_t *pb = p->current;

	if (!pb && !p->launching) {
		p->idle_since = 0;
		if (pool__needed(p))
			pool__ensure_browser(p); /* after a crash, once the backoff has passed */
		return;
	}
	if (p->wanted || !idle || !pb || p->launching || !p->opts.idle_close_ms) {
		p->idle_since = 0;
		return;
	}
	if (!p->idle_since) {
		p->idle_since = now;
		return;
	}
	if (now - p->idle_since < p->opts.idle_close_ms)
		return;
	p->idle_since = 0;
	p->st.idle_closes++;
	log_info("pool", "browser %d closed: no browser wanted and no lease for %u s",
	         (int)browser_pid(pb->b), p->opts.idle_close_ms / 1000);
	pool__pb_close(pb); /* its process tree is confirmed gone before it is freed */
}
