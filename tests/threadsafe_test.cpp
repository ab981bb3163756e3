// event_loop::call_soon_threadsafe (include/corio/event_loop.hpp), the one member other
// threads may call, and the reactors' wake() under it: no call lost, each thread's calls in
// order, a loop blocked in the reactor woken at once, and two loops on two threads talking
// through it. Built under ThreadSanitizer by scripts/test.sh (its "tsan" stage runs
// `ctest -R threadsafe`).
#include <corio/event_loop.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::stopwatch;

namespace {

using clock_type = std::chrono::steady_clock;

// Under ThreadSanitizer everything runs several times slower: the time limits below are for
// "promptly" versus "only when a 10 s or 30 s wait ran out", so they stay generous.

TEST_CASE("threadsafe: 4 threads x 100,000 calls to an idle loop: none lost, each thread's "
          "in order",
          "[threadsafe]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr int threads = 4;
    constexpr int calls_per_thread = 100'000;

    // Touched on the loop's thread only.
    std::vector<std::vector<int>> seen(threads);
    int total = 0;
    bool on_loop_thread = true;
    bool timed_out = false;

    corio::run([](std::vector<std::vector<int>>& seen, int& total, bool& on_loop_thread,
                  bool& timed_out) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        const auto loop_thread = std::this_thread::get_id();
        corio::future<> all_arrived = loop.create_future<>();
        for (auto& s : seen) s.reserve(calls_per_thread);

        std::atomic<bool> go{false};
        std::vector<std::thread> producers;
        for (int t = 0; t < threads; ++t) {
            producers.emplace_back([&, t] {
                while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
                for (int i = 0; i < calls_per_thread; ++i) {
                    loop.call_soon_threadsafe([&, t, i] {
                        if (std::this_thread::get_id() != loop_thread) on_loop_thread = false;
                        seen[static_cast<std::size_t>(t)].push_back(i);
                        if (++total == threads * calls_per_thread) all_arrived.set_result();
                    });
                }
            });
        }
        go.store(true, std::memory_order_release);
        // Nothing else to do: the loop blocks in the reactor (a long timer only as a
        // watchdog) and depends on being woken.
        try {
            co_await corio::wait_for(all_arrived, 60s);
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        for (auto& p : producers) p.join();
    }(seen, total, on_loop_thread, timed_out));

    CHECK_FALSE(timed_out);
    CHECK(total == threads * calls_per_thread);
    CHECK(on_loop_thread);
    for (int t = 0; t < threads; ++t) {
        const auto& s = seen[static_cast<std::size_t>(t)];
        CAPTURE(t);
        CHECK(s.size() == static_cast<std::size_t>(calls_per_thread));
        bool in_order = true;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] != static_cast<int>(i)) {
                in_order = false;
                break;
            }
        }
        CHECK(in_order);
    }
}

TEST_CASE("threadsafe: call_soon_threadsafe wakes a loop blocked in a 10 s sleep, promptly",
          "[threadsafe]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    stopwatch total;
    clock_type::duration latency{};
    bool cancelled = false;
    corio::run([](clock_type::duration& latency, bool& cancelled) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        auto sleeper = corio::create_task([]() -> corio::coro<> { co_await corio::sleep(10s); }());
        clock_type::time_point called{};  // written by the waker before its call
        std::thread waker([&] {
            std::this_thread::sleep_for(50ms);  // the loop is asleep in the reactor by now
            called = clock_type::now();
            loop.call_soon_threadsafe([&] {
                latency = clock_type::now() - called;
                sleeper.cancel();
            });
        });
        try {
            co_await sleeper;
        } catch (const corio::cancelled_error&) {
            cancelled = true;
        }
        waker.join();
    }(latency, cancelled));
    CHECK(cancelled);
    const double latency_ms = std::chrono::duration<double, std::milli>(latency).count();
    CAPTURE(latency_ms);
    CHECK(latency < 1s);
    CHECK(total.elapsed() < 5s);
}

TEST_CASE("threadsafe: 200 wake-ups in a row of a loop blocked with no timer: none lost",
          "[threadsafe]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr int rounds = 200;
    std::vector<clock_type::duration> latencies;  // loop thread only
    bool timed_out = false;
    bool gave_up = false;
    corio::run([](std::vector<clock_type::duration>& latencies, bool& timed_out,
                  bool& gave_up) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        corio::future<> finished = loop.create_future<>();
        std::atomic<int> acknowledged{-1};
        std::atomic<bool> abandon{false};
        std::atomic<bool> waker_gave_up{false};
        std::thread waker([&] {
            for (int round = 0; round < rounds; ++round) {
                // Give the loop time to go back to sleep in the reactor.
                std::this_thread::sleep_for(round % 4 == 0 ? 2ms : 200us);
                const auto called = clock_type::now();
                loop.call_soon_threadsafe([&, round, called] {
                    latencies.push_back(clock_type::now() - called);
                    acknowledged.store(round, std::memory_order_release);
                    if (round == rounds - 1) finished.set_result();
                });
                const auto deadline = clock_type::now() + 40s;
                while (acknowledged.load(std::memory_order_acquire) < round) {
                    if (abandon.load() || clock_type::now() > deadline) {
                        waker_gave_up = true;
                        return;
                    }
                    std::this_thread::sleep_for(50us);
                }
            }
        });
        try {
            // A lost wake-up shows as a round that waited for this watchdog.
            co_await corio::wait_for(finished, 30s);
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        abandon = true;
        waker.join();
        gave_up = waker_gave_up.load();
    }(latencies, timed_out, gave_up));
    CHECK_FALSE(timed_out);
    CHECK_FALSE(gave_up);
    CHECK(latencies.size() == static_cast<std::size_t>(rounds));
    clock_type::duration worst{};
    for (const auto& l : latencies) worst = std::max(worst, l);
    const double worst_ms = std::chrono::duration<double, std::milli>(worst).count();
    CAPTURE(worst_ms);
    CHECK(worst < 1s);
}

TEST_CASE("threadsafe: two loops on two threads ping-pong 20,000 times through "
          "call_soon_threadsafe",
          "[threadsafe]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr int rounds = 20'000;

    struct remote {
        corio::event_loop* loop;
        corio::future<>* stop;
    };
    std::promise<remote> b_ready;
    int b_count = 0;  // loop B's thread only, read after the join
    // call_soon_threadsafe still touches the target loop (to wake it) after the callback is
    // queued, so the callback may run before the call returns: a loop must outlive every call
    // made to it. B's loop waits until A's last call to it has returned; A joins B's thread,
    // and so B's last call to A, before its own loop goes.
    std::atomic<bool> a_done_calling_b{false};
    std::thread b_thread([&] {
        corio::run(
            [](std::promise<remote>& ready, std::atomic<bool>& a_done_calling_b) -> corio::coro<> {
                auto& loop = corio::get_running_loop();
                corio::future<> stop = loop.create_future<>();
                ready.set_value(remote{&loop, &stop});
                co_await stop;  // idle until loop A says so
                while (!a_done_calling_b.load(std::memory_order_acquire)) std::this_thread::yield();
            }(b_ready, a_done_calling_b));
    });

    int pongs = 0;
    bool timed_out = false;
    stopwatch watch;
    corio::run([](std::future<remote> b_future, std::thread& b_thread,
                  std::atomic<bool>& a_done_calling_b, int& b_count, int& pongs,
                  bool& timed_out) -> corio::coro<> {
        auto& a = corio::get_running_loop();
        const remote b = b_future.get();
        corio::future<> finished = a.create_future<>();
        std::function<void()> ping;
        ping = [&] {
            b.loop->call_soon_threadsafe([&] {
                ++b_count;                    // on B
                a.call_soon_threadsafe([&] {  // back on A
                    if (++pongs == rounds) {
                        finished.set_result();
                    } else {
                        ping();
                    }
                });
            });
        };
        ping();
        try {
            co_await corio::wait_for(finished, 60s);
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        // Done with B (or given up on it): let it finish.
        b.loop->call_soon_threadsafe([stop = b.stop] { stop->set_result(); });
        a_done_calling_b.store(true, std::memory_order_release);
        b_thread.join();
    }(b_ready.get_future(), b_thread, a_done_calling_b, b_count, pongs, timed_out));

    CHECK_FALSE(timed_out);
    CHECK(pongs == rounds);
    CHECK(b_count == rounds);
    CHECK(watch.elapsed() < 60s);
}

TEST_CASE("threadsafe: callbacks sent from another thread run even while the loop is busy "
          "with I/O-free tasks, and the wake-up is not lost when the loop is between polls",
          "[threadsafe]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr int calls = 20'000;
    int received = 0;
    bool timed_out = false;
    corio::run([](int& received, bool& timed_out) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        corio::future<> all = loop.create_future<>();
        std::atomic<bool> stop_spinning{false};
        // A task yielding continuously: the loop polls the reactor with a zero timeout.
        auto spinner = corio::create_task([](std::atomic<bool>& stop) -> corio::coro<> {
            while (!stop.load(std::memory_order_relaxed)) co_await corio::sleep(0s);
        }(stop_spinning));
        std::thread producer([&] {
            for (int i = 0; i < calls; ++i) {
                loop.call_soon_threadsafe([&] {
                    if (++received == calls / 2) stop_spinning = true;  // then idle: must wake
                    if (received == calls) all.set_result();
                });
                if (i % 1000 == 0) std::this_thread::sleep_for(1ms);
            }
        });
        try {
            co_await corio::wait_for(all, 60s);
        } catch (const corio::timeout_error&) {
            timed_out = true;
            stop_spinning = true;
        }
        co_await spinner;
        producer.join();
    }(received, timed_out));
    CHECK_FALSE(timed_out);
    CHECK(received == calls);
}

}  // namespace
