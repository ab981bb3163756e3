// 03_task_states: asking a task how it ended, with done(), cancelled(), result(), exception().
//
// Retells the asyncio note (see examples/README.md) from "Жизненный цикл задачи": a
// task is done once its coroutine returned, threw, or was cancelled. One task of each kind is
// inspected while pending and once done. As in asyncio, result() rethrows what the task threw,
// and both result() and exception() throw cancelled_error for a cancelled task and
// invalid_state_error for a pending one: asking too early is a bug, not a "no value yet".

#include <corio/core.hpp>

#include <exception>
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

// What calling `f` gives: its value, or the exception it throws.
template <class F>
std::string outcome(F&& f) {
    try {
        return f();
    } catch (const corio::invalid_state_error& e) {
        return std::string("throws invalid_state_error(\"") + e.what() + "\")";
    } catch (const corio::cancelled_error& e) {
        return std::string("throws cancelled_error(\"") + e.what() + "\")";
    } catch (const std::exception& e) {
        return std::string("throws \"") + e.what() + '"';
    }
}

std::string describe(std::exception_ptr e) {
    if (!e) return "null";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return std::string("holds \"") + x.what() + '"';
    }
}

std::string result_of(const corio::task<int>& t) {
    return outcome([&] { return std::to_string(t.result()); });
}
std::string exception_of(const corio::task<int>& t) {
    return outcome([&] { return describe(t.exception()); });
}

void show(const char* label, const corio::task<int>& t) {
    std::cout << label << ": done=" << t.done() << " cancelled=" << t.cancelled()
              << "\n  result()    " << result_of(t) << "\n  exception() " << exception_of(t)
              << '\n';
}

corio::coro<int> succeeds() { co_return 42; }

corio::coro<int> fails() {
    throw std::runtime_error("boom");
    co_return 0;  // only to make this a coroutine
}

corio::coro<int> sleeps_long() {
    co_await corio::sleep(1h);
    co_return 0;
}

corio::coro<> async_main() {
    std::cout << std::boolalpha;
    corio::task<int> ok = corio::create_task(succeeds());
    corio::task<int> failing = corio::create_task(fails());
    corio::task<int> slow = corio::create_task(sleeps_long());
    show("pending", ok);
    expect(!ok.done() && result_of(ok).starts_with("throws invalid_state_error") &&
               exception_of(ok).starts_with("throws invalid_state_error"),
           "a pending task has neither result nor exception yet");

    co_await corio::sleep(0s);  // one turn of the loop: each task runs to its first suspension
    slow.cancel("no longer needed");
    try {
        co_await slow;  // waits for the cancellation to be delivered; rethrows it here
    } catch (const corio::cancelled_error&) {
    }

    show("succeeded", ok);
    show("failed", failing);
    show("cancelled", slow);
    expect(result_of(ok) == "42" && exception_of(ok) == "null", "success");
    expect(result_of(failing) == R"(throws "boom")" && exception_of(failing) == R"(holds "boom")",
           "failure");
    expect(slow.cancelled() && result_of(slow).starts_with("throws cancelled_error") &&
               exception_of(slow).starts_with("throws cancelled_error"),
           "cancellation");
}

}  // namespace

int main() { corio::run(async_main()); }
