// 20_why_stuck: a program that hangs on purpose, and three ways to see why.
//
// Beyond the note. Two peers shake hands, but each waits for the other's greeting before it
// sends its own; and a printer waits for pages on a queue that nobody fills. No task can ever
// run again, and a program like this just sits there, using no CPU, saying nothing. corio can
// show what every task is doing:
//
// 1. `corio::format_call_graph()` (asyncio 3.14's `format_call_graph`, for every task): each
//    pending task with the `file:line` it waits at, outermost coroutine first, what it waits
//    for, and the tasks it awaits shown under it. Here a watchdog task prints it after 100 ms.
//    `corio::dump_tasks()` writes the same to std::cerr.
// 2. `corio::run(main, {.dump_on_signal = SIGUSR1})`: the same dump, on stderr, whenever the
//    process receives SIGUSR1; `kill -USR1 <pid>` on a program stuck in production. Here the
//    program sends the signal to itself.
// 3. `corio::run(main, {.detect_deadlock = true})` (on by default in debug mode, `.debug = true`
//    or `CORIO_DEBUG=1`): once no task can run and nothing (a timer, I/O, an executor job, a
//    signal handler) could wake one, `run` throws `corio::deadlock_error`, whose `what()` names
//    each waiting task and what it waits on, instead of hanging forever. Parts 2 and 3 add the
//    call graph because one file of the program includes <corio/debug/report_call_graphs.hpp>.
//
// The program ends by itself: parts 1 and 2 cancel the stuck tasks once they have looked, and
// part 3 ends with the error.

#include <corio/corio.hpp>
#include <corio/debug/report_call_graphs.hpp>  // in one file: the call graph in the reports

#include <chrono>
#include <csignal>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
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

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// --- the stuck program -----------------------------------------------------------------------

enum class side { client, server };

// What each side says first.
struct greetings {
    corio::future<std::string> from_client;
    corio::future<std::string> from_server;
};

corio::coro<std::string> wait_for_greeting(greetings& g, side from) {
    co_return co_await (from == side::client ? g.from_client : g.from_server);
}

// The bug: each side waits for the other's greeting before it sends its own.
corio::coro<> peer(side me, greetings& g) {
    const side other = me == side::client ? side::server : side::client;
    const std::string heard = co_await wait_for_greeting(g, other);
    (me == side::client ? g.from_client : g.from_server).set_result("hello");
}

corio::coro<> handshake() {
    corio::event_loop& loop = corio::get_running_loop();
    greetings g{loop.create_future<std::string>(), loop.create_future<std::string>()};
    corio::task<> client = corio::create_task(peer(side::client, g), "client");
    corio::task<> server = corio::create_task(peer(side::server, g), "server");
    co_await corio::gather(client, server);
}

// Prints the pages it is given; the second bug: nobody ever puts a page in `pages`.
corio::coro<> printer(corio::queue<int>& pages) {
    for (;;) {
        const int page = co_await pages.get();
        std::cout << "printing page " << page << '\n';
    }
}

// Cancels the stuck tasks and waits until they are gone.
corio::coro<> unstick(std::vector<corio::task<>> stuck) {
    for (auto& t : stuck) t.cancel();
    co_await corio::wait(stuck);
}

// --- 1. the call graph, from a watchdog ----------------------------------------------------

corio::coro<> with_watchdog(corio::queue<int>& pages) {
    corio::task<> print = corio::create_task(printer(pages), "printer");
    corio::task<> shake = corio::create_task(handshake(), "handshake");

    co_await corio::sleep(100ms);  // the watchdog: the handshake takes a millisecond at most
    const std::string graph = corio::format_call_graph();
    std::cout << graph;

    expect(contains(graph, "* task 'handshake'") && contains(graph, "* task 'client'") &&
               contains(graph, "* task 'server'") && contains(graph, "* task 'printer'"),
           "the call graph names every pending task");
    expect(contains(graph, "awaits gather of 2 pending"), "the gather is shown");
    expect(contains(graph, "    * task 'client'"), "the client is shown under the handshake");
    expect(contains(graph, "waits in corio::queue::get"), "the printer waits on the queue");
    expect(contains(graph, "20_why_stuck.cpp:"), "the source lines are shown");
    std::vector<corio::task<>> stuck{shake, print};  // g++ 12: no braced list next to co_await
    co_await unstick(std::move(stuck));
}

// --- 2. the same dump on SIGUSR1 -----------------------------------------------------------

corio::coro<> with_signal(corio::queue<int>& pages) {
    corio::task<> print = corio::create_task(printer(pages), "printer");
    corio::task<> shake = corio::create_task(handshake(), "handshake");
    co_await corio::sleep(100ms);
    std::cout << "sending SIGUSR1 to process " << ::getpid() << " (kill -USR1 " << ::getpid()
              << "); the dump goes to stderr:" << std::endl;
    ::kill(::getpid(), SIGUSR1);
    co_await corio::sleep(10ms);  // the loop writes the dump at its next turn
    std::vector<corio::task<>> stuck{shake, print};
    co_await unstick(std::move(stuck));
}

// --- 3. the deadlock report ----------------------------------------------------------------

corio::coro<> stuck_main(corio::queue<int>& pages) {
    corio::task<> print = corio::create_task(printer(pages), "printer");
    co_await handshake();
}

}  // namespace

int main() {
    {
        std::cout << "1. format_call_graph(), printed by a watchdog task after 100 ms:\n";
        corio::queue<int> pages;
        corio::run(with_watchdog(pages));
    }
    {
        std::cout << "\n2. run(main, {.dump_on_signal = SIGUSR1}):\n";
        corio::queue<int> pages;
        corio::run(with_signal(pages), {.dump_on_signal = SIGUSR1});
    }
    {
        std::cout << "\n3. run(main, {.detect_deadlock = true}):\n";
        corio::queue<int> pages;
        bool reported = false;
        try {
            corio::run(stuck_main(pages), {.detect_deadlock = true});
        } catch (const corio::deadlock_error& e) {
            reported = true;
            const std::string report = e.what();
            std::cout << "corio::deadlock_error: " << report;
            expect(contains(report, "task 'client' awaits a future") &&
                       contains(report, "task 'server' awaits a future"),
                   "the report names both peers and what they wait on");
            expect(contains(report, "task 'printer' waits in corio::queue::get"),
                   "the report names the printer");
        }
        expect(reported, "run ends with deadlock_error instead of hanging");
    }
}
