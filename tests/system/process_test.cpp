// Subprocesses (include/corio/system/process.hpp): echo and cat round trips, 16 MiB through cat
// without deadlock (and 16 MiB back on each of stdout and stderr), exit codes, kill / terminate and
// the negative return code, communicate under wait_for then kill, a missing program
// (std::system_error, not exit 127), cwd and env, stderr to stdout, devnull, use_fd, the shell,
// 200 concurrent children with no zombie and no descriptor left, a child destroyed while it runs
// reaped in the background (while the loop runs and after it closed), children never inheriting
// the loop's descriptors nor its blocked signals. CTest runs it once per backend.
#include <corio/system/process.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/io_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/executor.hpp>
#include <corio/gather.hpp>
#include <corio/net/sock.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/system/signals.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::first_difference;
using corio_test::frame_leak_check;
using corio_test::random_bytes;
using corio_test::stopwatch;

namespace {

// --- plumbing ------------------------------------------------------------------------------

// Runs `main` on a new loop, failing with corio::timeout_error after `limit`.
void run_within(corio::coro<> main, std::chrono::seconds limit = 20s) {
    corio::run([](corio::coro<> main, std::chrono::seconds limit) -> corio::coro<> {
        co_await corio::wait_for(std::move(main), limit);
    }(std::move(main), limit));
}

// A file of the test's own, removed at the end of the scope.
class temporary_file {
public:
    temporary_file(const std::string& content, mode_t mode) {
        char name[] = "/tmp/corio-process-test-XXXXXX";
        const int fd = ::mkstemp(name);
        REQUIRE(fd >= 0);
        path_ = name;
        REQUIRE(::write(fd, content.data(), content.size()) ==
                static_cast<ssize_t>(content.size()));
        ::fchmod(fd, mode);
        ::close(fd);
    }
    temporary_file(const temporary_file&) = delete;
    temporary_file& operator=(const temporary_file&) = delete;
    ~temporary_file() { ::unlink(path_.c_str()); }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    std::string path_;
};

// This process's open descriptors: number -> what it points at.
std::map<int, std::string> open_descriptors() {
    std::map<int, std::string> fds;
    DIR* dir = ::opendir("/proc/self/fd");
    REQUIRE(dir != nullptr);
    const int own = ::dirfd(dir);
    while (const dirent* entry = ::readdir(dir)) {
        if (entry->d_name[0] == '.') continue;
        const int fd = std::atoi(entry->d_name);
        if (fd == own) continue;
        char target[512] = {};
        const std::string link = std::string("/proc/self/fd/") + entry->d_name;
        const auto n = ::readlink(link.c_str(), target, sizeof target - 1);
        fds[fd] = n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string("?");
    }
    ::closedir(dir);
    return fds;
}

bool is_close_on_exec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// Whether `pid` is a child of ours not yet reaped (a zombie, or still running).
bool unreaped_child(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// Whether this process has any child not reaped yet.
bool any_unreaped_child() {
    siginfo_t info{};
    const int rc = ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc != 0) return false;  // ECHILD: no child at all
    return info.si_pid != 0;    // 0: children, none of them a zombie
}

// Whether `pid` has no zombie or running child left, waiting up to `limit`.
bool reaped_within(pid_t pid, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (unreaped_child(pid)) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

int error_code_of(const std::system_error& e) { return e.code().value(); }

// --- round trips ---------------------------------------------------------------------------

TEST_CASE("process: echo's output through a pipe; wait() and returncode()", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        const std::vector<std::string> args{"hello", "world"};
        corio::process p =
            co_await corio::create_subprocess_exec("echo", args, {.stdout_ = corio::pipe});
        CHECK(p.pid() > 0);
        const std::string out = co_await p.stdout_pipe().read();
        CHECK(out == "hello world\n");
        const int code = co_await p.wait();
        CHECK(code == 0);
        CHECK(p.returncode() == 0);
        // wait() again: the same answer at once.
        const int again = co_await p.wait();
        CHECK(again == 0);
    }());
}

TEST_CASE("process: a cat round trip through stdin and stdout", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        corio::process p = co_await corio::create_subprocess_exec(
            "cat", {}, {.stdin_ = corio::pipe, .stdout_ = corio::pipe});
        p.stdin_pipe().write("line one\n");
        co_await p.stdin_pipe().drain();
        const std::string first = co_await p.stdout_pipe().readline();
        CHECK(first == "line one\n");
        p.stdin_pipe().write("line two\n");
        p.stdin_pipe().close();
        const std::string rest = co_await p.stdout_pipe().read();
        CHECK(rest == "line two\n");
        const int code = co_await p.wait();
        CHECK(code == 0);
    }());
}

TEST_CASE("process: 16 MiB through cat with communicate, no deadlock", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::string data = random_bytes(16 << 20, 16);
    run_within(
        [](const std::string& data) -> corio::coro<> {
            corio::process p = co_await corio::create_subprocess_exec(
                "cat", {}, {.stdin_ = corio::pipe, .stdout_ = corio::pipe, .stderr_ = corio::pipe});
            corio::communicate_result result = co_await p.communicate(data);
            CHECK(result.out.size() == data.size());
            CHECK(first_difference(result.out, data) == -1);
            CHECK(result.err.empty());
            CHECK(p.returncode() == 0);
        }(data),
        60s);
}

TEST_CASE("process: 16 MiB in, 16 MiB back on stdout and on stderr at once", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::string data = random_bytes(16 << 20, 17);
    run_within(
        [](const std::string& data) -> corio::coro<> {
            corio::process p = co_await corio::create_subprocess_shell(
                "tee /dev/stderr",
                {.stdin_ = corio::pipe, .stdout_ = corio::pipe, .stderr_ = corio::pipe});
            auto [out, err] = co_await p.communicate(data);
            CHECK(first_difference(out, data) == -1);
            CHECK(first_difference(err, data) == -1);
            CHECK(p.returncode() == 0);
        }(data),
        60s);
}

TEST_CASE("process: 16 MiB through cat, writer and reader as two tasks on the pipes", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::string data = random_bytes(16 << 20, 18);
    run_within(
        [](const std::string& data) -> corio::coro<> {
            corio::process p = co_await corio::create_subprocess_exec(
                "cat", {}, {.stdin_ = corio::pipe, .stdout_ = corio::pipe});
            auto writer = [](corio::stream_writer& in, const std::string& data) -> corio::coro<> {
                // In pieces, each drained: the pipe holds 64 KiB, cat must read concurrently.
                for (std::size_t at = 0; at < data.size(); at += 1 << 20) {
                    in.write(std::string_view(data).substr(at, 1 << 20));
                    co_await in.drain();
                }
                in.close();
            };
            corio::task<> writing = corio::create_task(writer(p.stdin_pipe(), data));
            const std::string out = co_await p.stdout_pipe().read();
            co_await writing;
            CHECK(first_difference(out, data) == -1);
            const int code = co_await p.wait();
            CHECK(code == 0);
        }(data),
        60s);
}

// --- exit codes and signals ----------------------------------------------------------------

TEST_CASE("process: exit codes", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        corio::process t = co_await corio::create_subprocess_exec("true");
        const int t_code = co_await t.wait();
        CHECK(t_code == 0);
        corio::process f = co_await corio::create_subprocess_exec("false");
        const int f_code = co_await f.wait();
        CHECK(f_code == 1);
        for (int expected : {0, 3, 42, 255}) {
            corio::process s =
                co_await corio::create_subprocess_shell("exit " + std::to_string(expected));
            const int code = co_await s.wait();
            CHECK(code == expected);
            CHECK(s.returncode() == expected);
        }
    }());
}

TEST_CASE("process: kill, terminate and send_signal give minus the signal's number", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        const std::vector<std::string> ten{"10"};
        corio::process killed = co_await corio::create_subprocess_exec("sleep", ten);
        corio::process terminated = co_await corio::create_subprocess_exec("sleep", ten);
        corio::process signalled = co_await corio::create_subprocess_exec("sleep", ten);
        CHECK_FALSE(killed.returncode().has_value());  // running
        killed.kill();
        terminated.terminate();
        signalled.send_signal(SIGUSR1);
        const int k = co_await killed.wait();
        const int t = co_await terminated.wait();
        const int s = co_await signalled.wait();
        CHECK(k == -SIGKILL);
        CHECK(t == -SIGTERM);
        CHECK(s == -SIGUSR1);
        CHECK(killed.returncode() == -SIGKILL);
        // Signalling a child already reaped is a no-op (its pid may belong to another process).
        killed.kill();
        CHECK_NOTHROW(signalled.send_signal(SIGUSR1));
    }());
}

TEST_CASE("process: communicate under wait_for: the timeout, then kill and wait", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        const std::vector<std::string> script{"-c", "echo started; sleep 10"};
        corio::process p = co_await corio::create_subprocess_exec(
            "sh", script, {.stdin_ = corio::pipe, .stdout_ = corio::pipe});
        stopwatch watch;
        bool timed_out = false;
        try {
            co_await corio::wait_for(p.communicate("some input"), 200ms);
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        CHECK(watch.elapsed() < 5s);
        CHECK_FALSE(p.returncode().has_value());  // cancelling communicate leaves the child
        p.kill();
        const int code = co_await p.wait();
        CHECK(code == -SIGKILL);
        CHECK(watch.elapsed() < 5s);
    }());
}

TEST_CASE("process: a cancelled wait() leaves the child running", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        const std::vector<std::string> ten{"10"};
        corio::process p = co_await corio::create_subprocess_exec("sleep", ten);
        bool timed_out = false;
        try {
            co_await corio::wait_for(p.wait(), 50ms);
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        CHECK_FALSE(p.returncode().has_value());
        // Several tasks may wait for one child.
        corio::task<int> first = corio::create_task(p.wait());
        corio::task<int> second = corio::create_task(p.wait());
        co_await corio::sleep(10ms);
        p.terminate();
        const int a = co_await first;
        const int b = co_await second;
        CHECK(a == -SIGTERM);
        CHECK(b == -SIGTERM);
    }());
}

// --- start-up failures and options ---------------------------------------------------------

TEST_CASE("process: a program that cannot run is std::system_error, not a child exiting 127",
          "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const auto fds_before = open_descriptors();
    const temporary_file text("just text\n", 0644);
    const temporary_file garbage("\x7f\x01\x02\x03 not a program\n", 0755);
    run_within([](const std::string& text, const std::string& garbage) -> corio::coro<> {
        int missing = 0;
        int missing_in_path = 0;
        int not_executable = 0;
        int not_a_program = 0;
        int bad_cwd = 0;
        try {
            (void)co_await corio::create_subprocess_exec("/nonexistent/corio-test-program");
        } catch (const std::system_error& e) {
            missing = error_code_of(e);
            CHECK(corio_test::contains(e.what(), "/nonexistent/corio-test-program"));
        }
        try {
            (void)co_await corio::create_subprocess_exec("corio-test-no-such-program");
        } catch (const std::system_error& e) {
            missing_in_path = error_code_of(e);
        }
        try {
            (void)co_await corio::create_subprocess_exec(text);
        } catch (const std::system_error& e) {
            not_executable = error_code_of(e);
        }
        try {
            (void)co_await corio::create_subprocess_exec(garbage);
        } catch (const std::system_error& e) {
            not_a_program = error_code_of(e);
        }
        try {
            (void)co_await corio::create_subprocess_exec("true", {},
                                                         {.cwd = "/nonexistent/directory"});
        } catch (const std::system_error& e) {
            bad_cwd = error_code_of(e);
        }
        CHECK(missing == ENOENT);
        CHECK(missing_in_path == ENOENT);
        CHECK(not_executable == EACCES);
        CHECK(not_a_program == ENOEXEC);
        CHECK(bad_cwd == ENOENT);
        // Through the shell, a missing command is the shell's exit code.
        corio::process shell = co_await corio::create_subprocess_shell("corio-test-no-such-program",
                                                                       {.stderr_ = corio::devnull});
        const int code = co_await shell.wait();
        CHECK(code == 127);
    }(text.path(), garbage.path()));
    CHECK_FALSE(any_unreaped_child());
    CHECK(open_descriptors() == fds_before);
}

TEST_CASE("process: invalid options are std::invalid_argument; absent pipes std::logic_error",
          "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        int invalid = 0;
        try {
            (void)co_await corio::create_subprocess_exec("true", {}, {.stdin_ = corio::stdout_});
        } catch (const std::invalid_argument&) {
            ++invalid;
        }
        try {
            (void)co_await corio::create_subprocess_exec("true", {}, {.stdout_ = corio::stdout_});
        } catch (const std::invalid_argument&) {
            ++invalid;
        }
        try {
            (void)co_await corio::create_subprocess_exec("true", {},
                                                         {.stdout_ = corio::use_fd(-1)});
        } catch (const std::invalid_argument&) {
            ++invalid;
        }
        CHECK(invalid == 3);
        // A string with a NUL inside would reach the child cut short (found by fuzzing).
        using namespace std::string_literals;
        const std::vector<std::string> nul_argument{"bad\0argument"s};
        const std::string nul_directory = "/tmp\0x"s;
        for (int which = 0; which < 4; ++which) {
            bool refused = false;
            try {
                switch (which) {
                case 0: (void)co_await corio::create_subprocess_exec("/bin/echo\0x"s); break;
                case 1: (void)co_await corio::create_subprocess_exec("echo", nul_argument); break;
                case 2:
                    (void)co_await corio::create_subprocess_exec("true", {}, {.env = nul_argument});
                    break;
                default:
                    (void)co_await corio::create_subprocess_exec("true", {},
                                                                 {.cwd = nul_directory});
                }
            } catch (const std::invalid_argument& e) {
                refused = corio_test::contains(e.what(), "NUL");
            }
            CAPTURE(which);
            CHECK(refused);
        }
        corio::process p = co_await corio::create_subprocess_exec("true");
        CHECK_THROWS_AS(p.stdin_pipe(), std::logic_error);
        CHECK_THROWS_AS(p.stdout_pipe(), std::logic_error);
        CHECK_THROWS_AS(p.stderr_pipe(), std::logic_error);
        bool refused = false;
        try {
            (void)co_await p.communicate("input, but no stdin pipe");
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        CHECK(refused);
        // Without pipes, communicate just waits.
        corio::communicate_result nothing = co_await p.communicate();
        CHECK(nothing.out.empty());
        CHECK(nothing.err.empty());
        CHECK(p.returncode() == 0);
        corio::process empty;
        CHECK_FALSE(empty);
        CHECK_THROWS_AS(empty.pid(), std::logic_error);
    }());
}

TEST_CASE("process: cwd and env", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        corio::process pwd = co_await corio::create_subprocess_exec(
            "pwd", {}, {.stdout_ = corio::pipe, .cwd = "/tmp"});
        auto [where, nothing] = co_await pwd.communicate();
        CHECK(where == "/tmp\n");

        // A whole new environment...
        const std::vector<std::string> env{"CORIO_TEST_VAR=forty two"};
        corio::process only = co_await corio::create_subprocess_shell(
            "echo \"$CORIO_TEST_VAR\"; echo \"${HOME:-no home}\"",
            {.stdout_ = corio::pipe, .env = env});
        corio::communicate_result only_out = co_await only.communicate();
        CHECK(only_out.out == "forty two\nno home\n");

        // ... or the parent's plus one.
        ::setenv("CORIO_TEST_PARENT", "from the parent", 1);
        std::vector<std::string> more = corio::current_environment();
        more.push_back("CORIO_TEST_VAR=added");
        corio::process both = co_await corio::create_subprocess_shell(
            "echo \"$CORIO_TEST_PARENT/$CORIO_TEST_VAR\"", {.stdout_ = corio::pipe, .env = more});
        corio::communicate_result both_out = co_await both.communicate();
        CHECK(both_out.out == "from the parent/added\n");
        ::unsetenv("CORIO_TEST_PARENT");

        // The parent's environment by default.
        ::setenv("CORIO_TEST_INHERITED", "yes", 1);
        corio::process inherited = co_await corio::create_subprocess_shell(
            "echo $CORIO_TEST_INHERITED", {.stdout_ = corio::pipe});
        corio::communicate_result inherited_out = co_await inherited.communicate();
        CHECK(inherited_out.out == "yes\n");
        ::unsetenv("CORIO_TEST_INHERITED");
    }());
}

TEST_CASE("process: stderr to stdout, to its own pipe, to /dev/null", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        const std::string script = "echo out; echo err >&2; echo out2";
        corio::process merged = co_await corio::create_subprocess_shell(
            script, {.stdout_ = corio::pipe, .stderr_ = corio::stdout_});
        corio::communicate_result m = co_await merged.communicate();
        CHECK(m.out == "out\nerr\nout2\n");
        CHECK(m.err.empty());

        corio::process separate = co_await corio::create_subprocess_shell(
            script, {.stdout_ = corio::pipe, .stderr_ = corio::pipe});
        corio::communicate_result s = co_await separate.communicate();
        CHECK(s.out == "out\nout2\n");
        CHECK(s.err == "err\n");

        corio::process quiet = co_await corio::create_subprocess_shell(
            script, {.stdout_ = corio::pipe, .stderr_ = corio::devnull});
        corio::communicate_result q = co_await quiet.communicate();
        CHECK(q.out == "out\nout2\n");
    }());
}

TEST_CASE("process: devnull for stdin and stdout; use_fd", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        // cat reads /dev/null: end of input at once.
        corio::process cat = co_await corio::create_subprocess_exec(
            "cat", {}, {.stdin_ = corio::devnull, .stdout_ = corio::pipe});
        corio::communicate_result c = co_await cat.communicate();
        CHECK(c.out.empty());
        CHECK(cat.returncode() == 0);

        corio::process silent = co_await corio::create_subprocess_shell(
            "echo lost; test -c /dev/stdout", {.stdout_ = corio::devnull});
        const int code = co_await silent.wait();
        CHECK(code == 0);  // stdout is a character device: /dev/null

        // A pipe of the test's own, given to the child's stdout with use_fd.
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0);
        corio::unique_fd read_end(fds[0]);
        corio::unique_fd write_end(fds[1]);
        const std::vector<std::string> args{"through use_fd"};
        corio::process echo = co_await corio::create_subprocess_exec(
            "echo", args, {.stdout_ = corio::use_fd(write_end.get())});
        const int echo_code = co_await echo.wait();
        CHECK(echo_code == 0);
        CHECK(is_close_on_exec(write_end.get()));  // the caller's fd is untouched
        write_end.reset();
        char buffer[100] = {};
        const auto n = ::read(read_end.get(), buffer, sizeof buffer);
        CHECK(std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0) == "through use_fd\n");
    }());
}

TEST_CASE("process: send_signal with an invalid signal is std::system_error", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        const std::vector<std::string> ten{"10"};
        corio::process p = co_await corio::create_subprocess_exec("sleep", ten);
        int error = 0;
        try {
            p.send_signal(1000);
        } catch (const std::system_error& e) {
            error = error_code_of(e);
        }
        CHECK(error == EINVAL);
        p.kill();
        const int code = co_await p.wait();
        CHECK(code == -SIGKILL);
    }());
}

TEST_CASE("process: the shell", "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    run_within([]() -> corio::coro<> {
        corio::process p = co_await corio::create_subprocess_shell(
            "echo $((40 + 2)) | tr 4 x; exit 5", {.stdout_ = corio::pipe});
        corio::communicate_result r = co_await p.communicate();
        CHECK(r.out == "x2\n");
        CHECK(p.returncode() == 5);
        // No shell unless asked for: exec passes its arguments as they are.
        const std::vector<std::string> args{"$HOME", "*", "a;b"};
        corio::process literal =
            co_await corio::create_subprocess_exec("echo", args, {.stdout_ = corio::pipe});
        corio::communicate_result l = co_await literal.communicate();
        CHECK(l.out == "$HOME * a;b\n");
    }());
}

// --- many children, and no trace left ------------------------------------------------------

corio::coro<int> run_short_child(int i) {
    const std::string script = "exit " + std::to_string(i % 7);
    corio::process p = co_await corio::create_subprocess_shell(
        script, {.stdin_ = corio::pipe, .stdout_ = corio::pipe, .stderr_ = corio::devnull});
    if (i % 2 == 0) {
        corio::communicate_result r = co_await p.communicate();
        CHECK(r.out.empty());
        co_return *p.returncode();
    }
    co_return co_await p.wait();
}

TEST_CASE("process: 200 concurrent short-lived children; no zombie, no descriptor left",
          "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const auto fds_before = open_descriptors();
    run_within(
        []() -> corio::coro<> {
            std::vector<corio::coro<int>> children;
            for (int i = 0; i < 200; ++i) children.push_back(run_short_child(i));
            const std::vector<int> codes = co_await corio::gather(std::move(children));
            REQUIRE(codes.size() == 200);
            for (int i = 0; i < 200; ++i) {
                CAPTURE(i);
                CHECK(codes[static_cast<std::size_t>(i)] == i % 7);
            }
            CHECK_FALSE(any_unreaped_child());
        }(),
        60s);
    CHECK_FALSE(any_unreaped_child());
    CHECK(open_descriptors() == fds_before);
}

TEST_CASE("process: a process destroyed while its child runs: the child is not killed, and "
          "reaped when it exits",
          "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const auto fds_before = open_descriptors();
    pid_t survivor = 0;
    run_within([](pid_t& survivor) -> corio::coro<> {
        {
            const std::vector<std::string> script{"-c", "sleep 0.2; echo done >&2"};
            corio::process p = co_await corio::create_subprocess_exec("sh", script);
            survivor = p.pid();
        }
        CHECK(unreaped_child(survivor));  // running on
        co_await corio::sleep(50ms);
        CHECK(unreaped_child(survivor));
        // Reaped by the loop once it exits.
        for (int i = 0; i < 200 && unreaped_child(survivor); ++i) co_await corio::sleep(10ms);
        CHECK_FALSE(unreaped_child(survivor));
    }(survivor));
    CHECK(survivor > 0);
    CHECK(open_descriptors() == fds_before);
}

TEST_CASE("process: a child still running when the loop closes is reaped later all the same",
          "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    pid_t survivor = 0;
    pid_t abandoned = 0;
    run_within([](pid_t& survivor, pid_t& abandoned) -> corio::coro<> {
        const std::vector<std::string> brief{"0.2"};
        corio::process p = co_await corio::create_subprocess_exec("sleep", brief);
        survivor = p.pid();
        // One whose handle lives in a task that the end of run cancels.
        corio::process q = co_await corio::create_subprocess_exec("sleep", brief);
        abandoned = q.pid();
        (void)corio::create_task(
            [](corio::process q) -> corio::coro<> { co_await q.wait(); }(std::move(q)));
        co_await corio::sleep(1ms);
    }(survivor, abandoned));
    CHECK(unreaped_child(survivor));  // run returned before the children exited
    CHECK(reaped_within(survivor, 5s));
    CHECK(reaped_within(abandoned, 5s));
    CHECK_FALSE(any_unreaped_child());
}

TEST_CASE("process: children inherit none of the loop's descriptors and no blocked signal",
          "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    int leaky[2];
    REQUIRE(::pipe(leaky) == 0);  // deliberately not close-on-exec: the control
    corio::unique_fd leaky_read(leaky[0]);
    corio::unique_fd leaky_write(leaky[1]);
    struct sigaction ignore_sigpipe{};
    ignore_sigpipe.sa_handler = SIG_IGN;
    struct sigaction previous_sigpipe{};
    ::sigaction(SIGPIPE, &ignore_sigpipe, &previous_sigpipe);
    run_within([](int leaky_fd) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        // Give the loop all it may own: signalfd, executor, readiness watches, a socket pair,
        // pipes of another child still running.
        loop.add_signal_handler(SIGUSR1, [] {});
        co_await corio::to_thread([] { return 1; });
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
        corio::unique_fd a(sv[0]);
        corio::unique_fd b(sv[1]);
        loop.add_reader(a.get(), [] {});
        const std::vector<std::string> ten{"10"};
        corio::process other = co_await corio::create_subprocess_exec(
            "sleep", ten, {.stdin_ = corio::pipe, .stdout_ = corio::pipe, .stderr_ = corio::pipe});

        std::map<int, std::string> ours;  // the close-on-exec ones: corio's and the test's
        for (const auto& [fd, target] : open_descriptors()) {
            if (is_close_on_exec(fd)) ours[fd] = target;
        }
        CHECK(ours.size() >= 8);

        const std::string script =
            "for f in /proc/$$/fd/*; do echo \"${f##*/} $(readlink $f)\"; done";
        corio::process p = co_await corio::create_subprocess_shell(
            script, {.stdin_ = corio::devnull, .stdout_ = corio::pipe, .stderr_ = corio::pipe});
        auto [listing, errors] = co_await p.communicate();
        CHECK(errors.empty());
        INFO(listing);
        std::istringstream lines(listing);
        std::string line;
        bool saw_stdout = false;
        bool saw_control = false;
        while (std::getline(lines, line)) {
            const auto space = line.find(' ');
            const int fd = std::atoi(line.substr(0, space).c_str());
            const std::string target = line.substr(space + 1);
            if (fd == 1) saw_stdout = true;
            if (fd == leaky_fd) saw_control = true;
            auto it = ours.find(fd);
            if (it != ours.end()) {
                CAPTURE(fd, target);
                CHECK(it->second != target);  // the same number may be reused, not the file
            }
        }
        CHECK(saw_stdout);
        CHECK(saw_control);  // the listing does see inherited descriptors

        // The signals as the child got them at exec (grep reads its own status; a shell would
        // show its own mask, which it changes while it waits for its children).
        const std::vector<std::string> grep_args{"-E", "^Sig(Blk|Ign)", "/proc/self/status"};
        corio::process grep =
            co_await corio::create_subprocess_exec("grep", grep_args, {.stdout_ = corio::pipe});
        corio::communicate_result status = co_await grep.communicate();
        INFO(status.out);
        std::istringstream status_lines(status.out);
        std::string blocked;
        std::string ignored;
        while (std::getline(status_lines, line)) {
            const auto value = line.find_first_not_of(" \t", 7);
            if (line.rfind("SigBlk:", 0) == 0) blocked = line.substr(value);
            if (line.rfind("SigIgn:", 0) == 0) ignored = line.substr(value);
        }
        // SIGUSR1 is blocked in the loop's thread (its signalfd); the child's mask is empty.
        CHECK(blocked == "0000000000000000");
        // SIGPIPE (bit 13) ignored here is back at its default in the child.
        CHECK(!ignored.empty());
        if (!ignored.empty()) {
            const unsigned long long mask = std::stoull(ignored, nullptr, 16);
            CHECK((mask & (1ULL << (SIGPIPE - 1))) == 0);
        }
        other.kill();
        co_await other.wait();
        loop.remove_reader(a.get());
    }(leaky_read.get()));
    ::sigaction(SIGPIPE, &previous_sigpipe, nullptr);
}

TEST_CASE("process: a child that exits without reading its input is not an error for "
          "communicate",
          "[process]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::string data = random_bytes(4 << 20, 19);
    run_within([](const std::string& data) -> corio::coro<> {
        corio::process p = co_await corio::create_subprocess_exec(
            "true", {}, {.stdin_ = corio::pipe, .stdout_ = corio::pipe});
        corio::communicate_result r = co_await p.communicate(data);
        CHECK(r.out.empty());
        CHECK(p.returncode() == 0);
    }(data));
}

}  // namespace
