/*
 * `cdpilot check-config` (and the settings path of `cdpilot run`) as a child process with a
 * clean environment: for every setting of the table a value of the wrong type, one out of
 * range (where there is a range) and an empty one each give exit 2 and exactly one error
 * naming the variable and the value; empty values that mean something are accepted; the
 * normal output lists every setting with the right source (default, env, flag); several
 * bad values, a near-miss variable and a near-miss flag are all reported at once.
 *
 * The table of bad values below must have a row for every setting check-config prints (and
 * no other): a setting added to daemon/config.c without bad values here fails this test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct bad {
	const char *name;
	const char *wrong;    /* a value of the wrong type or form; NULL: any text is one */
	const char *range;    /* a well-formed value out of range; NULL: no range */
	const char *expected; /* text the error must contain instead of the value, or NULL */
	int empty_ok;         /* "" is accepted (the docs say what it means) */
} bad_t;

static char g_bad_targets[64]; /* a targets file that is not JSON */
static char g_good_targets[64];
static char g_long_ua[600];
static char g_long_prefix[80];

/*
 * Settings in the table that `cdpilot run` does not read yet (none today; the store's were
 * until it was wired into run_parse_args): their wrong and out-of-range values would pass
 * check-config, and this test asserts exactly that, so that it fails the day they are
 * validated: then remove them from this list. Their empty values are refused already
 * (config_check_env).
 */
static const char *const not_read_by_run[] = { NULL };

static int read_by_run(const char *name)
{
	for (size_t i = 0; not_read_by_run[i]; i++)
		if (strcmp(not_read_by_run[i], name) == 0)
			return 0;
	return 1;
}

/* clang-format off */
static const bad_t bads[] = {
	{ "LOG_LEVEL", "loud", NULL, NULL, 0 },
	{ "LOG_FORMAT", "xml", NULL, NULL, 0 },
	{ "CHROMIUM_PATH", "/nonexistent/chromium", NULL, NULL, 0 },
	{ "CHROMIUM_FLAGS", "no-dash", NULL, NULL, 1 },
	{ "CDP_URL", "ftp://127.0.0.1:9222", NULL, NULL, 0 },
	{ "CDP_MAX_MESSAGE_MB", "big", "1025", NULL, 0 },
	{ "CONCURRENCY_CAP", "eight", "257", NULL, 0 },
	{ "LEASE_TIMEOUT_SECONDS", "1m", "86401", NULL, 0 },
	{ "TASK_TIMEOUT_SECONDS", "ten", "3601", NULL, 0 },
	{ "RECYCLE_UPTIME_SECONDS", "-1", "2592001", NULL, 0 },
	{ "RECYCLE_TASK_COUNT", "1e3", "100000001", NULL, 0 },
	{ "BROWSER_IDLE_SECONDS", "5m", "86401", NULL, 0 },
	{ "PAGE_REUSE", "0", "100001", NULL, 0 },
	{ "PAGE_IDLE_SECONDS", "0", "3601", NULL, 0 },
	{ "BLOCK_RESOURCES", "images", NULL, NULL, 0 },
	{ "USER_AGENT", NULL, g_long_ua, "at most 511 characters", 1 },
	{ "VIEWPORT", "big", "99x800", NULL, 0 },
	{ "EXTRA_HEADERS", "[\"X-Team\"]", NULL, NULL, 1 },
	{ "LIVE_INTERVAL_SECONDS", "5s", "0.05", NULL, 0 },
	{ "IMMINENT_INTERVAL_SECONDS", "1m", "86401", NULL, 0 },
	{ "COMPLETED_INTERVAL_SECONDS", "15m", "0", NULL, 0 },
	{ "MAX_QUEUE_DEPTH", "lots", "0", NULL, 0 },
	{ "RETRY_MAX_TRIES", "three", "101", NULL, 0 },
	{ "RETRY_BASE_MS", "1.5", "0", NULL, 0 },
	{ "RETRY_CAP_MS", "1min", "86400001", NULL, 0 },
	{ "FAIL_BACKOFF_CAP_SECONDS", "5m", "86401", NULL, 0 },
	{ "HOST_CONCURRENCY", "four", "0", NULL, 0 },
	{ "HOST_MIN_INTERVAL_MS", "-5", "3600001", NULL, 0 },
	{ "HEALTH_WINDOW_SECONDS", "5m", "86401", NULL, 0 },
	{ "HEALTH_DEGRADED_MEDIAN_SECONDS", "x", "0", NULL, 0 },
	{ "HEALTH_DEGRADED_P95_SECONDS", "1e2", "0.01", NULL, 0 },
	{ "HEALTH_FAILING_MAX_SECONDS", "2m", "86401", NULL, 0 },
	{ "STALL_SECONDS", "soon", "0", NULL, 0 },
	{ "WATCHDOG_INTERVAL_SECONDS", "10s", "0", NULL, 0 },
	{ "PID_THRESHOLD", "many", "9", NULL, 0 },
	{ "BROWSER_RSS_LIMIT_MB", "1G", "63", NULL, 0 },
	{ "PIDS_HEADROOM_PERCENT", "80%", "100", NULL, 0 },
	{ "ORPHAN_GRACE_SECONDS", "5.5", "601", NULL, 0 },
	{ "METRICS_ADDR", "localhost", "127.0.0.1:70000", NULL, 0 },
	{ "METRICS_MAX_CONNS", "x", "4097", NULL, 0 },
	{ "METRICS_MAX_HEAD_BYTES", "8k", "1023", NULL, 0 },
	{ "METRICS_IDLE_TIMEOUT_MS", "10s", "99", NULL, 0 },
	{ "METRICS_HEAD_TIMEOUT_MS", "3s", "600001", NULL, 0 },
	{ "TARGETS_FILE", g_bad_targets, NULL, NULL, 0 },
	{ "OUTPUT", NULL, NULL, NULL, 1 }, /* any path; opened by run */
	{ "TARGETS_WATCH_MS", "300ms", "5", NULL, 0 },
	{ "WATCH_CAP", "x", "1025", NULL, 0 },
	{ "FETCH_CONCURRENCY", "0", "2.5", NULL, 0 },
	{ "FAILING_LEASE_PERCENT", "0", "101", NULL, 0 },
	{ "WATCH_FRAMES", "yes", "1", NULL, 0 },
	{ "WATCH_OPEN_CONCURRENCY", "0", "257", NULL, 0 },
	{ "WATCH_RELOAD_SECONDS", "10m", "0", NULL, 0 },
	{ "WATCH_VERIFY_UNCHANGED_SECONDS", "15s", "86401", NULL, 0 },
	{ "WATCH_VERIFY_SECONDS", "1m", "-1", NULL, 0 },
	{ "ADAPTIVE_VERIFY_SECONDS", "0", "1m", NULL, 0 },
	{ "WATCH_FROZEN_NAVIGATE_SECONDS", "0", "86401", NULL, 0 },
	{ "TARGET_ALLOW", "exa mple.com", NULL, NULL, 0 },
	{ "TARGET_DENY", "10.0.0.1/8", NULL, NULL, 0 },
	{ "DISCOVER_MAX_CHILDREN", "many", "100001", NULL, 0 },
	{ "EXIT_ON_HEALTH_FAILURE", "yes", "2", NULL, 0 },
	{ "HEALTH_FAILURE_EXIT_SECONDS", "5m", "0", NULL, 0 },
	{ "REDIS_URL", "http://127.0.0.1:6379", "redis://127.0.0.1:70000", NULL, 0 },
	{ "REDIS_PREFIX", "cd pilot", g_long_prefix, NULL, 0 },
	{ "SNAPSHOT_TTL_SECONDS", "1d", "31536001", NULL, 0 },
	{ "CHANGES_MAXLEN", "lots", "0", NULL, 0 },
	{ "STORE_BACKLOG_MAX", "1e5", "10000001", NULL, 0 },
	{ "REDIS_TIMEOUT_MS", "2s", "99", NULL, 0 },
	{ "SCHEDULE", "shared", NULL, NULL, 0 },
	{ "SCHEDULE_LEASE_SECONDS", "15s", "1", NULL, 0 },
	{ "SCHEDULE_INSTANCE", "a b", "x/y", NULL, 0 },
};
/* clang-format on */
#define NBADS (sizeof bads / sizeof bads[0])

typedef struct result {
	int code;
	char *out, *err;
} result_t;

static char *slurp(int fd)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	assert_non_null(buf);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

/*
 * Runs `cdpilot CMD args...` with only PATH, TARGETS_FILE (a good one, unless env sets it)
 * and env (NULL-terminated "NAME=value" strings) in its environment.
 */
static result_t run_cli(const char *cmd, const char *const *env, const char *const *args)
{
	const char *bin = getenv("CDPILOT_BIN");
	char *argv[32], *envp[32], tmo[] = "/tmp/cdpilot-cfgtest-outXXXXXX",
	                           tme[] = "/tmp/cdpilot-cfgtest-errXXXXXX";
	char targets[128];
	int na = 0, ne = 0, fo, fe, status = 0, has_targets = 0;
	result_t r = { 0 };
	pid_t pid;

	assert_non_null(bin);
	argv[na++] = (char *)bin;
	argv[na++] = (char *)cmd;
	for (; args && *args; args++)
		argv[na++] = (char *)*args;
	argv[na] = NULL;
	envp[ne++] = "PATH=/usr/bin:/bin";
	for (; env && *env; env++) {
		has_targets |= strncmp(*env, "TARGETS_FILE=", 13) == 0;
		envp[ne++] = (char *)*env;
	}
	snprintf(targets, sizeof targets, "TARGETS_FILE=%s", g_good_targets);
	if (!has_targets)
		envp[ne++] = targets;
	envp[ne] = NULL;
	fo = mkstemp(tmo);
	fe = mkstemp(tme);
	assert_true(fo >= 0 && fe >= 0);
	unlink(tmo);
	unlink(tme);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fo, 1);
		dup2(fe, 2);
		execve(bin, argv, envp);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	r.code = WEXITSTATUS(status);
	r.out = slurp(fo);
	r.err = slurp(fe);
	return r;
}

static void result_free(result_t *r)
{
	free(r->out);
	free(r->err);
}

/* NAME=value in the environment, exit 2, one error naming NAME and the value. */
static void expect_refused(const bad_t *b, const char *value)
{
	char env[700], named[96];
	const char *e[] = { env, NULL };
	/* An empty TARGETS_FILE is also "no targets file", a second line. */
	const char *count = strcmp(b->name, "TARGETS_FILE") == 0 && !*value
	                            ? "check-config: 2 error(s):\n"
	                            : "check-config: 1 error(s):\n";
	result_t r;

	snprintf(env, sizeof env, "%s=%s", b->name, value);
	r = run_cli("check-config", e, NULL);
	if (*value && !read_by_run(b->name)) {
		if (r.code != 0)
			fail_msg("%s='%.40s' is refused now (exit %d): remove %s from "
			         "not_read_by_run[] in test_config_cli.c; stderr:\n%s",
			         b->name, value, r.code, b->name, r.err);
		result_free(&r);
		return;
	}
	snprintf(named, sizeof named, "%s=''", b->name);
	if (r.code != 2 || !strstr(r.err, b->name) ||
	    !strstr(r.err, b->expected && *value ? b->expected : value) || !strstr(r.err, count) ||
	    (!*value && !strstr(r.err, named)))
		fail_msg("%s='%.40s': exit %d, expected 2 and one error naming it; stderr:\n%s",
		         b->name, value, r.code, r.err);
	result_free(&r);
}

static void test_config_cli__every_bad_value_is_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < NBADS; i++) {
		const bad_t *b = &bads[i];
		if (b->wrong)
			expect_refused(b, b->wrong);
		if (b->range)
			expect_refused(b, b->range);
		if (!b->empty_ok) {
			expect_refused(b, "");
		} else {
			char env[128];
			char line[160];
			const char *e[] = { env, NULL };
			result_t r;
			snprintf(env, sizeof env, "%s=", b->name);
			snprintf(line, sizeof line, "\n%s=  (env)\n", b->name);
			r = run_cli("check-config", e, NULL);
			if (r.code != 0 || !strstr(r.out, line))
				fail_msg("%s='' should be accepted: exit %d\n%s%s", b->name, r.code,
				         r.out, r.err);
			result_free(&r);
		}
	}
}

/* PID_THRESHOLD set below what the watch and concurrency caps may need is kept, with a
 * warning naming both caps and the number; not set, it is raised without a word. */
static void test_config_cli__pid_threshold_below_the_caps_warns(void **state)
{
	const char *low[] = { "WATCH_CAP=500", "PID_THRESHOLD=300", NULL };
	const char *unset[] = { "WATCH_CAP=500", NULL };
	result_t r;

	(void)state;
	r = run_cli("check-config", low, NULL);
	assert_int_equal(r.code, 0);
	if (!strstr(r.err, "PID_THRESHOLD=300 is below the 1056 processes WATCH_CAP=500 and "
	                   "CONCURRENCY_CAP=8 may need"))
		fail_msg("no warning for PID_THRESHOLD=300 with WATCH_CAP=500:\n%s", r.err);
	result_free(&r);
	r = run_cli("check-config", unset, NULL);
	assert_int_equal(r.code, 0);
	assert_null(strstr(r.err, "PID_THRESHOLD"));
	result_free(&r);
}

static void test_config_cli__output_lists_every_setting_and_its_source(void **state)
{
	const char *env[] = { "LOG_FORMAT=json", "WATCH_CAP=5", NULL };
	const char *args[] = { "--watch-cap", "7", "--user-agent=probe/1", NULL };
	result_t r;
	size_t lines = 0;

	(void)state;
	r = run_cli("check-config", env, args);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.err, "");
	/* Both ways: every setting of this test's table is printed, every printed one has a
	 * row of bad values here. */
	for (size_t i = 0; i < NBADS; i++) {
		char needle[96];
		snprintf(needle, sizeof needle, "%s%s=", i ? "\n" : "", bads[i].name);
		if (!strstr(r.out, needle))
			fail_msg("check-config does not print %s:\n%s", bads[i].name, r.out);
	}
	for (char *p = r.out; *p; p = strchr(p, '\n') + 1) {
		size_t n = strcspn(p, "="), i;
		lines++;
		for (i = 0; i < NBADS; i++)
			if (strlen(bads[i].name) == n && strncmp(bads[i].name, p, n) == 0)
				break;
		if (i == NBADS)
			fail_msg("check-config prints %.*s, which has no bad values in "
			         "test_config_cli.c: add a row",
			         (int)n, p);
		if (!strchr(p, '\n'))
			break;
	}
	assert_int_equal(lines, NBADS);
	assert_non_null(strstr(r.out, "LOG_FORMAT=json  (env)\n"));
	assert_non_null(strstr(r.out, "\nWATCH_CAP=7  (flag)\n"));
	assert_non_null(strstr(r.out, "\nUSER_AGENT=probe/1  (flag)\n"));
	assert_non_null(strstr(r.out, "\nCONCURRENCY_CAP=8  (default)\n"));
	assert_non_null(strstr(r.out, "\nCDP_URL=  (default: "));
	assert_non_null(strstr(r.out, "\nTARGETS_FILE=/"));
	result_free(&r);

	/* -v adds the range and the meaning under each line; a flag's value is not -v. */
	r = run_cli("check-config", NULL, (const char *[]){ "--chromium-flags", "-v", "-v", NULL });
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.out, "\nCONCURRENCY_CAP=8  (default)\n    [pool] 1 to 256; "));
	assert_non_null(strstr(r.out, "\nCHROMIUM_FLAGS=-v  (flag)\n"));
	result_free(&r);
	r = run_cli("check-config", NULL, (const char *[]){ "--chromium-flags", "-v", NULL });
	assert_int_equal(r.code, 0);
	assert_null(strstr(r.out, "    [pool]"));
	result_free(&r);
}

static void test_config_cli__every_error_at_once(void **state)
{
	const char *env[] = { "CONCURRENCY_CAP=0", "VIEWPORT=x",
		              "STALL_SECONDS=abc", "METRICS_MAX_CONNS=0",
		              "LOG_FORMAT=xml",    "CONCURENCY_CAP=1",
		              "PID_THRESHOLD=",    NULL };
	const char *args[] = { "--watch-cap", "0", "--wach-cap", "3", NULL };
	static const char *const want[] = {
		"CONCURRENCY_CAP='0'",
		"VIEWPORT='x'",
		"STALL_SECONDS='abc'",
		"METRICS_MAX_CONNS='0'",
		"LOG_FORMAT='xml'",
		"unknown setting CONCURENCY_CAP (did you mean CONCURRENCY_CAP?)",
		"PID_THRESHOLD='': empty",
		"WATCH_CAP='0'",
		"unknown option --wach-cap (did you mean --watch-cap?)",
	};
	result_t r;

	(void)state;
	r = run_cli("check-config", env, args);
	assert_int_equal(r.code, 2);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		if (!strstr(r.err, want[i]))
			fail_msg("missing '%s' in:\n%s", want[i], r.err);
	assert_non_null(strstr(r.err, "check-config: 9 error(s):\n"));
	result_free(&r);
}

static void test_config_cli__run_takes_the_same_flags(void **state)
{
	const char *args[] = { "--concurrency-cap", "0", "--concurency-cap=2", NULL };
	const char *good[] = { "--log-level=error", "--help", NULL };
	result_t r;

	(void)state;
	r = run_cli("run", NULL, args);
	assert_int_equal(r.code, 2);
	assert_non_null(strstr(r.err, "cdpilot run: 2 error(s):\n"));
	assert_non_null(
	        strstr(r.err, "CONCURRENCY_CAP='0': expected a whole number from 1 to 256"));
	assert_non_null(strstr(r.err, "unknown option --concurency-cap (did you mean "
	                              "--concurrency-cap?)"));
	result_free(&r);
	/* A good flag passes, and run's own options still work after the settings are out. */
	r = run_cli("run", NULL, good);
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.out, "usage: cdpilot run"));
	result_free(&r);
}

static int make_files(void **state)
{
	FILE *f;
	int fd;

	(void)state;
	snprintf(g_bad_targets, sizeof g_bad_targets, "/tmp/cdpilot-cfgtest-badXXXXXX");
	snprintf(g_good_targets, sizeof g_good_targets, "/tmp/cdpilot-cfgtest-goodXXXXXX");
	fd = mkstemp(g_bad_targets);
	if (fd < 0 || write(fd, "not json\n", 9) != 9)
		return -1;
	close(fd);
	fd = mkstemp(g_good_targets);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		return -1;
	fputs("{\"targets\": []}\n", f);
	fclose(f);
	memset(g_long_ua, 'a', 520);
	g_long_ua[520] = '\0';
	memset(g_long_prefix, 'p', 64);
	g_long_prefix[64] = '\0';
	return 0;
}

static int remove_files(void **state)
{
	(void)state;
	unlink(g_bad_targets);
	unlink(g_good_targets);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_cli__output_lists_every_setting_and_its_source),
		cmocka_unit_test(test_config_cli__every_bad_value_is_refused),
		cmocka_unit_test(test_config_cli__every_error_at_once),
		cmocka_unit_test(test_config_cli__run_takes_the_same_flags),
		cmocka_unit_test(test_config_cli__pid_threshold_below_the_caps_warns),
	};
	return cmocka_run_group_tests(tests, make_files, remove_files);
}
