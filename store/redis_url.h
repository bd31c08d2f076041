/*
 * redis_url: parses REDIS_URL into what the store needs to connect. Pure: no I/O.
 *
 * Accepted forms:
 *   redis://[[user]:password@]host[:port][/db]     (port default 6379, db default 0;
 *                                                   an IPv6 host goes in brackets)
 *   unix:///path/to/socket[?db=N[&user=U][&password=P]]
 * user and password may be percent-encoded (%40 for '@', %3A for ':'). A password without
 * a user ("redis://:secret@host") authenticates as the default user (AUTH password); with a
 * user it is an ACL login (AUTH user password). rediss:// (TLS) is refused: the Debian
 * hiredis 0.14 has no TLS.
 */
#ifndef CDPILOT_STORE_REDIS_URL_H
#define CDPILOT_STORE_REDIS_URL_H

#include <stddef.h>

typedef struct store_url {
	int is_unix;    /* 1: path is set; 0: host and port are set */
	char host[256]; /* without brackets */
	int port;       /* 1..65535 */
	char path[108]; /* sun_path size */
	char user[128]; /* "" = none */
	char password[512];
	int has_password; /* an empty password is still a password */
	int db;           /* 0..1000000 */
} store_url_t;

/*
 * Fills *out from url. Returns 0, or -EINVAL after writing to err (errlen bytes, always
 * NUL-terminated) one sentence naming the URL (its password replaced by "***") and what
 * was expected. *out is zeroed on error.
 */
int store_url_parse(const char *url, store_url_t *out, char *err, size_t errlen);

/* The URL for logs, with the password replaced by "***" (out always NUL-terminated). */
void store_url_redact(const char *url, char *out, size_t outlen);

#endif
