# Daemon-level tests: `cdpilot run` as a child process against the fixture's demo site.
add_library(cdpilot_daemonkit STATIC support/daemonkit.c)
target_link_libraries(cdpilot_daemonkit PUBLIC cdpilot_testutil PkgConfig::CURL PkgConfig::JANSSON)
# dk_check_metric_names() reads docker/metric-names.txt from the source tree.
target_compile_definitions(cdpilot_daemonkit PRIVATE CDPILOT_SOURCE_DIR="${CMAKE_SOURCE_DIR}")

if(TARGET cdpilot_targets AND TARGET cdpilot_sched AND TARGET cdpilot_watchdog
   AND TARGET cdpilot_httpd AND TARGET cdpilot_store)
  cdpilot_test(NAME test_run SOURCES integration/test_run.c support/redis_server.c
               LIBS cdpilot_daemonkit cdpilot_store TIMEOUT 900 LABELS integration)
  # the targets file replaced (by rename, in place), watched and on SIGHUP
  cdpilot_test(NAME test_targets_reload SOURCES integration/test_targets_reload.c
               LIBS cdpilot_daemonkit TIMEOUT 300 LABELS integration)
  cdpilot_test(NAME test_freshness SOURCES integration/test_freshness.c support/redis_server.c
               LIBS cdpilot_daemonkit cdpilot_store TIMEOUT 400 LABELS integration)
  # entities (docs/entities.md): fallback and return with real Chromium, Redis, SIGHUP
  cdpilot_test(NAME test_entities SOURCES integration/test_entities.c support/redis_server.c
               LIBS cdpilot_daemonkit cdpilot_store TIMEOUT 600 LABELS integration)
  cdpilot_test(NAME test_share SOURCES integration/test_share.c support/redis_server.c
               LIBS cdpilot_daemonkit cdpilot_store TIMEOUT 300 LABELS integration)
  # issue 20's other cases: Redis restarted empty and from RDB (3 x 300 targets), health
  # of one failing instance, claims per scrape with 1, 4 and 8 instances; about 4.5 min,
  # and up to 8 daemons at once: run alone
  cdpilot_test(NAME test_share_more SOURCES integration/test_share_more.c
               support/redis_server.c LIBS cdpilot_daemonkit cdpilot_store TIMEOUT 400
               LABELS integration)
  set_tests_properties(test_share_more PROPERTIES RUN_SERIAL TRUE)
  cdpilot_test(NAME test_observe SOURCES integration/test_observe.c
               LIBS cdpilot_daemonkit m TIMEOUT 300 LABELS integration)
  # a browser only while a target needs one: none for jsonapi, launched and closed on SIGHUP
  cdpilot_test(NAME test_browser_lazy SOURCES integration/test_browser_lazy.c
               LIBS cdpilot_daemonkit TIMEOUT 300 LABELS integration)
  # `cdpilot try` (the binary) on the fixture in process: its request counts are the check
  cdpilot_test(NAME test_try SOURCES integration/test_try.c
               LIBS cdpilot_clikit TIMEOUT 300 LABELS integration)
endif()

# The runner in process (runner/): a real pool and Chromium, no daemon binary.
if(TARGET cdpilot_runner)
  cdpilot_test(NAME test_runner SOURCES integration/test_runner.c
               LIBS cdpilot_runkit cdpilot_runner cdpilot_pool cdpilot_fixture TIMEOUT 600
               LABELS integration)
  # Targets without C (script, links discovery, actions, visible waits, page settings).
  cdpilot_test(NAME test_runner_targets SOURCES integration/test_runner_targets.c
               LIBS cdpilot_runkit cdpilot_runner cdpilot_pool cdpilot_fixture TIMEOUT 400
               LABELS integration)
endif()

# adaptive targets (issue 19 point 2): endpoints learned from real pages, read without the
# browser, dropped when the page disagrees
if(TARGET cdpilot_targets AND TARGET cdpilot_httpd)
  cdpilot_test(NAME test_adaptive SOURCES integration/test_adaptive.c
               LIBS cdpilot_daemonkit TIMEOUT 300 LABELS integration)
endif()
