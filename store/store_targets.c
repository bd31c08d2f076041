/*
 * store_targets.c: reading the targets hash (P:targets). While a watcher is set and the
 * store is READY, every targets_poll_ms GET P:targets:version and, unless that version is
 * the one already read (and the last whole read is under TARGETS_FULL_MS old), HGETALL,
 * parsed on a libuv worker thread (tread_t); each valid field becomes a target object, each refused one an error line, and the
 * watcher is called only when the valid entries or the errors changed. Each field's raw
 * value is kept with what it gave, so a value that did not change is not parsed again and
 * a refusal that did not change is not logged again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_priv.h"
#include "util/log.h"

#define TARGETS_FIELDS_MAX 100000
#define TARGETS_VALUE_MAX (1024 * 1024)
#define TARGETS_FULL_MS 60000 /* the hash is read whole at least this often */

static char *xstrdup(const char *str)
{
	size_t n = strlen(str) + 1;
	char *p = store__xmalloc(n);
	memcpy(p, str, n);
	return p;
}

/* ---- targets hash ---- */

/* One field of the hash: a new reference to the target object (with "id" set to the field
 * name), or NULL with the refusal in err. Fields that are not strings are skipped (NULL,
 * err ""). */
static json_t *parse_field(const store_t *s, const redisReply *f, const redisReply *v, char *err,
                           size_t errlen)
{
	json_t *t, *tid;
	json_error_t jerr;

	err[0] = '\0';
	if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
		return NULL;
	if (strlen(f->str) != f->len || !store_id_valid(f->str)) {
		snprintf(err, errlen,
		         "%s:targets field \"%.80s\": not a valid target id (1 to 64 of "
		         "[A-Za-z0-9_.-], not starting with '.' or '-')",
		         s->o.prefix, f->str);
		return NULL;
	}
	if (v->len > TARGETS_VALUE_MAX) {
		snprintf(err, errlen, "%s:targets field \"%s\": value of %zu bytes, over %d",
		         s->o.prefix, f->str, v->len, TARGETS_VALUE_MAX);
		return NULL;
	}
	t = json_loadb(v->str, v->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!t) {
		snprintf(err, errlen, "%s:targets field \"%s\": not JSON (%s at column %d)",
		         s->o.prefix, f->str, jerr.text, jerr.column);
		return NULL;
	}
	tid = json_object_get(t, "id");
	if (!json_is_object(t)) {
		snprintf(err, errlen, "%s:targets field \"%s\": expected a target object",
		         s->o.prefix, f->str);
	} else if (tid && (!json_is_string(tid) || strcmp(json_string_value(tid), f->str))) {
		snprintf(err, errlen,
		         "%s:targets field \"%s\": its \"id\" differs from the field name",
		         s->o.prefix, f->str);
	} else {
		json_object_set_new(t, "id", json_string(f->str));
		return t;
	}
	json_decref(t);
	return NULL;
}

static void *must(void *p)
{
	if (!p) {
		log_error(COMP, "out of memory reading targets");
		abort();
	}
	return p;
}

/* A field name that can key the cache: a string without a NUL in it. */
static const char *cache_key(const redisReply *f)
{
	return f->type == REDIS_REPLY_STRING && strlen(f->str) == f->len ? f->str : NULL;
}

/* The field's entry in the cache ({field: [raw value, target or null, refusal or ""]}):
 * the old one (from tcache) if the raw value is byte for byte the same (nothing parsed),
 * else a new one, counted in *parsed. A new reference. Raw values and refusals may be any
 * bytes (not checked as UTF-8: the cache is never written out). */
static json_t *field_entry(const store_t *s, json_t *tcache, const redisReply *f,
                           const redisReply *v, uint64_t *parsed)
{
	const char *key = cache_key(f);
	json_t *old = key ? json_object_get(tcache, key) : NULL;
	json_t *raw = json_array_get(old, 0);
	json_t *e, *t;
	char err[400];

	if (raw && v->type == REDIS_REPLY_STRING && json_string_length(raw) == v->len &&
	    memcmp(json_string_value(raw), v->str, v->len) == 0)
		return json_incref(old);
	t = parse_field(s, f, v, err, sizeof err);
	(*parsed)++;
	e = must(json_array());
	if (json_array_append_new(e, must(v->type == REDIS_REPLY_STRING
	                                          ? json_stringn_nocheck(v->str, v->len)
	                                          : json_string_nocheck(""))) ||
	    json_array_append_new(e, t ? t : json_null()) ||
	    json_array_append_new(e, must(json_string_nocheck(err))))
		must(NULL);
	return e;
}

/*
 * One read of the hash, parsed off the loop: 20,000 changed values take about half a
 * second to parse, too long to hold the loop. The reply's fields are copied (hiredis frees
 * the reply when its callback returns); the worker reads them, the cache and the last set
 * handed out (both only replaced on the loop, never changed, and not while a read is in
 * flight: tpoll_inflight stays set), s->o and nothing else of the store, and logs nothing
 * (but an out-of-memory abort).
 */
typedef struct tread {
	uv_work_t req;
	store_t *s;
	unsigned gen;        /* s->tgen when it began: a new watcher makes it stale */
	size_t n, total;     /* fields read, fields in the hash */
	redisReply *el;      /* 2 n copies: field, value, ... (type, str, len only) */
	json_t *old_cache;   /* s->tcache (a reference) */
	json_t *obj, *cache; /* the results */
	errlist_t errs;
	size_t reused;
	uint64_t parsed;
	uint64_t began; /* uv_hrtime() */
} tread_t;

static void tread_free(tread_t *tr)
{
	for (size_t i = 0; i < 2 * tr->n; i++)
		free(tr->el[i].str);
	free(tr->el);
	json_decref(tr->old_cache);
	json_decref(tr->obj);
	json_decref(tr->cache);
	errlist_release(&tr->errs);
	free(tr);
}

static void tread_work(uv_work_t *req)
{
	tread_t *tr = req->data;

	tr->obj = must(json_object());
	tr->cache = must(json_object());
	if (tr->total > TARGETS_FIELDS_MAX)
		errlist_add(&tr->errs, "%s:targets: %zu fields, only the first %d are read",
		            tr->s->o.prefix, tr->total, TARGETS_FIELDS_MAX);
	for (size_t i = 0; i < tr->n; i++) {
		const redisReply *f = &tr->el[2 * i];
		const char *key = cache_key(f);
		json_t *e = field_entry(tr->s, tr->old_cache, f, &tr->el[2 * i + 1], &tr->parsed);
		json_t *t = json_array_get(e, 1);
		const char *err = json_string_value(json_array_get(e, 2));

		tr->reused += key && e == json_object_get(tr->old_cache, key);
		if (json_is_object(t))
			json_object_set(tr->obj, key, t); /* a valid id: a string, valid UTF-8 */
		else if (err && err[0])
			errlist_add(&tr->errs, "%s", err);
		if (key && json_object_set_nocheck(tr->cache, key, e) != 0)
			must(NULL);
		json_decref(e);
	}
}

/* Loop: the read is parsed; the watcher hears of it if the set or the errors changed. */
static void tread_done(uv_work_t *req, int status)
{
	tread_t *tr = req->data;
	store_t *s = tr->s;
	size_t cached = json_object_size(s->tcache);
	const char *etext;

	s->tpoll_inflight = 0;
	s->open_handles--;
	if (status != 0 || s->closing || !s->tcb || tr->gen != s->tgen)
		goto out;
	s->st.targets_reads++; /* counted once parsed */
	s->st.targets_parsed += tr->parsed;
	json_decref(s->tcache);
	s->tcache = tr->cache;
	tr->cache = NULL;
	etext = tr->errs.count ? errlist_text(&tr->errs) : NULL;
	log_debug(COMP, "targets hash: %zu fields, %" PRIu64 " parsed anew in %.1f ms off the loop",
	          tr->n, tr->parsed, (double)(uv_hrtime() - tr->began) / 1e6);
	/* nothing parsed anew and no field gone: the set is the one already given */
	if (s->tpolled && tr->reused == tr->n && cached == tr->n && tr->total <= TARGETS_FIELDS_MAX)
		goto out;
	if (!s->tpolled || !json_equal(tr->obj, s->tlast) ||
	    (etext == NULL) != (s->tlast_err == NULL) ||
	    (etext && s->tlast_err && strcmp(etext, s->tlast_err))) {
		s->tpolled = 1;
		json_decref(s->tlast);
		s->tlast = tr->obj;
		tr->obj = NULL;
		free(s->tlast_err);
		s->tlast_err = etext ? xstrdup(etext) : NULL;
		if (etext)
			log_warn(COMP, "targets hash: %s", etext);
		s->tcb(s->tud, s->tlast, etext);
	}
out:
	tread_free(tr);
	store__maybe_finish(s);
}

/* A copy of a string reply element (type, str, len). */
static void copy_el(redisReply *to, const redisReply *from)
{
	to->type = from->type;
	to->len = from->type == REDIS_REPLY_STRING ? from->len : 0;
	to->str = must(malloc(to->len + 1));
	if (to->len)
		memcpy(to->str, from->str, to->len);
	to->str[to->len] = '\0';
}

static void on_targets(redisAsyncContext *ac, void *reply, void *privdata)
{
	store_t *s = privdata;
	redisReply *rep = reply;
	tread_t *tr;
	char d[300];

	if (!rep || s->closing || !s->tcb) {
		s->tpoll_inflight = 0;
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
		s->tpoll_inflight = 0;
		store__describe(rep, d, sizeof d);
		if (!s->tlast_err || strncmp(s->tlast_err, "HGETALL", 7)) {
			store__set_error(s, "HGETALL %s:targets: %s (expected a hash)", s->o.prefix,
			                 d);
			free(s->tlast_err);
			s->tlast_err = xstrdup("HGETALL");
		}
		json_decref(s->tcache); /* the next good read is compared whole */
		s->tcache = NULL;
		return;
	}
	s->tfull_ms = store__now_ms();
	tr = must(calloc(1, sizeof *tr));
	tr->s = s;
	tr->gen = s->tgen;
	tr->began = uv_hrtime();
	tr->total = rep->elements / 2;
	tr->n = tr->total > TARGETS_FIELDS_MAX ? TARGETS_FIELDS_MAX : tr->total;
	tr->el = must(calloc(2 * tr->n + 1, sizeof *tr->el));
	for (size_t i = 0; i < 2 * tr->n; i++)
		copy_el(&tr->el[i], rep->element[i]);
	tr->old_cache = json_incref(s->tcache);
	errlist_init(&tr->errs);
	tr->req.data = tr;
	s->open_handles++; /* the store is not freed under the worker (store__maybe_finish) */
	/* tpoll_inflight stays set until it is done */
	if (uv_queue_work(s->loop, &tr->req, tread_work, tread_done) != 0) {
		tread_work(&tr->req);
		tread_done(&tr->req, 0);
	}
}

/* The reply to GET {prefix}:targets:version. A writer that bumps it after each change
 * (docs/redis.md) spares the whole read while it has not changed; without it (nil, or an
 * error) the hash is read every time. Even with it the hash is read at least every
 * TARGETS_FULL_MS, for a writer that forgot. */
static void on_targets_version(redisAsyncContext *ac, void *reply, void *privdata)
{
	store_t *s = privdata;
	redisReply *rep = reply;
	char k[KEY_MAX];
	int same;

	(void)ac;
	if (!rep || s->closing || !s->tcb || !s->ac) {
		s->tpoll_inflight = 0;
		return;
	}
	same = rep->type == REDIS_REPLY_STRING && s->tversion && strlen(s->tversion) == rep->len &&
	       memcmp(s->tversion, rep->str, rep->len) == 0;
	if (same && s->tpolled && store__now_ms() - s->tfull_ms < TARGETS_FULL_MS) {
		s->tpoll_inflight = 0;
		return;
	}
	free(s->tversion);
	s->tversion = rep->type == REDIS_REPLY_STRING && strlen(rep->str) == rep->len
	                      ? xstrdup(rep->str)
	                      : NULL;
	store__key(s, k, "targets", NULL);
	if (store__cmdf(s, on_targets, s, "HGETALL %s", k) != 0)
		s->tpoll_inflight = 0;
}

void store__on_targets_timer(uv_timer_t *t)
{
	store_t *s = t->data;
	char k[KEY_MAX];

	if (s->state != C_READY || !s->ac || !s->tcb || s->tpoll_inflight || s->closing)
		return;
	store__key(s, k, "targets", "version");
	if (store__cmdf(s, on_targets_version, s, "GET %s", k) == 0)
		s->tpoll_inflight = 1;
}

void store_watch_targets(store_t *s, store_targets_cb cb, void *ud)
{
	s->tcb = cb;
	s->tud = ud;
	s->tgen++; /* a read in flight is for the previous watcher */
	s->tpolled = 0;
	json_decref(s->tlast);
	s->tlast = NULL;
	free(s->tlast_err);
	s->tlast_err = NULL;
	json_decref(s->tcache);
	s->tcache = NULL;
	free(s->tversion);
	s->tversion = NULL;
	if (cb && !s->closing)
		uv_timer_start(&s->targets_t, store__on_targets_timer, 0, s->o.targets_poll_ms);
	else
		uv_timer_stop(&s->targets_t);
}
