/*
 * netpolicy: where cdpilot may go. The target policy of TARGET_ALLOW and TARGET_DENY
 * (docs/targets.md, "Where targets may point"): each a comma-separated list of entries,
 *
 *   10.0.0.0/8, fc00::/7, 169.254.169.254   an IPv4 or IPv6 network (a bare address is
 *                                           one host: /32 or /128)
 *   example.com                             exactly that host name
 *   *.example.com                           every name under it (not example.com itself)
 *
 * A host is refused when it matches DENY, and, when ALLOW is given, when it does not match
 * ALLOW. IP literals are matched against networks, names against name patterns, both
 * ignoring case and one trailing dot; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is
 * matched as its IPv4 address, and an IPv4 host in any of the forms URL parsers accept
 * (127.1, 0x7f.0.0.1, 2130706433) as the address it means. Hosts that parsers could read
 * differently (percent-encoded, non-ASCII, a numeric last label that is no IPv4 address)
 * are refused as unclear. A resolved address (netpolicy_check_addr) is matched against
 * DENY only: ALLOW is about the host as written.
 *
 * DENY starts with the defaults (link-local and cloud metadata: netpolicy_default_deny);
 * the entry "none" anywhere in the list drops them. netpolicy_t is caller storage:
 * netpolicy_init() -> checks... -> netpolicy_release(); checks do no I/O, keep nothing
 * and may be called from anywhere. Out of memory aborts (daemon plumbing).
 */
#ifndef CDPILOT_UTIL_NETPOLICY_H
#define CDPILOT_UTIL_NETPOLICY_H

#include <stddef.h>
#include <sys/socket.h>

#include "util/errlist.h"

#define NETPOLICY_ENTRY_MAX 255 /* longest entry as written */

enum netpolicy_kind { NETPOLICY_NET4 = 1, NETPOLICY_NET6, NETPOLICY_HOST, NETPOLICY_SUFFIX };

typedef struct netpolicy_rule {
	enum netpolicy_kind kind;
	unsigned prefix;          /* networks: the prefix length */
	unsigned char addr[16];   /* networks: the address (4 bytes for NET4) */
	char name[NETPOLICY_ENTRY_MAX + 1]; /* names: lower-case, no "*." and no trailing dot */
	char text[NETPOLICY_ENTRY_MAX + 1]; /* the entry as written, for messages */
	int is_default;           /* one of the default DENY entries */
} netpolicy_rule_t;

typedef struct netpolicy {
	netpolicy_rule_t *allow, *deny; /* malloc'd */
	size_t nallow, ndeny;
	int has_allow;                  /* TARGET_ALLOW was given: a host must match it */
} netpolicy_t;

/* The default DENY entries, as one list: link-local (169.254.0.0/16, fe80::/10) and the
 * metadata services of the big clouds. */
extern const char netpolicy_default_deny[];

/*
 * Fills p from the two settings' values: allow NULL (unset) means no ALLOW list; deny NULL
 * means the defaults alone, otherwise the defaults plus its entries ("none" among them
 * drops the defaults). Every bad entry adds one line to errs naming the setting, its value
 * and the entry: `TARGET_DENY="10.0.0.1/8": entry "10.0.0.1/8": ...`. Returns 0, or
 * -EINVAL (p is then the default policy, so it can still be used and released).
 */
int netpolicy_init(netpolicy_t *p, const char *allow, const char *deny, errlist_t *errs);
void netpolicy_release(netpolicy_t *p);

/* 1 if p refuses nothing (no ALLOW, and DENY is "none"). */
int netpolicy_is_open(const netpolicy_t *p);

/*
 * Checks a URL's host (len bytes, no port; an IPv6 literal with or without its brackets).
 * Returns 0 allowed; -EACCES refused, with why naming the rule (`denied by TARGET_DENY
 * entry "169.254.0.0/16"`, `not allowed by TARGET_ALLOW`); -EINVAL a host the policy cannot
 * judge soundly (why says why). why (whylen > 0) is always NUL-terminated.
 */
int netpolicy_check_host(const netpolicy_t *p, const char *host, size_t len, char *why,
                         size_t whylen);

/*
 * The same for an absolute URL's host: http, https, ws and wss URLs are checked (userinfo
 * and port skipped); a URL of another scheme (data:, about:, blob:) names no host and
 * returns 0. An http(s) URL without a host is -EINVAL.
 */
int netpolicy_check_url(const netpolicy_t *p, const char *url, char *why, size_t whylen);

/* A resolved address (AF_INET or AF_INET6) against DENY's networks. 0 or -EACCES (why as
 * above); another family is 0. */
int netpolicy_check_addr(const netpolicy_t *p, const struct sockaddr *sa, char *why,
                         size_t whylen);

#endif
