/*
 * Unit tests for REDIS_URL parsing (store/redis_url.c) and the store's settings from the
 * environment: good URLs fill every field, bad ones are refused with the URL (password
 * hidden) and what was wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/redis_url.h"
#include "store/store.h"

static void test_redis_url__tcp_forms(void **state)
{
	store_url_t u;
	char err[1400];

	assert_int_equal(store_url_parse("redis://127.0.0.1:6380/3", &u, err, sizeof err), 0);
	assert_false(u.is_unix);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 3);
	assert_false(u.has_password);
	assert_string_equal(u.user, "");

	assert_int_equal(store_url_parse("redis://redis", &u, err, sizeof err), 0);
	assert_string_equal(u.host, "redis");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 0);

	assert_int_equal(store_url_parse("redis://:s3cret@h:1/", &u, err, sizeof err), 0);
	assert_true(u.has_password);
	assert_string_equal(u.password, "s3cret");
	assert_string_equal(u.user, "");

	assert_int_equal(
	        store_url_parse("redis://alice:p%40ss%3Aw@[::1]:7000/15", &u, err, sizeof err), 0);
	assert_string_equal(u.user, "alice");
	assert_string_equal(u.password, "p@ss:w");
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 7000);
	assert_int_equal(u.db, 15);

	/* an '@' inside the password, unescaped: the last '@' ends the user info */
	assert_int_equal(store_url_parse("redis://bob:a@b@host:2/0", &u, err, sizeof err), 0);
	assert_string_equal(u.password, "a@b");
	assert_string_equal(u.host, "host");
}

static void test_redis_url__unix_forms(void **state)
{
	store_url_t u;
	char err[1400];

	assert_int_equal(store_url_parse("unix:///run/redis/redis.sock", &u, err, sizeof err), 0);
	assert_true(u.is_unix);
	assert_string_equal(u.path, "/run/redis/redis.sock");
	assert_int_equal(u.db, 0);

	assert_int_equal(store_url_parse("unix:///tmp/r.sock?db=4&user=al&password=x%26y", &u, err,
	                                 sizeof err),
	                 0);
	assert_int_equal(u.db, 4);
	assert_string_equal(u.user, "al");
	assert_string_equal(u.password, "x&y");
}

static void expect_bad(const char *url, const char *part)
{
	store_url_t u;
	char err[1400];

	memset(&u, 0x5a, sizeof u);
	assert_int_equal(store_url_parse(url, &u, err, sizeof err), -22);
	if (!strstr(err, part))
		fail_msg("for %s expected \"%s\" in: %s", url, part, err);
	assert_non_null(strstr(err, "REDIS_URL"));
	assert_non_null(strstr(err, "expected redis://"));
	assert_int_equal(u.port, 0); /* zeroed */
}

static void test_redis_url__bad_urls_say_why(void **state)
{
	expect_bad("", "empty");
	expect_bad("http://localhost:6379", "unknown scheme");
	expect_bad("localhost:6379", "unknown scheme");
	expect_bad("rediss://h:6379", "TLS");
	expect_bad("redis://", "no host");
	expect_bad("redis://:6379", "no host");
	expect_bad("redis://h:0", "1 to 65535");
	expect_bad("redis://h:65536", "1 to 65535");
	expect_bad("redis://h:63x", "\"63x\"");
	expect_bad("redis://h:6379/x", "database \"x\"");
	expect_bad("redis://h:6379/-1", "database");
	expect_bad("redis://h:6379/99999999999", "database");
	expect_bad("redis://h:6379/0?timeout=1", "query");
	expect_bad("redis://ho st:1", "contains ' '");
	expect_bad("redis://[::1:1", "closing ']'");
	expect_bad("redis://alice@h:1", "user without a password");
	expect_bad("redis://a:b%zz@h:1", "password is not valid");
	expect_bad("unix://relative.sock", "absolute");
	expect_bad("unix://", "absolute");
	expect_bad("unix:///tmp/r.sock?db=abc", "database \"abc\"");
	expect_bad("unix:///tmp/r.sock?dbx=1", "unknown query parameter \"dbx\"");
	expect_bad("unix:///tmp/r.sock?db", "has no value");
	expect_bad("unix:///tmp/r.sock?user=al", "user without a password");
}

static void test_redis_url__errors_hide_the_password(void **state)
{
	store_url_t u;
	char err[1400], red[1100];

	assert_int_equal(store_url_parse("redis://al:topsecret@h:99999/0", &u, err, sizeof err),
	                 -22);
	assert_null(strstr(err, "topsecret"));
	assert_non_null(strstr(err, "al:***@h:99999"));
	assert_int_equal(store_url_parse("unix:///s?password=topsecret&db=x", &u, err, sizeof err),
	                 -22);
	assert_null(strstr(err, "topsecret"));
	store_url_redact("unix:///s?password=topsecret&db=1", red, sizeof red);
	assert_string_equal(red, "unix:///s?password=***&db=1");
	store_url_redact("redis://h:1/0", red, sizeof red);
	assert_string_equal(red, "redis://h:1/0");
}

static const char *const vars[] = { "REDIS_URL", "REDIS_PREFIX", "SNAPSHOT_TTL_SECONDS",
	                            "CHANGES_MAXLEN", "STORE_BACKLOG_MAX" };

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
}

static void test_redis_url__opts_from_env(void **state)
{
	store_opts_t o;
	errlist_t e;

	clear_env();
	store_opts_init(&o);
	errlist_init(&e);
	assert_int_equal(store_opts_from_env(&o, &e), 0);
	assert_string_equal(o.prefix, "cdpilot");
	assert_int_equal(o.snapshot_ttl_s, 0);
	assert_int_equal(o.changes_maxlen, 100000);
	assert_int_equal(o.backlog_max, 100000);
	setenv("REDIS_URL", "unix:///tmp/x.sock?db=2", 1);
	setenv("REDIS_PREFIX", "scores:eu", 1);
	setenv("SNAPSHOT_TTL_SECONDS", "600", 1);
	setenv("CHANGES_MAXLEN", "5000", 1);
	setenv("STORE_BACKLOG_MAX", "10", 1);
	assert_int_equal(store_opts_from_env(&o, &e), 0);
	assert_string_equal(o.url, "unix:///tmp/x.sock?db=2");
	assert_string_equal(o.prefix, "scores:eu");
	assert_int_equal(o.snapshot_ttl_s, 600);
	assert_int_equal(o.changes_maxlen, 5000);
	assert_int_equal(o.backlog_max, 10);
	assert_int_equal(e.count, 0);

	/* every bad value at once */
	setenv("REDIS_URL", "redis://h:port", 1);
	setenv("REDIS_PREFIX", "a b", 1);
	setenv("SNAPSHOT_TTL_SECONDS", "-1", 1);
	setenv("CHANGES_MAXLEN", "0", 1);
	setenv("STORE_BACKLOG_MAX", "1e3", 1);
	assert_int_equal(store_opts_from_env(&o, &e), -22);
	assert_int_equal(e.count, 5);
	assert_non_null(strstr(errlist_text(&e), "REDIS_URL \"redis://h:port\""));
	assert_non_null(strstr(errlist_text(&e), "REDIS_PREFIX=\"a b\""));
	assert_non_null(strstr(errlist_text(&e), "SNAPSHOT_TTL_SECONDS='-1': expected a whole "
	                                         "number from 0 to 31536000"));
	assert_non_null(strstr(errlist_text(&e), "CHANGES_MAXLEN='0'"));
	assert_non_null(strstr(errlist_text(&e), "STORE_BACKLOG_MAX='1e3'"));
	/* the good values stay */
	assert_string_equal(o.url, "unix:///tmp/x.sock?db=2");
	assert_int_equal(o.backlog_max, 10);
	errlist_release(&e);
	clear_env();
}

static void test_redis_url__target_ids(void **state)
{
	assert_true(store_id_valid("m1"));
	assert_true(store_id_valid("A.b-c_9"));
	assert_true(
	        store_id_valid("x123456789012345678901234567890123456789012345678901234567890123"));
	assert_false(store_id_valid(
	        "x1234567890123456789012345678901234567890123456789012345678901234"));
	assert_false(store_id_valid(""));
	assert_false(store_id_valid(NULL));
	assert_false(store_id_valid(".hidden"));
	assert_false(store_id_valid("-x"));
	assert_false(store_id_valid("../x"));
	assert_false(store_id_valid("a:b"));
	assert_false(store_id_valid("a b"));
	assert_false(store_id_valid("a*"));
	assert_false(store_id_valid("a/b"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redis_url__tcp_forms),
		cmocka_unit_test(test_redis_url__unix_forms),
		cmocka_unit_test(test_redis_url__bad_urls_say_why),
		cmocka_unit_test(test_redis_url__errors_hide_the_password),
		cmocka_unit_test(test_redis_url__opts_from_env),
		cmocka_unit_test(test_redis_url__target_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
