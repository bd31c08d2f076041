/*
 * cdpilot: the command-line entry point. Runs the exec-wrapper mode first (the browser
 * module re-executes this binary to launch Chromium), reads the logging environment,
 * dispatches the subcommand and owns the loop. Usage errors are one line on stderr and
 * exit 2; results are one JSON object on stdout.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#ifdef CDPILOT_HAVE_RUN
#include "daemon/config.h"
#include "daemon/run.h"
#include "daemon/targets.h"
#include "daemon/try.h"
#endif
#include "daemon/scrape.h"
#include "daemon/version.h"
#include "pool/browser.h"
#include "pool/pool.h"
#include "util/log.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: cdpilot run --targets FILE [--output FILE|-] [--duration S] [--status]\n"
	        "                   [--SETTING VALUE...]\n"
	        "       cdpilot check-config [-v] [--SETTING VALUE...]\n"
	        "       cdpilot scrape URL [--wait-for CSS] [--wait-state visible|attached]\n"
	        "                          [--extract JS] [--screenshot FILE.png] [--timeout SECONDS]\n"
	        "       cdpilot try --targets FILE [--id ID] [--timeout SECONDS] [--SETTING VALUE...]\n"
	        "       cdpilot --version [--browser]\n"
	        "       cdpilot --help\n"
	        "\n"
	        "cdpilot drives one headless Chromium over the Chrome DevTools Protocol.\n"
	        "`cdpilot run --help` describes the daemon; `cdpilot scrape --help` the one-shot\n"
	        "scrape and its JSON output; `cdpilot try --help` how to try a target as the\n"
	        "daemon would scrape it.\n"
	        "\n"
	        "exit codes: 0 ok, 2 usage, 3 launch (browser could not start/attach),\n"
	        "4 network (DNS/connection error), 5 http (status >= 400), 6 timeout,\n"
	        "7 selector (--wait-for never matched before the timeout), 8 script (exception\n"
	        "in --extract), 9 browser (crash / connection lost), 10 internal; `try` also\n"
	        "11 action (a page action failed), 12 data (the page's value did not validate).\n");
}

#ifdef CDPILOT_HAVE_RUN
/* Settings from flags and the environment, validated exactly as `run` uses them; every
 * error goes to errs. Returns what run_parse_args() returns. */
static int load_settings(int *argc, char **argv, run_opts_t *o, errlist_t *errs)
{
	char err[512] = "";

	config_apply_flags(argc, argv, errs);
	config_check_env(errs);
	if (log_init_from_env(err, sizeof err) != 0) {
		char *save = NULL;
		for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			errlist_add(errs, "%s", line);
	}
	return run_parse_args(*argc, argv, o, errs);
}

/* `cdpilot check-config [-v] [--SETTING VALUE...]`: the effective configuration and where
 * each value came from on stdout; 0 if `run` would accept it, else 2 with every error. */
static int check_config(int argc, char **argv)
{
	run_opts_t *o = calloc(1, sizeof *o);
	errlist_t errs;
	int verbose = 0, n = 1, rc;

	if (!o)
		return RUN_EXIT_FAILURE;
	errlist_init(&errs);
	/* Settings first, so that a flag's value ("--chromium-flags -v") is not an option. */
	config_apply_flags(&argc, argv, &errs);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
			verbose = 1;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: cdpilot check-config [-v] [--SETTING VALUE...]\n"
			       "Validates every setting as `cdpilot run` would and prints one line\n"
			       "per setting: NAME=value (default|env|flag); -v adds the range and\n"
			       "meaning. Exit 0 if valid, 2 with every error listed otherwise.\n"
			       "See docs/configuration.md.\n");
			errlist_release(&errs);
			free(o);
			return 0;
		} else {
			argv[n++] = argv[i];
		}
	}
	argv[n] = NULL;
	rc = load_settings(&n, argv, o, &errs);
	if (o->targets_path[0]) {
		/* The targets file as `run` will load it, each problem naming the setting. */
		target_set_t set = { 0 };
		errlist_t terrs;
		errlist_init(&terrs);
		if (targets_load_file(o->targets_path, &set, &terrs) != 0) {
			const char *t = errlist_text(&terrs);
			while (*t) {
				size_t len = strcspn(t, "\n");
				errlist_add(&errs, "TARGETS_FILE='%s': %.*s", o->targets_path,
				            (int)len, t);
				t += len + (t[len] == '\n');
			}
			rc = -EINVAL;
		}
		targets_release(&set);
		errlist_release(&terrs);
	}
	config_print(stdout, verbose);
	fflush(stdout);
	if (rc != 0)
		config_print_errors(stderr, "check-config", &errs);
	errlist_release(&errs);
	free(o);
	return rc != 0 ? RUN_EXIT_USAGE : 0;
}

static int run_daemon(int argc, char **argv)
{
	run_opts_t *o = calloc(1, sizeof *o);
	errlist_t errs;
	uv_loop_t loop;
	int rc, code;

	if (!o)
		return RUN_EXIT_FAILURE;
	errlist_init(&errs);
	rc = load_settings(&argc, argv, o, &errs);
	if (rc == 1) {
		run_usage(stdout);
		errlist_release(&errs);
		free(o);
		return 0;
	}
	if (rc != 0) {
		config_print_errors(stderr, "run", &errs);
		errlist_release(&errs);
		free(o);
		return RUN_EXIT_USAGE;
	}
	errlist_release(&errs);
	rc = uv_loop_init(&loop);
	if (rc != 0) {
		log_error("run", "cannot create the event loop: %s", uv_strerror(rc));
		free(o);
		return RUN_EXIT_FAILURE;
	}
	code = run_main(&loop, o);
	rc = uv_loop_close(&loop);
	if (rc != 0)
		log_error("run", "the event loop did not close cleanly: %s", uv_strerror(rc));
	free(o);
	return code;
}

/* `cdpilot try --targets FILE [--id ID] [--timeout S] [--SETTING VALUE...]`: the settings
 * as `run` reads them, the targets file as `run` loads it, then try_run(). */
static int try_cmd(int argc, char **argv)
{
	run_opts_t *o = calloc(1, sizeof *o);
	target_set_t set = { 0 };
	errlist_t errs;
	try_opts_t to;
	uv_loop_t loop;
	char err[1024] = "";
	int rc, code = RUN_EXIT_USAGE;

	if (!o)
		return SCRAPE_EXIT_INTERNAL;
	errlist_init(&errs);
	config_apply_flags(&argc, argv, &errs);
	rc = try_parse_args(argc - 1, argv + 1, &to, err, sizeof err);
	if (rc == 1) {
		try_usage(stdout);
		code = 0;
		goto out;
	}
	if (rc != 0)
		errlist_add(&errs, "%s", err);
	config_check_env(&errs);
	if (log_init_from_env(err, sizeof err) != 0)
		errlist_add(&errs, "%s", err);
	{
		/* run's own parser, for the environment and the targets file's path */
		char *rargv[] = { "run", "--targets", (char *)to.targets_path, NULL };
		run_parse_args(to.targets_path ? 3 : 1, rargv, o, &errs);
	}
	if (errs.count) {
		config_print_errors(stderr, "try", &errs);
		goto out;
	}
	if (targets_load_file(o->targets_path, &set, &errs) != 0) {
		fprintf(stderr, "cdpilot try: %s: %u error(s):\n%s\n", o->targets_path, errs.count,
		        errlist_text(&errs));
		goto out;
	}
	if (to.id && !targets_find(&set, to.id)) {
		fprintf(stderr, "cdpilot try: --id '%s': no target with this id in %s (its ids:",
		        to.id, o->targets_path);
		for (size_t i = 0; i < set.n; i++)
			fprintf(stderr, "%s %s", i ? "," : "", set.v[i].id);
		fprintf(stderr, "%s)\n", set.n ? "" : " none");
		goto out;
	}
	rc = uv_loop_init(&loop);
	if (rc != 0) {
		log_error("try", "cannot create the event loop: %s", uv_strerror(rc));
		code = SCRAPE_EXIT_INTERNAL;
		goto out;
	}
	code = try_run(&loop, &to, o, &set, stdout);
	rc = uv_loop_close(&loop);
	if (rc != 0)
		log_error("try", "the event loop did not close cleanly: %s", uv_strerror(rc));
	if (fflush(stdout) != 0 && code == 0)
		code = SCRAPE_EXIT_INTERNAL;
out:
	targets_release(&set);
	errlist_release(&errs);
	free(o);
	return code;
}

#endif

static int run_scrape(int argc, char **argv)
{
	scrape_opts_t o;
	uv_loop_t loop;
	json_t *out = NULL;
	char err[1024] = "";
	int code, rc;

	rc = scrape_parse_args(argc, argv, &o, err, sizeof err);
	if (rc == 1) {
		scrape_usage(stdout);
		return 0;
	}
	if (rc != 0) {
		fprintf(stderr, "cdpilot scrape: %s\n", err);
		return SCRAPE_EXIT_USAGE;
	}
	rc = uv_loop_init(&loop);
	if (rc != 0) {
		log_error("scrape", "cannot create the event loop: %s", uv_strerror(rc));
		return SCRAPE_EXIT_INTERNAL;
	}
	code = scrape_run(&loop, &o, &out);
	rc = uv_loop_close(&loop);
	if (rc != 0)
		log_error("scrape", "the event loop did not close cleanly: %s", uv_strerror(rc));
	if (out) {
		json_dumpf(out, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(out);
	}
	if (fflush(stdout) != 0) {
		log_error("scrape", "cannot write the result to stdout: %s", strerror(errno));
		if (code == 0)
			code = SCRAPE_EXIT_INTERNAL;
	}
	return code;
}

int main(int argc, char **argv)
{
	char err[512] = "";

	if (browser_exec_wrapper_main(argc, argv))
		return 127;
	/* libuv and lws write to sockets with write(2): a peer going away must not kill us. */
	signal(SIGPIPE, SIG_IGN);
#ifdef CDPILOT_HAVE_RUN
	/* These two read flags and the whole environment themselves, every error at once. */
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return run_daemon(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "check-config") == 0)
		return check_config(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "try") == 0)
		return try_cmd(argc - 1, argv + 1);
#endif
	if (log_init_from_env(err, sizeof err) != 0) {
		fprintf(stderr, "cdpilot: %s\n", err);
		return SCRAPE_EXIT_USAGE;
	}
	{
		browser_opts_t bo;
		browser_opts_init(&bo);
		if (browser_opts_from_env(&bo, err, sizeof err) != 0) {
			fprintf(stderr, "cdpilot: %s\n", err);
			return SCRAPE_EXIT_USAGE;
		}
	}
	if (argc < 2) {
		fprintf(stderr, "cdpilot: missing command: expected run, check-config, scrape, try, --help or --version\n");
		return SCRAPE_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--version") == 0) {
		if (argc == 3 && strcmp(argv[2], "--browser") == 0)
			return version_browser_main();
		if (argc > 2) {
			fprintf(stderr, "cdpilot: --version takes only --browser, not '%s'\n",
			        argv[2]);
			return SCRAPE_EXIT_USAGE;
		}
		printf("cdpilot %s\n", CDPILOT_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "scrape") == 0) {
		/* the page settings the pool reads (BLOCK_RESOURCES, USER_AGENT, ...) */
		pool_opts_t po;
		char perr[4096] = "";
		pool_opts_init(&po);
		if (pool_opts_from_env(&po, perr, sizeof perr) != 0) {
			fprintf(stderr, "cdpilot scrape: %s\n", perr);
			return SCRAPE_EXIT_USAGE;
		}
		return run_scrape(argc - 2, argv + 2);
	}
	fprintf(stderr, "cdpilot: unknown %s '%s': expected run, check-config, scrape, try, --help or --version\n",
	        argv[1][0] == '-' ? "option" : "command", argv[1]);
	return SCRAPE_EXIT_USAGE;
}
