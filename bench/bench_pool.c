/*
 * bench_pool: cdpilot's side of the pool benchmark. Runs N tasks (a lease, navigate, read
 * the title, release) through pool/ at a given concurrency against fixture pages and
 * prints one JSON object: tasks/s, p50/p95 task latency, peak controller RSS, controller
 * CPU per task, and the peak process count of the whole tree below this process.
 *
 *   cdpilot-bench-pool --base http://127.0.0.1:PORT --tasks N --concurrency C
 *                      [--pages js|real] [--block | --defaults] [--page-reuse N]
 *
 * --page-reuse: PAGE_REUSE (default the pool's, 50: a page is kept for the next task of its
 * site); 1: a fresh context for every task, disposed after it, as the peers' task does.
 * Without --block, resources are not blocked (identical settings to the peers); with it
 * (or --defaults, the same: cdpilot's defaults), cdpilot's default BLOCK_RESOURCES applies.
 * --pages: the page set, as the peers' (bench/peers.js PAGES): js (default) loads
 * /js?delay=10&page=K and reads document.title; real loads /real/match/K, waits for the
 * live score (#live-score[data-ready]) and reads it.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cdp/cdp_conn.h"
#include "cdp/cdp_err.h"
#include "pool/pool.h"
#include "util/log.h"

/* A page set: what a task loads (path followed by the page's number 0..49), waits for
 * (NULL: nothing) and reads. */
struct pages {
	const char *name, *path, *wait_for, *read;
};
static const struct pages page_sets[] = {
	{ "js", "/js?delay=10&page=", NULL, "document.title" },
	{ "real", "/real/match/", "#live-score[data-ready]",
	  "document.querySelector('#live-score').textContent" },
};

typedef struct bench {
	uv_loop_t loop;
	pool_t *pool;
	const char *base;
	const struct pages *pages;
	int tasks, conc, issued, done, ok, failed;
	double *lat_ms;
	uint64_t t0;
	int peak_procs;
	long peak_rss_kb;
	double sampler_cpu; /* CPU seconds spent sampling /proc: not the controller's work */
	uv_timer_t sampler;
	int pool_closed;
} bench_t;

typedef struct task {
	bench_t *b;
	pool_lease_t *lease;
	uint64_t start;
	char url[256];
	int revoked;
} task_t;

static uint64_t now_us(void) { return uv_hrtime() / 1000; }

/* Processes whose ancestry reaches pid (pid itself included). */
static int count_tree(pid_t root)
{
	enum { MAXP = 65536 };
	static pid_t pids[MAXP], ppids[MAXP];
	int n = 0, count = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL && n < MAXP) {
		char path[300], buf[512];
		FILE *f;
		char *rp;
		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof buf, f) && (rp = strrchr(buf, ')')) != NULL) {
			int ppid = 0;
			char st;
			if (sscanf(rp + 1, " %c %d", &st, &ppid) == 2) {
				pids[n] = (pid_t)strtol(e->d_name, NULL, 10);
				ppids[n] = (pid_t)ppid;
				n++;
			}
		}
		fclose(f);
	}
	closedir(d);
	for (int i = 0; i < n; i++) {
		pid_t p = pids[i];
		for (int depth = 0; depth < 64 && p > 1; depth++) {
			if (p == root) {
				count++;
				break;
			}
			int j;
			for (j = 0; j < n && pids[j] != p; j++)
				;
			if (j == n)
				break;
			p = ppids[j];
		}
	}
	return count;
}

static long self_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static double cpu_seconds(void);

static void sample(uv_timer_t *t)
{
	bench_t *b = t->data;
	double c0 = cpu_seconds();
	int n = count_tree(getpid());
	long rss = self_rss_kb();

	b->sampler_cpu += cpu_seconds() - c0;
	if (n > b->peak_procs)
		b->peak_procs = n;
	if (rss > b->peak_rss_kb)
		b->peak_rss_kb = rss;
}

static void issue(bench_t *b);

static void finish(task_t *t, int ok)
{
	bench_t *b = t->b;

	b->lat_ms[b->done] = (double)(now_us() - t->start) / 1000.0;
	b->done++;
	if (ok)
		b->ok++;
	else
		b->failed++;
	pool_release(t->lease, ok ? POOL_OK : POOL_FAILED);
	free(t);
	if (b->issued < b->tasks)
		issue(b);
}

static void on_eval(cdp_page_t *p, int status, json_t *v, const char *why, void *ud)
{
	if (status)
		log_warn("bench", "evaluate failed: %s", why);
	finish(ud, status == 0);
}

static void on_waited(cdp_page_t *p, int status, const char *why, void *ud)
{
	task_t *t = ud;

	if (status != 0 || t->revoked) {
		log_warn("bench", "wait for %s failed: %s", t->b->pages->wait_for,
		         why ? why : "revoked");
		finish(t, 0);
		return;
	}
	if (cdp_page_evaluate(p, t->b->pages->read, 10000, on_eval, t) != 0)
		finish(t, 0);
}

static void on_nav(cdp_page_t *p, const cdp_nav_result_t *res, void *ud)
{
	task_t *t = ud;

	if (res->status != 0 || t->revoked) {
		log_warn("bench", "navigate failed: %s", res->message);
		finish(t, 0);
		return;
	}
	if (t->b->pages->wait_for) {
		if (cdp_page_wait_for(p, t->b->pages->wait_for, 30000, on_waited, t) != 0)
			finish(t, 0);
		return;
	}
	on_waited(p, 0, NULL, t);
}

static void on_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	task_t *t = ud;

	if (status != 0) {
		bench_t *b = t->b;
		log_warn("bench", "lease failed: %s", why);
		b->lat_ms[b->done++] = 0;
		b->failed++;
		free(t);
		if (b->issued < b->tasks)
			issue(b);
		return;
	}
	if (cdp_page_navigate(pool_lease_page(l), t->url, 30000, on_nav, t) != 0)
		finish(t, 0);
}

static void on_revoked(pool_lease_t *l, enum pool_outcome r, const char *why, void *ud)
{
	((task_t *)ud)->revoked = 1;
}

static void issue(bench_t *b)
{
	task_t *t = calloc(1, sizeof *t);

	t->b = b;
	t->start = now_us();
	/* 50 distinct pages of the set, as the peers load */
	snprintf(t->url, sizeof t->url, "%s%s%d", b->base, b->pages->path, b->issued % 50);
	b->issued++;
	t->lease = pool_acquire(b->pool, t->url, 0, on_granted, on_revoked, t);
	if (!t->lease) {
		fprintf(stderr, "pool_acquire failed\n");
		exit(1);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void on_closed(pool_t *p, void *ud) { ((bench_t *)ud)->pool_closed = 1; }

/* CPU time of this process (all its threads), not of its children. */
static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	bench_t b;
	pool_opts_t o;
	cdp_wsctx_t *ws;
	int block = 0;
	long reuse = 0;
	double cpu0, cpu1, secs;
	cdp_conn_stats_t cs0, cs1;
	pool_stats_t st;
	json_t *out;
	char *text;

	if (browser_exec_wrapper_main(argc, argv))
		return 127;
	signal(SIGPIPE, SIG_IGN);
	memset(&b, 0, sizeof b);
	b.tasks = 100;
	b.conc = 8;
	b.pages = &page_sets[0];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--base") == 0 && i + 1 < argc)
			b.base = argv[++i];
		else if (strcmp(argv[i], "--tasks") == 0 && i + 1 < argc)
			b.tasks = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--concurrency") == 0 && i + 1 < argc)
			b.conc = (int)strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--block") == 0 || strcmp(argv[i], "--defaults") == 0)
			block = 1;
		else if (strcmp(argv[i], "--page-reuse") == 0 && i + 1 < argc) {
			reuse = strtol(argv[++i], NULL, 10);
			if (reuse < 1 || reuse > 100000) {
				fprintf(stderr, "cdpilot-bench-pool: --page-reuse '%s': expected 1 to "
				                "100000\n",
				        argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--pages") == 0 && i + 1 < argc) {
			const char *name = argv[++i];
			b.pages = NULL;
			for (size_t k = 0; k < sizeof page_sets / sizeof page_sets[0]; k++)
				if (strcmp(name, page_sets[k].name) == 0)
					b.pages = &page_sets[k];
			if (!b.pages) {
				fprintf(stderr, "cdpilot-bench-pool: --pages '%s': expected js or real\n",
				        name);
				return 2;
			}
		}
		else {
			fprintf(stderr, "cdpilot-bench-pool: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (!b.base || b.tasks < 1 || b.conc < 1 || b.conc > 256) {
		fprintf(stderr, "usage: cdpilot-bench-pool --base URL [--tasks N] "
		                "[--concurrency 1..256] [--pages js|real] [--block | --defaults] "
		                "[--page-reuse N]\n");
		return 2;
	}
	log_set_level(getenv("BENCH_DEBUG") ? LOG_DEBUG : LOG_WARN);
	b.lat_ms = calloc((size_t)b.tasks, sizeof *b.lat_ms);
	uv_loop_init(&b.loop);
	ws = cdp_wsctx_new(&b.loop);
	pool_opts_init(&o);
	o.concurrency_cap = (unsigned)b.conc;
	o.lease_timeout_ms = 600000;
	o.recycle_task_count = 0;
	o.recycle_uptime_ms = 0;
	if (!block)
		snprintf(o.block_resources, sizeof o.block_resources, "none");
	if (reuse)
		o.page_reuse = (unsigned)reuse;
	b.pool = pool_new(&b.loop, ws, &o);
	pool_start(b.pool);
	/* wait for the browser, so launch time is not part of throughput */
	do {
		uv_run(&b.loop, UV_RUN_ONCE);
		pool_get_stats(b.pool, &st);
	} while (!st.ready);
	uv_timer_init(&b.loop, &b.sampler);
	b.sampler.data = &b;
	uv_timer_start(&b.sampler, sample, 0, 100);
	cdp_conn_get_stats(pool_browser_conn(b.pool), &cs0);
	cpu0 = cpu_seconds();
	b.t0 = now_us();
	for (int i = 0; i < b.conc && b.issued < b.tasks; i++)
		issue(&b);
	while (b.done < b.tasks)
		uv_run(&b.loop, UV_RUN_ONCE);
	secs = (double)(now_us() - b.t0) / 1e6;
	cpu1 = cpu_seconds();
	cdp_conn_get_stats(pool_browser_conn(b.pool), &cs1);
	sample(&b.sampler);
	uv_timer_stop(&b.sampler);
	uv_close((uv_handle_t *)&b.sampler, NULL);
	qsort(b.lat_ms, (size_t)b.tasks, sizeof *b.lat_ms, cmp_double);
	pool_get_stats(b.pool, &st);
	out = json_pack("{s:s, s:i, s:i, s:s, s:b, s:b, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:i, "
	                "s:{s:f, s:f, s:f}, s:i, s:I}",
	                "side",
	                "cdpilot", "concurrency", b.conc, "tasks", b.tasks, "pages", b.pages->name,
	                "defaults", block, "block_resources", block, "ok", b.ok, "failed",
	                b.failed, "tasks_per_s", b.tasks / secs,
	                "p50_ms", b.lat_ms[b.tasks / 2], "p95_ms",
	                b.lat_ms[(size_t)(b.tasks * 95 / 100)], "peak_rss_mb",
	                (double)b.peak_rss_kb / 1024.0, "cpu_ms_per_task",
	                (cpu1 - cpu0 - b.sampler_cpu) * 1000.0 / b.tasks, "peak_processes",
	                b.peak_procs, "cdp_per_task", "commands",
	                (double)(cs1.sent - cs0.sent) / b.tasks, "events",
	                (double)(cs1.events - cs0.events) / b.tasks, "events_unparsed",
	                (double)(cs1.events_unparsed - cs0.events_unparsed) / b.tasks, "page_reuse",
	                (int)o.page_reuse, "pages_reused", (json_int_t)st.pages_reused);
	text = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6));
	printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_decref(out);
	pool_close(b.pool, on_closed, &b);
	while (!b.pool_closed)
		uv_run(&b.loop, UV_RUN_ONCE);
	cdp_wsctx_close(ws);
	uv_run(&b.loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(ws);
	uv_loop_close(&b.loop);
	free(b.lat_ms);
	return b.failed ? 1 : 0;
}
