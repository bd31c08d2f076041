/*
 * browser_proc: the /proc helpers the close uses to wait for a browser's whole process tree:
 * parse one /proc/PID/stat and list the live members of a session. Pure functions of the
 * text or the tree they are given, so tests and fuzzers drive them on fake input.
 */
#include "pool/browser.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/procstat.h"

/* ---- /proc ---- */

/* A whole field as a long: an optional '-', then digits only, no overflow. */
static int parse_long(const char *t, size_t n, long *out)
{
	const char *p = t, *end = t + n;
	int neg = 0;
	long v = 0;

	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	if (p >= end)
		return -EINVAL;
	for (; p < end; p++) {
		if (!isdigit((unsigned char)*p) || v > (LONG_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

int browser_parse_proc_stat(const char *buf, size_t len, char *state, pid_t *sid)
{
	const char *p = procstat_after_comm(buf, len), *end = buf + len, *t = NULL;
	long v[3] = { 0 };
	size_t n = 0;
	char st;

	if (!p)
		return -EINVAL;
	/* " S ppid pgrp session ..." */
	if (procstat_next_field(&p, end, &t, &n) || n != 1 || !isalpha((unsigned char)*t))
		return -EINVAL;
	st = *t;
	for (int f = 0; f < 3; f++) {
		if (procstat_next_field(&p, end, &t, &n) || parse_long(t, n, &v[f]))
			return -EINVAL;
	}
	if (v[2] < 0 || v[2] > INT_MAX)
		return -EINVAL;
	*state = st;
	*sid = (pid_t)v[2];
	return 0;
}

int browser_session_members(const char *proc_root, pid_t sid, pid_t *pids, size_t max)
{
	DIR *d = opendir(proc_root);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX], buf[1024], st = 0;
		pid_t s = 0;
		ssize_t r;
		int fd;
		char *endp;
		long pid = strtol(e->d_name, &endp, 10);

		if (!isdigit((unsigned char)e->d_name[0]) || *endp || pid <= 0)
			continue;
		if (snprintf(path, sizeof path, "%s/%s/stat", proc_root, e->d_name) >=
		    (int)sizeof path)
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone meanwhile */
		r = read(fd, buf, sizeof buf);
		close(fd);
		if (r <= 0)
			continue;
		if (browser_parse_proc_stat(buf, (size_t)r, &st, &s) != 0)
			continue;
		if (s != sid || st == 'Z' || st == 'X' || st == 'x')
			continue;
		if (pids && (size_t)n < max)
			pids[n] = (pid_t)pid;
		n++;
	}
	closedir(d);
	return n;
}
