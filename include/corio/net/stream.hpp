#pragma once
/// \file
/// Streams: `corio::stream_reader` and `corio::stream_writer` (asyncio's `StreamReader` and
/// `StreamWriter`) over a connected socket or a pipe, and the transport they share.
///
/// A reader and a writer are cheap, copyable handles to one reference-counted transport that
/// owns the descriptor, the reader's buffer and the writer's buffer:
///
/// - Reads go straight through the reactor (`recv` on sockets, `read` on pipes) into the
///   reader's buffer, which is reused from one read to the next (or straight into the caller's
///   memory for `read_into`, `readexactly_into` and big reads): a read allocates nothing but
///   the string it returns, and the `_view` / `_into` forms not even that.
/// - `write()` is not awaitable, as in asyncio: with nothing buffered it tries the syscall at
///   once; what the kernel does not take is buffered and flushed in the background by one
///   operation the transport owns (no task, no allocation per write beyond the buffer).
///   `co_await drain()` waits while the buffer is above its high-water mark.
/// - Errors: a reset peer gives `std::system_error` (`ECONNRESET`, `EPIPE`) on the next read,
///   write or drain, never SIGPIPE. Sockets send with `MSG_NOSIGNAL`; the first pipe writer
///   made in the process sets SIGPIPE to SIG_IGN if it still had its default disposition
///   (what CPython does at start-up), so that a pipe whose reader is gone gives `EPIPE` too.
/// - Lifetime: when the last reader or writer handle goes, the transport closes itself as
///   `close()` does (what is buffered is still sent, then the descriptor is closed). While
///   its background write is in flight it keeps itself alive, and deletes itself when that
///   completes (or when the loop closes and withdraws it).
///
/// Its coroutines that need no template parameter have one, defaulted (`template <class = void>`),
/// so that only a program that calls one compiles it (docs/architecture.md, "Compile time").

#include "corio/async_generator.hpp"
#include "corio/coro.hpp"
#include "corio/detail/ranges.hpp"
#include "corio/detail/unique_fd.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/net/detail/stream_reading.hpp"
#include "corio/net/detail/stream_transport.hpp"
#include "corio/net/detail/tls_start.hpp"
#include "corio/net/detail/transport_ref.hpp"
#include "corio/net/socket_address.hpp"
#include "corio/net/tls_options.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/uio.h>

namespace corio {

/// Reads from a connection or a pipe (asyncio's `StreamReader`).
///
/// A cheap handle: copies share one transport (and its buffer) with the `stream_writer` of
/// the same connection. Every read is a lazy `coro` to `co_await` in a task; one read at a
/// time per stream (a second concurrent one throws `invalid_state_error`). Bytes come back as
/// `std::string` (text protocols need no casts); the `_into` forms fill the caller's memory,
/// the `_view` forms return a view into the reader's buffer, valid until the next read.
///
/// Cancellation withdraws the receive in the kernel and throws `cancelled_error`; no byte
/// already received is lost (it stays buffered for the next read). End of stream: `read`
/// returns what there is (empty at the end), `readexactly` and `readuntil` throw
/// `incomplete_read_error` with the partial bytes. Errors (a reset peer) are
/// `std::system_error`, thrown once the bytes received before them have been read.
class stream_reader {
public:
    /// An empty reader (`explicit operator bool` is false).
    stream_reader() noexcept = default;
    explicit stream_reader(detail::transport_ref t) noexcept : t_(std::move(t)) {}

    explicit operator bool() const noexcept { return static_cast<bool>(t_); }

    /// Up to `n` bytes: what is buffered, else what one receive brings (an empty string only
    /// at end of stream). `n < 0` (the default) reads until end of stream.
    template <class = void>
    [[nodiscard]] coro<std::string> read(std::ptrdiff_t n = -1) const {
        return detail::stream_reading::read(t_, n);
    }
    /// Up to `buffer.size()` bytes into `buffer` (0 only at end of stream, or for an empty
    /// buffer); with nothing buffered, the kernel writes straight into `buffer`.
    template <class = void>
    [[nodiscard]] coro<std::size_t> read_into(std::span<char> buffer) const {
        return detail::stream_reading::read_into(t_, buffer);
    }
    template <class = void>
    [[nodiscard]] coro<std::size_t> read_into(std::span<std::byte> buffer) const {
        return read_into(std::span<char>(reinterpret_cast<char*>(buffer.data()), buffer.size()));
    }
    /// Exactly `n` bytes; at end of stream before that, throws `incomplete_read_error` holding
    /// the bytes read (which are consumed).
    template <class = void>
    [[nodiscard]] coro<std::string> readexactly(std::size_t n) const {
        return detail::stream_reading::readexactly(t_, n);
    }
    /// Fills `buffer` exactly (as `readexactly`).
    template <class = void>
    [[nodiscard]] coro<> readexactly_into(std::span<char> buffer) const {
        return detail::stream_reading::readexactly_into(t_, buffer);
    }
    template <class = void>
    [[nodiscard]] coro<> readexactly_into(std::span<std::byte> buffer) const {
        return readexactly_into(
            std::span<char>(reinterpret_cast<char*>(buffer.data()), buffer.size()));
    }
    /// The bytes up to and including `separator`. Past the limit without finding it, throws
    /// `limit_overrun_error` and leaves the data buffered; at end of stream, throws
    /// `incomplete_read_error` holding what was buffered (consumed).
    template <class = void>
    [[nodiscard]] coro<std::string> readuntil(std::string separator = "\n") const {
        return detail::stream_reading::until<std::string>(t_, std::move(separator), false);
    }
    /// As `readuntil`, as a view into the reader's buffer, valid until the next read.
    template <class = void>
    [[nodiscard]] coro<std::string_view> readuntil_view(std::string separator = "\n") const {
        return detail::stream_reading::until<std::string_view>(t_, std::move(separator), false);
    }
    /// One line, with its `\n`; at end of stream the last bytes without one, then empty
    /// strings. A line longer than the limit is dropped (up to its `\n` if it was seen) and
    /// `limit_overrun_error` thrown, so memory never grows past about the limit.
    template <class = void>
    [[nodiscard]] coro<std::string> readline() const {
        return detail::stream_reading::until<std::string>(t_, "\n", true);
    }
    /// As `readline`, as a view into the reader's buffer, valid until the next read.
    template <class = void>
    [[nodiscard]] coro<std::string_view> readline_view() const {
        return detail::stream_reading::until<std::string_view>(t_, "\n", true);
    }

    /// asyncio's `async for line in reader`: the lines, each with its `\n` as `readline` gives
    /// it (the last one without, if the stream ends mid-line), until end of stream. Consume it
    /// with `while (auto line = co_await lines.next())`. The generator holds a reader of its
    /// own (a copy of this handle), so it may outlive this one. Errors come out of `next()` as
    /// from `readline` (`limit_overrun_error`, `std::system_error`), and end the generator; a
    /// line not yet complete when its `next()` is cancelled stays buffered for the next read.
    template <class = void>
    [[nodiscard]] async_generator<std::string> lines() const;

    /// True once end of stream was seen and nothing is left in the buffer.
    [[nodiscard]] bool at_eof() const noexcept { return t_->at_eof(); }
    /// Bytes received and not read yet.
    [[nodiscard]] std::size_t buffered() const noexcept { return t_->buffered(); }
    /// The buffer limit (see `readline`).
    [[nodiscard]] std::size_t limit() const noexcept { return t_->limit(); }
    /// The descriptor (-1 once the transport is closed).
    [[nodiscard]] int native_handle() const noexcept { return t_->native_handle(); }

private:
    detail::transport_ref t_;
};

template <class>
inline async_generator<std::string> stream_reader::lines() const {
    return detail::stream_reading::lines(t_);
}

/// Writes to a connection or a pipe (asyncio's `StreamWriter`).
///
/// A cheap handle: copies share the transport. `write` never suspends: it tries the syscall
/// at once and buffers what the kernel did not take, which the transport sends in the
/// background. `co_await drain()` is the flow control: it waits while more than the
/// high-water mark (64 KiB) is buffered, until it is back under the low-water mark (16 KiB).
///
/// Errors: once the connection failed (a reset peer: `ECONNRESET`, `EPIPE`), `write`,
/// `writelines`, `drain` and the reader's reads throw that `std::system_error`; writing after
/// `close()` or `write_eof()` throws `invalid_state_error`. When the last handle of the
/// transport goes, it closes as `close()` does.
class stream_writer {
public:
    /// An empty writer (`explicit operator bool` is false).
    stream_writer() noexcept = default;
    explicit stream_writer(detail::transport_ref t) noexcept : t_(std::move(t)) {}

    explicit operator bool() const noexcept { return static_cast<bool>(t_); }

    /// Sends `data`, at once if the kernel takes it, else in the background.
    void write(std::string_view data) const { t_->write(data.data(), data.size()); }
    void write(std::span<const std::byte> data) const {
        t_->write(reinterpret_cast<const char*>(data.data()), data.size());
    }

    /// Writes every element of `lines` (strings, string views, byte spans...), in one
    /// syscall when nothing is buffered.
    template <detail::input_range R>
        requires std::convertible_to<detail::range_reference_t<R>, std::string_view> ||
                 std::convertible_to<detail::range_reference_t<R>, std::span<const std::byte>>
    void writelines(R&& lines) const {
        constexpr std::size_t batch = 64;
        iovec pieces[batch];
        std::size_t count = 0;
        auto flush = [&] {
            t_->write_pieces(std::span<const iovec>(pieces, count));
            count = 0;
        };
        for (auto&& line : lines) {
            if constexpr (std::convertible_to<detail::range_reference_t<R>, std::string_view>) {
                const std::string_view s = line;
                pieces[count++] = iovec{const_cast<char*>(s.data()), s.size()};
            } else {
                const std::span<const std::byte> s = line;
                pieces[count++] = iovec{const_cast<std::byte*>(s.data()), s.size()};
            }
            if (count == batch) flush();
        }
        if (count > 0) flush();
    }

    /// Waits while the write buffer is above its high-water mark (at once, without
    /// suspending, when it is not); throws the transport's error if it has one.
    /// Cancellation leaves the wait (`cancelled_error`); the buffered bytes are still sent.
    template <class = void>
    [[nodiscard]] coro<> drain() const {
        return wait(t_, what::drain);
    }

    /// Closes the stream: no more writes; what is buffered is still sent, then the descriptor
    /// is closed. A read in progress returns as at end of stream. Idempotent.
    void close() const noexcept { t_->close(); }
    /// Closes at once, dropping what is buffered (asyncio's `transport.abort()`).
    void abort() const noexcept { t_->abort(); }
    /// Waits until the descriptor is closed (after `close()` has flushed the buffer, or after a
    /// failure). Never throws the transport's error (unlike asyncio): `drain` reports it, after
    /// `wait_closed()` too, so `close(); co_await wait_closed(); co_await drain();` throws when
    /// what was still buffered at `close()` could not all be sent.
    template <class = void>
    [[nodiscard]] coro<> wait_closed() const {
        return wait(t_, what::closed);
    }
    /// True once `close()` was called or the transport failed.
    [[nodiscard]] bool is_closing() const noexcept { return t_->is_closing(); }

    /// Whether `write_eof` is supported: sockets shut down, pipes close; a TLS stream cannot
    /// (as asyncio's).
    [[nodiscard]] bool can_write_eof() const noexcept { return t_->filter() == nullptr; }
    /// Once the buffer is flushed, ends the stream for writing (`shutdown(SHUT_WR)` on a
    /// socket, closing a pipe); the reader keeps working.
    void write_eof() const { t_->write_eof(); }

    /// The peer's address (empty for a pipe, or when unknown).
    [[nodiscard]] socket_address peername() const { return t_->address(true); }
    /// The local address (empty for a pipe, or when unknown).
    [[nodiscard]] socket_address sockname() const { return t_->address(false); }

    /// Bytes buffered and not yet taken by the kernel (asyncio's `get_write_buffer_size`).
    [[nodiscard]] std::size_t write_buffer_size() const noexcept { return t_->write_buffer_size(); }
    /// asyncio's `set_write_buffer_limits(high, low)`: the water marks of `drain`. With only
    /// `high`, `low` is a quarter of it.
    void set_write_buffer_limits(std::optional<std::size_t> high,
                                 std::optional<std::size_t> low = std::nullopt) const {
        t_->set_write_buffer_limits(high, low);
    }
    /// `{low, high}`, as asyncio's `get_write_buffer_limits`.
    [[nodiscard]] std::pair<std::size_t, std::size_t> get_write_buffer_limits() const noexcept {
        return t_->write_buffer_limits();
    }
    [[deprecated("use get_write_buffer_limits(), as asyncio spells it")]] [[nodiscard]]
    std::pair<std::size_t, std::size_t> write_buffer_limits() const noexcept {
        return t_->write_buffer_limits();
    }
    /// The descriptor (-1 once closed).
    [[nodiscard]] int native_handle() const noexcept { return t_->native_handle(); }

    /// Upgrades the stream to TLS in place (asyncio's `start_tls`, for STARTTLS protocols),
    /// as a client or a server as `context` was made (`tls_context::client()` / `server()`);
    /// `co_await` returns once the handshake is done. What the reader had buffered and not
    /// read is taken as the start of the peer's TLS bytes; what the writer had buffered is
    /// sent first, in plain. Throws `tls_error` / `tls_verify_error` (and `timeout_error`
    /// past `options.handshake_timeout`), after which the stream is closed.
    /// `invalid_state_error` when a read is in progress or the stream is TLS already.
    template <class Context>
        requires std::is_convertible_v<const Context*, const detail::tls_engine*>
    [[nodiscard]] coro<> start_tls(const Context& context, start_tls_options options = {}) const {
        return start_tls_with(context, std::move(options));
    }
    /// `start_tls` with the context seen as what the streams know of it.
    template <class = void>
    [[nodiscard]] coro<> start_tls_with(const detail::tls_engine& engine,
                                        start_tls_options options) const {
        return detail::start_tls_on(t_, engine, std::move(options));
    }

    /// The TLS version in use ("TLSv1.3"; empty for a plain stream).
    [[nodiscard]] std::string tls_version() const {
        return t_->filter() != nullptr ? t_->filter()->version() : std::string();
    }
    /// The protocol ALPN chose ("h2"; empty when none, or plain).
    [[nodiscard]] std::string alpn_protocol() const {
        return t_->filter() != nullptr ? t_->filter()->alpn_protocol() : std::string();
    }
    /// The subject of the peer's certificate, as RFC 2253 writes it ("CN=localhost"); empty
    /// when it sent none, or plain.
    [[nodiscard]] std::string peer_certificate_subject() const {
        return t_->filter() != nullptr ? t_->filter()->peer_certificate_subject() : std::string();
    }

private:
    using what = detail::stream_transport::wait_awaiter::what;

    template <class = void>
    static coro<> wait(detail::transport_ref t, what w) {
        co_await detail::stream_transport::wait_awaiter(std::move(t), w);
    }

    detail::transport_ref t_;
};

/// A connection's two ends: `auto [reader, writer] = co_await corio::open_connection(...)`.
struct stream_pair {
    stream_reader reader;
    stream_writer writer;
};

namespace detail {

/// A reader and a writer over a connected, non-blocking, close-on-exec socket, on the running
/// loop (`std::runtime_error` without one).
[[nodiscard]] inline stream_pair make_socket_streams(unique_fd socket,
                                                     std::size_t limit = default_stream_limit) {
    event_loop& loop = get_running_loop();
    transport_ref t(
        new stream_transport(loop, std::move(socket), stream_transport::kind::socket, limit));
    return stream_pair{stream_reader(t), stream_writer(t)};
}

/// A reader over the read end of a pipe (non-blocking and close-on-exec already), on the
/// running loop. Reads use `io_opcode::read`.
[[nodiscard]] inline stream_reader make_pipe_reader(unique_fd fd,
                                                    std::size_t limit = default_stream_limit) {
    event_loop& loop = get_running_loop();
    return stream_reader(transport_ref(
        new stream_transport(loop, std::move(fd), stream_transport::kind::pipe, limit)));
}

/// A writer over the write end of a pipe (non-blocking and close-on-exec already), on the
/// running loop. Writes use `io_opcode::write`. The first call in the process sets SIGPIPE
/// to SIG_IGN if it had its default disposition, so that writing to a pipe whose reader is
/// gone throws `std::system_error(EPIPE)` instead of killing the process.
[[nodiscard]] inline stream_writer make_pipe_writer(unique_fd fd) {
    ignore_sigpipe_once();
    event_loop& loop = get_running_loop();
    return stream_writer(transport_ref(new stream_transport(
        loop, std::move(fd), stream_transport::kind::pipe, default_stream_limit)));
}

}  // namespace detail

}  // namespace corio
