/*
 * cdp_err: error codes used across cdpilot. Negative errno values (-ETIMEDOUT,
 * -ECANCELED, -EMSGSIZE, -ENOMEM, -EINVAL, ...) plus a few project codes below the
 * errno range. cdp_strerror() names any of them.
 */
#ifndef CDPILOT_CDP_ERR_H
#define CDPILOT_CDP_ERR_H

enum {
	CDP_EPROTOCOL = -10001, /* Chrome answered with {"error": {code, message}} */
	CDP_ECONNLOST = -10002, /* the websocket dropped before the reply came */
	CDP_EBADREPLY = -10003, /* a reply or page value had the wrong shape */
	CDP_ENOBROWSER = -10004, /* no Chromium executable found / it did not start */
	CDP_ECRASHED = -10005,  /* the page's renderer crashed */
	CDP_ENAV = -10006,      /* navigation failed (DNS, connection refused, ...) */
	CDP_EEXCEPTION = -10007, /* JavaScript threw while evaluating */
	CDP_EHTTP = -10008,     /* the page loaded with an HTTP status >= 400 (cdp_page_read) */
	CDP_EVALUE = -10009     /* a page function's value is not what was asked for: not a
	                           JSON object, over the size cap, or not serialisable
	                           (cdp_page_call) */
};

/* A static string for any cdpilot or errno code; never NULL. */
const char *cdp_strerror(int err);

#endif
