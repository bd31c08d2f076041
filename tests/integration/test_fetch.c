/*
 * test_fetch: util/fetch against a real local HTTP server (tu_httpd) on the test's loop:
 * bodies, HTTP codes, refused connections, DNS failure, timeouts, the body cap, many
 * transfers at once, and closing with transfers pending (each callback exactly once).
 * Every case checks that its loop closes cleanly and that no fd is left behind.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/testutil.h"
#include "util/fetch.h"
#include "util/log.h"

/* Callbacks call uv_stop() so that a UV_RUN_ONCE waiting loop returns at once. */
typedef struct result {
	uv_loop_t *loop;
	int calls;
	int status;
	long http_code;
	char body[64];
	size_t body_len;
	char error[512];
} result_t;

typedef struct env {
	uv_loop_t loop;
	fetch_ctx_t *ctx;
	int closed;
	int fds_before;
} env_t;

static void on_result(const fetch_result_t *res, void *ud)
{
	result_t *r = ud;

	if (r->loop)
		uv_stop(r->loop);
	r->calls++;
	r->status = res->status;
	r->http_code = res->http_code;
	r->body_len = res->body_len;
	snprintf(r->body, sizeof r->body, "%s", res->body);
	snprintf(r->error, sizeof r->error, "%s", res->error);
	assert_non_null(res->body);
	assert_non_null(res->error);
}

static void on_closed(void *ud)
{
	int *closed = ud;
	(*closed)++;
}

static void env_init(env_t *e)
{
	memset(e, 0, sizeof *e);
	e->fds_before = tu_fd_count();
	assert_int_equal(uv_loop_init(&e->loop), 0);
	e->ctx = fetch_ctx_new(&e->loop);
	assert_non_null(e->ctx);
}

/* Closes the context (if not yet), finishes the loop, audits fds. */
static void env_finish(env_t *e)
{
	if (e->ctx)
		fetch_ctx_close(e->ctx, on_closed, &e->closed);
	e->ctx = NULL;
	tu_run_until(&e->loop, &e->closed, 5000);
	assert_int_equal(e->closed, 1);
	tu_loop_finish(&e->loop);
	assert_int_equal(tu_fd_count(), e->fds_before);
}

static void wait_calls(env_t *e, result_t *r, int n, uint64_t ms)
{
	uint64_t end = tu_now_ms() + ms;
	r->loop = &e->loop;
	while (r->calls < n && tu_now_ms() < end)
		uv_run(&e->loop, UV_RUN_ONCE);
}

static void url_for(char *out, size_t len, int port, const char *path)
{
	snprintf(out, len, "http://127.0.0.1:%d%s", port, path);
}

static void test_fetch__200_body(void **state)
{
	env_t e;
	result_t r = { 0 };
	char url[128];
	tu_httpd_t *h;

	env_init(&e);
	h = tu_httpd_new(&e.loop, 200, "text/plain", "hello", 5, 0);
	assert_non_null(h);
	url_for(url, sizeof url, tu_httpd_port(h), "/x");
	assert_int_equal(fetch_get(e.ctx, url, 5000, 0, on_result, &r), 0);
	wait_calls(&e, &r, 1, 5000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.http_code, 200);
	assert_int_equal(r.body_len, 5);
	assert_string_equal(r.body, "hello");
	assert_int_equal(tu_httpd_requests(h), 1);
	tu_httpd_close(h);
	env_finish(&e);
	assert_int_equal(r.calls, 1);
}

/* The policy refuses, after DNS and before connect, every address it denies: a name
 * ("localhost") that resolves only to denied addresses fails with -EACCES naming the
 * address and the rule, and the server sees no connection; the same name passes once
 * the policy no longer denies them. */
static void test_fetch__policy_refuses_resolved_addresses(void **state)
{
	env_t e;
	result_t r = { 0 }, ok = { 0 }, lit = { 0 };
	netpolicy_t deny, open;
	errlist_t errs;
	char url[128];
	tu_httpd_t *h;

	errlist_init(&errs);
	assert_int_equal(netpolicy_init(&deny, NULL, "127.0.0.0/8,::1/128", &errs), 0);
	assert_int_equal(netpolicy_init(&open, NULL, NULL, &errs), 0);
	env_init(&e);
	h = tu_httpd_new(&e.loop, 200, "text/plain", "hello", 5, 0);
	assert_non_null(h);
	fetch_ctx_set_policy(e.ctx, &deny);
	snprintf(url, sizeof url, "http://localhost:%d/x", tu_httpd_port(h));
	assert_int_equal(fetch_get(e.ctx, url, 5000, 0, on_result, &r), 0);
	wait_calls(&e, &r, 1, 5000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -EACCES);
	if (!strstr(r.error, "refused by the target policy: the host's address ") ||
	    !strstr(r.error, "denied by TARGET_DENY entry "))
		fail_msg("error: %s", r.error);
	url_for(url, sizeof url, tu_httpd_port(h), "/x");
	assert_int_equal(fetch_get(e.ctx, url, 5000, 0, on_result, &lit), 0);
	wait_calls(&e, &lit, 1, 5000);
	assert_int_equal(lit.status, -EACCES);
	assert_non_null(strstr(lit.error, "address 127.0.0.1 is denied by TARGET_DENY entry "
	                                  "\"127.0.0.0/8\""));
	assert_int_equal(tu_httpd_requests(h), 0);

	fetch_ctx_set_policy(e.ctx, &open);
	url_for(url, sizeof url, tu_httpd_port(h), "/x");
	assert_int_equal(fetch_get(e.ctx, url, 5000, 0, on_result, &ok), 0);
	wait_calls(&e, &ok, 1, 5000);
	assert_int_equal(ok.status, 0);
	assert_string_equal(ok.body, "hello");
	assert_int_equal(tu_httpd_requests(h), 1);
	tu_httpd_close(h);
	env_finish(&e);
	netpolicy_release(&deny);
	netpolicy_release(&open);
	errlist_release(&errs);
}

static void test_fetch__http_error_is_a_done_transfer(void **state)
{
	env_t e;
	result_t r = { 0 };
	char url[128];
	tu_httpd_t *h;

	env_init(&e);
	h = tu_httpd_new(&e.loop, 404, "text/plain", "nope", 4, 0);
	url_for(url, sizeof url, tu_httpd_port(h), "/missing");
	assert_int_equal(fetch_get(e.ctx, url, 5000, 0, on_result, &r), 0);
	wait_calls(&e, &r, 1, 5000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.http_code, 404);
	assert_string_equal(r.body, "nope");
	tu_httpd_close(h);
	env_finish(&e);
}

static void test_fetch__connection_refused(void **state)
{
	env_t e;
	result_t r = { 0 };
	char url[128];
	int port = tu_unused_port();

	assert_true(port > 0);
	env_init(&e);
	url_for(url, sizeof url, port, "/");
	assert_int_equal(fetch_get(e.ctx, url, 5000, 0, on_result, &r), 0);
	wait_calls(&e, &r, 1, 5000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -ECONNREFUSED);
	assert_int_equal(r.http_code, 0);
	assert_string_equal(r.body, "");
	assert_true(strlen(r.error) > 0);
	env_finish(&e);
}

static void test_fetch__dns_failure(void **state)
{
	env_t e;
	result_t r = { 0 };

	env_init(&e);
	/* .invalid never resolves (RFC 6761). */
	assert_int_equal(
	        fetch_get(e.ctx, "http://cdpilot-no-such-host.invalid/", 10000, 0, on_result, &r),
	        0);
	wait_calls(&e, &r, 1, 15000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -EHOSTUNREACH);
	assert_non_null(strstr(r.error, "cdpilot-no-such-host.invalid"));
	env_finish(&e);
}

static void test_fetch__timeout(void **state)
{
	env_t e;
	result_t r = { 0 };
	char url[128];
	tu_httpd_t *h;
	uint64_t t0;

	env_init(&e);
	h = tu_httpd_new(&e.loop, 200, NULL, "", 0, 1 /* hang */);
	url_for(url, sizeof url, tu_httpd_port(h), "/hang");
	t0 = tu_now_ms();
	assert_int_equal(fetch_get(e.ctx, url, 300, 0, on_result, &r), 0);
	wait_calls(&e, &r, 1, 5000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -ETIMEDOUT);
	assert_true(tu_now_ms() - t0 >= 250);
	assert_true(tu_now_ms() - t0 < 3000);
	tu_httpd_close(h);
	env_finish(&e);
}

static void test_fetch__body_cap(void **state)
{
	env_t e;
	result_t over = { 0 }, exact = { 0 }, deflt = { 0 };
	char url[128];
	size_t n = 200000;
	char *big = malloc(n);
	tu_httpd_t *h;

	assert_non_null(big);
	memset(big, 'a', n);
	env_init(&e);
	h = tu_httpd_new(&e.loop, 200, "text/plain", big, n, 0);
	url_for(url, sizeof url, tu_httpd_port(h), "/big");
	assert_int_equal(fetch_get(e.ctx, url, 5000, 10000, on_result, &over), 0);
	assert_int_equal(fetch_get(e.ctx, url, 5000, n, on_result, &exact), 0);
	assert_int_equal(fetch_get(e.ctx, url, 5000, 0, on_result, &deflt), 0);
	wait_calls(&e, &over, 1, 5000);
	wait_calls(&e, &exact, 1, 5000);
	wait_calls(&e, &deflt, 1, 5000);
	assert_int_equal(over.calls, 1);
	assert_int_equal(over.status, -EMSGSIZE);
	assert_int_equal(over.body_len, 0);
	assert_non_null(strstr(over.error, "10000"));
	assert_int_equal(exact.calls, 1);
	assert_int_equal(exact.status, 0);
	assert_int_equal(exact.body_len, n);
	assert_int_equal(deflt.status, 0);
	assert_int_equal(deflt.body_len, n);
	tu_httpd_close(h);
	env_finish(&e);
	free(big);
}

static void test_fetch__many_at_once(void **state)
{
	env_t e;
	result_t r[40];
	char url[128];
	tu_httpd_t *h;

	memset(r, 0, sizeof r);
	env_init(&e);
	h = tu_httpd_new(&e.loop, 200, "text/plain", "ok", 2, 0);
	url_for(url, sizeof url, tu_httpd_port(h), "/");
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 20; i++)
			assert_int_equal(
			        fetch_get(e.ctx, url, 5000, 0, on_result, &r[round * 20 + i]), 0);
		for (int i = 0; i < 20; i++)
			wait_calls(&e, &r[round * 20 + i], 1, 5000);
	}
	for (int i = 0; i < 40; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, 0);
		assert_string_equal(r[i].body, "ok");
	}
	assert_int_equal(tu_httpd_requests(h), 40);
	tu_httpd_close(h);
	env_finish(&e);
}

static void test_fetch__close_with_pending_cancels_once(void **state)
{
	env_t e;
	result_t r[3];
	char url[128];
	tu_httpd_t *h;

	memset(r, 0, sizeof r);
	env_init(&e);
	h = tu_httpd_new(&e.loop, 200, NULL, "", 0, 1 /* hang */);
	url_for(url, sizeof url, tu_httpd_port(h), "/hang");
	for (int i = 0; i < 3; i++)
		assert_int_equal(fetch_get(e.ctx, url, 30000, 0, on_result, &r[i]), 0);
	/* Let the requests reach the server, so sockets and polls exist. */
	{
		uint64_t end = tu_now_ms() + 3000;
		while (tu_httpd_requests(h) < 3 && tu_now_ms() < end)
			uv_run(&e.loop, UV_RUN_ONCE);
	}
	assert_int_equal(tu_httpd_requests(h), 3);
	fetch_ctx_close(e.ctx, on_closed, &e.closed);
	e.ctx = NULL;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].status, -ECANCELED);
	}
	assert_int_equal(e.closed, 0); /* the close callback comes from the loop */
	tu_httpd_close(h);
	env_finish(&e);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].calls, 1);
}

/* A callback that closes the context: the other pending transfer is cancelled once. */
typedef struct closer {
	env_t *e;
	result_t r;
} closer_t;

static void on_result_then_close(const fetch_result_t *res, void *ud)
{
	closer_t *c = ud;
	on_result(res, &c->r);
	assert_int_equal(fetch_get(c->e->ctx, "http://127.0.0.1:1/", 1000, 0, on_result, &c->r), 0);
	c->r.calls--; /* that one is counted when it is cancelled below */
	fetch_ctx_close(c->e->ctx, on_closed, &c->e->closed);
	/* fetch_get on a closing context fails and never calls back */
	assert_int_equal(fetch_get(c->e->ctx, "http://127.0.0.1:1/", 1000, 0, on_result, &c->r),
	                 -ECANCELED);
	c->e->ctx = NULL;
}

static void test_fetch__close_from_callback(void **state)
{
	env_t e;
	closer_t c;
	result_t hung = { 0 };
	char url_ok[128], url_hang[128];
	tu_httpd_t *ok, *hang;

	env_init(&e);
	memset(&c, 0, sizeof c);
	c.e = &e;
	ok = tu_httpd_new(&e.loop, 200, NULL, "x", 1, 0);
	hang = tu_httpd_new(&e.loop, 200, NULL, "", 0, 1);
	url_for(url_ok, sizeof url_ok, tu_httpd_port(ok), "/");
	url_for(url_hang, sizeof url_hang, tu_httpd_port(hang), "/");
	assert_int_equal(fetch_get(e.ctx, url_hang, 30000, 0, on_result, &hung), 0);
	assert_int_equal(fetch_get(e.ctx, url_ok, 5000, 0, on_result_then_close, &c), 0);
	tu_run_until(&e.loop, &e.closed, 5000);
	assert_int_equal(e.closed, 1);
	assert_int_equal(c.r.status, -ECANCELED); /* the one queued inside the callback */
	assert_int_equal(c.r.calls, 1);
	assert_int_equal(hung.calls, 1);
	assert_int_equal(hung.status, -ECANCELED);
	tu_httpd_close(ok);
	tu_httpd_close(hang);
	tu_loop_finish(&e.loop);
	assert_int_equal(tu_fd_count(), e.fds_before);
}

static void test_fetch__bad_arguments(void **state)
{
	env_t e;
	result_t r = { 0 };

	env_init(&e);
	assert_int_equal(fetch_get(e.ctx, NULL, 1000, 0, on_result, &r), -EINVAL);
	assert_int_equal(fetch_get(e.ctx, "http://127.0.0.1/", 1000, 0, NULL, &r), -EINVAL);
	/* Not http(s): curl refuses the protocol when the transfer starts. */
	assert_int_equal(fetch_get(e.ctx, "file:///etc/passwd", 1000, 0, on_result, &r), 0);
	wait_calls(&e, &r, 1, 5000);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.status, -EIO);
	env_finish(&e);
}

/*
 * Process-wide state made once: libuv's signal lock pipe (first loop) and curl's global
 * init. Made before any case takes its fd baseline.
 */
static int group_setup(void **state)
{
	uv_loop_t loop;
	fetch_ctx_t *ctx;
	int closed = 0;

	if (uv_loop_init(&loop) != 0 || !(ctx = fetch_ctx_new(&loop)))
		return -1;
	fetch_ctx_close(ctx, on_closed, &closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	return closed == 1 && uv_loop_close(&loop) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fetch__200_body),
		cmocka_unit_test(test_fetch__http_error_is_a_done_transfer),
		cmocka_unit_test(test_fetch__policy_refuses_resolved_addresses),
		cmocka_unit_test(test_fetch__connection_refused),
		cmocka_unit_test(test_fetch__dns_failure),
		cmocka_unit_test(test_fetch__timeout),
		cmocka_unit_test(test_fetch__body_cap),
		cmocka_unit_test(test_fetch__many_at_once),
		cmocka_unit_test(test_fetch__close_with_pending_cancels_once),
		cmocka_unit_test(test_fetch__close_from_callback),
		cmocka_unit_test(test_fetch__bad_arguments),
	};
	char err[256];

	signal(SIGPIPE, SIG_IGN); /* the server writes to clients that may hang up */
	if (log_init_from_env(err, sizeof err) != 0)
		fprintf(stderr, "%s\n", err);
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
