/*
 * test_httpd_probes: the endpoint server keeps answering its probes whatever slow clients
 * do (issue 17). The real server on 127.0.0.1, real sockets, one loop: raw uv_tcp clients
 * (httpkit.h) that trickle header bytes or half-close, and libcurl (util/fetch) for the
 * probes, as a kubelet or a container health check would send them.
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

#include "daemon/httpd.h"
#include "tests/support/httpkit.h"
#include "tests/support/testutil.h"
#include "util/fetch.h"
#include "util/log.h"

/* A head that is never complete: the trickling clients send it one byte at a time. */
static const char g_slow_head[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nUser-Agent: slowloris\r\n"
                                  "X-Pad-1: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
                                  "X-Pad-2: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";

typedef struct env {
	uv_loop_t loop;
	httpd_t *h;
	fetch_ctx_t *fetch;
	int fetch_closed;
	int fds_before;
} env_t;

static env_t *E;

/* ---- the server ---- */

static void h_healthz(void *ud, const char *path, const char *query, httpd_reply_t *r)
{
	r->content_type = "application/json";
	httpd_reply_printf(r, "{\"status\":\"ok\"}");
}

static void h_big(void *ud, const char *path, const char *query, httpd_reply_t *r)
{
	for (int i = 0; i < 20000; i++)
		httpd_reply_printf(r, "line %05d of a large reply\n", i);
}

static void env_start(unsigned max_conns, unsigned head_ms, unsigned idle_ms)
{
	httpd_opts_t o;

	E = calloc(1, sizeof *E);
	assert_non_null(E);
	E->fds_before = tu_fd_count();
	assert_int_equal(uv_loop_init(&E->loop), 0);
	httpd_opts_init(&o);
	snprintf(o.addr, sizeof o.addr, "127.0.0.1:0");
	o.max_conns = max_conns;
	o.head_timeout_ms = head_ms;
	o.idle_timeout_ms = idle_ms;
	E->h = httpd_new(&E->loop, &o);
	assert_non_null(E->h);
	assert_int_equal(httpd_route(E->h, "/healthz", h_healthz, NULL), 0);
	assert_int_equal(httpd_route(E->h, "/big", h_big, NULL), 0);
	assert_int_equal(httpd_start(E->h), 0);
	E->fetch = fetch_ctx_new(&E->loop);
	assert_non_null(E->fetch);
}

static void on_fetch_closed(void *ud)
{
	*(int *)ud = 1;
}

static void env_finish(void)
{
	fetch_ctx_close(E->fetch, on_fetch_closed, &E->fetch_closed);
	httpd_close(E->h);
	uv_run(&E->loop, UV_RUN_DEFAULT);
	assert_true(E->fetch_closed);
	httpd_free(E->h);
	assert_int_equal(uv_loop_close(&E->loop), 0);
	assert_int_equal(tu_fd_count(), E->fds_before);
	free(E);
	E = NULL;
}

/* ---- slow clients and probes ---- */

#define SLOTS 16
#define SLOW 24 /* more trickling connections than slots */
#define ATTACK_MS 15000
#define PROBE_EVERY_MS 200

typedef struct attack {
	rawc_t *slow[SLOW];
	uint64_t next_byte[SLOW]; /* tu_now_ms() of slow[i]'s next byte */
	uv_timer_t tick, probe_timer;
	unsigned opened, probes_sent, probes_ok, probes_done, max_open;
	uint64_t max_probe_ms;
	char bad[256]; /* the first probe that was not answered 200, if any */
} attack_t;

typedef struct probe {
	attack_t *a;
	uint64_t sent_at;
} probe_t;

/* Every 100 ms: a closed trickling connection is reopened; an open one sends its next
 * byte once a second (the connections are staggered over the second). */
static void on_tick(uv_timer_t *t)
{
	attack_t *a = t->data;
	uint64_t now = tu_now_ms();
	httpd_stats_t st;

	for (int i = 0; i < SLOW; i++) {
		rawc_t *c = a->slow[i];
		if (c->closed) {
			rawc_open(c, &E->loop, httpd_port(E->h));
			a->next_byte[i] = now + (uint64_t)i * 1000 / SLOW;
			a->opened++;
			continue;
		}
		if (!c->connected || c->conn_status || c->eof || now < a->next_byte[i])
			continue;
		/* a write to a connection the server has just reset may fail: that is fine */
		rawc_try_send(c, g_slow_head + c->sent % (sizeof g_slow_head - 1), 1);
		a->next_byte[i] += 1000;
	}
	httpd_get_stats(E->h, &st);
	if (st.open > a->max_open)
		a->max_open = st.open;
}

static void on_probe_done(const fetch_result_t *r, void *ud)
{
	probe_t *p = ud;
	attack_t *a = p->a;
	uint64_t took = tu_now_ms() - p->sent_at;

	if (took > a->max_probe_ms)
		a->max_probe_ms = took;
	a->probes_done++;
	if (r->status == 0 && r->http_code == 200 && strcmp(r->body, "{\"status\":\"ok\"}") == 0)
		a->probes_ok++;
	else if (!a->bad[0])
		snprintf(a->bad, sizeof a->bad, "probe %u: status %d, HTTP %ld, %s, body '%.80s'",
		         a->probes_done, r->status, r->http_code, r->error, r->body);
	free(p);
}

static void on_probe_timer(uv_timer_t *t)
{
	attack_t *a = t->data;
	probe_t *p = calloc(1, sizeof *p);
	char url[96];

	assert_non_null(p);
	p->a = a;
	p->sent_at = tu_now_ms();
	snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", httpd_port(E->h));
	/* a generous bound: a probe that hangs shows up as a timeout, not as a stuck test */
	assert_int_equal(fetch_get(E->fetch, url, 10000, 0, on_probe_done, p), 0);
	a->probes_sent++;
}

static void test_httpd_probes__probes_survive_slow_clients(void **state)
{
	attack_t *a = calloc(1, sizeof *a);
	httpd_stats_t st;
	uint64_t end;

	assert_non_null(a);
	env_start(SLOTS, 2000, 10000);
	for (int i = 0; i < SLOW; i++) {
		a->slow[i] = calloc(1, sizeof(rawc_t));
		assert_non_null(a->slow[i]);
		a->slow[i]->closed = 1; /* opened by the first tick */
	}
	uv_timer_init(&E->loop, &a->tick);
	a->tick.data = a;
	uv_timer_start(&a->tick, on_tick, 0, 100);
	/* the slow clients first: every slot is held before the first probe */
	end = tu_now_ms() + 10000;
	do {
		uv_run(&E->loop, UV_RUN_ONCE);
		httpd_get_stats(E->h, &st);
	} while (st.open < SLOTS && tu_now_ms() < end);
	assert_int_equal(st.open, SLOTS);

	uv_timer_init(&E->loop, &a->probe_timer);
	a->probe_timer.data = a;
	uv_timer_start(&a->probe_timer, on_probe_timer, 0, PROBE_EVERY_MS);
	end = tu_now_ms() + ATTACK_MS;
	while (tu_now_ms() < end)
		uv_run(&E->loop, UV_RUN_ONCE);
	uv_timer_stop(&a->probe_timer);
	/* the probes still out are waited for, under the attack */
	end = tu_now_ms() + 15000;
	while (a->probes_done < a->probes_sent && tu_now_ms() < end)
		uv_run(&E->loop, UV_RUN_ONCE);
	uv_timer_stop(&a->tick);
	httpd_get_stats(E->h, &st);
	print_message("slow-client attack: %u trickling connections opened against %u slots "
	              "in %u ms; %u probes sent, %u answered 200, slowest %llu ms; server: %llu "
	              "evicted, %llu timed out (408), %llu refused (503), at most %u open\n",
	              a->opened, SLOTS, ATTACK_MS, a->probes_sent, a->probes_ok,
	              (unsigned long long)a->max_probe_ms, (unsigned long long)st.evicted,
	              (unsigned long long)st.timeouts, (unsigned long long)st.refused, a->max_open);
	if (a->bad[0])
		fail_msg("%s", a->bad);
	assert_int_equal(a->probes_done, a->probes_sent);
	assert_int_equal(a->probes_ok, a->probes_sent);
	assert_true(a->probes_sent >= 10); /* the loop ran the probes (75 on a free machine) */
	/* the attack was real: more connections than slots, every slot held, slots taken back */
	assert_true(a->opened > SLOW);
	assert_int_equal(a->max_open, SLOTS);
	assert_true(st.evicted > 0);
	assert_int_equal(st.refused, 0);

	for (int i = 0; i < SLOW; i++) {
		rawc_wait_closed(a->slow[i]);
		free(a->slow[i]);
	}
	uv_close((uv_handle_t *)&a->tick, NULL);
	uv_close((uv_handle_t *)&a->probe_timer, NULL);
	env_finish();
	free(a);
}

/* ---- the head deadline ---- */

static void on_drip(uv_timer_t *t)
{
	rawc_t *c = t->data;
	if (c->eof || !c->connected || c->sent == sizeof g_slow_head - 1)
		return;
	rawc_try_send(c, g_slow_head + c->sent, 1);
}

static void test_httpd_probes__head_deadline_closes_a_trickle(void **state)
{
	rawc_t *c = calloc(1, sizeof *c);
	uv_timer_t drip;
	httpd_stats_t st;

	assert_non_null(c);
	/* a byte every 50 ms: never idle for the 10 s idle timeout, yet never done in 1 s */
	env_start(4, 1000, 10000);
	rawc_open(c, &E->loop, httpd_port(E->h));
	uv_timer_init(&E->loop, &drip);
	drip.data = c;
	uv_timer_start(&drip, on_drip, 0, 50);
	assert_true(tu_run_until(&E->loop, &c->eof, 8000));
	assert_int_equal(rawc_status(c), 408);
	if (!strstr(c->rx, "{\"error\":\"request head not complete within 1000 ms\"}"))
		fail_msg("not the head deadline's 408: %s", c->rx);
	assert_true(c->sent > 1 && c->sent < sizeof g_slow_head - 1);
	httpd_get_stats(E->h, &st);
	assert_int_equal(st.timeouts, 1);
	uv_close((uv_handle_t *)&drip, NULL);
	rawc_wait_closed(c);
	free(c);
	env_finish();
}

/* ---- half-close ---- */

static void on_shutdown(uv_shutdown_t *r, int status)
{
	assert_int_equal(status, 0);
}

/* Sends req whole, then shuts the write side down (as `nc -N` does); waits for EOF. */
static rawc_t *half_closed_exchange(const char *req)
{
	rawc_t *c = calloc(1, sizeof *c);

	assert_non_null(c);
	rawc_open(c, &E->loop, httpd_port(E->h));
	assert_true(tu_run_until(&E->loop, &c->connected, 5000));
	assert_int_equal(c->conn_status, 0);
	rawc_send(c, req, strlen(req));
	assert_int_equal(uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown), 0);
	assert_true(tu_run_until(&E->loop, &c->eof, 10000));
	return c;
}

static void test_httpd_probes__half_closed_request_is_answered(void **state)
{
	rawc_t *c;

	env_start(4, 3000, 10000);
	c = half_closed_exchange("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(rawc_status(c), 200);
	assert_string_equal(rawc_body(c), "{\"status\":\"ok\"}");
	rawc_wait_closed(c);
	free(c);

	/* a reply of many writes arrives whole too */
	c = half_closed_exchange("GET /big HTTP/1.0\r\n\r\n");
	assert_int_equal(rawc_status(c), 200);
	assert_int_equal(strlen(rawc_body(c)), 20000 * strlen("line 00000 of a large reply\n"));
	rawc_wait_closed(c);
	free(c);

	/* and an error answer */
	c = half_closed_exchange("GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(rawc_status(c), 404);
	rawc_wait_closed(c);
	free(c);
	env_finish();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_httpd_probes__half_closed_request_is_answered),
		cmocka_unit_test(test_httpd_probes__head_deadline_closes_a_trickle),
		cmocka_unit_test(test_httpd_probes__probes_survive_slow_clients),
	};
	log_set_level(LOG_WARN);
	tu_warm_up_libuv();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
