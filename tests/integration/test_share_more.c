/*
 * SCHEDULE=redis, more of issue 20's tests (test_share.c has the first ones), checked from
 * outside cdpilot: the fixture's request log (FIXTURE_REQUEST_LOG, one line per request)
 * says who was fetched when, Redis says what was written (`latest`) and how much work it
 * did (INFO commandstats), the endpoints say each instance's health.
 *
 * Targets are jsonapi on the fixture's /live/api/matches?KEY=N with one field, "served":
 * the fixture's `server_ms`, its wall clock when it answered. So a target's `latest` in
 * Redis tells truly which request it came from and how old it is, and a double scrape (two
 * instances at once) shows as two requests of one target well within an interval.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/daemonkit.h"
#include "tests/support/redis_server.h"
#include "tests/support/testutil.h"

#define NMAX 8            /* instances at most */
#define INTERVAL_MS 5000  /* LIVE_INTERVAL_SECONDS=5 */
#define LEASE_MS 5000     /* SCHEDULE_LEASE_SECONDS=5 */
#define SERVED_SLACK_MS 250 /* server_ms against the log's time: same process, same clock */

typedef struct env {
	dk_bed_t bed; /* fixture (with its request log), temp dir */
	dk_proc_t d[NMAX];
	dk_proc_t px; /* a second fixture, one instance's http_proxy (health case) */
	char pxbase[128];
	tu_redis_t rs;
	char out[NMAX][128];
	char metrics[NMAX][64];
} env_t;

static int setup(void **state)
{
	env_t *e;

	if (dk_bed_setup(state, sizeof(env_t), "share-more") != 0)
		return -1;
	e = *state;
	for (int i = 0; i < NMAX; i++)
		snprintf(e->out[i], sizeof e->out[i], "%s/out%d.jsonl", e->bed.dir, i);
	return tu_redis_start(&e->rs);
}

static int teardown(void **state)
{
	env_t *e = *state;

	for (int i = 0; i < NMAX; i++)
		dk_proc_release(&e->d[i]);
	dk_proc_release(&e->px);
	tu_redis_stop(&e->rs);
	return dk_bed_teardown(state);
}

/* n jsonapi targets KEY000.. on the fixture (URL ?KEY=i), field "served" = server_ms. */
static void write_targets(env_t *e, const char *key, int n)
{
	dk_write_jsonapi_targets(e->bed.targets, e->bed.base, key, n,
	                         "{\"served\": {\"pointer\": \"/server_ms\", \"type\": \"int\"}}");
}

/* Instance i as SCHEDULE_INSTANCE=label, LIVE_INTERVAL_SECONDS=interval_s, plus extra
 * (NULL-ended, may be NULL). */
static void start_inst(env_t *e, int i, const char *label, int interval_s,
                       const char *const extra[])
{
	char url[512], inst[96], ivl[64];
	const char *envs[28] = { url, inst, ivl, "SCHEDULE=redis", "SCHEDULE_LEASE_SECONDS=5",
		                 "HOST_CONCURRENCY=16", "LOG_LEVEL=info" };
	size_t n = 7;

	snprintf(url, sizeof url, "REDIS_URL=%s", e->rs.url);
	snprintf(inst, sizeof inst, "SCHEDULE_INSTANCE=%s", label);
	snprintf(ivl, sizeof ivl, "LIVE_INTERVAL_SECONDS=%d", interval_s);
	for (size_t k = 0; extra && extra[k] && n < 27; k++)
		envs[n++] = extra[k];
	envs[n] = NULL;
	dk_run_start(&e->d[i], e->bed.targets, e->out[i], e->metrics[i], sizeof e->metrics[i],
	             NULL, envs);
}

static void stop_all(env_t *e, int n)
{
	for (int i = 0; i < n; i++) {
		int code = dk_stop(&e->d[i], 30000);
		if (code != 0)
			dk_dump_log(&e->d[i]);
		assert_int_equal(code, 0);
		dk_proc_release(&e->d[i]);
	}
}

/*
 * Every target's `latest` in Redis, read at once at read_at, against the fixture's log
 * (read after): its "served" is one of the target's requests (the true value), no older
 * than max_age_ms, and not older than the target's last request that arrived 2 s before
 * the read (a scrape made that long before is written: `latest` is the last scrape).
 * Returns how many targets fail; prints the first few.
 */
static int latest_not_true(env_t *e, const char *key, int n, int64_t max_age_ms)
{
	redisContext *c = tu_redis_client(&e->rs);
	int64_t *served = calloc((size_t)n, sizeof *served), read_at;
	dk_req_t *reqs;
	size_t nreq;
	int bad = 0;

	assert_non_null(c);
	assert_non_null(served);
	read_at = dk_wall_ms();
	for (int t = 0; t < n; t++) {
		redisReply *rep = redisCommand(c, "GET cdpilot:latest:%s%03d", key, t);
		json_t *snap = rep && rep->type == REDIS_REPLY_STRING
		                       ? json_loads(rep->str, 0, NULL)
		                       : NULL;
		served[t] = json_integer_value(
		        json_object_get(json_object_get(snap, "data"), "served"));
		json_decref(snap);
		freeReplyObject(rep);
	}
	redisFree(c);
	nreq = dk_reqlog_read(e->bed.reqlog, key, n, &reqs);
	for (int t = 0; t < n; t++) {
		const dk_req_t *last = dk_reqlog_last(reqs, nreq, t, read_at - 2000);
		const char *why = NULL;
		int match = 0;
		for (size_t k = 0; k < nreq && served[t]; k++)
			match |= reqs[k].target == t &&
			         llabs((long long)(reqs[k].at_ms - served[t])) <= SERVED_SLACK_MS;
		if (!served[t])
			why = "no latest with a \"served\" value";
		else if (!match)
			why = "served by no request of the log";
		else if (read_at - served[t] > max_age_ms)
			why = "older than allowed";
		else if (last && served[t] < last->at_ms - SERVED_SLACK_MS)
			why = "older than a later scrape";
		if (why && bad++ < 5)
			print_message("%s%03d: latest served %lld ms before the read, last request "
			              "%lld ms before: %s\n",
			              key, t, served[t] ? (long long)(read_at - served[t]) : -1LL,
			              last ? (long long)(read_at - last->at_ms) : -1LL, why);
	}
	free(reqs);
	free(served);
	return bad;
}

/*
 * 3 instances, 300 targets at 5 s; Redis killed and, 5 s later, restarted (empty, or
 * from an RDB file SAVEd 3 s before the kill). Within the reconnection and two intervals
 * every target's latest is current again and is its last scrape (checked against the
 * fixture's true value), and no target is ever fetched twice within half an interval
 * (the fixture's log), before, during or after the outage.
 */
static void redis_restart_case(env_t *e, int from_rdb)
{
	const char *key = from_rdb ? "b" : "a";
	int64_t started, back;
	dk_req_t *reqs;
	size_t nreq;
	int doubles, bad;

	write_targets(e, key, 300);
	started = dk_wall_ms();
	for (int i = 0; i < 3; i++) {
		char label[16];
		snprintf(label, sizeof label, "%s%d", key, i);
		start_inst(e, i, label, 5, NULL);
	}
	dk_sleep_ms(15000);
	if (from_rdb) {
		redisContext *c = tu_redis_client(&e->rs);
		redisReply *rep;
		assert_non_null(c);
		rep = redisCommand(c, "SAVE");
		assert_true(rep && rep->type == REDIS_REPLY_STATUS);
		freeReplyObject(rep);
		redisFree(c);
		dk_sleep_ms(3000); /* the file falls behind: fences and leases moved on */
		tu_redis_kill(&e->rs);
	} else {
		char cmd[700];
		tu_redis_kill(&e->rs);
		snprintf(cmd, sizeof cmd, "rm -rf '%s/appendonlydir' '%s/dump.rdb'", e->rs.dir,
		         e->rs.dir);
		assert_int_equal(system(cmd), 0);
	}
	dk_sleep_ms(5000); /* an outage: results wait in the backlogs */
	assert_int_equal(from_rdb ? tu_redis_restart_from_rdb(&e->rs) : tu_redis_restart(&e->rs),
	                 0);
	back = dk_wall_ms();
	/* reconnection (a few seconds' backoff) and two intervals */
	dk_sleep_ms(5000 + 2 * INTERVAL_MS);
	bad = latest_not_true(e, key, 300, 2 * INTERVAL_MS);
	nreq = dk_reqlog_read(e->bed.reqlog, key, 300, &reqs);
	doubles = dk_reqlog_doubles(reqs, nreq, started, dk_wall_ms(), INTERVAL_MS / 2,
	                            from_rdb ? "rdb" : "empty");
	print_message("Redis restarted %s: %zu requests, %zu since it is back; double scrapes "
	              "%d; targets whose latest is not their current true value %d of 300\n",
	              from_rdb ? "from its RDB file" : "empty", nreq,
	              dk_reqlog_count(reqs, nreq, back, INT64_MAX), doubles, bad);
	free(reqs);
	assert_int_equal(doubles, 0);
	assert_int_equal(bad, 0);
	stop_all(e, 3);
}

static void test_share_more__redis_restarted_empty(void **state)
{
	redis_restart_case(*state, 0);
}

static void test_share_more__redis_restarted_from_rdb(void **state)
{
	redis_restart_case(*state, 1);
}

/* instance i's /status health grade (malloc'd) and how many targets it holds, or NULL. */
static char *grade_of(env_t *e, int i, size_t *held)
{
	char surl[96];
	json_t *st, *t;
	size_t k;
	char *grade;

	snprintf(surl, sizeof surl, "http://%s/status", e->metrics[i]);
	st = dk_http_get_json(surl);
	if (!st)
		return NULL;
	*held = 0;
	json_array_foreach(json_object_get(st, "targets"), k, t)
		*held += json_is_true(json_object_get(t, "held"));
	grade = strdup(json_string_value(json_object_get(json_object_get(st, "health"),
	                                                 "grade")) ?: "(none)");
	json_decref(st);
	return grade;
}

/*
 * 2 instances, EXIT_ON_HEALTH_FAILURE=1, health thresholds of seconds, 60 targets at 2 s.
 * Instance 1 fetches through an HTTP proxy (a second fixture: libcurl honours http_proxy,
 * and the fixture serves absolute-form requests). All fresh: neither exits, both healthy
 * over three times the failing age. Then the proxy is stopped: instance 1's fetches fail
 * (connection refused), instance 0's do not. Only instance 1's health degrades (or it
 * exits, failing, as EXIT_ON_HEALTH_FAILURE asks); instance 0 stays healthy and running,
 * through instance 1's exit and the takeover of its targets.
 */
static void test_share_more__health_of_one_fails_alone(void **state)
{
	env_t *e = *state;
	char proxy[160];
	const char *common[] = { "HEALTH_DEGRADED_MEDIAN_SECONDS=6", "HEALTH_DEGRADED_P95_SECONDS=6",
		                 "HEALTH_FAILING_MAX_SECONDS=10", "EXIT_ON_HEALTH_FAILURE=1",
		                 "HEALTH_FAILURE_EXIT_SECONDS=2", "no_proxy=", "NO_PROXY=",
		                 "HTTP_PROXY=", NULL, NULL };
	int seen_bad = 0, exited_at = -1;
	size_t held = 0;
	char *g;

	assert_int_equal(dk_fixture_start(&e->px, e->pxbase, sizeof e->pxbase), 0);
	write_targets(e, "h", 60);
	common[8] = "http_proxy=";
	start_inst(e, 0, "h0", 2, common);
	snprintf(proxy, sizeof proxy, "http_proxy=%s", e->pxbase);
	common[8] = proxy;
	start_inst(e, 1, "h1", 2, common);

	dk_sleep_ms(30000); /* three times the failing age */
	for (int i = 0; i < 2; i++) {
		if (dk_wait(&e->d[i], 0)) {
			dk_dump_log(&e->d[i]);
			fail_msg("instance %d exited while every target was fresh", i);
		}
		g = grade_of(e, i, &held);
		assert_non_null(g);
		print_message("instance %d, all fresh: health %s, holds %zu of 60\n", i, g, held);
		assert_string_equal(g, "healthy");
		assert_true(held > 0);
		free(g);
	}

	assert_int_equal(dk_stop(&e->px, 10000), 0); /* instance 1's fetches fail from now */
	/* failing age 10 s, exit 2 s later; then the lease and two intervals for the takeover */
	for (int k = 0; k < 2 * (10 + 2 + 10 + 5 + 2 * 2 + 5); k++) {
		dk_sleep_ms(500);
		if (dk_wait(&e->d[0], 0)) {
			dk_dump_log(&e->d[0]);
			fail_msg("instance 0 (fetching fine) exited after %d ms of instance 1's "
			         "failures",
			         k * 500);
		}
		g = grade_of(e, 0, &held);
		assert_non_null(g);
		if (strcmp(g, "healthy") != 0)
			fail_msg("instance 0 (fetching fine) is %s %d ms after instance 1's fetches "
			         "began to fail",
			         g, k * 500);
		free(g);
		if (exited_at < 0 && dk_wait(&e->d[1], 0)) {
			exited_at = k * 500;
			print_message("instance 1 exited %d ms after its fetches began to fail, "
			              "code %d\n",
			              exited_at, WIFEXITED(e->d[1].status)
			                                 ? WEXITSTATUS(e->d[1].status)
			                                 : -1);
			assert_true(WIFEXITED(e->d[1].status) && WEXITSTATUS(e->d[1].status) != 0);
			seen_bad = 1;
		} else if (exited_at < 0 && (g = grade_of(e, 1, &held)) != NULL) {
			if (strcmp(g, "healthy") != 0 && !seen_bad)
				print_message("instance 1 is %s %d ms after its fetches began to fail\n",
				              g, k * 500);
			seen_bad |= strcmp(g, "healthy") != 0;
			free(g);
		}
	}
	assert_true(seen_bad); /* the failing one's health said so */
	g = grade_of(e, 0, &held);
	assert_non_null(g);
	print_message("instance 0 at the end: %s, holds %zu of 60\n", g, held);
	free(g);
	assert_int_equal(dk_stop(&e->d[0], 30000), 0);
	dk_stop(&e->d[1], 30000);
}

/* One field's calls in an INFO commandstats text ("cmdstat_NAME:calls=N,..."). */
static long long calls_of(const char *info, const char *name)
{
	char pat[64];
	const char *at;

	snprintf(pat, sizeof pat, "cmdstat_%s:calls=", name);
	at = strstr(info, pat);
	return at ? strtoll(at + strlen(pat), NULL, 10) : 0;
}

/* Every command's calls in an INFO commandstats text. */
static long long all_calls(const char *info)
{
	long long sum = 0;

	for (const char *at = strstr(info, ":calls="); at; at = strstr(at + 1, ":calls="))
		sum += strtoll(at + strlen(":calls="), NULL, 10);
	return sum;
}

/* cdpilot_store_writes_total of instance i (its /metrics). */
static long long store_writes(env_t *e, int i)
{
	char murl[96], *text, *at;
	long code = 0;
	long long v = -1;

	snprintf(murl, sizeof murl, "http://%s/metrics", e->metrics[i]);
	text = dk_http_get(murl, &code);
	assert_non_null(text);
	for (at = strstr(text, "\ncdpilot_store_writes_total"); at && v < 0;
	     at = strstr(at + 1, "\ncdpilot_store_writes_total")) {
		const char *sp = strchr(at + 1, ' ');
		if (sp && (at[27] == ' ' || at[27] == '{'))
			v = (long long)strtod(sp + 1, NULL);
	}
	free(text);
	assert_true(v >= 0);
	return v;
}

typedef struct claims {
	double calls, scripts, sched_scripts; /* per scrape */
} claims_t;

/* n instances over 300 targets at 5 s on a fresh Redis: 6 s to settle, then 20 s
 * measured: Redis's command counts (INFO commandstats after CONFIG RESETSTAT) per scrape
 * (the fixture's log). sched_scripts: the script calls that are not the store's writes
 * of results (each instance's cdpilot_store_writes_total over the same span). */
static claims_t measure_claims(env_t *e, int n, const char *key)
{
	redisContext *c;
	redisReply *rep;
	int64_t from, to;
	long long w0[NMAX], writes = 0, scripts;
	dk_req_t *reqs;
	size_t nreq, scrapes;
	claims_t r;

	tu_redis_stop(&e->rs);
	assert_int_equal(tu_redis_start(&e->rs), 0);
	write_targets(e, key, 300);
	for (int i = 0; i < n; i++) {
		char label[16];
		snprintf(label, sizeof label, "%s%d", key, i);
		start_inst(e, i, label, 5, NULL);
	}
	dk_sleep_ms(6000);
	c = tu_redis_client(&e->rs);
	assert_non_null(c);
	for (int i = 0; i < n; i++)
		w0[i] = store_writes(e, i);
	rep = redisCommand(c, "CONFIG RESETSTAT");
	assert_true(rep && rep->type == REDIS_REPLY_STATUS);
	freeReplyObject(rep);
	from = dk_wall_ms();
	dk_sleep_ms(20000);
	rep = redisCommand(c, "INFO commandstats");
	to = dk_wall_ms();
	assert_true(rep && rep->type != REDIS_REPLY_ERROR && rep->str);
	for (int i = 0; i < n; i++)
		writes += store_writes(e, i) - w0[i];
	nreq = dk_reqlog_read(e->bed.reqlog, key, 300, &reqs);
	scrapes = dk_reqlog_count(reqs, nreq, from, to);
	assert_true(scrapes >= 300); /* at least one interval's worth */
	scripts = calls_of(rep->str, "eval") + calls_of(rep->str, "evalsha");
	r.calls = (double)all_calls(rep->str) / (double)scrapes;
	r.scripts = (double)scripts / (double)scrapes;
	r.sched_scripts = (double)(scripts - writes) / (double)scrapes;
	print_message("%d instance(s): %zu scrapes in %lld ms, %lld store writes; per scrape: "
	              "%.2f Redis commands, %.2f scripts, %.2f schedule scripts\n",
	              n, scrapes, (long long)(to - from), writes, r.calls, r.scripts,
	              r.sched_scripts);
	freeReplyObject(rep);
	redisFree(c);
	free(reqs);
	stop_all(e, n);
	return r;
}

/*
 * Claims per scrape, measured from Redis with 1, 4 and 8 instances over the same 300
 * targets: flat. (INFO commandstats counts the commands a script runs as well as the
 * EVAL/EVALSHA itself: "Redis commands" is Redis's whole work.) Before the shared due-queue
 * every instance claimed every target each interval: 29, 49 and 76 commands and 2.0, 5.3
 * and 9.6 schedule scripts a scrape. Redis commands per scrape with 8 instances at most 1.3 times those with
 * one; the schedule's script calls (all script calls but the store's writes) under 1.5 a
 * scrape whatever the number of instances (one claim or renewal per scrape, and a tick per
 * instance and second: 8 a second against 60 scrapes).
 */
static void test_share_more__claims_per_scrape_flat(void **state)
{
	env_t *e = *state;
	claims_t one = measure_claims(e, 1, "c");
	claims_t four = measure_claims(e, 4, "d");
	claims_t eight = measure_claims(e, 8, "e");

	print_message("Redis commands per scrape: %.2f, %.2f, %.2f (1, 4, 8 instances); "
	              "schedule scripts per scrape: %.2f, %.2f, %.2f\n",
	              one.calls, four.calls, eight.calls, one.sched_scripts, four.sched_scripts,
	              eight.sched_scripts);
	assert_true(eight.calls <= 1.3 * one.calls);
	assert_true(one.sched_scripts < 1.5);
	assert_true(four.sched_scripts < 1.5);
	assert_true(eight.sched_scripts < 1.5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_share_more__redis_restarted_empty, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_share_more__redis_restarted_from_rdb, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_share_more__health_of_one_fails_alone, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_share_more__claims_per_scrape_flat, setup,
		                                teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
