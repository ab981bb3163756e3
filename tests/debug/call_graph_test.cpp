// The call graph of the loop's tasks (include/corio/debug/call_graph.hpp): format_call_graph
// and dump_tasks on a known program (each task, each await, who awaits whom, what each waits
// for), a task waiting in another library's awaiter, a loop that is not running, and run's
// dump_on_signal, in a forked child. CTest runs it once per backend (CORIO_BACKEND).
#include <corio/debug/call_graph.hpp>
#include <corio/debug/report_call_graphs.hpp>  // the call graph in dump_on_signal's dumps

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/debug_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/event_loop.hpp>
#include <corio/future.hpp>
#include <corio/gather.hpp>
#include <corio/net/sock.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/sync/queue.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <coroutine>
#include <csignal>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::child_process;
using corio_test::contains;
using corio_test::fd_pair;
using corio_test::frame_leak_check;
using corio_test::has_block;
using corio_test::read_until;

namespace {

// A suspension point of this file: "<indent>at <this file>:<line> in <function>".
std::string at(int depth, unsigned line, const std::string& function) {
    return corio_test::site_line(__FILE__, depth, "at", line, function);
}

// --- a known program, for the call graph ---------------------------------------------------

// The source lines of the co_awaits below, recorded as they run.
struct known_lines {
    unsigned inner = 0, middle = 0, outer = 0, child = 0, gather = 0, consumer = 0, waiter = 0,
             future_waiter = 0, yielder = 0, main = 0, created = 0;
} lines;

corio::coro<> inner() {
    lines.inner = __LINE__ + 1;
    co_await corio::sleep(1h);
}

corio::coro<> middle() {
    lines.middle = __LINE__ + 1;
    co_await inner();
}

corio::coro<> outer() {
    lines.outer = __LINE__ + 1;
    co_await middle();
}

corio::coro<int> child(std::chrono::hours how_long) {
    lines.child = __LINE__ + 1;
    co_await corio::sleep(how_long);
    co_return 1;
}

corio::coro<> parent() {
    corio::task<int> a = corio::create_task(child(2h), "child-a");
    corio::task<int> b = corio::create_task(child(3h), "child-b");
    lines.gather = __LINE__ + 1;
    co_await corio::gather(a, b);
}

corio::coro<> consumer(corio::queue<int>& queue) {
    lines.consumer = __LINE__ + 1;
    const int item = co_await queue.get();
    (void)item;
}

corio::coro<> waiter(corio::task<int> target) {
    lines.waiter = __LINE__ + 1;
    co_await target;
}

corio::coro<> future_waiter(corio::future<int> f) {
    lines.future_waiter = __LINE__ + 1;
    co_await f;
}

corio::coro<> yielder() {
    for (;;) {
        lines.yielder = __LINE__ + 1;
        co_await corio::sleep(0s);
    }
}

corio::coro<> known_program(std::string& dump, std::string& streamed) {
    corio::queue<int> queue;
    corio::task<> t1 = corio::create_task(outer(), "outer");
    corio::task<> t2 = corio::create_task(parent(), "parent");
    corio::task<> t3 = corio::create_task(consumer(queue), "consumer");
    co_await corio_test::yield(3);  // every task reaches its wait; virtual time stands still
    dump = corio::format_call_graph();
    std::ostringstream out;
    corio::dump_tasks(out);
    streamed = out.str();
    t1.cancel();
    t2.cancel();
    t3.cancel();
}

TEST_CASE("call graph: a known program shows each task, each await and who awaits whom",
          "[debug][call_graph]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    std::string dump, streamed;
    // On virtual time the clock stands still while tasks run, so "due in" is exact.
    corio::run_options options;
    options.virtual_time = true;
    corio::run(known_program(dump, streamed), options);
    INFO(dump);

    // Five tasks waiting, and the one that asks (the main task, running).
    std::string backend;
    {
        auto loop = corio::new_event_loop();
        backend = std::string(loop->backend_name());
    }
    CHECK(dump.starts_with("corio: 6 pending tasks on the " + backend + " loop\n"));
    CHECK(has_block(dump, {"* task 'Task-1'", "    is running"}));

    // Three nested awaits, outermost first, down to the innermost wait.
    CHECK(has_block(dump,
                    {"* task 'outer'", at(1, lines.outer, "outer"), at(1, lines.middle, "middle"),
                     at(1, lines.inner, "inner"), "    waits in corio::sleep, due in 3600.000 s"}));

    // A gather of two children: the children are shown under the task that awaits them.
    CHECK(has_block(
        dump, {"* task 'parent'", at(1, lines.gather, "parent"), "    awaits gather of 2 pending",
               "    * task 'child-a'", at(2, lines.child, "child"),
               "        waits in corio::sleep, due in 7200.000 s", "    * task 'child-b'",
               at(2, lines.child, "child"), "        waits in corio::sleep, due in 10800.000 s"}));
    // ...and only there, not again at the top level.
    CHECK(!contains(dump, "\n* task 'child-a'"));
    CHECK(!contains(dump, "\n* task 'child-b'"));

    // A task blocked on a queue.
    CHECK(has_block(dump, {"* task 'consumer'", at(1, lines.consumer, "consumer"),
                           "    waits in corio::queue::get"}));

    // dump_tasks writes the same text.
    CHECK(streamed == dump);
}

corio::coro<> states_program(std::string& dump) {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> never_set = loop.create_future<int>();
    corio::task<int> target = corio::create_task(child(4h), "target");
    corio::task<> t1 = corio::create_task(waiter(target), "waiter");
    corio::task<> t2 = corio::create_task(future_waiter(never_set), "future-waiter");
    corio::task<> t3 = corio::create_task(yielder(), "yielder");
    co_await corio_test::yield(2);
    lines.created = __LINE__ + 1;
    corio::task<int> fresh = corio::create_task(child(5h), "fresh");
    dump = corio::format_call_graph();
    fresh.cancel();
    target.cancel();
    t1.cancel();
    t2.cancel();
    t3.cancel();
}

TEST_CASE("call graph: what each task waits for", "[debug][call_graph]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    for (const bool debug : {false, true}) {
        INFO("debug mode " << debug);
        std::string dump;
        corio::run_options options;
        options.virtual_time = true;
        options.debug = debug;
        corio::run(states_program(dump), options);
        INFO(dump);
        // A task awaiting another task: the awaited one is shown under it.
        CHECK(has_block(dump, {"* task 'waiter'", at(1, lines.waiter, "waiter"),
                               "    awaits task 'target'", "    * task 'target'",
                               at(2, lines.child, "child"),
                               "        waits in corio::sleep, due in 14400.000 s"}));
        CHECK(!contains(dump, "\n* task 'target'"));
        CHECK(
            has_block(dump, {"* task 'future-waiter'", at(1, lines.future_waiter, "future_waiter"),
                             "    awaits a future"}));
        // sleep(0) leaves nothing to withdraw: the task is simply in the ready queue.
        CHECK(has_block(
            dump, {"* task 'yielder'", at(1, lines.yielder, "yielder"), "    is ready to run"}));
        // A task not started yet has no await chain; in debug mode, where it was created.
        if (debug) {
            CHECK(has_block(dump, {"* task 'fresh'",
                                   corio_test::site_line(__FILE__, 1, "created at", lines.created,
                                                         "states_program"),
                                   "    has not started"}));
        } else {
            CHECK(has_block(dump, {"* task 'fresh'", "    has not started"}));
        }
    }
}

namespace {

// An awaiter of another library: it knows nothing of corio's task machinery, and the program
// resumes the handle it was given itself. corio wraps it (impl/foreign_awaiter.hpp), so the
// task still knows where it waits.
struct foreign_awaiter {
    std::coroutine_handle<>* parked;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { *parked = h; }
    void await_resume() const noexcept {}
};

struct foreign_lines {
    unsigned outer = 0;
    unsigned inner_sleep = 0;
    unsigned inner_foreign = 0;
} foreign_sites;

corio::coro<> inner_foreign(std::coroutine_handle<>& parked) {
    foreign_sites.inner_sleep = __LINE__ + 1;
    co_await corio::sleep(1ms);  // a corio wait first: the chain it left must not stay behind
    foreign_sites.inner_foreign = __LINE__ + 1;
    co_await foreign_awaiter{&parked};
    // Resumed by the program from a loop callback, the body still runs as the task.
    if (!corio::current_task()) throw std::logic_error("resumed outside its task");
    co_await corio::sleep(0s);
}

corio::coro<> outer_foreign(std::coroutine_handle<>& parked) {
    foreign_sites.outer = __LINE__ + 1;
    co_await inner_foreign(parked);
}

corio::coro<> foreign_wait_program(std::string& dump) {
    std::coroutine_handle<> parked;
    corio::task<> t = corio::create_task(outer_foreign(parked), "foreign");
    while (!parked) co_await corio::sleep(1ms);
    dump = corio::format_call_graph();
    corio::get_running_loop().call_soon([&parked] { parked.resume(); });
    co_await t;
}

}  // namespace

TEST_CASE("call graph: a task waiting in another library's awaiter shows where it waits",
          "[debug][call_graph]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    std::string dump;
    corio::run(foreign_wait_program(dump));
    INFO(dump);
    CHECK(has_block(dump, {"* task 'foreign'", at(1, foreign_sites.outer, "outer_foreign"),
                           at(1, foreign_sites.inner_foreign, "inner_foreign"),
                           "    waits in another library's awaiter"}));
    CHECK(!contains(dump, ":" + std::to_string(foreign_sites.inner_sleep) + " "));
}

TEST_CASE("call graph: outside a running loop, and of a stopped loop", "[debug][call_graph]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    CHECK_THROWS_AS((void)corio::format_call_graph(), std::runtime_error);
    std::ostringstream out;
    CHECK_THROWS_AS(corio::dump_tasks(out), std::runtime_error);

    // detail::format_call_graph_of reads any loop, running or not: here one whose
    // run_until_complete returned with a task still asleep.
    auto loop = corio::new_event_loop();
    corio::task<> t = loop->create_task(outer(), "left-behind");
    loop->run_until_complete([]() -> corio::coro<> { co_await corio::sleep(0s); }());
    const std::string dump = corio::detail::format_call_graph_of(*loop);
    INFO(dump);
    CHECK(dump.starts_with("corio: 1 pending task on the "));
    CHECK(has_block(dump, {"* task 'left-behind'", at(1, lines.outer, "outer"),
                           at(1, lines.middle, "middle"), at(1, lines.inner, "inner"),
                           "    waits in corio::sleep, due in *"}));
    loop->close();
    CHECK(t.cancelled());
}

// --- dump_on_signal, in a forked child -------------------------------------------------------

struct signalled_lines {
    unsigned main = 0, reader = 0, read = 0, idle = 0;
} signal_lines;

corio::coro<std::string> read_control(int fd) {
    signal_lines.read = __LINE__ + 1;
    std::string got = co_await corio::get_running_loop().sock_recv(fd, 1);
    co_return got;
}

corio::coro<> reader_task(int fd) {
    signal_lines.reader = __LINE__ + 1;
    const std::string got = co_await read_control(fd);
    if (got != "q") throw std::runtime_error("unexpected control byte");
}

corio::coro<> idle_forever() {
    signal_lines.idle = __LINE__ + 1;
    co_await corio::sleep(1h);
}

// The child's main: two tasks wait, the parent learns the lines through `ready_fd`, sends
// SIGUSR1, and lets the reader finish by sending "q" on `control_fd`.
corio::coro<> signalled_main(int ready_fd, int control_fd) {
    corio::task<> reader = corio::create_task(reader_task(control_fd), "reader");
    corio::task<> idler = corio::create_task(idle_forever(), "idler");
    co_await corio::sleep(0s);
    const auto announce_lines = [ready_fd] {
        const std::string hello =
            std::to_string(signal_lines.main) + ' ' + std::to_string(signal_lines.reader) + ' ' +
            std::to_string(signal_lines.read) + ' ' + std::to_string(signal_lines.idle) + '\n';
        if (::write(ready_fd, hello.data(), hello.size()) < 0) throw std::runtime_error("write");
    };
    signal_lines.main = __LINE__ + 2;
    announce_lines();
    co_await reader;
}

TEST_CASE("dump_on_signal: SIGUSR1 makes a running program print its call graph to stderr",
          "[debug][call_graph][signal]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    fd_pair err, ready, control;
    REQUIRE(::pipe2(err.fds, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(ready.fds, O_CLOEXEC) == 0);
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, control.fds) == 0);
    const int child_control = control.fds[1];

    child_process child([&] {
        if (::dup2(err.fds[1], STDERR_FILENO) < 0) return 98;
        corio::run_options options;
        options.dump_on_signal = SIGUSR1;
        corio::run(signalled_main(ready.fds[1], child_control), options);
        return 0;
    });
    fd_pair::close_one(err.fds[1]);
    fd_pair::close_one(ready.fds[1]);
    fd_pair::close_one(control.fds[1]);

    const std::string hello =
        read_until(ready.fds[0], [](const std::string& t) { return t.ends_with('\n'); });
    REQUIRE(hello.ends_with('\n'));
    unsigned main_line = 0, reader_line = 0, read_line = 0, idle_line = 0;
    std::istringstream(hello) >> main_line >> reader_line >> read_line >> idle_line;
    REQUIRE(idle_line != 0);

    REQUIRE(::kill(child.pid(), SIGUSR1) == 0);
    const std::string dump = read_until(err.fds[0], [](const std::string& t) {
        return contains(t, "* task 'idler'") && contains(t, "waits in corio::sleep");
    });
    // Done looking: the reader gets its byte, the main task ends, and so does the child.
    REQUIRE(::write(control.fds[0], "q", 1) == 1);
    const std::optional<int> status = child.wait(10s);
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);

    INFO(dump);
    CHECK(dump.starts_with("corio: 3 pending tasks on the "));
    CHECK(has_block(dump, {"* task 'Task-1'", at(1, main_line, "signalled_main"),
                           "    awaits task 'reader'", "    * task 'reader'",
                           at(2, reader_line, "reader_task"), at(2, read_line, "read_control"),
                           "        at *",  // corio's own sock_recv
                           "        waits in I/O recv on fd " + std::to_string(child_control)}));
    CHECK(has_block(dump, {"* task 'idler'", at(1, idle_line, "idle_forever"),
                           "    waits in corio::sleep, due in *"}));
}

}  // namespace
