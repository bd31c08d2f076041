/* Unit tests for netpolicy: list parsing (every bad entry named), the default DENY, ALLOW,
 * IPv4/IPv6 networks, name patterns, the host forms URL parsers read alike, URLs and
 * resolved addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/netpolicy.h"

static int host_rc(const netpolicy_t *p, const char *host, char *why, size_t whylen)
{
	return netpolicy_check_host(p, host, strlen(host), why, whylen);
}

#define ALLOWED(p, h)                                                                         \
	do {                                                                                  \
		char w_[256];                                                                 \
		int r_ = host_rc(p, h, w_, sizeof w_);                                        \
		if (r_ != 0)                                                                  \
			fail_msg("%s: expected allowed, got %d (%s)", h, r_, w_);             \
	} while (0)
#define REFUSED(p, h, rc)                                                                     \
	do {                                                                                  \
		char w_[256];                                                                 \
		int r_ = host_rc(p, h, w_, sizeof w_);                                        \
		if (r_ != (rc))                                                               \
			fail_msg("%s: expected %d, got %d (%s)", h, rc, r_, w_);              \
	} while (0)

static void init_ok(netpolicy_t *p, const char *allow, const char *deny)
{
	errlist_t e;

	errlist_init(&e);
	if (netpolicy_init(p, allow, deny, &e) != 0)
		fail_msg("allow=%s deny=%s: %s", allow ? allow : "(unset)", deny ? deny : "(unset)",
		         errlist_text(&e));
	assert_int_equal(e.count, 0);
	errlist_release(&e);
}

static void test_netpolicy__default_denies_link_local_and_metadata(void **state)
{
	netpolicy_t p;
	char why[256];

	(void)state;
	init_ok(&p, NULL, NULL);
	assert_false(netpolicy_is_open(&p));
	REFUSED(&p, "169.254.169.254", -EACCES);
	REFUSED(&p, "169.254.0.1", -EACCES);
	REFUSED(&p, "[fe80::1]", -EACCES);
	REFUSED(&p, "febf::1", -EACCES);
	REFUSED(&p, "[fd00:ec2::254]", -EACCES);
	REFUSED(&p, "100.100.100.200", -EACCES);
	REFUSED(&p, "metadata.google.internal", -EACCES);
	REFUSED(&p, "METADATA.Google.Internal.", -EACCES);
	REFUSED(&p, "metadata", -EACCES);
	assert_int_equal(host_rc(&p, "169.254.169.254", why, sizeof why), -EACCES);
	assert_string_equal(why, "denied by the default TARGET_DENY entry \"169.254.0.0/16\"");
	/* loopback, private ranges and ordinary names are allowed by default */
	ALLOWED(&p, "127.0.0.1");
	ALLOWED(&p, "10.1.2.3");
	ALLOWED(&p, "192.168.1.1");
	ALLOWED(&p, "[::1]");
	ALLOWED(&p, "[fd00:ec2::253]");
	ALLOWED(&p, "169.255.0.1");
	ALLOWED(&p, "100.100.100.201");
	ALLOWED(&p, "example.com");
	ALLOWED(&p, "metadata.example.com");
	ALLOWED(&p, "google.internal");
	netpolicy_release(&p);
}

static void test_netpolicy__ipv4_forms_parsers_accept(void **state)
{
	netpolicy_t p;

	(void)state;
	init_ok(&p, NULL, NULL);
	/* each of these is 169.254.169.254 to curl and Chromium */
	REFUSED(&p, "2852039166", -EACCES);
	REFUSED(&p, "0xa9fea9fe", -EACCES);
	REFUSED(&p, "0251.0376.0251.0376", -EACCES);
	REFUSED(&p, "169.254.43518", -EACCES);
	REFUSED(&p, "0xA9.0xFE.0xA9.0xFE", -EACCES);
	REFUSED(&p, "169.254.169.254.", -EACCES);
	REFUSED(&p, "[::ffff:169.254.169.254]", -EACCES);
	REFUSED(&p, "[::ffff:a9fe:a9fe]", -EACCES);
	/* unclear hosts are refused, not guessed */
	REFUSED(&p, "%31%36%39.254.169.254", -EINVAL);
	REFUSED(&p, "169\xef\xbd\xa1" "254.169.254", -EINVAL);
	REFUSED(&p, "1.2.3.4.5", -EINVAL);
	REFUSED(&p, "example.999999999999", -EINVAL);
	REFUSED(&p, "[fe80::1%25eth0]", -EINVAL);
	REFUSED(&p, "[not:an:address]", -EINVAL);
	REFUSED(&p, "", -EINVAL);
	/* a number inside a name is a name */
	ALLOWED(&p, "169.254.169.254.nip.io");
	ALLOWED(&p, "123abc");
	netpolicy_release(&p);
}

static void test_netpolicy__deny_adds_to_default_none_drops_it(void **state)
{
	netpolicy_t p;
	char why[256];

	(void)state;
	init_ok(&p, NULL, "10.0.0.0/8, 172.16.0.0/12,192.168.0.0/16,127.0.0.0/8,::1/128,fc00::/7");
	REFUSED(&p, "10.255.0.1", -EACCES);
	REFUSED(&p, "172.31.255.255", -EACCES);
	ALLOWED(&p, "172.32.0.1");
	REFUSED(&p, "192.168.0.1", -EACCES);
	REFUSED(&p, "127.1", -EACCES);
	REFUSED(&p, "[::1]", -EACCES);
	REFUSED(&p, "[fd12::1]", -EACCES);
	REFUSED(&p, "[::ffff:127.0.0.1]", -EACCES);
	REFUSED(&p, "169.254.169.254", -EACCES); /* the defaults stay */
	assert_int_equal(host_rc(&p, "127.0.0.1", why, sizeof why), -EACCES);
	assert_string_equal(why, "denied by TARGET_DENY entry \"127.0.0.0/8\"");
	netpolicy_release(&p);

	init_ok(&p, NULL, "none");
	assert_true(netpolicy_is_open(&p));
	ALLOWED(&p, "169.254.169.254");
	ALLOWED(&p, "metadata");
	netpolicy_release(&p);

	init_ok(&p, NULL, "none,*.internal");
	ALLOWED(&p, "169.254.169.254");
	REFUSED(&p, "metadata.google.internal", -EACCES);
	ALLOWED(&p, "internal");
	netpolicy_release(&p);
}

static void test_netpolicy__allow_list(void **state)
{
	netpolicy_t p;
	char why[256];

	(void)state;
	init_ok(&p, "*.example.com,example.org,192.0.2.0/24,2001:db8::/32", NULL);
	ALLOWED(&p, "www.example.com");
	ALLOWED(&p, "a.b.EXAMPLE.com.");
	REFUSED(&p, "example.com", -EACCES); /* "*." is the subdomains only */
	REFUSED(&p, "badexample.com", -EACCES);
	REFUSED(&p, "example.com.evil.net", -EACCES);
	ALLOWED(&p, "example.org");
	REFUSED(&p, "www.example.org", -EACCES);
	ALLOWED(&p, "192.0.2.77");
	REFUSED(&p, "192.0.3.1", -EACCES);
	ALLOWED(&p, "[2001:db8::1]");
	REFUSED(&p, "[2001:db9::1]", -EACCES);
	assert_int_equal(host_rc(&p, "other.net", why, sizeof why), -EACCES);
	assert_string_equal(why, "not allowed by TARGET_ALLOW (no entry matches)");
	netpolicy_release(&p);

	/* DENY wins over ALLOW */
	init_ok(&p, "169.254.0.0/16,*.example.com", "secret.example.com");
	REFUSED(&p, "169.254.169.254", -EACCES);
	REFUSED(&p, "secret.example.com", -EACCES);
	ALLOWED(&p, "public.example.com");
	netpolicy_release(&p);
}

static void test_netpolicy__bad_entries_named(void **state)
{
	static const struct {
		const char *allow, *deny, *text;
	} cases[] = {
		{ NULL, "10.0.0.1/8", "TARGET_DENY=\"10.0.0.1/8\": entry \"10.0.0.1/8\": address "
		                      "bits set past the prefix (did you mean 10.0.0.0/8?)" },
		{ NULL, "10.0.0.0/33", "entry \"10.0.0.0/33\": expected a prefix length from 0 to 32" },
		{ NULL, "fc00::/129", "expected a prefix length from 0 to 128" },
		{ NULL, "10.0.0.0/", "expected a prefix length" },
		{ NULL, "10.0.0.0/-1", "expected a prefix length" },
		{ NULL, "10.0.0/8", "'10.0.0' before '/' is not an IPv4 or IPv6 address" },
		{ NULL, "a,,b", "TARGET_DENY=\"a,,b\": an empty entry" },
		{ NULL, "a,", "an empty entry" },
		{ "exa mple.com", NULL, "TARGET_ALLOW=\"exa mple.com\": entry \"exa mple.com\": "
		                        "expected an IPv4 or IPv6 network" },
		{ "*example.com", NULL, "entry \"*example.com\"" },
		{ "*.", NULL, "entry \"*.\"" },
		{ "http://x.com/", NULL, "entry \"http://x.com/\"" },
		{ "a..b", NULL, "entry \"a..b\"" },
		{ "none", NULL, "entry \"none\"" }, /* "none" is for DENY */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		netpolicy_t p;
		errlist_t e;
		errlist_init(&e);
		assert_int_equal(netpolicy_init(&p, cases[i].allow, cases[i].deny, &e), -EINVAL);
		assert_int_equal(e.count, 1);
		if (!strstr(errlist_text(&e), cases[i].text))
			fail_msg("case %zu: '%s' lacks '%s'", i, errlist_text(&e), cases[i].text);
		/* a failed init leaves the default policy */
		REFUSED(&p, "169.254.169.254", -EACCES);
		assert_false(p.has_allow);
		netpolicy_release(&p);
		errlist_release(&e);
	}
	{
		/* every bad entry of both lists at once */
		netpolicy_t p;
		errlist_t e;
		errlist_init(&e);
		assert_int_equal(netpolicy_init(&p, "x y,ok.com,1.2.3.4/40", "bad/1,10.0.0.0/8", &e),
		                 -EINVAL);
		assert_int_equal(e.count, 3);
		netpolicy_release(&p);
		errlist_release(&e);
	}
}

static void test_netpolicy__urls(void **state)
{
	netpolicy_t p;
	char why[256];

	(void)state;
	init_ok(&p, NULL, "127.0.0.0/8,::1,*.corp.example");
	assert_int_equal(netpolicy_check_url(&p, "http://127.0.0.1:8080/x", why, sizeof why),
	                 -EACCES);
	assert_int_equal(netpolicy_check_url(&p, "HTTPS://user:pw@127.0.0.2/", why, sizeof why),
	                 -EACCES);
	assert_int_equal(netpolicy_check_url(&p, "http://[::1]:9/", why, sizeof why), -EACCES);
	assert_int_equal(netpolicy_check_url(&p, "ws://x.corp.example/ws", why, sizeof why),
	                 -EACCES);
	assert_int_equal(netpolicy_check_url(&p, "http://a@169.254.169.254", why, sizeof why),
	                 -EACCES);
	assert_int_equal(netpolicy_check_url(&p, "http://example.com@127.0.0.1/", why, sizeof why),
	                 -EACCES);
	assert_int_equal(netpolicy_check_url(&p, "http://127.0.0.1\\@example.com/", why,
	                                     sizeof why),
	                 -EACCES);
	assert_int_equal(netpolicy_check_url(&p, "http://example.com:80/?u=http://127.0.0.1/",
	                                     why, sizeof why),
	                 0);
	assert_int_equal(netpolicy_check_url(&p, "data:text/html,hi", why, sizeof why), 0);
	assert_int_equal(netpolicy_check_url(&p, "about:blank", why, sizeof why), 0);
	assert_int_equal(netpolicy_check_url(&p, "http:///x", why, sizeof why), -EINVAL);
	netpolicy_release(&p);
}

static void test_netpolicy__resolved_addresses_deny_only(void **state)
{
	netpolicy_t p;
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;
	struct sockaddr un = { .sa_family = AF_UNIX };
	char why[256];

	(void)state;
	init_ok(&p, "*.example.com", "127.0.0.0/8");
	memset(&a4, 0, sizeof a4);
	a4.sin_family = AF_INET;
	inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
	assert_int_equal(netpolicy_check_addr(&p, (struct sockaddr *)&a4, why, sizeof why),
	                 -EACCES);
	assert_string_equal(why, "denied by TARGET_DENY entry \"127.0.0.0/8\"");
	inet_pton(AF_INET, "169.254.169.254", &a4.sin_addr);
	assert_int_equal(netpolicy_check_addr(&p, (struct sockaddr *)&a4, why, sizeof why),
	                 -EACCES);
	/* an address not in ALLOW passes: ALLOW is about the host as written */
	inet_pton(AF_INET, "192.0.2.1", &a4.sin_addr);
	assert_int_equal(netpolicy_check_addr(&p, (struct sockaddr *)&a4, why, sizeof why), 0);
	memset(&a6, 0, sizeof a6);
	a6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:127.0.0.5", &a6.sin6_addr);
	assert_int_equal(netpolicy_check_addr(&p, (struct sockaddr *)&a6, why, sizeof why),
	                 -EACCES);
	inet_pton(AF_INET6, "fe80::1", &a6.sin6_addr);
	assert_int_equal(netpolicy_check_addr(&p, (struct sockaddr *)&a6, why, sizeof why),
	                 -EACCES);
	inet_pton(AF_INET6, "2001:db8::1", &a6.sin6_addr);
	assert_int_equal(netpolicy_check_addr(&p, (struct sockaddr *)&a6, why, sizeof why), 0);
	assert_int_equal(netpolicy_check_addr(&p, &un, why, sizeof why), 0);
	netpolicy_release(&p);
}

static void test_netpolicy__prefix_edges(void **state)
{
	netpolicy_t p;

	(void)state;
	init_ok(&p, NULL, "none,0.0.0.0/0");
	REFUSED(&p, "1.2.3.4", -EACCES);
	ALLOWED(&p, "[2001:db8::1]");
	ALLOWED(&p, "example.com");
	netpolicy_release(&p);
	init_ok(&p, NULL, "none,192.0.2.128/25,2001:db8:ff00::/41");
	ALLOWED(&p, "192.0.2.127");
	REFUSED(&p, "192.0.2.128", -EACCES);
	REFUSED(&p, "192.0.2.255", -EACCES);
	REFUSED(&p, "[2001:db8:ff7f::1]", -EACCES);
	ALLOWED(&p, "[2001:db8:ff80::1]");
	netpolicy_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netpolicy__default_denies_link_local_and_metadata),
		cmocka_unit_test(test_netpolicy__ipv4_forms_parsers_accept),
		cmocka_unit_test(test_netpolicy__deny_adds_to_default_none_drops_it),
		cmocka_unit_test(test_netpolicy__allow_list),
		cmocka_unit_test(test_netpolicy__bad_entries_named),
		cmocka_unit_test(test_netpolicy__urls),
		cmocka_unit_test(test_netpolicy__resolved_addresses_deny_only),
		cmocka_unit_test(test_netpolicy__prefix_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
