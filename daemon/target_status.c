/*
 * target_status.c: what Redis readers are told about each target (docs/redis.md): its
 * status hash P:status:T, written after each read, failure and verification, and an
 * event on the stream P:events when its state changes (failing, backing_off, frozen,
 * recovered). The runner reports through callbacks.status; this file turns that into the
 * store's fields. Times are RFC 3339 UTC ("" when never), so that a reader computes each
 * age against its own clock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/snapshot.h"
#include "daemon/run_priv.h"
#include "store/store.h"
#include "util/log.h"

/* An RFC 3339 time, or "" for 0 (never), into out. */
static const char *time_text(int64_t unix_ms, char out[32])
{
	out[0] = '\0';
	if (unix_ms)
		snapshot_format_time(unix_ms, out);
	return out;
}

static int64_t now_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The fields of P:status:T (and, with type, of an event). New reference. */
static json_t *status_fields(const runner_target_view_t *v, const char *type)
{
	char read[32], changed[32], verified[32], since[32], now[32];

	return json_pack(
	        "{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, "
	        "s:s}",
	        "target", v->id, "type", type ? type : "status", "state", v->state, "read_mode",
	        v->read_mode, "last_outcome", v->failures ? pool_outcome_name(v->last_outcome) : "",
	        "consecutive_failures", (json_int_t)v->failures, "last_error", v->last_error,
	        "last_error_kind", v->failures ? v->last_error_kind : "",
	        "failing_since", time_text(v->failing_since_unix, since), "read_at",
	        time_text(v->read_unix, read), "changed_at", time_text(v->changed_unix, changed),
	        "verified_at", time_text(v->verified_unix, verified), "seq", (json_int_t)v->seq,
	        "class", sched_class_name(v->klass), "updated_at", time_text(now_unix_ms(), now));
}

void run__on_target_status(void *ud, const runner_target_view_t *v, const char *event)
{
	run_t *r = ud;
	json_t *f;

	if (event && !strcmp(event, "recovered"))
		log_info("run", "target %s recovered", v->id);
	if (!r->store)
		return;
	f = status_fields(v, event);
	if (!f)
		abort();
	json_object_del(f, "type");
	store_set_status(r->store, v->id, f);
	if (event) {
		json_object_set_new(f, "type", json_string(event));
		store_event(r->store, f);
	}
	json_decref(f);
}
