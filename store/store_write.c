/*
 * store_write.c: writing results. Each result is one run of the write script, which
 * writes latest, seq, the stream entry and the publish together, and only if its
 * (epoch, seq) is greater than the stored one (the ordering guard). store_put() sends
 * directly when it can, else keeps the result in the backlog; store__pump() drains the
 * backlog as resyncs (GET the stored latest, diff, then the script) while the write window
 * allows. A failed write goes back to the backlog. Each run carries the store's deadline in
 * Redis's clock (store_deadline): run later than that (by a server that was stopped, then
 * resumed with the write still in its socket, after the store gave up on the connection and
 * kept the result for a resync), it does nothing.
 * Targets' and entities' results take the same path; their kind (store__kinds) names the
 * keys, the stream field and how a resync delta is computed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/snapshot.h"
#include "store/store_priv.h"
#include "util/log.h"

/* The write script. KEYS: latest, seq key, stream. ARGV: epoch, seq, snapshot, delta ("" for
 * none), ttl seconds (0 none), maxlen, id, channel, deadline (Redis Unix ms, 0 none), the
 * stream entry's id field ("target" or "entity").
 * Returns {1, previous "E:S" or ""} when written, {0, stored "E:S"} when refused by the
 * guard, {2, ""} when run past its deadline (nothing written). */
const char store__write_lua[] =
        "local dl = tonumber(ARGV[9])\n"
        "if dl > 0 then\n"
        "  local tm = redis.call('TIME')\n"
        "  if tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000) > dl then\n"
        "    return {2, ''}\n"
        "  end\n"
        "end\n"
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
        "  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', ARGV[10], ARGV[7],\n"
        "             'seq', ARGV[2], 'delta', ARGV[4])\n"
        "  redis.call('PUBLISH', ARGV[8], ARGV[4])\n"
        "end\n"
        "return {1, cur or ''}\n";

const kind_desc_t store__kinds[K_NKINDS] = {
	[K_TARGET] = { "target", "latest", "seq", "changes" },
	[K_ENTITY] = { "entity", "entity", "entity-seq", "changes:entity" },
};

/* The word before an id in logs: "" for a target, "entity " for an entity. */
static const char *kw(enum store_kind kind)
{
	return kind == K_ENTITY ? "entity " : "";
}

typedef struct req {
	store_t *s;
	enum store_kind kind;
	char id[STORE_ID_MAX + 1];
	uint64_t seq;
	uint64_t epoch; /* the fence it was put with; 0: the store's epoch */
	char *snap;
	char *delta; /* NULL: no delta */
	int resync;  /* 1: from the backlog (entry inflight) */
	int evaled;  /* the EVAL fallback was used */
} req_t;

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
	char epoch[24], seq[24], ttl[16], maxlen[24], deadline[24];
	const kind_desc_t *k = &store__kinds[r->kind];
	const char *argv[16];
	size_t lens[16];
	int n = 0;

	store__key(s, klatest, k->latest, r->id);
	store__key(s, kseq, k->seq, r->id);
	store__key(s, kstream, "changes", NULL);
	store__key(s, chan, k->channel, r->id);
	snprintf(epoch, sizeof epoch, "%" PRIu64, r->epoch ? r->epoch : s->epoch);
	snprintf(seq, sizeof seq, "%" PRIu64, r->seq);
	snprintf(ttl, sizeof ttl, "%" PRIu32, s->o.snapshot_ttl_s);
	snprintf(maxlen, sizeof maxlen, "%" PRIu64, s->o.changes_maxlen);
	snprintf(deadline, sizeof deadline, "%" PRIu64, store_deadline(s));
	argv[n++] = r->evaled ? "EVAL" : "EVALSHA";
	argv[n++] = r->evaled ? store__write_lua : s->sha;
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
	argv[n++] = deadline;
	argv[n++] = k->field;
	for (int i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	return store__cmdv(s, on_write_reply, r, n, argv, lens);
}

/* The write of r is over (ok: written or refused by the guard). Frees r. */
static void write_done(store_t *s, req_t *r, int ok)
{
	entry_t *e = r->resync ? store__find(s, r->kind, r->id) : NULL;

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
			store__q_push(s, e);
		else
			store__entry_free(s, e);
	} else if (!ok && !s->closing) {
		store__backlog_put(s, r->kind, r->id, r->seq, r->epoch, r->snap);
		r->snap = NULL;
	}
	req_free(r);
}

/* The script answered {1|0|2, "E:S"}: counts it. Returns 1 when the write is over (written,
 * or refused by the guard), 0 when it must be kept for a resync (run past its deadline). */
static int script_result(store_t *s, req_t *r, const redisReply *rep)
{
	long long res = rep->element[0]->integer;

	if (res == 2) {
		/* answered in time by our clock, yet late by Redis's: its clock moved */
		log_info(COMP,
		         "%s%s seq %" PRIu64 " ran past its deadline by Redis's clock: not written, "
		         "kept for a resync; reading Redis's clock again",
		         kw(r->kind), r->id, r->seq);
		store__clock_ask(s);
		return 0;
	}
	if (res == 1) {
		s->st.writes_ok++;
	} else {
		s->st.refused_seq++;
		log_info(COMP,
		         "%s%s seq %" PRIu64 " (epoch %" PRIu64
		         ") not written: Redis holds a newer result (%.*s)",
		         kw(r->kind), r->id, r->seq, r->epoch ? r->epoch : s->epoch, (int)rep->element[1]->len,
		         rep->element[1]->str ? rep->element[1]->str : "");
	}
	if (r->resync)
		s->st.resyncs++;
	return 1;
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
		write_done(s, r, script_result(s, r, rep));
	} else {
		store__describe(rep, d, sizeof d);
		if (rep) {
			s->st.write_errors++;
			store__set_error(s, "write of %s%s seq %" PRIu64 " (%s): %s", kw(r->kind),
			                 r->id, r->seq, r->evaled ? "EVAL" : "EVALSHA", d);
		}
		write_done(s, r, 0);
	}
	store__pump(s); /* also while closing: the grace period flushes */
}

/* The winners' changes from prev's provenance to next's: {field: {"from", "to"}} (a
 * source id, or null: no winner). */
static json_t *winner_changes(const json_t *pprov, const json_t *nprov)
{
	json_t *w = json_object();
	const char *f;
	json_t *v;

	if (!w)
		return NULL;
	json_object_foreach ((json_t *)nprov, f, v) {
		json_t *from = json_object_get(json_object_get(pprov, f), "source");
		json_t *to = json_object_get(v, "source");
		if (!json_equal(from, to))
			json_object_set_new(w, f,
			                    json_pack("{s:O, s:O}", "from", from ? from : json_null(),
			                              "to", to ? to : json_null()));
	}
	json_object_foreach ((json_t *)pprov, f, v)
		if (!json_object_get(nprov, f) && json_object_get(v, "source"))
			json_object_set_new(w, f, json_pack("{s:O, s:n}", "from",
			                                    json_object_get(v, "source"), "to"));
	return w;
}

/* 1 if j is a snapshot of entity id. */
static int is_entity_snap(const json_t *j, const char *id)
{
	const char *e = json_string_value(json_object_get(j, "entity"));

	return json_is_object(j) && e && !strcmp(e, id) &&
	       json_is_integer(json_object_get(j, "seq"));
}

/* An entity's delta from prev (NULL: nothing) to next, in entity.h's shape: the paths into
 * data, the winners that changed and the new degraded list; *out NULL when none of the
 * three differs. Returns 0, -EINVAL (next is not an entity snapshot) or -ENOMEM. */
static int entity_delta(const json_t *prev, const json_t *next, json_t **out)
{
	const char *id = json_string_value(json_object_get(next, "entity"));
	json_t *empty = json_object(), *added = json_array(), *changed = json_array(),
	       *removed = json_array(), *winners = NULL, *deg0 = json_array();
	const json_t *pd, *nd, *pdeg, *ndeg;
	int rc;

	*out = NULL;
	if (!empty || !added || !changed || !removed || !deg0) {
		rc = -ENOMEM;
		goto out;
	}
	if (!id || !is_entity_snap(next, id)) {
		rc = -EINVAL;
		goto out;
	}
	pd = json_object_get(prev, "data");
	nd = json_object_get(next, "data");
	pdeg = json_is_array(json_object_get(prev, "degraded")) ? json_object_get(prev, "degraded")
	                                                        : deg0;
	ndeg = json_is_array(json_object_get(next, "degraded")) ? json_object_get(next, "degraded")
	                                                        : deg0;
	rc = snapshot_diff(json_is_object(pd) ? pd : empty, json_is_object(nd) ? nd : empty, added,
	                   changed, removed);
	winners = rc ? NULL
	             : winner_changes(json_object_get(prev, "provenance"),
	                              json_object_get(next, "provenance"));
	if (!rc && !winners)
		rc = -ENOMEM;
	if (rc || (!json_array_size(added) && !json_array_size(changed) &&
	           !json_array_size(removed) && !json_object_size(winners) &&
	           json_equal(pdeg, ndeg)))
		goto out;
	*out = json_pack("{s:s, s:O, s:I, s:O, s:O, s:O, s:O, s:O, s:O}", "entity", id, "seq",
	                 json_object_get(next, "seq"), "prev_seq",
	                 prev ? json_integer_value(json_object_get(prev, "seq")) : (json_int_t)0,
	                 "updated_at",
	                 json_object_get(next, "updated_at") ? json_object_get(next, "updated_at")
	                                                     : json_null(),
	                 "added", added, "changed", changed, "removed", removed, "winners",
	                 winners, "degraded", ndeg);
	if (!*out)
		rc = -ENOMEM;
out:
	json_decref(empty);
	json_decref(added);
	json_decref(changed);
	json_decref(removed);
	json_decref(winners);
	json_decref(deg0);
	return rc;
}

/* The resync delta of r against what Redis holds (raw, len; NULL: nothing), marked
 * "resync": true, into r->delta (left NULL when nothing differs). */
static void resync_delta(store_t *s, req_t *r, const char *raw, size_t len)
{
	const kind_desc_t *k = &store__kinds[r->kind];
	json_t *prev = NULL, *next = NULL, *delta = NULL;
	int rc;

	if (raw) {
		prev = json_loadb(raw, len, 0, NULL);
		if (!prev)
			log_warn(COMP,
			         "%s:%s:%s holds no valid JSON: the resync delta is against nothing",
			         s->o.prefix, k->latest, r->id);
	}
	next = json_loads(r->snap, 0, NULL);
	if (prev && r->kind == K_ENTITY && !is_entity_snap(prev, r->id)) {
		log_warn(COMP,
		         "%s:%s:%s is not a snapshot of entity %s: the resync delta is against nothing",
		         s->o.prefix, k->latest, r->id, r->id);
		json_decref(prev);
		prev = NULL;
	}
	if (r->kind == K_ENTITY)
		rc = next ? entity_delta(prev, next, &delta) : -EINVAL;
	else
		rc = next ? snapshot_delta(prev, next, &delta) : -EINVAL;
	if (rc == -EINVAL && prev && r->kind == K_TARGET) {
		log_warn(COMP,
		         "%s:%s:%s is not a snapshot of %s: the resync delta is against nothing",
		         s->o.prefix, k->latest, r->id, r->id);
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
}

/* Resync step 1 answered: the stored latest (or nil). */
static void on_resync_get(redisAsyncContext *ac, void *reply, void *privdata)
{
	req_t *r = privdata;
	store_t *s = r->s;
	redisReply *rep = reply;
	char d[300];

	if (!rep)
		s->state = C_DOWN; /* the connection is going: on_disconnect follows */

	if (!rep || (rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_NIL) || !s->ac) {
		store__describe(rep, d, sizeof d);
		if (rep && s->ac) {
			s->st.write_errors++;
			store__set_error(s, "GET %s:%s:%s (resync): %s", s->o.prefix,
			                 store__kinds[r->kind].latest, r->id, d);
		}
		write_done(s, r, 0);
		store__pump(s);
		return;
	}
	resync_delta(s, r, rep->type == REDIS_REPLY_STRING ? rep->str : NULL, rep->len);
	if (send_script(s, r) != 0)
		write_done(s, r, 0);
}

/* Returns 0, or -EIO if the command could not be queued (the entry is back in the queue). */
static int start_resync(store_t *s, entry_t *e)
{
	req_t *r = store__xmalloc(sizeof *r);
	char k[KEY_MAX];

	memset(r, 0, sizeof *r);
	r->s = s;
	r->resync = 1;
	r->kind = e->kind;
	snprintf(r->id, sizeof r->id, "%s", e->id);
	r->seq = e->seq;
	r->epoch = e->epoch;
	r->snap = e->snap;
	e->snap = NULL;
	store__q_unlink(s, e);
	e->inflight = 1;
	s->inflight++;
	store__key(s, k, store__kinds[e->kind].latest, e->id);
	if (store__cmdf(s, on_resync_get, r, "GET %s", k) != 0) {
		write_done(s, r, 0);
		return -EIO;
	}
	return 0;
}

/* Sends queued resyncs while the window allows. */
void store__pump(store_t *s)
{
	while (s->state == C_READY && s->ac && s->inflight < s->o.inflight_max && s->qhead)
		if (start_resync(s, s->qhead) != 0)
			break;
	if (s->closing)
		store__maybe_finish(s);
}

/* One result of kind (see store_put_fenced). */
static void put_kind(store_t *s, enum store_kind kind, const json_t *snapshot,
                     const json_t *delta, uint64_t fence, int resync)
{
	const char *field = store__kinds[kind].field;
	const json_t *js = json_object_get(snapshot, "seq");
	const char *id = json_string_value(json_object_get(snapshot, field));
	char *snap;

	if (s->closing)
		return;
	if (!json_is_object(snapshot) || !store_id_valid(id) || !json_is_integer(js) ||
	    json_integer_value(js) < 1 || (delta && !json_is_object(delta))) {
		s->st.rejected++;
		log_warn(COMP,
		         "%s refused: expected a snapshot object with \"%s\" (1 to 64 of "
		         "[A-Za-z0-9_.-], not starting with '.' or '-') and \"seq\" >= 1, got %s "
		         "\"%.80s\"",
		         kind == K_ENTITY ? "store_put_entity" : "store_put", field, field,
		         id ? id : "(not a string)");
		return;
	}
	snap = json_dumps(snapshot, JSON_COMPACT);
	if (!snap) {
		log_error(COMP, "out of memory serialising a snapshot");
		abort();
	}
	if (!resync && !store__find(s, kind, id) && s->state == C_READY && s->ac &&
	    s->inflight < s->o.inflight_max) {
		req_t *r = store__xmalloc(sizeof *r);
		memset(r, 0, sizeof *r);
		r->s = s;
		r->kind = kind;
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
	store__backlog_put(s, kind, id, (uint64_t)json_integer_value(js), fence, snap);
	store__pump(s);
}

void store_put(store_t *s, const json_t *snapshot, const json_t *delta)
{
	put_kind(s, K_TARGET, snapshot, delta, 0, 0);
}

void store_put_fenced(store_t *s, const json_t *snapshot, const json_t *delta, uint64_t fence,
                      int resync)
{
	put_kind(s, K_TARGET, snapshot, delta, fence, resync);
}

void store_put_entity(store_t *s, const json_t *snap, const json_t *delta)
{
	put_kind(s, K_ENTITY, snap, delta, 0, 0);
}
