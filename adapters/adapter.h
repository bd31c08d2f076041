/*
 * adapter: turns a page into a snapshot's data. Adapters are pure: they validate a
 * target's parameters, say what to load, wait for and evaluate, and turn the raw value
 * that came back into normalised data and a class. They do no I/O and keep no state
 * between calls other than the per-target state they built in parse(); the daemon does
 * the loading (a leased page, or libcurl for adapters that need no browser).
 *
 * The registry is the const table in adapter.c: adding an adapter is one .c file that
 * defines a `const adapter_t adapter_NAME` and one line in that table (docs/adapters.md).
 *
 * Ownership: json_t arguments are borrowed for the duration of the call; returned json_t
 * are new references owned by the caller. State built by parse() is owned by the caller
 * and freed with free_state(). Functions returning const char * return strings borrowed
 * from the state (valid until free_state). Out of memory: -ENOMEM / NULL, never abort.
 */
#ifndef CDPILOT_ADAPTERS_ADAPTER_H
#define CDPILOT_ADAPTERS_ADAPTER_H

#include <jansson.h>
#include <stddef.h>

#include "util/sched_class.h"
#include "util/errlist.h"

/* The largest value an extract_fn may return: 256 KiB of JSON text. Over it the scrape
 * fails (kind "script") instead of the daemon holding an unbounded value. */
#define ADAPTER_VALUE_CAP (256u * 1024)

typedef struct adapter {
	const char *name;     /* as written in a target's "adapter" field */
	const char *summary;  /* one line, for --help and docs */
	/* 1: the daemon loads the URL in a leased page, waits for wait_for(), evaluates
	 * extract_js() (or calls extract_fn()) and passes the value to normalise(). 0: the
	 * daemon GETs the URL with libcurl and passes the parsed JSON body to normalise()
	 * (extract_js, extract_fn and wait_for are then NULL). */
	int needs_browser;
	/* Target keys this adapter reads besides the common ones (id, adapter, url, class,
	 * interval_seconds, mode, push, discover, children, timeout_seconds); NULL-terminated.
	 * Any other key in a target is refused as unknown. */
	const char *const *param_keys;

	/* Validates the adapter's parameters in target (the whole target object) and builds
	 * the per-target state (*state may be set to NULL if none is needed). Every problem
	 * is added to errs, each line starting with `where` (e.g. `targets[3] "m1"`) then the
	 * field path, what was expected and the value found. Returns 0 or -EINVAL/-ENOMEM. */
	int (*parse)(const json_t *target, const char *where, void **state, errlist_t *errs);
	void (*free_state)(void *state);              /* NULL-safe; may itself be NULL */

	/* URL to load or fetch, written into out (NUL-terminated). url is the target's
	 * "url". NULL: url as is. Returns 0 or -ENAMETOOLONG. */
	int (*build_url)(const void *state, const char *url, char *out, size_t outlen);
	/* CSS selector that must match before extraction; NULL: the load event is enough. */
	const char *(*wait_for)(const void *state);
	/* A JavaScript expression evaluated in the page (awaited if it is a Promise); its
	 * value, returned by value, is the raw result. NULL when extract_fn is used. */
	const char *(*extract_js)(const void *state);
	/* Instead of extract_js (then NULL): the source of a function the daemon calls in the
	 * page with cdp_page_call(), with extract_args() as its arguments (a JSON array,
	 * borrowed from the state); its value must be a JSON object of at most
	 * ADAPTER_VALUE_CAP bytes of JSON text. The source is passed to the page as data
	 * (Runtime.callFunctionOn's functionDeclaration), never spliced into other code. */
	const char *(*extract_fn)(const void *state);
	const json_t *(*extract_args)(const void *state);
	/* Validates and normalises the raw result into the snapshot's data (a JSON object,
	 * new reference). On bad data: NULL and why (e.g. `field "score": expected int, got
	 * "n/a"`). */
	json_t *(*normalise)(const void *state, const json_t *raw, char *why, size_t whylen);
	/* The class the data implies (a finished match: SCHED_COMPLETED), or -1: no opinion.
	 * May be NULL. */
	int (*classify)(const void *state, const json_t *data);

	/* Optional discovery, for targets with "discover": true (both NULL if unsupported).
	 * discover_js is evaluated on the listing page; discover() turns its value into an
	 * array of target objects in the targets-file schema (new reference), each with an
	 * "id" that starts with parent_id followed by '-'. NULL and why on bad data. */
	const char *(*discover_js)(const void *state);
	json_t *(*discover)(const void *state, const json_t *raw, const char *parent_id,
	                    char *why, size_t whylen);

	/* For "mode": "watch" with "push": true: the CSS selector of the element whose
	 * subtree is observed for changes (NULL: document.body). May be NULL. */
	const char *(*watch_root)(const void *state);
} adapter_t;

/* The registered adapter called name, or NULL. */
const adapter_t *adapter_find(const char *name);
/* The registry, in registration order; *n gets its length. */
const adapter_t *const *adapter_all(size_t *n);

/* Built-in adapters (each defined in its own .c file). */
extern const adapter_t adapter_generic;   /* generic.c: CSS-selector fields */
extern const adapter_t adapter_jsonapi;   /* jsonapi.c: JSON URL, fields by JSON pointer */
extern const adapter_t adapter_livescore; /* livescore.c: the demo live-score site */
extern const adapter_t adapter_script;    /* script.c: a user's function run in the page */

#endif
