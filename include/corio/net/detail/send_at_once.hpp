#pragma once
/// \file
/// What a stream's `write` does before it buffers anything: the syscall at once, never
/// blocking, never raising SIGPIPE (`send_at_once`, `send_vector_at_once`), and for pipes,
/// where MSG_NOSIGNAL does not exist, `ignore_sigpipe_once`.

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <span>

#include <climits>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace corio::detail {

/// Sets SIGPIPE to SIG_IGN if it has its default disposition, once per process (CPython does
/// this at start-up). A handler the program installed itself, or SIG_IGN, is left alone.
inline void ignore_sigpipe_once() noexcept {
    // A function-local static is initialised once, and thread-safely.
    [[maybe_unused]] static const bool done = [] {
        struct sigaction current{};
        if (::sigaction(SIGPIPE, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) == 0 &&
            current.sa_handler == SIG_DFL) {
            struct sigaction ignore{};
            ignore.sa_handler = SIG_IGN;
            ::sigemptyset(&ignore.sa_mask);
            ::sigaction(SIGPIPE, &ignore, nullptr);
        }
        return true;
    }();
}

/// `send` (a socket) or `write` (a pipe) of `[data, data + size)` at once: the bytes taken
/// (0 if the kernel would block), or -errno.
inline long send_at_once(int fd, bool socket, const char* data, std::size_t size) noexcept {
    for (;;) {
        const long n =
            socket ? ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT) : ::write(fd, data, size);
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
}

/// As `send_at_once`, every piece in one `sendmsg` / `writev`.
inline long send_vector_at_once(int fd, bool socket, std::span<const iovec> pieces) noexcept {
    const std::size_t count = std::min<std::size_t>(pieces.size(), IOV_MAX);
    for (;;) {
        long n = 0;
        if (socket) {
            msghdr message{};
            message.msg_iov = const_cast<iovec*>(pieces.data());
            message.msg_iovlen = count;
            n = ::sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            n = ::writev(fd, pieces.data(), static_cast<int>(count));
        }
        if (n >= 0) return n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
}

}  // namespace corio::detail
