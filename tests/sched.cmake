# Scheduler and health grader (scheduler/): pure modules on a virtual clock.
cdpilot_test(NAME test_sched SOURCES unit/test_sched.c LIBS cdpilot_sched LABELS unit)
cdpilot_test(NAME test_health SOURCES unit/test_health.c LIBS cdpilot_sched LABELS unit)
