// Benchmarks of the combinators: gather over many coroutines, wait(first_completed) over many
// tasks, a queue get with and without a timeout, a race of two, and eager tasks (a body that
// never suspends, and one that suspends once) beside plain ones. Each runs on both backends;
// the backend's name is in the label.

#include <corio/corio.hpp>

#include "support/backends.hpp"
#include "support/memory.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

corio::coro<int> trivial(int x) { co_return x; }

corio::coro<> gather_many(benchmark::State& state, std::size_t count) {
    for (auto _ : state) {
        std::vector<corio::coro<int>> coros;
        coros.reserve(count);
        for (std::size_t i = 0; i < count; ++i) coros.push_back(trivial(static_cast<int>(i)));
        // mallinfo2 walks malloc's free lists, which after a million frees takes milliseconds:
        // it is not timed.
        state.PauseTiming();
        const auto in_use_before = corio_bench::bytes_in_use();
        state.ResumeTiming();
        auto gathering = corio::gather(std::move(coros));
        state.PauseTiming();
        const auto in_use_during = corio_bench::bytes_in_use();
        state.ResumeTiming();
        std::vector<int> results = co_await std::move(gathering);
        benchmark::DoNotOptimize(results.data());
        state.counters["bytes_per_element"] =
            static_cast<double>(in_use_during - in_use_before) / static_cast<double>(count);
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
    state.counters["ns_per_element"] =
        benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(count),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

corio::coro<> wait_for_signal(corio::future<void> signal) { co_await signal; }

// Each iteration: 10,000 tasks wait on their own future; one is completed, and
// wait(first_completed) must notice it among all the others.
corio::coro<> wait_first_completed(benchmark::State& state, std::size_t count) {
    auto& loop = corio::get_running_loop();
    std::vector<corio::future<void>> signals;
    std::vector<corio::task<>> tasks;
    for (std::size_t i = 0; i < count; ++i) {
        signals.push_back(loop.create_future<void>());
        tasks.push_back(corio::create_task(wait_for_signal(signals.back())));
    }
    co_await corio::sleep(0s);  // every task is now waiting
    std::size_t next = 0;
    for (auto _ : state) {
        state.PauseTiming();
        signals[next].set_result();
        state.ResumeTiming();
        auto [done, pending] = co_await corio::wait(tasks, corio::return_when::first_completed);
        benchmark::DoNotOptimize(done.data());
        state.PauseTiming();
        // Replace the finished task so that the set keeps its size.
        signals[next] = loop.create_future<void>();
        tasks[next] = corio::create_task(wait_for_signal(signals[next]));
        co_await corio::sleep(0s);
        next = (next + 1) % count;
        state.ResumeTiming();
    }
    for (auto& s : signals) s.cancel();
    co_await corio::gather(corio::return_exceptions, tasks);
}

// The item is there: the get completes at once, so what is measured is what a timeout adds to
// a get that needs none (asyncio's commonest idiom), against the plain get below.
corio::coro<> queue_get_timed(benchmark::State& state) {
    corio::queue<int> q;
    int x = 0;
    for (auto _ : state) {
        q.put_nowait(x);
        x = co_await corio::wait_for(q.get(), 1s) + 1;
        benchmark::DoNotOptimize(x);
    }
}

corio::coro<> queue_get_plain(benchmark::State& state) {
    corio::queue<int> q;
    int x = 0;
    for (auto _ : state) {
        q.put_nowait(x);
        x = co_await q.get() + 1;
        benchmark::DoNotOptimize(x);
    }
}

// Both entrants suspend: a yield wins after one trip through the loop, and an hour's sleep
// loses, is cancelled and awaited. Two tasks made, one cancelled, every iteration.
corio::coro<> race_of_two(benchmark::State& state) {
    for (auto _ : state) {
        auto winner = co_await corio::race(corio::sleep(0s), corio::sleep(1h));
        benchmark::DoNotOptimize(winner);
    }
}

corio::coro<int> trivial_plus_one(int x) { co_return x + 1; }

corio::coro<int> yield_then_plus_one(int x) {
    co_await corio::sleep(0s);
    co_return x + 1;
}

// A task spawned and awaited, as core_bench's create_task_await, optionally eager.
template <bool Eager, corio::coro<int> (*Body)(int)>
corio::coro<> spawn_and_await(benchmark::State& state) {
    int x = 0;
    for (auto _ : state) {
        if constexpr (Eager) {
            x = co_await corio::create_task(Body(x), {.name = {}, .eager = true});
        } else {
            x = co_await corio::create_task(Body(x));
        }
        benchmark::DoNotOptimize(x);
    }
}

template <class Body>
void on_loop(benchmark::State& state, corio::backend backend, Body body) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(body(state));
}

void register_all() {
    for (const auto& [name, backend_of_entry] : corio_bench::available_backends()) {
        const corio::backend backend = backend_of_entry;  // clang 14 cannot capture a binding
        const std::string& suffix = name;
        benchmark::RegisterBenchmark(("gather_coros" + suffix).c_str(),
                                     [backend](benchmark::State& state) {
                                         on_loop(state, backend, [&](benchmark::State& s) {
                                             return gather_many(
                                                 s, static_cast<std::size_t>(s.range(0)));
                                         });
                                     })
            ->Arg(1'000'000)
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("wait_first_completed" + suffix).c_str(),
                                     [backend](benchmark::State& state) {
                                         on_loop(state, backend, [&](benchmark::State& s) {
                                             return wait_first_completed(
                                                 s, static_cast<std::size_t>(s.range(0)));
                                         });
                                     })
            ->Arg(10'000)
            ->Unit(benchmark::kMicrosecond);
        const auto add = [&](const char* label, corio::coro<> (*body)(benchmark::State&)) {
            benchmark::RegisterBenchmark((label + suffix).c_str(),
                                         [backend, body](benchmark::State& state) {
                                             on_loop(state, backend, body);
                                             state.SetItemsProcessed(state.iterations());
                                         });
        };
        add("queue_get_wait_for", queue_get_timed);
        add("queue_get_plain", queue_get_plain);
        add("race_of_two", race_of_two);
        add("create_task_eager/never_suspends", spawn_and_await<true, trivial_plus_one>);
        add("create_task/never_suspends", spawn_and_await<false, trivial_plus_one>);
        add("create_task_eager/suspends_once", spawn_and_await<true, yield_then_plus_one>);
        add("create_task/suspends_once", spawn_and_await<false, yield_then_plus_one>);
    }
}

const int registered = (register_all(), 0);

}  // namespace
