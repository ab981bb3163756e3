#pragma once
/// \file
/// `corio::sleep`: suspend the current task for a while (asyncio's `sleep`).

#include "corio/detail/deadline.hpp"
#include "corio/detail/timer_heap.hpp"
#include "corio/event_loop.hpp"
#include "corio/impl/task_state.hpp"

#include <chrono>
#include <coroutine>
#include <cstdio>
#include <string>

namespace corio {

namespace detail {

/// The awaiter of `sleep`: its timer node lives in the sleeping task's frame, so sleeping
/// allocates nothing and costs no syscall. 32 bytes: the timer node, the wait's operations, and
/// the delay, which the task's state replaces when the awaiter suspends.
class sleep_awaiter : public timer_node, public cancellable_wait {
public:
    explicit sleep_awaiter(loop_clock::duration delay) noexcept
        : timer_node(&fire), cancellable_wait(ops<&cancel, &describe>), delay_(delay) {}
    /// Movable until awaited (a combinator takes `sleep(d)` by value).
    sleep_awaiter(sleep_awaiter&& other) noexcept
        : timer_node(&fire), cancellable_wait(other), delay_(other.delay_) {}
    sleep_awaiter(const sleep_awaiter&) = delete;
    sleep_awaiter& operator=(const sleep_awaiter&) = delete;
    ~sleep_awaiter() {
        // A frame destroyed while asleep (the loop closing) takes its timer with it.
        if (queued()) loop_access::remove_timer(task_->loop(), this);
    }

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        const loop_clock::duration delay = delay_;
        task_ = &task_state_base::current("corio::sleep");
        if (task_->cancel_pending()) return false;
        if (delay <= loop_clock::duration::zero()) {
            // sleep(0): yield to the loop once. Nothing to withdraw: a cancellation arriving
            // meanwhile is delivered when the task resumes.
            task_->suspend(h, nullptr);
            task_->schedule();
            return true;
        }
        loop_access::add_timer(task_->loop(), this, saturating_add(task_->loop().time(), delay));
        task_->suspend(h, this);
        return true;
    }

    void await_resume() {
        if (heap_index_ == marked) {
            // Cut short by a cancellation: it throws even if `uncancel()` took the request back
            // meanwhile, as asyncio's cancelled sleep future does.
            task_->end_wait();
            task_->throw_cancelled();
        }
        task_->end_wait();
    }

private:
    static void fire(timer_node* node, bool run) noexcept {
        if (run) static_cast<sleep_awaiter*>(node)->task_->schedule();
    }

    static bool cancel(cancellable_wait* wait, const std::string&) {
        auto* self = static_cast<sleep_awaiter*>(wait);
        // A timer that already fired has scheduled the task: the cancellation is then delivered
        // when it resumes.
        if (self->queued()) {
            loop_access::remove_timer(self->task_->loop(), self);
            self->heap_index_ = marked;  // withdrawn
            self->task_->schedule();
        }
        return false;
    }

    static void describe(const cancellable_wait* wait, wait_description& description) {
        const auto* self = static_cast<const sleep_awaiter*>(wait);
        const event_loop& loop = self->task_->loop();
        // A timer that fired (or was withdrawn) is due now: the task is about to run.
        const auto left = self->queued()
                              ? std::chrono::duration<double>(
                                    loop_access::timer_deadline(loop, self) - loop.time())
                              : std::chrono::duration<double>::zero();
        char text[64];
        std::snprintf(text, sizeof text, "corio::sleep, due in %.3f s", left.count());
        description.what = text;
    }

    union {
        loop_clock::duration delay_;  // until the awaiter suspends
        task_state_base* task_;       // from then on
    };
};

}  // namespace detail

/// Suspends the current task for `delay` (at least; timers never fire early). `sleep(0s)`
/// yields to the loop once, letting every other ready task run, as does a negative delay;
/// `duration::max()` (of any unit) sleeps until cancelled. Durations saturate, never wrap.
///
/// Cancellation withdraws the timer at once and throws `cancelled_error` here. Must be awaited
/// inside a task (`std::runtime_error` otherwise).
template <class Rep, class Period>
[[nodiscard]] detail::sleep_awaiter sleep(std::chrono::duration<Rep, Period> delay) {
    return detail::sleep_awaiter(detail::to_loop_duration(delay));
}

}  // namespace corio
