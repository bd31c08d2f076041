/*
 * test_entities: entities (docs/entities.md) from outside: `cdpilot run` as a process on the
 * fixture's live site, a real redis-server, its JSON-lines sink, /status and /metrics.
 *   - fallback and return: a match read from its page (real Chromium, preferred) and from
 *     the site's listing API; the page fails (500): the entity's fields come from the API
 *     within max_age + interval (the time is measured and printed), still the true values,
 *     with a winner event on P:events and the winner-changes counter; the page comes back:
 *     so do its values, with a winner event "preferred"; the Redis keys as documented
 *     (snapshot and seq guard, the changes stream, the entity's channel);
 *   - SIGHUP: an entity taken out of the targets file leaves /status while its sources run
 *     on, and put back it goes on from its seq (a restart at 1 would be refused by Redis's
 *     ordering guard); an entity in the Redis hash P:entities comes and goes;
 *   - a bad entity in the targets file: exit 2, the error naming the entity and the source.
 */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/daemonkit.h"
#include "tests/support/redis_server.h"
#include "tests/support/testutil.h"

#define MAX_AGE_S 4
#define SWITCH_DEADLINE_MS 30000

typedef struct env {
	dk_bed_t bed;
	tu_redis_t redis;
	char id[16];   /* the live match */
	size_t idx;    /* its index in /live/api/matches' "matches" */
	char ent[40];  /* "m-ID" */
	char page[40]; /* "page-ID" */
	char api[40];  /* "api-ID" */
} env_t;

static int setup(void **state)
{
	return dk_bed_setup(state, sizeof(env_t), "entities");
}

static int teardown(void **state)
{
	env_t *e = *state;

	tu_redis_stop(&e->redis);
	return dk_bed_teardown(state);
}

/* GET the fixture's path (printf-style) as JSON; fails the test if it does not answer. */
static json_t *fx_get(env_t *e, const char *fmt, ...)
{
	char path[256], url[512];
	va_list ap;
	json_t *j;

	va_start(ap, fmt);
	vsnprintf(path, sizeof path, fmt, ap);
	va_end(ap);
	snprintf(url, sizeof url, "%s%s", e->bed.base, path);
	j = dk_http_get_json(url);
	if (!j)
		fail_msg("GET %s: no JSON", url);
	return j;
}

static json_t *daemon_status(env_t *e)
{
	char url[160];

	snprintf(url, sizeof url, "http://%s/status", e->bed.metrics);
	return dk_http_get_json(url);
}

/* The entity's last snapshot in a /status document (borrowed) or NULL. */
static json_t *status_entity(json_t *st, const char *id)
{
	json_t *x;
	size_t i;

	json_array_foreach(json_object_get(st, "entities"), i, x)
	{
		if (!strcmp(json_string_value(json_object_get(x, "entity")) ?: "", id))
			return x;
	}
	return NULL;
}

/* A target's seq in a /status document, -1 if it is not there. */
static json_int_t status_target_seq(json_t *st, const char *id)
{
	json_t *t;
	size_t i;

	json_array_foreach(json_object_get(st, "targets"), i, t)
	{
		if (!strcmp(json_string_value(json_object_get(t, "id")) ?: "", id))
			return json_integer_value(json_object_get(t, "seq"));
	}
	return -1;
}

/* The source of field in a snapshot's provenance, "" if none. */
static const char *prov(const json_t *snap, const char *field)
{
	return json_string_value(json_object_get(
	               json_object_get(json_object_get(snap, "provenance"), field), "source"))
	               ?: "";
}

/* 1 if home, away and minute all come from src. */
static int all_from(const json_t *snap, const char *src)
{
	return snap && !strcmp(prov(snap, "home"), src) && !strcmp(prov(snap, "away"), src) &&
	       !strcmp(prov(snap, "minute"), src);
}

/* The entity id's snapshot in Redis (new reference) or NULL. */
static json_t *redis_entity(redisContext *c, const char *id)
{
	redisReply *rep = redisCommand(c, "GET cdpilot:entity:%s", id);
	json_t *j = NULL;

	if (rep && rep->type == REDIS_REPLY_STRING)
		j = json_loads(rep->str, 0, NULL);
	freeReplyObject(rep);
	return j;
}

/* The last line of the sink of type for entity id (new reference) or NULL. */
static json_t *sink_last(env_t *e, const char *type, const char *id)
{
	json_t *lines = dk_read_jsonl(e->bed.out), *l, *last = NULL;
	size_t i;

	json_array_foreach(lines, i, l)
	{
		if (!strcmp(json_string_value(json_object_get(l, "type")) ?: "", type) &&
		    !strcmp(json_string_value(json_object_get(l, "entity")) ?: "", id))
			last = l;
	}
	json_incref(last);
	json_decref(lines);
	return last;
}

/* The sum of the /metrics samples whose line starts with prefix (then a space). */
static double metric(env_t *e, const char *prefix)
{
	char url[160], *text;
	long code = 0;
	double sum = 0;
	size_t n = strlen(prefix);

	snprintf(url, sizeof url, "http://%s/metrics", e->bed.metrics);
	text = dk_http_get(url, &code);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, prefix, n) && l[n] == ' ')
			sum += strtod(l + n + 1, NULL);
	free(text);
	return sum;
}

/* 1 if P:events has a "winner" event of entity for field from -> to with preferred. */
static int has_winner_event(redisContext *c, const char *entity, const char *field,
                            const char *from, const char *to, const char *preferred)
{
	redisReply *rep = redisCommand(c, "XRANGE cdpilot:events - +");
	int found = 0;

	for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		redisReply *f = rep->element[i]->element[1];
		json_t *o = json_object();
		for (size_t j = 0; j + 1 < f->elements; j += 2)
			json_object_set_new(o, f->element[j]->str,
			                    json_string(f->element[j + 1]->str));
#define IS(k, v) (!strcmp(json_string_value(json_object_get(o, k)) ?: "", v))
		found |= IS("type", "winner") && IS("entity", entity) && IS("field", field) &&
		         IS("from", from) && IS("to", to) && IS("preferred", preferred);
#undef IS
		json_decref(o);
	}
	freeReplyObject(rep);
	return found;
}

/* Resets the site (12 matches, half speed: a match minute every 4 s) and takes its first
 * live match, checking where it sits in the listing API's array. */
static void pick_live_match(env_t *e)
{
	json_t *j = fx_get(e, "/live/ctl/reset?n=12&speed=0.5&seed=3"), *m;
	size_t i;

	json_decref(j);
	j = fx_get(e, "/live/api/matches");
	e->id[0] = '\0';
	json_array_foreach(json_object_get(j, "matches"), i, m)
	{
		if (e->id[0] ||
		    strcmp(json_string_value(json_object_get(m, "status")) ?: "", "live"))
			continue;
		snprintf(e->id, sizeof e->id, "%s", json_string_value(json_object_get(m, "id")));
		e->idx = i;
	}
	assert_true(e->id[0] != '\0');
	/* the array is in id order: matches[i] is match i + 1 */
	assert_int_equal(strtoul(e->id, NULL, 10), e->idx + 1);
	json_decref(j);
	snprintf(e->ent, sizeof e->ent, "m-%s", e->id);
	snprintf(e->page, sizeof e->page, "page-%s", e->id);
	snprintf(e->api, sizeof e->api, "api-%s", e->id);
	print_message("live match %s (matches[%zu])\n", e->id, e->idx);
}

/* The page target (generic, navigate, the match page) and the listing API's (jsonapi). */
static int targets_json(env_t *e, char *buf, size_t len)
{
	return snprintf(
	        buf, len,
	        "{\"id\": \"%s\", \"adapter\": \"generic\", \"url\": \"%s/live/match/%s\", "
	        "\"mode\": \"navigate\", \"class\": \"live\", \"interval_seconds\": 1, "
	        "\"wait_for\": \"#score-away\", \"fields\": {"
	        "\"home\": {\"selector\": \"#score-home\", \"type\": \"int\"}, "
	        "\"away\": {\"selector\": \"#score-away\", \"type\": \"int\"}, "
	        "\"minute\": {\"selector\": \"#minute\", \"type\": \"int\"}}}, "
	        "{\"id\": \"%s\", \"adapter\": \"jsonapi\", \"url\": \"%s/live/api/matches\", "
	        "\"class\": \"live\", \"interval_seconds\": 1, \"fields\": {"
	        "\"home\": {\"pointer\": \"/matches/%zu/score/home\", \"type\": \"int\"}, "
	        "\"away\": {\"pointer\": \"/matches/%zu/score/away\", \"type\": \"int\"}, "
	        "\"minute\": {\"pointer\": \"/matches/%zu/minute\", \"type\": \"int\"}}}",
	        e->page, e->bed.base, e->id, e->api, e->bed.base, e->idx, e->idx, e->idx);
}

/* The entity object m-ID (or another id) over the page and the API. */
static int entity_json(env_t *e, const char *id, char *buf, size_t len)
{
	return snprintf(buf, len,
	                "{\"id\": \"%s\", \"sources\": [\"%s\", \"%s\"], \"max_age_seconds\": "
	                "%d, \"class\": \"live\", \"fields\": {\"home\": {\"prefer\": [\"%s\", "
	                "\"%s\"]}, \"away\": {\"with\": \"home\"}, \"minute\": {\"with\": "
	                "\"home\"}}}",
	                id, e->page, e->api, MAX_AGE_S, e->page, e->api);
}

/* Writes the targets file: both targets, and the entity m-ID if with_entity. */
static void write_targets(env_t *e, int with_entity)
{
	char text[4096], *p = text;
	const char *end = text + sizeof text;

	p += snprintf(p, (size_t)(end - p), "{\"targets\": [");
	p += targets_json(e, p, (size_t)(end - p));
	p += snprintf(p, (size_t)(end - p), "]");
	if (with_entity) {
		p += snprintf(p, (size_t)(end - p), ", \"entities\": [");
		p += entity_json(e, e->ent, p, (size_t)(end - p));
		p += snprintf(p, (size_t)(end - p), "]");
	}
	snprintf(p, (size_t)(end - p), "}\n");
	assert_true(p < end - 2);
	dk_write_file(e->bed.targets, text);
}

static void start(env_t *e, const char *extra)
{
	char url[512];

	assert_int_equal(tu_redis_start(&e->redis), 0);
	snprintf(url, sizeof url, "REDIS_URL=%s", e->redis.url);
	dk_bed_run(&e->bed, (const char *const[]){ url, extra, NULL });
}

/* Waits up to ms for the entity's snapshot in /status to satisfy ok(snap, arg); returns the
 * /status document it was seen in (new reference), or fails the test naming what. */
static json_t *wait_status(env_t *e, const char *id, int (*ok)(const json_t *, const void *),
                           const void *arg, uint64_t ms, const char *what)
{
	json_t *last = NULL;

	for (uint64_t end = tu_now_ms() + ms; tu_now_ms() < end; dk_sleep_ms(100)) {
		json_t *st = daemon_status(e);
		json_decref(last);
		last = st;
		if (st && ok(status_entity(st, id), arg))
			return st;
	}
	{
		char *dump = json_dumps(status_entity(last, id), JSON_COMPACT);
		print_message("%s not seen within %.0f s; last: %s\n", what, ms / 1000.0,
		              dump ?: "(none)");
		free(dump);
	}
	json_decref(last);
	dk_dump_log(&e->bed.d);
	fail_msg("%s", what);
	return NULL;
}

static int ok_all_from(const json_t *snap, const void *src)
{
	return all_from(snap, src);
}

/* 1 if the entity's data (home, away, minute) are the match's true ones now. */
static int data_is_true(env_t *e, const json_t *snap)
{
	json_t *j = fx_get(e, "/live/api/matches");
	json_t *m = json_array_get(json_object_get(j, "matches"), e->idx);
	json_t *d = json_object_get(snap, "data");
	int same =
	        json_integer_value(json_object_get(d, "home")) ==
	                json_integer_value(json_object_get(json_object_get(m, "score"), "home")) &&
	        json_integer_value(json_object_get(d, "away")) ==
	                json_integer_value(json_object_get(json_object_get(m, "score"), "away")) &&
	        json_integer_value(json_object_get(d, "minute")) ==
	                json_integer_value(json_object_get(m, "minute")) &&
	        json_object_get(d, "minute");

	json_decref(j);
	return same;
}

/* Both sources run and the page gives the entity: in /status, Redis and the sink. */
static void check_from_page(env_t *e, redisContext *c)
{
	json_t *st = wait_status(e, e->ent, ok_all_from, e->page, 120000,
	                         "the entity's fields from the page");
	json_t *snap = NULL;

	json_decref(st);
	for (uint64_t end = tu_now_ms() + 60000; tu_now_ms() < end; dk_sleep_ms(200)) {
		st = daemon_status(e);
		int both =
		        status_target_seq(st, e->page) >= 1 && status_target_seq(st, e->api) >= 1;
		json_decref(snap);
		snap = redis_entity(c, e->ent);
		json_decref(st);
		if (both && all_from(snap, e->page))
			break;
	}
	assert_true(all_from(snap, e->page));
	assert_string_equal(json_string_value(json_object_get(snap, "class")), "live");
	json_decref(snap);
	/* the sink is written from the loop after Redis was sent the same snapshot: wait for
	 * the file to have it */
	snap = NULL;
	for (uint64_t end = tu_now_ms() + 30000; tu_now_ms() < end; dk_sleep_ms(200)) {
		json_decref(snap);
		snap = sink_last(e, "entity", e->ent);
		if (all_from(snap, e->page))
			break;
	}
	assert_true(all_from(snap, e->page));
	json_decref(snap);
	st = daemon_status(e);
	assert_string_equal(
	        json_string_value(json_object_get(status_entity(st, e->ent), "defined_in")),
	        "file");
	json_decref(st);
}

/* The page fails: the API gives the fields within max_age + interval (+ slack). Returns
 * the time it took (ms). */
static uint64_t check_fallback(env_t *e, redisContext *c)
{
	const char *winners = "cdpilot_entity_winner_changes_total{class=\"live\"}";
	double before = metric(e, winners);
	json_t *j = fx_get(e, "/live/ctl/fail?id=%s&ms=600000", e->id);
	uint64_t t0 = tu_now_ms(), took;
	json_t *st;

	json_decref(j);
	st = wait_status(e, e->ent, ok_all_from, e->api, SWITCH_DEADLINE_MS,
	                 "the entity's fields from the API after the page failed");
	took = tu_now_ms() - t0;
	print_message("fallback page -> api seen in /status after %.1f s (max_age %d s, "
	              "interval 1 s)\n",
	              took / 1000.0, MAX_AGE_S);
	assert_true(json_array_size(json_object_get(status_entity(st, e->ent), "degraded")) == 0);
	json_decref(st);
	/* the values are still the true ones: compared with the site paused */
	j = fx_get(e, "/live/ctl?speed=0");
	json_decref(j);
	{
		int same = 0;
		for (uint64_t end = tu_now_ms() + 15000; tu_now_ms() < end && !same;
		     dk_sleep_ms(200)) {
			st = daemon_status(e);
			json_t *x = status_entity(st, e->ent);
			same = all_from(x, e->api) && data_is_true(e, x);
			json_decref(st);
		}
		assert_true(same);
	}
	j = fx_get(e, "/live/ctl?speed=0.5");
	json_decref(j);
	{
		int ev = 0;
		for (uint64_t end = tu_now_ms() + 10000; tu_now_ms() < end && !ev; dk_sleep_ms(200))
			ev = has_winner_event(c, e->ent, "home", e->page, e->api, "false");
		assert_true(ev);
	}
	assert_true(metric(e, winners) >= before + 3); /* home, away and minute */
	return took;
}

/* P:entity:E and P:entity-seq:E agree (read together), and P:changes has the entity's
 * deltas. */
static void check_redis_keys(env_t *e, redisContext *c)
{
	redisReply *rep =
	        redisCommand(c, "MGET cdpilot:entity:%s cdpilot:entity-seq:%s", e->ent, e->ent);
	json_t *snap;
	const char *colon;
	int entries = 0;

	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	assert_int_equal(rep->element[0]->type, REDIS_REPLY_STRING);
	assert_int_equal(rep->element[1]->type, REDIS_REPLY_STRING);
	snap = json_loads(rep->element[0]->str, 0, NULL);
	assert_non_null(snap);
	colon = strchr(rep->element[1]->str, ':');
	assert_non_null(colon);
	assert_true(json_integer_value(json_object_get(snap, "seq")) >= 2);
	assert_int_equal(json_integer_value(json_object_get(snap, "seq")),
	                 strtoll(colon + 1, NULL, 10));
	assert_string_equal(json_string_value(json_object_get(snap, "entity")), e->ent);
	json_decref(snap);
	freeReplyObject(rep);

	rep = redisCommand(c, "XRANGE cdpilot:changes - +");
	for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		redisReply *f = rep->element[i]->element[1];
		for (size_t j = 0; j + 1 < f->elements; j += 2)
			entries += !strcmp(f->element[j]->str, "entity") &&
			           !strcmp(f->element[j + 1]->str, e->ent);
	}
	freeReplyObject(rep);
	print_message("P:changes: %d entries of %s\n", entries, e->ent);
	assert_true(entries >= 2);
}

/* A second connection subscribed to the entity's channel (30 s reply timeout). */
static redisContext *subscribe(env_t *e)
{
	redisContext *s = tu_redis_client(&e->redis);
	struct timeval tv = { 30, 0 };
	redisReply *rep;

	assert_non_null(s);
	assert_int_equal(redisSetTimeout(s, tv), REDIS_OK);
	rep = redisCommand(s, "SUBSCRIBE cdpilot:changes:entity:%s", e->ent);
	assert_non_null(rep); /* ["subscribe", channel, 1] */
	freeReplyObject(rep);
	return s;
}

/* The next delta on the subscribed channel (new reference); fails the test on timeout. */
static json_t *next_delta(redisContext *s)
{
	redisReply *rep = NULL;
	json_t *d;

	if (redisGetReply(s, (void **)&rep) != REDIS_OK || !rep)
		fail_msg("no message on the entity's channel within 30 s");
	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	assert_int_equal(rep->elements, 3);
	assert_string_equal(rep->element[0]->str, "message");
	d = json_loads(rep->element[2]->str, 0, NULL);
	assert_non_null(d);
	freeReplyObject(rep);
	return d;
}

/* The page comes back: so do its values, with a winner event "preferred", and the channel
 * carries the delta that says so. */
static void check_return(env_t *e, redisContext *c)
{
	redisContext *s = subscribe(e);
	json_t *j = fx_get(e, "/live/ctl/fail?id=%s&ms=0", e->id), *st, *d;
	uint64_t t0 = tu_now_ms();
	int back = 0;

	json_decref(j);
	st = wait_status(e, e->ent, ok_all_from, e->page, SWITCH_DEADLINE_MS,
	                 "the entity's fields from the page again");
	print_message("return api -> page seen in /status after %.1f s\n",
	              (tu_now_ms() - t0) / 1000.0);
	json_decref(st);
	/* deltas until the one where home goes back to the page */
	for (int i = 0; i < 50 && !back; i++) {
		d = next_delta(s);
		assert_string_equal(json_string_value(json_object_get(d, "entity")), e->ent);
		back = !strcmp(
		        json_string_value(json_object_get(
		                json_object_get(json_object_get(d, "winners"), "home"), "to"))
		                ?: "",
		        e->page);
		if (back)
			assert_string_equal(
			        json_string_value(json_object_get(
			                json_object_get(json_object_get(d, "winners"), "home"),
			                "from")),
			        e->api);
		json_decref(d);
	}
	assert_true(back);
	redisFree(s);
	back = 0;
	for (uint64_t end = tu_now_ms() + 10000; tu_now_ms() < end && !back; dk_sleep_ms(200))
		back = has_winner_event(c, e->ent, "home", e->api, e->page, "true");
	assert_true(back);
	back = 0;
	for (uint64_t end = tu_now_ms() + 10000; tu_now_ms() < end && !back; dk_sleep_ms(200)) {
		json_t *snap = redis_entity(c, e->ent);
		back = all_from(snap, e->page);
		json_decref(snap);
	}
	assert_true(back);
}

static void test_entities__fallback_and_return(void **state)
{
	env_t *e = *state;
	redisContext *c;

	pick_live_match(e);
	write_targets(e, 1);
	start(e, "LOG_LEVEL=info");
	c = tu_redis_client(&e->redis);
	assert_non_null(c);
	check_from_page(e, c);
	check_fallback(e, c);
	check_redis_keys(e, c);
	check_return(e, c);
	redisFree(c);
	dk_stop_clean(&e->bed.d);
}

static int ok_absent(const json_t *snap, const void *arg)
{
	(void)arg;
	return snap == NULL;
}

static int ok_from_redis_hash(const json_t *snap, const void *src)
{
	return all_from(snap, src) &&
	       !strcmp(json_string_value(json_object_get(snap, "defined_in")) ?: "", "redis");
}

/* Every seq of id's lines of type in the sink, in order, grows by one at a time from
 * the first (a restart at 1 would show); returns the last, 0 if none. */
static json_int_t sink_seqs_grow(env_t *e, const char *type, const char *key, const char *id)
{
	json_t *lines = dk_read_jsonl(e->bed.out), *l;
	json_int_t last = 0;
	size_t i;

	json_array_foreach(lines, i, l)
	{
		json_int_t seq = json_integer_value(json_object_get(l, "seq"));
		if (strcmp(json_string_value(json_object_get(l, "type")) ?: "", type) ||
		    strcmp(json_string_value(json_object_get(l, key)) ?: "", id))
			continue;
		if (last && seq != last + 1)
			fail_msg("%s %s: seq %" JSON_INTEGER_FORMAT " after %" JSON_INTEGER_FORMAT,
			         type, id, seq, last);
		last = seq;
	}
	json_decref(lines);
	return last;
}

/* Rewrites the targets file (with or without the entity) and sends SIGHUP. */
static void sighup(env_t *e, int with_entity)
{
	write_targets(e, with_entity);
	assert_int_equal(kill(e->bed.d.pid, SIGHUP), 0);
}

/* The entity out of the file and back, by SIGHUP. Returns the seq it went on from. */
static json_int_t check_sighup(env_t *e, redisContext *c)
{
	json_t *st;
	json_int_t page1, api1, ent_last, seq;

	sighup(e, 0);
	st = wait_status(e, e->ent, ok_absent, NULL, 20000, "the entity gone after SIGHUP");
	page1 = status_target_seq(st, e->page);
	api1 = status_target_seq(st, e->api);
	json_decref(st);
	/* its sources run on, their seq going on from where it was */
	for (uint64_t end = tu_now_ms() + 30000; tu_now_ms() < end; dk_sleep_ms(200)) {
		st = daemon_status(e);
		int on = status_target_seq(st, e->page) > page1 + 1 &&
		         status_target_seq(st, e->api) > api1 + 1;
		json_decref(st);
		if (on)
			break;
	}
	assert_true(sink_seqs_grow(e, "snapshot", "target", e->page) > page1 + 1);
	assert_true(sink_seqs_grow(e, "snapshot", "target", e->api) > api1 + 1);
	ent_last = sink_seqs_grow(e, "entity", "entity", e->ent);
	assert_true(ent_last >= 2);

	sighup(e, 1);
	st = wait_status(e, e->ent, ok_all_from, e->page, 30000, "the entity back after SIGHUP");
	seq = json_integer_value(json_object_get(status_entity(st, e->ent), "seq"));
	print_message("entity seq %" JSON_INTEGER_FORMAT
	              " before it left the file, %" JSON_INTEGER_FORMAT " back\n",
	              ent_last, seq);
	assert_true(seq > ent_last);
	json_decref(st);
	/* Redis takes it (its ordering guard refuses a seq that went back) */
	seq = 0;
	for (uint64_t end = tu_now_ms() + 10000; tu_now_ms() < end && seq <= ent_last;
	     dk_sleep_ms(200)) {
		json_t *snap = redis_entity(c, e->ent);
		seq = json_integer_value(json_object_get(snap, "seq"));
		json_decref(snap);
	}
	assert_true(seq > ent_last);
	return sink_seqs_grow(e, "entity", "entity", e->ent);
}

/* An entity in the hash P:entities comes, then goes. */
static void check_redis_hash(env_t *e, redisContext *c)
{
	char id[40], obj[1024];
	redisReply *rep;
	json_t *st;

	snprintf(id, sizeof id, "m2-%s", e->id);
	entity_json(e, id, obj, sizeof obj);
	rep = redisCommand(c, "HSET cdpilot:entities %s %s", id, obj);
	assert_non_null(rep);
	freeReplyObject(rep);
	freeReplyObject(redisCommand(c, "INCR cdpilot:entities:version"));
	st = wait_status(e, id, ok_from_redis_hash, e->page, 15000,
	                 "the entity of the Redis hash, from the page");
	json_decref(st);
	rep = redisCommand(c, "HDEL cdpilot:entities %s", id);
	assert_non_null(rep);
	assert_int_equal(rep->integer, 1);
	freeReplyObject(rep);
	freeReplyObject(redisCommand(c, "INCR cdpilot:entities:version"));
	st = wait_status(e, id, ok_absent, NULL, 15000, "the entity of the Redis hash gone");
	assert_non_null(status_entity(st, e->ent)); /* the file's stays */
	json_decref(st);
}

static void test_entities__sighup_and_redis_hash(void **state)
{
	env_t *e = *state;
	redisContext *c;
	json_t *st;

	pick_live_match(e);
	write_targets(e, 1);
	start(e, "TARGETS_WATCH_MS=0");
	c = tu_redis_client(&e->redis);
	assert_non_null(c);
	st = wait_status(e, e->ent, ok_all_from, e->page, 120000,
	                 "the entity's fields from the page");
	json_decref(st);
	check_sighup(e, c);
	check_redis_hash(e, c);
	redisFree(c);
	dk_stop_clean(&e->bed.d);
	/* no restart of any seq over the whole run */
	sink_seqs_grow(e, "entity", "entity", e->ent);
	sink_seqs_grow(e, "snapshot", "target", e->page);
	sink_seqs_grow(e, "snapshot", "target", e->api);
}

/* An entity naming a source that is not a target: refused at startup, exit 2, the error
 * naming the entity and the source. */
static void test_entities__bad_entity_exits_2(void **state)
{
	env_t *e = *state;
	char text[2048];
	char *err;

	snprintf(text, sizeof text,
	         "{\"targets\": [{\"id\": \"a1\", \"adapter\": \"jsonapi\", \"url\": "
	         "\"%s/live/api/matches\", \"fields\": {\"n\": {\"pointer\": \"/n\"}}}], "
	         "\"entities\": [{\"id\": \"bad-e\", \"sources\": [\"a1\", \"nope-7\"], "
	         "\"max_age_seconds\": 5, \"fields\": {\"n\": {\"prefer\": [\"a1\"]}}}]}",
	         e->bed.base);
	dk_write_file(e->bed.targets, text);
	dk_bed_run(&e->bed, NULL);
	assert_true(dk_wait(&e->bed.d, 20000));
	assert_true(WIFEXITED(e->bed.d.status));
	assert_int_equal(WEXITSTATUS(e->bed.d.status), 2);
	err = dk_read_file(e->bed.d.err_path);
	print_message("%s", err);
	assert_non_null(strstr(err, "entities[0] \"bad-e\""));
	assert_non_null(strstr(err, "\"nope-7\" is not a known target"));
	free(err);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_entities__bad_entity_exits_2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entities__fallback_and_return, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_entities__sighup_and_redis_hash, setup,
		                                teardown),
	};
	(void)argc;
	(void)argv;
	tu_tag_processes();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
