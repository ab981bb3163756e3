// Deadlines saturate (include/corio/detail/deadline.hpp): every duration and time point a user
// passes to sleep, wait_for, wait, call_later, call_at and advance_time, however large, small,
// negative or coarse its unit, means what it says: `max()` is never, zero and negative are now,
// and nothing wraps into the past (a timer firing at once) or into a frozen loop (no timer
// firing again). Run on real time, so that a wrapped poll timeout would show as a hang.
#include <corio/detail/deadline.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/debug/virtual_time.hpp>
#include <corio/event_loop.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>
#include <corio/wait.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <ratio>
#include <stdexcept>
#include <vector>

using namespace std::chrono_literals;
using corio::detail::loop_clock;
using corio_test::frame_leak_check;

namespace {

corio::coro<int> value_after(std::chrono::milliseconds delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

/// Far more than any of these cases should take, far less than a test's time limit.
constexpr auto generous = 5s;

}  // namespace

TEST_CASE("deadline: to_loop_duration converts exactly and saturates", "[deadline]") {
    using corio::detail::to_loop_duration;
    using ns = loop_clock::duration;
    CHECK(to_loop_duration(3ms) == ns(3'000'000));
    CHECK(to_loop_duration(-3ms) == ns(-3'000'000));
    CHECK(to_loop_duration(0h) == ns(0));
    CHECK(to_loop_duration(ns::max()) == ns::max());
    CHECK(to_loop_duration(ns::min()) == ns::min());
    CHECK(to_loop_duration(std::chrono::hours::max()) == ns::max());
    CHECK(to_loop_duration(std::chrono::hours::min()) == ns::min());
    CHECK(to_loop_duration(std::chrono::seconds::max()) == ns::max());
    CHECK(to_loop_duration(std::chrono::microseconds::max()) == ns::max());
    // A whole number of hours just inside the range converts exactly.
    const auto hours_inside = std::chrono::hours(ns::max().count() / 3'600'000'000'000);
    CHECK(to_loop_duration(hours_inside) == std::chrono::nanoseconds(hours_inside));
    // Finer than the clock: rounded up, so that a timer never fires early.
    using picoseconds = std::chrono::duration<long long, std::pico>;
    CHECK(to_loop_duration(picoseconds(1)) == ns(1));
    CHECK(to_loop_duration(picoseconds(2000)) == ns(2));
    CHECK(to_loop_duration(picoseconds(2001)) == ns(3));
    CHECK(to_loop_duration(picoseconds::max()) == ns(picoseconds::max().count() / 1000 + 1));
    // An odd ratio whose naive conversion (count * num first) overflows though the result fits.
    using thirds = std::chrono::duration<long long, std::ratio<1, 3>>;
    CHECK(to_loop_duration(thirds(3)) == ns(1'000'000'000));
    CHECK(to_loop_duration(thirds(27'000'000'000)) == ns(9'000'000'000'000'000'000));
    // Floating point: rounded up, huge values saturate, NaN is a bad argument.
    CHECK(to_loop_duration(std::chrono::duration<double>(1.5e-9)) == ns(2));
    CHECK(to_loop_duration(std::chrono::duration<double>(1e300)) == ns::max());
    CHECK(to_loop_duration(std::chrono::duration<double>(-1e300)) == ns::min());
    CHECK(to_loop_duration(
              std::chrono::duration<double>(std::numeric_limits<double>::infinity())) == ns::max());
    CHECK_THROWS_AS(to_loop_duration(std::chrono::duration<double>(std::nan(""))),
                    std::invalid_argument);
}

TEST_CASE("deadline: saturating_add and time_until clamp to the clock's range", "[deadline]") {
    using corio::detail::saturating_add;
    using corio::detail::time_until;
    using tp = loop_clock::time_point;
    using ns = loop_clock::duration;
    const tp now = loop_clock::now();
    CHECK(saturating_add(now, ns::max()) == tp::max());
    CHECK(saturating_add(now, ns(5)) == now + ns(5));
    CHECK(saturating_add(now, -ns(5)) == now - ns(5));
    CHECK(saturating_add(tp::max(), ns(1)) == tp::max());
    CHECK(saturating_add(tp::min(), -ns(1)) == tp::min());
    CHECK(saturating_add(tp(ns(-10)), ns::min()) == tp::min());
    CHECK(time_until(tp::max(), now) == tp::max() - now);
    CHECK(time_until(now, now) == ns::zero());
    CHECK(time_until(tp::min(), now) == ns::zero());
    CHECK(time_until(now + 7ms, now) == 7ms);
    CHECK(time_until(tp::max(), tp(ns(-10))) == ns::max());
}

TEST_CASE("deadline: wait_for with a timeout of max() of any unit returns the result",
          "[deadline]") {
    frame_leak_check leaks;
    const auto started = loop_clock::now();
    int results = corio::run([]() -> corio::coro<int> {
        int sum = co_await corio::wait_for(value_after(20ms, 1), std::chrono::nanoseconds::max());
        sum += co_await corio::wait_for(value_after(20ms, 2), std::chrono::hours::max());
        sum += co_await corio::wait_for(value_after(20ms, 3), std::chrono::seconds::max());
        sum += co_await corio::wait_for(value_after(20ms, 4), std::chrono::duration<double>(1e300));
        // A timer that never fires does not keep the loop from firing the others.
        co_await corio::sleep(30ms);
        co_return sum;
    }());
    CHECK(results == 10);
    CHECK(loop_clock::now() - started < generous);
}

TEST_CASE("deadline: zero and negative wait_for timeouts time out what is not ready",
          "[deadline]") {
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        CHECK_THROWS_AS(co_await corio::wait_for(value_after(50ms, 1), 0s), corio::timeout_error);
        CHECK_THROWS_AS(co_await corio::wait_for(value_after(50ms, 1), -5s), corio::timeout_error);
        CHECK_THROWS_AS(co_await corio::wait_for(value_after(50ms, 1), std::chrono::hours::min()),
                        corio::timeout_error);
        // Something already finished gets through a timeout already past, as in asyncio.
        auto done = corio::create_task(value_after(0ms, 7));
        co_await corio::sleep(10ms);
        CHECK(co_await corio::wait_for(done, -1s) == 7);
    }());
}

TEST_CASE("deadline: call_later and call_at with max() never run and freeze nothing",
          "[deadline]") {
    frame_leak_check leaks;
    const auto started = loop_clock::now();
    std::vector<int> ran;
    corio::run([&]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        auto a = loop.call_later(std::chrono::nanoseconds::max(), [&] { ran.push_back(1); });
        auto b = loop.call_later(std::chrono::hours::max(), [&] { ran.push_back(2); });
        auto c = loop.call_later(std::chrono::duration<double>(1e300), [&] { ran.push_back(3); });
        auto d = loop.call_at(corio::event_loop::time_point::max(), [&] { ran.push_back(4); });
        CHECK(d.when() == corio::event_loop::time_point::max());
        CHECK(b.when() == corio::event_loop::time_point::max());
        // The loop still sleeps for the time asked and fires the timers due.
        auto e = loop.call_later(20ms, [&] { ran.push_back(5); });
        co_await corio::sleep(30ms);
        CHECK(ran == std::vector<int>{5});
        for (auto* handle : {&a, &b, &c, &d}) handle->cancel();
    }());
    CHECK(ran == std::vector<int>{5});
    CHECK(loop_clock::now() - started < generous);
}

TEST_CASE("deadline: call_later and call_at in the past run in the next iteration", "[deadline]") {
    frame_leak_check leaks;
    std::vector<int> ran;
    corio::run([&]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        loop.call_later(0s, [&] { ran.push_back(1); });
        loop.call_later(-1h, [&] { ran.push_back(2); });
        loop.call_later(std::chrono::nanoseconds::min(), [&] { ran.push_back(3); });
        loop.call_later(std::chrono::hours::min(), [&] { ran.push_back(4); });
        loop.call_at(corio::event_loop::time_point::min(), [&] { ran.push_back(5); });
        loop.call_at(loop.time() - 1s, [&] { ran.push_back(6); });
        CHECK(ran.empty());
        co_await corio::sleep(10ms);
        CHECK(ran.size() == 6);
    }());
    CHECK(ran.size() == 6);
}

TEST_CASE("deadline: sleep of max() is cancellable and others' timers still fire", "[deadline]") {
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto forever = corio::create_task(
            []() -> corio::coro<> { co_await corio::sleep(std::chrono::hours::max()); }());
        auto forever_ns = corio::create_task(
            []() -> corio::coro<> { co_await corio::sleep(std::chrono::nanoseconds::max()); }());
        co_await corio::sleep(30ms);
        CHECK_FALSE(forever.done());
        CHECK_FALSE(forever_ns.done());
        forever.cancel();
        forever_ns.cancel();
        CHECK_THROWS_AS(co_await forever, corio::cancelled_error);
        CHECK_THROWS_AS(co_await forever_ns, corio::cancelled_error);
        // Negative and minimal sleeps yield once.
        co_await corio::sleep(-1s);
        co_await corio::sleep(std::chrono::hours::min());
    }());
}

TEST_CASE("deadline: wait with a timeout of max() or below zero", "[deadline]") {
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        std::vector<corio::task<int>> tasks;
        tasks.push_back(corio::create_task(value_after(10ms, 1)));
        tasks.push_back(corio::create_task(value_after(20ms, 2)));
        auto [done, pending] = co_await corio::wait(tasks, std::chrono::hours::max());
        CHECK(done.size() == 2);
        CHECK(pending.empty());

        std::vector<corio::task<int>> more;
        more.push_back(corio::create_task(value_after(50ms, 3)));
        auto [done_now, pending_now] = co_await corio::wait(more, -1s);
        CHECK(done_now.empty());
        CHECK(pending_now.size() == 1);
        CHECK(co_await more[0] == 3);
    }());
}

TEST_CASE("deadline: virtual time with timers at max() and huge advances", "[deadline]") {
    frame_leak_check leaks;
    corio::run_options options;
    options.virtual_time = true;
    corio::run(
        []() -> corio::coro<> {
            auto& loop = corio::get_running_loop();
            bool never = false;
            auto handle = loop.call_later(std::chrono::hours::max(), [&] { never = true; });
            co_await corio::sleep(24h);  // jumps a day, not to the end of time
            CHECK_FALSE(never);
            CHECK(co_await corio::wait_for(value_after(1000h, 5), std::chrono::hours::max()) == 5);
            CHECK_FALSE(never);
            // Advancing past the end of the clock saturates; the timer at max() is then due.
            co_await corio::advance(std::chrono::hours::max());
            CHECK(loop.time() == corio::event_loop::time_point::max());
            co_await corio::sleep(0s);
            CHECK(never);
            handle.cancel();
            CHECK_THROWS_AS(loop.advance_time(-1ns), std::invalid_argument);
        }(),
        options);
}
