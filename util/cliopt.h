/*
 * cliopt: one "--name VALUE" or "--name=VALUE" option of a subcommand's arguments, as
 * `cdpilot scrape` and `cdpilot try` take them. Pure; no allocation; strings borrowed from
 * argv.
 */
#ifndef CDPILOT_UTIL_CLIOPT_H
#define CDPILOT_UTIL_CLIOPT_H

#include <stddef.h>

/* What went wrong with an option (cliopt_next's negative returns). */
enum { CLIOPT_UNKNOWN = -1, CLIOPT_NOVALUE = -2 };

/*
 * Reads the option at argv[*i]: its name (before any '=', cut to namelen - 1 bytes) into
 * name, and its value (after the '=', else the next argument, *i then moved past it) into
 * *value. Returns 0; CLIOPT_UNKNOWN if the name is not in known (NULL-terminated; *value
 * untouched, the caller says what it expected); CLIOPT_NOVALUE with "option NAME needs a
 * value (see --help)" in err if no value follows.
 */
int cliopt_next(int argc, char **argv, int *i, const char *const *known, char *name, size_t namelen,
                const char **value, char *err, size_t errlen);

#endif
