/*
 * adapter_util: small pure helpers shared by the built-in adapters, the snapshot code and
 * the targets parser: JSON pointers (RFC 6901), "did you mean" suggestions, quoting a
 * value for an error message, name-table lookups, and what the generic and jsonapi
 * adapters share: the "fields" table walk and the "classify" block (a field's value -> a
 * class). No I/O, no state; out of memory is -ENOMEM or NULL, never abort.
 */
#ifndef CDPILOT_ADAPTERS_ADAPTER_UTIL_H
#define CDPILOT_ADAPTERS_ADAPTER_UTIL_H

#include <jansson.h>
#include <stddef.h>

#include "util/errlist.h"
#include "util/sched_class.h"

/* Levenshtein distance between a and b (bytes), capped at 255. */
unsigned adapter_util_distance(const char *a, const char *b);

/* The candidate closest to word (NULL-terminated list), or NULL when none is close
 * enough to be a likely typo (distance <= 2, and less than half of word's length). */
const char *adapter_util_closest(const char *word, const char *const *candidates);

/* Every key of the object obj that is not in known (NULL-terminated) is an error
 * `where: "path": unknown key "k" (did you mean "x"?)`. Returns 0 or -EINVAL. */
int adapter_util_unknown_keys(const json_t *obj, const char *const *known, const char *where,
                              const char *path, errlist_t *errs);

/* v must be true or false: sets *out (1 or 0) and returns 0, or adds
 * `where: "path": expected true or false, got V` and returns -EINVAL. */
int adapter_util_bool(const json_t *v, const char *where, const char *path, int *out,
                      errlist_t *errs);

/* v must name a priority class: sets *out and returns 0, or adds `where: "class": expected
 * "live", "imminent" or "completed", got V` and returns -EINVAL. */
int adapter_util_class(const json_t *v, const char *where, enum sched_class *out,
                       errlist_t *errs);

/* v must be a JSON number from lo to hi: sets *out and returns 0, or adds
 * `where: "path": expected a number from LO to HI, got V` and returns -EINVAL. */
int adapter_util_number(const json_t *v, const char *where, const char *path, double lo,
                        double hi, double *out, errlist_t *errs);

/* v must be a non-empty string of at most max bytes without NUL bytes: *out becomes a
 * copy (caller frees) and 0 is returned; else `where: "path": expected a non-empty string
 * of at most MAX bytes, got V` and -EINVAL (or -ENOMEM). */
int adapter_util_string(const json_t *v, const char *where, const char *path, size_t max,
                        char **out, errlist_t *errs);

/* The index of s in names (NULL-terminated), or -1 (also when s is NULL). */
int adapter_util_name_index(const char *s, const char *const *names);

/* v must be one of the strings in names (NULL-terminated, at least one): sets *out to its
 * index and returns 0, or adds `where: "path": expected "a", "b" or "c", got V` and returns
 * -EINVAL. */
int adapter_util_one_of(const json_t *v, const char *const *names, const char *where,
                        const char *path, int *out, errlist_t *errs);

/* Writes v for an error message into out: strings in JSON quotes, other values as
 * compact JSON, "nothing" for NULL; cut to outlen with "..." at the end. Returns out. */
const char *adapter_util_quote(const json_t *v, char *out, size_t outlen);

/* 1 if ptr is a syntactically valid JSON pointer ("" or "/a/b~0c~1d/0"), else 0. */
int adapter_util_pointer_valid(const char *ptr);

/* Resolves the JSON pointer ptr in root. Array indexes are decimal without leading zeros;
 * "-" never resolves. On success *out is borrowed from root and 0 is returned; else
 * -EINVAL (bad pointer syntax) or -ENOENT, with why saying which step failed
 * (e.g. `no key "away" in the object at "/score"`). */
int adapter_util_pointer_get(const json_t *root, const char *ptr, const json_t **out, char *why,
                             size_t whylen);

/* A new string: base followed by '/' and key with '~' written "~0" and '/' "~1"
 * (caller frees). NULL on out of memory. */
char *adapter_util_pointer_join(const char *base, const char *key);

/* ---- classify: {"field": name, "live": [v...], "imminent": [...], "completed": [...]} */

typedef struct adapter_util_classify {
	char *field;       /* NULL: no classify block */
	json_t *values[3]; /* by enum sched_class: the values that mean that class (arrays) */
} adapter_util_classify_t;

/* Parses the optional classify block cls (NULL: none). field_names (NULL-terminated) are
 * the names cls->field may take; NULL: any non-empty name (data whose keys are not known
 * in advance, as a script's). Errors go to errs as `where: "classify...": ...`.
 * Returns 0, -EINVAL or -ENOMEM. */
int adapter_util_classify_parse(const json_t *cls, const char *where,
                                const char *const *field_names, adapter_util_classify_t *out,
                                errlist_t *errs);
void adapter_util_classify_release(adapter_util_classify_t *c);
/* The class whose list holds data[field] (numbers compare by value), or -1. */
int adapter_util_classify_eval(const adapter_util_classify_t *c, const json_t *data);

/* ---- fields: {"name": {spec}, ...}, the table of the generic and jsonapi adapters ---- */

/* fields must be an object of 1 to max entries, else `where: "fields": expected an object
 * of 1 to MAX fields {"name": HINT}, got V` (hint: one spec as the errors show it, e.g.
 * `{"selector": CSS, ...}`). Returns 0 or -EINVAL. */
int adapter_util_fields_check(const json_t *fields, size_t max, const char *hint, const char *where,
                              errlist_t *errs);

/* Parses the spec of one field (an object whose keys were checked already) into item, the
 * field's entry in the adapter's array. name is the walk's copy, borrowed until names is
 * freed. Returns 0, -EINVAL (errors added to errs) or -ENOMEM. */
typedef int (*adapter_util_field_fn)(void *item, const char *name, const json_t *spec,
                                     const char *where, errlist_t *errs);

/*
 * Walks fields (passed by adapter_util_fields_check). *items becomes a new zeroed array of
 * one item_size entry per field, *names a new NULL-terminated array of name copies. A name
 * must be 1 to 128 bytes, else an error and the field is skipped. Each other field takes
 * the next entry i (counting from 0): (*names)[i] is a copy of its name and *n = i + 1. A
 * spec that is not an object is an error (see hint above); else its unknown keys (not in
 * keys) are errors and parse() is called all the same. Every field is walked so that all
 * errors are listed. The caller frees *items, (*names)[0..*n) and *names, also on error.
 * Returns 0, -EINVAL, or -ENOMEM at once.
 */
int adapter_util_fields_walk(const json_t *fields, const char *hint, const char *const *keys,
                             size_t item_size, void **items, adapter_util_field_fn parse,
                             const char *where, char ***names, size_t *n, errlist_t *errs);

/* The "type" and "required" keys of the field spec of name: "type" one of type_names
 * (its index into *type), "required" a boolean. An absent key leaves its output as it
 * is. Returns 0 or -EINVAL. */
int adapter_util_field_type_required(const json_t *spec, const char *name,
                                     const char *const *type_names, const char *where, int *type,
                                     int *required, errlist_t *errs);

/* Parses a decimal integer as written on a page: surrounding white space, an optional
 * sign, digits with optional "," thousands separators ("12,345"). Returns 0 or -EINVAL
 * (also on overflow). */
int adapter_util_parse_int(const char *s, json_int_t *out);
/* Parses a decimal number ("12.5", "-3", "1,234.5", "2e3"; no hex, inf or nan). */
int adapter_util_parse_float(const char *s, double *out);

/* One discovered entry: turns e (the listing's i-th) into a child appended to out, its id
 * recorded in seen (a duplicate keeps the first). 0, -ENOMEM, or another error with why. */
typedef int (*adapter_util_entry_fn)(const void *ctx, const json_t *e, size_t i,
                                     const char *parent_id, json_t *seen, json_t *out,
                                     char *why, size_t whylen);
/* The children of a listing: entry() on each element of raw (an array the caller checked),
 * in order. A new array, or NULL with why ("out of memory", or the entry's reason). */
json_t *adapter_util_discover_each(const json_t *raw, adapter_util_entry_fn entry,
                                   const void *ctx, const char *parent_id, char *why,
                                   size_t whylen);

#endif
