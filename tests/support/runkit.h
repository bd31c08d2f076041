/*
 * runkit: the harness of the runner's in-process integration tests (test_runner,
 * test_runner_targets): a loop of the test's own with a real pool, Chromium, fetch context
 * and fixture, a runner whose callbacks record what leaves it, and the whole close path
 * audited at the end (loop closes, no fd, no Chromium process left).
 */
#ifndef CDPILOT_TESTS_RUNKIT_H
#define CDPILOT_TESTS_RUNKIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "cdp/cdp_ws.h"
#include "pool/pool.h"
#include "runner/runner.h"
#include "tests/fixture/fixture.h"
#include "tests/support/testutil.h"
#include "util/fetch.h"

typedef struct rh {
	uv_loop_t loop;
	cdp_wsctx_t *ws;
	fixture_t *fx;
	pool_t *pool;
	fetch_ctx_t *fetch;
	runner_t *runner;
	uv_timer_t poke; /* wakes uv_run(ONCE) so that waits check their condition */
	int pool_closed, fx_closed, fetch_closed, runner_closed, poke_closed;
	int fds_before, chrom_before;
	json_t *published; /* copies of every snapshot published, in order */
	unsigned outcomes[POOL_NOUTCOMES];
} rh_t;

typedef struct find {
	const char *id;
	runner_target_view_t v;
	char last_error[512];
	int found;
	size_t count;
} find_t;

#define RUN_UNTIL(h, cond, ms)                                                                 \
	do {                                                                                   \
		uint64_t until_ = tu_now_ms() + (ms);                                          \
		while (!(cond) && tu_now_ms() < until_)                                        \
			uv_run(&(h)->loop, UV_RUN_ONCE);                                       \
	} while (0)

/* Opens the harness with a pool of 4 slots and ro's runner, started. */
void rh_open(rh_t *h, const runner_opts_t *ro);
/* The daemon's stop order: stop the runner, close the pool (every lease cancelled), close
 * the fetch context (every fetch cancelled), then the runner; then audit. */
void rh_close(rh_t *h);
/* Reconciles the targets of source to those in text, a targets file with "BASE" standing
 * for the fixture's base URL. */
void rh_targets(rh_t *h, const char *source, const char *text);
/* How many snapshots of id were published. */
size_t published(rh_t *h, const char *id);
/* The runner's view of id (found 0 if it has none). */
find_t view(rh_t *h, const char *id);
/* GETs path on the fixture from the loop and waits for the answer (200 expected). */
void rh_get(rh_t *h, const char *path);
/* The newest snapshot of id published (borrowed), or NULL. */
json_t *latest(rh_t *h, const char *id);

#endif
