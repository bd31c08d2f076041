/*
 * cdp_page_hygiene: keeping a page from blocking or wandering: JavaScript dialogs dismissed at
 * once, the page-side popup guard, and request blocking by resource type (Fetch.enable with
 * patterns, each paused request failed and counted), per page or browser-wide
 * (cdp_block_browser), there also with a target policy for documents. The user agent and
 * extra headers are set-up steps of the open.
 */
#include "cdp/cdp_page_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_names.h"
#include "util/log.h"

/* The page-side popup guard (ST_NO_POPUPS). */
const char cdp__page_no_popups_js[] =
        "(() => {\n"
        "  const blank = (t) => !!t && !/^_(self|parent|top)$/i.test(t);\n"
        "  const aim = (el) => {\n"
        "    if (el.target) return el.target;\n"
        "    const b = el.ownerDocument && el.ownerDocument.querySelector('base[target]');\n"
        "    return b ? b.target : '';\n"
        "  };\n"
        "  const link = (el) => el instanceof HTMLAnchorElement || el instanceof HTMLAreaElement;\n"
        "  Object.defineProperty(window, 'open', { value: function () { return null; },\n"
        "    writable: false, configurable: false });\n"
        "  const onclick = (e) => {\n"
        "    const t = e.target;\n"
        "    const el = t && t.closest ? t.closest('a[href],area[href]') : null;\n"
        "    if (el && blank(aim(el))) e.preventDefault();\n"
        "  };\n"
        "  window.addEventListener('click', onclick, true);\n"
        "  window.addEventListener('auxclick', onclick, true);\n"
        "  window.addEventListener('submit', (e) => {\n"
        "    const f = e.target, t = (e.submitter && e.submitter.formTarget) || (f && aim(f));\n"
        "    if (blank(t)) e.preventDefault();\n"
        "  }, true);\n"
        "  const click = HTMLElement.prototype.click;\n"
        "  HTMLElement.prototype.click = function () {\n"
        "    if (link(this) && !this.isConnected && blank(aim(this))) return;\n"
        "    return click.call(this);\n"
        "  };\n"
        "  const submit = HTMLFormElement.prototype.submit;\n"
        "  HTMLFormElement.prototype.submit = function () {\n"
        "    if (blank(aim(this))) return;\n"
        "    return submit.call(this);\n"
        "  };\n"
        "})();";

static void hygiene_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	if (r->status != 0 && r->status != -ECANCELED && r->status != CDP_ECONNLOST)
		log_debug("page", "hygiene command failed: %s", r->error_message);
}

/* A JavaScript dialog blocks the page until answered: dismiss it at once (beforeunload is
 * accepted, so leaving the page is never held up). */
static void on_dialog(cdp_conn_t *conn, const char *session_id, const char *method,
                      json_t *params, void *ud)
{
	cdp_page_t *p = ud;
	json_t *type = json_object_get(params, "type");
	int accept = json_is_string(type) && strcmp(json_string_value(type), "beforeunload") == 0;

	p->counters.dialogs_dismissed++;
	cdp_conn_send(conn, p->session_id, CDP_M_PAGE_HANDLE_JAVASCRIPT_DIALOG,
	              json_pack("{s:b}", "accept", accept), 5000, hygiene_reply, NULL, NULL);
}

/* Fails a request paused by Fetch.enable's patterns (only blocked resource types are
 * paused) on the session that paused it, and counts it. */
static void block_paused(cdp_conn_t *conn, const char *session_id, json_t *params,
                         uint64_t *blocked)
{
	json_t *id = json_object_get(params, "requestId");

	if (!json_is_string(id))
		return;
	(*blocked)++;
	cdp_conn_send(conn, session_id, CDP_M_FETCH_FAIL_REQUEST,
	              json_pack("{s:O, s:s}", "requestId", id, "errorReason", "BlockedByClient"),
	              5000, hygiene_reply, NULL, NULL);
}

static void on_request_paused(cdp_conn_t *conn, const char *session_id, const char *method,
                              json_t *params, void *ud)
{
	cdp_page_t *p = ud;

	block_paused(conn, p->session_id, params, &p->counters.requests_blocked);
}

int cdp__page_add_hygiene_listeners(cdp_page_t *p)
{
	if (p->dismiss_dialogs) {
		p->l_dialog = cdp_conn_on(p->conn, CDP_E_PAGE_JAVASCRIPT_DIALOG_OPENING,
		                          p->session_id, on_dialog, p);
		if (!p->l_dialog)
			return -ENOMEM;
	}
	if (p->block_patterns) {
		p->l_paused = cdp_conn_on(p->conn, CDP_E_FETCH_REQUEST_PAUSED, p->session_id,
		                          on_request_paused, p);
		if (!p->l_paused)
			return -ENOMEM;
	}
	return 0;
}

/* "image,media" -> Fetch.enable patterns with CDP's resource type names. */
static const struct {
	const char *name, *cdp;
} resource_types[] = {
	{ "document", "Document" }, { "stylesheet", "Stylesheet" }, { "image", "Image" },
	{ "media", "Media" },       { "font", "Font" },             { "script", "Script" },
	{ "texttrack", "TextTrack" }, { "xhr", "XHR" },             { "fetch", "Fetch" },
	{ "eventsource", "EventSource" }, { "websocket", "WebSocket" },
	{ "manifest", "Manifest" }, { "other", "Other" },
};

int cdp__page_block_patterns(const char *list, json_t **out)
{
	json_t *arr = json_array();
	const char *p = list;

	*out = NULL;
	if (!arr)
		return -ENOMEM;
	while (*p) {
		size_t n = strcspn(p, ",");
		size_t i;
		for (i = 0; i < sizeof resource_types / sizeof resource_types[0]; i++)
			if (strlen(resource_types[i].name) == n &&
			    strncmp(resource_types[i].name, p, n) == 0)
				break;
		if (i == sizeof resource_types / sizeof resource_types[0]) {
			log_warn("page", "unknown resource type '%.*s' in the block list '%s'",
			         (int)n, p, list);
			json_decref(arr);
			return -EINVAL;
		}
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "urlPattern", "*",
		                                     "resourceType", resource_types[i].cdp,
		                                     "requestStage", "Request"));
		p += n;
		if (*p == ',')
			p++;
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return 0;
	}
	*out = arr;
	return 0;
}

/* ---- browser-wide blocking ---- */

static void on_browser_paused(cdp_conn_t *conn, const char *session_id, const char *method,
                              json_t *params, void *ud)
{
	if (!session_id) /* else a page's own Fetch */
		block_paused(conn, NULL, params, ud);
}

static void continue_paused(cdp_conn_t *conn, json_t *id)
{
	cdp_conn_send(conn, NULL, CDP_M_FETCH_CONTINUE_REQUEST, json_pack("{s:O}", "requestId", id),
	              5000, hygiene_reply, NULL, NULL);
}

/* A document request against the policy: 1 if it was refused (and failed). */
static int policy_refused(cdp_conn_t *conn, json_t *params, const cdp_block_t *blk,
                          const char *frame, json_t *id)
{
	const char *url = NULL;
	char why[512];

	if (json_unpack(params, "{s:{s:s}}", "request", "url", &url) != 0)
		url = "";
	if (netpolicy_check_url(blk->policy, url, why, sizeof why) == 0)
		return 0;
	log_warn("page", "refused %.300s: %s", url, why);
	if (blk->refused)
		blk->refused(frame, url, why, blk->ud);
	cdp_conn_send(conn, NULL, CDP_M_FETCH_FAIL_REQUEST,
	              json_pack("{s:O, s:s}", "requestId", id, "errorReason", "AccessDenied"), 5000,
	              hygiene_reply, NULL, NULL);
	return 1;
}

/* The same with a policy for documents and exemptions: a request the caller exempts goes
 * on untouched. */
static void on_browser_paused_ex(cdp_conn_t *conn, const char *session_id, const char *method,
                                 json_t *params, void *ud)
{
	const cdp_block_t *blk = ud;
	json_t *fr = json_object_get(params, "frameId");
	json_t *id = json_object_get(params, "requestId");
	json_t *type = json_object_get(params, "resourceType");
	const char *frame = json_is_string(fr) ? json_string_value(fr) : "";
	int doc = json_is_string(type) && strcmp(json_string_value(type), "Document") == 0;

	if (session_id || !json_is_string(id))
		return; /* a page's own Fetch */
	if (doc && blk->policy) {
		if (policy_refused(conn, params, blk, frame, id))
			return;
		if (!blk->documents_blocked) { /* paused for the policy alone */
			continue_paused(conn, id);
			return;
		}
	}
	if (blk->exempt && blk->exempt(frame, blk->ud)) {
		continue_paused(conn, id);
		return;
	}
	block_paused(conn, NULL, params, blk->blocked);
}

static void block_browser_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	if (r->status != 0 && r->status != -ECANCELED && r->status != CDP_ECONNLOST)
		log_error("page", "browser-wide request blocking failed: Fetch.enable: %s",
		          r->error_message);
}

/* Whether the block list names type. */
static int listed(const char *list, const char *type)
{
	size_t n = strlen(type);

	for (const char *p = list; *p; p += strcspn(p, ","), p += *p == ',')
		if (strncmp(p, type, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

/* The patterns of list, plus documents for a policy that refuses anything; *out NULL: none. */
static int browser_patterns(const char *list, const netpolicy_t *policy, json_t **out)
{
	int rc = 0;

	*out = NULL;
	if (*list && strcmp(list, "none") != 0 && (rc = cdp__page_block_patterns(list, out)) != 0)
		return rc;
	if (!policy || netpolicy_is_open(policy) || (*out && listed(list, "document")))
		return 0;
	if (!*out && !(*out = json_array()))
		return -ENOMEM;
	json_array_append_new(*out, json_pack("{s:s, s:s, s:s}", "urlPattern", "*", "resourceType",
	                                      "Document", "requestStage", "Request"));
	return 0;
}

static int block_browser(cdp_conn_t *conn, const char *list, const netpolicy_t *policy,
                         cdp_event_cb on_paused, void *ud, cdp_listener_t **out)
{
	json_t *patterns = NULL;
	int rc = browser_patterns(list, policy, &patterns);

	*out = NULL;
	if (rc != 0)
		return rc;
	if (!patterns)
		return 0;
	*out = cdp_conn_on(conn, CDP_E_FETCH_REQUEST_PAUSED, NULL, on_paused, ud);
	if (!*out) {
		json_decref(patterns);
		return -ENOMEM;
	}
	rc = cdp_conn_send(conn, NULL, CDP_M_FETCH_ENABLE, json_pack("{s:o}", "patterns", patterns),
	                   5000, block_browser_reply, NULL, NULL);
	if (rc != 0) {
		cdp_conn_off(conn, *out);
		*out = NULL;
	}
	return rc;
}

int cdp_block_browser(cdp_conn_t *conn, const char *list, uint64_t *blocked,
                      cdp_listener_t **out)
{
	return block_browser(conn, list, NULL, on_browser_paused, blocked, out);
}

int cdp_block_browser_ex(cdp_conn_t *conn, const char *list, cdp_block_t *blk,
                         cdp_listener_t **out)
{
	blk->documents_blocked = listed(list, "document");
	return block_browser(conn, list, blk->policy, on_browser_paused_ex, blk, out);
}
