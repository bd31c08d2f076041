/*
 * adapt.c: adaptive targets ("adaptive": true, docs/targets.md). Many live pages get their
 * data from a JSON endpoint they poll; such a target learns it and reads it with libcurl,
 * without a renderer, checking it against the page now and then:
 *
 *   learning  after a successful page read (task.c), the page's fetch/XHR URLs (the
 *             Resource Timing entries) are GET with libcurl, and the body that carries
 *             every field of the data just published (adapters/epmap.h) is the endpoint;
 *             several: the smallest body. None: "not_learned", the reason in /status,
 *             tried again after a backoff (1, 2, 4 ... 60 minutes). The target moves to
 *             the fetch scheduler (FETCH_CONCURRENCY; no lease, no renderer).
 *   reading   each run GETs the endpoint and builds the data through the mapping; a body
 *             without a mapped field, or three failed reads in a row, drop the endpoint.
 *   checking  every ADAPTIVE_VERIFY_SECONDS the page is read (a navigate task in a free
 *             slot, like a watched page's verification, least recently checked first)
 *             and the endpoint right after; the same data: agreed (published, verified).
 *             Different data: checked again at once (the source may have changed between
 *             the two reads); different again: the endpoint is dropped (the page's read
 *             published, the reason logged and in /status, a metric), back to the page,
 *             learned again after the backoff.
 * Truthful freshness: an endpoint read counts as verified only while the last check (or
 * the learning) agreed within 1.5 x ADAPTIVE_VERIFY_SECONDS and no check differs; when the
 * checks fall behind (the browser is short of slots) the verified age grows and health
 * grades it, never silently.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/epmap.h"
#include "daemon/targets.h"
#include "runner/runner_priv.h"
#include "util/log.h"

#define ADAPT_CANDIDATES_MAX 8      /* fetch/XHR URLs of a page tried */
#define ADAPT_BODY_MAX (1u << 20)   /* an endpoint's body at most */
#define ADAPT_LEARN_FETCH_MS 5000u  /* a candidate's GET (a long-poll that holds is skipped) */
#define ADAPT_RETRY_BASE_MS 60000u  /* backoff of learning: 1 min, doubling ... */
#define ADAPT_RETRY_MAX_MS 3600000u /* ... up to an hour */
#define ADAPT_READ_FAILURES_MAX 3   /* endpoint reads failed in a row that drop it */

/* The page's fetch/XHR requests to http(s) URLs, first ones first, each once. */
const char runner__adapt_urls_js[] =
        "(() => { const seen = new Set(), out = [];\n"
        "  for (const e of performance.getEntriesByType('resource')) {\n"
        "    if ((e.initiatorType === 'fetch' || e.initiatorType === 'xmlhttprequest') &&\n"
        "        /^https?:/.test(e.name) && !seen.has(e.name)) {\n"
        "      seen.add(e.name); out.push(e.name);\n"
        "      if (out.length >= 8) break;\n"
        "    }\n"
        "  }\n"
        "  return out; })()";

static uint32_t verify_ms(runner_t *r)
{
	return r->o.adapt_verify_ms ? r->o.adapt_verify_ms : 60000;
}

static void forget_endpoint(adapt_t *a)
{
	json_decref(a->map);
	a->map = NULL;
	a->url[0] = '\0';
	a->suspect = 0;
	a->read_failures = 0;
}

void runner__adapt_free(rtarget_t *rt)
{
	if (!rt->adapt)
		return;
	forget_endpoint(rt->adapt);
	free(rt->adapt);
	rt->adapt = NULL;
}

/* 1 if two specs read the same page the same way: they differ at most in when they are
 * read (class, interval, timeout), so a learned endpoint still stands for the page. */
static int same_reading(const target_spec_t *a, const target_spec_t *b)
{
	static const char *const when[] = { "class", "interval_seconds", "timeout_seconds" };
	json_t *x = json_copy(a->json), *y = json_copy(b->json);
	int same;

	if (!x || !y)
		abort();
	for (size_t i = 0; i < sizeof when / sizeof when[0]; i++) {
		json_object_del(x, when[i]);
		json_object_del(y, when[i]);
	}
	same = json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return same;
}

int runner__adapt_respec(runner_t *r, rtarget_t *rt, const target_spec_t *spec, int running)
{
	adapt_t *a = rt->adapt;
	int move = 0;

	(void)r;
	if (a && spec != &rt->spec && rt->spec.adaptive && spec->adaptive && !a->reset &&
	    same_reading(&rt->spec, spec))
		return 0; /* only its schedule changed: the endpoint, learning or check go on */
	if (a && a->in_fetch) {
		if (running && spec_kind(spec) == RK_NAV) {
			a->reset = 1; /* its run ends in the fetch scheduler: settled then */
			a->gen++;     /* a check running now was started for the old spec */
			return 0;
		}
		a->in_fetch = 0;
		move = 1;
	}
	if (a) {
		a->gen++; /* what runs now was started for the old spec */
		forget_endpoint(a); /* kept while a learning or check of it may run */
	}
	if (!spec->adaptive)
		return move;
	if (!a) {
		if (!(a = calloc(1, sizeof *a)))
			abort();
		rt->adapt = a;
	}
	a->state = "learning";
	a->reason[0] = '\0';
	a->attempts = 0;
	a->retry_ms = 0;
	return move;
}

void runner__adapt_settle(runner_t *r, rtarget_t *rt)
{
	adapt_t *a = rt->adapt;
	sched_info_t si;
	int want;

	if (!a || rt->removed || r->closing)
		return;
	if (sched_get_info(sched_of(r, rt), rt->spec.id, &si) == 0 && si.running)
		return; /* a run is handed out (a task, or a claim in flight): after it */
	if (a->reset) {
		a->reset = 0;
		forget_endpoint(a);
		a->state = "learning";
	}
	want = a->map != NULL;
	if (want != a->in_fetch) {
		sched_remove(sched_of(r, rt), rt->spec.id);
		a->in_fetch = want;
		sched_add(sched_of(r, rt), rt->spec.id, rt->host, rt->klass, rt->spec.interval_ms,
		          rt, now_ms(r));
		runner__kick(r);
	}
}

static uint64_t backoff_ms(unsigned attempts)
{
	uint64_t ms = ADAPT_RETRY_BASE_MS;

	for (unsigned i = 1; i < attempts && ms < ADAPT_RETRY_MAX_MS; i++)
		ms *= 2;
	return ms < ADAPT_RETRY_MAX_MS ? ms : ADAPT_RETRY_MAX_MS;
}

/* The endpoint goes: back to page reads, learned again after the backoff. */
static void drop(runner_t *r, rtarget_t *rt, const char *why)
{
	adapt_t *a = rt->adapt;

	r->adapt_dropped++;
	a->attempts++;
	a->retry_ms = now_ms(r) + backoff_ms(a->attempts);
	log_warn("run",
	         "target %s: endpoint %s dropped, reading the page again (learned again "
	         "in %u s): %s",
	         rt->spec.id, a->url, (unsigned)(backoff_ms(a->attempts) / 1000), why);
	forget_endpoint(a);
	a->state = "dropped";
	snprintf(a->reason, sizeof a->reason, "%.*s", (int)sizeof a->reason - 1, why);
	runner__adapt_settle(r, rt);
}

/* ---- learning ---- */

typedef struct learn {
	runner_t *r;
	rtarget_t *rt; /* ref held */
	json_t *data;  /* the page's data to find */
	unsigned pending, tried;
	json_t *best; /* the mapping of the smallest fitting body */
	char best_url[2048];
	size_t best_len;
	char why[512];   /* the first reason a candidate did not fit */
	int why_is_data; /* why is about the data (preferred over a failed GET) */
	unsigned gen;    /* adapt_t.gen of the page read it learns from */
} learn_t;

int runner__adapt_wants_learn(runner_t *r, rtarget_t *rt, unsigned gen)
{
	adapt_t *a = rt->adapt;

	return a && a->gen == gen && rt->spec.adaptive && !a->map && !a->learning && !a->reset && !rt->removed &&
	       !r->stopping && now_ms(r) >= a->retry_ms && rt->last;
}

static void learn_note(learn_t *l, const char *url, const char *why, int about_data)
{
	if (l->why[0] && (l->why_is_data || !about_data))
		return;
	snprintf(l->why, sizeof l->why, "%.200s: %.290s", url, why);
	l->why_is_data = about_data;
}

static void learn_finish(learn_t *l)
{
	runner_t *r = l->r;
	rtarget_t *rt = l->rt;
	adapt_t *a = rt->adapt;

	if (a && a->learning && !rt->removed && !r->stopping) {
		a->learning = 0;
		if (!rt->spec.adaptive || l->gen != a->gen) {
			/* its spec changed meanwhile: nothing learned (the next page read
			 * learns for the new one) */
		} else if (l->best && !a->reset) {
			a->map = l->best;
			l->best = NULL;
			snprintf(a->url, sizeof a->url, "%s", l->best_url);
			a->body_len = l->best_len;
			a->state = "learned";
			a->reason[0] = '\0';
			a->attempts = 0;
			a->learned_unix = a->checked_unix = unix_ms();
			a->checked_ms = now_ms(r);
			a->check_due_ms = a->checked_ms + verify_ms(r);
			r->adapt_learned++;
			log_info("run",
			         "target %s: learned its endpoint %s (%zu fields, %zu bytes): "
			         "read without the browser from now on",
			         rt->spec.id, a->url,
			         json_array_size(json_object_get(a->map, "fields")), a->body_len);
		} else {
			a->attempts++;
			a->retry_ms = now_ms(r) + backoff_ms(a->attempts);
			a->state = "not_learned";
			if (!l->tried)
				snprintf(
				        a->reason, sizeof a->reason,
				        "the page made no fetch or XMLHttpRequest request to an http(s) URL");
			else
				snprintf(a->reason, sizeof a->reason,
				         "none of %u JSON request(s) carries "
				         "every field: %.450s",
				         l->tried, l->why);
			r->adapt_learn_failed++;
			log_info("run", "target %s: no endpoint learned (again in %u s): %s",
			         rt->spec.id, (unsigned)(backoff_ms(a->attempts) / 1000),
			         a->reason);
		}
		runner__status_note(r, rt);
		runner__adapt_settle(r, rt);
	} else if (a) {
		a->learning = 0;
	}
	json_decref(l->best);
	json_decref(l->data);
	runner__rt_unref(rt);
	free(l);
}

typedef struct cand {
	learn_t *l;
	char url[2048];
} cand_t;

static void on_candidate(const fetch_result_t *res, void *ud)
{
	cand_t *c = ud;
	learn_t *l = c->l;
	json_t *body = NULL, *map = NULL;
	json_error_t jerr;
	char why[512];

	if (res->status != 0) {
		learn_note(l, c->url, res->error, 0);
	} else if (res->http_code < 200 || res->http_code > 299) {
		snprintf(why, sizeof why, "HTTP %ld", res->http_code);
		learn_note(l, c->url, why, 0);
	} else if (!(body = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, &jerr))) {
		learn_note(l, c->url, "not JSON", 0);
	} else if (epmap_learn(l->data, body, &map, why, sizeof why) != 0) {
		learn_note(l, c->url, why, 1);
	} else if (!l->best || res->body_len < l->best_len) {
		json_decref(l->best);
		l->best = map;
		map = NULL;
		snprintf(l->best_url, sizeof l->best_url, "%s", c->url);
		l->best_len = res->body_len;
	}
	json_decref(map);
	json_decref(body);
	free(c);
	if (--l->pending == 0)
		learn_finish(l);
}

void runner__adapt_learn(runner_t *r, rtarget_t *rt, const json_t *urls, unsigned gen)
{
	learn_t *l = calloc(1, sizeof *l);
	const json_t *u;
	size_t i;

	if (!l)
		abort();
	l->r = r;
	l->rt = rt;
	l->gen = gen;
	rt->refs++;
	rt->adapt->learning = 1;
	l->data = json_deep_copy(json_object_get(rt->last, "data"));
	l->pending = 1; /* held until every candidate has started */
	json_array_foreach(urls, i, u)
	{
		cand_t *c;
		char why[256];
		if (!json_is_string(u) || l->tried >= ADAPT_CANDIDATES_MAX ||
		    json_string_length(u) >= sizeof c->url)
			continue;
		/* the page names the URLs: TARGET_ALLOW and TARGET_DENY judge each as a target */
		if (netpolicy_check_url(targets_policy(), json_string_value(u), why, sizeof why) != 0) {
			learn_note(l, json_string_value(u), why, 0);
			continue;
		}
		if (!(c = calloc(1, sizeof *c)))
			abort();
		c->l = l;
		snprintf(c->url, sizeof c->url, "%s", json_string_value(u));
		l->pending++;
		l->tried++;
		if (fetch_get(r->fetch, c->url, ADAPT_LEARN_FETCH_MS, ADAPT_BODY_MAX, on_candidate,
		              c) != 0) {
			learn_note(l, c->url, "could not start the HTTP request", 0);
			l->pending--;
			free(c);
		}
	}
	if (--l->pending == 0)
		learn_finish(l);
}

/* ---- reading ---- */

/* 1 if an endpoint read now may count as verified (see the top of the file). */
static int endpoint_verified(runner_t *r, const adapt_t *a)
{
	return !a->suspect && a->checked_ms &&
	       now_ms(r) - a->checked_ms <= (uint64_t)verify_ms(r) * 3 / 2;
}

enum pool_outcome runner__adapt_publish(runner_t *r, rtarget_t *rt, const json_t *body,
                                        const char *url, uint64_t started)
{
	adapt_t *a = rt->adapt;
	json_t *data = NULL;
	char why[512], msg[700];

	if (!a || !a->map) /* dropped while it ran: not published, the page is read next */
		return POOL_FAILED;
	if (epmap_read(a->map, body, &data, why, sizeof why) != 0) {
		snprintf(msg, sizeof msg, "the endpoint's body changed: %s", why);
		runner__target_failed_as(r, rt, POOL_FAILED, RUNNER_KIND_DATA, msg);
		drop(r, rt, msg);
		return POOL_FAILED;
	}
	a->read_failures = 0;
	r->adapt_reads[0]++;
	return runner__publish_data(r, rt, data, url, started,
	                            endpoint_verified(r, a) ? PUB_VERIFIED : 0) == 0
	               ? POOL_OK
	               : POOL_FAILED;
}

void runner__adapt_read_failed(runner_t *r, rtarget_t *rt, const char *why)
{
	adapt_t *a = rt->adapt;
	char msg[700];

	if (!a || !a->map || ++a->read_failures < ADAPT_READ_FAILURES_MAX)
		return;
	snprintf(msg, sizeof msg, "%u reads of the endpoint failed in a row, the last: %.500s",
	         a->read_failures, why);
	drop(r, rt, msg);
}

void runner__adapt_page_read(runner_t *r, rtarget_t *rt)
{
	(void)rt;
	r->adapt_reads[1]++;
}

/* ---- checking ---- */

typedef struct check {
	runner_t *r;
	rtarget_t *rt; /* ref held */
	json_t *page;  /* the page's data */
	uint64_t started;
	unsigned gen;  /* adapt_t.gen when the check's page read started */
} check_t;

static void check_end(runner_t *r, rtarget_t *rt)
{
	rt->adapt->checking = 0;
	r->adapt_checking--;
	r->adapt_next_ms = 0;
	if (!rt->removed && !r->stopping) {
		runner__status_note(r, rt);
		runner__adapt_settle(r, rt);
		runner__kick(r);
	}
}

static void check_failed(runner_t *r, rtarget_t *rt, const char *why)
{
	adapt_t *a = rt->adapt;
	uint32_t again = verify_ms(r) / 4;

	r->adapt_checks[2]++;
	a->check_due_ms = now_ms(r) + (again > 5000 ? again : 5000);
	log_info("run", "target %s: checking its endpoint against the page failed: %s", rt->spec.id,
	         why);
}

/* The page and the endpoint agree, or not. page and ep are stolen. */
static void compare(runner_t *r, rtarget_t *rt, json_t *page, json_t *ep, uint64_t started)
{
	adapt_t *a = rt->adapt;
	char diff[400], why[600];

	if (json_equal(page, ep)) {
		r->adapt_checks[0]++;
		a->suspect = 0;
		a->checked_ms = now_ms(r);
		a->checked_unix = unix_ms();
		a->check_due_ms = a->checked_ms + verify_ms(r);
		json_decref(page);
		runner__publish_data(r, rt, ep, a->url, started, PUB_VERIFIED);
		return;
	}
	r->adapt_checks[1]++;
	epmap_diff(page, ep, diff, sizeof diff);
	json_decref(ep);
	if (!a->suspect) {
		a->suspect = 1;
		a->check_due_ms = now_ms(r); /* again at once: the source may just have changed */
		log_info("run",
		         "target %s: the endpoint differs from the page (page against "
		         "endpoint: %s): checking again",
		         rt->spec.id, diff);
		json_decref(page);
		return;
	}
	snprintf(why, sizeof why,
	         "the page and the endpoint differed twice in a row (page against endpoint: %s)",
	         diff);
	runner__publish_data(r, rt, page, rt->spec.url, started, PUB_VERIFIED);
	drop(r, rt, why);
}

static void on_check_fetched(const fetch_result_t *res, void *ud)
{
	check_t *c = ud;
	runner_t *r = c->r;
	rtarget_t *rt = c->rt;
	json_t *body = NULL, *ep = NULL;
	json_error_t jerr;
	char why[512];

	if (rt->removed || r->stopping || !rt->adapt->map || c->gen != rt->adapt->gen) {
		json_decref(c->page); /* gone, dropped or respecified meanwhile: no verdict */
	} else if (res->status != 0 || res->http_code < 200 || res->http_code > 299) {
		snprintf(why, sizeof why, "reading the endpoint: %s",
		         res->status ? res->error : "an HTTP error");
		check_failed(r, rt, why);
		json_decref(c->page);
	} else if (!(body = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, &jerr)) ||
	           epmap_read(rt->adapt->map, body, &ep, why, sizeof why) != 0) {
		json_decref(c->page);
		drop(r, rt, body ? why : "the endpoint's body is not JSON any more");
	} else {
		compare(r, rt, c->page, ep, c->started);
	}
	json_decref(body);
	check_end(r, rt);
	runner__rt_unref(rt);
	free(c);
}

void runner__adapt_checked_page(runner_t *r, rtarget_t *rt, const json_t *raw, const char *why,
                                unsigned gen)
{
	adapt_t *a = rt->adapt;
	check_t *c;
	char err[512] = "";
	json_t *page;

	if (!a)
		return;
	if (rt->removed || r->stopping || !a->map || gen != a->gen) {
		check_end(r, rt);
		return;
	}
	page = raw ? runner__normalise(rt, raw, err, sizeof err) : NULL;
	if (!page) {
		check_failed(r, rt,
		             raw ? (err[0] ? err : "the page's data did not validate") : why);
		check_end(r, rt);
		return;
	}
	if (!(c = calloc(1, sizeof *c)))
		abort();
	c->r = r;
	c->rt = rt;
	c->page = page;
	c->started = now_ms(r);
	c->gen = gen;
	rt->refs++;
	if (fetch_get(r->fetch, a->url, r->o.task_timeout_ms, ADAPT_BODY_MAX, on_check_fetched,
	              c) != 0) {
		check_failed(r, rt, "could not start the endpoint's HTTP request");
		json_decref(page);
		check_end(r, rt);
		runner__rt_unref(rt);
		free(c);
	}
}

void runner__adapt_pump(runner_t *r)
{
	uint64_t now = now_ms(r), next = UINT64_MAX;
	pool_stats_t ps;

	if (r->stopping || (r->adapt_next_ms && now < r->adapt_next_ms))
		return;
	pool_get_stats(r->pool, &ps);
	while (r->verifying + r->adapt_checking < runner__verify_cap(r, ps.capacity) &&
	       r->running[RK_NAV] + r->claiming[RK_NAV] < ps.capacity) {
		rtarget_t *best = NULL;
		next = UINT64_MAX;
		for (rtarget_t *rt = r->targets; rt; rt = rt->next) {
			adapt_t *a = rt->adapt;
			if (!a || !a->map || !a->in_fetch || a->checking || rt->removed ||
			    !runner__holds(r, rt))
				continue;
			if (a->check_due_ms > now) {
				if (a->check_due_ms < next)
					next = a->check_due_ms;
			} else if (!best || a->check_due_ms < best->adapt->check_due_ms) {
				best = rt;
			}
		}
		if (!best) {
			r->adapt_next_ms = next == UINT64_MAX ? now + 1000 : next;
			return;
		}
		best->adapt->checking = 1;
		r->adapt_checking++;
		runner__task_start_check(r, best);
		pool_get_stats(r->pool, &ps);
	}
	r->adapt_next_ms = 0; /* no slot: look again when one frees */
}
