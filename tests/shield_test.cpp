// corio::shield (include/corio/shield.hpp): the awaiter's cancellation does not reach the
// shielded work; results and exceptions pass through; a shielded coro becomes a task that
// survives.
#include <corio/shield.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

static_assert(
    std::is_same_v<decltype(corio::shield(std::declval<corio::coro<int>>())), corio::future<int>>);
static_assert(
    std::is_same_v<decltype(corio::shield(std::declval<corio::task<>&>())), corio::future<void>>);

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

corio::coro<int> fail_after(std::chrono::milliseconds delay, std::string message) {
    co_await corio::sleep(delay);
    throw test_error(message);
}

corio::coro<std::unique_ptr<int>> boxed_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return std::make_unique<int>(value);
}

corio::coro<void> await_shielded(corio::task<int> inner, recorder& rec) {
    try {
        const int value = co_await corio::shield(inner);
        rec("awaiter: value " + std::to_string(value));
    } catch (const corio::cancelled_error&) {
        rec("awaiter: cancelled_error");
        throw;
    }
}

corio::coro<void> cancel_awaiter_main(recorder& rec) {
    corio::task<int> inner = corio::create_task(sleeper(30ms, rec, "inner", 5));
    corio::task<> awaiter = corio::create_task(await_shielded(inner, rec));
    co_await corio::sleep(5ms);
    CHECK(awaiter.cancel());
    try {
        co_await awaiter;
    } catch (const corio::cancelled_error&) {
        rec("main: awaiter cancelled");
    }
    CHECK(awaiter.cancelled());
    CHECK_FALSE(inner.done());
    CHECK(inner.cancelling() == 0);
    const int value = co_await inner;
    CHECK(value == 5);
    CHECK_FALSE(inner.cancelled());
    const std::vector<std::string> expected{"awaiter: cancelled_error", "main: awaiter cancelled",
                                            "inner finished"};
    CHECK(rec.events() == expected);
}

corio::coro<void> pass_through_main(recorder& rec) {
    corio::task<int> t = corio::create_task(sleeper(2ms, rec, "t", 1));
    const int from_task = co_await corio::shield(t);
    CHECK(from_task == 1);

    const int from_coro = co_await corio::shield(sleeper(2ms, rec, "coro", 2));
    CHECK(from_coro == 2);

    corio::future<std::string> f = corio::get_running_loop().create_future<std::string>();
    corio::get_running_loop().call_later(2ms, [f]() mutable { f.set_result("three"); });
    const std::string from_future = co_await corio::shield(f);
    CHECK(from_future == "three");

    // Move-only results are moved through.
    std::unique_ptr<int> boxed = co_await corio::shield(boxed_after(1ms, 4));
    REQUIRE(boxed != nullptr);
    CHECK(*boxed == 4);

    // Already done.
    const int again = co_await corio::shield(t);
    CHECK(again == 1);

    // Exceptions pass through.
    try {
        (void)co_await corio::shield(fail_after(1ms, "boom"));
        FAIL("shield did not rethrow");
    } catch (const test_error& e) {
        CHECK(std::string(e.what()) == "boom");
    }
    corio::task<int> failing = corio::create_task(fail_after(1ms, "task boom"));
    try {
        (void)co_await corio::shield(failing);
        FAIL("shield did not rethrow");
    } catch (const test_error& e) {
        CHECK(std::string(e.what()) == "task boom");
    }

    // The shielded task itself cancelled: the shield's future is cancelled too.
    corio::task<int> doomed = corio::create_task(sleeper(1s, rec, "doomed", 0));
    corio::get_running_loop().call_later(2ms, [doomed]() mutable { doomed.cancel(); });
    bool cancelled = false;
    try {
        (void)co_await corio::shield(doomed);
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    CHECK(corio::current_task().cancelling() == 0);
}

corio::coro<void> await_shielded_coro(recorder& rec) {
    try {
        const int value = co_await corio::shield(sleeper(30ms, rec, "shielded coro", 6));
        rec("awaiter: value " + std::to_string(value));
    } catch (const corio::cancelled_error&) {
        rec("awaiter: cancelled_error");
        throw;
    }
}

corio::coro<void> shield_coro_main(recorder& rec) {
    corio::task<> awaiter = corio::create_task(await_shielded_coro(rec));
    co_await corio::sleep(5ms);
    // The shield wrapped the coro in a task of its own.
    CHECK(corio::all_tasks().size() == 3);
    CHECK(awaiter.cancel());
    try {
        co_await awaiter;
    } catch (const corio::cancelled_error&) {
        rec("main: awaiter cancelled");
    }
    CHECK(awaiter.cancelled());
    // The shielded coro's task is still running.
    std::vector<corio::task<>> tasks = corio::all_tasks();
    REQUIRE(tasks.size() == 2);
    corio::task<> shielded = tasks[0] == corio::current_task() ? tasks[1] : tasks[0];
    CHECK_FALSE(shielded.done());
    co_await shielded;
    CHECK_FALSE(shielded.cancelled());
    const std::vector<std::string> expected{"awaiter: cancelled_error", "main: awaiter cancelled",
                                            "shielded coro finished"};
    CHECK(rec.events() == expected);
}

corio::coro<void> await_shielded_failure(corio::task<int> inner) {
    (void)co_await corio::shield(inner);
}

corio::coro<void> unseen_failure_main(corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    corio::task<> awaiter =
        corio::create_task(await_shielded_failure(corio::create_task(fail_after(10ms, "late"))));
    co_await corio::sleep(2ms);
    awaiter.cancel();
    try {
        co_await awaiter;
    } catch (const corio::cancelled_error&) {
    }
    co_await corio::sleep(20ms);
}

}  // namespace

TEST_CASE("shield: cancelling the awaiter leaves the shielded task running to completion",
          "[shield][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancel_awaiter_main(rec));
}

TEST_CASE("shield: results and exceptions pass through", "[shield]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(pass_through_main(rec));
}

TEST_CASE("shield: a shielded coro becomes a task that survives the cancellation",
          "[shield][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(shield_coro_main(rec));
}

TEST_CASE("shield: a failure nobody awaits any more is not reported as never retrieved",
          "[shield]") {
    // asyncio's shield marks the inner exception retrieved when the outer future was cancelled.
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::exception_log log;
    corio::run(unseen_failure_main(log));
    CHECK(log.size() == 0);
}
