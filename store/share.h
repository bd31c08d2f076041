/*
 * share: many cdpilot instances sharing one schedule through Redis (SCHEDULE=redis), on the
 * store's connection (store_command). Each instance keeps its own scheduler (classes,
 * intervals, retries, politeness); before a target is scraped, the instance claims it here,
 * and only the holder of a target's lease scrapes it.
 *
 * Keys (P = REDIS_PREFIX, T = a target id, I = an instance: SCHEDULE_INSTANCE and a token
 * drawn at each start, "LABEL#1a2b3c4d", so that a process restarted under the same label is
 * a new holder with new fences); every time is Redis's own
 * clock (TIME, in Unix ms), so the instances' clocks do not matter:
 *   P:sched       sorted set T -> the next due time its holder announced
 *   P:lease:T     I, the holder (PX: its next due + lease + a task's time, a safety net)
 *   P:fence:T     the holder's fence: the next epoch (STORE_EPOCH_LUA: INCR P:epoch, never
 *                 below Redis's clock in ms x 1000) at each change of holder, so greater
 *                 than every store epoch and fence before it (store_put_fenced), also
 *                 after Redis restarted empty
 *   P:owned:I     set of the targets I holds
 *   P:instances   sorted set I -> its last heartbeat
 * Rules, each one script (atomic):
 *   claim(T)  won if I holds T already; else if T is held by an instance whose heartbeat is
 *             younger than lease_ms, held (retry after T's due time, or in 1 s if that has
 *             passed); else (free, or its holder is dead: taken over) won if T is due and I
 *             holds fewer than its share, ceil(targets / live instances); else held.
 *             Won: I holds T (sticky: the next claim of I wins again), fence returned.
 *   done(T, next)  T is due again after next ms; I keeps holding T unless I holds more
 *             than its share, then T is released (another instance takes it when due).
 *   forget(T) T left the targets: removed from P:sched, released if held by I.
 *   heartbeat every heartbeat_ms: P:instances, and P:owned:I pruned of lost leases.
 *   close     releases every lease of I and removes I, so the others take over at once.
 * An instance that dies (or is cut off from Redis) stops heartbeating; lease_ms later its
 * targets go to the others, with a new fence, so its late writes are refused.
 *
 * Ownership: share_new() -> share_close(cb) -> cb -> freed. The store must outlive the
 * share (close the share first). Callbacks fire from the loop, never from inside the call
 * that registers them; a claim callback fires exactly once (status < 0 when Redis could not
 * be asked: the caller decides; cdpilot then scrapes anyway, see docs/redis.md).
 *
 * Claims have the store's reply deadline (REDIS_TIMEOUT_MS): a claim unanswered that long
 * is answered -ETIMEDOUT when the store drops the connection, and counts as not claimed in
 * Redis too: the claim script carries the deadline in Redis's clock and does nothing if it
 * runs later (a stopped server runs it on resuming), so a claim the caller gave up on never
 * takes a lease behind its back.
 */
#ifndef CDPILOT_STORE_SHARE_H
#define CDPILOT_STORE_SHARE_H

#include <stdint.h>
#include <uv.h>

#include "store/store.h"
#include "util/errlist.h"

#define SHARE_INSTANCE_MAX 64

typedef struct share_opts {
	char instance[SHARE_INSTANCE_MAX + 1]; /* SCHEDULE_INSTANCE; default HOSTNAME-PID */
	uint32_t lease_ms;     /* SCHEDULE_LEASE_SECONDS (default 15, 2..3600) x 1000 */
	uint32_t run_ms;       /* the longest run (TASK_TIMEOUT); the lease covers it; 30000 */
	uint32_t heartbeat_ms; /* not from the environment: lease_ms / 5 (at least 200) */
} share_opts_t;

typedef struct share_stats {
	uint64_t won, held, errors; /* claims */
	uint64_t timeouts;          /* claims unanswered within REDIS_TIMEOUT_MS (not in errors) */
	uint64_t released;          /* given away by done() to even the shares */
	unsigned instances;         /* live instances at the last heartbeat */
	unsigned owned;             /* targets this instance holds, at the last heartbeat */
} share_stats_t;

typedef struct share share_t;

/* Defaults, then SCHEDULE_INSTANCE and SCHEDULE_LEASE_SECONDS; every bad value is added to
 * errs (name, value, expected). Returns 0 or -EINVAL. */
void share_opts_init(share_opts_t *o);
int share_opts_from_env(share_opts_t *o, errlist_t *errs);

/* Starts heartbeating (once the store is connected). Aborts on out of memory. */
share_t *share_new(uv_loop_t *loop, store_t *store, const share_opts_t *o);

/*
 * Claims id (a valid store id). cb(ud, status, fence, retry_in_ms): status 1 won (fence >
 * 0 for store_put_fenced), 0 held elsewhere or not due (ask again in retry_in_ms), < 0
 * Redis could not answer (-ENOTCONN, -EIO, -EPROTO; -ETIMEDOUT: not within REDIS_TIMEOUT_MS,
 * and the claim has no effect in Redis). ud must stay valid until cb.
 */
typedef void (*share_claim_cb)(void *ud, int status, uint64_t fence, uint32_t retry_in_ms);
void share_claim(share_t *sh, const char *id, share_claim_cb cb, void *ud);

/* A won target's run is over; it is due again in next_ms. Fire and forget (lost while
 * Redis is down: the lease's expiry then frees the target). */
void share_done(share_t *sh, const char *id, uint32_t next_ms);

/* id was removed from the targets. Fire and forget. */
void share_forget(share_t *sh, const char *id);

void share_get_stats(const share_t *sh, share_stats_t *out);
const char *share_instance(const share_t *sh);

/* Answers the claims still in flight with -ECANCELED (inside this call), releases this
 * instance's leases (if Redis answers within a second), stops; cb(ud) from the loop when
 * done. sh must not be used after this call (its memory goes once Redis has answered). */
void share_close(share_t *sh, void (*cb)(void *ud), void *ud);

#endif
