// corio_echo_server: the echo server of the echo benchmark, written with corio's streams.
//
// The same server as plain_echo_server.c, as an asyncio programmer would write it:
// `corio::start_server` runs one task per connection; the task reads what has arrived
// (up to 64 KiB) and writes it back, until the peer closes. It listens on 127.0.0.1:<port>
// (0, the default, lets the kernel choose), prints "port <n> backend=<name>" once it
// listens, and serves until killed. The backend comes from CORIO_BACKEND (epoll or
// io_uring); a backend the kernel refuses makes it exit with status 77 (skipped).
//
//   corio_echo_server [--read] [port]
//
// By default each connection reads with `reader.read_into(buffer)` into a buffer of its own
// (no allocation per message); `--read` uses `co_await reader.read(64 KiB)`, which returns a
// new std::string each time, to measure what that costs.

#include <corio/corio.hpp>

#include <array>
#include <cstddef>
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

corio::coro<> serve(int port, bool use_read) {
    auto server = co_await corio::start_server(use_read ? echo_read : echo_into, "127.0.0.1", port);
    std::cout << "port " << server.port() << " backend=" << corio::get_running_loop().backend_name()
              << std::endl;
    co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
    bool use_read = false;
    int port = 0;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--read") == 0) {
            use_read = true;
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
    corio::run(serve(port, use_read));
}
