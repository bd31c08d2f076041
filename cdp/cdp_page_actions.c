/*
 * cdp_page_actions: cdp_page_actions(), page actions run in order as one operation: click,
 * wait_for, wait_ms, scroll, fill, press. The list is checked and copied whole first (a
 * malformed one is -EINVAL before anything runs). Each step is a small machine on the
 * page's one command in flight and its poll timer: a step that needs an element polls a
 * fixed function of ours (its selector and mode passed as a JSON literal, never code) until
 * the element is there, then sends its Input commands one after the other. The operation's
 * timer bounds the whole list; each step's own deadline (its timeout_ms, or
 * CDP_ACTION_OPTIONAL_WAIT_MS for an optional one) is checked at each poll.
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

#define ACTION_WAIT_MS_MAX 60000
#define ACTION_TIMEOUT_MAX_MS 3600000

enum act_verb { V_CLICK, V_WAIT_FOR, V_WAIT_MS, V_SCROLL, V_FILL, V_PRESS, V_NVERBS };

static const char *const verb_names[V_NVERBS] = { "click",  "wait_for", "wait_ms",
	                                          "scroll", "fill",     "press" };

struct act_step {
	enum act_verb verb;
	char *target; /* selector, key, or scroll's "bottom"/"top"/selector */
	char *text;   /* fill's text */
	int attached; /* wait_for state attached; scroll to a selector */
	int optional;
	uint32_t timeout_ms; /* 0: none of its own */
	uint32_t ms;         /* wait_ms */
	char desc[160];      /* `click "#x"` */
};

struct page_actions {
	struct act_step *steps;
	size_t n, i;
	int sub;     /* the step's command so far (0: polling or its first command) */
	int polling; /* the step waits for its element */
	uint64_t step_start, step_deadline; /* loop time */
	double x, y;                        /* click: the element's centre */
	char *expr;                         /* the step's poll expression */
};

/* Our page-side finder, called with (selector, visible, act): null until a match (a visible
 * one unless visible is false) is there, then it does act's part on it: click scrolls it
 * into view and returns its centre, fill focuses it and clears its value, scroll scrolls it
 * into view. */
static const char find_js[] =
        "((sel, visible, act) => {\n"
        "  const shown = (e) => {\n"
        "    if (!visible) return true;\n"
        "    const r = e.getBoundingClientRect();\n"
        "    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden';\n"
        "  };\n"
        "  let el = null;\n"
        "  for (const e of document.querySelectorAll(sel)) if (shown(e)) { el = e; break; }\n"
        "  if (!el) return null;\n"
        "  if (act === 'click' || act === 'scroll')\n"
        "    el.scrollIntoView({ block: 'center', inline: 'center', behavior: 'instant' });\n"
        "  if (act === 'click') {\n"
        "    const r = el.getBoundingClientRect();\n"
        "    return { x: r.left + r.width / 2, y: r.top + r.height / 2 };\n"
        "  }\n"
        "  if (act === 'fill') {\n"
        "    el.focus();\n"
        "    if ('value' in el) el.value = '';\n"
        "    else if (el.isContentEditable) el.textContent = '';\n"
        "  }\n"
        "  return {};\n"
        "})";

static const char scroll_bottom_js[] =
        "window.scrollTo(0, Math.max(document.body ? document.body.scrollHeight : 0, "
        "document.documentElement ? document.documentElement.scrollHeight : 0)), true";
static const char scroll_top_js[] = "window.scrollTo(0, 0), true";

/* ---- keys ---- */

static const struct key_def {
	const char *name, *key, *code, *text;
	int vk;
} keys[] = {
	{ "Enter", "Enter", "Enter", "\r", 13 },
	{ "Tab", "Tab", "Tab", NULL, 9 },
	{ "Escape", "Escape", "Escape", NULL, 27 },
	{ "Backspace", "Backspace", "Backspace", NULL, 8 },
	{ "Delete", "Delete", "Delete", NULL, 46 },
	{ "ArrowUp", "ArrowUp", "ArrowUp", NULL, 38 },
	{ "ArrowDown", "ArrowDown", "ArrowDown", NULL, 40 },
	{ "ArrowLeft", "ArrowLeft", "ArrowLeft", NULL, 37 },
	{ "ArrowRight", "ArrowRight", "ArrowRight", NULL, 39 },
	{ "PageUp", "PageUp", "PageUp", NULL, 33 },
	{ "PageDown", "PageDown", "PageDown", NULL, 34 },
	{ "Home", "Home", "Home", NULL, 36 },
	{ "End", "End", "End", NULL, 35 },
	{ "Space", " ", "Space", " ", 32 },
};

/* Whether s is one printable character (one UTF-8 code point, not a control). */
static int one_printable(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), want;

	if (n == 0)
		return 0;
	want = u[0] < 0x80             ? 1
	       : (u[0] & 0xe0) == 0xc0 ? 2
	       : (u[0] & 0xf0) == 0xe0 ? 3
	       : (u[0] & 0xf8) == 0xf0 ? 4
	                               : 0;
	if (want != n)
		return 0;
	if (n == 1)
		return u[0] >= 0x20 && u[0] != 0x7f;
	return !(n == 2 && u[0] == 0xc2 && u[1] < 0xa0); /* C1 controls */
}

static int key_known(const char *k)
{
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(keys[i].name, k) == 0)
			return 1;
	return one_printable(k);
}

/* Input.dispatchKeyEvent parameters for key, down or up. */
static json_t *key_params(const char *k, int down)
{
	char code[16] = "", text[8];
	const char *key = k, *txt = NULL, *cd = code;
	int vk = 0;

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (strcmp(keys[i].name, k) == 0) {
			key = keys[i].key;
			cd = keys[i].code;
			txt = keys[i].text;
			vk = keys[i].vk;
			break;
		}
	}
	if (cd == code) { /* one printable character */
		char c = k[0];
		snprintf(text, sizeof text, "%s", k);
		txt = text;
		if (c >= 'a' && c <= 'z' && !k[1]) {
			snprintf(code, sizeof code, "Key%c", c - 'a' + 'A');
			vk = c - 'a' + 'A';
		} else if (c >= 'A' && c <= 'Z' && !k[1]) {
			snprintf(code, sizeof code, "Key%c", c);
			vk = c;
		} else if (c >= '0' && c <= '9' && !k[1]) {
			snprintf(code, sizeof code, "Digit%c", c);
			vk = c;
		}
	}
	if (!down)
		return json_pack("{s:s, s:s, s:s, s:i}", "type", "keyUp", "key", key, "code", cd,
		                 "windowsVirtualKeyCode", vk);
	if (txt)
		return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "type", "keyDown", "key", key,
		                 "code", cd, "windowsVirtualKeyCode", vk, "text", txt,
		                 "unmodifiedText", txt);
	return json_pack("{s:s, s:s, s:s, s:i}", "type", "rawKeyDown", "key", key, "code", cd,
	                 "windowsVirtualKeyCode", vk);
}

/* ---- checking and copying the list ---- */

static void steps_free(struct act_step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(steps[i].target);
		free(steps[i].text);
	}
	free(steps);
}

void cdp__page_actions_state_free(cdp_page_t *p)
{
	struct page_actions *a = p->actions;

	if (!a)
		return;
	steps_free(a->steps, a->n);
	free(a->expr);
	free(a);
	p->actions = NULL;
}

static int bad_step(size_t i, const char *what)
{
	log_warn("page", "actions[%zu]: %s", i, what);
	return -EINVAL;
}

/* Checks and copies one step. 0, -EINVAL (logged) or -ENOMEM. */
static int parse_step(size_t i, json_t *j, struct act_step *st)
{
	const char *k;
	json_t *v, *verb = NULL;
	int nverbs = 0;
	char *quoted;

	if (!json_is_object(j))
		return bad_step(i, "not an object");
	json_object_foreach(j, k, v)
	{
		int found = 0;
		for (int vb = 0; vb < V_NVERBS; vb++) {
			if (strcmp(k, verb_names[vb]) == 0) {
				st->verb = (enum act_verb)vb;
				verb = v;
				nverbs++;
				found = 1;
			}
		}
		if (found)
			continue;
		if (strcmp(k, "optional") == 0) {
			if (!json_is_boolean(v))
				return bad_step(i, "\"optional\" is not true or false");
			st->optional = json_is_true(v);
		} else if (strcmp(k, "timeout_ms") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > ACTION_TIMEOUT_MAX_MS)
				return bad_step(i,
				                "\"timeout_ms\" is not a whole number 0..3600000");
			st->timeout_ms = (uint32_t)json_integer_value(v);
		} else if (strcmp(k, "state") != 0) {
			log_warn("page", "actions[%zu]: unknown key \"%s\"", i, k);
			return -EINVAL;
		}
	}
	if (nverbs != 1)
		return bad_step(i,
		                "not exactly one of click, wait_for, wait_ms, scroll, fill, press");
	v = json_object_get(j, "state");
	if (v && (st->verb != V_WAIT_FOR || !json_is_string(v) ||
	          (strcmp(json_string_value(v), "visible") != 0 &&
	           strcmp(json_string_value(v), "attached") != 0)))
		return bad_step(i, "\"state\" is only for wait_for, \"visible\" or \"attached\"");
	st->attached = v && strcmp(json_string_value(v), "attached") == 0;
	switch (st->verb) {
	case V_WAIT_MS:
		if (!json_is_integer(verb) || json_integer_value(verb) < 0 ||
		    json_integer_value(verb) > ACTION_WAIT_MS_MAX)
			return bad_step(i, "\"wait_ms\" is not a whole number 0..60000");
		st->ms = (uint32_t)json_integer_value(verb);
		snprintf(st->desc, sizeof st->desc, "wait_ms %u", st->ms);
		return 0;
	case V_FILL:
		if (!json_is_array(verb) || json_array_size(verb) != 2 ||
		    !json_is_string(json_array_get(verb, 0)) ||
		    !json_is_string(json_array_get(verb, 1)) ||
		    !*json_string_value(json_array_get(verb, 0)))
			return bad_step(i, "\"fill\" is not [selector, text]");
		st->target = strdup(json_string_value(json_array_get(verb, 0)));
		st->text = strdup(json_string_value(json_array_get(verb, 1)));
		if (!st->target || !st->text)
			return -ENOMEM;
		break;
	default:
		if (!json_is_string(verb) || !*json_string_value(verb))
			return bad_step(i, "the verb's value is not a non-empty string");
		if (st->verb == V_PRESS && !key_known(json_string_value(verb)))
			return bad_step(i,
			                "\"press\" names no known key nor one printable character");
		st->target = strdup(json_string_value(verb));
		if (!st->target)
			return -ENOMEM;
		break;
	}
	if (st->verb == V_SCROLL)
		st->attached = 1;
	quoted = json_dumps(json_is_array(verb) ? json_array_get(verb, 0) : verb, JSON_ENCODE_ANY);
	if (!quoted)
		return -ENOMEM;
	snprintf(st->desc, sizeof st->desc, "%s %.140s", verb_names[st->verb], quoted);
	free(quoted);
	return 0;
}

static int parse_steps(const json_t *actions, struct act_step **out, size_t *n_out)
{
	size_t n, i;
	struct act_step *steps;
	int rc = 0;

	*out = NULL;
	*n_out = 0;
	if (!json_is_array(actions)) {
		log_warn("page", "actions are not a JSON array");
		return -EINVAL;
	}
	n = json_array_size(actions);
	steps = calloc(n ? n : 1, sizeof *steps);
	if (!steps)
		return -ENOMEM;
	for (i = 0; i < n && rc == 0; i++)
		rc = parse_step(i, json_array_get(actions, i), &steps[i]);
	if (rc != 0) {
		steps_free(steps, n);
		return rc;
	}
	*out = steps;
	*n_out = n;
	return 0;
}

int cdp__page_actions_check(const json_t *actions)
{
	struct act_step *steps = NULL;
	size_t n = 0;
	int rc = parse_steps(actions, &steps, &n);

	if (rc == 0)
		steps_free(steps, n);
	return rc;
}

/* ---- running ---- */

static void run_step(cdp_page_t *p);

static void done(cdp_page_t *p, int status, const char *why)
{
	cdp_page_done_cb cb = p->cb.done;
	void *ud = p->ud;

	cdp__page_op_reset(p);
	cdp__page_actions_state_free(p);
	cb(p, status, why ? why : "", ud);
}

/* From outside (close, crash): the step that was running is named. */
void cdp__page_finish_actions(cdp_page_t *p, int status, const char *why)
{
	struct page_actions *a = p->actions;
	char msg[1024];

	if (a && a->i < a->n) {
		snprintf(msg, sizeof msg, "actions[%zu] %s: %s", a->i, a->steps[a->i].desc,
		         why ? why : "");
		done(p, status, msg);
		return;
	}
	done(p, status, why);
}

/* The running step failed: an optional one is skipped, else the actions fail. */
static void step_fail(cdp_page_t *p, int status, const char *reason)
{
	struct page_actions *a = p->actions;
	struct act_step *st = &a->steps[a->i];
	char msg[1024];

	snprintf(msg, sizeof msg, "actions[%zu] %s: %s", a->i, st->desc, reason);
	if (st->optional) {
		log_debug("page", "optional step skipped: %s", msg);
		if (p->pending) { /* stop what the step still had in flight */
			uint64_t id = p->pending_id;
			p->pending = 0;
			p->pending_id = 0;
			p->cancelling++;
			cdp_conn_cancel(p->conn, id);
			p->cancelling--;
		}
		uv_timer_stop(&p->poll_timer);
		a->i++;
		run_step(p);
		return;
	}
	done(p, status, msg);
}

static void step_next(cdp_page_t *p)
{
	p->actions->i++;
	run_step(p);
}

static void no_element(cdp_page_t *p)
{
	struct page_actions *a = p->actions;
	struct act_step *st = &a->steps[a->i];
	char reason[128];

	/* the wait it was given (its timeout_ms, or what the deadline left), not the time that
	 * passed: a loaded loop notices the deadline late, and the user set the former */
	snprintf(reason, sizeof reason, "no %selement matched within %.1f s",
	         st->attached ? "" : "visible ",
	         (double)(a->step_deadline - a->step_start) / 1000.0);
	step_fail(p, -ETIMEDOUT, reason);
}

void cdp__page_actions_timed_out(cdp_page_t *p)
{
	struct page_actions *a = p->actions;
	char reason[128];

	if (a->polling && !a->steps[a->i].optional) {
		no_element(p);
		return;
	}
	snprintf(reason, sizeof reason, "did not finish within the actions' deadline of %u ms",
	         p->timeout_ms);
	cdp__page_finish_actions(p, -ETIMEDOUT, reason);
}

static int send_eval(cdp_page_t *p, const char *expr)
{
	json_t *params = json_pack("{s:s, s:b}", "expression", expr, "returnByValue", 1);

	return params ? cdp__page_send(p, p->session_id, CDP_M_RUNTIME_EVALUATE, params, 0)
	              : -ENOMEM;
}

static void send_or_fail(cdp_page_t *p, const char *method, json_t *params)
{
	char reason[256];
	int rc = params ? cdp__page_send(p, p->session_id, method, params, 0) : -ENOMEM;

	if (rc != 0) {
		snprintf(reason, sizeof reason, "cannot send %s: %s", method, cdp_strerror(rc));
		step_fail(p, rc, reason);
	}
}

static void on_poll(uv_timer_t *t)
{
	cdp_page_t *p = t->data;
	int rc;

	if (p->op != OP_ACTIONS || !p->actions || !p->actions->polling)
		return;
	if (uv_now(p->loop) >= p->actions->step_deadline) {
		no_element(p);
		return;
	}
	rc = send_eval(p, p->actions->expr);
	if (rc != 0)
		step_fail(p, rc, cdp_strerror(rc));
}

static void on_wait_ms(uv_timer_t *t)
{
	cdp_page_t *p = t->data;

	if (p->op == OP_ACTIONS && p->actions)
		step_next(p);
}

static void on_start(uv_timer_t *t)
{
	cdp_page_t *p = t->data;

	if (p->op == OP_ACTIONS && p->actions)
		run_step(p);
}

/* Builds find_js(...[sel, visible, act]) for the step. */
static int find_expr(struct page_actions *a, const struct act_step *st)
{
	static const char *const acts[V_NVERBS] = { "click", "wait", "", "scroll", "fill", "" };
	json_t *args = json_pack("[s, b, s]", st->target, !st->attached, acts[st->verb]);
	char *js = args ? json_dumps(args, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	size_t n;

	json_decref(args);
	if (!js)
		return -ENOMEM;
	n = strlen(find_js) + strlen(js) + 8;
	free(a->expr);
	a->expr = malloc(n);
	if (a->expr)
		snprintf(a->expr, n, "%s(...%s)", find_js, js);
	free(js);
	return a->expr ? 0 : -ENOMEM;
}

/* Starts step a->i, or ends the list. */
static void run_step(cdp_page_t *p)
{
	struct page_actions *a = p->actions;
	struct act_step *st;
	uint64_t now = uv_now(p->loop), cap;
	int rc;

	if (a->i >= a->n) {
		done(p, 0, "");
		return;
	}
	st = &a->steps[a->i];
	a->sub = 0;
	a->polling = 0;
	a->step_start = now;
	cap = st->timeout_ms ? st->timeout_ms : st->optional ? CDP_ACTION_OPTIONAL_WAIT_MS : 0;
	a->step_deadline = cap && now + cap < p->deadline ? now + cap : p->deadline;
	switch (st->verb) {
	case V_WAIT_MS:
		cap = a->step_deadline > now ? a->step_deadline - now : 0;
		uv_timer_start(&p->poll_timer, on_wait_ms, st->ms < cap ? st->ms : cap, 0);
		return;
	case V_PRESS:
		send_or_fail(p, CDP_M_INPUT_DISPATCH_KEY_EVENT, key_params(st->target, 1));
		return;
	case V_SCROLL:
		if (strcmp(st->target, "bottom") == 0 || strcmp(st->target, "top") == 0) {
			rc = send_eval(p, strcmp(st->target, "top") == 0 ? scroll_top_js
			                                                 : scroll_bottom_js);
			if (rc != 0)
				step_fail(p, rc, cdp_strerror(rc));
			return;
		}
		break;
	default: break;
	}
	rc = find_expr(a, st);
	if (rc == 0) {
		a->polling = 1;
		rc = send_eval(p, a->expr);
	}
	if (rc != 0)
		step_fail(p, rc, cdp_strerror(rc));
}

/* The element is there (value from find_js): the step's Input commands. */
static void on_found(cdp_page_t *p, json_t *value)
{
	struct page_actions *a = p->actions;
	struct act_step *st = &a->steps[a->i];

	a->polling = 0;
	switch (st->verb) {
	case V_CLICK:
		if (json_unpack(value, "{s:F, s:F}", "x", &a->x, "y", &a->y) != 0) {
			step_fail(p, CDP_EBADREPLY, "the element has no position");
			return;
		}
		a->sub = 1;
		send_or_fail(
		        p, CDP_M_INPUT_DISPATCH_MOUSE_EVENT,
		        json_pack("{s:s, s:f, s:f}", "type", "mouseMoved", "x", a->x, "y", a->y));
		return;
	case V_FILL:
		if (!*st->text) {
			step_next(p);
			return;
		}
		a->sub = 1;
		send_or_fail(p, CDP_M_INPUT_INSERT_TEXT, json_pack("{s:s}", "text", st->text));
		return;
	default: step_next(p); return;
	}
}

void cdp__page_actions_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	struct page_actions *a = p->actions;
	struct act_step *st = &a->steps[a->i];
	json_t *value = NULL, *owned = NULL;
	char why[1024];
	int rc;

	if (a->polling || (st->verb == V_SCROLL && !a->sub)) {
		if (r->status == CDP_EPROTOCOL && a->polling) {
			/* e.g. the context was destroyed by a navigation: poll again */
			uv_timer_start(&p->poll_timer, on_poll, PAGE_POLL_MS, 0);
			return;
		}
		if (r->status != 0) {
			snprintf(why, sizeof why, "Runtime.evaluate failed: %s", r->error_message);
			step_fail(p, r->status, why);
			return;
		}
		rc = cdp__page_read_evaluate(r->result, &value, &owned, why, sizeof why);
		json_decref(owned);
		if (rc != 0)
			step_fail(p, rc, why);
		else if (!a->polling)
			step_next(p); /* scrolled to the top or bottom */
		else if (json_is_object(value))
			on_found(p, value);
		else
			uv_timer_start(&p->poll_timer, on_poll, PAGE_POLL_MS, 0);
		return;
	}
	if (r->status != 0) {
		snprintf(why, sizeof why, "%s failed: %s", p->pending_method, r->error_message);
		step_fail(p, r->status, why);
		return;
	}
	switch (st->verb) {
	case V_CLICK:
		if (a->sub == 3) {
			step_next(p);
			return;
		}
		a->sub++;
		send_or_fail(p, CDP_M_INPUT_DISPATCH_MOUSE_EVENT,
		             json_pack("{s:s, s:f, s:f, s:s, s:i}", "type",
		                       a->sub == 2 ? "mousePressed" : "mouseReleased", "x", a->x,
		                       "y", a->y, "button", "left", "clickCount", 1));
		return;
	case V_PRESS:
		if (a->sub == 1) {
			step_next(p);
			return;
		}
		a->sub = 1;
		send_or_fail(p, CDP_M_INPUT_DISPATCH_KEY_EVENT, key_params(st->target, 0));
		return;
	default: step_next(p); return;
	}
}

int cdp_page_actions(cdp_page_t *p, const json_t *actions, uint32_t timeout_ms, cdp_page_done_cb cb,
                     void *ud)
{
	struct page_actions *a = NULL;
	int rc = cdp__page_can_start(p);

	if (rc != 0)
		return rc;
	if (!cb)
		return -EINVAL;
	a = calloc(1, sizeof *a);
	if (!a)
		return -ENOMEM;
	rc = parse_steps(actions, &a->steps, &a->n);
	if (rc != 0) {
		free(a);
		return rc;
	}
	p->actions = a;
	cdp__page_op_begin(p, OP_ACTIONS, timeout_ms, ud);
	p->cb.done = cb;
	/* the first step from the loop: the callback never fires inside this call */
	uv_timer_start(&p->poll_timer, on_start, 0, 0);
	return 0;
}
