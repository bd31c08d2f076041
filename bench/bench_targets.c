/*
 * bench_targets: how long a big targets list takes to validate and to reconcile. Writes a
 * generated targets file of N targets (alternately a jsonapi target with fields and a
 * generic browser target, about 130 bytes each, so that 100,000 fit in the 16 MiB a
 * targets file may have; unique ids) to a temporary file, then
 * measures, each phase on its own, wall and CPU time:
 *   parse      targets_load_file() of the file (read, JSON, every check), as at startup
 *              and on SIGHUP;
 *   add        runner_reconcile() of that set into an empty runner (every target new);
 *   unchanged  the file parsed again and reconciled (every target the same: SIGHUP
 *              without an edit);
 *   remove     runner_reconcile() of an empty set (every target removed).
 * Prints one JSON object with the figures and the process's peak RSS. The runner is never
 * started, so it needs no pool and no browser: only its targets table and schedulers work.
 *
 *   cdpilot-bench-targets --targets N [--keep FILE]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/targets.h"
#include "runner/runner.h"
#include "util/log.h"

typedef struct clock_pair {
	double wall_s, cpu_s;
} clock_pair_t;

static clock_pair_t now_pair(void)
{
	struct timespec w, c;
	clock_pair_t p;

	clock_gettime(CLOCK_MONOTONIC, &w);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c);
	p.wall_s = (double)w.tv_sec + (double)w.tv_nsec / 1e9;
	p.cpu_s = (double)c.tv_sec + (double)c.tv_nsec / 1e9;
	return p;
}

static clock_pair_t since(clock_pair_t a)
{
	clock_pair_t b = now_pair();

	b.wall_s -= a.wall_s;
	b.cpu_s -= a.cpu_s;
	return b;
}

/* The generated file: target i is "t<i>"; even ones jsonapi, odd ones generic. */
static int write_targets(const char *path, unsigned long n)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fputs("{\"targets\": [\n", f);
	for (unsigned long i = 0; i < n; i++) {
		if (i % 2 == 0)
			fprintf(f,
			        "{\"id\":\"t%lu\",\"adapter\":\"jsonapi\",\"url\":"
			        "\"https://api.example.net/m/%lu\",\"class\":\"live\","
			        "\"interval_seconds\":30,\"fields\":{\"home\":{\"pointer\":"
			        "\"/home\"}}}%s\n",
			        i, i, i + 1 < n ? "," : "");
		else
			fprintf(f,
			        "{\"id\":\"t%lu\",\"adapter\":\"generic\",\"url\":"
			        "\"https://www.example.net/m/%lu\",\"wait_for\":\"#s\","
			        "\"fields\":{\"score\":{\"selector\":\"#s\"}}}%s\n",
			        i, i, i + 1 < n ? "," : "");
	}
	fputs("]}\n", f);
	return fclose(f) == 0 ? 0 : -errno;
}

static void on_publish(void *ud, const json_t *snap, const json_t *delta, uint64_t fence,
                       int resync)
{
	(void)ud, (void)snap, (void)delta, (void)fence, (void)resync;
}

static int load(const char *path, target_set_t *set, unsigned long n)
{
	errlist_t errs;

	errlist_init(&errs);
	if (targets_load_file(path, set, &errs) != 0 || set->n != n) {
		fprintf(stderr, "bench-targets: %s: %zu of %lu targets; %u error(s):\n%.2000s\n",
		        path, set->n, n, errs.count, errlist_text(&errs));
		errlist_release(&errs);
		return -1;
	}
	errlist_release(&errs);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long n = 1000;
	const char *keep = NULL;
	char path[64] = "";
	uv_loop_t loop;
	runner_opts_t ro;
	runner_callbacks_t cbs = { .publish = on_publish };
	runner_t *r = NULL;
	target_set_t set = { 0 }, empty = { 0 };
	clock_pair_t t0, parse, add, unch_parse, unch, rem;
	struct rusage ru;
	int rc = 1, fd;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--targets") == 0 && i + 1 < argc) {
			char *end;
			n = strtoul(argv[++i], &end, 10);
			if (*end || n == 0 || n > 10000000) {
				fprintf(stderr,
				        "bench-targets: --targets '%s': expected 1 to 10000000\n",
				        argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc) {
			keep = argv[++i];
		} else {
			fprintf(stderr, "usage: cdpilot-bench-targets --targets N [--keep FILE]\n");
			return 2;
		}
	}
	log_set_level(LOG_WARN); /* one "target added" line per target would be measured too */
	if (keep) {
		snprintf(path, sizeof path, "%.63s", keep);
	} else {
		snprintf(path, sizeof path, "/tmp/cdpilot-bench-targets-XXXXXX");
		fd = mkstemp(path);
		if (fd < 0) {
			perror("bench-targets: mkstemp");
			return 1;
		}
		close(fd);
	}
	if (write_targets(path, n) != 0) {
		fprintf(stderr, "bench-targets: %s: %s\n", path, strerror(errno));
		goto out;
	}
	uv_loop_init(&loop);
	runner_opts_init(&ro);
	r = runner_new(&loop, &ro, NULL, NULL, &cbs);
	if (!r)
		goto out;

	t0 = now_pair();
	if (load(path, &set, n) != 0)
		goto out;
	parse = since(t0);

	t0 = now_pair();
	runner_reconcile(r, &set, "");
	add = since(t0);
	targets_release(&set);

	t0 = now_pair();
	if (load(path, &set, n) != 0)
		goto out;
	unch_parse = since(t0);
	t0 = now_pair();
	runner_reconcile(r, &set, "");
	unch = since(t0);
	targets_release(&set);

	t0 = now_pair();
	runner_reconcile(r, &empty, "");
	rem = since(t0);

	getrusage(RUSAGE_SELF, &ru);
	printf("{\"targets\": %lu, \"parse_wall_s\": %.3f, \"parse_cpu_s\": %.3f, "
	       "\"add_wall_s\": %.3f, \"add_cpu_s\": %.3f, \"reparse_wall_s\": %.3f, "
	       "\"unchanged_wall_s\": %.3f, \"unchanged_cpu_s\": %.3f, \"remove_wall_s\": %.3f, "
	       "\"remove_cpu_s\": %.3f, \"maxrss_mb\": %.1f}\n",
	       n, parse.wall_s, parse.cpu_s, add.wall_s, add.cpu_s, unch_parse.wall_s, unch.wall_s,
	       unch.cpu_s, rem.wall_s, rem.cpu_s, (double)ru.ru_maxrss / 1024.0);
	rc = 0;
out:
	if (r) {
		runner_stop(r);
		runner_close(r, NULL, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
	}
	targets_release(&set);
	if (!keep && path[0])
		unlink(path);
	return rc;
}
