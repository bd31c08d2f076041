/* Unit tests for envnum: the syntax, the range, the unset case and the one error line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/envnum.h"

#define VAR "CDPILOT_TEST_ENVNUM"

static int clear(void **state)
{
	(void)state;
	unsetenv(VAR);
	return 0;
}

static void test_envnum__unset_leaves_out(void **state)
{
	errlist_t e;
	double d = 42;
	char err[64] = "";

	(void)state;
	errlist_init(&e);
	assert_int_equal(envnum_get(&e, VAR, 1, 10, 0, NULL, &d), 0);
	assert_int_equal(envnum_get_buf(err, sizeof err, VAR, 1, 10, 0, NULL, &d), 0);
	assert_true(d == 42);
	assert_int_equal(e.count, 0);
	assert_string_equal(err, "");
	errlist_release(&e);
}

static void test_envnum__good_values(void **state)
{
	static const struct {
		const char *v;
		unsigned flags;
		double want;
	} good[] = {
		{ "5", ENVNUM_WHOLE, 5 },  { "1", ENVNUM_WHOLE, 1 }, { "10", ENVNUM_WHOLE, 10 },
		{ "0.5", 0, 0.5 },         { ".25", 0, 0.25 },       { "3.", 0, 3 },
		{ "007", ENVNUM_WHOLE, 7 }, { "0", ENVNUM_WHOLE | ENVNUM_ZERO_OK, 0 },
	};
	errlist_t e;

	(void)state;
	errlist_init(&e);
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		double d = -1;
		setenv(VAR, good[i].v, 1);
		assert_int_equal(envnum_get(&e, VAR, 0, 10, good[i].flags, NULL, &d), 1);
		assert_true(d == good[i].want);
	}
	/* plain checks of the values themselves */
	{
		double d = 0;
		setenv(VAR, "2.5", 1);
		assert_int_equal(envnum_get(&e, VAR, 0.1, 10, 0, "seconds", &d), 1);
		assert_true(d == 2.5);
		setenv(VAR, "0", 1);
		assert_int_equal(envnum_get(&e, VAR, 64, 100, ENVNUM_WHOLE | ENVNUM_ZERO_OK, NULL, &d),
		                 1);
		assert_true(d == 0);
		setenv(VAR, "31536000", 1);
		assert_int_equal(envnum_get(&e, VAR, 0, 31536000, ENVNUM_WHOLE, NULL, &d), 1);
		assert_true(d == 31536000);
	}
	assert_int_equal(e.count, 0);
	errlist_release(&e);
}

static void test_envnum__bad_values_one_line_each(void **state)
{
	static const char *const bad[] = { "",   "-1",  "+1",  " 5", "5 ", "1e2", "0x10",
		                           "abc", "1.5.", "..", ".",   "11", "0.05",
		                           "123456789012345678901234567890123" };
	errlist_t e;

	(void)state;
	errlist_init(&e);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		double d = 42;
		char needle[128];
		setenv(VAR, bad[i], 1);
		assert_int_equal(envnum_get(&e, VAR, 0.1, 10, 0, "seconds", &d), -EINVAL);
		assert_true(d == 42);
		assert_int_equal(e.count, i + 1);
		snprintf(needle, sizeof needle,
		         VAR "='%s': expected a number of seconds from 0.1 to 10", bad[i]);
		if (strlen(bad[i]) <= 80)
			assert_non_null(strstr(errlist_text(&e), needle));
	}
	errlist_release(&e);
}

static void test_envnum__whole_and_zero_wording(void **state)
{
	errlist_t e;
	double d = 0;

	(void)state;
	errlist_init(&e);
	setenv(VAR, "1.5", 1);
	assert_int_equal(envnum_get(&e, VAR, 1, 1024, ENVNUM_WHOLE, NULL, &d), -EINVAL);
	assert_string_equal(errlist_text(&e), VAR "='1.5': expected a whole number from 1 to 1024");
	errlist_release(&e);

	errlist_init(&e);
	setenv(VAR, "10", 1);
	assert_int_equal(envnum_get(&e, VAR, 64, 1048576, ENVNUM_WHOLE | ENVNUM_ZERO_OK, "MiB",
	                            &d),
	                 -EINVAL);
	assert_string_equal(errlist_text(&e),
	                    VAR "='10': expected 0 (none) or a whole number of MiB from 64 to "
	                        "1048576");
	errlist_release(&e);
}

static void test_envnum__buf_appends_and_truncates(void **state)
{
	char err[256] = "FIRST='x': expected y";
	char tiny[16] = "";
	double d = 0;

	(void)state;
	setenv(VAR, "0", 1);
	assert_int_equal(envnum_get_buf(err, sizeof err, VAR, 1, 256, ENVNUM_WHOLE, NULL, &d),
	                 -EINVAL);
	assert_string_equal(err, "FIRST='x': expected y\n" VAR
	                         "='0': expected a whole number from 1 to 256");
	assert_int_equal(envnum_get_buf(tiny, sizeof tiny, VAR, 1, 256, ENVNUM_WHOLE, NULL, &d),
	                 -EINVAL);
	assert_int_equal(strlen(tiny), sizeof tiny - 1);
	assert_int_equal(envnum_get_buf(NULL, 0, VAR, 1, 256, ENVNUM_WHOLE, NULL, &d), -EINVAL);
	setenv(VAR, "7", 1);
	assert_int_equal(envnum_get_buf(tiny, sizeof tiny, VAR, 1, 256, ENVNUM_WHOLE, NULL, &d), 1);
	assert_true(d == 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_envnum__unset_leaves_out, clear, clear),
		cmocka_unit_test_setup_teardown(test_envnum__good_values, clear, clear),
		cmocka_unit_test_setup_teardown(test_envnum__bad_values_one_line_each, clear, clear),
		cmocka_unit_test_setup_teardown(test_envnum__whole_and_zero_wording, clear, clear),
		cmocka_unit_test_setup_teardown(test_envnum__buf_appends_and_truncates, clear,
		                                clear),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
