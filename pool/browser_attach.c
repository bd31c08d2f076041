/*
 * browser_attach: connects to a browser someone else runs, named by CDP_URL. A ws:// URL is
 * connected as given; an http://host:port one is first resolved through GET /json/version
 * (with a fetch context the handle owns for the lookup) to its webSocketDebuggerUrl.
 */
#include "pool/browser.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cdp/cdp_err.h"
#include "pool/browser_priv.h"
#include "util/fetch.h"
#include "util/log.h"

#define VERSION_MAX_BYTES ((size_t)1024 * 1024)

/* ---- attach ---- */

void browser__on_fetch_closed(void *ud)
{
	browser_t *b = ud;

	b->fetch = NULL;
	if (b->state == BS_CLOSING)
		browser__close_progress(b);
}

static void on_version(const fetch_result_t *res, void *ud)
{
	browser_t *b = ud;
	char msg[1536];
	json_t *root = NULL;
	json_error_t jerr;
	const char *ws = NULL;

	if (b->state != BS_RESOLVING)
		return; /* cancelled by close or a timeout */
	b->fetch_closing = 1;
	fetch_ctx_close(b->fetch, browser__on_fetch_closed, b);
	if (res->status != 0) {
		snprintf(msg, sizeof msg, "CDP_URL %s: GET /json/version failed: %s", b->attach_url,
		         res->error);
		browser__launch_fail(b, res->status, msg);
		goto out;
	}
	if (res->http_code != 200) {
		snprintf(msg, sizeof msg, "CDP_URL %s: GET /json/version answered HTTP %ld",
		         b->attach_url, res->http_code);
		browser__launch_fail(b, CDP_EBADREPLY, msg);
		goto out;
	}
	root = json_loadb(res->body, res->body_len, 0, &jerr);
	if (!root) {
		snprintf(msg, sizeof msg, "CDP_URL %s: /json/version is not JSON: %s",
		         b->attach_url, jerr.text);
		browser__launch_fail(b, CDP_EBADREPLY, msg);
		goto out;
	}
	if (json_unpack_ex(root, &jerr, 0, "{s:s}", "webSocketDebuggerUrl", &ws) != 0) {
		snprintf(msg, sizeof msg,
		         "CDP_URL %s: /json/version has no string "
		         "webSocketDebuggerUrl (%s)",
		         b->attach_url, jerr.text);
		browser__launch_fail(b, CDP_EBADREPLY, msg);
		goto out;
	}
	if (strncmp(ws, "ws://", 5) != 0 ||
	    snprintf(b->ws_url, sizeof b->ws_url, "%s", ws) >= (int)sizeof b->ws_url) {
		snprintf(msg, sizeof msg,
		         "CDP_URL %s: webSocketDebuggerUrl '%.512s' is not a "
		         "ws:// URL",
		         b->attach_url, ws);
		browser__launch_fail(b, CDP_EBADREPLY, msg);
		goto out;
	}
	log_debug(LOG_COMP, "CDP_URL %s resolved to %s", b->attach_url, b->ws_url);
	browser__start_connect(b);
out:
	json_decref(root);
}

int browser__attach(browser_t *b, const char *url)
{
	char msg[1536], vurl[1200];
	size_t l;
	int rc;

	b->attached = 1;
	if (!(b->attach_url = strdup(url)))
		return -ENOMEM;
	if (strncmp(url, "ws://", 5) == 0) {
		if (snprintf(b->ws_url, sizeof b->ws_url, "%s", url) >= (int)sizeof b->ws_url) {
			browser__launch_fail(b, -EINVAL, "CDP_URL is too long");
			return 0;
		}
		uv_timer_start(&b->t_launch, browser__on_launch_timer, b->launch_timeout_ms, 0);
		browser__start_connect(b);
		return 0;
	}
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(msg, sizeof msg,
		         "CDP_URL '%s': expected ws://host:port/path or "
		         "http://host:port",
		         url);
		browser__launch_fail(b, -EINVAL, msg);
		return 0;
	}
	l = strlen(url);
	while (l > 7 && url[l - 1] == '/')
		l--;
	if (l >= 13 && memcmp(url + l - 13, "/json/version", 13) == 0)
		snprintf(vurl, sizeof vurl, "%.*s", (int)l, url);
	else
		snprintf(vurl, sizeof vurl, "%.*s/json/version", (int)l, url);
	if (!(b->fetch = fetch_ctx_new(b->loop)))
		return -ENOMEM;
	rc = fetch_get(b->fetch, vurl, b->launch_timeout_ms, VERSION_MAX_BYTES, on_version, b);
	if (rc != 0) {
		b->fetch_closing = 1;
		fetch_ctx_close(b->fetch, browser__on_fetch_closed, b);
		snprintf(msg, sizeof msg, "CDP_URL '%s': cannot GET %s: %s", url, vurl,
		         cdp_strerror(rc));
		browser__launch_fail(b, rc == -ENOMEM ? rc : -EINVAL, msg);
		return 0;
	}
	browser__set_state(b, BS_RESOLVING);
	uv_timer_start(&b->t_launch, browser__on_launch_timer, b->launch_timeout_ms, 0);
	return 0;
}
