/*
 * run_share.c: SCHEDULE=redis wired to the runner. The runner's claim and run_over go to
 * the shared schedule (store/share.h); what the schedule says (a target taken, kept, lost)
 * goes back to the runner; the targets the runner has (also those discovery added) go on
 * the schedule; the instance's line in the cluster view ({prefix}:cluster) says what it
 * holds and its health.
 */
#include <jansson.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "daemon/run_priv.h"
#include "util/prom.h"
#include "scheduler/health.h"

static void on_claim(void *ud, const char *id, uint64_t fence, runner_claimed_cb cb,
                     void *claim_ud)
{
	share_claim(((run_t *)ud)->share, id, fence, cb, claim_ud);
}

/* The shared schedule closes before the runner's last tasks end (fetches cancelled
 * after the pool has closed): from then on there is no one to tell. */
static void on_run_over(void *ud, const char *id, uint32_t due_in_ms, uint64_t fence,
                        int release)
{
	run_t *r = ud;
	if (r->share)
		share_done(r->share, id, due_in_ms, fence, release);
}

void run__share_callbacks(run_t *r, runner_callbacks_t *cbs)
{
	(void)r;
	cbs->claim = on_claim;
	cbs->run_over = on_run_over;
}

static int on_taken(void *ud, const char *id, uint64_t fence, uint32_t valid_ms)
{
	run_t *r = ud;
	return r->runner ? runner_share_taken(r->runner, id, fence, valid_ms) : -1;
}

static void on_kept(void *ud, const char *id, uint64_t fence, uint32_t valid_ms)
{
	run_t *r = ud;
	if (r->runner)
		runner_share_kept(r->runner, id, fence, valid_ms);
}

static void on_lost(void *ud, const char *id)
{
	run_t *r = ud;
	if (r->runner)
		runner_share_lost(r->runner, id);
}

void run__share_new(run_t *r)
{
	share_callbacks_t cbs = { .ud = r, .taken = on_taken, .kept = on_kept, .lost = on_lost };

	r->share = share_new(r->loop, r->store, &r->o->share, &cbs);
	r->share_gen = (uint64_t)-1;
}

static int64_t unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct ids {
	const char **v;
	size_t n;
} ids_t;

/* Discovered children stay off the shared schedule: they go with their listing (runner.h). */
static void collect_id(const runner_target_view_t *v, void *ud)
{
	ids_t *ids = ud;
	if (!v->source[0] || v->source[0] == '@')
		ids->v[ids->n++] = v->id;
}

/* Each tick: the targets again if the runner's changed; the cluster line. */
void run__share_tick(run_t *r)
{
	runner_stats_t rs;
	share_stats_t st;
	json_t *line;
	char *text;

	if (!r->share)
		return;
	if (runner_targets_gen(r->runner) != r->share_gen) {
		ids_t ids = { 0 };
		runner_get_stats(r->runner, &rs);
		ids.v = calloc(rs.targets + 1, sizeof *ids.v);
		if (!ids.v)
			abort();
		runner_foreach_target(r->runner, collect_id, &ids);
		share_set_targets(r->share, ids.v, ids.n);
		free(ids.v);
		r->share_gen = runner_targets_gen(r->runner);
	}
	share_get_stats(r->share, &st);
	line = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:s, s:I}", "label",
	                 r->o->share.instance, "pid", (json_int_t)getpid(), "held",
	                 (json_int_t)r->targets_held, "share", (json_int_t)st.share, "unheld",
	                 (json_int_t)st.unheld, "health",
	                 health_grade_name(health_grade(r->health)), "reasons",
	                 health_reasons(r->health), "at_unix_ms", (json_int_t)unix_ms());
	text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	share_set_info(r->share, text);
	free(text);
	json_decref(line);
}

/* The cdpilot_schedule_* families (docs/metrics.md). */
void run__share_metrics(run_t *r, prom_buf_t *b)
{
	share_stats_t sh;

	if (!r->share)
		return;
	share_get_stats(r->share, &sh);
	prom_header(b, "cdpilot_schedule_claims_total", "counter",
	            "SCHEDULE=redis claims of late runs (a held target whose lease had no "
	            "room left): won, held (another instance holds it now), error (Redis "
	            "could not be asked), timeout (no reply within REDIS_TIMEOUT_MS: not "
	            "claimed).");
	prom_sample(b, "cdpilot_schedule_claims_total", (double)sh.won, "result", "won",
	            NULL);
	prom_sample(b, "cdpilot_schedule_claims_total", (double)sh.held, "result", "held",
	            NULL);
	prom_sample(b, "cdpilot_schedule_claims_total", (double)sh.errors, "result", "error",
	            NULL);
	prom_sample(b, "cdpilot_schedule_claims_total", (double)sh.timeouts, "result",
	            "timeout", NULL);
	prom_header(b, "cdpilot_schedule_released_total", "counter",
	            "Targets this instance gave away to even the shares.");
	prom_sample(b, "cdpilot_schedule_released_total", (double)sh.released, NULL);
	prom_header(b, "cdpilot_schedule_instances", "gauge",
	            "Live instances on the shared schedule at the last tick.");
	prom_sample(b, "cdpilot_schedule_instances", (double)sh.instances, NULL);
	prom_header(b, "cdpilot_schedule_owned", "gauge",
	            "Targets this instance holds on the shared schedule at the last tick.");
	prom_sample(b, "cdpilot_schedule_owned", (double)sh.owned, NULL);
	prom_header(b, "cdpilot_schedule_share", "gauge",
	            "Targets per live instance (rounded up) at the last tick: what this "
	            "instance takes at most.");
	prom_sample(b, "cdpilot_schedule_share", (double)sh.share, NULL);
	prom_header(b, "cdpilot_schedule_unheld", "gauge",
	            "Targets on the shared schedule overdue by more than a lease at the last "
	            "tick: no instance is running them (the same figure on every instance).");
	prom_sample(b, "cdpilot_schedule_unheld", (double)sh.unheld, NULL);
	prom_header(b, "cdpilot_schedule_handovers_total", "counter",
	            "Targets that changed hands on the shared schedule: taken (by this "
	            "instance's ticks: free, due, within its share), lost (another instance "
	            "holds them now).");
	prom_sample(b, "cdpilot_schedule_handovers_total", (double)sh.taken, "event", "taken",
	            NULL);
	prom_sample(b, "cdpilot_schedule_handovers_total", (double)sh.lost, "event", "lost",
	            NULL);
}

/* /status's "schedule" object. */
void run__share_status(run_t *r, json_t *doc)
{
	share_stats_t sh;

	if (!r->share)
		return;
	share_get_stats(r->share, &sh);
	json_object_set_new(doc, "schedule",
	                    json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I, "
	                              "s:I, s:I}",
	                              "mode", "redis", "instance", share_instance(r->share),
	                              "instances", (int)sh.instances, "owned", (int)sh.owned,
	                              "share", (int)sh.share, "scheduled", (int)sh.scheduled,
	                              "unheld", (int)sh.unheld, "taken", (json_int_t)sh.taken,
	                              "lost", (json_int_t)sh.lost, "released",
	                              (json_int_t)sh.released, "won", (json_int_t)sh.won,
	                              "held", (json_int_t)sh.held, "errors",
	                              (json_int_t)sh.errors));
}
