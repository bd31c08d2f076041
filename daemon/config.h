/*
 * config: the one table of cdpilot's settings. Every setting is an environment variable
 * (the container way) with a matching command-line flag (CONCURRENCY_CAP and
 * --concurrency-cap); docs/configuration.md documents the same rows, and
 * tests/docs/check_config_docs.sh keeps the two and the code's getenv() calls in step.
 *
 * The modules keep validating their own variables (pool_opts_from_env(), wd_opts_from_env()
 * and friends). This module only brings flags to them and catches what no module sees:
 *
 *   config_apply_flags()  takes `--flag VALUE` / `--flag=VALUE` of every setting out of argv
 *                         and sets the environment variable, so a flag is validated exactly
 *                         like the variable; a near miss (--concurency-cap) is an error
 *                         with a suggestion.
 *   config_check_env()    an empty value (unless the row says empty means something), a
 *                         variable whose name is a near miss of a setting (CONCURENCY_CAP),
 *                         and the few settings no module checks at startup (CDP_URL,
 *                         CHROMIUM_PATH, CHROMIUM_FLAGS).
 *   config_print()        the effective value of every setting and where it came from.
 *
 * Which settings came from a flag is process-global state (like the environment it mirrors);
 * main() calls these once, before the event loop exists. Not thread-safe.
 */
#ifndef CDPILOT_DAEMON_CONFIG_H
#define CDPILOT_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "util/errlist.h"

enum {
	CONFIG_EMPTY_OK = 1u << 0,   /* an empty value is meaningful, not a mistake */
	CONFIG_URL_SECRET = 1u << 1, /* a URL that may hold a password: printed with "***" */
};

enum config_source { CONFIG_SRC_DEFAULT = 0, CONFIG_SRC_ENV, CONFIG_SRC_FLAG };

typedef struct config_setting {
	const char *env;     /* "CONCURRENCY_CAP" */
	const char *flag;    /* "--concurrency-cap" */
	const char *group;   /* the module that reads it: "pool", "scheduler", ... */
	const char *def;     /* the default as a value ("8"), or "(...)" when it is not one */
	const char *range;   /* what is accepted, as the docs say it */
	const char *meaning; /* one sentence */
	unsigned flags;      /* CONFIG_EMPTY_OK */
	/* A startup check for a setting no module validates when it reads it; NULL when the
	 * module does. Returns 0, or -EINVAL after writing what was expected to why. */
	int (*check)(const char *value, char *why, size_t whylen);
} config_setting_t;

/* The table, in documentation order; *n gets its length. Static storage, never NULL. */
const config_setting_t *config_settings(size_t *n);

/* The row for an environment variable name / a flag ("--x" or "--x=v"), or NULL. */
const config_setting_t *config_find_env(const char *name);
const config_setting_t *config_find_flag(const char *arg);

/*
 * Takes every setting's flag out of argv[1..*argc-1] (argv[0] is the command), sets its
 * environment variable to the value and remembers that it came from a flag. "--" ends the
 * scan. An unknown "--name" within edit distance 2 of a setting's flag is an error
 * ("unknown option --concurency-cap (did you mean --concurrency-cap?)") and is taken out
 * too; every other argument stays, in order, for the command's own parser, and
 * argv[*argc] is NULL. Every error is added to errs. Returns 0 or -EINVAL.
 */
int config_apply_flags(int *argc, char **argv, errlist_t *errs);

/*
 * Checks the environment: a setting set to "" (unless CONFIG_EMPTY_OK) is an error and is
 * then unset, so that the module reading it does not report it a second time; a variable
 * that is not a setting but whose name is a near miss of one is an error naming the
 * setting; the settings with a check() are checked. Variables that merely look alike are
 * left alone: only names of 6 or more characters with a '_', within edit distance 2 of a
 * setting (ignoring case), count. Every error is added to errs. Returns 0 or -EINVAL.
 */
int config_check_env(errlist_t *errs);

/* Where a setting's effective value comes from. */
enum config_source config_source(const config_setting_t *s);
const char *config_source_name(enum config_source src);

/*
 * One line per setting, in table order: "NAME=value  (env)" / "(flag)" / "(default)";
 * a default that is not a value prints "NAME=  (default: ...)"; the password in a
 * CONFIG_URL_SECRET value is printed as "***". With verbose, each line is
 * followed by an indented line with the range and the meaning.
 */
void config_print(FILE *f, int verbose);

/* Prints "cdpilot CMD: N error(s):" and the errors, one per line, to f. */
void config_print_errors(FILE *f, const char *cmd, const errlist_t *errs);

/* url with the password of its user info ("scheme://user:PASSWORD@") and of a
 * "password=" query parameter replaced by "***", into out (always NUL-terminated). */
void config_redact_url(const char *url, char *out, size_t outlen);

/* Forgets which settings came from flags (tests). */
void config_reset(void);

/* Edit distance between a and b, ASCII case ignored; anything over 8 reads as 9. */
unsigned config_distance(const char *a, const char *b);

#endif
