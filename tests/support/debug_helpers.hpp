// Helpers shared by the tests of debug/ (call graph, debug mode, deadlock detection): matching
// the lines of a dump or a report, an environment variable set for one test case, the loop's
// reports collected quietly, a forked child, and reading a pipe with a time limit.
#pragma once

#include "support/catch.hpp"
#include "support/test_helpers.hpp"

#include <corio/event_loop.hpp>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace corio_test {

inline std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

// Whether `actual` is the dump line `expected` describes: the same text, except that
// - when `expected` ends with '*', any line that starts with the rest matches;
// - in a site line ("at file:line in f"), g++ follows the function's name with its parameters
//   and sometimes precedes it with its namespace ("{anonymous}::f(int)"), clang 14 gives "f",
//   clang 16 and later "(anonymous namespace)::f(int)".
inline bool line_matches(const std::string& actual, const std::string& expected) {
    if (!expected.empty() && expected.back() == '*') {
        return actual.starts_with(std::string_view(expected).substr(0, expected.size() - 1));
    }
    if (actual == expected) return true;
    const std::size_t in = expected.rfind(" in ");
    if (in == std::string::npos || !contains(expected, " at ")) return false;
    const std::string_view head = std::string_view(expected).substr(0, in + 4);
    const std::string_view function = std::string_view(expected).substr(in + 4);
    if (!actual.starts_with(head)) return false;
    std::string spelled(std::string_view(actual).substr(head.size()));
    // clang 16 and later spell the anonymous namespace as g++ does not: "(anonymous namespace)".
    for (std::size_t at = spelled.find("(anonymous namespace)"); at != std::string::npos;
         at = spelled.find("(anonymous namespace)")) {
        spelled.replace(at, 21, "{anonymous}");
    }
    std::string_view name = spelled;
    name = name.substr(0, name.find('('));
    if (name == function) return true;
    return name.size() > function.size() + 2 && name.ends_with(function) &&
           name.substr(0, name.size() - function.size()).ends_with("::");
}

// Whether `text` holds the lines `expected` one after the other (see `line_matches`).
inline bool has_block(const std::string& text, const std::vector<std::string>& expected) {
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

// The dump line of a site: "<indent><what> <file>:<line> in <function>". The caller passes its
// own __FILE__: the sites are in the test's file, not in this header.
inline std::string site_line(std::string_view file, int depth, const char* what, unsigned line,
                             const std::string& function) {
    return std::string(static_cast<std::size_t>(depth) * 4, ' ') + what + ' ' + std::string(file) +
           ':' + std::to_string(line) + " in " + function;
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

inline std::string all_messages(const exception_log& log) {
    std::string text;
    for (const auto& context : log.contexts()) text += context.message + '\n';
    return text;
}

// Installs `log` on the running loop for a test that is not about slow steps: on a loaded
// machine any step may take long, and its report would get in the way.
inline void install_quiet(exception_log& log, corio::event_loop& loop) {
    log.install(loop);
    loop.set_slow_callback_duration(std::chrono::hours(1));
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
        using namespace std::chrono_literals;
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
inline std::string read_until(int fd, const std::function<bool(const std::string&)>& done) {
    using namespace std::chrono_literals;
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

// Keeps a test whose loop might wait forever from hanging: a thread (which deadlock detection
// cannot see) stops the loop after 10 s, so that run_until_complete fails instead.
class stall_guard {
public:
    explicit stall_guard(corio::event_loop& loop)
        : thread_([this, &loop] {
              std::unique_lock lock(mutex_);
              if (!cv_.wait_for(lock, std::chrono::seconds(10), [this] { return done_; })) {
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

}  // namespace corio_test
