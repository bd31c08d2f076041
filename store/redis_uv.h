/*
 * redis_uv: cdpilot's libuv glue for hiredis's async event hooks; the only file that sets
 * redisAsyncContext.ev. It replaces hiredis 0.14's bundled adapters/libuv.h, which ignores
 * a poll error status: when redis-server dies with unread data, libuv stops the poll and
 * reports the error with no events, and neither the pending reply callbacks nor the
 * disconnect callback ever fire. This glue then lets hiredis read (and write, if it was
 * waiting to) so that it meets the failure itself: pending callbacks get a NULL reply and
 * the disconnect callback fires.
 *
 * Ownership: the glue's state (a uv_poll_t) belongs to the context. hiredis calls the
 * cleanup hook when the context is freed (redisAsyncFree, a disconnect, an error); the poll
 * handle is then closed on the loop, and closed_cb (if any) fires from the loop once it is,
 * exactly once per successful attach. Run the loop after freeing a context before
 * uv_loop_close().
 */
#ifndef CDPILOT_STORE_REDIS_UV_H
#define CDPILOT_STORE_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/*
 * Attaches ac (just created by redisAsyncConnect*, no ev.data yet) to loop. Call it before
 * redisAsyncSetConnectCallback (see the platform notes). closed_cb(ud) is called once the
 * glue's handle has closed after the context was freed; NULL for none. Returns 0, -EEXIST
 * (already attached), -ENOMEM, or a libuv error (e.g. a bad fd).
 */
int store_uv_attach(redisAsyncContext *ac, uv_loop_t *loop, void (*closed_cb)(void *ud), void *ud);

#endif
