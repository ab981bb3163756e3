// 10_wait: wait for a set of tasks until a condition holds.
//
// Retells the asyncio note's last section, `asyncio.wait(..., return_when=...)`.
// `corio::wait(tasks, when)` returns the same tasks split into `done` and `pending`, and never
// cancels anything:
//   - return_when::all_completed   waits for every task;
//   - return_when::first_completed returns as soon as one task is done;
//   - return_when::first_exception returns when one task fails (or when all are done).
// A timeout makes it return early, with whatever is still running in `pending`.

#include <corio/core.hpp>

#include <chrono>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();
    throw std::logic_error("example broken: " + what);
}

corio::coro<int> work(int number, std::chrono::milliseconds time) {
    co_await corio::sleep(time);
    co_return number;
}

corio::coro<int> fail_after(std::chrono::milliseconds time) {
    co_await corio::sleep(time);
    throw std::runtime_error("task failed");
}

std::vector<corio::task<int>> start_three() {
    std::vector<corio::task<int>> tasks;
    tasks.push_back(corio::create_task(work(1, 30ms)));
    tasks.push_back(corio::create_task(work(2, 60ms)));
    tasks.push_back(corio::create_task(work(3, 90ms)));
    return tasks;
}

corio::coro<> async_main() {
    {
        auto tasks = start_three();
        auto [done, pending] = co_await corio::wait(tasks, corio::return_when::first_completed);
        std::cout << "first_completed: " << done.size() << " done (task " << done[0].result()
                  << "), " << pending.size() << " still running\n";
        expect(done.size() == 1 && !pending[0].cancelled(), "wait cancels nothing");
        co_await corio::wait(pending);  // all_completed is the default
        std::cout << "all_completed: the other " << pending.size() << " finished too\n";
    }
    {
        std::vector<corio::task<int>> tasks = start_three();
        tasks.push_back(corio::create_task(fail_after(10ms)));
        auto [done, pending] = co_await corio::wait(tasks, corio::return_when::first_exception);
        std::cout << "first_exception: returned with " << done.size() << " done, " << pending.size()
                  << " pending\n";
        for (auto& t : done) {
            if (t.exception()) std::cout << "  a task failed, as expected\n";
        }
        expect(done.size() == 1 && pending.size() == 3, "returns at the first failure");
        co_await corio::wait(pending);
    }
    {
        auto tasks = start_three();
        auto [done, pending] = co_await corio::wait(tasks, 45ms);
        std::cout << "timeout of 45 ms: " << done.size() << " done, " << pending.size()
                  << " pending\n";
        expect(done.size() == 1 && pending.size() == 2, "the timeout splits the set");
        co_await corio::wait(pending);
    }
}

}  // namespace

int main() { corio::run(async_main()); }
