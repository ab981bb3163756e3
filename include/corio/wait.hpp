#pragma once
/// \file
/// `corio::wait`: wait for a set of tasks until a condition holds (asyncio's `wait`).

#include "corio/coro.hpp"
#include "corio/detail/deadline.hpp"
#include "corio/detail/ranges.hpp"
#include "corio/event_loop.hpp"
#include "corio/future.hpp"
#include "corio/impl/awaitable.hpp"
#include "corio/impl/future_state.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace corio {

/// When `wait` returns.
enum class return_when {
    /// As soon as any task is done.
    first_completed,
    /// As soon as any task ends with an exception (not a cancellation); else when all are done.
    first_exception,
    /// When every task is done.
    all_completed,
};

/// What `wait` returns: the same handles it was given, split in input order.
template <class H>
struct wait_result {
    std::vector<H> done;
    std::vector<H> pending;
};

namespace detail {

/// Listens to every handle of a `wait` from the waiting coroutine's frame.
template <class H>
class wait_watch {
public:
    wait_watch(const std::vector<H>& handles, return_when when) : when_(when) {
        slots_.reserve(handles.size());
        for (const H& h : handles) slots_.emplace_back(this, &base_state(h));
    }
    wait_watch(const wait_watch&) = delete;
    wait_watch& operator=(const wait_watch&) = delete;
    ~wait_watch() {
        for (slot& s : slots_) s.unlink();
    }

    /// Whether the condition already holds; otherwise starts listening.
    [[nodiscard]] bool satisfied_or_listen(future<void> wakeup) {
        std::size_t done = 0;
        for (slot& s : slots_) {
            if (s.state->done()) {
                ++done;
                if (ends_wait(*s.state)) return true;
            }
        }
        if (done == slots_.size()) return true;
        remaining_ = slots_.size() - done;
        wakeup_ = std::move(wakeup);
        for (slot& s : slots_) {
            if (!s.state->done()) s.state->add_listener(&s);
        }
        return false;
    }

private:
    struct slot : listener {
        slot(wait_watch* owner, future_state_base* state) noexcept
            : listener(&notify), owner(owner), state(state) {}
        wait_watch* owner;
        future_state_base* state;
    };

    [[nodiscard]] bool ends_wait(future_state_base& state) const {
        switch (when_) {
        case return_when::first_completed: return true;
        case return_when::first_exception:
            return !state.cancelled() && state.outcome_exception() != nullptr;
        case return_when::all_completed: return false;
        }
        return false;
    }

    static void notify(listener* l, future_state_base& state, bool run) noexcept {
        if (!run) return;
        wait_watch& self = *static_cast<slot*>(l)->owner;
        --self.remaining_;
        if (self.wakeup_.done()) return;
        bool wake = self.remaining_ == 0;
        try {
            wake = wake || self.ends_wait(state);
        } catch (...) {
        }
        if (wake) self.wakeup_.set_result();
    }

    std::vector<slot> slots_;
    future<void> wakeup_;
    std::size_t remaining_ = 0;
    return_when when_;
};

template <class H>
coro<wait_result<H>> wait_impl(std::vector<H> handles, return_when when,
                               std::optional<event_loop::duration> timeout) {
    if (handles.empty()) throw std::invalid_argument("corio::wait: the set of tasks is empty");
    for (const H& h : handles) require_running_loop(h, "corio::wait");
    wait_watch<H> watch(handles, when);
    event_loop& loop = get_running_loop();
    future<void> wakeup = loop.create_future<void>();
    if (!watch.satisfied_or_listen(wakeup)) {
        timer_handle timer;
        if (timeout) {
            timer = loop.call_later(*timeout, [wakeup]() mutable {
                if (!wakeup.done()) wakeup.set_result();
            });
        }
        struct timer_guard {
            timer_handle& timer;
            ~timer_guard() { timer.cancel(); }
        } guard{timer};
        co_await wakeup;
    }
    wait_result<H> result;
    for (H& h : handles) (h.done() ? result.done : result.pending).push_back(std::move(h));
    co_return result;
}

template <class R>
concept wait_range = detail::input_range<R> && future_handle<detail::range_value_t<R>>;

template <class R>
auto to_handles(R&& range) {
    std::vector<detail::range_value_t<R>> handles;
    for (auto&& h : range) handles.push_back(h);
    return handles;
}

}  // namespace detail

/// Waits until `when` holds for the tasks or futures in `tasks` and returns them split into
/// `done` and `pending`, each in input order.
///
/// Lazy (a coroutine). Never cancels anything: not on return, not on timeout, not when the
/// waiting task is cancelled. An empty set throws `std::invalid_argument`.
template <detail::wait_range R>
[[nodiscard]] auto wait(R&& tasks, return_when when = return_when::all_completed) {
    return detail::wait_impl(detail::to_handles(std::forward<R>(tasks)), when, std::nullopt);
}

/// As `wait(tasks, when)`, returning at the latest after `timeout` (then some may be pending).
template <detail::wait_range R, class Rep, class Period>
[[nodiscard]] auto wait(R&& tasks, return_when when, std::chrono::duration<Rep, Period> timeout) {
    return detail::wait_impl(detail::to_handles(std::forward<R>(tasks)), when,
                             detail::to_loop_duration(timeout));
}

/// As `wait(tasks, return_when::all_completed, timeout)`.
template <detail::wait_range R, class Rep, class Period>
[[nodiscard]] auto wait(R&& tasks, std::chrono::duration<Rep, Period> timeout) {
    return wait(std::forward<R>(tasks), return_when::all_completed, timeout);
}

}  // namespace corio
