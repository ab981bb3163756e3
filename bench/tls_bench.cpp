// Benchmarks of TLS streams (include/corio/tls.hpp) against their plain twins, a client and a
// server in one process, on one loop, over 127.0.0.1:
//
// - tls_bulk/<chunk> and plain_bulk/<chunk>: one connection; each iteration the client writes
//   a `chunk`-byte block and drains, the server reads it with read_into and drops it. Bytes per
//   second (and MB_per_s, decimal) are the stream's throughput: both sides' work, so for TLS
//   the encryption and the decryption on one core (OpenSSL 3's defaults agree on TLS 1.3's
//   TLS_AES_256_GCM_SHA384), plus the loop's sends and receives. The last iteration waits
//   until the server has read every byte, so no data is left in the socket buffers uncounted.
// - tls_pingpong and plain_pingpong: one connection; each iteration is one round trip, a
//   64-byte request the server reads with readexactly and a 64-byte answer: the latency of a
//   small record each way (the time per iteration is the time per round trip).
// - tls_handshake: each iteration is one whole connection: open_connection with `.tls`, one
//   byte there and back, close. items_per_second is handshakes per second with BOTH sides'
//   CPU in this one process (a TLS 1.3 full handshake: X25519 key exchange, an ECDSA P-256
//   signature made and checked, the chain and host name verified, OpenSSL's two session
//   tickets sent and ignored; no resumption), plus TCP's connect, accept and close: a server
//   facing remote clients does only its own part of that.
//
// The server and the client connection are made once per run (outside the timed loop), and
// torn down after it. The certificate is made at start-up by `openssl req` (a self-signed
// P-256 one for localhost and 127.0.0.1) in a temporary directory, removed at exit; without the
// openssl program the TLS benchmarks are skipped with an error. The loop runs on the backend
// CORIO_BACKEND names (io_uring when the kernel allows it, by default); the backend's name
// (and the TLS version agreed) is in the label.

#include <corio/corio.hpp>
#include <corio/tls.hpp>

#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace {

// The server's certificate and key, and the two contexts using them: made on first use, the
// directory removed when the program ends.
class tls_setup {
public:
    static const tls_setup& get() {
        static const tls_setup setup;
        return setup;
    }

    tls_setup(const tls_setup&) = delete;
    tls_setup& operator=(const tls_setup&) = delete;
    ~tls_setup() {
        if (dir_.empty()) return;
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }

    /// Why the contexts could not be made (empty when they were).
    [[nodiscard]] const std::string& error() const noexcept { return error_; }
    [[nodiscard]] const corio::tls_context* server() const noexcept {
        return server_ ? &*server_ : nullptr;
    }
    [[nodiscard]] const corio::tls_context* client() const noexcept {
        return client_ ? &*client_ : nullptr;
    }

private:
    tls_setup() {
        std::string name =
            (std::filesystem::temp_directory_path() / "corio-tls-bench-XXXXXX").string();
        if (::mkdtemp(name.data()) == nullptr) {
            error_ = "mkdtemp failed";
            return;
        }
        dir_ = name;
        const std::string cert = dir_ + "/cert.pem";
        const std::string key = dir_ + "/key.pem";
        const std::string command =
            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout '" +
            key + "' -out '" + cert +
            "' -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1"
            " >/dev/null 2>&1";
        if (std::system(command.c_str()) != 0) {
            error_ = "openssl req could not make a certificate (is openssl installed?)";
            return;
        }
        try {
            server_.emplace(corio::tls_context::server(cert, key));
            corio::tls_context client = corio::tls_context::client();
            client.load_verify_locations(cert);
            client_.emplace(std::move(client));
        } catch (const std::exception& e) {
            error_ = e.what();
            server_.reset();
            client_.reset();
        }
    }

    std::string dir_;
    std::string error_;
    std::optional<corio::tls_context> server_;
    std::optional<corio::tls_context> client_;
};

// The loop of one run: on the backend CORIO_BACKEND names.
std::unique_ptr<corio::event_loop> make_loop(benchmark::State& state) {
    auto loop = corio::new_event_loop();
    state.SetLabel(std::string(loop->backend_name()));
    return loop;
}

// The contexts of a benchmark: both null for a plain one. False (and the run skipped) when
// TLS is wanted and the certificate could not be made.
struct contexts {
    const corio::tls_context* server = nullptr;
    const corio::tls_context* client = nullptr;
};

bool get_contexts(benchmark::State& state, bool tls, contexts& out) {
    if (!tls) return true;
    const tls_setup& setup = tls_setup::get();
    if (!setup.error().empty()) {
        state.SkipWithError(setup.error().c_str());
        return false;
    }
    out.server = setup.server();
    out.client = setup.client();
    return true;
}

// open_connection to the server on 127.0.0.1:port, over TLS when `client` is not null.
corio::coro<corio::stream_pair> connect_to_server(std::uint16_t port,
                                                  const corio::tls_context* client) {
    const std::string host = "127.0.0.1";
    co_return co_await corio::open_connection(host, port,
                                              {.tls = client, .server_hostname = "localhost"});
}

// The label of a TLS run: the backend and the TLS version agreed ("io_uring TLSv1.3").
void label_tls(benchmark::State& state, const corio::stream_writer& writer) {
    state.SetLabel(std::string(corio::get_running_loop().backend_name()) + " " +
                   writer.tls_version());
}

// Runs `body` on the run's loop; an exception (a failed handshake, a connection lost) skips the
// run with its message rather than ending the program.
template <class Body>
void run_or_skip(benchmark::State& state, Body body) {
    auto loop = make_loop(state);
    try {
        loop->run_until_complete(body());
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

// ---- bulk ------------------------------------------------------------------------------------

// What the bulk server saw: the bytes it read; `reached` is set once they are `target` bytes,
// `done` when its connection has ended.
struct sink_state {
    std::uint64_t received = 0;
    std::uint64_t target = 0;
    corio::event reached;
    corio::event done;
};

corio::coro<> sink(corio::stream_reader reader, corio::stream_writer writer, sink_state* st) {
    std::vector<char> buffer(std::size_t{256} * 1024);
    for (;;) {
        const std::size_t n = co_await reader.read_into(std::span(buffer));
        if (n == 0) break;
        st->received += n;
        if (st->received >= st->target) st->reached.set();
    }
    writer.close();
    co_await writer.wait_closed();
    st->done.set();
}

struct sink_handler {
    sink_state* st;
    corio::coro<> operator()(corio::stream_reader reader, corio::stream_writer writer) const {
        return sink(std::move(reader), std::move(writer), st);
    }
};

// How long the client waits for the server before it gives the run up (a server whose
// handshake failed never reads: the failure goes to the loop's exception handler).
constexpr std::chrono::seconds server_patience{10};

corio::coro<> wait_until_read(sink_state& st, std::uint64_t bytes) {
    st.reached.clear();
    st.target = bytes;
    if (st.received >= bytes) co_return;
    co_await corio::wait_for(st.reached.wait(), server_patience);
}

corio::coro<> bulk_measured(benchmark::State& state, contexts ctx, std::size_t chunk) {
    sink_state st;
    auto server = co_await corio::start_server(sink_handler{&st}, "127.0.0.1", 0,
                                               {.family = AF_INET, .tls = ctx.server});
    auto [reader, writer] = co_await connect_to_server(server.port(), ctx.client);
    if (ctx.client != nullptr) label_tls(state, writer);
    const std::string block(chunk, 'x');
    // Warm up: one block read by the server, so both handshakes are over and its task waits.
    // (Closing before the server has read would also race TLS 1.3's session tickets, which the
    // server sends once the handshake is over: to a closed socket, its handshake fails.)
    writer.write(block);
    co_await writer.drain();
    co_await wait_until_read(st, chunk);
    const auto total = static_cast<std::uint64_t>(state.max_iterations + 1) * chunk;
    benchmark::IterationCount i = 0;
    for (auto _ : state) {
        writer.write(block);
        co_await writer.drain();
        // The last iteration also waits for the server to have read everything: the time is
        // the transfer's, not the time to fill the socket buffers (megabytes on loopback).
        if (++i == state.max_iterations) co_await wait_until_read(st, total);
    }
    writer.close();
    co_await writer.wait_closed();
    co_await corio::wait_for(st.done.wait(), server_patience);
    if (st.received != total) {
        state.SkipWithError(("the server read " + std::to_string(st.received) + " bytes of " +
                             std::to_string(total))
                                .c_str());
    }
    server.close();
    co_await server.wait_closed();
}

void bulk(benchmark::State& state, bool tls) {
    contexts ctx;
    if (!get_contexts(state, tls, ctx)) return;
    const auto chunk = static_cast<std::size_t>(state.range(0));
    run_or_skip(state, [&] { return bulk_measured(state, ctx, chunk); });
    const auto bytes = static_cast<std::int64_t>(state.iterations()) * state.range(0);
    state.SetBytesProcessed(bytes);
    state.counters["MB_per_s"] =
        benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
}

void tls_bulk(benchmark::State& state) { bulk(state, true); }
void plain_bulk(benchmark::State& state) { bulk(state, false); }

// ---- ping-pong -------------------------------------------------------------------------------

constexpr std::size_t message_size = 64;
using message = std::array<char, message_size>;

// Answers every 64-byte message with one of its own, until the client closes.
corio::coro<> ponger(corio::stream_reader reader, corio::stream_writer writer) {
    message buffer{};
    try {
        for (;;) {
            co_await reader.readexactly_into(buffer);
            writer.write(std::string_view(buffer.data(), buffer.size()));
            co_await writer.drain();
        }
    } catch (const corio::incomplete_read_error&) {
        // the client closed
    }
    writer.close();
    co_await writer.wait_closed();
}

corio::coro<> round_trip(const corio::stream_reader& reader, const corio::stream_writer& writer,
                         const message& out, message& in) {
    writer.write(std::string_view(out.data(), out.size()));
    co_await writer.drain();
    co_await reader.readexactly_into(in);
}

corio::coro<> pingpong_measured(benchmark::State& state, contexts ctx) {
    auto server = co_await corio::start_server(ponger, "127.0.0.1", 0,
                                               {.family = AF_INET, .tls = ctx.server});
    auto [reader, writer] = co_await connect_to_server(server.port(), ctx.client);
    if (ctx.client != nullptr) label_tls(state, writer);
    message out{};
    out.fill('p');
    message in{};
    co_await round_trip(reader, writer, out, in);  // warm up
    for (auto _ : state) {
        co_await round_trip(reader, writer, out, in);
    }
    writer.close();
    co_await writer.wait_closed();
    server.close();
    co_await server.wait_closed();
}

void pingpong(benchmark::State& state, bool tls) {
    contexts ctx;
    if (!get_contexts(state, tls, ctx)) return;
    run_or_skip(state, [&] { return pingpong_measured(state, ctx); });
    state.SetItemsProcessed(state.iterations());
    state.counters["ns_per_round_trip"] = benchmark::Counter(
        static_cast<double>(state.iterations()),
        benchmark::Counter::kIsRate | benchmark::Counter::kInvert, benchmark::Counter::kIs1000);
}

void tls_pingpong(benchmark::State& state) { pingpong(state, true); }
void plain_pingpong(benchmark::State& state) { pingpong(state, false); }

// ---- handshake -------------------------------------------------------------------------------

// Echoes one byte, then closes (close_notify first).
corio::coro<> echo_one(corio::stream_reader reader, corio::stream_writer writer) {
    std::array<char, 1> byte{};
    co_await reader.readexactly_into(byte);
    writer.write(std::string_view(byte.data(), byte.size()));
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
}

corio::coro<> one_connection(std::uint16_t port, const corio::tls_context* client) {
    auto [reader, writer] = co_await connect_to_server(port, client);
    writer.write("h");
    co_await writer.drain();
    std::array<char, 1> byte{};
    co_await reader.readexactly_into(byte);
    if (byte[0] != 'h') throw std::runtime_error("the server echoed something else");
    writer.close();
    co_await writer.wait_closed();
}

corio::coro<> handshake_measured(benchmark::State& state, contexts ctx) {
    auto server = co_await corio::start_server(echo_one, "127.0.0.1", 0,
                                               {.family = AF_INET, .tls = ctx.server});
    co_await one_connection(server.port(), ctx.client);  // warm up
    for (auto _ : state) {
        co_await one_connection(server.port(), ctx.client);
    }
    server.close();
    co_await server.wait_closed();
}

void tls_handshake(benchmark::State& state) {
    contexts ctx;
    if (!get_contexts(state, true, ctx)) return;
    run_or_skip(state, [&] { return handshake_measured(state, ctx); });
    state.SetItemsProcessed(state.iterations());
    state.counters["handshakes_per_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK(tls_bulk)->Arg(16 << 10)->Arg(256 << 10)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(plain_bulk)->Arg(16 << 10)->Arg(256 << 10)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(tls_pingpong)->UseRealTime();
BENCHMARK(plain_pingpong)->UseRealTime();
BENCHMARK(tls_handshake)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
