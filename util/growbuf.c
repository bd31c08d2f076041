/*
 * growbuf: a capped growing byte buffer. See growbuf.h for the contract.
 */
#include "util/growbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GROWBUF_FIRST_ALLOC 1024

void growbuf_init(growbuf_t *gb, size_t cap)
{
	memset(gb, 0, sizeof *gb);
	/* cap + 1 (the NUL) must not wrap. */
	gb->cap = cap < SIZE_MAX ? cap : SIZE_MAX - 1;
}

void growbuf_release(growbuf_t *gb)
{
	free(gb->data);
	gb->data = NULL;
	gb->len = gb->alloc = 0;
}

void growbuf_reset(growbuf_t *gb)
{
	gb->len = 0;
	if (gb->alloc > 0)
		gb->data[0] = '\0';
}

/* Makes alloc at least need (need <= cap + 1); 0 or -ENOMEM, unchanged on error. */
static int grow(growbuf_t *gb, size_t need)
{
	size_t want = gb->alloc ? gb->alloc : GROWBUF_FIRST_ALLOC;
	char *p;

	while (want < need)
		want = want > SIZE_MAX / 2 ? need : want * 2;
	if (want > gb->cap + 1)
		want = gb->cap + 1;
	p = realloc(gb->data, want);
	if (!p)
		return -ENOMEM;
	gb->data = p;
	gb->alloc = want;
	return 0;
}

int growbuf_append(growbuf_t *gb, const void *data, size_t n)
{
	int rc;

	if (n > gb->cap - gb->len)
		return -EMSGSIZE;
	if (gb->len + n + 1 > gb->alloc) {
		rc = grow(gb, gb->len + n + 1);
		if (rc)
			return rc;
	}
	if (n)
		memcpy(gb->data + gb->len, data, n);
	gb->len += n;
	gb->data[gb->len] = '\0';
	return 0;
}

char *growbuf_steal(growbuf_t *gb, size_t *len)
{
	char *out = gb->data;

	*len = gb->len;
	gb->data = NULL;
	gb->len = gb->alloc = 0;
	return out;
}

int growbuf_attach(growbuf_t *gb, char *buf, size_t len)
{
	growbuf_release(gb);
	if (len > gb->cap) {
		free(buf);
		return -EMSGSIZE;
	}
	gb->data = buf;
	gb->len = buf ? len : 0;
	gb->alloc = gb->len;
	return 0;
}
