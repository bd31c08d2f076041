/*
 * cliopt: see cliopt.h.
 */
#include "util/cliopt.h"

#include <stdio.h>
#include <string.h>

int cliopt_next(int argc, char **argv, int *i, const char *const *known, char *name, size_t namelen,
                const char **value, char *err, size_t errlen)
{
	const char *a = argv[*i], *eq = strchr(a, '=');
	size_t k;

	snprintf(name, namelen, "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
	for (k = 0; known[k] && strcmp(known[k], name) != 0; k++)
		;
	if (!known[k])
		return CLIOPT_UNKNOWN;
	if (eq) {
		*value = eq + 1;
	} else if (*i + 1 < argc) {
		*value = argv[++*i];
	} else {
		snprintf(err, errlen, "option %s needs a value (see --help)", name);
		return CLIOPT_NOVALUE;
	}
	return 0;
}
