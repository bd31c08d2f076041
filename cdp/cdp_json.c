/*
 * cdp_json: compact JSON writing of jansson values straight into a growbuf, and a fast
 * recursive-descent reader for CDP messages that hands anything unusual back to jansson
 * (see cdp_json.h). The writer copies runs of plain bytes at once instead of decoding
 * every code point; the reader scans plain ASCII strings without copying them and builds
 * the tree with jansson's _nocheck constructors once it has checked the UTF-8 itself.
 */
#include "cdp/cdp_json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WRITE_MAX_DEPTH 2048

/* ---- writing ---- */

static int put(growbuf_t *o, const char *s, size_t n) { return growbuf_append(o, s, n); }

/* Bit tricks on 8 bytes at once ("Bit Twiddling Hacks": haszero, hasless): whether any
 * byte is below 0x20, a quote or a backslash, or (plain8) also over 0x7F. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
#define HAS_ZERO(x) (((x) - ONES) & ~(x) & HIGHS)
#define HAS_LESS(x, n) (((x) - ONES * (n)) & ~(x) & HIGHS)

static int special8(const char *s)
{
	uint64_t x;

	memcpy(&x, s, 8);
	return (HAS_LESS(x, 0x20) | HAS_ZERO(x ^ (ONES * '"')) | HAS_ZERO(x ^ (ONES * '\\'))) != 0;
}

static int plain8(const char *s)
{
	uint64_t x;

	memcpy(&x, s, 8);
	return !(HAS_LESS(x, 0x20) | HAS_ZERO(x ^ (ONES * '"')) | HAS_ZERO(x ^ (ONES * '\\')) |
	         (x & HIGHS));
}

int cdp_json_write_string(growbuf_t *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t start = 0, i = 0;
	int rc;

	if ((rc = put(o, "\"", 1)) != 0)
		return rc;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		char u[6] = { '\\', 'u', '0', '0', 0, 0 };
		const char *esc = u;
		size_t el = 2;

		if (n - i >= 8 && !special8(s + i)) {
			i += 8;
			continue;
		}
		if (c >= 0x20 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		default:
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			el = 6;
			break;
		}
		if ((rc = put(o, s + start, i - start)) != 0 || (rc = put(o, esc, el)) != 0)
			return rc;
		start = ++i;
	}
	if ((rc = put(o, s + start, n - start)) != 0)
		return rc;
	return put(o, "\"", 1);
}

int cdp_json_write_int(growbuf_t *o, json_int_t v)
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
		return cdp_json_write_int(o, json_integer_value(v));
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

/* ---- reading ---- */

typedef struct parser {
	const char *p, *end;
	int depth;
	char *scratch; /* decoded strings with escapes or non-ASCII bytes */
	size_t scratch_cap;
} parser_t;

static void skip_ws(parser_t *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
		ps->p++;
}

/* Length of the valid UTF-8 sequence at s (first byte >= 0x80), or 0: as jansson checks. */
static size_t utf8_len(const unsigned char *s, const unsigned char *end)
{
	size_t n;
	uint32_t cp;

	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		n = 2;
		cp = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		n = 3;
		cp = s[0] & 0x0F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - s) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

int cdp_json_utf8_valid(const char *s, size_t n)
{
	const char *p = s, *end = s + n;

	while (p < end) {
		uint64_t x;
		size_t k;
		if (end - p >= 8) {
			memcpy(&x, p, 8);
			if (!(x & HIGHS)) {
				p += 8;
				continue;
			}
		}
		if ((unsigned char)*p < 0x80) {
			p++;
			continue;
		}
		k = utf8_len((const unsigned char *)p, (const unsigned char *)end);
		if (!k)
			return 0;
		p += k;
	}
	return 1;
}

static int hex4(const char *s, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* Decodes one \uXXXX escape (a surrogate pair: two) at ps->p (just past the backslash
 * and 'u') into out (4 bytes at most). Returns the bytes written, or 0 to defer. */
static size_t decode_u(parser_t *ps, char *out)
{
	uint32_t cp, lo;

	if (ps->end - ps->p < 4 || hex4(ps->p, &cp) != 0 || cp == 0)
		return 0;
	ps->p += 4;
	if (cp >= 0xDC00 && cp <= 0xDFFF)
		return 0;
	if (cp >= 0xD800 && cp <= 0xDBFF) {
		if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
		    hex4(ps->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
			return 0;
		ps->p += 6;
		cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
	}
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* The slow path of a string: decodes from start (just past the opening quote) into the
 * scratch buffer. Returns 0 with *s, *n set, or -1 to defer. */
static int decode_string(parser_t *ps, const char *start, const char **s, size_t *n)
{
	/* the decoded text is never longer than the encoded one */
	size_t need = (size_t)(ps->end - start) + 1, len = 0;

	if (need > ps->scratch_cap) {
		char *nb = realloc(ps->scratch, need);
		if (!nb)
			return -1;
		ps->scratch = nb;
		ps->scratch_cap = need;
	}
	ps->p = start;
	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;
		if (c == '"') {
			ps->p++;
			*s = ps->scratch;
			*n = len;
			return 0;
		}
		if (c < 0x20)
			return -1;
		if (c >= 0x80) {
			size_t k = utf8_len((const unsigned char *)ps->p, (const unsigned char *)ps->end);
			if (!k)
				return -1;
			memcpy(ps->scratch + len, ps->p, k);
			len += k;
			ps->p += k;
			continue;
		}
		if (c != '\\') {
			ps->scratch[len++] = (char)c;
			ps->p++;
			continue;
		}
		if (ps->end - ps->p < 2)
			return -1;
		ps->p += 2;
		switch (ps->p[-1]) {
		case '"': ps->scratch[len++] = '"'; break;
		case '\\': ps->scratch[len++] = '\\'; break;
		case '/': ps->scratch[len++] = '/'; break;
		case 'b': ps->scratch[len++] = '\b'; break;
		case 'f': ps->scratch[len++] = '\f'; break;
		case 'n': ps->scratch[len++] = '\n'; break;
		case 'r': ps->scratch[len++] = '\r'; break;
		case 't': ps->scratch[len++] = '\t'; break;
		case 'u': {
			size_t k = decode_u(ps, ps->scratch + len);
			if (!k)
				return -1;
			len += k;
			break;
		}
		default:
			return -1;
		}
	}
	return -1;
}

/*
 * The string at ps->p (its opening quote). *s points into the input when it has no escape
 * and no byte over 0x7F, else into the scratch buffer (valid until the next string).
 * Returns 0, or -1 to defer.
 */
static int parse_string(parser_t *ps, const char **s, size_t *n)
{
	const char *start = ++ps->p;

	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;
		if (ps->end - ps->p >= 8 && plain8(ps->p)) {
			ps->p += 8;
			continue;
		}
		if (c == '"') {
			*s = start;
			*n = (size_t)(ps->p - start);
			ps->p++;
			return 0;
		}
		if (c < 0x20 || c == '\\' || c >= 0x80)
			return decode_string(ps, start, s, n);
		ps->p++;
	}
	return -1;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? as jansson reads it, or NULL. */
static json_t *parse_number(parser_t *ps)
{
	const char *start = ps->p, *p = ps->p, *end = ps->end;
	int neg = 0, is_real = 0;
	unsigned long long m = 0;
	char buf[64];

	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return NULL;
	if (*p == '0') {
		p++;
	} else {
		while (p < end && *p >= '0' && *p <= '9') {
			unsigned d = (unsigned)(*p++ - '0');
			if (m > (ULLONG_MAX - d) / 10)
				return NULL;
			m = m * 10 + d;
		}
	}
	if (p < end && *p == '.') {
		is_real = 1;
		if (++p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		is_real = 1;
		if (++p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	ps->p = p;
	if (!is_real) {
		if (neg ? m > (unsigned long long)INT64_MAX + 1 : m > (unsigned long long)INT64_MAX)
			return NULL; /* jansson: too big an integer */
		return json_integer(neg ? (json_int_t)(0ull - m) : (json_int_t)m);
	}
	if ((size_t)(p - start) >= sizeof buf)
		return NULL;
	memcpy(buf, start, (size_t)(p - start));
	buf[p - start] = '\0';
	errno = 0;
	{
		double d = strtod(buf, NULL);
		if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
			return NULL; /* jansson: real number overflow */
		return json_real(d);
	}
}

static json_t *parse_value(parser_t *ps);

static json_t *parse_object(parser_t *ps)
{
	json_t *obj = json_object();

	ps->p++;
	if (!obj || ++ps->depth > CDP_JSON_MAX_DEPTH)
		goto fail;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		ps->depth--;
		return obj;
	}
	for (;;) {
		const char *k;
		size_t kn;
		char *kcopy = NULL;
		json_t *v;
		int rc;

		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"' || parse_string(ps, &k, &kn) != 0 ||
		    json_object_getn(obj, k, kn))
			goto fail; /* a duplicate key included: jansson rejects it */
		if (k == ps->scratch) {
			/* the value's strings reuse the scratch buffer */
			if (!(kcopy = malloc(kn + 1)))
				goto fail;
			memcpy(kcopy, k, kn);
			k = kcopy;
		}
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':') {
			free(kcopy);
			goto fail;
		}
		ps->p++;
		v = parse_value(ps);
		rc = v ? json_object_setn_new_nocheck(obj, k, kn, v) : -1;
		free(kcopy);
		if (rc != 0)
			goto fail;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			ps->depth--;
			return obj;
		}
		goto fail;
	}
fail:
	json_decref(obj);
	return NULL;
}

static json_t *parse_array(parser_t *ps)
{
	json_t *arr = json_array();

	ps->p++;
	if (!arr || ++ps->depth > CDP_JSON_MAX_DEPTH)
		goto fail;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		ps->depth--;
		return arr;
	}
	for (;;) {
		json_t *v = parse_value(ps);
		if (!v || json_array_append_new(arr, v) != 0)
			goto fail;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			ps->depth--;
			return arr;
		}
		goto fail;
	}
fail:
	json_decref(arr);
	return NULL;
}

static json_t *parse_literal(parser_t *ps, const char *word, size_t n, json_t *value)
{
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return NULL;
	ps->p += n;
	return value;
}

static json_t *parse_value(parser_t *ps)
{
	const char *s;
	size_t n;

	skip_ws(ps);
	if (ps->p >= ps->end)
		return NULL;
	switch (*ps->p) {
	case '{':
		return parse_object(ps);
	case '[':
		return parse_array(ps);
	case '"':
		return parse_string(ps, &s, &n) == 0 ? json_stringn_nocheck(s, n) : NULL;
	case 't':
		return parse_literal(ps, "true", 4, json_true());
	case 'f':
		return parse_literal(ps, "false", 5, json_false());
	case 'n':
		return parse_literal(ps, "null", 4, json_null());
	default:
		return parse_number(ps);
	}
}

json_t *cdp_json_parse(const char *data, size_t len)
{
	parser_t ps = { data, data + len, 0, NULL, 0 };
	json_t *v = NULL;

	skip_ws(&ps);
	if (ps.p < ps.end && *ps.p == '{')
		v = parse_object(&ps);
	if (v) {
		skip_ws(&ps);
		if (ps.p != ps.end) {
			json_decref(v);
			v = NULL;
		}
	}
	free(ps.scratch);
	return v;
}
