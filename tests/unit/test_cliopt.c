/*
 * test_cliopt: "--name VALUE" and "--name=VALUE" options (util/cliopt.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/cliopt.h"

static const char *const known[] = { "--id", "--timeout", NULL };

static void test_cliopt__both_forms(void **state)
{
	char *argv[] = { "--id", "m1", "--timeout=5", "--id=" };
	char name[16], err[128] = "";
	const char *value = NULL;
	int i = 0;

	assert_int_equal(
	        cliopt_next(4, argv, &i, known, name, sizeof name, &value, err, sizeof err), 0);
	assert_string_equal(name, "--id");
	assert_string_equal(value, "m1");
	assert_int_equal(i, 1); /* moved past the value */
	i = 2;
	assert_int_equal(
	        cliopt_next(4, argv, &i, known, name, sizeof name, &value, err, sizeof err), 0);
	assert_string_equal(name, "--timeout");
	assert_string_equal(value, "5");
	assert_int_equal(i, 2);
	i = 3;
	assert_int_equal(
	        cliopt_next(4, argv, &i, known, name, sizeof name, &value, err, sizeof err), 0);
	assert_string_equal(value, ""); /* an empty value is the caller's to judge */
	assert_string_equal(err, "");
}

static void test_cliopt__unknown_and_missing(void **state)
{
	char *argv[] = { "--idx=3", "--timeout", "--a-very-long-option-name-indeed" };
	char name[16], err[128] = "";
	const char *value = "untouched";
	int i = 0;

	assert_int_equal(
	        cliopt_next(3, argv, &i, known, name, sizeof name, &value, err, sizeof err),
	        CLIOPT_UNKNOWN);
	assert_string_equal(name, "--idx");
	assert_string_equal(value, "untouched");
	i = 1;
	assert_int_equal(
	        cliopt_next(2, argv, &i, known, name, sizeof name, &value, err, sizeof err),
	        CLIOPT_NOVALUE);
	assert_string_equal(err, "option --timeout needs a value (see --help)");
	assert_int_equal(i, 1);
	i = 2;
	assert_int_equal(
	        cliopt_next(3, argv, &i, known, name, sizeof name, &value, err, sizeof err),
	        CLIOPT_UNKNOWN);
	assert_string_equal(name, "--a-very-long-o"); /* cut to fit, never overrun */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cliopt__both_forms),
		cmocka_unit_test(test_cliopt__unknown_and_missing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
