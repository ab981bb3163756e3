// Streams against a peer corio did not write: Python's own asyncio (the system python3,
// /usr/bin/python3) as a client of a corio server, and as a server for a corio client, with
// line-framed and length-framed exchanges. The Python side is spawned with posix_spawn (not
// corio's subprocess support) and reports on its stdout, read through a corio pipe reader.
// Skipped, with a message, when /usr/bin/python3 is absent. CTest runs it once per backend.
#include <corio/net/connection.hpp>
#include <corio/net/server.hpp>
#include <corio/net/stream.hpp>

#include "support/catch.hpp"
#include "support/python_peer.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/system/unique_fd.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;

namespace {

using corio_test::python_child;

// --- Python scripts -----------------------------------------------------------------------------

// A Python asyncio client: line-framed, one at a time then pipelined, then half-close.
const char* const python_line_client = R"PY(
import asyncio, sys
async def main(port, n):
    r, w = await asyncio.wait_for(asyncio.open_connection('127.0.0.1', port), 10)
    for i in range(n):
        line = f'line {i} ' + 'x' * (i % 97) + '\n'
        w.write(line.encode())
        await w.drain()
        back = await asyncio.wait_for(r.readline(), 10)
        if back != line.upper().encode():
            print('MISMATCH', i, back, flush=True); sys.exit(1)
    lines = [f'burst {i}\n'.encode() for i in range(n)]
    w.writelines(lines)
    await w.drain()
    for l in lines:
        back = await asyncio.wait_for(r.readline(), 10)
        if back != l.upper():
            print('MISMATCH burst', back, flush=True); sys.exit(1)
    w.write_eof()
    rest = await asyncio.wait_for(r.read(), 10)
    w.close()
    await w.wait_closed()
    print('OK', n, len(rest), flush=True)
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
)PY";

// A Python asyncio client: length-framed (4-byte big-endian length, then the payload); the
// answer is the payload reversed, framed the same way.
const char* const python_frame_client = R"PY(
import asyncio, sys, os, struct
async def main(port):
    r, w = await asyncio.wait_for(asyncio.open_connection('127.0.0.1', port), 10)
    sizes = [0, 1, 7, 100, 4096, 65535, 65536, 65537, 300000, 1 << 20]
    for size in sizes:
        payload = os.urandom(size)
        w.write(struct.pack('>I', size) + payload)
        await w.drain()
        (n,) = struct.unpack('>I', await asyncio.wait_for(r.readexactly(4), 10))
        back = await asyncio.wait_for(r.readexactly(n), 10)
        if back != payload[::-1]:
            print('MISMATCH', size, n, flush=True); sys.exit(1)
    # Several frames in one write.
    batch = b''.join(struct.pack('>I', 3) + bytes([65 + i, 66 + i, 67 + i]) for i in range(20))
    w.write(batch)
    await w.drain()
    for i in range(20):
        (n,) = struct.unpack('>I', await asyncio.wait_for(r.readexactly(4), 10))
        back = await asyncio.wait_for(r.readexactly(n), 10)
        if back != bytes([67 + i, 66 + i, 65 + i]):
            print('MISMATCH batch', i, back, flush=True); sys.exit(1)
    w.close()
    await w.wait_closed()
    print('OK', len(sizes), flush=True)
asyncio.run(main(int(sys.argv[1])))
)PY";

// A Python asyncio server for one connection: prints its port, answers each line in upper
// case, closes at end of stream, prints DONE and exits.
const char* const python_line_server = R"PY(
import asyncio, sys
async def main():
    done = asyncio.Event()
    count = 0
    async def handle(r, w):
        nonlocal count
        while True:
            line = await r.readline()
            if not line:
                break
            count += 1
            w.write(line.upper())
            await w.drain()
        w.close()
        await w.wait_closed()
        done.set()
    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    print('PORT', server.sockets[0].getsockname()[1], flush=True)
    await asyncio.wait_for(done.wait(), 30)
    server.close()
    await server.wait_closed()
    print('DONE', count, flush=True)
asyncio.run(main())
)PY";

// A Python asyncio server for one connection, length-framed: answers each frame with the
// payload reversed.
const char* const python_frame_server = R"PY(
import asyncio, sys, struct
async def main():
    done = asyncio.Event()
    frames = 0
    async def handle(r, w):
        nonlocal frames
        while True:
            try:
                (n,) = struct.unpack('>I', await r.readexactly(4))
            except asyncio.IncompleteReadError as e:
                if e.partial:
                    print('PARTIAL HEADER', flush=True)
                break
            payload = await r.readexactly(n)
            frames += 1
            w.write(struct.pack('>I', n) + payload[::-1])
            await w.drain()
        w.close()
        await w.wait_closed()
        done.set()
    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    print('PORT', server.sockets[0].getsockname()[1], flush=True)
    await asyncio.wait_for(done.wait(), 30)
    server.close()
    await server.wait_closed()
    print('DONE', frames, flush=True)
asyncio.run(main())
)PY";

// --- corio handlers and helpers -----------------------------------------------------------------

std::string upper(std::string s) {
    for (char& c : s) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return s;
}

std::string frame(const std::string& payload) {
    const auto n = static_cast<std::uint32_t>(payload.size());
    std::string header(4, '\0');
    header[0] = static_cast<char>(n >> 24);
    header[1] = static_cast<char>(n >> 16);
    header[2] = static_cast<char>(n >> 8);
    header[3] = static_cast<char>(n);
    return header + payload;
}

std::uint32_t frame_length(const std::string& header) {
    const auto b = [&](std::size_t i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(header[i]));
    };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

corio::coro<> upper_lines(corio::stream_reader reader, corio::stream_writer writer) {
    for (;;) {
        const std::string line = co_await reader.readline();
        if (line.empty()) break;
        writer.write(upper(line));
        co_await writer.drain();
    }
    writer.close();
}

corio::coro<> reverse_frames(corio::stream_reader reader, corio::stream_writer writer) {
    for (;;) {
        std::string header;
        try {
            header = co_await reader.readexactly(4);
        } catch (const corio::incomplete_read_error& e) {
            if (!e.partial().empty()) throw;  // a frame cut in its header
            break;
        }
        std::string payload = co_await reader.readexactly(frame_length(header));
        std::reverse(payload.begin(), payload.end());
        writer.write(header);
        writer.write(payload);
        co_await writer.drain();
    }
    writer.close();
}

// The "PORT n" line a Python server prints.
corio::coro<std::uint16_t> read_port(corio::stream_reader out) {
    const std::string line = co_await corio::wait_for(out.readline(), 20s);
    if (line.rfind("PORT ", 0) != 0) throw std::runtime_error("python server said: " + line);
    co_return static_cast<std::uint16_t>(std::stoi(line.substr(5)));
}

// --- Python client, corio server
// ------------------------------------------------------------------

TEST_CASE("interop: Python asyncio client, corio server, line-framed", "[interop]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_PYTHON();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::server srv = co_await corio::start_server(upper_lines, "127.0.0.1", 0);
        python_child client(python_line_client, {std::to_string(srv.port()), "200"});
        corio::stream_reader out = client.take_stdout();
        const std::string report = co_await corio::wait_for(out.readline(), 30s);
        CHECK(report == "OK 200 0\n");
        const int status = co_await client.wait();
        CHECK(status == 0);
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }());
}

TEST_CASE("interop: Python asyncio client, corio server, length-framed", "[interop]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_PYTHON();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::server srv = co_await corio::start_server(reverse_frames, "127.0.0.1", 0);
        python_child client(python_frame_client, {std::to_string(srv.port())});
        corio::stream_reader out = client.take_stdout();
        const std::string report = co_await corio::wait_for(out.readline(), 30s);
        CHECK(report == "OK 10\n");
        const int status = co_await client.wait();
        CHECK(status == 0);
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }());
}

// --- corio client, Python server
// ------------------------------------------------------------------

TEST_CASE("interop: corio client, Python asyncio server, line-framed", "[interop]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_PYTHON();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        python_child server(python_line_server, {});
        corio::stream_reader out = server.take_stdout();
        const std::uint16_t port = co_await read_port(out);
        auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port);
        // One at a time, then 500 pipelined lines in one writelines.
        for (int i = 0; i < 100; ++i) {
            const std::string line = "line " + std::to_string(i) + " " +
                                     std::string(static_cast<std::size_t>(i), 'q') + "\n";
            writer.write(line);
            const std::string back = co_await corio::wait_for(reader.readline(), 10s);
            REQUIRE(back == upper(line));
        }
        std::vector<std::string> burst;
        for (int i = 0; i < 500; ++i) burst.push_back("burst " + std::to_string(i) + "\n");
        writer.writelines(burst);
        co_await writer.drain();
        for (const auto& line : burst) {
            const std::string_view back = co_await corio::wait_for(reader.readline_view(), 10s);
            REQUIRE(back == upper(line));
        }
        writer.write_eof();
        const std::string rest = co_await corio::wait_for(reader.read(), 10s);
        CHECK(rest.empty());
        const std::string done = co_await corio::wait_for(out.readline(), 10s);
        CHECK(done == "DONE 600\n");
        const int status = co_await server.wait();
        CHECK(status == 0);
    }());
}

TEST_CASE("interop: corio client, Python asyncio server, length-framed", "[interop]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_PYTHON();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        python_child server(python_frame_server, {});
        corio::stream_reader out = server.take_stdout();
        const std::uint16_t port = co_await read_port(out);
        auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port);
        const std::vector<std::size_t> sizes = {0, 1, 5, 1000, 65536, 65537, 500000, 3 << 20};
        std::uint32_t seed = 1;
        for (std::size_t size : sizes) {
            std::string payload(size, '\0');
            for (char& c : payload) {
                seed = seed * 1664525 + 1013904223;
                c = static_cast<char>(seed >> 24);
            }
            writer.write(frame(payload));
            co_await writer.drain();
            const std::string header = co_await corio::wait_for(reader.readexactly(4), 10s);
            REQUIRE(frame_length(header) == size);
            std::string back(size, '\0');
            co_await corio::wait_for(reader.readexactly_into(std::span<char>(back)), 10s);
            std::reverse(back.begin(), back.end());
            REQUIRE(back == payload);
        }
        writer.close();
        co_await writer.wait_closed();
        const std::string done = co_await corio::wait_for(out.readline(), 10s);
        CHECK(done == "DONE " + std::to_string(sizes.size()) + "\n");
        const int status = co_await server.wait();
        CHECK(status == 0);
    }());
}

}  // namespace
