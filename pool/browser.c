/*
 * browser: the core of the browser handle. It holds the state machine and its checked
 * setter, the CDP connection and the two-event rendezvous (the browser is lost only once its
 * process has exited and its socket has closed), the public constructor, start and accessors,
 * and the close: Browser.close -> SIGTERM -> SIGKILL, wait until no process of the browser's
 * session is left, remove the profile on the thread pool, and only then call back and free.
 * Finding and launching Chromium is in browser_launch.c, CDP_URL in browser_attach.c, the
 * profile lock and the sweep of stale profiles in browser_sweep.c, the /proc scan in
 * browser_proc.c. Every step runs on the caller's loop.
 */
#include "pool/browser.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_names.h"
#include "pool/browser_priv.h"
#include "util/envnum.h"
#include "util/fetch.h"
#include "util/log.h"

#define SESSION_POLL_MS 50
#define MAX_STRAGGLERS 256

/* ---- state ---- */

static const char *const state_names[] = {
	"new",    "resolving", "launching", "connecting", "ready",
	"failed", "lost",      "closing",   "closed",
};

#define S(x) (1u << (x))
static const unsigned legal_next[] = {
	[BS_NEW] =
	        S(BS_RESOLVING) | S(BS_LAUNCHING) | S(BS_CONNECTING) | S(BS_FAILED) | S(BS_CLOSING),
	[BS_RESOLVING] = S(BS_CONNECTING) | S(BS_FAILED) | S(BS_CLOSING),
	[BS_LAUNCHING] = S(BS_CONNECTING) | S(BS_FAILED) | S(BS_CLOSING),
	[BS_CONNECTING] = S(BS_READY) | S(BS_FAILED) | S(BS_CLOSING),
	[BS_READY] = S(BS_LOST) | S(BS_CLOSING),
	[BS_FAILED] = S(BS_CLOSING),
	[BS_LOST] = S(BS_CLOSING),
	[BS_CLOSING] = S(BS_CLOSED),
	[BS_CLOSED] = 0,
};
#undef S

void browser__set_state(browser_t *b, enum browser_state next)
{
	if (!(legal_next[b->state] & (1u << next))) {
		log_error(LOG_COMP, "illegal state transition %s -> %s", state_names[b->state],
		          state_names[next]);
		abort();
	}
	log_debug(LOG_COMP, "%s -> %s", state_names[b->state], state_names[next]);
	b->state = next;
}

static void on_conn_closed(cdp_conn_t *conn, void *ud);

/* ---- small helpers ---- */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

const char *browser__env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static void fire_ready(browser_t *b, int status, const char *why)
{
	if (b->ready_fired || !b->ready_cb)
		return;
	b->ready_fired = 1;
	b->ready_cb(b, status, why ? why : "", b->ud);
}

/* Signals the main process and its process group, only while libuv has not reaped it. */
static void kill_tree(browser_t *b, int sig)
{
	if (!b->proc_running)
		return;
	log_debug(LOG_COMP, "sending SIG%s to Chromium pid %d and its process group",
	          sigabbrev_np(sig), (int)b->pid);
	if (b->pidfd >= 0)
		pidfd_send_signal(b->pidfd, sig, NULL, 0);
	else
		kill(b->pid, sig);
	kill(-b->pid, sig);
}

static void conn_close(browser_t *b)
{
	if (!b->conn || b->conn_closing)
		return;
	b->conn_closing = 1;
	cdp_conn_close(b->conn, on_conn_closed, b);
}

/*
 * A launch or attach failure before ready: stop what is running and report it (from the
 * loop: inside browser_start() the report waits for a 0 ms timer).
 */
void browser__launch_fail(browser_t *b, int status, const char *why)
{
	log_warn(LOG_COMP, "browser start failed: %s", why);
	browser__set_state(b, BS_FAILED);
	uv_timer_stop(&b->t_launch);
	uv_timer_stop(&b->t_poll);
	kill_tree(b, SIGKILL);
	if (b->fetch && !b->fetch_closing) {
		b->fetch_closing = 1;
		fetch_ctx_close(b->fetch, browser__on_fetch_closed, b);
	}
	conn_close(b);
	if (b->in_start) {
		b->deferred_status = status;
		snprintf(b->deferred_why, sizeof b->deferred_why, "%s", why);
		uv_timer_start(&b->t_launch, browser__on_launch_timer, 0, 0);
		return;
	}
	fire_ready(b, status, why);
}

void browser__on_launch_timer(uv_timer_t *t)
{
	browser_t *b = t->data;
	char msg[1536];

	if (b->deferred_status) {
		int st = b->deferred_status;
		b->deferred_status = 0;
		if (b->state == BS_FAILED)
			fire_ready(b, st, b->deferred_why);
		return;
	}
	switch (b->state) {
	case BS_RESOLVING:
		snprintf(msg, sizeof msg, "CDP_URL %s: no answer from /json/version within %u ms",
		         b->attach_url, b->launch_timeout_ms);
		break;
	case BS_LAUNCHING:
		snprintf(msg, sizeof msg, "Chromium pid %d did not write %s/%s within %u ms",
		         (int)b->pid, b->udd, PORT_FILE, b->launch_timeout_ms);
		break;
	case BS_CONNECTING:
		snprintf(msg, sizeof msg, "websocket to %s did not open within %u ms of the %s",
		         b->ws_url, b->launch_timeout_ms, b->attached ? "attach" : "launch");
		break;
	default: return;
	}
	browser__launch_fail(b, -ETIMEDOUT, msg);
}

/* ---- connection ---- */

static void on_conn_closed(cdp_conn_t *conn, void *ud)
{
	browser_t *b = ud;

	b->conn = NULL;
	b->conn_closed = 1;
	if (b->state == BS_CLOSING)
		browser__close_progress(b);
}

void browser__check_lost(browser_t *b)
{
	char why[768];

	if (b->state != BS_READY)
		return;
	if (!b->conn_lost || b->proc_running)
		return;
	if (b->attached)
		snprintf(why, sizeof why, "connection to %.200s lost: %.500s", b->ws_url,
		         b->lost_why);
	else if (b->term_signal)
		snprintf(why, sizeof why, "Chromium (pid %d) was killed by signal %d (%s); %s",
		         (int)b->pid, b->term_signal, strsignal(b->term_signal), b->lost_why);
	else
		snprintf(why, sizeof why, "Chromium (pid %d) exited with status %lld; %s",
		         (int)b->pid, (long long)b->exit_status, b->lost_why);
	browser__set_state(b, BS_LOST);
	log_warn(LOG_COMP, "browser lost: %s", why);
	if (b->lost_cb)
		b->lost_cb(b, CDP_ECONNLOST, why, b->ud);
}

/*
 * The socket closed but the process did not exit within the grace: a browser we cannot
 * talk to is of no use, so end it and let the two-event rendezvous complete.
 */
static void on_unreachable_timer(uv_timer_t *t)
{
	browser_t *b = t->data;

	if (b->state != BS_READY || !b->proc_running)
		return;
	log_warn(LOG_COMP,
	         "websocket to Chromium pid %d closed (%s) but the process still runs "
	         "after %u ms; killing it",
	         (int)b->pid, b->lost_why, b->grace_ms);
	kill_tree(b, SIGKILL);
}

static void on_conn_lost(cdp_conn_t *conn, int err, const char *why, void *ud)
{
	browser_t *b = ud;

	b->conn_lost = 1;
	snprintf(b->lost_why, sizeof b->lost_why, "websocket: %s", why ? why : cdp_strerror(err));
	if (b->state == BS_READY) {
		if (b->proc_running) {
			/* Usually the exit is on its way; if not, on_unreachable_timer ends it. */
			log_debug(LOG_COMP,
			          "websocket closed; waiting up to %u ms for Chromium pid %d "
			          "to exit",
			          b->grace_ms, (int)b->pid);
			uv_timer_start(&b->t_kill, on_unreachable_timer, b->grace_ms, 0);
		}
		browser__check_lost(b);
	} else if (b->state == BS_CLOSING) {
		browser__close_progress(b);
	}
}

static void on_connect(cdp_conn_t *conn, int status, const char *why, void *ud)
{
	browser_t *b = ud;
	char msg[1536];

	b->connect_pending = 0;
	if (conn) {
		b->conn = conn;
		if (b->state != BS_CONNECTING) { /* failed or closing meanwhile */
			conn_close(b);
			return;
		}
	}
	if (b->state != BS_CONNECTING) {
		if (b->state == BS_CLOSING)
			browser__close_progress(b);
		return;
	}
	if (status != 0) {
		snprintf(msg, sizeof msg, "%s", why && *why ? why : cdp_strerror(status));
		browser__launch_fail(b, status, msg);
		return;
	}
	uv_timer_stop(&b->t_launch);
	if (!b->attached)
		b->launch_ms = (uv_hrtime() - b->spawn_ns) / 1000000u;
	browser__set_state(b, BS_READY);
	if (b->attached)
		log_info(LOG_COMP, "attached to %s", b->ws_url);
	else
		log_info(LOG_COMP, "Chromium pid %d ready in %llu ms at %s", (int)b->pid,
		         (unsigned long long)b->launch_ms, b->ws_url);
	fire_ready(b, 0, "");
}

void browser__start_connect(browser_t *b)
{
	char msg[1536];
	int rc;

	browser__set_state(b, BS_CONNECTING);
	b->connect_pending = 1;
	rc = cdp_conn_new_ws(b->ws, b->ws_url, &b->conn_opts, b->launch_timeout_ms, on_connect,
	                     on_conn_lost, b);
	if (rc != 0) {
		b->connect_pending = 0;
		snprintf(msg, sizeof msg, "cannot connect to %s: %s", b->ws_url, cdp_strerror(rc));
		browser__launch_fail(b, rc, msg);
	}
}

/* ---- public: lifecycle ---- */

void browser_opts_init(browser_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->launch_timeout_ms = 30000;
	o->close_grace_ms = 2000;
	cdp_conn_opts_init(&o->conn);
}

int browser_opts_from_env(browser_opts_t *o, char *err, size_t errlen)
{
	double mb = 0;
	int rc = envnum_get_buf(err, errlen, "CDP_MAX_MESSAGE_MB", 1, 1024, ENVNUM_WHOLE, "MiB",
	                        &mb);

	if (rc > 0)
		o->conn.max_message = (size_t)mb * 1024 * 1024;
	return rc < 0 ? rc : 0;
}

browser_t *browser_new(uv_loop_t *loop, cdp_wsctx_t *ws, const browser_opts_t *opts)
{
	browser_opts_t defaults;
	browser_t *b = calloc(1, sizeof *b);

	if (!b)
		return NULL;
	if (!opts) {
		browser_opts_init(&defaults);
		opts = &defaults;
	}
	b->loop = loop;
	b->ws = ws;
	b->state = BS_NEW;
	b->pidfd = -1;
	b->lock_fd = -1;
	b->opt_chromium_path = xstrdup(opts->chromium_path);
	b->opt_extra_flags = xstrdup(opts->extra_flags);
	b->opt_cdp_url = xstrdup(opts->cdp_url);
	b->allow_new_windows = opts->allow_new_windows;
	if ((opts->chromium_path && !b->opt_chromium_path) ||
	    (opts->extra_flags && !b->opt_extra_flags) || (opts->cdp_url && !b->opt_cdp_url)) {
		free(b->opt_chromium_path);
		free(b->opt_extra_flags);
		free(b->opt_cdp_url);
		free(b);
		return NULL;
	}
	b->launch_timeout_ms = opts->launch_timeout_ms ? opts->launch_timeout_ms : 30000;
	b->grace_ms = opts->close_grace_ms ? opts->close_grace_ms : 2000;
	cdp_conn_opts_init(&b->conn_opts);
	if (opts->conn.default_timeout_ms)
		b->conn_opts.default_timeout_ms = opts->conn.default_timeout_ms;
	if (opts->conn.max_message)
		b->conn_opts.max_message = opts->conn.max_message;
	uv_timer_init(loop, &b->t_launch);
	uv_timer_init(loop, &b->t_poll);
	uv_timer_init(loop, &b->t_kill);
	b->t_launch.data = b->t_poll.data = b->t_kill.data = b;
	b->timers_open = 3;
	return b;
}

int browser_start(browser_t *b, browser_ready_cb ready_cb, browser_lost_cb on_lost, void *ud)
{
	const char *url;
	int rc;

	if (!b || !ready_cb || b->state != BS_NEW)
		return -EINVAL;
	b->ready_cb = ready_cb;
	b->lost_cb = on_lost;
	b->ud = ud;
	url = b->opt_cdp_url && *b->opt_cdp_url ? b->opt_cdp_url : browser__env_nonempty("CDP_URL");
	b->in_start = 1;
	rc = url ? browser__attach(b, url) : browser__launch(b);
	b->in_start = 0;
	return rc;
}

cdp_conn_t *browser_conn(browser_t *b)
{
	return b->state == BS_READY ? b->conn : NULL;
}

pid_t browser_pid(const browser_t *b)
{
	return b->proc_running ? b->pid : 0;
}

uint64_t browser_launch_ms(const browser_t *b)
{
	return b->launch_ms;
}

const char *browser_executable(const browser_t *b)
{
	return b->attached ? NULL : b->exe;
}

const char *browser_user_data_dir(const browser_t *b)
{
	return b->attached ? NULL : b->udd;
}

/* ---- close ---- */

static void on_kill_timer(uv_timer_t *t)
{
	browser_t *b = t->data;

	if (!b->proc_running)
		return;
	if (b->kill_step == 0) {
		log_info(LOG_COMP,
		         "Chromium pid %d still running %u ms after Browser.close; "
		         "sending SIGTERM",
		         (int)b->pid, b->grace_ms);
		kill_tree(b, SIGTERM);
	} else {
		log_warn(LOG_COMP,
		         "Chromium pid %d still running %u ms after SIGTERM; sending "
		         "SIGKILL",
		         (int)b->pid, b->grace_ms);
		kill_tree(b, SIGKILL);
	}
	b->kill_step++;
	uv_timer_start(&b->t_kill, on_kill_timer, b->grace_ms, 0);
}

static void on_session_poll(uv_timer_t *t)
{
	browser_t *b = t->data;
	pid_t pids[MAX_STRAGGLERS];
	uint64_t since = uv_now(b->loop) - b->exit_ms;
	int n = browser_session_members("/proc", b->pid, pids, MAX_STRAGGLERS);

	if (n < 0) {
		log_warn(LOG_COMP, "cannot scan /proc: %s; not waiting for the session",
		         strerror(-n));
		n = 0;
	}
	if (n > 0 && since >= (uint64_t)b->grace_ms * 10 + 10000) {
		log_error(LOG_COMP,
		          "%d process(es) of Chromium session %d survive SIGKILL after "
		          "%llu ms; giving up on them",
		          n, (int)b->pid, (unsigned long long)since);
		n = 0;
	}
	if (n == 0) {
		uv_timer_stop(&b->t_poll);
		b->session_empty = 1;
		log_debug(LOG_COMP, "session %d empty %llu ms after the main process exited",
		          (int)b->pid, (unsigned long long)since);
		browser__close_progress(b);
		return;
	}
	if (since >= b->grace_ms) {
		/*
		 * Stragglers. While a process is in session sid, the number sid cannot be
		 * reused, so every pid listed here is ours (modulo one exiting just now).
		 */
		for (int i = 0; i < n && i < MAX_STRAGGLERS; i++) {
			log_debug(LOG_COMP, "SIGKILL straggler pid %d of session %d", (int)pids[i],
			          (int)b->pid);
			kill(pids[i], SIGKILL);
		}
		b->straggler_kills++;
	}
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (remove(path) != 0 && errno != ENOENT)
		return errno;
	return 0;
}

static void rm_work(uv_work_t *w)
{
	browser_t *b = w->data;
	b->rm_rc = nftw(b->udd, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (b->rm_rc == -1)
		b->rm_rc = errno == ENOENT ? 0 : errno;
}

static void on_timer_closed(uv_handle_t *h)
{
	browser_t *b = h->data;

	if (--b->timers_open > 0)
		return;
	browser__set_state(b, BS_CLOSED);
	log_debug(LOG_COMP, "closed");
	if (b->closed_cb)
		b->closed_cb(b, b->closed_ud);
	free(b->opt_chromium_path);
	free(b->opt_extra_flags);
	free(b->opt_cdp_url);
	free(b->exe);
	if (b->lock_fd >= 0)
		close(b->lock_fd); /* after the removal: the sweep never takes a live profile */
	free(b->udd);
	free(b->attach_url);
	free(b);
}

static void finish(browser_t *b)
{
	uv_timer_stop(&b->t_launch);
	uv_timer_stop(&b->t_poll);
	uv_timer_stop(&b->t_kill);
	uv_close((uv_handle_t *)&b->t_launch, on_timer_closed);
	uv_close((uv_handle_t *)&b->t_poll, on_timer_closed);
	uv_close((uv_handle_t *)&b->t_kill, on_timer_closed);
}

static void after_rm_work(uv_work_t *w, int status)
{
	browser_t *b = w->data;

	if (b->rm_rc != 0)
		log_warn(LOG_COMP, "cannot remove user-data-dir %s: %s", b->udd,
		         strerror(b->rm_rc));
	else
		log_debug(LOG_COMP, "removed user-data-dir %s", b->udd);
	finish(b);
}

/* Moves the close along once each thing it waits for is done; called after every event. */
void browser__close_progress(browser_t *b)
{
	int rc;

	if (b->state != BS_CLOSING || b->rm_started)
		return;
	/* The socket: closed once Browser.close is answered or the process is gone. */
	if (b->conn && !b->conn_closing && (!b->proc_running || b->conn_lost))
		conn_close(b);
	if (b->connect_pending || (b->conn && !b->conn_closed))
		return;
	if (b->fetch)
		return;
	if (b->proc_inited && !b->proc_closed)
		return;
	if (b->pid && !b->session_empty) {
		if (!uv_is_active((uv_handle_t *)&b->t_poll))
			uv_timer_start(&b->t_poll, on_session_poll, 0, SESSION_POLL_MS);
		return;
	}
	b->rm_started = 1;
	log_debug(LOG_COMP, "process tree and connection gone after %llu ms",
	          (unsigned long long)(uv_now(b->loop) - b->close_start_ms));
	if (b->udd) {
		b->rm_work.data = b;
		rc = uv_queue_work(b->loop, &b->rm_work, rm_work, after_rm_work);
		if (rc == 0)
			return;
		log_warn(LOG_COMP, "cannot queue the removal of %s: %s", b->udd, uv_strerror(rc));
	}
	finish(b);
}

static void on_browser_close_reply(cdp_conn_t *conn, const cdp_reply_t *r, void *ud)
{
	browser_t *b = ud;

	log_debug(LOG_COMP, "Browser.close: %s", r->status ? r->error_message : "ok");
	if (b->state == BS_CLOSING && b->conn == conn && r->status != -ECANCELED)
		browser__close_progress(b);
	/* The process's exit closes the socket; if it does not exit, the kill timer acts. */
}

void browser_close(browser_t *b, browser_closed_cb cb, void *ud)
{
	enum browser_state prev;
	int sent_close = 0;

	if (!b)
		return;
	if (b->state == BS_CLOSING || b->state == BS_CLOSED) {
		log_warn(LOG_COMP, "browser_close() called twice; ignored");
		return;
	}
	prev = b->state;
	browser__set_state(b, BS_CLOSING);
	b->closed_cb = cb;
	b->closed_ud = ud;
	b->close_start_ms = uv_now(b->loop);
	uv_timer_stop(&b->t_launch);
	uv_timer_stop(&b->t_poll);

	if (!b->ready_fired && b->ready_cb)
		fire_ready(b, b->deferred_status ? b->deferred_status : -ECANCELED,
		           b->deferred_status
		                   ? b->deferred_why
		                   : "browser_close() was called before the browser was ready");
	if (b->fetch && !b->fetch_closing) {
		b->fetch_closing = 1;
		fetch_ctx_close(b->fetch, browser__on_fetch_closed, b);
	}
	if (b->conn && !b->conn_closing) {
		if (prev == BS_READY && !b->attached && b->proc_running && !b->conn_lost) {
			json_t *params = json_object();
			if (cdp_conn_send(b->conn, NULL, CDP_M_BROWSER_CLOSE, params, b->grace_ms,
			                  on_browser_close_reply, b, NULL) == 0)
				sent_close = 1;
		}
		if (!sent_close)
			conn_close(b);
	}
	if (b->proc_running) {
		if (sent_close) {
			b->kill_step = 0;
		} else {
			kill_tree(b, SIGTERM);
			b->kill_step = 1;
		}
		uv_timer_start(&b->t_kill, on_kill_timer, b->grace_ms, 0);
	}
	browser__close_progress(b);
}
