/*
 * test_freshness: truthful freshness, from outside (`cdpilot run` as a process, its
 * JSON-lines sink, a real redis-server, /status and /metrics):
 *   - targets whose pages never answer cannot starve the healthy ones: at CONCURRENCY_CAP=4,
 *     4 such targets beside 12 healthy live targets; the healthy targets' verified age,
 *     measured from the sink, stays within 1.5 x their interval; the broken ones are
 *     counted `timeout`, back off, and say so in Redis (P:status:T, P:events);
 *   - tasks lost to a SIGKILLed browser are counted `browser_lost`;
 *   - a watched page whose feed dies is `frozen` in Redis, then `ok` again once current.
 */
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/daemonkit.h"
#include "tests/support/redis_server.h"
#include "tests/support/testutil.h"

#define HEALTHY 12
#define BROKEN 4
#define INTERVAL_MS 5000

typedef struct env {
	dk_bed_t bed; /* fixture, temp dir, the daemon */
	tu_redis_t redis;
} env_t;

static int setup(void **state)
{
	return dk_bed_setup(state, sizeof(env_t), "freshness");
}

static int teardown(void **state)
{
	env_t *e = *state;

	tu_redis_stop(&e->redis);
	return dk_bed_teardown(state);
}

/* GET http://METRICS_ADDR/path as text (malloc'd) or JSON. */
static char *endpoint_text(env_t *e, const char *path)
{
	char url[160];
	long code = 0;

	snprintf(url, sizeof url, "http://%s%s", e->bed.metrics, path);
	return dk_http_get(url, &code);
}

/* The sum of the samples of a /metrics series whose line starts with prefix. */
static double metric_sum(const char *text, const char *prefix)
{
	double sum = 0;
	size_t n = strlen(prefix);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, prefix, n) && l[n] == ' ')
			sum += strtod(l + n + 1, NULL);
	return sum;
}

/* Every field of a Redis hash, as a JSON object of strings (new reference). */
static json_t *hgetall(redisContext *c, const char *key)
{
	redisReply *rep = redisCommand(c, "HGETALL %s", key);
	json_t *o = json_object();

	for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2)
		json_object_set_new(o, rep->element[i]->str, json_string(rep->element[i + 1]->str));
	freeReplyObject(rep);
	return o;
}

/* 1 if the events stream has an entry of type for target. */
static int has_event(redisContext *c, const char *type, const char *target)
{
	redisReply *rep = redisCommand(c, "XRANGE cdpilot:events - +");
	int found = 0;

	for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		redisReply *f = rep->element[i]->element[1];
		const char *ty = NULL, *tg = NULL;
		for (size_t j = 0; j + 1 < f->elements; j += 2) {
			if (!strcmp(f->element[j]->str, "type"))
				ty = f->element[j + 1]->str;
			if (!strcmp(f->element[j]->str, "target"))
				tg = f->element[j + 1]->str;
		}
		found |= ty && tg && !strcmp(ty, type) && !strcmp(tg, target);
	}
	freeReplyObject(rep);
	return found;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* The gaps between consecutive verified_at of target id's snapshots in the sink, after
 * from_ms (Unix); *n gets how many. malloc'd. */
static int64_t *verified_gaps(json_t *lines, const char *id, int64_t from_ms, size_t *n)
{
	int64_t *g = calloc(json_array_size(lines) + 1, sizeof *g), prev = 0;
	json_t *l;
	size_t i;

	*n = 0;
	json_array_foreach(lines, i, l)
	{
		const char *v = json_string_value(json_object_get(l, "verified_at"));
		int64_t t;
		if (strcmp(json_string_value(json_object_get(l, "type")) ?: "", "snapshot") ||
		    strcmp(json_string_value(json_object_get(l, "target")) ?: "", id) || !v)
			continue;
		t = dk_parse_time(v);
		if (prev && t > from_ms)
			g[(*n)++] = t - prev;
		prev = t;
	}
	return g;
}

static void test_freshness__broken_targets_do_not_starve_healthy(void **state)
{
	env_t *e = *state;
	char text[8192], *p = text, url[512], *metrics;
	const char *end = text + sizeof text;
	json_t *lines, *st;
	redisContext *c;
	int64_t t0, *all = calloc(4096, sizeof *all);
	size_t nall = 0;

	assert_int_equal(tu_redis_start(&e->redis), 0);
	p += snprintf(p, (size_t)(end - p), "{\"targets\": [");
	for (int i = 0; i < HEALTHY; i++)
		p += snprintf(
		        p, (size_t)(end - p),
		        "{\"id\": \"ok%d\", \"adapter\": \"generic\", \"url\": \"%s/static?i=%d\", "
		        "\"class\": \"live\", \"fields\": {\"t\": {\"selector\": \"title\"}}},",
		        i, e->bed.base, i);
	for (int i = 0; i < BROKEN; i++)
		p += snprintf(p, (size_t)(end - p),
		              "{\"id\": \"broken%d\", \"adapter\": \"generic\", \"url\": "
		              "\"%s/hang?i=%d\", \"class\": \"live\", \"fields\": {\"m\": "
		              "{\"selector\": \"#msg\"}}}%s",
		              i, e->bed.base, i, i + 1 < BROKEN ? "," : "");
	snprintf(p, (size_t)(end - p), "]}");
	dk_write_file(e->bed.targets, text);
	snprintf(url, sizeof url, "REDIS_URL=%s", e->redis.url);
	dk_bed_run(&e->bed,
	           (const char *const[]){ url, "CONCURRENCY_CAP=4", "TASK_TIMEOUT_SECONDS=8",
	                                  "RETRY_MAX_TRIES=1", "HOST_CONCURRENCY=64", NULL });
	t0 = dk_wall_ms();
	dk_sleep_ms(75000);
	metrics = endpoint_text(e, "/metrics");
	assert_non_null(metrics);
	dk_check_metric_names(metrics, "redis"); /* with the store, without SCHEDULE=redis */
	snprintf(url, sizeof url, "http://%s/status", e->bed.metrics);
	st = dk_http_get_json(url);
	dk_stop_clean(&e->bed.d);
	lines = dk_read_jsonl(e->bed.out);

	/* the healthy targets kept their interval: verified age from the sink, after the
	 * first 15 s (start-up: the browser launches, the first round queues) */
	for (int i = 0; i < HEALTHY; i++) {
		char id[16];
		size_t n;
		int64_t *g;
		snprintf(id, sizeof id, "ok%d", i);
		g = verified_gaps(lines, id, t0 + 15000, &n);
		assert_true(n >= 5);
		for (size_t k = 0; k < n && nall < 4096; k++)
			all[nall++] = g[k];
		free(g);
	}
	qsort(all, nall, sizeof *all, cmp_i64);
	print_message(
	        "healthy: %zu gaps between verified reads, p50 %.1f s, p95 %.1f s, max "
	        "%.1f s (interval %.1f s); timeouts counted %.0f, backoffs %.0f\n",
	        nall, all[nall / 2] / 1000.0, all[(nall * 95) / 100] / 1000.0,
	        all[nall - 1] / 1000.0, INTERVAL_MS / 1000.0,
	        metric_sum(metrics, "cdpilot_tasks_total{adapter=\"generic\",outcome=\"timeout\"}"),
	        metric_sum(metrics, "cdpilot_backoffs_total"));
	for (const char *l = metrics; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, "cdpilot_tasks_total", 19) || !strncmp(l, "cdpilot_backoffs", 16) ||
		    !strncmp(l, "cdpilot_targets_", 16))
			print_message("%.*s\n", (int)strcspn(l, "\n"), l);
	assert_true(all[(nall * 95) / 100] <= INTERVAL_MS * 3 / 2);

	/* the broken ones: counted timeout, failing or backing off, and said so in Redis */
	assert_true(metric_sum(metrics,
	                       "cdpilot_tasks_total{adapter=\"generic\",outcome=\"timeout\"}") >=
	            BROKEN);
	assert_true(metric_sum(metrics, "cdpilot_backoffs_total") >= 1);
	c = tu_redis_client(&e->redis);
	assert_non_null(c);
	for (int i = 0; i < BROKEN; i++) {
		char key[64], id[16];
		json_t *h;
		snprintf(id, sizeof id, "broken%d", i);
		snprintf(key, sizeof key, "cdpilot:status:%s", id);
		h = hgetall(c, key);
		if (i == 0) {
			char *dump = json_dumps(h, JSON_COMPACT);
			print_message("%s: %s\n", key, dump ? dump : "");
			free(dump);
		}
		assert_true(
		        !strcmp(json_string_value(json_object_get(h, "state")) ?: "", "failing") ||
		        !strcmp(json_string_value(json_object_get(h, "state")) ?: "",
		                "backing_off"));
		assert_string_equal(json_string_value(json_object_get(h, "last_outcome")),
		                    "timeout");
		assert_true(
		        strtol(json_string_value(json_object_get(h, "consecutive_failures")) ?: "0",
		               NULL, 10) >= 1);
		assert_true(strlen(json_string_value(json_object_get(h, "failing_since")) ?: "") >
		            0);
		assert_true(has_event(c, "failing", id));
		json_decref(h);
	}
	{
		json_t *h = hgetall(c, "cdpilot:status:ok0");
		assert_string_equal(json_string_value(json_object_get(h, "state")), "ok");
		assert_true(strlen(json_string_value(json_object_get(h, "verified_at")) ?: "") > 0);
		json_decref(h);
	}
	/* /status says the same */
	{
		json_t *t;
		size_t i;
		int seen = 0;
		assert_non_null(st);
		json_array_foreach(json_object_get(st, "targets"), i, t)
		{
			const char *id = json_string_value(json_object_get(t, "id"));
			if (strncmp(id, "broken", 6))
				continue;
			seen++;
			assert_string_equal(json_string_value(json_object_get(t, "last_outcome")),
			                    "timeout");
			assert_true(json_integer_value(
			                    json_object_get(t, "consecutive_failures")) >= 1);
		}
		assert_int_equal(seen, BROKEN);
	}
	redisFree(c);
	json_decref(st);
	json_decref(lines);
	free(metrics);
	free(all);
}

/* Tasks in flight (loaded, waiting for an element that never comes) when the browser is
 * SIGKILLed are counted browser_lost. */
static void test_freshness__browser_kill_counts_browser_lost(void **state)
{
	env_t *e = *state;
	char text[4096], *p = text, url[160], *metrics = NULL;
	const char *end = text + sizeof text;
	json_t *st;
	pid_t pid = 0;
	double lost = 0;

	p += snprintf(p, (size_t)(end - p), "{\"targets\": [");
	for (int i = 0; i < 4; i++)
		p += snprintf(p, (size_t)(end - p),
		              "{\"id\": \"wait%d\", \"adapter\": \"generic\", \"url\": "
		              "\"%s/static?i=%d\", \"class\": \"live\", \"wait_for\": \"#never\", "
		              "\"fields\": {\"m\": {\"selector\": \"title\"}}}%s",
		              i, e->bed.base, i, i < 3 ? "," : "");
	snprintf(p, (size_t)(end - p), "]}");
	dk_write_file(e->bed.targets, text);
	dk_bed_run(&e->bed,
	           (const char *const[]){ "CONCURRENCY_CAP=4", "HOST_CONCURRENCY=64", NULL });
	snprintf(url, sizeof url, "http://%s/status", e->bed.metrics);
	/* wait until the four tasks hold their leases */
	for (uint64_t end_ms = tu_now_ms() + 60000; tu_now_ms() < end_ms; dk_sleep_ms(250)) {
		json_int_t in_use = 0;
		st = dk_http_get_json(url);
		in_use = json_integer_value(
		        json_object_get(json_object_get(st, "browser"), "leases_in_use"));
		pid = (pid_t)json_integer_value(
		        json_object_get(json_object_get(st, "browser"), "pid"));
		json_decref(st);
		if (in_use == 4 && pid > 0)
			break;
	}
	assert_true(pid > 0);
	dk_sleep_ms(1000);
	assert_int_equal(kill(pid, SIGKILL), 0);
	for (uint64_t end_ms = tu_now_ms() + 30000; tu_now_ms() < end_ms && lost < 1;
	     dk_sleep_ms(250)) {
		free(metrics);
		metrics = endpoint_text(e, "/metrics");
		lost = metric_sum(
		        metrics,
		        "cdpilot_tasks_total{adapter=\"generic\",outcome=\"browser_lost\"}");
	}
	if (metrics)
		for (const char *l = metrics; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "")
			if (!strncmp(l, "cdpilot_tasks_total{adapter=\"generic\"", 38) ||
			    !strncmp(l, "cdpilot_browser_launches", 24))
				print_message("%.*s\n", (int)strcspn(l, "\n"), l);
	print_message(
	        "tasks counted browser_lost after the kill: %.0f (failed %.0f)\n", lost,
	        metric_sum(metrics, "cdpilot_tasks_total{adapter=\"generic\",outcome=\"failed\"}"));
	if (lost < 1)
		dk_dump_log(&e->bed.d);
	assert_true(lost >= 1);
	assert_true(metric_sum(metrics,
	                       "cdpilot_tasks_total{adapter=\"generic\",outcome=\"failed\"}") == 0);
	free(metrics);
	dk_stop_clean(&e->bed.d);
}

/* The hash field of key (malloc'd, "" if missing). */
static char *hfield(redisContext *c, const char *key, const char *field)
{
	redisReply *rep = redisCommand(c, "HGET %s %s", key, field);
	char *v = strdup(rep && rep->type == REDIS_REPLY_STRING ? rep->str : "");

	freeReplyObject(rep);
	return v;
}

/*
 * A watched live match whose feed dies (the fixture's mute): Redis says `frozen` in the
 * target's status hash and on the events stream, the fresh data reaches `latest`, and
 * once the reloaded page is current again the status is `ok` with a `recovered` event.
 */
static void test_freshness__frozen_watch_is_told_in_redis(void **state)
{
	env_t *e = *state;
	char text[1024], url[512], *st;
	redisContext *c;
	int frozen = 0, ok_after = 0;
	json_t *j;

	assert_int_equal(tu_redis_start(&e->redis), 0);
	snprintf(url, sizeof url, "%s/live/ctl/reset?n=12&speed=2&seed=3", e->bed.base);
	j = dk_http_get_json(url);
	assert_non_null(j);
	json_decref(j);
	snprintf(text, sizeof text,
	         "{\"targets\": [{\"id\": \"m6\", \"adapter\": \"livescore\", \"url\": "
	         "\"%s/live/match/6\", \"class\": \"live\", \"interval_seconds\": 1, "
	         "\"mode\": \"watch\"}]}",
	         e->bed.base);
	dk_write_file(e->bed.targets, text);
	snprintf(url, sizeof url, "REDIS_URL=%s", e->redis.url);
	dk_bed_run(&e->bed, (const char *const[]){ url, "WATCH_VERIFY_UNCHANGED_SECONDS=3", NULL });
	c = tu_redis_client(&e->redis);
	assert_non_null(c);
	for (uint64_t end = tu_now_ms() + 60000; tu_now_ms() < end; dk_sleep_ms(250)) {
		st = hfield(c, "cdpilot:status:m6", "state");
		ok_after = !strcmp(st, "ok");
		free(st);
		if (ok_after)
			break;
	}
	assert_true(ok_after);
	snprintf(url, sizeof url, "%s/live/ctl/mute?id=6&ms=12000", e->bed.base);
	j = dk_http_get_json(url);
	assert_non_null(j);
	json_decref(j);
	/* frozen within the unchanged time, an interval and a verification read */
	for (uint64_t end = tu_now_ms() + 40000; tu_now_ms() < end && !frozen; dk_sleep_ms(100)) {
		st = hfield(c, "cdpilot:status:m6", "state");
		frozen = !strcmp(st, "frozen");
		free(st);
	}
	assert_true(frozen);
	assert_true(has_event(c, "frozen", "m6"));
	/* the mute ends: the reloaded page is current, the status ok again */
	ok_after = 0;
	for (uint64_t end = tu_now_ms() + 60000; tu_now_ms() < end && !ok_after; dk_sleep_ms(250)) {
		st = hfield(c, "cdpilot:status:m6", "state");
		ok_after = !strcmp(st, "ok");
		free(st);
	}
	if (!ok_after)
		dk_dump_log(&e->bed.d);
	assert_true(ok_after);
	assert_true(has_event(c, "recovered", "m6"));
	redisFree(c);
	dk_stop_clean(&e->bed.d);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		        test_freshness__broken_targets_do_not_starve_healthy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_freshness__browser_kill_counts_browser_lost,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_freshness__frozen_watch_is_told_in_redis, setup,
		                                teardown),
	};
	tu_tag_processes();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
