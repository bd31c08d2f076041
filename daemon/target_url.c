/*
 * targets: the URL side of a target (targets.h): its host, as the scheduler's per-host
 * politeness keys it, its port, and the target policy (TARGET_ALLOW / TARGET_DENY) every
 * parse applies.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/targets.h"

static const netpolicy_t *g_policy; /* NULL: the default policy */

void targets_set_policy(const netpolicy_t *p)
{
	g_policy = p;
}

const netpolicy_t *targets_policy(void)
{
	static netpolicy_t deflt;
	static int ready;

	if (g_policy)
		return g_policy;
	if (!ready) {
		netpolicy_init(&deflt, NULL, NULL, NULL);
		ready = 1;
	}
	return &deflt;
}

/* The port after host[:port] (p .. end): none, or 1 to 65535 in decimal digits. */
static int check_port(const char *p, const char *end)
{
	const char *colon;
	unsigned long port = 0;

	if (*p == '[')
		colon = memchr(p, ']', (size_t)(end - p)) + 1;
	else
		colon = memchr(p, ':', (size_t)(end - p));
	if (!colon || colon == end)
		return 0;
	if (colon + 1 == end || end - colon > 6)
		return -ERANGE;
	for (const char *d = colon + 1; d < end; d++) {
		if (!isdigit((unsigned char)*d))
			return -ERANGE;
		port = port * 10 + (unsigned long)(*d - '0');
	}
	return port >= 1 && port <= 65535 ? 0 : -ERANGE;
}

int targets_host(const char *url, char *out, size_t outlen)
{
	const char *p, *end, *at;
	size_t n;

	if (!url || outlen == 0)
		return -EINVAL;
	if (strncasecmp(url, "http://", 7) == 0)
		p = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		p = url + 8;
	else
		return -EINVAL;
	end = p + strcspn(p, "/?#");
	/* drop user:password@ */
	for (at = end; at > p; at--)
		if (at[-1] == '@')
			break;
	if (at > p)
		p = at;
	n = (size_t)(end - p);
	if (n == 0 || (*p == ':'))
		return -EINVAL;
	if (*p == '[') {
		const char *rb = memchr(p, ']', n);
		if (!rb || rb == p + 1 || (rb + 1 < end && rb[1] != ':'))
			return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f || p[i] == '\\')
			return -EINVAL;
	if (check_port(p, end) != 0)
		return -ERANGE;
	if (n >= outlen)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[n] = '\0';
	return 0;
}
