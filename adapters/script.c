/*
 * script: an adapter whose extraction is a user's own JavaScript function, given in the
 * target:
 *
 *   "script": "(params) => ({ score: document.querySelector('#score').textContent })"
 *   "script_file": "match.js"        (instead: read by targets_load_file, relative to the
 *                                     targets file, and put into "script" beside it)
 *   "params": {...}                  (optional object, default {}: the function's argument)
 *   "wait_for": CSS, "classify": {"field": NAME, "live": [...], ...}   (as generic)
 *   "watch_root": CSS                (the subtree a pushed watch observes; default body)
 *   "links": {...}                   (discovery: adapters/links.h)
 *
 * The script is the source of a function (arrow, function or async), at most 1 MiB without
 * NUL bytes. It is passed to the page as data: the daemon calls it with cdp_page_call()
 * (Runtime.callFunctionOn, the source as its functionDeclaration and [params] as its
 * arguments), never spliced into cdpilot's own JavaScript. Its value must be a JSON object
 * of at most ADAPTER_VALUE_CAP bytes (the cdp layer checks, and reports exceptions with
 * their line); normalise() checks it is an object all the same, and it is the data.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/adapter_util.h"
#include "adapters/links.h"

#define SCRIPT_MAX (1024u * 1024)
#define SELECTOR_MAX 1024

typedef struct sstate {
	char *script; /* NULL when discovering */
	json_t *args; /* [params] */
	char *wait_for;
	char *watch_root;
	adapter_util_classify_t cls;
	adapter_links_t links;
} sstate_t;

static const char *const param_keys[] = { "script",   "script_file", "params", "wait_for",
	                                  "classify", "watch_root",  "links",  NULL };
/* keys of the extraction, not used by a discovering (listing) target */
static const char *const extract_keys[] = { "script",   "script_file", "params",
	                                    "classify", "watch_root",  NULL };

static void s_free(void *p)
{
	sstate_t *s = p;

	if (!s)
		return;
	free(s->script);
	json_decref(s->args);
	free(s->wait_for);
	free(s->watch_root);
	adapter_util_classify_release(&s->cls);
	adapter_links_release(&s->links);
	free(s);
}

/* "script" (or why there is none) into s->script. */
static int parse_script(const json_t *target, const char *where, sstate_t *s, errlist_t *errs)
{
	const json_t *v = json_object_get(target, "script");

	if (!v && json_object_get(target, "script_file")) {
		errlist_add(errs,
		            "%s: \"script_file\": read only from a targets file (relative to "
		            "its directory); here give the source in \"script\"",
		            where);
		return -EINVAL;
	}
	if (!v) {
		errlist_add(errs,
		            "%s: \"script\": required (the source of a function such as "
		            "\"(params) => ({...})\", or \"script_file\": a path relative to the "
		            "targets file)",
		            where);
		return -EINVAL;
	}
	return adapter_util_string(v, where, "script", SCRIPT_MAX, &s->script, errs);
}

/* "params" (an object, default {}) into s->args as [params]. */
static int parse_params(const json_t *target, const char *where, sstate_t *s, errlist_t *errs)
{
	const json_t *v = json_object_get(target, "params");
	char q[96];

	if (v && !json_is_object(v)) {
		errlist_add(errs,
		            "%s: \"params\": expected an object (the script's argument), got %s",
		            where, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	s->args = json_pack("[o]", v ? json_deep_copy(v) : json_object());
	return s->args ? 0 : -ENOMEM;
}

static int s_parse(const json_t *target, const char *where, void **state, errlist_t *errs)
{
	sstate_t *s = calloc(1, sizeof *s);
	const json_t *v;
	int rc = 0, r, discovering = 0;

	*state = NULL;
	if (!s)
		return -ENOMEM;
	s->links.parent_class = -1;
	/* every check runs, so that all errors are listed */
	rc = adapter_links_parse(target, where, extract_keys, &s->links, &discovering, errs);
	if (!discovering) {
		if ((r = parse_script(target, where, s, errs)) != 0 && rc != -ENOMEM)
			rc = r;
		if ((r = parse_params(target, where, s, errs)) != 0 && rc != -ENOMEM)
			rc = r;
	}
	if ((v = json_object_get(target, "wait_for")) && rc != -ENOMEM &&
	    (r = adapter_util_string(v, where, "wait_for", SELECTOR_MAX, &s->wait_for, errs)) != 0)
		rc = r;
	if ((v = json_object_get(target, "watch_root")) && !discovering && rc != -ENOMEM &&
	    (r = adapter_util_string(v, where, "watch_root", SELECTOR_MAX, &s->watch_root, errs)) !=
	            0)
		rc = r;
	if ((v = json_object_get(target, "classify")) && !discovering && rc != -ENOMEM &&
	    (r = adapter_util_classify_parse(v, where, NULL, &s->cls, errs)) != 0)
		rc = r;
	if (rc != 0) {
		s_free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static const char *s_wait_for(const void *state)
{
	const sstate_t *s = state;
	return s ? s->wait_for : NULL;
}

static const char *s_extract_fn(const void *state)
{
	const sstate_t *s = state;
	return s && s->script ? s->script : "() => ({})";
}

static const json_t *s_extract_args(const void *state)
{
	const sstate_t *s = state;
	return s ? s->args : NULL;
}

static json_t *s_normalise(const void *state, const json_t *raw, char *why, size_t whylen)
{
	char q[96];
	json_t *data;

	if (!json_is_object(raw)) {
		snprintf(why, whylen, "the script returned %s, expected a JSON object",
		         adapter_util_quote(raw, q, sizeof q));
		return NULL;
	}
	data = json_deep_copy(raw);
	if (!data)
		snprintf(why, whylen, "out of memory");
	return data;
}

static int s_classify(const void *state, const json_t *data)
{
	const sstate_t *s = state;
	return s ? adapter_util_classify_eval(&s->cls, data) : -1;
}

static const char *s_discover_js(const void *state)
{
	const sstate_t *s = state;
	return s ? s->links.js : NULL;
}

static json_t *s_discover(const void *state, const json_t *raw, const char *parent_id, char *why,
                          size_t whylen)
{
	const sstate_t *s = state;
	return adapter_links_discover(s ? &s->links : NULL, raw, parent_id, why, whylen);
}

static const char *s_watch_root(const void *state)
{
	const sstate_t *s = state;
	return s ? s->watch_root : NULL;
}

const adapter_t adapter_script = {
	.name = "script",
	.summary = "any page: a JavaScript function of the target's own, called in the page with "
	           "its params, returns the data",
	.needs_browser = 1,
	.param_keys = param_keys,
	.parse = s_parse,
	.free_state = s_free,
	.build_url = NULL,
	.wait_for = s_wait_for,
	.extract_js = NULL,
	.extract_fn = s_extract_fn,
	.extract_args = s_extract_args,
	.normalise = s_normalise,
	.classify = s_classify,
	.discover_js = s_discover_js,
	.discover = s_discover,
	.watch_root = s_watch_root,
};
