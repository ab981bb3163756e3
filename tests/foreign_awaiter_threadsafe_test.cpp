// Another library's awaiter resumed from other threads (include/corio/impl/foreign_awaiter.hpp):
// the awaiter gets a waker's handle, whose resumption from a foreign thread goes through the
// loop's thread-safe queue, so the coroutine always continues on the loop's thread, as its task.
// Many at once, awaited plainly, inside wait_for, gather and race; and in debug mode, where a
// task waiting for a thread is no deadlock. The name holds "threadsafe": CI also runs it under
// ThreadSanitizer (`ctest -R threadsafe`). CTest runs it once per backend (CORIO_BACKEND).
#include <corio/impl/foreign_awaiter.hpp>

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/gather.hpp>
#include <corio/race.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;

namespace {

// A result computed on a thread of its own, which resumes the awaiting coroutine from there;
// the test joins the thread.
struct on_thread {
    std::thread* worker;
    std::chrono::microseconds delay;
    int input;
    int output = 0;

    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
        *worker = std::thread([this, h] {
            std::this_thread::sleep_for(delay);
            output = input * 2;  // written before the resumption, read after it
            h.resume();
        });
    }
    int await_resume() const noexcept { return output; }
};

// Checks that the coroutine goes on as a task of the loop, on the loop's thread.
void require_on_loop(std::thread::id loop_thread) {
    if (std::this_thread::get_id() != loop_thread) {
        throw std::logic_error("resumed off the loop's thread");
    }
    if (!corio::current_task()) throw std::logic_error("resumed outside its task");
}

corio::coro<int> doubled(int input, std::chrono::microseconds delay) {
    const std::thread::id loop_thread = std::this_thread::get_id();
    std::thread worker;
    const int result = co_await on_thread{&worker, delay, input};
    worker.join();
    require_on_loop(loop_thread);
    co_await corio::sleep(0s);  // a corio wait after it still works
    co_return result;
}

corio::coro<long> many_at_once(int count) {
    std::vector<corio::coro<int>> coros;
    for (int i = 0; i < count; ++i) coros.push_back(doubled(i, std::chrono::microseconds(i % 7)));
    const std::vector<int> results = co_await corio::gather(std::move(coros));
    long sum = 0;
    for (int r : results) sum += r;
    co_return sum;
}

corio::coro<void> in_combinators() {
    const std::thread::id loop_thread = std::this_thread::get_id();
    for (int round = 0; round < 50; ++round) {
        std::thread worker;
        const int in_time = co_await corio::wait_for(on_thread{&worker, 100us, round}, 10s);
        worker.join();
        require_on_loop(loop_thread);
        CHECK(in_time == 2 * round);

        std::thread racer;
        auto won = co_await corio::race(on_thread{&racer, 100us, round}, corio::sleep(1h));
        racer.join();
        require_on_loop(loop_thread);
        REQUIRE(won.index() == 0);
        CHECK(std::get<0>(won) == 2 * round);
    }
}

}  // namespace

TEST_CASE("foreign awaiter: resumed from its own thread, it goes on as a task of the loop",
          "[foreign][threadsafe]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    int total = 0;
    for (int i = 0; i < 200; ++i) total += corio::run(doubled(i, 0us));
    CHECK(total == 200 * 199);
}

TEST_CASE("foreign awaiter: a hundred threads resume a hundred waits at once",
          "[foreign][threadsafe]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    for (int round = 0; round < 5; ++round) {
        CHECK(corio::run(many_at_once(100)) == 2L * (99 * 100 / 2));
    }
}

TEST_CASE("foreign awaiter: resumed from threads inside wait_for and race",
          "[foreign][threadsafe]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio::run(in_combinators());
}

TEST_CASE("foreign awaiter: waiting for a thread is no deadlock in debug mode",
          "[foreign][threadsafe][debug]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    // Nothing else could wake the loop while the thread sleeps: no timer, no I/O, no job.
    CHECK(corio::run(doubled(21, 50ms), {.debug = true}) == 42);
}
