/*
 * cdp_page_priv.h: what the files of cdp_page share and nobody else sees: the page and hold
 * structs, their states and steps, and the internal functions one file calls in another.
 * cdp_page.c holds the page's lifetime (commands, operations, crash watch, close),
 * cdp_page_open.c opening and holding, cdp_page_nav.c navigation, cdp_page_hygiene.c
 * dialogs, popups and request blocking, cdp_page_eval.c wait_for, evaluate and screenshot,
 * cdp_page_call.c calling a function given as source, cdp_page_actions.c page actions,
 * cdp_page_read.c the composed read (navigate, actions, wait_for, evaluate or call) over
 * those operations.
 */
#ifndef CDPILOT_CDP_PAGE_PRIV_H
#define CDPILOT_CDP_PAGE_PRIV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cdp/cdp_conn.h"
#include "cdp/cdp_page.h"

#define PAGE_DEFAULT_TIMEOUT_MS 30000u
#define PAGE_DISPOSE_TIMEOUT_MS 5000u
#define PAGE_POLL_MS 100u
#define PAGE_CONN_WATCH_MS 200u
/* Commands get this much more than the operation's deadline so the page's own timer,
 * which knows what was going on, fires first. */
#define PAGE_CMD_SLACK_MS 2000u

enum page_state { PS_OPENING, PS_READY, PS_DISPOSING, PS_FREEING };
enum page_op { OP_NONE = 0, OP_OPEN, OP_NAV, OP_WAIT, OP_EVAL, OP_SHOT, OP_CALL, OP_ACTIONS };

/* Steps of cdp_page_open, in order. */
enum open_step {
	ST_CONTEXT = 0,
	ST_COOKIES, /* into the new context, before its page exists (browser session) */
	ST_TARGET,
	ST_ATTACH,
	ST_PAGE_ENABLE,
	ST_NETWORK_ENABLE,
	ST_NO_CACHE,     /* cdp_page_opts_t.no_cache: the HTTP cache ignored */
	ST_NO_SW,        /* and service workers bypassed */
	ST_LIFECYCLE,
	ST_USER_AGENT,
	ST_VIEWPORT,
	ST_HEADERS,
	ST_BLOCK,
	ST_NO_POPUPS,
	ST_RESUME,
	ST_OPEN_DONE
};

extern const char *const cdp__page_open_methods[]; /* by open_step, in cdp_page_open.c */
/* The page-side popup guard (ST_NO_POPUPS), in cdp_page_hygiene.c. */
extern const char cdp__page_no_popups_js[];

/* cdp_hold_pages: Target.setAutoAttach asked, granted or refused. */
enum hold_state { HOLD_ASKED, HOLD_ON, HOLD_FAILED };

struct cdp_hold {
	cdp_conn_t *conn;
	enum hold_state state;
	uint64_t id; /* the command, while it is pending */
	int pending;
};

/* A running cdp_page_read(), in cdp_page_read.c. */
typedef struct cdp_read cdp_read_t;

struct cdp_page {
	cdp_conn_t *conn;
	uv_loop_t *loop;
	enum page_state state;
	char *context_id, *target_id, *session_id;
	char *open_url;   /* the target was created at this URL (NULL: about:blank) */
	const cdp_hold_t *hold; /* held: the session comes from Chrome's auto-attach */
	cdp_listener_t *l_attach; /* held, until our target's session is attached */
	int open_cmd;     /* the chained open step whose reply is awaited (ST_CONTEXT...) */
	int target_replied; /* held: Target.createTarget has answered */
	int setup_complete; /* every set-up command has answered */
	int resume;       /* held and waiting for the debugger: ST_RESUME lets it go */
	int initial_nav;  /* recording that first navigation until a navigate adopts it */
	char *user_agent;
	int viewport_w, viewport_h;
	int no_frames; /* cdp_page_opts_t.no_frames */
	int no_cache;  /* cdp_page_opts_t.no_cache */
	int lifecycle_on; /* Page.setLifecycleEventsEnabled succeeded */
	/* hygiene */
	int dismiss_dialogs;
	int block_popups;
	json_t *block_patterns; /* Fetch.enable patterns, or NULL */
	json_t *extra_headers;  /* object, or NULL */
	json_t *cookies;        /* Network.setCookies' array, or NULL */
	cdp_listener_t *l_dialog, *l_paused;
	cdp_page_counters_t counters;
	int crashed;      /* renderer crashed or target detached: no further operations */

	/* page-long listeners (set once attached) */
	cdp_listener_t *l_insp_crash, *l_target_crash, *l_detached;

	/* the running operation */
	enum page_op op;
	int step;
	uint32_t timeout_ms;
	uint64_t deadline; /* loop time (ms) */
	union {
		cdp_page_open_cb open;
		cdp_page_nav_cb nav;
		cdp_page_done_cb done;
		cdp_page_eval_cb eval;
		cdp_page_shot_cb shot;
	} cb;
	void *ud;
	uv_timer_t op_timer;
	uv_timer_t poll_timer;
	int timers_open; /* timers initialised and not yet closed */

	/* open: the session set-up commands, sent together once attached */
	struct setup_slot {
		cdp_page_t *page;
		int step;
		int live;
		uint64_t id;
	} setup[ST_OPEN_DONE];
	int setup_out;      /* replies still expected */
	int setup_status;   /* first failure, 0 if none */
	char setup_why[256];

	/* the one command in flight */
	int pending;
	uint64_t pending_id;
	int cancelling;
	const char *pending_method;

	/* navigate */
	cdp_listener_t *l_load, *l_lifecycle, *l_response, *l_frame_nav;
	cdp_listener_t *l_started, *l_failed; /* the initial navigation only */
	char *nav_url, *final_url, *main_frame, *nav_loader, *loaded_loader;
	char *resp_loader, *resp_url;
	char *start_loader; /* initial navigation: its loader, once seen starting */
	char *nav_error;    /* initial navigation: Network.loadingFailed's errorText */
	long resp_status;
	int nav_replied, load_seen, http_failure;
	int adopting;       /* the running navigate waits for the initial navigation */
	char *refusal;      /* cdp_page_note_refusal(): the message of the next failed one */

	/* wait_for */
	char *wait_expr;
	int wait_visible;           /* the wait's state: visible (1) or attached */

	/* call (cdp_page_call.c) */
	struct page_call {
		char *src;
		json_t *args;     /* [{value: a}...] */
		size_t cap;
		char *this_id;    /* globalThis, in the call's object group */
		int grouped;      /* objects may be in the group: release it */
		int status;       /* the outcome, told once the group is released */
		json_t *value;
		char why[2048];
	} call;

	/* actions (cdp_page_actions.c) */
	struct page_actions *actions;

	/* the composed read running on the page, or NULL; its steps are the operations */
	cdp_read_t *read;

	/* screenshot */
	int full_page;
	double clip_w, clip_h;

	/* open failure, reported once the context is disposed */
	int open_failed;
	int open_status;
	char open_why[512];

	/* close */
	cdp_page_closed_cb close_cb;
	void *close_ud;
};

/* cdp_page.c */
void cdp__page_set_str(char **dst, const char *src);
int cdp__page_str_eq(const char *a, const char *b);
uint32_t cdp__page_remaining_ms(const cdp_page_t *p);
void cdp__page_listener_off(cdp_page_t *p, cdp_listener_t **l);
int cdp__page_send(cdp_page_t *p, const char *session, const char *method, json_t *params,
                   uint32_t timeout_ms);
int cdp__page_send_text(cdp_page_t *p, const char *session, const char *method,
                        const char *params, size_t len, uint32_t timeout_ms);
void cdp__page_op_reset(cdp_page_t *p);
int cdp__page_can_start(const cdp_page_t *p);
void cdp__page_on_op_timer(uv_timer_t *t);
void cdp__page_op_begin(cdp_page_t *p, enum page_op op, uint32_t timeout_ms, void *ud);
void cdp__page_bad_reply(char *buf, size_t len, const char *method, const json_error_t *err);
int cdp__page_add_crash_listeners(cdp_page_t *p);
void cdp__page_begin_dispose(cdp_page_t *p);

/* cdp_page_open.c */
void cdp__page_fail_open(cdp_page_t *p, int status, const char *why);
void cdp__page_open_reply(cdp_page_t *p, const cdp_reply_t *r);

/* cdp_page_nav.c */
void cdp__page_finish_nav(cdp_page_t *p, int status, const char *message);
void cdp__page_nav_listeners_off(cdp_page_t *p);
void cdp__page_nav_state_free(cdp_page_t *p);
void cdp__page_nav_reply(cdp_page_t *p, const cdp_reply_t *r);
int cdp__page_initial_nav_begin(cdp_page_t *p);

/* cdp_page_hygiene.c */
int cdp__page_add_hygiene_listeners(cdp_page_t *p);
int cdp__page_block_patterns(const char *list, json_t **out);

/* cdp_page_eval.c */
void cdp__page_finish_done(cdp_page_t *p, int status, const char *why);
void cdp__page_finish_eval(cdp_page_t *p, int status, json_t *value, const char *why);
void cdp__page_finish_shot(cdp_page_t *p, int status, const unsigned char *png, size_t len,
                           const char *why);
void cdp__page_wait_reply(cdp_page_t *p, const cdp_reply_t *r);
void cdp__page_eval_reply(cdp_page_t *p, const cdp_reply_t *r);
void cdp__page_shot_reply(cdp_page_t *p, const cdp_reply_t *r);
char *cdp__page_js_call1(const char *fn, const char *arg, int *rc);
void cdp__page_exception_message(json_t *details, char *buf, size_t len);
int cdp__page_read_evaluate(json_t *result, json_t **value, json_t **owned, char *why,
                            size_t len);

/* cdp_page_call.c */
void cdp__page_finish_call(cdp_page_t *p, int status, const char *why);
void cdp__page_call_reply(cdp_page_t *p, const cdp_reply_t *r);
void cdp__page_call_state_free(cdp_page_t *p);

/* cdp_page_actions.c */
void cdp__page_finish_actions(cdp_page_t *p, int status, const char *why);
void cdp__page_actions_reply(cdp_page_t *p, const cdp_reply_t *r);
void cdp__page_actions_timed_out(cdp_page_t *p);
void cdp__page_actions_state_free(cdp_page_t *p);
int cdp__page_actions_check(const json_t *actions); /* 0, -EINVAL (logged), -ENOMEM */

#endif
