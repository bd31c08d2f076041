/*
 * share: many cdpilot instances sharing one schedule through Redis (SCHEDULE=redis), on the
 * store's connection (store_command). Each instance keeps its own scheduler (classes,
 * intervals, retries, politeness) and runs only the targets it holds; the instances that do
 * not hold a target never ask about it. The design is a job queue's (a sorted set of due
 * times popped by score, a lease with a token per job, a check for stalled jobs), with
 * sticky holders: docs/scaling.md says why.
 *
 * Keys (P = REDIS_PREFIX, T = a target id, I = an instance: SCHEDULE_INSTANCE and a token
 * drawn at each start, "LABEL#1a2b3c4d", so that a process restarted under the same label is
 * a new holder with new fences); every time is Redis's own clock (TIME, in Unix ms), so the
 * instances' clocks do not matter:
 *   P:sched       sorted set T -> the time from which another instance may take T: a free
 *                 target's due time; a held one's announced next due + lease + run time
 *   P:lease:T     I, the holder (PX: the same time)
 *   P:fence:T     the holder's fence: the next epoch (STORE_EPOCH_LUA: INCR P:epoch, never
 *                 below Redis's clock in ms x 1000) at each change of holder, so greater
 *                 than every store epoch and fence before it (store_put_fenced), also
 *                 after Redis restarted empty
 *   P:owned:I     set of the targets I holds
 *   P:instances   sorted set I -> its last tick
 *   P:cluster     hash I -> I's line of the cluster view (share_set_info: JSON)
 * Rules, each one script (atomic, share_lua.c):
 *   tick      every min(lease / 5, 1 s): I's heartbeat and cluster line; the targets of
 *             instances silent for a lease are freed (due at once); then I takes up to its
 *             share (ceil(targets / live instances)) minus what it holds of the targets
 *             whose score has passed and that no lease holds: each gets a lease, a new
 *             fence, and goes to callbacks.taken. One call per instance per tick.
 *   done(T)   after each run of a held target (one call per scrape): renews the lease to
 *             the next due + lease + run, unless I holds more than its share (released:
 *             due then for the others), or T is not I's any more (lost). A target whose
 *             lease is gone but whose fence is I's (or gone: Redis restarted empty) is I's
 *             again. Answers through callbacks.kept / callbacks.lost.
 *   claim(T)  asked only by a holder whose local lease ran out before its run (a late
 *             run): the same rule of ownership, or takes T if it is free, due and within
 *             the share.
 *   register  the targets go on the schedule (ZADD NX): new ones due at once; after Redis
 *             lost the schedule (a tick sees fewer than we have), due after a lease and a
 *             run, so that their holders take theirs back first, at their next run.
 *   forget(T) T left the targets: removed from P:sched, released if held by I.
 *   close     releases every lease of I (due at once for the others) and removes I.
 * An instance that dies (or is cut off from Redis) stops ticking; a lease later its
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
	uint64_t taken;             /* targets taken by ticks */
	uint64_t renewed, lost;     /* done(): kept, not ours any more */
	unsigned instances;         /* live instances at the last tick */
	unsigned owned;             /* targets this instance holds, at the last tick */
	unsigned share;             /* ceil(targets / live instances), at the last tick */
	unsigned scheduled;         /* targets on the shared schedule, at the last tick */
	unsigned unheld;            /* targets overdue by a lease (nobody runs them) */
} share_stats_t;

typedef struct share share_t;

/* Defaults, then SCHEDULE_INSTANCE and SCHEDULE_LEASE_SECONDS; every bad value is added to
 * errs (name, value, expected). Returns 0 or -EINVAL. */
void share_opts_init(share_opts_t *o);
int share_opts_from_env(share_opts_t *o, errlist_t *errs);

/* How the share tells its user (the runner, through daemon/) what it holds. From the loop,
 * never from inside a share_* call. valid_ms: how long from now the holder may start a run
 * of id without asking Redis (its lease in Redis runs a run's time longer).
 * taken: a tick took id for this instance (new fence); return 0, or -ENOENT if id is not
 *        one of ours (the share then gives it back).
 * kept:  done() renewed id (fence: ours, changed if Redis had lost it).
 * lost:  id is not ours any more (released to even the shares, or another holds it). */
typedef struct share_callbacks {
	void *ud;
	int (*taken)(void *ud, const char *id, uint64_t fence, uint32_t valid_ms);
	void (*kept)(void *ud, const char *id, uint64_t fence, uint32_t valid_ms);
	void (*lost)(void *ud, const char *id);
} share_callbacks_t;

/* Starts ticking (once the store is connected). cbs is copied (NULL: none). Aborts on out
 * of memory. */
share_t *share_new(uv_loop_t *loop, store_t *store, const share_opts_t *o,
                   const share_callbacks_t *cbs);

/* The targets this instance has (copied): those new to it go on the schedule (due at once
 * if no instance put them there first); the others' are kept there for re-registration.
 * Call after every reconcile. */
void share_set_targets(share_t *sh, const char *const *ids, size_t n);

/* This instance's line in the cluster view P:cluster (copied; sent with the next tick). */
void share_set_info(share_t *sh, const char *json);

/*
 * Claims id (a valid store id) before a run, when the local lease ran out (fence: ours, or
 * 0). cb(ud, status, fence, retry_in_ms): status 1 won (fence >
 * 0 for store_put_fenced), 0 held elsewhere or not due (ask again in retry_in_ms), < 0
 * Redis could not answer (-ENOTCONN, -EIO, -EPROTO; -ETIMEDOUT: not within REDIS_TIMEOUT_MS,
 * and the claim has no effect in Redis). ud must stay valid until cb.
 */
typedef void (*share_claim_cb)(void *ud, int status, uint64_t fence, uint32_t retry_in_ms);
void share_claim(share_t *sh, const char *id, uint64_t fence, share_claim_cb cb, void *ud);

/* A held target's run is over; it is due again in next_ms; fence: ours. release 1: give it
 * up. The answer comes through callbacks.kept or .lost (none if Redis is down: the local
 * lease then runs out, and the next run claims first). */
void share_done(share_t *sh, const char *id, uint32_t next_ms, uint64_t fence, int release);

/* id was removed from the targets. Fire and forget. */
void share_forget(share_t *sh, const char *id);

void share_get_stats(const share_t *sh, share_stats_t *out);
const char *share_instance(const share_t *sh);

/* Answers the claims still in flight with -ECANCELED (inside this call), releases this
 * instance's leases (if Redis answers within a second), stops; cb(ud) from the loop when
 * done. sh must not be used after this call (its memory goes once Redis has answered). */
void share_close(share_t *sh, void (*cb)(void *ud), void *ud);

#endif
