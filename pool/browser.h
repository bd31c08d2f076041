/*
 * browser: one Chromium process (launched) or one remote browser (attached), with its
 * CDP connection. Knows processes, flags, user-data-dirs and the DevTools endpoint;
 * knows nothing of targets, leases or sinks.
 *
 * Launch: find the executable (CHROMIUM_PATH, else chromium, chromium-browser,
 * google-chrome-stable, google-chrome on PATH; a Debian shell wrapper is resolved to the
 * real binary), create a fresh temporary user-data-dir, spawn it headless with
 * --remote-debugging-port=0 through this same executable in exec-wrapper mode (which sets
 * PR_SET_PDEATHSIG and its own session before exec'ing Chromium, so the browser tree dies
 * with us), read the port from DevToolsActivePort, connect the websocket.
 * Attach: CDP_URL http://host:port (resolved through /json/version with fetch) or ws://...
 *
 * Lifecycle (a handle): browser_new() -> browser_start(ready_cb) -> ... ->
 * browser_close(closed_cb). ready_cb fires exactly once (0 with an open conn, or an
 * error with a message). on_lost fires at most once, after ready, if the browser goes
 * away on its own (process exit or socket closed); the handle must still be closed.
 * browser_close(): Browser.close, then SIGTERM, then SIGKILL after a grace, waits until
 * every process of the browser's session has exited and the socket has closed, removes the
 * user-data-dir (off the loop thread via uv_queue_work), then closed_cb fires once and the
 * memory is freed. For an attached browser only the connection is closed.
 *
 * Any program that launches browsers must call browser_exec_wrapper_main() first thing
 * in main() (see below).
 */
#ifndef CDPILOT_POOL_BROWSER_H
#define CDPILOT_POOL_BROWSER_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "cdp/cdp_conn.h"
#include "cdp/cdp_ws.h"

typedef struct browser browser_t;

typedef struct browser_opts {
	const char *chromium_path;   /* NULL: $CHROMIUM_PATH, then the PATH search */
	const char *extra_flags;     /* NULL: $CHROMIUM_FLAGS; split on spaces */
	const char *cdp_url;         /* NULL: $CDP_URL; set: attach instead of launching */
	uint32_t launch_timeout_ms;  /* spawn to websocket open; default 30000 */
	uint32_t close_grace_ms;     /* Browser.close -> SIGTERM -> SIGKILL steps; default 2000 */
	cdp_conn_opts_t conn;        /* passed to the connection */
} browser_opts_t;

typedef void (*browser_ready_cb)(browser_t *b, int status, const char *why, void *ud);
typedef void (*browser_lost_cb)(browser_t *b, int err, const char *why, void *ud);
typedef void (*browser_closed_cb)(browser_t *b, void *ud);

void browser_opts_init(browser_opts_t *o);

/*
 * Strings in opts are copied. ws is the loop's lws context (borrowed; must outlive the
 * browser). An http:// CDP_URL is resolved with a fetch context the browser owns for the
 * duration of the lookup. NULL on -ENOMEM.
 */
browser_t *browser_new(uv_loop_t *loop, cdp_wsctx_t *ws, const browser_opts_t *opts);

/* Returns 0 (ready_cb will fire) or an error (it will not). on_lost may be NULL. */
int browser_start(browser_t *b, browser_ready_cb ready_cb, browser_lost_cb on_lost,
                  void *ud);

/* The open connection after ready (borrowed; NULL before ready or after loss). */
cdp_conn_t *browser_conn(browser_t *b);

/* Main browser pid (0 when attached or not running). */
pid_t browser_pid(const browser_t *b);
/* Milliseconds from spawn to websocket open (0 until ready). */
uint64_t browser_launch_ms(const browser_t *b);
/* The path that was executed, or NULL when attached. */
const char *browser_executable(const browser_t *b);
/* The user-data-dir, or NULL when attached. */
const char *browser_user_data_dir(const browser_t *b);

void browser_close(browser_t *b, browser_closed_cb cb, void *ud);

/*
 * Exec-wrapper mode. If argv is "<exe> __cdpilot-exec <parent-pid> <chromium> args...",
 * this sets PR_SET_PDEATHSIG(SIGKILL), checks the parent is still <parent-pid>, and
 * exec's Chromium (it never returns, exit 127 on failure). Otherwise returns 0 at once.
 */
int browser_exec_wrapper_main(int argc, char **argv);

/*
 * Finds the Chromium executable as browser_start() would. Writes the path to out and
 * returns 0, or returns CDP_ENOBROWSER with a message naming everything tried in err.
 */
int browser_find_executable(const char *explicit_path, char *out, size_t outlen, char *err,
                            size_t errlen);

#endif
