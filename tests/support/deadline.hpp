#pragma once
// Running a test's main coroutine with a deadline, for tests in which a lost wake-up would
// otherwise hang the whole executable until CTest kills it.

#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <utility>

namespace corio_test {

/// Awaits `main`, failing with `corio::timeout_error` after 10 s.
inline corio::coro<> within_deadline(corio::coro<> main) {
    co_await corio::wait_for(std::move(main), std::chrono::seconds(10));
}

/// Runs `main` on a new loop, within the deadline.
inline void run_test(corio::coro<> main) { corio::run(within_deadline(std::move(main))); }

/// Lets every task that is ready run until it suspends again, `times` times.
inline corio::coro<> yield(int times = 1) {
    for (int i = 0; i < times; ++i) co_await corio::sleep(std::chrono::seconds(0));
}

}  // namespace corio_test
