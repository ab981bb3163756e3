// 17_ctrl_c: a program that stops cleanly on Ctrl-C, and a signal handler on the loop.
//
// Beyond the note. `corio::run` does what `asyncio.run` does with Ctrl-C: the first SIGINT
// cancels the main task, so `corio::cancelled_error` comes out of whatever it awaits at that
// moment; the task cleans up on its way out (here: cancels its workers and waits for them),
// and `run` throws the cancellation at the end (asyncio raises KeyboardInterrupt). A
// second Ctrl-C during a slow clean-up kills the program, as Ctrl-C does without corio.
//
// `loop.add_signal_handler(SIGUSR1, fn)` is asyncio's `add_signal_handler`: `fn` runs on the
// loop, as an ordinary callback, never inside a signal handler, so it may do anything (here:
// print a status report).
//
// So that it runs unattended, this example sends itself SIGUSR1 and then SIGINT a little later;
// press Ctrl-C yourself to see the same (run it from a terminal and comment out the SIGINT).

#include <corio/corio.hpp>

#include <chrono>
#include <csignal>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

using namespace std::chrono_literals;

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

struct work_state {
    int jobs_done = 0;
    int workers_stopped = 0;
};

corio::coro<> worker(int id, work_state& state) {
    try {
        for (;;) {
            co_await corio::sleep(10ms);  // one "job"
            ++state.jobs_done;
        }
    } catch (const corio::cancelled_error&) {
        std::cout << "worker " << id << ": cancelled, stops\n";
        ++state.workers_stopped;
        throw;  // a cancelled task lets the cancellation through
    }
}

corio::coro<> async_main(work_state& state) {
    auto& loop = corio::get_running_loop();
    loop.add_signal_handler(SIGUSR1, [&state] {
        std::cout << "SIGUSR1: " << state.jobs_done << " jobs done so far\n";
    });
    // What a user would do from another terminal: `kill -USR1 <pid>`, then Ctrl-C.
    loop.call_later(50ms, [] { ::kill(::getpid(), SIGUSR1); });
    loop.call_later(100ms, [] { ::kill(::getpid(), SIGINT); });

    std::vector<corio::task<>> workers;
    for (int id = 1; id <= 3; ++id) workers.push_back(corio::create_task(worker(id, state)));
    std::cout << "working; press Ctrl-C to stop\n";
    std::exception_ptr interrupted;
    try {
        co_await corio::sleep(1h);  // the real work would be here
    } catch (const corio::cancelled_error& e) {
        std::cout << "main: cancelled (" << e.what() << "), cleaning up\n";
        interrupted = std::current_exception();
    }
    // The clean-up may await (not inside the catch block: C++ forbids co_await there).
    for (auto& w : workers) w.cancel();
    for (auto& w : workers) {
        try {
            co_await w;
        } catch (const corio::cancelled_error&) {
        }
    }
    std::cout << "main: all workers stopped\n";
    // Let the cancellation through, so that `run` reports it.
    if (interrupted) std::rethrow_exception(interrupted);
}

}  // namespace

int main() {
    work_state state;
    try {
        corio::run(async_main(state));
        expect(false, "Ctrl-C cancels the main task");
    } catch (const corio::cancelled_error&) {
        // asyncio would print a KeyboardInterrupt traceback; a C++ program decides itself.
        std::cout << "interrupted after " << state.jobs_done << " jobs; " << state.workers_stopped
                  << " workers stopped cleanly\n";
    }
    expect(state.workers_stopped == 3, "every worker stops before run returns");
    expect(state.jobs_done > 0, "the workers ran until Ctrl-C");
    return 0;
}
