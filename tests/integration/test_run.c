/* test_run: `cdpilot run` end to end (being written). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

static void test_run__placeholder(void **state)
{
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_run__placeholder) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
