/*
 * envnum: reads one number from an environment variable, checked against a range, so every
 * module parses its settings the same way and reports a bad one in the same words:
 * "NAME='value': expected a whole number of UNIT from LO to HI" (or "a number ...").
 *
 * Syntax: decimal digits; when ENVNUM_WHOLE is not given, one optional '.' with digits on
 * either side ("5", "0.5", ".25"). No sign, exponent, spaces or trailing characters; at most
 * 32 characters. Nothing is allocated and nothing is kept: the value is copied into *out.
 * Errors: an unset variable is not one (0, *out untouched); a bad value adds exactly one line
 * to errs (or to the err buffer) and returns -EINVAL, *out untouched.
 */
#ifndef CDPILOT_UTIL_ENVNUM_H
#define CDPILOT_UTIL_ENVNUM_H

#include <stddef.h>

#include "util/errlist.h"

enum envnum_flags {
	ENVNUM_WHOLE = 1u << 0,   /* digits only; "a whole number" in the message */
	ENVNUM_ZERO_OK = 1u << 1, /* 0 is also accepted below lo: "0 (none) or ..." */
};

/*
 * Reads getenv(name) into *out when it is set and valid, within [lo, hi] (and 0 when
 * ENVNUM_ZERO_OK). unit ("seconds", "MiB", or NULL) goes into the message only.
 * Returns 1 set and valid, 0 unset, -EINVAL bad (one line added to errs).
 */
int envnum_get(errlist_t *errs, const char *name, double lo, double hi, unsigned flags,
               const char *unit, double *out);

/*
 * The same for callers that collect errors in a caller-owned text buffer: the line is
 * appended to err (NUL-terminated, lines separated by '\n', truncated to errlen).
 */
int envnum_get_buf(char *err, size_t errlen, const char *name, double lo, double hi,
                   unsigned flags, const char *unit, double *out);

#endif
