/*
 * run_adapt.c: what the daemon shows of adaptive targets (docs/targets.md "adaptive"):
 * the "adaptive" object of a target in /status and the cdpilot_adaptive_* metrics.
 */
#include <jansson.h>
#include <string.h>

#include "daemon/run_priv.h"
#include "adapters/snapshot.h"
#include "util/prom.h"

/* An RFC 3339 time, or JSON null for 0 (never). New reference. */
static json_t *time_or_null(int64_t unix_ms)
{
	char t[32];

	if (!unix_ms)
		return json_null();
	snapshot_format_time(unix_ms, t);
	return json_string(t);
}

/* s as a JSON string, or null when empty. The runner cuts its texts by bytes: one cut
 * inside a UTF-8 sequence loses that character here rather than the whole object. */
static json_t *text_or_null(const char *s)
{
	size_t n = strlen(s);
	json_t *j;

	if (!n)
		return json_null();
	for (int drop = 0; drop < 4 && n > 0; drop++, n--)
		if ((j = json_stringn(s, n)) != NULL)
			return j;
	return json_string("(not UTF-8)");
}

json_t *run__adapt_status(const runner_target_view_t *v)
{
	json_t *a;

	if (!v->adaptive_state)
		return NULL;
	a = json_pack("{s:s, s:o, s:o, s:o, s:o, s:b}", "state", v->adaptive_state, "endpoint",
	              text_or_null(v->adaptive_endpoint), "reason",
	              text_or_null(v->adaptive_reason),
	              "learned_at", time_or_null(v->adaptive_learned_unix), "checked_at",
	              time_or_null(v->adaptive_checked_unix), "check_overdue", v->adaptive_overdue);
	if (a && v->adaptive_map)
		json_object_set(a, "fields", json_object_get(v->adaptive_map, "fields"));
	return a;
}

void run__adapt_metrics(prom_buf_t *b, const runner_stats_t *rs)
{
	prom_header(b, "cdpilot_adaptive_reads_total", "counter",
	            "Successful reads of adaptive targets by how: endpoint (libcurl, no browser) "
	            "or page.");
	prom_sample(b, "cdpilot_adaptive_reads_total", (double)rs->adapt_reads_endpoint, "how",
	            "endpoint", NULL);
	prom_sample(b, "cdpilot_adaptive_reads_total", (double)rs->adapt_reads_page, "how", "page",
	            NULL);
	prom_family(b, "cdpilot_adaptive_events_total", "counter",
	            "Adaptive targets' endpoints learned, learnings that found none (failed), "
	            "and endpoints dropped (the page disagreed, or the endpoint failed).",
	            "event", (const char *const[]){ "learned", "failed", "dropped" },
	            (const double[]){ (double)rs->adapt_learned, (double)rs->adapt_learn_failed,
	                              (double)rs->adapt_dropped },
	            3);
	prom_family(b, "cdpilot_adaptive_checks_total", "counter",
	            "Checks of an endpoint against its page by result: agreed, differed, failed.",
	            "result", (const char *const[]){ "agreed", "differed", "failed" },
	            (const double[]){ (double)rs->adapt_checks_agreed,
	                              (double)rs->adapt_checks_differed,
	                              (double)rs->adapt_checks_failed },
	            3);
	prom_header(b, "cdpilot_adaptive_endpoints", "gauge",
	            "Adaptive targets reading their learned endpoint now.");
	prom_sample(b, "cdpilot_adaptive_endpoints", (double)rs->adapt_endpoints, NULL);
}
