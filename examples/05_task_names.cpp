// 05_task_names: naming tasks, so that logs and callbacks can say which task they are about.
//
// Retells the asyncio note (see examples/README.md) from "задаче ещё можно назначить
// имя": a name given to create_task, a name changed later with set_name, get_name to read it,
// and the default names Task-1, Task-2, ... of tasks created without one (the task corio::run
// makes for async_main is Task-1, as asyncio.run's is). The note's callback_func, which prints
// the name of the task it is given, closes the example.

#include <corio/core.hpp>

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

std::string reported_name;

void callback_func(const corio::task<>& task) {
    std::cout << "task " << task.get_name() << " finished\n";
    reported_name = task.get_name();
}

corio::coro<> custom_coro() { co_await corio::sleep(10ms); }

corio::coro<> async_main() {
    const std::string main_name = corio::current_task().get_name();
    std::cout << "corio::run() named the main task " << main_name << '\n';
    expect(main_name == "Task-1", "the main task is Task-1");

    corio::task<> unnamed = corio::create_task(custom_coro());
    std::cout << "a task created without a name: " << unnamed.get_name() << '\n';
    expect(unnamed.get_name().starts_with("Task-"), "default names are Task-N");

    corio::task<> task1 = corio::create_task(custom_coro(), "coro");
    std::cout << "named at creation: " << task1.get_name() << '\n';
    task1.set_name("renamed_coro");
    std::cout << "after set_name: " << task1.get_name() << '\n';
    expect(task1.get_name() == "renamed_coro", "set_name renames the task");

    corio::task<> task2 = corio::create_task(custom_coro(), "coro2");
    task2.add_done_callback(callback_func);
    // The callback was added before async_main started waiting, so it runs first: a task tells
    // those it concerns in the order they asked.
    co_await task2;
    expect(reported_name == "coro2", "the callback is given the task, and so its name");

    co_await unnamed;
    co_await task1;
}

}  // namespace

int main() { corio::run(async_main()); }
