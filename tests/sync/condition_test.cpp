// corio::condition (include/corio/sync/condition.hpp): wait and notify need the lock, notify
// wakes the longest waiting, a cancelled wait re-acquires the lock before it throws, a notified
// waiter cancelled before it runs passes the notification on, wait_for and a shared lock.
#include <corio/sync/condition.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/settle.hpp"
#include "support/test_helpers.hpp"

#include <corio/run.hpp>
#include <corio/sync/lock.hpp>
#include <corio/task.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using corio_test::frame_leak_check;
using corio_test::recorder;
using corio_test::run_test;
using corio_test::settle;
using corio_test::yield;

namespace {

corio::coro<> cond_waiter(corio::condition& c, recorder& rec, std::string name) {
    auto g = co_await c.scoped();
    try {
        co_await c.wait();
    } catch (const corio::cancelled_error&) {
        rec(name + " cancelled, holding the lock: " + (c.locked() ? "yes" : "no"));
        throw;
    }
    rec(name + " notified");
}

corio::coro<> condition_errors_main() {
    corio::condition c;
    CHECK_FALSE(c.locked());
    CHECK_THROWS_AS(c.notify(), std::runtime_error);
    CHECK_THROWS_AS(c.notify_all(), std::runtime_error);
    bool threw = false;
    try {
        co_await c.wait();
    } catch (const std::runtime_error&) {
        threw = true;
    }
    CHECK(threw);
    CHECK_THROWS_AS(c.release(), std::runtime_error);
    co_await c.acquire();
    c.notify();  // nobody waits: nothing happens
    c.notify_all();
    c.release();
}

TEST_CASE("condition: wait and notify need the lock", "[condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(condition_errors_main());
}

corio::coro<> condition_notify_main(recorder& rec) {
    corio::condition c;
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b", "c", "d", "e"}) {
        tasks.push_back(corio::create_task(cond_waiter(c, rec, name), name));
    }
    co_await yield();  // all five wait, having released the lock in turn
    CHECK_FALSE(c.locked());
    {
        auto g = co_await c.scoped();
        rec("notify(1)");
        c.notify();
        co_await yield(2);  // a cannot run: it needs the lock main holds
        rec("release");
    }
    co_await yield(2);
    {
        auto g = co_await c.scoped();
        rec("notify(2)");
        c.notify(2);
    }
    co_await yield(2);
    {
        auto g = co_await c.scoped();
        rec("notify_all");
        c.notify_all();
    }
    co_await settle(tasks, rec);
    CHECK_FALSE(c.locked());
}

TEST_CASE("condition: notify wakes the longest waiting, who re-acquire the lock in turn",
          "[condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(condition_notify_main(rec));
    const std::vector<std::string> expected{"notify(1)",  "release",    "a notified",
                                            "notify(2)",  "b notified", "c notified",
                                            "notify_all", "d notified", "e notified"};
    CHECK(rec.events() == expected);
}

corio::coro<> condition_cancel_main(recorder& rec) {
    corio::condition c;
    std::vector<corio::task<>> tasks{corio::create_task(cond_waiter(c, rec, "w"), "w")};
    co_await yield();
    co_await c.acquire();
    tasks[0].cancel();  // w stops waiting, but must re-acquire the lock main holds
    co_await yield(3);
    CHECK_FALSE(tasks[0].done());
    rec("main releases");
    c.release();
    co_await settle(tasks, rec);
    CHECK_FALSE(c.locked());
}

TEST_CASE("condition: a cancelled wait re-acquires the lock before throwing", "[condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(condition_cancel_main(rec));
    const std::vector<std::string> expected{"main releases", "w cancelled, holding the lock: yes",
                                            "w cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> condition_race_main(recorder& rec) {
    corio::condition c;
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(cond_waiter(c, rec, "a"), "a"));
    tasks.push_back(corio::create_task(cond_waiter(c, rec, "b"), "b"));
    co_await yield();
    co_await c.acquire();
    c.notify(1);        // a is notified...
    tasks[0].cancel();  // ... and cancelled before it runs
    c.release();
    co_await settle(tasks, rec);  // b was notified in a's place: nobody else notifies it
}

TEST_CASE("condition: a notified waiter cancelled before it runs passes the notification on",
          "[condition][race]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(condition_race_main(rec));
    const std::vector<std::string> expected{"a cancelled, holding the lock: yes", "b notified",
                                            "a cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> wait_for_ready(corio::condition& c, const int& ready, recorder& rec) {
    auto g = co_await c.scoped();
    const bool ok = co_await c.wait_for([&] { return ready >= 3; });
    rec("ready = " + std::to_string(ready) + (ok ? " (true)" : " (false)"));
}

corio::coro<> condition_wait_for_main(recorder& rec) {
    corio::lock shared;
    corio::condition c(shared);
    corio::condition unrelated(shared);
    int ready = 0;
    std::vector<corio::task<>> tasks{corio::create_task(wait_for_ready(c, ready, rec))};
    co_await yield();
    for (int i = 0; i < 4; ++i) {
        auto g = co_await c.scoped();
        CHECK(unrelated.locked());  // one lock under both conditions
        ++ready;
        rec("ready " + std::to_string(ready));
        c.notify();
        g.unlock();
        co_await yield(2);
    }
    co_await settle(tasks, rec);
    // A true predicate returns at once, lock held, without waiting.
    auto g = co_await c.scoped();
    const int value = co_await c.wait_for([] { return 42; });
    CHECK(value == 42);
    CHECK(c.locked());
}

TEST_CASE("condition: wait_for re-checks its predicate after each notification; shared lock",
          "[condition]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(condition_wait_for_main(rec));
    const std::vector<std::string> expected{"ready 1", "ready 2", "ready 3", "ready = 3 (true)",
                                            "ready 4"};
    CHECK(rec.events() == expected);
}

}  // namespace
