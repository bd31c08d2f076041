/*
 * Unit tests for growbuf: growth across many appends, the cap (reached and exactly met),
 * failed appends leaving the buffer as it was, reset, steal, attach, and release of a
 * buffer that never allocated.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/growbuf.h"

static void test_growbuf__growth_keeps_content(void **state)
{
	growbuf_t gb;
	char big[50000];

	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)('a' + i % 26);
	growbuf_init(&gb, 1 << 20);
	/* 50 appends of 1000 bytes: the allocation doubles several times under them */
	for (int i = 0; i < 50; i++) {
		assert_int_equal(growbuf_append(&gb, big + i * 1000, 1000), 0);
		assert_int_equal(gb.len, (size_t)(i + 1) * 1000);
		assert_true(gb.alloc > gb.len);
		assert_int_equal(gb.data[gb.len], '\0');
	}
	assert_memory_equal(gb.data, big, sizeof big);
	growbuf_release(&gb);
}

static void test_growbuf__cap_reached(void **state)
{
	growbuf_t gb;

	growbuf_init(&gb, 10);
	assert_int_equal(growbuf_append(&gb, "0123456", 7), 0);
	/* 7 + 4 > 10: refused whole, the buffer as it was */
	assert_int_equal(growbuf_append(&gb, "789X", 4), -EMSGSIZE);
	assert_int_equal(gb.len, 7);
	assert_string_equal(gb.data, "0123456");
	/* a smaller append still fits afterwards: the error is not sticky */
	assert_int_equal(growbuf_append(&gb, "78", 2), 0);
	assert_string_equal(gb.data, "012345678");
	/* a single append over the cap on an empty buffer allocates nothing */
	growbuf_release(&gb);
	assert_int_equal(growbuf_append(&gb, "0123456789X", 11), -EMSGSIZE);
	assert_null(gb.data);
	assert_int_equal(gb.len, 0);
	growbuf_release(&gb);
}

static void test_growbuf__exact_cap(void **state)
{
	growbuf_t gb;

	growbuf_init(&gb, 10);
	assert_int_equal(growbuf_append(&gb, "01234", 5), 0);
	assert_int_equal(growbuf_append(&gb, "56789", 5), 0);
	assert_string_equal(gb.data, "0123456789");
	assert_int_equal(gb.alloc, 11); /* never more than cap + 1 */
	/* full: even one byte more is refused, an empty append is not */
	assert_int_equal(growbuf_append(&gb, "X", 1), -EMSGSIZE);
	assert_int_equal(growbuf_append(&gb, NULL, 0), 0);
	assert_int_equal(gb.len, 10);
	growbuf_release(&gb);
}

static void test_growbuf__empty_append_allocates(void **state)
{
	growbuf_t gb;

	growbuf_init(&gb, 0);
	assert_int_equal(growbuf_append(&gb, "", 0), 0);
	assert_non_null(gb.data);
	assert_string_equal(gb.data, "");
	assert_int_equal(growbuf_append(&gb, "x", 1), -EMSGSIZE);
	growbuf_release(&gb);
}

static void test_growbuf__reset_keeps_allocation(void **state)
{
	growbuf_t gb;
	char *before;
	size_t alloc;

	growbuf_init(&gb, 100);
	growbuf_reset(&gb); /* nothing allocated yet: a no-op */
	assert_null(gb.data);
	assert_int_equal(growbuf_append(&gb, "hello", 5), 0);
	before = gb.data;
	alloc = gb.alloc;
	growbuf_reset(&gb);
	assert_int_equal(gb.len, 0);
	assert_ptr_equal(gb.data, before);
	assert_int_equal(gb.alloc, alloc);
	assert_string_equal(gb.data, "");
	assert_int_equal(growbuf_append(&gb, "again", 5), 0);
	assert_string_equal(gb.data, "again");
	growbuf_release(&gb);
}

static void test_growbuf__release_of_empty(void **state)
{
	growbuf_t gb;

	growbuf_init(&gb, 100);
	growbuf_release(&gb);
	growbuf_release(&gb); /* twice is fine */
	assert_null(gb.data);
	assert_int_equal(gb.len, 0);
	assert_int_equal(gb.alloc, 0);
	assert_int_equal(gb.cap, 100); /* the cap survives */
	assert_int_equal(growbuf_append(&gb, "ok", 2), 0);
	growbuf_release(&gb);
}

static void test_growbuf__steal(void **state)
{
	growbuf_t gb;
	size_t len = 99;
	char *s;

	growbuf_init(&gb, 100);
	assert_null(growbuf_steal(&gb, &len));
	assert_int_equal(len, 0);
	assert_int_equal(growbuf_append(&gb, "abc", 3), 0);
	s = growbuf_steal(&gb, &len);
	assert_string_equal(s, "abc");
	assert_int_equal(len, 3);
	assert_null(gb.data);
	assert_int_equal(gb.len, 0);
	free(s);
	growbuf_release(&gb);
}

static void test_growbuf__attach(void **state)
{
	growbuf_t gb;
	char *s;

	growbuf_init(&gb, 10);
	assert_int_equal(growbuf_append(&gb, "old", 3), 0);
	s = strdup("hello");
	assert_int_equal(growbuf_attach(&gb, s, 5), 0);
	assert_ptr_equal(gb.data, s);
	assert_int_equal(gb.len, 5);
	/* appending after an attach reallocates and terminates */
	assert_int_equal(growbuf_append(&gb, "12345", 5), 0);
	assert_string_equal(gb.data, "hello12345");
	/* over the cap: the handed-over block is freed (ASan would see a leak), buffer empty */
	assert_int_equal(growbuf_attach(&gb, strdup("0123456789X"), 11), -EMSGSIZE);
	assert_null(gb.data);
	assert_int_equal(gb.len, 0);
	/* NULL: empty */
	assert_int_equal(growbuf_attach(&gb, NULL, 7), 0);
	assert_int_equal(gb.len, 0);
	growbuf_release(&gb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_growbuf__growth_keeps_content),
		cmocka_unit_test(test_growbuf__cap_reached),
		cmocka_unit_test(test_growbuf__exact_cap),
		cmocka_unit_test(test_growbuf__empty_append_allocates),
		cmocka_unit_test(test_growbuf__reset_keeps_allocation),
		cmocka_unit_test(test_growbuf__release_of_empty),
		cmocka_unit_test(test_growbuf__steal),
		cmocka_unit_test(test_growbuf__attach),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
