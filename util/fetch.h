/*
 * fetch: HTTP GET with libcurl's multi interface on the caller's libuv loop
 * (uv_poll per socket + one uv_timer), single-threaded.
 *
 * fetch_ctx_t is a handle: fetch_ctx_new(loop) -> fetch_get()... -> fetch_ctx_close(cb).
 * Each fetch_get() is a request: it returns an error and never calls back, or returns 0 and
 * the callback fires exactly once from the loop (with -ECANCELED if the context is closed
 * first). The body passed to the callback is borrowed until the callback returns.
 */
#ifndef CDPILOT_UTIL_FETCH_H
#define CDPILOT_UTIL_FETCH_H

#include <stddef.h>
#include <uv.h>

#include "util/netpolicy.h"

typedef struct fetch_ctx fetch_ctx_t;

typedef struct fetch_result {
	int status;          /* 0 transfer done (any HTTP code); -ETIMEDOUT, -EMSGSIZE (body over
	                        max_bytes), -ECONNREFUSED, -EHOSTUNREACH (DNS), -EACCES (every
	                        address of the host is denied by the policy), -EIO, -ECANCELED */
	long http_code;      /* 0 if no response */
	const char *body;    /* NUL-terminated; "" when empty or on error */
	size_t body_len;
	const char *error;   /* human-readable, never NULL */
} fetch_result_t;

typedef void (*fetch_cb)(const fetch_result_t *res, void *ud);
typedef void (*fetch_close_cb)(void *ud);

fetch_ctx_t *fetch_ctx_new(uv_loop_t *loop);

/*
 * From now on, every connection the context's requests open is checked after DNS, before
 * connect, against policy's DENY networks (netpolicy_check_addr): a denied address gets no
 * socket, and a request left with none fails with -EACCES and an error naming the address
 * and the rule. (Redirects are never followed, so nothing else is reached.) policy is
 * borrowed and must outlive the context; NULL turns the check off (the default). Through
 * a proxy (curl's http_proxy and friends) the address checked is the proxy's.
 */
void fetch_ctx_set_policy(fetch_ctx_t *ctx, const netpolicy_t *policy);

/*
 * GET url (http or https only; redirects are not followed). timeout_ms bounds the whole
 * transfer (0: no limit); max_bytes caps the body (0: 16 MiB; over it: -EMSGSIZE).
 * Returns 0, -EINVAL (NULL url or cb, unusable url), -ECANCELED (the context is closing),
 * -ENOMEM or -EIO. May be called from inside a fetch callback.
 */
int fetch_get(fetch_ctx_t *ctx, const char *url, unsigned timeout_ms, size_t max_bytes,
              fetch_cb cb, void *ud);

/*
 * Pending transfers fail with -ECANCELED (their callbacks run before this returns);
 * close_cb (may be NULL) fires once, from the loop, after every uv handle has closed, and
 * then the context is freed. May be called from inside a fetch callback; a second call is
 * ignored.
 */
void fetch_ctx_close(fetch_ctx_t *ctx, fetch_close_cb cb, void *ud);

#endif
