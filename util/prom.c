/*
 * prom: Prometheus text exposition format 0.0.4 into a capped buffer. See prom.h.
 */
#include "util/prom.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prom_buf_init(prom_buf_t *b, size_t max)
{
	memset(b, 0, sizeof *b);
	growbuf_init(&b->text, max ? max : PROM_BUF_DEFAULT_MAX);
}

void prom_buf_release(prom_buf_t *b)
{
	growbuf_release(&b->text);
	b->err = 0;
}

char *prom_buf_steal(prom_buf_t *b, size_t *len)
{
	char *out = NULL;
	size_t n = 0;

	*len = 0;
	if (!b->err) {
		out = growbuf_steal(&b->text, &n);
		if (!out)
			out = calloc(1, 1);
		if (out)
			*len = n;
	}
	prom_buf_release(b);
	return out;
}

static int fail(prom_buf_t *b, int err)
{
	if (!b->err)
		b->err = err;
	return b->err;
}

int prom_append(prom_buf_t *b, const char *s, size_t len)
{
	int rc;

	if (b->err)
		return b->err;
	rc = growbuf_append(&b->text, s, len);
	return rc ? fail(b, rc) : 0;
}

static int puts_(prom_buf_t *b, const char *s) { return prom_append(b, s, strlen(s)); }

/* Appends s with each byte of `special` escaped as backslash + repl[i]. */
static int append_escaped(prom_buf_t *b, const char *s, const char *special, const char *repl)
{
	const char *run = s;

	for (; *s; s++) {
		const char *hit = strchr(special, *s);
		char esc[2];
		if (!hit)
			continue;
		prom_append(b, run, (size_t)(s - run));
		esc[0] = '\\';
		esc[1] = repl[hit - special];
		prom_append(b, esc, 2);
		run = s + 1;
	}
	return prom_append(b, run, (size_t)(s - run));
}

int prom_valid_name(const char *name)
{
	if (!name || !*name)
		return 0;
	for (const char *p = name; *p; p++) {
		int c = (unsigned char)*p;
		int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
		if (!alpha && !(p != name && c >= '0' && c <= '9'))
			return 0;
	}
	return 1;
}

static int valid_label_name(const char *name)
{
	return prom_valid_name(name) && !strchr(name, ':');
}

const char *prom_format_value(double v, char *out, size_t outlen)
{
	if (isnan(v))
		snprintf(out, outlen, "NaN");
	else if (isinf(v))
		snprintf(out, outlen, "%s", v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) <= 9007199254740992.0)
		snprintf(out, outlen, "%.0f", v);
	else {
		/* The shortest of %.15g..%.17g that reads back as the same double. */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(out, outlen, "%.*g", prec, v);
			if (strtod(out, NULL) == v)
				break;
		}
	}
	return out;
}

static int append_value(prom_buf_t *b, double v)
{
	char num[40];
	return puts_(b, prom_format_value(v, num, sizeof num));
}

int prom_header(prom_buf_t *b, const char *name, const char *type, const char *help)
{
	static const char *const types[] = { "counter", "gauge", "histogram", "summary",
		                             "untyped" };
	int ok = 0;

	if (b->err)
		return b->err;
	for (size_t i = 0; type && i < sizeof types / sizeof types[0]; i++)
		ok |= strcmp(type, types[i]) == 0;
	if (!ok || !prom_valid_name(name))
		return fail(b, -EINVAL);
	if (help) {
		puts_(b, "# HELP ");
		puts_(b, name);
		puts_(b, " ");
		append_escaped(b, help, "\\\n", "\\n");
		puts_(b, "\n");
	}
	puts_(b, "# TYPE ");
	puts_(b, name);
	puts_(b, " ");
	puts_(b, type);
	return puts_(b, "\n");
}

/* name{labels} value\n; labels from a NULL-ended key/value list. */
static int sample_v(prom_buf_t *b, const char *name, const char *le, double value, va_list ap)
{
	const char *k;
	int n = 0;

	if (b->err)
		return b->err;
	if (!prom_valid_name(name))
		return fail(b, -EINVAL);
	puts_(b, name);
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		if (!valid_label_name(k) || !v)
			return fail(b, -EINVAL);
		puts_(b, n++ ? "," : "{");
		puts_(b, k);
		puts_(b, "=\"");
		append_escaped(b, v, "\\\"\n", "\\\"n");
		puts_(b, "\"");
	}
	if (le) {
		puts_(b, n++ ? "," : "{");
		puts_(b, "le=\"");
		puts_(b, le);
		puts_(b, "\"");
	}
	if (n)
		puts_(b, "}");
	puts_(b, " ");
	append_value(b, value);
	return puts_(b, "\n");
}

int prom_sample(prom_buf_t *b, const char *name, double value, ...)
{
	va_list ap;
	int rc;

	va_start(ap, value);
	rc = sample_v(b, name, NULL, value, ap);
	va_end(ap);
	return rc;
}

int prom_family(prom_buf_t *b, const char *name, const char *type, const char *help,
                const char *label, const char *const *names, const double *values, size_t n)
{
	int rc = prom_header(b, name, type, help);

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = prom_sample(b, name, values[i], label, names[i], NULL);
	return rc;
}

/* The same as sample_v with no labels but le; a helper so va_list is not needed. */
static int bucket(prom_buf_t *b, const char *name, const char *le, double value, ...)
{
	va_list ap;
	int rc;

	va_start(ap, value);
	rc = sample_v(b, name, le, value, ap);
	va_end(ap);
	return rc;
}

int prom_histogram(prom_buf_t *b, const char *name, const char *help, const double *bounds,
                   const uint64_t *counts, size_t n, double sum, uint64_t count)
{
	char sub[256], le[40];
	uint64_t cum = 0;
	size_t nl;

	if (b->err)
		return b->err;
	nl = name ? strlen(name) : 0;
	if (!prom_valid_name(name) || nl + sizeof "_bucket" > sizeof sub || (n && (!bounds || !counts)))
		return fail(b, -EINVAL);
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
			return fail(b, -EINVAL);
		if (counts[i] > count - cum)
			return fail(b, -EINVAL);
		cum += counts[i];
	}
	prom_header(b, name, "histogram", help);
	snprintf(sub, sizeof sub, "%s_bucket", name);
	cum = 0;
	for (size_t i = 0; i < n; i++) {
		cum += counts[i];
		bucket(b, sub, prom_format_value(bounds[i], le, sizeof le), (double)cum, NULL);
	}
	bucket(b, sub, "+Inf", (double)count, NULL);
	snprintf(sub, sizeof sub, "%s_sum", name);
	prom_sample(b, sub, sum, NULL);
	snprintf(sub, sizeof sub, "%s_count", name);
	return prom_sample(b, sub, (double)count, NULL);
}
