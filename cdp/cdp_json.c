/*
 * cdp_json: compact JSON writing of jansson values straight into a growbuf (see
 * cdp_json.h). The writer copies runs of plain bytes at once instead of decoding every
 * code point as json_dumps() does.
 */
#include "cdp/cdp_json.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITE_MAX_DEPTH 2048

/* ---- writing ---- */

static int put(growbuf_t *o, const char *s, size_t n) { return growbuf_append(o, s, n); }

int cdp_json_write_string(growbuf_t *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t start = 0;
	int rc;

	if ((rc = put(o, "\"", 1)) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
		const char *esc = u;
		size_t el = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default: el = 6; break;
		}
		if ((rc = put(o, s + start, i - start)) != 0 || (rc = put(o, esc, el)) != 0)
			return rc;
		start = i + 1;
	}
	if ((rc = put(o, s + start, n - start)) != 0)
		return rc;
	return put(o, "\"", 1);
}

static int write_integer(growbuf_t *o, json_int_t v)
{
	char buf[24];
	char *p = buf + sizeof buf;
	/* the magnitude as unsigned, so that the most negative value works too */
	unsigned long long m = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

	do {
		*--p = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	if (v < 0)
		*--p = '-';
	return put(o, p, (size_t)(buf + sizeof buf - p));
}

/* As jansson's jsonp_dtostr() with its default precision of 17. */
static int write_real(growbuf_t *o, double v)
{
	char buf[64];
	char *e;
	int n = snprintf(buf, sizeof buf - 3, "%.17g", v);
	size_t len;

	if (n < 0 || (size_t)n >= sizeof buf - 3 || !isfinite(v))
		return -EINVAL;
	len = (size_t)n;
	if (!strchr(buf, '.') && !strchr(buf, 'e')) {
		memcpy(buf + len, ".0", 3);
		len += 2;
	}
	e = strchr(buf, 'e');
	if (e) {
		/* no '+' and no leading zeros in the exponent */
		char *start = e + 1, *end = e + 2;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, len - (size_t)(end - buf) + 1);
			len -= (size_t)(end - start);
		}
	}
	return put(o, buf, len);
}

static int write_value(growbuf_t *o, const json_t *v, int depth)
{
	json_t *jv = (json_t *)v; /* jansson's iterators take non-const pointers */
	int rc = 0;

	if (depth > WRITE_MAX_DEPTH)
		return -EINVAL;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *sep = "{";
		for (void *it = json_object_iter(jv); it; it = json_object_iter_next(jv, it)) {
			if ((rc = put(o, sep, 1)) != 0 ||
			    (rc = cdp_json_write_string(o, json_object_iter_key(it),
			                                json_object_iter_key_len(it))) != 0 ||
			    (rc = put(o, ":", 1)) != 0 ||
			    (rc = write_value(o, json_object_iter_value(it), depth + 1)) != 0)
				return rc;
			sep = ",";
		}
		return put(o, *sep == '{' ? "{}" : "}", *sep == '{' ? 2 : 1);
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		if ((rc = put(o, "[", 1)) != 0)
			return rc;
		for (size_t i = 0; i < n; i++)
			if ((i && (rc = put(o, ",", 1)) != 0) ||
			    (rc = write_value(o, json_array_get(v, i), depth + 1)) != 0)
				return rc;
		return put(o, "]", 1);
	}
	case JSON_STRING:
		return cdp_json_write_string(o, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return write_integer(o, json_integer_value(v));
	case JSON_REAL:
		return write_real(o, json_real_value(v));
	case JSON_TRUE:
		return put(o, "true", 4);
	case JSON_FALSE:
		return put(o, "false", 5);
	case JSON_NULL:
		return put(o, "null", 4);
	}
	return -EINVAL;
}

int cdp_json_write(growbuf_t *o, const json_t *v)
{
	return v ? write_value(o, v, 0) : -EINVAL;
}
