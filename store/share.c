/*
 * share: the shared schedule (SCHEDULE=redis); see share.h for the rules. Every rule is one
 * Lua script sent with EVAL on the store's connection (Redis caches the compiled script by
 * its SHA; a claim is a few hundred bytes on a loopback or LAN link). Scripts take Redis's
 * TIME, so due times and heartbeats are on one clock whatever the instances' clocks say.
 *
 * Requests in flight are kept in a list: share_close() answers the claims still waiting with
 * -ECANCELED at once, and the share's memory is freed only after the last reply came back
 * (the store answers every pending command, with NULL at the latest when it closes).
 */
#include "store/share.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util/envnum.h"
#include "util/list.h"
#include "util/log.h"

#define COMP "share"
#define KEY_MAX 200

/* Redis time in ms, as a Lua prelude. */
#define NOW_LUA STORE_NOW_LUA

/* The share of one instance: targets per live instance, rounded up. */
#define SHARE_LUA(instances, sched, ttl)                                                      \
	"local live = redis.call('ZCOUNT', " instances ", now - " ttl ", '+inf')\n"          \
	"if live < 1 then live = 1 end\n"                                                     \
	"local share = math.ceil(redis.call('ZCARD', " sched ") / live)\n"

/* KEYS: sched, lease:T, fence:T, instances, owned:I, epoch.
 * ARGV: T, I, lease ms, run ms, "P:owned:" (to find a dead holder's set), deadline (Redis
 * Unix ms, store_deadline; 0 none).
 * Returns {1, fence, 0} (won), {0, 0, retry ms}, or {2, 0, 0} when run past the deadline:
 * the claimer has given up on it (a stopped server runs it on resuming), so nothing is done. */
static const char claim_lua[] =
        NOW_LUA
        "local dl = tonumber(ARGV[6])\n"
        "if dl > 0 and now > dl then return {2, 0, 0} end\n"
        "local id, me, lease, run = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])\n"
        "redis.call('ZADD', KEYS[4], now, me)\n"
        "local due = redis.call('ZSCORE', KEYS[1], id)\n"
        "if due then due = tonumber(due) else\n"
        "  redis.call('ZADD', KEYS[1], now, id)\n"
        "  due = now\n"
        "end\n"
        "local holder = redis.call('GET', KEYS[2])\n"
        "if holder == me then\n"
        "  local f = tonumber(redis.call('GET', KEYS[3]) or '0')\n"
        "  if f == 0 then\n"
        STORE_EPOCH_LUA("KEYS[6]")
        "    f = e\n"
        "    redis.call('SET', KEYS[3], string.format('%.0f', f))\n"
        "  end\n"
        "  redis.call('SET', KEYS[2], me, 'PX', lease + run)\n"
        "  redis.call('SADD', KEYS[5], id)\n"
        "  return {1, f, 0}\n"
        "end\n"
        "if holder then\n"
        "  local seen = tonumber(redis.call('ZSCORE', KEYS[4], holder) or '0')\n"
        "  if seen + lease > now then\n"
        "    if due > now then return {0, 0, due - now + 500} end\n"
        "    return {0, 0, 1000}\n"
        "  end\n"
        "  redis.call('SREM', ARGV[5] .. holder, id)\n" /* a dead holder: take over */
        "elseif due > now + 50 then\n"
        "  return {0, 0, due - now}\n" /* released with a due time: wait for it */
        "end\n"
        SHARE_LUA("KEYS[4]", "KEYS[1]", "lease")
        "redis.call('SREM', KEYS[5], id)\n"
        "if redis.call('SCARD', KEYS[5]) >= share then return {0, 0, 1000} end\n"
        STORE_EPOCH_LUA("KEYS[6]")
        "local f = e\n"
        "redis.call('SET', KEYS[3], string.format('%.0f', f))\n"
        "redis.call('SET', KEYS[2], me, 'PX', lease + run)\n"
        "redis.call('SADD', KEYS[5], id)\n"
        "return {1, f, 0}\n";

/* KEYS: sched, lease:T, instances, owned:I. ARGV: T, I, next ms, lease ms, run ms.
 * Returns 0 (not ours any more), 1 (kept), 2 (released to even the shares). */
static const char done_lua[] =
        NOW_LUA
        "local id, me, nxt = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
        "local lease, run = tonumber(ARGV[4]), tonumber(ARGV[5])\n"
        "if redis.call('GET', KEYS[2]) ~= me then return 0 end\n"
        "redis.call('ZADD', KEYS[1], now + nxt, id)\n"
        SHARE_LUA("KEYS[3]", "KEYS[1]", "lease")
        "if redis.call('SCARD', KEYS[4]) > share then\n"
        "  redis.call('DEL', KEYS[2])\n"
        "  redis.call('SREM', KEYS[4], id)\n"
        "  return 2\n"
        "end\n"
        "redis.call('SET', KEYS[2], me, 'PX', nxt + lease + run)\n"
        "return 1\n";

/* KEYS: sched, lease:T, owned:I. ARGV: T, I. */
static const char forget_lua[] =
        "redis.call('ZREM', KEYS[1], ARGV[1])\n"
        "if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end\n"
        "redis.call('SREM', KEYS[3], ARGV[1])\n"
        "return 1\n";

/* KEYS: instances, owned:I. ARGV: I, "P:lease:", "P:owned:", lease ms.
 * Returns {live instances, targets held}. Instances silent for an hour are forgotten. */
static const char heartbeat_lua[] =
        NOW_LUA
        "local me, lease = ARGV[1], tonumber(ARGV[4])\n"
        "redis.call('ZADD', KEYS[1], now, me)\n"
        "for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
        "  if redis.call('GET', ARGV[2] .. id) ~= me then redis.call('SREM', KEYS[2], id) end\n"
        "end\n"
        "for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)) do\n"
        "  redis.call('ZREM', KEYS[1], old)\n"
        "  redis.call('DEL', ARGV[3] .. old)\n"
        "end\n"
        "return {redis.call('ZCOUNT', KEYS[1], now - lease, '+inf'), "
        "redis.call('SCARD', KEYS[2])}\n";

/* KEYS: instances, owned:I. ARGV: I, "P:lease:". Releases every lease of I. */
static const char close_lua[] =
        "for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
        "  if redis.call('GET', ARGV[2] .. id) == ARGV[1] then redis.call('DEL', ARGV[2] .. id) end\n"
        "end\n"
        "redis.call('DEL', KEYS[2])\n"
        "redis.call('ZREM', KEYS[1], ARGV[1])\n"
        "return 1\n";

enum req_kind { R_CLAIM, R_DONE, R_FORGET, R_HEARTBEAT, R_CLOSE };

typedef struct sreq {
	struct sreq *prev, *next;
	share_t *sh;
	enum req_kind kind;
	share_claim_cb cb;
	void *ud;
	int delivered;
} sreq_t;

struct share {
	uv_loop_t *loop;
	store_t *store;
	share_opts_t o;
	share_stats_t st;
	sreq_t *reqs; /* in flight */
	uv_timer_t beat, grace;
	unsigned open_handles;
	int closing, close_sent, cb_done;
	void (*close_cb)(void *ud);
	void *close_ud;
	/* Who holds leases in Redis: SCHEDULE_INSTANCE (a label) and a token drawn at each
	 * start, "label#1a2b3c4d", so that a restart under the same label (a container
	 * restarted under its hostname) is a new holder with new fences, never the old one
	 * whose seqs were further on. */
	char ident[SHARE_INSTANCE_MAX + 10];
};

static void *xcalloc(size_t n)
{
	void *p = calloc(1, n);
	if (!p) {
		log_error(COMP, "out of memory");
		abort();
	}
	return p;
}

/* ---- options ---- */

static int instance_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SHARE_INSTANCE_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

void share_opts_init(share_opts_t *o)
{
	char host[256] = "";
	size_t j = 0;

	memset(o, 0, sizeof *o);
	o->lease_ms = 15000;
	o->run_ms = 30000;
	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "cdpilot");
	/* host name characters outside the id alphabet become '-' */
	for (size_t i = 0; host[i] && j < SHARE_INSTANCE_MAX - 12; i++) {
		char c = host[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		         c == '_' || c == '.' || c == '-';
		o->instance[j++] = ok ? c : '-';
	}
	snprintf(o->instance + j, sizeof o->instance - j, "%s%ld", j ? "-" : "cdpilot-",
	         (long)getpid());
}

int share_opts_from_env(share_opts_t *o, errlist_t *errs)
{
	const char *v = getenv("SCHEDULE_INSTANCE");
	double d = 0;
	int rc = 0, r;

	if (v) {
		if (!instance_valid(v)) {
			errlist_add(errs,
			            "SCHEDULE_INSTANCE=\"%.80s\": expected 1 to %d of A-Z a-z 0-9 _ . - "
			            "(unique per instance)",
			            v, SHARE_INSTANCE_MAX);
			rc = -EINVAL;
		} else {
			snprintf(o->instance, sizeof o->instance, "%s", v);
		}
	}
	r = envnum_get(errs, "SCHEDULE_LEASE_SECONDS", 2, 3600, ENVNUM_WHOLE, "seconds", &d);
	if (r > 0)
		o->lease_ms = (uint32_t)d * 1000u;
	else if (r < 0)
		rc = -EINVAL;
	return rc;
}

/* ---- requests ---- */

static void maybe_free(share_t *sh)
{
	if (sh->cb_done && !sh->reqs && !sh->open_handles)
		free(sh);
}

static void key(const share_t *sh, char out[KEY_MAX], const char *kind, const char *id)
{
	if (id)
		snprintf(out, KEY_MAX, "%s:%s:%s", store_prefix(sh->store), kind, id);
	else
		snprintf(out, KEY_MAX, "%s:%s", store_prefix(sh->store), kind);
}

/* Every key and number a script may need, for one target (id NULL: none). */
typedef struct keys {
	char sched[KEY_MAX], lease[KEY_MAX], fence[KEY_MAX], instances[KEY_MAX], owned[KEY_MAX];
	char epoch[KEY_MAX], lease_prefix[KEY_MAX], owned_prefix[KEY_MAX];
	char lease_ms[16], run_ms[16];
} keys_t;

static void keys_for(const share_t *sh, const char *id, keys_t *k)
{
	key(sh, k->sched, "sched", NULL);
	key(sh, k->lease, "lease", id ? id : "");
	key(sh, k->fence, "fence", id ? id : "");
	key(sh, k->instances, "instances", NULL);
	key(sh, k->owned, "owned", sh->ident);
	key(sh, k->epoch, "epoch", NULL);
	key(sh, k->lease_prefix, "lease", "");
	key(sh, k->owned_prefix, "owned", "");
	snprintf(k->lease_ms, sizeof k->lease_ms, "%" PRIu32, sh->o.lease_ms);
	snprintf(k->run_ms, sizeof k->run_ms, "%" PRIu32, sh->o.run_ms);
}

static void on_reply(void *ud, redisReply *rep);

/* EVALs script with nkeys keys then the args; the request joins the in-flight list.
 * Returns 0 or the store's error (the request is freed then). */
static int send_eval(share_t *sh, sreq_t *q, const char *script, int nkeys,
                     const char *const *words, int nwords)
{
	const char *argv[16];
	size_t lens[16];
	char nk[8];
	int argc = 0, rc;

	snprintf(nk, sizeof nk, "%d", nkeys);
	argv[argc++] = "EVAL";
	argv[argc++] = script;
	argv[argc++] = nk;
	for (int i = 0; i < nwords && argc < 16; i++)
		argv[argc++] = words[i];
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	q->sh = sh;
	rc = store_command(sh->store, on_reply, q, argc, argv, lens);
	if (rc != 0) {
		free(q);
		return rc;
	}
	q->next = sh->reqs;
	if (sh->reqs)
		sh->reqs->prev = q;
	sh->reqs = q;
	return 0;
}

static void deliver(sreq_t *q, int status, uint64_t fence, uint32_t retry_ms)
{
	share_t *sh = q->sh;

	if (q->delivered)
		return;
	q->delivered = 1;
	if (status == 1)
		sh->st.won++;
	else if (status == 0)
		sh->st.held++;
	else if (status == -ETIMEDOUT)
		sh->st.timeouts++;
	else
		sh->st.errors++;
	q->cb(q->ud, status, fence, retry_ms);
}

static int int_at(const redisReply *rep, size_t i, long long *out)
{
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements <= i ||
	    rep->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	*out = rep->element[i]->integer;
	return 0;
}

static void finish_close(share_t *sh);

/* Why a command got no reply: the store dropped a connection that did not answer in time
 * (-ETIMEDOUT), or it was lost or closed (-ENOTCONN). */
static int lost_status(const share_t *sh)
{
	store_stats_t ss;

	store_get_stats(sh->store, &ss);
	return ss.unresponsive ? -ETIMEDOUT : -ENOTCONN;
}

static void on_reply(void *ud, redisReply *rep)
{
	sreq_t *q = ud;
	share_t *sh = q->sh;
	long long a, b, c;

	DLIST_UNLINK(&sh->reqs, q, prev, next);
	if (rep && rep->type == REDIS_REPLY_ERROR)
		log_warn(COMP, "Redis refused a schedule script (%s): %.200s",
		         q->kind == R_CLAIM      ? "claim"
		         : q->kind == R_DONE     ? "done"
		         : q->kind == R_FORGET   ? "forget"
		         : q->kind == R_CLOSE    ? "close"
		                                 : "heartbeat",
		         rep->str);
	switch (q->kind) {
	case R_CLAIM:
		if (!rep)
			deliver(q, lost_status(sh), 0, 0);
		else if (int_at(rep, 0, &a) == 0 && a == 2)
			deliver(q, -ETIMEDOUT, 0, 0); /* answered, but run late by Redis's clock */
		else if (int_at(rep, 0, &a) || int_at(rep, 1, &b) || int_at(rep, 2, &c) ||
		         (a != 0 && a != 1) || b < 0 || c < 0) {
			if (rep->type != REDIS_REPLY_ERROR)
				log_warn(COMP, "unexpected reply to a claim: expected {0|1, fence, ms}");
			deliver(q, -EPROTO, 0, 0);
		} else {
			deliver(q, (int)a, (uint64_t)b, c > 3600000 ? 3600000u : (uint32_t)c);
		}
		break;
	case R_DONE:
		if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 2)
			sh->st.released++;
		break;
	case R_HEARTBEAT:
		if (int_at(rep, 0, &a) == 0 && int_at(rep, 1, &b) == 0 && a >= 0 && b >= 0) {
			sh->st.instances = (unsigned)a;
			sh->st.owned = (unsigned)b;
		}
		break;
	case R_CLOSE:
		if (rep && rep->type == REDIS_REPLY_INTEGER)
			log_info(COMP, "instance %s released its targets", sh->ident);
		free(q);
		finish_close(sh);
		maybe_free(sh);
		return;
	case R_FORGET:
		break;
	}
	free(q);
	maybe_free(sh);
}

/* A claim that could not be sent is answered from a zero timer: never from inside the call. */
typedef struct deferred {
	uv_timer_t t;
	share_t *sh;
	share_claim_cb cb;
	void *ud;
	int status;
} deferred_t;

static void on_deferred_closed(uv_handle_t *h)
{
	deferred_t *d = h->data;
	share_t *sh = d->sh;

	free(d);
	sh->open_handles--;
	maybe_free(sh);
}

static void on_deferred(uv_timer_t *t)
{
	deferred_t *d = t->data;

	d->sh->st.errors++;
	d->cb(d->ud, d->status, 0, 0);
	uv_close((uv_handle_t *)&d->t, on_deferred_closed);
}

void share_claim(share_t *sh, const char *id, share_claim_cb cb, void *ud)
{
	sreq_t *q = xcalloc(sizeof *q);
	deferred_t *d;
	keys_t k;
	char deadline[24];
	int rc = -ECANCELED;

	q->kind = R_CLAIM;
	q->cb = cb;
	q->ud = ud;
	if (!sh->closing) {
		keys_for(sh, id, &k);
		snprintf(deadline, sizeof deadline, "%" PRIu64, store_deadline(sh->store));
		rc = send_eval(sh, q, claim_lua, 6,
		               (const char *const[]){ k.sched, k.lease, k.fence, k.instances, k.owned,
		                                      k.epoch, id, sh->ident, k.lease_ms,
		                                      k.run_ms, k.owned_prefix, deadline },
		               12);
		if (rc == 0)
			return;
	} else {
		free(q);
	}
	d = xcalloc(sizeof *d);
	d->sh = sh;
	d->cb = cb;
	d->ud = ud;
	d->status = rc;
	uv_timer_init(sh->loop, &d->t);
	d->t.data = d;
	sh->open_handles++;
	uv_timer_start(&d->t, on_deferred, 0, 0);
}

/* A fire-and-forget request, or NULL once closing. */
static sreq_t *new_req(share_t *sh, enum req_kind kind)
{
	sreq_t *q;

	if (sh->closing)
		return NULL;
	q = xcalloc(sizeof *q);
	q->kind = kind;
	return q;
}

void share_done(share_t *sh, const char *id, uint32_t next_ms)
{
	sreq_t *q = new_req(sh, R_DONE);
	char nxt[16];
	keys_t k;

	if (!q)
		return;
	keys_for(sh, id, &k);
	snprintf(nxt, sizeof nxt, "%" PRIu32, next_ms);
	(void)send_eval(sh, q, done_lua, 4,
	                (const char *const[]){ k.sched, k.lease, k.instances, k.owned, id,
	                                       sh->ident, nxt, k.lease_ms, k.run_ms },
	                9);
}

void share_forget(share_t *sh, const char *id)
{
	sreq_t *q = new_req(sh, R_FORGET);
	keys_t k;

	if (!q)
		return;
	keys_for(sh, id, &k);
	(void)send_eval(sh, q, forget_lua, 3,
	                (const char *const[]){ k.sched, k.lease, k.owned, id, sh->ident }, 5);
}

static void on_beat(uv_timer_t *t)
{
	share_t *sh = t->data;
	sreq_t *q;
	keys_t k;

	if (!store_ready(sh->store) || !(q = new_req(sh, R_HEARTBEAT)))
		return;
	keys_for(sh, NULL, &k);
	(void)send_eval(sh, q, heartbeat_lua, 2,
	                (const char *const[]){ k.instances, k.owned, sh->ident, k.lease_prefix,
	                                       k.owned_prefix, k.lease_ms },
	                6);
}

share_t *share_new(uv_loop_t *loop, store_t *store, const share_opts_t *o)
{
	share_t *sh = xcalloc(sizeof *sh);

	sh->loop = loop;
	sh->store = store;
	sh->o = *o;
	{
		uint32_t token = 0;
		struct timespec ts;
		if (getrandom(&token, sizeof token, GRND_NONBLOCK) != (ssize_t)sizeof token) {
			clock_gettime(CLOCK_REALTIME, &ts); /* no entropy yet: time and pid */
			token = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec ^ ((uint32_t)getpid() << 16);
		}
		snprintf(sh->ident, sizeof sh->ident, "%s#%08" PRIx32, sh->o.instance, token);
	}
	if (!sh->o.lease_ms)
		sh->o.lease_ms = 15000;
	if (!sh->o.run_ms)
		sh->o.run_ms = 30000;
	if (!sh->o.heartbeat_ms)
		sh->o.heartbeat_ms = sh->o.lease_ms / 5 < 200 ? 200 : sh->o.lease_ms / 5;
	uv_timer_init(loop, &sh->beat);
	uv_timer_init(loop, &sh->grace);
	sh->beat.data = sh->grace.data = sh;
	sh->open_handles = 2;
	uv_timer_start(&sh->beat, on_beat, 0, sh->o.heartbeat_ms);
	log_info(COMP, "shared schedule: instance %s, lease %" PRIu32 " ms", sh->ident,
	         sh->o.lease_ms);
	return sh;
}

void share_get_stats(const share_t *sh, share_stats_t *out)
{
	*out = sh->st;
}

const char *share_instance(const share_t *sh)
{
	return sh->ident;
}

static void on_timer_closed(uv_handle_t *h)
{
	share_t *sh = h->data;

	sh->open_handles--;
	if (sh->open_handles == 0 && !sh->cb_done) {
		sh->cb_done = 1;
		if (sh->close_cb)
			sh->close_cb(sh->close_ud);
	}
	maybe_free(sh);
}

/* The close script answered, or the grace ran out: close the timers. */
static void finish_close(share_t *sh)
{
	if (uv_is_closing((uv_handle_t *)&sh->grace))
		return;
	uv_timer_stop(&sh->beat);
	uv_timer_stop(&sh->grace);
	uv_close((uv_handle_t *)&sh->beat, on_timer_closed);
	uv_close((uv_handle_t *)&sh->grace, on_timer_closed);
}

static void on_grace(uv_timer_t *t)
{
	share_t *sh = t->data;

	log_warn(COMP, "Redis did not answer within 1 s: the leases of %s expire on their own",
	         sh->ident);
	finish_close(sh);
}

void share_close(share_t *sh, void (*cb)(void *ud), void *ud)
{
	sreq_t *q = new_req(sh, R_CLOSE);
	keys_t k;

	if (!q)
		return;
	sh->closing = 1;
	sh->close_cb = cb;
	sh->close_ud = ud;
	uv_timer_stop(&sh->beat);
	for (sreq_t *r = sh->reqs; r; r = r->next)
		if (r->kind == R_CLAIM)
			deliver(r, -ECANCELED, 0, 0);
	keys_for(sh, NULL, &k);
	if (send_eval(sh, q, close_lua, 2,
	              (const char *const[]){ k.instances, k.owned, sh->ident, k.lease_prefix },
	              4) != 0) {
		finish_close(sh);
		return;
	}
	uv_timer_start(&sh->grace, on_grace, 1000, 0);
}
