// Benchmarks of the core runtime's hot paths: a coroutine call, a task spawned and awaited,
// a switch between two tasks, a short timer's latency, and a million sleeping tasks. Each runs
// on both backends; the backend's name is in the label.

#include <corio/corio.hpp>

#include "support/backends.hpp"
#include "support/memory.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

corio::coro<int> trivial(int x) { co_return x + 1; }

corio::coro<> await_trivial_coros(benchmark::State& state) {
    int x = 0;
    for (auto _ : state) {
        x = co_await trivial(x);
        benchmark::DoNotOptimize(x);
    }
}

void coro_await(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(await_trivial_coros(state));
    state.SetItemsProcessed(state.iterations());
}

corio::coro<> spawn_and_await(benchmark::State& state) {
    int x = 0;
    for (auto _ : state) {
        x = co_await corio::create_task(trivial(x));
        benchmark::DoNotOptimize(x);
    }
}

void create_task_await(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(spawn_and_await(state));
    state.SetItemsProcessed(state.iterations());
}

corio::coro<> yield_forever(const bool& stop) {
    while (!stop) co_await corio::sleep(0s);
}

corio::coro<> yield_measured(benchmark::State& state, bool& stop) {
    for (auto _ : state) co_await corio::sleep(0s);
    stop = true;
}

// Two tasks take turns through the ready queue: each iteration is one switch away and one back.
void sleep0_switch(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    bool stop = false;
    auto other = loop->create_task(yield_forever(stop));
    loop->run_until_complete(yield_measured(state, stop));
    loop->run_until_complete(other);
    state.SetItemsProcessed(state.iterations() * 2);
    state.counters["ns_per_switch"] =
        benchmark::Counter(static_cast<double>(state.iterations() * 2),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

corio::coro<> sleep_repeatedly(benchmark::State& state) {
    for (auto _ : state) co_await corio::sleep(100us);
}

// How late a short timer fires: the loop's wait for it (the reactor's timeout) and the wake-up.
void sleep_latency(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(sleep_repeatedly(state));
}

corio::coro<> sleeper(std::chrono::milliseconds delay) { co_await corio::sleep(delay); }

corio::coro<> million_sleepers(benchmark::State& state, std::size_t count) {
    std::mt19937 random(42);
    std::uniform_int_distribution<int> delay_ms(0, 1000);
    for (auto _ : state) {
        const auto in_use_before = corio_bench::bytes_in_use();
        const auto started = std::chrono::steady_clock::now();
        std::vector<corio::task<>> tasks;
        tasks.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            tasks.push_back(
                corio::create_task(sleeper(std::chrono::milliseconds(delay_ms(random)))));
        }
        co_await corio::sleep(0s);  // every task now sleeps: measure what they hold
        // mallinfo2 walks malloc's free lists (milliseconds after many frees): not timed.
        const auto counting_started = std::chrono::steady_clock::now();
        const auto in_use_during = corio_bench::bytes_in_use();
        const auto counting = std::chrono::steady_clock::now() - counting_started;
        for (auto& t : tasks) co_await t;
        const auto elapsed = std::chrono::steady_clock::now() - started - counting;
        const double vector_bytes = static_cast<double>(count * sizeof(corio::task<>));
        state.counters["bytes_per_task"] =
            (static_cast<double>(in_use_during - in_use_before) - vector_bytes) /
            static_cast<double>(count);
        state.counters["wall_s"] = std::chrono::duration<double>(elapsed).count();
    }
}

// NOTE: a run after another in the same process reuses the frames and states the first one
// freed, in the random order their timers fired: every task then lands on a cold cache line
// (1.55 s instead of 1.18; 1.63 with the malloc-backed cache before). For the figure of
// a fresh program, run one backend per process (`--benchmark_filter=sleeping_tasks/epoll`).
void sleeping_tasks(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(million_sleepers(state, static_cast<std::size_t>(state.range(0))));
}

void register_all() {
    for (const auto& [name, backend_of_entry] : corio_bench::available_backends()) {
        const corio::backend backend = backend_of_entry;  // clang 14 cannot capture a binding
        const std::string& suffix = name;
        benchmark::RegisterBenchmark(("coro_await" + suffix).c_str(), coro_await, backend);
        benchmark::RegisterBenchmark(("create_task_await" + suffix).c_str(), create_task_await,
                                     backend);
        benchmark::RegisterBenchmark(("sleep0_switch" + suffix).c_str(), sleep0_switch, backend);
        benchmark::RegisterBenchmark(("sleep_latency/100us" + suffix).c_str(), sleep_latency,
                                     backend)
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("sleeping_tasks" + suffix).c_str(), sleeping_tasks, backend)
            ->Arg(1'000'000)
            ->Iterations(1)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    }
}

const int registered = (register_all(), 0);

}  // namespace
