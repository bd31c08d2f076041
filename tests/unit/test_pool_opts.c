/*
 * Unit tests for the pool's settings from the environment: every bad value is refused with
 * a message naming the variable, the value and what was expected, all of them at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pool/pool.h"

static const char *const vars[] = { "CONCURRENCY_CAP",     "LEASE_TIMEOUT_SECONDS",
	                            "TASK_TIMEOUT_SECONDS", "RECYCLE_UPTIME_SECONDS",
	                            "RECYCLE_TASK_COUNT",   "BLOCK_RESOURCES",
	                            "USER_AGENT",           "VIEWPORT",
	                            "EXTRA_HEADERS",        "CDP_MAX_MESSAGE_MB",
	                            "BROWSER_IDLE_SECONDS" };

static int clear_env(void **state)
{
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		unsetenv(vars[i]);
	return 0;
}

static void test_pool_opts__defaults(void **state)
{
	pool_opts_t o;
	char err[1024];

	pool_opts_init(&o);
	assert_int_equal(pool_opts_from_env(&o, err, sizeof err), 0);
	assert_int_equal(o.concurrency_cap, 8);
	assert_int_equal(o.task_timeout_ms, 30000);
	assert_int_equal(o.recycle_uptime_ms, 21600ull * 1000);
	assert_int_equal(o.recycle_task_count, 5000);
	assert_int_equal(o.idle_close_ms, 300000);
	assert_string_equal(o.block_resources, "image,media,font");
}

static void test_pool_opts__good_values(void **state)
{
	pool_opts_t o;
	char err[1024];

	setenv("CONCURRENCY_CAP", "256", 1);
	setenv("TASK_TIMEOUT_SECONDS", "5", 1);
	setenv("BLOCK_RESOURCES", "none", 1);
	setenv("VIEWPORT", "1920x1080", 1);
	setenv("EXTRA_HEADERS", "{\"X-Team\":\"scores\"}", 1);
	setenv("BROWSER_IDLE_SECONDS", "0", 1); /* never closed: 0 is a value, not "unset" */
	pool_opts_init(&o);
	assert_int_equal(pool_opts_from_env(&o, err, sizeof err), 0);
	assert_int_equal(o.concurrency_cap, 256);
	assert_int_equal(o.task_timeout_ms, 5000);
	assert_string_equal(o.block_resources, "none");
	assert_int_equal(o.viewport_width, 1920);
	assert_int_equal(o.viewport_height, 1080);
	assert_string_equal(o.extra_headers, "{\"X-Team\":\"scores\"}");
	assert_int_equal(o.idle_close_ms, 0);
}

static void expect_error(const char *var, const char *value, const char *expected_part)
{
	pool_opts_t o;
	char err[1024];

	clear_env(NULL);
	setenv(var, value, 1);
	pool_opts_init(&o);
	assert_int_equal(pool_opts_from_env(&o, err, sizeof err), -22 /* -EINVAL */);
	assert_non_null(strstr(err, var));
	assert_non_null(strstr(err, value));
	assert_non_null(strstr(err, expected_part));
}

static void test_pool_opts__bad_values_name_variable_value_and_range(void **state)
{
	expect_error("CONCURRENCY_CAP", "0", "1 to 256");
	expect_error("CONCURRENCY_CAP", "257", "1 to 256");
	expect_error("CONCURRENCY_CAP", "eight", "1 to 256");
	expect_error("CONCURRENCY_CAP", "8x", "1 to 256");
	expect_error("CONCURRENCY_CAP", "-1", "1 to 256");
	expect_error("CONCURRENCY_CAP", "", "1 to 256");
	expect_error("TASK_TIMEOUT_SECONDS", "0", "1 to 3600");
	expect_error("LEASE_TIMEOUT_SECONDS", "99999999999999999999", "1 to 86400");
	expect_error("BLOCK_RESOURCES", "images", "comma-separated");
	expect_error("BLOCK_RESOURCES", "image,,font", "comma-separated");
	expect_error("VIEWPORT", "1280", "WIDTHxHEIGHT");
	expect_error("EXTRA_HEADERS", "[1]", "JSON object");
	expect_error("EXTRA_HEADERS", "{\"a\":1}", "JSON object");
	expect_error("CDP_MAX_MESSAGE_MB", "0", "1 to 1024");
	expect_error("CDP_MAX_MESSAGE_MB", "64MB", "1 to 1024");
	expect_error("BROWSER_IDLE_SECONDS", "86401", "0 to 86400");
	expect_error("BROWSER_IDLE_SECONDS", "5m", "0 to 86400");
}

static void test_pool_opts__every_bad_value_is_listed(void **state)
{
	pool_opts_t o;
	char err[2048];

	setenv("CONCURRENCY_CAP", "1000", 1);
	setenv("VIEWPORT", "big", 1);
	setenv("RECYCLE_TASK_COUNT", "x", 1);
	pool_opts_init(&o);
	assert_int_equal(pool_opts_from_env(&o, err, sizeof err), -22);
	assert_non_null(strstr(err, "CONCURRENCY_CAP='1000'"));
	assert_non_null(strstr(err, "VIEWPORT='big'"));
	assert_non_null(strstr(err, "RECYCLE_TASK_COUNT='x'"));
	assert_non_null(strchr(err, '\n'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pool_opts__defaults, clear_env),
		cmocka_unit_test_setup(test_pool_opts__good_values, clear_env),
		cmocka_unit_test_setup(test_pool_opts__bad_values_name_variable_value_and_range,
		                       clear_env),
		cmocka_unit_test_setup(test_pool_opts__every_bad_value_is_listed, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
