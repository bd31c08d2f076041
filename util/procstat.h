/*
 * procstat: the two steps every /proc/PID/stat reader shares. The command name in
 * "pid (comm) state ppid ..." may hold spaces and ')', so the fields after it are counted
 * from the LAST ')' (as procps readproc.c does), then taken one at a time, each after a
 * single space. What a field means and how it is checked stays with the caller
 * (browser_parse_proc_stat() in pool/, wd_parse_stat() in watchdog/). Pure functions of the
 * text they are given, no I/O, so fuzzers and tests drive them on any input.
 */
#ifndef CDPILOT_UTIL_PROCSTAT_H
#define CDPILOT_UTIL_PROCSTAT_H

#include <stddef.h>

/*
 * Returns the position just past the last ')' of buf (len bytes, need not be
 * NUL-terminated), where field 3 (state) starts with its space; NULL if buf has no ')'.
 */
const char *procstat_after_comm(const char *buf, size_t len);

/*
 * Takes the next field of the text from *pos to end: expects exactly one ' ' at *pos, then
 * the field runs to the next ' ', '\n' or end. Sets *tok and *n to it and moves *pos just
 * past it. Returns 0, or -EINVAL (nothing set) if *pos is not a space or the field is empty.
 */
int procstat_next_field(const char **pos, const char *end, const char **tok, size_t *n);

#endif
