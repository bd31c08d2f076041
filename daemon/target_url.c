/*
 * targets: the URL side of a target (targets.h): its host, as the scheduler's per-host
 * politeness keys it.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "daemon/targets.h"

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
	if (n >= outlen)
		return -ENAMETOOLONG;
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)p[i]);
	out[n] = '\0';
	return 0;
}
