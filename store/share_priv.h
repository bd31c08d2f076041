/*
 * share_priv: what the files of the shared schedule share: its Lua scripts (share_lua.c),
 * its state and its requests (share.c), used by the registration of its targets
 * (share_targets.c). Each rule is one script, run atomically by Redis on its own clock
 * (TIME); share.c sends them by SHA (SCRIPT LOAD once per connection) and again in full on
 * NOSCRIPT.
 */
#ifndef CDPILOT_STORE_SHARE_PRIV_H
#define CDPILOT_STORE_SHARE_PRIV_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/share.h"

enum share_script {
	SS_TICK,     /* heartbeat, dead instances' targets freed, take free due targets */
	SS_DONE,     /* a held target's run is over: renew (or re-take after a reset), release */
	SS_CLAIM,    /* a holder whose local lease lapsed asks before running */
	SS_REGISTER, /* targets put on the schedule (ZADD NX) */
	SS_FORGET,   /* a target left the targets */
	SS_CLOSE,    /* every lease of this instance released, due at once for the others */
	SS_N
};

extern const char *const share__lua[SS_N];
extern const char *const share__lua_name[SS_N];

#define KEY_MAX 200
#define MAX_WORDS 24

enum req_kind { R_CLAIM, R_DONE, R_FORGET, R_TICK, R_CLOSE, R_REGISTER, R_LOAD };

typedef struct sreq {
	struct sreq *prev, *next;
	share_t *sh;
	enum req_kind kind;
	enum share_script script;
	share_claim_cb cb;
	void *ud;
	int delivered, retried;
	char id[KEY_MAX];  /* R_DONE: the target */
	uint32_t next_ms;  /* R_DONE: when it is due again */
	/* the command, kept for a second send in full on NOSCRIPT */
	int argc;
	const char *argv[MAX_WORDS];
	size_t lens[MAX_WORDS];
	char *buf;
} sreq_t;

struct share {
	uv_loop_t *loop;
	store_t *store;
	share_opts_t o;
	share_callbacks_t cbs;
	share_stats_t st;
	sreq_t *reqs; /* in flight */
	uv_timer_t beat, grace;
	unsigned open_handles, ticks;
	int closing, close_sent, cb_done, tick_inflight, registered_once;
	void (*close_cb)(void *ud);
	void *close_ud;
	char sha[SS_N][41]; /* "" until SCRIPT LOAD answered */
	int loading[SS_N];
	char **ids; /* the targets, sorted, for registration */
	size_t nids;
	char *info; /* this instance's line in the cluster view */
	/* Who holds leases in Redis: SCHEDULE_INSTANCE (a label) and a token drawn at each
	 * start, "label#1a2b3c4d", so that a restart under the same label (a container
	 * restarted under its hostname) is a new holder with new fences, never the old one
	 * whose seqs were further on. */
	char ident[SHARE_INSTANCE_MAX + 10];
};


/* share.c */
void share__key(const share_t *sh, char out[KEY_MAX], const char *kind, const char *id);
/* A fire-and-forget request, or NULL once closing. */
sreq_t *share__new_req(share_t *sh, enum req_kind kind);
void share__link_req(share_t *sh, sreq_t *q); /* joins the in-flight list */
void share__free_req(sreq_t *q);
/* Learns script s's SHA (SCRIPT LOAD), unless that is under way. */
void share__load_script(share_t *sh, enum share_script s);
/* The store's reply callback of every request (q as ud). */
void share__on_reply(void *ud, redisReply *rep);

/* share_targets.c: the targets on the schedule (ZADD NX, in chunks), due after delay_ms. */
void share__register_all(share_t *sh, uint32_t delay_ms);

#endif
