#pragma once
/// \file
/// The event loop's debug mode reports: a coroutine never awaited, a slow callback or task step,
/// a deadlock. Cold paths, out of the loop's class so that it reads as the hot path it is;
/// event_loop.hpp includes this header at its end.

#include "corio/coro.hpp"
#include "corio/detail/text.hpp"
#include "corio/event_loop.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

namespace corio {

inline void event_loop::report_never_awaited(const detail::coro_promise_base& promise) noexcept {
    event_loop* loop = running_loop_;
    if (loop == nullptr || !loop->debug_) return;
    try {
        const detail::await_site site = promise.site();
        std::string message = "coroutine was never awaited";
        if (site.known()) {
            message =
                detail::concat({"coroutine ", detail::readable_function(site.function), " (",
                                site.file, ":", detail::decimal(site.line), ") was never awaited"});
        }
        loop->call_exception_handler(exception_context{std::move(message), nullptr, {}});
    } catch (...) {
    }
}

// Debug mode: each callback and task step is timed, and a slow one is reported with what
// it was (a task's name and where it resumed).
inline void event_loop::run_batch_timed(detail::ready_queue& batch) {
    while (const detail::ready_item item = batch.pop()) {
        ++ticks_since_poll_;
        std::string what;
        if (item.task) {
            try {
                what = task_hooks_->describe_step(item.link);
            } catch (...) {
            }
        }
        const auto started = clock::now();
        run_item(item, true);
        const auto took = clock::now() - started;
        if (took >= slow_callback_duration_) report_slow(what, took);
    }
}

inline void event_loop::report_slow(const std::string& what, duration took) noexcept {
    try {
        char seconds[32];
        std::snprintf(seconds, sizeof seconds, "%.3f", std::chrono::duration<double>(took).count());
        call_exception_handler(exception_context{
            detail::concat({"Executing ", what.empty() ? std::string_view("a callback") : what,
                            " took ", seconds, " seconds"}),
            nullptr,
            {}});
    } catch (...) {
    }
}

inline void event_loop::throw_deadlock() {
    std::string message = "deadlock: no task can run again, and nothing (timer, I/O, executor "
                          "job, signal handler) can wake one:\n";
    if (task_hooks_ != nullptr) message += task_hooks_->wait_summary(*this);
    if (const auto call_graph = detail::installed_call_graph.load(std::memory_order_acquire)) {
        message += call_graph(*this);
    } else {
        message += detail::call_graph_hint;
    }
    throw deadlock_error(message);
}

}  // namespace corio
