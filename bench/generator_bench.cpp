// Benchmarks of async generators: a step that never suspends the consumer (compare with
// core_bench's coro_await: the target is at most its cost), a step across a `sleep(0)` (compare
// with sleep0_switch), and `reader.lines()` against a loop of `readline()` over a socketpair.
// Each runs on both backends; the backend's name is in the label.

#include <corio/corio.hpp>

#include "support/backends.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>

#include <sys/socket.h>

namespace {

using namespace std::chrono_literals;

corio::async_generator<std::int64_t> counter() {
    for (std::int64_t i = 0;; ++i) co_yield i;
}

corio::coro<> consume_ready(benchmark::State& state) {
    auto numbers = counter();
    std::int64_t sum = 0;
    for (auto _ : state) {
        sum += *co_await numbers.next();
        benchmark::DoNotOptimize(sum);
    }
}

// Each step resumes the body, which yields at once: the whole step is two inline transfers.
void generator_next_ready(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(consume_ready(state));
    state.SetItemsProcessed(state.iterations());
}

corio::async_generator<std::int64_t> counter_with_sleep() {
    for (std::int64_t i = 0;; ++i) {
        co_await corio::sleep(0s);
        co_yield i;
    }
}

corio::coro<> consume_sleeping(benchmark::State& state) {
    auto numbers = counter_with_sleep();
    std::int64_t sum = 0;
    for (auto _ : state) {
        sum += *co_await numbers.next();
        benchmark::DoNotOptimize(sum);
    }
}

// Each step suspends the consumer's task once, in the body's sleep(0), and comes back through
// the ready queue and the trampoline.
void generator_next_across_sleep0(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(consume_sleeping(state));
    state.SetItemsProcessed(state.iterations());
}

// -- lines ---------------------------------------------------------------------------------

constexpr std::size_t line_size = 64;

corio::stream_pair streams_over(corio::unique_fd fd) {
    return corio::detail::make_socket_streams(std::move(fd));
}

// Writes 64-byte lines in 64 KiB blocks until told to stop, then closes.
corio::coro<> write_lines(corio::stream_writer writer, const bool& stop) {
    std::string block;
    while (block.size() + line_size <= 64 * 1024) {
        block.append(line_size - 1, 'x');
        block += '\n';
    }
    while (!stop) {
        writer.write(block);
        co_await writer.drain();
    }
    writer.close();
    co_await writer.wait_closed();
}

enum class reading { lines, readline };

corio::coro<> read_lines(benchmark::State& state, reading how) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
        throw std::system_error(errno, std::system_category(), "socketpair");
    }
    corio::stream_pair consumer = streams_over(corio::unique_fd(fds[0]));
    corio::stream_pair producer = streams_over(corio::unique_fd(fds[1]));
    bool stop = false;
    auto writer = corio::create_task(write_lines(producer.writer, stop));
    std::size_t bytes = 0;
    if (how == reading::lines) {
        auto lines = consumer.reader.lines();
        for (auto _ : state) bytes += (*co_await lines.next()).size();
        stop = true;
        while (co_await lines.next()) {
        }
    } else {
        for (auto _ : state) bytes += (co_await consumer.reader.readline()).size();
        stop = true;
        while (!(co_await consumer.reader.readline()).empty()) {
        }
    }
    co_await writer;
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

void lines_generator(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(read_lines(state, reading::lines));
    state.SetItemsProcessed(state.iterations());
}

void lines_readline_loop(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(read_lines(state, reading::readline));
    state.SetItemsProcessed(state.iterations());
}

void register_all() {
    for (const auto& [name, backend_of_entry] : corio_bench::available_backends()) {
        const corio::backend backend = backend_of_entry;  // clang 14 cannot capture a binding
        const std::string& suffix = name;
        benchmark::RegisterBenchmark(("generator_next/ready" + suffix).c_str(),
                                     generator_next_ready, backend);
        benchmark::RegisterBenchmark(("generator_next/across_sleep0" + suffix).c_str(),
                                     generator_next_across_sleep0, backend);
        benchmark::RegisterBenchmark(("lines/generator" + suffix).c_str(), lines_generator,
                                     backend);
        benchmark::RegisterBenchmark(("lines/readline_loop" + suffix).c_str(), lines_readline_loop,
                                     backend);
    }
}

const int registered = (register_all(), 0);

}  // namespace
