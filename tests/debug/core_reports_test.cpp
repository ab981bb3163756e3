// The loop's reports in a program that does not include <corio/debug/report_call_graphs.hpp>,
// so that the call-graph writer (impl/call_graph_writer.hpp) is not lent to its loops, though
// it includes everything else (<corio/corio.hpp>, with `format_call_graph`): a deadlock report
// still names each waiting task and what it waits on, and says which header adds the await
// chains; debug mode's slow-step report still names the task and where it resumed; run's
// dump_on_signal prints the waiting tasks. This executable must never include
// <corio/debug/report_call_graphs.hpp> (nor may the tests' precompiled header). CTest runs it
// once per backend.
#include <corio/corio.hpp>

#include "support/catch.hpp"
#include "support/deadlock_programs.hpp"
#include "support/debug_helpers.hpp"
#include "support/test_helpers.hpp"

#include <chrono>
#include <csignal>
#include <exception>
#include <string>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::all_messages;
using corio_test::contains;
using corio_test::frame_leak_check;
using corio_test::two_waiting_on_each_other;

namespace {

struct sites {
    unsigned blocker = 0;
} lines;

std::string deadlock_report(corio::coro<> main) {
    corio::run_options options;
    options.detect_deadlock = true;
    try {
        corio::run(std::move(main), options);
    } catch (const corio::deadlock_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("<not a deadlock_error: ") + e.what() + '>';
    }
    return {};
}

}  // namespace

TEST_CASE("core reports: no call-graph writer is lent in a program without "
          "<corio/debug/report_call_graphs.hpp>, even one that formats call graphs",
          "[debug][core_reports]") {
    CORIO_REQUIRE_BACKEND();
    const std::string graph =
        corio::run([]() -> corio::coro<std::string> { co_return corio::format_call_graph(); }());
    CHECK(contains(graph, "pending task"));
    CHECK(corio::detail::installed_call_graph.load() == nullptr);
}

TEST_CASE("core reports: a deadlock report names each waiting task and what it waits on",
          "[debug][core_reports][deadlock]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const std::string report = deadlock_report(two_waiting_on_each_other());
    INFO(report);
    REQUIRE(report.starts_with("deadlock: "));
    CHECK(contains(report, "  task 'alice' awaits a future\n"));
    CHECK(contains(report, "  task 'bob' awaits a future\n"));
    CHECK(contains(report, "' awaits gather of 2 pending\n"));  // run's main task
    // No call graph, and the way to get one.
    CHECK_FALSE(contains(report, "* task 'alice'"));
    CHECK(report.ends_with("(include <corio/debug/report_call_graphs.hpp> in one file of the "
                           "program for each task's await chain)\n"));
}

namespace {

corio::coro<> blocker() {
    co_await corio::sleep(0s);
    lines.blocker = __LINE__ + 1;
    co_await corio::sleep(0s);
    std::this_thread::sleep_for(150ms);  // the slow step: from the second sleep to the end
}

corio::coro<> slow_program(corio_test::exception_log& log) {
    log.install(corio::get_running_loop());
    corio::task<> t = corio::create_task(blocker(), "blocker");
    co_await t;
}

}  // namespace

TEST_CASE("core reports: debug mode's slow-step report names the task and where it resumed",
          "[debug][core_reports]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio_test::exception_log log;
    corio::run(slow_program(log), {.debug = true});
    INFO(all_messages(log));
    const std::string expected = std::string("Executing task 'blocker' (resumed at ") + __FILE__ +
                                 ':' + std::to_string(lines.blocker) + " in ";
    bool found = false;
    for (const auto& context : log.contexts()) {
        // clang 14 names the function "blocker", clang 16 and later with its namespace.
        found = found || contains(context.message, expected + "blocker") ||
                contains(context.message, expected + "(anonymous namespace)::blocker(");
    }
    CHECK(found);
}

namespace {

// Waits for a future nobody sets, after telling the parent (through `ready`) it is there.
corio::coro<> stuck_program(int ready) {
    corio::future<int> never = corio::get_running_loop().create_future<int>();
    corio::task<> waiter = corio::create_task(
        [](corio::future<int> f) -> corio::coro<> { (void)co_await f; }(never), "waiter");
    co_await corio::sleep(10ms);
    const char byte = 'r';
    (void)::write(ready, &byte, 1);
    co_await waiter;
}

}  // namespace

TEST_CASE("core reports: dump_on_signal lists the pending tasks and what each waits on",
          "[debug][core_reports]") {
    CORIO_REQUIRE_BACKEND();
    int ready[2];
    int err[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::dup2(err[1], STDERR_FILENO);
        corio::run_options options;
        options.dump_on_signal = SIGUSR1;
        try {
            corio::run(stuck_program(ready[1]), options);
        } catch (...) {
        }
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(err[1]);
    char byte = 0;
    REQUIRE(::read(ready[0], &byte, 1) == 1);
    ::kill(child, SIGUSR1);
    // Read stderr until the dump's last line has come.
    std::string dump;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!contains(dump, "call graph)\n") && std::chrono::steady_clock::now() < deadline) {
        pollfd readable{err[0], POLLIN, 0};
        if (::poll(&readable, 1, 1000) <= 0) continue;
        char buffer[512];
        const ssize_t n = ::read(err[0], buffer, sizeof buffer);
        if (n <= 0) break;
        dump.append(buffer, static_cast<std::size_t>(n));
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(ready[0]);
    ::close(err[0]);
    INFO(dump);
    CHECK(contains(dump, "corio: pending tasks\n"));
    CHECK(contains(dump, "  task 'waiter' awaits a future\n"));
    CHECK(contains(dump, "' awaits task 'waiter'\n"));  // run's main task
    CHECK(contains(dump, "(include <corio/debug/report_call_graphs.hpp> in one file of the "
                         "program for each task's await chain)\n"));
}
