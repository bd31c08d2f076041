/*
 * store_priv.h: what the files of the store share: the store itself, the backlog entry and
 * the functions one file calls in another (store.c: core, lifetime, health, raw commands,
 * close; store_conn.c: the connection and its backoff; store_write.c: the write script and
 * the ordering guard; store_backlog.c: the outage backlog; store_targets.c: the targets
 * hash). Not for use outside store/.
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

/* store.c */
void *store__xmalloc(size_t n);
void store__set_error(store_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void store__describe(const redisReply *r, char *out, size_t n);
void store__key(const store_t *s, char out[KEY_MAX], const char *kind, const char *id);
void store__write_health(store_t *s);
void store__maybe_finish(store_t *s);

/* store_conn.c */
void store__connect_now(store_t *s);

/* store_write.c */
extern const char store__write_lua[];
void store__pump(store_t *s);

/* store_backlog.c */
entry_t *store__find(store_t *s, const char *id);
void store__q_push(store_t *s, entry_t *e);
void store__q_unlink(store_t *s, entry_t *e);
void store__entry_free(store_t *s, entry_t *e);
void store__backlog_put(store_t *s, const char *id, uint64_t seq, uint64_t epoch, char *snap);

/* store_targets.c */
void store__on_targets_timer(uv_timer_t *t);

#endif
