// Cancellation (API.md section 2; include/corio/task.hpp, detail/task_state.hpp, sleep.hpp):
// promptness, messages, catching and uncancelling, propagation to awaited tasks and futures,
// cancellation before a task starts, while it runs, and deep inside inline coros.
#include <corio/task.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>

#include <chrono>
#include <exception>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using corio_test::counted;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

static_assert(!std::is_base_of_v<std::exception, corio::cancelled_error>);
static_assert(std::is_nothrow_copy_constructible_v<corio::cancelled_error>);

corio::coro<void> sleep_and_report(recorder& rec, std::chrono::milliseconds d) {
    try {
        co_await corio::sleep(d);
        rec("slept");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("cancelled: ") + e.what());
        throw;
    }
}

corio::coro<void> prompt_main(recorder& rec) {
    auto t = corio::create_task(sleep_and_report(rec, 10s));
    co_await corio::sleep(1ms);
    CHECK_FALSE(t.done());
    CHECK(t.cancel("stop now"));
    CHECK_FALSE(t.done());  // delivered when the task next runs, not inline
    CHECK(t.cancelling() == 1);
    try {
        co_await t;
        rec("await returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("awaiter saw: ") + e.what());
    }
    CHECK(t.cancelled());
    try {
        t.result();
    } catch (const corio::cancelled_error& e) {
        rec(std::string("result() threw: ") + e.what());
    }
}

TEST_CASE("cancellation: a sleeping task is cancelled promptly, with the message given",
          "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::stopwatch watch;
    corio::run(prompt_main(rec));
    CHECK(watch.elapsed() < 1s);
    const std::vector<std::string> expected{"cancelled: stop now", "awaiter saw: stop now",
                                            "result() threw: stop now"};
    CHECK(rec.events() == expected);
}

corio::coro<void> swallow_std_exceptions(recorder& rec) {
    try {
        co_await corio::sleep(10s);
        rec("slept");
    } catch (const std::exception&) {
        rec("swallowed by catch (std::exception&)");
    }
    rec("ran on after the sleep");
}

corio::coro<void> not_std_exception_main(recorder& rec) {
    auto t = corio::create_task(swallow_std_exceptions(rec));
    co_await corio::sleep(0ms);
    t.cancel();
    try {
        co_await t;
    } catch (const corio::cancelled_error&) {
        rec("task ended cancelled");
    }
}

TEST_CASE("cancellation: catch (const std::exception&) does not swallow cancellation", "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(not_std_exception_main(rec));
    const std::vector<std::string> expected{"task ended cancelled"};
    CHECK(rec.events() == expected);

    // What the task saw: a plain value type carrying the message, copied without throwing.
    const corio::cancelled_error plain;
    CHECK(std::string(plain.what()).empty());
    const corio::cancelled_error with_message("why");
    const corio::cancelled_error copy = with_message;
    CHECK(std::string(copy.what()) == "why");
}

corio::coro<int> catch_cancellation(recorder& rec, bool uncancel) {
    try {
        co_await corio::sleep(10s);
    } catch (const corio::cancelled_error&) {
        corio::task<> self = corio::current_task();
        rec("caught; cancelling() = " + std::to_string(self.cancelling()));
        if (uncancel) rec("uncancel() = " + std::to_string(self.uncancel()));
    }
    // The request was delivered once: the task may await again, undisturbed.
    co_await corio::sleep(1ms);
    rec("cleaned up");
    co_return 42;
}

corio::coro<void> catch_and_return_main(recorder& rec, bool uncancel) {
    auto t = corio::create_task(catch_cancellation(rec, uncancel));
    co_await corio::sleep(0ms);
    CHECK(t.cancel());
    const int v = co_await t;
    rec("result " + std::to_string(v));
    CHECK_FALSE(t.cancelled());
    CHECK(t.done());
    CHECK(t.result() == 42);
    rec("cancelling() after = " + std::to_string(t.cancelling()));
}

TEST_CASE("cancellation: a task that catches cancelled_error and returns is not cancelled",
          "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    SECTION("without uncancel") {
        corio::run(catch_and_return_main(rec, false));
        const std::vector<std::string> expected{"caught; cancelling() = 1", "cleaned up",
                                                "result 42", "cancelling() after = 1"};
        CHECK(rec.events() == expected);
    }
    SECTION("with uncancel") {
        corio::run(catch_and_return_main(rec, true));
        const std::vector<std::string> expected{"caught; cancelling() = 1", "uncancel() = 0",
                                                "cleaned up", "result 42",
                                                "cancelling() after = 0"};
        CHECK(rec.events() == expected);
    }
}

corio::coro<void> cancelling_counts_main(recorder& rec) {
    auto t = corio::create_task(sleep_and_report(rec, 10s));
    co_await corio::sleep(0ms);
    CHECK(t.cancelling() == 0);
    CHECK(t.cancel());
    CHECK(t.cancel());
    CHECK(t.cancelling() == 2);
    CHECK(t.uncancel() == 1);
    CHECK(t.cancelling() == 1);
    try {
        co_await t;
    } catch (const corio::cancelled_error&) {
        rec("still cancelled with one request left");
    }
    CHECK(t.cancelled());
}

TEST_CASE("cancellation: cancelling() counts requests, uncancel() takes one back", "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(cancelling_counts_main(rec));
    const std::vector<std::string> expected{"cancelled: ", "still cancelled with one request left"};
    CHECK(rec.events() == expected);
}

corio::coro<void> outer_awaits_inner(corio::task<> inner, recorder& rec) {
    try {
        co_await inner;
        rec("outer: inner finished");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("outer: cancelled: ") + e.what());
        throw;
    }
}

corio::coro<void> propagation_main(recorder& rec) {
    auto inner = corio::create_task(sleep_and_report(rec, 10s));
    auto outer = corio::create_task(outer_awaits_inner(inner, rec));
    co_await corio::sleep(1ms);
    CHECK(outer.cancel("from main"));
    try {
        co_await outer;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(outer.cancelled());
    CHECK(inner.done());
    CHECK(inner.cancelled());
}

TEST_CASE("cancellation: cancelling a task cancels the task it awaits", "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::stopwatch watch;
    corio::run(propagation_main(rec));
    CHECK(watch.elapsed() < 1s);
    const std::vector<std::string> expected{"cancelled: from main", "outer: cancelled: from main"};
    CHECK(rec.events() == expected);
}

corio::coro<int> ignore_cancellation(recorder& rec) {
    try {
        co_await corio::sleep(10s);
    } catch (const corio::cancelled_error&) {
        rec("inner ignored cancellation; cancelling() = " +
            std::to_string(corio::current_task().cancelling()));
    }
    co_await corio::sleep(1ms);
    co_return 5;
}

corio::coro<int> return_what_inner_returns(corio::task<int> inner) { co_return co_await inner; }

corio::coro<void> inner_ignores_main(recorder& rec, int cancels) {
    auto inner = corio::create_task(ignore_cancellation(rec));
    auto outer = corio::create_task(return_what_inner_returns(inner));
    co_await corio::sleep(1ms);
    for (int i = 0; i < cancels; ++i) CHECK(outer.cancel());
    CHECK(outer.cancelling() == static_cast<unsigned>(cancels));
    try {
        rec("outer returned " + std::to_string(co_await outer));
    } catch (const corio::cancelled_error&) {
        rec("outer cancelled");
    }
    CHECK_FALSE(inner.cancelled());
    CHECK(inner.result() == 5);
    rec("inner cancelling() = " + std::to_string(inner.cancelling()));
}

TEST_CASE("cancellation: when the awaited task ignores the forwarded cancellation, the awaiter "
          "gets its result",
          "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    // asyncio's Task.cancel leaves _fut_waiter in place ("it may be a Task that catches and
    // ignores the cancellation"), so every request goes to the awaited task, and the awaiter
    // itself is not marked to be cancelled.
    SECTION("one request") {
        corio::run(inner_ignores_main(rec, 1));
        const std::vector<std::string> expected{"inner ignored cancellation; cancelling() = 1",
                                                "outer returned 5", "inner cancelling() = 1"};
        CHECK(rec.events() == expected);
    }
    SECTION("two requests are both forwarded") {
        corio::run(inner_ignores_main(rec, 2));
        const std::vector<std::string> expected{"inner ignored cancellation; cancelling() = 2",
                                                "outer returned 5", "inner cancelling() = 2"};
        CHECK(rec.events() == expected);
    }
}

corio::coro<void> never_runs(recorder& rec, counted c) {
    rec("body ran with " + std::to_string(c.value));
    co_return;
}

corio::coro<void> before_start_main(recorder& rec) {
    auto t = corio::create_task(never_runs(rec, counted{1}));
    CHECK(t.cancel());
    CHECK(t.cancelling() == 1);
    try {
        co_await t;
        rec("await returned");
    } catch (const corio::cancelled_error&) {
        rec("await threw cancelled_error");
    }
    CHECK(t.cancelled());
    rec(counted::alive() == 0 ? "frame and parameters destroyed" : "parameters still alive");
}

TEST_CASE("cancellation: a task cancelled before it ever ran never runs its body", "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    counted::reset();
    recorder rec;
    corio::run(before_start_main(rec));
    const std::vector<std::string> expected{"await threw cancelled_error",
                                            "frame and parameters destroyed"};
    CHECK(rec.events() == expected);
    CHECK(counted::alive() == 0);
}

corio::coro<void> cancel_self_then_await(recorder& rec) {
    co_await corio::sleep(0ms);
    rec(corio::current_task().cancel("self") ? "cancel() returned true" : "cancel() false");
    rec("still running after cancel()");
    try {
        co_await corio::sleep(10s);
        rec("slept");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("next await threw: ") + e.what());
        throw;
    }
}

corio::coro<void> cancel_self_then_return() {
    corio::current_task().cancel();
    co_return;  // no suspension point left: asyncio still marks the task cancelled
}

corio::coro<void> cancel_while_scheduled(recorder& rec) {
    try {
        co_await corio::sleep(0ms);  // ready to resume when main cancels it
        rec("yield returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("resumed with: ") + e.what());
        throw;
    }
}

corio::coro<void> while_running_main(recorder& rec) {
    auto a = corio::create_task(cancel_self_then_await(rec));
    try {
        co_await a;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(a.cancelled());

    auto b = corio::create_task(cancel_self_then_return());
    try {
        co_await b;
        rec("b returned normally");
    } catch (const corio::cancelled_error&) {
        rec("b ended cancelled");
    }
    CHECK(b.cancelled());

    auto c = corio::create_task(cancel_while_scheduled(rec));
    co_await corio::sleep(0ms);  // c has run to its sleep(0) and is ready again
    CHECK(c.cancel("while ready"));
    try {
        co_await c;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(c.cancelled());
}

TEST_CASE("cancellation: a running or ready task is cancelled at its next co_await", "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::stopwatch watch;
    corio::run(while_running_main(rec));
    CHECK(watch.elapsed() < 1s);
    const std::vector<std::string> expected{
        "cancel() returned true", "still running after cancel()", "next await threw: self",
        "b ended cancelled", "resumed with: while ready"};
    CHECK(rec.events() == expected);
}

corio::coro<int> return_value(int v) { co_return v; }

corio::coro<void> done_task_main() {
    auto t = corio::create_task(return_value(1));
    co_await t;
    CHECK_FALSE(t.cancel());
    CHECK_FALSE(t.cancel("late"));
    CHECK(t.cancelling() == 0);
    CHECK_FALSE(t.cancelled());
    CHECK(t.result() == 1);
}

TEST_CASE("cancellation: cancel() on a done task returns false and changes nothing", "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run(done_task_main());
}

corio::coro<int> await_future(corio::future<int> f, recorder& rec) {
    try {
        co_return co_await f;
    } catch (const corio::cancelled_error& e) {
        rec(std::string("waiter: cancelled: ") + e.what());
        throw;
    }
}

corio::coro<void> blocked_on_future_main(recorder& rec) {
    auto f = corio::get_running_loop().create_future<int>();
    auto t = corio::create_task(await_future(f, rec));
    co_await corio::sleep(0ms);
    CHECK(t.cancel("drop it"));
    CHECK(f.cancelled());  // withdrawn at once
    try {
        co_await t;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(t.cancelled());
    CHECK_THROWS_AS(f.set_result(1), corio::invalid_state_error);
}

TEST_CASE("cancellation: cancelling a task blocked on a future cancels the future", "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(blocked_on_future_main(rec));
    const std::vector<std::string> expected{"waiter: cancelled: drop it"};
    CHECK(rec.events() == expected);
}

corio::coro<void> cancel_self_then_await_future(corio::future<int> f, recorder& rec) {
    corio::current_task().cancel("pending");
    try {
        (void)co_await f;
        rec("await returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("await threw: ") + e.what());
        throw;
    }
}

corio::coro<void> cancel_self_then_await_task(corio::task<> inner, recorder& rec) {
    corio::current_task().cancel("pending");
    try {
        co_await inner;
        rec("await returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("await threw: ") + e.what());
        throw;
    }
}

corio::coro<void> pending_cancel_forwarded_main(recorder& rec) {
    auto f = corio::get_running_loop().create_future<int>();
    auto a = corio::create_task(cancel_self_then_await_future(f, rec));
    try {
        co_await a;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(a.cancelled());
    CHECK(f.cancelled());  // the pending request went to the future awaited next

    auto inner = corio::create_task(sleep_and_report(rec, 10s));
    auto b = corio::create_task(cancel_self_then_await_task(inner, rec));
    try {
        co_await b;
    } catch (const corio::cancelled_error&) {
    }
    CHECK(b.cancelled());
    CHECK(inner.cancelled());
}

TEST_CASE("cancellation: a request pending when a task awaits goes to what it awaits", "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::stopwatch watch;
    corio::run(pending_cancel_forwarded_main(rec));
    CHECK(watch.elapsed() < 1s);
    const std::vector<std::string> expected{"await threw: pending", "cancelled: pending",
                                            "await threw: pending"};
    CHECK(rec.events() == expected);
}

corio::coro<void> nested(int level, recorder& rec) {
    corio_test::record_on_destroy cleanup(rec, "level " + std::to_string(level) + " cleaned up");
    if (level == 0) {
        co_await corio::sleep(10s);
        rec("innermost sleep returned");
    } else {
        co_await nested(level - 1, rec);
        rec("level " + std::to_string(level) + " carried on");
    }
}

corio::coro<void> nested_main(recorder& rec) {
    auto t = corio::create_task(nested(3, rec));
    co_await corio::sleep(1ms);
    t.cancel();
    try {
        co_await t;
    } catch (const corio::cancelled_error&) {
        rec("task cancelled");
    }
}

TEST_CASE("cancellation: reaches the innermost sleep of nested inline coros", "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio_test::stopwatch watch;
    corio::run(nested_main(rec));
    CHECK(watch.elapsed() < 1s);
    const std::vector<std::string> expected{"level 0 cleaned up", "level 1 cleaned up",
                                            "level 2 cleaned up", "level 3 cleaned up",
                                            "task cancelled"};
    CHECK(rec.events() == expected);
}

corio::coro<void> queued_wakeup_main(recorder& rec) {
    auto& loop = corio::get_running_loop();
    auto t = corio::create_task(sleep_and_report(rec, 5ms));
    const auto before_t_slept = loop.time();
    co_await corio::sleep(0ms);  // t sleeps until (later than before_t_slept) + 5 ms
    // Due before t's timer, so that both fire in the same iteration with the callback first:
    // t is then cancelled while its wake-up is already queued.
    loop.call_at(before_t_slept + 1ms, [t]() mutable { t.cancel("late"); });
    std::this_thread::sleep_for(20ms);  // both timers expire while the loop is busy here
    try {
        co_await t;
        rec("await returned");
    } catch (const corio::cancelled_error& e) {
        rec(std::string("awaiter saw: ") + e.what());
    }
    co_await corio::sleep(1ms);
    co_await corio::sleep(0ms);
    rec("loop still sound");
}

TEST_CASE("cancellation: cancelling a task whose wake-up is already queued delivers it once",
          "[cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::run(queued_wakeup_main(rec));
    // asyncio: the sleep's future is done, so cancel() sets _must_cancel and the task gets
    // CancelledError when its queued step runs.
    const std::vector<std::string> expected{"cancelled: late", "awaiter saw: late",
                                            "loop still sound"};
    CHECK(rec.events() == expected);
}

}  // namespace
