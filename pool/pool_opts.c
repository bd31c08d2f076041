/*
 * pool_opts: the pool's options, their defaults and the environment variables that set them
 * (CONCURRENCY_CAP, the lease and task timeouts, the recycle thresholds, BLOCK_RESOURCES,
 * USER_AGENT, VIEWPORT, EXTRA_HEADERS), each checked and reported by name when invalid.
 */
#include "pool/pool.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/envnum.h"
#include "util/resource_types.h"

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

/* A whole number in [lo, hi] from the environment (envnum.h), errors appended to err. */
static int env_whole(char *err, size_t errlen, const char *name, double lo, double hi,
                     double *out)
{
	return envnum_get_buf(err, errlen, name, lo, hi, ENVNUM_WHOLE, NULL, out);
}

int pool_opts_from_env(pool_opts_t *o, char *err, size_t errlen)
{
	const char *s;
	double d = 0;
	int rc = 0, r;

	if (errlen)
		err[0] = '\0';
	rc |= browser_opts_from_env(&o->browser, err, errlen);
	if ((r = env_whole(err, errlen, "CONCURRENCY_CAP", 1, 256, &d)) > 0)
		o->concurrency_cap = (unsigned)d;
	rc |= r < 0;
	if ((r = env_whole(err, errlen, "LEASE_TIMEOUT_SECONDS", 1, 86400, &d)) > 0)
		o->lease_timeout_ms = (uint32_t)d * 1000;
	rc |= r < 0;
	if ((r = env_whole(err, errlen, "TASK_TIMEOUT_SECONDS", 1, 3600, &d)) > 0)
		o->task_timeout_ms = (uint32_t)d * 1000;
	rc |= r < 0;
	if ((r = env_whole(err, errlen, "RECYCLE_UPTIME_SECONDS", 0, 30 * 86400, &d)) > 0)
		o->recycle_uptime_ms = (uint64_t)d * 1000;
	rc |= r < 0;
	if ((r = env_whole(err, errlen, "RECYCLE_TASK_COUNT", 0, 100000000, &d)) > 0)
		o->recycle_task_count = (uint64_t)d;
	rc |= r < 0;
	s = getenv("BLOCK_RESOURCES");
	if (s) {
		if (resource_list_valid(s, sizeof o->block_resources))
			snprintf(o->block_resources, sizeof o->block_resources, "%s", s);
		else
			rc |= opt_error(err, errlen, "BLOCK_RESOURCES", s, RESOURCE_LIST_EXPECTED);
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
