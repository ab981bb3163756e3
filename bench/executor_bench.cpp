// Benchmarks of the loop's executor (include/corio/executor.hpp): the round trip of one
// `co_await corio::to_thread(fn)` with an empty function (submit to a worker, the worker runs
// it, the result comes back through call_soon_threadsafe and wakes the loop), and the
// throughput of batches of jobs submitted together. Each runs on both backends; the backend's
// name is in the label. Times are wall-clock: the loop's thread sleeps in the reactor while the
// worker runs.

#include <corio/corio.hpp>

#include "support/backends.hpp"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace {

corio::coro<> round_trips(benchmark::State& state) {
    co_await corio::to_thread([] {});  // the first job starts the worker: not measured
    for (auto _ : state) co_await corio::to_thread([] {});
}

// One job at a time: the latency of a to_thread round trip.
void to_thread_round_trip(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    loop->run_until_complete(round_trips(state));
    state.SetItemsProcessed(state.iterations());
}

corio::coro<> batches(benchmark::State& state, int batch) {
    std::vector<corio::future<std::uint64_t>> jobs;
    jobs.reserve(static_cast<std::size_t>(batch));
    for (auto _ : state) {
        for (int i = 0; i < batch; ++i) {
            jobs.push_back(corio::to_thread([i] { return static_cast<std::uint64_t>(i) * 3; }));
        }
        std::uint64_t sum = 0;
        for (auto& job : jobs) sum += co_await job;
        benchmark::DoNotOptimize(sum);
        jobs.clear();
    }
}

// `batch` jobs submitted together, then all awaited: jobs per second through the pool.
void to_thread_batch(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    const auto batch = static_cast<int>(state.range(0));
    loop->run_until_complete(batches(state, batch));
    state.SetItemsProcessed(state.iterations() * batch);
    state.counters["ns_per_job"] =
        benchmark::Counter(static_cast<double>(state.iterations() * batch),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void register_all() {
    for (const auto& [name, backend_of_entry] : corio_bench::available_backends()) {
        const corio::backend backend = backend_of_entry;  // clang 14 cannot capture a binding
        const std::string& suffix = name;
        benchmark::RegisterBenchmark(("to_thread_round_trip" + suffix).c_str(),
                                     to_thread_round_trip, backend)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("to_thread_batch" + suffix).c_str(), to_thread_batch, backend)
            ->ArgName("jobs")
            ->Arg(64)
            ->Arg(1024)
            ->UseRealTime();
    }
}

const int registered = (register_all(), 0);

}  // namespace
