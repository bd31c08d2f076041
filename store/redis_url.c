/* redis_url: REDIS_URL parsing (see redis_url.h). */
#include "store/redis_url.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void store_url_redact(const char *url, char *out, size_t outlen)
{
	const char *scheme_end, *at, *colon, *slash;
	size_t auth_off;

	if (!outlen)
		return;
	snprintf(out, outlen, "%s", url ? url : "");
	if (!url)
		return;
	scheme_end = strstr(url, "://");
	if (scheme_end) {
		auth_off = (size_t)(scheme_end - url) + 3;
		slash = strchr(url + auth_off, '/');
		at = strrchr(url + auth_off, '@');
		if (at && (!slash || at < slash)) {
			colon = memchr(url + auth_off, ':', (size_t)(at - (url + auth_off)));
			if (colon)
				snprintf(out, outlen, "%.*s:***%s", (int)(colon - url), url, at);
		}
	}
	/* unix://...?password=secret */
	{
		char *p = strstr(out, "password=");
		if (p) {
			char *end = strchr(p, '&');
			char tail[1024];
			snprintf(tail, sizeof tail, "%s", end ? end : "");
			snprintf(p, outlen - (size_t)(p - out), "password=***%s", tail);
		}
	}
}

__attribute__((format(printf, 4, 5))) static int fail(const char *url, char *err, size_t errlen,
                                                      const char *fmt, ...)
{
	char red[1100], why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	store_url_redact(url, red, sizeof red);
	if (errlen)
		snprintf(err, errlen,
		         "REDIS_URL \"%s\": %s (expected redis://[user:password@]host:port/db "
		         "or unix:///path/to/socket?db=N)",
		         red, why);
	return -EINVAL;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes [s, s+n) into out. Returns 0, -EINVAL (bad escape, NUL) or -ENAMETOOLONG. */
static int decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int h, l;
			if (i + 2 >= n)
				return -EINVAL;
			h = hexval((unsigned char)s[i + 1]);
			l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return -EINVAL;
			c = h * 16 + l;
			i += 2;
		}
		if (o + 1 >= outlen)
			return -ENAMETOOLONG;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* A decimal number in [lo, hi] made of all of [s, s+n). */
static int parse_num(const char *s, size_t n, long lo, long hi, int *out)
{
	long v = 0;

	if (n == 0 || n > 10)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < lo || v > hi)
		return -ERANGE;
	*out = (int)v;
	return 0;
}

#define DB_MAX 1000000

static int parse_userinfo(const char *url, const char *s, size_t n, store_url_t *out, char *err,
                          size_t errlen)
{
	const char *colon = memchr(s, ':', n);
	size_t ulen = colon ? (size_t)(colon - s) : n;

	if (decode(s, ulen, out->user, sizeof out->user) != 0)
		return fail(url, err, errlen,
		            "the user is not valid (bad %%-escape or over %zu bytes)",
		            sizeof out->user - 1);
	if (colon) {
		if (decode(colon + 1, n - ulen - 1, out->password, sizeof out->password) != 0)
			return fail(url, err, errlen,
			            "the password is not valid (bad %%-escape or over %zu bytes)",
			            sizeof out->password - 1);
		out->has_password = 1;
	} else if (ulen) {
		return fail(url, err, errlen, "a user without a password (write user:password@)");
	}
	return 0;
}

static int parse_tcp(const char *url, const char *rest, store_url_t *out, char *err, size_t errlen)
{
	const char *end = rest + strcspn(rest, "/?#");
	const char *at = NULL, *hp, *p, *port_s = NULL;
	size_t hlen;

	for (p = rest; p < end; p++)
		if (*p == '@')
			at = p;
	if (strpbrk(rest, "?#"))
		return fail(url, err, errlen,
		            "query strings and fragments are not supported in redis://");
	if (at) {
		int rc = parse_userinfo(url, rest, (size_t)(at - rest), out, err, errlen);
		if (rc)
			return rc;
		hp = at + 1;
	} else {
		hp = rest;
	}
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(end - hp));
		if (!rb)
			return fail(url, err, errlen, "an IPv6 host without its closing ']'");
		hlen = (size_t)(rb - hp - 1);
		if (hlen == 0 || hlen >= sizeof out->host)
			return fail(url, err, errlen, "the host is empty or too long");
		memcpy(out->host, hp + 1, hlen);
		out->host[hlen] = '\0';
		if (rb + 1 < end) {
			if (rb[1] != ':')
				return fail(url, err, errlen,
				            "unexpected text after the IPv6 host");
			port_s = rb + 2;
		}
	} else {
		const char *colon = memchr(hp, ':', (size_t)(end - hp));
		const char *hend = colon ? colon : end;
		hlen = (size_t)(hend - hp);
		if (hlen == 0)
			return fail(url, err, errlen, "no host");
		if (hlen >= sizeof out->host)
			return fail(url, err, errlen, "the host is over %zu bytes",
			            sizeof out->host - 1);
		for (p = hp; p < hend; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
				return fail(url, err, errlen, "the host contains '%c'", *p);
		memcpy(out->host, hp, hlen);
		out->host[hlen] = '\0';
		if (colon)
			port_s = colon + 1;
	}
	out->port = 6379;
	if (port_s && parse_num(port_s, (size_t)(end - port_s), 1, 65535, &out->port) != 0)
		return fail(url, err, errlen, "the port \"%.*s\" is not a number from 1 to 65535",
		            (int)(end - port_s), port_s);
	if (*end == '/' && end[1]) {
		if (parse_num(end + 1, strlen(end + 1), 0, DB_MAX, &out->db) != 0)
			return fail(url, err, errlen,
			            "the database \"%s\" is not a number from 0 to %d", end + 1,
			            DB_MAX);
	}
	return 0;
}

static int parse_unix(const char *url, const char *rest, store_url_t *out, char *err, size_t errlen)
{
	const char *q = strchr(rest, '?');
	size_t plen = q ? (size_t)(q - rest) : strlen(rest);

	if (plen == 0 || rest[0] != '/')
		return fail(url, err, errlen, "the socket path must be absolute (unix:///path)");
	if (plen >= sizeof out->path)
		return fail(url, err, errlen, "the socket path is over %zu bytes",
		            sizeof out->path - 1);
	if (decode(rest, plen, out->path, sizeof out->path) != 0)
		return fail(url, err, errlen, "the socket path has a bad %%-escape");
	if (strchr(out->path, '#'))
		return fail(url, err, errlen, "fragments are not supported");
	out->is_unix = 1;
	while (q && *q) {
		const char *k = q + 1, *amp = strchr(k, '&'), *eq;
		size_t n = amp ? (size_t)(amp - k) : strlen(k);
		eq = memchr(k, '=', n);
		if (!eq)
			return fail(url, err, errlen, "query parameter \"%.*s\" has no value",
			            (int)n, k);
		size_t klen = (size_t)(eq - k), vlen = n - klen - 1;
		if (klen == 2 && !memcmp(k, "db", 2)) {
			if (parse_num(eq + 1, vlen, 0, DB_MAX, &out->db) != 0)
				return fail(url, err, errlen,
				            "the database \"%.*s\" is not a number from 0 to %d",
				            (int)vlen, eq + 1, DB_MAX);
		} else if (klen == 4 && !memcmp(k, "user", 4)) {
			if (decode(eq + 1, vlen, out->user, sizeof out->user) != 0)
				return fail(url, err, errlen, "the user is not valid");
		} else if (klen == 8 && !memcmp(k, "password", 8)) {
			if (decode(eq + 1, vlen, out->password, sizeof out->password) != 0)
				return fail(url, err, errlen, "the password is not valid");
			out->has_password = 1;
		} else {
			return fail(url, err, errlen,
			            "unknown query parameter \"%.*s\" (known: db, user, password)",
			            (int)klen, k);
		}
		q = amp;
	}
	if (out->user[0] && !out->has_password)
		return fail(url, err, errlen, "a user without a password");
	return 0;
}

int store_url_parse(const char *url, store_url_t *out, char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof *out);
	if (errlen)
		err[0] = '\0';
	if (!url || !*url)
		rc = fail("", err, errlen, "empty");
	else if (strlen(url) > 2048)
		rc = fail("(too long)", err, errlen, "over 2048 bytes");
	else if (!strncmp(url, "redis://", 8))
		rc = parse_tcp(url, url + 8, out, err, errlen);
	else if (!strncmp(url, "unix://", 7))
		rc = parse_unix(url, url + 7, out, err, errlen);
	else if (!strncmp(url, "rediss://", 9))
		rc = fail(url, err, errlen, "TLS (rediss://) is not supported by this build");
	else
		rc = fail(url, err, errlen, "unknown scheme");
	if (rc)
		memset(out, 0, sizeof *out);
	return rc;
}
