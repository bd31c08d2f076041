/*
 * daemonkit: drives whole programs from a test, in plain blocking code: the fixture web
 * server (cdpilot-fixture) and `cdpilot run` as child processes, HTTP GETs with libcurl's
 * easy interface, and the JSON-lines sink read back from its file. For the daemon-level
 * integration tests and the PID 1 test, where the code under test is a separate process.
 *
 * Every spawned process is the caller's to stop (dk_stop); dk_proc_release() kills what
 * is still running (SIGKILL) and removes its log files, so a failed test leaves nothing.
 */
#ifndef CDPILOT_TESTS_DAEMONKIT_H
#define CDPILOT_TESTS_DAEMONKIT_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct dk_proc {
	pid_t pid;          /* 0 once reaped */
	int status;         /* waitpid status once reaped */
	char out_path[256]; /* its stdout and stderr, in files */
	char err_path[256];
} dk_proc_t;

/* Starts argv[0] (a path) with the test's environment plus env_extra ("K=V", NULL-ended;
 * "K=" unsets K). stdout and stderr go to temp files. Returns 0 or -errno. */
int dk_spawn(dk_proc_t *p, const char *const argv[], const char *const env_extra[]);
/* Waits for the process to exit, up to timeout_ms. Returns 1 if it exited (status set). */
int dk_wait(dk_proc_t *p, uint64_t timeout_ms);
/* SIGTERM, wait up to timeout_ms; returns the exit code (>= 0), 128+signal, or -1 if it
 * had to be SIGKILLed. */
int dk_stop(dk_proc_t *p, uint64_t timeout_ms);
void dk_proc_release(dk_proc_t *p);
/* The whole stdout/stderr so far (malloc'd, NUL-terminated). */
char *dk_read_file(const char *path);

/* Starts CDPILOT_FIXTURE_BIN on an ephemeral port; base gets "http://127.0.0.1:PORT". */
int dk_fixture_start(dk_proc_t *p, char *base, size_t baselen);
/* The same with env_extra (as dk_spawn), e.g. "FIXTURE_REQUEST_LOG=PATH". */
int dk_fixture_start_env(dk_proc_t *p, char *base, size_t baselen,
                         const char *const env_extra[]);

/*
 * dk_bed: what a daemon-level case starts from: the test's process tag, a temp dir
 * /tmp/cdpilot-test-NAME-XXXXXX with the paths of the targets file and of one daemon's
 * sink in it, and cdpilot-fixture running. The case's env starts with a dk_bed_t.
 */
typedef struct dk_bed {
	dk_proc_t fx;   /* cdpilot-fixture */
	dk_proc_t d;    /* the daemon of a one-daemon case */
	char base[128]; /* the fixture's http://127.0.0.1:PORT */
	char dir[64];
	char targets[128]; /* dir/targets.json (the case writes it) */
	char out[128];     /* dir/out.jsonl, the one daemon's sink */
	char metrics[64];  /* the one daemon's METRICS_ADDR (dk_run_start) */
	int port;          /* its port */
	char reqlog[128];  /* dir/requests.log: the fixture's FIXTURE_REQUEST_LOG */
} dk_bed_t;
/* cmocka setup: *state = a zeroed env of env_size bytes (a dk_bed_t first), its bed opened
 * for the test called name, the fixture logging every request to reqlog. 0 or -1. */
int dk_bed_setup(void **state, size_t env_size, const char *name);
/* Kills the daemon and the fixture if still running and removes the dir. */
void dk_bed_release(dk_bed_t *b);
/* cmocka teardown of dk_bed_setup: releases the bed and frees the env. */
int dk_bed_teardown(void **state);

/*
 * Starts `[prefix...] $CDPILOT_BIN run --targets targets --output out --no-status` as p,
 * with METRICS_ADDR on an unused loopback port ("127.0.0.1:PORT" written to metrics) and
 * env_extra (NULL-ended, may be NULL). Fails the test if it cannot; returns the port.
 */
int dk_run_start(dk_proc_t *p, const char *targets, const char *out, char *metrics,
                 size_t metricslen, const char *const prefix[], const char *const env_extra[]);

/* dk_run_start() of the bed's one daemon (b->d, its targets, sink and metrics address)
 * with LOG_LEVEL=info and env_extra (NULL-ended, may be NULL). */
void dk_bed_run(dk_bed_t *b, const char *const env_extra[]);

/* GET url; returns the body (malloc'd) and the HTTP code, or NULL. */
char *dk_http_get(const char *url, long *code);
/* The value of the sample named series (a metric name with its labels, as printed) in the
 * /metrics of the daemon at metrics ("127.0.0.1:PORT"); -1 if it has none. Fails the test
 * if /metrics does not answer. */
double dk_metric(const char *metrics, const char *series);
/* GET url and parse the body as JSON (new reference) or NULL. */
json_t *dk_http_get_json(const char *url);
/* The metric families of a live /metrics text (its "# TYPE" lines) against
 * docker/metric-names.txt: every family scraped is listed, and every listed name is
 * scraped, or, if its line is marked "# when COND", is scraped exactly when COND is one of
 * the words of conds ("redis schedule": the daemon runs with REDIS_URL and SCHEDULE=redis).
 * Fails the test naming each difference. */
void dk_check_metric_names(const char *metrics_text, const char *conds);

/* Every line of a JSON-lines file parsed, as an array (new reference; an unparsable
 * line fails the test). A missing file is an empty array. */
json_t *dk_read_jsonl(const char *path);

/*
 * The fixture's request log (FIXTURE_REQUEST_LOG: "<unix ms> <path>[?<query>]" a line),
 * read back per target: a target's URL names it in its query as KEY=N (write_targets in
 * test_share: "?t=12"). Checks of who fetched what, from outside cdpilot.
 */
typedef struct dk_req {
	int64_t at_ms; /* arrival at the fixture, Unix ms */
	int target;    /* N */
} dk_req_t;
/* Every request of the log at path whose query has key=N with 0 <= N < ntargets, sorted
 * by target, then time, into *out (malloc'd; free() it). Returns how many. A missing log
 * is empty. */
size_t dk_reqlog_read(const char *path, const char *key, int ntargets, dk_req_t **out);
/* How many of reqs arrived in [from_ms, to_ms). */
size_t dk_reqlog_count(const dk_req_t *reqs, size_t n, int64_t from_ms, int64_t to_ms);
/* "Double scrapes": the pairs of consecutive requests of one target (reqs sorted as
 * dk_reqlog_read leaves them) both arriving in [from_ms, to_ms) less than gap_ms apart
 * (half the interval: each target is due once an interval, so two instances scraping it
 * at once show as two requests within milliseconds). Prints the first few, names them
 * with label; returns how many. */
int dk_reqlog_doubles(const dk_req_t *reqs, size_t n, int64_t from_ms, int64_t to_ms,
                      int64_t gap_ms, const char *label);
/* The last request of target t in reqs that arrived before before_ms, or NULL. */
const dk_req_t *dk_reqlog_last(const dk_req_t *reqs, size_t n, int t, int64_t before_ms);

/* Writes text to path (fails the test on error). */
void dk_write_file(const char *path, const char *text);
/* A targets file at path: n live jsonapi targets KEY000.. on the fixture at base, each its
 * own URL (/live/api/matches?KEY=i, so that they differ only by query), with fields (a JSON
 * object's text). */
void dk_write_jsonapi_targets(const char *path, const char *base, const char *key, int n,
                              const char *fields);
/* Prints the tail of a process's stderr (for a failure message). */
void dk_dump_log(const dk_proc_t *p);
/* Stops a daemon with SIGTERM and checks it exited 0 and that every process it had below it
 * (taken just before the signal, by pid and start time; none if no target needed a
 * browser) is gone within 10 s. */
void dk_stop_clean(dk_proc_t *p);

/* The wall clock in Unix ms (what snapshots' scraped_at say). */
int64_t dk_wall_ms(void);
/* Parses an RFC 3339 "...T14:17:32.123Z" (a snapshot's scraped_at) into Unix ms; fails the
 * test on anything else. */
int64_t dk_parse_time(const char *s);
/* Sleeps ms milliseconds. */
void dk_sleep_ms(uint64_t ms);

#endif
