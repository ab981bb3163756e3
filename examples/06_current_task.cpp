// 06_current_task: which task is running this code? Handy for logging.
//
// Retells the asyncio note (see examples/README.md) from "для получения текущей
// выполняемой задачи": corio::current_task() is asyncio.current_task(). It is the task whose
// turn it is, which is not always the function you are in: a coroutine awaited with co_await
// runs inside the task that awaits it, and a done callback runs between tasks, in none. Outside
// any task the handle is empty (asyncio returns None).

#include <corio/core.hpp>

#include <iostream>
#include <stdexcept>
#include <string>

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

// A log line that says which task wrote it.
void log(const std::string& message) {
    const corio::task<> self = corio::current_task();
    std::cout << "[" << (self ? self.get_name() : "no task") << "] " << message << '\n';
}

// Awaited inline, so it runs inside whichever task awaits it; returns that task.
corio::coro<corio::task<>> helper() {
    log("helper() runs");
    co_return corio::current_task();
}

corio::coro<> worker() {
    log("worker() runs");
    const corio::task<> outer = co_await helper();
    expect(outer == corio::current_task(), "helper() awaited by worker() runs in its task");
}

corio::coro<> async_main() {
    log("main coroutine started");
    const corio::task<> main_task = corio::current_task();

    const corio::task<> seen = co_await helper();
    expect(seen == main_task, "an awaited coroutine runs in the awaiting task");

    corio::task<> task = corio::create_task(worker(), "worker");
    bool callback_saw_a_task = true;
    task.add_done_callback([&](const corio::task<>&) {
        log("done callback runs");
        callback_saw_a_task = static_cast<bool>(corio::current_task());
    });
    co_await task;
    expect(!callback_saw_a_task, "a done callback runs outside any task");
    expect(corio::current_task() == main_task, "back in the main task");
}

}  // namespace

int main() {
    log("before corio::run()");
    expect(!corio::current_task(), "no task outside the loop");
    corio::run(async_main());
}
