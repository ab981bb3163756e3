// The loop's low-level socket operations (include/corio/net/sock.hpp) on the reactors
// (include/corio/reactor/*.hpp): round trips over a socketpair and over TCP loopback, a peer
// that closes or resets, cancellation of a blocked operation (prompt, no leak, no byte lost),
// refused connections, accept, a thousand simultaneous connections, add_reader/add_writer, and
// closing a loop with an operation in flight. CTest runs it once per backend (CORIO_BACKEND).
#include <corio/net/sock.hpp>

#include "support/catch.hpp"
#include "support/io_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/errors.hpp>
#include <corio/net/socket_address.hpp>
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
#include <cstring>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::check_syscall;
using corio_test::eventually;
using corio_test::first_difference;
using corio_test::frame_leak_check;
using corio_test::random_bytes;
using corio_test::socket_pair;
using corio_test::stopwatch;
using corio_test::unix_pair;

namespace {

// --- plumbing ------------------------------------------------------------------------------

corio::unique_fd tcp_socket() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    check_syscall(fd >= 0, "socket");
    return corio::unique_fd(fd);
}

corio::socket_address local_address(int fd) {
    corio::socket_address address;
    socklen_t length = corio::socket_address::capacity();
    check_syscall(::getsockname(fd, address.data(), &length) == 0, "getsockname");
    address.resize(length);
    return address;
}

struct listener {
    corio::unique_fd fd;
    corio::socket_address address;
};

// A TCP socket bound to 127.0.0.1 on a port the kernel picks; listening unless told not to.
listener loopback_listener(int backlog = 128, bool listening = true) {
    listener l{tcp_socket(), {}};
    const int one = 1;
    check_syscall(::setsockopt(l.fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0,
                  "setsockopt");
    const auto any_port = corio::socket_address::ip("127.0.0.1", 0);
    check_syscall(::bind(l.fd.get(), any_port.data(), any_port.size()) == 0, "bind");
    if (listening) check_syscall(::listen(l.fd.get(), backlog) == 0, "listen");
    l.address = local_address(l.fd.get());
    return l;
}

// A connected TCP pair over loopback, made through sock_connect and sock_accept.
corio::coro<socket_pair> tcp_pair() {
    auto& loop = corio::get_running_loop();
    listener l = loopback_listener();
    corio::unique_fd client = tcp_socket();
    corio::task<> connecting = corio::create_task(loop.sock_connect(client.get(), l.address));
    auto accepted = co_await loop.sock_accept(l.fd.get());
    co_await connecting;
    co_return socket_pair{std::move(client), std::move(accepted.first)};
}

enum class transport { unix_stream, tcp };

const char* name_of(transport t) { return t == transport::tcp ? "tcp" : "unix"; }

corio::coro<socket_pair> make_pair(transport t) {
    if (t == transport::tcp) co_return co_await tcp_pair();
    co_return unix_pair();
}

corio::coro<> send_then_shutdown(int fd, const std::string& data) {
    co_await corio::get_running_loop().sock_sendall(fd, data);
    check_syscall(::shutdown(fd, SHUT_WR) == 0, "shutdown");
}

// Receives until end of stream, with sock_recv or sock_recv_into, `chunk` bytes at a time.
corio::coro<std::string> receive_to_eof(int fd, bool into, std::size_t chunk) {
    auto& loop = corio::get_running_loop();
    std::string received;
    if (into) {
        std::vector<std::byte> buffer(chunk);
        for (;;) {
            const std::size_t n = co_await loop.sock_recv_into(fd, buffer);
            if (n == 0) break;
            if (n > chunk) FAIL("sock_recv_into returned " << n << " > " << chunk);
            received.append(reinterpret_cast<const char*>(buffer.data()), n);
        }
    } else {
        for (;;) {
            std::string piece = co_await loop.sock_recv(fd, chunk);
            if (piece.empty()) break;
            if (piece.size() > chunk) FAIL("sock_recv returned " << piece.size() << " bytes");
            received += piece;
        }
    }
    co_return received;
}

// Receives exactly `size` bytes (fewer only at end of stream).
corio::coro<std::string> receive_exactly(int fd, std::size_t size) {
    auto& loop = corio::get_running_loop();
    std::string received;
    while (received.size() < size) {
        std::string piece = co_await loop.sock_recv(fd, size - received.size());
        if (piece.empty()) break;
        received += piece;
    }
    co_return received;
}

// Outside any loop: what arrives on `fd` within `timeout_ms` (at most `max_bytes`).
std::string recv_blocking(int fd, std::size_t max_bytes, int timeout_ms = 2000) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return {};
    std::string data(max_bytes, '\0');
    const auto n = ::recv(fd, data.data(), data.size(), 0);
    data.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return data;
}

void send_blocking(int fd, const std::string& data) {
    REQUIRE(::send(fd, data.data(), data.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(data.size()));
}

bool is_nonblocking(int fd) { return (::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }
bool is_cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// Fills `fd`'s send buffer (and the peer's receive buffer) until the kernel says EAGAIN.
std::size_t fill_until_full(int fd) {
    std::string block(64 * 1024, 'f');
    std::size_t total = 0;
    for (;;) {
        const auto n = ::send(fd, block.data(), block.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            REQUIRE((errno == EAGAIN || errno == EWOULDBLOCK));
            return total;
        }
        total += static_cast<std::size_t>(n);
    }
}

void drain(int fd) {
    char buffer[64 * 1024];
    while (::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT) > 0) {
    }
}

// Makes sure SIGPIPE would kill the process (its default), for the duration of a test.
class default_sigpipe {
public:
    default_sigpipe() {
        struct sigaction action{};
        action.sa_handler = SIG_DFL;
        sigemptyset(&action.sa_mask);
        ::sigaction(SIGPIPE, &action, &previous_);
    }
    default_sigpipe(const default_sigpipe&) = delete;
    default_sigpipe& operator=(const default_sigpipe&) = delete;
    ~default_sigpipe() { ::sigaction(SIGPIPE, &previous_, nullptr); }

private:
    struct sigaction previous_{};
};

int error_code_of(const std::system_error& e) { return e.code().value(); }

// --- round trips ---------------------------------------------------------------------------

TEST_CASE("socket_address: a NUL inside an address is refused, not cut short", "[sock]") {
    // inet_pton, getaddrinfo and the kernel read C strings (found by fuzzing).
    using namespace std::string_literals;
    CHECK_THROWS_AS(corio::socket_address::ip("127.0.0.1\0evil.example"s, 80),
                    std::invalid_argument);
    CHECK_THROWS_AS(corio::socket_address::unix_path("/tmp/a\0b"s), std::invalid_argument);
    // An abstract name is every byte of it, and comes back whole.
    const auto abstract = corio::socket_address::unix_path("\0name\0"s);
    CHECK(abstract.to_string() == "\0name\0"s);
    CHECK(corio::socket_address::unix_path("/tmp/plain").to_string() == "/tmp/plain");
}

TEST_CASE("sock: round trips of 1 B, 64 KiB, 1 MiB and 16 MiB with sock_sendall and "
          "sock_recv / sock_recv_into, sender and receiver concurrent",
          "[sock]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    const std::size_t size = GENERATE(std::size_t{1}, std::size_t{64} << 10, std::size_t{1} << 20,
                                      std::size_t{16} << 20);
    const bool into = GENERATE(false, true);
    CAPTURE(name_of(t), size, into);

    frame_leak_check leaks;
    const std::string data = random_bytes(size, static_cast<std::uint32_t>(size));
    const std::string received =
        corio::run([](transport t, const std::string& data, bool into) -> corio::coro<std::string> {
            socket_pair pair = co_await make_pair(t);
            auto receiver = corio::create_task(receive_to_eof(pair.b.get(), into, 64 * 1024));
            auto sender = corio::create_task(send_then_shutdown(pair.a.get(), data));
            co_await sender;
            co_return co_await std::move(receiver);
        }(t, data, into));
    CHECK(received.size() == data.size());
    CHECK(first_difference(received, data) == -1);
}

TEST_CASE("sock: both directions at once on one connection", "[sock]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    const std::string there = random_bytes(4 << 20, 1);
    const std::string back = random_bytes(4 << 20, 2);
    corio::run([](transport t, const std::string& there, const std::string& back) -> corio::coro<> {
        socket_pair pair = co_await make_pair(t);
        auto a_sends = corio::create_task(send_then_shutdown(pair.a.get(), there));
        auto b_sends = corio::create_task(send_then_shutdown(pair.b.get(), back));
        auto a_receives = corio::create_task(receive_to_eof(pair.a.get(), true, 4096));
        auto b_receives = corio::create_task(receive_to_eof(pair.b.get(), false, 100'000));
        co_await a_sends;
        co_await b_sends;
        const std::string at_b = co_await std::move(b_receives);
        const std::string at_a = co_await std::move(a_receives);
        CHECK(first_difference(at_b, there) == -1);
        CHECK(first_difference(at_a, back) == -1);
    }(t, there, back));
}

// --- a peer that goes away -----------------------------------------------------------------

TEST_CASE("sock: a peer that closes mid-transfer: recv sees end of stream, again and again",
          "[sock]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    corio::run([](transport t) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = co_await make_pair(t);
        // The receiver expects 10,000 bytes; the peer sends 1,000 and closes.
        auto receiver = corio::create_task(receive_exactly(pair.b.get(), 10'000));
        co_await corio::sleep(5ms);
        co_await loop.sock_sendall(pair.a.get(), std::string(1000, 'x'));
        pair.a.reset();
        const std::string got = co_await std::move(receiver);
        CHECK(got == std::string(1000, 'x'));
        // End of stream is sticky, through both receive calls.
        const std::string after_eof = co_await loop.sock_recv(pair.b.get(), 100);
        CHECK(after_eof.empty());
        std::byte buffer[16];
        const std::size_t after_eof_into = co_await loop.sock_recv_into(pair.b.get(), buffer);
        CHECK(after_eof_into == 0);
    }(t));
}

TEST_CASE("sock: sending to a peer that closed mid-transfer throws EPIPE or ECONNRESET, "
          "never SIGPIPE",
          "[sock]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    default_sigpipe sigpipe_kills;  // if corio let SIGPIPE through, this test would die
    frame_leak_check leaks;
    const std::string data = random_bytes(16 << 20, 3);
    corio::run([](transport t, const std::string& data) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = co_await make_pair(t);
        auto sender = corio::create_task(loop.sock_sendall(pair.a.get(), data));
        // Take a little, then hang up with the rest unread (TCP answers with a reset).
        const std::string first = co_await receive_exactly(pair.b.get(), 64 * 1024);
        CHECK(first.size() == 64 * 1024);
        pair.b.reset();
        int error = 0;
        try {
            co_await sender;
        } catch (const std::system_error& e) {
            error = error_code_of(e);
        }
        CAPTURE(error);
        CHECK((error == EPIPE || error == ECONNRESET));

        // And once more, on a connection already known to be closed.
        error = 0;
        try {
            co_await loop.sock_sendall(pair.a.get(), std::string(100, 'y'));
        } catch (const std::system_error& e) {
            error = error_code_of(e);
        }
        CAPTURE(error);
        CHECK((error == EPIPE || error == ECONNRESET));
    }(t, data));
}

TEST_CASE("sock: a peer that resets the connection: recv throws ECONNRESET", "[sock]") {
    CORIO_REQUIRE_BACKEND();
    const bool blocked_before_reset = GENERATE(true, false);
    CAPTURE(blocked_before_reset);
    frame_leak_check leaks;
    corio::run([](bool blocked_before_reset) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = co_await tcp_pair();
        auto reset = [&pair] {
            const linger hard{1, 0};
            check_syscall(::setsockopt(pair.a.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard) ==
                              0,
                          "setsockopt(SO_LINGER)");
            pair.a.reset();  // RST, not FIN
        };
        if (!blocked_before_reset) {
            reset();
            co_await corio::sleep(10ms);
        }
        auto receiver = corio::create_task(loop.sock_recv(pair.b.get(), 100));
        if (blocked_before_reset) {
            co_await corio::sleep(10ms);  // the receiver now waits in recv
            CHECK_FALSE(receiver.done());
            reset();
        }
        int error = 0;
        try {
            (void)co_await receiver;
        } catch (const std::system_error& e) {
            error = error_code_of(e);
            CHECK(e.code() == std::errc::connection_reset);
        }
        CHECK(error == ECONNRESET);
    }(blocked_before_reset));
}

// --- cancellation --------------------------------------------------------------------------

TEST_CASE("sock: cancelling a task blocked in sock_recv is prompt, leaks nothing, and the "
          "socket keeps working",
          "[sock][cancel]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    const bool into = GENERATE(false, true);
    CAPTURE(name_of(t), into);
    frame_leak_check leaks;
    corio::run([](transport t, bool into) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = co_await make_pair(t);
        bool reached_after_recv = false;
        auto blocked = corio::create_task([](int fd, bool into, bool& after) -> corio::coro<> {
            auto& loop = corio::get_running_loop();
            if (into) {
                std::byte buffer[64];
                (void)co_await loop.sock_recv_into(fd, buffer);
            } else {
                (void)co_await loop.sock_recv(fd, 64);
            }
            after = true;
        }(pair.b.get(), into, reached_after_recv));
        co_await corio::sleep(20ms);
        REQUIRE_FALSE(blocked.done());

        stopwatch watch;
        CHECK(blocked.cancel("enough"));
        bool saw_cancel = false;
        try {
            co_await blocked;
        } catch (const corio::cancelled_error& e) {
            saw_cancel = true;
            CHECK(std::string(e.what()) == "enough");
        }
        CHECK(watch.elapsed() < 1s);
        CHECK(saw_cancel);
        CHECK(blocked.cancelled());
        CHECK_FALSE(reached_after_recv);

        // The withdrawn recv took nothing: the next data goes to the next recv, whole.
        co_await loop.sock_sendall(pair.a.get(), std::string("next data"));
        const std::string next = co_await receive_exactly(pair.b.get(), 9);
        CHECK(next == "next data");
        // Both ways still work.
        co_await loop.sock_sendall(pair.b.get(), std::string("reply"));
        const std::string reply = co_await receive_exactly(pair.a.get(), 5);
        CHECK(reply == "reply");
    }(t, into));
}

TEST_CASE("sock: data arriving as the recv is cancelled is never lost", "[sock][cancel]") {
    CORIO_REQUIRE_BACKEND();
    const transport t = GENERATE(transport::unix_stream, transport::tcp);
    CAPTURE(name_of(t));
    frame_leak_check leaks;
    corio::run([](transport t) -> corio::coro<> {
        for (int round = 0; round < 50; ++round) {
            socket_pair pair = co_await make_pair(t);
            std::string taken;
            auto blocked = corio::create_task([](int fd, std::string& taken) -> corio::coro<> {
                taken = co_await corio::get_running_loop().sock_recv(fd, 64);
                co_await corio::sleep(0s);  // where a cancellation that lost the race lands
            }(pair.b.get(), taken));
            co_await corio::sleep(round % 2 == 0 ? 0ms : 1ms);
            // The data arrives and the cancellation is asked for in the same iteration: one
            // of them wins, and the payload ends up either in `taken` or still in the socket.
            send_blocking(pair.a.get(), "payload");
            blocked.cancel();
            try {
                co_await blocked;
            } catch (const corio::cancelled_error&) {
            }
            CHECK(blocked.cancelled());
            std::string rest;
            if (taken.size() < 7) {
                rest =
                    co_await corio::wait_for(receive_exactly(pair.b.get(), 7 - taken.size()), 2s);
            }
            CAPTURE(round, taken, rest);
            CHECK(taken + rest == "payload");
        }
    }(t));
}

TEST_CASE("sock: cancelling a task blocked in sock_accept loses no connection", "[sock][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        listener l = loopback_listener();
        auto blocked = corio::create_task(loop.sock_accept(l.fd.get()));
        co_await corio::sleep(10ms);
        stopwatch watch;
        blocked.cancel();
        try {
            (void)co_await blocked;
        } catch (const corio::cancelled_error&) {
        }
        CHECK(watch.elapsed() < 1s);
        CHECK(blocked.cancelled());

        corio::unique_fd client = tcp_socket();
        co_await loop.sock_connect(client.get(), l.address);
        auto accepted = co_await corio::wait_for(loop.sock_accept(l.fd.get()), 2s);
        CHECK(accepted.first);
        CHECK(accepted.second.port() == local_address(client.get()).port());
    }());
}

TEST_CASE("sock: cancelling a task blocked in sock_sendall on a full socket is prompt",
          "[sock][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = unix_pair();
        const std::size_t filled = fill_until_full(pair.a.get());
        CHECK(filled > 0);
        auto blocked = corio::create_task(loop.sock_sendall(pair.a.get(), std::string(1000, 'z')));
        co_await corio::sleep(10ms);
        REQUIRE_FALSE(blocked.done());
        stopwatch watch;
        blocked.cancel();
        try {
            co_await blocked;
        } catch (const corio::cancelled_error&) {
        }
        CHECK(watch.elapsed() < 1s);
        CHECK(blocked.cancelled());
        // Nothing of the cancelled send went out: the peer finds only the filler.
        drain(pair.b.get());
        co_await loop.sock_sendall(pair.a.get(), std::string("after"));
        const std::string after = co_await corio::wait_for(receive_exactly(pair.b.get(), 5), 2s);
        CHECK(after == "after");
    }());
}

TEST_CASE("sock: wait_for on a recv times out promptly and the socket keeps working",
          "[sock][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = unix_pair();
        for (int round = 0; round < 20; ++round) {
            stopwatch watch;
            bool timed_out = false;
            try {
                (void)co_await corio::wait_for(loop.sock_recv(pair.b.get(), 10), 5ms);
            } catch (const corio::timeout_error&) {
                timed_out = true;
            }
            CHECK(timed_out);
            CHECK(watch.elapsed() < 1s);
        }
        send_blocking(pair.a.get(), "late");
        const std::string late = co_await corio::wait_for(receive_exactly(pair.b.get(), 4), 2s);
        CHECK(late == "late");
    }());
}

TEST_CASE("sock: a descriptor number closed and reused by a new socket is waited on afresh",
          "[sock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        for (int round = 0; round < 10; ++round) {
            socket_pair first = unix_pair();
            const int number = first.b.get();
            // Wait on it (the reactor registers the descriptor), withdraw, then close it
            // behind the reactor's back.
            auto blocked = corio::create_task(loop.sock_recv(number, 10));
            co_await corio::sleep(1ms);
            blocked.cancel();
            try {
                (void)co_await blocked;
            } catch (const corio::cancelled_error&) {
            }
            first.b.reset();
            first.a.reset();

            socket_pair second = unix_pair();  // the lowest free numbers again
            CAPTURE(round, number, second.a.get(), second.b.get());
            const int reused = second.a.get() == number ? second.a.get() : second.b.get();
            const int peer = reused == second.a.get() ? second.b.get() : second.a.get();
            auto receiver = corio::create_task(loop.sock_recv(reused, 10));
            co_await corio::sleep(1ms);
            send_blocking(peer, "fresh");
            std::string got =
                co_await corio::wait_for(std::move(receiver), std::chrono::seconds(2));
            // A stream may hand the bytes out in pieces (fault injection cuts reads short).
            while (!got.empty() && got.size() < 5) {
                got +=
                    co_await corio::wait_for(loop.sock_recv(reused, 10), std::chrono::seconds(2));
            }
            CHECK(got == "fresh");
        }
    }());
}

// --- connect and accept --------------------------------------------------------------------

TEST_CASE("sock: connecting to a closed port throws connection_refused", "[sock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    // Bound, not listening: the port is taken (nobody else gets it) and refuses connections.
    const listener closed = loopback_listener(0, false);
    corio::run([](corio::socket_address address) -> corio::coro<> {
        corio::unique_fd client = tcp_socket();
        bool thrown = false;
        try {
            co_await corio::get_running_loop().sock_connect(client.get(), address);
        } catch (const std::system_error& e) {
            thrown = true;
            CAPTURE(e.code().value(), e.what());
            CHECK(e.code() == std::errc::connection_refused);
        }
        CHECK(thrown);
    }(closed.address));
}

TEST_CASE("sock: sock_accept gives a non-blocking close-on-exec socket and the peer address",
          "[sock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        listener l = loopback_listener();
        CHECK(l.address.port() != 0);
        corio::unique_fd client = tcp_socket();
        auto accepting = corio::create_task(loop.sock_accept(l.fd.get()));
        co_await corio::sleep(5ms);  // accept waits first, then the connection comes
        co_await loop.sock_connect(client.get(), l.address);
        auto [connection, peer] = co_await std::move(accepting);
        REQUIRE(connection);
        CHECK(is_nonblocking(connection.get()));
        CHECK(is_cloexec(connection.get()));
        CHECK(peer.family() == AF_INET);
        const corio::socket_address client_address = local_address(client.get());
        CHECK(peer.port() == client_address.port());
        CHECK(peer.to_string() == "127.0.0.1:" + std::to_string(client_address.port()));
        CHECK(peer.size() == sizeof(sockaddr_in));

        // A connection already queued is accepted without waiting, with the same guarantees.
        corio::unique_fd second = tcp_socket();
        co_await loop.sock_connect(second.get(), l.address);
        co_await corio::sleep(5ms);
        auto [connection2, peer2] = co_await loop.sock_accept(l.fd.get());
        CHECK(is_nonblocking(connection2.get()));
        CHECK(is_cloexec(connection2.get()));
        CHECK(peer2.port() == local_address(second.get()).port());

        // The accepted socket talks to the client.
        co_await loop.sock_sendall(client.get(), std::string("hello"));
        const std::string hello = co_await receive_exactly(connection.get(), 5);
        CHECK(hello == "hello");
    }());
}

TEST_CASE("sock: a Unix listener: accept and connect by path", "[sock]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        const std::string path =
            std::string(1, '\0') + "corio-socket-test-" + std::to_string(::getpid());
        const auto address = corio::socket_address::unix_path(path);
        corio::unique_fd server(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        REQUIRE(::bind(server.get(), address.data(), address.size()) == 0);
        REQUIRE(::listen(server.get(), 8) == 0);
        corio::unique_fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        auto accepting = corio::create_task(loop.sock_accept(server.get()));
        co_await loop.sock_connect(client.get(), address);
        auto accepted = co_await std::move(accepting);
        CHECK(accepted.second.family() == AF_UNIX);
        co_await loop.sock_sendall(accepted.first.get(), std::string("over unix"));
        const std::string over_unix = co_await receive_exactly(client.get(), 9);
        CHECK(over_unix == "over unix");
    }());
}

// --- many connections ----------------------------------------------------------------------

void raise_fd_limit(rlim_t wanted) {
    rlimit limit{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
    if (limit.rlim_cur >= wanted) return;
    limit.rlim_cur = limit.rlim_max;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
        FAIL("RLIMIT_NOFILE hard limit " << limit.rlim_max << " is below the " << wanted
                                         << " descriptors this test needs");
    }
}

corio::coro<> echo_until_eof(corio::unique_fd connection) {
    auto& loop = corio::get_running_loop();
    for (;;) {
        std::string piece = co_await loop.sock_recv(connection.get(), 4096);
        if (piece.empty()) co_return;
        co_await loop.sock_sendall(connection.get(), piece);
    }
}

corio::coro<> serve(int listening_fd, int connections, std::vector<corio::task<>>& handlers) {
    auto& loop = corio::get_running_loop();
    for (int i = 0; i < connections; ++i) {
        auto accepted = co_await loop.sock_accept(listening_fd);
        handlers.push_back(corio::create_task(echo_until_eof(std::move(accepted.first))));
    }
}

corio::coro<bool> echo_client(corio::socket_address server, int index) {
    auto& loop = corio::get_running_loop();
    corio::unique_fd fd = tcp_socket();
    co_await loop.sock_connect(fd.get(), server);
    const std::string message = "message number " + std::to_string(index) + " from a client";
    co_await loop.sock_sendall(fd.get(), message);
    const std::string echoed = co_await receive_exactly(fd.get(), message.size());
    co_return echoed == message;
}

TEST_CASE("sock: 1,000 simultaneous TCP connections, each echoing one message", "[sock]") {
    CORIO_REQUIRE_BACKEND();
    constexpr int connections = 1000;
    raise_fd_limit(2 * connections + 100);
    frame_leak_check leaks;
    const int echoed = corio::run([]() -> corio::coro<int> {
        listener l = loopback_listener(connections + 24);
        std::vector<corio::task<>> handlers;
        handlers.reserve(connections);
        auto server = corio::create_task(serve(l.fd.get(), connections, handlers));
        std::vector<corio::task<bool>> clients;
        clients.reserve(connections);
        for (int i = 0; i < connections; ++i) {
            clients.push_back(corio::create_task(echo_client(l.address, i)));
        }
        int ok = 0;
        for (auto& client : clients) ok += (co_await client) ? 1 : 0;
        co_await server;
        for (auto& handler : handlers) co_await handler;  // each ends on its client's EOF
        CHECK(handlers.size() == static_cast<std::size_t>(connections));
        co_return ok;
    }());
    CHECK(echoed == connections);
}

// --- add_reader / add_writer ---------------------------------------------------------------

// Checks that `condition()` becomes true within 2 s. (Never put a co_await inside a Catch
// macro: g++ 12 evaluates CHECK's expression twice, once in Catch's __builtin_constant_p.)
#define CHECK_EVENTUALLY(...)                                                                      \
    do {                                                                                           \
        const bool became_true = co_await eventually(__VA_ARGS__);                                 \
        INFO("waited 2 s for " #__VA_ARGS__);                                                      \
        CHECK(became_true);                                                                        \
    } while (false)

TEST_CASE("sock: add_reader fires while readable, and stops after remove_reader",
          "[sock][readiness]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = unix_pair();
        int calls = 0;
        loop.add_reader(pair.b.get(), [&calls] { ++calls; });
        co_await corio::sleep(20ms);
        CHECK(calls == 0);  // nothing to read yet

        send_blocking(pair.a.get(), "x");
        // Level-triggered: called again and again while the byte stays unread.
        CHECK_EVENTUALLY([&] { return calls >= 3; });

        CHECK(loop.remove_reader(pair.b.get()));
        const int at_removal = calls;
        co_await corio::sleep(20ms);
        CHECK(calls == at_removal);
        CHECK_FALSE(loop.remove_reader(pair.b.get()));  // no longer watched
        CHECK(recv_blocking(pair.b.get(), 10) == "x");
    }());
}

TEST_CASE("sock: add_reader: a reader that consumes the data is called once per arrival",
          "[sock][readiness]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = unix_pair();
        std::string received;
        int calls = 0;
        loop.add_reader(pair.b.get(), [&, fd = pair.b.get()] {
            ++calls;
            char buffer[100];
            const auto n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n > 0) received.append(buffer, static_cast<std::size_t>(n));
        });
        for (const char* piece : {"one ", "two ", "three"}) {
            send_blocking(pair.a.get(), piece);
            const std::size_t expected = received.size() + std::strlen(piece);
            CHECK_EVENTUALLY([&] { return received.size() == expected; });
        }
        co_await corio::sleep(20ms);
        CHECK(received == "one two three");
        CHECK(calls == 3);
        CHECK(loop.remove_reader(pair.b.get()));
    }());
}

TEST_CASE("sock: add_reader replaces the callback of a descriptor already watched",
          "[sock][readiness]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = unix_pair();
        int first = 0;
        int second = 0;
        loop.add_reader(pair.b.get(), [&first] { ++first; });
        loop.add_reader(pair.b.get(), [&second] { ++second; });
        send_blocking(pair.a.get(), "x");
        CHECK_EVENTUALLY([&] { return second >= 1; });
        CHECK(first == 0);
        CHECK(loop.remove_reader(pair.b.get()));
    }());
}

TEST_CASE("sock: a watch can replace itself, and another watch, from its callback",
          "[sock][readiness]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = unix_pair();
        int first = 0;
        int second = 0;
        int writer_calls = 0;
        const int fd = pair.b.get();
        loop.add_writer(fd, [&] { ++writer_calls; });
        loop.add_reader(fd, [&] {
            ++first;
            auto& loop = corio::get_running_loop();
            loop.remove_writer(fd);  // another watch, from this one's callback
            loop.add_reader(fd, [&second] { ++second; });  // replaces the running callback
        });
        send_blocking(pair.a.get(), "x");
        CHECK_EVENTUALLY([&] { return second >= 2; });
        CHECK(first == 1);
        const int writes_then = writer_calls;
        co_await corio::sleep(10ms);
        CHECK(writer_calls == writes_then);
        CHECK(loop.remove_reader(fd));
        CHECK_FALSE(loop.remove_writer(fd));
    }());
}

TEST_CASE("sock: add_writer fires when writable, waits while the socket is full",
          "[sock][readiness]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = unix_pair();

        int calls = 0;
        loop.add_writer(pair.a.get(), [&calls] { ++calls; });
        CHECK_EVENTUALLY([&] { return calls >= 2; });  // writable, so again and again
        CHECK(loop.remove_writer(pair.a.get()));
        const int at_removal = calls;
        co_await corio::sleep(20ms);
        CHECK(calls == at_removal);
        CHECK_FALSE(loop.remove_writer(pair.a.get()));

        // Full: not writable, not called, until the peer reads.
        fill_until_full(pair.a.get());
        calls = 0;
        loop.add_writer(pair.a.get(), [&calls] { ++calls; });
        co_await corio::sleep(20ms);
        CHECK(calls == 0);
        drain(pair.b.get());
        CHECK_EVENTUALLY([&] { return calls >= 1; });
        CHECK(loop.remove_writer(pair.a.get()));
    }());
}

TEST_CASE("sock: a reader and a writer on the same descriptor are independent",
          "[sock][readiness]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::run([]() -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = unix_pair();
        int reads = 0;
        int writes = 0;
        loop.add_reader(pair.a.get(), [&reads] { ++reads; });
        loop.add_writer(pair.a.get(), [&writes] { ++writes; });
        CHECK_EVENTUALLY([&] { return writes >= 2; });
        CHECK(reads == 0);
        CHECK(loop.remove_writer(pair.a.get()));
        send_blocking(pair.b.get(), "r");
        CHECK_EVENTUALLY([&] { return reads >= 1; });
        CHECK(loop.remove_reader(pair.a.get()));
    }());
}

TEST_CASE("sock: watches left registered when run() ends are released", "[sock][readiness]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    socket_pair pair = unix_pair();
    int calls = 0;
    corio::run([](int fd, int& calls) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        loop.add_reader(fd, [&calls] { ++calls; });
        loop.add_writer(fd, [&calls] { ++calls; });
        co_await corio::sleep(5ms);
    }(pair.a.get(), calls));
    CHECK(calls > 0);  // the writer ran; nothing left behind (ASan's leak check would tell)
}

// --- closing with operations in flight ----------------------------------------------------

TEST_CASE("sock: run() cancels a task still blocked in recv when main returns; nothing leaks, "
          "no byte is taken",
          "[sock][close]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    socket_pair pair = unix_pair();
    bool saw_cancel = false;
    bool finished = false;
    corio::run([](int fd, bool& saw_cancel, bool& finished) -> corio::coro<> {
        (void)corio::create_task([](int fd, bool& saw_cancel, bool& finished) -> corio::coro<> {
            try {
                (void)co_await corio::get_running_loop().sock_recv(fd, 100);
                finished = true;
            } catch (const corio::cancelled_error&) {
                saw_cancel = true;
                throw;
            }
        }(fd, saw_cancel, finished));
        co_await corio::sleep(10ms);  // the task now waits in recv
    }(pair.b.get(), saw_cancel, finished));
    CHECK(saw_cancel);
    CHECK_FALSE(finished);
    // The withdrawn operation is gone for good: data sent now stays for a plain recv.
    send_blocking(pair.a.get(), "still here");
    CHECK(recv_blocking(pair.b.get(), 100) == "still here");
}

TEST_CASE("sock: close() with operations in flight withdraws them first; nothing leaks",
          "[sock][close]") {
    CORIO_REQUIRE_BACKEND();
    const bool explicit_close = GENERATE(true, false);
    CAPTURE(explicit_close);
    frame_leak_check leaks;
    socket_pair pair = unix_pair();
    listener l = loopback_listener();
    socket_pair full = unix_pair();
    fill_until_full(full.a.get());
    {
        auto loop = corio::new_event_loop();
        std::vector<corio::task<>> blocked;
        loop->run_until_complete([](int fd, int listening, int full_fd,
                                    std::vector<corio::task<>>& blocked) -> corio::coro<> {
            auto& loop = corio::get_running_loop();
            blocked.push_back(corio::create_task([](int fd) -> corio::coro<> {
                (void)co_await corio::get_running_loop().sock_recv(fd, 100);
            }(fd)));
            blocked.push_back(corio::create_task([](int fd) -> corio::coro<> {
                std::byte buffer[100];
                (void)co_await corio::get_running_loop().sock_recv_into(fd, buffer);
            }(fd)));
            blocked.push_back(corio::create_task([](int fd) -> corio::coro<> {
                (void)co_await corio::get_running_loop().sock_accept(fd);
            }(listening)));
            blocked.push_back(
                corio::create_task(loop.sock_sendall(full_fd, std::string(10'000, 's'))));
            co_await corio::sleep(10ms);
            for (auto& t : blocked) CHECK_FALSE(t.done());
        }(pair.b.get(), l.fd.get(), full.a.get(), blocked));
        if (explicit_close) {
            loop->close();
            for (auto& t : blocked) {
                CHECK(t.done());
                CHECK(t.cancelled());
            }
        }
        blocked.clear();
        // Otherwise the loop's destructor closes it.
    }
    send_blocking(pair.a.get(), "untouched");
    CHECK(recv_blocking(pair.b.get(), 100) == "untouched");
    corio::unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(client.get(), l.address.data(), l.address.size()) == 0);
    pollfd p{l.fd.get(), POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    corio::unique_fd accepted(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    CHECK(accepted);
}

// Last in the file: with the use-after-free this test found in readiness_watch::run_ready,
// it aborts the executable, and every other case should have reported by then.
TEST_CASE("sock: remove_reader / remove_writer from inside the watch's own callback",
          "[sock][readiness]") {
    CORIO_REQUIRE_BACKEND();
    const bool writer = GENERATE(false, true);
    CAPTURE(writer);
    frame_leak_check leaks;
    corio::run([](bool writer) -> corio::coro<> {
        auto& loop = corio::get_running_loop();
        socket_pair pair = unix_pair();
        int calls = 0;
        bool removed = false;
        // asyncio's usual one-shot pattern: the callback unregisters itself.
        auto once = [&, fd = pair.b.get(), writer] {
            ++calls;
            auto& loop = corio::get_running_loop();
            removed = writer ? loop.remove_writer(fd) : loop.remove_reader(fd);
        };
        if (writer) {
            loop.add_writer(pair.b.get(), once);
        } else {
            loop.add_reader(pair.b.get(), once);
            send_blocking(pair.a.get(), "x");
        }
        CHECK_EVENTUALLY([&] { return calls >= 1; });
        co_await corio::sleep(20ms);
        CHECK(calls == 1);
        CHECK(removed);
        // The descriptor can be watched again afterwards.
        int again = 0;
        if (writer) {
            loop.add_writer(pair.b.get(), [&again] { ++again; });
        } else {
            loop.add_reader(pair.b.get(), [&again] { ++again; });
        }
        CHECK_EVENTUALLY([&] { return again >= 1; });
        CHECK((writer ? loop.remove_writer(pair.b.get()) : loop.remove_reader(pair.b.get())));
    }(writer));
}

}  // namespace
