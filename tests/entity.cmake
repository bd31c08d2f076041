# Entities (entity/): the parser and the merging engine, on a virtual clock.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_entity.c)
  cdpilot_test(NAME test_entity SOURCES unit/test_entity.c
               LIBS cdpilot_entity cdpilot_adaptkit LABELS unit)
endif()
