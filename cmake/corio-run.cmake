# Runs one program with a banner and a time limit; fails when it fails or hangs.
#   cmake -DPROGRAM=<path> [-DARGS=<;-list>] [-DTIMEOUT=<seconds>] -P corio-run.cmake
# Used by the run_examples and run_benchmarks_briefly targets.
if(NOT DEFINED PROGRAM)
    message(FATAL_ERROR "corio-run.cmake: PROGRAM is not set")
endif()
if(NOT DEFINED TIMEOUT)
    set(TIMEOUT 60)
endif()

get_filename_component(_name "${PROGRAM}" NAME)
message("==> ${_name} ${ARGS}")
execute_process(
    COMMAND "${PROGRAM}" ${ARGS}
    TIMEOUT ${TIMEOUT}
    RESULT_VARIABLE _rc)
if(_rc MATCHES "timeout")
    message(FATAL_ERROR "${_name} did not finish within ${TIMEOUT}s")
elseif(NOT _rc STREQUAL "0")
    message(FATAL_ERROR "${_name} failed: ${_rc}")
endif()
