// Datagram endpoints (include/corio/net/datagram.hpp): send_to / recv_from over UDP (IPv4 and
// IPv6), connected endpoints, truncation, empty datagrams, cancellation and timeouts, close()
// with a receive in flight, ECONNREFUSED from a connected peer, and the loop closing with a
// receive in flight. CTest runs it once per backend (CORIO_BACKEND).
#include <corio/net/datagram.hpp>

#include "support/catch.hpp"
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
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::stopwatch;

namespace {

using remote = std::pair<std::string, std::uint16_t>;

bool ipv6_loopback_available() {
    corio::unique_fd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_addr = in6addr_loopback;
    return ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
}

TEST_CASE("datagram: send_to / recv_from between two endpoints", "[datagram]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::datagram_endpoint a = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        corio::datagram_endpoint b = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        const corio::socket_address a_address = a.local_address();
        CHECK(a_address.port() != 0);
        CHECK(a.remote_address().size() == 0);  // not connected

        co_await b.send_to("ping", a_address);
        const corio::datagram got = co_await corio::wait_for(a.recv_from(), 2s);
        CHECK(got.data == "ping");
        CHECK(got.address.to_string() == b.local_address().to_string());

        const std::byte raw[] = {std::byte{1}, std::byte{0}, std::byte{2}};
        co_await a.send_to(std::span<const std::byte>(raw), got.address);
        std::byte buffer[16] = {};
        const auto [n, from] = co_await corio::wait_for(b.recv_from_into(buffer), 2s);
        CHECK(n == 3);
        CHECK(std::memcmp(buffer, raw, 3) == 0);
        CHECK(from.port() == a_address.port());

        // An empty datagram is a datagram too.
        co_await b.send_to("", a_address);
        const corio::datagram empty = co_await corio::wait_for(a.recv_from(), 2s);
        CHECK(empty.data.empty());
        CHECK(empty.address.port() == b.local_address().port());
        a.close();
        b.close();
    }());
}

TEST_CASE("datagram: a connected endpoint sends with send() and knows its remote address",
          "[datagram]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::datagram_endpoint server = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        const std::uint16_t port = server.local_address().port();
        corio::datagram_endpoint client =
            co_await corio::open_datagram_endpoint("", 0, remote{"127.0.0.1", port});
        CHECK(client.remote_address().port() == port);
        for (int i = 0; i < 100; ++i) co_await client.send("datagram " + std::to_string(i));
        std::set<std::string> received;
        for (int i = 0; i < 100; ++i) {
            corio::datagram d = co_await corio::wait_for(server.recv_from(), 2s);
            CHECK(d.address.port() == client.local_address().port());
            received.insert(std::move(d.data));
        }
        CHECK(received.size() == 100);
        CHECK(received.count("datagram 42") == 1);
        // The answer comes back to the connected client.
        co_await server.send_to("answer", client.local_address());
        const corio::datagram answer = co_await corio::wait_for(client.recv_from(), 2s);
        CHECK(answer.data == "answer");
    }());
}

TEST_CASE("datagram: recv_from truncates a datagram longer than max_size", "[datagram]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::datagram_endpoint a = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        corio::datagram_endpoint b = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        co_await b.send_to(std::string(1000, 't'), a.local_address());
        co_await b.send_to("next", a.local_address());
        const corio::datagram cut = co_await corio::wait_for(a.recv_from(10), 2s);
        CHECK(cut.data == std::string(10, 't'));
        const corio::datagram next = co_await corio::wait_for(a.recv_from(10), 2s);
        CHECK(next.data == "next");  // the rest of the long one is gone, as with recvfrom
    }());
}

TEST_CASE("datagram: cancelling a receive in flight, and wait_for timeouts, lose nothing",
          "[datagram][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::datagram_endpoint a = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        corio::datagram_endpoint b = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        auto blocked = corio::create_task(a.recv_from());
        co_await corio::sleep(5ms);
        REQUIRE_FALSE(blocked.done());
        stopwatch watch;
        blocked.cancel();
        try {
            (void)co_await blocked;
        } catch (const corio::cancelled_error&) {
        }
        CHECK(blocked.cancelled());
        CHECK(watch.elapsed() < 1s);
        for (int i = 0; i < 5; ++i) {
            bool timed_out = false;
            try {
                (void)co_await corio::wait_for(a.recv_from(), 2ms);
            } catch (const corio::timeout_error&) {
                timed_out = true;
            }
            CHECK(timed_out);
        }
        co_await b.send_to("after", a.local_address());
        const corio::datagram after = co_await corio::wait_for(a.recv_from(), 2s);
        CHECK(after.data == "after");
    }());
}

TEST_CASE("datagram: close() ends a receive in flight with EBADF; later calls too",
          "[datagram][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::datagram_endpoint a = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        auto blocked = corio::create_task([](corio::datagram_endpoint a) -> corio::coro<int> {
            try {
                (void)co_await a.recv_from();
            } catch (const std::system_error& e) {
                co_return e.code().value();
            }
            co_return 0;
        }(a));
        co_await corio::sleep(5ms);
        a.close();
        CHECK(a.is_closing());
        const int error = co_await corio::wait_for(blocked, 2s);
        CHECK(error == EBADF);
        int later = 0;
        try {
            co_await a.send_to("x", corio::socket_address::ip("127.0.0.1", 9));
        } catch (const std::system_error& e) {
            later = e.code().value();
        }
        CHECK(later == EBADF);
        CHECK(a.native_handle() == -1);
    }());
}

TEST_CASE("datagram: a connected endpoint whose peer has no socket gets ECONNREFUSED",
          "[datagram][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        std::uint16_t port = 0;
        {
            corio::datagram_endpoint gone = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
            port = gone.local_address().port();
            gone.close();
        }
        corio::datagram_endpoint client =
            co_await corio::open_datagram_endpoint("", 0, remote{"127.0.0.1", port});
        int error = 0;
        try {
            co_await client.send("anyone?");
            (void)co_await corio::wait_for(client.recv_from(), 2s);
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        CHECK(error == ECONNREFUSED);
    }());
}

TEST_CASE("datagram: IPv6 loopback", "[datagram][ipv6]") {
    CORIO_REQUIRE_BACKEND();
    if (!ipv6_loopback_available()) CORIO_SKIP("no IPv6 loopback on this machine");
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::datagram_endpoint a = co_await corio::open_datagram_endpoint("::1", 0);
        CHECK(a.local_address().family() == AF_INET6);
        corio::datagram_endpoint b =
            co_await corio::open_datagram_endpoint("", 0, remote{"::1", a.local_address().port()});
        co_await b.send("six");
        const corio::datagram got = co_await corio::wait_for(a.recv_from(), 2s);
        CHECK(got.data == "six");
        CHECK(got.address.family() == AF_INET6);
    }());
}

TEST_CASE("datagram: bind errors are system_error", "[datagram][error]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        corio::datagram_endpoint a = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        int error = 0;
        try {
            (void)co_await corio::open_datagram_endpoint("127.0.0.1", a.local_address().port());
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        CHECK(error == EADDRINUSE);
        // With SO_REUSEPORT on both, two endpoints share the port.
        corio::datagram_options shared;
        shared.reuse_port = true;
        corio::datagram_endpoint c =
            co_await corio::open_datagram_endpoint("127.0.0.1", 0, std::nullopt, shared);
        corio::datagram_endpoint d = co_await corio::open_datagram_endpoint(
            "127.0.0.1", c.local_address().port(), std::nullopt, shared);
        CHECK(d.local_address().port() == c.local_address().port());
    }());
}

TEST_CASE("datagram: the loop closing with a receive in flight leaks nothing",
          "[datagram][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::datagram_endpoint kept;
    corio::run([](corio::datagram_endpoint& kept) -> corio::coro<> {
        kept = co_await corio::open_datagram_endpoint("127.0.0.1", 0);
        (void)corio::create_task([](corio::datagram_endpoint a) -> corio::coro<> {
            (void)co_await a.recv_from();
        }(kept));
        co_await corio::sleep(5ms);
    }(kept));
    CHECK(kept.native_handle() >= 0);  // still open: only close() or the last handle closes it
    kept = corio::datagram_endpoint();
}

}  // namespace
