/*
 * target_page: the parts of the targets file parser (targets.h) about the page a target is
 * read in: the per-target browser settings (actions, wait_for_state, headers, cookies,
 * user_agent, viewport, block_resources; docs/targets.md), and "script_file", read
 * relative to the targets file. Internal to the targets module (prefix targets__); the
 * public contract is targets.h.
 *
 * Errors are added to errs as `where: "key": expected ..., got V`, every bad value listed.
 * Out of memory aborts (daemon plumbing).
 */
#ifndef CDPILOT_DAEMON_TARGET_PAGE_H
#define CDPILOT_DAEMON_TARGET_PAGE_H

#include <jansson.h>

#include "daemon/targets.h"
#include "util/errlist.h"

#define TARGETS_ACTIONS_MAX 64
#define TARGETS_COOKIES_MAX 64
#define TARGETS_HEADERS_MAX 64
#define TARGETS_SCRIPT_MAX (1024u * 1024)

/* The common keys of this part, NULL-terminated (for the unknown-key check). */
extern const char *const targets__page_keys[];

/* Validates the page settings of obj (ad: its adapter, NULL if unknown; a browserless
 * adapter refuses them all) into out's owned fields (headers_json, cookies_json,
 * wait_attached, viewport_*). out->url must be filled already (cookies without a domain
 * get it). Returns 0 or -EINVAL. */
int targets__page_parse(const json_t *obj, const adapter_t *ad, const char *where,
                        target_spec_t *out, errlist_t *errs);
/* Points out's borrowed fields (actions, user_agent, block_resources) into out->json. */
void targets__page_borrow(target_spec_t *out);
/* Frees the owned fields. */
void targets__page_release(target_spec_t *t);

/* For each target of root (an object {"targets": [...]} or an array) and its "children":
 * with dir (the targets file's directory), reads "script_file" (relative to dir, at most
 * TARGETS_SCRIPT_MAX bytes) into "script" beside it; a target giving both is an error.
 * Without dir (not from a file), any "script_file" is an error. Shapes it does not know
 * are left for targets_parse_json() to report. Returns 0 or -EINVAL. */
int targets__script_files(json_t *root, const char *dir, errlist_t *errs);

#endif
