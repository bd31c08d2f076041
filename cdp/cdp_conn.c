/*
 * cdp_conn: the CDP message router. Outgoing commands get a unique id and a slot in the
 * pending table (hashed by id, with a deadline) and are written once by cdp_json; incoming
 * messages are parsed once (cdp_json's fast path, else jansson) unless they are events no
 * listener wants, and either complete a pending command or are dispatched as events to
 * listeners matching their method and session (cdp_conn_listen.c). One uv_timer serves
 * every deadline. The transport is a pair of function pointers, so unit tests drive this
 * file without a socket.
 */
#include "cdp/cdp_conn_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_err.h"
#include "cdp/cdp_json.h"
#include "util/growbuf.h"
#include "util/log.h"
#include "util/list.h"

void cdp_conn_opts_init(cdp_conn_opts_t *opts)
{
	opts->default_timeout_ms = 30000;
	opts->max_message = 64u * 1024 * 1024;
}

cdp_conn_t *cdp_conn_new(uv_loop_t *loop, const cdp_conn_opts_t *opts,
                         const cdp_transport_t *tp, void *tud, cdp_lost_cb on_lost, void *ud)
{
	cdp_conn_t *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->loop = loop;
	cdp_conn_opts_init(&c->opts);
	if (opts) {
		if (opts->default_timeout_ms)
			c->opts.default_timeout_ms = opts->default_timeout_ms;
		if (opts->max_message)
			c->opts.max_message = opts->max_message;
	}
	c->tp = *tp;
	c->tud = tud;
	c->on_lost = on_lost;
	c->lost_ud = ud;
	c->next_id = 1;
	c->state = CONN_OPEN;
	growbuf_init(&c->out, c->opts.max_message);
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	return c;
}

/* ---- pending table ---- */

static void table_insert(cdp_conn_t *c, cmd_t *cmd)
{
	cmd_t **b = &c->buckets[cmd->id % NBUCKETS];

	cmd->next_bucket = *b;
	*b = cmd;
	cmd->prev_all = NULL;
	cmd->next_all = c->all;
	if (c->all)
		c->all->prev_all = cmd;
	c->all = cmd;
	c->stats.pending++;
}

/* Unlinks and returns the command with this id, or NULL. */
static cmd_t *table_take(cdp_conn_t *c, uint64_t id)
{
	cmd_t **pp = &c->buckets[id % NBUCKETS];

	for (; *pp; pp = &(*pp)->next_bucket) {
		cmd_t *cmd = *pp;
		if (cmd->id != id)
			continue;
		*pp = cmd->next_bucket;
		DLIST_UNLINK(&c->all, cmd, prev_all, next_all);
		c->stats.pending--;
		return cmd;
	}
	return NULL;
}

static void on_timer(uv_timer_t *t);

/* Arms the timer for the earliest deadline, or stops it when nothing is pending. */
static void rearm(cdp_conn_t *c)
{
	uint64_t min = 0, now = uv_now(c->loop);

	for (cmd_t *cmd = c->all; cmd; cmd = cmd->next_all)
		if (min == 0 || cmd->deadline < min)
			min = cmd->deadline;
	if (min == c->armed_deadline)
		return;
	c->armed_deadline = min;
	if (min == 0 || c->state == CONN_CLOSED)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, on_timer, min > now ? min - now : 0, 0);
}

static void complete(cdp_conn_t *c, cmd_t *cmd, int status, json_t *result, int code,
                     const char *message)
{
	cdp_reply_t r = {
		.status = status,
		.result = result,
		.error_code = code,
		.error_message = message ? message : (status ? cdp_strerror(status) : ""),
	};
	c->dispatch_depth++;
	cmd->cb(c, &r, cmd->ud);
	c->dispatch_depth--;
	free(cmd);
}

/* Fails every pending command with status; callbacks may send new commands. */
static void fail_all(cdp_conn_t *c, int status, const char *why)
{
	cmd_t *list = c->all;

	/* Detach the whole table first: callbacks may add commands (which then fail fast). */
	memset(c->buckets, 0, sizeof c->buckets);
	c->all = NULL;
	c->stats.pending = 0;
	while (list) {
		cmd_t *next = list->next_all;
		complete(c, list, status, NULL, 0, why);
		list = next;
	}
	rearm(c);
}

static void on_timer(uv_timer_t *t)
{
	cdp_conn_t *c = t->data;
	uint64_t now = uv_now(c->loop);
	cmd_t *expired = NULL;

	c->armed_deadline = 0;
	for (cmd_t *cmd = c->all, *next; cmd; cmd = next) {
		next = cmd->next_all;
		if (cmd->deadline > now)
			continue;
		table_take(c, cmd->id);
		cmd->next_all = expired;
		expired = cmd;
	}
	while (expired) {
		cmd_t *next = expired->next_all;
		c->stats.timeouts++;
		log_debug("cdp", "command %llu (%s) timed out", (unsigned long long)expired->id,
		          expired->method);
		complete(c, expired, -ETIMEDOUT, NULL, 0, "timed out");
		expired = next;
	}
	rearm(c);
}

/* ---- sending ---- */

/* A command's params: a jansson value, or the text of one, or neither. */
typedef struct params_src {
	const json_t *json;
	const char *text;
	size_t len;
} params_src_t;

/*
 * Writes the command's text into c->out: {"id":N,"method":M[,"params":P][,"sessionId":S]},
 * as json_dumps() wrote the same object, but in one pass into a buffer that is reused.
 */
static int write_command(cdp_conn_t *c, const char *session_id, const char *method,
                         const params_src_t *ps)
{
	growbuf_t *o = &c->out;
	int rc;

	if (c->out.alloc > 1024 * 1024)
		growbuf_release(o); /* a huge command is rare: do not keep its buffer */
	else
		growbuf_reset(o);
	if ((rc = growbuf_append(o, "{\"id\":", 6)) != 0 ||
	    (rc = cdp_json_write_int(o, (json_int_t)c->next_id)) != 0 ||
	    (rc = growbuf_append(o, ",\"method\":", 10)) != 0 ||
	    (rc = cdp_json_write_string(o, method, strlen(method))) != 0)
		return rc;
	if ((ps->json || ps->text) &&
	    ((rc = growbuf_append(o, ",\"params\":", 10)) != 0 ||
	     (rc = ps->json ? cdp_json_write(o, ps->json) : growbuf_append(o, ps->text, ps->len)) != 0))
		return rc;
	if (session_id && ((rc = growbuf_append(o, ",\"sessionId\":", 13)) != 0 ||
	                   (rc = cdp_json_write_string(o, session_id, strlen(session_id))) != 0))
		return rc;
	return growbuf_append(o, "}", 1);
}

/* cdp_conn_send() and cdp_conn_send_text() but for what they do with their params. */
static int send_command(cdp_conn_t *c, const char *session_id, const char *method,
                        const params_src_t *ps, uint32_t timeout_ms, cdp_reply_cb cb, void *ud,
                        uint64_t *id_out)
{
	cmd_t *cmd;
	size_t mlen;
	int rc;

	if (c->state != CONN_OPEN)
		return CDP_ECONNLOST;
	if (!method || !cb)
		return -EINVAL;
	rc = write_command(c, session_id, method, ps);
	if (rc == -EMSGSIZE) {
		c->stats.oversized++;
		log_warn("cdp", "command %s is over the %zu-byte message cap", method,
		         c->opts.max_message);
	}
	if (rc != 0)
		return rc;
	cmd = malloc(sizeof *cmd);
	if (!cmd)
		return -ENOMEM;
	cmd->id = c->next_id;
	cmd->cb = cb;
	cmd->ud = ud;
	cmd->deadline = uv_now(c->loop) + (timeout_ms ? timeout_ms : c->opts.default_timeout_ms);
	mlen = strnlen(method, sizeof cmd->method - 1);
	memcpy(cmd->method, method, mlen);
	cmd->method[mlen] = '\0';
	table_insert(c, cmd);
	c->next_id++;
	rc = c->tp.send(c->tud, c->out.data, c->out.len);
	if (rc != 0) {
		table_take(c, cmd->id);
		free(cmd);
		return rc;
	}
	c->stats.sent++;
	if (id_out)
		*id_out = cmd->id;
	if (c->armed_deadline == 0 || cmd->deadline < c->armed_deadline) {
		c->armed_deadline = 0;
		rearm(c);
	}
	return 0;
}

int cdp_conn_send(cdp_conn_t *c, const char *session_id, const char *method,
                  json_t *params, uint32_t timeout_ms, cdp_reply_cb cb, void *ud,
                  uint64_t *id_out)
{
	params_src_t ps = { params, NULL, 0 };
	int rc = send_command(c, session_id, method, &ps, timeout_ms, cb, ud, id_out);

	json_decref(params);
	return rc;
}

int cdp_conn_send_text(cdp_conn_t *c, const char *session_id, const char *method,
                       const char *params, size_t params_len, uint32_t timeout_ms,
                       cdp_reply_cb cb, void *ud, uint64_t *id_out)
{
	params_src_t ps = { NULL, params, params_len };

	return send_command(c, session_id, method, &ps, timeout_ms, cb, ud, id_out);
}

int cdp_conn_cancel(cdp_conn_t *c, uint64_t id)
{
	cmd_t *cmd = table_take(c, id);

	if (!cmd)
		return -ENOENT;
	complete(c, cmd, -ECANCELED, NULL, 0, "cancelled");
	rearm(c);
	return 0;
}

/* ---- incoming ---- */

static void malformed(cdp_conn_t *c, const char *why, const char *data, size_t len)
{
	c->stats.malformed++;
	log_warn("cdp", "ignoring malformed message (%s): %.*s%s", why, (int)(len > 200 ? 200 : len),
	         data, len > 200 ? "..." : "");
}

static void handle_reply(cdp_conn_t *c, json_t *msg, json_t *jid, const char *data, size_t len)
{
	json_t *result = json_object_get(msg, "result");
	json_t *error = json_object_get(msg, "error");
	json_int_t id;
	cmd_t *cmd;

	if (!json_is_integer(jid) || json_integer_value(jid) <= 0) {
		malformed(c, "\"id\" is not a positive integer", data, len);
		return;
	}
	id = json_integer_value(jid);
	cmd = table_take(c, (uint64_t)id);
	if (!cmd) {
		if ((uint64_t)id < c->next_id) {
			c->stats.late_replies++;
			log_debug("cdp", "dropping reply to id %lld: timed out or cancelled",
			          (long long)id);
		} else {
			malformed(c, "reply to an id never sent", data, len);
		}
		return;
	}
	c->stats.replies++;
	if (error) {
		json_t *code = json_object_get(error, "code");
		json_t *message = json_object_get(error, "message");
		const char *m = json_is_string(message) ? json_string_value(message)
		                                          : "protocol error without a message";
		if (!json_is_object(error) || !json_is_integer(code) || !json_is_string(message))
			log_warn("cdp", "reply %lld: \"error\" lacks an integer code or string message",
			         (long long)id);
		complete(c, cmd, CDP_EPROTOCOL, NULL,
		         json_is_integer(code) ? (int)json_integer_value(code) : 0, m);
	} else if (json_is_object(result)) {
		complete(c, cmd, 0, result, 0, "");
	} else {
		malformed(c, "reply with neither an object \"result\" nor \"error\"", data, len);
		complete(c, cmd, CDP_EBADREPLY, NULL, 0,
		         "reply had neither an object \"result\" nor an \"error\"");
	}
	rearm(c);
}

void cdp_conn_feed(cdp_conn_t *c, const char *data, size_t len)
{
	json_error_t jerr;
	json_t *msg, *jid, *method, *params, *session;
	const char *sid = NULL;

	if (c->state != CONN_OPEN)
		return;
	if (cdp_conn__unwanted_event(c, data, len)) {
		c->stats.events++;
		c->stats.events_unparsed++;
		return;
	}
	/* jansson reads what the fast path hands back, and names the error if any */
	msg = cdp_json_parse(data, len);
	if (!msg)
		msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!msg) {
		malformed(c, jerr.text, data, len);
		return;
	}
	if (!json_is_object(msg)) {
		malformed(c, "not a JSON object", data, len);
		goto out;
	}
	jid = json_object_get(msg, "id");
	if (jid) {
		handle_reply(c, msg, jid, data, len);
		goto out;
	}
	method = json_object_get(msg, "method");
	if (!json_is_string(method)) {
		malformed(c, "neither \"id\" nor a string \"method\"", data, len);
		goto out;
	}
	session = json_object_get(msg, "sessionId");
	if (session && !json_is_string(session)) {
		malformed(c, "\"sessionId\" is not a string", data, len);
		goto out;
	}
	sid = session ? json_string_value(session) : NULL;
	params = json_object_get(msg, "params");
	if (params && !json_is_object(params)) {
		malformed(c, "\"params\" is not an object", data, len);
		goto out;
	}
	if (!params) {
		params = json_object();
		if (!params)
			goto out;
		json_object_set_new(msg, "params", params);
	}
	cdp_conn__dispatch_event(c, sid, json_string_value(method), params);
out:
	json_decref(msg);
}

void cdp_conn_feed_oversized(cdp_conn_t *c, const char *head, size_t headlen, size_t total)
{
	static const char key[] = "\"id\":";
	const char *p = NULL;
	uint64_t id = 0;
	cmd_t *cmd;
	char why[128];

	c->stats.oversized++;
	for (size_t i = 0; i + sizeof key - 1 <= headlen; i++) {
		if (memcmp(head + i, key, sizeof key - 1) == 0) {
			p = head + i + sizeof key - 1;
			break;
		}
		if (head[i] == '"' && i > 0)
			break; /* the first key is not "id": an event */
	}
	while (p && p < head + headlen && *p >= '0' && *p <= '9' && id < UINT64_MAX / 10)
		id = id * 10 + (uint64_t)(*p++ - '0');
	log_warn("cdp", "dropped an incoming message of %zu bytes: over the %zu-byte cap%s",
	         total, c->opts.max_message, id ? " (a command reply)" : "");
	if (!id || c->state != CONN_OPEN)
		return;
	cmd = table_take(c, id);
	if (!cmd)
		return;
	snprintf(why, sizeof why, "reply of %zu bytes is over the %zu-byte message cap", total,
	         c->opts.max_message);
	complete(c, cmd, -EMSGSIZE, NULL, 0, why);
	rearm(c);
}

/* ---- loss and close ---- */

static void on_timer_closed(uv_handle_t *h)
{
	cdp_conn_t *c = h->data;
	cdp_listener_t *l = c->listeners;

	while (l) {
		cdp_listener_t *next = l->next;
		cdp_conn__listener_free(l);
		l = next;
	}
	if (c->close_cb)
		c->close_cb(c, c->close_ud);
	growbuf_release(&c->out);
	free(c);
}

static void finish_close(cdp_conn_t *c)
{
	if (c->state != CONN_CLOSING || !c->transport_done)
		return;
	c->state = CONN_CLOSED;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void cdp_conn_transport_lost(cdp_conn_t *c, int err, const char *why)
{
	if (c->state != CONN_OPEN)
		return;
	c->state = CONN_LOST;
	/* debug: the owner knows whether this was expected (a browser closing) and says so */
	log_debug("cdp", "connection lost: %s", why ? why : cdp_strerror(err));
	fail_all(c, CDP_ECONNLOST, why ? why : "connection lost");
	if (c->on_lost && c->state == CONN_LOST) {
		c->dispatch_depth++;
		c->on_lost(c, err, why ? why : cdp_strerror(err), c->lost_ud);
		c->dispatch_depth--;
	}
}

void cdp_conn_transport_closed(cdp_conn_t *c)
{
	if (c->transport_done)
		return;
	if (c->state == CONN_OPEN)
		cdp_conn_transport_lost(c, CDP_ECONNLOST, "connection closed");
	c->transport_done = 1;
	finish_close(c);
}

void cdp_conn_close(cdp_conn_t *c, cdp_close_cb cb, void *ud)
{
	if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
		return;
	c->close_cb = cb;
	c->close_ud = ud;
	c->state = CONN_CLOSING;
	fail_all(c, -ECANCELED, "connection closed by its owner");
	for (cdp_listener_t *l = c->listeners; l; l = l->next)
		l->removed = 1;
	c->listeners_dirty = 1;
	if (!c->transport_done && !c->transport_close_sent) {
		c->transport_close_sent = 1;
		c->tp.close(c->tud); /* may call cdp_conn_transport_closed() right away */
	}
	finish_close(c);
}

int cdp_conn_is_open(const cdp_conn_t *c) { return c->state == CONN_OPEN; }

void cdp_conn_get_stats(const cdp_conn_t *c, cdp_conn_stats_t *out) { *out = c->stats; }

size_t cdp_conn_max_message(const cdp_conn_t *c) { return c->opts.max_message; }

uv_loop_t *cdp_conn_loop(const cdp_conn_t *c) { return c->loop; }
