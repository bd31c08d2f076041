# The targets file parser (daemon/targets.c): pure validation, linked into `cdpilot run`
# and its unit test.
add_library(cdpilot_targets STATIC ${CMAKE_CURRENT_LIST_DIR}/targets.c
                            ${CMAKE_CURRENT_LIST_DIR}/target_page.c
                            ${CMAKE_CURRENT_LIST_DIR}/target_url.c)
target_link_libraries(cdpilot_targets PUBLIC cdpilot_entity cdpilot_adapters cdpilot_util m)
