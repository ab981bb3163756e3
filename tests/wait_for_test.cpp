// corio::wait_for (include/corio/timeout.hpp): a result in time, a timeout that waits for the
// awaitable to finish cancelling, an awaitable that swallows the cancellation, the caller's own
// cancellation, and a zero timeout on something already done.
#include <corio/timeout.hpp>

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
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

corio::coro<int> value_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

corio::coro<std::unique_ptr<int>> boxed_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return std::make_unique<int>(value);
}

corio::coro<void> nothing_after(std::chrono::milliseconds delay) { co_await corio::sleep(delay); }

corio::coro<int> fail_after(std::chrono::milliseconds delay, std::string message) {
    co_await corio::sleep(delay);
    throw test_error(message);
}

/// Sleeps for long; on cancellation, cleans up for 20 ms before letting it through.
corio::coro<int> slow_cleanup(recorder& rec) {
    try {
        co_await corio::sleep(10s);
    } catch (const corio::cancelled_error&) {
        rec("cleanup started");
    }
    co_await corio::sleep(20ms);
    rec("cleanup done");
    throw corio::cancelled_error();
}

/// Sleeps for long; catches the cancellation and returns 42 instead.
corio::coro<int> swallow_cancel(recorder& rec) {
    try {
        co_await corio::sleep(10s);
    } catch (const corio::cancelled_error&) {
        rec("swallowed");
        co_return 42;
    }
    co_return 0;
}

corio::coro<void> void_swallow_cancel(recorder& rec) {
    try {
        co_await corio::sleep(10s);
    } catch (const corio::cancelled_error&) {
        rec("swallowed");
    }
}

corio::coro<int> sleeper(std::chrono::milliseconds delay, recorder& rec, std::string name) {
    try {
        co_await corio::sleep(delay);
    } catch (const corio::cancelled_error&) {
        rec(name + " cancelled");
        throw;
    }
    rec(name + " finished");
    co_return 1;
}

bool only_current_task_left() {
    std::vector<corio::task<>> tasks = corio::all_tasks();
    return tasks.size() == 1 && tasks[0] == corio::current_task();
}

corio::coro<void> in_time_main() {
    corio::event_loop& loop = corio::get_running_loop();

    const int from_coro = co_await corio::wait_for(value_after(2ms, 1), 5s);
    CHECK(from_coro == 1);

    corio::task<int> t = corio::create_task(value_after(2ms, 2));
    const int from_task = co_await corio::wait_for(t, 5s);
    CHECK(from_task == 2);
    CHECK(t.result() == 2);  // the caller's handle still holds the result

    corio::future<std::string> f = loop.create_future<std::string>();
    loop.call_later(2ms, [f]() mutable { f.set_result("three"); });
    const std::string from_future = co_await corio::wait_for(f, 5s);
    CHECK(from_future == "three");

    std::unique_ptr<int> boxed = co_await corio::wait_for(boxed_after(1ms, 4), 5s);
    REQUIRE(boxed != nullptr);
    CHECK(*boxed == 4);

    co_await corio::wait_for(nothing_after(1ms), 5s);
    co_await corio::wait_for(corio::create_task(nothing_after(1ms)), 5s);

    // An exception passes through as it is.
    try {
        (void)co_await corio::wait_for(fail_after(1ms, "boom"), 5s);
        FAIL("wait_for did not throw");
    } catch (const test_error& e) {
        CHECK(std::string(e.what()) == "boom");
    }
    try {
        (void)co_await corio::wait_for(corio::create_task(fail_after(1ms, "task boom")), 5s);
        FAIL("wait_for did not throw");
    } catch (const test_error& e) {
        CHECK(std::string(e.what()) == "task boom");
    }

    // Nothing left over: no cancellation request, no timer firing later.
    CHECK(corio::current_task().cancelling() == 0);
    co_await corio::sleep(10ms);
    CHECK(corio::current_task().cancelling() == 0);
    CHECK(only_current_task_left());
}

corio::coro<void> timeout_coro_main(recorder& rec) {
    corio_test::stopwatch watch;
    try {
        (void)co_await corio::wait_for(slow_cleanup(rec), 10ms);
        rec("no exception");
    } catch (const corio::timeout_error&) {
        rec("timeout_error");
    } catch (const corio::cancelled_error&) {
        rec("cancelled_error");
    }
    CHECK(watch.elapsed() >= 30ms);
    CHECK(corio::current_task().cancelling() == 0);
    CHECK(only_current_task_left());
    // The task goes on normally: no cancellation is pending.
    co_await corio::sleep(1ms);
    rec("slept after");
}

corio::coro<void> timeout_task_main(recorder& rec) {
    corio::task<int> t = corio::create_task(slow_cleanup(rec));
    corio_test::stopwatch watch;
    try {
        (void)co_await corio::wait_for(t, 10ms);
        rec("no exception");
    } catch (const corio::timeout_error&) {
        rec("timeout_error");
    } catch (const corio::cancelled_error&) {
        rec("cancelled_error");
    }
    CHECK(watch.elapsed() >= 30ms);
    CHECK(t.done());
    CHECK(t.cancelled());
    CHECK(corio::current_task().cancelling() == 0);
    CHECK(only_current_task_left());
    co_await corio::sleep(1ms);
    rec("slept after");
}

corio::coro<void> timeout_plain_task_main(recorder& rec) {
    corio::task<int> t = corio::create_task(sleeper(10s, rec, "sleeper"));
    corio::future<int> f = corio::get_running_loop().create_future<int>();
    try {
        (void)co_await corio::wait_for(t, 5ms);
        rec("no exception");
    } catch (const corio::timeout_error&) {
        rec("timeout_error");
    }
    CHECK(t.cancelled());
    try {
        (void)co_await corio::wait_for(f, 5ms);
        rec("no exception");
    } catch (const corio::timeout_error&) {
        rec("timeout_error");
    }
    CHECK(f.cancelled());
    CHECK(only_current_task_left());
}

corio::coro<void> swallow_main(recorder& rec) {
    const int from_coro = co_await corio::wait_for(swallow_cancel(rec), 5ms);
    CHECK(from_coro == 42);
    CHECK(corio::current_task().cancelling() == 0);

    corio::task<int> t = corio::create_task(swallow_cancel(rec));
    const int from_task = co_await corio::wait_for(t, 5ms);
    CHECK(from_task == 42);
    CHECK_FALSE(t.cancelled());
    CHECK(corio::current_task().cancelling() == 0);

    co_await corio::wait_for(void_swallow_cancel(rec), 5ms);
    CHECK(corio::current_task().cancelling() == 0);

    // Still cancellable as usual afterwards, and no stray cancellation hits a later await.
    co_await corio::sleep(10ms);
    rec("slept after");
}

corio::coro<int> wait_for_and_record(corio::coro<int> body, recorder& rec) {
    try {
        const int value = co_await corio::wait_for(std::move(body), 5s);
        rec("outer: value");
        co_return value;
    } catch (const corio::timeout_error&) {
        rec("outer: timeout_error");
        throw;
    } catch (const corio::cancelled_error&) {
        rec("outer: cancelled_error");
        throw;
    }
}

corio::coro<int> wait_for_task_and_record(corio::task<int> inner, recorder& rec) {
    try {
        const int value = co_await corio::wait_for(inner, 5s);
        rec("outer: value");
        co_return value;
    } catch (const corio::timeout_error&) {
        rec("outer: timeout_error");
        throw;
    } catch (const corio::cancelled_error&) {
        rec("outer: cancelled_error");
        throw;
    }
}

corio::coro<int> wait_for_with(corio::coro<int> body, std::chrono::milliseconds timeout,
                               recorder& rec) {
    try {
        const int value = co_await corio::wait_for(std::move(body), timeout);
        rec("outer: value");
        co_return value;
    } catch (const corio::timeout_error&) {
        rec("outer: timeout_error");
        throw;
    } catch (const corio::cancelled_error&) {
        rec("outer: cancelled_error");
        throw;
    }
}

corio::coro<void> cancel_outer_main(recorder& rec) {
    corio::task<int> outer =
        corio::create_task(wait_for_and_record(sleeper(10s, rec, "coro"), rec));
    co_await corio::sleep(5ms);
    CHECK(outer.cancel());
    try {
        co_await outer;
        rec("main: no exception");
    } catch (const corio::cancelled_error&) {
        rec("main: cancelled_error");
    } catch (const corio::timeout_error&) {
        rec("main: timeout_error");
    }
    CHECK(outer.cancelled());

    corio::task<int> inner = corio::create_task(sleeper(10s, rec, "task"));
    corio::task<int> outer2 = corio::create_task(wait_for_task_and_record(inner, rec));
    co_await corio::sleep(5ms);
    CHECK(outer2.cancel());
    try {
        co_await outer2;
        rec("main: no exception");
    } catch (const corio::cancelled_error&) {
        rec("main: cancelled_error");
    } catch (const corio::timeout_error&) {
        rec("main: timeout_error");
    }
    CHECK(outer2.cancelled());
    CHECK(inner.cancelled());
    CHECK(only_current_task_left());
}

corio::coro<void> cancel_then_expire_main(recorder& rec) {
    // The outer task is cancelled at 5 ms; its awaitable cleans up for 20 ms, during which the
    // 10 ms timeout expires too: the caller's cancellation wins.
    corio::task<int> outer = corio::create_task(wait_for_with(slow_cleanup(rec), 10ms, rec));
    co_await corio::sleep(5ms);
    CHECK(outer.cancel());
    try {
        co_await outer;
        rec("main: no exception");
    } catch (const corio::cancelled_error&) {
        rec("main: cancelled_error");
    } catch (const corio::timeout_error&) {
        rec("main: timeout_error");
    }
    CHECK(outer.cancelled());
}

corio::coro<void> nested_main(recorder& rec) {
    // The inner timeout expires first: its timeout_error passes through the outer wait_for.
    try {
        (void)co_await corio::wait_for(corio::wait_for(value_after(10s, 1), 5ms), 5s);
        rec("inner first: no exception");
    } catch (const corio::timeout_error&) {
        rec("inner first: timeout_error");
    }
    CHECK(corio::current_task().cancelling() == 0);
    // The outer timeout expires first: the inner wait_for lets the cancellation through and
    // the outer one turns it into timeout_error.
    try {
        (void)co_await corio::wait_for(corio::wait_for(value_after(10s, 1), 5s), 5ms);
        rec("outer first: no exception");
    } catch (const corio::timeout_error&) {
        rec("outer first: timeout_error");
    }
    CHECK(corio::current_task().cancelling() == 0);
    // Both at once.
    try {
        (void)co_await corio::wait_for(corio::wait_for(value_after(10s, 1), 5ms), 5ms);
        rec("both: no exception");
    } catch (const corio::timeout_error&) {
        rec("both: timeout_error");
    }
    CHECK(corio::current_task().cancelling() == 0);
    co_await corio::sleep(10ms);  // no stray cancellation left
    rec("slept after");
}

corio::coro<void> zero_timeout_main() {
    corio::task<int> t = corio::create_task(value_after(0ms, 7));
    co_await t;
    REQUIRE(t.done());
    const int value = co_await corio::wait_for(t, 0s);
    CHECK(value == 7);

    corio::future<int> f = corio::get_running_loop().create_future<int>();
    f.set_result(8);
    const int from_future = co_await corio::wait_for(f, 0ms);
    CHECK(from_future == 8);

    // A zero (or negative) timeout on something still pending times out.
    corio::task<int> pending = corio::create_task(value_after(1s, 9));
    bool timed_out = false;
    try {
        (void)co_await corio::wait_for(pending, 0s);
    } catch (const corio::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    CHECK(pending.cancelled());
    CHECK(corio::current_task().cancelling() == 0);
}

}  // namespace

TEST_CASE("wait_for: the result is returned when it comes in time", "[wait_for]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(in_time_main());
}

TEST_CASE("wait_for: timeout_error comes once the awaitable has finished cancelling",
          "[wait_for][timing]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    const std::vector<std::string> expected{"cleanup started", "cleanup done", "timeout_error",
                                            "slept after"};
    SECTION("a coro") {
        corio::run(timeout_coro_main(rec));
        CHECK(rec.events() == expected);
    }
    SECTION("a task") {
        corio::run(timeout_task_main(rec));
        CHECK(rec.events() == expected);
    }
}

TEST_CASE("wait_for: on timeout the awaited task or future is cancelled, nothing left behind",
          "[wait_for]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(timeout_plain_task_main(rec));
    const std::vector<std::string> expected{"sleeper cancelled", "timeout_error", "timeout_error"};
    CHECK(rec.events() == expected);
}

TEST_CASE("wait_for: an awaitable that catches the cancellation and returns a value",
          "[wait_for]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(swallow_main(rec));
    const std::vector<std::string> expected{"swallowed", "swallowed", "swallowed", "slept after"};
    CHECK(rec.events() == expected);
}

TEST_CASE("wait_for: cancelling the waiting task gives cancelled_error, not timeout_error",
          "[wait_for][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancel_outer_main(rec));
    const std::vector<std::string> expected{"coro cancelled",         "outer: cancelled_error",
                                            "main: cancelled_error",  "task cancelled",
                                            "outer: cancelled_error", "main: cancelled_error"};
    CHECK(rec.events() == expected);
}

TEST_CASE("wait_for: the caller's cancellation wins over a timeout expiring during cleanup",
          "[wait_for][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancel_then_expire_main(rec));
    // The timer interrupted the cleanup's sleep (as asyncio's timeout cancels the task again).
    const std::vector<std::string> expected{"cleanup started", "outer: cancelled_error",
                                            "main: cancelled_error"};
    CHECK(rec.events() == expected);
}

TEST_CASE("wait_for: nested timeouts", "[wait_for]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(nested_main(rec));
    const std::vector<std::string> expected{"inner first: timeout_error",
                                            "outer first: timeout_error", "both: timeout_error",
                                            "slept after"};
    CHECK(rec.events() == expected);
}

TEST_CASE("wait_for: a zero timeout on something done returns its result", "[wait_for]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(zero_timeout_main());
}
