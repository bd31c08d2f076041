/*
 * store: publishes snapshots, deltas and health to Redis, and reads the run-time targets
 * hash, over one hiredis async connection on the caller's libuv loop (redis_uv.c glue).
 * docs/redis.md is the key contract for clients.
 *
 * Keys (P = REDIS_PREFIX, T = a target id, E = an entity id):
 *   P:latest:T    the latest snapshot (JSON string), optional TTL SNAPSHOT_TTL_SECONDS
 *   P:seq:T       "EPOCH:SEQ" of that snapshot, the ordering guard (same TTL)
 *   P:changes     stream of deltas, fields target, seq, delta (XADD MAXLEN ~ CHANGES_MAXLEN);
 *                 an entity's entries have the field entity in place of target
 *   P:changes:T   pub/sub channel: each delta is PUBLISHed there too
 *   P:entity:E    an entity's latest snapshot (store_put_entity), same TTL
 *   P:entity-seq:E  its ordering guard, "EPOCH:SEQ" (same TTL)
 *   P:changes:entity:E  pub/sub channel of the entity's deltas
 *   P:health      health JSON (store_set_health), expires if not refreshed
 *   P:status:T    hash: the target's status (store_set_status)
 *   P:events      stream of events: failures, recoveries, freezes (store_event)
 *   P:targets     hash id -> target object JSON, written by clients, read every second
 *   P:targets:version  optional, bumped by clients after each change of P:targets
 *   P:entities    hash id -> entity object JSON (entity/entity.h), read like P:targets
 *   P:entities:version  optional, bumped by clients after each change of P:entities
 *   P:epoch       counter: each store takes one number from it on its first connection (and
 *                 the shared schedule one per claim won), never below Redis's clock in ms
 *                 times 1000 (STORE_EPOCH_LUA), so epochs never go back, not even when
 *                 Redis restarts empty
 * One result is written by one Lua script (EVALSHA, EVAL on NOSCRIPT): latest, seq, stream
 * entry and publish together, and only if (epoch, seq) is greater than the stored one, so an
 * older result never overwrites a newer one. The epoch orders processes: a restarted daemon
 * (whose seq starts again at 1) gets a greater epoch than the one before it.
 *
 * Outages: store_put() never blocks and never fails because Redis is down. While the
 * connection is down (or the write window is full), only the latest snapshot per target is
 * kept (the backlog, at most backlog_max targets and entities together; past it the least recently put target is
 * dropped and counted). Reconnection backs off from 100 ms doubling to 5 s. A target from the
 * backlog is written with ONE delta against what Redis holds for it (read first, diffed with
 * snapshot_delta, marked "resync": true).
 *
 * Replies have a deadline (timeout_ms, REDIS_TIMEOUT_MS). When the oldest command awaiting
 * a reply (or a connection attempt) is older than that, the connection is declared
 * unresponsive and dropped (stats.unresponsive, stats.timeouts): every pending reply
 * callback gets NULL, unanswered writes go back to the backlog (one entry per target, the
 * newest), and the reconnect timer backs off as after any loss. Each write also carries
 * that deadline in Redis's clock (read with TIME at each connection): a write that reaches
 * Redis late (a stopped server executes what was left in its socket when it resumes) does
 * nothing, so after recovery each target gets one net change. A reply arrives within
 * timeout_ms or the connection is gone within about timeout_ms * 1.25.
 *
 * Lifecycle (a handle): store_new -> store_start -> ... -> store_close(cb) -> cb -> (memory
 * freed by the store before cb; do not touch it after). All callbacks fire from the loop.
 * Nothing here calls back synchronously from the call that registers the callback.
 * Redis errors (NOAUTH, WRONGPASS, WRONGTYPE, OOM, unexpected reply types) are logged with
 * the command and the reply, counted, and never crash. Out of memory aborts (daemon plumbing).
 */
#ifndef CDPILOT_STORE_STORE_H
#define CDPILOT_STORE_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/errlist.h"

#define STORE_ID_MAX 64

/*
 * The next epoch (a fence), as a Lua fragment: `e` is set to INCR of the key named by
 * `key` (a Lua expression), raised to Redis's clock in Unix ms times 1000 when the counter
 * is below it. `now` (Redis's TIME in ms) must be set before. So an epoch never goes back:
 * not when Redis restarts empty (the counter starts again, the clock does not), as long as
 * Redis's clock does not go back and fewer than 1000 epochs are taken per millisecond on
 * average. The store takes one per process; the shared schedule one per claim won.
 */
#define STORE_EPOCH_LUA(key)                                                                  \
	"local e = redis.call('INCR', " key ")\n"                                              \
	"if e < now * 1000 then\n"                                                             \
	"  e = now * 1000\n"                                                                   \
	"  redis.call('SET', " key ", string.format('%.0f', e))\n"                               \
	"end\n"
#define STORE_NOW_LUA                                                                         \
	"local tm = redis.call('TIME')\n"                                                      \
	"local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"

typedef struct store_opts {
	char url[2049];          /* REDIS_URL; default redis://127.0.0.1:6379/0 */
	char prefix[64];         /* REDIS_PREFIX; default "cdpilot"; [A-Za-z0-9_.:-]{1,63} */
	uint32_t snapshot_ttl_s; /* SNAPSHOT_TTL_SECONDS; 0 (default) = no TTL; max 31536000 */
	uint64_t changes_maxlen; /* CHANGES_MAXLEN; default 100000; 1..1000000000 */
	size_t backlog_max;      /* STORE_BACKLOG_MAX; default 100000; 1..10000000 */
	/* Not from the environment (tests and the daemon may change them): */
	uint32_t health_refresh_ms; /* default 2000; P:health expires after 5 refreshes */
	uint32_t targets_poll_ms;   /* default 1000 */
	uint32_t backoff_min_ms;    /* default 100 */
	uint32_t backoff_max_ms;    /* default 5000 */
	uint32_t close_grace_ms;    /* store_close() flushes for at most this; default 2000 */
	uint32_t inflight_max;      /* writes sent and not yet answered; default 256 */
	uint32_t timeout_ms;        /* REDIS_TIMEOUT_MS; default 2000; 100..600000 */
} store_opts_t;

typedef struct store store_t;

typedef struct store_stats {
	int connected;         /* 1: connected, authenticated, ready to write */
	int degraded;          /* not connected, or a backlog is waiting */
	int unresponsive;      /* the last connection was dropped for want of a reply; 0 again
	                          once connected (or once a connection attempt is refused) */
	/* backlog, writes_ok, write_errors, refused_seq, resyncs, drops and rejected count
	 * targets' and entities' results together */
	size_t backlog;        /* targets (and entities) whose latest snapshot is not yet written */
	uint64_t writes_ok;    /* results written (refusals are in refused_seq) */
	uint64_t write_errors; /* error or unexpected replies to writes (retried later) */
	uint64_t refused_seq;  /* results refused because Redis held a newer (epoch, seq) */
	uint64_t resyncs;      /* of the above: backlog writes diffed against Redis */
	uint64_t reconnects;   /* successful connections after the first */
	uint64_t timeouts;     /* connections dropped: no reply within timeout_ms */
	uint64_t drops;        /* backlog entries dropped at backlog_max */
	uint64_t rejected;     /* store_put() calls refused (not a snapshot, bad target id) */
	uint64_t events_dropped; /* events dropped while Redis was away (over 1000 waiting) */
	uint64_t epoch;        /* this store's epoch, 0 until the first connection */
	uint64_t targets_reads;  /* whole reads of the targets hash (HGETALL) */
	uint64_t targets_parsed; /* targets hash values parsed (unchanged ones are not) */
	uint64_t entities_reads;  /* whole reads of the entities hash (HGETALL) */
	uint64_t entities_parsed; /* entities hash values parsed (unchanged ones are not) */
	char last_error[256];  /* last connection or command error, "" if none yet */
} store_stats_t;

/* Defaults into o. */
void store_opts_init(store_opts_t *o);

/*
 * Reads REDIS_URL, REDIS_PREFIX, SNAPSHOT_TTL_SECONDS, CHANGES_MAXLEN, STORE_BACKLOG_MAX and
 * REDIS_TIMEOUT_MS (unset ones keep o's value). Every bad value is added to errs, naming the variable, its
 * value and what was expected; REDIS_URL is parsed here, so a bad URL is a startup error.
 * Returns 0 or -EINVAL.
 */
int store_opts_from_env(store_opts_t *o, errlist_t *errs);

/* 1 if id is 1..64 bytes of [A-Za-z0-9_.-] not starting with '.' or '-'. Such an id names
 * only its own keys. */
int store_id_valid(const char *id);

/*
 * A store on loop with a copy of *o. Returns NULL after logging why if o->url or o->prefix
 * is not valid (store_opts_from_env has already said so for env values). Nothing is
 * connected before store_start().
 */
store_t *store_new(uv_loop_t *loop, const store_opts_t *o);

/* Starts connecting (asynchronously; failures are retried with backoff and logged).
 * Returns 0, or -EALREADY. */
int store_start(store_t *s);

/*
 * Queues one result. snapshot (borrowed) must be an object with "target" (a valid id) and
 * "seq" (an integer >= 1); delta (borrowed, may be NULL: no change) is its delta from the
 * previous snapshot of the target (adapters/snapshot.h). Both are serialised at once; the
 * caller may change or free them after the call. Results of one target must be put in
 * increasing seq. A bad snapshot is logged and counted in stats.rejected. May be called
 * before store_start() (queued in the backlog) and from any callback; ignored after
 * store_close().
 */
void store_put(store_t *s, const json_t *snapshot, const json_t *delta);

/* health (borrowed, any JSON) is serialised and written to P:health at once if it changed,
 * then rewritten every health_refresh_ms with an expiry of 5 refreshes. */
void store_set_health(store_t *s, const json_t *health);

/*
 * A target's status: the scalar fields of status (borrowed; strings as they are, numbers
 * and booleans as text, null as "") are HSET into P:status:T, replacing those fields.
 * While Redis is away the newest status of each target waits and is written on
 * reconnection. A bad id is ignored.
 */
void store_set_status(store_t *s, const char *id, const json_t *status);
/* An event (borrowed; its scalar fields) is XADDed to the stream P:events (MAXLEN ~
 * 10000). While Redis is away up to 1000 wait, oldest dropped first (stats.events_dropped). */
void store_event(store_t *s, const json_t *event);

/*
 * The targets hash. targets_obj (borrowed until the callback returns) is {id: target object}
 * of the valid entries, each object with "id" set to its field name; errors is NULL or one
 * line per refused entry (bad id, not JSON, not an object, an "id" that differs from the
 * field), naming the field. Called after the first successful read, then only when the
 * valid entries or the errors changed. While Redis is down nothing is called (the last set
 * stays in force). At most 100000 fields of at most 1 MiB each are taken (more is an
 * error line). One watcher per store; cb NULL stops watching. cb may call any store
 * function, store_close() included. The hash is read every targets_poll_ms, but only when
 * P:targets:version (if the key exists) changed since the last read, or a minute has
 * passed; values that did not change since the last read are not parsed again.
 */
typedef void (*store_targets_cb)(void *ud, const json_t *targets_obj, const char *errors);
void store_watch_targets(store_t *s, store_targets_cb cb, void *ud);

/*
 * The entities hash P:entities (field = entity id, value = entity object JSON, entity.h),
 * read exactly as the targets hash above (same caps, gate P:entities:version, caching,
 * worker-thread parse, one watcher, callback rules): entities_obj is {id: entity object}
 * of the valid entries with "id" set to the field name; errors one line per refused entry
 * ("P:entities field \"x\": not a valid entity id ...", "not JSON ...", "expected an
 * entity object", "its \"id\" differs from the field name"). Only that is checked here:
 * the daemon validates each object (entities_parse_one). stats.entities_reads and
 * entities_parsed count its reads.
 */
typedef void (*store_entities_cb)(void *ud, const json_t *entities_obj, const char *errors);
void store_watch_entities(store_t *s, store_entities_cb cb, void *ud);

void store_get_stats(const store_t *s, store_stats_t *out);

/*
 * Flushes the backlog for at most close_grace_ms, then closes the connection and every
 * handle; cb(ud) fires once from the loop when all are closed, after which s is freed.
 * Unwritten results are counted in the log. Call once; s must not be used afterwards.
 */
void store_close(store_t *s, void (*cb)(void *ud), void *ud);

/* Like store_put(), with fence (if not 0) in place of the store's epoch in the ordering
 * guard: the shared schedule (store/share.h) hands one out with each change of a target's
 * holder, greater than every epoch and fence before it, so a taken-over target's new holder
 * always wins the guard and a holder that lost its lease can no longer write. resync 1:
 * write it as a backlog entry is written, with one delta against what Redis holds (for the
 * first result after a takeover, whose own previous snapshot is not what Redis has). */
void store_put_fenced(store_t *s, const json_t *snapshot, const json_t *delta, uint64_t fence,
                      int resync);

/*
 * Queues one result of an entity (entity/entity.h): snap (borrowed) must be an object with
 * "entity" (a valid id, store_id_valid) and "seq" (an integer >= 1), delta (borrowed, may be
 * NULL) its delta. Written exactly as store_put() writes a target's (the same script, guard,
 * deadline and backlog; counted in the same stats) but to P:entity:E and P:entity-seq:E, the
 * stream P:changes with the field "entity" in place of "target", and the channel
 * P:changes:entity:E. A backlog entry is keyed by kind and id: a target and an entity with
 * the same id never replace each other. A resync delta (after an outage) is computed
 * against the entity snapshot Redis holds, in entity.h's delta shape (data paths, the
 * winners that changed, the new degraded list), with "resync": true.
 */
void store_put_entity(store_t *s, const json_t *snap, const json_t *delta);

/*
 * A raw command on the store's connection, for store/share.c. reply (NULL when the
 * connection was lost, dropped for want of a reply within timeout_ms, or the store closed;
 * borrowed for the call) goes to cb exactly once, from the loop (inside store_close() for
 * commands still pending then). Returns 0, or -ENOTCONN (not connected or closing: cb will
 * not fire), -EIO.
 */
struct redisReply;
typedef void (*store_reply_cb)(void *ud, struct redisReply *reply);
int store_command(store_t *s, store_reply_cb cb, void *ud, int argc, const char **argv,
                  const size_t *lens);
const char *store_prefix(const store_t *s);
int store_ready(const store_t *s); /* connected and set up */
/* The deadline of a command sent now, in Redis's clock (Unix ms, as TIME gives it): past it
 * the store may have dropped the connection (timeout_ms after the oldest command still
 * unanswered was sent), so a script given it should do nothing later than that. 0 when
 * unknown (not connected, or TIME was refused). */
uint64_t store_deadline(const store_t *s);

#endif
