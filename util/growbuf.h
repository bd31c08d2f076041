/*
 * growbuf: a growing byte buffer with a hard cap, the one helper behind every buffer that
 * collects bytes of unknown total size (websocket messages in cdp_msgbuf, HTTP reply
 * bodies in httpd, the Prometheus text in prom, fetched bodies in fetch). Going over the
 * cap is an error for the caller to report, never a bigger allocation (see "Out of
 * memory" in docs/architecture.md). Pure: no I/O, no loop, no logging.
 *
 * Ownership: growbuf_t is caller storage: growbuf_init() -> growbuf_append()... ->
 * growbuf_steal() (the caller now owns the bytes) or growbuf_release() (freed). The
 * fields are for reading; only the functions below change them.
 *
 * Cap: len never exceeds cap; an append that would pass it fails with -EMSGSIZE. A buffer
 * of exactly cap bytes is accepted. The allocation never exceeds cap + 1 (the NUL).
 *
 * Errors are not sticky: a failed append (-EMSGSIZE over the cap, -ENOMEM when the
 * allocation fails) leaves the buffer exactly as it was, its bytes still valid; callers
 * that want "write everything, check once" keep their own first error.
 *
 * NUL: after every successful append (also of 0 bytes) data is non-NULL and data[len] is
 * '\0', so text can be used as a C string. growbuf_attach() is the one exception (see
 * there).
 */
#ifndef CDPILOT_UTIL_GROWBUF_H
#define CDPILOT_UTIL_GROWBUF_H

#include <stddef.h>

typedef struct growbuf {
	char *data;   /* NULL until the first append (or attach) */
	size_t len;   /* bytes stored, at most cap */
	size_t alloc; /* bytes allocated at data; data[len] == '\0' whenever alloc > len */
	size_t cap;   /* hard cap on len, fixed at init */
} growbuf_t;

/* Empty buffer, nothing allocated. cap is lowered to SIZE_MAX - 1 if larger. */
void growbuf_init(growbuf_t *gb, size_t cap);

/* Frees the bytes; the buffer is empty again with the same cap. Safe on a buffer that
 * never allocated, and twice. */
void growbuf_release(growbuf_t *gb);

/* len 0, the allocation kept for the next content (data[0] becomes '\0'). */
void growbuf_reset(growbuf_t *gb);

/*
 * Appends n bytes of data (data may be NULL when n is 0). Grows by doubling, from 1 KiB,
 * up to cap + 1 bytes. Returns 0, -EMSGSIZE if len + n would exceed cap, or -ENOMEM; on
 * error nothing is appended and the buffer is unchanged.
 */
int growbuf_append(growbuf_t *gb, const void *data, size_t n);

/*
 * Hands the bytes to the caller (free() them) and leaves the buffer empty with the same
 * cap. *len gets the length. Returns NULL, with *len 0, when nothing was ever appended;
 * otherwise the result is NUL-terminated as described above. Never fails.
 */
char *growbuf_steal(growbuf_t *gb, size_t *len);

/*
 * Replaces the content with buf, a malloc'd block of at least len bytes that the buffer
 * now owns (buf may be NULL: empty). Over the cap buf is freed, the buffer is left empty
 * and -EMSGSIZE returned; otherwise 0. No copy is made: data is buf as given, so it is
 * NUL-terminated only if buf was, until the next append (which reallocates).
 */
int growbuf_attach(growbuf_t *gb, char *buf, size_t len);

#endif
