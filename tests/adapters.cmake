# Adapters and snapshots (adapters/): pure code, unit tests only.
foreach(t test_snapshot test_adapter_generic test_adapter_jsonapi)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c)
    cdpilot_test(NAME ${t} SOURCES unit/${t}.c LIBS cdpilot_adaptkit LABELS unit)
  endif()
endforeach()
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_adapter_generic_page.c)
  cdpilot_test(NAME test_adapter_generic_page SOURCES integration/test_adapter_generic_page.c
               LIBS cdpilot_adapters cdpilot_pool cdpilot_pagekit TIMEOUT 180 LABELS integration)
endif()
