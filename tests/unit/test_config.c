/*
 * Unit tests for daemon/config: the table's shape, flags into the environment (both forms,
 * "--", a missing value, near misses with a suggestion, other arguments left in order),
 * near-miss environment names (and ordinary environment left alone), empty values, the
 * startup checks of the settings no module validates, sources and the printed lines.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/config.h"

/* Every setting unset, no flag remembered: each test starts from the defaults. */
static int clean_env(void **state)
{
	size_t n;
	const config_setting_t *t = config_settings(&n);

	(void)state;
	for (size_t i = 0; i < n; i++)
		unsetenv(t[i].env);
	unsetenv("CONCURENCY_CAP");
	unsetenv("concurrency_cap");
	unsetenv("LOG_LVL");
	config_reset();
	return 0;
}

static int has_line(const errlist_t *e, const char *needle)
{
	return strstr(errlist_text(e), needle) != NULL;
}

static void test_config__table_is_consistent(void **state)
{
	size_t n;
	const config_setting_t *t = config_settings(&n);

	(void)state;
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		char want[96] = "--";
		size_t k = 2;
		for (const char *p = t[i].env; *p && k < sizeof want - 1; p++)
			want[k++] = *p == '_' ? '-' : (char)tolower((unsigned char)*p);
		want[k] = '\0';
		/* The flag is the name in lower case with dashes, but for the two that `run`
		 * always had. */
		if (strcmp(t[i].env, "TARGETS_FILE") == 0)
			assert_string_equal(t[i].flag, "--targets");
		else if (strcmp(t[i].env, "OUTPUT") == 0)
			assert_string_equal(t[i].flag, "--output");
		else
			assert_string_equal(t[i].flag, want);
		for (const char *p = t[i].env; *p; p++)
			assert_true((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			            *p == '_');
		assert_true(t[i].def[0] && t[i].range[0] && t[i].meaning[0] && t[i].group[0]);
		assert_ptr_equal(config_find_env(t[i].env), &t[i]);
		assert_ptr_equal(config_find_flag(t[i].flag), &t[i]);
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(t[i].env, t[j].env);
			assert_string_not_equal(t[i].flag, t[j].flag);
		}
	}
	assert_null(config_find_env("NOT_A_SETTING"));
	assert_ptr_equal(config_find_flag("--watch-cap=3"), config_find_env("WATCH_CAP"));
	assert_null(config_find_flag("--watch-ca"));
}

static void test_config__distance(void **state)
{
	(void)state;
	assert_int_equal(config_distance("CONCURRENCY_CAP", "CONCURRENCY_CAP"), 0);
	assert_int_equal(config_distance("CONCURENCY_CAP", "CONCURRENCY_CAP"), 1);
	assert_int_equal(config_distance("concurrency_cap", "CONCURRENCY_CAP"), 0);
	assert_int_equal(config_distance("LOG_LVL", "LOG_LEVEL"), 2);
	assert_int_equal(config_distance("", "abc"), 3);
	assert_int_equal(config_distance("PATH", "HEALTH_DEGRADED_MEDIAN_SECONDS"), 9);
}

static void test_config__flags_set_the_environment(void **state)
{
	char *argv[] = { "run",
		         "--targets",
		         "t.json",
		         "--concurrency-cap",
		         "9",
		         "--viewport=800x600",
		         "--duration",
		         "5",
		         "--status",
		         "--chromium-flags",
		         "--no-sandbox --mute-audio",
		         "--user-agent=",
		         NULL };
	int argc = 12;
	errlist_t e;

	(void)state;
	errlist_init(&e);
	setenv("LEASE_TIMEOUT_SECONDS", "7", 1);
	assert_int_equal(config_apply_flags(&argc, argv, &e), 0);
	assert_int_equal(e.count, 0);
	/* What is not a setting stays, in order, for run's own parser. */
	assert_int_equal(argc, 4);
	assert_string_equal(argv[0], "run");
	assert_string_equal(argv[1], "--duration");
	assert_string_equal(argv[2], "5");
	assert_string_equal(argv[3], "--status");
	assert_null(argv[4]);
	assert_string_equal(getenv("TARGETS_FILE"), "t.json");
	assert_string_equal(getenv("CONCURRENCY_CAP"), "9");
	assert_string_equal(getenv("VIEWPORT"), "800x600");
	/* A value starting with "--" is the flag's value, as with getopt. */
	assert_string_equal(getenv("CHROMIUM_FLAGS"), "--no-sandbox --mute-audio");
	assert_string_equal(getenv("USER_AGENT"), "");
	assert_int_equal(config_source(config_find_env("CONCURRENCY_CAP")), CONFIG_SRC_FLAG);
	assert_int_equal(config_source(config_find_env("TARGETS_FILE")), CONFIG_SRC_FLAG);
	assert_int_equal(config_source(config_find_env("LEASE_TIMEOUT_SECONDS")), CONFIG_SRC_ENV);
	assert_int_equal(config_source(config_find_env("WATCH_CAP")), CONFIG_SRC_DEFAULT);
	assert_string_equal(config_source_name(CONFIG_SRC_FLAG), "flag");
	assert_string_equal(config_source_name(CONFIG_SRC_ENV), "env");
	assert_string_equal(config_source_name(CONFIG_SRC_DEFAULT), "default");
	errlist_release(&e);
}

static void test_config__flag_wins_over_env_and_last_flag_wins(void **state)
{
	char *argv[] = { "run", "--watch-cap", "3", "--watch-cap=4", NULL };
	int argc = 4;
	errlist_t e;

	(void)state;
	errlist_init(&e);
	setenv("WATCH_CAP", "100", 1);
	assert_int_equal(config_apply_flags(&argc, argv, &e), 0);
	assert_int_equal(argc, 1);
	assert_string_equal(getenv("WATCH_CAP"), "4");
	assert_int_equal(config_source(config_find_env("WATCH_CAP")), CONFIG_SRC_FLAG);
	errlist_release(&e);
}

static void test_config__double_dash_ends_the_flags(void **state)
{
	char *argv[] = { "run", "--watch-cap", "3", "--", "--concurrency-cap", "5", NULL };
	int argc = 6;
	errlist_t e;

	(void)state;
	errlist_init(&e);
	assert_int_equal(config_apply_flags(&argc, argv, &e), 0);
	assert_int_equal(argc, 4);
	assert_string_equal(argv[1], "--");
	assert_string_equal(argv[2], "--concurrency-cap");
	assert_null(getenv("CONCURRENCY_CAP"));
	errlist_release(&e);
}

static void test_config__flag_without_value(void **state)
{
	char *argv[] = { "run", "--status", "--watch-cap", NULL };
	int argc = 3;
	errlist_t e;

	(void)state;
	errlist_init(&e);
	assert_int_equal(config_apply_flags(&argc, argv, &e), -22);
	assert_int_equal(e.count, 1);
	assert_true(has_line(&e, "--watch-cap: expected a value (1 to 1024)"));
	assert_int_equal(argc, 2);
	assert_null(getenv("WATCH_CAP"));
	errlist_release(&e);
}

static void test_config__unknown_flag_close_to_a_setting(void **state)
{
	char *argv[] = { "run",         "--concurency-cap",
		         "4",           "--log-levle=debug",
		         "--duration",  "5",
		         "--no-status", "--frobnicate",
		         "--help",      NULL };
	int argc = 9;
	errlist_t e;

	(void)state;
	errlist_init(&e);
	assert_int_equal(config_apply_flags(&argc, argv, &e), -22);
	assert_int_equal(e.count, 2);
	assert_true(has_line(&e, "unknown option --concurency-cap (did you mean "
	                         "--concurrency-cap?)"));
	assert_true(has_line(&e, "unknown option --log-levle (did you mean --log-level?)"));
	/* The near misses and the first one's value are gone; run's own options and what is
	 * far from any setting are left for run's parser to judge. */
	assert_int_equal(argc, 6);
	assert_string_equal(argv[1], "--duration");
	assert_string_equal(argv[2], "5");
	assert_string_equal(argv[3], "--no-status");
	assert_string_equal(argv[4], "--frobnicate");
	assert_string_equal(argv[5], "--help");
	assert_null(getenv("CONCURRENCY_CAP"));
	assert_null(getenv("LOG_LEVEL"));
	errlist_release(&e);
}

static void test_config__unknown_env_close_to_a_setting(void **state)
{
	errlist_t e;

	(void)state;
	errlist_init(&e);
	setenv("CONCURENCY_CAP", "4", 1);
	setenv("concurrency_cap", "4", 1);
	setenv("LOG_LVL", "debug", 1);
	assert_int_equal(config_check_env(&e), -22);
	assert_int_equal(e.count, 3);
	assert_true(has_line(&e, "unknown setting CONCURENCY_CAP (did you mean CONCURRENCY_CAP?)"));
	assert_true(
	        has_line(&e, "unknown setting concurrency_cap (did you mean CONCURRENCY_CAP?)"));
	assert_true(has_line(&e, "unknown setting LOG_LVL (did you mean LOG_LEVEL?)"));
	errlist_release(&e);
}

static void test_config__ordinary_environment_is_left_alone(void **state)
{
	static const char *const ordinary[] = {
		"PATH",       "HOME",       "HOSTNAME",
		"TERM",       "LANG",       "SHELL",
		"USER",       "LC_ALL",     "XDG_RUNTIME_DIR",
		"TMPDIR",     "OLDPWD",     "SHLVL",
		"NO_PROXY",   "http_proxy", "CDPILOT_BIN",
		"CI",         "LOGNAME",    "REDIS_HOST",
		"REDIS_PORT", "DISPLAY",    "SSH_TTY",
		"LS_COLORS",  "CDP_PORT",   "LOG_DIR",
		"HEALTH",
	};
	errlist_t e;

	(void)state;
	for (size_t i = 0; i < sizeof ordinary / sizeof ordinary[0]; i++)
		if (!getenv(ordinary[i]))
			setenv(ordinary[i], "x", 1);
	errlist_init(&e);
	assert_int_equal(config_check_env(&e), 0);
	assert_string_equal(errlist_text(&e), "");
	errlist_release(&e);
	for (size_t i = 0; i < sizeof ordinary / sizeof ordinary[0]; i++)
		if (strcmp(getenv(ordinary[i]), "x") == 0)
			unsetenv(ordinary[i]);
}

static void test_config__empty_values(void **state)
{
	errlist_t e;

	(void)state;
	errlist_init(&e);
	setenv("CONCURRENCY_CAP", "", 1);
	setenv("LOG_LEVEL", "", 1);
	setenv("CDP_URL", "", 1);
	/* Empty means something for these: not an error. */
	setenv("USER_AGENT", "", 1);
	setenv("CHROMIUM_FLAGS", "", 1);
	setenv("EXTRA_HEADERS", "", 1);
	setenv("OUTPUT", "", 1);
	assert_int_equal(config_check_env(&e), -22);
	assert_int_equal(e.count, 3);
	assert_true(has_line(&e, "CONCURRENCY_CAP='': empty; expected 1 to 256 (unset it for "
	                         "the default)"));
	assert_true(has_line(&e, "LOG_LEVEL='': empty; expected debug, info, warn, error or off"));
	assert_true(has_line(&e, "CDP_URL='': empty; expected ws://HOST:PORT/PATH or "
	                         "http://HOST:PORT"));
	/* Reported once: the module that reads it sees it unset. */
	assert_null(getenv("CONCURRENCY_CAP"));
	assert_null(getenv("LOG_LEVEL"));
	assert_string_equal(getenv("USER_AGENT"), "");
	assert_string_equal(getenv("OUTPUT"), "");
	errlist_release(&e);
}

static void test_config__checks_of_unvalidated_settings(void **state)
{
	errlist_t e;

	(void)state;
	errlist_init(&e);
	setenv("CDP_URL", "http://127.0.0.1:9222", 1);
	setenv("CHROMIUM_PATH", "/bin/sh", 1);
	setenv("CHROMIUM_FLAGS", " --no-sandbox\t--mute-audio ", 1);
	assert_int_equal(config_check_env(&e), 0);
	setenv("CDP_URL", "ws://127.0.0.1:9222/devtools/browser/x", 1);
	assert_int_equal(config_check_env(&e), 0);
	assert_int_equal(e.count, 0);

	setenv("CDP_URL", "https://example.com", 1);
	setenv("CHROMIUM_PATH", "/nonexistent/chromium", 1);
	setenv("CHROMIUM_FLAGS", "--no-sandbox about:blank", 1);
	assert_int_equal(config_check_env(&e), -22);
	assert_int_equal(e.count, 3);
	assert_true(has_line(&e, "CDP_URL='https://example.com': expected ws://HOST:PORT/PATH or "
	                         "http://HOST:PORT"));
	assert_true(has_line(&e, "CHROMIUM_PATH='/nonexistent/chromium': expected the path of an "
	                         "executable file"));
	assert_true(has_line(&e, "CHROMIUM_FLAGS='--no-sandbox about:blank': expected Chromium "
	                         "switches"));
	errlist_release(&e);

	errlist_init(&e);
	setenv("CDP_URL", "http://", 1);
	setenv("CHROMIUM_PATH", "/tmp", 1); /* a directory */
	unsetenv("CHROMIUM_FLAGS");
	assert_int_equal(config_check_env(&e), -22);
	assert_int_equal(e.count, 2);
	errlist_release(&e);
}

static void test_config__print(void **state)
{
	char *argv[] = { "check-config", "--pid-threshold", "300", NULL };
	int argc = 3;
	errlist_t e;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	errlist_init(&e);
	setenv("LOG_FORMAT", "json", 1);
	assert_int_equal(config_apply_flags(&argc, argv, &e), 0);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	config_print(f, 0);
	fclose(f);
	assert_non_null(strstr(buf, "LOG_LEVEL=info  (default)\n"));
	assert_non_null(strstr(buf, "LOG_FORMAT=json  (env)\n"));
	assert_non_null(strstr(buf, "PID_THRESHOLD=300  (flag)\n"));
	assert_non_null(strstr(buf, "USER_AGENT=  (default: Chromium's)\n"));
	assert_null(strstr(buf, "    ["));
	free(buf);

	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	config_print(f, 1);
	fclose(f);
	assert_non_null(strstr(buf, "PID_THRESHOLD=300  (flag)\n    [watchdog] 10 to 100000; "));
	free(buf);

	errlist_add(&e, "A='1': expected x");
	errlist_add(&e, "B='2': expected y");
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	config_print_errors(f, "run", &e);
	fclose(f);
	assert_string_equal(buf,
	                    "cdpilot run: 2 error(s):\nA='1': expected x\nB='2': expected y\n");
	free(buf);
	errlist_release(&e);
}

static void test_config__redact_url(void **state)
{
	static const char *const cases[][2] = {
		{ "redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0" },
		{ "redis://:s3cret@redis:6379/1", "redis://:***@redis:6379/1" },
		{ "redis://app:p@ss/w?rd@[::1]:6379", "redis://app:***@[::1]:6379" },
		{ "redis://app@redis", "redis://app@redis" },
		{ "unix:///run/redis.sock?db=2&password=x&user=u",
		  "unix:///run/redis.sock?db=2&password=***&user=u" },
		{ "unix:///run/redis.sock?password=x", "unix:///run/redis.sock?password=***" },
		{ "unix:///run/nopassword=x.sock", "unix:///run/nopassword=x.sock" },
	};
	char out[128], tiny[8];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		config_redact_url(cases[i][0], out, sizeof out);
		assert_string_equal(out, cases[i][1]);
	}
	config_redact_url("redis://:s3cret@redis:6379/1", tiny, sizeof tiny);
	assert_string_equal(tiny, "redis:/");

	/* check-config prints REDIS_URL that way. */
	{
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		setenv("REDIS_URL", "redis://:s3cret@redis:6379/1", 1);
		assert_non_null(f);
		config_print(f, 0);
		fclose(f);
		assert_non_null(strstr(buf, "REDIS_URL=redis://:***@redis:6379/1  (env)\n"));
		assert_null(strstr(buf, "s3cret"));
		free(buf);
		unsetenv("REDIS_URL");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_config__table_is_consistent, clean_env),
		cmocka_unit_test_setup(test_config__distance, clean_env),
		cmocka_unit_test_setup(test_config__flags_set_the_environment, clean_env),
		cmocka_unit_test_setup(test_config__flag_wins_over_env_and_last_flag_wins,
		                       clean_env),
		cmocka_unit_test_setup(test_config__double_dash_ends_the_flags, clean_env),
		cmocka_unit_test_setup(test_config__flag_without_value, clean_env),
		cmocka_unit_test_setup(test_config__unknown_flag_close_to_a_setting, clean_env),
		cmocka_unit_test_setup(test_config__unknown_env_close_to_a_setting, clean_env),
		cmocka_unit_test_setup(test_config__ordinary_environment_is_left_alone, clean_env),
		cmocka_unit_test_setup(test_config__empty_values, clean_env),
		cmocka_unit_test_setup(test_config__checks_of_unvalidated_settings, clean_env),
		cmocka_unit_test_setup(test_config__print, clean_env),
		cmocka_unit_test_setup(test_config__redact_url, clean_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
