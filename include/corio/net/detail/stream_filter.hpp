#pragma once
/// \file
/// `detail::stream_filter`, what a stream's transport sees of TLS: something between the
/// reader and writer and the socket that turns plaintext into bytes on the wire and back, and
/// `detail::tls_engine`, what makes one (a `tls_context`). Neither names OpenSSL: a program
/// without TLS compiles and links the streams without it.

#include "corio/detail/owned_ptr.hpp"

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace corio::detail {

class stream_transport;

/// A filter of one stream (TLS). Its output goes to the transport's `write_filtered`; its
/// input is what the transport receives into `input_space()`. None of its calls suspends.
class stream_filter {
public:
    /// What `handshake` and `read` give besides a count of bytes.
    static constexpr long need_input = -1;  ///< nothing until more bytes are received
    static constexpr long failed = -2;      ///< the session failed: see `throw_error`

    stream_filter() = default;
    stream_filter(const stream_filter&) = delete;
    stream_filter& operator=(const stream_filter&) = delete;
    virtual ~stream_filter() = default;

    /// Advances the handshake: 1 once it is done, `need_input` or `failed`.
    virtual long handshake() noexcept = 0;
    /// Up to `size` bytes of plaintext into `out`: how many (0 at the end of the stream),
    /// `need_input` or `failed`.
    virtual long read(char* out, std::size_t size) noexcept = 0;
    /// Sends `data` through the filter; false when the session or the transport failed.
    virtual bool write(const char* data, std::size_t size) noexcept = 0;
    /// Where the next bytes received go (room for at least one).
    virtual std::span<char> input_space() = 0;
    /// `n` bytes were received into `input_space()`; 0: the peer closed.
    virtual void input_received(std::size_t n) noexcept = 0;
    /// Bytes received before the filter was attached (`start_tls`), to come first.
    virtual void input_unread(std::string_view data) = 0;
    /// Ends the session politely (TLS `close_notify`), before the transport closes.
    virtual void close() noexcept = 0;
    /// The session's failure as an exception (`tls_error`, `tls_verify_error`).
    [[noreturn]] virtual void throw_error() const = 0;

    /// What the session negotiated: its protocol version ("TLSv1.3"), its ALPN protocol, the
    /// peer certificate's subject; empty strings when there is none.
    [[nodiscard]] virtual std::string version() const = 0;
    [[nodiscard]] virtual std::string alpn_protocol() const = 0;
    [[nodiscard]] virtual std::string peer_certificate_subject() const = 0;
};

/// What a stream needs of a `tls_context`: a new session for one connection.
class tls_engine {
public:
    /// A session for `transport`: a client session verifying `server_hostname` (and sending
    /// it as SNI) unless it is empty, or a server session if the context is a server's.
    [[nodiscard]] virtual owned_ptr<stream_filter>
    make_session(stream_transport& transport, const std::string& server_hostname) const = 0;

protected:
    tls_engine() = default;
    tls_engine(const tls_engine&) = default;
    tls_engine& operator=(const tls_engine&) = default;
    ~tls_engine() = default;
};

}  // namespace corio::detail
