/*
 * cdp_page_eval: the operations that run script or read the page once it is loaded:
 * cdp_page_wait_for_state() (polls the selector's state through Runtime.evaluate on the
 * poll timer), cdp_page_evaluate() (Runtime.evaluate by value, awaiting promises) and
 * cdp_page_screenshot() (Page.captureScreenshot, base64-decoded).
 */
#include "cdp/cdp_page_priv.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_json.h"
#include "cdp/cdp_names.h"
#include "util/log.h"

/* The message of a Runtime exceptionDetails object. */
void cdp__page_exception_message(json_t *details, char *buf, size_t len)
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
int cdp__page_read_evaluate(json_t *result, json_t **value, json_t **owned, char *why, size_t len)
{
	json_t *ro = NULL, *details = NULL, *v;
	json_error_t err;

	*value = NULL;
	*owned = NULL;
	if (json_unpack_ex(result, &err, 0, "{s:o, s?o}", "result", &ro, "exceptionDetails",
	                   &details) != 0) {
		cdp__page_bad_reply(why, len, CDP_M_RUNTIME_EVALUATE, &err);
		return CDP_EBADREPLY;
	}
	if (details) {
		if (!json_is_object(details)) {
			snprintf(why, len,
			         "Runtime.evaluate reply: field \"exceptionDetails\" is not "
			         "an object");
			return CDP_EBADREPLY;
		}
		cdp__page_exception_message(details, why, len);
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

void cdp__page_finish_done(cdp_page_t *p, int status, const char *why)
{
	cdp_page_done_cb cb = p->cb.done;
	void *ud = p->ud;

	cdp__page_op_reset(p);
	free(p->wait_expr);
	p->wait_expr = NULL;
	cb(p, status, why ? why : "", ud);
}

void cdp__page_finish_eval(cdp_page_t *p, int status, json_t *value, const char *why)
{
	cdp_page_eval_cb cb = p->cb.eval;
	void *ud = p->ud;

	cdp__page_op_reset(p);
	cb(p, status, status ? NULL : value, why ? why : "", ud);
}

void cdp__page_finish_shot(cdp_page_t *p, int status, const unsigned char *png, size_t len,
                           const char *why)
{
	cdp_page_shot_cb cb = p->cb.shot;
	void *ud = p->ud;

	cdp__page_op_reset(p);
	cb(p, status, status ? NULL : png, status ? 0 : len, why ? why : "", ud);
}

/* ---- wait_for ---- */

static int wait_send(cdp_page_t *p)
{
	json_t *params = json_pack("{s:s, s:b}", "expression", p->wait_expr, "returnByValue", 1);

	if (!params)
		return -ENOMEM;
	return cdp__page_send(p, p->session_id, CDP_M_RUNTIME_EVALUATE, params, 0);
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
		cdp__page_finish_done(p, rc, why);
	}
}

void cdp__page_wait_reply(cdp_page_t *p, const cdp_reply_t *r)
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
		cdp__page_finish_done(p, r->status, why);
		return;
	}
	rc = cdp__page_read_evaluate(r->result, &value, &owned, why, sizeof why);
	json_decref(owned);
	if (rc != 0) {
		cdp__page_finish_done(p, rc, why);
		return;
	}
	if (json_is_true(value)) {
		cdp__page_finish_done(p, 0, "");
		return;
	}
	uv_timer_start(&p->poll_timer, on_poll_timer, PAGE_POLL_MS, 0);
}

/* The page-side tests of a wait, each a function of the selector (a JSON string literal,
 * appended in parentheses). Visible: as Playwright's, a box with a width and a height and
 * no visibility:hidden, for any of the matches. */
static const char wait_visible_js[] =
        "((s) => {\n"
        "  for (const e of document.querySelectorAll(s)) {\n"
        "    const r = e.getBoundingClientRect();\n"
        "    if (r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden')\n"
        "      return true;\n"
        "  }\n"
        "  return false;\n"
        "})";
static const char wait_attached_js[] = "((s) => !!document.querySelector(s))";

/* "FN(<css as a JSON string>)" in a new string; NULL for text that is not UTF-8 or no
 * memory (*rc says which). */
char *cdp__page_js_call1(const char *fn, const char *arg, int *rc)
{
	json_t *js = json_string(arg);
	char *quoted = NULL, *out = NULL;
	size_t n;

	*rc = -EINVAL; /* not UTF-8 */
	if (!js)
		return NULL;
	quoted = json_dumps(js, JSON_ENCODE_ANY);
	json_decref(js);
	*rc = -ENOMEM;
	if (!quoted)
		return NULL;
	n = strlen(fn) + strlen(quoted) + 3;
	out = malloc(n);
	if (out) {
		snprintf(out, n, "%s(%s)", fn, quoted);
		*rc = 0;
	}
	free(quoted);
	return out;
}

int cdp_page_wait_for(cdp_page_t *p, const char *css, uint32_t timeout_ms, cdp_page_done_cb cb,
                      void *ud)
{
	return cdp_page_wait_for_state(p, css, CDP_WAIT_VISIBLE, timeout_ms, cb, ud);
}

int cdp_page_wait_for_state(cdp_page_t *p, const char *css, cdp_wait_state_t state,
                            uint32_t timeout_ms, cdp_page_done_cb cb, void *ud)
{
	int rc = cdp__page_can_start(p);

	if (rc != 0)
		return rc;
	if (!css || !cb || (state != CDP_WAIT_VISIBLE && state != CDP_WAIT_ATTACHED))
		return -EINVAL;
	p->wait_expr = cdp__page_js_call1(
	        state == CDP_WAIT_VISIBLE ? wait_visible_js : wait_attached_js, css, &rc);
	if (!p->wait_expr)
		return rc;
	p->wait_visible = state == CDP_WAIT_VISIBLE;
	cdp__page_op_begin(p, OP_WAIT, timeout_ms, ud);
	p->cb.done = cb;
	rc = wait_send(p);
	if (rc != 0) {
		cdp__page_op_reset(p);
		free(p->wait_expr);
		p->wait_expr = NULL;
	}
	return rc;
}

/* ---- evaluate ---- */

void cdp__page_eval_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	json_t *value = NULL, *owned = NULL;
	char why[2048];
	int rc;

	if (r->status != 0) {
		snprintf(why, sizeof why, "Runtime.evaluate failed: %s", r->error_message);
		cdp__page_finish_eval(p, r->status, NULL, why);
		return;
	}
	rc = cdp__page_read_evaluate(r->result, &value, &owned, why, sizeof why);
	cdp__page_finish_eval(p, rc, rc ? NULL : value, rc ? why : "");
	json_decref(owned);
}

int cdp_page_evaluate(cdp_page_t *p, const char *expression, uint32_t timeout_ms,
                      cdp_page_eval_cb cb, void *ud)
{
	static const char head[] = "{\"expression\":";
	static const char tail[] = ",\"returnByValue\":true,\"awaitPromise\":true}";
	growbuf_t params;
	size_t len;
	int rc = cdp__page_can_start(p);

	if (rc != 0)
		return rc;
	if (!expression || !cb)
		return -EINVAL;
	len = strlen(expression);
	if (!cdp_json_utf8_valid(expression, len))
		return -EINVAL;
	/* written as text: the round trip's hot path builds no tree to free again */
	growbuf_init(&params, SIZE_MAX);
	if (growbuf_append(&params, head, sizeof head - 1) != 0 ||
	    cdp_json_write_string(&params, expression, len) != 0 ||
	    growbuf_append(&params, tail, sizeof tail - 1) != 0) {
		growbuf_release(&params);
		return -ENOMEM;
	}
	cdp__page_op_begin(p, OP_EVAL, timeout_ms, ud);
	p->cb.eval = cb;
	rc = cdp__page_send_text(p, p->session_id, CDP_M_RUNTIME_EVALUATE, params.data,
	                         params.len, 0);
	growbuf_release(&params);
	if (rc != 0)
		cdp__page_op_reset(p);
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
	return cdp__page_send(p, p->session_id, CDP_M_PAGE_CAPTURE_SCREENSHOT, params, 0);
}

void cdp__page_shot_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	const char *method =
	        p->step == 0 ? CDP_M_PAGE_GET_LAYOUT_METRICS : CDP_M_PAGE_CAPTURE_SCREENSHOT;
	json_error_t err;
	char why[512];
	int rc;

	if (r->status != 0) {
		snprintf(why, sizeof why, "%s failed: %s", method, r->error_message);
		cdp__page_finish_shot(p, r->status, NULL, 0, why);
		return;
	}
	if (p->step == 0) {
		double w = 0, h = 0;
		if (json_unpack_ex(r->result, &err, 0, "{s:{s:F, s:F}}", "cssContentSize", "width",
		                   &w, "height", &h) != 0 &&
		    json_unpack_ex(r->result, &err, 0, "{s:{s:F, s:F}}", "contentSize", "width", &w,
		                   "height", &h) != 0) {
			cdp__page_bad_reply(why, sizeof why, method, &err);
			cdp__page_finish_shot(p, CDP_EBADREPLY, NULL, 0, why);
			return;
		}
		if (w < 1 || h < 1) {
			snprintf(why, sizeof why, "%s: content size %gx%g is empty", method, w, h);
			cdp__page_finish_shot(p, CDP_EBADREPLY, NULL, 0, why);
			return;
		}
		p->clip_w = w;
		p->clip_h = h;
		rc = shot_send_capture(p);
		if (rc != 0) {
			snprintf(why, sizeof why, "cannot send Page.captureScreenshot: %s",
			         cdp_strerror(rc));
			cdp__page_finish_shot(p, rc, NULL, 0, why);
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
				cdp__page_bad_reply(why, sizeof why, method, &err);
			cdp__page_finish_shot(p, CDP_EBADREPLY, NULL, 0, why);
			return;
		}
		rc = b64_decode(json_string_value(data), json_string_length(data), &png, &len);
		if (rc != 0) {
			snprintf(why, sizeof why, "%s reply: field \"data\" is not valid base64",
			         method);
			cdp__page_finish_shot(p, rc == -ENOMEM ? rc : CDP_EBADREPLY, NULL, 0, why);
			return;
		}
		cdp__page_finish_shot(p, 0, png, len, "");
		free(png);
	}
}

int cdp_page_screenshot(cdp_page_t *p, int full_page, uint32_t timeout_ms, cdp_page_shot_cb cb,
                        void *ud)
{
	int rc = cdp__page_can_start(p);

	if (rc != 0)
		return rc;
	if (!cb)
		return -EINVAL;
	cdp__page_op_begin(p, OP_SHOT, timeout_ms, ud);
	p->cb.shot = cb;
	p->full_page = full_page != 0;
	if (p->full_page) {
		json_t *params = json_object();
		rc = params ? cdp__page_send(p, p->session_id, CDP_M_PAGE_GET_LAYOUT_METRICS,
		                             params, 0)
		            : -ENOMEM;
	} else {
		rc = shot_send_capture(p);
	}
	if (rc != 0)
		cdp__page_op_reset(p);
	return rc;
}
