/*
 * cdp_msgbuf: websocket fragment reassembly with a hard cap, on a growbuf (which grows by
 * doubling up to the cap). A message that would pass the cap is dropped whole and its
 * remaining fragments are skipped, so one oversized message costs only itself.
 */
#include "cdp/cdp_msgbuf.h"

#include <errno.h>
#include <string.h>

void cdp_msgbuf_init(cdp_msgbuf_t *mb, size_t cap)
{
	memset(mb, 0, sizeof *mb);
	growbuf_init(&mb->buf, cap);
}

void cdp_msgbuf_release(cdp_msgbuf_t *mb)
{
	growbuf_release(&mb->buf);
	mb->delivered = 0;
	mb->overflowed = 0;
	mb->dropped = 0;
}

int cdp_msgbuf_feed(cdp_msgbuf_t *mb, const void *frag, size_t n, int final,
                    const char **msg, size_t *len)
{
	int rc;

	*msg = NULL;
	*len = 0;
	if (mb->delivered) {
		/* The message returned last time was valid until this call. */
		growbuf_reset(&mb->buf);
		mb->delivered = 0;
	}
	if (!mb->overflowed) {
		rc = growbuf_append(&mb->buf, frag, n);
		if (rc == 0) {
			if (!final)
				return 0;
			*msg = mb->buf.data;
			*len = mb->buf.len;
			mb->delivered = 1;
			return 1;
		}
		mb->overflowed = rc; /* -EMSGSIZE or -ENOMEM: skip to the final fragment */
		mb->dropped = mb->buf.len;
		/* Give back a huge buffer: the next messages will likely be small. */
		if (mb->buf.alloc > 1024 * 1024)
			growbuf_release(&mb->buf);
		else
			growbuf_reset(&mb->buf);
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
