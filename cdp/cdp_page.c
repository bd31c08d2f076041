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

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cdp/cdp_err.h"
#include "util/log.h"

#define PAGE_DEFAULT_TIMEOUT_MS 30000u
#define PAGE_DISPOSE_TIMEOUT_MS 5000u
#define PAGE_POLL_MS 100u
#define PAGE_CONN_WATCH_MS 200u
/* Commands get this much more than the operation's deadline so the page's own timer,
 * which knows what was going on, fires first. */
#define PAGE_CMD_SLACK_MS 2000u

enum page_state { PS_OPENING, PS_READY, PS_DISPOSING, PS_FREEING };
enum page_op { OP_NONE = 0, OP_OPEN, OP_NAV, OP_WAIT, OP_EVAL, OP_SHOT };

/* Steps of cdp_page_open, in order. */
enum open_step {
	ST_CONTEXT = 0,
	ST_TARGET,
	ST_ATTACH,
	ST_PAGE_ENABLE,
	ST_NETWORK_ENABLE,
	ST_LIFECYCLE,
	ST_USER_AGENT,
	ST_VIEWPORT,
	ST_HEADERS,
	ST_BLOCK,
	ST_NO_POPUPS,
	ST_RESUME,
	ST_OPEN_DONE
};

static const char *const open_methods[] = {
	"Target.createBrowserContext",
	"Target.createTarget",
	"Target.attachToTarget",
	"Page.enable",
	"Network.enable",
	"Page.setLifecycleEventsEnabled",
	"Emulation.setUserAgentOverride",
	"Emulation.setDeviceMetricsOverride",
	"Network.setExtraHTTPHeaders",
	"Fetch.enable",
	"Page.addScriptToEvaluateOnNewDocument",
	"Runtime.runIfWaitingForDebugger",
	"",
};

/* The page-side popup guard (ST_NO_POPUPS). */
static const char no_popups_js[] =
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

/* cdp_hold_pages: Target.setAutoAttach asked, granted or refused. */
enum hold_state { HOLD_ASKED, HOLD_ON, HOLD_FAILED };

struct cdp_hold {
	cdp_conn_t *conn;
	enum hold_state state;
	uint64_t id; /* the command, while it is pending */
	int pending;
};

struct cdp_page {
	cdp_conn_t *conn;
	uv_loop_t *loop;
	enum page_state state;
	char *context_id, *target_id, *session_id;
	char *open_url;   /* the target was created at this URL (NULL: about:blank) */
	const cdp_hold_t *hold; /* held: the session comes from Chrome's auto-attach */
	cdp_listener_t *l_attach; /* held, until our target's session is attached */
	int open_cmd;     /* the chained open step whose reply is awaited (ST_CONTEXT...) */
	int target_replied; /* held: Target.createTarget has answered */
	int setup_complete; /* every set-up command has answered */
	int resume;       /* held and waiting for the debugger: ST_RESUME lets it go */
	int initial_nav;  /* recording that first navigation until a navigate adopts it */
	char *user_agent;
	int viewport_w, viewport_h;
	int lifecycle_on; /* Page.setLifecycleEventsEnabled succeeded */
	/* hygiene */
	int dismiss_dialogs;
	int block_popups;
	json_t *block_patterns; /* Fetch.enable patterns, or NULL */
	json_t *extra_headers;  /* object, or NULL */
	cdp_listener_t *l_dialog, *l_paused;
	cdp_page_counters_t counters;
	int crashed;      /* renderer crashed or target detached: no further operations */

	/* page-long listeners (set once attached) */
	cdp_listener_t *l_insp_crash, *l_target_crash, *l_detached;

	/* the running operation */
	enum page_op op;
	int step;
	uint32_t timeout_ms;
	uint64_t deadline; /* loop time (ms) */
	union {
		cdp_page_open_cb open;
		cdp_page_nav_cb nav;
		cdp_page_done_cb done;
		cdp_page_eval_cb eval;
		cdp_page_shot_cb shot;
	} cb;
	void *ud;
	uv_timer_t op_timer;
	uv_timer_t poll_timer;
	int timers_open; /* timers initialised and not yet closed */

	/* open: the session set-up commands, sent together once attached */
	struct setup_slot {
		cdp_page_t *page;
		int step;
		int live;
		uint64_t id;
	} setup[ST_OPEN_DONE];
	int setup_out;      /* replies still expected */
	int setup_status;   /* first failure, 0 if none */
	char setup_why[256];

	/* the one command in flight */
	int pending;
	uint64_t pending_id;
	int cancelling;
	const char *pending_method;

	/* navigate */
	cdp_listener_t *l_load, *l_lifecycle, *l_response, *l_frame_nav;
	cdp_listener_t *l_started, *l_failed; /* the initial navigation only */
	char *nav_url, *final_url, *main_frame, *nav_loader, *loaded_loader;
	char *resp_loader, *resp_url;
	char *start_loader; /* initial navigation: its loader, once seen starting */
	char *nav_error;    /* initial navigation: Network.loadingFailed's errorText */
	long resp_status;
	int nav_replied, load_seen, http_failure;
	int adopting;       /* the running navigate waits for the initial navigation */

	/* wait_for */
	char *wait_expr;

	/* screenshot */
	int full_page;
	double clip_w, clip_h;

	/* open failure, reported once the context is disposed */
	int open_failed;
	int open_status;
	char open_why[512];

	/* close */
	cdp_page_closed_cb close_cb;
	void *close_ud;
};

static void on_reply(cdp_conn_t *conn, const cdp_reply_t *reply, void *ud);
static int nav_listeners_on(cdp_page_t *p);
static void on_nav_event(cdp_conn_t *conn, const char *session_id, const char *method,
                         json_t *params, void *ud);
static void begin_dispose(cdp_page_t *p);
static void fail_running(cdp_page_t *p, int status, const char *why);

/* ---- small helpers ---- */

static void set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
}

static int str_eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static uint32_t remaining_ms(const cdp_page_t *p)
{
	uint64_t now = uv_now(p->loop);
	return p->deadline > now ? (uint32_t)(p->deadline - now) : 1;
}

static void listener_off(cdp_page_t *p, cdp_listener_t **l)
{
	if (*l) {
		cdp_conn_off(p->conn, *l);
		*l = NULL;
	}
}

/*
 * Sends one command of the page (params stolen); its reply comes to on_reply. Only one
 * command is in flight at a time. timeout_ms 0: the operation's remaining time plus slack.
 */
static int send_cmd(cdp_page_t *p, const char *session, const char *method, json_t *params,
                    uint32_t timeout_ms)
{
	uint64_t id = 0;
	int rc;

	if (!timeout_ms)
		timeout_ms = remaining_ms(p) + PAGE_CMD_SLACK_MS;
	p->pending = 1;
	p->pending_id = 0;
	p->pending_method = method;
	rc = cdp_conn_send(p->conn, session, method, params, timeout_ms, on_reply, p, &id);
	if (rc != 0) {
		p->pending = 0;
		return rc;
	}
	if (p->pending)
		p->pending_id = id;
	return 0;
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

static void nav_listeners_off(cdp_page_t *p)
{
	listener_off(p, &p->l_load);
	listener_off(p, &p->l_lifecycle);
	listener_off(p, &p->l_response);
	listener_off(p, &p->l_frame_nav);
	listener_off(p, &p->l_started);
	listener_off(p, &p->l_failed);
}

/* Ends the running operation's machinery (not its callback). */
static void op_reset(cdp_page_t *p)
{
	cancel_pending(p);
	if (p->timers_open) {
		uv_timer_stop(&p->op_timer);
		uv_timer_stop(&p->poll_timer);
	}
	if (!p->initial_nav) /* kept from the open until a navigate takes them over */
		nav_listeners_off(p);
	p->op = OP_NONE;
	p->step = 0;
	p->adopting = 0;
}

static int can_start(const cdp_page_t *p)
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

static void on_op_timer(uv_timer_t *t);

static void op_begin(cdp_page_t *p, enum page_op op, uint32_t timeout_ms, void *ud)
{
	p->op = op;
	p->step = 0;
	p->ud = ud;
	p->timeout_ms = timeout_ms ? timeout_ms : PAGE_DEFAULT_TIMEOUT_MS;
	p->deadline = uv_now(p->loop) + p->timeout_ms;
	uv_timer_start(&p->op_timer, on_op_timer, p->timeout_ms, 0);
}

/* Describes a json_unpack_ex failure on a reply: "<method> reply: <jansson's text>". */
static void bad_reply(char *buf, size_t len, const char *method, const json_error_t *err)
{
	snprintf(buf, len, "%s reply has an unexpected shape: %s", method, err->text);
}

/* The message of a Runtime exceptionDetails object. */
static void exception_message(json_t *details, char *buf, size_t len)
{
	json_t *ex = json_object_get(details, "exception");
	json_t *desc = json_object_get(ex, "description");
	json_t *value = json_object_get(ex, "value");
	json_t *text = json_object_get(details, "text");
	const char *t = json_is_string(text) ? json_string_value(text) : "Uncaught exception";

	if (json_is_string(desc))
		snprintf(buf, len, "%s", json_string_value(desc));
	else if (json_is_string(value))
		snprintf(buf, len, "%s %s", t, json_string_value(value));
	else
		snprintf(buf, len, "%s", t);
}

/*
 * Reads a Runtime.evaluate result. Returns 0 with *value borrowed from result (JSON null
 * for undefined; the text of NaN, Infinity, -0 and BigInt values as a new string stored in
 * *owned), CDP_EEXCEPTION or CDP_EBADREPLY with why filled.
 */
static int read_evaluate(json_t *result, json_t **value, json_t **owned, char *why, size_t len)
{
	json_t *ro = NULL, *details = NULL, *v;
	json_error_t err;

	*value = NULL;
	*owned = NULL;
	if (json_unpack_ex(result, &err, 0, "{s:o, s?o}", "result", &ro, "exceptionDetails",
	                   &details) != 0) {
		bad_reply(why, len, "Runtime.evaluate", &err);
		return CDP_EBADREPLY;
	}
	if (details) {
		if (!json_is_object(details)) {
			snprintf(why, len,
			         "Runtime.evaluate reply: field \"exceptionDetails\" is not "
			         "an object");
			return CDP_EBADREPLY;
		}
		exception_message(details, why, len);
		return CDP_EEXCEPTION;
	}
	if (!json_is_object(ro)) {
		snprintf(why, len, "Runtime.evaluate reply: field \"result\" is not an object");
		return CDP_EBADREPLY;
	}
	v = json_object_get(ro, "value");
	if (!v) {
		json_t *uv = json_object_get(ro, "unserializableValue");
		if (json_is_string(uv)) {
			*owned = json_string(json_string_value(uv));
			if (!*owned) {
				snprintf(why, len, "out of memory");
				return -ENOMEM;
			}
			v = *owned;
		} else {
			v = json_null();
		}
	}
	*value = v;
	return 0;
}

/* ---- base64 (RFC 4648, standard alphabet, padding optional) ---- */

static const signed char b64_table[256] = {
	['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,
	['H'] = 8,  ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14,
	['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21,
	['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28,
	['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35,
	['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
	['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
	['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
	['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63,
	['/'] = 64,
}; /* value + 1; 0 means not in the alphabet */

/* Decodes in one linear pass into a new buffer. Returns 0, -EINVAL or -ENOMEM. */
static int b64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	unsigned char *buf;
	uint32_t acc = 0;
	size_t n = 0, bits = 0;

	while (len > 0 && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -EINVAL;
	buf = malloc(len / 4 * 3 + 3);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v = b64_table[(unsigned char)in[i]];
		if (v == 0) {
			free(buf);
			return -EINVAL;
		}
		acc = (acc << 6) | (uint32_t)(v - 1);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/* ---- finishing operations: reset first, then call back (callbacks may reenter) ---- */

static void finish_nav(cdp_page_t *p, int status, const char *message)
{
	cdp_page_nav_cb cb = p->cb.nav;
	void *ud = p->ud;
	char *final_url = p->final_url ? p->final_url : p->nav_url;
	char *other = final_url == p->final_url ? p->nav_url : p->final_url;
	cdp_nav_result_t res;

	res.status = status;
	res.http_status = p->resp_status;
	/* A Document response of another navigation (an earlier one still landing) is not ours. */
	if (p->nav_loader && p->resp_loader && strcmp(p->nav_loader, p->resp_loader) != 0)
		res.http_status = 0;
	res.final_url = final_url ? final_url : "";
	res.message = message ? message : "";
	p->final_url = NULL;
	p->nav_url = NULL;
	op_reset(p);
	log_debug("page", "navigate done: %s: %s (http %ld, %s)", p->target_id,
	          cdp_strerror(status), res.http_status, res.final_url);
	cb(p, &res, ud);
	free(final_url);
	free(other);
}

static void finish_done(cdp_page_t *p, int status, const char *why)
{
	cdp_page_done_cb cb = p->cb.done;
	void *ud = p->ud;

	op_reset(p);
	free(p->wait_expr);
	p->wait_expr = NULL;
	cb(p, status, why ? why : "", ud);
}

static void finish_eval(cdp_page_t *p, int status, json_t *value, const char *why)
{
	cdp_page_eval_cb cb = p->cb.eval;
	void *ud = p->ud;

	op_reset(p);
	cb(p, status, status ? NULL : value, why ? why : "", ud);
}

static void finish_shot(cdp_page_t *p, int status, const unsigned char *png, size_t len,
                        const char *why)
{
	cdp_page_shot_cb cb = p->cb.shot;
	void *ud = p->ud;

	op_reset(p);
	cb(p, status, status ? NULL : png, status ? 0 : len, why ? why : "", ud);
}

/* Open failed: dispose what was created, then report (page NULL) and free. */
static void fail_open(cdp_page_t *p, int status, const char *why)
{
	op_reset(p);
	p->open_failed = 1;
	p->open_status = status;
	snprintf(p->open_why, sizeof p->open_why, "%s", why ? why : cdp_strerror(status));
	log_warn("page", "opening a page failed: %s", p->open_why);
	begin_dispose(p);
}

static void fail_running(cdp_page_t *p, int status, const char *why)
{
	switch (p->op) {
	case OP_NONE: break;
	case OP_OPEN: fail_open(p, status, why); break;
	case OP_NAV: finish_nav(p, status, why); break;
	case OP_WAIT: finish_done(p, status, why); break;
	case OP_EVAL: finish_eval(p, status, NULL, why); break;
	case OP_SHOT: finish_shot(p, status, NULL, 0, why); break;
	}
}

/* For commands whose outcome nobody waits for (ud is NULL: the page may be gone). */
static void ignore_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	if (r->status != 0 && r->status != -ECANCELED)
		log_debug("page", "fire-and-forget command failed: %s", r->error_message);
}

static void on_op_timer(uv_timer_t *t)
{
	cdp_page_t *p = t->data;
	char why[256];

	if (p->op == OP_NAV) {
		/* Chrome holds later commands of the session (Runtime.evaluate...) until a
		 * pending navigation commits or ends: stop it so the page stays usable. */
		cdp_conn_send(p->conn, p->session_id, "Page.stopLoading", json_object(),
		              PAGE_DISPOSE_TIMEOUT_MS, ignore_reply, NULL, NULL);
	}
	switch (p->op) {
	case OP_OPEN:
		snprintf(why, sizeof why, "opening the page timed out after %u ms (waiting for %s)",
		         p->timeout_ms, open_methods[p->step]);
		break;
	case OP_NAV:
		snprintf(why, sizeof why, "navigation did not finish loading within %u ms",
		         p->timeout_ms);
		break;
	case OP_WAIT:
		snprintf(why, sizeof why, "selector did not match within %u ms", p->timeout_ms);
		break;
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

	if (strcmp(method, "Target.targetCrashed") == 0) {
		id = json_object_get(params, "targetId");
		if (!json_is_string(id) || !str_eq(json_string_value(id), p->target_id))
			return;
	} else if (strcmp(method, "Target.detachedFromTarget") == 0) {
		id = json_object_get(params, "sessionId");
		if (!json_is_string(id) || !str_eq(json_string_value(id), p->session_id))
			return;
		if (p->state != PS_READY)
			return; /* our own dispose */
	}
	log_warn("page", "target %s: %s", p->target_id, method);
	p->crashed = 1;
	fail_running(p, CDP_ECRASHED,
	             strcmp(method, "Target.detachedFromTarget") == 0
	                     ? "the page's target went away (detached)"
	                     : "the page's renderer crashed");
}

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
	cdp_conn_send(conn, p->session_id, "Page.handleJavaScriptDialog",
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
	cdp_conn_send(conn, session_id, "Fetch.failRequest",
	              json_pack("{s:O, s:s}", "requestId", id, "errorReason", "BlockedByClient"),
	              5000, hygiene_reply, NULL, NULL);
}

static void on_request_paused(cdp_conn_t *conn, const char *session_id, const char *method,
                              json_t *params, void *ud)
{
	cdp_page_t *p = ud;

	block_paused(conn, p->session_id, params, &p->counters.requests_blocked);
}

static int add_hygiene_listeners(cdp_page_t *p)
{
	if (p->dismiss_dialogs) {
		p->l_dialog = cdp_conn_on(p->conn, "Page.javascriptDialogOpening", p->session_id,
		                          on_dialog, p);
		if (!p->l_dialog)
			return -ENOMEM;
	}
	if (p->block_patterns) {
		p->l_paused = cdp_conn_on(p->conn, "Fetch.requestPaused", p->session_id,
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

static int block_patterns(const char *list, json_t **out)
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
	rc = cdp_conn_send(conn, NULL, "Target.setAutoAttach", params, 5000, hold_reply, h,
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

/* ---- browser-wide blocking ---- */

static void on_browser_paused(cdp_conn_t *conn, const char *session_id, const char *method,
                              json_t *params, void *ud)
{
	if (!session_id) /* else a page's own Fetch */
		block_paused(conn, NULL, params, ud);
}

static void block_browser_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	if (r->status != 0 && r->status != -ECANCELED && r->status != CDP_ECONNLOST)
		log_error("page", "browser-wide request blocking failed: Fetch.enable: %s",
		          r->error_message);
}

int cdp_block_browser(cdp_conn_t *conn, const char *list, uint64_t *blocked,
                      cdp_listener_t **out)
{
	json_t *patterns = NULL;
	int rc = block_patterns(list, &patterns);

	*out = NULL;
	if (rc != 0)
		return rc;
	if (!patterns)
		return 0;
	*out = cdp_conn_on(conn, "Fetch.requestPaused", NULL, on_browser_paused, blocked);
	if (!*out) {
		json_decref(patterns);
		return -ENOMEM;
	}
	rc = cdp_conn_send(conn, NULL, "Fetch.enable", json_pack("{s:o}", "patterns", patterns),
	                   5000, block_browser_reply, NULL, NULL);
	if (rc != 0) {
		cdp_conn_off(conn, *out);
		*out = NULL;
	}
	return rc;
}

static int add_crash_listeners(cdp_page_t *p)
{
	p->l_insp_crash =
	        cdp_conn_on(p->conn, "Inspector.targetCrashed", p->session_id, on_crash_event, p);
	p->l_target_crash = cdp_conn_on(p->conn, "Target.targetCrashed", NULL, on_crash_event, p);
	p->l_detached = cdp_conn_on(p->conn, "Target.detachedFromTarget", NULL, on_crash_event, p);
	return p->l_insp_crash && p->l_target_crash && p->l_detached ? 0 : -ENOMEM;
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
		session = NULL;
		break;
	case ST_ATTACH:
		params = json_pack("{s:s, s:b}", "targetId", p->target_id, "flatten", 1);
		session = NULL;
		break;
	case ST_PAGE_ENABLE:
	case ST_NETWORK_ENABLE:
	case ST_RESUME: params = json_object(); break;
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
		params = json_pack("{s:s}", "source", no_popups_js);
		break;
	default: return -EINVAL;
	}
	if (!params)
		return -ENOMEM;
	if (!cb)
		return send_cmd(p, session, open_methods[step], params, 0);
	return cdp_conn_send(p->conn, session, open_methods[step], params,
	                     remaining_ms(p) + PAGE_CMD_SLACK_MS, cb, ud, id_out);
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

	op_reset(p);
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
			         open_methods[slot->step], r->error_message);
		}
	} else if (slot->step == ST_LIFECYCLE) {
		p->lifecycle_on = 1;
	}
	if (p->setup_out > 0)
		return;
	if (p->setup_status)
		fail_open(p, p->setup_status, p->setup_why);
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
		snprintf(why, sizeof why, "cannot send %s: %s", open_methods[p->step],
		         cdp_strerror(rc));
		fail_open(p, rc, why); /* cancels what went out */
		return;
	}
	if (p->setup_out == 0)
		setup_done(p);
}

/*
 * Opened at its URL (held), the target navigates there by itself once the set-up lets it
 * go. Its events are recorded from here, and the first cdp_page_navigate() to the same URL
 * waits for that load instead of starting another.
 */
static int initial_nav_begin(cdp_page_t *p)
{
	set_str(&p->main_frame, p->target_id);
	p->nav_replied = 1; /* there is no Page.navigate reply to wait for */
	p->initial_nav = 1;
	if (nav_listeners_on(p) != 0)
		return -ENOMEM;
	p->l_started = cdp_conn_on(p->conn, "Page.frameStartedNavigating", p->session_id,
	                           on_nav_event, p);
	p->l_failed =
	        cdp_conn_on(p->conn, "Network.loadingFailed", p->session_id, on_nav_event, p);
	return p->l_started && p->l_failed ? 0 : -ENOMEM;
}

/* The session is attached (by Target.attachToTarget, or by Chrome for a held page): the
 * page-long listeners go on and the set-up goes out. */
static void open_attached(cdp_page_t *p)
{
	if (add_crash_listeners(p) != 0 || add_hygiene_listeners(p) != 0 ||
	    (p->open_url && initial_nav_begin(p) != 0)) {
		fail_open(p, -ENOMEM, "out of memory adding listeners");
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
	if (!str_eq(ctx, p->context_id) || strcmp(type, "page") != 0 || opener ||
	    (p->target_id && strcmp(tid, p->target_id) != 0))
		return;
	listener_off(p, &p->l_attach);
	set_str(&p->session_id, sid);
	if (!p->target_id)
		set_str(&p->target_id, tid);
	p->resume = waiting;
	open_attached(p);
}

/* Context, target, attach: one after the other, each needs the previous one's id. */
static void open_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	int cmd = p->open_cmd;
	const char *method = open_methods[cmd];
	const char *key = cmd == ST_CONTEXT  ? "browserContextId"
	                  : cmd == ST_TARGET ? "targetId"
	                                     : "sessionId";
	const char *id = NULL;
	json_error_t err;
	char why[512];
	int rc;

	if (r->status != 0) {
		snprintf(why, sizeof why, "%s failed: %s", method, r->error_message);
		fail_open(p, r->status, why);
		return;
	}
	if (json_unpack_ex(r->result, &err, 0, "{s:s}", key, &id) != 0) {
		bad_reply(why, sizeof why, method, &err);
		fail_open(p, CDP_EBADREPLY, why);
		return;
	}
	if (cmd == ST_TARGET && p->target_id && strcmp(p->target_id, id) != 0) {
		snprintf(why, sizeof why, "Target.createTarget made %s, but Chrome attached %s", id,
		         p->target_id);
		fail_open(p, CDP_EBADREPLY, why);
		return;
	}
	set_str(cmd == ST_CONTEXT  ? &p->context_id
	        : cmd == ST_TARGET ? &p->target_id
	                           : &p->session_id,
	        id);
	if (cmd == ST_ATTACH) {
		open_attached(p);
		return;
	}
	if (cmd == ST_CONTEXT && p->hold) {
		/* before the target exists: Chrome may report its session first */
		p->l_attach = cdp_conn_on(p->conn, "Target.attachedToTarget", NULL, on_attached, p);
		if (!p->l_attach) {
			fail_open(p, -ENOMEM, "out of memory adding a listener");
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
			fail_open(p, CDP_EPROTOCOL, "new pages are not held (Target.setAutoAttach "
			                            "failed): the page is not set up");
			return;
		}
		p->step = ST_ATTACH; /* Chrome's attach is still to come */
		return;
	}
	p->step = cmd + 1;
	rc = open_send_step(p);
	if (rc != 0) {
		snprintf(why, sizeof why, "cannot send %s: %s", open_methods[p->step],
		         cdp_strerror(rc));
		fail_open(p, rc, why);
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
		if (opts->block_resources &&
		    (rc = block_patterns(opts->block_resources, &p->block_patterns)) != 0)
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
	uv_timer_start(&p->op_timer, on_op_timer, p->timeout_ms, 0);
out:
	if (rc != 0) {
		free(p->user_agent);
		free(p->open_url);
		json_decref(p->block_patterns);
		json_decref(p->extra_headers);
		free(p);
	}
	return rc;
}

/* ---- navigate ---- */

static void nav_check_done(cdp_page_t *p)
{
	if (p->op != OP_NAV || !p->nav_replied)
		return;
	if (p->nav_error) {
		finish_nav(p, CDP_ENAV, p->nav_error);
		return;
	}
	if (p->http_failure) {
		/* Chrome shows its own error page for an empty 4xx/5xx body; the response is ours. */
		if (p->resp_status >= 400 || p->load_seen)
			finish_nav(p, 0, "");
		return;
	}
	if (p->lifecycle_on) {
		if (str_eq(p->loaded_loader, p->nav_loader))
			finish_nav(p, 0, "");
	} else if (p->load_seen) {
		finish_nav(p, 0, "");
	}
}

static void on_nav_event(cdp_conn_t *conn, const char *session_id, const char *method,
                         json_t *params, void *ud)
{
	cdp_page_t *p = ud;

	if (p->op != OP_NAV && !p->initial_nav)
		return;
	if (strcmp(method, "Page.loadEventFired") == 0) {
		p->load_seen = 1;
	} else if (strcmp(method, "Page.lifecycleEvent") == 0) {
		const char *name = NULL, *frame = NULL, *loader = NULL;
		if (json_unpack(params, "{s:s, s:s, s:s}", "name", &name, "frameId", &frame,
		                "loaderId", &loader) != 0) {
			log_debug("page",
			          "ignoring a Page.lifecycleEvent without name/frameId/loaderId");
			return;
		}
		if (strcmp(name, "load") != 0 ||
		    !str_eq(frame, p->main_frame ? p->main_frame : p->target_id))
			return;
		set_str(&p->loaded_loader, loader);
	} else if (strcmp(method, "Network.responseReceived") == 0) {
		const char *type = NULL, *loader = NULL, *frame = NULL, *url = NULL;
		json_t *jstatus = NULL;
		json_error_t err;
		if (json_unpack_ex(params, &err, 0, "{s:s, s?s, s?s, s:{s:s, s:o}}", "type", &type,
		                   "loaderId", &loader, "frameId", &frame, "response", "url", &url,
		                   "status", &jstatus) != 0) {
			log_debug("page",
			          "ignoring a Network.responseReceived of unexpected shape: %s",
			          err.text);
			return;
		}
		if (strcmp(type, "Document") != 0)
			return;
		if (frame && !str_eq(frame, p->main_frame ? p->main_frame : p->target_id))
			return;
		if ((p->initial_nav || p->adopting) && !p->start_loader && loader) {
			set_str(&p->start_loader, loader);
			set_str(&p->nav_loader, loader);
		}
		if (p->nav_loader && loader && strcmp(loader, p->nav_loader) != 0)
			return;
		if (!json_is_number(jstatus)) {
			log_debug("page",
			          "Network.responseReceived: response.status is not a number");
			return;
		}
		p->resp_status = (long)json_number_value(jstatus);
		set_str(&p->resp_loader, loader);
		set_str(&p->resp_url, url);
		if (!p->final_url)
			set_str(&p->final_url, url);
	} else if (strcmp(method, "Page.frameNavigated") == 0) {
		json_t *frame = json_object_get(params, "frame");
		json_t *id = json_object_get(frame, "id");
		json_t *url = json_object_get(frame, "url");
		json_t *frag = json_object_get(frame, "urlFragment");
		char *full;
		size_t n;
		if (!json_is_string(id) || !json_is_string(url)) {
			log_debug("page",
			          "ignoring a Page.frameNavigated without frame.id/frame.url");
			return;
		}
		if (json_object_get(frame, "parentId") ||
		    !str_eq(json_string_value(id), p->main_frame ? p->main_frame : p->target_id))
			return;
		if (strncmp(json_string_value(url), "chrome-error://", 15) == 0)
			return; /* Chrome's error page, not where the navigation went */
		/* A script may navigate again before the load event (location.replace): the
		 * document that commits last is the one whose load we wait for. */
		if (p->nav_replied && json_is_string(json_object_get(frame, "loaderId")))
			set_str(&p->nav_loader,
			        json_string_value(json_object_get(frame, "loaderId")));
		n = strlen(json_string_value(url)) +
		    (json_is_string(frag) ? strlen(json_string_value(frag)) : 0) + 1;
		full = malloc(n);
		if (!full)
			return;
		snprintf(full, n, "%s%s", json_string_value(url),
		         json_is_string(frag) ? json_string_value(frag) : "");
		free(p->final_url);
		p->final_url = full;
		return;
	} else if (strcmp(method, "Page.frameStartedNavigating") == 0) {
		const char *frame = NULL, *loader = NULL;
		if (json_unpack(params, "{s:s, s:s}", "frameId", &frame, "loaderId", &loader)) {
			log_debug("page", "ignoring a Page.frameStartedNavigating without "
			                  "frameId/loaderId");
			return;
		}
		if (p->start_loader || !str_eq(frame, p->main_frame))
			return;
		set_str(&p->start_loader, loader);
		set_str(&p->nav_loader, loader);
		return;
	} else if (strcmp(method, "Network.loadingFailed") == 0) {
		/* No frameId here: the request id of a navigation is its loader id. */
		const char *id = NULL, *type = NULL, *text = NULL;
		if (json_unpack(params, "{s:s, s:s, s:s}", "requestId", &id, "type", &type,
		                "errorText", &text) != 0) {
			log_debug("page", "ignoring a Network.loadingFailed without "
			                  "requestId/type/errorText");
			return;
		}
		if (strcmp(type, "Document") != 0 || !str_eq(id, p->start_loader))
			return;
		if (strcmp(text, "net::ERR_HTTP_RESPONSE_CODE_FAILURE") == 0)
			p->http_failure = 1;
		else if (!p->nav_error)
			set_str(&p->nav_error, *text ? text : "navigation failed");
	} else {
		return;
	}
	nav_check_done(p);
}

/* Frees what a navigation saw (not its URL), leaving NULLs. */
static void nav_state_free(cdp_page_t *p)
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
	nav_state_free(p);
	p->resp_status = 0;
	p->nav_replied = p->load_seen = p->http_failure = 0;
	set_str(&p->main_frame, p->target_id);
}

static void nav_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	const char *frame = NULL, *loader = NULL, *error_text = NULL;
	json_error_t err;
	char why[512];

	if (r->status != 0) {
		snprintf(why, sizeof why, "Page.navigate failed: %s", r->error_message);
		finish_nav(p, r->status, why);
		return;
	}
	if (json_unpack_ex(r->result, &err, 0, "{s:s, s?s, s?s}", "frameId", &frame, "loaderId",
	                   &loader, "errorText", &error_text) != 0) {
		bad_reply(why, sizeof why, "Page.navigate", &err);
		finish_nav(p, CDP_EBADREPLY, why);
		return;
	}
	set_str(&p->main_frame, frame);
	set_str(&p->nav_loader, loader);
	p->nav_replied = 1;
	if (error_text && *error_text) {
		if (strcmp(error_text, "net::ERR_HTTP_RESPONSE_CODE_FAILURE") == 0) {
			p->http_failure = 1;
		} else {
			finish_nav(p, CDP_ENAV, error_text);
			return;
		}
	} else if (!loader) {
		/* Same-document navigation (a fragment): there is no load event to wait for. */
		finish_nav(p, 0, "");
		return;
	}
	nav_check_done(p);
}

static void on_conn_watch(uv_timer_t *t)
{
	cdp_page_t *p = t->data;

	if (p->op == OP_NAV && !p->pending && !cdp_conn_is_open(p->conn))
		finish_nav(p, CDP_ECONNLOST, "connection to the browser lost during navigation");
}

static int nav_listeners_on(cdp_page_t *p)
{
	p->l_load = cdp_conn_on(p->conn, "Page.loadEventFired", p->session_id, on_nav_event, p);
	p->l_lifecycle =
	        cdp_conn_on(p->conn, "Page.lifecycleEvent", p->session_id, on_nav_event, p);
	p->l_response =
	        cdp_conn_on(p->conn, "Network.responseReceived", p->session_id, on_nav_event, p);
	p->l_frame_nav =
	        cdp_conn_on(p->conn, "Page.frameNavigated", p->session_id, on_nav_event, p);
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
	int rc = can_start(p);

	if (rc != 0)
		return rc;
	if (!url || !cb)
		return -EINVAL;
	if (p->initial_nav) {
		p->initial_nav = 0;
		if (strcmp(url, p->open_url) == 0) {
			if (!(p->nav_url = strdup(url)))
				return -ENOMEM;
			op_begin(p, OP_NAV, timeout_ms, ud);
			p->cb.nav = cb;
			p->adopting = 1;
			uv_timer_start(&p->poll_timer, on_adopt_poll, 0, PAGE_CONN_WATCH_MS);
			log_debug("page", "navigate %s (the page was opened there)", url);
			return 0;
		}
		nav_listeners_off(p); /* another URL: a navigation of its own */
	}
	free(p->nav_url);
	nav_state_reset(p);
	p->nav_url = strdup(url);
	params = json_pack("{s:s}", "url", url);
	if (!p->nav_url || !params) {
		json_decref(params);
		return -ENOMEM;
	}
	if (nav_listeners_on(p) != 0) {
		nav_listeners_off(p);
		json_decref(params);
		return -ENOMEM;
	}
	op_begin(p, OP_NAV, timeout_ms, ud);
	p->cb.nav = cb;
	rc = send_cmd(p, p->session_id, "Page.navigate", params, 0);
	if (rc != 0) {
		op_reset(p);
		return rc;
	}
	uv_timer_start(&p->poll_timer, on_conn_watch, PAGE_CONN_WATCH_MS, PAGE_CONN_WATCH_MS);
	log_debug("page", "navigate %s", url);
	return 0;
}

/* ---- wait_for ---- */

static int wait_send(cdp_page_t *p)
{
	json_t *params = json_pack("{s:s, s:b}", "expression", p->wait_expr, "returnByValue", 1);

	if (!params)
		return -ENOMEM;
	return send_cmd(p, p->session_id, "Runtime.evaluate", params, 0);
}

static void on_poll_timer(uv_timer_t *t)
{
	cdp_page_t *p = t->data;
	char why[256];
	int rc;

	if (p->op != OP_WAIT)
		return;
	rc = wait_send(p);
	if (rc != 0) {
		snprintf(why, sizeof why, "cannot poll the selector: %s", cdp_strerror(rc));
		finish_done(p, rc, why);
	}
}

static void wait_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	json_t *value = NULL, *owned = NULL;
	char why[1024];
	int rc;

	if (r->status == CDP_EPROTOCOL) {
		/* e.g. "Execution context was destroyed" while the page navigates: try again */
		log_debug("page", "wait_for poll failed (%s); retrying", r->error_message);
		uv_timer_start(&p->poll_timer, on_poll_timer, PAGE_POLL_MS, 0);
		return;
	}
	if (r->status != 0) {
		snprintf(why, sizeof why, "Runtime.evaluate failed: %s", r->error_message);
		finish_done(p, r->status, why);
		return;
	}
	rc = read_evaluate(r->result, &value, &owned, why, sizeof why);
	json_decref(owned);
	if (rc != 0) {
		finish_done(p, rc, why);
		return;
	}
	if (json_is_true(value)) {
		finish_done(p, 0, "");
		return;
	}
	uv_timer_start(&p->poll_timer, on_poll_timer, PAGE_POLL_MS, 0);
}

int cdp_page_wait_for(cdp_page_t *p, const char *css, uint32_t timeout_ms, cdp_page_done_cb cb,
                      void *ud)
{
	json_t *js = NULL;
	char *quoted = NULL;
	size_t n;
	int rc = can_start(p);

	if (rc != 0)
		return rc;
	if (!css || !cb)
		return -EINVAL;
	js = json_string(css);
	if (!js)
		return -EINVAL; /* not UTF-8 */
	quoted = json_dumps(js, JSON_ENCODE_ANY);
	json_decref(js);
	if (!quoted)
		return -ENOMEM;
	n = strlen(quoted) + sizeof "!!document.querySelector()";
	p->wait_expr = malloc(n);
	if (!p->wait_expr) {
		free(quoted);
		return -ENOMEM;
	}
	snprintf(p->wait_expr, n, "!!document.querySelector(%s)", quoted);
	free(quoted);
	op_begin(p, OP_WAIT, timeout_ms, ud);
	p->cb.done = cb;
	rc = wait_send(p);
	if (rc != 0) {
		op_reset(p);
		free(p->wait_expr);
		p->wait_expr = NULL;
	}
	return rc;
}

/* ---- evaluate ---- */

static void eval_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	json_t *value = NULL, *owned = NULL;
	char why[2048];
	int rc;

	if (r->status != 0) {
		snprintf(why, sizeof why, "Runtime.evaluate failed: %s", r->error_message);
		finish_eval(p, r->status, NULL, why);
		return;
	}
	rc = read_evaluate(r->result, &value, &owned, why, sizeof why);
	finish_eval(p, rc, rc ? NULL : value, rc ? why : "");
	json_decref(owned);
}

int cdp_page_evaluate(cdp_page_t *p, const char *expression, uint32_t timeout_ms,
                      cdp_page_eval_cb cb, void *ud)
{
	json_t *params;
	int rc = can_start(p);

	if (rc != 0)
		return rc;
	if (!expression || !cb)
		return -EINVAL;
	params = json_pack("{s:s, s:b, s:b}", "expression", expression, "returnByValue", 1,
	                   "awaitPromise", 1);
	if (!params)
		return -EINVAL; /* not UTF-8, or out of memory */
	op_begin(p, OP_EVAL, timeout_ms, ud);
	p->cb.eval = cb;
	rc = send_cmd(p, p->session_id, "Runtime.evaluate", params, 0);
	if (rc != 0)
		op_reset(p);
	return rc;
}

/* ---- screenshot ---- */

static int shot_send_capture(cdp_page_t *p)
{
	json_t *params;

	p->step = 1;
	if (p->full_page)
		params = json_pack("{s:s, s:b, s:{s:f, s:f, s:f, s:f, s:f}}", "format", "png",
		                   "captureBeyondViewport", 1, "clip", "x", 0.0, "y", 0.0, "width",
		                   p->clip_w, "height", p->clip_h, "scale", 1.0);
	else
		params = json_pack("{s:s, s:b}", "format", "png", "captureBeyondViewport", 0);
	if (!params)
		return -ENOMEM;
	return send_cmd(p, p->session_id, "Page.captureScreenshot", params, 0);
}

static void shot_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	const char *method = p->step == 0 ? "Page.getLayoutMetrics" : "Page.captureScreenshot";
	json_error_t err;
	char why[512];
	int rc;

	if (r->status != 0) {
		snprintf(why, sizeof why, "%s failed: %s", method, r->error_message);
		finish_shot(p, r->status, NULL, 0, why);
		return;
	}
	if (p->step == 0) {
		double w = 0, h = 0;
		if (json_unpack_ex(r->result, &err, 0, "{s:{s:F, s:F}}", "cssContentSize", "width",
		                   &w, "height", &h) != 0 &&
		    json_unpack_ex(r->result, &err, 0, "{s:{s:F, s:F}}", "contentSize", "width", &w,
		                   "height", &h) != 0) {
			bad_reply(why, sizeof why, method, &err);
			finish_shot(p, CDP_EBADREPLY, NULL, 0, why);
			return;
		}
		if (w < 1 || h < 1) {
			snprintf(why, sizeof why, "%s: content size %gx%g is empty", method, w, h);
			finish_shot(p, CDP_EBADREPLY, NULL, 0, why);
			return;
		}
		p->clip_w = w;
		p->clip_h = h;
		rc = shot_send_capture(p);
		if (rc != 0) {
			snprintf(why, sizeof why, "cannot send Page.captureScreenshot: %s",
			         cdp_strerror(rc));
			finish_shot(p, rc, NULL, 0, why);
		}
		return;
	} else {
		json_t *data = NULL;
		unsigned char *png = NULL;
		size_t len = 0;
		if (json_unpack_ex(r->result, &err, 0, "{s:o}", "data", &data) != 0 ||
		    !json_is_string(data)) {
			if (data)
				snprintf(why, sizeof why,
				         "%s reply: field \"data\" is not a string", method);
			else
				bad_reply(why, sizeof why, method, &err);
			finish_shot(p, CDP_EBADREPLY, NULL, 0, why);
			return;
		}
		rc = b64_decode(json_string_value(data), json_string_length(data), &png, &len);
		if (rc != 0) {
			snprintf(why, sizeof why, "%s reply: field \"data\" is not valid base64",
			         method);
			finish_shot(p, rc == -ENOMEM ? rc : CDP_EBADREPLY, NULL, 0, why);
			return;
		}
		finish_shot(p, 0, png, len, "");
		free(png);
	}
}

int cdp_page_screenshot(cdp_page_t *p, int full_page, uint32_t timeout_ms, cdp_page_shot_cb cb,
                        void *ud)
{
	int rc = can_start(p);

	if (rc != 0)
		return rc;
	if (!cb)
		return -EINVAL;
	op_begin(p, OP_SHOT, timeout_ms, ud);
	p->cb.shot = cb;
	p->full_page = full_page != 0;
	if (p->full_page) {
		json_t *params = json_object();
		rc = params ? send_cmd(p, p->session_id, "Page.getLayoutMetrics", params, 0)
		            : -ENOMEM;
	} else {
		rc = shot_send_capture(p);
	}
	if (rc != 0)
		op_reset(p);
	return rc;
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
	case OP_OPEN: open_reply(p, r); break;
	case OP_NAV: nav_reply(p, r); break;
	case OP_WAIT: wait_reply(p, r); break;
	case OP_EVAL: eval_reply(p, r); break;
	case OP_SHOT: shot_reply(p, r); break;
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
	free(p->main_frame);
	nav_state_free(p);
	free(p->open_url);
	free(p->wait_expr);
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

static void begin_dispose(cdp_page_t *p)
{
	json_t *params;
	int rc;

	p->state = PS_DISPOSING;
	nav_listeners_off(p);
	listener_off(p, &p->l_insp_crash);
	listener_off(p, &p->l_target_crash);
	listener_off(p, &p->l_detached);
	listener_off(p, &p->l_dialog);
	listener_off(p, &p->l_paused);
	listener_off(p, &p->l_attach);
	cancel_pending(p);
	if (p->context_id && cdp_conn_is_open(p->conn)) {
		params = json_pack("{s:s}", "browserContextId", p->context_id);
		rc = params ? send_cmd(p, NULL, "Target.disposeBrowserContext", params,
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
	begin_dispose(p);
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
