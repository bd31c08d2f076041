/* testutil: audits (fds, Chromium processes) and loop helpers for the tests. */
#include "tests/support/testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>


int tu_fd_count(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own fd */
}

int tu_chromium_count(void)
{
	int n = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[300], comm[64] = "";
		FILE *f;
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof comm, f) && strncmp(comm, "chrom", 5) == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

uint64_t tu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int tu_run_until(uv_loop_t *loop, const volatile int *flag, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;

	while (!*flag && tu_now_ms() < end) {
		if (uv_run(loop, UV_RUN_ONCE) == 0 && !*flag)
			usleep(1000); /* nothing active: let time pass for the deadline check */
	}
	return *flag != 0;
}

void tu_loop_finish(uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

int tu_wait_chromium_count(int expected, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;
	int n;

	while ((n = tu_chromium_count()) > expected && tu_now_ms() < end)
		usleep(50 * 1000);
	return n;
}
