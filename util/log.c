/*
 * log: formats one event per line on stderr, as text or as a JSON object built with
 * jansson (so messages with quotes or newlines stay valid JSON). Messages carry values
 * from outside (target ids, URLs, Redis fields, page errors), so every message is escaped
 * before it is written, whatever the call site: a control character cannot start a new
 * line or drive a terminal, and bytes that are not UTF-8 cannot make the JSON line fail.
 */
#include "util/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level g_level = LOG_INFO;
static enum log_format g_format = LOG_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_set_level(enum log_level level) { g_level = level; }
void log_set_format(enum log_format format) { g_format = format; }
enum log_level log_get_level(void) { return g_level; }

int log_init_from_env(char *errbuf, size_t errlen)
{
	const char *lv = getenv("LOG_LEVEL");
	const char *fm = getenv("LOG_FORMAT");
	int rc = 0;

	if (lv && *lv) {
		int found = 0;
		for (int i = 0; i <= LOG_OFF; i++) {
			if (strcasecmp(lv, level_names[i]) == 0) {
				g_level = (enum log_level)i;
				found = 1;
			}
		}
		if (!found) {
			snprintf(errbuf, errlen,
			         "LOG_LEVEL='%s': expected one of debug, info, warn, error, off", lv);
			rc = -EINVAL;
		}
	}
	if (fm && *fm) {
		if (strcasecmp(fm, "json") == 0)
			g_format = LOG_JSON;
		else if (strcasecmp(fm, "text") == 0)
			g_format = LOG_TEXT;
		else {
			/* both bad: one line each, so every error is reported at once */
			size_t used = rc ? strnlen(errbuf, errlen) : 0;
			if (used + 1 < errlen)
				snprintf(errbuf + used, errlen - used, "%sLOG_FORMAT='%s': expected text or json",
				         used ? "\n" : "", fm);
			rc = -EINVAL;
		}
	}
	return rc;
}

/* A UTF-8 sequence starting at s (at most n bytes): its length, or 0 if it is not valid
 * (overlong forms, surrogates and code points past U+10FFFF are not). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07u;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

size_t log_escape(const char *in, char *out, size_t outlen)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in), o = 0;

	if (outlen == 0)
		return 0;
	for (size_t i = 0; i < n;) {
		char esc[8];
		size_t el = 0, take = 1;
		unsigned char c = s[i];

		if (c == '\n')
			memcpy(esc, "\\n", el = 2);
		else if (c == '\r')
			memcpy(esc, "\\r", el = 2);
		else if (c == '\t')
			memcpy(esc, "\\t", el = 2);
		else if (c < 0x20 || c == 0x7f)
			el = (size_t)snprintf(esc, sizeof esc, "\\x%02x", c);
		else if (c < 0x80)
			esc[0] = (char)c, el = 1;
		else if ((take = utf8_len(s + i, n - i)) == 0)
			take = 1, el = (size_t)snprintf(esc, sizeof esc, "\\x%02x", c);
		else if (c == 0xc2 && s[i + 1] < 0xa0) /* C1 controls (U+0080-U+009F) */
			el = (size_t)snprintf(esc, sizeof esc, "\\u%04x", s[i + 1]);
		else
			memcpy(esc, s + i, el = take);
		if (o + el >= outlen)
			break; /* cut before an escape or a character, never inside one */
		memcpy(out + o, esc, el);
		o += el;
		i += take;
	}
	out[o] = '\0';
	return o;
}

void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
{
	char raw[2048];
	char msg[4 * sizeof raw]; /* raw escaped: at most 4 bytes for each byte */
	char ts[64];
	struct timeval tv;
	struct tm tm;

	if (level < g_level || level >= LOG_OFF)
		return;
	vsnprintf(raw, sizeof raw, fmt, ap);
	log_escape(raw, msg, sizeof msg);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (int)(tv.tv_usec / 1000));

	if (g_format == LOG_JSON) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts, "level",
		                      level_names[level], "component", component, "msg", msg);
		char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (line) {
			fprintf(stderr, "%s\n", line);
			free(line);
		}
		json_decref(o);
	} else {
		fprintf(stderr, "%s %-5s %-8s %s\n", ts, level_names[level], component, msg);
	}
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, component, fmt, ap);
	va_end(ap);
}
