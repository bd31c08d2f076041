/*
 * testutil: helpers shared by the test binaries: fd and process audits, running a loop
 * until a condition holds, and the checks every integration test makes at teardown.
 */
#ifndef CDPILOT_TESTS_TESTUTIL_H
#define CDPILOT_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
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

/* Opens the descriptors libuv keeps for the process's life (its signal pipe, taken by the
 * first loop and the first uv_signal or uv_spawn): call it before any fd baseline. */
void tu_warm_up_libuv(void);

/*
 * A test case's env on the heap, for cmocka setup and teardown: a failed check leaves its
 * loop with handles libuv still knows about (SIGCHLD watchers of spawned processes), so a
 * failed test's env is kept, not freed, and the next test does not trip over it.
 * tu_state_alloc: *state = calloc(1, size); 0 or -1. tu_state_release: frees *state when
 * finished (the test got to its end); returns 0.
 */
int tu_state_alloc(void **state, size_t size);
int tu_state_release(void **state, int finished);

/* Fails the running test (cmocka fail_msg) if Chromium cannot be found: tests never skip. */
void tu_require_chromium(void);
/* The start of main() in a test that launches browsers (testutil_browser.c): the
 * exec-wrapper mode (returns 1: main must return 127 at once), SIGPIPE ignored, the process
 * tag, libuv's signal pipe taken before any fd count, LOG_LEVEL (default warn) and
 * LOG_FORMAT, TEST_FILTER. Returns 0 otherwise. */
int tu_browser_test_init(int argc, char **argv);

/*
 * Waits up to timeout_ms for the chromium process count to drop to at most `expected`;
 * returns the last count seen.
 */
int tu_wait_chromium_count(int expected, uint64_t timeout_ms);

/*
 * tu_httpd: a tiny HTTP/1.1 server on the test's loop for the fetch tests. It reads each
 * request head and answers every request the same way (status, content type, body copied;
 * "Connection: close"), or never answers at all when hang is set. Listens on 127.0.0.1 on
 * an ephemeral port. tu_httpd_close() closes the listener and every connection; the memory
 * is freed once all of them have closed (run the loop).
 */
typedef struct tu_httpd tu_httpd_t;
tu_httpd_t *tu_httpd_new(uv_loop_t *loop, int status, const char *content_type,
                         const char *body, size_t body_len, int hang);
int tu_httpd_port(const tu_httpd_t *h);
unsigned tu_httpd_requests(const tu_httpd_t *h);
void tu_httpd_close(tu_httpd_t *h);

/* A 127.0.0.1 TCP port nothing listens on (bound, then closed), or -1. */
int tu_unused_port(void);

/* Removes a directory tree (rm -rf); 0 or -errno. */
int tu_rm_rf(const char *path);

/* 1 if path exists (any type). */
int tu_path_exists(const char *path);

/*
 * Live (not zombie) processes whose command line contains needle as one whole argument
 * or a part of one, e.g. "--user-data-dir=/tmp/cdpilot-chromium-AbC123": every process of
 * a Chromium tree carries its user-data-dir, so this finds one browser's processes without
 * counting other people's Chromium on the machine.
 */
int tu_count_procs_with_arg(const char *needle);
/* Waits up to timeout_ms for tu_count_procs_with_arg(needle) to reach 0; the last count. */
int tu_wait_procs_with_arg(const char *needle, uint64_t timeout_ms);

/* Prints a note (does not fail) if the machine-wide Chromium count has not come back to
 * before within 5 s: other runs on the machine can disturb it. */
void tu_report_chromium_count(int before);

/*
 * Process audit that ignores everyone else's Chromium: tu_tag_processes() puts a marker
 * variable in this process's environment, which every process it starts inherits (the
 * browser, its renderers and zygotes, crashpad handlers, orphans); tu_tagged_count() counts
 * the live processes other than this one that carry it, wherever they were re-parented.
 */
void tu_tag_processes(void);
int tu_tagged_count(void);
/* Sends sig to every tagged process with an argument containing needle (e.g.
 * "--type=renderer"); returns how many were signalled. */
int tu_kill_tagged_with_arg(const char *needle, int sig);
/* Waits up to timeout_ms for tu_tagged_count() <= expected; returns the last count. */
int tu_wait_tagged_count(int expected, uint64_t timeout_ms);

/*
 * Descendants of a process, from /proc (parent chains), identified by (pid, start time) so
 * a later check is safe against pid reuse. Chromium's non-zygote children do not inherit
 * the environment tag, so daemon-level tests audit by descent: take the set while the
 * daemon runs, check after it exits that none of them is alive any more.
 */
typedef struct tu_proc_id {
	pid_t pid;
	unsigned long long start; /* field 22 of /proc/PID/stat */
} tu_proc_id_t;
/* Writes up to max descendants of root to out; returns how many there are (may be > max). */
size_t tu_descendants(pid_t root, tu_proc_id_t *out, size_t max);
/* How many of procs are still alive (same pid and start time; zombies count). */
int tu_alive_count(const tu_proc_id_t *procs, size_t n);
int tu_wait_alive_count(const tu_proc_id_t *procs, size_t n, uint64_t timeout_ms);
/* Sends sig to every descendant of root with an argument containing needle; returns how
 * many were signalled. */
int tu_kill_descendants_with_arg(pid_t root, const char *needle, int sig);

#endif
