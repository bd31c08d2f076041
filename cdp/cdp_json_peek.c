/*
 * cdp_json_peek: cdp_json_peek_param(), a skim over a message's text for one member of its
 * "params" that builds nothing (see cdp_json.h), so that cdp_conn can drop the events no
 * listener wants by a parameter without parsing them.
 */
#include "cdp/cdp_json.h"

#include <string.h>

static const char *peek_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* Past the string at p (its opening quote), or NULL; *escaped says if it had a '\\'. */
static const char *peek_string(const char *p, const char *end, int *escaped)
{
	*escaped = 0;
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\') {
			*escaped = 1;
			if (++p >= end)
				return NULL;
		}
	}
	return NULL;
}

/* Past the value at p (not checked beyond its brackets and strings), or NULL. */
static const char *peek_skip_value(const char *p, const char *end)
{
	int depth = 0, esc;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return peek_string(p, end, &esc);
	if (*p != '{' && *p != '[') {
		while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
		       *p != '\r' && *p != '\t')
			p++;
		return p;
	}
	while (p < end) {
		if (*p == '"') {
			if (!(p = peek_string(p, end, &esc)))
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return NULL;
}

/*
 * Walks the members of the object at p (its '{') for the key of klen bytes. Returns 1 with
 * *at on its value, 0 when absent, -1 when the walk fails or a key has an escape.
 */
static int peek_member(const char *p, const char *end, const char *key, size_t klen,
                       const char **at)
{
	int esc;

	for (p = peek_ws(p + 1, end); p < end && *p != '}';) {
		const char *k = p + 1, *kend;
		if (*p != '"' || !(p = peek_string(p, end, &esc)) || esc)
			return -1;
		kend = p - 1; /* its closing quote */
		if ((p = peek_ws(p, end)) >= end || *p != ':')
			return -1;
		if ((p = peek_ws(p + 1, end)) >= end)
			return -1;
		if ((size_t)(kend - k) == klen && memcmp(k, key, klen) == 0) {
			*at = p;
			return 1;
		}
		if (!(p = peek_skip_value(p, end)))
			return -1;
		p = peek_ws(p, end);
		if (p < end && *p == ',')
			p = peek_ws(p + 1, end);
		else if (p >= end || *p != '}')
			return -1;
	}
	return p < end ? 0 : -1;
}

int cdp_json_peek_param(const char *data, size_t len, const char *key, const char **val,
                        size_t *vlen)
{
	const char *end = data + len, *p = peek_ws(data, end), *v;
	int rc, esc;

	if (p >= end || *p != '{')
		return -1;
	rc = peek_member(p, end, "params", 6, &p);
	if (rc <= 0)
		return rc;
	if (*p != '{')
		return -1;
	rc = peek_member(p, end, key, strlen(key), &p);
	if (rc <= 0)
		return rc;
	if (*p != '"')
		return 0;
	if (!(v = peek_string(p, end, &esc)) || esc)
		return -1;
	*val = p + 1;
	*vlen = (size_t)(v - 1 - (p + 1));
	return 1;
}
