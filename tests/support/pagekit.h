/*
 * pagekit: the harness of the integration tests that drive pages in a real Chromium: one
 * loop, the in-process fixture server, an lws context and one launched browser, and the
 * teardown audit every such test makes (the loop closes, none of the browser's processes
 * nor its profile dir is left, the fd count is back where it was). Written once here so
 * test_cdp_page, test_adapter_generic_page and test_livesite share it (issue 14).
 *
 * Use: embed a pagekit_t in the test's env, pk_open() it at the start of a case; at the
 * end close what the test added on top (pages first), pk_close() (the kit's page, browser,
 * then fixture), close whatever else lives on the loop, and pk_finish() (lws context, loop,
 * audits). A test that drives one page opens it with pk_page_open() and drives it with
 * pk_navigate(), pk_wait_for() and pk_evaluate(), each of which runs the loop until done
 * and fails the test when the operation fails. A test that drives several pages opens and
 * closes them with pk_new_page() and pk_close_page().
 */
#ifndef CDPILOT_TESTS_PAGEKIT_H
#define CDPILOT_TESTS_PAGEKIT_H

#include <uv.h>

#include "cdp/cdp_page.h"
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
	/* the one page of pk_page_open() and the outcome of the last pk_page_* operation */
	cdp_page_t *page;
	int page_closed;
	int done, status;
	long http_status; /* of the last pk_navigate() */
	json_t *value;
	char why[1024];
} pagekit_t;

/* cmocka setup and teardown of a case whose state is one pagekit_t on the heap; teardown
 * frees it only once pk_finish() has completed (tu_state_release). */
int pk_setup(void **state);
int pk_teardown(void **state);

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

/* Opens a page in k's browser with default options and returns it; fails the test if it
 * does not open or lacks its session, target or context id. pk_close() does not know it:
 * close it with pk_close_page(). */
cdp_page_t *pk_new_page(pagekit_t *k);
/* Closes p, running the loop until it is closed (fails the test if it is not). */
void pk_close_page(pagekit_t *k, cdp_page_t *p);

/* Opens k->page in the browser (pk_new_page()). */
void pk_page_open(pagekit_t *k);
/* Navigates k->page to the fixture's path; sets k->http_status. */
void pk_navigate(pagekit_t *k, const char *path);
/* Waits (10 s at most) for selector on k->page. */
void pk_wait_for(pagekit_t *k, const char *selector);
/* Evaluates js on k->page; returns its value (new reference, may be NULL). */
json_t *pk_evaluate(pagekit_t *k, const char *js);

/* fixture_close() callback for a test that closes k->fx itself (ud = k). */
void pk_on_fx_closed(void *ud);

#endif
