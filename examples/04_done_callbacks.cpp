// 04_done_callbacks: running code when a task finishes, with add/remove_done_callback.
//
// Retells the asyncio note (see examples/README.md) from "задачу так же можно
// оснастить callback-ом": any number of callbacks can be added to a task and removed again, and
// each is called with the task itself. Two things differ from asyncio, both because a C++ lambda
// cannot be compared with another:
// - add_done_callback returns an id, and remove_done_callback takes that id (asyncio compares
//   the functions);
// - a callback that does not take the task is a compile error, not a TypeError at run time.
// Callbacks never run inside the task: they are scheduled on the loop once it is done.

#include <corio/core.hpp>

#include <cstddef>
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

std::vector<std::string> called;

// Makes a callback that logs which one it is and what the task it was given returned.
auto callback_func(std::string id) {
    return [id](const corio::task<int>& t) {
        std::cout << id << ": task " << t.get_name() << " done, result " << t.result() << '\n';
        called.push_back(id);
    };
}

corio::coro<int> custom_coro2() {
    co_await corio::sleep(10ms);
    co_return 7;
}

corio::coro<> async_main() {
    corio::task<int> task2 = corio::create_task(custom_coro2(), "coro2");
    const corio::callback_id id0 = task2.add_done_callback(callback_func("callback_func"));
    const corio::callback_id id1 = task2.add_done_callback(callback_func("callback_func1"));
    task2.add_done_callback(callback_func("callback_func2"));
    task2.add_done_callback(callback_func("callback_func3"));

    std::cout << "removed callback_func: " << task2.remove_done_callback(id0) << '\n';
    std::cout << "removed callback_func1: " << task2.remove_done_callback(id1) << '\n';
    std::cout << "removed callback_func1 again: " << task2.remove_done_callback(id1) << '\n';

    co_await task2;
    // A callback added to a done task is not called here and now, but on the loop's next turn.
    const std::size_t before = called.size();
    task2.add_done_callback(callback_func("late_callback"));
    expect(called.size() == before, "a callback must not run inside add_done_callback");
    co_await corio::sleep(0s);

    const std::vector<std::string> expected = {"callback_func2", "callback_func3", "late_callback"};
    expect(called == expected, "the callbacks left must run once each, in the order added");
}

}  // namespace

int main() { corio::run(async_main()); }
