/*
 * cdp_page: one page in its own browser context, driven over a flattened session:
 * open (createBrowserContext + createTarget + attachToTarget{flatten}, or the session
 * Chrome attached to a held page: cdp_hold_pages), navigate and wait for the load event,
 * wait for a CSS selector (visible, or attached), evaluate an expression, call a function
 * given as source (cdp_page_call), run page actions (click, fill, press, scroll, waits),
 * screenshot, close (disposeBrowserContext, which takes every target of the context with
 * it, popups too); and cdp_page_read(), the navigate -> actions -> wait -> evaluate (or
 * call) sequence composed into one operation with one deadline.
 * Pure CDP: knows nothing of pools, targets or sinks.
 *
 * Ownership: the page belongs to the caller from open_cb until cdp_page_close(); the conn
 * is borrowed and must outlive it. One operation at a time: a second one while another
 * is running returns -EBUSY. Each operation is a request: it returns an error and never
 * calls back, or returns 0 and its callback fires exactly once from the loop. If the
 * renderer crashes, the running operation fails with CDP_ECRASHED; if the connection
 * drops, with CDP_ECONNLOST. Strings and JSON given to callbacks are borrowed until the
 * callback returns. Callbacks may start the next operation or close the page.
 *
 * Every timeout_ms of 0 means 30000. An operation that times out fails alone with
 * -ETIMEDOUT: its command is cancelled (a late reply is dropped) and the page stays usable.
 * After a crash (or the target going away), new operations return CDP_ECRASHED at once.
 */
#ifndef CDPILOT_CDP_PAGE_H
#define CDPILOT_CDP_PAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cdp/cdp_conn.h"
#include "util/netpolicy.h"

typedef struct cdp_page cdp_page_t;

typedef struct cdp_hold cdp_hold_t;

typedef struct cdp_page_opts {
	/* The connection holds new pages (cdp_hold_pages(), below): the page's session is the
	 * one Chrome attached to it, paused before its first request, and the page runs only
	 * once the whole set-up is in place. Then every page on that connection must be
	 * opened with it (a held page nobody claims never loads). Borrowed for the open. */
	const cdp_hold_t *hold;
	/* With hold: the target is created straight at this URL, which saves a whole
	 * navigation (about a fifth of Chromium's work for a small page), and the first
	 * cdp_page_navigate() to the same URL waits for that load instead of starting another.
	 * The set-up (hygiene, user agent, headers, blocking) covers that first document from
	 * its first request and first script. Chrome answers the set-up only once that
	 * navigation has committed or failed: the open may take as long. NULL, or no hold (a
	 * page not held would load before its set-up): about:blank. */
	const char *url;
	const char *user_agent; /* NULL: Chromium's own */
	int viewport_width;     /* 0: Chromium's default (800x600 headless) */
	int viewport_height;
	/* Page hygiene (all off when zero/NULL): */
	int dismiss_dialogs;            /* alert/confirm/prompt/beforeunload answered at once */
	int block_popups;               /* window.open returns null in every frame, and links,
	                                   areas and forms aimed at a new window do nothing (what
	                                   still opens a window, the pool closes) */
	const char *block_resources;    /* comma list of CDP resource types in lower case
	                                   (image,media,font,...): failed with BlockedByClient */
	const char *extra_headers_json; /* a JSON object of extra request headers */
	/* A JSON array of cookies, each {name, value, domain?, path?, url?, secure?, httpOnly?,
	 * expires?} (one of domain and url at least), set with Network.setCookies in the
	 * page's own browser context during the set-up, so a held page opened at its URL sends
	 * them with its first request. Not an array: cdp_page_open() returns -EINVAL; a cookie
	 * Chrome refuses fails the open naming Network.setCookies. */
	const char *cookies_json;
	/* No frames: the target is created with BeginFrames under DevTools' control
	 * (Target.createTarget enableBeginFrameControl, headless only) and none is ever sent,
	 * so the page is never painted nor composited: requestAnimationFrame callbacks never
	 * run and a screenshot never completes; scripts, timers, the network, the DOM and
	 * layout (when a script asks for it) work as ever. For long-lived watched pages
	 * (about a third less Chromium CPU and a quarter less memory each, bench/README.md). */
	int no_frames;
	/* Every request of the page goes to the network, as in a new context whose cache is
	 * empty: the HTTP cache is ignored (Network.setCacheDisabled) and service workers are
	 * bypassed (Network.setBypassServiceWorker). For a page that serves several loads (the
	 * pool's kept pages), so that none reads what an earlier one left. */
	int no_cache;
} cdp_page_opts_t;

/* Hygiene counters of one page, for the pool's metrics. */
typedef struct cdp_page_counters {
	uint64_t dialogs_dismissed;
	uint64_t requests_blocked;
} cdp_page_counters_t;

typedef void (*cdp_page_open_cb)(cdp_page_t *page, int status, const char *why, void *ud);

typedef struct cdp_nav_result {
	int status;             /* 0, CDP_ENAV (errorText says why), -ETIMEDOUT, CDP_ECRASHED,
	                           CDP_ECONNLOST, ... */
	long http_status;       /* main document's HTTP status, 0 if none was seen */
	const char *final_url;  /* URL after redirects; never NULL */
	const char *message;    /* error text, "" on success; never NULL */
} cdp_nav_result_t;

typedef void (*cdp_page_nav_cb)(cdp_page_t *page, const cdp_nav_result_t *res, void *ud);
typedef void (*cdp_page_done_cb)(cdp_page_t *page, int status, const char *why, void *ud);
/* value: the returned value (returnByValue), borrowed; NULL on error. undefined is JSON
 * null; NaN, Infinity, -0 and BigInt values are their text as a JSON string. For
 * CDP_EEXCEPTION, why holds the exception's description (or Chrome's text for it). */
typedef void (*cdp_page_eval_cb)(cdp_page_t *page, int status, json_t *value,
                                 const char *why, void *ud);
typedef void (*cdp_page_shot_cb)(cdp_page_t *page, int status, const unsigned char *png,
                                 size_t len, const char *why, void *ud);
typedef void (*cdp_page_closed_cb)(void *ud);

/*
 * opts may be NULL (strings in it are copied). timeout_ms bounds the whole open. The page's
 * session has the Page and Network domains and lifecycle events on, and not the Runtime
 * domain (its events are wanted by nobody here; a caller that needs bindings enables it).
 * On success cb gets the page (status 0). On failure whatever was created is disposed
 * first, then cb fires with page NULL (nothing to close), the error and a message naming
 * the step.
 */
int cdp_page_open(cdp_conn_t *conn, const cdp_page_opts_t *opts, uint32_t timeout_ms,
                  cdp_page_open_cb cb, void *ud);

/*
 * Navigates and waits for the load event of this navigation (Page.lifecycleEvent "load"
 * with its loaderId; Page.loadEventFired if lifecycle events are unavailable), at most
 * timeout_ms. An HTTP error page still loads: status 0 with http_status >= 400. Chrome's
 * errorText (net::ERR_...) gives CDP_ENAV. On -ETIMEDOUT the navigation is stopped
 * (Page.stopLoading), since Chrome holds the session's later commands until a pending
 * navigation ends, so the page stays usable.
 */
int cdp_page_navigate(cdp_page_t *page, const char *url, uint32_t timeout_ms,
                      cdp_page_nav_cb cb, void *ud);

/* What a wait for a selector waits for. */
typedef enum cdp_wait_state {
	/* an element matching the selector is visible: it has a box (getBoundingClientRect()
	 * with a non-zero width and height, so neither display:none nor an empty placeholder)
	 * and getComputedStyle(el).visibility is not 'hidden'; as Playwright's default */
	CDP_WAIT_VISIBLE = 0,
	/* an element matches the selector (document.querySelector), whatever it looks like */
	CDP_WAIT_ATTACHED
} cdp_wait_state_t;

/*
 * Waits until css matches an element in state (checked every 100 ms); -ETIMEDOUT. The
 * selector reaches the page as a JSON string literal, never as code. A selector the page
 * cannot parse gives CDP_EEXCEPTION ("... is not a valid selector").
 */
int cdp_page_wait_for_state(cdp_page_t *page, const char *css, cdp_wait_state_t state,
                            uint32_t timeout_ms, cdp_page_done_cb cb, void *ud);

/* cdp_page_wait_for_state(page, css, CDP_WAIT_VISIBLE, ...). */
int cdp_page_wait_for(cdp_page_t *page, const char *css, uint32_t timeout_ms,
                      cdp_page_done_cb cb, void *ud);

/* Runtime.evaluate with returnByValue and awaitPromise. */
int cdp_page_evaluate(cdp_page_t *page, const char *expression, uint32_t timeout_ms,
                      cdp_page_eval_cb cb, void *ud);

/*
 * Calls a function given as source in the page and returns its value, a JSON object.
 * function_source is the declaration exactly as given (an arrow, a function or an async
 * function), called with this = globalThis and args as its arguments (a JSON array, each
 * element one argument, passed as data; NULL: none), awaited (Runtime.callFunctionOn with
 * returnByValue false and awaitPromise). Its value is then checked in the page by a fixed
 * function of ours: it must be an object (not null, not an array) whose JSON text
 * (JSON.stringify, so toJSON and the usual dropping of undefined apply) is at most
 * value_cap bytes (0: 256 KiB) of UTF-8. cb gets the parsed object (borrowed) with
 * status 0, or NULL and:
 *  CDP_EEXCEPTION: why = the exception's message and " (line N)", N 1-based in
 *                  function_source, when the page says where (a throw, a syntax error in
 *                  the source, a promise rejected with an Error);
 *  CDP_EVALUE:     why = "returned a number, expected a JSON object" (string, boolean,
 *                  undefined, null, an array, a function, ...), "returned 300123 bytes of
 *                  JSON, over the cap of 262144", or "returned a value JSON cannot hold:
 *                  <the page's message>" (a cycle, a BigInt, ...);
 *  -ETIMEDOUT:     the function did not return (or its promise did not settle) within
 *                  timeout_ms; the page stays usable;
 *  and the usual operation errors. Every remote object the call creates belongs to one
 *  object group of the page, released (Runtime.releaseObjectGroup) at the end of every
 *  call, whatever its outcome, so a page called every few seconds for days accumulates
 *  nothing (a promise settling after its call timed out is released by the next call).
 * Returns -EINVAL for a NULL source or cb, args not an array, or text that is not UTF-8.
 */
int cdp_page_call(cdp_page_t *page, const char *function_source, const json_t *args,
                  size_t value_cap, uint32_t timeout_ms, cdp_page_eval_cb cb, void *ud);

/* The cap cdp_page_call() applies for a value_cap of 0. */
#define CDP_CALL_VALUE_CAP_DEFAULT (256u * 1024)

/* An optional action waits at most this long for its element, unless it says otherwise. */
#define CDP_ACTION_OPTIONAL_WAIT_MS 2000u

/*
 * Runs page actions in order, all within timeout_ms. actions is a JSON array (borrowed for
 * the call: it is copied) of steps, each an object with exactly one verb key, plus
 * "optional": true and "timeout_ms": N (caps the step; never beyond the whole deadline):
 *   {"click": CSS}            waits for a visible match, scrolls it into view, clicks its
 *                             centre (Input.dispatchMouseEvent moved, pressed, released)
 *   {"wait_for": CSS, "state": "visible"|"attached"}   (state default visible)
 *   {"wait_ms": N}            0..60000
 *   {"scroll": "bottom"|"top"|CSS}  CSS: waits for a match, scrollIntoView
 *   {"fill": [CSS, TEXT]}     waits for a visible match, focuses it, clears its value,
 *                             Input.insertText TEXT (input events fire)
 *   {"press": KEY}            keyDown + keyUp to the focused element: Enter, Tab, Escape,
 *                             Backspace, Delete, ArrowUp, ArrowDown, ArrowLeft,
 *                             ArrowRight, PageUp, PageDown, Home, End, Space, or one
 *                             printable character
 * Selectors and text reach the page as data (JSON literals or command parameters). An
 * optional step waits at most CDP_ACTION_OPTIONAL_WAIT_MS for its element (unless its
 * timeout_ms says otherwise); an optional step that fails, for whatever reason, is skipped
 * (logged at debug). cb gets 0, or the failed step's status (-ETIMEDOUT when its element
 * never came or the whole deadline passed, CDP_EEXCEPTION for a selector the page cannot
 * parse, ...) with why naming it: `actions[2] click "#tab-live": no visible element
 * matched within 4.0 s` (the step is named by its verb and its selector, key, scroll
 * target or milliseconds; a fill by its selector only). Returns -EINVAL (and never calls
 * back) for a malformed list: not an array, a step that is not an object, no verb or two,
 * an unknown key, a value of the wrong type or range, an unknown key name.
 */
int cdp_page_actions(cdp_page_t *page, const json_t *actions, uint32_t timeout_ms,
                     cdp_page_done_cb cb, void *ud);

/* Page.captureScreenshot as PNG (full_page: the whole scrollable page), base64-decoded. */
int cdp_page_screenshot(cdp_page_t *page, int full_page, uint32_t timeout_ms,
                        cdp_page_shot_cb cb, void *ud);

/* ---- the composed read: navigate, wait for a selector, evaluate ---- */

/* The steps of a read, in the order they run; CDP_READ_NONE: no step (failed or running). */
typedef enum cdp_read_step {
	CDP_READ_NONE = 0,
	CDP_READ_NAV,
	CDP_READ_ACTIONS,
	CDP_READ_WAIT,
	CDP_READ_EVAL
} cdp_read_step_t;

/* What to read. Every step is optional, but one at least is asked for. Strings are copied,
 * JSON is copied (json_deep_copy). */
typedef struct cdp_read_req {
	const char *url;        /* navigate here first; NULL: the page as it is */
	const json_t *actions;  /* then run these (cdp_page_actions); NULL or []: none */
	const char *wait_for;   /* then wait for this CSS selector; NULL or "": no wait */
	cdp_wait_state_t wait_state; /* in this state (0: visible) */
	const char *expression; /* then evaluate this; NULL: no evaluation */
	/* or, instead of expression, call this function (cdp_page_call) with args (a JSON
	 * array or NULL) and value_cap (0: CDP_CALL_VALUE_CAP_DEFAULT); giving both
	 * expression and function is -EINVAL */
	const char *function;
	const json_t *args;
	size_t value_cap;
	uint32_t timeout_ms;    /* bounds the whole read; 0: 30000 */
	/* Each step gets what is left of timeout_ms, or its own cap if that is less
	 * (0: no cap of its own). */
	uint32_t nav_timeout_ms, wait_timeout_ms, eval_timeout_ms;
} cdp_read_req_t;

typedef struct cdp_read_result {
	/* The step that failed (CDP_READ_NONE: every step asked for succeeded) and its
	 * status: the step's own (as its callback above would give it), or CDP_EHTTP when
	 * the navigation loaded a page with an HTTP status >= 400. */
	cdp_read_step_t failed;
	int status;
	/* The failed step never ran: starting it returned status (the page crashed or lost
	 * its connection between two steps, ...). */
	int not_started;
	const char *why;       /* the failed step's text ("HTTP 404" for CDP_EHTTP); "" on
	                          success; never NULL */
	cdp_nav_result_t nav;  /* with url: the navigation's outcome (what its callback got;
	                          when the read failed there, nav.status != 0 or
	                          nav.http_status >= 400); without: zeros and "" */
	uint64_t nav_ms;       /* how long the navigation took (0 without url) */
	json_t *value;         /* the expression's or function's value (see cdp_page_eval_cb,
	                          cdp_page_call); NULL unless that step ran and succeeded */
} cdp_read_result_t;

typedef void (*cdp_page_read_cb)(cdp_page_t *page, const cdp_read_result_t *res, void *ud);

/*
 * Runs the steps asked for one after the other with the operations above: navigate (an
 * HTTP status >= 400 ends the read there, with CDP_EHTTP), run the actions, wait for the
 * selector, evaluate the expression or call the function, all within req->timeout_ms.
 * The actions step has no cap of its own (what is left of the read's time). The first failure ends the read; later steps
 * do not run. A read is one operation: while it runs, the page is never idle between two
 * steps, so any other operation returns -EBUSY.
 *
 * Returns -EINVAL (no step asked for, no cb, a malformed actions list, both expression
 * and function), -ENOMEM, or the first step's own error, and
 * then never calls back. Otherwise returns 0 and cb fires exactly once from the loop, also
 * when the page is closed while the read runs (cdp_page_close() from anywhere, or the
 * pool closing the page of a revoked lease): the running step is cancelled like any
 * operation, cb fires before cdp_page_close() returns with that step in failed and
 * -ECANCELED in status, and no later step starts. A crash or a lost connection ends the
 * running step (and so the read) with CDP_ECRASHED or CDP_ECONNLOST as above. Everything
 * in res is borrowed until cb returns; cb may close the page or start the next operation.
 */
int cdp_page_read(cdp_page_t *page, const cdp_read_req_t *req, cdp_page_read_cb cb, void *ud);

/* The step the page's running read is at; CDP_READ_NONE when no read runs (also inside its
 * callback). For a caller that reports what it was doing when its own timer or a signal
 * cut the read short. */
cdp_read_step_t cdp_page_read_step(const cdp_page_t *page);

/* 1 if an operation could start on the page now: open, not crashed, its connection up, and
 * no operation or read running (the pool keeps such a page for another task of its site). */
int cdp_page_is_idle(const cdp_page_t *page);

/*
 * Cancels any running operation (its callback fires with -ECANCELED before this returns;
 * operations started from that callback fail with -ECANCELED), disposes the browser
 * context (Target.disposeBrowserContext, at most 5 s; a failure is logged), then cb (may be
 * NULL) fires once from the loop and the page is freed. Safe from any page callback.
 * Calling it twice is a bug: the second call is logged and ignored.
 */
void cdp_page_close(cdp_page_t *page, cdp_page_closed_cb cb, void *ud);

/*
 * Browser-wide request blocking, for a caller that owns the whole browser: Fetch.enable on
 * the browser session with the patterns of list (the block_resources syntax), so it holds
 * in every page from its first request on (a page's own Fetch.enable is only in force once
 * its first document has committed, too late for a page opened at its URL). Each paused
 * request is failed with BlockedByClient and counted in *blocked, which must outlive the
 * listener returned in *out (NULL if list is empty); remove it with cdp_conn_off() before
 * the connection is closed. A failing Fetch.enable is logged. 0, -EINVAL for an unknown
 * type, -ENOMEM, or the send's error.
 */
int cdp_block_browser(cdp_conn_t *conn, const char *list, uint64_t *blocked,
                      cdp_listener_t **out);

/* Whether a request paused by browser-wide blocking is exempt (let through with
 * Fetch.continueRequest, not counted): frame_id is the paused request's frameId (a page's
 * main frame has its target's id), "" if Chrome gave none. Called from the loop. */
typedef int (*cdp_block_exempt_cb)(const char *frame_id, void *ud);

/* A document request refused by the policy: frame_id as above, url the request's (a
 * redirect's next hop has its own), why the rule (netpolicy_check_url). Called from the
 * loop before the request is failed, so a note left on the page (cdp_page_note_refusal)
 * is there when its navigation fails. */
typedef void (*cdp_block_refused_cb)(const char *frame_id, const char *url, const char *why,
                                     void *ud);

/* Browser-wide blocking with exemptions and a target policy: the caller's, and it must
 * outlive the listener. */
typedef struct cdp_block {
	uint64_t *blocked;          /* counts the requests failed by type */
	cdp_block_exempt_cb exempt; /* may be NULL: nothing is exempt */
	void *ud;
	/* May be NULL. Otherwise every Document request (each hop of a redirect, main frame or
	 * not, exempt or not) is paused too and checked against it at the request stage: one
	 * whose URL's host the policy refuses is failed with AccessDenied (refused is told
	 * first, if not NULL); the others go on unless their type is blocked. */
	const netpolicy_t *policy;
	cdp_block_refused_cb refused;
	int documents_blocked; /* set by cdp_block_browser_ex: "document" is in its list */
} cdp_block_t;

/* cdp_block_browser() asking blk->exempt about each paused request and checking document
 * requests against blk->policy. list may be "none" or "" (no type blocked): with a policy
 * that refuses anything, only Document requests are paused then; with neither, *out is
 * NULL and nothing is enabled. */
int cdp_block_browser_ex(cdp_conn_t *conn, const char *list, cdp_block_t *blk,
                         cdp_listener_t **out);

/* The message of this page's next failed navigation, in place of Chrome's error text
 * (which is kept after it in brackets): why a request of it was refused, for a caller
 * that refuses requests itself (cdp_block_browser_ex's refused). NULL forgets it; so does
 * starting a navigation (not adopting the one the page was opened with) and every
 * navigation's end. Copied. */
void cdp_page_note_refusal(cdp_page_t *page, const char *why);

/*
 * Holding new pages, for a caller that owns the whole browser: Target.setAutoAttach on the
 * browser session (flattened, page targets only, waitForDebuggerOnStart), so every new page
 * waits, before its first request, until its session is set up and
 * Runtime.runIfWaitingForDebugger lets it go. cdp_page_open() with opts.hold claims its own
 * page's session that way; a page nobody claims (a popup) stays paused until closed. The
 * hold belongs to the caller; cdp_hold_free() frees it (Chrome goes on holding new pages
 * on that connection). If Chrome refuses (logged), pages opened with it start at
 * about:blank, set up before they navigate.
 * 0, -ENOMEM, or the send's error.
 */
int cdp_hold_pages(cdp_conn_t *conn, cdp_hold_t **out);
void cdp_hold_free(cdp_hold_t *hold);

const char *cdp_page_session_id(const cdp_page_t *page);
const char *cdp_page_target_id(const cdp_page_t *page);
const char *cdp_page_context_id(const cdp_page_t *page);
cdp_conn_t *cdp_page_conn(const cdp_page_t *page);
void cdp_page_get_counters(const cdp_page_t *page, cdp_page_counters_t *out);

#endif
