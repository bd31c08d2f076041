/*
 * snapshot: the published document and the delta between two of them (snapshot.h).
 * The diff walks both values together, building JSON pointer paths as it goes down.
 */
#include "adapters/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adapters/adapter_util.h"

void snapshot_format_time(int64_t unix_ms, char out[32])
{
	int64_t sec = unix_ms / 1000, ms = unix_ms % 1000;
	time_t t;
	struct tm tm;
	char date[24];

	if (ms < 0) {
		ms += 1000;
		sec--;
	}
	t = (time_t)sec;
	if (!gmtime_r(&t, &tm) || strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(out, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(out, 32, "%s.%03dZ", date, (int)ms);
}

json_t *snapshot_new(const char *target, const char *adapter, const char *url, uint64_t seq,
                     int64_t scraped_at_ms, uint32_t duration_ms, enum sched_class klass,
                     json_t *data)
{
	char when[32];

	if (!data)
		return NULL;
	snapshot_format_time(scraped_at_ms, when);
	/* "o" steals data, also when json_pack fails */
	return json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:s, s:o}", "target", target ? target : "",
	                 "adapter", adapter ? adapter : "", "url", url ? url : "", "seq",
	                 (json_int_t)seq, "scraped_at", when, "duration_ms",
	                 (json_int_t)duration_ms, "class", sched_class_name(klass), "data", data);
}

static int add_entry(json_t *list, const char *path, const char *k1, const json_t *v1,
                     const char *k2, const json_t *v2)
{
	json_t *e = json_pack("{s:s, s:O}", "path", path, k1, (json_t *)v1);

	if (!e)
		return -ENOMEM;
	if (k2 && json_object_set(e, k2, (json_t *)v2) != 0) {
		json_decref(e);
		return -ENOMEM;
	}
	return json_array_append_new(list, e) == 0 ? 0 : -ENOMEM;
}

static int diff_at(const char *path, const json_t *a, const json_t *b, json_t *added,
                   json_t *changed, json_t *removed)
{
	int rc = 0;

	if (json_is_object(a) && json_is_object(b)) {
		const char *key;
		json_t *va;
		json_object_foreach((json_t *)a, key, va)
		{
			json_t *vb = json_object_get(b, key);
			char *sub = adapter_util_pointer_join(path, key);
			if (!sub)
				return -ENOMEM;
			rc = vb ? diff_at(sub, va, vb, added, changed, removed)
			        : add_entry(removed, sub, "value", va, NULL, NULL);
			free(sub);
			if (rc)
				return rc;
		}
		json_object_foreach((json_t *)b, key, va)
		{
			char *sub;
			if (json_object_get(a, key))
				continue;
			sub = adapter_util_pointer_join(path, key);
			if (!sub)
				return -ENOMEM;
			rc = add_entry(added, sub, "value", va, NULL, NULL);
			free(sub);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (json_is_array(a) && json_is_array(b)) {
		size_t na = json_array_size(a), nb = json_array_size(b);
		size_t n = na > nb ? na : nb;
		for (size_t i = 0; i < n && rc == 0; i++) {
			char idx[24], *sub;
			snprintf(idx, sizeof idx, "%zu", i);
			sub = adapter_util_pointer_join(path, idx);
			if (!sub)
				return -ENOMEM;
			if (i < na && i < nb)
				rc = diff_at(sub, json_array_get(a, i), json_array_get(b, i), added,
				             changed, removed);
			else if (i < nb)
				rc = add_entry(added, sub, "value", json_array_get(b, i), NULL,
				               NULL);
			else
				rc = add_entry(removed, sub, "value", json_array_get(a, i), NULL,
				               NULL);
			free(sub);
		}
		return rc;
	}
	/* scalars, or a change of JSON type: compared as a whole */
	if (json_typeof(a) == json_typeof(b) && json_equal((json_t *)a, (json_t *)b))
		return 0;
	return add_entry(changed, path, "from", a, "to", b);
}

int snapshot_diff(const json_t *from, const json_t *to, json_t *added, json_t *changed,
                  json_t *removed)
{
	if (!from || !to || !json_is_array(added) || !json_is_array(changed) ||
	    !json_is_array(removed))
		return -EINVAL;
	return diff_at("", from, to, added, changed, removed);
}

static int is_snapshot(const json_t *s)
{
	return json_is_object(s) && json_is_string(json_object_get(s, "target")) &&
	       json_is_integer(json_object_get(s, "seq")) && json_object_get(s, "data");
}

static json_t *time_or_null(int64_t ms)
{
	char t[32];

	if (!ms)
		return json_null();
	snapshot_format_time(ms, t);
	return json_string(t);
}

int snapshot_set_ages(json_t *snap, int64_t changed_at_ms, int64_t verified_at_ms)
{
	if (json_object_set_new(snap, "changed_at", time_or_null(changed_at_ms)) != 0 ||
	    json_object_set_new(snap, "verified_at", time_or_null(verified_at_ms)) != 0)
		return -ENOMEM;
	return 0;
}

int snapshot_delta(const json_t *prev, const json_t *next, json_t **out)
{
	json_t *added = NULL, *changed = NULL, *removed = NULL, *empty = NULL, *delta = NULL;
	const json_t *from;
	int rc = 0;

	*out = NULL;
	if (!is_snapshot(next) || (prev && !is_snapshot(prev)))
		return -EINVAL;
	if (prev && strcmp(json_string_value(json_object_get(prev, "target")),
	                   json_string_value(json_object_get(next, "target"))) != 0)
		return -EINVAL;
	added = json_array();
	changed = json_array();
	removed = json_array();
	if (!added || !changed || !removed) {
		rc = -ENOMEM;
		goto out;
	}
	if (prev) {
		from = json_object_get(prev, "data");
	} else if (json_is_object(json_object_get(next, "data"))) {
		/* everything is new: each top-level key is "added" as a whole */
		from = empty = json_object();
	} else {
		from = NULL;
	}
	if (prev || empty) {
		if (!from) {
			rc = -ENOMEM;
			goto out;
		}
		rc = snapshot_diff(from, json_object_get(next, "data"), added, changed, removed);
	} else {
		rc = add_entry(added, "", "value", json_object_get(next, "data"), NULL, NULL);
	}
	if (rc)
		goto out;
	if (!json_array_size(added) && !json_array_size(changed) && !json_array_size(removed))
		goto out; /* equal: no delta */
	delta = json_pack("{s:O, s:O, s:I, s:O, s:O, s:O, s:O}", "target",
	                  json_object_get(next, "target"), "seq", json_object_get(next, "seq"),
	                  "prev_seq",
	                  prev ? json_integer_value(json_object_get(prev, "seq")) : (json_int_t)0,
	                  "scraped_at",
	                  json_object_get(next, "scraped_at") ? json_object_get(next, "scraped_at")
	                                                      : json_null(),
	                  "added", added, "changed", changed, "removed", removed);
	if (!delta)
		rc = -ENOMEM;
	*out = delta;
out:
	json_decref(added);
	json_decref(changed);
	json_decref(removed);
	json_decref(empty);
	return rc;
}
