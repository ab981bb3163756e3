// 13_echo_server: a TCP echo server with corio::start_server (asyncio's start_server).
//
// Beyond the note: the "TCP echo server" of asyncio's Streams documentation, line by line.
// `corio::start_server(handler, host, port)` listens and runs `handler(reader, writer)` as a
// task of its own for every connection; the handler reads lines with `reader.readline()`
// and writes them back with `writer.write(...)` and `co_await writer.drain()`, until the
// client closes its end (`readline` then returns an empty string).
//
// Run without arguments, it listens on a port the kernel chooses (port 0, then
// `server.port()`), connects three clients to itself at once, prints the exchange, then
// closes the server (`close()` stops accepting and cancels the connections' tasks;
// `co_await wait_closed()` waits until they are gone). With `--port N` it serves for ever
// (`co_await server.serve_forever()`), for `nc 127.0.0.1 N` or 14_echo_client; Ctrl-C stops it.

#include <corio/corio.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <tuple>

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

// Without its '\n', for printing.
std::string chomp(std::string line) {
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return line;
}

int connections_served = 0;

// One task per connection: asyncio's handle_echo(reader, writer).
corio::coro<> handle_echo(corio::stream_reader reader, corio::stream_writer writer) {
    const std::string peer = writer.peername().to_string();
    for (;;) {
        const std::string line = co_await reader.readline();
        if (line.empty()) break;  // end of stream: the client closed its end
        std::cout << "server: " << peer << " sent \"" << chomp(line) << "\", echoing it\n";
        writer.write(line);
        co_await writer.drain();  // waits only if the client does not read fast enough
    }
    std::cout << "server: " << peer << " closed the connection\n";
    ++connections_served;
    writer.close();
    co_await writer.wait_closed();
}

// A client of our own, as in 14_echo_client: sends two lines and reads each echo, then ends
// its side of the connection and waits for the server to end its own.
corio::coro<int> client(int id, std::uint16_t port) {
    auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port);
    int echoed = 0;
    static constexpr const char* words[] = {"hello", "bye"};
    for (const char* word : words) {
        const std::string line = std::string(word) + " from client " + std::to_string(id) + "\n";
        writer.write(line);
        co_await writer.drain();
        const std::string echo = co_await reader.readline();
        std::cout << "client " << id << ": got back \"" << chomp(echo) << "\"\n";
        expect(echo == line, "the server echoes each line");
        ++echoed;
    }
    // Half-close: "no more lines from me". The server sees the end of the stream, closes its
    // side, and the client sees that in turn: an empty read. The exchange is then over on
    // both sides.
    writer.write_eof();
    const std::string rest = co_await reader.read();
    expect(rest.empty() && reader.at_eof(), "the server closes once the client is done");
    writer.close();
    co_await writer.wait_closed();
    co_return echoed;
}

corio::coro<> demo() {
    auto server = co_await corio::start_server(handle_echo, "127.0.0.1", 0);
    const std::uint16_t port = server.port();
    expect(port != 0, "port 0 asks the kernel for a free port, which server.port() tells");
    std::cout << "serving on 127.0.0.1:" << port << '\n';

    const auto echoed = co_await corio::gather(client(1, port), client(2, port), client(3, port));
    expect(echoed == std::tuple(2, 2, 2), "every client got both its lines back");

    server.close();                 // stop accepting; cancel the connections' tasks
    co_await server.wait_closed();  // every handler has finished
    expect(connections_served == 3, "each client had a handler task of its own");
    std::cout << "server closed after " << connections_served << " connections\n";
}

corio::coro<> serve(std::uint16_t port) {
    auto server = co_await corio::start_server(handle_echo, "127.0.0.1", port);
    std::cout << "serving on 127.0.0.1:" << server.port() << " (Ctrl-C stops)" << std::endl;
    co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--port") == 0) {
        try {
            corio::run(serve(static_cast<std::uint16_t>(std::atoi(argv[2]))));
        } catch (const corio::cancelled_error&) {
            std::cout << "stopped\n";  // Ctrl-C
        }
        return 0;
    }
    if (argc != 1) {
        std::cerr << "usage: " << argv[0] << " [--port N]\n";
        return 2;
    }
    corio::run(demo());
}
