#pragma once
/// \file
/// `corio::wait_for`: await something for at most a given time (asyncio's `wait_for`).

#include "corio/coro.hpp"
#include "corio/detail/deadline.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/awaitable.hpp"
#include "corio/task.hpp"

#include <chrono>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace corio {

namespace detail {

template <class A>
struct awaited_value;
template <class T>
struct awaited_value<coro<T>> {
    using type = T;
};
template <class T>
struct awaited_value<task<T>> {
    using type = T;
};
template <class T>
struct awaited_value<future<T>> {
    using type = T;
};

template <class A>
using awaited_value_t = typename awaited_value<std::remove_cvref_t<A>>::type;

template <class A>
coro<awaited_value_t<A>> wait_for_impl(A awaitable, event_loop::duration timeout) {
    using T = awaited_value_t<A>;
    task<> self = current_task();
    if (!self) throw std::runtime_error("corio::wait_for used outside a corio task");
    const unsigned cancelling_before = self.cancelling();
    bool expired = false;
    // The timer cancels this very task, as asyncio.timeout does: the cancellation reaches
    // whatever is awaited below (a coro runs inline; a task or future is cancelled in turn),
    // and this frame sees it come back once that has finished cancelling.
    timer_handle timer = get_running_loop().call_later(timeout, [&expired, self]() mutable {
        expired = true;
        self.cancel();
    });
    struct timer_guard {
        timer_handle& timer;
        ~timer_guard() { timer.cancel(); }
    } guard{timer};
    try {
        if constexpr (is_coro_v<A>) {
            if constexpr (std::is_void_v<T>) {
                co_await std::move(awaitable);
            } else {
                T result = co_await std::move(awaitable);
                if (expired) self.uncancel();
                co_return result;
            }
        } else {
            co_await awaitable;  // rethrows what the awaitable ended with
            if constexpr (!std::is_void_v<T>) {
                T result = take_result(awaitable);
                if (expired) self.uncancel();
                co_return result;
            }
        }
    } catch (const cancelled_error&) {
        timer.cancel();
        if (expired && self.uncancel() <= cancelling_before) throw timeout_error();
        throw;
    }
    if (expired) self.uncancel();
}

}  // namespace detail

/// Awaits `awaitable` (a coro, task or future) for at most `timeout` and returns its result.
///
/// On timeout the awaitable is cancelled, and `timeout_error` is thrown once it has finished
/// cancelling; if it completes anyway (it caught the cancellation), its result is returned.
/// A coro runs inline in the calling task; a task or future is awaited. Cancelling the caller
/// cancels the awaitable too, with `cancelled_error` as usual.
template <detail::awaitable_arg A, class Rep, class Period>
[[nodiscard]] coro<detail::awaited_value_t<A>>
wait_for(A&& awaitable, std::chrono::duration<Rep, Period> timeout) {
    return detail::wait_for_impl<std::remove_cvref_t<A>>(
        std::remove_cvref_t<A>(std::forward<A>(awaitable)), detail::to_loop_duration(timeout));
}

}  // namespace corio
