// Seeing inside a running program (issue 8): the call graph of the loop's tasks
// (format_call_graph, dump_tasks, run's dump_on_signal, in a forked child), debug mode (slow
// callbacks and task steps, exceptions never retrieved and tasks destroyed while pending with
// their creation site, coroutines never awaited, calls from the wrong thread, CORIO_DEBUG),
// deadlock detection (what it reports, no false report while a timer, an executor job, I/O or a
// signal handler could still wake a task, none hidden by a dropped child's reaper, off by default) and virtual time (wait_for with a
// one-hour timeout in microseconds, the order and the virtual times of events, executor jobs
// holding time still, corio::advance). CTest runs it once per backend (CORIO_BACKEND).
#include <corio/debug/call_graph.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/sync/event.hpp>
#include <corio/event_loop.hpp>
#include <corio/executor.hpp>
#include <corio/future.hpp>
#include <corio/gather.hpp>
#include <corio/sync/lock.hpp>
#include <corio/system/process.hpp>
#include <corio/sync/queue.hpp>
#include <corio/run.hpp>
#include <corio/system/signals.hpp>
#include <corio/sleep.hpp>
#include <corio/net/sock.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>
#include <corio/debug/virtual_time.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::contains;
using corio_test::frame_leak_check;

namespace {

// --- plumbing ------------------------------------------------------------------------------

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// Whether `actual` is the dump line `expected` describes: the same text, except that
// - when `expected` ends with '*', any line that starts with the rest matches;
// - in a site line ("at file:line in f"), g++ follows the function's name with its parameters
//   and sometimes precedes it with its namespace ("{anonymous}::f(int)"), clang gives "f".
bool line_matches(const std::string& actual, const std::string& expected) {
    if (!expected.empty() && expected.back() == '*') {
        return actual.starts_with(std::string_view(expected).substr(0, expected.size() - 1));
    }
    if (actual == expected) return true;
    const std::size_t in = expected.rfind(" in ");
    if (in == std::string::npos || !contains(expected, " at ")) return false;
    const std::string_view head = std::string_view(expected).substr(0, in + 4);
    const std::string_view function = std::string_view(expected).substr(in + 4);
    if (!actual.starts_with(head)) return false;
    std::string_view name = std::string_view(actual).substr(head.size());
    name = name.substr(0, name.find('('));
    if (name == function) return true;
    return name.size() > function.size() + 2 && name.ends_with(function) &&
           name.substr(0, name.size() - function.size()).ends_with("::");
}

// Whether `text` holds the lines `expected` one after the other (see `line_matches`).
bool has_block(const std::string& text, const std::vector<std::string>& expected) {
    const std::vector<std::string> lines = split_lines(text);
    if (expected.empty()) return true;
    for (std::size_t first = 0; first + expected.size() <= lines.size(); ++first) {
        bool all = true;
        for (std::size_t i = 0; i < expected.size() && all; ++i) {
            all = line_matches(lines[first + i], expected[i]);
        }
        if (all) return true;
    }
    return false;
}

// The dump line of a site of this file: "<indent><what> <this file>:<line> in <function>".
std::string site_line(int depth, const char* what, unsigned line, const std::string& function) {
    return std::string(static_cast<std::size_t>(depth) * 4, ' ') + what + ' ' + __FILE__ + ':' +
           std::to_string(line) + " in " + function;
}

// A suspension point: "<indent>at <this file>:<line> in <function>".
std::string at(int depth, unsigned line, const std::string& function) {
    return site_line(depth, "at", line, function);
}

// Sets (or, with nullptr, unsets) an environment variable for the duration of a test case.
class scoped_env {
public:
    scoped_env(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) previous_ = old;
        if (value != nullptr) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;
    ~scoped_env() {
        if (previous_) {
            ::setenv(name_, previous_->c_str(), 1);
        } else {
            ::unsetenv(name_);
        }
    }

private:
    const char* name_;
    std::optional<std::string> previous_;
};

// Keeps a test whose loop might wait forever from hanging: a thread (which deadlock detection
// cannot see) stops the loop after 10 s, so that run_until_complete fails instead.
class stall_guard {
public:
    explicit stall_guard(corio::event_loop& loop)
        : thread_([this, &loop] {
              std::unique_lock lock(mutex_);
              if (!cv_.wait_for(lock, 10s, [this] { return done_; })) {
                  loop.call_soon_threadsafe([&loop] { loop.stop(); });
              }
          }) {}
    stall_guard(const stall_guard&) = delete;
    stall_guard& operator=(const stall_guard&) = delete;
    ~stall_guard() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

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

// A forked child running `body`, which exits with what `body` returns (99 if it throws); it is
// killed and reaped if still there when the object goes.
class child_process {
public:
    explicit child_process(const std::function<int()>& body) {
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            // Catch2's handlers of fatal signals would report the child as a failed run.
            for (int signo : {SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE, SIGTERM, SIGINT}) {
                ::signal(signo, SIG_DFL);
            }
            int code = 99;
            try {
                code = body();
            } catch (...) {
            }
            ::_exit(code);
        }
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        if (!reaped_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    /// The child's wait status once it has ended, or nothing if it is still there after `limit`.
    std::optional<int> wait(std::chrono::milliseconds limit) {
        int status = 0;
        for (auto waited = 0ms;; waited += 5ms) {
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                reaped_ = true;
                return status;
            }
            if (waited > limit) return std::nullopt;
            std::this_thread::sleep_for(5ms);
        }
    }

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

// Reads `fd` until `done(text)` holds, the end of the stream, or 10 s.
std::string read_until(int fd, const std::function<bool(const std::string&)>& done) {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done(text)) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) break;
        pollfd p{fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) break;
        char buffer[4096];
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
    }
    return text;
}

struct fd_pair {
    int fds[2] = {-1, -1};
    fd_pair(const fd_pair&) = delete;
    fd_pair& operator=(const fd_pair&) = delete;
    fd_pair() = default;
    ~fd_pair() {
        for (int fd : fds) close_one(fd);
    }
    static void close_one(int& fd) {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

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
    CHECK(has_block(dump, {"* task 'outer'", at(1, lines.outer, "outer"),
                           at(1, lines.middle, "middle"), at(1, lines.inner, "inner"),
                           "    waits in corio::sleep, due in 3600.000 s"}));

    // A gather of two children: the children are shown under the task that awaits them.
    CHECK(has_block(dump, {"* task 'parent'", at(1, lines.gather, "parent"),
                           "    awaits gather of 2 pending", "    * task 'child-a'",
                           at(2, lines.child, "child"),
                           "        waits in corio::sleep, due in 7200.000 s",
                           "    * task 'child-b'", at(2, lines.child, "child"),
                           "        waits in corio::sleep, due in 10800.000 s"}));
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
        CHECK(has_block(dump, {"* task 'future-waiter'",
                               at(1, lines.future_waiter, "future_waiter"),
                               "    awaits a future"}));
        // sleep(0) leaves nothing to withdraw: the task is simply in the ready queue.
        CHECK(has_block(dump, {"* task 'yielder'", at(1, lines.yielder, "yielder"),
                               "    is ready to run"}));
        // A task not started yet has no await chain; in debug mode, where it was created.
        if (debug) {
            CHECK(has_block(dump, {"* task 'fresh'",
                                   site_line(1, "created at", lines.created, "states_program"),
                                   "    has not started"}));
        } else {
            CHECK(has_block(dump, {"* task 'fresh'", "    has not started"}));
        }
    }
}

namespace {

// An awaiter of another library: it neither tells corio's task machinery that it suspends nor
// where; the program resumes the coroutine itself.
struct foreign_awaiter {
    std::coroutine_handle<>* parked;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const noexcept { *parked = h; }
    void await_resume() const noexcept {}
};

struct foreign_lines {
    unsigned outer = 0;
    unsigned inner_sleep = 0;
} foreign_sites;

corio::coro<> inner_foreign(std::coroutine_handle<>& parked) {
    foreign_sites.inner_sleep = __LINE__ + 1;
    co_await corio::sleep(1ms);  // a corio wait first: the chain it left must not stay behind
    co_await foreign_awaiter{&parked};
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

} // namespace

TEST_CASE("call graph: a task waiting in another library's awaiter shows its body only",
          "[debug][call_graph]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    std::string dump;
    corio::run(foreign_wait_program(dump));
    INFO(dump);
    CHECK(has_block(dump, {"* task 'foreign'", at(1, foreign_sites.outer, "outer_foreign"),
                           "    waits on something corio cannot see"}));
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
    signal_lines.main = __LINE__ + 6;
    const std::string hello = std::to_string(signal_lines.main) + ' ' +
                              std::to_string(signal_lines.reader) + ' ' +
                              std::to_string(signal_lines.read) + ' ' +
                              std::to_string(signal_lines.idle) + '\n';
    if (::write(ready_fd, hello.data(), hello.size()) < 0) throw std::runtime_error("write");
    co_await reader;
}

TEST_CASE("dump_on_signal: SIGUSR1 makes a running program print its call graph to stderr",
          "[debug][call_graph][signal]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    fd_pair err, ready, control;
    REQUIRE(::pipe2(err.fds, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(ready.fds, O_CLOEXEC) == 0);
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, control.fds) ==
            0);
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

// --- debug mode ----------------------------------------------------------------------------

struct debug_sites {
    unsigned blocker = 0, doomed = 0, pending = 0, never_first = 0, never_last = 0;
} debug_lines;

corio::coro<> blocker() {
    debug_lines.blocker = __LINE__ + 1;
    co_await corio::sleep(0s);
    std::this_thread::sleep_for(200ms);  // a blocking call in a task: the loop stands still
}

corio::coro<> fail_soon() {
    co_await corio::sleep(0s);
    throw std::runtime_error("boom");
}

corio::coro<int> never_run() {
    debug_lines.never_last = __LINE__ + 1;
    co_return 1;
}

const std::string* find_message(const corio_test::exception_log& log, std::string_view part) {
    for (const auto& context : log.contexts()) {
        if (contains(context.message, part)) return &context.message;
    }
    return nullptr;
}

std::string all_messages(const corio_test::exception_log& log) {
    std::string text;
    for (const auto& context : log.contexts()) text += context.message + '\n';
    return text;
}

// Installs `log` on the running loop for a test that is not about slow steps: on a loaded
// machine any step may take long, and its report would get in the way.
void install_quiet(corio_test::exception_log& log, corio::event_loop& loop) {
    log.install(loop);
    loop.set_slow_callback_duration(std::chrono::hours(1));
}

// "... took 0.201 seconds" -> 0.201
double seconds_in(const std::string& message) {
    const std::size_t took = message.rfind(" took ");
    if (took == std::string::npos) return -1;
    return std::stod(message.substr(took + 6));
}

corio::coro<> slow_program(corio_test::exception_log& log) {
    corio::event_loop& loop = corio::get_running_loop();
    log.install(loop);
    loop.call_soon([] { std::this_thread::sleep_for(200ms); });
    loop.call_soon([] {});  // a fast one
    co_await corio::sleep(0s);
    corio::task<> t = corio::create_task(blocker(), "blocker");
    co_await t;
}

TEST_CASE("debug mode: a 200 ms blocking callback and a slow task step are reported",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio_test::exception_log log;
    corio::run_options options;
    options.debug = true;
    corio::run(slow_program(log), options);
    INFO(all_messages(log));
    // (On a loaded machine other steps may be reported too: look for these two.)
    const std::string* callback = nullptr;
    for (const auto& context : log.contexts()) {
        if (context.message.starts_with("Executing a callback took ") &&
            seconds_in(context.message) >= 0.2) {
            callback = &context.message;
        }
    }
    REQUIRE(callback != nullptr);
    CHECK(callback->ends_with(" seconds"));

    // The task step names the task and where it resumed.
    const std::string* step = find_message(log, "Executing task 'blocker' (resumed at ");
    REQUIRE(step != nullptr);
    CHECK(contains(*step, std::string("(resumed at ") + __FILE__ + ':' +
                              std::to_string(debug_lines.blocker) + " in blocker"));
    CHECK(seconds_in(*step) >= 0.2);
}

corio::coro<> threshold_program(corio_test::exception_log& log, bool expect_debug) {
    corio::event_loop& loop = corio::get_running_loop();
    log.install(loop);
    if (loop.get_debug() != expect_debug) throw std::logic_error("debug mode not as asked");
    CHECK(loop.slow_callback_duration() == std::chrono::milliseconds(100));
    loop.set_slow_callback_duration(10ms);
    CHECK(loop.slow_callback_duration() == std::chrono::milliseconds(10));
    loop.call_soon([] { std::this_thread::sleep_for(30ms); });
    co_await corio::sleep(0s);
    co_await corio::sleep(0s);
}

TEST_CASE("debug mode: the slow threshold is adjustable, and nothing is timed outside debug mode",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const scoped_env no_env("CORIO_DEBUG", nullptr);
    for (const bool debug : {true, false}) {
        corio_test::exception_log log;
        corio::run_options options;
        options.debug = debug;
        corio::run(threshold_program(log, debug), options);
        INFO("debug " << debug << ": " << all_messages(log));
        if (debug) {
            // The 30 ms callback is reported (other steps may be too, on a loaded machine).
            bool found = false;
            for (const auto& context : log.contexts()) {
                found = found || (context.message.starts_with("Executing a callback took ") &&
                                  seconds_in(context.message) >= 0.03);
            }
            CHECK(found);
        } else {
            CHECK(log.size() == 0);
        }
    }
}

corio::coro<> unretrieved_program(corio_test::exception_log& log) {
    install_quiet(log, corio::get_running_loop());
    debug_lines.doomed = __LINE__ + 1;
    (void)corio::create_task(fail_soon(), "doomed");  // the handle is dropped at once
    co_await corio_test::yield(3);
}

TEST_CASE("debug mode: an exception never retrieved is reported with the task's creation site",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const scoped_env no_env("CORIO_DEBUG", nullptr);
    for (const bool debug : {true, false}) {
        corio_test::exception_log log;
        corio::run_options options;
        options.debug = debug;
        corio::run(unretrieved_program(log), options);
        INFO("debug " << debug << ": " << all_messages(log));
        REQUIRE(log.size() == 1);
        const corio::exception_context& context = log.contexts()[0];
        CHECK(context.task_name == "doomed");
        CHECK(corio_test::what_of(context.exception) == "boom");
        if (debug) {
            CHECK(context.message == std::string("Task exception was never retrieved (created at ") +
                                         __FILE__ + ':' + std::to_string(debug_lines.doomed) +
                                         ')');
        } else {
            // Outside debug mode the creation site is not kept.
            CHECK(context.message == "Task exception was never retrieved");
        }
    }
}

corio::coro<> short_nap() { co_await corio::sleep(1ms); }

TEST_CASE("debug mode: a task destroyed while pending is reported with its creation site",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    corio_test::exception_log log;
    corio::run_options options;
    options.debug = true;
    auto loop = corio::new_event_loop(options);
    install_quiet(log, *loop);
    debug_lines.pending = __LINE__ + 1;
    corio::task<> t = loop->create_task(outer(), "abandoned");
    loop->run_until_complete(short_nap());
    loop->close();  // the task never finished
    INFO(all_messages(log));
    REQUIRE(log.size() == 1);
    CHECK(log.contexts()[0].task_name == "abandoned");
    CHECK(log.contexts()[0].message ==
          std::string("Task was destroyed but it is pending! (created at ") + __FILE__ + ':' +
              std::to_string(debug_lines.pending) + ')');
    CHECK(t.cancelled());
}

corio::coro<> never_awaited_program(corio_test::exception_log& log) {
    install_quiet(log, corio::get_running_loop());
    {
        corio::coro<int> dropped = never_run();  // made, never awaited
    }
    const int awaited = co_await never_run();  // awaited: not reported
    corio::task<int> t = corio::create_task(never_run());  // a task's body: not reported
    const int from_task = co_await t;
    if (awaited + from_task != 2) throw std::logic_error("never_run returns 1");
}

TEST_CASE("debug mode: a coroutine never awaited is reported", "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    const scoped_env no_env("CORIO_DEBUG", nullptr);
    for (const bool debug : {true, false}) {
        corio_test::exception_log log;
        corio::run_options options;
        options.debug = debug;
        corio::run(never_awaited_program(log), options);
        INFO("debug " << debug << ": " << all_messages(log));
        if (!debug) {
            CHECK(log.size() == 0);
            continue;
        }
        REQUIRE(log.size() == 1);
        const std::string& message = log.contexts()[0].message;
        // "coroutine <function> (<file>:<line>) was never awaited": g++ names the coroutine's
        // closing line, clang its first one.
        CHECK(message.starts_with("coroutine "));
        CHECK(contains(message, "never_run"));
        CHECK(message.ends_with(") was never awaited"));
        const std::size_t site = message.find(std::string(" (") + __FILE__ + ':');
        REQUIRE(site != std::string::npos);
        const unsigned line = static_cast<unsigned>(
            std::stoul(message.substr(site + 3 + std::string_view(__FILE__).size())));
        CHECK(line + 2 >= debug_lines.never_last);
        CHECK(line <= debug_lines.never_last + 1);
    }
}

corio::coro<int> one() { co_return 1; }

corio::coro<> wrong_thread_program(std::vector<std::string>& errors, bool& threadsafe_ran) {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> posted = loop.create_future<int>();
    std::thread intruder([&] {
        auto attempt = [&](const std::function<void()>& call) {
            try {
                call();
                errors.emplace_back("<no error>");
            } catch (const std::runtime_error& e) {
                errors.emplace_back(e.what());
            }
        };
        attempt([&] { loop.call_soon([] {}); });
        attempt([&] { loop.call_later(1s, [] {}); });
        attempt([&] { loop.call_at(loop.time(), [] {}); });
        attempt([&] { (void)loop.create_task(one()); });
        attempt([&] { (void)loop.create_future<int>(); });
        // The one thread-safe member works.
        loop.call_soon_threadsafe([posted]() mutable { posted.set_result(1); });
    });
    intruder.join();
    threadsafe_ran = co_await corio::wait_for(posted, 10s) == 1;
    // On the loop's own thread the same calls are fine.
    corio::callback_handle h = loop.call_soon([] {});
    (void)h;
    const int value = co_await loop.create_task(one());
    if (value != 1) throw std::logic_error("one() returns 1");
}

TEST_CASE("debug mode: loop methods called from another thread are refused",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    std::vector<std::string> errors;
    bool threadsafe_ran = false;
    corio::run_options options;
    options.debug = true;
    corio::run(wrong_thread_program(errors, threadsafe_ran), options);
    REQUIRE(errors.size() == 5);
    const char* const names[] = {"call_soon", "call_at", "call_at", "create_task",
                                 "create_future"};
    for (std::size_t i = 0; i < errors.size(); ++i) {
        INFO(errors[i]);
        CHECK(errors[i] == std::string("Non-thread-safe operation ") + names[i] +
                               " invoked on an event loop other than the current one");
    }
    CHECK(threadsafe_ran);
}

TEST_CASE("debug mode: CORIO_DEBUG=1 turns it on, and it turns deadlock detection on",
          "[debug][debug_mode]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    {
        const scoped_env env("CORIO_DEBUG", "1");
        auto loop = corio::new_event_loop();
        CHECK(loop->get_debug());
        CHECK(loop->get_detect_deadlock());
    }
    {
        const scoped_env env("CORIO_DEBUG", "0");
        auto loop = corio::new_event_loop();
        CHECK_FALSE(loop->get_debug());
        CHECK_FALSE(loop->get_detect_deadlock());
    }
    {
        const scoped_env env("CORIO_DEBUG", nullptr);
        auto loop = corio::new_event_loop();
        CHECK_FALSE(loop->get_debug());
        loop->set_debug(true);
        CHECK(loop->get_debug());
        CHECK(loop->get_detect_deadlock());
        loop->set_detect_deadlock(false);  // an explicit choice afterwards wins
        CHECK_FALSE(loop->get_detect_deadlock());
        CHECK(loop->get_debug());
    }
}

// --- deadlock detection --------------------------------------------------------------------

struct deadlock_sites {
    unsigned wait_other = 0;
} deadlock_lines;

corio::coro<> wait_then_set(corio::future<int> wait_on, corio::future<int> to_set) {
    deadlock_lines.wait_other = __LINE__ + 1;
    const int value = co_await wait_on;
    to_set.set_result(value);
}

// Alice waits for Bob's future, Bob for Alice's.
corio::coro<> two_waiting_on_each_other() {
    corio::event_loop& loop = corio::get_running_loop();
    corio::future<int> alice_done = loop.create_future<int>();
    corio::future<int> bob_done = loop.create_future<int>();
    corio::task<> alice = corio::create_task(wait_then_set(bob_done, alice_done), "alice");
    corio::task<> bob = corio::create_task(wait_then_set(alice_done, bob_done), "bob");
    co_await corio::gather(alice, bob);
}

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
    CHECK(has_block(report, {"    * task 'alice'", at(2, deadlock_lines.wait_other,
                                                         "wait_then_set"),
                             "        awaits a future"}));
    CHECK(has_block(report, {"    * task 'bob'", at(2, deadlock_lines.wait_other,
                                                       "wait_then_set"),
                             "        awaits a future"}));
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
corio::coro<> wait_on_lock(corio::lock& lock) {
    auto held = co_await lock.scoped();
}

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
    const std::string report = deadlock_report(waits_beside_a_dropped_child(child_pid), detecting());
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

// --- virtual time --------------------------------------------------------------------------

corio::coro<int> answer_after(std::chrono::minutes delay, int value) {
    co_await corio::sleep(delay);
    co_return value;
}

using events = std::vector<std::pair<std::string, corio::event_loop::duration>>;

corio::coro<> sleep_and_record(std::string name, corio::event_loop::duration delay,
                               corio::event_loop::time_point start, events& log) {
    co_await corio::sleep(delay);
    log.emplace_back(std::move(name), corio::get_running_loop().time() - start);
}

corio::coro<> virtual_wait_for_program(events& log) {
    corio::event_loop& loop = corio::get_running_loop();
    if (!loop.virtual_time()) throw std::logic_error("not on virtual time");
    const auto start = loop.time();

    // Within the hour: the result, 59 minutes later.
    const int value = co_await corio::wait_for(answer_after(59min, 42), 1h);
    log.emplace_back("answer " + std::to_string(value), loop.time() - start);

    // Past the hour: timeout_error, exactly one hour later.
    const auto before = loop.time();
    try {
        (void)co_await corio::wait_for(answer_after(120min, 0), 1h);
        log.emplace_back("no timeout", loop.time() - before);
    } catch (const corio::timeout_error&) {
        log.emplace_back("timeout", loop.time() - before);
    }

    // Sleeps of different lengths, started together, end in the order of their lengths.
    const auto now = loop.time();
    std::vector<corio::task<>> sleepers;
    sleepers.push_back(corio::create_task(sleep_and_record("30 min", 30min, now, log)));
    sleepers.push_back(corio::create_task(sleep_and_record("10 s", 10s, now, log)));
    sleepers.push_back(corio::create_task(sleep_and_record("1 h", 1h, now, log)));
    sleepers.push_back(corio::create_task(sleep_and_record("250 ms", 250ms, now, log)));
    co_await corio::wait_for(corio::gather(sleepers), 2h);

    // One task's own sleeps move the clock by exactly what they slept.
    const auto t0 = loop.time();
    co_await corio::sleep(1s);
    log.emplace_back("slept 1 s", loop.time() - t0);
    co_await corio::sleep(1h);
    log.emplace_back("slept 1 h more", loop.time() - t0);
    co_await corio::sleep(1ns);
    log.emplace_back("slept 1 ns more", loop.time() - t0);
}

TEST_CASE("virtual time: wait_for with a one-hour timeout takes no real time, events in order",
          "[debug][virtual_time]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    events log;
    corio::run_options options;
    options.virtual_time = true;
    const corio_test::stopwatch watch;
    corio::run(virtual_wait_for_program(log), options);
    CHECK(watch.elapsed() < 1s);

    const events expected = {
        {"answer 42", 59min},
        {"timeout", 1h},
        {"250 ms", 250ms},
        {"10 s", 10s},
        {"30 min", 30min},
        {"1 h", 1h},
        {"slept 1 s", 1s},
        {"slept 1 h more", 1h + 1s},
        {"slept 1 ns more", 1h + 1s + 1ns},
    };
    REQUIRE(log.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("event " << i << ": " << log[i].first);
        CHECK(log[i].first == expected[i].first);
        CHECK(log[i].second == expected[i].second);
    }
}

corio::coro<> executor_holds_time(events& log) {
    corio::event_loop& loop = corio::get_running_loop();
    const auto start = loop.time();
    corio::task<> timer = corio::create_task(sleep_and_record("timer 1 ms", 1ms, start, log));
    const int value = co_await corio::to_thread([] {
        std::this_thread::sleep_for(50ms);
        return 5;
    });
    log.emplace_back("job " + std::to_string(value), loop.time() - start);
    co_await timer;
}

TEST_CASE("virtual time: time stands still while an executor job runs", "[debug][virtual_time]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    events log;
    corio::run_options options;
    options.virtual_time = true;
    corio::run(executor_holds_time(log), options);
    // The job takes 50 ms of real time; the 1 ms timer does not jump ahead of it.
    REQUIRE(log.size() == 2);
    CHECK(log[0].first == "job 5");
    CHECK(log[0].second == corio::event_loop::duration::zero());
    CHECK(log[1].first == "timer 1 ms");
    CHECK(log[1].second == 1ms);
}

corio::coro<> advance_program(events& log) {
    corio::event_loop& loop = corio::get_running_loop();
    const auto start = loop.time();
    std::vector<corio::task<>> sleepers;
    for (const auto delay : {5s, 7s, 9s, 8s}) {
        sleepers.push_back(corio::create_task(
            sleep_and_record(std::to_string(delay.count()) + " s", delay, start, log)));
    }
    corio::task<> hour = corio::create_task(sleep_and_record("1 h", 1h, start, log));
    co_await corio::sleep(0s);  // they start, and their timers are set

    co_await corio::advance(3s);
    log.emplace_back("advanced to 3 s", loop.time() - start);
    co_await corio::advance(2s);  // the 5 s timer is due
    log.emplace_back("advanced to 5 s", loop.time() - start);
    co_await corio::advance(2s);  // the 7 s timer
    log.emplace_back("advanced to 7 s", loop.time() - start);
    co_await corio::advance(3s);  // both the 8 s and the 9 s timers, in their order
    log.emplace_back("advanced to 10 s", loop.time() - start);
    co_await corio::advance(0s);
    log.emplace_back("advanced 0 s", loop.time() - start);
    if (hour.done()) throw std::logic_error("the 1 h timer fired early");
    hour.cancel();
    co_await corio::gather(sleepers);

    // advance refuses to go back in time.
    try {
        co_await corio::advance(-1s);
        log.emplace_back("went back", loop.time() - start);
    } catch (const std::invalid_argument&) {
        log.emplace_back("refused -1 s", loop.time() - start);
    }
}

TEST_CASE("virtual time: advance(d) moves the clock and fires the timers due",
          "[debug][virtual_time]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    events log;
    corio::run_options options;
    options.virtual_time = true;
    corio::run(advance_program(log), options);
    // A timer fires at the virtual time advance() moved to, and its task runs before advance()
    // returns.
    const events expected = {
        {"advanced to 3 s", 3s}, {"5 s", 5s},  {"advanced to 5 s", 5s},
        {"7 s", 7s},             {"advanced to 7 s", 7s},
        {"8 s", 10s},            {"9 s", 10s}, {"advanced to 10 s", 10s},
        {"advanced 0 s", 10s},   {"refused -1 s", 10s},
    };
    INFO(log.size() << " events");
    for (std::size_t i = 0; i < std::min(log.size(), expected.size()); ++i) {
        INFO("event " << i << ": " << log[i].first);
        CHECK(log[i].first == expected[i].first);
        CHECK(log[i].second == expected[i].second);
    }
    CHECK(log.size() == expected.size());
}

corio::coro<> advance_on_real_time(bool& refused) {
    try {
        co_await corio::advance(1s);
    } catch (const std::logic_error&) {
        refused = true;
    }
}

TEST_CASE("virtual time: switching it on and off, and advance on a real clock",
          "[debug][virtual_time]") {
    frame_leak_check leaks;
    CORIO_REQUIRE_BACKEND();
    bool refused = false;
    corio_test::run_test(advance_on_real_time(refused));
    CHECK(refused);

    corio::run_options options;
    options.virtual_time = true;
    auto loop = corio::new_event_loop(options);
    CHECK(loop->virtual_time());
    // The virtual clock stands still outside the loop too.
    const auto t0 = loop->time();
    std::this_thread::sleep_for(2ms);
    CHECK(loop->time() == t0);
    loop->advance_time(90min);
    CHECK(loop->time() - t0 == 90min);
    CHECK_THROWS_AS(loop->advance_time(-1ns), std::invalid_argument);

    // Not while timers are pending, nor while the loop runs.
    corio::timer_handle pending = loop->call_later(1s, [] {});
    CHECK_THROWS_AS(loop->set_virtual_time(false), std::logic_error);
    pending.cancel();
    bool refused_running = false;
    loop->run_until_complete([](bool& flag) -> corio::coro<> {
        try {
            corio::get_running_loop().set_virtual_time(false);
        } catch (const std::logic_error&) {
            flag = true;
        }
        co_return;
    }(refused_running));
    CHECK(refused_running);
    loop->set_virtual_time(false);
    CHECK_FALSE(loop->virtual_time());
    CHECK_THROWS_AS(loop->advance_time(1s), std::logic_error);
    loop->close();
}

} // namespace
