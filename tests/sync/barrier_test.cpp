// corio::barrier (include/corio/sync/barrier.hpp): arrival indices, the last to arrive passes
// at once, reuse, tasks arriving while it drains, abort and reset, a cancelled waiter, and
// released tasks outliving the barrier.
#include <corio/sync/barrier.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/settle.hpp"
#include "support/test_helpers.hpp"

#include <corio/run.hpp>
#include <corio/task.hpp>

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using corio_test::frame_leak_check;
using corio_test::recorder;
using corio_test::run_test;
using corio_test::settle;
using corio_test::yield;

namespace {

static_assert(std::is_base_of_v<std::runtime_error, corio::broken_barrier_error>);

corio::coro<> at_barrier(corio::barrier& b, recorder& rec, std::string name) {
    try {
        const std::size_t index = co_await b.wait();
        rec(name + " passed as " + std::to_string(index));
    } catch (const corio::broken_barrier_error&) {
        rec(name + " broken");
    }
}

corio::coro<> barrier_main(recorder& rec) {
    CHECK_THROWS_AS(corio::barrier(0), std::invalid_argument);
    corio::barrier b(3);
    CHECK(b.parties() == 3);
    CHECK(b.n_waiting() == 0);
    CHECK_FALSE(b.broken());
    for (int round = 0; round < 2; ++round) {
        std::vector<corio::task<>> tasks;
        tasks.push_back(corio::create_task(at_barrier(b, rec, "a")));
        tasks.push_back(corio::create_task(at_barrier(b, rec, "b")));
        co_await yield();
        CHECK(b.n_waiting() == 2);
        // The last to arrive does not suspend: the others have not run yet when it returns.
        const std::size_t index = co_await b.wait();
        rec("main passed as " + std::to_string(index));
        CHECK(b.n_waiting() == 0);
        co_await settle(tasks, rec);
    }
    corio::barrier one(1);
    const std::size_t first = co_await one.wait();
    const std::size_t second = co_await one.wait();
    CHECK(first == 0);
    CHECK(second == 0);
}

TEST_CASE("barrier: arrival indices, the last one passes at once, reusable", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_main(rec));
    const std::vector<std::string> expected{"main passed as 2", "a passed as 0", "b passed as 1",
                                            "main passed as 2", "a passed as 0", "b passed as 1"};
    CHECK(rec.events() == expected);
}

corio::coro<> arrive_late(corio::barrier& b, recorder& rec, std::string name) {
    co_await yield(3);
    CHECK(b.n_waiting() == 1);
    co_await at_barrier(b, rec, std::move(name));
}

corio::coro<> barrier_drain_main(recorder& rec) {
    corio::barrier b(2);
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(at_barrier(b, rec, "a")));
    tasks.push_back(corio::create_task(arrive_late(b, rec, "d")));
    co_await yield();
    const std::size_t index = co_await b.wait();  // trips; a is released but has not left yet
    CHECK(index == 1);
    // Main comes back for the next round while the barrier drains: it waits for a to leave,
    // then arrives first; d trips that round.
    const std::size_t next = co_await b.wait();
    rec("main passed as " + std::to_string(next));
    co_await settle(tasks, rec);
}

TEST_CASE("barrier: tasks arriving while it drains wait for the next round", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_drain_main(rec));
    const std::vector<std::string> expected{"a passed as 0", "d passed as 1", "main passed as 0"};
    CHECK(rec.events() == expected);
}

corio::coro<> barrier_abort_reset_main(recorder& rec) {
    corio::barrier b(3);
    std::vector<corio::task<>> tasks;
    tasks.push_back(corio::create_task(at_barrier(b, rec, "a")));
    tasks.push_back(corio::create_task(at_barrier(b, rec, "b")));
    co_await yield();
    b.abort();
    CHECK(b.broken());
    CHECK(b.n_waiting() == 0);
    co_await settle(tasks, rec);
    bool threw = false;
    try {
        (void)co_await b.wait();
    } catch (const corio::broken_barrier_error&) {
        threw = true;
    }
    CHECK(threw);
    b.reset();
    CHECK_FALSE(b.broken());

    // reset() while tasks wait: they get broken_barrier_error; the barrier then fills again.
    tasks.assign(1, corio::create_task(at_barrier(b, rec, "c")));
    co_await yield();
    CHECK(b.n_waiting() == 1);
    b.reset();
    CHECK(b.n_waiting() == 0);
    CHECK_FALSE(b.broken());
    co_await settle(tasks, rec);
    tasks.assign(1, corio::create_task(at_barrier(b, rec, "d")));
    tasks.push_back(corio::create_task(at_barrier(b, rec, "e")));
    co_await yield();
    const std::size_t index = co_await b.wait();
    CHECK(index == 2);
    co_await settle(tasks, rec);
}

TEST_CASE("barrier: abort breaks it, reset repairs it and releases the waiting", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_abort_reset_main(rec));
    const std::vector<std::string> expected{"a broken", "b broken", "c broken", "d passed as 0",
                                            "e passed as 1"};
    CHECK(rec.events() == expected);
}

corio::coro<> barrier_cancel_main(recorder& rec) {
    corio::barrier b(3);
    std::vector<corio::task<>> tasks;
    for (const char* name : {"a", "b"}) {
        tasks.push_back(corio::create_task(at_barrier(b, rec, name), name));
    }
    co_await yield();
    CHECK(b.n_waiting() == 2);
    tasks[0].cancel();  // a leaves: no longer counted
    CHECK(b.n_waiting() == 1);
    tasks.push_back(corio::create_task(at_barrier(b, rec, "c"), "c"));
    co_await yield();
    CHECK(b.n_waiting() == 2);
    std::size_t index = co_await b.wait();  // trips with b, c and main
    CHECK(index == 2);
    // Released, then cancelled before it runs: cancelled_error, and the barrier still drains.
    tasks[1].cancel();
    co_await settle(tasks, rec);
    CHECK(b.n_waiting() == 0);
    tasks.assign(1, corio::create_task(at_barrier(b, rec, "d")));
    tasks.push_back(corio::create_task(at_barrier(b, rec, "e")));
    co_await yield();
    index = co_await b.wait();
    CHECK(index == 2);
    co_await settle(tasks, rec);
}

corio::coro<> barrier_destroyed_main(recorder& rec) {
    std::vector<corio::task<>> tasks;
    auto b = std::make_unique<corio::barrier>(3);  // on the heap: ASan sees a use after free
    tasks.push_back(corio::create_task(at_barrier(*b, rec, "a")));
    tasks.push_back(corio::create_task(at_barrier(*b, rec, "b")));
    co_await yield();
    const std::size_t index = co_await b->wait();  // trips: a and b released, not yet run
    CHECK(index == 2);
    b.reset();  // the barrier goes before they leave it
    co_await settle(tasks, rec);
}

TEST_CASE("barrier: released tasks survive the barrier's destruction", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_destroyed_main(rec));
    const std::vector<std::string> expected{"a passed as 0", "b passed as 1"};
    CHECK(rec.events() == expected);
}

TEST_CASE("barrier: a cancelled waiter leaves and stops counting", "[barrier]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    run_test(barrier_cancel_main(rec));
    // c arrives after a left, so it takes index 1 again (asyncio's count-based indices).
    const std::vector<std::string> expected{"a cancelled", "c passed as 1", "b cancelled",
                                            "d passed as 0", "e passed as 1"};
    CHECK(rec.events() == expected);
}

}  // namespace
