/*
 * config: the settings table, flags into the environment, the environment's near misses
 * and empty values, and the effective configuration. See config.h.
 */
#include "daemon/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

/* ---- checks for the settings no module validates when it reads them ---- */

static int check_cdp_url(const char *v, char *why, size_t whylen)
{
	const char *host = NULL;

	if (strncmp(v, "ws://", 5) == 0)
		host = v + 5;
	else if (strncmp(v, "http://", 7) == 0)
		host = v + 7;
	if (host && *host && *host != '/' && *host != ':' && !strpbrk(v, " \t\r\n"))
		return 0;
	snprintf(why, whylen, "expected ws://HOST:PORT/PATH or http://HOST:PORT");
	return -EINVAL;
}

static int check_chromium_path(const char *v, char *why, size_t whylen)
{
	struct stat st;

	if (stat(v, &st) == 0 && S_ISREG(st.st_mode) && access(v, X_OK) == 0)
		return 0;
	snprintf(why, whylen, "expected the path of an executable file");
	return -EINVAL;
}

static int check_chromium_flags(const char *v, char *why, size_t whylen)
{
	const char *p = v;

	for (;;) {
		p += strspn(p, " \t\r\n");
		if (!*p)
			return 0;
		if (*p != '-')
			break;
		p += strcspn(p, " \t\r\n");
	}
	snprintf(why, whylen,
	         "expected Chromium switches, each starting with '-', separated "
	         "by spaces");
	return -EINVAL;
}

/* ---- the table ---- */

#define EMPTY_OK CONFIG_EMPTY_OK

/* One row per setting: {ENV, --flag, group, default, range, meaning, flags, check}.
 * docs/configuration.md has the same rows (tests/docs/check_config_docs.sh compares). */
/* clang-format off */
static const config_setting_t settings[] = {
	{ "LOG_LEVEL", "--log-level", "logging", "info", "debug, info, warn, error or off", "least severe log event written to stderr", 0, NULL },
	{ "LOG_FORMAT", "--log-format", "logging", "text", "text or json", "text lines, or one JSON object per line", 0, NULL },

	{ "CHROMIUM_PATH", "--chromium-path", "browser", "(the first of chromium-headless-shell, chromium, chromium-browser, google-chrome-stable, google-chrome on PATH)", "an executable file", "the Chromium executable", 0, check_chromium_path },
	{ "CHROMIUM_FLAGS", "--chromium-flags", "browser", "(none; the image sets --no-sandbox)", "Chromium switches separated by spaces; empty: none", "extra Chromium switches; --disable-features= lists are merged with cdpilot's own", EMPTY_OK, check_chromium_flags },
	{ "CDP_URL", "--cdp-url", "browser", "(none: launch Chromium)", "ws://HOST:PORT/PATH or http://HOST:PORT", "attach to a running browser instead of launching one", 0, check_cdp_url },
	{ "CDP_MAX_MESSAGE_MB", "--cdp-max-message-mb", "browser", "64", "1 to 1024", "largest CDP message either way, in MiB; a message over it fails alone", 0, NULL },

	{ "CONCURRENCY_CAP", "--concurrency-cap", "pool", "8", "1 to 256", "browser contexts leased at once; further requests wait in FIFO order", 0, NULL },
	{ "WATCH_OPEN_CONCURRENCY", "--watch-open-concurrency", "pool", "4", "1 to 256", "watched pages opening at once (each a renderer started and a page loaded); the others wait their turn, so that hundreds of watched targets starting together do not starve Chromium", 0, NULL },
	{ "LEASE_TIMEOUT_SECONDS", "--lease-timeout-seconds", "pool", "60", "1 to 86400", "how long a request may wait for a free context", 0, NULL },
	{ "TASK_TIMEOUT_SECONDS", "--task-timeout-seconds", "pool", "30", "1 to 3600", "deadline of a whole task; past it the context is disposed and the task fails with timeout", 0, NULL },
	{ "RECYCLE_UPTIME_SECONDS", "--recycle-uptime-seconds", "pool", "21600", "0 (never) to 2592000", "replace the browser after this long; the new one is ready before the old one drains", 0, NULL },
	{ "RECYCLE_TASK_COUNT", "--recycle-task-count", "pool", "5000", "0 (never) to 100000000", "replace the browser after this many tasks", 0, NULL },
	{ "BROWSER_IDLE_SECONDS", "--browser-idle-seconds", "pool", "300", "0 (never) to 86400", "close the browser once no target held needs one and no lease has been in use for this long; it is launched again when one does", 0, NULL },
	{ "PAGE_REUSE", "--page-reuse", "pool", "50", "1 to 100000", "tasks one page (and its browser context) serves: a page whose task ended well is kept, and the next task of the same site (scheme, host, port) with the same page settings navigates it instead of opening a new context and renderer (most of a small page's cost); its loads share that site's cookies and storage as a browser tab's would, but never read the HTTP cache or a service worker (every request goes to the network, as from a new context). 1: a fresh context for every task", 0, NULL },
	{ "PAGE_IDLE_SECONDS", "--page-idle-seconds", "pool", "30", "1 to 3600", "a kept page unused this long is disposed; a kept page also goes when a task of another site needs its slot, or when the browser is recycled", 0, NULL },
	{ "BLOCK_RESOURCES", "--block-resources", "pool", "image,media,font", "none, or a comma-separated list of document, stylesheet, image, media, font, script, texttrack, xhr, fetch, eventsource, websocket, manifest, other", "resource types failed before they load", 0, NULL },
	{ "USER_AGENT", "--user-agent", "pool", "(Chromium's)", "at most 511 characters; empty: Chromium's", "user agent of every page", EMPTY_OK, NULL },
	{ "VIEWPORT", "--viewport", "pool", "1280x800", "WIDTHxHEIGHT, each 100 to 10000", "viewport of every page", 0, NULL },
	{ "EXTRA_HEADERS", "--extra-headers", "pool", "(none)", "a JSON object of string values; empty: none", "extra request headers of every page", EMPTY_OK, NULL },

	{ "LIVE_INTERVAL_SECONDS", "--live-interval-seconds", "scheduler", "5", "0.1 to 86400", "how often a live target is scraped", 0, NULL },
	{ "IMMINENT_INTERVAL_SECONDS", "--imminent-interval-seconds", "scheduler", "60", "0.1 to 86400", "how often an imminent target is scraped", 0, NULL },
	{ "COMPLETED_INTERVAL_SECONDS", "--completed-interval-seconds", "scheduler", "900", "0.1 to 86400", "how often a completed target is scraped", 0, NULL },
	{ "MAX_QUEUE_DEPTH", "--max-queue-depth", "scheduler", "1000", "1 to 1000000", "due tasks waiting for a context; past it the lowest class is dropped first", 0, NULL },
	{ "RETRY_MAX_TRIES", "--retry-max-tries", "scheduler", "3", "0 to 100", "retries of a failed task before it waits for its next interval", 0, NULL },
	{ "RETRY_BASE_MS", "--retry-base-ms", "scheduler", "1000", "1 to 3600000", "backoff of the first retry in milliseconds (full jitter), doubled at each retry", 0, NULL },
	{ "RETRY_CAP_MS", "--retry-cap-ms", "scheduler", "60000", "RETRY_BASE_MS to 86400000", "longest retry backoff in milliseconds", 0, NULL },
	{ "FAIL_BACKOFF_CAP_SECONDS", "--fail-backoff-cap-seconds", "scheduler", "300", "0 to 86400", "longest time between two runs of a target whose runs keep failing: after its retries fail twice in a row it is put off twice its interval, then four times, up to this (never below its interval); 0: no backoff beyond the interval; a success resets it", 0, NULL },
	{ "HOST_CONCURRENCY", "--host-concurrency", "scheduler", "4", "1 to 1024", "tasks running at once against one host", 0, NULL },
	{ "HOST_MIN_INTERVAL_MS", "--host-min-interval-ms", "scheduler", "0", "0 to 3600000", "least time between two task starts on one host, in milliseconds", 0, NULL },

	{ "HEALTH_WINDOW_SECONDS", "--health-window-seconds", "health", "300", "0 to 86400", "after a degraded or failing grade, health stays recovering for this long; 0: never recovering", 0, NULL },
	{ "HEALTH_DEGRADED_MEDIAN_SECONDS", "--health-degraded-median-seconds", "health", "60", "0.1 to 86400", "median target data age at which health is degraded", 0, NULL },
	{ "HEALTH_DEGRADED_P95_SECONDS", "--health-degraded-p95-seconds", "health", "60", "0.1 to 86400", "95th percentile target data age at which health is degraded", 0, NULL },
	{ "HEALTH_FAILING_MAX_SECONDS", "--health-failing-max-seconds", "health", "120", "0.1 to 86400", "oldest target data age at which health is failing", 0, NULL },
	{ "STALL_SECONDS", "--stall-seconds", "health", "90", "0.1 to 86400", "time without any success while work is due after which health is failing and the browser is recycled", 0, NULL },

	{ "WATCHDOG_INTERVAL_SECONDS", "--watchdog-interval-seconds", "watchdog", "10", "1 to 3600", "how often the process tree is scanned", 0, NULL },
	{ "PID_THRESHOLD", "--pid-threshold", "watchdog", "200", "10 to 100000", "processes in the tree past which the browser is recycled", 0, NULL },
	{ "BROWSER_RSS_LIMIT_MB", "--browser-rss-limit-mb", "watchdog", "0", "0 (none) or 64 to 1048576", "browser tree memory in MiB past which the browser is recycled", 0, NULL },
	{ "PIDS_HEADROOM_PERCENT", "--pids-headroom-percent", "watchdog", "80", "50 to 99", "share of the cgroup's pids.max past which new leases stop and the browser is recycled", 0, NULL },
	{ "ORPHAN_GRACE_SECONDS", "--orphan-grace-seconds", "watchdog", "5", "1 to 600", "age of a re-parented orphan before it is killed", 0, NULL },

	{ "METRICS_ADDR", "--metrics-addr", "endpoints", "127.0.0.1:9464", "IPv4:PORT or [IPv6]:PORT", "where /metrics, /status, /healthz and /readyz listen", 0, NULL },
	{ "METRICS_MAX_CONNS", "--metrics-max-conns", "endpoints", "64", "1 to 4096", "HTTP connections open at once", 0, NULL },
	{ "METRICS_MAX_HEAD_BYTES", "--metrics-max-head-bytes", "endpoints", "8192", "1024 to 65536", "largest HTTP request head", 0, NULL },
	{ "METRICS_IDLE_TIMEOUT_MS", "--metrics-idle-timeout-ms", "endpoints", "10000", "100 to 600000", "an HTTP request head with no new byte for this many milliseconds is answered 408; a response not taken for as long is cut", 0, NULL },
	{ "METRICS_HEAD_TIMEOUT_MS", "--metrics-head-timeout-ms", "endpoints", "3000", "100 to 600000", "an HTTP request head not complete this many milliseconds after the connection is answered 408", 0, NULL },

	{ "TARGETS_FILE", "--targets", "daemon", "(none: required)", "a JSON targets file (docs/targets.md)", "the targets to keep fresh; SIGHUP re-reads it, and so does a change of it (TARGETS_WATCH_MS)", 0, NULL },
	{ "TARGETS_WATCH_MS", "--targets-watch-ms", "daemon", "300", "0 (not watched: SIGHUP only) or 10 to 60000", "the targets file and its directory are watched; once changes to the file (a write, a rename over it) have been quiet this many milliseconds it is re-read as on SIGHUP", 0, NULL },
	{ "OUTPUT", "--output", "daemon", "(none: no JSON-lines sink)", "a file, or - for stdout; empty: none", "JSON-lines sink for snapshots and deltas", EMPTY_OK, NULL },
	{ "WATCH_CAP", "--watch-cap", "daemon", "64", "1 to 1024", "watched pages (mode watch) open at once", 0, NULL },
	{ "FETCH_CONCURRENCY", "--fetch-concurrency", "daemon", "16", "1 to 1024", "fetch tasks (adapters that need no browser, e.g. jsonapi) running at once; browser tasks are bounded by CONCURRENCY_CAP alone", 0, NULL },
	{ "FAILING_LEASE_PERCENT", "--failing-lease-percent", "daemon", "50", "1 to 100", "share of CONCURRENCY_CAP (and of FETCH_CONCURRENCY) that targets whose last run failed may hold at once (at least one), so that targets that hang until their deadline cannot starve the healthy ones", 0, NULL },
	{ "WATCH_FRAMES", "--watch-frames", "daemon", "on", "on or off", "off: watched pages get no frames (never painted nor composited; requestAnimationFrame never runs): about a third less Chromium CPU and a quarter less memory per watched page, for pages that render from timers and network callbacks (docs/scaling.md)", 0, NULL },
	{ "WATCH_RELOAD_SECONDS", "--watch-reload-seconds", "daemon", "600", "1 to 86400", "a watched page is reloaded after this long", 0, NULL },
	{ "WATCH_VERIFY_UNCHANGED_SECONDS", "--watch-verify-unchanged-seconds", "daemon", "0", "0 (three times the target's interval) to 86400", "a watched page whose data has not changed this long is read once more in a fresh context and compared; a difference means the page is frozen: the fresh data is published and the page reloaded", 0, NULL },
	{ "WATCH_VERIFY_SECONDS", "--watch-verify-seconds", "daemon", "60", "0 (never: watched reads are not verified) to 86400", "every watched page is verified that way at least this often", 0, NULL },
	{ "ADAPTIVE_VERIFY_SECONDS", "--adaptive-verify-seconds", "daemon", "60", "1 to 86400", "an adaptive target reading its learned JSON endpoint is checked against its page this often (a page read, then an endpoint read); its endpoint reads count as verified only while the last check agreed within 1.5 times this (docs/targets.md)", 0, NULL },
	{ "WATCH_FROZEN_NAVIGATE_SECONDS", "--watch-frozen-navigate-seconds", "daemon", "600", "1 to 86400", "a target whose watched page froze three times in a row is read in navigate mode this long, then watched again", 0, NULL },
	{ "TARGET_ALLOW", "--target-allow", "daemon", "(none: any host TARGET_DENY does not refuse)", "a comma-separated list of IPv4/IPv6 networks (192.0.2.0/24, 2001:db8::/32), host names (example.com) and subdomain patterns (*.example.com)", "when set, a target's URL host must match one entry, or the target is refused (docs/targets.md)", 0, NULL },
	{ "TARGET_DENY", "--target-deny", "daemon", "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,100.100.100.200/32,metadata.google.internal,metadata", "the same kind of list; its entries are added to the default, and the entry none drops the default", "a target's URL host (and, for fetch targets, every address it resolves to) matching an entry is refused; loopback and private ranges are allowed unless listed (docs/targets.md)", 0, NULL },
	{ "DISCOVER_MAX_CHILDREN", "--discover-max-children", "daemon", "500", "1 to 100000", "targets one discovering target may have; past it the first ones on its listing are kept, and its snapshot's listed says how many it had", 0, NULL },
	{ "EXIT_ON_HEALTH_FAILURE", "--exit-on-health-failure", "daemon", "0", "0 or 1", "1: exit non-zero once health has been failing for HEALTH_FAILURE_EXIT_SECONDS", 0, NULL },
	{ "HEALTH_FAILURE_EXIT_SECONDS", "--health-failure-exit-seconds", "daemon", "300", "1 to 86400", "how long health must be failing before that exit", 0, NULL },

	{ "REDIS_URL", "--redis-url", "store", "(none: no Redis)", "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or unix:///PATH[?db=N&user=U&password=P]", "publish snapshots, deltas and health to this Redis server, and read targets from its hash too", CONFIG_URL_SECRET, NULL },
	{ "REDIS_PREFIX", "--redis-prefix", "store", "cdpilot", "1 to 63 characters of A-Z a-z 0-9 _ . : -", "first part of every Redis key", 0, NULL },
	{ "SNAPSHOT_TTL_SECONDS", "--snapshot-ttl-seconds", "store", "0", "0 (no expiry) to 31536000", "expiry of each target's latest snapshot in Redis", 0, NULL },
	{ "CHANGES_MAXLEN", "--changes-maxlen", "store", "100000", "1 to 1000000000", "approximate length cap of the stream of deltas", 0, NULL },
	{ "STORE_BACKLOG_MAX", "--store-backlog-max", "store", "100000", "1 to 10000000", "targets whose latest snapshot is kept while Redis is unreachable; past it the least recently updated is dropped", 0, NULL },
	{ "REDIS_TIMEOUT_MS", "--redis-timeout-ms", "store", "2000", "100 to 600000", "a Redis command unanswered this long: the connection is dropped as unresponsive (health says so), results wait in the backlog, a write that reaches Redis later does nothing", 0, NULL },
	{ "SCHEDULE", "--schedule", "store", "local", "local or redis (redis needs REDIS_URL)", "redis: instances on the same Redis and prefix share the targets, each scraped by one instance at a time", 0, NULL },
	{ "SCHEDULE_LEASE_SECONDS", "--schedule-lease-seconds", "store", "15", "2 to 3600", "with SCHEDULE=redis: an instance silent this long loses its targets to the others", 0, NULL },
	{ "SCHEDULE_INSTANCE", "--schedule-instance", "store", "(HOSTNAME-PID)", "1 to 64 of A-Z a-z 0-9 _ . -, unique per instance", "with SCHEDULE=redis: this instance's name in Redis", 0, NULL },
};
/* clang-format on */

#define NSETTINGS (sizeof settings / sizeof settings[0])

static unsigned char g_from_flag[NSETTINGS];

const config_setting_t *config_settings(size_t *n)
{
	*n = NSETTINGS;
	return settings;
}

const config_setting_t *config_find_env(const char *name)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].env, name) == 0)
			return &settings[i];
	return NULL;
}

/* Length of "--name" in "--name=value". */
static size_t flag_name_len(const char *arg)
{
	return strcspn(arg, "=");
}

const config_setting_t *config_find_flag(const char *arg)
{
	size_t n = flag_name_len(arg);

	for (size_t i = 0; i < NSETTINGS; i++)
		if (strlen(settings[i].flag) == n && strncmp(settings[i].flag, arg, n) == 0)
			return &settings[i];
	return NULL;
}

void config_reset(void)
{
	memset(g_from_flag, 0, sizeof g_from_flag);
}

/* ---- near misses ---- */

#define DIST_MAXLEN 64

static unsigned min3(unsigned a, unsigned b, unsigned c)
{
	unsigned m = a < b ? a : b;
	return m < c ? m : c;
}

/* Levenshtein distance of a[0..la) and b[0..lb), case ignored; 9 past 8 or 64 chars. */
static unsigned distance_n(const char *a, size_t la, const char *b, size_t lb)
{
	unsigned row[DIST_MAXLEN + 1], prev_diag, tmp;

	if (la > DIST_MAXLEN || lb > DIST_MAXLEN || (la > lb ? la - lb : lb - la) > 8)
		return 9;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		prev_diag = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			int same = toupper((unsigned char)a[i - 1]) ==
			           toupper((unsigned char)b[j - 1]);
			tmp = row[j];
			row[j] = min3(row[j] + 1, row[j - 1] + 1, prev_diag + (same ? 0 : 1));
			prev_diag = tmp;
		}
	}
	return row[lb] > 8 ? 9 : row[lb];
}

unsigned config_distance(const char *a, const char *b)
{
	return distance_n(a, strlen(a), b, strlen(b));
}

/* The closest setting within max_d of name[0..len) by env name (or flag), or NULL. */
static const config_setting_t *closest(const char *name, size_t len, int by_flag, unsigned max_d)
{
	const config_setting_t *best = NULL;
	unsigned best_d = max_d + 1;

	for (size_t i = 0; i < NSETTINGS; i++) {
		const char *k = by_flag ? settings[i].flag : settings[i].env;
		unsigned d = distance_n(name, len, k, strlen(k));
		if (d < best_d) {
			best_d = d;
			best = &settings[i];
		}
	}
	return best;
}

/* ---- flags ---- */

int config_apply_flags(int *argc, char **argv, errlist_t *errs)
{
	unsigned before = errs->count;
	int in = 1, out = 1;

	while (in < *argc) {
		char *arg = argv[in];
		const config_setting_t *s;
		size_t n;

		if (strcmp(arg, "--") == 0) {
			while (in < *argc)
				argv[out++] = argv[in++];
			break;
		}
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
			argv[out++] = argv[in++];
			continue;
		}
		n = flag_name_len(arg);
		s = config_find_flag(arg);
		if (s) {
			const char *val = NULL;
			if (arg[n] == '=') {
				val = arg + n + 1;
				in++;
			} else if (in + 1 < *argc) {
				val = argv[in + 1];
				in += 2;
			} else {
				errlist_add(errs, "%s: expected a value (%s)", arg, s->range);
				in++;
				continue;
			}
			if (setenv(s->env, val, 1) != 0) {
				errlist_add(errs, "%s='%s': cannot set %s: %s", s->flag, val,
				            s->env, strerror(errno));
				continue;
			}
			g_from_flag[s - settings] = 1;
			continue;
		}
		s = closest(arg, n, 1, 2);
		if (!s) {
			argv[out++] = argv[in++];
			continue;
		}
		errlist_add(errs, "unknown option %.*s (did you mean %s?)", (int)n, arg, s->flag);
		in++;
		/* Its value goes with it, so that it is not read as a stray argument. */
		if (arg[n] != '=' && in < *argc && argv[in][0] != '-')
			in++;
	}
	*argc = out;
	argv[out] = NULL;
	return errs->count > before ? -EINVAL : 0;
}

/* ---- the environment ---- */

int config_check_env(errlist_t *errs)
{
	unsigned before = errs->count;

	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
		const config_setting_t *s;
		int known = 0;

		if (n < 6 || !memchr(*e, '_', n))
			continue;
		for (size_t i = 0; i < NSETTINGS && !known; i++)
			known = strlen(settings[i].env) == n &&
			        strncmp(settings[i].env, *e, n) == 0;
		if (known)
			continue;
		s = closest(*e, n, 0, 2);
		if (s)
			errlist_add(errs, "unknown setting %.*s (did you mean %s?)", (int)n, *e,
			            s->env);
	}
	for (size_t i = 0; i < NSETTINGS; i++) {
		const config_setting_t *s = &settings[i];
		const char *v = getenv(s->env);
		char why[256] = "";

		if (!v)
			continue;
		if (!*v && !(s->flags & CONFIG_EMPTY_OK)) {
			errlist_add(errs, "%s='': empty; expected %s (unset it for the default)",
			            s->env, s->range);
			unsetenv(s->env);
			continue;
		}
		if (*v && s->check && s->check(v, why, sizeof why) != 0)
			errlist_add(errs, "%s='%.200s': %s", s->env, v, why);
	}
	return errs->count > before ? -EINVAL : 0;
}

enum config_source config_source(const config_setting_t *s)
{
	if (s < settings || s >= settings + NSETTINGS)
		return CONFIG_SRC_DEFAULT;
	if (g_from_flag[s - settings])
		return CONFIG_SRC_FLAG;
	return getenv(s->env) ? CONFIG_SRC_ENV : CONFIG_SRC_DEFAULT;
}

const char *config_source_name(enum config_source src)
{
	switch (src) {
	case CONFIG_SRC_ENV: return "env";
	case CONFIG_SRC_FLAG: return "flag";
	default: return "default";
	}
}

void config_redact_url(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://"), *at, *colon, *q;
	size_t len = 0;

	if (!outlen)
		return;
	out[0] = '\0';
#define PUT(s, n)                              \
	do {                                   \
		size_t n_ = (n);               \
		if (len + n_ >= outlen)        \
			n_ = outlen - 1 - len; \
		memcpy(out + len, (s), n_);    \
		len += n_;                     \
		out[len] = '\0';               \
	} while (0)
	if (p) {
		p += 3;
		/* The last '@': an unencoded '@', '/' or '?' in a password still ends up
		 * hidden (hiding too much is the safe side). */
		at = strrchr(p, '@');
		colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
		if (at && colon) {
			PUT(url, (size_t)(colon + 1 - url));
			PUT("***", 3);
			url = at;
		}
	}
	while ((q = strstr(url, "password=")) != NULL) {
		if (q > url && q[-1] != '?' && q[-1] != '&') {
			PUT(url, (size_t)(q + 9 - url));
			url = q + 9;
			continue;
		}
		PUT(url, (size_t)(q + 9 - url));
		PUT("***", 3);
		url = q + 9 + strcspn(q + 9, "&#");
	}
	PUT(url, strlen(url));
#undef PUT
}

void config_print(FILE *f, int verbose)
{
	for (size_t i = 0; i < NSETTINGS; i++) {
		const config_setting_t *s = &settings[i];
		enum config_source src = config_source(s);
		const char *v = getenv(s->env);
		char red[2048];

		if (src != CONFIG_SRC_DEFAULT) {
			if (s->flags & CONFIG_URL_SECRET) {
				config_redact_url(v, red, sizeof red);
				v = red;
			}
			fprintf(f, "%s=%s  (%s)\n", s->env, v, config_source_name(src));
		} else if (s->def[0] == '(')
			fprintf(f, "%s=  (default: %.*s)\n", s->env, (int)strlen(s->def) - 2,
			        s->def + 1);
		else
			fprintf(f, "%s=%s  (default)\n", s->env, s->def);
		if (verbose)
			fprintf(f, "    [%s] %s; %s\n", s->group, s->range, s->meaning);
	}
}

void config_print_errors(FILE *f, const char *cmd, const errlist_t *errs)
{
	const char *t = errlist_text(errs);
	unsigned lines = *t ? 1 : 0;

	for (const char *p = t; *p; p++)
		lines += *p == '\n';
	fprintf(f, "cdpilot %s: %u error(s):\n%s\n", cmd, lines, t);
	if (errs->dropped)
		fprintf(f, "(%u more not shown)\n", errs->dropped);
}
