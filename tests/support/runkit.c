/*
 * runkit: see runkit.h.
 */
#include "tests/support/runkit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/targets.h"


static void on_publish(void *ud, const json_t *snap, const json_t *delta, uint64_t fence,
                       int resync)
{
	rh_t *h = ud;
	json_array_append_new(h->published, json_deep_copy(snap));
}

static void on_task_done(void *ud, const adapter_t *ad, enum pool_outcome o, uint64_t ms)
{
	((rh_t *)ud)->outcomes[o]++;
}

static void on_poke(uv_timer_t *t) {}

void rh_open(rh_t *h, const runner_opts_t *ro)
{
	pool_opts_t po;
	runner_callbacks_t cbs = { .publish = on_publish, .task_done = on_task_done, .ud = h };

	memset(h, 0, sizeof *h);
	h->fds_before = tu_fd_count();
	h->chrom_before = tu_tagged_count();
	h->published = json_array();
	assert_int_equal(uv_loop_init(&h->loop), 0);
	h->ws = cdp_wsctx_new(&h->loop);
	assert_non_null(h->ws);
	h->fx = fixture_new(&h->loop, NULL, 0);
	assert_non_null(h->fx);
	pool_opts_init(&po);
	po.concurrency_cap = 4;
	po.task_timeout_ms = ro->task_timeout_ms;
	h->pool = pool_new(&h->loop, h->ws, &po);
	assert_non_null(h->pool);
	assert_int_equal(pool_start(h->pool), 0);
	h->fetch = fetch_ctx_new(&h->loop);
	assert_non_null(h->fetch);
	h->runner = runner_new(&h->loop, ro, h->pool, h->fetch, &cbs);
	assert_non_null(h->runner);
	assert_int_equal(runner_start(h->runner), 0);
	assert_int_equal(runner_start(h->runner), -EINVAL);
	uv_timer_init(&h->loop, &h->poke);
	h->poke.data = h;
	uv_timer_start(&h->poke, on_poke, 50, 50);
}

static void set_flag(void *ud)
{
	*(int *)ud = 1;
}

static void on_pool_closed(pool_t *p, void *ud)
{
	((rh_t *)ud)->pool_closed = 1;
}

static void on_poke_closed(uv_handle_t *hd)
{
	((rh_t *)hd->data)->poke_closed = 1;
}

/* The daemon's stop order: stop the runner, close the pool (every lease cancelled), close
 * the fetch context (every fetch cancelled), then the runner; then audit. */
void rh_close(rh_t *h)
{
	runner_stop(h->runner);
	assert_true(runner_stopping(h->runner));
	pool_close(h->pool, on_pool_closed, h);
	assert_true(tu_run_until(&h->loop, &h->pool_closed, 60000));
	fetch_ctx_close(h->fetch, set_flag, &h->fetch_closed);
	runner_close(h->runner, set_flag, &h->runner_closed);
	assert_true(tu_run_until(&h->loop, &h->runner_closed, 10000));
	assert_true(tu_run_until(&h->loop, &h->fetch_closed, 10000));
	fixture_close(h->fx, set_flag, &h->fx_closed);
	assert_true(tu_run_until(&h->loop, &h->fx_closed, 5000));
	uv_close((uv_handle_t *)&h->poke, on_poke_closed);
	cdp_wsctx_close(h->ws);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	cdp_wsctx_free(h->ws);
	assert_true(h->poke_closed);
	assert_int_equal(uv_loop_close(&h->loop), 0);
	assert_int_equal(tu_wait_tagged_count(h->chrom_before, 5000), h->chrom_before);
	assert_int_equal(tu_fd_count(), h->fds_before);
	json_decref(h->published);
}

/* Reconciles the targets of source to those in text, a targets file with "BASE" standing
 * for the fixture's base URL. */
void rh_targets(rh_t *h, const char *source, const char *text)
{
	char base[128], buf[8192], *out = buf;
	const char *p = text, *q;
	target_set_t set = { 0 };
	errlist_t errs;

	fixture_url(h->fx, "", base, sizeof base);
	while ((q = strstr(p, "BASE")) != NULL) {
		out += snprintf(out, sizeof buf - (size_t)(out - buf), "%.*s%s", (int)(q - p), p,
		                base);
		p = q + 4;
	}
	snprintf(out, sizeof buf - (size_t)(out - buf), "%s", p);
	errlist_init(&errs);
	if (targets_parse(buf, strlen(buf), &set, &errs) != 0)
		fail_msg("bad test targets: %s", errlist_text(&errs));
	errlist_release(&errs);
	runner_reconcile(h->runner, &set, source);
	targets_release(&set);
}

size_t published(rh_t *h, const char *id)
{
	size_t i, n = 0;
	json_t *s;

	json_array_foreach(h->published, i, s)
		n += strcmp(json_string_value(json_object_get(s, "target")), id) == 0;
	return n;
}


static void find_cb(const runner_target_view_t *v, void *ud)
{
	find_t *f = ud;
	f->count++;
	if (strcmp(v->id, f->id) == 0) {
		f->v = *v;
		snprintf(f->last_error, sizeof f->last_error, "%s", v->last_error);
		f->found = 1;
	}
}

find_t view(rh_t *h, const char *id)
{
	find_t f = { .id = id };
	runner_foreach_target(h->runner, find_cb, &f);
	return f;
}


/* GETs path on the fixture from the loop and waits for the answer (200 expected). */
static void on_ctl(const fetch_result_t *res, void *ud)
{
	*(long *)ud = res->status == 0 ? res->http_code : -1;
}

void rh_get(rh_t *h, const char *path)
{
	char url[256];
	long code = 0;

	fixture_url(h->fx, path, url, sizeof url);
	assert_int_equal(fetch_get(h->fetch, url, 10000, 0, on_ctl, &code), 0);
	RUN_UNTIL(h, code != 0, 15000);
	if (code != 200)
		fail_msg("GET %s: %ld", path, code);
}

/* The newest snapshot of id published (borrowed), or NULL. */
json_t *latest(rh_t *h, const char *id)
{
	json_t *s, *last = NULL;
	size_t i;

	json_array_foreach(h->published, i, s)
		if (strcmp(json_string_value(json_object_get(s, "target")), id) == 0)
			last = s;
	return last;
}

