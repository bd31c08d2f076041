/*
 * bench_store: cdpilot's side of the Redis benchmark. Puts N results (a snapshot of about
 * SIZE serialised bytes plus a small delta, round robin over T targets) through store/ as
 * fast as its write window takes them, and prints one JSON object: snapshot writes per
 * second (first put to last acknowledged write), CPU time and peak RSS of this process.
 *
 *   cdpilot-bench-store --url unix:///path/redis.sock [--results N] [--targets T]
 *                       [--size BYTES] [--window W] [--prefix P]
 *
 * Pacing: puts are made from a uv_check handle (after each poll, so after each batch of
 * replies) while fewer than W results are unanswered, W being the store's inflight_max.
 * Every put then takes the store's direct path (one EVALSHA); none waits in the backlog,
 * where a newer result of the same target would replace it. Any result that is neither
 * written nor refused in the end is reported as "coalesced".
 * Building the snapshots is measured separately, before the run (build_cpu_us), so the run
 * measures snapshot building + the store + hiredis + the loop together, as the daemon does.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "adapters/snapshot.h"
#include "store/store.h"
#include "util/log.h"

#define COMP "bench"
#define QUIET_MS 500 /* after the last put: no new reply for this long ends the run */

typedef struct bench {
	uv_loop_t loop;
	store_t *store;
	uv_check_t check;
	uv_timer_t watch;
	uint64_t results, targets, size, window;
	uint64_t put;          /* store_put() calls made */
	uint64_t answered;     /* writes_ok + refused_seq at the last look */
	uint64_t t0_ns, tlast_ns;
	double cpu0;
	uint64_t size_sum, size_n; /* sampled serialised snapshot sizes */
	size_t pad_len;
	char *pad;
	double build_us; /* CPU us to build one snapshot + delta, measured before the run */
	uint64_t start_ns;
	int finished, closed, failed;
} bench_t;

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Result k: target k % T, seq k / T + 1. *snap and *delta are new references. */
static void build(const bench_t *b, uint64_t k, json_t **snap, json_t **delta)
{
	char id[32], home[48], away[48], ts[32];
	uint64_t t = k % b->targets, seq = k / b->targets + 1;
	int64_t now = wall_ms();
	json_t *data;

	snprintf(id, sizeof id, "m%05" PRIu64, t);
	snprintf(home, sizeof home, "Home side %05" PRIu64, t);
	snprintf(away, sizeof away, "Away side %05" PRIu64, t);
	snapshot_format_time(now, ts);
	data = json_pack("{s:s, s:s, s:[i,i], s:i, s:s, s:I, s:[{s:i,s:s,s:s},{s:i,s:s,s:s}], s:s}",
	                 "home", home, "away", away, "score", (int)(seq % 5), (int)(seq % 3),
	                 "minute", (int)(seq % 90), "status", "live", "version", (json_int_t)seq,
	                 "events", "minute", 12, "type", "goal", "team", "home", "minute", 37,
	                 "type", "card", "team", "away", "pad", b->pad ? b->pad : "");
	*snap = snapshot_new(id, "generic", "http://127.0.0.1:8080/live/match/1", seq, now, 412,
	                     SCHED_LIVE, data);
	*delta = json_pack("{s:s, s:I, s:I, s:s, s:[], s:[{s:s, s:I, s:I}], s:[]}", "target", id,
	                   "seq", (json_int_t)seq, "prev_seq", (json_int_t)(seq - 1),
	                   "scraped_at", ts, "added", "changed", "path", "/version", "from",
	                   (json_int_t)(seq - 1), "to", (json_int_t)seq, "removed");
	if (!*snap || !*delta) {
		fprintf(stderr, "cdpilot-bench-store: out of memory building a snapshot\n");
		abort();
	}
}

static size_t dumped_size(const json_t *v)
{
	return json_dumpb(v, NULL, 0, JSON_COMPACT);
}

static void finish(bench_t *b);

static void top_up(bench_t *b)
{
	store_stats_t st;
	uint64_t answered;

	if (b->finished)
		return;
	store_get_stats(b->store, &st);
	if (!st.connected)
		return;
	answered = st.writes_ok + st.refused_seq;
	if (!b->t0_ns) {
		b->cpu0 = cpu_seconds();
		b->t0_ns = uv_hrtime();
	}
	if (answered != b->answered) {
		b->answered = answered;
		b->tlast_ns = uv_hrtime();
	}
	while (b->put < b->results && b->put - answered < b->window) {
		json_t *snap, *delta;
		build(b, b->put, &snap, &delta);
		if ((b->put & 63) == 0) {
			b->size_sum += dumped_size(snap);
			b->size_n++;
		}
		store_put(b->store, snap, delta);
		json_decref(snap);
		json_decref(delta);
		b->put++;
	}
	if (b->put == b->results && answered >= b->results)
		finish(b);
}

static void on_check(uv_check_t *h) { top_up(h->data); }

/* Ends the run when the replies stopped (a coalesced result is never answered). */
static void on_watch(uv_timer_t *h)
{
	bench_t *b = h->data;
	store_stats_t st;

	top_up(b);
	if (!b->finished && !b->t0_ns && uv_hrtime() - b->start_ns > 10000000000ull) {
		store_get_stats(b->store, &st);
		fprintf(stderr, "cdpilot-bench-store: not connected after 10 s: %s\n",
		        st.last_error[0] ? st.last_error : "no error reported");
		b->failed = 1;
		finish(b);
		return;
	}
	if (b->finished || b->put < b->results)
		return;
	store_get_stats(b->store, &st);
	if (st.backlog == 0 && uv_hrtime() - b->tlast_ns > (uint64_t)QUIET_MS * 1000000)
		finish(b);
}

static void on_store_closed(void *ud)
{
	bench_t *b = ud;

	b->closed = 1;
}

static void finish(bench_t *b)
{
	store_stats_t st;
	struct rusage ru;
	double secs, cpu;
	uint64_t lost;
	json_t *out;
	char *text;

	b->finished = 1;
	cpu = cpu_seconds() - b->cpu0;
	secs = (double)(b->tlast_ns - b->t0_ns) / 1e9;
	store_get_stats(b->store, &st);
	getrusage(RUSAGE_SELF, &ru);
	lost = b->results - (st.writes_ok + st.refused_seq);
	out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, "
	                "s:f, s:f}",
	                "side", "cdpilot", "results", (json_int_t)b->results, "targets",
	                (json_int_t)b->targets, "window", (json_int_t)b->window, "snapshot_bytes",
	                (json_int_t)(b->size_n ? b->size_sum / b->size_n : 0), "writes_ok",
	                (json_int_t)st.writes_ok, "refused_seq", (json_int_t)st.refused_seq,
	                "write_errors", (json_int_t)st.write_errors, "resyncs",
	                (json_int_t)st.resyncs, "coalesced", (json_int_t)lost, "drops",
	                (json_int_t)st.drops, "seconds", secs, "writes_per_s",
	                secs > 0 ? (double)st.writes_ok / secs : 0.0, "cpu_s", cpu,
	                "cpu_us_per_write",
	                st.writes_ok ? cpu * 1e6 / (double)st.writes_ok : 0.0, "peak_rss_mb",
	                (double)ru.ru_maxrss / 1024.0);
	if (out)
		json_object_set_new(out, "build_cpu_us", json_real(b->build_us));
	text = out && !b->failed ? json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
	if (text)
		printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_decref(out);
	if (st.write_errors)
		log_warn(COMP, "%" PRIu64 " write errors; last: %s", st.write_errors, st.last_error);
	uv_check_stop(&b->check);
	uv_timer_stop(&b->watch);
	uv_close((uv_handle_t *)&b->check, NULL);
	uv_close((uv_handle_t *)&b->watch, NULL);
	store_close(b->store, on_store_closed, b);
}

/* Parses v (the value of option name) as an integer in [lo, hi] into *out; 0 or -EINVAL after saying why. */
static int arg_u64(const char *name, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end = NULL;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || !end || *end || end == v || v[0] == '-' || x < lo || x > hi) {
		fprintf(stderr,
		        "cdpilot-bench-store: %s '%s': expected an integer from %" PRIu64
		        " to %" PRIu64 "\n",
		        name, v, lo, hi);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

/* Pads the data so the first snapshot serialises to about b->size bytes. */
static void calibrate(bench_t *b)
{
	json_t *snap, *delta;
	size_t base;

	build(b, 0, &snap, &delta);
	base = dumped_size(snap);
	json_decref(snap);
	json_decref(delta);
	b->pad_len = b->size > base ? (size_t)b->size - base : 0;
	b->pad = malloc(b->pad_len + 1);
	if (!b->pad)
		abort();
	memset(b->pad, 'x', b->pad_len);
	b->pad[b->pad_len] = '\0';
}

/* CPU microseconds to build one snapshot + delta (measured apart, before the run). */
static double build_cost_us(const bench_t *b)
{
	uint64_t n = b->results < 20000 ? b->results : 20000;
	double c0 = cpu_seconds();

	for (uint64_t k = 0; k < n; k++) {
		json_t *snap, *delta;
		build(b, k, &snap, &delta);
		json_decref(snap);
		json_decref(delta);
	}
	return (cpu_seconds() - c0) * 1e6 / (double)n;
}

int main(int argc, char **argv)
{
	bench_t b;
	store_opts_t o;
	const char *url = NULL, *prefix = "bench";
	int rc = 0;

	signal(SIGPIPE, SIG_IGN);
	memset(&b, 0, sizeof b);
	b.results = 200000;
	b.targets = 1000;
	b.size = 512;
	b.window = 256;
	for (int i = 1; i < argc; i += 2) { /* --name VALUE pairs */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			rc = -EINVAL;
		} else if (strcmp(a, "--url") == 0) {
			url = v;
		} else if (strcmp(a, "--prefix") == 0) {
			prefix = v;
		} else if (strcmp(a, "--results") == 0) {
			rc |= arg_u64(a, v, 1, 100000000, &b.results);
		} else if (strcmp(a, "--targets") == 0) {
			rc |= arg_u64(a, v, 1, 99999, &b.targets);
		} else if (strcmp(a, "--size") == 0) {
			rc |= arg_u64(a, v, 1, 1 << 20, &b.size);
		} else if (strcmp(a, "--window") == 0) {
			rc |= arg_u64(a, v, 1, 65536, &b.window);
		} else {
			fprintf(stderr, "cdpilot-bench-store: unknown argument '%s'\n", a);
			rc = -EINVAL;
		}
	}
	if (rc || !url) {
		fprintf(stderr, "usage: cdpilot-bench-store --url REDIS_URL [--results N] "
		                "[--targets T] [--size BYTES] [--window W] [--prefix P]\n");
		return 2;
	}
	log_set_level(LOG_WARN);
	calibrate(&b);
	b.build_us = build_cost_us(&b);

	uv_loop_init(&b.loop);
	store_opts_init(&o);
	snprintf(o.url, sizeof o.url, "%s", url);
	snprintf(o.prefix, sizeof o.prefix, "%s", prefix);
	o.inflight_max = (uint32_t)b.window;
	o.changes_maxlen = 100000;
	b.store = store_new(&b.loop, &o);
	if (!b.store) {
		free(b.pad);
		uv_loop_close(&b.loop);
		return 1;
	}
	uv_check_init(&b.loop, &b.check);
	b.check.data = &b;
	uv_check_start(&b.check, on_check);
	uv_timer_init(&b.loop, &b.watch);
	b.watch.data = &b;
	uv_timer_start(&b.watch, on_watch, 50, 50);
	b.start_ns = uv_hrtime();
	store_start(b.store);
	while (!b.closed)
		uv_run(&b.loop, UV_RUN_ONCE);
	uv_run(&b.loop, UV_RUN_DEFAULT);
	free(b.pad);
	if (uv_loop_close(&b.loop) != 0) {
		fprintf(stderr, "cdpilot-bench-store: handles left open on the loop\n");
		return 1;
	}
	return b.failed ? 1 : 0;
}
