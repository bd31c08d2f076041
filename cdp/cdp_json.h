/*
 * cdp_json: the JSON text of CDP messages, written without jansson's generic stream
 * layers (issue 19 point 5: the controller's own cost). Pure: no I/O, no logging.
 *
 * Writing: cdp_json_write() appends a jansson value as compact JSON, byte for byte what
 * json_dumps(v, JSON_COMPACT) writes (keys in insertion order, raw UTF-8, the same
 * escapes and the same text for reals), into a caller's growbuf, so a command is
 * serialised once, straight into a reused buffer.
 */
#ifndef CDPILOT_CDP_JSON_H
#define CDPILOT_CDP_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "util/growbuf.h"

/*
 * Appends v (borrowed) as compact JSON. Returns 0; -EMSGSIZE when out's cap is reached,
 * -ENOMEM, -EINVAL for a value nested deeper than 2048 (a cycle); on error out holds a
 * partial text the caller discards.
 */
int cdp_json_write(growbuf_t *out, const json_t *v);

/* Appends the n bytes at s (UTF-8, not checked) as a JSON string. Returns as above. */
int cdp_json_write_string(growbuf_t *out, const char *s, size_t n);

#endif
