// Helpers shared by the tests that do I/O: checked syscalls, a connected pair of sockets, and
// waiting (in a task) until a condition holds.
#pragma once

#include "support/test_helpers.hpp"

#include <corio/coro.hpp>
#include <corio/sleep.hpp>
#include <corio/unique_fd.hpp>

#include <cerrno>
#include <chrono>
#include <system_error>

#include <sys/socket.h>

namespace corio_test {

/// Throws `std::system_error` with errno when `ok` is false.
inline void check_syscall(bool ok, const char* what) {
    if (!ok) throw std::system_error(errno, std::system_category(), what);
}

/// Two connected descriptors.
struct socket_pair {
    corio::unique_fd a;
    corio::unique_fd b;
};

/// A connected pair of non-blocking, close-on-exec AF_UNIX stream sockets.
inline socket_pair unix_pair() {
    int fds[2];
    check_syscall(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0,
                  "socketpair");
    return {corio::unique_fd(fds[0]), corio::unique_fd(fds[1])};
}

/// Sleeps in small steps until `done()` or `limit` has passed; whether `done()` came true.
template <class F>
corio::coro<bool> eventually(F done,
                             std::chrono::milliseconds limit = std::chrono::milliseconds(2000)) {
    stopwatch watch;
    while (!done()) {
        if (watch.elapsed() > limit) co_return false;
        co_await corio::sleep(std::chrono::milliseconds(1));
    }
    co_return true;
}

} // namespace corio_test
