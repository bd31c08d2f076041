/*
 * epmap: the mapping of an adaptive target (docs/targets.md, "adaptive") from a JSON
 * endpoint's body to the target's snapshot data. Pure: no I/O, no loop.
 *
 * Learning (epmap_learn): every scalar leaf of the data a page read produced (strings,
 * numbers, booleans, nulls, inside objects and arrays) is looked for among the leaves of
 * the body; a leaf matches one of the same value (a string "2" and the number 2 match
 * each other, so that text read from the page matches the number it was rendered from).
 * Where a value sits in several places, the place whose keys end like the data field's
 * (the body's "/score/home" for the data's "/home", over "/events/1/minute") wins, then
 * the place under fewer array indexes, then the shorter path; places still alike make the
 * field ambiguous and the mapping is refused.
 *
 * Reading (epmap_read): the data is rebuilt from a body with the learned places, each
 * value converted to the type the page's data had (the number 2 becomes "2" where the page
 * read text).
 *
 * A mapping is a JSON object (it is shown in /status as is):
 *   {"template": DATA, "fields": [{"at": "/score/home", "from": "/score/home",
 *                                  "as": "integer"}, ...]}
 * paths are JSON pointers (RFC 6901; array elements by index).
 *
 * Ownership: arguments are borrowed for the call; returned json_t are new references.
 * Out of memory: -ENOMEM / NULL, never abort.
 */
#ifndef CDPILOT_ADAPTERS_EPMAP_H
#define CDPILOT_ADAPTERS_EPMAP_H

#include <jansson.h>
#include <stddef.h>

/* The most leaves of a body searched (a bigger body is refused: -E2BIG) and of data. */
#define EPMAP_BODY_LEAVES_MAX 20000
#define EPMAP_DATA_LEAVES_MAX 256
/* A value's path (a JSON pointer) is shorter than this, in the data and in a body. */
#define EPMAP_PTR_MAX 1024

/*
 * Learns where each leaf of data (an object) sits in body. Returns 0 and *map (new
 * reference), or an error with why filled naming the field, its value and what was found:
 * -ENOENT a field is in no place of the body, -EEXIST a field is ambiguous (it names the
 * places), -E2BIG too many leaves or a path of EPMAP_PTR_MAX bytes or more, -EINVAL data
 * not an object or with no scalar in it, -ENOMEM.
 */
int epmap_learn(const json_t *data, const json_t *body, json_t **map, char *why, size_t len);

/*
 * The data a body gives through map: 0 and *data (new reference), or -ENOENT (a place is
 * missing from the body), -EINVAL (a value cannot be converted to the field's type, or map
 * is malformed) or -ENOMEM, with why filled.
 */
int epmap_read(const json_t *map, const json_t *body, json_t **data, char *why, size_t len);

/*
 * The first leaf where two data objects differ, as `field "/F": A against B` into out
 * (empty when they are equal). For the log and /status when a check disagrees.
 */
void epmap_diff(const json_t *a, const json_t *b, char *out, size_t len);

#endif
