/*
 * scrape_cli: the interface of `cdpilot scrape` as a command: its arguments and help text
 * in, its outcome out as one JSON object and a process exit code (one per error kind). The
 * run itself, which fills the outcome, is in scrape.c.
 */
#include "daemon/scrape.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/scrape_priv.h"
#include "util/cliopt.h"

static const struct kind_exit {
	const char *kind;
	int code;
} kind_exits[] = {
	{ "launch", SCRAPE_EXIT_LAUNCH },     { "network", SCRAPE_EXIT_NETWORK },
	{ "http", SCRAPE_EXIT_HTTP },         { "timeout", SCRAPE_EXIT_TIMEOUT },
	{ "selector", SCRAPE_EXIT_SELECTOR }, { "script", SCRAPE_EXIT_SCRIPT },
	{ "browser", SCRAPE_EXIT_BROWSER },   { "internal", SCRAPE_EXIT_INTERNAL },
	{ "action", SCRAPE_EXIT_ACTION },     { "data", SCRAPE_EXIT_DATA },
};

/* ---- result ---- */

/* A JSON string of text; bytes that are not valid UTF-8 make it fall back to ASCII. */
json_t *scrape__json_text(const char *text)
{
	json_t *j;
	char *copy;

	if (!text)
		text = "";
	j = json_string(text);
	if (j)
		return j;
	copy = strdup(text);
	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

int scrape_exit_code_for(const char *kind)
{
	for (size_t i = 0; i < sizeof kind_exits / sizeof kind_exits[0]; i++)
		if (strcmp(kind_exits[i].kind, kind) == 0)
			return kind_exits[i].code;
	return SCRAPE_EXIT_INTERNAL;
}

json_t *scrape__build_result(const scrape_t *s)
{
	if (s->kind)
		return json_pack("{s:o, s:{s:s, s:o}}", "url", scrape__json_text(s->o->url),
		                 "error", "kind", s->kind, "message",
		                 scrape__json_text(s->message));
	return json_pack("{s:o, s:o, s:I, s:o, s:O, s:{s:I, s:I, s:I}}", "url",
	                 scrape__json_text(s->o->url), "final_url", scrape__json_text(s->final_url),
	                 "http_status", (json_int_t)s->http_status, "title",
	                 scrape__json_text(s->title), "data", s->data ? s->data : json_null(),
	                 "timings", "launch_ms", (json_int_t)s->launch_ms, "navigate_ms",
	                 (json_int_t)s->navigate_ms, "total_ms", (json_int_t)s->total_ms);
}

/* ---- arguments ---- */

void scrape_usage(FILE *f)
{
	fprintf(f,
	        "usage: cdpilot scrape URL [--wait-for CSS] [--wait-state visible|attached]\n"
	        "                          [--extract JS] [--screenshot FILE.png] [--timeout SECONDS]\n"
	        "\n"
	        "Loads URL (http, https, file or about) in a fresh headless Chromium context, set\n"
	        "up as `cdpilot run` sets up its pages (dialogs dismissed, popups closed,\n"
	        "downloads denied, BLOCK_RESOURCES, USER_AGENT, VIEWPORT, EXTRA_HEADERS), and\n"
	        "prints one JSON object on stdout:\n"
	        "  {\"url\", \"final_url\", \"http_status\", \"title\", \"data\",\n"
	        "   \"timings\": {\"launch_ms\", \"navigate_ms\", \"total_ms\"}}\n"
	        "or, on failure, {\"url\", \"error\": {\"kind\", \"message\"}}.\n"
	        "\n"
	        "options (also accepted as --name=value):\n"
	        "  --wait-for CSS       after the load event, wait until the selector matches a\n"
	        "                       visible element (it has a box and is not\n"
	        "                       visibility:hidden)\n"
	        "  --wait-state STATE   visible (default) or attached: any matching element,\n"
	        "                       shown or not\n"
	        "  --extract JS         expression whose value becomes \"data\" (promises are\n"
	        "                       awaited); default: {title, url, text} of the page\n"
	        "  --screenshot FILE    write a full-page PNG to FILE\n"
	        "  --timeout SECONDS    bound for the whole run, 0 < SECONDS <= 3600 (default 30)\n"
	        "  --help               this help\n"
	        "\n"
	        "environment: CHROMIUM_PATH, CHROMIUM_FLAGS, CDP_URL (attach to a running browser\n"
	        "instead of launching one), BLOCK_RESOURCES, USER_AGENT, VIEWPORT, EXTRA_HEADERS\n"
	        "(as for `cdpilot run`, docs/configuration.md), LOG_LEVEL\n"
	        "(debug|info|warn|error|off), LOG_FORMAT (text|json). Logs go to stderr.\n"
	        "\n"
	        "exit codes (and error kinds):\n"
	        "  0  ok\n"
	        "  2  usage      bad command line\n"
	        "  3  launch     the browser could not start or be attached to\n"
	        "  4  network    DNS or connection error loading the URL\n"
	        "  5  http       the page answered with HTTP status >= 400\n"
	        "  6  timeout    --timeout expired\n"
	        "  7  selector   --wait-for never matched before the timeout\n"
	        "  8  script     exception in --extract\n"
	        "  9  browser    the browser crashed or the connection was lost\n"
	        " 10  internal   anything else (including SIGINT/SIGTERM)\n"
	        " 11  action     (cdpilot try) a page action of the target failed\n"
	        " 12  data       (cdpilot try) the page's value did not validate\n");
}

static int url_ok(const char *url)
{
	static const char *const schemes[] = { "http://", "https://", "file://", "about:" };

	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
		size_t n = strlen(schemes[i]);
		if (strncasecmp(url, schemes[i], n) == 0)
			return url[n] != '\0';
	}
	return 0;
}

/* Checks the value of one known option (name without "=value") and stores it in o.
 * Returns 0, or -EINVAL with one line in err. */
static int set_option(scrape_opts_t *o, const char *name, const char *value, char *err,
                      size_t errlen)
{
	if (strcmp(name, "--timeout") == 0) {
		char *end = NULL;
		double t;
		errno = 0;
		t = strtod(value, &end);
		if (*value == '\0' || !end || *end != '\0' || errno || !isfinite(t) || t <= 0 ||
		    t > 3600) {
			snprintf(err, errlen,
			         "--timeout '%s': expected a number of seconds greater than 0 and "
			         "at most 3600",
			         value);
			return -EINVAL;
		}
		o->timeout_s = t;
		return 0;
	}
	if (strcmp(name, "--wait-state") == 0) {
		if (strcmp(value, "visible") != 0 && strcmp(value, "attached") != 0) {
			snprintf(err, errlen, "--wait-state '%s': expected visible or attached", value);
			return -EINVAL;
		}
		o->wait_attached = strcmp(value, "attached") == 0;
		return 0;
	}
	if (*value == '\0') {
		snprintf(err, errlen, "%s '': expected a non-empty %s", name,
		         strcmp(name, "--wait-for") == 0  ? "CSS selector"
		         : strcmp(name, "--extract") == 0 ? "JavaScript expression"
		                                          : "file path");
		return -EINVAL;
	}
	if (strcmp(name, "--wait-for") == 0)
		o->wait_for = value;
	else if (strcmp(name, "--extract") == 0)
		o->extract = value;
	else
		o->screenshot = value;
	return 0;
}

int scrape_parse_args(int argc, char **argv, scrape_opts_t *o, char *err, size_t errlen)
{
	static const char *const options[] = { "--wait-for",   "--wait-state", "--extract",
		                               "--screenshot", "--timeout",    NULL };
	int only_positional = 0;

	memset(o, 0, sizeof *o);
	o->timeout_s = 30;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *value;
		char name[64];

		if (only_positional || a[0] != '-' || a[1] == '\0') {
			if (o->url) {
				snprintf(
				        err, errlen,
				        "unexpected argument '%s': expected a single URL (see --help)",
				        a);
				return -EINVAL;
			}
			o->url = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_positional = 1;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return 1;
		switch (cliopt_next(argc, argv, &i, options, name, sizeof name, &value, err, errlen)) {
		case CLIOPT_UNKNOWN:
			snprintf(err, errlen,
			         "unknown option '%s': expected --wait-for, --wait-state, --extract, "
			         "--screenshot, --timeout or --help",
			         name);
			return -EINVAL;
		case CLIOPT_NOVALUE: return -EINVAL;
		default: break;
		}
		if (set_option(o, name, value, err, errlen) != 0)
			return -EINVAL;
	}
	if (!o->url) {
		snprintf(err, errlen,
		         "missing URL: expected cdpilot scrape URL [--wait-for CSS] [--wait-state "
		         "visible|attached] [--extract JS] [--screenshot FILE.png] [--timeout SECONDS]");
		return -EINVAL;
	}
	if (!url_ok(o->url)) {
		snprintf(err, errlen,
		         "URL '%s': expected an http://, https://, file:// or about: URL", o->url);
		return -EINVAL;
	}
	return 0;
}
