/*
 * store_status.c: each target's status hash (P:status:T) and the events stream (P:events).
 * store_set_status() keeps the newest status of each target until it is written; while
 * Redis is away they wait (one per target, the newest) and are written on reconnection.
 * store_event() queues an event (at most EVENTS_PENDING_MAX wait; past it the oldest is
 * dropped and counted) and XADDs it. A write lost with the connection goes back to wait,
 * unless a newer status of its target already waits.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_priv.h"
#include "util/log.h"

#define EVENTS_PENDING_MAX 1000
#define EVENTS_MAXLEN "10000"
#define STATUS_FIELDS_MAX 32

/* One write in flight: what to put back if the connection drops it. */
typedef struct status_req {
	store_t *s;
	char id[STORE_ID_MAX + 1];
	json_t *fields; /* status: the fields; event: the event */
	uint64_t gen;   /* status: its generation */
	int is_event;
} status_req_t;

/* A field's value as Redis stores it: strings as they are, numbers and booleans as
 * text, null as "". buf holds the text of non-strings. */
static const char *field_text(const json_t *v, char *buf, size_t len)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
	else
		buf[0] = '\0';
	return buf;
}

static void on_status_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* Sends one HSET or XADD of the object's scalar fields. Returns 0 or -errno. */
static int send_fields(store_t *s, status_req_t *q, const char *key)
{
	const char *argv[4 + 2 * STATUS_FIELDS_MAX];
	size_t lens[4 + 2 * STATUS_FIELDS_MAX];
	char num[STATUS_FIELDS_MAX][32];
	const char *k;
	json_t *v;
	int argc = 0, n = 0;

	argv[argc++] = q->is_event ? "XADD" : "HSET";
	argv[argc++] = key;
	if (q->is_event) {
		argv[argc++] = "MAXLEN";
		argv[argc++] = "~";
		argv[argc++] = EVENTS_MAXLEN;
		argv[argc++] = "*";
	}
	json_object_foreach(q->fields, k, v)
	{
		if (n == STATUS_FIELDS_MAX || json_is_object(v) || json_is_array(v))
			continue;
		argv[argc++] = k;
		argv[argc++] = field_text(v, num[n], sizeof num[n]);
		n++;
	}
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return store__cmdv(s, on_status_reply, q, argc, argv, lens);
}

/* Puts a status back to wait unless a newer one of its target waits. */
static void status_wait(store_t *s, const char *id, json_t *fields, uint64_t gen)
{
	json_t *old = json_object_get(s->status_pending, id);

	if (old && json_integer_value(json_object_get(old, "gen")) > (json_int_t)gen)
		return;
	json_object_set_new(s->status_pending, id,
	                    json_pack("{s:I, s:O}", "gen", (json_int_t)gen, "fields", fields));
}

static void on_status_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	status_req_t *q = privdata;
	store_t *s = q->s;
	redisReply *rep = reply;
	char d[300];

	if (!rep && !s->closing) { /* the connection went: wait for the next one */
		if (q->is_event)
			json_array_insert(s->events_pending, s->events_requeued++, q->fields);
		else
			status_wait(s, q->id, q->fields, q->gen);
	} else if (rep && rep->type == REDIS_REPLY_ERROR) {
		store__describe(rep, d, sizeof d);
		store__set_error(s, "%s: %s", q->is_event ? "XADD events" : "HSET status", d);
	}
	json_decref(q->fields);
	free(q);
}

static status_req_t *req_new(store_t *s, const char *id, json_t *fields, uint64_t gen, int is_event)
{
	status_req_t *q = store__xmalloc(sizeof *q);

	q->s = s;
	snprintf(q->id, sizeof q->id, "%s", id ? id : "");
	q->fields = json_incref(fields);
	q->gen = gen;
	q->is_event = is_event;
	return q;
}

void store__flush_status(store_t *s)
{
	char key[KEY_MAX];
	const char *id;
	json_t *w, *tmp;

	if (s->state != C_READY || !s->ac || s->closing)
		return;
	s->events_requeued = 0;
	json_object_foreach_safe(s->status_pending, tmp, id, w)
	{
		status_req_t *q =
		        req_new(s, id, json_object_get(w, "fields"),
		                (uint64_t)json_integer_value(json_object_get(w, "gen")), 0);
		store__key(s, key, "status", id);
		json_object_del(s->status_pending, id);
		if (send_fields(s, q, key) != 0) {
			status_wait(s, q->id, q->fields, q->gen);
			json_decref(q->fields);
			free(q);
			return;
		}
	}
	store__key(s, key, "events", NULL);
	while (json_array_size(s->events_pending) > 0) {
		status_req_t *q = req_new(s, NULL, json_array_get(s->events_pending, 0), 0, 1);
		json_array_remove(s->events_pending, 0);
		if (send_fields(s, q, key) != 0) {
			json_array_insert(s->events_pending, 0, q->fields);
			json_decref(q->fields);
			free(q);
			return;
		}
	}
}

void store_set_status(store_t *s, const char *id, const json_t *status)
{
	json_t *copy;

	if (s->closing || !status || !store_id_valid(id))
		return;
	copy = json_deep_copy(status);
	if (!copy)
		abort();
	status_wait(s, id, copy, ++s->status_gen);
	json_decref(copy);
	store__flush_status(s);
}

void store_event(store_t *s, const json_t *event)
{
	if (s->closing || !event)
		return;
	if (json_array_size(s->events_pending) >= EVENTS_PENDING_MAX) {
		json_array_remove(s->events_pending, 0);
		s->st.events_dropped++;
	}
	json_array_append_new(s->events_pending, json_deep_copy(event));
	store__flush_status(s);
}
