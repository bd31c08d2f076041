/*
 * share_opts.c: the shared schedule's settings (SCHEDULE_INSTANCE, SCHEDULE_LEASE_SECONDS).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store/share.h"
#include "util/envnum.h"

static int instance_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SHARE_INSTANCE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

void share_opts_init(share_opts_t *o)
{
	char host[256] = "";
	size_t j = 0;

	memset(o, 0, sizeof *o);
	o->lease_ms = 15000;
	o->run_ms = 30000;
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "cdpilot");
	/* host name characters outside the id alphabet become '-' */
	for (size_t i = 0; host[i] && j < SHARE_INSTANCE_MAX - 12; i++) {
		char c = host[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		         c == '_' || c == '.' || c == '-';
		o->instance[j++] = ok ? c : '-';
	}
	snprintf(o->instance + j, sizeof o->instance - j, "%s%ld", j ? "-" : "cdpilot-",
	         (long)getpid());
}

int share_opts_from_env(share_opts_t *o, errlist_t *errs)
{
	const char *v = getenv("SCHEDULE_INSTANCE");
	double d = 0;
	int rc = 0, r;

	if (v) {
		if (!instance_valid(v)) {
			errlist_add(errs,
			            "SCHEDULE_INSTANCE=\"%.80s\": expected 1 to %d of A-Z a-z 0-9 _ . - "
			            "(unique per instance)",
			            v, SHARE_INSTANCE_MAX);
			rc = -EINVAL;
		} else {
			snprintf(o->instance, sizeof o->instance, "%s", v);
		}
	}
	r = envnum_get(errs, "SCHEDULE_LEASE_SECONDS", 2, 3600, ENVNUM_WHOLE, "seconds", &d);
	if (r > 0)
		o->lease_ms = (uint32_t)d * 1000u;
	else if (r < 0)
		rc = -EINVAL;
	return rc;
}

