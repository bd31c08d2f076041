/*
 * try: `cdpilot try --targets FILE [--id ID] [--timeout S]`, how a user writes a target.
 * It runs one scrape of one target (or of each, one after the other, in file order)
 * exactly as `cdpilot run` would, by running the daemon's own runner (runner/runner.h)
 * on a pool and a fetch context made from the same settings, and prints one JSON object
 * per target on its own line:
 *
 *   {"id", "ok": true, "snapshot": {...}, "timings": {...}}      the snapshot run would write
 *   {"id", "ok": true, "discovered": [{"id", "url", "class"}...], "timings": {...}}
 *                                                                  a discovering target
 *   {"id", "ok": false, "error": {"kind", "message"}, "timings": {...}}
 *
 * A target is done at its first outcome (its first read published, or its first failure).
 * Its runner is stopped right then, from the runner's own callbacks, before it could start
 * anything else: the children a discovering target found are listed, never scraped. A
 * target that needs no browser (jsonapi) is fetched with libcurl, and Chromium is launched
 * only if one of the chosen targets needs it. Exit codes are those of `cdpilot scrape`
 * (scrape.h): 0 when every target was ok, else the first failure's.
 */
#ifndef CDPILOT_DAEMON_TRY_H
#define CDPILOT_DAEMON_TRY_H

#include <stddef.h>
#include <stdio.h>
#include <uv.h>

#include "daemon/run.h"
#include "daemon/targets.h"

typedef struct try_opts {
	const char *targets_path; /* --targets FILE (borrowed from argv), or NULL: TARGETS_FILE */
	const char *id;           /* --id ID, or NULL for each target */
	double timeout_s;         /* --timeout S: bound for each target, (0, 3600]; default 60 */
} try_opts_t;

/*
 * Parses the arguments after "try" (settings' flags already taken out by
 * config_apply_flags()). Returns 0 with o filled, 1 if --help was asked for, or -EINVAL
 * with one line in err naming the flag or value and what was expected.
 */
int try_parse_args(int argc, char **argv, try_opts_t *o, char *err, size_t errlen);

void try_usage(FILE *f);

/*
 * Runs the chosen targets of set (borrowed; the specs it runs are moved out of it and
 * zeroed, so release it afterwards as ever) on loop, with the daemon's settings ro, and
 * prints each target's object to out as soon as it is known. Returns the exit code. When
 * it returns, nothing of it is left on the loop and every browser it launched is gone
 * with its process tree. id not in set is the caller's to check (targets_find()).
 */
int try_run(uv_loop_t *loop, const try_opts_t *o, const run_opts_t *ro, target_set_t *set,
            FILE *out);

#endif
