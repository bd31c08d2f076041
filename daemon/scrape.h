/*
 * scrape: the one-shot `cdpilot scrape URL` command. Launches (or attaches to) a browser,
 * takes one page from a pool of one (the daemon's page set-up: held page, dialogs
 * dismissed, popups closed, downloads denied, blocking and the page settings of the
 * environment), navigates, optionally waits for a selector, extracts
 * a value with JavaScript, optionally writes a full-page PNG, then closes everything and
 * describes the outcome as one JSON object. Everything runs on the caller's loop; one
 * uv_timer bounds the whole run and SIGINT/SIGTERM end it early, always with the normal
 * cleanup (page context disposed, browser closed, its process tree and temp dir gone).
 */
#ifndef CDPILOT_DAEMON_SCRAPE_H
#define CDPILOT_DAEMON_SCRAPE_H

#include <jansson.h>
#include <stdio.h>
#include <uv.h>

/* Process exit codes, also documented by `cdpilot --help`. */
enum scrape_exit {
	SCRAPE_EXIT_OK = 0,
	SCRAPE_EXIT_USAGE = 2,
	SCRAPE_EXIT_LAUNCH = 3,   /* browser could not start / attach */
	SCRAPE_EXIT_NETWORK = 4,  /* DNS or connection error */
	SCRAPE_EXIT_HTTP = 5,     /* main document status >= 400 */
	SCRAPE_EXIT_TIMEOUT = 6,  /* --timeout expired */
	SCRAPE_EXIT_SELECTOR = 7, /* --wait-for never matched before the timeout */
	SCRAPE_EXIT_SCRIPT = 8,   /* exception in --extract */
	SCRAPE_EXIT_BROWSER = 9,  /* crash / connection lost */
	SCRAPE_EXIT_INTERNAL = 10,
	SCRAPE_EXIT_ACTION = 11,  /* cdpilot try: a page action of the target failed */
	SCRAPE_EXIT_DATA = 12,    /* cdpilot try: the page's value did not validate */
};

typedef struct scrape_opts {
	const char *url;        /* http, https, file or about URL (borrowed from argv) */
	const char *wait_for;   /* CSS selector or NULL */
	int wait_attached;      /* --wait-state attached: any matching element; default
	                           visible (a box, not visibility:hidden) */
	const char *extract;    /* JavaScript expression or NULL for the default */
	const char *screenshot; /* path of the PNG to write or NULL */
	double timeout_s;       /* whole run; (0, 3600] */
} scrape_opts_t;

/* The exit code of an error kind ("selector" -> 7; an unknown kind: SCRAPE_EXIT_INTERNAL).
 * `cdpilot try` uses the same codes. */
int scrape_exit_code_for(const char *kind);

/* The expression --extract defaults to. */
extern const char scrape_default_extract[];

/*
 * Parses the arguments after "scrape" (argv[0] is the first of them). Returns 0 with o
 * filled (strings borrowed from argv), 1 if --help was asked for (nothing else checked),
 * or -EINVAL with one line in err naming the flag or value and what was expected.
 */
int scrape_parse_args(int argc, char **argv, scrape_opts_t *o, char *err, size_t errlen);

/* Writes the help of `cdpilot scrape` (options and exit codes) to f. */
void scrape_usage(FILE *f);

/*
 * Runs one scrape on loop, which the caller owns and closes: when this returns, nothing of
 * the scrape is left on the loop, so uv_loop_close() returns 0. *out receives a new
 * reference to the result object ({url, final_url, http_status, title, data, timings} or
 * {url, error: {kind, message}}). Returns the process exit code (enum scrape_exit).
 */
int scrape_run(uv_loop_t *loop, const scrape_opts_t *o, json_t **out);

#endif
