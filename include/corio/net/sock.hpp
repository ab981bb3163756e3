#pragma once
/// \file
/// The loop's low-level socket operations (asyncio's `loop.sock_recv`, `sock_sendall`, ...), on
/// non-blocking descriptors, through the reactor.
///
/// Its coroutines that need no template parameter have one, defaulted (`template <class = void>`),
/// so that only a program that calls one compiles it (docs/architecture.md, "Compile time").

#include "corio/coro.hpp"
#include "corio/detail/fd.hpp"
#include "corio/detail/unique_fd.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/io_awaiter.hpp"
#include "corio/net/socket_address.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace corio {

template <class>
coro<std::size_t> event_loop::sock_recv_into(int fd, std::span<std::byte> buffer) {
    detail::io_awaiter recv(io_opcode::recv, fd);
    recv.buffer = buffer.data();
    recv.length = buffer.size();
    co_return static_cast<std::size_t>(detail::check_result(co_await recv, "recv"));
}

template <class>
coro<std::string> event_loop::sock_recv(int fd, std::size_t max_bytes) {
    std::string data(max_bytes, '\0');
    detail::io_awaiter recv(io_opcode::recv, fd);
    recv.buffer = data.data();
    recv.length = data.size();
    data.resize(static_cast<std::size_t>(detail::check_result(co_await recv, "recv")));
    co_return data;
}

template <class>
coro<> event_loop::sock_sendall(int fd, std::span<const std::byte> data) {
    while (!data.empty()) {
        detail::io_awaiter send(io_opcode::send, fd);
        send.buffer = const_cast<std::byte*>(data.data());
        send.length = data.size();
        const int sent = detail::check_result(co_await send, "send");
        data = data.subspan(static_cast<std::size_t>(sent));
    }
}

template <class>
coro<> event_loop::sock_sendall(int fd, std::string_view data) {
    return sock_sendall(fd, std::as_bytes(std::span(data.data(), data.size())));
}

template <class>
coro<std::pair<unique_fd, socket_address>> event_loop::sock_accept(int fd) {
    socket_address peer;
    socklen_t length = socket_address::capacity();
    detail::io_awaiter accept(io_opcode::accept, fd);
    accept.address = peer.data();
    accept.address_length = &length;
    unique_fd connection(detail::check_result(co_await accept, "accept"));
    peer.resize(length);
    co_return std::pair<unique_fd, socket_address>(std::move(connection), peer);
}

template <class>
coro<> event_loop::sock_connect(int fd, socket_address address) {
    socklen_t length = address.size();
    detail::io_awaiter connect(io_opcode::connect, fd);
    connect.address = address.data();
    connect.address_length = &length;
    detail::check_result(co_await connect, "connect");
}

}  // namespace corio
