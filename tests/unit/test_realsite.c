/*
 * Unit tests for the fixture's realistic page set (tests/fixture/realsite.c): realsite_handle()
 * is pure (no I/O), so the cases call it directly. A match page names only assets the site
 * serves; the PNGs' chunk CRCs and zlib Adler-32 match their data; the WOFF2 header agrees
 * with its size and its Brotli stream holds the whole table data; the live value follows the
 * clock; bad ids and unknown names are 404. Chromium loading the pages (the font accepted,
 * the score rendered) is what bench/run-pool.sh --pages real exercises.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "tests/fixture/realsite.h"

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return ~c;
}

static void get(realsite_t *s, const char *path, uint64_t ms, realsite_reply_t *r)
{
	realsite_handle(s, path, ms, r);
}

static void done(realsite_reply_t *r)
{
	free(r->owned);
}

static void test_realsite__page_names_only_served_assets(void **state)
{
	realsite_t *s = realsite_new();
	realsite_reply_t page, a;
	int refs = 0;

	get(s, "/real/match/7", 0, &page);
	assert_int_equal(page.status, 200);
	assert_non_null(strstr(page.type, "text/html"));
	assert_non_null(strstr(page.body, "<title>Match 7: "));
	assert_non_null(strstr(page.body, "id=\"live-score\""));
	assert_non_null(strstr(page.body, "data-match=\"7\""));
	/* every src="/real/..." and href="/real/assets/..." is served, with a type */
	for (const char *p = page.body; (p = strstr(p, "\"/real/")) != NULL; p++) {
		char path[128];
		size_t n = strcspn(p + 1, "\"");
		if (strncmp(p + 1, "/real/match/", 12) == 0)
			continue; /* the navigation links */
		assert_true(n < sizeof path);
		memcpy(path, p + 1, n);
		path[n] = '\0';
		get(s, path, 0, &a);
		assert_int_equal(a.status, 200);
		assert_true(a.body_len > 1000);
		done(&a);
		refs++;
	}
	assert_int_equal(refs, 1 + 1 + 1 + 2 + 6 + 1); /* font, css, hero, crests, news, js */
	done(&page);
	realsite_free(s);
}

static void test_realsite__weight_is_a_real_page(void **state)
{
	static const char *const assets[] = {
		"/real/assets/site.css", "/real/assets/score.woff2", "/real/assets/bundle.js",
		"/real/img/hero.png",    "/real/img/crest-home.png", "/real/img/crest-away.png",
		"/real/img/news-1.png",  "/real/img/news-2.png",     "/real/img/news-3.png",
		"/real/img/news-4.png",  "/real/img/news-5.png",     "/real/img/news-6.png",
	};
	realsite_t *s = realsite_new();
	realsite_reply_t r;
	size_t total = 0, js = 0;

	for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++) {
		get(s, assets[i], 0, &r);
		assert_int_equal(r.status, 200);
		assert_null(r.owned); /* assets belong to the site */
		total += r.body_len;
		if (strstr(r.type, "javascript"))
			js = r.body_len;
	}
	get(s, "/real/match/0", 0, &r);
	total += r.body_len;
	done(&r);
	assert_in_range(js, 300 * 1024, 500 * 1024);
	assert_in_range(total, 1000 * 1024, 2000 * 1024);
	realsite_free(s);
}

static void test_realsite__pngs_are_well_formed(void **state)
{
	realsite_t *s = realsite_new();
	realsite_reply_t r;
	const unsigned char *p;
	size_t off = 8;
	int idat = 0;

	get(s, "/real/img/crest-home.png", 0, &r);
	p = (const unsigned char *)r.body;
	assert_memory_equal(p, "\x89PNG\r\n\x1a\n", 8);
	while (off < r.body_len) {
		uint32_t n = be32(p + off);
		assert_true(off + 12 + n <= r.body_len);
		assert_int_equal(crc32_of(p + off + 4, n + 4), be32(p + off + 8 + n));
		if (memcmp(p + off + 4, "IHDR", 4) == 0) {
			assert_int_equal(be32(p + off + 8), 96);
			assert_int_equal(p[off + 8 + 9], 6); /* RGBA */
		}
		if (memcmp(p + off + 4, "IDAT", 4) == 0) {
			/* zlib of stored blocks: 96 rows of 1 + 96 * 4 bytes, then Adler-32 */
			const unsigned char *z = p + off + 8;
			uint32_t a = 1, b = 0;
			size_t raw = 0, at = 2;
			for (;;) {
				size_t len = z[at + 1] | (size_t)z[at + 2] << 8;
				int last = z[at] & 1;
				assert_int_equal(len ^ 0xffff, z[at + 3] | (size_t)z[at + 4] << 8);
				for (size_t i = 0; i < len; i++) {
					a = (a + z[at + 5 + i]) % 65521;
					b = (b + a) % 65521;
				}
				raw += len;
				at += 5 + len;
				if (last)
					break;
			}
			assert_int_equal(raw, 96 * (1 + 96 * 4));
			assert_int_equal(be32(z + at), b << 16 | a);
			assert_int_equal(at + 4, n);
			idat++;
		}
		off += 12 + n;
	}
	assert_int_equal(off, r.body_len);
	assert_int_equal(idat, 1);
	realsite_free(s);
}

static void test_realsite__woff2_header_matches_its_bytes(void **state)
{
	realsite_t *s = realsite_new();
	realsite_reply_t r;
	const unsigned char *p;

	get(s, "/real/assets/score.woff2", 0, &r);
	p = (const unsigned char *)r.body;
	assert_string_equal(r.type, "font/woff2");
	assert_memory_equal(p, "wOF2", 4);
	assert_int_equal(be32(p + 4), 0x00010000); /* TrueType outlines */
	assert_int_equal(be32(p + 8), r.body_len); /* length */
	assert_int_equal(p[12] << 8 | p[13], 10);  /* numTables */
	assert_int_equal(r.body_len % 4, 0);
	/* the Brotli stream: WBITS 16, one uncompressed meta-block, the empty last one */
	uint32_t clen = be32(p + 20);
	assert_true(clen > 1000 && 48 + clen <= r.body_len);
	const unsigned char *br = p + r.body_len - ((clen + 3) / 4 * 4);
	uint32_t bits = br[0] | (uint32_t)br[1] << 8 | (uint32_t)br[2] << 16;
	assert_int_equal(bits & 0xf, 0);     /* WBITS 16, not last, 4 nibbles */
	assert_int_equal(bits >> 20 & 1, 1); /* uncompressed */
	assert_int_equal((bits >> 4 & 0xffff) + 1 + 3 + 1, clen);
	assert_int_equal(br[clen - 1], 0x03); /* ISLAST, ISLASTEMPTY */
	realsite_free(s);
}

static void test_realsite__live_value_follows_the_clock(void **state)
{
	realsite_t *s = realsite_new();
	realsite_reply_t r;
	json_t *a, *b;

	get(s, "/real/api/match/3", 1000000, &r);
	assert_string_equal(r.type, "application/json");
	a = json_loadb(r.body, r.body_len, 0, NULL);
	done(&r);
	get(s, "/real/api/match/3", 1000000 + 2000, &r);
	b = json_loadb(r.body, r.body_len, 0, NULL);
	done(&r);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(json_integer_value(json_object_get(a, "id")), 3);
	/* a match minute is 2 s of the wall clock */
	assert_int_equal((json_integer_value(json_object_get(a, "minute")) + 1) % 91,
	                 json_integer_value(json_object_get(b, "minute")));
	assert_true(json_is_integer(json_object_get(json_object_get(a, "score"), "home")));
	json_decref(a);
	json_decref(b);
	realsite_free(s);
}

static void test_realsite__bad_paths_are_404(void **state)
{
	static const char *const bad[] = {
		"/real/match/1000",   "/real/match/",       "/real/match/x", "/real/match/7a",
		"/real/api/match/-1", "/real/img/nope.png", "/real/",        "/real/assets/"
	};
	realsite_t *s = realsite_new();
	realsite_reply_t r;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		get(s, bad[i], 0, &r);
		assert_int_equal(r.status, 404);
		done(&r);
	}
	realsite_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_realsite__page_names_only_served_assets),
		cmocka_unit_test(test_realsite__weight_is_a_real_page),
		cmocka_unit_test(test_realsite__pngs_are_well_formed),
		cmocka_unit_test(test_realsite__woff2_header_matches_its_bytes),
		cmocka_unit_test(test_realsite__live_value_follows_the_clock),
		cmocka_unit_test(test_realsite__bad_paths_are_404),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
