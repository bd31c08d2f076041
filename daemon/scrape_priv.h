/*
 * scrape_priv: the state of one scrape, shared by the files of the scrape module (scrape.c
 * drives the run, scrape_cli.c turns its outcome into the result object and the exit code).
 * Not a public interface: nothing outside daemon/scrape*.c includes it.
 */
#ifndef CDPILOT_DAEMON_SCRAPE_PRIV_H
#define CDPILOT_DAEMON_SCRAPE_PRIV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cdp/cdp_page.h"
#include "cdp/cdp_ws.h"
#include "daemon/scrape.h"
#include "pool/pool.h"

enum phase {
	PH_START,
	PH_LAUNCH,
	PH_OPEN,
	PH_NAVIGATE,
	PH_WAIT,
	PH_TITLE,
	PH_EXTRACT,
	PH_SHOT,
	PH_WRITE,
	PH_CLOSING
};

typedef struct scrape {
	uv_loop_t *loop;
	const scrape_opts_t *o;
	cdp_wsctx_t *ws;
	pool_t *pool;         /* one browser, one lease: the daemon's page set-up */
	pool_lease_t *lease;  /* asked for, then granted; NULL once released */
	int granted;
	cdp_page_t *page;     /* the lease's */
	enum phase phase;
	int closing;       /* cleanup started */
	int busy;          /* an uncancellable step runs; an abort waits for it */
	int abort_pending; /* cleanup asked for while busy */
	uint64_t deadline; /* loop time, ms */
	uv_timer_t timer;
	uv_timer_t launch;    /* watches for a browser that cannot start */
	uv_signal_t sig_int, sig_term;
	int handles_open;
	int done;

	/* outcome */
	const char *kind; /* NULL: success so far */
	char message[2048];
	long http_status;
	char *final_url;
	char *title;
	json_t *data;
	uint64_t t0_ns, launch_ms, navigate_ms, total_ms;

	/* screenshot file */
	unsigned char *png;
	size_t png_len, png_off;
	uv_fs_t fs;
	uv_file fd;
	int write_err;
} scrape_t;

/* scrape_cli.c: the result object and the exit code of a finished run */
json_t *scrape__json_text(const char *text);
json_t *scrape__build_result(const scrape_t *s);

#endif
