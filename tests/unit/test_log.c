/*
 * Unit tests for util/log: every message is escaped, so a value from outside with a
 * newline, a CR or an ESC cannot add a log line or drive a terminal, in text and in JSON
 * lines; bytes that are not UTF-8 still give a (valid JSON) line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "util/log.h"

static void check_escape(const char *in, const char *want)
{
	char out[256];

	assert_int_equal(log_escape(in, out, sizeof out), strlen(want));
	assert_string_equal(out, want);
}

static void test_log__escape(void **state)
{
	(void)state;
	check_escape("plain id t-1.x", "plain id t-1.x");
	check_escape("a\nb\rc\td", "a\\nb\\rc\\td");
	check_escape("\x1b[31mred\x7f\x01", "\\x1b[31mred\\x7f\\x01");
	check_escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	             "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	check_escape("bad \xff\xc3 end \xc3", "bad \\xff\\xc3 end \\xc3"); /* cut sequences */
	check_escape("\xc0\xaf \xed\xa0\x80",
	             "\\xc0\\xaf \\xed\\xa0\\x80"); /* overlong, surrogate */
	check_escape("csi \xc2\x9b"
	             "2J",
	             "csi \\u009b2J"); /* C1 control */
	check_escape("back\\slash", "back\\slash");
}

static void test_log__escape_cut(void **state)
{
	char out[6];

	(void)state;
	/* never half an escape or half a character */
	assert_int_equal(log_escape("abcd\n", out, sizeof out), 4);
	assert_string_equal(out, "abcd");
	assert_int_equal(log_escape("abc\xc3\xa9\xc3\xa9", out, sizeof out), 5);
	assert_string_equal(out, "abc\xc3\xa9");
	assert_int_equal(log_escape("x", out, 1), 0);
	assert_string_equal(out, "");
}

/* What log_msg writes to stderr for one event with a hostile value. */
static char *capture(enum log_format fmt, const char *value)
{
	char path[] = "/tmp/cdpilot-test-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	static char buf[8192];
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	fflush(stderr);
	assert_int_equal(dup2(fd, 2), 2);
	log_set_format(fmt);
	log_warn("test", "target %s refused:\n%s", value, "second line");
	fflush(stderr);
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	n = pread(fd, buf, sizeof buf - 1, 0);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	log_set_format(LOG_TEXT);
	return buf;
}

static void test_log__one_line_per_event(void **state)
{
	const char *forged = "x\n2030-01-01T00:00:00.000Z error run forged\r\x1b[2J\xff";
	char *line, *nl;
	json_t *o;

	(void)state;
	line = capture(LOG_TEXT, forged);
	nl = strchr(line, '\n');
	assert_non_null(nl);
	assert_int_equal(nl[1], '\0'); /* one line, ended by its own newline */
	assert_non_null(strstr(line, "target x\\n2030-01-01T00:00:00.000Z error run forged"
	                             "\\r\\x1b[2J\\xff refused:\\nsecond line"));
	assert_null(strchr(line, '\r'));
	assert_null(strchr(line, '\x1b'));

	line = capture(LOG_JSON, forged);
	nl = strchr(line, '\n');
	assert_non_null(nl);
	assert_int_equal(nl[1], '\0');
	o = json_loads(line, 0, NULL); /* the 0xff byte no longer loses the line */
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "msg")),
	                    "target x\\n2030-01-01T00:00:00.000Z error run forged\\r\\x1b[2J\\xff "
	                    "refused:\\nsecond line");
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log__escape),
		cmocka_unit_test(test_log__escape_cut),
		cmocka_unit_test(test_log__one_line_per_event),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
