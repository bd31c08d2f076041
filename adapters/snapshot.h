/*
 * snapshot: the JSON documents cdpilot publishes for each successful scrape, and the
 * delta between two consecutive snapshots of one target. Pure functions on jansson values.
 *
 * A snapshot:
 *   {"target": "m1", "adapter": "livescore", "url": "http://...", "seq": 12,
 *    "scraped_at": "2026-11-23T14:17:32.123Z", "duration_ms": 412, "class": "live",
 *    "changed_at": "2026-11-23T14:17:20.004Z", "verified_at": "2026-11-23T14:17:32.123Z",
 *    "data": {...}}
 * (changed_at and verified_at are added by snapshot_set_ages(): the daemon's snapshots
 * carry them, see docs/redis.md)
 * A delta (only emitted when data differs):
 *   {"target": "m1", "seq": 12, "prev_seq": 11, "scraped_at": "...",
 *    "added":   [{"path": "/score/away", "value": 3}],
 *    "changed": [{"path": "/overs", "from": "12.3", "to": "12.4"}],
 *    "removed": [{"path": "/note", "value": "rain"}]}
 * Paths are JSON pointers (RFC 6901) into data. Objects are compared key by key, nested
 * objects included; arrays element by element (index paths; a longer array adds, a
 * shorter one removes its tail); a value whose JSON type changed is "changed" as a whole.
 *
 * Ownership: arguments are borrowed unless the name says "stolen"; results are new
 * references. NULL on out of memory (never abort).
 */
#ifndef CDPILOT_ADAPTERS_SNAPSHOT_H
#define CDPILOT_ADAPTERS_SNAPSHOT_H

#include <jansson.h>
#include <stdint.h>

#include "util/sched_class.h"

/* data is stolen (even on failure). scraped_at_ms is Unix time in milliseconds. */
json_t *snapshot_new(const char *target, const char *adapter, const char *url, uint64_t seq,
                     int64_t scraped_at_ms, uint32_t duration_ms, enum sched_class klass,
                     json_t *data);

/* Adds the snapshot's two other ages: "changed_at" (when its data last changed) and
 * "verified_at" (the last read known to reflect the source; null when none), both Unix
 * milliseconds formatted as scraped_at (0: null). Returns 0 or -ENOMEM. */
int snapshot_set_ages(json_t *snap, int64_t changed_at_ms, int64_t verified_at_ms);

/* The delta from prev to next (two snapshots of one target); prev NULL: everything in
 * next's data is "added" and prev_seq is 0. *out is set to NULL when the data are equal
 * (no delta). Returns 0, -EINVAL (not snapshots) or -ENOMEM. */
int snapshot_delta(const json_t *prev, const json_t *next, json_t **out);

/* Delta lists between two arbitrary data values (added/changed/removed arrays filled;
 * each must be an empty array on entry). For tests and the store's resync. */
int snapshot_diff(const json_t *from, const json_t *to, json_t *added, json_t *changed,
                  json_t *removed);

/* Formats Unix milliseconds as RFC 3339 UTC with milliseconds ("...T14:17:32.123Z"). */
void snapshot_format_time(int64_t unix_ms, char out[32]);

#endif
