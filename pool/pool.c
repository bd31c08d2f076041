/*
 * pool: leases of browser contexts on one long-lived browser, recycling without a gap, and
 * crash recovery. Each browser the pool owns is a pbrowser_t: the current one (new leases),
 * at most one replacement being launched, and any number draining or closing. A lease holds
 * a slot from the moment its page starts opening until its context is disposed (or is
 * declared stuck), so at most concurrency_cap contexts exist at once.
 */
#include "pool/pool.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_err.h"
#include "util/log.h"

#define BACKOFF_BASE_MS 500u
#define BACKOFF_MAX_MS 30000u
#define TICK_MS 1000u
#define MOVE_GRACE_MS 30000u

enum pb_state { PB_LAUNCHING, PB_READY, PB_DRAINING, PB_CLOSING };
static const char *const pb_state_names[] = { "launching", "ready", "draining", "closing" };

typedef struct pbrowser {
	struct pbrowser *next;
	pool_t *pool;
	browser_t *b;
	enum pb_state state;
	unsigned leases;     /* slots held on this browser (opening, granted or closing) */
	uint64_t ready_at;   /* loop time */
	uint64_t tasks;      /* leases granted on it */
	int lost;            /* the browser went away by itself */
	enum pool_recycle_reason reason; /* why it was launched, if as a replacement */
	int replacement;
	cdp_listener_t *l_created, *l_crashed;
	cdp_listener_t *l_blocked; /* browser-wide blocking (a browser we launched) */
	cdp_hold_t *hold;          /* new pages held until set up (a browser we launched) */
} pbrowser_t;

enum lease_state { L_WAITING, L_OPENING, L_GRANTED, L_REVOKED, L_CLOSING, L_DONE };

struct pool_lease {
	pool_lease_t *prev, *next; /* pool->waiting or pool->active */
	pool_t *pool;
	pbrowser_t *pb;
	enum lease_state state;
	cdp_page_t *page;
	uv_timer_t timer; /* wait timeout, then the task deadline, then the stuck grace */
	uint32_t task_timeout_ms;
	char *url;         /* the page is opened there (NULL: about:blank) */
	pool_granted_cb granted_cb;
	pool_revoked_cb revoked_cb;
	void *ud;
	int released;      /* the task called pool_release() */
	int holds_slot;
	int grant_failed;  /* granted_cb fired with an error while the page was opening */
	int revoked;
	enum pool_outcome outcome;
	int watch;          /* pool_acquire_watch(): no slot, no deadline once granted */
	pool_moved_cb moved_cb;
	uint64_t move_asked; /* loop time moved_cb fired, 0: not asked */
};

struct pool {
	uv_loop_t *loop;
	cdp_wsctx_t *ws;
	pool_opts_t opts;
	pbrowser_t *browsers;   /* every browser we own */
	pbrowser_t *current;    /* serving new leases (READY), or NULL */
	pbrowser_t *launching;  /* being launched (first, relaunch, or replacement) */
	pool_lease_t *waiting_head, *waiting_tail;
	pool_lease_t *active;   /* opening, granted, revoked or closing */
	unsigned in_use, nwaiting, watch_in_use;
	int paused;
	uv_timer_t pump_timer;  /* 0-delay: runs pump() on the next loop turn */
	uv_timer_t tick;        /* uptime recycle check, relaunch backoff */
	uint64_t relaunch_at;   /* loop time at which to launch after a crash, 0: none */
	int recycle_pending;
	enum pool_recycle_reason recycle_reason;
	int closing;
	uint64_t close_deadline;
	pool_closed_cb closed_cb;
	void *closed_ud;
	int handles_open;
	pool_stats_t st;
};

static void pump_soon(pool_t *p);
static void launch(pool_t *p, int replacement, enum pool_recycle_reason reason);
static void maybe_finish_close(pool_t *p);
static void pb_maybe_close(pbrowser_t *pb);

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

/* ---- options ---- */

void pool_opts_init(pool_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->concurrency_cap = 8;
	o->lease_timeout_ms = 60000;
	o->task_timeout_ms = 30000;
	o->recycle_uptime_ms = 21600ull * 1000;
	o->recycle_task_count = 5000;
	o->close_grace_ms = 5000;
	o->shutdown_grace_ms = 10000;
	snprintf(o->block_resources, sizeof o->block_resources, "image,media,font");
	o->viewport_width = 1280;
	o->viewport_height = 800;
	browser_opts_init(&o->browser);
}

/* Appends "NAME='value': expected ..." to err; returns -EINVAL. */
static int opt_error(char *err, size_t errlen, const char *name, const char *val,
                     const char *expected)
{
	size_t used = strlen(err);
	if (used < errlen)
		snprintf(err + used, errlen - used, "%s%s='%s': expected %s", used ? "\n" : "", name,
		         val, expected);
	return -EINVAL;
}

/* Parses an integer env var into *out within [lo, hi]; scale multiplies it. */
static int env_uint(const char *name, uint64_t lo, uint64_t hi, uint64_t scale, uint64_t *out,
                    char *err, size_t errlen)
{
	const char *v = getenv(name);
	char *end = NULL;
	unsigned long long n;
	char expected[128];

	if (!v)
		return 0;
	snprintf(expected, sizeof expected, "a whole number from %llu to %llu",
	         (unsigned long long)lo, (unsigned long long)hi);
	if (!*v || !isdigit((unsigned char)*v))
		return opt_error(err, errlen, name, v, expected);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return opt_error(err, errlen, name, v, expected);
	*out = (uint64_t)n * scale;
	return 0;
}

static const char *const resource_types[] = { "document", "stylesheet", "image", "media",
	                                      "font", "script", "texttrack", "xhr", "fetch",
	                                      "eventsource", "websocket", "manifest", "other" };

/* "none", or a comma-separated list of known resource types with no empty entry. */
static int valid_block_list(const char *v)
{
	if (strcmp(v, "none") == 0)
		return 1;
	if (!*v || strlen(v) >= sizeof((pool_opts_t *)0)->block_resources)
		return 0;
	for (;;) {
		size_t n = strcspn(v, ","), i;
		for (i = 0; i < sizeof resource_types / sizeof resource_types[0]; i++)
			if (strlen(resource_types[i]) == n && strncmp(resource_types[i], v, n) == 0)
				break;
		if (n == 0 || i == sizeof resource_types / sizeof resource_types[0])
			return 0;
		if (v[n] == '\0')
			return 1;
		v += n + 1;
	}
}

int pool_opts_from_env(pool_opts_t *o, char *err, size_t errlen)
{
	uint64_t v;
	const char *s;
	int rc = 0;

	if (errlen)
		err[0] = '\0';
	rc |= browser_opts_from_env(&o->browser, err, errlen);
	v = o->concurrency_cap;
	rc |= env_uint("CONCURRENCY_CAP", 1, 256, 1, &v, err, errlen);
	o->concurrency_cap = (unsigned)v;
	v = o->lease_timeout_ms;
	rc |= env_uint("LEASE_TIMEOUT_SECONDS", 1, 86400, 1000, &v, err, errlen);
	o->lease_timeout_ms = (uint32_t)v;
	v = o->task_timeout_ms;
	rc |= env_uint("TASK_TIMEOUT_SECONDS", 1, 3600, 1000, &v, err, errlen);
	o->task_timeout_ms = (uint32_t)v;
	rc |= env_uint("RECYCLE_UPTIME_SECONDS", 0, 30ull * 86400, 1000, &o->recycle_uptime_ms,
	               err, errlen);
	rc |= env_uint("RECYCLE_TASK_COUNT", 0, 100000000, 1, &o->recycle_task_count, err,
	               errlen);
	s = getenv("BLOCK_RESOURCES");
	if (s) {
		if (valid_block_list(s))
			snprintf(o->block_resources, sizeof o->block_resources, "%s", s);
		else
			rc |= opt_error(err, errlen, "BLOCK_RESOURCES", s,
			                "'none' or a comma-separated list of document, stylesheet, "
			                "image, media, font, script, texttrack, xhr, fetch, "
			                "eventsource, websocket, manifest, other");
	}
	s = getenv("USER_AGENT");
	if (s) {
		if (strlen(s) < sizeof o->user_agent)
			snprintf(o->user_agent, sizeof o->user_agent, "%s", s);
		else
			rc |= opt_error(err, errlen, "USER_AGENT", "(too long)",
			                "at most 511 characters");
	}
	s = getenv("VIEWPORT");
	if (s) {
		int w = 0, h = 0;
		char tail = 0;
		if (sscanf(s, "%dx%d%c", &w, &h, &tail) == 2 && w >= 100 && w <= 10000 && h >= 100 &&
		    h <= 10000) {
			o->viewport_width = w;
			o->viewport_height = h;
		} else {
			rc |= opt_error(err, errlen, "VIEWPORT", s,
			                "WIDTHxHEIGHT, each from 100 to 10000, e.g. 1280x800");
		}
	}
	s = getenv("EXTRA_HEADERS");
	if (s && *s) {
		json_t *j = json_loads(s, 0, NULL);
		int ok = json_is_object(j) && strlen(s) < sizeof o->extra_headers;
		const char *k;
		json_t *val;
		json_object_foreach(j, k, val) ok &= json_is_string(val);
		json_decref(j);
		if (ok)
			snprintf(o->extra_headers, sizeof o->extra_headers, "%s", s);
		else
			rc |= opt_error(err, errlen, "EXTRA_HEADERS", s,
			                "a JSON object of string values, e.g. {\"X-Team\":\"scores\"}");
	}
	return rc ? -EINVAL : 0;
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
	if (l->prev)
		l->prev->next = l->next;
	else
		p->active = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
}

static void waiting_remove(pool_t *p, pool_lease_t *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		p->waiting_head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	else
		p->waiting_tail = l->prev;
	l->prev = l->next = NULL;
	p->nwaiting--;
}

/* ---- lease teardown ---- */

/* Drops one of the handles the pool waits for; the last one after close frees the pool. */
static void pool_unref(pool_t *p)
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
	free(l);
	pool_unref(p);
}

/* Frees the lease once nobody needs it: page closed, task done with it. */
static void lease_maybe_free(pool_lease_t *l)
{
	if (l->state != L_DONE || !l->released)
		return;
	active_remove(l->pool, l);
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, lease_timer_closed);
	maybe_finish_close(l->pool);
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
		pb_maybe_close(l->pb);
	}
	pump_soon(p);
}

static void on_page_closed(void *ud)
{
	pool_lease_t *l = ud;
	pool_t *p = l->pool;

	l->page = NULL;
	l->state = L_DONE;
	slot_free(l);
	lease_maybe_free(l); /* may free l */
	maybe_finish_close(p);
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

static void ignore_reply(cdp_conn_t *c, const cdp_reply_t *r, void *ud) {}

/* Starts disposing the lease's page; the slot is freed when that completes or is stuck. */
static void lease_close_page(pool_lease_t *l, int interrupt)
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
		              "Runtime.terminateExecution", NULL, 2000, ignore_reply, NULL, NULL);
	uv_timer_start(&l->timer, on_stuck, p->opts.close_grace_ms, 0);
	cdp_page_close(l->page, on_page_closed, l);
}

static void lease_revoke(pool_lease_t *l, enum pool_outcome reason, const char *why)
{
	pool_t *p = l->pool;

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
		lease_close_page(l, reason == POOL_TIMEOUT);
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
	lease_revoke(l, POOL_TIMEOUT, why);
}

static void on_download_deny(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	if (r->status)
		log_warn("pool", "could not deny downloads: %s", r->error_message);
}

static void on_open(cdp_page_t *page, int status, const char *why, void *ud)
{
	pool_lease_t *l = ud;
	pool_t *p = l->pool;

	l->page = page;
	if (l->grant_failed) { /* deadline passed or pool closed while opening */
		lease_close_page(l, 0);
		return;
	}
	if (status != 0) {
		char msg[512];
		uv_timer_stop(&l->timer);
		snprintf(msg, sizeof msg, "could not open a page: %s", why);
		l->state = L_DONE;
		slot_free(l);
		grant_fail(l, status, msg);
		lease_maybe_free(l);
		return;
	}
	l->state = L_GRANTED;
	l->pb->tasks++;
	if (l->watch)
		uv_timer_stop(&l->timer); /* no deadline for a watched page */
	/* Downloads are denied per context (a browser-level command). */
	cdp_conn_send(cdp_page_conn(page), NULL, "Browser.setDownloadBehavior",
	              json_pack("{s:s, s:s, s:b}", "behavior", "deny", "browserContextId",
	                        cdp_page_context_id(page), "eventsEnabled", 0),
	              5000, on_download_deny, NULL, NULL);
	l->granted_cb(l, 0, "", l->ud);
	if (p->opts.recycle_task_count && l->pb == p->current &&
	    l->pb->tasks >= p->opts.recycle_task_count)
		pool_request_recycle(p, POOL_RECYCLE_TASKS);
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
	if (l->watch)
		p->watch_in_use++;
	else
		p->in_use++;
	l->pb->leases++;
	memset(&po, 0, sizeof po);
	po.hold = l->pb->hold;
	po.url = l->pb->hold ? l->url : NULL;
	po.user_agent = p->opts.user_agent[0] ? p->opts.user_agent : NULL;
	po.viewport_width = p->opts.viewport_width;
	po.viewport_height = p->opts.viewport_height;
	po.block_resources = strcmp(p->opts.block_resources, "none") && !l->pb->l_blocked
	                             ? p->opts.block_resources
	                             : NULL;
	po.extra_headers_json = p->opts.extra_headers[0] ? p->opts.extra_headers : NULL;
	po.dismiss_dialogs = 1;
	po.block_popups = 1;
	uv_timer_start(&l->timer, on_deadline, l->task_timeout_ms, 0);
	rc = cdp_page_open(browser_conn(l->pb->b), &po, l->task_timeout_ms, on_open, l);
	if (rc != 0) {
		uv_timer_stop(&l->timer);
		l->state = L_DONE;
		slot_free(l);
		grant_fail(l, rc, cdp_strerror(rc));
		lease_maybe_free(l);
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

	pool_lease_t *l = p->waiting_head, *next;

	/* Watch leases need no slot; ordinary ones go in FIFO order while slots are free. */
	for (; n-- > 0 && l && serving(p) && !p->paused; l = next) {
		next = l->next;
		if (!l->watch && p->in_use >= p->opts.concurrency_cap)
			continue;
		waiting_remove(p, l);
		start_lease(p, l);
	}
}

static void pump_soon(pool_t *p)
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
	lease_maybe_free(l);
}

pool_lease_t *pool_acquire(pool_t *p, const char *url, uint32_t task_timeout_ms,
                           pool_granted_cb granted_cb, pool_revoked_cb revoked_cb, void *ud)
{
	pool_lease_t *l;

	if (p->closing || !granted_cb)
		return NULL;
	l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	if (url && !(l->url = strdup(url))) {
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
	pump_soon(p);
	return l;
}

pool_lease_t *pool_acquire_watch(pool_t *p, pool_granted_cb granted_cb,
                                 pool_revoked_cb revoked_cb, pool_moved_cb moved_cb, void *ud)
{
	pool_lease_t *l = pool_acquire(p, NULL, 0, granted_cb, revoked_cb, ud);

	if (l) {
		l->watch = 1;
		l->moved_cb = moved_cb;
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
		pump_soon(p);
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
	lease_maybe_free(l);
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
		lease_close_page(l, 0);
	}
	lease_maybe_free(l);
}

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
	pbrowser_t **pp;

	for (pp = &p->browsers; *pp; pp = &(*pp)->next)
		if (*pp == pb) {
			*pp = pb->next;
			break;
		}
	cdp_hold_free(pb->hold); /* its command has been answered or cancelled by now */
	free(pb);
	maybe_finish_close(p);
}

static void pb_close(pbrowser_t *pb)
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

static void pb_maybe_close(pbrowser_t *pb)
{
	if (pb->leases == 0 && (pb->state == PB_DRAINING || (pb->lost && pb->state != PB_CLOSING)))
		pb_close(pb);
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
	cdp_conn_send(c, NULL, "Target.closeTarget", json_pack("{s:s}", "targetId", tid), 5000,
	              ignore_reply, NULL, NULL);
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
		lease_revoke(l, POOL_TARGET_CRASHED, "the page's renderer crashed");
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
			lease_revoke(l, POOL_BROWSER_LOST, msg);
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
		if (delay == 0 && !p->closing)
			launch(p, 0, POOL_RECYCLE_CRASH);
	}
	if (pb->state == PB_READY)
		pb_set_state(pb, PB_DRAINING);
	pb_maybe_close(pb);
}

static void on_discover(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	if (r->status)
		log_warn("pool", "Target.setDiscoverTargets failed: %s", r->error_message);
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
		pb_close(pb);
		if (!p->closing && !p->current) {
			p->relaunch_at = uv_now(p->loop) + delay;
		} else if (!p->closing && pb->replacement) {
			p->recycle_pending = 1; /* try the replacement again on the next tick */
		}
		return;
	}
	if (p->closing) {
		pb_close(pb);
		return;
	}
	p->st.browser_launches++;
	c = browser_conn(b);
	pb->l_created = cdp_conn_on(c, "Target.targetCreated", NULL, on_target_created, pb);
	pb->l_crashed = cdp_conn_on(c, "Target.targetCrashed", NULL, on_target_crashed, pb);
	cdp_conn_send(c, NULL, "Target.setDiscoverTargets", json_pack("{s:b}", "discover", 1), 5000,
	              on_discover, NULL, NULL);
	/* Blocking for the whole browser, so it covers a page's first document too; a browser
	 * we attached to may have other users, and gets it page by page instead. */
	if (browser_pid(b) > 0 && strcmp(p->opts.block_resources, "none") != 0 &&
	    cdp_block_browser(c, p->opts.block_resources, &p->st.requests_blocked,
	                      &pb->l_blocked) != 0)
		log_error("pool", "cannot block %s browser-wide; pages block on their own",
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
		pb_maybe_close(old);
	} else {
		if (p->recycle_reason == POOL_RECYCLE_CRASH && p->st.browser_launches > 1)
			p->st.recycles[POOL_RECYCLE_CRASH]++;
		p->current = pb;
		log_info("pool", "browser %d ready in %llu ms", (int)browser_pid(b),
		         (unsigned long long)browser_launch_ms(b));
	}
	p->recycle_reason = POOL_RECYCLE_REQUESTED;
	pump_soon(p);
}

static void launch(pool_t *p, int replacement, enum pool_recycle_reason reason)
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
		pb_close(pb);
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
	launch(p, 1, reason);
}

static void on_tick(uv_timer_t *t)
{
	pool_t *p = t->data;
	uint64_t now = uv_now(p->loop);

	if (p->closing) {
		if (now >= p->close_deadline) {
			for (pool_lease_t *l = p->active, *next; l; l = next) {
				next = l->next;
				lease_revoke(l, POOL_TIMEOUT, "shutdown grace passed");
			}
		}
		return;
	}
	for (pool_lease_t *l = p->active, *next; l; l = next) {
		next = l->next;
		if (l->watch && l->move_asked && now - l->move_asked >= MOVE_GRACE_MS)
			lease_revoke(l, POOL_TIMEOUT, "watched page not moved to the new browser in time");
	}
	if (!p->current && !p->launching && p->relaunch_at && now >= p->relaunch_at)
		launch(p, 0, POOL_RECYCLE_CRASH);
	if (p->current && p->opts.recycle_uptime_ms &&
	    now - p->current->ready_at >= p->opts.recycle_uptime_ms)
		pool_request_recycle(p, POOL_RECYCLE_UPTIME);
	if (p->recycle_pending)
		pool_request_recycle(p, p->recycle_reason);
}

/* ---- pool lifecycle ---- */

pool_t *pool_new(uv_loop_t *loop, cdp_wsctx_t *ws, const pool_opts_t *opts)
{
	pool_t *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->loop = loop;
	p->ws = ws;
	if (opts)
		p->opts = *opts;
	else
		pool_opts_init(&p->opts);
	uv_timer_init(loop, &p->pump_timer);
	p->pump_timer.data = p;
	uv_timer_init(loop, &p->tick);
	p->tick.data = p;
	p->handles_open = 2;
	p->recycle_reason = POOL_RECYCLE_REQUESTED;
	return p;
}

int pool_start(pool_t *p)
{
	browser_sweep_stale_dirs();
	uv_timer_start(&p->tick, on_tick, TICK_MS, TICK_MS);
	launch(p, 0, POOL_RECYCLE_REQUESTED);
	return 0;
}

static void pool_handle_closed(uv_handle_t *h)
{
	pool_unref(h->data);
}

static void maybe_finish_close(pool_t *p)
{
	if (!p->closing || p->closing == 2)
		return;
	if (p->active || p->waiting_head)
		return;
	/* every lease is gone: close the browsers, then our own handles */
	for (pbrowser_t *pb = p->browsers; pb; pb = pb->next)
		if (pb->state != PB_CLOSING)
			pb_close(pb);
	if (p->browsers)
		return;
	p->closing = 2;
	uv_timer_stop(&p->tick);
	uv_timer_stop(&p->pump_timer);
	uv_close((uv_handle_t *)&p->pump_timer, pool_handle_closed);
	uv_close((uv_handle_t *)&p->tick, pool_handle_closed);
}

void pool_close(pool_t *p, pool_closed_cb cb, void *ud)
{
	if (p->closing)
		return;
	p->closing = 1;
	p->closed_cb = cb;
	p->closed_ud = ud;
	p->close_deadline = uv_now(p->loop) + p->opts.shutdown_grace_ms;
	log_info("pool", "closing: %u lease(s) in flight, %u waiting", p->in_use, p->nwaiting);
	/* Requests still waiting are cancelled; leases already opening or granted are in
	 * flight and finish (bounded by the shutdown grace, then revoked). */
	while (p->waiting_head)
		pool_lease_cancel(p->waiting_head);
	if (!uv_is_active((uv_handle_t *)&p->tick))
		uv_timer_start(&p->tick, on_tick, TICK_MS, TICK_MS);
	maybe_finish_close(p);
}

void pool_get_stats(const pool_t *p, pool_stats_t *out)
{
	*out = p->st;
	out->leases_in_use = p->in_use;
	out->capacity = p->opts.concurrency_cap;
	out->waiting = p->nwaiting;
	out->watch_leases = p->watch_in_use;
	out->paused = p->paused;
	out->ready = p->current && p->current->state == PB_READY;
	out->browser_uptime_ms = out->ready ? uv_now(p->loop) - p->current->ready_at : 0;
	out->tasks_on_browser = p->current ? p->current->tasks : 0;
}

pid_t pool_browser_pid(const pool_t *p)
{
	return p->current ? browser_pid(p->current->b) : 0;
}

cdp_conn_t *pool_browser_conn(const pool_t *p)
{
	return p->current && p->current->state == PB_READY ? browser_conn(p->current->b) : NULL;
}

size_t pool_browser_pids(const pool_t *p, pid_t *out, size_t max)
{
	size_t n = 0;

	for (const pbrowser_t *pb = p->browsers; pb && n < max; pb = pb->next) {
		pid_t pid = browser_pid(pb->b);
		if (pid > 0)
			out[n++] = pid;
	}
	return n;
}
