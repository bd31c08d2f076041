/*
 * links: discovery from a listing page, for the adapters configured in the targets file
 * (generic, script). A target with "discover": true gives the rule in "links":
 *
 *   "links": {"selector": "li.match",              each match yields one child
 *             "id": "/match/(\\d+)",              JS regex on the absolute URL (optional)
 *             "class": {"attr": "data-status",     or "selector": CSS (its text)
 *                       "live": ["live"], "imminent": ["upcoming"], "completed": ["ft"]}}
 *
 * The child's URL is the element's href, else that of the first a[href] inside it, made
 * absolute against the page (entries with neither, and URLs that are not http(s), are
 * skipped). Its id is the parent's id, '-' and the first capture group of "id" (the whole
 * match when the regex has no group; a URL the regex does not match is skipped), else a
 * stable hash of the URL (10 hex digits of FNV-1a 64); characters outside
 * [A-Za-z0-9_.-] become '_' and the part is cut so that the id fits in 64 bytes; of two
 * entries with the same id the first is kept. Its class: the text read by "class"
 * (trimmed, compared case-insensitively with the lists), else the parent's "class" (none
 * given: none). The rest of each child's spec is the parent's "children" (the runner
 * merges it in), which must name the child's "adapter".
 *
 * discover_js is cdpilot's own expression with the rule embedded as one JSON literal
 * (ASCII-escaped), never as raw text. It returns [{url, id_part, class_text}...], or
 * {error: message} for a selector or regex the page's engine refuses. No I/O, no state
 * beyond the parsed rule; out of memory is -ENOMEM or NULL.
 */
#ifndef CDPILOT_ADAPTERS_LINKS_H
#define CDPILOT_ADAPTERS_LINKS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/errlist.h"

#define ADAPTER_LINKS_MAX 100000 /* entries taken from one listing */
#define ADAPTER_LINKS_ID_MAX 64  /* a target id's limit (daemon/targets.h) */
#define ADAPTER_LINKS_URL_MAX 2047

typedef struct adapter_links {
	char *js;           /* discover_js (owned); NULL: not discovering */
	json_t *classes[3]; /* by enum sched_class: lower-cased trimmed strings, or NULL */
	int parent_class;   /* the target's "class" (enum sched_class), or -1 */
} adapter_links_t;

/*
 * The discovery keys of target (the whole target object). With "discover": true, "links"
 * is required, "children" must be an object naming the children's "adapter", and each key
 * of not_used (NULL-terminated: the adapter's extraction keys, such as "fields") that is
 * present is an error: a listing is only read for its links. "links" without "discover":
 * true is an error. Errors go to errs as `where: "links.id": ...`. *discovering is set to
 * 1 when the target discovers. Returns 0, -EINVAL or -ENOMEM (out is then released).
 */
int adapter_links_parse(const json_t *target, const char *where, const char *const *not_used,
                        adapter_links_t *out, int *discovering, errlist_t *errs);
void adapter_links_release(adapter_links_t *l);

/* The children discover_js's value raw names, as an array of targets {"id", "url",
 * "class"?} (new reference); NULL and why on a value that is not such a list, or an
 * {error} from the page. */
json_t *adapter_links_discover(const adapter_links_t *l, const json_t *raw, const char *parent_id,
                               char *why, size_t whylen);

/* FNV-1a 64 of s, and its first 10 hex digits in out (NUL-terminated). */
uint64_t adapter_links_fnv1a(const char *s);
void adapter_links_hash(const char *url, char out[11]);

#endif
