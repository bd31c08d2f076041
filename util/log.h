/*
 * log: one line per event on stderr, human-readable by default or JSON lines
 * (LOG_FORMAT=json). Level from LOG_LEVEL (debug, info, warn, error; default info).
 *
 * Process-global by design: logging is the one piece of state every layer shares and
 * it never calls back. log_init() is called once by main() (and by each test binary);
 * without it the defaults (info, text) apply. Not thread-safe: cdpilot has one thread.
 */
#ifndef CDPILOT_UTIL_LOG_H
#define CDPILOT_UTIL_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };
enum log_format { LOG_TEXT = 0, LOG_JSON };

/*
 * Reads LOG_LEVEL and LOG_FORMAT from the environment. Returns 0, or -EINVAL after
 * writing to *errbuf one line per bad variable, naming it, its value and what was expected
 * (the defaults stay in force).
 */
int log_init_from_env(char *errbuf, size_t errlen);
void log_set_level(enum log_level level);
void log_set_format(enum log_format format);
enum log_level log_get_level(void);

/* component is a short static string ("cdp", "browser", "scrape"). The formatted message
 * is escaped with log_escape() before it is written, so a value from outside (a target id,
 * a URL, an error text) can never add a line or drive a terminal; a message whose format
 * has a newline comes out on one line with "\n" in it. */
void log_msg(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/*
 * Writes in to out (outlen bytes, always NUL-terminated) with every control character
 * escaped: newline, CR and tab as \n, \r, \t; other C0 controls, DEL and bytes that are
 * not valid UTF-8 as \xNN; C1 controls as \u00NN. Valid UTF-8 and backslashes are kept.
 * Too long an input is cut before a whole escape or character. Returns the length written.
 * Pure; safe from any thread.
 */
size_t log_escape(const char *in, char *out, size_t outlen);

#define log_debug(comp, ...) log_msg(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...) log_msg(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)

#endif
