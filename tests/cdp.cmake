# cdp_page and the pool's leases: page actions, calling a function given as source, visible
# waits, cookies in the set-up, per-lease page settings (issue 16).
cdpilot_test(NAME test_cdp_actions SOURCES integration/test_cdp_actions.c
             LIBS cdpilot_pool cdpilot_pagekit TIMEOUT 240 LABELS integration)
cdpilot_test(NAME test_pool_settings SOURCES integration/test_pool_settings.c
             LIBS cdpilot_pool cdpilot_fixture TIMEOUT 240 LABELS integration)
# The target policy in the pool's pages: redirects to a denied host refused (issue 17).
cdpilot_test(NAME test_pool_policy SOURCES integration/test_pool_policy.c
             LIBS cdpilot_pool cdpilot_fixture TIMEOUT 240 LABELS integration)
