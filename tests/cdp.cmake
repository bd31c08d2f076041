# cdp_page: page actions, calling a function given as source, visible waits, cookies in the
# set-up (issue 16).
cdpilot_test(NAME test_cdp_actions SOURCES integration/test_cdp_actions.c
             LIBS cdpilot_pool cdpilot_pagekit TIMEOUT 240 LABELS integration)
