// Programs that deadlock, shared by the deadlock tests of a program that has the call-graph
// writer (debug/deadlock_test.cpp) and of one that has not (debug/core_reports_test.cpp).
#pragma once

#include <corio/event_loop.hpp>
#include <corio/future.hpp>
#include <corio/gather.hpp>
#include <corio/task.hpp>

namespace corio_test {

// Where the programs below wait, for the call-graph lines that show them.
struct deadlock_sites {
    const char* file = __FILE__;
    unsigned wait_other = 0;  // wait_then_set's co_await
};
inline deadlock_sites deadlock_lines;

inline corio::coro<> wait_then_set(corio::future<int> wait_on, corio::future<int> to_set) {
    deadlock_lines.wait_other = __LINE__ + 1;
    const int value = co_await wait_on;
    to_set.set_result(value);
}

// Alice waits for Bob's future, Bob for Alice's.
inline corio::coro<> two_waiting_on_each_other() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> alice_done = loop.create_future<int>();
    corio::future<int> bob_done = loop.create_future<int>();
    corio::task<> alice = corio::create_task(wait_then_set(bob_done, alice_done), "alice");
    corio::task<> bob = corio::create_task(wait_then_set(alice_done, bob_done), "bob");
    co_await corio::gather(alice, bob);
}

}  // namespace corio_test
