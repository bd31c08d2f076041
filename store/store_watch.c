/*
 * store_watch.c: reading the hashes clients write, P:targets and P:entities, by one reader
 * (hwatch_t) instantiated for each (store__watch_init). While a watcher is set and the
 * store is READY, every targets_poll_ms GET P:NAME:version and, unless that version is the
 * one already read (and the last whole read is under TARGETS_FULL_MS old), HGETALL, parsed
 * on a libuv worker thread (tread_t); each valid field becomes an object (a target, an
 * entity) with "id" set to the field name, each refused one an error line, and the watcher
 * is called only when the valid entries or the errors changed. Each field's raw value is
 * kept with what it gave, so a value that did not change is not parsed again and a refusal
 * that did not change is not logged again. Only the shape is checked here (an object with
 * a valid id): the daemon validates the objects.
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

/* ---- one field ---- */

/* One field of w's hash: a new reference to the object (with "id" set to the field name),
 * or NULL with the refusal in err. Fields that are not strings are skipped (NULL, err ""). */
static json_t *parse_field(const hwatch_t *w, const redisReply *f, const redisReply *v,
                           char *err, size_t errlen)
{
	const store_t *s = w->s;

	json_t *t, *tid;
	json_error_t jerr;

	err[0] = '\0';
	if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
		return NULL;
	if (strlen(f->str) != f->len || !store_id_valid(f->str)) {
		snprintf(err, errlen,
		         "%s:%s field \"%.80s\": not a valid %s id (1 to 64 of "
		         "[A-Za-z0-9_.-], not starting with '.' or '-')",
		         s->o.prefix, w->name, f->str, w->what);
		return NULL;
	}
	if (v->len > TARGETS_VALUE_MAX) {
		snprintf(err, errlen, "%s:%s field \"%s\": value of %zu bytes, over %d",
		         s->o.prefix, w->name, f->str, v->len, TARGETS_VALUE_MAX);
		return NULL;
	}
	t = json_loadb(v->str, v->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!t) {
		snprintf(err, errlen, "%s:%s field \"%s\": not JSON (%s at column %d)",
		         s->o.prefix, w->name, f->str, jerr.text, jerr.column);
		return NULL;
	}
	tid = json_object_get(t, "id");
	if (!json_is_object(t)) {
		snprintf(err, errlen, "%s:%s field \"%s\": expected %s object", s->o.prefix,
		         w->name, f->str, w->a_what);
	} else if (tid && (!json_is_string(tid) || strcmp(json_string_value(tid), f->str))) {
		snprintf(err, errlen, "%s:%s field \"%s\": its \"id\" differs from the field name",
		         s->o.prefix, w->name, f->str);
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
		log_error(COMP, "out of memory reading a hash");
		abort();
	}
	return p;
}

/* A field name that can key the cache: a string without a NUL in it. */
static const char *cache_key(const redisReply *f)
{
	return f->type == REDIS_REPLY_STRING && strlen(f->str) == f->len ? f->str : NULL;
}

/* The field's entry in the cache ({field: [raw value, object or null, refusal or ""]}):
 * the old one (from cache) if the raw value is byte for byte the same (nothing parsed),
 * else a new one, counted in *parsed. A new reference. Raw values and refusals may be any
 * bytes (not checked as UTF-8: the cache is never written out). */
static json_t *field_entry(const hwatch_t *w, json_t *cache, const redisReply *f,
                           const redisReply *v, uint64_t *parsed)
{
	const char *key = cache_key(f);
	json_t *old = key ? json_object_get(cache, key) : NULL;
	json_t *raw = json_array_get(old, 0);
	json_t *e, *t;
	char err[400];

	if (raw && v->type == REDIS_REPLY_STRING && json_string_length(raw) == v->len &&
	    memcmp(json_string_value(raw), v->str, v->len) == 0)
		return json_incref(old);
	t = parse_field(w, f, v, err, sizeof err);
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
 * One read of a hash, parsed off the loop: 20,000 changed values take about half a
 * second to parse, too long to hold the loop. The reply's fields are copied (hiredis frees
 * the reply when its callback returns); the worker reads them, the cache and the last set
 * handed out (both only replaced on the loop, never changed, and not while a read is in
 * flight: poll_inflight stays set), s->o, w's name and what, and nothing else of the store,
 * and logs nothing (but an out-of-memory abort).
 */
typedef struct tread {
	uv_work_t req;
	hwatch_t *w;
	unsigned gen;        /* w->gen when it began: a new watcher makes it stale */
	size_t n, total;     /* fields read, fields in the hash */
	redisReply *el;      /* 2 n copies: field, value, ... (type, str, len only) */
	json_t *old_cache;   /* w->cache (a reference) */
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
		errlist_add(&tr->errs, "%s:%s: %zu fields, only the first %d are read",
		            tr->w->s->o.prefix, tr->w->name, tr->total, TARGETS_FIELDS_MAX);
	for (size_t i = 0; i < tr->n; i++) {
		const redisReply *f = &tr->el[2 * i];
		const char *key = cache_key(f);
		json_t *e = field_entry(tr->w, tr->old_cache, f, &tr->el[2 * i + 1], &tr->parsed);
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
	hwatch_t *w = tr->w;
	store_t *s = w->s;
	size_t cached = json_object_size(w->cache);
	const char *etext;

	w->poll_inflight = 0;
	s->open_handles--;
	if (status != 0 || s->closing || !w->cb || tr->gen != w->gen)
		goto out;
	(*w->reads)++; /* counted once parsed */
	*w->parsed += tr->parsed;
	json_decref(w->cache);
	w->cache = tr->cache;
	tr->cache = NULL;
	etext = tr->errs.count ? errlist_text(&tr->errs) : NULL;
	log_debug(COMP, "%s hash: %zu fields, %" PRIu64 " parsed anew in %.1f ms off the loop",
	          w->name, tr->n, tr->parsed, (double)(uv_hrtime() - tr->began) / 1e6);
	/* nothing parsed anew and no field gone: the set is the one already given */
	if (w->polled && tr->reused == tr->n && cached == tr->n && tr->total <= TARGETS_FIELDS_MAX)
		goto out;
	if (!w->polled || !json_equal(tr->obj, w->last) ||
	    (etext == NULL) != (w->last_err == NULL) ||
	    (etext && w->last_err && strcmp(etext, w->last_err))) {
		w->polled = 1;
		json_decref(w->last);
		w->last = tr->obj;
		tr->obj = NULL;
		free(w->last_err);
		w->last_err = etext ? xstrdup(etext) : NULL;
		if (etext)
			log_warn(COMP, "%s hash: %s", w->name, etext);
		w->cb(w->ud, w->last, etext);
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

static void on_hash(redisAsyncContext *ac, void *reply, void *privdata)
{
	hwatch_t *w = privdata;
	store_t *s = w->s;
	redisReply *rep = reply;
	tread_t *tr;
	char d[300];

	(void)ac;
	if (!rep || s->closing || !w->cb) {
		w->poll_inflight = 0;
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
		w->poll_inflight = 0;
		store__describe(rep, d, sizeof d);
		if (!w->last_err || strncmp(w->last_err, "HGETALL", 7)) {
			store__set_error(s, "HGETALL %s:%s: %s (expected a hash)", s->o.prefix,
			                 w->name, d);
			free(w->last_err);
			w->last_err = xstrdup("HGETALL");
		}
		json_decref(w->cache); /* the next good read is compared whole */
		w->cache = NULL;
		return;
	}
	w->full_ms = store__now_ms();
	tr = must(calloc(1, sizeof *tr));
	tr->w = w;
	tr->gen = w->gen;
	tr->began = uv_hrtime();
	tr->total = rep->elements / 2;
	tr->n = tr->total > TARGETS_FIELDS_MAX ? TARGETS_FIELDS_MAX : tr->total;
	tr->el = must(calloc(2 * tr->n + 1, sizeof *tr->el));
	for (size_t i = 0; i < 2 * tr->n; i++)
		copy_el(&tr->el[i], rep->element[i]);
	tr->old_cache = json_incref(w->cache);
	errlist_init(&tr->errs);
	tr->req.data = tr;
	s->open_handles++; /* the store is not freed under the worker (store__maybe_finish) */
	/* poll_inflight stays set until it is done */
	if (uv_queue_work(s->loop, &tr->req, tread_work, tread_done) != 0) {
		tread_work(&tr->req);
		tread_done(&tr->req, 0);
	}
}

/* The reply to GET {prefix}:NAME:version. A writer that bumps it after each change
 * (docs/redis.md) spares the whole read while it has not changed; without it (nil, or an
 * error) the hash is read every time. Even with it the hash is read at least every
 * TARGETS_FULL_MS, for a writer that forgot. */
static void on_version(redisAsyncContext *ac, void *reply, void *privdata)
{
	hwatch_t *w = privdata;
	store_t *s = w->s;
	redisReply *rep = reply;
	char k[KEY_MAX];
	int same;

	(void)ac;
	if (!rep || s->closing || !w->cb || !s->ac) {
		w->poll_inflight = 0;
		return;
	}
	same = rep->type == REDIS_REPLY_STRING && w->version && strlen(w->version) == rep->len &&
	       memcmp(w->version, rep->str, rep->len) == 0;
	if (same && w->polled && store__now_ms() - w->full_ms < TARGETS_FULL_MS) {
		w->poll_inflight = 0;
		return;
	}
	free(w->version);
	w->version = rep->type == REDIS_REPLY_STRING && strlen(rep->str) == rep->len
	                     ? xstrdup(rep->str)
	                     : NULL;
	store__key(s, k, w->name, NULL);
	if (store__cmdf(s, on_hash, w, "HGETALL %s", k) != 0)
		w->poll_inflight = 0;
}

static void on_watch_timer(uv_timer_t *t)
{
	hwatch_t *w = t->data;
	store_t *s = w->s;
	char k[KEY_MAX];

	if (s->state != C_READY || !s->ac || !w->cb || w->poll_inflight || s->closing)
		return;
	store__key(s, k, w->name, "version");
	if (store__cmdf(s, on_version, w, "GET %s", k) == 0)
		w->poll_inflight = 1;
}

/* ---- the two readers ---- */

void store__watch_init(store_t *s)
{
	static const char *const names[W_NHASHES][3] = {
		[W_TARGETS] = { "targets", "target", "a target" },
		[W_ENTITIES] = { "entities", "entity", "an entity" },
	};

	s->watch[W_TARGETS].reads = &s->st.targets_reads;
	s->watch[W_TARGETS].parsed = &s->st.targets_parsed;
	s->watch[W_ENTITIES].reads = &s->st.entities_reads;
	s->watch[W_ENTITIES].parsed = &s->st.entities_parsed;
	for (int i = 0; i < W_NHASHES; i++) {
		hwatch_t *w = &s->watch[i];
		w->s = s;
		w->name = names[i][0];
		w->what = names[i][1];
		w->a_what = names[i][2];
		uv_timer_init(s->loop, &w->timer);
		w->timer.data = w;
		s->open_handles++;
	}
}

/* Forgets what was read (a new watcher, or the store freed). */
static void watch_forget(hwatch_t *w)
{
	w->gen++; /* a read in flight is for the previous watcher */
	w->polled = 0;
	json_decref(w->last);
	w->last = NULL;
	free(w->last_err);
	w->last_err = NULL;
	json_decref(w->cache);
	w->cache = NULL;
	free(w->version);
	w->version = NULL;
}

void store__watch_release(store_t *s)
{
	for (int i = 0; i < W_NHASHES; i++)
		watch_forget(&s->watch[i]);
}

void store__watch_ready(store_t *s)
{
	for (int i = 0; i < W_NHASHES; i++) {
		hwatch_t *w = &s->watch[i];
		if (!w->cb)
			continue;
		/* a restarted Redis may hold a different hash under the same version */
		free(w->version);
		w->version = NULL;
		uv_timer_start(&w->timer, on_watch_timer, 0, s->o.targets_poll_ms);
	}
}

void store__watch_lost(store_t *s)
{
	for (int i = 0; i < W_NHASHES; i++)
		s->watch[i].poll_inflight = 0;
}

static void watch(store_t *s, hwatch_t *w, store_targets_cb cb, void *ud)
{
	w->cb = cb;
	w->ud = ud;
	watch_forget(w);
	if (cb && !s->closing)
		uv_timer_start(&w->timer, on_watch_timer, 0, s->o.targets_poll_ms);
	else
		uv_timer_stop(&w->timer);
}

void store_watch_targets(store_t *s, store_targets_cb cb, void *ud)
{
	watch(s, &s->watch[W_TARGETS], cb, ud);
}

void store_watch_entities(store_t *s, store_entities_cb cb, void *ud)
{
	watch(s, &s->watch[W_ENTITIES], cb, ud);
}
