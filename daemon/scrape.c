/*
 * scrape: `cdpilot scrape URL`, a sequence of steps on one loop (a page from a pool of one,
 * read with cdp_page_read: navigate, wait for a selector, read the title; then extract,
 * screenshot, write the PNG), each started from the previous one's callback. The page is
 * the daemon's: pool_acquire() opens it held (at about:blank, see start()), with the pool's
 * hygiene (dialogs dismissed, popups closed, downloads denied, BLOCK_RESOURCES,
 * USER_AGENT, VIEWPORT, EXTRA_HEADERS), so there is one page set-up in cdpilot, not two.
 * The first failure decides the outcome (its kind maps to the exit code); the cleanup
 * that follows is the same in every case: release the lease (its context is disposed),
 * close the pool (the browser's process tree and user-data-dir gone), close our handles.
 * One uv_timer bounds the run; SIGINT and SIGTERM end it the same way. The one step that
 * cannot be cancelled (writing the file) is short: an abort waits for it to finish.
 */
#include "daemon/scrape.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_page.h"
#include "cdp/cdp_ws.h"
#include "daemon/scrape_priv.h"
#include "pool/pool.h"
#include "util/log.h"

#define COMP "scrape"
#define LAUNCH_TIMEOUT_MAX_MS 30000u
#define LAUNCH_POLL_MS 100u

const char scrape_default_extract[] =
        "({title: document.title, url: location.href, "
        "text: (document.body ? document.body.innerText : '').slice(0, 10000)})";

static const char *const phase_doing[] = {
	[PH_START] = "starting",
	[PH_LAUNCH] = "launching the browser",
	[PH_OPEN] = "opening a page",
	[PH_NAVIGATE] = "loading the page",
	[PH_WAIT] = "waiting for the selector",
	[PH_TITLE] = "reading the title",
	[PH_EXTRACT] = "running the extract expression",
	[PH_SHOT] = "taking the screenshot",
	[PH_WRITE] = "writing the screenshot",
	[PH_CLOSING] = "closing",
};

static void cleanup(scrape_t *s);
static void step_extract(scrape_t *s);
static void step_shot(scrape_t *s);

static uint64_t ms_since(uint64_t t_ns)
{
	return (uv_hrtime() - t_ns) / 1000000u;
}

static uint32_t remaining_ms(const scrape_t *s)
{
	uint64_t now;

	uv_update_time(s->loop);
	now = uv_now(s->loop);
	return s->deadline > now ? (uint32_t)(s->deadline - now) : 1;
}

/* Records the first failure (later ones are logged only), then starts the cleanup. */
static void fail(scrape_t *s, const char *kind, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static void fail(scrape_t *s, const char *kind, const char *fmt, ...)
{
	char msg[sizeof s->message];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!s->kind) {
		s->kind = kind;
		memcpy(s->message, msg, sizeof msg);
		log_warn(COMP, "%s error while %s: %s", kind, phase_doing[s->phase], msg);
	} else {
		log_debug(COMP, "after the first error: %s: %s", kind, msg);
	}
	cleanup(s);
}

/* The error kind of a failed page operation, which may depend on the step. */
static const char *kind_for(const scrape_t *s, int status)
{
	switch (status) {
	case CDP_ECONNLOST:
	case CDP_ECRASHED: return "browser";
	case -ETIMEDOUT: return s->phase == PH_WAIT ? "selector" : "timeout";
	case CDP_ENAV: return "network";
	case CDP_EEXCEPTION: return s->phase == PH_WAIT ? "selector" : "script";
	case CDP_EPROTOCOL:
		if (s->phase == PH_NAVIGATE)
			return "network";
		return s->phase == PH_EXTRACT ? "script" : "internal";
	default: return "internal";
	}
}

/* While the page read runs, its step is the phase; the page knows which step runs. */
static void follow_read(scrape_t *s, cdp_read_step_t step)
{
	switch (step) {
	case CDP_READ_NAV: s->phase = PH_NAVIGATE; break;
	case CDP_READ_WAIT: s->phase = PH_WAIT; break;
	case CDP_READ_EVAL: s->phase = PH_TITLE; break;
	default: break; /* none; page actions (scrape has none) */
	}
}

/* ---- cleanup: the lease, then the pool (and its browser), then our handles ---- */

static void on_handle_closed(uv_handle_t *h)
{
	scrape_t *s = h->data;

	s->handles_open--;
}

static void all_done(scrape_t *s)
{
	s->done = 1;
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
	uv_close((uv_handle_t *)&s->launch, on_handle_closed);
	uv_close((uv_handle_t *)&s->sig_int, on_handle_closed);
	uv_close((uv_handle_t *)&s->sig_term, on_handle_closed);
	/* lws keeps handles of its own on the loop until its context is destroyed */
	uv_stop(s->loop);
}

static void on_pool_closed(pool_t *p, void *ud)
{
	scrape_t *s = ud;

	(void)p;
	s->pool = NULL;
	log_debug(COMP, "browser closed");
	all_done(s);
}

static void cleanup(scrape_t *s)
{
	pool_lease_t *lease = s->lease;

	if (s->closing)
		return;
	if (s->busy) {
		s->abort_pending = 1;
		return;
	}
	s->closing = 1;
	if (!s->total_ms)
		s->total_ms = ms_since(s->t0_ns);
	s->phase = PH_CLOSING;
	uv_timer_stop(&s->timer);
	uv_timer_stop(&s->launch);
	s->lease = NULL;
	s->page = NULL;
	/* a running page operation ends with -ECANCELED as the pool closes the page */
	if (lease && s->granted)
		pool_release(lease, !s->kind                     ? POOL_OK
		                    : strcmp(s->kind, "timeout") == 0 ? POOL_TIMEOUT
		                                                      : POOL_FAILED);
	else if (lease)
		pool_lease_cancel(lease); /* on_granted gets -ECANCELED at once, and ignores it */
	if (s->pool)
		pool_close(s->pool, on_pool_closed, s);
	else
		all_done(s);
}

/* "visible " when --wait-for waits for a visible element (the default), else "". */
static const char *visible_word(const scrape_t *s)
{
	return s->o->wait_attached ? "" : "visible ";
}

static void on_deadline(uv_timer_t *t)
{
	scrape_t *s = t->data;

	if (s->page)
		follow_read(s, cdp_page_read_step(s->page));
	if (s->phase == PH_WAIT)
		fail(s, "selector", "no %selement matched '%s' within %g s", visible_word(s),
		     s->o->wait_for, s->o->timeout_s);
	else
		fail(s, "timeout", "timed out after %g s while %s", s->o->timeout_s,
		     phase_doing[s->phase]);
}

static void on_signal(uv_signal_t *h, int signum)
{
	scrape_t *s = h->data;

	if (s->closing) {
		log_info(COMP, "%s received while closing; still closing", strsignal(signum));
		return;
	}
	if (s->page)
		follow_read(s, cdp_page_read_step(s->page));
	fail(s, "internal", "interrupted by signal %d (%s) while %s", signum, strsignal(signum),
	     phase_doing[s->phase]);
}

/* ---- the steps ---- */

static void finish_ok(scrape_t *s)
{
	s->total_ms = ms_since(s->t0_ns);
	log_info(COMP, "scraped %s in %llu ms", s->o->url, (unsigned long long)s->total_ms);
	cleanup(s);
}

static void on_file_closed(uv_fs_t *req)
{
	scrape_t *s = req->data;
	int rc = (int)req->result;

	uv_fs_req_cleanup(req);
	s->busy = 0;
	if (s->write_err == 0 && rc < 0)
		s->write_err = rc;
	if (s->write_err) {
		fail(s, "internal", "cannot write the screenshot to '%s': %s", s->o->screenshot,
		     uv_strerror(s->write_err));
		return;
	}
	log_debug(COMP, "wrote %zu bytes to %s", s->png_len, s->o->screenshot);
	if (s->abort_pending)
		cleanup(s);
	else
		finish_ok(s);
}

static void close_file(scrape_t *s)
{
	int rc = uv_fs_close(s->loop, &s->fs, s->fd, on_file_closed);

	if (rc < 0) {
		s->busy = 0;
		fail(s, "internal", "cannot close '%s': %s", s->o->screenshot, uv_strerror(rc));
	}
}

static void on_file_written(uv_fs_t *req);

static void write_more(scrape_t *s)
{
	uv_buf_t buf =
	        uv_buf_init((char *)s->png + s->png_off, (unsigned)(s->png_len - s->png_off));
	int rc = uv_fs_write(s->loop, &s->fs, s->fd, &buf, 1, -1, on_file_written);

	if (rc < 0) {
		s->write_err = rc;
		close_file(s);
	}
}

static void on_file_written(uv_fs_t *req)
{
	scrape_t *s = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	if (n < 0) {
		s->write_err = (int)n;
		close_file(s);
		return;
	}
	s->png_off += (size_t)n;
	if (s->png_off < s->png_len && n == 0)
		s->write_err = UV_EIO;
	if (s->png_off < s->png_len && n > 0)
		write_more(s);
	else
		close_file(s);
}

static void on_file_opened(uv_fs_t *req)
{
	scrape_t *s = req->data;
	int rc = (int)req->result;

	uv_fs_req_cleanup(req);
	if (rc < 0) {
		s->busy = 0;
		fail(s, "internal", "cannot open '%s' for writing: %s", s->o->screenshot,
		     uv_strerror(rc));
		return;
	}
	s->fd = rc;
	write_more(s);
}

static void on_shot(cdp_page_t *page, int status, const unsigned char *png, size_t len,
                    const char *why, void *ud)
{
	scrape_t *s = ud;
	int rc;

	if (s->closing)
		return;
	if (status != 0) {
		fail(s, kind_for(s, status), "screenshot failed: %s", why);
		return;
	}
	s->png = malloc(len ? len : 1);
	if (!s->png) {
		fail(s, "internal", "out of memory for a %zu-byte screenshot", len);
		return;
	}
	memcpy(s->png, png, len);
	s->png_len = len;
	s->phase = PH_WRITE;
	s->fs.data = s;
	s->busy = 1;
	rc = uv_fs_open(s->loop, &s->fs, s->o->screenshot, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	                0644, on_file_opened);
	if (rc < 0) {
		s->busy = 0;
		fail(s, "internal", "cannot open '%s' for writing: %s", s->o->screenshot,
		     uv_strerror(rc));
	}
}

static void step_shot(scrape_t *s)
{
	int rc;

	if (!s->o->screenshot) {
		finish_ok(s);
		return;
	}
	s->phase = PH_SHOT;
	rc = cdp_page_screenshot(s->page, 1, remaining_ms(s), on_shot, s);
	if (rc != 0)
		fail(s, kind_for(s, rc), "cannot take the screenshot: %s", cdp_strerror(rc));
}

static void on_extract(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	scrape_t *s = ud;

	if (s->closing)
		return;
	if (status != 0) {
		fail(s, kind_for(s, status), "%s", why && *why ? why : cdp_strerror(status));
		return;
	}
	s->data = json_incref(value);
	step_shot(s);
}

static void step_extract(scrape_t *s)
{
	int rc;

	s->phase = PH_EXTRACT;
	rc = cdp_page_evaluate(s->page, s->o->extract ? s->o->extract : scrape_default_extract,
	                       remaining_ms(s), on_extract, s);
	if (rc != 0)
		fail(s, kind_for(s, rc), "cannot run the extract expression: %s", cdp_strerror(rc));
}

/* Why the read failed, as the run's failure. */
static void read_failed(scrape_t *s, const cdp_read_result_t *res)
{
	const char *why = *res->why ? res->why : cdp_strerror(res->status);
	const char *kind = kind_for(s, res->status);

	switch (res->failed) {
	case CDP_READ_NAV:
		if (res->status == CDP_EHTTP)
			fail(s, "http", "HTTP status %ld from %s", res->nav.http_status,
			     res->nav.final_url);
		else
			fail(s, kind, "%s: %s", s->o->url, why);
		break;
	case CDP_READ_WAIT:
		if (res->not_started)
			fail(s, kind, "cannot wait for '%s': %s", s->o->wait_for, why);
		else if (res->status == -ETIMEDOUT)
			fail(s, "selector", "no %selement matched '%s' within %g s", visible_word(s),
			     s->o->wait_for,
			     s->o->timeout_s);
		else
			fail(s, kind, "waiting for '%s': %s", s->o->wait_for, why);
		break;
	case CDP_READ_EVAL:
		if (res->not_started)
			fail(s, kind, "cannot read the title: %s", why);
		else
			fail(s, kind, "reading document.title: %s", why);
		break;
	default: break; /* no actions in a scrape; CDP_READ_NONE: nothing failed */
	}
}

/* The page read: loaded, the selector waited for, the title read. The title is read before
 * the extract expression runs, which may change it. */
static void on_read(cdp_page_t *page, const cdp_read_result_t *res, void *ud)
{
	scrape_t *s = ud;

	/* the navigation's outcome counts if it finished before the run was cut short */
	if (!s->closing || res->failed != CDP_READ_NAV) {
		s->navigate_ms = res->nav_ms;
		s->http_status = res->nav.http_status;
		free(s->final_url);
		s->final_url = strdup(res->nav.final_url);
		if (res->nav.status == 0)
			log_debug(COMP, "loaded %s (HTTP %ld) in %llu ms", res->nav.final_url,
			          res->nav.http_status, (unsigned long long)s->navigate_ms);
	}
	if (s->closing)
		return;
	follow_read(s, res->failed);
	if (res->failed != CDP_READ_NONE) {
		read_failed(s, res);
		return;
	}
	free(s->title);
	s->title = strdup(json_is_string(res->value) ? json_string_value(res->value) : "");
	step_extract(s);
}

/* The page, from the pool: opened at the URL with the daemon's set-up; now read it. */
static void on_granted(pool_lease_t *lease, int status, const char *why, void *ud)
{
	scrape_t *s = ud;
	cdp_read_req_t req = { .url = s->o->url, .wait_for = s->o->wait_for,
		               .expression = "document.title" };
	pool_stats_t ps;
	int rc;

	if (status != 0) {
		s->lease = NULL; /* freed by the pool */
		if (!s->closing)
			fail(s, status == -ETIMEDOUT ? "timeout" : kind_for(s, status),
			     "cannot open a page: %s", why && *why ? why : cdp_strerror(status));
		return;
	}
	s->granted = 1;
	s->page = pool_lease_page(lease);
	uv_timer_stop(&s->launch);
	pool_get_stats(s->pool, &ps);
	s->launch_ms = ms_since(s->t0_ns) - ps.browser_uptime_ms;
	log_debug(COMP, "page open after %llu ms (browser ready after %llu ms)",
	          (unsigned long long)ms_since(s->t0_ns), (unsigned long long)s->launch_ms);
	s->phase = PH_NAVIGATE;
	req.timeout_ms = remaining_ms(s);
	req.wait_state = s->o->wait_attached ? CDP_WAIT_ATTACHED : CDP_WAIT_VISIBLE;
	rc = cdp_page_read(s->page, &req, on_read, s);
	if (rc != 0)
		fail(s, kind_for(s, rc), "cannot navigate to %s: %s", s->o->url, cdp_strerror(rc));
}

/* The pool took the page back: the task deadline passed (the run's own timeout, a moment
 * later), its renderer crashed or the browser died. The lease is released here. */
static void on_revoked(pool_lease_t *lease, enum pool_outcome reason, const char *why,
                       void *ud)
{
	scrape_t *s = ud;

	s->lease = NULL;
	s->page = NULL;
	pool_release(lease, reason);
	if (s->closing)
		return;
	if (reason == POOL_TIMEOUT)
		on_deadline(&s->timer);
	else
		fail(s, "browser", "%s: %s", pool_outcome_name(reason), why);
}

/* The pool relaunches a browser that failed to start, with backoff, and the lease waits;
 * for a one-shot command the first failed launch is the answer (exit 3). */
static void on_launch_poll(uv_timer_t *h)
{
	scrape_t *s = h->data;
	pool_stats_t ps;

	pool_get_stats(s->pool, &ps);
	if (ps.browser_launches > 0 || s->closing) {
		uv_timer_stop(h);
		return;
	}
	if (ps.consecutive_crashes > 0)
		fail(s, "launch", "the browser could not be launched or attached to (see the log "
		                  "above; CHROMIUM_PATH, CHROMIUM_FLAGS, CDP_URL)");
}

static void start(scrape_t *s)
{
	pool_opts_t po;
	uint32_t timeout_ms = remaining_ms(s);
	char err[2048] = "";

	s->phase = PH_LAUNCH;
	s->ws = cdp_wsctx_new(s->loop);
	if (!s->ws) {
		fail(s, "internal", "cannot create the websocket context (see the log above)");
		return;
	}
	/* the daemon's page settings, as `run` reads them (validated in main() already) */
	pool_opts_init(&po);
	pool_opts_from_env(&po, err, sizeof err);
	po.concurrency_cap = 1;
	po.lease_timeout_ms = timeout_ms;
	po.task_timeout_ms = timeout_ms;
	po.recycle_uptime_ms = 0;
	po.recycle_task_count = 0;
	po.browser.launch_timeout_ms =
	        timeout_ms < LAUNCH_TIMEOUT_MAX_MS ? timeout_ms : LAUNCH_TIMEOUT_MAX_MS;
	s->pool = pool_new(s->loop, s->ws, &po);
	if (!s->pool) {
		fail(s, "internal", "out of memory creating the browser pool");
		return;
	}
	pool_start(s->pool);
	uv_timer_start(&s->launch, on_launch_poll, LAUNCH_POLL_MS, LAUNCH_POLL_MS);
	/* No URL: the page opens (held, set up) at about:blank and the read navigates. With the
	 * URL the pool would open it straight there, but a lease cancelled while that page
	 * opens keeps the pool from closing until the open times out: SIGINT during a
	 * hanging load would wait for the whole --timeout. */
	s->lease = pool_acquire(s->pool, NULL, timeout_ms, on_granted, on_revoked, s);
	if (!s->lease)
		fail(s, "internal", "the browser pool refused the page");
}

int scrape_run(uv_loop_t *loop, const scrape_opts_t *o, json_t **out)
{
	scrape_t s;
	int code;

	memset(&s, 0, sizeof s);
	s.loop = loop;
	s.o = o;
	s.fd = -1;
	s.t0_ns = uv_hrtime();
	uv_update_time(loop);
	s.deadline = uv_now(loop) + (uint64_t)(o->timeout_s * 1000.0 + 0.5);
	uv_timer_init(loop, &s.timer);
	uv_timer_init(loop, &s.launch);
	uv_signal_init(loop, &s.sig_int);
	uv_signal_init(loop, &s.sig_term);
	s.timer.data = s.launch.data = s.sig_int.data = s.sig_term.data = &s;
	s.handles_open = 4;
	uv_timer_start(&s.timer, on_deadline, s.deadline - uv_now(loop), 0);
	uv_signal_start(&s.sig_int, on_signal, SIGINT);
	uv_signal_start(&s.sig_term, on_signal, SIGTERM);

	start(&s);
	while (!s.done)
		uv_run(loop, UV_RUN_DEFAULT);
	/* Second half of the teardown: the lws context, then whatever it still had queued. */
	if (s.ws)
		cdp_wsctx_close(s.ws);
	uv_run(loop, UV_RUN_DEFAULT);
	if (s.ws)
		cdp_wsctx_free(s.ws);
	if (s.handles_open != 0)
		log_error(COMP, "%d handles still open after the run", s.handles_open);

	*out = scrape__build_result(&s);
	if (!*out) {
		log_error(COMP, "cannot build the result object");
		*out = json_pack("{s:o, s:{s:s, s:s}}", "url", scrape__json_text(o->url), "error",
		                 "kind", "internal", "message", "cannot build the result object");
		code = SCRAPE_EXIT_INTERNAL;
	} else {
		code = s.kind ? scrape_exit_code_for(s.kind) : SCRAPE_EXIT_OK;
	}
	json_decref(s.data);
	free(s.final_url);
	free(s.title);
	free(s.png);
	return code;
}
