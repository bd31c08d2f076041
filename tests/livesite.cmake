# The demo live-score site (tests/fixture/livesite.c) and its adapter (adapters/livescore.c).
cdpilot_test(NAME test_adapter_livescore SOURCES unit/test_adapter_livescore.c
             LIBS cdpilot_adaptkit LABELS unit)
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_livesite.c)
  cdpilot_test(NAME test_livesite SOURCES integration/test_livesite.c
               LIBS cdpilot_adapters cdpilot_pool cdpilot_pagekit TIMEOUT 180 LABELS integration)
endif()
