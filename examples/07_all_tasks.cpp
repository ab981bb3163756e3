// 07_all_tasks: listing the tasks that are still running, e.g. to log them or to shut down.
//
// Retells the asyncio note (see examples/README.md) from "получить все задачи можно":
// corio::all_tasks() is asyncio.all_tasks(): every task of the running loop that is not done
// yet, the caller's own included, each once (asyncio returns a set; corio a vector). Finished
// tasks drop out of it. A graceful shutdown cancels the others and waits until each has
// stopped, so that none is cut off at an unknown point; corio::run does the same on its way
// out for tasks left behind, as asyncio.run does.

#include <corio/core.hpp>

#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

void log_tasks(const char* when) {
    const std::vector<corio::task<>> tasks = corio::all_tasks();
    std::cout << when << ", " << tasks.size() << " pending:";
    for (const corio::task<>& t : tasks) std::cout << ' ' << t.get_name();
    std::cout << '\n';
}

int heartbeats_stopped = 0;

corio::coro<> quick() { co_await corio::sleep(1ms); }

// A background worker that only stops when cancelled.
corio::coro<> heartbeat() {
    try {
        for (;;) co_await corio::sleep(10ms);
    } catch (const corio::cancelled_error&) {
        std::cout << corio::current_task().get_name() << " cleans up and stops\n";
        ++heartbeats_stopped;
        throw;  // let the task end as cancelled
    }
}

corio::coro<> async_main() {
    // Fire and forget: the loop keeps a pending task alive without any handle to it (asyncio
    // only keeps a weak reference there, so hold one in Python).
    corio::create_task(quick(), "quick");
    corio::create_task(heartbeat(), "heartbeat-1");
    corio::create_task(heartbeat(), "heartbeat-2");
    log_tasks("started");
    expect(corio::all_tasks().size() == 4, "async_main and the three tasks it created");

    co_await corio::sleep(50ms);
    log_tasks("after 50 ms");
    expect(corio::all_tasks().size() == 3, "a finished task is not listed");

    // Graceful shutdown: every task but this one is cancelled, then awaited.
    std::vector<corio::task<>> others;
    for (corio::task<>& t : corio::all_tasks()) {
        if (t != corio::current_task()) others.push_back(t);
    }
    for (corio::task<>& t : others) t.cancel();
    for (corio::task<>& t : others) {
        try {
            co_await t;
        } catch (const corio::cancelled_error&) {
        }
        expect(t.cancelled(), "each task has stopped as cancelled");
    }
    log_tasks("after shutdown");
    expect(corio::all_tasks().size() == 1, "only async_main is left");

    corio::create_task(heartbeat(), "left-behind");  // corio::run will cancel it
}

}  // namespace

int main() {
    corio::run(async_main());
    expect(heartbeats_stopped == 3, "corio::run cancels the tasks left behind, and waits for them");
    std::cout << "corio::run() returned: every task has stopped\n";
}
