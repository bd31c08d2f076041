/*
 * Unit tests for httpd's request head parser (httpd__parse) and for METRICS_* settings:
 * every limit gives its status, incomplete heads ask for more, garbage is refused as soon
 * as the request line shows it, and bad settings name the variable, value and range.
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

static int parse(const char *s, httpd__req_t *req)
{
	return httpd__parse(s, strlen(s), 8192, req);
}

static void test_httpd_parse__good_get_and_head(void **state)
{
	httpd__req_t r;
	const char *s = "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";

	assert_int_equal(parse(s, &r), 200);
	assert_int_equal(r.head_len, strlen(s));
	assert_int_equal(r.target_len, strlen("/metrics?x=1"));
	assert_memory_equal(r.target, "/metrics?x=1", r.target_len);
	assert_false(r.head_only);
	assert_int_equal(parse("HEAD / HTTP/1.0\r\n\r\n", &r), 200);
	assert_true(r.head_only);
	assert_int_equal(parse("GET / HTTP/1.1\r\nhOsT: a\r\nContent-Length: 0\r\n\r\n", &r), 200);
}

static void test_httpd_parse__incomplete_needs_more(void **state)
{
	const char *s = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
	httpd__req_t r;

	/* every proper prefix asks for more, the whole head is accepted */
	for (size_t n = 0; n < strlen(s); n++)
		assert_int_equal(httpd__parse(s, n, 8192, &r), 0);
	assert_int_equal(httpd__parse(s, strlen(s), 8192, &r), 200);
}

static void expect(const char *s, int status)
{
	httpd__req_t r;
	int got = parse(s, &r);
	if (got != status)
		fail_msg("'%s': got %d, expected %d", s, got, status);
	assert_non_null(r.error);
}

static void test_httpd_parse__errors(void **state)
{
	expect("POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405);
	expect("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n", 405);
	expect("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 405);
	expect("GET / HTTP/1.1\r\n\r\n", 400);                           /* no Host */
	expect("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);     /* two */
	expect("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", 400);
	expect("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400);
	expect("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
	expect("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400);               /* obs-fold */
	expect("GET / HTTP/1.1\r\nHost a\r\n\r\n", 400);
	expect("GET / HTTP/1.1\r\nHost: a\001b\r\n\r\n", 400);
	expect("GET / HTTP/1.1\nHost: a\n\n", 400);                       /* bare LF */
	expect("GET  / HTTP/1.1\r\n", 400);
	/* garbage is refused before the head is complete */
	expect("\x16\x03\x01\x02\x00\x01", 400);
	expect("GET / HTTP/2.0\r\n", 400);
	expect("GET / HTXP", 400);
	expect("hello world\r\n", 400);
}

static void test_httpd_parse__limits(void **state)
{
	char buf[16384];
	httpd__req_t r;
	size_t n;

	/* a target over HTTPD_MAX_TARGET: 414, even while the line is incomplete */
	n = (size_t)snprintf(buf, sizeof buf, "GET /");
	memset(buf + n, 'a', HTTPD_MAX_TARGET + 10);
	buf[n + HTTPD_MAX_TARGET + 10] = '\0';
	assert_int_equal(parse(buf, &r), 414);

	/* a request line that fills the head limit: 414 */
	n = (size_t)snprintf(buf, sizeof buf, "GET /");
	memset(buf + n, 'a', 1000);
	assert_int_equal(httpd__parse(buf, n + 1000, 512, &r), 414);

	/* a head over the limit, with no end: 431; complete but over: 431 */
	n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
	memset(buf + n, 'b', 9000);
	assert_int_equal(httpd__parse(buf, n + 9000, 8192, &r), 431);
	memcpy(buf + n + 9000, "\r\n\r\n", 5);
	assert_int_equal(httpd__parse(buf, strlen(buf), 8192, &r), 431);

	/* too many header lines: 431 */
	n = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (int i = 0; i < HTTPD_MAX_HEADERS; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "X-%d: v\r\n", i);
	n += (size_t)snprintf(buf + n, sizeof buf - n, "\r\n");
	assert_int_equal(httpd__parse(buf, n, 8192, &r), 431);
}

static void test_httpd_parse__never_reads_past_len(void **state)
{
	/* a heap copy without terminator: ASan catches any read past the end */
	const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r";
	httpd__req_t r;

	for (size_t n = 0; n <= strlen(s); n++) {
		char *p = malloc(n ? n : 1);
		memcpy(p, s, n);
		assert_int_equal(httpd__parse(p, n, 8192, &r), 0);
		free(p);
	}
}

static void clear_env(void)
{
	unsetenv("METRICS_ADDR");
	unsetenv("METRICS_MAX_CONNS");
	unsetenv("METRICS_MAX_HEAD_BYTES");
	unsetenv("METRICS_IDLE_TIMEOUT_MS");
	unsetenv("METRICS_HEAD_TIMEOUT_MS");
}

static void test_httpd_parse__opts_from_env(void **state)
{
	httpd_opts_t o;
	errlist_t e;

	clear_env();
	errlist_init(&e);
	assert_int_equal(httpd_opts_from_env(&o, &e), 0);
	assert_string_equal(o.addr, "127.0.0.1:9464");
	assert_int_equal(o.max_conns, 64);
	assert_int_equal(o.max_head_bytes, 8192);
	assert_int_equal(o.idle_timeout_ms, 10000);
	assert_int_equal(o.head_timeout_ms, 3000);

	setenv("METRICS_ADDR", "[::1]:0", 1);
	setenv("METRICS_MAX_CONNS", "3", 1);
	setenv("METRICS_HEAD_TIMEOUT_MS", "1500", 1);
	assert_int_equal(httpd_opts_from_env(&o, &e), 0);
	assert_int_equal(o.head_timeout_ms, 1500);
	assert_string_equal(o.addr, "[::1]:0");
	assert_int_equal(o.max_conns, 3);
	setenv("METRICS_ADDR", "0.0.0.0:9464", 1);
	assert_int_equal(httpd_opts_from_env(&o, &e), 0);
	assert_int_equal(e.count, 0);

	/* every bad value at once, each naming variable, value and expectation */
	setenv("METRICS_ADDR", "localhost:9464", 1);
	setenv("METRICS_MAX_CONNS", "0", 1);
	setenv("METRICS_MAX_HEAD_BYTES", "12k", 1);
	setenv("METRICS_IDLE_TIMEOUT_MS", "-5", 1);
	setenv("METRICS_HEAD_TIMEOUT_MS", "3s", 1);
	assert_int_equal(httpd_opts_from_env(&o, &e), -EINVAL);
	assert_int_equal(e.count, 5);
	assert_non_null(strstr(errlist_text(&e), "METRICS_ADDR='localhost:9464'"));
	assert_non_null(strstr(errlist_text(&e), "numeric IPv4"));
	assert_non_null(strstr(errlist_text(&e), "METRICS_MAX_CONNS='0': expected a whole number "
	                                         "from 1 to 4096"));
	assert_non_null(strstr(errlist_text(&e), "METRICS_MAX_HEAD_BYTES='12k'"));
	assert_non_null(strstr(errlist_text(&e), "METRICS_IDLE_TIMEOUT_MS='-5'"));
	assert_non_null(strstr(errlist_text(&e), "METRICS_HEAD_TIMEOUT_MS='3s': expected a whole "
	                                         "number from 100 to 600000"));
	errlist_release(&e);

	const char *bad_addrs[] = { "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:", ":9464",
		                    "::1:9464",  "[::1]9464",       "[::1]:x",    "1.2.3:80",
		                    "127.0.0.1:-1" };
	for (size_t i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
		clear_env();
		setenv("METRICS_ADDR", bad_addrs[i], 1);
		errlist_init(&e);
		if (httpd_opts_from_env(&o, &e) != -EINVAL)
			fail_msg("METRICS_ADDR='%s' was accepted", bad_addrs[i]);
		assert_non_null(strstr(errlist_text(&e), bad_addrs[i]));
		errlist_release(&e);
	}
	clear_env();
}

/* A query read one key=value at a time, %XX decoded; bad ones named. */
static void test_httpd_parse__query(void **state)
{
	const char *q = "target=live%201&&targets=none&k=a+b";
	char k[8], v[16], why[160];

	assert_int_equal(httpd_query_next(&q, k, sizeof k, v, sizeof v, why, sizeof why), 1);
	assert_string_equal(k, "target");
	assert_string_equal(v, "live 1");
	assert_int_equal(httpd_query_next(&q, k, sizeof k, v, sizeof v, why, sizeof why), 1);
	assert_string_equal(k, "targets");
	assert_string_equal(v, "none");
	assert_int_equal(httpd_query_next(&q, k, sizeof k, v, sizeof v, why, sizeof why), 1);
	assert_string_equal(v, "a+b"); /* '+' stays */
	assert_int_equal(httpd_query_next(&q, k, sizeof k, v, sizeof v, why, sizeof why), 0);
	q = "";
	assert_int_equal(httpd_query_next(&q, k, sizeof k, v, sizeof v, why, sizeof why), 0);

	static const struct {
		const char *q, *want;
	} bad[] = {
		{ "target", "query parameter 'target': expected key=value" },
		{ "a=%zz", "query parameter 'a=%zz': a bad %-escape in the value" },
		{ "a=%4", "a bad %-escape in the value" },
		{ "a=x%00y", "a NUL (%00) in the value" },
		{ "a=0123456789abcdefg", "the value is longer than 15 bytes" },
		{ "longername=1", "the name is longer than 7 bytes" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		q = bad[i].q;
		if (httpd_query_next(&q, k, sizeof k, v, sizeof v, why, sizeof why) != -1)
			fail_msg("query '%s' was accepted", bad[i].q);
		if (!strstr(why, bad[i].want))
			fail_msg("query '%s': said '%s', expected '%s'", bad[i].q, why, bad[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_httpd_parse__good_get_and_head),
		cmocka_unit_test(test_httpd_parse__incomplete_needs_more),
		cmocka_unit_test(test_httpd_parse__query),
		cmocka_unit_test(test_httpd_parse__errors),
		cmocka_unit_test(test_httpd_parse__limits),
		cmocka_unit_test(test_httpd_parse__never_reads_past_len),
		cmocka_unit_test(test_httpd_parse__opts_from_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
