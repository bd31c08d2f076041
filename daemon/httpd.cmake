# cdpilot_httpd: the daemon's HTTP endpoints (/metrics, /status, /healthz, /readyz) on
# libwebsockets on the loop. cdpilot_prom: the Prometheus text writer (util/prom.c), a
# library of its own so that its users and tests need no libwebsockets (its buffer,
# util/growbuf, comes with cdpilot_util).
add_library(cdpilot_prom STATIC ${CMAKE_SOURCE_DIR}/util/prom.c)
target_link_libraries(cdpilot_prom PUBLIC cdpilot_util m)
add_library(cdpilot_httpd STATIC ${CMAKE_CURRENT_LIST_DIR}/httpd.c
            ${CMAKE_CURRENT_LIST_DIR}/httpd_conn.c ${CMAKE_CURRENT_LIST_DIR}/httpd_parse.c)
target_link_libraries(cdpilot_httpd PUBLIC cdpilot_prom cdpilot_cdp cdpilot_util PkgConfig::LWS
                      PkgConfig::LIBUV PkgConfig::JANSSON)
