/*
 * bench_instr: the controller's own cost, counted in instructions under callgrind
 * (bench/run-callgrind.sh; see bench/README.md). Through pool/ at concurrency 1 it runs
 * W warm-up tasks, then E sequential cdp_page_evaluate("1") round trips on one leased page,
 * then T sequential navigate tasks (a lease on a fixture page: the kept page of the site
 * after the first, PAGE_REUSE; navigate, read document.title, release), the task
 * bench/bench_pool.c runs. Callgrind's
 * instrumentation is on only around the two measured phases, and each phase is dumped on
 * its own (parts named "evaluate" and "navigate"), so with --instr-atstart=no the dumps
 * hold the controller's instructions for E round trips and for T tasks, nothing else.
 * Chromium is a child process and runs outside valgrind (--trace-children=no).
 *
 * Run natively (the callgrind requests are then no-ops) it prints wall-clock figures
 * instead: the evaluate round trip's median and the controller CPU per task, in all and
 * split into user and system time.
 *
 *   cdpilot-bench-instr --base http://127.0.0.1:PORT [--evals E] [--tasks T] [--warmup W]
 *
 * Prints one JSON object on stdout. Exit status 0, 1 if any step failed, 2 on bad usage.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>
#include <valgrind/callgrind.h>

#include "cdp/cdp_err.h"
#include "pool/pool.h"
#include "util/log.h"

#define COMP "bench-instr"
#define STEP_TIMEOUT_MS 60000u /* under valgrind every step is slower */

enum phase { PH_WARMUP, PH_EVAL, PH_TASKS };

typedef struct instr {
	uv_loop_t loop;
	pool_t *pool;
	const char *base;
	unsigned evals, tasks, warmup;
	enum phase phase;
	unsigned n;          /* steps done in the current phase */
	int phase_done, failed, pool_closed;
	pool_lease_t *lease; /* the current lease */
	char url[256];
	double *eval_ms;
	uint64_t t_op;
} instr_t;

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User and system CPU seconds of this process so far (getrusage). */
static void rusage_seconds(double *user, double *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	*sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void fail(instr_t *b, const char *what, const char *why)
{
	log_warn(COMP, "%s failed: %s", what, why ? why : "?");
	b->failed = 1;
	b->phase_done = 1;
	if (b->lease) {
		pool_release(b->lease, POOL_FAILED);
		b->lease = NULL;
	}
}

/* Callgrind counts from here (a no-op outside valgrind). */
static void measure_start(void)
{
	CALLGRIND_START_INSTRUMENTATION;
	CALLGRIND_ZERO_STATS;
}

/* Dumps what was counted since measure_start() as the part called name, and stops. */
static void measure_stop(const char *name)
{
	CALLGRIND_DUMP_STATS_AT(name);
	CALLGRIND_STOP_INSTRUMENTATION;
}

static void on_revoked(pool_lease_t *l, enum pool_outcome r, const char *why, void *ud)
{
	(void)l;
	(void)r;
	fail(ud, "lease (revoked)", why);
}

/* ---- the navigate task (bench_pool.c's "js" page set) ---- */

static void start_task(instr_t *b);

static void on_title(cdp_page_t *p, int status, json_t *v, const char *why, void *ud)
{
	instr_t *b = ud;

	(void)p;
	if (status != 0 || !json_is_string(v)) {
		fail(b, "evaluate document.title", status ? why : "not a string");
		return;
	}
	pool_release(b->lease, POOL_OK);
	b->lease = NULL;
	if (++b->n < (b->phase == PH_WARMUP ? b->warmup : b->tasks))
		start_task(b);
	else
		b->phase_done = 1;
}

static void on_nav(cdp_page_t *p, const cdp_nav_result_t *res, void *ud)
{
	instr_t *b = ud;

	if (res->status != 0) {
		fail(b, "navigate", res->message);
		return;
	}
	if (cdp_page_evaluate(p, "document.title", STEP_TIMEOUT_MS, on_title, b) != 0)
		fail(b, "cdp_page_evaluate", "refused");
}

static void on_task_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	instr_t *b = ud;

	if (status != 0) {
		b->lease = NULL;
		fail(b, "lease", why);
		return;
	}
	if (cdp_page_navigate(pool_lease_page(l), b->url, STEP_TIMEOUT_MS, on_nav, b) != 0)
		fail(b, "cdp_page_navigate", "refused");
}

static void start_task(instr_t *b)
{
	/* 50 distinct pages, as the peers and bench_pool load */
	snprintf(b->url, sizeof b->url, "%s/js?delay=10&page=%u", b->base, b->n % 50);
	b->lease = pool_acquire(b->pool, b->url, 0, on_task_granted, on_revoked, b);
	if (!b->lease)
		fail(b, "pool_acquire", "NULL");
}

/* ---- evaluate('1') round trips on one page ---- */

static void on_eval(cdp_page_t *p, int status, json_t *v, const char *why, void *ud);

static void next_eval(instr_t *b)
{
	b->t_op = uv_hrtime();
	if (cdp_page_evaluate(pool_lease_page(b->lease), "1", STEP_TIMEOUT_MS, on_eval, b) != 0)
		fail(b, "cdp_page_evaluate", "refused");
}

static void on_eval(cdp_page_t *p, int status, json_t *v, const char *why, void *ud)
{
	instr_t *b = ud;

	(void)p;
	if (status != 0 || !json_is_integer(v) || json_integer_value(v) != 1) {
		fail(b, "evaluate('1')", status ? why : "did not return 1");
		return;
	}
	b->eval_ms[b->n++] = (double)(uv_hrtime() - b->t_op) / 1e6;
	if (b->n < b->evals) {
		next_eval(b);
		return;
	}
	measure_stop("evaluate");
	pool_release(b->lease, POOL_OK);
	b->lease = NULL;
	b->phase_done = 1;
}

static void on_eval_granted(pool_lease_t *l, int status, const char *why, void *ud)
{
	instr_t *b = ud;

	(void)l;
	if (status != 0) {
		b->lease = NULL;
		fail(b, "lease", why);
		return;
	}
	measure_start();
	next_eval(b);
}

/* ---- phases ---- */

/* Runs the loop until the pool has no lease in use or waiting. */
static void settle(instr_t *b)
{
	pool_stats_t st;

	for (;;) {
		pool_get_stats(b->pool, &st);
		if (!st.leases_in_use && !st.waiting)
			return;
		uv_run(&b->loop, UV_RUN_ONCE);
	}
}

static void run_phase(instr_t *b, enum phase ph)
{
	b->phase = ph;
	b->n = 0;
	b->phase_done = 0;
	if (ph == PH_EVAL) {
		b->lease = pool_acquire(b->pool, NULL, 0, on_eval_granted, on_revoked, b);
		if (!b->lease)
			fail(b, "pool_acquire", "NULL");
	} else {
		start_task(b);
	}
	while (!b->phase_done)
		uv_run(&b->loop, UV_RUN_ONCE);
	settle(b);
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, c = *(const double *)y;

	return a < c ? -1 : a > c;
}

static void on_closed(pool_t *p, void *ud)
{
	(void)p;
	((instr_t *)ud)->pool_closed = 1;
}

/* Parses a decimal in [1, max]. Returns 0 or -1. */
static int parse_count(const char *s, unsigned long max, unsigned *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < 1 || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_args(instr_t *b, int argc, char **argv)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		unsigned *dst = strcmp(a, "--evals") == 0    ? &b->evals
		                : strcmp(a, "--tasks") == 0  ? &b->tasks
		                : strcmp(a, "--warmup") == 0 ? &b->warmup
		                                             : NULL;
		if (!v) {
			fprintf(stderr, "cdpilot-bench-instr: %s needs a value\n", a);
			return -1;
		}
		if (strcmp(a, "--base") == 0) {
			b->base = v;
		} else if (!dst) {
			fprintf(stderr, "cdpilot-bench-instr: unknown argument '%s'\n", a);
			return -1;
		} else if (parse_count(v, 1000000, dst) != 0) {
			fprintf(stderr, "cdpilot-bench-instr: %s '%s': expected 1..1000000\n", a, v);
			return -1;
		}
	}
	if (!b->base) {
		fprintf(stderr, "usage: cdpilot-bench-instr --base URL [--evals E] [--tasks T] "
		                "[--warmup W]\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	instr_t b;
	pool_opts_t o;
	pool_stats_t st;
	cdp_wsctx_t *ws;
	double cpu0, cpu_s, wall_s, p50, u0, s0, u1, s1;
	uint64_t t0;
	json_t *out;

	if (browser_exec_wrapper_main(argc, argv))
		return 127;
	signal(SIGPIPE, SIG_IGN);
	memset(&b, 0, sizeof b);
	b.evals = 2000;
	b.tasks = 40;
	b.warmup = 5;
	if (parse_args(&b, argc, argv) != 0)
		return 2;
	log_set_level(getenv("BENCH_DEBUG") ? LOG_DEBUG : LOG_WARN);
	b.eval_ms = calloc(b.evals, sizeof *b.eval_ms);
	if (!b.eval_ms || uv_loop_init(&b.loop) != 0)
		return 1;
	ws = cdp_wsctx_new(&b.loop);
	if (!ws)
		return 1;
	pool_opts_init(&o);
	o.concurrency_cap = 1;
	o.lease_timeout_ms = 600000;
	o.task_timeout_ms = 600000;
	o.recycle_task_count = 0;
	o.recycle_uptime_ms = 0;
	snprintf(o.block_resources, sizeof o.block_resources, "none"); /* as bench_pool */
	b.pool = pool_new(&b.loop, ws, &o);
	if (!b.pool || pool_start(b.pool) != 0)
		return 1;
	do {
		uv_run(&b.loop, UV_RUN_ONCE);
		pool_get_stats(b.pool, &st);
	} while (!st.ready);

	run_phase(&b, PH_WARMUP);
	if (!b.failed)
		run_phase(&b, PH_EVAL);
	cpu0 = cpu_seconds();
	rusage_seconds(&u0, &s0);
	t0 = uv_hrtime();
	if (!b.failed) {
		measure_start();
		run_phase(&b, PH_TASKS);
		measure_stop("navigate");
	}
	cpu_s = cpu_seconds() - cpu0;
	rusage_seconds(&u1, &s1);
	wall_s = (double)(uv_hrtime() - t0) / 1e9;
	qsort(b.eval_ms, b.evals, sizeof *b.eval_ms, cmp_double);
	p50 = b.eval_ms[b.evals / 2];
	/* user and system time (getrusage, tick-granular) say where the CPU time goes */
	out = json_pack("{s:i, s:i, s:i, s:b, s:b, s:f, s:f, s:f, s:f, s:f}", "evals",
	                (int)b.evals, "tasks", (int)b.tasks, "warmup", (int)b.warmup, "ok",
	                !b.failed, "under_valgrind", (int)RUNNING_ON_VALGRIND, "eval_p50_ms", p50,
	                "cpu_ms_per_task", cpu_s * 1000.0 / b.tasks, "user_ms_per_task",
	                (u1 - u0) * 1000.0 / b.tasks, "sys_ms_per_task",
	                (s1 - s0) * 1000.0 / b.tasks, "tasks_per_s", b.tasks / wall_s);
	if (out) {
		json_dumpf(out, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
		fputc('\n', stdout);
		json_decref(out);
	}
	pool_close(b.pool, on_closed, &b);
	while (!b.pool_closed)
		uv_run(&b.loop, UV_RUN_ONCE);
	cdp_wsctx_close(ws);
	uv_run(&b.loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(ws);
	uv_loop_close(&b.loop);
	free(b.eval_ms);
	return b.failed ? 1 : 0;
}
