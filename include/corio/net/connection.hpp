#pragma once
/// \file
/// `corio::open_connection` and `corio::open_unix_connection` (asyncio's): a connected socket
/// as a `stream_reader` and a `stream_writer`.
///
/// Its coroutines that need no template parameter have one, defaulted (`template <class = void>`),
/// so that only a program that calls one compiles it (docs/architecture.md, "Compile time").

#include "corio/coro.hpp"
#include "corio/detail/fd.hpp"
#include "corio/detail/unique_fd.hpp"
#include "corio/impl/io_awaiter.hpp"
#include "corio/net/resolve.hpp"
#include "corio/net/socket_address.hpp"
#include "corio/net/stream.hpp"
#include "corio/net/tls_options.hpp"

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace corio {

/// Options of `open_connection` and `open_unix_connection`.
struct connection_options {
    /// The reader's buffer limit (see `stream_reader::readline`).
    std::size_t limit = default_stream_limit;
    /// `AF_UNSPEC` (try IPv4 and IPv6 addresses), `AF_INET` or `AF_INET6`. TCP only.
    int family = AF_UNSPEC;
    /// TLS (asyncio's `ssl=`): `.tls = &ctx`, a `tls_context::client()` (<corio/tls.hpp>). The
    /// handshake is done when the connection is returned.
    tls_context_ref tls{};
    /// The name the server's certificate must be for, sent as SNI; empty: the host connected
    /// to (`open_connection`), no name check (`open_unix_connection`).
    tls_host_name server_hostname{};
    /// The TLS handshake's time limit (`timeout_error` past it).
    std::chrono::nanoseconds tls_handshake_timeout = default_tls_handshake_timeout;
};

namespace detail {

/// A new non-blocking, close-on-exec socket.
[[nodiscard]] inline unique_fd open_socket(int family, int type, int protocol) {
    unique_fd fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
    if (!fd) throw_errno(errno, "socket");
    return fd;
}

/// Sets TCP_NODELAY on a TCP socket (asyncio does, for every TCP connection).
inline void set_nodelay(int fd) noexcept {
    const int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/// Connects a new socket of `info`'s family to `info.address`; the connected socket, or
/// `-errno` in `error`.
template <class = void>
inline coro<unique_fd> connect_to(address_info info, int& error) {
    unique_fd fd = open_socket(info.family, info.socktype, info.protocol);
    socklen_t length = info.address.size();
    io_awaiter connect(io_opcode::connect, fd.get());
    connect.address = info.address.data();
    connect.address_length = &length;
    const int result = co_await connect;
    if (result < 0) {
        error = -result;
        co_return unique_fd();
    }
    co_return fd;
}

/// The error of a connection attempt to several addresses: the common errno if they all failed
/// alike (ECONNREFUSED...), else the first one's, naming every address tried.
[[noreturn]] inline void throw_connect_error(const std::vector<address_info>& tried,
                                             const std::vector<int>& errors) {
    bool alike = true;
    for (int e : errors) alike = alike && e == errors.front();
    std::string what = "connect to";
    for (std::size_t i = 0; i < tried.size(); ++i) {
        what += (i == 0 ? " " : ", ") + tried[i].address.to_string();
        if (!alike) what += " (" + std::system_category().message(errors[i]) + ")";
    }
    throw std::system_error(errors.front(), std::system_category(), what);
}

}  // namespace detail

/// Connects to `host`:`port` over TCP and returns the connection's reader and writer
/// (asyncio's `open_connection`): `auto [reader, writer] = co_await corio::open_connection(h, p);`
///
/// Lazy (a `coro`). The host is resolved off the loop (numeric addresses at once, see
/// `getaddrinfo`); each address is tried in turn (IPv6 and IPv4 alike) until one accepts. The
/// socket is non-blocking, close-on-exec, with `TCP_NODELAY`. Failure to connect is
/// `std::system_error` (`ECONNREFUSED` when every address refused); failure to resolve is
/// `std::system_error` in `gai_category()`. Cancellation withdraws the connect in progress.
template <class = void>
[[nodiscard]] inline coro<stream_pair> open_connection(std::string host, std::uint16_t port,
                                                       connection_options options = {}) {
    resolve_options hints;
    hints.family = options.family;
    hints.socktype = SOCK_STREAM;
    const std::vector<address_info> addresses = co_await getaddrinfo(host, port, hints);
    if (addresses.empty()) throw std::system_error(EAI_NONAME, gai_category(), host);
    std::vector<int> errors;
    for (const address_info& info : addresses) {
        int error = 0;
        unique_fd fd = co_await detail::connect_to(info, error);
        if (fd) {
            detail::set_nodelay(fd.get());
            stream_pair streams = detail::make_socket_streams(std::move(fd), options.limit);
            if (options.tls) {
                // Named: g++ 12 mishandles braced aggregate temporaries in coroutines.
                start_tls_options tls_options;
                tls_options.server_hostname =
                    options.server_hostname.empty() ? tls_host_name(host) : options.server_hostname;
                tls_options.handshake_timeout = options.tls_handshake_timeout;
                co_await streams.writer.start_tls_with(*options.tls.engine(),
                                                       std::move(tls_options));
            }
            co_return streams;
        }
        errors.push_back(error);
    }
    detail::throw_connect_error(addresses, errors);
}

/// Connects to the Unix domain socket at `path` (a leading '\0' names an abstract socket)
/// and returns its reader and writer (asyncio's `open_unix_connection`). As `open_connection`;
/// `options.family` is ignored.
template <class = void>
[[nodiscard]] inline coro<stream_pair> open_unix_connection(std::string path,
                                                            connection_options options = {}) {
    address_info info{AF_UNIX, SOCK_STREAM, 0, socket_address::unix_path(path)};
    int error = 0;
    unique_fd fd = co_await detail::connect_to(info, error);
    if (!fd) throw std::system_error(error, std::system_category(), "connect to " + path);
    stream_pair streams = detail::make_socket_streams(std::move(fd), options.limit);
    if (options.tls) {
        start_tls_options tls_options;  // named, as in open_connection
        tls_options.server_hostname = options.server_hostname;
        tls_options.handshake_timeout = options.tls_handshake_timeout;
        co_await streams.writer.start_tls_with(*options.tls.engine(), std::move(tls_options));
    }
    co_return streams;
}

}  // namespace corio
