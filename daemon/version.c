/*
 * version.c: `cdpilot --version --browser`, which launches the Chromium that cdpilot would
 * run (CHROMIUM_PATH, CHROMIUM_FLAGS and CDP_URL as for `run`), asks it for
 * Browser.getVersion and prints one JSON object: cdpilot's own version, the executable,
 * and the browser's product, revision, protocol version and user agent. The test command
 * and the benchmarks print it first, so every log says which build it drove.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <uv.h>

#include "cdp/cdp_conn.h"
#include "cdp/cdp_names.h"
#include "cdp/cdp_ws.h"
#include "daemon/scrape.h"
#include "daemon/version.h"
#include "pool/browser.h"

typedef struct vq {
	browser_t *b;
	json_t *out;   /* the printed object, built as answers arrive */
	int code;      /* exit code */
	int closed;
} vq_t;

static void on_closed(browser_t *b, void *ud)
{
	((vq_t *)ud)->closed = 1;
}

static void on_version(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	vq_t *q = ud;

	if (r->status != 0) {
		fprintf(stderr, "cdpilot: Browser.getVersion failed: %s\n",
		        r->error_message ? r->error_message : "no reply");
		q->code = SCRAPE_EXIT_BROWSER;
	} else {
		json_object_update(q->out, r->result);
	}
	browser_close(q->b, on_closed, q);
}

static void on_ready(browser_t *b, int status, const char *why, void *ud)
{
	vq_t *q = ud;
	const char *exe = browser_executable(b);

	if (status != 0) {
		fprintf(stderr, "cdpilot: the browser could not start: %s\n", why ? why : "?");
		q->code = SCRAPE_EXIT_LAUNCH;
		browser_close(b, on_closed, q);
		return;
	}
	json_object_set_new(q->out, "executable", exe ? json_string(exe) : json_null());
	if (cdp_conn_send(browser_conn(b), NULL, CDP_M_BROWSER_GET_VERSION, NULL, 10000, on_version,
	                  q, NULL) != 0) {
		fprintf(stderr, "cdpilot: could not send Browser.getVersion\n");
		q->code = SCRAPE_EXIT_BROWSER;
		browser_close(b, on_closed, q);
	}
}

int version_browser_main(void)
{
	uv_loop_t loop;
	cdp_wsctx_t *ws = NULL;
	browser_opts_t bo;
	char err[512] = "";
	vq_t q = { .code = 0 };
	char *text;

	browser_opts_init(&bo);
	if (browser_opts_from_env(&bo, err, sizeof err) != 0) {
		fprintf(stderr, "cdpilot: %s\n", err);
		return SCRAPE_EXIT_USAGE;
	}
	if (uv_loop_init(&loop) != 0)
		return SCRAPE_EXIT_INTERNAL;
	q.out = json_pack("{s:s}", "cdpilot", CDPILOT_VERSION);
	ws = cdp_wsctx_new(&loop);
	q.b = ws && q.out ? browser_new(&loop, ws, &bo) : NULL;
	if (!q.b || browser_start(q.b, on_ready, NULL, &q) != 0) {
		fprintf(stderr, "cdpilot: out of memory starting the browser\n");
		q.code = SCRAPE_EXIT_INTERNAL;
		if (q.b)
			browser_close(q.b, on_closed, &q);
		else
			q.closed = 1;
	}
	/* browser_close() frees the browser once closed_cb has fired */
	while (!q.closed && uv_run(&loop, UV_RUN_ONCE))
		;
	if (ws)
		cdp_wsctx_close(ws);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (ws)
		cdp_wsctx_free(ws);
	uv_loop_close(&loop);
	if (q.code == 0 && q.out) {
		text = json_dumps(q.out, JSON_SORT_KEYS);
		if (text)
			puts(text);
		free(text);
	}
	json_decref(q.out);
	return q.code;
}
