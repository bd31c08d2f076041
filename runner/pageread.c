/*
 * pageread.c: what a target's page read asks the page for, and what its failure means,
 * shared by navigate tasks (task.c) and watched pages (watch.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adapters/adapter.h"
#include "cdp/cdp_err.h"
#include "runner/runner_priv.h"

/* Why a navigation counts as failed (an error, or an HTTP status >= 400), into msg;
 * returns 0 when it succeeded. */
int runner__nav_failure(const cdp_nav_result_t *res, const char *url, char *msg, size_t len)
{
	if (res->status != 0)
		snprintf(msg, len, "loading %.300s failed: %.200s", url,
		         res->message[0] ? res->message : cdp_strerror(res->status));
	else if (res->http_status >= 400)
		snprintf(msg, len, "loading %.300s: HTTP %ld", url, res->http_status);
	else
		return 0;
	return -1;
}

/* The read of rt's page after the navigation: its actions, its wait_for (visible unless
 * the target says attached) and its extraction, or the listing's discovery. */
void runner__read_req(const rtarget_t *rt, cdp_read_req_t *req)
{
	const target_spec_t *sp = &rt->spec;
	const adapter_t *ad = sp->adapter;

	req->actions = sp->actions;
	req->wait_for = ad->wait_for ? ad->wait_for(sp->state) : NULL;
	req->wait_state = sp->wait_attached ? CDP_WAIT_ATTACHED : CDP_WAIT_VISIBLE;
	if (sp->discover) {
		req->expression = ad->discover_js(sp->state);
	} else if (ad->extract_fn) {
		req->function = ad->extract_fn(sp->state);
		req->args = ad->extract_args ? ad->extract_args(sp->state) : NULL;
		req->value_cap = ADAPTER_VALUE_CAP;
	} else {
		req->expression = ad->extract_js(sp->state);
	}
}

int runner__extract(cdp_page_t *page, const rtarget_t *rt, uint32_t timeout_ms, cdp_page_eval_cb cb,
                    void *ud)
{
	const adapter_t *ad = rt->spec.adapter;
	const void *st = rt->spec.state;

	if (ad->extract_fn)
		return cdp_page_call(page, ad->extract_fn(st),
		                     ad->extract_args ? ad->extract_args(st) : NULL,
		                     ADAPTER_VALUE_CAP, timeout_ms, cb, ud);
	return cdp_page_evaluate(page, ad->extract_js(st), timeout_ms, cb, ud);
}

const char *runner__eval_failure(const rtarget_t *rt, int status, const char *why, char *msg,
                                 size_t len)
{
	const char *what = rt->spec.adapter->extract_fn ? "the script" : "extraction";

	/* the page's own words when it has some ("Error: boom (line 3)", "returned a number,
	 * expected a JSON object", "the function did not return within 9000 ms") */
	snprintf(msg, len, "%s failed: %.480s", what, why && *why ? why : cdp_strerror(status));
	if (status == -ETIMEDOUT)
		return RUNNER_KIND_TIMEOUT;
	return status == CDP_EEXCEPTION || status == CDP_EVALUE ? RUNNER_KIND_SCRIPT
	                                                        : RUNNER_KIND_FAILED;
}

/* The kind of a read that failed at its step with its message in msg. */
static const char *read_failure_kind(const cdp_read_result_t *res, const rtarget_t *rt,
                                     const char *url, char *msg, size_t len)
{
	const char *why = *res->why ? res->why : cdp_strerror(res->status);
	const adapter_t *ad = rt->spec.adapter;

	switch (res->failed) {
	case CDP_READ_NAV:
		runner__nav_failure(&res->nav, url, msg, len);
		return res->nav.status == 0            ? RUNNER_KIND_HTTP
		       : res->nav.status == -ETIMEDOUT ? RUNNER_KIND_TIMEOUT
		                                       : RUNNER_KIND_NETWORK;
	case CDP_READ_ACTIONS:
		snprintf(msg, len, "page action failed: %.500s", why);
		return RUNNER_KIND_ACTION;
	case CDP_READ_WAIT:
		snprintf(msg, len, "waiting for \"%.200s\" failed: %.300s",
		         ad->wait_for ? ad->wait_for(rt->spec.state) : "", why);
		return RUNNER_KIND_SELECTOR;
	case CDP_READ_EVAL: return runner__eval_failure(rt, res->status, res->why, msg, len);
	case CDP_READ_NONE: break;
	}
	snprintf(msg, len, "%.500s", why);
	return RUNNER_KIND_FAILED;
}

const char *runner__read_failure(const cdp_read_result_t *res, const rtarget_t *rt, const char *url,
                                 char *msg, size_t len)
{
	const char *kind = read_failure_kind(res, rt, url, msg, len);

	/* whichever step it cut short, a crash or a lost browser is the browser's */
	return res->status == CDP_ECRASHED || res->status == CDP_ECONNLOST ? RUNNER_KIND_BROWSER
	                                                                    : kind;
}

void runner__page_settings(const rtarget_t *rt, pool_page_settings_t *out)
{
	const target_spec_t *sp = &rt->spec;

	memset(out, 0, sizeof *out);
	out->user_agent = sp->user_agent;
	out->viewport_width = sp->viewport_width;
	out->viewport_height = sp->viewport_height;
	out->block_resources = sp->block_resources;
	out->extra_headers_json = sp->headers_json;
	out->cookies_json = sp->cookies_json;
}
