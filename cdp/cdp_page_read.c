/*
 * cdp_page_read: the composed read, cdp_page_read(): navigate, run page actions, wait for
 * a selector, evaluate an expression or call a function, each step started from the previous one's callback, under one deadline, and
 * one callback with one result that says which step failed. It is built on the page's
 * public operations only, so it keeps their cancellation: closing the page fails the
 * running step with -ECANCELED, and that step's callback ends the read. The page knows of
 * the read only enough (p->read) to say which step runs.
 */
#include "cdp/cdp_page_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cdp/cdp_err.h"

struct cdp_read {
	cdp_page_t *page;
	char *url, *wait_for, *expression, *function;
	json_t *actions, *args;   /* copies, or NULL */
	cdp_wait_state_t wait_state;
	size_t value_cap;
	uint32_t cap[CDP_READ_EVAL + 1]; /* each step's own cap, 0: none */
	uint64_t deadline;               /* loop time, ms */
	cdp_read_step_t step;            /* the running (or failing) step */
	cdp_page_read_cb cb;
	void *ud;
	/* the navigation's outcome, kept for the result */
	cdp_nav_result_t nav;
	char *final_url, *nav_message;
	uint64_t nav_start_ns, nav_ms;
	char why[64];
};

static void on_nav(cdp_page_t *p, const cdp_nav_result_t *res, void *ud);
static void on_waited(cdp_page_t *p, int status, const char *why, void *ud);
static void on_acted(cdp_page_t *p, int status, const char *why, void *ud);
static void on_evaluated(cdp_page_t *p, int status, json_t *value, const char *why, void *ud);

static void read_free(cdp_read_t *rd)
{
	free(rd->url);
	free(rd->wait_for);
	free(rd->expression);
	free(rd->function);
	json_decref(rd->actions);
	json_decref(rd->args);
	free(rd->final_url);
	free(rd->nav_message);
	free(rd);
}

/* What is left of the read's time, or the step's own cap if that is less; at least 1 ms. */
static uint32_t step_timeout(const cdp_read_t *rd, cdp_read_step_t step)
{
	uint64_t now = uv_now(rd->page->loop);
	uint32_t left = rd->deadline > now ? (uint32_t)(rd->deadline - now) : 1;

	return rd->cap[step] && rd->cap[step] < left ? rd->cap[step] : left;
}

/* Starts the first step asked for from step on (rd->step says which; CDP_READ_NONE when
 * none is left). Returns 0 or the step's own error. */
static int run_from(cdp_read_t *rd, cdp_read_step_t step)
{
	cdp_page_t *p = rd->page;

	if (step <= CDP_READ_NAV && rd->url) {
		rd->step = CDP_READ_NAV;
		rd->nav_start_ns = uv_hrtime();
		return cdp_page_navigate(p, rd->url, step_timeout(rd, rd->step), on_nav, rd);
	}
	if (step <= CDP_READ_ACTIONS && rd->actions) {
		rd->step = CDP_READ_ACTIONS;
		return cdp_page_actions(p, rd->actions, step_timeout(rd, rd->step), on_acted, rd);
	}
	if (step <= CDP_READ_WAIT && rd->wait_for) {
		rd->step = CDP_READ_WAIT;
		return cdp_page_wait_for_state(p, rd->wait_for, rd->wait_state,
		                               step_timeout(rd, rd->step), on_waited, rd);
	}
	if (step <= CDP_READ_EVAL && rd->expression) {
		rd->step = CDP_READ_EVAL;
		return cdp_page_evaluate(p, rd->expression, step_timeout(rd, rd->step),
		                         on_evaluated, rd);
	}
	if (step <= CDP_READ_EVAL && rd->function) {
		rd->step = CDP_READ_EVAL;
		return cdp_page_call(p, rd->function, rd->args, rd->value_cap,
		                     step_timeout(rd, rd->step), on_evaluated, rd);
	}
	rd->step = CDP_READ_NONE;
	return 0;
}

/* Ends the read (status 0: every step succeeded; else rd->step failed): the one callback,
 * then the read is freed. */
static void finish(cdp_read_t *rd, int status, int not_started, const char *why,
                   json_t *value)
{
	cdp_page_t *p = rd->page;
	cdp_read_result_t res;

	res.failed = status ? rd->step : CDP_READ_NONE;
	res.status = status;
	res.not_started = not_started;
	res.why = why ? why : "";
	res.nav = rd->nav;
	res.nav.final_url = rd->final_url ? rd->final_url : "";
	res.nav.message = rd->nav_message ? rd->nav_message : "";
	res.nav_ms = rd->nav_ms;
	res.value = status ? NULL : value;
	p->read = NULL; /* the callback may start another read */
	rd->cb(p, &res, rd->ud);
	read_free(rd);
}

/* A step succeeded: the next one asked for, or the end. */
static void next(cdp_read_t *rd, cdp_read_step_t done)
{
	int rc = run_from(rd, done + 1);

	if (rc != 0)
		finish(rd, rc, 1, cdp_strerror(rc), NULL);
	else if (rd->step == CDP_READ_NONE)
		finish(rd, 0, 0, "", NULL);
}

static void on_nav(cdp_page_t *p, const cdp_nav_result_t *res, void *ud)
{
	cdp_read_t *rd = ud;

	rd->nav_ms = (uv_hrtime() - rd->nav_start_ns) / 1000000u;
	rd->nav.status = res->status;
	rd->nav.http_status = res->http_status;
	rd->final_url = strdup(res->final_url);
	rd->nav_message = strdup(res->message);
	if (!rd->final_url || !rd->nav_message) {
		rd->nav.status = -ENOMEM; /* a failed navigation step says so in nav too */
		finish(rd, -ENOMEM, 0, "out of memory keeping the navigation's outcome", NULL);
		return;
	}
	if (res->status != 0) {
		finish(rd, res->status, 0, res->message, NULL);
		return;
	}
	if (res->http_status >= 400) {
		snprintf(rd->why, sizeof rd->why, "HTTP %ld", res->http_status);
		finish(rd, CDP_EHTTP, 0, rd->why, NULL);
		return;
	}
	next(rd, CDP_READ_NAV);
}

static void on_acted(cdp_page_t *p, int status, const char *why, void *ud)
{
	cdp_read_t *rd = ud;

	if (status != 0)
		finish(rd, status, 0, why, NULL);
	else
		next(rd, CDP_READ_ACTIONS);
}

static void on_waited(cdp_page_t *p, int status, const char *why, void *ud)
{
	cdp_read_t *rd = ud;

	if (status != 0)
		finish(rd, status, 0, why, NULL);
	else
		next(rd, CDP_READ_WAIT);
}

static void on_evaluated(cdp_page_t *p, int status, json_t *value, const char *why, void *ud)
{
	finish(ud, status, 0, why, value);
}

/* A copy of an optional string (NULL or "" stays NULL); 0, or -ENOMEM. */
static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src || !*src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int cdp_page_read(cdp_page_t *p, const cdp_read_req_t *req, cdp_page_read_cb cb, void *ud)
{
	cdp_read_t *rd = NULL;
	int rc = cdp__page_can_start(p);

	if (rc != 0)
		return rc;
	if (!req || !cb || (req->expression && req->function) ||
	    (req->actions && !json_is_array(req->actions)) ||
	    (req->args && !json_is_array(req->args)) ||
	    (req->wait_state != CDP_WAIT_VISIBLE && req->wait_state != CDP_WAIT_ATTACHED) ||
	    (!req->url && !(req->wait_for && *req->wait_for) && !req->expression &&
	     !req->function && !json_array_size(req->actions)))
		return -EINVAL;
	if (json_array_size(req->actions) && (rc = cdp__page_actions_check(req->actions)) != 0)
		return rc;
	rd = calloc(1, sizeof *rd);
	if (!rd)
		return -ENOMEM;
	rd->page = p;
	rd->cb = cb;
	rd->ud = ud;
	rc = dup_opt(&rd->url, req->url);
	if (rc == 0)
		rc = dup_opt(&rd->wait_for, req->wait_for);
	if (rc == 0 && req->expression)
		rc = (rd->expression = strdup(req->expression)) ? 0 : -ENOMEM;
	if (rc == 0 && req->function)
		rc = (rd->function = strdup(req->function)) ? 0 : -ENOMEM;
	if (rc == 0 && json_array_size(req->actions))
		rc = (rd->actions = json_deep_copy(req->actions)) ? 0 : -ENOMEM;
	if (rc == 0 && req->args)
		rc = (rd->args = json_deep_copy(req->args)) ? 0 : -ENOMEM;
	rd->wait_state = req->wait_state;
	rd->value_cap = req->value_cap;
	if (rc != 0)
		goto out;
	rd->cap[CDP_READ_NAV] = req->nav_timeout_ms;
	rd->cap[CDP_READ_WAIT] = req->wait_timeout_ms;
	rd->cap[CDP_READ_EVAL] = req->eval_timeout_ms;
	rd->deadline = uv_now(p->loop) + (req->timeout_ms ? req->timeout_ms
	                                                   : PAGE_DEFAULT_TIMEOUT_MS);
	rc = run_from(rd, CDP_READ_NAV);
	if (rc == 0)
		p->read = rd;
out:
	if (rc != 0)
		read_free(rd);
	return rc;
}

cdp_read_step_t cdp_page_read_step(const cdp_page_t *p)
{
	return p && p->read ? p->read->step : CDP_READ_NONE;
}

int cdp_page_is_idle(const cdp_page_t *p)
{
	return cdp__page_can_start(p) == 0 && !p->read;
}
