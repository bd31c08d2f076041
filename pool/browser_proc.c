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

/* ---- /proc ---- */

int browser_parse_proc_stat(const char *buf, size_t len, char *state, pid_t *sid)
{
	const char *p = NULL, *end = buf + len;
	long v[4] = { 0 };
	char st;

	for (size_t i = len; i > 0; i--) {
		if (buf[i - 1] == ')') {
			p = buf + i;
			break;
		}
	}
	if (!p)
		return -EINVAL;
	/* " S ppid pgrp session ..." */
	if (p >= end || *p != ' ')
		return -EINVAL;
	p++;
	if (p >= end || !isalpha((unsigned char)*p))
		return -EINVAL;
	st = *p++;
	for (int f = 0; f < 3; f++) {
		int neg = 0;
		long n = 0;
		if (p >= end || *p != ' ')
			return -EINVAL;
		p++;
		if (p < end && *p == '-') {
			neg = 1;
			p++;
		}
		if (p >= end || !isdigit((unsigned char)*p))
			return -EINVAL;
		while (p < end && isdigit((unsigned char)*p)) {
			if (n > (LONG_MAX - 9) / 10)
				return -EINVAL;
			n = n * 10 + (*p++ - '0');
		}
		v[f] = neg ? -n : n;
	}
	if (p < end && *p != ' ' && *p != '\n')
		return -EINVAL;
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
