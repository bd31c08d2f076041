/*
 * share: the shared schedule (SCHEDULE=redis); see share.h for the rules and share_lua.c
 * for the scripts. Every rule is one Lua script, sent by SHA (SCRIPT LOAD once per
 * connection; until its SHA is known, and again on NOSCRIPT, the script itself), so a
 * scrape costs Redis one short script call whatever the number of instances.
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

#include "store/share_priv.h"
#include "util/list.h"
#include "util/log.h"

#define COMP "share"
#define TAKE_MOST 1000     /* targets one tick may take */
#define PRUNE_EVERY 30     /* ticks between prunes of this instance's set of held targets */

static void *xcalloc(size_t n)
{
	void *p = calloc(1, n);
	if (!p) {
		log_error(COMP, "out of memory");
		abort();
	}
	return p;
}

/* ---- requests ---- */

static void maybe_free(share_t *sh)
{
	if (sh->cb_done && !sh->reqs && !sh->open_handles) {
		for (size_t i = 0; i < sh->nids; i++)
			free(sh->ids[i]);
		free(sh->ids);
		free(sh->info);
		free(sh);
	}
}

void share__key(const share_t *sh, char out[KEY_MAX], const char *kind, const char *id)
{
	if (id)
		snprintf(out, KEY_MAX, "%s:%s:%s", store_prefix(sh->store), kind, id);
	else
		snprintf(out, KEY_MAX, "%s:%s", store_prefix(sh->store), kind);
}

/* Every key and number a script may need, for one target (id NULL: none). */
typedef struct keys {
	char sched[KEY_MAX], lease[KEY_MAX], fence[KEY_MAX], instances[KEY_MAX], owned[KEY_MAX];
	char epoch[KEY_MAX], cluster[KEY_MAX], hold[KEY_MAX], lease_prefix[KEY_MAX];
	char owned_prefix[KEY_MAX];
	char fence_prefix[KEY_MAX];
	char lease_ms[16], run_ms[16];
} keys_t;

static void keys_for(const share_t *sh, const char *id, keys_t *k)
{
	share__key(sh, k->sched, "sched", NULL);
	share__key(sh, k->lease, "lease", id ? id : "");
	share__key(sh, k->fence, "fence", id ? id : "");
	share__key(sh, k->instances, "instances", NULL);
	share__key(sh, k->owned, "owned", sh->ident);
	share__key(sh, k->epoch, "epoch", NULL);
	share__key(sh, k->cluster, "cluster", NULL);
	share__key(sh, k->hold, "sched-hold", NULL);
	share__key(sh, k->lease_prefix, "lease", "");
	share__key(sh, k->owned_prefix, "owned", "");
	share__key(sh, k->fence_prefix, "fence", "");
	snprintf(k->lease_ms, sizeof k->lease_ms, "%" PRIu32, sh->o.lease_ms);
	snprintf(k->run_ms, sizeof k->run_ms, "%" PRIu32, sh->o.run_ms);
}

void share__link_req(share_t *sh, sreq_t *q)
{
	q->next = sh->reqs;
	q->prev = NULL;
	if (sh->reqs)
		sh->reqs->prev = q;
	sh->reqs = q;
}

void share__free_req(sreq_t *q)
{
	free(q->buf);
	free(q);
}

/* Sends q's command (argv[0] "EVALSHA" with the SHA, or "EVAL" with the script). */
static int send_req(share_t *sh, sreq_t *q)
{
	int rc = store_command(sh->store, share__on_reply, q, q->argc, q->argv, q->lens);
	if (rc == 0)
		share__link_req(sh, q);
	return rc;
}

/* Runs script s with nkeys keys then the words (copied into q). Returns 0 or the store's
 * error (q is freed then). */
static int send_script(share_t *sh, sreq_t *q, enum share_script s, int nkeys,
                       const char *const *words, int nwords)
{
	size_t total = 16, off = 0;
	int rc;

	q->sh = sh;
	q->script = s;
	for (int i = 0; i < nwords; i++)
		total += strlen(words[i]) + 1;
	q->buf = xcalloc(total);
	q->argc = 0;
	if (sh->sha[s][0]) {
		q->argv[q->argc++] = "EVALSHA";
		q->argv[q->argc++] = sh->sha[s];
	} else {
		q->argv[q->argc++] = "EVAL";
		q->argv[q->argc++] = share__lua[s];
		share__load_script(sh, s);
	}
	off = (size_t)snprintf(q->buf, total, "%d", nkeys) + 1;
	q->argv[q->argc++] = q->buf;
	for (int i = 0; i < nwords && q->argc < MAX_WORDS; i++) {
		size_t n = strlen(words[i]);
		memcpy(q->buf + off, words[i], n + 1);
		q->argv[q->argc++] = q->buf + off;
		off += n + 1;
	}
	for (int i = 0; i < q->argc; i++)
		q->lens[i] = strlen(q->argv[i]);
	rc = send_req(sh, q);
	if (rc != 0)
		share__free_req(q);
	return rc;
}

/* Learns script s's SHA (once per connection: a restarted Redis answers NOSCRIPT, and the
 * SHA is learnt again). */
void share__load_script(share_t *sh, enum share_script s)
{
	sreq_t *q;

	if (sh->loading[s])
		return;
	q = xcalloc(sizeof *q);
	q->sh = sh;
	q->kind = R_LOAD;
	q->script = s;
	q->argc = 3;
	q->argv[0] = "SCRIPT";
	q->argv[1] = "LOAD";
	q->argv[2] = share__lua[s];
	for (int i = 0; i < 3; i++)
		q->lens[i] = strlen(q->argv[i]);
	if (send_req(sh, q) != 0) {
		share__free_req(q);
		return;
	}
	sh->loading[s] = 1;
}

/* NOSCRIPT: Redis lost its script cache (restarted). The SHA is learnt again, and q is sent
 * once more with the script itself. 1 if it was sent again. */
static int resend_in_full(share_t *sh, sreq_t *q, const redisReply *rep)
{
	if (!rep || rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "NOSCRIPT", 8) != 0 ||
	    q->kind == R_LOAD)
		return 0;
	/* whatever happens to q, the next requests send the script itself until the SHA is
	 * learnt again */
	sh->sha[q->script][0] = '\0';
	if (!sh->closing)
		share__load_script(sh, q->script);
	if (q->retried)
		return 0;
	q->retried = 1;
	q->argv[0] = "EVAL";
	q->argv[1] = share__lua[q->script];
	q->lens[0] = 4;
	q->lens[1] = strlen(q->argv[1]);
	return send_req(sh, q) == 0;
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

static void on_claim_reply(sreq_t *q, const redisReply *rep)
{
	long long a, b, c;

	if (!rep)
		deliver(q, lost_status(q->sh), 0, 0);
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
}

static void on_done_reply(share_t *sh, sreq_t *q, const redisReply *rep)
{
	long long a, b;

	if (int_at(rep, 0, &a) || int_at(rep, 1, &b) || a < 0 || a > 2 || b < 0)
		return; /* lost with the connection (the lease's expiry frees the target) */
	if (a == 1) {
		sh->st.renewed++;
		if (sh->cbs.kept)
			sh->cbs.kept(sh->cbs.ud, q->id, (uint64_t)b, q->next_ms + sh->o.lease_ms);
		return;
	}
	if (a == 2)
		sh->st.released++;
	else
		sh->st.lost++;
	if (sh->cbs.lost)
		sh->cbs.lost(sh->cbs.ud, q->id);
}

static void on_tick_reply(share_t *sh, const redisReply *rep)
{
	long long live, held, size, unheld, shr, fence;

	sh->tick_inflight = 0;
	if (int_at(rep, 0, &live) || int_at(rep, 1, &held) || int_at(rep, 2, &size) ||
	    int_at(rep, 3, &unheld) || int_at(rep, 4, &shr)) {
		if (rep && rep->type != REDIS_REPLY_ERROR)
			log_warn(COMP, "unexpected reply to a tick: expected {live, held, size, "
			               "unheld, share, id, fence...}");
		return;
	}
	sh->st.instances = (unsigned)live;
	sh->st.scheduled = (unsigned)size;
	sh->st.unheld = (unsigned)unheld;
	sh->st.share = (unsigned)shr;
	for (size_t i = 5; i + 1 < rep->elements; i += 2) {
		const redisReply *id = rep->element[i];
		if (id->type != REDIS_REPLY_STRING || int_at(rep, i + 1, &fence) || fence <= 0)
			continue;
		sh->st.taken++;
		if (sh->cbs.taken && sh->cbs.taken(sh->cbs.ud, id->str, (uint64_t)fence,
		                                   sh->o.lease_ms) != 0) {
			/* not one of our targets (another instance's file has it): give it back */
			share_done(sh, id->str, sh->o.lease_ms, (uint64_t)fence, 1);
			held--;
		}
	}
	sh->st.owned = held > 0 ? (unsigned)held : 0;
	/* the schedule lost targets we have: Redis restarted empty (or another instance
	 * forgot them). Their holders take theirs back at their next run; the others are put
	 * back due after a lease and a run, so that nobody takes a target its holder still
	 * runs. */
	if ((size_t)size < sh->nids && sh->registered_once) {
		log_warn(COMP, "the shared schedule holds %lld of our %zu targets: putting them back",
		         size, sh->nids);
		share__register_all(sh, sh->o.lease_ms + sh->o.run_ms);
	}
}

void share__on_reply(void *ud, redisReply *rep)
{
	sreq_t *q = ud;
	share_t *sh = q->sh;

	DLIST_UNLINK(&sh->reqs, q, prev, next);
	if (resend_in_full(sh, q, rep))
		return;
	if (rep && rep->type == REDIS_REPLY_ERROR)
		log_warn(COMP, "Redis refused a schedule script (%s): %.200s",
		         share__lua_name[q->script], rep->str);
	switch (q->kind) {
	case R_LOAD:
		sh->loading[q->script] = 0;
		if (rep && rep->type == REDIS_REPLY_STRING && rep->len == 40)
			memcpy(sh->sha[q->script], rep->str, 41);
		break;
	case R_CLAIM:
		on_claim_reply(q, rep);
		break;
	case R_DONE:
		if (!sh->closing)
			on_done_reply(sh, q, rep);
		break;
	case R_TICK:
		if (!sh->closing)
			on_tick_reply(sh, rep);
		else
			sh->tick_inflight = 0;
		break;
	case R_CLOSE:
		if (rep && rep->type == REDIS_REPLY_INTEGER)
			log_info(COMP, "instance %s released its targets", sh->ident);
		share__free_req(q);
		finish_close(sh);
		maybe_free(sh);
		return;
	case R_FORGET:
	case R_REGISTER:
		break;
	}
	share__free_req(q);
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

void share_claim(share_t *sh, const char *id, uint64_t fence, share_claim_cb cb, void *ud)
{
	sreq_t *q = xcalloc(sizeof *q);
	deferred_t *d;
	keys_t k;
	char deadline[24], mine[24];
	int rc = -ECANCELED;

	q->kind = R_CLAIM;
	q->cb = cb;
	q->ud = ud;
	if (!sh->closing) {
		keys_for(sh, id, &k);
		snprintf(deadline, sizeof deadline, "%" PRIu64, store_deadline(sh->store));
		snprintf(mine, sizeof mine, "%" PRIu64, fence);
		rc = send_script(sh, q, SS_CLAIM, 6,
		                 (const char *const[]){ k.sched, k.lease, k.fence, k.instances,
		                                        k.owned, k.epoch, id, sh->ident, k.lease_ms,
		                                        k.run_ms, mine, deadline },
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
sreq_t *share__new_req(share_t *sh, enum req_kind kind)
{
	sreq_t *q;

	if (sh->closing)
		return NULL;
	q = xcalloc(sizeof *q);
	q->kind = kind;
	return q;
}

void share_done(share_t *sh, const char *id, uint32_t next_ms, uint64_t fence, int release)
{
	sreq_t *q = share__new_req(sh, R_DONE);
	char nxt[16], mine[24];
	keys_t k;

	if (!q)
		return;
	snprintf(q->id, sizeof q->id, "%s", id);
	q->next_ms = next_ms;
	keys_for(sh, id, &k);
	snprintf(nxt, sizeof nxt, "%" PRIu32, next_ms);
	snprintf(mine, sizeof mine, "%" PRIu64, fence);
	(void)send_script(sh, q, SS_DONE, 7,
	                  (const char *const[]){ k.sched, k.lease, k.fence, k.instances, k.owned,
	                                         k.epoch, k.hold, id, sh->ident, nxt, k.lease_ms,
	                                         k.run_ms, mine, release ? "1" : "0" },
	                  14);
}

void share_forget(share_t *sh, const char *id)
{
	sreq_t *q = share__new_req(sh, R_FORGET);
	keys_t k;

	if (!q)
		return;
	keys_for(sh, id, &k);
	(void)send_script(sh, q, SS_FORGET, 4,
	                  (const char *const[]){ k.sched, k.lease, k.owned, k.fence, id, sh->ident },
	                  6);
}

void share_set_info(share_t *sh, const char *json)
{
	free(sh->info);
	sh->info = json ? strdup(json) : NULL;
}

/* ---- the tick ---- */

static void on_beat(uv_timer_t *t)
{
	share_t *sh = t->data;
	sreq_t *q;
	keys_t k;
	char most[16];
	const char *prune;

	if (!store_ready(sh->store) || sh->tick_inflight)
		return;
	if (!sh->registered_once && sh->nids) {
		share__register_all(sh, 0);
		sh->registered_once = 1;
	}
	if (!(q = share__new_req(sh, R_TICK)))
		return;
	keys_for(sh, NULL, &k);
	snprintf(most, sizeof most, "%d", TAKE_MOST);
	sh->ticks++;
	prune = sh->ticks % PRUNE_EVERY == 0 ? "1" : "0";
	if (send_script(sh, q, SS_TICK, 6,
	                (const char *const[]){ k.sched, k.instances, k.owned, k.epoch, k.cluster,
	                                       k.hold, sh->ident, k.lease_prefix, k.owned_prefix,
	                                       k.fence_prefix, k.lease_ms, k.run_ms, most,
	                                       prune, sh->info ? sh->info : "{}" },
	                15) == 0)
		sh->tick_inflight = 1;
}

share_t *share_new(uv_loop_t *loop, store_t *store, const share_opts_t *o,
                   const share_callbacks_t *cbs)
{
	share_t *sh = xcalloc(sizeof *sh);

	sh->loop = loop;
	sh->store = store;
	sh->o = *o;
	if (cbs)
		sh->cbs = *cbs;
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
	if (sh->o.heartbeat_ms > 1000)
		sh->o.heartbeat_ms = 1000; /* the tick also takes free targets: at least each second */
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
	sreq_t *q = share__new_req(sh, R_CLOSE);
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
	if (send_script(sh, q, SS_CLOSE, 4,
	                (const char *const[]){ k.instances, k.owned, k.sched, k.cluster, sh->ident,
	                                       k.lease_prefix },
	                6) != 0) {
		finish_close(sh);
		return;
	}
	uv_timer_start(&sh->grace, on_grace, 1000, 0);
}
