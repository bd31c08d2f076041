/* Unit tests for util/list.h: unlinking from the head, middle and tail, and a missing node. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/list.h"

typedef struct node {
	int v;
	struct node *next, *prev;
} node_t;

static node_t *link3(node_t n[3])
{
	for (int i = 0; i < 3; i++) {
		n[i].v = i;
		n[i].next = i < 2 ? &n[i + 1] : NULL;
		n[i].prev = i > 0 ? &n[i - 1] : NULL;
	}
	return &n[0];
}

static void test_list__unlink_singly(void **state)
{
	node_t n[3], other = { 9, NULL, NULL };
	node_t *head = link3(n);

	(void)state;
	LIST_UNLINK(&head, &n[1], next);
	assert_ptr_equal(head, &n[0]);
	assert_ptr_equal(n[0].next, &n[2]);
	LIST_UNLINK(&head, &other, next); /* not on the list: nothing changes */
	assert_ptr_equal(head, &n[0]);
	assert_ptr_equal(n[0].next, &n[2]);
	LIST_UNLINK(&head, &n[0], next);
	assert_ptr_equal(head, &n[2]);
	LIST_UNLINK(&head, &n[2], next);
	assert_null(head);
	LIST_UNLINK(&head, &n[2], next); /* empty list */
	assert_null(head);
}

static void test_list__unlink_doubly(void **state)
{
	node_t n[3];
	node_t *head = link3(n);

	(void)state;
	DLIST_UNLINK(&head, &n[1], prev, next);
	assert_ptr_equal(n[0].next, &n[2]);
	assert_ptr_equal(n[2].prev, &n[0]);
	assert_null(n[1].next);
	assert_null(n[1].prev);
	DLIST_UNLINK(&head, &n[0], prev, next);
	assert_ptr_equal(head, &n[2]);
	assert_null(n[2].prev);
	DLIST_UNLINK(&head, &n[2], prev, next);
	assert_null(head);
}

static void test_list__unlink_doubly_with_tail(void **state)
{
	node_t n[3];
	node_t *head = link3(n), *tail = &n[2];

	(void)state;
	DLIST_UNLINK_TAIL(&head, &tail, &n[2], prev, next);
	assert_ptr_equal(tail, &n[1]);
	assert_null(n[1].next);
	DLIST_UNLINK_TAIL(&head, &tail, &n[0], prev, next);
	assert_ptr_equal(head, &n[1]);
	assert_ptr_equal(tail, &n[1]);
	DLIST_UNLINK_TAIL(&head, &tail, &n[1], prev, next);
	assert_null(head);
	assert_null(tail);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list__unlink_singly),
		cmocka_unit_test(test_list__unlink_doubly),
		cmocka_unit_test(test_list__unlink_doubly_with_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
