// corio::run and new_event_loop (include/corio/run.hpp): results and exceptions of main,
// refusing to nest, the cancellation of leftover tasks, no leak, and the choice of backend.
#include <corio/run.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/future.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using corio_test::counted;
using corio_test::frame_leak_check;
using corio_test::recorder;

namespace {

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct not_a_std_exception {
    int code;
};

corio::coro<int> return_after_sleep(int v) {
    co_await corio::sleep(1ms);
    co_return v;
}

corio::coro<std::string> return_text() {
    co_await corio::sleep(0ms);
    co_return std::string(40, 's');
}

corio::coro<std::unique_ptr<int>> return_unique() {
    co_await corio::sleep(0ms);
    co_return std::make_unique<int>(3);
}

corio::coro<void> set_after_sleep(bool& flag) {
    co_await corio::sleep(1ms);
    flag = true;
}

corio::coro<counted> return_counted() {
    co_await corio::sleep(0ms);
    co_return counted{5};
}

TEST_CASE("run: returns main's value", "[run]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK(corio::run(return_after_sleep(17)) == 17);
    CHECK(corio::run(return_text()) == std::string(40, 's'));
    const std::unique_ptr<int> p = corio::run(return_unique());
    REQUIRE(p);
    CHECK(*p == 3);
    bool flag = false;
    corio::run(set_after_sleep(flag));
    CHECK(flag);
    CHECK_FALSE(corio::current_task());
    CHECK_THROWS_AS(corio::get_running_loop(), std::runtime_error);  // nothing left running
}

TEST_CASE("run: main's result is moved out, never copied", "[run]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    counted::reset();
    {
        const counted c = corio::run(return_counted());
        CHECK(c.value == 5);
    }
    CHECK(counted::copies() == 0);
    CHECK(counted::alive() == 0);
}

corio::coro<int> throw_after_sleep() {
    co_await corio::sleep(1ms);
    throw test_error("main failed");
    co_return 0;
}

corio::coro<void> throw_non_std() {
    co_await corio::sleep(0ms);
    throw not_a_std_exception{9};
}

corio::coro<void> throw_at_once() {
    throw std::logic_error("before any suspension");
    co_return;
}

TEST_CASE("run: rethrows main's exception with its type", "[run]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK_THROWS_AS(corio::run(throw_after_sleep()), test_error);
    CHECK_THROWS_WITH(corio::run(throw_after_sleep()), "main failed");
    try {
        corio::run(throw_non_std());
        FAIL("no exception");
    } catch (const not_a_std_exception& e) {
        CHECK(e.code == 9);
    }
    CHECK_THROWS_AS(corio::run(throw_at_once()), std::logic_error);
}

corio::coro<int> cancel_main() {
    corio::current_task().cancel("main cancelled");
    co_await corio::sleep(1h);
    co_return 0;
}

TEST_CASE("run: a cancelled main makes run throw cancelled_error", "[run]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    bool caught = false;
    try {
        (void)corio::run(cancel_main());
    } catch (const corio::cancelled_error& e) {
        caught = true;
        CHECK(std::string(e.what()) == "main cancelled");
    }
    CHECK(caught);
}

corio::coro<int> nested_main(recorder& rec) {
    co_await corio::sleep(0ms);
    try {
        (void)corio::run(return_after_sleep(1));
        rec("nested run allowed");
    } catch (const std::runtime_error&) {
        rec("nested run refused");
    }
    // The outer loop is unharmed.
    co_return co_await return_after_sleep(2);
}

TEST_CASE("run: refuses to run inside a running loop", "[run]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    CHECK(corio::run(nested_main(rec)) == 2);
    const std::vector<std::string> expected{"nested run refused"};
    CHECK(rec.events() == expected);
}

corio::coro<void> leftover_sleeper(recorder& rec) {
    corio_test::record_on_destroy cleanup(rec, "sleeper cleanup ran");
    try {
        co_await corio::sleep(1h);
        rec("sleeper woke up");
    } catch (const corio::cancelled_error&) {
        rec("sleeper observed cancelled_error");
        throw;
    }
}

corio::coro<void> leftover_with_async_cleanup(recorder& rec) {
    try {
        co_await corio::sleep(1h);
    } catch (const corio::cancelled_error&) {
        rec("async cleanup started");
    }
    co_await corio::sleep(1ms);  // cleanup that itself awaits
    rec("async cleanup finished");
}

corio::coro<void> leftover_waiter(corio::future<int> f, recorder& rec) {
    try {
        (void)co_await f;
    } catch (const corio::cancelled_error&) {
        rec("waiter observed cancelled_error");
        throw;
    }
}

corio::coro<int> leave_tasks_behind(recorder& rec, corio::task<>& sleeper_out) {
    sleeper_out = corio::create_task(leftover_sleeper(rec));
    corio::create_task(leftover_with_async_cleanup(rec));
    auto f = corio::get_running_loop().create_future<int>();
    corio::create_task(leftover_waiter(f, rec));
    co_await corio::sleep(1ms);  // all of them are suspended now
    rec("main returns");
    co_return 0;
}

TEST_CASE("run: tasks still pending when main returns are cancelled and finish", "[run]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    corio::task<> sleeper;
    corio_test::stopwatch watch;
    CHECK(corio::run(leave_tasks_behind(rec, sleeper)) == 0);
    CHECK(watch.elapsed() < 1s);
    CHECK(rec.events().front() == "main returns");
    CHECK(rec.contains("sleeper observed cancelled_error"));
    CHECK(rec.contains("sleeper cleanup ran"));
    CHECK(rec.contains("async cleanup started"));
    CHECK(rec.contains("async cleanup finished"));
    CHECK(rec.contains("waiter observed cancelled_error"));
    CHECK_FALSE(rec.contains("sleeper woke up"));
    REQUIRE(sleeper);
    CHECK(sleeper.done());
    CHECK(sleeper.cancelled());
}

corio::coro<void> fail_with_leftovers(recorder& rec) {
    corio::create_task(leftover_sleeper(rec));
    co_await corio::sleep(1ms);
    throw test_error("main failed with tasks pending");
}

TEST_CASE("run: leftover tasks are cancelled when main throws, too", "[run]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    recorder rec;
    CHECK_THROWS_AS(corio::run(fail_with_leftovers(rec)), test_error);
    CHECK(rec.contains("sleeper observed cancelled_error"));
    CHECK(rec.contains("sleeper cleanup ran"));
}

corio::coro<void> many_frames(counted c) {
    (void)c;
    co_await corio::sleep(1h);
}

corio::coro<void> spawn_many() {
    for (int i = 0; i < 1000; ++i) corio::create_task(many_frames(counted{i}));
    co_await corio::sleep(0ms);
}

TEST_CASE("run: no frame, task state or callback outlives run", "[run]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    counted::reset();
    corio::run(spawn_many());
    CHECK(counted::alive() == 0);
    CHECK(counted::copies() == 0);
}

corio::coro<std::string> backend_name_in_loop() {
    co_return std::string(corio::get_running_loop().backend_name());
}

TEST_CASE("run: run_options.backend picks epoll", "[run][backend]") {
    frame_leak_check leaks;
    CHECK(corio::run(backend_name_in_loop(), {.backend = corio::backend::epoll}) == "epoll");
    auto loop = corio::new_event_loop({.backend = corio::backend::epoll});
    CHECK(loop->backend_name() == "epoll");
}

TEST_CASE("run: run_options.backend picks io_uring, or refuses with std::system_error",
          "[run][backend]") {
    frame_leak_check leaks;
    try {
        const std::string name =
            corio::run(backend_name_in_loop(), {.backend = corio::backend::io_uring});
        CHECK(name == "io_uring");
    } catch (const std::system_error& e) {
        // The documented outcome where the kernel (or the build) has no io_uring: never a
        // silent fallback to epoll.
        WARN("io_uring refused: " << e.what());
        CHECK(e.code().value() != 0);
        CHECK_THROWS_AS(corio::new_event_loop({.backend = corio::backend::io_uring}),
                        std::system_error);
    }
}

TEST_CASE("run: the automatic backend is one of the two, as CORIO_BACKEND says when set",
          "[run][backend]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::string name = corio::run(backend_name_in_loop());
    CHECK((name == "epoll" || name == "io_uring"));
    const std::string_view env = corio_test::backend_from_env();
    if (env == "epoll" || env == "io_uring") CHECK(name == env);
}

}  // namespace
