/*
 * targets: the targets file parser (targets.h, docs/targets.md). Every check adds one
 * line to the error list and parsing goes on, so a user sees every mistake at once.
 */
#include "daemon/targets.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/adapter_util.h"
#include "daemon/target_page.h"
#include "util/ident.h"

static const char *const common_keys[] = {
	"id",   "adapter", "url",      "class",    "interval_seconds",
	"mode", "push",    "discover", "children", "timeout_seconds",
	NULL
};

int targets_id_valid(const char *id)
{
	return ident_valid(id); /* TARGETS_ID_MAX == IDENT_MAX */
}

void target_spec_release(target_spec_t *t)
{
	if (!t)
		return;
	if (t->adapter && t->adapter->free_state && t->state)
		t->adapter->free_state(t->state);
	targets__page_release(t);
	json_decref(t->json);
	memset(t, 0, sizeof *t);
}

void targets_release(target_set_t *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->n; i++)
		target_spec_release(&set->v[i]);
	free(set->v);
	set->v = NULL;
	set->n = 0;
	entities_release(&set->entities);
}

const target_spec_t *targets_find(const target_set_t *set, const char *id)
{
	for (size_t i = 0; set && id && i < set->n; i++)
		if (strcmp(set->v[i].id, id) == 0)
			return &set->v[i];
	return NULL;
}

/* ---- one target ---- */

/* The adapter's keys plus the common ones, NULL-terminated, in buf (cap entries). */
static size_t known_keys(const adapter_t *ad, const char **buf, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; common_keys[i] && n + 1 < cap; i++)
		buf[n++] = common_keys[i];
	for (size_t i = 0; targets__page_keys[i] && n + 1 < cap; i++)
		buf[n++] = targets__page_keys[i];
	for (size_t i = 0; ad && ad->param_keys && ad->param_keys[i] && n + 1 < cap; i++)
		buf[n++] = ad->param_keys[i];
	buf[n] = NULL;
	return n;
}

int targets_adapter_usable(const adapter_t *ad)
{
	if (!ad || !ad->name || !ad->normalise)
		return 0;
	if (ad->needs_browser && !ad->extract_js && !(ad->extract_fn && ad->extract_args))
		return 0;
	if (ad->param_keys && ad->param_keys[0] && !ad->parse)
		return 0;
	return 1;
}

static const adapter_t *check_adapter(const json_t *v, const char *where, errlist_t *errs)
{
	const adapter_t *const *all;
	const adapter_t *ad;
	const char *names[32];
	char list[512] = "", q[96];
	size_t n, len = 0, k = 0;
	const char *sug;

	all = adapter_all(&n);
	for (size_t i = 0; i < n && k + 1 < sizeof names / sizeof names[0]; i++) {
		int w = snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "",
		                 all[i]->name);
		if (w > 0 && (size_t)w < sizeof list - len)
			len += (size_t)w;
		names[k++] = all[i]->name;
	}
	names[k] = NULL;
	if (!v) {
		errlist_add(errs, "%s: \"adapter\": required (one of: %s)", where, list);
		return NULL;
	}
	if (!json_is_string(v)) {
		errlist_add(errs,
		            "%s: \"adapter\": expected the name of an adapter (one of: %s), got %s",
		            where, list, adapter_util_quote(v, q, sizeof q));
		return NULL;
	}
	ad = adapter_find(json_string_value(v));
	if (!ad) {
		sug = adapter_util_closest(json_string_value(v), names);
		errlist_add(errs, "%s: \"adapter\": unknown adapter %s (known: %s)%s%s%s", where,
		            adapter_util_quote(v, q, sizeof q), list,
		            sug ? "; did you mean \"" : "", sug ? sug : "", sug ? "\"?" : "");
		return NULL;
	}
	if (!targets_adapter_usable(ad)) {
		errlist_add(errs, "%s: \"adapter\": \"%s\" is not implemented in this build", where,
		            ad->name);
		return NULL;
	}
	return ad;
}

static int check_url(const json_t *v, const char *where, const char **out, errlist_t *errs)
{
	char q[96], host[256], why[256];
	const char *u = json_string_value(v);
	int rc;

	if (!v) {
		errlist_add(errs, "%s: \"url\": required (an http:// or https:// URL)", where);
		return -EINVAL;
	}
	if (!u || strlen(u) != json_string_length(v)) {
		errlist_add(errs, "%s: \"url\": expected an http:// or https:// URL, got %s", where,
		            adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	if (json_string_length(v) > TARGETS_URL_MAX) {
		errlist_add(errs, "%s: \"url\": expected at most %d bytes, got %zu", where,
		            TARGETS_URL_MAX, json_string_length(v));
		return -EINVAL;
	}
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			errlist_add(errs,
			            "%s: \"url\": expected a URL without spaces or control "
			            "characters (percent-encode them), got %s",
			            where, adapter_util_quote(v, q, sizeof q));
			return -EINVAL;
		}
	rc = targets_host(u, host, sizeof host);
	if (rc == -ERANGE) {
		errlist_add(errs, "%s: \"url\": expected a port from 1 to 65535, got %s", where,
		            adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	if (rc != 0) {
		errlist_add(errs,
		            "%s: \"url\": expected an absolute http:// or https:// URL with a "
		            "host%s, got %s",
		            where, rc == -ENAMETOOLONG ? " of at most 255 bytes" : "",
		            adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	if (netpolicy_check_url(targets_policy(), u, why, sizeof why) != 0) {
		errlist_add(errs, "%s: \"url\": %s is refused by the target policy: %s", where,
		            adapter_util_quote(v, q, sizeof q), why);
		return -EINVAL;
	}
	*out = u;
	return 0;
}

/* "where" for a target's errors: where_in, and the id when it is a string. */
static void target_where(const json_t *idv, const char *where_in, char *where, size_t len)
{
	char q[96];

	if (json_is_string(idv))
		snprintf(where, len, "%s %s", where_in, adapter_util_quote(idv, q, sizeof q));
	else
		snprintf(where, len, "%s", where_in);
}

static int check_id(const json_t *idv, const char *where, char *out, errlist_t *errs)
{
	char q[96];

	if (!idv) {
		errlist_add(errs, "%s: \"id\": required (1 to %d characters of A-Z a-z 0-9 _ . -)",
		            where, TARGETS_ID_MAX);
		return -EINVAL;
	}
	if (!json_is_string(idv) || !targets_id_valid(json_string_value(idv)) ||
	    strlen(json_string_value(idv)) != json_string_length(idv)) {
		errlist_add(errs,
		            "%s: \"id\": expected 1 to %d characters of A-Z a-z 0-9 _ . - not "
		            "starting with '.' or '-', got %s",
		            where, TARGETS_ID_MAX, adapter_util_quote(idv, q, sizeof q));
		return -EINVAL;
	}
	memcpy(out, json_string_value(idv), json_string_length(idv) + 1);
	return 0;
}

/* Every key of obj must be a common key or one of ad's; without the adapter (ad NULL) its
 * keys are unknown, so only likely typos of the common keys are flagged. */
static int check_keys(const json_t *obj, const adapter_t *ad, const char *where, errlist_t *errs)
{
	const char *keys[64];
	const json_t *v;
	const char *key;
	int rc = 0;

	known_keys(ad, keys, sizeof keys / sizeof keys[0]);
	json_object_foreach((json_t *)obj, key, v)
	{
		int known = 0;
		const char *sug;
		for (size_t i = 0; keys[i]; i++)
			known |= strcmp(key, keys[i]) == 0;
		if (known)
			continue;
		if (!ad) {
			sug = adapter_util_closest(key, common_keys);
			if (sug)
				errlist_add(errs, "%s: unknown key \"%s\" (did you mean \"%s\"?)",
				            where, key, sug);
			if (sug)
				rc = -EINVAL;
			continue;
		}
		sug = adapter_util_closest(key, keys);
		errlist_add(errs, "%s: unknown key \"%s\"%s%s%s", where, key,
		            sug ? " (did you mean \"" : "", sug ? sug : "", sug ? "\"?)" : "");
		rc = -EINVAL;
	}
	return rc;
}

/* "class", "interval_seconds" and "timeout_seconds", each optional. */
static int check_timing(const json_t *obj, const char *where, target_spec_t *out, errlist_t *errs)
{
	const json_t *v;
	double d;
	int rc = 0;

	if ((v = json_object_get(obj, "class")) &&
	    adapter_util_class(v, where, &out->klass, errs) != 0)
		rc = -EINVAL;
	if ((v = json_object_get(obj, "interval_seconds"))) {
		if (adapter_util_number(v, where, "interval_seconds", 0.1, 86400, &d, errs) != 0)
			rc = -EINVAL;
		else
			out->interval_ms = (uint32_t)llround(d * 1000);
	}
	if ((v = json_object_get(obj, "timeout_seconds"))) {
		if (adapter_util_number(v, where, "timeout_seconds", 1, 600, &d, errs) != 0)
			rc = -EINVAL;
		else
			out->timeout_ms = (uint32_t)llround(d * 1000);
	}
	return rc;
}

/* The optional "mode"; *watch_given is set when it is "watch". */
static int check_mode(const json_t *v, const adapter_t *ad, const char *where, target_spec_t *out,
                      int *watch_given, errlist_t *errs)
{
	const char *m = json_string_value(v);
	char q[96];

	if (!v)
		return 0;
	if (m && strcmp(m, "navigate") == 0) {
		out->mode = TARGETS_NAVIGATE;
		return 0;
	}
	if (m && strcmp(m, "watch") == 0) {
		out->mode = TARGETS_WATCH;
		*watch_given = 1;
		if (ad && !ad->needs_browser) {
			errlist_add(errs,
			            "%s: \"mode\": \"watch\" needs an adapter that reads a "
			            "page in the browser; \"%s\" fetches without one",
			            where, ad->name);
			return -EINVAL;
		}
		return 0;
	}
	errlist_add(errs, "%s: \"mode\": expected \"navigate\" or \"watch\", got %s", where,
	            adapter_util_quote(v, q, sizeof q));
	return -EINVAL;
}

/* The optional "push" and "discover", which depend on the mode and the adapter. */
static int check_push_discover(const json_t *obj, const adapter_t *ad, const char *where,
                               int watch_given, target_spec_t *out, errlist_t *errs)
{
	const json_t *v;
	int rc = 0;

	if ((v = json_object_get(obj, "push"))) {
		if (adapter_util_bool(v, where, "push", &out->push, errs) != 0) {
			rc = -EINVAL;
		} else if (out->push && out->mode != TARGETS_WATCH) {
			errlist_add(errs, "%s: \"push\": only with \"mode\": \"watch\"", where);
			rc = -EINVAL;
		}
	}
	if ((v = json_object_get(obj, "discover"))) {
		if (adapter_util_bool(v, where, "discover", &out->discover, errs) != 0) {
			rc = -EINVAL;
		} else if (out->discover && ad && (!ad->discover_js || !ad->discover)) {
			errlist_add(errs,
			            "%s: \"discover\": adapter \"%s\" cannot discover targets",
			            where, ad->name);
			rc = -EINVAL;
		} else if (out->discover && watch_given) {
			errlist_add(errs,
			            "%s: \"discover\": a listing page is loaded each time, not "
			            "watched: drop \"mode\": \"watch\" (give it in \"children\")",
			            where);
			rc = -EINVAL;
		}
	}
	return rc;
}

/* The optional "children": keys merged into every discovered target. */
static int check_children(const json_t *v, int discover, const char *where, errlist_t *errs)
{
	char q[96];

	if (!v)
		return 0;
	if (!json_is_object(v)) {
		errlist_add(errs,
		            "%s: \"children\": expected an object of keys merged into "
		            "every discovered target, got %s",
		            where, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	if (!discover) {
		errlist_add(errs, "%s: \"children\": only with \"discover\": true", where);
		return -EINVAL;
	}
	if (json_object_get(v, "id")) {
		errlist_add(errs,
		            "%s: \"children\": must not set \"id\" (each discovered "
		            "target has its own)",
		            where);
		return -EINVAL;
	}
	return 0;
}

/* The adapter's own parameters into out->state. Out of memory aborts (daemon plumbing). */
static int parse_params(const json_t *obj, const adapter_t *ad, const char *where,
                        target_spec_t *out, errlist_t *errs)
{
	int r;

	if (!ad || !ad->parse)
		return 0;
	r = ad->parse(obj, where, &out->state, errs);
	if (r == -ENOMEM) {
		fprintf(stderr, "targets: out of memory\n");
		abort();
	}
	if (r != 0) {
		out->state = NULL;
		return -EINVAL;
	}
	return 0;
}

int targets_parse_one(const json_t *obj, const char *where_in, target_spec_t *out, errlist_t *errs)
{
	const adapter_t *ad = NULL;
	char where[256], q[96];
	int rc = 0, watch_given = 0;

	memset(out, 0, sizeof *out);
	out->klass = SCHED_IMMINENT;
	out->url = ""; /* until check_url() points it into obj, then into out->json */
	if (!json_is_object(obj)) {
		errlist_add(errs,
		            "%s: expected a target object {\"id\", \"adapter\", \"url\", ...}, "
		            "got %s",
		            where_in, adapter_util_quote(obj, q, sizeof q));
		return -EINVAL;
	}
	target_where(json_object_get(obj, "id"), where_in, where, sizeof where);

	/* Every check runs, in this order, so that every mistake is reported at once. */
	if (check_id(json_object_get(obj, "id"), where, out->id, errs) != 0)
		rc = -EINVAL;
	ad = check_adapter(json_object_get(obj, "adapter"), where, errs);
	if (!ad)
		rc = -EINVAL;
	if (check_keys(obj, ad, where, errs) != 0)
		rc = -EINVAL;
	if (check_url(json_object_get(obj, "url"), where, &out->url, errs) != 0)
		rc = -EINVAL;
	if (check_timing(obj, where, out, errs) != 0)
		rc = -EINVAL;
	if (check_mode(json_object_get(obj, "mode"), ad, where, out, &watch_given, errs) != 0)
		rc = -EINVAL;
	if (check_push_discover(obj, ad, where, watch_given, out, errs) != 0)
		rc = -EINVAL;
	if (check_children(json_object_get(obj, "children"), out->discover, where, errs) != 0)
		rc = -EINVAL;
	if (targets__page_parse(obj, ad, where, out, errs) != 0)
		rc = -EINVAL;
	if (parse_params(obj, ad, where, out, errs) != 0)
		rc = -EINVAL;
	out->adapter = ad;
	if (rc != 0) {
		target_spec_release(out);
		return rc;
	}
	out->json = json_deep_copy(obj);
	if (!out->json) {
		fprintf(stderr, "targets: out of memory\n");
		abort();
	}
	out->url = json_string_value(json_object_get(out->json, "url"));
	out->children = json_object_get(out->json, "children");
	targets__page_borrow(out);
	return 0;
}

/* ---- a whole set ---- */

/* 0 after an error if idv (a JSON string) is already in seen ({id: its first position}),
 * else 1 (and i is recorded as its position). A hash lookup: comparing each id with every
 * earlier one made validating N targets O(N^2), minutes for 100,000. */
static int check_unique(json_t *seen, const json_t *idv, size_t i, errlist_t *errs)
{
	const char *id = json_string_value(idv);
	const json_t *first = json_object_get(seen, id);
	char q[96];

	if (first) {
		errlist_add(errs, "targets[%zu] %s: duplicate id (also targets[%lld])", i,
		            adapter_util_quote(idv, q, sizeof q),
		            (long long)json_integer_value(first));
		return 0;
	}
	if (json_object_set_new(seen, id, json_integer((json_int_t)i)) != 0) {
		fprintf(stderr, "targets: out of memory\n");
		abort();
	}
	return 1;
}

/* A whole set from parsed JSON whose script_files were read (or refused). */
/* entities_parse_json's known(): an id of the set being parsed ({id: position}). */
static int known_target(void *ud, const char *id)
{
	return json_object_get((const json_t *)ud, id) != NULL;
}

static int parse_set(const json_t *root, target_set_t *out, errlist_t *errs)
{
	static const char *const top_keys[] = { "targets", "entities", NULL };
	const json_t *list = root, *t;
	json_t *seen = NULL;
	const char *key;
	char q[96];
	size_t i, n;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (json_is_object(root)) {
		json_t *v;
		json_object_foreach((json_t *)root, key, v)
		{
			if (strcmp(key, "targets") != 0 && strcmp(key, "entities") != 0) {
				const char *sug = adapter_util_closest(key, top_keys);
				errlist_add(errs, "unknown top-level key \"%s\"%s%s%s", key,
				            sug ? " (did you mean \"" : "", sug ? sug : "",
				            sug ? "\"?)" : "");
				rc = -EINVAL;
			}
		}
		list = json_object_get(root, "targets");
		if (!list) {
			errlist_add(errs, "\"targets\": required (an array of target objects)");
			return -EINVAL;
		}
	}
	if (!json_is_array(list)) {
		errlist_add(errs,
		            "expected {\"targets\": [...]} or an array of target objects, got %s",
		            adapter_util_quote(list, q, sizeof q));
		return -EINVAL;
	}
	n = json_array_size(list);
	out->v = calloc(n + 1, sizeof *out->v);
	seen = json_object();
	if (!out->v || !seen) {
		fprintf(stderr, "targets: out of memory\n");
		abort();
	}
	json_array_foreach((json_t *)list, i, t)
	{
		char where[48];
		const json_t *idv = json_object_get(t, "id");
		snprintf(where, sizeof where, "targets[%zu]", i);
		if (targets_parse_one(t, where, &out->v[out->n], errs) == 0)
			out->n++;
		else
			rc = -EINVAL;
		/* duplicates: the first target with the same id, from the index of ids */
		if (json_is_string(idv) && !check_unique(seen, idv, i, errs))
			rc = -EINVAL;
	}
	if (json_is_object(root) && json_object_get(root, "entities") &&
	    entities_parse_json(json_object_get(root, "entities"), "entities", known_target, seen,
	                        &out->entities, errs) != 0)
		rc = -EINVAL;
	json_decref(seen);
	if (rc != 0)
		targets_release(out);
	return rc;
}

int targets_parse_json(const json_t *root, target_set_t *out, errlist_t *errs)
{
	/* without a directory, script_files are only looked for (root is not changed) */
	int rc = targets__script_files((json_t *)root, NULL, errs);
	int r = parse_set(root, out, errs);

	if (rc != 0 && r == 0)
		targets_release(out);
	return rc ? rc : r;
}

/* text parsed; script_files read relative to dir (NULL: refused). */
static int parse_text(const char *text, size_t len, const char *dir, target_set_t *out,
                      errlist_t *errs)
{
	json_error_t jerr;
	json_t *root;
	int rc, r;

	memset(out, 0, sizeof *out);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		errlist_add(errs, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
		return -EINVAL;
	}
	rc = targets__script_files(root, dir, errs);
	r = parse_set(root, out, errs);
	if (rc != 0 && r == 0)
		targets_release(out);
	json_decref(root);
	return rc ? rc : r;
}

int targets_parse(const char *text, size_t len, target_set_t *out, errlist_t *errs)
{
	return parse_text(text, len, NULL, out, errs);
}

int targets_load_file(const char *path, target_set_t *out, errlist_t *errs)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd = -1, rc = 0;

	out->v = NULL;
	out->n = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		errlist_add(errs, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		errlist_add(errs, "%s: not a regular file", path);
		rc = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > TARGETS_FILE_MAX) {
		errlist_add(errs, "%s: %lld bytes, more than the %u MiB a targets file may have",
		            path, (long long)st.st_size, TARGETS_FILE_MAX >> 20);
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		fprintf(stderr, "targets: out of memory\n");
		abort();
	}
	/* read to the end (the file may have grown a little since fstat; the cap still holds) */
	for (;;) {
		ssize_t r;
		if (len == (size_t)st.st_size + 1) {
			errlist_add(errs, "%s: the file grew while it was read", path);
			rc = -EAGAIN;
			goto out;
		}
		r = read(fd, buf + len, (size_t)st.st_size + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			errlist_add(errs, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	{
		/* script_files are relative to the file's directory */
		const char *slash = strrchr(path, '/');
		char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path))
		                  : strdup(".");
		if (!dir) {
			fprintf(stderr, "targets: out of memory\n");
			abort();
		}
		rc = parse_text(buf, len, dir, out, errs);
		free(dir);
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}
