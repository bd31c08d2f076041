/*
 * publish.c: results. A raw value read from a page (or fetched) becomes a snapshot, and a
 * delta when its data changed; both leave the runner through callbacks.publish, the only
 * way results leave it. Failures are recorded on the target; task outcomes are counted
 * through callbacks.task_done.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/snapshot.h"
#include "cdp/cdp_err.h"
#include "runner/runner_priv.h"
#include "util/log.h"

void runner__task_done(runner_t *r, const adapter_t *ad, enum pool_outcome outcome,
                       uint64_t duration_ms)
{
	if (r->cbs.task_done)
		r->cbs.task_done(r->cbs.ud, ad, outcome, duration_ms);
}

enum pool_outcome runner__outcome_of(int status)
{
	switch (status) {
	case -ETIMEDOUT: return POOL_TIMEOUT;
	case CDP_ECONNLOST: return POOL_BROWSER_LOST;
	case CDP_ECRASHED: return POOL_TARGET_CRASHED;
	default: return POOL_FAILED;
	}
}

void runner__record_done(runner_t *r, int ok)
{
	uint64_t sec = now_ms(r) / 1000;

	r->done_per_sec[sec % RUNNER_RATE_WINDOW]++;
	r->done_total++;
	if (ok)
		r->ok_total++;
	else
		r->fail_total++;
}

/* The kind a failure's outcome implies when nothing more is known. */
static const char *kind_of(enum pool_outcome out)
{
	switch (out) {
	case POOL_TIMEOUT: return RUNNER_KIND_TIMEOUT;
	case POOL_TARGET_CRASHED:
	case POOL_BROWSER_LOST: return RUNNER_KIND_BROWSER;
	default: return RUNNER_KIND_FAILED;
	}
}

void runner__target_failed(runner_t *r, rtarget_t *rt, enum pool_outcome out, const char *why)
{
	runner__target_failed_as(r, rt, out, NULL, why);
}

void runner__target_failed_as(runner_t *r, rtarget_t *rt, enum pool_outcome out,
                              const char *kind, const char *why)
{
	if (!rt->failures++)
		rt->failing_since_unix = unix_ms();
	rt->last_outcome = out;
	rt->last_kind = kind ? kind : kind_of(out);
	snprintf(rt->last_error, sizeof rt->last_error, "%.*s", (int)sizeof rt->last_error - 1, why);
	log_warn("run", "target %s failed (%u in a row, outcome %s, kind %s): %s", rt->spec.id,
	         rt->failures, pool_outcome_name(out), rt->last_kind, why);
	runner__record_done(r, 0);
	runner__status_note(r, rt);
}

/* The children a discovering target's raw value names (the first DISCOVER_MAX_CHILDREN),
 * handed to the table, as the snapshot's data ({"discovered": N, "listed": how many the
 * listing had, "targets": [ids]}); NULL with why filled. */
static json_t *discovered_data(runner_t *r, rtarget_t *rt, const json_t *raw, char *why,
                               size_t len)
{
	const adapter_t *ad = rt->spec.adapter;
	json_t *children = ad->discover(rt->spec.state, raw, rt->spec.id, why, len), *data, *c;
	size_t i, listed;

	if (!children)
		return NULL;
	listed = json_array_size(children);
	if (listed > r->o.discover_max) {
		log_warn("run", "discovery by %s: %zu entries, over DISCOVER_MAX_CHILDREN; the first "
		         "%u are kept", rt->spec.id, listed, r->o.discover_max);
		r->discover_capped++;
		while (json_array_size(children) > r->o.discover_max)
			json_array_remove(children, json_array_size(children) - 1);
	}
	data = json_pack("{s:I, s:I, s:[]}", "discovered", (json_int_t)json_array_size(children),
	                 "listed", (json_int_t)listed, "targets");
	json_array_foreach(children, i, c)
		json_array_append(json_object_get(data, "targets"), json_object_get(c, "id"));
	runner__discovered(r, rt, children);
	json_decref(children);
	return data;
}

json_t *runner__normalise(rtarget_t *rt, const json_t *raw, char *why, size_t len)
{
	return rt->spec.adapter->normalise(rt->spec.state, raw, why, len);
}

/* The adapter may move the target to another class on what it read. */
static void classify(runner_t *r, rtarget_t *rt, const json_t *data)
{
	const adapter_t *ad = rt->spec.adapter;
	int k = ad->classify ? ad->classify(rt->spec.state, data) : -1;

	if (k < 0 || k >= SCHED_NCLASSES || (enum sched_class)k == rt->klass)
		return;
	log_info("run", "target %s: %s -> %s", rt->spec.id, sched_class_name(rt->klass),
	         sched_class_name((enum sched_class)k));
	rt->klass = (enum sched_class)k;
	sched_set_class(sched_of(r, rt), rt->spec.id, rt->klass, now_ms(r));
}

/* A successful read of rt: its read (and maybe verified) age restarts, failures end. */
static void read_ok(runner_t *r, rtarget_t *rt, unsigned flags)
{
	rt->last_ok_ms = now_ms(r);
	r->last_success_ms = rt->last_ok_ms;
	if (flags & PUB_VERIFIED) {
		rt->verified_ms = r->last_verified_ms = rt->last_ok_ms;
		rt->verified_unix = unix_ms();
	}
	rt->read_unix = unix_ms();
	rt->failures = 0;
	rt->failing_since_unix = 0;
	rt->last_outcome = POOL_OK;
	rt->last_kind = "";
	rt->last_error[0] = '\0';
	runner__record_done(r, 1);
	runner__status_note(r, rt);
}

/* A raw value came back for rt; turn it into a snapshot (and delta) carrying the three
 * ages. Returns 0 or fails the target with a reason. raw is borrowed. */
int runner__publish(runner_t *r, rtarget_t *rt, const json_t *raw, const char *url,
                    uint64_t started, unsigned flags)
{
	char why[512] = "";
	json_t *data;

	if (rt->removed)
		return 0;
	if (!runner__holds(r, rt))
		return 0; /* SCHEDULE=redis: another instance holds it now (a watched page's push,
		           * or a run that ended after the loss): its holder writes it (ours would be
		           * refused), reconciles its children and keeps its ages */
	data = rt->spec.discover ? discovered_data(r, rt, raw, why, sizeof why)
	                         : runner__normalise(rt, raw, why, sizeof why);
	if (!data) {
		runner__target_failed_as(r, rt, POOL_FAILED, RUNNER_KIND_DATA,
		                      why[0] ? why
		                      : rt->spec.discover ? "discovery returned nothing"
		                                          : "the page's data did not validate");
		return -EINVAL;
	}
	return runner__publish_data(r, rt, data, url, started, flags);
}

int runner__publish_data(runner_t *r, rtarget_t *rt, json_t *data, const char *url,
                         uint64_t started, unsigned flags)
{
	const adapter_t *ad = rt->spec.adapter;
	json_t *snap = NULL, *delta = NULL;
	uint32_t duration = (uint32_t)(now_ms(r) - started);
	int changed;

	if (rt->removed || !runner__holds(r, rt)) {
		json_decref(data);
		return 0;
	}
	if (!rt->spec.discover)
		classify(r, rt, data);
	changed = !rt->last || !json_equal(data, json_object_get(rt->last, "data"));
	if (!changed && (flags & PUB_IF_CHANGED)) {
		json_decref(data);
		r->unchanged_skipped++;
		read_ok(r, rt, flags);
		return 0;
	}
	if (changed) {
		rt->changed_ms = now_ms(r);
		rt->changed_unix = unix_ms();
	}
	if (flags & PUB_VERIFIED)
		rt->verified_unix = unix_ms();
	snap = snapshot_new(rt->spec.id, ad->name, url, rt->seq + 1, unix_ms(), duration,
	                    rt->klass, data);
	if (!snap || snapshot_set_ages(snap, rt->changed_unix, rt->verified_unix) != 0) {
		json_decref(snap);
		runner__target_failed(r, rt, POOL_FAILED, "out of memory building the snapshot");
		return -ENOMEM;
	}
	rt->seq++;
	r->snapshots_total++;
	if (snapshot_delta(rt->last, snap, &delta) != 0)
		delta = NULL;
	r->cbs.publish(r->cbs.ud, snap, delta, rt->fence, rt->resync);
	rt->resync = 0;
	if (delta)
		r->deltas_total++;
	json_decref(delta);
	json_decref(rt->last);
	rt->last = snap;
	read_ok(r, rt, flags);
	return 0;
}
