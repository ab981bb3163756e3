// Virtual time (include/corio/debug/virtual_time.hpp, run_options::virtual_time): wait_for with
// a one-hour timeout in microseconds, the order and the virtual times of events, executor jobs
// holding time still, corio::advance, and switching it on and off. CTest runs it once per
// backend (CORIO_BACKEND).
#include <corio/debug/virtual_time.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/event_loop.hpp>
#include <corio/executor.hpp>
#include <corio/gather.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;

namespace {

corio::coro<int> answer_after(std::chrono::minutes delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

using events = std::vector<std::pair<std::string, corio::event_loop::duration>>;

corio::coro<> sleep_and_record(std::string name, corio::event_loop::duration delay,
                               corio::event_loop::time_point start, events& log) {
    co_await corio::sleep(delay);
    log.emplace_back(std::move(name), corio::get_running_loop().time() - start);
}

corio::coro<> virtual_wait_for_program(events& log) {
    corio::event_loop& loop = corio::get_running_loop();
    if (!loop.get_virtual_time()) throw std::logic_error("not on virtual time");
    const auto start = loop.time();

    // Within the hour: the result, 59 minutes later.
    const int value = co_await corio::wait_for(answer_after(59min, 42), 1h);
    log.emplace_back("answer " + std::to_string(value), loop.time() - start);

    // Past the hour: timeout_error, exactly one hour later.
    const auto before = loop.time();
    try {
        (void)co_await corio::wait_for(answer_after(120min, 0), 1h);
        log.emplace_back("no timeout", loop.time() - before);
    } catch (const corio::timeout_error&) {
        log.emplace_back("timeout", loop.time() - before);
    }

    // Sleeps of different lengths, started together, end in the order of their lengths.
    const auto now = loop.time();
    std::vector<corio::task<>> sleepers;
    sleepers.push_back(corio::create_task(sleep_and_record("30 min", 30min, now, log)));
    sleepers.push_back(corio::create_task(sleep_and_record("10 s", 10s, now, log)));
    sleepers.push_back(corio::create_task(sleep_and_record("1 h", 1h, now, log)));
    sleepers.push_back(corio::create_task(sleep_and_record("250 ms", 250ms, now, log)));
    co_await corio::wait_for(corio::gather(sleepers), 2h);

    // One task's own sleeps move the clock by exactly what they slept.
    const auto t0 = loop.time();
    co_await corio::sleep(1s);
    log.emplace_back("slept 1 s", loop.time() - t0);
    co_await corio::sleep(1h);
    log.emplace_back("slept 1 h more", loop.time() - t0);
    co_await corio::sleep(1ns);
    log.emplace_back("slept 1 ns more", loop.time() - t0);
}

TEST_CASE("virtual time: wait_for with a one-hour timeout takes no real time, events in order",
          "[debug][virtual_time]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    events log;
    corio::run_options options;
    options.virtual_time = true;
    const corio_test::stopwatch watch;
    corio::run(virtual_wait_for_program(log), options);
    CHECK(watch.elapsed() < 1s);

    const events expected = {
        {"answer 42", 59min},
        {"timeout", 1h},
        {"250 ms", 250ms},
        {"10 s", 10s},
        {"30 min", 30min},
        {"1 h", 1h},
        {"slept 1 s", 1s},
        {"slept 1 h more", 1h + 1s},
        {"slept 1 ns more", 1h + 1s + 1ns},
    };
    REQUIRE(log.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("event " << i << ": " << log[i].first);
        CHECK(log[i].first == expected[i].first);
        CHECK(log[i].second == expected[i].second);
    }
}

corio::coro<> executor_holds_time(events& log) {
    corio::event_loop& loop = corio::get_running_loop();
    const auto start = loop.time();
    corio::task<> timer = corio::create_task(sleep_and_record("timer 1 ms", 1ms, start, log));
    const int value = co_await corio::to_thread([] {
        std::this_thread::sleep_for(50ms);
        return 5;
    });
    log.emplace_back("job " + std::to_string(value), loop.time() - start);
    co_await timer;
}

TEST_CASE("virtual time: time stands still while an executor job runs", "[debug][virtual_time]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    events log;
    corio::run_options options;
    options.virtual_time = true;
    corio::run(executor_holds_time(log), options);
    // The job takes 50 ms of real time; the 1 ms timer does not jump ahead of it.
    REQUIRE(log.size() == 2);
    CHECK(log[0].first == "job 5");
    CHECK(log[0].second == corio::event_loop::duration::zero());
    CHECK(log[1].first == "timer 1 ms");
    CHECK(log[1].second == 1ms);
}

corio::coro<> advance_program(events& log) {
    corio::event_loop& loop = corio::get_running_loop();
    const auto start = loop.time();
    std::vector<corio::task<>> sleepers;
    for (const auto delay : {5s, 7s, 9s, 8s}) {
        sleepers.push_back(corio::create_task(
            sleep_and_record(std::to_string(delay.count()) + " s", delay, start, log)));
    }
    corio::task<> hour = corio::create_task(sleep_and_record("1 h", 1h, start, log));
    co_await corio::sleep(0s);  // they start, and their timers are set

    co_await corio::advance(3s);
    log.emplace_back("advanced to 3 s", loop.time() - start);
    co_await corio::advance(2s);  // the 5 s timer is due
    log.emplace_back("advanced to 5 s", loop.time() - start);
    co_await corio::advance(2s);  // the 7 s timer
    log.emplace_back("advanced to 7 s", loop.time() - start);
    co_await corio::advance(3s);  // both the 8 s and the 9 s timers, in their order
    log.emplace_back("advanced to 10 s", loop.time() - start);
    co_await corio::advance(0s);
    log.emplace_back("advanced 0 s", loop.time() - start);
    if (hour.done()) throw std::logic_error("the 1 h timer fired early");
    hour.cancel();
    co_await corio::gather(sleepers);

    // advance refuses to go back in time.
    try {
        co_await corio::advance(-1s);
        log.emplace_back("went back", loop.time() - start);
    } catch (const std::invalid_argument&) {
        log.emplace_back("refused -1 s", loop.time() - start);
    }
}

TEST_CASE("virtual time: advance(d) moves the clock and fires the timers due",
          "[debug][virtual_time]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    events log;
    corio::run_options options;
    options.virtual_time = true;
    corio::run(advance_program(log), options);
    // A timer fires at the virtual time advance() moved to, and its task runs before advance()
    // returns.
    const events expected = {
        {"advanced to 3 s", 3s},
        {"5 s", 5s},
        {"advanced to 5 s", 5s},
        {"7 s", 7s},
        {"advanced to 7 s", 7s},
        {"8 s", 10s},
        {"9 s", 10s},
        {"advanced to 10 s", 10s},
        {"advanced 0 s", 10s},
        {"refused -1 s", 10s},
    };
    INFO(log.size() << " events");
    for (std::size_t i = 0; i < std::min(log.size(), expected.size()); ++i) {
        INFO("event " << i << ": " << log[i].first);
        CHECK(log[i].first == expected[i].first);
        CHECK(log[i].second == expected[i].second);
    }
    CHECK(log.size() == expected.size());
}

corio::coro<> advance_on_real_time(bool& refused) {
    try {
        co_await corio::advance(1s);
    } catch (const std::logic_error&) {
        refused = true;
    }
}

TEST_CASE("virtual time: switching it on and off, and advance on a real clock",
          "[debug][virtual_time]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    bool refused = false;
    corio_test::run_test(advance_on_real_time(refused));
    CHECK(refused);

    corio::run_options options;
    options.virtual_time = true;
    auto loop = corio::new_event_loop(options);
    CHECK(loop->get_virtual_time());
    // The virtual clock stands still outside the loop too.
    const auto t0 = loop->time();
    std::this_thread::sleep_for(2ms);
    CHECK(loop->time() == t0);
    loop->advance_time(90min);
    CHECK(loop->time() - t0 == 90min);
    CHECK_THROWS_AS(loop->advance_time(-1ns), std::invalid_argument);

    // Not while timers are pending, nor while the loop runs.
    corio::timer_handle pending = loop->call_later(1s, [] {});
    CHECK_THROWS_AS(loop->set_virtual_time(false), std::logic_error);
    pending.cancel();
    bool refused_running = false;
    loop->run_until_complete([](bool& flag) -> corio::coro<> {
        try {
            corio::get_running_loop().set_virtual_time(false);
        } catch (const std::logic_error&) {
            flag = true;
        }
        co_return;
    }(refused_running));
    CHECK(refused_running);
    loop->set_virtual_time(false);
    CHECK_FALSE(loop->get_virtual_time());
    CHECK_THROWS_AS(loop->advance_time(1s), std::logic_error);
    loop->close();
}

}  // namespace
