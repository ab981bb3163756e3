#pragma once
/// \file
/// `corio::socket_address`: an IPv4, IPv6 or Unix socket address, by value.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace corio {

/// A socket address held by value (a `sockaddr_storage` and its length).
class socket_address {
public:
    socket_address() noexcept = default;

    /// From a `sockaddr` the kernel filled in.
    socket_address(const sockaddr* address, socklen_t length) {
        if (length > sizeof storage_) throw std::invalid_argument("socket_address: too long");
        std::memcpy(&storage_, address, length);
        length_ = length;
    }

    /// A numeric IPv4 or IPv6 address (`"127.0.0.1"`, `"::1"`) and a port. Throws
    /// `std::invalid_argument` for anything else (host names need resolution: see the streams).
    static socket_address ip(std::string_view host, std::uint16_t port) {
        const std::string text(host);
        // inet_pton reads a C string: "127.0.0.1\0junk" would pass as 127.0.0.1.
        if (host.find('\0') != std::string_view::npos) {
            throw std::invalid_argument("socket_address: a NUL in the IP address");
        }
        socket_address result;
        auto* v4 = reinterpret_cast<sockaddr_in*>(&result.storage_);
        if (::inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(port);
            result.length_ = sizeof(sockaddr_in);
            return result;
        }
        auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.storage_);
        if (::inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons(port);
            result.length_ = sizeof(sockaddr_in6);
            return result;
        }
        throw std::invalid_argument("socket_address: not a numeric IP address: '" + text + "'");
    }

    /// A Unix domain socket path (a leading '\0' makes it abstract).
    static socket_address unix_path(std::string_view path) {
        socket_address result;
        auto* un = reinterpret_cast<sockaddr_un*>(&result.storage_);
        if (path.size() >= sizeof un->sun_path) {
            throw std::invalid_argument("socket_address: Unix socket path too long");
        }
        // The kernel ends a file system path at its first NUL (an abstract name has no end).
        if (!path.empty() && path[0] != '\0' && path.find('\0') != std::string_view::npos) {
            throw std::invalid_argument("socket_address: a NUL in a Unix socket path");
        }
        un->sun_family = AF_UNIX;
        std::memcpy(un->sun_path, path.data(), path.size());
        result.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                                (path.empty() || path[0] != '\0' ? 1 : 0));
        return result;
    }

    [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
    [[nodiscard]] const sockaddr* data() const noexcept {
        return reinterpret_cast<const sockaddr*>(&storage_);
    }
    [[nodiscard]] sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    [[nodiscard]] socklen_t size() const noexcept { return length_; }
    /// The room a syscall may fill in (then `resize` to what it reported).
    [[nodiscard]] static constexpr socklen_t capacity() noexcept {
        return sizeof(sockaddr_storage);
    }
    void resize(socklen_t length) noexcept { length_ = length; }

    /// The port of an IP address (0 otherwise).
    [[nodiscard]] std::uint16_t port() const noexcept {
        if (family() == AF_INET)
            return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
        if (family() == AF_INET6) {
            return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
        }
        return 0;
    }

    /// `127.0.0.1:8080`, `[::1]:8080`, or the Unix path.
    [[nodiscard]] std::string to_string() const {
        char text[INET6_ADDRSTRLEN] = {};
        if (family() == AF_INET) {
            ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text,
                        sizeof text);
            return std::string(text) + ':' + std::to_string(port());
        }
        if (family() == AF_INET6) {
            ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr,
                        text, sizeof text);
            return '[' + std::string(text) + "]:" + std::to_string(port());
        }
        if (family() == AF_UNIX && length_ > offsetof(sockaddr_un, sun_path)) {
            const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
            const std::size_t room = length_ - offsetof(sockaddr_un, sun_path);
            // An abstract name is every byte the length covers, NULs included; a file system
            // path ends at its NUL (the kernel may count it, or not).
            if (un->sun_path[0] == '\0') return std::string(un->sun_path, room);
            return std::string(un->sun_path, ::strnlen(un->sun_path, room));
        }
        return {};
    }

private:
    sockaddr_storage storage_{};
    socklen_t length_ = 0;
};

}  // namespace corio
