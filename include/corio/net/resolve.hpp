#pragma once
/// \file
/// Host name resolution off the loop: `corio::getaddrinfo` (asyncio's `loop.getaddrinfo`).
///
/// A numeric address (`"127.0.0.1"`, `"::1"`) or an empty host is resolved inline, with no
/// executor and no suspension. Anything else goes to `getaddrinfo(3)` on a worker thread of the
/// loop's executor (`run_in_executor`), as asyncio does, so that a slow DNS server never
/// blocks the loop.
///
/// Its coroutines that need no template parameter have one, defaulted (`template <class = void>`),
/// so that only a program that calls one compiles it (docs/architecture.md, "Compile time").

#include "corio/coro.hpp"
#include "corio/event_loop.hpp"
#include "corio/executor.hpp"
#include "corio/future.hpp"
#include "corio/net/socket_address.hpp"

#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace corio {

/// The error category of `getaddrinfo`'s `EAI_*` codes (asyncio's `socket.gaierror`).
[[nodiscard]] inline const std::error_category& gai_category() noexcept {
    class category final : public std::error_category {
    public:
        [[nodiscard]] const char* name() const noexcept override { return "getaddrinfo"; }
        [[nodiscard]] std::string message(int code) const override { return ::gai_strerror(code); }
    };
    static const category instance;
    return instance;
}

/// One result of a resolution: what `socket()` and `connect()` / `bind()` need.
struct address_info {
    int family = AF_UNSPEC;
    int socktype = SOCK_STREAM;
    int protocol = 0;
    socket_address address;
};

/// What to resolve for, as `getaddrinfo`'s hints.
struct resolve_options {
    /// `AF_UNSPEC` (both), `AF_INET` or `AF_INET6`.
    int family = AF_UNSPEC;
    /// `SOCK_STREAM` or `SOCK_DGRAM`.
    int socktype = SOCK_STREAM;
    int protocol = 0;
    /// `AI_PASSIVE` for addresses to bind (an empty host is then the wildcard address),
    /// `AI_ADDRCONFIG`...
    int flags = 0;
};

namespace detail {

inline address_info make_info(socket_address address, const resolve_options& options) {
    const int protocol = options.protocol != 0            ? options.protocol
                         : options.socktype == SOCK_DGRAM ? IPPROTO_UDP
                                                          : IPPROTO_TCP;
    return address_info{address.family(), options.socktype, protocol, address};
}

/// Resolves a numeric address or an empty host without asking anyone; false if `host` is a
/// name. An empty host is the wildcard address with `AI_PASSIVE`, loopback otherwise (as
/// `getaddrinfo(NULL, ...)`), IPv4 first.
template <class = void>
inline bool resolve_inline(const std::string& host, std::uint16_t port,
                           const resolve_options& options, std::vector<address_info>& out) {
    // inet_pton and getaddrinfo(3) read C strings: "127.0.0.1\0evil.example" would resolve
    // the part before the NUL, or send it to DNS. No name has a NUL in it.
    if (host.find('\0') != std::string::npos) {
        throw std::system_error(EAI_NONAME, gai_category(), "getaddrinfo: a NUL in the host name");
    }
    const bool want_v4 = options.family == AF_UNSPEC || options.family == AF_INET;
    const bool want_v6 = options.family == AF_UNSPEC || options.family == AF_INET6;
    if (host.empty()) {
        const bool passive = (options.flags & AI_PASSIVE) != 0;
        if (want_v4) {
            out.push_back(
                make_info(socket_address::ip(passive ? "0.0.0.0" : "127.0.0.1", port), options));
        }
        if (want_v6)
            out.push_back(make_info(socket_address::ip(passive ? "::" : "::1", port), options));
        return true;
    }
    in6_addr scratch{};
    if (::inet_pton(AF_INET, host.c_str(), &scratch) == 1) {
        if (want_v4) out.push_back(make_info(socket_address::ip(host, port), options));
        return true;
    }
    if (::inet_pton(AF_INET6, host.c_str(), &scratch) == 1) {
        if (want_v6) out.push_back(make_info(socket_address::ip(host, port), options));
        return true;
    }
    return false;
}

/// `getaddrinfo(3)`, blocking: for a worker thread. Throws `std::system_error` in
/// `gai_category()` (or the system category for `EAI_SYSTEM`).
template <class = void>
inline std::vector<address_info> getaddrinfo_blocking(const std::string& host, std::uint16_t port,
                                                      const resolve_options& options) {
    addrinfo hints{};
    hints.ai_family = options.family;
    hints.ai_socktype = options.socktype;
    hints.ai_protocol = options.protocol;
    hints.ai_flags = options.flags | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    if (rc != 0) {
        if (rc == EAI_SYSTEM) {
            throw std::system_error(errno, std::system_category(), "getaddrinfo " + host);
        }
        throw std::system_error(rc, gai_category(), "getaddrinfo " + host);
    }
    std::vector<address_info> result;
    try {
        for (const addrinfo* p = found; p != nullptr; p = p->ai_next) {
            address_info info{p->ai_family, p->ai_socktype, p->ai_protocol,
                              socket_address(p->ai_addr, p->ai_addrlen)};
            bool duplicate = false;
            for (const auto& seen : result) {
                duplicate = duplicate || (seen.socktype == info.socktype &&
                                          seen.address.size() == info.address.size() &&
                                          std::memcmp(seen.address.data(), info.address.data(),
                                                      info.address.size()) == 0);
            }
            if (!duplicate) result.push_back(info);
        }
    } catch (...) {
        ::freeaddrinfo(found);
        throw;
    }
    ::freeaddrinfo(found);
    return result;
}

}  // namespace detail

/// Resolves `host` and `port` into the addresses to try, in `getaddrinfo`'s order (asyncio's
/// `loop.getaddrinfo`).
///
/// Lazy (a `coro`). Numeric addresses and an empty host complete at once, with no syscall and
/// no executor; host names are resolved by `getaddrinfo(3)` on a worker of the running loop's
/// executor. Failure is `std::system_error` in `gai_category()` (`EAI_NONAME`...).
/// Cancellation returns at once with `cancelled_error`; the worker's answer is then dropped.
template <class = void>
[[nodiscard]] inline coro<std::vector<address_info>>
getaddrinfo(std::string host, std::uint16_t port, resolve_options options = {}) {
    std::vector<address_info> inline_result;
    if (detail::resolve_inline(host, port, options, inline_result)) {
        // A numeric address of another family than the one asked for.
        if (inline_result.empty()) throw std::system_error(EAI_NONAME, gai_category(), host);
        co_return inline_result;
    }
    future<std::vector<address_info>> resolving =
        get_running_loop().run_in_executor([host = std::move(host), port, options] {
            return detail::getaddrinfo_blocking(host, port, options);
        });
    co_return co_await std::move(resolving);
}

}  // namespace corio
