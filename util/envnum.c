/*
 * envnum: the one parser of numbers in environment variables (see envnum.h).
 */
#include "util/envnum.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENVNUM_MAX_CHARS 32

/* 1 when v is digits with (unless whole) one optional '.', at least one digit. */
static int syntax_ok(const char *v, int whole)
{
	size_t digits = 0, dots = 0, n = 0;

	for (const char *p = v; *p; p++, n++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p == '.' && !whole)
			dots++;
		else
			return 0;
	}
	return digits > 0 && dots <= 1 && n <= ENVNUM_MAX_CHARS;
}

static int parse(const char *v, double lo, double hi, unsigned flags, double *out)
{
	char *end = NULL;
	double d;

	if (!syntax_ok(v, flags & ENVNUM_WHOLE))
		return -EINVAL;
	errno = 0;
	d = strtod(v, &end);
	if (errno || !end || *end || !isfinite(d))
		return -EINVAL;
	if (!(d >= lo && d <= hi) && !((flags & ENVNUM_ZERO_OK) && d == 0))
		return -EINVAL;
	*out = d;
	return 0;
}

/* "NAME='value': expected ..." into line. */
static void describe(char *line, size_t len, const char *name, const char *v, double lo,
                     double hi, unsigned flags, const char *unit)
{
	snprintf(line, len, "%s='%.80s': expected %s%s number%s%s from %.15g to %.15g", name, v,
	         flags & ENVNUM_ZERO_OK ? "0 (none) or " : "",
	         flags & ENVNUM_WHOLE ? "a whole" : "a", unit ? " of " : "", unit ? unit : "", lo,
	         hi);
}

int envnum_get(errlist_t *errs, const char *name, double lo, double hi, unsigned flags,
               const char *unit, double *out)
{
	const char *v = getenv(name);
	char line[256];

	if (!v)
		return 0;
	if (parse(v, lo, hi, flags, out) == 0)
		return 1;
	describe(line, sizeof line, name, v, lo, hi, flags, unit);
	errlist_add(errs, "%s", line);
	return -EINVAL;
}

int envnum_get_buf(char *err, size_t errlen, const char *name, double lo, double hi,
                   unsigned flags, const char *unit, double *out)
{
	const char *v = getenv(name);
	char line[256];
	size_t used;

	if (!v)
		return 0;
	if (parse(v, lo, hi, flags, out) == 0)
		return 1;
	describe(line, sizeof line, name, v, lo, hi, flags, unit);
	used = errlen ? strnlen(err, errlen) : 0;
	if (used + 1 < errlen)
		snprintf(err + used, errlen - used, "%s%s", used ? "\n" : "", line);
	return -EINVAL;
}
