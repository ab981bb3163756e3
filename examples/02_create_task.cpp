// 02_create_task: tasks run coroutines concurrently.
//
// Retells the asyncio note (see examples/README.md) from "Как создать задачу?",
// its 30-second-sleep example with the sleep cut to 300 ms. `corio::create_task(coro)` is
// `asyncio.create_task(coro)`. It wraps the coroutine in a task and schedules it on the loop;
// the task starts the next time the creating coroutine suspends, not inside create_task. While
// task1 sleeps, task2 runs, so awaiting task1 first does not make task2 wait for it.

#include <corio/core.hpp>

#include <chrono>
#include <iostream>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

corio::event_loop::time_point start;
bool custom_coro2_finished = false;

// Milliseconds since `start`, on the loop's clock (asyncio's loop.time()).
long long elapsed_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(corio::get_running_loop().time() -
                                                                 start)
        .count();
}

corio::coro<> custom_coro() {
    co_await corio::sleep(300ms);
    std::cout << "[" << elapsed_ms() << " ms] custom_coro() finished\n";
    expect(custom_coro2_finished, "task2 must have run while task1 slept");
}

corio::coro<> custom_coro2() {
    std::cout << "[" << elapsed_ms() << " ms] custom_coro2(): running loop is "
              << corio::get_running_loop().backend_name() << '\n';
    co_await corio::sleep(200ms);  // work of its own, done while task1 sleeps too
    std::cout << "[" << elapsed_ms() << " ms] custom_coro2() finished\n";
    custom_coro2_finished = true;
}

corio::coro<> async_main() {
    start = corio::get_running_loop().time();
    corio::task<> task1 = corio::create_task(custom_coro());
    corio::task<> task2 = corio::create_task(custom_coro2());
    // Scheduled, not started: async_main has not suspended yet.
    expect(!task1.done() && !task2.done(), "create_task must not run the coroutine inline");
    std::cout << "[" << elapsed_ms() << " ms] two tasks created, awaiting task1\n";

    co_await task1;
    co_await task2;  // already done: returns at once

    const long long total = elapsed_ms();
    std::cout << "[" << total << " ms] both done: 300 ms + 200 ms of sleep took ~300 ms\n";
    expect(total >= 300, "timers never fire early");
    expect(total < 500, "the two sleeps must overlap, not add up");
}

}  // namespace

int main() { corio::run(async_main()); }
