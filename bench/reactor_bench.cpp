// Benchmarks of the reactors under the loop's socket operations: a ping-pong of 64-byte
// messages between two tasks over a socketpair, and 64 such pairs at once. Each runs on both
// backends (the backend's name is in the label), on `basic_event_loop<Reactor>` built directly
// so that the reactor's syscall counter can be read: `syscalls_per_round_trip` is what one
// round trip (two sends, two receives) costs in system calls, waits included.

#include <corio/corio.hpp>

#include <benchmark/benchmark.h>

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace {

constexpr std::size_t message_size = 64;
using message = std::array<std::byte, message_size>;

struct socket_pair {
    corio::unique_fd a;
    corio::unique_fd b;
};

socket_pair make_socketpair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        throw std::system_error(errno, std::system_category(), "socketpair");
    }
    return {corio::unique_fd(fds[0]), corio::unique_fd(fds[1])};
}

// Receives exactly one message; false at end of stream.
corio::coro<bool> receive_message(corio::event_loop& loop, int fd, message& buffer) {
    std::size_t have = 0;
    while (have < buffer.size()) {
        const std::size_t n = co_await loop.sock_recv_into(fd, std::span(buffer).subspan(have));
        if (n == 0) co_return false;
        have += n;
    }
    co_return true;
}

// Sends back every message it receives, until end of stream.
corio::coro<> ponger(corio::event_loop& loop, int fd) {
    message buffer{};
    for (;;) {
        // (Never `if (co_await ...)`: g++ 12 miscompiles a co_await that is an if's condition
        // when the awaited coro completes without suspending; the coroutine never continues.)
        const bool received = co_await receive_message(loop, fd, buffer);
        if (!received) break;
        co_await loop.sock_sendall(fd, buffer);
    }
}

corio::coro<> one_round_trip(corio::event_loop& loop, int fd, message& out, message& in) {
    co_await loop.sock_sendall(fd, out);
    const bool received = co_await receive_message(loop, fd, in);
    if (!received) throw std::runtime_error("ponger went away");
}

template <class Reactor>
corio::coro<> ping_pong_measured(benchmark::State& state, corio::basic_event_loop<Reactor>& loop,
                                 socket_pair& pair, std::uint64_t& syscalls) {
    auto echo = loop.create_task(ponger(loop, pair.b.get()));
    message out{};
    message in{};
    co_await one_round_trip(loop, pair.a.get(), out, in);  // warm up: both tasks waiting
    const std::uint64_t before = loop.get_reactor().syscalls();
    for (auto _ : state) {
        co_await one_round_trip(loop, pair.a.get(), out, in);
    }
    syscalls = loop.get_reactor().syscalls() - before;
    ::shutdown(pair.a.get(), SHUT_WR);
    co_await echo;
}

void report(benchmark::State& state, std::uint64_t round_trips, std::uint64_t syscalls) {
    state.SetItemsProcessed(static_cast<std::int64_t>(round_trips));
    state.counters["round_trips_per_s"] =
        benchmark::Counter(static_cast<double>(round_trips), benchmark::Counter::kIsRate);
    state.counters["syscalls_per_round_trip"] =
        round_trips == 0 ? 0.0 : static_cast<double>(syscalls) / static_cast<double>(round_trips);
}

// Two tasks, one socketpair: each iteration is one 64-byte message there and back.
template <class Reactor>
void ping_pong(benchmark::State& state) {
    corio::basic_event_loop<Reactor> loop;
    state.SetLabel(std::string(loop.backend_name()));
    socket_pair pair = make_socketpair();
    std::uint64_t syscalls = 0;
    loop.run_until_complete(ping_pong_measured(state, loop, pair, syscalls));
    report(state, static_cast<std::uint64_t>(state.iterations()), syscalls);
}

corio::coro<> pinger(corio::event_loop& loop, int fd, int round_trips) {
    message out{};
    message in{};
    for (int i = 0; i < round_trips; ++i) co_await one_round_trip(loop, fd, out, in);
}

template <class Reactor>
corio::coro<> concurrent_measured(benchmark::State& state, corio::basic_event_loop<Reactor>& loop,
                                  std::vector<socket_pair>& pairs, int round_trips_per_pair,
                                  std::uint64_t& syscalls) {
    std::vector<corio::task<>> echoes;
    echoes.reserve(pairs.size());
    for (auto& pair : pairs) echoes.push_back(loop.create_task(ponger(loop, pair.b.get())));
    std::vector<corio::task<>> pingers;
    pingers.reserve(pairs.size());
    const auto batch = [&](int rounds) -> corio::coro<> {
        pingers.clear();
        for (auto& pair : pairs)
            pingers.push_back(loop.create_task(pinger(loop, pair.a.get(), rounds)));
        for (auto& p : pingers) co_await p;
    };
    co_await batch(1);  // warm up
    const std::uint64_t before = loop.get_reactor().syscalls();
    for (auto _ : state) {
        co_await batch(round_trips_per_pair);
    }
    syscalls = loop.get_reactor().syscalls() - before;
    for (auto& pair : pairs) ::shutdown(pair.a.get(), SHUT_WR);
    for (auto& e : echoes) co_await e;
}

// `state.range(0)` pairs at once, each doing 100 round trips per iteration.
template <class Reactor>
void concurrent_ping_pong(benchmark::State& state) {
    constexpr int round_trips_per_pair = 100;
    corio::basic_event_loop<Reactor> loop;
    state.SetLabel(std::string(loop.backend_name()));
    std::vector<socket_pair> pairs;
    for (std::int64_t i = 0; i < state.range(0); ++i) pairs.push_back(make_socketpair());
    std::uint64_t syscalls = 0;
    loop.run_until_complete(
        concurrent_measured(state, loop, pairs, round_trips_per_pair, syscalls));
    report(state,
           static_cast<std::uint64_t>(state.iterations()) *
               static_cast<std::uint64_t>(state.range(0)) * round_trips_per_pair,
           syscalls);
}

template <class Reactor>
void register_for(const char* name) {
    const std::string suffix = std::string("/") + name;
    benchmark::RegisterBenchmark(("ping_pong" + suffix).c_str(), ping_pong<Reactor>)->UseRealTime();
    benchmark::RegisterBenchmark(("concurrent_ping_pong" + suffix).c_str(),
                                 concurrent_ping_pong<Reactor>)
        ->Arg(64)
        ->ArgName("pairs")
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}

void register_all() {
    register_for<corio::epoll_reactor>("epoll");
#if defined(CORIO_HAS_URING)
    try {
        corio::uring_reactor probe;
    } catch (const std::system_error&) {
        return;  // the kernel forbids io_uring here
    }
    register_for<corio::uring_reactor>("io_uring");
#endif
}

const int registered = (register_all(), 0);

}  // namespace
