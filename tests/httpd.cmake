# HTTP endpoint server (daemon/httpd) and the Prometheus text writer (util/prom).
cdpilot_test(NAME test_prom SOURCES unit/test_prom.c LIBS cdpilot_prom LABELS unit)
cdpilot_test(NAME test_httpd_parse SOURCES unit/test_httpd_parse.c LIBS cdpilot_httpd
             LABELS unit)
cdpilot_test(NAME test_httpd SOURCES integration/test_httpd.c
             LIBS cdpilot_httpkit cdpilot_httpd cdpilot_cdp cdpilot_util TIMEOUT 120 LABELS integration)
cdpilot_test(NAME test_httpd_probes SOURCES integration/test_httpd_probes.c
             LIBS cdpilot_httpkit cdpilot_httpd cdpilot_util TIMEOUT 120 LABELS integration)
# The metric families: the code's names == docker/metric-names.txt == docs/metrics.md (a
# script that also proves it can fail); the live /metrics side is in the daemon tests.
find_program(CDPILOT_BASH bash REQUIRED)
add_test(NAME test_metric_names
         COMMAND ${CDPILOT_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/docs/check_metric_names.sh)
math(EXPR t "60 * ${CDPILOT_TIMEOUT_SCALE}")
set_tests_properties(test_metric_names PROPERTIES TIMEOUT ${t} LABELS unit)
