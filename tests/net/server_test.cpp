// Servers and connections (include/corio/net/server.hpp, connection.hpp, resolve.hpp):
// start_server / open_connection over IPv4, IPv6 and Unix sockets, many concurrent clients,
// handler exceptions, close() cancelling handlers, serve_forever, refused connections, name
// resolution off the loop, clients that vanish, and an accept loop that survives EMFILE.
// CTest runs it once per backend (CORIO_BACKEND).
#include <corio/net/server.hpp>

#include "support/catch.hpp"
#include "support/io_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/gather.hpp>
#include <corio/net/connection.hpp>
#include <corio/net/resolve.hpp>
#include <corio/net/stream.hpp>
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
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::eventually;
using corio_test::frame_leak_check;
using corio_test::stopwatch;

namespace {

// --- handlers and clients ------------------------------------------------------------------

// Echoes every line until end of stream.
corio::coro<> echo_lines(corio::stream_reader reader, corio::stream_writer writer) {
    for (;;) {
        const std::string line = co_await reader.readline();
        if (line.empty()) break;
        writer.write(line);
        co_await writer.drain();
    }
    writer.close();
}

// Sends `count` lines and checks each comes back; how many did.
corio::coro<int> echo_client(std::string host, std::uint16_t port, int id, int count) {
    auto streams = co_await corio::open_connection(host, port);
    int ok = 0;
    for (int i = 0; i < count; ++i) {
        const std::string line =
            "client " + std::to_string(id) + " line " + std::to_string(i) + "\n";
        streams.writer.write(line);
        const std::string back = co_await streams.reader.readline();
        if (back == line) ++ok;
    }
    streams.writer.close();
    co_await streams.writer.wait_closed();
    co_return ok;
}

// One line through a fresh connection to `port` on `host`.
corio::coro<std::string> ask(std::string host, std::uint16_t port, std::string line) {
    auto [reader, writer] = co_await corio::open_connection(host, port);
    writer.write(line);
    co_return co_await reader.readline();
}

int connect_errno(std::string host, std::uint16_t port) {
    return corio::run([](std::string host, std::uint16_t port) -> corio::coro<int> {
        try {
            (void)co_await corio::open_connection(host, port);
        } catch (const std::system_error& e) {
            co_return e.code().value();
        }
        co_return 0;
    }(std::move(host), port));
}

bool ipv6_loopback_available() {
    corio::unique_fd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_addr = in6addr_loopback;
    return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
}

std::string temp_socket_path(const char* name) {
    return "/tmp/corio-" + std::string(name) + "-" + std::to_string(::getpid()) + ".sock";
}

// --- TCP ----------------------------------------------------------------------------------

TEST_CASE("server: echo over TCP; port 0 gives server.port(); TCP_NODELAY on both ends",
          "[server]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
        REQUIRE(srv);
        CHECK(srv.is_serving());
        CHECK(srv.port() != 0);
        const auto sockets = srv.sockets();
        REQUIRE(sockets.size() == 1);
        CHECK(sockets.front().to_string() == "127.0.0.1:" + std::to_string(srv.port()));
        // The accept loop is not a task: only this one runs.
        CHECK(corio::all_tasks().size() == 1);

        auto [reader, writer] = co_await corio::open_connection("127.0.0.1", srv.port());
        int nodelay = 0;
        socklen_t length = sizeof nodelay;
        REQUIRE(::getsockopt(writer.native_handle(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &length) ==
                0);
        CHECK(nodelay != 0);
        CHECK(writer.peername().port() == srv.port());
        writer.write("hello\n");
        const std::string back = co_await reader.readline();
        CHECK(back == "hello\n");
        CHECK(srv.connection_count() == 1);
        writer.write_eof();
        const std::string end = co_await corio::wait_for(reader.read(), 2s);
        CHECK(end.empty());  // the handler closed its side
        srv.close();
        CHECK_FALSE(srv.is_serving());
        co_await corio::wait_for(srv.wait_closed(), 2s);
    }());
}

TEST_CASE("server: the accepted socket has TCP_NODELAY", "[server]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        int nodelay = -1;
        corio::server srv = co_await corio::start_server(
            [&nodelay](corio::stream_reader, corio::stream_writer w) -> corio::coro<> {
                socklen_t length = sizeof nodelay;
                (void)::getsockopt(w.native_handle(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &length);
                co_return;
            },
            "127.0.0.1", 0);
        auto streams = co_await corio::open_connection("127.0.0.1", srv.port());
        const bool seen = co_await eventually([&] { return nodelay != -1; });
        CHECK(seen);
        CHECK(nodelay != 0);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("server: 200 concurrent clients, 20 lines each", "[server][load]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const int total = corio::run([]() -> corio::coro<int> {
        corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0,
                                                         corio::server_options{.backlog = 256});
        std::vector<corio::coro<int>> clients;
        for (int i = 0; i < 200; ++i)
            clients.push_back(echo_client("127.0.0.1", srv.port(), i, 20));
        const std::vector<int> results =
            co_await corio::wait_for(corio::gather(std::move(clients)), 60s);
        int sum = 0;
        for (int r : results) sum += r;
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 5s);
        co_return sum;
    }());
    CHECK(total == 200 * 20);
}

TEST_CASE("server: a handler's exception goes to the loop's exception handler; serving goes on",
          "[server][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio_test::exception_log log;
    corio::run([](corio_test::exception_log& log) -> corio::coro<> {
        log.install(corio::get_running_loop());
        corio::server srv = co_await corio::start_server(
            [](corio::stream_reader r, corio::stream_writer w) -> corio::coro<> {
                const std::string line = co_await r.readline();
                if (line == "boom\n") throw std::runtime_error("handler failed");
                w.write(line);
            },
            "127.0.0.1", 0);
        const std::string boom =
            co_await corio::wait_for(ask("127.0.0.1", srv.port(), "boom\n"), 2s);
        CHECK(boom.empty());  // the connection was closed without an answer
        const std::string fine =
            co_await corio::wait_for(ask("127.0.0.1", srv.port(), "fine\n"), 2s);
        CHECK(fine == "fine\n");
        srv.close();
        co_await srv.wait_closed();
    }(log));
    REQUIRE(log.size() == 1);
    CHECK(corio_test::contains(log.contexts()[0].message, "client_connected_cb"));
    CHECK(corio_test::what_of(log.contexts()[0].exception) == "handler failed");
    CHECK_FALSE(log.contexts()[0].task_name.empty());
}

TEST_CASE("server: connection_count follows connections as they come and go, over many "
          "connections in turn",
          "[server][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
        const std::uint16_t port = srv.port();
        // A client whose handler is known to run: its line came back.
        auto connect = [port]() -> corio::coro<corio::stream_pair> {
            corio::stream_pair c = co_await corio::open_connection("127.0.0.1", port);
            c.writer.write("ping\n");
            const std::string back = co_await corio::wait_for(c.reader.readline(), 2s);
            CHECK(back == "ping\n");
            co_return c;
        };
        // Ends a client's connection and waits until its handler has closed its side.
        auto hang_up = [](corio::stream_pair& c) -> corio::coro<> {
            c.writer.write_eof();
            const std::string rest = co_await corio::wait_for(c.reader.read(), 2s);
            CHECK(rest.empty());
            c.writer.close();
        };
        std::vector<corio::stream_pair> clients;
        for (int i = 0; i < 3; ++i) clients.push_back(co_await connect());
        CHECK(srv.connection_count() == 3);
        co_await hang_up(clients[1]);
        const bool one_gone = co_await eventually([&] { return srv.connection_count() == 2; });
        CHECK(one_gone);
        for (int i = 0; i < 2; ++i) clients.push_back(co_await connect());
        CHECK(srv.connection_count() == 4);
        // 100 connections one after another, next to the three still open.
        for (int i = 0; i < 100; ++i) {
            corio::stream_pair c = co_await connect();
            CHECK(srv.connection_count() == 5);
            co_await hang_up(c);
            const bool gone = co_await eventually([&] { return srv.connection_count() == 4; });
            REQUIRE(gone);
        }
        co_await hang_up(clients[0]);
        co_await hang_up(clients[3]);
        const bool two_left = co_await eventually([&] { return srv.connection_count() == 2; });
        CHECK(two_left);
        srv.close();  // cancels the two left
        co_await corio::wait_for(srv.wait_closed(), 2s);
        CHECK(srv.connection_count() == 0);
        for (const std::size_t i : {std::size_t{2}, std::size_t{4}}) {
            const std::string rest = co_await corio::wait_for(clients[i].reader.read(), 2s);
            CHECK(rest.empty());
        }
    }());
}

TEST_CASE("server: close() stops accepting and cancels the handlers; wait_closed waits for them",
          "[server][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    int cancelled = 0;
    std::uint16_t port = 0;
    corio::run([](int& cancelled, std::uint16_t& port) -> corio::coro<> {
        int started = 0;
        corio::server srv = co_await corio::start_server(
            [&](corio::stream_reader r, corio::stream_writer) -> corio::coro<> {
                ++started;
                try {
                    (void)co_await r.readline();  // the clients never send one
                } catch (const corio::cancelled_error&) {
                    ++cancelled;
                    throw;
                }
            },
            "127.0.0.1", 0);
        port = srv.port();
        std::vector<corio::stream_pair> clients;
        for (int i = 0; i < 5; ++i)
            clients.push_back(co_await corio::open_connection("127.0.0.1", port));
        const bool all_started = co_await eventually([&] { return started == 5; });
        REQUIRE(all_started);
        CHECK(srv.connection_count() == 5);
        srv.close();
        co_await corio::wait_for(srv.wait_closed(), 2s);
        CHECK(srv.connection_count() == 0);
        // Their connections were closed: the clients see the end of the stream.
        for (auto& c : clients) {
            const std::string rest = co_await corio::wait_for(c.reader.read(), 2s);
            CHECK(rest.empty());
        }
        // No longer listening.
        int refused = 0;
        try {
            (void)co_await corio::open_connection("127.0.0.1", port);
        } catch (const std::system_error& e) {
            refused = e.code().value();
        }
        CHECK(refused == ECONNREFUSED);
    }(cancelled, port));
    CHECK(cancelled == 5);
}

TEST_CASE("server: serve_forever returns when the server is closed; cancelled, it closes the "
          "server and rethrows",
          "[server][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        {
            corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
            auto serving = corio::create_task(srv.serve_forever());
            const std::string back =
                co_await corio::wait_for(ask("127.0.0.1", srv.port(), "x\n"), 2s);
            CHECK(back == "x\n");
            CHECK_FALSE(serving.done());
            srv.close();
            co_await corio::wait_for(serving, 2s);
            CHECK(serving.done());
            CHECK_FALSE(serving.cancelled());
        }
        {
            corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
            auto serving = corio::create_task(srv.serve_forever());
            auto client = co_await corio::open_connection("127.0.0.1", srv.port());
            co_await corio::sleep(5ms);
            serving.cancel();
            try {
                co_await serving;
            } catch (const corio::cancelled_error&) {
            }
            CHECK(serving.cancelled());
            CHECK_FALSE(srv.is_serving());
            CHECK(srv.connection_count() == 0);
            const std::string rest = co_await corio::wait_for(client.reader.read(), 2s);
            CHECK(rest.empty());
        }
    }());
}

TEST_CASE("server: open_connection to a closed port is ECONNREFUSED", "[server][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    // A port nobody listens on: bound, never listening.
    corio::unique_fd holder(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(holder.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    socklen_t length = sizeof address;
    REQUIRE(::getsockname(holder.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0);
    CHECK(connect_errno("127.0.0.1", ntohs(address.sin_port)) == ECONNREFUSED);
}

TEST_CASE("server: host names are resolved off the loop; every address is tried",
          "[server][resolve]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        // "localhost" may resolve to ::1 first; the server listens on IPv4 only, so the
        // client must move on to 127.0.0.1.
        corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
        const std::string back =
            co_await corio::wait_for(ask("localhost", srv.port(), "by name\n"), 10s);
        CHECK(back == "by name\n");
        const auto found = co_await corio::getaddrinfo("localhost", 80);
        REQUIRE_FALSE(found.empty());
        for (const auto& info : found) {
            CHECK(info.address.port() == 80);
            CHECK(info.socktype == SOCK_STREAM);
        }
        // Numeric addresses need no executor: the result is there at once.
        const auto numeric = co_await corio::getaddrinfo("10.1.2.3", 7);
        REQUIRE(numeric.size() == 1);
        CHECK(numeric[0].address.to_string() == "10.1.2.3:7");
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("server: a name that does not resolve is a system_error in gai_category",
          "[server][resolve]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        bool resolved = false;
        bool timed_out = false;
        std::string category;
        try {
            (void)co_await corio::wait_for(corio::getaddrinfo("no-such-host.invalid", 80), 20s);
            resolved = true;
        } catch (const corio::timeout_error&) {
            timed_out = true;
        } catch (const std::system_error& e) {
            category = e.code().category().name();
        }
        if (timed_out) {
            WARN("the resolver took more than 20 s to give up (no network?)");
        } else {
            CHECK_FALSE(resolved);
            CHECK((category == "getaddrinfo" || category == "system"));
        }
        // A numeric IPv4 address asked for as IPv6 does not resolve either.
        bool refused = false;
        try {
            corio::resolve_options v6;
            v6.family = AF_INET6;
            (void)co_await corio::getaddrinfo("127.0.0.1", 80, v6);
        } catch (const std::system_error& e) {
            refused = e.code().category() == corio::gai_category();
        }
        CHECK(refused);
    }());
}

TEST_CASE("server: IPv6 loopback", "[server][ipv6]") {
    CORIO_REQUIRE_BACKEND();
    if (!ipv6_loopback_available()) CORIO_SKIP("no IPv6 loopback on this machine");
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::server srv = co_await corio::start_server(echo_lines, "::1", 0);
        CHECK(srv.sockets().front().family() == AF_INET6);
        auto [reader, writer] = co_await corio::open_connection("::1", srv.port());
        CHECK(writer.peername().to_string() == "[::1]:" + std::to_string(srv.port()));
        writer.write("six\n");
        const std::string back = co_await corio::wait_for(reader.readline(), 2s);
        CHECK(back == "six\n");
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("server: an empty host listens on every interface, both families on one port",
          "[server][ipv6]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const bool v6 = ipv6_loopback_available();
    corio::run([](bool v6) -> corio::coro<> {
        corio::server srv = co_await corio::start_server(echo_lines, "", 0);
        const auto sockets = srv.sockets();
        CHECK(sockets.size() == (v6 ? 2u : 1u));
        for (const auto& s : sockets) CHECK(s.port() == srv.port());
        const std::string four = co_await corio::wait_for(ask("127.0.0.1", srv.port(), "4\n"), 2s);
        CHECK(four == "4\n");
        if (v6) {
            const std::string six = co_await corio::wait_for(ask("::1", srv.port(), "6\n"), 2s);
            CHECK(six == "6\n");
        }
        srv.close();
        co_await srv.wait_closed();
    }(v6));
}

TEST_CASE("server: the limit option reaches each connection's reader", "[server][limit]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::server srv = co_await corio::start_server(
            [](corio::stream_reader r, corio::stream_writer w) -> corio::coro<> {
                try {
                    (void)co_await r.readline();
                    w.write("no overrun\n");
                } catch (const corio::limit_overrun_error&) {
                    w.write("overrun " + std::to_string(r.limit()) + "\n");
                }
            },
            "127.0.0.1", 0, corio::server_options{.limit = 100});
        const std::string answer = co_await corio::wait_for(
            ask("127.0.0.1", srv.port(), std::string(1000, 'l') + "\n"), 2s);
        CHECK(answer == "overrun 100\n");
        // And on the client side.
        corio::connection_options small;
        small.limit = 10;
        auto [reader, writer] = co_await corio::open_connection("127.0.0.1", srv.port(), small);
        CHECK(reader.limit() == 10);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("server: bind errors are system_error, and leave nothing open", "[server][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::server first = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
        int error = 0;
        try {
            corio::server_options no_reuse;
            no_reuse.reuse_address = false;
            (void)co_await corio::start_server(echo_lines, "127.0.0.1", first.port(), no_reuse);
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        CHECK(error == EADDRINUSE);
        first.close();
        co_await first.wait_closed();
    }());
}

// --- bad clients ------------------------------------------------------------------------------

TEST_CASE("server: clients that connect and vanish (reset at once) do not stop the server",
          "[server][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(srv.port());
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int i = 0; i < 100; ++i) {
            corio::unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) ==
                    0);
            if (i % 2 == 0) (void)::send(fd.get(), "half a li", 9, MSG_NOSIGNAL);
            linger hard{1, 0};
            REQUIRE(::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0);
            fd.reset();  // RST
            if (i % 10 == 0) co_await corio::sleep(0s);
        }
        const std::string back =
            co_await corio::wait_for(ask("127.0.0.1", srv.port(), "still\n"), 2s);
        CHECK(back == "still\n");
        const bool drained = co_await eventually([&] { return srv.connection_count() == 0; });
        CHECK(drained);
        srv.close();
        co_await srv.wait_closed();
    }());
}

// UBSan's runtime, when linked in. Its vptr check probes memory through a pipe(), which fails
// while every descriptor is taken: a false "invalid vptr" report, fatal with
// -fno-sanitize-recover. So the descriptor-exhaustion case cannot run under UBSan.
extern "C" void __ubsan_handle_dynamic_type_cache_miss(void*, void*, void*) __attribute__((weak));
bool ubsan_vptr_checks() { return &__ubsan_handle_dynamic_type_cache_miss != nullptr; }

// Lowers RLIMIT_NOFILE for the test and restores it.
class fd_limit {
public:
    explicit fd_limit(rlim_t soft) {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
        rlimit lowered = saved_;
        lowered.rlim_cur = std::min(soft, saved_.rlim_max);
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    }
    fd_limit(const fd_limit&) = delete;
    fd_limit& operator=(const fd_limit&) = delete;
    ~fd_limit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

private:
    rlimit saved_{};
};

TEST_CASE("server: the accept loop survives EMFILE and serves the waiting clients once "
          "descriptors free up",
          "[server][emfile]") {
    CORIO_REQUIRE_BACKEND();
    if (ubsan_vptr_checks()) {
        CORIO_SKIP("UBSan build: its vptr check needs a free descriptor (it probes memory "
                   "through a pipe), so exhausting them gives false reports");
    }
    frame_leak_check leaks;
    corio_test::exception_log log;
    corio::run([](corio_test::exception_log& log) -> corio::coro<> {
        log.install(corio::get_running_loop());
        corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
        const std::uint16_t port = srv.port();
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        std::vector<corio::stream_pair> clients;
        std::vector<corio::unique_fd> filler;
        {
            // A little above the lowest free descriptor.
            const int probe = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
            REQUIRE(probe >= 0);
            ::close(probe);
            fd_limit limit(static_cast<rlim_t>(probe) + 64);
            // Three clients connect (the kernel completes the handshakes), then every
            // descriptor left is taken: the server's accept gets EMFILE.
            std::vector<corio::unique_fd> sockets;
            for (int i = 0; i < 3; ++i) {
                corio::unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
                REQUIRE(fd);
                sockets.push_back(std::move(fd));
            }
            for (;;) {
                const int fd = ::fcntl(0, F_DUPFD_CLOEXEC, 0);
                if (fd < 0) {
                    CHECK(errno == EMFILE);
                    break;
                }
                filler.emplace_back(fd);
            }
            for (auto& fd : sockets) {
                REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address),
                                  sizeof address) == 0);
                REQUIRE(::fcntl(fd.get(), F_SETFL, O_NONBLOCK) == 0);
                clients.push_back(corio::detail::make_socket_streams(std::move(fd)));
            }
            for (std::size_t i = 0; i < clients.size(); ++i) {
                clients[i].writer.write("client " + std::to_string(i) + "\n");
            }
            // The server cannot accept meanwhile: several back-offs of 100 ms.
            co_await corio::sleep(350ms);
            CHECK(srv.connection_count() == 0);
            CHECK(srv.is_serving());
            filler.clear();  // descriptors free again
        }  // the limit is restored here
        for (std::size_t i = 0; i < clients.size(); ++i) {
            const std::string back = co_await corio::wait_for(clients[i].reader.readline(), 3s);
            CHECK(back == "client " + std::to_string(i) + "\n");
        }
        const std::string fresh = co_await corio::wait_for(ask("127.0.0.1", port, "fresh\n"), 2s);
        CHECK(fresh == "fresh\n");
        srv.close();
        co_await srv.wait_closed();
    }(log));
    // The first failure was reported (once), with its errno.
    REQUIRE(log.size() >= 1);
    CHECK(corio_test::contains(log.contexts()[0].message, "out of system resource"));
    CHECK(corio_test::contains(corio_test::what_of(log.contexts()[0].exception), "accept"));
}

// --- Unix sockets -----------------------------------------------------------------------------

TEST_CASE("server: start_unix_server / open_unix_connection; the socket file is replaced when "
          "stale and removed on close",
          "[server][unix]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::string path = temp_socket_path("unix-server");
    corio::run([](std::string path) -> corio::coro<> {
        // A stale socket file from an earlier run.
        {
            corio::unique_fd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
            const auto address = corio::socket_address::unix_path(path);
            ::unlink(path.c_str());
            REQUIRE(::bind(stale.get(), address.data(), address.size()) == 0);
        }
        corio::server srv = co_await corio::start_unix_server(echo_lines, path);
        CHECK(srv.port() == 0);
        CHECK(srv.sockets().front().to_string() == path);
        std::vector<corio::coro<std::string>> asks;
        for (int i = 0; i < 20; ++i) {
            asks.push_back([](std::string path, int i) -> corio::coro<std::string> {
                auto [reader, writer] = co_await corio::open_unix_connection(path);
                writer.write("unix " + std::to_string(i) + "\n");
                co_return co_await reader.readline();
            }(path, i));
        }
        const std::vector<std::string> answers =
            co_await corio::wait_for(corio::gather(std::move(asks)), 5s);
        for (int i = 0; i < 20; ++i)
            CHECK(answers[static_cast<std::size_t>(i)] == "unix " + std::to_string(i) + "\n");
        srv.close();
        co_await srv.wait_closed();
        struct stat st{};
        CHECK(::stat(path.c_str(), &st) != 0);  // removed
        int error = 0;
        try {
            (void)co_await corio::open_unix_connection(path);
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        CHECK(error == ENOENT);
    }(path));
}

TEST_CASE("server: an abstract Unix socket", "[server][unix]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        const std::string name =
            std::string(1, '\0') + "corio-abstract-" + std::to_string(::getpid());
        corio::server srv = co_await corio::start_unix_server(echo_lines, name);
        auto [reader, writer] = co_await corio::open_unix_connection(name);
        writer.write("abstract\n");
        const std::string back = co_await corio::wait_for(reader.readline(), 2s);
        CHECK(back == "abstract\n");
        srv.close();
        co_await srv.wait_closed();
    }());
}

// --- lifetime --------------------------------------------------------------------------------

TEST_CASE("server: a server whose handles were dropped keeps serving until the loop closes; "
          "nothing leaks",
          "[server][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        std::uint16_t port = 0;
        {
            corio::server srv = co_await corio::start_server(echo_lines, "127.0.0.1", 0);
            port = srv.port();
        }
        const std::string back = co_await corio::wait_for(ask("127.0.0.1", port, "orphan\n"), 2s);
        CHECK(back == "orphan\n");
        // A connection left open when run() ends: its handler is cancelled.
        auto open = co_await corio::open_connection("127.0.0.1", port);
        open.writer.write("pending\n");
        const std::string pending = co_await corio::wait_for(open.reader.readline(), 2s);
        CHECK(pending == "pending\n");
    }());
}

}  // namespace
