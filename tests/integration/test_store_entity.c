/*
 * Integration tests for entities in the Redis store (issue 18) against a real redis-server
 * that each test starts on a temporary unix socket (the harness is storekit.h): an entity's
 * snapshot and delta written to P:entity:E, P:entity-seq:E, the P:changes stream (field
 * "entity") and the channel P:changes:entity:E; the ordering guard; an outage after which
 * the entity gets one resync delta in entity.h's shape; a target and an entity with the same
 * id kept and written apart; and the P:entities hash read like P:targets (adds, changes,
 * removals, refusals, the version gate), next to the targets hash.
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

#include <cmocka.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <uv.h>

#include "store/redis_uv.h"
#include "store/store.h"
#include "tests/support/redis_server.h"
#include "tests/support/storekit.h"
#include "util/log.h"

/* An entity snapshot of id at seq: data {"score": score}, score won by source (provenance),
 * degraded the given list (NULL: []). New reference. */
static json_t *ent_snap(const char *id, uint64_t seq, const char *score, const char *source,
                        const char *degraded)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:{s:s}, s:{s:{s:s, s:s, s:s}}, s:[]}",
	                      "entity", id, "class", "live", "seq", (json_int_t)seq, "updated_at",
	                      "2026-01-01T00:00:00.000Z", "data", "score", score, "provenance",
	                      "score", "source", source, "verified_at", "2026-01-01T00:00:00.000Z",
	                      "changed_at", "2026-01-01T00:00:00.000Z", "degraded");
	assert_non_null(j);
	if (degraded)
		json_array_append_new(json_object_get(j, "degraded"), json_string(degraded));
	return j;
}

/* A delta as the engine makes it (only what the store passes through matters). */
static json_t *ent_delta(const char *id, uint64_t seq, uint64_t prev_seq, const char *from,
                         const char *to)
{
	json_t *j = json_pack("{s:s, s:I, s:I, s:s, s:[], s:[{s:s, s:s, s:s}], s:[], s:{}, s:[]}",
	                      "entity", id, "seq", (json_int_t)seq, "prev_seq",
	                      (json_int_t)prev_seq, "updated_at", "2026-01-01T00:00:00.000Z",
	                      "added", "changed", "path", "/score", "from", from, "to", to,
	                      "removed", "winners", "degraded");
	assert_non_null(j);
	return j;
}

static char *get_str(redisContext *c, const char *k)
{
	redisReply *rep = sk_cmd(c, "GET %s", k);
	char *v = rep->type == REDIS_REPLY_STRING ? strdup(rep->str) : NULL;

	freeReplyObject(rep);
	return v;
}

static long long exists(redisContext *c, const char *k)
{
	redisReply *rep = sk_cmd(c, "EXISTS %s", k);
	long long n = rep->integer;

	freeReplyObject(rep);
	return n;
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

	(void)ac;
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

static void sub_stop(sub_t *sb)
{
	redisAsyncFree(sb->ac);
	assert_true(sk_run_until(sk_flag_set, &sb->closed, 2000));
}

static int two_messages(void *ctx)
{
	return ((sub_t *)ctx)->messages >= 2;
}

/* ---- writes ---- */

/* An entity's results go to its own keys, the stream with the field "entity" and its own
 * channel; a target with the same id is written apart, to its keys, and neither publish
 * reaches the other's channel. */
static void test_entity__keys_stream_channel(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c;
	sub_t se, st_;
	json_t *e1, *e2, *e3, *d1, *d2, *t1, *got, *entries;
	store_stats_t st;
	redisReply *rep;
	char *v, want[64];

	sub_start(&se, r, "cp:changes:entity:match-7");
	sub_start(&st_, r, "cp:changes:match-7");
	sk_opts_for(&o, r, "cp");
	s = store_new(sk_loop, &o);
	assert_non_null(s);
	assert_int_equal(store_start(s), 0);
	assert_true(sk_run_until(sk_is_connected, s, 5000));

	e1 = ent_snap("match-7", 1, "0-0", "siteA-7", NULL);
	e2 = ent_snap("match-7", 2, "1-0", "siteA-7", NULL);
	e3 = ent_snap("match-7", 3, "1-0", "siteA-7", NULL); /* only times: no delta */
	d1 = ent_delta("match-7", 1, 0, "", "0-0");
	d2 = ent_delta("match-7", 2, 1, "0-0", "1-0");
	t1 = sk_snap("match-7", 1, 1, 1);
	store_put_entity(s, e1, d1);
	store_put_entity(s, e2, d2);
	store_put_entity(s, e3, NULL);
	sk_put(s, NULL, t1); /* a target with the same id */
	sk_wait_writes(s, 4);
	store_get_stats(s, &st);
	assert_int_equal(st.writes_ok, 4); /* entity writes are counted with the targets' */
	assert_int_equal(st.refused_seq, 0);

	c = tu_redis_client(r);
	assert_non_null(c);
	got = sk_get_json(c, "cp:entity:match-7");
	assert_true(json_equal(got, e3));
	json_decref(got);
	v = get_str(c, "cp:entity-seq:match-7");
	snprintf(want, sizeof want, "%llu:3", (unsigned long long)st.epoch);
	assert_non_null(v);
	assert_string_equal(v, want);
	free(v);
	got = sk_get_json(c, "cp:latest:match-7"); /* the target's, untouched by the entity */
	assert_true(json_equal(got, t1));
	json_decref(got);
	v = get_str(c, "cp:seq:match-7");
	snprintf(want, sizeof want, "%llu:1", (unsigned long long)st.epoch);
	assert_string_equal(v, want);
	free(v);

	/* the stream: the entity's two deltas under "entity", the target's under "target" */
	entries = sk_stream_of_kind(c, "cp:changes", "entity", "match-7", "-");
	assert_int_equal(json_array_size(entries), 2);
	assert_true(json_equal(json_object_get(json_array_get(entries, 0), "delta"), d1));
	assert_true(json_equal(json_object_get(json_array_get(entries, 1), "delta"), d2));
	json_decref(entries);
	entries = sk_stream_of(c, "cp:changes", "match-7", "-");
	assert_int_equal(json_array_size(entries), 1);
	json_decref(entries);
	rep = sk_cmd(c, "XRANGE cp:changes - + COUNT 1");
	assert_int_equal(rep->elements, 1);
	assert_string_equal(rep->element[0]->element[1]->element[0]->str, "entity");
	assert_string_equal(rep->element[0]->element[1]->element[1]->str, "match-7");
	freeReplyObject(rep);

	/* the channels: two deltas on the entity's, one on the target's */
	assert_true(sk_run_until(two_messages, &se, 5000));
	assert_int_equal(se.messages, 2);
	got = json_loads(se.last, 0, NULL);
	assert_true(json_equal(got, d2));
	json_decref(got);
	assert_int_equal(st_.messages, 1);

	/* the key set: the entity's two keys and nothing else of it */
	rep = sk_cmd(c, "KEYS cp:*");
	assert_int_equal(rep->elements, 6); /* entity, entity-seq, latest, seq, changes, epoch */
	freeReplyObject(rep);

	/* not an entity snapshot: refused before anything is sent */
	store_put_entity(s, t1, NULL); /* "target", no "entity" */
	json_object_set_new(e1, "entity", json_string("a:b"));
	store_put_entity(s, e1, NULL);
	store_get_stats(s, &st);
	assert_int_equal(st.rejected, 2);

	json_decref(e1);
	json_decref(e2);
	json_decref(e3);
	json_decref(d1);
	json_decref(d2);
	json_decref(t1);
	redisFree(c);
	sk_close_store(s);
	sub_stop(&se);
	sub_stop(&st_);
	sk_finish();
}

/* The guard: an older seq of an entity is refused and leaves everything as it was; a
 * greater epoch in P:entity-seq:E refuses this store's writes; the target guard of the
 * same id is another key. */
static void test_entity__ordering_guard(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	json_t *e5, *e3, *e6, *got, *d;
	store_stats_t st;
	redisReply *rep;
	char seqval[64];

	assert_non_null(c);
	sk_opts_for(&o, r, "cp");
	o.snapshot_ttl_s = 100;
	s = store_new(sk_loop, &o);
	store_start(s);
	e5 = ent_snap("m", 5, "5-0", "a", NULL);
	e3 = ent_snap("m", 3, "3-0", "a", NULL);
	e6 = ent_snap("m", 6, "6-0", "a", NULL);
	d = ent_delta("m", 5, 4, "4-0", "5-0");
	store_put_entity(s, e5, d);
	sk_wait_writes(s, 1);
	rep = sk_cmd(c, "TTL cp:entity-seq:m");
	assert_true(rep->integer > 0 && rep->integer <= 100);
	freeReplyObject(rep);

	store_put_entity(s, e3, d);
	sk_wait_writes(s, 2);
	store_get_stats(s, &st);
	assert_int_equal(st.writes_ok, 1);
	assert_int_equal(st.refused_seq, 1);
	got = sk_get_json(c, "cp:entity:m");
	assert_int_equal(seq_of(got), 5);
	json_decref(got);
	rep = sk_cmd(c, "XLEN cp:changes");
	assert_int_equal(rep->integer, 1);
	freeReplyObject(rep);

	snprintf(seqval, sizeof seqval, "%llu:1", (unsigned long long)st.epoch + 100);
	rep = sk_cmd(c, "SET cp:entity-seq:m %s", seqval);
	freeReplyObject(rep);
	store_put_entity(s, e6, NULL);
	sk_wait_writes(s, 3);
	store_get_stats(s, &st);
	assert_int_equal(st.refused_seq, 2);
	got = sk_get_json(c, "cp:entity:m");
	assert_int_equal(seq_of(got), 5);
	json_decref(got);
	assert_int_equal(exists(c, "cp:seq:m"), 0);

	sk_close_store(s);
	json_decref(e5);
	json_decref(e3);
	json_decref(e6);
	json_decref(d);
	redisFree(c);
	sk_finish();
}

static int is_down(void *ctx)
{
	return !sk_is_connected(ctx);
}

static int drained(void *ctx)
{
	store_stats_t st;
	store_get_stats(ctx, &st);
	return st.connected && st.backlog == 0;
}

/* An outage: an entity and a target with the same id both wait in the backlog (two
 * entries), and after it each gets ONE resync delta against what Redis held: the entity's
 * in entity.h's shape (data paths, winner changes, the new degraded list). */
static void test_entity__outage_resync(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c;
	json_t *e1, *e2, *e3, *t1, *t2, *t3, *got, *entries, *d, *ch, *w;
	store_stats_t st;

	sk_opts_for(&o, r, "cp");
	s = store_new(sk_loop, &o);
	store_start(s);
	assert_true(sk_run_until(sk_is_connected, s, 5000));
	e1 = ent_snap("x", 1, "0-0", "siteA", NULL);
	t1 = sk_snap("x", 1, 0, 0);
	d = ent_delta("x", 1, 0, "", "0-0");
	store_put_entity(s, e1, d);
	json_decref(d);
	sk_put(s, NULL, t1);
	sk_wait_writes(s, 2);

	/* the next writes sit unread in a stopped server's socket, then it dies */
	tu_redis_signal(r, SIGSTOP);
	e2 = ent_snap("x", 2, "1-0", "siteA", NULL);
	t2 = sk_snap("x", 2, 1, 0);
	d = ent_delta("x", 2, 1, "0-0", "1-0");
	store_put_entity(s, e2, d);
	json_decref(d);
	sk_put(s, t1, t2);
	sk_run_for(100);
	tu_redis_kill(r);
	assert_true(sk_run_until(is_down, s, 5000));
	e3 = ent_snap("x", 3, "2-0", "siteB", "venue");
	t3 = sk_snap("x", 3, 2, 0);
	d = ent_delta("x", 3, 2, "1-0", "2-0");
	store_put_entity(s, e3, d);
	json_decref(d);
	sk_put(s, t2, t3);
	store_get_stats(s, &st);
	assert_int_equal(st.backlog, 2); /* one entry per kind: the same id never collides */

	assert_int_equal(tu_redis_restart(r), 0);
	assert_true(sk_run_until(drained, s, 10000));
	store_get_stats(s, &st);
	assert_int_equal(st.resyncs, 2);

	c = tu_redis_client(r);
	assert_non_null(c);
	got = sk_get_json(c, "cp:entity:x");
	assert_true(json_equal(got, e3));
	json_decref(got);
	got = sk_get_json(c, "cp:latest:x");
	assert_true(json_equal(got, t3));
	json_decref(got);

	entries = sk_stream_of_kind(c, "cp:changes", "entity", "x", "-");
	assert_int_equal(json_array_size(entries), 2);
	d = json_object_get(json_array_get(entries, 1), "delta");
	assert_string_equal(json_string_value(json_object_get(d, "entity")), "x");
	assert_null(json_object_get(d, "target"));
	assert_int_equal(seq_of(d), 3);
	assert_int_equal(json_integer_value(json_object_get(d, "prev_seq")), 1);
	assert_true(json_is_true(json_object_get(d, "resync")));
	assert_string_equal(json_string_value(json_object_get(d, "updated_at")),
	                    "2026-01-01T00:00:00.000Z");
	ch = json_object_get(d, "changed");
	assert_int_equal(json_array_size(ch), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 0), "path")),
	                    "/score");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 0), "from")),
	                    "0-0");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ch, 0), "to")),
	                    "2-0");
	assert_int_equal(json_array_size(json_object_get(d, "added")), 0);
	assert_int_equal(json_array_size(json_object_get(d, "removed")), 0);
	w = json_object_get(json_object_get(d, "winners"), "score");
	assert_string_equal(json_string_value(json_object_get(w, "from")), "siteA");
	assert_string_equal(json_string_value(json_object_get(w, "to")), "siteB");
	assert_int_equal(json_object_size(json_object_get(d, "winners")), 1);
	assert_int_equal(json_array_size(json_object_get(d, "degraded")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(d, "degraded"), 0)),
	                    "venue");
	json_decref(entries);

	entries = sk_stream_of(c, "cp:changes", "x", "-");
	assert_int_equal(json_array_size(entries), 2);
	d = json_object_get(json_array_get(entries, 1), "delta");
	assert_string_equal(json_string_value(json_object_get(d, "target")), "x");
	assert_int_equal(json_integer_value(json_object_get(d, "prev_seq")), 1);
	assert_true(json_is_true(json_object_get(d, "resync")));
	json_decref(entries);

	redisFree(c);
	sk_close_store(s);
	json_decref(e1);
	json_decref(e2);
	json_decref(e3);
	json_decref(t1);
	json_decref(t2);
	json_decref(t3);
	sk_finish();
}

/* Written before the store ever connected: an entity and a target with the same id are
 * two backlog entries, each resynced against nothing Redis held (or a stored value that
 * is not an entity snapshot: against nothing, not a crash). */
static void test_entity__backlog_before_start(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	json_t *e1, *t1, *got, *entries, *d;
	store_stats_t st;
	redisReply *rep;

	assert_non_null(c);
	rep = sk_cmd(c, "SET cp:entity:y %s", "{\"target\":\"y\",\"seq\":1}");
	freeReplyObject(rep);
	sk_opts_for(&o, r, "cp");
	s = store_new(sk_loop, &o);
	e1 = ent_snap("y", 2, "0-0", "siteA", NULL);
	t1 = sk_snap("y", 1, 0, 0);
	store_put_entity(s, e1, NULL);
	sk_put(s, NULL, t1);
	store_get_stats(s, &st);
	assert_int_equal(st.backlog, 2);
	store_start(s);
	sk_wait_writes(s, 2);
	got = sk_get_json(c, "cp:entity:y");
	assert_true(json_equal(got, e1));
	json_decref(got);
	entries = sk_stream_of_kind(c, "cp:changes", "entity", "y", "-");
	assert_int_equal(json_array_size(entries), 1);
	d = json_object_get(json_array_get(entries, 0), "delta");
	assert_int_equal(json_integer_value(json_object_get(d, "prev_seq")), 0);
	assert_int_equal(json_array_size(json_object_get(d, "added")), 1);
	assert_string_equal(json_string_value(json_object_get(
	                            json_object_get(json_object_get(d, "winners"), "score"), "to")),
	                    "siteA");
	assert_true(json_is_null(json_object_get(
	        json_object_get(json_object_get(d, "winners"), "score"), "from")));
	json_decref(entries);
	sk_close_store(s);
	json_decref(e1);
	json_decref(t1);
	redisFree(c);
	sk_finish();
}

/* ---- the entities hash ---- */

typedef struct hw {
	int calls;
	json_t *last;
	char errors[4096];
} hw_t;

static void on_hash(void *ud, const json_t *obj, const char *errors)
{
	hw_t *w = ud;

	w->calls++;
	json_decref(w->last);
	w->last = json_deep_copy(obj);
	snprintf(w->errors, sizeof w->errors, "%s", errors ? errors : "");
}

typedef struct hw_wait {
	hw_t *w;
	int calls;
} hw_wait_t;

static int hw_called(void *ctx)
{
	hw_wait_t *x = ctx;
	return x->w->calls >= x->calls;
}

typedef struct reads {
	store_t *s;
	uint64_t n;
} reads_t;

static int entities_read(void *ctx)
{
	reads_t *x = ctx;
	store_stats_t st;

	store_get_stats(x->s, &st);
	return st.entities_reads >= x->n;
}

static void hset(redisContext *c, const char *key, const char *field, const char *value)
{
	freeReplyObject(sk_cmd(c, "HSET %s %s %s", key, field, value));
}

#define ENT7 "{\"sources\":[\"a\",\"b\"],\"max_age_seconds\":%d,\"fields\":{\"score\":{\"prefer\":[\"a\"]}}}"

/* P:entities is read like P:targets, next to it and apart from it: adds, changes and
 * removals are seen, bad fields are refused one by one with the documented wording, only
 * changed values are parsed again. */
static void test_entity__watch_entities(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	hw_t ew = { 0 }, tw = { 0 };
	hw_wait_t xe = { &ew, 1 }, xt = { &tw, 1 };
	reads_t rd = { NULL, 0 };
	store_stats_t st;
	json_t *e;
	char v[256];

	assert_non_null(c);
	sk_opts_for(&o, r, "cp");
	o.targets_poll_ms = 100;
	s = store_new(sk_loop, &o);
	rd.s = s;
	store_watch_entities(s, on_hash, &ew);
	store_watch_targets(s, on_hash, &tw);
	store_start(s);
	/* the first read calls back, even with an empty hash */
	assert_true(sk_run_until(hw_called, &xe, 5000));
	assert_true(sk_run_until(hw_called, &xt, 5000));
	assert_int_equal(json_object_size(ew.last), 0);
	assert_string_equal(ew.errors, "");

	/* an add: the entity object with "id" from the field; the targets watcher hears nothing */
	snprintf(v, sizeof v, ENT7, 15);
	hset(c, "cp:entities", "match-7", v);
	xe.calls = 2;
	assert_true(sk_run_until(hw_called, &xe, 3000));
	e = json_object_get(ew.last, "match-7");
	assert_int_equal(json_object_size(ew.last), 1);
	assert_string_equal(json_string_value(json_object_get(e, "id")), "match-7");
	assert_int_equal(json_integer_value(json_object_get(e, "max_age_seconds")), 15);
	assert_int_equal(tw.calls, 1);

	/* a target: the entities watcher hears nothing */
	hset(c, "cp:targets", "m1", "{\"url\":\"http://a.test/\",\"adapter\":\"generic\"}");
	xt.calls = 2;
	assert_true(sk_run_until(hw_called, &xt, 3000));
	assert_non_null(json_object_get(tw.last, "m1"));
	assert_null(json_object_get(ew.last, "m1"));
	assert_int_equal(ew.calls, 2);

	/* a change */
	snprintf(v, sizeof v, ENT7, 20);
	hset(c, "cp:entities", "match-7", v);
	xe.calls = 3;
	assert_true(sk_run_until(hw_called, &xe, 3000));
	e = json_object_get(ew.last, "match-7");
	assert_int_equal(json_integer_value(json_object_get(e, "max_age_seconds")), 20);

	/* bad fields, refused one by one; the good one stays; read again, nothing is parsed
	 * or reported again */
	freeReplyObject(sk_cmd(c, "HSET cp:entities ../evil {} bad %s arr %s other %s",
	                       "not json", "[1]", "{\"id\":\"x\"}"));
	xe.calls = 4;
	assert_true(sk_run_until(hw_called, &xe, 3000));
	assert_int_equal(json_object_size(ew.last), 1);
	assert_non_null(json_object_get(ew.last, "match-7"));
	assert_non_null(strstr(ew.errors, "cp:entities field \"../evil\": not a valid entity id "
	                                  "(1 to 64 of [A-Za-z0-9_.-], not starting with '.' or "
	                                  "'-')"));
	assert_non_null(strstr(ew.errors, "cp:entities field \"bad\": not JSON ("));
	assert_non_null(strstr(ew.errors, "cp:entities field \"arr\": expected an entity object"));
	assert_non_null(strstr(ew.errors,
	                       "cp:entities field \"other\": its \"id\" differs from the field name"));
	store_get_stats(s, &st);
	assert_int_equal(st.entities_parsed, 2 + 4);
	assert_int_equal(st.targets_parsed, 1); /* counted apart */
	rd.n = st.entities_reads + 3;
	assert_true(sk_run_until(entities_read, &rd, 5000));
	store_get_stats(s, &st);
	assert_int_equal(st.entities_parsed, 6);
	assert_int_equal(ew.calls, 4);

	/* removals */
	freeReplyObject(sk_cmd(c, "HDEL cp:entities match-7 ../evil bad arr other"));
	xe.calls = 5;
	assert_true(sk_run_until(hw_called, &xe, 3000));
	assert_int_equal(json_object_size(ew.last), 0);
	assert_string_equal(ew.errors, "");
	assert_non_null(json_object_get(tw.last, "m1")); /* the targets are still there */

	/* the watcher stopped: no more calls */
	store_watch_entities(s, NULL, NULL);
	hset(c, "cp:entities", "match-9", v);
	sk_run_for(400);
	assert_int_equal(ew.calls, 5);

	sk_close_store(s);
	json_decref(ew.last);
	json_decref(tw.last);
	redisFree(c);
	sk_finish();
}

/* P:entities:version gates the whole read of P:entities: a change without a bump is not
 * read, the bump brings it. */
static void test_entity__entities_version_gate(void **state)
{
	tu_redis_t *r = *state;
	store_opts_t o;
	store_t *s;
	redisContext *c = tu_redis_client(r);
	hw_t ew = { 0 };
	hw_wait_t xe = { &ew, 1 };
	reads_t rd = { NULL, 0 };
	store_stats_t st;
	char v[256];

	assert_non_null(c);
	snprintf(v, sizeof v, ENT7, 15);
	hset(c, "cp:entities", "match-7", v);
	sk_opts_for(&o, r, "cp");
	o.targets_poll_ms = 100;
	s = store_new(sk_loop, &o);
	rd.s = s;
	store_watch_entities(s, on_hash, &ew);
	store_start(s);
	assert_true(sk_run_until(hw_called, &xe, 5000));
	assert_non_null(json_object_get(ew.last, "match-7"));

	/* the version gate: a change without a bump is not read, the bump brings it */
	freeReplyObject(sk_cmd(c, "SET cp:entities:version 1"));
	store_get_stats(s, &st);
	rd.n = st.entities_reads + 1;
	assert_true(sk_run_until(entities_read, &rd, 5000)); /* nil -> "1": read */
	snprintf(v, sizeof v, ENT7, 30);
	hset(c, "cp:entities", "match-8", v);
	sk_run_for(800); /* 8 polls */
	store_get_stats(s, &st);
	assert_int_equal(st.entities_reads, rd.n);
	assert_int_equal(ew.calls, 1);
	assert_null(json_object_get(ew.last, "match-8"));
	freeReplyObject(sk_cmd(c, "INCR cp:entities:version"));
	xe.calls = 2;
	assert_true(sk_run_until(hw_called, &xe, 3000));
	assert_non_null(json_object_get(ew.last, "match-8"));
	store_get_stats(s, &st);
	assert_int_equal(st.entities_reads, rd.n + 1);
	assert_int_equal(st.entities_parsed, 2);

	sk_close_store(s);
	json_decref(ew.last);
	redisFree(c);
	sk_finish();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_entity__keys_stream_channel, sk_setup,
		                                sk_teardown),
		cmocka_unit_test_setup_teardown(test_entity__ordering_guard, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_entity__outage_resync, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_entity__backlog_before_start, sk_setup,
		                                sk_teardown),
		cmocka_unit_test_setup_teardown(test_entity__watch_entities, sk_setup, sk_teardown),
		cmocka_unit_test_setup_teardown(test_entity__entities_version_gate, sk_setup,
		                                sk_teardown),
	};
	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
