/*
 * errlist: collects every validation error of one pass (config, targets file, adapter
 * parameters) so the user sees them all at once, one per line.
 *
 * errlist_t is caller storage: errlist_init() -> errlist_add()... -> errlist_release().
 * The text is capped (ERRLIST_MAX bytes); past the cap further errors are counted but not
 * stored (see dropped). Out of memory aborts (daemon plumbing).
 */
#ifndef CDPILOT_UTIL_ERRLIST_H
#define CDPILOT_UTIL_ERRLIST_H

#include <stddef.h>

#define ERRLIST_MAX (64 * 1024)

typedef struct errlist {
	char *text;      /* "" when empty; lines separated by '\n', no trailing newline */
	size_t len;
	unsigned count;  /* errors added, stored or not */
	unsigned dropped;
} errlist_t;

void errlist_init(errlist_t *e);
void errlist_release(errlist_t *e);
/* Appends one error line (printf format; a trailing newline in it is dropped). */
void errlist_add(errlist_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The collected text, never NULL. */
const char *errlist_text(const errlist_t *e);

#endif
