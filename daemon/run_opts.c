/*
 * run_opts.c: the options of `cdpilot run`: settings from the environment (each module's
 * *_opts_from_env, and the daemon's own), then the command line; every bad value listed.
 * See run.h.
 */
#include "daemon/run.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/targets.h"
#include "util/envnum.h"
#include "util/log.h"

/* ---- options ---- */

void run_usage(FILE *f)
{
	fprintf(f,
	        "usage: cdpilot run --targets FILE [--output FILE|-] [--duration SECONDS]\n"
	        "                   [--status | --no-status]\n"
	        "\n"
	        "Keeps every target in FILE (JSON, see docs/targets.md) fresh: each is re-scraped\n"
	        "on its class's interval (live 5 s, imminent 60 s, completed 900 s by default)\n"
	        "and every result is written as a JSON snapshot, plus a delta when data changed,\n"
	        "one per line to --output (\"-\" is stdout).\n"
	        "\n"
	        "  --targets FILE     the targets file (or TARGETS_FILE)\n"
	        "  --output FILE|-    JSON-lines sink for snapshots and deltas (or OUTPUT)\n"
	        "  --duration S       stop after S seconds (default: run until SIGTERM/SIGINT)\n"
	        "  --status           a live one-line status on stderr (default on a terminal)\n"
	        "  --no-status        no status line\n"
	        "\n"
	        "The targets file is re-read when it changes (TARGETS_WATCH_MS) and on SIGHUP;\n"
	        "SIGTERM or SIGINT stop gracefully (exit 0).\n"
	        "Settings are environment variables: see docs/configuration.md.\n");
}

/* Every module's settings from the environment, each with its own defaults. */
static void modules_from_env(run_opts_t *o, errlist_t *errs)
{
	char perr[8192] = "";

	memset(o, 0, sizeof *o);
	o->status_line = -1;
	o->watch_cap = 64;
	o->watch_reload_ms = 600000;
	o->verify_max_ms = 60000;
	o->watch_navigate_ms = 600000;
	pool_opts_init(&o->pool);
	sched_opts_init(&o->sched);
	health_opts_init(&o->health);
	if (pool_opts_from_env(&o->pool, perr, sizeof perr) != 0) {
		/* one errlist line per error line */
		char *save = NULL;
		for (char *line = strtok_r(perr, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			errlist_add(errs, "%s", line);
	}
	sched_opts_from_env(&o->sched, errs);
	health_opts_from_env(&o->health, errs);
	wd_opts_init(&o->wd);
	wd_opts_from_env(&o->wd, errs);
	httpd_opts_init(&o->http);
	httpd_opts_from_env(&o->http, errs);
	store_opts_init(&o->store);
	store_opts_from_env(&o->store, errs);
	o->use_store = getenv("REDIS_URL") != NULL;
	share_opts_init(&o->share);
	share_opts_from_env(&o->share, errs);
	o->share.run_ms = o->pool.task_timeout_ms;
}

/* The daemon's own settings from the environment. */
static void daemon_from_env(run_opts_t *o, errlist_t *errs)
{
	double d;

	{
		const char *v = getenv("SCHEDULE");
		if (v && strcmp(v, "local") != 0 && strcmp(v, "redis") != 0)
			errlist_add(errs, "SCHEDULE=\"%.80s\": expected local or redis", v);
		else if (v && strcmp(v, "redis") == 0 && !o->use_store)
			errlist_add(errs, "SCHEDULE=redis: the shared schedule lives in Redis; set "
			                  "REDIS_URL too");
		else
			o->shared_schedule = v && strcmp(v, "redis") == 0;
	}
	{
		const char *v = getenv("EXIT_ON_HEALTH_FAILURE");
		if (v && strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			errlist_add(errs, "EXIT_ON_HEALTH_FAILURE=\"%s\": expected 0 or 1", v);
		else
			o->exit_on_health_failure = v && strcmp(v, "1") == 0;
	}
	o->health_exit_ms = 300000;
	if (envnum_get(errs, "HEALTH_FAILURE_EXIT_SECONDS", 1, 86400, 0, NULL, &d) > 0)
		o->health_exit_ms = (uint32_t)(d * 1000);
	if (envnum_get(errs, "WATCH_CAP", 1, 1024, ENVNUM_WHOLE, NULL, &d) > 0)
		o->watch_cap = (unsigned)d;
	o->fetch_cap = 16;
	if (envnum_get(errs, "FETCH_CONCURRENCY", 1, 1024, ENVNUM_WHOLE, NULL, &d) > 0)
		o->fetch_cap = (unsigned)d;
	o->failing_percent = 50;
	if (envnum_get(errs, "FAILING_LEASE_PERCENT", 1, 100, ENVNUM_WHOLE, NULL, &d) > 0)
		o->failing_percent = (unsigned)d;
	if (envnum_get(errs, "WATCH_RELOAD_SECONDS", 1, 86400, 0, NULL, &d) > 0)
		o->watch_reload_ms = (uint32_t)(d * 1000);
	o->watch_frames = 1;
	{
		const char *v = getenv("WATCH_FRAMES");
		if (v && strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
			errlist_add(errs, "WATCH_FRAMES=\"%.80s\": expected on or off", v);
		else if (v)
			o->watch_frames = strcmp(v, "on") == 0;
	}
	if (envnum_get(errs, "WATCH_VERIFY_UNCHANGED_SECONDS", 0, 86400, 0, NULL, &d) > 0)
		o->verify_unchanged_ms = (uint32_t)(d * 1000);
	if (envnum_get(errs, "WATCH_VERIFY_SECONDS", 0, 86400, 0, NULL, &d) > 0)
		o->verify_max_ms = (uint32_t)(d * 1000);
	o->adapt_verify_ms = 60000;
	if (envnum_get(errs, "ADAPTIVE_VERIFY_SECONDS", 1, 86400, 0, NULL, &d) > 0)
		o->adapt_verify_ms = (uint32_t)(d * 1000);
	if (envnum_get(errs, "WATCH_FROZEN_NAVIGATE_SECONDS", 1, 86400, 0, NULL, &d) > 0)
		o->watch_navigate_ms = (uint32_t)(d * 1000);
	o->targets_watch_ms = 300;
	if (envnum_get(errs, "TARGETS_WATCH_MS", 10, 60000, ENVNUM_WHOLE | ENVNUM_ZERO_OK, NULL,
	               &d) > 0)
		o->targets_watch_ms = (uint32_t)d;
	o->discover_max_children = 500;
	if (envnum_get(errs, "DISCOVER_MAX_CHILDREN", 1, 100000, ENVNUM_WHOLE, NULL, &d) > 0)
		o->discover_max_children = (unsigned)d;
	if (getenv("TARGETS_FILE"))
		snprintf(o->targets_path, sizeof o->targets_path, "%.*s", (int)sizeof o->targets_path - 1, getenv("TARGETS_FILE"));
	if (getenv("OUTPUT"))
		snprintf(o->output, sizeof o->output, "%.*s", (int)sizeof o->output - 1, getenv("OUTPUT"));
}

/* The command line, over what the environment said. Returns 1 for --help, else 0. */
static int from_argv(int argc, char **argv, run_opts_t *o, errlist_t *errs)
{
	static const struct option longopts[] = {
		{ "targets", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "duration", required_argument, NULL, 'd' },
		{ "status", no_argument, NULL, 's' },
		{ "no-status", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double d;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":t:o:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			snprintf(o->targets_path, sizeof o->targets_path, "%.*s", (int)sizeof o->targets_path - 1, optarg);
			break;
		case 'o':
			snprintf(o->output, sizeof o->output, "%.*s", (int)sizeof o->output - 1, optarg);
			break;
		case 'd': {
			char *end = NULL;
			errno = 0;
			d = strtod(optarg, &end);
			if (!*optarg || errno || *end || !isfinite(d) || d <= 0 || d > 31536000)
				errlist_add(errs, "--duration \"%s\": expected seconds, a number above 0",
				            optarg);
			else
				o->duration_s = d;
			break;
		}
		case 's':
			o->status_line = 1;
			break;
		case 'S':
			o->status_line = 0;
			break;
		case 'h':
			return 1;
		case ':':
			errlist_add(errs, "%s: expected a value", argv[optind - 1]);
			break;
		default:
			errlist_add(errs, "unknown option \"%s\" (see cdpilot run --help)",
			            argv[optind - 1]);
			break;
		}
	}
	return 0;
}

/* The target policy: one per process (targets.h), so a static that outlives every run. */
static void policy_from_env(run_opts_t *o, errlist_t *errs)
{
	static netpolicy_t policy;

	netpolicy_release(&policy);
	netpolicy_init(&policy, getenv("TARGET_ALLOW"), getenv("TARGET_DENY"), errs);
	targets_set_policy(&policy);
	o->policy = &policy;
	o->pool.policy = &policy; /* pages' redirects and navigations too (pool.h) */
}

/*
 * The watchdog's PID_THRESHOLD against what the caps let Chromium run: a renderer per
 * watched page and per leased context, twice over while a recycle moves them to the new
 * browser, and Chromium's own processes (browser, GPU, network and storage services,
 * zygotes, crash handlers: 40 is ample). Not set, it is raised to that (200 watched pages
 * recycled the browser over and over with the default 200). Set below it, it is kept (the
 * caps may never be reached), with a warning that says what it may cost.
 */
static void process_budget(run_opts_t *o)
{
	unsigned need = 2 * (o->watch_cap + o->pool.concurrency_cap) + 40;

	if (o->wd.pid_threshold >= need)
		return;
	if (!getenv("PID_THRESHOLD"))
		o->wd.pid_threshold = need;
	else
		log_warn("run",
		         "PID_THRESHOLD=%u is below the %u processes WATCH_CAP=%u and CONCURRENCY_CAP=%u "
		         "may need (2 x (%u + %u) + 40: a renderer per watched page and per context, "
		         "twice during a recycle, and Chromium's own): with that many pages open the "
		         "watchdog will recycle the browser again and again",
		         o->wd.pid_threshold, need, o->watch_cap, o->pool.concurrency_cap, o->watch_cap,
		         o->pool.concurrency_cap);
}

int run_parse_args(int argc, char **argv, run_opts_t *o, errlist_t *errs)
{
	modules_from_env(o, errs);
	daemon_from_env(o, errs);
	policy_from_env(o, errs);
	process_budget(o);
	if (from_argv(argc, argv, o, errs) == 1)
		return 1;
	if (optind < argc)
		errlist_add(errs, "unexpected argument \"%s\" (see cdpilot run --help)", argv[optind]);
	if (!o->targets_path[0])
		errlist_add(errs, "no targets file: give --targets FILE (or TARGETS_FILE)");
	return errs->count ? -EINVAL : 0;
}

void run_runner_opts(const run_opts_t *o, runner_opts_t *ro)
{
	runner_opts_init(ro);
	ro->sched = o->sched;
	ro->fetch_cap = o->fetch_cap;
	ro->failing_percent = o->failing_percent;
	ro->task_timeout_ms = o->pool.task_timeout_ms;
	ro->watch_cap = o->watch_cap;
	ro->watch_reload_ms = o->watch_reload_ms;
	ro->watch_frames = o->watch_frames;
	ro->verify_unchanged_ms = o->verify_unchanged_ms;
	ro->verify_max_ms = o->verify_max_ms;
	ro->watch_navigate_ms = o->watch_navigate_ms;
	ro->discover_max = o->discover_max_children;
	ro->adapt_verify_ms = o->adapt_verify_ms;
}
