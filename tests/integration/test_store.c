/*
 * Integration tests for the Redis store against a real redis-server that each test starts
 * on a temporary unix socket (tests/support/redis_server.c): the key contract (latest,
 * stream, publish, health, TTL), the ordering guard, the targets hash, AUTH with an ACL user
 * and a wrong password, a hostile target id, the backlog bound, and an outage (the server
 * killed while writes are unread, restarted on the same socket) after which each target is
 * written once with one net delta.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <uv.h>

#include "adapters/snapshot.h"
#include "store/redis_uv.h"
#include "store/store.h"
#include "tests/support/redis_server.h"
#include "tests/support/testutil.h"
#include "util/log.h"

static uv_loop_t *loop;
static uv_timer_t *wake;

static void on_wake(uv_timer_t *t)
{
	(void)t;
}

typedef int (*pred_fn)(void *ctx);

/* Runs the loop until pred(ctx) holds or timeout_ms passes; 1 if it holds. */
static int run_until(pred_fn pred, void *ctx, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;

	uv_timer_start(wake, on_wake, 10, 10);
	while (!pred(ctx) && tu_now_ms() < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_timer_stop(wake);
	return pred(ctx);
}

static int never(void *ctx)
{
	return 0;
}

static void run_for(uint64_t ms)
{
	run_until(never, NULL, ms);
}

static int setup(void **state)
{
	tu_redis_t *r = calloc(1, sizeof *r);

	if (!r || tu_redis_start(r) != 0) {
		if (r)
			tu_redis_stop(r);
		free(r);
		return -1;
	}
	*state = r;
	loop = calloc(1, sizeof *loop);
	wake = calloc(1, sizeof *wake);
	uv_loop_init(loop);
	uv_timer_init(loop, wake);
	return 0;
}

static int teardown(void **state)
{
	tu_redis_t *r = *state;

	tu_redis_stop(r);
	free(r);
	/* the loop is checked and closed by each test (finish()); after a failure it may be
	 * left open: leak it rather than touch handles a longjmp left behind */
	loop = NULL;
	wake = NULL;
	return 0;
}

static void finish(void)
{
	uv_close((uv_handle_t *)wake, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
	free(wake);
	free(loop);
}

/* ---- store helpers ---- */

static void opts_for(store_opts_t *o, const tu_redis_t *r, const char *prefix)
{
	store_opts_init(o);
	snprintf(o->url, sizeof o->url, "%s", r->url);
	snprintf(o->prefix, sizeof o->prefix, "%s", prefix);
	o->backoff_min_ms = 20;
	o->backoff_max_ms = 300;
	o->health_refresh_ms = 200;
}

static int closed_flag;
static void on_closed(void *ud)
{
	*(int *)ud = 1;
}

static int flag_set(void *ctx)
{
	return *(int *)ctx;
}

static void close_store(store_t *s)
{
	closed_flag = 0;
	store_close(s, on_closed, &closed_flag);
	assert_true(run_until(flag_set, &closed_flag, 10000));
}

static int is_connected(void *ctx)
{
	store_stats_t st;
	store_get_stats(ctx, &st);
	return st.connected;
}

static int is_down(void *ctx)
{
	return !is_connected(ctx);
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

static void wait_writes(store_t *s, uint64_t n)
{
	wait_writes_t w = { s, n };
	store_stats_t st;

	if (!run_until(writes_reached, &w, 10000)) {
		store_get_stats(s, &st);
		fail_msg(
		        "expected %llu writes, have %llu ok, %llu refused, backlog %zu, error \"%s\"",
		        (unsigned long long)n, (unsigned long long)st.writes_ok,
		        (unsigned long long)st.refused_seq, st.backlog, st.last_error);
	}
}

/* A snapshot of target with data {"v": v, "k": k}; new reference. */
static json_t *snap(const char *target, uint64_t seq, int v, int k)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:{s:i, s:i}}", "target", target, "adapter",
	                 "generic", "seq", (json_int_t)seq, "scraped_at",
	                 "2026-01-01T00:00:00.000Z", "data", "v", v, "k", k);
}

/* Puts next with its delta against prev (NULL: first). */
static void put(store_t *s, const json_t *prev, const json_t *next)
{
	json_t *d = NULL;
	assert_int_equal(snapshot_delta(prev, next, &d), 0);
	store_put(s, next, d);
	json_decref(d);
}

/* ---- sync client helpers ---- */

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *rep;

	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(rep);
	return rep;
}

/* GET key parsed as JSON (NULL if missing). */
static json_t *get_json(redisContext *c, const char *k)
{
	redisReply *rep = cmd(c, "GET %s", k);
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

static long long int_cmd(redisContext *c, const char *fmt, const char *arg)
{
	redisReply *rep = cmd(c, fmt, arg);
	long long v;
	assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
	v = rep->integer;
	freeReplyObject(rep);
	return v;
}

static uint64_t seq_of(const json_t *j)
{
	return (uint64_t)json_integer_value(json_object_get(j, "seq"));
}

/* The stream entries of target (in order) as an array of {"seq": n, "delta": {...}}. */
static json_t *stream_of(redisContext *c, const char *stream, const char *target)
{
	redisReply *rep = cmd(c, "XRANGE %s - +", stream);
	json_t *out = json_array();

	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	for (size_t i = 0; i < rep->elements; i++) {
		redisReply *fields = rep->element[i]->element[1];
		const char *t = NULL, *sq = NULL, *d = NULL;
		assert_int_equal(fields->elements, 6);
		for (size_t f = 0; f + 1 < fields->elements; f += 2) {
			const char *name = fields->element[f]->str,
			           *val = fields->element[f + 1]->str;
			if (!strcmp(name, "target"))
				t = val;
			else if (!strcmp(name, "seq"))
				sq = val;
			else if (!strcmp(name, "delta"))
				d = val;
		}
		assert_non_null(t);
		assert_non_null(sq);
		assert_non_null(d);
		if (strcmp(t, target))
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

/* ---- a subscriber on the loop ---- */

typedef struct sub {
	redisAsyncContext *ac;
	int subscribed;
	int messages;
	char last[4096];
	int closed;
} sub_t;

static void on_sub_msg(redisAsyncContext *ac, void *reply, void *privdata)
{
	sub_t *sb = privdata;
	redisReply *r = reply;

	if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
		return;
	if (!strcmp(r->element[0]->str, "subscribe"))
		sb->subscribed = 1;
	else if (!strcmp(r->element[0]->str, "message")) {
		sb->messages++;
		snprintf(sb->last, sizeof sb->last, "%s", r->element[2]->str);
	}
}

static void on_sub_glue_closed(void *ud)
{
	((sub_t *)ud)->closed = 1;
}

static void sub_start(sub_t *sb, const tu_redis_t *r, const char *channel)
{
	memset(sb, 0, sizeof *sb);
	sb->ac = redisAsyncConnectUnix(r->sock);
	assert_non_null(sb->ac);
	assert_int_equal(sb->ac->err, 0);
	assert_int_equal(store_uv_attach(sb->ac, loop, on_sub_glue_closed, sb), 0);
	redisAsyncCommand(sb->ac, on_sub_msg, sb, "SUBSCRIBE %s", channel);
	assert_true(run_until(flag_set, &sb->subscribed, 5000));
}

static int sub_has(void *ctx)
{
	sub_t *sb = ctx;
	return sb->messages >= 2;
}

/* ---- tests ---- */

static void test_store__contract(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c;
	sub_t sb;
	json_t *s1, *s2, *s3, *m2, *latest, *entries, *health;
	redisReply *rep;

	sub_start(&sb, r, "cp:changes:m1");
	opts_for(&o, r, "cp");
	s = store_new(loop, &o);
	assert_non_null(s);
	assert_int_equal(store_start(s), 0);
	assert_int_equal(store_start(s), -EALREADY);
	assert_true(run_until(is_connected, s, 5000));

	s1 = snap("m1", 1, 0, 7);
	s2 = snap("m1", 2, 1, 7);
	s3 = snap("m1", 3, 1, 7); /* same data: no delta */
	m2 = snap("m2", 1, 5, 5);
	put(s, NULL, s1);
	put(s, s1, s2);
	put(s, s2, s3);
	put(s, NULL, m2);
	health = json_pack("{s:s, s:i}", "status", "ok", "targets", 2);
	store_set_health(s, health);
	wait_writes(s, 4);

	c = tu_redis_client(r);
	assert_non_null(c);
	latest = get_json(c, "cp:latest:m1");
	assert_true(json_equal(latest, s3));
	json_decref(latest);
	latest = get_json(c, "cp:latest:m2");
	assert_true(json_equal(latest, m2));
	json_decref(latest);
	assert_int_equal(int_cmd(c, "TTL %s", "cp:latest:m1"), -1); /* no TTL by default */

	/* one stream entry per delta: m1 seq 1 and 2 (3 had no change), m2 seq 1 */
	entries = stream_of(c, "cp:changes", "m1");
	assert_int_equal(json_array_size(entries), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(entries, 0), "seq")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(entries, 1), "seq")), 2);
	{
		json_t *d = json_object_get(json_array_get(entries, 1), "delta");
		json_t *ch = json_object_get(d, "changed");
		assert_int_equal(json_integer_value(json_object_get(d, "prev_seq")), 1);
		assert_int_equal(json_array_size(ch), 1);
		assert_string_equal(
		        json_string_value(json_object_get(json_array_get(ch, 0), "path")), "/v");
	}
	json_decref(entries);
	entries = stream_of(c, "cp:changes", "m2");
	assert_int_equal(json_array_size(entries), 1);
	json_decref(entries);

	/* the live channel got m1's two deltas */
	assert_true(run_until(sub_has, &sb, 5000));
	assert_int_equal(sb.messages, 2);
	{
		json_t *d = json_loads(sb.last, 0, NULL);
		assert_non_null(d);
		assert_int_equal(json_integer_value(json_object_get(d, "seq")), 2);
		json_decref(d);
	}

	/* health, refreshed with an expiry */
	latest = get_json(c, "cp:health");
	assert_true(json_equal(latest, health));
	json_decref(latest);
	assert_true(int_cmd(c, "PTTL %s", "cp:health") > 0);
	run_for(450); /* two refreshes: still there */
	assert_true(int_cmd(c, "PTTL %s", "cp:health") > 0);

	/* the key set is exactly the contract */
	rep = cmd(c, "KEYS cp:*");
	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	assert_int_equal(rep->elements, 7); /* latest x2, seq x2, changes, health, epoch */
	freeReplyObject(rep);

	json_decref(s1);
	json_decref(s2);
	json_decref(s3);
	json_decref(m2);
	json_decref(health);
	close_store(s);
	redisAsyncFree(sb.ac);
	assert_true(run_until(flag_set, &sb.closed, 2000));
	redisFree(c);
	finish();
}

static void test_store__ttl_and_ordering_guard(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s, *s2;
	redisContext *c = tu_redis_client(r);
	json_t *a5, *a3, *a6, *a1, *latest;
	store_stats_t st, st2;
	char seqval[64];
	redisReply *rep;

	assert_non_null(c);
	opts_for(&o, r, "cp");
	o.snapshot_ttl_s = 100;
	s = store_new(loop, &o);
	assert_non_null(s);
	store_start(s);
	a5 = snap("a", 5, 5, 0);
	a3 = snap("a", 3, 3, 0);
	a6 = snap("a", 6, 6, 0);
	a1 = snap("a", 1, 1, 0);
	put(s, NULL, a5);
	wait_writes(s, 1);
	{
		long long ttl = int_cmd(c, "TTL %s", "cp:latest:a");
		assert_true(ttl > 0 && ttl <= 100);
		ttl = int_cmd(c, "TTL %s", "cp:seq:a");
		assert_true(ttl > 0 && ttl <= 100);
	}

	/* an older seq is refused: latest stays at 5, no stream entry for it */
	put(s, NULL, a3);
	wait_writes(s, 2);
	store_get_stats(s, &st);
	assert_int_equal(st.refused_seq, 1);
	assert_int_equal(st.writes_ok, 1);
	latest = get_json(c, "cp:latest:a");
	assert_int_equal(seq_of(latest), 5);
	json_decref(latest);
	assert_int_equal(int_cmd(c, "XLEN %s", "cp:changes"), 1);

	/* a newer writer (a greater epoch) holds the key: this store's seq 6 is refused too */
	snprintf(seqval, sizeof seqval, "%llu:1", (unsigned long long)st.epoch + 100);
	rep = cmd(c, "SET cp:seq:a %s", seqval);
	freeReplyObject(rep);
	put(s, a5, a6);
	wait_writes(s, 3);
	store_get_stats(s, &st);
	assert_int_equal(st.refused_seq, 2);
	latest = get_json(c, "cp:latest:a");
	assert_int_equal(seq_of(latest), 5);
	json_decref(latest);

	/* a restarted daemon (new store, seq from 1 again) wins over the older epoch */
	snprintf(seqval, sizeof seqval, "%llu:5", (unsigned long long)st.epoch);
	rep = cmd(c, "SET cp:seq:a %s", seqval);
	freeReplyObject(rep);
	close_store(s);
	s2 = store_new(loop, &o);
	store_start(s2);
	put(s2, NULL, a1);
	wait_writes(s2, 1);
	store_get_stats(s2, &st2);
	assert_true(st2.epoch > st.epoch);
	assert_int_equal(st2.writes_ok, 1);
	latest = get_json(c, "cp:latest:a");
	assert_int_equal(seq_of(latest), 1);
	json_decref(latest);
	close_store(s2);

	json_decref(a5);
	json_decref(a3);
	json_decref(a6);
	json_decref(a1);
	redisFree(c);
	finish();
}

typedef struct tw {
	int calls;
	json_t *last;
	char errors[4096];
} tw_t;

static void on_targets(void *ud, const json_t *obj, const char *errors)
{
	tw_t *w = ud;
	w->calls++;
	json_decref(w->last);
	w->last = json_deep_copy(obj);
	snprintf(w->errors, sizeof w->errors, "%s", errors ? errors : "");
}

typedef struct tw_wait {
	tw_t *w;
	int calls;
} tw_wait_t;

static int tw_called(void *ctx)
{
	tw_wait_t *x = ctx;
	return x->w->calls >= x->calls;
}

static void test_store__targets_hash_and_hostile_ids(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	tw_t w = { 0 };
	tw_wait_t x = { &w, 1 };
	store_stats_t st;
	json_t *evil;
	redisReply *rep;

	assert_non_null(c);
	opts_for(&o, r, "cp"); /* targets_poll_ms stays at the default: 1 s */
	s = store_new(loop, &o);
	store_watch_targets(s, on_targets, &w);
	store_start(s);
	/* the first read calls back, even with an empty hash */
	assert_true(run_until(tw_called, &x, 5000));
	assert_int_equal(json_object_size(w.last), 0);
	assert_string_equal(w.errors, "");

	rep = cmd(c, "HSET cp:targets m1 %s",
	          "{\"url\":\"http://a.test/\",\"adapter\":\"generic\"}");
	freeReplyObject(rep);
	x.calls = 2;
	assert_true(run_until(tw_called, &x, 3000));
	assert_int_equal(json_object_size(w.last), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(w.last, "m1"), "id")),
	                    "m1");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(w.last, "m1"), "url")),
	        "http://a.test/");

	/* no change: no call */
	run_for(2200);
	assert_int_equal(w.calls, 2);

	/* bad entries are refused one by one, the good one stays */
	rep = cmd(c, "HSET cp:targets ../evil {} bad %s other %s", "not json", "{\"id\":\"m9\"}");
	freeReplyObject(rep);
	x.calls = 3;
	assert_true(run_until(tw_called, &x, 3000));
	assert_int_equal(json_object_size(w.last), 1);
	assert_non_null(json_object_get(w.last, "m1"));
	assert_non_null(strstr(w.errors, "field \"../evil\": not a valid target id"));
	assert_non_null(strstr(w.errors, "field \"bad\": not JSON"));
	assert_non_null(strstr(w.errors, "field \"other\": its \"id\" differs"));

	/* removal is seen */
	rep = cmd(c, "HDEL cp:targets m1 ../evil bad other");
	freeReplyObject(rep);
	x.calls = 4;
	assert_true(run_until(tw_called, &x, 3000));
	assert_int_equal(json_object_size(w.last), 0);
	assert_string_equal(w.errors, "");

	/* a hostile id never reaches a key */
	evil = json_pack("{s:s, s:i, s:{}}", "target", "../../x", "seq", 1, "data");
	store_put(s, evil, NULL);
	json_decref(evil);
	evil = json_pack("{s:s, s:i, s:{}}", "target", "a:b", "seq", 1, "data");
	store_put(s, evil, NULL);
	json_decref(evil);
	evil = json_pack("{s:i, s:i, s:{}}", "target", 3, "seq", 1, "data");
	store_put(s, evil, NULL);
	json_decref(evil);
	evil = json_pack("{s:s, s:i, s:{}}", "target", "ok", "seq", 0, "data");
	store_put(s, evil, NULL);
	json_decref(evil);
	run_for(200);
	store_get_stats(s, &st);
	assert_int_equal(st.rejected, 4);
	assert_int_equal(st.backlog, 0);
	rep = cmd(c, "KEYS *");
	for (size_t i = 0; i < rep->elements; i++)
		if (strstr(rep->element[i]->str, "latest") || strstr(rep->element[i]->str, "x"))
			fail_msg("unexpected key %s", rep->element[i]->str);
	freeReplyObject(rep);

	/* a hash of the wrong type is an error, not a crash */
	rep = cmd(c, "DEL cp:targets");
	freeReplyObject(rep);
	rep = cmd(c, "SET cp:targets oops");
	freeReplyObject(rep);
	run_for(1500);
	store_get_stats(s, &st);
	assert_non_null(strstr(st.last_error, "WRONGTYPE"));
	assert_int_equal(w.calls, 4);

	close_store(s);
	json_decref(w.last);
	redisFree(c);
	finish();
}

static int has_error(void *ctx)
{
	store_stats_t st;
	store_get_stats(ctx, &st);
	return st.last_error[0] != '\0';
}

static void test_store__acl_user_and_wrong_password(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	json_t *a1, *latest;
	store_stats_t st;
	redisReply *rep;

	assert_non_null(c);
	rep = cmd(c, "ACL SETUSER alice on >wonder ~cp2:* &* +@all");
	assert_int_equal(rep->type, REDIS_REPLY_STATUS);
	freeReplyObject(rep);

	opts_for(&o, r, "cp2");
	/* a numeric host still goes through uv_getaddrinfo; "localhost" would need /etc/hosts,
	 * which a fresh debootstrap root does not have */
	snprintf(o.url, sizeof o.url, "redis://alice:wonder@127.0.0.1:%d/2", r->port);
	s = store_new(loop, &o);
	store_start(s);
	a1 = snap("a", 1, 1, 1);
	put(s, NULL, a1);
	wait_writes(s, 1);
	close_store(s);
	rep = cmd(c, "SELECT 2");
	freeReplyObject(rep);
	latest = get_json(c, "cp2:latest:a");
	assert_true(json_equal(latest, a1));
	json_decref(latest);

	/* a wrong password: a clear error naming the user, never connected, no crash */
	snprintf(o.url, sizeof o.url, "redis://alice:nope@127.0.0.1:%d/2", r->port);
	s = store_new(loop, &o);
	store_start(s);
	put(s, NULL, a1);
	assert_true(run_until(has_error, s, 5000));
	run_for(300); /* a few retries */
	store_get_stats(s, &st);
	assert_false(st.connected);
	assert_true(st.degraded);
	assert_int_equal(st.backlog, 1);
	assert_non_null(strstr(st.last_error, "AUTH as user \"alice\""));
	assert_non_null(strstr(st.last_error, "WRONGPASS"));
	assert_null(strstr(st.last_error, "nope"));
	close_store(s);

	json_decref(a1);
	redisFree(c);
	finish();
}

static void test_store__backlog_is_bounded_without_redis(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	store_stats_t st;
	char id[16];

	opts_for(&o, r, "cp");
	snprintf(o.url, sizeof o.url, "unix://%s/nothing-here.sock", r->dir);
	o.backlog_max = 5;
	s = store_new(loop, &o);
	store_start(s);
	for (int round = 1; round <= 3; round++)
		for (int i = 0; i < 8; i++) {
			json_t *j;
			snprintf(id, sizeof id, "t%d", i);
			j = snap(id, (uint64_t)round, round, i);
			store_put(s, j, NULL);
			json_decref(j);
		}
	run_for(300);
	store_get_stats(s, &st);
	assert_false(st.connected);
	assert_true(st.degraded);
	assert_int_equal(st.backlog, 5);
	assert_true(st.drops >= 3);
	assert_non_null(strstr(st.last_error, "nothing-here.sock"));
	close_store(s);

	/* a host name that does not resolve (resolved off the loop): an error, retried */
	snprintf(o.url, sizeof o.url, "redis://no-such-host.invalid:6379/0");
	s = store_new(loop, &o);
	store_start(s);
	assert_true(run_until(has_error, s, 10000));
	store_get_stats(s, &st);
	assert_non_null(
	        strstr(st.last_error, "resolving the host of redis://no-such-host.invalid"));
	close_store(s);
	finish();
}

static void test_store__close_flushes(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	char id[16], k[64];

	opts_for(&o, r, "cp");
	s = store_new(loop, &o);
	/* put before start: queued, written on connection, flushed by close */
	for (int i = 0; i < 300; i++) {
		json_t *j;
		snprintf(id, sizeof id, "t%d", i);
		j = snap(id, 1, i, i);
		put(s, NULL, j);
		json_decref(j);
	}
	store_start(s);
	close_store(s);
	for (int i = 0; i < 300; i++) {
		json_t *j;
		snprintf(k, sizeof k, "cp:latest:t%d", i);
		j = get_json(c, k);
		assert_non_null(j);
		json_decref(j);
	}
	redisFree(c);
	finish();
}

#define NT 10

typedef struct outage {
	store_t *s;
	size_t max_backlog;
} outage_t;

static int drained(void *ctx)
{
	store_stats_t st;
	store_get_stats(ctx, &st);
	return st.connected && st.backlog == 0;
}

/* One scrape round of the NT targets t0..: snapshot seq of each put with its delta against
 * last[i], which it replaces. */
static void put_round(store_t *s, json_t *last[NT], uint64_t seq)
{
	char id[16];

	for (int i = 0; i < NT; i++) {
		json_t *n;
		snprintf(id, sizeof id, "t%d", i);
		n = snap(id, seq, (int)seq, i);
		put(s, last[i], n);
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

	opts_for(&o, r, "cp");
	s = store_new(loop, &o);
	store_start(s);
	assert_true(run_until(is_connected, s, 5000)); /* so these are direct writes */
	for (int i = 0; i < NT; i++) {
		snprintf(id, sizeof id, "t%d", i);
		last[i] = snap(id, seq, 0, i);
		put(s, NULL, last[i]);
	}
	wait_writes(s, NT);

	/* The server stops reading, the next writes sit unread in its socket, then it is
	 * killed: its kernel resets the connection. The glue must let hiredis see it. */
	tu_redis_signal(r, SIGSTOP);
	put_round(s, last, ++seq);
	run_for(200);
	store_get_stats(s, &st);
	assert_true(st.connected); /* nothing answered, nothing noticed yet */
	tu_redis_kill(r);
	assert_true(run_until(is_down, s, 5000));
	store_get_stats(s, &st);
	assert_int_equal(st.backlog, NT); /* the unanswered writes are kept */

	/* scraping goes on during the outage: one entry per target at most */
	for (int round = 0; round < 15; round++) {
		put_round(s, last, ++seq);
		run_for(100);
		store_get_stats(s, &st);
		if (st.backlog > max_backlog)
			max_backlog = st.backlog;
		assert_false(st.connected);
	}
	assert_int_equal(max_backlog, NT);

	assert_int_equal(tu_redis_restart(r), 0);
	assert_true(run_until(drained, s, 10000));
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
		l = get_json(c, k);
		assert_true(json_equal(l, last[i]));
		json_decref(l);
		/* the stream: the first write, then ONE net delta from what Redis held (seq 1) */
		entries = stream_of(c, "cp:changes", id);
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
	close_store(s);
	finish();
}

/* The glue on its own: a GET pending on a connection whose server is killed while data is
 * unread gets its NULL reply, and the disconnect callback fires. */
static int glue_get_done, glue_disc;
static void on_glue_get(redisAsyncContext *ac, void *reply, void *privdata)
{
	glue_get_done = reply ? 1 : 2;
}
static void on_glue_disc(const redisAsyncContext *ac, int status)
{
	glue_disc = 1;
}
static void on_glue_conn(const redisAsyncContext *ac, int status)
{
}
static int both(void *ctx)
{
	return glue_get_done && glue_disc;
}

static void test_store__glue_sees_a_dead_server(void **state)
{
	tu_redis_t *r = *state;
	redisAsyncContext *ac = redisAsyncConnectUnix(r->sock);
	int closed = 0;

	assert_non_null(ac);
	assert_int_equal(ac->err, 0);
	assert_int_equal(store_uv_attach(ac, loop, on_closed, &closed), 0);
	assert_int_equal(store_uv_attach(ac, loop, on_closed, &closed), -EEXIST);
	redisAsyncSetConnectCallback(ac, on_glue_conn);
	redisAsyncSetDisconnectCallback(ac, on_glue_disc);
	glue_get_done = glue_disc = 0;
	tu_redis_signal(r, SIGSTOP);
	for (int i = 0; i < 50; i++)
		redisAsyncCommand(ac, on_glue_get, NULL, "GET some-key-%d", i);
	run_for(200);
	assert_int_equal(glue_get_done, 0);
	tu_redis_kill(r);
	assert_true(run_until(both, NULL, 5000));
	assert_int_equal(glue_get_done, 2); /* NULL reply */
	assert_true(run_until(flag_set, &closed, 2000));
	finish();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store__contract, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store__ttl_and_ordering_guard, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store__targets_hash_and_hostile_ids, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store__acl_user_and_wrong_password, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store__backlog_is_bounded_without_redis, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store__close_flushes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store__glue_sees_a_dead_server, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_store__outage_and_resync, setup, teardown),
	};
	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
