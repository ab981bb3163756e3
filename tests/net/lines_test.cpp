// stream_reader::lines() (include/corio/net/stream.hpp), asyncio's `async for line in reader`,
// over real TCP on loopback (corio::start_server and corio::open_connection): lines in order
// whatever the chunking, empty lines, long lines within a raised limit, a line past the limit,
// a peer closing mid-line or resetting, a timed-out or cancelled next() losing nothing, Python's
// asyncio on the other end (both ways), 100,000 lines, and the generator outliving the reader it
// was made from. CTest runs it once per backend (CORIO_BACKEND).
#include <corio/net/connection.hpp>
#include <corio/net/server.hpp>
#include <corio/net/stream.hpp>

#include "support/catch.hpp"
#include "support/io_helpers.hpp"
#include "support/python_peer.hpp"
#include "support/test_helpers.hpp"

#include <corio/async_generator.hpp>
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
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::check_syscall;
using corio_test::eventually;
using corio_test::first_difference;
using corio_test::frame_leak_check;
using corio_test::random_bytes;
using corio_test::stopwatch;

namespace {

using corio_test::python_child;

// --- a TCP connection made by corio on both ends --------------------------------------------

using accepted_list = std::vector<corio::stream_pair>;

// The server side's handles outlive the handler's task, so the connection stays open for the
// test to drive from outside the handler.
corio::coro<> keep_streams(std::shared_ptr<accepted_list> accepted, corio::stream_reader reader,
                           corio::stream_writer writer) {
    corio::stream_pair pair;
    pair.reader = std::move(reader);
    pair.writer = std::move(writer);
    accepted->push_back(std::move(pair));
    co_return;
}

struct acceptor {
    std::shared_ptr<accepted_list> accepted;
    corio::coro<> operator()(corio::stream_reader reader, corio::stream_writer writer) const {
        return keep_streams(accepted, std::move(reader), std::move(writer));
    }
};

struct tcp_link {
    corio::server srv;
    corio::stream_pair client;  // open_connection's end
    corio::stream_pair server;  // start_server's end
};

// A loopback TCP connection; `client_limit` is open_connection's limit, `server_limit`
// start_server's.
corio::coro<tcp_link> connect_link(std::size_t client_limit = corio::default_stream_limit,
                                   std::size_t server_limit = corio::default_stream_limit) {
    auto accepted = std::make_shared<accepted_list>();
    corio::server_options server_opts;
    server_opts.limit = server_limit;
    server_opts.family = AF_INET;
    acceptor handler{accepted};
    tcp_link link;
    link.srv = co_await corio::start_server(handler, "127.0.0.1", 0, server_opts);
    corio::connection_options client_opts;
    client_opts.limit = client_limit;
    client_opts.family = AF_INET;
    link.client = co_await corio::open_connection("127.0.0.1", link.srv.port(), client_opts);
    const bool arrived = co_await eventually([&] { return !accepted->empty(); }, 5000ms);
    if (!arrived) throw std::runtime_error("the server never accepted the connection");
    link.server = accepted->front();
    // No more connections are expected; the accepted handles live on in `link`.
    link.srv.close();
    co_await corio::wait_for(link.srv.wait_closed(), 5s);
    co_return link;
}

// Every line the generator yields, until it ends.
corio::coro<std::vector<std::string>> drain_lines(corio::async_generator<std::string>& lines) {
    std::vector<std::string> got;
    while (auto line = co_await lines.next()) got.push_back(std::move(*line));
    co_return got;
}

corio::coro<std::vector<std::string>> all_lines(corio::stream_reader reader) {
    auto lines = reader.lines();
    co_return co_await drain_lines(lines);
}

// Writes `data` in pieces of 1 to `max_piece` bytes (cut anywhere, mid-line included) with a
// short pause now and then, so that the reader sees partial lines; then ends the stream.
corio::coro<> send_in_pieces(corio::stream_writer writer, std::string data, std::size_t max_piece,
                             std::uint32_t seed) {
    std::mt19937 random(seed);
    std::uniform_int_distribution<std::size_t> piece(1, max_piece);
    std::size_t at = 0;
    int count = 0;
    while (at < data.size()) {
        const std::size_t n = std::min(piece(random), data.size() - at);
        writer.write(std::string_view(data).substr(at, n));
        at += n;
        co_await writer.drain();
        if (++count % 8 == 0) co_await corio::sleep(1ms);
    }
    // Not close(): that would close the reading side too, and unread bytes from the peer turn
    // a close into a reset.
    writer.write_eof();
}

std::string joined(const std::vector<std::string>& lines) {
    std::string all;
    for (const auto& line : lines) all += line;
    return all;
}

// Lines of varied lengths, every fifth one empty ("\n").
std::vector<std::string> varied_lines(int count) {
    std::vector<std::string> lines;
    for (int i = 0; i < count; ++i) {
        if (i % 5 == 3) {
            lines.emplace_back("\n");
            continue;
        }
        std::string line = "line " + std::to_string(i) + ":";
        line.append(static_cast<std::size_t>((i * 37) % 300), static_cast<char>('a' + i % 26));
        line += '\n';
        lines.push_back(std::move(line));
    }
    return lines;
}

// Random bytes with no '\n' in them, for one long line.
std::string line_body(std::size_t size, std::uint64_t seed) {
    std::string body = random_bytes(size, seed);
    std::replace(body.begin(), body.end(), '\n', '!');
    return body;
}

// --- lines in order ---------------------------------------------------------------------------

TEST_CASE("lines: many lines arrive in order, whole, whatever the chunking", "[lines]") {
    CORIO_REQUIRE_BACKEND();
    const std::size_t max_piece = GENERATE(std::size_t{3}, std::size_t{97}, std::size_t{4096});
    CAPTURE(max_piece);
    frame_leak_check leaks;
    corio::run([](std::size_t max_piece) -> corio::coro<> {
        tcp_link link = co_await connect_link();
        // Tiny pieces with a pause every eight make slow progress: fewer lines for them.
        const int count = max_piece < 10 ? 150 : max_piece < 1000 ? 1000 : 3000;
        const std::vector<std::string> expected = varied_lines(count);
        auto sender =
            corio::create_task(send_in_pieces(link.server.writer, joined(expected), max_piece, 42));
        const std::vector<std::string> got =
            co_await corio::wait_for(all_lines(link.client.reader), 60s);
        co_await corio::wait_for(sender, 10s);
        REQUIRE(got.size() == expected.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            CAPTURE(i);
            REQUIRE(got[i] == expected[i]);
        }
        CHECK(link.client.reader.at_eof());
    }(max_piece));
}

TEST_CASE("lines: only empty lines, and a stream that ends at once", "[lines]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        tcp_link link = co_await connect_link();
        link.server.writer.write(std::string(50, '\n'));
        link.server.writer.close();
        // collect() owning the generator: asyncio's [line async for line in reader].
        corio::coro<std::vector<std::string>> collecting =
            corio::collect(link.client.reader.lines());
        const std::vector<std::string> got = co_await corio::wait_for(std::move(collecting), 10s);
        CHECK(got.size() == 50);
        CHECK(std::all_of(got.begin(), got.end(), [](const std::string& l) { return l == "\n"; }));

        // Nothing at all before the end: the generator ends without yielding.
        tcp_link quiet = co_await connect_link();
        quiet.server.writer.close();
        const std::vector<std::string> none =
            co_await corio::wait_for(all_lines(quiet.client.reader), 10s);
        CHECK(none.empty());
    }());
}

// --- the end of the stream --------------------------------------------------------------------

TEST_CASE("lines: a peer closing mid-line gives the partial line without '\\n', then the end",
          "[lines]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        tcp_link link = co_await connect_link();
        auto& out = link.server.writer;
        auto lines = link.client.reader.lines();
        out.write("one\ntw");
        const auto one = co_await corio::wait_for(lines.next(), 5s);
        REQUIRE(one);
        CHECK(*one == "one\n");
        co_await corio::sleep(5ms);
        out.write("o\nthree, cut sh");
        co_await corio::sleep(5ms);
        out.write("ort");
        out.close();
        const auto two = co_await corio::wait_for(lines.next(), 5s);
        REQUIRE(two);
        CHECK(*two == "two\n");
        const auto three = co_await corio::wait_for(lines.next(), 5s);
        REQUIRE(three);
        CHECK(*three == "three, cut short");
        const auto end = co_await corio::wait_for(lines.next(), 5s);
        CHECK_FALSE(end);
        // An ended generator stays ended.
        const auto again = co_await corio::wait_for(lines.next(), 5s);
        CHECK_FALSE(again);
        CHECK(link.client.reader.at_eof());

        // A close right after a '\n': no empty line is made up at the end.
        tcp_link second = co_await connect_link();
        second.server.writer.write("last\n");
        second.server.writer.close();
        const std::vector<std::string> got =
            co_await corio::wait_for(all_lines(second.client.reader), 5s);
        REQUIRE(got.size() == 1);
        CHECK(got[0] == "last\n");
    }());
}

// --- long lines and the limit -----------------------------------------------------------------

TEST_CASE("lines: 1 MiB lines within a raised limit arrive byte for byte, both ways",
          "[lines][limit]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        constexpr std::size_t mib = std::size_t{1} << 20;
        tcp_link link = co_await connect_link(2 * mib, 3 * mib);
        CHECK(link.client.reader.limit() == 2 * mib);
        CHECK(link.server.reader.limit() == 3 * mib);
        const std::string big = line_body(mib, 1) + "\n";
        const std::string bigger = line_body(mib + 12345, 2) + "\n";
        const std::string data = "short\n" + big + "\n" + bigger + "tail";

        // Server to client, then client to server: both limits are honoured.
        auto to_client = corio::create_task(send_in_pieces(link.server.writer, data, 200000, 3));
        auto to_server = corio::create_task(send_in_pieces(link.client.writer, data, 70000, 4));
        const std::vector<std::string> at_client =
            co_await corio::wait_for(all_lines(link.client.reader), 60s);
        const std::vector<std::string> at_server =
            co_await corio::wait_for(all_lines(link.server.reader), 60s);
        co_await corio::wait_for(to_client, 10s);
        co_await corio::wait_for(to_server, 10s);
        for (const auto* got : {&at_client, &at_server}) {
            REQUIRE(got->size() == 5);
            CHECK((*got)[0] == "short\n");
            CHECK(first_difference((*got)[1], big) == -1);
            CHECK((*got)[2] == "\n");
            CHECK(first_difference((*got)[3], bigger) == -1);
            CHECK((*got)[4] == "tail");
        }
    }());
}

TEST_CASE("lines: a line past the limit is limit_overrun_error out of next(), then the end",
          "[lines][limit]") {
    CORIO_REQUIRE_BACKEND();
    const bool newline_seen = GENERATE(true, false);
    CAPTURE(newline_seen);
    frame_leak_check leaks;
    corio::run([](bool newline_seen) -> corio::coro<> {
        constexpr std::size_t limit = 1024;
        tcp_link link = co_await connect_link(limit);
        auto lines = link.client.reader.lines();
        link.server.writer.write("fine\n");
        const auto fine = co_await corio::wait_for(lines.next(), 5s);
        REQUIRE(fine);
        CHECK(*fine == "fine\n");

        // The '\n' sent at once or only after the error: the overrun is found either way
        // (whether one receive brings the '\n' is up to the kernel).
        if (newline_seen) {
            link.server.writer.write(std::string(3 * limit, 'x') + "\nafter\n");
        } else {
            link.server.writer.write(std::string(64 * limit, 'x'));
        }
        bool overrun = false;
        try {
            (void)co_await corio::wait_for(lines.next(), 5s);
        } catch (const corio::limit_overrun_error& e) {
            overrun = true;
            CHECK(e.consumed() > limit);
        }
        CHECK(overrun);
        // The error ended the generator.
        const auto nothing = co_await corio::wait_for(lines.next(), 5s);
        CHECK_FALSE(nothing);
        CHECK_FALSE(nothing.has_value());

        // The stream itself goes on: a new generator reads on (what is left of an overlong
        // line comes back as lines no longer than the limit), up to the next line.
        if (!newline_seen) link.server.writer.write("\nafter\n");
        link.server.writer.close();
        auto more = link.client.reader.lines();
        std::vector<std::string> rest;
        for (;;) {
            try {
                auto line = co_await corio::wait_for(more.next(), 5s);
                if (!line) break;
                CHECK(line->size() <= limit + 1);
                rest.push_back(std::move(*line));
            } catch (const corio::limit_overrun_error&) {
                more = link.client.reader.lines();  // the tail may overrun again
            }
        }
        REQUIRE_FALSE(rest.empty());
        CHECK(rest.back() == "after\n");
    }(newline_seen));
}

// --- errors ---------------------------------------------------------------------------------

TEST_CASE("lines: a reset peer is std::system_error out of next(), then the end",
          "[lines][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        tcp_link link = co_await connect_link();
        auto lines = link.client.reader.lines();
        link.server.writer.write("complete\npartial");
        const auto complete = co_await corio::wait_for(lines.next(), 5s);
        REQUIRE(complete);
        CHECK(*complete == "complete\n");
        // The peer has unread data too and closes with SO_LINGER 0: an RST.
        link.client.writer.write("unread by the peer");
        co_await corio::sleep(5ms);
        linger hard{1, 0};
        check_syscall(::setsockopt(link.server.writer.native_handle(), SOL_SOCKET, SO_LINGER, &hard,
                                   sizeof hard) == 0,
                      "setsockopt");
        link.server.writer.abort();
        int error = 0;
        try {
            const auto line = co_await corio::wait_for(lines.next(), 5s);
            FAIL("next() after a reset gave " << (line ? "\"" + *line + "\"" : "the end"));
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        CHECK(error == ECONNRESET);
        const auto after = co_await corio::wait_for(lines.next(), 5s);
        CHECK_FALSE(after);
    }());
}

// --- cancellation loses nothing ---------------------------------------------------------------

corio::coro<std::optional<std::string>> next_line(corio::async_generator<std::string>& lines) {
    co_return co_await lines.next();
}

TEST_CASE("lines: wait_for(next()) timing out leaves the partial line to readline",
          "[lines][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        tcp_link link = co_await connect_link();
        auto& out = link.server.writer;
        auto& reader = link.client.reader;
        auto lines = reader.lines();
        out.write("first\nhalf a ");
        const auto first = co_await corio::wait_for(lines.next(), 5s);
        REQUIRE(first);
        CHECK(*first == "first\n");

        bool timed_out = false;
        stopwatch watch;
        try {
            (void)co_await corio::wait_for(lines.next(), 30ms);
        } catch (const corio::timeout_error&) {
            timed_out = true;
        }
        CHECK(timed_out);
        CHECK(watch.elapsed() < 5s);
        // The cancellation ended the generator; the bytes are the reader's still.
        const auto ended = co_await corio::wait_for(lines.next(), 5s);
        CHECK_FALSE(ended);
        CHECK(reader.buffered() == 7);

        out.write("line\nnext\n");
        const std::string whole = co_await corio::wait_for(reader.readline(), 5s);
        CHECK(whole == "half a line\n");
        const std::string next = co_await corio::wait_for(reader.readline(), 5s);
        CHECK(next == "next\n");

        // Timeouts again and again with bytes trickling in, then a new generator: still whole.
        for (int i = 0; i < 5; ++i) {
            auto attempt = reader.lines();
            out.write("piece ");
            bool again = false;
            try {
                (void)co_await corio::wait_for(attempt.next(), 10ms);
            } catch (const corio::timeout_error&) {
                again = true;
            }
            CHECK(again);
        }
        out.write("end\n");
        auto fresh = reader.lines();
        const auto joined_line = co_await corio::wait_for(fresh.next(), 5s);
        REQUIRE(joined_line);
        CHECK(*joined_line == "piece piece piece piece piece end\n");
    }());
}

TEST_CASE("lines: cancelling the task awaiting next() leaves the partial line buffered",
          "[lines][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        tcp_link link = co_await connect_link();
        auto& out = link.server.writer;
        auto& reader = link.client.reader;
        auto lines = reader.lines();
        out.write("a partial ");
        auto waiting = corio::create_task(next_line(lines));
        co_await corio::sleep(20ms);
        REQUIRE_FALSE(waiting.done());
        waiting.cancel();
        bool cancelled = false;
        try {
            (void)co_await waiting;
        } catch (const corio::cancelled_error&) {
            cancelled = true;
        }
        CHECK(cancelled);
        CHECK(waiting.cancelled());
        out.write("line\n");
        auto again = reader.lines();
        const auto whole = co_await corio::wait_for(again.next(), 5s);
        REQUIRE(whole);
        CHECK(*whole == "a partial line\n");
    }());
}

// --- volume ---------------------------------------------------------------------------------

corio::coro<> send_numbered(corio::stream_writer writer, int count) {
    std::vector<std::string> batch;
    for (int i = 0; i < count; ++i) {
        batch.push_back(std::to_string(i) + "\n");
        if (batch.size() == 1000 || i + 1 == count) {
            writer.writelines(batch);
            co_await writer.drain();
            batch.clear();
        }
    }
    writer.close();
    co_await writer.wait_closed();
}

struct tally {
    std::size_t count = 0;
    std::uint64_t sum = 0;
    bool in_order = true;
};

corio::coro<tally> count_lines(corio::stream_reader reader) {
    tally t;
    auto lines = reader.lines();
    while (auto line = co_await lines.next()) {
        const std::string& l = *line;
        const std::uint64_t value = std::stoull(l);
        if (l.back() != '\n' || value != t.count) t.in_order = false;
        t.sum += value;
        ++t.count;
    }
    co_return t;
}

TEST_CASE("lines: 100,000 short lines, counted and summed", "[lines][volume]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        constexpr int count = 100'000;
        tcp_link link = co_await connect_link();
        auto sender = corio::create_task(send_numbered(link.server.writer, count));
        stopwatch watch;
        const tally got = co_await corio::wait_for(count_lines(link.client.reader), 90s);
        co_await corio::wait_for(sender, 10s);
        CHECK(got.count == static_cast<std::size_t>(count));
        CHECK(got.sum == std::uint64_t{count} * (count - 1) / 2);
        CHECK(got.in_order);
        CHECK(watch.elapsed() < 60s);
    }());
}

// --- lifetime -------------------------------------------------------------------------------

// The reader is a parameter: it is gone once this returns; only the generator's copy is left.
corio::async_generator<std::string> lines_of_copy(corio::stream_reader reader) {
    return reader.lines();
}

TEST_CASE("lines: the generator outlives the reader it was made from", "[lines]") {
    CORIO_REQUIRE_BACKEND();
    const bool via_parameter = GENERATE(false, true);
    CAPTURE(via_parameter);
    frame_leak_check leaks;
    corio::run([](bool via_parameter) -> corio::coro<> {
        tcp_link link = co_await connect_link();
        std::optional<corio::async_generator<std::string>> lines;
        if (via_parameter) {
            lines.emplace(lines_of_copy(link.client.reader));
        } else {
            std::optional<corio::stream_reader> temporary(link.client.reader);
            lines.emplace(temporary->lines());
            temporary.reset();
        }
        // Every other handle of the client's transport goes: the generator's keeps it open.
        link.client.reader = corio::stream_reader();
        link.client.writer = corio::stream_writer();
        co_await corio::sleep(10ms);
        link.server.writer.write("still\nthere\n");
        link.server.writer.close();
        const std::vector<std::string> got = co_await corio::wait_for(drain_lines(*lines), 5s);
        REQUIRE(got.size() == 2);
        CHECK(got[0] == "still\n");
        CHECK(got[1] == "there\n");
        lines.reset();  // the last handle: the transport closes now
    }(via_parameter));
}

// --- a peer corio did not write: Python's asyncio (support/python_peer.hpp) ----------------

// The lines both sides make alike: every seventh empty, lengths up to 600, one of 300,000
// bytes, and a last one without '\n'.
const char* const python_lines_def = R"PY(
def make_lines(n):
    out = []
    for i in range(n):
        if i % 7 == 6:
            out.append(b'\n')
        elif i == n // 2:
            out.append(b'big ' + b'z' * 300000 + b'\n')
        else:
            out.append(f'py {i} '.encode() + bytes([97 + i % 26]) * (i * 37 % 600) + b'\n')
    out.append(b'tail without newline')
    return out
)PY";

std::vector<std::string> python_lines(int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
        if (i % 7 == 6) {
            out.emplace_back("\n");
        } else if (i == n / 2) {
            out.push_back("big " + std::string(300000, 'z') + "\n");
        } else {
            std::string line = "py " + std::to_string(i) + " ";
            line.append(static_cast<std::size_t>(i * 37 % 600), static_cast<char>('a' + i % 26));
            out.push_back(line + "\n");
        }
    }
    out.emplace_back("tail without newline");
    return out;
}

// Serves one connection: writes the lines cut at odd places (mid-line too) with pauses, then
// closes; prints its port first, DONE at the end.
const std::string python_lines_server = std::string(python_lines_def) + R"PY(
import asyncio, sys, random
async def main(n):
    done = asyncio.Event()
    async def handle(r, w):
        data = b''.join(make_lines(n))
        rnd = random.Random(5)
        at = 0
        while at < len(data):
            k = rnd.randint(1, 5000)
            w.write(data[at:at + k])
            at += k
            await w.drain()
            if rnd.random() < 0.1:
                await asyncio.sleep(0.001)
        w.close()
        await w.wait_closed()
        done.set()
    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    print('PORT', server.sockets[0].getsockname()[1], flush=True)
    await asyncio.wait_for(done.wait(), 60)
    server.close()
    await server.wait_closed()
    print('DONE', flush=True)
asyncio.run(main(int(sys.argv[1])))
)PY";

// Sends the lines cut at odd places while reading the echoes (upper case) concurrently, then
// half-closes and expects the partial last line echoed and the end. Prints OK and the count.
const std::string python_lines_client = std::string(python_lines_def) + R"PY(
import asyncio, sys, random
async def main(port, n):
    r, w = await asyncio.wait_for(
        asyncio.open_connection('127.0.0.1', port, limit=1 << 20), 10)
    lines = make_lines(n)
    async def send():
        data = b''.join(lines)
        rnd = random.Random(9)
        at = 0
        while at < len(data):
            k = rnd.randint(1, 3000)
            w.write(data[at:at + k])
            at += k
            await w.drain()
            if rnd.random() < 0.1:
                await asyncio.sleep(0.001)
        w.write_eof()
    async def check():
        for i, line in enumerate(lines[:-1]):
            back = await asyncio.wait_for(r.readuntil(b'\n'), 20)
            if back != line.upper():
                print('MISMATCH', i, back[:80], flush=True); sys.exit(1)
        rest = await asyncio.wait_for(r.read(), 20)
        if rest != lines[-1].upper():
            print('MISMATCH tail', rest[:80], flush=True); sys.exit(1)
    await asyncio.gather(send(), check())
    w.close()
    await w.wait_closed()
    print('OK', len(lines), flush=True)
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
)PY";

corio::coro<std::uint16_t> read_port(corio::stream_reader out) {
    const std::string line = co_await corio::wait_for(out.readline(), 20s);
    if (line.rfind("PORT ", 0) != 0) throw std::runtime_error("python server said: " + line);
    co_return static_cast<std::uint16_t>(std::stoi(line.substr(5)));
}

std::string upper(std::string s) {
    for (char& c : s) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return s;
}

// A corio handler that is all lines(): echoes each line in upper case, closes at the end.
corio::coro<> upper_lines(corio::stream_reader reader, corio::stream_writer writer) {
    auto lines = reader.lines();
    while (auto line = co_await lines.next()) {
        writer.write(upper(std::move(*line)));
        co_await writer.drain();
    }
    writer.close();
}

TEST_CASE("lines: corio client, Python asyncio server writing lines in odd chunks",
          "[lines][interop]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_PYTHON();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        constexpr int n = 2000;
        python_child server(python_lines_server, {std::to_string(n)});
        corio::stream_reader out = server.take_stdout();
        const std::uint16_t port = co_await read_port(out);
        corio::connection_options options;
        options.limit = std::size_t{1} << 20;  // for the 300,000-byte line
        options.family = AF_INET;
        auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port, options);
        const std::vector<std::string> got = co_await corio::wait_for(all_lines(reader), 60s);
        const std::vector<std::string> expected = python_lines(n);
        REQUIRE(got.size() == expected.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            CAPTURE(i);
            REQUIRE(first_difference(got[i], expected[i]) == -1);
        }
        const std::string done = co_await corio::wait_for(out.readline(), 20s);
        CHECK(done == "DONE\n");
        const int status = co_await server.wait();
        CHECK(status == 0);
    }());
}

TEST_CASE("lines: corio server iterating lines(), Python asyncio client", "[lines][interop]") {
    CORIO_REQUIRE_BACKEND();
    REQUIRE_PYTHON();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        constexpr int n = 2000;
        corio::server_options options;
        options.limit = std::size_t{1} << 20;
        options.family = AF_INET;
        corio::server srv = co_await corio::start_server(upper_lines, "127.0.0.1", 0, options);
        python_child client(python_lines_client, {std::to_string(srv.port()), std::to_string(n)});
        corio::stream_reader out = client.take_stdout();
        const std::string report = co_await corio::wait_for(out.readline(), 60s);
        CHECK(report == "OK " + std::to_string(n + 1) + "\n");
        const int status = co_await client.wait();
        CHECK(status == 0);
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
    }());
}

}  // namespace
