/*
 * try.c: `cdpilot try`, the daemon's runner run once per target (see try.h).
 *
 * One pool (started only if a chosen target needs a browser), one fetch context, and one
 * runner per target, made and fed as run.c makes and feeds the daemon's, with a local
 * schedule. The targets run one after the other; for each:
 *
 *   runner_new -> runner_start -> runner_reconcile({target}) -> the runner's callbacks:
 *     publish    the snapshot (kept)
 *     status     the target's first outcome: ok, or its failure -> done; settle soon
 *     task_done  after the outcome of a task or watched read -> runner_stop() at once,
 *                before the runner pumps again, so nothing else of it starts (the
 *                children of a discovering target stay in its table, never run)
 *   settle (a 0 ms timer; also for a failure no task_done follows) -> print -> next.
 *
 * A stopped runner keeps its memory until the pool has closed (runner.h's order: stop, close
 * the pool, close the runner), which happens once the last target is done. One timer bounds
 * each target (--timeout), one watches for a browser that cannot start, and SIGINT/SIGTERM
 * end the run (the target under way fails as internal, the rest are not run).
 */
#include "daemon/try.h"
#include "util/cliopt.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "daemon/scrape.h"
#include "runner/runner.h"
#include "util/fetch.h"
#include "util/log.h"

#define COMP "try"
#define LAUNCH_POLL_MS 200u

typedef struct try_run_s try_t;

/* One chosen target. */
typedef struct try_one {
	try_t *t;
	size_t idx; /* in the set */
	char id[TARGETS_ID_MAX + 1];
	int discover;
	runner_t *runner;
	uint64_t t0;         /* loop time it started */
	json_t *snapshot;    /* the first snapshot published */
	int done;            /* the first outcome is in */
	int stopped;         /* its runner was stopped */
	int printed;
	int ok;
	const char *kind;    /* failure */
	char message[600];
	uint64_t task_ms;    /* the runner's duration of the task or read; 0 unknown */
} try_one_t;

struct try_run_s {
	uv_loop_t *loop;
	const try_opts_t *o;
	const run_opts_t *ro;
	target_set_t *set;
	FILE *out;
	try_one_t *ones;
	size_t n, next;
	try_one_t *cur;
	cdp_wsctx_t *ws;
	pool_t *pool;
	fetch_ctx_t *fetch;
	int browser;         /* the pool was started */
	uv_timer_t deadline, settle, launch;
	uv_signal_t sig_int, sig_term;
	int handles;
	int interrupted;
	int closing;
	int closed;          /* pool, fetch context and runners closed */
	int code;
};

static void start_next(try_t *t);
static void on_settle(uv_timer_t *h);

static int needs_browser(const target_spec_t *s)
{
	return s->mode == TARGETS_WATCH || s->discover || s->adapter->needs_browser;
}

/* The error kind of a failure: the runner's own (RUNNER_KIND_*), which are scrape's kinds
 * (and exit codes) but "failed", for which `try` says "internal" as scrape does. */
static const char *kind_of(const runner_target_view_t *v)
{
	const char *k = v->last_error_kind;

	if (!k[0] || strcmp(k, RUNNER_KIND_FAILED) == 0)
		return "internal";
	return k;
}

/* ---- the runner's callbacks (ud: the try_one_t) ---- */

static void on_publish(void *ud, const json_t *snap, const json_t *delta, uint64_t fence,
                       int resync)
{
	try_one_t *one = ud;
	const char *id = json_string_value(json_object_get(snap, "target"));

	(void)delta, (void)fence, (void)resync;
	if (one->done || one->snapshot || !id || strcmp(id, one->id) != 0)
		return;
	one->snapshot = json_deep_copy(snap);
	if (!one->snapshot)
		abort();
}

static void on_status(void *ud, const runner_target_view_t *v, const char *event)
{
	try_one_t *one = ud;

	(void)event;
	if (one->done || strcmp(v->id, one->id) != 0)
		return;
	if (v->last_error[0]) {
		one->kind = kind_of(v);
		snprintf(one->message, sizeof one->message, "%s", v->last_error);
	} else if (v->seq > 0 && one->snapshot) {
		one->ok = 1;
	} else {
		return; /* no outcome yet */
	}
	one->done = 1;
	/* no runner call from here (runner.h): the task's task_done, or the settle, stops it */
	uv_timer_start(&one->t->settle, on_settle, 0, 0);
}

static void on_task_done(void *ud, const adapter_t *ad, enum pool_outcome outcome,
                         uint64_t duration_ms)
{
	try_one_t *one = ud;

	(void)ad, (void)outcome;
	if (!one->done || one->stopped)
		return;
	one->task_ms = duration_ms;
	/* before the runner pumps again: nothing else of this runner starts */
	one->stopped = 1;
	runner_stop(one->runner);
}

/* ---- results ---- */

typedef struct children {
	json_t *by_id; /* id -> {"id", "url", "class"} */
	const char *parent;
} children_t;

static void collect_child(const runner_target_view_t *v, void *ud)
{
	children_t *c = ud;

	if (strcmp(v->source, c->parent) != 0)
		return;
	json_object_set_new(c->by_id, v->id,
	                    json_pack("{s:s, s:s, s:s}", "id", v->id, "url", v->url, "class",
	                              sched_class_name(v->klass)));
}

/* The children the parent's snapshot names, in its order, as the runner holds them. */
static json_t *discovered(try_one_t *one)
{
	children_t c = { json_object(), one->id };
	json_t *list = json_array(), *ids, *id;
	size_t i;

	runner_foreach_target(one->runner, collect_child, &c);
	ids = json_object_get(json_object_get(one->snapshot, "data"), "targets");
	json_array_foreach(ids, i, id) {
		json_t *child = json_object_get(c.by_id, json_string_value(id));
		if (child)
			json_array_append(list, child);
	}
	json_decref(c.by_id);
	return list;
}

static json_t *result_of(try_one_t *one)
{
	uint64_t now = uv_now(one->t->loop);
	json_t *timings = json_pack("{s:I}", "total_ms", (json_int_t)(now - one->t0));
	json_t *res;

	if (one->task_ms)
		json_object_set_new(timings, "task_ms", json_integer((json_int_t)one->task_ms));
	if (!one->ok)
		res = json_pack("{s:s, s:b, s:{s:s, s:s}}", "id", one->id, "ok", 0, "error", "kind",
		                one->kind, "message", one->message);
	else if (one->discover)
		res = json_pack("{s:s, s:b, s:o}", "id", one->id, "ok", 1, "discovered",
		                discovered(one));
	else
		res = json_pack("{s:s, s:b, s:O}", "id", one->id, "ok", 1, "snapshot", one->snapshot);
	if (!res)
		abort();
	json_object_set_new(res, "timings", timings);
	return res;
}

static void print_result(try_t *t, try_one_t *one)
{
	json_t *res = result_of(one);

	json_dumpf(res, t->out, JSON_COMPACT);
	fputc('\n', t->out);
	fflush(t->out);
	json_decref(res);
	one->printed = 1;
	if (!one->ok && t->code == SCRAPE_EXIT_OK)
		t->code = scrape_exit_code_for(one->kind);
	log_info(COMP, "target %s: %s%s%s", one->id, one->ok ? "ok" : one->kind,
	         one->ok ? "" : ": ", one->ok ? "" : one->message);
}

/* ---- teardown: runners stopped, pool closed, then fetch context, runners, handles ---- */

static void on_handle_closed(uv_handle_t *h)
{
	try_t *t = h->data;

	t->handles--;
}

static void on_fetch_closed(void *ud)
{
	(void)ud;
}

static void on_pool_closed(pool_t *p, void *ud)
{
	try_t *t = ud;

	(void)p;
	t->pool = NULL;
	fetch_ctx_close(t->fetch, on_fetch_closed, t);
	t->fetch = NULL;
	for (size_t i = 0; i < t->n; i++)
		if (t->ones[i].runner)
			runner_close(t->ones[i].runner, NULL, NULL);
	cdp_wsctx_close(t->ws);
	uv_close((uv_handle_t *)&t->deadline, on_handle_closed);
	uv_close((uv_handle_t *)&t->settle, on_handle_closed);
	uv_close((uv_handle_t *)&t->launch, on_handle_closed);
	uv_close((uv_handle_t *)&t->sig_int, on_handle_closed);
	uv_close((uv_handle_t *)&t->sig_term, on_handle_closed);
	t->closed = 1;
}

static void finish_all(try_t *t)
{
	if (t->closing)
		return;
	t->closing = 1;
	uv_timer_stop(&t->deadline);
	uv_timer_stop(&t->settle);
	uv_timer_stop(&t->launch);
	for (size_t i = 0; i < t->n; i++)
		if (t->ones[i].runner && !t->ones[i].stopped) {
			t->ones[i].stopped = 1;
			runner_stop(t->ones[i].runner);
		}
	pool_close(t->pool, on_pool_closed, t);
}

/* ---- one target after the other ---- */

/* The current target's outcome is in (or it failed here): stop its runner, print it,
 * go on. */
static void on_settle(uv_timer_t *h)
{
	try_t *t = h->data;
	try_one_t *one = t->cur;

	if (!one || one->printed)
		return;
	uv_timer_stop(&t->deadline);
	if (!one->stopped) {
		one->stopped = 1;
		runner_stop(one->runner);
	}
	print_result(t, one);
	t->cur = NULL;
	start_next(t);
}

/* Fails the current target here (timeout, launch, signal) and settles at once. */
static void fail_current(try_t *t, const char *kind, const char *msg)
{
	try_one_t *one = t->cur;

	if (!one || one->done)
		return;
	one->done = 1;
	one->kind = kind;
	snprintf(one->message, sizeof one->message, "%s", msg);
	on_settle(&t->settle);
}

/* How long past --timeout a target may take before try gives up on it. */
#define TRY_GRACE_MS 10000

static void on_deadline(uv_timer_t *h)
{
	try_t *t = h->data;
	char msg[96];

	snprintf(msg, sizeof msg, "no outcome within --timeout %g s (and %d s of grace)",
	         t->o->timeout_s, TRY_GRACE_MS / 1000);
	fail_current(t, "timeout", msg);
}

/* The pool relaunches a browser that failed to start, with backoff, and its leases wait;
 * for a one-shot command the first failed launch is the answer (exit 3). */
static void on_launch_poll(uv_timer_t *h)
{
	try_t *t = h->data;
	pool_stats_t ps;

	pool_get_stats(t->pool, &ps);
	if (ps.browser_launches > 0) {
		uv_timer_stop(h);
		return;
	}
	if (ps.consecutive_crashes == 0)
		return;
	uv_timer_stop(h);
	log_error(COMP, "the browser could not start: not trying the other targets");
	t->interrupted = 1;
	fail_current(t, "launch",
	             "the browser could not be launched or attached to (see the log above; "
	             "CHROMIUM_PATH, CHROMIUM_FLAGS, CDP_URL)");
	finish_all(t);
}

static void on_signal(uv_signal_t *h, int signum)
{
	try_t *t = h->data;
	char msg[96];

	if (t->closing) {
		log_info(COMP, "%s received while closing; still closing", strsignal(signum));
		return;
	}
	t->interrupted = 1;
	snprintf(msg, sizeof msg, "interrupted by signal %d (%s)", signum, strsignal(signum));
	fail_current(t, "internal", msg);
	finish_all(t);
}

static runner_t *new_runner(try_t *t, try_one_t *one)
{
	const run_opts_t *o = t->ro;
	runner_opts_t ro;
	runner_callbacks_t cbs = { .publish = on_publish,
		                   .task_done = on_task_done,
		                   .status = on_status,
		                   .ud = one };

	run_runner_opts(o, &ro); /* on a local schedule: no claim callbacks */
	return runner_new(t->loop, &ro, t->pool, t->fetch, &cbs);
}

/* --timeout caps the target's deadline (its timeout_seconds, else TASK_TIMEOUT_SECONDS), so
 * that a step that never ends fails as itself (a selector that never matched) within it. */
static void cap_deadline(try_t *t, target_spec_t *sp)
{
	uint32_t cap = (uint32_t)(t->o->timeout_s * 1000.0 + 0.5);
	uint32_t own = sp->timeout_ms ? sp->timeout_ms : t->ro->pool.task_timeout_ms;

	if (own > cap)
		sp->timeout_ms = cap;
}

static void start_next(try_t *t)
{
	try_one_t *one;
	target_set_t single;

	if (t->interrupted || t->next == t->n) {
		finish_all(t);
		return;
	}
	one = t->cur = &t->ones[t->next++];
	one->t0 = uv_now(t->loop);
	one->runner = new_runner(t, one);
	if (!one->runner) {
		log_error(COMP, "out of memory creating the runner");
		abort();
	}
	log_info(COMP, "trying target %s (%s)", one->id, t->set->v[one->idx].url);
	cap_deadline(t, &t->set->v[one->idx]);
	/* the target's own deadline ends it first; this one only catches what never starts
	 * (a browser that cannot launch, a lease that never comes) */
	uv_timer_start(&t->deadline, on_deadline,
	               (uint64_t)(t->o->timeout_s * 1000.0 + 0.5) + TRY_GRACE_MS, 0);
	runner_start(one->runner);
	single.v = &t->set->v[one->idx];
	single.n = 1;
	runner_reconcile(one->runner, &single, ""); /* takes the spec (zeroed in set) */
}

static void init_handles(try_t *t)
{
	uv_timer_init(t->loop, &t->deadline);
	uv_timer_init(t->loop, &t->settle);
	uv_timer_init(t->loop, &t->launch);
	uv_signal_init(t->loop, &t->sig_int);
	uv_signal_init(t->loop, &t->sig_term);
	t->deadline.data = t->settle.data = t->launch.data = t;
	t->sig_int.data = t->sig_term.data = t;
	t->handles = 5;
	uv_signal_start(&t->sig_int, on_signal, SIGINT);
	uv_signal_start(&t->sig_term, on_signal, SIGTERM);
}

/* The chosen targets, in file order; 1 if one of them needs a browser. */
static int choose(try_t *t)
{
	int browser = 0;

	t->ones = calloc(t->set->n + 1, sizeof *t->ones);
	if (!t->ones)
		abort();
	for (size_t i = 0; i < t->set->n; i++) {
		const target_spec_t *s = &t->set->v[i];
		try_one_t *one;
		if (t->o->id && strcmp(s->id, t->o->id) != 0)
			continue;
		one = &t->ones[t->n++];
		one->t = t;
		one->idx = i;
		one->discover = s->discover;
		snprintf(one->id, sizeof one->id, "%s", s->id);
		browser |= needs_browser(s);
	}
	return browser;
}

int try_run(uv_loop_t *loop, const try_opts_t *o, const run_opts_t *ro, target_set_t *set,
            FILE *out)
{
	try_t t = { .loop = loop, .o = o, .ro = ro, .set = set, .out = out };

	init_handles(&t);
	t.browser = choose(&t);
	t.ws = cdp_wsctx_new(loop);
	t.pool = t.ws ? pool_new(loop, t.ws, &ro->pool) : NULL;
	t.fetch = fetch_ctx_new(loop);
	if (t.fetch) /* names that resolve to a denied address, as `run` refuses them */
		fetch_ctx_set_policy(t.fetch, targets_policy());
	if (!t.pool || !t.fetch) {
		log_error(COMP, "cannot create the browser pool or the HTTP client");
		abort();
	}
	if (t.browser) {
		pool_start(t.pool);
		uv_timer_start(&t.launch, on_launch_poll, LAUNCH_POLL_MS, LAUNCH_POLL_MS);
	} else {
		log_info(COMP, "no chosen target needs a browser: Chromium is not launched");
	}
	start_next(&t);
	while (!t.closed || t.handles > 0)
		uv_run(loop, UV_RUN_DEFAULT);
	/* the runners' and the lws context's last handles */
	uv_run(loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(t.ws);
	for (size_t i = 0; i < t.n; i++) {
		if (t.ones[i].done && !t.ones[i].printed)
			print_result(&t, &t.ones[i]);
		json_decref(t.ones[i].snapshot);
	}
	free(t.ones);
	if (t.interrupted && t.code == SCRAPE_EXIT_OK)
		t.code = SCRAPE_EXIT_INTERNAL;
	return t.code;
}

/* ---- arguments ---- */

void try_usage(FILE *f)
{
	fprintf(f,
	        "usage: cdpilot try --targets FILE [--id ID] [--timeout SECONDS]\n"
	        "                   [--SETTING VALUE...]\n"
	        "\n"
	        "Runs one scrape of the target ID in FILE (or of each target, one after the\n"
	        "other, in file order) exactly as `cdpilot run` would, with the same settings\n"
	        "(environment variables and --SETTING flags, see docs/configuration.md), and\n"
	        "prints one JSON object per target on its own line:\n"
	        "  {\"id\", \"ok\": true, \"snapshot\": {...}, \"timings\": {...}}\n"
	        "  {\"id\", \"ok\": true, \"discovered\": [{\"id\", \"url\", \"class\"}...],\n"
	        "   \"timings\": {...}}   (a discovering target: its children are not scraped)\n"
	        "  {\"id\", \"ok\": false, \"error\": {\"kind\", \"message\"}, \"timings\": {...}}\n"
	        "timings: total_ms (from the start of the target, browser launch included) and\n"
	        "task_ms (the scrape itself, as the daemon measures it).\n"
	        "\n"
	        "  --targets FILE     the targets file (or TARGETS_FILE)\n"
	        "  --id ID            only this target\n"
	        "  --timeout SECONDS  caps each target's deadline, 0 < SECONDS <= 3600 (default 60)\n"
	        "  --help             this help\n"
	        "\n"
	        "Chromium is launched only if a chosen target needs it (jsonapi does not).\n"
	        "exit codes: 0 every target ok; else the first failure's, as `cdpilot scrape`:\n"
	        "3 launch, 4 network, 5 http, 6 timeout, 7 selector, 8 script, 9 browser,\n"
	        "10 internal (also SIGINT/SIGTERM), 11 action (a page action failed), 12 data\n"
	        "(the page's value did not validate); 2 usage or an invalid targets file (every\n"
	        "error listed) or an unknown --id.\n");
}

static int set_value(try_opts_t *o, const char *name, const char *value, char *err,
                     size_t errlen)
{
	if (strcmp(name, "--timeout") == 0) {
		char *end = NULL;
		double s;
		errno = 0;
		s = strtod(value, &end);
		if (!*value || errno || *end || !isfinite(s) || s <= 0 || s > 3600) {
			snprintf(err, errlen,
			         "--timeout '%s': expected a number of seconds greater than 0 and at "
			         "most 3600",
			         value);
			return -EINVAL;
		}
		o->timeout_s = s;
		return 0;
	}
	if (!*value) {
		snprintf(err, errlen, "%s '': expected a non-empty %s", name,
		         strcmp(name, "--id") == 0 ? "target id" : "file path");
		return -EINVAL;
	}
	if (strcmp(name, "--id") == 0)
		o->id = value;
	else
		o->targets_path = value;
	return 0;
}

int try_parse_args(int argc, char **argv, try_opts_t *o, char *err, size_t errlen)
{
	static const char *const options[] = { "--targets", "--id", "--timeout", NULL };

	memset(o, 0, sizeof *o);
	o->timeout_s = 60;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *value;
		char name[32];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return 1;
		switch (cliopt_next(argc, argv, &i, options, name, sizeof name, &value, err, errlen)) {
		case CLIOPT_UNKNOWN:
			snprintf(err, errlen,
			         "%s '%s': expected --targets FILE, --id ID, --timeout SECONDS, a "
			         "setting's flag or --help",
			         a[0] == '-' ? "unknown option" : "unexpected argument", a);
			return -EINVAL;
		case CLIOPT_NOVALUE: return -EINVAL;
		default: break;
		}
		if (set_value(o, name, value, err, errlen) != 0)
			return -EINVAL;
	}
	return 0;
}
