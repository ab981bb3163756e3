// corio::event (include/corio/sync/event.hpp): set wakes every waiter in the order they came,
// a waiter cancelled before or after the wake-up, clear, and ten thousand waiters.
#include <corio/sync/event.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/settle.hpp"
#include "support/test_helpers.hpp"

#include <corio/run.hpp>
#include <corio/task.hpp>

#include <cstddef>
#include <string>
#include <vector>

using corio_test::frame_leak_check;
using corio_test::recorder;
using corio_test::run_test;
using corio_test::settle;
using corio_test::yield;

namespace {

corio::coro<> wait_event(corio::event& e, recorder& rec, std::string name) {
    co_await e.wait();
    rec(name);
}

corio::coro<> event_main(recorder& rec) {
    corio::event e;
    CHECK_FALSE(e.is_set());
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b", "c", "d"}) {
        tasks.push_back(corio::create_task(wait_event(e, rec, name), name));
    }
    co_await yield();
    tasks[1].cancel();  // b leaves while waiting
    co_await yield();
    rec("set");
    e.set();
    CHECK(e.is_set());
    e.set();    // already set: nothing
    e.clear();  // the woken tasks return anyway
    CHECK_FALSE(e.is_set());
    tasks[2].cancel();  // c: woken, then cancelled before it ran
    co_await settle(tasks, rec);
    // A set event lets wait() through at once, without suspending.
    e.set();
    bool other_ran = false;
    auto other = corio::create_task([](bool& ran) -> corio::coro<> {
        ran = true;
        co_return;
    }(other_ran));
    co_await e.wait();
    CHECK_FALSE(other_ran);
    co_await other;
}

TEST_CASE("event: set wakes every waiter in order; cancellation; clear", "[event]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(event_main(rec));
    // The cancelled tasks are recorded by settle() at the end, in task order.
    const std::vector<std::string> expected{"set", "a", "d", "b cancelled", "c cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> event_many_main(int n) {
    corio::event e;
    int woken = 0;
    std::vector<corio::task<>> tasks;
    tasks.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        tasks.push_back(corio::create_task([](corio::event& ev, int& count) -> corio::coro<> {
            co_await ev.wait();
            ++count;
        }(e, woken)));
    }
    co_await yield();
    e.set();
    for (auto& t : tasks) co_await t;
    CHECK(woken == n);
}

TEST_CASE("event: ten thousand waiters", "[event]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(event_many_main(10'000));
}

}  // namespace
