# The example targets files (examples/*.json) through the same parser, from the source tree.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_examples.c)
  cdpilot_test(NAME test_examples SOURCES unit/test_examples.c LIBS cdpilot_targets LABELS unit)
  target_compile_definitions(test_examples PRIVATE CDPILOT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()

# The targets file parser (daemon/targets.c).
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_targets.c)
  cdpilot_test(NAME test_targets SOURCES unit/test_targets.c LIBS cdpilot_targets LABELS unit)
endif()
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_targets_page.c)
  cdpilot_test(NAME test_targets_page SOURCES unit/test_targets_page.c LIBS cdpilot_targets
               LABELS unit)
endif()
