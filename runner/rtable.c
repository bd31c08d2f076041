/*
 * rtable.c: the targets table: ids, specs, their sources (the file, the Redis hash, a
 * discovering parent), reconcile against a new list, and the children a discovering
 * target reports. Adding a target gives it to its scheduler (navigate, fetch or watch);
 * removing it takes it back, closes its watched page and, on a shared schedule, tells
 * the others through callbacks.forget.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/snapshot.h"
#include "cdp/cdp_err.h"
#include "daemon/targets.h"
#include "runner/runner_priv.h"
#include "util/log.h"
#include "util/list.h"

/* ---- targets table ---- */

/* The id index: a chained hash table with at most one target per bucket on average,
 * doubled as the table grows, so that finding a target never walks the list (a list walk
 * made reconciling N targets O(N^2): minutes for 100,000). */

static size_t id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return (size_t)(h ^ (h >> 32));
}

static void index_grow(runner_t *r)
{
	size_t nb = r->nindex ? r->nindex * 2 : 64;
	rtarget_t **b = calloc(nb, sizeof *b);

	if (!b)
		abort();
	for (size_t i = 0; i < r->nindex; i++) {
		for (rtarget_t *t = r->index[i], *next; t; t = next) {
			size_t k = id_hash(t->spec.id) & (nb - 1);
			next = t->hnext;
			t->hnext = b[k];
			b[k] = t;
		}
	}
	free(r->index);
	r->index = b;
	r->nindex = nb;
}

static void index_add(runner_t *r, rtarget_t *rt)
{
	size_t k;

	if (r->ntargets + 1 > r->nindex)
		index_grow(r);
	k = id_hash(rt->spec.id) & (r->nindex - 1);
	rt->hnext = r->index[k];
	r->index[k] = rt;
}

static void index_remove(runner_t *r, rtarget_t *rt)
{
	rtarget_t **pp;

	if (!r->nindex)
		return;
	for (pp = &r->index[id_hash(rt->spec.id) & (r->nindex - 1)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == rt) {
			*pp = rt->hnext;
			rt->hnext = NULL;
			return;
		}
	}
}

void runner__index_release(runner_t *r)
{
	free(r->index);
	r->index = NULL;
	r->nindex = 0;
}

const json_t *runner_last_snapshot(runner_t *r, const char *id)
{
	rtarget_t *rt = runner__find_target(r, id);
	return rt && !rt->removed ? rt->last : NULL;
}

rtarget_t *runner__find_target(runner_t *r, const char *id)
{
	if (!r->nindex)
		return NULL;
	for (rtarget_t *t = r->index[id_hash(id) & (r->nindex - 1)]; t; t = t->hnext)
		if (strcmp(t->spec.id, id) == 0)
			return t;
	return NULL;
}

void runner__rt_unref(rtarget_t *rt)
{
	if (--rt->refs > 0)
		return;
	json_decref(rt->last);
	json_decref(rt->suspect);
	runner__adapt_free(rt);
	target_spec_release(&rt->spec);
	free(rt);
}

/* Takes ownership of *spec (zeroed on return). */
static void target_add(runner_t *r, target_spec_t *spec, const char *parent)
{
	rtarget_t *rt = calloc(1, sizeof *rt);

	if (!rt)
		abort();
	rt->runner = r;
	rt->spec = *spec;
	memset(spec, 0, sizeof *spec);
	snprintf(rt->parent, sizeof rt->parent, "%.*s", (int)sizeof rt->parent - 1, parent);
	if (targets_host(rt->spec.url, rt->host, sizeof rt->host) != 0)
		rt->host[0] = '\0';
	rt->klass = rt->spec.klass;
	rt->added_ms = now_ms(r);
	runner__adapt_respec(r, rt, &rt->spec, 0);
	rt->refs = 1;
	rt->next = r->targets;
	if (rt->next)
		rt->next->prev = rt;
	r->targets = rt;
	index_add(r, rt);
	r->ntargets++;
	r->targets_gen++;
	sched_add(sched_of(r, rt), rt->spec.id, rt->host, rt->klass, rt->spec.interval_ms, rt,
	          now_ms(r));
	log_info("run", "target %s added (%s, %s, %s%s)", rt->spec.id, rt->spec.adapter->name,
	         sched_class_name(rt->klass), rt->spec.mode == TARGETS_WATCH ? "watch" : "navigate",
	         rt->spec.push ? ", push" : "");
}

void runner__target_remove(runner_t *r, rtarget_t *rt)
{
	DLIST_UNLINK(&r->targets, rt, prev, next);
	index_remove(r, rt);
	r->ntargets--;
	r->targets_gen++;
	rt->removed = 1;
	if (rt->verify_wanted) {
		rt->verify_wanted = 0;
		r->verify_wanted--;
	}
	sched_remove(sched_of(r, rt), rt->spec.id);
	if (r->cbs.forget && !r->stopping)
		r->cbs.forget(r->cbs.ud, rt->spec.id);
	if (rt->watch)
		runner__watch_close(rt->watch);
	if (!r->stopping)
		log_info("run", "target %s removed", rt->spec.id);
	runner__rt_unref(rt);
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
static void target_update(runner_t *r, rtarget_t *rt, target_spec_t *spec)
{
	int mode_changed = spec->mode != rt->spec.mode || spec->push != rt->spec.push ||
	                   strcmp(spec->url, rt->spec.url) != 0;
	int sched_changed = spec_kind(spec) != spec_kind(&rt->spec);
	int keep_class = rt->parent[0] && rt->seq > 0;
	int news = rt->parent[0] && spec->klass != rt->spec.klass && spec->klass != rt->klass;
	sched_t *old = sched_of(r, rt);
	sched_info_t si;
	int running = sched_get_info(old, rt->spec.id, &si) == 0 && si.running;

	if (rt->watch && mode_changed)
		runner__watch_close(rt->watch);
	if (runner__adapt_respec(r, rt, spec, running))
		sched_changed = 1; /* out of the fetch scheduler its endpoint had it in */
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

/* Makes the targets with this parent ("" = the file) exactly `set`; set's specs are taken.
 * Linear in the table and the set: each id is looked up in the index, and the targets to
 * remove are those of this parent the pass did not mark, plus their children. */
static void reconcile(runner_t *r, target_set_t *set, const char *parent)
{
	uint64_t pass = ++r->reconcile_pass;

	for (size_t i = 0; i < set->n; i++) {
		target_spec_t *s = &set->v[i];
		rtarget_t *rt = runner__find_target(r, s->id);
		if (!rt) {
			target_add(r, s, parent);
			r->targets->mark = pass; /* target_add puts it first */
		} else if (strcmp(rt->parent, parent) != 0) {
			log_warn("run", "target %s is already defined (%s); the one from %s is ignored",
			         s->id, rt->parent[0] ? rt->parent : "the targets file",
			         parent[0] ? parent : "the targets file");
		} else {
			rt->mark = pass;
			if (!json_equal(rt->spec.json, s->json))
				target_update(r, rt, s);
		}
	}
	/* the targets of this parent not in the set, then the children of those */
	for (rtarget_t *rt = r->targets; rt; rt = rt->next)
		rt->going = strcmp(rt->parent, parent) == 0 && rt->mark != pass;
	for (rtarget_t *c = r->targets; c; c = c->next) {
		rtarget_t *p = c->parent[0] && c->parent[0] != '@'
		                       ? runner__find_target(r, c->parent)
		                       : NULL;
		if (p && p->going == 1)
			c->going = 2; /* children of a removed parent go with it */
	}
	/* children first, then their parents, as they were removed before */
	for (int round = 2; round >= 1; round--) {
		for (rtarget_t *rt = r->targets, *next; rt; rt = next) {
			next = rt->next;
			if (rt->going == round)
				runner__target_remove(r, rt);
		}
	}
}

void runner__discovered(runner_t *r, rtarget_t *rt, json_t *children)
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
		if (rt->spec.children) {
			/* the listing's class for this entry wins over "children"'s, which is
			 * the default for entries the listing gave none */
			json_t *klass = json_incref(json_object_get(obj, "class"));
			json_object_update(obj, rt->spec.children);
			if (klass)
				json_object_set(obj, "class", klass);
			json_decref(klass);
		}
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

void runner_reconcile(runner_t *r, target_set_t *set, const char *source)
{
	if (r->closing)
		return;
	reconcile(r, set, source);
	runner__kick(r);
}
