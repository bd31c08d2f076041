/*
 * storekit: the harness of the integration tests of the Redis store (test_store,
 * test_store_outage) against a real redis-server that each case starts on a temporary unix
 * socket (redis_server.h): one loop per case, running it until a condition holds, the
 * store's options, writes and close, and a blocking client's reads of what the store wrote.
 * Written once here so the two files share it (issue 14).
 *
 * Use: register a case with sk_setup/sk_teardown (its state is the tu_redis_t of its
 * server); it builds everything on sk_loop and ends with sk_finish(), which asserts the loop
 * closes.
 */
#ifndef CDPILOT_TESTS_STOREKIT_H
#define CDPILOT_TESTS_STOREKIT_H

#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <uv.h>

#include "store/store.h"
#include "tests/support/redis_server.h"

/* The running case's loop (sk_setup() makes it, sk_finish() closes and frees it). */
extern uv_loop_t *sk_loop;

/* cmocka setup and teardown: start the case's redis-server (*state is its tu_redis_t) and
 * make sk_loop; stop the server. After a failed check the loop is left as it is (leaked). */
int sk_setup(void **state);
int sk_teardown(void **state);
/* Closes the loop's own timer, runs the loop dry and asserts it closes; frees it. */
void sk_finish(void);

typedef int (*sk_pred_fn)(void *ctx);
/* Runs the loop until pred(ctx) holds or timeout_ms passes; 1 if it holds. */
int sk_run_until(sk_pred_fn pred, void *ctx, uint64_t timeout_ms);
/* Runs the loop for ms. */
void sk_run_for(uint64_t ms);
/* Predicate: *(int *)ctx is set. */
int sk_flag_set(void *ctx);
/* Close callback that sets *(int *)ud. */
void sk_on_closed(void *ud);

/* Store options for r's server under prefix, with short backoff and health refresh. */
void sk_opts_for(store_opts_t *o, const tu_redis_t *r, const char *prefix);
/* Closes s and waits (10 s at most) until it has closed. */
void sk_close_store(store_t *s);
/* Predicate: the store (ctx) is connected. */
int sk_is_connected(void *ctx);
/* Waits (10 s at most) for n writes done or refused and an empty backlog; fails the test
 * with the store's stats otherwise. */
void sk_wait_writes(store_t *s, uint64_t n);
/* A snapshot of target with data {"v": v, "k": k}; new reference. */
json_t *sk_snap(const char *target, uint64_t seq, int v, int k);
/* Puts next with its delta against prev (NULL: first). */
void sk_put(store_t *s, const json_t *prev, const json_t *next);

/* A command on the blocking client; asserts a reply (freeReplyObject() it). */
redisReply *sk_cmd(redisContext *c, const char *fmt, ...);
/* GET key parsed as JSON (NULL if missing). */
json_t *sk_get_json(redisContext *c, const char *k);
/* The stream entries of target (in order) from the entry id start ("-": all; "(ID": after
 * ID) as an array of {"seq": n, "delta": {...}}. */
json_t *sk_stream_of(redisContext *c, const char *stream, const char *target,
                     const char *start);
/* The same for the entries of field ("target" or "entity") = id: an entity's entries have
 * "entity" where a target's have "target". */
json_t *sk_stream_of_kind(redisContext *c, const char *stream, const char *field,
                          const char *id, const char *start);

#endif
