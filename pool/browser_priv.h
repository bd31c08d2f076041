/*
 * browser_priv.h: what the files of the browser module share and nobody else sees: the
 * handle's struct and states, and the steps one file calls in another (browser__ names).
 * Not part of the contract: include pool/browser.h outside pool/browser*.c.
 */
#ifndef CDPILOT_POOL_BROWSER_PRIV_H
#define CDPILOT_POOL_BROWSER_PRIV_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "pool/browser.h"
#include "util/fetch.h"

#define LOG_COMP "browser"
#define PORT_FILE "DevToolsActivePort"

enum browser_state {
	BS_NEW,        /* created, not started */
	BS_RESOLVING,  /* attach: GET /json/version */
	BS_LAUNCHING,  /* spawned, waiting for DevToolsActivePort */
	BS_CONNECTING, /* websocket handshake */
	BS_READY,      /* ready_cb(0) fired; conn open */
	BS_FAILED,     /* ready_cb(error) fired */
	BS_LOST,       /* on_lost fired */
	BS_CLOSING,    /* browser_close() running */
	BS_CLOSED,     /* closed_cb about to fire */
};

struct browser {
	uv_loop_t *loop;
	cdp_wsctx_t *ws;
	enum browser_state state;

	/* options (strings owned) */
	char *opt_chromium_path;
	char *opt_extra_flags;
	char *opt_cdp_url;
	uint32_t launch_timeout_ms;
	uint32_t grace_ms;
	int allow_new_windows;
	cdp_conn_opts_t conn_opts;

	/* callbacks */
	browser_ready_cb ready_cb;
	browser_lost_cb lost_cb;
	void *ud;
	int ready_fired;
	int in_start;        /* inside browser_start(): failures are reported from the loop */
	int deferred_status; /* failure found inside browser_start(), reported from the loop */
	char deferred_why[1536];
	browser_closed_cb closed_cb;
	void *closed_ud;

	/* what we run or attach to */
	int attached;
	char *exe;        /* launched: the path executed */
	char *udd;        /* launched: the user-data-dir (NULL until made) */
	int lock_fd;      /* launched: OWNER_LOCK in udd, flock()ed; -1 if none */
	char *attach_url; /* attached: CDP_URL as given */
	char ws_url[1024];
	char port_prev[512]; /* last partial DevToolsActivePort content seen */

	/* the process */
	uv_process_t proc;
	int proc_inited;  /* uv_spawn() was called: the handle must be closed */
	int proc_running; /* spawned and not yet reaped by libuv */
	int proc_closed;  /* the handle's close callback ran */
	pid_t pid;        /* main pid = its session and process group id; kept after exit */
	int pidfd;
	int64_t exit_status;
	int term_signal;
	uint64_t spawn_ns, exit_ms;
	uint64_t launch_ms;
	int session_empty;
	int straggler_kills;

	/* timers */
	uv_timer_t t_launch; /* launch deadline; also reports deferred failures */
	uv_timer_t t_poll;   /* DevToolsActivePort poll, later the session scan */
	uv_timer_t t_kill;   /* close: Browser.close -> SIGTERM -> SIGKILL */
	int kill_step;
	int timers_open;

	/* attach lookup */
	fetch_ctx_t *fetch;
	int fetch_closing;

	/* connection */
	cdp_conn_t *conn;
	int connect_pending;
	int conn_lost;
	int conn_closing;
	int conn_closed;
	char lost_why[512];

	/* close */
	uint64_t close_start_ms;
	int rm_started;
	int rm_rc;
	uv_work_t rm_work;
};

/* browser.c */
void browser__set_state(browser_t *b, enum browser_state next);
const char *browser__env_nonempty(const char *name);
void browser__launch_fail(browser_t *b, int status, const char *why);
void browser__on_launch_timer(uv_timer_t *t);
void browser__check_lost(browser_t *b);
void browser__start_connect(browser_t *b);
void browser__close_progress(browser_t *b);

/* browser_launch.c */
int browser__launch(browser_t *b);

/* browser_attach.c */
int browser__attach(browser_t *b, const char *url);
void browser__on_fetch_closed(void *ud);

/* browser_sweep.c */
void browser__lock_profile(browser_t *b);

#endif
