/*
 * sched_env: the scheduler's unit adapters over util/envnum.h, shared by sched.c and
 * health.c (internal to scheduler/, prefix sched__): seconds read into milliseconds, whole
 * numbers into uint64_t. An unset variable leaves *out untouched and returns 0; a bad one
 * (empty, sign, exponent, trailing characters, out of range) is added to errs as
 * "NAME='value': expected ..." and returns -EINVAL.
 */
#ifndef CDPILOT_SCHEDULER_SCHED_ENV_H
#define CDPILOT_SCHEDULER_SCHED_ENV_H

#include <stdint.h>

#include "util/errlist.h"

/* Seconds written as digits with an optional decimal part ("5", "0.5", ".25"), within
 * [lo_s, hi_s]; *out_ms gets the value in milliseconds, rounded to the nearest. */
int sched__env_seconds(errlist_t *errs, const char *name, double lo_s, double hi_s,
                       uint32_t *out_ms);
/* A whole number of digits within [lo, hi]; unit ("milliseconds" or NULL) goes into the
 * message. */
int sched__env_uint(errlist_t *errs, const char *name, uint64_t lo, uint64_t hi, const char *unit,
                    uint64_t *out);

#endif
