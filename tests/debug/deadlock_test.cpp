// Deadlock detection (run_options::detect_deadlock, event_loop::set_detect_deadlock): what it
// reports (each waiting task, what it waits on, the call graph), debug mode turning it on, a
// loop run by hand, no false report while a timer, an executor job, I/O or a signal handler
// could still wake a task, none hidden by the dump's signal handler or by a dropped child's
// reaper, a cycle of tasks awaiting each other, and off by default. CTest runs it once per
// backend (CORIO_BACKEND).
#include <corio/event_loop.hpp>

#include "support/catch.hpp"
#include "support/deadlock_programs.hpp"
#include "support/debug_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/debug/report_call_graphs.hpp>  // the call graph in the reports
#include <corio/errors.hpp>
#include <corio/executor.hpp>
#include <corio/future.hpp>
#include <corio/gather.hpp>
#include <corio/net/sock.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/event.hpp>
#include <corio/sync/lock.hpp>
#include <corio/sync/queue.hpp>
#include <corio/system/process.hpp>
#include <corio/system/signals.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <csignal>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::all_messages;
using corio_test::child_process;
using corio_test::contains;
using corio_test::deadlock_lines;
using corio_test::fd_pair;
using corio_test::frame_leak_check;
using corio_test::has_block;
using corio_test::install_quiet;
using corio_test::read_until;
using corio_test::scoped_env;
using corio_test::stall_guard;
using corio_test::two_waiting_on_each_other;

namespace {

corio::coro<> guarded(corio::coro<> main) {
    stall_guard guard(corio::get_running_loop());
    co_await std::move(main);
}

// Runs `main` with `options` (and the stall guard); returns what() of the deadlock_error it
// ended with, "" if it ended normally, or "<...>" if it ended with another error (the stall
// guard's stop, when a deadlock went unseen).
std::string deadlock_report(corio::coro<> main, const corio::run_options& options) {
    try {
        corio::run(guarded(std::move(main)), options);
    } catch (const corio::deadlock_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("<not a deadlock_error: ") + e.what() + '>';
    }
    return {};
}

corio::run_options detecting() {
    corio::run_options options;
    options.detect_deadlock = true;
    return options;
}

// The call-graph line of wait_then_set's wait (support/deadlock_programs.hpp), under a task.
std::string waits_in_wait_then_set() {
    return corio_test::site_line(deadlock_lines.file, 2, "at", deadlock_lines.wait_other,
                                 "wait_then_set");
}

// --- deadlock detection --------------------------------------------------------------------

TEST_CASE("deadlock: two tasks waiting on each other's future end run with deadlock_error",
          "[debug][deadlock]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const corio_test::stopwatch watch;
    const std::string report = deadlock_report(two_waiting_on_each_other(), detecting());
    INFO(report);
    REQUIRE(!report.empty());
    CHECK(watch.elapsed() < 5s);  // at once, not by the stall guard
    CHECK(report.starts_with("deadlock: "));
    // Each waiting task, and what it waits on.
    CHECK(contains(report, "  task 'alice' awaits a future\n"));
    CHECK(contains(report, "  task 'bob' awaits a future\n"));
    // The call graph, with where each waits.
    CHECK(has_block(report,
                    {"    * task 'alice'", waits_in_wait_then_set(), "        awaits a future"}));
    CHECK(has_block(report,
                    {"    * task 'bob'", waits_in_wait_then_set(), "        awaits a future"}));
}

TEST_CASE("deadlock: debug mode detects it by default", "[debug][deadlock]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio_test::exception_log log;  // a task destroyed while pending would be reported here
    corio::run_options options;
    options.debug = true;
    std::string report;
    try {
        corio::run(
            [](corio_test::exception_log& l, corio::coro<> main) -> corio::coro<> {
                install_quiet(l, corio::get_running_loop());
                co_await guarded(std::move(main));
            }(log, two_waiting_on_each_other()),
            options);
    } catch (const corio::deadlock_error& e) {
        report = e.what();
    }
    CHECK(contains(report, "task 'alice'"));
    CHECK(contains(report, "task 'bob'"));
    // run cancels the waiting tasks on its way out: none is destroyed while pending.
    INFO(all_messages(log));
    CHECK(log.size() == 0);
}

corio::coro<> wait_on_queue(corio::queue<int>& queue) { (void)co_await queue.get(); }
corio::coro<> hold_lock_then_wait(corio::lock& lock, corio::event& event) {
    auto held = co_await lock.scoped();
    co_await event.wait();
}
corio::coro<> wait_on_lock(corio::lock& lock) { auto held = co_await lock.scoped(); }

corio::coro<> nobody_fills_the_queue() {
    corio::queue<int> queue;
    co_await corio::create_task(wait_on_queue(queue), "consumer");
}

corio::coro<> nobody_sets_the_event() {
    corio::event event;
    corio::lock lock;
    corio::task<> holder = corio::create_task(hold_lock_then_wait(lock, event), "holder");
    co_await corio::sleep(0s);
    co_await corio::create_task(wait_on_lock(lock), "locker");
}

TEST_CASE("deadlock: a queue nobody fills, a lock held by a task waiting for an event",
          "[debug][deadlock]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const std::string queue_report = deadlock_report(nobody_fills_the_queue(), detecting());
    INFO(queue_report);
    CHECK(contains(queue_report, "  task 'consumer' waits in corio::queue::get\n"));
    CHECK(contains(queue_report, "awaits task 'consumer'\n"));

    const std::string lock_report = deadlock_report(nobody_sets_the_event(), detecting());
    INFO(lock_report);
    CHECK(contains(lock_report, "  task 'holder' waits in corio::event::wait\n"));
    CHECK(contains(lock_report, "  task 'locker' waits in corio::lock::acquire\n"));
}

TEST_CASE("deadlock: a loop run by hand throws deadlock_error from run_until_complete",
          "[debug][deadlock]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const scoped_env no_env("CORIO_DEBUG", nullptr);
    auto loop = corio::new_event_loop();
    CHECK_FALSE(loop->get_detect_deadlock());
    loop->set_detect_deadlock(true);
    CHECK(loop->get_detect_deadlock());
    corio::task<> t = loop->create_task(nobody_fills_the_queue(), "main");
    CHECK_THROWS_AS(loop->run_until_complete(t), corio::deadlock_error);
    CHECK_FALSE(loop->is_running());
    CHECK_FALSE(t.done());
    loop->close();
    CHECK(t.cancelled());
}

TEST_CASE("deadlock: a signal handler installed only for dumps does not hide one",
          "[debug][deadlock][signal]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio::run_options options = detecting();
    options.dump_on_signal = SIGUSR1;
    const std::string report = deadlock_report(two_waiting_on_each_other(), options);
    CHECK(contains(report, "task 'alice'"));
    CHECK(contains(report, "task 'bob'"));
}

// The program takes the dump's signal over: its own handler may wake a task.
corio::coro<> replaces_the_dump_handler() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> f = loop.create_future<int>();
    loop.add_signal_handler(SIGUSR2, [f]() mutable {
        if (!f.done()) f.set_result(4);
    });
    std::thread sender([] {
        std::this_thread::sleep_for(50ms);
        ::kill(::getpid(), SIGUSR2);
    });
    struct joiner {
        std::thread& t;
        ~joiner() { t.join(); }
    } join_sender{sender};
    const int value = co_await f;
    if (value != 4) throw std::logic_error("signal value");
}

// The program removes the dump's handler, then deadlocks.
corio::coro<> removes_the_dump_handler() {
    const bool removed = corio::get_running_loop().remove_signal_handler(SIGUSR2);
    if (!removed) throw std::logic_error("the dump's handler was not installed");
    co_await two_waiting_on_each_other();
}

TEST_CASE("deadlock: the dump's signal handler taken over or removed by the program",
          "[debug][deadlock][signal]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio::run_options options = detecting();
    options.dump_on_signal = SIGUSR2;
    // Replaced by a handler that completes the future: no false report.
    const std::string replaced = deadlock_report(replaces_the_dump_handler(), options);
    INFO("replaced: " << replaced);
    CHECK(replaced.empty());
    // Removed: a deadlock is still seen (not hidden by a miscounted handler).
    const corio_test::stopwatch watch;
    const std::string removed = deadlock_report(removes_the_dump_handler(), options);
    INFO("removed: " << removed);
    CHECK(contains(removed, "task 'alice'"));
    CHECK(watch.elapsed() < 5s);
}

// No false report: in each program below, tasks wait with nothing ready to run, but something
// corio knows of will wake them.

corio::coro<> woken_by_timer() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> f = loop.create_future<int>();
    corio::timer_handle timer = loop.call_later(30ms, [f]() mutable { f.set_result(1); });
    const int value = co_await f;
    if (value != 1) throw std::logic_error("timer value");
    // A lock held by a sleeping task.
    corio::lock lock;
    corio::task<> holder = corio::create_task([](corio::lock& l) -> corio::coro<> {
        auto held = co_await l.scoped();
        co_await corio::sleep(20ms);
    }(lock));
    co_await corio::sleep(0s);
    co_await wait_on_lock(lock);
    co_await holder;
}

corio::coro<> woken_by_executor() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> f = loop.create_future<int>();
    corio::task<> worker = corio::create_task([](corio::future<int> done) -> corio::coro<> {
        const int value = co_await corio::to_thread([] {
            std::this_thread::sleep_for(50ms);
            return 7;
        });
        done.set_result(value);
    }(f));
    const int value = co_await f;
    if (value != 7) throw std::logic_error("executor value");
    co_await worker;
}

corio::coro<> woken_by_io() {
    fd_pair sockets;
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sockets.fds) != 0) {
        throw std::runtime_error("socketpair");
    }
    const int writer_fd = sockets.fds[1];
    std::thread writer([writer_fd] {
        std::this_thread::sleep_for(50ms);
        (void)::write(writer_fd, "x", 1);
    });
    struct joiner {
        std::thread& t;
        ~joiner() { t.join(); }
    } join_writer{writer};
    const std::string got = co_await corio::get_running_loop().sock_recv(sockets.fds[0], 1);
    if (got != "x") throw std::logic_error("read the wrong byte");

    // A readiness callback (add_reader) counts as I/O too.
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> readable = loop.create_future<int>();
    const int reader_fd = sockets.fds[0];
    loop.add_reader(reader_fd, [&loop, reader_fd, readable]() mutable {
        loop.remove_reader(reader_fd);
        readable.set_result(1);
    });
    std::thread second([writer_fd] {
        std::this_thread::sleep_for(50ms);
        (void)::write(writer_fd, "y", 1);
    });
    struct joiner second_join{second};
    const int ok = co_await readable;
    if (ok != 1) throw std::logic_error("reader value");
}

corio::coro<> woken_by_signal() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> f = loop.create_future<int>();
    loop.add_signal_handler(SIGUSR2, [f]() mutable {
        if (!f.done()) f.set_result(2);
    });
    // Made after the handler: the thread inherits the blocked mask, and the signal waits for
    // the loop's signalfd.
    std::thread sender([] {
        std::this_thread::sleep_for(50ms);
        ::kill(::getpid(), SIGUSR2);
    });
    struct joiner {
        std::thread& t;
        ~joiner() { t.join(); }
    } join_sender{sender};
    const int value = co_await f;
    loop.remove_signal_handler(SIGUSR2);
    if (value != 2) throw std::logic_error("signal value");
}

TEST_CASE("deadlock: no false report while a timer, an executor job, I/O or a signal handler "
          "can still wake a task",
          "[debug][deadlock]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    for (const bool debug : {false, true}) {
        INFO("debug mode " << debug);
        corio::run_options options = detecting();
        options.debug = debug;
        CHECK(deadlock_report(woken_by_timer(), options).empty());
        CHECK(deadlock_report(woken_by_executor(), options).empty());
        CHECK(deadlock_report(woken_by_io(), options).empty());
        CHECK(deadlock_report(woken_by_signal(), options).empty());
    }
}

corio::coro<> waits_beside_a_dropped_child(pid_t& child_pid) {
    {
        const std::vector<std::string> args{"30"};
        corio::process child = co_await corio::create_subprocess_exec("sleep", args);
        child_pid = child.pid();
    }  // dropped while it runs: the loop reaps it in the background
    corio::future<int> never = corio::get_running_loop().create_future<int>();
    (void)co_await never;
}

TEST_CASE("deadlock: a dropped child process reaped in the background does not hide one",
          "[debug][deadlock]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    pid_t child_pid = 0;
    const corio_test::stopwatch watch;
    const std::string report =
        deadlock_report(waits_beside_a_dropped_child(child_pid), detecting());
    INFO(report);
    CHECK(watch.elapsed() < 5s);  // at once, not by the stall guard
    CHECK(report.starts_with("deadlock: "));
    // The loop has closed: a thread of corio's reaps the child once it is gone.
    REQUIRE(child_pid > 0);
    ::kill(child_pid, SIGKILL);
}

corio::coro<> woken_from_another_thread() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> f = loop.create_future<int>();
    std::thread helper([&loop, f]() mutable {
        std::this_thread::sleep_for(100ms);
        loop.call_soon_threadsafe([f]() mutable { f.set_result(3); });
    });
    struct joiner {
        std::thread& t;
        ~joiner() { t.join(); }
    } join_helper{helper};
    const int value = co_await f;
    if (value != 3) throw std::logic_error("threadsafe value");
}

TEST_CASE("deadlock: detection is off by default, as a thread may still complete a future",
          "[debug][deadlock]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const scoped_env no_env("CORIO_DEBUG", nullptr);
    {
        auto loop = corio::new_event_loop();
        CHECK_FALSE(loop->get_detect_deadlock());
        corio::run_options options;
        options.debug = true;
        CHECK(corio::new_event_loop(options)->get_detect_deadlock());
        options.detect_deadlock = false;
        CHECK_FALSE(corio::new_event_loop(options)->get_detect_deadlock());
        CHECK(corio::new_event_loop(detecting())->get_detect_deadlock());

        // Leaving debug mode turns detection off again only if debug mode turned it on.
        loop->set_debug(true);
        CHECK(loop->get_detect_deadlock());
        loop->set_debug(false);
        CHECK_FALSE(loop->get_detect_deadlock());
        loop->set_detect_deadlock(true);
        loop->set_debug(true);
        loop->set_debug(false);
        CHECK(loop->get_detect_deadlock());
        loop->set_detect_deadlock(false);
        loop->set_debug(true);
        loop->set_detect_deadlock(true);  // asked for explicitly: it stays
        loop->set_debug(false);
        CHECK(loop->get_detect_deadlock());
    }
    // The case detection cannot see: a plain thread completes the future. By default, run
    // simply waits for it.
    CHECK(deadlock_report(woken_from_another_thread(), {}).empty());

    // A real deadlock, with the default options, waits forever: in a child, until an alarm.
    child_process child([] {
        ::alarm(1);
        corio::run(two_waiting_on_each_other());
        return 0;
    });
    const std::optional<int> status = child.wait(20s);
    REQUIRE(status.has_value());
    CHECK(WIFSIGNALED(*status));
    CHECK(WTERMSIG(*status) == SIGALRM);
}

corio::coro<> await_task(corio::task<>* other) {
    co_await corio::sleep(0s);
    co_await *other;
}

corio::coro<> tasks_awaiting_each_other() {
    corio::task<> a, b;
    a = corio::create_task(await_task(&b), "a");
    b = corio::create_task(await_task(&a), "b");
    co_await a;
}

TEST_CASE("deadlock: two tasks awaiting each other (a cycle in the call graph)",
          "[debug][deadlock]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    // In a child: cancelling a task of the cycle must not recurse without end.
    fd_pair out;
    REQUIRE(::pipe2(out.fds, O_CLOEXEC) == 0);
    child_process child([&] {
        std::string report;
        try {
            corio::run(tasks_awaiting_each_other(), detecting());
        } catch (const corio::deadlock_error& e) {
            report = e.what();
        }
        report += "\nEND\n";
        if (::write(out.fds[1], report.data(), report.size()) < 0) return 97;
        return 0;
    });
    fd_pair::close_one(out.fds[1]);
    const std::string report =
        read_until(out.fds[0], [](const std::string& t) { return t.ends_with("\nEND\n"); });
    const std::optional<int> status = child.wait(20s);
    INFO(report);
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
    CHECK(contains(report, "  task 'a' awaits task 'b'\n"));
    CHECK(contains(report, "  task 'b' awaits task 'a'\n"));
    CHECK(contains(report, "* task 'a' (shown above)"));
}

}  // namespace
