/*
 * target_page: a target's page settings and its script_file (target_page.h). Every check
 * adds one line to the error list and goes on, so that a user sees every mistake at once.
 */
#include "daemon/target_page.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapters/adapter_util.h"
#include "util/resource_types.h"

#define CSS_MAX 1024
#define TEXT_MAX 65536
#define UA_MAX 511
#define HEADER_VALUE_MAX 8192
#define COOKIE_MAX 4096
#define BLOCK_MAX 128 /* pool_opts_t.block_resources */

const char *const targets__page_keys[] = { "actions",         "wait_for_state",
	                                   "headers",         "cookies",
	                                   "user_agent",      "viewport",
	                                   "block_resources", "adaptive",
	                                   NULL };

static const char *const verbs[] = {
	"click", "wait_for", "wait_ms", "scroll", "fill", "press", NULL
};
static const char *const step_keys[] = { "click", "wait_for", "wait_ms",  "scroll",     "fill",
	                                 "press", "state",    "optional", "timeout_ms", NULL };
static const char *const keys_named[] = { "Enter",      "Tab",     "Escape",    "Backspace",
	                                  "Delete",     "ArrowUp", "ArrowDown", "ArrowLeft",
	                                  "ArrowRight", "PageUp",  "PageDown",  "Home",
	                                  "End",        "Space",   NULL };
static const char *const states[] = { "visible", "attached", NULL };
static const char *const same_site[] = { "Strict", "Lax", "None", NULL };
static const char *const cookie_keys[] = { "name",     "value",   "domain",   "path", "secure",
	                                   "httpOnly", "expires", "sameSite", NULL };

static void nomem(void)
{
	fprintf(stderr, "targets: out of memory\n");
	abort();
}

/* A string of min..max bytes without NUL (and without control bytes if no_ctl). */
static int want_str(const json_t *v, const char *where, const char *path, size_t min, size_t max,
                    int no_ctl, const char *what, errlist_t *errs)
{
	const char *s = json_string_value(v);
	char q[96];
	int ok = s && json_string_length(v) >= min && json_string_length(v) <= max &&
	         strlen(s) == json_string_length(v);

	for (const char *p = s; ok && no_ctl && *p; p++)
		ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
	if (ok)
		return 0;
	errlist_add(errs, "%s: \"%s\": expected %s, got %s", where, path, what,
	            adapter_util_quote(v, q, sizeof q));
	return -EINVAL;
}

/* An integer in [lo, hi]. */
static int want_int(const json_t *v, const char *where, const char *path, json_int_t lo,
                    json_int_t hi, errlist_t *errs)
{
	char q[96];

	if (json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi)
		return 0;
	errlist_add(errs, "%s: \"%s\": expected an integer from %lld to %lld, got %s", where, path,
	            (long long)lo, (long long)hi, adapter_util_quote(v, q, sizeof q));
	return -EINVAL;
}

/* One printable character (one UTF-8 code point, not a control). */
static int one_printable(const char *s)
{
	size_t points = 0;

	for (const char *p = s; *p; p++)
		if (((unsigned char)*p & 0xc0) != 0x80)
			points++;
	return points == 1 && (unsigned char)s[0] >= 0x20 && s[0] != 0x7f;
}

/* The argument of a step's verb. */
static int check_verb(const json_t *v, const char *verb, const char *where, const char *path,
                      errlist_t *errs)
{
	char q[96];

	if (!strcmp(verb, "click") || !strcmp(verb, "wait_for"))
		return want_str(v, where, path, 1, CSS_MAX, 0, "a CSS selector", errs);
	if (!strcmp(verb, "scroll"))
		return want_str(v, where, path, 1, CSS_MAX, 0,
		                "\"bottom\", \"top\" or a CSS selector", errs);
	if (!strcmp(verb, "wait_ms"))
		return want_int(v, where, path, 0, 60000, errs);
	if (!strcmp(verb, "press")) {
		const char *k = json_string_value(v);
		if (k && strlen(k) == json_string_length(v) &&
		    (adapter_util_name_index(k, keys_named) >= 0 || one_printable(k)))
			return 0;
		errlist_add(errs,
		            "%s: \"%s\": expected a key: Enter, Tab, Escape, Backspace, Delete, "
		            "ArrowUp, ArrowDown, ArrowLeft, ArrowRight, PageUp, PageDown, Home, "
		            "End, Space or one printable character, got %s",
		            where, path, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	/* fill: [CSS, TEXT] */
	if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
	    json_string_length(json_array_get(v, 0)) > 0 &&
	    json_string_length(json_array_get(v, 0)) <= CSS_MAX &&
	    json_is_string(json_array_get(v, 1)) &&
	    json_string_length(json_array_get(v, 1)) <= TEXT_MAX &&
	    strlen(json_string_value(json_array_get(v, 1))) ==
	            json_string_length(json_array_get(v, 1)))
		return 0;
	errlist_add(errs,
	            "%s: \"%s\": expected [CSS selector, text] (text at most %d bytes), got %s",
	            where, path, TEXT_MAX, adapter_util_quote(v, q, sizeof q));
	return -EINVAL;
}

/* One step: exactly one verb, its argument, and the optional keys. */
static int check_step(const json_t *st, size_t i, const char *where, errlist_t *errs)
{
	char path[64], q[96];
	const char *verb = NULL, *second = NULL;
	const json_t *v;
	int rc = 0, k;

	snprintf(path, sizeof path, "actions[%zu]", i);
	if (!json_is_object(st)) {
		errlist_add(errs, "%s: \"%s\": expected an object such as {\"click\": CSS}, got %s",
		            where, path, adapter_util_quote(st, q, sizeof q));
		return -EINVAL;
	}
	rc = adapter_util_unknown_keys(st, step_keys, where, path, errs);
	for (k = 0; verbs[k]; k++) {
		if (!json_object_get(st, verbs[k]))
			continue;
		if (!verb)
			verb = verbs[k];
		else if (!second)
			second = verbs[k];
	}
	if (!verb || second) {
		errlist_add(errs,
		            "%s: \"%s\": expected exactly one of \"click\", \"wait_for\", "
		            "\"wait_ms\", \"scroll\", \"fill\", \"press\" (one per step), got "
		            "%s%s%s%s%s",
		            where, path, verb ? "\"" : "none", verb ? verb : "",
		            second ? "\" and \"" : "", second ? second : "", second ? "\"" : "");
		return -EINVAL;
	}
	snprintf(path, sizeof path, "actions[%zu].%s", i, verb);
	if (check_verb(json_object_get(st, verb), verb, where, path, errs) != 0)
		rc = -EINVAL;
	if ((v = json_object_get(st, "state"))) {
		snprintf(path, sizeof path, "actions[%zu].state", i);
		if (strcmp(verb, "wait_for") != 0) {
			errlist_add(errs, "%s: \"%s\": only with \"wait_for\"", where, path);
			rc = -EINVAL;
		} else if (adapter_util_one_of(v, states, where, path, &k, errs) != 0) {
			rc = -EINVAL;
		}
	}
	snprintf(path, sizeof path, "actions[%zu].optional", i);
	if ((v = json_object_get(st, "optional")) && adapter_util_bool(v, where, path, &k, errs))
		rc = -EINVAL;
	snprintf(path, sizeof path, "actions[%zu].timeout_ms", i);
	if ((v = json_object_get(st, "timeout_ms")) && want_int(v, where, path, 1, 600000, errs))
		rc = -EINVAL;
	return rc;
}

static int check_actions(const json_t *v, const char *where, errlist_t *errs)
{
	const json_t *st;
	char q[96];
	size_t i;
	int rc = 0;

	if (!json_is_array(v) || json_array_size(v) > TARGETS_ACTIONS_MAX) {
		errlist_add(errs,
		            "%s: \"actions\": expected an array of at most %d steps such as "
		            "{\"click\": CSS}, got %s",
		            where, TARGETS_ACTIONS_MAX, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	json_array_foreach(v, i, st) if (check_step(st, i, where, errs) != 0) rc = -EINVAL;
	return rc;
}

/* An HTTP header name: 1..256 token characters (RFC 9110). */
static int header_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 256)
		return 0;
	for (const char *p = n; *p; p++)
		if (!(((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') || (*p >= '0' && *p <= '9') ||
		      strchr("!#$%&'*+-.^_`|~", *p)))
			return 0;
	return 1;
}

static int check_headers(const json_t *v, const char *where, target_spec_t *out, errlist_t *errs)
{
	const char *name;
	const json_t *val;
	char q[96], path[300];
	int rc = 0;

	if (!json_is_object(v) || json_object_size(v) > TARGETS_HEADERS_MAX) {
		errlist_add(errs,
		            "%s: \"headers\": expected an object of at most %d headers "
		            "{\"Name\": \"value\"}, got %s",
		            where, TARGETS_HEADERS_MAX, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	json_object_foreach((json_t *)v, name, val)
	{
		snprintf(path, sizeof path, "headers.%.256s", name);
		if (!header_name_ok(name)) {
			errlist_add(errs,
			            "%s: \"headers\": expected header names of 1 to 256 letters, "
			            "digits and !#$%%&'*+-.^_`|~, got \"%.80s\"",
			            where, name);
			rc = -EINVAL;
		} else if (want_str(val, where, path, 0, HEADER_VALUE_MAX, 1,
		                    "a string of at most 8192 bytes without control characters",
		                    errs) != 0) {
			rc = -EINVAL;
		}
	}
	if (rc == 0 && !(out->headers_json = json_dumps(v, JSON_COMPACT)))
		nomem();
	return rc;
}

/* One cookie; a copy (with "url" when it has no domain) is appended to list. */
static int check_cookie(const json_t *c, size_t i, const char *where, const char *url, json_t *list,
                        errlist_t *errs)
{
	char path[64], q[96];
	const json_t *v;
	int rc = 0, k;
	json_t *copy;

	snprintf(path, sizeof path, "cookies[%zu]", i);
	if (!json_is_object(c)) {
		errlist_add(errs,
		            "%s: \"%s\": expected an object {\"name\", \"value\", ...}, got %s",
		            where, path, adapter_util_quote(c, q, sizeof q));
		return -EINVAL;
	}
	rc = adapter_util_unknown_keys(c, cookie_keys, where, path, errs);
	snprintf(path, sizeof path, "cookies[%zu].name", i);
	if (want_str(json_object_get(c, "name"), where, path, 1, 256, 1,
	             "a non-empty string of at most 256 bytes (required)", errs))
		rc = -EINVAL;
	snprintf(path, sizeof path, "cookies[%zu].value", i);
	if (want_str(json_object_get(c, "value"), where, path, 0, COOKIE_MAX, 1,
	             "a string of at most 4096 bytes (required)", errs))
		rc = -EINVAL;
	snprintf(path, sizeof path, "cookies[%zu].domain", i);
	if ((v = json_object_get(c, "domain")) &&
	    want_str(v, where, path, 1, 255, 1, "a host name such as \".example.org\"", errs))
		rc = -EINVAL;
	snprintf(path, sizeof path, "cookies[%zu].path", i);
	if ((v = json_object_get(c, "path")) && json_is_string(v) &&
	    json_string_value(v)[0] != '/') {
		errlist_add(errs, "%s: \"%s\": expected a path starting with /, got %s", where,
		            path, adapter_util_quote(v, q, sizeof q));
		rc = -EINVAL;
	} else if (v && want_str(v, where, path, 1, 1024, 1, "a path starting with /", errs)) {
		rc = -EINVAL;
	}
	snprintf(path, sizeof path, "cookies[%zu].secure", i);
	if ((v = json_object_get(c, "secure")) && adapter_util_bool(v, where, path, &k, errs))
		rc = -EINVAL;
	snprintf(path, sizeof path, "cookies[%zu].httpOnly", i);
	if ((v = json_object_get(c, "httpOnly")) && adapter_util_bool(v, where, path, &k, errs))
		rc = -EINVAL;
	snprintf(path, sizeof path, "cookies[%zu].expires", i);
	if ((v = json_object_get(c, "expires")) && !json_is_number(v)) {
		errlist_add(errs, "%s: \"%s\": expected a number (seconds since 1970), got %s",
		            where, path, adapter_util_quote(v, q, sizeof q));
		rc = -EINVAL;
	}
	snprintf(path, sizeof path, "cookies[%zu].sameSite", i);
	if ((v = json_object_get(c, "sameSite")) &&
	    adapter_util_one_of(v, same_site, where, path, &k, errs))
		rc = -EINVAL;
	if (rc != 0)
		return rc;
	if (!(copy = json_deep_copy(c)) ||
	    (!json_object_get(c, "domain") && json_object_set_new(copy, "url", json_string(url))) ||
	    json_array_append_new(list, copy) != 0)
		nomem();
	return 0;
}

static int check_cookies(const json_t *v, const char *where, target_spec_t *out, errlist_t *errs)
{
	const json_t *c;
	json_t *list;
	char q[96];
	size_t i;
	int rc = 0;

	if (!json_is_array(v) || json_array_size(v) > TARGETS_COOKIES_MAX) {
		errlist_add(errs,
		            "%s: \"cookies\": expected an array of at most %d cookies {\"name\", "
		            "\"value\", \"domain\"?, \"path\"?, ...}, got %s",
		            where, TARGETS_COOKIES_MAX, adapter_util_quote(v, q, sizeof q));
		return -EINVAL;
	}
	if (!(list = json_array()))
		nomem();
	json_array_foreach(v, i, c) if (check_cookie(c, i, where, out->url, list, errs)) rc =
	        -EINVAL;
	if (rc == 0 && !(out->cookies_json = json_dumps(list, JSON_COMPACT)))
		nomem();
	json_decref(list);
	return rc;
}

/* "WxH", each 100..10000 (as VIEWPORT). */
static int check_viewport(const json_t *v, const char *where, target_spec_t *out, errlist_t *errs)
{
	const char *s = json_string_value(v);
	char q[96], tail = 0;
	int w = 0, h = 0;

	if (s && strspn(s, "0123456789x") == strlen(s) &&
	    sscanf(s, "%5dx%5d%c", &w, &h, &tail) == 2 && w >= 100 && w <= 10000 && h >= 100 &&
	    h <= 10000) {
		out->viewport_width = w;
		out->viewport_height = h;
		return 0;
	}
	errlist_add(errs,
	            "%s: \"viewport\": expected \"WIDTHxHEIGHT\", each 100 to 10000 (e.g. "
	            "\"1280x800\"), got %s",
	            where, adapter_util_quote(v, q, sizeof q));
	return -EINVAL;
}

/* "adaptive": true: learn the page's JSON endpoint and read it without the browser
 * (runner/adapt.c). Only where one page read gives the target's whole data: not for a
 * listing, a watched page, or a page read with cookies or headers the endpoint's reads
 * (libcurl, no browser context) would not send. */
static int check_adaptive(const json_t *v, const json_t *obj, const char *where,
                          target_spec_t *out, errlist_t *errs)
{
	static const char *const not_with[] = { "cookies", "headers", NULL };

	if (adapter_util_bool(v, where, "adaptive", &out->adaptive, errs) != 0)
		return -EINVAL;
	if (!out->adaptive)
		return 0;
	if (out->discover || out->mode == TARGETS_WATCH) {
		errlist_add(errs,
		            "%s: \"adaptive\": only for a target read in navigate mode, not %s",
		            where, out->discover ? "a listing (\"discover\": true)"
		                                 : "a watched page (\"mode\": \"watch\")");
		return -EINVAL;
	}
	for (size_t i = 0; not_with[i]; i++)
		if (json_object_get(obj, not_with[i])) {
			errlist_add(errs,
			            "%s: \"adaptive\": not with \"%s\" (the endpoint is read "
			            "without the browser and would not send them)",
			            where, not_with[i]);
			return -EINVAL;
		}
	return 0;
}

int targets__page_parse(const json_t *obj, const adapter_t *ad, const char *where,
                        target_spec_t *out, errlist_t *errs)
{
	const json_t *v;
	char q[96];
	int rc = 0, k;

	if (ad && !ad->needs_browser) {
		for (size_t i = 0; targets__page_keys[i]; i++) {
			if (!json_object_get(obj, targets__page_keys[i]))
				continue;
			errlist_add(errs,
			            "%s: \"%s\": only for adapters that read the page in the "
			            "browser; \"%s\" fetches without one",
			            where, targets__page_keys[i], ad->name);
			rc = -EINVAL;
		}
		return rc;
	}
	if ((v = json_object_get(obj, "actions")) && check_actions(v, where, errs))
		rc = -EINVAL;
	if ((v = json_object_get(obj, "wait_for_state"))) {
		if (adapter_util_one_of(v, states, where, "wait_for_state", &k, errs) != 0)
			rc = -EINVAL;
		else
			out->wait_attached = k == 1;
	}
	if ((v = json_object_get(obj, "headers")) && check_headers(v, where, out, errs))
		rc = -EINVAL;
	if ((v = json_object_get(obj, "cookies")) && check_cookies(v, where, out, errs))
		rc = -EINVAL;
	if ((v = json_object_get(obj, "user_agent")) &&
	    want_str(v, where, "user_agent", 1, UA_MAX, 1,
	             "a non-empty string of at most 511 bytes without control characters", errs))
		rc = -EINVAL;
	if ((v = json_object_get(obj, "viewport")) && check_viewport(v, where, out, errs))
		rc = -EINVAL;
	if ((v = json_object_get(obj, "block_resources")) &&
	    (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	     !resource_list_valid(json_string_value(v), BLOCK_MAX))) {
		errlist_add(errs, "%s: \"block_resources\": expected %s, got %s", where,
		            RESOURCE_LIST_EXPECTED, adapter_util_quote(v, q, sizeof q));
		rc = -EINVAL;
	}
	if ((v = json_object_get(obj, "adaptive")) && check_adaptive(v, obj, where, out, errs))
		rc = -EINVAL;
	return rc;
}

void targets__page_borrow(target_spec_t *out)
{
	out->actions = json_object_get(out->json, "actions");
	out->user_agent = json_string_value(json_object_get(out->json, "user_agent"));
	out->block_resources = json_string_value(json_object_get(out->json, "block_resources"));
}

void targets__page_release(target_spec_t *t)
{
	free(t->headers_json);
	free(t->cookies_json);
	t->headers_json = NULL;
	t->cookies_json = NULL;
}

/* ---- script_file ---- */

/* Reads dir/rel (or rel when absolute) into a new string; errors name the path. */
static char *read_script(const char *dir, const char *rel, const char *where, errlist_t *errs)
{
	char path[PATH_MAX];
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd = -1;

	if ((size_t)snprintf(path, sizeof path, "%s%s%s", rel[0] == '/' ? "" : dir,
	                     rel[0] == '/' ? "" : "/", rel) >= sizeof path) {
		errlist_add(errs, "%s: \"script_file\": the path is too long", where);
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		errlist_add(errs, "%s: \"script_file\": %s: %s", where, path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > TARGETS_SCRIPT_MAX) {
		errlist_add(errs, "%s: \"script_file\": %s: %s", where, path,
		            S_ISREG(st.st_mode) ? "more than the 1 MiB a script may have"
		                                : "not a regular file");
		goto fail;
	}
	if (!(buf = malloc((size_t)st.st_size + 1)))
		nomem();
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			errlist_add(errs, "%s: \"script_file\": %s: %s", where, path,
			            r < 0 ? strerror(errno) : "the file shrank while it was read");
			goto fail;
		}
		len += (size_t)r;
	}
	buf[len] = '\0';
	close(fd);
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

/* One target object (or a "children" object, path "children"): its script_file. */
/* A script_file that could not be read has been reported: a stand-in "script" keeps the
 * script adapter from adding a second, wrong error about the same key ("read only from a
 * targets file"); the set is refused all the same. Only on a private copy (dir given). */
static int unread(json_t *t)
{
	if (json_object_set_new(t, "script", json_string("() => ({})")) != 0)
		nomem();
	return -EINVAL;
}

static int script_file_of(json_t *t, const char *dir, const char *where, int top,
                          errlist_t *errs)
{
	const json_t *f = json_object_get(t, "script_file");
	char q[96], *src;
	json_t *s;

	if (!f)
		return 0;
	if (!dir) {
		/* a target's own without "script" is refused by the script adapter (one error,
		 * not two); with one, or in children (not parsed before discovery), here */
		if (top && !json_object_get(t, "script"))
			return 0;
		errlist_add(errs,
		            "%s: \"script_file\": read only from a targets file (relative to its "
		            "directory); here give the source in \"script\"",
		            where);
		return -EINVAL;
	}
	if (json_object_get(t, "script")) {
		errlist_add(errs, "%s: give \"script\" or \"script_file\", not both", where);
		return -EINVAL;
	}
	if (!json_is_string(f) || json_string_length(f) == 0 ||
	    strlen(json_string_value(f)) != json_string_length(f)) {
		errlist_add(errs,
		            "%s: \"script_file\": expected a path relative to the targets file, "
		            "got %s",
		            where, adapter_util_quote(f, q, sizeof q));
		return unread(t);
	}
	if (!(src = read_script(dir, json_string_value(f), where, errs)))
		return unread(t);
	/* json_string refuses bytes that are not UTF-8: say so rather than "out of memory" */
	s = json_string(src);
	free(src);
	if (!s) {
		errlist_add(errs, "%s: \"script_file\": %s is not UTF-8 text", where,
		            json_string_value(f));
		return unread(t);
	}
	if (json_object_set_new(t, "script", s) != 0)
		nomem();
	return 0;
}

int targets__script_files(json_t *root, const char *dir, errlist_t *errs)
{
	json_t *list = json_is_object(root) ? json_object_get(root, "targets") : root, *t;
	size_t i;
	int rc = 0;

	if (!json_is_array(list))
		return 0;
	json_array_foreach(list, i, t)
	{
		char where[160], cwhere[180], q[96];
		json_t *ch = json_object_get(t, "children");
		if (!json_is_object(t))
			continue;
		if (json_is_string(json_object_get(t, "id")))
			snprintf(where, sizeof where, "targets[%zu] %s", i,
			         adapter_util_quote(json_object_get(t, "id"), q, sizeof q));
		else
			snprintf(where, sizeof where, "targets[%zu]", i);
		if (script_file_of(t, dir, where, 1, errs) != 0)
			rc = -EINVAL;
		snprintf(cwhere, sizeof cwhere, "%s: \"children\"", where);
		if (json_is_object(ch) && script_file_of(ch, dir, cwhere, 0, errs) != 0)
			rc = -EINVAL;
	}
	return rc;
}
