/*
 * targets: the targets file (docs/targets.md) parsed into validated target specs.
 *
 * A targets file is a JSON object {"targets": [ ... ], "entities": [ ... ]} ("entities"
 * optional: docs/entities.md) or a bare array of target objects.
 * Every problem is collected in an errlist_t, one line each, naming the target's position
 * and id and the key: `targets[3] "m1": "interval_seconds": expected a number from 0.1 to
 * 86400, got "5s"`. Parsing is all or nothing: on any error the set comes back empty.
 *
 * Ownership: a target_spec_t owns its adapter state and its json (a private deep copy of
 * the target object, so the caller may change or free its own); target_spec_release()
 * frees both and zeroes the spec, and accepts a zeroed spec. A target_set_t owns its array
 * (malloc'd) and every spec in it; targets_release() frees them all, also specs a caller
 * moved out and zeroed. No I/O except targets_load_file(), which reads a local file
 * synchronously. Validation is linear in the list: 100,000 targets (under the 16 MiB cap)
 * take about 3 s of CPU, so the daemon calls it on a libuv worker thread on SIGHUP (at
 * startup, before the loop runs, directly). Every function here touches only its own
 * arguments and const tables, so calls on separate sets may run on separate threads. Out
 * of memory aborts (daemon plumbing).
 */
#ifndef CDPILOT_DAEMON_TARGETS_H
#define CDPILOT_DAEMON_TARGETS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "adapters/adapter.h"
#include "entity/entity.h"
#include "util/sched_class.h"
#include "util/errlist.h"
#include "util/netpolicy.h"

#define TARGETS_ID_MAX 64
#define TARGETS_URL_MAX 2047
#define TARGETS_FILE_MAX (16u * 1024 * 1024)

typedef enum targets_mode { TARGETS_NAVIGATE = 0, TARGETS_WATCH } targets_mode_t;

typedef struct target_spec {
	char id[TARGETS_ID_MAX + 1];
	const adapter_t *adapter;
	void *state; /* the adapter's, owned (freed with adapter->free_state) */
	const char *url;  /* borrowed from json (at most TARGETS_URL_MAX bytes): a pointer, not
	                     a 2 KiB array, so that 100,000 targets do not cost 200 MB each copy */
	enum sched_class klass; /* "class", default SCHED_IMMINENT */
	uint32_t interval_ms;   /* "interval_seconds"; 0 = the class's interval */
	uint32_t timeout_ms;    /* "timeout_seconds"; 0 = the pool's task timeout */
	targets_mode_t mode;
	int push; /* only with TARGETS_WATCH */
	int discover;
	json_t *children; /* borrowed from json, or NULL; only with discover */
	/* Page settings (daemon/target_page.c), only for adapters that need a browser. */
	const json_t *actions;       /* borrowed from json: the validated "actions", or NULL */
	int wait_attached;           /* "wait_for_state": "attached" (default "visible") */
	char *headers_json;          /* owned: "headers" (object of strings) as JSON, or NULL */
	char *cookies_json;          /* owned: "cookies" as a JSON array for Network.setCookies
	                                (each cookie without domain gets "url": the target's
	                                url), or NULL */
	const char *user_agent;      /* borrowed from json, or NULL */
	int viewport_width, viewport_height; /* "viewport": "WxH"; 0: global */
	const char *block_resources; /* borrowed; "none" or a list like BLOCK_RESOURCES */
	int adaptive;                /* "adaptive": true: its JSON endpoint is learned and read
	                                without the browser (runner/adapt.c) */
	/* The target object, owned (a deep copy). Two specs whose json are json_equal() are
	 * the same target, unchanged. */
	json_t *json;
} target_spec_t;

typedef struct target_set {
	target_spec_t *v;
	size_t n;
	/* The file's "entities" (entity/entity.h, docs/entities.md), validated against the
	 * set's target ids: every source names a target of the same file. Owned. */
	entity_set_t entities;
} target_set_t;

/* 1 if id is 1..64 bytes of [A-Za-z0-9_.-] not starting with '.' or '-', else 0.
 * Ids become Redis key parts and file names: such an id can name nothing outside. */
int targets_id_valid(const char *id);

/* Parses a targets file's text. JSON syntax errors name the line and column.
 * Returns 0 (out filled; release with targets_release) or -EINVAL (errs filled, out
 * empty). */
int targets_parse(const char *text, size_t len, target_set_t *out, errlist_t *errs);

/* The same from parsed JSON: an object {"targets": [...]} or an array (also used for
 * discovered children and the Redis targets hash). root is borrowed. Ids must be unique. */
int targets_parse_json(const json_t *root, target_set_t *out, errlist_t *errs);

/* Validates one target object (borrowed) into *out. where prefixes every error (e.g.
 * `targets[3]`; the id is appended when it is a string). Returns 0 or -EINVAL (out
 * zeroed). */
int targets_parse_one(const json_t *obj, const char *where, target_spec_t *out, errlist_t *errs);

/* Reads and parses the file at path (at most TARGETS_FILE_MAX bytes). A read error names
 * the path and strerror. Each "script_file" (in a target or its "children") is read
 * relative to the file's directory (at most 1 MiB) and put into the target's json as
 * "script" beside it; targets_parse() and targets_parse_json() refuse "script_file".
 * Returns 0, -EINVAL or a negative errno from the read. */
int targets_load_file(const char *path, target_set_t *out, errlist_t *errs);

void targets_release(target_set_t *set);
void target_spec_release(target_spec_t *t);

/* 1 if the adapter is complete enough to be used: it has normalise(), extract_js() or
 * extract_fn() with extract_args() if it needs a browser, and parse() if it has parameter keys. Registered adapters that are not
 * (one still being written) are refused by the parser instead of being called. */
int targets_adapter_usable(const adapter_t *ad);

/* The spec with this id, or NULL. */
const target_spec_t *targets_find(const target_set_t *set, const char *id);

/* host[:port] of an http(s) URL, lower-cased (IPv6 hosts keep their brackets), for
 * per-host politeness. Returns 0, -EINVAL (not an http(s) URL with a host), -ERANGE (a
 * port that is not 1 to 65535 in digits: ":0", ":99999", ":", ":8x") or -ENAMETOOLONG. */
int targets_host(const char *url, char *out, size_t outlen);

/*
 * The target policy (TARGET_ALLOW / TARGET_DENY, docs/targets.md): every parse above
 * refuses a target whose URL's host it refuses, naming the URL and the rule, so targets
 * from the file, the Redis hash and discovery are judged alike without each caller passing
 * it. Process-global, like the environment it is read from: the command that read the
 * settings sets it once, before the loop runs; p is borrowed and must outlive every parse.
 * Until it is set (and after targets_set_policy(NULL)) the default policy applies.
 * targets_policy() returns the policy in force, never NULL.
 */
void targets_set_policy(const netpolicy_t *p);
const netpolicy_t *targets_policy(void);

#endif
