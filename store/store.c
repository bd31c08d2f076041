/*
 * store: the Redis store (see store.h for the contract, docs/redis.md for the keys).
 *
 * One hiredis async context at a time, attached with redis_uv.c. A connection goes
 * CONNECTING -> (AUTH, SELECT, INCR epoch, SCRIPT LOAD pipelined) -> READY; any failure
 * frees it and the reconnect timer backs off. Results go out two ways:
 *  - direct: connected, nothing queued for the target and the write window not full: one
 *    EVALSHA with the caller's delta;
 *  - backlog: otherwise the latest snapshot is kept per target (entry_t, hash + FIFO queue)
 *    and later written as a resync: GET the stored latest, snapshot_delta() against it,
 *    then the same script.
 * A failed or unanswered write goes back to the backlog (unless a newer one is there).
 * Every hiredis callback runs from the loop; the store is freed only from a timer callback
 * after every handle has closed.
 * This file: helpers, options, health, lifetime, raw commands, stats and close; the
 * connection, writes, backlog and targets hash are in store_*.c (see store_priv.h).
 */
#include "store/store.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_priv.h"
#include "util/ident.h"
#include "util/envnum.h"
#include "util/log.h"

/* ---- small helpers ---- */

void *store__xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		log_error(COMP, "out of memory (%zu bytes)", n);
		abort();
	}
	return p;
}

void store__set_error(store_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->st.last_error, sizeof s->st.last_error, fmt, ap);
	va_end(ap);
	log_warn(COMP, "%s", s->st.last_error);
}

/* One line describing a reply, for logs. */
void store__describe(const redisReply *r, char *out, size_t n)
{
	if (!r) {
		snprintf(out, n, "no reply (connection lost)");
		return;
	}
	switch (r->type) {
	case REDIS_REPLY_ERROR:
		snprintf(out, n, "error \"%.*s\"", (int)(r->len > 200 ? 200 : r->len), r->str);
		break;
	case REDIS_REPLY_STATUS:
		snprintf(out, n, "status \"%.*s\"", (int)(r->len > 200 ? 200 : r->len), r->str);
		break;
	case REDIS_REPLY_STRING: snprintf(out, n, "a string of %zu bytes", r->len); break;
	case REDIS_REPLY_INTEGER: snprintf(out, n, "integer %lld", r->integer); break;
	case REDIS_REPLY_NIL: snprintf(out, n, "nil"); break;
	case REDIS_REPLY_ARRAY: snprintf(out, n, "an array of %zu elements", r->elements); break;
	default: snprintf(out, n, "reply type %d", r->type);
	}
}

int store_id_valid(const char *id)
{
	return ident_valid(id); /* STORE_ID_MAX == IDENT_MAX */
}

static int prefix_valid(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)p[i]) && !strchr("_.:-", p[i]))
			return 0;
	return 1;
}

void store__key(const store_t *s, char out[KEY_MAX], const char *kind, const char *id)
{
	if (id)
		snprintf(out, KEY_MAX, "%s:%s:%s", s->o.prefix, kind, id);
	else
		snprintf(out, KEY_MAX, "%s:%s", s->o.prefix, kind);
}

/* ---- options ---- */

void store_opts_init(store_opts_t *o)
{
	memset(o, 0, sizeof *o);
	snprintf(o->url, sizeof o->url, "redis://127.0.0.1:6379/0");
	snprintf(o->prefix, sizeof o->prefix, "cdpilot");
	o->snapshot_ttl_s = 0;
	o->changes_maxlen = 100000;
	o->backlog_max = 100000;
	o->health_refresh_ms = 2000;
	o->targets_poll_ms = 1000;
	o->backoff_min_ms = 100;
	o->backoff_max_ms = 5000;
	o->close_grace_ms = 2000;
	o->inflight_max = 256;
	o->timeout_ms = 2000;
}

int store_opts_from_env(store_opts_t *o, errlist_t *errs)
{
	const char *v;
	double d = 0;
	int rc = 0, r;

	v = getenv("REDIS_URL");
	if (v) {
		store_url_t u;
		char err[1400];
		if (strlen(v) >= sizeof o->url || store_url_parse(v, &u, err, sizeof err) != 0) {
			if (strlen(v) >= sizeof o->url)
				snprintf(err, sizeof err, "REDIS_URL: over %zu bytes",
				         sizeof o->url - 1);
			errlist_add(errs, "%s", err);
			rc = -EINVAL;
		} else {
			snprintf(o->url, sizeof o->url, "%s", v);
		}
	}
	v = getenv("REDIS_PREFIX");
	if (v) {
		if (!prefix_valid(v)) {
			errlist_add(errs,
			            "REDIS_PREFIX=\"%.100s\": expected 1 to 63 characters of "
			            "[A-Za-z0-9_.:-]",
			            v);
			rc = -EINVAL;
		} else {
			snprintf(o->prefix, sizeof o->prefix, "%s", v);
		}
	}
	if ((r = envnum_get(errs, "SNAPSHOT_TTL_SECONDS", 0, 31536000, ENVNUM_WHOLE, NULL, &d)) > 0)
		o->snapshot_ttl_s = (uint32_t)d;
	if (r < 0)
		rc = -EINVAL;
	if ((r = envnum_get(errs, "CHANGES_MAXLEN", 1, 1000000000, ENVNUM_WHOLE, NULL, &d)) > 0)
		o->changes_maxlen = (uint64_t)d;
	if (r < 0)
		rc = -EINVAL;
	if ((r = envnum_get(errs, "STORE_BACKLOG_MAX", 1, 10000000, ENVNUM_WHOLE, NULL, &d)) > 0)
		o->backlog_max = (size_t)d;
	if (r < 0)
		rc = -EINVAL;
	if ((r = envnum_get(errs, "REDIS_TIMEOUT_MS", 100, 600000, ENVNUM_WHOLE, "ms", &d)) > 0)
		o->timeout_ms = (uint32_t)d;
	if (r < 0)
		rc = -EINVAL;
	return rc;
}

/* ---- health ---- */

static void on_simple_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	store_t *s = ac->data;
	redisReply *rep = reply;
	char d[300];

	if (rep && rep->type == REDIS_REPLY_ERROR) {
		store__describe(rep, d, sizeof d);
		store__set_error(s, "%s: %s", (const char *)privdata, d);
	}
}

void store__write_health(store_t *s)
{
	char k[KEY_MAX], px[24];

	if (s->state != C_READY || !s->ac || !s->health)
		return;
	store__key(s, k, "health", NULL);
	snprintf(px, sizeof px, "%" PRIu64, (uint64_t)s->o.health_refresh_ms * 5);
	store__cmdf(s, on_simple_reply, "SET health", "SET %s %s PX %s", k, s->health, px);
}

void store_set_health(store_t *s, const json_t *health)
{
	char *h;

	if (s->closing || !health)
		return;
	h = json_dumps(health, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!h) {
		log_error(COMP, "out of memory serialising health");
		abort();
	}
	if (s->health && !strcmp(s->health, h)) {
		free(h);
		return;
	}
	free(s->health);
	s->health = h;
	store__write_health(s);
}

static void on_health_timer(uv_timer_t *t)
{
	store__write_health(t->data);
}

/* ---- lifecycle ---- */

store_t *store_new(uv_loop_t *loop, const store_opts_t *o)
{
	store_t *s;
	char err[1400];
	uv_timer_t *timers[6];

	if (store_url_parse(o->url, &(store_url_t){ 0 }, err, sizeof err) != 0) {
		log_error(COMP, "%s", err);
		return NULL;
	}
	if (!prefix_valid(o->prefix)) {
		log_error(COMP,
		          "REDIS_PREFIX \"%s\": expected 1 to 63 characters of [A-Za-z0-9_.:-]",
		          o->prefix);
		return NULL;
	}
	s = store__xmalloc(sizeof *s);
	memset(s, 0, sizeof *s);
	s->loop = loop;
	s->status_pending = json_object();
	s->events_pending = json_array();
	if (!s->status_pending || !s->events_pending)
		abort();
	s->o = *o;
	if (!s->o.backlog_max)
		s->o.backlog_max = 1;
	if (!s->o.inflight_max)
		s->o.inflight_max = 1;
	if (!s->o.backoff_min_ms)
		s->o.backoff_min_ms = 1;
	if (s->o.backoff_max_ms < s->o.backoff_min_ms)
		s->o.backoff_max_ms = s->o.backoff_min_ms;
	if (!s->o.health_refresh_ms)
		s->o.health_refresh_ms = 2000;
	if (!s->o.targets_poll_ms)
		s->o.targets_poll_ms = 1000;
	if (!s->o.timeout_ms)
		s->o.timeout_ms = 2000;
	store_url_parse(o->url, &s->url, err, sizeof err);
	store_url_redact(o->url, s->redacted, sizeof s->redacted);
	s->backoff_ms = s->o.backoff_min_ms;
	timers[0] = &s->reconnect_t;
	timers[1] = &s->health_t;
	timers[2] = &s->grace_t;
	timers[3] = &s->kick_t;
	timers[4] = &s->deadline_t;
	for (int i = 0; i < 5; i++) {
		uv_timer_init(loop, timers[i]);
		timers[i]->data = s;
		s->open_handles++;
	}
	store__watch_init(s);
	return s;
}

int store_start(store_t *s)
{
	uint32_t check_ms = s->o.timeout_ms / 4;

	if (s->started || s->closing)
		return -EALREADY;
	s->started = 1;
	uv_timer_start(&s->health_t, on_health_timer, s->o.health_refresh_ms,
	               s->o.health_refresh_ms);
	check_ms = check_ms > 250 ? 250 : check_ms < 10 ? 10 : check_ms;
	uv_timer_start(&s->deadline_t, store__on_deadline_timer, check_ms, check_ms);
	store__connect_now(s);
	return 0;
}

/* ---- raw commands (for store/share.c) ---- */

typedef struct cmd {
	store_reply_cb cb;
	void *ud;
} cmd_t;

static void on_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	cmd_t *c = privdata;

	c->cb(c->ud, reply);
	free(c);
}

int store_command(store_t *s, store_reply_cb cb, void *ud, int argc, const char **argv,
                  const size_t *lens)
{
	cmd_t *c;

	int rc;

	if (s->closing || s->state != C_READY || !s->ac)
		return -ENOTCONN;
	c = store__xmalloc(sizeof *c);
	c->cb = cb;
	c->ud = ud;
	rc = store__cmdv(s, on_cmd_reply, c, argc, argv, lens);
	if (rc != 0)
		free(c);
	return rc;
}

const char *store_prefix(const store_t *s)
{
	return s->o.prefix;
}

int store_ready(const store_t *s)
{
	return s->state == C_READY && s->ac && !s->closing;
}

void store_get_stats(const store_t *s, store_stats_t *out)
{
	*out = s->st;
	out->connected = s->state == C_READY;
	out->backlog = s->nentries;
	out->degraded = !out->connected || s->nentries > 0;
	out->epoch = s->epoch;
	out->unresponsive = s->unresponsive;
}

static void on_handle_closed(uv_handle_t *h)
{
	store_t *s = h->data;

	s->open_handles--;
	store__maybe_finish(s);
}

static void on_finish(uv_timer_t *t)
{
	store_t *s = t->data;
	uv_timer_t *timers[5 + W_NHASHES] = { &s->reconnect_t, &s->health_t, &s->grace_t,
		                              &s->kick_t, &s->deadline_t };

	if (s->finishing)
		return;
	s->finishing = 1;
	if (s->nentries || s->inflight)
		log_warn(COMP, "closing with %zu unwritten target results and %u writes unanswered",
		         s->nentries, s->inflight);
	if (s->resolving)
		uv_cancel((uv_req_t *)&s->resolve_req); /* on_resolved still runs */
	if (s->ac) {
		redisAsyncContext *ac = s->ac;
		redisAsyncFree(ac); /* pending callbacks get NULL; on_disconnect may run */
		s->ac = NULL;
		s->state = C_DOWN;
	}
	while (s->qhead)
		store__entry_free(s, s->qhead);
	for (size_t i = 0; i < s->nbuckets; i++)
		while (s->buckets[i])
			store__entry_free(s, s->buckets[i]);
	for (int i = 0; i < W_NHASHES; i++)
		timers[5 + i] = &s->watch[i].timer;
	for (int i = 0; i < 5 + W_NHASHES; i++) {
		timers[i]->data = s; /* the watch timers' data was their reader */
		uv_close((uv_handle_t *)timers[i], on_handle_closed);
	}
}

void store__maybe_finish(store_t *s)
{
	if (!s->closing)
		return;
	if (s->finishing) {
		if (s->open_handles == 0) {
			void (*cb)(void *) = s->close_cb;
			void *ud = s->close_ud;
			free(s->buckets);
			free(s->health);
			json_decref(s->status_pending);
			json_decref(s->events_pending);
			store__watch_release(s);
			free(s);
			if (cb)
				cb(ud);
		}
		return;
	}
	if (!s->ac || (s->nentries == 0 && s->inflight == 0))
		uv_timer_start(&s->kick_t, on_finish, 0, 0);
}

static void on_grace(uv_timer_t *t)
{
	on_finish(t);
}

void store_close(store_t *s, void (*cb)(void *ud), void *ud)
{
	if (s->closing)
		return;
	s->closing = 1;
	s->close_cb = cb;
	s->close_ud = ud;
	uv_timer_stop(&s->reconnect_t);
	uv_timer_stop(&s->health_t);
	for (int i = 0; i < W_NHASHES; i++)
		uv_timer_stop(&s->watch[i].timer);
	uv_timer_start(&s->grace_t, on_grace, s->o.close_grace_ms, 0);
	store__maybe_finish(s);
}
