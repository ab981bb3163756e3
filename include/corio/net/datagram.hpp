#pragma once
/// \file
/// `corio::open_datagram_endpoint`: UDP with awaitable `send_to` / `recv_from` (what asyncio's
/// `loop.create_datagram_endpoint` does with callbacks, as coroutines).
///
/// Its coroutines that need no template parameter have one, defaulted (`template <class = void>`),
/// so that only a program that calls one compiles it (docs/architecture.md, "Compile time").

#include "corio/coro.hpp"
#include "corio/detail/fd.hpp"
#include "corio/detail/frame_allocator.hpp"
#include "corio/detail/intrusive.hpp"
#include "corio/detail/unique_fd.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/io_awaiter.hpp"
#include "corio/net/connection.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/socket_address.hpp"
#include "corio/reactor/operation.hpp"

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>

namespace corio {

/// One datagram received: its bytes and who sent it.
struct datagram {
    std::string data;
    socket_address address;
};

/// Options of `open_datagram_endpoint`.
struct datagram_options {
    /// `AF_UNSPEC` (follow the addresses given), `AF_INET` or `AF_INET6`.
    int family = AF_UNSPEC;
    /// SO_REUSEPORT: several endpoints share the local port.
    bool reuse_port = false;
    /// SO_BROADCAST: may send to broadcast addresses.
    bool allow_broadcast = false;
};

namespace detail {

/// The socket of a datagram endpoint, shared by its handles and its operations in flight
/// (each holds a reference), which it tracks so that `close()` can withdraw them.
class datagram_state : public recycled<> {
public:
    /// One `recvmsg` / `sendmsg`, in the awaiting frame; the `msghdr`, its `iovec` and the
    /// address live there too.
    class message_op : public io_awaiter, public list_node {
    public:
        message_op(datagram_state& s, io_opcode code) noexcept
            : io_awaiter(code, s.fd_.get()), state_(&s) {
            buffer = &header_;
            header_.msg_iov = &piece_;
            header_.msg_iovlen = 1;
        }
        message_op(const message_op&) = delete;
        message_op& operator=(const message_op&) = delete;
        ~message_op() {
            if (linked()) {
                list_node::unlink();
                state_->op_done();
            }
        }

        void set_data(void* data, std::size_t size) noexcept {
            piece_.iov_base = data;
            piece_.iov_len = size;
        }
        void set_address(sockaddr* address, socklen_t length) noexcept {
            header_.msg_name = address;
            header_.msg_namelen = length;
        }
        [[nodiscard]] socklen_t address_length() const noexcept { return header_.msg_namelen; }

        // A closed endpoint: nothing to submit.
        [[nodiscard]] bool await_ready() noexcept {
            ended_ = state_->closed_;
            return ended_;
        }
        template <class Promise>
        bool await_suspend(std::coroutine_handle<Promise> h) {
            const bool suspended = io_awaiter::await_suspend(h);
            if (suspended) state_->in_flight_.push_back(this);
            return suspended;
        }
        /// Bytes sent or received; throws `std::system_error` (EBADF once the endpoint is
        /// closed, ECONNREFUSED from a connected peer's ICMP...).
        std::size_t await_resume() {
            const char* what = opcode == io_opcode::recvmsg ? "recvmsg" : "sendmsg";
            if (ended_) throw_errno(EBADF, what);
            list_node::unlink();
            state_->op_done();
            const int result = io_awaiter::await_resume();       // throws if the task was cancelled
            if (result == -ECANCELED) throw_errno(EBADF, what);  // withdrawn by close()
            return static_cast<std::size_t>(check_result(result, what));
        }

    private:
        datagram_state* state_;
        msghdr header_{};
        iovec piece_{};
        bool ended_ = false;
    };

    datagram_state(event_loop& loop, unique_fd fd) noexcept : loop_(&loop), fd_(std::move(fd)) {}
    datagram_state(const datagram_state&) = delete;
    datagram_state& operator=(const datagram_state&) = delete;

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ == 0) delete this;
    }

    void close() noexcept {
        if (closed_) return;
        closed_ = true;
        in_flight_.for_each([this](message_op* op) {
            if (loop_access::alive(loop_)) op->withdraw();
        });
        op_done();
    }

    // Closes the descriptor once no operation refers to it (an io_uring SQE not submitted yet
    // would otherwise find the number closed, or reused by another socket).
    void op_done() noexcept {
        if (closed_ && in_flight_.empty()) fd_.reset();
    }
    [[nodiscard]] bool closed() const noexcept { return closed_; }
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }

    [[nodiscard]] socket_address address(bool peer) const {
        socket_address a;
        socklen_t length = socket_address::capacity();
        if (fd_ && (peer ? ::getpeername(fd_.get(), a.data(), &length)
                         : ::getsockname(fd_.get(), a.data(), &length)) == 0) {
            a.resize(length);
            return a;
        }
        return {};
    }

private:
    event_loop* loop_;
    unique_fd fd_;
    std::size_t refs_ = 0;
    intrusive_list<message_op> in_flight_;
    bool closed_ = false;
};

/// A counted reference to a datagram endpoint's state.
class datagram_ref {
public:
    datagram_ref() noexcept = default;
    explicit datagram_ref(datagram_state* s) noexcept : s_(s) {
        if (s_ != nullptr) s_->add_ref();
    }
    datagram_ref(const datagram_ref& other) noexcept : datagram_ref(other.s_) {}
    datagram_ref(datagram_ref&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
    datagram_ref& operator=(datagram_ref other) noexcept {
        std::swap(s_, other.s_);
        return *this;
    }
    ~datagram_ref() {
        if (s_ != nullptr) s_->release();
    }
    datagram_state* operator->() const noexcept { return s_; }
    datagram_state& operator*() const noexcept { return *s_; }
    explicit operator bool() const noexcept { return s_ != nullptr; }

private:
    datagram_state* s_ = nullptr;
};

}  // namespace detail

/// A UDP socket (asyncio's datagram transport, with coroutines instead of a protocol).
///
/// A cheap, copyable handle; the socket is closed by `close()` or when the last handle and
/// the last operation in flight are gone. Each operation is a lazy `coro` whose `msghdr` lives
/// in its frame (`io_opcode::sendmsg` / `recvmsg`): nothing is allocated per datagram except
/// `recv_from`'s string (`recv_from_into` not even that). The data given to `send_to` and
/// `send` must stay alive until the `co_await` ends. Cancellation withdraws the operation
/// (`cancelled_error`); `close()` ends those in flight with `std::system_error(EBADF)`.
/// Errors are `std::system_error` (a connected endpoint may get `ECONNREFUSED` when nothing
/// listens at the peer's port).
class datagram_endpoint {
public:
    /// An empty handle (`explicit operator bool` is false).
    datagram_endpoint() noexcept = default;
    explicit datagram_endpoint(detail::datagram_ref state) noexcept : state_(std::move(state)) {}

    explicit operator bool() const noexcept { return static_cast<bool>(state_); }

    /// Sends one datagram to `address`.
    template <class = void>
    [[nodiscard]] coro<> send_to(std::string_view data, socket_address address) const {
        return send_of(state_, data.data(), data.size(), address);
    }
    template <class = void>
    [[nodiscard]] coro<> send_to(std::span<const std::byte> data, socket_address address) const {
        return send_of(state_, data.data(), data.size(), address);
    }
    /// Sends one datagram to the remote address the endpoint was opened with.
    template <class = void>
    [[nodiscard]] coro<> send(std::string_view data) const {
        return send_of(state_, data.data(), data.size(), std::nullopt);
    }
    template <class = void>
    [[nodiscard]] coro<> send(std::span<const std::byte> data) const {
        return send_of(state_, data.data(), data.size(), std::nullopt);
    }

    /// Receives one datagram (at most `max_size` bytes of it; the rest of a longer one is
    /// dropped, as `recvfrom` does) and its sender.
    template <class = void>
    [[nodiscard]] coro<datagram> recv_from(std::size_t max_size = 65536) const {
        return recv_of(state_, max_size);
    }
    /// Receives one datagram into `buffer`; its size (truncated to the buffer) and sender.
    template <class = void>
    [[nodiscard]] coro<std::pair<std::size_t, socket_address>>
    recv_from_into(std::span<std::byte> buffer) const {
        return recv_into_of(state_, buffer);
    }

    /// The local address (the port the kernel chose for port 0).
    [[nodiscard]] socket_address local_address() const { return state_->address(false); }
    /// The remote address of a connected endpoint (empty otherwise).
    [[nodiscard]] socket_address remote_address() const { return state_->address(true); }

    /// Closes the socket; operations in flight end with `std::system_error(EBADF)`.
    void close() const noexcept { state_->close(); }
    [[nodiscard]] bool is_closing() const noexcept { return state_->closed(); }
    [[nodiscard]] int native_handle() const noexcept { return state_->native_handle(); }

private:
    using op = detail::datagram_state::message_op;

    template <class = void>
    static coro<> send_of(detail::datagram_ref state, const void* data, std::size_t size,
                          std::optional<socket_address> address) {
        op send(*state, io_opcode::sendmsg);
        send.set_data(const_cast<void*>(data), size);
        if (address) send.set_address(address->data(), address->size());
        (void)co_await send;
    }

    template <class = void>
    static coro<datagram> recv_of(detail::datagram_ref state, std::size_t max_size) {
        datagram result;
        result.data.resize(max_size);
        op recv(*state, io_opcode::recvmsg);
        recv.set_data(result.data.data(), result.data.size());
        recv.set_address(result.address.data(), socket_address::capacity());
        const std::size_t n = co_await recv;
        result.data.resize(std::min(n, max_size));
        result.address.resize(recv.address_length());
        co_return result;
    }

    template <class = void>
    static coro<std::pair<std::size_t, socket_address>> recv_into_of(detail::datagram_ref state,
                                                                     std::span<std::byte> buffer) {
        std::pair<std::size_t, socket_address> result;
        op recv(*state, io_opcode::recvmsg);
        recv.set_data(buffer.data(), buffer.size());
        recv.set_address(result.second.data(), socket_address::capacity());
        result.first = std::min(co_await recv, buffer.size());
        result.second.resize(recv.address_length());
        co_return result;
    }

    detail::datagram_ref state_;
};

/// Opens a UDP endpoint bound to `local_host`:`local_port` and, if `remote` is given,
/// connected to it (asyncio's `create_datagram_endpoint(local_addr=..., remote_addr=...)`).
///
/// - An empty `local_host` with port 0 and a `remote` leaves the binding to the kernel; an
///   empty `local_host` otherwise binds the wildcard address. Names are resolved off the
///   loop (see `getaddrinfo`); the first address of the right family is used.
/// - Lazy (a `coro`); errors are `std::system_error` (in `gai_category()` for resolution).
template <class = void>
[[nodiscard]] inline coro<datagram_endpoint>
open_datagram_endpoint(std::string local_host, std::uint16_t local_port,
                       std::optional<std::pair<std::string, std::uint16_t>> remote = std::nullopt,
                       datagram_options options = {}) {
    resolve_options hints;
    hints.family = options.family;
    hints.socktype = SOCK_DGRAM;
    std::optional<address_info> remote_info;
    if (remote) {
        const std::vector<address_info> found =
            co_await getaddrinfo(remote->first, remote->second, hints);
        if (found.empty()) throw std::system_error(EAI_NONAME, gai_category(), remote->first);
        remote_info = found.front();
        hints.family = remote_info->family;
    }
    std::optional<address_info> local_info;
    if (!remote || !local_host.empty() || local_port != 0) {
        hints.flags = AI_PASSIVE;
        const std::vector<address_info> found = co_await getaddrinfo(local_host, local_port, hints);
        if (found.empty()) throw std::system_error(EAI_NONAME, gai_category(), local_host);
        local_info = found.front();
    }
    const address_info& basis = local_info ? *local_info : *remote_info;
    unique_fd fd = detail::open_socket(basis.family, SOCK_DGRAM, 0);
    const int one = 1;
    if (options.reuse_port &&
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        detail::throw_errno(errno, "setsockopt(SO_REUSEPORT)");
    }
    if (options.allow_broadcast &&
        ::setsockopt(fd.get(), SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0) {
        detail::throw_errno(errno, "setsockopt(SO_BROADCAST)");
    }
    if (local_info &&
        ::bind(fd.get(), local_info->address.data(), local_info->address.size()) != 0) {
        throw std::system_error(errno, std::system_category(),
                                "bind to " + local_info->address.to_string());
    }
    if (remote_info &&
        ::connect(fd.get(), remote_info->address.data(), remote_info->address.size()) != 0) {
        // A datagram socket connects at once: it only records the peer.
        throw std::system_error(errno, std::system_category(),
                                "connect to " + remote_info->address.to_string());
    }
    event_loop& loop = get_running_loop();
    co_return datagram_endpoint(
        detail::datagram_ref(new detail::datagram_state(loop, std::move(fd))));
}

}  // namespace corio
