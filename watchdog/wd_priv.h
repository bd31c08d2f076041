/*
 * wd_priv: what the files of the watchdog's /proc and cgroup readers share (wd_proc.c,
 * wd_cgroup.c). Not a public interface: nothing outside watchdog/ includes it.
 */
#ifndef CDPILOT_WATCHDOG_WD_PRIV_H
#define CDPILOT_WATCHDOG_WD_PRIV_H

#include <stddef.h>
#include <stdint.h>

/* Reads at most cap bytes of a small file (a /proc or cgroup file) into buf; *len gets
 * how many. Returns 0 or -errno. */
int wd__read_small(const char *path, char *buf, size_t cap, size_t *len);
/* A whole decimal number of n bytes at s (at most 20 digits, no overflow). Returns 0 or
 * -EINVAL. */
int wd__parse_u64(const char *s, size_t n, uint64_t *out);

#endif
