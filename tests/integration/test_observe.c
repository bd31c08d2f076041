/*
 * test_observe: what `cdpilot run` shows operators, checked from outside against a real
 * daemon, real Chromium and the fixture pages: /metrics (promtool-clean, process count
 * equal to a /proc count taken at the same moment), /status and /healthz answering while
 * 32 tasks run, hostile HTTP requests refused while scraping goes on, the PID_THRESHOLD
 * guard recycling the browser, and cdpilot as PID 1 of a PID namespace.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/daemonkit.h"
#include "tests/support/testutil.h"

typedef struct env {
	dk_bed_t bed; /* fixture, temp dir, the daemon */
} env_t;


static int setup(void **state)
{
	return dk_bed_setup(state, sizeof(env_t), "observe");
}

/* n generic targets on the fixture's slow page (each load takes ms), all live. */
static void write_targets(env_t *e, int n, int ms)
{
	size_t cap = 512 + (size_t)n * 256, len = 0;
	char *text = malloc(cap);

	assert_non_null(text);
	len += (size_t)snprintf(text + len, cap - len, "{\"targets\": [");
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(
		        text + len, cap - len,
		        "%s{\"id\": \"t%d\", \"adapter\": \"generic\", \"url\": "
		        "\"%s/slow?ms=%d&i=%d\", \"class\": \"live\", \"fields\": "
		        "{\"title\": {\"selector\": \"title\", \"required\": false}}}",
		        i ? "," : "", i, e->bed.base, ms, i);
	snprintf(text + len, cap - len, "]}");
	dk_write_file(e->bed.targets, text);
	free(text);
}

static void start_daemon_argv(env_t *e, const char *const *prefix, const char *const extra[])
{
	e->bed.port = dk_run_start(&e->bed.d, e->bed.targets, e->bed.out, e->bed.metrics,
	                           sizeof e->bed.metrics, prefix, extra);
}

static char *get(env_t *e, const char *path, long *code)
{
	char url[160];
	snprintf(url, sizeof url, "http://%s%s", e->bed.metrics, path);
	return dk_http_get(url, code);
}

/* /status with query (as "?target=t1"): 200 expected, its JSON (the caller frees it). */
static json_t *get_status(env_t *e, const char *query)
{
	char path[64];
	long code = 0;
	char *text;
	json_t *st;

	snprintf(path, sizeof path, "/status%s", query);
	text = get(e, path, &code);
	assert_int_equal(code, 200);
	st = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(st);
	return st;
}

/* Waits for /readyz to say 200. */
static void wait_ready(env_t *e, uint64_t timeout_ms)
{
	uint64_t end = tu_now_ms() + timeout_ms;
	while (tu_now_ms() < end) {
		long code = 0;
		char *b = get(e, "/readyz", &code);
		free(b);
		if (code == 200)
			return;
		dk_sleep_ms(200);
	}
	fail_msg("/readyz never answered 200 within %llu ms", (unsigned long long)timeout_ms);
}

/* Value of the first sample line of metric (with labels, exact text up to the value). */
static double metric(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	return -1;
}

/* Stops the daemon (exit 0, nothing left below it); only the fixture is left of what the
 * test started. */
static void stop_daemon(env_t *e)
{
	dk_stop_clean(&e->bed.d);
	assert_int_equal(tu_wait_tagged_count(1, 10000), 1);
}

/* Opens a TCP connection to the endpoint server and sends data (may be NULL). */
static int raw_connect(env_t *e)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)e->bed.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

/* Sends req and returns the status code of the answer (0 if none). */
static int raw_request(env_t *e, const char *req, size_t len)
{
	int fd = raw_connect(e), code = 0;
	char buf[512];
	ssize_t n;
	struct timeval tv = { 15, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (len)
		(void)!write(fd, req, len);
	n = read(fd, buf, sizeof buf - 1);
	if (n > 12) {
		buf[n] = '\0';
		sscanf(buf, "HTTP/1.%*d %d", &code);
	}
	close(fd);
	return code;
}

static void test_observe__metrics_status_under_load(void **state)
{
	env_t *e = *state;
	char *text, *big;
	long code = 0;
	double ok_before, ok_after;
	char path[128];
	FILE *f;
	int rc;

	write_targets(e, 40, 1500);
	start_daemon_argv(e, NULL,
	                  (const char *const[]){ "CONCURRENCY_CAP=32", "LIVE_INTERVAL_SECONDS=2",
	                                         "BLOCK_RESOURCES=none", NULL });
	wait_ready(e, 30000);
	dk_sleep_ms(6000);

	/* /healthz and /status answer while 32 tasks run */
	for (int i = 0; i < 5; i++) {
		json_t *st;
		text = get(e, "/healthz", &code);
		assert_non_null(text);
		assert_int_equal(code, 200);
		free(text);
		text = get(e, "/status", &code);
		assert_non_null(text);
		assert_int_equal(code, 200);
		st = json_loads(text, 0, NULL);
		assert_non_null(st);
		assert_int_equal(json_array_size(json_object_get(st, "targets")), 40);
		json_decref(st);
		free(text);
		text = get(e, "/metrics", &code);
		assert_int_equal(code, 200);
		if (metric(text, "cdpilot_leases_in_use") >= 30)
			i = 5;
		free(text);
		dk_sleep_ms(300);
	}

	/* /status's query: one target, or none of them (for thousands), or a clear 400 */
	{
		json_t *st = get_status(e, "?target=t7"), *ts = json_object_get(st, "targets");
		assert_int_equal(json_array_size(ts), 1);
		assert_string_equal(json_string_value(json_object_get(json_array_get(ts, 0), "id")),
		                    "t7");
		assert_int_equal(json_integer_value(json_object_get(st, "target_count")), 40);
		json_decref(st);
		st = get_status(e, "?targets=none");
		assert_int_equal(json_array_size(json_object_get(st, "targets")), 0);
		assert_int_equal(json_integer_value(json_object_get(st, "target_count")), 40);
		assert_non_null(json_object_get(st, "health"));
		json_decref(st);
		st = get_status(e, "?target=nope");
		assert_int_equal(json_array_size(json_object_get(st, "targets")), 0);
		json_decref(st);
		text = get(e, "/status?target=t1&verbose=1", &code);
		assert_int_equal(code, 400);
		assert_non_null(strstr(text, "'verbose=1': expected target=ID or targets=all|none"));
		free(text);
	}

	/* the process count in /metrics matches /proc at the same moment (within 2) */
	{
		int good = 0;
		for (int attempt = 0; attempt < 5 && !good; attempt++) {
			int before = (int)tu_descendants(e->bed.d.pid, NULL, 0);
			double m;
			text = get(e, "/metrics", &code);
			int after = (int)tu_descendants(e->bed.d.pid, NULL, 0);
			m = metric(text, "cdpilot_tree_processes");
			print_message("processes: /proc %d..%d, /metrics %.0f\n", before, after, m);
			good = m >= (before < after ? before : after) - 2 &&
			       m <= (before > after ? before : after) + 2;
			free(text);
		}
		assert_true(good);
	}

	/* promtool accepts the exposition */
	text = get(e, "/metrics", &code);
	assert_non_null(text);
	snprintf(path, sizeof path, "%s/metrics.txt", e->bed.dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	ok_before = metric(text, "cdpilot_tasks_total{adapter=\"generic\",outcome=\"ok\"}");
	/* no REDIS_URL: every family docker/metric-names.txt lists but the store's */
	dk_check_metric_names(text, "");
	free(text);
	{
		char cmd[256];
		snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
		rc = system(cmd);
		assert_int_equal(rc, 0);
	}

	/* hostile requests: refused with 4xx, and scraping goes on */
	assert_int_equal(raw_request(e, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 35), 405);
	assert_int_equal(raw_request(e, "\x16\x03\x01garbage\r\n\r\n", 14), 400);
	big = malloc(20000);
	assert_non_null(big);
	memcpy(big, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ", 39);
	memset(big + 39, 'a', 20000 - 39 - 4);
	memcpy(big + 20000 - 4, "\r\n\r\n", 4);
	code = raw_request(e, big, 20000);
	assert_true(code == 431 || code == 414);
	free(big);
	{
		/* slowloris: a head that never completes is answered 408 and closed */
		int fd = raw_connect(e);
		char buf[256];
		ssize_t n;
		struct timeval tv = { 20, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		(void)!write(fd, "GET /metr", 9);
		n = read(fd, buf, sizeof buf - 1);
		assert_true(n > 12);
		buf[n] = '\0';
		assert_non_null(strstr(buf, " 408 "));
		close(fd);
	}
	dk_sleep_ms(2000);
	text = get(e, "/metrics", &code);
	ok_after = metric(text, "cdpilot_tasks_total{adapter=\"generic\",outcome=\"ok\"}");
	assert_true(metric(text, "cdpilot_http_responses_total{code=\"4xx\"}") >= 4);
	free(text);
	print_message("tasks ok: %.0f before the hostile requests, %.0f after\n", ok_before,
	              ok_after);
	assert_true(ok_after > ok_before);
	stop_daemon(e);
}

static void test_observe__pid_threshold_recycles(void **state)
{
	env_t *e = *state;
	uint64_t end;
	double n = 0, peak = 0;

	/* 8 pages that take 3 s each, all at once (HOST_CONCURRENCY=8: they share one host),
	 * keep 8 renderers alive besides the browser's own processes (4 to 6): past 10 at
	 * every watchdog scan, however fast the machine */
	write_targets(e, 8, 3000);
	start_daemon_argv(e, NULL,
	                  (const char *const[]){ "PID_THRESHOLD=10", "WATCHDOG_INTERVAL_SECONDS=1",
	                                         "LIVE_INTERVAL_SECONDS=1", "HOST_CONCURRENCY=8",
	                                         NULL });
	wait_ready(e, 30000);
	end = tu_now_ms() + 30000;
	while (tu_now_ms() < end && n < 1) {
		long code;
		char *text = get(e, "/metrics", &code);
		if (text) {
			n = metric(text, "cdpilot_recycles_total{reason=\"pid_threshold\"}");
			peak = fmax(peak, metric(text, "cdpilot_tree_processes"));
		}
		free(text);
		dk_sleep_ms(500);
	}
	print_message("pid_threshold recycles: %.0f; most processes seen in /metrics: %.0f\n", n,
	              peak);
	assert_true(n >= 1);
	stop_daemon(e);
}

/* EXIT_ON_HEALTH_FAILURE=1: failing for HEALTH_FAILURE_EXIT_SECONDS makes cdpilot exit 1
 * (so an orchestrator restarts it), cleanly, leaving nothing behind. */
static void test_observe__exit_on_health_failure(void **state)
{
	env_t *e = *state;
	static tu_proc_id_t below[1024];
	size_t n;
	char text[512];
	char *log;

	snprintf(text, sizeof text,
	         "{\"targets\": [{\"id\": \"down\", \"adapter\": \"generic\", \"url\": "
	         "\"%s/status/503\", \"class\": \"live\", \"fields\": {\"t\": {\"selector\": "
	         "\"title\"}}}]}",
	         e->bed.base);
	dk_write_file(e->bed.targets, text);
	start_daemon_argv(e, NULL,
	                  (const char *const[]){ "EXIT_ON_HEALTH_FAILURE=1",
	                                         "HEALTH_FAILURE_EXIT_SECONDS=3",
	                                         "HEALTH_FAILING_MAX_SECONDS=2",
	                                         "LIVE_INTERVAL_SECONDS=1", NULL });
	/* Every process below the daemon, gathered while it runs (not after /readyz says 200:
	 * it is meant to fail and exit within seconds, and on a loaded machine that came
	 * before its first readiness probe answered). */
	{
		static tu_proc_id_t now[1024];
		pid_t pid = e->bed.d.pid;
		uint64_t end = tu_now_ms() + 60000;
		int exited = 0;
		n = 0;
		while (!(exited = dk_wait(&e->bed.d, 0)) && tu_now_ms() < end) {
			size_t k = tu_descendants(pid, now, 1024);
			for (size_t i = 0; i < k && i < 1024; i++) {
				size_t j = 0;
				while (j < n && (below[j].pid != now[i].pid || below[j].start != now[i].start))
					j++;
				if (j == n && n < 1024)
					below[n++] = now[i];
			}
			dk_sleep_ms(50);
		}
		assert_true(exited);
		print_message("%zu processes ran below cdpilot before it exited\n", n);
		assert_true(n > 0); /* the browser did start */
	}
	assert_true(WIFEXITED(e->bed.d.status));
	assert_int_equal(WEXITSTATUS(e->bed.d.status), 1);
	log = dk_read_file(e->bed.d.err_path);
	assert_non_null(strstr(log, "failing"));
	assert_non_null(strstr(log, "EXIT_ON_HEALTH_FAILURE=1"));
	free(log);
	assert_int_equal(tu_wait_alive_count(below, n, 10000), 0);
}

/* cdpilot as PID 1 of a new PID namespace: it serves, reaps, and SIGTERM leaves nothing. */
/* The zombies whose parent is ppid (pids as seen from here), at most max. */
static size_t zombie_children(pid_t ppid, pid_t *out, size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL && n < max) {
		char path[300], buf[512], *p;
		FILE *f;
		char state;
		int pp;
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		if (p && sscanf(p + 1, " %c %d", &state, &pp) == 2 && state == 'Z' && pp == ppid)
			out[n++] = (pid_t)strtol(de->d_name, NULL, 10);
	}
	closedir(d);
	return n;
}

static void test_observe__pid1(void **state)
{
	env_t *e = *state;
	char path[64], buf[4096];
	pid_t inner = 0;
	FILE *f;
	char *log;

	if (system("command -v unshare >/dev/null") != 0)
		fail_msg("unshare (util-linux) is needed for the PID 1 test");
	write_targets(e, 4, 100);
	/* unshare --mount-proc would first make "/" private, which fails where "/" is not a
	 * mount point (a chroot, such as a fresh debootstrap root); making only /proc private in
	 * the new mount namespace, then mounting the namespace's proc there, works everywhere and
	 * never shows through to the outside. The shell execs cdpilot, which stays PID 1. */
	/* --kill-child: a failed check kills unshare (dk_proc_release), and cdpilot, PID 1 of
	 * its namespace, would otherwise live on */
	start_daemon_argv(e, (const char *const[]){ "/usr/bin/unshare", "--pid", "--fork",
	                                             "--kill-child", "--mount", "--propagation",
	                                             "unchanged",
	                                             "/bin/sh", "-c",
	                                             "mount --make-rprivate /proc && "
	                                             "mount -t proc proc /proc && exec \"$0\" \"$@\"",
	                                             NULL },
	                  (const char *const[]){ "LIVE_INTERVAL_SECONDS=1", NULL });
	wait_ready(e, 30000);
	/* the daemon is unshare's child: PID 1 inside, a normal pid outside */
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)e->bed.d.pid,
	         (int)e->bed.d.pid);
	f = fopen(path, "r");
	assert_non_null(f);
	if (fgets(buf, sizeof buf, f))
		inner = (pid_t)strtol(buf, NULL, 10);
	fclose(f);
	assert_true(inner > 0);
	snprintf(path, sizeof path, "/proc/%d/status", (int)inner);
	f = fopen(path, "r");
	assert_non_null(f);
	{
		int nspid_one = 0;
		while (fgets(buf, sizeof buf, f))
			if (strncmp(buf, "NSpid:", 6) == 0) {
				char *last = strrchr(buf, '\t');
				nspid_one = last && strtol(last + 1, NULL, 10) == 1;
			}
		fclose(f);
		assert_true(nspid_one);
	}
	dk_sleep_ms(5000);
	{
		/* PID 1 reaps: no child of cdpilot stays a zombie from one look to the next, 3 s
		 * later (Chromium's own children may be zombies for a moment until their Chromium
		 * parent reaps them: those are not PID 1's) */
		long code;
		char *text = get(e, "/metrics", &code);
		pid_t z1[64], z2[64];
		size_t n1 = zombie_children(inner, z1, 64), n2;
		assert_non_null(text);
		assert_true(metric(text, "cdpilot_tasks_total{adapter=\"generic\",outcome=\"ok\"}") > 0);
		free(text);
		dk_sleep_ms(3000);
		n2 = zombie_children(inner, z2, 64);
		for (size_t i = 0; i < n1; i++)
			for (size_t j = 0; j < n2; j++)
				if (z1[i] == z2[j])
					fail_msg("pid %d, a child of cdpilot (PID 1), stayed a zombie for 3 s",
					         (int)z1[i]);
	}
	static tu_proc_id_t below[4096];
	size_t nb = tu_descendants(e->bed.d.pid, below, 4096);
	assert_true(nb > 3);
	assert_int_equal(kill(inner, SIGTERM), 0);
	assert_true(dk_wait(&e->bed.d, 40000));
	assert_int_equal(tu_wait_alive_count(below, nb < 4096 ? nb : 4096, 10000), 0);
	assert_true(WIFEXITED(e->bed.d.status));
	assert_int_equal(WEXITSTATUS(e->bed.d.status), 0);
	log = dk_read_file(e->bed.d.err_path);
	assert_non_null(strstr(log, "stopping (Terminated)"));
	free(log);
	assert_int_equal(tu_wait_tagged_count(1, 10000), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_observe__metrics_status_under_load, setup,
		                                dk_bed_teardown),
		cmocka_unit_test_setup_teardown(test_observe__pid_threshold_recycles, setup,
		                                dk_bed_teardown),
		cmocka_unit_test_setup_teardown(test_observe__exit_on_health_failure, setup,
		                                dk_bed_teardown),
		cmocka_unit_test_setup_teardown(test_observe__pid1, setup, dk_bed_teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
