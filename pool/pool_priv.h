/*
 * pool_priv.h: what the files of the pool module share and nobody else sees: the pool, its
 * leases and its browsers (pbrowser_t), and the steps one file calls in another (pool__
 * names). Not part of the contract: include pool/pool.h outside pool/pool*.c.
 */
#ifndef CDPILOT_POOL_POOL_PRIV_H
#define CDPILOT_POOL_POOL_PRIV_H

#include <stdint.h>
#include <uv.h>

#include "pool/pool.h"

enum pb_state { PB_LAUNCHING, PB_READY, PB_DRAINING, PB_CLOSING };

/* Refusals by the policy of pages the pool does not know yet (still opening), by frame. */
#define PB_REFUSALS 8
typedef struct pb_refusal {
	char frame[64]; /* "" : a free entry */
	char why[768];
} pb_refusal_t;

typedef struct pbrowser {
	struct pbrowser *next;
	pool_t *pool;
	browser_t *b;
	enum pb_state state;
	unsigned leases;     /* slots held on this browser (opening, granted or closing) */
	uint64_t ready_at;   /* loop time */
	uint64_t tasks;      /* leases granted on it */
	int lost;            /* the browser went away by itself */
	enum pool_recycle_reason reason; /* why it was launched, if as a replacement */
	int replacement;
	cdp_listener_t *l_created, *l_crashed;
	cdp_listener_t *l_blocked; /* browser-wide blocking (a browser we launched) */
	cdp_block_t blk;           /* its state: leases with their own list are exempt */
	cdp_hold_t *hold;          /* new pages held until set up (a browser we launched) */
	pb_refusal_t refusals[PB_REFUSALS]; /* a ring; the oldest is overwritten */
	unsigned next_refusal;
} pbrowser_t;

/* L_KEPT: released by its task, its page kept for the next lease of its site (pool_keep.c);
 * it holds its slot and stays on pool.active. */
enum lease_state { L_WAITING, L_OPENING, L_GRANTED, L_REVOKED, L_CLOSING, L_DONE, L_KEPT };

struct pool_lease {
	pool_lease_t *prev, *next; /* pool->waiting or pool->active */
	pool_t *pool;
	pbrowser_t *pb;
	enum lease_state state;
	cdp_page_t *page;
	uv_timer_t timer; /* wait timeout, then the task deadline, then the stuck grace */
	uint32_t task_timeout_ms;
	char *url;         /* the page is opened there (NULL: about:blank) */
	pool_granted_cb granted_cb;
	pool_revoked_cb revoked_cb;
	void *ud;
	int released;      /* the task called pool_release() */
	int holds_slot;
	int grant_failed;  /* granted_cb fired with an error while the page was opening */
	int revoked;
	enum pool_outcome outcome;
	int watch;          /* pool_acquire_watch(): no slot, no deadline once granted */
	int watch_opening;  /* counted in pool.watch_opening */
	pool_moved_cb moved_cb;
	uint64_t move_asked; /* loop time moved_cb fired, 0: not asked */
	/* page settings of this lease (pool_acquire_ex), owned; NULL / 0: the pool's */
	char *user_agent;
	int viewport_w, viewport_h;
	char *block;         /* its own block list ("none" or types), differing from the pool's */
	char *headers_json;  /* EXTRA_HEADERS merged with the lease's */
	char *cookies_json;
	int no_frames; /* pool_page_settings_t.no_frames */
	int moving;    /* pool_page_settings_t.moving (watch leases only) */
	char *key;     /* the site and settings a kept page of this lease serves; NULL: never
	                  kept (pool_keep.c) */
	unsigned uses; /* tasks its page has served, this one included */
	uint64_t kept_at; /* loop time it was kept (L_KEPT) */
	int evicted;   /* closed to free its slot for another site (counted in pool.evicting) */
};

struct pool {
	uv_loop_t *loop;
	cdp_wsctx_t *ws;
	pool_opts_t opts;
	pbrowser_t *browsers;   /* every browser we own */
	pbrowser_t *current;    /* serving new leases (READY), or NULL */
	pbrowser_t *launching;  /* being launched (first, relaunch, or replacement) */
	pool_lease_t *waiting_head, *waiting_tail;
	pool_lease_t *active;   /* opening, granted, revoked or closing */
	unsigned in_use, nwaiting, watch_in_use;
	unsigned watch_opening; /* watch leases in L_OPENING (bounded by opts.watch_open_cap) */
	unsigned nkept;         /* leases in L_KEPT (their slots are in in_use) */
	unsigned evicting;      /* kept pages closing to free a slot for a waiting lease */
	uint64_t watch_opened_at; /* loop time a watch lease last left L_OPENING, 0: never */
	int paused;
	uv_timer_t pump_timer;  /* 0-delay: runs pump() on the next loop turn */
	uv_timer_t tick;        /* uptime recycle check, relaunch backoff */
	uint64_t relaunch_at;   /* loop time at which to launch after a crash, 0: none */
	int wanted;             /* pool_set_wanted() */
	int begun;              /* the tick runs and stale profile dirs were swept */
	uint64_t idle_since;    /* loop time since which no browser was needed; 0: needed */
	int recycle_pending;
	enum pool_recycle_reason recycle_reason;
	int closing;
	uint64_t close_deadline;
	pool_closed_cb closed_cb;
	void *closed_ud;
	int handles_open;
	pool_stats_t st;
};

/* pool.c */
/* One of the pool's handles has closed: the pool is freed after the last (closing). */
void pool__unref(pool_t *p);
/* Starts the tick (and sweeps stale profile dirs) the first time; then nothing. */
void pool__begin(pool_t *p);
void pool__pump_soon(pool_t *p);
void pool__maybe_finish_close(pool_t *p);
void pool__lease_revoke(pool_lease_t *l, enum pool_outcome reason, const char *why);
void pool__ignore_reply(cdp_conn_t *c, const cdp_reply_t *r, void *ud);

/* Starts disposing the lease's page; its slot is freed when that completes or is stuck. */
void pool__lease_close_page(pool_lease_t *l, int interrupt);
/* Frees the lease once nobody needs it: page closed, task done with it. */
void pool__lease_maybe_free(pool_lease_t *l);

/* pool_keep.c */
/* The key of a lease's kept page (site and settings), in l->key; none for a URL that is not
 * http(s) or has a fragment, or with reuse off or fresh. 0 or -ENOMEM. */
int pool__keep_key(pool_lease_t *l, const pool_opts_t *o, int fresh);
/* At a POOL_OK release of a granted lease: keeps its page (L_KEPT) if it can; 1 if kept. */
int pool__keep(pool_lease_t *l);
/* The most recently kept page of key on the current browser, or NULL. */
pool_lease_t *pool__keep_find(pool_t *p, const char *key);
/* Disposes the least recently kept page, for a waiting lease of another site. */
void pool__keep_evict(pool_t *p);
/* A kept page leaves L_KEPT to be closed (its lease is freed once it is). */
void pool__keep_close(pool_lease_t *l);
/* Closes the kept pages unused for PAGE_IDLE_SECONDS, or on a browser that is not the
 * current one (all of them if all is set: the pool is closing). */
void pool__keep_sweep(pool_t *p, uint64_t now, int all);

/* pool_opts.c */
int pool__lease_settings(pool_lease_t *l, const pool_opts_t *o, const pool_page_settings_t *s);
void pool__lease_settings_free(pool_lease_t *l);

/* pool_browser.c */
void pool__launch(pool_t *p, int replacement, enum pool_recycle_reason reason);
void pool__pb_close(pbrowser_t *pb);
void pool__pb_maybe_close(pbrowser_t *pb);
/* Hands a refusal of page's main frame recorded while it was opening to the page. */
void pool__pb_note_refusal(pbrowser_t *pb, cdp_page_t *page);
/* 1 if a browser should run: wanted, or a lease request waits for one. */
int pool__needed(const pool_t *p);
/* Launches a browser if none runs or launches and the crash backoff allows (now >=
 * relaunch_at), whether wanted or not: a lease request needs one. */
void pool__ensure_browser(pool_t *p);
/* Once a second (pool.c's tick, not closing): the relaunch after a crash while a browser
 * is needed, and the close of an unwanted idle browser. */
void pool__browser_tick(pool_t *p, uint64_t now);

#endif
