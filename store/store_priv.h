/*
 * store_priv.h: what the files of the store share: the store itself, the backlog entry and
 * the functions one file calls in another (store.c: core, lifetime, health, raw commands,
 * close; store_conn.c: the connection and its backoff; store_write.c: the write script and
 * the ordering guard; store_backlog.c: the outage backlog; store_watch.c: the targets
 * and entities hashes; store_cmd.c: sending commands, their deadline and Redis's clock). Not for use outside
 * store/.
 */
#ifndef CDPILOT_STORE_STORE_PRIV_H
#define CDPILOT_STORE_STORE_PRIV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "store/redis_url.h"
#include "store/store.h"

#define COMP "store"
#define KEY_MAX 192

enum conn_state { C_DOWN = 0, C_CONNECTING, C_SETUP, C_READY };

/* What a result is of: a target's snapshot (store_put) or an entity's (store_put_entity).
 * The write path is one for both; the kind names the keys, the snapshot's id field and the
 * stream entry's field, and is part of a backlog entry's key (a target and an entity with
 * the same id are two entries). */
enum store_kind { K_TARGET = 0, K_ENTITY, K_NKINDS };

typedef struct kind_desc {
	const char *field;   /* the snapshot's id field and the stream field: "target", "entity" */
	const char *latest;  /* key part of the latest snapshot: "latest", "entity" */
	const char *seq;     /* key part of the guard: "seq", "entity-seq" */
	const char *channel; /* channel prefix: "changes" (P:changes:ID), "changes:entity" */
} kind_desc_t;

extern const kind_desc_t store__kinds[K_NKINDS];

typedef struct entry {
	struct entry *hnext;         /* hash chain */
	struct entry *qprev, *qnext; /* the send queue (only when queued) */
	enum store_kind kind;
	char id[STORE_ID_MAX + 1];
	uint64_t seq;
	uint64_t epoch; /* the fence it was put with; 0: the store's epoch */
	char *snap; /* latest unwritten snapshot, or NULL while only the in-flight one is left */
	int queued;
	int inflight; /* a resync of this target is in flight */
} entry_t;

/* A hash clients write, read by store_watch.c: P:targets or P:entities. */
enum { W_TARGETS = 0, W_ENTITIES, W_NHASHES };

typedef struct hwatch {
	store_t *s;
	const char *name; /* "targets", "entities": the key part and the word in logs */
	const char *what; /* "target", "entity": what a value is, in refusals */
	const char *a_what; /* "a target", "an entity" */
	store_targets_cb cb; /* store_entities_cb is the same type */
	void *ud;
	int poll_inflight; /* a read asked for or being parsed */
	int polled;
	unsigned gen;      /* watch calls: a read in flight for an older one is dropped */
	json_t *last;
	char *last_err;
	json_t *cache;     /* {field: [raw value, object or null, refusal or ""]} of the last read */
	char *version;     /* P:NAME:version at the last read; NULL: none */
	uint64_t full_ms;  /* store__now_ms() of the last HGETALL answered */
	uint64_t *reads, *parsed; /* its counters in the store's stats */
	uv_timer_t timer;
} hwatch_t;

/* A command awaiting its reply (store_cmd.c), oldest first in store.phead. */
typedef struct pend {
	struct pend *prev, *next;
	redisCallbackFn *fn;
	void *priv;
	uint64_t sent_ms; /* store__now_ms() when sent */
} pend_t;

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

	/* deadlines (store_cmd.c) */
	pend_t *phead, *ptail;  /* commands awaiting a reply, oldest first */
	uint64_t conn_began_ms; /* when the connection attempt in C_CONNECTING began */
	int64_t clock_offset;   /* Redis's Unix ms - store__now_ms(), if clock_known */
	int clock_known, clock_asking;
	int unresponsive;

	/* backlog */
	entry_t **buckets;
	size_t nbuckets, nentries;
	entry_t *qhead, *qtail;
	unsigned inflight; /* write commands (direct + resync) awaiting replies */

	/* health */
	char *health;
	int health_dirty;

	/* status hashes and events (store_status.c) */
	json_t *status_pending;   /* {id: {"gen", "fields"}}: the newest unwritten of each */
	json_t *events_pending;   /* unwritten events, oldest first */
	size_t events_requeued;   /* events put back since the last flush */
	uint64_t status_gen;

	/* the targets and entities hashes (store_watch.c) */
	hwatch_t watch[W_NHASHES];

	store_stats_t st;

	uv_timer_t reconnect_t, health_t, grace_t, kick_t, deadline_t;
	uv_getaddrinfo_t resolve_req;
	int resolving;
	unsigned open_handles; /* timers + glue polls not yet closed */
	int started, closing, finishing, freed_cb_due;
	void (*close_cb)(void *ud);
	void *close_ud;
};

/* store.c */
void *store__xmalloc(size_t n);
void store__set_error(store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void store__describe(const redisReply *r, char *out, size_t n);
void store__key(const store_t *s, char out[KEY_MAX], const char *kind, const char *id);
void store__write_health(store_t *s);
void store__maybe_finish(store_t *s);
/* store_status.c: writes the statuses and events that wait, if connected. */
void store__flush_status(store_t *s);

/* store_conn.c */
void store__connect_now(store_t *s);
void store__drop_unresponsive(store_t *s, uint64_t waited_ms);

/* store_cmd.c: every command on s->ac goes through these (its reply then counts against the
 * deadline). fn(ac, reply, priv) fires exactly once, NULL when the connection goes. They
 * return 0, or -ENOTCONN (no context) or -EIO (hiredis refused it: fn will not fire). */
int store__cmdf(store_t *s, redisCallbackFn *fn, void *priv, const char *fmt, ...);
int store__cmdv(store_t *s, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                const size_t *lens);
uint64_t store__now_ms(void);
void store__on_deadline_timer(uv_timer_t *t);
void store__clock_set(store_t *s, const redisReply *rep);
void store__clock_ask(store_t *s);

/* store_write.c */
extern const char store__write_lua[];
void store__pump(store_t *s);

/* store_backlog.c */
entry_t *store__find(store_t *s, enum store_kind kind, const char *id);
void store__q_push(store_t *s, entry_t *e);
void store__q_unlink(store_t *s, entry_t *e);
void store__entry_free(store_t *s, entry_t *e);
void store__backlog_put(store_t *s, enum store_kind kind, const char *id, uint64_t seq,
                        uint64_t epoch, char *snap);

/* store_watch.c: the hash readers' timers (opened with the store's handles), their state
 * freed, a connection ready (the watched hashes are read again at once), lost. */
void store__watch_init(store_t *s);
void store__watch_release(store_t *s);
void store__watch_ready(store_t *s);
void store__watch_lost(store_t *s);

#endif
