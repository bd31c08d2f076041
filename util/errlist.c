#include "util/errlist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void errlist_init(errlist_t *e)
{
	memset(e, 0, sizeof *e);
}

void errlist_release(errlist_t *e)
{
	free(e->text);
	memset(e, 0, sizeof *e);
}

void errlist_add(errlist_t *e, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	size_t ll = strnlen(line, sizeof line);
	while (ll > 0 && line[ll - 1] == '\n')
		line[--ll] = '\0';
	e->count++;
	if (e->len + ll + 2 > ERRLIST_MAX) {
		e->dropped++;
		return;
	}
	char *t = realloc(e->text, e->len + ll + 2);
	if (!t)
		abort();
	e->text = t;
	if (e->len > 0)
		e->text[e->len++] = '\n';
	memcpy(e->text + e->len, line, ll);
	e->len += ll;
	e->text[e->len] = '\0';
}

const char *errlist_text(const errlist_t *e)
{
	return e->text ? e->text : "";
}
