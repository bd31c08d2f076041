# Container files (docker/), checked without Docker: shell tests in tests/docker/ (bash,
# jq, python3-yaml, apt-cache, promtool, curl), plus the example targets file through the
# real targets parser. Each test also breaks copies of the files and expects its checks
# to fail.
find_program(CDPILOT_BASH bash REQUIRED)

function(cdpilot_docker_test name script)
  add_test(NAME ${name} COMMAND ${CDPILOT_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/docker/${script})
  math(EXPR t "120 * ${CDPILOT_TIMEOUT_SCALE}")
  set_tests_properties(${name} PROPERTIES TIMEOUT ${t} LABELS unit
    ENVIRONMENT "CDPILOT_BIN=$<TARGET_FILE:cdpilot>")
endfunction()

cdpilot_docker_test(test_docker_compose test_compose.sh)
cdpilot_docker_test(test_docker_dockerfile test_dockerfile.sh)
cdpilot_docker_test(test_docker_runtime_steps test_runtime_steps.sh)
cdpilot_docker_test(test_docker_dashboard test_dashboard.sh)
cdpilot_docker_test(test_docker_healthcheck test_healthcheck.sh)
cdpilot_docker_test(test_docker_alerts test_alerts.sh)
cdpilot_docker_test(test_docker_k8s test_k8s.sh)

# The example targets file through the daemon's targets parser (once it is built).
if(TARGET cdpilot_targets)
  cdpilot_test(NAME test_targets_example SOURCES docker/test_targets_example.c
               LIBS cdpilot_targets LABELS unit)
  target_compile_definitions(test_targets_example PRIVATE
    CDPILOT_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()

# The image built and run on a real Docker engine (tests/docker/test_container.sh): only in
# the normal build. The image compiles cdpilot from the sources, not from this build tree,
# so the sanitizer build would build and run the same image again; scripts/test.sh's fuzz
# build has no tests at all (CDPILOT_TESTS=OFF). Label `container`: `ctest -LE container`
# leaves it out. Skipped (77) where no engine can run, except with CI set.
option(CDPILOT_CONTAINER_TESTS "Run the container test on a Docker engine (normal build)" ON)
if(CDPILOT_CONTAINER_TESTS AND NOT CDPILOT_SANITIZE)
  add_test(NAME test_container
           COMMAND ${CDPILOT_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/docker/test_container.sh)
  # A guard against a hang: the first run makes the base image and builds Chromium's layer.
  math(EXPR t "900 * ${CDPILOT_TIMEOUT_SCALE}")
  set_tests_properties(test_container PROPERTIES TIMEOUT ${t} LABELS "integration;container"
    SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
    ENVIRONMENT "CDPILOT_BIN=$<TARGET_FILE:cdpilot>;CDPILOT_FIXTURE_BIN=$<TARGET_FILE:cdpilot-fixture>")
endif()
