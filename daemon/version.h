/*
 * version.h: `cdpilot --version --browser`, the Chromium build cdpilot drives.
 */
#ifndef CDPILOT_DAEMON_VERSION_H
#define CDPILOT_DAEMON_VERSION_H

/*
 * Launches (or, with CDP_URL, attaches to) the browser as `cdpilot run` would, prints one
 * line of JSON {"cdpilot", "executable", "product", "revision", "protocolVersion",
 * "userAgent", "jsVersion"} from Browser.getVersion, closes the browser and returns 0; or
 * prints why on stderr and returns a scrape exit code (2 settings, 3 launch, 9 browser,
 * 10 internal). Runs its own loop; call from main() only.
 */
int version_browser_main(void);

#endif
