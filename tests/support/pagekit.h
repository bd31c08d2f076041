/*
 * pagekit: the harness of the integration tests that drive pages in a real Chromium: one
 * loop, the in-process fixture server, an lws context and one launched browser, and the
 * teardown audit every such test makes (the loop closes, none of the browser's processes
 * nor its profile dir is left, the fd count is back where it was). Written once here so
 * test_cdp_page, test_adapter_generic_page and test_livesite share it (issue 14).
 *
 * Use: embed a pagekit_t in the test's env, pk_open() it at the start of a case; at the
 * end close what the test added on top (pages first), pk_close() (browser, then fixture),
 * close whatever else lives on the loop, and pk_finish() (lws context, loop, audits).
 */
#ifndef CDPILOT_TESTS_PAGEKIT_H
#define CDPILOT_TESTS_PAGEKIT_H

#include <uv.h>

#include "cdp/cdp_ws.h"
#include "pool/browser.h"
#include "tests/fixture/fixture.h"

#define PK_WAIT_MS 30000

typedef struct pagekit {
	uv_loop_t loop;
	cdp_wsctx_t *ws;  /* NULL without a browser */
	fixture_t *fx;    /* a test that closes it itself sets it to NULL */
	browser_t *b;     /* NULL without a browser */
	int ready, ready_status;
	char ready_why[512];
	int lost;         /* the browser's on_lost was called */
	int b_closed, fx_closed;
	int fds_before, chrom_before;
	char udd[512];    /* the browser's user-data-dir, to find its processes */
	int finished;     /* pk_finish() completed: the env may be freed */
} pagekit_t;

/*
 * Zeroes k, takes the fd and Chromium baselines, starts the loop and the fixture and, with
 * with_browser, an lws context and a browser with default options, waiting until it is
 * ready (fails the test if it does not start). Requires Chromium when with_browser.
 */
void pk_open(pagekit_t *k, int with_browser);

/* Closes the browser (if any) and the fixture (unless NULL), waiting for each. */
void pk_close(pagekit_t *k);

/*
 * Closes and frees the lws context, runs the loop dry and asserts it closes; with a
 * browser, asserts none of its processes nor its profile dir is left (and reports the
 * machine-wide Chromium count); asserts the fd count is back to the baseline. Sets
 * k->finished.
 */
void pk_finish(pagekit_t *k);

/* fixture_close() callback for a test that closes k->fx itself (ud = k). */
void pk_on_fx_closed(void *ud);

#endif
