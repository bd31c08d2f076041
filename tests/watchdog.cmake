# Watchdog tests: the pure /proc and cgroup reading on fake trees, and the loop part
# against the real /proc (orphans, zombies, guards).
cdpilot_test(NAME test_wd_proc SOURCES unit/test_wd_proc.c LIBS cdpilot_watchdog LABELS unit)
cdpilot_test(NAME test_watchdog SOURCES integration/test_watchdog.c LIBS cdpilot_watchdog cdpilot_pool TIMEOUT 120 LABELS integration)
