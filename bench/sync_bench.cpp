// Benchmarks of the synchronisation primitives and queues: a lock taken and released with
// nobody else around, a lock handed back and forth between two tasks, queue throughput with
// one producer and one consumer and with eight producers, and one event set with 100,000
// tasks waiting on it. Each runs on both backends; the backend's name is in the label.

#include <corio/corio.hpp>

#include "support/backends.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace std::chrono_literals;

// -- lock -----------------------------------------------------------------------------------

corio::coro<> acquire_release(benchmark::State& state, corio::lock& l) {
    for (auto _ : state) {
        co_await l.acquire();
        l.release();
    }
}

// Nobody else wants the lock: acquire completes in await_ready, without suspending.
void lock_uncontended(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    corio::lock l;
    loop->run_until_complete(acquire_release(state, l));
    state.SetItemsProcessed(state.iterations());
}

corio::coro<> lock_partner(corio::lock& l, const bool& stop) {
    // Hold the lock across a yield once, so that the measured task finds it taken and the two
    // tasks then hand it to each other on every acquire.
    co_await l.acquire();
    co_await corio::sleep(0s);
    l.release();
    while (!stop) {
        co_await l.acquire();
        l.release();
    }
}

corio::coro<> lock_measured(benchmark::State& state, corio::lock& l, bool& stop) {
    for (auto _ : state) {
        co_await l.acquire();
        l.release();
    }
    stop = true;
}

// Two tasks take turns: every release hands the lock to the other task, which resumes through
// the ready queue. Each iteration is two hand-overs.
void lock_contended(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    corio::lock l;
    bool stop = false;
    auto partner = loop->create_task(lock_partner(l, stop));
    loop->run_until_complete(lock_measured(state, l, stop));
    loop->run_until_complete(partner);
    state.SetItemsProcessed(state.iterations() * 2);
    state.counters["ns_per_handover"] =
        benchmark::Counter(static_cast<double>(state.iterations() * 2),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// -- queue ----------------------------------------------------------------------------------

constexpr std::int64_t batch = 1 << 16;

corio::coro<> producer(corio::queue<std::int64_t>& q, std::int64_t first, std::int64_t count) {
    for (std::int64_t i = first; i < first + count; ++i) co_await q.put(i);
}

corio::coro<> consumer(corio::queue<std::int64_t>& q, std::int64_t count, std::int64_t& sum) {
    for (std::int64_t i = 0; i < count; ++i) sum += co_await q.get();
}

corio::coro<> move_batches(benchmark::State& state, corio::queue<std::int64_t>& q, int producers) {
    std::int64_t sum = 0;
    for (auto _ : state) {
        std::vector<corio::task<>> tasks;
        tasks.push_back(corio::create_task(consumer(q, batch, sum)));
        const std::int64_t share = batch / producers;
        for (int p = 0; p < producers; ++p) {
            tasks.push_back(corio::create_task(producer(q, p * share, share)));
        }
        for (auto& t : tasks) co_await t;
    }
    benchmark::DoNotOptimize(sum);
}

// `producers` tasks put 65,536 items in all through a queue of `maxsize` (0: unbounded); one
// task gets them. Items per second.
void queue_throughput(benchmark::State& state, corio::backend backend, int producers) {
    auto loop = corio_bench::make_loop(state, backend);
    corio::queue<std::int64_t> q(static_cast<std::size_t>(state.range(0)));
    loop->run_until_complete(move_batches(state, q, producers));
    state.SetItemsProcessed(state.iterations() * batch);
}

// -- event ----------------------------------------------------------------------------------

struct broadcast_state {
    corio::event go;
    corio::event all_woken;
    corio::event release;
    std::size_t waiters = 0;
    std::size_t woken = 0;
};

// Waits for `go`, counts itself, then parks on `release`, so that what is measured is the
// wake-up (schedule, resume, suspend again), not the task finishing.
corio::coro<> waiter(broadcast_state& b) {
    co_await b.go.wait();
    if (++b.woken == b.waiters) b.all_woken.set();
    co_await b.release.wait();
}

corio::coro<> broadcast(benchmark::State& state, std::size_t waiters) {
    double set_seconds = 0;
    for (auto _ : state) {
        broadcast_state b;
        b.waiters = waiters;
        std::vector<corio::task<>> tasks;
        tasks.reserve(waiters);
        for (std::size_t i = 0; i < waiters; ++i) tasks.push_back(corio::create_task(waiter(b)));
        co_await corio::sleep(0s);  // every task now waits
        // Measured: set(), then every waiter resuming once.
        const auto started = std::chrono::steady_clock::now();
        b.go.set();
        const auto set_done = std::chrono::steady_clock::now();
        co_await b.all_woken.wait();
        const auto elapsed = std::chrono::steady_clock::now() - started;
        state.SetIterationTime(std::chrono::duration<double>(elapsed).count());
        set_seconds += std::chrono::duration<double>(set_done - started).count();
        b.release.set();
        for (auto& t : tasks) co_await t;
    }
    state.counters["set_ns_per_waiter"] =
        set_seconds * 1e9 / static_cast<double>(state.iterations() * waiters);
}

// One set() wakes 100,000 waiting tasks, which resume in order through the ready queue.
// ns_per_waiter: the whole wake-up, per task; set_ns_per_waiter: set() alone (unlinking and
// scheduling each waiter).
void event_broadcast(benchmark::State& state, corio::backend backend) {
    auto loop = corio_bench::make_loop(state, backend);
    const auto waiters = static_cast<std::size_t>(state.range(0));
    loop->run_until_complete(broadcast(state, waiters));
    state.SetItemsProcessed(state.iterations() * state.range(0));
    state.counters["ns_per_waiter"] =
        benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)),
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void register_all() {
    for (const auto& [name, backend_of_entry] : corio_bench::available_backends()) {
        const corio::backend backend = backend_of_entry;  // clang 14 cannot capture a binding
        const std::string& suffix = name;
        benchmark::RegisterBenchmark(("lock_uncontended" + suffix).c_str(), lock_uncontended,
                                     backend);
        benchmark::RegisterBenchmark(("lock_contended" + suffix).c_str(), lock_contended, backend);
        benchmark::RegisterBenchmark(("queue_1producer" + suffix).c_str(), queue_throughput,
                                     backend, 1)
            ->ArgName("maxsize")
            ->Arg(1)
            ->Arg(64)
            ->Arg(1024)
            ->Arg(0);
        benchmark::RegisterBenchmark(("queue_8producers" + suffix).c_str(), queue_throughput,
                                     backend, 8)
            ->ArgName("maxsize")
            ->Arg(64)
            ->Arg(1024)
            ->Arg(0);
        benchmark::RegisterBenchmark(("event_broadcast" + suffix).c_str(), event_broadcast, backend)
            ->Arg(100'000)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
    }
}

const int registered = (register_all(), 0);

}  // namespace
