/*
 * cdp_msgbuf: reassembles websocket fragments into whole messages under a hard size cap.
 * Pure (no I/O), driven by the transport glue and by unit tests.
 *
 * The caller owns the struct (cdp_msgbuf_init / cdp_msgbuf_release). A message whose size
 * goes over the cap is an error for that message only: its remaining fragments are
 * discarded up to its final fragment, and the next message is assembled normally.
 */
#ifndef CDPILOT_CDP_MSGBUF_H
#define CDPILOT_CDP_MSGBUF_H

#include <stddef.h>

#include "util/growbuf.h"

typedef struct cdp_msgbuf {
	growbuf_t buf;   /* the message being assembled; buf.cap is the largest accepted */
	int delivered;   /* buf holds the message the last call returned; emptied next call */
	int overflowed;  /* current message went over the cap; skipping to its end */
	size_t dropped;  /* bytes seen of the current oversized message */
} cdp_msgbuf_t;

void cdp_msgbuf_init(cdp_msgbuf_t *mb, size_t cap);
void cdp_msgbuf_release(cdp_msgbuf_t *mb);

/*
 * Appends one fragment. Returns:
 *   1          the message is complete: *msg and *len point into the buffer (NUL-terminated),
 *              valid until the next call;
 *   0          more fragments are needed;
 *   -EMSGSIZE  this fragment was the final one of a message over the cap (*len holds the
 *              size it reached); the message is gone, the buffer is ready for the next;
 *   -ENOMEM    allocation failed; the message is dropped as for -EMSGSIZE once final.
 */
int cdp_msgbuf_feed(cdp_msgbuf_t *mb, const void *frag, size_t n, int final,
                    const char **msg, size_t *len);

#endif
