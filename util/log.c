/*
 * log: formats one event per line on stderr, as text or as a JSON object built with
 * jansson (so messages with quotes or newlines stay valid JSON).
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

void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
{
	char msg[2048];
	char ts[64];
	struct timeval tv;
	struct tm tm;

	if (level < g_level || level >= LOG_OFF)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
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
