// Streams (include/corio/net/stream.hpp): stream_reader / stream_writer over a Unix socketpair, a
// TCP loopback pair and pipes. Round trips, every read form, end of stream and
// incomplete_read_error, limit_overrun_error without memory growth, peer resets and closed
// peers (no SIGPIPE), drain with a slow reader, cancellation with no byte lost, close /
// write_eof / abort, dropping handles with data still buffered, the loop closing with a
// write in flight. CTest runs it once per backend (CORIO_BACKEND).
#include <corio/net/stream.hpp>

#include "support/catch.hpp"
#include "support/io_helpers.hpp"
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
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::check_syscall;
using corio_test::first_difference;
using corio_test::frame_leak_check;
using corio_test::random_bytes;
using fd_pair = corio_test::socket_pair;
using corio_test::eventually;
using corio_test::stopwatch;
using corio_test::unix_pair;

namespace {

// --- plumbing ------------------------------------------------------------------------------

// A connected TCP pair over 127.0.0.1, made with blocking calls (loopback connects at once).
fd_pair tcp_pair() {
    corio::unique_fd listening(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    check_syscall(static_cast<bool>(listening), "socket");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check_syscall(::bind(listening.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) ==
                      0,
                  "bind");
    check_syscall(::listen(listening.get(), 1) == 0, "listen");
    socklen_t length = sizeof address;
    check_syscall(::getsockname(listening.get(), reinterpret_cast<sockaddr*>(&address), &length) ==
                      0,
                  "getsockname");
    corio::unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    check_syscall(::connect(client.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) ==
                      0,
                  "connect");
    corio::unique_fd server(
        ::accept4(listening.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    check_syscall(static_cast<bool>(server), "accept4");
    check_syscall(::fcntl(client.get(), F_SETFL, O_NONBLOCK) == 0, "fcntl");
    return {std::move(client), std::move(server)};
}

enum class transport { unix_stream, tcp };
const char* name_of(transport t) { return t == transport::tcp ? "tcp" : "unix"; }
fd_pair make_pair(transport t) { return t == transport::tcp ? tcp_pair() : unix_pair(); }

fd_pair nonblocking_pipe() {
    int fds[2];
    check_syscall(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0, "pipe2");
    return {corio::unique_fd(fds[0]), corio::unique_fd(fds[1])};
}

// Both ends of a connection as streams, on the running loop.
struct stream_ends {
    corio::stream_pair a;
    corio::stream_pair b;
};

stream_ends make_streams(transport t, std::size_t limit = corio::default_stream_limit) {
    fd_pair fds = make_pair(t);
    return {corio::detail::make_socket_streams(std::move(fds.a), limit),
            corio::detail::make_socket_streams(std::move(fds.b), limit)};
}

// Writes `chunk` again and again until the writer reports the failure; its errno.
corio::coro<int> write_until_error(corio::stream_writer writer) {
    const std::string chunk(16 * 1024, 'w');
    for (int i = 0; i < 100'000; ++i) {
        try {
            writer.write(chunk);
            co_await writer.drain();
        } catch (const std::system_error& e) {
            co_return e.code().value();
        }
        co_await corio::sleep(0s);
    }
    co_return 0;
}

corio::coro<std::string> read_all(corio::stream_reader reader) { co_return co_await reader.read(); }

// --- round trips and the read forms -------------------------------------------------------------

TEST_CASE("stream: a round trip with every read form", "[stream]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    corio::run([](transport t) -> corio::coro<> {
        stream_ends ends = make_streams(t);
        auto& [reader, writer] = ends.b;
        auto& out = ends.a.writer;

        out.write("hello\n");
        const std::string line = co_await reader.readline();
        CHECK(line == "hello\n");

        out.write(std::string("one;two;"));
        const std::string one = co_await reader.readuntil(";");
        const std::string two = co_await reader.readuntil(";");
        CHECK(one == "one;");
        CHECK(two == "two;");

        // A multi-byte separator split across two writes.
        out.write("head\r");
        co_await corio::sleep(5ms);
        out.write("\nrest");
        const std::string crlf = co_await reader.readuntil("\r\n");
        CHECK(crlf == "head\r\n");
        const std::string rest = co_await reader.readexactly(4);
        CHECK(rest == "rest");

        const std::byte raw[] = {std::byte{0}, std::byte{1}, std::byte{2}, std::byte{255}};
        out.write(std::span<const std::byte>(raw));
        std::byte got[4] = {};
        co_await reader.readexactly_into(std::span<std::byte>(got));
        CHECK(std::memcmp(got, raw, 4) == 0);

        out.write("abcdef");
        const std::string three = co_await reader.read(3);
        CHECK(three == "abc");
        char into[10] = {};
        const std::size_t n = co_await reader.read_into(std::span<char>(into));
        CHECK(std::string_view(into, n) == "def");

        out.write("view line\nview;");
        const std::string_view view_line = co_await reader.readline_view();
        CHECK(view_line == "view line\n");
        const std::string_view view_until = co_await reader.readuntil_view(";");
        CHECK(view_until == "view;");

        // The reverse direction, then read(-1) until end of stream.
        writer.write("reply");
        writer.write_eof();
        const std::string reply = co_await ends.a.reader.read();
        CHECK(reply == "reply");
        CHECK(ends.a.reader.at_eof());

        out.write("the end");
        out.close();
        const std::string end = co_await reader.read();
        CHECK(end == "the end");
        CHECK(reader.at_eof());
        const std::string after = co_await reader.read();
        CHECK(after.empty());
        co_await out.wait_closed();
    }(t));
}

TEST_CASE("stream: read(64 KiB) of a short message keeps no 64 KiB block", "[stream]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        ends.a.writer.write(std::string(64, 'm'));
        const std::string message = co_await ends.b.reader.read(64 * 1024);
        CHECK(message == std::string(64, 'm'));
        CHECK(message.capacity() < 16 * 1024);
    }());
}

TEST_CASE("stream: writelines sends every piece in order", "[stream]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        std::vector<std::string> lines;
        for (int i = 0; i < 200; ++i) lines.push_back("line " + std::to_string(i) + "\n");
        ends.a.writer.writelines(lines);
        const std::vector<std::string_view> views = {"x", "y", "z\n"};
        ends.a.writer.writelines(views);
        for (int i = 0; i < 200; ++i) {
            const std::string line = co_await ends.b.reader.readline();
            REQUIRE(line == "line " + std::to_string(i) + "\n");
        }
        const std::string xyz = co_await ends.b.reader.readline();
        CHECK(xyz == "xyz\n");
    }());
}

TEST_CASE("stream: 8 MiB each way at once arrive intact", "[stream]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    corio::run([](transport t) -> corio::coro<> {
        stream_ends ends = make_streams(t);
        const std::string ab = random_bytes(8 << 20, 1);
        const std::string ba = random_bytes(8 << 20, 2);
        auto send = [](corio::stream_writer w, const std::string& data) -> corio::coro<> {
            // In uneven pieces, with drain, as a real producer would.
            std::size_t at = 0;
            std::size_t piece = 1;
            while (at < data.size()) {
                const std::size_t n = std::min(piece, data.size() - at);
                w.write(std::string_view(data).substr(at, n));
                at += n;
                piece = piece * 3 % 100'003 + 1;
                co_await w.drain();
            }
            w.write_eof();
        };
        auto to_b = corio::create_task(send(ends.a.writer, ab));
        auto to_a = corio::create_task(send(ends.b.writer, ba));
        auto at_b = corio::create_task(read_all(ends.b.reader));
        auto at_a = corio::create_task(read_all(ends.a.reader));
        const std::string got_b = co_await corio::wait_for(at_b, 30s);
        const std::string got_a = co_await corio::wait_for(at_a, 30s);
        co_await to_b;
        co_await to_a;
        CHECK(first_difference(got_b, ab) == -1);
        CHECK(first_difference(got_a, ba) == -1);
    }(t));
}

// --- end of stream ------------------------------------------------------------------------

TEST_CASE("stream: readexactly at end of stream throws incomplete_read_error with the partial "
          "bytes",
          "[stream][eof]") {
    CORIO_REQUIRE_BACKEND();
    const std::size_t wanted = GENERATE(std::size_t{10}, std::size_t{1} << 20);
    CAPTURE(wanted);
    frame_leak_check leaks;
    corio::run([](std::size_t wanted) -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        ends.a.writer.write("12345");
        ends.a.writer.close();
        std::string partial;
        std::optional<std::size_t> expected;
        try {
            (void)co_await ends.b.reader.readexactly(wanted);
        } catch (const corio::incomplete_read_error& e) {
            partial = e.partial();
            expected = e.expected();
        }
        CHECK(partial == "12345");
        REQUIRE(expected.has_value());
        CHECK(*expected == wanted);
        CHECK(ends.b.reader.at_eof());  // the partial bytes were consumed
    }(wanted));
}

TEST_CASE("stream: readuntil at end of stream throws incomplete_read_error; readline returns "
          "the last bytes, then empty strings",
          "[stream][eof]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        {
            stream_ends ends = make_streams(transport::unix_stream);
            ends.a.writer.write("no separator");
            ends.a.writer.write_eof();
            bool thrown = false;
            try {
                (void)co_await ends.b.reader.readuntil("|");
            } catch (const corio::incomplete_read_error& e) {
                thrown = true;
                CHECK(e.partial() == "no separator");
                CHECK_FALSE(e.expected().has_value());
            }
            CHECK(thrown);
        }
        {
            stream_ends ends = make_streams(transport::unix_stream);
            ends.a.writer.write("first\nlast without newline");
            ends.a.writer.close();
            const std::string first = co_await ends.b.reader.readline();
            const std::string last = co_await ends.b.reader.readline();
            const std::string empty = co_await ends.b.reader.readline();
            CHECK(first == "first\n");
            CHECK(last == "last without newline");
            CHECK(empty.empty());
            CHECK(ends.b.reader.at_eof());
            const std::string more = co_await ends.b.reader.read(100);
            CHECK(more.empty());
        }
    }());
}

// --- the limit ---------------------------------------------------------------------------

TEST_CASE("stream: a line longer than the limit throws limit_overrun_error without growing "
          "memory, and the stream goes on",
          "[stream][limit]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    corio::run([](transport t) -> corio::coro<> {
        constexpr std::size_t limit = 1024;
        stream_ends ends = make_streams(t, limit);
        auto& reader = ends.b.reader;
        CHECK(reader.limit() == limit);
        // 4 MiB without a newline, then a normal line; sent in the background.
        auto sender = corio::create_task([](corio::stream_writer w) -> corio::coro<> {
            const std::string block(64 * 1024, 'x');
            for (int i = 0; i < 64; ++i) {
                w.write(block);
                co_await w.drain();
            }
            w.write("\nok\n");
            co_await w.drain();
        }(ends.a.writer));

        int overruns = 0;
        std::size_t most_buffered = 0;
        std::string line;
        for (;;) {
            try {
                line = co_await corio::wait_for(reader.readline(), 10s);
            } catch (const corio::limit_overrun_error& e) {
                ++overruns;
                CHECK(e.consumed() > limit);
                most_buffered = std::max(most_buffered, reader.buffered());
                continue;
            }
            if (line == "ok\n") break;
            // The tail of the long line, shorter than the limit, comes back as a line.
            CHECK(line.size() <= limit + 1);
        }
        CHECK(overruns > 0);
        // readline dropped what it could not keep: the buffer never held much more than the
        // limit plus one receive.
        INFO("most bytes buffered after an overrun: " << most_buffered);
        CHECK(most_buffered <= limit + 64 * 1024);
        co_await sender;
    }(t));
}

TEST_CASE("stream: readuntil past the limit leaves the data buffered; a separator found past "
          "the limit is reported too",
          "[stream][limit]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream, 16);
        auto& reader = ends.b.reader;
        ends.a.writer.write(std::string(20, 'a') + "|tail");
        co_await corio::sleep(5ms);
        std::size_t consumed = 0;
        try {
            (void)co_await reader.readuntil("|");
        } catch (const corio::limit_overrun_error& e) {
            consumed = e.consumed();
        }
        CHECK(consumed == 20);  // found, at offset 20 > 16
        // Still buffered: a read takes it.
        const std::string taken = co_await reader.readexactly(21);
        CHECK(taken == std::string(20, 'a') + "|");
        const std::string tail = co_await reader.read(4);
        CHECK(tail == "tail");
        // A line exactly at the limit is fine.
        ends.a.writer.write(std::string(16, 'b') + "\n");
        const std::string at_limit = co_await reader.readline();
        CHECK(at_limit.size() == 17);
    }());
}

// --- errors ------------------------------------------------------------------------------

TEST_CASE("stream: a peer reset gives system_error on the next read and write, never SIGPIPE",
          "[stream][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        fd_pair fds = tcp_pair();
        const int peer = fds.a.get();
        corio::stream_pair mine = corio::detail::make_socket_streams(std::move(fds.b));
        // The peer has unread data and closes with SO_LINGER 0: an RST.
        mine.writer.write("unread by the peer");
        co_await corio::sleep(5ms);
        linger hard{1, 0};
        check_syscall(::setsockopt(peer, SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0,
                      "setsockopt");
        fds.a.reset();
        int read_errno = 0;
        try {
            (void)co_await corio::wait_for(mine.reader.read(100), 2s);
        } catch (const std::system_error& e) {
            read_errno = e.code().value();
        }
        CHECK(read_errno == ECONNRESET);
        // The transport has failed: writes and drain report it as well.
        int write_errno = 0;
        try {
            mine.writer.write("more");
            co_await mine.writer.drain();
        } catch (const std::system_error& e) {
            write_errno = e.code().value();
        }
        CHECK((write_errno == ECONNRESET || write_errno == EPIPE));
        CHECK(mine.writer.is_closing());
        co_await corio::wait_for(mine.writer.wait_closed(), 2s);
    }());
}

TEST_CASE("stream: writing to a peer that closed ends in EPIPE or ECONNRESET, not SIGPIPE",
          "[stream][error]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    // Make sure a SIGPIPE would kill us: the default disposition.
    struct sigaction previous{};
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, &previous);
    const int error = corio::run([](transport t) -> corio::coro<int> {
        fd_pair fds = make_pair(t);
        corio::stream_pair mine = corio::detail::make_socket_streams(std::move(fds.b));
        fds.a.reset();
        co_return co_await corio::wait_for(write_until_error(mine.writer), 10s);
    }(t));
    ::sigaction(SIGPIPE, &previous, nullptr);
    CHECK((error == EPIPE || error == ECONNRESET));
}

TEST_CASE("stream: write after close() or write_eof() is an invalid_state_error",
          "[stream][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        ends.a.writer.write_eof();
        CHECK_THROWS_AS(ends.a.writer.write("x"), corio::invalid_state_error);
        ends.b.writer.close();
        CHECK(ends.b.writer.is_closing());
        CHECK_THROWS_AS(ends.b.writer.write("x"), corio::invalid_state_error);
        co_await ends.b.writer.wait_closed();
        CHECK(ends.b.writer.native_handle() == -1);
    }());
}

TEST_CASE("stream: a second concurrent read is refused", "[stream][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        auto first = corio::create_task(ends.b.reader.readline());
        co_await corio::sleep(2ms);
        bool refused = false;
        try {
            (void)co_await ends.b.reader.read(10);
        } catch (const corio::invalid_state_error&) {
            refused = true;
        }
        CHECK(refused);
        ends.a.writer.write("for the first\n");
        const std::string got = co_await corio::wait_for(first, 2s);
        CHECK(got == "for the first\n");
    }());
}

// --- flow control ---------------------------------------------------------------------------

TEST_CASE("stream: drain waits for a slow reader and keeps the buffer bounded", "[stream][drain]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    corio::run([](transport t) -> corio::coro<> {
        stream_ends ends = make_streams(t);
        auto& writer = ends.a.writer;
        const auto [low, high] = writer.get_write_buffer_limits();
        CHECK(low == corio::default_write_low_water);
        CHECK(high == corio::default_write_high_water);
        // The reader takes 64 KiB every millisecond: far slower than the writer.
        constexpr std::size_t total = 16 << 20;
        auto slow = corio::create_task([](corio::stream_reader r) -> corio::coro<std::size_t> {
            std::size_t received = 0;
            for (;;) {
                const std::string piece = co_await r.read(64 * 1024);
                if (piece.empty()) co_return received;
                for (char c : piece) {
                    if (c != 'd') co_return 0;
                }
                received += piece.size();
                co_await corio::sleep(1ms);
            }
        }(ends.b.reader));
        const std::string chunk(32 * 1024, 'd');
        std::size_t most_buffered = 0;
        int waits = 0;
        for (std::size_t sent = 0; sent < total; sent += chunk.size()) {
            writer.write(chunk);
            most_buffered = std::max(most_buffered, writer.write_buffer_size());
            stopwatch watch;
            co_await writer.drain();
            if (watch.elapsed() > 100us) ++waits;
            CHECK(writer.write_buffer_size() <= high);
        }
        writer.close();
        const std::size_t received = co_await corio::wait_for(slow, 60s);
        CHECK(received == total);
        CHECK(waits > 0);
        CHECK(most_buffered <= high + chunk.size());
        co_await writer.wait_closed();
    }(t));
}

TEST_CASE("stream: set_write_buffer_limits moves the water marks", "[stream][drain]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        auto& writer = ends.a.writer;
        writer.set_write_buffer_limits(1000);
        const auto [low, high] = writer.get_write_buffer_limits();
        CHECK(high == 1000);
        CHECK(low == 250);
        CHECK_THROWS_AS(writer.set_write_buffer_limits(10, 20), std::invalid_argument);
        // Fill the kernel's buffers, then more than `high` is buffered: drain must wait.
        const std::string block(256 * 1024, 'q');
        writer.write(block);
        writer.write(block);
        REQUIRE(writer.write_buffer_size() > 1000);
        auto draining = corio::create_task(
            [](corio::stream_writer w) -> corio::coro<> { co_await w.drain(); }(writer));
        co_await corio::sleep(10ms);
        CHECK_FALSE(draining.done());
        auto reading = corio::create_task(read_all(ends.b.reader));
        co_await corio::wait_for(draining, 5s);
        CHECK(writer.write_buffer_size() <= 250);
        writer.close();
        const std::string all = co_await corio::wait_for(reading, 5s);
        CHECK(all.size() == 2 * block.size());
    }());
}

TEST_CASE("stream: drain on a failed transport throws its error; a drain waiting when the peer "
          "resets wakes with it",
          "[stream][drain][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        fd_pair fds = tcp_pair();
        corio::stream_pair mine = corio::detail::make_socket_streams(std::move(fds.b));
        const std::string block(1 << 20, 'z');
        // More than the kernel takes, and past the high-water mark: drain waits.
        while (mine.writer.write_buffer_size() <= corio::default_write_high_water) {
            mine.writer.write(block);
        }
        auto draining = corio::create_task([](corio::stream_writer w) -> corio::coro<int> {
            try {
                co_await w.drain();
            } catch (const std::system_error& e) {
                co_return e.code().value();
            }
            co_return 0;
        }(mine.writer));
        co_await corio::sleep(10ms);
        REQUIRE_FALSE(draining.done());
        linger hard{1, 0};
        check_syscall(::setsockopt(fds.a.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0,
                      "setsockopt");
        fds.a.reset();
        const int error = co_await corio::wait_for(draining, 5s);
        CHECK((error == ECONNRESET || error == EPIPE));
        int again = 0;
        try {
            co_await mine.writer.drain();
        } catch (const std::system_error& e) {
            again = e.code().value();
        }
        CHECK(again == error);
    }());
}

// --- cancellation --------------------------------------------------------------------------

TEST_CASE("stream: cancelling a read in flight is prompt and loses nothing", "[stream][cancel]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    corio::run([](transport t) -> corio::coro<> {
        stream_ends ends = make_streams(t);
        auto& reader = ends.b.reader;
        // A readline with half a line buffered, cancelled.
        ends.a.writer.write("half a ");
        auto blocked = corio::create_task(reader.readline());
        co_await corio::sleep(10ms);
        REQUIRE_FALSE(blocked.done());
        stopwatch watch;
        blocked.cancel();
        try {
            (void)co_await blocked;
        } catch (const corio::cancelled_error&) {
        }
        CHECK(blocked.cancelled());
        CHECK(watch.elapsed() < 1s);
        ends.a.writer.write("line\n");
        const std::string line = co_await corio::wait_for(reader.readline(), 2s);
        CHECK(line == "half a line\n");

        // readexactly of a big block, cancelled half way: the bytes received so far stay.
        const std::string block = random_bytes(1 << 20, 7);
        ends.a.writer.write(std::string_view(block).substr(0, block.size() / 2));
        auto exact = corio::create_task(reader.readexactly(block.size()));
        co_await corio::sleep(20ms);
        REQUIRE_FALSE(exact.done());
        exact.cancel();
        try {
            (void)co_await exact;
        } catch (const corio::cancelled_error&) {
        }
        CHECK(exact.cancelled());
        ends.a.writer.write(std::string_view(block).substr(block.size() / 2));
        const std::string whole = co_await corio::wait_for(reader.readexactly(block.size()), 5s);
        CHECK(first_difference(whole, block) == -1);
    }(t));
}

TEST_CASE("stream: data arriving as a read is cancelled is never lost", "[stream][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        for (int round = 0; round < 50; ++round) {
            stream_ends ends =
                make_streams(round % 2 == 0 ? transport::unix_stream : transport::tcp);
            std::string taken;
            auto blocked =
                corio::create_task([](corio::stream_reader r, std::string& taken) -> corio::coro<> {
                    taken = co_await r.read(64);
                    co_await corio::sleep(0s);  // where a cancellation that lost the race lands
                }(ends.b.reader, taken));
            co_await corio::sleep(round % 3 == 0 ? 0ms : 1ms);
            ends.a.writer.write("payload");
            blocked.cancel();
            try {
                co_await blocked;
            } catch (const corio::cancelled_error&) {
            }
            std::string rest;
            if (taken.size() < 7) {
                rest = co_await corio::wait_for(ends.b.reader.readexactly(7 - taken.size()), 2s);
            }
            CAPTURE(round, taken, rest);
            CHECK(taken + rest == "payload");
        }
    }());
}

TEST_CASE("stream: wait_for around a readline times out and the stream keeps working",
          "[stream][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        for (int i = 0; i < 10; ++i) {
            ends.a.writer.write("x");
            bool timed_out = false;
            try {
                (void)co_await corio::wait_for(ends.b.reader.readline(), 2ms);
            } catch (const corio::timeout_error&) {
                timed_out = true;
            }
            CHECK(timed_out);
        }
        ends.a.writer.write("\n");
        const std::string line = co_await corio::wait_for(ends.b.reader.readline(), 2s);
        CHECK(line == "xxxxxxxxxx\n");
    }());
}

TEST_CASE("stream: cancelling a task waiting in drain leaves the data to be sent",
          "[stream][cancel][drain]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        const std::string block(1 << 20, 'c');
        ends.a.writer.write(block);
        auto draining = corio::create_task(
            [](corio::stream_writer w) -> corio::coro<> { co_await w.drain(); }(ends.a.writer));
        co_await corio::sleep(5ms);
        REQUIRE_FALSE(draining.done());
        draining.cancel();
        try {
            co_await draining;
        } catch (const corio::cancelled_error&) {
        }
        CHECK(draining.cancelled());
        ends.a.writer.close();
        const std::string all = co_await corio::wait_for(read_all(ends.b.reader), 5s);
        CHECK(all.size() == block.size());
    }());
}

// --- closing -----------------------------------------------------------------------------------

TEST_CASE("stream: close() flushes what is buffered, then closes; wait_closed waits for it",
          "[stream][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::tcp);
        const std::string block = random_bytes(4 << 20, 3);
        ends.a.writer.write(block);
        CHECK(ends.a.writer.write_buffer_size() > 0);
        ends.a.writer.close();
        CHECK(ends.a.writer.is_closing());
        auto waiting = corio::create_task([](corio::stream_writer w) -> corio::coro<> {
            co_await w.wait_closed();
        }(ends.a.writer));
        co_await corio::sleep(5ms);
        CHECK_FALSE(waiting.done());  // nobody reads: the buffer cannot be flushed yet
        const std::string all = co_await corio::wait_for(read_all(ends.b.reader), 10s);
        CHECK(first_difference(all, block) == -1);
        co_await corio::wait_for(waiting, 2s);
    }());
}

TEST_CASE("stream: close() ends a read in progress as at end of stream", "[stream][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        auto reading = corio::create_task(ends.b.reader.read(100));
        co_await corio::sleep(5ms);
        REQUIRE_FALSE(reading.done());
        ends.b.writer.close();
        const std::string got = co_await corio::wait_for(reading, 2s);
        CHECK(got.empty());
        CHECK(ends.b.reader.at_eof());
        co_await ends.b.writer.wait_closed();
        // The peer sees the end of the stream.
        const std::string at_peer = co_await corio::wait_for(ends.a.reader.read(), 2s);
        CHECK(at_peer.empty());
    }());
}

TEST_CASE("stream: write_eof half-closes; the other direction keeps working", "[stream][close]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    corio::run([](transport t) -> corio::coro<> {
        stream_ends ends = make_streams(t);
        CHECK(ends.a.writer.can_write_eof());
        ends.a.writer.write(std::string(1 << 20, 'h'));  // buffered: EOF goes after it
        ends.a.writer.write_eof();
        const std::string all = co_await corio::wait_for(read_all(ends.b.reader), 5s);
        CHECK(all.size() == std::size_t{1} << 20);
        ends.b.writer.write("answer\n");
        const std::string answer = co_await corio::wait_for(ends.a.reader.readline(), 2s);
        CHECK(answer == "answer\n");
    }(t));
}

TEST_CASE("stream: abort() drops what is buffered and closes at once", "[stream][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::unix_stream);
        ends.a.writer.write(std::string(4 << 20, 'a'));
        REQUIRE(ends.a.writer.write_buffer_size() > 0);
        ends.a.writer.abort();
        co_await corio::wait_for(ends.a.writer.wait_closed(), 2s);
        CHECK(ends.a.writer.write_buffer_size() == 0);
        const std::string got = co_await corio::wait_for(read_all(ends.b.reader), 5s);
        CHECK(got.size() < std::size_t{4} << 20);
    }());
}

TEST_CASE("stream: dropping every handle still sends what is buffered, then closes; nothing "
          "leaks",
          "[stream][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        fd_pair fds = unix_pair();
        corio::stream_pair far = corio::detail::make_socket_streams(std::move(fds.b));
        const std::string block = random_bytes(2 << 20, 5);
        {
            corio::stream_pair near = corio::detail::make_socket_streams(std::move(fds.a));
            near.writer.write(block);
            REQUIRE(near.writer.write_buffer_size() > 0);
        }  // both handles gone, with most of the block still buffered
        const std::string all = co_await corio::wait_for(read_all(far.reader), 10s);
        CHECK(first_difference(all, block) == -1);
    }());
}

TEST_CASE("stream: the loop closing with a write in flight and handles kept past run() leaks "
          "nothing",
          "[stream][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    fd_pair fds = unix_pair();
    corio::stream_writer kept;
    corio::run([](corio::unique_fd fd, corio::stream_writer& kept) -> corio::coro<> {
        corio::stream_pair near = corio::detail::make_socket_streams(std::move(fd));
        near.writer.write(std::string(4 << 20, 'k'));  // nobody reads: stays in flight
        kept = near.writer;
        // A task blocked in a read when run() ends is cancelled.
        (void)corio::create_task(read_all(near.reader));
        co_await corio::sleep(5ms);
    }(std::move(fds.a), kept));
    CHECK(kept.is_closing());
    CHECK_THROWS_AS(kept.write("late"), std::system_error);
    kept = corio::stream_writer();  // the transport goes now, outside any loop
}

// --- pipes ---------------------------------------------------------------------------------

TEST_CASE("stream: make_pipe_reader / make_pipe_writer over pipe2", "[stream][pipe]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        fd_pair p = nonblocking_pipe();
        corio::stream_reader reader = corio::detail::make_pipe_reader(std::move(p.a));
        corio::stream_writer writer = corio::detail::make_pipe_writer(std::move(p.b));
        CHECK(writer.peername().size() == 0);  // not a socket
        writer.write("line one\nline two\n");
        const std::string one = co_await reader.readline();
        const std::string two = co_await reader.readline();
        CHECK(one == "line one\n");
        CHECK(two == "line two\n");
        // More than a pipe holds (64 KiB): buffered and flushed in the background.
        const std::string block = random_bytes(1 << 20, 9);
        writer.write(block);
        CHECK(writer.write_buffer_size() > 0);
        auto all = corio::create_task(read_all(reader));
        co_await corio::wait_for(writer.drain(), 5s);
        writer.close();
        co_await corio::wait_for(writer.wait_closed(), 5s);
        const std::string got = co_await corio::wait_for(all, 5s);
        CHECK(first_difference(got, block) == -1);
        CHECK(reader.at_eof());
    }());
}

TEST_CASE("stream: a pipe writer whose reader is gone gets EPIPE, not SIGPIPE", "[stream][pipe]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const int error = corio::run([]() -> corio::coro<int> {
        fd_pair p = nonblocking_pipe();
        corio::stream_writer writer = corio::detail::make_pipe_writer(std::move(p.b));
        // The factory set SIGPIPE to SIG_IGN if it had its default disposition.
        struct sigaction now{};
        ::sigaction(SIGPIPE, nullptr, &now);
        CHECK(now.sa_handler != SIG_DFL);
        p.a.reset();
        co_return co_await corio::wait_for(write_until_error(writer), 5s);
    }());
    CHECK(error == EPIPE);
}

TEST_CASE("stream: a pipe writer's write_eof closes the pipe; the reader sees the end",
          "[stream][pipe]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        fd_pair p = nonblocking_pipe();
        corio::stream_reader reader = corio::detail::make_pipe_reader(std::move(p.a), 100);
        corio::stream_writer writer = corio::detail::make_pipe_writer(std::move(p.b));
        writer.write("last words");
        writer.write_eof();
        co_await corio::wait_for(writer.wait_closed(), 2s);
        const std::string all = co_await corio::wait_for(reader.read(), 2s);
        CHECK(all == "last words");
        CHECK(reader.limit() == 100);
    }());
}

TEST_CASE("stream: cancelling a pipe read in flight, then reading on", "[stream][pipe][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        fd_pair p = nonblocking_pipe();
        corio::stream_reader reader = corio::detail::make_pipe_reader(std::move(p.a));
        corio::stream_writer writer = corio::detail::make_pipe_writer(std::move(p.b));
        auto blocked = corio::create_task(reader.readline());
        co_await corio::sleep(5ms);
        blocked.cancel();
        try {
            (void)co_await blocked;
        } catch (const corio::cancelled_error&) {
        }
        CHECK(blocked.cancelled());
        writer.write("after\n");
        const std::string line = co_await corio::wait_for(reader.readline(), 2s);
        CHECK(line == "after\n");
    }());
}

// --- addresses -------------------------------------------------------------------------------

TEST_CASE("stream: peername and sockname of a TCP connection", "[stream]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        stream_ends ends = make_streams(transport::tcp);
        const corio::socket_address a_local = ends.a.writer.sockname();
        const corio::socket_address b_peer = ends.b.writer.peername();
        CHECK(a_local.family() == AF_INET);
        CHECK(a_local.to_string() == b_peer.to_string());
        CHECK(ends.a.writer.peername().port() == ends.b.writer.sockname().port());
        CHECK(ends.a.writer.native_handle() >= 0);
        co_return;
    }());
}

}  // namespace
