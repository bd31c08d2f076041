/*
 * links: the "links" discovery rule (links.h): its validation, the page expression built
 * from it, and the children built from the expression's value.
 */
#include "adapters/links.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter_util.h"
#include "util/sched_class.h"

#define CSS_MAX 1024
#define REGEX_MAX 1024
#define ATTR_MAX 256

static const char *const links_keys[] = { "selector", "id", "class", NULL };
static const char *const class_keys[] = {
	"attr", "selector", "live", "imminent", "completed", NULL
};

void adapter_links_release(adapter_links_t *l)
{
	if (!l)
		return;
	free(l->js);
	for (int i = 0; i < SCHED_NCLASSES; i++)
		json_decref(l->classes[i]);
	memset(l, 0, sizeof *l);
	l->parent_class = -1;
}

uint64_t adapter_links_fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

void adapter_links_hash(const char *url, char out[11])
{
	snprintf(out, 11, "%010llx",
	         (unsigned long long)(adapter_links_fnv1a(url) >> 24)); /* the top 40 bits */
}

/* A light check of a JS regex in C: ( ) and [ ] balanced outside escapes and classes. The
 * page's engine has the last word (a refused regex is a discovery error). */
static int regex_plausible(const char *re)
{
	int depth = 0, in_class = 0;

	for (const char *p = re; *p; p++) {
		if (*p == '\\') {
			if (!p[1])
				return 0;
			p++;
		} else if (in_class) {
			in_class = *p != ']';
		} else if (*p == '[') {
			in_class = 1;
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')' && --depth < 0) {
			return 0;
		}
	}
	return depth == 0 && !in_class;
}

/* A copy of s without surrounding ASCII white space, lower-cased (ASCII). */
static char *fold(const char *s)
{
	size_t n;
	char *out;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	out = strndup(s, n);
	for (size_t i = 0; out && i < n; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	return out;
}

/* One class list: an array of strings, kept folded. */
static int class_list(const json_t *list, const char *where, const char *name, json_t **out,
                      errlist_t *errs)
{
	const json_t *v;
	size_t i;
	char q[96];

	if (!json_is_array(list)) {
		errlist_add(errs, "%s: \"links.class.%s\": expected an array of strings, got %s",
		            where, name, adapter_util_quote(list, q, sizeof q));
		return -EINVAL;
	}
	*out = json_array();
	if (!*out)
		return -ENOMEM;
	json_array_foreach(list, i, v)
	{
		char *f;
		if (!json_is_string(v)) {
			errlist_add(errs, "%s: \"links.class.%s[%zu]\": expected a string, got %s",
			            where, name, i, adapter_util_quote(v, q, sizeof q));
			return -EINVAL;
		}
		f = fold(json_string_value(v));
		if (!f || json_array_append_new(*out, json_string(f)) != 0) {
			free(f);
			return -ENOMEM;
		}
		free(f);
	}
	return 0;
}

/* "links.class": where the class is read (attr or selector) and its lists. */
static int parse_class(const json_t *c, const char *where, adapter_links_t *out, char **attr,
                       char **sel, errlist_t *errs)
{
	const json_t *a = json_object_get(c, "attr"), *s = json_object_get(c, "selector");
	char q[96];
	int rc, r, lists = 0;

	if (!json_is_object(c)) {
		errlist_add(errs,
		            "%s: \"links.class\": expected an object {\"attr\": NAME or "
		            "\"selector\": CSS, \"live\": [...], ...}, got %s",
		            where, adapter_util_quote(c, q, sizeof q));
		return -EINVAL;
	}
	rc = adapter_util_unknown_keys(c, class_keys, where, "links.class", errs);
	if (a && s) {
		errlist_add(errs, "%s: \"links.class\": give \"attr\" or \"selector\", not both",
		            where);
		rc = -EINVAL;
	} else if (!a && !s) {
		errlist_add(errs,
		            "%s: \"links.class\": required: \"attr\" (an attribute of the "
		            "element) or \"selector\" (an element inside it, its text)",
		            where);
		rc = -EINVAL;
	} else if (a && (r = adapter_util_string(a, where, "links.class.attr", ATTR_MAX, attr,
	                                         errs)) != 0) {
		rc = r;
	} else if (s && (r = adapter_util_string(s, where, "links.class.selector", CSS_MAX, sel,
	                                         errs)) != 0) {
		rc = r;
	}
	for (int k = 0; k < SCHED_NCLASSES && rc != -ENOMEM; k++) {
		const char *name = sched_class_name((enum sched_class)k);
		const json_t *list = json_object_get(c, name);
		if (!list)
			continue;
		lists++;
		if ((r = class_list(list, where, name, &out->classes[k], errs)) != 0)
			rc = r;
	}
	if (lists == 0 && rc != -ENOMEM) {
		errlist_add(errs,
		            "%s: \"links.class\": expected at least one of \"live\", "
		            "\"imminent\", \"completed\"",
		            where);
		rc = -EINVAL;
	}
	return rc;
}

/* The page expression, with the rule as one JSON literal. */
static int build_js(adapter_links_t *out, const char *sel, const char *re, const char *attr,
                    const char *csel)
{
	static const char body[] =
	        "(() => {\n"
	        "  const L = %s;\n"
	        "  const msg = (e) => String(e && e.message || e);\n"
	        "  let re = null, els;\n"
	        "  if (L.r !== null) {\n"
	        "    try { re = new RegExp(L.r); }\n"
	        "    catch (e) { return { error: 'links.id: invalid regex: ' + msg(e) }; }\n"
	        "  }\n"
	        "  try { els = document.querySelectorAll(L.s); }\n"
	        "  catch (e) { return { error: 'links.selector: ' + msg(e) }; }\n"
	        "  const out = [];\n"
	        "  for (const el of els) {\n"
	        "    if (out.length >= L.max) break;\n"
	        "    let h = el.getAttribute('href');\n"
	        "    if (h === null) {\n"
	        "      const a = el.querySelector('a[href]');\n"
	        "      h = a ? a.getAttribute('href') : null;\n"
	        "    }\n"
	        "    if (h === null) continue;\n"
	        "    let url;\n"
	        "    try { url = new URL(h, document.baseURI).href; } catch (e) { continue; }\n"
	        "    let id = null, k = null;\n"
	        "    if (re !== null) {\n"
	        "      const m = re.exec(url);\n"
	        "      if (!m) continue;\n"
	        "      id = m.length > 1 ? (m[1] === undefined ? null : m[1]) : m[0];\n"
	        "    }\n"
	        "    try {\n"
	        "      if (L.ca !== null) k = el.getAttribute(L.ca);\n"
	        "      else if (L.cs !== null) {\n"
	        "        const c = el.querySelector(L.cs);\n"
	        "        k = c ? (c.textContent || '') : null;\n"
	        "      }\n"
	        "    } catch (e) { return { error: 'links.class.selector: ' + msg(e) }; }\n"
	        "    out.push({ url: url, id_part: id, class_text: k });\n"
	        "  }\n"
	        "  return out;\n"
	        "})()";
	json_t *spec = json_pack("{s:s, s:s?, s:s?, s:s?, s:i}", "s", sel, "r", re, "ca", attr,
	                         "cs", csel, "max", ADAPTER_LINKS_MAX);
	char *enc = NULL;
	size_t len;
	int rc = -ENOMEM;

	if (!spec)
		return -ENOMEM;
	/* "s?" leaves a NULL out; the page code wants null */
	if ((!re && json_object_set_new(spec, "r", json_null()) != 0) ||
	    (!attr && json_object_set_new(spec, "ca", json_null()) != 0) ||
	    (!csel && json_object_set_new(spec, "cs", json_null()) != 0))
		goto out;
	enc = json_dumps(spec, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH);
	if (!enc)
		goto out;
	len = sizeof body + strlen(enc);
	out->js = malloc(len);
	if (!out->js)
		goto out;
	snprintf(out->js, len, body, enc);
	rc = 0;
out:
	free(enc);
	json_decref(spec);
	return rc;
}

/* "discover" and "children" as the links rule needs them; extraction keys not used. */
static int check_discover_keys(const json_t *target, const char *where, const char *const *not_used,
                               int discovering, errlist_t *errs)
{
	const json_t *children = json_object_get(target, "children");
	int rc = 0;

	if (!discovering) {
		if (json_object_get(target, "links")) {
			errlist_add(errs, "%s: \"links\": only with \"discover\": true", where);
			rc = -EINVAL;
		}
		return rc;
	}
	if (!json_object_get(target, "links")) {
		errlist_add(errs,
		            "%s: \"discover\": needs \"links\" ({\"selector\": CSS, ...}: which "
		            "elements of the listing are the children)",
		            where);
		rc = -EINVAL;
	}
	for (size_t i = 0; not_used && not_used[i]; i++) {
		if (!json_object_get(target, not_used[i]))
			continue;
		errlist_add(errs,
		            "%s: \"%s\": not used with \"discover\": true (the listing is only "
		            "read for its links); give it in \"children\"",
		            where, not_used[i]);
		rc = -EINVAL;
	}
	if (json_is_object(children) && !json_object_get(children, "adapter")) {
		errlist_add(errs,
		            "%s: \"children\": must name the children's \"adapter\" (each "
		            "discovered target is {\"id\", \"url\", \"class\"} plus \"children\")",
		            where);
		rc = -EINVAL;
	} else if (!children) {
		errlist_add(errs,
		            "%s: \"children\": required with \"links\" (the rest of each "
		            "discovered target's spec, e.g. {\"adapter\": \"generic\", "
		            "\"fields\": {...}})",
		            where);
		rc = -EINVAL;
	}
	return rc;
}

int adapter_links_parse(const json_t *target, const char *where, const char *const *not_used,
                        adapter_links_t *out, int *discovering, errlist_t *errs)
{
	const json_t *links = json_object_get(target, "links"), *v;
	char *sel = NULL, *re = NULL, *attr = NULL, *csel = NULL, q[96];
	int rc, r;

	memset(out, 0, sizeof *out);
	out->parent_class = sched_class_parse(json_string_value(json_object_get(target, "class")));
	*discovering = json_is_true(json_object_get(target, "discover"));
	rc = check_discover_keys(target, where, not_used, *discovering, errs);
	if (!links || !*discovering)
		goto out;
	if (!json_is_object(links)) {
		errlist_add(errs,
		            "%s: \"links\": expected an object {\"selector\": CSS, \"id\": REGEX, "
		            "\"class\": {...}}, got %s",
		            where, adapter_util_quote(links, q, sizeof q));
		rc = -EINVAL;
		goto out;
	}
	if ((r = adapter_util_unknown_keys(links, links_keys, where, "links", errs)) != 0)
		rc = r;
	if (!(v = json_object_get(links, "selector"))) {
		errlist_add(errs, "%s: \"links.selector\": required (a CSS selector)", where);
		rc = -EINVAL;
	} else if ((r = adapter_util_string(v, where, "links.selector", CSS_MAX, &sel, errs)) !=
	           0) {
		rc = r;
	}
	if ((v = json_object_get(links, "id"))) {
		if ((r = adapter_util_string(v, where, "links.id", REGEX_MAX, &re, errs)) != 0) {
			rc = r;
		} else if (!regex_plausible(re)) {
			errlist_add(errs,
			            "%s: \"links.id\": expected a JavaScript regex, got %s "
			            "(unbalanced parentheses or brackets, or a trailing \\)",
			            where, adapter_util_quote(v, q, sizeof q));
			rc = -EINVAL;
		}
	}
	if ((v = json_object_get(links, "class")) && rc != -ENOMEM &&
	    (r = parse_class(v, where, out, &attr, &csel, errs)) != 0)
		rc = r;
	if (rc == 0)
		rc = build_js(out, sel, re, attr, csel);
out:
	free(sel);
	free(re);
	free(attr);
	free(csel);
	if (rc != 0)
		adapter_links_release(out);
	return rc;
}

/* The class of one entry: its folded text in a list, else the parent's; -1: none. */
static int entry_class(const adapter_links_t *l, const json_t *text)
{
	char *f;
	int found = -1;

	if (!json_is_string(text))
		return l->parent_class;
	f = fold(json_string_value(text));
	for (int k = 0; f && k < SCHED_NCLASSES && found < 0; k++) {
		size_t i;
		const json_t *v;
		json_array_foreach(l->classes[k], i, v) if (strcmp(json_string_value(v), f) == 0)
		{
			found = k;
			break;
		}
	}
	free(f);
	return found >= 0 ? found : l->parent_class;
}

/* An absolute http(s) URL of at most ADAPTER_LINKS_URL_MAX bytes, no spaces or controls. */
static int url_usable(const json_t *v)
{
	const char *u = json_string_value(v);

	if (!u || json_string_length(v) > ADAPTER_LINKS_URL_MAX ||
	    strlen(u) != json_string_length(v))
		return 0;
	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		return 0;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

/* parent_id '-' part, with part sanitised and cut to fit. */
static void child_id(const char *parent_id, const json_t *part, const char *url, char *out,
                     size_t outlen)
{
	char hash[11];
	const char *p = json_string_value(part);
	size_t n = strlen(parent_id), room = ADAPTER_LINKS_ID_MAX - n - 1, len;

	if (!p || !*p) {
		adapter_links_hash(url, hash);
		p = hash;
	}
	snprintf(out, outlen, "%s-", parent_id);
	len = strlen(p) < room ? strlen(p) : room;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		out[n + 1 + i] = isascii(c) && (isalnum(c) || c == '_' || c == '.' || c == '-')
		                         ? (char)c
		                         : '_';
	}
	out[n + 1 + len] = '\0';
}

/* Entry e (index i) -> a child appended to out, unless skipped. */
static int discover_entry(const void *ctx, const json_t *e, size_t i, const char *parent_id,
                          json_t *seen, json_t *out, char *why, size_t whylen)
{
	const adapter_links_t *l = ctx;
	char id[ADAPTER_LINKS_ID_MAX + 1], q[96];
	const json_t *url = json_object_get(e, "url");
	int k;
	json_t *t;

	if (!json_is_object(e) || !json_is_string(url)) {
		snprintf(why, whylen,
		         "listing[%zu]: expected an object {url, id_part, class_text}, got %s", i,
		         adapter_util_quote(e, q, sizeof q));
		return -EINVAL;
	}
	if (!url_usable(url))
		return 0; /* mailto:, javascript:, too long: not a page to scrape */
	child_id(parent_id, json_object_get(e, "id_part"), json_string_value(url), id, sizeof id);
	if (json_object_get(seen, id))
		return 0; /* the first entry with this id wins */
	k = entry_class(l, json_object_get(e, "class_text"));
	t = json_pack("{s:s, s:O}", "id", id, "url", url);
	if (!t || (k >= 0 &&
	           json_object_set_new(t, "class",
	                               json_string(sched_class_name((enum sched_class)k))) != 0)) {
		json_decref(t);
		return -ENOMEM;
	}
	if (json_array_append_new(out, t) != 0 || json_object_set_new(seen, id, json_true()) != 0)
		return -ENOMEM;
	return 0;
}

json_t *adapter_links_discover(const adapter_links_t *l, const json_t *raw, const char *parent_id,
                               char *why, size_t whylen)
{
	char q[96];

	if (!l || !l->js) {
		snprintf(why, whylen, "this target has no \"links\" to discover with");
		return NULL;
	}
	if (!parent_id || !*parent_id || strlen(parent_id) + 2 > ADAPTER_LINKS_ID_MAX) {
		snprintf(why, whylen,
		         "the parent id must be 1 to %d bytes, to leave room for a child's",
		         ADAPTER_LINKS_ID_MAX - 2);
		return NULL;
	}
	if (json_is_object(raw) && json_is_string(json_object_get(raw, "error"))) {
		snprintf(why, whylen, "%s", json_string_value(json_object_get(raw, "error")));
		return NULL;
	}
	if (!json_is_array(raw) || json_array_size(raw) > ADAPTER_LINKS_MAX) {
		snprintf(why, whylen,
		         "expected an array of at most %d {url, id_part, class_text} from the "
		         "listing, got %s",
		         ADAPTER_LINKS_MAX, adapter_util_quote(raw, q, sizeof q));
		return NULL;
	}
	return adapter_util_discover_each(raw, discover_entry, l, parent_id, why, whylen);
}
