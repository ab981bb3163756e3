// A peer corio did not write: a Python interpreter running a script, for the tests that talk
// to Python's asyncio (and skip, saying so, where /usr/bin/python3 is missing).
#pragma once

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/coro.hpp>
#include <corio/net/stream.hpp>
#include <corio/sleep.hpp>
#include <corio/system/unique_fd.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace corio_test {

// The system interpreter, explicitly: not whatever `python3` a PATH or a pyenv shim finds.
inline constexpr const char* python_path = "/usr/bin/python3";

inline bool have_python() { return ::access(python_path, X_OK) == 0; }

#define REQUIRE_PYTHON()                                                                           \
    do {                                                                                           \
        if (!::corio_test::have_python()) {                                                        \
            CORIO_SKIP("interop with Python's asyncio skipped: " << ::corio_test::python_path      \
                                                                 << " is not installed");          \
        }                                                                                          \
    } while (false)

// A python3 child running `script` with `args`; its stdout is a corio pipe reader, its
// stderr goes to ours (so that a Python traceback shows in the test log).
class python_child {
public:
    python_child(const std::string& script, const std::vector<std::string>& args) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) {
            throw std::system_error(errno, std::system_category(), "pipe2");
        }
        corio::unique_fd ours(fds[0]);
        corio::unique_fd theirs(fds[1]);
        // Only our end is non-blocking: Python's print wants a blocking stdout.
        if (::fcntl(ours.get(), F_SETFL, O_NONBLOCK) != 0) {
            throw std::system_error(errno, std::system_category(), "fcntl");
        }
        posix_spawn_file_actions_t actions;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        ::posix_spawn_file_actions_adddup2(&actions, theirs.get(), 1);
        std::vector<std::string> argv_strings = {python_path, "-c", script};
        argv_strings.insert(argv_strings.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_strings) argv.push_back(a.data());
        argv.push_back(nullptr);
        const int rc = ::posix_spawn(&pid_, python_path, &actions, nullptr, argv.data(), environ);
        ::posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) throw std::system_error(rc, std::system_category(), "posix_spawn");
        theirs.reset();  // the child has its copy
        stdout_fd_ = std::move(ours);
    }
    python_child(const python_child&) = delete;
    python_child& operator=(const python_child&) = delete;
    ~python_child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status = 0;
            ::waitpid(pid_, &status, 0);
        }
    }

    // Hands the stdout pipe to a corio reader (on the running loop).
    corio::stream_reader take_stdout() {
        return corio::detail::make_pipe_reader(std::move(stdout_fd_));
    }

    // Waits (polling, without blocking the loop) for the child to exit; its exit status, or
    // -1 if it had to be killed after `limit`.
    corio::coro<int> wait(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            const pid_t done = ::waitpid(pid_, &status, WNOHANG);
            if (done == pid_) {
                pid_ = -1;
                co_return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            co_await corio::sleep(std::chrono::milliseconds(5));
        }
        co_return -1;
    }

private:
    pid_t pid_ = -1;
    corio::unique_fd stdout_fd_;
};

}  // namespace corio_test
