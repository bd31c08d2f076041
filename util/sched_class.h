/*
 * sched_class: the priority classes of targets, highest first. Shared by the scheduler
 * (which orders by them), the adapters (which classify what they read) and the daemon.
 */
#ifndef CDPILOT_UTIL_SCHED_CLASS_H
#define CDPILOT_UTIL_SCHED_CLASS_H

#include <string.h>

enum sched_class {
	SCHED_LIVE = 0,      /* a match in play: refreshed every few seconds */
	SCHED_IMMINENT,      /* about to start */
	SCHED_COMPLETED,     /* finished: refreshed rarely */
	SCHED_NCLASSES
};

static inline const char *sched_class_name(enum sched_class c)
{
	static const char *const names[SCHED_NCLASSES] = { "live", "imminent", "completed" };
	return (unsigned)c < SCHED_NCLASSES ? names[c] : "unknown";
}

/* -1 if name is not a class name. */
static inline int sched_class_parse(const char *name)
{
	for (int c = 0; c < SCHED_NCLASSES; c++)
		if (name && strcmp(name, sched_class_name((enum sched_class)c)) == 0)
			return c;
	return -1;
}

#endif
