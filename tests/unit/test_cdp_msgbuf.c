/* Unit tests for cdp_msgbuf: fragment reassembly and the per-message size cap. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cdp/cdp_msgbuf.h"

static void test_cdp_msgbuf__single_fragment(void **state)
{
	cdp_msgbuf_t mb;
	const char *msg;
	size_t len;

	cdp_msgbuf_init(&mb, 100);
	assert_int_equal(cdp_msgbuf_feed(&mb, "{\"a\":1}", 7, 1, &msg, &len), 1);
	assert_int_equal(len, 7);
	assert_string_equal(msg, "{\"a\":1}");
	cdp_msgbuf_release(&mb);
}

static void test_cdp_msgbuf__many_fragments(void **state)
{
	cdp_msgbuf_t mb;
	const char *msg;
	size_t len;
	char big[20000];

	memset(big, 'y', sizeof big);
	cdp_msgbuf_init(&mb, 1 << 20);
	/* 20 fragments of 1000 bytes, the buffer must grow across them */
	for (int i = 0; i < 19; i++) {
		assert_int_equal(cdp_msgbuf_feed(&mb, big + i * 1000, 1000, 0, &msg, &len), 0);
		assert_null(msg);
	}
	assert_int_equal(cdp_msgbuf_feed(&mb, big + 19000, 1000, 1, &msg, &len), 1);
	assert_int_equal(len, sizeof big);
	assert_memory_equal(msg, big, sizeof big);
	assert_int_equal(msg[len], '\0');
	/* the next message starts fresh */
	assert_int_equal(cdp_msgbuf_feed(&mb, "ab", 2, 0, &msg, &len), 0);
	assert_int_equal(cdp_msgbuf_feed(&mb, "c", 1, 1, &msg, &len), 1);
	assert_string_equal(msg, "abc");
	cdp_msgbuf_release(&mb);
}

static void test_cdp_msgbuf__exactly_at_cap(void **state)
{
	cdp_msgbuf_t mb;
	const char *msg;
	size_t len;

	cdp_msgbuf_init(&mb, 10);
	assert_int_equal(cdp_msgbuf_feed(&mb, "01234", 5, 0, &msg, &len), 0);
	assert_int_equal(cdp_msgbuf_feed(&mb, "56789", 5, 1, &msg, &len), 1);
	assert_string_equal(msg, "0123456789");
	cdp_msgbuf_release(&mb);
}

static void test_cdp_msgbuf__over_cap_drops_only_that_message(void **state)
{
	cdp_msgbuf_t mb;
	const char *msg;
	size_t len;

	cdp_msgbuf_init(&mb, 10);
	assert_int_equal(cdp_msgbuf_feed(&mb, "0123456", 7, 0, &msg, &len), 0);
	/* crosses the cap in the second fragment: nothing yet, we wait for the final one */
	assert_int_equal(cdp_msgbuf_feed(&mb, "7890", 4, 0, &msg, &len), 0);
	assert_int_equal(cdp_msgbuf_feed(&mb, "abcdef", 6, 0, &msg, &len), 0);
	assert_int_equal(cdp_msgbuf_feed(&mb, "g", 1, 1, &msg, &len), -EMSGSIZE);
	assert_null(msg);
	assert_int_equal(len, 18); /* the size the message reached */
	/* the next message is fine */
	assert_int_equal(cdp_msgbuf_feed(&mb, "ok", 2, 1, &msg, &len), 1);
	assert_string_equal(msg, "ok");
	/* a single oversized final fragment */
	assert_int_equal(cdp_msgbuf_feed(&mb, "0123456789X", 11, 1, &msg, &len), -EMSGSIZE);
	assert_int_equal(len, 11);
	assert_int_equal(cdp_msgbuf_feed(&mb, "again", 5, 1, &msg, &len), 1);
	assert_string_equal(msg, "again");
	cdp_msgbuf_release(&mb);
}

static void test_cdp_msgbuf__empty_message(void **state)
{
	cdp_msgbuf_t mb;
	const char *msg;
	size_t len;

	cdp_msgbuf_init(&mb, 10);
	assert_int_equal(cdp_msgbuf_feed(&mb, "", 0, 1, &msg, &len), 1);
	assert_int_equal(len, 0);
	assert_string_equal(msg, "");
	cdp_msgbuf_release(&mb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cdp_msgbuf__single_fragment),
		cmocka_unit_test(test_cdp_msgbuf__many_fragments),
		cmocka_unit_test(test_cdp_msgbuf__exactly_at_cap),
		cmocka_unit_test(test_cdp_msgbuf__over_cap_drops_only_that_message),
		cmocka_unit_test(test_cdp_msgbuf__empty_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
