/*
 * generic: an adapter for any page, configured in the target by CSS selectors.
 *
 *   "fields": {"score": {"selector": "#score", "regex": "(\\d+)", "type": "int"}, ...}
 *   "wait_for": "#score"                                         (optional)
 *   "classify": {"field": "status", "live": ["LIVE"], "completed": ["FT"]} (optional)
 *   "links": {"selector": "li.match", ...}   (with "discover": true: adapters/links.h;
 *                                             "fields" and "classify" are then not used)
 *
 * extract_js() is one self-contained expression built once in parse(): the field specs are
 * embedded as one JSON literal (JSON-encoded, ASCII only), never pasted as raw text, so a
 * selector or regex cannot break out of its string. Each field's raw value is a string,
 * null (the selector matched nothing), an array of them ("all"), or a marker object the
 * page code uses to report a problem: {"error": msg} (bad selector or regex),
 * {"nomatch": text} (the regex did not match), {"noattr": true} (no such attribute).
 * normalise() turns markers and bad numbers into a `why`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/adapter_util.h"
#include "adapters/links.h"

#define SELECTOR_MAX 1024
#define FIELDS_MAX 256

enum ftype { FT_STRING = 0, FT_INT, FT_FLOAT };
static const char *const ftype_names[] = { "string", "int", "float", NULL };

typedef struct gfield {
	const char *name; /* borrowed from gstate_t.names */
	char *selector;
	char *attr;  /* NULL: textContent, trimmed */
	char *regex; /* NULL: none */
	enum ftype type;
	int required;
	int all;
} gfield_t;

typedef struct gstate {
	gfield_t *f;
	size_t n;
	char *wait_for;
	char *js;
	char **names; /* NULL-terminated field names (owned), for classify */
	adapter_util_classify_t cls;
	adapter_links_t links; /* discovering: the rule (js NULL otherwise) */
} gstate_t;

static const char *const param_keys[] = { "fields", "wait_for", "classify", "links", NULL };
/* keys of the extraction, not used by a discovering (listing) target */
static const char *const extract_keys[] = { "fields", "classify", NULL };
static const char *const field_keys[] = { "selector", "attr", "regex", "type",
	                                  "required", "all",  NULL };
/* one field's spec, as the errors show it */
static const char field_hint[] = "{\"selector\": CSS, ...}";

static void g_free(void *p)
{
	gstate_t *s = p;

	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->names[i]);
		free(s->f[i].selector);
		free(s->f[i].attr);
		free(s->f[i].regex);
	}
	free(s->f);
	free(s->names);
	free(s->wait_for);
	free(s->js);
	adapter_util_classify_release(&s->cls);
	adapter_links_release(&s->links);
	free(s);
}

/* An adapter_util_field_fn: item is a gfield_t. */
static int parse_field(void *item, const char *name, const json_t *spec, const char *where,
                       errlist_t *errs)
{
	gfield_t *f = item;
	int type = 0; /* the default: the first of the type names */
	char path[192];
	const json_t *v;
	int rc = 0, r;

	f->name = name;
	f->required = 1;
	snprintf(path, sizeof path, "fields.%s.selector", name);
	v = json_object_get(spec, "selector");
	if (!v) {
		errlist_add(errs, "%s: \"%s\": required (a CSS selector)", where, path);
		rc = -EINVAL;
	} else if ((r = adapter_util_string(v, where, path, SELECTOR_MAX, &f->selector, errs)) != 0) {
		rc = r;
	}
	if ((v = json_object_get(spec, "attr"))) {
		snprintf(path, sizeof path, "fields.%s.attr", name);
		if ((r = adapter_util_string(v, where, path, 256, &f->attr, errs)) != 0)
			rc = r;
	}
	if ((v = json_object_get(spec, "regex"))) {
		snprintf(path, sizeof path, "fields.%s.regex", name);
		if ((r = adapter_util_string(v, where, path, SELECTOR_MAX, &f->regex, errs)) != 0)
			rc = r;
	}
	if (adapter_util_field_type_required(spec, name, ftype_names, where, &type, &f->required,
	                                     errs) != 0)
		rc = -EINVAL;
	f->type = (enum ftype)type;
	snprintf(path, sizeof path, "fields.%s.all", name);
	if ((v = json_object_get(spec, "all")) &&
	    adapter_util_bool(v, where, path, &f->all, errs) != 0)
		rc = -EINVAL;
	return rc;
}

/* Builds the extraction expression. The specs go in as one JSON literal. */
static int build_js(gstate_t *s)
{
	static const char body[] =
	        "(() => {\n"
	        "  const F = %s;\n"
	        "  const out = {};\n"
	        "  const put = (k, v) => Object.defineProperty(out, k,\n"
	        "    { value: v, enumerable: true, writable: true, configurable: true });\n"
	        "  const read = (el, a) => {\n"
	        "    if (a === null) return (el.textContent || '').trim();\n"
	        "    if (a === 'textContent' || a === 'innerText' || a === 'innerHTML' ||\n"
	        "        a === 'outerHTML' || a === 'value' || a === 'href' || a === 'src') {\n"
	        "      const p = el[a];\n"
	        "      if (p !== undefined && p !== null) return String(p).trim();\n"
	        "    }\n"
	        "    return el.getAttribute(a);\n"
	        "  };\n"
	        "  for (const f of F) {\n"
	        "    try {\n"
	        "      let re = null;\n"
	        "      if (f.r !== null) {\n"
	        "        try { re = new RegExp(f.r); }\n"
	        "        catch (e) { put(f.n, { error: 'invalid regex: ' +\n"
	        "          String(e && e.message || e) }); continue; }\n"
	        "      }\n"
	        "      const pick = (el) => {\n"
	        "        const v = read(el, f.a);\n"
	        "        if (v === null || v === undefined) return { noattr: true };\n"
	        "        if (re === null) return v;\n"
	        "        const m = re.exec(v);\n"
	        "        if (!m) return { nomatch: v.slice(0, 200) };\n"
	        "        return m.length > 1 ? (m[1] === undefined ? '' : m[1]) : m[0];\n"
	        "      };\n"
	        "      if (f.l) {\n"
	        "        put(f.n, Array.from(document.querySelectorAll(f.s), pick));\n"
	        "      } else {\n"
	        "        const el = document.querySelector(f.s);\n"
	        "        put(f.n, el ? pick(el) : null);\n"
	        "      }\n"
	        "    } catch (e) {\n"
	        "      put(f.n, { error: String(e && e.message || e) });\n"
	        "    }\n"
	        "  }\n"
	        "  return out;\n"
	        "})()";
	json_t *specs = json_array();
	char *enc = NULL;
	size_t len;
	int rc = -ENOMEM;

	if (!specs)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		const gfield_t *f = &s->f[i];
		json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:b}", "n", f->name, "s", f->selector,
		                      "a", f->attr, "r", f->regex, "l", f->all);
		if (!o || json_array_append_new(specs, o) != 0)
			goto out;
	}
	/* ASCII only (no raw U+2028/2029) and "/" escaped: the literal reads the same in any
	 * context the expression might be pasted into */
	enc = json_dumps(specs, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH);
	if (!enc)
		goto out;
	len = sizeof body + strlen(enc);
	s->js = malloc(len);
	if (!s->js)
		goto out;
	snprintf(s->js, len, body, enc);
	rc = 0;
out:
	free(enc);
	json_decref(specs);
	return rc;
}

static int g_parse(const json_t *target, const char *where, void **state, errlist_t *errs)
{
	const json_t *fields = json_object_get(target, "fields"), *v;
	gstate_t *s = NULL;
	int rc = 0, r, discovering = 0;

	*state = NULL;
	s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	rc = adapter_links_parse(target, where, extract_keys, &s->links, &discovering, errs);
	if (rc == -ENOMEM)
		goto out;
	if (!discovering &&
	    (r = adapter_util_fields_check(fields, FIELDS_MAX, field_hint, where, errs)) != 0)
		rc = r;
	/* without the fields, wait_for is still checked, so that all errors are listed */
	if (rc == 0 && !discovering) {
		void *items = NULL;
		rc = adapter_util_fields_walk(fields, field_hint, field_keys, sizeof *s->f, &items,
		                              parse_field, where, &s->names, &s->n, errs);
		s->f = items;
		if (rc == -ENOMEM)
			goto out;
	}
	if ((v = json_object_get(target, "wait_for"))) {
		if ((r = adapter_util_string(v, where, "wait_for", SELECTOR_MAX, &s->wait_for, errs)) !=
		            0 &&
		    rc != -ENOMEM)
			rc = r;
	}
	if ((v = json_object_get(target, "classify")) && s->names) {
		r = adapter_util_classify_parse(v, where, (const char *const *)s->names, &s->cls,
		                                errs);
		if (r != 0 && rc != -ENOMEM)
			rc = r;
	}
	if (rc != 0 || discovering)
		goto out;
	rc = build_js(s);
out:
	if (rc != 0) {
		g_free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static const char *g_wait_for(const void *state)
{
	const gstate_t *s = state;
	return s ? s->wait_for : NULL;
}

static const char *g_extract_js(const void *state)
{
	const gstate_t *s = state;
	return s && s->js ? s->js : "null";
}

/* One raw string -> its typed value (new reference), or NULL with why. */
static json_t *convert(const gfield_t *f, const char *text, const char *label, char *why,
                       size_t whylen)
{
	json_int_t i;
	double d;
	json_t *v = NULL;
	char q[96];

	switch (f->type) {
	case FT_STRING:
		v = json_string(text);
		if (!v)
			snprintf(why, whylen, "%s: out of memory (or not UTF-8)", label);
		return v;
	case FT_INT:
		if (adapter_util_parse_int(text, &i) == 0)
			return json_integer(i);
		break;
	case FT_FLOAT:
		if (adapter_util_parse_float(text, &d) == 0)
			return json_real(d);
		break;
	}
	{
		json_t *t = json_string(text);
		snprintf(why, whylen, "%s: expected %s, got %s", label, ftype_names[f->type],
		         adapter_util_quote(t, q, sizeof q));
		json_decref(t);
	}
	return NULL;
}

/* A marker object from the page code -> why; returns 1 if raw was a marker. */
static int marker_why(const gfield_t *f, const json_t *raw, const char *label, char *why,
                      size_t whylen)
{
	char q[96];

	if (!json_is_object(raw))
		return 0;
	if (json_is_string(json_object_get(raw, "error")))
		snprintf(why, whylen, "%s: %s", label,
		         json_string_value(json_object_get(raw, "error")));
	else if (json_object_get(raw, "nomatch"))
		snprintf(why, whylen, "%s: regex \"%s\" did not match %s", label, f->regex,
		         adapter_util_quote(json_object_get(raw, "nomatch"), q, sizeof q));
	else if (json_object_get(raw, "noattr"))
		snprintf(why, whylen,
		         "%s: selector \"%s\" matched an element without attribute "
		         "\"%s\"",
		         label, f->selector, f->attr ? f->attr : "");
	else
		snprintf(why, whylen, "%s: unexpected value %s from the page", label,
		         adapter_util_quote(raw, q, sizeof q));
	return 1;
}

static json_t *normalise_field(const gfield_t *f, const json_t *raw, char *why, size_t whylen)
{
	char label[160], q[96];

	snprintf(label, sizeof label, "field \"%s\"", f->name);
	if (!raw || json_is_null(raw)) {
		if (f->required) {
			snprintf(why, whylen, "%s: selector \"%s\" matched nothing", label,
			         f->selector);
			return NULL;
		}
		return f->all ? json_array() : json_null();
	}
	if (f->all) {
		json_t *arr;
		size_t i;
		const json_t *el;
		if (!json_is_array(raw)) {
			if (marker_why(f, raw, label, why, whylen))
				return NULL;
			snprintf(why, whylen, "%s: expected an array from the page, got %s", label,
			         adapter_util_quote(raw, q, sizeof q));
			return NULL;
		}
		if (json_array_size(raw) == 0 && f->required) {
			snprintf(why, whylen, "%s: selector \"%s\" matched nothing", label,
			         f->selector);
			return NULL;
		}
		arr = json_array();
		if (!arr)
			goto nomem;
		json_array_foreach((json_t *)raw, i, el)
		{
			char elabel[180];
			json_t *cv;
			snprintf(elabel, sizeof elabel, "field \"%s\"[%zu]", f->name, i);
			if (json_is_object(el) &&
			    (json_object_get(el, "nomatch") || json_object_get(el, "noattr")))
				continue; /* elements the regex or attribute does not apply to */
			if (!json_is_string(el)) {
				if (!marker_why(f, el, elabel, why, whylen))
					snprintf(why, whylen,
					         "%s: unexpected value %s from the page", elabel,
					         adapter_util_quote(el, q, sizeof q));
				json_decref(arr);
				return NULL;
			}
			cv = convert(f, json_string_value(el), elabel, why, whylen);
			if (!cv || json_array_append_new(arr, cv) != 0) {
				json_decref(arr);
				return NULL;
			}
		}
		if (json_array_size(arr) == 0 && f->required) {
			snprintf(why, whylen,
			         "%s: selector \"%s\" matched, but no element passed the %s", label,
			         f->selector, f->regex ? "regex" : "attribute");
			json_decref(arr);
			return NULL;
		}
		return arr;
	}
	if (json_is_string(raw))
		return convert(f, json_string_value(raw), label, why, whylen);
	if (json_is_object(raw) && !json_object_get(raw, "error") && !f->required)
		return json_null(); /* optional: no attribute, or the regex did not match */
	if (!marker_why(f, raw, label, why, whylen))
		snprintf(why, whylen, "%s: unexpected value %s from the page", label,
		         adapter_util_quote(raw, q, sizeof q));
	return NULL;
nomem:
	snprintf(why, whylen, "%s: out of memory", label);
	return NULL;
}

static json_t *g_normalise(const void *state, const json_t *raw, char *why, size_t whylen)
{
	const gstate_t *s = state;
	json_t *data;
	char q[96];

	if (!s) {
		snprintf(why, whylen, "the generic adapter has no parameters");
		return NULL;
	}
	if (!json_is_object(raw)) {
		snprintf(why, whylen, "expected an object of fields from the page, got %s",
		         adapter_util_quote(raw, q, sizeof q));
		return NULL;
	}
	data = json_object();
	if (!data) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < s->n; i++) {
		json_t *v =
		        normalise_field(&s->f[i], json_object_get(raw, s->f[i].name), why, whylen);
		if (!v || json_object_set_new(data, s->f[i].name, v) != 0) {
			json_decref(data);
			return NULL;
		}
	}
	return data;
}

static int g_classify(const void *state, const json_t *data)
{
	const gstate_t *s = state;
	return s ? adapter_util_classify_eval(&s->cls, data) : -1;
}

static const char *g_discover_js(const void *state)
{
	const gstate_t *s = state;
	return s ? s->links.js : NULL;
}

static json_t *g_discover(const void *state, const json_t *raw, const char *parent_id, char *why,
                          size_t whylen)
{
	const gstate_t *s = state;
	return adapter_links_discover(s ? &s->links : NULL, raw, parent_id, why, whylen);
}

const adapter_t adapter_generic = {
	.name = "generic",
	.summary = "any page: fields read by CSS selector (text or attribute, optional regex, "
	           "string/int/float)",
	.needs_browser = 1,
	.param_keys = param_keys,
	.parse = g_parse,
	.free_state = g_free,
	.build_url = NULL,
	.wait_for = g_wait_for,
	.extract_js = g_extract_js,
	.normalise = g_normalise,
	.classify = g_classify,
	.discover_js = g_discover_js,
	.discover = g_discover,
	.watch_root = NULL,
};
