/*
 * runner_priv: what the files of runner/ share. Not a public interface.
 * (For now the runner still works on the daemon's run_t: this is the pure move of the
 * execution half out of daemon/run.c; the next change gives it a struct of its own.)
 */
#ifndef CDPILOT_RUNNER_RUNNER_PRIV_H
#define CDPILOT_RUNNER_RUNNER_PRIV_H

#include <stdint.h>
#include <sys/time.h>

#include "daemon/run_priv.h"

#define WATCH_RETRY_MAX_MS 30000u
#define PUSH_BINDING "__cdpilotPush"

static inline uint64_t now_ms(run_t *r)
{
	return uv_now(r->loop);
}

static inline int64_t unix_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static inline uint32_t class_interval(run_t *r, const rtarget_t *rt)
{
	return rt->spec.interval_ms ? rt->spec.interval_ms : r->o->sched.interval_ms[rt->klass];
}

static inline sched_t *sched_of(run_t *r, const rtarget_t *rt)
{
	return rt->spec.mode == TARGETS_WATCH ? r->wsched : r->nav;
}

/* rtable.c: the targets table */
rtarget_t *runner__find_target(run_t *r, const char *id);
void runner__rt_unref(rtarget_t *rt);
void runner__target_add(run_t *r, target_spec_t *spec, const char *parent);
void runner__target_remove(run_t *r, rtarget_t *rt);
void runner__target_update(run_t *r, rtarget_t *rt, target_spec_t *spec);
void runner__reconcile(run_t *r, target_set_t *set, const char *parent);
void runner__discovered(run_t *r, rtarget_t *rt, json_t *children);
/* publish.c: results */
void runner__record_done(run_t *r, int ok);
void runner__target_failed(run_t *r, rtarget_t *rt, const char *why);
int runner__publish(run_t *r, rtarget_t *rt, const json_t *raw, const char *url,
                    uint64_t started);
/* task.c: navigate and fetch tasks */
void runner__task_start(run_t *r, rtarget_t *rt);
int runner__nav_failure(const cdp_nav_result_t *res, const char *url, char *msg, size_t len);
/* watch.c: watched pages */
void runner__watch_open(run_t *r, rtarget_t *rt, watch_t *replaces);
void runner__watch_close(watch_t *w);
void runner__watch_due(run_t *r, rtarget_t *rt);
/* claim.c: the shared schedule */
void runner__share_run_over(run_t *r, rtarget_t *rt);
void runner__watch_sched_done(run_t *r, rtarget_t *rt, int ok);
void runner__claim(run_t *r, rtarget_t *rt, int watch);
/* pump.c: the pump */
void runner__pump(run_t *r);

#endif
