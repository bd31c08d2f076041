/*
 * Integration tests for the Redis store's outages against a real redis-server that each
 * test starts on a temporary unix socket (tests/support/redis_server.c; the harness is
 * storekit.h): an outage (the server killed while writes are unread, restarted on the same
 * socket) after which each target is written once with one net delta, and a server that
 * accepts but does not answer (SIGSTOP): noticed within REDIS_TIMEOUT_MS, then one net delta
 * per target after SIGCONT; a shared schedule claim sent to it times out and does not take
 * the lease when the server resumes. Split from test_store.c (issue 14: no file over ~700
 * lines).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <uv.h>

#include "store/share.h"
#include "store/store.h"
#include "tests/support/redis_server.h"
#include "tests/support/storekit.h"
#include "util/log.h"

static int is_down(void *ctx)
{
	return !sk_is_connected(ctx);
}

#define NT 10

static int drained(void *ctx)
{
	store_stats_t st;
	store_get_stats(ctx, &st);
	return st.connected && st.backlog == 0;
}

/* One result for each of targets t0..t{NT-1} at seq (data v = seq), with its delta against
 * last[i], which it replaces. */
static void put_round(store_t *s, json_t *last[NT], uint64_t seq)
{
	char id[16];

	for (int i = 0; i < NT; i++) {
		json_t *n;
		snprintf(id, sizeof id, "t%d", i);
		n = sk_snap(id, seq, (int)seq, i);
		sk_put(s, last[i], n);
		json_decref(last[i]);
		last[i] = n;
	}
}

static void test_store__outage_and_resync(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c;
	json_t *last[NT] = { 0 };
	store_stats_t st;
	char id[16], k[64];
	uint64_t seq = 1;
	size_t max_backlog = 0;

	sk_opts_for(&o, r, "cp");
	s = store_new(sk_loop, &o);
	store_start(s);
	assert_true(sk_run_until(sk_is_connected, s, 5000)); /* so these are direct writes */
	for (int i = 0; i < NT; i++) {
		snprintf(id, sizeof id, "t%d", i);
		last[i] = sk_snap(id, seq, 0, i);
		sk_put(s, NULL, last[i]);
	}
	sk_wait_writes(s, NT);

	/* The server stops reading, the next writes sit unread in its socket, then it is
	 * killed: its kernel resets the connection. The glue must let hiredis see it. */
	tu_redis_signal(r, SIGSTOP);
	put_round(s, last, ++seq);
	sk_run_for(200);
	store_get_stats(s, &st);
	assert_true(st.connected); /* nothing answered, nothing noticed yet */
	tu_redis_kill(r);
	assert_true(sk_run_until(is_down, s, 5000));
	store_get_stats(s, &st);
	assert_int_equal(st.backlog, NT); /* the unanswered writes are kept */

	/* scraping goes on during the outage: one entry per target at most */
	for (int round = 0; round < 15; round++) {
		put_round(s, last, ++seq);
		sk_run_for(100);
		store_get_stats(s, &st);
		if (st.backlog > max_backlog)
			max_backlog = st.backlog;
		assert_false(st.connected);
	}
	assert_int_equal(max_backlog, NT);

	assert_int_equal(tu_redis_restart(r), 0);
	assert_true(sk_run_until(drained, s, 10000));
	store_get_stats(s, &st);
	assert_true(st.reconnects >= 1);
	assert_int_equal(st.drops, 0);
	assert_int_equal(st.resyncs, NT);

	c = tu_redis_client(r);
	assert_non_null(c);
	for (int i = 0; i < NT; i++) {
		json_t *l, *entries, *d, *ch;
		snprintf(id, sizeof id, "t%d", i);
		snprintf(k, sizeof k, "cp:latest:%s", id);
		l = sk_get_json(c, k);
		assert_true(json_equal(l, last[i]));
		json_decref(l);
		/* the stream: the first write, then ONE net delta from what Redis held (seq 1) */
		entries = sk_stream_of(c, "cp:changes", id, "-");
		assert_int_equal(json_array_size(entries), 2);
		d = json_object_get(json_array_get(entries, 1), "delta");
		assert_int_equal(json_integer_value(json_object_get(d, "seq")), seq);
		assert_int_equal(json_integer_value(json_object_get(d, "prev_seq")), 1);
		assert_true(json_is_true(json_object_get(d, "resync")));
		ch = json_object_get(d, "changed");
		assert_int_equal(json_array_size(ch), 1);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(ch, 0), "from")),
		                 0);
		assert_int_equal(json_integer_value(json_object_get(json_array_get(ch, 0), "to")),
		                 seq);
		json_decref(entries);
		json_decref(last[i]);
	}
	redisFree(c);
	sk_close_store(s);
	sk_finish();
}

/* Records when the store first says it is unresponsive (loop clock). */
typedef struct hung {
	store_t *s;
	uint64_t t0, noticed_ms; /* 0: not yet */
} hung_t;

static int watch_unresponsive(void *ctx)
{
	hung_t *h = ctx;
	store_stats_t st;

	store_get_stats(h->s, &st);
	if (st.unresponsive && !h->noticed_ms)
		h->noticed_ms = uv_now(sk_loop) - h->t0 + 1; /* + 1: never 0 once noticed */
	return 0;
}

/* A server that accepts but does not answer (SIGSTOP) while results keep coming once a
 * second: the store gives up on the connection within REDIS_TIMEOUT_MS, keeps the results in
 * the backlog, and after SIGCONT each target gets ONE net change: the writes left in the
 * stopped server's socket run when it resumes, past their deadline, and do nothing. */
static void test_store__unresponsive_server(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	json_t *last[NT] = { 0 };
	store_stats_t st;
	hung_t h = { 0 };
	redisContext *c = tu_redis_client(r);
	redisReply *rep;
	char id[16], k[64], after[80];
	uint64_t seq = 1;

	assert_non_null(c);
	sk_opts_for(&o, r, "cu");
	o.timeout_ms = 500;
	o.backoff_max_ms = 1000;
	h.s = store_new(sk_loop, &o);
	store_start(h.s);
	assert_true(sk_run_until(sk_is_connected, h.s, 5000));
	put_round(h.s, last, seq);
	sk_wait_writes(h.s, NT);
	rep = sk_cmd(c, "XREVRANGE cu:changes + - COUNT 1");
	assert_int_equal(rep->elements, 1);
	snprintf(after, sizeof after, "(%s", rep->element[0]->element[0]->str);
	freeReplyObject(rep);

	tu_redis_signal(r, SIGSTOP);
	uv_update_time(sk_loop);
	h.t0 = uv_now(sk_loop);
	for (int round = 0; round < 5; round++) { /* 5 s, one result per target a second */
		put_round(h.s, last, ++seq);
		sk_run_until(watch_unresponsive, &h, 1000);
	}
	store_get_stats(h.s, &st);
	assert_true(h.noticed_ms > 0);
	/* the first write is at t0; the check runs every timeout / 4 */
	if (h.noticed_ms > o.timeout_ms + 1000)
		fail_msg("unresponsive noticed after %llu ms, expected within %u ms + 1 s",
		         (unsigned long long)h.noticed_ms, o.timeout_ms);
	assert_true(st.unresponsive);
	assert_false(st.connected);
	assert_true(st.degraded);
	assert_true(st.timeouts >= 1);
	assert_int_equal(st.backlog, NT); /* one entry per target, not one per write */
	assert_non_null(strstr(st.last_error, "unresponsive"));

	tu_redis_signal(r, SIGCONT);
	assert_true(sk_run_until(drained, h.s, 15000));
	store_get_stats(h.s, &st);
	assert_false(st.unresponsive);
	assert_int_equal(st.resyncs, NT);
	assert_int_equal(st.drops, 0);
	for (int i = 0; i < NT; i++) {
		json_t *l, *entries, *d;
		snprintf(id, sizeof id, "t%d", i);
		snprintf(k, sizeof k, "cu:latest:%s", id);
		l = sk_get_json(c, k);
		assert_true(json_equal(l, last[i]));
		json_decref(l);
		entries = sk_stream_of(c, "cu:changes", id, after);
		assert_int_equal(json_array_size(entries), 1);
		d = json_object_get(json_array_get(entries, 0), "delta");
		assert_int_equal(json_integer_value(json_object_get(d, "seq")), seq);
		assert_int_equal(json_integer_value(json_object_get(d, "prev_seq")), 1);
		assert_true(json_is_true(json_object_get(d, "resync")));
		json_decref(entries);
		json_decref(last[i]);
	}
	redisFree(c);
	sk_close_store(h.s);
	sk_finish();
}

/* ---- the shared schedule's claims have the same deadline ---- */

typedef struct claimed {
	int done, status;
	uint64_t fence;
} claimed_t;

static void on_claimed(void *ud, int status, uint64_t fence, uint32_t retry_ms)
{
	claimed_t *c = ud;

	(void)retry_ms;
	c->done = 1;
	c->status = status;
	c->fence = fence;
}

/* A store on r (prefix "cs", REDIS_TIMEOUT_MS 500) with a share of instance "inst-a" (lease
 * 5 s) in *sh, connected. */
static store_t *share_store(tu_redis_t *r, share_t **sh)
{
	store_opts_t o;
	share_opts_t so;
	store_t *s;

	sk_opts_for(&o, r, "cs");
	o.timeout_ms = 500;
	s = store_new(sk_loop, &o);
	store_start(s);
	share_opts_init(&so);
	snprintf(so.instance, sizeof so.instance, "inst-a");
	so.lease_ms = 5000;
	*sh = share_new(sk_loop, s, &so, NULL);
	assert_true(sk_run_until(sk_is_connected, s, 5000));
	return s;
}

/* A claim sent to a stopped server is answered -ETIMEDOUT once the store drops the
 * connection, and when the server resumes and runs it, it takes no lease: the claimer gave up
 * on it, so nobody would scrape the target it won. Afterwards claims win again.
 * The claim on x is sent 300 ms after one on y that is still unanswered: the store gives up on
 * both when y has waited timeout_ms, so x's deadline is y's, not 500 ms after x was sent
 * (it was, and a server resumed at once ran x and took its lease). */
static void test_store__share_claim_times_out(void **state)
{
	tu_redis_t *r = *state;
	share_t *sh;
	claimed_t c0 = { 0 }, c1 = { 0 }, c2 = { 0 };
	share_stats_t ss;
	redisContext *c;
	redisReply *rep;
	store_t *s;
	int closed = 0;

	s = share_store(r, &sh);

	tu_redis_signal(r, SIGSTOP);
	share_claim(sh, "y", 0, on_claimed, &c0);
	sk_run_for(300);
	assert_false(c0.done);
	share_claim(sh, "x", 0, on_claimed, &c1);
	assert_true(sk_run_until(sk_flag_set, &c1.done, 5000));
	assert_true(c0.done);
	assert_int_equal(c0.status, -ETIMEDOUT);
	assert_int_equal(c1.status, -ETIMEDOUT);
	share_get_stats(sh, &ss);
	assert_int_equal(ss.timeouts, 2);
	assert_int_equal(ss.won, 0);
	tu_redis_signal(r, SIGCONT); /* at once: x's deadline must have passed already */
	assert_true(sk_run_until(sk_is_connected, s, 10000));

	c = tu_redis_client(r);
	assert_non_null(c);
	rep = sk_cmd(c, "GET cs:lease:y"); /* the late claims ran and did nothing */
	assert_int_equal(rep->type, REDIS_REPLY_NIL);
	freeReplyObject(rep);
	rep = sk_cmd(c, "GET cs:lease:x");
	assert_int_equal(rep->type, REDIS_REPLY_NIL);
	freeReplyObject(rep);
	share_claim(sh, "x", 0, on_claimed, &c2);
	assert_true(sk_run_until(sk_flag_set, &c2.done, 5000));
	assert_int_equal(c2.status, 1);
	assert_true(c2.fence > 0);

	share_close(sh, sk_on_closed, &closed);
	assert_true(sk_run_until(sk_flag_set, &closed, 5000));
	rep = sk_cmd(c, "GET cs:lease:x"); /* handed back on close */
	assert_int_equal(rep->type, REDIS_REPLY_NIL);
	freeReplyObject(rep);
	redisFree(c);
	sk_close_store(s);
	sk_finish();
}

/* A loop that was busy for longer than timeout_ms does not make a server that answered
 * meanwhile unresponsive: its replies are read before anything is judged (libuv runs the
 * deadline timer before it polls, and saw a command 800 ms old with its reply waiting). */
static void test_store__busy_loop_is_not_an_unresponsive_server(void **state)
{
	tu_redis_t *r = *state;
	share_t *sh;
	claimed_t c0 = { 0 }, c1 = { 0 };
	share_stats_t ss;
	store_stats_t st;
	store_t *s;
	int closed = 0;

	s = share_store(r, &sh);
	share_claim(sh, "w", 0, on_claimed, &c0); /* the claim script is loaded */
	assert_true(sk_run_until(sk_flag_set, &c0.done, 5000));
	assert_int_equal(c0.status, 1);

	share_claim(sh, "x", 0, on_claimed, &c1);
	uv_run(sk_loop, UV_RUN_NOWAIT); /* written; its reply cannot have been read yet */
	assert_false(c1.done);
	usleep(800 * 1000);
	assert_true(sk_run_until(sk_flag_set, &c1.done, 5000));
	assert_int_equal(c1.status, 1);
	store_get_stats(s, &st);
	assert_int_equal(st.timeouts, 0);
	share_get_stats(sh, &ss);
	assert_int_equal(ss.timeouts, 0);
	assert_int_equal(ss.won, 2);

	share_close(sh, sk_on_closed, &closed);
	assert_true(sk_run_until(sk_flag_set, &closed, 5000));
	sk_close_store(s);
	sk_finish();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store__outage_and_resync, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__unresponsive_server, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__share_claim_times_out, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__busy_loop_is_not_an_unresponsive_server,
		                                sk_setup, sk_teardown),
	};
	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
