/*
 * share_priv: the shared schedule's Lua scripts (share_lua.c), shared by share.c. Each rule
 * is one script, run atomically by Redis on its own clock (TIME); share.c sends them by SHA
 * (SCRIPT LOAD once per connection) and again in full on NOSCRIPT.
 */
#ifndef CDPILOT_STORE_SHARE_PRIV_H
#define CDPILOT_STORE_SHARE_PRIV_H

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

#endif
