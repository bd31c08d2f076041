/* testutil_browser: the checks that need the browser module (kept apart so unit tests
 * link without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pool/browser.h"
#include "tests/support/testutil.h"

void tu_require_chromium(void)
{
	char path[4096], err[1024];
	if (browser_find_executable(NULL, path, sizeof path, err, sizeof err) != 0)
		fail_msg("Chromium is required for this test and was not found: %s "
		         "(the README's test command installs it)", err);
}

