// Helpers shared by the tests that do I/O: checked syscalls, a connected pair of sockets,
// waiting (in a task) until a condition holds, and test data that is cheap to make and compare.
#pragma once

#include "support/test_helpers.hpp"

#include <corio/coro.hpp>
#include <corio/sleep.hpp>
#include <corio/system/unique_fd.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
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

/// How many descriptors the process has open (the listing's own included, each time alike).
inline std::size_t open_descriptors() {
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator("/proc/self/fd")) {
        ++count;
    }
    return count;
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

/// Pseudo-random bytes (xorshift64, 8 bytes a step: 16 MiB in milliseconds, even in Debug).
inline std::string random_bytes(std::size_t size, std::uint64_t seed) {
    std::string data(size, '\0');
    std::uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (std::size_t i = 0; i < size; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(data.data() + i, &x, std::min<std::size_t>(8, size - i));
    }
    return data;
}

/// Where `a` and `b` first differ; -1 when equal. (Catch would print megabytes of strings in
/// a failed `CHECK(a == b)`.)
inline long long first_difference(const std::string& a, const std::string& b) {
    if (a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0) return -1;
    const auto [ia, ib] = std::mismatch(a.begin(), a.end(), b.begin(), b.end());
    if (ia == a.end() && ib == b.end()) return -1;
    return static_cast<long long>(ia - a.begin());
}

}  // namespace corio_test
