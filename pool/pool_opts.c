/*
 * pool_opts: the pool's options, their defaults and the environment variables that set them
 * (CONCURRENCY_CAP, the lease and task timeouts, the recycle thresholds, BLOCK_RESOURCES,
 * USER_AGENT, VIEWPORT, EXTRA_HEADERS), each checked and reported by name when invalid.
 */
#include "pool/pool.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- options ---- */

void pool_opts_init(pool_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->concurrency_cap = 8;
	o->lease_timeout_ms = 60000;
	o->task_timeout_ms = 30000;
	o->recycle_uptime_ms = 21600ull * 1000;
	o->recycle_task_count = 5000;
	o->close_grace_ms = 5000;
	o->shutdown_grace_ms = 10000;
	snprintf(o->block_resources, sizeof o->block_resources, "image,media,font");
	o->viewport_width = 1280;
	o->viewport_height = 800;
	browser_opts_init(&o->browser);
}

/* Appends "NAME='value': expected ..." to err; returns -EINVAL. */
static int opt_error(char *err, size_t errlen, const char *name, const char *val,
                     const char *expected)
{
	size_t used = strlen(err);
	if (used < errlen)
		snprintf(err + used, errlen - used, "%s%s='%s': expected %s", used ? "\n" : "", name,
		         val, expected);
	return -EINVAL;
}

/* Parses an integer env var into *out within [lo, hi]; scale multiplies it. */
static int env_uint(const char *name, uint64_t lo, uint64_t hi, uint64_t scale, uint64_t *out,
                    char *err, size_t errlen)
{
	const char *v = getenv(name);
	char *end = NULL;
	unsigned long long n;
	char expected[128];

	if (!v)
		return 0;
	snprintf(expected, sizeof expected, "a whole number from %llu to %llu",
	         (unsigned long long)lo, (unsigned long long)hi);
	if (!*v || !isdigit((unsigned char)*v))
		return opt_error(err, errlen, name, v, expected);
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n < lo || n > hi)
		return opt_error(err, errlen, name, v, expected);
	*out = (uint64_t)n * scale;
	return 0;
}

static const char *const resource_types[] = { "document", "stylesheet", "image", "media",
	                                      "font", "script", "texttrack", "xhr", "fetch",
	                                      "eventsource", "websocket", "manifest", "other" };

/* "none", or a comma-separated list of known resource types with no empty entry. */
static int valid_block_list(const char *v)
{
	if (strcmp(v, "none") == 0)
		return 1;
	if (!*v || strlen(v) >= sizeof((pool_opts_t *)0)->block_resources)
		return 0;
	for (;;) {
		size_t n = strcspn(v, ","), i;
		for (i = 0; i < sizeof resource_types / sizeof resource_types[0]; i++)
			if (strlen(resource_types[i]) == n && strncmp(resource_types[i], v, n) == 0)
				break;
		if (n == 0 || i == sizeof resource_types / sizeof resource_types[0])
			return 0;
		if (v[n] == '\0')
			return 1;
		v += n + 1;
	}
}

int pool_opts_from_env(pool_opts_t *o, char *err, size_t errlen)
{
	uint64_t v;
	const char *s;
	int rc = 0;

	if (errlen)
		err[0] = '\0';
	rc |= browser_opts_from_env(&o->browser, err, errlen);
	v = o->concurrency_cap;
	rc |= env_uint("CONCURRENCY_CAP", 1, 256, 1, &v, err, errlen);
	o->concurrency_cap = (unsigned)v;
	v = o->lease_timeout_ms;
	rc |= env_uint("LEASE_TIMEOUT_SECONDS", 1, 86400, 1000, &v, err, errlen);
	o->lease_timeout_ms = (uint32_t)v;
	v = o->task_timeout_ms;
	rc |= env_uint("TASK_TIMEOUT_SECONDS", 1, 3600, 1000, &v, err, errlen);
	o->task_timeout_ms = (uint32_t)v;
	rc |= env_uint("RECYCLE_UPTIME_SECONDS", 0, 30ull * 86400, 1000, &o->recycle_uptime_ms,
	               err, errlen);
	rc |= env_uint("RECYCLE_TASK_COUNT", 0, 100000000, 1, &o->recycle_task_count, err,
	               errlen);
	s = getenv("BLOCK_RESOURCES");
	if (s) {
		if (valid_block_list(s))
			snprintf(o->block_resources, sizeof o->block_resources, "%s", s);
		else
			rc |= opt_error(err, errlen, "BLOCK_RESOURCES", s,
			                "'none' or a comma-separated list of document, stylesheet, "
			                "image, media, font, script, texttrack, xhr, fetch, "
			                "eventsource, websocket, manifest, other");
	}
	s = getenv("USER_AGENT");
	if (s) {
		if (strlen(s) < sizeof o->user_agent)
			snprintf(o->user_agent, sizeof o->user_agent, "%s", s);
		else
			rc |= opt_error(err, errlen, "USER_AGENT", "(too long)",
			                "at most 511 characters");
	}
	s = getenv("VIEWPORT");
	if (s) {
		int w = 0, h = 0;
		char tail = 0;
		if (sscanf(s, "%dx%d%c", &w, &h, &tail) == 2 && w >= 100 && w <= 10000 && h >= 100 &&
		    h <= 10000) {
			o->viewport_width = w;
			o->viewport_height = h;
		} else {
			rc |= opt_error(err, errlen, "VIEWPORT", s,
			                "WIDTHxHEIGHT, each from 100 to 10000, e.g. 1280x800");
		}
	}
	s = getenv("EXTRA_HEADERS");
	if (s && *s) {
		json_t *j = json_loads(s, 0, NULL);
		int ok = json_is_object(j) && strlen(s) < sizeof o->extra_headers;
		const char *k;
		json_t *val;
		json_object_foreach(j, k, val) ok &= json_is_string(val);
		json_decref(j);
		if (ok)
			snprintf(o->extra_headers, sizeof o->extra_headers, "%s", s);
		else
			rc |= opt_error(err, errlen, "EXTRA_HEADERS", s,
			                "a JSON object of string values, e.g. {\"X-Team\":\"scores\"}");
	}
	return rc ? -EINVAL : 0;
}
