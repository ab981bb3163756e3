#pragma once
/// \file
/// `corio::run_sharded`: one loop per core, shared nothing (Seastar's model; asyncio has one
/// loop). Each shard is a loop on its own thread running the program's main; shards talk
/// through `submit_to` (shard/submit_to.hpp).

#include "corio/coro.hpp"
#include "corio/detail/fd.hpp"
#include "corio/detail/os_thread.hpp"
#include "corio/detail/owned_ptr.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/awaitable_traits.hpp"
#include "corio/impl/loop_access.hpp"
#include "corio/impl/task_reports.hpp"
#include "corio/outcome.hpp"
#include "corio/run.hpp"
#include "corio/shard/detail/shard_group.hpp"
#include "corio/shard/submit_to.hpp"
#include "corio/system/signals.hpp"
#include "corio/task.hpp"

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <pthread.h>
#include <sched.h>

namespace corio {

/// Options of `run_sharded`.
struct shard_options {
    /// How many shards (loops, each on a thread of its own); 0: one per CPU the process may run
    /// on.
    std::size_t shards = 0;
    /// Pins shard i's thread to the i-th CPU the process may run on (round robin when there are
    /// more shards than CPUs); the calling thread, which runs shard 0, gets its own affinity
    /// back on return.
    bool pin = true;
    /// Every shard's loop: backend, debug mode, deadlock detection, virtual time. A
    /// `dump_on_signal` signal makes every shard write its tasks' call graph.
    run_options loop{};
};

/// The most shards `run_sharded` runs (the queues between them grow as the square).
inline constexpr std::size_t max_shards = 1024;

namespace detail {

template <class T>
using shard_result = std::optional<outcome<T>>;

// The CPUs this process may run on, in order.
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
std::vector<int> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) throw_errno(errno, "sched_getaffinity");
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    }
    if (cpus.empty()) cpus.push_back(0);
    return cpus;
}

inline void pin_this_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    const int error = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
    if (error != 0) {
        throw std::system_error(error, std::system_category(),
                                "run_sharded: pthread_setaffinity_np(CPU " + std::to_string(cpu) +
                                    ")");
    }
}

// A shard's main, and then the wait for every other shard's.
template <class T, class Main>
coro<> shard_main(shard_group& group, std::size_t index, const Main& main,
                  shard_result<T>& result) {
    event_loop& loop = group.context(index).loop();
    std::exception_ptr error;
    try {
        task<T> main_task = loop.create_task(main(shard_id{index}));
        group.set_main(index, handle_access::state(main_task));
        try {
            if constexpr (std::is_void_v<T>) {
                co_await main_task;
                result.emplace(std::in_place);
            } else {
                T value = co_await main_task;
                result.emplace(std::in_place, std::move(value));
            }
        } catch (...) {
            group.set_main(index, nullptr);
            throw;
        }
        group.set_main(index, nullptr);
    } catch (...) {
        error = std::current_exception();
        result.emplace(error);
    }
    group.main_finished(error);
    co_await group.all_mains_done(index);
}

// Shard 0's signal handling, on the calling thread: Ctrl-C cancels every main, as `run` cancels
// its one; a dump signal makes every shard write its tasks.
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
owned_ptr<sigint_guard> handle_shard_signals(shard_group& group, event_loop& loop,
                                             int dump_signal) {
    if (dump_signal != 0) {
        add_quiet_signal_handler(loop, dump_signal, [&group] {
            for (std::size_t i = 0; i < group.count(); ++i) {
                event_loop* shard_loop = &group.context(i).loop();
                shard_loop->call_soon_threadsafe([shard_loop] {
                    try {
                        std::string graph;
                        if (const auto call_graph =
                                installed_call_graph.load(std::memory_order_acquire)) {
                            graph = call_graph(*shard_loop);
                        } else {
                            graph = "corio: pending tasks" + shard_of(*shard_loop) + "\n" +
                                    wait_summary_of(*shard_loop) + call_graph_hint;
                        }
                        std::fputs(graph.c_str(), stderr);
                        std::fflush(stderr);
                    } catch (...) {
                    }
                });
            }
        });
    }
    return interrupt_on_sigint(loop, [&group] { group.cancel_mains("SIGINT"); });
}

// One shard's whole life, on its thread: its loop, its main, and the shutdown that lets the
// others finish (see `shard_group`).
template <class T, class Main>
void run_shard(shard_group& group, std::size_t index, const Main& main, shard_result<T>& result,
               const shard_options& options, int cpu) noexcept {
    std::unique_ptr<event_loop> loop;
    owned_ptr<sigint_guard> interrupt;
    try {
        if (cpu >= 0) pin_this_thread(cpu);
        loop = new_event_loop(options.loop);
        group.attach(index, *loop);
        if (index == 0) interrupt = handle_shard_signals(group, *loop, options.loop.dump_on_signal);
    } catch (...) {
        interrupt = nullptr;
        group.detach(index);
        (void)group.arrive(std::current_exception());
        return;
    }
    if (!group.arrive(nullptr)) {
        interrupt = nullptr;
        group.detach(index);
        return;
    }
    current_shard = &group.context(index);
    // Only what corio itself could not do (memory for a task) escapes here, and would leave
    // the other shards waiting for ever: `noexcept` makes it the end of the program instead.
    loop->run_until_complete(loop->create_task(shard_main<T>(group, index, main, result),
                                               "run_sharded(shard " + std::to_string(index) + ")"));
    interrupt = nullptr;
    for (;;) {
        while (loop_access::has_pending_tasks(*loop)) cancel_remaining_tasks(*loop);
        if (group.settle(index)) break;
        loop->run_forever();  // serving the others, until they are all idle or a task comes
        if (group.quiet(index)) break;
    }
    current_shard = nullptr;
    group.depart();
    group.detach(index);
    loop->close();
}

}  // namespace detail

/// Runs `main(shard)` as the main task of each of N shards: N event loops, each on a thread of
/// its own (shard 0 on the calling thread), pinned one per CPU when `pin` asks. Returns when
/// every shard's main has returned, with their results in shard order (nothing for
/// `coro<void>`). When one main fails, the others are cancelled and the first failure is
/// rethrown. Ctrl-C (in the process's main thread, SIGINT at its default) cancels every main.
///
/// On the way out, as `run` does, each shard cancels the tasks it still has, while serving
/// the `submit_to` calls of the others' until no shard has anything in flight; then every
/// loop is closed and every thread joined. A plain function submitted by another shard's
/// clean-up is served then; a coroutine is a task like the leftovers, cancelled as it starts.
///
/// `main` is called on every shard's thread at once: it must be callable as `const`.
/// Throws `std::invalid_argument` for more than `max_shards` shards, `std::system_error` when
/// a thread, a loop or a pinning cannot be had (no shard runs then), `std::runtime_error`
/// when called from a running loop.
template <class Main>
    requires std::invocable<const Main&, shard_id> &&
             detail::is_coro_v<std::invoke_result_t<const Main&, shard_id>>
auto run_sharded(Main main, const shard_options& options = {}) {
    using value_type = typename std::invoke_result_t<const Main&, shard_id>::value_type;
    if (detail::loop_access::running() != nullptr) {
        throw std::runtime_error("corio::run_sharded() cannot be called from a running event loop");
    }
    const std::vector<int> cpus = detail::allowed_cpus();
    const std::size_t count = options.shards != 0 ? options.shards : cpus.size();
    if (count > max_shards) {
        throw std::invalid_argument("corio::run_sharded: " + std::to_string(count) +
                                    " shards, more than max_shards (" + std::to_string(max_shards) +
                                    ")");
    }
    auto cpu_of = [&](std::size_t shard) { return options.pin ? cpus[shard % cpus.size()] : -1; };
    cpu_set_t caller_affinity;
    CPU_ZERO(&caller_affinity);
    const bool restore_affinity =
        options.pin &&
        ::pthread_getaffinity_np(::pthread_self(), sizeof caller_affinity, &caller_affinity) == 0;

    detail::shard_group group(count, count <= cpus.size());
    std::vector<detail::shard_result<value_type>> results(count);
    std::vector<pthread_t> threads;
    threads.reserve(count);
    bool started = true;
    for (std::size_t i = 1; i < count; ++i) {
        try {
            threads.push_back(detail::start_os_thread([&, i] {
                detail::run_shard<value_type>(group, i, main, results[i], options, cpu_of(i));
            }));
        } catch (...) {
            // Shards i.. and 0 will not come: arrive for them, so that the others give up.
            (void)group.arrive(std::current_exception(), count - i + 1);
            started = false;
            break;
        }
    }
    if (started) detail::run_shard<value_type>(group, 0, main, results[0], options, cpu_of(0));
    for (const pthread_t thread : threads) detail::join_os_thread(thread);
    if (restore_affinity) {
        (void)::pthread_setaffinity_np(::pthread_self(), sizeof caller_affinity, &caller_affinity);
    }
    if (const std::exception_ptr error = group.start_error()) std::rethrow_exception(error);
    if (const std::exception_ptr error = group.first_error()) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<value_type>) {
        std::vector<value_type> values;
        values.reserve(count);
        for (auto& result : results) values.push_back(std::move(*result).value());
        return values;
    }
}

}  // namespace corio
