/*
 * SCHEDULE=redis: three `cdpilot run` instances on one redis-server share 300 targets at a
 * 5 s interval (jsonapi targets on the fixture: the schedule is under test, not Chromium).
 * One instance is SIGKILLed mid-run. From the three JSON-lines sinks: no target is ever
 * scraped by two instances at once (each scrape is [scraped_at - duration_ms, scraped_at]),
 * all three share the work, and every target is fresh again, from a survivor, within the
 * lease (5 s) plus one interval after the kill. The survivors stop cleanly and hand their
 * leases back (nothing held in Redis afterwards).
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/daemonkit.h"
#include "tests/support/redis_server.h"
#include "tests/support/testutil.h"

#define NINST 3
#define NTARGETS 300
#define INTERVAL_MS 5000
#define LEASE_MS 5000

typedef struct env {
	dk_bed_t bed; /* fixture, temp dir (its one-daemon fields unused) */
	dk_proc_t d[NINST];
	tu_redis_t rs;
	char out[NINST][128];
	char metrics[NINST][64];
} env_t;


static int setup(void **state)
{
	env_t *e;

	if (dk_bed_setup(state, sizeof(env_t), "share") != 0)
		return -1;
	e = *state;
	for (int i = 0; i < NINST; i++)
		snprintf(e->out[i], sizeof e->out[i], "%s/out%d.jsonl", e->bed.dir, i);
	return tu_redis_start(&e->rs);
}

static int teardown(void **state)
{
	env_t *e = *state;

	for (int i = 0; i < NINST; i++)
		dk_proc_release(&e->d[i]);
	tu_redis_stop(&e->rs);
	return dk_bed_teardown(state);
}

static void start_instance(env_t *e, int i)
{
	char url[512], inst[64];

	snprintf(url, sizeof url, "REDIS_URL=%s", e->rs.url);
	snprintf(inst, sizeof inst, "SCHEDULE_INSTANCE=inst%d", i);
	dk_run_start(&e->d[i], e->bed.targets, e->out[i], e->metrics[i], sizeof e->metrics[i], NULL,
	             (const char *const[]){ url, inst, "SCHEDULE=redis", "SCHEDULE_LEASE_SECONDS=5",
	                                    "LIVE_INTERVAL_SECONDS=5", "HOST_CONCURRENCY=16",
	                                    "LOG_LEVEL=info", NULL });
}

/* n jsonapi targets PREFIX000.. on the fixture, live (each its own URL, so that per-host
 * politeness sees them apart only by query), written to the bed's targets file. */
static void write_targets(env_t *e, const char *prefix, int n)
{
	dk_write_jsonapi_targets(e->bed.targets, e->bed.base, prefix, n,
	                         "{\"first\": {\"pointer\": \"/matches/0/id\"}}");
}

typedef struct scrape {
	int inst;
	int64_t start, end; /* Unix ms */
} scrape_t;

static int cmp_scrape(const void *a, const void *b)
{
	const scrape_t *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static void test_share__three_instances_one_killed(void **state)
{
	env_t *e = *state;
	static scrape_t *per[NTARGETS];
	static size_t nper[NTARGETS], capper[NTARGETS];
	size_t by_inst[NINST] = { 0 };
	int64_t killed_at;
	int stale = 0, overlaps = 0;
	int64_t worst = 0; /* the longest wait for a survivor's scrape after the kill */
	redisContext *c;
	redisReply *rep;

	write_targets(e, "t", NTARGETS);

	for (int i = 0; i < NINST; i++)
		start_instance(e, i);
	dk_sleep_ms(30000);
	kill(e->d[2].pid, SIGKILL);
	killed_at = dk_wall_ms();
	assert_true(dk_wait(&e->d[2], 5000));
	dk_sleep_ms(LEASE_MS + INTERVAL_MS + 10000);
	{
		/* a sharing instance's live families are those docker/metric-names.txt lists */
		char murl[96], *mtext;
		long mcode = 0;
		snprintf(murl, sizeof murl, "http://%s/metrics", e->metrics[0]);
		mtext = dk_http_get(murl, &mcode);
		assert_int_equal(mcode, 200);
		dk_check_metric_names(mtext, "redis schedule");
		free(mtext);
	}
	for (int i = 0; i < 2; i++) {
		int code = dk_stop(&e->d[i], 30000);
		if (code != 0)
			dk_dump_log(&e->d[i]);
		assert_int_equal(code, 0);
	}

	/* every scrape of every instance, per target */
	for (int i = 0; i < NINST; i++) {
		json_t *lines = dk_read_jsonl(e->out[i]), *l;
		size_t k;
		json_array_foreach(lines, k, l) {
			const char *id = json_string_value(json_object_get(l, "target"));
			int t;
			scrape_t s;
			if (strcmp(json_string_value(json_object_get(l, "type")) ?: "", "snapshot") != 0)
				continue;
			assert_non_null(id);
			assert_int_equal(sscanf(id, "t%d", &t), 1);
			assert_true(t >= 0 && t < NTARGETS);
			s.inst = i;
			s.end = dk_parse_time(json_string_value(json_object_get(l, "scraped_at")));
			s.start = s.end - json_integer_value(json_object_get(l, "duration_ms"));
			if (nper[t] == capper[t]) {
				capper[t] = capper[t] ? 2 * capper[t] : 32;
				per[t] = realloc(per[t], capper[t] * sizeof *per[t]);
				assert_non_null(per[t]);
			}
			per[t][nper[t]++] = s;
			by_inst[i]++;
		}
		json_decref(lines);
	}
	print_message("snapshots by instance: %zu, %zu, %zu (the last one killed after 30 s)\n",
	              by_inst[0], by_inst[1], by_inst[2]);
	for (int i = 0; i < NINST; i++)
		assert_true(by_inst[i] >= NTARGETS / 10); /* each did a share of the work */

	for (int t = 0; t < NTARGETS; t++) {
		int64_t after = 0;
		qsort(per[t], nper[t], sizeof *per[t], cmp_scrape);
		for (size_t k = 0; k < nper[t]; k++) {
			/* two instances at once: this scrape starts before an earlier one of another
			 * instance ended */
			for (size_t j = 0; j < k; j++)
				if (per[t][j].inst != per[t][k].inst && per[t][j].end > per[t][k].start) {
					if (overlaps++ < 5)
						print_message("t%03d: instance %d [%lld, %lld] and instance %d "
						              "[%lld, %lld] overlap\n",
						              t, per[t][j].inst, (long long)per[t][j].start,
						              (long long)per[t][j].end, per[t][k].inst,
						              (long long)per[t][k].start, (long long)per[t][k].end);
				}
			if (per[t][k].inst != 2 && per[t][k].end > killed_at && !after)
				after = per[t][k].end;
		}
		/* fresh again, from a survivor, within the lease plus one interval (and 2 s for a
		 * loaded machine) after the kill */
		if (after && after - killed_at > worst)
			worst = after - killed_at;
		if (!after || after - killed_at > LEASE_MS + INTERVAL_MS + 2000) {
			if (stale++ < 5)
				print_message("t%03d: first survivor scrape %lld ms after the kill\n", t,
				              after ? (long long)(after - killed_at) : -1LL);
		}
		free(per[t]);
		per[t] = NULL;
		nper[t] = capper[t] = 0;
	}
	print_message("targets scraped by two instances at once: %d; not fresh again in time: %d; "
	              "every target scraped by a survivor within %lld ms of the kill\n",
	              overlaps, stale, (long long)worst);
	assert_int_equal(overlaps, 0);
	assert_int_equal(stale, 0);

	/* the survivors handed their leases back on SIGTERM; the dead one's expired */
	c = tu_redis_client(&e->rs);
	assert_non_null(c);
	/* no lease names a survivor (instances are "LABEL#token" in Redis) */
	rep = redisCommand(c, "KEYS cdpilot:lease:*");
	assert_non_null(rep);
	assert_int_equal(rep->type, REDIS_REPLY_ARRAY);
	for (size_t k = 0; k < rep->elements; k++) {
		redisReply *h = redisCommand(c, "GET %s", rep->element[k]->str);
		assert_non_null(h);
		if (h->type == REDIS_REPLY_STRING) {
			assert_non_null(strchr(h->str, '#'));
			assert_true(strncmp(h->str, "inst0#", 6) != 0 && strncmp(h->str, "inst1#", 6) != 0);
		}
		freeReplyObject(h);
	}
	freeReplyObject(rep);
	rep = redisCommand(c, "ZCARD cdpilot:sched");
	assert_non_null(rep);
	assert_int_equal(rep->integer, NTARGETS);
	freeReplyObject(rep);
	/* A target changing hands (the shares evened at the start, the dead one's taken over)
	 * is written as a resync against what Redis holds: the fixture's data never changes,
	 * so that writes no delta. Only each target's very first write is a delta (from
	 * nothing); a takeover written as a first write (seq 1, prev_seq 0, every field added)
	 * would add one more entry for that target. */
	{
		rep = redisCommand(c, "XLEN cdpilot:changes");
		assert_non_null(rep);
		print_message("%lld stream entries (expected one per target: %d)\n", rep->integer,
		              NTARGETS);
		assert_int_equal(rep->integer, NTARGETS);
		freeReplyObject(rep);
	}
	redisFree(c);
}

/*
 * Health knows its share: two instances over 60 targets, with thresholds short enough
 * that the other instance's targets, if counted, fail an instance within seconds
 * (HEALTH_FAILING_MAX_SECONDS=10) and EXIT_ON_HEALTH_FAILURE=1 makes that an exit. Each
 * grades only the targets it holds: both keep running, healthy, and each says it holds a
 * share (and not all) of the targets.
 */
static void test_share__health_grades_its_share(void **state)
{
	env_t *e = *state;
	char url[512];
	size_t held_sum = 0;

	write_targets(e, "h", 60);
	snprintf(url, sizeof url, "REDIS_URL=%s", e->rs.url);
	for (int i = 0; i < 2; i++) {
		char inst[64];
		snprintf(inst, sizeof inst, "SCHEDULE_INSTANCE=h%d", i);
		dk_run_start(&e->d[i], e->bed.targets, e->out[i], e->metrics[i],
		             sizeof e->metrics[i], NULL,
		             (const char *const[]){ url, inst, "SCHEDULE=redis",
		                                    "SCHEDULE_LEASE_SECONDS=5", "LIVE_INTERVAL_SECONDS=2",
		                                    "HEALTH_DEGRADED_MEDIAN_SECONDS=8",
		                                    "HEALTH_DEGRADED_P95_SECONDS=8",
		                                    "HEALTH_FAILING_MAX_SECONDS=10",
		                                    "EXIT_ON_HEALTH_FAILURE=1",
		                                    "HEALTH_FAILURE_EXIT_SECONDS=1", "LOG_LEVEL=info",
		                                    NULL });
	}
	dk_sleep_ms(30000); /* three times the failing age */
	for (int i = 0; i < 2; i++) {
		char surl[96];
		json_t *st, *t;
		size_t k, held = 0;

		if (dk_wait(&e->d[i], 0)) {
			dk_dump_log(&e->d[i]);
			fail_msg("instance %d exited while every target was fresh", i);
		}
		snprintf(surl, sizeof surl, "http://%s/status", e->metrics[i]);
		st = dk_http_get_json(surl);
		assert_non_null(st);
		json_array_foreach(json_object_get(st, "targets"), k, t)
			held += json_is_true(json_object_get(t, "held"));
		print_message("instance %d: health %s, holds %zu of 60 targets\n", i,
		              json_string_value(json_object_get(json_object_get(st, "health"), "grade")),
		              held);
		assert_string_equal(
		        json_string_value(json_object_get(json_object_get(st, "health"), "grade")),
		        "healthy");
		assert_true(held > 0 && held < 60);
		held_sum += held;
		json_decref(st);
	}
	assert_true(held_sum >= 55 && held_sum <= 60); /* the shares cover the targets */
	for (int i = 0; i < 2; i++)
		assert_int_equal(dk_stop(&e->d[i], 30000), 0);
}

/* Instance i started as SCHEDULE_INSTANCE=label with sink e->out[i]. */
static void start_labelled(env_t *e, int i, const char *label)
{
	char url[512], inst[64];

	snprintf(url, sizeof url, "REDIS_URL=%s", e->rs.url);
	snprintf(inst, sizeof inst, "SCHEDULE_INSTANCE=%s", label);
	dk_run_start(&e->d[i], e->bed.targets, e->out[i], e->metrics[i], sizeof e->metrics[i], NULL,
	             (const char *const[]){ url, inst, "SCHEDULE=redis", "SCHEDULE_LEASE_SECONDS=5",
	                                    "LIVE_INTERVAL_SECONDS=2", "LOG_LEVEL=info", NULL });
}

/* How many of the 40 targets' latest snapshots in Redis were scraped more than max_ms ago
 * (or are missing); prints the first few. */
static int stale_in_redis(env_t *e, int64_t max_ms)
{
	redisContext *c = tu_redis_client(&e->rs);
	int stale = 0;
	int64_t now = dk_wall_ms();

	assert_non_null(c);
	for (int t = 0; t < 40; t++) {
		redisReply *rep = redisCommand(c, "GET cdpilot:latest:r%03d", t);
		json_t *snap = rep && rep->type == REDIS_REPLY_STRING
		                       ? json_loads(rep->str, 0, NULL)
		                       : NULL;
		int64_t at = snap ? dk_parse_time(json_string_value(json_object_get(snap, "scraped_at")))
		                  : 0;
		if (!at || now - at > max_ms) {
			if (stale++ < 5)
				print_message("r%03d: latest in Redis scraped %lld ms ago\n", t,
				              at ? (long long)(now - at) : -1LL);
		}
		json_decref(snap);
		freeReplyObject(rep);
	}
	redisFree(c);
	return stale;
}

/*
 * An instance SIGKILLed and restarted at once under the same SCHEDULE_INSTANCE (as a
 * container restarted under its hostname, cdpilot being PID 1 there): its targets are
 * written again within one lease and two intervals. Before instances were "LABEL#token",
 * the restarted one reused its old fences while its seqs started again at 1, and its
 * writes were refused for about a minute.
 */
static void test_share__restart_under_same_label_writes_at_once(void **state)
{
	env_t *e = *state;

	write_targets(e, "r", 40);
	start_labelled(e, 0, "r0");
	start_labelled(e, 1, "r1");
	dk_sleep_ms(15000);
	kill(e->d[1].pid, SIGKILL);
	assert_true(dk_wait(&e->d[1], 5000));
	dk_proc_release(&e->d[1]);
	start_labelled(e, 2, "r1"); /* the same label, a new process */
	dk_sleep_ms(5000 + 2 * 2000 + 6000);
	assert_int_equal(stale_in_redis(e, 3 * 2000), 0);
	assert_int_equal(dk_stop(&e->d[0], 30000), 0);
	assert_int_equal(dk_stop(&e->d[2], 30000), 0);
}

/*
 * Redis killed and restarted empty (its append-only file removed) under two instances:
 * within the store's reconnection, one lease and two intervals, every target's latest in
 * Redis is current again. Before epochs and fences were raised to Redis's clock, the
 * restarted counter handed out fences below those of the results flushed from the backlog,
 * and every later write of those targets was refused. And no target is fetched twice
 * within half an interval (two instances at once), before, during or after the outage:
 * from the fixture's request log, not cdpilot's sinks. (test_share_more checks the same
 * with 3 instances and 300 targets, against the fixture's true values.)
 */
static void test_share__redis_restarted_empty(void **state)
{
	env_t *e = *state;
	char cmd[700];
	int64_t started = dk_wall_ms();
	dk_req_t *reqs;
	size_t nreq;
	int doubles;

	write_targets(e, "r", 40);
	start_labelled(e, 0, "e0");
	start_labelled(e, 1, "e1");
	dk_sleep_ms(15000);
	tu_redis_kill(&e->rs);
	snprintf(cmd, sizeof cmd, "rm -rf '%s/appendonlydir' '%s/dump.rdb'", e->rs.dir, e->rs.dir);
	assert_int_equal(system(cmd), 0);
	dk_sleep_ms(5000); /* an outage: results wait in the backlogs */
	assert_int_equal(tu_redis_restart(&e->rs), 0);
	dk_sleep_ms(5000 + 5000 + 2 * 2000 + 6000);
	assert_int_equal(stale_in_redis(e, 3 * 2000), 0);
	nreq = dk_reqlog_read(e->bed.reqlog, "r", 40, &reqs);
	doubles = dk_reqlog_doubles(reqs, nreq, started, dk_wall_ms(), 2000 / 2, "restarted empty");
	print_message("%zu requests of the 40 targets, %d double scrapes\n", nreq, doubles);
	free(reqs);
	assert_true(nreq >= 40);
	assert_int_equal(doubles, 0);
	assert_int_equal(dk_stop(&e->d[0], 30000), 0);
	assert_int_equal(dk_stop(&e->d[1], 30000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_share__three_instances_one_killed, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_share__health_grades_its_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_share__restart_under_same_label_writes_at_once,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(test_share__redis_restarted_empty, setup, teardown),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
