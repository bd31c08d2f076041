# HTTP endpoint server (daemon/httpd) and the Prometheus text writer (util/prom).
cdpilot_test(NAME test_prom SOURCES unit/test_prom.c LIBS cdpilot_prom LABELS unit)
cdpilot_test(NAME test_httpd_parse SOURCES unit/test_httpd_parse.c LIBS cdpilot_httpd
             LABELS unit)
cdpilot_test(NAME test_httpd SOURCES integration/test_httpd.c
             LIBS cdpilot_httpkit cdpilot_httpd cdpilot_cdp cdpilot_util TIMEOUT 120 LABELS integration)
cdpilot_test(NAME test_httpd_probes SOURCES integration/test_httpd_probes.c
             LIBS cdpilot_httpkit cdpilot_httpd cdpilot_util TIMEOUT 120 LABELS integration)
