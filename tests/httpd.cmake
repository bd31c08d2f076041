# HTTP endpoint server (daemon/httpd) and the Prometheus text writer (util/prom).
cdpilot_test(NAME test_prom SOURCES unit/test_prom.c LIBS cdpilot_prom LABELS unit)
