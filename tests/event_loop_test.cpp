// corio::event_loop (include/corio/event_loop.hpp): callbacks and timers, the clock,
// thread-safe submission, running and stopping, closing, the exception handler, the backend,
// and the guarantee that a busy loop still polls timers and I/O.
#include <corio/event_loop.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using corio_test::counted;
using corio_test::exception_log;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// --- call_soon ----------------------------------------------------------------------------

TEST_CASE("event_loop: call_soon runs callbacks in FIFO order", "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    auto loop = corio::new_event_loop();
    loop->call_soon([&rec] { rec("1"); });
    loop->call_soon([&rec](const std::string& s, int n) { rec(s + std::to_string(n)); },
                    std::string("arg "), 2);
    loop->call_soon([&rec, &loop] {
        rec("3");
        // Scheduled while running: after everything already queued.
        loop->call_soon([&rec] { rec("5"); });
    });
    loop->call_soon([&rec] { rec("4"); });
    loop->call_later(50ms, [&loop] { loop->stop(); });
    loop->run_forever();
    const std::vector<std::string> expected{"1", "arg 2", "3", "4", "5"};
    CHECK(rec.events() == expected);
}

TEST_CASE("event_loop: a cancelled call_soon handle never runs", "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    auto loop = corio::new_event_loop();
    loop->call_soon([&rec] { rec("kept 1"); });
    corio::callback_handle h = loop->call_soon([&rec] { rec("cancelled"); });
    corio::callback_handle later_cancelled;
    loop->call_soon([&rec, &later_cancelled] {
        rec("kept 2");
        later_cancelled.cancel();  // cancelled by an earlier callback of the same batch
    });
    later_cancelled = loop->call_soon([&rec] { rec("cancelled by a callback"); });
    CHECK(h);
    CHECK_FALSE(h.cancelled());
    h.cancel();
    CHECK(h.cancelled());
    h.cancel();  // idempotent
    loop->call_soon([&loop] { loop->stop(); });
    loop->run_forever();
    const std::vector<std::string> expected{"kept 1", "kept 2"};
    CHECK(rec.events() == expected);
}

// --- timers -------------------------------------------------------------------------------

TEST_CASE("event_loop: call_later and call_at fire in order of time; cancelled ones never",
          "[event_loop][timers]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    auto loop = corio::new_event_loop();
    const auto start = loop->time();
    std::vector<corio::event_loop::time_point> fired_at;
    loop->call_later(30ms, [&] {
        rec("30 ms");
        fired_at.push_back(loop->time());
    });
    loop->call_later(10ms, [&] {
        rec("10 ms");
        fired_at.push_back(loop->time());
    });
    const corio::timer_handle at = loop->call_at(start + 20ms, [&] {
        rec("20 ms (call_at)");
        fired_at.push_back(loop->time());
    });
    CHECK(at.when() == start + 20ms);
    corio::timer_handle cancelled = loop->call_later(15ms, [&rec] { rec("cancelled"); });
    CHECK(cancelled.when() >= start + 15ms);
    cancelled.cancel();
    CHECK(cancelled.cancelled());
    loop->call_later(0ms, [&rec] { rec("0 ms"); });
    loop->call_at(start - 1s, [&rec] { rec("in the past"); });
    loop->call_later(40ms, [&loop] { loop->stop(); });
    loop->run_forever();

    const std::vector<std::string> expected{"in the past", "0 ms", "10 ms", "20 ms (call_at)",
                                            "30 ms"};
    CHECK(rec.events() == expected);
    REQUIRE(fired_at.size() == 3);
    // Never early.
    CHECK(fired_at[0] >= start + 10ms);
    CHECK(fired_at[1] >= start + 20ms);
    CHECK(fired_at[2] >= start + 30ms);
    CHECK(loop->time() - start < 2s);
}

TEST_CASE("event_loop: a timer cancelled by an earlier timer of the same iteration never runs",
          "[event_loop][timers]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    auto loop = corio::new_event_loop();
    const auto when = loop->time() + 5ms;
    corio::timer_handle second;
    loop->call_at(when - 1ms, [&] {
        rec("first");
        second.cancel();
    });
    second = loop->call_at(when, [&rec] { rec("second"); });
    // Block the loop's thread past both deadlines, so that both fire in one iteration.
    loop->call_soon([] { std::this_thread::sleep_for(10ms); });
    loop->call_later(30ms, [&loop] { loop->stop(); });
    loop->run_forever();
    const std::vector<std::string> expected{"first"};
    CHECK(rec.events() == expected);
}

TEST_CASE("event_loop: time() is monotonic and follows the steady clock", "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    auto loop = corio::new_event_loop();
    std::vector<corio::event_loop::time_point> seen;
    // A chain of callbacks reading the clock as the loop runs them.
    struct read_clock {
        corio::event_loop* loop;
        std::vector<corio::event_loop::time_point>* seen;
        void operator()() const {
            seen->push_back(loop->time());
            if (seen->size() < 1000) loop->call_soon(*this);
        }
    };
    const auto start = loop->time();
    const auto steady_start = std::chrono::steady_clock::now();
    loop->call_soon(read_clock{loop.get(), &seen});
    corio::event_loop::time_point timer_time{};
    loop->call_later(5ms, [&] {
        timer_time = loop->time();
        loop->stop();
    });
    loop->run_forever();
    const auto steady_elapsed = std::chrono::steady_clock::now() - steady_start;
    REQUIRE_FALSE(seen.empty());
    bool monotonic = seen.front() >= start;
    for (std::size_t i = 1; i < seen.size(); ++i) {
        if (seen[i] < seen[i - 1]) monotonic = false;
    }
    CHECK(monotonic);
    CHECK(timer_time - start >= 5ms);
    CHECK(loop->time() - start >= 5ms);
    // The loop's clock advances as the steady clock does.
    CHECK(loop->time() - start >= steady_elapsed - 1ms);
}

// --- call_soon_threadsafe -----------------------------------------------------------------

TEST_CASE("event_loop: call_soon_threadsafe from 4 threads x 10,000 calls loses none",
          "[event_loop][threads]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr int threads = 4;
    constexpr int calls = 10'000;
    auto loop = corio::new_event_loop();
    int received = 0;  // touched on the loop's thread only
    std::vector<int> per_thread(threads, 0);
    std::vector<int> last_seen(threads, -1);
    bool in_order = true;
    loop->call_later(10s, [&loop] { loop->stop(); });  // a watchdog, should it hang
    std::vector<std::thread> producers;
    for (int t = 0; t < threads; ++t) {
        producers.emplace_back([&, t] {
            for (int i = 0; i < calls; ++i) {
                loop->call_soon_threadsafe([&, t, i] {
                    ++per_thread[static_cast<std::size_t>(t)];
                    // Calls from one thread keep their order.
                    if (i != last_seen[static_cast<std::size_t>(t)] + 1) in_order = false;
                    last_seen[static_cast<std::size_t>(t)] = i;
                    if (++received == threads * calls) loop->stop();
                });
            }
        });
    }
    corio_test::stopwatch watch;
    loop->run_forever();
    for (auto& p : producers) p.join();
    CHECK(received == threads * calls);
    for (int t = 0; t < threads; ++t) CHECK(per_thread[static_cast<std::size_t>(t)] == calls);
    CHECK(in_order);
    CHECK(watch.elapsed() < 10s);
}

TEST_CASE("event_loop: call_soon_threadsafe wakes a loop blocked waiting",
          "[event_loop][threads]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    auto loop = corio::new_event_loop();
    recorder rec;
    corio_test::stopwatch watch;
    // Nothing ready, no timer: the loop blocks in the reactor until woken.
    std::thread waker([&loop, &rec] {
        std::this_thread::sleep_for(50ms);
        loop->call_soon_threadsafe([&loop, &rec] {
            rec("woken");
            loop->stop();
        });
    });
    loop->run_forever();
    const auto elapsed = watch.elapsed();
    waker.join();
    const std::vector<std::string> expected{"woken"};
    CHECK(rec.events() == expected);
    CHECK(elapsed >= 50ms);
    CHECK(elapsed < 2s);

    // And again, waiting for a timer far away this time.
    loop->call_later(1h, [] {});
    std::thread again([&loop] {
        std::this_thread::sleep_for(20ms);
        loop->call_soon_threadsafe([&loop] { loop->stop(); });
    });
    corio_test::stopwatch second;
    loop->run_forever();
    again.join();
    CHECK(second.elapsed() < 2s);
}

// --- running, stopping, closing -----------------------------------------------------------

TEST_CASE("event_loop: stop() ends run_forever after the current batch; it can run again",
          "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    auto loop = corio::new_event_loop();
    CHECK_FALSE(loop->is_running());
    loop->call_soon([&] {
        rec(loop->is_running() ? "a (running)" : "a (not running)");
        loop->call_soon([&rec] { rec("scheduled during the stopping batch"); });
    });
    loop->call_soon([&loop] { loop->stop(); });
    loop->call_soon([&rec] { rec("b, same batch as stop"); });
    loop->run_forever();
    CHECK_FALSE(loop->is_running());
    const std::vector<std::string> first{"a (running)", "b, same batch as stop"};
    CHECK(rec.events() == first);

    loop->call_soon([&loop] { loop->stop(); });
    loop->run_forever();
    const std::vector<std::string> second{"a (running)", "b, same batch as stop",
                                          "scheduled during the stopping batch"};
    CHECK(rec.events() == second);
    CHECK_FALSE(loop->is_closed());
    loop->close();
    CHECK(loop->is_closed());
}

TEST_CASE("event_loop: stop() before run_forever runs one iteration, as asyncio does",
          "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    auto loop = corio::new_event_loop();
    loop->call_soon([&rec] { rec("already scheduled"); });
    loop->stop();
    loop->run_forever();
    const std::vector<std::string> expected{"already scheduled"};
    CHECK(rec.events() == expected);
    CHECK_FALSE(loop->is_running());
}

corio::coro<int> add_after_sleep(int a, int b) {
    co_await corio::sleep(1ms);
    co_return a + b;
}

corio::coro<int> fail_after_sleep() {
    co_await corio::sleep(1ms);
    throw test_error("from run_until_complete");
    co_return 0;
}

corio::coro<void> stop_loop_then_sleep() {
    corio::get_running_loop().stop();
    co_await corio::sleep(1h);
}

TEST_CASE("event_loop: run_until_complete returns the result or rethrows", "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    auto loop = corio::new_event_loop();
    CHECK(loop->run_until_complete(add_after_sleep(2, 3)) == 5);
    CHECK_FALSE(loop->is_running());
    CHECK_THROWS_AS(loop->run_until_complete(fail_after_sleep()), test_error);

    // A task made before the loop runs.
    corio::task<int> t = loop->create_task(add_after_sleep(4, 4));
    CHECK(loop->run_until_complete(t) == 8);
    CHECK(t.result() == 8);

    // The loop stopped before the task finished: asyncio's RuntimeError.
    corio::task<> stopper = loop->create_task(stop_loop_then_sleep());
    CHECK_THROWS_AS(loop->run_until_complete(stopper), std::runtime_error);
    CHECK_FALSE(stopper.done());
    loop->close();
    CHECK(stopper.cancelled());
}

TEST_CASE("event_loop: is_running and get_running_loop inside and outside the loop",
          "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK_THROWS_AS(corio::get_running_loop(), std::runtime_error);
    auto loop = corio::new_event_loop();
    CHECK_THROWS_AS(corio::get_running_loop(), std::runtime_error);  // made, not running
    bool running_inside = false;
    corio::event_loop* seen = nullptr;
    loop->call_soon([&] {
        running_inside = loop->is_running();
        seen = &corio::get_running_loop();
        loop->stop();
    });
    loop->run_forever();
    CHECK(running_inside);
    CHECK(seen == loop.get());
    CHECK_FALSE(loop->is_running());
    CHECK_THROWS_AS(corio::get_running_loop(), std::runtime_error);
}

TEST_CASE("event_loop: close() is refused while running, and closes for good", "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    auto loop = corio::new_event_loop();
    bool refused = false;
    bool still_open = false;
    loop->call_soon([&] {
        try {
            loop->close();
        } catch (const std::runtime_error&) {
            refused = true;
        }
        still_open = !loop->is_closed();
        loop->stop();
    });
    loop->run_forever();
    CHECK(refused);
    CHECK(still_open);

    loop->close();
    CHECK(loop->is_closed());
    CHECK_NOTHROW(loop->close());  // idempotent
    CHECK_THROWS_AS(loop->call_soon([] {}), std::runtime_error);
    CHECK_THROWS_AS(loop->call_later(1ms, [] {}), std::runtime_error);
    CHECK_THROWS_AS(loop->call_at(loop->time(), [] {}), std::runtime_error);
    CHECK_THROWS_AS(loop->create_future<int>(), std::runtime_error);
    CHECK_THROWS_AS(loop->create_task(add_after_sleep(1, 1)), std::runtime_error);
    CHECK_THROWS_AS(loop->run_forever(), std::runtime_error);
    CHECK_THROWS_AS(loop->run_until_complete(add_after_sleep(1, 1)), std::runtime_error);
}

corio::coro<void> sleep_forever_in_frame(counted c, recorder& rec, std::string name) {
    corio_test::record_on_destroy guard(rec, name + " frame destroyed");
    (void)c;
    co_await corio::sleep(1h);
    rec(name + " woke up");
}

corio::coro<void> wait_in_frame(corio::future<int> f, recorder& rec) {
    corio_test::record_on_destroy guard(rec, "waiter frame destroyed");
    (void)co_await f;
    rec("waiter got a value");
}

corio::coro<void> nested_sleeper(recorder& rec, int level) {
    corio_test::record_on_destroy guard(rec,
                                        "nested level " + std::to_string(level) + " destroyed");
    if (level == 0) {
        co_await corio::sleep(1h);
    } else {
        co_await nested_sleeper(rec, level - 1);
    }
}

corio::coro<void> yield_once() { co_await corio::sleep(0ms); }

TEST_CASE("event_loop: close() destroys pending tasks' frames and marks them cancelled",
          "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    counted::reset();
    recorder rec;
    {
        auto loop = corio::new_event_loop();
        auto f = loop->create_future<int>();
        corio::task<> sleeping =
            loop->create_task(sleep_forever_in_frame(counted{1}, rec, "sleeper"));
        corio::task<> waiting = loop->create_task(wait_in_frame(f, rec));
        corio::task<> deep = loop->create_task(nested_sleeper(rec, 2));
        loop->call_later(1h, [&rec] { rec("timer fired"); });
        loop->run_until_complete(yield_once());  // every task has started and suspended
        corio::task<> unstarted =
            loop->create_task(sleep_forever_in_frame(counted{2}, rec, "unstarted"));
        loop->call_soon([&rec] { rec("callback ran"); });
        CHECK(counted::alive() == 2);

        loop->close();
        for (const corio::task<>* t : {&sleeping, &waiting, &deep, &unstarted}) {
            CHECK(t->done());
            CHECK(t->cancelled());
            CHECK_THROWS_AS(t->result(), corio::cancelled_error);
        }
        CHECK(counted::alive() == 0);
        CHECK_FALSE(f.done());
    }
    CHECK(rec.contains("sleeper frame destroyed"));
    CHECK(rec.contains("waiter frame destroyed"));
    CHECK(rec.contains("nested level 0 destroyed"));
    CHECK(rec.contains("nested level 2 destroyed"));
    CHECK_FALSE(rec.contains("unstarted frame destroyed"));  // its body never started
    CHECK_FALSE(rec.contains("timer fired"));
    CHECK_FALSE(rec.contains("callback ran"));
    CHECK_FALSE(rec.contains("sleeper woke up"));
    CHECK_FALSE(rec.contains("waiter got a value"));
    CHECK(counted::alive() == 0);
}

TEST_CASE("event_loop: destroying a loop without close() frees everything too", "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    counted::reset();
    recorder rec;
    {
        auto loop = corio::new_event_loop();
        (void)loop->create_task(sleep_forever_in_frame(counted{1}, rec, "sleeper"));
        loop->run_until_complete(yield_once());
        (void)loop->create_task(sleep_forever_in_frame(counted{2}, rec, "unstarted"));
    }
    CHECK(counted::alive() == 0);
    CHECK(rec.contains("sleeper frame destroyed"));
}

// --- errors -------------------------------------------------------------------------------

TEST_CASE("event_loop: an exception escaping a callback goes to the handler; the loop runs on",
          "[event_loop][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    exception_log log;
    auto loop = corio::new_event_loop();
    log.install(*loop);
    loop->call_soon([] { throw test_error("from call_soon"); });
    loop->call_soon([&rec] { rec("next callback ran"); });
    loop->call_later(1ms, [] { throw test_error("from call_later"); });
    loop->call_later(5ms, [&rec, &loop] {
        rec("later timer ran");
        loop->stop();
    });
    loop->run_forever();
    const std::vector<std::string> expected{"next callback ran", "later timer ran"};
    CHECK(rec.events() == expected);
    REQUIRE(log.size() == 2);
    CHECK(corio_test::holds<test_error>(log.contexts()[0].exception));
    CHECK(corio_test::what_of(log.contexts()[0].exception) == "from call_soon");
    CHECK_FALSE(log.contexts()[0].message.empty());
    CHECK(corio_test::what_of(log.contexts()[1].exception) == "from call_later");
    CHECK(loop->get_exception_handler());
    loop->set_exception_handler({});
    CHECK_FALSE(loop->get_exception_handler());
}

// --- backend ------------------------------------------------------------------------------

corio::coro<std::string> backend_of_running_loop() {
    co_return std::string(corio::get_running_loop().backend_name());
}

TEST_CASE("event_loop: backend_name() is the backend CORIO_BACKEND asks for", "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    auto loop = corio::new_event_loop();
    const std::string name(loop->backend_name());
    CHECK((name == "epoll" || name == "io_uring"));
    const std::string_view env = corio_test::backend_from_env();
    if (env == "epoll" || env == "io_uring") {
        CHECK(name == env);
        CHECK(corio::run(backend_of_running_loop()) == env);
    } else {
        WARN("CORIO_BACKEND is not set: the automatic choice was " << name);
    }
}

TEST_CASE("event_loop: a loop cannot run inside another running loop", "[event_loop]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    auto outer = corio::new_event_loop();
    auto inner = corio::new_event_loop();
    bool refused = false;
    outer->call_soon([&] {
        try {
            inner->run_forever();
        } catch (const std::runtime_error&) {
            refused = true;
        }
        outer->stop();
    });
    outer->run_forever();
    CHECK(refused);
    CHECK_FALSE(inner->is_running());
}

// --- fairness: a busy loop still polls timers and I/O -------------------------------------

corio::coro<void> spin_forever(long& turns) {
    for (;;) {
        ++turns;
        co_await corio::sleep(0s);
    }
}

corio::coro<void> not_starved_main(recorder& rec, long& turns) {
    auto& loop = corio::get_running_loop();
    auto a = corio::create_task(spin_forever(turns));
    auto b = corio::create_task(spin_forever(turns));
    co_await corio::sleep(0ms);  // both spinning now

    const auto start = loop.time();
    auto timer_fired = loop.create_future<corio::event_loop::duration>();
    loop.call_later(10ms, [timer_fired, start, &loop]() mutable {
        timer_fired.set_result(loop.time() - start);
    });
    auto woken = loop.create_future<corio::event_loop::duration>();
    // Handles are not thread-safe: the other thread only passes a pointer on, and the
    // callback uses it on the loop's thread.
    corio::future<corio::event_loop::duration>* woken_ptr = &woken;
    std::thread other([&loop, woken_ptr, start] {
        std::this_thread::sleep_for(5ms);
        loop.call_soon_threadsafe(
            [&loop, woken_ptr, start] { woken_ptr->set_result(loop.time() - start); });
    });
    const auto timer_latency = co_await timer_fired;
    const auto wake_latency = co_await woken;
    other.join();
    rec("timer and wake-up both arrived");
    CHECK(timer_latency >= 10ms);
    CHECK(timer_latency < 500ms);
    CHECK(wake_latency >= 5ms);
    CHECK(wake_latency < 500ms);

    a.cancel();
    b.cancel();
    try {
        co_await a;
    } catch (const corio::cancelled_error&) {
        rec("spinner a cancelled");
    }
    try {
        co_await b;
    } catch (const corio::cancelled_error&) {
        rec("spinner b cancelled");
    }
}

TEST_CASE("event_loop: tasks yielding forever do not starve timers or threadsafe calls",
          "[event_loop][fairness]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    long turns = 0;
    corio::run(not_starved_main(rec, turns));
    const std::vector<std::string> expected{"timer and wake-up both arrived", "spinner a cancelled",
                                            "spinner b cancelled"};
    CHECK(rec.events() == expected);
    CHECK(turns > 10);  // the spinners really did keep the loop busy
}

TEST_CASE("event_loop: the loop polls at least every poll_interval ready callbacks",
          "[event_loop][fairness]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    auto loop = corio::new_event_loop();
    unsigned chain = 0;
    unsigned chain_at_timer = 0;
    unsigned chain_at_threadsafe = 0;
    // A callback that always schedules itself again keeps the ready queue non-empty.
    struct self_rescheduling {
        corio::event_loop* loop;
        unsigned* count;
        bool* done;
        void operator()() const {
            ++*count;
            if (!*done) loop->call_soon(*this);
        }
    };
    bool done = false;
    loop->call_soon(self_rescheduling{loop.get(), &chain, &done});
    loop->call_later(0ms, [&] { chain_at_timer = chain; });
    loop->call_soon_threadsafe([&] { chain_at_threadsafe = chain; });
    loop->call_later(20ms, [&] {
        done = true;
        loop->stop();
    });
    loop->run_forever();
    INFO("poll_interval = " << corio::event_loop::poll_interval);
    // The first poll comes after at most poll_interval callbacks; what it makes ready runs
    // after the one chain callback queued at that moment.
    CHECK(chain_at_timer >= 1);
    CHECK(chain_at_timer <= corio::event_loop::poll_interval + 1);
    CHECK(chain_at_threadsafe >= 1);
    CHECK(chain_at_threadsafe <= corio::event_loop::poll_interval + 1);
    CHECK(chain > corio::event_loop::poll_interval);
}

}  // namespace
