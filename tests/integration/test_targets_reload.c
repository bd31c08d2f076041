/*
 * test_targets_reload: `cdpilot run` (a separate process) picks up a changed targets file
 * however the file is changed: replaced by a rename over it (what editors and
 * `git checkout` do) or written in place; by itself (TARGETS_WATCH_MS, on by default) and
 * on SIGHUP with the watch off. A replacement with errors keeps the targets the daemon had
 * and logs every error. A path that still opens a file no directory links to any more
 * (what a container's single-file bind mount shows once the host replaced the file,
 * emulated with /proc/PID/fd/N of a descriptor this test holds) gets a warning naming the
 * fix. The checks read the daemon's /status and its log; every wait is for an event, with
 * a deadline far past the time it takes.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/daemonkit.h"
#include "tests/support/testutil.h"

#define WAIT_MS 30000

typedef struct env {
	dk_bed_t bed;
} env_t;

static int setup(void **state)
{
	return dk_bed_setup(state, sizeof(env_t), "reload");
}

/* A targets file of jsonapi targets with these ids (comma-separated) on the fixture. */
static char *targets_text(env_t *e, const char *ids)
{
	char *text = malloc(8192), *copy = strdup(ids), *save = NULL;
	size_t len;

	assert_non_null(text);
	assert_non_null(copy);
	len = (size_t)snprintf(text, 8192, "{\"targets\": [");
	for (char *id = strtok_r(copy, ",", &save); id; id = strtok_r(NULL, ",", &save))
		len += (size_t)snprintf(text + len, 8192 - len,
		                        "%s{\"id\": \"%s\", \"adapter\": \"jsonapi\", \"url\": "
		                        "\"%s/api/%s\", \"fields\": {\"v\": {\"pointer\": \"/v\"}}}",
		                        len > 13 ? ", " : "", id, e->bed.base, id);
	snprintf(text + len, 8192 - len, "]}");
	free(copy);
	return text;
}

/* Replaces path by a rename over it: a new file (a new inode) under the same name. */
static void replace_by_rename(const char *path, const char *text)
{
	char tmp[256];

	snprintf(tmp, sizeof tmp, "%s.new", path);
	dk_write_file(tmp, text);
	assert_int_equal(rename(tmp, path), 0);
}

/* Writes path in place (the same inode, truncated and written). */
static void write_in_place(const char *path, const char *text)
{
	ino_t before, after;
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	before = st.st_ino;
	dk_write_file(path, text);
	assert_int_equal(stat(path, &st), 0);
	after = st.st_ino;
	assert_true(before == after);
}

/* The ids of /status's targets, sorted, comma-separated (malloc'd), or NULL. */
static char *status_ids(env_t *e)
{
	char url[128], *out;
	json_t *st, *t;
	size_t i, n = 0;
	const char *ids[64];

	snprintf(url, sizeof url, "http://%s/status", e->bed.metrics);
	if (!(st = dk_http_get_json(url)))
		return NULL;
	json_array_foreach(json_object_get(st, "targets"), i, t) {
		if (n < 64)
			ids[n++] = json_string_value(json_object_get(t, "id"));
	}
	for (size_t a = 1; a < n; a++) /* insertion sort: a handful of ids */
		for (size_t b = a; b > 0 && strcmp(ids[b - 1], ids[b]) > 0; b--) {
			const char *x = ids[b];
			ids[b] = ids[b - 1], ids[b - 1] = x;
		}
	out = calloc(1, 64 * 70);
	assert_non_null(out);
	for (i = 0; i < n; i++) {
		size_t len = strlen(out);
		snprintf(out + len, 64 * 70 - len, "%s%.64s", i ? "," : "", ids[i]);
	}
	json_decref(st);
	return out;
}

/* Waits until /status lists exactly the ids; fails the test (with the log) past WAIT_MS. */
static void wait_ids(env_t *e, const char *ids)
{
	uint64_t waited = 0;
	char *have = NULL;

	for (;;) {
		free(have);
		have = status_ids(e);
		if (have && strcmp(have, ids) == 0)
			break;
		if (waited >= WAIT_MS) {
			dk_dump_log(&e->bed.d);
			fail_msg("/status lists [%s], expected [%s]", have ? have : "(no answer)", ids);
		}
		dk_sleep_ms(100);
		waited += 100;
	}
	free(have);
}

/* How many times text occurs in the daemon's log. */
static int log_count(env_t *e, const char *text)
{
	char *log = dk_read_file(e->bed.d.err_path);
	int n = 0;

	for (const char *p = log; (p = strstr(p, text)) != NULL; p += strlen(text))
		n++;
	free(log);
	return n;
}

/* Waits until text occurs in the log at least n times; fails past WAIT_MS. */
static void wait_log(env_t *e, const char *text, int n)
{
	uint64_t waited = 0;

	while (log_count(e, text) < n) {
		if (waited >= WAIT_MS) {
			dk_dump_log(&e->bed.d);
			fail_msg("the log does not say \"%s\" %d time(s)", text, n);
		}
		dk_sleep_ms(100);
		waited += 100;
	}
}

static void write_targets(env_t *e, const char *ids, int by_rename)
{
	char *text = targets_text(e, ids);

	if (by_rename)
		replace_by_rename(e->bed.targets, text);
	else
		write_in_place(e->bed.targets, text);
	free(text);
}

static void write_first(env_t *e, const char *ids)
{
	char *text = targets_text(e, ids);
	dk_write_file(e->bed.targets, text);
	free(text);
}

static void stop_daemon(env_t *e)
{
	dk_stop_clean(&e->bed.d);
	assert_int_equal(tu_wait_tagged_count(1, 10000), 1);
}

/* The watch (default on): a rename over the file and an in-place write each change the
 * targets without a signal; an invalid replacement changes nothing, with every error
 * logged; a valid one after it is taken. */
static void test_reload__watch_rename_and_in_place(void **state)
{
	env_t *e = *state;
	const char *bad = "{\"targets\": [{\"id\": \"../x\", \"adapter\": \"nope\", "
	                  "\"url\": \"http://127.0.0.1/\"}, {\"id\": \"ok\", \"adapter\": "
	                  "\"jsonapi\", \"url\": \"http://127.0.0.1/\", \"intervall_seconds\": 5}]}";

	write_first(e, "a");
	dk_bed_run(&e->bed, NULL);
	wait_ids(e, "a");
	wait_log(e, "watching ", 1);

	write_targets(e, "a,b", 1); /* rename over: a new inode */
	wait_ids(e, "a,b");
	write_targets(e, "c", 0);   /* in place: the same inode */
	wait_ids(e, "c");
	write_targets(e, "c,d", 1); /* rename over the renamed-in file: the watch followed */
	wait_ids(e, "c,d");
	assert_true(log_count(e, "targets file changed: re-read") >= 3);
	assert_int_equal(log_count(e, "SIGHUP"), 0);

	/* invalid, by rename, then in place: kept, and every error logged each time */
	replace_by_rename(e->bed.targets, bad);
	wait_log(e, "keeping the current targets", 1);
	dk_write_file(e->bed.targets, "{\"targets\": [");
	wait_log(e, "keeping the current targets", 2);
	{
		char *log = dk_read_file(e->bed.d.err_path);
		const char *first = strstr(log, "error(s); keeping the current targets");
		assert_non_null(first);
		assert_non_null(strstr(first, "\"../x\""));
		assert_non_null(strstr(first, "nope"));
		assert_non_null(strstr(first, "did you mean \\\"interval_seconds\\\"") ?:
		                strstr(first, "did you mean \"interval_seconds\""));
		assert_non_null(strstr(first, "expected near end of file"));
		free(log);
	}
	{
		char *have = status_ids(e);
		assert_non_null(have);
		assert_string_equal(have, "c,d");
		free(have);
	}
	write_targets(e, "e", 1);
	wait_ids(e, "e");
	stop_daemon(e);
}

/* TARGETS_WATCH_MS=0: no watch; SIGHUP re-reads the file however it was replaced, and
 * says when it is unchanged since the last read. */
static void test_reload__sighup_without_watch(void **state)
{
	env_t *e = *state;
	static const char *const env[] = { "TARGETS_WATCH_MS=0", NULL };

	write_first(e, "a");
	dk_bed_run(&e->bed, env);
	wait_ids(e, "a");
	assert_int_equal(log_count(e, "watching "), 0);

	write_targets(e, "a,b", 1);
	kill(e->bed.d.pid, SIGHUP);
	wait_ids(e, "a,b");
	write_targets(e, "c", 0);
	kill(e->bed.d.pid, SIGHUP);
	wait_ids(e, "c");
	assert_int_equal(log_count(e, "SIGHUP: re-read"), 2);
	assert_int_equal(log_count(e, "unchanged since it was last read"), 0);

	kill(e->bed.d.pid, SIGHUP); /* nothing changed */
	wait_log(e, "SIGHUP: re-read", 3);
	assert_int_equal(log_count(e, "unchanged since it was last read"), 1);
	assert_int_equal(log_count(e, "targets file changed"), 0);
	stop_daemon(e);
}

/* The single-file bind mount's trap, emulated: the daemon's path is /proc/TEST/fd/N, a
 * descriptor this test holds on the file; the file is then replaced by a rename over it,
 * so the path opens an inode no directory links to. The watch on that inode warns, naming
 * the fix; SIGHUP says the file is unchanged and warns again. */
static void test_reload__stale_single_file_mount(void **state)
{
	env_t *e = *state;
	char path[64];
	int fd;

	write_first(e, "a");
	fd = open(e->bed.targets, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)getpid(), fd);
	{
		const char *envs[] = { "LOG_LEVEL=info", NULL };
		dk_run_start(&e->bed.d, path, e->bed.out, e->bed.metrics, sizeof e->bed.metrics,
		             NULL, envs);
	}
	wait_ids(e, "a");

	write_targets(e, "b", 1);
	wait_log(e, "single-file bind mount", 1);
	assert_int_equal(log_count(e, "mount the directory") + log_count(e, "Mount the directory"),
	                 1);
	kill(e->bed.d.pid, SIGHUP);
	wait_log(e, "SIGHUP: re-read", 1);
	assert_int_equal(log_count(e, "SIGHUP: /proc/"), 2); /* unchanged, and the trap again */
	assert_int_equal(log_count(e, "unchanged since it was last read"), 1);
	assert_int_equal(log_count(e, "single-file bind mount"), 2);
	{
		char *have = status_ids(e);
		assert_non_null(have);
		assert_string_equal(have, "a"); /* what the stale path holds */
		free(have);
	}
	stop_daemon(e);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reload__watch_rename_and_in_place, setup,
		                                dk_bed_teardown),
		cmocka_unit_test_setup_teardown(test_reload__sighup_without_watch, setup,
		                                dk_bed_teardown),
		cmocka_unit_test_setup_teardown(test_reload__stale_single_file_mount, setup,
		                                dk_bed_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
