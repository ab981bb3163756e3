// One loop per core (include/corio/shard/): run_sharded and submit_to. Results in shard order
// for 1, 2 and 4 shards (4 on fewer CPUs too), this_shard() and shard_count() inside and
// outside, pinning and the caller's affinity given back; submit_to by the hundred thousand,
// a thousand calls in flight at once both ways, to one's own shard, nested, with results of
// every kind and inside combinators; exceptions crossing shards, a failing main cancelling the
// others, misuse; cancellation crossing shards (a timeout, a function skipped, a cancellation
// too late, a remote task that swallows it, tasks left over when the mains return and their
// clean-up); SO_REUSEPORT servers on every shard; no descriptor, thread or frame left behind;
// call graphs and signal dumps that name the shard; pin = false, virtual time. The name holds
// "threadsafe": CI also runs it under ThreadSanitizer (`ctest -R threadsafe`). CTest runs it
// once per backend (CORIO_BACKEND, which every shard's loop picks up).
#include <corio/shard/run_sharded.hpp>
#include <corio/shard/submit_to.hpp>

#include "support/catch.hpp"
#include "support/deadline.hpp"
#include "support/debug_helpers.hpp"
#include "support/test_helpers.hpp"

#include <corio/debug/call_graph.hpp>
#include <corio/errors.hpp>
#include <corio/gather.hpp>
#include <corio/net/connection.hpp>
#include <corio/net/server.hpp>
#include <corio/net/stream.hpp>
#include <corio/run.hpp>
#include <corio/sleep.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

using namespace std::chrono_literals;
using corio_test::frame_leak_check;
using corio_test::stopwatch;

namespace {

constexpr corio::shard_id shard0{0};
constexpr corio::shard_id shard1{1};

struct test_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct not_a_std_exception {
    int code;
};

std::size_t index_of(corio::shard_id shard) { return static_cast<std::size_t>(shard); }

// The shard running on this thread.
std::size_t here() { return index_of(corio::this_shard()); }

corio::shard_options shards(std::size_t count) {
    corio::shard_options options;
    options.shards = count;
    return options;
}

// Counts its live instances, from any thread: put one in a coroutine frame (or make it a
// result) to see that every frame (or result) is gone once run_sharded returns.
struct probe {
    static inline std::atomic<int> alive{0};
    probe() noexcept { alive.fetch_add(1); }
    probe(const probe&) = delete;
    probe& operator=(const probe&) = delete;
    ~probe() { alive.fetch_sub(1); }
};

// Each shard's main within a deadline, so that a lost message fails the test instead of
// hanging the executable until CTest kills it. Generous: shards that busy-poll for each other
// go much slower when other processes compete for the CPUs (ctest -j2 under ThreadSanitizer).
constexpr auto deadline = 60s;

template <class T>
corio::coro<T> within_deadline(corio::coro<T> main) {
    co_return co_await corio::wait_for(std::move(main), deadline);
}
corio::coro<> within_deadline(corio::coro<> main) {
    co_await corio::wait_for(std::move(main), deadline);
}

template <class Main>
auto run_sharded_within(Main main, const corio::shard_options& options) {
    return corio::run_sharded(
        [main = std::move(main)](corio::shard_id shard) { return within_deadline(main(shard)); },
        options);
}

// Polls (on the loop) until `done()` holds, at most 20 s; whether it did.
template <class F>
corio::coro<bool> until(F done) {
    const stopwatch clock;
    while (!done()) {
        if (clock.elapsed() > 20s) co_return false;
        co_await corio::sleep(1ms);
    }
    co_return true;
}

// Blocks this thread (and its loop) until `flag` is set, at most 20 s; whether it was.
bool spin_until(const std::atomic<bool>& flag) {
    const stopwatch clock;
    while (!flag.load()) {
        if (clock.elapsed() > 20s) return false;
        std::this_thread::yield();
    }
    return true;
}

// submit_to, in a coroutine of its own (to be made a task).
template <class T, class F>
corio::coro<T> ask(corio::shard_id to, F fn) {
    co_return co_await corio::submit_to(to, std::move(fn));
}

// The CPUs this thread may run on.
std::vector<int> cpus_of_this_thread() {
    cpu_set_t set;
    CPU_ZERO(&set);
    std::vector<int> cpus;
    if (::pthread_getaffinity_np(::pthread_self(), sizeof set, &set) != 0) return cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
    return cpus;
}

std::size_t entries_of(const char* directory) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(directory)) ++n;
    return n;
}
std::size_t open_fds() { return entries_of("/proc/self/fd"); }
std::size_t thread_count() { return entries_of("/proc/self/task"); }

// The process's thread count once it has come down to `expected` (io_uring's kernel workers
// leave a little after their ring is closed), or what it is after 3 s.
std::size_t thread_count_settled(std::size_t expected) {
    const stopwatch clock;
    std::size_t n = thread_count();
    while (n > expected && clock.elapsed() < 3s) {
        std::this_thread::sleep_for(5ms);
        n = thread_count();
    }
    return n;
}

// --- 1. run_sharded: results, this_shard, shard_count, pinning -----------------------------

struct shard_report {
    std::size_t given = 0;        // the shard_id main was called with
    std::size_t this_shard = 0;   // this_shard() as main starts
    std::size_t after_sleep = 0;  // and after a suspension
    std::size_t count = 0;        // shard_count()
    std::thread::id thread;
    std::vector<int> cpus;  // the thread's affinity
};

corio::coro<shard_report> report(corio::shard_id shard) {
    shard_report r;
    r.given = index_of(shard);
    r.this_shard = here();
    r.count = corio::shard_count();
    r.thread = std::this_thread::get_id();
    r.cpus = cpus_of_this_thread();
    co_await corio::sleep(1ms);
    r.after_sleep = here();
    co_return r;
}

TEST_CASE("run_sharded: each shard's result in shard order, for 1, 2 and 4 shards",
          "[shard][run_sharded]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<int> allowed = cpus_of_this_thread();
    REQUIRE_FALSE(allowed.empty());
    CHECK(corio::shard_count() == 0);
    CHECK_THROWS_AS((void)corio::this_shard(), std::logic_error);
    for (const std::size_t n : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
        INFO(n << " shards on " << allowed.size() << " CPUs");
        const std::vector<shard_report> reports = run_sharded_within(report, shards(n));
        REQUIRE(reports.size() == n);
        std::set<std::thread::id> threads;
        for (std::size_t i = 0; i < n; ++i) {
            INFO("shard " << i);
            CHECK(reports[i].given == i);
            CHECK(reports[i].this_shard == i);
            CHECK(reports[i].after_sleep == i);
            CHECK(reports[i].count == n);
            threads.insert(reports[i].thread);
            // Pinned (the default) to the i-th allowed CPU, round robin when there are more
            // shards than CPUs.
            const std::vector<int> expected_cpus{allowed[i % allowed.size()]};
            CHECK(reports[i].cpus == expected_cpus);
        }
        CHECK(threads.size() == n);                              // one thread per shard
        CHECK(reports[0].thread == std::this_thread::get_id());  // shard 0 is the caller's
        CHECK(cpus_of_this_thread() == allowed);                 // the caller's affinity given back
        CHECK(corio::shard_count() == 0);
        CHECK_THROWS_AS((void)corio::this_shard(), std::logic_error);
        CHECK_THROWS_AS(corio::get_running_loop(), std::runtime_error);
    }
}

TEST_CASE("run_sharded: void mains; shards = 0 is one shard per CPU", "[shard][run_sharded]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::size_t cpus = cpus_of_this_thread().size();
    std::vector<std::atomic<int>> ran(8);
    std::atomic<std::size_t> counted{0};
    auto main = [&](corio::shard_id shard) -> corio::coro<> {
        co_await corio::sleep(1ms);
        counted.store(corio::shard_count());
        if (index_of(shard) < ran.size()) ran[index_of(shard)].fetch_add(1);
    };
    static_assert(std::is_void_v<decltype(run_sharded_within(main, shards(2)))>);
    run_sharded_within(main, shards(2));
    CHECK(ran[0] == 1);
    CHECK(ran[1] == 1);
    CHECK(ran[2] == 0);
    CHECK(counted == 2);

    // shards = 0: as many as the CPUs this thread may run on.
    const std::vector<std::size_t> indices = run_sharded_within(
        [](corio::shard_id shard) -> corio::coro<std::size_t> {
            co_await corio::sleep(0s);
            co_return index_of(shard) * 10 + corio::shard_count();
        },
        corio::shard_options{});
    REQUIRE(indices.size() == cpus);
    for (std::size_t i = 0; i < cpus; ++i) CHECK(indices[i] == i * 10 + cpus);
}

// --- 2. submit_to: round trips, many in flight, own shard, nested -------------------------

TEST_CASE("submit_to: 100,000 round trips from shard 0 to shard 1", "[shard][submit_to]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr long rounds = 100'000;
    std::atomic<long> elsewhere{0};  // calls that did not run on shard 1
    const stopwatch clock;
    const std::vector<long> sums = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<long> {
            if (shard != shard0) co_return -1;
            long sum = 0;
            for (long i = 0; i < rounds; ++i) {
                sum += co_await corio::submit_to(shard1, [i, &elsewhere] {
                    if (here() != 1) elsewhere.fetch_add(1);
                    return i;
                });
            }
            co_return sum;
        },
        shards(2));
    INFO("took " << std::chrono::duration<double>(clock.elapsed()).count() << " s");
    const std::vector<long> expected{rounds * (rounds - 1) / 2, -1};
    CHECK(sums == expected);
    CHECK(elsewhere == 0);
}

// Calls `calls` functions on `to`, one after the other; the sum of what they return (each its
// value twice, plus the shard it ran on).
corio::coro<long> ask_many(corio::shard_id to, long first, int calls) {
    long sum = 0;
    for (int i = 0; i < calls; ++i) {
        const long value = first + i;
        sum += co_await corio::submit_to(
            to, [value] { return value * 2 + static_cast<long>(corio::this_shard()); });
    }
    co_return sum;
}

// A remote coroutine that waits until `count` of its kind have arrived on its shard: it only
// returns if that many calls are in flight at once. What it returns: its shard, or -1 if it
// gave up.
corio::coro<int> meet(corio::shard_id to, std::atomic<int>& arrived, int count) {
    co_return co_await corio::submit_to(to, [&arrived, count]() -> corio::coro<int> {
        arrived.fetch_add(1);
        const stopwatch clock;
        while (arrived.load() < count) {
            if (clock.elapsed() > 20s) co_return -1;
            co_await corio::sleep(1ms);
        }
        co_return static_cast<int>(here());
    });
}

TEST_CASE("submit_to: a thousand calls in flight at once, in both directions",
          "[shard][submit_to]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr int tasks = 1000;
    constexpr int calls = 100;
    std::array<std::atomic<int>, 2> arrived{};
    struct result {
        int met = 0;        // remote coroutines that met all the others on the peer
        long sum = 0;       // of the ask_many tasks
        long expected = 0;  // what it should be
    };
    const std::vector<result> results = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<result> {
            const std::size_t self = index_of(shard);
            const corio::shard_id peer{1 - self};
            result r;
            // A thousand remote coroutines waiting for each other, on each shard at once.
            std::vector<corio::task<int>> meetings;
            for (int i = 0; i < tasks; ++i) {
                meetings.push_back(corio::create_task(meet(peer, arrived[1 - self], tasks)));
            }
            for (auto& t : meetings) {
                if (co_await t == static_cast<int>(1 - self)) ++r.met;
            }
            // A thousand tasks of many plain calls each, both ways at once.
            std::vector<corio::task<long>> askers;
            for (int i = 0; i < tasks; ++i) {
                askers.push_back(
                    corio::create_task(ask_many(peer, static_cast<long>(i) * calls, calls)));
            }
            for (auto& t : askers) r.sum += co_await t;
            const long total = static_cast<long>(tasks) * calls;
            r.expected = total * (total - 1) + total * static_cast<long>(1 - self);
            co_return r;
        },
        shards(2));
    REQUIRE(results.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        INFO("shard " << i);
        CHECK(results[i].met == tasks);
        CHECK(results[i].sum == results[i].expected);
        CHECK(arrived[i] == tasks);
    }
}

TEST_CASE("submit_to: four shards on fewer CPUs pass calls around a ring", "[shard][submit_to]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr std::size_t n = 4;
    constexpr int tasks = 10;
    constexpr int calls = 100;
    const std::vector<long> sums = run_sharded_within(
        [](corio::shard_id shard) -> corio::coro<long> {
            const corio::shard_id next{(index_of(shard) + 1) % n};
            std::vector<corio::task<long>> askers;
            for (int i = 0; i < tasks; ++i) {
                askers.push_back(
                    corio::create_task(ask_many(next, static_cast<long>(i) * calls, calls)));
            }
            long sum = 0;
            for (auto& t : askers) sum += co_await t;
            co_return sum;
        },
        shards(n));
    REQUIRE(sums.size() == n);
    const long total = static_cast<long>(tasks) * calls;
    for (std::size_t i = 0; i < n; ++i) {
        INFO("shard " << i);
        CHECK(sums[i] == total * (total - 1) + total * static_cast<long>((i + 1) % n));
    }
}

TEST_CASE("submit_to: to one's own shard, nested, void and move-only results, inside gather",
          "[shard][submit_to]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<std::size_t> void_ran_on{99};
    const std::vector<std::vector<std::string>> logs = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<std::vector<std::string>> {
            std::vector<std::string> log;
            if (shard != shard0) co_return log;
            // To its own shard: a function and a coroutine, through the same queues.
            const std::size_t own = co_await corio::submit_to(shard0, [] { return here(); });
            log.push_back("own function on " + std::to_string(own));
            const std::size_t own_coro =
                co_await corio::submit_to(corio::this_shard(), []() -> corio::coro<std::size_t> {
                    co_await corio::sleep(1ms);
                    co_return here();
                });
            log.push_back("own coroutine on " + std::to_string(own_coro));
            // Nested: shard 1's coroutine calls back into shard 0, which calls shard 1 again.
            auto nested = []() -> corio::coro<std::string> {
                std::string path = "1:" + std::to_string(here());
                const std::size_t back = co_await corio::submit_to(shard0, [] { return here(); });
                path += " back:" + std::to_string(back);
                auto deeper = []() -> corio::coro<std::string> {
                    co_await corio::sleep(1ms);
                    std::string leaf = co_await corio::submit_to(
                        shard1, [] { return "leaf:" + std::to_string(here()); });
                    co_return "0:" + std::to_string(here()) + " " + leaf;
                };
                const std::string rest = co_await corio::submit_to(shard0, deeper);
                co_return path + " " + rest;
            };
            log.push_back(co_await corio::submit_to(shard1, nested));
            // Void.
            co_await corio::submit_to(shard1, [&void_ran_on] { void_ran_on = here(); });
            co_await corio::submit_to(shard1, []() -> corio::coro<> { co_await corio::sleep(0s); });
            log.push_back("void on " + std::to_string(void_ran_on.load()));
            // Move-only, both ways: a captured unique_ptr travels there and back.
            auto value = std::make_unique<int>(5);
            auto give_back = [p = std::move(value)]() mutable {
                *p += static_cast<int>(here());
                return std::move(p);
            };
            const std::unique_ptr<int> back =
                co_await corio::submit_to(shard1, std::move(give_back));
            log.push_back("move-only " + std::to_string(back ? *back : -1));
            const std::string text =
                co_await corio::submit_to(shard1, [] { return std::string(100, 'x'); });
            log.push_back("text of " + std::to_string(text.size()));
            // Inside a combinator, which takes the awaiter by value.
            const auto both =
                co_await corio::gather(corio::submit_to(shard1, [] { return here(); }),
                                       corio::submit_to(shard0, [] { return here(); }));
            log.push_back("gather " + std::to_string(std::get<0>(both)) + " " +
                          std::to_string(std::get<1>(both)));
            co_return log;
        },
        shards(2));
    REQUIRE(logs.size() == 2);
    const std::vector<std::string> expected{
        "own function on 0", "own coroutine on 0", "1:1 back:0 0:0 leaf:1",
        "void on 1",         "move-only 6",        "text of 100",
        "gather 1 0"};
    CHECK(logs[0] == expected);
    CHECK(logs[1].empty());
}

TEST_CASE("submit_to: a single shard submits to itself", "[shard][submit_to]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<std::string> results = run_sharded_within(
        [](corio::shard_id) -> corio::coro<std::string> {
            std::string out;
            long sum = 0;
            for (long i = 0; i < 1000; ++i) {
                sum += co_await corio::submit_to(shard0, [i] { return i; });
            }
            out += "sum " + std::to_string(sum);
            try {
                (void)corio::submit_to(shard1, [] { return 0; });
                out += ", shard 1 accepted";
            } catch (const std::invalid_argument&) {
                out += ", no shard 1";
            }
            co_return out;
        },
        shards(1));
    const std::vector<std::string> expected{"sum 499500, no shard 1"};
    CHECK(results == expected);
}

// --- 3. errors -------------------------------------------------------------------------------

corio::coro<int> fail_after_sleep() {
    co_await corio::sleep(1ms);
    throw test_error("coroutine on shard " + std::to_string(here()));
}

TEST_CASE("submit_to: the remote work's exception reaches the caller, same type and message",
          "[shard][submit_to][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<std::vector<std::string>> logs = run_sharded_within(
        [](corio::shard_id shard) -> corio::coro<std::vector<std::string>> {
            std::vector<std::string> log;
            if (shard != shard0) co_return log;
            try {
                (void)co_await corio::submit_to(shard1, []() -> int {
                    throw test_error("function on shard " + std::to_string(here()));
                });
                log.push_back("function returned");
            } catch (const test_error& e) {
                log.push_back(e.what());
            }
            try {
                (void)co_await corio::submit_to(shard1, [] { return fail_after_sleep(); });
                log.push_back("coroutine returned");
            } catch (const test_error& e) {
                log.push_back(e.what());
            }
            try {
                co_await corio::submit_to(shard1, [] { throw not_a_std_exception{42}; });
                log.push_back("void function returned");
            } catch (const not_a_std_exception& e) {
                log.push_back("not a std::exception: " + std::to_string(e.code));
            }
            try {
                co_await corio::submit_to(shard1, []() -> corio::coro<> {
                    co_await corio::sleep(0s);
                    throw std::system_error(ECONNRESET, std::system_category(), "remote");
                });
                log.push_back("void coroutine returned");
            } catch (const std::system_error& e) {
                log.push_back("system_error " + std::to_string(e.code().value() == ECONNRESET));
            }
            // The shards still talk after all that.
            const std::size_t after = co_await corio::submit_to(shard1, [] { return here(); });
            log.push_back("then " + std::to_string(after));
            co_return log;
        },
        shards(2));
    REQUIRE(logs.size() == 2);
    const std::vector<std::string> expected{"function on shard 1", "coroutine on shard 1",
                                            "not a std::exception: 42", "system_error 1", "then 1"};
    CHECK(logs[0] == expected);
}

TEST_CASE("run_sharded: a failing main cancels the others and its error is rethrown",
          "[shard][run_sharded][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<int> cancelled{0};
    const stopwatch clock;
    std::string caught;
    try {
        run_sharded_within(
            [&](corio::shard_id shard) -> corio::coro<int> {
                probe p;
                if (shard == shard1) {
                    co_await corio::sleep(10ms);
                    throw test_error("shard 1 failed");
                }
                bool was_cancelled = false;
                try {
                    co_await corio::sleep(100s);
                } catch (const corio::cancelled_error&) {
                    cancelled.fetch_add(1);
                    was_cancelled = true;
                }
                // Shard 2 fails too, after the first failure: that one is what is rethrown.
                if (was_cancelled && index_of(shard) == 2) throw test_error("shard 2 failed later");
                if (was_cancelled) throw corio::cancelled_error("rethrown");
                co_return 0;
            },
            shards(3));
        caught = "returned";
    } catch (const test_error& e) {
        caught = e.what();
    }
    CHECK(caught == "shard 1 failed");
    CHECK(cancelled == 2);
    CHECK(clock.elapsed() < 5s);
    CHECK(probe::alive == 0);
}

TEST_CASE("run_sharded: a main failing after the others returned still fails the run",
          "[shard][run_sharded][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    CHECK_THROWS_WITH(run_sharded_within(
                          [](corio::shard_id shard) -> corio::coro<int> {
                              if (shard == shard0) co_return 0;
                              co_await corio::sleep(20ms);
                              throw test_error("late failure");
                          },
                          shards(2)),
                      "late failure");
}

TEST_CASE("run_sharded: a main that throws instead of returning a coroutine",
          "[shard][run_sharded][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<int> cancelled{0};
    const stopwatch clock;
    auto sleeper = [&]() -> corio::coro<> {
        try {
            co_await corio::sleep(100s);
        } catch (const corio::cancelled_error&) {
            cancelled.fetch_add(1);
            throw;
        }
    };
    CHECK_THROWS_WITH(run_sharded_within(
                          [&](corio::shard_id shard) {
                              if (shard == shard1) throw test_error("no main for shard 1");
                              return sleeper();
                          },
                          shards(2)),
                      "no main for shard 1");
    CHECK(cancelled == 1);
    CHECK(clock.elapsed() < 5s);
}

TEST_CASE("submit_to and run_sharded refuse misuse", "[shard][submit_to][errors]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    // Outside run_sharded: no loop, or a loop of corio::run.
    CHECK_THROWS_AS((void)corio::submit_to(shard0, [] { return 0; }), std::logic_error);
    const std::string in_run = corio::run([]() -> corio::coro<std::string> {
        std::string out;
        out += std::to_string(corio::shard_count());
        try {
            (void)corio::this_shard();
            out += " this_shard";
        } catch (const std::logic_error&) {
            out += " no this_shard";
        }
        try {
            (void)co_await corio::submit_to(shard0, [] { return 0; });
            out += " submitted";
        } catch (const std::logic_error&) {
            out += " no submit_to";
        }
        try {
            corio::run_sharded([](corio::shard_id) -> corio::coro<> { co_return; }, shards(2));
            out += " nested";
        } catch (const std::runtime_error&) {
            out += " no run_sharded";
        }
        co_return out;
    }());
    CHECK(in_run == "0 no this_shard no submit_to no run_sharded");

    // Inside: shards out of range, run_sharded from a shard.
    const std::vector<std::string> results = run_sharded_within(
        [](corio::shard_id shard) -> corio::coro<std::string> {
            std::string out;
            if (shard != shard0) co_return out;
            const std::vector<std::size_t> bad_shards{2, 1000, SIZE_MAX};
            for (const std::size_t bad : bad_shards) {
                try {
                    (void)corio::submit_to(corio::shard_id{bad}, [] { return 0; });
                    out += "accepted ";
                } catch (const std::invalid_argument&) {
                    out += "invalid ";
                }
            }
            try {
                corio::run_sharded([](corio::shard_id) -> corio::coro<> { co_return; }, shards(2));
                out += "nested";
            } catch (const std::runtime_error&) {
                out += "no nesting";
            }
            // And the good shards still answer.
            out += ", " + std::to_string(co_await corio::submit_to(shard1, [] { return here(); }));
            co_return out;
        },
        shards(2));
    REQUIRE(results.size() == 2);
    CHECK(results[0] == "invalid invalid invalid no nesting, 1");

    // Too many shards: refused before any runs.
    std::atomic<int> mains{0};
    const std::size_t threads = thread_count();
    CHECK_THROWS_AS(corio::run_sharded(
                        [&](corio::shard_id) -> corio::coro<> {
                            mains.fetch_add(1);
                            co_return;
                        },
                        shards(corio::max_shards + 1)),
                    std::invalid_argument);
    CHECK(mains == 0);
    CHECK(thread_count() <= threads);  // no thread was started
}

// --- 4. cancellation across shards ------------------------------------------------------------

TEST_CASE("submit_to: a timeout cancels the remote coroutine", "[shard][submit_to][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<bool> remote_cancelled{false};
    struct seen {
        std::string outcome;
        bool remote_cancelled_when_resumed = false;
        std::chrono::steady_clock::duration took{};
    };
    const std::vector<seen> results = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<seen> {
            seen s;
            if (shard != shard0) co_return s;
            auto slow = [&remote_cancelled]() -> corio::coro<int> {
                probe p;
                try {
                    co_await corio::sleep(10s);
                } catch (const corio::cancelled_error&) {
                    remote_cancelled = true;
                    throw;
                }
                co_return 1;
            };
            const stopwatch clock;
            try {
                (void)co_await corio::wait_for(corio::submit_to(shard1, slow), 50ms);
                s.outcome = "returned";
            } catch (const corio::timeout_error&) {
                s.outcome = "timeout";
            }
            s.took = clock.elapsed();
            // The caller resumes only once shard 1 has answered: the remote task is done.
            s.remote_cancelled_when_resumed = remote_cancelled.load();
            co_return s;
        },
        shards(2));
    REQUIRE(results.size() == 2);
    CHECK(results[0].outcome == "timeout");
    CHECK(results[0].remote_cancelled_when_resumed);
    CHECK(results[0].took >= 50ms);
    CHECK(results[0].took < 5s);
    CHECK(probe::alive == 0);
}

TEST_CASE("submit_to: cancelled before the remote shard got to it, the work is skipped",
          "[shard][submit_to][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<bool> blocking{false};
    std::atomic<bool> release{false};
    std::atomic<bool> function_ran{false};
    std::atomic<bool> coroutine_ran{false};
    const std::vector<std::string> results = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<std::string> {
            std::string out;
            if (shard != shard0) co_return out;
            // Shard 1 is kept busy in a function until `release`.
            corio::task<int> blocker = corio::create_task(ask<int>(shard1, [&] {
                blocking = true;
                return spin_until(release) ? 1 : -1;
            }));
            if (!co_await until([&] { return blocking.load(); })) co_return "never blocked";
            corio::task<int> function = corio::create_task(ask<int>(shard1, [&] {
                function_ran = true;
                return 2;
            }));
            corio::task<int> coroutine =
                corio::create_task(ask<int>(shard1, [&]() -> corio::coro<int> {
                    coroutine_ran = true;
                    co_return 3;
                }));
            co_await corio_test::yield(3);  // both requests are on their way
            function.cancel("skip the function");
            coroutine.cancel("skip the coroutine");
            co_await corio_test::yield(3);
            // Still waiting for shard 1's answer, which cannot come yet.
            out += function.done() || coroutine.done() ? "resumed early" : "waiting";
            release = true;
            try {
                out += " function " + std::to_string(co_await function);
            } catch (const corio::cancelled_error& e) {
                out += " function cancelled (" + std::string(e.what()) + ")";
            }
            try {
                out += " coroutine " + std::to_string(co_await coroutine);
            } catch (const corio::cancelled_error& e) {
                out += " coroutine cancelled (" + std::string(e.what()) + ")";
            }
            out += " blocker " + std::to_string(co_await blocker);
            co_return out;
        },
        shards(2));
    REQUIRE(results.size() == 2);
    CHECK(results[0] == "waiting function cancelled (skip the function) coroutine cancelled (skip "
                        "the coroutine) blocker 1");
    CHECK_FALSE(function_ran);
    CHECK_FALSE(coroutine_ran);
}

TEST_CASE("submit_to: a cancellation that comes after the work is done drops the result",
          "[shard][submit_to][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<bool> started{false};
    std::atomic<bool> go{false};
    std::atomic<bool> done{false};
    const std::vector<std::string> results = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<std::string> {
            if (shard != shard0) co_return "";
            corio::task<std::unique_ptr<probe>> late =
                corio::create_task(ask<std::unique_ptr<probe>>(shard1, [&] {
                    started = true;
                    (void)spin_until(go);
                    auto result = std::make_unique<probe>();
                    done = true;
                    return result;
                }));
            if (!co_await until([&] { return started.load(); })) co_return "never started";
            // From here this thread does not let its loop run until the work is done: the
            // answer cannot have come back when the cancellation leaves.
            go = true;
            if (!spin_until(done)) co_return "never done";
            late.cancel();
            std::string out;
            try {
                const std::unique_ptr<probe> result = co_await std::move(late);
                out = result ? "a result" : "an empty result";
            } catch (const corio::cancelled_error&) {
                out = "cancelled";
            }
            co_return out;
        },
        shards(2));
    REQUIRE(results.size() == 2);
    CHECK(results[0] == "cancelled");
    CHECK(probe::alive == 0);  // the dropped result was destroyed
}

TEST_CASE("submit_to: a remote coroutine that swallows the cancellation gives its value",
          "[shard][submit_to][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<int> started{0};
    std::atomic<int> swallowed{0};
    std::string first_message;  // written on shard 1, read once run_sharded returned
    const std::vector<std::string> results = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<std::string> {
            if (shard != shard0) co_return "";
            auto stubborn = [&]() -> corio::coro<int> {
                started.fetch_add(1);
                try {
                    co_await corio::sleep(10s);
                } catch (const corio::cancelled_error& e) {
                    if (swallowed.fetch_add(1) == 0) first_message = e.what();
                }
                co_return 7;
            };
            std::string out;
            // A task awaiting it is cancelled: as with an awaited task, the value comes back.
            corio::task<int> asker = corio::create_task(ask<int>(shard1, stubborn));
            if (!co_await until([&] { return started.load() == 1; })) co_return "never started";
            asker.cancel("stop, please");
            try {
                out += "task " + std::to_string(co_await asker);
            } catch (const corio::cancelled_error&) {
                out += "task cancelled";
            }
            // A timeout: wait_for returns the value the work gave anyway.
            const stopwatch clock;
            try {
                out += ", wait_for " + std::to_string(co_await corio::wait_for(
                                           corio::submit_to(shard1, stubborn), 20ms));
            } catch (const corio::timeout_error&) {
                out += ", wait_for timed out";
            }
            out += clock.elapsed() < 5s ? " quickly" : " slowly";
            co_return out;
        },
        shards(2));
    REQUIRE(results.size() == 2);
    CHECK(results[0] == "task 7, wait_for 7 quickly");
    CHECK(swallowed == 2);
    CHECK(first_message == "stop, please");  // the cancellation's message crossed over
}

// A task left over when the mains return: it waits in submit_to for a remote coroutine that
// would sleep 100 s. Counts who saw the cancellation.
corio::coro<> leftover(corio::shard_id to, std::atomic<int>& remote_started,
                       std::atomic<int>& remote_cancelled, std::atomic<int>& caller_cancelled) {
    probe p;
    try {
        co_await corio::submit_to(to, [&]() -> corio::coro<> {
            probe q;
            remote_started.fetch_add(1);
            try {
                co_await corio::sleep(100s);
            } catch (const corio::cancelled_error&) {
                remote_cancelled.fetch_add(1);
                throw;
            }
        });
    } catch (const corio::cancelled_error&) {
        caller_cancelled.fetch_add(1);
        throw;
    }
}

// Calls the other shard for ever.
corio::coro<> chatter(corio::shard_id to, std::atomic<long>& calls) {
    probe p;
    for (;;) {
        co_await corio::submit_to(to, [&calls] { calls.fetch_add(1); });
    }
}

// Once cancelled, cleans up with a call to the other shard (which must still serve it).
corio::coro<> cleans_up(corio::shard_id to, std::atomic<int>& cleaned) {
    probe p;
    bool cancelled = false;
    try {
        co_await corio::sleep(100s);
    } catch (const corio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {
        const int answer = co_await corio::submit_to(to, [] { return 41; });
        cleaned.store(answer + 1);
    }
}

TEST_CASE("run_sharded: tasks left in submit_to when the mains return are cancelled",
          "[shard][run_sharded][cancel]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<int> remote_started{0};
    std::atomic<int> remote_cancelled{0};
    std::atomic<int> caller_cancelled{0};
    std::atomic<long> calls{0};
    std::atomic<int> cleaned{0};
    const stopwatch clock;
    const std::vector<bool> ok = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<bool> {
            const corio::shard_id peer{1 - index_of(shard)};
            (void)corio::create_task(
                leftover(peer, remote_started, remote_cancelled, caller_cancelled));
            (void)corio::create_task(chatter(peer, calls));
            if (shard == shard0) (void)corio::create_task(cleans_up(peer, cleaned));
            const bool both = co_await until([&] { return remote_started.load() == 2; });
            // Shard 1 returns at once, shard 0 a little later: shard 1 is idle by then, and
            // must still answer shard 0's clean-up.
            if (shard == shard0) co_await corio::sleep(20ms);
            // And one created as its main returns (it may or may not get to send its call).
            (void)corio::create_task(ask<std::size_t>(peer, [] { return here(); }));
            co_return both;
        },
        shards(2));
    const std::vector<bool> expected{true, true};
    CHECK(ok == expected);
    CHECK(clock.elapsed() < 5s);
    CHECK(remote_cancelled == 2);
    CHECK(caller_cancelled == 2);
    CHECK(cleaned == 42);
    CHECK(calls > 0);
    CHECK(probe::alive == 0);
}

// --- 5. SO_REUSEPORT: one port, a server on every shard ------------------------------------

// Says which shard took the connection.
corio::coro<> tell_shard(corio::stream_reader reader, corio::stream_writer writer,
                         std::array<std::atomic<int>, 2>* accepted) {
    const std::size_t shard = here();
    (*accepted)[shard].fetch_add(1);
    writer.write("shard " + std::to_string(shard) + "\n");
    co_await writer.drain();
    (void)reader;
    writer.close();
}

TEST_CASE("start_server with reuse_port on every shard: connections land on both", "[shard][net]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    constexpr int clients = 64;
    std::array<std::atomic<int>, 2> accepted{};
    std::atomic<std::uint16_t> port{0};
    std::atomic<bool> listening{false};
    std::atomic<bool> clients_done{false};
    struct seen {
        std::array<int, 2> answered{};
        int other = 0;
        std::string without_reuse_port;
    };
    auto handler = [&accepted](corio::stream_reader r, corio::stream_writer w) {
        return tell_shard(std::move(r), std::move(w), &accepted);
    };
    const std::vector<seen> results = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<seen> {
            seen s;
            corio::server_options reuse;
            reuse.reuse_port = true;
            if (shard == shard1) {
                if (!co_await until([&] { return port.load() != 0; })) co_return s;
                // Without SO_REUSEPORT the port is taken.
                try {
                    corio::server taken =
                        co_await corio::start_server(handler, "127.0.0.1", port.load());
                    taken.close();
                    s.without_reuse_port = "bound";
                } catch (const std::system_error& e) {
                    s.without_reuse_port = e.code().value() == EADDRINUSE ? "EADDRINUSE" : e.what();
                }
                corio::server mine =
                    co_await corio::start_server(handler, "127.0.0.1", port.load(), reuse);
                listening = true;
                (void)co_await until([&] { return clients_done.load(); });
                mine.close();
                co_await mine.wait_closed();
                co_return s;
            }
            corio::server mine = co_await corio::start_server(handler, "127.0.0.1", 0, reuse);
            port = mine.port();
            if (!co_await until([&] { return listening.load(); })) co_return s;
            for (int i = 0; i < clients; ++i) {
                auto [reader, writer] = co_await corio::open_connection("127.0.0.1", port.load());
                const std::string line = co_await reader.readline();
                if (line == "shard 0\n") {
                    ++s.answered[0];
                } else if (line == "shard 1\n") {
                    ++s.answered[1];
                } else {
                    ++s.other;
                }
                writer.close();
            }
            clients_done = true;
            mine.close();
            co_await mine.wait_closed();
            co_return s;
        },
        shards(2));
    REQUIRE(results.size() == 2);
    const seen& s = results[0];
    INFO("shard 0 answered " << s.answered[0] << ", shard 1 " << s.answered[1]);
    CHECK(results[1].without_reuse_port == "EADDRINUSE");
    CHECK(s.other == 0);
    CHECK(s.answered[0] + s.answered[1] == clients);
    CHECK(s.answered[0] > 0);  // the kernel spread them (by the clients' ports)
    CHECK(s.answered[1] > 0);
    CHECK(accepted[0] == s.answered[0]);
    CHECK(accepted[1] == s.answered[1]);
}

// --- 6. nothing left behind ----------------------------------------------------------------

corio::coro<> sleep_long() { co_await corio::sleep(100s); }

// A bit of everything: calls both ways, remote coroutines, timers, a leftover task.
corio::coro<int> busy_main(corio::shard_id shard) {
    const corio::shard_id next{(index_of(shard) + 1) % corio::shard_count()};
    long sum = co_await ask_many(next, 0, 100);
    sum += co_await corio::submit_to(next, []() -> corio::coro<long> {
        co_await corio::sleep(1ms);
        co_return 1;
    });
    (void)corio::create_task(sleep_long());
    co_return static_cast<int>(sum);
}

corio::coro<> failing_main(corio::shard_id shard) {
    if (shard == shard1) throw test_error("shard 1 failed");
    co_await corio::sleep(100s);
}

corio::coro<> serving_main(corio::shard_id shard) {
    auto ignore = [](corio::stream_reader, corio::stream_writer) -> corio::coro<> { co_return; };
    corio::server_options reuse;
    reuse.reuse_port = true;
    corio::server srv = co_await corio::start_server(ignore, "127.0.0.1", 0, reuse);
    auto [reader, writer] = co_await corio::open_connection("127.0.0.1", srv.port());
    (void)co_await reader.read();  // the handler closed it
    writer.close();
    (void)shard;
    srv.close();
    co_await srv.wait_closed();
}

TEST_CASE("run_sharded leaves no descriptor, thread or frame behind", "[shard][run_sharded]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::size_t fds = open_fds();
    const std::size_t threads = thread_count();
    for (int round = 0; round < 3; ++round) {
        INFO("round " << round);
        const std::vector<int> sums = run_sharded_within(busy_main, shards(2));
        CHECK(sums.size() == 2);
        CHECK(run_sharded_within(busy_main, shards(4)).size() == 4);
        CHECK_THROWS_AS(run_sharded_within(failing_main, shards(2)), test_error);
        run_sharded_within(serving_main, shards(2));
        CHECK(open_fds() == fds);
        CHECK(thread_count_settled(threads) <= threads);
        CHECK(probe::alive == 0);
    }
}

// --- 7. dumps name the shard ---------------------------------------------------------------

corio::coro<int> ask_forever(std::atomic<bool>& started) {
    co_return co_await corio::submit_to(shard1, [&started]() -> corio::coro<int> {
        started = true;
        co_await corio::sleep(100s);
        co_return 0;
    });
}

TEST_CASE("format_call_graph on a shard names it, and a task waiting in submit_to",
          "[shard][debug]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<bool> started{false};
    struct dumps {
        std::string backend;
        std::string here;
        std::string there;
        std::string cancelling;
    };
    const std::vector<dumps> results = run_sharded_within(
        [&](corio::shard_id shard) -> corio::coro<dumps> {
            dumps d;
            if (shard != shard0) co_return d;
            d.backend = std::string(corio::get_running_loop().backend_name());
            corio::task<int> asker = corio::create_task(ask_forever(started), "asker");
            if (!co_await until([&] { return started.load(); })) co_return d;
            co_await corio_test::yield();
            d.here = corio::format_call_graph();
            d.there = co_await corio::submit_to(shard1, [] { return corio::format_call_graph(); });
            asker.cancel();
            d.cancelling = corio::format_call_graph();
            try {
                (void)co_await asker;
            } catch (const corio::cancelled_error&) {
            }
            co_return d;
        },
        shards(2));
    REQUIRE(results.size() == 2);
    const dumps& d = results[0];
    INFO("shard 0:\n" << d.here << "shard 1:\n" << d.there << "cancelling:\n" << d.cancelling);
    CHECK(corio_test::contains(d.here, "on the " + d.backend + " loop of shard 0 (of 2)"));
    CHECK(corio_test::contains(d.here, "* task 'asker'"));
    CHECK(corio_test::contains(d.here, "waits in corio::submit_to(shard 1), awaiting its answer"));
    CHECK(corio_test::contains(d.here, "run_sharded(shard 0)"));
    CHECK(corio_test::contains(d.there, "on the " + d.backend + " loop of shard 1 (of 2)"));
    CHECK(corio_test::contains(d.there, "run_sharded(shard 1)"));
    CHECK(corio_test::contains(d.cancelling, "waits in corio::submit_to(shard 1), cancelling"));
}

// Sends what is written to stderr to a temporary file while it lives.
class stderr_capture {
public:
    stderr_capture() : file_(std::tmpfile()) {
        std::fflush(stderr);
        saved_ = ::dup(STDERR_FILENO);
        if (file_ != nullptr) ::dup2(::fileno(file_), STDERR_FILENO);
    }
    stderr_capture(const stderr_capture&) = delete;
    stderr_capture& operator=(const stderr_capture&) = delete;
    ~stderr_capture() {
        restore();
        if (file_ != nullptr) std::fclose(file_);
    }

    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        saved_ = -1;
    }

    [[nodiscard]] std::string text() const {
        std::string out;
        if (file_ == nullptr) return out;
        std::string buffer(4096, '\0');
        for (off_t at = 0;;) {
            const ssize_t n = ::pread(::fileno(file_), buffer.data(), buffer.size(), at);
            if (n <= 0) break;
            out.append(buffer.data(), static_cast<std::size_t>(n));
            at += n;
        }
        return out;
    }

private:
    std::FILE* file_;
    int saved_ = -1;
};

TEST_CASE("run_sharded: dump_on_signal makes every shard write its tasks, named by shard",
          "[shard][debug]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    std::atomic<bool> started{false};
    std::string captured;
    {
        stderr_capture capture;
        corio::shard_options options = shards(2);
        options.loop.dump_on_signal = SIGUSR1;
        const std::vector<bool> dumped = run_sharded_within(
            [&](corio::shard_id shard) -> corio::coro<bool> {
                if (shard != shard0) co_return true;
                corio::task<int> asker = corio::create_task(ask_forever(started), "asker");
                if (!co_await until([&] { return started.load(); })) co_return false;
                ::kill(::getpid(), SIGUSR1);
                const bool both = co_await until([&] {
                    const std::string text = capture.text();
                    return corio_test::contains(text, "of shard 0 (of 2)") &&
                           corio_test::contains(text, "of shard 1 (of 2)");
                });
                asker.cancel();
                co_return both;
            },
            options);
        capture.restore();
        captured = capture.text();
        const std::vector<bool> expected{true, true};
        CHECK(dumped == expected);
    }
    INFO("stderr:\n" << captured);
    CHECK(corio_test::contains(captured, "corio: pending tasks of shard 0 (of 2)"));
    CHECK(corio_test::contains(captured, "corio: pending tasks of shard 1 (of 2)"));
    CHECK(corio_test::contains(
        captured, "task 'asker' waits in corio::submit_to(shard 1), awaiting its answer"));
    // Whatever else went to stderr meanwhile (a sanitizer's report) is not lost.
    if (corio_test::contains(captured, "Sanitizer")) std::fputs(captured.c_str(), stderr);
}

// --- 8. options: pin = false, deadlock detection, virtual time -----------------------------

TEST_CASE("run_sharded: pin = false leaves the threads' affinity alone", "[shard][run_sharded]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    const std::vector<int> allowed = cpus_of_this_thread();
    corio::shard_options options = shards(3);
    options.pin = false;
    // A shard waiting for the others is not deadlocked.
    options.loop.detect_deadlock = true;
    const std::vector<std::vector<int>> affinities = run_sharded_within(
        [](corio::shard_id shard) -> corio::coro<std::vector<int>> {
            if (shard == shard1) co_await corio::sleep(50ms);
            std::vector<int> cpus = cpus_of_this_thread();
            (void)co_await corio::submit_to(corio::shard_id{(index_of(shard) + 1) % 3},
                                            [] { return here(); });
            co_return cpus;
        },
        options);
    REQUIRE(affinities.size() == 3);
    for (const auto& cpus : affinities) CHECK(cpus == allowed);
    CHECK(cpus_of_this_thread() == allowed);
}

TEST_CASE("run_sharded: virtual time on every shard", "[shard][run_sharded]") {
    CORIO_REQUIRE_BACKEND();
    frame_leak_check leaks;
    corio::shard_options options = shards(2);
    options.loop.virtual_time = true;
    struct times {
        std::chrono::nanoseconds slept{};
        std::chrono::nanoseconds remote_slept{};
    };
    const stopwatch clock;
    // No deadline here: its timer would fire at once on a virtual clock.
    const std::vector<times> results = corio::run_sharded(
        [](corio::shard_id shard) -> corio::coro<times> {
            times t;
            corio::event_loop& loop = corio::get_running_loop();
            const auto start = loop.time();
            co_await corio::sleep(1h);
            t.slept = loop.time() - start;
            if (shard == shard0) {
                t.remote_slept = co_await corio::submit_to(
                    shard1, []() -> corio::coro<std::chrono::nanoseconds> {
                        corio::event_loop& there = corio::get_running_loop();
                        const auto begin = there.time();
                        co_await corio::sleep(2h);
                        co_return there.time() - begin;
                    });
            }
            co_return t;
        },
        options);
    REQUIRE(results.size() == 2);
    CHECK(results[0].slept >= 1h);
    CHECK(results[1].slept >= 1h);
    CHECK(results[0].remote_slept >= 2h);
    CHECK(clock.elapsed() < 5s);
}

}  // namespace

TEST_CASE("run_sharded: Ctrl-C cancels every shard's main, and run_sharded throws it",
          "[shard][run_sharded][signals]") {
    // In a child: SIGINT at its default disposition, as a program starts (Catch2 has its own).
    corio_test::child_process child([] {
        std::atomic<int> cleaned_up{0};
        try {
            corio::run_sharded(
                [&](corio::shard_id id) -> corio::coro<> {
                    if (static_cast<std::size_t>(id) == 1) {
                        corio::get_running_loop().call_later(20ms,
                                                             [] { ::kill(::getpid(), SIGINT); });
                    }
                    try {
                        co_await corio::sleep(10s);
                    } catch (const corio::cancelled_error&) {
                        ++cleaned_up;
                        throw;
                    }
                },
                {.shards = 2});
            return 1;  // returned normally
        } catch (const corio::cancelled_error& e) {
            if (cleaned_up != 2) return 2;
            if (std::string(e.what()) != "SIGINT") return 3;
            struct sigaction now{};
            ::sigaction(SIGINT, nullptr, &now);
            if (now.sa_handler != SIG_DFL) return 4;  // the default is back
            return 0;
        }
    });
    const std::optional<int> status = child.wait(20s);
    REQUIRE(status);
    INFO("wait status " << *status);
    REQUIRE(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 0);
}
