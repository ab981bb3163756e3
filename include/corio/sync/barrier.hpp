#pragma once
/// \file
/// `corio::barrier`: a meeting point for a fixed number of tasks (asyncio's `Barrier`).

#include "corio/impl/sync_waiter.hpp"

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace corio {

/// Thrown by `barrier::wait()` when the barrier is aborted, or reset while the task waits in
/// it (asyncio's `BrokenBarrierError`).
class broken_barrier_error : public std::runtime_error {
public:
    broken_barrier_error() : std::runtime_error("the barrier is broken") {}
    using std::runtime_error::runtime_error;
};

/// A barrier for `parties` tasks (asyncio's `Barrier`): each task's `co_await b.wait()`
/// returns once `parties` tasks have arrived, with the task's arrival index (0 for the first,
/// `parties - 1` for the last). The barrier is then reusable: it *drains* (tasks arriving for
/// the next round wait until every released task has left `wait()`), then fills again.
///
/// - The last task to arrive does not suspend: it releases the others and returns at once.
///   The others resume through the loop, in the order they arrived.
/// - `reset()` sends the tasks waiting in it `broken_barrier_error` and returns the barrier to
///   its initial state once they have left; `abort()` breaks it: every waiting and every
///   future `wait()` throws `broken_barrier_error`, until `reset()`. Both are plain calls, not
///   coroutines as in asyncio: nothing in them waits.
/// - Cancellation: a task cancelled while waiting leaves at once and no longer counts as
///   arrived (the barrier then needs another task to trip); one cancelled after the barrier
///   released it gets `cancelled_error` (it was released, as everybody else: there is nothing
///   to hand on).
/// - Not copyable or movable: waiters point into it. Destroyed while tasks wait on it, it
///   never wakes them, but they still respond to cancellation (as `corio::run` cancels what is
///   left on its way out); tasks it has already woken finish their `co_await` without touching
///   it again.
class barrier {
public:
    class wait_awaiter;

    /// A barrier for `parties` tasks; zero throws `std::invalid_argument` (asyncio's
    /// `ValueError`).
    explicit barrier(std::size_t parties) : parties_(parties) {
        if (parties == 0) throw std::invalid_argument("corio::barrier: parties must be >= 1");
    }
    barrier(const barrier&) = delete;
    barrier& operator=(const barrier&) = delete;
    ~barrier() {
        detail::detach_all(arrived_);
        detail::detach_all(blocked_);
        detail::detach_all(leaving_);
    }

    /// `co_await b.wait()`: arrives and waits for the others; returns the arrival index.
    /// Throws `broken_barrier_error` if the barrier is broken, or gets aborted or reset while
    /// the task waits.
    [[nodiscard]] wait_awaiter wait() noexcept;

    /// Returns the barrier to its empty, filling state; the tasks waiting in it get
    /// `broken_barrier_error`. Also repairs a broken barrier.
    void reset() noexcept;

    /// Breaks the barrier: waiting tasks, and every `wait()` until `reset()`, get
    /// `broken_barrier_error`.
    void abort() noexcept;

    /// How many tasks must arrive to trip the barrier.
    [[nodiscard]] std::size_t parties() const noexcept { return parties_; }
    /// How many tasks wait in the barrier for it to trip (0 while it drains or resets).
    [[nodiscard]] std::size_t n_waiting() const noexcept {
        return phase_ == phase::filling ? count_ : 0;
    }
    [[nodiscard]] bool broken() const noexcept { return phase_ == phase::broken; }

private:
    enum class phase : std::uint8_t { filling, draining, resetting, broken };
    using status = detail::sync_waiter::status;

    // Releases every arrived task (they leave as they resume).
    void trip() noexcept {
        phase_ = phase::draining;
        while (detail::sync_waiter* w = arrived_.front()) w->grant_into(leaving_);
    }

    // A counted task has left (or given up): the last one out ends the draining or resetting,
    // and the tasks blocked meanwhile arrive, in order.
    void leave() noexcept;

    std::size_t parties_;
    // Invariant: tasks arrived and not yet out of `wait()` (waiting, or released and not yet
    // resumed); in the filling phase, exactly those waiting to trip.
    std::size_t count_ = 0;
    phase phase_ = phase::filling;
    detail::waiter_list arrived_;  // arrived, waiting for the barrier to trip
    detail::waiter_list blocked_;  // came while it drained or reset: not arrived yet
    detail::waiter_list leaving_;  // released or broken, not yet resumed: still counted
};

/// The awaiter of `barrier::wait()`, living in the waiting task's frame.
class barrier::wait_awaiter : public detail::sync_waiter {
public:
    explicit wait_awaiter(barrier& b) noexcept : sync_waiter(sync_ops<&cancel>), barrier_(&b) {}
    wait_awaiter(wait_awaiter&&) noexcept = default;  // until awaited, as every sync_waiter
    ~wait_awaiter() {
        // A frame destroyed inside the barrier (the loop closing) leaves it, as if cancelled.
        if (linked() && counted_) {
            unlink();
            barrier_->leave();
        }
    }

    [[nodiscard]] bool await_ready() {
        barrier& b = *barrier_;
        if (b.phase_ == phase::broken) throw broken_barrier_error("the barrier is aborted");
        if (b.phase_ != phase::filling || b.count_ + 1 != b.parties_) return false;
        // The last to arrive: release the others and go on at once.
        index_ = b.count_;
        b.trip();
        if (b.count_ == 0) b.phase_ = phase::filling;  // one party: nobody to drain
        return true;
    }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        if (bind("corio::barrier::wait")) return false;
        barrier& b = *barrier_;
        if (b.phase_ == phase::filling) {
            arrive();
            wait_in(b.arrived_, h);
        } else {
            wait_in(b.blocked_, h);
        }
        return true;
    }

    std::size_t await_resume() {
        if (task_ == nullptr) return index_;
        if (is(status::idle)) end_withdrawn();
        const bool broken = is(status::denied);
        if (counted_) {
            counted_ = false;
            if (detach()) barrier_->leave();
        }
        end_wait();
        if (broken) throw broken_barrier_error("the barrier was aborted or reset");
        return index_;
    }

private:
    friend class barrier;

    void arrive() noexcept {
        index_ = barrier_->count_++;
        counted_ = true;
    }

    static bool cancel(cancellable_wait* w, const std::string&) {
        auto* self = static_cast<wait_awaiter*>(w);
        if (!self->is(status::waiting)) return false;  // released: nothing to withdraw
        const bool counted = std::exchange(self->counted_, false);
        if (self->withdraw() && counted) self->barrier_->leave();
        return false;
    }

    barrier* barrier_;
    std::size_t index_ = 0;
    // Whether this task counts in `count_` (arrived, and not yet left).
    bool counted_ = false;
};

inline barrier::wait_awaiter barrier::wait() noexcept { return wait_awaiter(*this); }

inline void barrier::leave() noexcept {
    --count_;
    if (count_ != 0 || (phase_ != phase::draining && phase_ != phase::resetting)) return;
    phase_ = phase::filling;
    while (phase_ == phase::filling) {
        auto* w = static_cast<wait_awaiter*>(blocked_.front());
        if (w == nullptr) break;
        w->arrive();
        if (count_ == parties_) {
            w->grant_into(leaving_);
            trip();
        } else {
            w->requeue(arrived_);
        }
    }
}

inline void barrier::reset() noexcept {
    if (count_ == 0) {
        phase_ = phase::filling;
        return;
    }
    phase_ = phase::resetting;
    while (detail::sync_waiter* w = arrived_.front()) w->wake_into(leaving_, status::denied);
}

inline void barrier::abort() noexcept {
    phase_ = phase::broken;
    while (detail::sync_waiter* w = arrived_.front()) w->wake_into(leaving_, status::denied);
    while (detail::sync_waiter* w = blocked_.front()) w->wake(status::denied);
}

}  // namespace corio
