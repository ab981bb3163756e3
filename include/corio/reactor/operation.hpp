#pragma once
/// \file
/// `corio::io_operation`: one I/O request, as the loop hands it to a reactor.

#include "corio/detail/intrusive.hpp"

#include <cstddef>
#include <cstdint>

#include <sys/socket.h>

namespace corio {

/// What an `io_operation` asks the kernel to do. Each maps to one syscall (epoll) or one SQE
/// (io_uring), with the same result: what the syscall returns, or `-errno`.
enum class io_opcode : std::uint8_t {
    read,     ///< read(fd, buffer, length), or pread at `offset` when it is not `no_offset`
    write,    ///< write(fd, buffer, length), or pwrite at `offset`
    recv,     ///< recv(fd, buffer, length, flags)
    send,     ///< send(fd, buffer, length, flags | MSG_NOSIGNAL)
    accept,   ///< accept4(fd, address, address_length, SOCK_CLOEXEC | SOCK_NONBLOCK)
    connect,  ///< connect(fd, address, *address_length); 0 once connected
    poll,     ///< wait until fd has one of `poll_events` (POLLIN, POLLOUT...); result: revents
    recvmsg,  ///< recvmsg(fd, (msghdr*)buffer, flags): datagrams with their sender
    sendmsg,  ///< sendmsg(fd, (const msghdr*)buffer, flags | MSG_NOSIGNAL)
    fsync,    ///< fsync(fd), or fdatasync when `flags` is `fsync_data_only`; blocks on epoll
};

/// The opcode's name, as dumps show it: "recv", "poll"...
[[nodiscard]] constexpr const char* opcode_name(io_opcode opcode) noexcept {
    switch (opcode) {
    case io_opcode::read: return "read";
    case io_opcode::write: return "write";
    case io_opcode::recv: return "recv";
    case io_opcode::send: return "send";
    case io_opcode::accept: return "accept";
    case io_opcode::connect: return "connect";
    case io_opcode::poll: return "poll";
    case io_opcode::recvmsg: return "recvmsg";
    case io_opcode::sendmsg: return "sendmsg";
    case io_opcode::fsync: return "fsync";
    }
    return "?";
}

/// `io_operation::flags` of an `io_opcode::fsync` that only needs the data on disk.
inline constexpr int fsync_data_only = 1;

/// One I/O request. It lives in the awaiting coroutine's frame (never on the heap), and the
/// reactor links it into its own structures while it is in flight.
///
/// Lifetime: from `submit` until `complete_` has been called, the operation, its buffer and its
/// address must stay where they are (the kernel may hold pointers to them). `complete_` is
/// called exactly once per submission that did not complete at once, from the reactor's `poll`
/// (never from `submit` or `cancel`), and may only schedule work.
struct io_operation {
    using complete_fn = void (*)(io_operation*, int result) noexcept;
    static constexpr std::uint64_t no_offset = ~std::uint64_t{0};

    io_opcode opcode = io_opcode::read;
    /// The descriptor is corio's own (a stream's), and the loop is told when its number stops
    /// naming this file (`loop_access::forget_fd`, at adoption and before closing): a reactor
    /// may keep it registered across operations (epoll: edge-triggered, no re-arming).
    bool owned_fd = false;
    int fd = -1;
    void* buffer = nullptr;
    std::size_t length = 0;
    std::uint64_t offset = no_offset;
    int flags = 0;
    std::uint32_t poll_events = 0;
    sockaddr* address = nullptr;
    socklen_t* address_length = nullptr;
    complete_fn complete_ = nullptr;

    // Reserved for the reactor while the operation is in flight: its place in an
    // `operation_chain`, and its state there.
    io_operation* reactor_next_ = nullptr;
    io_operation* reactor_prev_ = nullptr;
    std::uint32_t reactor_state_ = 0;
    int result_ = 0;
};

/// A reactor's list of operations (in flight, waiting on a descriptor, completed), threaded
/// through the operations themselves: linking allocates nothing.
using operation_chain =
    detail::chain<io_operation, &io_operation::reactor_next_, &io_operation::reactor_prev_>;

}  // namespace corio
