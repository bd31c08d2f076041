/*
 * Unit tests for entities (entity/entity.h): the parser's errors (every kind, all listed
 * at once), then the engine on a virtual clock (the tests pass now): each rule, the
 * fallback when a preferred source ages or goes and the return to it, degraded fields,
 * conflicts, reconcile, the snapshot and delta shapes, the stats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "entity/entity.h"
#include "tests/support/adaptkit.h"

#define T0 1795443452000LL /* 2026-11-23T14:17:32.000Z */

/* ---- the parser ---- */

static int known(void *ud, const char *id)
{
	static const char *const ids[] = { "a", "b", "c", "d", NULL };
	for (size_t i = 0; ids[i]; i++)
		if (strcmp(ids[i], id) == 0)
			return 1;
	return 0;
}

/* Parses text (an "entities" array) expecting failure; returns the error text (static). */
static const char *parse_fails(const char *text, unsigned *count)
{
	static char buf[8192];
	json_t *arr = ak_parse(text);
	entity_set_t set = { (void *)1, 99 };
	errlist_t errs;

	errlist_init(&errs);
	assert_int_equal(entities_parse_json(arr, "entities", known, NULL, &set, &errs), -22);
	assert_null(set.v);
	assert_int_equal(set.n, 0);
	snprintf(buf, sizeof buf, "%s", errlist_text(&errs));
	*count = errs.count;
	errlist_release(&errs);
	json_decref(arr);
	return buf;
}

static void test_entity__parse_every_error_listed(void **state)
{
	unsigned n = 0;
	const char *t = parse_fails(
	        "[{\"id\": \"m1\", \"sources\": [\"a\", \"zz\", \"b\"], \"max_age_seconds\": 0,"
	        "  \"colour\": 1, \"class\": \"hot\","
	        "  \"fields\": {\"score\": {\"prefer\": [\"c\", \"a\", \"a\"]},"
	        "              \"minute\": {\"with\": \"clock\"}, \"clock\": {\"with\": \"minute\"},"
	        "              \"x\": {\"rule\": \"oldest\"},"
	        "              \"y\": {\"prefer\": [\"a\"], \"rule\": \"newest\"},"
	        "              \"z\": {\"with\": \"score\", \"from\": \"zed\"},"
	        "              \"w\": {\"prefer\": [\"a\"], \"bogus\": 1}, \"v\": {},"
	        "              \"u\": {\"prefr\": [\"a\"], \"rule\": \"newest\"}}},"
	        " {\"id\": \"m1\", \"sources\": [\"a\"], \"max_age_seconds\": 5,"
	        "  \"fields\": {\"s\": {\"rule\": \"newest\"}}},"
	        " {\"id\": \".bad\", \"sources\": [], \"fields\": {}}]",
	        &n);

	ak_assert_has(t, "entities[0] \"m1\": unknown key \"colour\" (allowed: \"id\", "
	                 "\"sources\", \"max_age_seconds\", \"class\", \"conflict_seconds\", "
	                 "\"fields\")");
	ak_assert_has(t, "entities[0] \"m1\": \"sources\"[1]: \"zz\" is not a known target");
	ak_assert_has(t, "entities[0] \"m1\": \"max_age_seconds\": expected a number from 0.1 "
	                 "to 86400, got 0");
	ak_assert_has(t, "entities[0] \"m1\": \"class\": expected \"live\", \"imminent\" or "
	                 "\"completed\", got \"hot\"");
	ak_assert_has(t, "\"fields\": \"score\": \"prefer\"[0]: expected one of the entity's "
	                 "\"sources\", got \"c\"");
	ak_assert_has(t, "\"fields\": \"score\": \"prefer\"[2]: \"a\" is listed twice");
	ak_assert_has(t, "entities[0] \"m1\": \"fields\": \"minute\": \"with\": \"clock\" "
	                 "follows \"minute\" back: a cycle (\"minute\" -> \"clock\" -> "
	                 "\"minute\")");
	ak_assert_has(t, "\"fields\": \"x\": \"rule\": expected \"newest\", got \"oldest\"");
	ak_assert_has(t, "\"fields\": \"y\": expected exactly one of \"prefer\", \"rule\" or "
	                 "\"with\", got more than one");
	ak_assert_has(t, "\"fields\": \"z\": \"from\": only with \"prefer\" or \"rule\"");
	ak_assert_has(t, "\"fields\": \"w\": unknown key \"bogus\" (allowed: \"prefer\", "
	                 "\"rule\", \"with\", \"from\")");
	ak_assert_has(t, "\"fields\": \"v\": expected exactly one of \"prefer\", \"rule\" or "
	                 "\"with\", got none");
	ak_assert_has(t, "entities[1] \"m1\": duplicate id (also entities[0])");
	ak_assert_has(t, "entities[2] \".bad\": \"id\": expected 1 to 64 characters");
	ak_assert_has(t, "entities[2] \".bad\": \"sources\": expected an array of target ids");
	ak_assert_has(t, "entities[2] \".bad\": \"max_age_seconds\": required");
	ak_assert_has(t, "entities[2] \".bad\": \"fields\": expected an object of fields");
	ak_assert_has(t, "\"fields\": \"u\": unknown key \"prefr\" (did you mean \"prefer\"?) "
	                 "(allowed: \"prefer\", \"rule\", \"with\", \"from\")");
	assert_int_equal(n, 18);
}

static void test_entity__parse_cycle_named_once_with_its_chain(void **state)
{
	unsigned n = 0;
	const char *t =
	        parse_fails("[{\"id\": \"m\", \"sources\": [\"a\"], \"max_age_seconds\": 5,"
	                    "  \"fields\": {\"s\": {\"prefer\": [\"a\"]}, \"d\": {\"with\": \"p\"},"
	                    "              \"p\": {\"with\": \"q\"}, \"q\": {\"with\": \"r\"},"
	                    "              \"r\": {\"with\": \"p\"}, \"e\": {\"with\": \"e\"},"
	                    "              \"f\": {\"with\": \"nope\"}}}]",
	                    &n);

	ak_assert_has(t, "entities[0] \"m\": \"fields\": \"p\": \"with\": \"r\" follows \"p\" "
	                 "back: a cycle (\"p\" -> \"q\" -> \"r\" -> \"p\")");
	ak_assert_has(t, "\"fields\": \"e\": \"with\": expected the name of another field of "
	                 "this entity, got \"e\"");
	ak_assert_has(t, "\"fields\": \"f\": \"with\": expected the name of another field of "
	                 "this entity, got \"nope\"");
	assert_int_equal(n, 3); /* "d" leads into the cycle: not a second report */
}

static void test_entity__parse_numbers_and_sources(void **state)
{
	unsigned n = 0;
	const char *t = parse_fails(
	        "[{\"id\": \"m\", \"sources\": [\"a\", 7, \"a\"], \"max_age_seconds\": 86401,"
	        "  \"conflict_seconds\": -1, \"fields\": {\"s\": {\"rule\": \"newest\"}}},"
	        " {\"id\": \"n\", \"sources\": [\"a\"], \"max_age_seconds\": \"15\","
	        "  \"fields\": {\"s\": {\"rule\": \"newest\", \"from\": \"\"}}}]",
	        &n);

	ak_assert_has(t, "entities[0] \"m\": \"sources\"[1]: expected a target id (1 to 64 "
	                 "characters of A-Z a-z 0-9 _ . -), got 7");
	ak_assert_has(t, "entities[0] \"m\": \"sources\"[2]: \"a\" is listed twice");
	ak_assert_has(t, "entities[0] \"m\": \"max_age_seconds\": expected a number from 0.1 "
	                 "to 86400, got 86401");
	ak_assert_has(t, "entities[0] \"m\": \"conflict_seconds\": expected a number from 0 to "
	                 "86400, got -1");
	ak_assert_has(t, "entities[1] \"n\": \"max_age_seconds\": expected a number from 0.1 "
	                 "to 86400, got \"15\"");
	ak_assert_has(t, "entities[1] \"n\": \"fields\": \"s\": \"from\": expected the name of "
	                 "a field of the sources' data, got \"\"");
	assert_int_equal(n, 6);
}

static void test_entity__parse_one_fills_the_spec(void **state)
{
	json_t *o =
	        ak_parse("{\"id\": \"match-7\", \"sources\": [\"a\", \"b\", \"c\"],"
	                 " \"max_age_seconds\": 15, \"class\": \"live\","
	                 " \"fields\": {\"score\": {\"prefer\": [\"c\", \"a\"]},"
	                 "  \"minute\": {\"with\": \"score\"}, \"clock\": {\"rule\": \"newest\"},"
	                 "  \"venue\": {\"prefer\": [\"b\"], \"from\": \"stadium\"}}}");
	entity_spec_t s;
	errlist_t errs;

	errlist_init(&errs);
	assert_int_equal(entities_parse_one(o, "P:entities", NULL, NULL, &s, &errs), 0);
	assert_int_equal(errs.count, 0);
	assert_string_equal(s.id, "match-7");
	assert_int_equal(s.nsources, 3);
	assert_string_equal(s.sources[2], "c");
	assert_int_equal(s.max_age_ms, 15000);
	assert_int_equal(s.conflict_ms, 15000); /* default: max_age */
	assert_int_equal(s.klass, SCHED_LIVE);
	assert_int_equal(s.nfields, 4);
	assert_string_equal(s.fields[0].name, "score");
	assert_int_equal(s.fields[0].rule, ENTITY_PREFER);
	assert_int_equal(s.fields[0].nprefer, 2);
	assert_int_equal(s.fields[0].prefer[0], 2);
	assert_int_equal(s.fields[0].prefer[1], 0);
	assert_int_equal(s.fields[1].rule, ENTITY_WITH);
	assert_int_equal(s.fields[1].with, 0);
	assert_int_equal(s.fields[2].rule, ENTITY_NEWEST);
	assert_string_equal(s.fields[2].from, "clock");
	assert_string_equal(s.fields[3].from, "stadium");
	assert_true(json_equal(s.json, o));
	entity_spec_release(&s);
	errlist_release(&errs);
	json_decref(o);
}

/* ---- the engine ---- */

typedef struct rec {
	json_t *snaps, *deltas, *events; /* what the callbacks got, in order (null: no delta) */
	json_t *winners;                 /* the "winner" events (events: the conflicts) */
	json_t *last;                    /* what callbacks.last answers, or NULL */
} rec_t;

static void on_publish(void *ud, const json_t *snap, const json_t *delta)
{
	rec_t *r = ud;
	json_array_append_new(r->snaps, json_deep_copy(snap));
	json_array_append_new(r->deltas, delta ? json_deep_copy(delta) : json_null());
}

static void on_event(void *ud, const json_t *ev)
{
	rec_t *r = ud;
	const char *type = json_string_value(json_object_get(ev, "event"));
	json_array_append_new(type && strcmp(type, "winner") == 0 ? r->winners : r->events,
	                      json_deep_copy(ev));
}

/* callbacks.last: the targets' last results the test put in rec.last ({target: [data,
 * changed, verified]}). */
static int on_last(void *ud, const char *target, const json_t **data, int64_t *changed,
                   int64_t *verified)
{
	rec_t *r = ud;
	const json_t *l = json_object_get(r->last, target);

	if (!l)
		return 0;
	*data = json_array_get(l, 0);
	*changed = json_integer_value(json_array_get(l, 1));
	*verified = json_integer_value(json_array_get(l, 2));
	return 1;
}

typedef struct fx {
	rec_t rec;
	entity_engine_t *e;
} fx_t;

static int fx_setup(void **state)
{
	fx_t *f = calloc(1, sizeof *f);
	entity_callbacks_t cbs = { .publish = on_publish, .event = on_event, .last = on_last };

	f->rec.snaps = json_array();
	f->rec.deltas = json_array();
	f->rec.events = json_array();
	f->rec.winners = json_array();
	cbs.ud = &f->rec;
	f->e = entity_engine_new(&cbs);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	fx_t *f = *state;
	entity_engine_free(f->e);
	json_decref(f->rec.snaps);
	json_decref(f->rec.deltas);
	json_decref(f->rec.events);
	json_decref(f->rec.winners);
	json_decref(f->rec.last);
	free(f);
	return 0;
}

/* Reconciles source "" to the entities of text; returns the refused count. */
static size_t load(fx_t *f, const char *text, const char *source, int64_t now)
{
	json_t *arr = ak_parse(text);
	entity_set_t set;
	errlist_t errs;
	size_t refused;

	errlist_init(&errs);
	if (entities_parse_json(arr, "entities", NULL, NULL, &set, &errs) != 0)
		fail_msg("%s", errlist_text(&errs));
	refused = entity_engine_reconcile(f->e, &set, source, now);
	entities_release(&set);
	errlist_release(&errs);
	json_decref(arr);
	return refused;
}

static void feed(fx_t *f, const char *target, const char *data, int64_t scraped, int64_t now)
{
	json_t *d = ak_parse(data);
	entity_engine_source_data(f->e, target, d, scraped, scraped, now);
	json_decref(d);
}

static size_t nsnaps(const fx_t *f)
{
	return json_array_size(f->rec.snaps);
}

static const json_t *last_snap(const fx_t *f)
{
	return json_array_get(f->rec.snaps, nsnaps(f) - 1);
}

static const json_t *last_delta(const fx_t *f)
{
	return json_array_get(f->rec.deltas, nsnaps(f) - 1);
}

static const char *winner(const fx_t *f, const char *field)
{
	return json_string_value(json_object_get(
	        json_object_get(json_object_get(last_snap(f), "provenance"), field), "source"));
}

static void assert_data(const fx_t *f, const char *data)
{
	ak_assert_json(json_object_get(last_snap(f), "data"), data);
}

static void assert_degraded(const fx_t *f, const char *list)
{
	ak_assert_json(json_object_get(last_snap(f), "degraded"), list);
}

#define MATCH                                                                           \
	"[{\"id\": \"m\", \"sources\": [\"a\", \"b\", \"c\"], \"max_age_seconds\": 10," \
	"  \"class\": \"live\", \"conflict_seconds\": 5,"                               \
	"  \"fields\": {\"score\": {\"prefer\": [\"a\", \"c\", \"b\"]},"                \
	"   \"minute\": {\"with\": \"score\"}, \"half\": {\"with\": \"minute\"},"       \
	"   \"clock\": {\"rule\": \"newest\"},"                                         \
	"   \"venue\": {\"prefer\": [\"c\"], \"from\": \"stadium\"}}}]"

static void test_entity__snapshot_and_delta_shape(void **state)
{
	fx_t *f = *state;

	load(f, MATCH, "", T0);
	assert_int_equal(nsnaps(f), 1); /* nothing known yet: everything absent, degraded */
	ak_assert_json(last_snap(f),
	               "{\"entity\": \"m\", \"class\": \"live\", \"seq\": 1, "
	               "\"updated_at\": \"2026-11-23T14:17:32.000Z\", \"data\": {}, "
	               "\"provenance\": {}, "
	               "\"degraded\": [\"score\", \"minute\", \"half\", \"clock\", \"venue\"]}");
	ak_assert_json(last_delta(f),
	               "{\"entity\": \"m\", \"seq\": 1, \"prev_seq\": 0, "
	               "\"updated_at\": \"2026-11-23T14:17:32.000Z\", \"added\": [], "
	               "\"changed\": [], \"removed\": [], \"winners\": {}, "
	               "\"degraded\": [\"score\", \"minute\", \"half\", \"clock\", \"venue\"]}");

	feed(f, "a", "{\"score\": \"1-0\", \"minute\": 10, \"half\": 1, \"clock\": \"10:00\"}",
	     T0 + 1005, T0 + 1010);
	ak_assert_json(
	        last_snap(f),
	        "{\"entity\": \"m\", \"class\": \"live\", \"seq\": 2, "
	        "\"updated_at\": \"2026-11-23T14:17:33.010Z\", "
	        "\"data\": {\"score\": \"1-0\", \"minute\": 10, \"half\": 1, "
	        "\"clock\": \"10:00\"}, "
	        "\"provenance\": {"
	        "\"score\": {\"source\": \"a\", \"verified_at\": "
	        "\"2026-11-23T14:17:33.005Z\", \"changed_at\": \"2026-11-23T14:17:33.005Z\"},"
	        "\"minute\": {\"source\": \"a\", \"verified_at\": "
	        "\"2026-11-23T14:17:33.005Z\", \"changed_at\": \"2026-11-23T14:17:33.005Z\"},"
	        "\"half\": {\"source\": \"a\", \"verified_at\": "
	        "\"2026-11-23T14:17:33.005Z\", \"changed_at\": \"2026-11-23T14:17:33.005Z\"},"
	        "\"clock\": {\"source\": \"a\", \"verified_at\": "
	        "\"2026-11-23T14:17:33.005Z\", \"changed_at\": \"2026-11-23T14:17:33.005Z\"}"
	        "}, \"degraded\": [\"venue\"]}");
	ak_assert_json(
	        last_delta(f),
	        "{\"entity\": \"m\", \"seq\": 2, \"prev_seq\": 1, "
	        "\"updated_at\": \"2026-11-23T14:17:33.010Z\", "
	        "\"added\": [{\"path\": \"/score\", \"value\": \"1-0\"}, "
	        "{\"path\": \"/minute\", \"value\": 10}, {\"path\": \"/half\", \"value\": 1}, "
	        "{\"path\": \"/clock\", \"value\": \"10:00\"}], "
	        "\"changed\": [], \"removed\": [], "
	        "\"winners\": {\"score\": {\"from\": null, \"to\": \"a\"}, "
	        "\"minute\": {\"from\": null, \"to\": \"a\"}, "
	        "\"half\": {\"from\": null, \"to\": \"a\"}, "
	        "\"clock\": {\"from\": null, \"to\": \"a\"}}, "
	        "\"degraded\": [\"venue\"]}");

	/* a verification only moves a provenance time: a snapshot without a delta */
	entity_engine_source_verified(f->e, "a", T0 + 2000, T0 + 2000);
	assert_int_equal(nsnaps(f), 3);
	assert_true(json_is_null(last_delta(f)));
	ak_assert_json(json_object_get(json_object_get(json_object_get(last_snap(f), "provenance"),
	                                               "score"),
	                               "verified_at"),
	               "\"2026-11-23T14:17:34.000Z\"");
	/* the same data again at the same verified time: nothing */
	feed(f, "a", "{\"score\": \"1-0\", \"minute\": 10, \"half\": 1, \"clock\": \"10:00\"}",
	     T0 + 2000, T0 + 2100);
	assert_int_equal(nsnaps(f), 3);
}

static void test_entity__prefer_precedence_and_from(void **state)
{
	fx_t *f = *state;

	load(f, MATCH, "", T0);
	feed(f, "b", "{\"score\": \"2-0\", \"minute\": 12, \"stadium\": \"B-field\"}", T0, T0);
	assert_string_equal(winner(f, "score"), "b");
	feed(f, "c", "{\"score\": \"1-0\", \"minute\": 11, \"stadium\": \"Anfield\"}", T0, T0);
	assert_string_equal(winner(f, "score"), "c"); /* c before b in the prefer list */
	feed(f, "a", "{\"score\": \"1-0\", \"minute\": 10}", T0, T0);
	assert_string_equal(winner(f, "score"), "a");
	/* venue: only c, read from its "stadium"; b's stadium never counts */
	assert_string_equal(winner(f, "venue"), "c");
	assert_data(f, "{\"score\": \"1-0\", \"minute\": 10, \"venue\": \"Anfield\"}");
	assert_degraded(f, "[\"half\", \"clock\"]");
}

static void test_entity__fallback_on_age_and_return(void **state)
{
	fx_t *f = *state;
	size_t n;

	load(f, MATCH, "", T0);
	feed(f, "a", "{\"score\": \"1-0\", \"minute\": 10}", T0, T0);
	feed(f, "b", "{\"score\": \"1-0\", \"minute\": 11}", T0 + 5000, T0 + 5000);
	assert_string_equal(winner(f, "score"), "a");
	n = nsnaps(f);
	assert_int_equal(n, 2);               /* b won nothing: no new snapshot */
	entity_engine_tick(f->e, T0 + 10000); /* a's age is max_age: it still qualifies */
	assert_int_equal(nsnaps(f), n);
	entity_engine_tick(f->e, T0 + 10001);
	assert_int_equal(nsnaps(f), n + 1);
	assert_string_equal(winner(f, "score"), "b");
	assert_string_equal(winner(f, "minute"), "b"); /* minute follows score */
	assert_data(f, "{\"score\": \"1-0\", \"minute\": 11}");
	ak_assert_json(last_delta(f),
	               "{\"entity\": \"m\", \"seq\": 3, \"prev_seq\": 2, "
	               "\"updated_at\": \"2026-11-23T14:17:42.001Z\", \"added\": [], "
	               "\"changed\": [{\"path\": \"/minute\", \"from\": 10, \"to\": 11}], "
	               "\"removed\": [], "
	               "\"winners\": {\"score\": {\"from\": \"a\", \"to\": \"b\"}, "
	               "\"minute\": {\"from\": \"a\", \"to\": \"b\"}}, "
	               "\"degraded\": [\"half\", \"clock\", \"venue\"]}");
	/* one event, for the prefer field (minute follows it: none of its own) */
	assert_int_equal(json_array_size(f->rec.winners), 1);
	ak_assert_json(
	        json_array_get(f->rec.winners, 0),
	        "{\"event\": \"winner\", \"entity\": \"m\", \"field\": \"score\", "
	        "\"from\": \"a\", \"to\": \"b\", \"preferred\": false, \"degraded\": false}");
	/* a verified again: back to it */
	entity_engine_source_verified(f->e, "a", T0 + 11000, T0 + 11000);
	assert_string_equal(winner(f, "score"), "a");
	assert_int_equal(json_array_size(f->rec.winners), 2);
	ak_assert_json(json_array_get(f->rec.winners, 1),
	               "{\"event\": \"winner\", \"entity\": \"m\", \"field\": \"score\", "
	               "\"from\": \"b\", \"to\": \"a\", \"preferred\": true, \"degraded\": false}");
	assert_data(f, "{\"score\": \"1-0\", \"minute\": 10}");
	/* a gone: b at once, without waiting for an age */
	entity_engine_source_gone(f->e, "a", T0 + 12000);
	assert_string_equal(winner(f, "score"), "b");
	/* nothing is due until b ages (verified T0+5000 + 10 s) */
	n = nsnaps(f);
	entity_engine_tick(f->e, T0 + 15000);
	assert_int_equal(nsnaps(f), n);
}

static void test_entity__all_stale_freshest_wins_degraded(void **state)
{
	fx_t *f = *state;

	load(f, MATCH, "", T0);
	feed(f, "a", "{\"score\": \"1-0\", \"minute\": 10}", T0, T0);
	feed(f, "b", "{\"score\": \"2-0\", \"minute\": 20}", T0 + 3000, T0 + 3000);
	feed(f, "c", "{\"score\": \"3-0\", \"minute\": 30}", T0 + 1000, T0 + 3000);
	entity_engine_tick(f->e, T0 + 60000);
	/* none qualifies: the most recently verified of the prefer list (b), degraded */
	assert_string_equal(winner(f, "score"), "b");
	assert_data(f, "{\"score\": \"2-0\", \"minute\": 20}");
	assert_degraded(f, "[\"score\", \"minute\", \"half\", \"clock\", \"venue\"]");
	entity_stats_t st;
	entity_engine_get_stats(f->e, &st);
	assert_int_equal(st.entities, 1);
	assert_int_equal(st.degraded, 1);
}

static void test_entity__newest_by_change_time(void **state)
{
	fx_t *f = *state;

	load(f, MATCH, "", T0);
	/* first sight at the same scrape time: a tie, sources order */
	feed(f, "b", "{\"clock\": \"10:00\"}", T0, T0);
	feed(f, "a", "{\"clock\": \"10:00\"}", T0, T0);
	assert_string_equal(winner(f, "clock"), "a");
	feed(f, "b", "{\"clock\": \"10:01\"}", T0 + 1000, T0 + 1000);
	assert_string_equal(winner(f, "clock"), "b");
	feed(f, "a", "{\"clock\": \"10:02\"}", T0 + 2000, T0 + 2000);
	assert_string_equal(winner(f, "clock"), "a");
	/* b read again, same value: its change time stays T0+1000 */
	feed(f, "b", "{\"clock\": \"10:01\"}", T0 + 3000, T0 + 3000);
	assert_string_equal(winner(f, "clock"), "a");
	ak_assert_json(json_object_get(json_object_get(json_object_get(last_snap(f), "provenance"),
	                                               "clock"),
	                               "changed_at"),
	               "\"2026-11-23T14:17:34.000Z\"");
	assert_data(f, "{\"clock\": \"10:02\"}");
	/* a ages past max_age: b (still fresh) wins although its value changed earlier */
	entity_engine_tick(f->e, T0 + 12001);
	assert_string_equal(winner(f, "clock"), "b");
	ak_assert_json(json_object_get(last_snap(f), "degraded"),
	               "[\"score\", \"minute\", \"half\", \"venue\"]");
}

static void test_entity__with_absent_and_chain(void **state)
{
	fx_t *f = *state;

	load(f, MATCH, "", T0);
	/* a wins score but has no minute: minute and half absent and degraded, never b's */
	feed(f, "b", "{\"score\": \"2-0\", \"minute\": 12, \"half\": 2}", T0, T0);
	assert_data(f, "{\"score\": \"2-0\", \"minute\": 12, \"half\": 2}");
	feed(f, "a", "{\"score\": \"2-0\", \"half\": 1}", T0, T0);
	assert_data(f, "{\"score\": \"2-0\", \"half\": 1}");
	assert_degraded(f, "[\"minute\", \"clock\", \"venue\"]");
	assert_string_equal(winner(f, "half"), "a"); /* half -> minute -> score: a */
	ak_assert_json(json_object_get(last_delta(f), "removed"),
	               "[{\"path\": \"/minute\", \"value\": 12}]");
	ak_assert_json(json_object_get(last_delta(f), "winners"),
	               "{\"score\": {\"from\": \"b\", \"to\": \"a\"}, "
	               "\"minute\": {\"from\": \"b\", \"to\": null}, "
	               "\"half\": {\"from\": \"b\", \"to\": \"a\"}}");
}

static void test_entity__field_no_source_has(void **state)
{
	fx_t *f = *state;

	load(f, MATCH, "", T0);
	feed(f, "a",
	     "{\"score\": \"0-0\", \"minute\": 1, \"half\": 1, \"clock\": \"0:01\","
	     " \"stadium\": \"not from a\"}",
	     T0, T0);
	feed(f, "c", "{\"stadium\": null}", T0, T0);
	assert_null(json_object_get(json_object_get(last_snap(f), "data"), "venue"));
	assert_null(json_object_get(json_object_get(last_snap(f), "provenance"), "venue"));
	assert_degraded(f, "[\"venue\"]");
}

static void test_entity__conflict_once_per_episode(void **state)
{
	fx_t *f = *state;

	load(f, MATCH, "", T0);
	feed(f, "a", "{\"score\": \"1-0\"}", T0, T0);
	feed(f, "b", "{\"score\": \"2-0\"}", T0 + 1000, T0 + 1000); /* disagree from T0+1000 */
	entity_engine_tick(f->e, T0 + 5999);
	assert_int_equal(json_array_size(f->rec.events), 0);
	entity_engine_tick(f->e, T0 + 6000); /* conflict_seconds (5) after */
	assert_int_equal(json_array_size(f->rec.events), 1);
	ak_assert_json(json_array_get(f->rec.events, 0),
	               "{\"event\": \"conflict\", \"entity\": \"m\", \"field\": \"score\", "
	               "\"since\": \"2026-11-23T14:17:33.000Z\", "
	               "\"values\": [{\"source\": \"a\", \"value\": \"1-0\"}, "
	               "{\"source\": \"b\", \"value\": \"2-0\"}]}");
	entity_engine_source_verified(f->e, "a", T0 + 7000, T0 + 7000);
	entity_engine_tick(f->e, T0 + 9000);
	assert_int_equal(json_array_size(f->rec.events), 1); /* once per episode */
	/* they agree, then disagree again: a new episode, a new event after 5 s */
	feed(f, "b", "{\"score\": \"1-0\"}", T0 + 9500, T0 + 9500);
	feed(f, "b", "{\"score\": \"3-0\"}", T0 + 9600, T0 + 9600);
	entity_engine_tick(f->e, T0 + 14599);
	assert_int_equal(json_array_size(f->rec.events), 1);
	entity_engine_source_verified(f->e, "a", T0 + 14000, T0 + 14000);
	entity_engine_tick(f->e, T0 + 14600);
	assert_int_equal(json_array_size(f->rec.events), 2);
	entity_stats_t st;
	entity_engine_get_stats(f->e, &st);
	assert_int_equal(st.conflicts_total, 2);
}

static void test_entity__conflict_ends_when_a_source_stops_qualifying(void **state)
{
	fx_t *f = *state;

	load(f, MATCH, "", T0);
	feed(f, "a", "{\"score\": \"1-0\"}", T0, T0);
	feed(f, "b", "{\"score\": \"2-0\"}", T0 - 8000, T0); /* b ages at T0-8000+10001 */
	entity_engine_tick(f->e, T0 + 2001);                 /* b stale: agreement */
	entity_engine_tick(f->e, T0 + 6000);
	assert_int_equal(json_array_size(f->rec.events), 0);
}

static void test_entity__winner_changes_counted_by_class(void **state)
{
	fx_t *f = *state;
	entity_stats_t st;

	load(f, MATCH, "", T0);
	load(f,
	     "[{\"id\": \"n\", \"sources\": [\"a\", \"b\"], \"max_age_seconds\": 10,"
	     " \"class\": \"completed\", \"fields\": {\"s\": {\"prefer\": [\"a\", \"b\"]}}}]",
	     "@redis", T0);
	feed(f, "b", "{\"score\": \"1-0\", \"minute\": 3, \"s\": 1}", T0, T0);
	entity_engine_get_stats(f->e, &st);
	/* m: score and minute from nobody to b; n: s from nobody to b */
	assert_int_equal(st.winner_changes[SCHED_LIVE], 2);
	assert_int_equal(st.winner_changes[SCHED_COMPLETED], 1);
	assert_int_equal(st.winner_changes[SCHED_IMMINENT], 0);
	feed(f, "a", "{\"score\": \"1-0\", \"s\": 1}", T0, T0);
	entity_engine_get_stats(f->e, &st);
	assert_int_equal(st.winner_changes[SCHED_LIVE], 4); /* score b->a, minute b->none */
	assert_int_equal(st.winner_changes[SCHED_COMPLETED], 2);
	assert_int_equal(st.entities, 2);
	assert_int_equal(st.snapshots_total, nsnaps(f));
	assert_int_equal(st.deltas_total, 6);
}

static void foreach_cb(void *ud, const char *id, const char *source, const json_t *snap)
{
	json_t *out = ud;
	json_object_set_new(
	        out, id,
	        json_pack("{s:s, s:O?}", "source", source, "seq", json_object_get(snap, "seq")));
}

static json_t *listing(const fx_t *f)
{
	json_t *out = json_object();
	entity_engine_foreach(f->e, foreach_cb, out);
	return out;
}

static void test_entity__reconcile(void **state)
{
	fx_t *f = *state;
	json_t *l;

	load(f, MATCH, "", T0);
	feed(f, "a", "{\"score\": \"1-0\", \"minute\": 10}", T0, T0);
	assert_int_equal(nsnaps(f), 2);
	/* unchanged: nothing published, seq kept */
	load(f, MATCH, "", T0 + 100);
	assert_int_equal(nsnaps(f), 2);
	/* changed (venue dropped, a new field): the same seq line, published against the last
	 * snapshot; what a said is kept */
	load(f,
	     "[{\"id\": \"m\", \"sources\": [\"a\", \"b\", \"c\"], \"max_age_seconds\": 10,"
	     "  \"class\": \"live\", \"fields\": {\"score\": {\"prefer\": [\"a\", \"b\"]},"
	     "   \"minute\": {\"with\": \"score\"}, \"goals\": {\"prefer\": [\"a\"],"
	     "   \"from\": \"score\"}}}]",
	     "", T0 + 200);
	assert_int_equal(nsnaps(f), 3);
	assert_int_equal(json_integer_value(json_object_get(last_snap(f), "seq")), 3);
	assert_int_equal(json_integer_value(json_object_get(last_delta(f), "prev_seq")), 2);
	assert_data(f, "{\"score\": \"1-0\", \"minute\": 10, \"goals\": \"1-0\"}");
	ak_assert_json(json_object_get(last_delta(f), "added"),
	               "[{\"path\": \"/goals\", \"value\": \"1-0\"}]");
	/* another source cannot define m; its own entity is taken */
	assert_int_equal(load(f,
	                      "[{\"id\": \"m\", \"sources\": [\"a\"], \"max_age_seconds\": 1,"
	                      "  \"fields\": {\"s\": {\"rule\": \"newest\"}}},"
	                      " {\"id\": \"r\", \"sources\": [\"b\"], \"max_age_seconds\": 1,"
	                      "  \"fields\": {\"s\": {\"rule\": \"newest\"}}}]",
	                      "@redis", T0 + 300),
	                 1);
	l = listing(f);
	ak_assert_json(l, "{\"m\": {\"source\": \"\", \"seq\": 3}, "
	                  "\"r\": {\"source\": \"@redis\", \"seq\": 1}}");
	json_decref(l);
	/* removed from the file: gone, and its sources no longer lead anywhere */
	load(f, "[]", "", T0 + 400);
	l = listing(f);
	ak_assert_json(l, "{\"r\": {\"source\": \"@redis\", \"seq\": 1}}");
	json_decref(l);
	size_t n = nsnaps(f);
	feed(f, "a", "{\"score\": \"9-9\"}", T0 + 500, T0 + 500);
	entity_engine_tick(f->e, T0 + 999999);
	assert_int_equal(nsnaps(f), n);
	entity_stats_t st;
	entity_engine_get_stats(f->e, &st);
	assert_int_equal(st.entities, 1);
	/* defined again: it goes on from its seq (a restart at 1 would be refused by Redis's
	 * ordering guard), a first snapshot with nothing to diff against */
	load(f, MATCH, "", T0 + 600);
	assert_int_equal(nsnaps(f), n + 1);
	assert_int_equal(json_integer_value(json_object_get(last_snap(f), "seq")), 4);
	assert_int_equal(json_integer_value(json_object_get(last_delta(f), "prev_seq")), 0);
	/* once: dropped and defined again in Redis, it goes on from 4 */
	load(f, "[]", "", T0 + 700);
	load(f, MATCH "", "@redis", T0 + 800);
	l = listing(f);
	ak_assert_json(l, "{\"m\": {\"source\": \"@redis\", \"seq\": 5}}");
	json_decref(l);
}

static void test_entity__unnamed_target_costs_nothing(void **state)
{
	fx_t *f = *state;
	entity_stats_t st;

	load(f, MATCH, "", T0);
	feed(f, "zz", "{\"score\": \"5-5\"}", T0, T0);
	entity_engine_source_verified(f->e, "zz", T0, T0);
	entity_engine_source_gone(f->e, "zz", T0);
	entity_engine_tick(f->e, T0 + 1000);
	assert_int_equal(nsnaps(f), 1); /* only the reconcile's first snapshot */
	entity_engine_get_stats(f->e, &st);
	assert_int_equal(st.snapshots_total, 1);
}

/* A new entity gets its sources' last results before its first computation: one snapshot,
 * already from the preferred source though another comes first in "sources", and no winner
 * event; a late (replayed) result with an older verified time does not age a source. */
static void test_entity__new_entity_filled_at_once(void **state)
{
	fx_t *f = *state;

	f->rec.last = ak_parse("{\"b\": [{\"score\": \"1-0\", \"minute\": 9}, 1795443440000, "
	                       "1795443451000],"
	                       " \"a\": [{\"score\": \"1-0\", \"minute\": 10}, 1795443445000, "
	                       "1795443452000]}");
	load(f, MATCH, "", T0);
	assert_int_equal(nsnaps(f), 1);
	assert_string_equal(winner(f, "score"), "a");
	assert_data(f, "{\"score\": \"1-0\", \"minute\": 10}");
	assert_int_equal(json_array_size(f->rec.winners), 0);
	/* a's result again, as verified before: a is still verified at T0 (not T0 - 9000) */
	{
		json_t *d = ak_parse("{\"score\": \"1-0\", \"minute\": 10}");
		entity_engine_source_data(f->e, "a", d, T0 - 7000, T0 - 9000, T0 + 2000);
		json_decref(d);
	}
	entity_engine_tick(f->e, T0 + 9000); /* T0 - 9000 + 10 s would have passed by now */
	assert_string_equal(winner(f, "score"), "a");
	assert_int_equal(json_array_size(f->rec.winners), 0);
}

static void test_entity__engine_without_entities(void **state)
{
	entity_callbacks_t cbs = { .publish = on_publish };
	entity_engine_t *e = entity_engine_new(&cbs);
	json_t *d = json_object();
	entity_stats_t st;

	entity_engine_source_data(e, "a", d, T0, T0, T0);
	entity_engine_tick(e, T0);
	entity_engine_get_stats(e, &st);
	assert_int_equal(st.entities, 0);
	assert_int_equal(st.snapshots_total, 0);
	json_decref(d);
	entity_engine_free(e);
	entity_engine_free(NULL);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entity__parse_every_error_listed),
		cmocka_unit_test(test_entity__parse_cycle_named_once_with_its_chain),
		cmocka_unit_test(test_entity__parse_numbers_and_sources),
		cmocka_unit_test(test_entity__parse_one_fills_the_spec),
		FX(test_entity__snapshot_and_delta_shape),
		FX(test_entity__prefer_precedence_and_from),
		FX(test_entity__fallback_on_age_and_return),
		FX(test_entity__all_stale_freshest_wins_degraded),
		FX(test_entity__newest_by_change_time),
		FX(test_entity__with_absent_and_chain),
		FX(test_entity__field_no_source_has),
		FX(test_entity__conflict_once_per_episode),
		FX(test_entity__conflict_ends_when_a_source_stops_qualifying),
		FX(test_entity__winner_changes_counted_by_class),
		FX(test_entity__reconcile),
		FX(test_entity__unnamed_target_costs_nothing),
		FX(test_entity__new_entity_filled_at_once),
		cmocka_unit_test(test_entity__engine_without_entities),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
