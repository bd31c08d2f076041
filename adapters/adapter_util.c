#include "adapters/adapter_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/sched_class.h"

unsigned adapter_util_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[65];

	/* Only short words are worth a suggestion; longer ones are simply "far". */
	if (la > 64 || lb > 64)
		return 255;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] > 255 ? 255 : row[lb];
}

const char *adapter_util_closest(const char *word, const char *const *candidates)
{
	const char *best = NULL;
	unsigned bestd = 255;
	size_t wl = strlen(word);

	for (size_t i = 0; candidates && candidates[i]; i++) {
		unsigned d = adapter_util_distance(word, candidates[i]);
		if (d < bestd) {
			bestd = d;
			best = candidates[i];
		}
	}
	if (!best || bestd == 0 || bestd > 2 || 2 * (size_t)bestd >= wl)
		return NULL;
	return best;
}

const char *adapter_util_quote(const json_t *v, char *out, size_t outlen)
{
	char *s;
	size_t n;

	if (outlen == 0)
		return out;
	if (!v) {
		snprintf(out, outlen, "nothing");
		return out;
	}
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!s) {
		snprintf(out, outlen, "(a %s)",
		         json_is_object(v)  ? "object"
		         : json_is_array(v) ? "array"
		                            : "value");
		return out;
	}
	n = strlen(s);
	if (n < outlen) {
		memcpy(out, s, n + 1);
	} else if (outlen > 4) {
		memcpy(out, s, outlen - 4);
		memcpy(out + outlen - 4, "...", 4);
	} else {
		out[0] = '\0';
	}
	free(s);
	return out;
}

/* ---- JSON pointers ---- */

int adapter_util_pointer_valid(const char *ptr)
{
	if (!ptr)
		return 0;
	if (!*ptr)
		return 1;
	if (*ptr != '/')
		return 0;
	for (const char *p = ptr; *p; p++)
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return 0;
	return 1;
}

/* Copies the reference token starting at p (up to '/' or the end) into tok, unescaped.
 * Returns the length of the raw token consumed, or -ENOMEM. */
static int token_at(const char *p, char **tok)
{
	size_t raw = strcspn(p, "/");
	char *t = malloc(raw + 1);
	size_t n = 0;

	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < raw; i++) {
		if (p[i] == '~' && i + 1 < raw && (p[i + 1] == '0' || p[i + 1] == '1')) {
			t[n++] = p[i + 1] == '0' ? '~' : '/';
			i++;
		} else {
			t[n++] = p[i];
		}
	}
	t[n] = '\0';
	*tok = t;
	return (int)raw;
}

static int array_index(const char *tok, size_t *out)
{
	size_t v = 0;

	if (!*tok || (tok[0] == '0' && tok[1]))
		return -EINVAL;
	for (const char *p = tok; *p; p++) {
		if (*p < '0' || *p > '9' || v > ((size_t)-1 - 9) / 10)
			return -EINVAL;
		v = v * 10 + (size_t)(*p - '0');
	}
	*out = v;
	return 0;
}

int adapter_util_pointer_get(const json_t *root, const char *ptr, const json_t **out, char *why,
                             size_t whylen)
{
	const json_t *cur = root;
	const char *p = ptr;
	char *tok = NULL;
	int rc = 0;

	*out = NULL;
	if (!adapter_util_pointer_valid(ptr)) {
		snprintf(why, whylen,
		         "\"%s\" is not a JSON pointer (RFC 6901: \"\" or \"/a/0/b\", "
		         "'~' only as ~0 or ~1)",
		         ptr ? ptr : "");
		return -EINVAL;
	}
	while (*p) {
		size_t idx;
		int raw;
		const json_t *next = NULL;
		int at = (int)(p - ptr);

		p++; /* the '/' */
		raw = token_at(p, &tok);
		if (raw < 0)
			return raw;
		if (json_is_object(cur)) {
			next = json_object_get(cur, tok);
			if (!next)
				snprintf(why, whylen, "no key \"%s\" in the object at \"%.*s\"",
				         tok, at, ptr);
		} else if (json_is_array(cur)) {
			if (array_index(tok, &idx) != 0)
				snprintf(why, whylen, "\"%s\" is not an array index (at \"%.*s\")",
				         tok, at, ptr);
			else if (idx >= json_array_size(cur))
				snprintf(why, whylen,
				         "index %zu is past the end of the array at \"%.*s\" (%zu "
				         "elements)",
				         idx, at, ptr, json_array_size(cur));
			else
				next = json_array_get(cur, idx);
		} else {
			snprintf(why, whylen, "\"%.*s\" is %s, not an object or array", at, ptr,
			         json_is_null(cur)      ? "null"
			         : json_is_string(cur)  ? "a string"
			         : json_is_boolean(cur) ? "a boolean"
			                                : "a number");
		}
		free(tok);
		tok = NULL;
		if (!next) {
			rc = -ENOENT;
			goto out;
		}
		cur = next;
		p += raw;
	}
	*out = cur;
out:
	return rc;
}

char *adapter_util_pointer_join(const char *base, const char *key)
{
	size_t bl = strlen(base), extra = 0, kl = strlen(key);
	char *s, *w;

	for (size_t i = 0; i < kl; i++)
		extra += key[i] == '~' || key[i] == '/';
	s = malloc(bl + 1 + kl + extra + 1);
	if (!s)
		return NULL;
	memcpy(s, base, bl);
	w = s + bl;
	*w++ = '/';
	for (size_t i = 0; i < kl; i++) {
		if (key[i] == '~') {
			*w++ = '~';
			*w++ = '0';
		} else if (key[i] == '/') {
			*w++ = '~';
			*w++ = '1';
		} else {
			*w++ = key[i];
		}
	}
	*w = '\0';
	return s;
}

/* ---- classify ---- */

int adapter_util_classify_parse(const json_t *cls, const char *where,
                                const char *const *field_names, adapter_util_classify_t *out,
                                errlist_t *errs)
{
	static const char *const keys[] = { "field", "live", "imminent", "completed", NULL };
	const char *fname;
	char q[128];
	int rc = 0, lists = 0;

	memset(out, 0, sizeof *out);
	if (!cls)
		return 0;
	if (!json_is_object(cls)) {
		errlist_add(errs,
		            "%s: \"classify\": expected an object {\"field\": NAME, \"live\": "
		            "[...], ...}, got %s",
		            where, adapter_util_quote(cls, q, sizeof q));
		return -EINVAL;
	}
	rc = adapter_util_unknown_keys(cls, keys, where, "classify", errs);
	fname = json_string_value(json_object_get(cls, "field"));
	if (!fname || !*fname) {
		errlist_add(errs, "%s: \"classify.field\": expected the name of a field, got %s",
		            where, adapter_util_quote(json_object_get(cls, "field"), q, sizeof q));
		rc = -EINVAL;
	} else if (field_names) {
		int found = 0;
		for (size_t i = 0; field_names && field_names[i]; i++)
			found |= strcmp(fname, field_names[i]) == 0;
		if (!found) {
			const char *sug = adapter_util_closest(fname, field_names);
			errlist_add(errs,
			            "%s: \"classify.field\": \"%s\" is not one of the fields%s%s%s",
			            where, fname, sug ? " (did you mean \"" : "", sug ? sug : "",
			            sug ? "\"?)" : "");
			rc = -EINVAL;
		}
	}
	for (int c = 0; c < SCHED_NCLASSES; c++) {
		const char *cname = sched_class_name((enum sched_class)c);
		const json_t *list = json_object_get(cls, cname);
		if (!list)
			continue;
		if (!json_is_array(list)) {
			errlist_add(errs,
			            "%s: \"classify.%s\": expected an array of values, got %s",
			            where, cname, adapter_util_quote(list, q, sizeof q));
			rc = -EINVAL;
			continue;
		}
		lists++;
	}
	if (rc == 0 && lists == 0) {
		errlist_add(errs,
		            "%s: \"classify\": expected at least one of \"live\", \"imminent\", "
		            "\"completed\"",
		            where);
		rc = -EINVAL;
	}
	if (rc != 0)
		return rc;
	out->field = strdup(fname);
	if (!out->field)
		goto nomem;
	for (int c = 0; c < SCHED_NCLASSES; c++) {
		const json_t *list = json_object_get(cls, sched_class_name((enum sched_class)c));
		if (list && !(out->values[c] = json_deep_copy(list)))
			goto nomem;
	}
	return 0;
nomem:
	adapter_util_classify_release(out);
	return -ENOMEM;
}

void adapter_util_classify_release(adapter_util_classify_t *c)
{
	if (!c)
		return;
	free(c->field);
	for (int i = 0; i < 3; i++)
		json_decref(c->values[i]);
	memset(c, 0, sizeof *c);
}

static int same_value(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return json_equal((json_t *)a, (json_t *)b);
}

int adapter_util_classify_eval(const adapter_util_classify_t *c, const json_t *data)
{
	const json_t *v;

	if (!c || !c->field)
		return -1;
	v = json_object_get(data, c->field);
	if (!v)
		return -1;
	for (int k = 0; k < SCHED_NCLASSES; k++) {
		size_t i;
		const json_t *cand;
		json_array_foreach(c->values[k], i, cand) if (same_value(v, cand)) return k;
	}
	return -1;
}

/* ---- numbers as written on pages ---- */

/* Copies the number in s into buf without surrounding white space and without ","
 * thousands separators (each must sit between digits, in the integer part). */
static int strip_number(const char *s, char *buf, size_t buflen, int allow_fraction)
{
	const char *b = s, *e;
	size_t n = 0;
	int digits = 0, seen_point = 0, seen_exp = 0;

	while (isspace((unsigned char)*b))
		b++;
	e = b + strlen(b);
	while (e > b && isspace((unsigned char)e[-1]))
		e--;
	if (b == e)
		return -EINVAL;
	for (const char *p = b; p < e; p++) {
		char ch = *p;
		if (n + 2 > buflen)
			return -EINVAL;
		if (ch >= '0' && ch <= '9') {
			digits++;
		} else if (ch == ',') {
			/* a separator: digit before, then exactly three digits */
			if (seen_point || seen_exp || p == b || p[-1] < '0' || p[-1] > '9' ||
			    e - p < 4 || strspn(p + 1, "0123456789") != 3)
				return -EINVAL;
			continue;
		} else if ((ch == '+' || ch == '-') &&
		           (p == b || (allow_fraction && (p[-1] == 'e' || p[-1] == 'E')))) {
		} else if (ch == '.' && allow_fraction && !seen_point && !seen_exp) {
			seen_point = 1;
		} else if ((ch == 'e' || ch == 'E') && allow_fraction && digits && !seen_exp) {
			seen_exp = 1;
			digits = 0;
		} else {
			return -EINVAL;
		}
		buf[n++] = ch;
	}
	buf[n] = '\0';
	return digits ? 0 : -EINVAL;
}

int adapter_util_parse_int(const char *s, json_int_t *out)
{
	char buf[64], *end = NULL;
	long long v;

	if (!s || strip_number(s, buf, sizeof buf, 0) != 0)
		return -EINVAL;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || !end || *end)
		return -EINVAL;
	*out = (json_int_t)v;
	return 0;
}

int adapter_util_parse_float(const char *s, double *out)
{
	char buf[128], *end = NULL;
	double v;

	if (!s || strip_number(s, buf, sizeof buf, 1) != 0)
		return -EINVAL;
	errno = 0;
	v = strtod(buf, &end);
	if (errno || !end || *end || !isfinite(v))
		return -EINVAL;
	*out = v;
	return 0;
}

int adapter_util_unknown_keys(const json_t *obj, const char *const *known, const char *where,
                              const char *path, errlist_t *errs)
{
	const char *key;
	const json_t *v;
	int rc = 0;

	json_object_foreach((json_t *)obj, key, v)
	{
		int found = 0;
		const char *sug;
		for (size_t i = 0; known[i] && !found; i++)
			found = strcmp(key, known[i]) == 0;
		if (found)
			continue;
		sug = adapter_util_closest(key, known);
		errlist_add(errs, "%s: \"%s\": unknown key \"%s\"%s%s%s", where, path, key,
		            sug ? " (did you mean \"" : "", sug ? sug : "", sug ? "\"?)" : "");
		rc = -EINVAL;
	}
	return rc;
}

int adapter_util_bool(const json_t *v, const char *where, const char *path, int *out,
                      errlist_t *errs)
{
	char q[96];

	if (!json_is_boolean(v)) {
		errlist_add(errs, "%s: \"%s\": expected true or false, got %s", where, path,
		            adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

int adapter_util_class(const json_t *v, const char *where, enum sched_class *out,
                       errlist_t *errs)
{
	int c = sched_class_parse(json_string_value(v));
	char q[96];

	if (c < 0) {
		errlist_add(errs,
		            "%s: \"class\": expected \"live\", \"imminent\" or \"completed\", got %s",
		            where, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	*out = (enum sched_class)c;
	return 0;
}

int adapter_util_number(const json_t *v, const char *where, const char *path, double lo,
                        double hi, double *out, errlist_t *errs)
{
	char q[96];

	if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi)) {
		errlist_add(errs, "%s: \"%s\": expected a number from %g to %g, got %s", where, path,
		            lo, hi, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	*out = json_number_value(v);
	return 0;
}

int adapter_util_name_index(const char *s, const char *const *names)
{
	for (int i = 0; s && names[i]; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int adapter_util_one_of(const json_t *v, const char *const *names, const char *where,
                        const char *path, int *out, errlist_t *errs)
{
	char list[256] = "", q[96];
	size_t len = 0;
	int i = adapter_util_name_index(json_string_value(v), names);

	if (i >= 0) {
		*out = i;
		return 0;
	}
	for (size_t k = 0; names[k]; k++) {
		int w = snprintf(list + len, sizeof list - len, "%s\"%s\"",
		                 k == 0         ? ""
		                 : names[k + 1] ? ", "
		                                : " or ",
		                 names[k]);
		if (w < 0 || (size_t)w >= sizeof list - len)
			break;
		len += (size_t)w;
	}
	errlist_add(errs, "%s: \"%s\": expected %s, got %s", where, path, list,
	            adapter_util_quote(v, q, sizeof q));
	return -EINVAL;
}

/* ---- fields ---- */

#define FIELD_NAME_MAX 128

int adapter_util_fields_check(const json_t *fields, size_t max, const char *hint, const char *where,
                              errlist_t *errs)
{
	char q[96];

	if (json_is_object(fields) && json_object_size(fields) > 0 &&
	    json_object_size(fields) <= max)
		return 0;
	errlist_add(errs,
	            "%s: \"fields\": expected an object of 1 to %zu fields {\"name\": %s}, got %s",
	            where, max, hint, adapter_util_quote(fields, q, sizeof q));
	return -EINVAL;
}

/* One field's spec: an object with known keys, then the adapter's own checks. */
static int field_spec(const json_t *spec, void *item, const char *name, const char *hint,
                      const char *const *keys, adapter_util_field_fn parse, const char *where,
                      errlist_t *errs)
{
	char path[192], q[96];
	int uk, r;

	if (!json_is_object(spec)) {
		errlist_add(errs, "%s: \"fields.%s\": expected an object %s, got %s", where, name,
		            hint, adapter_util_quote(spec, q, sizeof q));
		return -EINVAL;
	}
	snprintf(path, sizeof path, "fields.%s", name);
	uk = adapter_util_unknown_keys(spec, keys, where, path, errs);
	r = parse(item, name, spec, where, errs);
	return r ? r : uk;
}

int adapter_util_fields_walk(const json_t *fields, const char *hint, const char *const *keys,
                             size_t item_size, void **items, adapter_util_field_fn parse,
                             const char *where, char ***names, size_t *n, errlist_t *errs)
{
	const char *name;
	const json_t *spec;
	int rc = 0, r;

	*n = 0;
	*items = calloc(json_object_size(fields), item_size);
	*names = calloc(json_object_size(fields) + 1, sizeof **names);
	if (!*items || !*names)
		return -ENOMEM;
	json_object_foreach((json_t *)fields, name, spec)
	{
		size_t i = *n;
		if (!*name || strlen(name) > FIELD_NAME_MAX) {
			errlist_add(
			        errs,
			        "%s: \"fields\": a field name must be 1 to %d bytes, got \"%.40s\"",
			        where, FIELD_NAME_MAX, name);
			rc = -EINVAL;
			continue;
		}
		(*names)[i] = strdup(name);
		if (!(*names)[i])
			return -ENOMEM;
		*n = i + 1;
		r = field_spec(spec, (char *)*items + i * item_size, (*names)[i], hint, keys, parse,
		               where, errs);
		if (r == -ENOMEM)
			return r;
		if (r)
			rc = r;
	}
	return rc;
}

int adapter_util_field_type_required(const json_t *spec, const char *name,
                                     const char *const *type_names, const char *where, int *type,
                                     int *required, errlist_t *errs)
{
	char path[192];
	const json_t *v;
	int rc = 0;

	if ((v = json_object_get(spec, "type"))) {
		snprintf(path, sizeof path, "fields.%s.type", name);
		if (adapter_util_one_of(v, type_names, where, path, type, errs) != 0)
			rc = -EINVAL;
	}
	snprintf(path, sizeof path, "fields.%s.required", name);
	if ((v = json_object_get(spec, "required")) &&
	    adapter_util_bool(v, where, path, required, errs) != 0)
		rc = -EINVAL;
	return rc;
}

int adapter_util_string(const json_t *v, const char *where, const char *path, size_t max,
                        char **out, errlist_t *errs)
{
	char q[96];

	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v)) {
		errlist_add(errs,
		            "%s: \"%s\": expected a non-empty string of at most %zu bytes, got %s",
		            where, path, max, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

json_t *adapter_util_discover_each(const json_t *raw, adapter_util_entry_fn entry,
                                   const void *ctx, const char *parent_id, char *why,
                                   size_t whylen)
{
	json_t *out = json_array(), *seen = json_object(), *e;
	size_t i;

	if (!out || !seen)
		goto nomem;
	json_array_foreach(raw, i, e)
	{
		int r = entry(ctx, e, i, parent_id, seen, out, why, whylen);
		if (r == -ENOMEM)
			goto nomem;
		if (r != 0)
			goto bad;
	}
	json_decref(seen);
	return out;
nomem:
	snprintf(why, whylen, "out of memory");
bad:
	json_decref(seen);
	json_decref(out);
	return NULL;
}
