/*
 * cdpilot-bench: the cdpilot side of bench/ (see bench/README.md). For each of N runs it
 * launches a fresh Chromium with the pool/ and cdp/ APIs and measures (a) launch to a
 * ready page (browser_start until the websocket is open, then cdp_page_open: a browser
 * context, a target and a session), (b) E sequential cdp_page_evaluate("1") round trips,
 * (c) a full scrape of the fixture's /js page (navigate, wait for #out, evaluate an
 * object of title, URL and text), then closes everything. With --cdpilot it also times
 * `cdpilot scrape BASE/js --wait-for '#out'` end to end as a subprocess, N times.
 * Prints one JSON object on stdout; logs go to stderr (LOG_LEVEL, default warn here).
 *
 * usage: cdpilot-bench --base http://127.0.0.1:PORT [--runs N] [--evals E] [--cdpilot PATH]
 * Exit status: 0 when every measurement succeeded, 1 if any failed (the JSON lists the
 * errors), 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_page.h"
#include "cdp/cdp_ws.h"
#include "pool/browser.h"
#include "util/log.h"

#define COMP "bench"
#define STEP_TIMEOUT_MS 30000u
#define URL_MAX 2048
#define WHY_MAX 512

/* The same extraction Playwright's side runs (bench/pw_scrape.js). */
static const char extract_js[] =
	"({title: document.title, url: location.href, "
	"text: document.querySelector('#out').textContent})";

extern char **environ;

/* A growing list of samples in milliseconds; the bench aborts on out of memory. */
typedef struct samples {
	double *v;
	size_t n, cap;
} samples_t;

static void samples_add(samples_t *s, double ms)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		double *v = realloc(s->v, cap * sizeof *v);
		if (!v) {
			fprintf(stderr, "cdpilot-bench: out of memory\n");
			abort();
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Milliseconds rounded to the microsecond, for readable output. */
static double round_us(double ms)
{
	return (double)llround(ms * 1000.0) / 1000.0;
}

/*
 * {"n","median","p95","min","max","mean"} of the samples (sorted in place), or JSON null
 * when there are none. p95 is the nearest-rank percentile, as in pw_scrape.js.
 */
static json_t *stats_json(samples_t *s)
{
	double sum = 0, median, p95;
	size_t rank;

	if (s->n == 0)
		return json_null();
	qsort(s->v, s->n, sizeof *s->v, cmp_double);
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i];
	median = s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
	rank = (s->n * 95 + 99) / 100; /* ceil(0.95 n), 1-based */
	p95 = s->v[rank - 1];
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "n", (json_int_t)s->n, "median",
	                 round_us(median), "p95", round_us(p95), "min", round_us(s->v[0]), "max",
	                 round_us(s->v[s->n - 1]), "mean", round_us(sum / (double)s->n));
}

static double ms_since(uint64_t t0_ns)
{
	return (double)(uv_hrtime() - t0_ns) / 1e6;
}

/* ---- one in-process run ---- */

typedef struct run {
	uv_loop_t *loop;
	cdp_wsctx_t *ws;
	browser_t *b;
	cdp_page_t *page;
	const char *url;
	unsigned evals, evals_done;
	uint64_t t0_ns, t_op_ns;
	/* Each measurement is recorded as soon as it is taken, so a run that fails later
	 * still counts for the steps it completed. */
	samples_t *browser_ms, *ready_ms, *eval_ms, *scrape_ms;
	int failed, finishing, done;
	char why[WHY_MAX];
} run_t;

static void run_finish(run_t *r);

static void run_fail(run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void run_fail(run_t *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->failed) {
		r->failed = 1;
		va_start(ap, fmt);
		vsnprintf(r->why, sizeof r->why, fmt, ap);
		va_end(ap);
		log_warn(COMP, "%s", r->why);
	}
	run_finish(r);
}

static void on_browser_closed(browser_t *b, void *ud)
{
	run_t *r = ud;

	r->b = NULL;
	r->done = 1;
	uv_stop(r->loop);
}

static void on_page_closed(void *ud)
{
	run_t *r = ud;

	browser_close(r->b, on_browser_closed, r);
}

/* Tears down whatever exists: the page, then the browser. Only the first call counts. */
static void run_finish(run_t *r)
{
	cdp_page_t *page = r->page;

	if (r->finishing)
		return;
	r->finishing = 1;
	if (page) {
		r->page = NULL;
		cdp_page_close(page, on_page_closed, r);
	} else if (r->b) {
		browser_close(r->b, on_browser_closed, r);
	} else {
		r->done = 1;
		uv_stop(r->loop);
	}
}

static void on_extract(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	run_t *r = ud;

	if (status != 0) {
		run_fail(r, "scrape: evaluate: %s", why ? why : cdp_strerror(status));
		return;
	}
	if (!json_is_object(value) || !json_is_string(json_object_get(value, "text"))) {
		run_fail(r, "scrape: the extract did not return {title, url, text}");
		return;
	}
	samples_add(r->scrape_ms, ms_since(r->t_op_ns));
	run_finish(r);
}

static void on_wait(cdp_page_t *page, int status, const char *why, void *ud)
{
	run_t *r = ud;
	int rc;

	if (status != 0) {
		run_fail(r, "scrape: wait for #out: %s", why ? why : cdp_strerror(status));
		return;
	}
	rc = cdp_page_evaluate(page, extract_js, STEP_TIMEOUT_MS, on_extract, r);
	if (rc != 0)
		run_fail(r, "scrape: cdp_page_evaluate: %s", cdp_strerror(rc));
}

static void on_nav(cdp_page_t *page, const cdp_nav_result_t *res, void *ud)
{
	run_t *r = ud;
	int rc;

	if (res->status != 0) {
		run_fail(r, "scrape: navigate: %s", *res->message ? res->message
		                                                  : cdp_strerror(res->status));
		return;
	}
	rc = cdp_page_wait_for(page, "#out", STEP_TIMEOUT_MS, on_wait, r);
	if (rc != 0)
		run_fail(r, "scrape: cdp_page_wait_for: %s", cdp_strerror(rc));
}

static void start_scrape(run_t *r)
{
	int rc;

	r->t_op_ns = uv_hrtime();
	rc = cdp_page_navigate(r->page, r->url, STEP_TIMEOUT_MS, on_nav, r);
	if (rc != 0)
		run_fail(r, "scrape: cdp_page_navigate: %s", cdp_strerror(rc));
}

static void next_eval(run_t *r);

static void on_eval(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	run_t *r = ud;

	if (status != 0) {
		run_fail(r, "evaluate #%u: %s", r->evals_done + 1, why ? why : cdp_strerror(status));
		return;
	}
	if (!json_is_integer(value) || json_integer_value(value) != 1) {
		run_fail(r, "evaluate #%u: expected 1", r->evals_done + 1);
		return;
	}
	samples_add(r->eval_ms, ms_since(r->t_op_ns));
	r->evals_done++;
	next_eval(r);
}

static void next_eval(run_t *r)
{
	int rc;

	if (r->evals_done == r->evals) {
		start_scrape(r);
		return;
	}
	r->t_op_ns = uv_hrtime();
	rc = cdp_page_evaluate(r->page, "1", STEP_TIMEOUT_MS, on_eval, r);
	if (rc != 0)
		run_fail(r, "cdp_page_evaluate: %s", cdp_strerror(rc));
}

static void on_page_open(cdp_page_t *page, int status, const char *why, void *ud)
{
	run_t *r = ud;

	if (status != 0) {
		run_fail(r, "page open: %s", why ? why : cdp_strerror(status));
		return;
	}
	r->page = page;
	samples_add(r->ready_ms, ms_since(r->t0_ns));
	next_eval(r);
}

static void on_browser_ready(browser_t *b, int status, const char *why, void *ud)
{
	run_t *r = ud;
	int rc;

	if (status != 0) {
		run_fail(r, "launch: %s", why ? why : cdp_strerror(status));
		return;
	}
	samples_add(r->browser_ms, ms_since(r->t0_ns));
	rc = cdp_page_open(browser_conn(b), NULL, STEP_TIMEOUT_MS, on_page_open, r);
	if (rc != 0)
		run_fail(r, "cdp_page_open: %s", cdp_strerror(rc));
}

static void on_browser_lost(browser_t *b, int err, const char *why, void *ud)
{
	/* The running page operation fails on its own with CDP_ECONNLOST or CDP_ECRASHED. */
	log_warn(COMP, "browser lost: %s", why ? why : cdp_strerror(err));
}

/* One run on a fresh loop, adding to the samples. Returns 0, or -1 with why filled in. */
static int run_once(const char *url, unsigned evals, samples_t *browser_ms, samples_t *ready_ms,
                    samples_t *eval_ms, samples_t *scrape_ms, char *why, size_t whylen)
{
	browser_opts_t bo;
	uv_loop_t loop;
	run_t r;
	int rc;

	memset(&r, 0, sizeof r);
	rc = uv_loop_init(&loop);
	if (rc != 0) {
		snprintf(why, whylen, "uv_loop_init: %s", uv_strerror(rc));
		return -1;
	}
	r.loop = &loop;
	r.url = url;
	r.evals = evals;
	r.browser_ms = browser_ms;
	r.ready_ms = ready_ms;
	r.eval_ms = eval_ms;
	r.scrape_ms = scrape_ms;
	r.t0_ns = uv_hrtime();
	r.ws = cdp_wsctx_new(&loop);
	if (!r.ws) {
		r.failed = 1;
		snprintf(r.why, sizeof r.why, "cannot create the websocket context");
		goto out;
	}
	browser_opts_init(&bo);
	r.b = browser_new(&loop, r.ws, &bo);
	if (!r.b) {
		r.failed = 1;
		snprintf(r.why, sizeof r.why, "browser_new: out of memory");
		goto out;
	}
	rc = browser_start(r.b, on_browser_ready, on_browser_lost, &r);
	if (rc != 0)
		run_fail(&r, "browser_start: %s", cdp_strerror(rc));
	while (!r.done)
		uv_run(&loop, UV_RUN_DEFAULT);
out:
	/* lws on a foreign loop: close, let the loop drain, then free. */
	if (r.ws)
		cdp_wsctx_close(r.ws);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (r.ws)
		cdp_wsctx_free(r.ws);
	rc = uv_loop_close(&loop);
	if (rc != 0)
		log_warn(COMP, "uv_loop_close: %s (handles left open)", uv_strerror(rc));
	if (r.failed) {
		snprintf(why, whylen, "%s", r.why);
		return -1;
	}
	return 0;
}

/* ---- cdpilot scrape as a subprocess ---- */

/* Runs `exe scrape url --wait-for #out` with output to /dev/null. Returns 0 or -1 (why). */
static int time_cli(const char *exe, const char *url, double *ms, char *why, size_t whylen)
{
	char *argv[] = { (char *)exe, "scrape", (char *)url, "--wait-for", "#out", NULL };
	posix_spawn_file_actions_t fa;
	uint64_t t0;
	pid_t pid = -1;
	int rc, st = 0;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	t0 = uv_hrtime();
	rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		snprintf(why, whylen, "cannot run %s: %s", exe, strerror(rc));
		return -1;
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			snprintf(why, whylen, "waitpid: %s", strerror(errno));
			return -1;
		}
	}
	*ms = ms_since(t0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(why, whylen, "cdpilot scrape %s %d", WIFEXITED(st) ? "exited with" : "signal",
		         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		return -1;
	}
	return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fputs("usage: cdpilot-bench --base http://127.0.0.1:PORT [--runs N] [--evals E] "
	      "[--cdpilot PATH]\n",
	      f);
}

/* Parses a decimal in [lo, hi]. Returns 0 or -1. */
static int parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *base = NULL, *cdpilot = NULL;
	unsigned runs = 5, evals = 1000;
	samples_t browser = { 0 }, ready = { 0 }, evalv = { 0 }, scrape = { 0 }, cli = { 0 };
	json_t *out = NULL, *errors = NULL;
	char url[URL_MAX], why[WHY_MAX], err[256] = "";
	int rc = 0;

	if (browser_exec_wrapper_main(argc, argv))
		return 127;
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (!v) {
			fprintf(stderr, "cdpilot-bench: %s needs a value\n", a);
			return 2;
		}
		if (strcmp(a, "--base") == 0) {
			base = v;
		} else if (strcmp(a, "--cdpilot") == 0) {
			cdpilot = v;
		} else if (strcmp(a, "--runs") == 0) {
			if (parse_uint(v, 1, 1000, &runs) != 0) {
				fprintf(stderr, "cdpilot-bench: --runs '%s': expected 1..1000\n", v);
				return 2;
			}
		} else if (strcmp(a, "--evals") == 0) {
			if (parse_uint(v, 1, 1000000, &evals) != 0) {
				fprintf(stderr, "cdpilot-bench: --evals '%s': expected 1..1000000\n", v);
				return 2;
			}
		} else {
			fprintf(stderr, "cdpilot-bench: unknown argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!base) {
		usage(stderr);
		return 2;
	}
	if (snprintf(url, sizeof url, "%s/js", base) >= (int)sizeof url) {
		fprintf(stderr, "cdpilot-bench: --base is too long\n");
		return 2;
	}
	if (log_init_from_env(err, sizeof err) != 0) {
		fprintf(stderr, "cdpilot-bench: %s\n", err);
		return 2;
	}
	if (!getenv("LOG_LEVEL"))
		log_set_level(LOG_WARN);
	signal(SIGPIPE, SIG_IGN);

	errors = json_array();
	if (!errors)
		abort();
	for (unsigned i = 0; i < runs; i++) {
		if (run_once(url, evals, &browser, &ready, &evalv, &scrape, why, sizeof why) != 0) {
			json_array_append_new(errors, json_sprintf("run %u: %s", i + 1, why));
			rc = 1;
		}
	}
	for (unsigned i = 0; cdpilot && i < runs; i++) {
		double ms = 0;
		if (time_cli(cdpilot, url, &ms, why, sizeof why) != 0) {
			json_array_append_new(errors, json_sprintf("cli run %u: %s", i + 1, why));
			rc = 1;
			continue;
		}
		samples_add(&cli, ms);
	}

	out = json_pack("{s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "tool", "cdpilot",
	                "url", url, "runs", (json_int_t)runs, "evals_per_run", (json_int_t)evals,
	                "launch_to_ready_ms", stats_json(&ready), "browser_ready_ms",
	                stats_json(&browser), "eval_ms", stats_json(&evalv), "scrape_ms",
	                stats_json(&scrape), "cli_scrape_ms",
	                cdpilot ? stats_json(&cli) : json_null(), "errors", errors);
	if (!out) {
		fprintf(stderr, "cdpilot-bench: cannot build the result\n");
		rc = 1;
	} else {
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
		fputc('\n', stdout);
		json_decref(out);
	}
	free(browser.v);
	free(ready.v);
	free(evalv.v);
	free(scrape.v);
	free(cli.v);
	return rc;
}
