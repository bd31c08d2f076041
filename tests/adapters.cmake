# Adapters and snapshots (adapters/): pure code, unit tests only.
foreach(t test_snapshot test_adapter_generic test_adapter_jsonapi test_adapter_script test_epmap)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/${t}.c)
    cdpilot_test(NAME ${t} SOURCES unit/${t}.c LIBS cdpilot_adaptkit LABELS unit)
  endif()
endforeach()
# links discovery: its children must pass the targets file's own id rule
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_adapter_links.c)
  cdpilot_test(NAME test_adapter_links SOURCES unit/test_adapter_links.c
               LIBS cdpilot_adaptkit cdpilot_targets LABELS unit)
endif()
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_adapter_generic_page.c)
  cdpilot_test(NAME test_adapter_generic_page SOURCES integration/test_adapter_generic_page.c
               LIBS cdpilot_adapters cdpilot_pool cdpilot_pagekit TIMEOUT 180 LABELS integration)
endif()
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_adapter_links_page.c)
  cdpilot_test(NAME test_adapter_links_page SOURCES integration/test_adapter_links_page.c
               LIBS cdpilot_adapters cdpilot_pool cdpilot_pagekit TIMEOUT 180 LABELS integration)
endif()
