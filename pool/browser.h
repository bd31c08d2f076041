/*
 * browser: one Chromium process (launched) or one remote browser (attached), with its
 * CDP connection. Knows processes, flags, user-data-dirs and the DevTools endpoint;
 * knows nothing of targets, leases or sinks.
 *
 * Launch: find the executable (CHROMIUM_PATH, else chromium-headless-shell, chromium,
 * chromium-browser, google-chrome-stable, google-chrome on PATH; a Debian shell wrapper is
 * resolved to the real binary), create a fresh temporary user-data-dir, spawn it headless with
 * --remote-debugging-port=0 through this same executable in exec-wrapper mode (which sets
 * PR_SET_PDEATHSIG and its own session before exec'ing Chromium, so the browser tree dies
 * with us), read the port from DevToolsActivePort, connect the websocket.
 * Attach: CDP_URL http://host:port (resolved through /json/version with fetch) or ws://...
 *
 * Lifecycle (a handle): browser_new() -> browser_start(ready_cb) -> ... ->
 * browser_close(closed_cb). ready_cb fires exactly once, always from the loop (never from
 * inside browser_start()): 0 with an open conn, or an error with a message (CDP_ENOBROWSER
 * not found / exited early, -ETIMEDOUT, CDP_ECONNLOST websocket, CDP_EBADREPLY or a fetch
 * error for a bad /json/version, -EINVAL bad CDP_URL, -ECANCELED if browser_close() came
 * first). After a failure the handle must still be closed; a launched process is already
 * being killed. on_lost fires at most once, after ready and never after browser_close(),
 * when the browser has gone away on its own: a launched browser only once BOTH its main
 * process has exited and its socket has closed (if the socket closes and the process is
 * still there after close_grace_ms, it is SIGKILLed); an attached one when its socket
 * closes. err is CDP_ECONNLOST. The handle must still be closed.
 * browser_close(): Browser.close, then SIGTERM, then SIGKILL after a grace, waits until
 * every process of the browser's session has exited and the socket has closed, removes the
 * user-data-dir (off the loop thread via uv_queue_work), then closed_cb fires once and the
 * memory is freed. For an attached browser only the connection is closed. Callbacks may
 * call browser_close(); the memory is freed only after closed_cb returns.
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
	int allow_new_windows;       /* 0 (default): a launched browser gets
	                              * --block-new-web-contents, so no page can open a popup
	                              * (window.open returns null, target=_blank opens nothing);
	                              * the headless shell honours it, the full chromium does
	                              * not. 1: popups open (tests of the pool's closing path) */
	cdp_conn_opts_t conn;        /* passed to the connection */
} browser_opts_t;

typedef void (*browser_ready_cb)(browser_t *b, int status, const char *why, void *ud);
typedef void (*browser_lost_cb)(browser_t *b, int err, const char *why, void *ud);
typedef void (*browser_closed_cb)(browser_t *b, void *ud);

void browser_opts_init(browser_opts_t *o);

/*
 * Settings from the environment that the browser module owns: CDP_MAX_MESSAGE_MB (the cap
 * for one CDP message either way, 1..1024, default 64). Returns 0, or -EINVAL with err
 * naming the variable, its value and what was expected (appended after a newline if err
 * already holds text).
 */
int browser_opts_from_env(browser_opts_t *o, char *err, size_t errlen);

/*
 * Removes user-data-dirs left in $TMPDIR (default /tmp) by cdpilot processes that were
 * killed (SIGKILL leaves no one to clean up; PR_SET_PDEATHSIG kills Chromium, not its
 * profile): a cdpilot-chromium-* dir whose cdpilot.lock nobody holds (the launching
 * cdpilot flock()s it for the browser's life; a lock is seen from every PID namespace).
 * A dir without that file (made by an older cdpilot) is taken if Chromium's SingletonLock
 * names a pid that no longer exists, or it has no lock and is over 10 minutes old, and its
 * SingletonSocket answers nobody. A dir of a live browser is never touched.
 * Synchronous: call at startup, before the loop serves anything. Returns how many it
 * removed (logged).
 */
int browser_sweep_stale_dirs(void);

/*
 * Strings in opts are copied. ws is the loop's lws context (borrowed; must outlive the
 * browser). An http:// CDP_URL is resolved with a fetch context the browser owns for the
 * duration of the lookup. NULL on -ENOMEM.
 */
browser_t *browser_new(uv_loop_t *loop, cdp_wsctx_t *ws, const browser_opts_t *opts);

/*
 * Returns 0 (ready_cb will fire) or -EINVAL (ready_cb NULL or already started; it will
 * not) or -ENOMEM. Every other failure, including "no Chromium found", comes through
 * ready_cb with a message. on_lost may be NULL.
 */
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

/*
 * Safe in every state (never started, launching, connecting, ready, failed, lost,
 * attached). If ready_cb has not fired yet it fires first, with -ECANCELED. closed_cb
 * fires once, from the loop; a second browser_close() is ignored (logged). Grace steps
 * are opts.close_grace_ms; stragglers of the session still alive close_grace_ms after the
 * main process exited are SIGKILLed one by one.
 */
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
 * explicit_path (else $CHROMIUM_PATH) is used exactly as given, and if it is not an
 * executable file that is an error naming it (no fallback to PATH). A PATH hit that is a
 * shell script (Debian's /usr/bin/chromium-headless-shell, /usr/bin/chromium) is replaced
 * by the binary of the same name in /usr/lib/chromium (else /usr/lib/chromium/chromium)
 * when that exists. Logs which path it chose. Does not touch the loop.
 */
int browser_find_executable(const char *explicit_path, char *out, size_t outlen, char *err,
                            size_t errlen);

/*
 * The /proc helpers browser_close() uses to wait for a browser's whole process tree,
 * public so tests and fuzzers can drive them on fake input.
 *
 * browser_parse_proc_stat() reads the content of a /proc/PID/stat file (len bytes, need
 * not be NUL-terminated). The command name may contain spaces and ')', so fields are
 * counted from the LAST ')'. Writes the state letter (field 3) and the session id
 * (field 6). Returns 0, or -EINVAL if the text does not have that shape.
 *
 * browser_session_members() scans proc_root (normally "/proc"; a fake tree in a temp dir
 * for tests) for processes whose session id is sid, skipping zombies ('Z', 'X': they hold
 * nothing but a pid until their parent reaps them). Writes up to max of their pids to pids
 * (may be NULL) and returns how many there are, or a negative errno if proc_root cannot be
 * read.
 */
int browser_parse_proc_stat(const char *buf, size_t len, char *state, pid_t *sid);
int browser_session_members(const char *proc_root, pid_t sid, pid_t *pids, size_t max);

#endif
