// corio::wait (include/corio/wait.hpp): all_completed, first_completed, first_exception, the
// timeout, the done/pending split (same handles, input order), the empty set, and the rule
// that wait never cancels anything.
#include <corio/wait.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using int_tasks = std::vector<corio::task<int>>;

corio::coro<int> value_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

corio::coro<int> fail_after(std::chrono::milliseconds delay, std::string message) {
    co_await corio::sleep(delay);
    throw test_error(message);
}

/// Sleeps; records whether it was cancelled or finished.
corio::coro<int> sleeper(std::chrono::milliseconds delay, recorder& rec, std::string name,
                         int value) {
    try {
        co_await corio::sleep(delay);
    } catch (const corio::cancelled_error&) {
        rec(name + " cancelled");
        throw;
    }
    rec(name + " finished");
    co_return value;
}

/// Handles equal (`==`) to the given ones, in that order.
template <class H>
bool same_handles(const std::vector<H>& actual, const std::vector<H>& expected) {
    if (actual.size() != expected.size()) return false;
    for (std::size_t i = 0; i < actual.size(); ++i) {
        if (!(actual[i] == expected[i])) return false;
    }
    return true;
}

corio::coro<void> all_completed_main() {
    int_tasks tasks;
    tasks.push_back(corio::create_task(value_after(15ms, 0)));
    tasks.push_back(corio::create_task(fail_after(5ms, "boom")));
    tasks.push_back(corio::create_task(value_after(10ms, 2)));
    corio_test::stopwatch watch;
    auto [done, pending] = co_await corio::wait(tasks);
    CHECK(watch.elapsed() >= 15ms);
    CHECK(pending.empty());
    CHECK(same_handles(done, tasks));
    CHECK(done[0].result() == 0);
    CHECK_THROWS_AS(done[1].result(), test_error);
    CHECK(done[2].result() == 2);

    // Explicitly, and with a timeout long enough.
    int_tasks more;
    more.push_back(corio::create_task(value_after(2ms, 3)));
    more.push_back(corio::create_task(value_after(1ms, 4)));
    auto result = co_await corio::wait(more, corio::return_when::all_completed, 5s);
    CHECK(result.pending.empty());
    CHECK(same_handles(result.done, more));
}

corio::coro<void> first_completed_main(recorder& rec) {
    int_tasks tasks;
    tasks.push_back(corio::create_task(sleeper(60ms, rec, "a", 0)));
    tasks.push_back(corio::create_task(sleeper(5ms, rec, "b", 1)));
    tasks.push_back(corio::create_task(sleeper(50ms, rec, "c", 2)));
    auto [done, pending] = co_await corio::wait(tasks, corio::return_when::first_completed);
    REQUIRE(done.size() == 1);
    CHECK(done[0] == tasks[1]);
    CHECK(done[0].result() == 1);
    const int_tasks expected_pending{tasks[0], tasks[2]};
    CHECK(same_handles(pending, expected_pending));
    for (const auto& t : pending) {
        CHECK_FALSE(t.done());
        CHECK(t.cancelling() == 0);
    }
    // They run on to completion.
    for (auto& t : pending) {
        const auto awaited_1 = co_await t;  // never co_await inside a Catch macro
        CHECK(awaited_1 >= 0);
    }
    CHECK_FALSE(tasks[0].cancelled());
    CHECK_FALSE(tasks[2].cancelled());
    CHECK(rec.contains("a finished"));
    CHECK(rec.contains("c finished"));
    CHECK_FALSE(rec.contains("a cancelled"));
    CHECK_FALSE(rec.contains("c cancelled"));
}

corio::coro<void> first_completed_already_done_main() {
    corio::task<int> finished = corio::create_task(value_after(0ms, 5));
    co_await finished;
    int_tasks tasks{corio::create_task(value_after(30ms, 6)), finished};
    auto [done, pending] = co_await corio::wait(tasks, corio::return_when::first_completed);
    const int_tasks expected_done{finished};
    const int_tasks expected_pending{tasks[0]};
    CHECK(same_handles(done, expected_done));
    CHECK(same_handles(pending, expected_pending));
    co_await tasks[0];
}

corio::coro<void> first_exception_main(recorder& rec) {
    int_tasks tasks;
    tasks.push_back(corio::create_task(sleeper(60ms, rec, "slow", 0)));
    tasks.push_back(corio::create_task(fail_after(10ms, "boom")));
    tasks.push_back(corio::create_task(value_after(2ms, 2)));
    auto [done, pending] = co_await corio::wait(tasks, corio::return_when::first_exception);
    const int_tasks expected_done{tasks[1], tasks[2]};
    const int_tasks expected_pending{tasks[0]};
    CHECK(same_handles(done, expected_done));
    CHECK(same_handles(pending, expected_pending));
    CHECK_THROWS_AS(tasks[1].result(), test_error);
    CHECK_FALSE(tasks[0].done());
    CHECK(tasks[0].cancelling() == 0);
    const auto awaited_2 = co_await tasks[0];  // never co_await inside a Catch macro
    CHECK(awaited_2 == 0);
    CHECK_FALSE(rec.contains("slow cancelled"));
}

corio::coro<void> first_exception_none_fails_main() {
    int_tasks tasks;
    tasks.push_back(corio::create_task(value_after(20ms, 0)));
    tasks.push_back(corio::create_task(value_after(2ms, 1)));
    corio_test::stopwatch watch;
    auto [done, pending] = co_await corio::wait(tasks, corio::return_when::first_exception);
    CHECK(watch.elapsed() >= 20ms);
    CHECK(pending.empty());
    CHECK(same_handles(done, tasks));
}

corio::coro<void> first_exception_cancelled_main(recorder& rec) {
    int_tasks tasks;
    tasks.push_back(corio::create_task(sleeper(1s, rec, "doomed", 0)));
    tasks.push_back(corio::create_task(value_after(30ms, 1)));
    corio::task<int> doomed = tasks[0];
    corio::get_running_loop().call_later(5ms, [doomed]() mutable { doomed.cancel(); });
    corio_test::stopwatch watch;
    auto [done, pending] = co_await corio::wait(tasks, corio::return_when::first_exception);
    // The cancellation did not end the wait: it went on until everything was done.
    CHECK(watch.elapsed() >= 30ms);
    CHECK(pending.empty());
    CHECK(same_handles(done, tasks));
    CHECK(tasks[0].cancelled());
    CHECK(rec.contains("doomed cancelled"));
}

corio::coro<void> timeout_main(recorder& rec) {
    int_tasks tasks;
    tasks.push_back(corio::create_task(sleeper(60ms, rec, "slow", 0)));
    tasks.push_back(corio::create_task(sleeper(2ms, rec, "fast", 1)));
    tasks.push_back(corio::create_task(sleeper(70ms, rec, "slower", 2)));
    corio_test::stopwatch watch;
    auto [done, pending] = co_await corio::wait(tasks, 20ms);
    CHECK(watch.elapsed() >= 20ms);
    const int_tasks expected_done{tasks[1]};
    const int_tasks expected_pending{tasks[0], tasks[2]};
    CHECK(same_handles(done, expected_done));
    CHECK(same_handles(pending, expected_pending));
    for (const auto& t : pending) {
        CHECK_FALSE(t.done());
        CHECK(t.cancelling() == 0);
    }
    // Nothing was cancelled: the pending ones finish normally.
    const auto awaited_3 = co_await tasks[0];  // never co_await inside a Catch macro
    CHECK(awaited_3 == 0);
    const auto awaited_4 = co_await tasks[2];  // never co_await inside a Catch macro
    CHECK(awaited_4 == 2);
    CHECK_FALSE(rec.contains("slow cancelled"));
    CHECK_FALSE(rec.contains("slower cancelled"));

    // With first_completed and a timeout that expires first.
    int_tasks late;
    late.push_back(corio::create_task(value_after(40ms, 3)));
    auto result = co_await corio::wait(late, corio::return_when::first_completed, 5ms);
    CHECK(result.done.empty());
    CHECK(same_handles(result.pending, late));
    const auto awaited_5 = co_await late[0];  // never co_await inside a Catch macro
    CHECK(awaited_5 == 3);
}

corio::coro<void> futures_main() {
    corio::event_loop& loop = corio::get_running_loop();
    std::vector<corio::future<std::string>> futures{loop.create_future<std::string>(),
                                                    loop.create_future<std::string>()};
    corio::future<std::string> second = futures[1];
    loop.call_later(2ms, [second]() mutable { second.set_result("second"); });
    auto [done, pending] = co_await corio::wait(futures, corio::return_when::first_completed);
    REQUIRE(done.size() == 1);
    CHECK(done[0] == futures[1]);
    CHECK(done[0].result() == "second");
    REQUIRE(pending.size() == 1);
    CHECK(pending[0] == futures[0]);
    CHECK_FALSE(futures[0].cancelled());
}

corio::coro<void> empty_main(recorder& rec) {
    int_tasks none;
    try {
        (void)co_await corio::wait(none);
        rec("no exception");
    } catch (const std::invalid_argument&) {
        rec("invalid_argument");
    }
    try {
        (void)co_await corio::wait(none, corio::return_when::first_completed, 10ms);
        rec("no exception");
    } catch (const std::invalid_argument&) {
        rec("invalid_argument");
    }
}

corio::coro<void> wait_and_record(int_tasks tasks, recorder& rec) {
    try {
        (void)co_await corio::wait(tasks);
        rec("waiter: wait returned");
    } catch (const corio::cancelled_error&) {
        rec("waiter: cancelled_error");
        throw;
    }
}

corio::coro<void> cancel_waiter_main(recorder& rec) {
    int_tasks tasks;
    tasks.push_back(corio::create_task(sleeper(30ms, rec, "a", 0)));
    tasks.push_back(corio::create_task(sleeper(40ms, rec, "b", 1)));
    corio::task<> waiter = corio::create_task(wait_and_record(tasks, rec));
    co_await corio::sleep(5ms);
    CHECK(waiter.cancel());
    try {
        co_await waiter;
        rec("main: waiter finished");
    } catch (const corio::cancelled_error&) {
        rec("main: waiter cancelled");
    }
    CHECK(waiter.cancelled());
    // The waited tasks are untouched and run on.
    for (const auto& t : tasks) {
        CHECK_FALSE(t.done());
        CHECK(t.cancelling() == 0);
    }
    const auto awaited_6 = co_await tasks[0];  // never co_await inside a Catch macro
    CHECK(awaited_6 == 0);
    const auto awaited_7 = co_await tasks[1];  // never co_await inside a Catch macro
    CHECK(awaited_7 == 1);
    const std::vector<std::string> expected{"waiter: cancelled_error", "main: waiter cancelled",
                                            "a finished", "b finished"};
    CHECK(rec.events() == expected);
}

}  // namespace

TEST_CASE("wait: all_completed waits for every task", "[wait]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(all_completed_main());
}

TEST_CASE("wait: first_completed returns at the first done; the rest run on, not cancelled",
          "[wait]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    SECTION("one finishes first") { corio::run(first_completed_main(rec)); }
    SECTION("one is done already") { corio::run(first_completed_already_done_main()); }
}

TEST_CASE("wait: first_exception returns at the first exception", "[wait]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(first_exception_main(rec));
}

TEST_CASE("wait: first_exception with no failure is all_completed", "[wait]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(first_exception_none_fails_main());
}

TEST_CASE("wait: a cancelled task does not count as an exception for first_exception", "[wait]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(first_exception_cancelled_main(rec));
}

TEST_CASE("wait: a timeout returns both sets and cancels nothing", "[wait][timing]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(timeout_main(rec));
}

TEST_CASE("wait: futures can be waited for too", "[wait]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(futures_main());
}

TEST_CASE("wait: an empty set throws std::invalid_argument", "[wait]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(empty_main(rec));
    const std::vector<std::string> expected{"invalid_argument", "invalid_argument"};
    CHECK(rec.events() == expected);
}

TEST_CASE("wait: cancelling the waiting task does not cancel the waited tasks", "[wait][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancel_waiter_main(rec));
}
