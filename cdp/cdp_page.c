/*
 * cdp_page: one page in its own browser context over a flattened CDP session. Each page
 * runs at most one operation at a time; an operation is a small state machine driven by
 * command replies and events, bounded by one uv_timer (op_timer). A second timer
 * (poll_timer) paces wait_for polling and, while a navigation waits for its load event
 * with no command in flight, watches that the connection is still open.
 *
 * Opening is a chain (context, target, session) and then the session's set-up commands,
 * sent together. On a holding connection (cdp_hold_pages) the session is Chrome's own
 * auto-attached one, reported by Target.attachedToTarget (often before createTarget
 * answers), and the set-up ends with Runtime.runIfWaitingForDebugger, which lets the page
 * start loading.
 *
 * Apart from those set-up commands, at most one command of the page is in flight; when an
 * operation ends early (timeout, crash, close) the commands in flight are cancelled with
 * cdp_conn_cancel(), so the conn never holds a callback to a page that has moved on. Late
 * replies after a cancel are dropped by the conn.
 *
 * Lifetime: the page is freed only from the close callback of its last timer, which libuv
 * runs at the top of the loop, never on the stack of a page callback or a conn callback.
 * So callbacks may close the page (or start the next operation) freely.
 */
#include "cdp/cdp_page.h"
#include "cdp/cdp_page_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_names.h"
#include "util/log.h"

static void on_reply(cdp_conn_t *conn, const cdp_reply_t *reply, void *ud);

/* ---- small helpers ---- */

void cdp__page_set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
}

int cdp__page_str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

uint32_t cdp__page_remaining_ms(const cdp_page_t *p)
{
	uint64_t now = uv_now(p->loop);
	return p->deadline > now ? (uint32_t)(p->deadline - now) : 1;
}

void cdp__page_listener_off(cdp_page_t *p, cdp_listener_t **l)
{
	if (*l) {
		cdp_conn_off(p->conn, *l);
		*l = NULL;
	}
}

/* cdp__page_send() and cdp__page_send_text(): params (stolen) or text (borrowed). */
static int page_send(cdp_page_t *p, const char *session, const char *method, json_t *params,
                     const char *text, size_t len, uint32_t timeout_ms)
{
	uint64_t id = 0;
	int rc;

	if (!timeout_ms)
		timeout_ms = cdp__page_remaining_ms(p) + PAGE_CMD_SLACK_MS;
	p->pending = 1;
	p->pending_id = 0;
	p->pending_method = method;
	rc = text ? cdp_conn_send_text(p->conn, session, method, text, len, timeout_ms, on_reply,
	                               p, &id)
	          : cdp_conn_send(p->conn, session, method, params, timeout_ms, on_reply, p, &id);
	if (rc != 0) {
		p->pending = 0;
		return rc;
	}
	if (p->pending)
		p->pending_id = id;
	return 0;
}

/*
 * Sends one command of the page (params stolen); its reply comes to on_reply. Only one
 * command is in flight at a time. timeout_ms 0: the operation's remaining time plus slack.
 */
int cdp__page_send(cdp_page_t *p, const char *session, const char *method, json_t *params,
                   uint32_t timeout_ms)
{
	return page_send(p, session, method, params, NULL, 0, timeout_ms);
}

/* As cdp__page_send(), with params as the text of a JSON object (cdp_conn_send_text). */
int cdp__page_send_text(cdp_page_t *p, const char *session, const char *method,
                        const char *params, size_t len, uint32_t timeout_ms)
{
	return page_send(p, session, method, NULL, params, len, timeout_ms);
}

/* Cancels the command in flight, if any; its callback is swallowed. */
static void cancel_pending(cdp_page_t *p)
{
	uint64_t id = p->pending_id;

	for (int i = 0; i < ST_OPEN_DONE; i++) {
		if (!p->setup[i].live)
			continue;
		p->setup[i].live = 0;
		p->cancelling++;
		cdp_conn_cancel(p->conn, p->setup[i].id);
		p->cancelling--;
	}
	p->setup_out = 0;
	if (!p->pending)
		return;
	p->pending = 0;
	p->pending_id = 0;
	p->cancelling++;
	cdp_conn_cancel(p->conn, id);
	p->cancelling--;
}

/* Ends the running operation's machinery (not its callback). */
void cdp__page_op_reset(cdp_page_t *p)
{
	cancel_pending(p);
	if (p->timers_open) {
		uv_timer_stop(&p->op_timer);
		uv_timer_stop(&p->poll_timer);
	}
	if (!p->initial_nav) /* kept from the open until a navigate takes them over */
		cdp__page_nav_listeners_off(p);
	p->op = OP_NONE;
	p->step = 0;
	p->adopting = 0;
}

int cdp__page_can_start(const cdp_page_t *p)
{
	if (!p)
		return -EINVAL;
	if (p->state != PS_READY)
		return -ECANCELED;
	if (p->op != OP_NONE)
		return -EBUSY;
	if (p->crashed)
		return CDP_ECRASHED;
	if (!cdp_conn_is_open(p->conn))
		return CDP_ECONNLOST;
	return 0;
}

void cdp__page_op_begin(cdp_page_t *p, enum page_op op, uint32_t timeout_ms, void *ud)
{
	p->op = op;
	p->step = 0;
	p->ud = ud;
	p->timeout_ms = timeout_ms ? timeout_ms : PAGE_DEFAULT_TIMEOUT_MS;
	p->deadline = uv_now(p->loop) + p->timeout_ms;
	uv_timer_start(&p->op_timer, cdp__page_on_op_timer, p->timeout_ms, 0);
}

/* Describes a json_unpack_ex failure on a reply: "<method> reply: <jansson's text>". */
void cdp__page_bad_reply(char *buf, size_t len, const char *method, const json_error_t *err)
{
	snprintf(buf, len, "%s reply has an unexpected shape: %s", method, err->text);
}

static void fail_running(cdp_page_t *p, int status, const char *why)
{
	switch (p->op) {
	case OP_NONE: break;
	case OP_OPEN: cdp__page_fail_open(p, status, why); break;
	case OP_NAV: cdp__page_finish_nav(p, status, why); break;
	case OP_WAIT: cdp__page_finish_done(p, status, why); break;
	case OP_EVAL: cdp__page_finish_eval(p, status, NULL, why); break;
	case OP_SHOT: cdp__page_finish_shot(p, status, NULL, 0, why); break;
	case OP_CALL: cdp__page_finish_call(p, status, why); break;
	case OP_ACTIONS: cdp__page_finish_actions(p, status, why); break;
	}
}

/* For commands whose outcome nobody waits for (ud is NULL: the page may be gone). */
static void ignore_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	if (r->status != 0 && r->status != -ECANCELED)
		log_debug("page", "fire-and-forget command failed: %s", r->error_message);
}

void cdp__page_on_op_timer(uv_timer_t *t)
{
	cdp_page_t *p = t->data;
	char why[256];

	if (p->op == OP_NAV) {
		/* Chrome holds later commands of the session (Runtime.evaluate...) until a
		 * pending navigation commits or ends: stop it so the page stays usable. */
		cdp_conn_send(p->conn, p->session_id, CDP_M_PAGE_STOP_LOADING, json_object(),
		              PAGE_DISPOSE_TIMEOUT_MS, ignore_reply, NULL, NULL);
	}
	switch (p->op) {
	case OP_OPEN:
		snprintf(why, sizeof why, "opening the page timed out after %u ms (waiting for %s)",
		         p->timeout_ms, cdp__page_open_methods[p->step]);
		break;
	case OP_NAV:
		snprintf(why, sizeof why, "navigation did not finish loading within %u ms",
		         p->timeout_ms);
		break;
	case OP_WAIT:
		snprintf(why, sizeof why, "no %selement matched within %.1f s",
		         p->wait_visible ? "visible " : "", p->timeout_ms / 1000.0);
		break;
	case OP_CALL:
		snprintf(why, sizeof why, "the function did not return within %u ms",
		         p->timeout_ms);
		break;
	case OP_ACTIONS: cdp__page_actions_timed_out(p); return;
	default:
		snprintf(why, sizeof why, "%s timed out after %u ms",
		         p->pending_method ? p->pending_method : "operation", p->timeout_ms);
		break;
	}
	fail_running(p, -ETIMEDOUT, why);
}

/* ---- page-long events: crash and detach ---- */

static void on_crash_event(cdp_conn_t *conn, const char *session_id, const char *method,
                           json_t *params, void *ud)
{
	cdp_page_t *p = ud;
	json_t *id;

	if (strcmp(method, CDP_E_TARGET_TARGET_CRASHED) == 0) {
		id = json_object_get(params, "targetId");
		if (!json_is_string(id) || !cdp__page_str_eq(json_string_value(id), p->target_id))
			return;
	} else if (strcmp(method, CDP_E_TARGET_DETACHED_FROM_TARGET) == 0) {
		id = json_object_get(params, "sessionId");
		if (!json_is_string(id) || !cdp__page_str_eq(json_string_value(id), p->session_id))
			return;
		if (p->state != PS_READY)
			return; /* our own dispose */
	}
	log_warn("page", "target %s: %s", p->target_id, method);
	p->crashed = 1;
	fail_running(p, CDP_ECRASHED,
	             strcmp(method, CDP_E_TARGET_DETACHED_FROM_TARGET) == 0
	                     ? "the page's target went away (detached)"
	                     : "the page's renderer crashed");
}

int cdp__page_add_crash_listeners(cdp_page_t *p)
{
	p->l_insp_crash = cdp_conn_on(p->conn, CDP_E_INSPECTOR_TARGET_CRASHED, p->session_id,
	                              on_crash_event, p);
	p->l_target_crash =
	        cdp_conn_on(p->conn, CDP_E_TARGET_TARGET_CRASHED, NULL, on_crash_event, p);
	p->l_detached =
	        cdp_conn_on(p->conn, CDP_E_TARGET_DETACHED_FROM_TARGET, NULL, on_crash_event, p);
	return p->l_insp_crash && p->l_target_crash && p->l_detached ? 0 : -ENOMEM;
}

/* ---- replies ---- */

static void teardown(cdp_page_t *p);

static void on_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	cdp_page_t *p = ud;

	if (p->cancelling)
		return;
	p->pending = 0;
	p->pending_id = 0;
	if (p->state == PS_DISPOSING) {
		if (r->status != 0)
			log_warn("page", "disposing browser context %s failed: %s (freeing anyway)",
			         p->context_id, r->error_message);
		teardown(p);
		return;
	}
	switch (p->op) {
	case OP_OPEN: cdp__page_open_reply(p, r); break;
	case OP_NAV: cdp__page_nav_reply(p, r); break;
	case OP_WAIT: cdp__page_wait_reply(p, r); break;
	case OP_EVAL: cdp__page_eval_reply(p, r); break;
	case OP_SHOT: cdp__page_shot_reply(p, r); break;
	case OP_CALL: cdp__page_call_reply(p, r); break;
	case OP_ACTIONS: cdp__page_actions_reply(p, r); break;
	case OP_NONE:
		log_debug("page", "reply with no operation running (status %d)", r->status);
		break;
	}
}

/* ---- close ---- */

static void free_page(cdp_page_t *p)
{
	free(p->context_id);
	free(p->target_id);
	free(p->session_id);
	free(p->user_agent);
	free(p->nav_url);
	free(p->refusal);
	free(p->main_frame);
	cdp__page_nav_state_free(p);
	free(p->open_url);
	free(p->wait_expr);
	cdp__page_call_state_free(p);
	cdp__page_actions_state_free(p);
	json_decref(p->cookies);
	json_decref(p->block_patterns);
	json_decref(p->extra_headers);
	free(p);
}

static void on_timer_closed(uv_handle_t *h)
{
	cdp_page_t *p = h->data;

	if (--p->timers_open > 0)
		return;
	if (p->open_failed) {
		if (p->cb.open)
			p->cb.open(NULL, p->open_status, p->open_why, p->ud);
	} else if (p->close_cb) {
		p->close_cb(p->close_ud);
	}
	free_page(p);
}

static void teardown(cdp_page_t *p)
{
	p->state = PS_FREEING;
	uv_close((uv_handle_t *)&p->op_timer, on_timer_closed);
	uv_close((uv_handle_t *)&p->poll_timer, on_timer_closed);
}

void cdp__page_begin_dispose(cdp_page_t *p)
{
	json_t *params;
	int rc;

	p->state = PS_DISPOSING;
	cdp__page_nav_listeners_off(p);
	cdp__page_listener_off(p, &p->l_insp_crash);
	cdp__page_listener_off(p, &p->l_target_crash);
	cdp__page_listener_off(p, &p->l_detached);
	cdp__page_listener_off(p, &p->l_dialog);
	cdp__page_listener_off(p, &p->l_paused);
	cdp__page_listener_off(p, &p->l_attach);
	cancel_pending(p);
	if (p->context_id && cdp_conn_is_open(p->conn)) {
		params = json_pack("{s:s}", "browserContextId", p->context_id);
		rc = params ? cdp__page_send(p, NULL, CDP_M_TARGET_DISPOSE_BROWSER_CONTEXT, params,
		                             PAGE_DISPOSE_TIMEOUT_MS)
		            : -ENOMEM;
		if (rc == 0)
			return; /* on_reply tears down */
		log_warn("page", "cannot dispose browser context %s: %s (freeing anyway)",
		         p->context_id, cdp_strerror(rc));
	}
	teardown(p);
}

void cdp_page_close(cdp_page_t *p, cdp_page_closed_cb cb, void *ud)
{
	if (!p)
		return;
	if (p->state != PS_READY) {
		log_warn("page", "cdp_page_close called twice; ignoring the second call");
		return;
	}
	p->close_cb = cb;
	p->close_ud = ud;
	p->state = PS_DISPOSING; /* no new operation may start from the cancelled callback */
	if (p->op != OP_NONE)
		fail_running(p, -ECANCELED, "the page was closed");
	cdp__page_begin_dispose(p);
}

const char *cdp_page_session_id(const cdp_page_t *p)
{
	return p->session_id;
}
const char *cdp_page_target_id(const cdp_page_t *p)
{
	return p->target_id;
}
const char *cdp_page_context_id(const cdp_page_t *p)
{
	return p->context_id;
}
cdp_conn_t *cdp_page_conn(const cdp_page_t *p)
{
	return p->conn;
}

void cdp_page_get_counters(const cdp_page_t *p, cdp_page_counters_t *out)
{
	*out = p->counters;
}
