// corio_tls_echo_server: the echo server of the TLS echo benchmark, written with corio's
// streams.
//
// corio_echo_server.cpp over TLS, and the same server as tls_plain_echo_server.c, as an
// asyncio programmer would write it: `corio::start_server(handler, host, port, {.tls = &ctx})`
// with `corio::tls_context::server(cert, key)` runs the handshake on each connection, then one
// task per connection, which reads what has arrived (up to 64 KiB of plaintext) into a buffer
// of its own and writes it back, until the peer closes. It listens on 127.0.0.1:<port> (0, the
// default, lets the kernel choose), prints "port <n> backend=<name>" once it listens, and
// serves until killed. The backend comes from CORIO_BACKEND (epoll or io_uring); a backend the
// kernel refuses makes it exit with status 77 (skipped).
//
//   corio_tls_echo_server <cert.pem> <key.pem> [port]

#include <corio/corio.hpp>
#include <corio/tls.hpp>

#include <array>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>

namespace {

constexpr std::size_t read_size = std::size_t{64} * 1024;

// A client that closes with an echo still unread resets the connection: the next read throws
// std::system_error (ECONNRESET), which ends that connection quietly, as does a TLS failure.
corio::coro<> echo(corio::stream_reader reader, corio::stream_writer writer) {
    std::array<char, read_size> buffer;  // in the frame: one allocation per connection
    try {
        for (;;) {
            const std::size_t n = co_await reader.read_into(buffer);
            if (n == 0) break;  // the peer closed
            writer.write(std::string_view(buffer.data(), n));
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
    } catch (const corio::tls_error&) {
    }
    writer.close();
}

corio::coro<> serve(std::string cert, std::string key, int port) {
    const corio::tls_context tls = corio::tls_context::server(cert, key);
    auto server = co_await corio::start_server(echo, "127.0.0.1", port, {.tls = &tls});
    std::cout << "port " << server.port() << " backend=" << corio::get_running_loop().backend_name()
              << std::endl;
    co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::cerr << "usage: corio_tls_echo_server <cert.pem> <key.pem> [port]\n";
        return 2;
    }
    const int port = argc > 3 ? std::atoi(argv[3]) : 0;
    try {
        // Asked for by name, a backend the kernel refuses throws here: report it as skipped.
        corio::new_event_loop()->close();
    } catch (const std::system_error& e) {
        std::cerr << "backend unavailable: " << e.what() << '\n';
        return 77;
    }
    corio::run(serve(argv[1], argv[2], port));
}
