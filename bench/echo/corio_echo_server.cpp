// corio_echo_server: the echo server of the echo benchmark, written with corio's streams.
//
// The same server as plain_echo_server.c, as an asyncio programmer would write it:
// `corio::start_server` runs one task per connection; the task reads what has arrived
// (up to 64 KiB) and writes it back, until the peer closes. It listens on 127.0.0.1:<port>
// (0, the default, lets the kernel choose), prints "port <n> backend=<name>" once it
// listens, and serves until killed. The backend comes from CORIO_BACKEND (epoll or
// io_uring); a backend the kernel refuses makes it exit with status 77 (skipped).
//
//   corio_echo_server [--read] [--shards N] [port]
//
// By default each connection reads with `reader.read_into(buffer)` into a buffer of its own
// (no allocation per message); `--read` uses `co_await reader.read(64 KiB)`, which returns a
// new std::string each time, to measure what that costs.
//
// `--shards N` (N > 1) runs the same server on N shards (`corio::run_sharded`, each shard's
// thread pinned to a CPU of its own, round robin when there are fewer CPUs): each shard listens
// on the same port with SO_REUSEPORT, so that the kernel spreads the connections among them,
// and serves its own. Shard 0 binds first (the port the kernel chose, with port 0), the others
// ask it for the port (`submit_to`), and "port <n>" comes once every shard listens. One shard,
// the default, is plain `corio::run` without `run_sharded`: the numbers stay comparable with
// earlier runs.

#include <corio/corio.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <system_error>

namespace {

constexpr std::size_t read_size = std::size_t{64} * 1024;

// A client that closes with an echo still unread resets the connection: the next read
// throws std::system_error (ECONNRESET), which ends that connection quietly.
corio::coro<> echo_into(corio::stream_reader reader, corio::stream_writer writer) {
    std::array<char, read_size> buffer;  // in the frame: one allocation per connection
    try {
        for (;;) {
            const std::size_t n = co_await reader.read_into(buffer);
            if (n == 0) break;  // the peer closed
            writer.write(std::string_view(buffer.data(), n));
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
    }
    writer.close();
}

corio::coro<> echo_read(corio::stream_reader reader, corio::stream_writer writer) {
    try {
        for (;;) {
            const std::string data = co_await reader.read(read_size);
            if (data.empty()) break;
            writer.write(data);
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
    }
    writer.close();
}

using handler = corio::coro<> (*)(corio::stream_reader, corio::stream_writer);

handler handler_of(bool use_read) { return use_read ? echo_read : echo_into; }

corio::coro<> serve(int port, bool use_read) {
    auto server = co_await corio::start_server(handler_of(use_read), "127.0.0.1", port);
    std::cout << "port " << server.port() << " backend=" << corio::get_running_loop().backend_name()
              << std::endl;
    co_await server.serve_forever();
}

// What the shards share, all of it touched on shard 0 only (the others reach it through
// `submit_to`).
struct shard_0_state {
    std::uint16_t port = 0;
    corio::event bound;  // shard 0 listens on `port`
    std::size_t listening = 1;
    corio::event all_listening;
};

corio::coro<std::uint16_t> port_once_bound(shard_0_state& state) {
    co_await state.bound.wait();
    co_return state.port;
}

void one_more_listening(shard_0_state& state) {
    if (++state.listening == corio::shard_count()) state.all_listening.set();
}

corio::coro<> serve_shard(corio::shard_id shard, shard_0_state& state, int port, bool use_read) {
    corio::server_options options;
    options.reuse_port = true;
    constexpr corio::shard_id shard_0{0};
    if (shard == shard_0) {
        auto server =
            co_await corio::start_server(handler_of(use_read), "127.0.0.1", port, options);
        state.port = server.port();
        state.bound.set();
        if (state.listening < corio::shard_count()) co_await state.all_listening.wait();
        std::cout << "port " << server.port()
                  << " backend=" << corio::get_running_loop().backend_name()
                  << " shards=" << corio::shard_count() << std::endl;
        co_await server.serve_forever();
    } else {
        const std::uint16_t shared_port =
            co_await corio::submit_to(shard_0, [&state] { return port_once_bound(state); });
        auto server =
            co_await corio::start_server(handler_of(use_read), "127.0.0.1", shared_port, options);
        co_await corio::submit_to(shard_0, [&state] { one_more_listening(state); });
        co_await server.serve_forever();
    }
}

}  // namespace

int main(int argc, char** argv) {
    bool use_read = false;
    int port = 0;
    long shards = 1;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--read") == 0) {
            use_read = true;
        } else if (std::strcmp(argv[i], "--shards") == 0 && i + 1 < argc) {
            shards = std::atol(argv[++i]);
            if (shards < 1) {
                std::cerr << "corio_echo_server: --shards needs a positive number\n";
                return 2;
            }
        } else {
            port = std::atoi(argv[i]);
        }
    }
    try {
        // Asked for by name, a backend the kernel refuses throws here: report it as skipped.
        corio::new_event_loop()->close();
    } catch (const std::system_error& e) {
        std::cerr << "backend unavailable: " << e.what() << '\n';
        return 77;
    }
    if (shards == 1) {
        corio::run(serve(port, use_read));
        return 0;
    }
    shard_0_state state;
    corio::shard_options options;
    options.shards = static_cast<std::size_t>(shards);
    options.pin = true;
    corio::run_sharded(
        [&state, port, use_read](corio::shard_id shard) {
            return serve_shard(shard, state, port, use_read);
        },
        options);
}
