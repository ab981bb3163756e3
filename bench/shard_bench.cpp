// Benchmarks of the mail between shards (include/corio/shard/): `co_await corio::submit_to(shard
// 1, fn)` from shard 0 of a two-shard `run_sharded` (each shard's thread pinned to a CPU of its
// own where there are two), measured as
//
// - submit_to_round_trip: one call at a time, an empty function returning 1: the latency of a
//   round trip (the request, the call on shard 1, the answer);
// - submit_to_coroutine_round_trip: the same with a function returning a `coro<int>`, which
//   runs on shard 1 as a task of its own (one task created there per call);
// - submit_to_throughput/in_flight:K: K tasks on shard 0, each making round trips, one after
//   the other, for as long as the benchmark runs: round trips per second (items_per_second)
//   and "messages/s", twice that (each round trip is a request and its answer);
// - submit_to_both_directions/in_flight:K: K such tasks on each shard, calling the other at
//   the same time: round trips per second in both directions together, and messages/s.
//
// One `run_sharded` per benchmark run (starting the threads is not measured): shard 0's main
// holds the benchmark's loop, shard 1's returns at once (or runs its callers, both
// directions) and shard 1 serves shard 0 until shard 0's main is done. Each runs on both
// backends; the backend's name is in the label. Times are wall-clock: two threads work.

#include <corio/corio.hpp>

#include "support/backends.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace {

constexpr corio::shard_id shard0{0};
constexpr corio::shard_id shard1{1};

corio::shard_options two_shards(corio::backend backend) {
    return corio::shard_options{.shards = 2, .pin = true, .loop = {.backend = backend}};
}

// Runs `main(shard)` on two shards; a failure ends the benchmark with its message.
template <class Main>
void run_two_shards(benchmark::State& state, corio::backend backend, const Main& main) {
    try {
        corio::run_sharded(main, two_shards(backend));
    } catch (const std::exception& e) {
        state.SkipWithError(e.what());
    }
}

void label_with_backend(benchmark::State& state) {
    state.SetLabel(std::string(corio::get_running_loop().backend_name()));
}

corio::coro<> nothing() { co_return; }

corio::coro<int> remote_one() { co_return 1; }

// Round trips, one at a time.
corio::coro<> round_trips(benchmark::State& state) {
    label_with_backend(state);
    int sum = co_await corio::submit_to(shard1, [] { return 1; });  // not measured
    for (auto _ : state) {
        sum += co_await corio::submit_to(shard1, [] { return 1; });
        benchmark::DoNotOptimize(sum);
    }
}

void submit_to_round_trip(benchmark::State& state, corio::backend backend) {
    run_two_shards(state, backend, [&state](corio::shard_id shard) {
        return shard == shard0 ? round_trips(state) : nothing();
    });
    state.SetItemsProcessed(state.iterations());
}

// Round trips to a remote coroutine (a task on shard 1 per call), one at a time.
corio::coro<> coroutine_round_trips(benchmark::State& state) {
    label_with_backend(state);
    int sum = co_await corio::submit_to(shard1, [] { return remote_one(); });  // not measured
    for (auto _ : state) {
        sum += co_await corio::submit_to(shard1, [] { return remote_one(); });
        benchmark::DoNotOptimize(sum);
    }
}

void submit_to_coroutine_round_trip(benchmark::State& state, corio::backend backend) {
    run_two_shards(state, backend, [&state](corio::shard_id shard) {
        return shard == shard0 ? coroutine_round_trips(state) : nothing();
    });
    state.SetItemsProcessed(state.iterations());
}

// The callers of one shard: `in_flight` tasks making round trips to the other shard until told
// to stop. `reached` is set when `completed` reaches `target`, which the measuring task moves
// on batch by batch, so that the callers never wait for each other (nor for the benchmark).
// Each batch ends where the last one's target was, not where the measuring task woke: the round
// trips completed meanwhile count in the next batch, so that every one counts.
struct callers {
    explicit callers(corio::shard_id to_shard, std::atomic<std::uint64_t>* publish_to = nullptr)
        : to(to_shard), published(publish_to) {}

    corio::shard_id to;
    std::uint64_t completed = 0;
    std::uint64_t target = 0;
    corio::event reached;
    std::vector<corio::task<>> tasks;
    std::atomic<std::uint64_t>* published;  // where `completed` is copied, if set
};

corio::coro<> call_repeatedly(callers& c, const std::atomic<bool>& stop) {
    while (!stop.load(std::memory_order_relaxed)) {
        c.completed +=
            static_cast<std::uint64_t>(co_await corio::submit_to(c.to, [] { return 1; }));
        if (c.completed >= c.target) c.reached.set();
        if (c.published != nullptr) c.published->store(c.completed, std::memory_order_relaxed);
    }
}

void start_callers(callers& c, std::int64_t in_flight, const std::atomic<bool>& stop) {
    c.tasks.reserve(static_cast<std::size_t>(in_flight));
    for (std::int64_t i = 0; i < in_flight; ++i) {
        c.tasks.push_back(corio::create_task(call_repeatedly(c, stop)));
    }
}

corio::coro<> wait_for(callers& c, std::uint64_t more) {
    c.target += more;
    if (c.completed >= c.target) co_return;
    c.reached.clear();
    co_await c.reached.wait();
}

corio::coro<> join_callers(callers& c) {
    for (corio::task<>& t : c.tasks) co_await t;
}

corio::coro<> stop_callers(callers& c, std::atomic<bool>& stop) {
    stop.store(true, std::memory_order_relaxed);
    co_await join_callers(c);
}

// Round trips per batch of the benchmark's loop: enough that the measuring task wakes rarely.
std::int64_t batch_of(std::int64_t in_flight) {
    return std::max<std::int64_t>(1024, 4 * in_flight);
}

void count_messages(benchmark::State& state, std::uint64_t round_trips) {
    state.SetItemsProcessed(static_cast<std::int64_t>(round_trips));
    state.counters["messages/s"] =
        benchmark::Counter(2 * static_cast<double>(round_trips), benchmark::Counter::kIsRate);
}

corio::coro<> throughput(benchmark::State& state) {
    label_with_backend(state);
    const std::int64_t in_flight = state.range(0);
    const std::int64_t batch = batch_of(in_flight);
    std::atomic<bool> stop{false};
    callers c(shard1);
    start_callers(c, in_flight, stop);
    co_await wait_for(c, static_cast<std::uint64_t>(4 * in_flight));  // not measured
    while (state.KeepRunningBatch(batch)) co_await wait_for(c, static_cast<std::uint64_t>(batch));
    co_await stop_callers(c, stop);
}

void submit_to_throughput(benchmark::State& state, corio::backend backend) {
    run_two_shards(state, backend, [&state](corio::shard_id shard) {
        return shard == shard0 ? throughput(state) : nothing();
    });
    count_messages(state, static_cast<std::uint64_t>(state.iterations()));
}

// Both directions: shard 1's callers run from its main's start until shard 0 says stop; shard
// 0 counts their round trips (published by shard 1) over its own measured span.
struct both_directions {
    std::atomic<bool> stop{false};
    std::atomic<bool> shard1_started{false};
    std::atomic<std::uint64_t> shard1_completed{0};
};

corio::coro<> call_back(std::int64_t in_flight, both_directions& both) {
    callers c(shard0, &both.shard1_completed);
    start_callers(c, in_flight, both.stop);
    both.shard1_started.store(true, std::memory_order_release);
    co_await join_callers(c);  // until shard 0 says stop
}

corio::coro<> throughput_both_ways(benchmark::State& state, both_directions& both,
                                   std::uint64_t& shard1_round_trips) {
    label_with_backend(state);
    const std::int64_t in_flight = state.range(0);
    const std::int64_t batch = batch_of(in_flight);
    callers c(shard1);
    start_callers(c, in_flight, both.stop);
    // Not measured: until shard 1's callers have started too.
    do {
        co_await wait_for(c, static_cast<std::uint64_t>(4 * in_flight));
    } while (!both.shard1_started.load(std::memory_order_acquire));
    const std::uint64_t before = both.shard1_completed.load(std::memory_order_relaxed);
    while (state.KeepRunningBatch(batch)) co_await wait_for(c, static_cast<std::uint64_t>(batch));
    shard1_round_trips = both.shard1_completed.load(std::memory_order_relaxed) - before;
    co_await stop_callers(c, both.stop);
}

void submit_to_both_directions(benchmark::State& state, corio::backend backend) {
    both_directions both;
    std::uint64_t shard1_round_trips = 0;
    const std::int64_t in_flight = state.range(0);  // read here: shard 1 has no business in `state`
    run_two_shards(state, backend, [&](corio::shard_id shard) {
        return shard == shard0 ? throughput_both_ways(state, both, shard1_round_trips)
                               : call_back(in_flight, both);
    });
    count_messages(state, static_cast<std::uint64_t>(state.iterations()) + shard1_round_trips);
}

void register_all() {
    for (const auto& [name, backend_of_entry] : corio_bench::available_backends()) {
        const corio::backend backend = backend_of_entry;  // clang 14 cannot capture a binding
        const std::string& suffix = name;
        benchmark::RegisterBenchmark(("submit_to_round_trip" + suffix).c_str(),
                                     submit_to_round_trip, backend)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("submit_to_coroutine_round_trip" + suffix).c_str(),
                                     submit_to_coroutine_round_trip, backend)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("submit_to_throughput" + suffix).c_str(),
                                     submit_to_throughput, backend)
            ->ArgName("in_flight")
            ->Arg(1)
            ->Arg(16)
            ->Arg(256)
            ->Arg(4096)
            ->UseRealTime();
        benchmark::RegisterBenchmark(("submit_to_both_directions" + suffix).c_str(),
                                     submit_to_both_directions, backend)
            ->ArgName("in_flight")
            ->Arg(16)
            ->Arg(256)
            ->UseRealTime();
    }
}

const int registered = (register_all(), 0);

}  // namespace
