/*
 * cdp_page_open: opening a page and holding new pages. The open is a chain
 * (Target.createBrowserContext, createTarget, attachToTarget) whose replies come through
 * cdp__page_open_reply(), with Storage.setCookies into the new context before its page
 * exists when there are cookies; on a holding connection (cdp_hold_pages) the session is
 * the one Chrome attached to the new page, reported by Target.attachedToTarget. Once
 * attached, the session's set-up commands (domains, user agent, viewport, headers,
 * blocking, popup guard, resume) go out together, and the open ends when every one has
 * answered.
 */
#include "cdp/cdp_page_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_names.h"
#include "util/log.h"

const char *const cdp__page_open_methods[] = {
	CDP_M_TARGET_CREATE_BROWSER_CONTEXT,
	CDP_M_STORAGE_SET_COOKIES,
	CDP_M_TARGET_CREATE_TARGET,
	CDP_M_TARGET_ATTACH_TO_TARGET,
	CDP_M_PAGE_ENABLE,
	CDP_M_NETWORK_ENABLE,
	CDP_M_NETWORK_SET_CACHE_DISABLED,
	CDP_M_NETWORK_SET_BYPASS_SERVICE_WORKER,
	CDP_M_PAGE_SET_LIFECYCLE_EVENTS_ENABLED,
	CDP_M_EMULATION_SET_USER_AGENT_OVERRIDE,
	CDP_M_EMULATION_SET_DEVICE_METRICS_OVERRIDE,
	CDP_M_NETWORK_SET_EXTRA_HTTP_HEADERS,
	CDP_M_FETCH_ENABLE,
	CDP_M_PAGE_ADD_SCRIPT_TO_EVALUATE_ON_NEW_DOCUMENT,
	CDP_M_RUNTIME_RUN_IF_WAITING_FOR_DEBUGGER,
	"",
};

/* ---- holding new pages ---- */

static void hold_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	cdp_hold_t *h = ud;

	h->pending = 0;
	h->state = r->status == 0 ? HOLD_ON : HOLD_FAILED;
	if (r->status != 0 && r->status != -ECANCELED && r->status != CDP_ECONNLOST)
		log_error("page", "holding new pages failed: Target.setAutoAttach: %s",
		          r->error_message);
}

int cdp_hold_pages(cdp_conn_t *conn, cdp_hold_t **out)
{
	cdp_hold_t *h = calloc(1, sizeof *h);
	json_t *params = json_pack("{s:b, s:b, s:b, s:[{s:s, s:b}, {s:b}]}", "autoAttach", 1,
	                           "waitForDebuggerOnStart", 1, "flatten", 1, "filter", "type",
	                           "page", "exclude", 0, "exclude", 1);
	int rc;

	*out = NULL;
	if (!h || !params) {
		free(h);
		json_decref(params);
		return -ENOMEM;
	}
	h->conn = conn;
	h->state = HOLD_ASKED;
	h->pending = 1;
	rc = cdp_conn_send(conn, NULL, CDP_M_TARGET_SET_AUTO_ATTACH, params, 5000, hold_reply, h,
	                   &h->id);
	if (rc != 0) {
		free(h);
		return rc;
	}
	*out = h;
	return 0;
}

void cdp_hold_free(cdp_hold_t *h)
{
	if (!h)
		return;
	if (h->pending)
		cdp_conn_cancel(h->conn, h->id); /* hold_reply runs now, with -ECANCELED */
	free(h);
}

/* Open failed: dispose what was created, then report (page NULL) and free. */
void cdp__page_fail_open(cdp_page_t *p, int status, const char *why)
{
	cdp__page_op_reset(p);
	p->open_failed = 1;
	p->open_status = status;
	snprintf(p->open_why, sizeof p->open_why, "%s", why ? why : cdp_strerror(status));
	log_warn("page", "opening a page failed: %s", p->open_why);
	cdp__page_begin_dispose(p);
}

/* ---- open ---- */

static int open_send_step_to(cdp_page_t *p, int step, cdp_reply_cb cb, void *ud,
                             uint64_t *id_out)
{
	json_t *params = NULL;
	const char *session = p->session_id;

	switch (step) {
	case ST_CONTEXT:
		params = json_pack("{s:b}", "disposeOnDetach", 1);
		session = NULL;
		break;
	case ST_COOKIES:
		params = json_pack("{s:O, s:s}", "cookies", p->cookies, "browserContextId",
		                   p->context_id);
		session = NULL;
		break;
	case ST_TARGET:
		params = json_pack("{s:s, s:s}", "url", p->open_url ? p->open_url : "about:blank",
		                   "browserContextId", p->context_id);
		/* Opened at its URL, the first document is laid out at the viewport's size
		 * from the start (Emulation would only apply once the session is set up). */
		if (params && p->open_url && p->viewport_w > 0 && p->viewport_h > 0 &&
		    (json_object_set_new(params, "width", json_integer(p->viewport_w)) ||
		     json_object_set_new(params, "height", json_integer(p->viewport_h)))) {
			json_decref(params);
			params = NULL;
		}
		if (params && p->no_frames &&
		    json_object_set_new(params, "enableBeginFrameControl", json_true())) {
			json_decref(params);
			params = NULL;
		}
		session = NULL;
		break;
	case ST_ATTACH:
		params = json_pack("{s:s, s:b}", "targetId", p->target_id, "flatten", 1);
		session = NULL;
		break;
	case ST_PAGE_ENABLE:
	case ST_NETWORK_ENABLE:
	case ST_RESUME: params = json_object(); break;
	case ST_NO_CACHE: params = json_pack("{s:b}", "cacheDisabled", 1); break;
	case ST_NO_SW: params = json_pack("{s:b}", "bypass", 1); break;
	case ST_LIFECYCLE: params = json_pack("{s:b}", "enabled", 1); break;
	case ST_USER_AGENT: params = json_pack("{s:s}", "userAgent", p->user_agent); break;
	case ST_VIEWPORT:
		params = json_pack("{s:i, s:i, s:f, s:b}", "width", p->viewport_w, "height",
		                   p->viewport_h, "deviceScaleFactor", 1.0, "mobile", 0);
		break;
	case ST_HEADERS: params = json_pack("{s:O}", "headers", p->extra_headers); break;

	case ST_BLOCK: params = json_pack("{s:O}", "patterns", p->block_patterns); break;
	case ST_NO_POPUPS:
		/* in every frame, before the page's own scripts: window.open opens nothing, and
		 * links, areas and forms aimed at a new window do nothing (Chromium's popup
		 * blocker is not in the headless shell). A guard, not a wall: the pool closes
		 * whatever window still gets opened. */
		params = json_pack("{s:s}", "source", cdp__page_no_popups_js);
		break;
	default: return -EINVAL;
	}
	if (!params)
		return -ENOMEM;
	if (!cb)
		return cdp__page_send(p, session, cdp__page_open_methods[step], params, 0);
	return cdp_conn_send(p->conn, session, cdp__page_open_methods[step], params,
	                     cdp__page_remaining_ms(p) + PAGE_CMD_SLACK_MS, cb, ud, id_out);
}

static int open_send_step(cdp_page_t *p)
{
	p->open_cmd = p->step;
	return open_send_step_to(p, p->step, NULL, NULL, NULL);
}

static void open_finish(cdp_page_t *p)
{
	cdp_page_open_cb cb = p->cb.open;
	void *ud = p->ud;

	cdp__page_op_reset(p);
	p->state = PS_READY;
	log_debug("page", "page open: target %s, session %s", p->target_id, p->session_id);
	cb(p, 0, "", ud);
}

/* Whether an optional set-up step applies to this page. */
static int step_applies(const cdp_page_t *p, int step)
{
	switch (step) {
	case ST_USER_AGENT: return p->user_agent != NULL;
	case ST_VIEWPORT: return p->viewport_w > 0 && p->viewport_h > 0 && !p->open_url;
	case ST_HEADERS: return p->extra_headers != NULL;
	case ST_BLOCK: return p->block_patterns != NULL;
	case ST_NO_POPUPS: return p->block_popups;
	case ST_NO_CACHE:
	case ST_NO_SW: return p->no_cache;
	case ST_RESUME: return p->resume;
	default: return 1;
	}
}

/* A held page is open once both its set-up and Target.createTarget have answered. */
static void setup_done(cdp_page_t *p)
{
	p->setup_complete = 1;
	if (!p->hold || p->target_replied)
		open_finish(p);
}

static void on_setup_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	struct setup_slot *slot = ud;
	cdp_page_t *p = slot->page;

	if (p->cancelling || !slot->live)
		return;
	slot->live = 0;
	p->setup_out--;
	if (r->status != 0) {
		if (slot->step == ST_LIFECYCLE && r->status == CDP_EPROTOCOL) {
			log_debug("page", "lifecycle events unavailable: %s", r->error_message);
		} else if (!p->setup_status) {
			p->setup_status = r->status;
			snprintf(p->setup_why, sizeof p->setup_why, "%s failed: %s",
			         cdp__page_open_methods[slot->step], r->error_message);
		}
	} else if (slot->step == ST_LIFECYCLE) {
		p->lifecycle_on = 1;
	}
	if (p->setup_out > 0)
		return;
	if (p->setup_status)
		cdp__page_fail_open(p, p->setup_status, p->setup_why);
	else
		setup_done(p);
}

/*
 * Once attached, the session's set-up commands go out together: Chrome handles a
 * session's commands in order, so Page.enable is in force before anything after it, and
 * the open (hence any navigation) completes only when every one has answered. One round
 * trip instead of up to ten.
 */
static void open_send_setup(cdp_page_t *p)
{
	int rc = 0;

	p->setup_out = 0;
	p->setup_status = 0;
	for (int step = ST_PAGE_ENABLE; step < ST_OPEN_DONE && rc == 0; step++) {
		struct setup_slot *slot = &p->setup[step];
		if (!step_applies(p, step))
			continue;
		p->step = step;
		slot->page = p;
		slot->step = step;
		rc = open_send_step_to(p, step, on_setup_reply, slot, &slot->id);
		if (rc == 0) {
			slot->live = 1;
			p->setup_out++;
		}
	}
	if (rc != 0) {
		char why[256];
		snprintf(why, sizeof why, "cannot send %s: %s", cdp__page_open_methods[p->step],
		         cdp_strerror(rc));
		cdp__page_fail_open(p, rc, why); /* cancels what went out */
		return;
	}
	if (p->setup_out == 0)
		setup_done(p);
}

/* The session is attached (by Target.attachToTarget, or by Chrome for a held page): the
 * page-long listeners go on and the set-up goes out. */
static void open_attached(cdp_page_t *p)
{
	if (cdp__page_add_crash_listeners(p) != 0 || cdp__page_add_hygiene_listeners(p) != 0 ||
	    (p->open_url && cdp__page_initial_nav_begin(p) != 0)) {
		cdp__page_fail_open(p, -ENOMEM, "out of memory adding listeners");
		return;
	}
	open_send_setup(p);
}

/*
 * A held page: Chrome attaches a session to every new page (cdp_hold_pages) and reports
 * it here, possibly before Target.createTarget answers. Ours is the page of our context
 * that has no opener (a popup has one); it waits for the debugger until the set-up is in.
 */
static void on_attached(cdp_conn_t *conn, const char *session_id, const char *method,
                        json_t *params, void *ud)
{
	cdp_page_t *p = ud;
	const char *sid = NULL, *tid = NULL, *type = NULL, *ctx = NULL, *opener = NULL;
	int waiting = 0;
	json_error_t err;

	if (session_id || p->op != OP_OPEN || p->session_id)
		return;
	if (json_unpack_ex(params, &err, 0, "{s:s, s:{s:s, s:s, s?s, s?s}, s?b}", "sessionId",
	                   &sid, "targetInfo", "targetId", &tid, "type", &type,
	                   "browserContextId", &ctx, "openerId", &opener, "waitingForDebugger",
	                   &waiting) != 0) {
		log_debug("page", "ignoring a Target.attachedToTarget of unexpected shape: %s",
		          err.text);
		return;
	}
	if (!cdp__page_str_eq(ctx, p->context_id) || strcmp(type, "page") != 0 || opener ||
	    (p->target_id && strcmp(tid, p->target_id) != 0))
		return;
	cdp__page_listener_off(p, &p->l_attach);
	cdp__page_set_str(&p->session_id, sid);
	if (!p->target_id)
		cdp__page_set_str(&p->target_id, tid);
	p->resume = waiting;
	open_attached(p);
}

/* Context, target, attach: one after the other, each needs the previous one's id. */
void cdp__page_open_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	int cmd = p->open_cmd;
	const char *method = cdp__page_open_methods[cmd];
	const char *key = cmd == ST_CONTEXT  ? "browserContextId"
	                  : cmd == ST_TARGET ? "targetId"
	                                     : "sessionId";
	const char *id = NULL;
	json_error_t err;
	char why[512];
	int rc;

	if (r->status != 0) {
		snprintf(why, sizeof why, "%s failed: %s", method, r->error_message);
		cdp__page_fail_open(p, r->status, why);
		return;
	}
	if (cmd == ST_COOKIES) { /* the context has them: its page may be created */
		p->step = ST_TARGET;
		goto next;
	}
	if (json_unpack_ex(r->result, &err, 0, "{s:s}", key, &id) != 0) {
		cdp__page_bad_reply(why, sizeof why, method, &err);
		cdp__page_fail_open(p, CDP_EBADREPLY, why);
		return;
	}
	if (cmd == ST_TARGET && p->target_id && strcmp(p->target_id, id) != 0) {
		snprintf(why, sizeof why, "Target.createTarget made %s, but Chrome attached %s", id,
		         p->target_id);
		cdp__page_fail_open(p, CDP_EBADREPLY, why);
		return;
	}
	cdp__page_set_str(cmd == ST_CONTEXT  ? &p->context_id
	                  : cmd == ST_TARGET ? &p->target_id
	                                     : &p->session_id,
	                  id);
	if (cmd == ST_ATTACH) {
		open_attached(p);
		return;
	}
	if (cmd == ST_CONTEXT && p->hold) {
		/* before the target exists: Chrome may report its session first */
		p->l_attach =
		        cdp_conn_on(p->conn, CDP_E_TARGET_ATTACHED_TO_TARGET, NULL, on_attached, p);
		if (!p->l_attach) {
			cdp__page_fail_open(p, -ENOMEM, "out of memory adding a listener");
			return;
		}
	}
	if (cmd == ST_TARGET && p->hold) {
		p->target_replied = 1;
		if (p->session_id) {
			if (p->setup_complete)
				open_finish(p);
			return; /* the set-up is under way */
		}
		if (p->hold->state == HOLD_FAILED) {
			/* Chrome refused after this page was asked for: it is loading unheld */
			cdp__page_fail_open(p, CDP_EPROTOCOL,
			                    "new pages are not held (Target.setAutoAttach "
			                    "failed): the page is not set up");
			return;
		}
		p->step = ST_ATTACH; /* Chrome's attach is still to come */
		return;
	}
	/* the cookies go into the context before its page exists, so that the page's first
	 * request has them (Network.setCookies in the page's set-up could lose that race) */
	p->step = cmd == ST_CONTEXT && !p->cookies ? ST_TARGET : cmd + 1;
next:
	rc = open_send_step(p);
	if (rc != 0) {
		snprintf(why, sizeof why, "cannot send %s: %s", cdp__page_open_methods[p->step],
		         cdp_strerror(rc));
		cdp__page_fail_open(p, rc, why);
	}
}

int cdp_page_open(cdp_conn_t *conn, const cdp_page_opts_t *opts, uint32_t timeout_ms,
                  cdp_page_open_cb cb, void *ud)
{
	cdp_page_t *p = NULL;
	int rc = 0;

	if (!conn || !cb)
		return -EINVAL;
	if (!cdp_conn_is_open(conn))
		return CDP_ECONNLOST;
	p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->conn = conn;
	p->loop = cdp_conn_loop(conn);
	p->state = PS_OPENING;
	if (opts) {
		if (opts->user_agent && !(p->user_agent = strdup(opts->user_agent))) {
			rc = -ENOMEM;
			goto out;
		}
		p->viewport_w = opts->viewport_width;
		p->viewport_h = opts->viewport_height;
		p->dismiss_dialogs = opts->dismiss_dialogs;
		p->block_popups = opts->block_popups;
		p->no_frames = opts->no_frames;
		p->no_cache = opts->no_cache;
		if (opts->block_resources &&
		    (rc = cdp__page_block_patterns(opts->block_resources, &p->block_patterns)) != 0)
			goto out;
		if (opts->extra_headers_json) {
			json_t *h = json_loads(opts->extra_headers_json, 0, NULL);
			if (!json_is_object(h)) {
				log_warn("page", "extra headers '%s' are not a JSON object",
				         opts->extra_headers_json);
				json_decref(h);
				rc = -EINVAL;
				goto out;
			}
			p->extra_headers = h;
		}
		if (opts->cookies_json) {
			json_t *c = json_loads(opts->cookies_json, 0, NULL);
			if (!json_is_array(c)) {
				log_warn("page", "cookies '%s' are not a JSON array",
				         opts->cookies_json);
				json_decref(c);
				rc = -EINVAL;
				goto out;
			}
			p->cookies = c;
		}
		if (opts->hold && opts->hold->state != HOLD_FAILED)
			p->hold = opts->hold;
		/* Only a held page may start at its URL: everything must cover its first
		 * request and script. */
		if (opts->url && p->hold && !(p->open_url = strdup(opts->url))) {
			rc = -ENOMEM;
			goto out;
		}
	}
	/* The deadline is needed by the first send; the timer starts once it succeeded. */
	p->timeout_ms = timeout_ms ? timeout_ms : PAGE_DEFAULT_TIMEOUT_MS;
	p->deadline = uv_now(p->loop) + p->timeout_ms;
	p->step = ST_CONTEXT;
	rc = open_send_step(p);
	if (rc != 0)
		goto out;
	uv_timer_init(p->loop, &p->op_timer);
	uv_timer_init(p->loop, &p->poll_timer);
	p->op_timer.data = p;
	p->poll_timer.data = p;
	p->timers_open = 2;
	p->op = OP_OPEN;
	p->cb.open = cb;
	p->ud = ud;
	uv_timer_start(&p->op_timer, cdp__page_on_op_timer, p->timeout_ms, 0);
out:
	if (rc != 0) {
		free(p->user_agent);
		free(p->open_url);
		json_decref(p->block_patterns);
		json_decref(p->extra_headers);
		json_decref(p->cookies);
		free(p);
	}
	return rc;
}
