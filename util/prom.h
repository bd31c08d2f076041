/*
 * prom: a capped text buffer (a growbuf) and writers for the Prometheus text exposition
 * format 0.0.4 (what /metrics serves; `promtool check metrics` accepts the output).
 *
 * prom_buf_t is caller storage: prom_buf_init() -> prom_header()/prom_sample()/... ->
 * prom_buf_steal() or prom_buf_release(). Errors are sticky: the first failure (-EINVAL
 * for a bad metric or label name or type, -EMSGSIZE past the cap, -ENOMEM) is kept in the
 * buffer, every later write is a no-op returning it, and prom_buf_steal() returns NULL.
 * So a caller writes everything and checks once at the end. Pure: no I/O, no loop.
 *
 * Values: integers up to 2^53 print without a fraction, other finite values in the
 * shortest form that reads back exactly, and NaN, +Inf, -Inf as Prometheus spells them.
 */
#ifndef CDPILOT_UTIL_PROM_H
#define CDPILOT_UTIL_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "util/growbuf.h"

#define PROM_BUF_DEFAULT_MAX ((size_t)4 * 1024 * 1024)

typedef struct prom_buf {
	growbuf_t text; /* the exposition so far; text.cap is the hard cap on its length */
	int err;        /* 0 or the first error (negative errno), sticky */
} prom_buf_t;

/* max 0: PROM_BUF_DEFAULT_MAX. */
void prom_buf_init(prom_buf_t *b, size_t max);
void prom_buf_release(prom_buf_t *b);
/* The text, now owned by the caller (free()); "" allocated when empty. NULL, with *len 0,
 * if a write failed (see b->err) or out of memory. The buffer is left empty either way. */
char *prom_buf_steal(prom_buf_t *b, size_t *len);

/* Raw text (no escaping). Returns 0 or the sticky error. */
int prom_append(prom_buf_t *b, const char *s, size_t len);

/*
 * "# HELP name help" (help escaped: backslash and newline) and "# TYPE name type".
 * type is counter, gauge, histogram, summary or untyped; help may be NULL (no HELP line).
 * Write each metric's header once, before its samples.
 */
int prom_header(prom_buf_t *b, const char *name, const char *type, const char *help);

/*
 * One sample line: name{k1="v1",k2="v2"} value. After value come label name/value string
 * pairs, ended by NULL: prom_sample(b, "x_total", 3, "class", "live", NULL). Label values
 * are escaped (\\, \", \n); label names must match [a-zA-Z_][a-zA-Z0-9_]* (-EINVAL).
 */
int prom_sample(prom_buf_t *b, const char *name, double value, ...)
    __attribute__((sentinel));

/*
 * A whole metric with one label, header included: one sample per label value,
 * name{label="names[i]"} values[i], for i < n.
 */
int prom_family(prom_buf_t *b, const char *name, const char *type, const char *help,
                const char *label, const char *const *names, const double *values, size_t n);

/*
 * A whole histogram, header included: name_bucket{le="..."} (cumulative, then +Inf),
 * name_sum, name_count. counts[i] is the number of observations in bucket i alone,
 * (bounds[i-1], bounds[i]]; the function accumulates them. bounds must be finite and
 * strictly increasing, and the buckets may not add up to more than count (-EINVAL);
 * observations above the last bound count only in +Inf.
 */
int prom_histogram(prom_buf_t *b, const char *name, const char *help, const double *bounds,
                   const uint64_t *counts, size_t n, double sum, uint64_t count);

/* Formats a value as a sample does, into out (at least 32 bytes). Returns out. */
const char *prom_format_value(double v, char *out, size_t outlen);

/* 1 if name is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*). */
int prom_valid_name(const char *name);

#endif
