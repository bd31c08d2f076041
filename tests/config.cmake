# Settings (daemon/config): the table, flags, near misses and empty values (test_config);
# `cdpilot check-config` with a bad value of every setting (test_config_cli); the docs
# table against the code (test_config_docs, a script that also proves it can fail).
cdpilot_test(NAME test_config SOURCES unit/test_config.c LIBS cdpilot_config LABELS unit)

if(TARGET cdpilot_targets AND TARGET cdpilot_sched AND TARGET cdpilot_watchdog
   AND TARGET cdpilot_httpd AND TARGET cdpilot_store)
  cdpilot_test(NAME test_config_cli SOURCES unit/test_config_cli.c TIMEOUT 120 LABELS unit)
endif()

find_program(CDPILOT_BASH bash REQUIRED)
add_test(NAME test_config_docs
         COMMAND ${CDPILOT_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/docs/check_config_docs.sh)
math(EXPR t "60 * ${CDPILOT_TIMEOUT_SCALE}")
set_tests_properties(test_config_docs PROPERTIES TIMEOUT ${t} LABELS unit)
