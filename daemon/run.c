#include "daemon/run.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "adapters/adapter.h"
#include "adapters/snapshot.h"
#include "cdp/cdp_err.h"
#include "daemon/sink.h"
#include "daemon/targets.h"
#include "util/fetch.h"
#include "util/log.h"

#define TICK_MS 1000u
#define WATCH_RETRY_MAX_MS 30000u
#define PUSH_BINDING "__cdpilotPush"

/* ---- options ---- */

static int env_num(const char *name, double lo, double hi, double *out, errlist_t *errs)
{
	const char *v = getenv(name);
	char *end = NULL;
	double d;

	if (!v)
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (!*v || errno || !end || *end || !isfinite(d) || d < lo || d > hi) {
		errlist_add(errs, "%s=\"%s\": expected a number from %g to %g", name, v, lo, hi);
		return -EINVAL;
	}
	*out = d;
	return 0;
}

void run_usage(FILE *f)
{
	fprintf(f,
	        "usage: cdpilot run --targets FILE [--output FILE|-] [--duration SECONDS]\n"
	        "                   [--status | --no-status]\n"
	        "\n"
	        "Keeps every target in FILE (JSON, see docs/targets.md) fresh: each is re-scraped\n"
	        "on its class's interval (live 5 s, imminent 60 s, completed 900 s by default)\n"
	        "and every result is written as a JSON snapshot, plus a delta when data changed,\n"
	        "one per line to --output (\"-\" is stdout).\n"
	        "\n"
	        "  --targets FILE     the targets file (or TARGETS_FILE)\n"
	        "  --output FILE|-    JSON-lines sink for snapshots and deltas (or OUTPUT)\n"
	        "  --duration S       stop after S seconds (default: run until SIGTERM/SIGINT)\n"
	        "  --status           a live one-line status on stderr (default on a terminal)\n"
	        "  --no-status        no status line\n"
	        "\n"
	        "SIGHUP re-reads the targets file; SIGTERM or SIGINT stop gracefully (exit 0).\n"
	        "Settings are environment variables: see docs/configuration.md.\n");
}

int run_parse_args(int argc, char **argv, run_opts_t *o, errlist_t *errs)
{
	static const struct option longopts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "duration", required_argument, NULL, 'd' },
		{ "status", no_argument, NULL, 's' },
		{ "no-status", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char perr[8192] = "";
	double d;
	int c;

	memset(o, 0, sizeof *o);
	o->status_line = -1;
	o->watch_cap = 64;
	o->watch_reload_ms = 600000;
	pool_opts_init(&o->pool);
	sched_opts_init(&o->sched);
	health_opts_init(&o->health);
	if (pool_opts_from_env(&o->pool, perr, sizeof perr) != 0) {
		/* one errlist line per error line */
		char *save = NULL;
		for (char *line = strtok_r(perr, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			errlist_add(errs, "%s", line);
	}
	sched_opts_from_env(&o->sched, errs);
	health_opts_from_env(&o->health, errs);
	wd_opts_init(&o->wd);
	wd_opts_from_env(&o->wd, errs);
	httpd_opts_init(&o->http);
	httpd_opts_from_env(&o->http, errs);
	store_opts_init(&o->store);
	store_opts_from_env(&o->store, errs);
	o->use_store = getenv("REDIS_URL") != NULL;
	share_opts_init(&o->share);
	share_opts_from_env(&o->share, errs);
	o->share.run_ms = o->pool.task_timeout_ms;
	{
		const char *v = getenv("SCHEDULE");
		if (v && strcmp(v, "local") != 0 && strcmp(v, "redis") != 0)
			errlist_add(errs, "SCHEDULE=\"%.80s\": expected local or redis", v);
		else if (v && strcmp(v, "redis") == 0 && !o->use_store)
			errlist_add(errs, "SCHEDULE=redis: the shared schedule lives in Redis; set "
			                  "REDIS_URL too");
		else
			o->shared_schedule = v && strcmp(v, "redis") == 0;
	}
	{
		const char *v = getenv("EXIT_ON_HEALTH_FAILURE");
		if (v && strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			errlist_add(errs, "EXIT_ON_HEALTH_FAILURE=\"%s\": expected 0 or 1", v);
		else
			o->exit_on_health_failure = v && strcmp(v, "1") == 0;
	}
	d = 300;
	o->health_exit_ms = 300000;
	if (env_num("HEALTH_FAILURE_EXIT_SECONDS", 1, 86400, &d, errs) == 0)
		o->health_exit_ms = (uint32_t)(d * 1000);
	d = o->watch_cap;
	if (env_num("WATCH_CAP", 1, 1024, &d, errs) == 0) {
		if (d != floor(d))
			errlist_add(errs, "WATCH_CAP=\"%s\": expected a whole number from 1 to 1024",
			            getenv("WATCH_CAP"));
		o->watch_cap = (unsigned)d;
	}
	d = o->watch_reload_ms / 1000.0;
	if (env_num("WATCH_RELOAD_SECONDS", 1, 86400, &d, errs) == 0)
		o->watch_reload_ms = (uint32_t)(d * 1000);
	if (getenv("TARGETS_FILE"))
		snprintf(o->targets_path, sizeof o->targets_path, "%.*s", (int)sizeof o->targets_path - 1, getenv("TARGETS_FILE"));
	if (getenv("OUTPUT"))
		snprintf(o->output, sizeof o->output, "%.*s", (int)sizeof o->output - 1, getenv("OUTPUT"));

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:o:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			snprintf(o->targets_path, sizeof o->targets_path, "%.*s", (int)sizeof o->targets_path - 1, optarg);
			break;
		case 'o':
			snprintf(o->output, sizeof o->output, "%.*s", (int)sizeof o->output - 1, optarg);
			break;
		case 'd': {
			char *end = NULL;
			errno = 0;
			d = strtod(optarg, &end);
			if (!*optarg || errno || *end || !isfinite(d) || d <= 0 || d > 31536000)
				errlist_add(errs, "--duration \"%s\": expected seconds, a number above 0",
				            optarg);
			else
				o->duration_s = d;
			break;
		}
		case 's':
			o->status_line = 1;
			break;
		case 'S':
			o->status_line = 0;
			break;
		case 'h':
			return 1;
		case ':':
			errlist_add(errs, "%s: expected a value", argv[optind - 1]);
			break;
		default:
			errlist_add(errs, "unknown option \"%s\" (see cdpilot run --help)",
			            argv[optind - 1]);
			break;
		}
	}
	if (optind < argc)
		errlist_add(errs, "unexpected argument \"%s\" (see cdpilot run --help)", argv[optind]);
	if (!o->targets_path[0])
		errlist_add(errs, "no targets file: give --targets FILE (or TARGETS_FILE)");
	return errs->count ? -EINVAL : 0;
}

#include "daemon/run_priv.h"

static void pump(run_t *r);
static void schedule_wake(run_t *r);
static void watch_open(run_t *r, rtarget_t *rt, watch_t *replaces);
static void watch_close(watch_t *w);
static void watch_sched_done(run_t *r, rtarget_t *rt, int ok);
static void share_run_over(run_t *r, rtarget_t *rt);
static void claim(run_t *r, rtarget_t *rt, int watch);
static void watch_extract(watch_t *w);

static uint64_t now_ms(run_t *r)
{
	return uv_now(r->loop);
}

static int64_t unix_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static uint32_t class_interval(run_t *r, const rtarget_t *rt)
{
	return rt->spec.interval_ms ? rt->spec.interval_ms : r->o->sched.interval_ms[rt->klass];
}

/* ---- targets table ---- */

static rtarget_t *find_target(run_t *r, const char *id)
{
	for (rtarget_t *t = r->targets; t; t = t->next)
		if (strcmp(t->spec.id, id) == 0)
			return t;
	return NULL;
}

static void rt_unref(rtarget_t *rt)
{
	if (--rt->refs > 0)
		return;
	json_decref(rt->last);
	target_spec_release(&rt->spec);
	free(rt);
}

static sched_t *sched_of(run_t *r, const rtarget_t *rt)
{
	return rt->spec.mode == TARGETS_WATCH ? r->wsched : r->nav;
}

/* Takes ownership of *spec (zeroed on return). */
static void target_add(run_t *r, target_spec_t *spec, const char *parent)
{
	rtarget_t *rt = calloc(1, sizeof *rt);

	if (!rt)
		abort();
	rt->run = r;
	rt->spec = *spec;
	memset(spec, 0, sizeof *spec);
	snprintf(rt->parent, sizeof rt->parent, "%.*s", (int)sizeof rt->parent - 1, parent);
	if (targets_host(rt->spec.url, rt->host, sizeof rt->host) != 0)
		rt->host[0] = '\0';
	rt->klass = rt->spec.klass;
	rt->added_ms = now_ms(r);
	rt->refs = 1;
	rt->next = r->targets;
	r->targets = rt;
	r->ntargets++;
	sched_add(sched_of(r, rt), rt->spec.id, rt->host, rt->klass, rt->spec.interval_ms, rt,
	          now_ms(r));
	log_info("run", "target %s added (%s, %s, %s%s)", rt->spec.id, rt->spec.adapter->name,
	         sched_class_name(rt->klass), rt->spec.mode == TARGETS_WATCH ? "watch" : "navigate",
	         rt->spec.push ? ", push" : "");
}

static void target_remove(run_t *r, rtarget_t *rt)
{
	rtarget_t **pp;

	for (pp = &r->targets; *pp; pp = &(*pp)->next)
		if (*pp == rt) {
			*pp = rt->next;
			break;
		}
	r->ntargets--;
	rt->removed = 1;
	sched_remove(sched_of(r, rt), rt->spec.id);
	if (r->share && !r->stopping)
		share_forget(r->share, rt->spec.id);
	if (rt->watch)
		watch_close(rt->watch);
	if (!r->stopping)
		log_info("run", "target %s removed", rt->spec.id);
	rt_unref(rt);
}

/* Replaces the spec of an existing target (its state: seq, last snapshot, ages stay). The
 * scheduler keeps its due time and running state (sched_update), so a changed spec never
 * starts a second scrape beside a running one; a switch between navigate and watch moves it
 * to the other scheduler (due at once there). A discovered target already scraped keeps the
 * class its own page gave it, unless the listing now says something new: a class that
 * differs both from what the listing said before and from what the page said last (a match
 * that kicked off or finished since the page was read). Then the listing's class is taken
 * and, if the target is not running, it is due at once, to read the page in its new state.
 * A listing read a moment before the page changed, saying what the page already said, moves
 * nothing. */
static void target_update(run_t *r, rtarget_t *rt, target_spec_t *spec)
{
	int mode_changed = spec->mode != rt->spec.mode || spec->push != rt->spec.push ||
	                   strcmp(spec->url, rt->spec.url) != 0;
	int sched_changed = spec->mode != rt->spec.mode;
	int keep_class = rt->parent[0] && rt->seq > 0;
	int news = rt->parent[0] && spec->klass != rt->spec.klass && spec->klass != rt->klass;
	sched_t *old = sched_of(r, rt);
	sched_info_t si;
	int running = sched_get_info(old, rt->spec.id, &si) == 0 && si.running;

	if (rt->watch && mode_changed)
		watch_close(rt->watch);
	if (sched_changed || (news && !running)) {
		sched_remove(old, rt->spec.id);
		sched_changed = 1;
	}
	target_spec_release(&rt->spec);
	rt->spec = *spec;
	memset(spec, 0, sizeof *spec);
	if (targets_host(rt->spec.url, rt->host, sizeof rt->host) != 0)
		rt->host[0] = '\0';
	if (!keep_class || news)
		rt->klass = rt->spec.klass;
	if (sched_changed)
		sched_add(sched_of(r, rt), rt->spec.id, rt->host, rt->klass, rt->spec.interval_ms, rt,
		          now_ms(r));
	else
		sched_update(old, rt->spec.id, rt->host, rt->klass, rt->spec.interval_ms, rt,
		             now_ms(r));
	if (news)
		log_info("run", "target %s changed: the listing says %s%s", rt->spec.id,
		         sched_class_name(rt->klass), running ? "" : "; due now");
	else
		log_info("run", "target %s changed", rt->spec.id);
}

/* Makes the targets with this parent ("" = the file) exactly `set`; set's specs are taken. */
static void reconcile(run_t *r, target_set_t *set, const char *parent)
{
	char (*ids)[sizeof set->v[0].id] = calloc(set->n + 1, sizeof *ids);

	if (!ids)
		abort();
	for (size_t i = 0; i < set->n; i++)
		memcpy(ids[i], set->v[i].id, sizeof ids[i]);
	for (size_t i = 0; i < set->n; i++) {
		target_spec_t *s = &set->v[i];
		rtarget_t *rt = find_target(r, s->id);
		if (!rt) {
			target_add(r, s, parent);
		} else if (strcmp(rt->parent, parent) != 0) {
			log_warn("run", "target %s is already defined (%s); the one from %s is ignored",
			         s->id, rt->parent[0] ? rt->parent : "the targets file",
			         parent[0] ? parent : "the targets file");
		} else if (!json_equal(rt->spec.json, s->json)) {
			target_update(r, rt, s);
		}
	}
	for (rtarget_t *rt = r->targets, *next; rt; rt = next) {
		int keep = 0;
		next = rt->next;
		if (strcmp(rt->parent, parent) != 0)
			continue;
		for (size_t i = 0; i < set->n && !keep; i++)
			keep = strcmp(ids[i], rt->spec.id) == 0;
		if (keep)
			continue;
		/* children of a removed parent go with it */
		for (rtarget_t *c = r->targets, *cn; c; c = cn) {
			cn = c->next;
			if (strcmp(c->parent, rt->spec.id) == 0) {
				if (c == next)
					next = cn;
				target_remove(r, c);
			}
		}
		target_remove(r, rt);
	}
	free(ids);
	pump(r);
}

/* ---- results ---- */

static void record_done(run_t *r, int ok)
{
	uint64_t sec = now_ms(r) / 1000;

	r->done_per_sec[sec % RATE_WINDOW]++;
	r->done_total++;
	if (ok)
		r->ok_total++;
	else
		r->fail_total++;
}

static void target_failed(run_t *r, rtarget_t *rt, const char *why)
{
	rt->failures++;
	snprintf(rt->last_error, sizeof rt->last_error, "%.*s", (int)sizeof rt->last_error - 1, why);
	log_warn("run", "target %s failed (%u in a row): %s", rt->spec.id, rt->failures, why);
	record_done(r, 0);
}

static void discovered(run_t *r, rtarget_t *rt, json_t *children)
{
	target_set_t set = { 0 };
	errlist_t errs;
	size_t i;
	json_t *child;

	errlist_init(&errs);
	set.v = calloc(json_array_size(children) + 1, sizeof *set.v);
	if (!set.v)
		abort();
	json_array_foreach(children, i, child) {
		char where[160];
		json_t *obj = json_deep_copy(child);
		if (!obj)
			abort();
		if (rt->spec.children)
			json_object_update(obj, rt->spec.children);
		snprintf(where, sizeof where, "%s: discovered[%zu]", rt->spec.id, i);
		if (targets_parse_one(obj, where, &set.v[set.n], &errs) == 0)
			set.n++;
		json_decref(obj);
	}
	if (errs.count)
		log_warn("run", "discovery by %s: %u entr%s refused:\n%s", rt->spec.id, errs.count,
		         errs.count == 1 ? "y" : "ies", errlist_text(&errs));
	errlist_release(&errs);
	reconcile(r, &set, rt->spec.id);
	targets_release(&set);
}

/* A raw value came back for rt; turn it into a snapshot (and delta). Returns 0 or fails
 * the target with a reason. raw is borrowed. */
static int publish(run_t *r, rtarget_t *rt, const json_t *raw, const char *url,
                   uint64_t started)
{
	const adapter_t *ad = rt->spec.adapter;
	char why[512] = "";
	json_t *data = NULL, *snap = NULL, *delta = NULL;
	uint32_t duration = (uint32_t)(now_ms(r) - started);

	if (rt->removed)
		return 0;
	if (rt->spec.discover) {
		json_t *children = ad->discover(rt->spec.state, raw, rt->spec.id, why, sizeof why);
		if (!children) {
			target_failed(r, rt, why[0] ? why : "discovery returned nothing");
			return -EINVAL;
		}
		data = json_pack("{s:I, s:[]}", "discovered", (json_int_t)json_array_size(children),
		                 "targets");
		{
			size_t i;
			json_t *c;
			json_array_foreach(children, i, c)
				json_array_append(json_object_get(data, "targets"), json_object_get(c, "id"));
		}
		discovered(r, rt, children);
		json_decref(children);
	} else {
		data = ad->normalise(rt->spec.state, raw, why, sizeof why);
		if (!data) {
			target_failed(r, rt, why[0] ? why : "the page's data did not validate");
			return -EINVAL;
		}
		if (ad->classify) {
			int k = ad->classify(rt->spec.state, data);
			if (k >= 0 && k < SCHED_NCLASSES && (enum sched_class)k != rt->klass) {
				log_info("run", "target %s: %s -> %s", rt->spec.id,
				         sched_class_name(rt->klass), sched_class_name((enum sched_class)k));
				rt->klass = (enum sched_class)k;
				sched_set_class(sched_of(r, rt), rt->spec.id, rt->klass, now_ms(r));
			}
		}
	}
	snap = snapshot_new(rt->spec.id, ad->name, url, rt->seq + 1, unix_ms(), duration,
	                    rt->klass, data);
	if (!snap) {
		target_failed(r, rt, "out of memory building the snapshot");
		return -ENOMEM;
	}
	rt->seq++;
	r->snapshots_total++;
	if (snapshot_delta(rt->last, snap, &delta) != 0)
		delta = NULL;
	if (r->sink) {
		sink_put(r->sink, "snapshot", snap);
		if (delta)
			sink_put(r->sink, "delta", delta);
	}
	if (r->store) {
		store_put_fenced(r->store, snap, delta, rt->fence, rt->resync);
		rt->resync = 0;
	}
	if (delta)
		r->deltas_total++;
	json_decref(delta);
	json_decref(rt->last);
	rt->last = snap;
	rt->last_ok_ms = now_ms(r);
	r->last_success_ms = rt->last_ok_ms;
	rt->failures = 0;
	rt->last_error[0] = '\0';
	record_done(r, 1);
	return 0;
}

/* ---- navigate tasks ---- */

static void task_finish(task_t *t, int ok, const char *why)
{
	run_t *r = t->run;
	rtarget_t *rt = t->rt;

	if (!ok && why)
		target_failed(r, rt, why);
	if (!(r->stopping && !ok && !why))
		run__count_task(r, rt->spec.adapter,
		                ok ? POOL_OK : t->revoked ? t->revoke_reason : POOL_FAILED,
		                now_ms(r) - t->started);
	if (t->lease) {
		pool_release(t->lease, ok ? POOL_OK : POOL_FAILED);
		t->lease = NULL;
	}
	rt->task = NULL;
	r->inflight--;
	if (!rt->removed)
		sched_done(sched_of(r, rt), rt->spec.id, ok, now_ms(r));
	share_run_over(r, rt);
	rt_unref(rt);
	free(t);
	pump(r);
}

/* An operation callback: returns 1 if the task was revoked meanwhile (and finishes it). */
static int op_revoked(task_t *t)
{
	t->op_pending = 0;
	if (!t->revoked)
		return 0;
	task_finish(t, 0, t->why);
	return 1;
}

static void on_eval(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	task_t *t = ud;
	char msg[600];

	if (op_revoked(t))
		return;
	if (status != 0) {
		snprintf(msg, sizeof msg, "extraction failed: %s%s%s", cdp_strerror(status),
		         why && *why ? ": " : "", why ? why : "");
		task_finish(t, 0, msg);
		return;
	}
	task_finish(t, publish(t->run, t->rt, value, t->url, t->started) == 0, NULL);
}

static uint32_t remaining(task_t *t)
{
	uint32_t total = t->rt->spec.timeout_ms ? t->rt->spec.timeout_ms
	                                        : t->run->o->pool.task_timeout_ms;
	uint64_t used = now_ms(t->run) - t->started;
	return used + 100 >= total ? 100 : (uint32_t)(total - used);
}

static void run_extract(task_t *t)
{
	const adapter_t *ad = t->rt->spec.adapter;
	const char *js = t->rt->spec.discover ? ad->discover_js(t->rt->spec.state)
	                                      : ad->extract_js(t->rt->spec.state);
	int rc = cdp_page_evaluate(t->page, js, remaining(t), on_eval, t);

	if (rc != 0) {
		task_finish(t, 0, cdp_strerror(rc));
		return;
	}
	t->op_pending = 1;
}

static void on_waited(cdp_page_t *page, int status, const char *why, void *ud)
{
	task_t *t = ud;
	char msg[600];

	if (op_revoked(t))
		return;
	if (status != 0) {
		snprintf(msg, sizeof msg, "waiting for \"%s\" failed: %s",
		         t->rt->spec.adapter->wait_for(t->rt->spec.state), why && *why ? why
		                                                                   : cdp_strerror(status));
		task_finish(t, 0, msg);
		return;
	}
	run_extract(t);
}

/* Why a navigation counts as failed (an error, or an HTTP status >= 400), into msg;
 * returns 0 when it succeeded. */
static int nav_failure(const cdp_nav_result_t *res, const char *url, char *msg, size_t len)
{
	if (res->status != 0)
		snprintf(msg, len, "loading %.300s failed: %.200s", url,
		         res->message[0] ? res->message : cdp_strerror(res->status));
	else if (res->http_status >= 400)
		snprintf(msg, len, "loading %.300s: HTTP %ld", url, res->http_status);
	else
		return 0;
	return -1;
}

static void on_nav(cdp_page_t *page, const cdp_nav_result_t *res, void *ud)
{
	task_t *t = ud;
	const adapter_t *ad = t->rt->spec.adapter;
	const char *sel;
	char msg[600];

	if (op_revoked(t))
		return;
	if (nav_failure(res, t->url, msg, sizeof msg) != 0) {
		task_finish(t, 0, msg);
		return;
	}
	sel = !t->rt->spec.discover && ad->wait_for ? ad->wait_for(t->rt->spec.state) : NULL;
	if (sel && *sel) {
		int rc = cdp_page_wait_for(t->page, sel, remaining(t), on_waited, t);
		if (rc != 0) {
			task_finish(t, 0, cdp_strerror(rc));
			return;
		}
		t->op_pending = 1;
		return;
	}
	run_extract(t);
}

static void on_granted(pool_lease_t *lease, int status, const char *why, void *ud)
{
	task_t *t = ud;
	int rc;

	if (status != 0) {
		t->lease = NULL; /* freed by the pool */
		task_finish(t, 0, status == -ECANCELED && t->run->stopping ? NULL : why);
		return;
	}
	t->page = pool_lease_page(lease);
	rc = cdp_page_navigate(t->page, t->url, remaining(t), on_nav, t);
	if (rc != 0) {
		task_finish(t, 0, cdp_strerror(rc));
		return;
	}
	t->op_pending = 1;
}

static void on_revoked(pool_lease_t *lease, enum pool_outcome reason, const char *why,
                       void *ud)
{
	task_t *t = ud;

	t->revoked = 1;
	t->revoke_reason = reason;
	snprintf(t->why, sizeof t->why, "%s: %s", pool_outcome_name(reason), why);
	pool_release(lease, reason);
	t->lease = NULL;
	if (!t->op_pending)
		task_finish(t, 0, t->why);
	/* else: the pending operation is cancelled as the pool closes the page, and its
	 * callback finishes the task */
}

static void on_fetched(const fetch_result_t *res, void *ud)
{
	task_t *t = ud;
	json_t *doc;
	json_error_t jerr;
	char msg[600];

	if (res->status != 0) {
		snprintf(msg, sizeof msg, "fetching %.300s failed: %.200s", t->url, res->error);
		task_finish(t, 0, msg);
		return;
	}
	if (res->http_code >= 400) {
		snprintf(msg, sizeof msg, "fetching %.300s: HTTP %ld", t->url, res->http_code);
		task_finish(t, 0, msg);
		return;
	}
	doc = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, &jerr);
	if (!doc) {
		snprintf(msg, sizeof msg, "fetching %.300s: the body is not JSON (line %d column %d: %.160s)",
		         t->url, jerr.line, jerr.column, jerr.text);
		task_finish(t, 0, msg);
		return;
	}
	task_finish(t, publish(t->run, t->rt, doc, t->url, t->started) == 0, NULL);
	json_decref(doc);
}

static void task_start(run_t *r, rtarget_t *rt)
{
	task_t *t = calloc(1, sizeof *t);
	const adapter_t *ad = rt->spec.adapter;

	if (!t)
		abort();
	t->run = r;
	t->rt = rt;
	rt->refs++;
	rt->task = t;
	t->started = now_ms(r);
	r->inflight++;
	if (!ad->build_url || ad->build_url(rt->spec.state, rt->spec.url, t->url, sizeof t->url))
		snprintf(t->url, sizeof t->url, "%.*s", (int)sizeof t->url - 1, rt->spec.url);
	if (ad->needs_browser || rt->spec.discover) {
		t->lease = pool_acquire(r->pool, t->url, rt->spec.timeout_ms, on_granted,
		                        on_revoked, t);
		if (!t->lease)
			task_finish(t, 0, "the pool is closing");
		return;
	}
	if (fetch_get(r->fetch, t->url, remaining(t), 0, on_fetched, t) != 0)
		task_finish(t, 0, "could not start the HTTP request");
}

/* ---- watched pages ---- */

static void watch_free_closed(uv_handle_t *h)
{
	watch_t *w = h->data;
	rt_unref(w->rt);
	free(w);
}

/* Releases the page (if any) and frees w once its timer has closed. */
static void watch_close(watch_t *w)
{
	run_t *r = w->run;
	rtarget_t *rt = w->rt;

	if (w->closing)
		return;
	w->closing = 1;
	w->state = W_CLOSED;
	if (rt->watch == w)
		rt->watch = w->moving_to; /* NULL unless a move is under way */
	if (w->moving_to)
		w->moving_to->replaces = NULL;
	if (w->replaces)
		w->replaces->moving_to = NULL;
	if (w->binding && w->page)
		cdp_conn_off(cdp_page_conn(w->page), w->binding);
	w->binding = NULL;
	if (w->lease) {
		pool_lease_t *l = w->lease;
		w->lease = NULL;
		pool_lease_cancel(l); /* if still waiting: granted_cb(-ECANCELED) */
		if (w->page)
			pool_release(l, POOL_OK);
	}
	w->page = NULL;
	if (w->sched_running && !rt->removed) {
		watch_sched_done(r, rt, 0);
		w->sched_running = 0;
	}
	r->watches--;
	uv_timer_stop(&w->retry);
	uv_close((uv_handle_t *)&w->retry, watch_free_closed);
}

static void watch_reopen_cb(uv_timer_t *tm)
{
	watch_t *w = tm->data;
	rtarget_t *rt = w->rt;
	run_t *r = w->run;
	unsigned fails = w->open_failures;

	if (w->closing || r->stopping || rt->removed)
		return;
	watch_close(w);
	if (!rt->watch) {
		watch_open(r, rt, NULL);
		if (rt->watch)
			rt->watch->open_failures = fails;
	}
}

/* The page is gone or unusable: start again (at once the first time, then backing off). */
static void watch_restart(watch_t *w, const char *why)
{
	run_t *r = w->run;
	uint64_t delay;

	if (w->closing)
		return;
	log_warn("run", "watched page of %s: %s; reopening", w->rt->spec.id, why);
	snprintf(w->rt->last_error, sizeof w->rt->last_error, "%.*s", (int)sizeof w->rt->last_error - 1, why);
	if (w->sched_running) {
		watch_sched_done(r, w->rt, 0);
		w->sched_running = 0;
	}
	if (w->binding && w->page)
		cdp_conn_off(cdp_page_conn(w->page), w->binding);
	w->binding = NULL;
	if (w->lease) {
		pool_lease_t *l = w->lease;
		w->lease = NULL;
		if (w->page)
			pool_release(l, POOL_FAILED);
		else
			pool_lease_cancel(l);
	}
	w->page = NULL;
	w->busy = 0;
	w->state = W_OPENING;
	delay = w->open_failures ? 1000ull << (w->open_failures > 5 ? 5 : w->open_failures - 1)
	                         : 0;
	if (delay > WATCH_RETRY_MAX_MS)
		delay = WATCH_RETRY_MAX_MS;
	w->open_failures++;
	uv_timer_start(&w->retry, watch_reopen_cb, delay, 0);
}

static void watch_ready(watch_t *w)
{
	w->state = W_READY;
	w->loaded_at = now_ms(w->run);
	watch_extract(w);
}

static void w_on_eval(cdp_page_t *page, int status, json_t *value, const char *why, void *ud)
{
	watch_t *w = ud;
	run_t *r = w->run;
	rtarget_t *rt = w->rt;
	int ok;
	char msg[600];

	w->busy = 0;
	if (w->closing || status == -ECANCELED)
		return;
	if (status != 0) {
		snprintf(msg, sizeof msg, "extraction failed: %s%s%s", cdp_strerror(status),
		         why && *why ? ": " : "", why ? why : "");
		if (status == -ETIMEDOUT || status == CDP_ECRASHED || status == CDP_ECONNLOST) {
			target_failed(r, rt, msg);
			watch_restart(w, msg);
			return;
		}
		target_failed(r, rt, msg);
		ok = 0;
	} else {
		ok = publish(r, rt, value, rt->spec.url, w->op_started) == 0;
		run__count_task(r, rt->spec.adapter, ok ? POOL_OK : POOL_FAILED,
		                now_ms(r) - w->op_started);
		if (ok)
			w->open_failures = 0;
	}
	if (w->sched_running) {
		w->sched_running = 0;
		watch_sched_done(r, rt, ok);
	}
	/* a move finishes once the new page has delivered its first result */
	if (w->replaces && ok) {
		watch_t *old = w->replaces;
		w->replaces = NULL;
		old->moving_to = NULL;
		rt->watch = w;
		log_info("run", "watched page of %s moved to the new browser", rt->spec.id);
		watch_close(old);
	}
	if (w->again) {
		w->again = 0;
		watch_extract(w);
	}
	pump(r);
}

static void watch_navigate(watch_t *w);

static void watch_extract(watch_t *w)
{
	const adapter_t *ad = w->rt->spec.adapter;
	int rc;

	if (w->closing || w->state != W_READY)
		return;
	if (w->busy) {
		w->again = 1;
		return;
	}
	if (now_ms(w->run) - w->loaded_at >= w->run->o->watch_reload_ms) {
		watch_navigate(w); /* periodic reload */
		return;
	}
	w->op_started = now_ms(w->run);
	rc = cdp_page_evaluate(w->page, ad->extract_js(w->rt->spec.state), 10000, w_on_eval, w);
	if (rc != 0) {
		watch_restart(w, cdp_strerror(rc));
		return;
	}
	w->busy = 1;
}

static void on_binding(cdp_conn_t *c, const char *sid, const char *method, json_t *params,
                       void *ud)
{
	watch_t *w = ud;
	const char *name = json_string_value(json_object_get(params, "name"));

	if (!name || strcmp(name, PUSH_BINDING) != 0)
		return;
	watch_extract(w);
}

static const char *observer_js(const char *root)
{
	/* Installs one MutationObserver on the root (or body); each batch of mutations calls
	 * the binding once. Installed again after each load. */
	static char js[2048];
	json_t *sel = json_string(root ? root : "");
	char *enc = json_dumps(sel, JSON_ENCODE_ANY);

	snprintf(js, sizeof js,
	         "(() => { const sel = %s; const root = (sel && document.querySelector(sel)) || "
	         "document.body || document.documentElement; if (window.__cdpilotObs) "
	         "window.__cdpilotObs.disconnect(); const o = new MutationObserver(() => { try "
	         "{ window.%s('change'); } catch (e) {} }); o.observe(root, { subtree: true, "
	         "childList: true, characterData: true, attributes: true }); "
	         "window.__cdpilotObs = o; return true; })()",
	         enc ? enc : "\"\"", PUSH_BINDING);
	free(enc);
	json_decref(sel);
	return js;
}

static void w_on_observer(cdp_page_t *page, int status, json_t *value, const char *why,
                          void *ud)
{
	watch_t *w = ud;

	w->busy = 0;
	if (w->closing || status == -ECANCELED)
		return;
	if (status != 0) {
		watch_restart(w, "could not install the change observer");
		return;
	}
	watch_ready(w);
}

static void w_after_load(watch_t *w)
{
	const adapter_t *ad = w->rt->spec.adapter;
	int rc;

	if (!w->rt->spec.push) {
		watch_ready(w);
		return;
	}
	rc = cdp_page_evaluate(w->page, observer_js(ad->watch_root ? ad->watch_root(
	                                                                 w->rt->spec.state)
	                                                           : NULL),
	                       10000, w_on_observer, w);
	if (rc != 0) {
		watch_restart(w, cdp_strerror(rc));
		return;
	}
	w->busy = 1;
}

static void w_on_waited(cdp_page_t *page, int status, const char *why, void *ud)
{
	watch_t *w = ud;
	char msg[600];

	w->busy = 0;
	if (w->closing || status == -ECANCELED)
		return;
	if (status != 0) {
		snprintf(msg, sizeof msg, "waiting for the page failed: %s",
		         why && *why ? why : cdp_strerror(status));
		target_failed(w->run, w->rt, msg);
		watch_restart(w, msg);
		return;
	}
	w_after_load(w);
}

static void w_on_nav(cdp_page_t *page, const cdp_nav_result_t *res, void *ud)
{
	watch_t *w = ud;
	const adapter_t *ad = w->rt->spec.adapter;
	const char *sel;
	char msg[600];
	int rc;

	w->busy = 0;
	if (w->closing || res->status == -ECANCELED)
		return;
	if (nav_failure(res, w->rt->spec.url, msg, sizeof msg) != 0) {
		target_failed(w->run, w->rt, msg);
		watch_restart(w, msg);
		return;
	}
	sel = ad->wait_for ? ad->wait_for(w->rt->spec.state) : NULL;
	if (sel && *sel) {
		rc = cdp_page_wait_for(w->page, sel, 15000, w_on_waited, w);
		if (rc != 0) {
			watch_restart(w, cdp_strerror(rc));
			return;
		}
		w->busy = 1;
		return;
	}
	w_after_load(w);
}

static void watch_navigate(watch_t *w)
{
	int rc;

	w->state = W_LOADING;
	rc = cdp_page_navigate(w->page, w->rt->spec.url, 30000, w_on_nav, w);
	if (rc != 0) {
		watch_restart(w, cdp_strerror(rc));
		return;
	}
	w->busy = 1;
}

/* ud: the method's name. A failure shows up as no pushes; the scheduled refresh still runs. */
static void on_push_setup(cdp_conn_t *c, const cdp_reply_t *rep, void *ud)
{
	if (rep->status)
		log_warn("run", "%s failed: %s", (const char *)ud, rep->error_message);
}

static void w_on_granted(pool_lease_t *lease, int status, const char *why, void *ud)
{
	watch_t *w = ud;
	cdp_conn_t *c;

	if (status != 0) {
		w->lease = NULL;
		if (w->closing || status == -ECANCELED)
			return;
		target_failed(w->run, w->rt, why);
		watch_restart(w, why);
		return;
	}
	w->page = pool_lease_page(lease);
	c = cdp_page_conn(w->page);
	if (w->rt->spec.push) {
		w->binding = cdp_conn_on(c, "Runtime.bindingCalled", cdp_page_session_id(w->page),
		                         on_binding, w);
		/* bindings report through the Runtime domain, which pages do not enable (its
		 * events are a cost every other page would pay for nothing) */
		cdp_conn_send(c, cdp_page_session_id(w->page), "Runtime.enable", json_object(),
		              5000, on_push_setup, (void *)"Runtime.enable", NULL);
		cdp_conn_send(c, cdp_page_session_id(w->page), "Runtime.addBinding",
		              json_pack("{s:s}", "name", PUSH_BINDING), 5000, on_push_setup,
		              (void *)"Runtime.addBinding", NULL);
	}
	watch_navigate(w);
}

static void w_on_revoked(pool_lease_t *lease, enum pool_outcome reason, const char *why,
                         void *ud)
{
	watch_t *w = ud;
	char msg[600];

	snprintf(msg, sizeof msg, "%s: %s", pool_outcome_name(reason), why);
	if (w->binding && w->page)
		cdp_conn_off(cdp_page_conn(w->page), w->binding);
	w->binding = NULL;
	w->lease = NULL;
	w->page = NULL;
	pool_release(lease, reason);
	if (w->closing)
		return;
	w->open_failures = 0; /* a crash or a lost browser: reopen at once */
	watch_restart(w, msg);
}

static void w_on_moved(pool_lease_t *lease, void *ud)
{
	watch_t *w = ud;

	if (w->closing || w->moving_to || w->run->stopping)
		return;
	watch_open(w->run, w->rt, w);
}

static void watch_open(run_t *r, rtarget_t *rt, watch_t *replaces)
{
	watch_t *w;

	if (r->stopping || rt->removed)
		return;
	if (!replaces && r->watches >= r->o->watch_cap) {
		snprintf(rt->last_error, sizeof rt->last_error,
		         "WATCH_CAP (%u) watched pages are open; this target waits for a free one",
		         r->o->watch_cap);
		return;
	}
	w = calloc(1, sizeof *w);
	if (!w)
		abort();
	w->run = r;
	w->rt = rt;
	rt->refs++;
	w->state = W_OPENING;
	uv_timer_init(r->loop, &w->retry);
	w->retry.data = w;
	r->watches++;
	if (replaces) {
		w->replaces = replaces;
		replaces->moving_to = w;
	} else {
		rt->watch = w;
	}
	w->lease = pool_acquire_watch(r->pool, w_on_granted, w_on_revoked, w_on_moved, w);
	if (!w->lease)
		watch_close(w);
}

/* The watch scheduler handed out rt: refresh its page (or open it). */
static void watch_due(run_t *r, rtarget_t *rt)
{
	watch_t *w = rt->watch;

	if (!w) {
		watch_open(r, rt, NULL);
		watch_sched_done(r, rt, 0);
		return;
	}
	if (w->state != W_READY || w->closing) {
		/* still opening: the first extraction will follow the load */
		watch_sched_done(r, rt, 1);
		return;
	}
	w->sched_running = 1;
	watch_extract(w);
}

/* ---- the shared schedule (SCHEDULE=redis, store/share.h) ---- */

typedef struct claim {
	run_t *run;
	rtarget_t *rt; /* ref held */
	int watch;
} claim_t;

/* The run of a target we claimed is over: tell the others when it is due again. */
static void share_run_over(run_t *r, rtarget_t *rt)
{
	sched_info_t si;
	uint64_t now = now_ms(r);

	if (!r->share || !rt->held)
		return;
	rt->held = 0;
	if (rt->removed || sched_get_info(sched_of(r, rt), rt->spec.id, &si) != 0)
		return;
	share_done(r->share, rt->spec.id,
	           si.due_ms > now ? (uint32_t)(si.due_ms - now > 86400000 ? 86400000
	                                                                    : si.due_ms - now)
	                           : 0);
}

static void watch_sched_done(run_t *r, rtarget_t *rt, int ok)
{
	sched_done(r->wsched, rt->spec.id, ok, now_ms(r));
	share_run_over(r, rt);
}

static void on_claimed(void *ud, int status, uint64_t fence, uint32_t retry_ms)
{
	claim_t *c = ud;
	run_t *r = c->run;
	rtarget_t *rt = c->rt;
	int watch = c->watch;
	uint64_t now = now_ms(r);

	free(c);
	if (!watch)
		r->claiming--;
	if (rt->removed || r->stopping) {
		if (!rt->removed)
			sched_defer(sched_of(r, rt), rt->spec.id, now + retry_ms, now);
		rt_unref(rt);
		return;
	}
	if (status < 0 && !rt->owner) {
		/* Redis cannot say who holds it, and it was not ours: wait, so that it is never
		 * scraped by two instances at once */
		sched_defer(sched_of(r, rt), rt->spec.id, now + 1000, now);
	} else if (status == 0) {
		/* another instance holds it (or it is not due there yet) */
		rt->owner = 0;
		sched_defer(sched_of(r, rt), rt->spec.id, now + retry_ms, now);
		if (watch && rt->watch)
			watch_close(rt->watch);
	} else {
		if (status == 1) {
			rt->held = 1;
			rt->owner = 1;
			if (fence != rt->fence && rt->seq > 0)
				rt->resync = 1; /* taken over: Redis may hold another's newer result */
			rt->fence = fence;
		} else {
			/* Redis is away: ours at the last claim, so we keep it (the others take it
			 * only once our heartbeat is lease_ms old, with a fence that outranks our
			 * writes) */
			log_debug("run", "shared schedule unreachable (%s): %s was ours, scraping it",
			          strerror(-status), rt->spec.id);
		}
		if (watch)
			watch_due(r, rt);
		else
			task_start(r, rt);
	}
	rt_unref(rt);
	pump(r);
}

static void claim(run_t *r, rtarget_t *rt, int watch)
{
	claim_t *c = calloc(1, sizeof *c);

	if (!c)
		abort();
	c->run = r;
	c->rt = rt;
	c->watch = watch;
	rt->refs++;
	if (!watch)
		r->claiming++;
	share_claim(r->share, rt->spec.id, on_claimed, c);
}

/* ---- the pump ---- */

static void on_wake(uv_timer_t *t)
{
	pump(t->data);
}

static void schedule_wake(run_t *r)
{
	uint64_t now = now_ms(r);
	/* with every navigate slot busy, a finishing task calls pump(): waking for queued
	 * targets that cannot start would spin */
	uint64_t a = r->inflight + r->claiming < r->o->pool.concurrency_cap
	                     ? sched_next_wakeup(r->nav, now)
	                     : UINT64_MAX;
	uint64_t b = sched_next_wakeup(r->wsched, now);
	uint64_t at = a < b ? a : b;

	if (r->stopping || at == UINT64_MAX) {
		uv_timer_stop(&r->wake);
		return;
	}
	uv_timer_start(&r->wake, on_wake, at > now ? at - now : 0, 0);
}

static void pump(run_t *r)
{
	uint64_t now = now_ms(r);
	const char *id;
	rtarget_t *rt;

	if (r->stopping)
		return;
	while (r->inflight + r->claiming < r->o->pool.concurrency_cap &&
	       (rt = sched_next(r->nav, now, &id)) != NULL) {
		if (r->share)
			claim(r, rt, 0);
		else
			task_start(r, rt);
	}
	while ((rt = sched_next(r->wsched, now, &id)) != NULL) {
		if (r->share)
			claim(r, rt, 1);
		else
			watch_due(r, rt);
	}
	schedule_wake(r);
}

/* ---- status, health, signals ---- */

static uint64_t self_rss_kb(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

static void show_status(run_t *r)
{
	uint64_t now = now_ms(r), sum = 0;
	unsigned fresh = 0;
	size_t n = 0;
	pool_stats_t ps;
	wd_stats_t ws;

	for (rtarget_t *rt = r->targets; rt; rt = rt->next, n++)
		if (rt->last_ok_ms && now - rt->last_ok_ms <= 2ull * class_interval(r, rt))
			fresh++;
	for (int i = 0; i < RATE_WINDOW; i++)
		if ((uint64_t)i != (now / 1000) % RATE_WINDOW)
			sum += r->done_per_sec[i];
	pool_get_stats(r->pool, &ps);
	wd_scan_now(r->wd); /* about a millisecond: the line shows the tree as it is */
	wd_get_stats(r->wd, &ws);
	fprintf(stderr,
	        "\r\033[Kcdpilot: %zu targets, %u%% fresh, %.1f tasks/s, %u leases, %u watched, "
	        "%u procs, rss %.1f MB, %s",
	        n, n ? (unsigned)(fresh * 100 / n) : 100, sum / (double)(RATE_WINDOW - 1),
	        ps.leases_in_use, r->watches, ws.total.procs, self_rss_kb() / 1024.0,
	        health_grade_name(health_grade(r->health)));
	fflush(stderr);
	r->status_shown = 1;
}

static void begin_stop(run_t *r, const char *why);

static size_t wd_browser_pids(void *ud, pid_t *out, size_t max)
{
	run_t *r = ud;
	return r->pool ? pool_browser_pids(r->pool, out, max) : 0;
}

static void wd_on_recycle(void *ud, const char *reason)
{
	run_t *r = ud;

	if (!r->pool || r->stopping)
		return;
	log_warn("run", "watchdog asks for a recycle: %s", reason);
	pool_request_recycle(r->pool, strcmp(reason, "rss_limit") == 0 ? POOL_RECYCLE_RSS_LIMIT
	                                                               : POOL_RECYCLE_PID_THRESHOLD);
}

static void wd_on_pids_pressure(void *ud, int active, const char *why)
{
	run_t *r = ud;

	if (!r->pool)
		return;
	pool_set_paused(r->pool, active);
	health_set_condition(r->health, "pids", active ? HEALTH_DEGRADED : HEALTH_HEALTHY, why,
	                     now_ms(r));
	if (active) {
		log_warn("run", "%s: new leases paused, recycling the browser", why);
		pool_request_recycle(r->pool, POOL_RECYCLE_PIDS_PRESSURE);
	}
}

static void on_tick(uv_timer_t *t)
{
	run_t *r = t->data;
	uint64_t now = now_ms(r);
	uint64_t *ages;
	size_t n = 0;
	unsigned flags;
	sched_stats_t a, b;
	int due;

	/* clear the rate slot that the next second will fill */
	r->done_per_sec[(now / 1000 + 1) % RATE_WINDOW] = 0;
	ages = calloc(r->ntargets + 1, sizeof *ages);
	if (!ages)
		abort();
	for (rtarget_t *rt = r->targets; rt; rt = rt->next)
		ages[n++] = now - (rt->last_ok_ms ? rt->last_ok_ms : rt->added_ms);
	sched_get_stats(r->nav, now, &a);
	sched_get_stats(r->wsched, now, &b);
	due = a.running + b.running + a.queued[0] + a.queued[1] + a.queued[2] + b.queued[0] +
	      b.queued[1] + b.queued[2] > 0;
	flags = health_observe(r->health, now, ages, n, due, r->last_success_ms);
	free(ages);
	if (flags & HEALTH_CHANGED) {
		if (r->status_shown)
			fputc('\n', stderr), r->status_shown = 0;
		log_info("health", "%s%s%s", health_grade_name(health_grade(r->health)),
		         *health_reasons(r->health) ? ": " : "", health_reasons(r->health));
	}
	if (health_grade(r->health) == HEALTH_FAILING) {
		if (!r->failing_since)
			r->failing_since = now;
		if (r->o->exit_on_health_failure && now - r->failing_since >= r->o->health_exit_ms) {
			log_error("health", "failing for %u s with EXIT_ON_HEALTH_FAILURE=1: exiting so "
			                    "the orchestrator restarts cdpilot",
			          r->o->health_exit_ms / 1000);
			r->exit_code = RUN_EXIT_FAILURE;
			begin_stop(r, "health failing");
			return;
		}
	} else {
		r->failing_since = 0;
	}
	if (r->store) {
		store_stats_t ss;
		json_t *h = health_to_json(r->health);
		store_get_stats(r->store, &ss);
		if (ss.degraded) {
			char why[400];
			snprintf(why, sizeof why, "redis %s, %zu snapshot(s) waiting%s%.200s",
			         ss.connected ? "catching up" : "not connected", ss.backlog,
			         ss.last_error[0] ? ": " : "", ss.last_error);
			health_set_condition(r->health, "store", HEALTH_DEGRADED, why, now);
		} else {
			health_set_condition(r->health, "store", HEALTH_HEALTHY, "", now);
		}
		if (h) {
			json_object_set_new(h, "instance_pid", json_integer(getpid()));
			store_set_health(r->store, h);
			json_decref(h);
		}
	}
	if (now - r->last_probe_ms >= 5000) {
		r->last_probe_ms = now;
		run__probe(r);
	}
	if (flags & HEALTH_STALL_BEGAN) {
		log_warn("health", "no successful scrape while work is due: recycling the browser");
		pool_request_recycle(r->pool, POOL_RECYCLE_STALL);
	}
	/* watched targets waiting for a free WATCH_CAP slot */
	for (rtarget_t *rt = r->targets; rt; rt = rt->next)
		if (rt->spec.mode == TARGETS_WATCH && !rt->watch && r->watches < r->o->watch_cap)
			watch_open(r, rt, NULL);
	if (r->status_line)
		show_status(r);
	if (r->o->duration_s > 0 && now - r->started_ms >= (uint64_t)(r->o->duration_s * 1000))
		begin_stop(r, "duration reached");
	pump(r);
}

/* The store's targets hash changed: {id: target object}. Its targets are reconciled like
 * the file's, under the source "@redis" (ids cannot start with '@'). */
static void on_redis_targets(void *ud, const json_t *obj, const char *errors)
{
	run_t *r = ud;
	target_set_t set = { 0 };
	errlist_t errs;
	const char *id;
	json_t *t;

	if (r->stopping)
		return;
	if (errors)
		log_warn("run", "the Redis targets hash has bad entries:\n%s", errors);
	errlist_init(&errs);
	set.v = calloc(json_object_size(obj) + 1, sizeof *set.v);
	if (!set.v)
		abort();
	json_object_foreach((json_t *)obj, id, t) {
		char where[120];
		snprintf(where, sizeof where, "redis targets \"%.64s\"", id);
		if (targets_parse_one(t, where, &set.v[set.n], &errs) == 0)
			set.n++;
	}
	if (errs.count)
		log_warn("run", "%u target(s) from Redis refused:\n%s", errs.count, errlist_text(&errs));
	errlist_release(&errs);
	reconcile(r, &set, "@redis");
	targets_release(&set);
}

static void reload_targets(run_t *r)
{
	target_set_t set = { 0 };
	errlist_t errs;

	errlist_init(&errs);
	if (targets_load_file(r->o->targets_path, &set, &errs) != 0) {
		log_error("run", "SIGHUP: %s has %u error(s); keeping the current targets:\n%s",
		          r->o->targets_path, errs.count, errlist_text(&errs));
		targets_release(&set);
		errlist_release(&errs);
		return;
	}
	errlist_release(&errs);
	log_info("run", "SIGHUP: re-read %s (%zu targets)", r->o->targets_path, set.n);
	reconcile(r, &set, "");
	targets_release(&set);
}

static void close_cb_count(uv_handle_t *h)
{
	run_t *r = h->data;
	r->closing_handles--;
}

static void on_sink_closed(void *ud)
{
	(void)ud;
}

static void on_store_closed(void *ud)
{
	(void)ud;
}

/* The store closes after the shared schedule, which releases our leases through it. */
static void on_share_closed(void *ud)
{
	run_t *r = ud;

	if (r->store)
		store_close(r->store, on_store_closed, r);
	r->store = NULL;
}

static void on_fetch_closed(void *ud)
{
	(void)ud;
}

static void on_pool_closed(pool_t *p, void *ud)
{
	run_t *r = ud;

	r->pool = NULL;
	log_info("run", "browser closed; %llu tasks (%llu ok, %llu failed), %llu deltas",
	         (unsigned long long)r->done_total, (unsigned long long)r->ok_total,
	         (unsigned long long)r->fail_total, (unsigned long long)r->deltas_total);
	if (r->share) {
		share_t *sh = r->share;
		r->share = NULL;
		share_close(sh, on_share_closed, r);
	} else {
		on_share_closed(r);
	}
	if (r->httpd)
		httpd_close(r->httpd);
	if (r->wd)
		wd_close(r->wd, NULL, NULL);
	r->wd = NULL;
	if (r->fetch)
		fetch_ctx_close(r->fetch, on_fetch_closed, r);
	r->fetch = NULL;
	if (r->sink)
		sink_close(r->sink, on_sink_closed, r);
	r->sink = NULL;
	cdp_wsctx_close(r->ws);
	uv_close((uv_handle_t *)&r->wake, close_cb_count);
	uv_close((uv_handle_t *)&r->tick, close_cb_count);
	uv_close((uv_handle_t *)&r->sig_term, close_cb_count);
	uv_close((uv_handle_t *)&r->sig_int, close_cb_count);
	uv_close((uv_handle_t *)&r->sig_hup, close_cb_count);
}

static void begin_stop(run_t *r, const char *why)
{
	if (r->stopping)
		return;
	r->stopping = 1;
	if (r->status_shown)
		fputc('\n', stderr), r->status_shown = 0;
	log_info("run", "stopping (%s): %u task(s) in flight finish first", why, r->inflight);
	uv_timer_stop(&r->wake);
	uv_timer_stop(&r->tick);
	for (rtarget_t *rt = r->targets; rt; rt = rt->next)
		if (rt->watch) {
			if (rt->watch->moving_to)
				watch_close(rt->watch->moving_to);
			if (rt->watch)
				watch_close(rt->watch);
		}
	pool_close(r->pool, on_pool_closed, r);
}

static void on_signal(uv_signal_t *s, int signum)
{
	run_t *r = s->data;

	if (signum == SIGHUP) {
		if (!r->stopping)
			reload_targets(r);
		return;
	}
	if (r->stopping) {
		log_warn("run", "%s again: already stopping", strsignal(signum));
		return;
	}
	begin_stop(r, strsignal(signum));
}

int run_main(uv_loop_t *loop, const run_opts_t *o)
{
	run_t *r = calloc(1, sizeof *r);
	target_set_t set = { 0 };
	errlist_t errs;
	int code = RUN_EXIT_OK, err = 0;

	if (!r)
		abort();
	r->loop = loop;
	r->o = o;
	r->status_line = o->status_line < 0 ? isatty(STDERR_FILENO) : o->status_line;
	errlist_init(&errs);
	if (targets_load_file(o->targets_path, &set, &errs) != 0) {
		fprintf(stderr, "cdpilot run: %s: %u error(s):\n%s\n", o->targets_path, errs.count,
		        errlist_text(&errs));
		errlist_release(&errs);
		targets_release(&set);
		free(r);
		return RUN_EXIT_USAGE;
	}
	errlist_release(&errs);
	if (o->output[0]) {
		r->sink = sink_open(loop, o->output, &err);
		if (!r->sink) {
			fprintf(stderr, "cdpilot run: cannot open --output \"%s\": %s\n", o->output,
			        strerror(-err));
			targets_release(&set);
			free(r);
			return RUN_EXIT_USAGE;
		}
	}
	r->ws = cdp_wsctx_new(loop);
	r->pool = r->ws ? pool_new(loop, r->ws, &o->pool) : NULL;
	r->fetch = fetch_ctx_new(loop);
	if (!r->ws || !r->pool || !r->fetch) {
		log_error("run", "cannot create the browser pool or the HTTP client");
		abort();
	}
	r->nav = sched_new(&o->sched);
	r->wsched = sched_new(&o->sched);
	r->health = health_new(&o->health);
	uv_timer_init(loop, &r->wake);
	uv_timer_init(loop, &r->tick);
	uv_signal_init(loop, &r->sig_term);
	uv_signal_init(loop, &r->sig_int);
	uv_signal_init(loop, &r->sig_hup);
	r->wake.data = r->tick.data = r->sig_term.data = r->sig_int.data = r->sig_hup.data = r;
	r->closing_handles = 5;
	uv_signal_start(&r->sig_term, on_signal, SIGTERM);
	uv_signal_start(&r->sig_int, on_signal, SIGINT);
	uv_signal_start(&r->sig_hup, on_signal, SIGHUP);
	r->started_ms = now_ms(r);

	{
		wd_callbacks_t cbs = { wd_browser_pids, NULL, wd_on_recycle, wd_on_pids_pressure, r };
		int rc = wd_make_subreaper();
		if (rc != 0)
			log_warn("run", "cannot become a child subreaper (%s): orphans of the browser "
			                "would escape the watchdog",
			         strerror(-rc));
		r->wd = wd_new(loop, &o->wd, &cbs);
		wd_start(r->wd);
	}
	if (o->use_store) {
		r->store = store_new(loop, &o->store);
		if (!r->store) {
			fprintf(stderr, "cdpilot run: REDIS_URL or REDIS_PREFIX is not usable (see "
			                "above)\n");
			abort();
		}
		store_watch_targets(r->store, on_redis_targets, r);
		store_start(r->store);
		log_info("run", "publishing to Redis (prefix %s)", o->store.prefix);
		if (o->shared_schedule)
			r->share = share_new(loop, r->store, &o->share);
	}
	r->httpd = httpd_new(loop, &o->http);
	if (!r->httpd || httpd_start(r->httpd) != 0) {
		fprintf(stderr, "cdpilot run: cannot serve the endpoints on METRICS_ADDR=%s (see the "
		                "log above); set METRICS_ADDR to a free address\n",
		        o->http.addr);
		r->exit_code = RUN_EXIT_FAILURE;
		begin_stop(r, "endpoints could not start");
	} else {
		run__routes(r);
		log_info("run", "endpoints on http://%s/ (/metrics /status /healthz /readyz)",
		         o->http.addr);
	}
	log_info("run", "%zu target(s) from %s; CONCURRENCY_CAP %u, WATCH_CAP %u", set.n,
	         o->targets_path, o->pool.concurrency_cap, o->watch_cap);
	if (!r->stopping) {
		pool_start(r->pool);
		reconcile(r, &set, "");
		uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
	}
	targets_release(&set);

	uv_run(loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(r->ws);
	httpd_free(r->httpd);
	code = r->exit_code;

	while (r->targets)
		target_remove(r, r->targets);
	sched_free(r->nav);
	sched_free(r->wsched);
	health_free(r->health);
	free(r);
	return code;
}
