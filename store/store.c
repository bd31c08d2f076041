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
 */
#include "store/store.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "adapters/snapshot.h"
#include "store/redis_url.h"
#include "store/redis_uv.h"
#include "util/log.h"

#define COMP "store"
#define KEY_MAX 192
#define TARGETS_FIELDS_MAX 100000
#define TARGETS_VALUE_MAX (1024 * 1024)

/* The write script. KEYS: latest, seq key, stream. ARGV: epoch, seq, snapshot, delta ("" for
 * none), ttl seconds (0 none), maxlen, target, channel. Returns {1, previous "E:S" or ""}
 * when written, {0, stored "E:S"} when refused by the guard. */
static const char write_lua[] =
        "local e, s = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
        "local cur = redis.call('GET', KEYS[2])\n"
        "if cur then\n"
        "  local ce, cs = string.match(cur, '^(%d+):(%d+)$')\n"
        "  ce, cs = tonumber(ce), tonumber(cs)\n"
        "  if ce and (ce > e or (ce == e and cs >= s)) then return {0, cur} end\n"
        "end\n"
        "local ttl = tonumber(ARGV[5])\n"
        "if ttl > 0 then\n"
        "  redis.call('SET', KEYS[1], ARGV[3], 'EX', ttl)\n"
        "  redis.call('SET', KEYS[2], ARGV[1] .. ':' .. ARGV[2], 'EX', ttl)\n"
        "else\n"
        "  redis.call('SET', KEYS[1], ARGV[3])\n"
        "  redis.call('SET', KEYS[2], ARGV[1] .. ':' .. ARGV[2])\n"
        "end\n"
        "if ARGV[4] ~= '' then\n"
        "  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'target', ARGV[7],\n"
        "             'seq', ARGV[2], 'delta', ARGV[4])\n"
        "  redis.call('PUBLISH', ARGV[8], ARGV[4])\n"
        "end\n"
        "return {1, cur or ''}\n";

enum conn_state { C_DOWN = 0, C_CONNECTING, C_SETUP, C_READY };

typedef struct entry {
	struct entry *hnext;         /* hash chain */
	struct entry *qprev, *qnext; /* the send queue (only when queued) */
	char id[STORE_ID_MAX + 1];
	uint64_t seq;
	uint64_t epoch; /* the fence it was put with; 0: the store's epoch */
	char *snap; /* latest unwritten snapshot, or NULL while only the in-flight one is left */
	int queued;
	int inflight; /* a resync of this target is in flight */
} entry_t;

typedef struct req {
	store_t *s;
	char id[STORE_ID_MAX + 1];
	uint64_t seq;
	uint64_t epoch; /* the fence it was put with; 0: the store's epoch */
	char *snap;
	char *delta; /* NULL: no delta */
	int resync;  /* 1: from the backlog (entry inflight) */
	int evaled;  /* the EVAL fallback was used */
} req_t;

struct store {
	uv_loop_t *loop;
	store_opts_t o;
	store_url_t url;
	char redacted[1100];

	redisAsyncContext *ac;
	enum conn_state state;
	int setup_failed;
	int ever_ready;
	char sha[41];
	uint64_t epoch;
	uint32_t backoff_ms;

	/* backlog */
	entry_t **buckets;
	size_t nbuckets, nentries;
	entry_t *qhead, *qtail;
	unsigned inflight; /* write commands (direct + resync) awaiting replies */

	/* health */
	char *health;
	int health_dirty;

	/* targets */
	store_targets_cb tcb;
	void *tud;
	int tpoll_inflight;
	int tpolled;
	json_t *tlast;
	char *tlast_err;

	store_stats_t st;

	uv_timer_t reconnect_t, health_t, targets_t, grace_t, kick_t;
	uv_getaddrinfo_t resolve_req;
	int resolving;
	unsigned open_handles; /* timers + glue polls not yet closed */
	int started, closing, finishing, freed_cb_due;
	void (*close_cb)(void *ud);
	void *close_ud;
};

static void pump(store_t *s);
static void schedule_reconnect(store_t *s);
static void maybe_finish(store_t *s);

/* ---- small helpers ---- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		log_error(COMP, "out of memory (%zu bytes)", n);
		abort();
	}
	return p;
}

static char *xstrdup(const char *str)
{
	size_t n = strlen(str) + 1;
	char *p = xmalloc(n);
	memcpy(p, str, n);
	return p;
}

static void set_error(store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(store_t *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->st.last_error, sizeof s->st.last_error, fmt, ap);
	va_end(ap);
	log_warn(COMP, "%s", s->st.last_error);
}

/* One line describing a reply, for logs. */
static void describe(const redisReply *r, char *out, size_t n)
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
	size_t n = 0;

	if (!id || !*id || id[0] == '.' || id[0] == '-')
		return 0;
	for (; id[n]; n++) {
		unsigned char c = (unsigned char)id[n];
		if (n >= STORE_ID_MAX)
			return 0;
		if (!isalnum(c) && c != '_' && c != '.' && c != '-')
			return 0;
	}
	return 1;
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

static void key(const store_t *s, char out[KEY_MAX], const char *kind, const char *id)
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
}

static int env_u64(const char *name, uint64_t lo, uint64_t hi, uint64_t *out, errlist_t *errs)
{
	const char *v = getenv(name);
	char *end = NULL;
	unsigned long long x;

	if (!v)
		return 0;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-' || x < lo || x > hi) {
		errlist_add(errs, "%s=\"%s\": expected a whole number from %" PRIu64 " to %" PRIu64,
		            name, v, lo, hi);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

int store_opts_from_env(store_opts_t *o, errlist_t *errs)
{
	const char *v;
	uint64_t x;
	int rc = 0;

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
	x = o->snapshot_ttl_s;
	if (env_u64("SNAPSHOT_TTL_SECONDS", 0, 31536000, &x, errs))
		rc = -EINVAL;
	o->snapshot_ttl_s = (uint32_t)x;
	x = o->changes_maxlen;
	if (env_u64("CHANGES_MAXLEN", 1, 1000000000, &x, errs))
		rc = -EINVAL;
	o->changes_maxlen = x;
	x = o->backlog_max;
	if (env_u64("STORE_BACKLOG_MAX", 1, 10000000, &x, errs))
		rc = -EINVAL;
	o->backlog_max = (size_t)x;
	return rc;
}

/* ---- the backlog: hash of entries by id + a send queue ---- */

static uint64_t hash_id(const char *id)
{
	uint64_t h = 1469598103934665603ull;
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return h;
}

static entry_t *find(store_t *s, const char *id)
{
	entry_t *e;

	if (!s->nbuckets)
		return NULL;
	for (e = s->buckets[hash_id(id) & (s->nbuckets - 1)]; e; e = e->hnext)
		if (!strcmp(e->id, id))
			return e;
	return NULL;
}

static void hash_insert(store_t *s, entry_t *e)
{
	size_t b;

	if (s->nentries + 1 > s->nbuckets) {
		size_t n = s->nbuckets ? s->nbuckets * 2 : 64;
		entry_t **nb = calloc(n, sizeof *nb);
		if (!nb) {
			log_error(COMP, "out of memory growing the backlog");
			abort();
		}
		for (size_t i = 0; i < s->nbuckets; i++) {
			entry_t *x = s->buckets[i], *next;
			for (; x; x = next) {
				next = x->hnext;
				b = hash_id(x->id) & (n - 1);
				x->hnext = nb[b];
				nb[b] = x;
			}
		}
		free(s->buckets);
		s->buckets = nb;
		s->nbuckets = n;
	}
	b = hash_id(e->id) & (s->nbuckets - 1);
	e->hnext = s->buckets[b];
	s->buckets[b] = e;
	s->nentries++;
}

static void hash_remove(store_t *s, entry_t *e)
{
	entry_t **pp = &s->buckets[hash_id(e->id) & (s->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == e) {
			*pp = e->hnext;
			s->nentries--;
			return;
		}
}

static void q_push(store_t *s, entry_t *e)
{
	e->qprev = s->qtail;
	e->qnext = NULL;
	if (s->qtail)
		s->qtail->qnext = e;
	else
		s->qhead = e;
	s->qtail = e;
	e->queued = 1;
}

static void q_unlink(store_t *s, entry_t *e)
{
	if (!e->queued)
		return;
	if (e->qprev)
		e->qprev->qnext = e->qnext;
	else
		s->qhead = e->qnext;
	if (e->qnext)
		e->qnext->qprev = e->qprev;
	else
		s->qtail = e->qprev;
	e->qprev = e->qnext = NULL;
	e->queued = 0;
}

static void entry_free(store_t *s, entry_t *e)
{
	q_unlink(s, e);
	hash_remove(s, e);
	free(e->snap);
	free(e);
}

/* Keeps snap (stolen) as the latest unwritten snapshot of id unless a newer one is kept. */
static void backlog_put(store_t *s, const char *id, uint64_t seq, uint64_t epoch, char *snap)
{
	entry_t *e = find(s, id);

	if (e) {
		if (e->snap && e->seq >= seq) {
			free(snap); /* a failed older write coming back */
			return;
		}
		if (!e->snap && e->inflight && e->seq >= seq) {
			free(snap);
			return;
		}
		free(e->snap);
		e->snap = snap;
		e->seq = seq;
		e->epoch = epoch;
		/* least recently put at the head; an entry in flight is queued again by
		 * write_done() */
		q_unlink(s, e);
		if (!e->inflight)
			q_push(s, e);
		return;
	}
	if (s->nentries >= s->o.backlog_max) {
		entry_t *old = s->qhead; /* queued entries are never in flight */
		s->st.drops++;
		if (!old) {
			log_warn(
			        COMP,
			        "backlog full (%zu targets): dropped the result of %s seq %" PRIu64,
			        s->nentries, id, seq);
			free(snap);
			return;
		}
		log_warn(
		        COMP,
		        "backlog full (%zu targets): dropped the unwritten result of %s seq %" PRIu64,
		        s->nentries, old->id, old->seq);
		entry_free(s, old);
	}
	e = xmalloc(sizeof *e);
	memset(e, 0, sizeof *e);
	snprintf(e->id, sizeof e->id, "%s", id);
	e->seq = seq;
	e->epoch = epoch;
	e->snap = snap;
	hash_insert(s, e);
	q_push(s, e);
}

/* ---- writes ---- */

static void req_free(req_t *r)
{
	free(r->snap);
	free(r->delta);
	free(r);
}

static void on_write_reply(redisAsyncContext *ac, void *reply, void *privdata);

static int send_script(store_t *s, req_t *r)
{
	char klatest[KEY_MAX], kseq[KEY_MAX], kstream[KEY_MAX], chan[KEY_MAX];
	char epoch[24], seq[24], ttl[16], maxlen[24];
	const char *argv[14];
	size_t lens[14];
	int n = 0;

	key(s, klatest, "latest", r->id);
	key(s, kseq, "seq", r->id);
	key(s, kstream, "changes", NULL);
	key(s, chan, "changes", r->id);
	snprintf(epoch, sizeof epoch, "%" PRIu64, r->epoch ? r->epoch : s->epoch);
	snprintf(seq, sizeof seq, "%" PRIu64, r->seq);
	snprintf(ttl, sizeof ttl, "%" PRIu32, s->o.snapshot_ttl_s);
	snprintf(maxlen, sizeof maxlen, "%" PRIu64, s->o.changes_maxlen);
	argv[n++] = r->evaled ? "EVAL" : "EVALSHA";
	argv[n++] = r->evaled ? write_lua : s->sha;
	argv[n++] = "3";
	argv[n++] = klatest;
	argv[n++] = kseq;
	argv[n++] = kstream;
	argv[n++] = epoch;
	argv[n++] = seq;
	argv[n++] = r->snap;
	argv[n++] = r->delta ? r->delta : "";
	argv[n++] = ttl;
	argv[n++] = maxlen;
	argv[n++] = r->id;
	argv[n++] = chan;
	for (int i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	if (redisAsyncCommandArgv(s->ac, on_write_reply, r, n, argv, lens) != REDIS_OK)
		return -EIO;
	return 0;
}

/* The write of r is over (ok: written or refused by the guard). Frees r. */
static void write_done(store_t *s, req_t *r, int ok)
{
	entry_t *e = r->resync ? find(s, r->id) : NULL;

	s->inflight--;
	if (r->resync && e) {
		e->inflight = 0;
		if (!ok && !s->closing && !e->snap) {
			e->snap = r->snap; /* still the latest: keep it */
			e->seq = r->seq;
			e->epoch = r->epoch;
			r->snap = NULL;
		}
		if (e->snap)
			q_push(s, e);
		else
			entry_free(s, e);
	} else if (!ok && !s->closing) {
		backlog_put(s, r->id, r->seq, r->epoch, r->snap);
		r->snap = NULL;
	}
	req_free(r);
}

static void on_write_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	req_t *r = privdata;
	store_t *s = r->s;
	redisReply *rep = reply;
	char d[300];

	if (!rep)
		s->state = C_DOWN; /* the connection is going: on_disconnect follows */

	if (rep && rep->type == REDIS_REPLY_ERROR && !r->evaled && s->ac &&
	    !strncmp(rep->str, "NOSCRIPT", 8)) {
		r->evaled = 1;
		if (send_script(s, r) == 0)
			return;
	}
	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER) {
		if (rep->element[0]->integer == 1) {
			s->st.writes_ok++;
		} else {
			s->st.refused_seq++;
			log_info(COMP,
			         "%s seq %" PRIu64 " (epoch %" PRIu64
			         ") not written: Redis holds a newer result (%.*s)",
			         r->id, r->seq, r->epoch ? r->epoch : s->epoch, (int)rep->element[1]->len,
			         rep->element[1]->str ? rep->element[1]->str : "");
		}
		if (r->resync)
			s->st.resyncs++;
		write_done(s, r, 1);
	} else {
		describe(rep, d, sizeof d);
		if (rep) {
			s->st.write_errors++;
			set_error(s, "write of %s seq %" PRIu64 " (%s): %s", r->id, r->seq,
			          r->evaled ? "EVAL" : "EVALSHA", d);
		}
		write_done(s, r, 0);
	}
	pump(s); /* also while closing: the grace period flushes */
}

/* Resync step 1 answered: the stored latest (or nil). */
static void on_resync_get(redisAsyncContext *ac, void *reply, void *privdata)
{
	req_t *r = privdata;
	store_t *s = r->s;
	redisReply *rep = reply;
	json_t *prev = NULL, *next = NULL, *delta = NULL;
	char d[300];
	int rc;

	if (!rep)
		s->state = C_DOWN; /* the connection is going: on_disconnect follows */

	if (!rep || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL) || !s->ac) {
		describe(rep, d, sizeof d);
		if (rep && s->ac) {
			s->st.write_errors++;
			set_error(s, "GET %s:latest:%s (resync): %s", s->o.prefix, r->id, d);
		}
		write_done(s, r, 0);
		pump(s);
		return;
	}
	if (rep->type == REDIS_REPLY_STRING) {
		prev = json_loadb(rep->str, rep->len, 0, NULL);
		if (!prev)
			log_warn(
			        COMP,
			        "%s:latest:%s holds no valid JSON: the resync delta is against nothing",
			        s->o.prefix, r->id);
	}
	next = json_loads(r->snap, 0, NULL);
	rc = next ? snapshot_delta(prev, next, &delta) : -EINVAL;
	if (rc == -EINVAL && prev) {
		log_warn(
		        COMP,
		        "%s:latest:%s is not a snapshot of %s: the resync delta is against nothing",
		        s->o.prefix, r->id, r->id);
		rc = snapshot_delta(NULL, next, &delta);
	}
	if (rc == -ENOMEM) {
		log_error(COMP, "out of memory computing a delta");
		abort();
	}
	if (delta) {
		json_object_set_new(delta, "resync", json_true());
		r->delta = json_dumps(delta, JSON_COMPACT);
		if (!r->delta) {
			log_error(COMP, "out of memory serialising a delta");
			abort();
		}
	}
	json_decref(prev);
	json_decref(next);
	json_decref(delta);
	if (send_script(s, r) != 0)
		write_done(s, r, 0);
}

/* Returns 0, or -EIO if the command could not be queued (the entry is back in the queue). */
static int start_resync(store_t *s, entry_t *e)
{
	req_t *r = xmalloc(sizeof *r);
	char k[KEY_MAX];

	memset(r, 0, sizeof *r);
	r->s = s;
	r->resync = 1;
	snprintf(r->id, sizeof r->id, "%s", e->id);
	r->seq = e->seq;
	r->epoch = e->epoch;
	r->snap = e->snap;
	e->snap = NULL;
	q_unlink(s, e);
	e->inflight = 1;
	s->inflight++;
	key(s, k, "latest", e->id);
	if (redisAsyncCommand(s->ac, on_resync_get, r, "GET %s", k) != REDIS_OK) {
		write_done(s, r, 0);
		return -EIO;
	}
	return 0;
}

/* Sends queued resyncs while the window allows. */
static void pump(store_t *s)
{
	while (s->state == C_READY && s->ac && s->inflight < s->o.inflight_max && s->qhead)
		if (start_resync(s, s->qhead) != 0)
			break;
	if (s->closing)
		maybe_finish(s);
}

void store_put(store_t *s, const json_t *snapshot, const json_t *delta)
{
	store_put_fenced(s, snapshot, delta, 0, 0);
}

void store_put_fenced(store_t *s, const json_t *snapshot, const json_t *delta, uint64_t fence,
                      int resync)
{
	const json_t *jt = json_object_get(snapshot, "target");
	const json_t *js = json_object_get(snapshot, "seq");
	const char *id = json_string_value(jt);
	char *snap;

	if (s->closing)
		return;
	if (!json_is_object(snapshot) || !store_id_valid(id) || !json_is_integer(js) ||
	    json_integer_value(js) < 1 || (delta && !json_is_object(delta))) {
		s->st.rejected++;
		log_warn(
		        COMP,
		        "store_put refused: expected a snapshot object with \"target\" (1 to 64 of "
		        "[A-Za-z0-9_.-], not starting with '.' or '-') and \"seq\" >= 1, got target "
		        "\"%.80s\"",
		        id ? id : "(not a string)");
		return;
	}
	snap = json_dumps(snapshot, JSON_COMPACT);
	if (!snap) {
		log_error(COMP, "out of memory serialising a snapshot");
		abort();
	}
	if (!resync && !find(s, id) && s->state == C_READY && s->ac &&
	    s->inflight < s->o.inflight_max) {
		req_t *r = xmalloc(sizeof *r);
		memset(r, 0, sizeof *r);
		r->s = s;
		snprintf(r->id, sizeof r->id, "%s", id);
		r->seq = (uint64_t)json_integer_value(js);
		r->epoch = fence;
		r->snap = snap;
		if (delta) {
			r->delta = json_dumps(delta, JSON_COMPACT);
			if (!r->delta) {
				log_error(COMP, "out of memory serialising a delta");
				abort();
			}
		}
		s->inflight++;
		if (send_script(s, r) != 0)
			write_done(s, r, 0);
		return;
	}
	backlog_put(s, id, (uint64_t)json_integer_value(js), fence, snap);
	pump(s);
}

/* ---- health ---- */

static void on_simple_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	store_t *s = ac->data;
	redisReply *rep = reply;
	char d[300];

	if (rep && rep->type == REDIS_REPLY_ERROR) {
		describe(rep, d, sizeof d);
		set_error(s, "%s: %s", (const char *)privdata, d);
	}
}

static void write_health(store_t *s)
{
	char k[KEY_MAX], px[24];

	if (s->state != C_READY || !s->ac || !s->health)
		return;
	key(s, k, "health", NULL);
	snprintf(px, sizeof px, "%" PRIu64, (uint64_t)s->o.health_refresh_ms * 5);
	redisAsyncCommand(s->ac, on_simple_reply, "SET health", "SET %s %s PX %s", k, s->health,
	                  px);
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
	write_health(s);
}

static void on_health_timer(uv_timer_t *t)
{
	write_health(t->data);
}

/* ---- targets hash ---- */

static void on_targets(redisAsyncContext *ac, void *reply, void *privdata)
{
	store_t *s = privdata;
	redisReply *rep = reply;
	json_t *obj = NULL;
	errlist_t errs;
	const char *etext;
	char d[300];
	size_t n;

	s->tpoll_inflight = 0;
	if (!rep || s->closing || !s->tcb)
		return;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
		describe(rep, d, sizeof d);
		if (!s->tlast_err || strncmp(s->tlast_err, "HGETALL", 7)) {
			set_error(s, "HGETALL %s:targets: %s (expected a hash)", s->o.prefix, d);
			free(s->tlast_err);
			s->tlast_err = xstrdup("HGETALL");
		}
		return;
	}
	errlist_init(&errs);
	obj = json_object();
	if (!obj) {
		log_error(COMP, "out of memory reading targets");
		abort();
	}
	n = rep->elements / 2;
	if (n > TARGETS_FIELDS_MAX) {
		errlist_add(&errs, "%s:targets: %zu fields, only the first %d are read",
		            s->o.prefix, n, TARGETS_FIELDS_MAX);
		n = TARGETS_FIELDS_MAX;
	}
	for (size_t i = 0; i < n; i++) {
		redisReply *f = rep->element[2 * i], *v = rep->element[2 * i + 1];
		json_t *t, *tid;
		json_error_t jerr;

		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (strlen(f->str) != f->len || !store_id_valid(f->str)) {
			errlist_add(&errs,
			            "%s:targets field \"%.80s\": not a valid target id (1 to 64 of "
			            "[A-Za-z0-9_.-], not starting with '.' or '-')",
			            s->o.prefix, f->str);
			continue;
		}
		if (v->len > TARGETS_VALUE_MAX) {
			errlist_add(&errs, "%s:targets field \"%s\": value of %zu bytes, over %d",
			            s->o.prefix, f->str, v->len, TARGETS_VALUE_MAX);
			continue;
		}
		t = json_loadb(v->str, v->len, JSON_REJECT_DUPLICATES, &jerr);
		if (!t) {
			errlist_add(&errs, "%s:targets field \"%s\": not JSON (%s at column %d)",
			            s->o.prefix, f->str, jerr.text, jerr.column);
			continue;
		}
		tid = json_object_get(t, "id");
		if (!json_is_object(t)) {
			errlist_add(&errs, "%s:targets field \"%s\": expected a target object",
			            s->o.prefix, f->str);
		} else if (tid &&
		           (!json_is_string(tid) || strcmp(json_string_value(tid), f->str))) {
			errlist_add(
			        &errs,
			        "%s:targets field \"%s\": its \"id\" differs from the field name",
			        s->o.prefix, f->str);
		} else {
			json_object_set_new(t, "id", json_string(f->str));
			json_object_set(obj, f->str, t);
		}
		json_decref(t);
	}
	etext = errs.count ? errlist_text(&errs) : NULL;
	if (!s->tpolled || !json_equal(obj, s->tlast) ||
	    (etext == NULL) != (s->tlast_err == NULL) ||
	    (etext && s->tlast_err && strcmp(etext, s->tlast_err))) {
		s->tpolled = 1;
		json_decref(s->tlast);
		s->tlast = obj;
		free(s->tlast_err);
		s->tlast_err = etext ? xstrdup(etext) : NULL;
		if (etext)
			log_warn(COMP, "targets hash: %s", etext);
		s->tcb(s->tud, obj, etext);
	} else {
		json_decref(obj);
	}
	errlist_release(&errs);
}

static void on_targets_timer(uv_timer_t *t)
{
	store_t *s = t->data;
	char k[KEY_MAX];

	if (s->state != C_READY || !s->ac || !s->tcb || s->tpoll_inflight || s->closing)
		return;
	key(s, k, "targets", NULL);
	if (redisAsyncCommand(s->ac, on_targets, s, "HGETALL %s", k) == REDIS_OK)
		s->tpoll_inflight = 1;
}

void store_watch_targets(store_t *s, store_targets_cb cb, void *ud)
{
	s->tcb = cb;
	s->tud = ud;
	s->tpolled = 0;
	json_decref(s->tlast);
	s->tlast = NULL;
	free(s->tlast_err);
	s->tlast_err = NULL;
	if (cb && !s->closing)
		uv_timer_start(&s->targets_t, on_targets_timer, 0, s->o.targets_poll_ms);
	else
		uv_timer_stop(&s->targets_t);
}

/* ---- the connection ---- */

static void on_glue_closed(void *ud)
{
	store_t *s = ud;

	s->open_handles--;
	maybe_finish(s);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	store_t *s = ac->data;
	redisReply *rep = reply;
	const char *what = privdata;
	char d[300];

	if (!rep || s->setup_failed)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		describe(rep, d, sizeof d);
		s->setup_failed = 1;
		if (!strcmp(what, "AUTH"))
			set_error(s, "AUTH as %s%s%s on %s failed: %s",
			          s->url.user[0] ? "user \"" : "",
			          s->url.user[0] ? s->url.user : "the default user",
			          s->url.user[0] ? "\"" : "", s->redacted, d);
		else
			set_error(s, "%s on %s failed: %s", what, s->redacted, d);
		redisAsyncDisconnect(ac);
		return;
	}
	if (!strcmp(what, "INCR epoch")) {
		if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 1) {
			describe(rep, d, sizeof d);
			s->setup_failed = 1;
			set_error(s, "INCR %s:epoch: %s (expected a positive integer)", s->o.prefix,
			          d);
			redisAsyncDisconnect(ac);
			return;
		}
		s->epoch = (uint64_t)rep->integer;
		s->st.epoch = s->epoch;
	} else if (!strcmp(what, "SCRIPT LOAD")) {
		if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
			describe(rep, d, sizeof d);
			s->setup_failed = 1;
			set_error(s, "SCRIPT LOAD: %s (expected a SHA1)", d);
			redisAsyncDisconnect(ac);
			return;
		}
		memcpy(s->sha, rep->str, 40);
		s->sha[40] = '\0';
		s->state = C_READY;
		s->backoff_ms = s->o.backoff_min_ms;
		if (s->ever_ready)
			s->st.reconnects++;
		s->ever_ready = 1;
		log_info(COMP, "connected to %s (epoch %" PRIu64 ", %zu targets in the backlog)",
		         s->redacted, s->epoch, s->nentries);
		write_health(s);
		if (s->tcb)
			uv_timer_start(&s->targets_t, on_targets_timer, 0, s->o.targets_poll_ms);
		pump(s);
	}
}

static void on_connect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	store_t *s = ac->data;
	char k[KEY_MAX], db[16];

	if (status != REDIS_OK) {
		set_error(s, "connecting to %s: %s", s->redacted, ac->errstr);
		s->ac = NULL; /* hiredis frees it */
		s->state = C_DOWN;
		schedule_reconnect(s);
		maybe_finish(s);
		return;
	}
	s->state = C_SETUP;
	s->setup_failed = 0;
	if (s->url.has_password) {
		if (s->url.user[0])
			redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s %s", s->url.user,
			                  s->url.password);
		else
			redisAsyncCommand(ac, on_setup_reply, "AUTH", "AUTH %s", s->url.password);
	}
	if (s->url.db) {
		snprintf(db, sizeof db, "%d", s->url.db);
		redisAsyncCommand(ac, on_setup_reply, "SELECT", "SELECT %s", db);
	}
	if (!s->epoch) {
		key(s, k, "epoch", NULL);
		redisAsyncCommand(ac, on_setup_reply, "INCR epoch", "INCR %s", k);
	}
	redisAsyncCommand(ac, on_setup_reply, "SCRIPT LOAD", "SCRIPT LOAD %s", write_lua);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	store_t *s = ac->data;

	if (status != REDIS_OK)
		set_error(s, "connection to %s lost: %s", s->redacted,
		          ac->errstr[0] ? ac->errstr : "closed");
	s->ac = NULL;
	s->state = C_DOWN;
	s->tpoll_inflight = 0;
	schedule_reconnect(s);
	maybe_finish(s);
}

/* Connects to the unix socket, or to ip (a numeric address) on the URL's port. */
static void connect_to(store_t *s, const char *ip)
{
	redisAsyncContext *ac;
	int rc;

	if (s->closing || s->ac)
		return;
	ac = s->url.is_unix ? redisAsyncConnectUnix(s->url.path)
	                    : redisAsyncConnect(ip, s->url.port);
	if (!ac) {
		log_error(COMP, "out of memory creating a Redis context");
		abort();
	}
	if (ac->err) {
		set_error(s, "connecting to %s: %s", s->redacted, ac->errstr);
		redisAsyncFree(ac);
		schedule_reconnect(s);
		return;
	}
	ac->data = s;
	rc = store_uv_attach(ac, s->loop, on_glue_closed, s);
	if (rc) {
		set_error(s, "attaching the Redis connection to the loop: %s", uv_strerror(rc));
		redisAsyncFree(ac);
		schedule_reconnect(s);
		return;
	}
	s->open_handles++;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	s->ac = ac;
	s->state = C_CONNECTING;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	store_t *s = req->data;
	char ip[INET6_ADDRSTRLEN] = "";

	s->resolving = 0;
	s->open_handles--;
	if (status == 0 && res) {
		if (res->ai_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof ip);
		else
			uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
	}
	uv_freeaddrinfo(res);
	if (s->closing) {
		maybe_finish(s);
		return;
	}
	if (status != 0 || !ip[0]) {
		set_error(s, "resolving the host of %s: %s", s->redacted,
		          status ? uv_strerror(status) : "no address");
		schedule_reconnect(s);
		return;
	}
	connect_to(s, ip);
}

/* hiredis resolves host names with a blocking getaddrinfo(): names are resolved here on
 * libuv's thread pool first, numeric addresses and unix sockets connect at once. */
static void connect_now(store_t *s)
{
	struct in6_addr a6;
	struct addrinfo hints;
	int rc;

	if (s->closing || s->ac || s->resolving)
		return;
	if (s->url.is_unix || inet_pton(AF_INET, s->url.host, &a6) == 1 ||
	    inet_pton(AF_INET6, s->url.host, &a6) == 1) {
		connect_to(s, s->url.host);
		return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	s->resolve_req.data = s;
	rc = uv_getaddrinfo(s->loop, &s->resolve_req, on_resolved, s->url.host, NULL, &hints);
	if (rc) {
		set_error(s, "resolving the host of %s: %s", s->redacted, uv_strerror(rc));
		schedule_reconnect(s);
		return;
	}
	s->resolving = 1;
	s->open_handles++;
}

static void on_reconnect_timer(uv_timer_t *t)
{
	connect_now(t->data);
}

static void schedule_reconnect(store_t *s)
{
	if (s->closing)
		return;
	uv_timer_start(&s->reconnect_t, on_reconnect_timer, s->backoff_ms, 0);
	s->backoff_ms =
	        s->backoff_ms * 2 > s->o.backoff_max_ms ? s->o.backoff_max_ms : s->backoff_ms * 2;
}

/* ---- lifecycle ---- */

store_t *store_new(uv_loop_t *loop, const store_opts_t *o)
{
	store_t *s;
	char err[1400];
	uv_timer_t *timers[5];

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
	s = xmalloc(sizeof *s);
	memset(s, 0, sizeof *s);
	s->loop = loop;
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
	store_url_parse(o->url, &s->url, err, sizeof err);
	store_url_redact(o->url, s->redacted, sizeof s->redacted);
	s->backoff_ms = s->o.backoff_min_ms;
	timers[0] = &s->reconnect_t;
	timers[1] = &s->health_t;
	timers[2] = &s->targets_t;
	timers[3] = &s->grace_t;
	timers[4] = &s->kick_t;
	for (int i = 0; i < 5; i++) {
		uv_timer_init(loop, timers[i]);
		timers[i]->data = s;
		s->open_handles++;
	}
	return s;
}

int store_start(store_t *s)
{
	if (s->started || s->closing)
		return -EALREADY;
	s->started = 1;
	uv_timer_start(&s->health_t, on_health_timer, s->o.health_refresh_ms,
	               s->o.health_refresh_ms);
	connect_now(s);
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

	if (s->closing || s->state != C_READY || !s->ac)
		return -ENOTCONN;
	c = xmalloc(sizeof *c);
	c->cb = cb;
	c->ud = ud;
	if (redisAsyncCommandArgv(s->ac, on_cmd_reply, c, argc, argv, lens) != REDIS_OK) {
		free(c);
		return -EIO;
	}
	return 0;
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
}

static void on_handle_closed(uv_handle_t *h)
{
	store_t *s = h->data;

	s->open_handles--;
	maybe_finish(s);
}

static void on_finish(uv_timer_t *t)
{
	store_t *s = t->data;
	uv_timer_t *timers[5] = { &s->reconnect_t, &s->health_t, &s->targets_t, &s->grace_t,
		                  &s->kick_t };

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
		entry_free(s, s->qhead);
	for (size_t i = 0; i < s->nbuckets; i++)
		while (s->buckets[i])
			entry_free(s, s->buckets[i]);
	for (int i = 0; i < 5; i++)
		uv_close((uv_handle_t *)timers[i], on_handle_closed);
}

static void maybe_finish(store_t *s)
{
	if (!s->closing)
		return;
	if (s->finishing) {
		if (s->open_handles == 0) {
			void (*cb)(void *) = s->close_cb;
			void *ud = s->close_ud;
			free(s->buckets);
			free(s->health);
			json_decref(s->tlast);
			free(s->tlast_err);
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
	uv_timer_stop(&s->targets_t);
	uv_timer_start(&s->grace_t, on_grace, s->o.close_grace_ms, 0);
	maybe_finish(s);
}
