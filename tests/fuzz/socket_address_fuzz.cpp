// Fuzzes corio's address parsing and formatting (include/corio/net/socket_address.hpp and the
// numeric part of include/corio/net/resolve.hpp) against the C library. corio has no
// "host:port" parser of its own (hosts and ports travel apart); what it parses is a numeric
// host (`socket_address::ip`, and `getaddrinfo`'s inline path, `detail::resolve_inline`), a
// Unix socket path (`socket_address::unix_path`) and a raw `sockaddr` from the kernel; what it
// formats is `to_string()`, "127.0.0.1:80", "[::1]:80" or the path.
//
// The input is a host, optionally followed by '#' and a decimal port ("::1#8080"; the port is
// taken modulo 65536, 0 without one). The whole input, bytes and all, is also a Unix path and a
// raw sockaddr. Properties:
//   - no crash, no UB, no exception but the documented one: `std::invalid_argument` from
//     `ip`, `unix_path` and the sockaddr constructor; `std::system_error` in `gai_category()`
//     from `getaddrinfo`;
//   - `ip` accepts exactly what inet_pton(AF_INET or AF_INET6) accepts, with the same bytes;
//     a host with a NUL in it is refused (inet_pton would only see the part before it);
//   - `to_string` writes inet_ntop's text and the port, and what it writes parses back to the
//     same address (split as "host:port" / "[host]:port" here);
//   - `resolve_inline` takes numeric hosts and the empty host, for every family and AI_PASSIVE,
//     and gives the addresses getaddrinfo(AI_NUMERICHOST) gives; the public `getaddrinfo` gives
//     the same; a numeric host only getaddrinfo knows ("127.1", "fe80::1%1") goes through
//     `detail::getaddrinfo_blocking` with AI_NUMERICHOST, which must agree with it too;
//   - a Unix path formats back to itself and re-parses to the same address.
// Nothing here touches the network: every getaddrinfo call has AI_NUMERICHOST (or a null host),
// and the public `getaddrinfo` is only called for hosts `resolve_inline` takes (no executor).
#include <corio/event_loop.hpp>
#include <corio/net/resolve.hpp>
#include <corio/net/socket_address.hpp>
#include <corio/run.hpp>

#include "fuzz_support.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

namespace {

using corio_fuzz::escaped;

[[noreturn]] void fail(const std::string& what) { corio_fuzz::fail("socket_address_fuzz", what); }

bool same_bytes(const corio::socket_address& a, const corio::socket_address& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string describe(const corio::socket_address& a) {
    return "'" + escaped(a.to_string()) + "' (family " + std::to_string(a.family()) + ", " +
           std::to_string(a.size()) + " bytes)";
}

// --- the reference: what the C library says the host is ---------------------------------------

struct numeric_host {
    std::optional<in_addr> v4;
    std::optional<in6_addr> v6;
};

// inet_pton, on the whole host: one with a NUL in it is no address.
numeric_host pton(std::string_view host) {
    numeric_host result;
    if (host.find('\0') != std::string_view::npos) return result;
    const std::string text(host);
    in_addr v4{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) result.v4 = v4;
    in6_addr v6{};
    if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) result.v6 = v6;
    return result;
}

// A resolution's addresses, as (socktype, address bytes), sorted: corio promises IPv4 first
// for the empty host, glibc lists IPv6 first, so the order is not compared.
using address_set = std::vector<std::pair<int, std::string>>;

std::string bytes_of(const corio::socket_address& a) {
    return std::string(reinterpret_cast<const char*>(a.data()), a.size());
}

address_set set_of(const std::vector<corio::address_info>& infos) {
    address_set result;
    for (const corio::address_info& info : infos) {
        if (info.family != info.address.family()) fail("address_info.family is not its address's");
        result.emplace_back(info.socktype, bytes_of(info.address));
    }
    std::sort(result.begin(), result.end());
    return result;
}

// getaddrinfo(3) with AI_NUMERICHOST (or a null host, for the empty one): never a DNS query.
// Empty optional when it refuses.
std::optional<address_set> reference_resolve(const std::string& host, std::uint16_t port,
                                             const corio::resolve_options& options) {
    addrinfo hints{};
    hints.ai_family = options.family;
    hints.ai_socktype = options.socktype;
    hints.ai_flags = options.flags | AI_NUMERICSERV | (host.empty() ? 0 : AI_NUMERICHOST);
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found) !=
        0) {
        return std::nullopt;
    }
    address_set result;
    for (const addrinfo* p = found; p != nullptr; p = p->ai_next) {
        const std::pair<int, std::string> entry(
            p->ai_socktype, std::string(reinterpret_cast<const char*>(p->ai_addr), p->ai_addrlen));
        if (std::find(result.begin(), result.end(), entry) == result.end()) result.push_back(entry);
    }
    ::freeaddrinfo(found);
    std::sort(result.begin(), result.end());
    return result;
}

// --- socket_address::ip and to_string ---------------------------------------------------------

// Splits what to_string wrote for an IP address: "1.2.3.4:80" or "[::1]:80".
void split_formatted(const std::string& text, std::string& host, std::uint16_t& port) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos) fail("to_string wrote no port: '" + escaped(text) + "'");
    host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    const std::string digits = text.substr(colon + 1);
    unsigned long value = 0;
    for (const char c : digits) {
        if (c < '0' || c > '9') fail("to_string wrote a bad port: '" + escaped(text) + "'");
        value = value * 10 + static_cast<unsigned long>(c - '0');
        if (value > 65535) fail("to_string wrote a port past 65535: '" + escaped(text) + "'");
    }
    if (digits.empty()) fail("to_string wrote an empty port: '" + escaped(text) + "'");
    port = static_cast<std::uint16_t>(value);
}

// to_string, inet_ntop and a second ip() agree on an IP address.
void check_round_trip(const corio::socket_address& a) {
    char expected_host[INET6_ADDRSTRLEN] = {};
    const bool v4 = a.family() == AF_INET;
    const void* raw =
        v4 ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(a.data())->sin_addr)
           : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(a.data())->sin6_addr);
    if (::inet_ntop(a.family(), raw, expected_host, sizeof expected_host) == nullptr) {
        fail("inet_ntop refused " + describe(a));
    }
    const std::string text = a.to_string();
    std::string host;
    std::uint16_t port = 0;
    split_formatted(text, host, port);
    const std::string expected_text =
        v4 ? std::string(expected_host) + ':' + std::to_string(a.port())
           : '[' + std::string(expected_host) + "]:" + std::to_string(a.port());
    if (text != expected_text) {
        fail("to_string wrote '" + escaped(text) + "', inet_ntop says '" + expected_text + "'");
    }
    if (port != a.port()) fail("to_string's port is not port(): " + describe(a));
    corio::socket_address again;
    try {
        again = corio::socket_address::ip(host, port);
    } catch (const std::invalid_argument&) {
        fail("what to_string wrote does not parse back: '" + escaped(text) + "'");
    }
    if (!same_bytes(a, again)) {
        fail("round trip: " + describe(a) + " came back as " + describe(again));
    }
}

void check_ip(std::string_view host, std::uint16_t port) {
    const numeric_host reference = pton(host);
    corio::socket_address parsed;
    try {
        parsed = corio::socket_address::ip(host, port);
    } catch (const std::invalid_argument&) {
        if (reference.v4 || reference.v6) {
            fail("ip('" + escaped(host) + "') refused a host inet_pton takes");
        }
        return;
    }
    // Any other exception escapes to LLVMFuzzerTestOneInput, which reports it.
    if (!reference.v4 && !reference.v6) {
        fail("ip('" + escaped(host) + "') took a host inet_pton refuses, as " + describe(parsed));
    }
    if (parsed.port() != port) fail("ip() lost the port: " + describe(parsed));
    if (reference.v4) {
        const auto* v4 = reinterpret_cast<const sockaddr_in*>(parsed.data());
        if (parsed.family() != AF_INET || parsed.size() != sizeof(sockaddr_in) ||
            std::memcmp(&v4->sin_addr, &*reference.v4, sizeof(in_addr)) != 0) {
            fail("ip('" + escaped(host) + "') is " + describe(parsed) + ", not inet_pton's");
        }
    } else {
        const auto* v6 = reinterpret_cast<const sockaddr_in6*>(parsed.data());
        if (parsed.family() != AF_INET6 || parsed.size() != sizeof(sockaddr_in6) ||
            std::memcmp(&v6->sin6_addr, &*reference.v6, sizeof(in6_addr)) != 0) {
            fail("ip('" + escaped(host) + "') is " + describe(parsed) + ", not inet_pton's");
        }
    }
    check_round_trip(parsed);
}

// --- resolve_inline, getaddrinfo_blocking and getaddrinfo -------------------------------------

bool is_gai_error(const std::system_error& e) {
    return e.code().category() == corio::gai_category();
}

corio::event_loop& shared_loop() {
    static const std::unique_ptr<corio::event_loop> loop =
        corio::new_event_loop({.backend = corio::backend::epoll});
    return *loop;
}

// The public getaddrinfo, for a host resolve_inline takes (so that it never reaches the
// executor): its addresses, or empty for a gai_category error.
std::optional<address_set> public_resolve(const std::string& host, std::uint16_t port,
                                          const corio::resolve_options& options) {
    try {
        return set_of(shared_loop().run_until_complete(corio::getaddrinfo(host, port, options)));
    } catch (const std::system_error& e) {
        if (!is_gai_error(e)) throw;
        return std::nullopt;
    }
}

void check_resolve(const std::string& host, std::uint16_t port,
                   const corio::resolve_options& options) {
    const std::string what = "getaddrinfo('" + escaped(host) + "', family " +
                             std::to_string(options.family) + ", flags " +
                             std::to_string(options.flags) + ")";
    const bool has_nul = host.find('\0') != std::string::npos;
    std::vector<corio::address_info> inline_result;
    bool taken = false;
    try {
        taken = corio::detail::resolve_inline(host, port, options, inline_result);
    } catch (const std::system_error& e) {
        if (!is_gai_error(e)) throw;
        if (!has_nul) fail(what + ": resolve_inline threw for a host without a NUL");
        return;
    }
    if (has_nul) {
        // inet_pton and getaddrinfo(3) only see the part before the NUL: a host that is not
        // what the caller wrote must fail here, not resolve to something else or go to DNS.
        fail(what + ": a host with a NUL in it was " +
             (taken ? "resolved" : "left to getaddrinfo(3)"));
    }
    const numeric_host reference = pton(host);
    const bool numeric = host.empty() || reference.v4 || reference.v6;
    if (taken != numeric) {
        fail(what + (taken ? ": resolve_inline took a host inet_pton refuses"
                           : ": resolve_inline left a numeric host to getaddrinfo(3)"));
    }
    const std::optional<address_set> expected = reference_resolve(host, port, options);
    if (!taken) {
        // What the executor would do, minus any chance of DNS: only for what the C library
        // calls numeric too.
        if (!expected) return;
        corio::resolve_options numeric_only = options;
        numeric_only.flags |= AI_NUMERICHOST;
        std::optional<address_set> blocking;
        try {
            blocking = set_of(corio::detail::getaddrinfo_blocking(host, port, numeric_only));
        } catch (const std::system_error& e) {
            if (!is_gai_error(e)) throw;
        }
        if (blocking != expected)
            fail(what + ": getaddrinfo_blocking disagrees with getaddrinfo(3)");
        return;
    }
    // A numeric host of another family than the one asked for: getaddrinfo(3) refuses it, and
    // corio's getaddrinfo throws EAI_NONAME.
    const std::optional<address_set> found =
        inline_result.empty() ? std::nullopt : std::optional<address_set>(set_of(inline_result));
    // glibc gives an IPv4-mapped IPv6 literal ("::ffff:1.2.3.4") as its IPv4 address when asked
    // for AF_INET; corio, as its documentation says, refuses an address of the other family.
    if (!found && expected && options.family == AF_INET && reference.v6 &&
        IN6_IS_ADDR_V4MAPPED(&*reference.v6)) {
        return;
    }
    if (found != expected) fail(what + ": resolve_inline disagrees with getaddrinfo(3)");
    if (public_resolve(host, port, options) != expected) {
        fail(what + ": corio::getaddrinfo disagrees with getaddrinfo(3)");
    }
}

// --- unix_path and the raw constructor ----------------------------------------------------------

constexpr std::size_t sun_path_size = sizeof(sockaddr_un{}.sun_path);

void check_unix_path(std::string_view path) {
    const bool abstract = !path.empty() && path.front() == '\0';
    // A file system path ends at its first NUL for the kernel: one with a NUL inside names
    // another file than the caller wrote, and must be refused.
    const bool valid =
        path.size() < sun_path_size && (abstract || path.find('\0') == std::string_view::npos);
    corio::socket_address a;
    try {
        a = corio::socket_address::unix_path(path);
    } catch (const std::invalid_argument&) {
        if (valid) fail("unix_path('" + escaped(path) + "') refused a valid path");
        return;
    }
    if (!valid) fail("unix_path('" + escaped(path) + "') took an invalid path: " + describe(a));
    if (a.family() != AF_UNIX) fail("unix_path is not AF_UNIX: " + describe(a));
    const std::string text = a.to_string();
    // The empty path and "\0" are one address (sun_path holds a single NUL either way).
    if (!path.empty() && text != path) {
        fail("unix_path('" + escaped(path) + "').to_string() is '" + escaped(text) + "'");
    }
    const corio::socket_address again = corio::socket_address::unix_path(text);
    if (!same_bytes(a, again)) {
        fail("unix round trip: " + describe(a) + " came back as " + describe(again));
    }
}

// What the kernel may hand over (getpeername, recvfrom): any bytes, any length.
void check_raw(std::string_view bytes) {
    sockaddr_storage raw{};
    const std::size_t copied = std::min(bytes.size(), sizeof raw);
    std::memcpy(&raw, bytes.data(), copied);
    const auto length = static_cast<socklen_t>(bytes.size());
    corio::socket_address a;
    try {
        a = corio::socket_address(reinterpret_cast<const sockaddr*>(&raw), length);
    } catch (const std::invalid_argument&) {
        if (bytes.size() <= sizeof raw) fail("the sockaddr constructor refused a short address");
        return;
    }
    if (bytes.size() > sizeof raw) fail("the sockaddr constructor took more than it holds");
    if (a.size() != length || std::memcmp(a.data(), &raw, length) != 0) {
        fail("the sockaddr constructor changed the bytes");
    }
    const std::string text = a.to_string();  // must not read past what it holds
    if ((a.family() == AF_INET && length >= sizeof(sockaddr_in)) ||
        (a.family() == AF_INET6 && length >= sizeof(sockaddr_in6))) {
        std::string host;
        std::uint16_t port = 0;
        split_formatted(text, host, port);
        const corio::socket_address again = corio::socket_address::ip(host, port);
        // Only the address and the port: to_string drops sin_zero, flow info and scope.
        const bool same =
            a.family() == AF_INET
                ? std::memcmp(&reinterpret_cast<const sockaddr_in*>(a.data())->sin_addr,
                              &reinterpret_cast<const sockaddr_in*>(again.data())->sin_addr,
                              sizeof(in_addr)) == 0
                : std::memcmp(&reinterpret_cast<const sockaddr_in6*>(a.data())->sin6_addr,
                              &reinterpret_cast<const sockaddr_in6*>(again.data())->sin6_addr,
                              sizeof(in6_addr)) == 0;
        if (!same || again.port() != a.port()) {
            fail("raw round trip: " + describe(a) + " came back as " + describe(again));
        }
    }
}

// --- the input ----------------------------------------------------------------------------------

// "host#port": the port after the last '#', if only digits follow it.
void split_input(std::string_view input, std::string_view& host, std::uint16_t& port) {
    host = input;
    port = 0;
    const std::size_t hash = input.rfind('#');
    if (hash == std::string_view::npos) return;
    const std::string_view digits = input.substr(hash + 1);
    if (digits.empty() || digits.size() > 9 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return;
    }
    unsigned long value = 0;
    for (const char c : digits) value = value * 10 + static_cast<unsigned long>(c - '0');
    host = input.substr(0, hash);
    port = static_cast<std::uint16_t>(value % 65536);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string_view host;
    std::uint16_t port = 0;
    split_input(input, host, port);
    try {
        check_ip(host, port);
        for (const int family : {AF_UNSPEC, AF_INET, AF_INET6}) {
            for (const int flags : {0, AI_PASSIVE}) {
                corio::resolve_options options;
                options.family = family;
                options.flags = flags;
                check_resolve(std::string(host), port, options);
            }
        }
        check_unix_path(input);
        check_raw(input);
    } catch (const std::exception& e) {
        fail("'" + escaped(input) + "': unexpected exception: " + e.what());
    }
    return 0;
}
