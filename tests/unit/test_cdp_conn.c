/*
 * Unit tests for cdp_conn, driven through an in-memory transport: the command table (ids,
 * exactly one callback per command, timeouts, cancellation, connection loss, close), event
 * routing by method and session, and every malformed-input case. The real websocket is
 * exercised by the integration tests.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cdp/cdp_conn.h"
#include "cdp/cdp_err.h"
#include "tests/support/testutil.h"
#include "util/log.h"

/* ---- in-memory transport ---- */

#define MAX_SENT 64

typedef struct fake {
	char *sent[MAX_SENT];
	int nsent;
	int closed;        /* tp.close was called */
	int close_sync;    /* report transport_closed inside tp.close */
	int send_fails;    /* make tp.send fail with this */
	cdp_conn_t *conn;
} fake_t;

static int fake_send(void *tud, const char *data, size_t len)
{
	fake_t *f = tud;
	if (f->send_fails)
		return f->send_fails;
	assert_true(f->nsent < MAX_SENT);
	f->sent[f->nsent++] = strndup(data, len);
	return 0;
}

static void fake_close(void *tud)
{
	fake_t *f = tud;
	f->closed++;
	if (f->close_sync)
		cdp_conn_transport_closed(f->conn);
}

static const cdp_transport_t fake_tp = { fake_send, fake_close };

/* ---- per-test fixture ---- */

typedef struct env {
	uv_loop_t loop;
	fake_t fake;
	cdp_conn_t *conn;
	int lost_calls;
	int lost_err;
	int close_calls;
} env_t;

typedef struct rec {
	int calls;
	int status;
	int code;
	char message[256];
	json_t *result; /* new reference */
	uint64_t id;
} rec_t;

static void on_lost(cdp_conn_t *c, int err, const char *why, void *ud)
{
	env_t *e = ud;
	e->lost_calls++;
	e->lost_err = err;
}

static void on_closed(cdp_conn_t *c, void *ud)
{
	env_t *e = ud;
	e->close_calls++;
}

static void on_reply(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	rec_t *rec = ud;
	rec->calls++;
	rec->status = r->status;
	rec->code = r->error_code;
	assert_non_null(r->error_message);
	snprintf(rec->message, sizeof rec->message, "%s", r->error_message);
	json_decref(rec->result);
	rec->result = r->result ? json_incref(r->result) : NULL;
}

static int setup(void **state)
{
	env_t *e = calloc(1, sizeof *e);
	cdp_conn_opts_t o;

	uv_loop_init(&e->loop);
	cdp_conn_opts_init(&o);
	o.max_message = 4096;
	e->fake.close_sync = 1;
	e->conn = cdp_conn_new(&e->loop, &o, &fake_tp, &e->fake, on_lost, e);
	e->fake.conn = e->conn;
	assert_non_null(e->conn);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	env_t *e = *state;

	if (e->conn && e->close_calls == 0)
		cdp_conn_close(e->conn, on_closed, e);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(e->close_calls, 1);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	for (int i = 0; i < e->fake.nsent; i++)
		free(e->fake.sent[i]);
	free(e);
	return 0;
}

static void feed(env_t *e, const char *s) { cdp_conn_feed(e->conn, s, strlen(s)); }

static uint64_t send_cmd(env_t *e, const char *sid, const char *method, uint32_t timeout,
                         rec_t *rec)
{
	uint64_t id = 0;
	assert_int_equal(cdp_conn_send(e->conn, sid, method, json_pack("{s:i}", "x", 1), timeout,
	                               on_reply, rec, &id),
	                 0);
	assert_true(id > 0);
	return id;
}

static void reply_ok(env_t *e, uint64_t id, const char *result_json)
{
	char buf[512];
	snprintf(buf, sizeof buf, "{\"id\":%llu,\"result\":%s}", (unsigned long long)id,
	         result_json);
	feed(e, buf);
}

/* ---- commands ---- */

/* Params given as text are sent as they are, in the same envelope; NULL sends none. */
static void test_cdp_conn__send_text(void **state)
{
	env_t *e = *state;
	rec_t a = { 0 }, b = { 0 };
	uint64_t ia = 0, ib = 0;
	char want[160];

	assert_int_equal(cdp_conn_send_text(e->conn, "S", "Runtime.evaluate",
	                                    "{\"expression\":\"1\"}xyz", 18, 0, on_reply, &a, &ia),
	                 0);
	assert_int_equal(cdp_conn_send_text(e->conn, NULL, "Browser.getVersion", NULL, 0, 0,
	                                    on_reply, &b, &ib),
	                 0);
	assert_int_equal(e->fake.nsent, 2);
	snprintf(want, sizeof want,
	         "{\"id\":%llu,\"method\":\"Runtime.evaluate\",\"params\":{\"expression\":\"1\"},"
	         "\"sessionId\":\"S\"}", (unsigned long long)ia);
	assert_string_equal(e->fake.sent[0], want);
	snprintf(want, sizeof want, "{\"id\":%llu,\"method\":\"Browser.getVersion\"}",
	         (unsigned long long)ib);
	assert_string_equal(e->fake.sent[1], want);
	assert_int_equal(cdp_conn_send_text(e->conn, NULL, NULL, "{}", 2, 0, on_reply, &b, NULL),
	                 -EINVAL);
	reply_ok(e, ia, "{\"v\":1}");
	reply_ok(e, ib, "{}");
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	json_decref(a.result);
	json_decref(b.result);
}

static void test_cdp_conn__ids_unique_and_message_shape(void **state)
{
	env_t *e = *state;
	rec_t a = { 0 }, b = { 0 };
	uint64_t ia = send_cmd(e, NULL, "Browser.getVersion", 0, &a);
	uint64_t ib = send_cmd(e, "SESS1", "Runtime.evaluate", 0, &b);
	json_t *m;
	const char *method = NULL, *sid = NULL;
	json_int_t id = 0, x = 0;

	assert_true(ib > ia);
	assert_int_equal(e->fake.nsent, 2);
	m = json_loads(e->fake.sent[1], 0, NULL);
	assert_non_null(m);
	assert_int_equal(json_unpack(m, "{s:I, s:s, s:s, s:{s:I}}", "id", &id, "method", &method,
	                             "sessionId", &sid, "params", "x", &x),
	                 0);
	assert_int_equal(id, (json_int_t)ib);
	assert_string_equal(method, "Runtime.evaluate");
	assert_string_equal(sid, "SESS1");
	assert_int_equal(x, 1);
	json_decref(m);
	m = json_loads(e->fake.sent[0], 0, NULL);
	assert_null(json_object_get(m, "sessionId"));
	json_decref(m);
	reply_ok(e, ia, "{}");
	reply_ok(e, ib, "{}");
	json_decref(a.result);
	json_decref(b.result);
}

static void test_cdp_conn__result_fires_exactly_once(void **state)
{
	env_t *e = *state;
	rec_t r = { 0 };
	uint64_t id = send_cmd(e, NULL, "Browser.getVersion", 0, &r);
	cdp_conn_stats_t st;

	reply_ok(e, id, "{\"product\":\"Chrome/1\"}");
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_string_equal(json_string_value(json_object_get(r.result, "product")), "Chrome/1");
	/* a duplicate reply is dropped quietly */
	reply_ok(e, id, "{\"product\":\"again\"}");
	assert_int_equal(r.calls, 1);
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(st.late_replies, 1);
	assert_int_equal(st.pending, 0);
	json_decref(r.result);
}

static void test_cdp_conn__protocol_error_keeps_code_and_message(void **state)
{
	env_t *e = *state;
	rec_t r = { 0 };
	uint64_t id = send_cmd(e, NULL, "Bogus.method", 0, &r);
	char buf[256];

	snprintf(buf, sizeof buf,
	         "{\"id\":%llu,\"error\":{\"code\":-32601,\"message\":\"'Bogus.method' wasn't "
	         "found\"}}",
	         (unsigned long long)id);
	feed(e, buf);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, CDP_EPROTOCOL);
	assert_int_equal(r.code, -32601);
	assert_string_equal(r.message, "'Bogus.method' wasn't found");
	assert_null(r.result);
}

static void test_cdp_conn__replies_out_of_order(void **state)
{
	env_t *e = *state;
	rec_t r[3] = { { 0 } };
	uint64_t id[3];

	for (int i = 0; i < 3; i++)
		id[i] = send_cmd(e, i == 1 ? "S" : NULL, "M.x", 0, &r[i]);
	reply_ok(e, id[2], "{\"n\":2}");
	reply_ok(e, id[0], "{\"n\":0}");
	reply_ok(e, id[1], "{\"n\":1}");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(json_integer_value(json_object_get(r[i].result, "n")), i);
		json_decref(r[i].result);
	}
}

static void test_cdp_conn__timeout_fails_alone_and_late_reply_dropped(void **state)
{
	env_t *e = *state;
	rec_t slow = { 0 }, fast = { 0 };
	uint64_t sid = send_cmd(e, NULL, "Slow.cmd", 20, &slow);
	uint64_t fid = send_cmd(e, NULL, "Fast.cmd", 5000, &fast);
	cdp_conn_stats_t st;
	volatile int *flag = &slow.calls;

	assert_true(tu_run_until(&e->loop, flag, 2000));
	assert_int_equal(slow.status, -ETIMEDOUT);
	assert_int_equal(fast.calls, 0);
	/* the late reply is dropped, the other command still completes */
	reply_ok(e, sid, "{}");
	assert_int_equal(slow.calls, 1);
	reply_ok(e, fid, "{}");
	assert_int_equal(fast.calls, 1);
	assert_int_equal(fast.status, 0);
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(st.timeouts, 1);
	assert_int_equal(st.late_replies, 1);
	json_decref(fast.result);
}

static void test_cdp_conn__default_timeout_applies(void **state)
{
	env_t *e = *state;
	rec_t r = { 0 };
	cdp_conn_opts_t o;
	fake_t f = { .close_sync = 1 };
	cdp_conn_t *c;
	env_t local = { 0 };

	cdp_conn_opts_init(&o);
	o.default_timeout_ms = 15;
	c = cdp_conn_new(&e->loop, &o, &fake_tp, &f, NULL, NULL);
	f.conn = c;
	assert_int_equal(cdp_conn_send(c, NULL, "X.y", NULL, 0, on_reply, &r, NULL), 0);
	assert_true(tu_run_until(&e->loop, &r.calls, 2000));
	assert_int_equal(r.status, -ETIMEDOUT);
	cdp_conn_close(c, on_closed, &local);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(local.close_calls, 1);
	for (int i = 0; i < f.nsent; i++)
		free(f.sent[i]);
}

static void test_cdp_conn__cancel(void **state)
{
	env_t *e = *state;
	rec_t r = { 0 };
	uint64_t id = send_cmd(e, NULL, "X.y", 0, &r);

	assert_int_equal(cdp_conn_cancel(e->conn, id), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -ECANCELED);
	assert_int_equal(cdp_conn_cancel(e->conn, id), -ENOENT);
	reply_ok(e, id, "{}");
	assert_int_equal(r.calls, 1);
}

static void test_cdp_conn__connection_lost_fails_all_pending(void **state)
{
	env_t *e = *state;
	rec_t r[3] = { { 0 } };
	rec_t after = { 0 };

	for (int i = 0; i < 3; i++)
		send_cmd(e, NULL, "X.y", 60000, &r[i]);
	cdp_conn_transport_lost(e->conn, CDP_ECONNLOST, "socket closed");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, CDP_ECONNLOST);
	}
	assert_int_equal(e->lost_calls, 1);
	assert_false(cdp_conn_is_open(e->conn));
	/* sending now fails at once and the callback never fires */
	assert_int_equal(cdp_conn_send(e->conn, NULL, "X.y", json_object(), 0, on_reply, &after,
	                               NULL),
	                 CDP_ECONNLOST);
	assert_int_equal(after.calls, 0);
	/* a second loss report changes nothing */
	cdp_conn_transport_lost(e->conn, CDP_ECONNLOST, "again");
	assert_int_equal(e->lost_calls, 1);
}

static void test_cdp_conn__close_cancels_pending_and_calls_back_once(void **state)
{
	env_t *e = *state;
	rec_t r = { 0 };

	send_cmd(e, NULL, "X.y", 60000, &r);
	e->fake.close_sync = 0; /* the transport finishes closing later */
	cdp_conn_close(e->conn, on_closed, e);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -ECANCELED);
	assert_int_equal(e->fake.closed, 1);
	assert_int_equal(e->lost_calls, 0);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	assert_int_equal(e->close_calls, 0); /* not before the transport says it closed */
	cdp_conn_transport_closed(e->conn);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(e->close_calls, 1);
}

static void send_in_cb(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	rec_t *next = ud;
	/* sending from a callback: allowed; after close it must fail without a callback */
	int rc = cdp_conn_send(c, NULL, "Next.cmd", NULL, 0, on_reply, next, &next->id);
	next->code = rc;
}

static void test_cdp_conn__send_from_callback(void **state)
{
	env_t *e = *state;
	rec_t next = { 0 };
	uint64_t id = 0;

	assert_int_equal(cdp_conn_send(e->conn, NULL, "First", NULL, 0, send_in_cb, &next, &id), 0);
	reply_ok(e, id, "{}");
	assert_int_equal(next.code, 0);
	assert_true(next.id > id);
	reply_ok(e, next.id, "{}");
	assert_int_equal(next.calls, 1);
	json_decref(next.result);
}

static void close_in_cb(cdp_conn_t *c, const cdp_reply_t *r, void *ud)
{
	env_t *e = ud;
	cdp_conn_close(c, on_closed, e);
}

static void test_cdp_conn__close_from_callback(void **state)
{
	env_t *e = *state;
	rec_t other = { 0 };
	uint64_t id = 0;

	assert_int_equal(cdp_conn_send(e->conn, NULL, "First", NULL, 0, close_in_cb, e, &id), 0);
	send_cmd(e, NULL, "Other", 0, &other);
	reply_ok(e, id, "{}");
	assert_int_equal(other.calls, 1);
	assert_int_equal(other.status, -ECANCELED);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(e->close_calls, 1);
}

static void test_cdp_conn__send_failure_means_no_callback(void **state)
{
	env_t *e = *state;
	rec_t r = { 0 };
	cdp_conn_stats_t st;

	e->fake.send_fails = -ENOBUFS;
	assert_int_equal(cdp_conn_send(e->conn, NULL, "X", NULL, 0, on_reply, &r, NULL), -ENOBUFS);
	e->fake.send_fails = 0;
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(st.pending, 0);
	assert_int_equal(r.calls, 0);
}

static void test_cdp_conn__outgoing_over_cap(void **state)
{
	env_t *e = *state;
	rec_t r = { 0 };
	char big[5000];

	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(cdp_conn_send(e->conn, NULL, "Runtime.evaluate",
	                               json_pack("{s:s}", "expression", big), 0, on_reply, &r, NULL),
	                 -EMSGSIZE);
	assert_int_equal(r.calls, 0);
	assert_int_equal(e->fake.nsent, 0);
}

static void test_cdp_conn__incoming_over_cap_fails_its_command(void **state)
{
	env_t *e = *state;
	rec_t r = { 0 }, other = { 0 };
	uint64_t id = send_cmd(e, NULL, "Page.captureScreenshot", 60000, &r);
	char head[64];

	send_cmd(e, NULL, "Other", 60000, &other);
	snprintf(head, sizeof head, "{\"id\":%llu,\"result\":{\"data\":\"iVBOR",
	         (unsigned long long)id);
	cdp_conn_feed_oversized(e->conn, head, strlen(head), 9000000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -EMSGSIZE);
	assert_non_null(strstr(r.message, "9000000"));
	assert_int_equal(other.calls, 0);
	/* an oversized event touches no command */
	cdp_conn_feed_oversized(e->conn, "{\"method\":\"Big.event\"", 21, 9000000);
	assert_int_equal(other.calls, 0);
	/* close here: `other` lives on this stack frame */
	cdp_conn_close(e->conn, on_closed, e);
	assert_int_equal(other.calls, 1);
	assert_int_equal(other.status, -ECANCELED);
}

/* ---- events ---- */

typedef struct evrec {
	int calls;
	char method[64];
	char session[64];
	int x;
} evrec_t;

static void on_event(cdp_conn_t *c, const char *sid, const char *method, json_t *params,
                     void *ud)
{
	evrec_t *ev = ud;
	ev->calls++;
	snprintf(ev->method, sizeof ev->method, "%s", method);
	snprintf(ev->session, sizeof ev->session, "%s", sid ? sid : "");
	assert_true(json_is_object(params));
	ev->x = (int)json_integer_value(json_object_get(params, "x"));
}

static void test_cdp_conn__events_by_method_and_session(void **state)
{
	env_t *e = *state;
	evrec_t any = { 0 }, by_method = { 0 }, by_session = { 0 }, both = { 0 };

	cdp_conn_on(e->conn, NULL, NULL, on_event, &any);
	cdp_conn_on(e->conn, "Page.loadEventFired", NULL, on_event, &by_method);
	cdp_conn_on(e->conn, NULL, "S1", on_event, &by_session);
	cdp_conn_on(e->conn, "Page.loadEventFired", "S2", on_event, &both);

	feed(e, "{\"method\":\"Page.loadEventFired\",\"params\":{\"x\":7},\"sessionId\":\"S1\"}");
	assert_int_equal(any.calls, 1);
	assert_int_equal(by_method.calls, 1);
	assert_int_equal(by_session.calls, 1);
	assert_int_equal(both.calls, 0);
	assert_int_equal(any.x, 7);
	assert_string_equal(any.session, "S1");

	feed(e, "{\"method\":\"Page.loadEventFired\",\"sessionId\":\"S2\"}"); /* no params */
	assert_int_equal(both.calls, 1);
	assert_int_equal(by_session.calls, 1);

	feed(e, "{\"method\":\"Target.targetCreated\",\"params\":{}}"); /* browser level */
	assert_int_equal(any.calls, 3);
	assert_string_equal(any.session, "");
	assert_int_equal(by_session.calls, 1);
	assert_int_equal(by_method.calls, 2);

	/* an unknown, new event is delivered to catch-all listeners only */
	feed(e, "{\"method\":\"Brand.newEvent\",\"params\":{\"x\":1}}");
	assert_int_equal(any.calls, 4);
}

/* Events no listener wants are dropped before parsing; wanted ones, and anything not in
 * Chromium's event shape, are parsed as before. */
static void test_cdp_conn__unwanted_events_dropped_unparsed(void **state)
{
	env_t *e = *state;
	evrec_t load = { 0 }, any = { 0 };
	cdp_listener_t *l_any;
	cdp_conn_stats_t st;

	cdp_conn_on(e->conn, "Page.loadEventFired", "S1", on_event, &load);
	feed(e, "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"x\":1},"
	        "\"sessionId\":\"S1\"}");
	/* not even valid JSON after the name: unparsed, so not counted as malformed */
	feed(e, "{\"method\":\"Page.frameStartedLoading\",\"params\":{!!!");
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(st.events, 2);
	assert_int_equal(st.events_unparsed, 2);
	assert_int_equal(st.malformed, 0);

	/* wanted by method: parsed, then matched by session */
	feed(e, "{\"method\":\"Page.loadEventFired\",\"params\":{\"x\":3},\"sessionId\":\"S2\"}");
	feed(e, "{\"method\":\"Page.loadEventFired\",\"params\":{\"x\":4},\"sessionId\":\"S1\"}");
	assert_int_equal(load.calls, 1);
	assert_int_equal(load.x, 4);
	/* a name with an escape, or another key order, is parsed in full */
	feed(e, "{\"method\":\"Page.load\\u0045ventFired\",\"params\":{\"x\":5},"
	        "\"sessionId\":\"S1\"}");
	feed(e, "{\"sessionId\":\"S1\",\"method\":\"Page.loadEventFired\",\"params\":{\"x\":6}}");
	assert_int_equal(load.calls, 3);
	assert_int_equal(load.x, 6);
	feed(e, "{\"method\":\"Other.event\",\"params\":[]}");
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(st.events_unparsed, 3);
	assert_int_equal(st.malformed, 0);

	/* a catch-all listener wants everything */
	l_any = cdp_conn_on(e->conn, NULL, NULL, on_event, &any);
	feed(e, "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"x\":2}}");
	assert_int_equal(any.calls, 1);
	assert_int_equal(any.x, 2);
	cdp_conn_off(e->conn, l_any);
	feed(e, "{\"method\":\"Network.requestWillBeSent\",\"params\":{\"x\":2}}");
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(any.calls, 1);
	assert_int_equal(st.events_unparsed, 4);
	assert_int_equal(st.events, 9);
}

/* A listener by parameter sees only its events; the others of its method, wanted by no
 * one else, are dropped unparsed, and a value the skim cannot read is parsed. */
static void test_cdp_conn__events_by_parameter(void **state)
{
	env_t *e = *state;
	evrec_t load = { 0 }, all = { 0 };
	cdp_listener_t *l_all;
	cdp_conn_stats_t st;

	cdp_conn_on_where(e->conn, "Page.lifecycleEvent", "S1", "name", "load", on_event, &load);
	feed(e, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"name\":\"init\",\"x\":1},"
	        "\"sessionId\":\"S1\"}");
	feed(e, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"x\":2},\"sessionId\":\"S1\"}");
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(load.calls, 0);
	assert_int_equal(st.events_unparsed, 2);
	feed(e, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"x\":3,\"name\":\"load\"},"
	        "\"sessionId\":\"S1\"}");
	assert_int_equal(load.calls, 1);
	assert_int_equal(load.x, 3);
	/* an escaped value is parsed, and matched after unescaping */
	feed(e, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"x\":4,\"name\":\"lo\\u0061d\"},"
	        "\"sessionId\":\"S1\"}");
	feed(e, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"x\":5,\"name\":\"\\u0061\"},"
	        "\"sessionId\":\"S1\"}");
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(load.calls, 2);
	assert_int_equal(load.x, 4);
	assert_int_equal(st.events_unparsed, 2);
	/* another session's load is parsed (wanted by value), then not delivered */
	feed(e, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"x\":6,\"name\":\"load\"},"
	        "\"sessionId\":\"S2\"}");
	assert_int_equal(load.calls, 2);
	/* a listener of the whole method wants every one of them */
	l_all = cdp_conn_on(e->conn, "Page.lifecycleEvent", NULL, on_event, &all);
	feed(e, "{\"method\":\"Page.lifecycleEvent\",\"params\":{\"x\":7,\"name\":\"init\"},"
	        "\"sessionId\":\"S1\"}");
	assert_int_equal(all.calls, 1);
	assert_int_equal(load.calls, 2);
	cdp_conn_off(e->conn, l_all);
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(st.events_unparsed, 2);
	assert_int_equal(st.events, 7);
	assert_int_equal(st.malformed, 0);
}

typedef struct selfremove {
	cdp_listener_t *self;
	cdp_listener_t *other;
	int calls;
} selfremove_t;

static void remove_during_dispatch(cdp_conn_t *c, const char *sid, const char *method,
                                   json_t *params, void *ud)
{
	selfremove_t *s = ud;
	s->calls++;
	cdp_conn_off(c, s->self);
	if (s->other)
		cdp_conn_off(c, s->other);
}

static void test_cdp_conn__listener_removal_during_dispatch(void **state)
{
	env_t *e = *state;
	evrec_t victim = { 0 };
	selfremove_t s = { 0 };

	/* listeners are called newest first: s runs before victim and removes it */
	s.other = cdp_conn_on(e->conn, "E", NULL, on_event, &victim);
	s.self = cdp_conn_on(e->conn, "E", NULL, remove_during_dispatch, &s);
	feed(e, "{\"method\":\"E\",\"params\":{}}");
	feed(e, "{\"method\":\"E\",\"params\":{}}");
	assert_int_equal(s.calls, 1);
	assert_int_equal(victim.calls, 0);
}

/* ---- malformed input ---- */

static void test_cdp_conn__malformed_input_is_ignored(void **state)
{
	env_t *e = *state;
	rec_t r = { 0 };
	evrec_t any = { 0 };
	uint64_t id = send_cmd(e, NULL, "X.y", 60000, &r);
	cdp_conn_stats_t st;
	char buf[256];
	static const char *const bad[] = {
		"",
		"not json",
		"{\"id\":1",                         /* truncated */
		"[1,2,3]",                           /* not an object */
		"42",
		"{}",                                /* neither id nor method */
		"{\"id\":\"1\",\"result\":{}}",      /* id of the wrong type */
		"{\"id\":-5,\"result\":{}}",
		"{\"id\":1.5,\"result\":{}}",
		"{\"id\":999999,\"result\":{}}",     /* never sent */
		"{\"method\":5}",                    /* method of the wrong type */
		"{\"method\":\"E\",\"params\":[]}", /* params of the wrong type */
		"{\"method\":\"E\",\"sessionId\":7}",
		"{\"id\":1,\"id\":2}",              /* duplicate keys */
		"\xff\xfe garbage",
	};

	cdp_conn_on(e->conn, NULL, NULL, on_event, &any);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		feed(e, bad[i]);
	assert_int_equal(r.calls, 0);
	assert_int_equal(any.calls, 0);
	cdp_conn_get_stats(e->conn, &st);
	assert_int_equal(st.malformed, sizeof bad / sizeof bad[0]);

	/* a reply with neither result nor error completes its command with CDP_EBADREPLY */
	snprintf(buf, sizeof buf, "{\"id\":%llu,\"result\":\"str\"}", (unsigned long long)id);
	feed(e, buf);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, CDP_EBADREPLY);

	/* an error object with wrong field types is still one callback */
	rec_t r2 = { 0 };
	id = send_cmd(e, NULL, "X.y", 60000, &r2);
	snprintf(buf, sizeof buf, "{\"id\":%llu,\"error\":{\"code\":\"x\",\"message\":3}}",
	         (unsigned long long)id);
	feed(e, buf);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r2.status, CDP_EPROTOCOL);
	assert_non_null(r2.message);

	/* the connection still works */
	rec_t r3 = { 0 };
	id = send_cmd(e, NULL, "X.y", 60000, &r3);
	reply_ok(e, id, "{\"ok\":true}");
	assert_int_equal(r3.status, 0);
	json_decref(r3.result);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_cdp_conn__ids_unique_and_message_shape),
		T(test_cdp_conn__result_fires_exactly_once),
		T(test_cdp_conn__protocol_error_keeps_code_and_message),
		T(test_cdp_conn__replies_out_of_order),
		T(test_cdp_conn__timeout_fails_alone_and_late_reply_dropped),
		T(test_cdp_conn__default_timeout_applies),
		T(test_cdp_conn__cancel),
		T(test_cdp_conn__connection_lost_fails_all_pending),
		T(test_cdp_conn__close_cancels_pending_and_calls_back_once),
		T(test_cdp_conn__send_from_callback),
		T(test_cdp_conn__close_from_callback),
		T(test_cdp_conn__send_failure_means_no_callback),
		T(test_cdp_conn__outgoing_over_cap),
		T(test_cdp_conn__incoming_over_cap_fails_its_command),
		T(test_cdp_conn__events_by_method_and_session),
		T(test_cdp_conn__listener_removal_during_dispatch),
		T(test_cdp_conn__malformed_input_is_ignored),
		T(test_cdp_conn__unwanted_events_dropped_unparsed),
		T(test_cdp_conn__events_by_parameter),
		T(test_cdp_conn__send_text),
#undef T
	};
	log_set_level(LOG_OFF);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
