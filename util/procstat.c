/* procstat: the split on the last ')' and the field stepper of /proc/PID/stat readers. */
#include "util/procstat.h"

#include <errno.h>

const char *procstat_after_comm(const char *buf, size_t len)
{
	for (size_t i = len; i > 0; i--) {
		if (buf[i - 1] == ')')
			return buf + i;
	}
	return NULL;
}

int procstat_next_field(const char **pos, const char *end, const char **tok, size_t *n)
{
	const char *p = *pos, *t;

	if (p >= end || *p != ' ')
		return -EINVAL;
	t = ++p;
	while (p < end && *p != ' ' && *p != '\n')
		p++;
	if (p == t)
		return -EINVAL;
	*tok = t;
	*n = (size_t)(p - t);
	*pos = p;
	return 0;
}
