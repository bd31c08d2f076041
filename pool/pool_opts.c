/*
 * pool_opts: the pool's options, their defaults and the environment variables that set them
 * (CONCURRENCY_CAP, the lease and task timeouts, the recycle thresholds,
 * BROWSER_IDLE_SECONDS, PAGE_REUSE, PAGE_IDLE_SECONDS, BLOCK_RESOURCES, USER_AGENT, VIEWPORT, EXTRA_HEADERS), each checked
 * and reported by name when invalid;
 * and a lease's own page settings over them (pool_acquire_ex).
 */
#include "pool/pool.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pool/pool_priv.h"
#include "util/envnum.h"
#include "util/log.h"
#include "util/resource_types.h"

/* ---- options ---- */

void pool_opts_init(pool_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->concurrency_cap = 8;
	o->lease_timeout_ms = 60000;
	o->watch_open_cap = 4;
	o->task_timeout_ms = 30000;
	o->recycle_uptime_ms = 21600ull * 1000;
	o->recycle_task_count = 5000;
	o->close_grace_ms = 5000;
	o->shutdown_grace_ms = 10000;
	o->move_grace_ms = 30000;
	o->idle_close_ms = 300u * 1000;
	o->page_reuse = 50;
	o->page_idle_ms = 30000;
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
	if ((r = env_whole(err, errlen, "WATCH_OPEN_CONCURRENCY", 1, 256, &d)) > 0)
		o->watch_open_cap = (unsigned)d;
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
	if ((r = env_whole(err, errlen, "BROWSER_IDLE_SECONDS", 0, 86400, &d)) > 0)
		o->idle_close_ms = (uint32_t)d * 1000;
	rc |= r < 0;
	if ((r = env_whole(err, errlen, "PAGE_REUSE", 1, 100000, &d)) > 0)
		o->page_reuse = (unsigned)d;
	rc |= r < 0;
	if ((r = env_whole(err, errlen, "PAGE_IDLE_SECONDS", 1, 3600, &d)) > 0)
		o->page_idle_ms = (uint32_t)d * 1000;
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

/* ---- a lease's page settings ---- */

void pool__lease_settings_free(pool_lease_t *l)
{
	free(l->user_agent);
	free(l->block);
	free(l->headers_json);
	free(l->cookies_json);
	l->user_agent = l->block = l->headers_json = l->cookies_json = NULL;
}

/* The pool's headers (o->extra_headers, may be "") with the lease's over them, keys
 * compared without case: new JSON text in *out. 0 or -EINVAL (logged) or -ENOMEM. */
static int merge_headers(const pool_opts_t *o, const char *mine, char **out)
{
	json_t *m = json_loads(mine, 0, NULL);
	json_t *all = o->extra_headers[0] ? json_loads(o->extra_headers, 0, NULL) : json_object();
	const char *k, *k2;
	json_t *v, *v2;
	void *tmp;
	int rc = 0;

	*out = NULL;
	if (!json_is_object(m)) {
		log_warn("pool", "page headers '%s' are not a JSON object", mine);
		rc = -EINVAL;
		goto out;
	}
	if (!json_is_object(all)) {
		rc = -ENOMEM;
		goto out;
	}
	json_object_foreach(m, k, v)
	{
		if (!json_is_string(v)) {
			log_warn("pool", "page header '%s' is not a string", k);
			rc = -EINVAL;
			goto out;
		}
		json_object_foreach_safe(all, tmp, k2, v2)
		{
			if (strcasecmp(k, k2) == 0)
				json_object_del(all, k2);
		}
	}
	if (json_object_update(all, m) != 0 || !(*out = json_dumps(all, JSON_COMPACT)))
		rc = -ENOMEM;
out:
	json_decref(m);
	json_decref(all);
	return rc;
}

int pool__lease_settings(pool_lease_t *l, const pool_opts_t *o, const pool_page_settings_t *s)
{
	json_t *c;
	int rc = -ENOMEM;

	if (!s)
		return 0;
	if (s->user_agent && !(l->user_agent = strdup(s->user_agent)))
		goto fail;
	if (s->viewport_width || s->viewport_height) {
		if (s->viewport_width < 100 || s->viewport_width > 10000 ||
		    s->viewport_height < 100 || s->viewport_height > 10000) {
			log_warn("pool", "page viewport %dx%d: expected each side 100..10000",
			         s->viewport_width, s->viewport_height);
			rc = -EINVAL;
			goto fail;
		}
		l->viewport_w = s->viewport_width;
		l->viewport_h = s->viewport_height;
	}
	if (s->block_resources) {
		if (!resource_list_valid(s->block_resources, sizeof o->block_resources)) {
			log_warn("pool", "page block_resources '%s': expected " RESOURCE_LIST_EXPECTED,
			         s->block_resources);
			rc = -EINVAL;
			goto fail;
		}
		if (strcmp(s->block_resources, o->block_resources) != 0 &&
		    !(l->block = strdup(s->block_resources)))
			goto fail;
	}
	if (s->extra_headers_json && (rc = merge_headers(o, s->extra_headers_json,
	                                                 &l->headers_json)) != 0)
		goto fail;
	l->no_frames = s->no_frames != 0;
	l->moving = s->moving != 0;
	if (s->cookies_json) {
		c = json_loads(s->cookies_json, 0, NULL);
		rc = json_is_array(c) ? 0 : -EINVAL;
		json_decref(c);
		if (rc != 0) {
			log_warn("pool", "page cookies '%s' are not a JSON array", s->cookies_json);
			goto fail;
		}
		rc = -ENOMEM;
		if (!(l->cookies_json = strdup(s->cookies_json)))
			goto fail;
	}
	return 0;
fail:
	pool__lease_settings_free(l);
	return rc;
}
