#pragma once
/// \file
/// Timeouts on any awaitable: `wait_for` and `wait_until` throw `timeout_error` (asyncio's
/// `wait_for` and `timeout_at`), `with_timeout` and `with_deadline` give an empty optional
/// (trio's `move_on_after`).

#include "corio/coro.hpp"
#include "corio/detail/deadline.hpp"
#include "corio/detail/timer_heap.hpp"
#include "corio/errors.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/awaitable.hpp"
#include "corio/impl/loop_access.hpp"
#include "corio/impl/task_state.hpp"
#include "corio/task.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace corio {

namespace detail {

/// What a timed wait gives when its time is up: `timeout_error` thrown, or an empty result.
enum class on_timeout : bool { throw_error, give_empty };

/// `T` for a wait that throws; `std::optional<T>` (`bool` for `void`) for one that gives empty.
template <class T, on_timeout Mode>
using timed_result_t =
    std::conditional_t<Mode == on_timeout::throw_error, T,
                       std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>>;

/// When a timed wait ends: a duration from when it starts to wait, or a point on the loop clock.
struct time_limit {
    loop_clock::duration after{};
    loop_clock::time_point at{};
    bool relative = false;

    [[nodiscard]] loop_clock::time_point deadline(const event_loop& loop) const noexcept {
        return relative ? saturating_add(loop.time(), after) : at;
    }
};

/// The timer of a timed wait, in its frame (no allocation): when it fires it cancels the task
/// the wait runs in, as asyncio's `timeout` does, and the cancellation reaches whatever is
/// awaited (a corio awaiter withdraws, a task or future is cancelled in turn).
class timeout_timer : public timer_node {
public:
    explicit timeout_timer(task_state_base& task) noexcept : timer_node(&fire), task_(&task) {}
    timeout_timer(const timeout_timer&) = delete;
    timeout_timer& operator=(const timeout_timer&) = delete;
    ~timeout_timer() { disarm(); }

    /// Arms the timer (once) for `limit`; a deadline of `time_point::max()` is never.
    void arm(const time_limit& limit) {
        if (queued() || expired_) return;
        const loop_clock::time_point deadline = limit.deadline(task_->loop());
        if (deadline != loop_clock::time_point::max()) {
            loop_access::add_timer(task_->loop(), this, deadline);
        }
    }
    void disarm() noexcept { loop_access::remove_timer(task_->loop(), this); }

    /// Whether it fired, cancelling the task.
    [[nodiscard]] bool expired() const noexcept { return expired_; }

private:
    static void fire(timer_node* node, bool run) noexcept {
        auto* self = static_cast<timeout_timer*>(node);
        if (!run) return;
        self->expired_ = true;
        try {
            (void)self->task_->cancel(std::string());
        } catch (...) {
            self->task_->loop().call_exception_handler(
                exception_context{"Exception while a timeout cancelled its task",
                                  std::current_exception(), self->task_->name()});
        }
    }

    task_state_base* task_;
    bool expired_ = false;
};

/// Awaits `Inner`, arming the timeout's timer only when it is about to suspend: a result ready
/// at once (an item already in the queue, a task already done) reads no clock and queues no
/// timer.
template <class Inner>
class arming_awaiter {
public:
    using corio_native_awaiter = void;

    template <class Make>
    arming_awaiter(timeout_timer& timer, const time_limit& limit, Make&& make)
        : inner_(make()), timer_(&timer), limit_(&limit) {}
    arming_awaiter(const arming_awaiter&) = delete;
    arming_awaiter& operator=(const arming_awaiter&) = delete;

    decltype(auto) await_ready() { return inner_.await_ready(); }
    template <class Promise>
    decltype(auto) await_suspend(std::coroutine_handle<Promise> h) {
        timer_->arm(*limit_);
        return inner_.await_suspend(h);
    }
    decltype(auto) await_resume() { return inner_.await_resume(); }

private:
    Inner inner_;
    timeout_timer* timer_;
    const time_limit* limit_;
};

template <class A>
auto arm_on_suspend(timeout_timer& timer, const time_limit& limit, A&& awaitable) {
    using inner = decltype(awaiter_for(std::forward<A>(awaitable)));
    return arming_awaiter<inner>(
        timer, limit, [&]() -> decltype(auto) { return awaiter_for(std::forward<A>(awaitable)); });
}

template <on_timeout Mode, class A>
coro<timed_result_t<awaited_value_t<A>, Mode>> timed_wait(A awaitable, time_limit limit) {
    using T = awaited_value_t<A>;
    task_state_base& self = task_state_base::current("corio::wait_for");
    const unsigned cancelling_before = self.cancelling();
    timeout_timer timer(self);
    std::optional<storable_t<T>> result;
    bool taken_back = false;  // the timer's cancellation request, once uncancelled
    try {
        if constexpr (future_handle<A>) {
            // Rethrows what the awaitable ended with.
            co_await arm_on_suspend(timer, limit, awaitable);
            result.emplace(take_result(awaitable));
        } else if constexpr (std::is_void_v<T>) {
            co_await arm_on_suspend(timer, limit, std::move(awaitable));
            result.emplace();
        } else {
            result.emplace(co_await arm_on_suspend(timer, limit, std::move(awaitable)));
        }
    } catch (const cancelled_error&) {
        timer.disarm();
        // The timer's own request and none from outside: a timeout. A cancellation from outside
        // (even one that came together with the timer's) stays a cancellation.
        if (!timer.expired() || self.uncancel() > cancelling_before) throw;
        if constexpr (Mode == on_timeout::throw_error) throw timeout_error();
        taken_back = true;
    } catch (...) {
        timer.disarm();
        if (timer.expired()) self.uncancel();
        throw;
    }
    timer.disarm();
    // Done in time, or it finished anyway although the timer had cancelled it (it caught the
    // cancellation): its result stands, and the timer's request is taken back.
    if (timer.expired() && !taken_back) self.uncancel();
    if constexpr (Mode == on_timeout::throw_error) {
        if constexpr (!std::is_void_v<T>) co_return std::move(*result);
    } else if constexpr (std::is_void_v<T>) {
        co_return result.has_value();
    } else {
        if (!result) co_return std::nullopt;
        co_return std::move(*result);
    }
}

template <class Duration>
time_limit limit_at(std::chrono::time_point<loop_clock, Duration> when) noexcept {
    // Saturates, as durations do: `time_point::max()` of any unit is never.
    return time_limit{{}, loop_clock::time_point(to_loop_duration(when.time_since_epoch())), false};
}

template <class Rep, class Period>
time_limit limit_after(std::chrono::duration<Rep, Period> timeout) noexcept {
    return time_limit{to_loop_duration(timeout), {}, true};
}

template <on_timeout Mode, class A>
auto timed(A&& awaitable, time_limit limit) {
    using bare = std::remove_cvref_t<A>;
    if constexpr (is_coro_v<bare>) {
        static_assert(!std::is_lvalue_reference_v<A>, "pass a coro by value (it is consumed)");
    } else if constexpr (future_handle<bare>) {
        require_running_loop(awaitable, "corio::wait_for");
    }
    return timed_wait<Mode, bare>(bare(std::forward<A>(awaitable)), limit);
}

}  // namespace detail

/// Awaits `awaitable` for at most `timeout` and returns its result (asyncio's `wait_for`).
///
/// `awaitable` is anything a corio task can `co_await`: a coro (run inline, in the calling task),
/// a task or future, corio's own awaiters (`queue.get()`, `lock.acquire()`, `event.wait()`,
/// `sleep(d)`...) or another library's. On timeout the awaitable is cancelled, and
/// `timeout_error` is thrown once it has finished cancelling; if it completes anyway (it caught
/// the cancellation), its result is returned. corio's awaiters withdraw and lose nothing (a
/// `get` that timed out took no item, an `acquire` holds no lock). Another library's awaiter
/// cannot be withdrawn: the timeout is delivered when it resumes, at its next suspension.
/// Cancelling the caller cancels the awaitable too, and that stays a `cancelled_error`.
/// The timeout counts from when the result is awaited; a zero or negative one still lets a
/// result that is ready at once through. Durations saturate (`duration::max()`: no timeout).
template <detail::awaitable_arg A, class Rep, class Period>
[[nodiscard]] coro<detail::awaited_value_t<A>>
wait_for(A&& awaitable, std::chrono::duration<Rep, Period> timeout) {
    return detail::timed<detail::on_timeout::throw_error>(std::forward<A>(awaitable),
                                                          detail::limit_after(timeout));
}

/// As `wait_for`, with a deadline on the loop's clock (`loop.time()` plus a duration; asyncio's
/// `timeout_at`). A deadline already past still lets a ready result through.
template <class Duration, detail::awaitable_arg A>
[[nodiscard]] coro<detail::awaited_value_t<A>>
wait_until(std::chrono::time_point<event_loop::clock, Duration> deadline, A&& awaitable) {
    return detail::timed<detail::on_timeout::throw_error>(std::forward<A>(awaitable),
                                                          detail::limit_at(deadline));
}

/// Awaits `awaitable` for at most `timeout`: its result, or an empty optional on timeout, with
/// nothing thrown (trio's `move_on_after`). For a `void` awaitable, `bool`: whether it finished.
/// Otherwise as `wait_for`: a cancellation from outside is still `cancelled_error`.
template <class Rep, class Period, detail::awaitable_arg A>
[[nodiscard]] coro<
    detail::timed_result_t<detail::awaited_value_t<A>, detail::on_timeout::give_empty>>
with_timeout(std::chrono::duration<Rep, Period> timeout, A&& awaitable) {
    return detail::timed<detail::on_timeout::give_empty>(std::forward<A>(awaitable),
                                                         detail::limit_after(timeout));
}

/// As `with_timeout`, with a deadline on the loop's clock.
template <class Duration, detail::awaitable_arg A>
[[nodiscard]] coro<
    detail::timed_result_t<detail::awaited_value_t<A>, detail::on_timeout::give_empty>>
with_deadline(std::chrono::time_point<event_loop::clock, Duration> deadline, A&& awaitable) {
    return detail::timed<detail::on_timeout::give_empty>(std::forward<A>(awaitable),
                                                         detail::limit_at(deadline));
}

}  // namespace corio
