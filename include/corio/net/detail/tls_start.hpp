#pragma once
/// \file
/// `detail::start_tls_on`: puts a TLS session (a `stream_filter`) on a stream's transport and
/// runs its handshake, for `stream_writer::start_tls`, `open_connection` and `start_server`.
/// OpenSSL is behind the `tls_engine`: nothing here names it.

#include "corio/coro.hpp"
#include "corio/errors.hpp"
#include "corio/net/detail/stream_filter.hpp"
#include "corio/net/detail/stream_transport.hpp"
#include "corio/net/detail/transport_ref.hpp"
#include "corio/net/tls_options.hpp"
#include "corio/timeout.hpp"

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>

namespace corio::detail {

/// Runs the handshake of the transport's filter: what the filter writes is sent as it comes,
/// what it needs is received into it, until it is done (or throws its error).
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
coro<> run_handshake(transport_ref ref) {
    stream_transport& t = *ref;
    stream_transport::read_guard guard(t);
    stream_filter& filter = *t.filter();
    for (;;) {
        const long step = filter.handshake();
        if (step > 0) break;
        if (step == stream_filter::failed) t.throw_filter_error("handshake");
        const std::span<char> space = filter.input_space();
        const std::size_t got = co_await stream_transport::receive_op(
            t, space.data(), space.size(), stream_transport::receive_mode::raw);
        if (t.error() != 0) t.throw_error("handshake");
        filter.input_received(got);
    }
    // A peer that went after its last message is no handshake failure: the transport's error
    // comes with the next write or read, after what the peer sent.
}

/// Makes the stream of `ref` a TLS stream of `engine`'s, and runs the handshake within
/// `options.handshake_timeout`. On any failure (the handshake's, the time limit, a
/// cancellation) the transport is closed: a half-made session is no stream to go on with. What
/// is buffered (an alert that says why) is still sent; no `close_notify` is.
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
coro<> start_tls_on(transport_ref ref, const tls_engine& engine, start_tls_options options) {
    stream_transport& t = *ref;
    if (!t.is_socket()) throw std::invalid_argument("start_tls: the stream is not a socket");
    if (t.filter() != nullptr) throw invalid_state_error("start_tls: the stream is TLS already");
    if (t.reading()) throw invalid_state_error("start_tls: a read is in progress");
    if (t.is_closing()) throw invalid_state_error("start_tls: the stream is closing");
    t.attach_filter(engine.make_session(t, options.server_hostname.str()));
    try {
        co_await wait_for(run_handshake(ref), options.handshake_timeout);
    } catch (...) {
        t.close();
        throw;
    }
}

}  // namespace corio::detail
