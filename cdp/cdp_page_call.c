/*
 * cdp_page_call: cdp_page_call(), calling a function given as source in the page. Four
 * commands, one after the other, all in one object group of the page:
 *   1. Runtime.evaluate("globalThis"), by reference: something to call the function on;
 *   2. Runtime.callFunctionOn with the user's source exactly as given, the arguments as
 *      data, by reference and awaited: the value stays in the page;
 *   3. Runtime.callFunctionOn of our own fixed checker on that value, by value: is it an
 *      object, how many bytes is its JSON text, and the text itself if it is under the cap
 *      (so nothing over the cap ever crosses the connection);
 *   4. Runtime.releaseObjectGroup, then the callback with the outcome kept from 2 or 3.
 * An operation that ends early (timeout, close, crash) releases the group without waiting.
 * The group's name is the same for every call of a page, so a value whose promise settles
 * after its call timed out (Chrome puts it in the group then) goes with the next release.
 */
#include "cdp/cdp_page_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_names.h"
#include "util/log.h"

#define CALL_GROUP "cdpilot.call"

enum call_step { CALL_GLOBAL = 0, CALL_FN, CALL_CHECK, CALL_RELEASE };

/* Our checker, called on the user's value (this) with the cap: {kind} for what is not a
 * JSON object, {error} when JSON.stringify throws, {bytes} over the cap, else {bytes, json}. */
static const char call_checker_js[] =
        "function (cap) {\n"
        "  let s;\n"
        "  try { s = JSON.stringify(this); }\n"
        "  catch (e) { return { error: String(e && e.message !== undefined ? e.message : e) }; }\n"
        "  if (s === undefined) return { kind: 'undefined' };\n"
        "  if (s[0] !== '{') {\n"
        "    const v = JSON.parse(s);\n"
        "    return { kind: v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v };\n"
        "  }\n"
        "  const bytes = new TextEncoder().encode(s).length;\n"
        "  return bytes > cap ? { bytes } : { bytes, json: s };\n"
        "}";

static void release_ignored(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	if (r->status != 0 && r->status != -ECANCELED && r->status != CDP_ECONNLOST)
		log_debug("page", "Runtime.releaseObjectGroup failed: %s", r->error_message);
}

void cdp__page_call_state_free(cdp_page_t *p)
{
	free(p->call.src);
	p->call.src = NULL;
	json_decref(p->call.args);
	p->call.args = NULL;
	free(p->call.this_id);
	p->call.this_id = NULL;
	json_decref(p->call.value);
	p->call.value = NULL;
}

void cdp__page_finish_call(cdp_page_t *p, int status, const char *why)
{
	cdp_page_eval_cb cb = p->cb.eval;
	void *ud = p->ud;
	json_t *value = p->call.value;
	char msg[sizeof p->call.why];

	snprintf(msg, sizeof msg, "%s", why ? why : "");
	p->call.value = NULL;
	cdp__page_op_reset(p); /* cancels the command in flight */
	if (p->call.grouped && !p->crashed && cdp_conn_is_open(p->conn))
		cdp_conn_send(p->conn, p->session_id, CDP_M_RUNTIME_RELEASE_OBJECT_GROUP,
		              json_pack("{s:s}", "objectGroup", CALL_GROUP),
		              PAGE_DISPOSE_TIMEOUT_MS, release_ignored, NULL, NULL);
	p->call.grouped = 0;
	cdp__page_call_state_free(p);
	cb(p, status, status ? NULL : value, msg, ud);
	json_decref(value);
}

/* Keeps the outcome and releases the group; the callback comes with the release's reply. */
static void call_conclude(cdp_page_t *p, int status, json_t *value, const char *why)
{
	int rc;

	p->call.status = status;
	json_decref(p->call.value);
	p->call.value = value; /* stolen */
	snprintf(p->call.why, sizeof p->call.why, "%s", why ? why : "");
	p->step = CALL_RELEASE;
	rc = cdp__page_send(p, p->session_id, CDP_M_RUNTIME_RELEASE_OBJECT_GROUP,
	                    json_pack("{s:s}", "objectGroup", CALL_GROUP), 0);
	if (rc == 0) {
		p->call.grouped = 0; /* the release is on its way */
		return;
	}
	cdp__page_finish_call(p, status, p->call.why); /* releases without waiting */
}

/* The line an exception names in the user's source (1-based), or 0: where the page says
 * it was thrown when that is the function's own script (no url), else the first frame of
 * the stack in an unnamed script (the function, called from a page script). */
static long exception_line(json_t *details, const char *desc)
{
	json_t *script = json_object_get(details, "scriptId");
	json_t *url = json_object_get(details, "url");
	json_t *line = json_object_get(details, "lineNumber");
	const char *at;

	if (json_is_string(script) && (!json_is_string(url) || !*json_string_value(url)) &&
	    json_is_integer(line))
		return (long)json_integer_value(line) + 1;
	at = desc ? strstr(desc, "<anonymous>:") : NULL;
	if (at) {
		char *end = NULL;
		long n = strtol(at + strlen("<anonymous>:"), &end, 10);
		if (end && *end == ':' && n > 0)
			return n;
	}
	return 0;
}

/* "<message> (line N)": the first line of the exception's description, or Chrome's text
 * and the thrown value. */
static void call_exception(json_t *details, char *why, size_t len)
{
	json_t *desc = json_object_get(json_object_get(details, "exception"), "description");
	const char *d = json_is_string(desc) ? json_string_value(desc) : NULL;
	char msg[1536];
	long line;

	if (d)
		snprintf(msg, sizeof msg, "%.*s", (int)strcspn(d, "\n"), d);
	else
		cdp__page_exception_message(details, msg, sizeof msg);
	line = exception_line(details, d);
	if (line > 0)
		snprintf(why, len, "%s (line %ld)", msg, line);
	else
		snprintf(why, len, "%s", msg);
}

/* "a number", "an array", "null", ... for CDP's type and subtype of a value. */
static const char *kind_phrase(const char *kind)
{
	static const struct {
		const char *kind, *phrase;
	} k[] = {
		{ "number", "a number" },     { "string", "a string" }, { "boolean", "a boolean" },
		{ "undefined", "undefined" }, { "null", "null" },       { "array", "an array" },
		{ "function", "a function" }, { "symbol", "a symbol" }, { "bigint", "a BigInt" },
		{ "object", "an object" },
	};
	for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
		if (strcmp(k[i].kind, kind) == 0)
			return k[i].phrase;
	return kind;
}

static int send_check(cdp_page_t *p, const char *object_id)
{
	json_t *params =
	        json_pack("{s:s, s:s, s:[{s:I}], s:b, s:s}", "functionDeclaration", call_checker_js,
	                  "objectId", object_id, "arguments", "value", (json_int_t)p->call.cap,
	                  "returnByValue", 1, "objectGroup", CALL_GROUP);

	if (!params)
		return -ENOMEM;
	p->step = CALL_CHECK;
	return cdp__page_send(p, p->session_id, CDP_M_RUNTIME_CALL_FUNCTION_ON, params, 0);
}

static int send_function(cdp_page_t *p)
{
	json_t *params =
	        json_pack("{s:s, s:s, s:O, s:b, s:b, s:s}", "functionDeclaration", p->call.src,
	                  "objectId", p->call.this_id, "arguments", p->call.args, "returnByValue",
	                  0, "awaitPromise", 1, "objectGroup", CALL_GROUP);

	if (!params)
		return -ENOMEM;
	p->step = CALL_FN;
	return cdp__page_send(p, p->session_id, CDP_M_RUNTIME_CALL_FUNCTION_ON, params, 0);
}

/* The reply of step 2: an exception, a value that is no object, or an object to check. */
static void on_function(cdp_page_t *p, json_t *result)
{
	json_t *ro = json_object_get(result, "result");
	json_t *details = json_object_get(result, "exceptionDetails");
	const char *type = NULL, *subtype = NULL, *oid = NULL;
	char why[2048];
	int rc;

	if (json_is_object(details)) {
		call_exception(details, why, sizeof why);
		call_conclude(p, CDP_EEXCEPTION, NULL, why);
		return;
	}
	if (json_unpack(ro, "{s:s, s?s, s?s}", "type", &type, "subtype", &subtype, "objectId",
	                &oid) != 0) {
		call_conclude(p, CDP_EBADREPLY, NULL,
		              "Runtime.callFunctionOn reply has no result of the expected shape");
		return;
	}
	if (strcmp(type, "object") != 0 || (subtype && strcmp(subtype, "null") == 0) ||
	    (subtype && strcmp(subtype, "array") == 0) || !oid) {
		snprintf(why, sizeof why, "returned %s, expected a JSON object",
		         kind_phrase(strcmp(type, "object") == 0 && subtype ? subtype : type));
		call_conclude(p, CDP_EVALUE, NULL, why);
		return;
	}
	rc = send_check(p, oid);
	if (rc != 0) {
		snprintf(why, sizeof why, "cannot send the value check: %s", cdp_strerror(rc));
		call_conclude(p, rc, NULL, why);
	}
}

/* The reply of step 3: the checker's verdict. */
static void on_check(cdp_page_t *p, json_t *result)
{
	json_t *v = json_object_get(json_object_get(result, "result"), "value");
	const char *kind = NULL, *error = NULL, *text = NULL;
	json_int_t bytes = -1;
	json_t *value;
	json_error_t err;
	char why[2048];

	if (json_object_get(result, "exceptionDetails") ||
	    json_unpack(v, "{s?s, s?s, s?I, s?s}", "kind", &kind, "error", &error, "bytes", &bytes,
	                "json", &text) != 0) {
		call_conclude(p, CDP_EBADREPLY, NULL, "the value check gave no verdict");
		return;
	}
	if (kind) {
		snprintf(why, sizeof why, "returned %s as JSON, expected a JSON object",
		         kind_phrase(kind));
		call_conclude(p, CDP_EVALUE, NULL, why);
	} else if (error) {
		snprintf(why, sizeof why, "returned a value JSON cannot hold: %s", error);
		call_conclude(p, CDP_EVALUE, NULL, why);
	} else if (!text) {
		snprintf(why, sizeof why, "returned %lld bytes of JSON, over the cap of %zu",
		         (long long)bytes, p->call.cap);
		call_conclude(p, CDP_EVALUE, NULL, why);
	} else if (!(value = json_loads(text, JSON_DECODE_ANY, &err)) || !json_is_object(value)) {
		json_decref(value);
		snprintf(why, sizeof why, "returned a value JSON cannot hold: %s", err.text);
		call_conclude(p, CDP_EVALUE, NULL, why);
	} else {
		call_conclude(p, 0, value, "");
	}
}

void cdp__page_call_reply(cdp_page_t *p, const cdp_reply_t *r)
{
	const char *this_id = NULL;
	char why[2048];
	int rc;

	if (p->step == CALL_RELEASE) {
		if (r->status != 0)
			log_debug("page", "Runtime.releaseObjectGroup failed: %s",
			          r->error_message);
		cdp__page_finish_call(p, p->call.status, p->call.why);
		return;
	}
	if (r->status != 0) {
		snprintf(why, sizeof why, "%s failed: %s",
		         p->step == CALL_GLOBAL ? CDP_M_RUNTIME_EVALUATE
		                                : CDP_M_RUNTIME_CALL_FUNCTION_ON,
		         r->error_message);
		call_conclude(p, r->status, NULL, why);
		return;
	}
	switch (p->step) {
	case CALL_GLOBAL:
		if (json_unpack(r->result, "{s:{s:s}}", "result", "objectId", &this_id) != 0) {
			call_conclude(p, CDP_EBADREPLY, NULL, "globalThis has no object id");
			return;
		}
		cdp__page_set_str(&p->call.this_id, this_id);
		rc = p->call.this_id ? send_function(p) : -ENOMEM;
		if (rc != 0) {
			snprintf(why, sizeof why, "cannot send the function: %s", cdp_strerror(rc));
			call_conclude(p, rc, NULL, why);
		}
		return;
	case CALL_FN: on_function(p, r->result); return;
	case CALL_CHECK: on_check(p, r->result); return;
	default: return;
	}
}

/* [{value: a}, ...] for the JSON array args (NULL: []). */
static json_t *call_arguments(const json_t *args)
{
	json_t *out = json_array();
	size_t i;
	json_t *a;

	if (!out)
		return NULL;
	json_array_foreach(args, i, a)
	{
		if (json_array_append_new(out, json_pack("{s:O}", "value", a)) != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

int cdp_page_call(cdp_page_t *p, const char *function_source, const json_t *args, size_t value_cap,
                  uint32_t timeout_ms, cdp_page_eval_cb cb, void *ud)
{
	json_t *params = NULL, *probe = NULL;
	int rc = cdp__page_can_start(p);

	if (rc != 0)
		return rc;
	if (!function_source || !cb || (args && !json_is_array(args)))
		return -EINVAL;
	probe = json_string(function_source);
	if (!probe)
		return -EINVAL; /* not UTF-8 */
	json_decref(probe);
	p->call.src = strdup(function_source);
	p->call.args = call_arguments(args);
	params = json_pack("{s:s, s:b, s:s}", "expression", "globalThis", "returnByValue", 0,
	                   "objectGroup", CALL_GROUP);
	if (!p->call.src || !p->call.args || !params) {
		json_decref(params);
		cdp__page_call_state_free(p);
		return -ENOMEM;
	}
	p->call.cap = value_cap ? value_cap : CDP_CALL_VALUE_CAP_DEFAULT;
	p->call.status = 0;
	p->call.why[0] = '\0';
	cdp__page_op_begin(p, OP_CALL, timeout_ms, ud);
	p->cb.eval = cb;
	p->step = CALL_GLOBAL;
	p->call.grouped = 1;
	rc = cdp__page_send(p, p->session_id, CDP_M_RUNTIME_EVALUATE, params, 0);
	if (rc != 0) {
		p->call.grouped = 0;
		cdp__page_op_reset(p);
		cdp__page_call_state_free(p);
	}
	return rc;
}
