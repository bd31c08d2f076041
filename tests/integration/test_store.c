/*
 * Integration tests for the Redis store against a real redis-server that each test starts
 * on a temporary unix socket (tests/support/redis_server.c): the key contract (latest,
 * stream, publish, health, TTL), the ordering guard, the targets hash, AUTH with an ACL user
 * and a wrong password, a hostile target id, the backlog bound, closing with writes pending,
 * and the glue seeing a dead server. Outages and an unresponsive server have their own
 * file, test_store_outage.c; the harness is tests/support/storekit.h.
 */
#include <errno.h>
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
#include "tests/support/storekit.h"
#include "tests/support/testutil.h"
#include "util/log.h"

/* ---- sync client helpers ---- */

static long long int_cmd(redisContext *c, const char *fmt, const char *arg)
{
	redisReply *rep = sk_cmd(c, fmt, arg);
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
	assert_int_equal(store_uv_attach(sb->ac, sk_loop, on_sub_glue_closed, sb), 0);
	redisAsyncCommand(sb->ac, on_sub_msg, sb, "SUBSCRIBE %s", channel);
	assert_true(sk_run_until(sk_flag_set, &sb->subscribed, 5000));
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
	sk_opts_for(&o, r, "cp");
	s = store_new(sk_loop, &o);
	assert_non_null(s);
	assert_int_equal(store_start(s), 0);
	assert_int_equal(store_start(s), -EALREADY);
	assert_true(sk_run_until(sk_is_connected, s, 5000));

	s1 = sk_snap("m1", 1, 0, 7);
	s2 = sk_snap("m1", 2, 1, 7);
	s3 = sk_snap("m1", 3, 1, 7); /* same data: no delta */
	m2 = sk_snap("m2", 1, 5, 5);
	sk_put(s, NULL, s1);
	sk_put(s, s1, s2);
	sk_put(s, s2, s3);
	sk_put(s, NULL, m2);
	health = json_pack("{s:s, s:i}", "status", "ok", "targets", 2);
	store_set_health(s, health);
	sk_wait_writes(s, 4);

	c = tu_redis_client(r);
	assert_non_null(c);
	latest = sk_get_json(c, "cp:latest:m1");
	assert_true(json_equal(latest, s3));
	json_decref(latest);
	latest = sk_get_json(c, "cp:latest:m2");
	assert_true(json_equal(latest, m2));
	json_decref(latest);
	assert_int_equal(int_cmd(c, "TTL %s", "cp:latest:m1"), -1); /* no TTL by default */

	/* one stream entry per delta: m1 seq 1 and 2 (3 had no change), m2 seq 1 */
	entries = sk_stream_of(c, "cp:changes", "m1", "-");
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
	entries = sk_stream_of(c, "cp:changes", "m2", "-");
	assert_int_equal(json_array_size(entries), 1);
	json_decref(entries);

	/* the live channel got m1's two deltas */
	assert_true(sk_run_until(sub_has, &sb, 5000));
	assert_int_equal(sb.messages, 2);
	{
		json_t *d = json_loads(sb.last, 0, NULL);
		assert_non_null(d);
		assert_int_equal(json_integer_value(json_object_get(d, "seq")), 2);
		json_decref(d);
	}

	/* health, refreshed with an expiry */
	latest = sk_get_json(c, "cp:health");
	assert_true(json_equal(latest, health));
	json_decref(latest);
	assert_true(int_cmd(c, "PTTL %s", "cp:health") > 0);
	sk_run_for(450); /* two refreshes: still there */
	assert_true(int_cmd(c, "PTTL %s", "cp:health") > 0);

	/* the key set is exactly the contract */
	rep = sk_cmd(c, "KEYS cp:*");
	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	assert_int_equal(rep->elements, 7); /* latest x2, seq x2, changes, health, epoch */
	freeReplyObject(rep);

	json_decref(s1);
	json_decref(s2);
	json_decref(s3);
	json_decref(m2);
	json_decref(health);
	sk_close_store(s);
	redisAsyncFree(sb.ac);
	assert_true(sk_run_until(sk_flag_set, &sb.closed, 2000));
	redisFree(c);
	sk_finish();
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
	sk_opts_for(&o, r, "cp");
	o.snapshot_ttl_s = 100;
	s = store_new(sk_loop, &o);
	assert_non_null(s);
	store_start(s);
	a5 = sk_snap("a", 5, 5, 0);
	a3 = sk_snap("a", 3, 3, 0);
	a6 = sk_snap("a", 6, 6, 0);
	a1 = sk_snap("a", 1, 1, 0);
	sk_put(s, NULL, a5);
	sk_wait_writes(s, 1);
	{
		long long ttl = int_cmd(c, "TTL %s", "cp:latest:a");
		assert_true(ttl > 0 && ttl <= 100);
		ttl = int_cmd(c, "TTL %s", "cp:seq:a");
		assert_true(ttl > 0 && ttl <= 100);
	}

	/* an older seq is refused: latest stays at 5, no stream entry for it */
	sk_put(s, NULL, a3);
	sk_wait_writes(s, 2);
	store_get_stats(s, &st);
	assert_int_equal(st.refused_seq, 1);
	assert_int_equal(st.writes_ok, 1);
	latest = sk_get_json(c, "cp:latest:a");
	assert_int_equal(seq_of(latest), 5);
	json_decref(latest);
	assert_int_equal(int_cmd(c, "XLEN %s", "cp:changes"), 1);

	/* a newer writer (a greater epoch) holds the key: this store's seq 6 is refused too */
	snprintf(seqval, sizeof seqval, "%llu:1", (unsigned long long)st.epoch + 100);
	rep = sk_cmd(c, "SET cp:seq:a %s", seqval);
	freeReplyObject(rep);
	sk_put(s, a5, a6);
	sk_wait_writes(s, 3);
	store_get_stats(s, &st);
	assert_int_equal(st.refused_seq, 2);
	latest = sk_get_json(c, "cp:latest:a");
	assert_int_equal(seq_of(latest), 5);
	json_decref(latest);

	/* a restarted daemon (new store, seq from 1 again) wins over the older epoch */
	snprintf(seqval, sizeof seqval, "%llu:5", (unsigned long long)st.epoch);
	rep = sk_cmd(c, "SET cp:seq:a %s", seqval);
	freeReplyObject(rep);
	sk_close_store(s);
	s2 = store_new(sk_loop, &o);
	store_start(s2);
	sk_put(s2, NULL, a1);
	sk_wait_writes(s2, 1);
	store_get_stats(s2, &st2);
	assert_true(st2.epoch > st.epoch);
	assert_int_equal(st2.writes_ok, 1);
	latest = sk_get_json(c, "cp:latest:a");
	assert_int_equal(seq_of(latest), 1);
	json_decref(latest);
	sk_close_store(s2);

	json_decref(a5);
	json_decref(a3);
	json_decref(a6);
	json_decref(a1);
	redisFree(c);
	sk_finish();
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

typedef struct tw_reads {
	store_t *s;
	uint64_t reads;
} tw_reads_t;

static int tw_read(void *ctx)
{
	tw_reads_t *x = ctx;
	store_stats_t st;

	store_get_stats(x->s, &st);
	return st.targets_reads >= x->reads;
}

/* Writes n targets (b0..) into cp:targets in one pipeline, generation gen in each. */
static void big_hash(redisContext *c, unsigned n, int gen)
{
	redisReply *rep;

	for (unsigned i = 0; i < n; i++)
		redisAppendCommand(c, "HSET cp:targets b%u {\"url\":\"http://b.test/%u\","
		                      "\"adapter\":\"generic\",\"interval_seconds\":%d}",
		                   i, i, 60 + gen);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(redisGetReply(c, (void **)&rep), REDIS_OK);
		freeReplyObject(rep);
	}
}

/* A big hash, parsed off the loop (store_watch.c): every entry arrives, a change of
 * every entry is seen whole, and closing the store while a read may be parsing neither
 * crashes nor leaks (the close waits for the worker). */
static void test_store__big_targets_hash(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	tw_t w = { 0 };
	tw_wait_t x = { &w, 1 };
	store_stats_t st;
	json_t *t;

	assert_non_null(c);
	sk_opts_for(&o, r, "cp");
	o.targets_poll_ms = 100;
	big_hash(c, 20000, 0);
	s = store_new(sk_loop, &o);
	store_watch_targets(s, on_targets, &w);
	store_start(s);
	assert_true(sk_run_until(tw_called, &x, 20000));
	assert_int_equal(json_object_size(w.last), 20000);
	t = json_object_get(w.last, "b19999");
	assert_string_equal(json_string_value(json_object_get(t, "url")), "http://b.test/19999");
	assert_string_equal(w.errors, "");

	big_hash(c, 20000, 1); /* every entry changed */
	x.calls = 2;
	assert_true(sk_run_until(tw_called, &x, 20000));
	assert_int_equal(json_object_size(w.last), 20000);
	t = json_object_get(w.last, "b0");
	assert_int_equal(json_integer_value(json_object_get(t, "interval_seconds")), 61);
	store_get_stats(s, &st);
	assert_int_equal(st.targets_parsed, 40000);

	big_hash(c, 20000, 2); /* and again, closed while it is read */
	sk_run_for(150);
	sk_close_store(s);
	assert_int_equal(w.calls <= 3, 1);
	json_decref(w.last);
	redisFree(c);
	sk_finish();
}

static void test_store__targets_hash_and_hostile_ids(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	tw_t w = { 0 };
	tw_wait_t x = { &w, 1 };
	tw_reads_t rd = { NULL, 0 };
	store_stats_t st;
	uint64_t parsed;
	json_t *evil;
	redisReply *rep;

	assert_non_null(c);
	sk_opts_for(&o, r, "cp"); /* targets_poll_ms stays at the default: 1 s */
	s = store_new(sk_loop, &o);
	rd.s = s;
	store_watch_targets(s, on_targets, &w);
	store_start(s);
	/* the first read calls back, even with an empty hash */
	assert_true(sk_run_until(tw_called, &x, 5000));
	assert_int_equal(json_object_size(w.last), 0);
	assert_string_equal(w.errors, "");

	rep = sk_cmd(c, "HSET cp:targets m1 %s",
	          "{\"url\":\"http://a.test/\",\"adapter\":\"generic\"}");
	freeReplyObject(rep);
	x.calls = 2;
	assert_true(sk_run_until(tw_called, &x, 3000));
	assert_int_equal(json_object_size(w.last), 1);
	assert_string_equal(json_string_value(json_object_get(json_object_get(w.last, "m1"), "id")),
	                    "m1");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(w.last, "m1"), "url")),
	        "http://a.test/");

	/* no change: no call, and the hash is read again but nothing in it is parsed again */
	store_get_stats(s, &st);
	parsed = st.targets_parsed;
	assert_int_equal(parsed, 1);
	rd.reads = st.targets_reads + 2;
	assert_true(sk_run_until(tw_read, &rd, 5000));
	store_get_stats(s, &st);
	assert_int_equal(st.targets_parsed, parsed);
	assert_int_equal(w.calls, 2);

	/* bad entries are refused one by one, the good one stays */
	rep = sk_cmd(c, "HSET cp:targets ../evil {} bad %s other %s", "not json", "{\"id\":\"m9\"}");
	freeReplyObject(rep);
	x.calls = 3;
	assert_true(sk_run_until(tw_called, &x, 3000));
	assert_int_equal(json_object_size(w.last), 1);
	assert_non_null(json_object_get(w.last, "m1"));
	assert_non_null(strstr(w.errors, "field \"../evil\": not a valid target id"));
	assert_non_null(strstr(w.errors, "field \"bad\": not JSON"));
	assert_non_null(strstr(w.errors, "field \"other\": its \"id\" differs"));
	/* only the three new fields were parsed; read again, the refusals are neither parsed
	 * nor reported (nor logged) again */
	store_get_stats(s, &st);
	assert_int_equal(st.targets_parsed, parsed + 3);
	rd.reads = st.targets_reads + 2;
	assert_true(sk_run_until(tw_read, &rd, 5000));
	store_get_stats(s, &st);
	assert_int_equal(st.targets_parsed, parsed + 3);
	assert_int_equal(w.calls, 3);

	/* with a version key the hash is read only when the version changes: a change
	 * made without bumping it is not seen, the bump brings it */
	rep = sk_cmd(c, "SET cp:targets:version 1");
	freeReplyObject(rep);
	store_get_stats(s, &st);
	rd.reads = st.targets_reads + 1;
	assert_true(sk_run_until(tw_read, &rd, 5000)); /* nil -> "1": read */
	rep = sk_cmd(c, "HSET cp:targets m2 %s",
	             "{\"url\":\"http://b.test/\",\"adapter\":\"generic\"}");
	freeReplyObject(rep);
	sk_run_for(2200);
	store_get_stats(s, &st);
	assert_int_equal(st.targets_reads, rd.reads);
	assert_int_equal(w.calls, 3);
	rep = sk_cmd(c, "INCR cp:targets:version");
	freeReplyObject(rep);
	x.calls = 4;
	assert_true(sk_run_until(tw_called, &x, 3000));
	assert_non_null(json_object_get(w.last, "m2"));
	store_get_stats(s, &st);
	assert_int_equal(st.targets_reads, rd.reads + 1);
	assert_int_equal(st.targets_parsed, parsed + 4);
	rep = sk_cmd(c, "DEL cp:targets:version");
	freeReplyObject(rep);

	/* removal is seen */
	rep = sk_cmd(c, "HDEL cp:targets m1 m2 ../evil bad other");
	freeReplyObject(rep);
	x.calls = 5;
	assert_true(sk_run_until(tw_called, &x, 3000));
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
	sk_run_for(200);
	store_get_stats(s, &st);
	assert_int_equal(st.rejected, 4);
	assert_int_equal(st.backlog, 0);
	rep = sk_cmd(c, "KEYS *");
	for (size_t i = 0; i < rep->elements; i++)
		if (strstr(rep->element[i]->str, "latest") || strstr(rep->element[i]->str, "x"))
			fail_msg("unexpected key %s", rep->element[i]->str);
	freeReplyObject(rep);

	/* a hash of the wrong type is an error, not a crash */
	rep = sk_cmd(c, "DEL cp:targets");
	freeReplyObject(rep);
	rep = sk_cmd(c, "SET cp:targets oops");
	freeReplyObject(rep);
	sk_run_for(1500);
	store_get_stats(s, &st);
	assert_non_null(strstr(st.last_error, "WRONGTYPE"));
	assert_int_equal(w.calls, 5);

	sk_close_store(s);
	json_decref(w.last);
	redisFree(c);
	sk_finish();
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
	rep = sk_cmd(c, "ACL SETUSER alice on >wonder ~cp2:* &* +@all");
	assert_int_equal(rep->type, REDIS_REPLY_STATUS);
	freeReplyObject(rep);

	sk_opts_for(&o, r, "cp2");
	/* a numeric host still goes through uv_getaddrinfo; "localhost" would need /etc/hosts,
	 * which a fresh debootstrap root does not have */
	snprintf(o.url, sizeof o.url, "redis://alice:wonder@127.0.0.1:%d/2", r->port);
	s = store_new(sk_loop, &o);
	store_start(s);
	a1 = sk_snap("a", 1, 1, 1);
	sk_put(s, NULL, a1);
	sk_wait_writes(s, 1);
	sk_close_store(s);
	rep = sk_cmd(c, "SELECT 2");
	freeReplyObject(rep);
	latest = sk_get_json(c, "cp2:latest:a");
	assert_true(json_equal(latest, a1));
	json_decref(latest);

	/* a wrong password: a clear error naming the user, never connected, no crash */
	snprintf(o.url, sizeof o.url, "redis://alice:nope@127.0.0.1:%d/2", r->port);
	s = store_new(sk_loop, &o);
	store_start(s);
	sk_put(s, NULL, a1);
	assert_true(sk_run_until(has_error, s, 5000));
	sk_run_for(300); /* a few retries */
	store_get_stats(s, &st);
	assert_false(st.connected);
	assert_true(st.degraded);
	assert_int_equal(st.backlog, 1);
	assert_non_null(strstr(st.last_error, "AUTH as user \"alice\""));
	assert_non_null(strstr(st.last_error, "WRONGPASS"));
	assert_null(strstr(st.last_error, "nope"));
	sk_close_store(s);

	json_decref(a1);
	redisFree(c);
	sk_finish();
}

static void test_store__backlog_is_bounded_without_redis(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	store_stats_t st;
	char id[16];

	sk_opts_for(&o, r, "cp");
	snprintf(o.url, sizeof o.url, "unix://%s/nothing-here.sock", r->dir);
	o.backlog_max = 5;
	s = store_new(sk_loop, &o);
	store_start(s);
	for (int round = 1; round <= 3; round++)
		for (int i = 0; i < 8; i++) {
			json_t *j;
			snprintf(id, sizeof id, "t%d", i);
			j = sk_snap(id, (uint64_t)round, round, i);
			store_put(s, j, NULL);
			json_decref(j);
		}
	sk_run_for(300);
	store_get_stats(s, &st);
	assert_false(st.connected);
	assert_true(st.degraded);
	assert_int_equal(st.backlog, 5);
	assert_true(st.drops >= 3);
	assert_non_null(strstr(st.last_error, "nothing-here.sock"));
	sk_close_store(s);

	/* a host name that does not resolve (resolved off the loop): an error, retried */
	snprintf(o.url, sizeof o.url, "redis://no-such-host.invalid:6379/0");
	s = store_new(sk_loop, &o);
	store_start(s);
	assert_true(sk_run_until(has_error, s, 10000));
	store_get_stats(s, &st);
	assert_non_null(
	        strstr(st.last_error, "resolving the host of redis://no-such-host.invalid"));
	sk_close_store(s);
	sk_finish();
}

static void test_store__close_flushes(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	char id[16], k[64];

	sk_opts_for(&o, r, "cp");
	s = store_new(sk_loop, &o);
	/* put before start: queued, written on connection, flushed by close */
	for (int i = 0; i < 300; i++) {
		json_t *j;
		snprintf(id, sizeof id, "t%d", i);
		j = sk_snap(id, 1, i, i);
		sk_put(s, NULL, j);
		json_decref(j);
	}
	store_start(s);
	sk_close_store(s);
	for (int i = 0; i < 300; i++) {
		json_t *j;
		snprintf(k, sizeof k, "cp:latest:t%d", i);
		j = sk_get_json(c, k);
		assert_non_null(j);
		json_decref(j);
	}
	redisFree(c);
	sk_finish();
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
	assert_int_equal(store_uv_attach(ac, sk_loop, sk_on_closed, &closed), 0);
	assert_int_equal(store_uv_attach(ac, sk_loop, sk_on_closed, &closed), -EEXIST);
	redisAsyncSetConnectCallback(ac, on_glue_conn);
	redisAsyncSetDisconnectCallback(ac, on_glue_disc);
	glue_get_done = glue_disc = 0;
	tu_redis_signal(r, SIGSTOP);
	for (int i = 0; i < 50; i++)
		redisAsyncCommand(ac, on_glue_get, NULL, "GET some-key-%d", i);
	sk_run_for(200);
	assert_int_equal(glue_get_done, 0);
	tu_redis_kill(r);
	assert_true(sk_run_until(both, NULL, 5000));
	assert_int_equal(glue_get_done, 2); /* NULL reply */
	assert_true(sk_run_until(sk_flag_set, &closed, 2000));
	sk_finish();
}

/* The status field of key (malloc'd) or NULL. */
static char *hget(redisContext *c, const char *key, const char *field)
{
	redisReply *rep = sk_cmd(c, "HGET %s %s", key, field);
	char *v = rep->type == REDIS_REPLY_STRING ? strdup(rep->str) : NULL;

	freeReplyObject(rep);
	return v;
}

typedef struct hwait {
	redisContext *c;
	const char *key, *field, *want;
} hwait_t;

static int hget_is(void *ctx)
{
	hwait_t *w = ctx;
	char *v = hget(w->c, w->key, w->field);
	int ok = v && !strcmp(v, w->want);

	free(v);
	return ok;
}

static long long xlen(redisContext *c, const char *key)
{
	redisReply *rep = sk_cmd(c, "XLEN %s", key);
	long long n = rep->integer;

	freeReplyObject(rep);
	return n;
}

/* Status hashes and events: written at once while connected (strings, numbers, null as
 * ""); while Redis is down the newest status of each target and the events wait, and are
 * written when it is back. */
static void test_store__status_and_events(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c;
	json_t *st1, *st2, *ev;
	hwait_t w;
	char *v;

	sk_opts_for(&o, r, "cp");
	s = store_new(sk_loop, &o);
	assert_int_equal(store_start(s), 0);
	assert_true(sk_run_until(sk_is_connected, s, 5000));
	c = tu_redis_client(r);
	assert_non_null(c);
	st1 = json_pack("{s:s, s:i, s:n, s:b}", "state", "failing", "consecutive_failures", 3,
	                "verified_at", "stale", 1);
	store_set_status(s, "m1", st1);
	ev = json_pack("{s:s, s:s}", "type", "failing", "target", "m1");
	store_event(s, ev);
	store_set_status(s, "bad id!", st1); /* ignored */
	w = (hwait_t){ c, "cp:status:m1", "state", "failing" };
	assert_true(sk_run_until(hget_is, &w, 5000));
	v = hget(c, "cp:status:m1", "consecutive_failures");
	assert_string_equal(v, "3");
	free(v);
	v = hget(c, "cp:status:m1", "verified_at");
	assert_string_equal(v, "");
	free(v);
	v = hget(c, "cp:status:m1", "stale");
	assert_string_equal(v, "true");
	free(v);
	assert_int_equal(xlen(c, "cp:events"), 1);
	redisFree(c);

	/* Redis away: two statuses of m1 (the newer wins) and an event wait */
	tu_redis_kill(r);
	sk_run_for(300);
	st2 = json_pack("{s:s, s:i}", "state", "ok", "consecutive_failures", 0);
	store_set_status(s, "m1", st1);
	store_set_status(s, "m1", st2);
	json_object_set_new(ev, "type", json_string("recovered"));
	store_event(s, ev);
	assert_int_equal(tu_redis_restart(r), 0);
	assert_true(sk_run_until(sk_is_connected, s, 10000));
	c = tu_redis_client(r);
	assert_non_null(c);
	w = (hwait_t){ c, "cp:status:m1", "state", "ok" };
	assert_true(sk_run_until(hget_is, &w, 5000));
	v = hget(c, "cp:status:m1", "consecutive_failures");
	assert_string_equal(v, "0");
	free(v);
	assert_true(xlen(c, "cp:events") >= 2);
	redisFree(c);
	json_decref(st1);
	json_decref(st2);
	json_decref(ev);
	sk_close_store(s);
	sk_finish();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store__contract, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__ttl_and_ordering_guard, sk_setup,
		                                sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__big_targets_hash, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__targets_hash_and_hostile_ids, sk_setup,
		                                sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__acl_user_and_wrong_password, sk_setup,
		                                sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__backlog_is_bounded_without_redis, sk_setup,
		                                sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__close_flushes, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__status_and_events, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_store__glue_sees_a_dead_server, sk_setup,
		                                sk_teardown),
	};
	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
