// 14_echo_client: a TCP client with corio::open_connection (asyncio's open_connection).
//
// Beyond the note: the "TCP echo client" of asyncio's Streams documentation.
// `co_await corio::open_connection(host, port)` connects and returns a reader and a writer
// (`auto [reader, writer] = ...`, as `reader, writer = await ...`). The client talks to a
// line echo server in three ways a real protocol does:
//
// - one line at a time: `writer.write(line)`, `co_await writer.drain()`, then
//   `co_await reader.readline()`;
// - several lines at once: `writer.writelines(lines)` (one syscall), then one `readline` for
//   each: the reader's buffer keeps what arrived beyond the first line for the next call;
// - a fixed size: `co_await reader.readexactly(n)`, which waits until all n bytes are there.
//
// Then `writer.close()` and `co_await writer.wait_closed()`, as asyncio's client ends.
//
// Run without arguments, it starts its own tiny echo server on a port the kernel chooses and
// talks to it; `14_echo_client HOST PORT` talks to 13_echo_server instead
// (`13_echo_server --port 8888`, then `14_echo_client 127.0.0.1 8888`).

#include <corio/corio.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// Exits non-zero (an uncaught exception) if the behaviour this example shows ever breaks.
void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::cout.flush();  // std::terminate would drop what is still buffered
    throw std::logic_error("example broken: " + what);
}

std::string chomp(std::string line) {
    if (!line.empty() && line.back() == '\n') line.pop_back();
    return line;
}

corio::coro<> tcp_echo_client(std::string host, std::uint16_t port) {
    auto [reader, writer] = co_await corio::open_connection(host, port);
    std::cout << "connected to " << writer.peername().to_string() << " from "
              << writer.sockname().to_string() << '\n';

    // One line, one echo.
    const std::string message = "Hello World!\n";
    writer.write(message);
    co_await writer.drain();
    const std::string echo = co_await reader.readline();
    std::cout << "sent \"" << chomp(message) << "\", received \"" << chomp(echo) << "\"\n";
    expect(echo == message, "readline returns the line echoed");

    // Three lines in one write; the echoes may come back in one piece: readline splits them.
    const std::vector<std::string> lines = {"one\n", "two\n", "three\n"};
    writer.writelines(lines);
    co_await writer.drain();
    for (const std::string& line : lines) {
        const std::string back = co_await reader.readline();
        std::cout << "writelines: line \"" << chomp(back) << "\" came back\n";
        expect(back == line, "readline returns one line at a time");
    }

    // A fixed number of bytes.
    writer.write("0123456789\n");
    co_await writer.drain();
    const std::string eleven = co_await reader.readexactly(11);
    std::cout << "readexactly(11): \"" << chomp(eleven) << "\" and its newline\n";
    expect(eleven == "0123456789\n", "readexactly returns exactly the bytes asked for");

    std::cout << "closing the connection\n";
    writer.close();
    co_await writer.wait_closed();
}

// The tiny server the client talks to when run without arguments: 13_echo_server's handler.
corio::coro<> echo_lines(corio::stream_reader reader, corio::stream_writer writer) {
    for (;;) {
        const std::string line = co_await reader.readline();
        if (line.empty()) break;  // the client closed
        writer.write(line);
        co_await writer.drain();
    }
    writer.close();
}

corio::coro<> with_own_server() {
    auto server = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
    std::cout << "own echo server on 127.0.0.1:" << server.port() << '\n';
    co_await tcp_echo_client("127.0.0.1", server.port());
    server.close();
    co_await server.wait_closed();
    std::cout << "own server closed\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3) {
        corio::run(tcp_echo_client(argv[1], static_cast<std::uint16_t>(std::atoi(argv[2]))));
    } else if (argc == 1) {
        corio::run(with_own_server());
    } else {
        std::cerr << "usage: " << argv[0] << " [HOST PORT]\n";
        return 2;
    }
}
