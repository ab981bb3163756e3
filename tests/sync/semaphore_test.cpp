// corio::semaphore and corio::bounded_semaphore (include/corio/sync/semaphore.hpp): at most
// value tasks inside, FIFO admission, a unit handed to a waiter cancelled before it runs goes
// on, and the bound of bounded_semaphore.
#include <corio/sync/semaphore.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/settle.hpp"
#include "support/test_helpers.hpp"

#include <corio/run.hpp>
#include <corio/task.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using corio_test::frame_leak_check;
using corio_test::recorder;
using corio_test::run_test;
using corio_test::settle;
using corio_test::yield;

namespace {

static_assert(std::is_base_of_v<corio::semaphore, corio::bounded_semaphore>);

corio::coro<> limited_worker(corio::semaphore& s, int& inside, int& peak, recorder& rec,
                             std::string name) {
    auto g = co_await s.scoped();
    rec(name);
    ++inside;
    peak = std::max(peak, inside);
    co_await yield(3);
    --inside;
}

corio::coro<> semaphore_limit_main(recorder& rec) {
    corio::semaphore s(2);
    CHECK(s.value() == 2);
    CHECK_FALSE(s.locked());
    int inside = 0;
    int peak = 0;
    std::vector<corio::task<>> tasks;
    for (int i = 0; i < 6; ++i) {
        tasks.push_back(
            corio::create_task(limited_worker(s, inside, peak, rec, "w" + std::to_string(i))));
    }
    co_await yield();
    CHECK(s.locked());
    CHECK(inside == 2);
    co_await settle(tasks, rec);
    CHECK(peak == 2);
    CHECK(s.value() == 2);
}

TEST_CASE("semaphore: at most value tasks inside, admitted first in first out", "[semaphore]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(semaphore_limit_main(rec));
    const std::vector<std::string> expected{"w0", "w1", "w2", "w3", "w4", "w5"};
    CHECK(rec.events() == expected);
}

corio::coro<> take_unit(corio::semaphore& s, recorder& rec, std::string name) {
    co_await s.acquire();
    rec(name);
}

corio::coro<> semaphore_fifo_main(recorder& rec) {
    corio::semaphore s(0);
    CHECK(s.locked());
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(take_unit(s, rec, "a"), "a"));
    tasks.push_back(corio::create_task(take_unit(s, rec, "b"), "b"));
    co_await yield();
    s.release();  // handed to a
    CHECK(s.value() == 0);
    CHECK(s.locked());
    tasks.push_back(corio::create_task(take_unit(s, rec, "c"), "c"));  // queues behind b
    co_await yield();
    s.release();
    s.release();
    co_await settle(tasks, rec);
    CHECK(s.value() == 0);
}

TEST_CASE("semaphore: a released unit goes to the longest waiting; newcomers queue",
          "[semaphore]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(semaphore_fifo_main(rec));
    const std::vector<std::string> expected{"a", "b", "c"};
    CHECK(rec.events() == expected);
}

corio::coro<> semaphore_race_main(recorder& rec) {
    corio::semaphore s(0);
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b", "c"}) {
        tasks.push_back(corio::create_task(take_unit(s, rec, name), name));
    }
    co_await yield();
    tasks[1].cancel();  // b leaves while waiting
    s.release();        // to a...
    tasks[0].cancel();  // ... cancelled before it runs: the unit goes to c
    co_await settle(tasks, rec);
    CHECK(s.value() == 0);
    // Cancelled after the unit was handed over, with nobody else waiting: back to the counter.
    tasks.assign(1, corio::create_task(take_unit(s, rec, "d"), "d"));
    co_await yield();
    s.release();
    tasks[0].cancel();
    co_await settle(tasks, rec);
    CHECK(s.value() == 1);
}

TEST_CASE("semaphore: a waiter cancelled after being handed a unit hands it on",
          "[semaphore][race]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(semaphore_race_main(rec));
    const std::vector<std::string> expected{"c", "a cancelled", "b cancelled", "d cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<> bounded_main() {
    CHECK_THROWS_AS(corio::semaphore(-1), std::invalid_argument);
    CHECK_THROWS_AS(corio::bounded_semaphore(-1), std::invalid_argument);
    corio::semaphore plain(1);
    plain.release();  // unbounded: fine
    CHECK(plain.value() == 2);

    corio::bounded_semaphore s(2);
    CHECK_THROWS_AS(s.release(), std::logic_error);
    co_await s.acquire();
    {
        auto g = co_await s.scoped();
        CHECK(s.locked());
    }
    s.release();
    CHECK(s.value() == 2);
    CHECK_THROWS_AS(s.release(), std::logic_error);
    CHECK(s.value() == 2);

    corio::bounded_semaphore zero(0);
    CHECK_THROWS_AS(zero.release(), std::logic_error);
    // Released through a base reference, the bound still holds.
    corio::semaphore& base = s;
    CHECK_THROWS_AS(base.release(), std::logic_error);
}

TEST_CASE("bounded_semaphore: over-release throws std::logic_error; negative values refused",
          "[semaphore]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_test(bounded_main());
}

}  // namespace
