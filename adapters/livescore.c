/*
 * livescore: the adapter for the demo live-score site that cdpilot's fixture serves under
 * /live/ (tests/fixture/livesite.h). A target's url is a match page (/live/match/ID) or,
 * with "discover": true, the listing (/live/). No parameters besides the common keys.
 *
 * The match page renders its state into <div id="match" data-id data-version> with
 * #home, #away, #score (#score-home, #score-away), #minute, #status and #last-event, and
 * updates it in place by long-polling. extract_js reads those elements (integers as
 * numbers when the text is decimal digits, otherwise the text as is, so normalise can
 * say what it found); normalise checks every field and gives the data:
 *   {"id": "7", "home": "Lions", "away": "Tigers", "score": {"home": 1, "away": 0},
 *    "minute": 23, "status": "live", "last_event": "23' goal Lions", "version": 2024}
 * classify: live -> live, upcoming -> imminent, finished -> completed.
 *
 * discover_js reads the listing's rows (.match[data-id] with data-status and a link) as
 * [{id, url, status}...]; discover() turns them into targets {"id": "<parent>-<id>",
 * "adapter": "livescore", "url": <absolute match URL>, "class": <from status>}. Any bad
 * entry fails the whole discovery with a reason naming it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/adapter.h"
#include "adapters/adapter_util.h"

#define TEAM_MAX 100       /* bytes of a team name */
#define EVENT_MAX 200      /* bytes of the last event */
#define MATCH_ID_MAX 16    /* bytes of a match id */
#define URL_MAX 2047       /* the targets file's limit */
#define TARGET_ID_MAX 64   /* the targets file's limit */
#define DISCOVER_MAX 10000 /* entries on one listing */
#define MINUTE_MAX 130
#define GOALS_MAX 999

static const char *const param_keys[] = { NULL };

static const char extract_js[] =
        "(() => {\n"
        "  const q = (s) => document.querySelector(s);\n"
        "  const text = (s) => { const e = q(s); return e ? e.textContent.trim() : null; };\n"
        "  const num = (t) => (typeof t === 'string' && /^-?[0-9]{1,15}$/.test(t)) ? "
        "Number(t) : t;\n"
        "  const root = q('#match');\n"
        "  return {\n"
        "    id: root ? root.getAttribute('data-id') : null,\n"
        "    home: text('#home'),\n"
        "    away: text('#away'),\n"
        "    score: { home: num(text('#score-home')), away: num(text('#score-away')) },\n"
        "    minute: num(text('#minute')),\n"
        "    status: text('#status'),\n"
        "    last_event: text('#last-event'),\n"
        "    version: num(root ? root.getAttribute('data-version') : null)\n"
        "  };\n"
        "})()";

static const char discover_js[] =
        "(() => Array.from(document.querySelectorAll('.match[data-id]')).map((e) => {\n"
        "  const a = e.querySelector('a[href]');\n"
        "  return { id: e.getAttribute('data-id'), url: a ? a.href : null,\n"
        "           status: e.getAttribute('data-status') };\n"
        "}))()";

static const char *const statuses[] = { "live", "upcoming", "finished", NULL };
/* by index in statuses */
static const enum sched_class status_class[] = { SCHED_LIVE, SCHED_IMMINENT, SCHED_COMPLETED };

/* The state of a listing target (one with "discover": true): a static marker, never freed.
 * Other targets have none (NULL). */
static const char listing_state;

static int ls_parse(const json_t *target, const char *where, void **state, errlist_t *errs)
{
	*state = json_is_true(json_object_get(target, "discover")) ? (void *)&listing_state : NULL;
	return 0;
}

/* A match page waits for its score; the listing is rendered by the server (readable at the
 * load event), so it waits for nothing. */
static const char *ls_wait_for(const void *state)
{
	return state == &listing_state ? NULL : "#score[data-version]";
}

static const char *ls_extract_js(const void *state)
{
	return extract_js;
}

static const char *ls_discover_js(const void *state)
{
	return discover_js;
}

static const char *ls_watch_root(const void *state)
{
	return "#match";
}

static int status_index(const char *s)
{
	return adapter_util_name_index(s, statuses);
}

/* A string of 1..max bytes (0..max if may_be_empty) without NUL; else why. */
static const char *want_string(const json_t *obj, const char *key, const char *path, size_t max,
                               int may_be_empty, char *why, size_t whylen)
{
	const json_t *v = json_object_get(obj, key);
	char q[96];

	if (json_is_string(v) && json_string_length(v) <= max &&
	    (may_be_empty || json_string_length(v) > 0) &&
	    strlen(json_string_value(v)) == json_string_length(v))
		return json_string_value(v);
	snprintf(why, whylen, "field \"%s\": expected a string of %d to %zu bytes, got %s", path,
	         may_be_empty ? 0 : 1, max, adapter_util_quote(v, q, sizeof q));
	return NULL;
}

/* An integer in [min, max]; else why. Returns 0 or -1. */
static int want_int(const json_t *obj, const char *key, const char *path, json_int_t min,
                    json_int_t max, json_int_t *out, char *why, size_t whylen)
{
	const json_t *v = json_object_get(obj, key);
	char q[96];

	if (json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max) {
		*out = json_integer_value(v);
		return 0;
	}
	snprintf(why, whylen, "field \"%s\": expected an integer from %lld to %lld, got %s", path,
	         (long long)min, (long long)max, adapter_util_quote(v, q, sizeof q));
	return -1;
}

/* A match id: 1..MATCH_ID_MAX decimal digits. */
static int match_id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > MATCH_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (id[i] < '0' || id[i] > '9')
			return 0;
	return 1;
}

static json_t *ls_normalise(const void *state, const json_t *raw, char *why, size_t whylen)
{
	const char *id, *home, *away, *status, *event;
	const json_t *score;
	json_int_t sh, sa, minute, version;
	json_t *data;
	char q[96];

	if (!json_is_object(raw)) {
		snprintf(why, whylen,
		         "expected an object {id, home, away, score, minute, status, "
		         "last_event, version} from the match page, got %s",
		         adapter_util_quote(raw, q, sizeof q));
		return NULL;
	}
	if (!(id = want_string(raw, "id", "id", MATCH_ID_MAX, 0, why, whylen)))
		return NULL;
	if (!match_id_valid(id)) {
		snprintf(why, whylen, "field \"id\": expected 1 to %d decimal digits, got %s",
		         MATCH_ID_MAX, adapter_util_quote(json_object_get(raw, "id"), q, sizeof q));
		return NULL;
	}
	if (!(home = want_string(raw, "home", "home", TEAM_MAX, 0, why, whylen)) ||
	    !(away = want_string(raw, "away", "away", TEAM_MAX, 0, why, whylen)))
		return NULL;
	score = json_object_get(raw, "score");
	if (!json_is_object(score)) {
		snprintf(why, whylen, "field \"score\": expected an object {home, away}, got %s",
		         adapter_util_quote(score, q, sizeof q));
		return NULL;
	}
	if (want_int(score, "home", "score.home", 0, GOALS_MAX, &sh, why, whylen) < 0 ||
	    want_int(score, "away", "score.away", 0, GOALS_MAX, &sa, why, whylen) < 0 ||
	    want_int(raw, "minute", "minute", 0, MINUTE_MAX, &minute, why, whylen) < 0)
		return NULL;
	if (!(status = want_string(raw, "status", "status", 16, 0, why, whylen)) ||
	    status_index(status) < 0) {
		snprintf(
		        why, whylen,
		        "field \"status\": expected \"upcoming\", \"live\" or \"finished\", got %s",
		        adapter_util_quote(json_object_get(raw, "status"), q, sizeof q));
		return NULL;
	}
	if (!(event = want_string(raw, "last_event", "last_event", EVENT_MAX, 1, why, whylen)))
		return NULL;
	if (want_int(raw, "version", "version", 0, (json_int_t)1 << 62, &version, why, whylen) < 0)
		return NULL;
	data = json_pack("{s:s, s:s, s:s, s:{s:I, s:I}, s:I, s:s, s:s, s:I}", "id", id, "home",
	                 home, "away", away, "score", "home", sh, "away", sa, "minute", minute,
	                 "status", status, "last_event", event, "version", version);
	if (!data)
		snprintf(why, whylen, "out of memory");
	return data;
}

static int ls_classify(const void *state, const json_t *data)
{
	int i = status_index(json_string_value(json_object_get(data, "status")));

	return i < 0 ? -1 : (int)status_class[i];
}

/* An absolute http(s) URL of at most URL_MAX bytes without spaces or control bytes. */
static int url_valid(const char *u, size_t len)
{
	const char *host;

	if (len > URL_MAX || strlen(u) != len)
		return 0;
	if (strncmp(u, "http://", 7) == 0)
		host = u + 7;
	else if (strncmp(u, "https://", 8) == 0)
		host = u + 8;
	else
		return 0;
	if (*host == '\0' || *host == '/')
		return 0;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* The match id of listing entry e (index i) as decimal digits in *mid (written into buf
 * when the page gave a number); else why. */
static int entry_match_id(const json_t *e, size_t i, char *buf, size_t buflen, const char **mid,
                          char *why, size_t whylen)
{
	const json_t *jid = json_object_get(e, "id");
	char q[96];

	if (json_is_integer(jid) && json_integer_value(jid) > 0) {
		snprintf(buf, buflen, "%lld", (long long)json_integer_value(jid));
		*mid = buf;
		return 0;
	}
	if (json_is_string(jid) && json_string_length(jid) <= MATCH_ID_MAX &&
	    match_id_valid(json_string_value(jid))) {
		*mid = json_string_value(jid);
		return 0;
	}
	snprintf(why, whylen,
	         "listing[%zu]: \"id\": expected a match id (1 to %d "
	         "decimal digits), got %s",
	         i, MATCH_ID_MAX, adapter_util_quote(jid, q, sizeof q));
	return -EINVAL;
}

/* Listing entry e (index i) -> a target appended to out; seen holds the target ids so
 * far. Returns 0, -EINVAL (bad entry, with why) or -ENOMEM. */
static int discover_entry(const void *ctx, const json_t *e, size_t i, const char *parent_id,
                          json_t *seen, json_t *out, char *why, size_t whylen)
{
	const json_t *jurl, *jst;
	char tid[TARGET_ID_MAX + 16], path[32], q[96];
	const char *mid;
	int si;
	json_t *t;

	if (!json_is_object(e)) {
		snprintf(why, whylen, "listing[%zu]: expected an object {id, url, status}, got %s",
		         i, adapter_util_quote(e, q, sizeof q));
		return -EINVAL;
	}
	if (entry_match_id(e, i, path, sizeof path, &mid, why, whylen) != 0)
		return -EINVAL;
	if ((size_t)snprintf(tid, sizeof tid, "%s-%s", parent_id, mid) > TARGET_ID_MAX) {
		snprintf(why, whylen, "listing[%zu]: target id \"%s-%s\" is over %d bytes", i,
		         parent_id, mid, TARGET_ID_MAX);
		return -EINVAL;
	}
	if (json_object_get(seen, tid)) {
		snprintf(why, whylen, "listing[%zu]: match \"%s\" is listed twice", i, mid);
		return -EINVAL;
	}
	jurl = json_object_get(e, "url");
	if (!json_is_string(jurl) ||
	    !url_valid(json_string_value(jurl), json_string_length(jurl))) {
		snprintf(why, whylen,
		         "listing[%zu] (match \"%s\"): \"url\": expected an "
		         "absolute http:// or https:// URL of at most %d bytes, got %s",
		         i, mid, URL_MAX, adapter_util_quote(jurl, q, sizeof q));
		return -EINVAL;
	}
	jst = json_object_get(e, "status");
	si = status_index(json_string_value(jst));
	if (si < 0) {
		snprintf(why, whylen,
		         "listing[%zu] (match \"%s\"): \"status\": expected "
		         "\"upcoming\", \"live\" or \"finished\", got %s",
		         i, mid, adapter_util_quote(jst, q, sizeof q));
		return -EINVAL;
	}
	t = json_pack("{s:s, s:s, s:O, s:s}", "id", tid, "adapter", "livescore", "url", jurl,
	              "class", sched_class_name(status_class[si]));
	if (!t || json_array_append_new(out, t) != 0 ||
	    json_object_set_new(seen, tid, json_true()) != 0)
		return -ENOMEM;
	return 0;
}

static json_t *ls_discover(const void *state, const json_t *raw, const char *parent_id, char *why,
                           size_t whylen)
{
	char q[96];

	if (!parent_id || !*parent_id || strlen(parent_id) >= TARGET_ID_MAX) {
		snprintf(why, whylen, "parent id must be 1 to %d bytes", TARGET_ID_MAX - 1);
		return NULL;
	}
	if (!json_is_array(raw)) {
		snprintf(why, whylen,
		         "expected an array of {id, url, status} from the listing, "
		         "got %s",
		         adapter_util_quote(raw, q, sizeof q));
		return NULL;
	}
	if (json_array_size(raw) > DISCOVER_MAX) {
		snprintf(why, whylen, "the listing has %zu matches, at most %d are taken",
		         json_array_size(raw), DISCOVER_MAX);
		return NULL;
	}
	return adapter_util_discover_each(raw, discover_entry, NULL, parent_id, why, whylen);
}

const adapter_t adapter_livescore = {
	.name = "livescore",
	.summary = "the demo live-score site (cdpilot's fixture, /live/): match pages and "
	           "discovery from the listing",
	.needs_browser = 1,
	.param_keys = param_keys,
	.parse = ls_parse,
	.free_state = NULL,
	.build_url = NULL,
	.wait_for = ls_wait_for,
	.extract_js = ls_extract_js,
	.normalise = ls_normalise,
	.classify = ls_classify,
	.discover_js = ls_discover_js,
	.discover = ls_discover,
	.watch_root = ls_watch_root,
};
