/*
 * pageread.c: what a target's page read asks the page for, and what its failure means,
 * shared by navigate tasks (task.c) and watched pages (watch.c).
 */
#include <stdio.h>

#include "cdp/cdp_err.h"
#include "runner/runner_priv.h"

/* Why a navigation counts as failed (an error, or an HTTP status >= 400), into msg;
 * returns 0 when it succeeded. */
int runner__nav_failure(const cdp_nav_result_t *res, const char *url, char *msg, size_t len)
{
	if (res->status != 0)
		snprintf(msg, len, "loading %.300s failed: %.200s", url,
		         res->message[0] ? res->message : cdp_strerror(res->status));
	else if (res->http_status >= 400)
		snprintf(msg, len, "loading %.300s: HTTP %ld", url, res->http_status);
	else
		return 0;
	return -1;
}
