/*
 * cdp_json: the JSON text of CDP messages, written and read without jansson's generic
 * stream layers (issue 19 point 5: the controller's own cost). Pure: no I/O, no logging.
 *
 * Writing: cdp_json_write() appends a jansson value as compact JSON, byte for byte what
 * json_dumps(v, JSON_COMPACT) writes (keys in insertion order, raw UTF-8, the same
 * escapes and the same text for reals), into a caller's growbuf, so a command is
 * serialised once, straight into a reused buffer.
 *
 * Reading: cdp_json_parse() is a fast path, not a second authority. It builds the same tree
 * as json_loadb(data, len, JSON_REJECT_DUPLICATES) for the JSON Chromium sends, or returns
 * NULL for anything outside what it handles, well-formed or not (a top level that is not
 * an object, invalid UTF-8, \u0000, a lone surrogate, a duplicate key, an integer out of
 * range, nesting deeper than CDP_JSON_MAX_DEPTH, trailing bytes...): the caller then
 * parses the text with jansson, whose error message names what is wrong. Either way, no
 * input crashes it or leaks.
 */
#ifndef CDPILOT_CDP_JSON_H
#define CDPILOT_CDP_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "util/growbuf.h"

#define CDP_JSON_MAX_DEPTH 64

/*
 * Appends v (borrowed) as compact JSON. Returns 0; -EMSGSIZE when out's cap is reached,
 * -ENOMEM, -EINVAL for a value nested deeper than 2048 (a cycle); on error out holds a
 * partial text the caller discards.
 */
int cdp_json_write(growbuf_t *out, const json_t *v);

/* Appends the n bytes at s (UTF-8, not checked) as a JSON string. Returns as above. */
int cdp_json_write_string(growbuf_t *out, const char *s, size_t n);

/* Appends v in decimal, as json_dumps writes an integer. Returns as above. */
int cdp_json_write_int(growbuf_t *out, json_int_t v);

/* Whether the n bytes at s are valid UTF-8 by jansson's rules (what json_string checks). */
int cdp_json_utf8_valid(const char *s, size_t n);

/* A new reference to the object the len bytes at data hold, or NULL: see above. */
json_t *cdp_json_parse(const char *data, size_t len);

/*
 * Peeks at params.key (a member of the message's top-level "params" object) in the len
 * bytes at data without building anything, to drop events no listener wants by a
 * parameter. Returns 1 with *val and *vlen naming the value's bytes in data when it is a
 * string without escapes; 0 when "params" has no such member or it is not a string (or
 * there is no "params"); -1 when the skim cannot tell (an escape in the value or in a key,
 * "params" that is not an object, text it cannot walk): the caller then parses in full.
 * It walks the structure without checking all of it: text it takes for an object may
 * still be malformed.
 */
int cdp_json_peek_param(const char *data, size_t len, const char *key, const char **val,
                        size_t *vlen);

#endif
