# Private helper targets for corio's own tests, examples and benchmarks. Never installed,
# never linked by corio::corio, so a consumer's flags are left alone.
#
#   corio_dev_warnings  -Wall -Wextra -Wpedantic (+ -Werror with CORIO_WERROR);
#                       libstdc++ assertions in Debug builds.
#   corio_dev           corio_dev_warnings + the sanitizers named by CORIO_SANITIZE.
#
# Benchmarks link corio_dev_warnings only: they measure uninstrumented code.
include_guard(GLOBAL)

add_library(corio_dev_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(corio_dev_warnings INTERFACE -Wall -Wextra -Wpedantic)
    if(CORIO_WERROR)
        target_compile_options(corio_dev_warnings INTERFACE -Werror)
    endif()
endif()
target_compile_definitions(corio_dev_warnings INTERFACE $<$<CONFIG:Debug>:_GLIBCXX_ASSERTIONS>)

add_library(corio_dev INTERFACE)
target_link_libraries(corio_dev INTERFACE corio_dev_warnings)
if(CORIO_SANITIZE)
    if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        message(FATAL_ERROR "corio: CORIO_SANITIZE needs GCC or Clang")
    endif()
    message(STATUS "corio: tests and examples built with -fsanitize=${CORIO_SANITIZE}")
    target_compile_options(corio_dev INTERFACE
        -fsanitize=${CORIO_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(corio_dev INTERFACE -fsanitize=${CORIO_SANITIZE})
endif()

# Running a program from a custom target, with a time limit (see cmake/corio-run.cmake).
set(CORIO_RUN_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/corio-run.cmake")
