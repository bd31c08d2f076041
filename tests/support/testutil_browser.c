/* testutil_browser: the checks that need the browser module (kept apart so unit tests
 * link without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <signal.h>
#include <stdlib.h>
#include <uv.h>

#include "pool/browser.h"
#include "tests/support/testutil.h"
#include "util/log.h"

int tu_browser_test_init(int argc, char **argv)
{
	char err[256];

	if (browser_exec_wrapper_main(argc, argv))
		return 1;
	signal(SIGPIPE, SIG_IGN);
	tu_tag_processes();
	/* libuv opens a process-wide signal pipe on first use: take it before any test counts
	 * its fds */
	tu_warm_up_libuv();
	log_set_level(getenv("LOG_LEVEL") ? log_get_level() : LOG_WARN);
	log_init_from_env(err, sizeof err);
	/* TEST_FILTER=pattern runs only the matching cases (while working on one) */
	if (getenv("TEST_FILTER"))
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return 0;
}

void tu_require_chromium(void)
{
	char path[4096], err[1024];
	if (browser_find_executable(NULL, path, sizeof path, err, sizeof err) != 0)
		fail_msg("Chromium is required for this test and was not found: %s "
		         "(the README's test command installs it)", err);
}

