/*
 * testutil: helpers shared by the test binaries: fd and process audits, running a loop
 * until a condition holds, and the checks every integration test makes at teardown.
 */
#ifndef CDPILOT_TESTS_TESTUTIL_H
#define CDPILOT_TESTS_TESTUTIL_H

#include <stdint.h>
#include <uv.h>

/* Open file descriptors of this process (entries of /proc/self/fd). */
int tu_fd_count(void);

/* Processes on the machine whose comm starts with "chrom" (chromium, chrome_crashpad...). */
int tu_chromium_count(void);

/* Runs loop until *flag becomes non-zero or timeout_ms passes. Returns 1 if the flag was set. */
int tu_run_until(uv_loop_t *loop, const volatile int *flag, uint64_t timeout_ms);

/* Runs the loop until it has nothing left to do, then asserts uv_loop_close() == 0. */
void tu_loop_finish(uv_loop_t *loop);

/* Milliseconds of a monotonic clock. */
uint64_t tu_now_ms(void);

/* Fails the running test (cmocka fail_msg) if Chromium cannot be found: tests never skip. */
void tu_require_chromium(void);

/*
 * Waits up to timeout_ms for the chromium process count to drop to at most `expected`;
 * returns the last count seen.
 */
int tu_wait_chromium_count(int expected, uint64_t timeout_ms);

#endif
