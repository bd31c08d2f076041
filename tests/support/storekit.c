/*
 * storekit: the harness of the tests of the Redis store against a real redis-server (see
 * storekit.h). Moved out of test_store.c unchanged but for the sk_ prefix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/snapshot.h"
#include "tests/support/storekit.h"
#include "tests/support/testutil.h"

uv_loop_t *sk_loop;
static uv_timer_t *wake;

static void on_wake(uv_timer_t *t)
{
	(void)t;
}

int sk_run_until(sk_pred_fn pred, void *ctx, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;

	uv_timer_start(wake, on_wake, 10, 10);
	while (!pred(ctx) && tu_now_ms() < end)
		uv_run(sk_loop, UV_RUN_ONCE);
	uv_timer_stop(wake);
	return pred(ctx);
}

static int never(void *ctx)
{
	return 0;
}

void sk_run_for(uint64_t ms)
{
	sk_run_until(never, NULL, ms);
}

int sk_setup(void **state)
{
	tu_redis_t *r = calloc(1, sizeof *r);

	if (!r || tu_redis_start(r) != 0) {
		if (r)
			tu_redis_stop(r);
		free(r);
		return -1;
	}
	*state = r;
	sk_loop = calloc(1, sizeof *sk_loop);
	wake = calloc(1, sizeof *wake);
	uv_loop_init(sk_loop);
	uv_timer_init(sk_loop, wake);
	return 0;
}

int sk_teardown(void **state)
{
	tu_redis_t *r = *state;

	tu_redis_stop(r);
	free(r);
	/* the loop is checked and closed by each test (sk_finish()); after a failure it may be
	 * left open: leak it rather than touch handles a longjmp left behind */
	sk_loop = NULL;
	wake = NULL;
	return 0;
}

void sk_finish(void)
{
	uv_close((uv_handle_t *)wake, NULL);
	uv_run(sk_loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(sk_loop), 0);
	free(wake);
	free(sk_loop);
}

/* ---- store helpers ---- */

void sk_opts_for(store_opts_t *o, const tu_redis_t *r, const char *prefix)
{
	store_opts_init(o);
	snprintf(o->url, sizeof o->url, "%s", r->url);
	snprintf(o->prefix, sizeof o->prefix, "%s", prefix);
	o->backoff_min_ms = 20;
	o->backoff_max_ms = 300;
	o->health_refresh_ms = 200;
}

static int closed_flag;
void sk_on_closed(void *ud)
{
	*(int *)ud = 1;
}

int sk_flag_set(void *ctx)
{
	return *(int *)ctx;
}

void sk_close_store(store_t *s)
{
	closed_flag = 0;
	store_close(s, sk_on_closed, &closed_flag);
	assert_true(sk_run_until(sk_flag_set, &closed_flag, 10000));
}

int sk_is_connected(void *ctx)
{
	store_stats_t st;
	store_get_stats(ctx, &st);
	return st.connected;
}

typedef struct wait_writes {
	store_t *s;
	uint64_t n;
} wait_writes_t;

static int writes_reached(void *ctx)
{
	wait_writes_t *w = ctx;
	store_stats_t st;
	store_get_stats(w->s, &st);
	return st.writes_ok + st.refused_seq >= w->n && st.backlog == 0;
}

void sk_wait_writes(store_t *s, uint64_t n)
{
	wait_writes_t w = { s, n };
	store_stats_t st;

	if (!sk_run_until(writes_reached, &w, 10000)) {
		store_get_stats(s, &st);
		fail_msg(
		        "expected %llu writes, have %llu ok, %llu refused, backlog %zu, error \"%s\"",
		        (unsigned long long)n, (unsigned long long)st.writes_ok,
		        (unsigned long long)st.refused_seq, st.backlog, st.last_error);
	}
}

json_t *sk_snap(const char *target, uint64_t seq, int v, int k)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:{s:i, s:i}}", "target", target, "adapter",
	                 "generic", "seq", (json_int_t)seq, "scraped_at",
	                 "2026-01-01T00:00:00.000Z", "data", "v", v, "k", k);
}

void sk_put(store_t *s, const json_t *prev, const json_t *next)
{
	json_t *d = NULL;
	assert_int_equal(snapshot_delta(prev, next, &d), 0);
	store_put(s, next, d);
	json_decref(d);
}

/* ---- sync client helpers ---- */

redisReply *sk_cmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *rep;

	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(rep);
	return rep;
}

json_t *sk_get_json(redisContext *c, const char *k)
{
	redisReply *rep = sk_cmd(c, "GET %s", k);
	json_t *j = NULL;

	if (rep->type == REDIS_REPLY_STRING) {
		j = json_loadb(rep->str, rep->len, 0, NULL);
		assert_non_null(j);
	} else {
		assert_int_equal(rep->type, REDIS_REPLY_NIL);
	}
	freeReplyObject(rep);
	return j;
}

json_t *sk_stream_of(redisContext *c, const char *stream, const char *target,
                     const char *start)
{
	return sk_stream_of_kind(c, stream, "target", target, start);
}

json_t *sk_stream_of_kind(redisContext *c, const char *stream, const char *field,
                          const char *id, const char *start)
{
	redisReply *rep = sk_cmd(c, "XRANGE %s %s +", stream, start);
	json_t *out = json_array();

	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	for (size_t i = 0; i < rep->elements; i++) {
		redisReply *fields = rep->element[i]->element[1];
		const char *t = NULL, *sq = NULL, *d = NULL;
		assert_int_equal(fields->elements, 6);
		for (size_t f = 0; f + 1 < fields->elements; f += 2) {
			const char *name = fields->element[f]->str,
			           *val = fields->element[f + 1]->str;
			if (!strcmp(name, "target") || !strcmp(name, "entity"))
				t = strcmp(name, field) ? "" : val; /* "": the other kind, never id */
			else if (!strcmp(name, "seq"))
				sq = val;
			else if (!strcmp(name, "delta"))
				d = val;
		}
		assert_non_null(t);
		assert_non_null(sq);
		assert_non_null(d);
		if (strcmp(t, id))
			continue;
		json_t *dj = json_loads(d, 0, NULL);
		assert_non_null(dj);
		assert_int_equal(json_integer_value(json_object_get(dj, "seq")),
		                 strtoll(sq, NULL, 10));
		json_array_append_new(out,
		                      json_pack("{s:I, s:o}", "seq",
		                                (json_int_t)strtoll(sq, NULL, 10), "delta", dj));
	}
	freeReplyObject(rep);
	return out;
}

