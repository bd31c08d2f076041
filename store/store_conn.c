/*
 * store_conn.c: the store's connection to Redis. Host names are resolved on libuv's thread
 * pool, the hiredis context is attached to the loop (redis_uv.c), and the setup commands
 * (AUTH, SELECT, INCR epoch, TIME, SCRIPT LOAD) are pipelined; when all have answered the
 * store is READY and the backlog is pumped. Any failure or loss frees the context and the
 * reconnect timer backs off from backoff_min_ms, doubling up to backoff_max_ms; so does a
 * connection that leaves a command unanswered for timeout_ms (store_cmd.c finds it, and
 * store__drop_unresponsive drops it).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "store/redis_uv.h"
#include "store/store_priv.h"
#include "util/log.h"

static void schedule_reconnect(store_t *s);

/* The process's epoch: INCR P:epoch, never below Redis's clock (store.h). */
static const char epoch_lua[] = STORE_NOW_LUA STORE_EPOCH_LUA("KEYS[1]") "return e\n";

static void on_glue_closed(void *ud)
{
	store_t *s = ud;

	s->open_handles--;
	store__maybe_finish(s);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	store_t *s = ac->data;
	redisReply *rep = reply;
	const char *what = privdata;
	char d[300];

	if (!rep || s->setup_failed)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		store__describe(rep, d, sizeof d);
		s->setup_failed = 1;
		if (!strcmp(what, "AUTH"))
			store__set_error(s, "AUTH as %s%s%s on %s failed: %s",
			                 s->url.user[0] ? "user \"" : "",
			                 s->url.user[0] ? s->url.user : "the default user",
			                 s->url.user[0] ? "\"" : "", s->redacted, d);
		else
			store__set_error(s, "%s on %s failed: %s", what, s->redacted, d);
		redisAsyncDisconnect(ac);
		return;
	}
	if (!strcmp(what, "INCR epoch")) { /* the epoch script */
		if (rep->type != REDIS_REPLY_INTEGER || rep->integer < 1) {
			store__describe(rep, d, sizeof d);
			s->setup_failed = 1;
			store__set_error(s, "INCR %s:epoch: %s (expected a positive integer)",
			                 s->o.prefix, d);
			redisAsyncDisconnect(ac);
			return;
		}
		s->epoch = (uint64_t)rep->integer;
		s->st.epoch = s->epoch;
	} else if (!strcmp(what, "TIME")) {
		store__clock_set(s, rep);
	} else if (!strcmp(what, "SCRIPT LOAD")) {
		if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
			store__describe(rep, d, sizeof d);
			s->setup_failed = 1;
			store__set_error(s, "SCRIPT LOAD: %s (expected a SHA1)", d);
			redisAsyncDisconnect(ac);
			return;
		}
		memcpy(s->sha, rep->str, 40);
		s->sha[40] = '\0';
		s->state = C_READY;
		s->unresponsive = 0;
		s->backoff_ms = s->o.backoff_min_ms;
		if (s->ever_ready)
			s->st.reconnects++;
		s->ever_ready = 1;
		log_info(COMP, "connected to %s (epoch %" PRIu64 ", %zu targets in the backlog)",
		         s->redacted, s->epoch, s->nentries);
		store__write_health(s);
		store__flush_status(s);
		store__watch_ready(s);
		store__pump(s);
	}
}

static void on_connect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	store_t *s = ac->data;
	char k[KEY_MAX], db[16];

	if (status != REDIS_OK) {
		store__set_error(s, "connecting to %s: %s", s->redacted, ac->errstr);
		s->ac = NULL; /* hiredis frees it */
		s->state = C_DOWN;
		s->unresponsive = 0; /* refused: down, not hung */
		schedule_reconnect(s);
		store__maybe_finish(s);
		return;
	}
	s->state = C_SETUP;
	s->setup_failed = 0;
	s->clock_known = 0;
	s->clock_asking = 0;
	if (s->url.has_password) {
		if (s->url.user[0])
			store__cmdf(s, on_setup_reply, "AUTH", "AUTH %s %s", s->url.user,
			            s->url.password);
		else
			store__cmdf(s, on_setup_reply, "AUTH", "AUTH %s", s->url.password);
	}
	if (s->url.db) {
		snprintf(db, sizeof db, "%d", s->url.db);
		store__cmdf(s, on_setup_reply, "SELECT", "SELECT %s", db);
	}
	if (!s->epoch) {
		store__key(s, k, "epoch", NULL);
		store__cmdf(s, on_setup_reply, "INCR epoch", "EVAL %s 1 %s", epoch_lua, k);
	}
	store__cmdf(s, on_setup_reply, "TIME", "TIME");
	store__cmdf(s, on_setup_reply, "SCRIPT LOAD", "SCRIPT LOAD %s", store__write_lua);
}

/* The context is gone (hiredis frees it): back to DOWN, reconnect later. */
static void conn_gone(store_t *s)
{
	s->ac = NULL;
	s->state = C_DOWN;
	store__watch_lost(s);
	schedule_reconnect(s);
	store__maybe_finish(s);
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *)cac;
	store_t *s = ac->data;

	if (status != REDIS_OK)
		store__set_error(s, "connection to %s lost: %s", s->redacted,
		                 ac->errstr[0] ? ac->errstr : "closed");
	conn_gone(s);
}

/* Called from the deadline timer (never from a hiredis callback): the oldest command (or
 * the connection attempt) has waited waited_ms >= timeout_ms. Frees the context: every
 * pending callback gets NULL (unanswered writes go back to the backlog), on_disconnect runs
 * if it had connected; the reconnect timer then backs off as after any loss. */
void store__drop_unresponsive(store_t *s, uint64_t waited_ms)
{
	redisAsyncContext *ac = s->ac;
	unsigned waiting = 0;

	for (const pend_t *p = s->phead; p; p = p->next)
		waiting++;
	s->st.timeouts++;
	s->unresponsive = 1;
	store__set_error(s,
	                 "Redis at %s unresponsive: %s for %" PRIu64
	                 " ms (REDIS_TIMEOUT_MS=%" PRIu32 "), %u command(s) unanswered; "
	                 "dropping the connection, results wait in the backlog",
	                 s->redacted, s->state == C_CONNECTING ? "connecting" : "no reply",
	                 waited_ms, s->o.timeout_ms, waiting);
	s->state = C_DOWN; /* nothing new is sent while the pending callbacks run */
	redisAsyncFree(ac);
	if (s->ac == ac) /* it had not connected: no on_disconnect */
		conn_gone(s);
}

/* Connects to the unix socket, or to ip (a numeric address) on the URL's port. */
static void connect_to(store_t *s, const char *ip)
{
	redisAsyncContext *ac;
	int rc;

	if (s->closing || s->ac)
		return;
	ac = s->url.is_unix ? redisAsyncConnectUnix(s->url.path)
	                    : redisAsyncConnect(ip, s->url.port);
	if (!ac) {
		log_error(COMP, "out of memory creating a Redis context");
		abort();
	}
	if (ac->err) {
		store__set_error(s, "connecting to %s: %s", s->redacted, ac->errstr);
		redisAsyncFree(ac);
		schedule_reconnect(s);
		return;
	}
	ac->data = s;
	rc = store_uv_attach(ac, s->loop, on_glue_closed, s);
	if (rc) {
		store__set_error(s, "attaching the Redis connection to the loop: %s",
		                 uv_strerror(rc));
		redisAsyncFree(ac);
		schedule_reconnect(s);
		return;
	}
	s->open_handles++;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	s->ac = ac;
	s->state = C_CONNECTING;
	s->conn_began_ms = store__now_ms();
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	store_t *s = req->data;
	char ip[INET6_ADDRSTRLEN] = "";

	s->resolving = 0;
	s->open_handles--;
	if (status == 0 && res) {
		if (res->ai_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)res->ai_addr, ip, sizeof ip);
		else
			uv_ip4_name((struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
	}
	uv_freeaddrinfo(res);
	if (s->closing) {
		store__maybe_finish(s);
		return;
	}
	if (status != 0 || !ip[0]) {
		store__set_error(s, "resolving the host of %s: %s", s->redacted,
		                 status ? uv_strerror(status) : "no address");
		schedule_reconnect(s);
		return;
	}
	connect_to(s, ip);
}

/* hiredis resolves host names with a blocking getaddrinfo(): names are resolved here on
 * libuv's thread pool first, numeric addresses and unix sockets connect at once. */
void store__connect_now(store_t *s)
{
	struct in6_addr a6;
	struct addrinfo hints;
	int rc;

	if (s->closing || s->ac || s->resolving)
		return;
	if (s->url.is_unix || inet_pton(AF_INET, s->url.host, &a6) == 1 ||
	    inet_pton(AF_INET6, s->url.host, &a6) == 1) {
		connect_to(s, s->url.host);
		return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	s->resolve_req.data = s;
	rc = uv_getaddrinfo(s->loop, &s->resolve_req, on_resolved, s->url.host, NULL, &hints);
	if (rc) {
		store__set_error(s, "resolving the host of %s: %s", s->redacted, uv_strerror(rc));
		schedule_reconnect(s);
		return;
	}
	s->resolving = 1;
	s->open_handles++;
}

static void on_reconnect_timer(uv_timer_t *t)
{
	store__connect_now(t->data);
}

static void schedule_reconnect(store_t *s)
{
	if (s->closing)
		return;
	uv_timer_start(&s->reconnect_t, on_reconnect_timer, s->backoff_ms, 0);
	s->backoff_ms =
	        s->backoff_ms * 2 > s->o.backoff_max_ms ? s->o.backoff_max_ms : s->backoff_ms * 2;
}
