/*
 * cdp_page_nav: navigation and its load outcome. cdp_page_navigate() sends Page.navigate (or
 * adopts the first navigation of a page opened at its URL) and on_nav_event() follows the
 * navigation's events (lifecycle load, loadEventFired, the main document's response, frame
 * commits, failures) until nav_check_done() sees it loaded or failed.
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

/* ---- finishing operations: reset first, then call back (callbacks may reenter) ---- */

void cdp__page_finish_nav(cdp_page_t *p, int status, const char *message)
{
	cdp_page_nav_cb cb = p->cb.nav;
	void *ud = p->ud;
	char *final_url = p->final_url ? p->final_url : p->nav_url;
	char *other = final_url == p->final_url ? p->nav_url : p->final_url;
	char *refusal = p->refusal;
	char why[1024];
	cdp_nav_result_t res;

	p->refusal = NULL;
	/* A request the caller refused (cdp_page_note_refusal) says why better than Chrome's
	 * net::ERR_ACCESS_DENIED. */
	if (status == CDP_ENAV && refusal) {
		snprintf(why, sizeof why, "%s (%s)", refusal, message ? message : "");
		message = why;
	}
	free(refusal);
	res.status = status;
	res.http_status = p->resp_status;
	/* A Document response of another navigation (an earlier one still landing) is not ours. */
	if (p->nav_loader && p->resp_loader && strcmp(p->nav_loader, p->resp_loader) != 0)
		res.http_status = 0;
	res.final_url = final_url ? final_url : "";
	res.message = message ? message : "";
	p->final_url = NULL;
	p->nav_url = NULL;
	cdp__page_op_reset(p);
	log_debug("page", "navigate done: %s: %s (http %ld, %s)", p->target_id,
	          cdp_strerror(status), res.http_status, res.final_url);
	cb(p, &res, ud);
	free(final_url);
	free(other);
}

void cdp__page_nav_listeners_off(cdp_page_t *p)
{
	cdp__page_listener_off(p, &p->l_load);
	cdp__page_listener_off(p, &p->l_lifecycle);
	cdp__page_listener_off(p, &p->l_response);
	cdp__page_listener_off(p, &p->l_frame_nav);
	cdp__page_listener_off(p, &p->l_started);
	cdp__page_listener_off(p, &p->l_failed);
}

/* ---- navigate ---- */

static void nav_check_done(cdp_page_t *p)
{
	if (p->op != OP_NAV || !p->nav_replied)
		return;
	if (p->nav_error) {
		cdp__page_finish_nav(p, CDP_ENAV, p->nav_error);
		return;
	}
	if (p->http_failure) {
		/* Chrome shows its own error page for an empty 4xx/5xx body; the response is ours. */
		if (p->resp_status >= 400 || p->load_seen)
			cdp__page_finish_nav(p, 0, "");
		return;
	}
	if (p->lifecycle_on) {
		if (cdp__page_str_eq(p->loaded_loader, p->nav_loader))
			cdp__page_finish_nav(p, 0, "");
	} else if (p->load_seen) {
		cdp__page_finish_nav(p, 0, "");
	}
}

/*
 * The navigation's events, one handler each. A handler returns 1 when what it recorded may
 * settle the navigation (nav_check_done runs next), 0 when the event is not ours or
 * changes nothing that settles it.
 */
typedef int (*nav_event_fn)(cdp_page_t *p, json_t *params);

static int nav_on_load_fired(cdp_page_t *p, json_t *params)
{
	p->load_seen = 1;
	return 1;
}

static int nav_on_lifecycle(cdp_page_t *p, json_t *params)
{
	const char *name = NULL, *frame = NULL, *loader = NULL;

	if (json_unpack(params, "{s:s, s:s, s:s}", "name", &name, "frameId", &frame, "loaderId",
	                &loader) != 0) {
		log_debug("page", "ignoring a Page.lifecycleEvent without name/frameId/loaderId");
		return 0;
	}
	if (strcmp(name, "load") != 0 ||
	    !cdp__page_str_eq(frame, p->main_frame ? p->main_frame : p->target_id))
		return 0;
	cdp__page_set_str(&p->loaded_loader, loader);
	return 1;
}

static int nav_on_response(cdp_page_t *p, json_t *params)
{
	const char *type = NULL, *loader = NULL, *frame = NULL, *url = NULL;
	json_t *jstatus = NULL;
	json_error_t err;

	if (json_unpack_ex(params, &err, 0, "{s:s, s?s, s?s, s:{s:s, s:o}}", "type", &type,
	                   "loaderId", &loader, "frameId", &frame, "response", "url", &url,
	                   "status", &jstatus) != 0) {
		log_debug("page", "ignoring a Network.responseReceived of unexpected shape: %s",
		          err.text);
		return 0;
	}
	if (strcmp(type, "Document") != 0)
		return 0;
	if (frame && !cdp__page_str_eq(frame, p->main_frame ? p->main_frame : p->target_id))
		return 0;
	if ((p->initial_nav || p->adopting) && !p->start_loader && loader) {
		cdp__page_set_str(&p->start_loader, loader);
		cdp__page_set_str(&p->nav_loader, loader);
	}
	if (p->nav_loader && loader && strcmp(loader, p->nav_loader) != 0)
		return 0;
	if (!json_is_number(jstatus)) {
		log_debug("page", "Network.responseReceived: response.status is not a number");
		return 0;
	}
	p->resp_status = (long)json_number_value(jstatus);
	cdp__page_set_str(&p->resp_loader, loader);
	cdp__page_set_str(&p->resp_url, url);
	if (!p->final_url)
		cdp__page_set_str(&p->final_url, url);
	return 1;
}

/* Records where the main frame committed; never settles the navigation by itself. */
static int nav_on_frame_navigated(cdp_page_t *p, json_t *params)
{
	json_t *frame = json_object_get(params, "frame");
	json_t *id = json_object_get(frame, "id");
	json_t *url = json_object_get(frame, "url");
	json_t *frag = json_object_get(frame, "urlFragment");
	char *full;
	size_t n;

	if (!json_is_string(id) || !json_is_string(url)) {
		log_debug("page", "ignoring a Page.frameNavigated without frame.id/frame.url");
		return 0;
	}
	if (json_object_get(frame, "parentId") ||
	    !cdp__page_str_eq(json_string_value(id), p->main_frame ? p->main_frame : p->target_id))
		return 0;
	if (strncmp(json_string_value(url), "chrome-error://", 15) == 0)
		return 0; /* Chrome's error page, not where the navigation went */
	/* A script may navigate again before the load event (location.replace): the
	 * document that commits last is the one whose load we wait for. */
	if (p->nav_replied && json_is_string(json_object_get(frame, "loaderId")))
		cdp__page_set_str(&p->nav_loader,
		                  json_string_value(json_object_get(frame, "loaderId")));
	n = strlen(json_string_value(url)) +
	    (json_is_string(frag) ? strlen(json_string_value(frag)) : 0) + 1;
	full = malloc(n);
	if (!full)
		return 0;
	snprintf(full, n, "%s%s", json_string_value(url),
	         json_is_string(frag) ? json_string_value(frag) : "");
	free(p->final_url);
	p->final_url = full;
	return 0;
}

/* The initial navigation only: learns its loader; never settles it by itself. */
static int nav_on_started(cdp_page_t *p, json_t *params)
{
	const char *frame = NULL, *loader = NULL;

	if (json_unpack(params, "{s:s, s:s}", "frameId", &frame, "loaderId", &loader)) {
		log_debug("page", "ignoring a Page.frameStartedNavigating without "
		                  "frameId/loaderId");
		return 0;
	}
	if (p->start_loader || !cdp__page_str_eq(frame, p->main_frame))
		return 0;
	cdp__page_set_str(&p->start_loader, loader);
	cdp__page_set_str(&p->nav_loader, loader);
	return 0;
}

/* The initial navigation only. No frameId here: the request id of a navigation is its
 * loader id. */
static int nav_on_loading_failed(cdp_page_t *p, json_t *params)
{
	const char *id = NULL, *type = NULL, *text = NULL;

	if (json_unpack(params, "{s:s, s:s, s:s}", "requestId", &id, "type", &type, "errorText",
	                &text) != 0) {
		log_debug("page", "ignoring a Network.loadingFailed without "
		                  "requestId/type/errorText");
		return 0;
	}
	if (strcmp(type, "Document") != 0 || !cdp__page_str_eq(id, p->start_loader))
		return 0;
	if (strcmp(text, "net::ERR_HTTP_RESPONSE_CODE_FAILURE") == 0)
		p->http_failure = 1;
	else if (!p->nav_error)
		cdp__page_set_str(&p->nav_error, *text ? text : "navigation failed");
	return 1;
}

static const struct {
	const char *method;
	nav_event_fn fn;
} nav_events[] = {
	{ CDP_E_PAGE_LOAD_EVENT_FIRED, nav_on_load_fired },
	{ CDP_E_PAGE_LIFECYCLE_EVENT, nav_on_lifecycle },
	{ CDP_E_NETWORK_RESPONSE_RECEIVED, nav_on_response },
	{ CDP_E_PAGE_FRAME_NAVIGATED, nav_on_frame_navigated },
	{ CDP_E_PAGE_FRAME_STARTED_NAVIGATING, nav_on_started },
	{ CDP_E_NETWORK_LOADING_FAILED, nav_on_loading_failed },
};

static void on_nav_event(cdp_conn_t *conn, const char *session_id, const char *method,
                         json_t *params, void *ud)
{
	cdp_page_t *p = ud;

	if (p->op != OP_NAV && !p->initial_nav)
		return;
	for (size_t i = 0; i < sizeof nav_events / sizeof nav_events[0]; i++) {
		if (strcmp(method, nav_events[i].method) != 0)
			continue;
		if (nav_events[i].fn(p, params))
			nav_check_done(p);
		return;
	}
}

/* Frees what a navigation saw (not its URL), leaving NULLs. */
void cdp__page_nav_state_free(cdp_page_t *p)
{
	free(p->start_loader);
	free(p->nav_error);
	free(p->final_url);
	free(p->nav_loader);
	free(p->loaded_loader);
	free(p->resp_loader);
	free(p->resp_url);
	p->start_loader = p->nav_error = NULL;
	p->final_url = p->nav_loader = p->loaded_loader = p->resp_loader = p->resp_url = NULL;
}

/* Forgets what a navigation saw (not its URL). */
static void nav_state_reset(cdp_page_t *p)
{
	cdp__page_nav_state_free(p);
	p->resp_status = 0;
	p->nav_replied = p->load_seen = p->http_failure = 0;
	cdp__page_set_str(&p->main_frame, p->target_id);
}

void cdp__page_nav_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	const char *frame = NULL, *loader = NULL, *error_text = NULL;
	json_error_t err;
	char why[512];

	if (r->status != 0) {
		snprintf(why, sizeof why, "Page.navigate failed: %s", r->error_message);
		cdp__page_finish_nav(p, r->status, why);
		return;
	}
	if (json_unpack_ex(r->result, &err, 0, "{s:s, s?s, s?s}", "frameId", &frame, "loaderId",
	                   &loader, "errorText", &error_text) != 0) {
		cdp__page_bad_reply(why, sizeof why, CDP_M_PAGE_NAVIGATE, &err);
		cdp__page_finish_nav(p, CDP_EBADREPLY, why);
		return;
	}
	cdp__page_set_str(&p->main_frame, frame);
	cdp__page_set_str(&p->nav_loader, loader);
	p->nav_replied = 1;
	if (error_text && *error_text) {
		if (strcmp(error_text, "net::ERR_HTTP_RESPONSE_CODE_FAILURE") == 0) {
			p->http_failure = 1;
		} else {
			cdp__page_finish_nav(p, CDP_ENAV, error_text);
			return;
		}
	} else if (!loader) {
		/* Same-document navigation (a fragment): there is no load event to wait for. */
		cdp__page_finish_nav(p, 0, "");
		return;
	}
	nav_check_done(p);
}

static void on_conn_watch(uv_timer_t *t)
{
	cdp_page_t *p = t->data;

	if (p->op == OP_NAV && !p->pending && !cdp_conn_is_open(p->conn))
		cdp__page_finish_nav(p, CDP_ECONNLOST,
		                     "connection to the browser lost during navigation");
}

static int nav_listeners_on(cdp_page_t *p)
{
	p->l_load =
	        cdp_conn_on(p->conn, CDP_E_PAGE_LOAD_EVENT_FIRED, p->session_id, on_nav_event, p);
	/* of a page's seven or so lifecycle events, only "load" settles a navigation: the
	 * others are dropped unparsed */
	p->l_lifecycle = cdp_conn_on_where(p->conn, CDP_E_PAGE_LIFECYCLE_EVENT, p->session_id,
	                                   "name", "load", on_nav_event, p);
	/* the document's response only: those of a page's subresources are dropped unparsed */
	p->l_response = cdp_conn_on_where(p->conn, CDP_E_NETWORK_RESPONSE_RECEIVED, p->session_id,
	                                  "type", "Document", on_nav_event, p);
	p->l_frame_nav =
	        cdp_conn_on(p->conn, CDP_E_PAGE_FRAME_NAVIGATED, p->session_id, on_nav_event, p);
	return p->l_load && p->l_lifecycle && p->l_response && p->l_frame_nav ? 0 : -ENOMEM;
}

/* Adopting the initial navigation: what it did so far may already settle it, but the
 * callback must come from the loop, so the first check runs from the poll timer. */
static void on_adopt_poll(uv_timer_t *t)
{
	cdp_page_t *p = t->data;

	nav_check_done(p);
	if (p->op == OP_NAV)
		on_conn_watch(t);
}

int cdp_page_navigate(cdp_page_t *p, const char *url, uint32_t timeout_ms, cdp_page_nav_cb cb,
                      void *ud)
{
	json_t *params;
	int rc = cdp__page_can_start(p);

	if (rc != 0)
		return rc;
	if (!url || !cb)
		return -EINVAL;
	if (p->initial_nav) {
		p->initial_nav = 0;
		if (strcmp(url, p->open_url) == 0) {
			if (!(p->nav_url = strdup(url)))
				return -ENOMEM;
			cdp__page_op_begin(p, OP_NAV, timeout_ms, ud);
			p->cb.nav = cb;
			p->adopting = 1;
			uv_timer_start(&p->poll_timer, on_adopt_poll, 0, PAGE_CONN_WATCH_MS);
			log_debug("page", "navigate %s (the page was opened there)", url);
			return 0;
		}
		cdp__page_nav_listeners_off(p); /* another URL: a navigation of its own */
	}
	free(p->nav_url);
	nav_state_reset(p);
	cdp_page_note_refusal(p, NULL); /* one of an earlier navigation */
	p->nav_url = strdup(url);
	params = json_pack("{s:s}", "url", url);
	if (!p->nav_url || !params) {
		json_decref(params);
		return -ENOMEM;
	}
	if (nav_listeners_on(p) != 0) {
		cdp__page_nav_listeners_off(p);
		json_decref(params);
		return -ENOMEM;
	}
	cdp__page_op_begin(p, OP_NAV, timeout_ms, ud);
	p->cb.nav = cb;
	rc = cdp__page_send(p, p->session_id, CDP_M_PAGE_NAVIGATE, params, 0);
	if (rc != 0) {
		cdp__page_op_reset(p);
		return rc;
	}
	uv_timer_start(&p->poll_timer, on_conn_watch, PAGE_CONN_WATCH_MS, PAGE_CONN_WATCH_MS);
	log_debug("page", "navigate %s", url);
	return 0;
}

void cdp_page_note_refusal(cdp_page_t *p, const char *why)
{
	free(p->refusal);
	p->refusal = why ? strdup(why) : NULL; /* out of memory: Chrome's own text */
}

/*
 * Opened at its URL (held), the target navigates there by itself once the set-up lets it
 * go. Its events are recorded from here, and the first cdp_page_navigate() to the same URL
 * waits for that load instead of starting another.
 */
int cdp__page_initial_nav_begin(cdp_page_t *p)
{
	cdp__page_set_str(&p->main_frame, p->target_id);
	p->nav_replied = 1; /* there is no Page.navigate reply to wait for */
	p->initial_nav = 1;
	if (nav_listeners_on(p) != 0)
		return -ENOMEM;
	p->l_started = cdp_conn_on(p->conn, CDP_E_PAGE_FRAME_STARTED_NAVIGATING, p->session_id,
	                           on_nav_event, p);
	p->l_failed =
	        cdp_conn_on(p->conn, CDP_E_NETWORK_LOADING_FAILED, p->session_id, on_nav_event, p);
	return p->l_started && p->l_failed ? 0 : -ENOMEM;
}
