/*
 * list: unlinking a node from the intrusive lists cdpilot keeps in its structs (a "next"
 * field, or "prev" and "next" fields, named by the caller), written once instead of once per
 * list. Nothing is allocated or freed: the node stays owned by the caller, who may free it
 * after the macro. Field names are arguments, so one struct can sit on several lists.
 * The macros evaluate their arguments more than once: pass plain lvalues, not calls.
 */
#ifndef CDPILOT_UTIL_LIST_H
#define CDPILOT_UTIL_LIST_H

#include <stddef.h>

/* Singly linked: walks from *headp to node and unlinks it; a node not on the list is left
 * alone (no error). node->field is not cleared. */
#define LIST_UNLINK(headp, node, field)                                      \
	do {                                                                 \
		__typeof__(node) *list_pp_ = (headp);                        \
		while (*list_pp_ && *list_pp_ != (node))                     \
			list_pp_ = &(*list_pp_)->field;                      \
		if (*list_pp_)                                               \
			*list_pp_ = (node)->field;                           \
	} while (0)

/* Doubly linked with a head pointer: unlinks node (which must be on the list) in O(1) and
 * clears its prev and next fields. */
#define DLIST_UNLINK(headp, node, prev, next)                 \
	do {                                                  \
		if ((node)->prev)                             \
			(node)->prev->next = (node)->next;    \
		else                                          \
			*(headp) = (node)->next;              \
		if ((node)->next)                             \
			(node)->next->prev = (node)->prev;    \
		(node)->prev = (node)->next = NULL;           \
	} while (0)

/* Appends node to a doubly linked list with head and tail pointers. */
#define DLIST_PUSH_TAIL(headp, tailp, node, prev, next)       \
	do {                                                  \
		(node)->next = NULL;                          \
		(node)->prev = *(tailp);                      \
		if (*(tailp))                                 \
			(*(tailp))->next = (node);            \
		else                                          \
			*(headp) = (node);                    \
		*(tailp) = (node);                            \
	} while (0)

/* The same for a list that also keeps a tail pointer. */
#define DLIST_UNLINK_TAIL(headp, tailp, node, prev, next)     \
	do {                                                  \
		if ((node)->prev)                             \
			(node)->prev->next = (node)->next;    \
		else                                          \
			*(headp) = (node)->next;              \
		if ((node)->next)                             \
			(node)->next->prev = (node)->prev;    \
		else                                          \
			*(tailp) = (node)->prev;              \
		(node)->prev = (node)->next = NULL;           \
	} while (0)

#endif
