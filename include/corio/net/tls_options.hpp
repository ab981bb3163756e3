#pragma once
/// \file
/// What the streams, `open_connection` and `start_server` know of TLS without OpenSSL: its
/// errors (`tls_error`, `tls_verify_error`), `tls_context_ref` (the `.tls = &ctx` of their
/// options) and `start_tls_options`. `tls_context` itself is in <corio/tls.hpp>.

#include "corio/net/detail/stream_filter.hpp"

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace corio {

/// A TLS session failed (asyncio's `ssl.SSLError`): a handshake the peer refused, a
/// corrupted record, a protocol violation. `what()` holds OpenSSL's reason.
class tls_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The peer's certificate was refused (asyncio's `ssl.SSLCertVerificationError`): not signed
/// by a trusted authority, expired, or not for the host name asked for. `what()` holds
/// OpenSSL's reason ("certificate verify failed: self-signed certificate").
class tls_verify_error : public tls_error {
public:
    tls_verify_error(const std::string& what, long verify_result)
        : tls_error(what), verify_result_(verify_result) {}
    /// OpenSSL's `X509_V_ERR_*` code.
    [[nodiscard]] long verify_result() const noexcept { return verify_result_; }

private:
    long verify_result_;
};

/// A `tls_context`, or none: the `tls` of `connection_options` and `server_options`, set as
/// `.tls = &ctx`. The context must outlive the connection attempt or the server (each session
/// keeps what it needs of it).
class tls_context_ref {
public:
    tls_context_ref() noexcept = default;
    tls_context_ref(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor)
    /// From `&ctx` (a `const tls_context*`).
    template <class Context>
        requires std::is_convertible_v<const Context*, const detail::tls_engine*>
    tls_context_ref(const Context* context) noexcept  // NOLINT(google-explicit-constructor)
        : engine_(context) {}

    explicit operator bool() const noexcept { return engine_ != nullptr; }
    [[nodiscard]] const detail::tls_engine* engine() const noexcept { return engine_; }

private:
    const detail::tls_engine* engine_ = nullptr;
};

/// A host name (or address) a server's certificate must be for, sent as SNI: at most 253
/// bytes (DNS's limit), held inline. Inline so that the options holding one stay trivially
/// copyable: g++ 12 copies an aggregate passed in braces to a coroutine byte by byte, which a
/// `std::string` member does not survive. `std::invalid_argument` for a longer name, or one
/// with a NUL.
class tls_host_name {
public:
    static constexpr std::size_t max_size = 253;

    tls_host_name() noexcept = default;
    tls_host_name(std::string_view name) {  // NOLINT(google-explicit-constructor)
        if (name.size() > max_size || name.find('\0') != std::string_view::npos) {
            throw std::invalid_argument("TLS server_hostname: more than 253 bytes, or a NUL");
        }
        name.copy(data_, name.size());
        size_ = static_cast<unsigned char>(name.size());
    }
    tls_host_name(const char* name)  // NOLINT(google-explicit-constructor)
        : tls_host_name(std::string_view(name)) {}
    tls_host_name(const std::string& name)  // NOLINT(google-explicit-constructor)
        : tls_host_name(std::string_view(name)) {}

    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::string_view view() const noexcept { return {data_, size_}; }
    [[nodiscard]] std::string str() const { return std::string(view()); }

private:
    char data_[max_size + 1] = {};
    unsigned char size_ = 0;
};

/// How long a TLS handshake may take by default (asyncio's `ssl_handshake_timeout`, 60 s).
inline constexpr std::chrono::seconds default_tls_handshake_timeout{60};

/// Options of `stream_writer::start_tls`.
struct start_tls_options {
    /// The name the peer's certificate must be for, sent as SNI (clients only). Empty: no
    /// host name check (the chain is still verified when the context says so).
    tls_host_name server_hostname{};
    /// The handshake's time limit: past it, `timeout_error` and the stream is closed.
    std::chrono::nanoseconds handshake_timeout = default_tls_handshake_timeout;
};

}  // namespace corio
