/*
 * Unit tests for util/prom: escaping of HELP text and label values, value formatting,
 * cumulative histograms, the sticky errors and the cap, and a sample exposition checked
 * by the real `promtool check metrics` (which must be installed when CI is set).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/prom.h"

static char *take(prom_buf_t *b)
{
	size_t len;
	char *s = prom_buf_steal(b, &len);
	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	return s;
}

static void test_prom__help_and_type(void **state)
{
	prom_buf_t b;
	char *s;

	prom_buf_init(&b, 0);
	assert_int_equal(prom_header(&b, "cdpilot_up", "gauge", "line one\nback\\slash"), 0);
	assert_int_equal(prom_header(&b, "x_total", "counter", NULL), 0);
	s = take(&b);
	assert_string_equal(s, "# HELP cdpilot_up line one\\nback\\\\slash\n"
	                       "# TYPE cdpilot_up gauge\n"
	                       "# TYPE x_total counter\n");
	free(s);
}

static void test_prom__label_values_escaped(void **state)
{
	prom_buf_t b;
	char *s;

	prom_buf_init(&b, 0);
	assert_int_equal(prom_sample(&b, "tasks_total", 3, "target", "a\"b\\c\nd", "class", "live",
	                             NULL),
	                 0);
	assert_int_equal(prom_sample(&b, "plain", 1.5, NULL), 0);
	s = take(&b);
	assert_string_equal(s, "tasks_total{target=\"a\\\"b\\\\c\\nd\",class=\"live\"} 3\n"
	                       "plain 1.5\n");
	free(s);
}

static void test_prom__values(void **state)
{
	char out[40];

	assert_string_equal(prom_format_value(NAN, out, sizeof out), "NaN");
	assert_string_equal(prom_format_value(INFINITY, out, sizeof out), "+Inf");
	assert_string_equal(prom_format_value(-INFINITY, out, sizeof out), "-Inf");
	assert_string_equal(prom_format_value(0, out, sizeof out), "0");
	assert_string_equal(prom_format_value(-42, out, sizeof out), "-42");
	assert_string_equal(prom_format_value(12345678901234.0, out, sizeof out),
	                    "12345678901234");
	assert_string_equal(prom_format_value(0.1, out, sizeof out), "0.1");
	assert_string_equal(prom_format_value(0.005, out, sizeof out), "0.005");
	assert_true(strtod(prom_format_value(1.0 / 3, out, sizeof out), NULL) == 1.0 / 3);
	assert_string_equal(prom_format_value(1e300, out, sizeof out), "1e+300");
}

static void test_prom__family_one_label(void **state)
{
	prom_buf_t b;
	char *s;

	prom_buf_init(&b, 0);
	assert_int_equal(prom_family(&b, "checks_total", "counter", "Checks.", "result",
	                             (const char *const[]){ "agreed", "failed" },
	                             (const double[]){ 3, 0 }, 2),
	                 0);
	s = take(&b);
	assert_string_equal(s, "# HELP checks_total Checks.\n"
	                       "# TYPE checks_total counter\n"
	                       "checks_total{result=\"agreed\"} 3\n"
	                       "checks_total{result=\"failed\"} 0\n");
	free(s);
	prom_buf_init(&b, 0); /* a bad label name is refused, as by prom_sample */
	assert_int_equal(prom_family(&b, "x_total", "counter", NULL, "1bad",
	                             (const char *const[]){ "a" }, (const double[]){ 1 }, 1),
	                 -EINVAL);
	prom_buf_release(&b);
}

static void test_prom__histogram_cumulative(void **state)
{
	const double bounds[] = { 0.1, 0.5, 1, 2.5 };
	const uint64_t counts[] = { 2, 0, 3, 1 };
	prom_buf_t b;
	char *s;

	prom_buf_init(&b, 0);
	assert_int_equal(prom_histogram(&b, "task_seconds", "Task time.", bounds, counts, 4, 7.25,
	                                8),
	                 0);
	s = take(&b);
	assert_string_equal(s, "# HELP task_seconds Task time.\n"
	                       "# TYPE task_seconds histogram\n"
	                       "task_seconds_bucket{le=\"0.1\"} 2\n"
	                       "task_seconds_bucket{le=\"0.5\"} 2\n"
	                       "task_seconds_bucket{le=\"1\"} 5\n"
	                       "task_seconds_bucket{le=\"2.5\"} 6\n"
	                       "task_seconds_bucket{le=\"+Inf\"} 8\n"
	                       "task_seconds_sum 7.25\n"
	                       "task_seconds_count 8\n");
	free(s);
}

static void test_prom__bad_input_is_sticky(void **state)
{
	const double down[] = { 1, 0.5 };
	const uint64_t counts[] = { 1, 1 };
	prom_buf_t b;
	size_t len = 99;

	prom_buf_init(&b, 0);
	assert_int_equal(prom_sample(&b, "9starts_with_digit", 1, NULL), -EINVAL);
	assert_int_equal(prom_sample(&b, "ok", 1, NULL), -EINVAL); /* sticky */
	assert_null(prom_buf_steal(&b, &len));
	assert_int_equal(len, 0);

	prom_buf_init(&b, 0);
	assert_int_equal(prom_sample(&b, "ok", 1, "bad-label", "v", NULL), -EINVAL);
	prom_buf_release(&b);
	prom_buf_init(&b, 0);
	assert_int_equal(prom_header(&b, "ok", "nonsense", "x"), -EINVAL);
	prom_buf_release(&b);
	prom_buf_init(&b, 0);
	assert_int_equal(prom_histogram(&b, "h", NULL, down, counts, 2, 1, 2), -EINVAL);
	prom_buf_release(&b);
	prom_buf_init(&b, 0);
	/* buckets add up to more than count */
	assert_int_equal(prom_histogram(&b, "h", NULL, (const double[]){ 1, 2 }, counts, 2, 1, 1),
	                 -EINVAL);
	prom_buf_release(&b);
}

static void test_prom__cap(void **state)
{
	prom_buf_t b;
	int rc = 0;

	prom_buf_init(&b, 100);
	for (int i = 0; i < 20 && rc == 0; i++)
		rc = prom_sample(&b, "some_metric_name", i, NULL);
	assert_int_equal(rc, -EMSGSIZE);
	assert_true(b.text.len <= 100);
	prom_buf_release(&b);
}

/* Runs promtool check metrics on text; returns its exit status, output in out. */
static int promtool_check(const char *text, char *out, size_t outlen)
{
	char tmpl[] = "/tmp/test_prom_XXXXXX", cmd[512];
	FILE *f, *p;
	size_t n = 0;
	int fd, st;

	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", tmpl);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, outlen - 1, p);
	out[n] = '\0';
	st = pclose(p);
	unlink(tmpl);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int have_promtool(void)
{
	return system("command -v promtool >/dev/null 2>&1") == 0;
}

static void test_prom__promtool_accepts_exposition(void **state)
{
	const double bounds[] = { 0.005, 0.05, 0.5, 5 };
	const uint64_t counts[] = { 1, 2, 0, 4 };
	prom_buf_t b;
	char out[4096];
	char *s;
	int rc;

	if (!have_promtool()) {
		const char *ci = getenv("CI");
		if (ci && *ci && strcmp(ci, "0") != 0 && strcmp(ci, "false") != 0)
			fail_msg("promtool is not installed and CI is set");
		print_message("promtool not installed: exposition not checked\n");
		return;
	}
	prom_buf_init(&b, 0);
	prom_header(&b, "cdpilot_tasks_total", "counter", "Tasks run, by \"result\"\\kind.\nSecond line.");
	prom_sample(&b, "cdpilot_tasks_total", 12, "result", "ok", NULL);
	prom_sample(&b, "cdpilot_tasks_total", 3, "result", "we\"ird\\value\nx", NULL);
	prom_header(&b, "cdpilot_ratio", "gauge", "A ratio.");
	prom_sample(&b, "cdpilot_ratio", NAN, "kind", "nan", NULL);
	prom_sample(&b, "cdpilot_ratio", INFINITY, "kind", "inf", NULL);
	prom_sample(&b, "cdpilot_ratio", -INFINITY, "kind", "neginf", NULL);
	prom_sample(&b, "cdpilot_ratio", 0.1, "kind", "tenth", NULL);
	prom_histogram(&b, "cdpilot_task_seconds", "Task duration.", bounds, counts, 4, 12.5, 9);
	s = take(&b);
	rc = promtool_check(s, out, sizeof out);
	if (rc != 0 || out[0])
		fail_msg("promtool check metrics: exit %d: %s\n---\n%s", rc, out, s);
	free(s);

	/* the check can fail: a broken exposition is refused */
	rc = promtool_check("# TYPE x counter\nx{a=\"unterminated} 1\n", out, sizeof out);
	assert_int_not_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prom__help_and_type),
		cmocka_unit_test(test_prom__label_values_escaped),
		cmocka_unit_test(test_prom__values),
		cmocka_unit_test(test_prom__family_one_label),
		cmocka_unit_test(test_prom__histogram_cumulative),
		cmocka_unit_test(test_prom__bad_input_is_sticky),
		cmocka_unit_test(test_prom__cap),
		cmocka_unit_test(test_prom__promtool_accepts_exposition),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
