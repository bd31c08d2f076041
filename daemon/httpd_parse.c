/*
 * httpd_parse.c: the request head parser, pure (no I/O, no server state), so that the unit
 * tests and the fuzzer drive it directly. httpd__parse() checks the request line and each
 * header line as they come and answers 0 (more bytes needed), 200, or the error status.
 * httpd_query_next() reads a handler's query string one decoded key=value at a time.
 */
#include "daemon/httpd.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- the request head parser ---- */

static int is_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int bad(httpd__req_t *req, int status, const char *why)
{
	req->error = why;
	return status;
}

/* Case-insensitive compare of a header name of length n with a lowercase literal. */
static int name_is(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

static const char *find_crlf(const char *p, const char *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '\r' && p[1] == '\n')
			return p;
	return NULL;
}

/*
 * The request line, method SP request-target SP HTTP-version CRLF, checked as it comes; eol
 * is its CRLF, or NULL when that has not come yet. Returns 200 when the line is complete and
 * well formed (*mlen, *http11 and req->target set), 0 when more bytes are needed, or the
 * error status.
 */
static int parse_request_line(const char *buf, size_t len, const char *eol, httpd__req_t *req,
                              size_t *mlen, int *http11)
{
	static const char ver[] = "HTTP/1.";
	size_t i = 0, vlen, ll = eol ? (size_t)(eol - buf) : len;
	const char *version;

	while (i < ll && is_tchar((unsigned char)buf[i]))
		i++;
	if (i > 32)
		return bad(req, 400, "malformed request line: method too long");
	if (i == ll && !eol)
		return 0;
	if (i == ll || buf[i] != ' ' || i == 0)
		return bad(req, 400, "malformed request line");
	*mlen = i++;
	req->target = buf + i;
	while (i < ll && (unsigned char)buf[i] > 0x20 && (unsigned char)buf[i] < 0x7f)
		i++;
	req->target_len = (size_t)(buf + i - req->target);
	if (req->target_len > HTTPD_MAX_TARGET)
		return bad(req, 414, "request target too long");
	if (i == ll && !eol)
		return 0;
	if (i == ll || buf[i] != ' ' || req->target_len == 0)
		return bad(req, 400, "malformed request line");
	version = buf + ++i;
	vlen = ll - i;
	for (size_t k = 0; k < vlen; k++) {
		int ok = k < sizeof ver - 1 ? version[k] == ver[k]
		         : k == sizeof ver - 1 ? version[k] == '0' || version[k] == '1'
		         /* the CR of a CRLF whose LF has not come yet */
		                               : !eol && k == sizeof ver && version[k] == '\r';
		if (!ok)
			return bad(req, 400, "malformed request line: expected HTTP/1.0 or "
			                     "HTTP/1.1");
	}
	if (!eol)
		return 0;
	if (vlen != sizeof ver)
		return bad(req, 400, "malformed request line: expected HTTP/1.0 or HTTP/1.1");
	*http11 = version[sizeof ver - 1] == '1';
	return 200;
}

/*
 * The header lines from p (just after the request line) to end, each checked once complete.
 * Counts Host headers in *hosts, sets *has_body for a Transfer-Encoding or a Content-Length
 * other than 0, and sets req->head_len when the empty line that ends the head has come.
 * Returns 0, or the error status.
 */
static int parse_header_lines(const char *buf, const char *p, const char *end, httpd__req_t *req,
                              size_t *hosts, int *has_body)
{
	size_t nheaders = 0;

	for (;;) {
		const char *le = find_crlf(p, end), *colon;
		if (!le)
			break;
		if (le == p) {
			req->head_len = (size_t)(le + 2 - buf);
			break;
		}
		if (++nheaders > HTTPD_MAX_HEADERS)
			return bad(req, 431, "too many header lines");
		colon = p;
		while (colon < le && is_tchar((unsigned char)*colon))
			colon++;
		if (colon == p || colon == le || *colon != ':')
			return bad(req, 400, "malformed header line");
		for (const char *v = colon + 1; v < le; v++) {
			unsigned char c = (unsigned char)*v;
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return bad(req, 400, "control character in a header value");
		}
		if (name_is(p, (size_t)(colon - p), "host"))
			(*hosts)++;
		else if (name_is(p, (size_t)(colon - p), "transfer-encoding"))
			*has_body = 1;
		else if (name_is(p, (size_t)(colon - p), "content-length")) {
			const char *v = colon + 1, *ve = le;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			if (v == ve)
				return bad(req, 400, "malformed Content-Length");
			for (const char *d = v; d < ve; d++)
				if (*d < '0' || *d > '9')
					return bad(req, 400, "malformed Content-Length");
			for (; v < ve; v++)
				if (*v != '0')
					*has_body = 1;
		}
		p = le + 2;
	}
	return 0;
}

int httpd__parse(const char *buf, size_t len, size_t max_head, httpd__req_t *req)
{
	const char *end = buf + len, *eol;
	size_t mlen = 0, hosts = 0;
	int is_get, is_head, http11 = 0, has_body = 0, status;

	memset(req, 0, sizeof *req);
	eol = find_crlf(buf, end);
	status = parse_request_line(buf, len, eol, req, &mlen, &http11);
	if (status == 0) {
		if (len >= max_head)
			return bad(req, 414, "request line too long");
		return 0;
	}
	if (status != 200)
		return status;
	status = parse_header_lines(buf, eol + 2, end, req, &hosts, &has_body);
	if (status)
		return status;
	if (!req->head_len) {
		if (len >= max_head)
			return bad(req, 431, "request head too large");
		return 0;
	}
	if (req->head_len > max_head)
		return bad(req, 431, "request head too large");
	is_get = mlen == 3 && memcmp(buf, "GET", 3) == 0;
	is_head = mlen == 4 && memcmp(buf, "HEAD", 4) == 0;
	if (!is_get && !is_head)
		return bad(req, 405, "method not allowed");
	req->head_only = is_head;
	if (http11 && hosts != 1)
		return bad(req, 400, "an HTTP/1.1 request needs exactly one Host header");
	if (hosts > 1)
		return bad(req, 400, "more than one Host header");
	if (has_body)
		return bad(req, 400, "request bodies are not accepted");
	if (req->target[0] != '/')
		return bad(req, 400, "the request target must be a path");
	if (len > req->head_len)
		return bad(req, 400, "bytes after the request head (pipelining is not supported)");
	return 200;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

/* Decodes [p, end) into out (cap bytes with the NUL): 0, or -1 with why. */
static int query_decode(const char *p, const char *end, char *out, size_t cap, const char *what,
                        char *why, size_t whylen)
{
	size_t n = 0;

	for (; p < end; p++) {
		int c = (unsigned char)*p;
		if (c == '%') {
			int hi = end - p > 2 ? hexval(p[1]) : -1, lo = hi >= 0 ? hexval(p[2]) : -1;
			if (lo < 0) {
				snprintf(why, whylen, "a bad %%-escape in the %s (expected %%XX, two hex digits)",
				         what);
				return -1;
			}
			c = hi * 16 + lo;
			p += 2;
		}
		if (c == 0) {
			snprintf(why, whylen, "a NUL (%%00) in the %s", what);
			return -1;
		}
		if (n + 1 >= cap) {
			snprintf(why, whylen, "the %s is longer than %zu bytes", what, cap - 1);
			return -1;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

int httpd_query_next(const char **q, char *key, size_t klen, char *val, size_t vlen, char *why,
                     size_t whylen)
{
	const char *p = *q, *amp, *eq, *end;
	char part[64];

	while (*p == '&')
		p++;
	if (!*p)
		return 0;
	amp = strchr(p, '&');
	end = amp ? amp : p + strlen(p);
	eq = memchr(p, '=', (size_t)(end - p));
	snprintf(part, sizeof part, "%.*s", (int)(end - p > 48 ? 48 : end - p), p);
	if (!eq) {
		snprintf(why, whylen, "query parameter '%s': expected key=value", part);
		return -1;
	}
	{
		char w[96];
		if (query_decode(p, eq, key, klen, "name", w, sizeof w) != 0 ||
		    query_decode(eq + 1, end, val, vlen, "value", w, sizeof w) != 0) {
			snprintf(why, whylen, "query parameter '%s': %s", part, w);
			return -1;
		}
	}
	*q = end;
	return 1;
}
