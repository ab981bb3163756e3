#pragma once
/// \file
/// `corio::run`: the entry point (asyncio's `run`), and `new_event_loop` with its choice of
/// backend.

#include "corio/coro.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/task_reports.hpp"
#include "corio/reactor/epoll.hpp"
#include "corio/reactor/uring.hpp"
#include "corio/system/signals.hpp"
#include "corio/task.hpp"

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio {

/// Which reactor a loop runs on.
enum class backend {
    /// io_uring when the kernel allows it, else epoll (silently, at once). The environment
    /// variable `CORIO_BACKEND=io_uring|epoll` overrides it.
    automatic,
    io_uring,
    epoll,
};

/// Options of `run` and `new_event_loop`.
struct run_options {
    corio::backend backend = backend::automatic;
    /// asyncio's debug mode (also `CORIO_DEBUG=1`): see `event_loop::set_debug`.
    bool debug = false;
    /// `run` only: when the process receives this signal (e.g. `SIGUSR1`), the call graph of
    /// every pending task is written to stderr (`dump_tasks`). 0: off.
    int dump_on_signal = 0;
    /// A virtual clock (see `event_loop::set_virtual_time`): timers fire in order, at once.
    bool virtual_time = false;
    /// Ends a loop that can never make progress again with `deadlock_error` (see
    /// `event_loop::set_detect_deadlock`). Unset: on in debug mode, off otherwise.
    std::optional<bool> detect_deadlock{};
};

namespace detail {

inline backend backend_from_environment(backend requested) {
    if (requested != backend::automatic) return requested;
    const char* value = std::getenv("CORIO_BACKEND");
    if (value == nullptr || *value == '\0') return backend::automatic;
    const std::string_view name(value);
    if (name == "io_uring") return backend::io_uring;
    if (name == "epoll") return backend::epoll;
    if (name == "automatic") return backend::automatic;
    throw std::invalid_argument("CORIO_BACKEND must be io_uring, epoll or automatic, not '" +
                                std::string(name) + "'");
}

inline bool debug_from_environment(bool requested) {
    if (requested) return true;
    const char* value = std::getenv("CORIO_DEBUG");
    return value != nullptr && *value != '\0' && std::string_view(value) != "0";
}

template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
inline std::unique_ptr<event_loop> make_uring_loop() {
    if constexpr (config::has_uring) {
#if defined(CORIO_HAS_URING)
        return std::unique_ptr<event_loop>(new basic_event_loop<uring_reactor>());
#endif
    }
    throw std::system_error(ENOTSUP, std::generic_category(),
                            "corio was built without io_uring support");
}

template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
inline std::unique_ptr<event_loop> make_loop_on(backend requested) {
    switch (requested) {
    case backend::io_uring: return make_uring_loop();
    case backend::epoll: return std::unique_ptr<event_loop>(new basic_event_loop<epoll_reactor>());
    case backend::automatic: break;
    }
    if constexpr (config::has_uring) {
        try {
            return make_uring_loop();
        } catch (const std::system_error&) {
            // Forbidden (seccomp, io_uring_disabled) or too old: epoll always works.
        }
    }
    return std::unique_ptr<event_loop>(new basic_event_loop<epoll_reactor>());
}

}  // namespace detail

/// What makes the loops of `new_event_loop` (and so of `run`): given the backend asked for
/// (`CORIO_BACKEND` applied), a new loop. See `set_loop_factory`.
using loop_factory = std::unique_ptr<event_loop> (*)(backend);

namespace detail {

inline std::atomic<loop_factory>& installed_loop_factory() noexcept {
    static std::atomic<loop_factory> factory{nullptr};
    return factory;
}

}  // namespace detail

/// Makes every later `new_event_loop` (and `run`) get its loop from `factory`, and returns the
/// factory it replaces; `nullptr` restores corio's own choice of backend. A seam for tools and
/// tests, e.g. to put every loop of a program on a reactor that injects faults; the options
/// (debug, virtual time, deadlock detection) are still applied to the loop it returns.
inline loop_factory set_loop_factory(loop_factory factory) noexcept {
    return detail::installed_loop_factory().exchange(factory);
}

/// A new event loop on the backend `options.backend` asks for (not running, not current).
/// An explicitly requested backend that the kernel refuses throws `std::system_error`.
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
[[nodiscard]] inline std::unique_ptr<event_loop> new_event_loop(const run_options& options = {}) {
    const backend requested = detail::backend_from_environment(options.backend);
    const loop_factory factory = detail::installed_loop_factory().load();
    std::unique_ptr<event_loop> loop =
        factory != nullptr ? factory(requested) : detail::make_loop_on(requested);
    if (!loop) throw std::logic_error("corio: the loop factory returned no loop");
    loop->set_debug(detail::debug_from_environment(options.debug));
    if (options.detect_deadlock) loop->set_detect_deadlock(*options.detect_deadlock);
    loop->set_virtual_time(options.virtual_time);
    return loop;
}

namespace detail {

// Cancels every task still pending and runs the loop until they have all finished, as
// asyncio.run does on its way out.
template <class = void>  // compiled only where `run` is (docs/architecture.md, "Compile time")
inline void cancel_remaining_tasks(event_loop& loop) {
    for (int round = 0; round < 8; ++round) {
        std::vector<task<>> remaining;
        loop_access::for_each_pending_task(loop, [&](task_link* link) {
            remaining.push_back(handle_access::make<task<>>(static_cast<task_state_base*>(link)));
        });
        if (remaining.empty()) return;
        for (auto& t : remaining) t.cancel();
        auto gather_all = [](std::vector<task<>> tasks) -> coro<> {
            for (auto& t : tasks) {
                try {
                    co_await t;
                } catch (...) {
                }
            }
        };
        loop.run_until_complete(gather_all(remaining));
        for (auto& t : remaining) {
            if (t.done() && !t.cancelled() && t.exception()) {
                loop.call_exception_handler(
                    exception_context{"unhandled exception during corio::run() shutdown",
                                      t.exception(), t.get_name()});
            }
        }
    }
}

}  // namespace detail

/// Runs `main` as a task on a new event loop and returns its result, or rethrows its exception
/// (asyncio's `run`). On the way out, tasks still pending are cancelled and allowed to finish,
/// then the loop is closed: every coroutine frame is gone when `run` returns.
/// Throws `std::runtime_error` if a loop already runs in this thread.
///
/// Ctrl-C, as asyncio.Runner: when `run` is called in the process's main thread and SIGINT has
/// its default disposition, the first SIGINT cancels the main task (`cancelled_error` with
/// message "SIGINT"), which may clean up; `run` then throws what the task threw, normally that
/// `corio::cancelled_error` (asyncio raises KeyboardInterrupt instead). A second SIGINT while
/// the main task still runs kills the process as SIGINT's default does. A handler the program
/// installs for SIGINT (`add_signal_handler`, `sigaction`) takes precedence; the default
/// disposition is back when `run` returns.
namespace detail {

// A dump wakes no task: its handler must not keep a deadlock from being seen.
template <class = void>  // compiled only where called (docs/architecture.md, "Compile time")
inline void dump_tasks_on_signal(event_loop& loop, int signo) {
    add_quiet_signal_handler(loop, signo, [&loop] {
        try {
            std::string graph;
            if (const auto call_graph = installed_call_graph.load(std::memory_order_acquire)) {
                graph = call_graph(loop);
            } else {
                graph = "corio: pending tasks" + shard_of(loop) + "\n" + wait_summary_of(loop) +
                        call_graph_hint;
            }
            std::fputs(graph.c_str(), stderr);
            std::fflush(stderr);
        } catch (...) {
        }
    });
}

}  // namespace detail

template <class T>
T run(coro<T> main, const run_options& options = {}) {
    if (detail::loop_access::running() != nullptr) {
        throw std::runtime_error("corio::run() cannot be called from a running event loop");
    }
    std::unique_ptr<event_loop> loop = new_event_loop(options);
    struct closer {
        event_loop& loop;
        ~closer() {
            try {
                detail::cancel_remaining_tasks(loop);
            } catch (...) {
            }
            loop.close();
        }
    } close_at_exit{*loop};
    task<T> main_task = loop->create_task(std::move(main));
    // Ctrl-C cancels the main task while it runs; the previous disposition comes back before
    // the remaining tasks are cancelled.
    const auto interrupt = detail::cancel_main_on_sigint(*loop, main_task);
    if (options.dump_on_signal != 0) detail::dump_tasks_on_signal(*loop, options.dump_on_signal);
    return loop->run_until_complete(std::move(main_task));
}

}  // namespace corio
