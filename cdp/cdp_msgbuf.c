/*
 * cdp_msgbuf: websocket fragment reassembly with a hard cap. The buffer grows by doubling
 * up to the cap; a message that would pass the cap is dropped whole and its remaining
 * fragments are skipped, so one oversized message costs only itself.
 */
#include "cdp/cdp_msgbuf.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void cdp_msgbuf_init(cdp_msgbuf_t *mb, size_t cap)
{
	memset(mb, 0, sizeof *mb);
	mb->cap = cap;
}

void cdp_msgbuf_release(cdp_msgbuf_t *mb)
{
	free(mb->data);
	mb->data = NULL;
	mb->len = mb->alloc = 0;
	mb->overflowed = 0;
	mb->dropped = 0;
}

/* Makes room for len + n + 1 bytes (the NUL); -ENOMEM or -EMSGSIZE. */
static int reserve(cdp_msgbuf_t *mb, size_t n)
{
	size_t need, want;
	char *p;

	if (n > mb->cap || mb->len > mb->cap - n)
		return -EMSGSIZE;
	need = mb->len + n + 1;
	if (need <= mb->alloc)
		return 0;
	want = mb->alloc ? mb->alloc : 4096;
	while (want < need)
		want = want > SIZE_MAX / 2 ? need : want * 2;
	if (want > mb->cap + 1)
		want = mb->cap + 1;
	p = realloc(mb->data, want);
	if (!p)
		return -ENOMEM;
	mb->data = p;
	mb->alloc = want;
	return 0;
}

int cdp_msgbuf_feed(cdp_msgbuf_t *mb, const void *frag, size_t n, int final,
                    const char **msg, size_t *len)
{
	int rc;

	*msg = NULL;
	*len = 0;
	if (!mb->overflowed) {
		rc = reserve(mb, n);
		if (rc == 0) {
			if (n)
				memcpy(mb->data + mb->len, frag, n);
			mb->len += n;
			mb->data[mb->len] = '\0';
			if (!final)
				return 0;
			*msg = mb->data;
			*len = mb->len;
			mb->len = 0;
			return 1;
		}
		mb->overflowed = rc; /* -EMSGSIZE or -ENOMEM: skip to the final fragment */
		mb->dropped = mb->len;
		mb->len = 0;
		/* Give back a huge buffer: the next messages will likely be small. */
		if (mb->alloc > 1024 * 1024) {
			free(mb->data);
			mb->data = NULL;
			mb->alloc = 0;
		}
	}
	mb->dropped += n;
	if (!final)
		return 0;
	rc = mb->overflowed;
	*len = mb->dropped;
	mb->overflowed = 0;
	mb->dropped = 0;
	return rc;
}
