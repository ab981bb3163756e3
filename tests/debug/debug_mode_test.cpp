// Debug mode (run_options::debug, event_loop::set_debug, CORIO_DEBUG): slow callbacks and task
// steps, an exception never retrieved and a task destroyed while pending reported with the
// task's creation site, coroutines never awaited, loop methods called from the wrong thread, and
// CORIO_DEBUG turning debug mode and deadlock detection on. CTest runs it once per backend
// (CORIO_BACKEND).
#include <corio/event_loop.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/debug_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using corio_test::all_messages;
using corio_test::contains;
using corio_test::frame_leak_check;
using corio_test::install_quiet;
using corio_test::scoped_env;

namespace {

struct debug_sites {
    unsigned blocker = 0, doomed = 0, pending = 0, never_first = 0, never_last = 0;
} debug_lines;

corio::coro<> blocker() {
    debug_lines.blocker = __LINE__ + 1;
    co_await corio::sleep(0s);
    std::this_thread::sleep_for(200ms);  // a blocking call in a task: the loop stands still
}

corio::coro<> fail_soon() {
    co_await corio::sleep(0s);
    throw std::runtime_error("boom");
}

corio::coro<int> never_run() {
    debug_lines.never_last = __LINE__ + 1;
    co_return 1;
}

const std::string* find_message(const corio_test::exception_log& log, std::string_view part) {
    for (const auto& context : log.contexts()) {
        if (contains(context.message, part)) return &context.message;
    }
    return nullptr;
}

// "... took 0.201 seconds" -> 0.201
double seconds_in(const std::string& message) {
    const std::size_t took = message.rfind(" took ");
    if (took == std::string::npos) return -1;
    return std::stod(message.substr(took + 6));
}

corio::coro<> slow_program(corio_test::exception_log& log) {
    corio::event_loop& loop = corio::get_running_loop();
    log.install(loop);
    loop.call_soon([] { std::this_thread::sleep_for(200ms); });
    loop.call_soon([] {});  // a fast one
    co_await corio::sleep(0s);
    corio::task<> t = corio::create_task(blocker(), "blocker");
    co_await t;
}

TEST_CASE("debug mode: a 200 ms blocking callback and a slow task step are reported",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio_test::exception_log log;
    corio::run_options options;
    options.debug = true;
    corio::run(slow_program(log), options);
    INFO(all_messages(log));
    // (On a loaded machine other steps may be reported too: look for these two.)
    const std::string* callback = nullptr;
    for (const auto& context : log.contexts()) {
        if (context.message.starts_with("Executing a callback took ") &&
            seconds_in(context.message) >= 0.2) {
            callback = &context.message;
        }
    }
    REQUIRE(callback != nullptr);
    CHECK(callback->ends_with(" seconds"));

    // The task step names the task and where it resumed.
    const std::string* step = find_message(log, "Executing task 'blocker' (resumed at ");
    REQUIRE(step != nullptr);
    const std::string resumed_at =
        std::string("(resumed at ") + __FILE__ + ':' + std::to_string(debug_lines.blocker) + " in ";
    // clang 14 names the function "blocker", clang 16 and later with its namespace.
    CHECK((contains(*step, resumed_at + "blocker") ||
           contains(*step, resumed_at + "(anonymous namespace)::blocker(")));
    CHECK(seconds_in(*step) >= 0.2);
}

corio::coro<> threshold_program(corio_test::exception_log& log, bool expect_debug) {
    corio::event_loop& loop = corio::get_running_loop();
    log.install(loop);
    if (loop.get_debug() != expect_debug) throw std::logic_error("debug mode not as asked");
    CHECK(loop.get_slow_callback_duration() == std::chrono::milliseconds(100));
    loop.set_slow_callback_duration(10ms);
    CHECK(loop.get_slow_callback_duration() == std::chrono::milliseconds(10));
    loop.call_soon([] { std::this_thread::sleep_for(30ms); });
    co_await corio::sleep(0s);
    co_await corio::sleep(0s);
}

TEST_CASE("debug mode: the slow threshold is adjustable, and nothing is timed outside debug mode",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const scoped_env no_env("CORIO_DEBUG", nullptr);
    for (const bool debug : {true, false}) {
        corio_test::exception_log log;
        corio::run_options options;
        options.debug = debug;
        corio::run(threshold_program(log, debug), options);
        INFO("debug " << debug << ": " << all_messages(log));
        if (debug) {
            // The 30 ms callback is reported (other steps may be too, on a loaded machine).
            bool found = false;
            for (const auto& context : log.contexts()) {
                found = found || (context.message.starts_with("Executing a callback took ") &&
                                  seconds_in(context.message) >= 0.03);
            }
            CHECK(found);
        } else {
            CHECK(log.size() == 0);
        }
    }
}

corio::coro<> unretrieved_program(corio_test::exception_log& log) {
    install_quiet(log, corio::get_running_loop());
    debug_lines.doomed = __LINE__ + 1;
    (void)corio::create_task(fail_soon(), "doomed");  // the handle is dropped at once
    co_await corio_test::yield(3);
}

TEST_CASE("debug mode: an exception never retrieved is reported with the task's creation site",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const scoped_env no_env("CORIO_DEBUG", nullptr);
    for (const bool debug : {true, false}) {
        corio_test::exception_log log;
        corio::run_options options;
        options.debug = debug;
        corio::run(unretrieved_program(log), options);
        INFO("debug " << debug << ": " << all_messages(log));
        REQUIRE(log.size() == 1);
        const corio::exception_context& context = log.contexts()[0];
        CHECK(context.task_name == "doomed");
        CHECK(corio_test::what_of(context.exception) == "boom");
        if (debug) {
            CHECK(context.message ==
                  std::string("Task exception was never retrieved (created at ") + __FILE__ + ':' +
                      std::to_string(debug_lines.doomed) + ')');
        } else {
            // Outside debug mode the creation site is not kept.
            CHECK(context.message == "Task exception was never retrieved");
        }
    }
}

// A task still pending when its loop closes: three coroutines deep, asleep for an hour.
corio::coro<> inner() { co_await corio::sleep(1h); }
corio::coro<> middle() { co_await inner(); }
corio::coro<> outer() { co_await middle(); }

corio::coro<> short_nap() { co_await corio::sleep(1ms); }

TEST_CASE("debug mode: a task destroyed while pending is reported with its creation site",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio_test::exception_log log;
    corio::run_options options;
    options.debug = true;
    auto loop = corio::new_event_loop(options);
    install_quiet(log, *loop);
    debug_lines.pending = __LINE__ + 1;
    corio::task<> t = loop->create_task(outer(), "abandoned");
    loop->run_until_complete(short_nap());
    loop->close();  // the task never finished
    INFO(all_messages(log));
    REQUIRE(log.size() == 1);
    CHECK(log.contexts()[0].task_name == "abandoned");
    CHECK(log.contexts()[0].message ==
          std::string("Task was destroyed but it is pending! (created at ") + __FILE__ + ':' +
              std::to_string(debug_lines.pending) + ')');
    CHECK(t.cancelled());
}

corio::coro<> never_awaited_program(corio_test::exception_log& log) {
    install_quiet(log, corio::get_running_loop());
    {
        corio::coro<int> dropped = never_run();  // made, never awaited
    }
    const int awaited = co_await never_run();              // awaited: not reported
    corio::task<int> t = corio::create_task(never_run());  // a task's body: not reported
    const int from_task = co_await t;
    if (awaited + from_task != 2) throw std::logic_error("never_run returns 1");
}

TEST_CASE("debug mode: a coroutine never awaited is reported", "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const scoped_env no_env("CORIO_DEBUG", nullptr);
    for (const bool debug : {true, false}) {
        corio_test::exception_log log;
        corio::run_options options;
        options.debug = debug;
        corio::run(never_awaited_program(log), options);
        INFO("debug " << debug << ": " << all_messages(log));
        if (!debug) {
            CHECK(log.size() == 0);
            continue;
        }
        REQUIRE(log.size() == 1);
        const std::string& message = log.contexts()[0].message;
        // "coroutine <function> (<file>:<line>) was never awaited": g++ names the coroutine's
        // closing line, clang its first one.
        CHECK(message.starts_with("coroutine "));
        CHECK(contains(message, "never_run"));
        CHECK(message.ends_with(") was never awaited"));
        const std::size_t site = message.find(std::string(" (") + __FILE__ + ':');
        REQUIRE(site != std::string::npos);
        const unsigned line = static_cast<unsigned>(
            std::stoul(message.substr(site + 3 + std::string_view(__FILE__).size())));
        CHECK(line + 2 >= debug_lines.never_last);
        CHECK(line <= debug_lines.never_last + 1);
    }
}

corio::coro<int> one() { co_return 1; }

corio::coro<> wrong_thread_program(std::vector<std::string>& errors, bool& threadsafe_ran) {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> posted = loop.create_future<int>();
    std::thread intruder([&] {
        auto attempt = [&](const std::function<void()>& call) {
            try {
                call();
                errors.emplace_back("<no error>");
            } catch (const std::runtime_error& e) {
                errors.emplace_back(e.what());
            }
        };
        attempt([&] { loop.call_soon([] {}); });
        attempt([&] { loop.call_later(1s, [] {}); });
        attempt([&] { loop.call_at(loop.time(), [] {}); });
        attempt([&] { (void)loop.create_task(one()); });
        attempt([&] { (void)loop.create_future<int>(); });
        // The one thread-safe member works.
        loop.call_soon_threadsafe([posted]() mutable { posted.set_result(1); });
    });
    intruder.join();
    threadsafe_ran = co_await corio::wait_for(posted, 10s) == 1;
    // On the loop's own thread the same calls are fine.
    corio::callback_handle h = loop.call_soon([] {});
    (void)h;
    const int value = co_await loop.create_task(one());
    if (value != 1) throw std::logic_error("one() returns 1");
}

TEST_CASE("debug mode: loop methods called from another thread are refused",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    std::vector<std::string> errors;
    bool threadsafe_ran = false;
    corio::run_options options;
    options.debug = true;
    corio::run(wrong_thread_program(errors, threadsafe_ran), options);
    REQUIRE(errors.size() == 5);
    const char* const names[] = {"call_soon", "call_at", "call_at", "create_task", "create_future"};
    for (std::size_t i = 0; i < errors.size(); ++i) {
        INFO(errors[i]);
        CHECK(errors[i] == std::string("Non-thread-safe operation ") + names[i] +
                               " invoked on an event loop other than the current one");
    }
    CHECK(threadsafe_ran);
}

TEST_CASE("debug mode: CORIO_DEBUG=1 turns it on, and it turns deadlock detection on",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    {
        const scoped_env env("CORIO_DEBUG", "1");
        auto loop = corio::new_event_loop();
        CHECK(loop->get_debug());
        CHECK(loop->get_detect_deadlock());
    }
    {
        const scoped_env env("CORIO_DEBUG", "0");
        auto loop = corio::new_event_loop();
        CHECK_FALSE(loop->get_debug());
        CHECK_FALSE(loop->get_detect_deadlock());
    }
    {
        const scoped_env env("CORIO_DEBUG", nullptr);
        auto loop = corio::new_event_loop();
        CHECK_FALSE(loop->get_debug());
        loop->set_debug(true);
        CHECK(loop->get_debug());
        CHECK(loop->get_detect_deadlock());
        loop->set_detect_deadlock(false);  // an explicit choice afterwards wins
        CHECK_FALSE(loop->get_detect_deadlock());
        CHECK(loop->get_debug());
    }
}

}  // namespace
