/*
 * test_targets_example: docker/targets/targets.json, the targets file the image ships
 * and docker-compose.yml mounts, is accepted by the daemon's own parser
 * (daemon/targets.h). A broken copy (unknown adapter, misspelt key) must be refused, so
 * the test can fail.
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

#include "daemon/targets.h"
#include "util/errlist.h"

#define EXAMPLE CDPILOT_SOURCE_DIR "/docker/targets/targets.json"

static void test_targets_example__parses(void **state)
{
	target_set_t set = { 0 };
	errlist_t errs;
	int rc;

	(void)state;
	errlist_init(&errs);
	rc = targets_load_file(EXAMPLE, &set, &errs);
	if (rc != 0)
		fail_msg("%s refused (%d):\n%s", EXAMPLE, rc, errlist_text(&errs));
	assert_true(set.n >= 1);
	for (size_t i = 0; i < set.n; i++) {
		assert_non_null(set.v[i].adapter);
		assert_true(strncmp(set.v[i].url, "https://", 8) == 0);
	}
	targets_release(&set);
	errlist_release(&errs);
}

/* Parses the example after f() changed its first target; expects a refusal naming want. */
static void refused_after(void (*f)(json_t *target), const char *want)
{
	json_error_t jerr;
	json_t *root = json_load_file(EXAMPLE, 0, &jerr);
	target_set_t set = { 0 };
	errlist_t errs;
	int rc;

	if (!root)
		fail_msg("%s: %s at line %d", EXAMPLE, jerr.text, jerr.line);
	f(json_array_get(json_object_get(root, "targets"), 0));
	errlist_init(&errs);
	rc = targets_parse_json(root, &set, &errs);
	assert_int_not_equal(rc, 0);
	assert_int_equal(set.n, 0);
	if (!strstr(errlist_text(&errs), want))
		fail_msg("expected an error naming \"%s\", got:\n%s", want, errlist_text(&errs));
	targets_release(&set);
	errlist_release(&errs);
	json_decref(root);
}

static void bad_adapter(json_t *t)
{
	json_object_set_new(t, "adapter", json_string("no-such-adapter"));
}

static void misspelt_key(json_t *t)
{
	json_object_set(t, "intervall_seconds", json_object_get(t, "interval_seconds"));
}

static void test_targets_example__broken_copy_refused(void **state)
{
	(void)state;
	refused_after(bad_adapter, "no-such-adapter");
	refused_after(misspelt_key, "intervall_seconds");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets_example__parses),
		cmocka_unit_test(test_targets_example__broken_copy_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
