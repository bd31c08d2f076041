# The Redis store (store/): URL parsing (unit) and the store against a real redis-server
# that each test starts on a temporary unix socket (tests/support/redis_server.c).
cdpilot_test(NAME test_redis_url SOURCES unit/test_redis_url.c LIBS cdpilot_store LABELS unit)
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_store.c)
  cdpilot_test(NAME test_store SOURCES integration/test_store.c support/storekit.c
               support/redis_server.c
               LIBS cdpilot_store TIMEOUT 180 LABELS integration)
  cdpilot_test(NAME test_store_outage SOURCES integration/test_store_outage.c
               support/storekit.c support/redis_server.c
               LIBS cdpilot_store TIMEOUT 180 LABELS integration)
  cdpilot_test(NAME test_store_entity SOURCES integration/test_store_entity.c
               support/storekit.c support/redis_server.c
               LIBS cdpilot_store TIMEOUT 180 LABELS integration)
endif()
