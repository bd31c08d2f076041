/*
 * sink: the JSON-lines result sink (`--output FILE`, or `-` for stdout). Each snapshot
 * and each delta is one line: {"type":"snapshot",...} / {"type":"delta",...}.
 *
 * Writes never block the loop: lines are queued and written with uv_fs_write (libuv's
 * thread pool), one write in flight at a time. The queue is capped (SINK_QUEUE_MAX bytes);
 * past the cap the oldest queued lines are dropped and counted, so a stuck reader costs
 * bounded memory. A write error is logged once per kind and counted; the sink keeps going.
 *
 * sink_t is a handle: sink_open() -> sink_put()... -> sink_close(cb), which flushes what
 * is queued (or gives up after a write error) and fires cb once from the loop.
 */
#ifndef CDPILOT_DAEMON_SINK_H
#define CDPILOT_DAEMON_SINK_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#define SINK_QUEUE_MAX (32u * 1024 * 1024)

typedef struct sink sink_t;

typedef struct sink_stats {
	uint64_t lines, bytes, dropped, write_errors;
	size_t queued_bytes;
} sink_stats_t;

/* path "-" is stdout (not closed at the end); a file is created or appended to (0644).
 * NULL and errno-style *err on failure (the path could not be opened). */
sink_t *sink_open(uv_loop_t *loop, const char *path, int *err);
/* type is "snapshot" or "delta"; doc is borrowed (serialised at once, compact, with
 * "type" added first). */
void sink_put(sink_t *s, const char *type, const json_t *doc);
void sink_get_stats(const sink_t *s, sink_stats_t *out);
void sink_close(sink_t *s, void (*cb)(void *ud), void *ud);

#endif
