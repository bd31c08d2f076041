/*
 * runner.c: the runner's lifetime (new, start, tick, stop, close), its figures and its
 * view of each target for /status and /metrics. The work itself is in rtable.c (targets),
 * task.c (navigate and fetch), watch.c (watched pages), publish.c (results), claim.c (the
 * shared schedule) and pump.c (the pump).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runner/runner_priv.h"
#include "util/log.h"

void runner_opts_init(runner_opts_t *o)
{
	memset(o, 0, sizeof *o);
	sched_opts_init(&o->sched);
	o->fetch_cap = 16;
	o->failing_percent = 50;
	o->task_timeout_ms = 15000;
	o->watch_cap = 64;
	o->watch_reload_ms = 600000;
	o->watch_frames = 1;
	o->verify_max_ms = 60000;
	o->watch_navigate_ms = 600000;
	o->discover_max = 500;
}

runner_t *runner_new(uv_loop_t *loop, const runner_opts_t *opts, pool_t *pool,
                     fetch_ctx_t *fetch, const runner_callbacks_t *cbs)
{
	runner_t *r = calloc(1, sizeof *r);

	if (!r || !cbs || !cbs->publish)
		goto fail;
	r->loop = loop;
	r->o = *opts;
	r->cbs = *cbs;
	r->pool = pool;
	r->fetch = fetch;
	for (int k = 0; k < RK_N; k++)
		if (!(r->sched[k] = sched_new(&r->o.sched)))
			goto fail;
	uv_timer_init(loop, &r->wake);
	r->wake.data = r;
	r->handles = 1;
	return r;
fail:
	if (r)
		for (int k = 0; k < RK_N; k++)
			sched_free(r->sched[k]);
	free(r);
	return NULL;
}

int runner_start(runner_t *r)
{
	if (r->started || r->stopping)
		return -EINVAL;
	r->started = 1;
	runner__kick(r);
	return 0;
}

void runner_tick(runner_t *r)
{
	uint64_t now = now_ms(r);

	if (r->stopping)
		return;
	/* clear the rate slot that the next second will fill */
	r->done_per_sec[(now / 1000 + 1) % RUNNER_RATE_WINDOW] = 0;
	/* watched targets waiting for a free WATCH_CAP slot */
	for (rtarget_t *rt = r->targets; rt; rt = rt->next) {
		if (rt->spec.mode != TARGETS_WATCH || rt->watch || r->watches >= r->o.watch_cap)
			continue;
		if (rt->navigate_until) {
			if (now < rt->navigate_until)
				continue;
			/* navigate mode is over: watch again, one freeze from navigate mode */
			rt->navigate_until = 0;
			rt->freezes = 2;
			log_info("run", "target %s: watching its page again", rt->spec.id);
		}
		runner__watch_open(r, rt, NULL);
	}
	runner__pump(r);
}

void runner_stop(runner_t *r)
{
	if (r->stopping)
		return;
	r->stopping = 1;
	uv_timer_stop(&r->wake);
	for (rtarget_t *rt = r->targets; rt; rt = rt->next)
		if (rt->watch) {
			if (rt->watch->moving_to)
				runner__watch_close(rt->watch->moving_to);
			if (rt->watch)
				runner__watch_close(rt->watch);
		}
}

int runner_stopping(const runner_t *r)
{
	return r->stopping;
}

/* Frees the runner once its handles have closed and no task or claim is left (a fetch
 * cancelled by the fetch context's close, a claim answered by the shared schedule's). */
void runner__maybe_finish_close(runner_t *r)
{
	void (*cb)(void *) = r->close_cb;
	void *ud = r->close_ud;

	if (!r->closing || r->handles > 0)
		return;
	for (int k = 0; k < RK_N; k++)
		if (r->running[k] || r->claiming[k])
			return;
	for (int k = 0; k < RK_N; k++)
		sched_free(r->sched[k]);
	runner__index_release(r);
	free(r);
	if (cb)
		cb(ud);
}

void runner__handle_closed(runner_t *r)
{
	r->handles--;
	runner__maybe_finish_close(r);
}

static void on_wake_closed(uv_handle_t *h)
{
	runner__handle_closed(h->data);
}

void runner_close(runner_t *r, void (*cb)(void *ud), void *ud)
{
	if (r->closing)
		return;
	runner_stop(r);
	r->closing = 1;
	r->close_cb = cb;
	r->close_ud = ud;
	while (r->targets)
		runner__target_remove(r, r->targets);
	uv_close((uv_handle_t *)&r->wake, on_wake_closed);
}

void runner_get_stats(runner_t *r, runner_stats_t *out)
{
	uint64_t now = now_ms(r), sum = 0;

	memset(out, 0, sizeof *out);
	out->targets = r->ntargets;
	out->inflight = r->running[RK_NAV] + r->running[RK_FETCH];
	out->browser_tasks = r->running[RK_NAV];
	out->claiming = r->claiming[RK_NAV] + r->claiming[RK_FETCH] + r->claiming[RK_WATCH];
	out->watches = r->watches;
	out->failing_inflight = r->failing[RK_NAV] + r->failing[RK_FETCH];
	out->done_total = r->done_total;
	out->ok_total = r->ok_total;
	out->fail_total = r->fail_total;
	out->snapshots_total = r->snapshots_total;
	out->deltas_total = r->deltas_total;
	out->verify_agreed = r->verify_total[0];
	out->verify_frozen = r->verify_total[1];
	out->verify_failed = r->verify_total[2];
	out->frozen_total = r->frozen_total;
	out->adapt_reads_endpoint = r->adapt_reads[0];
	out->adapt_reads_page = r->adapt_reads[1];
	out->adapt_learned = r->adapt_learned;
	out->adapt_learn_failed = r->adapt_learn_failed;
	out->adapt_dropped = r->adapt_dropped;
	out->adapt_checks_agreed = r->adapt_checks[0];
	out->adapt_checks_differed = r->adapt_checks[1];
	out->adapt_checks_failed = r->adapt_checks[2];
	for (rtarget_t *rt = r->targets; rt; rt = rt->next)
		out->adapt_endpoints += rt->adapt && rt->adapt->in_fetch;
	out->unchanged_skipped = r->unchanged_skipped;
	out->discover_capped = r->discover_capped;
	out->verifying = r->verifying;
	out->last_success_ms = r->last_success_ms;
	out->last_verified_ms = r->last_verified_ms;
	for (int i = 0; i < RUNNER_RATE_WINDOW; i++)
		if ((uint64_t)i != (now / 1000) % RUNNER_RATE_WINDOW)
			sum += r->done_per_sec[i];
	out->tasks_per_s = sum / (double)(RUNNER_RATE_WINDOW - 1);
	{
		sched_stats_t f;
		sched_get_stats(r->sched[RK_NAV], now, &out->nav);
		sched_get_stats(r->sched[RK_FETCH], now, &f);
		sched_get_stats(r->sched[RK_WATCH], now, &out->watch);
		/* navigate and fetch tasks are one "navigate" schedule to the outside */
		out->nav.running += f.running;
		for (int c = 0; c < SCHED_NCLASSES; c++) {
			out->nav.queued[c] += f.queued[c];
			out->nav.targets[c] += f.targets[c];
			out->nav.drops[c] += f.drops[c];
		}
		out->nav.retries += f.retries;
		out->nav.backoffs += f.backoffs;
		out->nav.failing += f.failing;
		out->nav.backing_off += f.backing_off;
	}
}

uint64_t runner_view_age(const runner_target_view_t *v, enum runner_age which, uint64_t now)
{
	uint64_t at = which == RUNNER_AGE_READ      ? v->last_ok_ms
	              : which == RUNNER_AGE_CHANGED ? v->changed_ms
	                                            : v->verified_ms;

	at = at ? at : v->added_ms;
	return now > at ? now - at : 0;
}

uint64_t runner_view_age_held(const runner_target_view_t *v, enum runner_age which,
                              uint64_t now)
{
	uint64_t age = runner_view_age(v, which, now);

	if (v->held_since_ms && now > v->held_since_ms && now - v->held_since_ms < age)
		age = now - v->held_since_ms;
	return age;
}

const char *runner_age_name(enum runner_age which)
{
	static const char *const names[RUNNER_NAGES] = { "verified", "read", "changed" };

	return (unsigned)which < RUNNER_NAGES ? names[which] : "?";
}

/* The state a target is in, as /status and Redis say it. */
static const char *target_state(const rtarget_t *rt, const runner_target_view_t *v)
{
	if (rt->frozen_ms)
		return "frozen";
	if (v->backing_off)
		return "backing_off";
	if (rt->failures)
		return "failing";
	return rt->seq ? "ok" : "pending";
}

void runner__view(runner_t *r, rtarget_t *rt, runner_target_view_t *out)
{
	uint64_t now = now_ms(r);
	sched_info_t si;
	runner_target_view_t v = {
		.id = rt->spec.id,
		.adapter = rt->spec.adapter->name,
		.url = rt->spec.url,
		.source = rt->parent,
		.last_error = rt->last_error,
		.last_error_kind = rt->last_kind ? rt->last_kind : "",
		.last_outcome = rt->last_outcome,
		.klass = rt->klass,
		.watch = rt->spec.mode == TARGETS_WATCH,
		.seq = rt->seq,
		.added_ms = rt->added_ms,
		.last_ok_ms = rt->last_ok_ms,
		.changed_ms = rt->changed_ms,
		.verified_ms = rt->verified_ms,
		.held_since_ms = rt->owner ? rt->held_since_ms : 0,
		.read_unix = rt->read_unix,
		.changed_unix = rt->changed_unix,
		.verified_unix = rt->verified_unix,
		.failing_since_unix = rt->failing_since_unix,
		.failures = rt->failures,
		.interval_ms = class_interval(r, rt),
	};

	v.fresh = rt->verified_ms && now - rt->verified_ms <= 2ull * v.interval_ms;
	v.held = runner__holds(r, rt);
	if (!rt->removed && sched_get_info(sched_of(r, rt), rt->spec.id, &si) == 0) {
		v.backing_off = si.failed_runs >= 2;
		v.due_ms = si.running || si.queued || si.due_ms < now ? now : si.due_ms;
	}
	v.state = target_state(rt, &v);
	v.read_mode = rt->spec.mode != TARGETS_WATCH || runner__watch_navigates(r, rt)
	                      ? "navigate"
	                      : "watch";
	if (rt->adapt && rt->spec.adaptive) {
		const adapt_t *a = rt->adapt;
		uint32_t period = r->o.adapt_verify_ms ? r->o.adapt_verify_ms : 60000;
		v.adaptive_state = a->state;
		v.adaptive_endpoint = a->map ? a->url : "";
		v.adaptive_reason = a->reason;
		v.adaptive_map = a->map;
		v.adaptive_learned_unix = a->map ? a->learned_unix : 0;
		v.adaptive_checked_unix = a->map ? a->checked_unix : 0;
		v.adaptive_overdue = a->map && (a->suspect || now - a->checked_ms >
		                                                      (uint64_t)period * 3 / 2);
		if (a->in_fetch)
			v.read_mode = "endpoint";
	}
	v.watch_note = rt->spec.mode != TARGETS_WATCH ? ""
	               : now < rt->navigate_until   ? "its watched page kept freezing"
	               : rt->overflow && !rt->watch ? "over WATCH_CAP"
	                                            : "";
	*out = v;
}

void runner_foreach_target(runner_t *r, void (*fn)(const runner_target_view_t *v, void *ud),
                           void *ud)
{
	runner_target_view_t v;

	for (rtarget_t *rt = r->targets; rt; rt = rt->next) {
		runner__view(r, rt, &v);
		fn(&v, ud);
	}
}

unsigned runner_browser_targets(const runner_t *r)
{
	unsigned n = 0;

	for (const rtarget_t *rt = r->targets; rt; rt = rt->next)
		n += !rt->removed && runner__holds((runner_t *)r, rt) && spec_kind(&rt->spec) != RK_FETCH;
	return n;
}

/* The event a change of state is: NULL (none), "failing", "backing_off", "frozen",
 * "recovered". */
static const char *state_event(const char *from, const char *to)
{
	if (!from || !strcmp(from, to))
		return NULL;
	if (!strcmp(to, "ok"))
		return strcmp(from, "pending") ? "recovered" : NULL;
	return strcmp(to, "pending") ? to : NULL;
}

void runner__status_note(runner_t *r, rtarget_t *rt)
{
	runner_target_view_t v;
	const char *event;

	if (rt->removed || !r->cbs.status)
		return;
	runner__view(r, rt, &v);
	event = state_event(rt->state ? rt->state : "pending", v.state);
	rt->state = v.state;
	r->cbs.status(r->cbs.ud, &v, event);
}
