# The targets file parser (daemon/targets.c).
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_targets.c)
  cdpilot_test(NAME test_targets SOURCES unit/test_targets.c LIBS cdpilot_targets LABELS unit)
endif()
