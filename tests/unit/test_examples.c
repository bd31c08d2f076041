/*
 * test_examples: every targets file in examples/ (examples/README.md) is accepted by the
 * daemon's own parser, targets_load_file() (daemon/targets.h), so the examples a user
 * copies are real. Each file is loaded from the source tree as `cdpilot run --targets`
 * would load it (script_file paths relative to it); a refusal names the file and lists
 * its errors. So that the test cannot pass on nothing, examples/ must hold at least one
 * targets file, every one of them must be described in examples/README.md, and every
 * file the README names must exist.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/targets.h"
#include "util/errlist.h"

#define EXAMPLES CDPILOT_SOURCE_DIR "/examples"
#define README EXAMPLES "/README.md"
#define NAMES_MAX 64
#define README_MAX (256 * 1024)

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the .json files in examples/, sorted, into names (each malloc'd); returns
 * how many. */
static size_t example_files(char *names[NAMES_MAX])
{
	DIR *d = opendir(EXAMPLES);
	struct dirent *e;
	size_t n = 0;

	if (!d)
		fail_msg("%s: cannot open the examples folder", EXAMPLES);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0)
			continue;
		if (n == NAMES_MAX)
			fail_msg("%s: more than %d targets files; raise NAMES_MAX", EXAMPLES,
			         NAMES_MAX);
		names[n] = strdup(e->d_name);
		assert_non_null(names[n]);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_names);
	return n;
}

/* examples/README.md as a NUL-terminated string (malloc'd). */
static char *readme_text(void)
{
	FILE *f = fopen(README, "r");
	char *buf = malloc(README_MAX + 1);
	size_t n;

	if (!f)
		fail_msg("%s: cannot open it", README);
	assert_non_null(buf);
	n = fread(buf, 1, README_MAX, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void free_names(char *names[], size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
}

static void test_examples__every_file_parses(void **state)
{
	char *names[NAMES_MAX];
	size_t n, refused = 0;
	char report[16384] = "";
	size_t used = 0;

	(void)state;
	n = example_files(names);
	if (n == 0)
		fail_msg("%s: no targets file (*.json) found", EXAMPLES);
	for (size_t i = 0; i < n; i++) {
		char path[1024];
		target_set_t set = { 0 };
		errlist_t errs;
		int rc, w;

		snprintf(path, sizeof path, "%s/%s", EXAMPLES, names[i]);
		errlist_init(&errs);
		rc = targets_load_file(path, &set, &errs);
		if (rc == 0 && set.n == 0)
			errlist_add(&errs, "no target in it");
		if (rc != 0 || set.n == 0) {
			refused++;
			w = snprintf(report + used, sizeof report - used,
			             "examples/%s refused (%d):\n%s\n", names[i], rc,
			             errlist_text(&errs));
			if (w > 0 && (size_t)w < sizeof report - used)
				used += (size_t)w;
		} else {
			print_message("examples/%s: %zu target(s)\n", names[i], set.n);
		}
		targets_release(&set);
		errlist_release(&errs);
	}
	free_names(names, n);
	if (refused)
		fail_msg("%zu of %zu example targets file(s) refused by the parser:\n%s", refused,
		         n, report);
}

/* Each examples/NAME.json is explained in the README, and each `examples/NAME.json` the
 * README names exists. */
static void test_examples__readme_matches_the_files(void **state)
{
	char *names[NAMES_MAX];
	char *text = readme_text();
	size_t n = example_files(names);
	const char *p = text;

	(void)state;
	for (size_t i = 0; i < n; i++)
		if (!strstr(text, names[i]))
			fail_msg("examples/%s is not described in %s", names[i], README);
	while ((p = strstr(p, "examples/"))) {
		char name[256];
		size_t len = strspn(p + 9, "abcdefghijklmnopqrstuvwxyz0123456789-_.");
		int found = 0;

		p += 9;
		if (len < 6 || len >= sizeof name || strncmp(p + len - 5, ".json", 5) != 0)
			continue;
		memcpy(name, p, len);
		name[len] = '\0';
		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(names[i], name) == 0;
		if (!found)
			fail_msg("%s names examples/%s, which is not in %s", README, name, EXAMPLES);
	}
	free_names(names, n);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples__every_file_parses),
		cmocka_unit_test(test_examples__readme_matches_the_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
