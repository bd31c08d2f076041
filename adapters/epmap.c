/*
 * epmap: learning where a page's data sits in a JSON endpoint's body, and rebuilding the
 * data from a later body (epmap.h). Pure: leaves are collected with their JSON pointers,
 * each data leaf is matched against the body's leaves by value and scored by how alike
 * their paths end.
 */
#include "adapters/epmap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter_util.h"

struct leaf {
	char *ptr;        /* its JSON pointer */
	const json_t *v;  /* borrowed */
	unsigned depth;   /* path components */
	unsigned indexes; /* of which array indexes */
};

struct leaves {
	struct leaf *v;
	size_t n, cap, max;
};

static void leaves_release(struct leaves *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].ptr);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int leaf_add(struct leaves *l, const char *ptr, const json_t *v, unsigned depth,
                    unsigned indexes)
{
	if (l->n >= l->max || strlen(ptr) >= EPMAP_PTR_MAX)
		return -E2BIG;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct leaf *nv = realloc(l->v, cap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	if (!(l->v[l->n].ptr = strdup(ptr)))
		return -ENOMEM;
	l->v[l->n].v = v;
	l->v[l->n].depth = depth;
	l->v[l->n++].indexes = indexes;
	return 0;
}

/* Every scalar under node (at ptr) into out, depth first. */
static int walk(const json_t *node, const char *ptr, unsigned depth, unsigned indexes,
                struct leaves *out)
{
	const char *key;
	json_t *v;
	size_t i;
	int rc = 0;

	if (json_is_object(node)) {
		json_object_foreach((json_t *)node, key, v)
		{
			char *p = adapter_util_pointer_join(ptr, key);
			rc = p ? walk(v, p, depth + 1, indexes, out) : -ENOMEM;
			free(p);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (json_is_array(node)) {
		json_array_foreach(node, i, v)
		{
			char idx[24], *p;
			snprintf(idx, sizeof idx, "%zu", i);
			p = adapter_util_pointer_join(ptr, idx);
			rc = p ? walk(v, p, depth + 1, indexes + 1, out) : -ENOMEM;
			free(p);
			if (rc)
				return rc;
		}
		return 0;
	}
	return leaf_add(out, ptr, node, depth, indexes);
}

/* The decimal text of an integral number, for comparing it with page text. */
static void int_text(json_int_t n, char *buf, size_t len)
{
	snprintf(buf, len, "%" JSON_INTEGER_FORMAT, n);
}

/* A real as text the way a page would show it: the shortest of %.15g. */
static void real_text(double d, char *buf, size_t len)
{
	snprintf(buf, len, "%.15g", d);
}

/* 1 if body value b can stand for data value d (see epmap.h). */
static int same(const json_t *d, const json_t *b)
{
	char t[64];

	switch (json_typeof(d)) {
	case JSON_STRING:
		if (json_is_string(b))
			return json_equal(d, b);
		if (json_is_integer(b))
			int_text(json_integer_value(b), t, sizeof t);
		else if (json_is_real(b))
			real_text(json_real_value(b), t, sizeof t);
		else
			return 0;
		return strcmp(t, json_string_value(d)) == 0;
	case JSON_INTEGER:
		if (json_is_number(b))
			return json_number_value(b) == (double)json_integer_value(d);
		int_text(json_integer_value(d), t, sizeof t);
		return json_is_string(b) && strcmp(t, json_string_value(b)) == 0;
	case JSON_REAL:
		if (json_is_number(b)) {
			double x = json_real_value(d), diff = json_number_value(b) - x;
			double scale = x > 1.0 ? x : x < -1.0 ? -x : 1.0;
			return diff <= 1e-9 * scale && -diff <= 1e-9 * scale;
		}
		return 0;
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_NULL: return json_typeof(d) == json_typeof(b);
	default: return 0;
	}
}

/* How many path components two pointers share from their ends. */
static unsigned common_suffix(const char *a, const char *b)
{
	const char *ea = a + strlen(a), *eb = b + strlen(b);
	unsigned n = 0;

	for (;;) {
		const char *sa = ea, *sb = eb;
		while (sa > a && sa[-1] != '/')
			sa--;
		while (sb > b && sb[-1] != '/')
			sb--;
		if (sa == a || sb == b || ea - sa != eb - sb ||
		    memcmp(sa, sb, (size_t)(ea - sa)) != 0)
			return n;
		n++;
		ea = sa - 1;
		eb = sb - 1;
	}
}

/* -1, 0 or 1: which of two places fits data leaf d better (see epmap.h). */
static int better(const struct leaf *d, const struct leaf *x, const struct leaf *y)
{
	unsigned sx = common_suffix(d->ptr, x->ptr), sy = common_suffix(d->ptr, y->ptr);

	if (sx != sy)
		return sx > sy ? 1 : -1;
	if (x->indexes != y->indexes)
		return x->indexes < y->indexes ? 1 : -1;
	if (x->depth != y->depth)
		return x->depth < y->depth ? 1 : -1;
	return 0;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "real";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

/* The place of data leaf d in body, or an error with why filled. */
static int place_of(const struct leaf *d, const struct leaves *body, const struct leaf **out,
                    char *why, size_t len)
{
	const struct leaf *best = NULL, *tie = NULL;
	char q[96];

	for (size_t i = 0; i < body->n; i++) {
		const struct leaf *b = &body->v[i];
		int c;
		if (!same(d->v, b->v))
			continue;
		c = best ? better(d, b, best) : 1;
		if (c > 0) {
			best = b;
			tie = NULL;
		} else if (c == 0) {
			tie = b;
		}
	}
	if (!best) {
		snprintf(why, len, "field \"%s\" (%s) is in no place of the endpoint's body",
		         d->ptr, adapter_util_quote(d->v, q, sizeof q));
		return -ENOENT;
	}
	if (tie) {
		snprintf(why, len, "field \"%s\" (%s) fits \"%s\" and \"%s\" of the body alike",
		         d->ptr, adapter_util_quote(d->v, q, sizeof q), best->ptr, tie->ptr);
		return -EEXIST;
	}
	*out = best;
	return 0;
}

int epmap_learn(const json_t *data, const json_t *body, json_t **map, char *why, size_t len)
{
	struct leaves dl = { .max = EPMAP_DATA_LEAVES_MAX }, bl = { .max = EPMAP_BODY_LEAVES_MAX };
	json_t *fields = NULL;
	int rc;

	*map = NULL;
	why[0] = '\0';
	if (!json_is_object(data)) {
		snprintf(why, len, "the data is not an object");
		return -EINVAL;
	}
	if ((rc = walk(data, "", 0, 0, &dl)) != 0 || (rc = walk(body, "", 0, 0, &bl)) != 0) {
		snprintf(why, len,
		         rc == -E2BIG ? "more than %d leaves in the data or %d in the body, or a "
		                        "path to a value longer than %d bytes"
		                      : "out of memory",
		         EPMAP_DATA_LEAVES_MAX, EPMAP_BODY_LEAVES_MAX, EPMAP_PTR_MAX - 1);
		goto out;
	}
	if (dl.n == 0) {
		rc = -EINVAL;
		snprintf(why, len, "the data has no value to look for (no string, number, "
		                   "boolean or null in it)");
		goto out;
	}
	if (!(fields = json_array())) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < dl.n; i++) {
		const struct leaf *at = NULL;
		if ((rc = place_of(&dl.v[i], &bl, &at, why, len)) != 0)
			goto out;
		if (json_array_append_new(fields,
		                          json_pack("{s:s, s:s, s:s}", "at", dl.v[i].ptr, "from",
		                                    at->ptr, "as", type_name(dl.v[i].v))) != 0) {
			rc = -ENOMEM;
			goto out;
		}
	}
	*map = json_pack("{s:O, s:O}", "template", data, "fields", fields);
	rc = *map ? 0 : -ENOMEM;
out:
	if (rc == -ENOMEM)
		snprintf(why, len, "out of memory");
	json_decref(fields);
	leaves_release(&dl);
	leaves_release(&bl);
	return rc;
}

/* v converted to type as (new reference), or NULL if it cannot be. */
static json_t *convert(const json_t *v, const char *as)
{
	char t[64], *end = NULL;

	if (strcmp(as, "string") == 0) {
		if (json_is_string(v))
			return json_copy((json_t *)v);
		if (json_is_integer(v))
			int_text(json_integer_value(v), t, sizeof t);
		else if (json_is_real(v))
			real_text(json_real_value(v), t, sizeof t);
		else
			return NULL;
		return json_string(t);
	}
	if (strcmp(as, "integer") == 0) {
		if (json_is_integer(v))
			return json_copy((json_t *)v);
		if (json_is_real(v) && json_real_value(v) < 9e15 && json_real_value(v) > -9e15 &&
		    (double)(json_int_t)json_real_value(v) == json_real_value(v))
			return json_integer((json_int_t)json_real_value(v));
		if (json_is_string(v) && *json_string_value(v)) {
			long long n;
			errno = 0;
			n = strtoll(json_string_value(v), &end, 10);
			return errno || *end ? NULL : json_integer((json_int_t)n);
		}
		return NULL;
	}
	if (strcmp(as, "real") == 0)
		return json_is_number(v) ? json_real(json_number_value(v)) : NULL;
	if (strcmp(as, "boolean") == 0)
		return json_is_boolean(v) ? json_copy((json_t *)v) : NULL;
	return json_is_null(v) ? json_null() : NULL;
}

/* Puts v (stolen) at pointer at of root, whose parent exists there. */
static int put_at(json_t *root, const char *at, json_t *v, char *why, size_t len)
{
	const char *last = strrchr(at, '/');
	char parent_ptr[EPMAP_PTR_MAX], key[EPMAP_PTR_MAX];
	const json_t *parent = NULL;
	size_t k = 0;

	if (!last || (size_t)(last - at) >= sizeof parent_ptr) {
		json_decref(v);
		snprintf(why, len, "malformed mapping: field \"%.200s\"", at);
		return -EINVAL;
	}
	memcpy(parent_ptr, at, (size_t)(last - at));
	parent_ptr[last - at] = '\0';
	for (const char *p = last + 1; *p; p++) { /* unescape ~1, ~0 */
		if (k + 1 >= sizeof key) { /* cannot be: at is shorter than EPMAP_PTR_MAX */
			json_decref(v);
			snprintf(why, len, "malformed mapping: field \"%.200s\"", at);
			return -EINVAL;
		}
		key[k++] = p[0] == '~' && p[1] == '1'   ? (p++, '/')
		           : p[0] == '~' && p[1] == '0' ? (p++, '~')
		                                        : *p;
	}
	key[k] = '\0';
	if (adapter_util_pointer_get(root, parent_ptr, &parent, why, len) != 0) {
		json_decref(v);
		return -EINVAL;
	}
	if (json_is_object(parent))
		return json_object_set_new((json_t *)parent, key, v) ? -ENOMEM : 0;
	if (json_is_array(parent))
		return json_array_set_new((json_t *)parent, strtoul(key, NULL, 10), v) ? -EINVAL
		                                                                       : 0;
	json_decref(v);
	snprintf(why, len, "malformed mapping: field \"%.200s\"", at);
	return -EINVAL;
}

int epmap_read(const json_t *map, const json_t *body, json_t **data, char *why, size_t len)
{
	const json_t *fields = json_object_get(map, "fields"), *f;
	json_t *out = json_deep_copy(json_object_get(map, "template"));
	size_t i;
	int rc = 0;

	*data = NULL;
	why[0] = '\0';
	if (!out || !json_is_array(fields)) {
		json_decref(out);
		snprintf(why, len, out ? "malformed mapping" : "out of memory");
		return out ? -EINVAL : -ENOMEM;
	}
	json_array_foreach(fields, i, f)
	{
		const char *at = json_string_value(json_object_get(f, "at"));
		const char *from = json_string_value(json_object_get(f, "from"));
		const char *as = json_string_value(json_object_get(f, "as"));
		const json_t *v = NULL;
		json_t *c;
		char q[96], err[256];
		if (!at || !from || !as) {
			snprintf(why, len, "malformed mapping: fields[%zu]", i);
			rc = -EINVAL;
			break;
		}
		if (adapter_util_pointer_get(body, from, &v, err, sizeof err) != 0) {
			snprintf(why, len, "field \"%s\": the endpoint's body has no \"%s\" (%s)",
			         at, from, err);
			rc = -ENOENT;
			break;
		}
		if (!(c = convert(v, as))) {
			snprintf(why, len,
			         "field \"%s\": the endpoint gave %s at \"%s\", expected %s", at,
			         adapter_util_quote(v, q, sizeof q), from, as);
			rc = -EINVAL;
			break;
		}
		if ((rc = put_at(out, at, c, why, len)) != 0)
			break;
	}
	if (rc) {
		json_decref(out);
		return rc;
	}
	*data = out;
	return 0;
}

void epmap_diff(const json_t *a, const json_t *b, char *out, size_t len)
{
	struct leaves la = { .max = EPMAP_BODY_LEAVES_MAX }, lb = { .max = EPMAP_BODY_LEAVES_MAX };
	char qa[96], qb[96], err[128];

	out[0] = '\0';
	if (walk(a, "", 0, 0, &la) != 0 || walk(b, "", 0, 0, &lb) != 0) {
		snprintf(out, len, "(too large to compare)");
		goto done;
	}
	for (int pass = 0; pass < 2 && !out[0]; pass++) {
		const struct leaves *x = pass ? &lb : &la;
		const json_t *other = pass ? a : b;
		for (size_t i = 0; i < x->n && !out[0]; i++) {
			const json_t *v = NULL;
			if (adapter_util_pointer_get(other, x->v[i].ptr, &v, err, sizeof err) ==
			            0 &&
			    json_equal((json_t *)v, (json_t *)x->v[i].v))
				continue;
			adapter_util_quote(pass ? v : x->v[i].v, qa, sizeof qa);
			adapter_util_quote(pass ? x->v[i].v : v, qb, sizeof qb);
			snprintf(out, len, "field \"%s\": %s against %s", x->v[i].ptr, qa, qb);
		}
	}
done:
	leaves_release(&la);
	leaves_release(&lb);
}
