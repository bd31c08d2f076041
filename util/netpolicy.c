/*
 * netpolicy: the target policy's lists and matcher (netpolicy.h). Lists are parsed once at
 * startup; a check walks them linearly (they are short, written by an operator).
 */
#include "util/netpolicy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char netpolicy_default_deny[] = "169.254.0.0/16,fe80::/10,fd00:ec2::254/128,"
                                      "100.100.100.200/32,metadata.google.internal,metadata";

#define ENTRY_HELP                                                                            \
	"expected an IPv4 or IPv6 network (10.0.0.0/8, fc00::/7, 192.0.2.1), a host name "    \
	"(example.com) or a domain's subdomains (*.example.com)"

static void oom(void)
{
	fprintf(stderr, "netpolicy: out of memory\n");
	abort();
}

/* 1 if name (len bytes) is a host name: labels of [a-z0-9_-] separated by single dots. */
static int name_valid(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if (isascii(c) && (isalnum(c) || c == '-' || c == '_')) {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return label > 0;
}

/* Sets the bits of addr past prefix to zero; returns 1 if any was set. */
static int mask_host_bits(unsigned char *addr, size_t nbytes, unsigned prefix)
{
	int set = 0;

	for (size_t i = 0; i < nbytes; i++) {
		unsigned keep = prefix >= (i + 1) * 8 ? 8 : prefix > i * 8 ? prefix - (unsigned)i * 8 : 0;
		unsigned char m = (unsigned char)(keep ? 0xffu << (8 - keep) : 0);
		set |= (addr[i] & ~m) != 0;
		addr[i] &= m;
	}
	return set;
}

/* One entry (already trimmed, 1..NETPOLICY_ENTRY_MAX bytes) into r; on error, what was
 * wrong into why. */
static int parse_entry(const char *e, netpolicy_rule_t *r, char *why, size_t whylen)
{
	char addr[NETPOLICY_ENTRY_MAX + 1];
	const char *slash = strchr(e, '/');
	size_t alen = slash ? (size_t)(slash - e) : strlen(e);
	unsigned long prefix = 0;
	char *end = NULL;

	memset(r, 0, sizeof *r);
	snprintf(r->text, sizeof r->text, "%s", e);
	memcpy(addr, e, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, r->addr) == 1)
		r->kind = NETPOLICY_NET4;
	else if (inet_pton(AF_INET6, addr, r->addr) == 1)
		r->kind = NETPOLICY_NET6;
	if (r->kind) {
		unsigned max = r->kind == NETPOLICY_NET4 ? 32 : 128;
		prefix = max;
		if (slash) {
			errno = 0;
			prefix = strtoul(slash + 1, &end, 10);
			if (!isdigit((unsigned char)slash[1]) || *end || errno || prefix > max) {
				snprintf(why, whylen, "expected a prefix length from 0 to %u after '/'",
				         max);
				return -EINVAL;
			}
		}
		r->prefix = (unsigned)prefix;
		if (mask_host_bits(r->addr, max / 8, r->prefix)) {
			char net[INET6_ADDRSTRLEN];
			inet_ntop(r->kind == NETPOLICY_NET4 ? AF_INET : AF_INET6, r->addr, net,
			          sizeof net);
			snprintf(why, whylen, "address bits set past the prefix (did you mean %s/%u?)",
			         net, r->prefix);
			return -EINVAL;
		}
		return 0;
	}
	if (slash) {
		snprintf(why, whylen, "'%.64s' before '/' is not an IPv4 or IPv6 address", addr);
		return -EINVAL;
	}
	r->kind = NETPOLICY_HOST;
	if (e[0] == '*' && e[1] == '.') {
		r->kind = NETPOLICY_SUFFIX;
		e += 2;
		alen -= 2;
	}
	if (alen > 0 && e[alen - 1] == '.')
		alen--;
	if (!name_valid(e, alen)) {
		snprintf(why, whylen, ENTRY_HELP);
		return -EINVAL;
	}
	for (size_t i = 0; i < alen; i++)
		r->name[i] = (char)tolower((unsigned char)e[i]);
	r->name[alen] = '\0';
	return 0;
}

/* Appends every entry of list to *v; "none" sets *none. Errors name setting and list. */
static int parse_list(const char *setting, const char *list, int is_default,
                      netpolicy_rule_t **v, size_t *n, int *none, errlist_t *errs)
{
	const char *p = list;
	int rc = 0;

	for (;;) {
		size_t len = strcspn(p, ",");
		const char *s = p, *t = p + len;
		char entry[NETPOLICY_ENTRY_MAX + 1], why[160];
		netpolicy_rule_t r;

		while (s < t && isspace((unsigned char)*s))
			s++;
		while (t > s && isspace((unsigned char)t[-1]))
			t--;
		if (t == s) {
			errlist_add(errs, "%s=\"%s\": an empty entry (%s)", setting, list, ENTRY_HELP);
			rc = -EINVAL;
		} else if ((size_t)(t - s) > NETPOLICY_ENTRY_MAX) {
			errlist_add(errs, "%s=\"%.40s...\": entry \"%.40s...\": longer than %d bytes",
			            setting, list, s, NETPOLICY_ENTRY_MAX);
			rc = -EINVAL;
		} else {
			memcpy(entry, s, (size_t)(t - s));
			entry[t - s] = '\0';
			if (none && strcasecmp(entry, "none") == 0) {
				*none = 1;
			} else if (strcasecmp(entry, "none") == 0) {
				errlist_add(errs,
				            "%s=\"%s\": entry \"none\": only TARGET_DENY takes it; "
				            "leave %s unset to allow every host",
				            setting, list, setting);
				rc = -EINVAL;
			} else if (parse_entry(entry, &r, why, sizeof why) != 0) {
				errlist_add(errs, "%s=\"%s\": entry \"%s\": %s", setting, list, entry,
				            why);
				rc = -EINVAL;
			} else {
				netpolicy_rule_t *nv = realloc(*v, (*n + 1) * sizeof **v);
				if (!nv)
					oom();
				r.is_default = is_default;
				nv[(*n)++] = r;
				*v = nv;
			}
		}
		if (!p[len])
			break;
		p += len + 1;
	}
	return rc;
}

static void set_default(netpolicy_t *p)
{
	memset(p, 0, sizeof *p);
	if (parse_list("TARGET_DENY", netpolicy_default_deny, 1, &p->deny, &p->ndeny, NULL,
	               NULL) != 0)
		abort(); /* the defaults are valid */
}

int netpolicy_init(netpolicy_t *p, const char *allow, const char *deny, errlist_t *errs)
{
	netpolicy_rule_t *own = NULL;
	size_t nown = 0;
	int none = 0, rc = 0;

	set_default(p);
	if (allow) {
		p->has_allow = 1;
		if (parse_list("TARGET_ALLOW", allow, 0, &p->allow, &p->nallow, NULL, errs) != 0)
			rc = -EINVAL;
	}
	if (deny && parse_list("TARGET_DENY", deny, 0, &own, &nown, &none, errs) != 0)
		rc = -EINVAL;
	if (rc != 0) {
		free(own);
		netpolicy_release(p);
		set_default(p);
		return rc;
	}
	if (none)
		p->ndeny = 0;
	if (nown) {
		netpolicy_rule_t *nv = realloc(p->deny, (p->ndeny + nown) * sizeof *nv);
		if (!nv)
			oom();
		memcpy(nv + p->ndeny, own, nown * sizeof *own);
		p->deny = nv;
		p->ndeny += nown;
	}
	free(own);
	return 0;
}

void netpolicy_release(netpolicy_t *p)
{
	if (!p)
		return;
	free(p->allow);
	free(p->deny);
	memset(p, 0, sizeof *p);
}

int netpolicy_is_open(const netpolicy_t *p)
{
	return !p->has_allow && p->ndeny == 0;
}

/* ---- matching ---- */

/* A host as the policy sees it: an address (family AF_INET/AF_INET6) or a name. */
typedef struct host {
	int family; /* 0: a name */
	unsigned char addr[16];
	char name[254];
} host_t;

static int in_net(const netpolicy_rule_t *r, const host_t *h)
{
	size_t full = r->prefix / 8, bits = r->prefix % 8;

	if ((r->kind == NETPOLICY_NET4) != (h->family == AF_INET))
		return 0;
	if (memcmp(r->addr, h->addr, full) != 0)
		return 0;
	return bits == 0 || ((r->addr[full] ^ h->addr[full]) & (0xff << (8 - bits)) & 0xff) == 0;
}

static int rule_matches(const netpolicy_rule_t *r, const host_t *h)
{
	size_t nl, rl;

	switch (r->kind) {
	case NETPOLICY_NET4:
	case NETPOLICY_NET6: return h->family && in_net(r, h);
	case NETPOLICY_HOST: return !h->family && strcmp(r->name, h->name) == 0;
	case NETPOLICY_SUFFIX:
		if (h->family)
			return 0;
		nl = strlen(h->name);
		rl = strlen(r->name);
		return nl > rl + 1 && h->name[nl - rl - 1] == '.' &&
		       strcmp(h->name + nl - rl, r->name) == 0;
	}
	return 0;
}

/* An IPv4-mapped IPv6 address becomes the IPv4 address it carries. */
static void unmap_v4(host_t *h)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (h->family == AF_INET6 && memcmp(h->addr, mapped, 12) == 0) {
		memmove(h->addr, h->addr + 12, 4);
		h->family = AF_INET;
	}
}

/* 1 if the last label of name (len bytes, no trailing dot) is a number as URL parsers
 * read one (decimal digits, or 0x and hex digits): the host is then an IPv4 address. */
static int ends_in_number(const char *name, size_t len)
{
	const char *dot = memrchr(name, '.', len);
	const char *l = dot ? dot + 1 : name;
	size_t n = len - (size_t)(l - name), i = 0;

	if (n >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X')) {
		for (i = 2; i < n && isxdigit((unsigned char)l[i]); i++)
			;
		return i == n;
	}
	for (i = 0; i < n && isdigit((unsigned char)l[i]); i++)
		;
	return n > 0 && i == n;
}

static int classify(const char *s, size_t len, host_t *h, char *why, size_t whylen)
{
	char buf[256];

	memset(h, 0, sizeof *h);
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof buf) {
		snprintf(why, whylen, "expected a host of 1 to 253 bytes");
		return -EINVAL;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (!isascii(c) || c == '%' || c <= ' ') {
			snprintf(why, whylen,
			         "the host \"%.*s\" has %s, which URL parsers may read differently: "
			         "write it in ASCII (xn-- for an internationalized name)",
			         (int)len, buf, c == '%' ? "percent-encoding" : "non-ASCII bytes");
			return -EINVAL;
		}
	}
	if (memchr(buf, ':', len)) {
		if (inet_pton(AF_INET6, buf, h->addr) != 1) {
			snprintf(why, whylen, "the host \"%s\" is not a valid IPv6 address", buf);
			return -EINVAL;
		}
		h->family = AF_INET6;
		unmap_v4(h);
		return 0;
	}
	if (len > 1 && buf[len - 1] == '.')
		buf[--len] = '\0';
	if (ends_in_number(buf, len)) {
		struct in_addr a;
		if (inet_aton(buf, &a) == 0) {
			snprintf(why, whylen, "the host \"%s\" ends in a number but is not an IPv4 "
			                      "address", buf);
			return -EINVAL;
		}
		memcpy(h->addr, &a, 4);
		h->family = AF_INET;
		return 0;
	}
	for (size_t i = 0; i < len; i++)
		h->name[i] = (char)tolower((unsigned char)buf[i]);
	h->name[len] = '\0';
	return 0;
}

static int judge(const netpolicy_t *p, const host_t *h, int deny_only, char *why, size_t whylen)
{
	for (size_t i = 0; i < p->ndeny; i++)
		if (rule_matches(&p->deny[i], h)) {
			snprintf(why, whylen, "denied by %sTARGET_DENY entry \"%s\"",
			         p->deny[i].is_default ? "the default " : "", p->deny[i].text);
			return -EACCES;
		}
	if (deny_only || !p->has_allow)
		return 0;
	for (size_t i = 0; i < p->nallow; i++)
		if (rule_matches(&p->allow[i], h))
			return 0;
	snprintf(why, whylen, "not allowed by TARGET_ALLOW (no entry matches)");
	return -EACCES;
}

int netpolicy_check_host(const netpolicy_t *p, const char *host, size_t len, char *why,
                         size_t whylen)
{
	host_t h;
	int rc;

	if (whylen)
		why[0] = '\0';
	rc = classify(host, len, &h, why, whylen);
	return rc ? rc : judge(p, &h, 0, why, whylen);
}

int netpolicy_check_url(const netpolicy_t *p, const char *url, char *why, size_t whylen)
{
	static const char *const schemes[] = { "http://", "https://", "ws://", "wss://", NULL };
	const char *a = NULL, *end, *at, *h;
	size_t i;

	if (whylen)
		why[0] = '\0';
	for (i = 0; schemes[i] && !a; i++)
		if (strncasecmp(url, schemes[i], strlen(schemes[i])) == 0)
			a = url + strlen(schemes[i]);
	if (!a)
		return 0;
	end = a + strcspn(a, "/?#\\");
	for (at = end; at > a && at[-1] != '@'; at--)
		;
	a = at > a ? at : a;
	if (*a == '[') {
		const char *rb = memchr(a, ']', (size_t)(end - a));
		h = rb ? rb + 1 : end;
	} else {
		h = memchr(a, ':', (size_t)(end - a));
		h = h ? h : end;
	}
	return netpolicy_check_host(p, a, (size_t)(h - a), why, whylen);
}

int netpolicy_check_addr(const netpolicy_t *p, const struct sockaddr *sa, char *why,
                         size_t whylen)
{
	host_t h;

	if (whylen)
		why[0] = '\0';
	memset(&h, 0, sizeof h);
	if (sa->sa_family == AF_INET) {
		memcpy(h.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(h.addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	} else {
		return 0;
	}
	h.family = sa->sa_family;
	unmap_v4(&h);
	return judge(p, &h, 1, why, whylen);
}
