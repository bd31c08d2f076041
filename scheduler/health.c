/*
 * health: the health grader (contract in health.h). Pure: no I/O, no timers.
 * Keeps the statistics of the last observation, the stall episode state, the time of the
 * last degraded/failing grade (for recovering) and a small fixed table of conditions.
 * The only growing buffer is the scratch copy of the ages, capped at HEALTH_MAX_AGES.
 */
#include "scheduler/health.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/sched_env.h"

#define COND_KEY_MAX 64
#define COND_REASON_MAX 200
#define REASON_MAX 160
#define MAX_REASONS (4 + HEALTH_MAX_CONDITIONS)

typedef struct hcond {
	char key[COND_KEY_MAX];
	enum health_grade grade;
	char reason[COND_REASON_MAX];
} hcond_t;

typedef struct hreason {
	enum health_grade grade;
	char text[COND_KEY_MAX + COND_REASON_MAX + 8];
} hreason_t;

struct health {
	health_opts_t o;
	uint64_t *buf; /* scratch copy of the ages, sorted */
	size_t cap;
	size_t n; /* targets in the last observation */
	uint64_t median, p95, max;
	int due_prev;          /* work was due at the previous observation */
	uint64_t due_since_ms; /* start of the current run of "work due" */
	int stalled;
	uint64_t stall_for_ms;
	enum health_grade age_grade; /* ages and stall only */
	enum health_grade grade;     /* overall */
	enum health_grade reported;  /* overall at the previous observation */
	uint64_t since_ms;
	int have_bad;
	uint64_t last_bad_ms; /* last time the overall grade was degraded or failing */
	uint64_t now_ms;      /* of the last recompute */
	hcond_t conds[HEALTH_MAX_CONDITIONS];
	int nconds;
	hreason_t reasons[MAX_REASONS];
	int nreasons;
	char joined[MAX_REASONS * (sizeof(hreason_t) + 2)];
};

/* ---- options ---- */

void health_opts_init(health_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->window_ms = 300000;
	o->degraded_median_ms = 60000;
	o->degraded_p95_ms = 60000;
	o->failing_max_ms = 120000;
	o->stall_ms = 90000;
}

int health_opts_from_env(health_opts_t *o, errlist_t *errs)
{
	int rc = 0;

	if (sched__env_seconds(errs, "HEALTH_WINDOW_SECONDS", 0, 86400, &o->window_ms))
		rc = -EINVAL;
	if (sched__env_seconds(errs, "HEALTH_DEGRADED_MEDIAN_SECONDS", 0.1, 86400,
	                       &o->degraded_median_ms))
		rc = -EINVAL;
	if (sched__env_seconds(errs, "HEALTH_DEGRADED_P95_SECONDS", 0.1, 86400,
	                       &o->degraded_p95_ms))
		rc = -EINVAL;
	if (sched__env_seconds(errs, "HEALTH_FAILING_MAX_SECONDS", 0.1, 86400, &o->failing_max_ms))
		rc = -EINVAL;
	if (sched__env_seconds(errs, "STALL_SECONDS", 0.1, 86400, &o->stall_ms))
		rc = -EINVAL;
	return rc;
}

/* ---- helpers ---- */

/* How bad a grade is: failing > degraded > recovering > healthy. */
static int severity(enum health_grade g)
{
	switch (g) {
	case HEALTH_FAILING: return 3;
	case HEALTH_DEGRADED: return 2;
	case HEALTH_RECOVERING: return 1;
	default: return 0;
	}
}

static enum health_grade worst(enum health_grade a, enum health_grade b)
{
	return severity(b) > severity(a) ? b : a;
}

static int is_bad(enum health_grade g)
{
	return g == HEALTH_DEGRADED || g == HEALTH_FAILING;
}

/* Milliseconds as seconds: "131 s" when whole, else "131.2 s". */
static const char *secs(char *buf, size_t len, uint64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%llu s", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%.1f s", (double)ms / 1000.0);
	return buf;
}

static void add_reason(health_t *h, enum health_grade g, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void add_reason(health_t *h, enum health_grade g, const char *fmt, ...)
{
	va_list ap;
	if (h->nreasons >= MAX_REASONS)
		return;
	hreason_t *r = &h->reasons[h->nreasons++];
	r->grade = g;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof r->text, fmt, ap);
	va_end(ap);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p% of the values at or below it. */
static uint64_t nearest_rank(const uint64_t *sorted, size_t n, unsigned p)
{
	size_t rank = (p * n + 99) / 100;
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

/* The overall grade and the reasons from age_grade, the conditions and the window. */
static void recompute(health_t *h, uint64_t now_ms)
{
	char a[32], b[32];
	enum health_grade g = h->age_grade;

	h->now_ms = now_ms;
	h->nreasons = 0;
	if (h->n > 0) {
		if (h->max >= h->o.failing_max_ms)
			add_reason(h, HEALTH_FAILING, "max age %s >= %s", secs(a, sizeof a, h->max),
			           secs(b, sizeof b, h->o.failing_max_ms));
		if (h->stalled)
			add_reason(h, HEALTH_FAILING, "no success for %s while work is due (>= %s)",
			           secs(a, sizeof a, h->stall_for_ms),
			           secs(b, sizeof b, h->o.stall_ms));
		if (h->median >= h->o.degraded_median_ms)
			add_reason(h, HEALTH_DEGRADED, "median age %s >= %s",
			           secs(a, sizeof a, h->median),
			           secs(b, sizeof b, h->o.degraded_median_ms));
		if (h->p95 >= h->o.degraded_p95_ms)
			add_reason(h, HEALTH_DEGRADED, "p95 age %s >= %s",
			           secs(a, sizeof a, h->p95),
			           secs(b, sizeof b, h->o.degraded_p95_ms));
	}
	for (int i = 0; i < h->nconds; i++) {
		g = worst(g, h->conds[i].grade);
		add_reason(h, h->conds[i].grade, "%s: %s", h->conds[i].key, h->conds[i].reason);
	}
	if (is_bad(g)) {
		h->have_bad = 1;
		h->last_bad_ms = now_ms;
	} else if (h->have_bad && h->o.window_ms > 0 && now_ms >= h->last_bad_ms &&
	           now_ms - h->last_bad_ms < h->o.window_ms) {
		if (g == HEALTH_HEALTHY)
			g = HEALTH_RECOVERING;
		add_reason(h, HEALTH_RECOVERING,
		           "recovering: last degraded or failing %s ago (window %s)",
		           secs(a, sizeof a, now_ms - h->last_bad_ms),
		           secs(b, sizeof b, h->o.window_ms));
	}
	if (g != h->grade) {
		h->grade = g;
		h->since_ms = now_ms;
	}
	/* joined text */
	size_t used = 0;
	h->joined[0] = '\0';
	for (int i = 0; i < h->nreasons; i++) {
		int k = snprintf(h->joined + used, sizeof h->joined - used, "%s%s", i ? "; " : "",
		                 h->reasons[i].text);
		if (k < 0 || (size_t)k >= sizeof h->joined - used)
			break;
		used += (size_t)k;
	}
}

/* ---- public API ---- */

health_t *health_new(const health_opts_t *opts)
{
	health_t *h = calloc(1, sizeof *h);
	if (!h)
		abort();
	if (opts)
		h->o = *opts;
	else
		health_opts_init(&h->o);
	h->grade = h->reported = h->age_grade = HEALTH_HEALTHY;
	return h;
}

void health_free(health_t *h)
{
	if (!h)
		return;
	free(h->buf);
	free(h);
}

unsigned health_observe(health_t *h, uint64_t now_ms, const uint64_t *ages_ms, size_t n,
                        int work_due, uint64_t last_success_ms)
{
	unsigned flags = 0;
	size_t m = n < HEALTH_MAX_AGES ? n : HEALTH_MAX_AGES;
	int stall = 0;

	h->n = n;
	h->median = h->p95 = h->max = 0;
	if (n > 0) {
		if (m > h->cap) {
			size_t cap = h->cap ? h->cap : 64;
			while (cap < m)
				cap *= 2;
			if (cap > HEALTH_MAX_AGES)
				cap = HEALTH_MAX_AGES;
			uint64_t *b = realloc(h->buf, cap * sizeof *b);
			if (!b)
				abort();
			h->buf = b;
			h->cap = cap;
		}
		memcpy(h->buf, ages_ms, m * sizeof *h->buf);
		qsort(h->buf, m, sizeof *h->buf, cmp_u64);
		h->median = nearest_rank(h->buf, m, 50);
		h->p95 = nearest_rank(h->buf, m, 95);
		h->max = h->buf[m - 1];
		for (size_t i = m; i < n; i++)
			if (ages_ms[i] > h->max)
				h->max = ages_ms[i];
	}

	/* stall: only time during which work is due counts */
	int due = work_due && n > 0;
	if (due) {
		if (!h->due_prev)
			h->due_since_ms = now_ms;
		uint64_t ref =
		        last_success_ms > h->due_since_ms ? last_success_ms : h->due_since_ms;
		h->stall_for_ms = now_ms > ref ? now_ms - ref : 0;
		stall = h->stall_for_ms >= h->o.stall_ms;
	}
	h->due_prev = due;
	if (stall && !h->stalled)
		flags |= HEALTH_STALL_BEGAN;
	h->stalled = stall;

	h->age_grade = HEALTH_HEALTHY;
	if (n > 0) {
		if (h->max >= h->o.failing_max_ms || stall)
			h->age_grade = HEALTH_FAILING;
		else if (h->median >= h->o.degraded_median_ms || h->p95 >= h->o.degraded_p95_ms)
			h->age_grade = HEALTH_DEGRADED;
	}
	recompute(h, now_ms);
	if (h->grade != h->reported)
		flags |= HEALTH_CHANGED;
	h->reported = h->grade;
	return flags;
}

int health_set_condition(health_t *h, const char *key, enum health_grade g, const char *reason,
                         uint64_t now_ms)
{
	int i;

	if (!key || !*key || (unsigned)g > HEALTH_RECOVERING)
		return -EINVAL;
	for (i = 0; i < h->nconds; i++)
		if (strncmp(h->conds[i].key, key, COND_KEY_MAX - 1) == 0)
			break;
	if (g == HEALTH_HEALTHY) {
		if (i < h->nconds) {
			memmove(&h->conds[i], &h->conds[i + 1],
			        (size_t)(h->nconds - i - 1) * sizeof h->conds[0]);
			h->nconds--;
		}
	} else {
		if (i == h->nconds) {
			if (h->nconds >= HEALTH_MAX_CONDITIONS)
				return -ENOSPC;
			h->nconds++;
			snprintf(h->conds[i].key, sizeof h->conds[i].key, "%s", key);
		}
		h->conds[i].grade = g;
		snprintf(h->conds[i].reason, sizeof h->conds[i].reason, "%s", reason ? reason : "");
	}
	recompute(h, now_ms);
	return 0;
}

enum health_grade health_grade(const health_t *h)
{
	return h->grade;
}

const char *health_grade_name(enum health_grade g)
{
	switch (g) {
	case HEALTH_HEALTHY: return "healthy";
	case HEALTH_DEGRADED: return "degraded";
	case HEALTH_FAILING: return "failing";
	case HEALTH_RECOVERING: return "recovering";
	}
	return "unknown";
}

const char *health_reasons(const health_t *h)
{
	return h->joined;
}

void health_get_ages(const health_t *h, uint64_t *median, uint64_t *p95, uint64_t *max)
{
	if (median)
		*median = h->median;
	if (p95)
		*p95 = h->p95;
	if (max)
		*max = h->max;
}

int health_stalled(const health_t *h)
{
	return h->stalled;
}

json_t *health_to_json(const health_t *h)
{
	json_t *reasons = json_array();
	if (!reasons)
		abort();
	for (int i = 0; i < h->nreasons; i++)
		json_array_append_new(reasons, json_string(h->reasons[i].text));
	json_t *j = json_pack("{s:s, s:o, s:I, s:I, s:I, s:b, s:I}", "grade",
	                      health_grade_name(h->grade), "reasons", reasons, "median_age_ms",
	                      (json_int_t)h->median, "p95_age_ms", (json_int_t)h->p95, "max_age_ms",
	                      (json_int_t)h->max, "stalled", h->stalled, "since",
	                      (json_int_t)h->since_ms);
	if (!j)
		abort();
	return j;
}
