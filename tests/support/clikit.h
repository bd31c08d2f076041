/*
 * clikit: the harness of the integration tests that run the cdpilot binary ($CDPILOT_BIN,
 * set by ctest) as a child process: one loop with the fixture server in process on it, the
 * binary spawned with uv_spawn and its stdout and stderr captured through uv pipes, its
 * exit code and signal, its stdout parsed as JSON, and the audit after each run (no
 * Chromium process nor user-data-dir the run named is left, the run tore down cleanly).
 * Moved here from test_scrape_cli.c and test_try.c, which had the same copy.
 *
 * Use: the case's env starts with a ck_env_t (cmocka setup ck_setup() or a tu_state_alloc()
 * of the larger env, teardown ck_teardown()); ck_env_open() at the start of a case,
 * ck_run_start() + ck_run_finish() (+ ck_audit_after()) per run, ck_run_release() after
 * the checks, ck_env_close() at the end.
 */
#ifndef CDPILOT_TESTS_CLIKIT_H
#define CDPILOT_TESTS_CLIKIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tests/fixture/fixture.h"

#define CK_OUT_MAX (1024 * 1024)
#define CK_UDD_GLOB "/tmp/cdpilot-chromium-*"

typedef struct ck_capture {
	uv_pipe_t pipe;
	char *buf; /* NUL-terminated, NULL if nothing was read */
	size_t len;
	int eof;
} ck_capture_t;

typedef struct ck_run {
	uv_loop_t *loop;
	uv_process_t proc;
	ck_capture_t out, err;
	int exited;
	int64_t exit_status;
	int term_signal;
	int closed; /* handles closed */
	json_t *json; /* the parsed stdout (ck_run_finish), or NULL */
	uint64_t elapsed_ms;
} ck_run_t;

typedef struct ck_env {
	uv_loop_t loop;
	fixture_t *fx;
	int fx_closed;
	int fds_before, chrom_before, udd_before;
	int finished; /* ck_env_close() completed */
} ck_env_t;

/* What ck_run_finish() makes of stdout. */
typedef enum ck_stdout {
	CK_NO_JSON = 0,   /* nothing: r->json stays NULL */
	CK_ONE_OBJECT,    /* exactly one JSON object on one line: r->json is it */
	CK_JSON_LINES,    /* one JSON object per line: r->json is an array of them */
} ck_stdout_t;

/* cmocka setup and teardown of a case whose state is one ck_env_t on the heap (an env
 * starting with a ck_env_t for ck_teardown); teardown frees it only once ck_env_close()
 * has completed (tu_state_release: a failed test's env is kept, not freed). */
int ck_setup(void **state);
int ck_teardown(void **state);

/* Zeroes e, takes the fd, Chromium and user-data-dir baselines, starts the loop and the
 * fixture on it. */
void ck_env_open(ck_env_t *e);
/* Closes the fixture and the loop; asserts the fd count is back to the baseline. Sets
 * e->finished. */
void ck_env_close(ck_env_t *e);

/* How many CK_UDD_GLOB dirs exist now. */
int ck_udd_count(void);

/* Spawns cdpilot with args (NULL-terminated, without argv[0]) on loop; does not wait.
 * Fails the test if CDPILOT_BIN is unset or the spawn fails. */
void ck_run_start(ck_run_t *r, uv_loop_t *loop, const char *const *args);
/* Waits up to timeout_ms for exit and both pipes' EOF (SIGKILL after it), closes the
 * handles, parses stdout as expect says (a parse failure fails the test). */
void ck_run_finish(ck_run_t *r, uint64_t timeout_ms, ck_stdout_t expect);
/* Frees what the run captured and parsed; r may be reused. */
void ck_run_release(ck_run_t *r);

/* Shows what the run printed (for a failing check). */
void ck_run_dump(const ck_run_t *r);
/* Asserts the run exited normally with code (dumping it otherwise). */
void ck_expect_exit(const ck_run_t *r, int code);

/* Checks that the run left no Chromium and no user-data-dir behind (every one its log
 * named), and that its own teardown audit passed. */
void ck_audit_after(const ck_env_t *e, const ck_run_t *r);

#endif
