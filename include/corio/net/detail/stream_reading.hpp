#pragma once
/// \file
/// `detail::stream_reading`: the reading algorithms of `stream_reader` (read, readexactly,
/// readline, readuntil and their `_into` / `_view` forms), each one coroutine frame over a
/// transport.
///
/// Its coroutines that need no template parameter have one, defaulted (`template <class = void>`),
/// so that only a program that calls one compiles it (docs/architecture.md, "Compile time").

#include "corio/async_generator.hpp"
#include "corio/coro.hpp"
#include "corio/errors.hpp"
#include "corio/net/detail/stream_transport.hpp"
#include "corio/net/detail/transport_ref.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace corio::detail {

/// The reading algorithms, each one coroutine frame; `ref` keeps the transport alive.
struct stream_reading {
    using transport = stream_transport;

    template <class = void>
    static coro<std::string> read(transport_ref ref, std::ptrdiff_t n) {
        transport& t = *ref;
        transport::read_guard guard(t);
        if (n == 0) co_return std::string();
        if (n < 0) {
            std::string out;
            co_await accumulate(t, out, std::numeric_limits<std::size_t>::max());
            co_return out;
        }
        const auto wanted = static_cast<std::size_t>(n);
        if (t.buffered() == 0 && !t.input_ended()) {
            if (wanted >= direct_threshold) {
                // Straight into the result; a huge `n` does not allocate more than one chunk.
                std::string out(std::min(wanted, max_chunk), '\0');
                const std::size_t got = co_await transport::receive_op(t, out.data(), out.size());
                out.resize(got);
                // A short message must not keep the whole chunk's memory with it.
                if (got < out.capacity() / 4) out.shrink_to_fit();
                co_return out;
            }
            const std::size_t got = co_await t.fill();
            t.filled(got);
        }
        const std::size_t take = std::min(wanted, t.buffered());
        std::string out(t.view().substr(0, take));
        t.consume(take);
        co_return out;
    }

    template <class = void>
    static coro<std::size_t> read_into(transport_ref ref, std::span<char> out) {
        transport& t = *ref;
        transport::read_guard guard(t);
        if (out.empty()) co_return 0;
        if (t.buffered() == 0) {
            co_return co_await transport::receive_op(t, out.data(), out.size());
        }
        const std::size_t take = std::min(out.size(), t.buffered());
        std::memcpy(out.data(), t.view().data(), take);
        t.consume(take);
        co_return take;
    }

    // Moves what is buffered to `out`, then receives straight into `out` until it holds
    // `wanted` bytes or the stream ends. `out` grows with what arrives (never by more than it
    // holds, plus 64 KiB), so that a peer announcing a huge length cannot make us allocate it.
    // On an exception (an error, a cancellation) the bytes go back to the reader's buffer.
    template <class = void>
    static coro<> accumulate(transport& t, std::string& out, std::size_t wanted) {
        const std::size_t first = std::min(wanted, t.buffered());
        out.assign(t.view().substr(0, first));
        t.consume(first);
        std::size_t have = out.size();
        try {
            while (have < wanted) {
                const std::size_t chunk =
                    std::min(wanted - have, std::max(std::size_t{64} * 1024, have));
                out.resize(have + chunk);
                const std::size_t got = co_await transport::receive_op(t, out.data() + have, chunk);
                if (got == 0) break;
                have += got;
            }
        } catch (...) {
            t.unread(std::string_view(out.data(), have));  // nothing received is lost
            throw;
        }
        out.resize(have);
    }

    // Fills `out` exactly; the bytes read before an end of stream are `have`.
    template <class = void>
    static coro<std::size_t> fill_exactly(transport& t, std::span<char> out) {
        std::size_t have = std::min(out.size(), t.buffered());
        if (have > 0) std::memcpy(out.data(), t.view().data(), have);
        t.consume(have);
        try {
            while (have < out.size()) {
                const std::size_t got =
                    co_await transport::receive_op(t, out.data() + have, out.size() - have);
                if (got == 0) break;
                have += got;
            }
        } catch (...) {
            t.unread(std::string_view(out.data(), have));
            throw;
        }
        co_return have;
    }

    template <class = void>
    static coro<std::string> readexactly(transport_ref ref, std::size_t n) {
        transport& t = *ref;
        transport::read_guard guard(t);
        if (t.buffered() < n && n <= t.limit() && !t.input_ended()) {
            // Small enough for the buffer: one receive may bring this and what follows.
            while (t.buffered() < n) {
                const std::size_t got = co_await t.fill(n - t.buffered());
                if (got == 0) break;
                t.filled(got);
            }
        }
        if (t.buffered() >= n) {
            std::string out(t.view().substr(0, n));
            t.consume(n);
            co_return out;
        }
        std::string out;
        co_await accumulate(t, out, n);
        if (out.size() < n) throw incomplete_read_error(std::move(out), n);
        co_return out;
    }

    template <class = void>
    static coro<> readexactly_into(transport_ref ref, std::span<char> out) {
        transport& t = *ref;
        transport::read_guard guard(t);
        const std::size_t have = co_await fill_exactly(t, out);
        if (have < out.size()) {
            throw incomplete_read_error(std::string(out.data(), have), out.size());
        }
    }

    // The length of the complete line at the front of the buffer, within the limit; 0 when
    // there is none, or when another read is in flight (`until` then says so).
    static std::size_t buffered_line_end(const transport& t) noexcept {
        if (t.reading()) return 0;
        const std::string_view data = t.view();
        const std::size_t found = data.find('\n');
        if (found == std::string_view::npos || found > t.limit()) return 0;
        return found + 1;
    }

    /// readuntil (`line` false) and readline (`line` true), as asyncio's.
    template <class Result>
    static coro<Result> until(transport_ref ref, std::string separator, bool line) {
        transport& t = *ref;
        transport::read_guard guard(t);
        if (separator.empty()) {
            throw std::invalid_argument("readuntil: the separator must not be empty");
        }
        const std::size_t sep = separator.size();
        const std::size_t limit = t.limit();
        std::size_t from = 0;
        for (;;) {
            const std::string_view data = t.view();
            if (data.size() >= sep) {
                const std::size_t found = data.find(separator, from);
                if (found != std::string_view::npos) {
                    if (found > limit) {
                        // readline drops the overlong line; readuntil leaves it buffered.
                        if (line) t.consume(found + sep);
                        throw limit_overrun_error(
                            "Separator is found, but chunk is longer than limit", found);
                    }
                    t.consume(found + sep);
                    co_return Result(data.substr(0, found + sep));
                }
                from = data.size() + 1 - sep;
                if (from > limit) {
                    if (line) t.consume(data.size());
                    throw limit_overrun_error("Separator is not found, and chunk exceed the limit",
                                              from);
                }
            }
            if (t.input_ended()) {
                if (t.error() != 0) t.throw_error("recv");  // what is buffered stays for read()
                t.consume(data.size());
                if (line) co_return Result(data);
                throw incomplete_read_error(std::string(data), std::nullopt);
            }
            // The buffer needs no more than limit + separator bytes to decide.
            const std::size_t got = co_await t.fill(1, limit + sep);
            t.filled(got);
        }
    }

    /// `reader.lines()`: `readline` over and over until end of stream. Lines already complete in
    /// the buffer are taken straight from it, without a read's coroutine frame each, so that
    /// iterating is cheaper than a loop of `readline()`; everything else (waiting for data, the
    /// limit, the end, errors) is `readline`'s own code.
    template <class = void>
    static async_generator<std::string> lines(transport_ref ref) {
        transport& t = *ref;
        for (;;) {
            const std::size_t end = buffered_line_end(t);
            if (end != 0) {
                std::string line(t.view().substr(0, end));
                t.consume(end);
                co_yield std::move(line);
                continue;
            }
            // A named coro: a temporary std::string argument inside the co_await expression
            // is one g++ 12 may copy byte by byte into the frame.
            coro<std::string> next_line = until<std::string>(ref, "\n", true);
            std::string line = co_await std::move(next_line);
            if (line.empty()) co_return;
            co_yield std::move(line);
        }
    }

    // Reads of at least this size go straight into the result when nothing is buffered, one
    // receive of at most `max_chunk` bytes.
    static constexpr std::size_t direct_threshold = std::size_t{16} * 1024;
    static constexpr std::size_t max_chunk = std::size_t{256} * 1024;
};

}  // namespace corio::detail
