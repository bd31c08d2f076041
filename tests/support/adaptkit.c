/* adaptkit: the adapter and snapshot unit tests' helpers (see adaptkit.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/adaptkit.h"

json_t *ak_parse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
	if (!v)
		fail_msg("bad test JSON %s: %s", text, err.text);
	return v;
}

void ak_assert_has(const char *text, const char *needle)
{
	if (!strstr(text, needle))
		fail_msg("\"%s\" not found in:\n%s", needle, text);
}

void ak_assert_json(const json_t *a, const char *text)
{
	json_t *b = ak_parse(text);
	if (!json_equal((json_t *)a, b)) {
		char *s = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
		print_error("got      %s\nexpected %s\n", s ? s : "(null)", text);
		free(s);
		json_decref(b);
		fail();
	}
	json_decref(b);
}

const adapter_t *ak_adapter(const char *name)
{
	const adapter_t *a = adapter_find(name);
	assert_non_null(a);
	return a;
}

void *ak_good(const adapter_t *a, const char *target, const char *where)
{
	json_t *t = ak_parse(target);
	errlist_t errs;
	void *st = NULL;

	errlist_init(&errs);
	if (a->parse(t, where, &st, &errs) != 0)
		fail_msg("parse failed: %s", errlist_text(&errs));
	assert_int_equal(errs.count, 0);
	assert_non_null(st);
	errlist_release(&errs);
	json_decref(t);
	return st;
}

void ak_norm(const adapter_t *a, void *st, const char *raw, const char *data, const char *why_part)
{
	json_t *r = ak_parse(raw), *got;
	char why[512] = "";

	got = a->normalise(st, r, why, sizeof why);
	if (data) {
		json_t *want = ak_parse(data);
		if (!got)
			fail_msg("normalise failed: %s", why);
		if (!json_equal(got, want)) {
			char *s = json_dumps(got, JSON_COMPACT);
			fail_msg("got %s, expected %s", s, data);
		}
		json_decref(want);
	} else {
		if (got) {
			char *s = json_dumps(got, JSON_COMPACT);
			fail_msg("expected an error containing %s, got %s", why_part, s);
		}
		ak_assert_has(why, why_part);
	}
	json_decref(got);
	json_decref(r);
	a->free_state(st);
}
